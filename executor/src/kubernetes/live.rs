//! What runs in a namespace for an environment, read from the objects carrying its labels, and the
//! object-level diff `plan` shows: each desired object against the live one, on the fields pipeline sets
//! only, so what the server manages (status, managedFields, uid, defaults, controller annotations) never
//! shows as a change.

use super::manifest::labels::{SERVICE, SPEC};
use super::manifest::{self, KINDS, Object, Scope, SecretValues};
use super::{Cluster, KubernetesError, at};
use pipeline_planner::DeploySpec;
use pipeline_planner::live::{LiveService, LiveState};
use pipeline_planner::plan::{Change, ObjectAction, ObjectDiff};
use serde_json::Value as Json;

/// One live object of the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveObject {
    pub kind: String,
    pub name: String,
    pub service: String,
    /// The object as the server returns it.
    pub json: Json,
}

impl LiveObject {
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind.to_lowercase(), self.name)
    }
}

/// Every object of the environment, kind by kind (in [`KINDS`] order, then by name).
pub async fn observe(cluster: &Cluster, scope: &Scope) -> Result<Vec<LiveObject>, KubernetesError> {
    let selector = scope.selector();
    let mut out = Vec::new();
    for kind in KINDS {
        let mut items = cluster.list(kind, &selector).await?;
        items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        for o in items {
            let service = o.metadata.labels.as_ref().and_then(|l| l.get(SERVICE)).cloned().unwrap_or_default();
            let name = o.metadata.name.clone().unwrap_or_default();
            let mut json = serde_json::to_value(&o).unwrap_or(Json::Null);
            // The items of a list carry no apiVersion or kind (the list does): put them back, or every
            // object would differ from what pipeline applies.
            if let Json::Object(m) = &mut json {
                m.insert("apiVersion".into(), Json::from(manifest::api_version(kind)));
                m.insert("kind".into(), Json::from(kind));
            }
            out.push(LiveObject { kind: kind.to_string(), name, service, json });
        }
    }
    Ok(out)
}

/// The services deployed, from their workloads' spec annotations. A Job counts only once it has
/// completed, so a failed or unfinished run is planned again.
pub fn services(objects: &[LiveObject]) -> Vec<LiveService> {
    let mut out: Vec<LiveService> = Vec::new();
    for o in objects.iter().filter(|o| matches!(o.kind.as_str(), "Deployment" | "StatefulSet" | "Job" | "CronJob")) {
        if o.kind == "Job" && !job_complete(&o.json) {
            continue;
        }
        let Some(spec) = at(&o.json, "metadata.annotations")
            .and_then(|a| a.get(SPEC))
            .and_then(Json::as_str)
            .and_then(|s| serde_json::from_str::<Json>(s).ok())
            .and_then(|j| DeploySpec::from_json(&j))
        else {
            continue;
        };
        if out.iter().all(|l| l.name != o.service) {
            out.push(LiveService { name: o.service.clone(), spec });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn job_complete(job: &Json) -> bool {
    serde_json::from_value::<k8s_openapi::api::batch::v1::Job>(job.clone())
        .is_ok_and(|j| super::wait::job_state(&j) == super::wait::State::Done)
}

/// Live state of a Kubernetes environment, for the planner.
#[derive(Debug, Clone)]
pub struct KubernetesLive {
    pub scope: Scope,
    pub objects: Vec<LiveObject>,
    /// Keys other runs are building now (their claims on the cluster): key -> holder.
    pub building: std::collections::BTreeMap<String, String>,
}

impl LiveState for KubernetesLive {
    fn observe(&self, _: &str, _: &str) -> Result<Vec<LiveService>, String> {
        Ok(services(&self.objects))
    }

    fn building(&self, key: &str) -> Option<String> {
        self.building.get(key).cloned()
    }

    fn objects(
        &self,
        service: &str,
        desired: Option<&DeploySpec>,
        key: Option<&str>,
    ) -> Result<Vec<ObjectDiff>, String> {
        let desired = match desired {
            Some(spec) => manifest::service_objects(&self.scope, service, spec, key, SecretValues::Hidden)
                .map_err(|e| e.to_string())?,
            None => vec![],
        };
        let live: Vec<&LiveObject> = self.objects.iter().filter(|o| o.service == service).collect();
        Ok(object_diffs(&desired, &live))
    }
}

/// The objects to create, update (with their changed fields) and delete.
pub fn object_diffs(desired: &[Object], live: &[&LiveObject]) -> Vec<ObjectDiff> {
    let mut out = Vec::new();
    for d in desired {
        let Some(l) = live.iter().find(|l| l.kind == d.kind() && l.name == d.name()) else {
            out.push(ObjectDiff { object: d.id(), action: ObjectAction::Create, changes: vec![] });
            continue;
        };
        let changes = field_changes(d, &l.json);
        if !changes.is_empty() {
            out.push(ObjectDiff { object: d.id(), action: ObjectAction::Update, changes });
        }
    }
    for l in live.iter().filter(|l| !desired.iter().any(|d| d.kind() == l.kind && d.name() == l.name)) {
        out.push(ObjectDiff { object: l.id(), action: ObjectAction::Delete, changes: vec![] });
    }
    out
}

/// Fields of `desired` whose live value differs. A Secret's values are never compared (the plan shows a
/// changed secret by its fingerprint), only its keys.
pub fn field_changes(desired: &Object, live: &Json) -> Vec<Change> {
    let mut out = Vec::new();
    let mut d = desired.to_json();
    if let Object::Secret(_) = desired {
        // Keys only: values are compared through the spec's fingerprints.
        let keys = |v: &Json| -> Vec<String> {
            v.get("data").and_then(Json::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default()
        };
        let (dk, lk) = (keys(&d), keys(live));
        for k in dk.iter().filter(|k| !lk.contains(k)) {
            out.push(sensitive(format!("data.{k}"), false, true));
        }
        for k in lk.iter().filter(|k| !dk.contains(k)) {
            out.push(sensitive(format!("data.{k}"), true, false));
        }
        if let Json::Object(m) = &mut d {
            m.remove("data");
            // The marker `render` puts on a Secret without values is not part of what apply sends.
            if let Some(Json::Object(meta)) = m.get_mut("metadata") {
                if let Some(Json::Object(a)) = meta.get_mut("annotations") {
                    a.remove(manifest::labels::VALUES_HIDDEN);
                }
                if meta.get("annotations").is_some_and(is_empty) {
                    meta.remove("annotations");
                }
            }
        }
    }
    walk("", &d, live, &mut out);
    out
}

fn sensitive(path: String, before: bool, after: bool) -> Change {
    let hidden = || Some(Json::from("(sensitive)"));
    Change {
        path,
        before: if before { hidden() } else { None },
        after: if after { hidden() } else { None },
        sensitive: true,
    }
}

fn walk(path: &str, desired: &Json, live: &Json, out: &mut Vec<Change>) {
    let join = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    match (desired, live) {
        (Json::Object(d), Json::Object(l)) => {
            for (k, dv) in d {
                match l.get(k) {
                    Some(lv) => walk(&join(k), dv, lv, out),
                    None if is_empty(dv) => {}
                    None => out.push(Change { path: join(k), before: None, after: Some(dv.clone()), sensitive: false }),
                }
            }
        }
        (Json::Array(d), Json::Array(l)) if d.len() == l.len() => {
            for (i, (dv, lv)) in d.iter().zip(l).enumerate() {
                walk(&format!("{path}[{i}]"), dv, lv, out);
            }
        }
        (Json::Array(_), Json::Array(_)) => {
            // Different lengths: the live list, projected onto the fields pipeline sets.
            let before = Some(project(desired, live));
            out.push(Change { path: path.to_string(), before, after: Some(desired.clone()), sensitive: false });
        }
        (d, l) if same_value(path, d, l) => {}
        (d, l) => out.push(Change {
            path: path.to_string(),
            before: Some(l.clone()),
            after: Some(d.clone()),
            sensitive: false,
        }),
    }
}

fn is_empty(v: &Json) -> bool {
    match v {
        Json::Object(m) => m.is_empty(),
        Json::Array(a) => a.is_empty(),
        Json::Null => true,
        _ => false,
    }
}

/// The live value with only the keys the desired one has (for lists of objects).
fn project(desired: &Json, live: &Json) -> Json {
    match (desired, live) {
        (Json::Array(d), Json::Array(l)) => {
            let template = d.first().cloned().unwrap_or(Json::Null);
            Json::Array(l.iter().map(|lv| project(&template, lv)).collect())
        }
        (Json::Object(d), Json::Object(l)) => {
            Json::Object(l.iter().filter(|(k, _)| d.contains_key(*k)).map(|(k, v)| (k.clone(), v.clone())).collect())
        }
        (_, l) => l.clone(),
    }
}

/// Equal values, where resource quantities compare by amount (`0.5` is `500m`, `1024Mi` is `1Gi`).
fn same_value(path: &str, d: &Json, l: &Json) -> bool {
    if d == l {
        return true;
    }
    let quantity =
        path.contains(".resources.") || path.contains("resources.requests") || path.contains("resources.limits");
    match (quantity, d.as_str(), l.as_str()) {
        (true, Some(a), Some(b)) => match (quantity_value(a), quantity_value(b)) {
            (Some(x), Some(y)) => (x - y).abs() <= f64::EPSILON * x.abs().max(1.0),
            _ => false,
        },
        _ => false,
    }
}

/// The amount of a Kubernetes quantity (`500m`, `1.5`, `256Mi`, `1G`, `1e3`).
pub fn quantity_value(q: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let q = q.trim();
    for (suffix, factor) in SUFFIXES {
        if let Some(n) = q.strip_suffix(suffix) {
            return n.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    q.strip_suffix('P')
        .map(|n| (n, 1e15))
        .or_else(|| q.strip_suffix('E').filter(|n| !n.contains(['e', 'E'])).map(|n| (n, 1e18)))
        .map_or_else(|| q.parse::<f64>().ok(), |(n, f)| n.parse::<f64>().ok().map(|n| n * f))
}

/// How each deployed service is doing, from its workload's status and its pods' restarts.
pub fn status(
    objects: &[LiveObject],
    pods: &[kube::api::DynamicObject],
    scope: &Scope,
) -> Vec<crate::target::ServiceStatus> {
    use super::wait::State;
    use crate::target::{Health, ServiceStatus};
    let mut out: Vec<ServiceStatus> = Vec::new();
    for o in objects.iter().filter(|o| matches!(o.kind.as_str(), "Deployment" | "StatefulSet" | "Job" | "CronJob")) {
        let annotations = at(&o.json, "metadata.annotations");
        let Some(spec) = annotations
            .and_then(|a| a.get(SPEC))
            .and_then(Json::as_str)
            .and_then(|s| serde_json::from_str::<Json>(s).ok())
            .and_then(|j| DeploySpec::from_json(&j))
        else {
            continue;
        };
        if out.iter().any(|s| s.name == o.service) {
            continue;
        }
        let key = annotations.and_then(|a| a.get(manifest::labels::KEY)).and_then(Json::as_str).map(str::to_string);
        let number = |path: &str| at(&o.json, path).and_then(Json::as_u64).and_then(|n| u32::try_from(n).ok());
        let (ready, desired, health) = match o.kind.as_str() {
            "CronJob" => (0, 0, Health::Scheduled),
            "Job" => {
                let state = serde_json::from_value::<k8s_openapi::api::batch::v1::Job>(o.json.clone())
                    .map(|j| super::wait::job_state(&j));
                match state {
                    Ok(State::Done) => (1, 1, Health::Completed),
                    Ok(State::Failed(_)) => (0, 1, Health::Failed),
                    _ => (0, 1, Health::Starting),
                }
            }
            _ => {
                let desired = number("spec.replicas").unwrap_or(1);
                let ready = number("status.readyReplicas").unwrap_or(0);
                let state = match o.kind.as_str() {
                    "Deployment" => serde_json::from_value(o.json.clone()).map(|d| super::wait::deployment_state(&d)),
                    _ => serde_json::from_value(o.json.clone()).map(|s| super::wait::statefulset_state(&s)),
                };
                // The rollout first: old pods may still be ready while the new ones fail.
                let health = match state {
                    Ok(State::Failed(_)) => Health::Unhealthy,
                    Ok(State::Waiting(_)) => Health::Starting,
                    Ok(State::Done) if ready >= desired => Health::Healthy,
                    _ => Health::Unhealthy,
                };
                (ready, desired, health)
            }
        };
        let restarts = pods
            .iter()
            .filter(|p| p.metadata.labels.as_ref().and_then(|l| l.get(SERVICE)) == Some(&o.service))
            .flat_map(|p| p.data["status"]["containerStatuses"].as_array().cloned().unwrap_or_default().into_iter())
            .filter_map(|c| c["restartCount"].as_u64())
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .sum();
        let since = at(&o.json, "metadata.creationTimestamp").and_then(Json::as_str).map(str::to_string);
        let endpoints = spec.ports.iter().map(|p| format!("{}.{}:{p}", o.service, scope.namespace)).collect();
        out.push(ServiceStatus {
            name: o.service.clone(),
            spec,
            key,
            ready,
            desired,
            health,
            restarts,
            since,
            endpoints,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
