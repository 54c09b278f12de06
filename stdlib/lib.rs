//! The standard library's source files, embedded so that `import <std>` works without any files
//! on disk. `default.nix` is the entry point; real Nix reads the same files with `-I std=./stdlib`.

/// Every file of the standard library: name relative to the library's folder, and its text.
pub const FILES: &[(&str, &str)] =
    &[("default.nix", include_str!("default.nix")), ("lib.nix", include_str!("lib.nix"))];
