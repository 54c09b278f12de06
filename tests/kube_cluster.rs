//! The full example on a real Kubernetes cluster. Ignored by default, so that `cargo test` reports it
//! as not run (with the reason) rather than as passed; with KUBECONFIG pointing at a cluster, run it
//! with `cargo test --test kube_cluster -- --ignored` (scripts/test does). Asked to run without
//! KUBECONFIG, or without the registry and engine, it fails.
//!
//! It applies `examples/shop` with `--argstr target kubernetes` into the namespace `shop-<env>` (a fresh
//! env per run): images are built here and pushed to the mirror (`PIPELINE_IT_REGISTRY`, default
//! `127.0.0.1:5000/shop`, which the cluster must be able to pull from; see README for kind and k3d), and
//! `web` runs `PIPELINE_IT_WEB_IMAGE` (default `busybox:1.36`, pulled by the cluster). Then it plans again
//! (nothing may change: live state and the object diff agree with what was applied), applies again
//! ("Nothing to do"), and destroys the environment.

mod support;

use std::process::{Command, Output};

fn var(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

/// The test is asked for: a missing cluster or registry is a failure, not a skip.
fn require_cluster() {
    assert!(
        std::env::var_os("KUBECONFIG").is_some_and(|k| !k.is_empty()),
        "the real-cluster test needs KUBECONFIG to point at a cluster (README, \"Running the real-cluster test\", says how to make one with kind or k3d)"
    );
    assert!(
        support::services_up(),
        "the real-cluster test needs the registry and Docker engine (scripts/start-services)"
    );
}

fn pipeline(args: &[&str], env: &str, extra: &[&str]) -> Output {
    let root = env!("CARGO_MANIFEST_DIR");
    let registry = var("PIPELINE_IT_REGISTRY", "127.0.0.1:5000/shop");
    let web = var("PIPELINE_IT_WEB_IMAGE", "busybox:1.36");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline"));
    cmd.args(args)
        .arg(format!("{root}/examples/shop/pipeline.nix"))
        .args(["--argstr", "env", env, "--argstr", "target", "kubernetes"])
        .args(["--argstr", "registry", &registry, "--argstr", "webImage", &web])
        .args(extra)
        .env("PIPELINE_SECRET_DB_PASSWORD", "cluster-test-password")
        .env("NO_COLOR", "1");
    let out = cmd.output().expect("run pipeline");
    eprintln!(
        "$ pipeline {} (exit {:?})\n{}{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
#[ignore = "needs a real Kubernetes cluster: with KUBECONFIG set, run `cargo test --test kube_cluster -- --ignored` (scripts/test does)"]
fn the_full_example_applies_replans_to_nothing_updates_and_destroys() {
    require_cluster();
    let env = format!("it{}", std::process::id());
    let applied = pipeline(&["apply", "--yes", "--timeout", "600"], &env, &[]);
    assert_eq!(applied.status.code(), Some(0), "apply failed");

    let replanned = pipeline(&["plan", "--detailed-exitcode"], &env, &[]);
    assert_eq!(replanned.status.code(), Some(0), "a plan right after apply must have nothing to do");

    let again = pipeline(&["apply", "--yes"], &env, &[]);
    assert_eq!(again.status.code(), Some(0), "a second apply failed");
    assert!(String::from_utf8_lossy(&again.stderr).contains("Nothing to do"));

    let destroyed = pipeline(&["destroy", "--yes", "--volumes"], &env, &[]);
    assert_eq!(destroyed.status.code(), Some(0), "destroy failed");
    let after = pipeline(&["plan", "--json"], &env, &[]);
    assert_eq!(after.status.code(), Some(0), "plan after destroy failed");
    let plan: serde_json::Value = serde_json::from_slice(&after.stdout).expect("plan JSON");
    assert_eq!(plan["summary"]["unchanged"], 0, "everything is gone after destroy");
}
