//! The command line as users drive it: arguments, attribute selection, exit codes, errors.

use std::path::Path;
use std::process::{Command, Output};

fn pipeline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .env("NO_COLOR", "1")
        .output()
        .expect("run pipeline")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn argstr_reaches_the_top_level_function() {
    let o = pipeline(&["eval", "examples/shop/pipeline.nix", "--argstr", "env", "production", "--attr", "name"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "\"production\"\n");
}

#[test]
fn arg_takes_an_expression_and_defaults_apply_without_it() {
    let o = pipeline(&["eval", "examples/shop/pipeline.nix", "--arg", "env", "\"qa\" + \"-1\"", "--attr", "name"]);
    assert_eq!(text(&o.stdout), "\"qa-1\"\n", "{}", text(&o.stderr));
    let o = pipeline(&["eval", "examples/shop/pipeline.nix", "--attr", "name"]);
    assert_eq!(text(&o.stdout), "\"staging\"\n", "{}", text(&o.stderr));
}

#[test]
fn attr_selects_json_and_suggests_on_a_typo() {
    let o = pipeline(&["eval", "examples/shop/pipeline.nix", "--json", "--attr", "services.web.ports"]);
    assert_eq!(text(&o.stdout), "[80]\n", "{}", text(&o.stderr));
    let o = pipeline(&["eval", "examples/shop/pipeline.nix", "--attr", "services.wbe"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("attribute `wbe`") && err.contains("did you mean `web`?"), "{err}");
}

#[test]
fn check_exits_zero_on_valid_definitions_and_one_on_errors() {
    let o = pipeline(&["check", "examples/minimal/pipeline.nix"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = pipeline(&["check", "tests/lang/eval-fail/throw.nix"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("tests/lang/eval-fail/throw.nix:2:1"), "{}", text(&o.stderr));
    assert!(o.stdout.is_empty(), "diagnostics go to stderr only");
}

#[test]
fn a_missing_definition_file_is_a_clear_error() {
    let o = pipeline(&["eval", "no/such/pipeline.nix"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("definition file `no/such/pipeline.nix` not found"), "{err}");
}

#[test]
fn bad_usage_exits_two() {
    let o = pipeline(&["eval", "--no-such-flag"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn no_color_when_not_a_terminal_even_if_asked_auto() {
    let o = pipeline(&["eval", "tests/lang/eval-fail/throw.nix"]);
    assert!(!text(&o.stderr).contains('\u{1b}'), "escape codes in non-terminal output");
    let o = pipeline(&["--color", "always", "eval", "tests/lang/eval-fail/throw.nix"]);
    assert!(text(&o.stderr).contains('\u{1b}'), "--color always must colour");
}

/// An engine that cannot be reached: `apply`, `destroy` and `plan` (which reads what runs) name the
/// endpoint and say what to do; `plan --offline` does not need the engine.
/// The commands that talk to the target, on the bundled example.
const SHOP_COMMANDS: [&[&str]; 3] = [
    &["apply", "examples/shop/pipeline.nix", "--yes"],
    &["destroy", "examples/shop/pipeline.nix", "--yes"],
    &["plan", "examples/shop/pipeline.nix"],
];

/// Run pipeline at the repository root with these variables (and a secret for the example).
fn in_repo(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline"));
    cmd.args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .env("NO_COLOR", "1")
        .env("PIPELINE_SECRET_DB_PASSWORD", "x");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run pipeline")
}

#[test]
fn an_unreachable_engine_is_named() {
    let run = |args: &[&str]| in_repo(args, &[("DOCKER_HOST", "tcp://127.0.0.1:9".as_ref())]);
    for args in SHOP_COMMANDS {
        let o = run(args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("cannot reach the Docker engine at tcp://127.0.0.1:9"), "{args:?}: {err}");
        assert!(err.contains("DOCKER_HOST"), "{args:?}: the hint is missing: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let o = run(&["plan", "examples/shop/pipeline.nix", "--offline"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

/// A Kubernetes target whose API server is down, or a kubeconfig context that does not exist, is named with
/// a hint by `plan`, `apply` and `destroy` (regression: the TLS set-up once panicked before any request).
#[test]
fn an_unreachable_cluster_or_unknown_context_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster: {server: 'https://127.0.0.1:9'}\n\
         contexts:\n- name: dead\n  context: {cluster: dead, user: u}\ncurrent-context: dead\nusers:\n- name: u\n  user: {token: t}\n",
    )
    .expect("write kubeconfig");
    let run = |args: &[&str]| {
        let args: Vec<&str> = args.iter().copied().chain(["--argstr", "target", "kubernetes"]).collect();
        in_repo(&args, &[("KUBECONFIG", kubeconfig.as_os_str())])
    };
    for args in SHOP_COMMANDS {
        let o = run(args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("the Kubernetes API server https://127.0.0.1:9/ cannot be reached"), "{args:?}: {err}");
        assert!(err.contains("kubectl get namespaces"), "{args:?}: the hint is missing: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let o = run(&["plan", "examples/shop/pipeline.nix", "--context", "prod"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot load the Kubernetes configuration for context `prod`"), "{err}");
    let o = run(&["plan", "examples/shop/pipeline.nix", "--offline"]);
    assert!(o.status.success(), "--offline asks no cluster: {}", text(&o.stderr));
}

/// `apply` without `--yes` and without a terminal refuses, after showing the plan; `--json` needs `--yes`.
#[test]
fn apply_needs_confirmation_or_yes() {
    let o = pipeline(&["apply", "examples/shop/pipeline.nix", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("pass `--yes` too"), "{}", text(&o.stderr));
}

/// A build context that holds the definitions keeps pipeline's own `.pipeline/` folder (stat cache, logs,
/// durations) out of the key: planning twice gives the same key, and the file list does not name it.
#[test]
fn the_state_folder_never_enters_a_build_key() {
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY . /\n").expect("write");
    std::fs::write(
        dir.join("pipeline.nix"),
        "let std = import <std>; in std.environment { project = \"p\"; name = \"e\"; registry = \"127.0.0.1:5000/p\";\n  target = std.docker { }; services.app = std.application { build.context = ./.; }; }\n",
    )
    .expect("write");
    let hash = || {
        let o = Command::new(env!("CARGO_BIN_EXE_pipeline"))
            .args(["hash", "app", "--files"])
            .current_dir(dir)
            .output()
            .expect("run pipeline");
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    };
    let first = hash();
    std::fs::create_dir_all(dir.join(".pipeline/logs/run1")).expect("mkdir");
    std::fs::write(dir.join(".pipeline/logs/run1/app.log"), "a log\n").expect("write");
    let second = hash();
    assert_eq!(first, second);
    assert!(!second.contains(".pipeline"), "{second}");
    assert!(second.contains("pipeline.nix") && second.contains("Dockerfile"), "{second}");
}
