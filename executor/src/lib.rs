//! The executor: walks a plan against real systems: the Docker engine (builds, pushes), the mirror
//! registry (OCI distribution API), and the targets environments deploy to (a Docker engine, a
//! Kubernetes namespace), driven by the apply and destroy sessions.
//!
//! Start with [`target`] (what every target implements) and [`session`] (what drives them).

pub mod build;
pub mod buildkit;
pub mod claim;
pub mod docker;
pub mod docker_config;
pub mod kubernetes;
pub mod logs;
pub mod prepare;
pub mod registry;
pub mod schedule;
pub mod session;
pub mod target;

pub use docker_config::{Credentials, credentials_for};
pub use registry::{RegistryClient, RegistryError, RegistryOptions};

/// An error with its sources, as one line (`client error (Connect): tcp connect error: Connection
/// refused`); a source already in the text is not repeated.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}
