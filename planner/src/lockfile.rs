//! `pipeline.lock`: every image an environment uses, pinned to a digest. Kept beside the definitions
//! and meant to be committed, so every machine builds from and deploys the same images. (Not to be
//! confused with the per-environment apply lock, which is a container or a Lease on the target.)
//!
//! The file is JSON, sorted, two-space indented, one entry per normalised reference:
//!
//! ```json
//! {
//!   "lockVersion": 1,
//!   "images": {
//!     "docker.io/library/node:20": {
//!       "digest": "sha256:…",
//!       "mediaType": "application/vnd.oci.image.index.v1+json"
//!     }
//!   }
//! }
//! ```

use crate::error::Diag;
use crate::reference::{Reference, check_digest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file name, beside the definitions.
pub const FILE_NAME: &str = "pipeline.lock";

/// Bumped on an incompatible change of the file's shape.
pub const LOCK_VERSION: u32 = 1;

/// One pinned image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// The manifest's digest: the image index's where the registry serves one, so one entry serves every
    /// platform.
    pub digest: String,
    #[serde(rename = "mediaType")]
    pub media_type: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockText {
    #[serde(rename = "lockVersion")]
    lock_version: u32,
    images: BTreeMap<String, Pin>,
}

/// The lock file's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lockfile {
    /// Per normalised reference (`docker.io/library/node:20`).
    pub images: BTreeMap<String, Pin>,
}

impl Lockfile {
    /// Where the lock of a definitions file lives.
    pub fn path_for(definitions: &Path) -> PathBuf {
        definitions.parent().unwrap_or(Path::new(".")).join(FILE_NAME)
    }

    /// Read the lock at `path` (called `name` in messages); a missing file is an empty lock. Errors point
    /// at the file, line and column.
    pub fn read(path: &Path, name: &str) -> Result<Lockfile, Box<Diag>> {
        match std::fs::read_to_string(path) {
            Ok(text) => Lockfile::parse(name, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Lockfile::default()),
            Err(e) => Err(Box::new(
                Diag::new("pipeline::lock::read", format!("cannot read `{name}`: {e}"))
                    .help("check the file's permissions, or delete it and run `pipeline lock` to write it anew"),
            )),
        }
    }

    pub fn parse(name: &str, text: &str) -> Result<Lockfile, Box<Diag>> {
        let parsed: LockText = serde_json::from_str(text).map_err(|e| {
            Box::new(
                Diag::new("pipeline::lock::syntax", format!("`{name}` is not a valid lock file: {e}"))
                    .at_point(name, text, e.line(), e.column(), "here")
                    .help(
                        "fix the file (see docs/lock-file.md), or delete it and run `pipeline lock` to write it anew",
                    ),
            )
        })?;
        if parsed.lock_version != LOCK_VERSION {
            return Err(Box::new(
                Diag::new(
                    "pipeline::lock::version",
                    format!(
                        "`{name}` has lockVersion {}; this pipeline reads version {LOCK_VERSION}",
                        parsed.lock_version
                    ),
                )
                .at_point(name, text, find_line(text, "lockVersion"), 1, "here")
                .help("use the pipeline release that wrote it, or run `pipeline lock --update` to rewrite it"),
            ));
        }
        for (reference, pin) in &parsed.images {
            let problem = match Reference::parse(reference) {
                Ok(r) if r.digest.is_some() => Some("a lock entry is a reference without a digest".to_string()),
                Ok(r) if r.name_with_tag() != *reference => {
                    Some(format!("entries are kept under the normalised reference `{}`", r.name_with_tag()))
                }
                Ok(_) => check_digest(&pin.digest).err(),
                Err(why) => Some(why),
            };
            if let Some(why) = problem {
                return Err(Box::new(
                    Diag::new(
                        "pipeline::lock::entry",
                        format!("`{name}`: the entry `{reference}` is not valid: {why}"),
                    )
                    .at_point(name, text, find_line(text, &format!("\"{reference}\"")), 1, "this entry")
                    .help(format!("remove the entry and run `pipeline lock` to pin `{reference}` again")),
                ));
            }
        }
        Ok(Lockfile { images: parsed.images })
    }

    /// The file's text: sorted, stable, ending with a newline.
    pub fn to_text(&self) -> String {
        let t = LockText { lock_version: LOCK_VERSION, images: self.images.clone() };
        let mut s = serde_json::to_string_pretty(&t).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Write the lock (through a temporary file and a rename, so a reader never sees half of it).
    pub fn write(&self, path: &Path) -> Result<(), Box<Diag>> {
        write_replacing(path, self.to_text().as_bytes()).map_err(|e| {
            Box::new(
                Diag::new("pipeline::lock::write", format!("cannot write `{}`: {e}", path.display()))
                    .help("check that the folder is writable, or pass --locked to plan without writing it"),
            )
        })
    }

    pub fn get(&self, reference: &Reference) -> Option<&Pin> {
        self.images.get(&reference.name_with_tag())
    }
}

/// Replace the file at `path` with `bytes` through a temporary file beside it and a rename, so a reader
/// never sees half of it. The temporary file is this writer's own (process and call): runs writing the
/// same file at once (two environments applied from one checkout) each rename a whole file, where a
/// shared temporary name made one rename fail with "No such file or directory".
pub fn write_replacing(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The 1-based line of the first occurrence of `needle` (1 when absent).
fn find_line(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).map_or(1, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    /// The bug: two applies of one checkout at once (staging and production of one commit) wrote the lock
    /// through one shared temporary name, and one run failed with `pipeline::lock::write` "No such file or
    /// directory" when the other renamed the file away first.
    #[test]
    fn writers_at_the_same_moment_each_replace_the_whole_file() {
        let dir = std::env::temp_dir().join(format!("pl-lock-race-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pipeline.lock");
        let mut l = Lockfile::default();
        l.images.insert("127.0.0.1:5000/base/busybox:1".into(), Pin { digest: D.into(), media_type: "m".into() });
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let (l, path) = (l.clone(), path.clone());
                std::thread::spawn(move || (0..200).filter_map(|_| l.write(&path).err()).count())
            })
            .collect();
        let failed: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name()).collect();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(failed, 0, "writes failed");
        assert_eq!(left, vec![std::ffi::OsString::from("pipeline.lock")], "temporary files were left");
        assert_eq!(Lockfile::parse("pipeline.lock", &text).unwrap(), l);
    }

    #[test]
    fn round_trip_is_stable_and_sorted() {
        let mut l = Lockfile::default();
        for r in ["docker.io/library/node:20", "127.0.0.1:5000/base/busybox:1"] {
            l.images.insert(
                r.into(),
                Pin { digest: D.into(), media_type: "application/vnd.oci.image.index.v1+json".into() },
            );
        }
        let text = l.to_text();
        assert!(text.find("127.0.0.1").unwrap() < text.find("docker.io").unwrap(), "{text}");
        assert!(text.starts_with("{\n  \"lockVersion\": 1,\n  \"images\": {\n"), "{text}");
        assert_eq!(Lockfile::parse("pipeline.lock", &text).unwrap(), l);
        assert_eq!(Lockfile::parse("pipeline.lock", &text).unwrap().to_text(), text);
    }

    #[test]
    fn errors_point_at_the_place() {
        let cases = [
            ("{\n  \"lockVersion\": 1,\n  \"images\": {\n    \"x\": 3\n  }\n}\n", "pipeline.lock:4:", "invalid type"),
            ("{\n  \"lockVersion\": 1,\n  \"images\": {\n  }\n", "pipeline.lock:5:", "EOF"),
            ("{\"lockVersion\": 2, \"images\": {}}", "pipeline.lock:1:", "lockVersion 2"),
            (
                &format!(
                    "{{\"lockVersion\": 1, \"images\": {{\n\"node:20\": {{\"digest\": \"{D}\", \"mediaType\": \"m\"}}}}}}"
                ),
                "pipeline.lock:2:",
                "normalised reference `docker.io/library/node:20`",
            ),
            (
                "{\"lockVersion\": 1, \"images\": {\n\"docker.io/library/node:20\": {\"digest\": \"sha256:12\", \"mediaType\": \"m\"}}}",
                "pipeline.lock:2:",
                "is not a digest",
            ),
            ("{\"lockVersion\": 1, \"images\": {}, \"extra\": 1}", "pipeline.lock:1:", "unknown field"),
        ];
        for (text, at, says) in cases {
            let e = Lockfile::parse("pipeline.lock", text).unwrap_err();
            assert!(e.location().is_some_and(|l| l.starts_with(at)), "{text}: {:?}", e.location());
            assert!(e.message().contains(says), "{text}: {}", e.message());
            assert!(e.help_text().is_some());
        }
    }
}
