//! The mirror registry as the planner sees it: which images already exist. The real client (OCI
//! distribution API over HTTP) lives in the executor; the planner only calls this trait.

use crate::reference::Reference;
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

/// What a registry said when asked what a reference names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The manifest (or image index) the tag names now, or the pinned digest, which exists.
    Found { digest: String, media_type: String },
    /// The registry answered: no such tag or digest.
    NotFound(String),
    /// The registry could not be asked, or refused (unreachable, 401, 403, a bad answer): the reason.
    Failed(String),
}

/// Asks registries which images exist and what tags name. Implementations bound their own concurrency.
pub trait ImageCache {
    /// One answer per image, in the same order.
    fn lookup(&self, images: &[ImageRef]) -> Vec<CacheState>;

    /// What each reference names now: its tag's manifest digest (with its media type), or for a reference
    /// with a digest, whether that manifest still exists. One answer per reference, in the same order.
    fn resolve(&self, references: &[Reference]) -> Vec<Resolution>;

    /// The records of key inputs stored beside images in the mirror (see `crate::record`), by the tag each
    /// is kept under; `Ok(None)` where there is none. One answer per place, in the same order.
    fn records(&self, at: &[ImageRef]) -> Vec<Result<Option<Vec<u8>>, String>> {
        at.iter().map(|_| Ok(None)).collect()
    }
}

/// A cache that is never asked (`--offline`): every image is unknown, no reference is resolved.
#[derive(Debug, Default, Clone, Copy)]
pub struct Offline;

impl ImageCache for Offline {
    fn lookup(&self, images: &[ImageRef]) -> Vec<CacheState> {
        images.iter().map(|_| CacheState::Unknown("the registry was not asked (--offline)".into())).collect()
    }

    fn resolve(&self, references: &[Reference]) -> Vec<Resolution> {
        references.iter().map(|_| Resolution::Failed("the registry was not asked (--offline)".into())).collect()
    }
}
