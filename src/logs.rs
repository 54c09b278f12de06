//! `logs`: the logs of an environment's services merged in time order, each line prefixed with its
//! service (and replica when there are several), coloured per service on a terminal; `--follow` keeps
//! streaming. `--build SERVICE` prints the latest build log instead. A closed pipe (`| head`) and Ctrl-C
//! end it cleanly.

use crate::cli::LogsArgs;
use crate::commands::Report;
use crate::planning::{plain, report, with_environment};
use futures_util::StreamExt as _;
use pipeline_executor::logs::{LogLine, LogOptions};
use pipeline_executor::registry::RegistryClient;
use pipeline_executor::session::{self, TargetOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

pub fn logs(mut args: LogsArgs) -> Result<ExitCode, Report> {
    // `pipeline logs [FILE] [SERVICE...]`: of the names given, the file is the one that is a `.nix` file
    // or exists; the others are services (`pipeline logs api web` reads `./pipeline.nix`).
    let mut names = vec![args.input.file.display().to_string()];
    names.append(&mut args.services);
    let file = names.iter().position(|n| n.ends_with(".nix") || Path::new(n).is_file());
    args.input.file = PathBuf::from(file.map_or("pipeline.nix".to_string(), |i| names.remove(i)));
    args.services = names;
    let since = args.since.as_deref().map(since).transpose()?;
    if let Some(service) = &args.build {
        return build_log(&args, service);
    }
    let rt = crate::apply::runtime()?;
    let registry = Arc::new(RegistryClient::new(Default::default()).map_err(report)?);
    let options = LogOptions { follow: args.follow, since, tail: args.tail };
    let target = TargetOptions { context: args.context.clone(), force_conflicts: false };
    let stream = with_environment(&args.input, |env, _| {
        check_names(&args.services, env.services.iter().map(|s| s.name.as_str()))?;
        rt.block_on(session::logs(env, registry, &target, &args.services, &options))
    })?;
    let color = crate::output::stdout_color();
    rt.block_on(async move {
        let mut stream = stream;
        let mut stdout = std::io::stdout().lock();
        // One listener for the whole run: a Ctrl-C while a line is written is not lost.
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        let mut failed = 0usize;
        loop {
            let next = tokio::select! {
                next = stream.next() => next,
                _ = &mut interrupted => break,
            };
            let line = match next {
                None => break,
                Some(Ok(l)) => l,
                Some(Err(e)) => {
                    failed += 1;
                    crate::output::print_error(&e);
                    continue;
                }
            };
            let text = format_line(&line, args.timestamps, color);
            // A closed pipe (`| head`) ends the output: not an error.
            if stdout.write_all(text.as_bytes()).is_err() || (args.follow && stdout.flush().is_err()) {
                break;
            }
        }
        let _ = stdout.flush();
        // Logs that could not be read make the exit code say so.
        Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
    })
}

/// `api | text`, `api-2 | text` when the service has several replicas, with the time when asked.
fn format_line(l: &LogLine, timestamps: bool, color: bool) -> String {
    let prefix = if l.of > 1 { format!("{}-{}", l.service, l.number) } else { l.service.clone() };
    let prefix = if color {
        const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];
        let i = l.service.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b)));
        format!("\x1b[{}m{prefix} |\x1b[0m", COLOURS[i % COLOURS.len()])
    } else {
        format!("{prefix} |")
    };
    if timestamps && !l.time.is_empty() {
        format!("{prefix} {} {}\n", l.time, l.text)
    } else {
        format!("{prefix} {}\n", l.text)
    }
}

/// Every name must be a service of the definitions.
fn check_names<'a>(names: &[String], services: impl Iterator<Item = &'a str> + Clone) -> Result<(), Report> {
    for n in names {
        if !services.clone().any(|s| s == n) {
            let help = pipeline_planner::error::suggest(n, services.clone(), |all| format!("the services are: {all}"));
            return Err(report(
                pipeline_planner::Diag::new("pipeline::logs::unknown_service", format!("there is no service `{n}`"))
                    .help(help),
            ));
        }
    }
    Ok(())
}

/// `10m`, `2h`, `30s` ago, or an RFC 3339 time, as seconds since the epoch.
fn since(s: &str) -> Result<i64, Report> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if let Some(d) = pipeline_planner::spec::parse_duration(s) {
        return Ok(i64::try_from(now.saturating_sub(d.as_secs())).unwrap_or(0));
    }
    pipeline_executor::logs::parse_time(s).ok_or_else(|| {
        report(
            pipeline_planner::Diag::new(
                "pipeline::logs::since",
                format!("`--since {s}` is neither a duration nor a time"),
            )
            .help("write a duration (`10m`, `2h`) or an RFC 3339 time (`2026-12-02T10:00:00Z`)"),
        )
    })
}

/// The latest build log of a service: `.pipeline/logs/<run>/<service>.log` of the newest run that has one.
fn build_log(args: &LogsArgs, service: &str) -> Result<ExitCode, Report> {
    let file = crate::commands::absolute(&args.input.file)?;
    let dir = file.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf).join(".pipeline").join("logs");
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.join(format!("{service}.log")).is_file()).collect()
        })
        .unwrap_or_default();
    // Run folders are named by their UTC start time: the last in order is the newest.
    runs.sort();
    let Some(run) = runs.last() else {
        return Err(report(
            pipeline_planner::Diag::new(
                "pipeline::logs::no_build_log",
                format!("no build log of `{service}` in {}", dir.display()),
            )
            .help("build logs are written by `pipeline apply` when it builds the service's image"),
        ));
    };
    let path = run.join(format!("{service}.log"));
    let text = std::fs::read(&path)
        .map_err(|e| plain("pipeline::logs::read", format!("cannot read `{}`: {e}", path.display())))?;
    eprintln!("{}", path.display());
    let _ = std::io::stdout().lock().write_all(&text);
    Ok(ExitCode::SUCCESS)
}
