//! The typed model of an environment, read from an evaluated definition with every field checked: unknown
//! fields (with a did-you-mean), wrong types, missing or conflicting fields, each reported at the
//! attribute in the user's file.

use crate::error::{Diag, Error, Result};
use pipeline_lang::span::Span;
use pipeline_lang::value::Attr;
use pipeline_lang::{Attrs, Evaluator, Thunk, Value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The stages used when an environment lists none, in order (also `std.defaultStages`).
pub const DEFAULT_STAGES: [&str; 4] =
    ["0.DEFAULT DATABASE", "1.DEFAULT JOB", "2.DEFAULT CONTAINER", "3.DEFAULT APPLICATION"];

/// Builds and deploys at once unless the definition says otherwise.
pub const DEFAULT_PARALLELISM: usize = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceType {
    Database,
    Job,
    Container,
    Application,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::Database => "database",
            ServiceType::Job => "job",
            ServiceType::Container => "container",
            ServiceType::Application => "application",
        }
    }

    pub fn default_stage(self) -> &'static str {
        match self {
            ServiceType::Database => DEFAULT_STAGES[0],
            ServiceType::Job => DEFAULT_STAGES[1],
            ServiceType::Container => DEFAULT_STAGES[2],
            ServiceType::Application => DEFAULT_STAGES[3],
        }
    }

    fn parse(s: &str) -> Option<ServiceType> {
        Some(match s {
            "database" => ServiceType::Database,
            "job" => ServiceType::Job,
            "container" => ServiceType::Container,
            "application" => ServiceType::Application,
            _ => return None,
        })
    }
}

/// Where services are deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Target {
    Docker {
        /// The engine's reverse proxy, for services with public endpoints.
        #[serde(default, skip_serializing_if = "Proxy::is_default")]
        proxy: Proxy,
    },
    Kubernetes {
        namespace: String,
        context: Option<String>,
        /// `ingressClassName` of the Ingresses made for public endpoints.
        #[serde(default, rename = "ingressClassName", skip_serializing_if = "Option::is_none")]
        ingress_class: Option<String>,
        /// TLS for the public endpoints whose host is a real domain.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls: Option<IngressTls>,
    },
}

/// `std.docker { proxy = { http; https; image; }; }`: the reverse proxy that serves public endpoints on a
/// Docker engine (one per engine, shared by its environments).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proxy {
    /// The host port plain HTTP is served on.
    pub http: u16,
    /// The host port HTTPS is served on (hosts that are real domains get certificates).
    pub https: u16,
    /// A Caddy 2 image.
    pub image: String,
}

impl Default for Proxy {
    fn default() -> Proxy {
        Proxy { http: 80, https: 443, image: "caddy:2".into() }
    }
}

impl Proxy {
    pub fn is_default(&self) -> bool {
        *self == Proxy::default()
    }
}

/// `std.kubernetes { tls = { secretName; clusterIssuer; }; }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressTls {
    /// The Secret holding the certificate; `<service>-tls` when not given.
    #[serde(rename = "secretName", skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// The cert-manager ClusterIssuer that makes the certificate (an annotation on the Ingress).
    #[serde(rename = "clusterIssuer", skip_serializing_if = "Option::is_none")]
    pub cluster_issuer: Option<String>,
}

/// Where a service is reachable from outside: requests for `host` whose path is under `path` go to
/// `port` of the service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PublicEndpoint {
    pub host: String,
    /// A path prefix (`/` for everything); requests keep their whole path.
    pub path: String,
    pub port: u16,
}

impl PublicEndpoint {
    /// `shop.localhost` or `shop.localhost/api`.
    pub fn address(&self) -> String {
        if self.path == "/" { self.host.clone() } else { format!("{}{}", self.host, self.path) }
    }

    /// Served over plain HTTP only, with no certificate: `localhost`, `*.localhost` and IP addresses.
    pub fn is_local(&self) -> bool {
        let h = self.host.trim_start_matches("*.");
        h == "localhost" || h.ends_with(".localhost") || h.parse::<std::net::IpAddr>().is_ok()
    }
}

impl Target {
    /// The address a public endpoint answers at on this target: plain HTTP for local hosts, HTTPS for
    /// real domains (on Kubernetes only with `tls`), with the Docker proxy's port when not the usual one.
    pub fn url(&self, e: &PublicEndpoint) -> String {
        let secure = !e.is_local()
            && match self {
                Target::Docker { .. } => true,
                Target::Kubernetes { tls, .. } => tls.is_some(),
            };
        let port = match self {
            Target::Docker { proxy } if secure && proxy.https != 443 => format!(":{}", proxy.https),
            Target::Docker { proxy } if !secure && proxy.http != 80 => format!(":{}", proxy.http),
            _ => String::new(),
        };
        let path = if e.path == "/" { "/".to_string() } else { e.path.clone() };
        format!("{}://{}{port}{path}", if secure { "https" } else { "http" }, e.host)
    }

    pub fn describe(&self) -> String {
        match self {
            Target::Docker { .. } => "docker".into(),
            Target::Kubernetes { namespace, .. } => format!("kubernetes namespace {namespace}"),
        }
    }
}

/// `registry = "host[:port]/prefix"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    pub host: String,
    pub prefix: String,
}

impl std::fmt::Display for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.prefix.is_empty() { f.write_str(&self.host) } else { write!(f, "{}/{}", self.host, self.prefix) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parallelism {
    pub build: usize,
    pub deploy: usize,
}

/// `build = { context; dockerfile; target; args; platform; repository; }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// Absolute path of the context directory.
    pub context: PathBuf,
    /// Absolute path of the Dockerfile (`dockerfile` is relative to the context unless it is a path value).
    pub dockerfile: PathBuf,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub args: BTreeMap<String, String>,
    pub repository: Option<String>,
    /// Build secrets: the id a `RUN --mount=type=secret,id=…` names -> the secret's name. Only the names
    /// reach the key; the values reach BuildKit through its session, nowhere else.
    pub secrets: BTreeMap<String, String>,
    pub spans: BuildSpans,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BuildSpans {
    pub context: Option<Span>,
    pub dockerfile: Option<Span>,
    pub target: Option<Span>,
    pub args: Option<Span>,
    pub secrets: Option<Span>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// How a deploy knows a service is healthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// Run in the container (exit 0 = healthy)…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// …or an HTTP GET on a port (2xx/3xx = healthy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    pub interval: String,
    pub timeout: String,
    pub retries: u32,
    #[serde(rename = "startPeriod")]
    pub start_period: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpCheck {
    pub port: u16,
    pub path: String,
}

/// A value of `env`: plain text or a secret reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    Text(String),
    Secret(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub kind: ServiceType,
    pub stage: String,
    pub image: Option<String>,
    pub build: Option<Build>,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    /// Plain environment variables.
    pub env: BTreeMap<String, String>,
    /// Environment variables whose value is a secret: variable name -> secret name.
    pub secrets: BTreeMap<String, String>,
    pub ports: Vec<u16>,
    /// Where it is reachable from outside.
    pub endpoints: Vec<PublicEndpoint>,
    pub replicas: u32,
    pub resources: Option<Resources>,
    pub healthcheck: Option<Healthcheck>,
    /// How long a container or pod has to stop after SIGTERM before it is killed (`"30s"`).
    pub stop_grace_period: Option<String>,
    pub volume: Option<String>,
    pub schedule: Option<String>,
    pub depends_on: Vec<String>,
    /// Variables of `secrets` whose secret was written in `env` (they are offered as build args).
    pub secrets_in_env: std::collections::BTreeSet<String>,
    pub spans: ServiceSpans,
}

/// Where the parts of a service were written, for later errors (graph, build key).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceSpans {
    pub name: Option<Span>,
    /// `image`, when given.
    pub image: Option<Span>,
    pub stage: Option<Span>,
    pub depends_on: Option<Span>,
    pub env: BTreeMap<String, Span>,
    pub secrets: BTreeMap<String, Span>,
    pub endpoints: Option<Span>,
}

#[derive(Debug, Clone)]
pub struct Environment {
    /// The definition file and the folder relative paths are resolved against.
    pub file: PathBuf,
    pub project: String,
    pub name: String,
    pub registry: Registry,
    pub target: Target,
    pub parallelism: Parallelism,
    pub stages: Vec<String>,
    pub stages_span: Option<Span>,
    /// Sorted by name.
    pub services: Vec<Service>,
}

impl Environment {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    pub fn stage_index(&self, stage: &str) -> Option<usize> {
        self.stages.iter().position(|s| s == stage)
    }

    pub fn base_dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("/"))
    }
}

/// A value with the place it was written (when written in a user file) and its path for messages.
#[derive(Clone)]
struct Node {
    value: Value,
    span: Option<Span>,
    path: String,
}

/// Reads values out of the evaluator, forcing lazily, checking as it goes.
struct Reader<'e, 'io> {
    ev: &'e mut Evaluator<'io>,
    base: PathBuf,
    /// Errors met so far: reading goes on past a bad field so that one run reports them all.
    errors: Vec<Error>,
}

const SERVICE_FIELDS: &[&str] = &[
    "image",
    "build",
    "command",
    "args",
    "env",
    "secrets",
    "ports",
    "endpoints",
    "replicas",
    "resources",
    "healthcheck",
    "stopGracePeriod",
    "volume",
    "schedule",
    "stage",
    "dependsOn",
];
const BUILD_FIELDS: &[&str] = &["context", "dockerfile", "target", "args", "platform", "repository", "secrets"];
const ENV_FIELDS: &[&str] = &["project", "name", "registry", "target", "services", "parallelism", "stages"];
const HEALTH_FIELDS: &[&str] = &["command", "http", "interval", "timeout", "retries", "startPeriod"];

/// Read the environment a definition evaluated to. Every field is checked: the error, when there
/// is one, lists every problem found (see [`Error::All`]), not only the first.
pub fn read_environment(ev: &mut Evaluator<'_>, file: &Path, value: Value) -> Result<Environment> {
    match read_environment_partly(ev, file, value) {
        (Some(env), None) => Ok(env),
        (_, Some(e)) => Err(e),
        (None, None) => Err(Diag::new("pipeline::plan::not_an_environment", "no environment was read").into()),
    }
}

/// As [`read_environment`], but also return what could be read when there are errors: the
/// environment is there whenever its own fields are usable, without the services (or the fields of
/// services) that are wrong. For `pipeline check`, to run the later checks on the rest.
pub fn read_environment_partly(
    ev: &mut Evaluator<'_>,
    file: &Path,
    value: Value,
) -> (Option<Environment>, Option<Error>) {
    let base = file.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let mut r = Reader { ev, base, errors: Vec::new() };
    let root = Node { value, span: None, path: "the definition".into() };
    let env = r.environment(root, file);
    let mut errors = r.errors;
    let env = match env {
        Ok(env) => Some(env),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    (env, (!errors.is_empty()).then(|| Error::all(errors)))
}

impl Reader<'_, '_> {
    fn diag(&self, code: &'static str, node_span: Option<Span>, message: String, label: &str) -> Diag {
        Diag::new(code, message).at(&self.ev.sources, self.user_span(node_span), label)
    }

    /// A span only if it is in a user file (stdlib positions mean nothing to users).
    fn user_span(&self, span: Option<Span>) -> Option<Span> {
        span.filter(|s| !self.ev.sources.get(s.file).is_stdlib)
    }

    /// The value of `r`, or `None` with its error kept for the report.
    fn keep<T>(&mut self, r: Result<T>) -> Option<T> {
        r.map_err(|e| self.errors.push(e)).ok()
    }

    fn force(&mut self, t: &Thunk) -> Result<Value> {
        self.ev.force(t).map_err(|e| Error::from(self.ev.to_error(&e)))
    }

    fn child(&mut self, parent: &Node, attr: &Attr, sep: &str) -> Result<Node> {
        let value = self.force(&attr.value)?;
        let span = self.user_span(attr.span).or(parent.span);
        let path = if parent.path.starts_with("the ") {
            attr.name.to_string()
        } else {
            format!("{}{sep}{}", parent.path, display_key(&attr.name))
        };
        Ok(Node { value, span, path })
    }

    fn type_error(&self, n: &Node, expected: &str) -> Error {
        self.diag(
            "pipeline::plan::type",
            n.span,
            format!("`{}` should be {expected}, but it is {}", n.path, n.value.describe()),
            &format!("expected {expected}"),
        )
        .into()
    }

    fn attrs(&self, n: &Node, expected: &str) -> Result<Rc<Attrs>> {
        match &n.value {
            Value::Attrs(a) => Ok(a.clone()),
            _ => Err(self.type_error(n, expected)),
        }
    }

    fn string(&self, n: &Node) -> Result<String> {
        match &n.value {
            Value::String(s) => Ok(s.to_string()),
            _ => Err(self.type_error(n, "a string")),
        }
    }

    fn opt_string(&self, n: &Node) -> Result<Option<String>> {
        match &n.value {
            Value::Null => Ok(None),
            _ => self.string(n).map(Some),
        }
    }

    /// Strings, numbers and booleans as text (what an environment variable can hold).
    fn scalar_text(&self, n: &Node) -> Result<String> {
        Ok(match &n.value {
            Value::String(s) => s.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => pipeline_lang::print::format_float(*f),
            Value::Bool(b) => b.to_string(),
            Value::Path(p) => p.to_string(),
            _ => return Err(self.type_error(n, "a string, number or boolean")),
        })
    }

    fn int(&self, n: &Node, min: i64, max: i64) -> Result<i64> {
        match &n.value {
            Value::Int(i) if (min..=max).contains(i) => Ok(*i),
            Value::Int(i) => Err(self
                .diag(
                    "pipeline::plan::range",
                    n.span,
                    format!("`{}` is {i}, outside {min}..={max}", n.path),
                    "out of range",
                )
                .into()),
            _ => Err(self.type_error(n, "an integer")),
        }
    }

    fn list(&mut self, n: &Node, expected: &str) -> Result<Vec<Node>> {
        let Value::List(items) = &n.value else { return Err(self.type_error(n, expected)) };
        let items = items.clone();
        let mut out = Vec::with_capacity(items.len());
        for (i, t) in items.iter().enumerate() {
            let value = self.force(t)?;
            out.push(Node { value, span: n.span, path: format!("{}[{i}]", n.path) });
        }
        Ok(out)
    }

    fn string_list(&mut self, n: &Node) -> Result<Vec<String>> {
        let items = self.list(n, "a list of strings")?;
        items.iter().map(|i| self.string(i)).collect()
    }

    /// A command: a list of strings, or one string run by `/bin/sh -c`.
    fn command(&mut self, n: &Node) -> Result<Option<Vec<String>>> {
        match &n.value {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(vec!["/bin/sh".into(), "-c".into(), s.to_string()])),
            Value::List(_) => self.string_list(n).map(Some),
            _ => Err(self.type_error(n, "a list of strings or a string")),
        }
    }

    /// The attributes of a set, each forced, after checking every name is known.
    fn fields(&mut self, n: &Node, known: &[&str], what: &str, sep: &str) -> Result<Vec<(Rc<str>, Node)>> {
        let a = self.attrs(n, &format!("a set ({what})"))?;
        let mut out = Vec::with_capacity(a.len());
        for attr in a.iter() {
            // `_kind` is the stdlib's own tag, not a user field.
            if &*attr.name == "_kind" {
                continue;
            }
            if !known.is_empty() && !known.contains(&&*attr.name) {
                let help =
                    crate::error::suggest(&attr.name, known.iter().copied(), |all| format!("{what} takes: {all}"));
                // The root's path ("the definition") is a description, not a prefix.
                let path = if n.path.starts_with("the ") {
                    display_key(&attr.name)
                } else {
                    format!("{}{sep}{}", n.path, display_key(&attr.name))
                };
                let e = self
                    .diag(
                        "pipeline::plan::unknown_field",
                        self.user_span(attr.span).or(n.span),
                        format!("unknown field `{}` in {what}", path.trim_start_matches('.')),
                        "unknown field",
                    )
                    .help(help)
                    .into();
                self.errors.push(e);
                continue;
            }
            let child = self.child(n, attr, sep);
            if let Some(child) = self.keep(child) {
                out.push((attr.name.clone(), child));
            }
        }
        Ok(out)
    }

    fn environment(&mut self, root: Node, file: &Path) -> Result<Environment> {
        let kind = self.kind_of(&root)?;
        if kind.as_deref() != Some("pipeline.environment") {
            return Err(Diag::new(
                "pipeline::plan::not_an_environment",
                format!("the definition evaluates to {}, not an environment", what_is(&root.value, kind.as_deref())),
            )
            .help("the file should evaluate to `std.environment { project = ...; name = ...; registry = ...; target = ...; services = { ... }; }`")
            .into());
        }
        let mut project = None;
        let mut name = None;
        let mut registry = None;
        let mut target = None;
        let mut services_node = None;
        let mut parallelism = Parallelism { build: DEFAULT_PARALLELISM, deploy: DEFAULT_PARALLELISM };
        let mut stages = DEFAULT_STAGES.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut stages_span = None;
        // Fields that are present but wrong are reported once, not again as missing.
        let mut present: Vec<Rc<str>> = Vec::new();
        for (key, n) in self.fields(&root, ENV_FIELDS, "the environment", ".")? {
            present.push(key.clone());
            match &*key {
                "project" => project = self.keep(self.dns_name(&n, "project")),
                "name" => name = self.keep(self.dns_name(&n, "environment name")),
                "registry" => registry = self.keep(self.registry(&n)),
                "target" => {
                    let t = self.target(&n);
                    target = self.keep(t);
                }
                "services" => services_node = Some(n),
                "parallelism" => {
                    let p = self.parallelism(&n);
                    parallelism = self.keep(p).unwrap_or(parallelism);
                }
                "stages" => {
                    let st = self.stages(&n);
                    if let Some(st) = self.keep(st) {
                        stages = st;
                    }
                    stages_span = n.span;
                }
                _ => {}
            }
        }
        // Services are read even when an environment field is wrong, so their errors show too.
        let mut services = Vec::new();
        if let Some(services_node) = &services_node {
            let services_attrs = self.attrs(services_node, "a set of services");
            for attr in self.keep(services_attrs).iter().flat_map(|a| a.iter()) {
                let n = self.child(services_node, attr, ".");
                let Some(n) = self.keep(n) else { continue };
                let n = Node { path: format!("services.{}", display_key(&attr.name)), ..n };
                let s = self.service(&attr.name, n, &stages, stages_span);
                services.extend(self.keep(s));
            }
        }
        self.check_endpoints_unique(&services);
        let has_services = services_node.is_some();
        let given = |f: &str| present.iter().any(|p| &**p == f);
        let (Some(project), Some(name), Some(registry), Some(target), true) =
            (project.clone(), name.clone(), registry.clone(), target.clone(), has_services)
        else {
            let missing: Vec<&str> = [
                ("project", project.is_none()),
                ("name", name.is_none()),
                ("registry", registry.is_none()),
                ("target", target.is_none()),
                ("services", !has_services),
            ]
            .iter()
            .filter(|(f, m)| *m && !given(f))
            .map(|(f, _)| *f)
            .collect();
            if missing.is_empty() {
                // Each absent value was given but wrong, and is reported already.
                return Err(self.errors.pop().unwrap_or_else(|| {
                    Diag::new("pipeline::plan::missing_field", "the environment is incomplete").into()
                }));
            }
            return Err(Diag::new(
                "pipeline::plan::missing_field",
                format!(
                    "the environment has no {}",
                    missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
                ),
            )
            .help("`std.environment` needs project, name, registry, target and services")
            .into());
        };
        Ok(Environment {
            file: file.to_path_buf(),
            project,
            name,
            registry,
            target,
            parallelism,
            stages,
            stages_span,
            services,
        })
    }

    /// One service per host and path: the proxy (or the Ingress controller) could not choose.
    fn check_endpoints_unique(&mut self, services: &[Service]) {
        let mut seen: BTreeMap<(&str, &str), &Service> = BTreeMap::new();
        for s in services {
            for e in &s.endpoints {
                match seen.get(&(e.host.as_str(), e.path.as_str())) {
                    Some(first) if first.name != s.name => {
                        let err = self
                            .diag(
                                "pipeline::plan::duplicate_endpoint",
                                s.spans.endpoints,
                                format!("{} is an endpoint of both `{}` and `{}`", e.address(), first.name, s.name),
                                "here",
                            )
                            .also(&self.ev.sources, first.spans.endpoints, "and here")
                            .help("a host and path go to one service: change the host or the path of one of them")
                            .into();
                        self.errors.push(err);
                    }
                    _ => {
                        seen.insert((e.host.as_str(), e.path.as_str()), s);
                    }
                }
            }
        }
    }

    /// The `_kind` tag the stdlib puts on its values.
    fn kind_of(&mut self, n: &Node) -> Result<Option<String>> {
        let Value::Attrs(a) = &n.value else { return Ok(None) };
        let Some(k) = a.get("_kind") else { return Ok(None) };
        let t = k.value.clone();
        match self.force(&t)? {
            Value::String(s) => Ok(Some(s.to_string())),
            _ => Ok(None),
        }
    }

    /// Names used in container, network and Kubernetes object names: a DNS label.
    fn dns_name(&self, n: &Node, what: &str) -> Result<String> {
        let s = self.string(n)?;
        check_dns_label(&s).map_err(|why| {
            self.diag("pipeline::plan::bad_name", n.span, format!("the {what} `{s}` {why}"), "not a valid name")
                .help("use lowercase letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters")
                .into_error()
        })?;
        Ok(s)
    }

    fn registry(&self, n: &Node) -> Result<Registry> {
        let s = self.string(n)?;
        let (host, prefix) = s.split_once('/').unwrap_or((&s, ""));
        let is_host = host.contains('.') || host.contains(':') || host == "localhost";
        let prefix_ok = prefix.is_empty() || prefix.split('/').all(valid_repo_component);
        if !is_host || !prefix_ok || s.contains("://") {
            return Err(self
                .diag(
                    "pipeline::plan::bad_registry",
                    n.span,
                    format!("`registry = \"{s}\"` is not `host[:port]/prefix`"),
                    "not a registry reference",
                )
                .help("write the mirror registry's host (with a `.` or a port, or `localhost`) and a lowercase repository prefix, e.g. \"127.0.0.1:5000/shop\" or \"registry.example.com/team/shop\"")
                .into());
        }
        Ok(Registry { host: host.to_string(), prefix: prefix.to_string() })
    }

    fn target(&mut self, n: &Node) -> Result<Target> {
        let kind = self.kind_of(n)?;
        if kind.as_deref() != Some("pipeline.target") {
            return Err(self
                .diag(
                    "pipeline::plan::type",
                    n.span,
                    format!("`target` should be a target, but it is {}", what_is(&n.value, kind.as_deref())),
                    "not a target",
                )
                .help("use `std.docker { }` or `std.kubernetes { namespace = \"...\"; }`")
                .into());
        }
        let fields = self.fields(n, &[], "the target", ".")?;
        let get = |k: &str| fields.iter().find(|(name, _)| &**name == k).map(|(_, n)| n);
        let ty = match get("type") {
            Some(t) => self.string(t)?,
            None => {
                return Err(self
                    .diag("pipeline::plan::missing_field", n.span, "the target has no `type`".into(), "here")
                    .help("use `std.docker { }` or `std.kubernetes { namespace = \"...\"; }`")
                    .into());
            }
        };
        match ty.as_str() {
            "docker" => {
                let mut proxy = Proxy::default();
                for (k, v) in &fields {
                    match &**k {
                        "type" => {}
                        "proxy" => proxy = self.proxy(v)?,
                        _ => {
                            let help = crate::error::suggest(k, ["proxy"], |all| format!("`std.docker` takes: {all}"));
                            return Err(self
                                .diag(
                                    "pipeline::plan::unknown_field",
                                    v.span,
                                    format!("unknown field `{k}` in `std.docker`"),
                                    "unknown field",
                                )
                                .help(help)
                                .into());
                        }
                    }
                }
                Ok(Target::Docker { proxy })
            }
            "kubernetes" => {
                const FIELDS: [&str; 4] = ["namespace", "context", "ingressClassName", "tls"];
                for (k, v) in &fields {
                    if k.as_ref() != "type" && !FIELDS.contains(&&**k) {
                        let help = crate::error::suggest(k, FIELDS, |all| format!("`std.kubernetes` takes: {all}"));
                        return Err(self
                            .diag(
                                "pipeline::plan::unknown_field",
                                v.span,
                                format!("unknown field `{k}` in `std.kubernetes`"),
                                "unknown field",
                            )
                            .help(help)
                            .into());
                    }
                }
                let namespace = match get("namespace") {
                    Some(ns) => self.dns_name(ns, "namespace")?,
                    None => {
                        return Err(self
                            .diag(
                                "pipeline::plan::missing_field",
                                n.span,
                                "the Kubernetes target has no `namespace`".into(),
                                "here",
                            )
                            .help("write `std.kubernetes { namespace = \"shop-staging\"; }`")
                            .into());
                    }
                };
                let context = match get("context") {
                    Some(c) => self.opt_string(c)?,
                    None => None,
                };
                let ingress_class = match get("ingressClassName") {
                    Some(c) if !matches!(c.value, Value::Null) => Some(self.subdomain(c)?),
                    _ => None,
                };
                let tls = match get("tls") {
                    Some(t) if !matches!(t.value, Value::Null) => Some(self.ingress_tls(t)?),
                    _ => None,
                };
                Ok(Target::Kubernetes { namespace, context, ingress_class, tls })
            }
            other => Err(self
                .diag(
                    "pipeline::plan::unknown_target",
                    n.span,
                    format!("unknown target type `{other}`"),
                    "unknown target",
                )
                .help("use `std.docker { }` or `std.kubernetes { namespace = \"...\"; }`")
                .into()),
        }
    }

    /// `std.docker { proxy = { http = 80; https = 443; image = "caddy:2"; }; }`.
    fn proxy(&mut self, n: &Node) -> Result<Proxy> {
        let mut p = Proxy::default();
        for (k, v) in self.fields(n, &["http", "https", "image"], "`proxy`", ".")? {
            match &*k {
                "http" => p.http = self.int(&v, 1, 65535)? as u16,
                "https" => p.https = self.int(&v, 1, 65535)? as u16,
                _ => p.image = self.image_ref(&v, &self.string(&v)?, "write a Caddy 2 image, e.g. \"caddy:2\"")?,
            }
        }
        if p.http == p.https {
            return Err(self
                .diag(
                    "pipeline::plan::bad_proxy",
                    n.span,
                    format!("`{}` serves HTTP and HTTPS on the same port {}", n.path, p.http),
                    "here",
                )
                .help("give `http` and `https` different ports (80 and 443 by default)")
                .into());
        }
        Ok(p)
    }

    /// `image` (written at `n`) as an image reference.
    fn image_ref(&self, n: &Node, image: &str, help: &str) -> Result<String> {
        match crate::reference::Reference::parse(image) {
            Ok(_) => Ok(image.to_string()),
            Err(why) => Err(self
                .diag(
                    "pipeline::plan::bad_image",
                    n.span,
                    format!("`{}` is not an image reference: {why}", n.path),
                    "here",
                )
                .help(help)
                .into()),
        }
    }

    /// A Kubernetes object name that may have dots (an IngressClass, a Secret, an Issuer).
    fn subdomain(&self, n: &Node) -> Result<String> {
        let s = self.string(n)?;
        if s.len() > 253 || s.split('.').any(|l| check_dns_label(l).is_err()) {
            return Err(self
                .diag(
                    "pipeline::plan::bad_name",
                    n.span,
                    format!("`{}` = \"{s}\" is not a Kubernetes name", n.path),
                    "here",
                )
                .help("lowercase letters, digits, `-` and `.`, e.g. \"nginx\" or \"letsencrypt-prod\"")
                .into());
        }
        Ok(s)
    }

    /// `std.kubernetes { tls = { secretName ? ; clusterIssuer ? ; }; }`.
    fn ingress_tls(&mut self, n: &Node) -> Result<IngressTls> {
        let mut t = IngressTls { secret_name: None, cluster_issuer: None };
        for (k, v) in self.fields(n, &["secretName", "clusterIssuer"], "`tls`", ".")? {
            let value = if matches!(v.value, Value::Null) { None } else { Some(self.subdomain(&v)?) };
            if &*k == "secretName" {
                t.secret_name = value;
            } else {
                t.cluster_issuer = value;
            }
        }
        Ok(t)
    }

    fn parallelism(&mut self, n: &Node) -> Result<Parallelism> {
        let mut p = Parallelism { build: DEFAULT_PARALLELISM, deploy: DEFAULT_PARALLELISM };
        for (k, v) in self.fields(n, &["build", "deploy"], "`parallelism`", ".")? {
            let x = self.int(&v, 1, 1024)? as usize;
            if &*k == "build" {
                p.build = x;
            } else {
                p.deploy = x;
            }
        }
        Ok(p)
    }

    fn stages(&mut self, n: &Node) -> Result<Vec<String>> {
        let items = self.list(n, "a list of stage names")?;
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        for item in &items {
            let s = self.string(item)?;
            if s.trim().is_empty() {
                return Err(self
                    .diag(
                        "pipeline::plan::bad_stage",
                        n.span,
                        format!("`{}` is an empty stage name", item.path),
                        "here",
                    )
                    .into());
            }
            if let Some(first) = out.iter().position(|x| *x == s) {
                return Err(self
                    .diag(
                        "pipeline::plan::duplicate_stage",
                        n.span,
                        format!("stage `{s}` is listed twice (stages[{first}] and {})", item.path),
                        "duplicate stage",
                    )
                    .help("each stage appears once in `stages`; remove the repeated entry")
                    .into());
            }
            out.push(s);
        }
        if out.is_empty() {
            return Err(self
                .diag("pipeline::plan::bad_stage", n.span, "`stages` is empty".into(), "no stages")
                .help("list the stages in order, e.g. `stages = std.defaultStages;`")
                .into());
        }
        Ok(out)
    }

    fn service(&mut self, name: &str, n: Node, stages: &[String], stages_span: Option<Span>) -> Result<Service> {
        let service_span = n.span;
        if let Err(why) = check_dns_label(name) {
            return Err(self
                .diag("pipeline::plan::bad_name", n.span, format!("the service name `{name}` {why}"), "here")
                .help("service names become container and DNS names: lowercase letters, digits and `-`, at most 63 characters")
                .into());
        }
        let kind = self.kind_of(&n)?;
        if kind.as_deref() != Some("pipeline.service") {
            return Err(self
                .diag(
                    "pipeline::plan::type",
                    n.span,
                    format!("`{}` should be a service, but it is {}", n.path, what_is(&n.value, kind.as_deref())),
                    "not a service",
                )
                .help("make it with `std.application { ... }`, `std.container`, `std.job` or `std.database`")
                .into());
        }
        // The stdlib sets `type`; read it first (it is not a user field).
        let a = self.attrs(&n, "a service")?;
        let ty = match a.get("type") {
            Some(t) => {
                let t = t.value.clone();
                match self.force(&t)? {
                    Value::String(s) => ServiceType::parse(&s),
                    _ => None,
                }
            }
            None => None,
        };
        let Some(ty) = ty else {
            return Err(self
                .diag("pipeline::plan::type", n.span, format!("`{}` has no service type", n.path), "here")
                .help("make services with `std.application`, `std.container`, `std.job` or `std.database`")
                .into());
        };
        let known: Vec<&str> = SERVICE_FIELDS.iter().copied().chain(["type"]).collect();
        let mut s = Service {
            name: name.to_string(),
            kind: ty,
            stage: ty.default_stage().to_string(),
            image: None,
            build: None,
            command: None,
            args: None,
            env: BTreeMap::new(),
            secrets: BTreeMap::new(),
            ports: vec![],
            endpoints: vec![],
            replicas: 1,
            resources: None,
            healthcheck: None,
            stop_grace_period: None,
            volume: None,
            schedule: None,
            depends_on: vec![],
            secrets_in_env: Default::default(),
            spans: ServiceSpans { name: service_span, ..Default::default() },
        };
        let mut image_span = None;
        let mut build_span = None;
        let mut schedule_span = None;
        // Read once `ports` is known (a single port is the endpoints' default).
        let mut endpoints_node: Option<Node> = None;
        // A field that is wrong is reported, and the others are still read; the checks across
        // fields below skip what depends on a field that failed.
        let mut failed: Vec<Rc<str>> = Vec::new();
        let errors_before = self.errors.len();
        for (key, v) in self.fields(&n, &known, &format!("{} {} service", article(ty.as_str()), ty.as_str()), ".")? {
            let read = (|| -> Result<()> {
                match &*key {
                    "image" => {
                        s.image = self.opt_string(&v)?;
                        if s.image.is_some() {
                            image_span = v.span;
                        }
                        s.spans.image = image_span;
                        if let Some(img) = &s.image {
                            let help = "write an image reference such as \"postgres:16\" or \"registry.example.com/team/app:1.2\"";
                            self.image_ref(&v, img, help)?;
                        }
                    }
                    "build" if !matches!(v.value, Value::Null) => {
                        build_span = v.span;
                        s.build = Some(self.build(&v)?);
                    }
                    "command" => s.command = self.command(&v)?,
                    "args" => {
                        s.args = match &v.value {
                            Value::Null => None,
                            _ => Some(self.string_list(&v)?),
                        }
                    }
                    "env" => {
                        for (k, e) in self.fields(&v, &[], "`env`", ".")? {
                            self.env_name(&k, &e)?;
                            match self.env_value(&e)? {
                                EnvValue::Text(t) => {
                                    s.env.insert(k.to_string(), t);
                                }
                                EnvValue::Secret(sec) => {
                                    s.secrets.insert(k.to_string(), sec);
                                    s.secrets_in_env.insert(k.to_string());
                                }
                            }
                            if let Some(sp) = e.span {
                                s.spans.env.insert(k.to_string(), sp);
                            }
                        }
                    }
                    "secrets" => {
                        for (k, e) in self.fields(&v, &[], "`secrets`", ".")? {
                            self.env_name(&k, &e)?;
                            if s.env.contains_key(&*k) || s.secrets.contains_key(&*k) {
                                return Err(self
                                    .diag(
                                        "pipeline::plan::duplicate_variable",
                                        e.span,
                                        format!("`{k}` of service `{name}` is set in both `env` and `secrets`"),
                                        "set again here",
                                    )
                                    .also(&self.ev.sources, s.spans.env.get(&*k).copied(), "first set here")
                                    .help(
                                        "a variable has one value: keep it in `env` (plain) or in `secrets` (a secret)",
                                    )
                                    .into());
                            }
                            match self.env_value(&e)? {
                                EnvValue::Secret(sec) => {
                                    s.secrets.insert(k.to_string(), sec);
                                }
                                EnvValue::Text(_) => {
                                    return Err(self
                                        .diag(
                                            "pipeline::plan::plain_secret",
                                            e.span,
                                            format!("`{}` holds a plain value, not a secret reference", e.path),
                                            "a value written in the definition",
                                        )
                                        .help(format!("write `std.secret \"name\"` and supply the value at plan/apply time (e.g. `PIPELINE_SECRET_{}`); plain values belong in `env`", env_var_suffix(&k)))
                                        .into());
                                }
                            }
                            if let Some(sp) = e.span {
                                s.spans.secrets.insert(k.to_string(), sp);
                            }
                        }
                    }
                    "ports" => {
                        for p in self.list(&v, "a list of port numbers")? {
                            let port = self.int(&p, 1, 65535)? as u16;
                            if s.ports.contains(&port) {
                                return Err(self
                                    .diag(
                                        "pipeline::plan::duplicate_port",
                                        v.span,
                                        format!("port {port} is listed twice in `{}`", v.path),
                                        "here",
                                    )
                                    .into());
                            }
                            s.ports.push(port);
                        }
                    }
                    "endpoints" => {
                        s.spans.endpoints = v.span;
                        endpoints_node = Some(v.clone());
                    }
                    "stopGracePeriod" => {
                        s.stop_grace_period = self.opt_string(&v)?;
                        if let Some(d) = &s.stop_grace_period {
                            self.duration(&v, d)?;
                        }
                    }
                    "replicas" => s.replicas = self.int(&v, 0, 10_000)? as u32,
                    "resources" if !matches!(v.value, Value::Null) => {
                        s.resources = Some(self.resources(&v)?);
                    }
                    "healthcheck" if !matches!(v.value, Value::Null) => {
                        s.healthcheck = Some(self.healthcheck(&v)?);
                    }
                    "volume" => {
                        s.volume = self.opt_string(&v)?;
                        if let Some(vol) = &s.volume
                            && !vol.starts_with('/')
                        {
                            return Err(self
                                .diag(
                                    "pipeline::plan::bad_volume",
                                    v.span,
                                    format!("`{}` must be an absolute path in the container", v.path),
                                    "here",
                                )
                                .help(
                                    "write the directory the service keeps its data in, e.g. \"/var/lib/postgresql/data\"",
                                )
                                .into());
                        }
                    }
                    "schedule" => {
                        s.schedule = self.opt_string(&v)?;
                        if s.schedule.is_some() {
                            schedule_span = v.span;
                        }
                        if let Some(c) = &s.schedule
                            && let Err(why) = check_cron(c)
                        {
                            return Err(self
                                .diag(
                                    "pipeline::plan::bad_schedule",
                                    v.span,
                                    format!("`{}` is not a cron schedule: {why}", v.path),
                                    "here",
                                )
                                .help("five fields: minute hour day-of-month month day-of-week, e.g. \"0 3 * * *\"")
                                .into());
                        }
                    }
                    // A stage the stdlib filled in (not written by the user) is checked below.
                    "stage" if a.get("stage").and_then(|x| self.user_span(x.span)).is_none() => {}
                    "stage" => {
                        let st = self.string(&v)?;
                        if !stages.contains(&st) {
                            let help = crate::error::suggest(&st, stages.iter().map(String::as_str), |all| {
                                format!("the stages are: {all}; add it to `stages` to create it")
                            });
                            return Err(self
                                .diag(
                                    "pipeline::plan::unknown_stage",
                                    v.span,
                                    format!("unknown stage `{st}` for service `{name}`"),
                                    "not in `stages`",
                                )
                                .also(&self.ev.sources, stages_span, "stages listed here")
                                .help(help)
                                .into());
                        }
                        s.stage = st;
                        s.spans.stage = v.span;
                    }
                    "dependsOn" => {
                        s.depends_on = self.string_list(&v)?;
                        s.spans.depends_on = v.span;
                    }
                    _ => {}
                }
                Ok(())
            })();
            if let Err(e) = read {
                self.errors.push(e);
                failed.push(key);
            }
        }
        // After an unknown field (`imgae`, `stgae`) or a wrong one, what is absent may be what was
        // misspelt: say nothing more about it.
        let clean = self.errors.len() == errors_before && failed.is_empty();
        if clean && !stages.contains(&s.stage) {
            let e = self
                .diag(
                    "pipeline::plan::unknown_stage",
                    service_span,
                    format!("service `{name}` goes to its type's default stage `{}`, which is not in `stages`", s.stage),
                    "here",
                )
                .also(&self.ev.sources, stages_span, "stages listed here")
                .help(format!("set `stage` on the service, or keep `{}` in `stages` (e.g. `stages = std.defaultStages ++ [ ... ];`)", s.stage))
                .into();
            self.errors.push(e);
        }
        if clean {
            let r = self.check_image_build(&s, service_span, image_span, build_span);
            self.keep(r);
        }
        if let Some(v) = endpoints_node
            && !failed.iter().any(|f| &**f == "ports")
        {
            let r = self.endpoints(&v, &s);
            if let Some(e) = self.keep(r) {
                s.endpoints = e;
            }
        }
        if s.schedule.is_some() && ty != ServiceType::Job {
            return Err(self
                .diag(
                    "pipeline::plan::bad_schedule",
                    schedule_span,
                    format!("`schedule` is only for jobs, and `{name}` is {} {}", article(ty.as_str()), ty.as_str()),
                    "here",
                )
                .help("make it a `std.job { ... }` to run it on a schedule")
                .into());
        }
        Ok(s)
    }

    fn check_image_build(&self, s: &Service, at: Option<Span>, image: Option<Span>, build: Option<Span>) -> Result<()> {
        let code = "pipeline::plan::image_or_build";
        let name = &s.name;
        let t = s.kind.as_str();
        let err = match (s.kind, s.image.is_some(), s.build.is_some()) {
            (ServiceType::Container, _, true) => Some((
                build,
                format!("service `{name}` is a container, which runs a prebuilt image, but it has `build`"),
                "a container takes `image`; use `std.application` for a service built from a Dockerfile",
            )),
            (ServiceType::Container, false, false) => {
                Some((at, format!("service `{name}` (container) has no `image`"), "add `image = \"name:tag\";`"))
            }
            (ServiceType::Application, _, false) => Some((
                image.or(at),
                format!("service `{name}` is an application, which is built from a Dockerfile, but it has no `build`"),
                "add `build.context = ./dir;`, or use `std.container` for a prebuilt image",
            )),
            (ServiceType::Application, true, true) => Some((
                image,
                format!("service `{name}` (application) has both `image` and `build`"),
                "an application's image is the one it builds: remove `image`",
            )),
            (_, true, true) => Some((
                image,
                format!("service `{name}` ({t}) has both `image` and `build`"),
                "keep one: `image` for a prebuilt image or `build` to build one",
            )),
            (_, false, false) => Some((
                at,
                format!("service `{name}` ({t}) has neither `image` nor `build`"),
                "add `image = \"name:tag\";` or `build.context = ./dir;`",
            )),
            _ => None,
        };
        match err {
            Some((span, msg, help)) => Err(self.diag(code, span, msg, "here").help(help).into()),
            None => Ok(()),
        }
    }

    fn env_name(&self, k: &str, n: &Node) -> Result<()> {
        let ok = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if ok {
            return Ok(());
        }
        Err(self
            .diag(
                "pipeline::plan::bad_env_name",
                n.span,
                format!("`{k}` is not a valid environment variable name"),
                "here",
            )
            .help("use letters, digits and `_`, not starting with a digit")
            .into())
    }

    fn env_value(&mut self, n: &Node) -> Result<EnvValue> {
        if self.kind_of(n)?.as_deref() == Some("pipeline.secret") {
            let a = self.attrs(n, "a secret")?;
            let name = match a.get("name") {
                Some(t) => {
                    let t = t.value.clone();
                    match self.force(&t)? {
                        Value::String(s) if !s.is_empty() => s.to_string(),
                        _ => return Err(self.type_error(n, "a secret with a non-empty string name")),
                    }
                }
                None => return Err(self.type_error(n, "a secret with a name")),
            };
            return Ok(EnvValue::Secret(name));
        }
        self.scalar_text(n).map(EnvValue::Text)
    }

    fn resources(&mut self, n: &Node) -> Result<Resources> {
        let mut r = Resources { cpu: None, memory: None };
        for (k, v) in self.fields(n, &["cpu", "memory"], "`resources`", ".")? {
            if &*k == "cpu" {
                let text = match &v.value {
                    Value::Int(_) | Value::Float(_) => self.scalar_text(&v)?,
                    _ => self.string(&v)?,
                };
                if !valid_cpu(&text) {
                    return Err(self
                        .diag(
                            "pipeline::plan::bad_quantity",
                            v.span,
                            format!("`{}` = \"{text}\" is not a CPU amount", v.path),
                            "here",
                        )
                        .help("write cores as a number (0.5, 2) or millicores (\"500m\")")
                        .into());
                }
                r.cpu = Some(text);
            } else {
                let text = self.string(&v)?;
                if !valid_memory(&text) {
                    return Err(self
                        .diag(
                            "pipeline::plan::bad_quantity",
                            v.span,
                            format!("`{}` = \"{text}\" is not a memory amount", v.path),
                            "here",
                        )
                        .help("write bytes with a binary suffix, e.g. \"256Mi\" or \"2Gi\"")
                        .into());
                }
                r.memory = Some(text);
            }
        }
        Ok(r)
    }

    /// A duration as the definitions write them (`"500ms"`, `"10s"`, `"2m"`, `"1h"`).
    fn duration(&self, n: &Node, d: &str) -> Result<()> {
        if valid_duration(d) {
            return Ok(());
        }
        Err(self
            .diag("pipeline::plan::bad_duration", n.span, format!("`{}` = \"{d}\" is not a duration", n.path), "here")
            .help("write a number with a unit: \"500ms\", \"10s\", \"2m\", \"1h\"")
            .into())
    }

    /// `endpoints = [ { host = "shop.example.com"; path = "/api"; port = 8080; } ]`; `port` may be left out
    /// when the service has one port, `path` when it is everything (`/`).
    fn endpoints(&mut self, n: &Node, s: &Service) -> Result<Vec<PublicEndpoint>> {
        if matches!(n.value, Value::Null) {
            return Ok(vec![]);
        }
        let items = self.list(n, "a list of endpoints")?;
        if s.kind == ServiceType::Job && !items.is_empty() {
            return Err(self
                .diag(
                    "pipeline::plan::bad_endpoint",
                    n.span,
                    format!("`{}`: a job has no public endpoints", n.path),
                    "here",
                )
                .help("public endpoints are for long-running services: use `std.application` or `std.container`")
                .into());
        }
        let mut out: Vec<PublicEndpoint> = Vec::new();
        for item in items {
            let mut host = None;
            let mut path = "/".to_string();
            let mut port = None;
            for (k, v) in self.fields(&item, &["host", "path", "port"], "an endpoint", ".")? {
                match &*k {
                    "host" => {
                        let h = self.string(&v)?;
                        if let Err(why) = check_host(&h) {
                            return Err(self
                                .diag("pipeline::plan::bad_endpoint", v.span, format!("`{}` = \"{h}\" {why}", v.path), "not a host name")
                                .help("write a host name such as \"shop.example.com\" or \"api.shop.localhost\" (no scheme, port or path; `*.` may start it)")
                                .into());
                        }
                        host = Some(h);
                    }
                    "path" => {
                        let p = self.string(&v)?;
                        path = check_path_prefix(&p).map_err(|why| {
                            self.diag("pipeline::plan::bad_endpoint", v.span, format!("`{}` = \"{p}\" {why}", v.path), "not a path prefix")
                                .help("write a path prefix such as \"/\" or \"/api\"; requests under it keep their whole path")
                                .into_error()
                        })?;
                    }
                    _ => {
                        let p = self.int(&v, 1, 65535)? as u16;
                        if !s.ports.contains(&p) {
                            return Err(self
                                .diag(
                                    "pipeline::plan::bad_endpoint",
                                    v.span,
                                    format!("`{}` is {p}, which service `{}` does not list in `ports`", v.path, s.name),
                                    "not one of its ports",
                                )
                                .help(format!("add {p} to `ports`, or use one of: {}", list_ports(&s.ports)))
                                .into());
                        }
                        port = Some(p);
                    }
                }
            }
            let Some(host) = host else {
                return Err(self
                    .diag("pipeline::plan::missing_field", item.span, format!("`{}` has no `host`", item.path), "here")
                    .help("write `{ host = \"shop.example.com\"; }`")
                    .into());
            };
            let port = match (port, s.ports.as_slice()) {
                (Some(p), _) => p,
                (None, [only]) => *only,
                (None, ports) => {
                    return Err(self
                        .diag(
                            "pipeline::plan::missing_field",
                            item.span,
                            format!(
                                "`{}` has no `port`, and service `{}` has {} ports",
                                item.path,
                                s.name,
                                ports.len()
                            ),
                            "here",
                        )
                        .help(if ports.is_empty() {
                            "list the port the service listens on in `ports` (e.g. `ports = [ 8080 ];`)".to_string()
                        } else {
                            format!("say which: `port = {};` (its ports: {})", ports[0], list_ports(ports))
                        })
                        .into());
                }
            };
            let e = PublicEndpoint { host, path, port };
            if out.iter().any(|o| o.host == e.host && o.path == e.path) {
                return Err(self
                    .diag(
                        "pipeline::plan::duplicate_endpoint",
                        item.span,
                        format!("`{}` repeats {} in `{}`", item.path, e.address(), n.path),
                        "here",
                    )
                    .help("each host and path goes to one port")
                    .into());
            }
            out.push(e);
        }
        Ok(out)
    }

    fn healthcheck(&mut self, n: &Node) -> Result<Healthcheck> {
        let mut h = Healthcheck {
            command: None,
            http: None,
            interval: "10s".into(),
            timeout: "5s".into(),
            retries: 3,
            start_period: "0s".into(),
        };
        for (k, v) in self.fields(n, HEALTH_FIELDS, "`healthcheck`", ".")? {
            match &*k {
                "command" => h.command = self.command(&v)?,
                "http" => {
                    let mut port = None;
                    let mut path = "/".to_string();
                    for (hk, hv) in self.fields(&v, &["port", "path"], "`healthcheck.http`", ".")? {
                        if &*hk == "port" {
                            port = Some(self.int(&hv, 1, 65535)? as u16);
                        } else {
                            path = self.string(&hv)?;
                        }
                    }
                    let Some(port) = port else {
                        return Err(self
                            .diag("pipeline::plan::missing_field", v.span, format!("`{}` needs `port`", v.path), "here")
                            .into());
                    };
                    h.http = Some(HttpCheck { port, path });
                }
                "retries" => h.retries = self.int(&v, 1, 1000)? as u32,
                _ => {
                    let d = self.string(&v)?;
                    self.duration(&v, &d)?;
                    match &*k {
                        "interval" => h.interval = d,
                        "timeout" => h.timeout = d,
                        _ => h.start_period = d,
                    }
                }
            }
        }
        if h.command.is_some() == h.http.is_some() {
            return Err(self
                .diag("pipeline::plan::bad_healthcheck", n.span, format!("`{}` needs exactly one of `command` and `http`", n.path), "here")
                .help("e.g. `healthcheck.command = [ \"/bin/check\" ];` or `healthcheck.http = { port = 8080; path = \"/health\"; };`")
                .into());
        }
        Ok(h)
    }

    fn build(&mut self, n: &Node) -> Result<Build> {
        // `build = ./dir;` is short for `build.context = ./dir;` (the stdlib normalizes it).
        let mut context = None;
        let mut dockerfile_node = None;
        let mut b = Build {
            context: PathBuf::new(),
            dockerfile: PathBuf::new(),
            target: None,
            platform: None,
            args: BTreeMap::new(),
            repository: None,
            secrets: BTreeMap::new(),
            spans: BuildSpans::default(),
        };
        for (k, v) in self.fields(n, BUILD_FIELDS, "`build`", ".")? {
            match &*k {
                "context" => {
                    b.spans.context = v.span;
                    context = Some(self.path_like(&v, &self.base.clone())?);
                }
                "dockerfile" => dockerfile_node = Some(v),
                "target" => {
                    b.target = self.opt_string(&v)?;
                    b.spans.target = v.span;
                }
                "platform" => b.platform = self.opt_string(&v)?,
                "repository" => {
                    b.repository = self.opt_string(&v)?;
                    if let Some(r) = &b.repository
                        && !r.split('/').all(valid_repo_component)
                    {
                        return Err(self
                            .diag(
                                "pipeline::plan::bad_repository",
                                v.span,
                                format!("`{}` = \"{r}\" is not a repository name", v.path),
                                "here",
                            )
                            .help("lowercase letters, digits and `.`, `_`, `-` separators, components joined by `/`")
                            .into());
                    }
                }
                "secrets" => {
                    b.spans.secrets = v.span;
                    for (id, sv) in self.fields(&v, &[], "`build.secrets`", ".")? {
                        match self.env_value(&sv)? {
                            EnvValue::Secret(name) => {
                                b.secrets.insert(id.to_string(), name);
                            }
                            EnvValue::Text(_) => {
                                return Err(self
                                    .diag(
                                        "pipeline::plan::plain_secret",
                                        sv.span,
                                        format!("`{}` holds a plain value, not a secret reference", sv.path),
                                        "a plain value",
                                    )
                                    .help(format!("write `{id} = std.secret \"name\";` and supply the value at plan/apply time; the Dockerfile reads it with `RUN --mount=type=secret,id={id}`"))
                                    .into());
                            }
                        }
                    }
                }
                "args" => {
                    b.spans.args = v.span;
                    for (ak, av) in self.fields(&v, &[], "`build.args`", ".")? {
                        match self.env_value(&av)? {
                            EnvValue::Text(t) => {
                                b.args.insert(ak.to_string(), t);
                            }
                            EnvValue::Secret(_) => {
                                return Err(self
                                    .diag("pipeline::plan::secret_build_arg", av.span, format!("`{}` is a secret, and a secret never becomes a build arg", av.path), "a secret")
                                    .help("build args end up in the image's history; pass the secret at runtime through `secrets`")
                                    .into());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        let Some(context) = context else {
            return Err(self
                .diag("pipeline::plan::missing_field", n.span, format!("`{}` has no `context`", n.path), "here")
                .help("add `build.context = ./dir;` (the folder holding the Dockerfile and the files it copies)")
                .into());
        };
        b.dockerfile = match &dockerfile_node {
            None => context.join("Dockerfile"),
            Some(d) => match &d.value {
                Value::Path(p) => PathBuf::from(&**p),
                Value::String(s) => context.join(&**s),
                Value::Null => context.join("Dockerfile"),
                _ => return Err(self.type_error(d, "a path or a string relative to the context")),
            },
        };
        b.spans.dockerfile = dockerfile_node.as_ref().and_then(|d| d.span).or(b.spans.context);
        b.context = context;
        Ok(b)
    }

    /// A path value, or a string taken relative to `base` (the definition's folder).
    fn path_like(&self, n: &Node, base: &Path) -> Result<PathBuf> {
        match &n.value {
            Value::Path(p) => Ok(PathBuf::from(&**p)),
            Value::String(s) => Ok(normalize(&base.join(&**s))),
            _ => Err(self.type_error(n, "a path (e.g. `./api`)")),
        }
    }
}

/// Lexically normalize `a/./b/../c` (paths in definitions never follow symlinks here).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

fn display_key(k: &str) -> String {
    let plain = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || "_-'".contains(c));
    if plain { k.to_string() } else { format!("{k:?}") }
}

fn what_is(v: &Value, kind: Option<&str>) -> String {
    match kind {
        Some(k) => format!("a `{k}`"),
        None => v.describe().to_string(),
    }
}

/// `PIPELINE_SECRET_<this>` for a secret name: upper-cased, every other character `_`.
pub fn env_var_suffix(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}

pub fn check_dns_label(s: &str) -> std::result::Result<(), &'static str> {
    if s.is_empty() {
        return Err("is empty");
    }
    if s.len() > 63 {
        return Err("is longer than 63 characters");
    }
    if !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err("may only hold lowercase letters, digits and `-`");
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

/// One component of an OCI repository name: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
pub fn valid_repo_component(c: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$").expect("a valid regex")).is_match(c)
}

fn list_ports(ports: &[u16]) -> String {
    ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
}

/// A host name an endpoint answers for: DNS labels (lowercase), optionally after `*.`, or an IP address.
pub fn check_host(h: &str) -> std::result::Result<(), &'static str> {
    if h.contains("://") {
        return Err("has a scheme; write the host alone");
    }
    if h.contains('/') {
        return Err("has a path; write it in `path`");
    }
    if h.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if h.contains(':') {
        return Err("has a port; the proxy's ports are the target's (`std.docker { proxy.http = ...; }`)");
    }
    if h.len() > 253 {
        return Err("is longer than 253 characters");
    }
    let name = h.strip_prefix("*.").unwrap_or(h);
    if name.split('.').any(|l| check_dns_label(l).is_err()) {
        return Err("is not a host name (lowercase letters, digits and `-` between dots)");
    }
    Ok(())
}

/// A path prefix, normalised: starts with `/`, no trailing `/` (but `/` itself).
pub fn check_path_prefix(p: &str) -> std::result::Result<String, &'static str> {
    if !p.starts_with('/') {
        return Err("does not start with `/`");
    }
    if p.contains("//") {
        return Err("has an empty segment (`//`)");
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || "-._~/%!$&'()+,;=:@".contains(c);
    if !p.chars().all(ok) {
        return Err("may hold only URL path characters (no `*`, `?`, `#` or spaces)");
    }
    let trimmed = p.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/".into() } else { trimmed.to_string() })
}

fn valid_duration(s: &str) -> bool {
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    digits > 0 && matches!(&s[digits..], "ms" | "s" | "m" | "h")
}

fn valid_cpu(s: &str) -> bool {
    if let Some(m) = s.strip_suffix('m') {
        return !m.is_empty() && m.chars().all(|c| c.is_ascii_digit()) && m != "0";
    }
    s.parse::<f64>().is_ok_and(|x| x > 0.0 && x.is_finite())
}

fn valid_memory(s: &str) -> bool {
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    digits > 0 && matches!(&s[digits..], "" | "Ki" | "Mi" | "Gi" | "Ti" | "k" | "M" | "G" | "T")
}

/// Five cron fields of `*`, numbers, ranges, steps and lists (or an `@hourly`-style macro).
fn check_cron(s: &str) -> std::result::Result<(), String> {
    const MACROS: [&str; 7] = ["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];
    if s.starts_with('@') {
        return if MACROS.contains(&s) { Ok(()) } else { Err(format!("unknown macro `{s}`")) };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("{} fields instead of 5", fields.len()));
    }
    let bounds = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
    for (f, (lo, hi)) in fields.iter().zip(bounds) {
        for part in f.split(',') {
            let (range, step) = part.split_once('/').unwrap_or((part, "1"));
            if step.parse::<u32>().map_or(true, |s| s == 0) {
                return Err(format!("bad step in `{part}`"));
            }
            if range == "*" {
                continue;
            }
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            match (a.parse::<u32>(), b.parse::<u32>()) {
                (Ok(a), Ok(b)) if lo <= a && a <= b && b <= hi => {}
                _ => return Err(format!("`{part}` is outside {lo}-{hi}")),
            }
        }
    }
    Ok(())
}
