//! The selected image fitted into the available space, with its boxes drawn over it.
//! (The tiled, zoomable canvas replaces this view in a later piece of work.)

use egui::{Align2, FontId, Pos2, Rect, Stroke, StrokeKind, TextureHandle, Vec2};

use crate::dataset::{Region, RegionId, rules};
use crate::geometry::ImageSize;

/// Draw `texture` (any downscaled copy of the image) fitted into the available space and the
/// boxes in image coordinates over it. `emphasised` boxes are drawn thicker.
pub fn fitted_view(
    ui: &mut egui::Ui,
    texture: &TextureHandle,
    size: ImageSize,
    regions: &[Region],
    emphasised: &[RegionId],
    alt_text: &str,
) {
    let available = ui.available_size();
    let (w, h) = (size.width as f32, size.height as f32);
    let scale = (available.x / w).min(available.y / h).max(0.0);
    let (rect, response) = ui.allocate_exact_size(available, egui::Sense::hover());
    response
        .widget_info(|| egui::WidgetInfo::labeled(egui::accesskit::Role::Image, true, alt_text));
    let shown = Rect::from_center_size(rect.center(), Vec2::new(w * scale, h * scale));
    egui::Image::from_texture((texture.id(), texture.size_vec2()))
        .alt_text(alt_text)
        .paint_at(ui, shown);
    let to_screen = |x: f64, y: f64| {
        Pos2::new(
            shown.min.x + x as f32 * scale,
            shown.min.y + y as f32 * scale,
        )
    };
    let painter = ui.painter_at(rect);
    for (n, r) in regions.iter().enumerate() {
        let over = rules::check_area(&r.rect, size).is_err();
        let color = if over {
            super::WARNING
        } else {
            super::box_color(n)
        };
        let strong = emphasised.contains(&r.id);
        let mut screen = Rect::from_min_max(
            to_screen(r.rect.x0, r.rect.y0),
            to_screen(r.rect.x1, r.rect.y1),
        );
        // Keep tiny boxes visible at fit zoom: at least 6 px on screen.
        if screen.width() < 6.0 || screen.height() < 6.0 {
            screen = Rect::from_center_size(screen.center(), screen.size().max(Vec2::splat(6.0)));
        }
        let width = if strong { 3.0 } else { 1.5 };
        painter.rect_stroke(screen, 0.0, Stroke::new(width, color), StrokeKind::Outside);
        // The number sits above the box, never on the object.
        painter.text(
            screen.left_top() - Vec2::new(0.0, 2.0),
            Align2::LEFT_BOTTOM,
            format!("#{}", n + 1),
            FontId::proportional(if strong { 14.0 } else { 11.0 }),
            color,
        );
    }
}
