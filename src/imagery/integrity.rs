//! Cheap completeness checks on whole-file bytes, so a truncated file is reported as truncated
//! (and at import time, without decoding megapixels).

use std::path::Path;

use super::{ImageError, ImageFormat};

/// How far from the end the end marker may sit (some writers pad files).
const TAIL: usize = 64 * 1024;

/// Check that the file's end structure is present.
pub fn check_complete(path: &Path, bytes: &[u8], format: ImageFormat) -> Result<(), ImageError> {
    let truncated = |reason: &str| ImageError::Truncated {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let tail = &bytes[bytes.len().saturating_sub(TAIL)..];
    match format {
        ImageFormat::Jpeg => {
            if !tail.windows(2).any(|w| w == [0xFF, 0xD9]) {
                return Err(truncated("no JPEG end-of-image marker"));
            }
        }
        ImageFormat::Png => {
            if !tail.windows(4).any(|w| w == b"IEND") {
                return Err(truncated("no PNG end chunk (IEND)"));
            }
        }
        ImageFormat::WebP => {
            let declared = bytes
                .get(4..8)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_le_bytes)
                .unwrap_or(u32::MAX);
            if (declared as u64).saturating_add(8) > bytes.len() as u64 {
                return Err(truncated(&format!(
                    "the RIFF header declares {} bytes, the file has {}",
                    u64::from(declared) + 8,
                    bytes.len()
                )));
            }
        }
        // TIFF keeps its directory anywhere in the file; the decoder reports a short file.
        ImageFormat::Tiff => {}
    }
    Ok(())
}
