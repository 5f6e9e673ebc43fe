//! The crop audit's speed: generated Thyme SFT rows (one crop each, of 2000-4000 px originals
//! that groups of rows share, as a dataset asks many questions of one picture) audited by
//! thyme-studio with N warm sandbox workers, against a Python script that re-runs each row's
//! code with `exec` and compares with Pillow and NumPy (same rows, same run); then the
//! audit again with every run in the cache.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use crate::rng::Rng;
use crate::sandbox::SandboxConfig;
use crate::trace::audit::runner::{Auditor, Source};
use crate::trace::audit::{Report, Verdict};
use crate::trace::readers::{LogFormat, read};

#[derive(Debug, Clone, Serialize)]
pub struct AuditBench {
    pub rows: usize,
    pub originals: usize,
    pub jobs: usize,
    pub ours_s: f64,
    pub ours_rows_per_s: f64,
    pub reproduced: usize,
    pub python_s: f64,
    pub python_rows_per_s: f64,
    pub python_agreed: usize,
    /// Python's time over ours.
    pub speedup: f64,
    pub cached_s: f64,
    pub cached_rows_per_s: f64,
}

/// Write the rows (once per size): `originals` JPEGs of 2000-4000 px a side, `rows` rows each
/// cropping a box of 64-400 px (no widening) and storing exactly that crop as PNG.
pub fn make_rows(dir: &Path, rows: usize, originals: usize) -> anyhow::Result<PathBuf> {
    let file = dir.join(format!("sft-{rows}.jsonl"));
    if file.is_file() {
        return Ok(file);
    }
    let images = dir.join("images");
    std::fs::create_dir_all(&images)?;
    let mut rng = Rng::new(2026);
    let mut sizes = Vec::new();
    let mut pictures = Vec::new();
    for k in 0..originals {
        let (w, h) = (rng.range(2000, 4001), rng.range(2000, 4001));
        let name = format!("images/original-{k:03}.jpg");
        let salt = k as u32 * 7919;
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503) ^ salt) >> 24;
            image::Rgb([
                ((x / 9) as u8) ^ n as u8,
                (y / 7) as u8,
                (x + y + salt) as u8,
            ])
        });
        img.save(dir.join(&name))?;
        // What Pillow decodes is what the code crops: the stored crops come from the decoded
        // JPEG, as the dataset's writer's sandbox would have made them.
        let decoded = image::open(dir.join(&name))?.into_rgb8();
        sizes.push((w, h));
        pictures.push((name, decoded));
    }
    let mut out = String::new();
    for i in 0..rows {
        let k = rng.range(0, originals.max(1) as u32) as usize;
        let (w, h) = sizes[k];
        let (bw, bh) = (rng.range(64, 401), rng.range(64, 401));
        let x0 = rng.range(0, w - bw);
        let y0 = rng.range(0, h - bh);
        let crop = image::imageops::crop_imm(&pictures[k].1, x0, y0, bw, bh).to_image();
        let stored = format!("images/crop-{i:06}.png");
        crop.save(dir.join(&stored))?;
        let response = format!(
            "<think>Look closer.</think><code>\n```python\nfrom PIL import Image\nimg = Image.open(image_path)\nc = img.crop(({x0}, {y0}, {}, {}))\nc.save('/mnt/data/temp_processed_images/c{i}.png')\nprint('/mnt/data/temp_processed_images/c{i}.png')\n```\n</code><sandbox_output><image></sandbox_output><answer>A</answer>",
            x0 + bw,
            y0 + bh
        );
        out.push_str(&serde_json::to_string(&serde_json::json!({
            "id": format!("row-{i:06}"),
            "image": [pictures[k].0, stored],
            "question": "<image>\nWhat is there?",
            "response": response,
            "answer": "A",
        }))?);
        out.push('\n');
    }
    std::fs::write(&file, out)?;
    Ok(file)
}

pub fn run(
    cfg: SandboxConfig,
    dir: &Path,
    rows: usize,
    originals: usize,
    jobs: usize,
) -> anyhow::Result<AuditBench> {
    std::fs::create_dir_all(dir)?;
    let dir = &std::path::absolute(dir)?;
    let file = make_rows(dir, rows, originals)?;
    let loaded = read(&file, LogFormat::ThymeSft)?;
    anyhow::ensure!(loaded.problems.is_empty(), "{:?}", loaded.problems.first());
    let sources: Vec<Source> = loaded
        .traces
        .into_iter()
        .map(|t| Source {
            line: t.run.source_line,
            file: file.display().to_string(),
            trace: t,
        })
        .collect();
    let python = cfg.runtime.python();
    let cache = dir.join("audit-cache.jsonl");
    let _ = std::fs::remove_file(&cache);
    let auditor = Auditor {
        sandbox: Some(cfg),
        jobs,
        cache: Some(cache),
    };
    let cancel = AtomicBool::new(false);
    let t = Instant::now();
    let results = auditor.run(&sources, &cancel, &|_, _| {});
    let ours_s = t.elapsed().as_secs_f64();
    let steps: Vec<_> = results.into_iter().flat_map(|r| r.steps).collect();
    let report = Report::of(&steps, sources.len());
    let t = Instant::now();
    let cached = auditor.run(&sources, &cancel, &|_, _| {});
    let cached_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        cached.iter().all(|r| r.cached),
        "the second audit did not come from the cache"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/audit_peer.py");
    let work = dir.join("python-out");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(&file)
        .arg(&work)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "the Python peer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peer: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let python_s = peer["seconds"].as_f64().unwrap_or(f64::NAN);
    let n = sources.len() as f64;
    Ok(AuditBench {
        rows: sources.len(),
        originals,
        jobs,
        ours_s,
        ours_rows_per_s: n / ours_s,
        reproduced: report
            .by_verdict
            .get(&Verdict::Reproduced)
            .copied()
            .unwrap_or(0),
        python_s,
        python_rows_per_s: n / python_s,
        python_agreed: peer["agreed"].as_u64().unwrap_or(0) as usize,
        speedup: python_s / ours_s,
        cached_s,
        cached_rows_per_s: n / cached_s,
    })
}
