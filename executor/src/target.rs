//! What a target is: a place an environment is deployed to (a Docker engine, a Kubernetes namespace).
//! Every target implements [`Target`]; the sessions in [`crate::session`] drive any of them, and
//! [`crate::session::connect`] is the one place a target is chosen from the definitions.
//!
//! A target answers for one environment of one project: it takes the environment's lock, reports what
//! runs (as the planner's [`LiveState`]), deploys and retires one service at a time, lists and removes
//! everything for `destroy`, and names the addresses its services answer on.

use crate::build::{Note, Notify};
use pipeline_planner::DeploySpec;
use pipeline_planner::live::LiveState;
use pipeline_planner::plan::DeployAction;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// A place environments are deployed to.
pub trait Target: Send + Sync + Sized + 'static {
    /// What goes wrong, with a code and the help a user needs (`--force-conflicts`, a missing permission).
    type Error: miette::Diagnostic + Send + Sync + 'static;
    /// The environment's lock, while held.
    type Lock: EnvironmentLock;

    /// The system, as messages name it (`Docker engine unix:///var/run/docker.sock`).
    fn describe(&self) -> String;

    /// The Docker engine this target runs containers on, which builds then share (their claims meet
    /// there). `None`: builds connect to the local engine themselves.
    fn engine(&self) -> Option<bollard::Docker>;

    /// Where this run's builds claim their keys (one build per key across runs): the engine they build
    /// on, unless the target is a place other runs meet too.
    fn build_claims(&self, engine: &bollard::Docker) -> crate::claim::Claims {
        crate::claim::Claims::Engine(engine.clone())
    }

    /// Take the environment's lock: one apply or destroy at a time. Someone else holding it is an error
    /// naming them.
    fn lock(&self, holder: &str) -> impl Future<Output = Result<Self::Lock, Self::Error>> + Send;

    /// What runs now, for the planner.
    fn observe(&self) -> impl Future<Output = Result<Box<dyn LiveState + Send + Sync>, Self::Error>> + Send;

    /// Bring one service to its spec (a job: run it to completion).
    fn deploy(&self, service: &ServiceDeploy, run: &Run) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Remove a service the definitions no longer have (its data volumes stay).
    fn retire(&self, service: &ServiceDeploy, run: &Run) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Everything of the environment, as `destroy` would remove it.
    fn inventory(&self) -> impl Future<Output = Result<Inventory, Self::Error>> + Send;

    /// Remove everything of the environment, later stages first; volumes only when `volumes`. `on` hears
    /// each service or object as it goes.
    fn destroy(
        &self,
        stages: &[String],
        volumes: bool,
        on: &(dyn Fn(&str) + Send + Sync),
    ) -> impl Future<Output = Result<Removed, Self::Error>> + Send;

    /// Where the services answer (published ports).
    fn endpoints(&self) -> impl Future<Output = Result<Vec<Endpoint>, Self::Error>> + Send;

    /// Per deployed service: how its containers or pods are doing (for `pipeline status`).
    fn status(&self) -> impl Future<Output = Result<Vec<ServiceStatus>, Self::Error>> + Send;

    /// The logs of `services` (every service when empty): history merged in time order, then, when
    /// following, new lines, also from replicas that appear later.
    fn logs(
        &self,
        services: &[String],
        options: &crate::logs::LogOptions,
    ) -> impl Future<Output = Result<crate::logs::LogStream, Self::Error>> + Send;

    /// Whether a failed deploy left the previous version serving (the summary says so).
    fn kept_previous(_error: &Self::Error) -> bool {
        false
    }
}

/// A held environment lock. Released by the session on every path; a second release does nothing.
pub trait EnvironmentLock: Clone + Send + Sync + 'static {
    type Error: miette::Diagnostic + Send + Sync + 'static;

    fn release(&self) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// One service to deploy (or retire), as the run prepared it.
#[derive(Clone)]
pub struct ServiceDeploy {
    pub name: String,
    pub action: DeployAction,
    /// The desired spec; `None` for a service to retire.
    pub spec: Option<DeploySpec>,
    /// The build key of its image, when built.
    pub key: Option<String>,
    /// Secret values by variable name (never labelled or logged).
    pub secrets: BTreeMap<String, String>,
}

impl std::fmt::Debug for ServiceDeploy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceDeploy")
            .field("name", &self.name)
            .field("action", &self.action)
            .field("spec", &self.spec)
            .field("key", &self.key)
            .field("secrets", &self.secrets.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What a deploy gets from the run: its service number (for progress notes) and how long it may wait.
#[derive(Clone)]
pub struct Run {
    pub service: usize,
    pub notify: Notify,
    /// How long a deploy may wait for its service to be healthy (or a job to end).
    pub timeout: Duration,
}

impl Run {
    /// Say what the deploy does now (the progress line).
    pub fn note(&self, text: impl Into<String>) {
        (self.notify)(Note::Deploy(self.service, text.into()));
    }
}

/// Everything of an environment on its target.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Where it lives, when the target has such a place (`namespace shop-dev`).
    pub place: Option<String>,
    /// What the target calls one item (`container`, `object`).
    pub unit: &'static str,
    pub items: Vec<Item>,
    /// Data volumes (volume claims): they outlive the services.
    pub volumes: Vec<String>,
}

/// One container or object.
#[derive(Debug, Clone)]
pub struct Item {
    pub name: String,
    pub service: String,
    /// Its state, when the target says one (`Up 3 minutes`).
    pub state: Option<String>,
}

impl Inventory {
    /// The services with at least one item, sorted.
    pub fn services(&self) -> Vec<&str> {
        let set: std::collections::BTreeSet<&str> = self.items.iter().map(|i| i.service.as_str()).collect();
        set.into_iter().collect()
    }
}

/// What `destroy` removed.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    pub services: Vec<String>,
    /// Containers or objects.
    pub items: usize,
    /// The environment's network, when the target made one.
    pub network: Option<String>,
    pub volumes_removed: Vec<String>,
    pub volumes_kept: Vec<String>,
}

/// Where one container or pod of a service answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub service: String,
    /// The container or object.
    pub name: String,
    /// `127.0.0.1:49153->8080`, …
    pub ports: Vec<String>,
}

/// How one deployed service is doing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// The spec it was deployed with.
    pub spec: DeploySpec,
    /// The build key of its image, when built.
    #[serde(default)]
    pub key: Option<String>,
    /// Replicas up (healthy, where there is a healthcheck) and wanted.
    pub ready: u32,
    pub desired: u32,
    pub health: Health,
    /// Restarts of its containers or pods since they were created.
    #[serde(default)]
    pub restarts: u32,
    /// When its oldest replica of the deployed spec started (RFC 3339), if known.
    #[serde(default)]
    pub since: Option<String>,
    /// Where it answers (published ports).
    #[serde(default)]
    pub endpoints: Vec<String>,
}

/// A service's health, from its replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Every replica up, and healthy where there is a healthcheck.
    Healthy,
    /// Replicas starting (a healthcheck not passed yet, pods not ready yet).
    Starting,
    /// Replicas missing, stopped, restarting or failing their healthcheck.
    Unhealthy,
    /// A job whose last run ended well.
    Completed,
    /// A job whose last run failed.
    Failed,
    /// A scheduled job: it runs on its schedule.
    Scheduled,
}

impl Health {
    /// Whether this is what the service should be.
    pub fn is_good(self) -> bool {
        matches!(self, Health::Healthy | Health::Completed | Health::Scheduled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Starting => "starting",
            Health::Unhealthy => "unhealthy",
            Health::Completed => "completed",
            Health::Failed => "failed",
            Health::Scheduled => "scheduled",
        }
    }
}

/// The help of a failed deploy that kept (or went back to) the previous version: its cause's, or to fix
/// the release.
pub(crate) fn kept_previous_help(cause: &dyn miette::Diagnostic) -> String {
    cause.help().map_or_else(|| "fix the release and apply again".to_string(), |h| h.to_string())
}

/// Who takes a lock: `user@host pid N`.
pub fn holder() -> String {
    let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "someone".into());
    format!("{user}@{} pid {}", hostname(), std::process::id())
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// A holder on this host whose process has ended.
pub(crate) fn holder_is_gone(holder: &str) -> bool {
    let Some((who, pid)) = holder.rsplit_once(" pid ") else { return false };
    let Some(host) = who.split_once('@').map(|(_, h)| h) else { return false };
    host == hostname()
        && pid
            .parse::<u32>()
            .is_ok_and(|p| p != std::process::id() && !std::path::Path::new(&format!("/proc/{p}")).exists())
}
