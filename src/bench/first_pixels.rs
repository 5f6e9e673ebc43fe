//! The first-pixels benchmark: a JPEG's eighth-scale picture from our DC-only decoder (on every
//! core and on one), from jpeg-decoder's scaled decode (the path before it), and from Pillow's
//! `draft` (libjpeg-turbo's scaled decode), each the best of three, in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::imagery::jpeg;

/// One file's times in seconds.
#[derive(Debug, serde::Serialize)]
pub struct Row {
    pub file: String,
    pub megapixels: f64,
    pub progressive: bool,
    pub ours_s: f64,
    pub ours_one_thread_s: f64,
    pub jpeg_decoder_s: f64,
    pub pillow_draft_s: Option<f64>,
}

fn best_of_three(mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

/// Measure `files` (JPEGs); `pillow_script` is benches/peers/pillow_pyramid.py.
pub fn run(files: &[PathBuf], pillow_script: &Path) -> anyhow::Result<Vec<Row>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut rows = Vec::new();
    for file in files {
        // Read from memory each time, as the tile service does after one read.
        let bytes = std::fs::read(file)?;
        let img = jpeg::decode_eighth(&bytes, threads)?;
        let ours = best_of_three(|| Ok(jpeg::decode_eighth(&bytes, threads).map(drop)?))?;
        let one = best_of_three(|| Ok(jpeg::decode_eighth(&bytes, 1).map(drop)?))?;
        let old = best_of_three(|| {
            let mut d = jpeg_decoder::Decoder::new(std::io::Cursor::new(&bytes));
            d.read_info()?;
            let info = d.info().ok_or_else(|| anyhow::anyhow!("no header"))?;
            d.scale(info.width.div_ceil(8), info.height.div_ceil(8))?;
            d.decode()?;
            Ok(())
        })?;
        let pillow = Command::new("python3")
            .arg(pillow_script)
            .arg(file)
            .arg("--first-only")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .and_then(|v| v["first"].as_f64());
        rows.push(Row {
            file: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            megapixels: f64::from(img.width()) * f64::from(img.height()) * 64.0 / 1e6,
            progressive: bytes.windows(2).any(|w| w == [0xFF, 0xC2]),
            ours_s: ours,
            ours_one_thread_s: one,
            jpeg_decoder_s: old,
            pillow_draft_s: pillow,
        });
    }
    Ok(rows)
}

/// The rows as a markdown table with ratios against Pillow.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| image | MP | ours s (all cores / one) | jpeg-decoder 1/8 s | Pillow draft s | ours vs Pillow (all cores / one) |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let ratio = |t: f64| {
            r.pillow_draft_s
                .map_or("-".into(), |p| format!("{:.2}x", t / p))
        };
        s.push_str(&format!(
            "| {}{} | {:.0} | {:.3} / {:.3} | {:.3} | {} | {} / {} |\n",
            r.file,
            if r.progressive { " (progressive)" } else { "" },
            r.megapixels,
            r.ours_s,
            r.ours_one_thread_s,
            r.jpeg_decoder_s,
            r.pillow_draft_s.map_or("-".into(), |p| format!("{p:.3}")),
            ratio(r.ours_s),
            ratio(r.ours_one_thread_s),
        ));
    }
    s
}
