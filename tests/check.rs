//! `pipeline check` as the CI lint (issue 16): it runs every validation `plan` runs that needs no
//! registry, engine, cluster or secret value, and reports every problem, not just the first. Also the
//! smaller first-hour messages: an environment-level typo, `--color` in `--help`, `hash --files`.

use std::path::Path;
use std::process::{Command, Output};

fn pipeline(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("COLUMNS")
        .output()
        .expect("run pipeline")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A project folder with `app/` (a Dockerfile) and the given `pipeline.nix`.
fn project(definition: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(d.path().join("app")).expect("mkdir");
    std::fs::write(d.path().join("app/Dockerfile"), "FROM scratch\nARG TARGETS\nFROM scratch AS final\nCOPY . /\n")
        .expect("write");
    std::fs::write(d.path().join("pipeline.nix"), definition).expect("write");
    d
}

const HEAD: &str = "let std = import <std>; in std.environment {\n  project = \"p\"; name = \"e\"; \
                    registry = \"127.0.0.1:5000/p\"; target = std.docker { };\n";

/// Issue 16, item 1: each of these printed `pipeline.nix: ok` and exited 0, and `plan` rejected them.
#[test]
fn check_reports_every_problem_plan_would_find_offline() {
    let d = project(&format!(
        "{HEAD}  parallelsm = 2;\n  services = {{\n\
         \x20   app = std.application {{ build.context = ./app; prots = [ 8080 ]; replicas = \"2\"; dependsOn = [ \"cahce\" ]; }};\n\
         \x20   cache = std.container {{ image = \"busybox:1\"; ports = 8080; }};\n\
         \x20   web = std.application {{ build.context = ./nope; }};\n\
         \x20   worker = std.application {{ build.context = ./app; build.dockerfile = ./app/Missing; }};\n\
         \x20   tools = std.application {{ build.context = ./app; build.target = \"fnal\"; }};\n\
         \x20 }};\n}}\n"
    ));
    let o = pipeline(d.path(), &["check"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for want in [
        "unknown field `parallelsm` in the environment",
        "help: did you mean `parallelism`?",
        "unknown field `services.app.prots` in an application service",
        "`services.app.replicas` should be an integer, but it is a string",
        "`services.cache.ports` should be a list of port numbers, but it is an integer",
        "service `app` depends on `cahce`, which is not a service",
        "build context `nope` cannot be read",
        "cannot read Dockerfile `app/Missing` of service `worker`",
        "has no stage `fnal` (build.target of `tools`)",
        "pipeline.nix: 8 problems found",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(!err.contains(": ok"), "{err}");
    assert!(o.stdout.is_empty(), "diagnostics go to stderr only");

    // `plan` rejects the same definition, listing the model's problems together.
    let o = pipeline(d.path(), &["plan", "--offline"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("unknown field `parallelsm`") && err.contains("`services.cache.ports` should be"), "{err}");
}

#[test]
fn check_passes_a_valid_environment_and_says_what_it_checked() {
    let d = project(&format!(
        "{HEAD}  services.app = std.application {{ build.context = ./app; build.target = \"final\"; dependsOn = [ \"db\" ]; }};\n\
         \x20 services.db = std.database {{ image = \"postgres:16\"; volume = \"/data\"; }};\n}}\n"
    ));
    let o = pipeline(d.path(), &["check"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("pipeline.nix: ok: 2 services in 4 stages, 1 build keyed"), "{err}");
    // No secret value is needed, and nothing is written beside the definitions.
    assert!(!d.path().join(".pipeline").exists());
}

#[test]
fn check_of_a_file_that_is_not_an_environment_only_evaluates_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = pipeline(root, &["check", "tests/lang/eval-ok/attrs-inherit.nix"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("ok (evaluated; not an environment"), "{err}");
}

/// Issue 16, item 8: the root of the definition is not part of a field's path.
#[test]
fn an_environment_level_typo_names_the_field_alone() {
    let d = project(&format!("{HEAD}  parallelsm = 2;\n  services = {{ }};\n}}\n"));
    let o = pipeline(d.path(), &["plan", "--offline"]);
    let err = text(&o.stderr);
    assert!(err.contains("unknown field `parallelsm` in the environment"), "{err}");
    assert!(!err.contains("the definition."), "{err}");
}

/// Issue 16, item 8: `--color` is listed apart from the command's options, not between `--arg` and
/// `--argstr`.
#[test]
fn help_lists_color_under_global_options() {
    let o = pipeline(Path::new(env!("CARGO_MANIFEST_DIR")), &["plan", "--help"]);
    let help = text(&o.stdout);
    let (options, global) = help.split_once("Global options:").expect("a Global options section");
    assert!(global.contains("--color"), "{help}");
    assert!(!options.contains("--color"), "{help}");
    let arg = options.find("--arg <NAME>").expect("--arg");
    let argstr = options.find("--argstr").expect("--argstr");
    assert!(arg < argstr, "{help}");
}

/// Issue 16, item 8: `hash --files` shows every input of the key, target and platform included.
#[test]
fn hash_files_shows_dockerfile_target_and_platform() {
    let d = project(&format!(
        "{HEAD}  services.app = std.application {{ build = {{ context = ./app; target = \"final\"; platform = \"linux/arm64\"; }}; }};\n}}\n"
    ));
    let o = pipeline(d.path(), &["hash", "app", "--files"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(out.contains("dockerfile  Dockerfile (relative to the context)"), "{out}");
    assert!(out.contains("target      final\n"), "{out}");
    assert!(out.contains("platform    linux/arm64\n"), "{out}");
    let o = pipeline(d.path(), &["hash", "app", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["target"], "final");
    assert_eq!(v["platform"], "linux/arm64");
}

/// The language's `or`-as-a-variable warning reaches the user (Nix accepts the form).
#[test]
fn eval_warns_about_or_used_as_a_variable() {
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::write(d.path().join("f.nix"), "let or = 1; in [ (x: x) or ]\n").expect("write");
    let o = pipeline(d.path(), &["eval", "--json", "f.nix"]);
    assert_eq!(text(&o.stdout), "[1]\n");
    let err = text(&o.stderr);
    assert!(err.contains("pipeline::deprecated") && err.contains("`or` used as a variable name"), "{err}");
    assert!(err.contains("f.nix:1:25"), "{err}");
}
