//! The `pipeline` binary: parse flags, run the command, render errors.

mod apply;
mod cli;
mod commands;
mod logs;
mod output;
mod planning;
mod progress;
mod render;
mod status;

use std::process::ExitCode;

// Evaluation allocates many small, short-lived objects; mimalloc is much faster at that than the
// system allocator (measured in bench/eval).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::parse();
    output::init(args.color);
    let code = match commands::run(args) {
        Ok(code) => code,
        Err(report) => {
            output::print_error(report.as_ref());
            ExitCode::from(1)
        }
    };
    // An ssh:// engine's shared SSH connection ends with the run.
    pipeline_executor::docker::ssh::close();
    code
}
