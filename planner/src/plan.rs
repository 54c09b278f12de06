//! The plan: per stage, per service, what will be built (or found in the mirror registry, or shared)
//! and what will change in the target, field by field. Serialized as the documented `--json` format
//! (docs/plan-format.md) and saved with `--out` for `apply`.

use crate::cache::{CacheState, ImageCache, ImageRef};
use crate::context::{self, Context, StatCache};
use crate::dockerfile::Dockerfile;
use crate::error::{Diag, Result};
use crate::graph::Graph;
use crate::images::{ImageUse, analyse, pin_dockerfile};
use crate::key::{self, KeyInput};
use crate::live::{LiveService, LiveState};
use crate::lockfile::Lockfile;
use crate::model::{Environment, Parallelism, Service, Target};
use crate::pins::{self, LockMode, Pinned, Place, Wanted};
use crate::record::{self, KeyChange, KeyRecord};
use crate::reference::Reference;
use crate::secrets::Secrets;
use crate::spec::{DeploySpec, SecretRef};
use pipeline_lang::span::SourceMap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bumped on any incompatible change to the serialized plan.
pub const PLAN_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub project: String,
    pub environment: String,
    pub target: Target,
    pub registry: String,
    pub parallelism: Parallelism,
    pub stages: Vec<StagePlan>,
    pub summary: Summary,
    pub warnings: Vec<String>,
    /// blake3 of the desired state (every key and deploy spec): what `apply` checks a saved plan against.
    pub digest: String,
    /// What the plan was made from, in a saved plan (`plan --out`), so `apply plan.json` can make it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// A partial plan (`--only`): what it covers. Absent: the whole environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selection: Option<Selection>,
}

/// The definitions file and the arguments a saved plan was made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub file: PathBuf,
    /// `--arg NAME EXPR` pairs.
    #[serde(default)]
    pub arg: Vec<(String, String)>,
    /// `--argstr NAME STRING` pairs.
    #[serde(default)]
    pub argstr: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagePlan {
    pub name: String,
    pub services: Vec<ServicePlan>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServicePlan {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    pub build: BuildPlan,
    pub deploy: DeployPlan,
    /// The desired deploy spec (absent for a service to delete). Secrets appear as name + fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "crate::spec::sorted")]
    pub spec: Option<DeploySpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildAction {
    Build,
    Cached,
    Shared,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildPlan {
    pub action: BuildAction,
    pub image: Option<String>,
    pub key: Option<String>,
    pub shared_with: Option<String>,
    pub reason: Option<String>,
    /// For a build: what differs from the image compared with (deployed, else the newest built for the
    /// service), input by input (docs/plan-format.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<KeyChange>,
    /// For a build: the images whose layers it may reuse (the service's deployed image and the newest
    /// image built for it, when the mirror has them), as BuildKit's cache sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    /// What to build, for `apply` (paths relative to the definition's folder when inside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<BuildSource>,
}

impl BuildPlan {
    /// Nothing to build: the service runs `image` as it is.
    pub fn none(image: Option<String>) -> BuildPlan {
        BuildPlan {
            action: BuildAction::None,
            image,
            key: None,
            shared_with: None,
            reason: None,
            changes: vec![],
            cache_from: vec![],
            source: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildSource {
    pub context: String,
    pub dockerfile: String,
    pub target: Option<String>,
    pub platform: Option<String>,
    /// The build args that reach the build (declared by the Dockerfile).
    pub args: BTreeMap<String, String>,
    pub files: usize,
    /// The images the build uses, pinned: reference -> digest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub images: BTreeMap<String, String>,
    /// Build secrets by mount id: the secret names (values never appear in a plan).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeployAction {
    Create,
    Update,
    Replace,
    Delete,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployPlan {
    pub action: DeployAction,
    pub changes: Vec<Change>,
    /// The target's objects that change (Kubernetes), with their field-level changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectDiff>,
}

/// One object of the target that a deploy creates, changes or deletes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectDiff {
    /// `deployment/api`.
    pub object: String,
    pub action: ObjectAction,
    /// For an update: the fields that differ from the live object (server-managed fields left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectAction {
    Create,
    Update,
    Delete,
}

/// One field-level change; `before`/`after` are absent for an added/removed field. Secret values are
/// never shown: a sensitive change carries `"(sensitive)"` on both sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub path: String,
    pub before: Option<Json>,
    pub after: Option<Json>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Summary {
    pub build: usize,
    pub cached: usize,
    pub shared: usize,
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub unchanged: usize,
}

impl Plan {
    /// Whether applying would do anything (for `--detailed-exitcode`).
    pub fn has_changes(&self) -> bool {
        let s = &self.summary;
        s.build + s.create + s.update + s.replace + s.delete > 0
    }

    pub fn services(&self) -> impl Iterator<Item = (&StagePlan, &ServicePlan)> {
        self.stages.iter().flat_map(|st| st.services.iter().map(move |s| (st, s)))
    }
}

/// A service's build, keyed.
#[derive(Debug, Clone)]
pub struct KeyedBuild {
    pub key: String,
    pub image: ImageRef,
    pub context: Arc<Context>,
    pub dockerfile: PathBuf,
    /// The args that reach the build.
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    /// Where the Dockerfile uses images (the stages the target needs, `--from`, mounts, `# syntax`).
    pub uses: Vec<ImageUse>,
    /// Each image used (as `Reference::key_name`) -> the digest it is pinned to: in the key, and what the
    /// engine builds from.
    pub images: BTreeMap<String, String>,
    /// blake3 (hex) of the Dockerfile's bytes as keyed.
    pub dockerfile_blake3: String,
    /// Build secrets: mount id -> secret name (names only: in the key; values are given at build time).
    pub secrets: BTreeMap<String, String>,
}

impl KeyedBuild {
    /// The Dockerfile as the engine gets it: every image it uses named by its pinned digest, so no stale
    /// local copy of a tag can be used. Same lines as `text`.
    pub fn pinned_dockerfile(&self, text: &str) -> String {
        let df = Dockerfile::parse(text);
        pin_dockerfile(text, &df, &self.uses, |r| {
            if r.digest.is_some() {
                return None;
            }
            self.images.get(&r.key_name()).map(|d| r.with_digest(d))
        })
    }
}

/// A service's build, read and hashed, before its images are pinned.
#[derive(Debug, Clone)]
pub struct PreparedBuild {
    pub service: String,
    pub context: Arc<Context>,
    pub dockerfile: PathBuf,
    /// The Dockerfile as shown in messages (relative to the definitions' folder when inside it).
    pub dockerfile_name: String,
    pub bytes: Vec<u8>,
    pub text: Arc<str>,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub uses: Vec<ImageUse>,
    pub image: ImageRef,
    /// Build secrets: mount id -> secret name.
    pub secrets: BTreeMap<String, String>,
}

/// One entry per service: the keyed build, the reason its key is unknown (an image not pinned, offline),
/// or None for a prebuilt image.
pub type Keyed = Vec<Option<Result<KeyedBuild, String>>>;

/// Hash every build context (each distinct one once, in parallel), read every Dockerfile and find the
/// images it uses. Returns one entry per service (None for prebuilt images, or for those `wanted` refuses)
/// and warnings.
pub fn prepare_builds(
    env: &Environment,
    sources: &SourceMap,
    cache: &StatCache,
    wanted: impl Fn(&Service) -> bool,
) -> Result<(Vec<Option<PreparedBuild>>, Vec<String>)> {
    let roots: BTreeSet<&Path> = env
        .services
        .iter()
        .filter(|s| wanted(s))
        .filter_map(|s| s.build.as_ref())
        .map(|b| b.context.as_path())
        .collect();
    let hashed: Vec<Result<Arc<Context>>> = roots
        .par_iter()
        .map(|root| {
            let state = env.base_dir().join(".pipeline");
            context::hash_context_except(root, &display_path(env.base_dir(), root), cache, Some(&state)).map(Arc::new)
        })
        .collect();
    let mut contexts: HashMap<&Path, Arc<Context>> = HashMap::new();
    for (root, r) in roots.iter().zip(hashed) {
        contexts.insert(root, r.map_err(|e| at_context(e, env, sources, root))?);
    }
    let mut out = Vec::with_capacity(env.services.len());
    let mut warnings = Vec::new();
    for s in &env.services {
        let Some(b) = s.build.as_ref().filter(|_| wanted(s)) else {
            out.push(None);
            continue;
        };
        let ctx = contexts[b.context.as_path()].clone();
        let shown = display_path(env.base_dir(), &b.dockerfile);
        let bytes = std::fs::read(&b.dockerfile).map_err(|e| {
            Diag::new(
                "pipeline::plan::dockerfile",
                format!("cannot read Dockerfile `{shown}` of service `{}`: {e}", s.name),
            )
            .at(sources, b.spans.dockerfile, "named here")
            .help("set `build.dockerfile` to a file relative to the context, or put a `Dockerfile` in it")
        })?;
        let text: Arc<str> = Arc::from(String::from_utf8_lossy(&bytes).as_ref());
        let df = Dockerfile::parse(&text);
        if let Some(t) = &b.target
            && !df.has_stage(t)
        {
            let named: Vec<String> = df.stages.iter().filter_map(|st| st.name.clone()).collect();
            let help = if named.is_empty() {
                format!("`{shown}` names no stage; add `AS {t}` to a FROM line or drop `build.target`")
            } else {
                format!("the named stages are: {}", named.join(", "))
            };
            return Err(Diag::new(
                "pipeline::plan::unknown_target",
                format!("`{shown}` has no stage `{t}` (build.target of `{}`)", s.name),
            )
            .at(sources, b.spans.target, "no such stage")
            .help(help)
            .into());
        }
        // Offered args, later sources winning: built-ins, env, build.args.
        let mut offered: BTreeMap<&str, String> = BTreeMap::new();
        offered.insert("PIPELINE_PROJECT", env.project.clone());
        offered.insert("PIPELINE_ENVIRONMENT", env.name.clone());
        offered.insert("PIPELINE_SERVICE", s.name.clone());
        for (k, v) in &s.env {
            offered.insert(k, v.clone());
        }
        for (k, v) in &b.args {
            offered.insert(k, v.clone());
        }
        let mut args = BTreeMap::new();
        for decl in &df.args {
            if let Some(secret) = s.secrets.get(&decl.name)
                && s.secrets_in_env.contains(&decl.name)
            {
                return Err(Diag::new(
                    "pipeline::plan::secret_build_arg",
                    format!("`env.{}` of service `{}` is the secret `{secret}`, and `{shown}` declares `ARG {}`: a secret never becomes a build arg", decl.name, s.name, decl.name),
                )
                .at(sources, s.spans.env.get(&decl.name).copied(), "a secret")
                .note(format!("declared at {shown}:{}", decl.line))
                .help("rename the ARG, or pass the value as a plain `build.args` entry if it is not secret")
                .into());
            }
            let Some(v) = offered.get(decl.name.as_str()) else { continue };
            if args.insert(decl.name.clone(), v.clone()).is_none()
                && decl.name.starts_with("PIPELINE_ENVIRONMENT")
                && !b.args.contains_key(&decl.name)
                && !s.env.contains_key(&decl.name)
            {
                warnings.push(format!(
                    "{shown}:{}: ARG {} receives the environment name (\"{}\"), which forces one build of `{}` per environment",
                    decl.line, decl.name, env.name, s.name
                ));
            }
        }
        let (uses, stages) = analyse(&df, &args, b.target.as_deref(), b.platform.as_deref()).map_err(|e| {
            Diag::new("pipeline::plan::dockerfile_image", format!("{shown}:{}: {}", e.line, e.message))
                .at_line(&shown, &text, e.line, "here")
                .note(format!("the Dockerfile of service `{}`", s.name))
                .help(e.help)
        })?;
        // Every secret a step that runs mounts must be given (unless the mount says `required=false`).
        if let Some(m) = df
            .secrets
            .iter()
            .find(|m| stages.contains(&m.stage) && m.required != Some(false) && !b.secrets.contains_key(&m.id))
        {
            let given = if b.secrets.is_empty() {
                "the service gives no build secrets".to_string()
            } else {
                format!("the service gives: {}", b.secrets.keys().cloned().collect::<Vec<_>>().join(", "))
            };
            return Err(Diag::new(
                "pipeline::plan::missing_build_secret",
                format!("{shown}:{}: the build mounts the secret `{}`, which service `{}` does not give", m.line, m.id, s.name),
            )
            .at_line(&shown, &text, m.line, "mounted here")
            .note(given)
            .help(format!(
                "add `build.secrets.{} = std.secret \"<name>\";` to service `{}`, or write `required=false` in the mount if the step runs without it",
                m.id, s.name
            ))
            .into());
        }
        let image =
            ImageRef { registry: env.registry.host.clone(), repository: repository_of(env, b), tag: String::new() };
        out.push(Some(PreparedBuild {
            service: s.name.clone(),
            context: ctx,
            dockerfile: b.dockerfile.clone(),
            dockerfile_name: shown,
            bytes,
            text,
            args,
            target: b.target.clone(),
            platform: b.platform.clone(),
            uses,
            image,
            secrets: b.secrets.clone(),
        }));
    }
    warnings.dedup();
    Ok((out, warnings))
}

/// Every image the services use: each Dockerfile's (as prepared) and each prebuilt `image`.
pub fn wanted_images(env: &Environment, prepared: &[Option<PreparedBuild>]) -> Vec<Wanted> {
    let mut out = Vec::new();
    for (s, p) in env.services.iter().zip(prepared) {
        if let Some(p) = p {
            for u in &p.uses {
                out.push(Wanted {
                    reference: u.reference.clone(),
                    service: s.name.clone(),
                    place: Place::Dockerfile { name: p.dockerfile_name.clone(), text: p.text.clone(), line: u.line },
                });
            }
        }
        if s.build.is_none()
            && let Some(Ok(r)) = s.image.as_deref().map(Reference::parse)
        {
            out.push(Wanted { reference: r, service: s.name.clone(), place: Place::Definition(s.spans.image) });
        }
    }
    out
}

/// Key each prepared build with the pinned images; a build whose images are not all pinned gets the reason.
pub fn key_prepared(prepared: Vec<Option<PreparedBuild>>, pins: &Pinned) -> Keyed {
    prepared
        .into_iter()
        .map(|p| {
            let p = p?;
            let mut images = BTreeMap::new();
            for u in &p.uses {
                match pins.digest_of(&u.reference) {
                    Some(d) => {
                        images.insert(u.reference.key_name(), d);
                    }
                    None => {
                        let why = pins
                            .unresolved
                            .get(&u.reference.name_with_tag())
                            .cloned()
                            .unwrap_or_else(|| "is not pinned".into());
                        return Some(Err(format!(
                            "key unknown: `{}` ({}:{}) {why}",
                            u.reference.familiar(),
                            p.dockerfile_name,
                            u.line
                        )));
                    }
                }
            }
            let key = key::build_key(&KeyInput {
                files: &p.context.files,
                dockerfile: &p.bytes,
                target: p.target.as_deref(),
                platform: p.platform.as_deref(),
                args: &p.args,
                images: &images,
                secrets: &p.secrets,
            });
            Some(Ok(KeyedBuild {
                dockerfile_blake3: blake3::hash(&p.bytes).to_hex().to_string(),
                image: ImageRef { tag: key.clone(), ..p.image },
                key,
                context: p.context,
                dockerfile: p.dockerfile,
                args: p.args,
                target: p.target,
                platform: p.platform,
                uses: p.uses,
                secrets: p.secrets,
                images,
            }))
        })
        .collect()
}

/// Errors about a context point at the first service that names it.
fn at_context(e: crate::error::Error, env: &Environment, sources: &SourceMap, root: &Path) -> crate::error::Error {
    let crate::error::Error::Invalid(d) = e else { return e };
    let owner = env.services.iter().find(|s| s.build.as_ref().is_some_and(|b| b.context == root));
    match owner.and_then(|s| s.build.as_ref().map(|b| (s, b.spans.context))) {
        Some((s, span)) if d.location().is_none() => {
            let msg = d.message().to_string();
            let mut nd = Diag::new(d.code(), msg).at(sources, span, format!("build context of `{}`", s.name));
            if let Some(h) = d.help_text() {
                nd = nd.help(h);
            }
            nd.into()
        }
        _ => crate::error::Error::Invalid(d),
    }
}

/// The repository a service's images are pushed to: `build.repository`, else the registry's prefix and
/// the context folder's name.
fn repository_of(env: &Environment, b: &crate::model::Build) -> String {
    match &b.repository {
        Some(r) => r.clone(),
        None => {
            let base = repo_name(&b.context);
            if env.registry.prefix.is_empty() { base } else { format!("{}/{base}", env.registry.prefix) }
        }
    }
}

/// The repository name for a context folder: its name lower-cased, each run of other characters written
/// as one `-`, trimmed (`My App.v2` -> `my-app-v2`); `image` if nothing is left.
fn repo_name(context: &Path) -> String {
    let name = context.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut s = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.is_empty() && !s.ends_with('-') {
            s.push('-');
        }
    }
    let s = s.trim_end_matches('-');
    if s.is_empty() { "image".into() } else { s.to_string() }
}

/// `p` relative to `base` when inside it, else as is.
pub fn display_path(base: &Path, p: &Path) -> String {
    match p.strip_prefix(base) {
        Ok(r) if r.as_os_str().is_empty() => ".".into(),
        Ok(r) => r.display().to_string(),
        Err(_) => p.display().to_string(),
    }
}

/// How images are pinned while planning: the lock as read, whether it may grow, and its name for messages.
#[derive(Debug, Clone, Copy)]
pub struct Pinning<'a> {
    pub lock: &'a Lockfile,
    pub mode: LockMode,
    /// The lock file as shown in messages (`pipeline.lock`, or its path).
    pub lock_name: &'a str,
}

/// Every service's build keyed, with the images pinned.
#[derive(Debug, Clone)]
pub struct KeyedEnvironment {
    pub keyed: Keyed,
    pub pins: Pinned,
    /// Every image a service uses, and where.
    pub wanted: Vec<Wanted>,
    pub warnings: Vec<String>,
}

/// Prepare the builds `wanted` accepts, pin every image the environment uses, and key the builds.
pub fn key_builds(
    env: &Environment,
    sources: &SourceMap,
    cache: &StatCache,
    registry: &dyn ImageCache,
    pinning: Pinning<'_>,
    wanted: impl Fn(&Service) -> bool,
) -> Result<KeyedEnvironment> {
    let (prepared, mut warnings) = prepare_builds(env, sources, cache, &wanted)?;
    let mut images = wanted_images(env, &prepared);
    images.retain(|w| env.service(&w.service).is_some_and(&wanted));
    let pins = pins::settle(pinning.lock, &images, registry, pinning.mode, pinning.lock_name, sources)?;
    if !pins.unresolved.is_empty() {
        let names: Vec<String> = pins
            .unresolved
            .keys()
            .map(|n| Reference::parse(n).map(|r| r.familiar()).unwrap_or_else(|_| n.clone()))
            .collect();
        warnings.push(format!(
            "not pinned in {} (--offline asks no registry): {}; their services' keys are unknown; run `pipeline lock`",
            pinning.lock_name,
            names.join(", ")
        ));
    }
    let keyed = key_prepared(prepared, &pins);
    Ok(KeyedEnvironment { keyed, pins, wanted: images, warnings })
}

/// The image a prebuilt service runs: as written with its pinned digest (`nginx:1.27@sha256:…`), as
/// written when it has a digest already or is not pinned.
pub fn pinned_image(written: &str, pins: &Pinned) -> String {
    match Reference::parse(written) {
        Ok(r) if r.digest.is_none() => match pins.lock.get(&r) {
            Some(p) => format!("{written}@{}", p.digest),
            None => written.to_string(),
        },
        _ => written.to_string(),
    }
}

/// Everything a plan is made from.
pub struct PlanInput<'a> {
    pub env: &'a Environment,
    pub graph: &'a Graph,
    pub sources: &'a SourceMap,
    pub secrets: &'a Secrets,
    pub registry: &'a dyn ImageCache,
    pub live: &'a dyn LiveState,
    pub stat_cache: &'a StatCache,
    pub pinning: Pinning<'a>,
    /// Plan only these services (`--only`); `None`: the whole environment.
    pub only: Option<&'a Only>,
}

/// The services asked for (`apply --only api,web`), and whether the services they depend on come too.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Only {
    pub names: Vec<String>,
    /// Leave out what the named services depend on (`--no-deps`).
    pub no_deps: bool,
}

/// What a partial plan covers, as the plan records it (a saved partial plan is applied with the same).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// The services asked for.
    pub asked: Vec<String>,
    pub no_deps: bool,
    /// Every service the plan covers: the asked ones and, unless `no_deps`, those they depend on,
    /// transitively.
    pub services: Vec<String>,
}

impl Selection {
    pub fn only(&self) -> Only {
        Only { names: self.asked.clone(), no_deps: self.no_deps }
    }
}

/// The services of the definitions `only` covers (indexes), and the names it asks for that the
/// definitions do not have (services that may run still, to be removed).
fn select(env: &Environment, graph: &Graph, only: &Only) -> (BTreeSet<usize>, Vec<String>) {
    let mut chosen = BTreeSet::new();
    let mut unknown = Vec::new();
    let mut todo: Vec<usize> = Vec::new();
    for name in &only.names {
        match env.services.iter().position(|s| &s.name == name) {
            Some(i) => todo.push(i),
            None => unknown.push(name.clone()),
        }
    }
    while let Some(i) = todo.pop() {
        if chosen.insert(i) && !only.no_deps {
            todo.extend(graph.dependencies(i));
        }
    }
    (chosen, unknown)
}

/// Make the plan.
pub fn plan(input: &PlanInput<'_>) -> Result<Plan> {
    plan_keyed(input).map(|(p, _)| p)
}

/// Make the plan, and keep each service's keyed build (None for prebuilt images) and the pinned images
/// (the lock to write when entries were added) for `apply`.
pub fn plan_keyed(input: &PlanInput<'_>) -> Result<(Plan, KeyedEnvironment)> {
    let env = input.env;
    let selected = input.only.map(|o| select(env, input.graph, o));
    let chosen = |i: usize| selected.as_ref().is_none_or(|(c, _)| c.contains(&i));
    let wanted = |s: &Service| env.services.iter().position(|x| x.name == s.name).is_some_and(chosen);
    let mut keyed_env = key_builds(env, input.sources, input.stat_cache, input.registry, input.pinning, wanted)?;
    let keyed = &keyed_env.keyed;
    let mut warnings = std::mem::take(&mut keyed_env.warnings);

    // Who builds each image: the first service in execution order; the others share.
    let order = execution_order(env, input.graph);
    let mut builder_of: BTreeMap<&ImageRef, usize> = BTreeMap::new();
    for &i in order.iter().flatten().filter(|&&i| chosen(i)) {
        if let Some(Ok(k)) = &keyed[i] {
            builder_of.entry(&k.image).or_insert(i);
        }
    }
    let images: Vec<ImageRef> = builder_of.keys().map(|r| (*r).clone()).collect();
    let states = if images.is_empty() { vec![] } else { input.registry.lookup(&images) };
    let state_of: HashMap<&ImageRef, &CacheState> = images.iter().zip(states.iter()).collect();
    let mut unknown_reasons = BTreeSet::new();
    for st in &states {
        if let CacheState::Unknown(why) = st {
            unknown_reasons.insert(why.clone());
        }
    }
    for why in unknown_reasons {
        warnings.push(format!("cache state unknown: {why}; images are planned to be built"));
    }

    let live = input.live.observe(&env.project, &env.name).map_err(|why| {
        Diag::new("pipeline::plan::live_state", format!("cannot read what is deployed: {why}"))
            .help("check that the target is reachable; the plan compares the definitions with what runs")
    })?;
    let live_by_name: BTreeMap<&str, &LiveService> = live.iter().map(|l| (l.name.as_str(), l)).collect();
    // A name `--only` asks for must be a service of the definitions, or one that runs still (to remove).
    if let Some((_, unknown)) = &selected
        && let Some(name) = unknown.iter().find(|n| !live_by_name.contains_key(n.as_str()))
    {
        let known = env.services.iter().map(|s| s.name.as_str()).chain(live.iter().map(|l| l.name.as_str()));
        return Err(Diag::new(
            "pipeline::plan::only_unknown",
            format!("`--only {name}`: there is no service `{name}`"),
        )
        .help(crate::error::suggest(name, known, |all| format!("the services are: {all}")))
        .into());
    }

    if matches!(env.target, Target::Docker { .. }) {
        for s in env.services.iter().filter(|s| s.schedule.is_some()) {
            warnings.push(format!(
                "the docker target does not schedule jobs: `{}` is created but never started (run it with `docker start`, or deploy to std.kubernetes for a CronJob)",
                s.name
            ));
        }
    }

    let mut summary = Summary::default();
    let mut stages: Vec<StagePlan> = Vec::with_capacity(env.stages.len());
    for (si, members) in order.iter().enumerate() {
        let mut services = Vec::with_capacity(members.len());
        for &i in members.iter().filter(|&&i| chosen(i)) {
            let s = &env.services[i];
            let build = match &keyed[i] {
                None => BuildPlan::none(s.image.as_deref().map(|w| pinned_image(w, &keyed_env.pins))),
                Some(Err(why)) => {
                    summary.build += 1;
                    BuildPlan {
                        action: BuildAction::Build,
                        image: None,
                        key: None,
                        shared_with: None,
                        reason: Some(why.clone()),
                        changes: vec![],
                        cache_from: vec![],
                        source: None,
                    }
                }
                Some(Ok(k)) => {
                    let builder = builder_of[&k.image];
                    let (action, shared_with, reason) = if builder != i {
                        (BuildAction::Shared, Some(env.services[builder].name.clone()), None)
                    } else {
                        match state_of.get(&k.image) {
                            Some(CacheState::Present { .. }) => (BuildAction::Cached, None, None),
                            Some(CacheState::Absent) => match input.live.building(&k.key) {
                                Some(who) => (
                                    BuildAction::Build,
                                    None,
                                    Some(format!(
                                        "not in the registry; being built by {who}, whose image this run will wait for"
                                    )),
                                ),
                                None => (BuildAction::Build, None, Some("not in the registry".to_string())),
                            },
                            _ => (BuildAction::Build, None, Some("cache state unknown".to_string())),
                        }
                    };
                    match action {
                        BuildAction::Build => summary.build += 1,
                        BuildAction::Cached => summary.cached += 1,
                        BuildAction::Shared => summary.shared += 1,
                        BuildAction::None => {}
                    }
                    BuildPlan {
                        action,
                        image: Some(k.image.to_string()),
                        key: Some(k.key.clone()),
                        shared_with,
                        reason,
                        changes: vec![],
                        cache_from: vec![],
                        source: Some(BuildSource {
                            context: display_path(env.base_dir(), &k.context.root),
                            dockerfile: display_path(env.base_dir(), &k.dockerfile),
                            target: k.target.clone(),
                            platform: k.platform.clone(),
                            args: k.args.clone(),
                            files: k.context.files.len(),
                            images: k.images.clone(),
                            secrets: k.secrets.clone(),
                        }),
                    }
                }
            };
            let image = match (&build.image, &s.build) {
                (Some(image), _) => image.clone(),
                // Key unknown (offline): the repository without a tag.
                (None, Some(b)) => format!("{}/{}", env.registry.host, repository_of(env, b)),
                (None, None) => String::new(),
            };
            let spec = deploy_spec(env, s, &image, input.secrets)?;
            let objects = input
                .live
                .objects(&s.name, Some(&spec), build.key.as_deref())
                .map_err(|e| live_objects_error(&s.name, e))?;
            let deploy = match live_by_name.get(s.name.as_str()) {
                None => DeployPlan { action: DeployAction::Create, changes: vec![], objects },
                Some(l) => {
                    let changes = diff(&l.spec, &spec);
                    let action = if l.spec.needs_replace(&spec) {
                        DeployAction::Replace
                    } else if !changes.is_empty() || !objects.is_empty() {
                        // Objects changed behind the target's back (drift) are brought back too.
                        DeployAction::Update
                    } else {
                        DeployAction::Unchanged
                    };
                    DeployPlan { action, changes, objects }
                }
            };
            count(&mut summary, deploy.action);
            let deps = input.graph.dependencies(i).iter().map(|&d| env.services[d].name.clone()).collect();
            services.push(ServicePlan {
                name: s.name.clone(),
                kind: s.kind.as_str().to_string(),
                depends_on: deps,
                build,
                deploy,
                spec: Some(spec),
            });
        }
        stages.push(StagePlan { name: env.stages[si].clone(), services });
    }

    // Services that run but are gone from the definitions: delete, in the stage they were deployed in.
    for l in &live {
        if env.service(&l.name).is_some() {
            continue;
        }
        if input.only.is_some_and(|o| !o.names.contains(&l.name)) {
            continue;
        }
        let stage = l.spec.stage.clone();
        let kind = l.spec.kind.as_str().to_string();
        let sp = ServicePlan {
            name: l.name.clone(),
            kind,
            depends_on: vec![],
            build: BuildPlan::none(Some(l.spec.image.clone())),
            deploy: DeployPlan {
                action: DeployAction::Delete,
                changes: vec![],
                objects: input.live.objects(&l.name, None, None).map_err(|e| live_objects_error(&l.name, e))?,
            },
            spec: None,
        };
        summary.delete += 1;
        match stages.iter_mut().find(|s| s.name == stage) {
            Some(st) => st.services.push(sp),
            None => stages.push(StagePlan { name: stage, services: vec![sp] }),
        }
    }

    explain_builds(env, &mut stages, &keyed_env, &live_by_name, input.registry);
    if input.pinning.mode != LockMode::Offline {
        warnings.extend(verify_pins(env, &stages, &keyed_env, input)?);
    }

    let digest = {
        let desired: Vec<(&str, &Option<String>, Option<Json>)> = stages
            .iter()
            .flat_map(|st| st.services.iter())
            .map(|s| (s.name.as_str(), &s.build.key, s.spec.as_ref().map(DeploySpec::to_json)))
            .collect();
        let bytes = serde_json::to_vec(&desired).unwrap_or_default();
        blake3::hash(&bytes).to_hex()[..32].to_string()
    };
    let selection = input.only.map(|o| Selection {
        asked: o.names.clone(),
        no_deps: o.no_deps,
        services: stages.iter().flat_map(|st| st.services.iter().map(|s| s.name.clone())).collect(),
    });
    let plan = Plan {
        selection,
        format_version: PLAN_FORMAT_VERSION,
        project: env.project.clone(),
        environment: env.name.clone(),
        target: env.target.clone(),
        registry: env.registry.to_string(),
        parallelism: env.parallelism,
        stages,
        summary,
        warnings,
        digest,
        origin: None,
    };
    Ok((plan, keyed_env))
}

/// Say why each image to build is not in the registry: compare its inputs with the record of the image
/// deployed now, else of the newest image built for the service, read from the mirror.
fn explain_builds(
    env: &Environment,
    stages: &mut [StagePlan],
    keyed_env: &KeyedEnvironment,
    live: &BTreeMap<&str, &LiveService>,
    registry: &dyn ImageCache,
) {
    struct Ask<'a> {
        stage: usize,
        index: usize,
        keyed: &'a KeyedBuild,
        /// The record of the deployed image (while it is the one compared with).
        deployed: Option<ImageRef>,
        /// The deployed image (a cache source).
        deployed_image: Option<String>,
    }
    let mut asks = Vec::new();
    for (si, st) in stages.iter().enumerate() {
        for (k, sp) in st.services.iter().enumerate() {
            if sp.build.action != BuildAction::Build {
                continue;
            }
            let Some(i) = env.services.iter().position(|s| s.name == sp.name) else { continue };
            let Some(Ok(keyed)) = &keyed_env.keyed[i] else { continue };
            let deployed = live
                .get(sp.name.as_str())
                .and_then(|l| record::record_of_image(&l.spec.image))
                .filter(|r| r.tag != record::record_tag(&keyed.key));
            let deployed_image = deployed
                .as_ref()
                .map(|r| ImageRef { tag: r.tag.trim_end_matches(".inputs").to_string(), ..r.clone() }.to_string());
            asks.push(Ask { stage: si, index: k, keyed, deployed, deployed_image });
        }
    }
    if asks.is_empty() {
        return;
    }
    let latest = |a: &Ask<'_>, service: &str| ImageRef {
        tag: record::latest_tag(&env.project, service),
        ..a.keyed.image.clone()
    };
    let first: Vec<ImageRef> = asks
        .iter()
        .map(|a| a.deployed.clone().unwrap_or_else(|| latest(a, &stages[a.stage].services[a.index].name)))
        .collect();
    let mut found = registry.records(&first);
    // The newest image built for the service, besides the deployed one: a cache source, and the record
    // to compare with when the deployed image has none.
    let with_deployed: Vec<usize> = (0..asks.len()).filter(|&n| asks[n].deployed.is_some()).collect();
    let latest_refs: Vec<ImageRef> =
        with_deployed.iter().map(|&n| latest(&asks[n], &stages[asks[n].stage].services[asks[n].index].name)).collect();
    let mut newest: Vec<Option<Result<Option<Vec<u8>>, String>>> = vec![None; asks.len()];
    for (n, r) in with_deployed.iter().zip(registry.records(&latest_refs)) {
        newest[*n] = Some(r);
    }
    for n in 0..asks.len() {
        if asks[n].deployed.is_some() && matches!(found[n], Ok(None)) {
            found[n] = newest[n].take().unwrap_or(Ok(None));
            asks[n].deployed = None;
        }
    }
    let parse = |r: &Result<Option<Vec<u8>>, String>| match r {
        Ok(Some(bytes)) => KeyRecord::from_json(bytes).ok(),
        _ => None,
    };
    for (n, a) in asks.iter().enumerate() {
        let sp = &mut stages[a.stage].services[a.index];
        let before = parse(&found[n]);
        // Cache sources: the deployed image, then the newest built for the service.
        let image_of = |key: &str| ImageRef { tag: key.to_string(), ..a.keyed.image.clone() }.to_string();
        let mut cache_from: Vec<String> = a.deployed_image.iter().cloned().collect();
        let newest_key = match newest[n].as_ref().map(parse) {
            Some(r) => r.map(|r| r.key),
            None if a.deployed.is_none() => before.as_ref().map(|r| r.key.clone()),
            None => None,
        };
        if let Some(k) = newest_key {
            cache_from.push(image_of(&k));
        }
        cache_from.dedup();
        cache_from.retain(|i| *i != a.keyed.image.to_string());
        sp.build.cache_from = cache_from;

        let Some(before) = before else { continue };
        if before.key == a.keyed.key {
            continue;
        }
        let now = KeyRecord::of(a.keyed);
        let changes = record::explain(&before, &now);
        if changes.is_empty() {
            continue;
        }
        let what = if a.deployed.is_some() { "the deployed image" } else { "the last image built for it" };
        let building = sp.build.reason.as_deref().and_then(|r| r.split_once("; being built by ")).map(|(_, w)| w);
        let building = building.map(|w| format!("; being built by {w}")).unwrap_or_default();
        sp.build.reason = Some(format!("changed since {what}, {}{building}", crate::render::short_key(&before.key)));
        sp.build.changes = changes;
    }
}

/// Pinned images that will be pulled (by builds to run, and by services to create or update) must still be
/// in their registries.
fn verify_pins(
    env: &Environment,
    stages: &[StagePlan],
    keyed_env: &KeyedEnvironment,
    input: &PlanInput<'_>,
) -> Result<Vec<String>> {
    let mut pulled: BTreeSet<&str> = BTreeSet::new();
    for sp in stages.iter().flat_map(|st| &st.services) {
        let built = sp.build.action == BuildAction::Build;
        let deployed = matches!(sp.deploy.action, DeployAction::Create | DeployAction::Update | DeployAction::Replace)
            && env.service(&sp.name).is_some_and(|s| s.build.is_none());
        if built || deployed {
            pulled.insert(sp.name.as_str());
        }
    }
    let wanted: Vec<&Wanted> = keyed_env.wanted.iter().filter(|w| pulled.contains(w.service.as_str())).collect();
    if wanted.is_empty() {
        return Ok(vec![]);
    }
    pins::verify(&keyed_env.pins, &wanted, input.registry, input.pinning.lock_name, input.sources)
}

fn count(s: &mut Summary, a: DeployAction) {
    match a {
        DeployAction::Create => s.create += 1,
        DeployAction::Update => s.update += 1,
        DeployAction::Replace => s.replace += 1,
        DeployAction::Delete => s.delete += 1,
        DeployAction::Unchanged => s.unchanged += 1,
    }
}

/// Services per stage, in the order they can run: dependencies first, then by name.
pub fn execution_order(env: &Environment, graph: &Graph) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); env.stages.len()];
    for (si, list) in out.iter_mut().enumerate() {
        let members: BTreeSet<usize> =
            (0..env.services.len()).filter(|&i| env.stage_index(&env.services[i].stage) == Some(si)).collect();
        // Kahn's algorithm over in-stage dependencies; services are sorted by name, so taking the smallest
        // ready index takes the smallest name.
        let mut waiting_on: HashMap<usize, usize> = HashMap::new();
        let mut dependents: HashMap<usize, Vec<usize>> = HashMap::new();
        for &i in &members {
            for d in graph.dependencies(i).into_iter().filter(|d| members.contains(d)) {
                *waiting_on.entry(i).or_default() += 1;
                dependents.entry(d).or_default().push(i);
            }
        }
        let mut ready: BTreeSet<usize> = members.iter().copied().filter(|i| !waiting_on.contains_key(i)).collect();
        while let Some(i) = ready.pop_first() {
            list.push(i);
            for &j in dependents.get(&i).into_iter().flatten() {
                if let Some(n) = waiting_on.get_mut(&j) {
                    *n -= 1;
                    if *n == 0 {
                        ready.insert(j);
                    }
                }
            }
        }
        // The graph has no cycles (checked), so every member was placed; guard anyway.
        if list.len() < members.len() {
            let placed: BTreeSet<usize> = list.iter().copied().collect();
            list.extend(members.difference(&placed));
        }
    }
    out
}

/// The deploy spec of a service: what the target must run. Compared with the live spec field by field.
pub fn deploy_spec(env: &Environment, s: &Service, image: &str, secrets: &Secrets) -> Result<DeploySpec> {
    let mut refs = BTreeMap::new();
    for (var, name) in &s.secrets {
        let fp = secrets.fingerprint(&env.project, &env.name, name).ok_or_else(|| {
            Diag::new("pipeline::secrets::missing", format!("no value for secret `{name}`"))
                .help(format!("set `{}` or pass `--secrets FILE`", crate::secrets::env_var(name)))
        })?;
        refs.insert(var.clone(), SecretRef { secret: name.clone(), fingerprint: Some(fp) });
    }
    Ok(DeploySpec {
        kind: s.kind,
        stage: s.stage.clone(),
        image: image.to_string(),
        command: s.command.clone(),
        args: s.args.clone(),
        env: s.env.clone(),
        secrets: refs,
        ports: s.ports.clone(),
        endpoints: s.endpoints.clone(),
        replicas: s.replicas,
        resources: s.resources.clone(),
        healthcheck: s.healthcheck.clone(),
        stop_grace_period: s.stop_grace_period.clone(),
        volume: s.volume.clone(),
        schedule: s.schedule.clone(),
        depends_on: s.depends_on.clone(),
    })
}

/// A target that cannot say which of a service's objects would change: the plan cannot be trusted.
fn live_objects_error(service: &str, e: String) -> Diag {
    Diag::new("pipeline::plan::live_objects", format!("cannot compare the objects of `{service}` with what runs: {e}"))
        .help("fix the service's definition; `pipeline render` shows the objects it makes")
}

/// Field-level differences between a live spec and a desired one.
pub fn diff(before: &DeploySpec, after: &DeploySpec) -> Vec<Change> {
    let mut out = Vec::new();
    walk_diff("", &before.to_json(), &after.to_json(), &mut out);
    out
}

fn walk_diff(path: &str, before: &Json, after: &Json, out: &mut Vec<Change>) {
    if before == after {
        return;
    }
    if path.starts_with("secrets.") {
        out.push(Change {
            path: path.to_string(),
            before: Some(json!("(sensitive)")),
            after: Some(json!("(sensitive)")),
            sensitive: true,
        });
        return;
    }
    match (before, after) {
        (Json::Object(a), Json::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{}", json_key(k)) };
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => walk_diff(&p, x, y, out),
                    (x, y) => out.push(sensitive_or(&p, x.cloned(), y.cloned())),
                }
            }
        }
        (Json::Array(a), Json::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let p = format!("{path}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => walk_diff(&p, x, y, out),
                    (x, y) => out.push(Change { path: p, before: x.cloned(), after: y.cloned(), sensitive: false }),
                }
            }
        }
        _ => out.push(Change {
            path: path.to_string(),
            before: Some(before.clone()),
            after: Some(after.clone()),
            sensitive: false,
        }),
    }
}

fn sensitive_or(path: &str, before: Option<Json>, after: Option<Json>) -> Change {
    if path.starts_with("secrets.") {
        let s = |v: &Option<Json>| v.as_ref().map(|_| json!("(sensitive)"));
        return Change { path: path.to_string(), before: s(&before), after: s(&after), sensitive: true };
    }
    Change { path: path.to_string(), before, after, sensitive: false }
}

fn json_key(k: &str) -> String {
    if k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') && !k.is_empty() {
        k.to_string()
    } else {
        format!("{k:?}")
    }
}

/// Secret names a set of services needs.
pub fn secret_names(env: &Environment) -> BTreeSet<String> {
    env.services
        .iter()
        .flat_map(|s| s.secrets.values().chain(s.build.iter().flat_map(|b| b.secrets.values())).cloned())
        .collect()
}
