//! The build context walk: the regular files and symlinks the Docker CLI would send for a context
//! directory and its `.dockerignore`, with the metadata the planner hashes and caches by.
//!
//! The rules are the CLI's (`archive.TarWithOptions`): symlinks are listed, never followed (their
//! target text is read); an excluded directory is skipped whole when
//! [`Dockerignore::can_skip_dir`] allows it, otherwise it is descended and each entry is matched on
//! its own; excluded files are dropped; sockets, fifos and devices are left out (Docker sends fifos
//! and devices but `COPY` of them is never what a build wants). Directories themselves are not listed.
//!
//! Directories are read in parallel (rayon); each entry costs one `file_type` (free from `readdir` on
//! most file systems) and, when kept, one `lstat` relative to the open directory. The result is sorted
//! by path bytes, so it does not depend on listing order or scheduling.
//!
//! Unlike the CLI, the walk does not open files to check they are readable; a file that cannot be read
//! shows up when it is hashed.

use crate::dockerignore::{Dockerignore, MatchInfo};
use miette::Diagnostic;
use rayon::slice::ParallelSliceMut;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a context entry is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file; `executable` when any of its `x` bits is set.
    File { executable: bool },
    /// A symbolic link and its target, as written (not resolved).
    Symlink { target: String },
}

/// `lstat` data of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Meta {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub ino: u64,
    pub mode: u32,
    pub dev: u64,
}

/// One file or symlink of the build context.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// Relative to the context root, `/`-separated, never starting with `./`.
    pub path: String,
    pub kind: EntryKind,
    pub meta: Meta,
}

/// Why the context could not be listed.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum WalkError {
    #[error("cannot read `{}` in the build context: {source}", path.display())]
    #[diagnostic(
        code(pipeline::walk::io),
        help("check that it exists and is readable (Docker could not send it either), or exclude it in .dockerignore")
    )]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the name `{}` in the build context is not valid UTF-8", path.display())]
    #[diagnostic(
        code(pipeline::walk::not_utf8),
        help("rename it; .dockerignore patterns and build keys work on UTF-8 paths only")
    )]
    NotUtf8 { path: PathBuf },
    #[error("the target of the symlink `{}` in the build context is not valid UTF-8", path.display())]
    #[diagnostic(
        code(pipeline::walk::target_not_utf8),
        help("point the symlink at a UTF-8 path, or exclude it in .dockerignore")
    )]
    TargetNotUtf8 { path: PathBuf },
}

impl WalkError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            WalkError::Io { path, .. } | WalkError::NotUtf8 { path } | WalkError::TargetNotUtf8 { path } => path,
        }
    }
}

/// Lists what Docker would send from the context `root` given `ignore`, sorted by path.
pub fn walk(root: &Path, ignore: &Dockerignore) -> Result<Vec<Entry>, WalkError> {
    let root_meta = fs::metadata(root).map_err(|source| WalkError::Io { path: root.to_owned(), source })?;
    if !root_meta.is_dir() {
        let source = io::Error::new(io::ErrorKind::NotADirectory, "the build context must be a directory");
        return Err(WalkError::Io { path: root.to_owned(), source });
    }
    // How many bytes of an entry's path spell the root and the separator after it.
    let prefix = root.join("x").as_os_str().len() - 1;
    let state = State {
        ignore,
        prefix,
        batches: Mutex::new(Vec::new()),
        error: Mutex::new(None),
        failed: AtomicBool::new(false),
    };
    rayon::scope(|scope| visit(scope, &state, root.to_owned(), MatchInfo::default()));
    if let Some(err) = state.error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(err);
    }
    let batches = state.batches.into_inner().unwrap_or_else(|e| e.into_inner());
    let mut entries = Vec::with_capacity(batches.iter().map(Vec::len).sum());
    for batch in batches {
        entries.extend(batch);
    }
    entries.par_sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

struct State<'a> {
    ignore: &'a Dockerignore,
    prefix: usize,
    /// One batch per directory, in no particular order.
    batches: Mutex<Vec<Vec<Entry>>>,
    error: Mutex<Option<WalkError>>,
    failed: AtomicBool,
}

impl State<'_> {
    /// Keeps the error with the smallest path, so that the report does not depend on scheduling
    /// more than it must.
    fn fail(&self, err: WalkError) {
        self.failed.store(true, Ordering::Relaxed);
        let mut slot = self.error.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_none_or(|old| err.path() < old.path()) {
            *slot = Some(err);
        }
    }
}

fn visit<'s>(scope: &rayon::Scope<'s>, state: &'s State<'s>, dir: PathBuf, info: MatchInfo) {
    if state.failed.load(Ordering::Relaxed) {
        return;
    }
    match read_dir(scope, state, &dir, &info) {
        Ok(batch) if batch.is_empty() => {}
        Ok(batch) => state.batches.lock().unwrap_or_else(|e| e.into_inner()).push(batch),
        Err(err) => state.fail(err),
    }
}

/// The kept files and symlinks directly in `dir`; subdirectories that are not skipped are spawned.
fn read_dir<'s>(
    scope: &rayon::Scope<'s>,
    state: &'s State<'s>,
    dir: &Path,
    info: &MatchInfo,
) -> Result<Vec<Entry>, WalkError> {
    let mut batch = Vec::new();
    for dirent in fs::read_dir(dir).map_err(io_err(dir))? {
        let dirent = dirent.map_err(io_err(dir))?;
        let file_type = dirent.file_type().map_err(|source| WalkError::Io { path: dirent.path(), source })?;
        if !(file_type.is_file() || file_type.is_symlink() || file_type.is_dir()) {
            continue;
        }
        let mut full = dirent.path().into_os_string().into_vec();
        let Some(rel) = full.get(state.prefix..).and_then(|r| std::str::from_utf8(r).ok()) else {
            return Err(WalkError::NotUtf8 { path: PathBuf::from(OsString::from_vec(full)) });
        };
        if file_type.is_dir() {
            let (excluded, dir_info) = state.ignore.match_dir(rel, info);
            if !(excluded && state.ignore.can_skip_dir(rel)) {
                let sub = PathBuf::from(OsString::from_vec(full));
                scope.spawn(move |scope| visit(scope, state, sub, dir_info));
            }
            continue;
        }
        if state.ignore.excludes_in(rel, info) {
            continue;
        }
        let meta = dirent.metadata().map_err(|source| WalkError::Io { path: dirent.path(), source })?;
        let kind = if meta.file_type().is_symlink() {
            let path = Path::new(OsStr::from_bytes(&full));
            let target = fs::read_link(path).map_err(io_err(path))?;
            let target = target
                .into_os_string()
                .into_string()
                .map_err(|_| WalkError::TargetNotUtf8 { path: path.to_owned() })?;
            EntryKind::Symlink { target }
        } else if meta.is_file() {
            EntryKind::File { executable: meta.mode() & 0o111 != 0 }
        } else {
            // Replaced by something else since `readdir`.
            continue;
        };
        full.drain(..state.prefix);
        let path = String::from_utf8(full)
            .map_err(|e| WalkError::NotUtf8 { path: PathBuf::from(OsString::from_vec(e.into_bytes())) })?;
        batch.push(Entry { path, kind, meta: Meta::from(&meta) });
    }
    Ok(batch)
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalkError + '_ {
    move |source| WalkError::Io { path: path.to_owned(), source }
}

impl From<&fs::Metadata> for Meta {
    fn from(m: &fs::Metadata) -> Self {
        let ns = |secs: i64, nsecs: i64| secs.saturating_mul(1_000_000_000).saturating_add(nsecs);
        Meta {
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
            mode: m.mode(),
            dev: m.dev(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in files {
            let p = dir.path().join(f);
            if let Some(stripped) = f.strip_suffix('/') {
                fs::create_dir_all(dir.path().join(stripped)).expect("mkdir");
                continue;
            }
            fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            fs::write(&p, f.as_bytes()).expect("write");
        }
        dir
    }

    fn paths(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn lists_sorted_with_pruning() {
        let dir = tree(&["a.txt", "a/b", "a0", "d/keep", "d/drop", "e/x", "empty/", "skip/deep/file"]);
        let ignore = Dockerignore::parse("d\n!d/keep\ne\nskip\n").expect("parse");
        let got = walk(dir.path(), &ignore).expect("walk");
        assert_eq!(paths(&got), ["a.txt", "a/b", "a0", "d/keep"]);
        assert!(matches!(got[0].kind, EntryKind::File { executable: false }));
        assert_eq!(got[0].meta.size, 5);
    }

    #[test]
    fn symlinks_executables_and_other_types() {
        let dir = tree(&["sub/f", "run.sh"]);
        let root = dir.path();
        fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o750)).expect("chmod");
        symlink("sub", root.join("to-dir")).expect("symlink");
        symlink("nowhere", root.join("dangling")).expect("symlink");
        let _listener = std::os::unix::net::UnixListener::bind(root.join("sock")).expect("socket");
        let got = walk(root, &Dockerignore::default()).expect("walk");
        assert_eq!(paths(&got), ["dangling", "run.sh", "sub/f", "to-dir"]);
        assert_eq!(got[0].kind, EntryKind::Symlink { target: "nowhere".to_owned() });
        assert_eq!(got[1].kind, EntryKind::File { executable: true });
        assert_eq!(got[3].kind, EntryKind::Symlink { target: "sub".to_owned() });
    }

    #[test]
    fn root_spelled_with_trailing_slash() {
        let dir = tree(&["x/y"]);
        let spelled = PathBuf::from(format!("{}/", dir.path().display()));
        let got = walk(&spelled, &Dockerignore::default()).expect("walk");
        assert_eq!(paths(&got), ["x/y"]);
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tree(&["f"]);
        let missing = dir.path().join("missing");
        match walk(&missing, &Dockerignore::default()) {
            Err(err @ WalkError::Io { .. }) => {
                assert_eq!(err.path(), missing);
                assert!(err.to_string().contains("missing"));
                assert!(err.help().is_some());
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }
        assert!(matches!(walk(&dir.path().join("f"), &Dockerignore::default()), Err(WalkError::Io { .. })));

        let bad = dir.path().join(OsStr::from_bytes(b"bad-\xff"));
        fs::write(&bad, b"").expect("write");
        match walk(dir.path(), &Dockerignore::default()) {
            Err(err @ WalkError::NotUtf8 { .. }) => assert_eq!(err.path(), bad),
            other => panic!("expected a UTF-8 error, got {other:?}"),
        }
    }
}
