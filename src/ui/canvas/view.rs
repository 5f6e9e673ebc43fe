//! Where the canvas looks: the image point at the viewport's centre and the zoom, and the
//! conversions between image pixels and screen points.

use egui::{Pos2, Rect, Vec2};

use crate::geometry::{ImageRect, ImageSize};

/// Smallest zoom as a share of the fit zoom, and the largest zoom (screen points per image
/// pixel): 64 = 6400 %.
pub const MIN_ZOOM_OF_FIT: f64 = 0.5;
pub const MAX_ZOOM: f64 = 64.0;

/// A view of an image in a viewport.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    /// Image point (original pixels) shown at the viewport's centre.
    pub center: (f64, f64),
    /// Screen points per image pixel.
    pub zoom: f64,
}

impl View {
    /// The whole image, centred and as large as fits.
    pub fn fit(size: ImageSize, viewport: Rect) -> Self {
        Self {
            center: (f64::from(size.width) / 2.0, f64::from(size.height) / 2.0),
            zoom: fit_zoom(size, viewport),
        }
    }

    pub fn to_screen(&self, viewport: Rect, p: (f64, f64)) -> Pos2 {
        let c = viewport.center();
        Pos2::new(
            (f64::from(c.x) + (p.0 - self.center.0) * self.zoom) as f32,
            (f64::from(c.y) + (p.1 - self.center.1) * self.zoom) as f32,
        )
    }

    pub fn to_image(&self, viewport: Rect, p: Pos2) -> (f64, f64) {
        let c = viewport.center();
        (
            self.center.0 + f64::from(p.x - c.x) / self.zoom,
            self.center.1 + f64::from(p.y - c.y) / self.zoom,
        )
    }

    pub fn rect_to_screen(&self, viewport: Rect, r: &ImageRect) -> Rect {
        Rect::from_min_max(
            self.to_screen(viewport, (r.x0, r.y0)),
            self.to_screen(viewport, (r.x1, r.y1)),
        )
    }

    /// The part of the image inside the viewport, in image pixels (clamped to the image).
    pub fn visible(&self, viewport: Rect, size: ImageSize) -> ImageRect {
        let a = self.to_image(viewport, viewport.min);
        let b = self.to_image(viewport, viewport.max);
        ImageRect::new(a.0, a.1, b.0, b.1).clamped(size)
    }

    /// Zoom by `factor` keeping the image point under `anchor` where it is on screen.
    pub fn zoom_about(&mut self, viewport: Rect, anchor: Pos2, factor: f64, size: ImageSize) {
        let before = self.to_image(viewport, anchor);
        self.zoom = clamp_zoom(self.zoom * factor, size, viewport);
        let after = self.to_image(viewport, anchor);
        self.center.0 += before.0 - after.0;
        self.center.1 += before.1 - after.1;
        self.keep_in_view(size);
    }

    /// Move the view by a screen-space drag.
    pub fn pan(&mut self, delta: Vec2, size: ImageSize) {
        self.center.0 -= f64::from(delta.x) / self.zoom;
        self.center.1 -= f64::from(delta.y) / self.zoom;
        self.keep_in_view(size);
    }

    /// Keep the centre on the image so it can never be lost off screen.
    pub fn keep_in_view(&mut self, size: ImageSize) {
        self.center.0 = self.center.0.clamp(0.0, f64::from(size.width));
        self.center.1 = self.center.1.clamp(0.0, f64::from(size.height));
    }

    /// The pyramid level whose pixels are closest to (but not coarser than) one physical
    /// screen pixel at this zoom.
    pub fn level(&self, pixels_per_point: f32, top: u32) -> u32 {
        let physical = self.zoom * f64::from(pixels_per_point);
        if physical >= 1.0 {
            return 0;
        }
        ((1.0 / physical).log2().floor().max(0.0) as u32).min(top)
    }
}

pub fn fit_zoom(size: ImageSize, viewport: Rect) -> f64 {
    let zx = f64::from(viewport.width()) / f64::from(size.width.max(1));
    let zy = f64::from(viewport.height()) / f64::from(size.height.max(1));
    zx.min(zy).max(1e-6)
}

pub fn clamp_zoom(zoom: f64, size: ImageSize, viewport: Rect) -> f64 {
    let min = (fit_zoom(size, viewport) * MIN_ZOOM_OF_FIT).min(1.0);
    zoom.clamp(min, MAX_ZOOM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    const SIZE: ImageSize = ImageSize {
        width: 12000,
        height: 8000,
    };

    fn viewport() -> Rect {
        Rect::from_min_size(Pos2::new(100.0, 50.0), Vec2::new(1600.0, 900.0))
    }

    #[test]
    fn screen_and_image_coordinates_round_trip() {
        // A seeded property test over many views and points.
        let mut rng = Rng::new(42);
        for _ in 0..5000 {
            let view = View {
                center: (rng.unit() * 12000.0, rng.unit() * 8000.0),
                zoom: 0.01 + rng.unit() * 63.0,
            };
            let p = (rng.unit() * 12000.0, rng.unit() * 8000.0);
            let s = view.to_screen(viewport(), p);
            let back = view.to_image(viewport(), s);
            // f32 screen coordinates limit precision: half a screen point, in image pixels.
            let tol =
                (f64::from(s.x.abs().max(s.y.abs())) * f64::from(f32::EPSILON) + 1e-3) / view.zoom;
            assert!(
                (back.0 - p.0).abs() <= tol && (back.1 - p.1).abs() <= tol,
                "{view:?} {p:?} -> {back:?}"
            );
        }
    }

    #[test]
    fn fit_shows_the_whole_image() {
        let v = View::fit(SIZE, viewport());
        let vis = v.visible(viewport(), SIZE);
        assert_eq!((vis.x0, vis.y0), (0.0, 0.0));
        assert!((vis.x1 - 12000.0).abs() < 1e-6 && (vis.y1 - 8000.0).abs() < 1e-6);
        assert!((v.zoom - 0.1125).abs() < 1e-12);
    }

    #[test]
    fn zooming_about_a_point_keeps_it_under_the_cursor() {
        let mut v = View::fit(SIZE, viewport());
        let anchor = Pos2::new(400.0, 300.0);
        let before = v.to_image(viewport(), anchor);
        v.zoom_about(viewport(), anchor, 4.0, SIZE);
        let after = v.to_image(viewport(), anchor);
        assert!((before.0 - after.0).abs() < 1e-6 && (before.1 - after.1).abs() < 1e-6);
    }

    #[test]
    fn zoom_is_bounded_from_half_fit_to_6400_percent() {
        let mut v = View::fit(SIZE, viewport());
        let c = viewport().center();
        v.zoom_about(viewport(), c, 1e9, SIZE);
        assert_eq!(v.zoom, MAX_ZOOM);
        v.zoom_about(viewport(), c, 1e-9, SIZE);
        assert!((v.zoom - 0.1125 * MIN_ZOOM_OF_FIT).abs() < 1e-12);
    }

    #[test]
    fn level_follows_zoom() {
        let v = |zoom| View {
            center: (0.0, 0.0),
            zoom,
        };
        assert_eq!(v(2.0).level(1.0, 6), 0);
        assert_eq!(v(1.0).level(1.0, 6), 0);
        assert_eq!(v(0.5).level(1.0, 6), 1);
        assert_eq!(v(0.3).level(1.0, 6), 1);
        assert_eq!(v(0.25).level(1.0, 6), 2);
        assert_eq!(v(0.5).level(2.0, 6), 0);
        assert_eq!(v(0.001).level(1.0, 6), 6);
    }
}
