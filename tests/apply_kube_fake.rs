//! `pipeline apply`, `plan` and `destroy` with a Kubernetes target, end to end through the binary, against
//! an in-memory stand-in for an API server (`tests/support/fake_kube.py`; no cluster can run here): the
//! kubeconfig is read, the namespace created, the Lease taken and released, objects server-side applied
//! as `pipeline`, live state read back so a second plan has nothing to do, drift shown and repaired,
//! removed services pruned, a held Lease refused, and destroy. What a real server adds (defaults,
//! managedFields) is covered by `executor/tests/kube_diff.rs`; the real-cluster test is
//! `tests/kube_cluster.rs`.

use serde_json::Value as Json;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

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
    let child = Command::new("python3").arg(script).arg(&port_file).spawn().expect("python3 runs the fake API server");
    let mut port = None;
    for _ in 0..200 {
        if let Some(p) = std::fs::read_to_string(&port_file).ok().and_then(|s| s.trim().parse().ok()) {
            port = Some(p);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let port = port.expect("the fake API server did not start");
    std::fs::write(
        dir.path().join("kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: 'http://127.0.0.1:{port}'}}\n\
             contexts:\n- name: fake\n  context: {{cluster: fake, user: u}}\ncurrent-context: fake\nusers:\n- name: u\n  user: {{token: t}}\n"
        ),
    )
    .expect("kubeconfig");
    Fake { child, port, dir }
}

impl Fake {
    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn pipeline(&self, args: &[&str]) -> Output {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/apply/kube");
        let out = Command::new(env!("CARGO_BIN_EXE_pipeline"))
            .args(args)
            .current_dir(&fixture)
            .env("KUBECONFIG", self.kubeconfig())
            .env("NO_COLOR", "1")
            .env("DOCKER_HOST", "tcp://127.0.0.1:9") // no engine is needed: every image is prebuilt
            .env("PIPELINE_SECRET_DB_PASSWORD", "fake-cluster-password")
            .output()
            .expect("run pipeline");
        eprintln!(
            "$ pipeline {} -> {:?}\n{}{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn http(&self, method: &str, path: &str, body: Option<&Json>) -> Json {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the fake");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: fake\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read");
        let (_, b) = text.split_once("\r\n\r\n").unwrap_or_default();
        serde_json::from_str(b).unwrap_or(Json::Null)
    }

    fn objects(&self) -> Vec<(String, String)> {
        let all = self.http("GET", "/fake/objects", None);
        all.as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["namespace"] == "shop-fake")
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
}

fn python_available() -> bool {
    let ok = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: no python3 to run the fake API server (scripts/install-test-deps installs it)");
    }
    ok
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn apply_plan_drift_prune_lease_and_destroy_against_a_fake_api_server() {
    if !python_available() {
        return;
    }
    let fake = start();

    // First apply: namespace, lease, every object applied as `pipeline`.
    let out = fake.pipeline(&["apply", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
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

    let requests = fake.http("GET", "/fake/requests", None);
    let requests = requests.as_array().expect("requests");
    let applies: Vec<&Json> =
        requests.iter().filter(|r| r["method"] == "PATCH" && r["query"]["fieldManager"].is_string()).collect();
    assert!(applies.len() >= 10, "{applies:?}");
    for r in &applies {
        assert_eq!(r["contentType"], "application/apply-patch+yaml");
        assert_eq!(r["query"]["fieldManager"], "pipeline");
        assert!(r["query"]["force"].is_null(), "no force without --force-conflicts");
    }
    assert_eq!(applies[0]["path"], "/api/v1/namespaces/shop-fake", "the namespace is created first");
    let lease_path = "/apis/coordination.k8s.io/v1/namespaces/shop-fake/leases";
    assert!(requests.iter().any(|r| r["method"] == "POST" && r["path"] == lease_path), "lease taken");
    assert!(
        requests.iter().any(|r| r["method"] == "DELETE" && r["path"] == format!("{lease_path}/pipeline-shop-fake")),
        "lease released"
    );

    // Live state read back: nothing to do.
    let plan = fake.pipeline(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "a plan after apply has nothing to do:\n{}", text(&plan.stdout));

    // Drift: someone scales the api; the plan shows it field by field and apply repairs it.
    fake.http("POST", "/fake/scale?namespace=shop-fake&name=api&replicas=5", None);
    let plan = fake.pipeline(&["plan", "--detailed-exitcode"]);
    let shown = text(&plan.stdout);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(shown.contains("~ api (container)"), "{shown}");
    assert!(shown.contains("~ deployment/api"), "{shown}");
    assert!(shown.contains("~ spec.replicas: 5 -> 2"), "{shown}");
    let out = fake.pipeline(&["apply", "--yes"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(fake.object("deployments", "api")["spec"]["replicas"], 2);

    // A removed service is pruned: its objects are deleted.
    let plan = fake.pipeline(&["plan", "--arg", "withWorker", "false"]);
    assert!(text(&plan.stdout).contains("- deployment/worker"), "{}", text(&plan.stdout));
    let out = fake.pipeline(&["apply", "--yes", "--arg", "withWorker", "false"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!fake.objects().contains(&("deployments".into(), "worker".into())));

    // Another apply holds the lease: refused, naming the holder.
    fake.http("POST", "/fake/lease?namespace=shop-fake&name=pipeline-shop-fake&holder=alice%40ci-7%20pid%2042", None);
    let out = fake.pipeline(&["apply", "--yes"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("shop/fake is locked by alice@ci-7 pid 42"), "{err}");
    fake.http("DELETE", &format!("{lease_path}/pipeline-shop-fake"), None);

    // Destroy removes every object of the environment.
    let out = fake.pipeline(&["destroy", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let left: Vec<(String, String)> = fake.objects().into_iter().filter(|(r, _)| r != "namespaces").collect();
    assert!(left.is_empty(), "{left:?}");
}
