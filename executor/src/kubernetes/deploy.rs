//! Deploying one service to Kubernetes: refuse objects that belong to someone else, apply the service's
//! objects server-side (configuration first), wait for the workload, then delete the objects of the
//! service it no longer has (an old run's Job, a Service whose ports are gone). A removed service has
//! all its objects deleted; volume claims are kept, as the Docker target keeps volumes.

use super::KubernetesTarget;
use super::manifest::labels::{ENVIRONMENT, MANAGED_BY, PROJECT, SERVICE};
use super::manifest::{self, KINDS, MANAGER, Object, Scope, SecretValues};
use super::wait::{self, job_state};
use super::{Cluster, KubernetesError};
use crate::target::{Run, ServiceDeploy};
use pipeline_planner::plan::DeployAction;
use std::time::Duration;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DeployError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Kube(#[from] KubernetesError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Wait(#[from] wait::WaitError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Manifest(#[from] super::manifest::ManifestError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Lease(#[from] super::lease::LeaseError),
    #[error("{object} exists in namespace {namespace} and is not this environment's ({owner})")]
    #[diagnostic(
        code(pipeline::kubernetes::foreign_object),
        help(
            "rename the service, deploy this environment to another namespace, or delete that object if it is not needed"
        )
    )]
    Foreign { object: String, namespace: String, owner: String },
    /// The new version did not become ready; the Deployment was taken back to the spec it had, whose
    /// pods kept serving (a rolling update never takes an old pod away before a new one is ready).
    #[error("{0}; rolled back: the previous version keeps serving")]
    #[diagnostic(code(pipeline::kubernetes::rolled_back), help("{}", crate::target::kept_previous_help(.0.as_ref())))]
    RolledBack(Box<DeployError>),
}

impl KubernetesTarget {
    /// Bring one service to its spec, or remove it (`DeployAction::Delete`).
    pub async fn deploy_service(&self, s: &ServiceDeploy, run: &Run) -> Result<(), DeployError> {
        let selector = format!("{},{SERVICE}={}", self.scope.selector(), s.name);
        let mut live = Vec::new();
        for kind in KINDS {
            for o in self.cluster.list(kind, &selector).await? {
                live.push((kind, o.metadata.name.clone().unwrap_or_default(), o));
            }
        }
        let desired = match (&s.spec, s.action) {
            (Some(spec), a) if a != DeployAction::Delete => manifest::service_objects(
                &self.scope,
                &s.name,
                spec,
                s.key.as_deref(),
                SecretValues::Shown(&s.secrets),
            )?,
            _ => vec![],
        };
        for o in &desired {
            let mine = live.iter().any(|(k, name, _)| *k == o.kind() && name == o.name());
            if !mine {
                self.check_not_foreign(o).await?;
            }
        }
        // The spec the Deployment runs now: what a rollout that does not become ready goes back to.
        let previous = live
            .iter()
            .find(|(k, _, _)| *k == "Deployment")
            .and_then(|(_, _, o)| deployed_spec(o))
            .filter(|_| s.action == DeployAction::Update);
        if s.action == DeployAction::Replace {
            // What cannot change in place (a type, a volume, a job turned cron job): the workload and its
            // Service go first; configuration and volume claims stay.
            for (kind, name, _) in live.iter().filter(|(k, _, _)| !matches!(*k, "ConfigMap" | "Secret")) {
                run.note(format!("replacing {}/{name}: deleting it", kind.to_lowercase()));
                self.cluster.delete(kind, name).await?;
                self.wait_gone(kind, name, run.timeout).await?;
            }
            live.retain(|(k, _, _)| matches!(*k, "ConfigMap" | "Secret"));
        }
        for o in &desired {
            if let Object::Job(_) = o {
                // The same spec ran before: done if it completed, run again if it failed.
                if let Some((_, _, j)) = live.iter().find(|(k, name, _)| *k == "Job" && name == o.name()) {
                    let job: k8s_openapi::api::batch::v1::Job =
                        serde_json::from_value(serde_json::to_value(j).unwrap_or_default()).unwrap_or_default();
                    match job_state(&job) {
                        wait::State::Done => continue,
                        wait::State::Failed(_) => {
                            run.note(format!("deleting the failed {}", o.id()));
                            self.cluster.delete("Job", o.name()).await?;
                            self.wait_gone("Job", o.name(), run.timeout).await?;
                        }
                        wait::State::Waiting(_) => {}
                    }
                }
            }
            run.note(format!("applying {}", o.id()));
            self.cluster.apply(o, self.force_conflicts).await?;
        }
        for o in desired.iter().filter(|o| matches!(o, Object::Deployment(_) | Object::StatefulSet(_) | Object::Job(_)))
        {
            run.note(format!("waiting for {}", o.id()));
            let waited = wait::wait(&self.cluster, o.kind(), o.name(), run.timeout).await;
            match (waited, &previous) {
                (Ok(()), _) => {}
                (Err(e), Some((spec, key))) if matches!(o, Object::Deployment(_)) => {
                    run.note("rolling back to the previous version");
                    self.roll_back(&s.name, spec, key.as_deref(), run).await?;
                    return Err(DeployError::RolledBack(Box::new(e.into())));
                }
                (Err(e), _) => return Err(e.into()),
            }
        }
        // What the service no longer has, workloads first.
        let mut stale: Vec<_> =
            live.iter().filter(|(k, name, _)| !desired.iter().any(|d| d.kind() == *k && d.name() == name)).collect();
        stale.sort_by_key(|(k, _, _)| std::cmp::Reverse(KINDS.iter().position(|x| x == k)));
        for (kind, name, _) in stale {
            run.note(format!("deleting {}/{name}", kind.to_lowercase()));
            self.cluster.delete(kind, name).await?;
        }
        Ok(())
    }

    /// Take a Deployment back to the spec it ran before (its environment ConfigMap too; the Secret keeps
    /// the new values, which pipeline does not store): the pod template is the old one again, so the
    /// old ReplicaSet, still at full size, is the Deployment's again, and the new pods go.
    async fn roll_back(
        &self,
        service: &str,
        spec: &pipeline_planner::DeploySpec,
        key: Option<&str>,
        run: &Run,
    ) -> Result<(), DeployError> {
        let objects = manifest::service_objects(&self.scope, service, spec, key, SecretValues::Hidden)?;
        for o in objects.iter().filter(|o| matches!(o, Object::ConfigMap(_) | Object::Deployment(_))) {
            run.note(format!("applying the previous {}", o.id()));
            self.cluster.apply(o, self.force_conflicts).await?;
        }
        Ok(())
    }

    /// An object of the same name that pipeline does not manage for this environment is not ours to change.
    async fn check_not_foreign(&self, o: &Object) -> Result<(), DeployError> {
        let Some(existing) = self.cluster.get(o.kind(), o.name()).await? else { return Ok(()) };
        let labels = existing.metadata.labels.unwrap_or_default();
        let get = |k: &str| labels.get(k).map(String::as_str);
        if get(MANAGED_BY) == Some(MANAGER)
            && get(PROJECT) == Some(&self.scope.project)
            && get(ENVIRONMENT) == Some(&self.scope.environment)
        {
            return Ok(());
        }
        let owner = match (get(MANAGED_BY), get(PROJECT), get(ENVIRONMENT)) {
            (Some(MANAGER), Some(p), Some(e)) => format!("it belongs to {p}/{e}"),
            (Some(m), _, _) => format!("it is managed by {m}"),
            _ => "it was not made by pipeline".into(),
        };
        Err(DeployError::Foreign { object: o.id(), namespace: self.cluster.namespace.clone(), owner })
    }

    async fn wait_gone(&self, kind: &str, name: &str, timeout: Duration) -> Result<(), KubernetesError> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.cluster.get(kind, name).await?.is_some() {
            if tokio::time::Instant::now() >= deadline {
                return Err(KubernetesError::Request {
                    what: format!("{}/{name}", kind.to_lowercase()),
                    message: "still there after it was deleted".into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }
}

/// The spec and build key a workload was deployed with, from its annotations.
fn deployed_spec(o: &kube::api::DynamicObject) -> Option<(pipeline_planner::DeploySpec, Option<String>)> {
    let annotations = o.metadata.annotations.as_ref()?;
    let json: serde_json::Value = serde_json::from_str(annotations.get(manifest::labels::SPEC)?).ok()?;
    let spec = pipeline_planner::DeploySpec::from_json(&json)?;
    Some((spec, annotations.get(manifest::labels::KEY).cloned()))
}

/// Delete every object of the environment, workloads first, then Services and configuration (for
/// `destroy`); volume claims are kept.
pub async fn destroy(cluster: &Cluster, scope: &Scope, mut on: impl FnMut(&str)) -> Result<usize, KubernetesError> {
    let mut count = 0;
    for kind in KINDS.iter().rev() {
        for o in cluster.list(kind, &scope.selector()).await? {
            let name = o.metadata.name.clone().unwrap_or_default();
            on(&format!("{}/{name}", kind.to_lowercase()));
            cluster.delete(kind, &name).await?;
            count += 1;
        }
    }
    Ok(count)
}
