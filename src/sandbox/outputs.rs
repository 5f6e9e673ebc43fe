//! The app's own checks of what a step produced: an output is a regular file (no symlink)
//! inside the step folder, its size is read from the header before anything decodes it, and
//! an image the model could not take (too many pixels, aspect ratio over 200) is refused.

use std::path::{Path, PathBuf};

use crate::imagery::model_eye::MAX_ASPECT;
use crate::imagery::{ImageError, PixelBudget, probe_file};

/// The most pixels an image fed back to the model may have.
pub const MAX_OUTPUT_PIXELS: u64 = 64_000_000;

/// Check one output; its width and height, or why it is refused.
pub fn check_image(path: &Path, step_dir: &Path) -> Result<(u32, u32), String> {
    let name = path.display();
    let meta =
        std::fs::symlink_metadata(path).map_err(|_| format!("the output {name} does not exist"))?;
    if meta.file_type().is_symlink() {
        return Err(format!(
            "the output {name} is a symbolic link; only files the step wrote are taken"
        ));
    }
    if !meta.is_file() {
        return Err(format!("the output {name} is not a file"));
    }
    let inside = match (std::fs::canonicalize(path), std::fs::canonicalize(step_dir)) {
        (Ok(p), Ok(d)) => p.starts_with(d),
        _ => false,
    };
    if !inside {
        return Err(format!("the output {name} is outside the step folder"));
    }
    let probe = probe_file(path, PixelBudget(MAX_OUTPUT_PIXELS)).map_err(|e| match e {
        ImageError::TooLarge { size, .. } => format!(
            "the output {name} is {size}, over the {MAX_OUTPUT_PIXELS}-pixel limit for images fed back to the model"
        ),
        other => format!("the output is not a readable image: {other}"),
    })?;
    let (w, h) = (probe.size.width, probe.size.height);
    let ratio = f64::from(w.max(h)) / f64::from(w.min(h).max(1));
    if ratio > MAX_ASPECT {
        return Err(format!(
            "absolute aspect ratio must be smaller than {MAX_ASPECT}, got {ratio}"
        ));
    }
    Ok((w, h))
}

/// Bytes and files under these folders (symlinks not followed).
pub fn folder_usage(dirs: &[PathBuf]) -> (u64, u64) {
    let (mut bytes, mut files) = (0u64, 0u64);
    for d in dirs {
        for entry in walkdir::WalkDir::new(d).into_iter().flatten() {
            if let Ok(m) = entry.metadata()
                && !m.is_dir()
            {
                files += 1;
                bytes += m.len();
            }
        }
    }
    (bytes, files)
}
