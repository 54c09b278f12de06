//! One apply at a time per environment: a `coordination.k8s.io` Lease `pipeline-<project>-<env>` in the
//! namespace, held by `user@host pid N`, renewed while the apply runs and deleted at the end. A lease not
//! renewed within its duration (its holder died) is taken over; the update carries the resourceVersion
//! read, so of two takers only one wins. Renewal and release check that the lease is still ours: a lease
//! someone else took over is neither renewed nor deleted, and the run says it was lost.

use super::manifest::labels::{ENVIRONMENT, MANAGED_BY, PROJECT};
use super::manifest::{MANAGER, Scope};
use super::{Cluster, KubernetesError};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, PostParams};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a lease lasts without renewal.
pub const LEASE_SECONDS: i32 = 60;

/// The lease duration: [`LEASE_SECONDS`], or `PIPELINE_KUBE_LEASE_SECONDS` (for tests of renewal; at
/// least 1). It is renewed three times per duration.
pub fn lease_seconds() -> i32 {
    std::env::var("PIPELINE_KUBE_LEASE_SECONDS")
        .ok()
        .and_then(|s| s.parse::<i32>().ok())
        .filter(|&s| s >= 1)
        .unwrap_or(LEASE_SECONDS)
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LeaseError {
    #[error(
        "{project}/{environment} is locked by {holder} (Lease {namespace}/{lease}, expires {expires} unless renewed)"
    )]
    #[diagnostic(
        code(pipeline::kubernetes::locked),
        help(
            "another apply of this environment is running: wait for it to finish; a lease whose holder died expires by itself within {LEASE_SECONDS}s"
        )
    )]
    Locked { project: String, environment: String, holder: String, namespace: String, lease: String, expires: String },
    #[error("the lease {namespace}/{lease} of {project}/{environment} was lost during this run: {why}")]
    #[diagnostic(
        code(pipeline::kubernetes::lease_lost),
        help(
            "another apply of this environment may have run at the same time: `pipeline plan` shows what differs now; the lease was left to its holder"
        )
    )]
    Lost { project: String, environment: String, namespace: String, lease: String, why: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Kube(#[from] KubernetesError),
}

/// A held lease; renewed in the background until released.
#[derive(Clone)]
pub struct Held {
    cluster: Cluster,
    scope: Scope,
    name: String,
    holder: String,
    renew: tokio::task::AbortHandle,
    /// Why the renewal stopped: someone else holds the lease, or it could not be renewed in time.
    lost: Arc<Mutex<Option<String>>>,
}

pub fn lease_name(scope: &Scope) -> String {
    format!("pipeline-{}-{}", scope.project, scope.environment)
}

/// Take the environment's lease for `holder`.
pub async fn acquire(cluster: &Cluster, scope: &Scope, holder: &str) -> Result<Held, LeaseError> {
    let api: Api<Lease> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let name = lease_name(scope);
    let what = format!("lease/{name}");
    let now = Timestamp::now();
    let spec = |transitions: i32| LeaseSpec {
        holder_identity: Some(holder.to_string()),
        lease_duration_seconds: Some(lease_seconds()),
        acquire_time: Some(MicroTime(now)),
        renew_time: Some(MicroTime(now)),
        lease_transitions: Some(transitions),
        ..Default::default()
    };
    let locked = |lease: &Lease| {
        let s = lease.spec.clone().unwrap_or_default();
        LeaseError::Locked {
            project: scope.project.clone(),
            environment: scope.environment.clone(),
            holder: s.holder_identity.clone().unwrap_or_else(|| "someone".into()),
            namespace: cluster.namespace.clone(),
            lease: name.clone(),
            expires: expiry(&s).map_or_else(|| "at an unknown time".into(), |t| describe(t, now)),
        }
    };
    match api.get_opt(&name).await.map_err(|e| cluster.error(e, "get", "Lease", &what))? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(cluster.namespace.clone()),
                    labels: Some(BTreeMap::from([
                        (MANAGED_BY.to_string(), MANAGER.to_string()),
                        (PROJECT.to_string(), scope.project.clone()),
                        (ENVIRONMENT.to_string(), scope.environment.clone()),
                    ])),
                    ..Default::default()
                },
                spec: Some(spec(0)),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => {}
                // Someone created it between our read and our create.
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    let current = api.get(&name).await.map_err(|e| cluster.error(e, "get", "Lease", &what))?;
                    return Err(locked(&current));
                }
                Err(e) => return Err(cluster.error(e, "create", "Lease", &what).into()),
            }
        }
        Some(mut current) => {
            let s = current.spec.clone().unwrap_or_default();
            let held_by_other = s.holder_identity.as_deref().is_some_and(|h| !h.is_empty() && h != holder);
            if held_by_other && expiry(&s).is_none_or(|t| t > now) {
                return Err(locked(&current));
            }
            current.spec = Some(spec(s.lease_transitions.unwrap_or(0).saturating_add(1)));
            match api.replace(&name, &PostParams::default(), &current).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    let now_held = api.get(&name).await.map_err(|e| cluster.error(e, "get", "Lease", &what))?;
                    return Err(locked(&now_held));
                }
                Err(e) => return Err(cluster.error(e, "update", "Lease", &what).into()),
            }
        }
    }
    let lost = Arc::new(Mutex::new(None));
    let renew = {
        let (api, name, holder, lost) = (api.clone(), name.clone(), holder.to_string(), Arc::clone(&lost));
        tokio::spawn(async move {
            let duration = Duration::from_secs(u64::try_from(lease_seconds()).unwrap_or(60));
            let every = duration / 3;
            let mut renewed = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(every).await;
                let why = match renew_once(&api, &name, &holder).await {
                    Ok(()) => {
                        renewed = tokio::time::Instant::now();
                        continue;
                    }
                    Err(Renewal::TakenBy(other)) => format!("it is held by {other} now"),
                    // A passing failure (a 409 from a concurrent write, the network) is retried until the
                    // lease would have expired.
                    Err(Renewal::Failed(_)) if renewed.elapsed() < duration => continue,
                    Err(Renewal::Failed(message)) => {
                        format!("it could not be renewed for {}s: {message}", duration.as_secs())
                    }
                };
                if let Ok(mut l) = lost.lock() {
                    *l = Some(why);
                }
                break;
            }
        })
        .abort_handle()
    };
    Ok(Held { cluster: cluster.clone(), scope: scope.clone(), name, holder: holder.to_string(), renew, lost })
}

pub(super) enum Renewal {
    TakenBy(String),
    Failed(String),
}

/// Renew the lease if it is still ours: read it, then write the new renewTime with the resourceVersion read.
pub(super) async fn renew_once(api: &Api<Lease>, name: &str, holder: &str) -> Result<(), Renewal> {
    let mut current = match api.get_opt(name).await {
        Ok(Some(l)) => l,
        Ok(None) => return Err(Renewal::TakenBy("no one (it was deleted)".into())),
        Err(e) => return Err(Renewal::Failed(e.to_string())),
    };
    let mut spec = current.spec.clone().unwrap_or_default();
    match spec.holder_identity.as_deref() {
        Some(h) if h == holder => {}
        other => return Err(Renewal::TakenBy(other.unwrap_or("no one").to_string())),
    }
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    current.spec = Some(spec);
    api.replace(name, &PostParams::default(), &current).await.map(|_| ()).map_err(|e| Renewal::Failed(e.to_string()))
}

impl Held {
    /// Stop renewing and delete the lease, if it is still ours (the delete is conditional on the
    /// resourceVersion read). A lease someone else holds now is left alone and reported as lost.
    pub async fn release(&self) -> Result<(), LeaseError> {
        self.renew.abort();
        let api: Api<Lease> = Api::namespaced(self.cluster.client.clone(), &self.cluster.namespace);
        let what = format!("lease/{}", self.name);
        let lost = |why: String| LeaseError::Lost {
            project: self.scope.project.clone(),
            environment: self.scope.environment.clone(),
            namespace: self.cluster.namespace.clone(),
            lease: self.name.clone(),
            why,
        };
        let renewal = self.lost.lock().ok().and_then(|l| l.clone());
        let Some(current) = api.get_opt(&self.name).await.map_err(|e| self.cluster.error(e, "get", "Lease", &what))?
        else {
            return match renewal {
                Some(why) => Err(lost(why)),
                None => Ok(()),
            };
        };
        let holder = current.spec.as_ref().and_then(|s| s.holder_identity.clone()).unwrap_or_default();
        if holder != self.holder {
            return Err(lost(renewal.unwrap_or_else(|| format!("it is held by {holder} now"))));
        }
        let params = DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                resource_version: current.metadata.resource_version.clone(),
                uid: current.metadata.uid.clone(),
            }),
            ..Default::default()
        };
        match api.delete(&self.name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {
                return Err(lost("it changed hands while it was being released".into()));
            }
            Err(e) => return Err(self.cluster.error(e, "delete", "Lease", &what).into()),
        }
        match renewal {
            Some(why) => Err(lost(why)),
            None => Ok(()),
        }
    }
}

/// When a lease runs out unless renewed: its last renewal (or acquisition) plus its duration.
pub(super) fn expiry(s: &LeaseSpec) -> Option<Timestamp> {
    let renewed = s.renew_time.as_ref().or(s.acquire_time.as_ref())?.0;
    renewed.checked_add(SignedDuration::from_secs(i64::from(s.lease_duration_seconds.unwrap_or(LEASE_SECONDS)))).ok()
}

/// `2026-11-26T10:00:00Z (in 42s)`.
fn describe(t: Timestamp, now: Timestamp) -> String {
    let secs = t.duration_since(now).as_secs();
    let when = if secs >= 0 { format!("in {secs}s") } else { format!("{}s ago", -secs) };
    format!("{} ({when})", t.strftime("%Y-%m-%dT%H:%M:%SZ"))
}
