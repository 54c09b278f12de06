//! The hashing benchmark's baseline: a bare parallel walk that `lstat`s every entry of a tree and does
//! nothing else (no ignore rules, no sorting, no hashing). `cargo run --release --example statwalk DIR`.

use rayon::prelude::*;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

fn walk(dir: &Path, count: &AtomicU64) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let entries: Vec<_> = rd.filter_map(Result::ok).collect();
    entries.par_iter().for_each(|e| {
        let p = e.path();
        if let Ok(m) = std::fs::symlink_metadata(&p) {
            count.fetch_add(1, Ordering::Relaxed);
            if m.is_dir() {
                walk(&p, count);
            }
        }
    });
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let count = AtomicU64::new(0);
    walk(Path::new(&dir), &count);
    println!("{} entries", count.load(Ordering::Relaxed));
}
