//! Header probes: format and size without decoding the pixels.

use std::io::Cursor;
use std::path::Path;

use super::{ImageError, ImageFormat, PixelBudget};
use crate::geometry::ImageSize;

/// What the header of an image file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: ImageFormat,
    /// Size as stored, before any EXIF orientation is applied.
    pub stored_size: ImageSize,
    /// Size as displayed: width and height swapped when the EXIF orientation rotates by 90 degrees.
    pub size: ImageSize,
}

/// Probe the header of in-memory file bytes, and refuse images over the budget.
pub fn probe_bytes(path: &Path, bytes: &[u8], budget: PixelBudget) -> Result<Probe, ImageError> {
    let format = ImageFormat::sniff(bytes).ok_or_else(|| ImageError::UnknownFormat {
        path: path.to_owned(),
    })?;
    let bad = |reason: String| ImageError::BadHeader {
        path: path.to_owned(),
        reason,
    };
    // A JPEG's size from its frame header directly (the general reader copies the whole file
    // first, tens of milliseconds for a large photo).
    let jpeg_size = (format == ImageFormat::Jpeg)
        .then(|| super::jpeg::frame_size(bytes))
        .flatten();
    let (w, h) = match jpeg_size {
        Some(size) => size,
        None => {
            let mut reader =
                image::ImageReader::with_format(Cursor::new(bytes), format.to_image_crate());
            // Read the header with no decoder limits: the budget below is ours, with our message.
            reader.limits(image::Limits::no_limits());
            reader.into_dimensions().map_err(|e| bad(e.to_string()))?
        }
    };
    if w == 0 || h == 0 {
        return Err(bad(format!("the header says {w}x{h}")));
    }
    let stored_size = ImageSize::new(w, h);
    if !budget.allows(stored_size.pixels()) {
        return Err(ImageError::TooLarge {
            path: path.to_owned(),
            size: stored_size,
            budget: budget.0,
        });
    }
    let size = if super::decode::orientation_swaps_axes(bytes, format) {
        ImageSize::new(h, w)
    } else {
        stored_size
    };
    Ok(Probe {
        format,
        stored_size,
        size,
    })
}

/// Read a file and probe its header.
pub fn probe_file(path: &Path, budget: PixelBudget) -> Result<Probe, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| ImageError::Io {
        path: path.to_owned(),
        source,
    })?;
    probe_bytes(path, &bytes, budget)
}
