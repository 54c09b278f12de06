//! Command-line flags.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "pipeline",
    version,
    about = "Plan and apply a whole environment of services from a definition kept in the repo"
)]
pub struct Cli {
    /// When to use colour (NO_COLOR is respected by `auto`)
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true, help_heading = "Global options")]
    pub color: Color,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Evaluate a definition file strictly and print its value
    Eval(EvalArgs),
    /// Parse and evaluate a definition file; print diagnostics and exit 0 (ok) or 1 (errors)
    Check(EvalInput),
    /// Show what `apply` would build and change, stage by stage
    Plan(PlanArgs),
    /// Plan, show the plan, confirm, then build, push and deploy stage by stage (FILE may be a saved plan)
    Apply(ApplyArgs),
    /// Remove an environment's services in reverse stage order
    Destroy(DestroyArgs),
    /// Per service, what runs now compared with the definitions; exit 0 all healthy and at their
    /// definitions, 2 something differs or is unhealthy, 1 an error
    Status(StatusArgs),
    /// The logs of the environment's services, merged in time order (`-f` to follow)
    Logs(LogsArgs),
    /// Print the Kubernetes manifests of an environment as YAML (for kubectl, review or GitOps)
    Render(RenderArgs),
    /// Show the stages and services, with dependencies as edges
    Graph(GraphArgs),
    /// Show a service's build key (and with --files, everything that went into it)
    Hash(HashArgs),
    /// Pin every image the environment uses in pipeline.lock (beside the definitions)
    Lock(LockArgs),
    /// Print how a file parses, fully parenthesized (for debugging the grammar)
    #[command(hide = true)]
    Parse { file: PathBuf },
}

/// What every evaluating command takes: the file, its arguments and the project root.
#[derive(Args, Debug)]
pub struct EvalInput {
    /// The definition file
    #[arg(default_value = "pipeline.nix")]
    pub file: PathBuf,
    /// Pass NAME = EXPR to a top-level function (as `nix-instantiate --arg`)
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "EXPR"])]
    pub arg: Vec<String>,
    /// Pass NAME = STRING to a top-level function (as `nix-instantiate --argstr`)
    #[arg(long = "argstr", num_args = 2, value_names = ["NAME", "STRING"])]
    pub argstr: Vec<String>,
    /// Files outside this folder may not be read or imported [default: the folder of FILE]
    #[arg(long)]
    pub root: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub input: EvalInput,
    /// Print only this attribute (a dotted path such as `services.api`)
    #[arg(long = "attr", short = 'A')]
    pub attr: Option<String>,
    /// Print JSON (as `nix-instantiate --eval --strict --json`)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub input: EvalInput,
    /// Read secret values from this dotenv file (else from PIPELINE_SECRET_<NAME> variables)
    #[arg(long, value_name = "FILE")]
    pub secrets: Option<PathBuf>,
    /// Print the plan as JSON (format: docs/plan-format.md)
    #[arg(long)]
    pub json: bool,
    /// Also save the plan as JSON to this file, for `pipeline apply FILE`
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 0 when there is nothing to do, 2 when there are changes, 1 on errors
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Ask neither the registries nor the target: keys come from pipeline.lock, every image is planned to be
    /// built, every service created
    #[arg(long)]
    pub offline: bool,
    /// Never write pipeline.lock; fail when an image the definitions use is not pinned in it (for CI)
    #[arg(long)]
    pub locked: bool,
    /// The kubeconfig context to use (Kubernetes targets; overrides the definition's `context`)
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Compare with live state recorded in this JSON file instead of asking the target (for tests)
    #[arg(long, value_name = "FILE", hide = true)]
    pub live_state: Option<PathBuf>,
    #[command(flatten)]
    pub only: OnlyArgs,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// The definition file, or a plan saved with `pipeline plan --out plan.json`
    #[command(flatten)]
    pub input: EvalInput,
    #[command(flatten)]
    pub only: OnlyArgs,
    /// Read secret values from this dotenv file (else from PIPELINE_SECRET_<NAME> variables)
    #[arg(long, value_name = "FILE")]
    pub secrets: Option<PathBuf>,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the outcome as JSON on stdout (no plan, no table); needs --yes
    #[arg(long)]
    pub json: bool,
    /// Run at most N builds and N deploys at once (overrides `parallelism` in the definitions)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: Option<u16>,
    /// How long a deploy may wait for its service to be healthy, or a job to end: `90s`, `5m`, `1h`, or
    /// seconds
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = timeout)]
    pub timeout: std::time::Duration,
    /// The kubeconfig context to use (Kubernetes targets; overrides the definition's `context`)
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Kubernetes: take over fields another field manager owns (server-side apply `force`)
    #[arg(long)]
    pub force_conflicts: bool,
    /// Never write pipeline.lock; fail when an image the definitions use is not pinned in it (for CI)
    #[arg(long)]
    pub locked: bool,
}

#[derive(Args, Debug)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub input: EvalInput,
    /// Remove only these services (comma-separated names), in reverse stage order; the others keep running
    #[arg(long, value_name = "SERVICES", value_delimiter = ',')]
    pub only: Vec<String>,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Also remove the databases' data volumes (kept otherwise)
    #[arg(long)]
    pub volumes: bool,
    /// The kubeconfig context to use (Kubernetes targets; overrides the definition's `context`)
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The definition file
    #[command(flatten)]
    pub input: EvalInput,
    /// Only these services (all when none is named)
    #[arg(value_name = "SERVICE", last = false, num_args = 0..)]
    pub services: Vec<String>,
    /// Keep streaming new lines, also from replicas a concurrent apply starts (Ctrl-C ends)
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only lines since then: a duration (`10m`, `2h`) or an RFC 3339 time
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only the last N lines of each replica
    #[arg(long, value_name = "N")]
    pub tail: Option<u64>,
    /// Show the time of each line
    #[arg(long)]
    pub timestamps: bool,
    /// Print the latest build log of SERVICE (`.pipeline/logs/<run>/<service>.log`) instead
    #[arg(long, value_name = "SERVICE")]
    pub build: Option<String>,
    /// The kubeconfig context to use (Kubernetes targets; overrides the definition's `context`)
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    #[command(flatten)]
    pub input: EvalInput,
    /// Read secret values from this dotenv file (else from PIPELINE_SECRET_<NAME> variables); without
    /// them, secrets are not compared
    #[arg(long, value_name = "FILE")]
    pub secrets: Option<PathBuf>,
    /// Print the status as JSON (docs/status-format.md)
    #[arg(long)]
    pub json: bool,
    /// The kubeconfig context to use (Kubernetes targets; overrides the definition's `context`)
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Read what runs from this JSON file (a list of service statuses) instead of asking the target (for tests)
    #[arg(long, value_name = "FILE", hide = true)]
    pub live_status: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RenderArgs {
    #[command(flatten)]
    pub input: EvalInput,
    /// Read secret values from this dotenv file (else from PIPELINE_SECRET_<NAME> variables)
    #[arg(long, value_name = "FILE")]
    pub secrets: Option<PathBuf>,
    /// Put the secret values in the Secret objects (left empty otherwise)
    #[arg(long)]
    pub show_secrets: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum GraphFormat {
    Text,
    Dot,
    Mermaid,
}

#[derive(Args, Debug)]
pub struct GraphArgs {
    #[command(flatten)]
    pub input: EvalInput,
    /// Output format
    #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
    pub format: GraphFormat,
}

#[derive(Args, Debug)]
pub struct HashArgs {
    /// The service whose build key to show
    pub service: String,
    #[command(flatten)]
    pub input: EvalInput,
    /// List the files (paths relative to the context) and the build args that went into the key
    #[arg(long)]
    pub files: bool,
    /// Print JSON: {"key", "keyFormat", "image", "target", "platform", "files": [{"path", "blake3",
    /// "executable", "symlink"}], "args", "images"}
    #[arg(long)]
    pub json: bool,
    /// Compare the key's inputs with those of another image of the service (a key, or an image tagged
    /// with one), read from the record beside it in the mirror
    #[arg(long, value_name = "IMAGE_OR_KEY")]
    pub diff: Option<String>,
    /// Never write pipeline.lock; fail when an image the build uses is not pinned in it
    #[arg(long)]
    pub locked: bool,
}

#[derive(Args, Debug)]
pub struct LockArgs {
    #[command(flatten)]
    pub input: EvalInput,
    /// Resolve again all references, or only those named (`--update=node:20,redis`; a name without a tag
    /// names every tag of it), and show each digest that moved
    #[arg(long, value_name = "REF,...", num_args = 0..=1, require_equals = true, value_delimiter = ',')]
    pub update: Option<Vec<String>>,
    /// Drop entries that no service of these definitions uses
    #[arg(long)]
    pub prune: bool,
}

pub fn parse() -> Cli {
    Cli::parse()
}

/// A timeout as the definitions write durations (`90s`, `5m`, `1h`, `500ms`), or whole seconds; from
/// 1 second to 24 hours.
fn timeout(s: &str) -> Result<std::time::Duration, String> {
    let d = match s.parse::<u64>() {
        Ok(secs) => std::time::Duration::from_secs(secs),
        Err(_) => pipeline_planner::spec::parse_duration(s)
            .ok_or_else(|| format!("`{s}` is not a duration: write it as `90s`, `5m`, `1h` or a number of seconds"))?,
    };
    if d < std::time::Duration::from_secs(1) || d > std::time::Duration::from_secs(86_400) {
        return Err(format!("`{s}` is out of range: a timeout is from 1s to 24h"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn timeouts_read_as_the_definitions_write_durations() {
        assert_eq!(super::timeout("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(super::timeout("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(super::timeout("120"), Ok(Duration::from_secs(120)));
        assert!(super::timeout("20 s").unwrap_err().contains("not a duration"));
        assert!(super::timeout("0").unwrap_err().contains("out of range"));
        assert!(super::timeout("2d").is_err());
    }
}

/// Part of an environment: `--only api,web` and `--no-deps`.
#[derive(Args, Debug, Default)]
pub struct OnlyArgs {
    /// Plan and apply only these services (comma-separated names) and the services they depend on
    #[arg(long, value_name = "SERVICES", value_delimiter = ',')]
    pub only: Vec<String>,
    /// With --only: leave out the services the named ones depend on
    #[arg(long, requires = "only")]
    pub no_deps: bool,
}

impl OnlyArgs {
    pub fn selection(&self) -> Option<pipeline_planner::plan::Only> {
        let names = trimmed(&self.only);
        (!names.is_empty()).then_some(pipeline_planner::plan::Only { names, no_deps: self.no_deps })
    }
}

/// `--only "api, web,"`: the names without spaces, and no empty one.
pub fn trimmed(names: &[String]) -> Vec<String> {
    names.iter().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect()
}
