//! Builds through the engine's BuildKit: `POST /build` with `version=2`, and a session over `POST /session`
//! that answers what BuildKit asks the client while it builds: registry credentials (for `FROM` images on
//! a registry that needs a password) and build secrets (`RUN --mount=type=secret`), from memory.
//!
//! bollard's own BuildKit session offers credentials only and no secrets, so the session is served here
//! with the generated BuildKit services of `bollard-buildkit-proto` over the engine's upgraded HTTP
//! connection, the way the Docker CLI does (`docker/cli` `command/image/build_session.go`). The status
//! BuildKit streams back (`moby.buildkit.trace`) is decoded into [`Step`] events.

use bollard_buildkit_proto::health::health_check_response::ServingStatus;
use bollard_buildkit_proto::health::health_server::{Health, HealthServer};
use bollard_buildkit_proto::health::{HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::secrets_server::{Secrets, SecretsServer};
use bollard_buildkit_proto::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use bollard_buildkit_proto::moby::buildkit::v1::StatusResponse;
use bollard_buildkit_proto::moby::filesync::v1::auth_server::{Auth, AuthServer};
use bollard_buildkit_proto::moby::filesync::v1::{
    CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse, GetTokenAuthorityRequest,
    GetTokenAuthorityResponse, VerifyTokenAuthorityRequest, VerifyTokenAuthorityResponse,
};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::{Request, Response, Status};

/// Registry credentials BuildKit may ask for, by registry host.
#[derive(Clone, Default)]
pub struct Credentials {
    pub by_host: HashMap<String, (String, String)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_host.keys()).finish()
    }
}

/// Where the engine listens, for the connections this module opens itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(String),
    Tcp(String),
    /// `tcp://` with `DOCKER_TLS_VERIFY`: TLS, the engine checked against `ca.pem` and this client known
    /// by `cert.pem` and `key.pem`, all in `certs` (`DOCKER_CERT_PATH`, or `~/.docker`), as the Docker CLI does.
    Tls {
        addr: String,
        certs: PathBuf,
    },
}

/// A BuildKit session or build the engine could not open or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
#[error("{0}")]
#[diagnostic(
    code(pipeline::build::buildkit),
    help("check the engine (`docker info`); `DOCKER_BUILDKIT=0` builds with the classic builder instead")
)]
pub struct BuildKitError(pub String);

impl From<String> for BuildKitError {
    fn from(message: String) -> BuildKitError {
        BuildKitError(message)
    }
}

/// The engine's address from `DOCKER_HOST` (default `unix:///var/run/docker.sock`), with TLS when
/// `tls_certs` is given (`DOCKER_TLS_VERIFY`), or why a BuildKit session cannot be opened to it (then
/// the classic builder is used).
pub fn endpoint_from(docker_host: Option<&str>, tls_certs: Option<&Path>) -> Result<Endpoint, BuildKitError> {
    let host = docker_host.filter(|h| !h.is_empty()).unwrap_or("unix:///var/run/docker.sock");
    if let Some(path) = host.strip_prefix("unix://") {
        return Ok(Endpoint::Unix(path.to_string()));
    }
    if let Some(addr) = host.strip_prefix("tcp://").or_else(|| host.strip_prefix("http://")) {
        let addr = addr.trim_end_matches('/').to_string();
        return Ok(match tls_certs {
            Some(certs) => Endpoint::Tls { addr, certs: certs.to_path_buf() },
            None => Endpoint::Tcp(addr),
        });
    }
    Err(BuildKitError(format!("DOCKER_HOST {host}: BuildKit sessions need a unix:// or tcp:// engine address")))
}

/// Where the Docker CLI looks for the TLS files: `DOCKER_CERT_PATH`, or `~/.docker`.
pub fn cert_path() -> PathBuf {
    match std::env::var_os("DOCKER_CERT_PATH").filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default().join(".docker"),
    }
}

/// The TLS client of `certs`: the engine's CA, and this client's certificate and key.
fn tls_config(certs: &Path) -> Result<rustls::ClientConfig, String> {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let pem_certs = |name: &str| {
        let path = certs.join(name);
        CertificateDer::pem_file_iter(&path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read the certificates in {}: {e}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for ca in pem_certs("ca.pem")? {
        roots.add(ca).map_err(|e| format!("{}: {e}", certs.join("ca.pem").display()))?;
    }
    let chain = pem_certs("cert.pem")?;
    let key_path = certs.join("key.pem");
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| format!("cannot read the private key {}: {e}", key_path.display()))?;
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("the client certificate in {} does not go with its key: {e}", certs.display()))
}

/// An engine connection: a Unix socket or a TCP stream.
enum Stream {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

async fn connect(endpoint: &Endpoint) -> Result<Stream, String> {
    match endpoint {
        Endpoint::Unix(path) => tokio::net::UnixStream::connect(path)
            .await
            .map(Stream::Unix)
            .map_err(|e| format!("cannot connect to the engine at unix://{path}: {e}")),
        Endpoint::Tcp(addr) => tokio::net::TcpStream::connect(addr)
            .await
            .map(Stream::Tcp)
            .map_err(|e| format!("cannot connect to the engine at tcp://{addr}: {e}")),
        Endpoint::Tls { addr, certs } => {
            let config = tls_config(certs)?;
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| format!("cannot connect to the engine at tcp://{addr}: {e}"))?;
            // The name the engine's certificate must carry: the address without its port.
            let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
            let name = rustls_pki_types::ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
                .map_err(|e| format!("tcp://{addr}: {e}"))?
                .to_owned();
            tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
                .connect(name, tcp)
                .await
                .map(|tls| Stream::Tls(Box::new(tls)))
                .map_err(|e| format!("TLS with the engine at tcp://{addr} failed: {e}"))
        }
    }
}

/// Send one request on a new connection; the connection lives as long as its response (and upgrade).
async fn send(
    endpoint: &Endpoint,
    request: http::Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String> {
    let io = TokioIo::new(connect(endpoint).await?);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("engine connection failed: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    sender.send_request(request).await.map_err(|e| format!("the engine did not answer: {e}"))
}

/// What the session gives BuildKit.
struct Answers {
    credentials: Credentials,
    secrets: BTreeMap<String, pipeline_planner::secrets::SecretValue>,
}

struct AuthService(std::sync::Arc<Answers>);
struct SecretService(std::sync::Arc<Answers>);
struct HealthService;

#[tonic::async_trait]
impl Auth for AuthService {
    async fn credentials(&self, request: Request<CredentialsRequest>) -> Result<Response<CredentialsResponse>, Status> {
        let host = &request.get_ref().host;
        // Docker Hub is asked for under its index's name.
        let host = if host == "registry-1.docker.io" || host == "index.docker.io" { "docker.io" } else { host };
        let (username, secret) = self.0.credentials.by_host.get(host).cloned().unwrap_or_default();
        Ok(Response::new(CredentialsResponse { username, secret }))
    }

    // Unimplemented: BuildKit then fetches registry tokens itself with the credentials above.
    async fn fetch_token(&self, _: Request<FetchTokenRequest>) -> Result<Response<FetchTokenResponse>, Status> {
        Err(Status::unimplemented("the daemon fetches tokens with the session's credentials"))
    }

    async fn get_token_authority(
        &self,
        _: Request<GetTokenAuthorityRequest>,
    ) -> Result<Response<GetTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no token authority"))
    }

    async fn verify_token_authority(
        &self,
        _: Request<VerifyTokenAuthorityRequest>,
    ) -> Result<Response<VerifyTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("no token authority"))
    }
}

#[tonic::async_trait]
impl Secrets for SecretService {
    async fn get_secret(&self, request: Request<GetSecretRequest>) -> Result<Response<GetSecretResponse>, Status> {
        let id = &request.get_ref().id;
        match self.0.secrets.get(id) {
            Some(v) => Ok(Response::new(GetSecretResponse { data: v.expose().as_bytes().to_vec() })),
            // NotFound is what BuildKit expects for a secret that is not given (`required=false` mounts).
            None => Err(Status::not_found(format!("secret {id} not found"))),
        }
    }
}

#[tonic::async_trait]
impl Health for HealthService {
    async fn check(&self, _: Request<HealthCheckRequest>) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse { status: ServingStatus::Serving as i32 }))
    }

    async fn list(&self, _: Request<HealthListRequest>) -> Result<Response<HealthListResponse>, Status> {
        Err(Status::unimplemented("list"))
    }

    type WatchStream = Pin<Box<dyn futures_util::Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

    async fn watch(&self, _: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("watch"))
    }
}

/// The upgraded session connection, as tonic's server takes it.
struct SessionIo(TokioIo<hyper::upgrade::Upgraded>);

impl tonic::transport::server::Connected for SessionIo {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for SessionIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SessionIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

/// An open session; closed when dropped.
pub struct Session {
    pub id: String,
    serving: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

/// The gRPC methods the session serves, as BuildKit checks for them.
const METHODS: [&str; 6] = [
    "/grpc.health.v1.Health/Check",
    "/moby.filesync.v1.Auth/Credentials",
    "/moby.filesync.v1.Auth/FetchToken",
    "/moby.filesync.v1.Auth/GetTokenAuthority",
    "/moby.filesync.v1.Auth/VerifyTokenAuthority",
    "/moby.buildkit.secrets.v1.Secrets/GetSecret",
];

/// Open a session with the engine that answers with `credentials` and `secrets`.
pub async fn open_session(
    endpoint: &Endpoint,
    api_version: &str,
    name: &str,
    credentials: Credentials,
    secrets: BTreeMap<String, pipeline_planner::secrets::SecretValue>,
) -> Result<Session, BuildKitError> {
    let id = new_id();
    let mut request = http::Request::post(format!("http://docker/v{api_version}/session"))
        .header(http::header::HOST, "docker")
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "h2c")
        .header("X-Docker-Expose-Session-Uuid", &id)
        .header("X-Docker-Expose-Session-Name", name)
        .header("X-Docker-Expose-Session-Sharedkey", "");
    for m in METHODS {
        request = request.header("X-Docker-Expose-Session-Grpc-Method", m);
    }
    let request = request.body(Full::new(Bytes::new())).map_err(|e| format!("cannot make the session request: {e}"))?;
    let response = send(endpoint, request).await?;
    if response.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status();
        let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        return Err(BuildKitError(format!(
            "the engine refused a BuildKit session ({status}): {}",
            String::from_utf8_lossy(&body).trim()
        )));
    }
    let upgraded = hyper::upgrade::on(response).await.map_err(|e| format!("the BuildKit session did not open: {e}"))?;
    let answers = std::sync::Arc::new(Answers { credentials, secrets });
    let router = tonic::transport::Server::builder()
        .add_service(HealthServer::new(HealthService))
        .add_service(AuthServer::new(AuthService(std::sync::Arc::clone(&answers))))
        .add_service(SecretsServer::new(SecretService(answers)));
    let io = SessionIo(TokioIo::new(upgraded));
    let serving = tokio::spawn(async move {
        let _ = router.serve_with_incoming(futures_util::stream::iter([Ok::<_, std::io::Error>(io)])).await;
    });
    Ok(Session { id, serving })
}

/// A unique session id: the time, the process and a counter, through blake3.
fn new_id() -> String {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed = format!("{}.{} {} {n}", now.as_secs(), now.subsec_nanos(), std::process::id());
    blake3::hash(seed.as_bytes()).to_hex()[..32].to_string()
}

/// What the build request asks for.
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    pub tag: String,
    pub dockerfile: String,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// Images whose layers may be reused (their inline cache metadata).
    pub cache_from: Vec<String>,
    pub session: String,
}

/// One thing BuildKit reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A step (vertex) was seen, started, found cached, finished or failed.
    Step(Step),
    /// A line of a step's output.
    Output { step: String, line: String },
    /// The image built (its id).
    Built(String),
    /// The build failed with this message.
    Failed(String),
    /// A classic-builder text line (`stream`).
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Step {
    /// The vertex digest.
    pub id: String,
    pub name: String,
    pub cached: bool,
    pub started: bool,
    pub completed: bool,
    /// Seconds from start to completion, when both are known.
    pub seconds: Option<f64>,
    pub error: Option<String>,
}

/// Start a BuildKit build; its events arrive on the returned stream.
pub async fn build(
    endpoint: &Endpoint,
    api_version: &str,
    request: &BuildRequest,
    context: Vec<u8>,
) -> Result<impl futures_util::Stream<Item = Result<Vec<Event>, BuildKitError>> + use<>, BuildKitError> {
    let query = build_query(request)?;
    let http_request = http::Request::post(format!("http://docker/v{api_version}/build?{query}"))
        .header(http::header::HOST, "docker")
        .header(http::header::CONTENT_TYPE, "application/x-tar")
        .body(Full::new(Bytes::from(context)))
        .map_err(|e| format!("cannot make the build request: {e}"))?;
    let response = send(endpoint, http_request).await?;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        return Err(BuildKitError(format!("the engine refused the build ({status}): {}", engine_message(&body))));
    }
    let mut body = response.into_body();
    let mut pending: Vec<u8> = Vec::new();
    Ok(async_stream(move |tx| async move {
        loop {
            match body.frame().await {
                None => {
                    if !pending.is_empty() {
                        let _ = tx.send(Ok(decode_lines(&mut pending, true))).await;
                    }
                    return;
                }
                Some(Err(e)) => {
                    let _ = tx.send(Err(BuildKitError(format!("the build stream broke: {e}")))).await;
                    return;
                }
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        pending.extend_from_slice(data);
                        let events = decode_lines(&mut pending, false);
                        if !events.is_empty() && tx.send(Ok(events)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }))
}

/// A stream fed by a task through a channel.
fn async_stream<T: Send + 'static, F, Fut>(f: F) -> impl futures_util::Stream<Item = T>
where
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let task = tokio::spawn(f(tx));
    futures_util::stream::unfold((rx, AbortOnDrop(task)), |(mut rx, task)| async move {
        rx.recv().await.map(|item| (item, (rx, task)))
    })
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn build_query(r: &BuildRequest) -> Result<String, String> {
    let mut q: Vec<(&str, String)> = vec![
        ("version", "2".into()),
        ("session", r.session.clone()),
        ("t", r.tag.clone()),
        ("dockerfile", r.dockerfile.clone()),
        ("rm", "1".into()),
        ("forcerm", "1".into()),
        ("buildargs", json(&r.args)?),
        ("labels", json(&r.labels)?),
    ];
    if !r.cache_from.is_empty() {
        q.push(("cachefrom", json(&r.cache_from)?));
    }
    if let Some(t) = &r.target {
        q.push(("target", t.clone()));
    }
    if let Some(p) = &r.platform {
        q.push(("platform", p.clone()));
    }
    Ok(q.into_iter().map(|(k, v)| format!("{k}={}", percent(&v))).collect::<Vec<_>>().join("&"))
}

fn json(v: &impl serde::Serialize) -> Result<String, String> {
    serde_json::to_string(v).map_err(|e| e.to_string())
}

/// Percent-encode a query value (RFC 3986 unreserved characters stay).
fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `message` of an engine error body, else the body.
fn engine_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
}

/// Decode the complete JSON lines of `pending` (all of it at the end), leaving a partial line.
fn decode_lines(pending: &mut Vec<u8>, end: bool) -> Vec<Event> {
    let mut events = Vec::new();
    let cut = if end { pending.len() } else { pending.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) };
    let complete: Vec<u8> = pending.drain(..cut).collect();
    for line in complete.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(v) => events.extend(decode_message(&v)),
            Err(_) => events.push(Event::Text(String::from_utf8_lossy(line).into_owned())),
        }
    }
    events
}

/// One message of the `/build` stream.
pub fn decode_message(v: &serde_json::Value) -> Vec<Event> {
    use base64::Engine as _;
    let mut out = Vec::new();
    if let Some(e) = v.get("errorDetail").and_then(|d| d.get("message")).and_then(|m| m.as_str()) {
        out.push(Event::Failed(e.to_string()));
        return out;
    }
    if let Some(e) = v.get("error").and_then(|m| m.as_str()) {
        out.push(Event::Failed(e.to_string()));
        return out;
    }
    match v.get("id").and_then(|i| i.as_str()) {
        Some("moby.buildkit.trace") => {
            let Some(aux) = v.get("aux").and_then(|a| a.as_str()) else { return out };
            let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(aux) else { return out };
            let Ok(status) = <StatusResponse as prost::Message>::decode(bytes.as_slice()) else { return out };
            out.extend(status_events(&status));
        }
        Some("moby.image.id") => {
            if let Some(id) = v.get("aux").and_then(|a| a.get("ID")).and_then(|i| i.as_str()) {
                out.push(Event::Built(id.to_string()));
            }
        }
        _ => {
            if let Some(s) = v.get("stream").and_then(|s| s.as_str()) {
                out.push(Event::Text(s.to_string()));
            }
        }
    }
    out
}

/// The events of one BuildKit status message.
pub fn status_events(status: &StatusResponse) -> Vec<Event> {
    let mut out = Vec::new();
    for v in &status.vertexes {
        let seconds = match (&v.started, &v.completed) {
            (Some(s), Some(c)) => {
                Some((c.seconds - s.seconds) as f64 + f64::from(c.nanos - s.nanos) / 1e9).filter(|s| *s >= 0.0)
            }
            _ => None,
        };
        out.push(Event::Step(Step {
            id: v.digest.clone(),
            name: v.name.clone(),
            cached: v.cached,
            started: v.started.is_some(),
            completed: v.completed.is_some(),
            seconds,
            error: (!v.error.is_empty()).then(|| v.error.clone()),
        }));
    }
    for l in &status.logs {
        let text = String::from_utf8_lossy(&l.msg);
        for line in text.split(['\n', '\r']).filter(|l| !l.trim().is_empty()) {
            out.push(Event::Output { step: l.vertex.clone(), line: line.to_string() });
        }
    }
    out
}

/// Whether the engine builds with BuildKit here, and why not when it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuilderKind {
    BuildKit { endpoint: Endpoint, api_version: String, engine: String },
    Classic { reason: String },
}

impl BuilderKind {
    /// One line for the plan: which builder builds.
    pub fn describe(&self) -> String {
        match self {
            BuilderKind::BuildKit { engine, .. } => format!("builds use BuildKit (Docker Engine {engine})"),
            BuilderKind::Classic { reason } => {
                format!(
                    "builds use the engine's classic builder ({reason}); `RUN --mount` and `COPY --chmod` need BuildKit"
                )
            }
        }
    }
}

/// Find out whether the engine builds with BuildKit: a Linux engine with API 1.39 (Docker 18.09) or
/// newer, reachable on a Unix socket or plain TCP, unless `DOCKER_BUILDKIT=0`.
pub async fn detect(docker: &bollard::Docker) -> BuilderKind {
    if std::env::var("DOCKER_BUILDKIT").is_ok_and(|v| v == "0" || v.eq_ignore_ascii_case("false")) {
        return BuilderKind::Classic { reason: "DOCKER_BUILDKIT=0".into() };
    }
    let version = match docker.version().await {
        Ok(v) => v,
        Err(e) => return BuilderKind::Classic { reason: format!("the engine's version is unknown: {e}") },
    };
    let engine = version.version.clone().unwrap_or_else(|| "unknown".into());
    let api = version.api_version.clone().unwrap_or_default();
    let os = version.os.clone().unwrap_or_default();
    if !os.eq_ignore_ascii_case("linux") {
        return BuilderKind::Classic { reason: format!("the engine runs on {os}, where it has no BuildKit") };
    }
    let (major, minor) = api.split_once('.').map_or((0, 0), |(a, b)| (a.parse().unwrap_or(0), b.parse().unwrap_or(0)));
    if (major, minor) < (1u32, 39u32) {
        return BuilderKind::Classic { reason: format!("Docker Engine {engine} (API {api}) predates BuildKit") };
    }
    let tls = std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty()).then(cert_path);
    match endpoint_from(Some(&crate::docker::local_address()), tls.as_deref()) {
        Ok(endpoint) => {
            // Speak the version the client negotiated (no newer than the engine's).
            let api_version = docker.client_version().to_string();
            BuilderKind::BuildKit { endpoint, api_version, engine }
        }
        Err(reason) => BuilderKind::Classic { reason: reason.to_string() },
    }
}

/// What a build's BuildKit events add up to: its steps, for the log, the progress line and the failure
/// message (kept apart from I/O, so it is tested with recorded events).
#[derive(Debug, Default)]
pub struct Progress {
    /// Steps in the order first seen.
    pub steps: Vec<Step>,
    index: HashMap<String, usize>,
    /// The last lines of each step's output.
    tails: HashMap<String, std::collections::VecDeque<String>>,
}

impl Progress {
    /// Take in an event; the lines for the log it gives.
    pub fn take(&mut self, event: &Event) -> Vec<String> {
        match event {
            Event::Step(s) => {
                let n = match self.index.get(&s.id) {
                    Some(&n) => n,
                    None => {
                        self.steps.push(Step { id: s.id.clone(), name: s.name.clone(), ..Default::default() });
                        self.index.insert(s.id.clone(), self.steps.len() - 1);
                        self.steps.len() - 1
                    }
                };
                let before = self.steps[n].clone();
                let now = &mut self.steps[n];
                let mut lines = Vec::new();
                let tag = format!("#{}", n + 1);
                if s.started && !before.started {
                    now.started = true;
                    lines.push(format!("{tag} {}", s.name));
                }
                if s.cached && !before.cached {
                    now.cached = true;
                    if !before.started && !s.started {
                        lines.push(format!("{tag} {}", s.name));
                    }
                    lines.push(format!("{tag} CACHED"));
                }
                if let Some(e) = &s.error
                    && before.error.is_none()
                {
                    now.error = Some(e.clone());
                    lines.push(format!("{tag} ERROR: {e}"));
                } else if s.completed && !before.completed {
                    now.completed = true;
                    now.seconds = s.seconds;
                    if !now.cached {
                        lines.push(match s.seconds {
                            Some(t) => format!("{tag} DONE {t:.1}s"),
                            None => format!("{tag} DONE"),
                        });
                    }
                }
                if s.completed {
                    now.completed = true;
                }
                lines
            }
            Event::Output { step, line } => {
                let tail = self.tails.entry(step.clone()).or_default();
                if tail.len() == 12 {
                    tail.pop_front();
                }
                tail.push_back(line.clone());
                let n = self.index.get(step).map_or(0, |n| n + 1);
                vec![format!("#{n} {line}")]
            }
            Event::Text(t) => t.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect(),
            Event::Built(id) => vec![format!("built {id}")],
            Event::Failed(e) => vec![format!("ERROR: {e}")],
        }
    }

    /// Dockerfile steps (`[stage n/m] …`, not `[internal] …`): done (or cached) and seen.
    pub fn counts(&self) -> (usize, usize, usize) {
        let steps: Vec<&Step> = self.steps.iter().filter(|s| is_dockerfile_step(&s.name)).collect();
        let done = steps.iter().filter(|s| s.completed || s.cached).count();
        let cached = steps.iter().filter(|s| s.cached).count();
        (done, steps.len(), cached)
    }

    /// The progress line: `step 3/7 (2 cached): RUN make`.
    pub fn line(&self) -> Option<String> {
        let (done, total, cached) = self.counts();
        if total == 0 {
            return None;
        }
        let running = self
            .steps
            .iter()
            .rev()
            .find(|s| s.started && !s.completed && is_dockerfile_step(&s.name))
            .map(|s| step_command(&s.name).to_string());
        let cached = if cached > 0 { format!(" ({cached} cached)") } else { String::new() };
        Some(match running {
            Some(r) => format!("step {}/{total}{cached}: {r}", (done + 1).min(total)),
            None => format!("step {done}/{total}{cached}"),
        })
    }

    /// The step that failed, and the last lines of its output.
    pub fn failed_step(&self) -> Option<(&Step, Vec<String>)> {
        let s = self.steps.iter().find(|s| s.error.is_some())?;
        let tail = self.tails.get(&s.id).map(|t| t.iter().cloned().collect()).unwrap_or_default();
        Some((s, tail))
    }
}

fn is_dockerfile_step(name: &str) -> bool {
    name.starts_with('[') && !name.starts_with("[internal]") && !name.starts_with("[auth]")
}

/// `RUN make` of `[build 3/5] RUN make`.
pub fn step_command(name: &str) -> &str {
    match name.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((_, cmd)) => cmd,
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(endpoint_from(None, None), Ok(Endpoint::Unix("/var/run/docker.sock".into())));
        assert_eq!(endpoint_from(Some("unix:///tmp/d.sock"), None), Ok(Endpoint::Unix("/tmp/d.sock".into())));
        assert_eq!(endpoint_from(Some("tcp://10.0.0.1:2375"), None), Ok(Endpoint::Tcp("10.0.0.1:2375".into())));
        assert_eq!(
            endpoint_from(Some("tcp://10.0.0.1:2376/"), Some(Path::new("/certs"))),
            Ok(Endpoint::Tls { addr: "10.0.0.1:2376".into(), certs: "/certs".into() })
        );
        assert!(endpoint_from(Some("ssh://me@host"), None).unwrap_err().0.contains("unix://"));
    }

    #[test]
    fn query_is_encoded() {
        let r = BuildRequest {
            tag: "127.0.0.1:5000/shop/api:k".into(),
            dockerfile: "Dockerfile".into(),
            args: [("A".to_string(), "x y&z".to_string())].into(),
            cache_from: vec!["r/x:1".into()],
            session: "s1".into(),
            ..Default::default()
        };
        let q = build_query(&r).unwrap();
        assert!(q.contains("version=2&session=s1&t=127.0.0.1%3A5000%2Fshop%2Fapi%3Ak"), "{q}");
        assert!(q.contains("buildargs=%7B%22A%22%3A%22x%20y%26z%22%7D"), "{q}");
        assert!(q.contains("cachefrom=%5B%22r%2Fx%3A1%22%5D"), "{q}");
        assert!(!q.contains("target="));
    }

    fn step(id: &str, name: &str) -> Step {
        Step { id: id.into(), name: name.into(), ..Default::default() }
    }

    #[test]
    fn progress_from_events() {
        let mut p = Progress::default();
        let a = step("a", "[internal] load build definition from Dockerfile");
        let b = step("b", "[1/3] FROM base");
        let c = step("c", "[2/3] RUN make");
        let d = step("d", "[3/3] COPY . /app");
        for s in [&a, &b, &c, &d] {
            assert!(p.take(&Event::Step(s.clone())).is_empty());
        }
        assert_eq!(p.counts(), (0, 3, 0));
        assert_eq!(
            p.take(&Event::Step(Step { cached: true, completed: true, ..b.clone() })),
            ["#2 [1/3] FROM base", "#2 CACHED"]
        );
        assert_eq!(p.take(&Event::Step(Step { started: true, ..c.clone() })), ["#3 [2/3] RUN make"]);
        assert_eq!(p.line().as_deref(), Some("step 2/3 (1 cached): RUN make"));
        assert_eq!(p.take(&Event::Output { step: "c".into(), line: "cc main.c".into() }), ["#3 cc main.c"]);
        let failed = Step { started: true, completed: true, error: Some("exit code: 2".into()), ..c.clone() };
        assert_eq!(p.take(&Event::Step(failed)), ["#3 ERROR: exit code: 2"]);
        let (s, tail) = p.failed_step().unwrap();
        assert_eq!((s.name.as_str(), tail), ("[2/3] RUN make", vec!["cc main.c".to_string()]));
        assert_eq!(step_command(&s.name), "RUN make");
    }

    #[test]
    fn trace_message_decodes() {
        use base64::Engine as _;
        use bollard_buildkit_proto::moby::buildkit::v1::{Vertex, VertexLog};
        let status = StatusResponse {
            vertexes: vec![Vertex {
                digest: "d1".into(),
                name: "[1/2] RUN x".into(),
                cached: true,
                ..Default::default()
            }],
            logs: vec![VertexLog { vertex: "d1".into(), msg: b"hello\nworld\n".to_vec(), ..Default::default() }],
            ..Default::default()
        };
        let aux = base64::engine::general_purpose::STANDARD.encode(prost::Message::encode_to_vec(&status));
        let events = decode_message(&serde_json::json!({ "id": "moby.buildkit.trace", "aux": aux }));
        assert_eq!(events.len(), 3);
        assert!(matches!(&events[0], Event::Step(s) if s.cached && s.name == "[1/2] RUN x"));
        assert_eq!(events[2], Event::Output { step: "d1".into(), line: "world".into() });
        let id = decode_message(&serde_json::json!({ "id": "moby.image.id", "aux": { "ID": "sha256:ab" } }));
        assert_eq!(id, [Event::Built("sha256:ab".into())]);
        let failed = decode_message(&serde_json::json!({ "errorDetail": { "message": "boom" }, "error": "boom" }));
        assert_eq!(failed, [Event::Failed("boom".into())]);
    }

    #[test]
    fn partial_lines_wait() {
        let mut pending = br#"{"stream":"a"}
{"stre"#
            .to_vec();
        assert_eq!(decode_lines(&mut pending, false), [Event::Text("a".into())]);
        pending.extend_from_slice(b"am\":\"b\"}\r\n");
        assert_eq!(decode_lines(&mut pending, false), [Event::Text("b".into())]);
        assert!(pending.is_empty());
    }
}
