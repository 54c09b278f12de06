//! The standard library is written in the language subset, so real Nix evaluates every definition too:
//! `nix-instantiate --eval --strict --json -I std=./stdlib FILE` must print the same JSON as
//! `pipeline eval --json FILE`, path values aside (Nix copies a path into its store, we print it where
//! it is; both are compared by their last component). Runs over the examples and the plan cases.
//! Without nix-instantiate the test says it was skipped, unless PIPELINE_REQUIRE_ORACLE is set.

#[path = "support/skip.rs"]
mod skip;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn definitions() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["examples", "tests/plan/ok"] {
        let d = root().join(dir);
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path().join("pipeline.nix");
            if p.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Replace every path (ours: absolute, inside the repository; Nix's: /nix/store/<hash>-<name>) by
/// `<path:NAME>`; other absolute strings such as `/dev/null` stay.
fn normalize(v: serde_json::Value, ours: bool) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            let is_path = if ours {
                s.starts_with(root().to_str().unwrap_or("/")) && Path::new(&s).exists()
            } else {
                s.starts_with("/nix/store/")
            };
            if is_path {
                let last = s.rsplit('/').next().unwrap_or("");
                let name = if ours { last } else { last.split_once('-').map_or(last, |(_, n)| n) };
                Value::String(format!("<path:{name}>"))
            } else {
                Value::String(s)
            }
        }
        Value::Array(a) => Value::Array(a.into_iter().map(|x| normalize(x, ours)).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, x)| (k, normalize(x, ours))).collect()),
        other => other,
    }
}

#[test]
fn nix_agrees_on_definitions() {
    if Command::new("nix-instantiate").arg("--version").output().is_err() {
        skip::skip(skip::ORACLE, "nix-instantiate is not installed (install nix-bin)");
        return;
    }
    let files = definitions();
    assert!(files.len() >= 3, "too few definitions: {files:?}");
    let mut failures = Vec::new();
    for f in &files {
        let dir = f.parent().expect("parent");
        let nix = Command::new("nix-instantiate")
            // Nix 2.8 only auto-calls a top-level function when given an argument (we always do).
            .args(["--eval", "--strict", "--json", "--argstr", "env", "staging", "-I"])
            .arg(format!("std={}", root().join("stdlib").display()))
            .arg(f)
            .current_dir(dir)
            .output()
            .expect("run nix-instantiate");
        let ours = Command::new(env!("CARGO_BIN_EXE_pipeline"))
            .args(["eval", "--json", "--argstr", "env", "staging"])
            .arg(f)
            .current_dir(dir)
            .output()
            .expect("run pipeline");
        if !nix.status.success() || !ours.status.success() {
            failures.push(format!(
                "{}: nix exit {:?}, pipeline exit {:?}\n{}\n{}",
                f.display(),
                nix.status.code(),
                ours.status.code(),
                String::from_utf8_lossy(&nix.stderr),
                String::from_utf8_lossy(&ours.stderr)
            ));
            continue;
        }
        let parse = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).expect("JSON output");
        let (n, o) = (normalize(parse(&nix.stdout), false), normalize(parse(&ours.stdout), true));
        if n != o {
            failures.push(format!("{}: outputs differ\n--- nix\n{n}\n--- pipeline\n{o}", f.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
