//! One build per key across runs that deploy to one cluster: the Kubernetes side of [`crate::claim`].
//! Runs on different machines (CI runners, laptops) share no engine; what they share is the cluster. A
//! claim is a `coordination.k8s.io` Lease `pipeline-build-<key>` in the namespace [`NAMESPACE`] (created
//! when missing), so every environment of every project on the cluster meets in one place, as werf's
//! synchronisation namespace does.
//!
//! Creating the Lease is the atomic step (the server keeps names unique). Its holder renews it every
//! [`Timing::renew`] while it builds; a Lease not renewed within its `leaseDurationSeconds` (its run was
//! killed), or held by a process of this host that has ended, is taken over by a replace that carries
//! the resourceVersion read, so of two takers only one wins. Release deletes it, on the same condition,
//! and only while it is still ours.

use super::manifest::labels::MANAGED_BY;
use super::manifest::{MANAGER, Object};
use super::{Cluster, KubernetesError};
use crate::claim::{Holder, Timing};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use std::collections::BTreeMap;

/// The namespace of the build claims of every project on the cluster.
pub const NAMESPACE: &str = "pipeline-builds";
/// The annotation holding the whole key (a label value cannot hold 64 characters).
const KEY: &str = "pipeline.build/key";
/// The label that marks a Lease as a build claim.
const CLAIM: &str = "pipeline.build/claim";

fn lease_name(key: &str) -> String {
    format!("pipeline-build-{key}")
}

/// A build claim this run holds on the cluster; renewed until released (or dropped: a cancelled build).
pub struct ClusterClaim {
    api: Api<Lease>,
    name: String,
    holder: String,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

/// What claiming a key on the cluster found.
pub enum ClusterClaimed {
    Mine(Box<ClusterClaim>),
    Theirs(Holder),
}

fn seconds(d: std::time::Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

fn lease_spec(holder: &str, timing: Timing, transitions: i32) -> LeaseSpec {
    let now = MicroTime(Timestamp::now());
    LeaseSpec {
        holder_identity: Some(holder.to_string()),
        lease_duration_seconds: Some(seconds(timing.ttl)),
        acquire_time: Some(now.clone()),
        renew_time: Some(now),
        lease_transitions: Some(transitions),
        ..Default::default()
    }
}

/// Whether a claim's holder let it run out, or is a process of this host that has ended.
fn dead(spec: &LeaseSpec) -> bool {
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    holder.is_empty()
        || crate::target::holder_is_gone(holder)
        || super::lease::expiry(spec).is_none_or(|expires| expires <= Timestamp::now())
}

fn holder_of(spec: &LeaseSpec) -> Holder {
    let age = spec
        .acquire_time
        .as_ref()
        .map_or(0, |t| u64::try_from(Timestamp::now().duration_since(t.0).as_secs()).unwrap_or(0));
    Holder { holder: spec.holder_identity.clone().unwrap_or_else(|| "an unknown run".into()), age }
}

/// The claims' namespace, made with the first claim on a cluster.
fn namespace() -> Object {
    Object::Namespace(Namespace {
        metadata: ObjectMeta {
            name: Some(NAMESPACE.into()),
            labels: Some(BTreeMap::from([(MANAGED_BY.to_string(), MANAGER.to_string())])),
            ..Default::default()
        },
        ..Default::default()
    })
}

/// Claim `key` on the cluster for `holder`, taking over a claim that ran out or whose holder has ended.
pub async fn claim(
    cluster: &Cluster,
    key: &str,
    holder: &str,
    timing: Timing,
) -> Result<ClusterClaimed, KubernetesError> {
    let api: Api<Lease> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let name = lease_name(key);
    let what = format!("lease/{name} in namespace {NAMESPACE}");
    let fail = |e, verb| cluster.error(e, verb, "Lease", &what);
    let mut namespace_made = false;
    let mut last = String::new();
    for _ in 0..20 {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(NAMESPACE.into()),
                labels: Some(BTreeMap::from([
                    (MANAGED_BY.to_string(), MANAGER.to_string()),
                    (CLAIM.to_string(), "true".to_string()),
                ])),
                annotations: Some(BTreeMap::from([(KEY.to_string(), key.to_string())])),
                ..Default::default()
            },
            spec: Some(lease_spec(holder, timing, 0)),
        };
        match api.create(&PostParams::default(), &lease).await {
            Ok(_) => return Ok(ClusterClaimed::Mine(Box::new(ClusterClaim::renewed(api, name, holder, timing)))),
            // The namespace is missing (a first claim on this cluster).
            Err(kube::Error::Api(s)) if s.code == 404 && !namespace_made => {
                cluster.ensure_namespace(&namespace()).await?;
                namespace_made = true;
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let Some(mut current) = api.get_opt(&name).await.map_err(|e| fail(e, "get"))? else {
                    last = "released meanwhile".into();
                    continue;
                };
                let spec = current.spec.clone().unwrap_or_default();
                if !dead(&spec) {
                    return Ok(ClusterClaimed::Theirs(holder_of(&spec)));
                }
                last = format!("{} expired or ended", holder_of(&spec).holder);
                current.spec = Some(lease_spec(holder, timing, spec.lease_transitions.unwrap_or(0).saturating_add(1)));
                match api.replace(&name, &PostParams::default(), &current).await {
                    Ok(_) => {
                        return Ok(ClusterClaimed::Mine(Box::new(ClusterClaim::renewed(api, name, holder, timing))));
                    }
                    // Another run took it over first, or it was released: look again.
                    Err(kube::Error::Api(s)) if s.code == 409 || s.code == 404 => continue,
                    Err(e) => return Err(fail(e, "update")),
                }
            }
            Err(e) => return Err(fail(e, "create")),
        }
    }
    Err(KubernetesError::Request { what, message: format!("the claim kept changing hands ({last})") })
}

/// The live build claims on the cluster: key -> holder (for the plan's "being built by"). A cluster
/// without the namespace has none.
pub async fn list(cluster: &Cluster) -> Result<BTreeMap<String, Holder>, KubernetesError> {
    let api: Api<Lease> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    let found = match api.list(&ListParams::default().labels(&format!("{CLAIM}=true"))).await {
        Ok(list) => list.items,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(BTreeMap::new()),
        Err(e) => return Err(cluster.error(e, "list", "Lease", &format!("leases in namespace {NAMESPACE}"))),
    };
    let mut out = BTreeMap::new();
    for lease in found {
        let Some(key) = lease.metadata.annotations.as_ref().and_then(|a| a.get(KEY)) else { continue };
        let spec = lease.spec.clone().unwrap_or_default();
        if !dead(&spec) {
            out.insert(key.clone(), holder_of(&spec));
        }
    }
    Ok(out)
}

/// Delete the claim if it is still ours (conditional on the resourceVersion read).
async fn delete_if_ours(api: &Api<Lease>, name: &str, holder: &str) {
    let Ok(Some(current)) = api.get_opt(name).await else { return };
    if current.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) != Some(holder) {
        return;
    }
    let params = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            resource_version: current.metadata.resource_version.clone(),
            uid: current.metadata.uid.clone(),
        }),
        ..Default::default()
    };
    // Gone or changed hands meanwhile: nothing of ours is left to delete.
    let _ = api.delete(name, &params).await;
}

impl ClusterClaim {
    fn renewed(api: Api<Lease>, name: String, holder: &str, timing: Timing) -> ClusterClaim {
        let (a, n, h, every) = (api.clone(), name.clone(), holder.to_string(), timing.renew);
        let renewer = tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                // A renewal that fails is tried again at the next one; the claim lasts its duration. One
                // someone else holds now is left to them (the renewal checks).
                let _ = super::lease::renew_once(&a, &n, &h).await;
            }
        });
        ClusterClaim { api, name, holder: holder.to_string(), renewer: Some(renewer) }
    }

    pub async fn release(mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        delete_if_ours(&self.api, &self.name, &self.holder).await;
        self.name.clear();
    }
}

impl Drop for ClusterClaim {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        if !self.name.is_empty()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let (api, name, holder) = (self.api.clone(), std::mem::take(&mut self.name), self.holder.clone());
            rt.spawn(async move { delete_if_ours(&api, &name, &holder).await });
        }
    }
}
