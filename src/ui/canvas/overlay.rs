//! What callers draw on the canvas, in image coordinates: boxes, crop rectangles, handles.

use egui::{Align2, Color32, FontId, Painter, Pos2, Rect, Stroke, StrokeKind, Vec2};

use crate::geometry::ImageRect;

/// How an overlay is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverlayStyle {
    /// An annotation box.
    Box,
    /// Where a crop or zoom came from (dashed).
    Crop,
    /// A line from the rectangle's first corner `(x0, y0)` to `(x1, y1)` (a mask's outline).
    Line,
}

/// One rectangle to draw over the image.
#[derive(Debug, Clone, PartialEq)]
pub struct Overlay {
    pub rect: ImageRect,
    pub color: Color32,
    pub label: Option<String>,
    /// Drawn thicker, with resize handles.
    pub emphasis: bool,
    pub style: OverlayStyle,
}

/// Screen boxes smaller than this are drawn at this size so they stay visible.
const MIN_SCREEN_SIDE: f32 = 6.0;

/// Draw one overlay whose rectangle is already in screen coordinates. The label goes outside
/// the box (above it, or below when there is no room above) so it never hides the object.
pub fn draw(painter: &Painter, viewport: Rect, screen: Rect, overlay: &Overlay) {
    if overlay.style == OverlayStyle::Line {
        painter.line_segment([screen.min, screen.max], Stroke::new(1.5, overlay.color));
        return;
    }
    let mut r = screen;
    if r.width() < MIN_SCREEN_SIDE || r.height() < MIN_SCREEN_SIDE {
        r = Rect::from_center_size(r.center(), r.size().max(Vec2::splat(MIN_SCREEN_SIDE)));
    }
    let width = if overlay.emphasis { 2.5 } else { 1.5 };
    let stroke = Stroke::new(width, overlay.color);
    match overlay.style {
        OverlayStyle::Box => {
            painter.rect_stroke(r, 0.0, stroke, StrokeKind::Outside);
        }
        OverlayStyle::Line => {}
        OverlayStyle::Crop => {
            let corners = [
                r.left_top(),
                r.right_top(),
                r.right_bottom(),
                r.left_bottom(),
                r.left_top(),
            ];
            for pair in corners.windows(2) {
                painter.add(egui::Shape::dashed_line(
                    &[pair[0], pair[1]],
                    stroke,
                    6.0,
                    4.0,
                ));
            }
        }
    }
    if overlay.emphasis {
        for p in handles(r) {
            painter.rect_filled(
                Rect::from_center_size(p, Vec2::splat(6.0)),
                1.0,
                overlay.color,
            );
        }
    }
    if let Some(label) = &overlay.label {
        let font = FontId::proportional(12.0);
        let above = r.top() - 16.0 > viewport.top();
        let (pos, anchor) = if above {
            (Pos2::new(r.left(), r.top() - 3.0), Align2::LEFT_BOTTOM)
        } else {
            (Pos2::new(r.left(), r.bottom() + 3.0), Align2::LEFT_TOP)
        };
        let galley = painter.layout_no_wrap(label.clone(), font, overlay.color);
        let text_rect = anchor.anchor_size(pos, galley.size()).expand(2.0);
        painter.rect_filled(text_rect, 2.0, Color32::from_black_alpha(170));
        painter.galley(text_rect.min + Vec2::splat(2.0), galley, overlay.color);
    }
}

/// The eight resize handles of a box: corners and edge midpoints.
pub fn handles(r: Rect) -> [Pos2; 8] {
    let c = r.center();
    [
        r.left_top(),
        Pos2::new(c.x, r.top()),
        r.right_top(),
        Pos2::new(r.right(), c.y),
        r.right_bottom(),
        Pos2::new(c.x, r.bottom()),
        r.left_bottom(),
        Pos2::new(r.left(), c.y),
    ]
}
