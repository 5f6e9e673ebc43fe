//! Drawing on an RGB buffer: the busy background and the small objects of the demo scenes.

use image::{Rgb, RgbImage};
use rayon::prelude::*;

use super::font::{GLYPH_W, glyph};
use crate::rng::{Rng, mix};

pub type Color = [u8; 3];

/// Fill `[x0, x1) x [y0, y1)`, clipped to the image.
pub fn fill_rect(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, c: Color) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            img.put_pixel(x as u32, y as u32, Rgb(c));
        }
    }
}

/// Fill every pixel whose centre lies inside the shape given by `inside(dx, dy)` within the
/// bounding box `[x0, x0 + w) x [y0, y0 + h)`; `dx`, `dy` are in -1..1 across the box.
fn fill_shape(
    img: &mut RgbImage,
    x0: i64,
    y0: i64,
    w: i64,
    h: i64,
    c: Color,
    inside: impl Fn(f64, f64) -> bool,
) {
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    for y in y0.max(0)..(y0 + h).min(ih) {
        for x in x0.max(0)..(x0 + w).min(iw) {
            let dx = ((x - x0) as f64 + 0.5) / w as f64 * 2.0 - 1.0;
            let dy = ((y - y0) as f64 + 0.5) / h as f64 * 2.0 - 1.0;
            if inside(dx, dy) {
                img.put_pixel(x as u32, y as u32, Rgb(c));
            }
        }
    }
}

/// The shapes the scenes use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Circle,
    Square,
    Triangle,
    Diamond,
}

impl Shape {
    pub const ALL: [Shape; 4] = [
        Shape::Circle,
        Shape::Square,
        Shape::Triangle,
        Shape::Diamond,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Circle => "circle",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Diamond => "diamond",
        }
    }
}

/// Draw a filled shape in the box `[x0, x0 + s) x [y0, y0 + s)`.
pub fn fill_figure(img: &mut RgbImage, shape: Shape, x0: i64, y0: i64, s: i64, c: Color) {
    match shape {
        Shape::Circle => fill_shape(img, x0, y0, s, s, c, |dx, dy| dx * dx + dy * dy <= 1.0),
        Shape::Square => fill_rect(img, x0, y0, x0 + s, y0 + s, c),
        Shape::Triangle => fill_shape(img, x0, y0, s, s, c, |dx, dy| dy >= 2.0 * dx.abs() - 1.0),
        Shape::Diamond => fill_shape(img, x0, y0, s, s, c, |dx, dy| dx.abs() + dy.abs() <= 1.0),
    }
}

/// Draw text with the bitmap font, `scale` image pixels per font pixel.
pub fn draw_text(img: &mut RgbImage, text: &str, x0: i64, y0: i64, scale: i64, c: Color) {
    let mut x = x0;
    for ch in text.chars() {
        if let Some(rows) = glyph(ch) {
            for (row, bits) in rows.iter().enumerate() {
                for col in 0..GLYPH_W as i64 {
                    if bits & (1 << (GLYPH_W as i64 - 1 - col)) != 0 {
                        let px = x + col * scale;
                        let py = y0 + row as i64 * scale;
                        fill_rect(img, px, py, px + scale, py + scale, c);
                    }
                }
            }
        }
        x += (GLYPH_W as i64 + 1) * scale;
    }
}

/// A busy, textured background: smooth colour fields, fine grain, and clutter.
pub fn background(width: u32, height: u32, seed: u64, scale_div: u32) -> RgbImage {
    // Smooth value noise on a coarse grid, bilinearly interpolated.
    let cell = (240 / scale_div.max(1)).max(4) as usize;
    let gw = width as usize / cell + 2;
    let gh = height as usize / cell + 2;
    let grid: Vec<[f32; 3]> = (0..gw * gh)
        .map(|i| {
            let h = mix(seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
            [
                90.0 + (h & 0x3F) as f32,
                100.0 + ((h >> 8) & 0x3F) as f32,
                80.0 + ((h >> 16) & 0x3F) as f32,
            ]
        })
        .collect();
    let mut buf = vec![0u8; width as usize * height as usize * 3];
    buf.par_chunks_mut(width as usize * 3)
        .enumerate()
        .for_each(|(y, row)| {
            let gy = y / cell;
            let fy = (y % cell) as f32 / cell as f32;
            for x in 0..width as usize {
                let gx = x / cell;
                let fx = (x % cell) as f32 / cell as f32;
                let a = grid[gy * gw + gx];
                let b = grid[gy * gw + gx + 1];
                let c = grid[(gy + 1) * gw + gx];
                let d = grid[(gy + 1) * gw + gx + 1];
                let grain = (mix(seed ^ ((y as u64) << 32 | x as u64)) & 0x1F) as f32 - 16.0;
                let stripe = if (x / 7 + y / 11) % 9 == 0 {
                    -18.0
                } else {
                    0.0
                };
                for ch in 0..3 {
                    let top = a[ch] + (b[ch] - a[ch]) * fx;
                    let bottom = c[ch] + (d[ch] - c[ch]) * fx;
                    let v = top + (bottom - top) * fy + grain + stripe;
                    row[x * 3 + ch] = v.clamp(0.0, 255.0) as u8;
                }
            }
        });
    let mut img =
        RgbImage::from_raw(width, height, buf).unwrap_or_else(|| RgbImage::new(width, height)); // safe: the buffer has exactly w*h*3 bytes
    // Clutter: many small muted rectangles and bars, so objects must be searched for.
    let mut rng = Rng::new(seed ^ 0xC1u64);
    let clutter = (u64::from(width) * u64::from(height) / 12_000) as usize;
    let unit = i64::from((40 / scale_div.max(1)).max(2));
    for _ in 0..clutter {
        let x = i64::from(rng.range(0, width));
        let y = i64::from(rng.range(0, height));
        let w = unit / 2 + i64::from(rng.range(0, (unit * 2) as u32));
        let h = unit / 4 + i64::from(rng.range(0, unit as u32));
        let base = rng.range(60, 150) as u8;
        let c = [
            base.saturating_add(rng.range(0, 30) as u8),
            base,
            base.saturating_sub(rng.range(0, 30) as u8),
        ];
        fill_rect(&mut img, x, y, x + w, y + h, c);
    }
    img
}
