//! The engine's reverse proxy: one Caddy container per engine (`pipeline-proxy`) that serves the public
//! endpoints of every environment deployed there, on stable host ports (80 and 443 unless
//! `std.docker { proxy = { ... }; }` says otherwise).
//!
//! Routes are derived, never stored apart: they are the endpoints in the specs of the serving containers
//! on the engine (candidates of an update excluded), so any run computes the whole configuration and
//! loads it (`caddy reload`, which Caddy applies without dropping a connection). A run loads, then
//! reads the routes again and loads again if another run changed them meanwhile, so two runs that
//! deploy at once end with both their routes.
//!
//! A route dials `<service>.<project>-<env>:<port>`: a network alias every serving container of the
//! service has on its environment's network (the proxy joins every such network). Which containers
//! answer to it is the update's switch (see [`super::deploy`]), so routes do not change on a deploy;
//! each request resolves the name again (no keep-alive to upstreams), and a request that cannot
//! connect, or a GET that fails, is tried again for a few seconds: a replica that stops while a
//! request is on its way does not fail the request.
//!
//! Hosts under `localhost` and IP addresses are served over plain HTTP; other hosts get certificates
//! the way Caddy gets them (ACME), with HTTP redirected to HTTPS.

use super::labels::{ENVIRONMENT, PROJECT, SERVICE, SPEC};
use super::{DockerError, status};
use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType, PortBinding, RestartPolicy};
use bollard::query_parameters::{CreateContainerOptions, ListContainersOptions, RemoveContainerOptions};
use futures_util::StreamExt as _;
use pipeline_planner::DeploySpec;
use pipeline_planner::model::Proxy;
use serde_json::{Value as Json, json};
use std::collections::HashMap;
use std::time::Duration;

/// The proxy container's name: one per engine.
pub const NAME: &str = "pipeline-proxy";
/// Its certificates and ACME account, kept across replacements of the container.
pub const DATA_VOLUME: &str = "pipeline-proxy-data";
/// The label holding the settings the proxy was made with (JSON of [`Proxy`]).
const SETTINGS: &str = "pipeline.proxy";
const CONFIG: &str = "/etc/pipeline/caddy.json";

/// The name a service's serving containers answer to for the proxy: unique on the engine (the proxy is
/// on every environment's network), unlike the service's own name.
pub(crate) fn upstream_name(network: &str, service: &str) -> String {
    format!("{service}.{network}")
}

/// One host and path prefix, and where its requests go.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Route {
    pub host: String,
    pub path: String,
    /// `web.shop-staging:8080`.
    pub dial: String,
    /// The environment's network, which the proxy must be on.
    pub network: String,
    /// `shop/staging service web`, for messages.
    pub owner: String,
    /// Served over plain HTTP (`*.localhost`, IP addresses).
    pub local: bool,
}

/// The routes of every serving container on the engine, sorted; one route per host and path (the first
/// owner, by name, when two environments claim the same one: [`taken`] refuses that before a deploy).
pub async fn routes(docker: &Docker) -> Result<Vec<Route>, DockerError> {
    let options = ListContainersOptions {
        all: false,
        filters: Some(HashMap::from([("label".to_string(), vec![SPEC.to_string()])])),
        ..Default::default()
    };
    let list = docker.list_containers(Some(options)).await.map_err(|e| DockerError::request("list containers", &e))?;
    let mut found = Vec::new();
    for c in list {
        if c.names.iter().flatten().any(|n| n.ends_with(super::container::CANDIDATE)) {
            continue;
        }
        let labels = c.labels.unwrap_or_default();
        let (Some(project), Some(env), Some(service)) =
            (labels.get(PROJECT), labels.get(ENVIRONMENT), labels.get(SERVICE))
        else {
            continue;
        };
        let Some(spec) = super::live::spec_of(&labels) else {
            continue;
        };
        let network = format!("{project}-{env}");
        for e in &spec.endpoints {
            found.push(Route {
                host: e.host.clone(),
                path: e.path.clone(),
                dial: format!("{}:{}", upstream_name(&network, service), e.port),
                network: network.clone(),
                owner: format!("{project}/{env} service {service}"),
                local: e.is_local(),
            });
        }
    }
    found.sort_by(|a, b| (&a.host, &a.path, &a.owner).cmp(&(&b.host, &b.path, &b.owner)));
    found.dedup_by(|b, a| a.host == b.host && a.path == b.path);
    Ok(found)
}

/// The owner of a route another environment (or service) already serves at one of `spec`'s endpoints.
pub(crate) fn taken(
    routes: &[Route],
    spec: &DeploySpec,
    owner_prefix: &str,
    service: &str,
) -> Option<(String, String)> {
    let me = format!("{owner_prefix} service {service}");
    spec.endpoints.iter().find_map(|e| {
        routes
            .iter()
            .find(|r| r.host == e.host && r.path == e.path && r.owner != me)
            .map(|r| (e.address(), r.owner.clone()))
    })
}

/// Caddy's JSON configuration for `routes`: a plain-HTTP server for local hosts (and the redirects of the
/// others), an HTTPS server for hosts that are real domains, longer path prefixes first, and 404 for
/// anything else.
pub fn config(settings: &Proxy, routes: &[Route]) -> Json {
    let mut ordered: Vec<&Route> = routes.iter().collect();
    // Within a host, the longest prefix wins (as an Ingress does).
    ordered.sort_by(|a, b| a.host.cmp(&b.host).then(b.path.len().cmp(&a.path.len())).then(a.path.cmp(&b.path)));
    let route = |r: &Route| {
        let mut matcher = json!({ "host": [r.host] });
        if r.path != "/" {
            matcher["path"] = json!([r.path, format!("{}/*", r.path)]);
        }
        json!({
            "match": [matcher],
            "handle": [{
                "handler": "reverse_proxy",
                "upstreams": [{ "dial": r.dial }],
                "transport": { "protocol": "http", "keep_alive": { "enabled": false } },
                "load_balancing": {
                    "try_duration": "10s",
                    "try_interval": "100ms",
                    "retry_match": [{ "method": ["GET", "HEAD", "OPTIONS"] }]
                }
            }],
            "terminal": true
        })
    };
    let not_found = json!({
        "handle": [{ "handler": "static_response", "status_code": 404,
                     "body": "no public endpoint at this host and path (pipeline-proxy)\n" }]
    });
    let mut plain: Vec<Json> = ordered.iter().filter(|r| r.local).map(|r| route(r)).collect();
    // Plain HTTP for a real domain goes to HTTPS, on the proxy's HTTPS port (Caddy's own redirects would
    // leave out a port other than 443).
    let mut domains: Vec<&str> = ordered.iter().filter(|r| !r.local).map(|r| r.host.as_str()).collect();
    domains.dedup();
    if !domains.is_empty() {
        let port = if settings.https == 443 { String::new() } else { format!(":{}", settings.https) };
        plain.push(json!({
            "match": [{ "host": domains }],
            "handle": [{ "handler": "static_response", "status_code": 308,
                         "headers": { "Location": [format!("https://{{http.request.host}}{port}{{http.request.uri}}")] } }],
            "terminal": true
        }));
    }
    plain.push(not_found);
    let local_hosts: Vec<&str> = {
        let mut h: Vec<&str> = ordered.iter().filter(|r| r.local).map(|r| r.host.as_str()).collect();
        h.dedup();
        h
    };
    let mut servers = serde_json::Map::new();
    servers.insert(
        "http".into(),
        json!({
            "listen": [format!(":{}", settings.http)],
            "routes": plain,
            "automatic_https": { "skip": local_hosts }
        }),
    );
    let secure: Vec<Json> = ordered.iter().filter(|r| !r.local).map(|r| route(r)).collect();
    if !secure.is_empty() {
        servers.insert(
            "https".into(),
            json!({
                "listen": [format!(":{}", settings.https)],
                "routes": secure,
                "automatic_https": { "disable_redirects": true }
            }),
        );
    }
    json!({
        "admin": { "listen": "localhost:2019" },
        "apps": { "http": { "http_port": settings.http, "https_port": settings.https, "servers": servers } }
    })
}

/// Make the engine's proxy serve what the engine runs now: create or replace it as `wanted` says (`None`:
/// keep the settings it runs with), join it to the environments' networks, load the routes; remove it
/// when no endpoint is left. `note` hears what it does.
pub async fn sync(
    docker: &Docker,
    wanted: Option<&Proxy>,
    registry: &std::sync::Arc<crate::registry::RegistryClient>,
    note: &(dyn Fn(String) + Send + Sync),
) -> Result<(), DockerError> {
    let settings = match wanted {
        Some(p) => p.clone(),
        None => current(docker).await?.and_then(|(s, _)| s).unwrap_or_default(),
    };
    let mut loaded: Option<Vec<Route>> = None;
    for _ in 0..5 {
        let routes = routes(docker).await?;
        if loaded.as_ref() == Some(&routes) {
            return Ok(());
        }
        if routes.is_empty() {
            if current(docker).await?.is_some() {
                note(format!("removing {NAME}: no public endpoint is left on this engine"));
                remove(docker).await?;
            }
            return Ok(());
        }
        let config = serde_json::to_vec_pretty(&config(&settings, &routes)).unwrap_or_default();
        let created = ensure(docker, &settings, &config, registry, note).await?;
        for network in routes.iter().map(|r| r.network.as_str()).collect::<std::collections::BTreeSet<_>>() {
            join(docker, network).await?;
        }
        if !created {
            load(docker, &config).await?;
        }
        loaded = Some(routes);
    }
    Ok(())
}

/// The proxy's settings, when it exists.
async fn current(docker: &Docker) -> Result<Option<(Option<Proxy>, bool)>, DockerError> {
    match docker.inspect_container(NAME, None::<bollard::query_parameters::InspectContainerOptions>).await {
        Ok(c) => {
            let settings = c
                .config
                .and_then(|c| c.labels)
                .and_then(|l| l.get(SETTINGS).cloned())
                .and_then(|s| serde_json::from_str::<Proxy>(&s).ok());
            let running = c.state.and_then(|s| s.running).unwrap_or(false);
            Ok(Some((settings, running)))
        }
        Err(e) if status(&e) == Some(404) => Ok(None),
        Err(e) => Err(DockerError::request(&format!("inspect {NAME}"), &e)),
    }
}

/// Have the proxy run with `settings`; a new one starts with `config`. Whether it was created now.
async fn ensure(
    docker: &Docker,
    settings: &Proxy,
    config: &[u8],
    registry: &std::sync::Arc<crate::registry::RegistryClient>,
    note: &(dyn Fn(String) + Send + Sync),
) -> Result<bool, DockerError> {
    match current(docker).await? {
        Some((Some(s), true)) if s == *settings => return Ok(false),
        Some((Some(s), running)) if s == *settings => {
            if !running {
                start(docker, settings).await?;
            }
            return Ok(false);
        }
        Some(_) => {
            note(format!("replacing {NAME} (its ports or image changed)"));
            remove(docker).await?;
        }
        None => note(format!("starting {NAME} on ports {} and {}", settings.http, settings.https)),
    }
    super::deploy::ensure_image(docker, registry, &settings.image).await?;
    let port = |p: u16| {
        (
            format!("{p}/tcp"),
            Some(vec![PortBinding { host_ip: Some("0.0.0.0".into()), host_port: Some(p.to_string()) }]),
        )
    };
    let body = ContainerCreateBody {
        image: Some(settings.image.clone()),
        entrypoint: Some(vec!["caddy".into()]),
        cmd: Some(vec!["run".into(), "--config".into(), CONFIG.into()]),
        env: Some(vec!["XDG_DATA_HOME=/data".into(), "XDG_CONFIG_HOME=/config".into()]),
        labels: Some(HashMap::from([(SETTINGS.to_string(), serde_json::to_string(settings).unwrap_or_default())])),
        exposed_ports: Some(vec![format!("{}/tcp", settings.http), format!("{}/tcp", settings.https)]),
        host_config: Some(HostConfig {
            port_bindings: Some(HashMap::from([port(settings.http), port(settings.https)])),
            mounts: Some(vec![Mount {
                target: Some("/data".into()),
                source: Some(DATA_VOLUME.into()),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            }]),
            restart_policy: Some(RestartPolicy {
                name: Some(bollard::models::RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptions { name: Some(NAME.to_string()), platform: String::new() };
    match docker.create_container(Some(options), body).await {
        Ok(_) => {}
        // Another run made it at the same moment: use theirs once it runs.
        Err(e) if status(&e) == Some(409) => {
            for _ in 0..40 {
                if let Some((_, true)) = current(docker).await? {
                    return Ok(false);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            return Err(DockerError::Proxy { reason: "another run created it and it did not start".into() });
        }
        Err(e) => return Err(DockerError::request(&format!("create {NAME}"), &e)),
    }
    upload(docker, config).await?;
    start(docker, settings).await?;
    Ok(true)
}

async fn start(docker: &Docker, settings: &Proxy) -> Result<(), DockerError> {
    docker.start_container(NAME, None::<bollard::query_parameters::StartContainerOptions>).await.map_err(|e| {
        let reason = super::reason(&e);
        if reason.contains("allocated") || reason.contains("address already in use") {
            DockerError::ProxyPorts { http: settings.http, https: settings.https, reason }
        } else {
            DockerError::request(&format!("start {NAME}"), &e)
        }
    })?;
    // Caddy reads its configuration as it starts: an error there ends the container at once.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match current(docker).await? {
            Some((_, true)) => {}
            _ => {
                return Err(DockerError::Proxy {
                    reason: format!("it stopped as it started{}", super::deploy::last_lines(docker, NAME).await),
                });
            }
        }
    }
    Ok(())
}

/// Put the configuration file in the container.
async fn upload(docker: &Docker, config: &[u8]) -> Result<(), DockerError> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(config.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    let archive = tar
        .append_data(&mut h, CONFIG.trim_start_matches('/'), config)
        .and_then(|()| tar.into_inner())
        .map_err(|e| DockerError::Proxy { reason: format!("cannot pack its configuration: {e}") })?;
    let options = bollard::query_parameters::UploadToContainerOptions { path: "/".into(), ..Default::default() };
    docker
        .upload_to_container(NAME, Some(options), bollard::body_full(archive.into()))
        .await
        .map_err(|e| DockerError::request(&format!("copy the configuration into {NAME}"), &e))
}

/// Load a configuration into the running proxy (`caddy reload`; Caddy keeps serving while it switches).
async fn load(docker: &Docker, config: &[u8]) -> Result<(), DockerError> {
    upload(docker, config).await?;
    let mut last = String::new();
    // The admin endpoint of a proxy that is starting may not answer yet.
    for _ in 0..20 {
        let (code, output) =
            exec(docker, &["caddy", "reload", "--config", CONFIG, "--address", "localhost:2019"]).await?;
        if code == 0 {
            return Ok(());
        }
        last = output;
        if !last.contains("connection refused") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(DockerError::Proxy { reason: format!("it refused its new configuration: {}", last.trim()) })
}

/// Run a command in the proxy: its exit code and output.
async fn exec(docker: &Docker, cmd: &[&str]) -> Result<(i64, String), DockerError> {
    let what = format!("run `{}` in {NAME}", cmd.join(" "));
    let created = docker
        .create_exec(
            NAME,
            bollard::exec::CreateExecOptions {
                cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| DockerError::request(&what, &e))?;
    let mut output = String::new();
    if let bollard::exec::StartExecResults::Attached { output: mut out, .. } =
        docker.start_exec(&created.id, None).await.map_err(|e| DockerError::request(&what, &e))?
    {
        while let Some(Ok(chunk)) = out.next().await {
            output.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
        }
    }
    let inspected = docker.inspect_exec(&created.id).await.map_err(|e| DockerError::request(&what, &e))?;
    Ok((inspected.exit_code.unwrap_or(-1), output))
}

/// Put the proxy on an environment's network (already there is fine).
async fn join(docker: &Docker, network: &str) -> Result<(), DockerError> {
    let request = bollard::models::NetworkConnectRequest { container: NAME.to_string(), endpoint_config: None };
    match docker.connect_network(network, request).await {
        Ok(()) => Ok(()),
        Err(e) if super::reason(&e).contains("already exists") => Ok(()),
        Err(e) => Err(DockerError::request(&format!("connect {NAME} to {network}"), &e)),
    }
}

/// Take the proxy off an environment's network, so the network can go.
pub async fn leave(docker: &Docker, network: &str) -> Result<(), DockerError> {
    let request = bollard::models::NetworkDisconnectRequest { container: NAME.to_string(), force: Some(true) };
    match docker.disconnect_network(network, request).await {
        Ok(()) => Ok(()),
        Err(e) if matches!(status(&e), Some(404) | Some(403)) || super::reason(&e).contains("not connected") => Ok(()),
        Err(e) => Err(DockerError::request(&format!("take {NAME} off {network}"), &e)),
    }
}

/// Remove the proxy (its data volume stays).
async fn remove(docker: &Docker) -> Result<(), DockerError> {
    match docker.remove_container(NAME, Some(RemoveContainerOptions { force: true, ..Default::default() })).await {
        Ok(()) => Ok(()),
        Err(e) if status(&e) == Some(404) => Ok(()),
        Err(e) => Err(DockerError::request(&format!("remove {NAME}"), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(host: &str, path: &str, dial: &str) -> Route {
        Route {
            host: host.into(),
            path: path.into(),
            dial: dial.into(),
            network: "shop-dev".into(),
            owner: "shop/dev service web".into(),
            local: host.ends_with("localhost"),
        }
    }

    #[test]
    fn longer_prefixes_first_and_real_domains_on_https() {
        let settings = Proxy { http: 8080, https: 8443, image: "caddy:2".into() };
        let c = config(
            &settings,
            &[
                route("shop.localhost", "/", "web.shop-dev:80"),
                route("shop.localhost", "/api", "api.shop-dev:8080"),
                route("shop.example.com", "/", "web.shop-dev:80"),
            ],
        );
        let http = &c["apps"]["http"]["servers"]["http"];
        assert_eq!(http["listen"], json!([":8080"]));
        assert_eq!(http["routes"][0]["match"][0]["path"], json!(["/api", "/api/*"]));
        assert_eq!(http["routes"][0]["handle"][0]["upstreams"][0]["dial"], "api.shop-dev:8080");
        assert_eq!(http["routes"][1]["match"][0], json!({"host": ["shop.localhost"]}));
        assert_eq!(http["routes"][2]["handle"][0]["status_code"], 308);
        assert_eq!(
            http["routes"][2]["handle"][0]["headers"]["Location"],
            json!(["https://{http.request.host}:8443{http.request.uri}"])
        );
        assert_eq!(http["routes"][3]["handle"][0]["status_code"], 404);
        assert_eq!(http["automatic_https"]["skip"], json!(["shop.localhost"]));
        let https = &c["apps"]["http"]["servers"]["https"];
        assert_eq!(https["listen"], json!([":8443"]));
        assert_eq!(https["routes"].as_array().map(Vec::len), Some(1));
        assert_eq!(c["apps"]["http"]["https_port"], 8443);
    }

    #[test]
    fn no_https_server_without_real_domains() {
        let c = config(&Proxy::default(), &[route("shop.localhost", "/", "web.shop-dev:80")]);
        assert!(c["apps"]["http"]["servers"].get("https").is_none());
    }
}
