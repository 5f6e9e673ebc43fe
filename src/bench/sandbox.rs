//! Sandbox step overhead: a crop + 2x resize + JPEG save on a 4000x3000 JPEG, and a no-op
//! step, 50 steps each, run by our warm worker, by a fresh `python` process per step (what a
//! naive harness does) and by `exec` inside one Python process (Thyme's own way, no
//! isolation), all with the same runtime on the same image in one run.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use crate::sandbox::{Sandbox, SandboxConfig};

pub const CROP_STEP: &str = "from PIL import Image\nimg = Image.open(image_path)\ncrop = img.crop((1200, 900, 1800, 1300))\nzoom = crop.resize((crop.width * 2, crop.height * 2))\nprocessed_path = 'zoom.jpg'\nzoom.save(processed_path, quality=90)\nprint(processed_path)\n";
pub const NOOP_STEP: &str = "pass\n";

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub step: String,
    pub way: String,
    pub p50_ms: f64,
    pub p95_ms: f64,
}

fn stats(step: &str, way: &str, mut v: Vec<f64>) -> Row {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        v.get(((v.len().max(1) - 1) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    Row {
        step: step.into(),
        way: way.into(),
        p50_ms: at(0.5),
        p95_ms: at(0.95),
    }
}

pub fn run(cfg: SandboxConfig, dir: &Path, steps: usize) -> anyhow::Result<Vec<Row>> {
    std::fs::create_dir_all(dir)?;
    let dir = &std::path::absolute(dir)?;
    let image = dir.join("photo-4000x3000.jpg");
    if !image.exists() {
        let img = image::RgbImage::from_fn(4000, 3000, |x, y| {
            let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 24;
            image::Rgb([(x / 16) as u8 ^ n as u8, (y / 12) as u8, (x + y) as u8])
        });
        img.save(&image)?;
    }
    let python = cfg.runtime.python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/sandbox_peer.py");
    let mut rows = Vec::new();
    let mut sandbox = Sandbox::start(cfg)?;
    let cancel = AtomicBool::new(false);
    for (name, code) in [("crop+2x+JPEG", CROP_STEP), ("no-op", NOOP_STEP)] {
        // Ours: a warm worker, timed from the request to the checked result.
        let mut ours = Vec::new();
        for _ in 0..steps {
            let t = Instant::now();
            let r = sandbox.execute(code, &image, &cancel);
            anyhow::ensure!(r.error.is_none(), "step failed: {:?}", r.error);
            ours.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        rows.push(stats(name, "thyme-studio warm worker (confined)", ours));
        let code_file = dir.join("step.py");
        std::fs::write(&code_file, code)?;
        let out = dir.join("peer-out");
        std::fs::create_dir_all(&out)?;
        // A fresh process per step.
        let mut fresh = Vec::new();
        for _ in 0..steps {
            let t = Instant::now();
            let o = std::process::Command::new(&python)
                .arg(&script)
                .arg("fresh")
                .arg(&image)
                .arg(&out)
                .arg(&code_file)
                .output()?;
            anyhow::ensure!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            fresh.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        rows.push(stats(name, "fresh python per step", fresh));
        // exec in one process.
        let o = std::process::Command::new(&python)
            .arg(&script)
            .arg("inprocess")
            .arg(&image)
            .arg(&out)
            .arg(&code_file)
            .arg(steps.to_string())
            .output()?;
        anyhow::ensure!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let times: Vec<f64> = serde_json::from_slice(&o.stdout)?;
        rows.push(stats(name, "exec in-process (Thyme, no isolation)", times));
    }
    sandbox.close();
    Ok(rows)
}

pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from("| step | way | p50 ms | p95 ms |\n|---|---|---|---|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} |\n",
            r.step, r.way, r.p50_ms, r.p95_ms
        ));
    }
    s
}
