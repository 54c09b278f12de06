//! Hashing a build context: the files Docker would send (after `.dockerignore`), each hashed with
//! blake3 in parallel and streaming, through a stat cache so that an unchanged tree costs a stat walk.

use crate::dockerignore::Dockerignore;
use crate::error::{Diag, Error, Result};
use crate::walk::{self, Entry, EntryKind, Meta};
use rayon::prelude::*;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Files at least this big are memory-mapped and hashed on several threads; smaller ones are read.
const MMAP_THRESHOLD: u64 = 256 * 1024;

/// One file of a context as it enters the build key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedFile {
    /// Relative to the context, `/`-separated.
    pub path: String,
    pub kind: HashedKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashedKind {
    File { executable: bool, size: u64, blake3: [u8; 32] },
    Symlink { target: String },
}

/// A hashed context: its root and its files sorted by path.
#[derive(Debug, Clone)]
pub struct Context {
    pub root: PathBuf,
    pub files: Vec<HashedFile>,
    /// How many files were hashed (not answered by the stat cache).
    pub hashed: usize,
}

/// Walk and hash the context at `root`, honouring its `.dockerignore`.
/// `shown` names the context in messages (relative to the definitions).
pub fn hash_context(root: &Path, shown: &str, cache: &StatCache) -> Result<Context> {
    let meta = std::fs::metadata(root).map_err(|e| {
        Diag::new("pipeline::context::missing", format!("build context `{shown}` cannot be read: {}", io_reason(&e)))
            .help("`build.context` must name an existing folder")
    })?;
    if !meta.is_dir() {
        return Err(Diag::new("pipeline::context::not_a_dir", format!("build context `{shown}` is not a folder"))
            .help("`build.context` names the folder Docker builds from; point it at a folder, and the Dockerfile with `build.dockerfile`")
            .into());
    }
    let ignore = read_dockerignore(root, shown)?;
    let entries = walk::walk(root, &ignore).map_err(|e| {
        Error::Invalid(Box::new(
            Diag::new("pipeline::context::walk", e.to_string())
                .help("check the folder's permissions; files Docker cannot read make the build fail too"),
        ))
    })?;
    let files = hash_entries(root, shown, entries, cache)?;
    let hashed = files.1;
    Ok(Context { root: root.to_path_buf(), files: files.0, hashed })
}

/// Parse `<root>/.dockerignore` (none: nothing ignored).
pub fn read_dockerignore(root: &Path, shown: &str) -> Result<Dockerignore> {
    let path = root.join(".dockerignore");
    let shown = format!("{}/.dockerignore", shown.trim_end_matches('/'));
    match std::fs::read_to_string(&path) {
        Ok(text) => Dockerignore::parse(&text).map_err(|e| {
            use crate::dockerignore::DockerignoreError as E;
            let (E::LineTooLong { line, .. } | E::EmptyExclusion { line, .. } | E::BadPattern { line, .. }) = &e;
            let help = miette::Diagnostic::help(&e).map_or_else(String::new, |h| h.to_string());
            Error::Invalid(Box::new(
                Diag::new("pipeline::context::dockerignore", format!("{shown}: {e}"))
                    .at_line(&shown, &text, *line, "Docker rejects this pattern")
                    .help(help),
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Dockerignore::default()),
        Err(e) => {
            Err(Diag::new("pipeline::context::dockerignore", format!("cannot read {shown}: {}", io_reason(&e))).into())
        }
    }
}

fn hash_entries(root: &Path, shown: &str, entries: Vec<Entry>, cache: &StatCache) -> Result<(Vec<HashedFile>, usize)> {
    let hashed = std::sync::atomic::AtomicUsize::new(0);
    let out: std::result::Result<Vec<HashedFile>, (String, std::io::Error)> = entries
        .into_par_iter()
        .map(|e| {
            let kind = match e.kind {
                EntryKind::Symlink { target } => HashedKind::Symlink { target },
                EntryKind::File { executable } => {
                    let abs = root.join(&e.path);
                    let digest = match cache.lookup(&abs, &e.meta) {
                        Some(d) => d,
                        None => {
                            let d = hash_file(&abs, e.meta.size).map_err(|err| (e.path.clone(), err))?;
                            hashed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            cache.record(&abs, &e.meta, d);
                            d
                        }
                    };
                    HashedKind::File { executable, size: e.meta.size, blake3: digest }
                }
            };
            Ok(HashedFile { path: e.path, kind })
        })
        .collect();
    let files = out.map_err(|(p, err)| {
        Error::Invalid(Box::new(
            Diag::new(
                "pipeline::context::read",
                format!("cannot read `{p}` in build context `{shown}`: {}", io_reason(&err)),
            )
            .help(
                "Docker must be able to read every file of the context; fix its permissions or add it to .dockerignore",
            ),
        ))
    })?;
    cache.mark_walked(root);
    Ok((files, hashed.into_inner()))
}

/// blake3 of a file's bytes, streaming: big files memory-mapped on several threads, small ones read.
pub fn hash_file(path: &Path, size: u64) -> std::io::Result<[u8; 32]> {
    let mut h = blake3::Hasher::new();
    if size >= MMAP_THRESHOLD {
        h.update_mmap_rayon(path)?;
    } else {
        let mut f = std::fs::File::open(path)?;
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            h.update(&buf[..n]);
        }
    }
    Ok(*h.finalize().as_bytes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cached {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    mode: u32,
    hash: [u8; 32],
}

impl Cached {
    fn matches(&self, m: &Meta) -> bool {
        self.size == m.size
            && self.mtime_ns == m.mtime_ns
            && self.ctime_ns == m.ctime_ns
            && self.ino == m.ino
            && self.mode == m.mode
    }
}

/// File hashes remembered by path, size, mtime, ctime, inode and mode, kept in `.pipeline/` beside the
/// definitions (safe to delete). As in git, an entry whose mtime is at or after the moment the cache was
/// written is not trusted: the file may have changed again within the clock's resolution.
#[derive(Debug, Default)]
pub struct StatCache {
    file: Option<PathBuf>,
    /// When the loaded cache was written (its file's mtime), in ns since the epoch.
    written_ns: i64,
    old: HashMap<String, Cached>,
    new: Mutex<HashMap<String, Cached>>,
    walked: Mutex<Vec<String>>,
}

const MAGIC: &[u8; 8] = b"PLSTAT01";

impl StatCache {
    /// A cache that is neither read nor written.
    pub fn disabled() -> StatCache {
        StatCache::default()
    }

    /// Load the cache at `file`; a missing, unreadable or corrupt cache is an empty one.
    pub fn open(file: &Path) -> StatCache {
        let mut c = StatCache { file: Some(file.to_path_buf()), ..Default::default() };
        let Ok(meta) = std::fs::metadata(file) else { return c };
        let Ok(bytes) = std::fs::read(file) else { return c };
        c.written_ns = mtime_ns(&meta);
        if let Some(old) = decode(&bytes) {
            c.old = old;
        }
        c
    }

    fn lookup(&self, abs: &Path, m: &Meta) -> Option<[u8; 32]> {
        if self.file.is_none() || m.mtime_ns >= self.written_ns {
            return None;
        }
        let c = self.old.get(abs.to_str()?)?;
        c.matches(m).then_some(c.hash)
    }

    fn record(&self, abs: &Path, m: &Meta, hash: [u8; 32]) {
        if self.file.is_none() {
            return;
        }
        let Some(key) = abs.to_str() else { return };
        let c = Cached { size: m.size, mtime_ns: m.mtime_ns, ctime_ns: m.ctime_ns, ino: m.ino, mode: m.mode, hash };
        if let Ok(mut n) = self.new.lock() {
            n.insert(key.to_string(), c);
        }
    }

    fn mark_walked(&self, root: &Path) {
        if let (Some(r), Ok(mut w)) = (root.to_str(), self.walked.lock()) {
            w.push(format!("{}/", r.trim_end_matches('/')));
        }
    }

    /// Write the cache back: entries of walked contexts that still exist (reused or new), and entries
    /// of contexts not walked this time, unchanged. Atomic (write then rename).
    pub fn save(&self) -> std::io::Result<()> {
        let Some(file) = &self.file else { return Ok(()) };
        let new = self.new.lock().map(|n| n.clone()).unwrap_or_default();
        let walked = self.walked.lock().map(|w| w.clone()).unwrap_or_default();
        if new.is_empty() && walked.is_empty() {
            return Ok(());
        }
        let mut all: Vec<(&String, &Cached)> = Vec::with_capacity(self.old.len() + new.len());
        // Unchanged entries stay (walked or not); stale entries of walked contexts are dropped when the
        // file is gone. A reused entry is re-checked next time against the same stat data.
        for (k, v) in &self.old {
            if new.contains_key(k) {
                continue;
            }
            let in_walked = walked.iter().any(|w| k.starts_with(w.as_str()));
            if in_walked && std::fs::symlink_metadata(k).is_err() {
                continue;
            }
            all.push((k, v));
        }
        all.extend(new.iter());
        all.sort_by(|a, b| a.0.cmp(b.0));
        let mut buf = Vec::with_capacity(16 + all.len() * 96);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&(all.len() as u64).to_le_bytes());
        for (k, c) in all {
            buf.extend_from_slice(&(k.len() as u32).to_le_bytes());
            buf.extend_from_slice(k.as_bytes());
            buf.extend_from_slice(&c.size.to_le_bytes());
            buf.extend_from_slice(&c.mtime_ns.to_le_bytes());
            buf.extend_from_slice(&c.ctime_ns.to_le_bytes());
            buf.extend_from_slice(&c.ino.to_le_bytes());
            buf.extend_from_slice(&c.mode.to_le_bytes());
            buf.extend_from_slice(&c.hash);
        }
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = file.with_extension(format!("tmp{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&buf)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, file)
    }
}

fn decode(b: &[u8]) -> Option<HashMap<String, Cached>> {
    let mut r = b.strip_prefix(MAGIC.as_slice())?;
    fn take<'a>(r: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        if r.len() < n {
            return None;
        }
        let (a, b) = r.split_at(n);
        *r = b;
        Some(a)
    }
    fn u64_(r: &mut &[u8]) -> Option<u64> {
        Some(u64::from_le_bytes(take(r, 8)?.try_into().ok()?))
    }
    let n = u64_(&mut r)? as usize;
    let mut out = HashMap::with_capacity(n.min(1 << 22));
    for _ in 0..n {
        let len = u32::from_le_bytes(take(&mut r, 4)?.try_into().ok()?) as usize;
        let key = std::str::from_utf8(take(&mut r, len)?).ok()?.to_string();
        let size = u64_(&mut r)?;
        let mtime_ns = u64_(&mut r)? as i64;
        let ctime_ns = u64_(&mut r)? as i64;
        let ino = u64_(&mut r)?;
        let mode = u32::from_le_bytes(take(&mut r, 4)?.try_into().ok()?);
        let hash: [u8; 32] = take(&mut r, 32)?.try_into().ok()?;
        out.insert(key, Cached { size, mtime_ns, ctime_ns, ino, mode, hash });
    }
    r.is_empty().then_some(out)
}

fn mtime_ns(m: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    m.mtime().saturating_mul(1_000_000_000).saturating_add(m.mtime_nsec())
}

/// An OS error without the "(os error N)" suffix.
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}
