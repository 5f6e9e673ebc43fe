//! Operations on boxes in original-image pixels.

use crate::geometry::{ImageRect, ImageSize};

/// What a drag takes hold of: a corner, an edge, or the whole box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handle {
    TopLeft,
    Top,
    TopRight,
    Right,
    BottomRight,
    Bottom,
    BottomLeft,
    Left,
    Move,
}

impl Handle {
    /// The eight resize handles, in the order the canvas draws them.
    pub const RESIZE: [Handle; 8] = [
        Handle::TopLeft,
        Handle::Top,
        Handle::TopRight,
        Handle::Right,
        Handle::BottomRight,
        Handle::Bottom,
        Handle::BottomLeft,
        Handle::Left,
    ];

    /// Which edges this handle moves: (left, top, right, bottom).
    fn edges(self) -> (bool, bool, bool, bool) {
        match self {
            Handle::TopLeft => (true, true, false, false),
            Handle::Top => (false, true, false, false),
            Handle::TopRight => (false, true, true, false),
            Handle::Right => (false, false, true, false),
            Handle::BottomRight => (false, false, true, true),
            Handle::Bottom => (false, false, false, true),
            Handle::BottomLeft => (true, false, false, true),
            Handle::Left => (true, false, false, false),
            Handle::Move => (true, true, true, true),
        }
    }

    /// The handle's point on a box.
    pub fn point(self, r: &ImageRect) -> (f64, f64) {
        let (cx, cy) = r.center();
        match self {
            Handle::TopLeft => (r.x0, r.y0),
            Handle::Top => (cx, r.y0),
            Handle::TopRight => (r.x1, r.y0),
            Handle::Right => (r.x1, cy),
            Handle::BottomRight => (r.x1, r.y1),
            Handle::Bottom => (cx, r.y1),
            Handle::BottomLeft => (r.x0, r.y1),
            Handle::Left => (r.x0, cy),
            Handle::Move => (cx, cy),
        }
    }
}

/// The smallest box containing the point, so small boxes nested in or overlapping larger ones
/// stay reachable. Returns its index.
pub fn hit_smallest(boxes: &[ImageRect], p: (f64, f64)) -> Option<usize> {
    boxes
        .iter()
        .enumerate()
        .filter(|(_, r)| p.0 >= r.x0 && p.0 <= r.x1 && p.1 >= r.y0 && p.1 <= r.y1)
        .min_by(|(_, a), (_, b)| a.area().total_cmp(&b.area()))
        .map(|(i, _)| i)
}

/// Apply a drag of `delta` image pixels to `handle` of `original`: the moved edges follow, a
/// box dragged inside out flips instead of vanishing, moving keeps the size, the result stays
/// inside the image, and with `snap` every edge lands on a whole pixel.
pub fn drag(
    original: &ImageRect,
    handle: Handle,
    delta: (f64, f64),
    size: ImageSize,
    snap: bool,
) -> ImageRect {
    let (w, h) = (f64::from(size.width), f64::from(size.height));
    if handle == Handle::Move {
        let mut dx = delta.0;
        let mut dy = delta.1;
        if snap {
            dx = (original.x0 + dx).round() - original.x0;
            dy = (original.y0 + dy).round() - original.y0;
        }
        // Keep the whole box on the image: limit the move, not the size.
        dx = dx.clamp(-original.x0, w - original.x1);
        dy = dy.clamp(-original.y0, h - original.y1);
        return ImageRect::new(
            original.x0 + dx,
            original.y0 + dy,
            original.x1 + dx,
            original.y1 + dy,
        );
    }
    let (l, t, r, b) = handle.edges();
    let mut x0 = original.x0 + if l { delta.0 } else { 0.0 };
    let mut y0 = original.y0 + if t { delta.1 } else { 0.0 };
    let mut x1 = original.x1 + if r { delta.0 } else { 0.0 };
    let mut y1 = original.y1 + if b { delta.1 } else { 0.0 };
    if x0 > x1 {
        std::mem::swap(&mut x0, &mut x1);
    }
    if y0 > y1 {
        std::mem::swap(&mut y0, &mut y1);
    }
    let mut out = ImageRect::new(x0, y0, x1, y1);
    if snap {
        out = out.snapped();
    }
    clamp_into(&out, size)
}

/// A box clamped onto the image (a box crossing the border keeps its inside part).
pub fn clamp_into(r: &ImageRect, size: ImageSize) -> ImageRect {
    r.clamped(size)
}

/// Move a box by whole pixels (arrow keys), never off the image.
pub fn nudge(r: &ImageRect, dx: f64, dy: f64, size: ImageSize) -> ImageRect {
    drag(r, Handle::Move, (dx, dy), size, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: ImageSize = ImageSize {
        width: 1000,
        height: 800,
    };

    #[test]
    fn the_smallest_box_under_the_pointer_wins() {
        let boxes = [
            ImageRect::new(0.0, 0.0, 500.0, 500.0),
            ImageRect::new(100.0, 100.0, 120.0, 120.0),
            ImageRect::new(90.0, 90.0, 200.0, 200.0),
        ];
        assert_eq!(hit_smallest(&boxes, (110.0, 110.0)), Some(1));
        assert_eq!(hit_smallest(&boxes, (150.0, 150.0)), Some(2));
        assert_eq!(hit_smallest(&boxes, (300.0, 300.0)), Some(0));
        assert_eq!(hit_smallest(&boxes, (600.0, 600.0)), None);
    }

    #[test]
    fn corner_drag_moves_two_edges_and_snaps() {
        let r = ImageRect::new(100.0, 100.0, 200.0, 150.0);
        let out = drag(&r, Handle::BottomRight, (10.4, -20.6), SIZE, true);
        assert_eq!(out, ImageRect::new(100.0, 100.0, 210.0, 129.0));
        let sub = drag(&r, Handle::BottomRight, (10.4, -20.6), SIZE, false);
        assert_eq!(sub, ImageRect::new(100.0, 100.0, 210.4, 129.4));
    }

    #[test]
    fn dragging_an_edge_past_the_other_flips_the_box() {
        let r = ImageRect::new(100.0, 100.0, 200.0, 150.0);
        let out = drag(&r, Handle::Left, (150.0, 0.0), SIZE, true);
        assert_eq!(out, ImageRect::new(200.0, 100.0, 250.0, 150.0));
    }

    #[test]
    fn moving_keeps_the_size_and_stops_at_the_border() {
        let r = ImageRect::new(100.0, 100.0, 200.0, 150.0);
        let out = drag(&r, Handle::Move, (5000.0, -5000.0), SIZE, true);
        assert_eq!(out, ImageRect::new(900.0, 0.0, 1000.0, 50.0));
    }

    #[test]
    fn resizing_across_the_border_clamps() {
        let r = ImageRect::new(900.0, 700.0, 990.0, 790.0);
        let out = drag(&r, Handle::BottomRight, (50.0, 50.0), SIZE, true);
        assert_eq!(out, ImageRect::new(900.0, 700.0, 1000.0, 800.0));
    }

    #[test]
    fn nudges_move_by_whole_pixels() {
        let r = ImageRect::new(10.0, 10.0, 20.0, 20.0);
        assert_eq!(
            nudge(&r, 1.0, 0.0, SIZE),
            ImageRect::new(11.0, 10.0, 21.0, 20.0)
        );
        assert_eq!(
            nudge(&r, -100.0, 0.0, SIZE),
            ImageRect::new(0.0, 10.0, 10.0, 20.0)
        );
    }

    #[test]
    fn handle_points_sit_on_corners_and_edge_middles() {
        let r = ImageRect::new(0.0, 0.0, 10.0, 20.0);
        assert_eq!(Handle::TopLeft.point(&r), (0.0, 0.0));
        assert_eq!(Handle::Right.point(&r), (10.0, 10.0));
        assert_eq!(Handle::Bottom.point(&r), (5.0, 20.0));
    }
}
