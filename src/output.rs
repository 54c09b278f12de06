//! Terminal output: colour only on a TTY (NO_COLOR respected), diagnostics rendered by miette.

use crate::cli::Color;
use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};
use std::io::IsTerminal;
use std::sync::OnceLock;

static COLOR: OnceLock<bool> = OnceLock::new();
static STDOUT_COLOR: OnceLock<bool> = OnceLock::new();

pub fn init(choice: Color) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let on = |tty: bool| match choice {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => tty && !no_color,
    };
    let _ = COLOR.set(on(std::io::stderr().is_terminal()));
    let _ = STDOUT_COLOR.set(on(std::io::stdout().is_terminal()));
}

/// Whether data printed on stdout may be coloured.
pub fn stdout_color() -> bool {
    *STDOUT_COLOR.get().unwrap_or(&false)
}

/// A warning line on stderr.
pub fn warn(text: &str) {
    if color() {
        eprintln!("\x1b[33mwarning\x1b[0m: {text}");
    } else {
        eprintln!("warning: {text}");
    }
}

/// Whether stderr (logs, progress) may be coloured.
pub fn color() -> bool {
    *COLOR.get().unwrap_or(&false)
}

/// Render a diagnostic to stderr: source excerpt, labels, help and related frames.
pub fn print_error(d: &dyn Diagnostic) {
    eprint!("{}", render(d));
}

pub fn render(d: &dyn Diagnostic) -> String {
    let theme = if color() { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let width = if std::io::stderr().is_terminal() { terminal_width() } else { 100 };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(width).with_context_lines(1);
    let mut out = String::new();
    if handler.render_report(&mut out, d).is_err() {
        out = format!("error: {d}\n");
    }
    out
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(100)
}
