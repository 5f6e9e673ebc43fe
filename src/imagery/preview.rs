//! A fast coarse first picture: JPEG decoded at 1/2, 1/4 or 1/8 scale in the DCT domain, so a
//! huge photo shows something long before its full decode ends. The 1/8 scale, the one huge
//! photos get, comes from the DC-only decoder in `jpeg` on every core; files it does not
//! handle (CMYK, 12-bit, arithmetic coding) and finer scales go through jpeg-decoder. A
//! progressive file always gets its eighth (finer scales would need all its AC scans).

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, RgbImage, metadata::Orientation};

use super::{ImageError, ImageFormat};

/// Decode a JPEG at the coarsest DCT scale (1/8, 1/4, 1/2 or 1) whose result is still at least
/// `min_side` on its longest side, upright. `None` for other formats.
pub fn scaled_jpeg(
    path: &Path,
    bytes: &[u8],
    min_side: u32,
) -> Option<Result<RgbImage, ImageError>> {
    if ImageFormat::sniff(bytes) != Some(ImageFormat::Jpeg) {
        return None;
    }
    Some(decode_scaled(path, bytes, min_side))
}

fn decode_scaled(path: &Path, bytes: &[u8], min_side: u32) -> Result<RgbImage, ImageError> {
    let corrupt = |reason: String| ImageError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().map_err(|e| corrupt(e.to_string()))?;
    let info = decoder
        .info()
        .ok_or_else(|| corrupt("no JPEG header".into()))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    let longest = w.max(h).max(1);
    let mut factor = 8u32;
    // A progressive file's finer scales need every AC scan, nearly a full decode (0.6 s for
    // 18 MP by jpeg-decoder): its eighth from the DC scans alone (milliseconds) is shown
    // instead, however small, until the tiles come.
    let progressive = super::jpeg::is_progressive(bytes);
    while !progressive && factor > 1 && longest / factor < min_side {
        factor /= 2;
    }
    if factor == 8 {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        match super::jpeg::decode_eighth(bytes, threads) {
            Ok(rgb) => {
                let mut img = DynamicImage::ImageRgb8(rgb);
                img.apply_orientation(orientation(bytes));
                return Ok(img.to_rgb8());
            }
            Err(e) => tracing::debug!("{}: {e}; decoding by the general path", path.display()),
        }
    }
    let (sw, sh) = decoder
        .scale((w / factor).max(1) as u16, (h / factor).max(1) as u16)
        .map_err(|e| corrupt(e.to_string()))?;
    let pixels = decoder.decode().map_err(|e| corrupt(e.to_string()))?;
    let (sw, sh) = (u32::from(sw), u32::from(sh));
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => RgbImage::from_raw(sw, sh, pixels),
        jpeg_decoder::PixelFormat::L8 => image::GrayImage::from_raw(sw, sh, pixels)
            .map(|g| DynamicImage::ImageLuma8(g).to_rgb8()),
        jpeg_decoder::PixelFormat::L16 => {
            let grey: Vec<u8> = pixels.chunks_exact(2).map(|c| c[0]).collect();
            image::GrayImage::from_raw(sw, sh, grey).map(|g| DynamicImage::ImageLuma8(g).to_rgb8())
        }
        jpeg_decoder::PixelFormat::CMYK32 => {
            let rgb: Vec<u8> = pixels
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = 255 - u32::from(p[3]);
                    [0, 1, 2].map(|i| ((255 - u32::from(p[i])) * k / 255) as u8)
                })
                .collect();
            RgbImage::from_raw(sw, sh, rgb)
        }
    }
    .ok_or_else(|| corrupt("the scaled decode returned a short buffer".into()))?;
    let mut img = DynamicImage::ImageRgb8(rgb);
    img.apply_orientation(orientation(bytes));
    Ok(img.to_rgb8())
}

/// The EXIF orientation of a JPEG (upright when there is none), read from the EXIF block
/// itself (a decoder would first copy the whole file).
pub fn orientation(bytes: &[u8]) -> Orientation {
    super::exif_thumb::exif_orientation(bytes)
        .and_then(|v| Orientation::from_exif(v as u8))
        .unwrap_or(Orientation::NoTransforms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_jpeg_decodes_at_an_eighth() {
        let img = RgbImage::from_fn(1600, 800, |x, _| image::Rgb([(x / 7) as u8, 90, 30]));
        let mut bytes = Vec::new();
        img.write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Jpeg)
            .unwrap();
        let small = scaled_jpeg(Path::new("a.jpg"), &bytes, 150)
            .unwrap()
            .unwrap();
        assert_eq!(small.dimensions(), (200, 100));
        // Asking for more detail picks a finer scale.
        let finer = scaled_jpeg(Path::new("a.jpg"), &bytes, 500)
            .unwrap()
            .unwrap();
        assert_eq!(finer.dimensions(), (800, 400));
        // The colours survive the scaling.
        let p = small.get_pixel(100, 50).0;
        assert!((i32::from(p[1]) - 90).abs() <= 6, "{p:?}");
    }

    #[test]
    fn a_progressive_jpeg_gets_its_eighth_whatever_the_size_asked() {
        let img = RgbImage::from_fn(1600, 800, |x, _| image::Rgb([(x / 7) as u8, 90, 30]));
        let mut bytes = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut bytes, 85);
        enc.set_progressive(true);
        enc.encode(img.as_raw(), 1600, 800, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        assert!(crate::imagery::jpeg::is_progressive(&bytes));
        let small = scaled_jpeg(Path::new("a.jpg"), &bytes, 500)
            .unwrap()
            .unwrap();
        assert_eq!(small.dimensions(), (200, 100));
    }

    #[test]
    fn png_has_no_scaled_decode_and_garbage_is_an_error() {
        assert!(scaled_jpeg(Path::new("a.png"), b"\x89PNG\r\n\x1a\n", 10).is_none());
        let r = scaled_jpeg(Path::new("a.jpg"), &[0xFF, 0xD8, 0xFF, 0x00, 0x01], 10).unwrap();
        assert!(r.is_err());
    }
}
