//! Building and pushing images with the Docker engine.
//!
//! The engine receives a tar of exactly the files the planner hashed (one file list, so what is built is
//! what was keyed), checked against their hashes as they are read, plus the Dockerfile; the build gets
//! the target, platform and declared build args, and a `pipeline.key` label. It runs on the engine's
//! BuildKit ([`crate::buildkit`]: build secrets and registry credentials through the session, the
//! service's deployed and newest images as cache sources, inline cache metadata in every image), or on
//! the classic builder where the engine has no BuildKit. The image is tagged
//! `<registry>/<repository>:<key>`, pushed with the credentials of `~/.docker/config.json`, and the
//! digest the engine pushed is confirmed in the registry. Each build's log goes to
//! `<log dir>/<service>.log`.

use crate::buildkit::{self, BuilderKind};
use crate::claim::{self, Claimed};
use crate::docker::reason;
use crate::registry::RegistryClient;
use crate::schedule::{BuildSlot, Builder, TaskError};
use bollard::Docker;
use bollard::query_parameters::{BuildImageOptions, BuilderVersion, PushImageOptions};
use futures_util::StreamExt as _;
use pipeline_planner::cache::{CacheState, ImageCache};
use pipeline_planner::context::HashedKind;
use pipeline_planner::key::{self, KeyInput};
use pipeline_planner::plan::KeyedBuild;
use pipeline_planner::record::{self, KeyRecord};
use pipeline_planner::secrets::SecretValue;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where the Dockerfile goes in the tar when it lies outside the context (or is ignored by it).
const OUTSIDE_DOCKERFILE: &str = ".pipeline/Dockerfile";

/// Progress of a running task, for the terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The latest line of build number `.0`.
    Build(usize, String),
    /// The latest step of the deploy of service number `.0`.
    Deploy(usize, String),
}

pub type Notify = Arc<dyn Fn(Note) + Send + Sync>;

/// One image to build: the service whose name its log takes, and what the planner keyed.
#[derive(Debug, Clone)]
pub struct ImageBuild {
    pub service: String,
    pub keyed: KeyedBuild,
    /// Build secret values by mount id (BuildKit only; `Debug` never shows a value).
    pub secrets: BTreeMap<String, SecretValue>,
    /// Images whose layers BuildKit may reuse.
    pub cache_from: Vec<String>,
}

/// Builds with the engine and pushes to the mirror registry.
pub struct DockerBuilder {
    pub docker: Docker,
    /// Where builds claim their keys, so that runs meeting there build each key once.
    pub claims: claim::Claims,
    pub builds: Vec<ImageBuild>,
    /// `.pipeline/logs/<run>`.
    pub log_dir: PathBuf,
    pub registry: Arc<RegistryClient>,
    /// Labels every image gets besides `pipeline.key` (project, for one).
    pub labels: HashMap<String, String>,
    /// The project, which names the service's record of its newest build.
    pub project: String,
    pub notify: Notify,
    /// BuildKit, or the classic builder (and why).
    pub kind: BuilderKind,
    /// Builds another run did while this one waited: build number -> that run.
    pub elsewhere: std::sync::Mutex<BTreeMap<usize, String>>,
}

/// Why a build failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BuildError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Context(#[from] ContextError),
    #[error("cannot write the build log `{}`: {source}", path.display())]
    #[diagnostic(
        code(pipeline::build::log),
        help("the log goes to `.pipeline/logs/` beside the definitions: make it writable")
    )]
    Log { path: PathBuf, source: std::io::Error },
    #[error("{message}")]
    #[diagnostic(code(pipeline::build::failed), help("the whole build log: {}", log.display()))]
    Failed { message: String, log: PathBuf },
}

/// A build context that is not what was planned, or cannot be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ContextError {
    #[error("`{}` changed since it was planned", .0.display())]
    #[diagnostic(code(pipeline::build::changed), help("run `pipeline apply` again to plan with it"))]
    Changed(PathBuf),
    #[error("cannot read `{}` of the build context: {source}", path.display())]
    #[diagnostic(code(pipeline::build::context))]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot pack the build context: {0}")]
    #[diagnostic(code(pipeline::build::context))]
    Pack(std::io::Error),
}

impl Builder for DockerBuilder {
    async fn build(&self, n: usize, slot: BuildSlot) -> Result<(), TaskError> {
        self.build_one(n, slot).await.map_err(|e| TaskError::from_diagnostic(&e))
    }
}

impl DockerBuilder {
    async fn build_one(&self, n: usize, slot: BuildSlot) -> Result<(), BuildError> {
        let Some(b) = self.builds.get(n) else {
            return Err(BuildError::Failed { message: format!("no build number {n}"), log: self.log_dir.clone() });
        };
        let mut log = Log::open(&self.log_dir, &b.service)?;
        let image = b.keyed.image.to_string();
        // One build per key across runs: claim it, or wait for the run that has.
        let claim = loop {
            match self.claims.claim(&b.keyed.key, &crate::target::holder()).await {
                Ok(Claimed::Mine(c)) => {
                    if let Some(w) = &c.warning {
                        log.line(&format!("warning: {w}"));
                    }
                    break Some(c);
                }
                Ok(Claimed::Theirs(h)) => {
                    if self.in_registry(&b.keyed.image).await {
                        log.line(&format!("{image} was built by {}; using it", h.holder));
                        if let Ok(mut e) = self.elsewhere.lock() {
                            e.insert(n, h.holder);
                        }
                        return Ok(());
                    }
                    (self.notify)(Note::Build(n, format!("waiting for {h}, which is building this key")));
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(why) => {
                    log.line(&format!("warning: {why}; building without a claim"));
                    break None;
                }
            }
        };
        // The run that held the claim may have pushed the image just before this one took it.
        if claim.is_some() && self.in_registry(&b.keyed.image).await {
            log.line(&format!("{image} is in the registry already (built by another run)"));
            if let Ok(mut e) = self.elsewhere.lock() {
                e.insert(n, "another run".into());
            }
            if let Some(c) = claim {
                c.release().await;
            }
            return Ok(());
        }
        let result = self.build_claimed(n, b, &mut log, slot).await;
        if let Some(c) = claim {
            c.release().await;
        }
        result
    }
}

impl DockerBuilder {
    /// Whether the registry has `image` now.
    async fn in_registry(&self, image: &pipeline_planner::cache::ImageRef) -> bool {
        let registry = Arc::clone(&self.registry);
        let wanted = image.clone();
        let state = tokio::task::spawn_blocking(move || registry.lookup(std::slice::from_ref(&wanted))).await;
        matches!(state.as_deref(), Ok([CacheState::Present { .. }]))
    }

    /// Build, push and record a claimed key.
    async fn build_claimed(&self, n: usize, b: &ImageBuild, log: &mut Log, slot: BuildSlot) -> Result<(), BuildError> {
        log.line(&format!("building {} for service `{}`", b.keyed.image, b.service));
        let keyed = b.keyed.clone();
        let failed = |message: String, log: &Log| BuildError::Failed { message, log: log.path.clone() };
        let packed = match tokio::task::spawn_blocking(move || pack_context(&keyed)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                log.line(&format!("error: {e}"));
                return Err(e.into());
            }
            Err(e) => return Err(failed(format!("packing the build context stopped: {e}"), log)),
        };
        self.build_and_push(n, b, log, packed, slot).await.map_err(|m| failed(m, log))
    }

    /// Build a packed context, push the image and confirm it in the registry.
    async fn build_and_push(
        &self,
        n: usize,
        b: &ImageBuild,
        log: &mut Log,
        packed: Packed,
        mut slot: BuildSlot,
    ) -> Result<(), String> {
        let image = b.keyed.image.to_string();
        for (reference, digest) in &b.keyed.images {
            log.line(&format!("using {reference} pinned to {digest}"));
        }
        log.line(&format!("sending {} files ({} bytes) to the engine", b.keyed.context.files.len(), packed.tar.len()));

        let mut labels = self.labels.clone();
        labels.insert("pipeline.key".into(), b.keyed.key.clone());
        // The mirror's credentials also serve a FROM on the mirror.
        let creds =
            crate::docker::credentials(&self.registry, &b.keyed.image.registry).await.map_err(|e| e.to_string())?;
        match &self.kind {
            BuilderKind::BuildKit { endpoint, api_version, .. } => {
                self.build_with_buildkit(n, b, log, endpoint, api_version, packed, labels).await?;
            }
            BuilderKind::Classic { reason } => {
                log.line(&format!("building with the engine's classic builder ({reason})"));
                if !b.secrets.is_empty() {
                    return Err(log.failure(&format!(
                        "the build of {image} needs build secrets, which only BuildKit gives ({reason})"
                    )));
                }
                self.build_classic(n, b, log, packed, labels, creds.clone()).await?;
            }
        }

        // Built: the push needs no build slot (the claim is held until the image is in the registry).
        slot.release();
        // Push with the registry's credentials, then confirm the digest in the registry itself.
        (self.notify)(Note::Build(n, format!("pushing to {}", b.keyed.image.registry)));
        let repo = format!("{}/{}", b.keyed.image.registry, b.keyed.image.repository);
        let options = PushImageOptions { tag: Some(b.keyed.key.clone()), platform: None };
        let mut stream = self.docker.push_image(&repo, Some(options), creds);
        let mut pushed_digest = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(s) = &info.status {
                        if info.progress_detail.as_ref().is_none_or(|p| p.total.is_none()) {
                            log.line(s);
                        }
                        if let Some(d) = digest_in(s) {
                            pushed_digest = Some(d);
                        }
                    }
                    if let Some(d) = info.error_detail.and_then(|d| d.message) {
                        return Err(log.failure(&format!("pushing {image} failed: {d}")));
                    }
                }
                Err(e) => return Err(log.failure(&format!("pushing {image} failed: {}", reason(&e)))),
            }
        }
        let registry = Arc::clone(&self.registry);
        let wanted = b.keyed.image.clone();
        let state = tokio::task::spawn_blocking(move || registry.lookup(std::slice::from_ref(&wanted)))
            .await
            .map_err(|e| format!("checking the push stopped: {e}"))?;
        match (state.first(), pushed_digest) {
            (Some(CacheState::Present { digest: Some(found) }), Some(pushed)) if *found != pushed => {
                Err(log.failure(&format!("the registry holds {found} for {image}, but the engine pushed {pushed}")))
            }
            (Some(CacheState::Present { digest }), pushed) => {
                let d = digest.clone().or(pushed).unwrap_or_else(|| "(no digest reported)".into());
                log.line(&format!("pushed {image} ({d})"));
                self.push_record(b, log).await;
                Ok(())
            }
            (Some(CacheState::Absent), _) => {
                Err(log.failure(&format!("the push of {image} ended, but the registry does not have it")))
            }
            (Some(CacheState::Unknown(why)), _) => {
                Err(log.failure(&format!("cannot confirm the push of {image}: {why}")))
            }
            (None, _) => Err(log.failure(&format!("cannot confirm the push of {image}"))),
        }
    }
}

impl DockerBuilder {
    /// Build with the engine's BuildKit, with a session that gives the registry credentials and the
    /// build's secrets; steps go to the log and the progress line.
    #[allow(clippy::too_many_arguments)]
    async fn build_with_buildkit(
        &self,
        n: usize,
        b: &ImageBuild,
        log: &mut Log,
        endpoint: &buildkit::Endpoint,
        api_version: &str,
        packed: Packed,
        labels: HashMap<String, String>,
    ) -> Result<(), String> {
        let image = b.keyed.image.to_string();
        // Credentials for every registry the build reads from: the mirror and each image's registry.
        let mut hosts: BTreeSet<String> = BTreeSet::from([b.keyed.image.registry.clone()]);
        for u in &b.keyed.uses {
            hosts.insert(u.reference.domain.clone());
        }
        let mut credentials = buildkit::Credentials::default();
        for host in hosts {
            if let Some(c) = crate::docker::credentials(&self.registry, &host).await.map_err(|e| e.to_string())?
                && let (Some(user), Some(password)) = (c.username, c.password)
            {
                credentials.by_host.insert(host, (user, password));
            }
        }
        let session = buildkit::open_session(endpoint, api_version, &b.service, credentials, b.secrets.clone())
            .await
            .map_err(|e| log.failure(&format!("the build of {image} could not start: {e}")))?;
        let mut args: BTreeMap<String, String> = b.keyed.args.clone();
        // Cache metadata in the image itself, so any engine can reuse its layers from the mirror.
        args.insert("BUILDKIT_INLINE_CACHE".into(), "1".into());
        for c in &b.cache_from {
            log.line(&format!("may reuse layers of {c}"));
        }
        let request = buildkit::BuildRequest {
            tag: image.clone(),
            dockerfile: packed.dockerfile_path,
            target: b.keyed.target.clone(),
            platform: b.keyed.platform.clone(),
            args,
            labels: labels.into_iter().collect(),
            cache_from: b.cache_from.clone(),
            session: session.id.clone(),
        };
        let mut stream = std::pin::pin!(
            buildkit::build(endpoint, api_version, &request, packed.tar)
                .await
                .map_err(|e| log.failure(&format!("the build of {image} could not start: {e}")))?
        );
        let redact = |line: &str| {
            b.secrets
                .values()
                .filter(|v| !v.expose().is_empty())
                .fold(line.to_string(), |l, v| l.replace(v.expose(), "****"))
        };
        let mut progress = buildkit::Progress::default();
        let mut built = None;
        let mut failed = None;
        while let Some(events) = stream.next().await {
            let events = match events {
                Ok(e) => e,
                Err(why) => {
                    failed = Some(why.to_string());
                    break;
                }
            };
            for e in &events {
                for l in progress.take(e) {
                    log.line(&redact(&l));
                }
                match e {
                    buildkit::Event::Built(id) => built = Some(id.clone()),
                    buildkit::Event::Failed(why) => failed = Some(redact(why)),
                    _ => {}
                }
            }
            if let Some(line) = progress.line() {
                (self.notify)(Note::Build(n, line));
            }
        }
        drop(session);
        if let Some(why) = failed {
            let mut message = format!("the build of {image} failed");
            if let Some((step, tail)) = progress.failed_step() {
                message.push_str(&format!(" at `{}`", buildkit::step_command(&step.name)));
                if let Some(line) = dockerfile_line(&b.keyed, buildkit::step_command(&step.name)) {
                    message.push_str(&format!(" ({line})"));
                }
                message.push_str(&format!(": {}", step.error.as_deref().unwrap_or(&why)));
                if !tail.is_empty() {
                    message.push_str("\nits last output:");
                    for l in tail.iter().rev().take(8).rev() {
                        message.push_str("\n  ");
                        message.push_str(&redact(l));
                    }
                }
                message.push_str(&format!("\nfull log: {}", log.path.display()));
                log.line(&message);
                return Err(message);
            }
            message.push_str(&format!(": {why}"));
            return Err(log.failure(&message));
        }
        let (_, total, cached) = progress.counts();
        match built {
            Some(id) => {
                log.line(&format!("built {image} ({id}): {total} steps, {cached} from cache"));
                Ok(())
            }
            None => Err(log.failure(&format!("the engine ended the build of {image} without an image"))),
        }
    }

    /// Build with the classic builder (an engine without BuildKit).
    async fn build_classic(
        &self,
        n: usize,
        b: &ImageBuild,
        log: &mut Log,
        packed: Packed,
        labels: HashMap<String, String>,
        creds: Option<bollard::auth::DockerCredentials>,
    ) -> Result<(), String> {
        let image = b.keyed.image.to_string();
        let options = BuildImageOptions {
            dockerfile: packed.dockerfile_path,
            t: Some(image.clone()),
            target: b.keyed.target.clone().unwrap_or_default(),
            platform: b.keyed.platform.clone().unwrap_or_default(),
            buildargs: Some(b.keyed.args.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            labels: Some(labels),
            rm: true,
            forcerm: true,
            version: BuilderVersion::BuilderV1,
            ..Default::default()
        };
        let build_creds = creds.map(|c| HashMap::from([(b.keyed.image.registry.clone(), c)]));
        let mut stream = self.docker.build_image(options, build_creds, Some(bollard::body_full(packed.tar.into())));
        let mut built = false;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = &info.stream {
                        for l in text.lines().filter(|l| !l.trim().is_empty()) {
                            log.line(l);
                            (self.notify)(Note::Build(n, l.trim().to_string()));
                        }
                    }
                    if let Some(d) = info.error_detail.and_then(|d| d.message) {
                        log.line(&d);
                        return Err(log.failure(&format!("the build of {image} failed: {d}")));
                    }
                    if info.aux.is_some() {
                        built = true;
                    }
                }
                Err(e) => {
                    let why = reason(&e);
                    log.line(&why);
                    return Err(log.failure(&format!("the build of {image} failed: {why}")));
                }
            }
        }
        if !built {
            return Err(log.failure(&format!("the engine ended the build of {image} without an image")));
        }
        Ok(())
    }

    /// Push the record of the key's inputs beside the image (tag `<key>.inputs`, and the service's newest
    /// under its latest tag), so a later plan on any machine can say what changed. A failure is logged,
    /// not fatal: the image is pushed, only the explanation of the next rebuild is lost.
    async fn push_record(&self, b: &ImageBuild, log: &mut Log) {
        let json = KeyRecord::of(&b.keyed).to_json();
        let tags = vec![record::record_tag(&b.keyed.key), record::latest_tag(&self.project, &b.service)];
        let registry = Arc::clone(&self.registry);
        let at = b.keyed.image.clone();
        let pushed =
            tokio::task::spawn_blocking(move || registry.push_record(&at.registry, &at.repository, &tags, &json))
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| r.map_err(|e| e.to_string()));
        match pushed {
            Ok(()) => {
                log.line(&format!("pushed the record of the key's inputs ({})", record::record_tag(&b.keyed.key)))
            }
            Err(why) => log.line(&format!("warning: could not push the record of the key's inputs: {why}")),
        }
    }
}

/// `Dockerfile:3` for the instruction a failed step ran (BuildKit names the step by its instruction).
fn dockerfile_line(b: &KeyedBuild, command: &str) -> Option<String> {
    let text = std::fs::read_to_string(&b.dockerfile).ok()?;
    let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let wanted = words(command);
    let name = b.dockerfile.file_name()?.to_string_lossy().into_owned();
    text.lines().enumerate().find_map(|(i, l)| {
        // An instruction continued on the next lines: its first line starts the step's name.
        let continued = l.trim_end().ends_with('\\');
        let l = words(l.trim_end().trim_end_matches('\\'));
        (!l.is_empty() && (l == wanted || continued && wanted.starts_with(&l))).then(|| format!("{name}:{}", i + 1))
    })
}

/// `sha256:…` in a push status line (`<tag>: digest: sha256:… size: 528`).
fn digest_in(status: &str) -> Option<String> {
    let at = status.find("digest: sha256:")? + "digest: ".len();
    let d: String = status[at..].chars().take_while(|c| !c.is_whitespace()).collect();
    (d.len() == "sha256:".len() + 64).then_some(d)
}

/// Where the Dockerfile is in the tar: its own place in the context, unless it lies outside the context,
/// is ignored by it, or was rewritten to name pinned digests (then `.pipeline/Dockerfile`).
fn tar_dockerfile_path(b: &KeyedBuild, rewritten: bool) -> String {
    if rewritten {
        return OUTSIDE_DOCKERFILE.into();
    }
    match b.dockerfile.strip_prefix(&b.context.root) {
        Ok(rel) => {
            let rel = rel.to_string_lossy().replace('\\', "/");
            if b.context.files.iter().any(|f| f.path == rel) { rel } else { OUTSIDE_DOCKERFILE.into() }
        }
        Err(_) => OUTSIDE_DOCKERFILE.into(),
    }
}

/// The build context as the engine gets it.
pub struct Packed {
    pub tar: Vec<u8>,
    /// Where the Dockerfile the engine reads is in the tar.
    pub dockerfile_path: String,
}

/// The build context tar (see [`pack_context`]).
pub fn context_tar(b: &KeyedBuild) -> Result<Vec<u8>, ContextError> {
    pack_context(b).map(|p| p.tar)
}

/// The build context as the engine gets it: the keyed files (each checked against its hash as it is
/// read) and the Dockerfile (checked against the key), rewritten so every image it uses is named by the
/// digest it was keyed with. Modes are 0644/0755, owners root, times zero, so the same files give the
/// same tar.
pub fn pack_context(b: &KeyedBuild) -> Result<Packed, ContextError> {
    let mut tar = tar::Builder::new(Vec::new());
    let root = &b.context.root;
    let changed = |path: &str| ContextError::Changed(root.join(path));
    for f in &b.context.files {
        let full = root.join(&f.path);
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match &f.kind {
            HashedKind::File { executable, size, blake3 } => {
                let bytes = read_exact_size(&full, *size).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::UnexpectedEof => changed(&f.path),
                    _ => ContextError::Read { path: full.clone(), source: e },
                })?;
                if blake3::hash(&bytes).as_bytes() != blake3 {
                    return Err(changed(&f.path));
                }
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(if *executable { 0o755 } else { 0o644 });
                h.set_size(bytes.len() as u64);
                tar.append_data(&mut h, &f.path, bytes.as_slice()).map_err(ContextError::Pack)?;
            }
            HashedKind::Symlink { target } => {
                let now = std::fs::read_link(&full).map_err(|_| changed(&f.path))?;
                if now.to_string_lossy() != *target {
                    return Err(changed(&f.path));
                }
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                tar.append_link(&mut h, &f.path, target).map_err(ContextError::Pack)?;
            }
        }
    }
    let dockerfile = std::fs::read(&b.dockerfile).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ContextError::Changed(b.dockerfile.clone()),
        _ => ContextError::Read { path: b.dockerfile.clone(), source: e },
    })?;
    let now = key::build_key(&KeyInput {
        files: &b.context.files,
        dockerfile: &dockerfile,
        target: b.target.as_deref(),
        platform: b.platform.as_deref(),
        args: &b.args,
        images: &b.images,
        secrets: &b.secrets,
    });
    if now != b.key {
        return Err(ContextError::Changed(b.dockerfile.clone()));
    }
    let text = String::from_utf8_lossy(&dockerfile);
    let pinned = b.pinned_dockerfile(&text);
    let rewritten = pinned != text;
    let path = tar_dockerfile_path(b, rewritten);
    if path == OUTSIDE_DOCKERFILE {
        let body: &[u8] = if rewritten { pinned.as_bytes() } else { &dockerfile };
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(0o644);
        h.set_size(body.len() as u64);
        tar.append_data(&mut h, OUTSIDE_DOCKERFILE, body).map_err(ContextError::Pack)?;
    }
    let tar = tar.into_inner().map_err(ContextError::Pack)?;
    Ok(Packed { tar, dockerfile_path: path })
}

/// Read a file that must have `size` bytes (it was hashed at that size).
fn read_exact_size(path: &Path, size: u64) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    f.read_to_end(&mut bytes)?;
    if bytes.len() as u64 != size {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "size changed"));
    }
    Ok(bytes)
}

/// A task's log file, and its last lines for error messages.
pub struct Log {
    file: Option<std::fs::File>,
    pub path: PathBuf,
    tail: VecDeque<String>,
    /// When the log was opened: each line in the file says how long after it was written, so the log
    /// shows where a build's time went (claim, context, steps, push).
    opened: std::time::Instant,
}

impl Log {
    pub fn open(dir: &Path, name: &str) -> Result<Log, BuildError> {
        std::fs::create_dir_all(dir).map_err(|e| BuildError::Log { path: dir.to_path_buf(), source: e })?;
        let path = dir.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| BuildError::Log { path: path.clone(), source: e })?;
        Ok(Log { file: Some(file), path, tail: VecDeque::new(), opened: std::time::Instant::now() })
    }

    pub fn line(&mut self, text: &str) {
        let text = text.trim_end();
        if let Some(f) = &mut self.file
            && writeln!(f, "{:>7.2}s {text}", self.opened.elapsed().as_secs_f64()).is_err()
        {
            self.file = None;
        }
        if self.tail.len() == 10 {
            self.tail.pop_front();
        }
        self.tail.push_back(text.to_string());
    }

    /// `message`, the last lines of the log, and where the whole log is.
    pub fn failure(&mut self, message: &str) -> String {
        self.line(message);
        let mut s = message.to_string();
        let tail: Vec<&String> = self.tail.iter().rev().skip(1).take(8).collect();
        if !tail.is_empty() {
            s.push_str("\nlast lines:");
            for l in tail.into_iter().rev() {
                s.push_str("\n  ");
                s.push_str(l);
            }
        }
        s.push_str(&format!("\nfull log: {}", self.path.display()));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::digest_in;

    #[test]
    fn digest_from_push_status() {
        let d = "sha256:".to_string() + &"ab".repeat(32);
        assert_eq!(digest_in(&format!("k1: digest: {d} size: 528")), Some(d));
        assert_eq!(digest_in("Pushed"), None);
        assert_eq!(digest_in("digest: sha256:abc size: 1"), None);
    }
}
