//! The `pipeline` binary: parse flags, run the command, render errors.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::parse();
    output::init(args.color);
    match commands::run(args) {
        Ok(code) => code,
        Err(report) => {
            output::print_error(report.as_ref());
            ExitCode::from(1)
        }
    }
}
