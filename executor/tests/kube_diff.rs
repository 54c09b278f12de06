//! The object-level diff `plan` shows for a Kubernetes target: desired objects against live ones as an
//! API server returns them (status, managedFields, uid, resourceVersion, defaults, controller
//! annotations, quantities in canonical form), so only what pipeline sets and someone changed shows.
//!
//! The first tests read objects a server made: `kube_diff/served-api.json`, recorded from the Kubernetes
//! stand-in (`tests/support/fake_kube.py`, written from the Kubernetes documentation) after an apply of
//! `tests/apply/kube` by `tests/apply_kube_fake.rs`, which fails when the recording is stale. The others
//! add a server's fields to our own objects by hand (`as_served`), for cases the recording does not hold.

use pipeline_executor::kubernetes::live::{KubernetesLive, LiveObject, object_diffs, quantity_value};
use pipeline_executor::kubernetes::manifest::{self, Object, Scope, SecretValues};
use pipeline_planner::DeploySpec;
use pipeline_planner::live::LiveState;
use pipeline_planner::model::IngressTls;
use pipeline_planner::plan::{ObjectAction, ObjectDiff};
use serde_json::{Value as Json, json};

fn scope() -> Scope {
    Scope {
        project: "shop".into(),
        environment: "staging".into(),
        namespace: "shop-staging".into(),
        pull_secret: false,
        ingress_class: None,
        tls: None,
    }
}

fn spec() -> Json {
    json!({ "type": "application", "stage": "3.DEFAULT APPLICATION", "image": "registry.example.com/shop/api:abc",
            "env": { "LOG_LEVEL": "info" }, "secrets": { "TOKEN": { "secret": "token", "fingerprint": "f1" } },
            "ports": [8080], "replicas": 2, "resources": { "cpu": "0.5", "memory": "1024Mi" },
            "healthcheck": { "http": { "port": 8080, "path": "/health" }, "interval": "10s", "timeout": "2s", "retries": 3, "startPeriod": "0s" },
            "dependsOn": [] })
}

fn typed(spec: &Json) -> DeploySpec {
    DeploySpec::from_json(spec).expect("a deploy spec")
}

/// What `plan` compares: the objects without secret values.
fn desired(spec: &Json) -> Vec<Object> {
    manifest::service_objects(&scope(), "api", &typed(spec), Some("abc"), SecretValues::Hidden).unwrap()
}

/// What `apply` sent: the objects with their secret values.
fn applied(spec: &Json) -> Vec<Object> {
    let values = std::collections::BTreeMap::from([("TOKEN".to_string(), "secret".to_string())]);
    manifest::service_objects(&scope(), "api", &typed(spec), Some("abc"), SecretValues::Shown(&values)).unwrap()
}

/// What a server returns for an applied object: server-managed metadata, defaults and status added,
/// quantities canonicalised, Secret values present.
fn as_served(o: &Object) -> LiveObject {
    let mut j = o.to_json();
    let m = j["metadata"].as_object_mut().unwrap();
    m.insert("uid".into(), json!("0b1c2d3e-aaaa-bbbb-cccc-000000000001"));
    m.insert("resourceVersion".into(), json!("48211"));
    m.insert("generation".into(), json!(3));
    m.insert("creationTimestamp".into(), json!("2026-11-20T10:00:00Z"));
    m.insert("managedFields".into(), json!([{ "manager": "pipeline", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {} }]));
    match o.kind() {
        "Deployment" => {
            m.entry("annotations").or_insert(json!({}))["deployment.kubernetes.io/revision"] = json!("3");
            let spec = &mut j["spec"];
            spec["revisionHistoryLimit"] = json!(10);
            spec["progressDeadlineSeconds"] = json!(600);
            let c = &mut spec["template"]["spec"]["containers"][0];
            c["terminationMessagePath"] = json!("/dev/termination-log");
            c["terminationMessagePolicy"] = json!("File");
            c["resources"]["limits"]["cpu"] = json!("500m");
            c["resources"]["limits"]["memory"] = json!("1Gi");
            c["resources"]["requests"]["cpu"] = json!("500m");
            c["resources"]["requests"]["memory"] = json!("1Gi");
            c["readinessProbe"]["httpGet"]["scheme"] = json!("HTTP");
            c["readinessProbe"]["successThreshold"] = json!(1);
            spec["template"]["spec"]["dnsPolicy"] = json!("ClusterFirst");
            spec["template"]["spec"]["restartPolicy"] = json!("Always");
            j["status"] = json!({ "observedGeneration": 3, "replicas": 2, "readyReplicas": 2 });
        }
        "Service" => {
            j["spec"]["clusterIP"] = json!("10.96.14.2");
            j["spec"]["clusterIPs"] = json!(["10.96.14.2"]);
            j["spec"]["type"] = json!("ClusterIP");
            j["spec"]["sessionAffinity"] = json!("None");
        }
        _ => {}
    }
    LiveObject { kind: o.kind().into(), name: o.name().into(), service: "api".into(), json: j }
}

fn served(objects: &[Object]) -> Vec<LiveObject> {
    objects.iter().map(as_served).collect()
}

fn diffs(desired: &[Object], live: &[LiveObject]) -> Vec<ObjectDiff> {
    object_diffs(desired, &live.iter().collect::<Vec<_>>())
}

/// The objects of `api` as the stand-in served them (see the module doc).
fn recorded() -> Vec<LiveObject> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kube_diff/served-api.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let objects: Vec<Json> = serde_json::from_str(&text).expect("recorded objects");
    objects
        .into_iter()
        .map(|json| LiveObject {
            kind: json["kind"].as_str().expect("kind").into(),
            name: json["metadata"]["name"].as_str().expect("name").into(),
            service: json["metadata"]["labels"]["pipeline.dev/service"].as_str().expect("service").into(),
            json,
        })
        .collect()
}

/// What `plan` would make for the recorded `api`: its spec and key from the served Deployment's
/// annotations, in the fixture's scope.
fn desired_for_recorded(live: &[LiveObject]) -> Vec<Object> {
    let dep = live.iter().find(|o| o.kind == "Deployment").expect("a Deployment");
    let annotations = &dep.json["metadata"]["annotations"];
    let spec: Json = serde_json::from_str(annotations["pipeline.dev/spec"].as_str().expect("spec")).expect("json");
    let scope = Scope {
        project: "shop".into(),
        environment: "fake".into(),
        namespace: "shop-fake".into(),
        pull_secret: dep.json["spec"]["template"]["spec"]["imagePullSecrets"].is_array(),
        ingress_class: Some("nginx".into()),
        tls: Some(pipeline_planner::model::IngressTls {
            secret_name: None,
            cluster_issuer: Some("letsencrypt".into()),
        }),
    };
    let key = annotations["pipeline.dev/key"].as_str();
    manifest::service_objects(&scope, "api", &typed(&spec), key, SecretValues::Hidden).unwrap()
}

#[test]
fn objects_as_a_server_served_them_are_not_changes() {
    let live = recorded();
    let desired = desired_for_recorded(&live);
    assert_eq!(
        desired.iter().map(Object::id).collect::<Vec<_>>(),
        ["configmap/api-env", "service/api", "deployment/api", "ingress/api"],
        "the recording holds every object of the service"
    );
    assert_eq!(diffs(&desired, &live), vec![]);
}

#[test]
fn drift_in_served_objects_shows_field_by_field() {
    let mut live = recorded();
    let desired = desired_for_recorded(&live);
    let dep = live.iter_mut().find(|o| o.kind == "Deployment").unwrap();
    dep.json["spec"]["replicas"] = json!(5);
    let ing = live.iter_mut().find(|o| o.kind == "Ingress").unwrap();
    ing.json["spec"]["rules"][0]["host"] = json!("shop.example.org");
    let changes = diffs(&desired, &live);
    let objects: Vec<&str> = changes.iter().map(|c| c.object.as_str()).collect();
    assert_eq!(objects, ["deployment/api", "ingress/api"], "{changes:#?}");
    let dep = &changes[0];
    assert_eq!(dep.changes.len(), 1, "{dep:#?}");
    assert_eq!(dep.changes[0].path, "spec.replicas");
    assert_eq!((dep.changes[0].before.clone(), dep.changes[0].after.clone()), (Some(json!(5)), Some(json!(2))));
}

#[test]
fn server_managed_fields_defaults_and_canonical_quantities_are_not_changes() {
    let d = desired(&spec());
    assert_eq!(diffs(&d, &served(&applied(&spec()))), vec![]);
}

#[test]
fn drift_shows_field_by_field() {
    let d = desired(&spec());
    let mut live = served(&applied(&spec()));
    let dep = live.iter_mut().find(|o| o.kind == "Deployment").unwrap();
    dep.json["spec"]["replicas"] = json!(5); // kubectl scale
    dep.json["spec"]["template"]["spec"]["containers"][0]["image"] = json!("registry.example.com/shop/api:hotfix");
    let cm = live.iter_mut().find(|o| o.kind == "ConfigMap").unwrap();
    cm.json["data"]["LOG_LEVEL"] = json!("debug");
    let changes = diffs(&d, &live);
    let text: Vec<String> = changes
        .iter()
        .flat_map(|o| {
            o.changes.iter().map(move |c| format!("{} {}: {:?} -> {:?}", o.object, c.path, c.before, c.after))
        })
        .collect();
    assert_eq!(
        text,
        [
            "configmap/api-env data.LOG_LEVEL: Some(String(\"debug\")) -> Some(String(\"info\"))",
            "deployment/api spec.replicas: Some(Number(5)) -> Some(Number(2))",
            "deployment/api spec.template.spec.containers[0].image: Some(String(\"registry.example.com/shop/api:hotfix\")) -> Some(String(\"registry.example.com/shop/api:abc\"))",
        ]
    );
    assert!(changes.iter().all(|c| c.action == ObjectAction::Update));
}

#[test]
fn secrets_compare_keys_never_values() {
    let d = desired(&spec());
    let mut live = served(&applied(&spec()));
    let secret = live.iter_mut().find(|o| o.kind == "Secret").unwrap();
    secret.json["data"] = json!({ "TOKEN": "b3RoZXI=", "OLD": "eA==" });
    let changes = diffs(&d, &live);
    assert_eq!(changes.len(), 1);
    let c = &changes[0].changes;
    assert_eq!(c.len(), 1, "a different value is not seen here (the spec's fingerprint shows it): {c:?}");
    assert_eq!(c[0].path, "data.OLD");
    assert!(c[0].sensitive && c[0].after.is_none());
    assert!(!serde_json::to_string(&changes).unwrap().contains("eA=="));
}

#[test]
fn a_removed_port_deletes_the_service_and_a_removed_service_deletes_everything() {
    let before = desired(&spec());
    let mut s = spec();
    s["ports"] = json!([]);
    let after = desired(&s);
    let changes = diffs(&after, &served(&applied(&spec())));
    let summary: Vec<(String, ObjectAction)> = changes.iter().map(|c| (c.object.clone(), c.action)).collect();
    assert!(summary.contains(&("service/api".into(), ObjectAction::Delete)), "{summary:?}");
    assert!(summary.contains(&("deployment/api".into(), ObjectAction::Update)), "{summary:?}");

    let live = KubernetesLive { scope: scope(), objects: served(&before), building: Default::default() };
    let gone = live.objects("api", None, None).unwrap();
    assert_eq!(gone.len(), before.len());
    assert!(gone.iter().all(|c| c.action == ObjectAction::Delete));
    let created = KubernetesLive { scope: scope(), objects: vec![], building: Default::default() }
        .objects("api", Some(&typed(&spec())), Some("abc"))
        .unwrap();
    assert_eq!(
        created.iter().map(|c| c.object.as_str()).collect::<Vec<_>>(),
        ["configmap/api-env", "secret/api-secrets", "service/api", "deployment/api"]
    );
}

#[test]
fn live_services_come_from_the_workloads_and_only_completed_jobs_count() {
    let mut job_spec = spec();
    job_spec["type"] = json!("job");
    job_spec["ports"] = json!([]);
    let job = manifest::service_objects(&scope(), "migrate", &typed(&job_spec), None, SecretValues::Hidden).unwrap();
    let mut objects = served(&desired(&spec()));
    let mut running = as_served(job.iter().find(|o| o.kind() == "Job").unwrap());
    running.service = "migrate".into();
    running.json["status"] = json!({ "active": 1 });
    objects.push(running.clone());
    let live = KubernetesLive { scope: scope(), objects: objects.clone(), building: Default::default() };
    let names: Vec<String> = live.observe("shop", "staging").unwrap().into_iter().map(|l| l.name).collect();
    assert_eq!(names, ["api"], "a job still running is not deployed yet");
    running.json["status"] = json!({ "succeeded": 1, "conditions": [{ "type": "Complete", "status": "True" }] });
    objects.push(running);
    let live = KubernetesLive { scope: scope(), objects, building: Default::default() };
    let found = live.observe("shop", "staging").unwrap();
    assert_eq!(found.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["api", "migrate"]);
    assert_eq!(found[0].spec.to_json(), spec(), "the spec annotation is the deployed spec");
}

#[test]
fn quantities_compare_by_amount() {
    let q = |s: &str| quantity_value(s).unwrap();
    assert_eq!(q("500m"), q("0.5"));
    assert_eq!(q("1Gi"), q("1024Mi"));
    assert_eq!(q("1k"), q("1000"));
    assert_eq!(q("1e3"), 1000.0);
    assert_ne!(q("1G"), q("1Gi"));
    assert!(quantity_value("lots").is_none());
}

/// The api's spec with public endpoints: a real domain, a local host and an address.
fn with_endpoints() -> Json {
    let mut s = spec();
    s["endpoints"] = json!([
        { "host": "shop.example.com", "path": "/api", "port": 8080 },
        { "host": "api.shop.localhost", "path": "/", "port": 8080 },
        { "host": "192.168.1.5", "path": "/", "port": 8080 },
    ]);
    s
}

fn ingress_of(objects: &[Object]) -> Option<Json> {
    objects.iter().find(|o| o.kind() == "Ingress").map(Object::to_json)
}

#[test]
fn endpoints_make_an_ingress_with_tls_only_for_real_domains_when_the_target_asks() {
    let plain = ingress_of(&desired(&with_endpoints())).expect("an Ingress");
    assert_eq!(plain["apiVersion"], "networking.k8s.io/v1");
    assert_eq!(plain["metadata"]["name"], "api");
    let hosts: Vec<&Json> = plain["spec"]["rules"].as_array().unwrap().iter().map(|r| &r["host"]).collect();
    // The address has no host (an Ingress host is a DNS name): its rule comes first and matches any host.
    assert_eq!(hosts, [&Json::Null, &json!("api.shop.localhost"), &json!("shop.example.com")]);
    assert!(plain["spec"].get("tls").is_none(), "no tls on the target: {plain:#}");
    assert!(plain["spec"].get("ingressClassName").is_none());
    assert!(plain["metadata"].get("annotations").is_none());

    let tls = Scope {
        ingress_class: Some("nginx".into()),
        tls: Some(IngressTls { secret_name: Some("shop-cert".into()), cluster_issuer: Some("letsencrypt".into()) }),
        ..scope()
    };
    let objects =
        manifest::service_objects(&tls, "api", &typed(&with_endpoints()), None, SecretValues::Hidden).unwrap();
    let secure = ingress_of(&objects).unwrap();
    assert_eq!(secure["spec"]["ingressClassName"], "nginx");
    assert_eq!(secure["spec"]["tls"], json!([{ "hosts": ["shop.example.com"], "secretName": "shop-cert" }]));
    assert_eq!(secure["metadata"]["annotations"], json!({ "cert-manager.io/cluster-issuer": "letsencrypt" }));

    // Only local hosts: nothing to certify, so no TLS and no issuer even with `tls` set.
    let mut local = spec();
    local["endpoints"] = json!([{ "host": "api.shop.localhost", "path": "/", "port": 8080 }]);
    let objects = manifest::service_objects(&tls, "api", &typed(&local), None, SecretValues::Hidden).unwrap();
    let local = ingress_of(&objects).unwrap();
    assert!(local["spec"].get("tls").is_none() && local["metadata"].get("annotations").is_none(), "{local:#}");

    // Without endpoints, no Ingress.
    assert!(ingress_of(&desired(&spec())).is_none());
}

#[test]
fn added_and_removed_endpoints_create_and_delete_the_ingress() {
    let changes = diffs(&desired(&with_endpoints()), &served(&applied(&spec())));
    let summary: Vec<(String, ObjectAction)> = changes.iter().map(|c| (c.object.clone(), c.action)).collect();
    assert!(summary.contains(&("ingress/api".into(), ObjectAction::Create)), "{summary:?}");
    let changes = diffs(&desired(&spec()), &served(&applied(&with_endpoints())));
    let summary: Vec<(String, ObjectAction)> = changes.iter().map(|c| (c.object.clone(), c.action)).collect();
    assert!(summary.contains(&("ingress/api".into(), ObjectAction::Delete)), "{summary:?}");
    let same = diffs(&desired(&with_endpoints()), &served(&applied(&with_endpoints())));
    assert!(same.is_empty(), "{same:?}");
}
