//! `plan`, `graph` and `hash`: evaluate the definition, read it into the planner's model, and show
//! what the planner makes of it. The real registry client comes from the executor crate.

use crate::cli::{GraphArgs, GraphFormat, HashArgs, PlanArgs};
use crate::commands::{Report, absolute, io, load};
use crate::output;
use pipeline_planner::cache::{ImageCache, Offline};
use pipeline_planner::context::{HashedKind, StatCache};
use pipeline_planner::graph::{self, Graph};
use pipeline_planner::live::{LiveService, LiveState, NothingDeployed, Recorded};
use pipeline_planner::model::Target;
use pipeline_planner::render::{self, Style};
use pipeline_planner::secrets::{self, Secrets};
use pipeline_planner::{Diag, Environment, plan::PlanInput};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub(crate) fn report(e: impl miette::Diagnostic + Send + Sync + 'static) -> Report {
    Box::new(e)
}

/// The stat cache beside the definitions (safe to delete).
pub(crate) fn stat_cache(env: &Environment) -> StatCache {
    StatCache::open(&env.base_dir().join(".pipeline").join("stat-cache"))
}

/// Evaluate and read the environment; `f` gets the model and the source map for later errors.
pub(crate) fn with_environment<T>(
    input: &crate::cli::EvalInput,
    f: impl FnOnce(&Environment, &pipeline_lang::span::SourceMap) -> Result<T, Report>,
) -> Result<T, Report> {
    let io = io();
    let (mut ev, v) = load(input, &io)?;
    let file = absolute(&input.file)?;
    let env = pipeline_planner::read_environment(&mut ev, &file, v).map_err(report)?;
    let out = f(&env, &ev.sources);
    // The process ends soon: let the OS reclaim the value graph.
    std::mem::forget(ev);
    out
}

pub fn plan(args: PlanArgs) -> Result<ExitCode, Report> {
    let secrets_file = match &args.secrets {
        Some(p) => Some(read_secrets(p)?),
        None => None,
    };
    let live_file = match &args.live_state {
        Some(p) => Some(read_live(p)?),
        None => None,
    };
    let plan = with_environment(&args.input, |env, sources| {
        let graph = Graph::new(env, sources).map_err(report)?;
        let names = pipeline_planner::plan::secret_names(env);
        let lookup = |var: &str| std::env::var(var).ok();
        let secrets = Secrets::resolve(&names, secrets_file.as_ref(), &lookup).map_err(|d| report(*d))?;
        let registry: Box<dyn ImageCache> = if args.offline {
            Box::new(Offline)
        } else {
            Box::new(pipeline_executor::registry::RegistryClient::new(Default::default()).map_err(report)?)
        };
        let mut live_warning = None;
        let live: Box<dyn LiveState> = match (live_file, &env.target) {
            (Some(l), _) => Box::new(Recorded(l)),
            (None, _) if args.offline => {
                live_warning = Some("live state not read (--offline): every service is compared with nothing deployed");
                Box::new(NothingDeployed)
            }
            (None, Target::Docker) => Box::new(Recorded(crate::apply::docker_live(&env.project, &env.name)?)),
            (None, Target::Kubernetes { .. }) => Box::new(crate::kube::live_state(env, args.context.as_deref())?),
        };
        let (mut plan, _) = make_plan(env, &graph, sources, &secrets, registry.as_ref(), live.as_ref())?;
        plan.warnings.extend(live_warning.map(str::to_string));
        Ok(plan)
    })?;
    let json = serde_json::to_string_pretty(&plan).map_err(|e| plain("pipeline::plan::json", e.to_string()))?;
    if let Some(out) = &args.out {
        let mut saved = plan.clone();
        let pairs = |v: &[String]| v.chunks(2).filter_map(|p| Some((p.first()?.clone(), p.get(1)?.clone()))).collect();
        saved.origin = Some(pipeline_planner::plan::Origin {
            file: absolute(&args.input.file)?,
            arg: pairs(&args.input.arg),
            argstr: pairs(&args.input.argstr),
        });
        let json = serde_json::to_string_pretty(&saved).map_err(|e| plain("pipeline::plan::json", e.to_string()))?;
        std::fs::write(out, format!("{json}\n"))
            .map_err(|e| plain("pipeline::plan::out", format!("cannot write the plan to `{}`: {e}", out.display())))?;
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let _ = writeln!(stdout, "{json}");
    } else {
        for w in &plan.warnings {
            output::warn(w);
        }
        let _ = write!(stdout, "{}", render::render(&plan, Style { color: output::stdout_color() }));
        if let Some(out) = &args.out {
            eprintln!("Saved the plan to {}; run `pipeline apply {}` to carry it out", out.display(), out.display());
        }
    }
    Ok(if args.detailed_exitcode && plan.has_changes() { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// Plan (keeping each service's keyed build) with the stat cache beside the definitions, and save it.
pub(crate) fn make_plan(
    env: &Environment,
    graph: &Graph,
    sources: &pipeline_lang::span::SourceMap,
    secrets: &Secrets,
    registry: &dyn ImageCache,
    live: &dyn LiveState,
) -> Result<(pipeline_planner::Plan, Vec<Option<pipeline_planner::plan::KeyedBuild>>), Report> {
    let cache = stat_cache(env);
    let input = PlanInput { env, graph, sources, secrets, registry, live, stat_cache: &cache };
    let planned = pipeline_planner::plan::plan_keyed(&input).map_err(report)?;
    if let Err(e) = cache.save() {
        output::warn(&format!("could not save the stat cache in {}: {e}", env.base_dir().join(".pipeline").display()));
    }
    Ok(planned)
}

pub fn graph(args: GraphArgs) -> Result<ExitCode, Report> {
    let text = with_environment(&args.input, |env, sources| {
        let g = Graph::new(env, sources).map_err(report)?;
        let format = match args.format {
            GraphFormat::Text => graph::GraphFormat::Text,
            GraphFormat::Dot => graph::GraphFormat::Dot,
            GraphFormat::Mermaid => graph::GraphFormat::Mermaid,
        };
        Ok(g.render(env, format))
    })?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

pub fn hash(args: HashArgs) -> Result<ExitCode, Report> {
    let out = with_environment(&args.input, |env, sources| {
        let Some(svc) = env.service(&args.service) else {
            let names = env.services.iter().map(|s| s.name.as_str());
            let help = pipeline_planner::error::suggest(&args.service, names, |all| format!("the services are: {all}"));
            return Err(report(*Box::new(
                Diag::new("pipeline::hash::unknown_service", format!("no service `{}`", args.service)).help(help),
            )));
        };
        if svc.build.is_none() {
            return Err(report(
                Diag::new(
                    "pipeline::hash::not_built",
                    format!(
                        "service `{}` runs the prebuilt image `{}`; it has no build key",
                        svc.name,
                        svc.image.as_deref().unwrap_or("?")
                    ),
                )
                .help("only services with `build` have a key"),
            ));
        }
        let cache = stat_cache(env);
        let (keyed, _) =
            pipeline_planner::plan::key_builds_for(env, sources, &cache, |s| s.name == svc.name).map_err(report)?;
        let _ = cache.save();
        let i = env.services.iter().position(|s| s.name == svc.name).unwrap_or(0);
        let Some(k) = keyed.into_iter().nth(i).flatten() else {
            return Err(plain("pipeline::hash::not_built", format!("service `{}` has no build key", svc.name)));
        };
        Ok(k)
    })?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let files: Vec<serde_json::Value> = out
            .context
            .files
            .iter()
            .map(|f| match &f.kind {
                HashedKind::File { executable, blake3, .. } => serde_json::json!({
                    "path": f.path, "blake3": hex(blake3), "executable": executable, "symlink": null
                }),
                HashedKind::Symlink { target } => serde_json::json!({
                    "path": f.path, "blake3": null, "executable": false, "symlink": target
                }),
            })
            .collect();
        let v = serde_json::json!({
            "key": out.key, "image": out.image.to_string(), "files": files, "args": out.args,
            "dockerfile": pipeline_planner::plan::display_path(&out.context.root, &out.dockerfile),
            "target": out.target, "platform": out.platform,
        });
        let _ = writeln!(stdout, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        let _ = writeln!(stdout, "key    {}\nimage  {}", out.key, out.image);
        if args.files {
            // Everything else the key covers (docs/build-key.md), before the files and args.
            let dockerfile = pipeline_planner::plan::display_path(&out.context.root, &out.dockerfile);
            let _ = writeln!(stdout, "dockerfile  {dockerfile} (relative to the context)");
            let _ = writeln!(stdout, "target      {}", out.target.as_deref().unwrap_or("(none: the last stage)"));
            let _ = writeln!(stdout, "platform    {}", out.platform.as_deref().unwrap_or("(none: the engine's own)"));
            let _ =
                writeln!(stdout, "files ({}, relative to {}):", out.context.files.len(), out.context.root.display());
            for f in &out.context.files {
                match &f.kind {
                    HashedKind::File { executable: true, .. } => {
                        let _ = writeln!(stdout, "  {} (executable)", f.path);
                    }
                    HashedKind::File { .. } => {
                        let _ = writeln!(stdout, "  {}", f.path);
                    }
                    HashedKind::Symlink { target } => {
                        let _ = writeln!(stdout, "  {} -> {target}", f.path);
                    }
                }
            }
            let _ = writeln!(stdout, "args ({}):", out.args.len());
            for (k, v) in &out.args {
                let _ = writeln!(stdout, "  {k}={v}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn hex(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn plain(code: &'static str, msg: String) -> Report {
    report(Diag::new(code, msg))
}

pub(crate) fn read_secrets(p: &Path) -> Result<std::collections::BTreeMap<String, secrets::SecretValue>, Report> {
    let text = std::fs::read_to_string(p).map_err(|e| {
        report(
            Diag::new("pipeline::secrets::file", format!("cannot read secrets file `{}`: {e}", p.display()))
                .help("pass a dotenv file of `name=value` lines"),
        )
    })?;
    secrets::parse_dotenv(&p.display().to_string(), &text).map_err(|d| report(*d))
}

fn read_live(p: &PathBuf) -> Result<Vec<LiveService>, Report> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| plain("pipeline::plan::live_state", format!("cannot read `{}`: {e}", p.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| plain("pipeline::plan::live_state", format!("`{}` is not live state JSON: {e}", p.display())))
}
