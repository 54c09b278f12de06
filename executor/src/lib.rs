//! The executor: walks a plan against real systems (Docker engine, OCI registry, Kubernetes).
//! (Built under the executor issue; so far: the mirror-registry client and Docker credentials.)

pub mod docker_config;
pub mod registry;

pub use docker_config::{Credentials, credentials_for};
pub use registry::{RegistryClient, RegistryError, RegistryOptions};
