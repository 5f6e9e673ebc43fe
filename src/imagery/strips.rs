//! The tile pyramid built from full-resolution strips given top to bottom, so an image is never
//! whole in memory: each level keeps at most one row of tiles waiting for its rows, a finished
//! row of tiles is handed out, then halved into the next level.
//!
//! Tiles equal those cut from whole levels (`pyramid::reduce_half` of the whole image): a row
//! of tiles starts at an even row, so the 2x2 boxes of a strip are those of the whole level.

use rayon::prelude::*;

use super::pyramid::{PyramidLayout, TILE, TileKey, reduce_rows};
use crate::geometry::ImageSize;

/// Rows of one level not yet cut: whole pixel rows of the level's width.
#[derive(Default)]
struct Waiting {
    data: Vec<u8>,
    rows: u32,
    /// The level row the first waiting row is.
    first: u32,
}

/// The pyramid being built. `emit` gets every tile once, finest level first, a row of tiles at
/// a time (the tiles of a row in parallel); it returns `false` to stop the build.
pub struct StripPyramid {
    layout: PyramidLayout,
    waiting: Vec<Waiting>,
    /// Full-resolution rows taken so far.
    taken: u32,
}

impl StripPyramid {
    pub fn new(size: ImageSize) -> Self {
        let layout = PyramidLayout::new(size);
        let waiting = (0..=layout.top()).map(|_| Waiting::default()).collect();
        Self {
            layout,
            waiting,
            taken: 0,
        }
    }

    pub fn layout(&self) -> &PyramidLayout {
        &self.layout
    }

    /// Take the next `rows` full-resolution rows (RGB, the image's width). `false` when
    /// `emit` stopped the build or the rows overrun the image.
    pub fn push<F>(&mut self, data: &[u8], rows: u32, emit: &F) -> bool
    where
        F: Fn(TileKey, image::RgbImage) -> bool + Sync,
    {
        if self.taken + rows > self.layout.size().height {
            return false;
        }
        self.taken += rows;
        self.push_level(0, data, rows, emit)
    }

    /// Cut what is still waiting at every level (the bottom rows of tiles). `false` when the
    /// image was not given whole or `emit` stopped the build.
    pub fn finish<F>(mut self, emit: &F) -> bool
    where
        F: Fn(TileKey, image::RgbImage) -> bool + Sync,
    {
        if self.taken != self.layout.size().height {
            return false;
        }
        for level in 0..=self.layout.top() {
            let w = std::mem::take(&mut self.waiting[level as usize]);
            if w.rows > 0 && !self.cut_row(level, w.first, &w.data, w.rows, emit) {
                return false;
            }
        }
        true
    }

    fn push_level<F>(&mut self, level: u32, mut data: &[u8], mut rows: u32, emit: &F) -> bool
    where
        F: Fn(TileKey, image::RgbImage) -> bool + Sync,
    {
        let stride = self.layout.level_size(level).width as usize * 3;
        let data_rows = (data.len() / stride.max(1)) as u32;
        rows = rows.min(data_rows);
        // Whole rows of tiles straight from the rows given when nothing waits before them.
        while self.waiting[level as usize].rows == 0 && rows >= TILE {
            let first = self.waiting[level as usize].first;
            let (now, rest) = data.split_at(TILE as usize * stride);
            if !self.cut_row(level, first, now, TILE, emit) {
                return false;
            }
            self.waiting[level as usize].first += TILE;
            (data, rows) = (rest, rows - TILE);
        }
        let w = &mut self.waiting[level as usize];
        w.data.extend_from_slice(&data[..rows as usize * stride]);
        w.rows += rows;
        while self.waiting[level as usize].rows >= TILE {
            let w = &mut self.waiting[level as usize];
            let now: Vec<u8> = w.data.drain(..TILE as usize * stride).collect();
            w.rows -= TILE;
            let first = w.first;
            w.first += TILE;
            if !self.cut_row(level, first, &now, TILE, emit) {
                return false;
            }
        }
        true
    }

    /// Hand out the row of tiles whose rows start at level row `first`, then halve those rows
    /// into the next level.
    fn cut_row<F>(&mut self, level: u32, first: u32, data: &[u8], rows: u32, emit: &F) -> bool
    where
        F: Fn(TileKey, image::RgbImage) -> bool + Sync,
    {
        let width = self.layout.level_size(level).width;
        let (cols, _) = self.layout.grid(level);
        let row = first / TILE;
        let stride = width as usize * 3;
        let all = (0..cols).into_par_iter().all(|col| {
            let x = col * TILE;
            let w = TILE.min(width - x);
            let (x0, len) = (x as usize * 3, w as usize * 3);
            let mut tile = Vec::with_capacity(len * rows as usize);
            for r in 0..rows as usize {
                tile.extend_from_slice(&data[r * stride + x0..r * stride + x0 + len]);
            }
            let key = TileKey { level, col, row };
            image::RgbImage::from_raw(w, rows, tile).is_some_and(|t| emit(key, t))
        });
        if !all {
            return false;
        }
        if level == self.layout.top() {
            return true;
        }
        let (halved, half_rows) = reduce_rows(data, width, rows);
        self.push_level(level + 1, &halved, half_rows, emit)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use image::RgbImage;

    use super::*;
    use crate::imagery::pyramid::{cut_tile, reduce_half};

    fn noise(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let v = crate::rng::mix(u64::from(x) << 32 | u64::from(y));
            image::Rgb([v as u8, (v >> 8) as u8, (v >> 16) as u8])
        })
    }

    /// Every tile of the pyramid cut from whole levels.
    fn from_whole_levels(img: &RgbImage) -> Vec<(TileKey, RgbImage)> {
        let layout = PyramidLayout::new(ImageSize::new(img.width(), img.height()));
        let mut level_img = img.clone();
        let mut out = Vec::new();
        for level in 0..=layout.top() {
            out.extend(
                layout
                    .tiles(level)
                    .map(|k| (k, cut_tile(&level_img, &layout, k))),
            );
            level_img = reduce_half(&level_img);
        }
        out.sort_by_key(|(k, _)| *k);
        out
    }

    #[test]
    fn strips_of_any_height_give_the_tiles_of_whole_levels() {
        for (w, h) in [(1537, 1029), (2100, 2600), (300, 200), (513, 1025)] {
            let img = noise(w, h);
            let want = from_whole_levels(&img);
            for strip in [512u32, 100, 1536, 7] {
                let got = Mutex::new(Vec::new());
                let emit = |k: TileKey, t: RgbImage| {
                    got.lock().unwrap().push((k, t));
                    true
                };
                let mut p = StripPyramid::new(ImageSize::new(w, h));
                for chunk in img.as_raw().chunks(strip as usize * w as usize * 3) {
                    assert!(p.push(chunk, (chunk.len() / (w as usize * 3)) as u32, &emit));
                }
                assert!(p.finish(&emit));
                let mut got = got.into_inner().unwrap();
                got.sort_by_key(|(k, _)| *k);
                assert_eq!(got.len(), want.len(), "{w}x{h} in strips of {strip}");
                assert!(got == want, "{w}x{h} in strips of {strip}: tiles differ");
            }
        }
    }

    #[test]
    fn a_stopped_build_or_a_short_image_is_not_finished() {
        let img = noise(700, 600);
        let mut p = StripPyramid::new(ImageSize::new(700, 600));
        assert!(!p.push(img.as_raw(), 600, &|_, _| false), "emit stopped it");
        let mut p = StripPyramid::new(ImageSize::new(700, 600));
        assert!(p.push(&img.as_raw()[..700 * 3 * 100], 100, &|_, _| true));
        assert!(!p.finish(&|_, _| true), "500 rows never came");
        let mut p = StripPyramid::new(ImageSize::new(700, 600));
        assert!(
            !p.push(&vec![0; 700 * 3 * 700], 700, &|_, _| true),
            "more rows than the image"
        );
    }
}
