//! Large benchmark images, generated once and kept (they are too big to ship).

use std::path::{Path, PathBuf};

use crate::demo::paint;

/// A generated JPEG of `width` x `height` in `dir` (made if missing): the demo's busy
/// background, so the encoder has real texture to chew on.
pub fn generated_jpeg(dir: &Path, width: u32, height: u32) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("bench-{width}x{height}.jpg"));
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(dir)?;
    tracing::info!("generating {}", path.display());
    let img = paint::background(width, height, 7, 1);
    let tmp = path.with_extension("jpg.tmp");
    {
        let file = std::fs::File::create(&tmp)?;
        let mut w = std::io::BufWriter::new(file);
        let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut w, 90);
        img.write_with_encoder(enc)?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}
