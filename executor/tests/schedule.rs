//! The scheduling contract, tested deterministically: fake builders and deployers that sleep on tokio's
//! paused clock and record when each task started and ended (virtual time, so "at once" means equal
//! instants).

use pipeline_executor::schedule::{
    self, BuildSlot, BuildTask, Builder, Deployer, Outcome, Schedule, ServiceTask, Status, TaskError,
};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    Build(usize),
    /// The push after a build, once its slot is given back.
    Push(usize),
    Deploy(usize),
}

#[derive(Default)]
struct Fake {
    build_secs: Vec<u64>,
    /// Per build: how long its push takes after the build gives its slot back (none if absent).
    push_secs: Vec<u64>,
    deploy_secs: Vec<u64>,
    failing_builds: HashSet<usize>,
    failing_deploys: HashSet<usize>,
    /// (what, start, end) in seconds since `t0`.
    log: Mutex<Vec<(What, f64, f64)>>,
    calls: Mutex<Vec<What>>,
    t0: Mutex<Option<Instant>>,
}

impl Fake {
    async fn work(&self, what: What, secs: u64, fail: bool) -> Result<(), TaskError> {
        self.calls.lock().unwrap().push(what);
        let t0 = self.t0.lock().unwrap().unwrap();
        let start = t0.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let end = t0.elapsed().as_secs_f64();
        self.log.lock().unwrap().push((what, start, end));
        if fail { Err(TaskError::new(format!("{what:?} failed"))) } else { Ok(()) }
    }

    fn spans(&self, pick: impl Fn(What) -> bool) -> Vec<(f64, f64)> {
        self.log.lock().unwrap().iter().filter(|(w, _, _)| pick(*w)).map(|(_, s, e)| (*s, *e)).collect()
    }

    fn span(&self, what: What) -> (f64, f64) {
        let l = self.log.lock().unwrap();
        l.iter().find(|(w, _, _)| *w == what).map(|(_, s, e)| (*s, *e)).unwrap_or_else(|| panic!("{what:?} never ran"))
    }

    fn ran(&self, what: What) -> bool {
        self.calls.lock().unwrap().contains(&what)
    }
}

struct B(Arc<Fake>);
struct D(Arc<Fake>);

impl Builder for B {
    fn build(
        &self,
        build: usize,
        mut slot: BuildSlot,
    ) -> impl std::future::Future<Output = Result<(), TaskError>> + Send {
        let f = self.0.clone();
        async move {
            f.work(What::Build(build), f.build_secs[build], f.failing_builds.contains(&build)).await?;
            match f.push_secs.get(build) {
                Some(&secs) => {
                    slot.release();
                    f.work(What::Push(build), secs, false).await
                }
                None => Ok(()),
            }
        }
    }
}

impl Deployer for D {
    fn deploy(&self, service: usize) -> impl std::future::Future<Output = Result<(), TaskError>> + Send {
        let f = self.0.clone();
        async move { f.work(What::Deploy(service), f.deploy_secs[service], f.failing_deploys.contains(&service)).await }
    }
}

fn svc(name: &str, stage: usize, build: Option<usize>) -> ServiceTask {
    ServiceTask { name: name.into(), stage, build, deploy: true, depends_on: vec![], estimate: None }
}

fn builds(n: usize) -> Vec<BuildTask> {
    (0..n).map(|i| BuildTask { key: format!("k{i}"), estimate: None }).collect()
}

async fn run(s: &Schedule, fake: Arc<Fake>, cancel_at: Option<u64>) -> Outcome {
    *fake.t0.lock().unwrap() = Some(Instant::now());
    let (tx, rx) = watch::channel(false);
    if let Some(secs) = cancel_at {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(secs)).await;
            let _ = tx.send(true);
        });
    } else {
        std::mem::forget(tx);
    }
    schedule::run(s, Arc::new(B(fake.clone())), Arc::new(D(fake)), rx, |_| {}).await
}

/// The most tasks that overlap at any instant (an end at t frees its slot for a start at t).
fn max_overlap(spans: &[(f64, f64)]) -> usize {
    let mut points: Vec<(f64, i32)> = spans.iter().flat_map(|&(s, e)| [(s, 1), (e, -1)]).collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut cur, mut max) = (0i32, 0i32);
    for (_, d) in points {
        cur += d;
        max = max.max(cur);
    }
    max as usize
}

#[tokio::test(start_paused = true)]
async fn ten_builds_seven_slots_the_eighth_starts_when_the_first_ends() {
    let n = 10;
    let fake = Arc::new(Fake {
        build_secs: (0..n as u64).map(|i| 10 + i).collect(),
        deploy_secs: vec![1; n],
        ..Default::default()
    });
    let s = Schedule {
        stages: 4,
        builds: builds(n),
        services: (0..n).map(|i| svc(&format!("app{i}"), 3, Some(i))).collect(),
        build_slots: 7,
        deploy_slots: 7,
    };
    let out = run(&s, fake.clone(), None).await;
    assert!(out.success(), "{out:?}");
    let b = fake.spans(|w| matches!(w, What::Build(_)));
    assert_eq!(b.len(), n);
    assert_eq!(max_overlap(&b), 7);
    let first_end = b.iter().map(|x| x.1).fold(f64::MAX, f64::min);
    let mut starts: Vec<f64> = b.iter().map(|x| x.0).collect();
    starts.sort_by(f64::total_cmp);
    assert_eq!(starts[7], first_end, "the 8th build starts the moment the first ends");
    assert!(max_overlap(&fake.spans(|w| matches!(w, What::Deploy(_)))) <= 7);
}

#[tokio::test(start_paused = true)]
async fn a_pushing_build_gives_its_slot_to_the_next_build_and_its_deploy_waits_for_the_push() {
    // One slot, three builds of 2 s, each pushed for 3 s once built.
    let fake =
        Arc::new(Fake { build_secs: vec![2; 3], push_secs: vec![3; 3], deploy_secs: vec![1; 3], ..Default::default() });
    let s = Schedule {
        stages: 4,
        builds: builds(3),
        services: (0..3).map(|i| svc(&format!("app{i}"), 3, Some(i))).collect(),
        build_slots: 1,
        deploy_slots: 7,
    };
    let out = run(&s, fake.clone(), None).await;
    assert!(out.success(), "{out:?}");
    let mut starts: Vec<f64> = fake.spans(|w| matches!(w, What::Build(_))).iter().map(|x| x.0).collect();
    starts.sort_by(f64::total_cmp);
    assert_eq!(starts, vec![0.0, 2.0, 4.0], "each build starts when the one before is built, not pushed");
    assert_eq!(max_overlap(&fake.spans(|w| matches!(w, What::Build(_)))), 1, "one build at a time");
    assert_eq!(max_overlap(&fake.spans(|w| matches!(w, What::Push(_)))), 2, "pushes run beside builds");
    let (push_start, push_end) = fake.span(What::Push(0));
    assert_eq!(push_start, 2.0);
    assert_eq!(fake.span(What::Deploy(0)).0, push_end, "the deploy starts when the image is pushed");
    assert_eq!(out.builds[0].ended, Some(Duration::from_secs(5)), "the build's report covers its push");
}

#[tokio::test(start_paused = true)]
async fn later_builds_run_while_earlier_stages_deploy_and_deploys_keep_stage_order() {
    // stage 0: db (prebuilt, deploys for 5 s); stage 1: api (build 2 s) and web (build 8 s).
    let fake = Arc::new(Fake { build_secs: vec![2, 8], deploy_secs: vec![5, 1, 1], ..Default::default() });
    let s = Schedule {
        stages: 2,
        builds: builds(2),
        services: vec![svc("db", 0, None), svc("api", 1, Some(0)), svc("web", 1, Some(1))],
        build_slots: 7,
        deploy_slots: 7,
    };
    let out = run(&s, fake.clone(), None).await;
    assert!(out.success());
    assert_eq!(fake.span(What::Build(0)).0, 0.0, "builds do not wait for earlier stages");
    assert_eq!(fake.span(What::Build(1)).0, 0.0);
    let db = fake.span(What::Deploy(0));
    assert_eq!(fake.span(What::Deploy(1)).0, db.1, "api deploys the moment stage 0 is done");
    assert_eq!(fake.span(What::Deploy(2)).0, 8.0, "web deploys when its own image is ready");
}

#[tokio::test(start_paused = true)]
async fn a_deploy_waits_for_its_own_image_only_and_for_its_dependencies() {
    // One stage: a (build 1 s), b (build 10 s), c (no build) depends on a.
    let fake = Arc::new(Fake { build_secs: vec![1, 10], deploy_secs: vec![3, 1, 1], ..Default::default() });
    let mut c = svc("c", 0, None);
    c.depends_on = vec![0];
    let s = Schedule {
        stages: 1,
        builds: builds(2),
        services: vec![svc("a", 0, Some(0)), svc("b", 0, Some(1)), c],
        build_slots: 7,
        deploy_slots: 7,
    };
    assert!(run(&s, fake.clone(), None).await.success());
    assert_eq!(fake.span(What::Deploy(0)).0, 1.0);
    assert_eq!(fake.span(What::Deploy(1)).0, 10.0);
    assert_eq!(fake.span(What::Deploy(2)).0, 4.0, "c starts when a is deployed");
}

#[tokio::test(start_paused = true)]
async fn services_sharing_a_key_share_one_build() {
    let fake = Arc::new(Fake { build_secs: vec![4], deploy_secs: vec![1, 1, 1], ..Default::default() });
    let s = Schedule {
        stages: 2,
        builds: builds(1),
        services: vec![svc("migrate", 0, Some(0)), svc("api", 1, Some(0)), svc("worker", 1, Some(0))],
        build_slots: 7,
        deploy_slots: 7,
    };
    let out = run(&s, fake.clone(), None).await;
    assert!(out.success());
    assert_eq!(fake.calls.lock().unwrap().iter().filter(|w| matches!(w, What::Build(_))).count(), 1);
    assert_eq!(fake.span(What::Deploy(0)).0, 4.0);
    assert_eq!(fake.span(What::Deploy(1)).0, 5.0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_build_fails_its_stage_and_nothing_later_starts() {
    // One build slot: stage 0's a (fails at 2 s) and b (3 s, already queued), stage 1's c.
    let fake = Arc::new(Fake {
        build_secs: vec![2, 3, 1],
        deploy_secs: vec![1, 1, 1],
        failing_builds: [0].into(),
        ..Default::default()
    });
    let s = Schedule {
        stages: 2,
        builds: builds(3),
        services: vec![svc("a", 0, Some(0)), svc("b", 0, Some(1)), svc("c", 1, Some(2))],
        build_slots: 1,
        deploy_slots: 7,
    };
    let out = run(&s, fake.clone(), None).await;
    assert_eq!(out.failed_stage, Some(0));
    assert_eq!(out.builds[0].status, Status::Failed);
    assert_eq!(out.builds[0].error.as_ref().map(|e| e.message.as_str()), Some("Build(0) failed"));
    assert_eq!(out.builds[1].status, Status::Done, "work of the failed stage goes on");
    assert_eq!(out.deploys[1].status, Status::Done);
    assert_eq!(out.deploys[0].status, Status::NotStarted);
    assert!(!fake.ran(What::Build(2)), "nothing of a later stage starts after the failure");
    assert_eq!(out.deploys[2].status, Status::NotStarted);
}

#[tokio::test(start_paused = true)]
async fn a_failed_deploy_keeps_later_stages_from_deploying() {
    let fake = Arc::new(Fake {
        build_secs: vec![1],
        deploy_secs: vec![2, 1],
        failing_deploys: [0].into(),
        ..Default::default()
    });
    let s = Schedule {
        stages: 2,
        builds: builds(1),
        services: vec![svc("migrate", 0, None), svc("api", 1, Some(0))],
        build_slots: 7,
        deploy_slots: 7,
    };
    let out = run(&s, fake.clone(), None).await;
    assert_eq!(out.failed_stage, Some(0));
    assert_eq!(out.deploys[0].status, Status::Failed);
    assert_eq!(out.builds[0].status, Status::Done, "the pure build ran ahead");
    assert_eq!(out.deploys[1].status, Status::NotStarted);
}

#[tokio::test(start_paused = true)]
async fn unchanged_services_count_as_deployed() {
    let fake = Arc::new(Fake { build_secs: vec![], deploy_secs: vec![1, 1], ..Default::default() });
    let mut db = svc("db", 0, None);
    db.deploy = false;
    let s = Schedule {
        stages: 2,
        builds: vec![],
        services: vec![db, svc("api", 1, None)],
        build_slots: 7,
        deploy_slots: 7,
    };
    let out = run(&s, fake.clone(), None).await;
    assert!(out.success());
    assert_eq!(out.deploys[0].status, Status::Unchanged);
    assert!(!fake.ran(What::Deploy(0)));
    assert_eq!(fake.span(What::Deploy(1)).0, 0.0);
}

#[tokio::test(start_paused = true)]
async fn cancelling_aborts_builds_lets_deploys_finish_and_starts_nothing() {
    // At 2 s: db is deploying (until 3 s), the api build runs (until 10 s); web would deploy next.
    let fake = Arc::new(Fake { build_secs: vec![10], deploy_secs: vec![3, 1, 1], ..Default::default() });
    let s = Schedule {
        stages: 2,
        builds: builds(1),
        services: vec![svc("db", 0, None), svc("api", 1, Some(0)), svc("web", 1, None)],
        build_slots: 7,
        deploy_slots: 7,
    };
    let out = run(&s, fake.clone(), Some(2)).await;
    assert!(out.cancelled);
    assert_eq!(out.builds[0].status, Status::Cancelled);
    assert_eq!(out.deploys[0].status, Status::Done, "the running deploy finished");
    assert_eq!(out.deploys[2].status, Status::NotStarted);
    assert!(!fake.ran(What::Deploy(2)));
    assert_eq!(out.elapsed, Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn known_durations_start_the_longest_first() {
    let fake = Arc::new(Fake { build_secs: vec![1, 9, 5], deploy_secs: vec![1, 1, 1], ..Default::default() });
    let mut b = builds(3);
    for (t, secs) in b.iter_mut().zip([1, 9, 5]) {
        t.estimate = Some(Duration::from_secs(secs));
    }
    let s = Schedule {
        stages: 1,
        builds: b,
        services: (0..3).map(|i| svc(&format!("s{i}"), 0, Some(i))).collect(),
        build_slots: 1,
        deploy_slots: 7,
    };
    assert!(run(&s, fake.clone(), None).await.success());
    let order: Vec<What> = fake.calls.lock().unwrap().iter().copied().filter(|w| matches!(w, What::Build(_))).collect();
    assert_eq!(order, [What::Build(1), What::Build(2), What::Build(0)]);
}
