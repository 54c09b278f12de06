//! The mirror-registry client: which images already exist, asked with `HEAD /v2/<repository>/manifests/<tag>`
//! of the OCI distribution API, with Docker's credentials and its Basic and Bearer-token flows.
//!
//! # HTTP stack
//!
//! `reqwest` (rustls with the platform verifier, so a mirror signed by a company CA in the system store is
//! trusted as Docker would trust it; aws-lc-rs builds here with `cc` alone, no cmake or nasm) plus
//! `http-auth` to parse `WWW-Authenticate` (quoted strings with commas, several challenges), with the
//! token flow written out below; `futures-util` only for `FuturesUnordered`, the bounded set of lookups
//! in flight. `oci-client` (0.18, on the same reqwest) was the alternative, but its
//! `fetch_manifest_digest` follows every `HEAD` without a digest (each 404 included) with a `GET`, drops
//! token-service failures (`_auth(..).ok()??`) so a refused login surfaces as a bare 401 with no word of
//! what was tried, knows only anonymous, Basic and fixed Bearer credentials (no identity-token refresh,
//! no helpers), and brings oci-spec, chrono and olpc-cjson along for this one request.
//!
//! # Runtime
//!
//! [`ImageCache::lookup`] is synchronous, so the client owns a small tokio runtime (one worker thread,
//! named `pipeline-registry`): `lookup` spawns the work there and waits on a channel. That works from
//! plain threads and from inside any runtime, current-thread ones included, where `block_in_place` would
//! panic; inside a runtime it blocks the calling thread for the duration of the lookup. Dropping the
//! client shuts the runtime down in the background, which is allowed in async contexts.
//!
//! # One lookup
//!
//! Per registry: one `GET /v2/` learns whether and how the registry wants authentication (an unreachable
//! registry fails there once, not once per image). Per repository: one authentication (Basic header or
//! one token request), shared by every image of that repository in the call; a `HEAD` that is refused
//! with a different challenge (another scope, say) re-authenticates that repository once. Tokens live
//! for one `lookup` call, so they never outlive their expiry in a long-running executor.

use crate::docker_config::{self, Credentials};
use futures_util::StreamExt as _;
use pipeline_planner::cache::{CacheState, ImageCache, ImageRef, Resolution};
use pipeline_planner::reference::Reference;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use reqwest::{StatusCode, Url};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OnceCell};

/// The manifest media types asked for: OCI image manifest and index, Docker v2 manifest and list.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

/// What can go wrong setting up the client or reading credentials. Lookups themselves never fail: each
/// image gets a [`CacheState`], `Unknown` with the reason when the registry could not answer.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RegistryError {
    /// An option is out of range.
    #[error("registry option `{option}` {problem}")]
    #[diagnostic(code(pipeline::registry::option))]
    InvalidOption { option: &'static str, problem: String },
    /// The runtime thread could not be started.
    #[error("cannot start the registry client's runtime: {error}")]
    #[diagnostic(code(pipeline::registry::runtime))]
    Runtime { error: std::io::Error },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot set up the registry HTTP client: {error}")]
    #[diagnostic(code(pipeline::registry::http))]
    Http { error: reqwest::Error },
    /// The Docker config exists but cannot be read.
    #[error("cannot read the Docker config {}: {error}", path.display())]
    #[diagnostic(
        code(pipeline::registry::docker_config),
        help("check the file's permissions, or point DOCKER_CONFIG elsewhere")
    )]
    ConfigRead { path: PathBuf, error: std::io::Error },
    /// The Docker config is not JSON of the expected shape.
    #[error(transparent)]
    #[diagnostic(transparent)]
    ConfigSyntax(Box<ConfigSyntaxError>),
    /// An `auths.<host>.auth` entry is not base64 of `user:password`.
    #[error("`auths.\"{key}\".auth` in {} is not base64 of `user:password`", path.display())]
    #[diagnostic(code(pipeline::registry::docker_config_auth), help("run `docker login {host}` to rewrite it"))]
    BadAuthEntry { path: PathBuf, key: String, host: String },
    /// A credential helper is missing, failed or answered nonsense.
    #[error("credential helper {program} failed for {server}: {reason}")]
    #[diagnostic(
        code(pipeline::registry::credential_helper),
        help("install {program}, or remove it from `credsStore`/`credHelpers` in {}", config.display())
    )]
    CredentialHelper { program: String, server: String, reason: String, config: PathBuf },
    /// A build's record could not be pushed beside its image.
    #[error("cannot push the build record to {repository}: {reason}")]
    #[diagnostic(
        code(pipeline::registry::record),
        help("the image itself is pushed; only the next plan's explanation of a rebuild is missing")
    )]
    Record { repository: String, reason: String },
}

/// The Docker config is not JSON of the expected shape; points at the place.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("the Docker config {} is not valid JSON: {message}", path.display())]
#[diagnostic(
    code(pipeline::registry::docker_config_syntax),
    help("fix the file, or move it away and run `docker login` again")
)]
pub struct ConfigSyntaxError {
    pub path: PathBuf,
    pub message: String,
    #[source_code]
    pub src: miette::NamedSource<String>,
    #[label("here")]
    pub span: miette::SourceSpan,
}

/// How the client talks to registries.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Requests in flight at once, over all registries (at least 1).
    pub concurrency: usize,
    /// Time limit for each HTTP request, connection included (more than zero).
    pub timeout: Duration,
    /// Hosts (`host` or `host:port`) spoken to over plain http, like Docker's `insecure-registries`.
    /// Loopback hosts (`localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`) always are.
    pub insecure_hosts: Vec<String>,
    /// The Docker `config.json` to take credentials from; `None`: anonymous only.
    pub docker_config: Option<PathBuf>,
}

impl Default for RegistryOptions {
    /// 8 requests at once, 10 s each, no extra insecure hosts, and the Docker config from the environment
    /// (`$DOCKER_CONFIG/config.json` or `~/.docker/config.json`).
    fn default() -> Self {
        RegistryOptions {
            concurrency: 8,
            timeout: Duration::from_secs(10),
            insecure_hosts: Vec::new(),
            docker_config: docker_config::default_config_path(),
        }
    }
}

/// Asks mirror registries which images exist; see the module documentation.
pub struct RegistryClient {
    inner: Arc<Inner>,
    handle: tokio::runtime::Handle,
    runtime: Option<tokio::runtime::Runtime>,
}

struct Inner {
    http: reqwest::Client,
    options: RegistryOptions,
}

impl RegistryClient {
    /// A client with its own runtime thread and connection pool.
    pub fn new(options: RegistryOptions) -> Result<Self, RegistryError> {
        if options.concurrency == 0 {
            return Err(RegistryError::InvalidOption { option: "concurrency", problem: "must be at least 1".into() });
        }
        if options.timeout.is_zero() {
            return Err(RegistryError::InvalidOption { option: "timeout", problem: "must be more than zero".into() });
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("pipeline/", env!("CARGO_PKG_VERSION")))
            .timeout(options.timeout)
            .connect_timeout(options.timeout)
            .build()
            .map_err(|error| RegistryError::Http { error })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("pipeline-registry")
            .enable_all()
            .build()
            .map_err(|error| RegistryError::Runtime { error })?;
        let handle = runtime.handle().clone();
        Ok(RegistryClient { inner: Arc::new(Inner { http, options }), handle, runtime: Some(runtime) })
    }

    /// The credentials this client would use for `host`, from its Docker config (for pushes through the
    /// Docker engine). Blocking: may run a credential helper.
    pub fn credentials_for(&self, host: &str) -> Result<Option<Credentials>, RegistryError> {
        docker_config::credentials_for(self.inner.options.docker_config.as_deref(), host)
    }
}

impl Drop for RegistryClient {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl RegistryClient {
    /// Run `requests` on the client's runtime and wait for the answers (in the same order).
    fn run(&self, requests: Vec<(ImageRef, Fetch)>) -> Vec<Answer> {
        if requests.is_empty() {
            return Vec::new();
        }
        let n = requests.len();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let inner = Arc::clone(&self.inner);
        self.handle.spawn(async move {
            let _ = tx.send(inner.run(&requests).await);
        });
        rx.recv().unwrap_or_else(|_| {
            let why = "the registry request stopped before answering (internal error)";
            (0..n).map(|_| Answer::Unknown(why.into())).collect()
        })
    }

    /// Push a small record (JSON) beside the images of `repository` as an OCI artifact with one layer,
    /// tagged with every tag in `tags`. Blocking.
    pub fn push_record(
        &self,
        registry: &str,
        repository: &str,
        tags: &[String],
        json: &[u8],
    ) -> Result<(), RegistryError> {
        let failed = |reason: String| RegistryError::Record { repository: format!("{registry}/{repository}"), reason };
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let inner = Arc::clone(&self.inner);
        let (registry, repository, tags, json) =
            (registry.to_owned(), repository.to_owned(), tags.to_vec(), json.to_vec());
        self.handle.spawn(async move {
            let _ = tx.send(inner.push_record(&registry, &repository, &tags, &json).await);
        });
        rx.recv()
            .unwrap_or_else(|_| Err("the registry push stopped before answering (internal error)".into()))
            .map_err(failed)
    }
}

/// The media type of the records pushed by [`RegistryClient::push_record`] (its one layer).
pub const RECORD_MEDIA_TYPE: &str = "application/vnd.pipeline.key-inputs.v2+json";
/// The artifact type of the record's manifest.
pub const RECORD_ARTIFACT_TYPE: &str = "application/vnd.pipeline.key-inputs";
const EMPTY_CONFIG_TYPE: &str = "application/vnd.oci.empty.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

impl ImageCache for RegistryClient {
    fn lookup(&self, images: &[ImageRef]) -> Vec<CacheState> {
        let requests = images.iter().map(|i| (i.clone(), Fetch::HeadManifest)).collect();
        self.run(requests)
            .into_iter()
            .map(|a| match a {
                Answer::Present { digest, .. } => CacheState::Present { digest },
                Answer::Absent => CacheState::Absent,
                Answer::Unknown(why) => CacheState::Unknown(why),
            })
            .collect()
    }

    fn resolve(&self, references: &[Reference]) -> Vec<Resolution> {
        let at = |r: &Reference| ImageRef {
            registry: r.domain.clone(),
            repository: r.path.clone(),
            tag: r.digest.clone().unwrap_or_else(|| r.tag_or_latest().to_owned()),
        };
        let answers = self.run(references.iter().map(|r| (at(r), Fetch::HeadManifest)).collect());
        // Registries that send no digest with a HEAD: the digest of the manifest's bytes, from a GET.
        let need_body: Vec<usize> = answers
            .iter()
            .enumerate()
            .filter(|(_, a)| matches!(a, Answer::Present { digest: None, .. }))
            .map(|(i, _)| i)
            .collect();
        let bodies = self.run(need_body.iter().map(|&i| (at(&references[i]), Fetch::GetManifest)).collect());
        let mut bodies: HashMap<usize, Answer> = need_body.into_iter().zip(bodies).collect();
        answers
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                let a = match a {
                    Answer::Present { digest: None, .. } => bodies.remove(&i).unwrap_or(a),
                    a => a,
                };
                let r = &references[i];
                match a {
                    Answer::Present { digest, media_type, body } => {
                        let digest = digest.or_else(|| body.as_deref().map(sha256_digest));
                        let media_type = media_type
                            .or_else(|| body.as_deref().and_then(media_type_in))
                            .unwrap_or_else(|| "application/vnd.docker.distribution.manifest.v2+json".into());
                        match digest {
                            Some(d) if r.digest.as_ref().is_none_or(|want| *want == d) => {
                                Resolution::Found { digest: d, media_type }
                            }
                            Some(d) => Resolution::Failed(format!(
                                "{}: asked for {} and was given {d}",
                                r.domain,
                                r.digest.as_deref().unwrap_or_default()
                            )),
                            None => Resolution::Failed(format!("{}: the registry reported no digest", r.domain)),
                        }
                    }
                    Answer::Absent => Resolution::NotFound(match &r.digest {
                        Some(d) => format!("{} has no manifest {d} in {}", r.domain, r.path),
                        None => format!("{} has no tag `{}` in {}", r.domain, r.tag_or_latest(), r.path),
                    }),
                    Answer::Unknown(why) => Resolution::Failed(why),
                }
            })
            .collect()
    }

    fn records(&self, at: &[ImageRef]) -> Vec<Result<Option<Vec<u8>>, String>> {
        #[derive(serde::Deserialize)]
        struct Manifest {
            #[serde(default)]
            layers: Vec<Descriptor>,
        }
        #[derive(serde::Deserialize)]
        struct Descriptor {
            #[serde(rename = "mediaType")]
            media_type: String,
            digest: String,
        }
        let manifests = self.run(at.iter().map(|a| (a.clone(), Fetch::GetManifest)).collect());
        let mut out: Vec<Result<Option<Vec<u8>>, String>> = Vec::with_capacity(at.len());
        let mut blobs = Vec::new();
        for (n, (place, answer)) in at.iter().zip(manifests).enumerate() {
            out.push(match answer {
                Answer::Present { body: Some(b), .. } => match serde_json::from_slice::<Manifest>(&b) {
                    Ok(m) => match m.layers.into_iter().find(|l| l.media_type == RECORD_MEDIA_TYPE) {
                        Some(layer) => {
                            blobs.push((n, ImageRef { tag: layer.digest.clone(), ..place.clone() }));
                            Ok(None)
                        }
                        None => Ok(None),
                    },
                    Err(e) => Err(format!("{place}: the record's manifest is not readable: {e}")),
                },
                Answer::Present { body: None, .. } => Err(format!("{place}: the registry answered without a manifest")),
                Answer::Absent => Ok(None),
                Answer::Unknown(why) => Err(why),
            });
        }
        let answers = self.run(blobs.iter().map(|(_, b)| (b.clone(), Fetch::GetBlob)).collect());
        for ((n, blob), answer) in blobs.into_iter().zip(answers) {
            out[n] = match answer {
                Answer::Present { body: Some(b), .. } if sha256_digest(&b) == blob.tag => Ok(Some(b)),
                Answer::Present { .. } => Err(format!("{}: the record's content does not match its digest", at[n])),
                Answer::Absent => Ok(None),
                Answer::Unknown(why) => Err(why),
            };
        }
        out
    }
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(bytes);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The `mediaType` field of a manifest, when it has one.
fn media_type_in(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct M {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<M>(body).ok()?.media_type
}

/// What is asked of the registry for one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fetch {
    HeadManifest,
    GetManifest,
    /// The image's `tag` is the blob's digest.
    GetBlob,
}

/// What the registry answered.
#[derive(Debug, Clone)]
enum Answer {
    Present { digest: Option<String>, media_type: Option<String>, body: Option<Vec<u8>> },
    Absent,
    Unknown(String),
}

/// How a registry asked to be authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    /// It did not ask.
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// A scheme this client does not speak.
    Other(String),
}

impl Challenge {
    /// The best challenge among all `WWW-Authenticate` values: Bearer, then Basic.
    fn from_headers(headers: &reqwest::header::HeaderMap) -> Challenge {
        let mut found = Challenge::None;
        for value in headers.get_all(WWW_AUTHENTICATE) {
            let Ok(text) = value.to_str() else { continue };
            let Ok(challenges) = http_auth::parse_challenges(text) else { continue };
            for c in challenges {
                let param = |name: &str| {
                    c.params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.to_unescaped())
                };
                let this = if c.scheme.eq_ignore_ascii_case("bearer") {
                    match param("realm") {
                        Some(realm) => Challenge::Bearer { realm, service: param("service"), scope: param("scope") },
                        None => Challenge::Other("Bearer without a realm".into()),
                    }
                } else if c.scheme.eq_ignore_ascii_case("basic") {
                    Challenge::Basic
                } else {
                    Challenge::Other(c.scheme.to_owned())
                };
                let rank = |c: &Challenge| match c {
                    Challenge::Bearer { .. } => 3,
                    Challenge::Basic => 2,
                    Challenge::Other(_) => 1,
                    Challenge::None => 0,
                };
                if rank(&this) > rank(&found) {
                    found = this;
                }
            }
        }
        found
    }
}

/// One registry's state during one lookup.
struct RegistryState {
    host: String,
    base: Result<Url, String>,
    challenge: OnceCell<Result<Challenge, String>>,
    credentials: OnceCell<Result<Option<Credentials>, String>>,
}

/// One repository's authentication during one lookup.
#[derive(Default)]
struct RepoAuth {
    /// 0: not yet authenticated; 1: from the registry's `/v2/` challenge; 2: re-done after a refusal.
    round: u8,
    used: Option<Challenge>,
    header: Option<HeaderValue>,
    tried: String,
    error: Option<String>,
}

struct Authenticated {
    header: Option<HeaderValue>,
    tried: String,
}

enum Head {
    Done(Answer),
    Refused { status: StatusCode, challenge: Challenge },
}

impl Inner {
    async fn run(&self, requests: &[(ImageRef, Fetch)]) -> Vec<Answer> {
        let images: Vec<&ImageRef> = requests.iter().map(|(i, _)| i).collect();
        let mut registries: HashMap<&str, RegistryState> = HashMap::new();
        let mut repos: HashMap<(&str, &str), Mutex<RepoAuth>> = HashMap::new();
        for image in &images {
            registries.entry(&image.registry).or_insert_with(|| RegistryState {
                host: image.registry.clone(),
                base: self.base_url(&image.registry),
                challenge: OnceCell::new(),
                credentials: OnceCell::new(),
            });
            repos.entry((&image.registry, &image.repository)).or_default();
        }
        let mut answers: Vec<Option<Answer>> = vec![None; images.len()];
        let mut pending = futures_util::stream::FuturesUnordered::new();
        let mut queue = requests.iter().enumerate();
        loop {
            while pending.len() < self.options.concurrency {
                let Some((i, (image, fetch))) = queue.next() else { break };
                pending.push(self.lookup_indexed(i, image, *fetch, &registries, &repos));
            }
            let Some((i, state)) = pending.next().await else { break };
            if let Some(slot) = answers.get_mut(i) {
                *slot = Some(state);
            }
        }
        answers.into_iter().map(|a| a.unwrap_or_else(|| Answer::Unknown("internal error: no answer".into()))).collect()
    }

    async fn lookup_indexed(
        &self,
        i: usize,
        image: &ImageRef,
        fetch: Fetch,
        registries: &HashMap<&str, RegistryState>,
        repos: &HashMap<(&str, &str), Mutex<RepoAuth>>,
    ) -> (usize, Answer) {
        let reg = registries.get(image.registry.as_str());
        let repo = repos.get(&(image.registry.as_str(), image.repository.as_str()));
        let state = match (reg, repo) {
            (Some(reg), Some(repo)) => self.lookup_one(image, fetch, reg, repo).await,
            _ => Answer::Unknown("internal error: image missing from the lookup tables".into()),
        };
        (i, state)
    }

    async fn lookup_one(&self, image: &ImageRef, fetch: Fetch, reg: &RegistryState, repo: &Mutex<RepoAuth>) -> Answer {
        if let Err(why) = check_reference(image) {
            return Answer::Unknown(why);
        }
        let base = match &reg.base {
            Ok(base) => base,
            Err(why) => return Answer::Unknown(why.clone()),
        };
        let challenge = match reg.challenge.get_or_init(|| self.ping(&reg.host, base)).await {
            Ok(c) => c.clone(),
            Err(why) => return Answer::Unknown(why.clone()),
        };
        let url = match fetch {
            Fetch::HeadManifest | Fetch::GetManifest => {
                format!("{}v2/{}/manifests/{}", base, image.repository, image.tag)
            }
            Fetch::GetBlob => format!("{}v2/{}/blobs/{}", base, image.repository, image.tag),
        };

        let (header, round) = {
            let mut auth = repo.lock().await;
            if auth.round == 0 {
                self.settle(&mut auth, reg, &image.repository, challenge, 1).await;
            }
            if let Some(why) = &auth.error {
                return Answer::Unknown(why.clone());
            }
            (auth.header.clone(), auth.round)
        };
        let (status, refused) = match self.head(&reg.host, base, &url, header, fetch).await {
            Head::Done(state) => return state,
            Head::Refused { status, challenge } => (status, challenge),
        };

        // Refused: re-authenticate once per repository when the registry now asks for something else.
        let header = {
            let mut auth = repo.lock().await;
            if auth.round == round
                && round == 1
                && !matches!(refused, Challenge::None)
                && auth.used.as_ref() != Some(&refused)
            {
                self.settle(&mut auth, reg, &image.repository, refused, 2).await;
            } else if auth.round == round {
                return Answer::Unknown(denied(&reg.host, status, &image.repository, &auth.tried));
            }
            if let Some(why) = &auth.error {
                return Answer::Unknown(why.clone());
            }
            auth.header.clone()
        };
        match self.head(&reg.host, base, &url, header, fetch).await {
            Head::Done(state) => state,
            Head::Refused { status, .. } => {
                let auth = repo.lock().await;
                Answer::Unknown(denied(&reg.host, status, &image.repository, &auth.tried))
            }
        }
    }

    /// Authenticate `repository` for `challenge` and record the outcome as round `round`.
    async fn settle(
        &self,
        auth: &mut RepoAuth,
        reg: &RegistryState,
        repository: &str,
        challenge: Challenge,
        round: u8,
    ) {
        // Name the scope asked for, so a refusal that names the same scope is recognised as the same challenge.
        let challenge = match challenge {
            Challenge::Bearer { realm, service, scope: None } => {
                Challenge::Bearer { realm, service, scope: Some(format!("repository:{repository}:pull")) }
            }
            c => c,
        };
        let result = self.authenticate(reg, repository, &challenge).await;
        auth.round = round;
        auth.used = Some(challenge);
        match result {
            Ok(done) => {
                auth.header = done.header;
                auth.tried = done.tried;
                auth.error = None;
            }
            Err(why) => auth.error = Some(why),
        }
    }

    fn base_url(&self, host: &str) -> Result<Url, String> {
        let valid = !host.is_empty()
            && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'));
        if !valid {
            return Err(format!("{host:?} is not a registry host (`host[:port]`)"));
        }
        let endpoint = match host.to_ascii_lowercase().as_str() {
            "docker.io" | "index.docker.io" => "registry-1.docker.io".to_owned(),
            _ => host.to_owned(),
        };
        let scheme = if self.is_insecure(host) { "http" } else { "https" };
        Url::parse(&format!("{scheme}://{endpoint}/")).map_err(|e| format!("{host:?} is not a registry host: {e}"))
    }

    fn is_insecure(&self, host: &str) -> bool {
        is_loopback(host)
            || self.options.insecure_hosts.iter().any(|entry| {
                let entry = entry.strip_prefix("http://").or_else(|| entry.strip_prefix("https://")).unwrap_or(entry);
                let entry = entry.trim_end_matches('/');
                entry.eq_ignore_ascii_case(host) || entry.eq_ignore_ascii_case(strip_port(host))
            })
    }

    /// `GET /v2/`: whether and how the registry wants authentication.
    async fn ping(&self, host: &str, base: &Url) -> Result<Challenge, String> {
        let url = format!("{base}v2/");
        let response = self.http.get(&url).send().await.map_err(|e| unreachable(base, &e, self.options.timeout))?;
        let challenge = match response.status() {
            StatusCode::UNAUTHORIZED => match Challenge::from_headers(response.headers()) {
                Challenge::Other(scheme) => {
                    return Err(format!("{host}: asks for {scheme} authentication, which pipeline does not support"));
                }
                c => c,
            },
            // Anything else: no challenge here; each HEAD answers for itself.
            _ => Challenge::None,
        };
        let _ = response.bytes().await;
        Ok(challenge)
    }

    async fn head(&self, host: &str, base: &Url, url: &str, header: Option<HeaderValue>, fetch: Fetch) -> Head {
        let mut request = match fetch {
            Fetch::HeadManifest => self.http.head(url).header(ACCEPT, MANIFEST_ACCEPT),
            Fetch::GetManifest => self.http.get(url).header(ACCEPT, MANIFEST_ACCEPT),
            Fetch::GetBlob => self.http.get(url),
        };
        if let Some(h) = header {
            request = request.header(AUTHORIZATION, h);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Head::Done(Answer::Unknown(unreachable(base, &e, self.options.timeout))),
        };
        match response.status() {
            StatusCode::OK => {
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(|d| d.split(';').next().unwrap_or(d).trim().to_owned())
                        .filter(|d| !d.is_empty())
                };
                let digest = header("docker-content-digest");
                let media_type = header("content-type").filter(|m| m.contains("manifest") || m.contains("index"));
                let body = match fetch {
                    Fetch::HeadManifest => None,
                    Fetch::GetManifest | Fetch::GetBlob => match response.bytes().await {
                        Ok(b) => Some(b.to_vec()),
                        Err(e) => return Head::Done(Answer::Unknown(unreachable(base, &e, self.options.timeout))),
                    },
                };
                Head::Done(Answer::Present { digest, media_type, body })
            }
            StatusCode::NOT_FOUND => Head::Done(Answer::Absent),
            status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                Head::Refused { status, challenge: Challenge::from_headers(response.headers()) }
            }
            status => Head::Done(Answer::Unknown(format!("{host}: {status}"))),
        }
    }

    /// Push `json` as the one layer of an OCI artifact in `repository`, tagged with each of `tags`.
    async fn push_record(&self, host: &str, repository: &str, tags: &[String], json: &[u8]) -> Result<(), String> {
        let base = self.base_url(host)?;
        let reg = RegistryState {
            host: host.to_owned(),
            base: Ok(base.clone()),
            challenge: OnceCell::new(),
            credentials: OnceCell::new(),
        };
        let challenge = self.ping(host, &base).await?;
        let challenge = match challenge {
            Challenge::Bearer { realm, service, .. } => {
                Challenge::Bearer { realm, service, scope: Some(format!("repository:{repository}:pull,push")) }
            }
            c => c,
        };
        let auth = self.authenticate(&reg, repository, &challenge).await?;
        let with_auth = |r: reqwest::RequestBuilder| match &auth.header {
            Some(h) => r.header(AUTHORIZATION, h.clone()),
            None => r,
        };
        let timeout = self.options.timeout;
        let fail = |what: &str, status: StatusCode| {
            format!("{host}: {what} in {repository} answered {status} with {}", auth.tried)
        };
        let config = b"{}".to_vec();
        for blob in [&config, &json.to_vec()] {
            let digest = sha256_digest(blob);
            let exists = with_auth(self.http.head(format!("{base}v2/{repository}/blobs/{digest}")))
                .send()
                .await
                .map_err(|e| unreachable(&base, &e, timeout))?;
            if exists.status() == StatusCode::OK {
                continue;
            }
            let start = with_auth(self.http.post(format!("{base}v2/{repository}/blobs/uploads/")))
                .send()
                .await
                .map_err(|e| unreachable(&base, &e, timeout))?;
            if start.status() != StatusCode::ACCEPTED {
                return Err(fail("starting an upload", start.status()));
            }
            let location = start
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("{host}: an upload was started without a Location"))?;
            let mut url = base.join(location).map_err(|e| format!("{host}: the upload Location is not a URL: {e}"))?;
            url.query_pairs_mut().append_pair("digest", &digest);
            let put = with_auth(self.http.put(url))
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(blob.clone())
                .send()
                .await
                .map_err(|e| unreachable(&base, &e, timeout))?;
            if put.status() != StatusCode::CREATED {
                return Err(fail("uploading the record", put.status()));
            }
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": RECORD_ARTIFACT_TYPE,
            "config": { "mediaType": EMPTY_CONFIG_TYPE, "digest": sha256_digest(&config), "size": config.len() },
            "layers": [{ "mediaType": RECORD_MEDIA_TYPE, "digest": sha256_digest(json), "size": json.len() }],
        });
        let body = serde_json::to_vec(&manifest).map_err(|e| format!("cannot write the record's manifest: {e}"))?;
        for tag in tags {
            let put = with_auth(self.http.put(format!("{base}v2/{repository}/manifests/{tag}")))
                .header(reqwest::header::CONTENT_TYPE, OCI_MANIFEST)
                .body(body.clone())
                .send()
                .await
                .map_err(|e| unreachable(&base, &e, timeout))?;
            if put.status() != StatusCode::CREATED {
                let status = put.status();
                let text = put.text().await.unwrap_or_default();
                return Err(format!("{}: {}", fail(&format!("tagging the record `{tag}`"), status), text.trim()));
            }
        }
        Ok(())
    }

    async fn credentials(&self, reg: &RegistryState) -> Result<Option<Credentials>, String> {
        reg.credentials
            .get_or_init(|| async {
                let config = self.options.docker_config.clone();
                let host = reg.host.clone();
                let task =
                    tokio::task::spawn_blocking(move || docker_config::credentials_for(config.as_deref(), &host));
                match task.await {
                    Ok(Ok(found)) => Ok(found),
                    Ok(Err(e)) => Err(format!("{}: {e}", reg.host)),
                    Err(e) => Err(format!("{}: reading credentials failed: {e}", reg.host)),
                }
            })
            .await
            .clone()
    }

    fn no_credentials(&self, host: &str) -> String {
        match &self.options.docker_config {
            Some(path) => format!("no credentials (none for {host} in {})", path.display()),
            None => "no credentials (no Docker config given)".to_owned(),
        }
    }

    async fn authenticate(
        &self,
        reg: &RegistryState,
        repository: &str,
        challenge: &Challenge,
    ) -> Result<Authenticated, String> {
        let host = reg.host.as_str();
        match challenge {
            Challenge::None => Ok(Authenticated { header: None, tried: "no credentials (none were asked for)".into() }),
            Challenge::Other(scheme) => {
                Err(format!("{host}: asks for {scheme} authentication, which pipeline does not support"))
            }
            Challenge::Basic => {
                let creds = self.credentials(reg).await?;
                match creds.as_ref().and_then(|c| c.basic().map(|b| (c, b))) {
                    Some((c, (user, pass))) => {
                        Ok(Authenticated { header: Some(basic_header(user, pass)?), tried: c.describe() })
                    }
                    None => {
                        let tried = match &creds {
                            Some(c) => {
                                format!("no credentials ({} is not usable for Basic authentication)", c.describe())
                            }
                            None => self.no_credentials(host),
                        };
                        Ok(Authenticated { header: None, tried })
                    }
                }
            }
            Challenge::Bearer { realm, service, scope } => {
                let creds = self.credentials(reg).await?;
                let scope = scope.clone().unwrap_or_else(|| format!("repository:{repository}:pull"));
                let tried = creds
                    .as_ref()
                    .map_or_else(|| format!("anonymous, {}", self.no_credentials(host)), |c| c.describe());
                let token = self.token(host, realm, service.as_deref(), &scope, creds.as_ref(), &tried).await?;
                let header = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
                    format!("{host}: the token service {realm} returned a token that is not a valid header")
                })?;
                Ok(Authenticated { header: Some(header), tried: format!("a token for {scope} ({tried})") })
            }
        }
    }

    /// Fetch a bearer token: OAuth2 refresh-token `POST` with an identity token, otherwise `GET` with Basic
    /// credentials when known, anonymous when not.
    async fn token(
        &self,
        host: &str,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        creds: Option<&Credentials>,
        tried: &str,
    ) -> Result<String, String> {
        let realm_url =
            Url::parse(realm).map_err(|e| format!("{host}: the token realm {realm:?} is not a URL: {e}"))?;
        let timeout = self.options.timeout;
        let mut response = None;
        if let Some(refresh) = creds.and_then(|c| c.identity_token.as_deref()) {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", "pipeline"),
                ("scope", scope),
            ];
            if let Some(service) = service {
                form.push(("service", service));
            }
            let r = self
                .http
                .post(realm_url.clone())
                .form(&form)
                .send()
                .await
                .map_err(|e| unreachable(&realm_url, &e, timeout))?;
            // Token services without OAuth2 answer the POST with 404 or 405: fall back to GET.
            if !matches!(r.status(), StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED) {
                response = Some(r);
            }
        }
        let response = match response {
            Some(r) => r,
            None => {
                let mut url = realm_url.clone();
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = service {
                        query.append_pair("service", service);
                    }
                    query.append_pair("scope", scope);
                }
                let mut request = self.http.get(url);
                if let Some((user, pass)) = creds.and_then(Credentials::basic) {
                    request = request.header(AUTHORIZATION, basic_header(user, pass)?);
                }
                request.send().await.map_err(|e| unreachable(&realm_url, &e, timeout))?
            }
        };
        let status = response.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(format!(
                "{host}: the token service {realm} answered {status} for {scope} with {tried}; \
                 run `docker login {host}`"
            ));
        }
        if !status.is_success() {
            return Err(format!("{host}: the token service {realm} answered {status}"));
        }
        let body = response.bytes().await.map_err(|e| unreachable(&realm_url, &e, timeout))?;
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
            format!("{host}: the token service {realm} answered with something other than a token: {e}")
        })?;
        answer
            .token
            .filter(|t| !t.is_empty())
            .or(answer.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| format!("{host}: the token service {realm} answered without a token"))
    }
}

fn basic_header(user: &str, pass: &str) -> Result<HeaderValue, String> {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    HeaderValue::try_from(format!("Basic {encoded}")).map_err(|_| "credentials that do not fit in a header".to_owned())
}

/// A one-line refusal: status, repository, what was tried, and the fix.
fn denied(host: &str, status: StatusCode, repository: &str, tried: &str) -> String {
    let tried = if tried.is_empty() { "no credentials" } else { tried };
    format!(
        "{host}: {status} for {repository} with {tried}; run `docker login {host}` with an account that can pull it"
    )
}

/// `cannot reach http://127.0.0.1:5000: Connection refused (os error 111)`.
fn unreachable(url: &Url, error: &reqwest::Error, timeout: Duration) -> String {
    let mut endpoint = url.as_str().to_owned();
    if url.path() == "/" && url.query().is_none() {
        endpoint.pop();
    }
    let mut why = error.to_string();
    let mut timed_out = error.is_timeout();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        why = s.to_string();
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            timed_out |= io.kind() == std::io::ErrorKind::TimedOut;
        }
        source = s.source();
    }
    if timed_out {
        why = format!("no answer within {timeout:?}");
    }
    format!("cannot reach {endpoint}: {why}")
}

/// The host without its port: `[::1]:5000` → `::1`, `localhost:5000` → `localhost`.
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, _)) if !name.contains(':') => name,
        _ => host,
    }
}

/// `localhost`, `127.0.0.0/8` and `::1`, with or without a port.
pub fn is_loopback(host: &str) -> bool {
    let name = strip_port(host).to_ascii_lowercase();
    // `*.localhost` names are loopback too (RFC 6761), as k3d's registries are named.
    name == "localhost" || name.ends_with(".localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Repository and tag as the distribution spec allows them (closely enough to keep the URL well formed).
fn check_reference(image: &ImageRef) -> Result<(), String> {
    let repo_ok = !image.repository.is_empty()
        && image.repository.split('/').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
        });
    if !repo_ok {
        return Err(format!(
            "{image}: {:?} is not a repository name (lower-case letters, digits, `._-`, `/`)",
            image.repository
        ));
    }
    let tag = &image.tag;
    if tag.contains(':') {
        return pipeline_planner::reference::check_digest(tag).map_err(|why| format!("{image}: {why}"));
    }
    let tag_ok = (1..=128).contains(&tag.len())
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !tag.starts_with(['.', '-']);
    if !tag_ok {
        return Err(format!("{image}: {tag:?} is not a tag (up to 128 of letters, digits, `._-`)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    fn options() -> RegistryOptions {
        RegistryOptions {
            insecure_hosts: vec!["mirror.internal".into(), "http://other:5000/".into()],
            ..Default::default()
        }
    }

    #[test]
    fn loopback_hosts() {
        for host in [
            "localhost",
            "LOCALHOST:5000",
            "127.0.0.1",
            "127.1.2.3:5000",
            "[::1]",
            "[::1]:5000",
            "::1",
            "k3d-registry.localhost:5002",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "10.0.0.1:5000",
            "registry.example",
            "[::2]:5000",
            "localhost.example",
            "128.0.0.1",
            "localhost.evil.example",
            "notlocalhost",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn scheme_follows_loopback_and_insecure_hosts() {
        let client = RegistryClient::new(options()).unwrap();
        let base = |h: &str| client.inner.base_url(h).unwrap().to_string();
        assert_eq!(base("127.0.0.1:5000"), "http://127.0.0.1:5000/");
        assert_eq!(base("[::1]:5000"), "http://[::1]:5000/");
        assert_eq!(base("mirror.internal:443"), "http://mirror.internal:443/");
        assert_eq!(base("other:5000"), "http://other:5000/");
        assert_eq!(base("other:5001"), "https://other:5001/");
        assert_eq!(base("registry.example"), "https://registry.example/");
        assert_eq!(base("docker.io"), "https://registry-1.docker.io/");
        assert!(client.inner.base_url("a/b").is_err());
        assert!(client.inner.base_url("").is_err());
    }

    #[test]
    fn options_are_checked() {
        let err = |o| RegistryClient::new(o).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err(RegistryOptions { concurrency: 0, ..options() }).contains("concurrency"));
        assert!(err(RegistryOptions { timeout: Duration::ZERO, ..options() }).contains("timeout"));
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(WWW_AUTHENTICATE, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn challenges() {
        let bearer = headers(&[
            r#"Bearer realm="https://auth.example/token",service="reg, with comma",scope="repository:a/b:pull""#,
        ]);
        assert_eq!(
            Challenge::from_headers(&bearer),
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("reg, with comma".into()),
                scope: Some("repository:a/b:pull".into()),
            }
        );
        assert_eq!(Challenge::from_headers(&headers(&[r#"Basic realm="Registry Realm""#])), Challenge::Basic);
        assert_eq!(
            Challenge::from_headers(&headers(&[r#"Basic realm="x""#, r#"bearer realm="r""#])),
            Challenge::Bearer { realm: "r".into(), service: None, scope: None }
        );
        assert_eq!(Challenge::from_headers(&headers(&["Negotiate"])), Challenge::Other("Negotiate".into()));
        assert_eq!(Challenge::from_headers(&headers(&["Bearer"])), Challenge::Other("Bearer without a realm".into()));
        assert_eq!(Challenge::from_headers(&headers(&["\"garbage"])), Challenge::None);
        assert_eq!(Challenge::from_headers(&HeaderMap::new()), Challenge::None);
    }

    #[test]
    fn references_are_checked_before_building_urls() {
        let image = |repository: &str, tag: &str| ImageRef {
            registry: "r".into(),
            repository: repository.into(),
            tag: tag.into(),
        };
        assert!(check_reference(&image("shop/api", "abc_1.2-3")).is_ok());
        for (repo, tag) in [
            ("", "t"),
            ("a//b", "t"),
            ("Shop", "t"),
            ("a?b", "t"),
            ("a", ""),
            ("a", ".x"),
            ("a", "x#y"),
            ("a", &"x".repeat(129)),
        ] {
            assert!(check_reference(&image(repo, tag)).is_err(), "{repo}:{tag}");
        }
    }

    #[test]
    fn refusal_message_is_one_line_with_a_hint() {
        let msg = denied("reg:5000", StatusCode::UNAUTHORIZED, "shop/api", "user alice (auths in /c.json)");
        assert_eq!(
            msg,
            "reg:5000: 401 Unauthorized for shop/api with user alice (auths in /c.json); \
             run `docker login reg:5000` with an account that can pull it"
        );
    }
}
