//! The executor: walks a plan against real systems (Docker engine, OCI registry, Kubernetes).
//! (Built under the executor issue; so far: the mirror-registry client, Docker credentials and the scheduler.)

pub mod docker_config;
pub mod registry;
pub mod schedule;

pub use docker_config::{Credentials, credentials_for};
pub use registry::{RegistryClient, RegistryError, RegistryOptions};
