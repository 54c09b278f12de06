//! The build context the engine receives is exactly what was keyed: the hashed files (no ignored file,
//! modes from the executable bit, symlinks as symlinks, fixed owners and times) plus the Dockerfile, and a
//! file or Dockerfile changed since the plan stops the build instead of building something else.

use pipeline_executor::build::context_tar;
use pipeline_planner::cache::ImageRef;
use pipeline_planner::context::{StatCache, hash_context};
use pipeline_planner::key::{KeyInput, build_key};
use pipeline_planner::plan::KeyedBuild;
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn keyed(root: &Path, dockerfile: &Path) -> KeyedBuild {
    let context = hash_context(root, "ctx", &StatCache::disabled()).expect("hash");
    let bytes = std::fs::read(dockerfile).unwrap();
    let args = BTreeMap::from([("VERSION".to_string(), "1".to_string())]);
    let images = BTreeMap::new();
    let key = build_key(&KeyInput {
        files: &context.files,
        dockerfile: &bytes,
        target: None,
        platform: None,
        args: &args,
        images: &images,
        secrets: &BTreeMap::new(),
    });
    KeyedBuild {
        image: ImageRef { registry: "127.0.0.1:5000".into(), repository: "t/app".into(), tag: key.clone() },
        key,
        context: Arc::new(context),
        dockerfile: dockerfile.to_path_buf(),
        args,
        target: None,
        platform: None,
        uses: vec![],
        images,
        dockerfile_blake3: blake3::hash(&bytes).to_hex().to_string(),
        secrets: BTreeMap::new(),
    }
}

/// (path, type, mode, mtime, uid, content or link target)
fn entries(tar: &[u8]) -> Vec<(String, char, u32, u64, u64, String)> {
    let mut a = tar::Archive::new(tar);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let kind = if h.entry_type().is_symlink() { 'l' } else { 'f' };
            let mut body = String::new();
            if kind == 'l' {
                body = h.link_name().unwrap().unwrap().display().to_string();
            } else {
                e.read_to_string(&mut body).unwrap();
            }
            (
                e.path().unwrap().display().to_string(),
                kind,
                h.mode().unwrap(),
                h.mtime().unwrap(),
                h.uid().unwrap(),
                body,
            )
        })
        .collect()
}

#[test]
fn the_tar_holds_exactly_the_keyed_files() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("ctx");
    write(&root, "Dockerfile", "FROM scratch\nARG VERSION\nCOPY . /\n");
    write(&root, ".dockerignore", "*.log\nsecret/\n");
    write(&root, "a.txt", "alpha\n");
    write(&root, "bin/run", "#!/bin/sh\n");
    std::fs::set_permissions(root.join("bin/run"), std::fs::Permissions::from_mode(0o750)).unwrap();
    write(&root, "debug.log", "not sent\n");
    write(&root, "secret/key", "not sent\n");
    std::os::unix::fs::symlink("a.txt", root.join("link")).unwrap();
    let kb = keyed(&root, &root.join("Dockerfile"));

    let tar = context_tar(&kb).expect("tar");
    let got = entries(&tar);
    let paths: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
    let keyed_paths: Vec<&str> = kb.context.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, keyed_paths, "the tar holds the keyed files, in order");
    assert_eq!(paths, [".dockerignore", "Dockerfile", "a.txt", "bin/run", "link"]);
    let by: BTreeMap<&str, _> = got.iter().map(|e| (e.0.as_str(), e)).collect();
    assert_eq!(by["a.txt"].2, 0o644);
    assert_eq!(by["a.txt"].5, "alpha\n");
    assert_eq!(by["bin/run"].2, 0o755, "the executable bit gives 0755");
    assert_eq!((by["link"].1, by["link"].5.as_str()), ('l', "a.txt"));
    assert!(got.iter().all(|e| e.3 == 0 && e.4 == 0), "fixed times and owners: {got:?}");
    // The same files give the same bytes.
    assert_eq!(context_tar(&kb).unwrap(), tar);
}

#[test]
fn a_dockerfile_outside_the_context_travels_with_it() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("ctx");
    write(&root, "a.txt", "alpha\n");
    write(d.path(), "docker/app.Dockerfile", "FROM scratch\nCOPY a.txt /\n");
    let kb = keyed(&root, &d.path().join("docker/app.Dockerfile"));
    let got = entries(&context_tar(&kb).expect("tar"));
    let paths: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(paths, ["a.txt", ".pipeline/Dockerfile"]);
    assert_eq!(got[1].5, "FROM scratch\nCOPY a.txt /\n");
}

#[test]
fn changes_since_the_plan_stop_the_build() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("ctx");
    write(&root, "Dockerfile", "FROM scratch\nCOPY . /\n");
    write(&root, "a.txt", "alpha\n");
    let kb = keyed(&root, &root.join("Dockerfile"));
    assert!(context_tar(&kb).is_ok());

    // Same size, other bytes: caught by the hash, not by the size.
    write(&root, "a.txt", "ALPHA\n");
    let err = context_tar(&kb).unwrap_err().to_string();
    assert!(err.contains("a.txt") && err.contains("changed since it was planned"), "{err}");
    write(&root, "a.txt", "alpha\n");

    std::fs::remove_file(root.join("a.txt")).unwrap();
    assert!(context_tar(&kb).unwrap_err().to_string().contains("changed since it was planned"));
    write(&root, "a.txt", "alpha\n");

    // The Dockerfile is in the context here, so it is caught as a keyed file; outside, by the key.
    write(&root, "Dockerfile", "FROM scratch\nCOPY . /x\n");
    assert!(context_tar(&kb).unwrap_err().to_string().contains("changed since it was planned"));

    let outside = d.path().join("other.Dockerfile");
    write(d.path(), "other.Dockerfile", "FROM scratch\n");
    write(&root, "Dockerfile", "FROM scratch\nCOPY . /\n");
    let kb = keyed(&root, &outside);
    assert!(context_tar(&kb).is_ok());
    write(d.path(), "other.Dockerfile", "FROM scratch\nRUN true\n");
    let err = context_tar(&kb).unwrap_err().to_string();
    assert!(err.contains("other.Dockerfile") && err.contains("changed since it was planned"), "{err}");
}
