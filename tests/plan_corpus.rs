//! Plan golden tests: every case folder under `tests/plan/{ok,fail}` and every example under `examples/`
//! is planned by the real `pipeline` binary (offline: no registry is asked; live state from the case's
//! `live.json` when present) and the output compared with the expected files.
//! `UPDATE_EXPECT=1 cargo test --test plan_corpus` rewrites them (review the diff).
//!
//! A case folder holds `pipeline.nix` and whatever it builds from, and optionally `live.json` (what the
//! target runs), `secrets.env` (a `--secrets` file; its values must never appear in any output) and
//! `args` (extra command-line arguments, one per line).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn cases(dir: &str) -> Vec<PathBuf> {
    let d = root().join("tests/plan").join(dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap_or_else(|e| panic!("reading {}: {e}", d.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("pipeline.nix").is_file())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no cases in {}", d.display());
    out
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn pipeline(dir: &Path, args: &[String], envs: &[(String, String)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline"));
    cmd.args(args).current_dir(dir).env("NO_COLOR", "1").env_remove("COLUMNS");
    for (k, _) in std::env::vars() {
        if k.starts_with("PIPELINE_SECRET_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run pipeline");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The plan command for a case: offline, with its live state, secrets and extra args.
fn plan_args(dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["plan", "--offline", "--detailed-exitcode"].iter().map(|s| s.to_string()).collect();
    if dir.join("live.json").is_file() {
        a.extend(["--live-state".into(), "live.json".into()]);
    }
    if dir.join("secrets.env").is_file() {
        a.extend(["--secrets".into(), "secrets.env".into()]);
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("args")) {
        a.extend(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string));
    }
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn secret_values(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("secrets.env"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(_, v)| v.trim().trim_matches(['"', '\'']).to_string()))
        .filter(|v| v.len() >= 4)
        .collect()
}

fn update() -> bool {
    std::env::var_os("UPDATE_EXPECT").is_some()
}

fn expect(path: &Path, actual: &str, failures: &mut Vec<String>) {
    if update() {
        std::fs::write(path, actual).expect("write expected file");
        return;
    }
    match std::fs::read_to_string(path) {
        Ok(want) if want == actual => {}
        Ok(want) => {
            failures.push(format!("{}: output differs\n--- expected\n{want}\n--- actual\n{actual}", path.display()))
        }
        Err(_) => failures.push(format!("missing {} (run with UPDATE_EXPECT=1)", path.display())),
    }
}

fn transcript(r: &Run) -> String {
    let mut s = format!("exit: {}\n{}", r.code, r.stdout);
    if !r.stderr.is_empty() {
        s.push_str("--- stderr\n");
        s.push_str(&r.stderr);
    }
    s
}

fn check_no_secrets(dir: &Path, outputs: &[&str], failures: &mut Vec<String>) {
    for v in secret_values(dir) {
        for o in outputs {
            if o.contains(&v) {
                failures.push(format!("{}: a secret value appears in the output", dir.display()));
            }
        }
    }
}

fn report(failures: Vec<String>, total: usize) {
    if !failures.is_empty() {
        panic!("{} of {total} checks failed:\n\n{}", failures.len(), failures.join("\n\n"));
    }
}

/// Plan a case or example as text and JSON, check both and that no secret leaks.
fn plan_case(dir: &Path, txt: &Path, json: &Path, envs: &[(String, String)], failures: &mut Vec<String>) {
    let text = pipeline(dir, &plan_args(dir, &[]), envs);
    let js = pipeline(dir, &plan_args(dir, &["--json"]), envs);
    if !(text.code == 0 || text.code == 2) {
        failures.push(format!("{}: plan failed:\n{}", dir.display(), text.stderr));
        return;
    }
    if js.code != text.code {
        failures.push(format!("{}: --json exited {} but text exited {}", dir.display(), js.code, text.code));
    }
    match serde_json::from_str::<serde_json::Value>(&js.stdout) {
        Ok(v) => {
            for field in ["format_version", "project", "environment", "stages", "summary", "warnings"] {
                if v.get(field).is_none() {
                    failures.push(format!("{}: --json lacks `{field}`", dir.display()));
                }
            }
        }
        Err(e) => failures.push(format!("{}: --json is not JSON: {e}", dir.display())),
    }
    check_no_secrets(dir, &[&text.stdout, &text.stderr, &js.stdout], failures);
    expect(txt, &transcript(&text), failures);
    expect(json, &js.stdout, failures);
}

#[test]
fn plans() {
    let mut failures = Vec::new();
    let all = cases("ok");
    for dir in &all {
        plan_case(dir, &dir.join("expected.txt"), &dir.join("expected.json"), &[], &mut failures);
    }
    report(failures, all.len());
}

#[test]
fn failures() {
    let mut failures = Vec::new();
    let all = cases("fail");
    for dir in &all {
        let r = pipeline(dir, &plan_args(dir, &[]), &[]);
        if r.code != 1 {
            failures.push(format!("{}: expected exit 1, got {}:\n{}{}", dir.display(), r.code, r.stdout, r.stderr));
            continue;
        }
        check_no_secrets(dir, &[&r.stdout, &r.stderr], &mut failures);
        expect(&dir.join("expected.err"), &transcript(&r), &mut failures);
    }
    report(failures, all.len());
}

/// The bundled examples plan cleanly; their plans and graphs are pinned too.
#[test]
fn examples() {
    let mut failures = Vec::new();
    let examples = root().join("examples");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&examples)
        .expect("examples")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("pipeline.nix").is_file())
        .collect();
    dirs.sort();
    let out = root().join("tests/plan/examples");
    for example in &dirs {
        let name = example.file_name().and_then(|n| n.to_str()).expect("example name").to_string();
        // The example's own pipeline.lock pins an image made on this machine (scripts/base-image): plan a
        // copy with a fixed lock instead, so the keys are the same on every machine.
        let copy = tempfile::tempdir().expect("tempdir");
        copy_example(example, copy.path());
        let lock = out.join(format!("{name}.lock"));
        std::fs::copy(&lock, copy.path().join("pipeline.lock")).unwrap_or_else(|e| panic!("{}: {e}", lock.display()));
        let dir = &copy.path().to_path_buf();
        let envs = vec![("PIPELINE_SECRET_DB_PASSWORD".to_string(), "example-only-password".to_string())];
        plan_case(dir, &out.join(format!("{name}.txt")), &out.join(format!("{name}.json")), &envs, &mut failures);
        for (format, ext) in [("text", "graph.txt"), ("dot", "dot"), ("mermaid", "mmd")] {
            let r = pipeline(dir, &["graph".into(), "--format".into(), format.into()], &envs);
            if r.code != 0 {
                failures.push(format!("{}: graph --format {format} failed:\n{}", dir.display(), r.stderr));
                continue;
            }
            expect(&out.join(format!("{name}.{ext}")), &r.stdout, &mut failures);
        }
    }
    report(failures, dirs.len());
}

/// Copy an example without what a run leaves in it (its lock, `.pipeline/`).
fn copy_example(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read example") {
        let e = e.expect("entry");
        let name = e.file_name();
        if name == "pipeline.lock" || name == ".pipeline" {
            continue;
        }
        if e.file_type().expect("type").is_dir() {
            copy_example(&e.path(), &to.join(&name));
        } else {
            std::fs::copy(e.path(), to.join(&name)).expect("copy");
        }
    }
}
