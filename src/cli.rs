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
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
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

pub fn parse() -> Cli {
    Cli::parse()
}
