//! The mirror registry as the planner sees it: which images already exist. The real client (OCI
//! distribution API over HTTP) lives in the executor; the planner only calls this trait.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An image in the mirror registry: `<registry>/<repository>:<tag>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ImageRef {
    /// `host[:port]`, e.g. `127.0.0.1:5000`.
    pub registry: String,
    /// Repository path inside the registry, e.g. `shop/api`.
    pub repository: String,
    /// The tag: the build key.
    pub tag: String,
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

/// What the registry said about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheState {
    /// The manifest exists (with its digest when the registry reported one).
    Present { digest: Option<String> },
    /// The registry answered: no such manifest.
    Absent,
    /// The registry could not be asked (unreachable, auth refused, bad answer): the reason.
    Unknown(String),
}

/// Asks the mirror registry which images exist. Implementations bound their own concurrency.
pub trait ImageCache {
    /// One answer per image, in the same order.
    fn lookup(&self, images: &[ImageRef]) -> Vec<CacheState>;
}

/// A cache that is never asked (`--offline`): every image is unknown.
#[derive(Debug, Default, Clone, Copy)]
pub struct Offline;

impl ImageCache for Offline {
    fn lookup(&self, images: &[ImageRef]) -> Vec<CacheState> {
        images.iter().map(|_| CacheState::Unknown("the registry was not asked (--offline)".into())).collect()
    }
}
