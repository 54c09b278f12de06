//! Pinned inputs against the real registry on 127.0.0.1:5000 and the real engine: `pipeline.lock`, base
//! images in the build key, a deployed image's digest in its spec, and a reason for every rebuild read
//! from the mirror (so it works from a fresh clone). Each test pushes its own base images under a
//! project of its own. Without an engine or registry the tests say they were skipped, unless
//! PIPELINE_REQUIRE_DOCKER=1.

use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

const REGISTRY: &str = "127.0.0.1:5000";

/// The engine and registry are up, and the base image exists.
fn services_up() -> bool {
    support::services_and_base_image_up()
}

fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{prefix}{}x{}", std::process::id() % 100_000, t % 1_000_000_000)
}

fn docker(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write as _;
    let mut cmd = Command::new("docker");
    cmd.args(args).env("DOCKER_BUILDKIT", "0");
    cmd.stdin(if stdin.is_some() { std::process::Stdio::piped() } else { std::process::Stdio::null() });
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("run docker");
    if let Some(text) = stdin {
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for docker");
    assert!(out.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Build `image` (FROM the examples' base, with `/version` holding `version`) and push it to the mirror,
/// under the same tag each time: a base image republished with a fix.
fn publish(image: &str, version: &str) {
    let dockerfile = format!("FROM {REGISTRY}/pipeline-examples/busybox:1\nRUN echo {version} > /version\n");
    docker(&["build", "-q", "-t", image, "-"], Some(&dockerfile));
    docker(&["push", image], None);
}

/// A project in a temporary folder: an application `app` built FROM `base`, a container `web` running
/// `web` as it is, and the mirror under the project's name.
struct Project {
    dir: tempfile::TempDir,
    name: String,
    base: String,
    web: String,
    envs: std::cell::RefCell<Vec<(PathBuf, String)>>,
}

impl Project {
    fn new(prefix: &str) -> Project {
        let name = unique(prefix);
        let base = format!("{REGISTRY}/{name}-bases/base:1");
        let web = format!("{REGISTRY}/{name}-bases/web:1");
        let p = Project { dir: tempfile::tempdir().expect("tempdir"), name, base, web, envs: Default::default() };
        p.write_sources(p.path());
        p
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write_sources(&self, root: &Path) {
        let def = format!(
            r#"{{ env ? "staging", version ? "1" }}:
let std = import <std>; in
std.environment {{
  project = "{project}";
  name = env;
  registry = "{REGISTRY}/{project}";
  target = std.docker {{ }};
  services = {{
    app = std.application {{
      build = {{ context = ./app; args.VERSION = version; }};
      command = [ "sh" "-c" "trap 'exit 0' TERM; sleep 3600 & wait" ];
    }};
    web = std.container {{
      image = "{web}";
      command = [ "sh" "-c" "trap 'exit 0' TERM; sleep 3600 & wait" ];
    }};
  }};
}}
"#,
            project = self.name,
            web = self.web
        );
        write(root, "pipeline.nix", &def);
        write(
            root,
            "app/Dockerfile",
            &format!("FROM {}\nARG VERSION\nCOPY . /app\nRUN echo $VERSION > /app/version\n", self.base),
        );
        write(root, "app/main.sh", "echo main\n");
        write(root, "app/lib.sh", "echo lib\n");
    }

    fn run_in(&self, dir: &Path, args: &[&str], env: &str) -> Output {
        if !self.envs.borrow().iter().any(|(d, e)| d == dir && e == env) {
            self.envs.borrow_mut().push((dir.to_path_buf(), env.to_string()));
        }
        Command::new(env!("CARGO_BIN_EXE_pipeline"))
            .args(args)
            .arg(dir.join("pipeline.nix"))
            .args(["--argstr", "env", env])
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run pipeline")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_in(self.path(), args, "staging")
    }

    fn plan_json_in(&self, dir: &Path, extra: &[&str], env: &str) -> Json {
        let mut args = vec!["plan", "--json"];
        args.extend_from_slice(extra);
        let out = self.run_in(dir, &args, env);
        assert_eq!(out.status.code(), Some(0), "plan failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("plan JSON")
    }

    fn plan_json(&self) -> Json {
        self.plan_json_in(self.path(), &[], "staging")
    }

    fn apply_in(&self, dir: &Path, env: &str) -> Json {
        let out = self.run_in(dir, &["apply", "--yes", "--json"], env);
        assert_eq!(out.status.code(), Some(0), "apply failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("apply JSON")
    }

    fn apply(&self) -> Json {
        self.apply_in(self.path(), "staging")
    }

    fn lock_text(&self) -> String {
        std::fs::read_to_string(self.path().join("pipeline.lock")).unwrap_or_default()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        for (dir, env) in self.envs.borrow().iter() {
            let _ = Command::new(env!("CARGO_BIN_EXE_pipeline"))
                .args(["destroy", "--yes", "--volumes"])
                .arg(dir.join("pipeline.nix"))
                .args(["--argstr", "env", env])
                .output();
        }
        // The images this test built and pushed: the project's and its bases, in the engine and the registry.
        support::remove_images(&format!("{}/", self.name));
        support::remove_images(&format!("{}-bases/", self.name));
    }
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

fn service<'a>(plan: &'a Json, name: &str) -> &'a Json {
    plan["stages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|st| st["services"].as_array().into_iter().flatten())
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no service {name} in {plan}"))
}

/// stderr with the diagnostic's frame and line wrapping taken out: words separated by one space.
fn stderr(o: &Output) -> String {
    let text = String::from_utf8_lossy(&o.stderr).replace(['│', '×'], " ");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What `/version` says in an image.
fn version_in(image: &str) -> String {
    docker(&["run", "--rm", "--entrypoint", "cat", image, "/version"], None)
}

/// The image a service's first container runs, by id.
fn container_image(project: &str, service: &str) -> String {
    docker(&["inspect", "--format", "{{.Image}}", &format!("{project}-staging-{service}-1")], None)
}

fn image_id(image: &str) -> String {
    docker(&["image", "inspect", "--format", "{{.Id}}", image], None)
}

/// The issue's scenario: a base image republished under the same tag is not used until `pipeline lock
/// --update` moves the lock; then exactly the services using it are rebuilt or redeployed, from the new
/// digest. Before that, a rebuild still uses the old digest although this engine's copy of the tag is
/// the new one (no stale or moved tag is ever used).
#[test]
fn republished_base_moves_only_with_the_lock() {
    if !services_up() {
        return;
    }
    let p = Project::new("lk");
    publish(&p.base, "base-v1");
    publish(&p.web, "web-v1");
    let web_v1 = image_id(&p.web);

    let first = p.run(&["apply", "--yes", "--json"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(stderr(&first).contains("pipeline.lock: pinned"), "{}", stderr(&first));
    let lock = p.lock_text();
    assert!(lock.contains(&format!("\"{}\"", p.base)) && lock.contains(&format!("\"{}\"", p.web)), "{lock}");
    let plan = p.plan_json();
    let app_image = service(&plan, "app")["build"]["image"].as_str().expect("image").to_string();
    assert_eq!(version_in(&app_image), "base-v1");
    assert_eq!(container_image(&p.name, "web"), web_v1);
    let web_spec = service(&plan, "web")["spec"]["image"].as_str().expect("web image").to_string();
    assert!(web_spec.starts_with(&format!("{}@sha256:", p.web)), "{web_spec}");

    // Republished under the same tags; this engine's tags now name the new images.
    publish(&p.base, "base-v2");
    publish(&p.web, "web-v2");
    let plan = p.plan_json();
    assert_eq!(service(&plan, "app")["build"]["action"], "cached", "{plan}");
    assert_eq!(service(&plan, "app")["deploy"]["action"], "unchanged");
    assert_eq!(service(&plan, "web")["deploy"]["action"], "unchanged");
    assert_eq!(p.lock_text(), lock, "plan must never move an existing entry");

    // A file changes: rebuilt, still from the pinned (old) base.
    write(p.path(), "app/main.sh", "echo main 2\n");
    p.apply();
    let plan = p.plan_json();
    let rebuilt = service(&plan, "app")["build"]["image"].as_str().expect("image").to_string();
    assert_ne!(rebuilt, app_image);
    assert_eq!(version_in(&rebuilt), "base-v1", "built from the locked digest, not the engine's copy of the tag");

    // The lock moves: both digests move, and exactly these services change.
    let update = p.run(&["lock", "--update"]);
    assert_eq!(update.status.code(), Some(0), "{}", stderr(&update));
    let said = stdout(&update);
    for image in [&p.base, &p.web] {
        assert!(
            said.lines().any(|l| l.starts_with(&format!("{image} sha256:")) && l.contains(" -> sha256:")),
            "{said}"
        );
    }
    let plan = p.plan_json();
    let app = service(&plan, "app");
    assert_eq!(app["build"]["action"], "build", "{plan}");
    let changes = app["build"]["changes"].as_array().expect("changes");
    assert_eq!(changes.len(), 1, "only the base image changed: {changes:?}");
    assert_eq!(changes[0]["input"], "image");
    assert_eq!(changes[0]["reference"], p.base.as_str());
    assert!(app["build"]["reason"].as_str().unwrap_or("").contains("changed since the deployed image"), "{app}");
    let web = service(&plan, "web");
    assert_eq!(web["deploy"]["action"], "update");
    let paths: Vec<&str> =
        web["deploy"]["changes"].as_array().expect("changes").iter().filter_map(|c| c["path"].as_str()).collect();
    assert_eq!(paths, ["image"]);
    let text = stdout(&p.run(&["plan"]));
    assert!(text.contains(&format!("~ base image {} moved sha256:", p.base)), "{text}");

    p.apply();
    let plan = p.plan_json();
    let newest = service(&plan, "app")["build"]["image"].as_str().expect("image").to_string();
    assert_eq!(version_in(&newest), "base-v2");
    assert_eq!(container_image(&p.name, "web"), image_id(&p.web));
    assert_ne!(container_image(&p.name, "web"), web_v1);
}

/// On a fresh clone (no `.pipeline/`, nothing local), each changed input is named and nothing else:
/// one file, one build arg, the base image; with nothing deployed, the newest image built for the
/// service is compared. The text and JSON are pinned (keys and digests written as placeholders).
#[test]
fn reasons_on_a_fresh_clone() {
    if !services_up() {
        return;
    }
    let p = Project::new("rs");
    publish(&p.base, "base-v1");
    publish(&p.web, "web-v1");
    p.apply();

    // A fresh clone of the same repository, lock included.
    let clone = tempfile::tempdir().expect("tempdir");
    p.write_sources(clone.path());
    std::fs::copy(p.path().join("pipeline.lock"), clone.path().join("pipeline.lock")).expect("copy lock");
    let c = clone.path();
    let nothing = p.plan_json_in(c, &[], "staging");
    assert_eq!(nothing["summary"]["build"], 0, "the clone plans what is deployed: {nothing}");

    let mut golden = String::new();
    let mut json = Vec::new();
    let mut step = |title: &str, args: &[&str], env: &str, want: &[&str]| {
        let plan = p.plan_json_in(c, args, env);
        let app = service(&plan, "app");
        let inputs: Vec<&str> =
            app["build"]["changes"].as_array().into_iter().flatten().filter_map(|c| c["input"].as_str()).collect();
        assert_eq!(inputs, want, "{title}: {app}");
        let text = p.run_in(c, &["plan"].iter().chain(args).copied().collect::<Vec<_>>(), env);
        golden.push_str(&format!("== {title}\n{}", placeholders(&stdout(&text))));
        json.push(serde_json::json!({ "case": title, "build": app["build"] }));
    };
    write(c, "app/lib.sh", "echo lib changed\n");
    step("one file changed", &[], "staging", &["files"]);
    write(c, "app/lib.sh", "echo lib\n");
    step("one build arg changed", &["--argstr", "version", "2"], "staging", &["arg"]);
    publish(&p.base, "base-v2");
    let moved = p.run_in(c, &["lock", &format!("--update={}", p.base)], "staging");
    assert_eq!(moved.status.code(), Some(0), "{}", stderr(&moved));
    step("the base image moved", &[], "staging", &["image"]);
    // Nothing deployed in this environment: compared with the newest image built for `app`.
    step("nothing deployed, the newest build compared", &[], "review", &["image"]);

    let json = placeholders(&serde_json::to_string_pretty(&json).expect("json"));
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lock");
    support::expect_file(&dir.join("reasons.txt"), &golden);
    support::expect_file(&dir.join("reasons.json"), &format!("{json}\n"));
}

/// Keys, digests and the test's unique names replaced by placeholders, so a golden file holds.
fn placeholders(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let hex_run = rest.bytes().take_while(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()).count();
        if hex_run >= 12 {
            out.push_str(if hex_run == 64 { "<key>" } else { "<hex>" });
            rest = &rest[hex_run..];
            continue;
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    // The unique project name: letters, digits and `x`, after `rs`.
    let mut s = String::new();
    for word in out.split_inclusive(|c: char| !(c.is_ascii_alphanumeric())) {
        let core = word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
        if core.starts_with("rs") && core.contains('x') && core[2..].chars().all(|c| c.is_ascii_digit() || c == 'x') {
            s.push_str("<project>");
            s.push_str(&word[core.len()..]);
        } else {
            s.push_str(word);
        }
    }
    s
}

/// `--locked`, `--offline`, the registry's refusals and `lock --prune`, each with its file and line.
#[test]
fn locked_offline_and_registry_errors() {
    if !services_up() {
        return;
    }
    let p = Project::new("le");
    publish(&p.base, "base-v1");
    publish(&p.web, "web-v1");

    // --locked without a lock: an error naming where each image is used, and nothing written.
    let locked = p.run(&["plan", "--locked"]);
    assert_eq!(locked.status.code(), Some(1));
    let err = stderr(&locked);
    assert!(err.contains("pipeline::lock::missing") && err.contains("2 images are not pinned"), "{err}");
    assert!(err.contains("app/Dockerfile:1") && err.contains("pipeline.nix:"), "{err}");
    assert!(err.contains("run `pipeline lock`"), "{err}");
    assert!(!p.path().join("pipeline.lock").exists());

    // `pipeline lock` writes it; --locked then plans and never writes.
    let lock = p.run(&["lock"]);
    assert_eq!(lock.status.code(), Some(0), "{}", stderr(&lock));
    assert_eq!(stdout(&lock).matches("(added)").count(), 2, "{}", stdout(&lock));
    let text = p.lock_text();
    let again = p.run(&["lock"]);
    assert!(stdout(&again).contains("2 images pinned, nothing to change"), "{}", stdout(&again));
    let plan = p.plan_json_in(p.path(), &["--locked"], "staging");
    assert!(service(&plan, "app")["build"]["key"].is_string());
    assert_eq!(p.lock_text(), text);

    // --offline with a complete lock: keys known without any registry.
    let offline = p.plan_json_in(p.path(), &["--offline"], "staging");
    assert_eq!(service(&offline, "app")["build"]["key"], service(&plan, "app")["build"]["key"]);

    // A pinned digest the registry no longer has: named with the line that uses it.
    let mut gone: Json = serde_json::from_str(&text).expect("lock JSON");
    gone["images"][p.base.as_str()]["digest"] = Json::String(format!("sha256:{}", "0".repeat(64)));
    let gone = serde_json::to_string_pretty(&gone).expect("json");
    std::fs::write(p.path().join("pipeline.lock"), &gone).expect("write");
    let out = p.run(&["plan"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("pipeline::lock::gone") && stderr(&out).contains("pipeline lock --update"),
        "{}",
        stderr(&out)
    );
    std::fs::write(p.path().join("pipeline.lock"), &text).expect("write");

    // An entry no service uses is pruned; the others stay.
    let mut extra: Json = serde_json::from_str(&text).expect("lock JSON");
    extra["images"]["docker.io/library/unused:1"] = serde_json::json!({
        "digest": format!("sha256:{}", "1".repeat(64)), "mediaType": "application/vnd.oci.image.index.v1+json" });
    std::fs::write(p.path().join("pipeline.lock"), serde_json::to_string_pretty(&extra).expect("json")).expect("write");
    let pruned = p.run(&["lock", "--prune"]);
    assert!(stdout(&pruned).contains("unused:1 (pruned: no service uses it)"), "{}", stdout(&pruned));
    assert_eq!(p.lock_text(), text);

    // `--update` of an image no service uses: did you mean.
    let unknown = p.run(&["lock", &format!("--update={}x", p.base)]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("did you mean"), "{}", stderr(&unknown));

    // A tag the registry does not have, and a registry nobody answers at: errors at the line.
    write(p.path(), "app/Dockerfile", &format!("FROM {REGISTRY}/{}-bases/none:1\n", p.name));
    let missing = p.run(&["plan"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("has no tag `1`") && stderr(&missing).contains("app/Dockerfile:1"),
        "{}",
        stderr(&missing)
    );
    write(p.path(), "app/Dockerfile", "FROM 127.0.0.1:9/nobody/base:1\n");
    let unreachable = p.run(&["plan"]);
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(stderr(&unreachable).contains("cannot reach http://127.0.0.1:9"), "{}", stderr(&unreachable));

    // With the entry in the lock, an unreachable registry does not stop a plan: the key comes from the
    // lock, and a warning says the digest could not be confirmed.
    let mut with_entry: Json = serde_json::from_str(&text).expect("lock JSON");
    with_entry["images"]["127.0.0.1:9/nobody/base:1"] = serde_json::json!({
        "digest": format!("sha256:{}", "2".repeat(64)), "mediaType": "application/vnd.docker.distribution.manifest.v2+json" });
    std::fs::write(p.path().join("pipeline.lock"), serde_json::to_string_pretty(&with_entry).expect("json"))
        .expect("write");
    let planned = p.run(&["plan"]);
    assert_eq!(planned.status.code(), Some(0), "{}", stderr(&planned));
    assert!(stderr(&planned).contains("cannot confirm"), "{}", stderr(&planned));
}
