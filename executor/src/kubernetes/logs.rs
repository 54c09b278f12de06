//! The logs of an environment's pods: each pod's history (timestamped by the kubelet) merged in time
//! order, then, when following, new lines as they come, also from pods that appear later (a rollout).

use super::manifest::Scope;
use super::manifest::labels::SERVICE;
use super::{Cluster, KubernetesError};
use crate::logs::{
    Lines, LogError, LogLine, LogOptions, LogStream, Resume, Seen, channel_stream, follow, now_secs, stamped,
};
use futures_util::{AsyncReadExt as _, StreamExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, LogParams};
use std::collections::BTreeSet;
use std::time::Duration;

/// The logs of `services` (every service when empty).
pub(crate) async fn logs(
    cluster: &Cluster,
    scope: &Scope,
    services: &[String],
    options: &LogOptions,
) -> Result<LogStream, KubernetesError> {
    let pods = pods_of(cluster, scope, services).await?;
    let since = options.since.map(|s| (now_secs() - s).max(1));
    // `sinceSeconds` counts back from the server's now: a time to come asks for nothing, and only lines
    // from `since` on are kept.
    let not_before = options.since.map(crate::logs::time_of);
    let history: Vec<LogStream> = if options.since.is_some_and(|s| s > now_secs()) {
        vec![]
    } else {
        pods.iter()
            .map(|p| {
                let lines = pod_lines(cluster.clone(), p, numbering(&pods, p), false, since, options.tail);
                let not_before = not_before.clone();
                Box::pin(lines.filter(move |l| {
                    let keep = match (l, &not_before) {
                        (Ok(l), Some(t)) => l.time.is_empty() || l.time >= *t,
                        _ => true,
                    };
                    futures_util::future::ready(keep)
                })) as LogStream
            })
            .collect()
    };
    let seen = Seen::default();
    let history = crate::logs::history(history, &seen);
    if !options.follow {
        return Ok(history);
    }
    let shown: BTreeSet<String> = pods.iter().filter_map(|p| p.metadata.name.clone()).collect();
    let (c, scope, services) = (cluster.clone(), scope.clone(), services.to_vec());
    let list = move || {
        let (c, scope, services) = (c.clone(), scope.clone(), services.clone());
        async move { pods_of(&c, &scope, &services).await.ok() }
    };
    let cluster = cluster.clone();
    // `sinceSeconds` counts back from the server's now.
    let open = move |p: &DynamicObject, now: &[DynamicObject], resume: Resume| {
        let from = match resume {
            Resume::After(t) => crate::logs::parse_time(&t).map(|t| (now_secs() - t + 1).max(1)),
            Resume::HistoryStart(t) => Some((now_secs() - t + 1).max(1)),
            Resume::Start => None,
        };
        pod_lines(cluster.clone(), p, numbering(now, p), true, from, None)
    };
    let name = |p: &DynamicObject| p.metadata.name.clone();
    let live = follow(seen, shown, Duration::from_secs(2), list, name, open);
    Ok(Box::pin(history.chain(live)))
}

/// The pods of the services (all when empty), sorted by service then name.
async fn pods_of(cluster: &Cluster, scope: &Scope, services: &[String]) -> Result<Vec<DynamicObject>, KubernetesError> {
    let mut pods: Vec<DynamicObject> = cluster
        .list("Pod", &scope.selector())
        .await?
        .into_iter()
        .filter(|p| services.is_empty() || service_of(p).is_some_and(|s| services.contains(&s)))
        .collect();
    pods.sort_by(|a, b| (service_of(a), &a.metadata.name).cmp(&(service_of(b), &b.metadata.name)));
    Ok(pods)
}

/// Which of its service's pods `p` is (from 1), and of how many.
fn numbering(pods: &[DynamicObject], p: &DynamicObject) -> (u32, u32) {
    let same: Vec<&DynamicObject> = pods.iter().filter(|x| service_of(x) == service_of(p)).collect();
    let number = same.iter().position(|x| x.metadata.name == p.metadata.name).map_or(1, |i| i + 1);
    (u32::try_from(number).unwrap_or(1), u32::try_from(same.len()).unwrap_or(1))
}

fn service_of(p: &DynamicObject) -> Option<String> {
    p.metadata.labels.as_ref().and_then(|l| l.get(SERVICE)).cloned()
}

fn pod_lines(
    cluster: Cluster,
    p: &DynamicObject,
    (number, of): (u32, u32),
    follow: bool,
    since: Option<i64>,
    tail: Option<u64>,
) -> LogStream {
    let name = p.metadata.name.clone().unwrap_or_default();
    let service = service_of(p).unwrap_or_default();
    channel_stream(move |tx| {
        Box::pin(async move {
            let api: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
            let params = LogParams {
                follow,
                since_seconds: since,
                tail_lines: tail.and_then(|n| i64::try_from(n).ok()),
                timestamps: true,
                ..Default::default()
            };
            let mut reader = match api.log_stream(&name, &params).await {
                Ok(r) => r,
                Err(e) => {
                    let message = cluster.error(e, "get", "Pod", &format!("pod/{name}")).to_string();
                    let _ = tx.send(Err(LogError { replica: name.clone(), message })).await;
                    return;
                }
            };
            let mut lines = Lines::default();
            let mut buf = vec![0u8; 8192];
            let line = |raw: String| {
                let (time, text) = stamped(&raw);
                LogLine { service: service.clone(), replica: name.clone(), number, of, time, text }
            };
            loop {
                let n = match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                for raw in lines.push(&buf[..n]) {
                    if tx.send(Ok(line(raw))).await.is_err() {
                        return;
                    }
                }
            }
            if let Some(raw) = lines.finish() {
                let _ = tx.send(Ok(line(raw))).await;
            }
        })
    })
}
