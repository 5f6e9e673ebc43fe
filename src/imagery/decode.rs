//! Full decoding with limits and EXIF orientation applied.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, metadata::Orientation};

use super::{ImageError, ImageFormat, PixelBudget, integrity, probe_bytes};

/// Decode file bytes into pixels, upright (EXIF orientation applied), within the budget.
///
/// The header is probed and the budget checked before any pixel is decoded; the file's
/// completeness is checked before decoding too, so a truncated file is named as such.
pub fn decode_bytes(
    path: &Path,
    bytes: &[u8],
    budget: PixelBudget,
) -> Result<DynamicImage, ImageError> {
    let probe = probe_bytes(path, bytes, budget)?;
    integrity::check_complete(path, bytes, probe.format)?;
    let mut reader =
        image::ImageReader::with_format(Cursor::new(bytes), probe.format.to_image_crate());
    reader.limits(budget.decoder_limits());
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| map_error(path, e, budget))?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = match webp_pixels(path, bytes, probe.format)? {
        Some(image) => image,
        None => DynamicImage::from_decoder(decoder).map_err(|e| map_error(path, e, budget))?,
    };
    image.apply_orientation(orientation);
    Ok(image)
}

/// A still WebP through libwebp (faster than the `image` crate's decoder); `None` for other
/// formats and for what libwebp leaves to the general decoder (animations).
fn webp_pixels(
    path: &Path,
    bytes: &[u8],
    format: ImageFormat,
) -> Result<Option<DynamicImage>, ImageError> {
    use super::webp::{self, WebpError};
    if format != ImageFormat::WebP {
        return Ok(None);
    }
    let px = match webp::decode(bytes, None) {
        Ok(px) => px,
        Err(WebpError::Unsupported(what)) => {
            tracing::debug!("{}: {what}; decoding by the general path", path.display());
            return Ok(None);
        }
        Err(WebpError::Truncated) => {
            return Err(ImageError::Truncated {
                path: path.to_owned(),
                reason: WebpError::Truncated.to_string(),
            });
        }
        Err(WebpError::Corrupt(reason)) => {
            return Err(ImageError::Corrupt {
                path: path.to_owned(),
                reason,
            });
        }
    };
    let image = if px.has_alpha {
        image::RgbaImage::from_raw(px.width, px.height, px.data).map(DynamicImage::ImageRgba8)
    } else {
        image::RgbImage::from_raw(px.width, px.height, px.data).map(DynamicImage::ImageRgb8)
    };
    image.map(Some).ok_or_else(|| ImageError::Corrupt {
        path: path.to_owned(),
        reason: "libwebp returned a short buffer".into(),
    })
}

/// Read and decode a file.
pub fn decode_file(path: &Path, budget: PixelBudget) -> Result<DynamicImage, ImageError> {
    let bytes = std::fs::read(path).map_err(|source| ImageError::Io {
        path: path.to_owned(),
        source,
    })?;
    decode_bytes(path, &bytes, budget)
}

/// Does the file's EXIF orientation turn it by 90 degrees (so width and height swap)?
pub fn orientation_swaps_axes(bytes: &[u8], format: ImageFormat) -> bool {
    if format == ImageFormat::Jpeg {
        return matches!(super::exif_thumb::exif_orientation(bytes), Some(5..=8));
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format.to_image_crate());
    reader.limits(image::Limits::no_limits());
    let Ok(mut decoder) = reader.into_decoder() else {
        return false;
    };
    matches!(
        decoder.orientation(),
        Ok(Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH)
    )
}

fn map_error(path: &Path, e: image::ImageError, budget: PixelBudget) -> ImageError {
    match e {
        image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ImageError::Truncated {
                path: path.to_owned(),
                reason: io.to_string(),
            }
        }
        image::ImageError::Limits(l) => ImageError::Corrupt {
            path: path.to_owned(),
            reason: format!(
                "decoding needs more memory than the budget of {} megapixels allows ({l})",
                budget.0 / 1_000_000
            ),
        },
        other => ImageError::Corrupt {
            path: path.to_owned(),
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::ImageSize;

    fn encoded(w: u32, h: u32, format: image::ImageFormat) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
    }

    fn png_bytes(w: u32, h: u32) -> Vec<u8> {
        encoded(w, h, image::ImageFormat::Png)
    }

    fn jpeg_bytes(w: u32, h: u32) -> Vec<u8> {
        encoded(w, h, image::ImageFormat::Jpeg)
    }

    /// A small PNG file whose header claims `w` x `h` pixels: a decompression bomb's shape
    /// (a few bytes of compressed data that would inflate to `w * h * 3` bytes).
    fn png_bomb(w: u32, h: u32) -> Vec<u8> {
        fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
            let mut body = kind.to_vec();
            body.extend_from_slice(data);
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            out.extend_from_slice(&body);
            out.extend_from_slice(&crc32(&body).to_be_bytes());
        }
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&w.to_be_bytes());
        ihdr.extend_from_slice(&h.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        chunk(&mut out, b"IHDR", &ihdr);
        // zlib header + the start of a deflate stream of zeros.
        chunk(
            &mut out,
            b"IDAT",
            &[0x78, 0x9C, 0xED, 0xC1, 0x01, 0x0D, 0x00, 0x00],
        );
        chunk(&mut out, b"IEND", &[]);
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
            }
        }
        !crc
    }

    #[test]
    fn decodes_png_and_jpeg() {
        let p = Path::new("x");
        let img = decode_bytes(p, &png_bytes(30, 20), PixelBudget::DEFAULT).unwrap();
        assert_eq!((img.width(), img.height()), (30, 20));
        let img = decode_bytes(p, &jpeg_bytes(33, 17), PixelBudget::DEFAULT).unwrap();
        assert_eq!((img.width(), img.height()), (33, 17));
    }

    #[test]
    fn a_bomb_header_is_refused_before_decoding() {
        let bytes = png_bomb(100_000, 100_000);
        let err = probe_bytes(Path::new("bomb.png"), &bytes, PixelBudget::DEFAULT).unwrap_err();
        match err {
            ImageError::TooLarge { size, budget, .. } => {
                assert_eq!(size, ImageSize::new(100_000, 100_000));
                assert_eq!(budget, 1_000_000_000);
            }
            other => panic!("expected TooLarge, got {other}"),
        }
        let err = decode_bytes(Path::new("bomb.png"), &bytes, PixelBudget::DEFAULT).unwrap_err();
        assert!(matches!(err, ImageError::TooLarge { .. }));
        assert!(err.to_string().contains("bomb.png"));
    }

    #[test]
    fn the_budget_is_configurable() {
        let bytes = png_bytes(100, 100);
        assert!(probe_bytes(Path::new("a.png"), &bytes, PixelBudget(10_000)).is_ok());
        assert!(matches!(
            probe_bytes(Path::new("a.png"), &bytes, PixelBudget(9_999)),
            Err(ImageError::TooLarge { .. })
        ));
    }

    #[test]
    fn truncated_jpeg_and_png_are_named_truncated() {
        for (name, bytes) in [("t.jpg", jpeg_bytes(64, 64)), ("t.png", png_bytes(64, 64))] {
            let cut = &bytes[..bytes.len() * 2 / 3];
            let err = decode_bytes(Path::new(name), cut, PixelBudget::DEFAULT).unwrap_err();
            assert!(matches!(err, ImageError::Truncated { .. }), "{name}: {err}");
            assert!(err.to_string().starts_with(name));
        }
    }

    #[test]
    fn text_is_not_an_image() {
        let err = decode_bytes(
            Path::new("notes.jpg"),
            b"just some text",
            PixelBudget::DEFAULT,
        )
        .unwrap_err();
        assert!(matches!(err, ImageError::UnknownFormat { .. }));
    }

    #[test]
    fn garbage_after_a_valid_header_is_an_error_not_a_panic() {
        let mut bytes = jpeg_bytes(64, 64);
        let n = bytes.len();
        for b in &mut bytes[200..n - 2] {
            *b = 0x5A;
        }
        assert!(decode_bytes(Path::new("bad.jpg"), &bytes, PixelBudget::DEFAULT).is_err());
    }

    #[test]
    fn sixteen_bit_grey_png_decodes() {
        let img = image::ImageBuffer::<image::Luma<u16>, _>::from_fn(20, 10, |x, _| {
            image::Luma([x as u16 * 3000])
        });
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        let d = decode_bytes(Path::new("g16.png"), &out, PixelBudget::DEFAULT).unwrap();
        assert_eq!((d.width(), d.height()), (20, 10));
    }
    /// A JPEG with an EXIF APP1 segment whose orientation tag says `orientation`.
    fn jpeg_with_orientation(w: u32, h: u32, orientation: u16) -> Vec<u8> {
        let plain = jpeg_bytes(w, h);
        // TIFF header (big-endian), one IFD entry: 0x0112 SHORT 1 = orientation.
        let mut tiff = b"MM\0*".to_vec();
        tiff.extend_from_slice(&8u32.to_be_bytes());
        tiff.extend_from_slice(&1u16.to_be_bytes());
        tiff.extend_from_slice(&0x0112u16.to_be_bytes());
        tiff.extend_from_slice(&3u16.to_be_bytes());
        tiff.extend_from_slice(&1u32.to_be_bytes());
        tiff.extend_from_slice(&orientation.to_be_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&0u32.to_be_bytes());
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&plain[2..]);
        out
    }

    #[test]
    fn exif_orientation_is_applied_to_size_and_pixels() {
        let bytes = jpeg_with_orientation(64, 32, 6);
        let probe = probe_bytes(Path::new("r.jpg"), &bytes, PixelBudget::DEFAULT).unwrap();
        assert_eq!(probe.stored_size, ImageSize::new(64, 32));
        assert_eq!(probe.size, ImageSize::new(32, 64));
        let img = decode_bytes(Path::new("r.jpg"), &bytes, PixelBudget::DEFAULT).unwrap();
        assert_eq!((img.width(), img.height()), (32, 64));
        let upright = decode_bytes(
            Path::new("u.jpg"),
            &jpeg_with_orientation(64, 32, 1),
            PixelBudget::DEFAULT,
        )
        .unwrap();
        assert_eq!((upright.width(), upright.height()), (64, 32));
    }

    #[test]
    fn tiff_in_8_and_16_bit_grey_rgb_and_rgba_decodes() {
        fn tiff<P: image::Pixel>(img: image::ImageBuffer<P, Vec<P::Subpixel>>) -> Vec<u8>
        where
            image::DynamicImage: From<image::ImageBuffer<P, Vec<P::Subpixel>>>,
        {
            let mut out = Vec::new();
            image::DynamicImage::from(img)
                .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Tiff)
                .unwrap();
            out
        }
        let files = [
            tiff(image::GrayImage::from_fn(40, 30, |x, _| {
                image::Luma([x as u8])
            })),
            tiff(image::ImageBuffer::<image::Luma<u16>, _>::from_fn(
                40,
                30,
                |x, _| image::Luma([x as u16 * 1000]),
            )),
            tiff(image::RgbImage::from_fn(40, 30, |x, y| {
                image::Rgb([x as u8, y as u8, 0])
            })),
            tiff(image::ImageBuffer::<image::Rgb<u16>, _>::from_fn(
                40,
                30,
                |x, _| image::Rgb([x as u16 * 900, 0, 65535]),
            )),
            tiff(image::RgbaImage::from_fn(40, 30, |x, _| {
                image::Rgba([x as u8, 0, 0, 128])
            })),
        ];
        for (i, bytes) in files.iter().enumerate() {
            let img = decode_bytes(Path::new("t.tif"), bytes, PixelBudget::DEFAULT)
                .unwrap_or_else(|e| panic!("file {i}: {e}"));
            assert_eq!((img.width(), img.height()), (40, 30), "file {i}");
            let rgb = img.to_rgb8();
            assert!(
                rgb.get_pixel(39, 0).0[0] > rgb.get_pixel(0, 0).0[0],
                "file {i}"
            );
        }
    }
}
