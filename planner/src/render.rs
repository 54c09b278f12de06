//! The plan as text for a terminal or a CI log: grouped by stage in execution order, one block per
//! service, then the summary line. Colour only when asked for (the binary decides: TTY and NO_COLOR).

use crate::plan::{BuildAction, Change, DeployAction, ObjectAction, Plan, ServicePlan};
use serde_json::Value as Json;
use std::fmt::Write;

/// ANSI styles, or nothing.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, s: &str) -> String {
        if self.color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }
}

/// Short form of a key for people (the full key is in `--json`).
pub fn short_key(key: &str) -> &str {
    key.get(..12).unwrap_or(key)
}

pub fn render(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan for {}/{} (target {}, registry {})",
        plan.project,
        plan.environment,
        plan.target.describe(),
        plan.registry
    );
    if let Some(sel) = &plan.selection {
        let deps: Vec<&str> = sel.services.iter().filter(|s| !sel.asked.contains(s)).map(String::as_str).collect();
        let _ = write!(out, "Partial plan: only {}", sel.asked.join(", "));
        if sel.no_deps {
            out.push_str(" (without the services they depend on)");
        } else if !deps.is_empty() {
            let _ = write!(out, ", and what they depend on: {}", deps.join(", "));
        }
        out.push_str("; every other service is left as it is\n");
    }
    for stage in &plan.stages {
        let _ = writeln!(out, "\n{}", style.paint("1", &format!("stage {}", stage.name)));
        if stage.services.is_empty() {
            out.push_str("  (no services)\n");
        }
        for s in &stage.services {
            service(&mut out, s, style);
        }
    }
    out.push('\n');
    out.push_str(&summary_line(plan));
    out.push('\n');
    out
}

fn service(out: &mut String, s: &ServicePlan, style: Style) {
    let (mark, colour) = match s.deploy.action {
        DeployAction::Create => ("+", "32"),
        DeployAction::Update => ("~", "33"),
        DeployAction::Replace => ("-/+", "31"),
        DeployAction::Delete => ("-", "31"),
        DeployAction::Unchanged => (" ", "0"),
    };
    let head = format!("{mark} {} ({})", s.name, s.kind);
    let _ = writeln!(out, "  {}", style.paint(colour, &head));
    let b = &s.build;
    let build = match b.action {
        BuildAction::None => match &b.image {
            Some(img) => format!("no build (image {img})"),
            None => "no build".to_string(),
        },
        BuildAction::Cached => format!("cached {}", b.image.as_deref().unwrap_or("")),
        BuildAction::Shared => format!("shared with {}", b.shared_with.as_deref().unwrap_or("?")),
        BuildAction::Build => match &b.key {
            Some(key) => format!("build {} ({})", short_key(key), b.reason.as_deref().unwrap_or("not in the registry")),
            None => format!("build ({})", b.reason.as_deref().unwrap_or("key unknown")),
        },
    };
    let _ = writeln!(out, "      build   {build}");
    for c in &b.changes {
        let _ = writeln!(out, "        {}", style.paint("33", &format!("~ {}", crate::record::describe(c))));
    }
    let action = match s.deploy.action {
        DeployAction::Create => "create",
        DeployAction::Update => "update",
        DeployAction::Replace => "replace",
        DeployAction::Delete => "delete",
        DeployAction::Unchanged => "unchanged",
    };
    let _ = writeln!(out, "      deploy  {action}");
    for c in &s.deploy.changes {
        let _ = writeln!(out, "        {}", change(c, style));
    }
    if !s.deploy.objects.is_empty() {
        let _ = writeln!(out, "      objects");
    }
    for o in &s.deploy.objects {
        let (mark, colour) = match o.action {
            ObjectAction::Create => ("+", "32"),
            ObjectAction::Update => ("~", "33"),
            ObjectAction::Delete => ("-", "31"),
        };
        let _ = writeln!(out, "        {}", style.paint(colour, &format!("{mark} {}", o.object)));
        for c in &o.changes {
            let _ = writeln!(out, "            {}", change(c, style));
        }
    }
}

/// `~ env.LOG_LEVEL: "info" -> "debug"`, `+ ports[1]: 9090`, `- ports[2]: 80`.
pub fn change(c: &Change, style: Style) -> String {
    if c.sensitive {
        let what = match (&c.before, &c.after) {
            (None, Some(_)) => "(sensitive value added)",
            (Some(_), None) => "(sensitive value removed)",
            _ => "(sensitive value changed)",
        };
        let mark = match (&c.before, &c.after) {
            (None, _) => "+",
            (_, None) => "-",
            _ => "~",
        };
        return style.paint("33", &format!("{mark} {}: {what}", c.path));
    }
    match (&c.before, &c.after) {
        (None, Some(a)) => style.paint("32", &format!("+ {}: {}", c.path, value(a))),
        (Some(b), None) => style.paint("31", &format!("- {}: {}", c.path, value(b))),
        (Some(b), Some(a)) => style.paint("33", &format!("~ {}: {} -> {}", c.path, value(b), value(a))),
        (None, None) => format!("~ {}", c.path),
    }
}

fn value(v: &Json) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// `Plan: 2 to build, 3 cached, 2 to create, 1 to update, 0 to delete` (replacements listed when any).
pub fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    let mut line =
        format!("Plan: {} to build, {} cached, {} to create, {} to update", s.build, s.cached, s.create, s.update);
    if s.replace > 0 {
        let _ = write!(line, ", {} to replace", s.replace);
    }
    let _ = write!(line, ", {} to delete", s.delete);
    line
}
