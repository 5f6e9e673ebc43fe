//! The canvas benchmark: time to first pixels and to a full pyramid against libvips and Pillow,
//! UI-thread time per frame while panning and zooming, peak memory and GPU texture bytes.
//!
//! Each image is measured in a child process (`thyme-studio bench canvas-one FILE`) so its peak
//! RSS is its own; the peers run as the commands a user of them would type.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::dataset::ImageId;
use crate::geometry::ImageSize;
use crate::imagery::tiles::{BuildStatus, TileService};
use crate::imagery::{PixelBudget, probe_file};
use crate::ui::canvas::Canvas;

/// What one image measured in our process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OursOne {
    pub file: String,
    pub width: u32,
    pub height: u32,
    pub first_pixels_s: f64,
    pub full_pyramid_s: f64,
    /// First pixels when the image is opened again (its pyramid on disk, a new process state).
    pub reopen_first_pixels_s: f64,
    pub tiles: usize,
    pub frames: usize,
    pub frame_p50_ms: f64,
    pub frame_p99_ms: f64,
    pub frame_max_ms: f64,
    pub gpu_texture_bytes_max: usize,
    pub ram_tile_bytes_max: usize,
    pub peak_rss_mib: f64,
}

/// One row of the report: ours and the peers on one file.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub ours: OursOne,
    pub vips_first_s: Option<f64>,
    pub vips_full_s: Option<f64>,
    pub pillow_first_s: Option<f64>,
    pub pillow_full_s: Option<f64>,
}

const VIEWPORT: [f32; 2] = [3840.0, 2160.0];

/// Measure one image: first pixels, full pyramid (cold cache), then a scripted pan-and-zoom
/// session of `frames` frames at a 3840x2160 viewport.
pub fn measure_one(path: &Path, frames: usize) -> anyhow::Result<OursOne> {
    let probe = probe_file(path, PixelBudget::DEFAULT)?;
    let size = probe.size;
    let id = ImageId::of_file(path)?;
    let cache = tempfile::tempdir()?;
    let tiles = TileService::new(cache.path(), 768 << 20, PixelBudget::DEFAULT, 2);
    let layout = crate::imagery::pyramid::PyramidLayout::new(size);
    let top = crate::imagery::pyramid::TileKey {
        level: layout.top(),
        col: 0,
        row: 0,
    };
    let start = Instant::now();
    tiles.open(&id, path.to_owned(), size);
    let mut first = None;
    let mut ram_max = 0;
    let full = loop {
        if first.is_none() && (tiles.preview(&id).is_some() || tiles.tile(&id, top).is_some()) {
            first = Some(start.elapsed().as_secs_f64());
        }
        ram_max = ram_max.max(tiles.ram_usage().0);
        match tiles.status(&id) {
            Some(BuildStatus::Complete) => break start.elapsed().as_secs_f64(),
            Some(BuildStatus::Failed(e)) => anyhow::bail!(e),
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    };
    let first = first.unwrap_or(full);
    let (times, gpu_max) = frame_session(&tiles, &id, size, frames, &mut ram_max);
    drop(tiles);
    // Reopen: a fresh service over the same disk cache.
    let again = TileService::new(cache.path(), 768 << 20, PixelBudget::DEFAULT, 2);
    let start = Instant::now();
    again.open(&id, path.to_owned(), size);
    let reopen = loop {
        if again.tile(&id, top).is_some() {
            break start.elapsed().as_secs_f64();
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(60),
            "reopening never showed a tile"
        );
        std::thread::sleep(Duration::from_micros(200));
    };
    Ok(OursOne {
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        width: size.width,
        height: size.height,
        first_pixels_s: first,
        full_pyramid_s: full,
        reopen_first_pixels_s: reopen,
        tiles: layout.tile_count(),
        frames: times.len(),
        frame_p50_ms: super::percentile(&times, 0.50),
        frame_p99_ms: super::percentile(&times, 0.99),
        frame_max_ms: times.iter().copied().fold(0.0, f64::max),
        gpu_texture_bytes_max: gpu_max,
        ram_tile_bytes_max: ram_max,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// Drive the canvas through zooming in about several points, dragging, and zooming out, at a
/// 60 Hz pace so tile loads can land; returns the UI-thread time of every frame (egui pass plus
/// tessellation) and the most GPU texture bytes held.
fn frame_session(
    tiles: &TileService,
    id: &ImageId,
    size: ImageSize,
    frames: usize,
    ram_max: &mut usize,
) -> (Vec<f64>, usize) {
    let ctx = egui::Context::default();
    let mut canvas = Canvas::new();
    canvas.set_image(id.clone(), size);
    let screen = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::Vec2::from(VIEWPORT));
    let mut times = Vec::with_capacity(frames);
    let mut gpu_max = 0;
    let mut dragging = false;
    for f in 0..frames {
        let phase = f * 8 / frames.max(1);
        let t = f as f32 / frames.max(1) as f32;
        let anchor = egui::pos2(
            VIEWPORT[0] * (0.3 + 0.4 * t),
            VIEWPORT[1] * (0.35 + 0.3 * (t * 7.0).sin().abs()),
        );
        let mut events = vec![egui::Event::PointerMoved(anchor)];
        let wheel = |lines: f32| egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Line,
            delta: egui::vec2(0.0, lines),
            phase: egui::TouchPhase::Move,
            source: egui::MouseWheelSource::Unknown,
            modifiers: egui::Modifiers::NONE,
        };
        match phase {
            0 | 4 => events.push(wheel(0.5)),
            1 | 5 => {
                if !dragging {
                    events.push(egui::Event::PointerButton {
                        pos: anchor,
                        button: egui::PointerButton::Primary,
                        pressed: true,
                        modifiers: egui::Modifiers::NONE,
                    });
                    dragging = true;
                }
            }
            2 | 6 => {
                if dragging {
                    events.push(egui::Event::PointerButton {
                        pos: anchor,
                        button: egui::PointerButton::Primary,
                        pressed: false,
                        modifiers: egui::Modifiers::NONE,
                    });
                    dragging = false;
                }
                events.push(wheel(-0.4));
            }
            _ => events.push(wheel(0.2)),
        }
        let input = egui::RawInput {
            screen_rect: Some(screen),
            events,
            time: Some(f as f64 / 60.0),
            ..Default::default()
        };
        let started = Instant::now();
        let output = ctx.run_ui(input, |ui| {
            egui::CentralPanel::no_frame().show(ui, |ui| {
                canvas.show(ui, tiles, &[]);
            });
        });
        let egui::FullOutput {
            shapes,
            pixels_per_point,
            mut textures_delta,
            ..
        } = output;
        let _ = ctx.tessellate(shapes, pixels_per_point);
        // No GPU here: the uploads are counted by the canvas; drop them as a renderer would
        // after applying them.
        textures_delta.clear();
        // The first frame builds egui's font atlas once per app, not per image: left out.
        if f > 0 {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        gpu_max = gpu_max.max(canvas.gpu_bytes());
        *ram_max = (*ram_max).max(tiles.ram_usage().0);
        std::thread::sleep(Duration::from_millis(16));
    }
    (times, gpu_max)
}

/// This process's peak resident memory (Linux `VmHWM`), in MiB; 0 where unknown.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// Seconds a command takes, or `None` when it cannot run.
fn time_command(program: &str, args: &[&str]) -> Option<f64> {
    let start = Instant::now();
    let status = Command::new(program).args(args).output().ok()?;
    if !status.status.success() {
        tracing::warn!(
            "{program} failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        return None;
    }
    Some(start.elapsed().as_secs_f64())
}

#[derive(Deserialize)]
struct PillowOut {
    first: f64,
    full: f64,
}

/// The whole benchmark over `files`: ours (in a child process each), libvips, Pillow.
pub fn run(
    exe: &Path,
    files: &[PathBuf],
    pillow_script: &Path,
    frames: usize,
) -> anyhow::Result<Vec<Row>> {
    let scratch = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for file in files {
        let f = file.to_string_lossy().into_owned();
        let out = Command::new(exe)
            .args(["bench", "canvas-one", &f, "--frames", &frames.to_string()])
            .output()
            .with_context(|| format!("running {}", exe.display()))?;
        if !out.status.success() {
            anyhow::bail!("{}: {}", f, String::from_utf8_lossy(&out.stderr));
        }
        let ours: OursOne =
            serde_json::from_slice(&out.stdout).context("reading the child's JSON")?;
        let thumb = scratch.path().join("thumb.jpg");
        let vips_first = time_command(
            "vipsthumbnail",
            &[&f, "--size", "1024", "-o", &thumb.to_string_lossy()],
        );
        let dz = scratch.path().join(format!("dz-{}", rows.len()));
        let vips_full = time_command(
            "vips",
            &[
                "dzsave",
                &f,
                &dz.to_string_lossy(),
                "--tile-size",
                "512",
                "--overlap",
                "0",
            ],
        );
        let pillow = Command::new("python3")
            .arg(pillow_script)
            .arg(&f)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| serde_json::from_slice::<PillowOut>(&o.stdout).ok());
        rows.push(Row {
            ours,
            vips_first_s: vips_first,
            vips_full_s: vips_full,
            pillow_first_s: pillow.as_ref().map(|p| p.first),
            pillow_full_s: pillow.as_ref().map(|p| p.full),
        });
    }
    Ok(rows)
}

/// The report as a Markdown table (ratios are ours / peer: below 1 means faster).
pub fn markdown(rows: &[Row]) -> String {
    let ratio = |a: f64, b: Option<f64>| {
        b.map(|b| format!("{:.2}x", a / b))
            .unwrap_or_else(|| "-".into())
    };
    let secs = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
    let mut s = String::new();
    s.push_str("| image | MP | first pixels s (ours / vips / Pillow) | ours vs vipsthumbnail / Pillow draft | full pyramid s (ours / vips dzsave / Pillow) | ours vs vips / Pillow | reopen first pixels ms | frame p50 / p99 / max ms | GPU MiB | tile RAM MiB | peak RSS MiB |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in rows {
        let o = &r.ours;
        s.push_str(&format!(
            "| {} | {:.0} | {:.2} / {} / {} | {} / {} | {:.2} / {} / {} | {} / {} | {:.1} | {:.2} / {:.2} / {:.2} | {:.0} | {:.0} | {:.0} |\n",
            o.file,
            f64::from(o.width) * f64::from(o.height) / 1e6,
            o.first_pixels_s,
            secs(r.vips_first_s),
            secs(r.pillow_first_s),
            ratio(o.first_pixels_s, r.vips_first_s),
            ratio(o.first_pixels_s, r.pillow_first_s),
            o.full_pyramid_s,
            secs(r.vips_full_s),
            secs(r.pillow_full_s),
            ratio(o.full_pyramid_s, r.vips_full_s),
            ratio(o.full_pyramid_s, r.pillow_full_s),
            o.reopen_first_pixels_s * 1000.0,
            o.frame_p50_ms,
            o.frame_p99_ms,
            o.frame_max_ms,
            o.gpu_texture_bytes_max as f64 / f64::from(1u32 << 20),
            o.ram_tile_bytes_max as f64 / f64::from(1u32 << 20),
            o.peak_rss_mib,
        ));
    }
    s
}
