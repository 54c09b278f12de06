//! One build per key across runs: before a run builds a key it claims it on the engine, so a second run
//! (another environment deployed from the same commit, say) waits for that build and uses the pushed
//! image instead of building it again. werf's build synchronisation is the model.
//!
//! A claim is a created, never started container named `pipeline-build-<key>`: the engine keeps names
//! unique, so creating it is the atomic step, as for the environment lock. It holds the holder
//! (`user@host pid N`), when it was taken and when it expires. A claim whose holder is a process of this
//! host that has ended is taken over at once; any other expires after [`TTL`] (a build that takes longer
//! may then be built twice, which is safe: the same key gives the same image).

use crate::docker::{EngineError, reason, status};
use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptions, ListContainersOptions, RemoveContainerOptions};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const HOLDER: &str = "pipeline.build.holder";
const SINCE: &str = "pipeline.build.since";
const EXPIRES: &str = "pipeline.build.expires";
const KEY: &str = "pipeline.build.key";

/// How long a claim of a holder that cannot be checked (another host) lasts.
pub const TTL: Duration = Duration::from_secs(30 * 60);

fn name(key: &str) -> String {
    format!("pipeline-build-{key}")
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// A claim this run holds; released (removed by id) with [`Claim::release`], or when dropped (a
/// cancelled build).
pub struct Claim {
    docker: Docker,
    id: Option<String>,
}

impl Claim {
    pub async fn release(mut self) {
        if let Some(id) = self.id.take() {
            remove(&self.docker, &id).await;
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let (Some(id), Ok(rt)) = (self.id.take(), tokio::runtime::Handle::try_current()) {
            let docker = self.docker.clone();
            rt.spawn(async move { remove(&docker, &id).await });
        }
    }
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

/// Claim `key` for `holder`, taking over a claim that has expired or whose holder has ended.
pub async fn claim(docker: &Docker, key: &str, holder: &str) -> Result<Claimed, EngineError> {
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
                (EXPIRES.into(), (taken + TTL.as_secs()).to_string()),
            ])),
            ..Default::default()
        };
        let options = CreateContainerOptions { name: Some(name.clone()), platform: String::new() };
        match docker.create_container(Some(options), body).await {
            Ok(created) => return Ok(Claimed::Mine(Claim { docker: docker.clone(), id: Some(created.id) })),
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
                let expired = labels.get(EXPIRES).and_then(|s| s.parse::<u64>().ok()).is_some_and(|t| now() >= t);
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
        let expired = labels.get(EXPIRES).and_then(|s| s.parse::<u64>().ok()).is_some_and(|t| now() >= t);
        if expired || crate::target::holder_is_gone(&holder) {
            continue;
        }
        let age = labels.get(SINCE).and_then(|s| s.parse::<u64>().ok()).map_or(0, |t| now().saturating_sub(t));
        out.insert(key.clone(), Holder { holder, age });
    }
    Ok(out)
}
