//! `plan`, `graph` and `hash`: evaluate the definition, read it into the planner's model, and show
//! what the planner makes of it. The real registry client comes from the executor crate.

use crate::cli::{GraphArgs, GraphFormat, HashArgs, LockArgs, PlanArgs};
use crate::commands::{Report, absolute, io, load};
use crate::output;
use pipeline_planner::cache::{ImageCache, ImageRef, Offline};
use pipeline_planner::context::{HashedKind, StatCache};
use pipeline_planner::graph::{self, Graph};
use pipeline_planner::live::{LiveService, LiveState, NothingDeployed, Recorded};
use pipeline_planner::lockfile::Lockfile;
use pipeline_planner::pins::{self, LockMode, Pinned};
use pipeline_planner::plan::{KeyedBuild, KeyedEnvironment, Pinning, PlanInput};
use pipeline_planner::record;
use pipeline_planner::reference::Reference;
use pipeline_planner::render::{self, Style};
use pipeline_planner::secrets::{self, Secrets};
use pipeline_planner::{Diag, Environment};
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
            (None, _) => crate::apply::live_state(env, args.context.as_deref())?,
        };
        let mode = lock_mode(args.locked, args.offline);
        let only = args.only.selection();
        let (mut plan, _) = make_plan(
            env,
            &graph,
            sources,
            &secrets,
            registry.as_ref(),
            live.as_ref(),
            How { mode, only: only.as_ref() },
        )?;
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

/// The lock file of a definition, read (an empty lock when there is none), and its name for messages.
pub(crate) fn read_lock(env: &Environment) -> Result<(Lockfile, PathBuf, String), Report> {
    let path = Lockfile::path_for(&env.file);
    let name = lock_display(&path);
    let lock = Lockfile::read(&path, &name).map_err(|d| report(*d))?;
    Ok((lock, path, name))
}

/// The lock file as messages show it: relative to the current folder when inside it.
pub(crate) fn lock_display(path: &Path) -> String {
    match std::env::current_dir().ok().and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf)) {
        Some(rel) => rel.display().to_string(),
        None => path.display().to_string(),
    }
}

/// Write the lock when pinning added entries, and say so on stderr.
pub(crate) fn save_pins(pins: &Pinned, path: &Path, name: &str) -> Result<(), Report> {
    if pins.added.is_empty() {
        return Ok(());
    }
    pins.lock.write(path).map_err(|d| report(*d))?;
    for n in &pins.added {
        let digest = pins.lock.images.get(n).map(|p| record::short_digest(&p.digest)).unwrap_or_default();
        eprintln!("{name}: pinned {} {digest}", familiar(n));
    }
    Ok(())
}

/// `node:20` for `docker.io/library/node:20`.
pub(crate) fn familiar(name: &str) -> String {
    Reference::parse(name).map(|r| r.familiar()).unwrap_or_else(|_| name.to_string())
}

/// Plan (keeping each service's keyed build and the pinned images) with the stat cache and the lock file
/// beside the definitions, and save both (the lock only when `mode` lets it grow).
pub(crate) fn make_plan(
    env: &Environment,
    graph: &Graph,
    sources: &pipeline_lang::span::SourceMap,
    secrets: &Secrets,
    registry: &dyn ImageCache,
    live: &dyn LiveState,
    how: How<'_>,
) -> Result<(pipeline_planner::Plan, KeyedEnvironment), Report> {
    let How { mode, only } = how;
    let cache = stat_cache(env);
    let (lock, lock_path, lock_name) = read_lock(env)?;
    let pinning = Pinning { lock: &lock, mode, lock_name: &lock_name };
    let input = PlanInput { env, graph, sources, secrets, registry, live, stat_cache: &cache, pinning, only };
    let planned = pipeline_planner::plan::plan_keyed(&input).map_err(report)?;
    if let Err(e) = cache.save() {
        output::warn(&format!("could not save the stat cache in {}: {e}", env.base_dir().join(".pipeline").display()));
    }
    save_pins(&planned.1.pins, &lock_path, &lock_name)?;
    Ok(planned)
}

/// How to plan: whether the lock file may grow, and which services (`--only`).
#[derive(Clone, Copy)]
pub(crate) struct How<'a> {
    pub mode: LockMode,
    pub only: Option<&'a pipeline_planner::plan::Only>,
}

/// How `plan` and `apply` may change the lock file.
pub(crate) fn lock_mode(locked: bool, offline: bool) -> LockMode {
    if locked {
        LockMode::Locked
    } else if offline {
        LockMode::Offline
    } else {
        LockMode::Add
    }
}

pub fn lock(args: LockArgs) -> Result<ExitCode, Report> {
    let registry = pipeline_executor::registry::RegistryClient::new(Default::default()).map_err(report)?;
    let text = with_environment(&args.input, |env, sources| {
        let cache = stat_cache(env);
        let (lock, path, name) = read_lock(env)?;
        // Read every Dockerfile, without asking any registry yet.
        let empty = Lockfile::default();
        let pinning = Pinning { lock: &empty, mode: LockMode::Offline, lock_name: &name };
        let keyed =
            pipeline_planner::plan::key_builds(env, sources, &cache, &Offline, pinning, |_| true).map_err(report)?;
        let _ = cache.save();
        let wanted = keyed.wanted;
        let mut out = String::new();
        let mut next = lock.clone();
        if args.update.is_some() {
            let only = args.update.clone().unwrap_or_default();
            let (updated, moved) = pins::update(&next, &wanted, &only, &registry, &name, sources).map_err(report)?;
            next = updated;
            for m in &moved {
                let before = m.before.as_deref().map_or_else(|| "(new)".to_string(), record::short_digest);
                out.push_str(&format!("{} {before} -> {}\n", familiar(&m.name), record::short_digest(&m.after)));
            }
            if moved.is_empty() {
                out.push_str("every image is where the lock pins it\n");
            }
        }
        let settled = pins::settle(&next, &wanted, &registry, LockMode::Add, &name, sources).map_err(report)?;
        for n in &settled.added {
            let d = settled.lock.images.get(n).map(|p| record::short_digest(&p.digest)).unwrap_or_default();
            out.push_str(&format!("{} {d} (added)\n", familiar(n)));
        }
        next = settled.lock;
        if args.prune {
            let (pruned, dropped) = pins::prune(&next, &wanted);
            next = pruned;
            for n in dropped {
                out.push_str(&format!("{} (pruned: no service uses it)\n", familiar(&n)));
            }
        }
        if next != lock || !path.exists() {
            next.write(&path).map_err(|d| report(*d))?;
        }
        if out.is_empty() {
            out = format!(
                "{name}: {} image{} pinned, nothing to change\n",
                next.images.len(),
                if next.images.len() == 1 { "" } else { "s" }
            );
        } else {
            out.push_str(&format!("wrote {name}\n"));
        }
        Ok(out)
    })?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
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

/// The registry client, made on first use: `hash` of a build from `scratch` with a complete lock asks
/// no registry, and pays nothing for one.
#[derive(Default)]
pub(crate) struct LazyRegistry(std::sync::OnceLock<Result<pipeline_executor::RegistryClient, String>>);

impl LazyRegistry {
    fn get(&self) -> Result<&pipeline_executor::RegistryClient, String> {
        self.0
            .get_or_init(|| pipeline_executor::RegistryClient::new(Default::default()).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ImageCache for LazyRegistry {
    fn lookup(&self, images: &[pipeline_planner::cache::ImageRef]) -> Vec<pipeline_planner::cache::CacheState> {
        match self.get() {
            Ok(r) => r.lookup(images),
            Err(e) => images.iter().map(|_| pipeline_planner::cache::CacheState::Unknown(e.clone())).collect(),
        }
    }

    fn resolve(&self, references: &[Reference]) -> Vec<pipeline_planner::cache::Resolution> {
        match self.get() {
            Ok(r) => r.resolve(references),
            Err(e) => references.iter().map(|_| pipeline_planner::cache::Resolution::Failed(e.clone())).collect(),
        }
    }

    fn records(&self, at: &[pipeline_planner::cache::ImageRef]) -> Vec<Result<Option<Vec<u8>>, String>> {
        match self.get() {
            Ok(r) => r.records(at),
            Err(e) => at.iter().map(|_| Err(e.clone())).collect(),
        }
    }
}

pub fn hash(args: HashArgs) -> Result<ExitCode, Report> {
    let registry = LazyRegistry::default();
    let (out, compared) = with_environment(&args.input, |env, sources| {
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
        let (lock, lock_path, lock_name) = read_lock(env)?;
        let pinning = Pinning { lock: &lock, mode: lock_mode(args.locked, false), lock_name: &lock_name };
        let keyed =
            pipeline_planner::plan::key_builds(env, sources, &cache, &registry, pinning, |s| s.name == svc.name)
                .map_err(report)?;
        let _ = cache.save();
        save_pins(&keyed.pins, &lock_path, &lock_name)?;
        let i = env.services.iter().position(|s| s.name == svc.name).unwrap_or(0);
        let k = match keyed.keyed.into_iter().nth(i).flatten() {
            Some(Ok(k)) => k,
            Some(Err(why)) => return Err(plain("pipeline::hash::unpinned", why)),
            None => return Err(plain("pipeline::hash::not_built", format!("service `{}` has no build key", svc.name))),
        };
        let compared = match &args.diff {
            None => None,
            Some(other) => Some(compare(&k, other, &registry)?),
        };
        Ok((k, compared))
    })?;
    let mut stdout = std::io::stdout().lock();
    if let Some((other, changes)) = compared {
        if args.json {
            let v = serde_json::json!({ "key": out.key, "comparedWith": other.key, "changes": changes });
            let _ = writeln!(stdout, "{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        } else if changes.is_empty() {
            let _ = writeln!(stdout, "{} and {} were made from the same inputs", out.key, other.key);
        } else {
            let _ = writeln!(stdout, "{} -> {} ({} differ):", other.key, out.key, changes.len());
            for c in &changes {
                let _ = writeln!(stdout, "  {}", record::describe(c));
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
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
            "key": out.key,
            "keyFormat": pipeline_planner::key::KEY_FORMAT_VERSION,
            "image": out.image.to_string(),
            "dockerfile": pipeline_planner::plan::display_path(&out.context.root, &out.dockerfile),
            "target": out.target,
            "platform": out.platform,
            "files": files,
            "args": out.args,
            "images": out.images,
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
            let _ = writeln!(stdout, "images ({}):", out.images.len());
            for (r, d) in &out.images {
                let _ = writeln!(stdout, "  {} {d}", familiar(r));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The record of `other` (an image reference, or a key of the service's repository) read from the mirror,
/// and what differs from `now`.
fn compare(
    now: &KeyedBuild,
    other: &str,
    registry: &dyn ImageCache,
) -> Result<(record::KeyRecord, Vec<record::KeyChange>), Report> {
    let at = if other.len() == 64 && other.bytes().all(|b| b.is_ascii_hexdigit()) {
        ImageRef { tag: record::record_tag(other), ..now.image.clone() }
    } else {
        record::record_of_image(other).ok_or_else(|| {
            report(
                Diag::new(
                    "pipeline::hash::diff",
                    format!("`{other}` is neither a build key nor an image tagged with one"),
                )
                .help("pass a key (64 hex characters) or an image such as `127.0.0.1:5000/shop/api:<key>`"),
            )
        })?
    };
    let found = registry.records(std::slice::from_ref(&at)).pop().unwrap_or(Ok(None));
    let bytes = match found {
        Ok(Some(b)) => b,
        Ok(None) => {
            return Err(report(
                Diag::new("pipeline::hash::no_record", format!("the mirror has no record of the inputs of {at}")).help(
                    "records are pushed beside every image `pipeline apply` builds; images built before that have none",
                ),
            ));
        }
        Err(why) => {
            return Err(report(
                Diag::new("pipeline::hash::registry", format!("cannot read the record {at}: {why}"))
                    .help("check that the registry is reachable, and `docker login` if it needs a password"),
            ));
        }
    };
    let before = record::KeyRecord::from_json(&bytes).map_err(|e| plain("pipeline::hash::record", e))?;
    let changes = record::explain(&before, &record::KeyRecord::of(now));
    Ok((before, changes))
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
