//! The deploy spec: what a target must run for one service. The planner makes it from the definitions,
//! the plan shows it, both targets deploy from it and store it beside what they deploy (Docker labels,
//! Kubernetes annotations), and `plan` compares the stored one with the desired one field by field.
//!
//! Its JSON form is the contract: maps sorted, optional fields left out, secrets only as name and
//! fingerprint. [`DeploySpec::to_json`] gives it and [`DeploySpec::hash`] hashes it, so a spec stored by
//! an earlier release reads back equal.

use crate::model::{Healthcheck, PublicEndpoint, Resources, ServiceType};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::time::Duration;

/// What a target must run for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploySpec {
    #[serde(rename = "type")]
    pub kind: ServiceType,
    pub stage: String,
    pub image: String,
    /// Replaces the image's entrypoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Replaces the image's command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables whose values are secrets, by variable name.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretRef>,
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Where it is reachable from outside (host, path prefix, port).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<PublicEndpoint>,
    #[serde(default = "one")]
    pub replicas: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// How long it has to stop after SIGTERM (`"30s"`); ten seconds when not given.
    #[serde(default, rename = "stopGracePeriod", skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<String>,
    /// A database's data folder, kept on a volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    /// A job's cron schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, rename = "dependsOn")]
    pub depends_on: Vec<String>,
}

fn one() -> u32 {
    1
}

/// A secret as a spec holds it: its name and a fingerprint of its value, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRef {
    pub secret: String,
    /// Keyed per project and environment (`secrets::Secrets::fingerprint`); left out where the output
    /// must not depend on the value (`render`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl DeploySpec {
    /// The JSON form (maps sorted): what the plan shows and what targets store.
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).unwrap_or(Json::Null)
    }

    /// The stored JSON form read back; `None` when it is not a spec.
    pub fn from_json(json: &Json) -> Option<DeploySpec> {
        serde_json::from_value(json.clone()).ok()
    }

    /// blake3 of the JSON form, shortened: names a Job run, marks pods and containers with their spec.
    pub fn hash(&self) -> String {
        let bytes = serde_json::to_vec(&self.to_json()).unwrap_or_default();
        blake3::hash(&bytes).to_hex()[..16].to_string()
    }

    pub fn is_job(&self) -> bool {
        self.kind == ServiceType::Job
    }

    /// How long a replica has to stop after SIGTERM before it is killed.
    pub fn stop_grace(&self) -> Duration {
        self.stop_grace_period.as_deref().and_then(parse_duration).unwrap_or(Duration::from_secs(10))
    }

    pub fn is_scheduled(&self) -> bool {
        self.schedule.is_some()
    }

    /// Changes that cannot be made in place: a different type, data folder, or a job turning into a
    /// cron job.
    pub fn needs_replace(&self, desired: &DeploySpec) -> bool {
        self.kind != desired.kind || self.volume != desired.volume || self.is_scheduled() != desired.is_scheduled()
    }

    /// The same spec without the secrets' fingerprints: what `render` shows does not depend on any
    /// secret's value.
    pub fn without_fingerprints(mut self) -> DeploySpec {
        for s in self.secrets.values_mut() {
            s.fingerprint = None;
        }
        self
    }
}

/// Serialize an optional spec through its JSON form, so its maps come out sorted.
pub(crate) fn sorted<S: serde::Serializer>(spec: &Option<DeploySpec>, s: S) -> Result<S::Ok, S::Error> {
    spec.as_ref().map(DeploySpec::to_json).serialize(s)
}

/// A duration as the definitions write it: `500ms`, `10s`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let digits = s.chars().take_while(char::is_ascii_digit).count();
    let n: u64 = s[..digits].parse().ok()?;
    Some(match &s[digits..] {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_form_is_sorted_and_round_trips() {
        let stored = json!({
            "dependsOn": ["db"], "env": {"B": "2", "A": "1"}, "image": "x:1", "ports": [8080], "replicas": 2,
            "healthcheck": {"http": {"path": "/", "port": 8080}, "interval": "5s", "retries": 3,
                            "startPeriod": "0s", "timeout": "2s"},
            "secrets": {"T": {"fingerprint": "ab", "secret": "t"}}, "stage": "3.APP", "type": "application",
        });
        let spec = DeploySpec::from_json(&stored).expect("a spec");
        assert_eq!(spec.to_json(), stored);
        assert_eq!(
            serde_json::to_string(&spec.to_json()).unwrap(),
            serde_json::to_string(&stored).unwrap(),
            "the text (hashed and stored) is the same"
        );
        assert_eq!(spec.hash().len(), 16);
        let mut other = spec.clone();
        other.replicas = 3;
        assert_ne!(spec.hash(), other.hash());
    }

    #[test]
    fn replacement() {
        let a = DeploySpec::from_json(&json!({"type": "job", "stage": "1", "image": "x"})).unwrap();
        let mut b = a.clone();
        b.schedule = Some("* * * * *".into());
        assert!(a.needs_replace(&b));
        b = a.clone();
        b.image = "y".into();
        assert!(!a.needs_replace(&b));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("2"), None);
        assert_eq!(parse_duration("s"), None);
    }
}
