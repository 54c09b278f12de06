//! The Kubernetes objects of a service, typed with k8s-openapi and built only from the plan's deploy spec,
//! so the same spec gives the same bytes: no timestamps, no random names, maps sorted.
//!
//! - application, container: a Deployment (rolling update, readiness probe from the healthcheck) and a
//!   Service for its ports;
//! - database: a StatefulSet (a volume claim template `data` when `volume` is set) and a headless Service;
//! - job: a Job named `<service>-<spec hash>` (a new spec is a new run), or a CronJob when `schedule` is set;
//! - every service: its `env` in the ConfigMap `<service>-env`, its secrets in the Secret
//!   `<service>-secrets`, both read with `envFrom`;
//! - a service with public endpoints: an Ingress named after it, one rule per host with `Prefix` paths to
//!   its Service, TLS (and the cert-manager issuer) for the hosts that are real domains when the target
//!   asks for TLS.
//!
//! Every object carries the common labels; workloads carry the spec, its hash and the build key as
//! annotations, and their pod templates the spec hash, so a changed ConfigMap or Secret rolls the pods.

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment, StatefulSet, StatefulSetSpec,
};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, Job, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapEnvSource, Container, ContainerPort, EnvFromSource, ExecAction, HTTPGetAction,
    LocalObjectReference, Namespace, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, Secret, SecretEnvSource, Service, ServicePort, ServiceSpec, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend, IngressSpec,
    IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pipeline_planner::DeploySpec;
use pipeline_planner::model::{IngressTls, ServiceType, Target};
use pipeline_planner::spec::parse_duration;
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};

/// The labels and annotations pipeline puts on the objects it makes.
pub mod labels {
    pub const NAME: &str = "app.kubernetes.io/name";
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    pub const PROJECT: &str = "pipeline.dev/project";
    pub const ENVIRONMENT: &str = "pipeline.dev/environment";
    pub const SERVICE: &str = "pipeline.dev/service";
    pub const SPEC: &str = "pipeline.dev/spec";
    pub const SPEC_HASH: &str = "pipeline.dev/spec-hash";
    pub const KEY: &str = "pipeline.dev/key";
    /// On an Ingress: the cert-manager ClusterIssuer that makes its certificate.
    pub const CLUSTER_ISSUER: &str = "cert-manager.io/cluster-issuer";
    /// On a Secret rendered without its values.
    pub const VALUES_HIDDEN: &str = "pipeline.dev/values";
}
use labels::*;

pub const MANAGER: &str = "pipeline";
/// The `kubernetes.io/dockerconfigjson` Secret workloads pull the mirror's images with.
pub const PULL_SECRET: &str = "pipeline-registry";
/// Size of a database's volume claim (the definitions have no size yet).
pub const VOLUME_SIZE: &str = "1Gi";

/// Where a service's objects go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub project: String,
    pub environment: String,
    pub namespace: String,
    /// Workloads pull with the Secret [`PULL_SECRET`] (the mirror needs credentials).
    pub pull_secret: bool,
    /// `ingressClassName` of the Ingresses made for public endpoints.
    pub ingress_class: Option<String>,
    /// TLS for the public endpoints whose host is a real domain.
    pub tls: Option<IngressTls>,
}

impl Scope {
    /// When the definitions deploy elsewhere (Docker), `render` says which namespace it made up.
    pub fn borrowed_namespace(env: &pipeline_planner::Environment) -> Option<String> {
        match env.target {
            pipeline_planner::model::Target::Kubernetes { .. } => None,
            pipeline_planner::model::Target::Docker { .. } => Some(format!(
                "the definitions deploy to Docker; these manifests use the namespace `{}`",
                Scope::of(env).namespace
            )),
        }
    }

    /// The namespace and labels of an environment: its target's namespace, or `<project>-<env>` when the
    /// definitions deploy to Docker (for `render`).
    pub fn of(env: &pipeline_planner::Environment) -> Scope {
        let (namespace, ingress_class, tls) = match &env.target {
            Target::Kubernetes { namespace, ingress_class, tls, .. } => {
                (namespace.clone(), ingress_class.clone(), tls.clone())
            }
            Target::Docker { .. } => (format!("{}-{}", env.project, env.name), None, None),
        };
        Scope {
            project: env.project.clone(),
            environment: env.name.clone(),
            namespace,
            pull_secret: false,
            ingress_class,
            tls,
        }
    }

    /// `managed-by=pipeline,pipeline.dev/project=…,pipeline.dev/environment=…`: every object of the environment.
    pub fn selector(&self) -> String {
        format!("{MANAGED_BY}={MANAGER},{PROJECT}={},{ENVIRONMENT}={}", self.project, self.environment)
    }

    fn labels(&self, service: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (NAME.into(), service.into()),
            (MANAGED_BY.into(), MANAGER.into()),
            (PROJECT.into(), self.project.clone()),
            (ENVIRONMENT.into(), self.environment.clone()),
            (SERVICE.into(), service.into()),
        ])
    }

    /// The pod selector of a workload: stable for its life (a Deployment's selector cannot change).
    fn pod_selector(&self, service: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (NAME.into(), service.into()),
            (PROJECT.into(), self.project.clone()),
            (ENVIRONMENT.into(), self.environment.clone()),
        ])
    }

    fn meta(&self, name: &str, service: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels(service)),
            ..Default::default()
        }
    }
}

/// One object to apply.
// A handful per service, built once: boxing them would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Namespace(Namespace),
    ConfigMap(ConfigMap),
    Secret(Secret),
    Service(Service),
    Deployment(Deployment),
    StatefulSet(StatefulSet),
    Job(Job),
    CronJob(CronJob),
    Ingress(Ingress),
}

/// The kinds a service can own, in apply order (configuration before the workloads that read it, the
/// Ingress once its Service and pods are there); deleted in the reverse order.
pub const KINDS: [&str; 8] =
    ["ConfigMap", "Secret", "Service", "Deployment", "StatefulSet", "Job", "CronJob", "Ingress"];

impl Object {
    pub fn kind(&self) -> &'static str {
        match self {
            Object::Namespace(_) => "Namespace",
            Object::ConfigMap(_) => "ConfigMap",
            Object::Secret(_) => "Secret",
            Object::Service(_) => "Service",
            Object::Deployment(_) => "Deployment",
            Object::StatefulSet(_) => "StatefulSet",
            Object::Job(_) => "Job",
            Object::CronJob(_) => "CronJob",
            Object::Ingress(_) => "Ingress",
        }
    }

    pub fn api_version(&self) -> &'static str {
        api_version(self.kind())
    }

    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Object::Namespace(o) => &o.metadata,
            Object::ConfigMap(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::Deployment(o) => &o.metadata,
            Object::StatefulSet(o) => &o.metadata,
            Object::Job(o) => &o.metadata,
            Object::CronJob(o) => &o.metadata,
            Object::Ingress(o) => &o.metadata,
        }
    }

    pub fn name(&self) -> &str {
        self.meta().name.as_deref().unwrap_or_default()
    }

    /// `deployment/api`, as kubectl names objects.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind().to_lowercase(), self.name())
    }

    /// The object as JSON, with `apiVersion` and `kind` first.
    pub fn to_json(&self) -> Json {
        let body = match self {
            Object::Namespace(o) => serde_json::to_value(o),
            Object::ConfigMap(o) => serde_json::to_value(o),
            Object::Secret(o) => serde_json::to_value(o),
            Object::Service(o) => serde_json::to_value(o),
            Object::Deployment(o) => serde_json::to_value(o),
            Object::StatefulSet(o) => serde_json::to_value(o),
            Object::Job(o) => serde_json::to_value(o),
            Object::CronJob(o) => serde_json::to_value(o),
            Object::Ingress(o) => serde_json::to_value(o),
        }
        .unwrap_or(Json::Null);
        let mut out = serde_json::Map::new();
        out.insert("apiVersion".into(), Json::from(self.api_version()));
        out.insert("kind".into(), Json::from(self.kind()));
        if let Json::Object(m) = body {
            out.extend(m.into_iter().filter(|(k, _)| k != "apiVersion" && k != "kind"));
        }
        Json::Object(out)
    }
}

pub fn api_version(kind: &str) -> &'static str {
    match kind {
        "Deployment" | "StatefulSet" => "apps/v1",
        "Job" | "CronJob" => "batch/v1",
        "Lease" => "coordination.k8s.io/v1",
        "Ingress" => "networking.k8s.io/v1",
        _ => "v1",
    }
}

/// The namespace object (created when missing).
pub fn namespace(scope: &Scope) -> Object {
    Object::Namespace(Namespace {
        metadata: ObjectMeta {
            name: Some(scope.namespace.clone()),
            labels: Some(BTreeMap::from([(MANAGED_BY.into(), MANAGER.into())])),
            ..Default::default()
        },
        ..Default::default()
    })
}

/// The Secret that lets the cluster pull from the mirror `host` with the credentials that pushed there
/// (`None`: shown without its value, for `render`).
pub fn pull_secret(scope: &Scope, host: &str, login: Option<(&str, &str)>) -> Object {
    let mut labels = BTreeMap::from([
        (MANAGED_BY.to_string(), MANAGER.to_string()),
        (PROJECT.to_string(), scope.project.clone()),
        (ENVIRONMENT.to_string(), scope.environment.clone()),
    ]);
    labels.insert(NAME.into(), PULL_SECRET.into());
    let mut meta = ObjectMeta {
        name: Some(PULL_SECRET.into()),
        namespace: Some(scope.namespace.clone()),
        labels: Some(labels),
        ..Default::default()
    };
    let config = match login {
        Some((user, password)) => {
            use base64::Engine as _;
            let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            serde_json::json!({ "auths": { host: { "username": user, "password": password, "auth": auth } } })
                .to_string()
        }
        None => {
            meta.annotations = Some(BTreeMap::from([(
                VALUES_HIDDEN.into(),
                "hidden (render with --show-secrets to include them)".into(),
            )]));
            String::new()
        }
    };
    Object::Secret(Secret {
        metadata: meta,
        data: Some(BTreeMap::from([(".dockerconfigjson".to_string(), ByteString(config.into_bytes()))])),
        type_: Some("kubernetes.io/dockerconfigjson".into()),
        ..Default::default()
    })
}

/// What a rendered Secret holds.
#[derive(Debug, Clone, Copy)]
pub enum SecretValues<'a> {
    /// The values by variable name (apply, `render --show-secrets`).
    Shown(&'a BTreeMap<String, String>),
    /// Keys only, with empty values (`render`).
    Hidden,
}

/// The name of a service's Job for a spec: a new spec is a new run, the same spec is the same Job.
pub fn job_name(service: &str, spec: &DeploySpec) -> String {
    format!("{service}-{}", &spec.hash()[..8])
}

/// A service's objects cannot be made from its spec, or written out.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ManifestError {
    #[error("service `{service}`: {message}")]
    #[diagnostic(code(pipeline::kubernetes::spec), help("`pipeline render` shows the objects the definitions make"))]
    Spec { service: String, message: String },
    #[error("cannot write {object} as YAML: {message}")]
    #[diagnostic(code(pipeline::kubernetes::yaml))]
    Yaml { object: String, message: String },
}

/// The objects of one service, in apply order. `spec` is the plan's deploy spec; `key` its build key.
pub fn service_objects(
    scope: &Scope,
    service: &str,
    spec: &DeploySpec,
    key: Option<&str>,
    secrets: SecretValues<'_>,
) -> Result<Vec<Object>, ManifestError> {
    objects_of(scope, service, spec, key, secrets)
        .map_err(|message| ManifestError::Spec { service: service.to_string(), message })
}

fn objects_of(
    scope: &Scope,
    service: &str,
    spec: &DeploySpec,
    key: Option<&str>,
    secrets: SecretValues<'_>,
) -> Result<Vec<Object>, String> {
    let hash = spec.hash();
    let mut out = Vec::new();
    let mut env_from = Vec::new();
    if !spec.env.is_empty() {
        let name = format!("{service}-env");
        out.push(Object::ConfigMap(ConfigMap {
            metadata: scope.meta(&name, service),
            data: Some(spec.env.clone()),
            ..Default::default()
        }));
        env_from.push(EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource { name: name.clone(), optional: None }),
            ..Default::default()
        });
    }
    if !spec.secrets.is_empty() {
        let name = format!("{service}-secrets");
        let mut meta = scope.meta(&name, service);
        let data = match secrets {
            SecretValues::Shown(values) => spec
                .secrets
                .keys()
                .map(|var| {
                    let v = values.get(var).ok_or_else(|| format!("no value for the secret variable `{var}`"))?;
                    Ok((var.clone(), ByteString(v.as_bytes().to_vec())))
                })
                .collect::<Result<BTreeMap<_, _>, String>>()?,
            SecretValues::Hidden => {
                meta.annotations = Some(BTreeMap::from([(
                    VALUES_HIDDEN.into(),
                    "hidden (render with --show-secrets to include them)".into(),
                )]));
                spec.secrets.keys().map(|var| (var.clone(), ByteString(vec![]))).collect()
            }
        };
        out.push(Object::Secret(Secret {
            metadata: meta,
            data: Some(data),
            type_: Some("Opaque".into()),
            ..Default::default()
        }));
        env_from.push(EnvFromSource {
            secret_ref: Some(SecretEnvSource { name: name.clone(), optional: None }),
            ..Default::default()
        });
    }

    let mut workload_meta = scope.meta(service, service);
    let mut annotations = BTreeMap::from([
        (SPEC.to_string(), serde_json::to_string(&spec.to_json()).unwrap_or_default()),
        (SPEC_HASH.to_string(), hash.clone()),
    ]);
    if let Some(k) = key {
        annotations.insert(KEY.into(), k.into());
    }
    workload_meta.annotations = Some(annotations);
    let container = container(service, spec, env_from)?;
    // Kubernetes counts whole seconds; left out when not given (the cluster's default, 30 s, applies).
    let grace = spec.stop_grace_period.as_ref().map(|_| {
        let d = spec.stop_grace();
        i64::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(i64::MAX)
    });
    let template = |restart: Option<&str>| PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(scope.labels(service)),
            annotations: Some(BTreeMap::from([(SPEC_HASH.to_string(), hash.clone())])),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container.clone()],
            restart_policy: restart.map(String::from),
            enable_service_links: Some(false),
            termination_grace_period_seconds: grace,
            image_pull_secrets: scope.pull_secret.then(|| vec![LocalObjectReference { name: PULL_SECRET.into() }]),
            ..Default::default()
        }),
    };
    let selector = LabelSelector { match_labels: Some(scope.pod_selector(service)), ..Default::default() };
    let replicas = i32::try_from(spec.replicas).map_err(|_| "too many replicas".to_string())?;
    let service_ports = |headless: bool| -> Option<Object> {
        if spec.ports.is_empty() && !headless {
            return None;
        }
        Some(Object::Service(Service {
            metadata: scope.meta(service, service),
            spec: Some(ServiceSpec {
                cluster_ip: headless.then(|| "None".into()),
                selector: Some(scope.pod_selector(service)),
                ports: Some(
                    spec.ports
                        .iter()
                        .map(|&p| ServicePort {
                            name: Some(format!("tcp-{p}")),
                            port: i32::from(p),
                            target_port: Some(IntOrString::Int(i32::from(p))),
                            protocol: Some("TCP".into()),
                            ..Default::default()
                        })
                        .collect(),
                )
                .filter(|p: &Vec<_>| !p.is_empty()),
                ..Default::default()
            }),
            ..Default::default()
        }))
    };
    match spec.kind {
        ServiceType::Application | ServiceType::Container => {
            out.extend(service_ports(false));
            out.push(Object::Deployment(Deployment {
                metadata: workload_meta,
                spec: Some(DeploymentSpec {
                    replicas: Some(replicas),
                    selector,
                    strategy: Some(DeploymentStrategy {
                        type_: Some("RollingUpdate".into()),
                        rolling_update: Some(RollingUpdateDeployment {
                            max_surge: Some(IntOrString::Int(1)),
                            max_unavailable: Some(IntOrString::Int(0)),
                        }),
                    }),
                    template: template(None),
                    ..Default::default()
                }),
                ..Default::default()
            }));
        }
        ServiceType::Database => {
            out.extend(service_ports(true));
            let claims = spec.volume.as_ref().map(|_| {
                vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some("data".into()),
                        labels: Some(scope.labels(service)),
                        ..Default::default()
                    },
                    spec: Some(PersistentVolumeClaimSpec {
                        access_modes: Some(vec!["ReadWriteOnce".into()]),
                        resources: Some(VolumeResourceRequirements {
                            requests: Some(BTreeMap::from([("storage".into(), Quantity(VOLUME_SIZE.into()))])),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]
            });
            out.push(Object::StatefulSet(StatefulSet {
                metadata: workload_meta,
                spec: Some(StatefulSetSpec {
                    replicas: Some(replicas),
                    selector,
                    service_name: Some(service.into()),
                    template: template(None),
                    volume_claim_templates: claims,
                    ..Default::default()
                }),
                ..Default::default()
            }));
        }
        ServiceType::Job => {
            let job_spec = JobSpec { backoff_limit: Some(0), template: template(Some("Never")), ..Default::default() };
            match &spec.schedule {
                Some(schedule) => out.push(Object::CronJob(CronJob {
                    metadata: workload_meta,
                    spec: Some(CronJobSpec {
                        schedule: schedule.clone(),
                        concurrency_policy: Some("Forbid".into()),
                        job_template: JobTemplateSpec {
                            metadata: Some(ObjectMeta { labels: Some(scope.labels(service)), ..Default::default() }),
                            spec: Some(job_spec),
                        },
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
                None => {
                    workload_meta.name = Some(job_name(service, spec));
                    out.push(Object::Job(Job { metadata: workload_meta, spec: Some(job_spec), ..Default::default() }));
                }
            }
        }
    }
    out.extend(ingress(scope, service, spec));
    Ok(out)
}

/// The Ingress of a service with public endpoints: one rule per host (in name order), each endpoint a
/// `Prefix` path to the service's port on its Service. With the target's `tls`, the hosts that are real
/// domains are served over TLS from `secretName` (`<service>-tls` by default), which the cert-manager
/// `clusterIssuer`, when given, fills in.
fn ingress(scope: &Scope, service: &str, spec: &DeploySpec) -> Option<Object> {
    if spec.endpoints.is_empty() {
        return None;
    }
    // An Ingress host is a DNS name, never an IP address (the API server refuses one): an endpoint on an
    // address goes in the rule without a host, which answers whatever host a request names.
    let mut hosts: BTreeMap<Option<&str>, Vec<HTTPIngressPath>> = BTreeMap::new();
    for e in &spec.endpoints {
        let host = Some(e.host.as_str()).filter(|h| h.parse::<std::net::IpAddr>().is_err());
        let paths = hosts.entry(host).or_default();
        // Two addresses with the same path: one path in the hostless rule.
        if paths.iter().any(|p| p.path.as_deref() == Some(e.path.as_str())) {
            continue;
        }
        paths.push(HTTPIngressPath {
            path: Some(e.path.clone()),
            path_type: "Prefix".into(),
            backend: IngressBackend {
                service: Some(IngressServiceBackend {
                    name: service.into(),
                    port: Some(ServiceBackendPort { number: Some(i32::from(e.port)), name: None }),
                }),
                resource: None,
            },
        });
    }
    // Local hosts (`*.localhost`, addresses) get no certificate: plain HTTP, as `Target::url` says.
    let secure: BTreeSet<String> = spec.endpoints.iter().filter(|e| !e.is_local()).map(|e| e.host.clone()).collect();
    let mut metadata = scope.meta(service, service);
    let mut tls = None;
    if let (Some(t), false) = (&scope.tls, secure.is_empty()) {
        if let Some(issuer) = &t.cluster_issuer {
            metadata.annotations = Some(BTreeMap::from([(CLUSTER_ISSUER.to_string(), issuer.clone())]));
        }
        tls = Some(vec![IngressTLS {
            hosts: Some(secure.into_iter().collect()),
            secret_name: Some(t.secret_name.clone().unwrap_or_else(|| format!("{service}-tls"))),
        }]);
    }
    Some(Object::Ingress(Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: scope.ingress_class.clone(),
            rules: Some(
                hosts
                    .into_iter()
                    .map(|(host, paths)| IngressRule {
                        host: host.map(String::from),
                        http: Some(HTTPIngressRuleValue { paths }),
                    })
                    .collect(),
            ),
            tls,
            default_backend: None,
        }),
        ..Default::default()
    }))
}

fn container(service: &str, spec: &DeploySpec, env_from: Vec<EnvFromSource>) -> Result<Container, String> {
    let resources = spec.resources.as_ref().map(|r| {
        let mut m = BTreeMap::new();
        if let Some(c) = &r.cpu {
            m.insert("cpu".to_string(), Quantity(c.clone()));
        }
        if let Some(mem) = &r.memory {
            m.insert("memory".to_string(), Quantity(mem.clone()));
        }
        // Requests equal to limits: what a service is given is what it may use (the Guaranteed class).
        ResourceRequirements { limits: Some(m.clone()), requests: Some(m), ..Default::default() }
    });
    let volume_mounts = match (spec.kind, &spec.volume) {
        (ServiceType::Database, Some(path)) => {
            Some(vec![VolumeMount { name: "data".into(), mount_path: path.clone(), ..Default::default() }])
        }
        _ => None,
    };
    Ok(Container {
        name: service.into(),
        image: Some(spec.image.clone()),
        // Tags are content keys: an image never changes under its tag.
        image_pull_policy: Some("IfNotPresent".into()),
        command: spec.command.clone(),
        args: spec.args.clone(),
        ports: Some(
            spec.ports
                .iter()
                .map(|&p| ContainerPort {
                    container_port: i32::from(p),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                })
                .collect(),
        )
        .filter(|p: &Vec<_>| !p.is_empty()),
        env_from: Some(env_from).filter(|e| !e.is_empty()),
        resources,
        readiness_probe: spec.healthcheck.as_ref().map(probe).transpose()?,
        volume_mounts,
        ..Default::default()
    })
}

fn probe(h: &pipeline_planner::model::Healthcheck) -> Result<Probe, String> {
    // Kubernetes counts whole seconds, at least one.
    let secs = |s: &str| -> Result<i32, String> {
        let d = parse_duration(s).ok_or_else(|| format!("healthcheck duration `{s}` is not a duration"))?;
        let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
        i32::try_from(whole).map_err(|_| format!("healthcheck duration `{s}` is too long"))
    };
    let mut p = Probe {
        period_seconds: Some(secs(&h.interval)?.max(1)),
        timeout_seconds: Some(secs(&h.timeout)?.max(1)),
        failure_threshold: Some(i32::try_from(h.retries.max(1)).unwrap_or(i32::MAX)),
        ..Default::default()
    };
    let start = secs(&h.start_period)?;
    if start > 0 {
        p.initial_delay_seconds = Some(start);
    }
    match (&h.command, &h.http) {
        (Some(cmd), _) => p.exec = Some(ExecAction { command: Some(cmd.clone()) }),
        (None, Some(http)) => {
            p.http_get = Some(HTTPGetAction {
                path: Some(http.path.clone()),
                port: IntOrString::Int(i32::from(http.port)),
                ..Default::default()
            })
        }
        (None, None) => return Err("a healthcheck needs `command` or `http`".into()),
    }
    Ok(p)
}

/// Objects as a YAML stream (`---` between documents), ready for `kubectl apply -f -`.
pub fn to_yaml(objects: &[Object]) -> Result<String, ManifestError> {
    let mut options = serde_saphyr::SerializerOptions::default();
    // Long one-line values (image references, the spec annotation) stay on one line, as kubectl writes them;
    // values with newlines (scripts) stay literal blocks.
    options.folded_wrap_chars = usize::MAX;
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        let doc = serde_saphyr::to_string_with_options(&o.to_json(), options.clone())
            .map_err(|e| ManifestError::Yaml { object: o.id(), message: e.to_string() })?;
        out.push_str(&doc);
        if !doc.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}
