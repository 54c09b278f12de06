//! The logs of an environment's containers: each container's history (timestamped by the engine) merged
//! in time order, then, when following, new lines as they come, also from containers that appear later
//! (a concurrent apply replacing them).

use super::DockerError;
use super::labels::{REPLICA, SPEC};
use super::live::{Listed, containers_of};
use crate::logs::{Lines, LogError, LogLine, LogOptions, LogStream, channel_stream, merge_by_time, now_secs, stamped};
use bollard::Docker;
use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt as _;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The logs of `services` (every service when empty).
pub(crate) async fn logs(
    docker: &Docker,
    project: &str,
    environment: &str,
    services: &[String],
    options: &LogOptions,
) -> Result<LogStream, DockerError> {
    let containers = of_services(docker, project, environment, services).await?;
    let seen: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let history: Vec<LogStream> = containers
        .iter()
        .map(|c| container_lines(docker.clone(), c, false, options.since.unwrap_or(0), options.tail, None))
        .collect();
    let recorded = Arc::clone(&seen);
    let history = merge_by_time(history).inspect(move |l| {
        if let (Ok(l), Ok(mut seen)) = (l, recorded.lock()) {
            seen.insert(l.replica.clone(), l.time.clone());
        }
    });
    if !options.follow {
        return Ok(Box::pin(history));
    }
    let known: BTreeSet<String> = containers.iter().map(|c| c.id.clone()).collect();
    let (docker, project, environment, services) =
        (docker.clone(), project.to_string(), environment.to_string(), services.to_vec());
    let since = options.since.unwrap_or(0);
    let history_start = now_secs();
    let live = futures_util::stream::once(async move {
        channel_stream(move |tx| {
            Box::pin(async move {
                // Containers followed now; a stream that ends (a stopped container, a restart) is followed
                // again at the next look, from its last line.
                let followed: Arc<Mutex<BTreeSet<String>>> = Arc::default();
                let mut tasks = tokio::task::JoinSet::new();
                while !tx.is_closed() {
                    let Ok(now) = of_services(&docker, &project, &environment, &services).await else {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    };
                    for c in now {
                        if !followed.lock().is_ok_and(|mut f| f.insert(c.id.clone())) {
                            continue;
                        }
                        // From its last line shown; a container shown before without lines, from when the
                        // history was read; a new one, from its start.
                        let last = seen.lock().ok().and_then(|s| s.get(&c.name).cloned());
                        let from = match &last {
                            Some(t) => jiff_seconds(t).unwrap_or(history_start),
                            None if known.contains(&c.id) => history_start.max(since),
                            None => since,
                        };
                        let mut lines = container_lines(docker.clone(), &c, true, from, None, last);
                        let (tx, followed, seen, id) =
                            (tx.clone(), Arc::clone(&followed), Arc::clone(&seen), c.id.clone());
                        tasks.spawn(async move {
                            while let Some(l) = lines.next().await {
                                if let (Ok(l), Ok(mut seen)) = (&l, seen.lock()) {
                                    seen.insert(l.replica.clone(), l.time.clone());
                                }
                                if tx.send(l).await.is_err() {
                                    return;
                                }
                            }
                            if let Ok(mut f) = followed.lock() {
                                f.remove(&id);
                            }
                        });
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                tasks.abort_all();
            })
        })
    })
    .flatten();
    Ok(Box::pin(history.chain(live)))
}

/// Whole seconds of an RFC 3339 time.
fn jiff_seconds(t: &str) -> Option<i64> {
    t.parse::<k8s_openapi::jiff::Timestamp>().ok().map(|ts| ts.as_second())
}

/// The containers of the services (all when empty), without a replacement's candidates.
async fn of_services(
    docker: &Docker,
    project: &str,
    environment: &str,
    services: &[String],
) -> Result<Vec<Listed>, DockerError> {
    let all = containers_of(docker, project, environment, None).await?;
    Ok(all
        .into_iter()
        .filter(|c| services.is_empty() || services.contains(&c.service))
        .filter(|c| !c.name.ends_with(super::container::CANDIDATE))
        .collect())
}

/// One container's lines; with `after`, only lines stamped later than it.
fn container_lines(
    docker: Docker,
    c: &Listed,
    follow: bool,
    since: i64,
    tail: Option<u64>,
    after: Option<String>,
) -> LogStream {
    let (id, name, service) = (c.id.clone(), c.name.clone(), c.service.clone());
    let number = c.labels.get(REPLICA).and_then(|r| r.parse().ok()).unwrap_or(1);
    let of = c
        .labels
        .get(SPEC)
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|s| s.get("replicas").and_then(serde_json::Value::as_u64))
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(1);
    channel_stream(move |tx| {
        Box::pin(async move {
            let options = LogsOptions {
                follow,
                stdout: true,
                stderr: true,
                since: i32::try_from(since).unwrap_or(if since > 0 { i32::MAX } else { 0 }),
                timestamps: true,
                tail: tail.map_or_else(|| "all".to_string(), |n| n.to_string()),
                ..Default::default()
            };
            let mut chunks = docker.logs(&id, Some(options));
            let mut lines = Lines::default();
            let send = |raw: String| {
                let (time, text) = stamped(&raw);
                let keep = after.as_ref().is_none_or(|a| time > *a);
                keep.then(|| LogLine { service: service.clone(), replica: name.clone(), number, of, time, text })
            };
            while let Some(chunk) = chunks.next().await {
                match chunk {
                    Ok(out) => {
                        for raw in lines.push(&out.into_bytes()) {
                            if let Some(l) = send(raw)
                                && tx.send(Ok(l)).await.is_err()
                            {
                                return;
                            }
                        }
                    }
                    Err(e) if super::status(&e) == Some(404) => return,
                    Err(e) => {
                        let _ = tx.send(Err(LogError { replica: name.clone(), message: super::reason(&e) })).await;
                        return;
                    }
                }
            }
            if let Some(l) = lines.finish().and_then(send) {
                let _ = tx.send(Ok(l)).await;
            }
        })
    })
}
