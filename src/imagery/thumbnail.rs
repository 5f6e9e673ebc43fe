//! Small previews for lists and fitted views.

use image::{DynamicImage, RgbaImage};

use crate::geometry::ImageSize;

/// The size that fits `size` within `max_side` on its longest side, keeping the aspect ratio
/// (never upscales, never returns a zero side).
pub fn fit_within(size: ImageSize, max_side: u32) -> ImageSize {
    let longest = size.longest_side().max(1);
    if longest <= max_side {
        return size;
    }
    let scale = f64::from(max_side) / f64::from(longest);
    let w = ((f64::from(size.width) * scale).round() as u32).max(1);
    let h = ((f64::from(size.height) * scale).round() as u32).max(1);
    ImageSize::new(w, h)
}

/// A downscaled RGBA copy whose longest side is at most `max_side` (area-averaged).
pub fn thumbnail(image: &DynamicImage, max_side: u32) -> RgbaImage {
    let target = fit_within(ImageSize::new(image.width(), image.height()), max_side);
    let rgba = image.to_rgba8();
    if target.width == image.width() && target.height == image.height() {
        return rgba;
    }
    image::imageops::thumbnail(&rgba, target.width, target.height)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect_and_never_upscales() {
        assert_eq!(
            fit_within(ImageSize::new(6000, 4000), 256),
            ImageSize::new(256, 171)
        );
        assert_eq!(
            fit_within(ImageSize::new(100, 50), 256),
            ImageSize::new(100, 50)
        );
        assert_eq!(
            fit_within(ImageSize::new(100_000, 10), 256),
            ImageSize::new(256, 1)
        );
    }

    #[test]
    fn thumbnail_has_the_fitted_size() {
        let img = DynamicImage::new_rgb8(600, 300);
        let t = thumbnail(&img, 128);
        assert_eq!(t.dimensions(), (128, 64));
    }
}
