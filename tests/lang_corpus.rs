//! The language corpus: every file under `tests/lang/{parse-ok,parse-fail,eval-ok,eval-fail}` is run
//! through the real `pipeline` binary and its output compared with the expected file beside it.
//! `UPDATE_EXPECT=1 cargo test --test lang_corpus` rewrites the expected files (review the diff).
//! The `eval-ok/*.json` files are nix-instantiate's own output (`tests/lang/regen-oracle.sh`), so
//! they are never rewritten here.

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lang").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("reading {}: {e}", root.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "nix"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", root.display());
    files
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn pipeline(args: &[&str], file: &Path) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(args)
        .arg(file.file_name().expect("file name"))
        .current_dir(file.parent().expect("parent"))
        .env("NO_COLOR", "1")
        .env_remove("COLUMNS")
        .output()
        .expect("run pipeline");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn update() -> bool {
    let update = std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1");
    assert!(
        !update || std::env::var_os("CI").is_none(),
        "UPDATE_EXPECT is refused under CI: expected files are rewritten on a developer machine and reviewed, never by the run that checks them"
    );
    update
}

/// Compare with the expected file (or write it under UPDATE_EXPECT); returns a failure message.
fn expect(file: &Path, ext: &str, actual: &str, writable: bool) -> Option<String> {
    let exp_path = file.with_extension(ext);
    if update() && writable {
        std::fs::write(&exp_path, actual).expect("write expected file");
        return None;
    }
    match std::fs::read_to_string(&exp_path) {
        Ok(want) if want == actual => None,
        Ok(want) => Some(format!(
            "{}: output differs from {}\n--- expected\n{want}\n--- actual\n{actual}",
            file.display(),
            exp_path.display()
        )),
        Err(_) => Some(format!("{}: missing {} (run with UPDATE_EXPECT=1)", file.display(), exp_path.display())),
    }
}

fn report(failures: Vec<String>, total: usize) {
    if !failures.is_empty() {
        panic!("{} of {total} cases failed:\n\n{}", failures.len(), failures.join("\n\n"));
    }
}

#[test]
fn parse_ok() {
    let files = corpus("parse-ok");
    let mut failures = Vec::new();
    for f in &files {
        let r = pipeline(&["parse"], f);
        if r.code != 0 {
            failures.push(format!("{}: expected to parse, got:\n{}", f.display(), r.stderr));
            continue;
        }
        failures.extend(expect(f, "ast", &r.stdout, true));
    }
    report(failures, files.len());
}

/// Every case in `dir` must fail with exit 1, without panicking, and print the expected diagnostic.
fn failing_corpus(dir: &str, args: &[&str]) {
    let files = corpus(dir);
    let mut failures = Vec::new();
    for f in &files {
        let r = pipeline(args, f);
        if r.code != 1 {
            failures.push(format!("{}: expected exit 1, got {}:\n{}{}", f.display(), r.code, r.stdout, r.stderr));
            continue;
        }
        if r.stderr.contains("panicked") {
            failures.push(format!("{}: panicked:\n{}", f.display(), r.stderr));
            continue;
        }
        failures.extend(expect(f, "err", &r.stderr, true));
    }
    report(failures, files.len());
}

#[test]
fn parse_fail() {
    failing_corpus("parse-fail", &["check"]);
}

#[test]
fn eval_ok() {
    let files = corpus("eval-ok");
    let mut failures = Vec::new();
    for f in &files {
        let r = pipeline(&["eval", "--json"], f);
        if r.code != 0 {
            failures.push(format!("{}: expected success, got exit {}:\n{}", f.display(), r.code, r.stderr));
            continue;
        }
        failures.extend(expect(f, "json", &r.stdout, false));
    }
    report(failures, files.len());
}

#[test]
fn eval_fail() {
    failing_corpus("eval-fail", &["eval"]);
}
