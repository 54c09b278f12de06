//! Waiting for a workload to be done: a Deployment or StatefulSet until the controller has seen its
//! generation and every replica is updated and ready, a Job until it completes or fails. A failure or
//! a timeout is explained with the state of the failing pods, their last events, and a failed job's
//! last log lines.

use super::{Cluster, KubernetesError};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, LogParams};
use kube::runtime::wait::await_condition;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Where a workload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Done,
    /// Still moving; what it is at (`1/3 ready`).
    Waiting(String),
    /// Will not get there by itself (a failed job, a deployment past its progress deadline).
    Failed(String),
}

pub fn deployment_state(d: &Deployment) -> State {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(st) = &d.status else { return State::Waiting("not yet seen by the controller".into()) };
    if let Some(c) = st.conditions.iter().flatten().find(|c| c.type_ == "Progressing" && c.status == "False") {
        return State::Failed(format!(
            "{}: {}",
            c.reason.as_deref().unwrap_or("not progressing"),
            c.message.as_deref().unwrap_or("")
        ));
    }
    let generation = d.metadata.generation.unwrap_or(0);
    if st.observed_generation.unwrap_or(0) < generation {
        return State::Waiting("not yet seen by the controller".into());
    }
    let (updated, ready, available, total) = (
        st.updated_replicas.unwrap_or(0),
        st.ready_replicas.unwrap_or(0),
        st.available_replicas.unwrap_or(0),
        st.replicas.unwrap_or(0),
    );
    if updated == want && ready == want && available == want && total == want {
        State::Done
    } else {
        State::Waiting(format!("{ready}/{want} ready, {updated}/{want} updated, {total} running"))
    }
}

pub fn statefulset_state(s: &StatefulSet) -> State {
    let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(st) = &s.status else { return State::Waiting("not yet seen by the controller".into()) };
    if st.observed_generation.unwrap_or(0) < s.metadata.generation.unwrap_or(0) {
        return State::Waiting("not yet seen by the controller".into());
    }
    let (ready, updated) = (st.ready_replicas.unwrap_or(0), st.updated_replicas.unwrap_or(0));
    let revision_done = st.update_revision.is_none() || st.current_revision == st.update_revision;
    if ready == want && updated == want && revision_done {
        State::Done
    } else {
        State::Waiting(format!("{ready}/{want} ready, {updated}/{want} updated"))
    }
}

pub fn job_state(j: &Job) -> State {
    let conditions = j.status.as_ref().and_then(|s| s.conditions.as_ref());
    for c in conditions.into_iter().flatten().filter(|c| c.status == "True") {
        match c.type_.as_str() {
            "Complete" => return State::Done,
            "Failed" => {
                return State::Failed(format!(
                    "{}: {}",
                    c.reason.as_deref().unwrap_or("Failed"),
                    c.message.as_deref().unwrap_or("")
                ));
            }
            _ => {}
        }
    }
    let active = j.status.as_ref().and_then(|s| s.active).unwrap_or(0);
    State::Waiting(if active > 0 { "running".into() } else { "waiting for its pod".into() })
}

/// Why a rollout or job did not finish.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{object} {what}{details}")]
#[diagnostic(
    code(pipeline::kubernetes::rollout),
    help("`kubectl -n {namespace} describe {object}` shows the full picture")
)]
pub struct NotReady {
    pub object: String,
    pub namespace: String,
    /// `did not become ready within 5m: 0/1 ready` or `failed: BackoffLimitExceeded: …`.
    pub what: String,
    /// Failing pods and their last events, one per line, each line starting with a newline.
    pub details: String,
}

/// Wait for a workload (`Deployment`, `StatefulSet`, `Job`) to be done; other kinds are done at once.
pub async fn wait(cluster: &Cluster, kind: &str, name: &str, timeout: Duration) -> Result<(), WaitError> {
    let object = format!("{}/{name}", kind.to_lowercase());
    let settled = match kind {
        "Deployment" => settle(cluster, name, timeout, deployment_state).await,
        "StatefulSet" => settle(cluster, name, timeout, statefulset_state).await,
        "Job" => settle(cluster, name, timeout, job_state).await,
        _ => Ok(Settled::State(State::Done)),
    }
    .map_err(|e| WaitError::Kube(watch_error(cluster, e, kind, &object)))?;
    let what = match settled {
        Settled::State(State::Done) => return Ok(()),
        Settled::State(State::Failed(why)) => format!("failed: {why}"),
        Settled::State(State::Waiting(at)) => format!("stopped: {at}"),
        Settled::TimedOut(at) => {
            format!("did not become ready within {}: {}", human(timeout), at.as_deref().unwrap_or("state unknown"))
        }
    };
    let details = explain(cluster, kind, name).await;
    Err(WaitError::NotReady(NotReady { object, namespace: cluster.namespace.clone(), what, details }))
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum WaitError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    NotReady(NotReady),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Kube(KubernetesError),
}

fn watch_error(cluster: &Cluster, e: kube::runtime::wait::Error, kind: &str, object: &str) -> KubernetesError {
    use kube::runtime::watcher::Error as W;
    let kube::runtime::wait::Error::ProbeFailed(w) = e;
    match w {
        W::InitialListFailed(e) => cluster.error(e, "list", kind, object),
        W::WatchStartFailed(e) | W::WatchFailed(e) => cluster.error(e, "watch", kind, object),
        W::WatchError(status) => cluster.status_error(*status, "watch", kind, object),
        other => KubernetesError::Request { what: format!("watching {object}"), message: other.to_string() },
    }
}

/// How a watched workload ended up.
enum Settled {
    /// Done, or failed (a workload deleted while waiting has failed).
    State(State),
    /// Still waiting when the time was up; where it was, if it could be read.
    TimedOut(Option<String>),
}

/// Watch one object until `state` says it is no longer waiting, or the time is up.
async fn settle<K>(
    cluster: &Cluster,
    name: &str,
    timeout: Duration,
    state: fn(&K) -> State,
) -> Result<Settled, kube::runtime::wait::Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + Send
        + serde::de::DeserializeOwned
        + 'static,
{
    let api: Api<K> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let cond = move |o: Option<&K>| o.is_some_and(|o| !matches!(state(o), State::Waiting(_)));
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, await_condition(api.clone(), name, cond)).await {
            Ok(Ok(found)) => {
                return Ok(Settled::State(
                    found.map_or_else(|| State::Failed("deleted while waiting".into()), |o| state(&o)),
                ));
            }
            // A watch the server expired (410: its resourceVersion was compacted, as happens in long
            // rollouts) or a stream that broke: list and watch again, as kube's watcher expects of its
            // caller, within the same deadline.
            Ok(Err(e)) if recoverable(&e) => tokio::time::sleep(Duration::from_millis(200)).await,
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                return Ok(Settled::TimedOut(api.get(name).await.ok().map(|o| match state(&o) {
                    State::Done => "done".into(),
                    State::Waiting(w) | State::Failed(w) => w,
                })));
            }
        }
    }
}

/// Whether waiting can go on after this watch error: an expired resourceVersion (410 Gone/Expired) or a
/// stream cut mid-way; not a refused list or watch (403, 404), which would only repeat.
fn recoverable(e: &kube::runtime::wait::Error) -> bool {
    use kube::runtime::watcher::Error as W;
    let kube::runtime::wait::Error::ProbeFailed(w) = e;
    match w {
        W::WatchError(status) => status.code == 410,
        W::WatchStartFailed(kube::Error::Api(status)) => status.code == 410,
        W::WatchFailed(_) => true,
        _ => false,
    }
}

/// `5m`, `90s`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) { format!("{}m", s / 60) } else { format!("{s}s") }
}

/// The pods of a workload that are not ready, with their container states and last events (and a failed
/// job pod's last log lines), as lines each starting with a newline. Best effort: what cannot be read is
/// left out.
pub async fn explain(cluster: &Cluster, kind: &str, name: &str) -> String {
    let ns = &cluster.namespace;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), ns);
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), ns);
    let mut out = String::new();
    // The workload's own events (quota, admission, scheduling of the controller).
    for line in last_events(&events, name).await {
        let _ = write!(out, "\n  {}/{name}: {line}", kind.to_lowercase());
    }
    let selector = match kind {
        "Job" => format!("job-name={name}"),
        _ => {
            let obj = cluster.get(kind, name).await.ok().flatten();
            let labels: BTreeMap<String, String> = obj
                .as_ref()
                .and_then(|o| super::at(&o.data, "spec.selector.matchLabels"))
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default();
            labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
        }
    };
    if selector.is_empty() {
        return out;
    }
    let Ok(list) = pods.list(&ListParams::default().labels(&selector)).await else { return out };
    let mut items = list.items;
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for pod in items.iter().filter(|p| !pod_ready(p)).take(3) {
        let pname = pod.metadata.name.clone().unwrap_or_default();
        let _ = write!(out, "\n  pod/{pname}: {}", pod_state(pod));
        for line in last_events(&events, &pname).await {
            let _ = write!(out, "\n    {line}");
        }
        let failed = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed");
        if kind == "Job" && failed {
            let params = LogParams { tail_lines: Some(10), ..Default::default() };
            if let Ok(logs) = pods.logs(&pname, &params).await {
                for l in logs.lines() {
                    let _ = write!(out, "\n    | {l}");
                }
            }
        }
    }
    out
}

fn pod_ready(p: &Pod) -> bool {
    let st = p.status.as_ref();
    st.and_then(|s| s.phase.as_deref()) == Some("Succeeded")
        || st
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// `Pending: waiting ImagePullBackOff (Back-off pulling image "x")`, `Failed: terminated Error (exit code 3)`.
pub fn pod_state(p: &Pod) -> String {
    let Some(st) = &p.status else { return "no status yet".into() };
    let mut parts = vec![st.phase.clone().unwrap_or_else(|| "Unknown".into())];
    for cs in st.container_statuses.iter().flatten() {
        let state = cs.state.as_ref();
        if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
            let mut s = format!("waiting {}", w.reason.as_deref().unwrap_or("(no reason)"));
            if let Some(m) = w.message.as_deref().filter(|m| !m.is_empty()) {
                let _ = write!(s, " ({m})");
            }
            parts.push(s);
        } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            parts.push(format!(
                "terminated {} (exit code {})",
                t.reason.as_deref().unwrap_or("(no reason)"),
                t.exit_code
            ));
        } else if cs.restart_count > 0 {
            parts.push(format!("running, restarted {} times", cs.restart_count));
        }
    }
    if parts.len() == 1
        && let Some(c) = st.conditions.iter().flatten().find(|c| c.status == "False" && c.reason.is_some())
    {
        parts.push(format!("{}: {}", c.reason.as_deref().unwrap_or(""), c.message.as_deref().unwrap_or("")));
    }
    parts.join(": ")
}

/// The last 5 events of an object, oldest first: `Warning BackOff: Back-off restarting failed container`.
async fn last_events(events: &Api<Event>, name: &str) -> Vec<String> {
    let params = ListParams::default().fields(&format!("involvedObject.name={name}"));
    let Ok(list) = events.list(&params).await else { return vec![] };
    let mut items = list.items;
    let when = |e: &Event| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or_else(|| e.event_time.as_ref().map(|t| t.0))
            .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
    };
    items.sort_by_key(when);
    let skip = items.len().saturating_sub(5);
    items
        .iter()
        .skip(skip)
        .map(|e| {
            let count = e.count.filter(|&c| c > 1).map(|c| format!(" (x{c})")).unwrap_or_default();
            format!(
                "{} {}: {}{count}",
                e.type_.as_deref().unwrap_or("Normal"),
                e.reason.as_deref().unwrap_or(""),
                e.message.as_deref().unwrap_or("").trim()
            )
        })
        .collect()
}
