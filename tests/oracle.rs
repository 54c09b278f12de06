//! Differential tests against the real Nix evaluator: for expressions of the subset,
//! `nix-instantiate --eval --strict --json` and `pipeline eval --json` must print the same JSON.
//!
//! - every `tests/lang/eval-ok` case, re-run through a live nix-instantiate;
//! - at least 1,000 randomly generated well-typed expressions per run (seed printed; set
//!   `ORACLE_SEED` to replay one), batched into files of 250 to keep process spawns low;
//! - randomly generated failing expressions: both must refuse them.
//!
//! Without nix-instantiate these tests say they were skipped, unless `PIPELINE_REQUIRE_ORACLE`
//! is set (as `scripts/test` and CI do), in which case its absence is a failure.

#[path = "support/skip.rs"]
mod skip;

#[path = "oracle/gen.rs"]
#[allow(dead_code)]
mod generator;

use std::path::{Path, PathBuf};
use std::process::Command;

fn nix_available() -> bool {
    let found = Command::new("nix-instantiate").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        skip::skip(skip::ORACLE, "nix-instantiate is not installed (install nix-bin to run the oracle tests)");
    }
    found
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl From<std::process::Output> for Out {
    fn from(o: std::process::Output) -> Out {
        Out {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).trim_end().to_string(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Why an evaluation failed, coarsely: the file does not parse, or it parses and evaluation fails.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    Syntax,
    Evaluation,
}

impl Out {
    fn nix_failure(&self) -> Failure {
        // Nix's parser also rejects duplicate formals (parser.y, `addFormal`) and out-of-range literals
        // (lexer.l), without saying "syntax error".
        let parser = [
            "error: syntax error",
            "error: duplicate formal function argument",
            "error: invalid integer",
            "error: invalid float",
        ];
        if parser.iter().any(|m| self.stderr.contains(m)) { Failure::Syntax } else { Failure::Evaluation }
    }
    fn our_failure(&self) -> Failure {
        if self.stderr.contains("pipeline::syntax") { Failure::Syntax } else { Failure::Evaluation }
    }
}

fn nix(file: &Path, extra: &[&str]) -> Out {
    let o = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json"])
        .args(extra)
        .arg(file)
        .output()
        .expect("run nix-instantiate");
    Out::from(o)
}

fn ours(file: &Path) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["eval", "--json"])
        .arg(file)
        .env("NO_COLOR", "1")
        .output()
        .expect("run pipeline");
    Out::from(o)
}

/// A scratch folder of this test's own (tests in this file run in parallel).
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pipeline-oracle-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn eval_ok_corpus_agrees_with_live_nix() {
    if !nix_available() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lang/eval-ok");
    let mut failures = Vec::new();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("eval-ok dir") {
        let file = entry.expect("entry").path();
        if file.extension().is_none_or(|x| x != "nix") {
            continue;
        }
        n += 1;
        // nix-instantiate calls a top-level function only when given some argument.
        let name = file.file_name().and_then(|f| f.to_str()).unwrap_or_default();
        let extra: &[&str] = if name.starts_with("toplevel-fn-") { &["--arg", "__autoCall", "null"] } else { &[] };
        let (a, b) = (nix(&file, extra), ours(&file));
        if !a.ok || !b.ok || a.stdout != b.stdout {
            failures.push(format!(
                "{}\n  nix:      {} {}\n  pipeline: {} {}",
                file.display(),
                a.stdout,
                a.stderr.trim(),
                b.stdout,
                b.stderr.trim()
            ));
        }
    }
    assert!(n >= 100, "expected the eval-ok corpus, found {n} files");
    assert!(failures.is_empty(), "{} of {n} disagree:\n{}", failures.len(), failures.join("\n"));
}

/// The failing corpora fail in Nix too (`parse-fail` already in `nix-instantiate --parse`, `eval-fail` in
/// `--eval --strict`), and every `parse-ok` case parses in Nix; except pipeline's own rules, named here.
#[test]
fn the_corpora_expectations_hold_in_nix() {
    if !nix_available() {
        return;
    }
    const OURS_ONLY: [(&str, &str); 5] = [
        ("op-int-overflow.nix", "integer overflow is an error, as in current Nix; Nix 2.8 (here) wraps"),
        ("op-int-overflow-builtins.nix", "integer overflow is an error, as in current Nix; Nix 2.8 (here) wraps"),
        ("outside-root-dotdot.nix", "imports stay inside --root, a rule Nix does not have"),
        ("outside-root-symlink.nix", "imports stay inside --root, symlinks included; Nix has no such rule"),
        ("toplevel-fn-required-arg.nix", "pipeline calls a top-level function; nix-instantiate prints <LAMBDA>"),
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lang");
    let mut failures = Vec::new();
    let mut n = 0;
    for (corpus, extra, should_pass) in [
        ("parse-fail", ["--parse"].as_slice(), false),
        ("eval-fail", ["--eval", "--strict"].as_slice(), false),
        ("parse-ok", ["--parse"].as_slice(), true),
    ] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(corpus))
            .expect("corpus dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| f.extension().is_some_and(|x| x == "nix"))
            .collect();
        files.sort();
        for file in files {
            let name = file.file_name().and_then(|f| f.to_str()).unwrap_or_default();
            if OURS_ONLY.iter().any(|(f, _)| *f == name) {
                continue;
            }
            n += 1;
            let o = Command::new("nix-instantiate").args(extra).arg(&file).output().expect("run nix-instantiate");
            if o.status.success() != should_pass {
                failures.push(format!(
                    "{corpus}/{name}: nix-instantiate {} {}: {}",
                    extra.join(" "),
                    if should_pass { "fails" } else { "succeeds" },
                    String::from_utf8_lossy(&o.stderr).lines().next().unwrap_or("").trim()
                ));
            }
        }
    }
    assert!(n >= 150, "expected the parse and failure corpora, found {n} files");
    assert!(failures.is_empty(), "{} of {n} expectations do not hold in Nix:\n{}", failures.len(), failures.join("\n"));
}

fn seed() -> u64 {
    match std::env::var("ORACLE_SEED") {
        Ok(s) => s.parse().expect("ORACLE_SEED is a number"),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64),
    }
}

#[test]
fn random_expressions_agree_with_nix() {
    if !nix_available() {
        return;
    }
    const TOTAL: usize = 1000;
    const BATCH: usize = 250;
    let seed = seed();
    eprintln!("random_expressions_agree_with_nix: ORACLE_SEED={seed}");
    let mut rng = generator::Rng::new(seed);
    let exprs: Vec<String> = (0..TOTAL).map(|i| generator::gen_expr(&mut rng, 1 + (i % 6) as u32)).collect();
    let dir = scratch("random");
    let mut failures = Vec::new();
    for (b, chunk) in exprs.chunks(BATCH).enumerate() {
        let file = dir.join(format!("batch-{b}.nix"));
        let body: String = chunk.iter().map(|e| format!("  ({e})\n")).collect();
        std::fs::write(&file, format!("[\n{body}]\n")).expect("write batch");
        let (a, o) = (nix(&file, &[]), ours(&file));
        assert!(a.ok, "ORACLE_SEED={seed}: nix rejected generated batch {}: {}", file.display(), a.stderr);
        if o.ok && a.stdout == o.stdout {
            continue;
        }
        // Find the expressions that differ, one by one.
        let found = failures.len();
        for e in chunk {
            let one = dir.join("one.nix");
            std::fs::write(&one, e).expect("write expression");
            let (a, o) = (nix(&one, &[]), ours(&one));
            if !o.ok || a.stdout != o.stdout {
                failures.push(format!(
                    "{e}\n  nix:      {}\n  pipeline: {} {}",
                    a.stdout,
                    o.stdout,
                    o.stderr.lines().find(|l| l.contains('×')).unwrap_or("").trim()
                ));
            }
        }
        if failures.len() == found {
            // Each agrees alone, the batch does not: an interaction (shared state, a cache, output framing)
            // is a disagreement too. The batch file is kept to reproduce it.
            failures.push(format!(
                "batch {} disagrees with nix although each of its {} expressions agrees alone\n  nix:      {}\n  pipeline: {} {}",
                file.display(),
                chunk.len(),
                a.stdout.chars().take(400).collect::<String>(),
                o.stdout.chars().take(400).collect::<String>(),
                o.stderr.lines().find(|l| l.contains('×')).unwrap_or("").trim()
            ));
        }
    }
    if failures.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    assert!(
        failures.is_empty(),
        "ORACLE_SEED={seed}: {} of {TOTAL} generated expressions disagree:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn random_failing_expressions_fail_in_both() {
    if !nix_available() {
        return;
    }
    const TOTAL: usize = 60;
    let seed = seed() ^ 0x9e37_79b9_7f4a_7c15;
    eprintln!("random_failing_expressions_fail_in_both: ORACLE_SEED={seed}");
    let mut rng = generator::Rng::new(seed);
    let dir = scratch("failing");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let mut failures = Vec::new();
    for i in 0..TOTAL {
        let e = generator::gen_failing_expr(&mut rng, 1 + (i % 4) as u32);
        let file = dir.join("f.nix");
        std::fs::write(&file, &e).expect("write expression");
        let (a, o) = (nix(&file, &[]), ours(&file));
        assert!(!a.ok, "generator bug: nix accepted a failing expression: {e}");
        if o.ok {
            failures.push(format!("{e}\n  pipeline printed {}", o.stdout));
        } else if o.stderr.contains("panicked") {
            failures.push(format!("{e}\n  pipeline panicked: {}", o.stderr));
        } else if a.nix_failure() != o.our_failure() {
            failures.push(format!(
                "{e}\n  fails for another kind of reason: nix {:?} ({}), pipeline {:?} ({})",
                a.nix_failure(),
                a.stderr.lines().next().unwrap_or("").trim(),
                o.our_failure(),
                o.stderr.lines().find(|l| l.contains('×')).unwrap_or("").trim()
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        failures.is_empty(),
        "ORACLE_SEED={seed}: {} accepted by pipeline, or failing for another kind of reason:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
