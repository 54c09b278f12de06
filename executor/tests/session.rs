//! The apply and destroy sessions driven against a target made for the test: what the session asks of
//! any target (lock, observe, deploy, retire, inventory, destroy, endpoints) and in which order, that the
//! lock is released on every path (success, error, declined, panic), and that a failed deploy keeps its
//! diagnostic's code and help.

use futures_util::FutureExt as _;
use pipeline_executor::build::Notify;
use pipeline_executor::buildkit::BuilderKind;
use pipeline_executor::prepare::Prepared;
use pipeline_executor::registry::RegistryClient;
use pipeline_executor::schedule::{Event, Status};
use pipeline_executor::session::{self, Applied, ApplyRequest, ApplyUi, DestroyUi, Destroyed, Planned, Report};
use pipeline_executor::target::{Endpoint, EnvironmentLock, Inventory, Item, Removed, Run, ServiceDeploy, Target};
use pipeline_planner::live::{LiveService, LiveState, Recorded};
use pipeline_planner::plan::{DeployAction, Plan};
use pipeline_planner::secrets::Secrets;
use serde_json::json;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{service} would not start")]
#[diagnostic(code(fake::broken), help("fix {service}"))]
struct Broken {
    service: String,
}

/// What the fake target was asked, in order.
type Calls = Arc<Mutex<Vec<String>>>;

struct FakeTarget {
    calls: Calls,
    /// Someone else holds the lock.
    locked_by: Option<String>,
    /// Items `destroy` would remove.
    items: Vec<&'static str>,
}

#[derive(Clone)]
struct FakeLock(Calls);

impl EnvironmentLock for FakeLock {
    type Error = Broken;

    async fn release(&self) -> Result<(), Broken> {
        self.0.lock().unwrap().push("release".into());
        Ok(())
    }
}

impl Target for FakeTarget {
    type Error = Broken;
    type Lock = FakeLock;

    fn describe(&self) -> String {
        "the fake target".into()
    }

    fn engine(&self) -> Option<bollard::Docker> {
        None
    }

    async fn lock(&self, holder: &str) -> Result<FakeLock, Broken> {
        if let Some(other) = &self.locked_by {
            return Err(Broken { service: format!("the lock (held by {other})") });
        }
        self.calls.lock().unwrap().push(format!("lock {holder}"));
        Ok(FakeLock(Arc::clone(&self.calls)))
    }

    async fn observe(&self) -> Result<Box<dyn LiveState + Send + Sync>, Broken> {
        self.calls.lock().unwrap().push("observe".into());
        let old =
            serde_json::from_value(json!({ "type": "container", "stage": "2.DEFAULT CONTAINER", "image": "old:1" }));
        Ok(Box::new(Recorded(vec![LiveService { name: "old".into(), spec: old.unwrap() }])))
    }

    async fn deploy(&self, service: &ServiceDeploy, run: &Run) -> Result<(), Broken> {
        run.note("deploying");
        self.calls.lock().unwrap().push(format!("deploy {}", service.name));
        if service.name == "broken" {
            return Err(Broken { service: service.name.clone() });
        }
        Ok(())
    }

    async fn retire(&self, service: &ServiceDeploy, _: &Run) -> Result<(), Broken> {
        assert_eq!(service.action, DeployAction::Delete);
        self.calls.lock().unwrap().push(format!("retire {}", service.name));
        Ok(())
    }

    async fn inventory(&self) -> Result<Inventory, Broken> {
        self.calls.lock().unwrap().push("inventory".into());
        let items = self.items.iter().map(|s| Item { name: format!("{s}-1"), service: s.to_string(), state: None });
        Ok(Inventory { place: None, unit: "thing", items: items.collect(), volumes: vec!["data".into()] })
    }

    async fn destroy(
        &self,
        stages: &[String],
        volumes: bool,
        on: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Removed, Broken> {
        self.calls.lock().unwrap().push(format!("destroy {} stages, volumes {volumes}", stages.len()));
        for s in &self.items {
            on(s);
        }
        Ok(Removed {
            services: self.items.iter().map(|s| s.to_string()).collect(),
            items: self.items.len(),
            ..Default::default()
        })
    }

    async fn status(&self) -> Result<Vec<pipeline_executor::target::ServiceStatus>, Broken> {
        Ok(vec![])
    }

    async fn logs(
        &self,
        _: &[String],
        _: &pipeline_executor::logs::LogOptions,
    ) -> Result<pipeline_executor::logs::LogStream, Broken> {
        Ok(Box::pin(futures_util::stream::empty()))
    }

    async fn endpoints(&self) -> Result<Vec<Endpoint>, Broken> {
        Ok(vec![Endpoint { service: "api".into(), name: "api-1".into(), ports: vec!["127.0.0.1:1->80".into()] }])
    }
}

fn target(calls: &Calls) -> FakeTarget {
    FakeTarget { calls: Arc::clone(calls), locked_by: None, items: vec!["api", "old"] }
}

/// A plan that creates `names` (prebuilt images, nothing to build) and deletes `old`.
fn plan(names: &[&str]) -> Plan {
    let service = |name: &str| {
        json!({ "name": name, "type": "container",
                "build": { "action": "none", "image": "x:1", "key": null, "shared_with": null, "reason": null },
                "deploy": { "action": "create", "changes": [] },
                "spec": { "type": "container", "stage": "2.DEFAULT CONTAINER", "image": "x:1" } })
    };
    let old = json!({ "name": "old", "type": "container",
        "build": { "action": "none", "image": "old:1", "key": null, "shared_with": null, "reason": null },
        "deploy": { "action": "delete", "changes": [] } });
    let mut services: Vec<_> = names.iter().map(|n| service(n)).collect();
    services.push(old);
    serde_json::from_value(json!({
        "format_version": 1, "project": "shop", "environment": "test", "target": { "type": "docker" },
        "registry": "127.0.0.1:5000/shop", "parallelism": { "build": 7, "deploy": 7 },
        "stages": [{ "name": "2.DEFAULT CONTAINER", "services": services }],
        "summary": { "build": 0, "cached": 0, "shared": 0, "create": names.len(), "update": 0, "replace": 0,
                     "delete": 1, "unchanged": 0 },
        "warnings": [], "digest": "d"
    }))
    .expect("a plan")
}

/// How the fake binary answers.
#[derive(Clone, Copy, PartialEq)]
enum Answer {
    Go,
    Decline,
    PlanFails,
    PlanPanics,
}

struct FakeUi {
    calls: Calls,
    services: Vec<&'static str>,
    answer: Answer,
}

impl ApplyUi for FakeUi {
    fn plan(&self, live: &dyn LiveState) -> Result<Planned, Report> {
        let running = live.observe("shop", "test").unwrap();
        self.calls.lock().unwrap().push(format!("plan against {} running", running.len()));
        match self.answer {
            Answer::PlanFails => return Err(Box::new(Broken { service: "the plan".into() })),
            Answer::PlanPanics => panic!("the planner panicked"),
            _ => {}
        }
        Ok(Planned { plan: plan(&self.services), keyed: HashMap::new() })
    }

    fn review(&self, _: &Plan) -> Result<bool, Report> {
        self.calls.lock().unwrap().push("review".into());
        Ok(self.answer == Answer::Go)
    }

    fn builder(&self, _: &BuilderKind) {}

    fn started(&self, _: &Plan, prepared: &Prepared) -> Notify {
        self.calls.lock().unwrap().push(format!("started {} services", prepared.services.len()));
        Arc::new(|_| {})
    }

    fn event(&self, _: &Event) {}

    fn finished(&self) {
        self.calls.lock().unwrap().push("finished".into());
    }

    fn warn(&self, message: &str) {
        self.calls.lock().unwrap().push(format!("warn {message}"));
    }
}

fn request<'a>(dir: &std::path::Path, secrets: &'a Secrets) -> ApplyRequest<'a> {
    ApplyRequest {
        base_dir: dir.to_path_buf(),
        registry: Arc::new(RegistryClient::new(Default::default()).expect("a registry client")),
        secrets,
        timeout: Duration::from_secs(5),
        parallelism: None,
        holder: "me".into(),
        on_interrupt: Arc::new(|_| {}),
    }
}

async fn apply(t: FakeTarget, ui: &FakeUi) -> Result<Applied, Report> {
    let dir = tempfile::tempdir().unwrap();
    let secrets = Secrets::names_only(&Default::default());
    session::apply_to(t, request(dir.path(), &secrets), ui).await
}

fn calls(c: &Calls) -> Vec<String> {
    c.lock().unwrap().clone()
}

#[tokio::test]
async fn an_apply_locks_observes_plans_reviews_deploys_retires_and_releases_in_that_order() {
    let c = Calls::default();
    let ui = FakeUi { calls: Arc::clone(&c), services: vec!["api"], answer: Answer::Go };
    let Applied::Ran(ran) = apply(target(&c), &ui).await.unwrap() else { panic!("it ran") };
    assert!(ran.outcome.success());
    assert_eq!(ran.endpoints.len(), 1, "endpoints come from the target");
    assert_eq!(
        calls(&c),
        [
            "lock me",
            "observe",
            "plan against 1 running",
            "review",
            "started 2 services",
            "deploy api",
            "retire old",
            "finished",
            "release"
        ]
    );
}

#[tokio::test]
async fn a_failed_deploy_keeps_its_code_and_help_and_the_lock_is_released() {
    let c = Calls::default();
    let ui = FakeUi { calls: Arc::clone(&c), services: vec!["api", "broken"], answer: Answer::Go };
    let Applied::Ran(ran) = apply(target(&c), &ui).await.unwrap() else { panic!("it ran") };
    assert!(!ran.outcome.success());
    let i = ran.prepared.services.iter().position(|s| s.name == "broken").unwrap();
    let r = &ran.outcome.deploys[i];
    assert_eq!(r.status, Status::Failed);
    let e = r.error.as_ref().expect("an error");
    assert_eq!(e.message, "broken would not start");
    assert_eq!(e.code.as_deref(), Some("fake::broken"));
    assert_eq!(e.help.as_deref(), Some("fix broken"));
    assert_eq!(calls(&c).last().map(String::as_str), Some("release"));
}

#[tokio::test]
async fn the_lock_is_released_when_planning_fails_when_the_review_declines_and_when_planning_panics() {
    for answer in [Answer::PlanFails, Answer::Decline, Answer::PlanPanics] {
        let c = Calls::default();
        let ui = FakeUi { calls: Arc::clone(&c), services: vec!["api"], answer };
        let outcome = AssertUnwindSafe(apply(target(&c), &ui)).catch_unwind().await;
        match answer {
            Answer::PlanFails => {
                assert_eq!(outcome.unwrap().err().expect("an error").to_string(), "the plan would not start")
            }
            Answer::Decline => assert!(matches!(outcome.unwrap(), Ok(Applied::Declined(_))), "declined"),
            _ => assert!(outcome.is_err(), "the panic goes on after the release"),
        }
        let seen = calls(&c);
        assert_eq!(seen.last().map(String::as_str), Some("release"), "{seen:?}");
        assert!(!seen.iter().any(|s| s.starts_with("deploy") || s.starts_with("retire")), "{seen:?}");
    }
}

#[tokio::test]
async fn a_held_lock_is_the_targets_error_and_nothing_else_happens() {
    let c = Calls::default();
    let ui = FakeUi { calls: Arc::clone(&c), services: vec!["api"], answer: Answer::Go };
    let t = FakeTarget { locked_by: Some("alice".into()), ..target(&c) };
    let err = apply(t, &ui).await.err().expect("refused");
    assert_eq!(err.code().map(|c| c.to_string()).as_deref(), Some("fake::broken"));
    assert!(calls(&c).is_empty());
}

struct DestroyAnswers {
    calls: Calls,
    yes: bool,
}

impl DestroyUi for DestroyAnswers {
    fn confirm(&self, inventory: &Inventory, volumes: bool) -> Result<bool, Report> {
        self.calls.lock().unwrap().push(format!("confirm {} items, volumes {volumes}", inventory.items.len()));
        Ok(self.yes)
    }

    fn removing(&self, what: &str) {
        self.calls.lock().unwrap().push(format!("removing {what}"));
    }

    fn warn(&self, _: &str) {}
}

#[tokio::test]
async fn destroy_lists_confirms_removes_and_releases_and_does_nothing_when_declined_or_empty() {
    let stages = vec!["0".to_string(), "1".to_string()];
    let c = Calls::default();
    let ui = DestroyAnswers { calls: Arc::clone(&c), yes: true };
    let done = session::destroy_with(&target(&c), &stages, "me", true, &[], &ui).await.unwrap();
    assert!(matches!(done, Destroyed::Removed(_, r) if r.items == 2));
    assert_eq!(
        calls(&c),
        [
            "lock me",
            "inventory",
            "confirm 2 items, volumes true",
            "destroy 2 stages, volumes true",
            "removing api",
            "removing old",
            "release"
        ]
    );

    let c = Calls::default();
    let ui = DestroyAnswers { calls: Arc::clone(&c), yes: false };
    let done = session::destroy_with(&target(&c), &stages, "me", false, &[], &ui).await.unwrap();
    assert!(matches!(done, Destroyed::Declined(_)));
    assert_eq!(calls(&c), ["lock me", "inventory", "confirm 2 items, volumes false", "release"]);

    // Nothing runs and volumes are kept: nothing to confirm.
    let c = Calls::default();
    let ui = DestroyAnswers { calls: Arc::clone(&c), yes: true };
    let empty = FakeTarget { items: vec![], ..target(&c) };
    let done = session::destroy_with(&empty, &stages, "me", false, &[], &ui).await.unwrap();
    assert!(matches!(done, Destroyed::Nothing(i) if i.volumes == ["data"]));
    assert_eq!(calls(&c), ["lock me", "inventory", "release"]);
}

/// Answers the confirmation only after Ctrl-C (SIGINT to this process) was heard, as a user who presses
/// Ctrl-C at the question: the lock must be released before the hook runs (the binary then exits).
struct InterruptedAtTheQuestion {
    calls: Calls,
    heard: Arc<std::sync::atomic::AtomicBool>,
}

impl DestroyUi for InterruptedAtTheQuestion {
    fn confirm(&self, _: &Inventory, _: bool) -> Result<bool, Report> {
        self.calls.lock().unwrap().push("confirm".into());
        let pid = std::process::id().to_string();
        let sent = std::process::Command::new("kill").args(["-INT", &pid]).status().expect("run kill");
        assert!(sent.success());
        for _ in 0..100 {
            if self.heard.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(false)
    }

    fn removing(&self, _: &str) {}

    fn warn(&self, _: &str) {}

    fn on_interrupt(&self) -> Option<Arc<dyn Fn() + Send + Sync>> {
        let (calls, heard) = (Arc::clone(&self.calls), Arc::clone(&self.heard));
        Some(Arc::new(move || {
            calls.lock().unwrap().push("interrupted".into());
            heard.store(true, std::sync::atomic::Ordering::SeqCst);
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_at_the_destroy_question_releases_the_lock_first() {
    let stages = vec!["0".to_string()];
    let c = Calls::default();
    let ui = InterruptedAtTheQuestion { calls: Arc::clone(&c), heard: Default::default() };
    let _ = session::destroy_with(&target(&c), &stages, "me", false, &[], &ui).await;
    let seen = calls(&c);
    assert_eq!(seen[..4], ["lock me", "inventory", "confirm", "release"], "{seen:?}");
    assert_eq!(seen[4], "interrupted", "{seen:?}");
}

#[tokio::test]
async fn destroy_only_retires_the_named_services_and_refuses_unknown_names() {
    let stages = vec!["2.DEFAULT CONTAINER".to_string()];
    let c = Calls::default();
    let ui = DestroyAnswers { calls: Arc::clone(&c), yes: true };
    let only = ["old".to_string()];
    let done = session::destroy_with(&target(&c), &stages, "me", false, &only, &ui).await.unwrap();
    assert!(matches!(done, Destroyed::Removed(_, r) if r.services == ["old"] && r.items == 1));
    assert_eq!(
        calls(&c),
        ["lock me", "inventory", "confirm 1 items, volumes false", "observe", "removing old", "retire old", "release"]
    );

    let c = Calls::default();
    let ui = DestroyAnswers { calls: Arc::clone(&c), yes: true };
    let err = session::destroy_with(&target(&c), &stages, "me", false, &["apii".to_string()], &ui).await.err().unwrap();
    assert_eq!(err.to_string(), "`--only apii`: no service `apii` runs");
    assert_eq!(err.help().map(|h| h.to_string()).as_deref(), Some("did you mean `api`?"));
    assert_eq!(calls(&c), ["lock me", "inventory", "release"], "nothing removed, the lock released");
}
