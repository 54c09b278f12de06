//! The commands: each takes parsed flags and returns an exit code or a diagnostic.

use crate::cli::{Cli, Command, EvalArgs, EvalInput};
use miette::Diagnostic;
use pipeline_lang::io::FsIo;
use pipeline_lang::{Arg, Error, ErrorKind, Evaluator, Options, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub type Report = Box<dyn Diagnostic + Send + Sync>;

/// Where the embedded standard library appears to the evaluator (`import <std>`).
const STD_DIR: &str = "/pipeline-embedded/std";

pub fn run(cli: Cli) -> Result<ExitCode, Report> {
    match cli.command {
        Command::Eval(args) => eval(args),
        Command::Check(input) => check(input),
        Command::Plan(args) => crate::planning::plan(args),
        Command::Apply(args) => crate::apply::apply(args),
        Command::Destroy(args) => crate::apply::destroy(args),
        Command::Status(args) => crate::status::status(args),
        Command::Logs(args) => crate::logs::logs(args),
        Command::Render(args) => crate::render::render(args),
        Command::Graph(args) => crate::planning::graph(args),
        Command::Hash(args) => crate::planning::hash(args),
        Command::Lock(args) => crate::planning::lock(args),
        Command::Parse { file } => parse(&file),
    }
}

pub fn absolute(p: &Path) -> Result<PathBuf, Report> {
    std::path::absolute(p).map_err(|e| {
        Box::new(Error::plain(ErrorKind::Io, format!("cannot resolve `{}`: {e}", p.display()), None)) as Report
    })
}

pub fn io() -> FsIo {
    FsIo::default().with_embedded(Path::new(STD_DIR), pipeline_stdlib::FILES)
}

fn options(input: &EvalInput, file: &Path) -> Result<Options, Report> {
    let root = match &input.root {
        Some(r) => absolute(r)?,
        None => file.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf),
    };
    Ok(Options {
        root: Some(root),
        search_paths: vec![("std".into(), PathBuf::from(STD_DIR))],
        display_base: std::env::current_dir().ok(),
        stdlib_dirs: vec![PathBuf::from(STD_DIR)],
    })
}

fn top_args(input: &EvalInput) -> Vec<(String, Arg)> {
    let mut args = Vec::new();
    for pair in input.arg.chunks(2) {
        if let [n, v] = pair {
            args.push((n.clone(), Arg::Expr(v.clone())));
        }
    }
    for pair in input.argstr.chunks(2) {
        if let [n, v] = pair {
            args.push((n.clone(), Arg::Str(v.clone())));
        }
    }
    args
}

fn missing_file(file: &Path) -> Report {
    Box::new(Error::plain(
        ErrorKind::Import,
        format!("definition file `{}` not found", file.display()),
        Some("pass the file to use, or run from the folder that holds `pipeline.nix`".into()),
    ))
}

/// Load, evaluate and (optionally) select; the value is forced completely.
pub fn load<'io>(input: &EvalInput, io: &'io FsIo) -> Result<(Evaluator<'io>, Value), Report> {
    let file = absolute(&input.file)?;
    if !file.exists() {
        return Err(missing_file(&input.file));
    }
    let mut ev = Evaluator::new(io, options(input, &file)?);
    let v = ev.load(&file, &top_args(input));
    print_warnings(&mut ev);
    let v = v.map_err(|e| Box::new(e) as Report)?;
    Ok((ev, v))
}

/// Show the warnings the evaluator has collected so far (deprecated syntax in the files read).
pub fn print_warnings(ev: &mut Evaluator) {
    for w in ev.take_warnings() {
        crate::output::print_error(&w);
    }
}

fn eval(args: EvalArgs) -> Result<ExitCode, Report> {
    let io = io();
    let (mut ev, mut v) = load(&args.input, &io)?;
    if let Some(path) = &args.attr {
        v = ev.select_path(v, path).map_err(|e| Box::new(e) as Report)?;
    }
    let out = if args.json { ev.to_json(&v) } else { ev.to_text(&v) };
    print_warnings(&mut ev);
    println!("{}", out.map_err(|e| Box::new(e) as Report)?);
    // The process ends here: let the OS reclaim the value graph instead of freeing it piece by piece.
    std::mem::forget((ev, v));
    Ok(ExitCode::SUCCESS)
}

/// Evaluate completely; for an environment, also run every check `plan` makes that needs no
/// registry, engine, cluster or secret value, and report every problem found.
fn check(input: EvalInput) -> Result<ExitCode, Report> {
    let io = io();
    let (mut ev, v) = load(&input, &io)?;
    let forced = ev.force_deep(&v);
    print_warnings(&mut ev);
    forced.map_err(|e| Box::new(e) as Report)?;
    if !is_environment(&mut ev, &v) {
        eprintln!("{}: ok (evaluated; not an environment, so there is no model to check)", input.file.display());
        std::mem::forget((ev, v));
        return Ok(ExitCode::SUCCESS);
    }
    let file = absolute(&input.file)?;
    let (env, model_errors) = pipeline_planner::read_environment_partly(&mut ev, &file, v.clone());
    let mut errors: Vec<pipeline_planner::Error> = model_errors.into_iter().collect();
    let mut summary = String::new();
    if let Some(env) = &env {
        let cache = crate::planning::stat_cache(env);
        let lock_name = crate::planning::lock_display(&pipeline_planner::lockfile::Lockfile::path_for(&env.file));
        match pipeline_planner::check::offline(env, &ev.sources, &cache, &lock_name) {
            Ok(checked) => {
                for w in &checked.warnings {
                    crate::output::warn(w);
                }
                summary = format!(
                    ": {} services in {} stages, {} build{} keyed",
                    env.services.len(),
                    env.stages.len(),
                    checked.builds,
                    if checked.builds == 1 { "" } else { "s" }
                );
            }
            Err(e) => errors.push(e),
        }
    }
    std::mem::forget((ev, v));
    if errors.is_empty() {
        eprintln!("{}: ok{summary}", input.file.display());
        return Ok(ExitCode::SUCCESS);
    }
    let all = pipeline_planner::Error::all(errors);
    let n = all.count();
    for e in all.iter() {
        crate::output::print_error(e);
    }
    eprintln!("{}: {n} problem{} found", input.file.display(), if n == 1 { "" } else { "s" });
    Ok(ExitCode::from(1))
}

/// Whether `v` is what `std.environment` makes.
fn is_environment(ev: &mut Evaluator, v: &Value) -> bool {
    let Value::Attrs(a) = v else { return false };
    let Some(kind) = a.get("_kind").map(|k| k.value.clone()) else { return false };
    matches!(ev.force(&kind), Ok(Value::String(s)) if &*s == "pipeline.environment")
}

fn parse(file: &Path) -> Result<ExitCode, Report> {
    let text = std::fs::read_to_string(file).map_err(|_| missing_file(file))?;
    let mut sources = pipeline_lang::span::SourceMap::default();
    let id = sources.add(file.display().to_string(), file.to_path_buf(), text.as_str().into(), false);
    match pipeline_lang::parser::parse(&text, id) {
        Ok(e) => {
            println!("{}", pipeline_lang::ast::show(&e));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            let ev = pipeline_lang::eval::syntax_error_for(&e, id, &text);
            Err(Box::new(Error::from_eval(&ev, &sources)))
        }
    }
}
