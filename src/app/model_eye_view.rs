//! The model-eye window: the whole image as the VLM receives it after smart_resize at the
//! project's max_pixels, with the 28 px patch grid and every box drawn at the size the model
//! sees; boxes below one patch are flagged in the warning colour.

use std::sync::mpsc::{Receiver, channel};

use egui::{Color32, Stroke, TextureHandle};
use image::RgbImage;

use crate::dataset::{ImageId, Region};
use crate::geometry::ImageSize;
use crate::imagery::model_eye::{self, DEFAULT_MIN_PIXELS};
use crate::imagery::pyramid::PyramidLayout;
use crate::imagery::tiles::TileService;

/// Longest side of the picture uploaded for display (GPU textures stay well inside limits).
const MAX_DISPLAY_SIDE: u32 = 4096;

/// What the window shows and the work behind it.
#[derive(Default)]
pub struct ModelEyeView {
    pub open: bool,
    pub show_grid: bool,
    /// The image and max_pixels the picture (or the job making it) is for.
    key: Option<(ImageId, u64)>,
    job: Option<Receiver<RgbImage>>,
    texture: Option<TextureHandle>,
}

impl ModelEyeView {
    /// Is a picture being made?
    pub fn busy(&self) -> bool {
        self.open && self.job.is_some()
    }

    /// Show the window for this image (when open).
    pub fn show(
        &mut self,
        ctx: &egui::Context,
        tiles: &TileService,
        image: &ImageId,
        size: ImageSize,
        regions: &[Region],
        max_pixels: u64,
    ) {
        if !self.open {
            return;
        }
        let resized = model_eye::smart_resize(size, DEFAULT_MIN_PIXELS, max_pixels);
        let key = (image.clone(), max_pixels);
        if self.key.as_ref() != Some(&key) {
            self.key = Some(key);
            self.job = None;
            self.texture = None;
        }
        if let Ok(resized) = resized {
            self.make_picture(ctx, tiles, image, size, resized);
        }
        let mut open = self.open;
        egui::Window::new("Model-eye view")
            .open(&mut open)
            .default_size([720.0, 560.0])
            .default_pos(ctx.content_rect().left_top() + egui::vec2(330.0, 70.0))
            .resizable(true)
            .show(ctx, |ui| match resized {
                Err(e) => {
                    ui.colored_label(ui.visuals().error_fg_color, e.to_string());
                }
                Ok(resized) => self.contents(ui, size, resized, regions, max_pixels),
            });
        self.open = open;
    }

    /// Start or collect the background resize; tiles that are not in RAM yet are asked for and
    /// the next frames try again.
    fn make_picture(
        &mut self,
        ctx: &egui::Context,
        tiles: &TileService,
        image: &ImageId,
        size: ImageSize,
        resized: ImageSize,
    ) {
        if let Some(rx) = &self.job {
            if let Ok(picture) = rx.try_recv() {
                let rgb = egui::ColorImage::from_rgb(
                    [picture.width() as usize, picture.height() as usize],
                    picture.as_raw(),
                );
                self.texture =
                    Some(ctx.load_texture("model-eye", rgb, egui::TextureOptions::LINEAR));
                self.job = None;
            }
            return;
        }
        if self.texture.is_some() {
            return;
        }
        let level = model_eye::source_level(&PyramidLayout::new(size), resized);
        let Some(source) = tiles.level_image(image, size, level) else {
            ctx.request_repaint_after(std::time::Duration::from_millis(50));
            return;
        };
        let (tx, rx) = channel();
        let ctx2 = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("model-eye".into())
            .spawn(move || {
                let mut picture = model_eye::render(source, resized);
                let longest = picture.width().max(picture.height());
                if longest > MAX_DISPLAY_SIDE {
                    let s = f64::from(MAX_DISPLAY_SIDE) / f64::from(longest);
                    let (w, h) = (
                        ((f64::from(picture.width()) * s) as u32).max(1),
                        ((f64::from(picture.height()) * s) as u32).max(1),
                    );
                    picture = image::DynamicImage::ImageRgb8(picture)
                        .resize_exact(w, h, image::imageops::FilterType::Triangle)
                        .into_rgb8();
                }
                let _ = tx.send(picture);
                ctx2.request_repaint();
            });
        match spawned {
            Ok(_) => self.job = Some(rx),
            Err(e) => tracing::warn!("model-eye picture not made: {e}"),
        }
    }

    fn contents(
        &mut self,
        ui: &mut egui::Ui,
        size: ImageSize,
        resized: ImageSize,
        regions: &[Region],
        max_pixels: u64,
    ) {
        let seen: Vec<_> = regions
            .iter()
            .map(|r| model_eye::box_in_model_eye(&r.rect, size, resized))
            .collect();
        let flagged = seen.iter().filter(|s| s.below_one_patch).count();
        ui.label(format!(
            "{size} becomes {resized} at max_pixels {max_pixels}: {} visual tokens, scale {:.3}",
            model_eye::visual_tokens(resized),
            f64::from(resized.width) / f64::from(size.width),
        ));
        let warn = ui.visuals().warn_fg_color;
        if flagged > 0 {
            ui.colored_label(
                warn,
                format!(
                    "{flagged} of {} boxes are below one 28 px patch: the model can hardly see them",
                    regions.len()
                ),
            );
        } else {
            ui.label(format!(
                "All {} boxes cover at least one patch",
                regions.len()
            ));
        }
        ui.checkbox(&mut self.show_grid, "28 px patch grid");
        let Some(texture) = &self.texture else {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Resampling the image to the model's size...");
            });
            return;
        };
        let avail = ui.available_size();
        let aspect = f64::from(resized.width) / f64::from(resized.height);
        let w = f64::from(avail.x).min(f64::from(avail.y.max(100.0)) * aspect);
        let shown = egui::vec2(w as f32, (w / aspect) as f32);
        let (rect, _) = ui.allocate_exact_size(shown, egui::Sense::hover());
        let painter = ui.painter_at(rect);
        painter.image(
            texture.id(),
            rect,
            egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
            Color32::WHITE,
        );
        // Screen points per model pixel.
        let s = f64::from(rect.width()) / f64::from(resized.width);
        if self.show_grid && s * f64::from(model_eye::FACTOR) >= 4.0 {
            let grid = Stroke::new(1.0, Color32::from_white_alpha(40));
            let step = (s * f64::from(model_eye::FACTOR)) as f32;
            let mut x = rect.left();
            while x <= rect.right() {
                painter.vline(x, rect.y_range(), grid);
                x += step;
            }
            let mut y = rect.top();
            while y <= rect.bottom() {
                painter.hline(rect.x_range(), y, grid);
                y += step;
            }
        }
        for (region, seen) in regions.iter().zip(&seen) {
            let r = region.rect.to_resized(size, resized);
            let to_screen = |x: f64, y: f64| {
                egui::pos2(rect.left() + (x * s) as f32, rect.top() + (y * s) as f32)
            };
            let mut b = egui::Rect::from_min_max(to_screen(r.x0, r.y0), to_screen(r.x1, r.y1));
            // Keep tiny boxes visible as at least a few points.
            b = b.expand2(((egui::vec2(6.0, 6.0) - b.size()) * 0.5).max(egui::Vec2::ZERO));
            let color = if seen.below_one_patch {
                warn
            } else {
                Color32::from_rgb(80, 200, 120)
            };
            painter.rect_stroke(b, 0.0, Stroke::new(1.5, color), egui::StrokeKind::Outside);
            let text = format!("{:.0}x{:.0}", seen.width, seen.height);
            painter.text(
                b.left_top() - egui::vec2(0.0, 2.0),
                egui::Align2::LEFT_BOTTOM,
                text,
                egui::FontId::monospace(10.0),
                color,
            );
        }
    }
}
