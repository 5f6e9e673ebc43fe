//! UI-thread time per frame of the whole Annotate workspace while a box's corner handle is
//! dragged on the 96 MP demo scene (12000 x 8000), with the release frame (the durable SQLite
//! write) reported apart, and idle frames of the same view as the reference.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::app::dialogs::NativeDialogs;
use crate::app::{AppConfig, StudioApp};
use crate::imagery::PixelBudget;
use crate::paths::AppDirs;
use crate::store::{SqliteStore, Store};

const VIEWPORT: [f32; 2] = [1920.0, 1080.0];

#[derive(Debug, Clone, Serialize)]
pub struct DragReport {
    pub image: String,
    pub megapixels: f64,
    pub drag_frames: usize,
    pub drag_p50_ms: f64,
    pub drag_p99_ms: f64,
    pub drag_max_ms: f64,
    pub release_ms: f64,
    pub idle_p50_ms: f64,
    pub idle_p99_ms: f64,
}

struct Driver {
    ctx: egui::Context,
    app: StudioApp,
    frame: usize,
}

impl Driver {
    /// One frame with these events; returns its UI-thread time in ms (egui pass plus
    /// tessellation, as a renderer would ask for).
    fn frame(&mut self, events: Vec<egui::Event>) -> f64 {
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                egui::Vec2::from(VIEWPORT),
            )),
            events,
            time: Some(self.frame as f64 / 60.0),
            ..Default::default()
        };
        self.frame += 1;
        let started = Instant::now();
        let app = &mut self.app;
        let output = self.ctx.run_ui(input, |ui| app.show(ui));
        let egui::FullOutput {
            shapes,
            pixels_per_point,
            mut textures_delta,
            ..
        } = output;
        let _ = self.ctx.tessellate(shapes, pixels_per_point);
        textures_delta.clear();
        started.elapsed().as_secs_f64() * 1000.0
    }

    /// Frames at 60 Hz until `done` or a minute.
    fn until(&mut self, what: &str, done: impl Fn(&StudioApp) -> bool) -> anyhow::Result<()> {
        let start = Instant::now();
        while !done(&self.app) {
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(120),
                "timed out waiting for {what}"
            );
            self.frame(vec![]);
            std::thread::sleep(Duration::from_millis(16));
        }
        Ok(())
    }
}

fn button(pos: egui::Pos2, pressed: bool) -> egui::Event {
    egui::Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed,
        modifiers: egui::Modifiers::NONE,
    }
}

/// Make the full-size demo in `dir` (once), open its largest scene, zoom onto a box and drag
/// the box's bottom-right handle for `frames` frames.
pub fn run(dir: &Path, frames: usize) -> anyhow::Result<DragReport> {
    let project = dir.join("demo").join(crate::demo::PROJECT_FILE);
    if !project.is_file() {
        crate::demo::write_demo(&dir.join("demo"), 1, &|_| {})?;
    }
    let store = SqliteStore::open(&project)?;
    let image = store
        .images()?
        .into_iter()
        .max_by_key(|i| i.size.pixels())
        .ok_or_else(|| anyhow::anyhow!("the demo project has no images"))?;
    let region = store
        .regions(&image.id)?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the demo's largest scene has no boxes"))?;
    drop(store);
    let app = StudioApp::new(AppConfig {
        project: Some(project.clone()),
        dirs: AppDirs::under(dir.join("home")),
        dialogs: Arc::new(NativeDialogs),
        budget: PixelBudget::DEFAULT,
        demo_scale: 1,
        trace: None,
        launcher: None,
    });
    let mut d = Driver {
        ctx: egui::Context::default(),
        app,
        frame: 0,
    };
    d.until("the project", |a| a.session.project.is_some())?;
    d.app.select(image.id.clone());
    d.app.annotate.editor.selected = Some(region.id);
    d.until("the first view", |a| a.annotate.canvas.view().is_some())?;
    d.app.annotate.canvas.focus(&region.rect);
    d.until("the tiles under the box", |a| a.annotate.canvas.settled())?;
    // Reference: the same view with nothing happening.
    let idle: Vec<f64> = (0..60).map(|_| d.frame(vec![])).collect();

    let view = d
        .app
        .annotate
        .canvas
        .view()
        .ok_or_else(|| anyhow::anyhow!("no view"))?;
    let viewport = d.app.annotate.canvas.viewport();
    let start = view.to_screen(viewport, (region.rect.x1, region.rect.y1));
    d.frame(vec![egui::Event::PointerMoved(start)]);
    d.frame(vec![button(start, true)]);
    let mut times = Vec::with_capacity(frames);
    for f in 0..frames {
        // Out and back along a diagonal, a few screen points per frame like a hand.
        let t = f as f32 / frames.max(1) as f32;
        let reach = 120.0 * (t * std::f32::consts::PI).sin();
        let p = start + egui::vec2(reach, reach * 0.6);
        times.push(d.frame(vec![egui::Event::PointerMoved(p)]));
        std::thread::sleep(Duration::from_millis(16));
    }
    let end = start + egui::vec2(8.0, 5.0);
    d.frame(vec![egui::Event::PointerMoved(end)]);
    let release_ms = d.frame(vec![button(end, false)]);
    let saved = SqliteStore::open(&project)?
        .regions(&image.id)?
        .into_iter()
        .find(|r| r.id == region.id)
        .map(|r| r.rect);
    anyhow::ensure!(
        saved.is_some_and(|r| r != region.rect),
        "the dragged box was not saved"
    );
    Ok(DragReport {
        image: image.file_name(),
        megapixels: image.size.pixels() as f64 / 1e6,
        drag_frames: times.len(),
        drag_p50_ms: super::percentile(&times, 0.5),
        drag_p99_ms: super::percentile(&times, 0.99),
        drag_max_ms: times.iter().copied().fold(0.0, f64::max),
        release_ms,
        idle_p50_ms: super::percentile(&idle, 0.5),
        idle_p99_ms: super::percentile(&idle, 0.99),
    })
}
