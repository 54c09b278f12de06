//! `apply` and `destroy`: take the environment's lock, read what runs, plan, show, confirm, then let the
//! executor build, push and deploy stage by stage, with progress on stderr and a summary on stdout.

use crate::cli::{ApplyArgs, DestroyArgs, EvalInput};
use crate::commands::Report;
use crate::output;
use crate::planning::{How, make_plan, plain, read_secrets, report, with_environment};
use crate::progress::Progress;
use pipeline_executor::build::{Note, Notify};
use pipeline_executor::buildkit::BuilderKind;
use pipeline_executor::prepare::Prepared;
use pipeline_executor::registry::RegistryClient;
use pipeline_executor::schedule::{self, Event, Outcome, Status, TaskError};
use pipeline_executor::session::{
    self, Applied, ApplyRequest, ApplyUi, DestroyUi, Destroyed, Planned, Ran, TargetOptions,
};
use pipeline_executor::target::{Endpoint, Inventory, holder};
use pipeline_lang::span::SourceMap;
use pipeline_planner::Environment;
use pipeline_planner::graph::Graph;
use pipeline_planner::live::LiveState;
use pipeline_planner::plan::{BuildAction, DeployAction, Plan};
use pipeline_planner::render::{self, Style};
use pipeline_planner::secrets::Secrets;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
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

/// What `apply` shows and asks while the session runs.
struct Terminal<'a> {
    env: &'a Environment,
    graph: &'a Graph,
    sources: &'a SourceMap,
    secrets: &'a Secrets,
    registry: &'a RegistryClient,
    locked: bool,
    saved: Option<&'a Plan>,
    only: Option<pipeline_planner::plan::Only>,
    json: bool,
    yes: bool,
    progress: OnceLock<Arc<Progress>>,
}

impl ApplyUi for Terminal<'_> {
    fn plan(&self, live: &dyn LiveState) -> Result<Planned, Report> {
        let mode = crate::planning::lock_mode(self.locked, false);
        let (plan, keyed) = make_plan(
            self.env,
            self.graph,
            self.sources,
            self.secrets,
            self.registry,
            live,
            How { mode, only: self.only.as_ref() },
        )?;
        let keyed =
            self.env.services.iter().zip(keyed.keyed).filter_map(|(s, k)| Some((s.name.clone(), k?.ok()?))).collect();
        if let Some(saved) = self.saved {
            check_saved(saved, &plan)?;
        }
        Ok(Planned { plan, keyed })
    }

    fn review(&self, plan: &Plan) -> Result<bool, Report> {
        for w in &plan.warnings {
            output::warn(w);
        }
        if !self.json {
            out(&render::render(plan, Style { color: output::stdout_color() }));
        }
        if !plan.has_changes() || self.yes {
            return Ok(true);
        }
        confirm(&format!("Apply these changes to {}/{}?", plan.project, plan.environment), Confirm::Apply)
    }

    fn builder(&self, kind: &BuilderKind) {
        match kind {
            BuilderKind::BuildKit { .. } => eprintln!("{}", kind.describe()),
            BuilderKind::Classic { .. } => output::warn(&kind.describe()),
        }
    }

    fn started(&self, plan: &Plan, prepared: &Prepared) -> Notify {
        let progress = Arc::new(Progress::new(
            prepared.builds.iter().map(|b| format!("{} ({})", b.service, b.keyed.image.repository)).collect(),
            prepared.services.iter().map(|s| (s.name.clone(), s.action == DeployAction::Delete)).collect(),
            plan.stages.iter().map(|s| s.name.clone()).collect(),
            output::color(),
        ));
        let _ = self.progress.set(Arc::clone(&progress));
        Arc::new(move |n: Note| progress.note(n))
    }

    fn event(&self, event: &Event) {
        if let Some(p) = self.progress.get() {
            p.event(event);
        }
    }

    fn finished(&self) {
        if let Some(p) = self.progress.get() {
            p.clear();
        }
    }

    fn warn(&self, message: &str) {
        output::warn(message);
    }
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
        if !args.only.only.is_empty() {
            return Err(report(
                pipeline_planner::Diag::new(
                    "pipeline::apply::only_saved",
                    "`--only` cannot change what a saved plan covers".to_string(),
                )
                .help("make the partial plan with `pipeline plan --only … --out plan.json`, and apply that"),
            ));
        }
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
    let applied = with_environment(&args.input, |env, sources| {
        let graph = Graph::new(env, sources).map_err(report)?;
        let names = pipeline_planner::plan::secret_names(env);
        let lookup = |var: &str| std::env::var(var).ok();
        let secrets = Secrets::resolve(&names, secrets_file.as_ref(), &lookup).map_err(|d| report(*d))?;
        let ui = Terminal {
            env,
            graph: &graph,
            sources,
            secrets: &secrets,
            registry: registry.as_ref(),
            locked: args.locked,
            saved: saved.as_ref(),
            // A saved partial plan is applied with its own selection, never a wider one.
            only: saved.as_ref().map_or_else(|| args.only.selection(), |p| p.selection.as_ref().map(|s| s.only())),
            json: args.json,
            yes: args.yes,
            progress: OnceLock::new(),
        };
        let options = TargetOptions { context: args.context.clone(), force_conflicts: args.force_conflicts };
        let request = ApplyRequest {
            base_dir: env.base_dir().to_path_buf(),
            registry: Arc::clone(&registry),
            secrets: &secrets,
            timeout: args.timeout,
            parallelism: args.parallelism.map(usize::from),
            holder: holder(),
            on_interrupt: Arc::new(|running| {
                if running {
                    eprintln!(
                        "\nInterrupted: running builds are cancelled, running deploys finish, nothing else starts (Ctrl-C again stops at once)"
                    );
                } else {
                    eprintln!("\nInterrupted");
                    pipeline_executor::docker::ssh::close();
                    std::process::exit(i32::from(EXIT_INTERRUPTED));
                }
            }),
        };
        rt.block_on(session::apply(env, &options, request, &ui))
    })?;
    let ran = match applied {
        Applied::NothingToDo(plan) => {
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
        Applied::Declined(_) => {
            eprintln!("Nothing applied");
            return Ok(ExitCode::from(1));
        }
        Applied::Ran(ran) => ran,
    };
    let Ran { plan, prepared, outcome, endpoints, log_dir } = *ran;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome_json(&plan, &prepared, &outcome)).unwrap_or_default());
    } else {
        out(&summary_table(&plan, &prepared, &outcome, &endpoints, output::stdout_color()));
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

/// What runs for an environment (for `plan`).
pub fn live_state(env: &Environment, context: Option<&str>) -> Result<Box<dyn LiveState + Send + Sync>, Report> {
    let rt = runtime()?;
    let registry = Arc::new(RegistryClient::new(Default::default()).map_err(report)?);
    let options = TargetOptions { context: context.map(str::to_string), force_conflicts: false };
    rt.block_on(session::observe(env, registry, &options))
}

/// What `destroy` shows and asks.
struct DestroyTerminal<'a> {
    project: &'a str,
    environment: &'a str,
    yes: bool,
    /// `--only`: the services to remove.
    only: &'a [String],
}

impl DestroyUi for DestroyTerminal<'_> {
    fn confirm(&self, inventory: &Inventory, volumes: bool) -> Result<bool, Report> {
        let (project, environment) = (self.project, self.environment);
        let place = inventory.place.as_ref().map(|p| format!(" in {p}")).unwrap_or_default();
        let unit = inventory.unit;
        if inventory.items.is_empty() {
            println!("Destroy {project}/{environment}{place}: nothing runs; {} data volumes", inventory.volumes.len());
        } else {
            println!(
                "Destroy {project}/{environment}{place}: {} services, {} {unit}s",
                inventory.services().len(),
                inventory.items.len()
            );
        }
        for i in &inventory.items {
            match &i.state {
                Some(state) => println!("  - {} ({}, {state})", i.name, i.service),
                None => println!("  - {} ({})", i.name, i.service),
            }
        }
        if volumes {
            for v in &inventory.volumes {
                println!("  - volume {v}");
            }
        }
        if self.yes {
            return Ok(true);
        }
        let what = if self.only.is_empty() { "every service".to_string() } else { self.only.join(", ") };
        confirm(&format!("Remove {what} of {project}/{environment}?"), Confirm::Destroy)
    }

    fn removing(&self, what: &str) {
        eprintln!("removing {what}");
    }

    fn warn(&self, message: &str) {
        output::warn(message);
    }

    fn on_interrupt(&self) -> Option<Arc<dyn Fn() + Send + Sync>> {
        Some(Arc::new(|| {
            eprintln!("\nInterrupted: the lock is released; run destroy again to finish what it started");
            pipeline_executor::docker::ssh::close();
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }))
    }
}

pub fn destroy(args: DestroyArgs) -> Result<ExitCode, Report> {
    let rt = runtime()?;
    let registry = Arc::new(RegistryClient::new(Default::default()).map_err(report)?);
    let (project, environment, destroyed) = with_environment(&args.input, |env, _| {
        let only = crate::cli::trimmed(&args.only);
        let ui = DestroyTerminal { project: &env.project, environment: &env.name, yes: args.yes, only: &only };
        let options = TargetOptions { context: args.context.clone(), force_conflicts: false };
        let destroyed = rt.block_on(session::destroy(env, registry, &options, &holder(), args.volumes, &only, &ui))?;
        Ok((env.project.clone(), env.name.clone(), destroyed))
    })?;
    match destroyed {
        Destroyed::Nothing(inventory) => {
            let place = inventory.place.as_ref().map(|p| format!(" in {p}")).unwrap_or_default();
            eprintln!("Nothing to destroy: no service of {project}/{environment} runs{place}");
            if !inventory.volumes.is_empty() {
                eprintln!("Its data volumes remain: {} (remove them with `--volumes`)", inventory.volumes.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Destroyed::Declined(_) => {
            eprintln!("Nothing removed");
            Ok(ExitCode::from(1))
        }
        Destroyed::Removed(inventory, done) => {
            if !done.services.is_empty() {
                let network = done.network.as_ref().map(|n| format!(" and the network {n}")).unwrap_or_default();
                println!("Removed {} services ({} {}s){network}", done.services.len(), done.items, inventory.unit);
            }
            if !done.volumes_kept.is_empty() {
                println!("Kept the data volumes {} (remove them with `--volumes`)", done.volumes_kept.join(", "));
            }
            if !done.volumes_removed.is_empty() {
                println!("Removed the data volumes {}", done.volumes_removed.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
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
        let before: BTreeMap<&str, (&Option<String>, &Option<pipeline_planner::DeploySpec>)> =
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
    error: Option<&'a TaskError>,
    spec: Option<&'a pipeline_planner::DeploySpec>,
    /// Deployed now or already at its spec.
    serves: bool,
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
            let mut error = r.error.as_ref();
            if error.is_none() {
                error = build_report.filter(|_| builder).and_then(|b| b.error.as_ref());
            }
            let took = match (build_report.filter(|_| builder).and_then(|b| b.duration()), r.duration()) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            Row {
                name: s.name.as_str(),
                stage: plan.stages.get(task.stage).map_or("?", |s| s.name.as_str()),
                build: build_word(action, build_report, builder),
                deploy: deploy_word(s.action, r, s.spec.as_ref().is_some_and(|sp| sp.is_scheduled())),
                took,
                error,
                spec: s.spec.as_ref(),
                serves: matches!(r.status, Status::Done | Status::Unchanged),
            }
        })
        .collect()
}

fn summary_table(plan: &Plan, prepared: &Prepared, outcome: &Outcome, endpoints: &[Endpoint], color: bool) -> String {
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
            let kept = if e.kept_previous { " (kept the previous version: it still serves)" } else { "" };
            let _ = writeln!(out, "\n{} {name}{kept}:", paint("31", "error in"));
            for l in e.message.lines().take(16) {
                let _ = writeln!(out, "  {l}");
            }
            if let Some(help) = &e.help {
                let _ = writeln!(out, "  help: {help}");
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
    let public: Vec<(&str, Vec<String>)> = rows
        .iter()
        .filter(|r| r.serves)
        .filter_map(|r| Some((r.name, public_urls(plan, r.spec?))))
        .filter(|(_, urls)| !urls.is_empty())
        .collect();
    if !public.is_empty() {
        let _ = writeln!(out, "Public endpoints:");
        let w = public.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        for (name, urls) in public {
            let _ = writeln!(out, "  {name:<w$}  {}", urls.join(", "));
        }
    }
    let published: Vec<&Endpoint> = endpoints.iter().filter(|c| !c.ports.is_empty()).collect();
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

/// Where a service answers from outside, as the target serves its public endpoints.
fn public_urls(plan: &Plan, spec: &pipeline_planner::DeploySpec) -> Vec<String> {
    spec.endpoints.iter().map(|e| plan.target.url(e)).collect()
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
                "status": status_word(r.status), "started_ms": ms(r.started), "ended_ms": ms(r.ended),
                "error": r.error.as_ref().map(|e| &e.message),
                "error_code": r.error.as_ref().and_then(|e| e.code.as_ref()),
                "error_help": r.error.as_ref().and_then(|e| e.help.as_ref()),
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
                "started_ms": ms(r.started), "ended_ms": ms(r.ended),
                "error": row.error.map(|e| &e.message),
                "error_code": row.error.and_then(|e| e.code.as_ref()),
                "error_help": row.error.and_then(|e| e.help.as_ref()),
                "kept_previous": row.error.is_some_and(|e| e.kept_previous),
                "endpoints": row.spec.map(|sp| public_urls(plan, sp)).unwrap_or_default(),
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
