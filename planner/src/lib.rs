//! The planner: from an evaluated definition to a typed model, the stage/service graph, content-hashed
//! build keys, cache lookups in the mirror registry, the diff against live state, and the plan.
//! It does no network I/O itself: the registry and the live state come in through traits.

pub mod cache;
pub mod check;
pub mod context;
pub mod dockerfile;
pub mod dockerignore;
pub mod error;
pub mod graph;
pub mod images;
pub mod key;
pub mod live;
pub mod lockfile;
pub mod model;
pub mod pins;
pub mod plan;
pub mod record;
pub mod reference;
pub mod render;
pub mod secrets;
pub mod spec;
pub mod walk;

pub use error::{Diag, Error, Result};
pub use model::{Environment, read_environment, read_environment_partly};
pub use plan::{Plan, PlanInput, plan};
pub use spec::DeploySpec;
