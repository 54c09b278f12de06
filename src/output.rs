//! Terminal output: colour only on a TTY (NO_COLOR respected), diagnostics rendered by miette.

use crate::cli::Color;
use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};
use std::io::IsTerminal;
use std::sync::OnceLock;

static COLOR: OnceLock<bool> = OnceLock::new();

pub fn init(choice: Color) {
    let on = match choice {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let _ = COLOR.set(on);
}

fn color() -> bool {
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
