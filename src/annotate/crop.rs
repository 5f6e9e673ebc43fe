//! The crop the agent's sandbox would make of a box: Thyme's fix-up of crop boxes (sorted,
//! clamped to the image, each side widened to at least 64 px by moving the far edge, shifted
//! back only where that would leave the image), then a zoom factor.

use crate::geometry::{ImageRect, ImageSize};

/// The smallest side the sandbox lets a crop have.
pub const MIN_CROP_SIDE: f64 = 64.0;

/// The box the sandbox would crop for `rect` (whole pixels).
pub fn sandbox_crop(rect: &ImageRect, size: ImageSize) -> ImageRect {
    let (w, h) = (f64::from(size.width), f64::from(size.height));
    let r = ImageRect::from_corners((rect.x0, rect.y0), (rect.x1, rect.y1)).clamped(size);
    let (x0, x1) = widen(r.x0.floor(), r.x1.ceil(), w);
    let (y0, y1) = widen(r.y0.floor(), r.y1.ceil(), h);
    ImageRect::new(x0, y0, x1, y1)
}

/// Widen `[a, b)` to at least the minimum side by moving `b`; where that passes `limit`, the
/// rest is taken from `a` (an image smaller than the minimum keeps its whole side).
fn widen(a: f64, b: f64, limit: f64) -> (f64, f64) {
    if b - a >= MIN_CROP_SIDE {
        return (a, b);
    }
    let b2 = a + MIN_CROP_SIDE;
    if b2 <= limit {
        (a, b2)
    } else {
        ((limit - MIN_CROP_SIDE).max(0.0), limit)
    }
}

/// The size of the crop after zooming by `factor`.
pub fn zoomed_size(crop: &ImageRect, factor: f64) -> (u32, u32) {
    (
        (crop.width() * factor).round().max(1.0) as u32,
        (crop.height() * factor).round().max(1.0) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thymes_own_example() {
        // A 2496x1392 photo, crop (1250, 1030, 1360, 1070) zoomed 2x: the 40 px height is
        // widened to 64 and the saved crop is 220x128.
        let size = ImageSize::new(2496, 1392);
        let c = sandbox_crop(&ImageRect::new(1250.0, 1030.0, 1360.0, 1070.0), size);
        assert_eq!(c, ImageRect::new(1250.0, 1030.0, 1360.0, 1094.0));
        assert_eq!(zoomed_size(&c, 2.0), (220, 128));
    }

    #[test]
    fn at_the_far_edge_the_box_shifts_back_inside() {
        let size = ImageSize::new(1000, 800);
        let c = sandbox_crop(&ImageRect::new(980.0, 790.0, 1000.0, 800.0), size);
        assert_eq!(c, ImageRect::new(936.0, 736.0, 1000.0, 800.0));
    }

    #[test]
    fn boxes_crossing_the_border_are_clamped_first() {
        let size = ImageSize::new(1000, 800);
        let c = sandbox_crop(&ImageRect::new(-50.0, 100.0, 300.0, 120.0), size);
        assert_eq!(c, ImageRect::new(0.0, 100.0, 300.0, 164.0));
    }

    #[test]
    fn an_image_smaller_than_the_minimum_keeps_its_whole_side() {
        let size = ImageSize::new(50, 30);
        let c = sandbox_crop(&ImageRect::new(10.0, 10.0, 20.0, 20.0), size);
        assert_eq!(c, ImageRect::new(0.0, 0.0, 50.0, 30.0));
    }
}
