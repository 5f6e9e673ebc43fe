//! Paging through a large project with a bounded tile cache: a folder of generated 20-50 MP
//! JPEGs, each opened in turn as PageDown does (the next one prefetched), the person staying on
//! each until its pyramid is whole (an annotator spends far longer on an image than that); the time to first pixels of every image, and the disk cache's size after
//! each, against the budget.
//!
//! The images are a few distinct pictures written once, then copied with a different trailing
//! comment each (bytes after the end-of-image marker, which decoders skip), so every file has
//! its own content hash and its own pyramid while generating them stays cheap.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::dataset::ImageId;
use crate::geometry::ImageSize;
use crate::imagery::PixelBudget;
use crate::imagery::tiles::{BuildStatus, TileService};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub images: usize,
    pub megapixels_total: f64,
    pub budget_bytes: u64,
    pub first_pixels_p50_s: f64,
    pub first_pixels_p95_s: f64,
    pub first_pixels_max_s: f64,
    /// The most the cache held after any image, and at the end.
    pub cache_bytes_max: u64,
    pub cache_bytes_end: u64,
    /// Cache bytes per megapixel of the complete pyramids seen (before any eviction).
    pub bytes_per_megapixel: f64,
    pub over_budget_after: usize,
    pub seconds: f64,
}

/// Write `count` JPEGs into `dir` (sizes cycling through 20, 30, 40, 50 MP).
pub fn make_images(dir: &Path, count: usize) -> anyhow::Result<Vec<(PathBuf, ImageSize)>> {
    std::fs::create_dir_all(dir)?;
    let shapes = [(5472u32, 3648u32), (6708, 4472), (7746, 5164), (8660, 5773)];
    let mut bases = Vec::new();
    for (i, (w, h)) in shapes.iter().enumerate() {
        let picture = image::RgbImage::from_fn(*w, *h, |x, y| {
            let v = ((x / 7) ^ (y / 5)) as u8;
            image::Rgb([v, (x as u8).wrapping_add(i as u8 * 40), (y / 3) as u8])
        });
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 85)
            .encode_image(&picture)?;
        bases.push((bytes, ImageSize::new(*w, *h)));
    }
    let mut out = Vec::new();
    for n in 0..count {
        let (base, size) = &bases[n % bases.len()];
        let path = dir.join(format!("page-{n:04}.jpg"));
        let mut bytes = base.clone();
        bytes.extend_from_slice(format!("page {n}").as_bytes());
        std::fs::write(&path, bytes)?;
        out.push((path, *size));
    }
    Ok(out)
}

/// Page through `images` with a cache under `cache` bounded to `budget` bytes, staying on each
/// image until its pyramid is whole, and `dwell` more.
pub fn run(
    images: &[(PathBuf, ImageSize)],
    cache: &Path,
    budget: u64,
    dwell: Duration,
) -> anyhow::Result<Report> {
    let tiles = TileService::new(cache, 512 << 20, PixelBudget::DEFAULT, 2);
    tiles.set_disk_budget(budget);
    let ids: Vec<ImageId> = images
        .iter()
        .map(|(p, _)| ImageId::of_file(p))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let mut first = Vec::new();
    let (mut max, mut over) = (0u64, 0usize);
    let mut per_mp = Vec::new();
    for (i, ((path, size), id)) in images.iter().zip(&ids).enumerate() {
        let t = Instant::now();
        tiles.open(id, path.clone(), *size);
        if let Some(((next, next_size), next_id)) = images.get(i + 1).zip(ids.get(i + 1)) {
            tiles.prefetch(next_id, next.clone(), *next_size);
        }
        let layout = crate::imagery::pyramid::PyramidLayout::new(*size);
        let top = crate::imagery::pyramid::TileKey {
            level: layout.top(),
            col: 0,
            row: 0,
        };
        loop {
            if tiles.preview(id).is_some() || tiles.tile(id, top).is_some() {
                first.push(t.elapsed().as_secs_f64());
                break;
            }
            if let Some(BuildStatus::Failed(e)) = tiles.status(id) {
                anyhow::bail!("{}: {e}", path.display());
            }
            anyhow::ensure!(
                t.elapsed() < Duration::from_secs(600),
                "no pixels of {}",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        // An annotator stays on an image far longer than its pyramid takes: wait for it.
        while !matches!(
            tiles.status(id),
            Some(BuildStatus::Complete | BuildStatus::Failed(_) | BuildStatus::Cancelled)
        ) && t.elapsed() < Duration::from_secs(600)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(dwell);
        let usage = tiles.disk().usage();
        if let Some(u) = usage.iter().find(|u| u.id == id.as_str() && u.complete) {
            per_mp.push(u.bytes as f64 / (size.width as f64 * size.height as f64 / 1e6));
        }
        let total: u64 = usage.iter().map(|u| u.bytes).sum();
        max = max.max(total);
        over += usize::from(total > budget);
    }
    // Let the last builds finish, then read the cache once more.
    let t = Instant::now();
    while ids.iter().rev().take(2).any(|id| {
        matches!(
            tiles.status(id),
            Some(BuildStatus::Queued | BuildStatus::Decoding | BuildStatus::Tiling { .. })
        )
    }) && t.elapsed() < Duration::from_secs(600)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let end: u64 = tiles.disk().usage().iter().map(|u| u.bytes).sum();
    let mp: f64 = images
        .iter()
        .map(|(_, s)| s.width as f64 * s.height as f64 / 1e6)
        .sum();
    Ok(Report {
        images: images.len(),
        megapixels_total: mp,
        budget_bytes: budget,
        first_pixels_p50_s: super::percentile(&first, 0.5),
        first_pixels_p95_s: super::percentile(&first, 0.95),
        first_pixels_max_s: first.iter().copied().fold(0.0, f64::max),
        cache_bytes_max: max,
        cache_bytes_end: end,
        bytes_per_megapixel: super::percentile(&per_mp, 0.5),
        over_budget_after: over,
        seconds: started.elapsed().as_secs_f64(),
    })
}
