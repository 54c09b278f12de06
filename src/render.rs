//! `render`: the Kubernetes manifests of an environment, made from an offline plan.

use crate::cli::RenderArgs;
use crate::commands::Report;
use crate::planning::{How, make_plan, read_secrets, report, with_environment};
use pipeline_executor::kubernetes::manifest::{self, Object, Scope, SecretValues};
use pipeline_planner::cache::Offline;
use pipeline_planner::graph::Graph;
use pipeline_planner::live::NothingDeployed;
use pipeline_planner::pins::LockMode;
use pipeline_planner::secrets::Secrets;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;

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
            Some(secret) => pipeline_executor::prepare::secret_values(&s.name, spec, secret).map_err(report)?,
            None => BTreeMap::new(),
        };
        let shown = if secret.is_some() { SecretValues::Shown(&values) } else { SecretValues::Hidden };
        let objects = manifest::service_objects(scope, &s.name, spec, s.build.key.as_deref(), shown).map_err(report)?;
        out.extend(objects);
    }
    Ok(out)
}

/// Drop the secrets' fingerprints from every deploy spec: what `render` prints (the spec annotation,
/// the spec hash, a Job's name) then does not depend on any secret's value, so the output reveals
/// nothing about the values and is the same with or without them.
fn without_fingerprints(plan: &mut pipeline_planner::Plan) {
    for s in plan.stages.iter_mut().flat_map(|st| st.services.iter_mut()) {
        s.spec = s.spec.take().map(pipeline_planner::DeploySpec::without_fingerprints);
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
        let (mut plan, _) = make_plan(
            env,
            &graph,
            sources,
            &secrets,
            &Offline,
            &NothingDeployed,
            How { mode: LockMode::Offline, only: None },
        )?;
        without_fingerprints(&mut plan);
        let mut scope = Scope::of(env);
        // With credentials for the mirror, workloads pull with a Secret made from them, as apply keeps it.
        let registry = pipeline_executor::registry::RegistryClient::new(Default::default()).map_err(report)?;
        let login = registry
            .credentials_for(&env.registry.host)
            .map_err(report)?
            .and_then(|c| Some((c.username?, c.password?)));
        scope.pull_secret = login.is_some();
        let value = |name: &str| secrets.get(name).map(|v| v.expose().to_string());
        let mut objects = objects(&scope, &plan, args.show_secrets.then_some(&value as SecretLookup<'_>))?;
        if let Some((user, password)) = &login {
            let shown = args.show_secrets.then_some((user.as_str(), password.as_str()));
            objects.insert(1, manifest::pull_secret(&scope, &env.registry.host, shown));
        }
        let yaml = manifest::to_yaml(&objects).map_err(report)?;
        let mut note: Vec<String> = plan.warnings.iter().filter(|w| w.contains("not pinned")).cloned().collect();
        note.extend(Scope::borrowed_namespace(env));
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
