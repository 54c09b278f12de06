//! A service's containers as the engine takes them: the create body (environment, secrets, published
//! ports, healthcheck, resources, volume, restart policy, network alias) from the deploy spec, and the
//! units Docker counts in.

use super::DockerError;
use crate::target::ServiceDeploy;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Mount, MountType, NetworkingConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use pipeline_planner::DeploySpec;
use pipeline_planner::model::Healthcheck;
use pipeline_planner::spec::parse_duration;
use std::collections::HashMap;

/// Every container of an environment's service: `<project>-<env>-<service>-<replica>`.
pub(crate) fn name(network: &str, service: &str, replica: u32) -> String {
    format!("{network}-{service}-{replica}")
}

/// A new container started beside the one it replaces, until it is healthy: the replica's name and this
/// suffix. Renamed to the replica's name once the old one is retired.
pub(crate) const CANDIDATE: &str = "-next";

/// The restart policy of a service's containers once they are up (jobs never restart).
pub(crate) fn restart_policy(spec: &DeploySpec) -> RestartPolicy {
    let name = if spec.is_job() { RestartPolicyNameEnum::NO } else { RestartPolicyNameEnum::UNLESS_STOPPED };
    RestartPolicy { name: Some(name), maximum_retry_count: None }
}

/// The create body of one container. `named`: whether it answers to the service's name on the network
/// from the start (a candidate beside serving containers joins the name only once healthy).
pub(crate) fn body(
    network: &str,
    s: &ServiceDeploy,
    spec: &DeploySpec,
    labels: HashMap<String, String>,
    volume: Option<&(String, String)>,
    named: bool,
) -> Result<ContainerCreateBody, DockerError> {
    let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for var in spec.secrets.keys() {
        let value = s
            .secrets
            .get(var)
            .ok_or_else(|| DockerError::spec(&s.name, format!("no value for the secret in `{var}`")))?;
        env.push(format!("{var}={value}"));
    }
    let ports: Vec<String> = spec.ports.iter().map(|p| format!("{p}/tcp")).collect();
    let bindings: HashMap<String, Option<Vec<PortBinding>>> = ports
        .iter()
        .map(|p| {
            (p.clone(), Some(vec![PortBinding { host_ip: Some("127.0.0.1".into()), host_port: Some(String::new()) }]))
        })
        .collect();
    let healthcheck =
        spec.healthcheck.as_ref().map(health_config).transpose().map_err(|e| DockerError::spec(&s.name, e))?;
    let (nano_cpus, memory) = match &spec.resources {
        Some(r) => (r.cpu.as_deref().and_then(nano_cpus), r.memory.as_deref().and_then(memory_bytes)),
        None => (None, None),
    };
    let mounts = volume.map(|(name, path)| {
        vec![Mount {
            target: Some(path.clone()),
            source: Some(name.clone()),
            typ: Some(MountType::VOLUME),
            ..Default::default()
        }]
    });
    let network = network.to_string();
    Ok(ContainerCreateBody {
        image: Some(spec.image.clone()),
        stop_timeout: i64::try_from(spec.stop_grace().as_secs()).ok(),
        entrypoint: spec.command.clone(),
        cmd: spec.args.clone(),
        env: Some(env),
        labels: Some(labels),
        exposed_ports: (!ports.is_empty()).then_some(ports),
        healthcheck,
        host_config: Some(HostConfig {
            port_bindings: Some(bindings),
            network_mode: Some(network.clone()),
            mounts,
            nano_cpus,
            memory,
            // No restarts until the deploy has seen the container healthy: an exit is then final, with
            // its real exit code. The deploy sets [`restart_policy`] once it is ready.
            restart_policy: Some(RestartPolicy { name: Some(RestartPolicyNameEnum::NO), maximum_retry_count: None }),
            // An init process as PID 1 (`docker run --init`): SIGTERM stops a process that does not handle
            // it itself, so a stop takes moments, not the whole grace period.
            init: Some(true),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.clone(),
                EndpointSettings { aliases: named.then(|| aliases(&network, &s.name)), ..Default::default() },
            )])),
        }),
        ..Default::default()
    })
}

/// The names a serving container answers to on its environment's network: the service's (for the other
/// services) and one unique on the engine (for the proxy, which is on every environment's network).
pub(crate) fn aliases(network: &str, service: &str) -> Vec<String> {
    vec![service.to_string(), super::proxy::upstream_name(network, service)]
}

fn health_config(h: &Healthcheck) -> Result<HealthConfig, String> {
    let test = match (&h.command, &h.http) {
        (Some(cmd), _) => {
            let mut t = vec!["CMD".to_string()];
            t.extend(cmd.iter().cloned());
            t
        }
        (None, Some(http)) => {
            let url = format!("http://127.0.0.1:{}{}", http.port, http.path);
            vec!["CMD-SHELL".into(), format!("wget -q -O /dev/null '{url}' || curl -fsS -o /dev/null '{url}'")]
        }
        (None, None) => return Err("a healthcheck needs `command` or `http`".into()),
    };
    let ns = |s: &str| {
        parse_duration(s)
            .and_then(|d| i64::try_from(d.as_nanos()).ok())
            .ok_or_else(|| format!("healthcheck duration `{s}` is not a duration Docker can take"))
    };
    Ok(HealthConfig {
        test: Some(test),
        interval: Some(ns(&h.interval)?),
        timeout: Some(ns(&h.timeout)?),
        retries: Some(i64::from(h.retries)),
        start_period: Some(ns(&h.start_period)?),
        start_interval: None,
    })
}

/// `500m` or `1.5` cores as nano-CPUs.
fn nano_cpus(s: &str) -> Option<i64> {
    if let Some(m) = s.strip_suffix('m') {
        return m.parse::<i64>().ok().and_then(|m| m.checked_mul(1_000_000));
    }
    s.parse::<f64>()
        .ok()
        .map(|c| c * 1e9)
        .filter(|n| n.is_finite() && *n >= 1.0 && *n < i64::MAX as f64)
        .map(|n| n as i64)
}

/// `256Mi`, `1G`, `1024` as bytes.
fn memory_bytes(s: &str) -> Option<i64> {
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    let n: i64 = s[..digits].parse().ok()?;
    let unit: i64 = match &s[digits..] {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// `repo`, `tag` of an image reference (`tag` defaults to `latest`; a digest stays in the repo part).
pub(crate) fn split_image(image: &str) -> (String, String) {
    if image.contains('@') {
        return (image.to_string(), String::new());
    }
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (image.to_string(), "latest".to_string()),
    }
}

/// The registry an image reference names (`docker.io` when its first part is not a host).
pub(crate) fn registry_host(repo: &str) -> String {
    match repo.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first.to_string(),
        _ => "docker.io".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(nano_cpus("500m"), Some(500_000_000));
        assert_eq!(nano_cpus("1.5"), Some(1_500_000_000));
        assert_eq!(memory_bytes("256Mi"), Some(256 << 20));
        assert_eq!(memory_bytes("1G"), Some(1_000_000_000));
        assert_eq!(memory_bytes("1X"), None);
    }

    #[test]
    fn image_names() {
        assert_eq!(split_image("127.0.0.1:5000/shop/api:k1"), ("127.0.0.1:5000/shop/api".into(), "k1".into()));
        assert_eq!(split_image("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(split_image("localhost:5000/x"), ("localhost:5000/x".into(), "latest".into()));
        assert_eq!(registry_host("127.0.0.1:5000/shop/api"), "127.0.0.1:5000");
        assert_eq!(registry_host("library/busybox"), "docker.io");
        assert_eq!(registry_host("pipeline-examples/busybox"), "docker.io");
    }
}
