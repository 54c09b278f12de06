//! The evaluator's only way to the outside world: reading files and reporting `builtins.trace`.
//! Tests and embedders supply their own implementation; [`FsIo`] is the real filesystem plus
//! files embedded in the binary (the standard library).

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Directory,
    Other,
}

pub trait EvalIo {
    fn read_to_string(&self, path: &Path) -> io::Result<String>;
    /// What is at `path`, following symlinks.
    fn file_kind(&self, path: &Path) -> io::Result<FileKind>;
    /// The path with symlinks resolved.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
    /// A message from `builtins.trace`.
    fn trace(&self, message: &str);
}

/// The real filesystem, with an overlay of in-memory files (checked first).
#[derive(Default)]
pub struct FsIo {
    overlay: HashMap<PathBuf, &'static str>,
    dirs: Vec<PathBuf>,
}

impl FsIo {
    /// Serve `files` (relative names) from memory under the folder `dir`.
    pub fn with_embedded(mut self, dir: &Path, files: &[(&str, &'static str)]) -> FsIo {
        for (name, text) in files {
            self.overlay.insert(dir.join(name), text);
        }
        self.dirs.push(dir.to_path_buf());
        self
    }

    fn embedded_dir(&self, path: &Path) -> bool {
        self.dirs.iter().any(|d| d == path)
    }
}

impl EvalIo for FsIo {
    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        if let Some(text) = self.overlay.get(path) {
            return Ok((*text).to_string());
        }
        if self.dirs.iter().any(|d| path.starts_with(d)) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such file in the embedded standard library"));
        }
        std::fs::read_to_string(path)
    }

    fn file_kind(&self, path: &Path) -> io::Result<FileKind> {
        if self.overlay.contains_key(path) {
            return Ok(FileKind::File);
        }
        if self.embedded_dir(path) {
            return Ok(FileKind::Directory);
        }
        if self.dirs.iter().any(|d| path.starts_with(d)) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such file in the embedded standard library"));
        }
        let m = std::fs::metadata(path)?;
        Ok(if m.is_dir() {
            FileKind::Directory
        } else if m.is_file() {
            FileKind::File
        } else {
            FileKind::Other
        })
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        if self.dirs.iter().any(|d| path.starts_with(d)) {
            return Ok(path.to_path_buf());
        }
        std::fs::canonicalize(path)
    }

    fn trace(&self, message: &str) {
        eprintln!("trace: {message}");
    }
}

/// In-memory files only: for tests and fuzzing.
#[derive(Default)]
pub struct MemoryIo {
    pub files: HashMap<PathBuf, String>,
    pub traces: std::cell::RefCell<Vec<String>>,
}

impl EvalIo for MemoryIo {
    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        self.files.get(path).cloned().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "not found"))
    }

    fn file_kind(&self, path: &Path) -> io::Result<FileKind> {
        if self.files.contains_key(path) {
            Ok(FileKind::File)
        } else if self.files.keys().any(|k| k.starts_with(path)) {
            Ok(FileKind::Directory)
        } else {
            Err(io::Error::new(io::ErrorKind::NotFound, "not found"))
        }
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        Ok(path.to_path_buf())
    }

    fn trace(&self, message: &str) {
        self.traces.borrow_mut().push(message.to_string());
    }
}
