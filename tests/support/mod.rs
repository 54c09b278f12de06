//! What the tests against real systems share.

use std::process::Command;

pub mod project;
pub mod skip;

/// Whether the registry on 127.0.0.1:5000 and a Docker engine are up (`scripts/start-services` starts
/// both). When they are not, the test says it was skipped (see [`skip`]), or fails when required.
pub fn services_up() -> bool {
    let registry = std::net::TcpStream::connect("127.0.0.1:5000").is_ok();
    let docker = Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success());
    if registry && docker {
        return true;
    }
    skip::skip(
        skip::DOCKER,
        &format!(
            "the registry (127.0.0.1:5000 up: {registry}) or the Docker engine (up: {docker}) is not up; scripts/start-services starts both"
        ),
    );
    false
}

/// Whether the engine and registry are up (see [`services_up`]), with the examples' base image and the
/// proxy's image made and pushed to the mirror by `scripts/base-image` and `scripts/proxy-image` (once
/// per test binary).
#[allow(dead_code)]
pub fn services_and_base_image_up() -> bool {
    if !services_up() {
        return false;
    }
    static BASE: std::sync::Once = std::sync::Once::new();
    BASE.call_once(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for script in ["scripts/base-image", "scripts/proxy-image"] {
            let out = Command::new(root.join(script)).output().unwrap_or_else(|e| panic!("run {script}: {e}"));
            assert!(out.status.success(), "{script} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    });
    true
}

/// Compare `actual` with the expected file at `path`; `UPDATE_EXPECT=1` rewrites it (review the diff).
#[allow(dead_code)]
pub fn expect_file(path: &std::path::Path, actual: &str) {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, actual).expect("write expected file");
        return;
    }
    let want = std::fs::read_to_string(path)
        .unwrap_or_else(|_| panic!("missing {} (run with UPDATE_EXPECT=1)", path.display()));
    assert!(want == actual, "{}: output differs\n--- expected\n{want}\n--- actual\n{actual}", path.display());
}

/// The mirror registry the tests push to.
#[allow(dead_code)] // not every test file uses every helper
pub const REGISTRY: &str = "127.0.0.1:5000";

/// Removes, when dropped, what a test built and pushed under `<REGISTRY>/<prefix>`: the engine's images
/// of that name and the registry's tags of every repository under `prefix` (so that test runs leave
/// no image behind). Best effort: a failure to clean up never fails the test.
#[allow(dead_code)]
pub struct RemoveImagesOnDrop(pub String);

impl Drop for RemoveImagesOnDrop {
    fn drop(&mut self) {
        remove_images(&self.0);
    }
}

/// See [`RemoveImagesOnDrop`]; `prefix` ends with `/` (a project's repositories: `shop-x/`).
#[allow(dead_code)]
pub fn remove_images(prefix: &str) {
    let name = format!("{REGISTRY}/{prefix}");
    let listed = Command::new("docker").args(["images", "--format", "{{.Repository}}:{{.Tag}}"]).output();
    if let Ok(out) = listed {
        let images: Vec<String> =
            String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with(&name)).map(str::to_string).collect();
        // `--no-prune`: the untagged parents are the build cache other tests running at the same
        // time may be using (the layers up to the key label are the same in every project).
        if !images.is_empty() {
            let _ = Command::new("docker").args(["rmi", "--no-prune"]).args(&images).output();
        }
    }
    for repository in registry_repositories(prefix) {
        for tag in registry_json(&format!("/v2/{repository}/tags/list"))["tags"].as_array().into_iter().flatten() {
            let Some(tag) = tag.as_str() else { continue };
            // Deleting the manifest by digest also removes every tag that points at it.
            if let Some(digest) = manifest_digest(&repository, tag) {
                let _ = registry_request("DELETE", &format!("/v2/{repository}/manifests/{digest}"));
            }
        }
    }
}

fn registry_repositories(prefix: &str) -> Vec<String> {
    // The catalog comes in pages (the registry allows at most 1000 names per request).
    let mut out = Vec::new();
    let mut last = String::new();
    loop {
        let page = registry_json(&format!("/v2/_catalog?n=1000&last={last}"));
        let names: Vec<String> = page["repositories"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(str::to_string))
            .collect();
        out.extend(names.iter().filter(|r| r.starts_with(prefix)).cloned());
        match names.last() {
            Some(l) if names.len() == 1000 => last = l.clone(),
            _ => return out,
        }
    }
}

fn registry_json(path: &str) -> serde_json::Value {
    registry_request("GET", path).and_then(|(_, body)| serde_json::from_str(&body).ok()).unwrap_or_default()
}

fn manifest_digest(repository: &str, tag: &str) -> Option<String> {
    let (head, _) = registry_request("HEAD", &format!("/v2/{repository}/manifests/{tag}"))?;
    head.lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("docker-content-digest")))
        .map(|(_, v)| v.trim().to_string())
}

/// One plain HTTP/1.0 request to the loopback registry (no chunked replies): the head and the body.
fn registry_request(method: &str, path: &str) -> Option<(String, String)> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(REGISTRY).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).ok()?;
    let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
                  application/vnd.docker.distribution.manifest.v2+json, \
                  application/vnd.docker.distribution.manifest.list.v2+json";
    write!(s, "{method} {path} HTTP/1.0\r\nHost: {REGISTRY}\r\nAccept: {accept}\r\n\r\n").ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    let ok = head.split_whitespace().nth(1).is_some_and(|code| code.starts_with('2'));
    ok.then(|| (head.to_string(), body.to_string()))
}
