//! The Kubernetes client logic against kube's mock service (tower-test): the exact requests it sends
//! (server-side apply content type, field manager, force) and what it makes of the answers: 404, a 409
//! field-manager conflict, 403, a watch that times out, a rollout that never becomes ready, a failed job,
//! and a lease held by someone else.

use http::{Method, Request, Response, StatusCode};
use kube::Client;
use kube::client::Body;
use pipeline_executor::build::Note;
use pipeline_executor::kubernetes::KubernetesTarget;
use pipeline_executor::kubernetes::deploy::DeployError;
use pipeline_executor::kubernetes::lease::{self, LeaseError};
use pipeline_executor::kubernetes::manifest::{self, Scope};
use pipeline_executor::kubernetes::wait::{self, WaitError};
use pipeline_executor::kubernetes::{Cluster, KubernetesError};
use pipeline_executor::target::{Run, ServiceDeploy};
use pipeline_planner::DeploySpec;
use pipeline_planner::plan::DeployAction;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NS: &str = "shop-staging";

/// One request as the mock saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: String,
    content_type: Option<String>,
    body: Json,
}

impl Seen {
    fn param(&self, k: &str) -> Option<String> {
        self.query
            .split('&')
            .find_map(|p| p.strip_prefix(&format!("{k}=")))
            .map(|v| v.replace("%3D", "=").replace("%2C", ",").replace("%2F", "/"))
    }
    fn is_watch(&self) -> bool {
        self.param("watch").as_deref() == Some("true")
    }
}

/// An answer: a JSON body with a status, watch events (then the stream ends, as when the server times a
/// watch out), or no answer at all (a watch that never sends anything).
enum Reply {
    Json(u16, Json),
    Events(Vec<Json>),
    Hang,
}

type Router = Box<dyn Fn(&Seen, usize) -> Reply + Send + Sync>;

/// A client whose requests go to `route` (given the request and how many requests came before it);
/// every request is recorded.
fn mock(route: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> (Cluster, Arc<Mutex<Vec<Seen>>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let route: Router = Box::new(route);
    tokio::spawn(async move {
        let mut hung = Vec::new();
        while let Some((req, send)) = handle.next_request().await {
            let (parts, body) = req.into_parts();
            let bytes = body.collect_bytes().await.unwrap_or_default();
            let s = Seen {
                method: parts.method.clone(),
                path: parts.uri.path().to_string(),
                query: parts.uri.query().unwrap_or_default().to_string(),
                content_type: parts.headers.get("content-type").and_then(|v| v.to_str().ok()).map(String::from),
                body: serde_json::from_slice(&bytes).unwrap_or(Json::Null),
            };
            let n = {
                let mut l = log.lock().unwrap();
                l.push(s.clone());
                l.len() - 1
            };
            let response = |status: u16, body: Vec<u8>| {
                Response::builder().status(StatusCode::from_u16(status).unwrap()).body(Body::from(body)).unwrap()
            };
            match route(&s, n) {
                Reply::Json(status, v) => send.send_response(response(status, serde_json::to_vec(&v).unwrap())),
                Reply::Events(events) => {
                    let mut b = Vec::new();
                    for e in events {
                        b.extend(serde_json::to_vec(&e).unwrap());
                        b.push(b'\n');
                    }
                    send.send_response(response(200, b))
                }
                Reply::Hang => hung.push(send),
            }
        }
    });
    let client = Client::new(service, NS);
    (Cluster::for_client(client, NS), seen)
}

fn status(code: u16, reason: &str, message: &str, causes: Json) -> Reply {
    Reply::Json(
        code,
        json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                "reason": reason, "code": code, "details": { "causes": causes } }),
    )
}

fn not_found() -> Reply {
    status(404, "NotFound", "not found", json!([]))
}

fn list(kind: &str, items: Vec<Json>) -> Reply {
    Reply::Json(
        200,
        json!({ "kind": format!("{kind}List"), "apiVersion": "v1", "metadata": { "resourceVersion": "100" }, "items": items }),
    )
}

fn scope() -> Scope {
    Scope {
        project: "shop".into(),
        environment: "staging".into(),
        namespace: NS.into(),
        pull_secret: false,
        ingress_class: None,
        tls: None,
    }
}

fn api_spec() -> Json {
    json!({ "type": "application", "stage": "3.DEFAULT APPLICATION", "image": "127.0.0.1:5000/shop/api:abc",
            "env": { "LOG_LEVEL": "info" }, "secrets": {}, "ports": [8080], "replicas": 2, "dependsOn": [] })
}

fn deployment(name: &str, generation: i64, status: Json) -> Json {
    json!({ "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": name, "namespace": NS, "generation": generation, "resourceVersion": "7",
                          "labels": { "app.kubernetes.io/managed-by": "pipeline", "pipeline.dev/project": "shop",
                                      "pipeline.dev/environment": "staging", "pipeline.dev/service": name } },
            "spec": { "replicas": 2, "selector": { "matchLabels": { "app.kubernetes.io/name": name } },
                      "template": { "spec": { "containers": [] } } },
            "status": status })
}

fn ready() -> Json {
    json!({ "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2 })
}

#[tokio::test]
async fn apply_is_a_server_side_apply_patch_as_field_manager_pipeline() {
    let (cluster, seen) = mock(|s, _| Reply::Json(200, s.body.clone()));
    let objects =
        manifest::service_objects(&scope(), "api", &typed(&api_spec()), Some("abc"), manifest::SecretValues::Hidden)
            .unwrap();
    let deployment = objects.iter().find(|o| o.kind() == "Deployment").unwrap();
    cluster.apply(deployment, false).await.unwrap();
    cluster.apply(deployment, true).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let r = &seen[0];
    assert_eq!(r.method, Method::PATCH);
    assert_eq!(r.path, format!("/apis/apps/v1/namespaces/{NS}/deployments/api"));
    assert_eq!(r.content_type.as_deref(), Some("application/apply-patch+yaml"));
    assert_eq!(r.param("fieldManager").as_deref(), Some("pipeline"));
    assert_eq!(r.param("force"), None, "force is only sent with --force-conflicts");
    assert_eq!(r.body, deployment.to_json(), "the body is the whole object");
    assert_eq!(r.body["apiVersion"], "apps/v1");
    assert_eq!(r.body["kind"], "Deployment");
    assert_eq!(seen[1].param("force").as_deref(), Some("true"));
    assert_eq!(seen[1].param("fieldManager").as_deref(), Some("pipeline"));
}

#[tokio::test]
async fn a_conflict_names_the_field_and_the_manager_that_owns_it() {
    let (cluster, _) = mock(|_, _| {
        status(
            409,
            "Conflict",
            "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas",
            json!([{ "reason": "FieldManagerConflict", "message": "conflict with \"kubectl-edit\" using apps/v1", "field": ".spec.replicas" }]),
        )
    });
    let objects =
        manifest::service_objects(&scope(), "api", &typed(&api_spec()), None, manifest::SecretValues::Hidden).unwrap();
    let d = objects.iter().find(|o| o.kind() == "Deployment").unwrap();
    let err = cluster.apply(d, false).await.unwrap_err();
    let KubernetesError::Conflict { object, fields } = &err else { panic!("not a conflict: {err:?}") };
    assert_eq!(object, "deployment/api");
    assert_eq!(fields, &[(".spec.replicas".to_string(), "kubectl-edit".to_string())]);
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert!(help.contains("--force-conflicts"), "{help}");
    assert!(err.to_string().contains("owned by `kubectl-edit`"), "{err}");
}

#[tokio::test]
async fn forbidden_names_the_missing_permission() {
    let (cluster, _) = mock(|_, _| {
        status(
            403,
            "Forbidden",
            "deployments.apps \"api\" is forbidden: User \"ci\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"shop-staging\"",
            json!([]),
        )
    });
    let objects =
        manifest::service_objects(&scope(), "api", &typed(&api_spec()), None, manifest::SecretValues::Hidden).unwrap();
    let d = objects.iter().find(|o| o.kind() == "Deployment").unwrap();
    let err = cluster.apply(d, false).await.unwrap_err();
    let KubernetesError::Forbidden { verb, resource, namespace, .. } = &err else { panic!("not forbidden: {err:?}") };
    assert_eq!((verb.as_str(), resource.as_str(), namespace.as_str()), ("patch", "deployments.apps", NS));
    let help = miette::Diagnostic::help(&err).unwrap().to_string();
    assert!(help.contains("`patch` on `deployments.apps`"), "{help}");
    assert!(help.contains("--verb=patch --resource=deployments.apps -n shop-staging"), "{help}");
}

#[tokio::test]
async fn not_found_is_absence_and_a_missing_namespace_is_created() {
    let (cluster, seen) = mock(|s, _| match s.method {
        Method::GET => not_found(),
        Method::DELETE => not_found(),
        _ => Reply::Json(200, s.body.clone()),
    });
    assert!(cluster.get("Deployment", "api").await.unwrap().is_none());
    cluster.delete("Deployment", "api").await.expect("deleting what is gone is not an error");
    let created = cluster.ensure_namespace(&manifest::namespace(&scope())).await.unwrap();
    assert!(created);
    let seen = seen.lock().unwrap();
    let last = seen.last().unwrap();
    assert_eq!(last.method, Method::PATCH);
    assert_eq!(last.path, format!("/api/v1/namespaces/{NS}"));
    assert_eq!(last.param("fieldManager").as_deref(), Some("pipeline"));
    assert_eq!(seen[1].param("propagationPolicy"), None, "delete options go in the body");
    assert_eq!(seen[1].body["propagationPolicy"], "Background");
}

/// Routes the requests a rollout wait makes: the watcher's list and watch of the Deployment, then the
/// explanation (the Deployment, its events, its pods, their events).
fn never_ready(s: &Seen, _: usize) -> Reply {
    let not_ready = json!({ "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 0, "availableReplicas": 0 });
    let deploys = format!("/apis/apps/v1/namespaces/{NS}/deployments");
    if s.path == deploys && s.is_watch() {
        return Reply::Hang;
    }
    if s.path == deploys {
        return list("Deployment", vec![deployment("api", 1, not_ready)]);
    }
    if s.path == format!("{deploys}/api") {
        return Reply::Json(200, deployment("api", 1, not_ready));
    }
    if s.path == format!("/api/v1/namespaces/{NS}/pods") {
        return list(
            "Pod",
            vec![json!({ "metadata": { "name": "api-7d9-x1" }, "status": { "phase": "Pending",
            "containerStatuses": [{ "name": "api", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                "state": { "waiting": { "reason": "ImagePullBackOff", "message": "Back-off pulling image \"127.0.0.1:5000/shop/api:abc\"" } } }] } })],
        );
    }
    if s.path == format!("/api/v1/namespaces/{NS}/events") {
        let name = s.param("fieldSelector").unwrap_or_default();
        if name.ends_with("api-7d9-x1") {
            return list(
                "Event",
                vec![json!({ "metadata": { "name": "e1" }, "involvedObject": {}, "type": "Warning",
                "reason": "Failed", "message": "Failed to pull image: connection refused", "count": 4 })],
            );
        }
        return list("Event", vec![]);
    }
    not_found()
}

#[tokio::test(start_paused = true)]
async fn a_rollout_that_never_becomes_ready_times_out_with_pod_states_and_events() {
    let (cluster, seen) = mock(never_ready);
    let err = wait::wait(&cluster, "Deployment", "api", Duration::from_secs(300)).await.unwrap_err();
    let WaitError::NotReady(e) = &err else { panic!("{err:?}") };
    let text = err.to_string();
    assert!(text.starts_with("deployment/api did not become ready within 5m: 0/2 ready, 2/2 updated"), "{text}");
    assert!(text.contains("pod/api-7d9-x1: Pending: waiting ImagePullBackOff (Back-off pulling image"), "{text}");
    assert!(text.contains("Warning Failed: Failed to pull image: connection refused (x4)"), "{text}");
    assert_eq!(e.namespace, NS);
    let seen = seen.lock().unwrap();
    let pods = seen.iter().find(|s| s.path.ends_with("/pods")).unwrap();
    assert_eq!(
        pods.param("labelSelector").as_deref(),
        Some("app.kubernetes.io/name=api"),
        "pods by the workload's selector"
    );
    assert!(seen.iter().any(|s| s.is_watch()), "the wait watches instead of polling");
}

#[tokio::test(start_paused = true)]
async fn a_watch_the_server_ends_is_resumed() {
    let deploys = format!("/apis/apps/v1/namespaces/{NS}/deployments");
    let watches = Arc::new(Mutex::new(0));
    let w = Arc::clone(&watches);
    let (cluster, _) = mock(move |s, _| {
        let not_ready = json!({ "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1 });
        if s.path == deploys && s.is_watch() {
            let mut n = w.lock().unwrap();
            *n += 1;
            // The first watch ends with nothing (the server's watch timeout); the next sees the rollout end.
            return if *n == 1 {
                Reply::Events(vec![])
            } else {
                Reply::Events(vec![json!({ "type": "MODIFIED", "object": deployment("api", 1, ready()) })])
            };
        }
        if s.path == deploys {
            return list("Deployment", vec![deployment("api", 1, not_ready)]);
        }
        not_found()
    });
    wait::wait(&cluster, "Deployment", "api", Duration::from_secs(300)).await.unwrap();
    assert!(*watches.lock().unwrap() >= 2);
}

#[tokio::test(start_paused = true)]
async fn an_old_generation_is_not_taken_for_done() {
    // Ready replicas, but the controller has not seen generation 2 yet.
    let d = deployment("api", 2, ready());
    assert!(matches!(wait::deployment_state(&serde_json::from_value(d).unwrap()), wait::State::Waiting(_)));
    let d = deployment("api", 1, ready());
    assert_eq!(wait::deployment_state(&serde_json::from_value(d).unwrap()), wait::State::Done);
    let stuck = deployment(
        "api",
        1,
        json!({ "observedGeneration": 1, "conditions": [{ "type": "Progressing", "status": "False",
        "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"api-1\" has timed out progressing." }] }),
    );
    let wait::State::Failed(why) = wait::deployment_state(&serde_json::from_value(stuck).unwrap()) else { panic!() };
    assert!(why.starts_with("ProgressDeadlineExceeded"), "{why}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_job_shows_its_reason_exit_code_and_last_lines() {
    let jobs = format!("/apis/batch/v1/namespaces/{NS}/jobs");
    let failed = json!({ "apiVersion": "batch/v1", "kind": "Job", "metadata": { "name": "migrate-1a2b3c4d", "resourceVersion": "9" },
        "spec": { "template": { "spec": { "containers": [] } } },
        "status": { "failed": 1, "conditions": [{ "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit" }] } });
    let (cluster, seen) = mock(move |s, _| {
        if s.path == jobs && !s.is_watch() {
            return list("Job", vec![failed.clone()]);
        }
        if s.path == format!("/api/v1/namespaces/{NS}/pods") {
            return list(
                "Pod",
                vec![json!({ "metadata": { "name": "migrate-1a2b3c4d-q" }, "status": { "phase": "Failed",
                "containerStatuses": [{ "name": "migrate", "ready": false, "restartCount": 0, "image": "i", "imageID": "",
                    "state": { "terminated": { "reason": "Error", "exitCode": 3 } } }] } })],
            );
        }
        if s.path.ends_with("/pods/migrate-1a2b3c4d-q/log") {
            return Reply::Json(200, json!("applying 0002_orders\nerror: relation \"orders\" already exists"));
        }
        if s.path.ends_with("/events") {
            return list("Event", vec![]);
        }
        not_found()
    });
    let err = wait::wait(&cluster, "Job", "migrate-1a2b3c4d", Duration::from_secs(60)).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "job/migrate-1a2b3c4d failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
        ),
        "{text}"
    );
    assert!(text.contains("pod/migrate-1a2b3c4d-q: Failed: terminated Error (exit code 3)"), "{text}");
    assert!(text.contains("error: relation"), "{text}");
    let seen = seen.lock().unwrap();
    let pods = seen.iter().find(|s| s.path.ends_with("/pods")).unwrap();
    assert_eq!(pods.param("labelSelector").as_deref(), Some("job-name=migrate-1a2b3c4d"));
    let log = seen.iter().find(|s| s.path.ends_with("/log")).unwrap();
    assert_eq!(log.param("tailLines").as_deref(), Some("10"));
}

fn lease(holder: &str, renewed: &str) -> Json {
    json!({ "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": { "name": "pipeline-shop-staging", "namespace": NS, "resourceVersion": "41" },
            "spec": { "holderIdentity": holder, "leaseDurationSeconds": 60, "renewTime": renewed, "leaseTransitions": 2 } })
}

#[tokio::test]
async fn a_lease_held_by_another_apply_names_the_holder_and_the_expiry() {
    let renewed = k8s_openapi::jiff::Timestamp::now().to_string();
    let (cluster, seen) = mock(move |s, _| match s.method {
        Method::GET => Reply::Json(200, lease("alice@ci-7 pid 42", &renewed)),
        _ => Reply::Json(200, s.body.clone()),
    });
    let err = lease::acquire(&cluster, &scope(), "bob@laptop pid 7").await.err().expect("locked");
    let LeaseError::Locked { holder, expires, .. } = &err else { panic!("{err:?}") };
    assert_eq!(holder, "alice@ci-7 pid 42");
    assert!(expires.contains("(in 5") || expires.contains("(in 6"), "{expires}");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "shop/staging is locked by alice@ci-7 pid 42 (Lease shop-staging/pipeline-shop-staging, expires"
        ),
        "{text}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1, "nothing is written to a held lease");
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_a_missing_one_created() {
    // The server keeps what was written: the takeover, then what release reads back.
    let stored = Arc::new(Mutex::new(lease("alice@ci-7 pid 42", "2020-01-01T00:00:00.000000Z")));
    let (cluster, seen) = mock(move |s, _| match s.method {
        Method::GET => Reply::Json(200, stored.lock().unwrap().clone()),
        Method::PUT => {
            let mut written = s.body.clone();
            written["metadata"]["resourceVersion"] = json!("42");
            *stored.lock().unwrap() = written.clone();
            Reply::Json(200, written)
        }
        _ => Reply::Json(200, json!({ "kind": "Status", "apiVersion": "v1", "status": "Success" })),
    });
    let held = lease::acquire(&cluster, &scope(), "bob@laptop pid 7").await.unwrap();
    {
        let seen = seen.lock().unwrap();
        let put = &seen[1];
        assert_eq!(put.method, Method::PUT);
        assert_eq!(put.path, format!("/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/pipeline-shop-staging"));
        assert_eq!(put.body["spec"]["holderIdentity"], "bob@laptop pid 7");
        assert_eq!(put.body["spec"]["leaseTransitions"], 3);
        assert_eq!(put.body["metadata"]["resourceVersion"], "41", "the takeover is conditional on what was read");
    }
    held.release().await.expect("the lease is still ours: released");
    let delete = seen.lock().unwrap().last().unwrap().clone();
    assert_eq!(delete.method, Method::DELETE);
    assert_eq!(
        delete.body["preconditions"]["resourceVersion"], "42",
        "the delete is conditional on the lease still being the one read"
    );

    let (cluster, seen) = mock(|s, _| match s.method {
        Method::GET => not_found(),
        _ => Reply::Json(201, s.body.clone()),
    });
    lease::acquire(&cluster, &scope(), "bob@laptop pid 7").await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[1].method, Method::POST);
    assert_eq!(seen[1].body["spec"]["holderIdentity"], "bob@laptop pid 7");
    assert_eq!(seen[1].body["spec"]["leaseDurationSeconds"], 60);
}

fn typed(spec: &Json) -> DeploySpec {
    DeploySpec::from_json(spec).expect("a deploy spec")
}

/// Deploy the service `api` at `spec` with the target's own code.
async fn deploy(cluster: Cluster, spec: Json) -> Result<(), DeployError> {
    let target = KubernetesTarget {
        cluster,
        scope: scope(),
        force_conflicts: false,
        pull: None,
        pull_applied: Default::default(),
    };
    let service = ServiceDeploy {
        name: "api".into(),
        action: DeployAction::Update,
        spec: Some(typed(&spec)),
        key: Some("abc".into()),
        secrets: BTreeMap::new(),
    };
    let run = Run { service: 0, notify: Arc::new(|_: Note| {}), timeout: Duration::from_secs(60) };
    target.deploy_service(&service, &run).await
}

#[tokio::test]
async fn a_deploy_applies_configuration_first_waits_and_prunes_what_the_service_no_longer_has() {
    let old_service = json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "api-old", "labels": {
        "app.kubernetes.io/managed-by": "pipeline", "pipeline.dev/project": "shop", "pipeline.dev/environment": "staging", "pipeline.dev/service": "api" } } });
    let (cluster, seen) = mock(move |s, _| {
        let deploys = format!("/apis/apps/v1/namespaces/{NS}/deployments");
        match s.method {
            Method::PATCH => Reply::Json(200, s.body.clone()),
            Method::DELETE => Reply::Json(200, json!({ "kind": "Status", "status": "Success" })),
            Method::GET if s.path == format!("/api/v1/namespaces/{NS}/services") => {
                list("Service", vec![old_service.clone()])
            }
            Method::GET if s.path == deploys && !s.is_watch() => {
                let selector = s.param("labelSelector").unwrap_or_default();
                if selector.contains("pipeline.dev/service=api") {
                    list("Deployment", vec![])
                } else {
                    list("Deployment", vec![deployment("api", 1, ready())])
                }
            }
            Method::GET if s.is_watch() => Reply::Hang,
            Method::GET if s.param("labelSelector").is_some() => list("X", vec![]),
            _ => not_found(),
        }
    });
    deploy(cluster, api_spec()).await.unwrap();
    let seen = seen.lock().unwrap();
    let writes: Vec<String> = seen
        .iter()
        .filter(|s| s.method != Method::GET)
        .map(|s| {
            format!(
                "{} {}",
                s.method,
                s.path.rsplit('/').take(2).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("/")
            )
        })
        .collect();
    assert_eq!(
        writes,
        ["PATCH configmaps/api-env", "PATCH services/api", "PATCH deployments/api", "DELETE services/api-old"],
        "configuration before the workload, the stale Service deleted after the rollout"
    );
    let lists: Vec<String> = seen
        .iter()
        .filter(|s| s.param("labelSelector").is_some() && !s.path.ends_with("/pods"))
        .filter_map(|s| s.param("labelSelector"))
        .collect();
    assert!(
        lists.iter().all(|l| l.contains(
            "app.kubernetes.io/managed-by=pipeline,pipeline.dev/project=shop,pipeline.dev/environment=staging"
        )),
        "{lists:?}"
    );
}

#[tokio::test]
async fn an_object_of_another_owner_is_not_overwritten() {
    let (cluster, seen) = mock(|s, _| {
        if s.method == Method::GET && s.path == format!("/api/v1/namespaces/{NS}/services/api") {
            return Reply::Json(
                200,
                json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "api", "labels": { "app": "legacy" } } }),
            );
        }
        if s.method == Method::GET && s.param("labelSelector").is_some() {
            return list("X", vec![]);
        }
        not_found()
    });
    let err = deploy(cluster, api_spec()).await.unwrap_err();
    let DeployError::Foreign { object, owner, .. } = &err else { panic!("{err:?}") };
    assert_eq!(object, "service/api");
    assert_eq!(owner, "it was not made by pipeline");
    assert!(seen.lock().unwrap().iter().all(|s| s.method == Method::GET), "nothing was written");
}
