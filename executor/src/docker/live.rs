//! What runs for an environment on a Docker engine, read back from the labels of its containers and
//! volumes.

use super::DockerError;
use super::labels::{ENVIRONMENT, PROJECT, REPLICA, SERVICE, SPEC, SPEC_HASH};
use bollard::Docker;
use bollard::query_parameters::ListContainersOptions;
use pipeline_planner::DeploySpec;
use pipeline_planner::live::LiveService;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// One container of ours, as listed.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: String,
    pub name: String,
    pub service: String,
    pub labels: HashMap<String, String>,
    /// `running`, `exited`, `created`, …
    pub state: String,
    /// `Up 3 minutes`, `Exited (0) 2 seconds ago`, …
    pub status: String,
    /// `127.0.0.1:49153->8080/tcp`, …
    pub ports: Vec<String>,
}

/// The deploy spec a container of ours was made with (its `pipeline.spec` label).
pub fn spec_of(labels: &HashMap<String, String>) -> Option<DeploySpec> {
    let json: serde_json::Value = serde_json::from_str(labels.get(SPEC)?).ok()?;
    DeploySpec::from_json(&json)
}

impl Listed {
    /// The deploy spec it was made with.
    pub fn spec(&self) -> Option<DeploySpec> {
        spec_of(&self.labels)
    }
}

/// The containers of an environment (of one service, if given).
pub async fn containers_of(
    docker: &Docker,
    project: &str,
    environment: &str,
    service: Option<&str>,
) -> Result<Vec<Listed>, DockerError> {
    let mut labels = vec![format!("{PROJECT}={project}"), format!("{ENVIRONMENT}={environment}")];
    if let Some(s) = service {
        labels.push(format!("{SERVICE}={s}"));
    }
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([("label".to_string(), labels)])),
        ..Default::default()
    };
    let list = docker.list_containers(Some(options)).await.map_err(|e| DockerError::request("list containers", &e))?;
    let mut out: Vec<Listed> = list
        .into_iter()
        // The lock carries the environment's labels but is no service.
        .filter(|c| c.labels.as_ref().is_some_and(|l| l.contains_key(SERVICE)))
        .map(|c| {
            let labels = c.labels.unwrap_or_default();
            let ports = c
                .ports
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| {
                    let public = p.public_port?;
                    Some(format!("{}:{public}->{}", p.ip.unwrap_or_default(), p.private_port))
                })
                .collect();
            Listed {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                service: labels.get(SERVICE).cloned().unwrap_or_default(),
                labels,
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                status: c.status.unwrap_or_default(),
                ports,
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// What runs for an environment, from the labels: per service, the spec it was deployed with, with
/// `replicas` counting only the containers that are up at that spec (a job counts when it exited 0, a
/// scheduled job when its container exists). A job with no successful run is not reported, so the plan
/// runs it again.
pub async fn observe(docker: &Docker, project: &str, environment: &str) -> Result<Vec<LiveService>, DockerError> {
    let list = containers_of(docker, project, environment, None).await?;
    let mut by_service: BTreeMap<&str, Vec<&Listed>> = BTreeMap::new();
    // A replacement's candidates (`…-next`) are not the service yet; one left by a run that stopped
    // half-way makes the service count as not up, so the next apply recovers it.
    let mut unfinished: BTreeSet<&str> = BTreeSet::new();
    for c in &list {
        if c.name.ends_with(super::container::CANDIDATE) {
            unfinished.insert(c.service.as_str());
            continue;
        }
        by_service.entry(c.service.as_str()).or_default().push(c);
    }
    let mut out = Vec::new();
    for (name, cs) in by_service {
        // The spec of the first replica; replicas at another spec do not count.
        let Some(first) = cs.iter().min_by_key(|c| c.labels.get(REPLICA).and_then(|r| r.parse::<u32>().ok())) else {
            continue;
        };
        let Some(mut spec) = first.spec() else {
            continue;
        };
        let hash = first.labels.get(SPEC_HASH).cloned().unwrap_or_default();
        let (is_job, scheduled) = (spec.is_job(), spec.is_scheduled());
        let good = cs
            .iter()
            .filter(|c| c.labels.get(SPEC_HASH) == Some(&hash))
            .filter(|c| match (is_job, scheduled) {
                (true, true) => true,
                (true, false) => c.state == "exited" && c.status.starts_with("Exited (0)"),
                (false, _) => {
                    c.state == "running"
                        && !c.status.contains("(unhealthy)")
                        && !c.status.contains("(health: starting)")
                }
            })
            .count();
        if is_job {
            if good == 0 {
                continue;
            }
        } else if unfinished.contains(name) {
            spec.replicas = 0;
        } else {
            spec.replicas = u32::try_from(good).unwrap_or(u32::MAX);
        }
        out.push(LiveService { name: name.to_string(), spec });
    }
    Ok(out)
}

/// The data volumes of an environment (by their labels), sorted by name. They outlive its services.
pub async fn volumes_of(docker: &Docker, project: &str, environment: &str) -> Result<Vec<String>, DockerError> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{PROJECT}={project}"), format!("{ENVIRONMENT}={environment}")],
    )]);
    let vols = docker
        .list_volumes(Some(bollard::query_parameters::ListVolumesOptions { filters: Some(filters) }))
        .await
        .map_err(|e| DockerError::request("list volumes", &e))?;
    let mut names: Vec<String> = vols.volumes.unwrap_or_default().into_iter().map(|v| v.name).collect();
    names.sort();
    Ok(names)
}

/// Who a volume or network belongs to, from its labels.
pub(crate) fn describe_owner(labels: &HashMap<String, String>) -> String {
    match (labels.get(PROJECT), labels.get(ENVIRONMENT)) {
        (Some(p), Some(e)) => match labels.get(SERVICE) {
            Some(s) => format!("service `{s}` of {p}/{e}"),
            None => format!("{p}/{e}"),
        },
        _ => "something not made by pipeline".into(),
    }
}

/// How each deployed service is doing, from its containers at the deployed spec (a replacement's
/// candidates, `…-next`, are not the service yet).
pub async fn status(
    docker: &Docker,
    project: &str,
    environment: &str,
) -> Result<Vec<crate::target::ServiceStatus>, DockerError> {
    use crate::target::{Health, ServiceStatus};
    use bollard::models::HealthStatusEnum;
    let list = containers_of(docker, project, environment, None).await?;
    let mut by_service: BTreeMap<&str, Vec<&Listed>> = BTreeMap::new();
    for c in list.iter().filter(|c| !c.name.ends_with(super::container::CANDIDATE)) {
        by_service.entry(c.service.as_str()).or_default().push(c);
    }
    let mut out = Vec::new();
    for (name, cs) in by_service {
        let Some(first) = cs.iter().min_by_key(|c| c.labels.get(REPLICA).and_then(|r| r.parse::<u32>().ok())) else {
            continue;
        };
        let Some(spec) = first.spec() else {
            continue;
        };
        let hash = first.labels.get(SPEC_HASH).cloned().unwrap_or_default();
        let at_spec: Vec<&&Listed> = cs.iter().filter(|c| c.labels.get(SPEC_HASH) == Some(&hash)).collect();
        let (mut ready, mut starting, mut restarts, mut since, mut exit) = (0u32, 0u32, 0u32, None::<String>, None);
        let mut endpoints = Vec::new();
        for c in &at_spec {
            let inspected = docker
                .inspect_container(&c.id, None::<bollard::query_parameters::InspectContainerOptions>)
                .await
                .map_err(|e| DockerError::request(&format!("inspect {}", c.name), &e))?;
            let state = inspected.state.unwrap_or_default();
            restarts += u32::try_from(inspected.restart_count.unwrap_or(0)).unwrap_or(0);
            if let Some(t) = state.started_at.filter(|t| !t.starts_with("0001")) {
                since = Some(since.map_or(t.clone(), |s: String| s.min(t)));
            }
            let health = state.health.and_then(|h| h.status);
            match (state.running == Some(true) && state.restarting != Some(true), health) {
                (
                    true,
                    Some(HealthStatusEnum::HEALTHY)
                    | Some(HealthStatusEnum::NONE)
                    | Some(HealthStatusEnum::EMPTY)
                    | None,
                ) => ready += 1,
                (true, Some(HealthStatusEnum::STARTING)) => starting += 1,
                _ => {}
            }
            if state.running != Some(true) {
                exit = state.exit_code;
            }
            endpoints.extend(c.ports.iter().cloned());
        }
        let desired = if spec.is_job() { 1 } else { spec.replicas };
        let health = if spec.is_job() && spec.is_scheduled() {
            Health::Scheduled
        } else if spec.is_job() {
            match (ready, exit) {
                (0, Some(0)) => Health::Completed,
                (0, _) => Health::Failed,
                _ => Health::Starting,
            }
        } else if ready >= desired {
            Health::Healthy
        } else if ready + starting >= desired {
            Health::Starting
        } else {
            Health::Unhealthy
        };
        let key = first.labels.get(super::labels::KEY).cloned();
        out.push(ServiceStatus {
            name: name.to_string(),
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
    Ok(out)
}
