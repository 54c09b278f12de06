//! `apply` and `destroy`: take the environment's lock, read what runs, plan, show, confirm, then let the
//! executor build, push and deploy stage by stage, with progress on stderr and a summary on stdout.

use crate::cli::{ApplyArgs, DestroyArgs, EvalInput};
use crate::commands::Report;
use crate::output;
use crate::planning::{make_plan, plain, read_secrets, report, with_environment};
use crate::progress::Progress;
use pipeline_executor::apply::{Durations, Prepared, prepare};
use pipeline_executor::build::{DockerBuilder, Note};
use pipeline_executor::buildkit::{self, BuilderKind};
use pipeline_executor::docker::Docker;
use pipeline_executor::k8s::deploy::KubeTarget;
use pipeline_executor::k8s::live::KubeLive;
use pipeline_executor::k8s::manifest::{self, Scope};
use pipeline_executor::k8s::{self, Cluster, lease};
use pipeline_executor::registry::RegistryClient;
use pipeline_executor::schedule::{self, Outcome, Status};
use pipeline_executor::target::{self, DockerTarget, Lock};
use pipeline_planner::graph::Graph;
use pipeline_planner::live::{LiveState, Observed};
use pipeline_planner::model::Target;
use pipeline_planner::plan::{BuildAction, DeployAction, KeyedBuild, Plan};
use pipeline_planner::render::{self, Style};
use pipeline_planner::secrets::Secrets;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
const EXIT_INTERRUPTED: u8 = 130;

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Report> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| plain("pipeline::runtime", format!("cannot start the async runtime: {e}")))
}

/// Where an environment runs.
enum Site {
    Docker(pipeline_executor::docker::Docker),
    Kube(Cluster, Scope),
}

/// The environment's lock: a lock container on Docker, a Lease on Kubernetes.
#[derive(Clone)]
enum Held {
    Docker(Lock),
    Kube(lease::Held),
}

impl Held {
    async fn release(&self) {
        match self {
            Held::Docker(l) => l.release().await,
            Held::Kube(l) => {
                if let Err(e) = l.release().await {
                    output::warn(&e.to_string());
                }
            }
        }
    }
}

/// Deploys to the environment's target.
enum AnyTarget {
    Docker(DockerTarget),
    Kube(KubeTarget),
}

impl schedule::Deployer for AnyTarget {
    async fn deploy(&self, n: usize) -> Result<(), String> {
        match self {
            AnyTarget::Docker(t) => t.deploy(n).await,
            AnyTarget::Kube(t) => t.deploy(n).await,
        }
    }
}

/// What the locked, planned environment gives the run.
struct Ready {
    site: Site,
    plan: Plan,
    keyed: HashMap<String, KeyedBuild>,
    secrets: Secrets,
    base_dir: PathBuf,
}

pub fn apply(mut args: ApplyArgs) -> Result<ExitCode, Report> {
    if args.json && !args.yes {
        return Err(plain(
            "pipeline::apply::json_needs_yes",
            "`--json` prints no plan to confirm: pass `--yes` too".into(),
        ));
    }
    // A saved plan: plan again from the same definitions and refuse it if anything changed.
    let saved = if args.input.file.extension().is_some_and(|e| e == "json") {
        let p = read_saved_plan(&args.input.file)?;
        let Some(origin) = p.origin.clone() else {
            return Err(plain(
                "pipeline::apply::no_origin",
                format!("`{}` does not say which definitions it was made from", args.input.file.display()),
            ));
        };
        args.input = EvalInput {
            file: origin.file,
            arg: origin.arg.into_iter().flat_map(|(a, b)| [a, b]).collect(),
            argstr: origin.argstr.into_iter().flat_map(|(a, b)| [a, b]).collect(),
            root: args.input.root.take(),
        };
        Some(p)
    } else {
        None
    };
    let secrets_file = match &args.secrets {
        Some(p) => Some(read_secrets(p)?),
        None => None,
    };
    let rt = runtime()?;
    let registry = Arc::new(RegistryClient::new(Default::default()).map_err(report)?);

    // Evaluate, lock the environment, read what runs, plan.
    let mut lock: Option<Held> = None;
    let planned = with_environment(&args.input, |env, sources| {
        let graph = Graph::new(env, sources).map_err(report)?;
        let names = pipeline_planner::plan::secret_names(env);
        let lookup = |var: &str| std::env::var(var).ok();
        let secrets = Secrets::resolve(&names, secrets_file.as_ref(), &lookup).map_err(|d| report(*d))?;
        let (site, live): (Site, Box<dyn LiveState>) = match &env.target {
            Target::Docker => {
                let docker = rt.block_on(pipeline_executor::docker::connect()).map_err(report)?;
                lock = Some(Held::Docker(
                    rt.block_on(Lock::acquire(&docker, &env.project, &env.name, &target::holder())).map_err(report)?,
                ));
                let live = rt.block_on(observe_docker(&docker, &env.project, &env.name))?;
                (Site::Docker(docker), Box::new(live))
            }
            Target::Kubernetes { .. } => {
                let scope = crate::kube::scope(env);
                let cluster = rt.block_on(crate::kube::connect(env, args.context.as_deref()))?;
                rt.block_on(cluster.ensure_namespace(&manifest::namespace(&scope))).map_err(report)?;
                lock =
                    Some(Held::Kube(rt.block_on(lease::acquire(&cluster, &scope, &target::holder())).map_err(report)?));
                let objects = rt.block_on(k8s::live::observe(&cluster, &scope)).map_err(report)?;
                let live = KubeLive { scope: scope.clone(), objects };
                (Site::Kube(cluster, scope), Box::new(live))
            }
        };
        let mode = crate::planning::lock_mode(args.locked, false);
        let (plan, keyed) = make_plan(env, &graph, sources, &secrets, registry.as_ref(), live.as_ref(), mode)?;
        let keyed =
            env.services.iter().zip(keyed.keyed).filter_map(|(s, k)| Some((s.name.clone(), k?.ok()?))).collect();
        Ok(Ready { site, plan, keyed, secrets, base_dir: env.base_dir().to_path_buf() })
    });
    let release = |lock: Option<Held>| {
        if let Some(l) = lock {
            rt.block_on(l.release());
        }
    };
    // From here on Ctrl-C is ours: before the run it releases the lock and exits 130; during the run the
    // first press cancels (builds abort, running deploys finish) and a second one stops at once.
    let (cancel_tx, cancel_rx) = tokio::sync::watch::channel(false);
    let running = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let running = Arc::clone(&running);
        let lock = lock.clone();
        rt.spawn(async move {
            let mut presses = 0;
            while tokio::signal::ctrl_c().await.is_ok() {
                presses += 1;
                if presses > 1 || !running.load(std::sync::atomic::Ordering::SeqCst) {
                    if let Some(l) = &lock {
                        l.release().await;
                    }
                    eprintln!("\nInterrupted");
                    std::process::exit(i32::from(EXIT_INTERRUPTED));
                }
                let _ = cancel_tx.send(true);
                eprintln!(
                    "\nInterrupted: running builds are cancelled, running deploys finish, nothing else starts (Ctrl-C again stops at once)"
                );
            }
        });
    }
    let ready = match planned {
        Ok(r) => r,
        Err(e) => {
            release(lock);
            return Err(e);
        }
    };
    if let Some(saved) = &saved
        && let Err(e) = check_saved(saved, &ready.plan)
    {
        release(lock);
        return Err(e);
    }
    let plan = &ready.plan;
    for w in &plan.warnings {
        output::warn(w);
    }
    if !args.json {
        out(&render::render(plan, Style { color: output::stdout_color() }));
    }
    if !plan.has_changes() {
        release(lock);
        if args.json {
            println!(
                "{}",
                json!({ "project": plan.project, "environment": plan.environment, "status": "nothing to do", "builds": [], "services": [] })
            );
        } else {
            eprintln!("Nothing to do: {}/{} is at its definitions", plan.project, plan.environment);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if !args.yes {
        match confirm(&format!("Apply these changes to {}/{}?", plan.project, plan.environment), Confirm::Apply) {
            Ok(true) => {}
            Ok(false) => {
                release(lock);
                eprintln!("Nothing applied");
                return Ok(ExitCode::from(1));
            }
            Err(e) => {
                release(lock);
                return Err(e);
            }
        }
    }

    // Run.
    let pipeline_dir = ready.base_dir.join(".pipeline");
    let durations_file = pipeline_dir.join("durations.json");
    let mut durations = Durations::load(&durations_file);
    let slots = |n: usize| args.parallelism.map_or(n, usize::from);
    let secret = |name: &str| ready.secrets.get(name).map(|v| v.expose().to_string());
    let prepared = match prepare(
        plan,
        &ready.keyed,
        secret,
        &durations,
        slots(plan.parallelism.build),
        slots(plan.parallelism.deploy),
    ) {
        Ok(p) => p,
        Err(e) => {
            release(lock);
            return Err(plain("pipeline::apply::prepare", e));
        }
    };
    let run_id = run_id();
    let log_dir = pipeline_dir.join("logs").join(&run_id);
    let progress = Arc::new(Progress::new(
        prepared.builds.iter().map(|b| format!("{} ({})", b.service, b.keyed.image.repository)).collect(),
        prepared.services.iter().map(|s| (s.name.clone(), s.action == DeployAction::Delete)).collect(),
        plan.stages.iter().map(|s| s.name.clone()).collect(),
        output::color(),
    ));
    let notify = {
        let p = Arc::clone(&progress);
        Arc::new(move |n: Note| p.note(n)) as pipeline_executor::build::Notify
    };
    // Builds need the engine; a Kubernetes run with every image in the mirror does not.
    let docker = match &ready.site {
        Site::Docker(d) => Ok(d.clone()),
        Site::Kube(..) if !prepared.builds.is_empty() => {
            rt.block_on(pipeline_executor::docker::connect()).map_err(report)
        }
        Site::Kube(..) => pipeline_executor::docker::idle().map_err(report),
    };
    let docker = match docker {
        Ok(d) => d,
        Err(e) => {
            release(lock);
            return Err(e);
        }
    };
    let kind = if prepared.builds.is_empty() {
        BuilderKind::Classic { reason: "nothing to build".into() }
    } else {
        let kind = rt.block_on(buildkit::detect(&docker));
        match &kind {
            BuilderKind::BuildKit { .. } => eprintln!("{}", kind.describe()),
            BuilderKind::Classic { .. } => output::warn(&kind.describe()),
        }
        kind
    };
    let builder = Arc::new(DockerBuilder {
        kind,
        docker: docker.clone(),
        builds: prepared.builds.clone(),
        log_dir: log_dir.clone(),
        registry: Arc::clone(&registry),
        labels: HashMap::from([(target::PROJECT.to_string(), plan.project.clone())]),
        project: plan.project.clone(),
        notify: Arc::clone(&notify),
        elsewhere: Default::default(),
    });
    let timeout = Duration::from_secs(args.timeout);
    let deployer = Arc::new(match &ready.site {
        Site::Docker(_) => {
            let mut t = DockerTarget::new(
                docker.clone(),
                &plan.project,
                &plan.environment,
                prepared.services.clone(),
                registry,
                notify,
            );
            t.timeout = timeout;
            AnyTarget::Docker(t)
        }
        Site::Kube(cluster, scope) => AnyTarget::Kube(KubeTarget {
            cluster: cluster.clone(),
            scope: scope.clone(),
            services: prepared.services.clone(),
            timeout,
            force_conflicts: args.force_conflicts,
            notify,
        }),
    });
    running.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut outcome = rt.block_on(async {
        let p = Arc::clone(&progress);
        schedule::run(&prepared.schedule, Arc::clone(&builder), deployer, cancel_rx, move |e| p.event(e)).await
    });
    if let Ok(elsewhere) = builder.elsewhere.lock() {
        for (n, by) in elsewhere.iter() {
            if let Some(r) = outcome.builds.get_mut(*n) {
                r.built_by = Some(by.clone());
            }
        }
    }
    progress.clear();
    release(lock);
    durations.record(&prepared, &outcome);
    if let Err(e) = durations.save(&durations_file) {
        output::warn(&format!("could not save task durations in {}: {e}", durations_file.display()));
    }

    let endpoints = if outcome.success() && matches!(ready.site, Site::Docker(_)) {
        rt.block_on(target::containers_of(&docker, &plan.project, &plan.environment, None)).unwrap_or_default()
    } else {
        vec![]
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome_json(plan, &prepared, &outcome)).unwrap_or_default());
    } else {
        out(&summary_table(plan, &prepared, &outcome, &endpoints, output::stdout_color()));
        if log_dir.exists() {
            eprintln!("Build logs: {}", log_dir.display());
        }
    }
    Ok(if outcome.cancelled {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if outcome.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What runs for an environment on the local Docker engine (for `plan`).
pub fn docker_live(project: &str, environment: &str) -> Result<Observed, Report> {
    let rt = runtime()?;
    rt.block_on(async {
        let docker = pipeline_executor::docker::connect().await.map_err(report)?;
        observe_docker(&docker, project, environment).await
    })
}

/// What runs on the engine for the environment, and the builds other runs are doing there.
async fn observe_docker(docker: &Docker, project: &str, environment: &str) -> Result<Observed, Report> {
    let services = target::observe(docker, project, environment).await.map_err(|e| {
        report(
            pipeline_planner::Diag::new("pipeline::plan::live_state", format!("cannot read what is deployed: {e}"))
                .help("check the Docker engine, or plan with `--offline` to compare with nothing deployed"),
        )
    })?;
    // Claims only say who is building: a failure to list them changes no decision.
    let building = pipeline_executor::claim::list(docker)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(k, h)| (k, h.to_string()))
        .collect();
    Ok(Observed { services, building })
}

pub fn destroy(args: DestroyArgs) -> Result<ExitCode, Report> {
    let rt = runtime()?;
    let (project, environment, stages, kube) = with_environment(&args.input, |env, _| {
        let kube = match env.target {
            Target::Docker => None,
            Target::Kubernetes { .. } => {
                Some((rt.block_on(crate::kube::connect(env, args.context.as_deref()))?, crate::kube::scope(env)))
            }
        };
        Ok((env.project.clone(), env.name.clone(), env.stages.clone(), kube))
    })?;
    if let Some((cluster, scope)) = kube {
        return destroy_kube(&rt, &cluster, &scope, &args);
    }
    let docker = rt.block_on(pipeline_executor::docker::connect()).map_err(report)?;
    let lock = rt.block_on(Lock::acquire(&docker, &project, &environment, &target::holder())).map_err(report)?;
    let result = (|| {
        let running = rt
            .block_on(target::containers_of(&docker, &project, &environment, None))
            .map_err(|e| plain("pipeline::destroy::list", e))?;
        let volumes = rt
            .block_on(target::volumes_of(&docker, &project, &environment))
            .map_err(|e| plain("pipeline::destroy::list", e))?;
        if running.is_empty() && (volumes.is_empty() || !args.volumes) {
            eprintln!("Nothing to destroy: no service of {project}/{environment} runs");
            if !volumes.is_empty() {
                eprintln!("Its data volumes remain: {} (remove them with `--volumes`)", volumes.join(", "));
            }
            return Ok(ExitCode::SUCCESS);
        }
        let services: std::collections::BTreeSet<&str> = running.iter().map(|c| c.service.as_str()).collect();
        if running.is_empty() {
            println!("Destroy {project}/{environment}: no service runs; {} data volumes", volumes.len());
        } else {
            println!("Destroy {project}/{environment}: {} services, {} containers", services.len(), running.len());
        }
        for c in &running {
            println!("  - {} ({}, {})", c.name, c.service, c.status);
        }
        if args.volumes {
            for v in &volumes {
                println!("  - volume {v}");
            }
        }
        if !args.yes && !confirm(&format!("Remove every service of {project}/{environment}?"), Confirm::Destroy)? {
            eprintln!("Nothing removed");
            return Ok(ExitCode::from(1));
        }
        let done = rt
            .block_on(target::destroy(&docker, &project, &environment, &stages, args.volumes, |s| {
                eprintln!("removing {s}")
            }))
            .map_err(|e| plain("pipeline::destroy::failed", e))?;
        if !done.services.is_empty() {
            println!(
                "Removed {} services ({} containers) and the network {project}-{environment}",
                done.services.len(),
                done.containers
            );
        }
        if !done.volumes_kept.is_empty() {
            println!("Kept the data volumes {} (remove them with `--volumes`)", done.volumes_kept.join(", "));
        }
        if !done.volumes_removed.is_empty() {
            println!("Removed the data volumes {}", done.volumes_removed.join(", "));
        }
        Ok(ExitCode::SUCCESS)
    })();
    rt.block_on(lock.release());
    result
}

/// `destroy` on Kubernetes: every object of the environment, under its lease; volume claims stay
/// unless `--volumes`.
fn destroy_kube(
    rt: &tokio::runtime::Runtime,
    cluster: &Cluster,
    scope: &Scope,
    args: &DestroyArgs,
) -> Result<ExitCode, Report> {
    let (project, environment, ns) = (&scope.project, &scope.environment, &scope.namespace);
    let held = rt.block_on(lease::acquire(cluster, scope, &target::holder())).map_err(report)?;
    let result = (|| {
        let objects = rt.block_on(k8s::live::observe(cluster, scope)).map_err(report)?;
        let claims = rt.block_on(cluster.list("PersistentVolumeClaim", &scope.selector())).map_err(report)?;
        let names: Vec<String> = claims.iter().filter_map(|c| c.metadata.name.clone()).collect();
        if objects.is_empty() && (claims.is_empty() || !args.volumes) {
            eprintln!("Nothing to destroy: no object of {project}/{environment} in namespace {ns}");
            if !names.is_empty() {
                eprintln!("Its volume claims remain: {} (remove them with `--volumes`)", names.join(", "));
            }
            return Ok(ExitCode::SUCCESS);
        }
        println!("Destroy {project}/{environment} in namespace {ns}: {} objects", objects.len());
        for o in &objects {
            println!("  - {} ({})", o.id(), o.service);
        }
        if !args.yes && !confirm(&format!("Remove every object of {project}/{environment}?"), Confirm::Destroy)? {
            eprintln!("Nothing removed");
            return Ok(ExitCode::from(1));
        }
        let n = rt.block_on(k8s::deploy::destroy(cluster, scope, |o| eprintln!("deleting {o}"))).map_err(report)?;
        println!("Removed {n} objects");
        if args.volumes {
            for c in &names {
                rt.block_on(cluster.delete("PersistentVolumeClaim", c)).map_err(report)?;
            }
            if !names.is_empty() {
                println!("Removed the volume claims {}", names.join(", "));
            }
        } else if !names.is_empty() {
            println!("Kept the volume claims {} (remove them with `--volumes`)", names.join(", "));
        }
        Ok(ExitCode::SUCCESS)
    })();
    if let Err(e) = rt.block_on(held.release()) {
        output::warn(&e.to_string());
    }
    result
}

/// Data on stdout; a closed pipe (`| head`) is not an error worth a panic.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// What is being confirmed: it decides the error code and the hint when there is no terminal.
#[derive(Clone, Copy)]
enum Confirm {
    Apply,
    Destroy,
}

impl Confirm {
    fn code(self) -> &'static str {
        match self {
            Confirm::Apply => "pipeline::apply::confirm",
            Confirm::Destroy => "pipeline::destroy::confirm",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Confirm::Apply => "review the plan, then run again with `--yes`",
            Confirm::Destroy => "check the list of what would be removed, then run again with `--yes`",
        }
    }
}

/// Ask on the terminal; without one, refuse (pass `--yes`).
fn confirm(question: &str, what: Confirm) -> Result<bool, Report> {
    if !std::io::stdin().is_terminal() {
        return Err(report(
            pipeline_planner::Diag::new(
                what.code(),
                "there is no terminal to confirm on, and `--yes` was not given".to_string(),
            )
            .help(what.help()),
        ));
    }
    eprint!("{question} Only `yes` is accepted: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).map_err(|e| plain(what.code(), e.to_string()))?;
    Ok(answer.trim() == "yes")
}

fn read_saved_plan(p: &Path) -> Result<Plan, Report> {
    let text = std::fs::read_to_string(p).map_err(|e| {
        plain("pipeline::apply::saved_plan", format!("cannot read the saved plan `{}`: {e}", p.display()))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        report(
            pipeline_planner::Diag::new(
                "pipeline::apply::saved_plan",
                format!("`{}` is not a saved plan: {e}", p.display()),
            )
            .help("save one with `pipeline plan --out plan.json`"),
        )
    })
}

/// A saved plan is stale when the desired state (definitions, build contexts) or what the target runs
/// changed since it was made.
fn check_saved(saved: &Plan, now: &Plan) -> Result<(), Report> {
    let stale = |why: String| {
        Err(report(
            pipeline_planner::Diag::new("pipeline::apply::stale", format!("saved plan is stale: {why}"))
                .help("make a new plan with `pipeline plan --out plan.json`, review it, and apply that"),
        ))
    };
    if saved.project != now.project || saved.environment != now.environment {
        return stale(format!(
            "it is for {}/{}, the definitions now give {}/{}",
            saved.project, saved.environment, now.project, now.environment
        ));
    }
    if saved.digest != now.digest {
        let before: BTreeMap<&str, (&Option<String>, &Option<serde_json::Value>)> =
            saved.services().map(|(_, s)| (s.name.as_str(), (&s.build.key, &s.spec))).collect();
        let changed: Vec<&str> = now
            .services()
            .filter(|(_, s)| before.get(s.name.as_str()) != Some(&(&s.build.key, &s.spec)))
            .map(|(_, s)| s.name.as_str())
            .collect();
        let which = if changed.is_empty() { "the set of services".to_string() } else { changed.join(", ") };
        return stale(format!("the definitions or build contexts changed since it was made ({which})"));
    }
    let actions: BTreeMap<&str, DeployAction> =
        saved.services().map(|(_, s)| (s.name.as_str(), s.deploy.action)).collect();
    for (_, s) in now.services() {
        if actions.get(s.name.as_str()) != Some(&s.deploy.action) {
            return stale(format!(
                "what runs changed since it was made: `{}` was to be {}, now it is to be {}",
                s.name,
                actions.get(s.name.as_str()).map_or("absent".to_string(), |a| action_word(*a).to_string()),
                action_word(s.deploy.action)
            ));
        }
    }
    Ok(())
}

fn action_word(a: DeployAction) -> &'static str {
    match a {
        DeployAction::Create => "created",
        DeployAction::Update => "updated",
        DeployAction::Replace => "replaced",
        DeployAction::Delete => "deleted",
        DeployAction::Unchanged => "unchanged",
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

/// How a service's image came to be in this run.
fn build_word(plan_action: BuildAction, report: Option<&schedule::TaskReport>, builder: bool) -> &'static str {
    match (report.map(|r| r.status), plan_action) {
        (Some(Status::Done), _) if builder && report.is_some_and(|r| r.built_by.is_some()) => "built by other run",
        (Some(Status::Done), _) if builder => "built",
        (Some(Status::Done), _) => "shared",
        (Some(Status::Failed), _) => "failed",
        (Some(Status::Cancelled), _) => "cancelled",
        (Some(Status::NotStarted | Status::Unchanged), _) => "not started",
        (None, BuildAction::Build) => "-",
        (None, BuildAction::Cached | BuildAction::Shared) => "cached",
        (None, BuildAction::None) => "-",
    }
}

fn deploy_word(action: DeployAction, r: &schedule::TaskReport, scheduled: bool) -> &'static str {
    match r.status {
        Status::Unchanged => "unchanged",
        // The docker target creates a scheduled job's container but cannot run it on a schedule.
        Status::Done if scheduled && action != DeployAction::Delete => "unscheduled",
        Status::Done => action_word(action),
        Status::Failed => "failed",
        Status::NotStarted => "not started",
        Status::Cancelled => "cancelled",
    }
}

/// One line of the summary.
struct Row<'a> {
    name: &'a str,
    stage: &'a str,
    build: &'static str,
    deploy: &'static str,
    took: Option<Duration>,
    error: Option<&'a str>,
}

fn rows<'a>(plan: &'a Plan, prepared: &'a Prepared, outcome: &'a Outcome) -> Vec<Row<'a>> {
    let by_name: HashMap<&str, &pipeline_planner::plan::ServicePlan> =
        plan.services().map(|(_, s)| (s.name.as_str(), s)).collect();
    prepared
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let task = &prepared.schedule.services[i];
            let r = &outcome.deploys[i];
            let sp = by_name.get(s.name.as_str());
            let action = sp.map_or(BuildAction::None, |p| p.build.action);
            let build_report = task.build.and_then(|b| outcome.builds.get(b));
            let builder = task.build.and_then(|b| prepared.builds.get(b)).is_some_and(|b| b.service == s.name);
            let mut error = r.error.as_deref();
            if error.is_none() {
                error = build_report.filter(|_| builder).and_then(|b| b.error.as_deref());
            }
            let took = match (build_report.filter(|_| builder).and_then(|b| b.duration()), r.duration()) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            Row {
                name: s.name.as_str(),
                stage: plan.stages.get(task.stage).map_or("?", |s| s.name.as_str()),
                build: build_word(action, build_report, builder),
                deploy: deploy_word(
                    s.action,
                    r,
                    s.spec.as_ref().and_then(|sp| sp.get("schedule")).is_some_and(|v| !v.is_null()),
                ),
                took,
                error,
            }
        })
        .collect()
}

fn summary_table(
    plan: &Plan,
    prepared: &Prepared,
    outcome: &Outcome,
    endpoints: &[target::Listed],
    color: bool,
) -> String {
    use std::fmt::Write as _;
    let paint = |code: &str, s: &str| if color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() };
    let rows = rows(plan, prepared, outcome);
    let w0 = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max("SERVICE".len());
    let w1 = rows.iter().map(|r| r.stage.len()).max().unwrap_or(0).max("STAGE".len());
    let w2 = rows.iter().map(|r| r.build.len()).max().unwrap_or(0).max(11);
    let mut out = String::new();
    let _ = writeln!(out, "\n{:<w0$}  {:<w1$}  {:<w2$}  {:<11}  TIME", "SERVICE", "STAGE", "BUILD", "DEPLOY");
    for Row { name, stage, build: b, deploy: d, took, .. } in &rows {
        let took = took.map_or("-".to_string(), |t| format!("{:.1}s", t.as_secs_f64()));
        let d_shown = match *d {
            "failed" => paint("31", &format!("{d:<11}")),
            "not started" | "cancelled" => paint("33", &format!("{d:<11}")),
            _ => format!("{d:<11}"),
        };
        let _ = writeln!(out, "{name:<w0$}  {stage:<w1$}  {b:<w2$}  {d_shown}  {took}");
    }
    for Row { name, error, .. } in &rows {
        if let Some(e) = error {
            let _ = writeln!(out, "\n{} {name}:", paint("31", "error in"));
            for l in e.lines().take(16) {
                let _ = writeln!(out, "  {l}");
            }
        }
    }
    let built = outcome.builds.iter().filter(|r| r.status == Status::Done && r.built_by.is_none()).count();
    let deployed = outcome.deploys.iter().filter(|r| r.status == Status::Done).count();
    let elsewhere = match outcome.builds.iter().filter(|r| r.built_by.is_some()).count() {
        0 => String::new(),
        n => format!(" ({n} more built by another run)"),
    };
    let unchanged = outcome.deploys.iter().filter(|r| r.status == Status::Unchanged).count();
    let secs = outcome.elapsed.as_secs_f64();
    if outcome.cancelled {
        let _ = writeln!(
            out,
            "\n{} after {secs:.1}s: {built} built, {deployed} deployed; deployed services keep running",
            paint("33", "Interrupted")
        );
    } else if let Some(stage) = outcome.failed_stage {
        let not_started = outcome.deploys.iter().filter(|r| r.status == Status::NotStarted).count();
        let name = plan.stages.get(stage).map_or("?", |s| s.name.as_str());
        let _ = writeln!(
            out,
            "\n{} in stage {name} after {secs:.1}s: {built} built, {deployed} deployed, {not_started} not started; what was deployed keeps running, and a re-run resumes",
            paint("31", "Failed")
        );
    } else {
        let _ = writeln!(
            out,
            "\n{} {}/{} in {secs:.1}s: {built} built{elsewhere}, {deployed} deployed, {unchanged} unchanged",
            paint("32", "Applied"),
            plan.project,
            plan.environment
        );
    }
    let published: Vec<&target::Listed> = endpoints.iter().filter(|c| !c.ports.is_empty()).collect();
    if !published.is_empty() {
        let _ = writeln!(out, "Published ports:");
        for c in published {
            let _ = writeln!(
                out,
                "  {:<w$}  {}",
                c.name,
                c.ports.join(", "),
                w = w0 + plan.project.len() + plan.environment.len() + 4
            );
        }
    }
    out
}

fn ms(d: Option<Duration>) -> serde_json::Value {
    d.map_or(serde_json::Value::Null, |d| json!(d.as_secs_f64() * 1000.0))
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Unchanged => "unchanged",
        Status::Done => "done",
        Status::Failed => "failed",
        Status::NotStarted => "not started",
        Status::Cancelled => "cancelled",
    }
}

/// The outcome for machines (`apply --json`): times in milliseconds from the start of the run.
fn outcome_json(plan: &Plan, prepared: &Prepared, outcome: &Outcome) -> serde_json::Value {
    let builds: Vec<_> = prepared
        .builds
        .iter()
        .zip(&outcome.builds)
        .map(|(b, r)| {
            json!({
                "service": b.service, "image": b.keyed.image.to_string(), "key": b.keyed.key,
                "status": status_word(r.status), "started_ms": ms(r.started), "ended_ms": ms(r.ended), "error": r.error,
                "built_by": r.built_by,
            })
        })
        .collect();
    let services: Vec<_> = rows(plan, prepared, outcome)
        .into_iter()
        .zip(&outcome.deploys)
        .map(|(row, r)| {
            json!({
                "name": row.name, "stage": row.stage, "build": row.build, "deploy": row.deploy,
                "started_ms": ms(r.started), "ended_ms": ms(r.ended), "error": row.error,
            })
        })
        .collect();
    let status = if outcome.cancelled {
        "cancelled"
    } else if outcome.success() {
        "succeeded"
    } else {
        "failed"
    };
    let failed_stage = outcome.failed_stage.and_then(|s| plan.stages.get(s)).map(|s| s.name.clone());
    json!({
        "project": plan.project, "environment": plan.environment, "status": status,
        "failed_stage": failed_stage, "elapsed_ms": outcome.elapsed.as_secs_f64() * 1000.0,
        "builds": builds, "services": services,
    })
}
