//! The logs of an environment's containers: each container's history (timestamped by the engine) merged
//! in time order, then, when following, new lines as they come, also from containers that appear later
//! (a concurrent apply replacing them).

use super::DockerError;
use super::labels::REPLICA;
use super::live::{Listed, containers_of};
use crate::logs::{Lines, LogError, LogLine, LogOptions, LogStream, Resume, Seen, channel_stream, follow, stamped};
use bollard::Docker;
use bollard::query_parameters::LogsOptions;
use futures_util::StreamExt as _;
use std::collections::BTreeSet;
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
    let since = options.since.unwrap_or(0);
    let seen = Seen::default();
    let history = crate::logs::history(
        containers.iter().map(|c| container_lines(docker.clone(), c, false, since, options.tail)).collect(),
        &seen,
    );
    if !options.follow {
        return Ok(history);
    }
    let shown: BTreeSet<String> = containers.iter().map(|c| c.name.clone()).collect();
    let (d, project, environment, services) =
        (docker.clone(), project.to_string(), environment.to_string(), services.to_vec());
    let list = move || {
        let (d, project, environment, services) = (d.clone(), project.clone(), environment.clone(), services.clone());
        async move { of_services(&d, &project, &environment, &services).await.ok() }
    };
    let docker = docker.clone();
    let open = move |c: &Listed, _: &[Listed], resume: Resume| {
        let from = match resume {
            Resume::After(t) => jiff_seconds(&t).unwrap_or(since),
            Resume::HistoryStart(t) => t.max(since),
            Resume::Start => since,
        };
        container_lines(docker.clone(), c, true, from, None)
    };
    let live = follow(seen, shown, Duration::from_secs(1), list, |c: &Listed| Some(c.name.clone()), open);
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

/// One container's lines.
fn container_lines(docker: Docker, c: &Listed, follow: bool, since: i64, tail: Option<u64>) -> LogStream {
    let (id, name, service) = (c.id.clone(), c.name.clone(), c.service.clone());
    let number = c.labels.get(REPLICA).and_then(|r| r.parse().ok()).unwrap_or(1);
    let of = c.spec().map_or(1, |spec| spec.replicas);
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
                LogLine { service: service.clone(), replica: name.clone(), number, of, time, text }
            };
            while let Some(chunk) = chunks.next().await {
                match chunk {
                    Ok(out) => {
                        for raw in lines.push(&out.into_bytes()) {
                            if tx.send(Ok(send(raw))).await.is_err() {
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
            if let Some(l) = lines.finish().map(send) {
                let _ = tx.send(Ok(l)).await;
            }
        })
    })
}
