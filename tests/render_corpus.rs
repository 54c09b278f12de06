//! `pipeline render` golden tests: every case folder under `tests/render` (a `pipeline.nix`, optionally a
//! `secrets.env`) is rendered by the real binary and compared with its `expected.yaml`.
//! `UPDATE_EXPECT=1 cargo test --test render_corpus` rewrites them (review the diff). CI also validates
//! every `expected.yaml` against the Kubernetes OpenAPI schemas with `kubernetes-validate`
//! (`scripts/validate-manifests`), so what is compared here is also what a cluster accepts.

use std::path::{Path, PathBuf};
use std::process::Command;

fn cases() -> Vec<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/render");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&d)
        .unwrap_or_else(|e| panic!("reading {}: {e}", d.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.join("pipeline.nix").is_file())
        .collect();
    out.sort();
    assert!(out.len() >= 4, "render cases missing in {}", d.display());
    out
}

fn render(dir: &Path, extra: &[&str]) -> (i32, String, String) {
    let secrets: &[&str] = if dir.join("secrets.env").is_file() { &["--secrets", "secrets.env"] } else { &[] };
    render_with(dir, &[extra, secrets].concat(), &[])
}

/// Render with exactly these flags and `PIPELINE_SECRET_*` variables (no others).
fn render_with(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline"));
    cmd.arg("render").args(args).current_dir(dir).env("NO_COLOR", "1");
    // Registry credentials only from the case's own `docker-config/` (a folder that does not exist reads
    // as none): the machine's `~/.docker/config.json` never changes what is rendered.
    cmd.env("DOCKER_CONFIG", dir.join("docker-config"));
    for (k, _) in std::env::vars() {
        if k.starts_with("PIPELINE_SECRET_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(vars.iter().copied());
    let out = cmd.output().expect("run pipeline");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The values of a case's `secrets.env`.
fn secret_values(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("secrets.env"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(_, v)| v.trim().to_string()))
        .filter(|v| !v.is_empty())
        .collect()
}

fn base64(s: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn render_matches_the_golden_manifests() {
    let update = std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1");
    assert!(
        !update || std::env::var_os("CI").is_none(),
        "UPDATE_EXPECT is refused under CI: expected files are rewritten on a developer machine and reviewed, never by the run that checks them"
    );
    let mut failures = Vec::new();
    for dir in cases() {
        let (code, stdout, stderr) = render(&dir, &[]);
        assert_eq!(code, 0, "{}: render failed: {stderr}", dir.display());
        let expected = dir.join("expected.yaml");
        if update {
            std::fs::write(&expected, &stdout).expect("write expected.yaml");
            continue;
        }
        match std::fs::read_to_string(&expected) {
            Ok(e) if e == stdout => {}
            Ok(e) => {
                let first = e.lines().zip(stdout.lines()).position(|(a, b)| a != b).unwrap_or(0);
                failures.push(format!(
                    "{}: differs from expected.yaml from line {} (UPDATE_EXPECT=1 rewrites it):\n  expected: {:?}\n  actual:   {:?}",
                    dir.display(),
                    first + 1,
                    e.lines().nth(first),
                    stdout.lines().nth(first)
                ));
            }
            Err(_) => failures.push(format!("{}: no expected.yaml (run with UPDATE_EXPECT=1)", dir.display())),
        }
        // Same input, same bytes.
        assert_eq!(render(&dir, &[]).1, stdout, "{}: a second render differs", dir.display());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn secret_values_appear_only_with_show_secrets() {
    let mut seen = 0;
    for dir in cases() {
        let values = secret_values(&dir);
        let (_, hidden, stderr) = render(&dir, &[]);
        let (code, shown, _) = render(&dir, &["--show-secrets"]);
        assert_eq!(code, 0);
        for v in &values {
            seen += 1;
            for out in [&hidden, &stderr] {
                assert!(
                    !out.contains(v.as_str()) && !out.contains(&base64(v)),
                    "{}: secret value in render output",
                    dir.display()
                );
            }
            assert!(shown.contains(&format!(": {}\n", base64(v))), "{}: --show-secrets lacks {v:?}", dir.display());
            assert!(!shown.contains(v.as_str()), "{}: a value in plain text (Secret data is base64)", dir.display());
        }
        if !values.is_empty() {
            assert!(stderr.contains("--show-secrets"), "{}: no note that values are hidden: {stderr}", dir.display());
            assert!(hidden.contains("pipeline.dev/values: hidden"), "{}", dir.display());
        }
    }
    assert!(seen >= 3, "the cases have too few secrets to test this");
}

/// Issue 16: a GitOps or CI render step has no secrets. Without `--show-secrets`, render needs no
/// value, and what it prints (the spec annotations, the spec hash, a Job's name) is the same whatever
/// the values are: no fingerprint of a value can be read from it.
#[test]
fn render_needs_no_secret_values_and_prints_nothing_derived_from_them() {
    let mut checked = 0;
    for dir in cases() {
        let (code, with_file, _) = render(&dir, &[]);
        assert_eq!(code, 0);
        let (code, without, stderr) = render_with(&dir, &[], &[]);
        assert_eq!(code, 0, "{}: render without secret values failed: {stderr}", dir.display());
        assert_eq!(without, with_file, "{}: the output depends on whether values were given", dir.display());
        assert!(!without.contains("fingerprint"), "{}: a fingerprint in the output", dir.display());
        let vars = [
            ("PIPELINE_SECRET_API_TOKEN", "one value"),
            ("PIPELINE_SECRET_DB_PASSWORD", "one value"),
            ("PIPELINE_SECRET_SMTP", "one value"),
        ];
        let other = vars.map(|(k, _)| (k, "another value"));
        assert_eq!(render_with(&dir, &[], &vars).1, render_with(&dir, &[], &other).1, "{}", dir.display());
        if !secret_values(&dir).is_empty() {
            checked += 1;
            // Showing the values still needs them, and says which is missing.
            let (code, _, stderr) = render_with(&dir, &["--show-secrets"], &[]);
            assert_eq!(code, 1, "{}", dir.display());
            assert!(stderr.contains("no value for secret"), "{stderr}");
        }
    }
    assert!(checked >= 3, "the cases have too few secrets to test this");
}

#[test]
fn render_of_a_docker_environment_names_the_namespace_it_uses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/shop");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline"));
    let out = cmd
        .args(["render", "pipeline.nix"])
        .current_dir(&dir)
        .env("PIPELINE_SECRET_DB_PASSWORD", "example-only-password")
        .output()
        .expect("run pipeline");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("these manifests use the namespace `shop-staging`"), "{stderr}");
    assert!(stdout.starts_with("---\napiVersion: v1\nkind: Namespace\n"), "{stdout}");
}

#[test]
fn the_mirror_login_reaches_the_pull_secret_only_with_show_secrets() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/render/pull-secret");
    let (_, hidden, _) = render(&dir, &[]);
    let (code, shown, _) = render(&dir, &["--show-secrets"]);
    assert_eq!(code, 0);
    for out in [&hidden, &shown] {
        assert_eq!(out.matches("- name: pipeline-registry").count(), 2, "both workloads pull with it: {out}");
    }
    // `.dockerconfigjson` is base64 of `{"auths":{"registry.example.com":{"auth":…,"password":…,"username":…}}}`.
    assert!(!hidden.contains("s3cret-pull-token") && !hidden.contains(&base64("s3cret-pull-token")), "{hidden}");
    let config = r#"{"auths":{"registry.example.com":{"auth":"Y2ktYm90OnMzY3JldC1wdWxsLXRva2Vu","password":"s3cret-pull-token","username":"ci-bot"}}}"#;
    assert!(shown.contains(&format!(".dockerconfigjson: {}", base64(config))), "{shown}");
    // Without credentials for the mirror, no case gets it.
    let (_, plain, _) = render(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/render/container"), &[]);
    assert!(!plain.contains("pipeline-registry"));
}
