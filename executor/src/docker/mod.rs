//! The Docker target (`std.docker { }`) and the engine connection every build uses.
//!
//! The connection: DOCKER_HOST and the usual Docker environment (bollard's defaults), the API version
//! negotiated with the engine, and errors that name the endpoint.
//!
//! The target, in modules of the same shape as [`crate::kubernetes`]: [`deploy`] (one service, retire,
//! destroy), [`container`] (what the engine is asked to create), [`live`] (what runs, from labels),
//! [`lock`] (one run per environment).
//!
//! Names: network `<project>-<env>`; containers `<project>-<env>-<service>-<n>` (n from 1), each with the
//! service name as its network alias, so other services reach it by name; a database's `volume` is the
//! named volume `<project>-<env>-<service>-data`, which survives redeploys and `destroy` (unless asked).

pub mod container;
pub mod deploy;
pub mod live;
pub mod lock;
pub mod logs;
pub mod proxy;
pub mod ssh;

use crate::registry::RegistryClient;
use crate::target::{Endpoint, Inventory, Item, Removed, Run, ServiceDeploy, Target};
use pipeline_planner::live::{LiveState, Observed};
use std::sync::Arc;
use tokio::sync::OnceCell;

pub use bollard::Docker;
use std::time::Duration;

/// The engine could not be reached or refused a request.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EngineError {
    #[error("cannot reach the Docker engine at {endpoint}: {reason}")]
    #[diagnostic(code(pipeline::docker::unreachable))]
    Unreachable {
        endpoint: String,
        reason: String,
        #[help]
        help: String,
    },
    #[error("the Docker engine at {endpoint} failed: {what}: {reason}")]
    #[diagnostic(code(pipeline::docker::request))]
    Request { endpoint: String, what: String, reason: String },
}

/// `DOCKER_HOST` as set, or the default socket.
fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

/// Where the engine is, as a message names it: `DOCKER_HOST` (without a password it may hold), or the
/// default socket.
pub fn endpoint() -> String {
    redact(&docker_host())
}

/// An address with the password of its `user:password@` part replaced by `***`.
fn redact(address: &str) -> String {
    let Some((scheme, rest)) = address.split_once("://") else { return address.to_string() };
    // A `:` before the first `@` starts a password, which runs to the last `@` (it may hold `/` or `@`).
    match (rest.split_once('@'), rest.rsplit_once('@')) {
        (Some((user, _)), Some((_, host))) if user.contains(':') => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}")
        }
        _ => address.to_string(),
    }
}

impl EngineError {
    /// The engine at `DOCKER_HOST` cannot be reached, and what to check for that kind of address.
    pub fn unreachable(reason: impl Into<String>) -> EngineError {
        let host = docker_host();
        let help = if host.starts_with("ssh://") {
            "pipeline reaches an ssh:// engine as the Docker CLI does: `ssh [-p PORT] [-l USER] HOST docker system dial-stdio` must work without a prompt (a key or an agent, a known host key, the docker client on HOST)".to_string()
        } else if std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty()) {
            "check that the engine listens there; with DOCKER_TLS_VERIFY, DOCKER_CERT_PATH (or ~/.docker) must hold the engine's CA as ca.pem and this client's cert.pem and key.pem".to_string()
        } else {
            "start the engine (`scripts/start-services` starts one), or point DOCKER_HOST at a running one".to_string()
        };
        EngineError::Unreachable { endpoint: redact(&host), reason: reason.into(), help }
    }
}

/// Connect with the Docker environment's defaults, check the engine answers, and speak its API version.
pub async fn connect() -> Result<Docker, EngineError> {
    let host = docker_host();
    // Over ssh://, what ssh itself said is the reason worth reading.
    let with_ssh = |reason: String| match ssh::opened(&host).and_then(|t| t.failure()) {
        Some(said) => EngineError::unreachable(format!("ssh failed: {said}")),
        None => EngineError::unreachable(reason),
    };
    let docker = connect_with_defaults().map_err(EngineError::unreachable)?;
    // An SSH login (with its ConnectTimeout of 30 s) comes before an ssh:// engine's first answer.
    let wait = if host.starts_with("ssh://") { 45 } else { 15 };
    let docker = tokio::time::timeout(Duration::from_secs(wait), docker.negotiate_version())
        .await
        .map_err(|_| with_ssh(format!("no answer within {wait} s")))?
        .map_err(|e| with_ssh(reason(&e)))?;
    Ok(docker)
}

/// The address this process reaches the engine at, for connections opened without bollard (BuildKit
/// sessions): `DOCKER_HOST`, except that an `ssh://` engine is reached through its local tunnel.
pub fn local_address() -> String {
    let host = docker_host();
    if host.starts_with("ssh://")
        && let Ok(tunnel) = ssh::tunnel(&host)
    {
        return format!("unix://{}", tunnel.socket().display());
    }
    host
}

/// bollard's defaults, except that an empty `DOCKER_HOST` (as CI systems often export) means the local
/// socket, as it does for the Docker CLI.
fn connect_with_defaults() -> Result<Docker, String> {
    // bollard's TLS (`DOCKER_TLS_VERIFY`) takes rustls's process-wide provider: aws-lc-rs, the one
    // provider in this build (already installed is fine).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let docker = match std::env::var("DOCKER_HOST") {
        Ok(h) if h.trim().is_empty() => Docker::connect_with_local_defaults(),
        Ok(h) if h.starts_with("ssh://") => {
            let socket = ssh::tunnel(&h)?.socket().to_string_lossy().into_owned();
            Docker::connect_with_unix(&socket, 120, bollard::API_DEFAULT_VERSION)
        }
        _ => Docker::connect_with_defaults(),
    };
    docker.map_err(|e| e.to_string())
}

/// A client for the engine that is never asked anything (no builds to run): no connection is made.
pub fn idle() -> Result<Docker, EngineError> {
    connect_with_defaults().map_err(EngineError::unreachable)
}

/// A bollard error as one line: the engine's own message when it sent one.
pub fn reason(e: &bollard::errors::Error) -> String {
    use bollard::errors::Error as E;
    match e {
        E::DockerResponseServerError { status_code, message } => format!("{message} (HTTP {status_code})"),
        E::DockerStreamError { error } => error.clone(),
        E::JsonDataError { message, .. } => format!("unexpected answer: {message}"),
        other => crate::error_chain(other),
    }
}

/// The HTTP status of an engine error, when it has one.
pub fn status(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The credentials of `~/.docker/config.json` for `host`, as the engine takes them for pushes and pulls
/// (none when there are none, or they cannot be read: the registry then answers for itself).
pub async fn credentials(
    registry: &std::sync::Arc<crate::registry::RegistryClient>,
    host: &str,
) -> Result<Option<bollard::auth::DockerCredentials>, crate::RegistryError> {
    let registry = std::sync::Arc::clone(registry);
    let host = host.to_string();
    let found = tokio::task::spawn_blocking(move || registry.credentials_for(&host))
        .await
        .map_err(|e| crate::RegistryError::Runtime { error: std::io::Error::other(e) })??;
    Ok(found.map(|c| bollard::auth::DockerCredentials {
        username: c.username,
        password: c.password,
        identitytoken: c.identity_token,
        serveraddress: Some(c.server_address),
        ..Default::default()
    }))
}

/// Drain an image-creating stream (pull or import, named by `what`): the first error it reports, if any.
pub async fn drain_create(
    what: &str,
    mut stream: impl futures_util::Stream<Item = Result<bollard::models::CreateImageInfo, bollard::errors::Error>> + Unpin,
) -> Result<(), EngineError> {
    use futures_util::StreamExt as _;
    while let Some(item) = stream.next().await {
        let failed = match item {
            Ok(info) => info.error_detail.and_then(|d| d.message),
            Err(e) => Some(reason(&e)),
        };
        if let Some(why) = failed {
            return Err(EngineError::request(what, why));
        }
    }
    Ok(())
}

impl EngineError {
    /// A request the engine at DOCKER_HOST refused or failed.
    pub fn request(what: impl Into<String>, reason: impl Into<String>) -> EngineError {
        EngineError::Request { endpoint: endpoint(), what: what.into(), reason: reason.into() }
    }

    /// Why, in the engine's words.
    pub fn reason(&self) -> &str {
        match self {
            EngineError::Unreachable { reason, .. } | EngineError::Request { reason, .. } => reason,
        }
    }
}

/// The labels pipeline puts on what it makes on an engine.
pub mod labels {
    pub const PROJECT: &str = "pipeline.project";
    pub const ENVIRONMENT: &str = "pipeline.environment";
    pub const SERVICE: &str = "pipeline.service";
    /// The build key of the image, when built.
    pub const KEY: &str = "pipeline.key";
    /// The deployed spec as the plan shows it: secrets only as name and fingerprint.
    pub const SPEC: &str = "pipeline.spec";
    pub const SPEC_HASH: &str = "pipeline.spec-hash";
    pub const REPLICA: &str = "pipeline.replica";
    pub const LOCK_HOLDER: &str = "pipeline.lock.holder";
    pub const LOCK_SINCE: &str = "pipeline.lock.since";
}

/// What went wrong on the Docker target.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DockerError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Engine(#[from] EngineError),

    #[error("cannot {what}: {reason}")]
    #[diagnostic(
        code(pipeline::docker::request),
        help("check that the Docker engine runs and answers (`docker info`)")
    )]
    Request { what: String, reason: String },

    #[error("the image {image} is not on this engine and cannot be pulled from {host}: {reason}")]
    #[diagnostic(
        code(pipeline::docker::image),
        help("check the image's name and tag; for a registry that needs a login, run `docker login {host}`")
    )]
    Image { image: String, host: String, reason: String },

    #[error("{what} already exists and belongs to {owner}, not to {wanted}")]
    #[diagnostic(
        code(pipeline::docker::foreign),
        help("remove it if it is not needed, or deploy under another project or environment name")
    )]
    Foreign { what: String, owner: String, wanted: String },

    #[error("service `{service}`: {message}")]
    #[diagnostic(code(pipeline::docker::spec))]
    Spec { service: String, message: String },

    #[error("{message}")]
    #[diagnostic(code(pipeline::docker::not_ready), help("its whole output: `docker logs {container}`"))]
    NotReady { container: String, message: String },

    /// The new containers did not come up; they were removed and the old ones keep serving.
    #[error("{0}; the previous version keeps serving")]
    #[diagnostic(code(pipeline::docker::kept_previous), help("{}", crate::target::kept_previous_help(.0.as_ref())))]
    KeptPrevious(Box<DockerError>),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Lock(#[from] lock::LockError),

    #[error("the proxy (container {name}) failed: {reason}", name = proxy::NAME)]
    #[diagnostic(
        code(pipeline::docker::proxy),
        help("its log: `docker logs {name}`; the proxy's image must be Caddy 2 (`std.docker {{ proxy.image = ...; }}`)", name = proxy::NAME)
    )]
    Proxy { reason: String },

    #[error("the proxy cannot publish ports {http} and {https} on this engine: {reason}")]
    #[diagnostic(
        code(pipeline::docker::proxy_ports),
        help(
            "something else listens there: stop it, or choose other ports with `std.docker {{ proxy = {{ http = 8080; https = 8443; }}; }}`"
        )
    )]
    ProxyPorts { http: u16, https: u16, reason: String },

    #[error("{address} is already a public endpoint of {owner}")]
    #[diagnostic(
        code(pipeline::docker::endpoint_taken),
        help(
            "one proxy serves every environment on this engine: give this environment's endpoints other hosts (e.g. `staging.shop.localhost`), or destroy the other one"
        )
    )]
    EndpointTaken { address: String, owner: String },
}

impl DockerError {
    pub(crate) fn request(what: &str, e: &bollard::errors::Error) -> DockerError {
        DockerError::Request { what: what.to_string(), reason: reason(e) }
    }

    pub(crate) fn spec(service: &str, message: impl Into<String>) -> DockerError {
        DockerError::Spec { service: service.to_string(), message: message.into() }
    }

    pub(crate) fn not_ready(container: &str, message: String) -> DockerError {
        DockerError::NotReady { container: container.to_string(), message }
    }
}

/// One environment on a Docker engine.
pub struct DockerTarget {
    pub docker: Docker,
    pub project: String,
    pub environment: String,
    /// For pulls of images the engine lacks (credentials of `~/.docker/config.json`).
    pub registry: Arc<RegistryClient>,
    /// The engine's reverse proxy, for public endpoints.
    pub proxy: pipeline_planner::model::Proxy,
    network: OnceCell<()>,
}

impl DockerTarget {
    pub fn new(docker: Docker, project: &str, environment: &str, registry: Arc<RegistryClient>) -> DockerTarget {
        DockerTarget {
            docker,
            project: project.into(),
            environment: environment.into(),
            registry,
            proxy: Default::default(),
            network: OnceCell::new(),
        }
    }

    /// The same target, with the reverse proxy made as `proxy` says.
    pub fn with_proxy(self, proxy: pipeline_planner::model::Proxy) -> DockerTarget {
        DockerTarget { proxy, ..self }
    }

    /// Connect to the engine of DOCKER_HOST (or the local socket).
    pub async fn connect(
        project: &str,
        environment: &str,
        registry: Arc<RegistryClient>,
    ) -> Result<DockerTarget, DockerError> {
        Ok(DockerTarget::new(connect().await?, project, environment, registry))
    }

    /// `<project>-<env>`: the network, and the prefix of every container and volume.
    pub fn network_name(&self) -> String {
        format!("{}-{}", self.project, self.environment)
    }
}

impl Target for DockerTarget {
    type Error = DockerError;
    type Lock = lock::Lock;

    fn describe(&self) -> String {
        format!("Docker engine at {}", endpoint())
    }

    fn engine(&self) -> Option<Docker> {
        Some(self.docker.clone())
    }

    async fn lock(&self, holder: &str) -> Result<lock::Lock, DockerError> {
        Ok(lock::Lock::acquire(&self.docker, &self.project, &self.environment, holder).await?)
    }

    async fn observe(&self) -> Result<Box<dyn LiveState + Send + Sync>, DockerError> {
        let services = live::observe(&self.docker, &self.project, &self.environment).await?;
        // Claims only say who is building: a failure to list them changes no decision.
        let building = crate::claim::list(&self.docker)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|(k, h)| (k, h.to_string()))
            .collect();
        Ok(Box::new(Observed { services, building }))
    }

    async fn deploy(&self, service: &ServiceDeploy, run: &Run) -> Result<(), DockerError> {
        self.deploy_service(service, run).await
    }

    async fn retire(&self, service: &ServiceDeploy, run: &Run) -> Result<(), DockerError> {
        self.retire_service(service, run).await
    }

    async fn inventory(&self) -> Result<Inventory, DockerError> {
        let containers = live::containers_of(&self.docker, &self.project, &self.environment, None).await?;
        let volumes = live::volumes_of(&self.docker, &self.project, &self.environment).await?;
        let items =
            containers.into_iter().map(|c| Item { name: c.name, service: c.service, state: Some(c.status) }).collect();
        Ok(Inventory { place: None, unit: "container", items, volumes })
    }

    async fn destroy(
        &self,
        stages: &[String],
        volumes: bool,
        on: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Removed, DockerError> {
        deploy::destroy(&self.docker, &self.registry, &self.project, &self.environment, stages, volumes, on).await
    }

    async fn status(&self) -> Result<Vec<crate::target::ServiceStatus>, DockerError> {
        live::status(&self.docker, &self.project, &self.environment).await
    }

    async fn logs(
        &self,
        services: &[String],
        options: &crate::logs::LogOptions,
    ) -> Result<crate::logs::LogStream, DockerError> {
        logs::logs(&self.docker, &self.project, &self.environment, services, options).await
    }

    fn kept_previous(e: &DockerError) -> bool {
        matches!(e, DockerError::KeptPrevious(_))
    }

    async fn endpoints(&self) -> Result<Vec<Endpoint>, DockerError> {
        let containers = live::containers_of(&self.docker, &self.project, &self.environment, None).await?;
        Ok(containers.into_iter().map(|c| Endpoint { service: c.service, name: c.name, ports: c.ports }).collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_are_shown_without_their_password() {
        for (address, shown) in [
            ("unix:///var/run/docker.sock", "unix:///var/run/docker.sock"),
            ("tcp://10.0.0.1:2376", "tcp://10.0.0.1:2376"),
            ("ssh://me@box:22", "ssh://me@box:22"),
            ("ssh://me:hunter2@box:22/run/docker.sock", "ssh://me:***@box:22/run/docker.sock"),
            ("tcp://a:b:c@box", "tcp://a:***@box"),
            ("ssh://me:pa/ss@box", "ssh://me:***@box"),
            ("ssh://box/run/docker@1.sock", "ssh://box/run/docker@1.sock"),
            ("ssh://me:p@ss@box", "ssh://me:***@box"),
            ("ssh://me@box:22/run/a@b.sock", "ssh://me@box:22/run/a@b.sock"),
        ] {
            assert_eq!(super::redact(address), shown);
        }
    }
}
