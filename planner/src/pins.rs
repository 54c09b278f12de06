//! Pinning every image an environment uses: the lock file's entries, the references still missing from
//! it resolved through the registry (unless `--locked` or `--offline`), `pipeline lock --update` and
//! `--prune`. Errors name the file and line that uses the image, and a way out.

use crate::cache::{ImageCache, Resolution};
use crate::error::{Diag, Result};
use crate::lockfile::{Lockfile, Pin};
use crate::reference::Reference;
use pipeline_lang::span::{SourceMap, Span};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How the lock may change while planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockMode {
    /// Resolve references missing from the lock and add them (never moving an existing entry).
    #[default]
    Add,
    /// Never write: a missing entry is an error (CI).
    Locked,
    /// Ask no registry: a missing entry leaves its keys unknown.
    Offline,
}

/// Where an image is used: a Dockerfile line or a definition's `image`.
#[derive(Debug, Clone)]
pub enum Place {
    Dockerfile { name: String, text: Arc<str>, line: usize },
    Definition(Option<Span>),
}

impl Place {
    /// `api/Dockerfile:3` or the definition's file:line:col.
    pub fn describe(&self, sources: &SourceMap) -> String {
        match self {
            Place::Dockerfile { name, line, .. } => format!("{name}:{line}"),
            Place::Definition(Some(sp)) => pipeline_lang::error::loc(sources, *sp),
            Place::Definition(None) => "the definitions".into(),
        }
    }

    /// A `# syntax=` directive's line (the image is BuildKit's frontend).
    fn is_syntax_line(&self) -> bool {
        let Place::Dockerfile { text, line, .. } = self else { return false };
        let Some(l) = text.lines().nth(line.saturating_sub(1)) else { return false };
        let l = l.trim_start_matches('\u{feff}').trim_start();
        l.strip_prefix('#').is_some_and(|r| r.trim_start().to_ascii_lowercase().starts_with("syntax"))
    }

    fn point(&self, d: Diag, sources: &SourceMap, label: &str) -> Diag {
        match self {
            Place::Dockerfile { name, text, line } => d.at_line(name, text, *line, label),
            Place::Definition(span) => d.at(sources, *span, label),
        }
    }
}

/// One image a service uses, and where.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub reference: Reference,
    pub service: String,
    pub place: Place,
}

/// What pinning found.
#[derive(Debug, Clone, Default)]
pub struct Pinned {
    /// The lock after pinning (the entries that were there, plus the ones added).
    pub lock: Lockfile,
    /// Lock names added by this run.
    pub added: Vec<String>,
    /// Lock names that could not be pinned (offline), with the reason.
    pub unresolved: BTreeMap<String, String>,
}

impl Pinned {
    /// The digest a reference builds from or runs: its own when written with one, else the lock's.
    pub fn digest_of(&self, r: &Reference) -> Option<String> {
        match &r.digest {
            Some(d) => Some(d.clone()),
            None => self.lock.get(r).map(|p| p.digest.clone()),
        }
    }
}

/// The lock names of the references that need an entry (those written without a digest), first use first.
fn needing_entries(wanted: &[Wanted]) -> BTreeMap<String, &Wanted> {
    let mut out = BTreeMap::new();
    for w in wanted.iter().filter(|w| w.reference.digest.is_none()) {
        out.entry(w.reference.name_with_tag()).or_insert(w);
    }
    out
}

/// Pin every wanted reference: lock entries as they are, missing ones resolved (mode `Add`), refused
/// (`Locked`) or left unknown (`Offline`).
pub fn settle(
    lock: &Lockfile,
    wanted: &[Wanted],
    registry: &dyn ImageCache,
    mode: LockMode,
    lock_name: &str,
    sources: &SourceMap,
) -> Result<Pinned> {
    let mut out = Pinned { lock: lock.clone(), ..Pinned::default() };
    let missing: Vec<(String, &Wanted)> =
        needing_entries(wanted).into_iter().filter(|(name, _)| !lock.images.contains_key(name)).collect();
    if missing.is_empty() {
        return Ok(out);
    }
    match mode {
        LockMode::Offline => {
            for (name, _) in missing {
                out.unresolved.insert(name, format!("is not in {lock_name} (--offline)"));
            }
            Ok(out)
        }
        LockMode::Locked => {
            let (_, first) = &missing[0];
            let mut d = Diag::new(
                "pipeline::lock::missing",
                format!(
                    "{} image{} not pinned in {lock_name}, and --locked does not write it: {}",
                    missing.len(),
                    if missing.len() == 1 { " is" } else { "s are" },
                    missing.iter().map(|(_, w)| w.reference.familiar()).collect::<Vec<_>>().join(", ")
                ),
            );
            d = first.place.point(d, sources, &format!("`{}` is used here", first.reference.familiar()));
            for (_, w) in missing.iter().skip(1) {
                d = d.note(format!("`{}` is used at {}", w.reference.familiar(), w.place.describe(sources)));
            }
            Err(d.help(format!("run `pipeline lock` and commit {lock_name}, then run this again with --locked")).into())
        }
        LockMode::Add => {
            let refs: Vec<Reference> = missing.iter().map(|(_, w)| w.reference.clone()).collect();
            let answers = registry.resolve(&refs);
            for ((name, w), answer) in missing.iter().zip(answers) {
                match answer {
                    Resolution::Found { digest, media_type } => {
                        out.lock.images.insert(name.clone(), Pin { digest, media_type });
                        out.added.push(name.clone());
                    }
                    Resolution::NotFound(why) | Resolution::Failed(why) => {
                        return Err(unresolvable(w, &why, lock_name, sources).into());
                    }
                }
            }
            Ok(out)
        }
    }
}

fn unresolvable(w: &Wanted, why: &str, lock_name: &str, sources: &SourceMap) -> Diag {
    let d = Diag::new(
        "pipeline::lock::resolve",
        format!("cannot pin `{}` ({}): {why}", w.reference.familiar(), w.reference.name_with_tag()),
    );
    if w.place.is_syntax_line() {
        return w.place.point(d, sources, "frontend named here").help(format!(
            "a `# syntax=` line makes BuildKit run that frontend image, which must be pullable: remove the line to build with the engine's built-in Dockerfile frontend, or push the frontend image to your mirror and name it there (e.g. `# syntax=127.0.0.1:5000/docker/dockerfile:1`), or pin it by hand in {lock_name}"
        ));
    }
    w.place.point(d, sources, "used here").help(format!(
        "check the name and that the registry is reachable (`docker login {}` if it needs a password); an image that only this engine has must be pushed to a registry first (e.g. `docker tag IMAGE 127.0.0.1:5000/base/NAME:TAG && docker push 127.0.0.1:5000/base/NAME:TAG`), or pinned by hand in {lock_name}",
        w.reference.domain
    ))
}

/// Check that pinned digests still exist in their registries; a digest that is gone is an error naming
/// where it is used. Registries that cannot be asked give warnings (the engine may still have it).
pub fn verify(
    pins: &Pinned,
    wanted: &[&Wanted],
    registry: &dyn ImageCache,
    lock_name: &str,
    sources: &SourceMap,
) -> Result<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut asked = Vec::new();
    for w in wanted {
        let Some(d) = pins.digest_of(&w.reference) else { continue };
        let mut r = w.reference.clone();
        r.digest = Some(d);
        if seen.insert(r.to_string()) {
            asked.push((r, *w));
        }
    }
    let refs: Vec<Reference> = asked.iter().map(|(r, _)| r.clone()).collect();
    let mut warnings = Vec::new();
    for ((r, w), answer) in asked.iter().zip(registry.resolve(&refs)) {
        match answer {
            Resolution::Found { .. } => {}
            Resolution::NotFound(why) => {
                let pinned_by_lock = w.reference.digest.is_none();
                let d = Diag::new(
                    "pipeline::lock::gone",
                    format!(
                        "`{}` is pinned to {}, which its registry no longer has: {why}",
                        w.reference.familiar(),
                        r.digest.as_deref().unwrap_or_default()
                    ),
                );
                let help = if pinned_by_lock {
                    format!(
                        "run `pipeline lock --update {}` to pin what the tag names now (and commit {lock_name})",
                        w.reference.familiar()
                    )
                } else {
                    "write a digest the registry has, or the tag alone to let pipeline.lock pin it".to_string()
                };
                return Err(w.place.point(d, sources, "used here").help(help).into());
            }
            Resolution::Failed(why) => warnings.push(format!(
                "cannot confirm that {} (used at {}) is still in its registry: {why}",
                r,
                w.place.describe(sources)
            )),
        }
    }
    Ok(warnings)
}

/// One entry that `pipeline lock --update` resolved again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub name: String,
    pub before: Option<String>,
    pub after: String,
}

/// Resolve again every wanted reference, or those `only` names (a name without a tag names every tag of
/// its repository); the lock's other entries stay. Errors name an unknown reference with a did-you-mean.
pub fn update(
    lock: &Lockfile,
    wanted: &[Wanted],
    only: &[String],
    registry: &dyn ImageCache,
    lock_name: &str,
    sources: &SourceMap,
) -> Result<(Lockfile, Vec<Moved>)> {
    let all = needing_entries(wanted);
    let mut chosen: Vec<(&String, &Wanted)> = Vec::new();
    if only.is_empty() {
        chosen.extend(all.iter().map(|(n, w)| (n, *w)));
    } else {
        for text in only {
            let r = Reference::parse(text).map_err(|why| {
                Diag::new("pipeline::lock::bad_reference", format!("`{text}` is not an image reference: {why}"))
                    .help("name an image as the definitions or Dockerfiles write it, e.g. `node:20`")
            })?;
            let matches: Vec<(&String, &Wanted)> = all
                .iter()
                .filter(|(n, w)| match &r.tag {
                    Some(_) => **n == r.name_with_tag(),
                    None => w.reference.domain == r.domain && w.reference.path == r.path,
                })
                .map(|(n, w)| (n, *w))
                .collect();
            if matches.is_empty() {
                let names: Vec<String> = all.values().map(|w| w.reference.familiar()).collect();
                let help = crate::error::suggest(text, names.iter().map(String::as_str), |list| {
                    if list.is_empty() {
                        "the definitions use no image that needs pinning".into()
                    } else {
                        format!("the images used are: {list}")
                    }
                });
                return Err(Diag::new(
                    "pipeline::lock::unknown_reference",
                    format!("no service of this environment uses `{text}`"),
                )
                .help(help)
                .into());
            }
            chosen.extend(matches);
        }
    }
    chosen.sort_by(|a, b| a.0.cmp(b.0));
    chosen.dedup_by(|a, b| a.0 == b.0);
    let refs: Vec<Reference> = chosen.iter().map(|(_, w)| w.reference.clone()).collect();
    let mut next = lock.clone();
    let mut moved = Vec::new();
    for ((name, w), answer) in chosen.iter().zip(registry.resolve(&refs)) {
        match answer {
            Resolution::Found { digest, media_type } => {
                let before = lock.images.get(*name).map(|p| p.digest.clone());
                if before.as_deref() != Some(digest.as_str()) {
                    moved.push(Moved { name: (*name).clone(), before, after: digest.clone() });
                }
                next.images.insert((*name).clone(), Pin { digest, media_type });
            }
            Resolution::NotFound(why) | Resolution::Failed(why) => {
                return Err(unresolvable(w, &why, lock_name, sources).into());
            }
        }
    }
    Ok((next, moved))
}

/// The lock without the entries no wanted reference needs; the names dropped.
pub fn prune(lock: &Lockfile, wanted: &[Wanted]) -> (Lockfile, Vec<String>) {
    let used = needing_entries(wanted);
    let mut next = lock.clone();
    let dropped: Vec<String> = lock.images.keys().filter(|n| !used.contains_key(*n)).cloned().collect();
    for n in &dropped {
        next.images.remove(n);
    }
    (next, dropped)
}
