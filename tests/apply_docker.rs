//! `pipeline apply` end to end, against the real Docker engine and the real registry on 127.0.0.1:5000
//! (both started by `scripts/start-services`), with images built FROM the local base image
//! (`scripts/base-image`), since nothing can be pulled.
//!
//! Each test copies a fixture into a temporary folder and uses a project name of its own, so tests run in
//! parallel without sharing containers, networks or repositories, and a repeated run is never served
//! by an earlier run's images. Without an engine or registry the tests say they were skipped, unless
//! PIPELINE_REQUIRE_DOCKER=1.

use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

/// The engine and registry are up, and the base image exists.
fn services_up() -> bool {
    support::services_and_base_image_up()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.file_type().expect("type").is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// A project (see `support::project`) with the secret the shop fixture needs.
struct Fixture {
    p: support::project::Project,
    project: String,
}

impl Fixture {
    fn new(prefix: &str) -> Fixture {
        let p = support::project::Project::new(prefix);
        Fixture { project: p.name.clone(), p }
    }

    fn shop(prefix: &str) -> Fixture {
        let f = Fixture::new(prefix);
        copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apply/shop"), f.path());
        f
    }

    fn path(&self) -> &Path {
        self.p.path()
    }

    fn write(&self, rel: &str, text: &str) {
        self.p.write(rel, text);
    }

    fn run(&self, args: &[&str], env: &str) -> Output {
        self.p.run(args, env, &[("PIPELINE_SECRET_DB_PASSWORD", "not-a-real-password")])
    }

    /// `apply --yes --json`: the exit code, the outcome, stderr.
    fn apply(&self, env: &str, extra: &[&str]) -> (i32, Json, String) {
        let mut args = vec!["apply", "--yes", "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args, env);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("apply printed no JSON ({e}); stdout: {}; stderr: {stderr}", String::from_utf8_lossy(&out.stdout))
        });
        (out.status.code().unwrap_or(-1), v, stderr)
    }

    fn container(&self, env: &str, service: &str, n: u32) -> String {
        format!("{}-{env}-{service}-{n}", self.project)
    }
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("run docker");
    assert!(out.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn container_id(name: &str) -> String {
    docker(&["inspect", "--format", "{{.Id}}", name])
}

/// GET through a container's published port.
fn fetch(container: &str, port: u16) -> String {
    let mapping = docker(&["port", container, &format!("{port}/tcp")]);
    let addr = mapping.lines().next().expect("a published port").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    use std::io::{Read, Write};
    write!(stream, "GET / HTTP/1.0\r\nHost: x\r\n\r\n").expect("send");
    let mut body = String::new();
    stream.read_to_string(&mut body).expect("read");
    body
}

fn services(outcome: &Json) -> Vec<(String, String, String)> {
    outcome["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| {
            let f = |k: &str| s[k].as_str().unwrap_or("").to_string();
            (f("name"), f("build"), f("deploy"))
        })
        .collect()
}

fn service<'a>(outcome: &'a Json, name: &str) -> &'a Json {
    outcome["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no service {name} in {outcome}"))
}

fn built(outcome: &Json) -> Vec<String> {
    let mut v: Vec<String> = outcome["builds"]
        .as_array()
        .expect("builds")
        .iter()
        .filter(|b| b["status"] == "done")
        .map(|b| b["service"].as_str().unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

/// Scenarios 1-4 of the issue on one fixture, in order: first apply, second apply, one changed file,
/// a second environment.
#[test]
fn apply_resume_change_and_second_environment() {
    if !services_up() {
        return;
    }
    let f = Fixture::shop("e2e");

    // Without `--yes` and without a terminal: the plan is shown, nothing is applied.
    let out = f.run(&["apply"], "staging");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Plan: 4 to build"));
    assert!(stderr.contains("no terminal to confirm on"), "{stderr}");
    let ps =
        docker(&["ps", "-a", "--filter", &format!("label=pipeline.project={}", f.project), "--format", "{{.Names}}"]);
    assert!(ps.is_empty(), "{ps}");

    // 1. First apply: everything built, pushed, deployed and reachable.
    let (code, out, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 0, "first apply failed: {out:#}\n{stderr}");
    assert_eq!(out["status"], "succeeded");
    assert_eq!(built(&out), ["api", "db", "seed", "web"], "{out:#}");
    for (name, _, deploy) in services(&out) {
        assert_eq!(deploy, "created", "{name}: {out:#}");
    }
    for b in out["builds"].as_array().expect("builds") {
        let image = b["image"].as_str().expect("image");
        assert!(image.starts_with(&format!("127.0.0.1:5000/{}/", f.project)), "{image}");
        // Pushed: the registry has the manifest under the key.
        let (repo, tag) = image.trim_start_matches("127.0.0.1:5000/").rsplit_once(':').expect("tag");
        let url = format!("/v2/{repo}/manifests/{tag}");
        assert_eq!(registry_status(&url), 200, "{image} is not in the registry");
        // Labelled with its key.
        assert_eq!(
            docker(&["inspect", "--format", "{{index .Config.Labels \"pipeline.key\"}}", image]),
            b["key"].as_str().unwrap()
        );
    }
    let api1 = f.container("staging", "api", 1);
    assert!(fetch(&api1, 8080).contains("hello from staging api v1"), "api answer");
    assert!(fetch(&f.container("staging", "api", 2), 8080).contains("hello from staging"));
    assert!(fetch(&f.container("staging", "db", 1), 5432).contains("starts=1"));
    // Reachable by service name on the environment's network.
    let web1 = f.container("staging", "web", 1);
    assert!(docker(&["exec", &web1, "wget", "-q", "-O", "-", "http://api:8080/"]).contains("hello from staging"));
    assert!(docker(&["exec", &web1, "wget", "-q", "-O", "-", "http://cache:6379/"]).contains("cache"));
    // The job ran to completion and said so.
    assert_eq!(docker(&["inspect", "--format", "{{.State.ExitCode}}", &f.container("staging", "seed", 1)]), "0");
    assert!(docker(&["logs", &f.container("staging", "seed", 1)]).contains("seeded"));
    // The secret reached the database's environment, and appears in no label.
    let labels = docker(&["inspect", "--format", "{{json .Config.Labels}}", &f.container("staging", "db", 1)]);
    assert!(!labels.contains("not-a-real-password"), "{labels}");
    let ids: Vec<String> =
        ["db", "seed", "cache", "web"].iter().map(|s| container_id(&f.container("staging", s, 1))).collect();

    // 2. Second apply: zero builds, zero deploys, nothing touched.
    let (code, out, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(out["status"], "nothing to do", "{out:#}");
    let again: Vec<String> =
        ["db", "seed", "cache", "web"].iter().map(|s| container_id(&f.container("staging", s, 1))).collect();
    assert_eq!(ids, again);

    // 3. One file of one context changes: exactly that image is rebuilt, only its service redeployed.
    let api_id = container_id(&api1);
    f.write("api/www/version.txt", "api v2\n");
    let (code, out, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 0, "{out:#}\n{stderr}");
    assert_eq!(built(&out), ["api"], "{out:#}");
    for (name, _, deploy) in services(&out) {
        let expect = if name == "api" { "updated" } else { "unchanged" };
        assert_eq!(deploy, expect, "{name}: {out:#}");
    }
    assert_ne!(container_id(&api1), api_id, "api was not redeployed");
    assert!(fetch(&api1, 8080).contains("api v2"));
    let again: Vec<String> =
        ["db", "seed", "cache", "web"].iter().map(|s| container_id(&f.container("staging", s, 1))).collect();
    assert_eq!(ids, again, "services other than api were touched");

    // 4. A second environment with other runtime env: zero builds, everything deployed.
    let (code, out, stderr) = f.apply("production", &[]);
    assert_eq!(code, 0, "{out:#}\n{stderr}");
    assert!(out["builds"].as_array().expect("builds").is_empty(), "{out:#}");
    for (name, build, deploy) in services(&out) {
        assert_eq!(deploy, "created", "{name}");
        if name != "cache" {
            assert_eq!(build, "cached", "{name}: {out:#}");
        }
    }
    assert!(fetch(&f.container("production", "api", 1), 8080).contains("hello from production api v2"));
    // The first environment is untouched; its database volume is its own.
    assert!(fetch(&api1, 8080).contains("hello from staging"));
    assert!(fetch(&f.container("production", "db", 1), 5432).contains("starts=1"));
}

fn registry_status(path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect("127.0.0.1:5000").expect("registry");
    write!(
        s,
        "HEAD {path} HTTP/1.0\r\nHost: 127.0.0.1:5000\r\nAccept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json\r\n\r\n"
    )
    .expect("send");
    let mut r = String::new();
    let _ = s.read_to_string(&mut r);
    r.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// Scenario 5: ten applications in one stage with parallelism 7: never more than 7 builds at once, and a
/// slot that frees is used at once (work-conserving), measured by the engine: each build's slow step
/// writes the kernel's uptime (shared by every container) as it starts and ends, read back from the
/// images. One of the first seven is short (1 s) and six are long (6 s): the eighth build starts within
/// 2.5 s of the short one's end (a bound that holds on a loaded 2-core machine), long before the long
/// ones end, as a scheduler that waits for a whole batch could not.
#[test]
fn ten_builds_on_seven_slots() {
    if !services_up() {
        return;
    }
    let f = Fixture::new("par");
    let mut services = String::new();
    for i in 0..10 {
        // A file of its own before the slow step, so no layer comes from an earlier run's cache.
        f.write(&format!("app{i}/id"), &format!("{} {i}\n", f.project));
        let secs = if (1..=6).contains(&i) { 6 } else { 1 };
        f.write(
            &format!("app{i}/Dockerfile"),
            &format!(
                "FROM 127.0.0.1:5000/pipeline-examples/busybox:1\nCOPY id /id\nRUN cut -d' ' -f1 /proc/uptime >/run-start && sleep {secs} && cut -d' ' -f1 /proc/uptime >/run-end\nCMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 3600 & wait\"]\n"
            ),
        );
        services.push_str(&format!("    app{i} = std.application {{ build.context = ./app{i}; }};\n"));
    }
    f.write(
        "pipeline.nix",
        &format!(
            "{{ project, env }}:\nlet std = import <std>; in\nstd.environment {{\n  inherit project; name = env;\n  registry = \"127.0.0.1:5000/${{project}}\";\n  target = std.docker {{ }};\n  parallelism = {{ build = 7; deploy = 7; }};\n  services = {{\n{services}  }};\n}}\n"
        ),
    );
    let (code, out, stderr) = f.apply("ci", &[]);
    assert_eq!(code, 0, "{out:#}\n{stderr}");
    let builds = out["builds"].as_array().expect("builds");
    assert_eq!(builds.len(), 10);
    // (start, end) of each build's slow step, in ms of the kernel's uptime, as the engine ran it.
    let mut spans: Vec<(f64, f64)> = builds
        .iter()
        .map(|b| {
            let image = b["image"].as_str().expect("image");
            let text = docker(&["run", "--rm", image, "cat", "/run-start", "/run-end"]);
            let t: Vec<f64> = text.split_whitespace().map(|x| x.parse::<f64>().expect("uptime") * 1000.0).collect();
            (t[0], t[1])
        })
        .collect();
    // At most 7 at once: at every start, count the steps running.
    for &(s, _) in &spans {
        let running = spans.iter().filter(|&&(a, b)| a <= s && s < b).count();
        assert!(running <= 7, "{running} builds ran at once at {s} ms: {spans:?}");
    }
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let first_seven = &spans[..7];
    let first_end = first_seven.iter().map(|s| s.1).fold(f64::INFINITY, f64::min);
    let last_end = first_seven.iter().map(|s| s.1).fold(0.0, f64::max);
    let eighth_start = spans[7].0;
    assert!(eighth_start >= first_end - 10.0, "the 8th started before any build ended: {spans:?}");
    assert!(
        eighth_start - first_end <= 2_500.0,
        "the 8th started {} ms after the first slot freed: {spans:?}",
        eighth_start - first_end
    );
    assert!(eighth_start < last_end - 1_000.0, "the 8th waited for the first seven to end: {spans:?}");
    // And the first seven started together.
    assert!(spans[6].0 - spans[0].0 <= 2_500.0, "{spans:?}");
}

/// Scenario 6: a failing build in one stage; no later stage starts, the summary says so, the exit code
/// is non-zero; the fixed re-run finishes without rebuilding what was built.
#[test]
fn failed_build_stops_later_stages_and_rerun_resumes() {
    if !services_up() {
        return;
    }
    let f = Fixture::shop("fail");
    f.write("api/Dockerfile", "FROM 127.0.0.1:5000/pipeline-examples/busybox:1\nRUN echo 'compiling api' && exit 3\n");
    let (code, out, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 1, "{out:#}\n{stderr}");
    assert_eq!(out["status"], "failed");
    assert_eq!(out["failed_stage"], "3.DEFAULT APPLICATION");
    let api = service(&out, "api");
    assert_eq!(api["build"], "failed", "{out:#}");
    let err = api["error"].as_str().expect("error");
    // BuildKit names the failing step, its Dockerfile line and the exit code.
    assert!(err.contains("exit code: 3"), "{err}");
    assert!(err.contains("at `RUN echo 'compiling api' && exit 3` (Dockerfile:2)"), "{err}");
    assert!(err.contains("compiling api"), "the error shows the last lines: {err}");
    assert!(err.contains(".pipeline/logs/"), "the error names the log: {err}");
    // Later stage: never started. Earlier stages: deployed and left running.
    assert_eq!(service(&out, "web")["deploy"], "not started", "{out:#}");
    assert!(service(&out, "web")["started_ms"].is_null());
    for s in ["db", "seed", "cache"] {
        assert_eq!(service(&out, s)["deploy"], "created", "{s}: {out:#}");
    }
    assert!(fetch(&f.container("staging", "db", 1), 5432).contains("starts=1"));
    // The web image was built (builds run ahead of their stage) or not, but never deployed.
    let ps = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={}", f.container("staging", "web", 1)),
        "--format",
        "{{.Names}}",
    ]);
    assert!(ps.is_empty(), "web was deployed: {ps}");
    // The text summary says so too.
    let text = f.run(&["plan"], "staging");
    assert!(String::from_utf8_lossy(&text.stdout).contains("+ web"));

    // Fixed: only api (and web, if its build had not run) are built; deployed services stay.
    let web_built_before = built(&out).contains(&"web".to_string());
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apply/shop/api/Dockerfile"),
        f.path().join("api/Dockerfile"),
    )
    .expect("restore");
    let db_id = container_id(&f.container("staging", "db", 1));
    let (code, out2, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 0, "{out2:#}\n{stderr}");
    let mut expect = vec!["api".to_string()];
    if !web_built_before {
        expect.push("web".into());
    }
    assert_eq!(built(&out2), expect, "{out2:#}");
    for s in ["db", "seed", "cache"] {
        assert_eq!(service(&out2, s)["deploy"], "unchanged", "{s}: {out2:#}");
    }
    assert_eq!(service(&out2, "api")["deploy"], "created");
    assert_eq!(service(&out2, "web")["deploy"], "created");
    assert_eq!(container_id(&f.container("staging", "db", 1)), db_id);
}

/// A failing job: its exit code and last lines are shown, and the plan runs it again next time.
#[test]
fn failing_job_shows_exit_code_and_output() {
    if !services_up() {
        return;
    }
    let f = Fixture::shop("job");
    f.write("seed/seed", "#!/bin/sh\necho 'seed: table users is missing' >&2\nexit 7\n");
    make_executable(&f.path().join("seed/seed"));
    let (code, out, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 1, "{stderr}");
    let seed = service(&out, "seed");
    assert_eq!(seed["deploy"], "failed");
    let err = seed["error"].as_str().expect("error");
    assert!(err.contains("exited with code 7"), "{err}");
    assert!(err.contains("seed: table users is missing"), "{err}");
    for s in ["cache", "api", "web"] {
        assert_eq!(service(&out, s)["deploy"], "not started", "{s}");
    }
    // Nothing was lost: the database keeps running, and the next plan runs the job again.
    assert_eq!(docker(&["inspect", "--format", "{{.State.Running}}", &f.container("staging", "db", 1)]), "true");
    let plan = f.run(&["plan", "--json"], "staging");
    let plan: Json = serde_json::from_slice(&plan.stdout).expect("plan json");
    let seed_plan = plan["stages"][1]["services"][0].clone();
    assert_eq!(seed_plan["name"], "seed");
    assert_eq!(seed_plan["deploy"]["action"], "create", "{plan:#}");
    assert_eq!(plan["stages"][0]["services"][0]["deploy"]["action"], "unchanged");
}

/// A service that never becomes healthy fails its deploy, its containers are stopped (logs kept), and
/// the next plan does not take it for deployed.
#[test]
fn an_unhealthy_service_fails_and_is_deployed_again() {
    if !services_up() {
        return;
    }
    let f = Fixture::shop("sick");
    let defs = std::fs::read_to_string(f.path().join("pipeline.nix")).expect("read");
    let sick = defs.replace(
        r#"healthcheck = { http = { port = 8080; path = "/index.html"; }; interval = "1s"; };"#,
        r#"healthcheck = { http = { port = 8080; path = "/missing"; }; interval = "1s"; retries = 2; };"#,
    );
    assert_ne!(sick, defs);
    f.write("pipeline.nix", &sick);
    let (code, out, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 1, "{out:#}\n{stderr}");
    let api = service(&out, "api");
    assert_eq!(api["deploy"], "failed", "{out:#}");
    assert!(api["error"].as_str().expect("error").contains("is unhealthy"), "{out:#}");
    // The failure keeps its diagnostic: code and help reach the JSON.
    assert_eq!(api["error_code"], "pipeline::docker::not_ready", "{out:#}");
    let help = api["error_help"].as_str().expect("help");
    assert!(help.starts_with(&format!("its whole output: `docker logs {}-staging-api-", f.project)), "{help}");
    assert_eq!(service(&out, "web")["deploy"], "not started");
    let api1 = f.container("staging", "api", 1);
    assert_eq!(docker(&["inspect", "--format", "{{.State.Running}}", &api1]), "false", "left running");
    let plan = f.run(&["plan", "--json"], "staging");
    let plan: Json = serde_json::from_slice(&plan.stdout).expect("plan json");
    let api_plan = plan["stages"][3]["services"][0].clone();
    assert_eq!(api_plan["name"], "api");
    assert_eq!(api_plan["deploy"]["action"], "update", "{plan:#}");
    // Fixed, it deploys.
    f.write("pipeline.nix", &defs);
    let (code, out, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 0, "{out:#}\n{stderr}");
    assert_eq!(service(&out, "api")["deploy"], "updated");
    assert!(fetch(&api1, 8080).contains("hello from staging"));
}

/// Containers on the environment's network asking `api` by name every 100 ms, as the services do; each
/// answer is a line `ok` or `fail` in its log.
struct Poller {
    name: String,
}

impl Poller {
    fn start(f: &Fixture, env: &str) -> Poller {
        let name = format!("{}-{env}-poller", f.project);
        let script = "while true; do if wget -q -O /dev/null http://api:8080/index.html; then echo ok; else echo fail; fi; sleep 0.1; done";
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            &format!("{}-{env}", f.project),
            "127.0.0.1:5000/pipeline-examples/busybox:1",
            "sh",
            "-c",
            script,
        ]);
        Poller { name }
    }

    /// (answers, failures) so far.
    fn counts(&self) -> (usize, usize) {
        let out = Command::new("docker").args(["logs", &self.name]).output().expect("docker logs");
        let text = String::from_utf8_lossy(&out.stdout);
        (text.lines().filter(|l| *l == "ok").count(), text.lines().filter(|l| *l == "fail").count())
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.name]).output();
    }
}

/// The proxy's plain-HTTP port in the fixtures (`std.docker { proxy.http = 8080; }`).
const PROXY: &str = "127.0.0.1:8080";

/// GET `path` through the engine's proxy with `host`: the status code and the body.
fn through_proxy(host: &str, path: &str) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(PROXY).map_err(|e| format!("connect {PROXY}: {e}"))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").map_err(|e| format!("send: {e}"))?;
    let mut text = String::new();
    stream.read_to_string(&mut text).map_err(|e| format!("read: {e}"))?;
    let code =
        text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or(format!("no status line: {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((code, body))
}

/// The `Location` of the redirect the proxy answers a plain-HTTP GET with.
fn redirect_of(host: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(PROXY).expect("connect to the proxy");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").expect("send");
    let mut text = String::new();
    stream.read_to_string(&mut text).expect("read");
    assert!(text.split_whitespace().nth(1) == Some("308"), "{text}");
    text.lines().find_map(|l| l.strip_prefix("Location: ")).map(str::to_string).unwrap_or_default()
}

/// A client outside the engine asking a public endpoint through the proxy, one request after the other
/// (each on a new connection), until dropped: (answers, failures, the first failures).
struct PublicPoller {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<(usize, usize, Vec<String>)>>,
}

impl PublicPoller {
    fn start(host: &str, expect: &'static str) -> PublicPoller {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (host, flag) = (host.to_string(), stop.clone());
        let thread = std::thread::spawn(move || {
            let (mut ok, mut failed, mut why) = (0, 0, Vec::new());
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                match through_proxy(&host, "/index.html") {
                    Ok((200, body)) if body.contains(expect) => ok += 1,
                    other => {
                        failed += 1;
                        if why.len() < 5 {
                            why.push(format!("{other:?}"));
                        }
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            (ok, failed, why)
        });
        PublicPoller { stop, thread: Some(thread) }
    }

    fn finish(mut self) -> (usize, usize, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

impl Drop for PublicPoller {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Updates replace a serving service safely: a broken release (its process exits 3) fails within seconds,
/// with its exit code, and the old containers keep serving untouched; a good release takes over only once
/// healthy; an earlier revision applied again builds nothing and restores it (rollback).
#[test]
fn updates_keep_the_previous_version_serving_and_rollback_is_a_reapply() {
    if !services_up() {
        return;
    }
    let f = Fixture::shop("safe");
    let (code, out, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 0, "{out:#}\n{stderr}");
    let (api1, api2) = (f.container("staging", "api", 1), f.container("staging", "api", 2));
    let old = (container_id(&api1), container_id(&api2));
    let poller = Poller::start(&f, "staging");
    // From outside, through the engine's proxy, at the address the summary gives.
    let host = format!("api.staging.{}.localhost", f.project);
    let url = format!("http://{host}:8080/");
    assert_eq!(service(&out, "api")["endpoints"], serde_json::json!([url]), "{out:#}");
    let public = PublicPoller::start(&host, "hello from staging");

    // A broken release: the process exits 3 at once.
    let serve = std::fs::read_to_string(f.path().join("api/serve")).expect("read serve");
    f.write("api/serve", "#!/bin/sh\necho the broken release starts and gives up\nexit 3\n");
    make_executable(&f.path().join("api/serve"));
    let (code, out, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 1, "{out:#}\n{stderr}");
    let api = service(&out, "api");
    assert_eq!(api["deploy"], "failed", "{out:#}");
    assert_eq!(api["kept_previous"], true, "{out:#}");
    assert_eq!(api["error_code"], "pipeline::docker::kept_previous", "{out:#}");
    let error = api["error"].as_str().expect("error");
    assert!(error.contains("exited with code 3"), "{error}");
    assert!(error.contains("the broken release starts and gives up"), "its last lines: {error}");
    assert!(error.ends_with("the previous version keeps serving"), "{error}");
    let took = api["ended_ms"].as_f64().unwrap() - api["started_ms"].as_f64().unwrap();
    assert!(took < 15_000.0, "failed after {took} ms, not at once");
    assert_eq!((container_id(&api1), container_id(&api2)), old, "the old containers were not touched");
    assert!(fetch(&api1, 8080).contains("api v1"));
    let names = docker(&["ps", "-a", "--filter", &format!("name={}-staging-api", f.project), "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, [api1.as_str(), api2.as_str()], "the new containers are gone");

    // A good release takes over once healthy.
    f.write("api/serve", &serve);
    f.write("api/www/version.txt", "api v2\n");
    let (code, out, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 0, "{out:#}\n{stderr}");
    assert_eq!(service(&out, "api")["deploy"], "updated");
    assert_ne!(container_id(&api1), old.0);
    assert!(fetch(&api1, 8080).contains("api v2"));
    assert!(fetch(&api2, 8080).contains("api v2"));
    let restart = docker(&["inspect", "--format", "{{.HostConfig.RestartPolicy.Name}}", &api1]);
    assert_eq!(restart, "unless-stopped", "restarts once it is up");

    // Rollback: the first revision again builds nothing and serves again.
    f.write("api/www/version.txt", "api v1\n");
    let (code, out, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 0, "{out:#}\n{stderr}");
    assert!(built(&out).is_empty(), "a rollback builds nothing: {out:#}");
    assert_eq!(service(&out, "api")["deploy"], "updated");
    assert!(fetch(&api1, 8080).contains("api v1"));

    assert_eq!(service(&out, "api")["endpoints"], serde_json::json!([url]), "the same address after three updates");

    let (ok, failed) = poller.counts();
    eprintln!("the poller saw {ok} answers and {failed} failures through three updates");
    assert!(ok > 20, "the poller ran: {ok} answers");
    assert_eq!(failed, 0, "requests to `api` failed during the updates");
    let (ok, failed, why) = public.finish();
    eprintln!("through the proxy: {ok} answers and {failed} failures through three updates");
    assert!(ok > 20, "the public poller ran: {ok} answers");
    assert_eq!(failed, 0, "requests through the proxy failed during the updates: {why:?}");
}

/// A public endpoint answers through the engine's proxy by host and path prefix (the longest prefix
/// wins); a host no environment serves is a 404 from the proxy; a host another environment serves is
/// refused before anything is deployed; destroy takes the routes away.
#[test]
fn public_endpoints_route_by_host_and_path_and_one_host_has_one_owner() {
    if !services_up() {
        return;
    }
    let f = Fixture::new("proxy");
    let serve = |text: &str| {
        format!(
            "mkdir -p /w/v2; echo {text} >/w/index.html; echo {text}-v2 >/w/v2/index.html; trap 'exit 0' TERM; httpd -f -p 8080 -h /w & wait"
        )
    };
    let defs = |claim: &str| {
        format!(
            r#"{{ project, env }}:
let std = import <std>; in
std.environment {{
  inherit project;
  name = env;
  registry = "127.0.0.1:5000/${{project}}";
  target = std.docker {{ proxy = {{ http = 8080; https = 8443; image = "127.0.0.1:5000/pipeline-examples/caddy:2"; }}; }};
  services = {{
    site = std.container {{
      image = "127.0.0.1:5000/pipeline-examples/busybox:1";
      ports = [ 8080 ];
      command = "{site}";
      endpoints = [ {{ host = "{claim}"; }} ];
    }};
    next = std.container {{
      image = "127.0.0.1:5000/pipeline-examples/busybox:1";
      ports = [ 8080 ];
      command = "{next}";
      endpoints = [ {{ host = "{claim}"; path = "/v2"; }} {{ host = "{domain}"; path = "/v2"; }} ];
    }};
  }};
}}
"#,
            site = serve("site"),
            next = serve("next"),
            domain = claim.replace(".localhost", ".example.com"),
        )
    };
    let host = format!("www.{}.localhost", f.project);
    f.write("pipeline.nix", &defs(&host));
    let (code, out, stderr) = f.apply("dev", &[]);
    assert_eq!(code, 0, "{out:#}\n{stderr}");
    assert_eq!(service(&out, "site")["endpoints"], serde_json::json!([format!("http://{host}:8080/")]));
    let domain = format!("www.{}.example.com", f.project);
    assert_eq!(
        service(&out, "next")["endpoints"],
        serde_json::json!([format!("http://{host}:8080/v2"), format!("https://{domain}:8443/v2")])
    );
    assert_eq!(through_proxy(&host, "/index.html").expect("site"), (200, "site\n".to_string()));
    assert_eq!(through_proxy(&host, "/v2/index.html").expect("next"), (200, "next-v2\n".to_string()));
    let (code, body) = through_proxy(&format!("nothing.{}.localhost", f.project), "/").expect("proxy answers");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no public endpoint"), "{body}");
    // A real domain is served over HTTPS (its certificate the ACME way, which cannot happen offline):
    // plain HTTP for it is redirected.
    let location = redirect_of(&format!("www.{}.example.com", f.project), "/v2/x?a=1");
    assert_eq!(location, format!("https://www.{}.example.com:8443/v2/x?a=1", f.project));
    let status = f.run(&["status"], "dev");
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(status.contains(&format!("http://{host}:8080/v2")), "{status}");

    // Another environment claiming the same host is refused, and the first keeps it.
    let (code, out, stderr) = f.apply("other", &[]);
    assert_eq!(code, 1, "{out:#}\n{stderr}");
    let next = service(&out, "next");
    assert_eq!(next["error_code"], "pipeline::docker::endpoint_taken", "{out:#}");
    let error = next["error"].as_str().expect("error");
    assert!(error.contains(&format!("{}/dev service", f.project)), "names the owner: {error}");
    assert_eq!(through_proxy(&host, "/index.html").expect("site"), (200, "site\n".to_string()));
    let others = docker(&["ps", "-a", "--filter", &format!("name={}-other-", f.project), "--format", "{{.Names}}"]);
    assert!(others.is_empty(), "nothing of the refused environment was deployed: {others}");

    // Destroyed, its routes are gone.
    let out = f.run(&["destroy", "--yes"], "dev");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    if let Ok((code, _)) = through_proxy(&host, "/index.html") {
        assert_eq!(code, 404, "the destroyed environment's host is no longer served");
    }
}

/// `kill -9` of `pipeline` in the middle of a replacement (the new containers started, not healthy yet)
/// leaves the old version serving, and the next apply converges: the half-started containers go, the
/// update is made, the killed run's lock is taken over.
#[test]
fn a_killed_update_leaves_the_old_version_serving_and_the_next_apply_converges() {
    if !services_up() {
        return;
    }
    let f = Fixture::shop("kill");
    let (code, out, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 0, "{out:#}\n{stderr}");
    let api1 = f.container("staging", "api", 1);
    let old = container_id(&api1);

    // A new release; the run is killed as soon as its first new container exists (its healthcheck needs
    // a second at least).
    f.write("api/www/version.txt", "api v2\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["apply", "--yes"])
        .arg(f.path().join("pipeline.nix"))
        .args(["--argstr", "project", &f.project, "--argstr", "env", "staging"])
        .env("PIPELINE_SECRET_DB_PASSWORD", "not-a-real-password")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let candidate = format!("{api1}-next");
    let started = std::time::Instant::now();
    loop {
        let exists = Command::new("docker").args(["inspect", "--format", "{{.State.Status}}", &candidate]).output();
        if exists.is_ok_and(|o| o.status.success()) {
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(120), "the new container never appeared");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.kill().expect("kill -9");
    let _ = child.wait();
    assert_eq!(container_id(&api1), old, "the old container was not touched");
    assert!(fetch(&api1, 8080).contains("api v1"), "the old version serves");

    let (code, out, stderr) = f.apply("staging", &["--timeout", "90s"]);
    assert_eq!(code, 0, "{out:#}\n{stderr}");
    assert_eq!(service(&out, "api")["deploy"], "updated", "{out:#}");
    assert!(fetch(&api1, 8080).contains("api v2"));
    let names = docker(&["ps", "-a", "--filter", &format!("name={}-staging-api", f.project), "--format", "{{.Names}}"]);
    assert!(!names.contains("-next"), "nothing half-started is left: {names}");
}

/// `apply --only` deploys the named services and, unless `--no-deps`, what they depend on; a saved
/// partial plan keeps its selection; `destroy --only` removes just the named services.
#[test]
fn only_applies_and_destroys_part_of_an_environment() {
    if !services_up() {
        return;
    }
    let f = Fixture::shop("only");
    let (code, out, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 0, "{out:#}\n{stderr}");
    let api_id = container_id(&f.container("staging", "api", 1));
    let status = |f: &Fixture| {
        let out = f.run(&["status", "--json"], "staging");
        let v: Json = serde_json::from_slice(&out.stdout).expect("status json");
        let api = v["services"].as_array().unwrap().iter().find(|s| s["name"] == "api").cloned().unwrap();
        (out.status.code(), api)
    };
    let (code, api) = status(&f);
    assert_eq!(code, Some(0), "{api:#}");
    assert_eq!(
        (api["health"].as_str(), api["ready"].as_u64(), api["desired"].as_u64()),
        (Some("healthy"), Some(2), Some(2))
    );
    // Its public address first, then each replica's published port.
    let endpoints = api["endpoints"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), 3, "{api:#}");
    assert_eq!(endpoints[0], format!("http://api.staging.{}.localhost:8080/", f.project), "{api:#}");

    // Both api and web change; only web is asked for, without its dependencies.
    f.write("api/www/version.txt", "api v2\n");
    f.write(
        "web/serve",
        &std::fs::read_to_string(f.path().join("web/serve")).unwrap().replace("echo web", "echo web v2"),
    );
    make_executable(&f.path().join("web/serve"));
    let (code, out, stderr) = f.apply("staging", &["--only", "web", "--no-deps"]);
    assert_eq!(code, 0, "{out:#}\n{stderr}");
    assert_eq!(built(&out), ["web"], "{out:#}");
    let names: Vec<String> = services(&out).into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(names, ["web"], "only web is in the run: {out:#}");
    assert!(fetch(&f.container("staging", "web", 1), 80).contains("web v2"));
    assert_eq!(container_id(&f.container("staging", "api", 1)), api_id, "api was left as it is");
    // `status` says api differs (its file changed) and exits 2.
    let (code, api) = status(&f);
    assert_eq!(code, Some(2), "{api:#}");
    assert_eq!(api["definitions"], "differs", "{api:#}");
    assert!(api["reason"].as_str().unwrap().starts_with("~ image: "), "{api:#}");

    // With its dependencies, the plan says it is partial and takes api (changed) and db (unchanged) along.
    let plan = f.run(&["plan", "--only", "web"], "staging");
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(text.contains("Partial plan: only web, and what they depend on: db, api"), "{text}");
    assert!(text.contains("~ api (application)") && !text.contains("cache (container)"), "{text}");

    // A saved partial plan applies what it covers, and no more.
    let saved = f.path().join("api-plan.json");
    let out = f.run(&["plan", "--only", "api", "--no-deps", "--out", saved.to_str().unwrap()], "staging");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let widen = Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["apply", "--yes", "--only", "web"])
        .arg(&saved)
        .env("PIPELINE_SECRET_DB_PASSWORD", "not-a-real-password")
        .output()
        .expect("run");
    assert_eq!(widen.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&widen.stderr).contains("`--only` cannot change what a saved plan covers"));
    let applied = apply_saved(&saved);
    let outcome = String::from_utf8_lossy(&applied.stdout);
    assert!(applied.status.success(), "{outcome}\n{}", String::from_utf8_lossy(&applied.stderr));
    assert!(outcome.contains("api ") && !outcome.contains("\nweb ") && !outcome.contains("\ndb "), "{outcome}");
    assert!(fetch(&f.container("staging", "api", 1), 8080).contains("api v2"));

    // destroy --only: an unknown name is refused with a suggestion; the named service goes, the others keep
    // running.
    let out = f.run(&["destroy", "--yes", "--only", "wbe"], "staging");
    let err = flat(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no service `wbe` runs") && err.contains("did you mean `web`?"), "{err}");
    let out = f.run(&["destroy", "--yes", "--only", "web"], "staging");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let left = docker(&["ps", "--filter", &format!("label=pipeline.project={}", f.project), "--format", "{{.Names}}"]);
    assert!(!left.contains("-web-") && left.contains("-api-1") && left.contains("-db-1"), "{left}");
}

/// `pipeline logs`: replicas merged in time order with prefixes, `--tail`, `--since`, a job's last run,
/// `| head` ends cleanly, and `--follow` picks up the containers a concurrent apply starts.
#[test]
fn logs_merge_replicas_follow_replacements_and_end_cleanly() {
    if !services_up() {
        return;
    }
    let f = Fixture::shop("logs");
    let defs = std::fs::read_to_string(f.path().join("pipeline.nix")).expect("read");
    let ticking = |word: &str| {
        defs.replace(
            r#"command = "mkdir -p /w; echo cache >/w/index.html; trap 'exit 0' TERM; httpd -f -p 6379 -h /w & wait";"#,
            &format!(
                r#"replicas = 2; command = "i=0; trap 'exit 0' TERM; while true; do i=$((i+1)); echo {word} $i; sleep 0.2; done";"#
            ),
        )
    };
    assert_ne!(ticking("tick"), defs);
    f.write("pipeline.nix", &ticking("tick"));
    let (code, out, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 0, "{out:#}\n{stderr}");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let logs = |args: &[&str]| {
        let mut all = vec!["logs"];
        all.extend_from_slice(args);
        let out = f.run(&all, "staging");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    // Two replicas, two lines each, merged in time order.
    let text = logs(&["cache", "--tail", "2", "--timestamps"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("cache-1 | ")).count(), 2, "{text}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("cache-2 | ")).count(), 2, "{text}");
    let times: Vec<&str> = lines.iter().map(|l| l.split(' ').nth(2).unwrap_or_default()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "in time order: {text}");
    // A job's last run; nothing after a time to come.
    assert!(logs(&["seed"]).contains("seed | seeded"));
    assert_eq!(logs(&["cache", "--since", "2099-01-01T00:00:00Z"]), "");

    // `| head -n 3` ends at once, exit 0.
    let script = format!(
        "{} logs -f cache {} --argstr project {} --argstr env staging | head -n 3",
        env!("CARGO_BIN_EXE_pipeline"),
        f.path().join("pipeline.nix").display(),
        f.project
    );
    let out = Command::new("bash").args(["-c", &format!("set -o pipefail; {script}")]).output().expect("bash");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);

    // Following while an apply replaces the replicas: the new ones' lines arrive.
    let mut follower = Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["logs", "-f", "cache", "--tail", "0"])
        .arg(f.path().join("pipeline.nix"))
        .args(["--argstr", "project", &f.project, "--argstr", "env", "staging"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("follow");
    let stdout = follower.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    f.write("pipeline.nix", &ticking("tock"));
    let (code, out, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 0, "{out:#}\n{stderr}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = Vec::new();
    while std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(500)) {
            let done = line.contains("| tock ");
            seen.push(line);
            if done {
                break;
            }
        }
    }
    let _ = follower.kill();
    let _ = follower.wait();
    assert!(seen.iter().any(|l| l.contains("| tock ")), "the new replicas were not followed: {seen:?}");
}

/// Removed services are shown and pruned; a saved plan is refused once stale; the lock names its holder;
/// `destroy` removes everything but the data volume.
#[test]
fn prune_saved_plans_lock_and_destroy() {
    if !services_up() {
        return;
    }
    let f = Fixture::shop("misc");
    let (code, out, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 0, "{out:#}\n{stderr}");

    // A service gone from the definitions: the plan shows the delete, apply prunes it.
    let defs = std::fs::read_to_string(f.path().join("pipeline.nix")).expect("read");
    let start = defs.find("    cache = std.container").expect("cache");
    let end = start + defs[start..].find("};\n").expect("end") + 3;
    f.write("pipeline.nix", &format!("{}{}", &defs[..start], &defs[end..]));
    let plan = f.run(&["plan"], "staging");
    let text = String::from_utf8_lossy(&plan.stdout);
    assert!(text.contains("- cache"), "{text}");
    let (code, out, _) = f.apply("staging", &[]);
    assert_eq!(code, 0);
    assert_eq!(service(&out, "cache")["deploy"], "deleted", "{out:#}");
    let left = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=pipeline.project={}", f.project),
        "--filter",
        "label=pipeline.service=cache",
        "--format",
        "{{.Names}}",
    ]);
    assert!(left.is_empty(), "{left}");

    // A saved plan applies while nothing changed, and is refused once a context changed.
    let saved = f.path().join("plan.json");
    f.write("api/www/version.txt", "api v3\n");
    let out = f.run(&["plan", "--out", saved.to_str().expect("utf-8")], "staging");
    assert!(out.status.success());
    f.write("api/www/version.txt", "api v4\n");
    let out = apply_saved(&saved);
    let stderr = flat(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("saved plan is stale"), "{stderr}");
    assert!(stderr.contains("(api)"), "{stderr}");
    f.write("api/www/version.txt", "api v3\n");
    let out = apply_saved(&saved);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(fetch(&f.container("staging", "api", 1), 8080).contains("api v3"));

    // The lock: held by another run, apply stops and names the holder.
    let lock = format!("{}-staging-pipeline-lock", f.project);
    docker(&[
        "create",
        "--name",
        &lock,
        "--label",
        &format!("pipeline.project={}", f.project),
        "--label",
        "pipeline.environment=staging",
        "--label",
        "pipeline.lock.holder=alice@build-host-7 pid 4242",
        "--label",
        "pipeline.lock.since=1",
        "pipeline-lock:1",
        "lock",
    ]);
    let out = f.run(&["apply", "--yes"], "staging");
    let stderr = flat(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("is locked by alice@build-host-7 pid 4242, since"), "{stderr}");
    assert!(stderr.contains(&format!("docker rm {lock}")), "{stderr}");
    docker(&["rm", &lock]);

    // Destroy: every container and the network go; the data volume stays unless asked.
    let out = f.run(&["destroy", "--yes"], "staging");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Kept the data volumes"), "{stdout}");
    let left =
        docker(&["ps", "-a", "--filter", &format!("label=pipeline.project={}", f.project), "--format", "{{.Names}}"]);
    assert!(left.is_empty(), "{left}");
    let volume = format!("{}-staging-db-data", f.project);
    assert_eq!(docker(&["volume", "ls", "-q", "--filter", &format!("name={volume}")]), volume);
    // Redeployed, the database finds its data.
    let (code, _, stderr) = f.apply("staging", &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(fetch(&f.container("staging", "db", 1), 5432).contains("starts=2"));

    // Issue 16: after a plain destroy, `destroy --volumes` removes the volume the first one kept, and
    // a second plain destroy says that it remains.
    let out = f.run(&["destroy", "--yes"], "staging");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = f.run(&["destroy", "--yes"], "staging");
    let stderr = flat(&String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("Its data volumes remain: {volume} (remove them with `--volumes`)")), "{stderr}");
    let out = f.run(&["destroy", "--volumes"], "staging");
    let stderr = flat(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "without a terminal and --yes, destroy refuses: {stderr}");
    assert!(stderr.contains("pipeline::destroy::confirm"), "{stderr}");
    assert!(!stderr.contains("review the plan"), "{stderr}");
    let out = f.run(&["destroy", "--yes", "--volumes"], "staging");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(&format!("Removed the data volumes {volume}")), "{stdout}");
    assert_eq!(docker(&["volume", "ls", "-q", "--filter", &format!("name={volume}")]), "");
}

/// Ctrl-C: running builds are cancelled, deployed services keep running, the exit code is 130.
#[test]
fn interrupt_cancels_builds_and_exits_130() {
    if !services_up() {
        return;
    }
    let f = Fixture::shop("int");
    f.write(
        "web/Dockerfile",
        &format!("FROM 127.0.0.1:5000/pipeline-examples/busybox:1\nRUN echo {} && sleep 60\n", f.project),
    );
    let mut child =
        f.p.command(&["apply", "--yes"], "staging")
            .env("PIPELINE_SECRET_DB_PASSWORD", "not-a-real-password")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let mut seen = String::new();
    // Wait until the database is deployed (the slow web build is running by then).
    for line in lines.by_ref() {
        let line = line.expect("line");
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("done   deploy db") {
            break;
        }
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().expect("kill").success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().expect("wait");
    let mut stdout = String::new();
    use std::io::Read;
    child.stdout.take().expect("stdout").read_to_string(&mut stdout).expect("read");
    assert_eq!(status.code(), Some(130), "{seen}{}\n{stdout}", rest.join("\n"));
    assert!(rest.iter().any(|l| l.contains("cancelled") && l.contains("web")), "{}", rest.join("\n"));
    assert!(stdout.contains("Interrupted"), "{stdout}");
    assert_eq!(docker(&["inspect", "--format", "{{.State.Running}}", &f.container("staging", "db", 1)]), "true");
}

/// `apply --yes plan.json`: the saved plan names its definitions and arguments.
fn apply_saved(plan: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["apply", "--yes"])
        .arg(plan)
        .env("NO_COLOR", "1")
        .env("PIPELINE_SECRET_DB_PASSWORD", "not-a-real-password")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run pipeline")
}

/// A diagnostic as one line: miette's frame characters dropped, whitespace collapsed.
fn flat(s: &str) -> String {
    s.replace(['│', '×', '╭', '╰', '─'], " ").split_whitespace().collect::<Vec<_>>().join(" ")
}

fn make_executable(p: &PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
