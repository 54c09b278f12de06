//! The sessions that drive a target: `apply` (lock, observe, plan, review, build and deploy stage by
//! stage, release) and `destroy` (lock, list, confirm, remove, release), for any [`Target`].
//!
//! [`connect`] is the one place a target is chosen from the definitions. The binary keeps what is its
//! own (flags, planning with its lock file and stat cache, confirmation, printing) behind [`ApplyUi`] and
//! [`DestroyUi`]. The environment's lock is held by a guard that the session releases on every path: a
//! result, an error, a panic (caught, the lock released, the panic resumed) and Ctrl-C.

use crate::build::{DockerBuilder, Notify};
use crate::buildkit::{self, BuilderKind};
use crate::docker::{self, DockerTarget};
use crate::kubernetes::KubernetesTarget;
use crate::kubernetes::manifest::Scope;
use crate::prepare::{Durations, Prepared, prepare};
use crate::registry::RegistryClient;
use crate::schedule::{self, Deployer, Event, Outcome, TaskError};
use crate::target::{Endpoint, EnvironmentLock, Inventory, Removed, Run, ServiceDeploy, Target};
use futures_util::FutureExt as _;
use miette::Diagnostic;
use pipeline_planner::Environment;
use pipeline_planner::live::LiveState;
use pipeline_planner::model;
use pipeline_planner::plan::{DeployAction, KeyedBuild, Plan};
use pipeline_planner::secrets::Secrets;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Any diagnostic: what a session fails with (the target's, the planner's, the binary's).
pub type Report = Box<dyn Diagnostic + Send + Sync>;

fn boxed(e: impl Diagnostic + Send + Sync + 'static) -> Report {
    Box::new(e)
}

/// How to reach the target, beyond what the definitions say.
#[derive(Debug, Clone, Default)]
pub struct TargetOptions {
    /// The kubeconfig context (`--context`), over the definitions' own.
    pub context: Option<String>,
    /// Take fields another field manager owns (`--force-conflicts`).
    pub force_conflicts: bool,
}

/// Work to do with a connected target: [`connect`] hands it the one the definitions name.
pub trait WithTarget {
    type Output;

    fn run<T: Target>(self, target: T) -> impl Future<Output = Self::Output>;
}

/// Connect to the environment's target and run `work` with it. The one place targets are chosen: a new
/// target is a new module and one line here.
pub async fn connect<W: WithTarget>(
    env: &Environment,
    registry: Arc<RegistryClient>,
    options: &TargetOptions,
    work: W,
) -> Result<W::Output, Report> {
    Ok(match &env.target {
        model::Target::Docker { proxy } => {
            let target = DockerTarget::connect(&env.project, &env.name, registry).await.map_err(boxed)?;
            work.run(target.with_proxy(proxy.clone())).await
        }
        model::Target::Kubernetes { context, .. } => {
            let context = options.context.as_deref().or(context.as_deref());
            // A Docker config that cannot be read is no reason to stop: the cluster then pulls as it can.
            let pull = pull_login(registry, &env.registry.host).await.ok().flatten();
            let target = KubernetesTarget::connect(Scope::of(env), context, options.force_conflicts, pull).await;
            work.run(target.map_err(boxed)?).await
        }
    })
}

/// The user name and password `~/.docker/config.json` holds for the mirror `host`, which a cluster
/// pulls with (none: it pulls anonymously).
pub async fn pull_login(registry: Arc<RegistryClient>, host: &str) -> Result<Option<(String, String, String)>, Report> {
    let h = host.to_string();
    let found = tokio::task::spawn_blocking(move || registry.credentials_for(&h))
        .await
        .map_err(|e| boxed(crate::RegistryError::Runtime { error: std::io::Error::other(e) }))?
        .map_err(boxed)?;
    Ok(found.and_then(|c| Some((host.to_string(), c.username?, c.password?))))
}

/// What runs for the environment now (for `plan`).
pub async fn observe(
    env: &Environment,
    registry: Arc<RegistryClient>,
    options: &TargetOptions,
) -> Result<Box<dyn LiveState + Send + Sync>, Report> {
    struct Observe;
    impl WithTarget for Observe {
        type Output = Result<Box<dyn LiveState + Send + Sync>, Report>;

        async fn run<T: Target>(self, target: T) -> Self::Output {
            target.observe().await.map_err(boxed)
        }
    }
    connect(env, registry, options, Observe).await?
}

/// What runs for the environment (for the planner) and how each service is doing (for `status`).
pub async fn status(
    env: &Environment,
    registry: Arc<RegistryClient>,
    options: &TargetOptions,
) -> Result<(Box<dyn LiveState + Send + Sync>, Vec<crate::target::ServiceStatus>), Report> {
    struct Status;
    impl WithTarget for Status {
        type Output = Result<(Box<dyn LiveState + Send + Sync>, Vec<crate::target::ServiceStatus>), Report>;

        async fn run<T: Target>(self, target: T) -> Self::Output {
            let live = target.observe().await.map_err(boxed)?;
            let services = target.status().await.map_err(boxed)?;
            Ok((live, services))
        }
    }
    connect(env, registry, options, Status).await?
}

/// The logs of the environment's services (all when `services` is empty).
pub async fn logs(
    env: &Environment,
    registry: Arc<RegistryClient>,
    options: &TargetOptions,
    services: &[String],
    log: &crate::logs::LogOptions,
) -> Result<crate::logs::LogStream, Report> {
    struct Logs<'a> {
        services: &'a [String],
        log: &'a crate::logs::LogOptions,
    }
    impl WithTarget for Logs<'_> {
        type Output = Result<crate::logs::LogStream, Report>;

        async fn run<T: Target>(self, target: T) -> Self::Output {
            target.logs(self.services, self.log).await.map_err(boxed)
        }
    }
    connect(env, registry, options, Logs { services, log }).await?
}

/// The environment's lock while a session holds it: released by [`Guard::release`] on every path the
/// session takes. Dropped unreleased (the session's future itself was dropped), it releases in the
/// background on the runtime that is still running, if any.
struct Guard<L: EnvironmentLock> {
    lock: Option<L>,
}

impl<L: EnvironmentLock> Guard<L> {
    fn handle(&self) -> Option<L> {
        self.lock.clone()
    }

    async fn release(mut self) -> Result<(), L::Error> {
        match self.lock.take() {
            Some(l) => l.release().await,
            None => Ok(()),
        }
    }
}

impl<L: EnvironmentLock> Drop for Guard<L> {
    fn drop(&mut self) {
        if let Some(l) = self.lock.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(async move {
                let _ = l.release().await;
            });
        }
    }
}

/// Run `body` with the lock held, then release it: after a result, an error or a panic (resumed once
/// the lock is released). A failed release (a lease lost during the run) is a warning: what the run did
/// is done, and its own result stands.
async fn locked<L: EnvironmentLock, R>(
    guard: Guard<L>,
    warn: impl Fn(&str),
    body: impl Future<Output = Result<R, Report>>,
) -> Result<R, Report> {
    let result = AssertUnwindSafe(body).catch_unwind().await;
    if let Err(e) = guard.release().await {
        warn(&e.to_string());
    }
    match result {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The plan a session applies, with what it needs to run it.
pub struct Planned {
    pub plan: Plan,
    /// Each service's keyed build, by service name.
    pub keyed: HashMap<String, KeyedBuild>,
}

/// What the binary does during an apply.
pub trait ApplyUi {
    /// Plan against what runs (the binary owns the lock file, the stat cache and a saved plan's checks).
    fn plan(&self, live: &dyn LiveState) -> Result<Planned, Report>;
    /// Show the plan and, when it changes anything, confirm it; `false` applies nothing.
    fn review(&self, plan: &Plan) -> Result<bool, Report>;
    /// Which builder the builds use.
    fn builder(&self, kind: &BuilderKind);
    /// The run starts: the notes of running tasks go to what this returns.
    fn started(&self, plan: &Plan, prepared: &Prepared) -> Notify;
    /// A task started or ended, a stage opened.
    fn event(&self, event: &Event);
    /// The run ended (before the summary).
    fn finished(&self);
    fn warn(&self, message: &str);
}

/// What an apply needs besides the target.
pub struct ApplyRequest<'a> {
    /// The definitions' folder: `.pipeline/` (logs, task durations) goes there.
    pub base_dir: PathBuf,
    pub registry: Arc<RegistryClient>,
    /// Secret values, for the services' environment and build secrets.
    pub secrets: &'a Secrets,
    /// How long a deploy may wait for its service.
    pub timeout: Duration,
    /// Builds and deploys at a time, over the definitions' own.
    pub parallelism: Option<usize>,
    /// Who takes the lock (`user@host pid N`).
    pub holder: String,
    /// Ctrl-C: `false` before the run started or at a second press (the lock is released already: the
    /// binary ends the process), `true` during the run (running builds are cancelled, running deploys
    /// finish, nothing else starts).
    pub on_interrupt: Arc<dyn Fn(bool) + Send + Sync>,
}

/// How an apply ended.
pub enum Applied {
    /// Everything is at its definitions.
    NothingToDo(Plan),
    /// The review said no.
    Declined(Plan),
    Ran(Box<Ran>),
}

/// A run that started: the plan, what was prepared, how each task went, and where the services answer.
pub struct Ran {
    pub plan: Plan,
    pub prepared: Prepared,
    pub outcome: Outcome,
    pub endpoints: Vec<Endpoint>,
    /// `.pipeline/logs/<run>`.
    pub log_dir: PathBuf,
}

/// Apply the environment's definitions to the target they name.
pub async fn apply(
    env: &Environment,
    options: &TargetOptions,
    request: ApplyRequest<'_>,
    ui: &dyn ApplyUi,
) -> Result<Applied, Report> {
    struct Apply<'a, 'u> {
        request: ApplyRequest<'a>,
        ui: &'u dyn ApplyUi,
    }
    impl WithTarget for Apply<'_, '_> {
        type Output = Result<Applied, Report>;

        async fn run<T: Target>(self, target: T) -> Self::Output {
            apply_to(target, self.request, self.ui).await
        }
    }
    let registry = Arc::clone(&request.registry);
    connect(env, registry, options, Apply { request, ui }).await?
}

/// Apply to a given target: what [`apply`] does once connected.
pub async fn apply_to<T: Target>(target: T, request: ApplyRequest<'_>, ui: &dyn ApplyUi) -> Result<Applied, Report> {
    let target = Arc::new(target);
    let guard = Guard { lock: Some(target.lock(&request.holder).await.map_err(boxed)?) };
    // From here on Ctrl-C is ours: before the run it releases the lock and the binary exits; during the
    // run the first press cancels and a second one stops at once.
    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    let running = Arc::new(AtomicBool::new(false));
    let signals = {
        let (running, lock, hook) = (Arc::clone(&running), guard.handle(), Arc::clone(&request.on_interrupt));
        tokio::spawn(async move {
            let mut presses = 0;
            while tokio::signal::ctrl_c().await.is_ok() {
                presses += 1;
                if presses > 1 || !running.load(Ordering::SeqCst) {
                    if let Some(l) = &lock {
                        let _ = l.release().await;
                    }
                    hook(false);
                    return;
                }
                let _ = cancel_tx.send(true);
                hook(true);
            }
        })
    };
    let result = locked(guard, |w| ui.warn(w), run_locked(&target, &request, ui, &running, cancel_rx)).await;
    signals.abort();
    result
}

async fn run_locked<T: Target>(
    target: &Arc<T>,
    request: &ApplyRequest<'_>,
    ui: &dyn ApplyUi,
    running: &AtomicBool,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<Applied, Report> {
    let live = target.observe().await.map_err(boxed)?;
    let Planned { plan, keyed } = ui.plan(live.as_ref())?;
    let go = ui.review(&plan)?;
    if !plan.has_changes() {
        return Ok(Applied::NothingToDo(plan));
    }
    if !go {
        return Ok(Applied::Declined(plan));
    }

    let pipeline_dir = request.base_dir.join(".pipeline");
    let durations_file = pipeline_dir.join("durations.json");
    let mut durations = Durations::load(&durations_file);
    let slots = |n: usize| request.parallelism.unwrap_or(n);
    let secret = |name: &str| request.secrets.get(name).map(|v| v.expose().to_string());
    let prepared =
        prepare(&plan, &keyed, secret, &durations, slots(plan.parallelism.build), slots(plan.parallelism.deploy))
            .map_err(boxed)?;
    let log_dir = pipeline_dir.join("logs").join(run_id());
    let notify = ui.started(&plan, &prepared);

    // Builds need the engine; a run with every image in the mirror does not.
    let docker = match target.engine() {
        Some(d) => d,
        None if !prepared.builds.is_empty() => docker::connect().await.map_err(boxed)?,
        None => docker::idle().map_err(boxed)?,
    };
    let kind = if prepared.builds.is_empty() {
        BuilderKind::Classic { reason: "nothing to build".into() }
    } else {
        let kind = buildkit::detect(&docker).await;
        ui.builder(&kind);
        kind
    };
    let builder = Arc::new(DockerBuilder {
        kind,
        claims: target.build_claims(&docker),
        docker,
        builds: prepared.builds.clone(),
        log_dir: log_dir.clone(),
        registry: Arc::clone(&request.registry),
        labels: HashMap::from([(docker::labels::PROJECT.to_string(), plan.project.clone())]),
        project: plan.project.clone(),
        notify: Arc::clone(&notify),
        elsewhere: Default::default(),
    });
    let deployer = Arc::new(Deploying {
        target: Arc::clone(target),
        services: prepared.services.clone(),
        notify,
        timeout: request.timeout,
    });
    running.store(true, Ordering::SeqCst);
    let mut outcome = schedule::run(&prepared.schedule, Arc::clone(&builder), deployer, cancel, |e| ui.event(e)).await;
    if let Ok(elsewhere) = builder.elsewhere.lock() {
        for (n, by) in elsewhere.iter() {
            if let Some(r) = outcome.builds.get_mut(*n) {
                r.built_by = Some(by.clone());
            }
        }
    }
    ui.finished();
    durations.record(&prepared, &outcome);
    if let Err(e) = durations.save(&durations_file) {
        ui.warn(&format!("could not save task durations in {}: {e}", durations_file.display()));
    }
    let endpoints = if outcome.success() { target.endpoints().await.unwrap_or_default() } else { vec![] };
    Ok(Applied::Ran(Box::new(Ran { plan, prepared, outcome, endpoints, log_dir })))
}

/// Deploys the prepared services to a target, for the scheduler.
struct Deploying<T: Target> {
    target: Arc<T>,
    services: Vec<ServiceDeploy>,
    notify: Notify,
    timeout: Duration,
}

impl<T: Target> Deployer for Deploying<T> {
    async fn deploy(&self, n: usize) -> Result<(), TaskError> {
        let Some(s) = self.services.get(n) else { return Err(TaskError::new(format!("no service number {n}"))) };
        let run = Run { service: n, notify: Arc::clone(&self.notify), timeout: self.timeout };
        let result = if s.action == DeployAction::Delete {
            self.target.retire(s, &run).await
        } else {
            self.target.deploy(s, &run).await
        };
        result.map_err(|e| TaskError { kept_previous: T::kept_previous(&e), ..TaskError::from_diagnostic(&e) })
    }
}

/// `.pipeline/logs/<run>`: UTC date and time of the run, then the process id.
fn run_id() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}-{}", rem / 3600, rem / 60 % 60, rem % 60, std::process::id())
}

/// What the binary does during a destroy.
pub trait DestroyUi: Sync {
    /// Show what would be removed and confirm; `false` removes nothing.
    fn confirm(&self, inventory: &Inventory, volumes: bool) -> Result<bool, Report>;
    /// A service or object is being removed.
    fn removing(&self, what: &str);
    fn warn(&self, message: &str);
    /// Called on Ctrl-C once the lock is released (the binary says so and exits); `None`: Ctrl-C is not
    /// taken over, as in tests.
    fn on_interrupt(&self) -> Option<Arc<dyn Fn() + Send + Sync>> {
        None
    }
}

/// How a destroy ended.
pub enum Destroyed {
    /// Nothing of the environment runs (volumes may remain).
    Nothing(Inventory),
    Declined(Inventory),
    Removed(Inventory, Removed),
}

/// Remove everything of the environment from the target the definitions name; volumes only when
/// `volumes`.
pub async fn destroy(
    env: &Environment,
    registry: Arc<RegistryClient>,
    options: &TargetOptions,
    holder: &str,
    volumes: bool,
    only: &[String],
    ui: &dyn DestroyUi,
) -> Result<Destroyed, Report> {
    struct Destroy<'a> {
        stages: &'a [String],
        holder: &'a str,
        volumes: bool,
        only: &'a [String],
        ui: &'a dyn DestroyUi,
    }
    impl WithTarget for Destroy<'_> {
        type Output = Result<Destroyed, Report>;

        async fn run<T: Target>(self, target: T) -> Self::Output {
            destroy_with(&target, self.stages, self.holder, self.volumes, self.only, self.ui).await
        }
    }
    connect(env, registry, options, Destroy { stages: &env.stages, holder, volumes, only, ui }).await?
}

/// Destroy on a given target (`stages` in execution order): what [`destroy`] does once connected. With
/// `only`, just those services are removed (retired, later stages first); the rest keeps running.
pub async fn destroy_with<T: Target>(
    target: &T,
    stages: &[String],
    holder: &str,
    volumes: bool,
    only: &[String],
    ui: &dyn DestroyUi,
) -> Result<Destroyed, Report> {
    if !only.is_empty() && volumes {
        return Err(boxed(
            pipeline_planner::Diag::new(
                "pipeline::destroy::only_volumes",
                "`--volumes` with `--only` is not supported: a volume outlives its service".to_string(),
            )
            .help("remove the services with `destroy --only`, then the volume with `docker volume rm` or `kubectl delete pvc`"),
        ));
    }
    let guard = Guard { lock: Some(target.lock(holder).await.map_err(boxed)?) };
    // Ctrl-C at the confirmation (or while removing) releases the lock before the binary exits: the
    // question blocks this task, so another one listens.
    let signals = ui.on_interrupt().map(|hook| {
        let lock = guard.handle();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                if let Some(l) = &lock {
                    let _ = l.release().await;
                }
                hook();
            }
        })
    });
    let result = locked(guard, |w| ui.warn(w), async {
        let inventory = target.inventory().await.map_err(boxed)?;
        if !only.is_empty() {
            return destroy_only(target, stages, only, inventory, ui).await;
        }
        if inventory.items.is_empty() && (inventory.volumes.is_empty() || !volumes) {
            return Ok(Destroyed::Nothing(inventory));
        }
        if !ui.confirm(&inventory, volumes)? {
            return Ok(Destroyed::Declined(inventory));
        }
        let on = |what: &str| ui.removing(what);
        let removed = target.destroy(stages, volumes, &on).await.map_err(boxed)?;
        Ok(Destroyed::Removed(inventory, removed))
    })
    .await;
    if let Some(s) = signals {
        s.abort();
    }
    result
}

/// Remove only the services `only` names: each retired, later stages first.
async fn destroy_only<T: Target>(
    target: &T,
    stages: &[String],
    only: &[String],
    mut inventory: Inventory,
    ui: &dyn DestroyUi,
) -> Result<Destroyed, Report> {
    let running = inventory.services().into_iter().map(str::to_string).collect::<Vec<_>>();
    if let Some(name) = only.iter().find(|n| !running.contains(n)) {
        let help = pipeline_planner::error::suggest(name, running.iter().map(String::as_str), |all| {
            if all.is_empty() { "nothing of this environment runs".to_string() } else { format!("running: {all}") }
        });
        return Err(boxed(
            pipeline_planner::Diag::new(
                "pipeline::destroy::only_unknown",
                format!("`--only {name}`: no service `{name}` runs"),
            )
            .help(help),
        ));
    }
    inventory.items.retain(|i| only.contains(&i.service));
    inventory.volumes.clear();
    if !ui.confirm(&inventory, false)? {
        return Ok(Destroyed::Declined(inventory));
    }
    let live = target.observe().await.map_err(boxed)?;
    let deployed =
        live.observe("", "").map_err(|e| boxed(pipeline_planner::Diag::new("pipeline::destroy::live_state", e)))?;
    let stage_of = |name: &str| {
        deployed.iter().find(|l| l.name == name).and_then(|l| stages.iter().position(|s| *s == l.spec.stage))
    };
    let mut order: Vec<&String> = only.iter().collect();
    // Later stages first; unknown stages before all.
    order.sort_by_key(|n| std::cmp::Reverse(stage_of(n).map_or(usize::MAX, |i| i)));
    let mut removed = Removed::default();
    let notify: Notify = Arc::new(|_| {});
    for (i, name) in order.into_iter().enumerate() {
        ui.removing(name);
        let service = ServiceDeploy {
            name: name.clone(),
            action: DeployAction::Delete,
            spec: None,
            key: None,
            secrets: Default::default(),
        };
        let run = Run { service: i, notify: Arc::clone(&notify), timeout: Duration::from_secs(300) };
        target.retire(&service, &run).await.map_err(boxed)?;
        removed.items += inventory.items.iter().filter(|it| it.service == *name).count();
        removed.services.push(name.clone());
    }
    Ok(Destroyed::Removed(inventory, removed))
}
