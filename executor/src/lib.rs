//! The executor: walks a plan against real systems: the Docker engine (builds, pushes, the local
//! target), the mirror registry (OCI distribution API), and, later, Kubernetes.

pub mod apply;
pub mod build;
pub mod docker;
pub mod docker_config;
pub mod k8s;
pub mod registry;
pub mod schedule;
pub mod target;

pub use docker_config::{Credentials, credentials_for};
pub use registry::{RegistryClient, RegistryError, RegistryOptions};
