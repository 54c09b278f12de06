//! The registry client against the real registry on 127.0.0.1:5000 (presence, digests, order), against
//! nothing (unreachable endpoints) and against a scripted server (auth flows, errors, limits).

mod support;

use pipeline_executor::{RegistryClient, RegistryOptions};
use pipeline_planner::cache::{CacheState, ImageCache, ImageRef};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{FakeServer, Reply, basic, docker_config, push_image, registry_or_skip, unique_repository};

fn image(registry: &str, repository: &str, tag: &str) -> ImageRef {
    ImageRef { registry: registry.into(), repository: repository.into(), tag: tag.into() }
}

/// A client with no Docker config (anonymous) unless one is given.
fn client(config: Option<std::path::PathBuf>) -> RegistryClient {
    RegistryClient::new(RegistryOptions { docker_config: config, ..Default::default() }).expect("client")
}

fn unknown(state: &CacheState) -> &str {
    match state {
        CacheState::Unknown(why) => why,
        other => panic!("expected Unknown, got {other:?}"),
    }
}

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn present_and_absent_in_one_call() {
    if !registry_or_skip() {
        return;
    }
    let repo = unique_repository("app");
    let _cleanup = support::DeleteOnDrop(vec![repo.clone()]);
    let digest = push_image(&repo, &["v1".into()]);
    let states = client(None).lookup(&[
        image(support::REGISTRY, &repo, "v1"),
        image(support::REGISTRY, &repo, "no-such-tag"),
        image(support::REGISTRY, &unique_repository("never-pushed"), "v1"),
    ]);
    assert_eq!(states, vec![CacheState::Present { digest: Some(digest) }, CacheState::Absent, CacheState::Absent]);
}

#[test]
fn fifty_images_keep_their_order() {
    if !registry_or_skip() {
        return;
    }
    let (one, two) = (unique_repository("one"), unique_repository("two"));
    let _cleanup = support::DeleteOnDrop(vec![one.clone(), two.clone()]);
    let tags: Vec<String> = (0..25).map(|i| format!("t{i}")).collect();
    let (d1, d2) = (push_image(&one, &tags), push_image(&two, &tags[..10]));
    let mut images = Vec::new();
    let mut expected = Vec::new();
    for i in 0..50 {
        let repo = if i % 3 == 0 { &two } else { &one };
        let present = i % 2 == 0 && (repo == &one || i / 2 < 10);
        let tag = if present { format!("t{}", i / 2) } else { format!("missing{i}") };
        images.push(image(support::REGISTRY, repo, &tag));
        let digest = if repo == &one { &d1 } else { &d2 };
        expected.push(if present { CacheState::Present { digest: Some(digest.clone()) } } else { CacheState::Absent });
    }
    for concurrency in [8, 3] {
        let client =
            RegistryClient::new(RegistryOptions { concurrency, docker_config: None, ..Default::default() }).unwrap();
        assert_eq!(client.lookup(&images), expected, "concurrency {concurrency}");
    }
}

#[test]
fn nothing_listening_is_unknown_naming_the_endpoint_and_fast() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let host = format!("127.0.0.1:{port}");
    let images: Vec<_> = (0..20).map(|i| image(&host, "shop/api", &format!("t{i}"))).collect();
    let started = Instant::now();
    let states = client(None).lookup(&images);
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    for state in &states {
        let why = unknown(state);
        assert!(why.starts_with(&format!("cannot reach http://{host}: ")), "{why}");
        assert!(why.to_lowercase().contains("refused"), "{why}");
    }
}

#[test]
fn other_hosts_use_https_unless_marked_insecure() {
    let images = [image("registry.invalid", "shop/api", "t")];
    let quick = |insecure_hosts: Vec<String>| {
        let options = RegistryOptions {
            timeout: Duration::from_secs(2),
            insecure_hosts,
            docker_config: None,
            ..Default::default()
        };
        RegistryClient::new(options).unwrap().lookup(&images)
    };
    let why = quick(vec![]);
    assert!(unknown(&why[0]).starts_with("cannot reach https://registry.invalid: "), "{why:?}");
    let why = quick(vec!["registry.invalid".into()]);
    assert!(unknown(&why[0]).starts_with("cannot reach http://registry.invalid: "), "{why:?}");
}

#[test]
fn server_errors_are_unknown_with_the_status() {
    let server = FakeServer::start(|req, _| match req.path.as_str() {
        "/v2/" => Reply::status(200),
        "/v2/shop/api/manifests/boom" => Reply::status(500),
        "/v2/shop/api/manifests/teapot" => Reply::status(418),
        _ => Reply::status(200).header("Docker-Content-Digest", DIGEST),
    });
    let h = &server.host;
    let states = client(None).lookup(&[
        image(h, "shop/api", "boom"),
        image(h, "shop/api", "teapot"),
        image(h, "shop/api", "ok"),
    ]);
    assert_eq!(states[0], CacheState::Unknown(format!("{h}: 500 Internal Server Error")));
    assert_eq!(states[1], CacheState::Unknown(format!("{h}: 418 I'm a teapot")));
    assert_eq!(states[2], CacheState::Present { digest: Some(DIGEST.into()) });
    let head = server.requests().into_iter().find(|r| r.method == "HEAD").expect("a HEAD request");
    let accept = head.header("accept").unwrap_or_default();
    for media_type in [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ] {
        assert!(accept.contains(media_type), "{accept}");
    }
}

#[test]
fn a_silent_server_times_out_per_request() {
    let server = FakeServer::start(|req, _| {
        if req.path != "/v2/" {
            std::thread::sleep(Duration::from_secs(5));
        }
        Reply::status(200)
    });
    let options = RegistryOptions { timeout: Duration::from_millis(300), docker_config: None, ..Default::default() };
    let started = Instant::now();
    let states =
        RegistryClient::new(options).unwrap().lookup(&[image(&server.host, "a", "1"), image(&server.host, "b", "2")]);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    for state in &states {
        let why = unknown(state);
        assert_eq!(why, format!("cannot reach http://{}: no answer within 300ms", server.host));
    }
}

#[test]
fn concurrency_is_bounded() {
    let (now, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (n, p) = (Arc::clone(&now), Arc::clone(&peak));
    let server = FakeServer::start(move |_, _| {
        let current = n.fetch_add(1, Ordering::SeqCst) + 1;
        p.fetch_max(current, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(40));
        n.fetch_sub(1, Ordering::SeqCst);
        Reply::status(404)
    });
    let images: Vec<_> = (0..24).map(|i| image(&server.host, &format!("r{}", i % 4), &format!("t{i}"))).collect();
    let options = RegistryOptions { concurrency: 3, docker_config: None, ..Default::default() };
    let states = RegistryClient::new(options).unwrap().lookup(&images);
    assert!(states.iter().all(|s| *s == CacheState::Absent), "{states:?}");
    let peak = peak.load(Ordering::SeqCst);
    assert!((2..=3).contains(&peak), "peak of {peak} requests in flight");
}

/// A registry that wants Basic credentials alice:s3cret.
fn basic_registry() -> FakeServer {
    FakeServer::start(|req, _| {
        let challenge = |r: Reply| r.header("WWW-Authenticate", r#"Basic realm="fake registry""#);
        if req.header("authorization") != Some(&basic("alice", "s3cret")) {
            return challenge(Reply::status(401));
        }
        match req.path.rsplit('/').next() {
            Some("v1") => Reply::status(200).header("Docker-Content-Digest", DIGEST),
            Some("") => Reply::status(200),
            _ => Reply::status(404),
        }
    })
}

#[test]
fn basic_auth_with_the_auths_entry() {
    let server = basic_registry();
    let h = &server.host;
    for entry in [
        format!(r#"{{"auth":"{}"}}"#, &basic("alice", "s3cret")["Basic ".len()..]),
        r#"{"username":"alice","password":"s3cret"}"#.to_owned(),
    ] {
        let (_dir, path) = docker_config(&format!(r#"{{"auths":{{"{h}":{entry}}}}}"#));
        let states = client(Some(path)).lookup(&[
            image(h, "shop/api", "v1"),
            image(h, "shop/api", "v2"),
            image(h, "shop/web", "v1"),
        ]);
        assert_eq!(
            states,
            [
                CacheState::Present { digest: Some(DIGEST.into()) },
                CacheState::Absent,
                CacheState::Present { digest: Some(DIGEST.into()) }
            ],
            "{entry}"
        );
    }
    // Per call: one anonymous /v2/ probe; after that every request carries the credentials.
    let requests = server.requests();
    let anonymous = requests.iter().filter(|r| r.header("authorization").is_none()).count();
    assert_eq!(anonymous, 2, "{requests:#?}");
    assert!(
        requests
            .iter()
            .filter(|r| r.method == "HEAD")
            .all(|r| r.header("authorization") == Some(&basic("alice", "s3cret")))
    );
}

#[test]
fn basic_auth_refusal_says_what_was_tried() {
    let server = basic_registry();
    let h = &server.host;
    let (_dir, path) = docker_config(&format!(r#"{{"auths":{{"{h}":{{"username":"alice","password":"wrong"}}}}}}"#));
    let why = client(Some(path.clone())).lookup(&[image(h, "shop/api", "v1")]);
    assert_eq!(
        unknown(&why[0]),
        format!(
            "{h}: 401 Unauthorized for shop/api with user alice (auths in {}); \
             run `docker login {h}` with an account that can pull it",
            path.display()
        )
    );
    let (_dir, path) = docker_config(r#"{"auths":{}}"#);
    let why = client(Some(path.clone())).lookup(&[image(h, "shop/api", "v1")]);
    let why = unknown(&why[0]);
    assert!(why.contains(&format!("no credentials (none for {h} in {})", path.display())), "{why}");
    assert!(why.contains(&format!("docker login {h}")), "{why}");
}

/// A registry with a token service at /token: tokens for alice:s3cret or anonymous ones, per scope.
fn bearer_registry() -> FakeServer {
    FakeServer::start(|req, base| {
        let challenge = |r: Reply, scope: Option<&str>| {
            let scope = scope.map(|s| format!(r#","scope="{s}""#)).unwrap_or_default();
            r.header("WWW-Authenticate", &format!(r#"Bearer realm="{base}/token",service="fake-registry"{scope}"#))
        };
        if req.path == "/token" {
            let who = match req.header("authorization") {
                Some(h) if h == basic("alice", "s3cret") => "alice",
                Some(_) => return Reply::status(401),
                None => "anonymous",
            };
            let scope = req.param("scope").unwrap_or_default();
            let key = if who == "alice" { "token" } else { "access_token" };
            return Reply::status(200).json(&format!(r#"{{"{key}":"{who}|{scope}"}}"#));
        }
        if req.path == "/v2/" {
            return challenge(Reply::status(401), None);
        }
        let Some(rest) = req.path.strip_prefix("/v2/") else { return Reply::status(404) };
        let Some((repo, tag)) = rest.split_once("/manifests/") else { return Reply::status(404) };
        let scope = format!("repository:{repo}:pull");
        let authorized = match req.header("authorization").and_then(|h| h.strip_prefix("Bearer ")) {
            Some(token) => {
                token == format!("alice|{scope}")
                    || (repo.starts_with("public/") && token == format!("anonymous|{scope}"))
            }
            None => false,
        };
        match (authorized, tag) {
            (false, _) => challenge(Reply::status(401), Some(&scope)),
            (true, "v1") => Reply::status(200).header("Docker-Content-Digest", DIGEST),
            (true, _) => Reply::status(404),
        }
    })
}

#[test]
fn bearer_token_once_per_repository() {
    let server = bearer_registry();
    let h = &server.host;
    let (_dir, path) = docker_config(&format!(r#"{{"auths":{{"{h}":{{"username":"alice","password":"s3cret"}}}}}}"#));
    let mut images = Vec::new();
    for i in 0..12 {
        images.push(image(h, if i % 2 == 0 { "team/app" } else { "team/db" }, if i < 4 { "v1" } else { "v9" }));
    }
    let states = client(Some(path)).lookup(&images);
    for (i, state) in states.iter().enumerate() {
        let expected = if i < 4 { CacheState::Present { digest: Some(DIGEST.into()) } } else { CacheState::Absent };
        assert_eq!(state, &expected, "image {i}");
    }
    let requests = server.requests();
    let tokens: Vec<_> = requests.iter().filter(|r| r.path == "/token").collect();
    assert_eq!(tokens.len(), 2, "one token per repository: {tokens:#?}");
    for t in &tokens {
        assert_eq!(t.header("authorization"), Some(basic("alice", "s3cret").as_str()));
        assert_eq!(t.param("service"), Some("fake-registry"));
    }
    let mut scopes: Vec<_> = tokens.iter().filter_map(|t| t.param("scope")).collect();
    scopes.sort();
    assert_eq!(scopes, ["repository:team/app:pull", "repository:team/db:pull"]);
    assert_eq!(requests.iter().filter(|r| r.method == "HEAD").count(), 12, "no HEAD was refused and retried");
}

#[test]
fn bearer_anonymous_without_credentials() {
    let server = bearer_registry();
    let h = &server.host;
    let states = client(None).lookup(&[image(h, "public/tool", "v1"), image(h, "private/thing", "v1")]);
    assert_eq!(states[0], CacheState::Present { digest: Some(DIGEST.into()) });
    let why = unknown(&states[1]);
    assert!(
        why.starts_with(&format!(
            "{h}: 401 Unauthorized for private/thing with a token for repository:private/thing:pull (anonymous"
        )),
        "{why}"
    );
    assert!(why.ends_with(&format!("run `docker login {h}` with an account that can pull it")), "{why}");
    let requests = server.requests();
    assert!(requests.iter().filter(|r| r.path == "/token").all(|r| r.header("authorization").is_none()));
}

#[test]
fn bearer_token_refused_names_the_token_service() {
    let server = bearer_registry();
    let h = &server.host;
    let (_dir, path) = docker_config(&format!(r#"{{"auths":{{"{h}":{{"username":"alice","password":"nope"}}}}}}"#));
    let states = client(Some(path.clone())).lookup(&[image(h, "team/app", "v1"), image(h, "team/app", "v2")]);
    for state in &states {
        assert_eq!(
            unknown(state),
            format!(
                "{h}: the token service http://{h}/token answered 401 Unauthorized for repository:team/app:pull \
                 with user alice (auths in {}); run `docker login {h}`",
                path.display()
            )
        );
    }
    assert_eq!(server.requests().iter().filter(|r| r.path == "/token").count(), 1, "refusal is not retried per image");
}

/// Some registries answer `/v2/` without a challenge and refuse only the repository: authenticate then,
/// once per repository.
#[test]
fn a_refused_head_authenticates_once_per_repository() {
    let server = FakeServer::start(|req, base| {
        if req.path == "/token" {
            return Reply::status(200).json(&format!(r#"{{"token":"t|{}"}}"#, req.param("scope").unwrap_or_default()));
        }
        let Some((repo, _)) = req.path.strip_prefix("/v2/").and_then(|p| p.split_once("/manifests/")) else {
            return Reply::status(200);
        };
        let scope = format!("repository:{repo}:pull");
        if req.header("authorization") == Some(&format!("Bearer t|{scope}")) {
            return Reply::status(200).header("Docker-Content-Digest", DIGEST);
        }
        let challenge = format!(r#"Bearer realm="{base}/token",service="svc",scope="{scope}""#);
        Reply::status(401).header("WWW-Authenticate", &challenge)
    });
    let h = &server.host;
    let images: Vec<_> = (0..6).map(|i| image(h, if i < 3 { "x/one" } else { "x/two" }, &format!("v{i}"))).collect();
    let options = RegistryOptions { concurrency: 2, docker_config: None, ..Default::default() };
    let states = RegistryClient::new(options).unwrap().lookup(&images);
    assert!(states.iter().all(|s| *s == CacheState::Present { digest: Some(DIGEST.into()) }), "{states:?}");
    assert_eq!(server.requests().iter().filter(|r| r.path == "/token").count(), 2);
}

#[test]
fn identity_token_uses_the_oauth2_refresh_grant() {
    let server = FakeServer::start(|req, base| match req.path.as_str() {
        "/token" if req.method == "POST" && req.form("refresh_token").as_deref() == Some("refresh-me") => {
            Reply::status(200)
                .json(&format!(r#"{{"access_token":"from-refresh|{}"}}"#, req.form("scope").unwrap_or_default()))
        }
        "/token" => Reply::status(401),
        _ if req.header("authorization") == Some("Bearer from-refresh|repository:team/app:pull") => Reply::status(404),
        _ => Reply::status(401).header("WWW-Authenticate", &format!(r#"Bearer realm="{base}/token",service="svc""#)),
    });
    let h = &server.host;
    let (_dir, path) = docker_config(&format!(r#"{{"auths":{{"{h}":{{"identitytoken":"refresh-me"}}}}}}"#));
    assert_eq!(client(Some(path)).lookup(&[image(h, "team/app", "v1")]), [CacheState::Absent]);
    let post = server.requests().into_iter().find(|r| r.path == "/token").expect("a token request");
    assert_eq!(post.form("grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(post.form("service").as_deref(), Some("svc"));
}

#[test]
fn credentials_for_reads_the_configured_file() {
    let (_dir, path) = docker_config(r#"{"auths":{"mirror.example:5000":{"username":"ci","password":"pw"}}}"#);
    let client = client(Some(path));
    let creds = client.credentials_for("mirror.example:5000").unwrap().expect("credentials");
    assert_eq!(creds.basic(), Some(("ci", "pw")));
    assert_eq!(client.credentials_for("elsewhere").unwrap(), None);
}

#[test]
fn invalid_references_are_unknown_without_a_request() {
    let server = FakeServer::start(|_, _| Reply::status(200));
    let states = client(None).lookup(&[image(&server.host, "Shop/API", "v1"), image(&server.host, "shop", "a?b")]);
    assert!(unknown(&states[0]).contains("is not a repository name"), "{states:?}");
    assert!(unknown(&states[1]).contains("is not a tag"), "{states:?}");
    assert!(server.requests().is_empty());
}

/// The planner may call `lookup` from async code (a current-thread runtime even): no panic, and the
/// client may be dropped there too.
#[tokio::test]
async fn lookup_inside_a_current_thread_runtime() {
    let server = FakeServer::start(|_, _| Reply::status(200).header("Docker-Content-Digest", DIGEST));
    let client = client(None);
    let states = client.lookup(&[image(&server.host, "shop/api", "v1")]);
    assert_eq!(states, [CacheState::Present { digest: Some(DIGEST.into()) }]);
    drop(client);
}
