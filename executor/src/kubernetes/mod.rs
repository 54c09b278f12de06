//! The Kubernetes target (`std.kubernetes { namespace; context; ingressClassName; tls; }`): typed manifests
//! ([`manifest`], with an Ingress for a service's public endpoints),
//! server-side apply with the field manager `pipeline`, rollout waits that explain a failure with pod
//! states and events ([`wait`]), live state and object-level diffs for `plan` ([`live`]), a Lease per
//! environment ([`lease`]), and [`KubernetesTarget`], the [`Target`](crate::target::Target) that ties them.
//!
//! Everything goes through a [`Cluster`]: a kube `Client` (from kubeconfig, `--context` or in-cluster, or
//! a mock service in tests) and the namespace of the environment.

pub mod build_claim;
pub mod deploy;
pub mod lease;
pub mod live;
pub mod logs;
pub mod manifest;
pub mod wait;

use crate::target::{Endpoint, EnvironmentLock, Inventory, Item, Removed, Run, ServiceDeploy, Target};
use deploy::DeployError;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, Status};
use kube::{Client, Config};
use live::KubernetesLive;
use manifest::{MANAGER, Object, Scope};
use pipeline_planner::live::LiveState;
use pipeline_planner::plan::DeployAction;
use serde_json::Value as Json;

/// What went wrong talking to a cluster, with the object or permission at fault.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum KubernetesError {
    #[error("cannot load the Kubernetes configuration{}: {message}", context.as_ref().map(|c| format!(" for context `{c}`")).unwrap_or_default())]
    #[diagnostic(
        code(pipeline::kubernetes::config),
        help(
            "point KUBECONFIG at a kubeconfig file (kind and k3d write one), or pass `--context NAME` naming one of its contexts"
        )
    )]
    Config { context: Option<String>, message: String },

    #[error("the Kubernetes API server {server} cannot be reached: {message}")]
    #[diagnostic(
        code(pipeline::kubernetes::unreachable),
        help(
            "check that the cluster runs and that `kubectl get namespaces` works with the same kubeconfig and context"
        )
    )]
    Unreachable { server: String, message: String },

    #[error("forbidden: cannot {verb} {resource} in namespace {namespace} ({message})")]
    #[diagnostic(
        code(pipeline::kubernetes::forbidden),
        help(
            "the missing permission is `{verb}` on `{resource}`: grant it with a Role bound to this user, e.g. `kubectl create role pipeline --verb={verb} --resource={resource} -n {namespace}`"
        )
    )]
    Forbidden { verb: String, resource: String, namespace: String, message: String },

    #[error("{object}: fields owned by another field manager: {}", fields.iter().map(|(f, m)| format!("{f} (owned by `{m}`)")).collect::<Vec<_>>().join(", "))]
    #[diagnostic(
        code(pipeline::kubernetes::conflict),
        help(
            "another tool set these fields since pipeline last applied them; pass `--force-conflicts` to take them over, or stop the other tool from managing them"
        )
    )]
    Conflict { object: String, fields: Vec<(String, String)> },

    #[error("{what}: the API server answered {code}: {message}")]
    #[diagnostic(code(pipeline::kubernetes::api))]
    Api { what: String, code: u16, message: String },

    #[error("{what}: {message}")]
    #[diagnostic(code(pipeline::kubernetes::request))]
    Request { what: String, message: String },
}

/// A cluster and the namespace an environment lives in.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    /// For messages: the API server's URL.
    pub server: String,
    pub namespace: String,
}

/// Connect with kube's standard configuration: KUBECONFIG (or `~/.kube/config`) and its current context,
/// the given context, or the in-cluster service account.
pub async fn connect(context: Option<&str>, namespace: &str) -> Result<Cluster, KubernetesError> {
    let config_error = |message: String| KubernetesError::Config { context: context.map(String::from), message };
    let config = match context {
        Some(c) => {
            let opts = kube::config::KubeConfigOptions { context: Some(c.to_string()), ..Default::default() };
            Config::from_kubeconfig(&opts).await.map_err(|e| config_error(e.to_string()))?
        }
        None => Config::infer().await.map_err(|e| config_error(e.to_string()))?,
    };
    let server = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|e| config_error(e.to_string()))?;
    Ok(Cluster { client, server, namespace: namespace.to_string() })
}

/// The API resource of a kind this target manages.
pub fn resource(kind: &str) -> Option<ApiResource> {
    Some(match kind {
        "Namespace" => ApiResource::erase::<Namespace>(&()),
        "ConfigMap" => ApiResource::erase::<ConfigMap>(&()),
        "Secret" => ApiResource::erase::<Secret>(&()),
        "Service" => ApiResource::erase::<Service>(&()),
        "Deployment" => ApiResource::erase::<Deployment>(&()),
        "StatefulSet" => ApiResource::erase::<StatefulSet>(&()),
        "Job" => ApiResource::erase::<Job>(&()),
        "CronJob" => ApiResource::erase::<CronJob>(&()),
        "Ingress" => ApiResource::erase::<k8s_openapi::api::networking::v1::Ingress>(&()),
        "Lease" => ApiResource::erase::<k8s_openapi::api::coordination::v1::Lease>(&()),
        "PersistentVolumeClaim" => ApiResource::erase::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(&()),
        "Pod" => ApiResource::erase::<k8s_openapi::api::core::v1::Pod>(&()),
        _ => return None,
    })
}

/// `deployments.apps`, as RBAC names a resource.
pub fn rbac_name(ar: &ApiResource) -> String {
    if ar.group.is_empty() { ar.plural.clone() } else { format!("{}.{}", ar.plural, ar.group) }
}

impl Cluster {
    pub fn for_client(client: Client, namespace: &str) -> Cluster {
        Cluster { client, server: "(mock)".into(), namespace: namespace.into() }
    }

    fn dynamic(&self, kind: &str) -> Result<(Api<DynamicObject>, ApiResource), KubernetesError> {
        let ar = resource(kind).ok_or_else(|| KubernetesError::Request {
            what: kind.to_string(),
            message: "not a kind pipeline manages".into(),
        })?;
        let api = if kind == "Namespace" {
            Api::all_with(self.client.clone(), &ar)
        } else {
            Api::namespaced_with(self.client.clone(), &self.namespace, &ar)
        };
        Ok((api, ar))
    }

    /// Turn a client error into one that names the object, the permission or the server.
    pub fn error(&self, e: kube::Error, verb: &str, kind: &str, what: &str) -> KubernetesError {
        match e {
            kube::Error::Api(status) => self.status_error(*status, verb, kind, what),
            kube::Error::HyperError(e) => {
                KubernetesError::Unreachable { server: self.server.clone(), message: crate::error_chain(&e) }
            }
            kube::Error::Service(e) => {
                KubernetesError::Unreachable { server: self.server.clone(), message: crate::error_chain(e.as_ref()) }
            }
            other => KubernetesError::Request { what: what.to_string(), message: other.to_string() },
        }
    }

    pub fn status_error(&self, status: Status, verb: &str, kind: &str, what: &str) -> KubernetesError {
        let resource = resource(kind).map_or_else(|| kind.to_lowercase(), |ar| rbac_name(&ar));
        match status.code {
            403 => KubernetesError::Forbidden {
                verb: verb.to_string(),
                resource,
                namespace: self.namespace.clone(),
                message: status.message,
            },
            409 => {
                let fields: Vec<(String, String)> = status
                    .details
                    .iter()
                    .flat_map(|d| d.causes.iter())
                    .filter(|c| c.reason == "FieldManagerConflict")
                    .map(|c| (c.field.clone(), manager_of(&c.message)))
                    .collect();
                if fields.is_empty() {
                    KubernetesError::Api { what: what.to_string(), code: 409, message: status.message }
                } else {
                    KubernetesError::Conflict { object: what.to_string(), fields }
                }
            }
            code => KubernetesError::Api { what: what.to_string(), code, message: status.message },
        }
    }

    /// Server-side apply of one object as the field manager `pipeline` (taking conflicting fields when
    /// `force`); the object as the server stored it.
    pub async fn apply(&self, obj: &Object, force: bool) -> Result<DynamicObject, KubernetesError> {
        let (api, _) = self.dynamic(obj.kind())?;
        let mut params = PatchParams::apply(MANAGER);
        if force {
            params = params.force();
        }
        api.patch(obj.name(), &params, &Patch::Apply(obj.to_json()))
            .await
            .map_err(|e| self.error(e, "patch", obj.kind(), &obj.id()))
    }

    /// One object, or `None` when there is none of that name.
    pub async fn get(&self, kind: &str, name: &str) -> Result<Option<DynamicObject>, KubernetesError> {
        let (api, _) = self.dynamic(kind)?;
        api.get_opt(name).await.map_err(|e| self.error(e, "get", kind, &format!("{}/{name}", kind.to_lowercase())))
    }

    /// Objects of a kind matching a label selector.
    pub async fn list(&self, kind: &str, selector: &str) -> Result<Vec<DynamicObject>, KubernetesError> {
        let (api, _) = self.dynamic(kind)?;
        api.list(&ListParams::default().labels(selector))
            .await
            .map(|l| l.items)
            .map_err(|e| self.error(e, "list", kind, &format!("{} ({selector})", kind.to_lowercase())))
    }

    /// Delete an object and what it owns (in the background); one already gone is not an error.
    pub async fn delete(&self, kind: &str, name: &str) -> Result<(), KubernetesError> {
        let (api, _) = self.dynamic(kind)?;
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(self.error(e, "delete", kind, &format!("{}/{name}", kind.to_lowercase()))),
        }
    }

    /// Create the namespace when it is missing. A user allowed into the namespace but not to read
    /// namespaces goes on: the requests that follow say what is missing.
    pub async fn ensure_namespace(&self, ns: &Object) -> Result<bool, KubernetesError> {
        match self.get("Namespace", ns.name()).await {
            Ok(Some(_)) => Ok(false),
            Ok(None) => self.apply(ns, false).await.map(|_| true),
            Err(KubernetesError::Forbidden { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// `conflict with "kubectl-edit" using apps/v1` -> `kubectl-edit`.
fn manager_of(message: &str) -> String {
    message.split('"').nth(1).map_or_else(|| message.to_string(), String::from)
}

/// A JSON value at a dotted path (`status.readyReplicas`).
pub(crate) fn at<'a>(v: &'a Json, path: &str) -> Option<&'a Json> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// One environment in a namespace of a cluster.
pub struct KubernetesTarget {
    pub cluster: Cluster,
    pub scope: Scope,
    /// Take fields another field manager owns (`--force-conflicts`).
    pub force_conflicts: bool,
    /// The mirror's host and the user name and password that push there: kept in the namespace as the
    /// Secret [`manifest::PULL_SECRET`], which the workloads pull with.
    pub pull: Option<(String, String, String)>,
    /// The pull Secret was applied in this run.
    pub pull_applied: tokio::sync::OnceCell<()>,
}

impl KubernetesTarget {
    /// Connect with `context` (else the kubeconfig's current one).
    pub async fn connect(
        mut scope: Scope,
        context: Option<&str>,
        force_conflicts: bool,
        pull: Option<(String, String, String)>,
    ) -> Result<KubernetesTarget, KubernetesError> {
        let cluster = connect(context, &scope.namespace).await?;
        // Without a login here, workloads keep pulling with the Secret another machine's apply left.
        scope.pull_secret = match pull {
            Some(_) => true,
            None => cluster.get("Secret", manifest::PULL_SECRET).await.ok().flatten().is_some(),
        };
        Ok(KubernetesTarget { cluster, scope, force_conflicts, pull, pull_applied: Default::default() })
    }
}

impl EnvironmentLock for lease::Held {
    type Error = lease::LeaseError;

    async fn release(&self) -> Result<(), lease::LeaseError> {
        lease::Held::release(self).await
    }
}

impl Target for KubernetesTarget {
    type Error = DeployError;
    type Lock = lease::Held;

    fn describe(&self) -> String {
        format!("namespace {} on {}", self.scope.namespace, self.cluster.server)
    }

    fn engine(&self) -> Option<bollard::Docker> {
        None
    }

    /// Runs deploying to this cluster from other machines share no engine: they meet on the cluster.
    fn build_claims(&self, engine: &bollard::Docker) -> crate::claim::Claims {
        crate::claim::Claims::Cluster {
            cluster: self.cluster.clone(),
            engine: engine.clone(),
            timing: crate::claim::Timing::default(),
        }
    }

    async fn lock(&self, holder: &str) -> Result<lease::Held, DeployError> {
        self.cluster.ensure_namespace(&manifest::namespace(&self.scope)).await?;
        Ok(lease::acquire(&self.cluster, &self.scope, holder).await?)
    }

    async fn observe(&self) -> Result<Box<dyn LiveState + Send + Sync>, DeployError> {
        let objects = live::observe(&self.cluster, &self.scope).await?;
        // Claims only say who is building: a failure to list them changes no decision.
        let building = build_claim::list(&self.cluster)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|(k, h)| (k, h.to_string()))
            .collect();
        Ok(Box::new(KubernetesLive { scope: self.scope.clone(), objects, building }))
    }

    async fn deploy(&self, service: &ServiceDeploy, run: &Run) -> Result<(), DeployError> {
        // The workloads pull with it: keep it current, once per run, before the first of them.
        if let Some((host, user, password)) = &self.pull {
            let secret = manifest::pull_secret(&self.scope, host, Some((user, password)));
            self.pull_applied
                .get_or_try_init(|| async { self.cluster.apply(&secret, self.force_conflicts).await.map(|_| ()) })
                .await?;
        }
        self.deploy_service(service, run).await
    }

    async fn retire(&self, service: &ServiceDeploy, run: &Run) -> Result<(), DeployError> {
        let gone = ServiceDeploy { action: DeployAction::Delete, spec: None, ..service.clone() };
        self.deploy_service(&gone, run).await
    }

    async fn inventory(&self) -> Result<Inventory, DeployError> {
        let objects = live::observe(&self.cluster, &self.scope).await?;
        let claims = self.cluster.list("PersistentVolumeClaim", &self.scope.selector()).await?;
        Ok(Inventory {
            place: Some(format!("namespace {}", self.scope.namespace)),
            unit: "object",
            items: objects
                .iter()
                .map(|o| Item {
                    name: o.id(),
                    // The environment's own objects (the pull Secret) belong to no service.
                    service: if o.service.is_empty() { "(environment)".into() } else { o.service.clone() },
                    state: None,
                })
                .collect(),
            volumes: claims.iter().filter_map(|c| c.metadata.name.clone()).collect(),
        })
    }

    async fn destroy(
        &self,
        _stages: &[String],
        volumes: bool,
        on: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Removed, DeployError> {
        let objects = live::observe(&self.cluster, &self.scope).await?;
        let services: std::collections::BTreeSet<String> = objects.iter().map(|o| o.service.clone()).collect();
        let items = deploy::destroy(&self.cluster, &self.scope, |o| on(o)).await?;
        let claims = self.cluster.list("PersistentVolumeClaim", &self.scope.selector()).await?;
        let names: Vec<String> = claims.iter().filter_map(|c| c.metadata.name.clone()).collect();
        let mut removed = Removed { services: services.into_iter().collect(), items, ..Default::default() };
        if volumes {
            for c in &names {
                self.cluster.delete("PersistentVolumeClaim", c).await?;
            }
            removed.volumes_removed = names;
        } else {
            removed.volumes_kept = names;
        }
        Ok(removed)
    }

    async fn status(&self) -> Result<Vec<crate::target::ServiceStatus>, DeployError> {
        let objects = live::observe(&self.cluster, &self.scope).await?;
        let pods = self.cluster.list("Pod", &self.scope.selector()).await?;
        Ok(live::status(&objects, &pods, &self.scope))
    }

    async fn logs(
        &self,
        services: &[String],
        options: &crate::logs::LogOptions,
    ) -> Result<crate::logs::LogStream, DeployError> {
        Ok(logs::logs(&self.cluster, &self.scope, services, options).await?)
    }

    fn kept_previous(e: &DeployError) -> bool {
        matches!(e, DeployError::RolledBack(_))
    }

    async fn endpoints(&self) -> Result<Vec<Endpoint>, DeployError> {
        // Services answer inside the cluster, and nothing publishes a port of a pod. Public endpoints are
        // served by the Ingress controller at the addresses `Target::url` gives from the definitions, which
        // the summary and `status` already show: listing them here would show them twice.
        Ok(vec![])
    }
}
