//! Qwen2.5-VL's image processor: smart_resize to multiples of 28 within [min_pixels,
//! max_pixels] (Python's round, half to even), a bicubic resize, CLIP mean/std normalisation,
//! and the patches laid out as the model reads them: a still image doubled in time, rows
//! ordered by 2x2 merge groups, each row (channel, time, y, x) of one 14x14 patch.

use serde_json::Value;

use crate::model::{ModelError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorConfig {
    pub min_pixels: u64,
    pub max_pixels: u64,
    pub patch_size: usize,
    pub temporal_patch_size: usize,
    pub merge_size: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        Self {
            min_pixels: 56 * 56,
            max_pixels: 28 * 28 * 16_384,
            patch_size: 14,
            temporal_patch_size: 2,
            merge_size: 2,
            mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
            std: [0.268_629_54, 0.261_302_6, 0.275_777_1],
        }
    }
}

impl ProcessorConfig {
    /// From preprocessor_config.json (`min_pixels`/`max_pixels`, or `size.shortest_edge` /
    /// `size.longest_edge` as newer files write them); missing keys keep the defaults.
    pub fn from_json(v: &Value) -> Self {
        let d = Self::default();
        let num = |keys: &[&str]| -> Option<u64> {
            keys.iter().find_map(|k| {
                let mut cur = v;
                for part in k.split('.') {
                    cur = cur.get(part)?;
                }
                cur.as_u64()
            })
        };
        let triple = |key: &str, default: [f32; 3]| -> [f32; 3] {
            v.get(key)
                .and_then(Value::as_array)
                .and_then(|a| {
                    let f: Vec<f32> = a
                        .iter()
                        .filter_map(Value::as_f64)
                        .map(|x| x as f32)
                        .collect();
                    <[f32; 3]>::try_from(f).ok()
                })
                .unwrap_or(default)
        };
        Self {
            min_pixels: num(&["min_pixels", "size.shortest_edge"]).unwrap_or(d.min_pixels),
            max_pixels: num(&["max_pixels", "size.longest_edge"]).unwrap_or(d.max_pixels),
            patch_size: num(&["patch_size"]).map_or(d.patch_size, |n| n as usize),
            temporal_patch_size: num(&["temporal_patch_size"])
                .map_or(d.temporal_patch_size, |n| n as usize),
            merge_size: num(&["merge_size"]).map_or(d.merge_size, |n| n as usize),
            mean: triple("image_mean", d.mean),
            std: triple("image_std", d.std),
        }
    }

    /// The side every resized image is a multiple of (28).
    pub fn factor(&self) -> u32 {
        (self.patch_size * self.merge_size) as u32
    }
}

/// The size (height, width) an image of `height` x `width` is resized to: both multiples of
/// `factor`, the area within [min_pixels, max_pixels] (the model-eye view's rule, shared).
pub fn smart_resize(
    height: u32,
    width: u32,
    factor: u32,
    min_pixels: u64,
    max_pixels: u64,
) -> Result<(u32, u32)> {
    let s = crate::imagery::model_eye::smart_resize_by(
        crate::geometry::ImageSize::new(width, height),
        factor,
        min_pixels,
        max_pixels,
    )
    .map_err(|e| ModelError::Image(format!("{width}x{height}: {e}")))?;
    Ok((s.height, s.width))
}

/// An image as the vision tower takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Patches {
    /// (grid_t * grid_h * grid_w) rows of (channels * temporal * patch * patch) values.
    pub values: Vec<f32>,
    pub row_len: usize,
    /// [t, h, w] in patches.
    pub grid: [usize; 3],
}

impl Patches {
    pub fn rows(&self) -> usize {
        self.grid.iter().product()
    }
    /// Tokens the image becomes in the text (after the 2x2 merge).
    pub fn tokens(&self, merge: usize) -> usize {
        self.rows() / (merge * merge)
    }
}

/// Resize, normalise and cut an RGB image into patch rows.
pub fn preprocess(img: &image::RgbImage, cfg: &ProcessorConfig) -> Result<Patches> {
    let (rh, rw) = smart_resize(
        img.height(),
        img.width(),
        cfg.factor(),
        cfg.min_pixels,
        cfg.max_pixels,
    )?;
    let resized = if (rw, rh) == img.dimensions() {
        img.clone()
    } else {
        // Bicubic with a = -0.5 (Catmull-Rom), widened when shrinking, as PIL's BICUBIC.
        image::DynamicImage::ImageRgb8(img.clone())
            .resize_exact(rw, rh, image::imageops::FilterType::CatmullRom)
            .into_rgb8()
    };
    Ok(patchify(&resized, cfg))
}

/// Normalise and lay out an image whose sides are already multiples of the factor.
pub fn patchify(img: &image::RgbImage, cfg: &ProcessorConfig) -> Patches {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (p, m, tp) = (cfg.patch_size, cfg.merge_size, cfg.temporal_patch_size);
    let (gh, gw) = (h / p, w / p);
    let scale = [
        1.0 / (255.0 * cfg.std[0]),
        1.0 / (255.0 * cfg.std[1]),
        1.0 / (255.0 * cfg.std[2]),
    ];
    let shift = [
        cfg.mean[0] / cfg.std[0],
        cfg.mean[1] / cfg.std[1],
        cfg.mean[2] / cfg.std[2],
    ];
    let raw = img.as_raw();
    let row_len = 3 * tp * p * p;
    let mut values = Vec::with_capacity(gh * gw * row_len);
    for bh in 0..gh / m {
        for bw in 0..gw / m {
            for ih in 0..m {
                for iw in 0..m {
                    let (y0, x0) = ((bh * m + ih) * p, (bw * m + iw) * p);
                    for c in 0..3 {
                        for _t in 0..tp {
                            for y in y0..y0 + p {
                                for x in x0..x0 + p {
                                    let v = f32::from(raw[(y * w + x) * 3 + c]);
                                    values.push(v * scale[c] - shift[c]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Patches {
        values,
        row_len,
        grid: [1, gh, gw],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_resize_matches_the_reference_values() {
        let d = ProcessorConfig::default();
        let f = d.factor();
        let r = |h, w, max| smart_resize(h, w, f, d.min_pixels, max).unwrap();
        assert_eq!(r(2048, 2048, d.max_pixels), (2044, 2044));
        assert_eq!(r(1080, 1920, d.max_pixels), (1092, 1932));
        assert_eq!(r(100, 150, d.max_pixels), (112, 140));
        assert_eq!(r(2048, 2048, 1_003_520), (980, 980));
        // Tiny images grow to the minimum area.
        let (h, w) = r(10, 10, d.max_pixels);
        assert!(u64::from(h) * u64::from(w) >= d.min_pixels);
        assert_eq!((h % 28, w % 28), (0, 0));
        assert!(smart_resize(1, 500, f, d.min_pixels, d.max_pixels).is_err());
        assert!(smart_resize(0, 5, f, d.min_pixels, d.max_pixels).is_err());
    }

    #[test]
    fn patches_come_in_merge_groups_with_time_doubled() {
        let cfg = ProcessorConfig::default();
        // 56 x 28: a 2 x 4 patch grid, one row of two merge groups.
        let img =
            image::RgbImage::from_fn(56, 28, |x, y| image::Rgb([(x * 4) as u8, (y * 8) as u8, 7]));
        let p = patchify(&img, &cfg);
        assert_eq!(p.grid, [1, 2, 4]);
        assert_eq!(p.row_len, 1176);
        assert_eq!(p.values.len(), 8 * 1176);
        let norm = |v: u8, c: usize| f32::from(v) / 255.0 / cfg.std[c] - cfg.mean[c] / cfg.std[c];
        // Row 1 is the patch right of the first (x from 14), row 2 the one below (y from 14).
        let at = |row: usize, c: usize, t: usize, y: usize, x: usize| {
            p.values[row * 1176 + ((c * 2 + t) * 14 + y) * 14 + x]
        };
        assert!((at(1, 0, 0, 0, 0) - norm(14 * 4, 0)).abs() < 1e-5);
        assert!((at(2, 1, 1, 0, 3) - norm(14 * 8, 1)).abs() < 1e-5);
        // The second merge group starts at x = 28.
        assert!((at(4, 0, 1, 2, 0) - norm(28 * 4, 0)).abs() < 1e-5);
        // Both time steps are the same picture.
        assert_eq!(at(3, 2, 0, 5, 5), at(3, 2, 1, 5, 5));
        assert_eq!(p.tokens(2), 2);
    }
}
