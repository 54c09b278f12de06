//! Properties of the build key over generated context trees (several levels deep, Unicode names): what
//! must change it (an included or `!`-re-included file's bytes, name or executable bit, a symlink's
//! target text) and what must not (mtimes, with and without the stat cache; ignored files; empty
//! folders; what a symlink points at; creation order; variables the Dockerfile does not declare;
//! runtime env of another environment). Each property runs the whole path a plan takes: evaluate a
//! definition, read the model, walk, hash, key.

use pipeline_lang::io::FsIo;
use pipeline_lang::span::SourceMap;
use pipeline_lang::{Evaluator, Options};
use pipeline_planner::Environment;
use pipeline_planner::cache::Offline;
use pipeline_planner::context::{HashedKind, StatCache};
use pipeline_planner::lockfile::Lockfile;
use pipeline_planner::pins::LockMode;
use pipeline_planner::plan::{KeyedBuild, Pinning, key_builds};
use proptest::prelude::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const STD: &str = "/pipeline-embedded/std";

/// A definition (written to `dir/pipeline.nix`) evaluated and read once; every [`Keyer::build`] walks,
/// hashes and keys its contexts afresh, as a plan does.
struct Keyer {
    env: Environment,
    sources: SourceMap,
}

impl Keyer {
    fn new(dir: &Path, def: &str) -> Keyer {
        let file = dir.join("pipeline.nix");
        std::fs::write(&file, def).unwrap();
        let io = FsIo::default().with_embedded(Path::new(STD), pipeline_stdlib::FILES);
        let mut ev = Evaluator::new(
            &io,
            Options {
                root: Some(dir.to_path_buf()),
                search_paths: vec![("std".into(), PathBuf::from(STD))],
                display_base: None,
                stdlib_dirs: vec![PathBuf::from(STD)],
            },
        );
        let v = ev.load(&file, &[]).unwrap_or_else(|e| panic!("{e:?}"));
        let env = pipeline_planner::read_environment(&mut ev, &file, v).unwrap_or_else(|e| panic!("{e:?}"));
        Keyer { env, sources: std::mem::take(&mut ev.sources) }
    }

    /// The keyed build of service `svc`.
    fn build(&self, svc: &str, cache: &StatCache) -> KeyedBuild {
        let lock = Lockfile::default();
        let pinning = Pinning { lock: &lock, mode: LockMode::Offline, lock_name: "pipeline.lock" };
        let mut keyed = key_builds(&self.env, &self.sources, cache, &Offline, pinning, |_| true)
            .unwrap_or_else(|e| panic!("{e:?}"));
        let i = self.env.services.iter().position(|s| s.name == svc).unwrap();
        keyed.keyed.swap_remove(i).unwrap().unwrap()
    }
}

/// The key of service `svc` in the definition `def` (written to `dir/pipeline.nix`).
fn key(dir: &Path, def: &str, svc: &str, cache: &StatCache) -> String {
    Keyer::new(dir, def).build(svc, cache).key
}

fn def(env_name: &str, env_vars: &str, args: &str) -> String {
    format!(
        r#"let std = import <std>; in
std.environment {{
  project = "p"; name = "{env_name}"; registry = "127.0.0.1:5000/p"; target = std.docker {{ }};
  services.app = std.application {{ build = {{ context = ./ctx; args = {{ {args} }}; }}; env = {{ {env_vars} }}; }};
}}"#
    )
}

const DOCKERFILE: &str = "FROM scratch\nARG VERSION\nCOPY . /app\n";

#[derive(Debug, Clone)]
struct File {
    path: String,
    bytes: Vec<u8>,
    exec: bool,
}

fn tree() -> impl Strategy<Value = Vec<File>> {
    let name = prop::sample::select(vec!["a", "b", "c", "src", "lib", "x.txt", "y.rs", "z.log", "d.md"]);
    let path = prop::collection::vec(name, 1..4).prop_map(|parts| parts.join("/"));
    let file = (path, prop::collection::vec(any::<u8>(), 0..64), any::<bool>()).prop_map(|(path, bytes, exec)| File {
        path,
        bytes,
        exec,
    });
    prop::collection::vec(file, 1..12).prop_map(|files| {
        // Keep a consistent tree: no path that is both a file and a folder, no duplicates.
        let mut out: Vec<File> = Vec::new();
        for f in files {
            let clash = out.iter().any(|o| {
                o.path == f.path
                    || o.path.starts_with(&format!("{}/", f.path))
                    || f.path.starts_with(&format!("{}/", o.path))
            });
            if !clash {
                out.push(f);
            }
        }
        out
    })
}

fn write_tree(ctx: &Path, files: &[File]) {
    std::fs::create_dir_all(ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(ctx.join(".dockerignore"), "*.log\n**/*.log\n").unwrap();
    for f in files {
        let p = ctx.join(&f.path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &f.bytes).unwrap();
        let mode = if f.exec { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// `*.log` and `**/*.log` exclude a `.log` file or folder at any depth, and everything inside it.
fn included(f: &File) -> bool {
    !f.path.split('/').any(|c| c.ends_with(".log"))
}

fn fresh(files: &[File]) -> (tempfile::TempDir, String) {
    let d = tempfile::tempdir().unwrap();
    write_tree(&d.path().join("ctx"), files);
    let k = key(d.path(), &def("staging", "", ""), "app", &StatCache::disabled());
    (d, k)
}

/// Names for the deeper trees: `.log` files and folders (some `keep.log`, which `.dockerignore` re-includes)
/// and Unicode names, `é` both precomposed and decomposed (two different names to Docker and to Linux).
const NAMES: &[&str] =
    &["a", "b", "src", "x.txt", "z.log", "keep.log", "\u{e9}", "e\u{301}", "日本語.txt", "журнал.log", "🦀.rs", "a b"];

/// `*.log` and `!keep.log`: Docker's `*` does not cross `/`, so both act at the context root only.
const ROOT_ONLY: &str = "*.log\n!keep.log\n";
/// The same at any depth.
const ANY_DEPTH: &str = "**/*.log\n!**/keep.log\n";

fn ignore_text(deep: bool) -> &'static str {
    if deep { ANY_DEPTH } else { ROOT_ONLY }
}

/// Whether Docker sends `path` with [`ignore_text`]`(deep)`, worked out independently of the planner's
/// matcher: the first `.log` component the patterns reach (only the first component for [`ROOT_ONLY`])
/// decides. `keep.log` is re-included with everything below it (a folder hands its matches down to its
/// entries); any other `.log` is excluded with everything below it (an excluded folder no `!` pattern
/// starts with is skipped whole, so even a `keep.log` inside it is not sent).
fn sent(path: &str, deep: bool) -> bool {
    let seen = if deep { path.split('/').count() } else { 1 };
    match path.split('/').take(seen).find(|c| c.ends_with(".log")) {
        Some(c) => c == "keep.log",
        None => true,
    }
}

/// A relative path of 1 to `depth` names from [`NAMES`].
fn deep_path(depth: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(NAMES), 1..=depth).prop_map(|parts| parts.join("/"))
}

/// Whether two paths cannot both exist: the same path, or one a folder of the other.
fn clash(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
}

/// Up to `max` files up to `depth` levels deep, none clashing.
fn deep_tree(depth: usize, max: usize) -> impl Strategy<Value = Vec<File>> {
    let file = (deep_path(depth), prop::collection::vec(any::<u8>(), 1..48), any::<bool>())
        .prop_map(|(path, bytes, exec)| File { path, bytes, exec });
    prop::collection::vec(file, 1..max).prop_map(|files| {
        let mut out: Vec<File> = Vec::new();
        for f in files {
            if !out.iter().any(|o| clash(&o.path, &f.path)) {
                out.push(f);
            }
        }
        out
    })
}

/// `files` under `dir/ctx` with the given `.dockerignore`, evaluated as service `app`.
fn setup(files: &[File], ignore: &str) -> (tempfile::TempDir, Keyer) {
    let d = tempfile::tempdir().unwrap();
    let ctx = d.path().join("ctx");
    write_tree(&ctx, files);
    std::fs::write(ctx.join(".dockerignore"), ignore).unwrap();
    let keyer = Keyer::new(d.path(), &def("staging", "", ""));
    (d, keyer)
}

/// The paths a keyed context holds.
fn keyed_paths(b: &KeyedBuild) -> Vec<&str> {
    b.context.files.iter().map(|f| f.path.as_str()).collect()
}

/// What the model says the context holds: the sent files, the Dockerfile and `.dockerignore`, by bytes.
fn expected_paths(files: &[File], deep: bool) -> Vec<&str> {
    let mut want: Vec<&str> = files.iter().filter(|f| sent(&f.path, deep)).map(|f| f.path.as_str()).collect();
    want.extend([".dockerignore", "Dockerfile"]);
    want.sort_unstable();
    want
}

/// Where a generated symlink points.
#[derive(Debug, Clone)]
enum To {
    /// A path relative to the link's folder, inside the context (it may not exist).
    Inside(String),
    /// `../…/outside/secret.txt`: a file beside the context.
    OutsideFile,
    /// `../…/outside/dir`: a folder beside the context.
    OutsideDir,
    /// The absolute path of `outside/secret.txt`.
    Absolute,
    /// Nothing.
    Dangling,
}

#[derive(Debug, Clone)]
struct Link {
    path: String,
    to: To,
}

/// The target text of `link` in a context at `dir/ctx`, with `dir/outside` beside it.
fn target_text(link: &Link, dir: &Path) -> String {
    let ups = "../".repeat(link.path.matches('/').count() + 1);
    match &link.to {
        To::Inside(p) => p.clone(),
        To::OutsideFile => format!("{ups}outside/secret.txt"),
        To::OutsideDir => format!("{ups}outside/dir"),
        To::Absolute => dir.join("outside/secret.txt").to_str().unwrap().to_string(),
        To::Dangling => "nowhere/\u{fc}n\u{ef}code".to_string(),
    }
}

/// Files and symlinks, none clashing.
fn tree_with_links() -> impl Strategy<Value = (Vec<File>, Vec<Link>)> {
    let to = prop_oneof![
        deep_path(3).prop_map(To::Inside),
        Just(To::OutsideFile),
        Just(To::OutsideDir),
        Just(To::Absolute),
        Just(To::Dangling),
    ];
    let link = (deep_path(4), to).prop_map(|(path, to)| Link { path, to });
    (deep_tree(4, 8), prop::collection::vec(link, 1..6)).prop_map(|(files, links)| {
        let mut kept: Vec<Link> = Vec::new();
        for l in links {
            if !files.iter().any(|f| clash(&f.path, &l.path)) && !kept.iter().any(|k| clash(&k.path, &l.path)) {
                kept.push(l);
            }
        }
        (files, kept)
    })
}

fn relink(path: &Path, target: &str) {
    std::fs::remove_file(path).unwrap();
    std::os::unix::fs::symlink(target, path).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// `!` re-includes over deeper trees with Unicode names: the context holds exactly what the model
    /// says Docker sends; rewriting every excluded file leaves the key, rewriting one sent file (a
    /// re-included one when there is one) changes it.
    #[test]
    fn reincluded_files_count_and_other_excluded_files_do_not(
        files in deep_tree(6, 14), deep in any::<bool>(), pick in any::<prop::sample::Index>(),
    ) {
        let (d, keyer) = setup(&files, ignore_text(deep));
        let ctx = d.path().join("ctx");
        let first = keyer.build("app", &StatCache::disabled());
        prop_assert_eq!(keyed_paths(&first), expected_paths(&files, deep));
        for f in files.iter().filter(|f| !sent(&f.path, deep)) {
            std::fs::write(ctx.join(&f.path), b"changed, and longer than before: not sent").unwrap();
        }
        prop_assert_eq!(&keyer.build("app", &StatCache::disabled()).key, &first.key);
        let sent_files: Vec<&File> = files.iter().filter(|f| sent(&f.path, deep)).collect();
        let kept: Vec<&File> = sent_files.iter().copied().filter(|f| f.path.split('/').any(|c| c == "keep.log")).collect();
        let pool = if kept.is_empty() { &sent_files } else { &kept };
        prop_assume!(!pool.is_empty());
        let target = pool[pick.index(pool.len())];
        let mut bytes = target.bytes.clone();
        bytes[0] = bytes[0].wrapping_add(1);
        std::fs::write(ctx.join(&target.path), &bytes).unwrap();
        prop_assert_ne!(keyer.build("app", &StatCache::disabled()).key, first.key);
    }

    /// Symlinks are sent as symlinks (docs/build-key.md): the key holds each sent link's target text,
    /// never what it points at. Rewriting what links point at outside the context leaves the key;
    /// retargeting a sent link, or replacing it by a file with the bytes it leads to, changes it;
    /// retargeting an excluded link does not.
    #[test]
    fn symlinks_key_their_target_text_not_what_they_point_at(
        (files, links) in tree_with_links(), deep in any::<bool>(), pick in any::<prop::sample::Index>(),
    ) {
        let (d, keyer) = setup(&files, ignore_text(deep));
        let ctx = d.path().join("ctx");
        std::fs::create_dir_all(d.path().join("outside/dir")).unwrap();
        std::fs::write(d.path().join("outside/secret.txt"), b"outside the context").unwrap();
        for l in &links {
            let p = ctx.join(&l.path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target_text(l, d.path()), &p).unwrap();
        }
        let first = keyer.build("app", &StatCache::disabled());
        let mut want = expected_paths(&files, deep);
        want.extend(links.iter().filter(|l| sent(&l.path, deep)).map(|l| l.path.as_str()));
        want.sort_unstable();
        prop_assert_eq!(keyed_paths(&first), want);
        for l in links.iter().filter(|l| sent(&l.path, deep)) {
            let entry = first.context.files.iter().find(|f| f.path == l.path).unwrap();
            prop_assert_eq!(&entry.kind, &HashedKind::Symlink { target: target_text(l, d.path()) });
        }
        // What the links point at, outside the context, changes.
        std::fs::write(d.path().join("outside/secret.txt"), b"something else entirely").unwrap();
        std::fs::write(d.path().join("outside/dir/new.txt"), b"new").unwrap();
        prop_assert_eq!(&keyer.build("app", &StatCache::disabled()).key, &first.key);
        // Excluded links point elsewhere.
        for l in links.iter().filter(|l| !sent(&l.path, deep)) {
            relink(&ctx.join(&l.path), "elsewhere");
        }
        prop_assert_eq!(&keyer.build("app", &StatCache::disabled()).key, &first.key);
        let sent_links: Vec<&Link> = links.iter().filter(|l| sent(&l.path, deep)).collect();
        prop_assume!(!sent_links.is_empty());
        let l = sent_links[pick.index(sent_links.len())];
        let p = ctx.join(&l.path);
        let text = target_text(l, d.path());
        // A sent link points elsewhere, then back.
        relink(&p, &format!("{text}-moved"));
        prop_assert_ne!(&keyer.build("app", &StatCache::disabled()).key, &first.key);
        relink(&p, &text);
        prop_assert_eq!(&keyer.build("app", &StatCache::disabled()).key, &first.key);
        // A file with the bytes the link leads to (none when it leads to a folder or nowhere).
        let bytes = std::fs::read(&p).unwrap_or_default();
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, bytes).unwrap();
        prop_assert_ne!(keyer.build("app", &StatCache::disabled()).key, first.key);
    }

    /// Directories are not keyed (docs/build-key.md: "Regular files and symbolic links only"; `apply`
    /// sends exactly the keyed files, so no image it builds has them): empty folders, at any depth and
    /// whatever their names, and folders emptied by deleting their excluded files leave the key.
    #[test]
    fn empty_directories_do_not_enter_the_key(
        files in deep_tree(5, 10), dirs in prop::collection::vec(deep_path(6), 1..6), deep in any::<bool>(),
    ) {
        let dirs: Vec<String> = dirs.into_iter().filter(|d| !files.iter().any(|f| d == &f.path || d.starts_with(&format!("{}/", f.path)))).collect();
        prop_assume!(!dirs.is_empty());
        let (d, keyer) = setup(&files, ignore_text(deep));
        let ctx = d.path().join("ctx");
        let first = keyer.build("app", &StatCache::disabled());
        for dir in &dirs {
            std::fs::create_dir_all(ctx.join(dir)).unwrap();
        }
        let with_dirs = keyer.build("app", &StatCache::disabled());
        prop_assert_eq!(keyed_paths(&with_dirs), keyed_paths(&first));
        prop_assert_eq!(&with_dirs.key, &first.key);
        for f in files.iter().filter(|f| !sent(&f.path, deep)) {
            std::fs::remove_file(ctx.join(&f.path)).unwrap();
        }
        prop_assert_eq!(&keyer.build("app", &StatCache::disabled()).key, &first.key);
    }

    /// Names are keyed by their exact UTF-8 bytes: renaming a file from a precomposed `é` to the
    /// decomposed `e` + U+0301 (the same name to a human, two names to Linux and Docker) changes the key
    /// when the file is sent and leaves it when it is excluded.
    #[test]
    fn unicode_names_are_keyed_by_their_bytes(
        files in deep_tree(4, 8), dir in deep_path(4), deep in any::<bool>(), bytes in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        let nfc = format!("{dir}/caf\u{e9}.txt");
        let nfd = format!("{dir}/cafe\u{301}.txt");
        let files: Vec<File> = files.into_iter().filter(|f| !clash(&f.path, &dir)).collect();
        let (d, keyer) = setup(&files, ignore_text(deep));
        let ctx = d.path().join("ctx");
        std::fs::create_dir_all(ctx.join(&dir)).unwrap();
        std::fs::write(ctx.join(&nfc), &bytes).unwrap();
        let first = keyer.build("app", &StatCache::disabled());
        prop_assert_eq!(keyed_paths(&first).contains(&nfc.as_str()), sent(&nfc, deep));
        std::fs::rename(ctx.join(&nfc), ctx.join(&nfd)).unwrap();
        let renamed = keyer.build("app", &StatCache::disabled());
        prop_assert_eq!(keyed_paths(&renamed).contains(&nfd.as_str()), sent(&nfd, deep));
        prop_assert_eq!(renamed.key != first.key, sent(&nfc, deep));
    }

    /// "mtimes do not change the key" with the stat cache on, as plans run it (`.pipeline/stat-cache`,
    /// saved after each run). A warm cache answers for every file (nothing hashed) with the cold key. A
    /// file rewritten in place with the same size and its mtime put back is still noticed (its ctime
    /// moved, so the entry no longer matches: context.rs's `Cached::matches`) and keyed as without the
    /// cache; put back, the key is the first one again. Touched files are hashed again and keep the key.
    #[test]
    fn mtimes_do_not_change_the_key_through_the_stat_cache(
        files in deep_tree(5, 10), deep in any::<bool>(), pick in any::<prop::sample::Index>(),
        touch in prop::collection::vec(any::<bool>(), 10), secs in 1_000_000i64..2_000_000_000,
    ) {
        let (d, keyer) = setup(&files, ignore_text(deep));
        let ctx = d.path().join("ctx");
        let cache_file = d.path().join(".pipeline/stat-cache");
        let run = || {
            let cache = StatCache::open(&cache_file);
            let b = keyer.build("app", &cache);
            cache.save().unwrap();
            b
        };
        // Entries are trusted only for files last changed a clock tick (20 ms) before they were hashed.
        let settle = || std::thread::sleep(std::time::Duration::from_millis(30));
        let cold = keyer.build("app", &StatCache::disabled()).key;
        settle();
        let first = run();
        prop_assert_eq!(&first.key, &cold);
        prop_assert_eq!(first.context.hashed, first.context.files.len());
        let warm = run();
        prop_assert_eq!((&warm.key, warm.context.hashed), (&cold, 0));
        // Same size, same mtime, other bytes.
        let sent_files: Vec<&File> = files.iter().filter(|f| sent(&f.path, deep)).collect();
        prop_assume!(!sent_files.is_empty());
        let target = sent_files[pick.index(sent_files.len())];
        let p = ctx.join(&target.path);
        let mtime = filetime::FileTime::from_last_modification_time(&std::fs::metadata(&p).unwrap());
        let other: Vec<u8> = target.bytes.iter().map(|b| b.wrapping_add(1)).collect();
        std::fs::write(&p, &other).unwrap();
        filetime::set_file_mtime(&p, mtime).unwrap();
        let changed = run();
        prop_assert_eq!(changed.context.hashed, 1);
        prop_assert_ne!(&changed.key, &cold);
        prop_assert_eq!(&changed.key, &keyer.build("app", &StatCache::disabled()).key);
        // The original bytes again, same mtime: the original key.
        std::fs::write(&p, &target.bytes).unwrap();
        filetime::set_file_mtime(&p, mtime).unwrap();
        settle();
        let restored = run();
        prop_assert_eq!((&restored.key, restored.context.hashed), (&cold, 1));
        // Touch some files, sent or not, to other times: the sent ones are hashed again, the key stays.
        let touched: Vec<&File> = files.iter().zip(&touch).filter(|(_, t)| **t).map(|(f, _)| f).collect();
        for (i, f) in touched.iter().enumerate() {
            let t = filetime::FileTime::from_unix_time(secs + i as i64, 7);
            filetime::set_file_mtime(ctx.join(&f.path), t).unwrap();
        }
        let after = run();
        prop_assert_eq!(&after.key, &cold);
        prop_assert_eq!(after.context.hashed, touched.iter().filter(|f| sent(&f.path, deep)).count());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn content_name_and_exec_bit_change_the_key(files in tree(), pick in any::<prop::sample::Index>(), flip in 0u8..3) {
        let inc: Vec<&File> = files.iter().filter(|f| included(f)).collect();
        prop_assume!(!inc.is_empty());
        let target = inc[pick.index(inc.len())].clone();
        let (_d, before) = fresh(&files);
        let changed: Vec<File> = files.iter().map(|f| {
            if f.path != target.path { return f.clone(); }
            let mut g = f.clone();
            match flip {
                0 => g.bytes.push(b'!'),
                1 => g.path = format!("{}-renamed", g.path),
                _ => g.exec = !g.exec,
            }
            g
        }).collect();
        let (_d2, after) = fresh(&changed);
        prop_assert_ne!(before, after);
    }

    #[test]
    fn ignored_files_order_and_mtimes_do_not(files in tree(), junk in prop::collection::vec(any::<u8>(), 0..32)) {
        let (d, before) = fresh(&files);
        // Rewrite or add ignored files, and touch every file's mtime.
        let ctx = d.path().join("ctx");
        std::fs::write(ctx.join("new.log"), &junk).unwrap();
        for f in files.iter().filter(|f| !included(f)) {
            std::fs::write(ctx.join(&f.path), &junk).unwrap();
        }
        for f in &files {
            filetime::set_file_mtime(ctx.join(&f.path), filetime::FileTime::from_unix_time(1_000_000, 0)).unwrap();
        }
        let again = key(d.path(), &def("staging", "", ""), "app", &StatCache::disabled());
        prop_assert_eq!(&before, &again);
        // The same files created in the reverse order, elsewhere.
        let mut rev = files.clone();
        rev.reverse();
        let (_d2, reversed) = fresh(&rev);
        prop_assert_eq!(before, reversed);
    }
}

#[test]
fn undeclared_variables_and_runtime_env_do_not_split_the_cache() {
    let d = tempfile::tempdir().unwrap();
    write_tree(&d.path().join("ctx"), &[File { path: "main.txt".into(), bytes: b"hi".to_vec(), exec: false }]);
    let c = StatCache::disabled();
    let base = key(d.path(), &def("staging", "", ""), "app", &c);
    // Offered but not declared by the Dockerfile: no effect.
    assert_eq!(base, key(d.path(), &def("staging", "", "UNUSED = \"1\";"), "app", &c));
    assert_eq!(base, key(d.path(), &def("staging", "LOG_LEVEL = \"debug\";", ""), "app", &c));
    // Another environment with other runtime env: same key.
    assert_eq!(base, key(d.path(), &def("production", "LOG_LEVEL = \"warn\"; REPLICA = \"3\";", ""), "app", &c));
    // A declared arg does change it, from build.args or from env.
    let v1 = key(d.path(), &def("staging", "", "VERSION = \"1\";"), "app", &c);
    assert_ne!(base, v1);
    assert_eq!(v1, key(d.path(), &def("production", "VERSION = \"1\";", ""), "app", &c));
    assert_ne!(v1, key(d.path(), &def("staging", "", "VERSION = \"2\";"), "app", &c));
}

#[test]
fn the_stat_cache_gives_the_same_key_and_notices_changes() {
    let d = tempfile::tempdir().unwrap();
    let ctx = d.path().join("ctx");
    write_tree(&ctx, &[File { path: "a.txt".into(), bytes: b"one".to_vec(), exec: false }]);
    let cache_file = d.path().join(".pipeline/stat-cache");
    for f in ["a.txt", "Dockerfile", ".dockerignore"] {
        filetime::set_file_mtime(ctx.join(f), filetime::FileTime::from_unix_time(1_000_000, 0)).unwrap();
    }
    // Entries are trusted only for files whose mtime and ctime are a clock tick older than the hashing
    // (the racy-git rule); setting the mtime moved the ctime to now, so wait that tick out.
    std::thread::sleep(std::time::Duration::from_millis(30));
    let keyer = Keyer::new(d.path(), &def("s", "", ""));
    let cold = keyer.build("app", &StatCache::disabled()).key;
    let c1 = StatCache::open(&cache_file);
    let first = keyer.build("app", &c1);
    assert_eq!((&cold, first.context.hashed), (&first.key, 3));
    c1.save().unwrap();
    let c2 = StatCache::open(&cache_file);
    let warm = keyer.build("app", &c2);
    assert_eq!((&cold, warm.context.hashed), (&warm.key, 0), "a warm cache answers for every file");
    // Same size, same mtime, new bytes: the ctime (and the racy-git rule) still catch it.
    std::fs::write(ctx.join("a.txt"), b"two").unwrap();
    filetime::set_file_mtime(ctx.join("a.txt"), filetime::FileTime::from_unix_time(1_000_000, 0)).unwrap();
    let c3 = StatCache::open(&cache_file);
    let changed = keyer.build("app", &c3);
    assert_eq!(changed.context.hashed, 1);
    assert_ne!(cold, changed.key);
    assert_eq!(changed.key, keyer.build("app", &StatCache::disabled()).key);
}
