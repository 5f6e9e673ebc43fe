//! Step pictures: a run's output images (crops, zooms) loaded once each as textures, checked
//! against a pixel budget from their header before anything is decoded, and shown fitted to the
//! space they are given. Shared by Inspect and Run.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use egui::TextureHandle;

/// The largest output image shown (pixels, checked from the header).
const PICTURE_BUDGET: u64 = 64_000_000;

#[derive(Default)]
pub struct Pictures {
    /// None: the file cannot be shown (missing, corrupt or too large).
    cache: HashMap<PathBuf, Option<TextureHandle>>,
}

impl Pictures {
    /// The picture's texture, loading it on first use.
    pub fn texture(&mut self, ctx: &egui::Context, path: &Path) -> Option<TextureHandle> {
        self.cache
            .entry(path.to_owned())
            .or_insert_with(|| load(ctx, path))
            .clone()
    }

    /// A texture already loaded (None when never asked for or not showable).
    pub fn loaded(&self, path: &Path) -> Option<TextureHandle> {
        self.cache.get(path).cloned().flatten()
    }

    /// The picture fitted to `max_width` (never above twice its size); true when clicked.
    pub fn show(&mut self, ui: &mut egui::Ui, path: &Path, max_width: f32) -> bool {
        match self.texture(ui.ctx(), path) {
            Some(t) => {
                let size = t.size_vec2();
                let w = max_width.min(size.x.max(1.0) * 2.0);
                let scale = w / size.x.max(1.0);
                ui.add(egui::Image::new((t.id(), size * scale)).sense(egui::Sense::click()))
                    .on_hover_text(path.display().to_string())
                    .clicked()
            }
            None => {
                ui.weak(format!("{} cannot be shown", path.display()));
                false
            }
        }
    }
}

fn load(ctx: &egui::Context, path: &Path) -> Option<TextureHandle> {
    crate::imagery::probe_file(path, crate::imagery::PixelBudget(PICTURE_BUDGET)).ok()?;
    let img = image::open(path).ok()?;
    let img = if img.width().max(img.height()) > 2048 {
        img.thumbnail(2048, 2048)
    } else {
        img
    };
    let rgba = img.into_rgba8();
    let color = egui::ColorImage::from_rgba_unmultiplied(
        [rgba.width() as usize, rgba.height() as usize],
        rgba.as_raw(),
    );
    Some(ctx.load_texture(
        path.display().to_string(),
        color,
        egui::TextureOptions::LINEAR,
    ))
}
