//! Deploying one service to a Docker engine: the environment's network, the image (pulled when the engine
//! lacks it), the data volume of a database, then the service's containers, started and waited for
//! (healthy, up, or a job run to completion). Retiring a service and destroying an environment remove
//! containers, then the network; volumes only when asked.

use super::container::{self, registry_host, split_image};
use super::labels::{ENVIRONMENT, KEY, PROJECT, REPLICA, SERVICE, SPEC, SPEC_HASH};
use super::live::{Listed, containers_of, describe_owner, volumes_of};
use super::{DockerError, DockerTarget, proxy, status};
use crate::target::{Removed, Run, ServiceDeploy};
use bollard::Docker;
use bollard::models::{HealthStatusEnum, NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ListNetworksOptions, LogsOptions, RemoveContainerOptions,
    RemoveVolumeOptions, StopContainerOptions, WaitContainerOptions,
};
use futures_util::StreamExt as _;
use pipeline_planner::DeploySpec;
use pipeline_planner::model::ServiceType;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

impl DockerTarget {
    /// Bring one service to its spec. A service that serves is replaced safely: the new containers start
    /// beside the old ones, and only once all are healthy (or up) are the old ones taken out of the
    /// network and stopped, all at once; if any new one fails, the new ones go and the old ones keep
    /// serving. A service with a volume (one writer on it: a database, say), a job (a new run) and a
    /// service with nothing running are stopped first, then started.
    pub(crate) async fn deploy_service(&self, s: &ServiceDeploy, run: &Run) -> Result<(), DockerError> {
        let Some(spec) = &s.spec else { return Err(DockerError::spec(&s.name, "it has no spec to deploy")) };
        if !spec.endpoints.is_empty() {
            let routes = proxy::routes(&self.docker).await?;
            let me = format!("{}/{}", self.project, self.environment);
            if let Some((address, owner)) = proxy::taken(&routes, spec, &me, &s.name) {
                return Err(DockerError::EndpointTaken { address, owner });
            }
        }
        self.ensure_network().await?;
        run.note(format!("image {}", spec.image));
        self.ensure_image(&spec.image).await?;
        let current = self.recover(&s.name).await?;
        let volume = spec.volume.as_ref().map(|path| (self.volume_name(&s.name), path.clone()));
        if let Some((name, _)) = &volume {
            self.ensure_volume(name, &s.name).await?;
        }
        let serving = current.iter().any(|c| c.state == "running");
        let had_endpoints = current.iter().any(|c| !endpoints_of(c).is_empty());
        self.replace(s, spec, run, current, volume, serving).await?;
        if had_endpoints || !spec.endpoints.is_empty() {
            run.note("routing the public endpoints");
            self.sync_proxy(run).await?;
        }
        Ok(())
    }

    /// Replace the service's containers (`current`) with new ones at `spec`.
    async fn replace(
        &self,
        s: &ServiceDeploy,
        spec: &DeploySpec,
        run: &Run,
        current: Vec<Listed>,
        volume: Option<(String, String)>,
        serving: bool,
    ) -> Result<(), DockerError> {
        if spec.kind == ServiceType::Database || spec.volume.is_some() || spec.is_job() || !serving {
            if !current.is_empty() {
                run.note("replacing the old containers");
                remove_all(&self.docker, &current).await?;
            }
            let names = self.create_containers(s, spec, volume.as_ref(), "").await?;
            if spec.is_job() && spec.is_scheduled() {
                run.note("created, not started: the docker target does not schedule jobs");
                return Ok(());
            }
            self.start(&names).await?;
            if spec.is_job() {
                run.note("running to completion");
                return self.wait_job(&names[0], run.timeout).await;
            }
            if let Err(e) = self.wait_all(&names, spec, run).await {
                // Stopped, not removed: its logs stay readable, and the next plan sees it is not up.
                let grace: Vec<(String, Duration)> = names.iter().map(|n| (n.clone(), spec.stop_grace())).collect();
                stop_all(&self.docker, &grace).await;
                return Err(e);
            }
            return self.set_restart_policy(&names, spec).await;
        }

        run.note("starting the new containers beside the old ones");
        let ready = match self.create_containers(s, spec, volume.as_ref(), container::CANDIDATE).await {
            Ok(names) => match self.start(&names).await {
                Ok(()) => self.wait_all(&names, spec, run).await.map(|()| names),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let names = match ready {
            Ok(names) => names,
            Err(e) => {
                run.note("removing the new containers; the previous version keeps serving");
                // Every candidate of the service, also those created before a failure; the cause stays the
                // error (a failed removal is left for the next apply's recovery).
                if let Ok(all) = containers_of(&self.docker, &self.project, &self.environment, Some(&s.name)).await {
                    let candidates: Vec<Listed> =
                        all.into_iter().filter(|c| c.name.ends_with(container::CANDIDATE)).collect();
                    let _ = remove_all(&self.docker, &candidates).await;
                }
                return Err(DockerError::KeptPrevious(Box::new(e)));
            }
        };
        // Up: from now on they restart if they stop, whatever happens to this run.
        self.set_restart_policy(&names, spec).await?;
        // The new containers answer to the service's name, beside the old ones; then the old ones leave.
        run.note("switching to the new containers");
        for name in &names {
            self.join_name(name, &s.name).await?;
        }
        run.note("retiring the old containers");
        retire(&self.docker, &self.network_name(), &current).await?;
        for name in &names {
            let to = name.trim_end_matches(container::CANDIDATE);
            self.docker
                .rename_container(name, bollard::query_parameters::RenameContainerOptions { name: to.to_string() })
                .await
                .map_err(|e| DockerError::request(&format!("rename {name} to {to}"), &e))?;
        }
        Ok(())
    }

    /// Bring the engine's proxy to what runs now (`apply` with this environment's proxy settings).
    pub(crate) async fn sync_proxy(&self, run: &Run) -> Result<(), DockerError> {
        proxy::sync(&self.docker, Some(&self.proxy), &self.registry, &|text| run.note(text)).await
    }

    /// The service's containers after a run that stopped half-way (killed during a replacement). A
    /// candidate beside a running replica never finished the switch: it goes, the replica keeps serving.
    /// A running, healthy candidate whose replica is stopped or gone was past its health gate: it takes the
    /// replica's place (its name, the service's name on the network, restarts). Any other candidate goes.
    async fn recover(&self, service: &str) -> Result<Vec<Listed>, DockerError> {
        let all = containers_of(&self.docker, &self.project, &self.environment, Some(service)).await?;
        let (candidates, mut current): (Vec<Listed>, Vec<Listed>) =
            all.into_iter().partition(|c| c.name.ends_with(container::CANDIDATE));
        for c in candidates {
            let replica = c.name.trim_end_matches(container::CANDIDATE).to_string();
            let beside = current.iter().position(|x| x.name == replica);
            let replica_serves = beside.is_some_and(|i| current[i].state == "running");
            let healthy =
                c.state == "running" && !c.status.contains("(unhealthy)") && !c.status.contains("(health: starting)");
            if replica_serves || !healthy {
                remove_all(&self.docker, std::slice::from_ref(&c)).await?;
                continue;
            }
            if let Some(i) = beside {
                let old = current.remove(i);
                retire(&self.docker, &self.network_name(), std::slice::from_ref(&old)).await?;
            }
            self.docker
                .rename_container(&c.name, bollard::query_parameters::RenameContainerOptions { name: replica.clone() })
                .await
                .map_err(|e| DockerError::request(&format!("rename {} to {replica}", c.name), &e))?;
            if !self.has_name(&replica, service).await? {
                self.join_name(&replica, service).await?;
            }
            let update = bollard::models::ContainerUpdateBody {
                restart_policy: Some(bollard::models::RestartPolicy {
                    name: Some(bollard::models::RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            };
            let _ = self.docker.update_container(&replica, update).await;
            current.push(Listed { name: replica, ..c });
        }
        Ok(current)
    }

    /// Whether a container answers to `service` on the environment's network.
    async fn has_name(&self, container: &str, service: &str) -> Result<bool, DockerError> {
        let c = self
            .docker
            .inspect_container(container, None::<bollard::query_parameters::InspectContainerOptions>)
            .await
            .map_err(|e| DockerError::request(&format!("inspect {container}"), &e))?;
        let network = self.network_name();
        Ok(c.network_settings
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(&network))
            .and_then(|e| e.aliases)
            .is_some_and(|a| a.iter().any(|x| x == service)))
    }

    /// Give a container the service's name on the environment's network (Docker sets aliases when a
    /// container joins a network: it joins again).
    async fn join_name(&self, container: &str, service: &str) -> Result<(), DockerError> {
        let network = self.network_name();
        let leave = bollard::models::NetworkDisconnectRequest { container: container.to_string(), force: Some(true) };
        self.docker
            .disconnect_network(&network, leave)
            .await
            .map_err(|e| DockerError::request(&format!("take {container} off {network}"), &e))?;
        let join = bollard::models::NetworkConnectRequest {
            container: container.to_string(),
            endpoint_config: Some(bollard::models::EndpointSettings {
                aliases: Some(container::aliases(&network, service)),
                ..Default::default()
            }),
        };
        self.docker
            .connect_network(&network, join)
            .await
            .map_err(|e| DockerError::request(&format!("connect {container} to {network} as `{service}`"), &e))
    }

    async fn start(&self, names: &[String]) -> Result<(), DockerError> {
        for name in names {
            self.docker
                .start_container(name, None::<bollard::query_parameters::StartContainerOptions>)
                .await
                .map_err(|e| DockerError::request(&format!("start {name}"), &e))?;
        }
        Ok(())
    }

    /// Wait until every container is healthy (or up); the first that fails fails them all at once.
    async fn wait_all(&self, names: &[String], spec: &DeploySpec, run: &Run) -> Result<(), DockerError> {
        let deadline = tokio::time::Instant::now().checked_add(run.timeout).unwrap_or_else(far_future);
        let health = spec.healthcheck.is_some();
        run.note(if health {
            format!("waiting for {} to be healthy", names.join(", "))
        } else {
            format!("waiting for {}", names.join(", "))
        });
        let waits = names.iter().map(|name| Box::pin(self.wait_ready(name, health, deadline, run.timeout)));
        futures_util::future::try_join_all(waits).await.map(|_| ())
    }

    /// Restart the containers when they stop (not when stopped on purpose) from now on.
    async fn set_restart_policy(&self, names: &[String], spec: &DeploySpec) -> Result<(), DockerError> {
        for name in names {
            let update = bollard::models::ContainerUpdateBody {
                restart_policy: Some(container::restart_policy(spec)),
                ..Default::default()
            };
            self.docker
                .update_container(name, update)
                .await
                .map_err(|e| DockerError::request(&format!("set the restart policy of {name}"), &e))?;
        }
        Ok(())
    }

    /// Remove the containers of a service the definitions no longer have: out of the network first,
    /// then stopped, all at once.
    pub(crate) async fn retire_service(&self, s: &ServiceDeploy, run: &Run) -> Result<(), DockerError> {
        let existing = containers_of(&self.docker, &self.project, &self.environment, Some(&s.name)).await?;
        run.note("removing");
        retire(&self.docker, &self.network_name(), &existing).await?;
        if existing.iter().any(|c| !endpoints_of(c).is_empty()) {
            proxy::sync(&self.docker, None, &self.registry, &|text| run.note(text)).await?;
        }
        Ok(())
    }

    fn volume_name(&self, service: &str) -> String {
        format!("{}-{service}-data", self.network_name())
    }

    fn labels(&self, service: &str) -> HashMap<String, String> {
        HashMap::from([
            (PROJECT.into(), self.project.clone()),
            (ENVIRONMENT.into(), self.environment.clone()),
            (SERVICE.into(), service.into()),
        ])
    }

    async fn ensure_network(&self) -> Result<(), DockerError> {
        self.network
            .get_or_try_init(|| ensure_network(&self.docker, &self.project, &self.environment))
            .await
            .map(|_| ())
    }

    pub(crate) async fn ensure_image(&self, image: &str) -> Result<(), DockerError> {
        ensure_image(&self.docker, &self.registry, image).await
    }

    /// The volume of a database; one that exists must be this service's.
    async fn ensure_volume(&self, name: &str, service: &str) -> Result<(), DockerError> {
        let req = VolumeCreateRequest {
            name: Some(name.to_string()),
            labels: Some(self.labels(service)),
            ..Default::default()
        };
        let v = self
            .docker
            .create_volume(req)
            .await
            .map_err(|e| DockerError::request(&format!("create the volume {name}"), &e))?;
        // Creating a volume that exists returns it: make sure it is this environment's.
        let owner = (v.labels.get(PROJECT), v.labels.get(ENVIRONMENT), v.labels.get(SERVICE));
        if owner != (Some(&self.project), Some(&self.environment), Some(&service.to_string())) {
            return Err(DockerError::Foreign {
                what: format!("the volume {name}"),
                owner: describe_owner(&v.labels),
                wanted: format!("service `{service}` of {}/{}", self.project, self.environment),
            });
        }
        Ok(())
    }

    /// Create the service's containers, named after their replica with `suffix`.
    async fn create_containers(
        &self,
        s: &ServiceDeploy,
        spec: &DeploySpec,
        volume: Option<&(String, String)>,
        suffix: &str,
    ) -> Result<Vec<String>, DockerError> {
        let hash = spec.hash();
        let spec_text = serde_json::to_string(&spec.to_json()).unwrap_or_default();
        let replicas = if spec.is_job() { 1 } else { spec.replicas.max(1) };
        let mut names = Vec::new();
        for r in 1..=replicas {
            let name = format!("{}{suffix}", container::name(&self.network_name(), &s.name, r));
            let mut labels = self.labels(&s.name);
            labels.insert(SPEC.into(), spec_text.clone());
            labels.insert(SPEC_HASH.into(), hash.clone());
            labels.insert(REPLICA.into(), r.to_string());
            if let Some(k) = &s.key {
                labels.insert(KEY.into(), k.clone());
            }
            let body = container::body(&self.network_name(), s, spec, labels, volume, suffix.is_empty())?;
            self.docker
                .create_container(
                    Some(CreateContainerOptions { name: Some(name.clone()), platform: String::new() }),
                    body,
                )
                .await
                .map_err(|e| DockerError::request(&format!("create the container {name}"), &e))?;
            names.push(name);
        }
        Ok(names)
    }

    async fn wait_job(&self, name: &str, timeout: Duration) -> Result<(), DockerError> {
        let mut wait = self.docker.wait_container(name, None::<WaitContainerOptions>);
        let limit = timeout.min(Duration::from_secs(86_400 * 365));
        let code = match tokio::time::timeout(limit, wait.next()).await {
            Err(_) => {
                return Err(DockerError::not_ready(
                    name,
                    format!("{name} did not finish within {}s", timeout.as_secs()),
                ));
            }
            Ok(Some(Ok(r))) => r.status_code,
            // bollard reports a non-zero exit as an error carrying the code.
            Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => code,
            Ok(Some(Err(e))) => return Err(DockerError::request(&format!("wait for {name}"), &e)),
            Ok(None) => {
                return Err(DockerError::not_ready(name, format!("waiting for {name} ended without an exit code")));
            }
        };
        if code == 0 {
            return Ok(());
        }
        Err(DockerError::not_ready(
            name,
            format!("the job {name} exited with code {code}{}", last_lines(&self.docker, name).await),
        ))
    }

    async fn wait_ready(
        &self,
        name: &str,
        healthcheck: bool,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<(), DockerError> {
        let mut running_since: Option<tokio::time::Instant> = None;
        loop {
            let c = self
                .docker
                .inspect_container(name, None::<bollard::query_parameters::InspectContainerOptions>)
                .await
                .map_err(|e| DockerError::request(&format!("inspect {name}"), &e))?;
            let state = c.state.unwrap_or_default();
            if state.running != Some(true) || state.restarting == Some(true) || c.restart_count.unwrap_or(0) > 0 {
                let code = state.exit_code.unwrap_or(0);
                let oom = if state.oom_killed == Some(true) { ", killed for lack of memory" } else { "" };
                return Err(DockerError::not_ready(
                    name,
                    format!("{name} exited with code {code}{oom}{}", last_lines(&self.docker, name).await),
                ));
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
                        return Err(DockerError::not_ready(
                            name,
                            format!("{name} is unhealthy{probe}{}", last_lines(&self.docker, name).await),
                        ));
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
                return Err(DockerError::not_ready(
                    name,
                    format!(
                        "{name} was not {} within {}s",
                        if healthcheck { "healthy" } else { "up" },
                        timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// Pull an image the engine lacks, with the credentials `~/.docker/config.json` has for its registry.
pub(crate) async fn ensure_image(
    docker: &Docker,
    registry: &std::sync::Arc<crate::registry::RegistryClient>,
    image: &str,
) -> Result<(), DockerError> {
    match docker.inspect_image(image).await {
        Ok(_) => return Ok(()),
        Err(e) if status(&e) == Some(404) => {}
        Err(e) => return Err(DockerError::request(&format!("inspect the image {image}"), &e)),
    }
    let (repo, tag) = split_image(image);
    let host = registry_host(&repo);
    // Unreadable credentials: try anonymously, and let the registry's answer explain.
    let creds = super::credentials(registry, &host).await.ok().flatten();
    let options = CreateImageOptions { from_image: Some(repo.clone()), tag: Some(tag), ..Default::default() };
    super::drain_create(&format!("pull {image}"), docker.create_image(Some(options), None, creds))
        .await
        .map_err(|e| DockerError::Image { image: image.to_string(), host, reason: e.reason().to_string() })
}

/// The public endpoints in the spec a container was deployed with.
fn endpoints_of(c: &Listed) -> Vec<pipeline_planner::model::PublicEndpoint> {
    c.spec().map(|spec| spec.endpoints).unwrap_or_default()
}

/// A deadline that never comes, for timeouts too large to add to now.
fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400 * 365)
}

/// The last lines a container wrote, as a message tail.
pub(crate) async fn last_lines(docker: &Docker, name: &str) -> String {
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

async fn ensure_network(docker: &Docker, project: &str, environment: &str) -> Result<(), DockerError> {
    let name = format!("{project}-{environment}");
    let filters = HashMap::from([("name".to_string(), vec![name.clone()])]);
    let found = docker
        .list_networks(Some(ListNetworksOptions { filters: Some(filters) }))
        .await
        .map_err(|e| DockerError::request("list networks", &e))?;
    if let Some(n) = found.iter().find(|n| n.name.as_deref() == Some(name.as_str())) {
        let labels = n.labels.clone().unwrap_or_default();
        if labels.get(PROJECT).map(String::as_str) == Some(project)
            && labels.get(ENVIRONMENT).map(String::as_str) == Some(environment)
        {
            return Ok(());
        }
        return Err(DockerError::Foreign {
            what: format!("the network {name}"),
            owner: describe_owner(&labels),
            wanted: format!("{project}/{environment}"),
        });
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
        Err(e) => Err(DockerError::request(&format!("create the network {name}"), &e)),
    }
}

/// Retire serving containers: taken out of the environment's network first (their names resolve to the
/// new containers only, so no new connection, from another service or the proxy, reaches them), then
/// stopped all at once, each with its service's grace period, and removed.
async fn retire(docker: &Docker, network: &str, containers: &[Listed]) -> Result<(), DockerError> {
    for c in containers.iter().filter(|c| c.state == "running") {
        let options = bollard::models::NetworkDisconnectRequest { container: c.id.clone(), force: Some(false) };
        // Already gone from the network is what was wanted.
        let _ = docker.disconnect_network(network, options).await;
    }
    remove_all(docker, containers).await
}

/// How long a container of ours has to stop: the grace period of the spec it was deployed with.
fn grace_of(c: &Listed) -> Duration {
    c.spec().map_or(Duration::from_secs(10), |spec| spec.stop_grace())
}

/// Stop containers, all at once, each with its grace period (SIGTERM, then SIGKILL), keeping them.
async fn stop_all(docker: &Docker, stops: &[(String, Duration)]) {
    let stops = stops.iter().map(|(n, grace)| {
        let t = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        docker.stop_container(n, Some(StopContainerOptions { t: Some(t), signal: None }))
    });
    let _ = futures_util::future::join_all(stops).await;
}

/// Stop (all at once) and remove containers.
async fn remove_all(docker: &Docker, containers: &[Listed]) -> Result<(), DockerError> {
    let running: Vec<(String, Duration)> =
        containers.iter().filter(|c| c.state == "running").map(|c| (c.id.clone(), grace_of(c))).collect();
    stop_all(docker, &running).await;
    for c in containers {
        match docker.remove_container(&c.id, Some(RemoveContainerOptions { force: true, ..Default::default() })).await {
            Ok(()) => {}
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => return Err(DockerError::request(&format!("remove {}", c.name), &e)),
        }
    }
    Ok(())
}

/// Remove an environment's services in reverse stage order (`stages` in execution order; services of
/// unknown stages go first), then its network; volumes only when asked.
pub(crate) async fn destroy(
    docker: &Docker,
    registry: &std::sync::Arc<crate::registry::RegistryClient>,
    project: &str,
    environment: &str,
    stages: &[String],
    volumes: bool,
    on_service: &(dyn Fn(&str) + Send + Sync),
) -> Result<Removed, DockerError> {
    let list = containers_of(docker, project, environment, None).await?;
    let mut by_service: BTreeMap<String, Vec<Listed>> = BTreeMap::new();
    for c in list {
        by_service.entry(c.service.clone()).or_default().push(c);
    }
    let stage_of =
        |cs: &[Listed]| cs.iter().find_map(Listed::spec).and_then(|spec| stages.iter().position(|x| *x == spec.stage));
    let mut order: Vec<(Option<usize>, String)> =
        by_service.iter().map(|(name, cs)| (stage_of(cs), name.clone())).collect();
    // Later stages first; unknown stages before all.
    order.sort_by(|a, b| b.0.map_or(usize::MAX, |x| x).cmp(&a.0.map_or(usize::MAX, |x| x)).then(a.1.cmp(&b.1)));
    let mut done = Removed::default();
    for (_, name) in order {
        on_service(&name);
        let cs = &by_service[&name];
        remove_all(docker, cs).await?;
        done.items += cs.len();
        done.services.push(name);
    }
    let network = format!("{project}-{environment}");
    // The proxy leaves the network (it serves no route there any more), or goes when nothing is left.
    proxy::leave(docker, &network).await?;
    proxy::sync(docker, None, registry, &|_| {}).await?;
    match docker.remove_network(&network).await {
        Ok(()) => done.network = Some(network),
        Err(e) if status(&e) == Some(404) => {}
        Err(e) => return Err(DockerError::request(&format!("remove the network {network}"), &e)),
    }
    for name in volumes_of(docker, project, environment).await? {
        if volumes {
            docker
                .remove_volume(&name, None::<RemoveVolumeOptions>)
                .await
                .map_err(|e| DockerError::request(&format!("remove the volume {name}"), &e))?;
            done.volumes_removed.push(name);
        } else {
            done.volumes_kept.push(name);
        }
    }
    Ok(done)
}
