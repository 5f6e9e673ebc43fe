//! The tile pyramid: level 0 is full resolution, each next level halves (2x2 box filter) down to
//! a level that fits in one tile. Tiles are 512 px squares (smaller at the right and bottom edges).

use image::RgbImage;
use rayon::prelude::*;

use crate::geometry::ImageSize;

/// Side of a tile in pixels.
pub const TILE: u32 = 512;

/// Which tile: level, column, row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileKey {
    pub level: u32,
    pub col: u32,
    pub row: u32,
}

/// The sizes of every level of an image's pyramid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyramidLayout {
    pub levels: Vec<ImageSize>,
}

impl PyramidLayout {
    pub fn new(size: ImageSize) -> Self {
        let mut levels = vec![size];
        let mut s = size;
        while s.width > TILE || s.height > TILE {
            s = half(s);
            levels.push(s);
        }
        Self { levels }
    }

    /// The full-resolution size.
    pub fn size(&self) -> ImageSize {
        self.levels[0]
    }

    /// The coarsest level (one tile).
    pub fn top(&self) -> u32 {
        self.levels.len() as u32 - 1
    }

    pub fn level_size(&self, level: u32) -> ImageSize {
        self.levels[level.min(self.top()) as usize]
    }

    /// Columns and rows of tiles at a level.
    pub fn grid(&self, level: u32) -> (u32, u32) {
        let s = self.level_size(level);
        (s.width.div_ceil(TILE), s.height.div_ceil(TILE))
    }

    /// The tile's pixel rectangle within its level: x, y, width, height.
    pub fn tile_rect(&self, key: TileKey) -> (u32, u32, u32, u32) {
        let s = self.level_size(key.level);
        let x = key.col * TILE;
        let y = key.row * TILE;
        (
            x,
            y,
            TILE.min(s.width.saturating_sub(x)),
            TILE.min(s.height.saturating_sub(y)),
        )
    }

    /// Every tile of a level, row by row.
    pub fn tiles(&self, level: u32) -> impl Iterator<Item = TileKey> {
        let (cols, rows) = self.grid(level);
        (0..rows).flat_map(move |row| (0..cols).map(move |col| TileKey { level, col, row }))
    }

    /// Number of tiles over all levels.
    pub fn tile_count(&self) -> usize {
        (0..=self.top())
            .map(|l| {
                let (c, r) = self.grid(l);
                (c * r) as usize
            })
            .sum()
    }

    /// How many original pixels one pixel of `level` spans.
    pub fn scale(level: u32) -> f64 {
        f64::from(1u32 << level.min(31))
    }
}

/// The size of the next level: halved, rounded up.
pub fn half(s: ImageSize) -> ImageSize {
    ImageSize::new(s.width.div_ceil(2).max(1), s.height.div_ceil(2).max(1))
}

/// Halve an image with a 2x2 box filter, rounding to nearest. At an odd right or bottom edge
/// the last column or row averages the pixels it has (no padding, no bleed).
pub fn reduce_half(src: &RgbImage) -> RgbImage {
    let (w, h) = src.dimensions();
    let (dst, rows) = reduce_rows(src.as_raw(), w, h);
    RgbImage::from_raw(half(ImageSize::new(w, h)).width, rows, dst)
        .unwrap_or_else(|| RgbImage::new(1, 1)) // safe: sized by reduce_rows
}

/// `rows` rows of `width` RGB pixels halved by the 2x2 box filter, on every core: the bytes
/// and their number of rows.
pub fn reduce_rows(data: &[u8], width: u32, rows: u32) -> (Vec<u8>, u32) {
    let out = half(ImageSize::new(width, rows));
    let (w, h) = (width as usize, rows as usize);
    let ow = out.width as usize;
    let mut dst = vec![0u8; ow * out.height as usize * 3];
    dst.par_chunks_mut(ow * 3)
        .enumerate()
        .for_each(|(oy, line)| {
            let y0 = oy * 2;
            let y1 = (y0 + 1).min(h - 1);
            let top = &data[y0 * w * 3..(y0 + 1) * w * 3];
            let bottom = &data[y1 * w * 3..(y1 + 1) * w * 3];
            reduce_line(top, bottom, y1 != y0, line);
        });
    (dst, out.height)
}

/// One output row of the 2x2 box filter from the `top` and `bottom` input rows (RGB, the same
/// width; `bottom` unused when `two_rows` is false, at an odd bottom edge).
pub fn reduce_line(top: &[u8], bottom: &[u8], two_rows: bool, out: &mut [u8]) {
    let w = top.len() / 3;
    let pairs = w / 2;
    let round = |sum: u32, n: u32| ((sum + n / 2) / n) as u8;
    // Whole 2x2 (or 2x1) boxes first, then a lone last column.
    for (ox, o) in out.chunks_exact_mut(3).take(pairs).enumerate() {
        let x = ox * 6;
        for c in 0..3 {
            let mut sum = u32::from(top[x + c]) + u32::from(top[x + 3 + c]);
            if two_rows {
                sum += u32::from(bottom[x + c]) + u32::from(bottom[x + 3 + c]);
                o[c] = round(sum, 4);
            } else {
                o[c] = round(sum, 2);
            }
        }
    }
    if w % 2 == 1
        && let Some(o) = out.get_mut(pairs * 3..pairs * 3 + 3)
    {
        let x = (w - 1) * 3;
        for c in 0..3 {
            let mut sum = u32::from(top[x + c]);
            if two_rows {
                sum += u32::from(bottom[x + c]);
                o[c] = round(sum, 2);
            } else {
                o[c] = top[x + c];
            }
        }
    }
}

/// Copy one tile out of a level image.
pub fn cut_tile(level_image: &RgbImage, layout: &PyramidLayout, key: TileKey) -> RgbImage {
    let (x, y, w, h) = layout.tile_rect(key);
    // Clamped to the level, so a key from another layout gives a smaller tile, never a panic.
    let (lw, lh) = level_image.dimensions();
    let (x, y) = (x.min(lw), y.min(lh));
    let (w, h) = (w.min(lw - x), h.min(lh - y));
    // Whole rows copied at once (a pixel-by-pixel view copy took a tenth of the pyramid).
    let (stride, x0, row) = (lw as usize * 3, x as usize * 3, w as usize * 3);
    let raw = level_image.as_raw();
    let mut out = Vec::with_capacity(row * h as usize);
    for r in y as usize..(y + h) as usize {
        out.extend_from_slice(&raw[r * stride + x0..r * stride + x0 + row]);
    }
    RgbImage::from_raw(w, h, out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_halve_down_to_one_tile() {
        let l = PyramidLayout::new(ImageSize::new(5000, 3001));
        let sizes: Vec<(u32, u32)> = l.levels.iter().map(|s| (s.width, s.height)).collect();
        assert_eq!(
            sizes,
            vec![
                (5000, 3001),
                (2500, 1501),
                (1250, 751),
                (625, 376),
                (313, 188)
            ]
        );
        assert_eq!(l.grid(0), (10, 6));
        assert_eq!(l.grid(l.top()), (1, 1));
        let small = PyramidLayout::new(ImageSize::new(300, 200));
        assert_eq!(small.top(), 0);
    }

    #[test]
    fn edge_tiles_have_the_remaining_size() {
        let l = PyramidLayout::new(ImageSize::new(1100, 600));
        assert_eq!(
            l.tile_rect(TileKey {
                level: 0,
                col: 0,
                row: 0
            }),
            (0, 0, 512, 512)
        );
        assert_eq!(
            l.tile_rect(TileKey {
                level: 0,
                col: 2,
                row: 0
            }),
            (1024, 0, 76, 512)
        );
        assert_eq!(
            l.tile_rect(TileKey {
                level: 0,
                col: 2,
                row: 1
            }),
            (1024, 512, 76, 88)
        );
        assert_eq!(l.tiles(0).count(), 6);
        assert_eq!(l.tile_count(), 6 + 2 + 1);
    }

    #[test]
    fn cut_tiles_equal_the_crops_they_stand_for_at_every_edge() {
        let img = RgbImage::from_fn(1300, 700, |x, y| {
            image::Rgb([x as u8, y as u8, (x * 3 + y) as u8])
        });
        let layout = PyramidLayout::new(ImageSize::new(1300, 700));
        for key in layout.tiles(0) {
            let (x, y, w, h) = layout.tile_rect(key);
            let want = image::imageops::crop_imm(&img, x, y, w, h).to_image();
            assert_eq!(cut_tile(&img, &layout, key), want, "{key:?}");
        }
    }

    #[test]
    fn reduce_half_averages_2x2_blocks_and_odd_edges() {
        let src = RgbImage::from_fn(3, 3, |x, y| image::Rgb([(x * 10 + y * 100) as u8, 0, 255]));
        let d = reduce_half(&src);
        assert_eq!(d.dimensions(), (2, 2));
        // (0,0): mean of 0, 10, 100, 110 = 55.
        assert_eq!(d.get_pixel(0, 0).0, [55, 0, 255]);
        // Right edge column: mean of 20 and 120 = 70.
        assert_eq!(d.get_pixel(1, 0).0, [70, 0, 255]);
        // Bottom-right corner: the single pixel 220.
        assert_eq!(d.get_pixel(1, 1).0, [220, 0, 255]);
    }
}
