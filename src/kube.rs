//! The Kubernetes side of the commands: `render`, the cluster connection and live state for `plan`,
//! `apply` and `destroy`.

use crate::cli::RenderArgs;
use crate::commands::Report;
use crate::planning::{make_plan, read_secrets, report, with_environment};
use pipeline_executor::k8s::live::{self, KubeLive};
use pipeline_executor::k8s::manifest::{self, Object, Scope, SecretValues};
use pipeline_executor::k8s::{self, Cluster};
use pipeline_planner::cache::Offline;
use pipeline_planner::graph::Graph;
use pipeline_planner::live::NothingDeployed;
use pipeline_planner::model::Target;
use pipeline_planner::pins::LockMode;
use pipeline_planner::secrets::Secrets;
use pipeline_planner::{Diag, Environment};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;

/// The namespace and labels of an environment: the target's namespace, or `<project>-<env>` when the
/// definitions deploy to Docker (for `render`).
pub fn scope(env: &Environment) -> Scope {
    let namespace = match &env.target {
        Target::Kubernetes { namespace, .. } => namespace.clone(),
        Target::Docker => format!("{}-{}", env.project, env.name),
    };
    Scope { project: env.project.clone(), environment: env.name.clone(), namespace }
}

/// The context to use: `--context`, else the definition's, else the kubeconfig's current one.
pub fn context<'a>(env: &'a Environment, flag: Option<&'a str>) -> Option<&'a str> {
    match &env.target {
        Target::Kubernetes { context, .. } => flag.or(context.as_deref()),
        Target::Docker => flag,
    }
}

pub async fn connect(env: &Environment, flag: Option<&str>) -> Result<Cluster, Report> {
    k8s::connect(context(env, flag), &scope(env).namespace).await.map_err(report)
}

/// Live state of a Kubernetes environment (for `plan`).
pub fn live_state(env: &Environment, flag: Option<&str>) -> Result<KubeLive, Report> {
    let rt = crate::apply::runtime()?;
    rt.block_on(async {
        let cluster = connect(env, flag).await?;
        let scope = scope(env);
        let objects = live::observe(&cluster, &scope).await.map_err(report)?;
        Ok(KubeLive { scope, objects })
    })
}

/// A secret's value by its name.
type SecretLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The objects of every service in stage order, the namespace first. `secret` gives a secret's value
/// by its name when values are shown.
pub fn objects(
    scope: &Scope,
    plan: &pipeline_planner::Plan,
    secret: Option<SecretLookup<'_>>,
) -> Result<Vec<Object>, Report> {
    let mut out = vec![manifest::namespace(scope)];
    for (_, s) in plan.services() {
        let Some(spec) = &s.spec else { continue };
        let values = match secret {
            Some(secret) => pipeline_executor::apply::secret_values(spec, secret)
                .map_err(|e| report(Diag::new("pipeline::render::secrets", format!("{e} (service `{}`)", s.name))))?,
            None => BTreeMap::new(),
        };
        let shown = if secret.is_some() { SecretValues::Shown(&values) } else { SecretValues::Hidden };
        let objects = manifest::service_objects(scope, &s.name, spec, s.build.key.as_deref(), shown)
            .map_err(|e| report(Diag::new("pipeline::render::service", e)))?;
        out.extend(objects);
    }
    Ok(out)
}

/// Drop the secrets' fingerprints from every deploy spec: what `render` prints (the spec annotation,
/// the spec hash, a Job's name) then does not depend on any secret's value, so the output reveals
/// nothing about the values and is the same with or without them.
fn without_fingerprints(plan: &mut pipeline_planner::Plan) {
    let specs = plan.stages.iter_mut().flat_map(|st| st.services.iter_mut()).filter_map(|s| s.spec.as_mut());
    for spec in specs {
        if let Some(serde_json::Value::Object(secrets)) = spec.get_mut("secrets") {
            for entry in secrets.values_mut() {
                if let serde_json::Value::Object(e) = entry {
                    e.remove("fingerprint");
                }
            }
        }
    }
}

pub fn render(args: RenderArgs) -> Result<ExitCode, Report> {
    let secrets_file = match &args.secrets {
        Some(p) => Some(read_secrets(p)?),
        None => None,
    };
    let (yaml, note) = with_environment(&args.input, |env, sources| {
        let graph = Graph::new(env, sources).map_err(report)?;
        let names = pipeline_planner::plan::secret_names(env);
        // Values are read only to be shown; without --show-secrets none is needed (a GitOps or CI
        // render step has none).
        let secrets = if args.show_secrets {
            let lookup = |var: &str| std::env::var(var).ok();
            Secrets::resolve(&names, secrets_file.as_ref(), &lookup).map_err(|d| report(*d))?
        } else {
            Secrets::names_only(&names)
        };
        // Image references come from the build keys, computed here: no registry or cluster is asked.
        let (mut plan, _) = make_plan(env, &graph, sources, &secrets, &Offline, &NothingDeployed, LockMode::Offline)?;
        without_fingerprints(&mut plan);
        let scope = scope(env);
        let value = |name: &str| secrets.get(name).map(|v| v.expose().to_string());
        let objects = objects(&scope, &plan, args.show_secrets.then_some(&value as SecretLookup<'_>))?;
        let yaml = manifest::to_yaml(&objects).map_err(|e| report(Diag::new("pipeline::render::yaml", e)))?;
        let mut note: Vec<String> = plan.warnings.iter().filter(|w| w.contains("not pinned")).cloned().collect();
        if env.target == Target::Docker {
            note.push(format!(
                "the definitions deploy to Docker; these manifests use the namespace `{}`",
                scope.namespace
            ));
        }
        if !args.show_secrets && objects.iter().any(|o| matches!(o, Object::Secret(_))) {
            note.push("Secret values are left empty: pass --show-secrets to include them".to_string());
        }
        Ok((yaml, note))
    })?;
    for n in note {
        eprintln!("note: {n}");
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(yaml.as_bytes());
    Ok(ExitCode::SUCCESS)
}
