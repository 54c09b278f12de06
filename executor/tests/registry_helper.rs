//! Credential helpers (`credsStore`/`credHelpers`) found on PATH. In a test binary of its own with a
//! single test, because PATH is process-wide: changing it here cannot race another test.

mod support;

use pipeline_executor::{RegistryClient, RegistryOptions};
use pipeline_planner::cache::{CacheState, ImageCache, ImageRef};
use std::os::unix::fs::PermissionsExt as _;
use support::{FakeServer, Reply, basic, docker_config};

const DIGEST: &str = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

#[test]
fn credential_helpers_on_path() {
    let bin = tempfile::tempdir().unwrap();
    let log = bin.path().join("helper.log");
    let script = format!(
        r#"#!/bin/sh
[ "$1" = get ] || exit 2
read -r server
printf '%s\n' "$server" >> '{log}'
case "$server" in
  127.0.0.1:*) printf '{{"ServerURL":"%s","Username":"bob","Secret":"hunter2"}}\n' "$server" ;;
  tokens.example) printf '{{"ServerURL":"%s","Username":"<token>","Secret":"refresh"}}\n' "$server" ;;
  broken.example) echo "gpg: decryption failed" >&2; exit 3 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"#,
        log = log.display()
    );
    let helper = bin.path().join("docker-credential-test");
    std::fs::write(&helper, script).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.path().to_owned()];
    dirs.extend(std::env::split_paths(&path));
    // SAFETY: the only test in this binary, so no other thread reads the environment meanwhile.
    unsafe { std::env::set_var("PATH", std::env::join_paths(dirs).unwrap()) };

    let server = FakeServer::start(|req, _| {
        if req.header("authorization") == Some(&basic("bob", "hunter2")) {
            Reply::status(200).header("Docker-Content-Digest", DIGEST)
        } else {
            Reply::status(401).header("WWW-Authenticate", r#"Basic realm="helper test""#)
        }
    });
    let h = server.host.clone();
    let image = |repo: &str, tag: &str| ImageRef { registry: h.clone(), repository: repo.into(), tag: tag.into() };

    // credsStore: the helper answers for every host; asked once per lookup, however many images.
    let (_dir, config) =
        docker_config(r#"{"credsStore":"test","auths":{"plain.example":{"username":"u","password":"p"}}}"#);
    let client = RegistryClient::new(RegistryOptions { docker_config: Some(config), ..Default::default() }).unwrap();
    let states = client.lookup(&[image("a/one", "v1"), image("a/one", "v2"), image("b/two", "v1")]);
    assert!(states.iter().all(|s| *s == CacheState::Present { digest: Some(DIGEST.into()) }), "{states:?}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), format!("{h}\n"));

    let creds = client.credentials_for(&h).unwrap().expect("credentials from the helper");
    assert_eq!((creds.basic(), creds.source.as_str()), (Some(("bob", "hunter2")), "docker-credential-test"));
    let token = client.credentials_for("tokens.example").unwrap().expect("identity token");
    assert_eq!(token.identity_token.as_deref(), Some("refresh"));
    // Nothing in the helper: the auths entry still counts.
    assert_eq!(client.credentials_for("plain.example").unwrap().and_then(|c| c.username), Some("u".into()));
    assert_eq!(client.credentials_for("nowhere.example").unwrap(), None);
    let err = client.credentials_for("broken.example").unwrap_err().to_string();
    assert!(
        err.contains("docker-credential-test failed for broken.example") && err.contains("gpg: decryption failed"),
        "{err}"
    );

    // credHelpers: only for the named host.
    let (_dir, config) = docker_config(&format!(r#"{{"credHelpers":{{"{h}":"test"}}}}"#));
    let client = RegistryClient::new(RegistryOptions { docker_config: Some(config), ..Default::default() }).unwrap();
    assert_eq!(client.lookup(&[image("c/three", "v1")]), [CacheState::Present { digest: Some(DIGEST.into()) }]);
    assert_eq!(client.credentials_for("tokens.example").unwrap(), None, "no helper for that host");

    // A helper that is not installed: Unknown, naming it.
    let (_dir, config) = docker_config(r#"{"credsStore":"not-installed"}"#);
    let client = RegistryClient::new(RegistryOptions { docker_config: Some(config), ..Default::default() }).unwrap();
    let states = client.lookup(&[image("a/one", "v1")]);
    let CacheState::Unknown(why) = &states[0] else { panic!("{states:?}") };
    assert_eq!(
        why,
        &format!("{h}: credential helper docker-credential-not-installed failed for {h}: it is not on PATH")
    );
}
