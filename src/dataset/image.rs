//! Images: identity by content hash, location by path.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::geometry::ImageSize;

/// An image's identity: the SHA-256 of its file bytes, as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImageId(String);

impl ImageId {
    /// The identity of these bytes.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(hex::encode(Sha256::digest(bytes)))
    }

    /// The identity of a file's contents, streamed so large files need no big buffer.
    pub fn of_file(path: &Path) -> std::io::Result<Self> {
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        Ok(Self(hex::encode(hasher.finalize())))
    }

    /// Accepts a stored hex digest; `None` unless it is 64 lowercase hex digits.
    pub fn parse(hex_digest: &str) -> Option<Self> {
        let ok = hex_digest.len() == 64
            && hex_digest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Self(hex_digest.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, for display.
    pub fn short(&self) -> &str {
        &self.0[..12.min(self.0.len())]
    }
}

impl std::fmt::Display for ImageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an image stands in the annotator's work.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum ImageStatus {
    #[default]
    Todo,
    InProgress,
    Done,
}

impl ImageStatus {
    pub const ALL: [ImageStatus; 3] = [
        ImageStatus::Todo,
        ImageStatus::InProgress,
        ImageStatus::Done,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Todo => "todo",
            ImageStatus::InProgress => "in_progress",
            ImageStatus::Done => "done",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            ImageStatus::Todo => "to do",
            ImageStatus::InProgress => "in progress",
            ImageStatus::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One image of a project: where it is, how big it is, and when it came in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: ImageId,
    pub path: PathBuf,
    pub size: ImageSize,
    /// File size in bytes.
    pub bytes: u64,
    /// Unix time in milliseconds.
    pub added_at_ms: i64,
    #[serde(default)]
    pub status: ImageStatus,
    /// A reviewer's verdict on the whole image (see [`super::review`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<super::Review>,
}

impl ImageRecord {
    /// The file name, for lists.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_of_file_equals_id_of_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        std::fs::write(&p, b"hello").unwrap();
        let id = ImageId::of_file(&p).unwrap();
        assert_eq!(id, ImageId::of_bytes(b"hello"));
        assert_eq!(
            id.as_str(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }

    #[test]
    fn parse_accepts_only_lowercase_sha256_hex() {
        let good = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert!(ImageId::parse(good).is_some());
        assert!(ImageId::parse(&good.to_uppercase()).is_none());
        assert!(ImageId::parse("abc").is_none());
    }
}
