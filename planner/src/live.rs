//! Live state as the planner sees it: which services a target runs now, and the spec each was deployed
//! with. The real observers (Docker labels, Kubernetes objects) live in the executor.

use crate::plan::ObjectDiff;
use crate::spec::DeploySpec;
use serde::{Deserialize, Serialize};

/// One deployed service, as the target reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveService {
    pub name: String,
    /// The deploy spec it was deployed with (the `spec` object of a plan's service).
    pub spec: DeploySpec,
}

/// Reports what a target runs for one environment of a project.
pub trait LiveState {
    /// The deployed services; an error says which system could not be asked and why.
    fn observe(&self, project: &str, environment: &str) -> Result<Vec<LiveService>, String>;

    /// What the target would change, object by object, to bring one service to `desired` (`None`: the
    /// service is removed); only objects that change. Targets without objects of their own (Docker)
    /// have none. An error (the desired objects cannot be made) fails the plan: it never reads as "no
    /// drift".
    fn objects(
        &self,
        _service: &str,
        _desired: Option<&DeploySpec>,
        _key: Option<&str>,
    ) -> Result<Vec<ObjectDiff>, String> {
        Ok(vec![])
    }

    /// Who is building the image of `key` now (another run's claim), if anyone.
    fn building(&self, _key: &str) -> Option<String> {
        None
    }
}

/// A target where nothing is deployed yet.
#[derive(Debug, Default, Clone, Copy)]
pub struct NothingDeployed;

impl LiveState for NothingDeployed {
    fn observe(&self, _: &str, _: &str) -> Result<Vec<LiveService>, String> {
        Ok(vec![])
    }
}

/// Live state as observed on an engine: the deployed services and the builds other runs are doing
/// (key -> who).
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub services: Vec<LiveService>,
    pub building: std::collections::BTreeMap<String, String>,
}

impl LiveState for Observed {
    fn observe(&self, _: &str, _: &str) -> Result<Vec<LiveService>, String> {
        Ok(self.services.clone())
    }

    fn building(&self, key: &str) -> Option<String> {
        self.building.get(key).cloned()
    }
}

/// Live state read from a JSON file (`[{"name", "spec"}]`): for tests and dry runs.
#[derive(Debug, Clone)]
pub struct Recorded(pub Vec<LiveService>);

impl LiveState for Recorded {
    fn observe(&self, _: &str, _: &str) -> Result<Vec<LiveService>, String> {
        Ok(self.0.clone())
    }
}
