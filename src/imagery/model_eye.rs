//! The image as a Qwen2-VL / Qwen2.5-VL model receives it: `smart_resize` to multiples of 28
//! within a pixel range, and what that does to a small box. An object that shrinks below one
//! 28 px patch is one the model can hardly see: the annotator is told.

use thiserror::Error;

use crate::geometry::{ImageRect, ImageSize};

/// Side of one merged vision patch (14 px patches, merged 2x2).
pub const FACTOR: u32 = 28;
/// Qwen's default pixel range for one image.
pub const DEFAULT_MIN_PIXELS: u64 = 3136;
pub const DEFAULT_MAX_PIXELS: u64 = 12_845_056;
/// Common lower settings of max_pixels.
pub const PRESET_MAX_PIXELS: [u64; 3] = [1_003_520, 3_211_264, DEFAULT_MAX_PIXELS];
/// The largest aspect ratio the processor accepts.
pub const MAX_ASPECT: f64 = 200.0;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum ResizeError {
    #[error("the aspect ratio {ratio:.0}:1 is over the model's limit of 200:1")]
    AspectTooLarge { ratio: f64 },
    #[error("the image has a zero side")]
    Empty,
}

/// Round half to even, as Python's `round` does.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

/// The size the model's processor resizes an image to.
pub fn smart_resize(
    size: ImageSize,
    min_pixels: u64,
    max_pixels: u64,
) -> Result<ImageSize, ResizeError> {
    smart_resize_by(size, FACTOR, min_pixels, max_pixels)
}

/// The same with another side multiple (patch size x merge size).
pub fn smart_resize_by(
    size: ImageSize,
    factor: u32,
    min_pixels: u64,
    max_pixels: u64,
) -> Result<ImageSize, ResizeError> {
    let (w, h) = (f64::from(size.width), f64::from(size.height));
    if size.width == 0 || size.height == 0 {
        return Err(ResizeError::Empty);
    }
    let ratio = w.max(h) / w.min(h);
    if ratio > MAX_ASPECT {
        return Err(ResizeError::AspectTooLarge { ratio });
    }
    let f = f64::from(factor.max(1));
    let mut hb = (round_half_even(h / f) * f).max(f);
    let mut wb = (round_half_even(w / f) * f).max(f);
    if hb * wb > max_pixels as f64 {
        let beta = (h * w / max_pixels as f64).sqrt();
        hb = ((h / beta / f).floor() * f).max(f);
        wb = ((w / beta / f).floor() * f).max(f);
    } else if hb * wb < min_pixels as f64 {
        let beta = (min_pixels as f64 / (h * w)).sqrt();
        hb = (h * beta / f).ceil() * f;
        wb = (w * beta / f).ceil() * f;
    }
    Ok(ImageSize::new(wb as u32, hb as u32))
}

/// How a box looks to the model: its size in the resized input's pixels, and whether it is
/// smaller than one patch on either side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelEyeBox {
    pub width: f64,
    pub height: f64,
    pub below_one_patch: bool,
}

pub fn box_in_model_eye(rect: &ImageRect, size: ImageSize, resized: ImageSize) -> ModelEyeBox {
    let r = rect.to_resized(size, resized);
    let f = f64::from(FACTOR);
    ModelEyeBox {
        width: r.width(),
        height: r.height(),
        below_one_patch: r.width() < f || r.height() < f,
    }
}

/// The number of visual tokens the model spends on an image of this (resized) size: one per
/// 28 x 28 merged patch.
pub fn visual_tokens(resized: ImageSize) -> u64 {
    u64::from(resized.width / FACTOR) * u64::from(resized.height / FACTOR)
}

/// The coarsest pyramid level that still has at least `target`'s pixels on both sides, so the
/// model-eye picture is resampled from enough detail (level 0 when nothing coarser is).
pub fn source_level(layout: &super::pyramid::PyramidLayout, target: ImageSize) -> u32 {
    (0..=layout.top())
        .rev()
        .find(|l| {
            let s = layout.level_size(*l);
            s.width >= target.width && s.height >= target.height
        })
        .unwrap_or(0)
}

/// Resample a picture of the whole image to the model's input size with a bicubic (Catmull-Rom)
/// filter, as the processor does. (Through `DynamicImage`, whose resize is compiled, and
/// optimised, inside the image crate even in our debug builds.)
pub fn render(source: image::RgbImage, resized: ImageSize) -> image::RgbImage {
    image::DynamicImage::ImageRgb8(source)
        .resize_exact(
            resized.width,
            resized.height,
            image::imageops::FilterType::CatmullRom,
        )
        .into_rgb8()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resize(w: u32, h: u32, max: u64) -> ImageSize {
        smart_resize(ImageSize::new(w, h), DEFAULT_MIN_PIXELS, max).unwrap()
    }

    #[test]
    fn golden_values() {
        assert_eq!(
            resize(2048, 2048, DEFAULT_MAX_PIXELS),
            ImageSize::new(2044, 2044)
        );
        assert_eq!(
            resize(1080, 1920, DEFAULT_MAX_PIXELS),
            ImageSize::new(1080 + 12, 1920 + 12)
        );
        assert_eq!(resize(2048, 2048, 1_003_520), ImageSize::new(980, 980));
    }

    #[test]
    fn results_are_multiples_of_28_within_the_budget() {
        for (w, h) in [
            (6000, 4000),
            (12000, 8000),
            (5120, 2880),
            (4096, 4096),
            (100, 30),
        ] {
            for max in PRESET_MAX_PIXELS {
                let r = resize(w, h, max);
                assert_eq!(r.width % 28, 0);
                assert_eq!(r.height % 28, 0);
                assert!(r.pixels() <= max, "{w}x{h} -> {r} over {max}");
                assert!(r.pixels() >= DEFAULT_MIN_PIXELS);
            }
        }
    }

    #[test]
    fn round_half_to_even_like_python() {
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(3.5), 4.0);
        assert_eq!(round_half_even(2.4), 2.0);
        // 70 = 2.5 patches: rounds to 2 patches (56), not 3.
        assert_eq!(resize(70, 700, DEFAULT_MAX_PIXELS).width, 56);
    }

    #[test]
    fn extreme_aspect_ratios_are_refused() {
        assert!(matches!(
            smart_resize(
                ImageSize::new(30000, 100),
                DEFAULT_MIN_PIXELS,
                DEFAULT_MAX_PIXELS
            ),
            Err(ResizeError::AspectTooLarge { .. })
        ));
    }

    #[test]
    fn tokens_and_source_level() {
        let resized = resize(12000, 8000, DEFAULT_MAX_PIXELS);
        assert_eq!(
            visual_tokens(resized),
            u64::from(resized.width / 28) * u64::from(resized.height / 28)
        );
        assert!(visual_tokens(resized) <= DEFAULT_MAX_PIXELS / 784);
        let layout = super::super::pyramid::PyramidLayout::new(ImageSize::new(12000, 8000));
        // 12000 -> 6000 -> 3000: 3000 x 2000 is below the ~4368 px wide target, 6000 is not.
        assert_eq!(source_level(&layout, resized), 1);
        assert_eq!(
            source_level(&layout, resize(12000, 8000, 1_003_520)),
            3,
            "1,003,520 px needs only a 1500 x 1000 source"
        );
        let out = render(image::RgbImage::new(300, 200), ImageSize::new(140, 84));
        assert_eq!(out.dimensions(), (140, 84));
    }

    #[test]
    fn a_small_object_on_a_huge_image_falls_below_one_patch() {
        let size = ImageSize::new(12000, 8000);
        let resized = resize(12000, 8000, DEFAULT_MAX_PIXELS);
        let sign = ImageRect::new(1000.0, 1000.0, 1100.0, 1040.0);
        let seen = box_in_model_eye(&sign, size, resized);
        assert!(seen.below_one_patch, "{seen:?}");
        let big = ImageRect::new(0.0, 0.0, 400.0, 400.0);
        assert!(!box_in_model_eye(&big, size, resized).below_one_patch);
    }
}
