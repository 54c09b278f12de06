//! `status`: per service, what runs now compared with the definitions: stage, type, health, replicas,
//! restarts, since when, the deployed key, endpoints, and whether it differs from the definitions (the
//! reason in one line, as `plan` would say). Exit 0: all healthy and at their definitions; 2: something
//! differs or is unhealthy; 1: an error.

use crate::cli::StatusArgs;
use crate::commands::Report;
use crate::planning::{How, make_plan, plain, read_secrets, report, with_environment};
use pipeline_executor::registry::RegistryClient;
use pipeline_executor::session::{self, TargetOptions};
use pipeline_executor::target::ServiceStatus;
use pipeline_planner::cache::Offline;
use pipeline_planner::graph::Graph;
use pipeline_planner::live::{LiveService, LiveState, Recorded};
use pipeline_planner::pins::LockMode;
use pipeline_planner::plan::{DeployAction, Plan, ServicePlan};
use pipeline_planner::render::{self, Style};
use pipeline_planner::secrets::Secrets;
use serde::Serialize;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

/// The version of `status --json`'s format (docs/status-format.md).
const STATUS_FORMAT_VERSION: u32 = 1;

/// One service in the status.
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    stage: String,
    #[serde(rename = "type")]
    kind: String,
    /// Whether anything of it runs.
    deployed: bool,
    /// `healthy`, `starting`, `unhealthy`, `completed`, `failed`, `scheduled`; null when not deployed.
    health: Option<&'static str>,
    ready: u32,
    desired: u32,
    restarts: u32,
    since: Option<String>,
    key: Option<String>,
    endpoints: Vec<String>,
    /// `at definitions`, `differs`, `not deployed`, `removed from the definitions`.
    definitions: &'static str,
    /// Why it differs, as `plan` says it (first change), when it does.
    reason: Option<String>,
}

impl Row {
    fn is_good(&self) -> bool {
        self.definitions == "at definitions"
            && self.health.is_some_and(|h| matches!(h, "healthy" | "completed" | "scheduled"))
    }
}

#[derive(Serialize)]
struct Status<'a> {
    format_version: u32,
    project: &'a str,
    environment: &'a str,
    target: String,
    /// False when secret values were not given: secrets are then not compared.
    secrets_compared: bool,
    services: &'a [Row],
}

pub fn status(args: StatusArgs) -> Result<ExitCode, Report> {
    let secrets_file = match &args.secrets {
        Some(p) => Some(read_secrets(p)?),
        None => None,
    };
    let recorded: Option<Vec<ServiceStatus>> = match &args.live_status {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| plain("pipeline::status::live", format!("cannot read `{}`: {e}", p.display())))?;
            Some(serde_json::from_str(&text).map_err(|e| {
                plain("pipeline::status::live", format!("`{}` is not a list of service statuses: {e}", p.display()))
            })?)
        }
        None => None,
    };
    let (plan, rows, secrets_compared) = with_environment(&args.input, |env, sources| {
        let graph = Graph::new(env, sources).map_err(report)?;
        let names = pipeline_planner::plan::secret_names(env);
        let lookup = |var: &str| std::env::var(var).ok();
        // Without the secrets' values, secrets are not compared; everything else is.
        let (secrets, compared) = match Secrets::resolve(&names, secrets_file.as_ref(), &lookup) {
            Ok(s) => (s, true),
            Err(_) => (Secrets::names_only(&names), false),
        };
        let (live, statuses): (Box<dyn LiveState>, Vec<ServiceStatus>) = match recorded {
            Some(statuses) => {
                let services = statuses.iter().map(|s| LiveService { name: s.name.clone(), spec: s.spec.clone() });
                (Box::new(Recorded(services.collect())), statuses)
            }
            None => {
                let rt = crate::apply::runtime()?;
                let registry = Arc::new(RegistryClient::new(Default::default()).map_err(report)?);
                let options = TargetOptions { context: args.context.clone(), force_conflicts: false };
                let (live, statuses) = rt.block_on(session::status(env, registry, &options))?;
                (live, statuses)
            }
        };
        // Keys from the files and the lock alone: no registry is asked, no file is written.
        let how = How { mode: LockMode::Offline, only: None };
        let (plan, _) = make_plan(env, &graph, sources, &secrets, &Offline, live.as_ref(), how)?;
        let rows = rows(&plan, &statuses, compared);
        Ok((plan, rows, compared))
    })?;
    let good = rows.iter().all(Row::is_good);
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let s = Status {
            format_version: STATUS_FORMAT_VERSION,
            project: &plan.project,
            environment: &plan.environment,
            target: plan.target.describe(),
            secrets_compared,
            services: &rows,
        };
        let text = serde_json::to_string_pretty(&s).map_err(|e| plain("pipeline::status::json", e.to_string()))?;
        let _ = writeln!(stdout, "{text}");
    } else {
        let _ = write!(stdout, "{}", table(&plan, &rows, crate::output::stdout_color()));
        if !secrets_compared {
            crate::output::warn(
                "secrets were not compared: their values were not given (--secrets or PIPELINE_SECRET_*)",
            );
        }
    }
    Ok(if good { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

/// A row per service of the plan (in stage order, removed services in the stage they ran in).
fn rows(plan: &Plan, statuses: &[ServiceStatus], secrets_compared: bool) -> Vec<Row> {
    plan.services()
        .map(|(stage, s)| {
            let st = statuses.iter().find(|x| x.name == s.name);
            let (definitions, reason) = compare(s, secrets_compared);
            Row {
                name: s.name.clone(),
                stage: stage.name.clone(),
                kind: s.kind.clone(),
                deployed: st.is_some(),
                health: st.map(|x| x.health.as_str()),
                ready: st.map_or(0, |x| x.ready),
                desired: st.map_or_else(
                    || s.spec.as_ref().map_or(0, |sp| if sp.is_job() { 1 } else { sp.replicas }),
                    |x| x.desired,
                ),
                restarts: st.map_or(0, |x| x.restarts),
                since: st.and_then(|x| x.since.clone()),
                key: st.and_then(|x| x.key.clone()),
                // The public addresses of the deployed spec first, then what each replica publishes.
                endpoints: st
                    .map(|x| {
                        let public = x.spec.endpoints.iter().map(|e| plan.target.url(e));
                        public.chain(x.endpoints.iter().cloned()).collect()
                    })
                    .unwrap_or_default(),
                definitions,
                reason,
            }
        })
        .collect()
}

/// How a service compares with its definition, and why it differs.
fn compare(s: &ServicePlan, secrets_compared: bool) -> (&'static str, Option<String>) {
    let style = Style { color: false };
    let changes: Vec<_> =
        s.deploy.changes.iter().filter(|c| secrets_compared || !c.path.starts_with("secrets.")).collect();
    match s.deploy.action {
        DeployAction::Create => ("not deployed", None),
        DeployAction::Delete => ("removed from the definitions", None),
        DeployAction::Unchanged => ("at definitions", None),
        DeployAction::Update | DeployAction::Replace if changes.is_empty() && s.deploy.objects.is_empty() => {
            ("at definitions", None)
        }
        DeployAction::Update | DeployAction::Replace => {
            let first = match (changes.first(), s.deploy.objects.first()) {
                (Some(c), _) => render::change(c, style),
                (None, Some(o)) => format!("{} changed outside pipeline", o.object),
                (None, None) => String::new(),
            };
            let more = changes.len().saturating_sub(1);
            let more = if more > 0 { format!(" (and {more} more)") } else { String::new() };
            ("differs", Some(format!("{first}{more}")))
        }
    }
}

fn table(plan: &Plan, rows: &[Row], color: bool) -> String {
    use std::fmt::Write as _;
    let paint = |code: &str, s: &str| if color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() };
    let mut out = format!("Status of {}/{} (target {})\n\n", plan.project, plan.environment, plan.target.describe());
    if rows.is_empty() {
        out.push_str("The definitions have no services.\n");
        return out;
    }
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.stage.clone(),
                r.kind.clone(),
                r.health.unwrap_or("-").to_string(),
                if r.deployed { format!("{}/{}", r.ready, r.desired) } else { "-".into() },
                if r.deployed { r.restarts.to_string() } else { "-".into() },
                r.since.clone().unwrap_or_else(|| "-".into()),
                r.key.as_deref().map_or_else(|| "-".into(), |k| render::short_key(k).to_string()),
            ]
        })
        .collect();
    let heads = ["SERVICE", "STAGE", "TYPE", "HEALTH", "READY", "RESTARTS", "SINCE", "KEY"];
    let widths: Vec<usize> =
        (0..heads.len()).map(|i| cells.iter().map(|c| c[i].len()).max().unwrap_or(0).max(heads[i].len())).collect();
    for (i, h) in heads.iter().enumerate() {
        let _ = write!(out, "{h:<w$}  ", w = widths[i]);
    }
    out.push_str("DEFINITIONS\n");
    for (r, c) in rows.iter().zip(&cells) {
        for (i, cell) in c.iter().enumerate() {
            let padded = format!("{cell:<w$}", w = widths[i]);
            let shown = match (i, r.health) {
                (3, Some("unhealthy" | "failed")) => paint("31", &padded),
                (3, Some("starting")) => paint("33", &padded),
                _ => padded,
            };
            let _ = write!(out, "{shown}  ");
        }
        let defs = match &r.reason {
            Some(why) => format!("{}: {why}", r.definitions),
            None => r.definitions.to_string(),
        };
        let defs = if r.definitions == "at definitions" { defs } else { paint("33", &defs) };
        let _ = writeln!(out, "{defs}");
    }
    let with_endpoints: Vec<&Row> = rows.iter().filter(|r| !r.endpoints.is_empty()).collect();
    if !with_endpoints.is_empty() {
        out.push_str("\nEndpoints:\n");
        let w = with_endpoints.iter().map(|r| r.name.len()).max().unwrap_or(0);
        for r in with_endpoints {
            let _ = writeln!(out, "  {:<w$}  {}", r.name, r.endpoints.join(", "));
        }
    }
    let bad = rows.iter().filter(|r| !r.is_good()).count();
    if bad == 0 {
        let _ = writeln!(out, "\nAll {} services are healthy and at their definitions", rows.len());
    } else {
        let _ = writeln!(out, "\n{bad} of {} services differ from their definitions or are not healthy", rows.len());
    }
    out
}
