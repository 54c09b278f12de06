//! One build per key across runs: before a run builds a key it claims it on the engine, so a second run
//! (another environment deployed from the same commit, say) waits for that build and uses the pushed
//! image instead of building it again. werf's build synchronisation is the model.
//!
//! A claim is a created, never started container named `pipeline-build-<key>`: the engine keeps names
//! unique, so creating it is the atomic step, as for the environment lock. Its labels hold the holder
//! (`user@host pid N`), when it was taken and how long it lasts without renewal ([`TTL`]); its holder
//! renews it every [`RENEW`] while it builds, by writing the time into the file `/renewed` of the
//! container (labels cannot change). A claim whose holder is a process of this host that has ended is
//! taken over at once; one whose holder stopped renewing (a run killed on another machine) expires
//! [`TTL`] after its last renewal. Clocks of the machines that share an engine are assumed to agree
//! within much less than [`TTL`].
//!
//! Runs that deploy to one Kubernetes cluster from different machines meet on the cluster instead: a
//! Lease per key ([`crate::kubernetes::build_claim`]). [`Claims`] says where a run claims.

use crate::docker::{EngineError, reason, status};
use crate::kubernetes::Cluster;
use crate::kubernetes::build_claim::{self, ClusterClaim, ClusterClaimed};
use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptions, ListContainersOptions, RemoveContainerOptions};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const HOLDER: &str = "pipeline.build.holder";
const SINCE: &str = "pipeline.build.since";
/// When it expires unless renewed (claims of earlier releases have only this).
const EXPIRES: &str = "pipeline.build.expires";
/// Seconds a renewal lasts.
const TTL_LABEL: &str = "pipeline.build.ttl";
const KEY: &str = "pipeline.build.key";
/// The file in the claim container holding the time of its last renewal (Unix seconds).
const RENEWED: &str = "renewed";

/// How long a claim lasts after it was taken or last renewed.
pub const TTL: Duration = Duration::from_secs(120);
/// How often a holder renews its claim while it builds.
pub const RENEW: Duration = Duration::from_secs(30);

/// How long claims last and how often they are renewed ([`TTL`] and [`RENEW`] unless a test says).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub ttl: Duration,
    pub renew: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing { ttl: TTL, renew: RENEW }
    }
}

fn name(key: &str) -> String {
    format!("pipeline-build-{key}")
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// A claim this run holds; released with [`Claim::release`], or when dropped (a cancelled build).
pub struct Claim {
    held: Held,
    /// Why it was taken somewhere other than where it was asked for (the cluster refused it).
    pub warning: Option<String>,
}

enum Held {
    Engine(EngineClaim),
    Cluster(Box<ClusterClaim>),
}

impl Claim {
    pub async fn release(self) {
        match self.held {
            Held::Engine(c) => c.release().await,
            Held::Cluster(c) => c.release().await,
        }
    }
}

/// Where a run claims the keys it builds: where runs that would build the same key meet. For the Docker
/// target that is the engine; for Kubernetes, the cluster (runs on different machines share no engine),
/// with the engine as the fallback when the cluster refuses.
#[derive(Clone)]
pub enum Claims {
    Engine(Docker),
    Cluster { cluster: Cluster, engine: Docker, timing: Timing },
}

impl Claims {
    /// Claim `key` for `holder` where this run's builds meet others.
    pub async fn claim(&self, key: &str, holder: &str) -> Result<Claimed, EngineError> {
        match self {
            Claims::Engine(docker) => claim(docker, key, holder).await,
            Claims::Cluster { cluster, engine, timing } => {
                match build_claim::claim(cluster, key, holder, *timing).await {
                    Ok(ClusterClaimed::Mine(c)) => Ok(Claimed::Mine(Claim { held: Held::Cluster(c), warning: None })),
                    Ok(ClusterClaimed::Theirs(h)) => Ok(Claimed::Theirs(h)),
                    Err(e) => {
                        let mut claimed = claim(engine, key, holder).await?;
                        if let Claimed::Mine(c) = &mut claimed {
                            c.warning = Some(format!(
                                "cannot claim the build on the cluster ({e}); claimed on the engine instead, so only runs on this engine wait for it"
                            ));
                        }
                        Ok(claimed)
                    }
                }
            }
        }
    }
}

/// A claim held on the engine: a container, removed by id.
struct EngineClaim {
    docker: Docker,
    id: Option<String>,
    /// Renews the claim until it is released.
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl EngineClaim {
    async fn release(mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        if let Some(id) = self.id.take() {
            remove(&self.docker, &id).await;
        }
    }
}

impl Drop for EngineClaim {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        if let (Some(id), Ok(rt)) = (self.id.take(), tokio::runtime::Handle::try_current()) {
            let docker = self.docker.clone();
            rt.spawn(async move { remove(&docker, &id).await });
        }
    }
}

/// Write the time of this renewal into the claim container.
async fn renew(docker: &Docker, id: &str) -> Result<(), bollard::errors::Error> {
    let text = now().to_string();
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    let archive = tar.append_data(&mut h, RENEWED, text.as_bytes()).and_then(|()| tar.into_inner()).unwrap_or_default();
    let options = bollard::query_parameters::UploadToContainerOptions { path: "/".into(), ..Default::default() };
    docker.upload_to_container(id, Some(options), bollard::body_full(archive.into())).await
}

/// The time of a claim's last renewal, if it was ever renewed.
async fn renewed(docker: &Docker, id: &str) -> Option<u64> {
    use futures_util::StreamExt as _;
    let options = bollard::query_parameters::DownloadFromContainerOptions { path: format!("/{RENEWED}") };
    let mut stream = docker.download_from_container(id, Some(options));
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.ok()?);
    }
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut entry = archive.entries().ok()?.next()?.ok()?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut entry, &mut text).ok()?;
    text.trim().parse().ok()
}

/// Whether a claim has run out: [`TTL`] (its own) after it was taken or last renewed.
async fn expired(docker: &Docker, id: &str, labels: &HashMap<String, String>) -> bool {
    let number = |k: &str| labels.get(k).and_then(|s| s.parse::<u64>().ok());
    let Some(ttl) = number(TTL_LABEL) else {
        // A claim of an earlier release: a fixed expiry.
        return number(EXPIRES).is_some_and(|t| now() >= t);
    };
    let since = number(SINCE).unwrap_or(0);
    let last = renewed(docker, id).await.unwrap_or(since).max(since);
    now() >= last.saturating_add(ttl)
}

async fn remove(docker: &Docker, id: &str) {
    let _ = docker.remove_container(id, Some(RemoveContainerOptions { force: true, ..Default::default() })).await;
}

/// Someone else's live claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub holder: String,
    /// Seconds since it was taken.
    pub age: u64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (for {}s)", self.holder, self.age)
    }
}

pub enum Claimed {
    Mine(Claim),
    Theirs(Holder),
}

/// Claim `key` for `holder`, taking over a claim that has expired or whose holder has ended; a claim
/// taken is renewed until released.
pub async fn claim(docker: &Docker, key: &str, holder: &str) -> Result<Claimed, EngineError> {
    claim_with(docker, key, holder, Timing::default()).await
}

/// [`claim`], with its own timing (tests).
pub async fn claim_with(docker: &Docker, key: &str, holder: &str, timing: Timing) -> Result<Claimed, EngineError> {
    let name = name(key);
    crate::docker::lock::ensure_lock_image(docker).await?;
    let mut last = String::new();
    // The engine reserves a name before the container can be inspected: a claim being taken answers 404
    // for a moment, so that case is retried more often.
    for _ in 0..20 {
        let taken = now();
        let body = ContainerCreateBody {
            image: Some(crate::docker::lock::LOCK_IMAGE.into()),
            cmd: Some(vec!["build-claim".into()]),
            labels: Some(HashMap::from([
                (KEY.into(), key.into()),
                (HOLDER.into(), holder.into()),
                (SINCE.into(), taken.to_string()),
                (TTL_LABEL.into(), timing.ttl.as_secs().max(1).to_string()),
                (EXPIRES.into(), (taken + timing.ttl.as_secs()).to_string()),
            ])),
            ..Default::default()
        };
        let options = CreateContainerOptions { name: Some(name.clone()), platform: String::new() };
        match docker.create_container(Some(options), body).await {
            Ok(created) => {
                let (d, id, every) = (docker.clone(), created.id.clone(), timing.renew);
                let renewer = tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(every).await;
                        // A renewal that fails is tried again at the next one; the claim lasts a TTL.
                        let _ = renew(&d, &id).await;
                    }
                });
                let held = EngineClaim { docker: docker.clone(), id: Some(created.id), renewer: Some(renewer) };
                return Ok(Claimed::Mine(Claim { held: Held::Engine(held), warning: None }));
            }
            Err(e) if status(&e) == Some(409) => {
                let c = match docker
                    .inspect_container(&name, None::<bollard::query_parameters::InspectContainerOptions>)
                    .await
                {
                    Ok(c) => c,
                    // Released between our create and inspect: try again.
                    Err(e) if status(&e) == Some(404) => {
                        last = "being taken or released meanwhile".into();
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    Err(e) => return Err(EngineError::request(format!("read the build claim {name}"), reason(&e))),
                };
                let labels = c.config.and_then(|c| c.labels).unwrap_or_default();
                let theirs = Holder {
                    holder: labels.get(HOLDER).cloned().unwrap_or_else(|| "an unknown run".into()),
                    age: labels.get(SINCE).and_then(|s| s.parse::<u64>().ok()).map_or(0, |t| now().saturating_sub(t)),
                };
                let expired = match c.id.as_deref() {
                    Some(id) => expired(docker, id, &labels).await,
                    None => false,
                };
                if expired || crate::target::holder_is_gone(&theirs.holder) {
                    last = format!("{} {}", theirs.holder, if expired { "expired" } else { "has ended" });
                    // By id: a claim another run took over meanwhile is not touched.
                    if let Some(id) = c.id.as_deref() {
                        remove(docker, id).await;
                    }
                    continue;
                }
                return Ok(Claimed::Theirs(theirs));
            }
            Err(e) => return Err(EngineError::request(format!("claim the build of {key}"), reason(&e))),
        }
    }
    Err(EngineError::request(format!("claim the build of {key}"), format!("the claim kept changing hands ({last})")))
}

/// The live claims on the engine: key -> holder (for the plan's "being built by").
pub async fn list(docker: &Docker) -> Result<BTreeMap<String, Holder>, EngineError> {
    let filters = HashMap::from([("label".to_string(), vec![KEY.to_string()])]);
    let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
    let found = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| EngineError::request("list build claims", reason(&e)))?;
    let mut out = BTreeMap::new();
    for c in found {
        let labels = c.labels.unwrap_or_default();
        let Some(key) = labels.get(KEY) else { continue };
        let holder = labels.get(HOLDER).cloned().unwrap_or_else(|| "an unknown run".into());
        let expired = match c.id.as_deref() {
            Some(id) => expired(docker, id, &labels).await,
            None => false,
        };
        if expired || crate::target::holder_is_gone(&holder) {
            continue;
        }
        let age = labels.get(SINCE).and_then(|s| s.parse::<u64>().ok()).map_or(0, |t| now().saturating_sub(t));
        out.insert(key.clone(), Holder { holder, age });
    }
    Ok(out)
}
