//! The Docker engine connection: DOCKER_HOST and the usual Docker environment (bollard's defaults), the API
//! version negotiated with the engine, and errors that name the endpoint.

pub use bollard::Docker;
use std::time::Duration;

/// The engine could not be reached or refused a request.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EngineError {
    #[error("cannot reach the Docker engine at {endpoint}: {reason}")]
    #[diagnostic(
        code(pipeline::docker::unreachable),
        help("start the engine (`scripts/start-services` starts one), or point DOCKER_HOST at a running one")
    )]
    Unreachable { endpoint: String, reason: String },
    #[error("the Docker engine at {endpoint} failed: {what}: {reason}")]
    #[diagnostic(code(pipeline::docker::request))]
    Request { endpoint: String, what: String, reason: String },
}

/// Where the engine is, as a message names it: `DOCKER_HOST`, or the default socket.
pub fn endpoint() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

/// Connect with the Docker environment's defaults, check the engine answers, and speak its API version.
pub async fn connect() -> Result<Docker, EngineError> {
    let endpoint = endpoint();
    let unreachable = |reason: String| EngineError::Unreachable { endpoint: endpoint.clone(), reason };
    let docker = connect_with_defaults().map_err(|e| unreachable(e.to_string()))?;
    let docker = tokio::time::timeout(Duration::from_secs(15), docker.negotiate_version())
        .await
        .map_err(|_| unreachable("no answer within 15 s".into()))?
        .map_err(|e| unreachable(reason(&e)))?;
    Ok(docker)
}

/// bollard's defaults, except that an empty `DOCKER_HOST` (as CI systems often export) means the local
/// socket, as it does for the Docker CLI.
fn connect_with_defaults() -> Result<Docker, bollard::errors::Error> {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h.trim().is_empty() => Docker::connect_with_local_defaults(),
        _ => Docker::connect_with_defaults(),
    }
}

/// A client for the engine that is never asked anything (no builds to run): no connection is made.
pub fn idle() -> Result<Docker, EngineError> {
    connect_with_defaults().map_err(|e| EngineError::Unreachable { endpoint: endpoint(), reason: e.to_string() })
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
) -> Result<Option<bollard::auth::DockerCredentials>, String> {
    let registry = std::sync::Arc::clone(registry);
    let host = host.to_string();
    let found = tokio::task::spawn_blocking(move || registry.credentials_for(&host))
        .await
        .map_err(|e| format!("reading credentials stopped: {e}"))?
        .map_err(|e| e.to_string())?;
    Ok(found.map(|c| bollard::auth::DockerCredentials {
        username: c.username,
        password: c.password,
        identitytoken: c.identity_token,
        serveraddress: Some(c.server_address),
        ..Default::default()
    }))
}

/// Drain an image-creating stream (pull or import): the first error it reports, if any.
pub async fn drain_create(
    mut stream: impl futures_util::Stream<Item = Result<bollard::models::CreateImageInfo, bollard::errors::Error>> + Unpin,
) -> Result<(), String> {
    use futures_util::StreamExt as _;
    while let Some(item) = stream.next().await {
        let failed = match item {
            Ok(info) => info.error_detail.and_then(|d| d.message),
            Err(e) => Some(reason(&e)),
        };
        if let Some(why) = failed {
            return Err(why);
        }
    }
    Ok(())
}
