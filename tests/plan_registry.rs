//! `pipeline plan` against a real mirror registry (Debian's docker-registry on 127.0.0.1:5000, started by
//! `scripts/start-services`): an image that is not there is planned as a build; once an image with that
//! key is pushed (by the Docker engine), the same plan says `cached`, and a service with the same key
//! says `shared`; an unreachable registry is a warning and the builds stay planned.
//! Without a registry or engine the test says it was skipped, unless PIPELINE_REQUIRE_DOCKER=1.

use std::path::Path;
use std::process::Command;

mod support;
use support::services_up;

fn plan_json(dir: &Path, registry_override: Option<&str>) -> (i32, serde_json::Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline"));
    cmd.args(["plan", "--json", "--detailed-exitcode"]).current_dir(dir).env("NO_COLOR", "1");
    if let Some(r) = registry_override {
        cmd.args(["--argstr", "registry", r]);
    }
    let out = cmd.output().expect("run pipeline");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"));
    (out.status.code().unwrap_or(-1), v, stderr)
}

fn service<'a>(plan: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    plan["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .flat_map(|s| s["services"].as_array().expect("services").iter())
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no service {name} in {plan}"))
}

fn docker(args: &[&str], dir: &Path) {
    let out = Command::new("docker").args(args).current_dir(dir).output().expect("run docker");
    assert!(out.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn cache_hits_shared_keys_and_unreachable_registries() {
    if !services_up() {
        return;
    }
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path();
    let unique = format!(
        "plan-test-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.as_nanos()).unwrap_or(0)
    );
    // What this test builds and pushes goes when it ends.
    let _cleanup = support::RemoveImagesOnDrop(format!("{unique}/"));
    std::fs::create_dir(dir.join("app")).expect("mkdir");
    std::fs::write(dir.join("app/Dockerfile"), "FROM scratch\nCOPY hello.txt /hello.txt\n").expect("write");
    std::fs::write(dir.join("app/hello.txt"), format!("{unique}\n")).expect("write");
    std::fs::write(
        dir.join("pipeline.nix"),
        format!(
            r#"{{ registry ? "127.0.0.1:5000/{unique}" }}:
let std = import <std>; in
std.environment {{
  project = "regtest"; name = "ci"; inherit registry; target = std.docker {{ }};
  services = {{
    a = std.application {{ build.context = ./app; env.ONLY_AT_RUNTIME = "1"; }};
    b = std.application {{ build.context = ./app; }};
  }};
}}"#
        ),
    )
    .expect("write");

    // 1. Nothing pushed: `a` builds (first by name), `b` shares its image.
    let (code, p, stderr) = plan_json(dir, None);
    assert_eq!(code, 2, "changes expected: {stderr}");
    let a = service(&p, "a");
    assert_eq!(a["build"]["action"], "build", "{p}");
    assert_eq!(a["build"]["reason"], "not in the registry");
    assert_eq!(service(&p, "b")["build"]["action"], "shared");
    assert_eq!(service(&p, "b")["build"]["shared_with"], "a");
    assert!(p["warnings"].as_array().expect("warnings").is_empty(), "{p}");
    let image = a["build"]["image"].as_str().expect("image").to_string();
    assert!(image.starts_with(&format!("127.0.0.1:5000/{unique}/app:")), "{image}");

    // 2. Push an image under that tag, as apply will: now it is cached and nothing is built.
    docker(&["build", "-q", "-t", &image, "app"], dir);
    docker(&["push", &image], dir);
    let (_, p, _) = plan_json(dir, None);
    assert_eq!(service(&p, "a")["build"]["action"], "cached", "{p}");
    assert_eq!(service(&p, "b")["build"]["action"], "shared");
    assert_eq!(p["summary"]["build"], 0);
    assert_eq!(p["summary"]["cached"], 1);

    // 3. A changed file: a new key, not in the registry.
    std::fs::write(dir.join("app/hello.txt"), "changed\n").expect("write");
    let (_, p, _) = plan_json(dir, None);
    assert_eq!(service(&p, "a")["build"]["action"], "build");
    assert_ne!(service(&p, "a")["build"]["image"], image.as_str());

    // 4. An unreachable registry: a warning naming it, builds planned, exit still "changes".
    let (code, p, stderr) = plan_json(dir, Some("127.0.0.1:1/nothing"));
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(service(&p, "a")["build"]["action"], "build");
    assert_eq!(service(&p, "a")["build"]["reason"], "cache state unknown");
    let warnings = p["warnings"].to_string();
    assert!(warnings.contains("cache state unknown") && warnings.contains("127.0.0.1:1"), "{warnings}");
}
