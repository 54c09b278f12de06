//! `pipeline status` golden cases: `tests/status/pipeline.nix` against what the target reports in each
//! case folder's `live.json` (all healthy, one unhealthy, one drifted, one removed from the definitions,
//! nothing deployed), as text and JSON with their exit codes. `UPDATE_EXPECT=1` rewrites the expected files.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/status")
}

fn run(case: &str, extra: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline"));
    cmd.args(["status", "--live-status"])
        .arg(format!("{case}/live.json"))
        .args(extra)
        .arg("pipeline.nix")
        .current_dir(root())
        .env("NO_COLOR", "1");
    for (k, _) in std::env::vars() {
        if k.starts_with("PIPELINE_SECRET_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("run pipeline");
    format!(
        "exit: {}\n{}{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        match String::from_utf8_lossy(&out.stderr).as_ref() {
            "" => String::new(),
            e => format!("--- stderr\n{e}"),
        }
    )
}

fn expect(path: &Path, actual: &str, failures: &mut Vec<String>) {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        assert!(std::env::var_os("CI").is_none(), "UPDATE_EXPECT is refused under CI");
        std::fs::write(path, actual).expect("write expected");
        return;
    }
    let want = std::fs::read_to_string(path).unwrap_or_default();
    if want != actual {
        failures.push(format!("{}:\n--- expected\n{want}\n--- actual\n{actual}", path.display()));
    }
}

#[test]
fn status_cases() {
    let cases = ["healthy", "unhealthy", "drifted", "removed", "nothing"];
    let mut failures = Vec::new();
    for case in cases {
        let dir = root().join(case);
        expect(&dir.join("expected.txt"), &run(case, &["--secrets", "secrets.env"]), &mut failures);
        expect(&dir.join("expected.json"), &run(case, &["--secrets", "secrets.env", "--json"]), &mut failures);
    }
    // Without the secrets' values: everything but the secrets is compared, and it says so.
    expect(&root().join("healthy/expected.nosecrets.txt"), &run("healthy", &[]), &mut failures);
    assert!(
        failures.is_empty(),
        "{} of {} outputs differ:\n{}",
        failures.len(),
        cases.len() * 2 + 1,
        failures.join("\n")
    );
}

#[test]
fn exit_codes_say_whether_everything_is_healthy_and_at_its_definitions() {
    let code = |case: &str| run(case, &["--secrets", "secrets.env"]).lines().next().unwrap_or_default().to_string();
    assert_eq!(code("healthy"), "exit: 0");
    for case in ["unhealthy", "drifted", "removed", "nothing"] {
        assert_eq!(code(case), "exit: 2", "{case}");
    }
}
