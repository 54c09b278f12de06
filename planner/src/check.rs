//! The offline checks (`pipeline check`): everything `plan` validates that needs no registry, engine,
//! cluster or secret value, with every problem reported rather than only the first.

use crate::cache::Offline;
use crate::context::StatCache;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::lockfile::Lockfile;
use crate::model::Environment;
use crate::pins::LockMode;
use crate::plan::Pinning;
use pipeline_lang::span::SourceMap;

/// What the checks found that is worth knowing but not wrong.
#[derive(Debug, Default)]
pub struct Checked {
    /// The same warnings `plan` prints about the builds (an ARG that receives the environment name).
    pub warnings: Vec<String>,
    /// How many build keys were computed (Dockerfiles read, contexts hashed).
    pub builds: usize,
}

/// Check the stage/service graph and every build: Dockerfile present and readable, `build.target` a
/// stage of it, no secret used as a build arg, the images it uses readable (an ARG in `FROM` without a
/// value, a bad reference), the context present and hashable under its `.dockerignore`; and the lock
/// file beside the definitions readable. `model` errors come from [`crate::read_environment`] before this.
pub fn offline(env: &Environment, sources: &SourceMap, cache: &StatCache, lock_name: &str) -> Result<Checked> {
    let mut errors: Vec<Error> = Vec::new();
    let lock = match Lockfile::read(&Lockfile::path_for(&env.file), lock_name) {
        Ok(lock) => lock,
        Err(d) => {
            errors.push(Error::Invalid(d));
            Lockfile::default()
        }
    };
    let pinning = Pinning { lock: &lock, mode: LockMode::Offline, lock_name };
    if let Err(e) = Graph::new(env, sources) {
        errors.push(e);
    }
    let mut checked = Checked::default();
    // One service at a time, so that one bad build does not hide the next; a context shared by
    // several services is reported once (its error names the first service that uses it).
    let mut seen: Vec<String> = Vec::new();
    for s in env.services.iter().filter(|s| s.build.is_some()) {
        match crate::plan::key_builds(env, sources, cache, &Offline, pinning, |x| x.name == s.name) {
            Ok(keyed) => {
                checked.builds += keyed.keyed.iter().flatten().count();
                checked.warnings.extend(keyed.warnings);
            }
            Err(e) => {
                let shown = format!("{e}");
                if !seen.contains(&shown) {
                    seen.push(shown);
                    errors.push(e);
                }
            }
        }
    }
    checked.warnings.dedup();
    if errors.is_empty() { Ok(checked) } else { Err(Error::all(errors)) }
}
