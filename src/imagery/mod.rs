//! Reading image files: formats, header probes, limits, integrity, decoding and thumbnails.
//!
//! Owns everything between a file on disk and pixels in memory. Nothing here knows about
//! projects or the UI. The pixel budget is checked from the header before any decoding, so a
//! decompression bomb costs a few bytes of reading, not gigabytes of memory.

pub mod decode;
pub mod disk_cache;
pub mod exif_thumb;
pub mod format;
pub mod integrity;
pub mod jpeg;
pub mod limits;
pub mod lru;
pub mod model_eye;
pub mod preview;
pub mod probe;
pub mod pyramid;
pub mod rows;
pub mod strips;
pub mod thumbnail;
pub mod tiles;
pub mod webp;

use std::path::PathBuf;

use thiserror::Error;

pub use format::ImageFormat;
pub use limits::PixelBudget;
pub use probe::{Probe, probe_bytes, probe_file};

use crate::geometry::ImageSize;

/// Why an image file could not be read.
#[derive(Debug, Error)]
pub enum ImageError {
    #[error("{path}: cannot read the file: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not an image in a supported format (JPEG, PNG, WebP, TIFF)")]
    UnknownFormat { path: PathBuf },
    #[error("{path}: the image header is damaged: {reason}")]
    BadHeader { path: PathBuf, reason: String },
    #[error(
        "{path}: {size} is {} megapixels, over the budget of {} megapixels (raise it in the settings or with --max-pixels)",
        size.pixels() / 1_000_000, budget / 1_000_000
    )]
    TooLarge {
        path: PathBuf,
        size: ImageSize,
        budget: u64,
    },
    #[error("{path}: the file is truncated: {reason}")]
    Truncated { path: PathBuf, reason: String },
    #[error("{path}: the image data is damaged: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}
