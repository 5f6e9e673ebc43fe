//! Regions: boxes around objects, in original-image pixels.

use serde::{Deserialize, Serialize};

use super::ImageId;
use crate::geometry::ImageRect;

/// A region's identity: a UUID (time-ordered v7), stable across exports and team sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RegionId(pub uuid::Uuid);

impl RegionId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }
}

impl Default for RegionId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for RegionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A box on one image, with an optional short label ("red sign", "digit 7").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Region {
    pub id: RegionId,
    pub image: ImageId,
    pub rect: ImageRect,
    pub label: String,
    /// A reviewer's verdict on this box.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<super::Review>,
}

impl Region {
    pub fn new(image: ImageId, rect: ImageRect, label: impl Into<String>) -> Self {
        Self {
            id: RegionId::new(),
            image,
            rect,
            label: label.into(),
            review: None,
        }
    }
}
