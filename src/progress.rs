//! Progress while `apply` runs, on stderr: on a TTY one live line per running task (indicatif), with
//! each finished task printed above them; otherwise one timestamped line per event, fit for CI logs.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pipeline_executor::build::Note;
use pipeline_executor::schedule::{Event, Status};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Task {
    Build(usize),
    Deploy(usize),
}

pub struct Progress {
    builds: Vec<String>,
    services: Vec<String>,
    stages: Vec<String>,
    /// Per service: "deploy" or "delete".
    verbs: Vec<&'static str>,
    bars: Option<MultiProgress>,
    state: Mutex<State>,
    color: bool,
}

#[derive(Default)]
struct State {
    running: HashMap<Task, (Instant, Option<ProgressBar>)>,
}

impl Progress {
    /// `builds`: a label per build; `services`: name, stage index and whether it is a delete.
    pub fn new(builds: Vec<String>, services: Vec<(String, bool)>, stages: Vec<String>, color: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let bars = tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)));
        let verbs = services.iter().map(|(_, delete)| if *delete { "delete" } else { "deploy" }).collect();
        Progress {
            builds,
            services: services.into_iter().map(|(n, _)| n).collect(),
            stages,
            verbs,
            bars,
            state: Mutex::default(),
            color,
        }
    }

    fn label(&self, t: Task) -> String {
        match t {
            Task::Build(b) => format!("build  {}", self.builds.get(b).map_or("?", String::as_str)),
            Task::Deploy(s) => {
                format!(
                    "{} {}",
                    self.verbs.get(s).copied().unwrap_or("deploy"),
                    self.services.get(s).map_or("?", String::as_str)
                )
            }
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }

    /// A line above the live bars (or a plain line).
    fn line(&self, text: &str) {
        match &self.bars {
            Some(mp) => {
                let _ = mp.println(text);
            }
            None => eprintln!("{} {text}", clock()),
        }
    }

    pub fn event(&self, e: &Event) {
        match e {
            Event::StageOpened { stage } => {
                let name = self.stages.get(*stage).map_or("?", String::as_str);
                self.line(&self.paint("1", &format!("stage {name}")));
            }
            Event::BuildStarted { build } => self.start(Task::Build(*build)),
            Event::DeployStarted { service } => self.start(Task::Deploy(*service)),
            Event::BuildEnded { build, status, error } => {
                self.end(Task::Build(*build), *status, error.as_ref().map(|e| e.message.as_str()))
            }
            Event::DeployEnded { service, status, error } => {
                self.end(Task::Deploy(*service), *status, error.as_ref().map(|e| e.message.as_str()))
            }
        }
    }

    fn start(&self, t: Task) {
        let label = self.label(t);
        let bar = self.bars.as_ref().map(|mp| {
            let style = ProgressStyle::with_template("{spinner} {prefix} {elapsed:>4} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
            let pb = mp.add(ProgressBar::new_spinner().with_style(style).with_prefix(label.clone()));
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        });
        if bar.is_none() {
            self.line(&format!("{label} started"));
        }
        if let Ok(mut st) = self.state.lock() {
            st.running.insert(t, (Instant::now(), bar));
        }
    }

    fn end(&self, t: Task, status: Status, error: Option<&str>) {
        let entry = self.state.lock().ok().and_then(|mut st| st.running.remove(&t));
        let took = entry.as_ref().map(|(i, _)| format!(" ({:.1}s)", i.elapsed().as_secs_f64())).unwrap_or_default();
        if let Some((_, Some(pb))) = &entry {
            pb.finish_and_clear();
            if let Some(mp) = &self.bars {
                mp.remove(pb);
            }
        }
        let label = self.label(t);
        let text = match status {
            Status::Done => format!("{} {label}{took}", self.paint("32", "done  ")),
            Status::Failed => {
                let first = error.and_then(|e| e.lines().next()).unwrap_or("failed");
                format!("{} {label}{took}: {first}", self.paint("31", "failed"))
            }
            Status::Cancelled => format!("{} {label}{took}", self.paint("33", "cancelled")),
            Status::NotStarted | Status::Unchanged => return,
        };
        self.line(&text);
    }

    pub fn note(&self, n: Note) {
        let (t, text) = match n {
            Note::Build(b, text) => (Task::Build(b), text),
            Note::Deploy(s, text) => (Task::Deploy(s), text),
        };
        if let Ok(st) = self.state.lock()
            && let Some((_, Some(pb))) = st.running.get(&t)
        {
            pb.set_message(text);
        }
    }

    pub fn clear(&self) {
        if let Some(mp) = &self.bars {
            let _ = mp.clear();
        }
    }
}

/// `HH:MM:SS` (UTC) for log lines.
fn clock() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{:02}:{:02}:{:02}", secs / 3600 % 24, secs / 60 % 60, secs % 60)
}
