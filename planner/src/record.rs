//! The record of a build key's inputs, and why two keys differ.
//!
//! Every image `apply` pushes gets a small record beside it in the mirror (an OCI artifact tagged
//! `<key>.inputs`, and the service's newest one also under [`latest_tag`]): each file's hash, the
//! Dockerfile's hash, target, platform, build args and the pinned images. When a service's key misses,
//! the plan reads the record of what is deployed (or of the newest image built for the service) and
//! says, input by input, what changed. It works from a fresh clone: nothing of it is kept locally.

use crate::cache::ImageRef;
use crate::context::HashedKind;
use crate::key::KEY_FORMAT_VERSION;
use crate::plan::KeyedBuild;
use crate::reference::Reference;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

/// A build key's inputs, as stored beside the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The key format the key was made with.
    pub format: u32,
    pub key: String,
    /// `[path, kind, hash]`: kind `f` file, `x` executable file (hash: blake3 hex), `l` symbolic link
    /// (hash: its target), sorted by path.
    pub files: Vec<(String, String, String)>,
    /// blake3 hex of the Dockerfile's bytes.
    pub dockerfile: String,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub args: BTreeMap<String, String>,
    /// Normalised reference -> digest.
    pub images: BTreeMap<String, String>,
    /// Build secrets: mount id -> secret name (never a value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
}

impl KeyRecord {
    /// The record of a keyed build.
    pub fn of(b: &KeyedBuild) -> KeyRecord {
        let files = b
            .context
            .files
            .iter()
            .map(|f| match &f.kind {
                HashedKind::File { executable, blake3, .. } => {
                    (f.path.clone(), if *executable { "x" } else { "f" }.to_string(), hex(blake3))
                }
                HashedKind::Symlink { target } => (f.path.clone(), "l".to_string(), target.clone()),
            })
            .collect();
        KeyRecord {
            format: KEY_FORMAT_VERSION,
            key: b.key.clone(),
            files,
            dockerfile: b.dockerfile_blake3.clone(),
            target: b.target.clone(),
            platform: b.platform.clone(),
            args: b.args.clone(),
            images: b.images.iter().map(|(r, p)| (r.clone(), p.clone())).collect(),
            secrets: b.secrets.clone(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<KeyRecord, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("the record of key inputs is not readable: {e}"))
    }
}

fn hex(b: &[u8; 32]) -> String {
    b.iter().fold(String::with_capacity(64), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// The tag a key's record is kept under.
pub fn record_tag(key: &str) -> String {
    format!("{key}.inputs")
}

/// The tag the newest record of a service is kept under (in its repository), whatever its key.
pub fn latest_tag(project: &str, service: &str) -> String {
    let t = format!("{project}.{service}.inputs");
    if t.len() <= 128 {
        t
    } else {
        format!("{}.inputs", &blake3::hash(format!("{project}/{service}").as_bytes()).to_hex()[..32])
    }
}

/// Where the record of an image is: the same repository, tag `<key>.inputs`; `None` when the image's
/// tag is not a build key.
pub fn record_of_image(image: &str) -> Option<ImageRef> {
    let r = Reference::parse(image).ok()?;
    let key = r.tag.filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))?;
    Some(ImageRef { registry: r.domain, repository: r.path, tag: record_tag(&key) })
}

/// How many names each list of files shows in text.
const SHOWN: usize = 5;
/// How many names each list of files keeps in `--json`.
const KEPT: usize = 100;

/// One input that differs between two keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "camelCase")]
pub enum KeyChange {
    /// The key format changed (a new pipeline release): every input may be the same.
    KeyFormat {
        before: u32,
        after: u32,
    },
    /// Files of the context (after `.dockerignore`): up to 100 paths each, and the counts.
    #[serde(rename_all = "camelCase")]
    Files {
        added: Vec<String>,
        removed: Vec<String>,
        changed: Vec<String>,
        added_count: usize,
        removed_count: usize,
        changed_count: usize,
    },
    Dockerfile,
    Target {
        before: Option<String>,
        after: Option<String>,
    },
    Platform {
        before: Option<String>,
        after: Option<String>,
    },
    /// A build arg that reaches the build (secrets never do).
    Arg {
        name: String,
        before: Option<String>,
        after: Option<String>,
    },
    /// An image the build uses, moved to another digest, newly used or no longer used.
    Image {
        reference: String,
        before: Option<String>,
        after: Option<String>,
    },
    /// A build secret given under another secret name, newly given or no longer given (by name: values
    /// are never recorded).
    Secret {
        id: String,
        before: Option<String>,
        after: Option<String>,
    },
}

/// What differs between the inputs of an earlier key and of the current one, input by input.
pub fn explain(before: &KeyRecord, after: &KeyRecord) -> Vec<KeyChange> {
    let mut out = Vec::new();
    if before.format != after.format {
        out.push(KeyChange::KeyFormat { before: before.format, after: after.format });
    }
    let old: BTreeMap<&str, (&str, &str)> =
        before.files.iter().map(|(p, k, h)| (p.as_str(), (k.as_str(), h.as_str()))).collect();
    let new: BTreeMap<&str, (&str, &str)> =
        after.files.iter().map(|(p, k, h)| (p.as_str(), (k.as_str(), h.as_str()))).collect();
    let added: Vec<String> = new.keys().filter(|p| !old.contains_key(*p)).map(|p| p.to_string()).collect();
    let removed: Vec<String> = old.keys().filter(|p| !new.contains_key(*p)).map(|p| p.to_string()).collect();
    let changed: Vec<String> =
        new.iter().filter(|(p, v)| old.get(*p).is_some_and(|o| o != *v)).map(|(p, _)| p.to_string()).collect();
    if !(added.is_empty() && removed.is_empty() && changed.is_empty()) {
        let cut = |mut v: Vec<String>| {
            let n = v.len();
            v.truncate(KEPT);
            (v, n)
        };
        let ((added, added_count), (removed, removed_count), (changed, changed_count)) =
            (cut(added), cut(removed), cut(changed));
        out.push(KeyChange::Files { added, removed, changed, added_count, removed_count, changed_count });
    }
    if before.dockerfile != after.dockerfile {
        out.push(KeyChange::Dockerfile);
    }
    if before.target != after.target {
        out.push(KeyChange::Target { before: before.target.clone(), after: after.target.clone() });
    }
    if before.platform != after.platform {
        out.push(KeyChange::Platform { before: before.platform.clone(), after: after.platform.clone() });
    }
    let names: BTreeSet<&String> = before.args.keys().chain(after.args.keys()).collect();
    for n in names {
        let (b, a) = (before.args.get(n), after.args.get(n));
        if b != a {
            out.push(KeyChange::Arg { name: n.clone(), before: b.cloned(), after: a.cloned() });
        }
    }
    let refs: BTreeSet<&String> = before.images.keys().chain(after.images.keys()).collect();
    for r in refs {
        let (b, a) = (before.images.get(r), after.images.get(r));
        if b != a {
            out.push(KeyChange::Image { reference: r.clone(), before: b.cloned(), after: a.cloned() });
        }
    }
    let ids: BTreeSet<&String> = before.secrets.keys().chain(after.secrets.keys()).collect();
    for id in ids {
        let (b, a) = (before.secrets.get(id), after.secrets.get(id));
        if b != a {
            out.push(KeyChange::Secret { id: id.clone(), before: b.cloned(), after: a.cloned() });
        }
    }
    out
}

/// `sha256:ab12cd34…`: a digest short enough to read.
pub fn short_digest(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 => format!("{alg}:{}…", &hex[..12]),
        _ => d.to_string(),
    }
}

fn familiar(reference: &str) -> String {
    Reference::parse(reference).map(|r| r.familiar()).unwrap_or_else(|_| reference.to_string())
}

fn quoted(v: &Option<String>) -> String {
    match v {
        Some(s) => format!("{s:?}"),
        None => "(none)".into(),
    }
}

/// One change in words: `files changed: src/app.py`, `ARG VERSION: "1.3" -> "1.4"`,
/// `base image node:20 moved sha256:ab12… -> sha256:cd34…`.
pub fn describe(c: &KeyChange) -> String {
    match c {
        KeyChange::KeyFormat { before, after } => format!("key format changed ({before} -> {after})"),
        KeyChange::Files { added, removed, changed, added_count, removed_count, changed_count } => {
            let list = |v: &[String], n: usize| {
                let mut s = v.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
                if n > SHOWN {
                    let _ = write!(s, " and {} more", n - SHOWN);
                }
                s
            };
            let mut parts = Vec::new();
            if *changed_count > 0 {
                parts.push(format!("files changed: {}", list(changed, *changed_count)));
            }
            if *added_count > 0 {
                parts.push(format!("files added: {}", list(added, *added_count)));
            }
            if *removed_count > 0 {
                parts.push(format!("files removed: {}", list(removed, *removed_count)));
            }
            parts.join("; ")
        }
        KeyChange::Dockerfile => "Dockerfile changed".into(),
        KeyChange::Target { before, after } => format!("target changed: {} -> {}", quoted(before), quoted(after)),
        KeyChange::Platform { before, after } => {
            format!("platform changed: {} -> {}", quoted(before), quoted(after))
        }
        KeyChange::Arg { name, before, after } => format!("ARG {name}: {} -> {}", quoted(before), quoted(after)),
        KeyChange::Image { reference, before, after } => match (before, after) {
            (Some(b), Some(a)) => {
                format!("base image {} moved {} -> {}", familiar(reference), short_digest(b), short_digest(a))
            }
            (None, Some(a)) => format!("base image {} added ({})", familiar(reference), short_digest(a)),
            (Some(_), None) => format!("base image {} no longer used", familiar(reference)),
            (None, None) => format!("base image {}", familiar(reference)),
        },
        KeyChange::Secret { id, before, after } => match (before, after) {
            (Some(b), Some(a)) => format!("build secret {id}: secret `{b}` -> `{a}`"),
            (None, Some(a)) => format!("build secret {id} added (secret `{a}`)"),
            (Some(_), None) => format!("build secret {id} no longer given"),
            (None, None) => format!("build secret {id}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> KeyRecord {
        KeyRecord {
            format: 2,
            key: "k".into(),
            files: vec![
                ("a.txt".into(), "f".into(), "11".into()),
                ("b.txt".into(), "f".into(), "22".into()),
                ("run".into(), "x".into(), "33".into()),
            ],
            dockerfile: "d".into(),
            target: Some("runtime".into()),
            platform: None,
            args: [("VERSION".to_string(), "1.3".to_string())].into(),
            images: [("docker.io/library/node:20".to_string(), format!("sha256:{}", "a".repeat(64)))].into(),
            secrets: BTreeMap::new(),
        }
    }

    #[test]
    fn same_inputs_explain_nothing() {
        assert_eq!(explain(&record(), &record()), vec![]);
        let r = record();
        assert_eq!(KeyRecord::from_json(&r.to_json()).unwrap(), r);
    }

    #[test]
    fn each_input_is_named_and_nothing_else() {
        let before = record();
        let mut after = record();
        after.files[1].2 = "99".into();
        after.files[2].1 = "f".into();
        after.files.push(("c.txt".into(), "f".into(), "44".into()));
        after.files.remove(0);
        after.args.insert("VERSION".into(), "1.4".into());
        after.images.insert("docker.io/library/node:20".into(), format!("sha256:{}", "c".repeat(64)));
        let changes = explain(&before, &after);
        let text: Vec<String> = changes.iter().map(describe).collect();
        assert_eq!(
            text,
            vec![
                "files changed: b.txt, run; files added: c.txt; files removed: a.txt".to_string(),
                "ARG VERSION: \"1.3\" -> \"1.4\"".to_string(),
                "base image node:20 moved sha256:aaaaaaaaaaaa… -> sha256:cccccccccccc…".to_string(),
            ]
        );
        let mut t = record();
        t.target = None;
        t.dockerfile = "e".into();
        t.format = 3;
        let text: Vec<String> = explain(&before, &t).iter().map(describe).collect();
        assert_eq!(
            text,
            vec!["key format changed (2 -> 3)", "Dockerfile changed", "target changed: \"runtime\" -> (none)"]
        );
    }

    #[test]
    fn long_file_lists_are_cut() {
        let before = record();
        let mut after = record();
        for i in 0..150 {
            after.files.push((format!("n{i:03}"), "f".into(), "0".into()));
        }
        let changes = explain(&before, &after);
        let KeyChange::Files { added, added_count, .. } = &changes[0] else { panic!("{changes:?}") };
        assert_eq!((added.len(), *added_count), (100, 150));
        assert_eq!(describe(&changes[0]), "files added: n000, n001, n002, n003, n004 and 145 more");
    }

    #[test]
    fn tags() {
        assert_eq!(latest_tag("shop", "api"), "shop.api.inputs");
        assert!(latest_tag(&"p".repeat(63), &"s".repeat(63)).len() <= 128);
        let k = "ab".repeat(32);
        assert_eq!(
            record_of_image(&format!("127.0.0.1:5000/shop/api:{k}")),
            Some(ImageRef {
                registry: "127.0.0.1:5000".into(),
                repository: "shop/api".into(),
                tag: format!("{k}.inputs")
            })
        );
        assert_eq!(record_of_image("nginx:1.27"), None);
    }
}
