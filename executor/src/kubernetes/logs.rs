//! The logs of an environment's pods: each pod's history (timestamped by the kubelet) merged in time
//! order, then, when following, new lines as they come, also from pods that appear later (a rollout).

use super::manifest::Scope;
use super::manifest::labels::SERVICE;
use super::{Cluster, KubernetesError};
use crate::logs::{Lines, LogError, LogLine, LogOptions, LogStream, channel_stream, merge_by_time, now_secs, stamped};
use futures_util::{AsyncReadExt as _, StreamExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, LogParams};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
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
    let seen: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let recorded = Arc::clone(&seen);
    let history = merge_by_time(history).inspect(move |l| {
        if let (Ok(l), Ok(mut seen)) = (l, recorded.lock()) {
            seen.insert(l.replica.clone(), l.time.clone());
        }
    });
    if !options.follow {
        return Ok(Box::pin(history));
    }
    let known: BTreeSet<String> = pods.iter().filter_map(|p| p.metadata.name.clone()).collect();
    let (cluster, scope, services) = (cluster.clone(), scope.clone(), services.to_vec());
    let history_start = now_secs();
    let live = futures_util::stream::once(async move {
        channel_stream(move |tx| {
            Box::pin(async move {
                // Pods followed now; a stream that ends or fails (a pod still starting, a restart) is
                // followed again at the next look, from its last line.
                let followed: Arc<Mutex<BTreeSet<String>>> = Arc::default();
                let mut tasks = tokio::task::JoinSet::new();
                while !tx.is_closed() {
                    let Ok(now) = pods_of(&cluster, &scope, &services).await else {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        continue;
                    };
                    for p in &now {
                        let Some(name) = p.metadata.name.clone() else { continue };
                        if !followed.lock().is_ok_and(|mut f| f.insert(name.clone())) {
                            continue;
                        }
                        // From its last line shown; a pod shown before without lines, from when the history
                        // was read; a new one, from its start.
                        let last = seen.lock().ok().and_then(|s| s.get(&name).cloned());
                        let from = match &last {
                            Some(t) => crate::logs::parse_time(t).map(|t| (now_secs() - t + 1).max(1)),
                            None if known.contains(&name) => Some((now_secs() - history_start + 1).max(1)),
                            None => None,
                        };
                        let mut lines = pod_lines(cluster.clone(), p, numbering(&now, p), true, from, None);
                        let (tx, followed, seen) = (tx.clone(), Arc::clone(&followed), Arc::clone(&seen));
                        tasks.spawn(async move {
                            while let Some(l) = lines.next().await {
                                // A pod that cannot be read yet is tried again at the next look.
                                let Ok(l) = l else { break };
                                if last.as_ref().is_some_and(|t| l.time <= *t) {
                                    continue;
                                }
                                if let Ok(mut seen) = seen.lock() {
                                    seen.insert(l.replica.clone(), l.time.clone());
                                }
                                if tx.send(Ok(l)).await.is_err() {
                                    return;
                                }
                            }
                            if let Ok(mut f) = followed.lock() {
                                f.remove(&name);
                            }
                        });
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                tasks.abort_all();
            })
        })
    })
    .flatten();
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
