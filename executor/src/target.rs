//! The local Docker target (`std.docker { }`): one network per environment, containers named and labelled
//! per service, live state read back from the labels, a lock per environment, and `destroy`.
//!
//! Names: network `<project>-<env>`; containers `<project>-<env>-<service>-<n>` (n from 1), each with the
//! service name as its network alias, so other services reach it by name; a database's `volume` is the
//! named volume `<project>-<env>-<service>-data`, which survives redeploys and `destroy` (unless asked).
//! Labels: `pipeline.project`, `pipeline.environment`, `pipeline.service`, `pipeline.key` (the build key,
//! when built), `pipeline.spec-hash` and `pipeline.spec` (the deployed spec as the plan shows it: secrets
//! only as name and fingerprint), `pipeline.replica`.

use crate::build::{Note, Notify};
use crate::docker::{reason, status};
use crate::registry::RegistryClient;
use crate::schedule::Deployer;
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HealthStatusEnum, HostConfig, Mount, MountType,
    NetworkCreateRequest, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListContainersOptions, ListNetworksOptions, LogsOptions,
    RemoveContainerOptions, RemoveVolumeOptions, StopContainerOptions, WaitContainerOptions,
};
use futures_util::StreamExt as _;
use pipeline_planner::live::LiveService;
use pipeline_planner::model::{Healthcheck, Resources};
use pipeline_planner::plan::DeployAction;
use serde::Deserialize;
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

pub const PROJECT: &str = "pipeline.project";
pub const ENVIRONMENT: &str = "pipeline.environment";
pub const SERVICE: &str = "pipeline.service";
pub const KEY: &str = "pipeline.key";
pub const SPEC: &str = "pipeline.spec";
pub const SPEC_HASH: &str = "pipeline.spec-hash";
pub const REPLICA: &str = "pipeline.replica";
const LOCK_HOLDER: &str = "pipeline.lock.holder";
const LOCK_SINCE: &str = "pipeline.lock.since";
pub(crate) const LOCK_IMAGE: &str = "pipeline-lock:1";

/// The deploy spec, as the planner writes it (`plan::deploy_spec`).
#[derive(Debug, Clone, Deserialize)]
pub struct Spec {
    #[serde(rename = "type")]
    pub kind: String,
    pub stage: String,
    pub image: String,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: BTreeMap<String, Json>,
    #[serde(default)]
    pub ports: Vec<u16>,
    #[serde(default = "one")]
    pub replicas: u32,
    #[serde(default)]
    pub resources: Option<Resources>,
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default)]
    pub volume: Option<String>,
    #[serde(default)]
    pub schedule: Option<String>,
}

fn one() -> u32 {
    1
}

/// One service to deploy (or delete).
#[derive(Clone)]
pub struct ServiceDeploy {
    pub name: String,
    pub action: DeployAction,
    /// The desired spec as JSON (labelled on the containers); `None` for a delete.
    pub spec: Option<Json>,
    /// The build key of its image, when built.
    pub key: Option<String>,
    /// Secret values by variable name (never labelled or logged).
    pub secrets: BTreeMap<String, String>,
}

impl std::fmt::Debug for ServiceDeploy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDeploy")
            .field("name", &self.name)
            .field("action", &self.action)
            .field("spec", &self.spec)
            .field("key", &self.key)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Deploys to the local Docker engine.
pub struct DockerTarget {
    pub docker: Docker,
    pub project: String,
    pub environment: String,
    pub services: Vec<ServiceDeploy>,
    pub registry: Arc<RegistryClient>,
    pub notify: Notify,
    /// How long a deploy may wait for its containers to be healthy (or a job to end).
    pub timeout: Duration,
    network: OnceCell<()>,
}

impl DockerTarget {
    pub fn new(
        docker: Docker,
        project: &str,
        environment: &str,
        services: Vec<ServiceDeploy>,
        registry: Arc<RegistryClient>,
        notify: Notify,
    ) -> DockerTarget {
        DockerTarget {
            docker,
            project: project.into(),
            environment: environment.into(),
            services,
            registry,
            notify,
            timeout: Duration::from_secs(300),
            network: OnceCell::new(),
        }
    }

    pub fn network_name(&self) -> String {
        format!("{}-{}", self.project, self.environment)
    }

    fn note(&self, n: usize, text: impl Into<String>) {
        (self.notify)(Note::Deploy(n, text.into()));
    }

    async fn ensure_network(&self) -> Result<(), String> {
        self.network
            .get_or_try_init(|| ensure_network(&self.docker, &self.project, &self.environment))
            .await
            .map(|_| ())
    }

    async fn ensure_image(&self, image: &str) -> Result<(), String> {
        match self.docker.inspect_image(image).await {
            Ok(_) => return Ok(()),
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => return Err(format!("cannot inspect the image {image}: {}", reason(&e))),
        }
        let (repo, tag) = split_image(image);
        let host = registry_host(&repo);
        // Unreadable credentials: try anonymously, and let the registry's answer explain.
        let creds = crate::docker::credentials(&self.registry, &host).await.ok().flatten();
        let options = CreateImageOptions { from_image: Some(repo.clone()), tag: Some(tag), ..Default::default() };
        crate::docker::drain_create(self.docker.create_image(Some(options), None, creds))
            .await
            .map_err(|why| format!("the image {image} is not on this engine and cannot be pulled from {host}: {why}"))
    }

    async fn deploy_one(&self, n: usize) -> Result<(), String> {
        let s = &self.services[n];
        let existing = containers_of(&self.docker, &self.project, &self.environment, Some(&s.name)).await?;
        if s.action == DeployAction::Delete {
            self.note(n, "removing");
            return remove_all(&self.docker, &existing).await;
        }
        let Some(json) = &s.spec else { return Err(format!("service `{}` has no spec", s.name)) };
        let spec: Spec = serde_json::from_value(json.clone())
            .map_err(|e| format!("the spec of `{}` is not readable: {e}", s.name))?;
        self.ensure_network().await?;
        self.note(n, format!("image {}", spec.image));
        self.ensure_image(&spec.image).await?;
        if !existing.is_empty() {
            self.note(n, "replacing the old containers");
            remove_all(&self.docker, &existing).await?;
        }
        let volume = match (&spec.volume, spec.kind.as_str()) {
            (Some(path), _) => Some((self.volume_name(&s.name), path.clone())),
            (None, _) => None,
        };
        if let Some((name, _)) = &volume {
            let req = VolumeCreateRequest {
                name: Some(name.clone()),
                labels: Some(self.labels(&s.name)),
                ..Default::default()
            };
            let v = self
                .docker
                .create_volume(req)
                .await
                .map_err(|e| format!("cannot create the volume {name}: {}", reason(&e)))?;
            // Creating a volume that exists returns it: make sure it is this environment's.
            let owner = (v.labels.get(PROJECT), v.labels.get(ENVIRONMENT), v.labels.get(SERVICE));
            if owner != (Some(&self.project), Some(&self.environment), Some(&s.name)) {
                return Err(format!(
                    "the volume {name} already exists and belongs to {}, not to service `{}` of {}/{}",
                    describe_owner(&v.labels),
                    s.name,
                    self.project,
                    self.environment
                ));
            }
        }
        let hash = spec_hash(json);
        let spec_text = serde_json::to_string(json).unwrap_or_default();
        let is_job = spec.kind == "job";
        let replicas = if is_job { 1 } else { spec.replicas.max(1) };
        let mut names = Vec::new();
        for r in 1..=replicas {
            let name = format!("{}-{}-{}-{r}", self.project, self.environment, s.name);
            let mut labels = self.labels(&s.name);
            labels.insert(SPEC.into(), spec_text.clone());
            labels.insert(SPEC_HASH.into(), hash.clone());
            labels.insert(REPLICA.into(), r.to_string());
            if let Some(k) = &s.key {
                labels.insert(KEY.into(), k.clone());
            }
            let body = self.container_body(s, &spec, labels, volume.as_ref(), is_job)?;
            self.docker
                .create_container(
                    Some(CreateContainerOptions { name: Some(name.clone()), platform: String::new() }),
                    body,
                )
                .await
                .map_err(|e| format!("cannot create the container {name}: {}", reason(&e)))?;
            names.push(name);
        }
        if is_job && spec.schedule.is_some() {
            self.note(n, "created, not started: the docker target does not schedule jobs");
            return Ok(());
        }
        for name in &names {
            self.docker
                .start_container(name, None::<bollard::query_parameters::StartContainerOptions>)
                .await
                .map_err(|e| format!("cannot start {name}: {}", reason(&e)))?;
        }
        if is_job {
            self.note(n, "running to completion");
            return self.wait_job(&names[0]).await;
        }
        let deadline = tokio::time::Instant::now().checked_add(self.timeout).unwrap_or_else(far_future);
        for name in &names {
            self.note(
                n,
                if spec.healthcheck.is_some() {
                    format!("waiting for {name} to be healthy")
                } else {
                    format!("waiting for {name}")
                },
            );
            if let Err(e) = self.wait_ready(name, spec.healthcheck.is_some(), deadline).await {
                // Stopped, not removed: its logs stay readable, and the next plan sees it is not up.
                for n in &names {
                    let _ =
                        self.docker.stop_container(n, Some(StopContainerOptions { t: Some(10), signal: None })).await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn volume_name(&self, service: &str) -> String {
        format!("{}-{}-{service}-data", self.project, self.environment)
    }

    fn labels(&self, service: &str) -> HashMap<String, String> {
        HashMap::from([
            (PROJECT.into(), self.project.clone()),
            (ENVIRONMENT.into(), self.environment.clone()),
            (SERVICE.into(), service.into()),
        ])
    }

    fn container_body(
        &self,
        s: &ServiceDeploy,
        spec: &Spec,
        labels: HashMap<String, String>,
        volume: Option<&(String, String)>,
        is_job: bool,
    ) -> Result<ContainerCreateBody, String> {
        let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for var in spec.secrets.keys() {
            let value =
                s.secrets.get(var).ok_or_else(|| format!("no value for the secret in `{var}` of `{}`", s.name))?;
            env.push(format!("{var}={value}"));
        }
        let ports: Vec<String> = spec.ports.iter().map(|p| format!("{p}/tcp")).collect();
        let bindings: HashMap<String, Option<Vec<PortBinding>>> = ports
            .iter()
            .map(|p| {
                (
                    p.clone(),
                    Some(vec![PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some(String::new()) }]),
                )
            })
            .collect();
        let healthcheck = spec.healthcheck.as_ref().map(health_config).transpose()?;
        let (nano_cpus, memory) = match &spec.resources {
            Some(r) => (r.cpu.as_deref().and_then(nano_cpus), r.memory.as_deref().and_then(memory_bytes)),
            None => (None, None),
        };
        let mounts = volume.map(|(name, path)| {
            vec![Mount {
                target: Some(path.clone()),
                source: Some(name.clone()),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            }]
        });
        let network = self.network_name();
        Ok(ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: spec.command.clone(),
            cmd: spec.args.clone(),
            env: Some(env),
            labels: Some(labels),
            exposed_ports: (!ports.is_empty()).then_some(ports),
            healthcheck,
            host_config: Some(HostConfig {
                port_bindings: Some(bindings),
                network_mode: Some(network.clone()),
                mounts,
                nano_cpus,
                memory,
                restart_policy: (!is_job).then_some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network,
                    EndpointSettings { aliases: Some(vec![s.name.clone()]), ..Default::default() },
                )])),
            }),
            ..Default::default()
        })
    }

    async fn wait_job(&self, name: &str) -> Result<(), String> {
        let mut wait = self.docker.wait_container(name, None::<WaitContainerOptions>);
        let timeout = self.timeout.min(Duration::from_secs(86_400 * 365));
        let code = match tokio::time::timeout(timeout, wait.next()).await {
            Err(_) => return Err(format!("{name} did not finish within {}s", self.timeout.as_secs())),
            Ok(Some(Ok(r))) => r.status_code,
            // bollard reports a non-zero exit as an error carrying the code.
            Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => code,
            Ok(Some(Err(e))) => return Err(format!("waiting for {name} failed: {}", reason(&e))),
            Ok(None) => return Err(format!("waiting for {name} ended without an exit code")),
        };
        if code == 0 {
            return Ok(());
        }
        Err(format!("the job {name} exited with code {code}{}", last_lines(&self.docker, name).await))
    }

    async fn wait_ready(&self, name: &str, healthcheck: bool, deadline: tokio::time::Instant) -> Result<(), String> {
        let mut running_since: Option<tokio::time::Instant> = None;
        loop {
            let c = self
                .docker
                .inspect_container(name, None::<bollard::query_parameters::InspectContainerOptions>)
                .await
                .map_err(|e| format!("cannot inspect {name}: {}", reason(&e)))?;
            let state = c.state.unwrap_or_default();
            if state.running != Some(true) || state.restarting == Some(true) || c.restart_count.unwrap_or(0) > 0 {
                let code = state.exit_code.unwrap_or(0);
                return Err(format!("{name} stopped (exit code {code}){}", last_lines(&self.docker, name).await));
            }
            if healthcheck {
                let health = state.health.unwrap_or_default();
                match health.status {
                    Some(HealthStatusEnum::HEALTHY) => return Ok(()),
                    Some(HealthStatusEnum::UNHEALTHY) => {
                        let probe = health
                            .log
                            .unwrap_or_default()
                            .last()
                            .and_then(|l| l.output.clone())
                            .map(|o| format!("; last check said: {}", o.trim()))
                            .unwrap_or_default();
                        return Err(format!("{name} is unhealthy{probe}{}", last_lines(&self.docker, name).await));
                    }
                    _ => {}
                }
            } else {
                // Running for a second without exiting counts as up.
                let since = *running_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() >= Duration::from_secs(1) {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "{name} was not {} within {}s",
                    if healthcheck { "healthy" } else { "up" },
                    self.timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Deployer for DockerTarget {
    async fn deploy(&self, n: usize) -> Result<(), String> {
        self.deploy_one(n).await
    }
}

/// A deadline that never comes, for timeouts too large to add to now.
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400 * 365)
}

/// blake3 of the spec's JSON (maps sorted), shortened.
pub fn spec_hash(spec: &Json) -> String {
    let bytes = serde_json::to_vec(spec).unwrap_or_default();
    blake3::hash(&bytes).to_hex()[..16].to_string()
}

/// `repo`, `tag` of an image reference (`tag` defaults to `latest`; a digest stays in the repo part).
fn split_image(image: &str) -> (String, String) {
    if image.contains('@') {
        return (image.to_string(), String::new());
    }
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (image.to_string(), "latest".to_string()),
    }
}

/// The registry an image reference names (`docker.io` when its first part is not a host).
fn registry_host(repo: &str) -> String {
    match repo.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first.to_string(),
        _ => "docker.io".to_string(),
    }
}

fn health_config(h: &Healthcheck) -> Result<HealthConfig, String> {
    let test = match (&h.command, &h.http) {
        (Some(cmd), _) => {
            let mut t = vec!["CMD".to_string()];
            t.extend(cmd.iter().cloned());
            t
        }
        (None, Some(http)) => {
            let url = format!("http://127.0.0.1:{}{}", http.port, http.path);
            vec!["CMD-SHELL".into(), format!("wget -q -O /dev/null '{url}' || curl -fsS -o /dev/null '{url}'")]
        }
        (None, None) => return Err("a healthcheck needs `command` or `http`".into()),
    };
    let ns = |s: &str| {
        parse_duration(s)
            .and_then(|d| i64::try_from(d.as_nanos()).ok())
            .ok_or_else(|| format!("healthcheck duration `{s}` is not a duration Docker can take"))
    };
    Ok(HealthConfig {
        test: Some(test),
        interval: Some(ns(&h.interval)?),
        timeout: Some(ns(&h.timeout)?),
        retries: Some(i64::from(h.retries)),
        start_period: Some(ns(&h.start_period)?),
        start_interval: None,
    })
}

/// `500ms`, `10s`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    let n: u64 = s[..digits].parse().ok()?;
    Some(match &s[digits..] {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    })
}

/// `500m` or `1.5` cores as nano-CPUs.
fn nano_cpus(s: &str) -> Option<i64> {
    if let Some(m) = s.strip_suffix('m') {
        return m.parse::<i64>().ok().and_then(|m| m.checked_mul(1_000_000));
    }
    s.parse::<f64>()
        .ok()
        .map(|c| c * 1e9)
        .filter(|n| n.is_finite() && *n >= 1.0 && *n < i64::MAX as f64)
        .map(|n| n as i64)
}

/// `256Mi`, `1G`, `1024` as bytes.
fn memory_bytes(s: &str) -> Option<i64> {
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    let n: i64 = s[..digits].parse().ok()?;
    let unit: i64 = match &s[digits..] {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// The last lines a container wrote, as a message tail.
async fn last_lines(docker: &Docker, name: &str) -> String {
    let options = LogsOptions { stdout: true, stderr: true, tail: "10".into(), ..Default::default() };
    let mut logs = docker.logs(name, Some(options));
    let mut text = String::new();
    while let Some(Ok(chunk)) = logs.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return "\n(it wrote no output)".into();
    }
    let mut s = "\nlast lines:".to_string();
    for l in lines {
        s.push_str("\n  ");
        s.push_str(l);
    }
    s
}

async fn ensure_network(docker: &Docker, project: &str, environment: &str) -> Result<(), String> {
    let name = format!("{project}-{environment}");
    let filters = HashMap::from([("name".to_string(), vec![name.clone()])]);
    let found = docker
        .list_networks(Some(ListNetworksOptions { filters: Some(filters) }))
        .await
        .map_err(|e| format!("cannot list networks: {}", reason(&e)))?;
    if let Some(n) = found.iter().find(|n| n.name.as_deref() == Some(name.as_str())) {
        let labels = n.labels.clone().unwrap_or_default();
        if labels.get(PROJECT).map(String::as_str) == Some(project)
            && labels.get(ENVIRONMENT).map(String::as_str) == Some(environment)
        {
            return Ok(());
        }
        return Err(format!(
            "the network {name} already exists and belongs to {}, not to {project}/{environment}",
            describe_owner(&labels)
        ));
    }
    let req = NetworkCreateRequest {
        name: name.clone(),
        driver: Some("bridge".into()),
        labels: Some(HashMap::from([
            (PROJECT.to_string(), project.to_string()),
            (ENVIRONMENT.to_string(), environment.to_string()),
        ])),
        ..Default::default()
    };
    match docker.create_network(req).await {
        Ok(_) => Ok(()),
        Err(e) if status(&e) == Some(409) => Ok(()),
        Err(e) => Err(format!("cannot create the network {name}: {}", reason(&e))),
    }
}

/// Who a volume or network belongs to, from its labels.
fn describe_owner(labels: &HashMap<String, String>) -> String {
    match (labels.get(PROJECT), labels.get(ENVIRONMENT)) {
        (Some(p), Some(e)) => match labels.get(SERVICE) {
            Some(s) => format!("service `{s}` of {p}/{e}"),
            None => format!("{p}/{e}"),
        },
        _ => "something not made by pipeline".into(),
    }
}

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

/// The containers of an environment (of one service, if given).
pub async fn containers_of(
    docker: &Docker,
    project: &str,
    environment: &str,
    service: Option<&str>,
) -> Result<Vec<Listed>, String> {
    let mut labels = vec![format!("{PROJECT}={project}"), format!("{ENVIRONMENT}={environment}")];
    if let Some(s) = service {
        labels.push(format!("{SERVICE}={s}"));
    }
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([("label".to_string(), labels)])),
        ..Default::default()
    };
    let list =
        docker.list_containers(Some(options)).await.map_err(|e| format!("cannot list containers: {}", reason(&e)))?;
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

async fn remove_all(docker: &Docker, containers: &[Listed]) -> Result<(), String> {
    for c in containers {
        if c.state == "running" {
            // Ten seconds to stop cleanly, as `docker stop`.
            let _ = docker.stop_container(&c.id, Some(StopContainerOptions { t: Some(10), signal: None })).await;
        }
        match docker.remove_container(&c.id, Some(RemoveContainerOptions { force: true, ..Default::default() })).await {
            Ok(()) => {}
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => return Err(format!("cannot remove {}: {}", c.name, reason(&e))),
        }
    }
    Ok(())
}

/// What runs for an environment, from the labels: per service, the spec it was deployed with, with
/// `replicas` counting only the containers that are up at that spec (a job counts when it exited 0, a
/// scheduled job when its container exists). A job with no successful run is not reported, so the plan
/// runs it again.
pub async fn observe(docker: &Docker, project: &str, environment: &str) -> Result<Vec<LiveService>, String> {
    let list = containers_of(docker, project, environment, None).await?;
    let mut by_service: BTreeMap<&str, Vec<&Listed>> = BTreeMap::new();
    for c in &list {
        by_service.entry(c.service.as_str()).or_default().push(c);
    }
    let mut out = Vec::new();
    for (name, cs) in by_service {
        // The spec of the first replica; replicas at another spec do not count.
        let Some(first) = cs.iter().min_by_key(|c| c.labels.get(REPLICA).and_then(|r| r.parse::<u32>().ok())) else {
            continue;
        };
        let Some(mut spec) = first.labels.get(SPEC).and_then(|s| serde_json::from_str::<Json>(s).ok()) else {
            continue;
        };
        let hash = first.labels.get(SPEC_HASH).cloned().unwrap_or_default();
        let is_job = spec.get("type").and_then(Json::as_str) == Some("job");
        let scheduled = spec.get("schedule").is_some_and(|s| !s.is_null());
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
        } else if let Some(obj) = spec.as_object_mut() {
            obj.insert("replicas".into(), Json::from(good));
        }
        out.push(LiveService { name: name.to_string(), spec });
    }
    Ok(out)
}

/// What `destroy` removed.
#[derive(Debug, Default)]
pub struct Destroyed {
    pub services: Vec<String>,
    pub containers: usize,
    pub volumes_kept: Vec<String>,
    pub volumes_removed: Vec<String>,
}

/// Remove an environment's services in reverse stage order (`stages` in execution order; services of
/// unknown stages go first), then its network; volumes only when asked.
pub async fn destroy(
    docker: &Docker,
    project: &str,
    environment: &str,
    stages: &[String],
    volumes: bool,
    mut on_service: impl FnMut(&str),
) -> Result<Destroyed, String> {
    let list = containers_of(docker, project, environment, None).await?;
    let mut by_service: BTreeMap<String, Vec<Listed>> = BTreeMap::new();
    for c in list {
        by_service.entry(c.service.clone()).or_default().push(c);
    }
    let stage_of = |cs: &[Listed]| {
        cs.iter()
            .find_map(|c| c.labels.get(SPEC).and_then(|s| serde_json::from_str::<Json>(s).ok()))
            .and_then(|s| s.get("stage").and_then(Json::as_str).map(str::to_string))
            .and_then(|st| stages.iter().position(|x| *x == st))
    };
    let mut order: Vec<(Option<usize>, String)> =
        by_service.iter().map(|(name, cs)| (stage_of(cs), name.clone())).collect();
    // Later stages first; unknown stages before all.
    order.sort_by(|a, b| b.0.map_or(usize::MAX, |x| x).cmp(&a.0.map_or(usize::MAX, |x| x)).then(a.1.cmp(&b.1)));
    let mut done = Destroyed::default();
    for (_, name) in order {
        on_service(&name);
        let cs = &by_service[&name];
        remove_all(docker, cs).await?;
        done.containers += cs.len();
        done.services.push(name);
    }
    let network = format!("{project}-{environment}");
    match docker.remove_network(&network).await {
        Ok(()) => {}
        Err(e) if status(&e) == Some(404) => {}
        Err(e) => return Err(format!("cannot remove the network {network}: {}", reason(&e))),
    }
    for name in volumes_of(docker, project, environment).await? {
        if volumes {
            docker
                .remove_volume(&name, None::<RemoveVolumeOptions>)
                .await
                .map_err(|e| format!("cannot remove the volume {name}: {}", reason(&e)))?;
            done.volumes_removed.push(name);
        } else {
            done.volumes_kept.push(name);
        }
    }
    Ok(done)
}

/// The data volumes of an environment (by their labels), sorted by name. They outlive its services.
pub async fn volumes_of(docker: &Docker, project: &str, environment: &str) -> Result<Vec<String>, String> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{PROJECT}={project}"), format!("{ENVIRONMENT}={environment}")],
    )]);
    let vols = docker
        .list_volumes(Some(bollard::query_parameters::ListVolumesOptions { filters: Some(filters) }))
        .await
        .map_err(|e| format!("cannot list volumes: {}", reason(&e)))?;
    let mut names: Vec<String> = vols.volumes.unwrap_or_default().into_iter().map(|v| v.name).collect();
    names.sort();
    Ok(names)
}

/// One apply (or destroy) at a time per environment: a created, never started container named
/// `<project>-<env>-pipeline-lock`, whose name the engine keeps unique. Released by [`Lock::release`].
#[derive(Clone)]
pub struct Lock {
    docker: Docker,
    /// The lock container's id: removed by id, so a lock that changed hands is never removed.
    id: String,
}

/// Someone else holds the lock.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("environment `{environment}` of project `{project}` is locked by {holder}, since {since}")]
#[diagnostic(
    code(pipeline::lock::held),
    help("wait for that run to finish; if it is gone, remove the lock with `docker rm {container}`")
)]
pub struct Locked {
    pub project: String,
    pub environment: String,
    pub holder: String,
    pub since: String,
    pub container: String,
}

impl Lock {
    pub async fn acquire(docker: &Docker, project: &str, environment: &str, holder: &str) -> Result<Lock, LockError> {
        let name = format!("{project}-{environment}-pipeline-lock");
        ensure_lock_image(docker).await.map_err(LockError::Engine)?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        for attempt in 0..2 {
            let body = ContainerCreateBody {
                image: Some(LOCK_IMAGE.into()),
                cmd: Some(vec!["lock".into()]),
                labels: Some(HashMap::from([
                    (PROJECT.into(), project.into()),
                    (ENVIRONMENT.into(), environment.into()),
                    (LOCK_HOLDER.into(), holder.into()),
                    (LOCK_SINCE.into(), now.to_string()),
                ])),
                ..Default::default()
            };
            let options = CreateContainerOptions { name: Some(name.clone()), platform: String::new() };
            match docker.create_container(Some(options), body).await {
                Ok(created) => return Ok(Lock { docker: docker.clone(), id: created.id }),
                Err(e) if status(&e) == Some(409) => {
                    let c = docker
                        .inspect_container(&name, None::<bollard::query_parameters::InspectContainerOptions>)
                        .await
                        .map_err(|e| LockError::Engine(format!("cannot read the lock {name}: {}", reason(&e))))?;
                    let labels = c.config.and_then(|c| c.labels).unwrap_or_default();
                    let held_by = labels.get(LOCK_HOLDER).cloned().unwrap_or_else(|| "an unknown run".into());
                    if attempt == 0 && holder_is_gone(&held_by) {
                        // By id: if another run took the dead lock over first, its new lock is not touched.
                        if let Some(id) = c.id.as_deref() {
                            let _ = docker
                                .remove_container(
                                    id,
                                    Some(RemoveContainerOptions { force: true, ..Default::default() }),
                                )
                                .await;
                        }
                        continue;
                    }
                    let since = labels
                        .get(LOCK_SINCE)
                        .and_then(|s| s.parse::<u64>().ok())
                        .map(|t| format!("{}s ago", now.saturating_sub(t)))
                        .unwrap_or_else(|| "an unknown time".into());
                    return Err(LockError::Held(Box::new(Locked {
                        project: project.into(),
                        environment: environment.into(),
                        holder: held_by,
                        since,
                        container: name,
                    })));
                }
                Err(e) => return Err(LockError::Engine(format!("cannot take the lock {name}: {}", reason(&e)))),
            }
        }
        Err(LockError::Engine(format!("cannot take the lock {name}")))
    }

    pub async fn release(&self) {
        let _ = self
            .docker
            .remove_container(&self.id, Some(RemoveContainerOptions { force: true, ..Default::default() }))
            .await;
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LockError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Held(Box<Locked>),
    #[error("{0}")]
    #[diagnostic(code(pipeline::lock::engine))]
    Engine(String),
}

/// Who holds a lock: `user@host pid N`.
pub fn holder() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "someone".into());
    format!("{user}@{} pid {}", hostname(), std::process::id())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// A holder on this host whose process has ended.
pub(crate) fn holder_is_gone(holder: &str) -> bool {
    let Some((who, pid)) = holder.rsplit_once(" pid ") else { return false };
    let Some(host) = who.split_once('@').map(|(_, h)| h) else { return false };
    host == hostname()
        && pid
            .parse::<u32>()
            .is_ok_and(|p| p != std::process::id() && !std::path::Path::new(&format!("/proc/{p}")).exists())
}

/// The lock's image: an empty file system imported on the spot (nothing is pulled).
pub(crate) async fn ensure_lock_image(docker: &Docker) -> Result<(), String> {
    if docker.inspect_image(LOCK_IMAGE).await.is_ok() {
        return Ok(());
    }
    let empty = tar::Builder::new(Vec::new()).into_inner().map_err(|e| e.to_string())?;
    let options = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some("pipeline-lock".into()),
        tag: Some("1".into()),
        ..Default::default()
    };
    crate::docker::drain_create(docker.create_image(Some(options), Some(bollard::body_full(empty.into())), None))
        .await
        .map_err(|why| format!("cannot make the lock image: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("2"), None);
        assert_eq!(nano_cpus("500m"), Some(500_000_000));
        assert_eq!(nano_cpus("1.5"), Some(1_500_000_000));
        assert_eq!(memory_bytes("256Mi"), Some(256 << 20));
        assert_eq!(memory_bytes("1G"), Some(1_000_000_000));
        assert_eq!(memory_bytes("1X"), None);
    }

    #[test]
    fn image_names() {
        assert_eq!(split_image("127.0.0.1:5000/shop/api:k1"), ("127.0.0.1:5000/shop/api".into(), "k1".into()));
        assert_eq!(split_image("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(split_image("localhost:5000/x"), ("localhost:5000/x".into(), "latest".into()));
        assert_eq!(registry_host("127.0.0.1:5000/shop/api"), "127.0.0.1:5000");
        assert_eq!(registry_host("library/busybox"), "docker.io");
        assert_eq!(registry_host("pipeline-examples/busybox"), "docker.io");
    }
}
