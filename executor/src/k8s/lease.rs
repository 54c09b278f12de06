//! One apply at a time per environment: a `coordination.k8s.io` Lease `pipeline-<project>-<env>` in the
//! namespace, held by `user@host pid N`, renewed while the apply runs and deleted at the end. A lease not
//! renewed within its duration (its holder died) is taken over; the update carries the resourceVersion
//! read, so of two takers only one wins.

use super::manifest::{ENVIRONMENT, MANAGED_BY, MANAGER, PROJECT, Scope};
use super::{Cluster, KubeError};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, PostParams};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a lease lasts without renewal.
pub const LEASE_SECONDS: i32 = 60;

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
    #[error(transparent)]
    #[diagnostic(transparent)]
    Kube(#[from] KubeError),
}

/// A held lease; renewed in the background until released.
#[derive(Clone)]
pub struct Held {
    api: Api<Lease>,
    name: String,
    renew: tokio::task::AbortHandle,
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
        lease_duration_seconds: Some(LEASE_SECONDS),
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
    let renew = {
        let api = api.clone();
        let name = name.clone();
        tokio::spawn(async move {
            let every = Duration::from_secs(u64::try_from(LEASE_SECONDS / 3).unwrap_or(20));
            loop {
                tokio::time::sleep(every).await;
                let patch = serde_json::json!({ "spec": { "renewTime": MicroTime(Timestamp::now()) } });
                let _ = api.patch(&name, &kube::api::PatchParams::default(), &kube::api::Patch::Merge(&patch)).await;
            }
        })
        .abort_handle()
    };
    Ok(Held { api, name, renew })
}

impl Held {
    /// Stop renewing and delete the lease.
    pub async fn release(&self) {
        self.renew.abort();
        let _ = self.api.delete(&self.name, &DeleteParams::default()).await;
    }
}

fn expiry(s: &LeaseSpec) -> Option<Timestamp> {
    let renewed = s.renew_time.as_ref().or(s.acquire_time.as_ref())?.0;
    renewed.checked_add(SignedDuration::from_secs(i64::from(s.lease_duration_seconds.unwrap_or(LEASE_SECONDS)))).ok()
}

/// `2026-11-26T10:00:00Z (in 42s)`.
fn describe(t: Timestamp, now: Timestamp) -> String {
    let secs = t.duration_since(now).as_secs();
    let when = if secs >= 0 { format!("in {secs}s") } else { format!("{}s ago", -secs) };
    format!("{} ({when})", t.strftime("%Y-%m-%dT%H:%M:%SZ"))
}
