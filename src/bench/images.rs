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

/// A copy of `source` (a JPEG) with a camera-style 160x120 EXIF thumbnail, made if missing.
pub fn with_exif_thumbnail(source: &Path) -> anyhow::Result<PathBuf> {
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = source.with_file_name(format!("{stem}-exif.jpg"));
    if path.is_file() {
        return Ok(path);
    }
    let bytes = std::fs::read(source)?;
    let small = crate::imagery::preview::scaled_jpeg(source, &bytes, 160)
        .ok_or_else(|| anyhow::anyhow!("{} is not a JPEG", source.display()))??;
    let thumb = image::imageops::thumbnail(&small, 160, 112);
    let mut thumb_bytes = Vec::new();
    thumb.write_to(
        &mut std::io::Cursor::new(&mut thumb_bytes),
        image::ImageFormat::Jpeg,
    )?;
    let tmp = path.with_extension("jpg.tmp");
    std::fs::write(
        &tmp,
        crate::imagery::exif_thumb::embed_thumbnail(&bytes, &thumb_bytes),
    )?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}
