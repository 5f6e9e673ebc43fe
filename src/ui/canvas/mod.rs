//! The image canvas: tiled, zoomable, pannable, with overlays, a minimap, a loupe and a status
//! line. Annotate, Inspect and Run all use it.
//!
//! Each frame it draws only the tiles of the right pyramid level that touch the viewport. A tile
//! not yet on the GPU is uploaded from the tile service's RAM cache (a few per frame, so frames
//! stay short); until then its coarser ancestors, or the quick preview, stand in, so after the
//! first frame the view is never blank. GPU textures are held in an LRU bounded in bytes.

pub mod overlay;
pub mod view;

use std::sync::Arc;

use egui::{
    Color32, ColorImage, Key, Pos2, Rect, Sense, Stroke, TextureHandle, TextureOptions, Vec2,
};
use image::RgbImage;

use crate::dataset::ImageId;
use crate::geometry::{ImageRect, ImageSize};
use crate::imagery::lru::ByteLru;
use crate::imagery::pyramid::{PyramidLayout, TILE, TileKey};
use crate::imagery::tiles::{BuildStatus, TileService};
pub use overlay::{Overlay, OverlayStyle};
pub use view::View;

/// GPU memory the canvas may hold in tile textures.
pub const GPU_BUDGET: usize = 128 << 20;
/// Tiles uploaded per frame at most (each is up to 1 MiB of RGBA).
const UPLOADS_PER_FRAME: usize = 3;
/// Zoom (screen points per image pixel) from which a pixel grid is drawn.
const GRID_FROM_ZOOM: f64 = 8.0;

/// What happened on the canvas this frame.
#[derive(Debug, Clone, Default)]
pub struct CanvasOutput {
    /// The image point under the pointer.
    pub hover: Option<(f64, f64)>,
    /// The image point clicked (without dragging).
    pub clicked: Option<(f64, f64)>,
    /// In edit mode: where a primary-button drag began (image point), on its first frame.
    pub drag_started: Option<(f64, f64)>,
    /// In edit mode: the pointer's image point while a primary-button drag goes on.
    pub dragging: Option<(f64, f64)>,
    /// In edit mode: the image point where a primary-button drag ended.
    pub drag_released: Option<(f64, f64)>,
}

/// The canvas's state; one per workspace view.
pub struct Canvas {
    image: Option<(ImageId, ImageSize)>,
    layout: Option<PyramidLayout>,
    view: Option<View>,
    viewport: Rect,
    textures: ByteLru<TileKey, TextureHandle>,
    preview: Option<TextureHandle>,
    /// A picture the caller already has (the list thumbnail), shown until a better one exists.
    placeholder: Option<TextureHandle>,
    pub show_minimap: bool,
    pub show_loupe: bool,
    /// When on, a primary-button drag edits (reported in [`CanvasOutput`]) and panning takes
    /// the middle or secondary button, or Space held with the primary one.
    pub edit_mode: bool,
    /// When on, the arrow keys pan; callers turn it off while they use arrows to move a box.
    pub arrow_keys_pan: bool,
    hover: Option<(f64, f64)>,
    hover_rgb: Option<[u8; 3]>,
    generation: u64,
    settled: bool,
}

impl Default for Canvas {
    fn default() -> Self {
        Self::new()
    }
}

impl Canvas {
    pub fn new() -> Self {
        Self {
            image: None,
            layout: None,
            view: None,
            viewport: Rect::NOTHING,
            textures: ByteLru::new(GPU_BUDGET),
            preview: None,
            placeholder: None,
            show_minimap: true,
            show_loupe: false,
            edit_mode: false,
            arrow_keys_pan: true,
            hover: None,
            hover_rgb: None,
            generation: u64::MAX,
            settled: false,
        }
    }

    /// Show another image (the view fits it on the next frame).
    pub fn set_image(&mut self, id: ImageId, size: ImageSize) {
        if self.image.as_ref().is_some_and(|(i, _)| *i == id) {
            return;
        }
        self.image = Some((id, size));
        self.layout = Some(PyramidLayout::new(size));
        self.view = None;
        self.textures = ByteLru::new(GPU_BUDGET);
        self.preview = None;
        self.placeholder = None;
        self.generation = u64::MAX;
        self.settled = false;
    }

    /// A picture of the whole image to show until the pyramid's own first picture arrives.
    pub fn set_placeholder(&mut self, texture: Option<TextureHandle>) {
        self.placeholder = texture;
    }

    /// Did the last frame draw every visible tile at its proper level?
    pub fn settled(&self) -> bool {
        self.settled
    }

    pub fn image(&self) -> Option<&ImageId> {
        self.image.as_ref().map(|(i, _)| i)
    }

    /// The screen rectangle the canvas took in the last frame.
    pub fn viewport(&self) -> Rect {
        self.viewport
    }

    pub fn view(&self) -> Option<View> {
        self.view
    }

    /// The part of the image shown in the last frame.
    pub fn visible(&self) -> Option<ImageRect> {
        let (_, size) = self.image.as_ref()?;
        Some(self.view?.visible(self.viewport, *size))
    }

    /// Bytes of tile textures held on the GPU.
    pub fn gpu_bytes(&self) -> usize {
        self.textures.used()
    }

    /// Centre the view on an image rectangle, zooming so it fills about a third of the view.
    pub fn focus(&mut self, r: &ImageRect) {
        let (Some(view), Some((_, size))) = (self.view.as_mut(), self.image.as_ref()) else {
            return;
        };
        view.center = r.center();
        let z = (f64::from(self.viewport.width()) / (3.0 * r.width().max(1.0)))
            .min(f64::from(self.viewport.height()) / (3.0 * r.height().max(1.0)));
        view.zoom = view::clamp_zoom(z, *size, self.viewport);
        view.keep_in_view(*size);
    }

    /// Draw the canvas into all of `ui`'s available space.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        tiles: &TileService,
        overlays: &[Overlay],
    ) -> CanvasOutput {
        let mut out = CanvasOutput::default();
        let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
        let Some((id, size)) = self.image.clone() else {
            return out;
        };
        let Some(layout) = self.layout.clone() else {
            return out;
        };
        if rect != self.viewport
            && self
                .view
                .is_none_or(|v| v.zoom == view::fit_zoom(size, self.viewport))
        {
            // First frame, or the window changed while fitted: fit again.
            self.view = Some(View::fit(size, rect));
        }
        self.viewport = rect;
        let mut view = self.view.unwrap_or_else(|| View::fit(size, rect));
        response.widget_info(|| {
            egui::WidgetInfo::labeled(egui::accesskit::Role::Image, true, "image canvas")
        });

        // ---- input ----
        if response.hovered() {
            let (scroll, pinch) = ui.input(|i| {
                let mut lines = 0.0f32;
                for e in &i.events {
                    if let egui::Event::MouseWheel { unit, delta, .. } = e {
                        lines += match unit {
                            egui::MouseWheelUnit::Point => delta.y / 40.0,
                            egui::MouseWheelUnit::Line => delta.y,
                            egui::MouseWheelUnit::Page => delta.y * 10.0,
                        };
                    }
                }
                (lines, i.zoom_delta())
            });
            let anchor = response.hover_pos().unwrap_or(rect.center());
            if scroll != 0.0 {
                view.zoom_about(rect, anchor, 1.25f64.powf(f64::from(scroll)), size);
            }
            if pinch != 1.0 {
                view.zoom_about(rect, anchor, f64::from(pinch), size);
            }
        }
        let space = ui.input(|i| i.key_down(Key::Space));
        let primary_pans = !self.edit_mode || space;
        let panning = response.dragged_by(egui::PointerButton::Middle)
            || response.dragged_by(egui::PointerButton::Secondary)
            || (primary_pans && response.dragged_by(egui::PointerButton::Primary));
        if panning {
            view.pan(response.drag_delta(), size);
        } else if self.edit_mode {
            let pointer = response
                .interact_pointer_pos()
                .map(|p| view.to_image(rect, p));
            if response.drag_started_by(egui::PointerButton::Primary) {
                let origin = ui.input(|i| i.pointer.press_origin());
                out.drag_started = origin.map(|p| view.to_image(rect, p)).or(pointer);
            }
            if response.dragged_by(egui::PointerButton::Primary) {
                out.dragging = pointer;
            }
            if response.drag_stopped_by(egui::PointerButton::Primary) {
                out.drag_released = pointer.or(self.hover);
            }
        }
        if response.clicked()
            && let Some(p) = response.interact_pointer_pos()
        {
            out.clicked = Some(view.to_image(rect, p));
        }
        let typing = ui.ctx().text_edit_focused();
        if !typing && (ui.rect_contains_pointer(rect) || response.has_focus()) {
            self.keyboard(ui, &mut view, size, rect);
        }
        if response.clicked() {
            response.request_focus();
        }
        self.view = Some(view);

        // ---- drawing ----
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, ui.visuals().extreme_bg_color);
        let ppp = ui.ctx().pixels_per_point();
        let generation = tiles.generation();
        let refreshed = generation != self.generation;
        self.generation = generation;
        let ctx = ui.ctx().clone();
        if self.preview.is_none() || refreshed {
            self.refresh_preview(&ctx, tiles, &id, &layout);
        }
        let image_rect = view.rect_to_screen(rect, &size.full_rect());
        if let Some(p) = self.preview.as_ref().or(self.placeholder.as_ref()) {
            painter.image(
                p.id(),
                image_rect,
                Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                Color32::WHITE,
            );
        }
        let level = view.level(ppp, layout.top());
        let visible = view.visible(rect, size);
        let mut uploads = 0;
        let mut missing = false;
        let frame = FrameCtx {
            painter: &painter,
            ctx: &ctx,
            tiles,
            id: &id,
            layout: &layout,
            view: &view,
            viewport: rect,
        };
        for key in visible_tiles(&layout, level, &visible) {
            if !self.draw_tile(&frame, key, &mut uploads) {
                missing = true;
                self.draw_fallback(&frame, key, &mut uploads);
            }
        }
        if view.zoom >= GRID_FROM_ZOOM {
            draw_grid(&painter, &view, rect, &visible);
        }
        for o in overlays {
            overlay::draw(&painter, rect, view.rect_to_screen(rect, &o.rect), o);
        }

        // ---- hover, loupe, minimap, status ----
        self.hover = response.hover_pos().map(|p| view.to_image(rect, p));
        self.hover_rgb = self.hover.and_then(|p| pixel_at(tiles, &id, &layout, p));
        out.hover = self.hover.filter(|p| {
            p.0 >= 0.0 && p.1 >= 0.0 && p.0 < f64::from(size.width) && p.1 < f64::from(size.height)
        });
        if self.show_loupe
            && view.zoom < 1.0
            && let (Some(p), Some(pos)) = (out.hover, response.hover_pos())
        {
            let frame = FrameCtx {
                painter: &painter,
                ctx: &ctx,
                tiles,
                id: &id,
                layout: &layout,
                view: &view,
                viewport: rect,
            };
            self.draw_loupe(&frame, p, pos, &mut uploads);
        }
        // The minimap helps only when part of the image is off screen.
        let vis = view.visible(rect, size);
        let all_visible = vis.width() >= f64::from(size.width) - 0.5
            && vis.height() >= f64::from(size.height) - 0.5;
        if self.show_minimap
            && !all_visible
            && let Some(jump) = self.minimap(ui, rect, size, &view, overlays)
            && let Some(v) = self.view.as_mut()
        {
            v.center = jump;
            v.keep_in_view(size);
        }
        self.settled = !missing;
        let status = tiles.status(&id);
        if missing
            || uploads > 0
            || !matches!(
                status,
                Some(BuildStatus::Complete)
                    | Some(BuildStatus::Failed(_))
                    | Some(BuildStatus::Cancelled)
                    | None
            )
        {
            ctx.request_repaint_after(std::time::Duration::from_millis(30));
        }
        out
    }

    /// One line for a status bar: cursor in image pixels, zoom, the pixel's RGB, build state.
    pub fn status_line(&self, tiles: &TileService) -> String {
        let mut parts = Vec::new();
        if let Some((x, y)) = self.hover {
            parts.push(format!("x {:.0}  y {:.0}", x.floor(), y.floor()));
        }
        if let Some(v) = self.view {
            parts.push(format!("{:.1} %", v.zoom * 100.0));
        }
        if let Some([r, g, b]) = self.hover_rgb {
            parts.push(format!("RGB {r} {g} {b}"));
        }
        if let Some((id, _)) = &self.image {
            match tiles.status(id) {
                Some(BuildStatus::Decoding) => parts.push("decoding...".to_owned()),
                Some(BuildStatus::Tiling { done, total }) => {
                    parts.push(format!("tiles {done}/{total}"))
                }
                Some(BuildStatus::Failed(e)) => parts.push(e),
                _ => {}
            }
        }
        parts.join("   ")
    }

    fn keyboard(&mut self, ui: &egui::Ui, view: &mut View, size: ImageSize, rect: Rect) {
        let (plus, minus, fit, one, left, right, up, down) = ui.input(|i| {
            (
                i.key_pressed(Key::Plus) || i.key_pressed(Key::Equals),
                i.key_pressed(Key::Minus),
                i.key_pressed(Key::Num0),
                i.key_pressed(Key::Num1),
                i.key_pressed(Key::ArrowLeft),
                i.key_pressed(Key::ArrowRight),
                i.key_pressed(Key::ArrowUp),
                i.key_pressed(Key::ArrowDown),
            )
        });
        if plus {
            view.zoom_about(rect, rect.center(), 1.5, size);
        }
        if minus {
            view.zoom_about(rect, rect.center(), 1.0 / 1.5, size);
        }
        if fit {
            *view = View::fit(size, rect);
        }
        if one {
            view.zoom_about(rect, rect.center(), 1.0 / view.zoom, size);
        }
        if !self.arrow_keys_pan {
            return;
        }
        let step = rect.size() * 0.1;
        let pan = Vec2::new(
            if left { step.x } else { 0.0 } - if right { step.x } else { 0.0 },
            if up { step.y } else { 0.0 } - if down { step.y } else { 0.0 },
        );
        if pan != Vec2::ZERO {
            view.pan(pan, size);
        }
    }

    fn refresh_preview(
        &mut self,
        ctx: &egui::Context,
        tiles: &TileService,
        id: &ImageId,
        layout: &PyramidLayout,
    ) {
        // The top tile is the whole image; the quick JPEG preview is sharper, so prefer it.
        let top = TileKey {
            level: layout.top(),
            col: 0,
            row: 0,
        };
        let source = tiles.preview(id).or_else(|| tiles.tile(id, top));
        let Some(img) = source else {
            return;
        };
        // A preview wider than the GPU allows (a 400 MP photo's eighth is 3000 px; some
        // back ends stop at 2048) is shrunk to fit rather than refused.
        let max_side = ctx.input(|i| i.max_texture_side).max(1) as u32;
        let fit = crate::imagery::thumbnail::fit_within(
            ImageSize::new(img.width(), img.height()),
            max_side,
        );
        if self.preview.as_ref().map(|t| t.size())
            != Some([fit.width as usize, fit.height as usize])
        {
            let shrunk;
            let shown = if fit.width == img.width() && fit.height == img.height() {
                img.as_ref()
            } else {
                shrunk = image::imageops::thumbnail(img.as_ref(), fit.width, fit.height);
                &shrunk
            };
            self.preview = Some(upload(
                ctx,
                &format!("{}-preview", id.short()),
                shown,
                TextureOptions::LINEAR,
            ));
        }
    }

    /// Draw a tile if its texture exists or can be uploaded now; false when it is not ready.
    fn draw_tile(&mut self, f: &FrameCtx<'_>, key: TileKey, uploads: &mut usize) -> bool {
        let Some(texture) = self.texture(f.ctx, f.tiles, f.id, key, uploads) else {
            return false;
        };
        let screen = tile_screen_rect(f.layout, f.view, f.viewport, key);
        f.painter.image(
            texture.id(),
            screen,
            Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
            Color32::WHITE,
        );
        true
    }

    /// Draw the part of the nearest coarser tile that covers `key`.
    fn draw_fallback(&mut self, f: &FrameCtx<'_>, key: TileKey, uploads: &mut usize) {
        let (painter, layout) = (f.painter, f.layout);
        let target = tile_screen_rect(layout, f.view, f.viewport, key);
        let (x, y, w, h) = layout.tile_rect(key);
        for up in 1..=(layout.top() - key.level.min(layout.top())) {
            let level = key.level + up;
            let parent = TileKey {
                level,
                col: (key.col >> up),
                row: (key.row >> up),
            };
            let Some(texture) = self.texture(f.ctx, f.tiles, f.id, parent, uploads) else {
                continue;
            };
            // The child's rectangle in the parent's pixels, as UV.
            let (px, py, pw, ph) = layout.tile_rect(parent);
            let s = f64::from(1u32 << up);
            let u0 = (f64::from(x) / s - f64::from(px)) / f64::from(pw);
            let v0 = (f64::from(y) / s - f64::from(py)) / f64::from(ph);
            let u1 = (f64::from(x + w) / s - f64::from(px)) / f64::from(pw);
            let v1 = (f64::from(y + h) / s - f64::from(py)) / f64::from(ph);
            let uv = Rect::from_min_max(
                Pos2::new(u0 as f32, v0 as f32),
                Pos2::new(u1.min(1.0) as f32, v1.min(1.0) as f32),
            );
            painter.image(texture.id(), target, uv, Color32::WHITE);
            return;
        }
    }

    fn texture(
        &mut self,
        ctx: &egui::Context,
        tiles: &TileService,
        id: &ImageId,
        key: TileKey,
        uploads: &mut usize,
    ) -> Option<TextureHandle> {
        if let Some(t) = self.textures.get(&key) {
            return Some(t.clone());
        }
        if *uploads >= UPLOADS_PER_FRAME {
            return None;
        }
        let img = tiles.tile(id, key)?;
        *uploads += 1;
        let options = if key.level == 0 {
            // Native pixels stay crisp when magnified.
            TextureOptions {
                magnification: egui::TextureFilter::Nearest,
                ..TextureOptions::LINEAR
            }
        } else {
            TextureOptions::LINEAR
        };
        let name = format!("{}-{}-{}-{}", id.short(), key.level, key.col, key.row);
        let handle = upload(ctx, &name, &img, options);
        let bytes = img.width() as usize * img.height() as usize * 4;
        self.textures.insert(key, handle.clone(), bytes);
        Some(handle)
    }

    fn draw_loupe(&mut self, f: &FrameCtx<'_>, p: (f64, f64), pointer: Pos2, uploads: &mut usize) {
        let FrameCtx {
            painter,
            ctx,
            tiles,
            id,
            layout,
            viewport,
            ..
        } = *f;
        // 48 x 48 native pixels shown 4x, beside the pointer.
        const SIDE: f64 = 48.0;
        const SCALE: f32 = 4.0;
        let size = Vec2::splat(SIDE as f32 * SCALE);
        let mut at = pointer + Vec2::new(24.0, 24.0);
        if at.x + size.x > viewport.right() {
            at.x = pointer.x - 24.0 - size.x;
        }
        if at.y + size.y > viewport.bottom() {
            at.y = pointer.y - 24.0 - size.y;
        }
        let frame = Rect::from_min_size(at, size);
        painter.rect_filled(frame, 0.0, Color32::BLACK);
        let loupe_view = View {
            center: (p.0.floor() + 0.5, p.1.floor() + 0.5),
            zoom: f64::from(SCALE),
        };
        let region = ImageRect::new(
            p.0 - SIDE / 2.0,
            p.1 - SIDE / 2.0,
            p.0 + SIDE / 2.0,
            p.1 + SIDE / 2.0,
        )
        .clamped(layout.size());
        let clip = painter.with_clip_rect(frame);
        for key in visible_tiles(layout, 0, &region) {
            if let Some(t) = self.texture(ctx, tiles, id, key, uploads) {
                let r = tile_screen_rect(layout, &loupe_view, frame, key);
                clip.image(
                    t.id(),
                    r,
                    Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                    Color32::WHITE,
                );
            }
        }
        let c = frame.center();
        clip.rect_stroke(
            Rect::from_min_size(
                Pos2::new(c.x - SCALE / 2.0, c.y - SCALE / 2.0),
                Vec2::splat(SCALE),
            ),
            0.0,
            Stroke::new(1.0, Color32::WHITE),
            egui::StrokeKind::Outside,
        );
        painter.rect_stroke(
            frame,
            0.0,
            Stroke::new(1.0, Color32::GRAY),
            egui::StrokeKind::Outside,
        );
    }

    /// The minimap in the bottom-right corner; returns an image point to jump to when clicked.
    fn minimap(
        &self,
        ui: &mut egui::Ui,
        viewport: Rect,
        size: ImageSize,
        view: &View,
        overlays: &[Overlay],
    ) -> Option<(f64, f64)> {
        let preview = self.preview.as_ref().or(self.placeholder.as_ref())?;
        let max = 180.0f32;
        let scale = max / (size.width.max(size.height) as f32);
        let mini = Vec2::new(size.width as f32 * scale, size.height as f32 * scale);
        let rect = Rect::from_min_size(viewport.right_bottom() - mini - Vec2::splat(10.0), mini);
        let response = ui.interact(rect, ui.scope_id().with("minimap"), Sense::click_and_drag());
        let painter = ui.painter_at(viewport);
        painter.rect_filled(rect.expand(2.0), 2.0, Color32::from_black_alpha(200));
        painter.image(
            preview.id(),
            rect,
            Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
            Color32::WHITE,
        );
        let to_mini = |x: f64, y: f64| {
            Pos2::new(
                rect.left() + x as f32 * scale,
                rect.top() + y as f32 * scale,
            )
        };
        for o in overlays {
            let r =
                Rect::from_min_max(to_mini(o.rect.x0, o.rect.y0), to_mini(o.rect.x1, o.rect.y1));
            let r = Rect::from_center_size(r.center(), r.size().max(Vec2::splat(3.0)));
            painter.rect_filled(r, 0.0, o.color);
        }
        let vis = view.visible(viewport, size);
        let vr = Rect::from_min_max(to_mini(vis.x0, vis.y0), to_mini(vis.x1, vis.y1));
        painter.rect_stroke(
            vr,
            0.0,
            Stroke::new(1.5, Color32::WHITE),
            egui::StrokeKind::Outside,
        );
        if response.clicked() || response.dragged() {
            let p = response.interact_pointer_pos()?;
            return Some((
                f64::from((p.x - rect.left()) / scale),
                f64::from((p.y - rect.top()) / scale),
            ));
        }
        None
    }
}

/// What every tile-drawing step of one frame needs.
#[derive(Clone, Copy)]
struct FrameCtx<'a> {
    painter: &'a egui::Painter,
    ctx: &'a egui::Context,
    tiles: &'a TileService,
    id: &'a ImageId,
    layout: &'a PyramidLayout,
    view: &'a View,
    viewport: Rect,
}

/// The tiles of `level` that touch an image rectangle (in original pixels).
pub fn visible_tiles(layout: &PyramidLayout, level: u32, visible: &ImageRect) -> Vec<TileKey> {
    let s = PyramidLayout::scale(level);
    let (cols, rows) = layout.grid(level);
    let t = f64::from(TILE) * s;
    let c0 = (visible.x0 / t).floor().max(0.0) as u32;
    let r0 = (visible.y0 / t).floor().max(0.0) as u32;
    let c1 = ((visible.x1 / t).ceil() as u32).min(cols);
    let r1 = ((visible.y1 / t).ceil() as u32).min(rows);
    let mut keys = Vec::new();
    for row in r0..r1 {
        for col in c0..c1 {
            keys.push(TileKey { level, col, row });
        }
    }
    keys
}

fn tile_screen_rect(layout: &PyramidLayout, view: &View, viewport: Rect, key: TileKey) -> Rect {
    let (x, y, w, h) = layout.tile_rect(key);
    let s = PyramidLayout::scale(key.level);
    let size = layout.size();
    // Edge tiles of coarse levels cover up to the image's edge, not beyond.
    let x1 = (f64::from(x + w) * s).min(f64::from(size.width));
    let y1 = (f64::from(y + h) * s).min(f64::from(size.height));
    view.rect_to_screen(
        viewport,
        &ImageRect::new(f64::from(x) * s, f64::from(y) * s, x1, y1),
    )
}

fn draw_grid(painter: &egui::Painter, view: &View, viewport: Rect, visible: &ImageRect) {
    let stroke = Stroke::new(1.0, Color32::from_black_alpha(90));
    let mut x = visible.x0.floor();
    while x <= visible.x1 {
        let p = view.to_screen(viewport, (x, 0.0));
        painter.line_segment(
            [
                Pos2::new(p.x, viewport.top()),
                Pos2::new(p.x, viewport.bottom()),
            ],
            stroke,
        );
        x += 1.0;
    }
    let mut y = visible.y0.floor();
    while y <= visible.y1 {
        let p = view.to_screen(viewport, (0.0, y));
        painter.line_segment(
            [
                Pos2::new(viewport.left(), p.y),
                Pos2::new(viewport.right(), p.y),
            ],
            stroke,
        );
        y += 1.0;
    }
}

/// The pixel under an image point from the finest tile in RAM.
fn pixel_at(
    tiles: &TileService,
    id: &ImageId,
    layout: &PyramidLayout,
    p: (f64, f64),
) -> Option<[u8; 3]> {
    let size = layout.size();
    if p.0 < 0.0 || p.1 < 0.0 || p.0 >= f64::from(size.width) || p.1 >= f64::from(size.height) {
        return None;
    }
    let (x, y) = (p.0 as u32, p.1 as u32);
    let key = TileKey {
        level: 0,
        col: x / TILE,
        row: y / TILE,
    };
    let tile: Arc<RgbImage> = tiles.tile(id, key)?;
    tile.get_pixel_checked(x % TILE, y % TILE).map(|px| px.0)
}

fn upload(
    ctx: &egui::Context,
    name: &str,
    img: &RgbImage,
    options: TextureOptions,
) -> TextureHandle {
    let color = ColorImage::from_rgb([img.width() as usize, img.height() as usize], img.as_raw());
    ctx.load_texture(name, color, options)
}

#[cfg(test)]
mod tests;
