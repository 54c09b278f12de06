//! Agreement of the context walk with Docker itself: for every case in `tests/dockerignore/`, the files
//! and symlinks `walk()` lists must be exactly what a real `docker build` (CLI, classic builder) puts
//! in the image with `COPY . /ctx/`.
//!
//! A case `NAME.case` holds a tree and a `.dockerignore`; `NAME.sends` holds what Docker sent, as
//! recorded from a real engine (`UPDATE_EXPECT=1` rewrites it from Docker). Without a Docker engine the
//! walk is still checked against the recordings and the live part prints `skipped: no Docker engine`,
//! unless `PIPELINE_REQUIRE_DOCKER=1`, which makes that a failure.
//!
//! Case format: leading `#` lines describe the case, then sections:
//! - `[tree]`: `f PATH` file, `x PATH` executable file, `d PATH` empty directory, `l PATH -> TARGET`
//!   symlink, `h PATH -> EXISTING` hard link, `p PATH` named pipe (parents are created as needed);
//! - `[dockerignore]` (or `[dockerignore bom]` to start the file with a UTF-8 BOM): the lines, verbatim;
//!   `␠`, `␉` and `␍` stand for a space, a tab and a carriage return (also in tree paths).
//!
//! Every case also gets a `Dockerfile` at the root (`FROM scratch`, `COPY . /ctx/`).

#[path = "../../tests/support/skip.rs"]
mod skip;

use pipeline_planner::dockerignore::Dockerignore;
use pipeline_planner::walk::{EntryKind, walk};
use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

const DOCKERFILE: &str = "FROM scratch\nCOPY . /ctx/\nCMD [\"/none\"]\n";
const BUILD_FAILS: &str = "build fails";
const WORKERS: usize = 3;

struct Case {
    name: String,
    tree: Vec<String>,
    dockerignore: String,
}

/// What is sent, one line per entry (`f PATH`, `x PATH`, `l PATH -> TARGET`), or `build fails`.
type Listing = Vec<String>;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dockerignore")
}

fn unpicture(s: &str) -> String {
    s.replace('␠', " ").replace('␉', "\t").replace('␍', "\r")
}

fn read_cases() -> Vec<Case> {
    let mut paths: Vec<PathBuf> = fs::read_dir(corpus_dir())
        .expect("read tests/dockerignore")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "case"))
        .collect();
    paths.sort();
    paths.iter().map(|p| parse_case(p)).collect()
}

fn parse_case(path: &Path) -> Case {
    let name = path.file_stem().expect("stem").to_string_lossy().into_owned();
    let text = fs::read_to_string(path).expect("read case");
    let mut section = "";
    let mut tree = Vec::new();
    let mut ignore_lines = Vec::new();
    let mut bom = false;
    for line in text.lines() {
        // Only these exact lines are headers: `[*]` is a pattern.
        let header = match line {
            "[tree]" => Some(("tree", false)),
            "[dockerignore]" => Some(("dockerignore", false)),
            "[dockerignore bom]" => Some(("dockerignore", true)),
            _ => None,
        };
        if let Some((name, with_bom)) = header {
            section = name;
            bom |= with_bom;
            continue;
        }
        match section {
            "" => assert!(line.starts_with('#') || line.is_empty(), "{name}: text before [tree]: {line:?}"),
            "tree" if line.trim().is_empty() => {}
            "tree" => tree.push(unpicture(line)),
            _ => ignore_lines.push(unpicture(line)),
        }
    }
    let mut dockerignore = if bom { "\u{feff}".to_owned() } else { String::new() };
    for line in ignore_lines {
        dockerignore.push_str(&line);
        dockerignore.push('\n');
    }
    Case { name, tree, dockerignore }
}

fn build_tree(case: &Case, root: &Path) {
    fs::write(root.join("Dockerfile"), DOCKERFILE).expect("write Dockerfile");
    fs::write(root.join(".dockerignore"), &case.dockerignore).expect("write .dockerignore");
    for line in &case.tree {
        let (kind, rest) = line.split_once(' ').unwrap_or_else(|| panic!("{}: bad tree line {line:?}", case.name));
        let (path, target) = match rest.split_once(" -> ") {
            Some((p, t)) => (p, Some(t)),
            None => (rest, None),
        };
        let full = root.join(path);
        let parent = if kind == "d" { full.clone() } else { full.parent().expect("parent").to_owned() };
        fs::create_dir_all(&parent).unwrap_or_else(|e| panic!("{}: mkdir {}: {e}", case.name, parent.display()));
        match (kind, target) {
            ("f" | "x", None) => {
                fs::write(&full, path.as_bytes()).expect("write file");
                let mode = if kind == "x" { 0o755 } else { 0o644 };
                fs::set_permissions(&full, fs::Permissions::from_mode(mode)).expect("chmod");
            }
            ("d", None) => {}
            ("p", None) => {
                let made = Command::new("mkfifo").arg(&full).status().expect("run mkfifo");
                assert!(made.success(), "{}: mkfifo {}", case.name, full.display());
            }
            ("l", Some(t)) => symlink(t, &full).expect("symlink"),
            ("h", Some(t)) => fs::hard_link(root.join(t), &full).expect("hard link"),
            _ => panic!("{}: bad tree line {line:?}", case.name),
        }
    }
}

/// What `walk()` lists, or `build fails` when the `.dockerignore` is refused.
fn walk_listing(case: &Case, root: &Path) -> Listing {
    let ignore = match Dockerignore::parse(&case.dockerignore) {
        Ok(ignore) => ignore,
        Err(_) => return vec![BUILD_FAILS.to_owned()],
    };
    let entries = walk(root, &ignore).unwrap_or_else(|e| panic!("{}: walk failed: {e}", case.name));
    // `excludes()` must give the walk's answer for every path of the tree.
    let sent: BTreeSet<&str> = entries.iter().map(|e| e.path.as_str()).collect();
    let mut every = vec!["Dockerfile".to_owned(), ".dockerignore".to_owned()];
    every.extend(case.tree.iter().filter(|l| !l.starts_with("d ") && !l.starts_with("p ")).map(|l| {
        let rest = &l[2..];
        rest.split_once(" -> ").map_or(rest, |(p, _)| p).to_owned()
    }));
    for path in &every {
        assert_eq!(
            ignore.excludes(path),
            !sent.contains(path.as_str()),
            "{}: excludes({path:?}) disagrees with walk",
            case.name
        );
    }
    entries
        .iter()
        .map(|e| match &e.kind {
            EntryKind::File { executable: false } => format!("f {}", e.path),
            EntryKind::File { executable: true } => format!("x {}", e.path),
            EntryKind::Symlink { target } => format!("l {} -> {target}", e.path),
        })
        .collect()
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker {args:?}: {e}"))
}

/// Removes the container and image of one case, whatever happens.
struct Cleanup {
    image: Option<String>,
    container: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(c) = &self.container {
            let _ = docker(&["rm", "-f", c]);
        }
        if let Some(i) = &self.image {
            let _ = docker(&["rmi", "-f", i]);
        }
    }
}

/// Builds the case with Docker and lists `/ctx` of the image.
fn docker_listing(case: &Case, root: &Path) -> Listing {
    let ctx = root.to_str().expect("utf-8 tempdir");
    // No cache: cases run in parallel and each removes its image afterwards, so a build must not stand on
    // another case's layers. A failure is tried once more, so a refused `.dockerignore` (which fails
    // every time) is not confused with a transient engine error (seen once in CI).
    let build_once = || docker(&["build", "-q", "--force-rm", "--no-cache", ctx]);
    let mut build = build_once();
    if !build.status.success() {
        build = build_once();
    }
    if !build.status.success() {
        return vec![BUILD_FAILS.to_owned()];
    }
    let image = String::from_utf8_lossy(&build.stdout).trim().to_owned();
    let mut cleanup = Cleanup { image: Some(image.clone()), container: None };
    let create = docker(&["create", &image]);
    assert!(create.status.success(), "{}: docker create: {}", case.name, String::from_utf8_lossy(&create.stderr));
    let container = String::from_utf8_lossy(&create.stdout).trim().to_owned();
    cleanup.container = Some(container.clone());
    let export = docker(&["export", &container]);
    assert!(export.status.success(), "{}: docker export: {}", case.name, String::from_utf8_lossy(&export.stderr));

    let mut listing = Vec::new();
    let mut archive = tar::Archive::new(&export.stdout[..]);
    for entry in archive.entries().expect("tar entries") {
        let entry = entry.expect("tar entry");
        let header = entry.header();
        let path = entry.path().expect("tar path").to_string_lossy().into_owned();
        let Some(rel) = path.strip_prefix("ctx/").filter(|r| !r.is_empty()) else { continue };
        let rel = rel.trim_end_matches('/').to_owned();
        let mode = header.mode().expect("mode");
        match header.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::Link => {
                listing.push(format!("{} {rel}", if mode & 0o111 != 0 { "x" } else { "f" }));
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name().expect("link name").expect("symlink target");
                listing.push(format!("l {rel} -> {}", target.to_string_lossy()));
            }
            // Directories are not listed; fifos and devices are out of scope (the walk skips them).
            tar::EntryType::Directory | tar::EntryType::Fifo | tar::EntryType::Char | tar::EntryType::Block => {}
            other => listing.push(format!("? {rel} ({other:?})")),
        }
    }
    listing.sort();
    listing
}

fn docker_engine() -> Result<String, String> {
    let out = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn show(listing: &[String]) -> String {
    listing.iter().map(|l| format!("    {l}\n")).collect()
}

fn read_sends(case: &Case) -> Option<Listing> {
    let text = fs::read_to_string(corpus_dir().join(format!("{}.sends", case.name))).ok()?;
    Some(text.lines().map(unpicture).collect())
}

/// A listing line with tabs, carriage returns and trailing spaces made visible.
fn picture(line: &str) -> String {
    let body = line.trim_end_matches(' ');
    format!("{}{}\n", body.replace('\t', "␉").replace('\r', "␍"), "␠".repeat(line.len() - body.len()))
}

fn write_sends(case: &Case, listing: &[String]) {
    let text: String = listing.iter().map(|l| picture(l)).collect();
    fs::write(corpus_dir().join(format!("{}.sends", case.name)), text).expect("write .sends");
}

#[test]
fn walk_agrees_with_docker() {
    let cases = read_cases();
    assert!(cases.len() >= 25, "the corpus should hold at least 25 cases, found {}", cases.len());
    let engine = docker_engine();
    let update = std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1");
    assert!(
        !update || std::env::var_os("CI").is_none(),
        "UPDATE_EXPECT is refused under CI: expected files are rewritten on a developer machine and reviewed, never by the run that checks them"
    );
    if let Err(why) = &engine {
        skip::skip(
            skip::DOCKER,
            &format!("no Docker engine answered ({why}); checking walk() against the recorded listings only"),
        );
    }

    let failures = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                while let Some(case) = cases.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let dir = tempfile::tempdir().expect("tempdir");
                    build_tree(case, dir.path());
                    let mut ours = walk_listing(case, dir.path());
                    ours.sort();
                    let recorded = read_sends(case);
                    let mut problems = Vec::new();
                    if engine.is_ok() {
                        let theirs = docker_listing(case, dir.path());
                        if theirs != ours {
                            problems.push(format!("Docker sent:\n{}walk() lists:\n{}", show(&theirs), show(&ours)));
                        }
                        if update {
                            write_sends(case, &theirs);
                        } else if recorded.as_ref().is_some_and(|r| *r != theirs) {
                            problems.push(format!(
                                "Docker sent:\n{}{}.sends recorded:\n{}",
                                show(&theirs),
                                case.name,
                                show(recorded.as_deref().unwrap_or_default())
                            ));
                        }
                    }
                    match &recorded {
                        None if !update => {
                            problems.push(format!("no {}.sends (record it with UPDATE_EXPECT=1)", case.name))
                        }
                        Some(r) if !update && *r != ours => problems.push(format!(
                            "{}.sends recorded:\n{}walk() lists:\n{}",
                            case.name,
                            show(r),
                            show(&ours)
                        )),
                        _ => {}
                    }
                    if !problems.is_empty() {
                        failures.lock().expect("lock").push(format!("case {}:\n{}", case.name, problems.join("")));
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().expect("lock");
    failures.sort();
    assert!(failures.is_empty(), "{} of {} cases disagree:\n{}", failures.len(), cases.len(), failures.join("\n"));
    if let Ok(version) = engine {
        let _ = writeln!(std::io::stderr(), "checked {} cases against Docker engine {version}", cases.len());
    }
}
