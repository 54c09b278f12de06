//! One apply or destroy at a time per environment on a Docker engine: a created, never started container
//! `<project>-<env>-pipeline-lock` whose name the engine keeps unique, naming its holder (`user@host pid
//! N`). A lock whose holder is a dead process on this host is taken over.

use super::labels::{ENVIRONMENT, LOCK_HOLDER, LOCK_SINCE, PROJECT};
use super::{reason, status};
use crate::target::{EnvironmentLock, holder_is_gone};
use bollard::Docker;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptions, CreateImageOptions, RemoveContainerOptions};
use std::collections::HashMap;

/// The image of lock and claim containers: an empty file system, never run.
pub(crate) const LOCK_IMAGE: &str = "pipeline-lock:1";

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
        ensure_lock_image(docker).await.map_err(|e| LockError::Engine(e.to_string()))?;
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

    /// Remove the lock container, by id: a lock that changed hands is never removed. One already gone is
    /// released.
    pub async fn release(&self) -> Result<(), LockError> {
        match self
            .docker
            .remove_container(&self.id, Some(RemoveContainerOptions { force: true, ..Default::default() }))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if status(&e) == Some(404) => Ok(()),
            Err(e) => Err(LockError::Engine(format!("cannot release the lock: {}", reason(&e)))),
        }
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

/// The lock's image: an empty file system imported on the spot (nothing is pulled).
pub(crate) async fn ensure_lock_image(docker: &Docker) -> Result<(), super::EngineError> {
    if docker.inspect_image(LOCK_IMAGE).await.is_ok() {
        return Ok(());
    }
    let empty = tar::Builder::new(Vec::new())
        .into_inner()
        .map_err(|e| super::EngineError::request("make the lock image", e.to_string()))?;
    let options = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some("pipeline-lock".into()),
        tag: Some("1".into()),
        ..Default::default()
    };
    let import = docker.create_image(Some(options), Some(bollard::body_full(empty.into())), None);
    super::drain_create("make the lock image", import).await
}

impl EnvironmentLock for Lock {
    type Error = LockError;

    async fn release(&self) -> Result<(), LockError> {
        Lock::release(self).await
    }
}
