//! Geometry in original-image pixels.
//!
//! Owns [`ImageRect`], the one box type every stored annotation uses: `f64` coordinates in pixels
//! of the original image, half-open `[x0, x1) x [y0, y1)`. Conversions to the frames that
//! exporters and models need (normalised 0-1, Qwen2-VL's 0-1000 grid, the pixels of a resized
//! model input, COCO's `[x, y, w, h]`) live here as pure functions so every caller agrees on them.

use serde::{Deserialize, Serialize};

/// Width and height of an image in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

impl ImageSize {
    pub fn new(width: u32, height: u32) -> Self {
        Self { width, height }
    }

    /// Total number of pixels.
    pub fn pixels(self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// The longer of the two sides.
    pub fn longest_side(self) -> u32 {
        self.width.max(self.height)
    }

    /// The whole image as a rectangle.
    pub fn full_rect(self) -> ImageRect {
        ImageRect::new(0.0, 0.0, f64::from(self.width), f64::from(self.height))
    }
}

impl std::fmt::Display for ImageSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// A box in original-image pixels: `[x0, x1) x [y0, y1)`.
///
/// The constructor does not validate; [`crate::dataset::rules`] says whether a box is acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ImageRect {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl ImageRect {
    pub fn new(x0: f64, y0: f64, x1: f64, y1: f64) -> Self {
        Self { x0, y0, x1, y1 }
    }

    /// A box from two corners given in any order.
    pub fn from_corners(a: (f64, f64), b: (f64, f64)) -> Self {
        Self::new(a.0.min(b.0), a.1.min(b.1), a.0.max(b.0), a.1.max(b.1))
    }

    /// A box from COCO's `[x, y, w, h]`.
    pub fn from_xywh(x: f64, y: f64, w: f64, h: f64) -> Self {
        Self::new(x, y, x + w, y + h)
    }

    pub fn width(&self) -> f64 {
        self.x1 - self.x0
    }

    pub fn height(&self) -> f64 {
        self.y1 - self.y0
    }

    pub fn area(&self) -> f64 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    pub fn center(&self) -> (f64, f64) {
        ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)
    }

    /// Share of the image's area that this box covers (0-1).
    pub fn area_ratio(&self, size: ImageSize) -> f64 {
        let total = size.pixels() as f64;
        if total == 0.0 {
            return f64::INFINITY;
        }
        self.area() / total
    }

    /// All four coordinates are finite numbers.
    pub fn is_finite(&self) -> bool {
        self.x0.is_finite() && self.y0.is_finite() && self.x1.is_finite() && self.y1.is_finite()
    }

    /// The part of this box inside `[0, W] x [0, H]`.
    pub fn clamped(&self, size: ImageSize) -> Self {
        let (w, h) = (f64::from(size.width), f64::from(size.height));
        Self::new(
            self.x0.clamp(0.0, w),
            self.y0.clamp(0.0, h),
            self.x1.clamp(0.0, w),
            self.y1.clamp(0.0, h),
        )
    }

    /// Edges rounded to whole pixels (outwards would grow the box; this rounds each edge to the
    /// nearest pixel boundary, as a snapping editor does).
    pub fn snapped(&self) -> Self {
        Self::new(
            self.x0.round(),
            self.y0.round(),
            self.x1.round(),
            self.y1.round(),
        )
    }

    /// The area this box shares with another (0 when disjoint).
    pub fn intersection_area(&self, other: &ImageRect) -> f64 {
        let ix = (self.x1.min(other.x1) - self.x0.max(other.x0)).max(0.0);
        let iy = (self.y1.min(other.y1) - self.y0.max(other.y0)).max(0.0);
        ix * iy
    }

    /// Intersection over union with another box (0 when disjoint).
    pub fn iou(&self, other: &ImageRect) -> f64 {
        let inter = self.intersection_area(other);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// COCO's `[x, y, w, h]`.
    pub fn to_xywh(&self) -> [f64; 4] {
        [self.x0, self.y0, self.width(), self.height()]
    }

    /// Corners divided by the image size: every value in 0-1 for a box inside the image.
    pub fn to_normalized(&self, size: ImageSize) -> [f64; 4] {
        let (w, h) = (f64::from(size.width), f64::from(size.height));
        [self.x0 / w, self.y0 / h, self.x1 / w, self.y1 / h]
    }

    /// A box from normalised 0-1 corners.
    pub fn from_normalized(n: [f64; 4], size: ImageSize) -> Self {
        let (w, h) = (f64::from(size.width), f64::from(size.height));
        Self::new(n[0] * w, n[1] * h, n[2] * w, n[3] * h)
    }

    /// YOLO's `cx cy w h`, normalised to 0-1.
    pub fn to_yolo(&self, size: ImageSize) -> [f64; 4] {
        let (w, h) = (f64::from(size.width), f64::from(size.height));
        let (cx, cy) = self.center();
        [cx / w, cy / h, self.width() / w, self.height() / h]
    }

    /// Qwen2-VL's integer grid of 0-1000 in both axes.
    pub fn to_qwen2_grid(&self, size: ImageSize) -> [u32; 4] {
        let n = self.to_normalized(size);
        n.map(|v| (v * 1000.0).round().clamp(0.0, 1000.0) as u32)
    }

    /// A box from Qwen2-VL's 0-1000 grid.
    pub fn from_qwen2_grid(g: [u32; 4], size: ImageSize) -> Self {
        Self::from_normalized(g.map(|v| f64::from(v) / 1000.0), size)
    }

    /// This box in the pixels of a resized copy of the image (Qwen2.5-VL's absolute coordinates
    /// refer to the resized model input).
    pub fn to_resized(&self, from: ImageSize, to: ImageSize) -> Self {
        let sx = f64::from(to.width) / f64::from(from.width);
        let sy = f64::from(to.height) / f64::from(from.height);
        Self::new(self.x0 * sx, self.y0 * sy, self.x1 * sx, self.y1 * sy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: ImageSize = ImageSize {
        width: 4000,
        height: 3000,
    };

    #[test]
    fn corners_in_any_order_give_the_same_box() {
        let a = ImageRect::from_corners((30.0, 40.0), (10.0, 20.0));
        assert_eq!(a, ImageRect::new(10.0, 20.0, 30.0, 40.0));
    }

    #[test]
    fn coco_xywh_round_trips() {
        let r = ImageRect::new(10.5, 20.0, 110.5, 70.0);
        let [x, y, w, h] = r.to_xywh();
        assert_eq!([x, y, w, h], [10.5, 20.0, 100.0, 50.0]);
        assert_eq!(ImageRect::from_xywh(x, y, w, h), r);
    }

    #[test]
    fn yolo_is_centre_and_size_normalised() {
        let r = ImageRect::new(1000.0, 1500.0, 2000.0, 3000.0);
        assert_eq!(r.to_yolo(SIZE), [0.375, 0.75, 0.25, 0.5]);
    }

    #[test]
    fn qwen2_grid_round_trips_within_grid_precision() {
        let r = ImageRect::new(1250.0, 1030.0, 1360.0, 1094.0);
        let g = r.to_qwen2_grid(SIZE);
        assert_eq!(g, [313, 343, 340, 365]);
        let back = ImageRect::from_qwen2_grid(g, SIZE);
        assert!((back.x0 - r.x0).abs() <= 2.0 && (back.y1 - r.y1).abs() <= 1.5);
    }

    #[test]
    fn resized_frame_scales_each_axis() {
        let r = ImageRect::new(100.0, 100.0, 200.0, 300.0);
        let to = ImageSize::new(2000, 1500);
        assert_eq!(
            r.to_resized(SIZE, to),
            ImageRect::new(50.0, 50.0, 100.0, 150.0)
        );
    }

    #[test]
    fn clamping_keeps_the_inside_part() {
        let r = ImageRect::new(-10.0, 2990.0, 50.0, 3100.0).clamped(SIZE);
        assert_eq!(r, ImageRect::new(0.0, 2990.0, 50.0, 3000.0));
    }

    #[test]
    fn iou_of_identical_and_disjoint_boxes() {
        let a = ImageRect::new(0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&ImageRect::new(20.0, 20.0, 30.0, 30.0)), 0.0);
        let half = ImageRect::new(5.0, 0.0, 15.0, 10.0);
        assert!((a.iou(&half) - 50.0 / 150.0).abs() < 1e-12);
    }

    #[test]
    fn area_ratio_of_zero_sized_image_is_infinite() {
        let r = ImageRect::new(0.0, 0.0, 1.0, 1.0);
        assert!(r.area_ratio(ImageSize::new(0, 0)).is_infinite());
    }
}
