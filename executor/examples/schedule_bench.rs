//! The scheduler benchmark: 1,000 simulated services (random build and deploy durations, 5 stages) run
//! through `schedule::run` on a paused clock, against a lower bound and against the seed's schedule
//! (stage by stage, builds then deploys as separate phases). Also measures dispatch overhead on a real
//! clock. Prints a Markdown report (bench/schedule/run.sh writes it to bench/schedule/RESULTS.md).

use pipeline_executor::schedule::{self, BuildTask, Builder, Deployer, Schedule, ServiceTask};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVICES: usize = 1000;
const STAGES: usize = 5;
const SLOTS: usize = 7;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [lo, hi).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

struct Work {
    build: Vec<Option<Duration>>,
    deploy: Vec<Duration>,
    stage: Vec<usize>,
}

fn generate(seed: u64) -> Work {
    let mut r = Rng(seed);
    let mut w = Work { build: vec![], deploy: vec![], stage: vec![] };
    for i in 0..SERVICES {
        // Builds: mostly 10-90 s, one in ten 2-5 min; one service in five runs a prebuilt image.
        let build = match r.range(0, 10) {
            0 | 1 => None,
            2 => Some(r.range(120, 300)),
            _ => Some(r.range(10, 90)),
        };
        w.build.push(build.map(Duration::from_secs));
        w.deploy.push(Duration::from_secs(r.range(2, 30)));
        w.stage.push(i * STAGES / SERVICES);
    }
    w
}

fn schedule_of(w: &Work, known: bool, scale: f64) -> Schedule {
    let mut builds = vec![];
    let mut services = vec![];
    let sc = |d: Duration| d.mul_f64(scale);
    for i in 0..SERVICES {
        let build = w.build[i].map(|d| {
            builds.push(BuildTask { key: format!("k{i}"), estimate: known.then(|| sc(d)) });
            builds.len() - 1
        });
        services.push(ServiceTask {
            name: format!("s{i}"),
            stage: w.stage[i],
            build,
            deploy: true,
            depends_on: vec![],
            estimate: known.then(|| sc(w.deploy[i])),
        });
    }
    Schedule { stages: STAGES, builds, services, build_slots: SLOTS, deploy_slots: SLOTS }
}

struct Sleeper {
    builds: Vec<Duration>,
    deploys: Vec<Duration>,
}

impl Builder for Sleeper {
    fn build(
        &self,
        b: usize,
        _slot: pipeline_executor::schedule::BuildSlot,
    ) -> impl std::future::Future<Output = Result<(), pipeline_executor::schedule::TaskError>> + Send {
        let d = self.builds[b];
        async move {
            tokio::time::sleep(d).await;
            Ok(())
        }
    }
}

impl Deployer for Sleeper {
    fn deploy(
        &self,
        s: usize,
    ) -> impl std::future::Future<Output = Result<(), pipeline_executor::schedule::TaskError>> + Send {
        let d = self.deploys[s];
        async move {
            tokio::time::sleep(d).await;
            Ok(())
        }
    }
}

/// Run through the real scheduler; (makespan on the runtime's clock, wall time spent).
fn run(w: &Work, known: bool, scale: f64, paused: bool) -> (Duration, Duration) {
    let s = schedule_of(w, known, scale);
    let sleeper = Arc::new(Sleeper {
        builds: w.build.iter().flatten().map(|d| d.mul_f64(scale)).collect(),
        deploys: w.deploy.iter().map(|d| d.mul_f64(scale)).collect(),
    });
    let mut rt = tokio::runtime::Builder::new_current_thread();
    rt.enable_time();
    if paused {
        rt.start_paused(true);
    }
    let rt = rt.build().expect("a runtime");
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let wall = Instant::now();
    let out = rt.block_on(schedule::run(&s, sleeper.clone(), sleeper, rx, |_| {}));
    assert!(out.success());
    (out.elapsed, wall.elapsed())
}

/// Greedy list scheduling of `tasks` (in order) on `slots` machines from time `start`; the end time.
fn list_schedule(tasks: &[Duration], slots: usize, start: Duration) -> Duration {
    let mut free = vec![start; slots];
    let mut end = start;
    for &t in tasks {
        let (i, &f) = free.iter().enumerate().min_by_key(|(_, f)| **f).expect("slots");
        free[i] = f + t;
        end = end.max(free[i]);
    }
    end
}

/// The seed's schedule: each stage builds everything, then deploys everything, then the next stage.
fn seed_schedule(w: &Work) -> Duration {
    let mut t = Duration::ZERO;
    for st in 0..STAGES {
        let builds: Vec<Duration> = (0..SERVICES).filter(|&i| w.stage[i] == st).filter_map(|i| w.build[i]).collect();
        t = list_schedule(&builds, SLOTS, t);
        let deploys: Vec<Duration> = (0..SERVICES).filter(|&i| w.stage[i] == st).map(|i| w.deploy[i]).collect();
        t = list_schedule(&deploys, SLOTS, t);
    }
    t
}

/// A lower bound on any schedule's makespan, the larger of:
/// - deploys: per stage, max(deploy work / slots, longest deploy), summed (stages deploy one after another);
/// - builds: for each stage s, the builds of stages up to s take at least their work / slots, then the
///   shortest deploy of s, then the deploy bound of every later stage.
fn lower_bound(w: &Work) -> Duration {
    let stage_deploys =
        |st: usize| -> Vec<Duration> { (0..SERVICES).filter(|&i| w.stage[i] == st).map(|i| w.deploy[i]).collect() };
    let deploy_bound: Vec<Duration> = (0..STAGES)
        .map(|st| {
            let d = stage_deploys(st);
            (d.iter().sum::<Duration>() / SLOTS as u32).max(d.iter().max().copied().unwrap_or_default())
        })
        .collect();
    let mut best: Duration = deploy_bound.iter().sum();
    let mut builds_so_far = Duration::ZERO;
    for st in 0..STAGES {
        builds_so_far += (0..SERVICES).filter(|&i| w.stage[i] == st).filter_map(|i| w.build[i]).sum::<Duration>();
        let shortest = stage_deploys(st).into_iter().min().unwrap_or_default();
        let rest: Duration = deploy_bound[st + 1..].iter().sum();
        best = best.max(builds_so_far / SLOTS as u32 + shortest + rest);
    }
    best
}

fn main() {
    let seeds = [1u64, 2, 3];
    println!("# Scheduler benchmark results\n");
    println!(
        "Generated by `bench/schedule/run.sh` (`executor/examples/schedule_bench.rs`): {SERVICES} services in {STAGES} stages, \
         {SLOTS} build and {SLOTS} deploy slots; builds 10-90 s (one in ten 2-5 min, one service in five prebuilt), deploys 2-30 s; \
         simulated on tokio's paused clock. Lower bound: the larger of the deploy bound (per stage, max(deploy work / slots, \
         longest deploy), summed) and the build bound (for each stage, the builds up to it over the slots, then its shortest \
         deploy, then the deploy bound of the later stages). Seed's schedule: per stage, all builds, then all deploys.\n"
    );
    println!(
        "| seed | lower bound | pipeline, durations known | ratio | pipeline, durations unknown | ratio | seed's schedule | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut overheads = vec![];
    for seed in seeds {
        let w = generate(seed);
        let lb = lower_bound(&w);
        let (known, wall_known) = run(&w, true, 1.0, true);
        let (unknown, _) = run(&w, false, 1.0, true);
        let seed_t = seed_schedule(&w);
        let r = |x: Duration| x.as_secs_f64() / lb.as_secs_f64();
        println!(
            "| {seed} | {:.0} s | {:.0} s | {:.3}x | {:.0} s | {:.3}x | {:.0} s | {:.3}x |",
            lb.as_secs_f64(),
            known.as_secs_f64(),
            r(known),
            unknown.as_secs_f64(),
            r(unknown),
            seed_t.as_secs_f64(),
            r(seed_t)
        );
        overheads.push((seed, wall_known, known));
    }
    println!("\n## Dispatch overhead\n");
    for (seed, wall, makespan) in &overheads {
        println!(
            "- seed {seed}, paused clock: scheduling {} tasks took {:.1} ms of CPU for a {:.0} s makespan.",
            SERVICES * 2,
            wall.as_secs_f64() * 1000.0,
            makespan.as_secs_f64()
        );
    }
    // Real clock: durations scaled to 1/1000 (milliseconds), so dispatch costs show against real sleeps.
    let w = generate(1);
    let (virtual_ms, _) = run(&w, true, 0.001, true);
    let (real, _) = run(&w, true, 0.001, false);
    let overhead = real.as_secs_f64() / virtual_ms.as_secs_f64() - 1.0;
    println!(
        "- seed 1, real clock, durations scaled to milliseconds: makespan {:.3} s against {:.3} s on the paused clock: \
         {:.2}% overhead (timer granularity included).",
        real.as_secs_f64(),
        virtual_ms.as_secs_f64(),
        overhead * 100.0
    );
}
