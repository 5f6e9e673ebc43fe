//! The first-pixels benchmark: a JPEG's eighth-scale picture from our DC-only decoder (on every
//! core and on one), from jpeg-decoder's scaled decode (the path before it), and from Pillow's
//! `draft` (libjpeg-turbo's scaled decode), each the best of three, in the same run. Then the
//! full-resolution decode: our band decoder (every row, in the tile pyramid's bands of 512,
//! on every core), the `image` crate's (zune-jpeg, the path before it) and Pillow's.

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
    /// What the tile service does before its preview: the header probed, the file checked
    /// complete, the orientation read and the rows opened (the DC pass, giving the preview);
    /// `None` for a file the band decoder leaves to the general one.
    pub open_rows_s: Option<f64>,
    pub jpeg_decoder_s: f64,
    pub pillow_draft_s: Option<f64>,
    /// Full resolution: ours in bands (`None` for a file it leaves to the general decoder),
    /// the `image` crate, Pillow.
    pub full_bands_s: Option<f64>,
    pub full_image_crate_s: f64,
    pub full_pillow_s: Option<f64>,
}

/// Pillow's best of three for `mode` (`--first-only` or `--full-only`), from the script's JSON.
fn pillow(script: &Path, file: &Path, mode: &str, key: &str) -> Option<f64> {
    Command::new("python3")
        .arg(script)
        .arg(file)
        .arg(mode)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|v| v[key].as_f64())
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
        let budget = crate::imagery::PixelBudget::DEFAULT;
        let banded = crate::imagery::rows::open_rows(file, &bytes, budget)?.banded();
        let open_rows =
            best_of_three(|| Ok(crate::imagery::rows::open_rows(file, &bytes, budget).map(drop)?))?;
        let open_rows = banded.then_some(open_rows);
        let old = best_of_three(|| {
            let mut d = jpeg_decoder::Decoder::new(std::io::Cursor::new(&bytes));
            d.read_info()?;
            let info = d.info().ok_or_else(|| anyhow::anyhow!("no header"))?;
            d.scale(info.width.div_ceil(8), info.height.div_ceil(8))?;
            d.decode()?;
            Ok(())
        })?;
        let pillow_draft = pillow(pillow_script, file, "--first-only", "first");
        let full_bands = match jpeg::JpegBands::open(&bytes, threads) {
            Ok(_) => Some(best_of_three(|| {
                let bands = jpeg::JpegBands::open(&bytes, threads)?;
                for start in (0..bands.height()).step_by(512) {
                    bands.rows(start..start + 512, threads)?;
                }
                Ok(())
            })?),
            Err(_) => None,
        };
        let full_image_crate = best_of_three(|| {
            image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)?;
            Ok(())
        })?;
        rows.push(Row {
            file: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            megapixels: f64::from(img.width()) * f64::from(img.height()) * 64.0 / 1e6,
            progressive: bytes.windows(2).any(|w| w == [0xFF, 0xC2]),
            ours_s: ours,
            ours_one_thread_s: one,
            open_rows_s: open_rows,
            jpeg_decoder_s: old,
            pillow_draft_s: pillow_draft,
            full_bands_s: full_bands,
            full_image_crate_s: full_image_crate,
            full_pillow_s: pillow(pillow_script, file, "--full-only", "full"),
        });
    }
    Ok(rows)
}

/// The rows as a markdown table with ratios against Pillow.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| image | MP | ours s (all cores / one) | jpeg-decoder 1/8 s | Pillow draft s | ours vs Pillow (all cores / one) | rows opened s (the app's preview, banded files) | full decode s (our bands / image crate / Pillow) | bands vs image crate / Pillow |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let ratio = |t: f64| {
            r.pillow_draft_s
                .map_or("-".into(), |p| format!("{:.2}x", t / p))
        };
        let opt = |t: Option<f64>| t.map_or("-".into(), |t| format!("{t:.3}"));
        let full_ratio = |peer: Option<f64>| match (r.full_bands_s, peer) {
            (Some(ours), Some(p)) => format!("{:.2}x", ours / p),
            _ => "-".into(),
        };
        s.push_str(&format!(
            "| {}{} | {:.0} | {:.3} / {:.3} | {:.3} | {} | {} / {} | {} | {} / {:.3} / {} | {} / {} |\n",
            r.file,
            if r.progressive { " (progressive)" } else { "" },
            r.megapixels,
            r.ours_s,
            r.ours_one_thread_s,
            r.jpeg_decoder_s,
            r.pillow_draft_s.map_or("-".into(), |p| format!("{p:.3}")),
            ratio(r.ours_s),
            ratio(r.ours_one_thread_s),
            opt(r.open_rows_s),
            opt(r.full_bands_s),
            r.full_image_crate_s,
            opt(r.full_pillow_s),
            full_ratio(Some(r.full_image_crate_s)),
            full_ratio(r.full_pillow_s),
        ));
    }
    s
}
