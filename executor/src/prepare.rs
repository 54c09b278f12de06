//! From a plan to a [`Schedule`]: one build per image to build, one task per service, stage indices in
//! execution order, in-stage dependencies, and durations from earlier runs (kept in `.pipeline/`) as
//! estimates so the longest tasks start first.

use crate::build::ImageBuild;
use crate::schedule::{BuildTask, Outcome, Schedule, ServiceTask};
use crate::target::ServiceDeploy;
use pipeline_planner::DeploySpec;
use pipeline_planner::plan::{BuildAction, DeployAction, KeyedBuild, Plan};
use pipeline_planner::secrets::SecretValue;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

/// What a run needs, index-aligned with its schedule.
pub struct Prepared {
    pub schedule: Schedule,
    pub builds: Vec<ImageBuild>,
    pub services: Vec<ServiceDeploy>,
}

/// Durations of earlier runs: builds per image repository, deploys per service.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Durations {
    #[serde(default)]
    pub builds: BTreeMap<String, f64>,
    #[serde(default)]
    pub deploys: BTreeMap<String, f64>,
}

impl Durations {
    pub fn load(file: &Path) -> Durations {
        std::fs::read(file).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
    }

    pub fn save(&self, file: &Path) -> std::io::Result<()> {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        pipeline_planner::lockfile::write_replacing(file, &serde_json::to_vec_pretty(self).unwrap_or_default())
    }

    /// Record what this run measured (successful tasks only).
    pub fn record(&mut self, prepared: &Prepared, outcome: &Outcome) {
        use crate::schedule::Status;
        for (b, r) in prepared.builds.iter().zip(&outcome.builds) {
            if let (Status::Done, Some(d)) = (r.status, r.duration()) {
                self.builds.insert(b.keyed.image.repository.clone(), d.as_secs_f64());
            }
        }
        for (s, r) in prepared.services.iter().zip(&outcome.deploys) {
            if let (Status::Done, Some(d)) = (r.status, r.duration()) {
                self.deploys.insert(s.name.clone(), d.as_secs_f64());
            }
        }
    }
}

/// A plan that cannot be run as it is.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PrepareError {
    #[error("no value for secret `{name}` ({what})")]
    #[diagnostic(
        code(pipeline::apply::secret),
        help("set `{}` or pass `--secrets FILE`", pipeline_planner::secrets::env_var(name))
    )]
    MissingSecret { name: String, what: String },
    #[error("the plan has no keyed build for `{0}`")]
    #[diagnostic(code(pipeline::apply::prepare), help("plan again: the saved plan and the definitions disagree"))]
    NoKeyedBuild(String),
}

/// The values of a deploy spec's secrets by variable name; `secret` gives a secret's value by its name.
pub fn secret_values(
    service: &str,
    spec: &DeploySpec,
    secret: impl Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>, PrepareError> {
    let mut out = BTreeMap::new();
    for (var, r) in &spec.secrets {
        let value = secret(&r.secret).ok_or_else(|| PrepareError::MissingSecret {
            name: r.secret.clone(),
            what: format!("service `{service}`"),
        })?;
        out.insert(var.clone(), value);
    }
    Ok(out)
}

/// Lay out the plan as a schedule. `keyed` holds each service's keyed build (by service name);
/// `secret` gives a secret's value by its name.
pub fn prepare(
    plan: &Plan,
    keyed: &HashMap<String, KeyedBuild>,
    secret: impl Fn(&str) -> Option<String>,
    durations: &Durations,
    build_slots: usize,
    deploy_slots: usize,
) -> Result<Prepared, PrepareError> {
    let mut builds: Vec<ImageBuild> = Vec::new();
    let mut build_of_image: HashMap<String, usize> = HashMap::new();
    // First pass: the images this run builds (the builder service's action is `build`).
    for (_, s) in plan.services() {
        if s.build.action == BuildAction::Build {
            let k = keyed.get(&s.name).ok_or_else(|| PrepareError::NoKeyedBuild(s.name.clone()))?;
            let image = k.image.to_string();
            if let std::collections::hash_map::Entry::Vacant(e) = build_of_image.entry(image) {
                e.insert(builds.len());
                let mut secrets = BTreeMap::new();
                for (id, name) in &k.secrets {
                    let value = secret(name).ok_or_else(|| PrepareError::MissingSecret {
                        name: name.clone(),
                        what: format!("build secret {id} of `{}`", s.name),
                    })?;
                    secrets.insert(id.clone(), SecretValue::new(value));
                }
                builds.push(ImageBuild {
                    service: s.name.clone(),
                    keyed: k.clone(),
                    secrets,
                    cache_from: s.build.cache_from.clone(),
                });
            }
        }
    }
    let mut services = Vec::new();
    let mut tasks = Vec::new();
    let mut index_of: HashMap<&str, usize> = HashMap::new();
    for (si, (stage, s)) in
        plan.stages.iter().enumerate().flat_map(|(i, st)| st.services.iter().map(move |s| (i, (st, s))))
    {
        let _ = stage;
        index_of.insert(s.name.as_str(), tasks.len());
        let build = s.build.image.as_ref().and_then(|i| build_of_image.get(i).copied());
        let deploy = s.deploy.action != DeployAction::Unchanged;
        let secrets = match &s.spec {
            Some(spec) => secret_values(&s.name, spec, &secret)?,
            None => BTreeMap::new(),
        };
        tasks.push(ServiceTask {
            name: s.name.clone(),
            stage: si,
            // A service already at its spec needs no image.
            build: if deploy { build } else { None },
            deploy,
            depends_on: vec![],
            estimate: durations.deploys.get(&s.name).and_then(|&d| Duration::try_from_secs_f64(d).ok()),
        });
        services.push(ServiceDeploy {
            name: s.name.clone(),
            action: s.deploy.action,
            spec: s.spec.clone(),
            key: s.build.key.clone(),
            secrets,
        });
    }
    // In-stage dependencies, by index.
    for (_, s) in plan.services() {
        let Some(&i) = index_of.get(s.name.as_str()) else { continue };
        let deps: Vec<usize> = s
            .depends_on
            .iter()
            .filter_map(|d| index_of.get(d.as_str()).copied())
            .filter(|&d| tasks[d].stage == tasks[i].stage)
            .collect();
        tasks[i].depends_on = deps;
    }
    let build_tasks = builds
        .iter()
        .map(|b| BuildTask {
            key: b.keyed.key.clone(),
            estimate: durations
                .builds
                .get(&b.keyed.image.repository)
                .and_then(|&d| Duration::try_from_secs_f64(d).ok()),
        })
        .collect();
    Ok(Prepared {
        schedule: Schedule {
            stages: plan.stages.len(),
            builds: build_tasks,
            services: tasks,
            build_slots: build_slots.max(1),
            deploy_slots: deploy_slots.max(1),
        },
        builds,
        services,
    })
}
