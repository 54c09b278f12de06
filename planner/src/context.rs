//! Hashing a build context: the files Docker would send (after `.dockerignore`), each hashed with
//! blake3 in parallel and streaming, through a stat cache so that an unchanged tree costs a stat walk.

use crate::dockerignore::Dockerignore;
use crate::error::{Diag, Error, Result};
use crate::walk::{self, Entry, EntryKind, Meta};
use rayon::prelude::*;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

/// Files at least this big are hashed on several threads, a chunk at a time; smaller ones on one.
const BIG_FILE: u64 = 256 * 1024;
const CHUNK: usize = 4 << 20;

/// Fill `buf` as far as the file goes; the count read (0 at the end).
fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

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
    hash_context_except(root, shown, cache, None)
}

/// As [`hash_context`], leaving out everything under `state` (pipeline's own `.pipeline` folder, which
/// changes on every run) when the context contains it.
pub fn hash_context_except(root: &Path, shown: &str, cache: &StatCache, state: Option<&Path>) -> Result<Context> {
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
        let help = miette::Diagnostic::help(&e).map_or_else(
            || "Docker must be able to read every file of the context; fix it or add it to .dockerignore".to_string(),
            |h| h.to_string(),
        );
        Error::Invalid(Box::new(
            Diag::new("pipeline::context::walk", format!("build context `{shown}`: {e}")).help(help),
        ))
    })?;
    let entries = match state.and_then(|s| s.strip_prefix(root).ok()) {
        Some(rel) if !rel.as_os_str().is_empty() => {
            let rel = rel.to_string_lossy().replace('\\', "/");
            let inside = format!("{rel}/");
            entries.into_iter().filter(|e| e.path != rel && !e.path.starts_with(&inside)).collect()
        }
        _ => entries,
    };
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
                    let digest = match cache.lookup(root, &e.path, &e.meta) {
                        Some(d) => d,
                        None => {
                            let started = now_ns();
                            let d = hash_file(&root.join(&e.path), e.meta.size).map_err(|err| (e.path.clone(), err))?;
                            hashed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            cache.record(root, &e.path, &e.meta, d, started);
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
    if size >= BIG_FILE {
        // Big files: read in large chunks, each hashed on several threads. (Not memory-mapped: a file
        // truncated while it is hashed would kill the process with SIGBUS.)
        let mut f = std::fs::File::open(path)?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = read_full(&mut f, &mut buf)?;
            if n == 0 {
                break;
            }
            h.update_rayon(&buf[..n]);
        }
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
    /// Trusted only for files last modified before this (when hashing began, less a clock tick).
    written_ns: i64,
}

impl Cached {
    fn matches(&self, m: &Meta) -> bool {
        self.size == m.size
            && self.mtime_ns == m.mtime_ns
            && self.ctime_ns == m.ctime_ns
            && self.ino == m.ino
            && self.mode == m.mode
            && m.mtime_ns.max(m.ctime_ns).saturating_add(timestamp_margin(m)) < self.written_ns
    }
}

/// File hashes remembered by path, size, mtime, ctime, inode and mode, kept in `.pipeline/` beside the
/// definitions (safe to delete). As in git, an entry is not trusted for a file modified at or after the
/// moment its hash was taken: the file may have changed again within the clock's resolution.
///
/// Two files: `stat-cache` (all entries, rewritten when many changed) and `stat-cache.journal` (entries
/// appended since, so one changed file costs one small append rather than a rewrite). Loading costs one
/// read of each and no per-entry allocation: entries point into the files' bytes, found through a map
/// from a 64-bit hash of the path (a collision makes both entries misses, never a wrong answer).
#[derive(Debug, Default)]
pub struct StatCache {
    file: Option<PathBuf>,
    /// The cache, read and indexed on a thread of its own while the context is walked.
    loaded: OnceLock<Loaded>,
    loader: Mutex<Option<std::thread::JoinHandle<Loaded>>>,
    new: Mutex<Vec<(String, Cached)>>,
    walked: Mutex<Vec<String>>,
}

#[derive(Debug, Default)]
struct Loaded {
    /// The main file's bytes, then the journal's.
    bytes: Vec<u8>,
    old: Vec<OldEntry>,
    /// How many of `old` come from the journal (they follow the main file's).
    journal_entries: usize,
    /// The journal ends in a partial record (an interrupted append): rewrite rather than append after it.
    journal_torn: bool,
    index: HashMap<u64, u32, BuildHasherDefault<NoHash>>,
    /// Whether this run found each loaded entry still valid.
    used: Vec<AtomicBool>,
}

#[derive(Debug, Clone, Copy)]
struct OldEntry {
    key_at: usize,
    key_len: usize,
    cached: Cached,
}

impl Loaded {
    /// Read and index the cache; a missing, unreadable or corrupt file counts as empty.
    fn read(file: &Path) -> Loaded {
        let mut bytes = std::fs::read(file).unwrap_or_default();
        let mut old = match bytes.strip_prefix(MAGIC.as_slice()) {
            Some(_) => decode(&bytes, MAGIC.len()).unwrap_or_default(),
            None => vec![],
        };
        if old.is_empty() {
            bytes.clear();
        }
        let main = old.len();
        let journal = std::fs::read(journal_path(file)).unwrap_or_default();
        let mut journal_torn = !journal.is_empty() && !journal.starts_with(JOURNAL_MAGIC);
        if journal.starts_with(JOURNAL_MAGIC) {
            let base = bytes.len();
            bytes.extend_from_slice(&journal);
            // A torn last append just ends the journal early (and makes the next save a rewrite).
            let (entries, end) = decode_journal(&bytes, base + JOURNAL_MAGIC.len());
            journal_torn = end != bytes.len();
            old.extend(entries);
        }
        let mut index: HashMap<u64, u32, _> =
            HashMap::with_capacity_and_hasher(old.len(), BuildHasherDefault::default());
        for (i, e) in old.iter().enumerate() {
            let key = &bytes[e.key_at..e.key_at + e.key_len];
            let slot = index.entry(key_hash(key)).or_insert(i as u32);
            // A later entry for the same path replaces the earlier one; two paths with one hash: neither.
            if *slot != i as u32 && *slot != AMBIGUOUS {
                let prev = &old[*slot as usize];
                *slot = if &bytes[prev.key_at..prev.key_at + prev.key_len] == key { i as u32 } else { AMBIGUOUS };
            }
        }
        let used = old.iter().map(|_| AtomicBool::new(false)).collect();
        Loaded { bytes, journal_entries: old.len() - main, journal_torn, old, index, used }
    }

    fn key_of(&self, e: &OldEntry) -> &[u8] {
        &self.bytes[e.key_at..e.key_at + e.key_len]
    }

    /// Whether entry `i` is the one the index answers for its path (not replaced by a later one).
    fn current(&self, i: usize) -> bool {
        self.index.get(&key_hash(self.key_of(&self.old[i]))) == Some(&(i as u32))
    }
}

/// The map's keys are already hashes.
#[derive(Debug, Default)]
struct NoHash(u64);

impl std::hash::Hasher for NoHash {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed; anything else still gets a usable (if poor) hash.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn key_hash(key: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(key);
    h.finish()
}

const MAGIC: &[u8; 8] = b"PLSTAT02";
const JOURNAL_MAGIC: &[u8; 8] = b"PLSTJ002";
const AMBIGUOUS: u32 = u32::MAX;
/// More than a kernel tick (file timestamps are taken from the coarse clock: 1-10 ms).
const COARSE_CLOCK_MARGIN_NS: i64 = 20_000_000;

/// File systems that keep whole seconds (or two) give timestamps with no nanoseconds: a write within the
/// same second as the hashing must still be noticed.
fn timestamp_margin(m: &Meta) -> i64 {
    if m.mtime_ns % 1_000_000_000 == 0 && m.ctime_ns % 1_000_000_000 == 0 { 2_000_000_000 } else { 0 }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn journal_path(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".journal");
    PathBuf::from(p)
}

/// A file's key in the cache: the context's path, `/`, the path in the context.
fn cache_key(root: &Path, rel: &str, out: &mut Vec<u8>) {
    use std::os::unix::ffi::OsStrExt;
    out.clear();
    out.extend_from_slice(root.as_os_str().as_bytes());
    out.push(b'/');
    out.extend_from_slice(rel.as_bytes());
}

thread_local! {
    /// The absolute path being looked up, built without allocating per file.
    static KEY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl StatCache {
    /// A cache that is neither read nor written.
    pub fn disabled() -> StatCache {
        StatCache::default()
    }

    /// Start loading the cache at `file` (in the background).
    pub fn open(file: &Path) -> StatCache {
        let path = file.to_path_buf();
        let handle = std::thread::Builder::new().name("stat-cache".into()).spawn(move || Loaded::read(&path)).ok();
        StatCache { file: Some(file.to_path_buf()), loader: Mutex::new(handle), ..Default::default() }
    }

    fn loaded(&self) -> &Loaded {
        self.loaded.get_or_init(|| {
            let handle = self.loader.lock().ok().and_then(|mut h| h.take());
            handle.and_then(|h| h.join().ok()).unwrap_or_default()
        })
    }

    fn lookup(&self, root: &Path, rel: &str, m: &Meta) -> Option<[u8; 32]> {
        self.file.as_ref()?;
        let l = self.loaded();
        if l.old.is_empty() {
            return None;
        }
        KEY.with_borrow_mut(|key| {
            cache_key(root, rel, key);
            let &i = l.index.get(&key_hash(key))?;
            let e = l.old.get(i as usize)?;
            if l.key_of(e) != key.as_slice() || !e.cached.matches(m) {
                return None;
            }
            l.used[i as usize].store(true, Ordering::Relaxed);
            Some(e.cached.hash)
        })
    }

    /// Remember a file's hash; `started_ns` is when its hashing began. File timestamps come from a coarse
    /// clock, so the entry is trusted only for files last modified a clock tick (with margin) before that:
    /// a write racing the hashing always makes the entry a miss (git's racy-clean rule).
    fn record(&self, root: &Path, rel: &str, m: &Meta, hash: [u8; 32], started_ns: i64) {
        if self.file.is_none() {
            return;
        }
        let mut key = Vec::new();
        cache_key(root, rel, &mut key);
        let Ok(key) = String::from_utf8(key) else { return };
        let c = Cached {
            size: m.size,
            mtime_ns: m.mtime_ns,
            ctime_ns: m.ctime_ns,
            ino: m.ino,
            mode: m.mode,
            hash,
            written_ns: started_ns.saturating_sub(COARSE_CLOCK_MARGIN_NS),
        };
        if let Ok(mut n) = self.new.lock() {
            n.push((key, c));
        }
    }

    fn mark_walked(&self, root: &Path) {
        if let (Some(r), Ok(mut w)) = (root.to_str(), self.walked.lock()) {
            w.push(format!("{}/", r.trim_end_matches('/')));
        }
    }

    /// Write what changed: new entries are appended to the journal while it stays small; otherwise (or
    /// when entries of walked contexts went stale) everything still valid is rewritten into the main
    /// file and the journal removed. Entries of contexts not walked this time are kept as they are.
    pub fn save(&self) -> std::io::Result<()> {
        let Some(file) = &self.file else { return Ok(()) };
        let l = self.loaded();
        let mut new = self.new.lock().map(|n| n.clone()).unwrap_or_default();
        let walked = self.walked.lock().map(|w| w.clone()).unwrap_or_default();
        let in_walked = |k: &[u8]| walked.iter().any(|w| k.starts_with(w.as_bytes()));
        new.sort_by(|a, b| a.0.cmp(&b.0));
        new.dedup_by(|a, b| a.0 == b.0);
        let fresh = |k: &[u8]| new.binary_search_by(|(n, _)| n.as_bytes().cmp(k)).is_ok();
        // Stale: a current entry of a walked context that this run neither confirmed nor replaced (the
        // file is gone or now ignored).
        let stale = (0..l.old.len()).any(|i| {
            let k = l.key_of(&l.old[i]);
            l.current(i) && !l.used[i].load(Ordering::Relaxed) && in_walked(k) && !fresh(k)
        });
        if new.is_empty() && !stale {
            return Ok(());
        }
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let main_entries = l.old.len() - l.journal_entries;
        if !stale && !l.journal_torn && l.journal_entries + new.len() <= (main_entries / 8).max(64) {
            let journal = journal_path(file);
            let mut buf = Vec::with_capacity(new.len() * 128 + 8);
            if l.journal_entries == 0 {
                buf.extend_from_slice(JOURNAL_MAGIC);
            }
            for (k, c) in &new {
                encode(&mut buf, k.as_bytes(), c);
            }
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&journal)?;
            if l.journal_entries == 0 {
                f.set_len(0)?;
            }
            return f.write_all(&buf);
        }
        let mut all: Vec<(&[u8], &Cached)> = Vec::with_capacity(l.old.len() + new.len());
        for (i, e) in l.old.iter().enumerate() {
            let k = l.key_of(e);
            let keep = l.current(i) && (l.used[i].load(Ordering::Relaxed) || !in_walked(k));
            if keep && !fresh(k) {
                all.push((k, &e.cached));
            }
        }
        all.extend(new.iter().map(|(k, c)| (k.as_bytes(), c)));
        all.sort_by(|a, b| a.0.cmp(b.0));
        let mut buf = Vec::with_capacity(16 + all.len() * 104);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&(all.len() as u64).to_le_bytes());
        for (k, c) in all {
            encode(&mut buf, k, c);
        }
        let tmp = file.with_extension(format!("tmp{}", std::process::id()));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&buf)?;
        drop(f);
        std::fs::rename(&tmp, file)?;
        match std::fs::remove_file(journal_path(file)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

fn encode(buf: &mut Vec<u8>, key: &[u8], c: &Cached) {
    buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
    buf.extend_from_slice(key);
    buf.extend_from_slice(&c.size.to_le_bytes());
    buf.extend_from_slice(&c.mtime_ns.to_le_bytes());
    buf.extend_from_slice(&c.ctime_ns.to_le_bytes());
    buf.extend_from_slice(&c.ino.to_le_bytes());
    buf.extend_from_slice(&c.mode.to_le_bytes());
    buf.extend_from_slice(&c.hash);
    buf.extend_from_slice(&c.written_ns.to_le_bytes());
}

fn record_at(b: &[u8], at: &mut usize) -> Option<OldEntry> {
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let s = b.get(*at..*at + n)?;
        *at += n;
        Some(s)
    };
    let u64_ = |at: &mut usize| -> Option<u64> { Some(u64::from_le_bytes(take(at, 8)?.try_into().ok()?)) };
    let key_len = u32::from_le_bytes(take(at, 4)?.try_into().ok()?) as usize;
    let key_at = *at;
    std::str::from_utf8(take(at, key_len)?).ok()?;
    let size = u64_(at)?;
    let mtime_ns = u64_(at)? as i64;
    let ctime_ns = u64_(at)? as i64;
    let ino = u64_(at)?;
    let mode = u32::from_le_bytes(take(at, 4)?.try_into().ok()?);
    let hash: [u8; 32] = take(at, 32)?.try_into().ok()?;
    let written_ns = u64_(at)? as i64;
    Some(OldEntry { key_at, key_len, cached: Cached { size, mtime_ns, ctime_ns, ino, mode, hash, written_ns } })
}

/// The main file's entries (from `start`: a count, then exactly that many records), or None if it is not
/// whole.
fn decode(b: &[u8], start: usize) -> Option<Vec<OldEntry>> {
    let mut at = start;
    let n = u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?) as usize;
    at += 8;
    let mut out = Vec::with_capacity(n.min(b.len() / 88 + 1));
    for _ in 0..n {
        out.push(record_at(b, &mut at)?);
    }
    (at == b.len()).then_some(out)
}

/// The journal's whole records from `start`, and where they end.
fn decode_journal(b: &[u8], start: usize) -> (Vec<OldEntry>, usize) {
    let mut out = Vec::new();
    let mut at = start;
    loop {
        let mut next = at;
        match record_at(b, &mut next) {
            Some(e) => {
                out.push(e);
                at = next;
            }
            None => return (out, at),
        }
    }
}

/// An OS error without the "(os error N)" suffix.
fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(ctx: &Path, n: usize) {
        std::fs::create_dir_all(ctx).unwrap();
        for i in 0..n {
            std::fs::write(ctx.join(format!("f{i}")), format!("file {i}")).unwrap();
        }
    }

    fn hashed(ctx: &Path, cache_file: &Path) -> (usize, Vec<HashedFile>) {
        let cache = StatCache::open(cache_file);
        let c = hash_context(ctx, "ctx", &cache).unwrap();
        cache.save().unwrap();
        (c.hashed, c.files)
    }

    #[test]
    fn stat_cache_main_file_journal_and_stale_entries() {
        let d = tempfile::tempdir().unwrap();
        let ctx = d.path().join("ctx");
        let cache = d.path().join(".pipeline/stat-cache");
        files(&ctx, 100);
        // Files written before the cache: trusted on the next run.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (n, first) = hashed(&ctx, &cache);
        assert_eq!(n, 100);
        assert!(cache.exists() && !journal_path(&cache).exists(), "100 new entries go to the main file");
        let (n, again) = hashed(&ctx, &cache);
        assert_eq!((n, &again), (0, &first));
        // One changed file: hashed again, appended to the journal, then answered from it.
        std::fs::write(ctx.join("f7"), "changed!").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (n, changed) = hashed(&ctx, &cache);
        assert_eq!(n, 1);
        assert_ne!(changed, first);
        assert!(journal_path(&cache).exists());
        let (n, same) = hashed(&ctx, &cache);
        assert_eq!((n, &same), (0, &changed));
        // A deleted file leaves a stale entry: the main file is rewritten and the journal folded in.
        std::fs::remove_file(ctx.join("f3")).unwrap();
        let (n, _) = hashed(&ctx, &cache);
        assert_eq!(n, 0);
        assert!(!journal_path(&cache).exists());
        let (n, fewer) = hashed(&ctx, &cache);
        assert_eq!((n, fewer.len()), (0, 99));
        // A torn append (a crash mid-write) ends the journal early and makes the next save a rewrite.
        std::fs::write(ctx.join("f8"), "changed too").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(hashed(&ctx, &cache).0, 1);
        let mut j = std::fs::OpenOptions::new().append(true).open(journal_path(&cache)).unwrap();
        j.write_all(&[7, 0, 0]).unwrap();
        drop(j);
        std::fs::write(ctx.join("f9"), "changed three").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(hashed(&ctx, &cache).0, 1);
        assert!(!journal_path(&cache).exists(), "rewritten, not appended after the torn record");
        assert_eq!(hashed(&ctx, &cache).0, 0);
        // A corrupt cache is an empty one.
        std::fs::write(&cache, b"garbage").unwrap();
        assert_eq!(hashed(&ctx, &cache).0, 99);
    }

    #[test]
    fn files_modified_after_their_entry_was_written_are_hashed_again() {
        let d = tempfile::tempdir().unwrap();
        let ctx = d.path().join("ctx");
        let cache = d.path().join("cache");
        files(&ctx, 3);
        // Give a file an mtime in the future: its entry can never be trusted (the racy-git rule).
        let future = filetime::FileTime::from_unix_time(4_000_000_000, 0);
        filetime::set_file_mtime(ctx.join("f1"), future).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(hashed(&ctx, &cache).0, 3);
        assert_eq!(hashed(&ctx, &cache).0, 1);
    }
}
