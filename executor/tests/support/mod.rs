//! Test support: a tiny scripted HTTP server (one thread per connection, one request per connection)
//! that records what it was sent, and helpers for the real registry on 127.0.0.1:5000.

#![allow(dead_code)] // each test binary uses a different part

#[path = "../../../tests/support/skip.rs"]
pub mod skip;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The real registry the tests push to.
pub const REGISTRY: &str = "127.0.0.1:5000";

/// A request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn form(&self, name: &str) -> Option<String> {
        let url = reqwest::Url::parse(&format!("http://x/?{}", self.body)).ok()?;
        url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }
}

/// What the fake server answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply { status, headers: Vec::new(), body: String::new() }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json(mut self, body: &str) -> Reply {
        self.body = body.to_owned();
        self.header("Content-Type", "application/json")
    }
}

type Handler = dyn Fn(&Request, &str) -> Reply + Send + Sync;

/// A scripted HTTP/1.1 server on 127.0.0.1; lives until the test process ends.
pub struct FakeServer {
    /// `127.0.0.1:<port>`: the registry host for image references.
    pub host: String,
    log: Arc<Mutex<Vec<Request>>>,
}

impl FakeServer {
    /// Serve `handler(request, "http://127.0.0.1:<port>")` for every request.
    pub fn start(handler: impl Fn(&Request, &str) -> Reply + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a test port");
        let host = listener.local_addr().expect("local address").to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (base, thread_log) = (format!("http://{host}"), Arc::clone(&log));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (handler, log, base) = (Arc::clone(&handler), Arc::clone(&thread_log), base.clone());
                std::thread::spawn(move || serve(stream, &*handler, &log, &base));
            }
        });
        FakeServer { host, log }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Request>>, base: &str) {
    let Some(request) = read_request(&stream) else { return };
    if let Ok(mut log) = log.lock() {
        log.push(request.clone());
    }
    let reply = handler(&request, base);
    let reason = reqwest::StatusCode::from_u16(reply.status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Other");
    let mut out =
        format!("HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n", reply.status, reply.body.len());
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    if request.method != "HEAD" {
        out.push_str(&reply.body);
    }
    let mut stream = stream;
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.flush();
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let len = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    let url = reqwest::Url::parse(&format!("http://x{target}")).ok()?;
    let query = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    Some(Request {
        method,
        path: url.path().to_owned(),
        query,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

pub fn basic(user: &str, pass: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
}

/// A temp dir holding `config.json` with `json`; keep the dir alive while the path is used.
pub fn docker_config(json: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.json");
    std::fs::write(&path, json).expect("write config.json");
    (dir, path)
}

/// Whether the registry on 127.0.0.1:5000 answers; when it does not, print the skip line, or fail when
/// `PIPELINE_REQUIRE_DOCKER=1`.
pub fn registry_or_skip() -> bool {
    let up = TcpStream::connect_timeout(&REGISTRY.parse().expect("address"), Duration::from_secs(1)).is_ok()
        && runtime().block_on(async {
            let r = reqwest::Client::new().get(format!("http://{REGISTRY}/v2/")).send().await;
            r.is_ok_and(|r| r.status().is_success())
        });
    if !up {
        skip::skip(skip::DOCKER, &format!("no registry answers on {REGISTRY} (scripts/start-services starts one)"));
    }
    up
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("test runtime")
}

/// A repository name no other test run uses.
pub fn unique_repository(name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("pipeline-test/{}-{nanos}/{name}", std::process::id())
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Deletes, when dropped, every tag of these repositories in the real registry, so that test runs
/// leave no image behind. Best effort: a failed clean-up never fails a test.
pub struct DeleteOnDrop(pub Vec<String>);

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        for repository in &self.0 {
            delete_repository(repository);
        }
    }
}

/// Delete every manifest (and so every tag) of `repository` in the real registry.
pub fn delete_repository(repository: &str) {
    runtime().block_on(async {
        let http = reqwest::Client::new();
        let base = format!("http://{REGISTRY}/v2/{repository}");
        let Ok(list) = http.get(format!("{base}/tags/list")).send().await else { return };
        let body = list.text().await.unwrap_or_default();
        let tags: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
        let mut digests = std::collections::BTreeSet::new();
        for tag in tags["tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str()) {
            let head = http.head(format!("{base}/manifests/{tag}")).header("Accept", accept).send().await;
            if let Some(d) =
                head.ok().and_then(|r| r.headers().get("docker-content-digest")?.to_str().ok().map(str::to_string))
            {
                digests.insert(d);
            }
        }
        // Deleting a manifest by digest also removes every tag that points at it.
        for d in digests {
            let _ = http.delete(format!("{base}/manifests/{d}")).send().await;
        }
    })
}

/// Push a one-layer image to the real registry under every tag in `tags` (blob uploads, then the
/// manifest); returns the manifest digest.
pub fn push_image(repository: &str, tags: &[String]) -> String {
    runtime().block_on(async {
        let http = reqwest::Client::new();
        let base = format!("http://{REGISTRY}");
        let layer = format!("layer of {repository}").into_bytes();
        let layer_digest = sha256(&layer);
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
        })
        .to_string()
        .into_bytes();
        let config_digest = sha256(&config);
        for (blob, digest) in [(&layer, &layer_digest), (&config, &config_digest)] {
            let started =
                http.post(format!("{base}/v2/{repository}/blobs/uploads/")).send().await.expect("start upload");
            assert_eq!(started.status(), 202, "start upload");
            let location = started.headers()["location"].to_str().expect("location").to_owned();
            let mut url = reqwest::Url::parse(&base).expect("base").join(&location).expect("upload url");
            url.query_pairs_mut().append_pair("digest", digest);
            let put = http
                .put(url)
                .header("Content-Type", "application/octet-stream")
                .body(blob.clone())
                .send()
                .await
                .expect("upload blob");
            assert_eq!(put.status(), 201, "upload blob");
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": layer.len(),
            }],
        })
        .to_string();
        let digest = sha256(manifest.as_bytes());
        for tag in tags {
            let put = http
                .put(format!("{base}/v2/{repository}/manifests/{tag}"))
                .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                .body(manifest.clone())
                .send()
                .await
                .expect("put manifest");
            assert_eq!(put.status(), 201, "put manifest {tag}");
            assert_eq!(put.headers()["docker-content-digest"].to_str().ok(), Some(digest.as_str()));
        }
        digest
    })
}
