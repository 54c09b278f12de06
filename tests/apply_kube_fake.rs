//! `pipeline apply`, `plan` and `destroy` with a Kubernetes target, end to end through the binary, against
//! a stand-in for an API server (`tests/support/fake_kube.py`; no cluster can run here) that behaves as
//! the Kubernetes documentation says a server does: server-side apply with field ownership and conflicts,
//! defaulting, schema validation, immutable fields, controllers that take time, watches, deletion that
//! lingers. Each test is something a real cluster would agree with. The stand-in's own tests
//! (`tests/support/test_fake_kube.py`) run first, from here; the real-cluster test is
//! `tests/kube_cluster.rs`.
//!
//! The stand-in validates objects against the Kubernetes OpenAPI schemas that the `kubernetes-validate`
//! package ships, so it runs with the Python of the virtualenv `scripts/install-test-deps` makes
//! (`~/.cache/pipeline/kubernetes-validate`); without it these tests fail, saying so.

use serde_json::{Value as Json, json};

#[allow(dead_code)]
mod support;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The Python with kubernetes-validate (and jsonschema) installed.
fn python() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_default();
    let venv = cache.join("pipeline/kubernetes-validate/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: the Kubernetes stand-in needs kubernetes-validate's schemas; run scripts/install-test-deps",
        venv.display()
    );
    venv
}

struct Fake {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start() -> Fake {
    let dir = tempfile::tempdir().expect("tempdir");
    let port_file = dir.path().join("port");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/fake_kube.py");
    let mut child = Command::new(python()).arg(script).arg(&port_file).spawn().expect("python runs the stand-in");
    let mut port = None;
    for _ in 0..400 {
        if let Some(p) = std::fs::read_to_string(&port_file).ok().and_then(|s| s.trim().parse().ok()) {
            port = Some(p);
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the stand-in API server exited ({status}); its error is above");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let port = port.expect("the stand-in API server did not start");
    std::fs::write(
        dir.path().join("kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: 'http://127.0.0.1:{port}'}}\n\
             contexts:\n- name: fake\n  context: {{cluster: fake, user: u}}\ncurrent-context: fake\nusers:\n- name: u\n  user: {{token: t}}\n"
        ),
    )
    .expect("kubeconfig");
    let fake = Fake { child, port, dir };
    // Quick controllers, so that waits are real but short.
    fake.config(json!({ "podReadySeconds": 0.15, "jobRunSeconds": 0.2, "podGraceSeconds": 0.2 }));
    fake
}

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/shop-fake/leases/pipeline-shop-fake";

impl Fake {
    fn command(&self, args: &[&str]) -> Command {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apply/kube");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipeline"));
        cmd.args(args)
            .current_dir(&fixture)
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .env("NO_COLOR", "1")
            .env("DOCKER_HOST", "tcp://127.0.0.1:9") // no engine is needed: every image is prebuilt
            // No registry login unless a test gives one: the machine's Docker config changes nothing.
            .env("DOCKER_CONFIG", self.dir.path().join("no-docker-config"))
            .env("PIPELINE_SECRET_DB_PASSWORD", "fake-cluster-password");
        cmd
    }

    fn pipeline(&self, args: &[&str]) -> Output {
        let out = self.command(args).output().expect("run pipeline");
        show(args, &out);
        out
    }

    fn http_as(&self, method: &str, path: &str, content_type: &str, body: Option<&Json>) -> (u16, Json) {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the stand-in");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: fake\r\nContent-Type: {content_type}\r\nUser-Agent: kubectl/v1.33\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read");
        let code = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let (_, b) = text.split_once("\r\n\r\n").unwrap_or_default();
        (code, serde_json::from_str(b).unwrap_or(Json::Null))
    }

    fn http(&self, method: &str, path: &str, body: Option<&Json>) -> Json {
        self.http_as(method, path, "application/json", body).1
    }

    fn config(&self, c: Json) {
        self.http("POST", "/fake/config", Some(&c));
    }

    /// The (resource, name) of the kinds pipeline manages in the environment's namespace.
    fn objects(&self) -> Vec<(String, String)> {
        let all = self.http("GET", "/fake/objects", None);
        all.as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["namespace"] == "shop-fake" && !matches!(o["resource"].as_str(), Some("pods" | "events")))
            .map(|o| (o["resource"].as_str().unwrap_or("").to_string(), o["name"].as_str().unwrap_or("").to_string()))
            .collect()
    }

    fn object(&self, resource: &str, name: &str) -> Json {
        let all = self.http("GET", "/fake/objects", None);
        all.as_array()
            .into_iter()
            .flatten()
            .find(|o| o["resource"] == resource && o["name"] == name)
            .map(|o| o["object"].clone())
            .unwrap_or(Json::Null)
    }

    fn requests(&self) -> Vec<Json> {
        self.http("GET", "/fake/requests", None).as_array().cloned().unwrap_or_default()
    }
}

fn show(args: &[&str], out: &Output) {
    eprintln!(
        "$ pipeline {} -> {:?}\n{}{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The time now as a Kubernetes MicroTime (`2026-11-26T10:00:00.000000Z`).
fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (i64::try_from(secs / 86_400).unwrap_or(0), secs % 86_400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.000000Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Everything apply printed: the summary (stdout) and the log (stderr).
fn all(out: &Output) -> String {
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

fn applied(fake: &Fake, args: &[&str]) {
    let out = fake.pipeline(args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn the_stand_in_passes_its_own_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support");
    let out = Command::new(python())
        .args(["-m", "unittest", "-q", "test_fake_kube.py"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(&dir)
        .output()
        .expect("run the stand-in's tests");
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
}

#[test]
fn apply_replans_to_nothing_with_the_servers_defaults_present_prunes_and_destroys() {
    let fake = start();

    // First apply: namespace, lease, every object applied as `pipeline`, rollouts waited for.
    applied(&fake, &["apply", "--yes"]);
    let objects = fake.objects();
    for expected in [
        ("secrets", "db-secrets"),
        ("services", "db"),
        ("statefulsets", "db"),
        ("configmaps", "api-env"),
        ("services", "api"),
        ("deployments", "api"),
        ("deployments", "worker"),
        ("cronjobs", "nightly"),
    ] {
        assert!(objects.contains(&(expected.0.into(), expected.1.into())), "{expected:?} missing from {objects:?}");
    }
    assert!(objects.iter().any(|(r, n)| r == "jobs" && n.starts_with("migrate-")), "{objects:?}");
    assert!(!objects.iter().any(|(r, _)| r == "leases"), "the lease is released after the run: {objects:?}");
    let secret = fake.object("secrets", "db-secrets");
    assert_eq!(secret["data"]["POSTGRES_PASSWORD"], "ZmFrZS1jbHVzdGVyLXBhc3N3b3Jk", "apply sends the value (base64)");

    // What the server holds is what a real one would: defaults filled in, quantities canonical, ready.
    let api = fake.object("deployments", "api");
    assert_eq!(api["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(api["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"], "500m");
    assert_eq!(api["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    assert_eq!(api["status"]["readyReplicas"], 2);
    assert_eq!(api["status"]["observedGeneration"], api["metadata"]["generation"]);
    assert!(fake.object("services", "api")["spec"]["clusterIP"].is_string(), "a cluster IP was allocated");

    // `status` reads the same: every service healthy, completed or scheduled, and at its definitions.
    let out = fake.pipeline(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let status: Json = serde_json::from_slice(&out.stdout).expect("status json");
    let health = |name: &str| {
        let s = status["services"].as_array().unwrap().iter().find(|s| s["name"] == name).cloned().unwrap();
        (s["health"].as_str().unwrap().to_string(), s["ready"].as_u64().unwrap(), s["definitions"].clone())
    };
    assert_eq!(health("api"), ("healthy".into(), 2, json!("at definitions")), "{status:#}");
    assert_eq!(health("migrate").0, "completed");
    assert_eq!(health("nightly").0, "scheduled");

    let requests = fake.requests();
    let applies: Vec<&Json> = requests.iter().filter(|r| r["contentType"] == "application/apply-patch+yaml").collect();
    assert!(applies.len() >= 10, "{applies:?}");
    for r in &applies {
        assert_eq!(r["query"]["fieldManager"], "pipeline");
        assert!(r["query"]["force"].is_null(), "no force without --force-conflicts");
    }
    assert_eq!(applies[0]["path"], "/api/v1/namespaces/shop-fake", "the namespace is created first");
    assert!(
        requests
            .iter()
            .any(|r| r["query"]["watch"] == "true" && r["path"].as_str().unwrap_or("").ends_with("/deployments")),
        "the rollout is watched, not assumed"
    );
    let lease_list = LEASE.rsplit_once('/').map(|(p, _)| p).unwrap_or_default();
    assert!(requests.iter().any(|r| r["method"] == "POST" && r["path"] == lease_list), "lease taken");
    assert!(requests.iter().any(|r| r["method"] == "DELETE" && r["path"] == LEASE), "lease released");

    // Live state read back, defaults and all: nothing to do.
    let plan = fake.pipeline(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "a plan after apply has nothing to do:\n{}", text(&plan.stdout));
    let again = fake.pipeline(&["apply", "--yes"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(text(&again.stderr).contains("Nothing to do"), "{}", text(&again.stderr));

    // A removed service is pruned: its objects are deleted.
    let plan = fake.pipeline(&["plan", "--arg", "withWorker", "false"]);
    assert!(text(&plan.stdout).contains("- deployment/worker"), "{}", text(&plan.stdout));
    applied(&fake, &["apply", "--yes", "--arg", "withWorker", "false"]);
    assert!(!fake.objects().contains(&("deployments".into(), "worker".into())));

    // Another apply holds the lease: refused, naming the holder, and the lease is left as it was.
    let now = rfc3339_now();
    let theirs = json!({ "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": { "name": "pipeline-shop-fake" },
        "spec": { "holderIdentity": "alice@ci-7 pid 42", "leaseDurationSeconds": 60, "renewTime": now } });
    let (code, _) = fake.http_as("POST", lease_list, "application/json", Some(&theirs));
    assert_eq!(code, 201);
    let out = fake.pipeline(&["apply", "--yes"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("shop/fake is locked by alice@ci-7 pid 42"), "{err}");
    assert_eq!(fake.object("leases", "pipeline-shop-fake")["spec"]["holderIdentity"], "alice@ci-7 pid 42");
    fake.http("DELETE", LEASE, None);

    // Destroy removes every object of the environment; the volume claim stays, as documented.
    let out = fake.pipeline(&["destroy", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let left: Vec<(String, String)> =
        fake.objects().into_iter().filter(|(r, _)| r != "namespaces" && r != "persistentvolumeclaims").collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(fake.objects().contains(&("persistentvolumeclaims".into(), "data-db-0".into())));
}

#[test]
fn drift_by_another_manager_is_a_conflict_naming_it_and_force_conflicts_takes_it() {
    let fake = start();
    applied(&fake, &["apply", "--yes"]);

    // `kubectl scale deployment/api --replicas=5`: an update through the scale subresource.
    let (code, _) = fake.http_as(
        "PATCH",
        "/apis/apps/v1/namespaces/shop-fake/deployments/api/scale?fieldManager=kubectl-scale",
        "application/merge-patch+json",
        Some(&json!({ "spec": { "replicas": 5 } })),
    );
    assert_eq!(code, 200);

    // The plan shows it field by field.
    let plan = fake.pipeline(&["plan", "--detailed-exitcode"]);
    let shown = text(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(shown.contains("~ api (container)"), "{shown}");
    assert!(shown.contains("~ deployment/api"), "{shown}");
    assert!(shown.contains("~ spec.replicas: 5 -> 2"), "{shown}");

    // A plain apply does not take a field another manager owns: a conflict naming the field and manager.
    let out = fake.pipeline(&["apply", "--yes"]);
    let err = all(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "deployment/api: fields owned by another field manager: .spec.replicas (owned by `kubectl-scale`)"
        ),
        "{err}"
    );
    assert!(err.contains("--force-conflicts"), "{err}");
    assert!(text(&out.stdout).contains("  help: another tool set these fields"), "the summary keeps the help");
    assert_eq!(fake.object("deployments", "api")["spec"]["replicas"], 5, "nothing was taken");

    // --force-conflicts takes it: the replicas are pipeline's again, and kubectl-scale owns nothing.
    applied(&fake, &["apply", "--yes", "--force-conflicts"]);
    let api = fake.object("deployments", "api");
    assert_eq!(api["spec"]["replicas"], 2);
    let owners: Vec<&str> = api["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["fieldsV1"]["f:spec"]["f:replicas"].is_object())
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(owners, ["pipeline"]);
    let forced = fake.requests().into_iter().filter(|r| r["query"]["force"] == "true").count();
    assert!(forced > 0, "the forced apply sends force=true");
    let plan = fake.pipeline(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stdout));
}

#[test]
fn a_rollout_that_stalls_fails_with_the_pods_reasons() {
    let fake = start();
    fake.config(json!({ "behaviour": [{ "match": "shop/api:missing", "pull": "fail" }] }));
    let args = ["apply", "--yes", "--timeout", "3", "--argstr", "apiImage", "registry.example.com/shop/api:missing"];
    let started = Instant::now();
    let out = fake.pipeline(&args);
    let err = all(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60), "the timeout is kept");
    assert!(err.contains("deployment/api did not become ready within 3s"), "{err}");
    assert!(err.contains("ImagePullBackOff"), "the pod's reason is shown: {err}");
    assert!(err.contains("Back-off pulling image"), "with its message: {err}");
    assert!(err.contains("pod/api-"), "naming the pod: {err}");
    // Stages after the failed one do not run.
    assert!(!fake.objects().contains(&("cronjobs".into(), "nightly".into())), "{:?}", fake.objects());
}

/// An update whose pods never become ready is rolled back: the Deployment is taken back to the spec it
/// ran (its old pods kept serving through the rolling update), the summary and `--json` say the previous
/// version was kept, and the next plan still has the update to make.
#[test]
fn an_update_that_does_not_become_ready_is_rolled_back() {
    let fake = start();
    applied(&fake, &["apply", "--yes"]);
    let image =
        |fake: &Fake| fake.object("deployments", "api")["spec"]["template"]["spec"]["containers"][0]["image"].clone();
    let good = image(&fake);
    assert!(good.as_str().is_some_and(|i| i.starts_with("registry.example.com/shop/api:1.4")), "{good}");

    fake.config(json!({ "behaviour": [{ "match": "shop/api:missing", "pull": "fail" }] }));
    let args =
        ["apply", "--yes", "--json", "--timeout", "3", "--argstr", "apiImage", "registry.example.com/shop/api:missing"];
    let out = fake.pipeline(&args);
    let err = all(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let outcome: Json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"));
    let api =
        outcome["services"].as_array().into_iter().flatten().find(|s| s["name"] == "api").cloned().unwrap_or_default();
    assert_eq!(api["deploy"], "failed", "{outcome:#}");
    assert_eq!(api["kept_previous"], true, "{outcome:#}");
    assert_eq!(api["error_code"], "pipeline::kubernetes::rolled_back", "{outcome:#}");
    let message = api["error"].as_str().unwrap_or_default();
    assert!(message.contains("ImagePullBackOff"), "the pods' reason: {message}");
    assert!(message.ends_with("rolled back: the previous version keeps serving"), "{message}");
    assert_eq!(image(&fake), good, "the Deployment runs the previous image again");

    // The definitions still ask for the update.
    let plan = fake.pipeline(&["plan", "--argstr", "apiImage", "registry.example.com/shop/api:missing"]);
    assert!(text(&plan.stdout).contains("~ api"), "{}", text(&plan.stdout));
}

/// The objects of `api` (with its endpoints, so its Ingress too) as the stand-in serves them after an
/// apply: recorded in `executor/tests/kube_diff/served-api.json`, which `executor/tests/kube_diff.rs`
/// diffs against, so the object diff is tested on objects a server made, not on our own output. This test
/// fails when the recording is stale (`UPDATE_EXPECT=1` rewrites it; review the diff). Times, uids and
/// resourceVersions, and cluster IPs, which change from run to run, are written as `<time>`, `<uid>`,
/// `<version>` and `<ip>`.
#[test]
fn the_served_objects_kube_diff_reads_are_current() {
    let fake = start();
    applied(&fake, &["apply", "--yes", "--arg", "withEndpoints", "true"]);
    fn stable(v: &mut Json) {
        match v {
            Json::Object(m) => {
                for (k, x) in m.iter_mut() {
                    match k.as_str() {
                        "creationTimestamp" | "lastTransitionTime" | "lastUpdateTime" | "time" if x.is_string() => {
                            *x = json!("<time>")
                        }
                        "uid" if x.is_string() => *x = json!("<uid>"),
                        // Allocated by the server in the order Services come.
                        "clusterIP" => *x = json!("<ip>"),
                        "clusterIPs" => *x = json!(["<ip>"]),
                        "resourceVersion" if x.is_string() => *x = json!("<version>"),
                        _ => stable(x),
                    }
                }
            }
            Json::Array(a) => a.iter_mut().for_each(stable),
            _ => {}
        }
    }
    let mut served = Vec::new();
    for (resource, name) in
        [("configmaps", "api-env"), ("services", "api"), ("deployments", "api"), ("ingresses", "api")]
    {
        let mut o = fake.object(resource, name);
        assert!(o.is_object(), "{resource}/{name} was not served");
        stable(&mut o);
        served.push(o);
    }
    let text = serde_json::to_string_pretty(&served).expect("json") + "\n";
    support::expect_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("executor/tests/kube_diff/served-api.json"),
        &text,
    );
}

#[test]
fn a_job_that_fails_fails_its_stage_with_its_exit_code_and_log() {
    let fake = start();
    fake.config(json!({ "behaviour": [{ "match": "/app/migrate", "exit": 3,
                                        "log": "migrating\nERROR: relation \"users\" does not exist" }] }));
    let out = fake.pipeline(&["apply", "--yes"]);
    let err = all(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("failed: BackoffLimitExceeded: Job has reached the specified backoff limit"), "{err}");
    assert!(err.contains("terminated Error (exit code 3)"), "{err}");
    assert!(err.contains("| ERROR: relation \"users\" does not exist"), "the last log lines: {err}");
    let objects = fake.objects();
    assert!(!objects.contains(&("deployments".into(), "api".into())), "the next stage did not run: {objects:?}");
    // `pipeline logs` reads the job's pod log through the API server, prefixed with the service.
    let out = fake.pipeline(&["logs", "migrate", "--tail", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert_eq!(text(&out.stdout), "migrate | ERROR: relation \"users\" does not exist\n");
    let out = fake.pipeline(&["logs", "migrat"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(all(&out).contains("did you mean `migrate`?"), "{}", all(&out));

    // A second apply runs the job again (a failed job is not taken for done) and, now passing, goes on.
    fake.config(json!({ "behaviour": [] }));
    applied(&fake, &["apply", "--yes"]);
    assert!(fake.objects().contains(&("deployments".into(), "api".into())));
}

#[test]
fn a_change_the_server_refuses_in_place_is_replaced_by_delete_and_create() {
    let fake = start();
    applied(&fake, &["apply", "--yes"]);
    let before = fake.object("statefulsets", "db");
    assert!(before["spec"]["volumeClaimTemplates"].is_array());

    // volumeClaimTemplates cannot change on a live StatefulSet (the server answers 422): pipeline deletes
    // and creates it, and waits for the old one to be gone, which takes a while (a finalizer).
    fake.config(json!({ "holdFinalizer": { "statefulsets/db": 1.0 } }));
    let plan = fake.pipeline(&["plan", "--arg", "dbVolume", "null"]);
    assert!(text(&plan.stdout).contains("-/+ db"), "{}", text(&plan.stdout));
    applied(&fake, &["apply", "--yes", "--arg", "dbVolume", "null"]);
    let after = fake.object("statefulsets", "db");
    assert_ne!(after["metadata"]["uid"], before["metadata"]["uid"], "a new object");
    assert!(after["spec"]["volumeClaimTemplates"].is_null(), "{after}");
    assert!(after["metadata"]["deletionTimestamp"].is_null(), "not the terminating old one: {after}");
    let deletes = fake
        .requests()
        .into_iter()
        .filter(|r| r["method"] == "DELETE" && r["path"] == "/apis/apps/v1/namespaces/shop-fake/statefulsets/db")
        .count();
    assert_eq!(deletes, 1);

    // Proof that the server refuses the change in place: the same object applied directly.
    let mut in_place = before.clone();
    for k in ["uid", "resourceVersion", "managedFields", "creationTimestamp", "generation"] {
        in_place["metadata"].as_object_mut().map(|m| m.remove(k));
    }
    in_place.as_object_mut().map(|m| m.remove("status"));
    in_place["spec"]["volumeClaimTemplates"] = json!([{ "metadata": { "name": "other" },
        "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "2Gi" } } } }]);
    let (code, status) = fake.http_as(
        "PATCH",
        "/apis/apps/v1/namespaces/shop-fake/statefulsets/db?fieldManager=pipeline",
        "application/apply-patch+yaml",
        Some(&in_place),
    );
    assert_eq!(code, 422, "{status}");
    assert!(status["message"].as_str().unwrap_or("").contains("updates to statefulset spec"), "{status}");
}

#[test]
fn the_lease_is_renewed_during_a_long_apply_and_not_released_when_someone_else_holds_it() {
    let fake = start();
    // Slow pods (an apply of several seconds) and a 2-second lease, renewed every ~0.7 s.
    fake.config(json!({ "podReadySeconds": 1.5 }));
    let mut child = fake
        .command(&["apply", "--yes"])
        .env("PIPELINE_KUBE_LEASE_SECONDS", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pipeline");
    let started = Instant::now();
    let mut renewals = std::collections::BTreeSet::new();
    let mut taken = false;
    while child.try_wait().expect("wait").is_none() {
        let lease = fake.object("leases", "pipeline-shop-fake");
        if let Some(t) = lease["spec"]["renewTime"].as_str()
            && lease["spec"]["holderIdentity"] != "mallory@elsewhere pid 1"
        {
            renewals.insert(t.to_string());
        }
        // After a few renewals (and longer than the lease lasts), someone else takes the lease over, as
        // an apply would that found it expired.
        if !taken && renewals.len() >= 4 {
            assert!(started.elapsed() > Duration::from_secs(2), "kept past its 2 s duration by renewal");
            let mut theirs = lease.clone();
            theirs["spec"]["holderIdentity"] = json!("mallory@elsewhere pid 1");
            let (code, _) = fake.http_as("PUT", LEASE, "application/json", Some(&theirs));
            assert_eq!(code, 200, "taken over");
            taken = true;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "apply does not end");
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("apply output");
    show(&["apply", "--yes"], &out);
    assert!(taken, "the apply ended before the lease was renewed 4 times: {renewals:?}");
    assert_eq!(out.status.code(), Some(0), "the deploys themselves succeeded");
    let err = text(&out.stderr);
    assert!(
        err.contains("the lease shop-fake/pipeline-shop-fake of shop/fake was lost during this run: it is held by mallory@elsewhere pid 1 now"),
        "{err}"
    );
    let lease = fake.object("leases", "pipeline-shop-fake");
    assert_eq!(lease["spec"]["holderIdentity"], "mallory@elsewhere pid 1", "someone else's lease is not released");
    let deletes = fake.requests().into_iter().filter(|r| r["method"] == "DELETE" && r["path"] == LEASE).count();
    assert_eq!(deletes, 0);
}

#[test]
fn a_rollout_outlives_watches_the_server_ends_and_expires() {
    let fake = start();
    // Every watch ends after 0.3 s, and no bookmark moves the client's resourceVersion on, so once the
    // history is compacted its next watch is answered 410 Expired, as a real server does after etcd
    // compaction: the waits must list and watch again, not fail.
    fake.config(json!({ "podReadySeconds": 1.0, "watchMaxSeconds": 0.3, "bookmarkSeconds": 3600 }));
    let mut child =
        fake.command(&["apply", "--yes"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        fake.http("POST", "/fake/compact", None);
        assert!(started.elapsed() < Duration::from_secs(120), "apply does not end");
        std::thread::sleep(Duration::from_millis(150));
    }
    let out = child.wait_with_output().expect("apply output");
    show(&["apply", "--yes"], &out);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let expired = fake.requests().iter().filter(|r| r["query"]["watch"] == "true").count();
    assert!(expired > 5, "the waits watched again and again ({expired} watches)");
}

#[test]
fn the_mirror_login_becomes_the_pull_secret_every_workload_pulls_with() {
    let fake = start();
    // The Docker config holds a login for the mirror's host (registry.example.com).
    let config = fake.dir.path().join("docker-config");
    std::fs::create_dir_all(&config).expect("mkdir");
    std::fs::write(
        config.join("config.json"),
        r#"{ "auths": { "registry.example.com": { "auth": "Y2ktYm90OnMzY3JldA==" } } }"#,
    )
    .expect("write config");
    let run = |args: &[&str]| {
        let out = fake.command(args).env("DOCKER_CONFIG", &config).output().expect("run pipeline");
        show(args, &out);
        out
    };
    let out = run(&["apply", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let secret = fake.object("secrets", "pipeline-registry");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    let data = secret["data"][".dockerconfigjson"].as_str().expect("data");
    let decoded = Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().expect("stdin").write_all(data.as_bytes())?;
            c.wait_with_output()
        });
    let decoded: Json = serde_json::from_slice(&decoded.expect("base64").stdout).expect("dockerconfigjson");
    assert_eq!(decoded["auths"]["registry.example.com"]["username"], "ci-bot");
    assert_eq!(decoded["auths"]["registry.example.com"]["password"], "s3cret");
    for (kind, name) in [("deployments", "api"), ("statefulsets", "db")] {
        let pull = &fake.object(kind, name)["spec"]["template"]["spec"]["imagePullSecrets"];
        assert_eq!(pull, &json!([{ "name": "pipeline-registry" }]), "{kind}/{name}");
    }
    // Applied as planned: nothing left to do; destroy removes it with the rest.
    let plan = run(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", all(&plan));
    let out = run(&["destroy", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(!fake.objects().contains(&("secrets".into(), "pipeline-registry".into())));
}

#[test]
fn logs_of_several_pods_merge_with_their_prefixes_tail_since_and_follow() {
    let fake = start();
    fake.config(json!({ "behaviour": [{ "match": "shop/api:1.4", "log": "api started\napi ready" }] }));
    applied(&fake, &["apply", "--yes"]);
    let logs = |args: &[&str]| {
        let mut all_args = vec!["logs", "api"];
        all_args.extend_from_slice(args);
        let out = fake.pipeline(&all_args);
        assert_eq!(out.status.code(), Some(0), "{}", all(&out));
        text(&out.stdout)
    };
    // Two pods, two lines each, merged in time order (sinceSeconds, tailLines and timestamps as asked).
    let both = logs(&[]);
    let lines: Vec<&str> = both.lines().collect();
    assert_eq!(lines.len(), 4, "{both}");
    for prefix in ["api-1 | ", "api-2 | "] {
        assert_eq!(lines.iter().filter(|l| l.starts_with(prefix)).count(), 2, "{both}");
    }
    let last = logs(&["--tail", "1"]);
    assert_eq!(last.lines().filter(|l| l.ends_with("| api ready")).count(), 2, "{last}");
    assert_eq!(last.lines().count(), 2, "{last}");
    assert_eq!(logs(&["--since", "1h"]).lines().count(), 4);
    assert_eq!(logs(&["--since", "2099-01-01T00:00:00Z"]), "");
    let stamped = logs(&["--timestamps"]);
    let times: Vec<&str> = stamped.lines().map(|l| l.split(' ').nth(2).unwrap_or_default()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "{stamped}");

    // Following: what there is, then it keeps going until stopped.
    let mut child =
        fake.command(&["logs", "-f", "api"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
        seen.push(line);
        if seen.len() == 4 {
            break;
        }
    }
    assert!(child.try_wait().expect("wait").is_none(), "it keeps following");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(seen.len(), 4, "{seen:?}");
}

#[test]
fn public_endpoints_become_an_ingress_that_replans_to_nothing_is_pruned_and_destroyed() {
    let fake = start();
    let with = ["--arg", "withEndpoints", "true"];
    let out = fake.pipeline(&[&["apply", "--yes"][..], &with].concat());
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    let summary = text(&out.stdout);
    assert!(summary.contains("https://shop.example.com/api"), "TLS for the real domain: {summary}");
    assert!(summary.contains("http://api.shop.localhost/"), "plain HTTP for a local host: {summary}");

    // One Ingress named after the service, as the server stored it: a rule per host, Prefix paths to the
    // service's port, the class, TLS and the issuer for the real domain only.
    let ingress = fake.object("ingresses", "api");
    assert_eq!(ingress["metadata"]["labels"]["pipeline.dev/service"], "api", "{ingress:#}");
    assert_eq!(ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"], "letsencrypt");
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    let backend = json!({ "service": { "name": "api", "port": { "number": 8080 } } });
    assert_eq!(
        ingress["spec"]["rules"],
        json!([
            { "host": "api.shop.localhost", "http": { "paths": [{ "path": "/", "pathType": "Prefix", "backend": backend }] } },
            { "host": "shop.example.com", "http": { "paths": [{ "path": "/api", "pathType": "Prefix", "backend": backend }] } },
        ])
    );
    assert_eq!(ingress["spec"]["tls"], json!([{ "hosts": ["shop.example.com"], "secretName": "api-tls" }]));
    assert_eq!(ingress["status"], json!({ "loadBalancer": {} }), "the server's default status");
    let api = fake.object("deployments", "api");
    assert_eq!(api["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], 20, "from stopGracePeriod");
    let db = fake.object("statefulsets", "db");
    assert_eq!(db["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], 30, "the server's default");

    // Read back with the server's defaults: nothing to do.
    let plan = fake.pipeline(&[&["plan", "--detailed-exitcode"][..], &with].concat());
    assert_eq!(plan.status.code(), Some(0), "a plan after apply has nothing to do:\n{}", text(&plan.stdout));

    // Without the endpoints the Ingress goes: planned, then pruned by apply.
    let plan = fake.pipeline(&["plan", "--detailed-exitcode"]);
    let shown = text(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(shown.contains("- ingress/api"), "{shown}");
    applied(&fake, &["apply", "--yes"]);
    assert!(!fake.objects().contains(&("ingresses".into(), "api".into())), "{:?}", fake.objects());
    assert!(fake.objects().contains(&("services".into(), "api".into())), "the Service stays for the ports");
    let plan = fake.pipeline(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stdout));

    // Back again, then destroy removes it with everything else.
    let plan = fake.pipeline(&[&["plan"][..], &with].concat());
    assert!(text(&plan.stdout).contains("+ ingress/api"), "{}", text(&plan.stdout));
    applied(&fake, &[&["apply", "--yes"][..], &with].concat());
    assert!(fake.objects().contains(&("ingresses".into(), "api".into())));
    let out = fake.pipeline(&["destroy", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", all(&out));
    assert!(all(&out).contains("ingress/api"), "destroy names it: {}", all(&out));
    let left: Vec<(String, String)> =
        fake.objects().into_iter().filter(|(r, _)| r != "namespaces" && r != "persistentvolumeclaims").collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A client of the stand-in for the executor's own Kubernetes code.
fn cluster(fake: &Fake) -> pipeline_executor::kubernetes::Cluster {
    let server = format!("http://127.0.0.1:{}", fake.port);
    let config = kube::Config::new(server.parse().expect("the stand-in's URL"));
    let client = kube::Client::try_from(config).expect("a client of the stand-in");
    pipeline_executor::kubernetes::Cluster { client, server, namespace: "shop-fake".into() }
}

#[test]
fn a_build_claim_on_the_cluster_is_held_once_renewed_taken_over_when_its_run_dies_and_released() {
    use pipeline_executor::claim::Timing;
    use pipeline_executor::kubernetes::build_claim::{self, ClusterClaimed, NAMESPACE};
    let fake = start();
    let key = "5f".repeat(32);
    let lease = format!("pipeline-build-{key}");
    // Lasts 2 s unless renewed, renewed every 0.3 s.
    let quick = Timing { ttl: Duration::from_secs(2), renew: Duration::from_millis(300) };
    let holder = |c: &ClusterClaimed| match c {
        ClusterClaimed::Mine(_) => "mine".to_string(),
        ClusterClaimed::Theirs(h) => h.holder.clone(),
    };

    // Runner 1 claims the key: the namespace is made for it. Its run "dies": the runtime that renews the
    // claim stops, and the claim is neither renewed nor released.
    let first = tokio::runtime::Runtime::new().expect("runtime");
    first.block_on(async {
        let c = cluster(&fake);
        let mine = build_claim::claim(&c, &key, "ci@runner-1 pid 1", quick).await.expect("claim");
        assert_eq!(holder(&mine), "mine");
        assert!(!fake.object("namespaces", NAMESPACE).is_null(), "the claims' namespace was made");
        // Another run sees runner 1's claim, in a claim and in the list the plan reads; still after the
        // claim's own duration, since it is renewed.
        for wait in [0, 3] {
            tokio::time::sleep(Duration::from_secs(wait)).await;
            let theirs = build_claim::claim(&c, &key, "ci@runner-2 pid 2", quick).await.expect("claim");
            assert_eq!(holder(&theirs), "ci@runner-1 pid 1", "after {wait} s");
            let listed = build_claim::list(&c).await.expect("list");
            assert_eq!(listed.get(&key).map(|h| h.holder.as_str()), Some("ci@runner-1 pid 1"));
        }
        std::mem::forget(mine);
    });
    drop(first);
    let renewed = fake.object("leases", &lease)["spec"]["renewTime"].clone();
    assert_ne!(renewed, fake.object("leases", &lease)["spec"]["acquireTime"], "it was renewed");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let c = cluster(&fake);
        // Runner 2 waits while the claim lasts, then takes it over.
        let started = Instant::now();
        let taken = loop {
            match build_claim::claim(&c, &key, "ci@runner-2 pid 2", quick).await.expect("claim") {
                ClusterClaimed::Mine(m) => break m,
                ClusterClaimed::Theirs(h) => assert_eq!(h.holder, "ci@runner-1 pid 1"),
            }
            assert!(started.elapsed() < Duration::from_secs(10), "the dead run's claim never ran out");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(started.elapsed() >= Duration::from_secs(1), "taken over before it ran out");
        let spec = fake.object("leases", &lease)["spec"].clone();
        assert_eq!(spec["holderIdentity"], "ci@runner-2 pid 2");
        assert_eq!(spec["leaseTransitions"], 1);
        taken.release().await;
        assert!(fake.object("leases", &lease).is_null(), "released: the Lease is gone");
        assert!(build_claim::list(&c).await.expect("list").is_empty());

        // A holder on this host whose process has ended is taken over at once.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
        let gone = format!("ci@{} pid 4194303", host.trim());
        let ClusterClaimed::Mine(orphan) = build_claim::claim(&c, &key, &gone, quick).await.expect("claim") else {
            panic!("the key was free")
        };
        std::mem::forget(orphan);
        let now = build_claim::claim(&c, &key, "ci@runner-3 pid 3", quick).await.expect("claim");
        assert_eq!(holder(&now), "mine", "a claim of an ended process is taken over at once");
    });
}
