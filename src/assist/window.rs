//! A window of an image's original pixels: only the rows it covers are decoded for a baseline
//! JPEG (the band decoder), the whole picture otherwise (within the pixel budget).

use std::path::Path;

use image::RgbImage;

use super::AssistError;
use crate::geometry::{ImageRect, ImageSize};
use crate::imagery::{ImageError, PixelBudget, jpeg::JpegBands};

/// The most pixels a window may hold (64 MP: far beyond any object's neighbourhood).
pub const MAX_WINDOW_PIXELS: u64 = 64 << 20;

/// `rect` grown by `margin` of its size on every side, in whole pixels, kept on the image.
pub fn around(rect: &ImageRect, margin: f64, size: ImageSize) -> Result<[u32; 4], AssistError> {
    let (w, h) = (f64::from(size.width), f64::from(size.height));
    let inside = rect.x0 < w && rect.y0 < h && rect.x1 > 0.0 && rect.y1 > 0.0;
    if !(inside && rect.x1 > rect.x0 && rect.y1 > rect.y0) {
        return Err(AssistError::Outside(
            format!(
                "{:.0},{:.0},{:.0},{:.0}",
                rect.x0, rect.y0, rect.x1, rect.y1
            ),
            format!("{}x{}", size.width, size.height),
        ));
    }
    let (mx, my) = ((rect.x1 - rect.x0) * margin, (rect.y1 - rect.y0) * margin);
    let x0 = (rect.x0 - mx).floor().clamp(0.0, w) as u32;
    let y0 = (rect.y0 - my).floor().clamp(0.0, h) as u32;
    let x1 = (rect.x1 + mx).ceil().clamp(0.0, w) as u32;
    let y1 = (rect.y1 + my).ceil().clamp(0.0, h) as u32;
    let pixels = u64::from(x1 - x0) * u64::from(y1 - y0);
    if pixels > MAX_WINDOW_PIXELS {
        return Err(AssistError::TooLarge(pixels, MAX_WINDOW_PIXELS));
    }
    Ok([x0, y0, x1, y1])
}

/// An image opened to give windows of its pixels: a baseline JPEG decodes only the rows a
/// window covers (its band decoder opened once), anything else is decoded whole once.
pub enum Reader {
    Bands(Box<JpegBands>),
    Whole(RgbImage),
}

impl Reader {
    /// Open the image in `bytes` (the file at `path`).
    pub fn open(path: &Path, bytes: &[u8]) -> Result<Self, AssistError> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let upright = crate::imagery::preview::orientation(bytes)
            == image::metadata::Orientation::NoTransforms;
        if upright && let Ok(bands) = JpegBands::open(bytes, threads) {
            return Ok(Reader::Bands(Box::new(bands)));
        }
        let img =
            crate::imagery::decode::decode_bytes(path, bytes, PixelBudget::DEFAULT)?.into_rgb8();
        Ok(Reader::Whole(img))
    }

    /// The pixels of `[x0, y0, x1, y1)` (kept on the image).
    pub fn area(&self, path: &Path, area: [u32; 4]) -> Result<RgbImage, AssistError> {
        let [x0, y0, x1, y1] = area;
        match self {
            Reader::Bands(bands) => {
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                let rows = bands.rows(y0 as usize..y1 as usize, threads).map_err(|e| {
                    ImageError::Corrupt {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    }
                })?;
                Ok(image::imageops::crop_imm(&rows, x0, 0, x1 - x0, y1 - y0).to_image())
            }
            Reader::Whole(img) => {
                Ok(image::imageops::crop_imm(img, x0, y0, x1 - x0, y1 - y0).to_image())
            }
        }
    }
}

/// The pixels of `[x0, y0, x1, y1)` of the image in `bytes` (the file at `path`).
pub fn read(path: &Path, bytes: &[u8], area: [u32; 4]) -> Result<RgbImage, AssistError> {
    Reader::open(path, bytes)?.area(path, area)
}
