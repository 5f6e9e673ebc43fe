//! Assisted boxing's costs: SAM's encoder time per window and decoder time per click, ours
//! (candle-transformers, TinyViT and ViT-B) against the segment-anything package (torch, CPU,
//! ViT-B; PyPI has no TinyViT) in the same run, random weights of the same shapes on both
//! sides, and the weight-free snap's quality on the demo scenes.

use std::path::Path;

use serde::Serialize;

use crate::assist::sam::{self, SamModel, VitShape};
use crate::assist::window::Reader;
use crate::geometry::ImageSize;

#[derive(Debug, Clone, Serialize)]
pub struct SamRow {
    pub model: String,
    /// Best of three, one 1024x1024 window.
    pub encoder_ms: f64,
    /// Best of ten, one click on a kept embedding (prompt encoder, decoder, the mask's
    /// bounds and outline), per decode (a retry on a wider window decodes twice).
    pub decoder_ms: f64,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PythonSam {
    pub torch: String,
    pub threads: usize,
    pub vit_b_encoder_ms: f64,
    pub decoder_ms: f64,
}

fn time_model(dir: &Path, vit_b: bool, image: &Path) -> anyhow::Result<SamRow> {
    let mut model = SamModel::load(dir, vit_b, &candle_core::Device::Cpu)?;
    let bytes = std::fs::read(image)?;
    let reader = Reader::open(image, &bytes)?;
    let mut encoder_ms = f64::INFINITY;
    for i in 0..3u32 {
        // Three different windows: each one encoded.
        let window = [i * 1024, 0, i * 1024 + 1024, 1024];
        let started = std::time::Instant::now();
        model.embedding(&reader, image, window)?;
        encoder_ms = encoder_ms.min(started.elapsed().as_secs_f64() * 1000.0);
    }
    let size = ImageSize::new(3072, 1024);
    let mut decoder_ms = f64::INFINITY;
    for _ in 0..10 {
        // The same place each time: the embedding is kept, only the decoder runs (with the
        // mask's upsampling and bounds: what a click costs, whatever random weights find).
        let before = model.encodes;
        let started = std::time::Instant::now();
        let found = model.box_at(&reader, image, size, (512.0, 512.0), &[], 1024);
        let took = started.elapsed().as_secs_f64() * 1000.0;
        // A mask on the window's edge is decoded once more on a wider window: per decode.
        let decodes = found.as_ref().map_or(1, |f| f.decodes.max(1));
        if model.encodes == before {
            decoder_ms = decoder_ms.min(took / decodes as f64);
        }
    }
    Ok(SamRow {
        model: model.name.clone(),
        encoder_ms,
        decoder_ms,
    })
}

/// Ours for TinyViT and ViT-B (random weights written once into `dir`), then the Python peer.
pub fn sam_rows(dir: &Path, python: &str) -> anyhow::Result<(Vec<SamRow>, Option<PythonSam>)> {
    std::fs::create_dir_all(dir)?;
    let image = dir.join("scene.png");
    if !image.exists() {
        image::RgbImage::from_fn(3072, 1024, |x, y| {
            image::Rgb([(x / 5) as u8, (y / 3) as u8, ((x ^ y) % 251) as u8])
        })
        .save(&image)?;
    }
    let tiny = dir.join("tiny");
    if !tiny.join(sam::TINY_FILE).exists() {
        sam::write_random_tiny(&tiny, 1)?;
    }
    let vit_b = dir.join("vit-b");
    if !vit_b.join(sam::CUSTOM_FILE).exists() {
        sam::write_random(&vit_b, &VitShape::vit_b(), 2)?;
    }
    let rows = vec![
        time_model(&tiny, false, &image)?,
        time_model(&vit_b, false, &image)?,
    ];
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/python/sam_speed.py");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let peer = std::process::Command::new(python)
        .arg(&script)
        .arg(threads.to_string())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice::<PythonSam>(&o.stdout).ok());
    Ok((rows, peer))
}
