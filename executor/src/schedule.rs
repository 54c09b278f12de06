//! The scheduler: runs builds and deploys with two bounded, work-conserving pools.
//!
//! The contract (tested with fakes on tokio's paused clock in `tests/schedule.rs`):
//! - deploys follow stage order strictly: nothing of stage N+1 deploys before every service of stage N is
//!   deployed (jobs completed);
//! - builds are pure, so a build starts as soon as a build slot is free, whatever its stage;
//! - a service deploys as soon as its own image is ready, its stage is open and the services it depends on
//!   (in its stage) are deployed; it does not wait for the other builds of its stage;
//! - at most `build_slots` builds and `deploy_slots` deploys run at once, and when one ends the next ready
//!   task starts at once; a build gives its slot back when it says its image is built ([`BuildSlot`]), so
//!   its push (network, not the engine's CPU) runs beside the next build (earlier stages first; within a stage, longest expected first when durations
//!   from earlier runs are known);
//! - one build per key: services sharing a key wait for the single build;
//! - a failed build or deploy fails its stage: running tasks finish, nothing of a later stage starts;
//! - cancelling stops scheduling and aborts running builds; running deploys finish.
//!
//! The scheduler knows nothing of Docker: work is named by index and done through [`Builder`] and
//! [`Deployer`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Builds (and pushes) image number `build` of a [`Schedule`].
pub trait Builder: Send + Sync + 'static {
    /// The image is ready for its deploys when this returns; `slot.release()` gives the build slot back
    /// before that, once what is left needs no slot (the push).
    fn build(&self, build: usize, slot: BuildSlot) -> impl Future<Output = Result<(), TaskError>> + Send;
}

/// The build slot a running build holds: released when the build says so, or when it ends.
#[derive(Debug)]
pub struct BuildSlot {
    build: usize,
    released: Option<tokio::sync::mpsc::UnboundedSender<usize>>,
}

impl BuildSlot {
    /// Give the slot back: the next build may start while this one finishes (pushes).
    pub fn release(&mut self) {
        if let Some(tx) = self.released.take() {
            let _ = tx.send(self.build);
        }
    }

    /// A slot that belongs to no scheduler (a build run on its own, as tests do).
    pub fn detached() -> BuildSlot {
        BuildSlot { build: 0, released: None }
    }
}

/// Deploys service number `service` of a [`Schedule`] (for a job: runs it to completion).
pub trait Deployer: Send + Sync + 'static {
    fn deploy(&self, service: usize) -> impl Future<Output = Result<(), TaskError>> + Send;
}

/// Why a task failed, kept as the diagnostic said it (message, code, help) for the summary and `--json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    pub message: String,
    pub code: Option<String>,
    pub help: Option<String>,
    /// A failed deploy that left the previous version of the service serving.
    pub kept_previous: bool,
}

impl TaskError {
    /// A failure with no code or help.
    pub fn new(message: impl Into<String>) -> TaskError {
        TaskError { message: message.into(), code: None, help: None, kept_previous: false }
    }

    /// What a diagnostic says, kept.
    pub fn from_diagnostic(d: &(dyn miette::Diagnostic + Send + Sync + 'static)) -> TaskError {
        TaskError {
            message: d.to_string(),
            code: d.code().map(|c| c.to_string()),
            help: d.help().map(|h| h.to_string()),
            kept_previous: false,
        }
    }
}

impl miette::Diagnostic for TaskError {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.code.as_ref().map(|c| Box::new(c) as Box<dyn std::fmt::Display>)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
}

/// One image to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildTask {
    pub key: String,
    /// How long it took last time, if known (longest first).
    pub estimate: Option<Duration>,
}

/// One service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceTask {
    pub name: String,
    /// Index of its stage, in execution order.
    pub stage: usize,
    /// The build it waits for (shared by every service with the same key), if its image is built.
    pub build: Option<usize>,
    /// False when the service is already at its spec: nothing to deploy.
    pub deploy: bool,
    /// Services (of the same stage) that must be deployed first.
    pub depends_on: Vec<usize>,
    pub estimate: Option<Duration>,
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub stages: usize,
    pub builds: Vec<BuildTask>,
    pub services: Vec<ServiceTask>,
    pub build_slots: usize,
    pub deploy_slots: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Nothing to do (a deploy already at its spec).
    Unchanged,
    Done,
    Failed,
    /// Not started: an earlier failure, a failed dependency, or cancellation.
    NotStarted,
    /// Started, then aborted by cancellation.
    Cancelled,
}

/// When a task ran, relative to the start of the run, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskReport {
    pub status: Status,
    pub started: Option<Duration>,
    pub ended: Option<Duration>,
    pub error: Option<TaskError>,
    /// A build another run did while this one waited for it: that run.
    pub built_by: Option<String>,
}

impl TaskReport {
    fn new(status: Status) -> TaskReport {
        TaskReport { status, started: None, ended: None, error: None, built_by: None }
    }

    /// Record how a task ended; its status and error, for the event.
    fn finish(&mut self, result: Result<(), TaskError>, now: Option<Duration>) -> (Status, Option<TaskError>) {
        (self.status, self.error) = match result {
            Ok(()) => (Status::Done, None),
            Err(e) => (Status::Failed, Some(e)),
        };
        self.ended = now;
        (self.status, self.error.clone())
    }

    pub fn duration(&self) -> Option<Duration> {
        Some(self.ended?.saturating_sub(self.started?))
    }
}

/// How a run went, per build and per service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub builds: Vec<TaskReport>,
    pub deploys: Vec<TaskReport>,
    /// The first stage that failed, if any.
    pub failed_stage: Option<usize>,
    pub cancelled: bool,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.failed_stage.is_none() && !self.cancelled
    }
}

/// Progress, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    BuildStarted { build: usize },
    BuildEnded { build: usize, status: Status, error: Option<TaskError> },
    DeployStarted { service: usize },
    DeployEnded { service: usize, status: Status, error: Option<TaskError> },
    StageOpened { stage: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Build(usize),
    Deploy(usize),
}

/// Run `schedule` to the end (or the first failed stage, or cancellation: `cancel` turning true).
pub async fn run<B: Builder, D: Deployer>(
    schedule: &Schedule,
    builder: Arc<B>,
    deployer: Arc<D>,
    mut cancel: watch::Receiver<bool>,
    mut on_event: impl FnMut(&Event),
) -> Outcome {
    let t0 = Instant::now();
    let s = schedule;
    let mut builds: Vec<TaskReport> = s.builds.iter().map(|_| TaskReport::new(Status::NotStarted)).collect();
    let mut deploys: Vec<TaskReport> = s
        .services
        .iter()
        .map(|t| TaskReport::new(if t.deploy { Status::NotStarted } else { Status::Unchanged }))
        .collect();
    // Earliest stage that needs each build: a build is skipped once a failure closes that stage.
    let mut first_use = vec![usize::MAX; s.builds.len()];
    for t in &s.services {
        if let Some(b) = t.build
            && t.deploy
            && let Some(f) = first_use.get_mut(b)
        {
            *f = (*f).min(t.stage);
        }
    }
    // Start order: images needed by earlier stages first; within a stage, longest expected first.
    let mut build_order: Vec<usize> = (0..s.builds.len()).filter(|&b| first_use[b] != usize::MAX).collect();
    build_order.sort_by_key(|&b| (first_use[b], std::cmp::Reverse(s.builds[b].estimate), b));
    let mut deploy_order: Vec<usize> = (0..s.services.len()).filter(|&i| s.services[i].deploy).collect();
    deploy_order.sort_by_key(|&i| (s.services[i].stage, std::cmp::Reverse(s.services[i].estimate), i));

    let mut running: JoinSet<(Kind, Result<(), TaskError>)> = JoinSet::new();
    let mut aborts: Vec<(tokio::task::AbortHandle, usize)> = Vec::new();
    // Running deploys by task id, to name one that panicked.
    let mut deploy_tasks: Vec<(tokio::task::Id, usize)> = Vec::new();
    let (mut builds_running, mut deploys_running) = (0usize, 0usize);
    // Builds that hold a slot: from their start until they release it or end.
    let mut holding = vec![false; s.builds.len()];
    let (released_tx, mut released_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let mut open = 0usize;
    let mut failed_stage: Option<usize> = None;
    let mut cancelled = *cancel.borrow();
    let mut announced = usize::MAX;

    loop {
        // Open every stage whose predecessors are all deployed.
        while open < s.stages && stage_done(s, &deploys, open) {
            open += 1;
        }
        if open < s.stages && announced != open && failed_stage.is_none() {
            announced = open;
            on_event(&Event::StageOpened { stage: open });
        }
        let limit = failed_stage.unwrap_or(usize::MAX);
        if !cancelled {
            // Builds: any stage up to a failed one.
            let mut i = 0;
            while builds_running < s.build_slots && i < build_order.len() {
                let b = build_order[i];
                if first_use[b] <= limit {
                    build_order.remove(i);
                    builds[b].started = Some(t0.elapsed());
                    on_event(&Event::BuildStarted { build: b });
                    let builder = builder.clone();
                    let slot = BuildSlot { build: b, released: Some(released_tx.clone()) };
                    let h = running.spawn(async move { (Kind::Build(b), builder.build(b, slot).await) });
                    aborts.push((h, b));
                    holding[b] = true;
                    builds_running += 1;
                } else {
                    i += 1;
                }
            }
            // Deploys: the open stage only, image ready, dependencies deployed.
            let mut i = 0;
            while deploys_running < s.deploy_slots && i < deploy_order.len() {
                let n = deploy_order[i];
                let t = &s.services[n];
                if t.stage > open || t.stage > limit {
                    break;
                }
                let image_ready = t.build.is_none_or(|b| builds.get(b).is_some_and(|r| r.status == Status::Done));
                let deps_ready = t
                    .depends_on
                    .iter()
                    .all(|&d| deploys.get(d).is_some_and(|r| matches!(r.status, Status::Done | Status::Unchanged)));
                if t.stage == open && image_ready && deps_ready {
                    deploy_order.remove(i);
                    deploys[n].started = Some(t0.elapsed());
                    on_event(&Event::DeployStarted { service: n });
                    let deployer = deployer.clone();
                    let h = running.spawn(async move { (Kind::Deploy(n), deployer.deploy(n).await) });
                    deploy_tasks.push((h.id(), n));
                    deploys_running += 1;
                } else {
                    i += 1;
                }
            }
        }
        if running.is_empty() {
            break;
        }
        let joined = tokio::select! {
            j = running.join_next() => j,
            Some(b) = released_rx.recv() => {
                if std::mem::take(&mut holding[b]) {
                    builds_running -= 1;
                }
                continue;
            }
            changed = cancel.changed(), if !cancelled => {
                if changed.is_err() || *cancel.borrow() {
                    cancelled = true;
                    for (h, _) in &aborts {
                        h.abort();
                    }
                }
                continue;
            }
        };
        let Some(joined) = joined else { break };
        let now = Some(t0.elapsed());
        match joined {
            Ok((Kind::Build(b), result)) => {
                if std::mem::take(&mut holding[b]) {
                    builds_running -= 1;
                }
                aborts.retain(|(_, x)| *x != b);
                let (status, error) = builds[b].finish(result, now);
                if status == Status::Failed {
                    fail(&mut failed_stage, first_use[b]);
                }
                on_event(&Event::BuildEnded { build: b, status, error });
            }
            Ok((Kind::Deploy(n), result)) => {
                deploys_running -= 1;
                deploy_tasks.retain(|(_, x)| *x != n);
                let (status, error) = deploys[n].finish(result, now);
                if status == Status::Failed {
                    fail(&mut failed_stage, s.services[n].stage);
                }
                on_event(&Event::DeployEnded { service: n, status, error });
            }
            Err(e) => {
                // A build aborted by cancellation (or a panicking task): find which one it was.
                let id = e.id();
                if let Some(pos) = aborts.iter().position(|(h, _)| h.id() == id) {
                    let (_, b) = aborts.remove(pos);
                    if std::mem::take(&mut holding[b]) {
                        builds_running -= 1;
                    }
                    let status = if e.is_cancelled() { Status::Cancelled } else { Status::Failed };
                    builds[b].status = status;
                    builds[b].ended = now;
                    if status == Status::Failed {
                        builds[b].error = Some(TaskError::new("the build task panicked"));
                        fail(&mut failed_stage, first_use[b]);
                    }
                    on_event(&Event::BuildEnded { build: b, status, error: builds[b].error.clone() });
                } else if let Some(pos) = deploy_tasks.iter().position(|(t, _)| *t == id) {
                    // A deploy task panicked: it failed, and so did its stage.
                    let (_, n) = deploy_tasks.remove(pos);
                    deploys_running = deploys_running.saturating_sub(1);
                    deploys[n].status = Status::Failed;
                    deploys[n].ended = now;
                    deploys[n].error = Some(TaskError::new("the deploy task panicked"));
                    fail(&mut failed_stage, s.services[n].stage);
                    on_event(&Event::DeployEnded {
                        service: n,
                        status: Status::Failed,
                        error: deploys[n].error.clone(),
                    });
                }
            }
        }
    }
    Outcome { builds, deploys, failed_stage, cancelled, elapsed: t0.elapsed() }
}

fn fail(failed: &mut Option<usize>, stage: usize) {
    *failed = Some(failed.map_or(stage, |f| f.min(stage)));
}

fn stage_done(s: &Schedule, deploys: &[TaskReport], stage: usize) -> bool {
    s.services
        .iter()
        .zip(deploys)
        .filter(|(t, _)| t.stage == stage)
        .all(|(_, r)| matches!(r.status, Status::Done | Status::Unchanged))
}
