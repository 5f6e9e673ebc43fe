//! What a JPEG's EXIF block says that the canvas needs at once, read straight from the bytes:
//! the thumbnail a camera stores (IFD1), as the very first picture (a few kilobytes to decode
//! instead of megapixels), and the orientation (IFD0), without a decoder reading the file.

use std::io::Cursor;

use image::RgbImage;

/// The embedded EXIF thumbnail of a JPEG file, decoded; `None` when there is none (or it is
/// damaged: this is only ever a head start, never the picture of record).
pub fn exif_thumbnail(bytes: &[u8]) -> Option<RgbImage> {
    let tiff = Tiff::of_jpeg(bytes)?;
    let ifd0 = tiff.u32_at(4)? as usize;
    let entries0 = usize::from(tiff.u16_at(ifd0)?);
    let ifd1 = tiff.u32_at(ifd0 + 2 + entries0 * 12)? as usize;
    if ifd1 == 0 {
        return None;
    }
    let entries1 = usize::from(tiff.u16_at(ifd1)?);
    let (mut offset, mut length) = (None, None);
    for i in 0..entries1.min(64) {
        let e = ifd1 + 2 + i * 12;
        match tiff.u16_at(e)? {
            0x0201 => offset = Some(tiff.u32_at(e + 8)? as usize),
            0x0202 => length = Some(tiff.u32_at(e + 8)? as usize),
            _ => {}
        }
    }
    let (offset, length) = (offset?, length?);
    let jpeg = tiff.data.get(offset..offset.checked_add(length)?)?;
    let mut reader = image::ImageReader::with_format(Cursor::new(jpeg), image::ImageFormat::Jpeg);
    // A thumbnail is small; refuse anything that claims otherwise.
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(2048);
    limits.max_image_height = Some(2048);
    reader.limits(limits);
    reader.decode().ok().map(|i| i.to_rgb8())
}

/// The EXIF orientation of a JPEG file (1 to 8), `None` when it has none or it is damaged.
pub fn exif_orientation(bytes: &[u8]) -> Option<u16> {
    let tiff = Tiff::of_jpeg(bytes)?;
    let ifd0 = tiff.u32_at(4)? as usize;
    let entries = usize::from(tiff.u16_at(ifd0)?);
    (0..entries.min(256))
        .map(|i| ifd0 + 2 + i * 12)
        .find(|&e| tiff.u16_at(e) == Some(0x0112))
        .and_then(|e| tiff.u16_at(e + 8))
        .filter(|v| (1..=8).contains(v))
}

/// The TIFF structure of an EXIF block, read in its byte order.
struct Tiff<'a> {
    data: &'a [u8],
    big_endian: bool,
}

impl<'a> Tiff<'a> {
    fn of_jpeg(bytes: &'a [u8]) -> Option<Self> {
        let data = exif_tiff(bytes)?;
        let big_endian = match data.get(0..2)? {
            b"MM" => true,
            b"II" => false,
            _ => return None,
        };
        Some(Tiff { data, big_endian })
    }

    fn u16_at(&self, o: usize) -> Option<u16> {
        let b: [u8; 2] = self.data.get(o..o + 2)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32_at(&self, o: usize) -> Option<u32> {
        let b: [u8; 4] = self.data.get(o..o + 4)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
}

/// A copy of a JPEG file with an EXIF block that carries `thumbnail` (a small JPEG) in IFD1,
/// laid out as cameras write it (little-endian TIFF). Benchmarks and tests use it to make
/// camera-like files.
pub fn embed_thumbnail(main: &[u8], thumbnail: &[u8]) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes()); // IFD0 at 8
    tiff.extend_from_slice(&0u16.to_le_bytes()); // with no entries
    tiff.extend_from_slice(&14u32.to_le_bytes()); // IFD1 at 14
    tiff.extend_from_slice(&2u16.to_le_bytes());
    let data_at = 14 + 2 + 2 * 12 + 4;
    for (tag, value) in [
        (0x0201u16, data_at as u32),
        (0x0202, thumbnail.len() as u32),
    ] {
        tiff.extend_from_slice(&tag.to_le_bytes());
        tiff.extend_from_slice(&4u16.to_le_bytes()); // LONG
        tiff.extend_from_slice(&1u32.to_le_bytes());
        tiff.extend_from_slice(&value.to_le_bytes());
    }
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no IFD2
    tiff.extend_from_slice(thumbnail);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(main.get(2..).unwrap_or_default());
    out
}

/// The TIFF structure inside the first APP1 "Exif" segment.
fn exif_tiff(bytes: &[u8]) -> Option<&[u8]> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2;
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        // Start of scan or image data: no more metadata segments.
        if marker == 0xDA || marker == 0xD9 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        let body = bytes.get(i + 4..i + 2 + len)?;
        if marker == 0xE1 && body.starts_with(b"Exif\0\0") {
            return Some(&body[6..]);
        }
        i += 2 + len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32, c: [u8; 3]) -> Vec<u8> {
        let mut out = Vec::new();
        RgbImage::from_pixel(w, h, image::Rgb(c))
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Jpeg)
            .unwrap();
        out
    }

    #[test]
    fn finds_and_decodes_the_embedded_thumbnail() {
        let file = embed_thumbnail(
            &jpeg(640, 480, [10, 10, 10]),
            &jpeg(160, 120, [200, 30, 30]),
        );
        let t = exif_thumbnail(&file).unwrap();
        assert_eq!(t.dimensions(), (160, 120));
        assert!(t.get_pixel(80, 60).0[0] > 150);
        // The main image still decodes as the main image.
        let main = image::load_from_memory(&file).unwrap();
        assert_eq!((main.width(), main.height()), (640, 480));
    }

    #[test]
    fn no_exif_or_a_damaged_one_gives_none() {
        assert!(exif_thumbnail(&jpeg(64, 64, [0, 0, 0])).is_none());
        let mut file = embed_thumbnail(&jpeg(64, 64, [0, 0, 0]), &jpeg(16, 16, [9, 9, 9]));
        file[30] ^= 0xFF; // break the IFD1 offset
        let _ = exif_thumbnail(&file); // must not panic
        assert!(exif_thumbnail(b"\xFF\xD8\xFF\xE1\x00").is_none());
        assert!(exif_thumbnail(b"not a jpeg").is_none());
    }

    /// A JPEG with an EXIF block whose IFD0 holds only the orientation tag, in either byte
    /// order.
    fn with_orientation(main: &[u8], value: u16, big_endian: bool) -> Vec<u8> {
        let u16b = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u32b = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut tiff = if big_endian {
            b"MM\0*".to_vec()
        } else {
            b"II*\0".to_vec()
        };
        tiff.extend_from_slice(&u32b(8));
        tiff.extend_from_slice(&u16b(1));
        tiff.extend_from_slice(&u16b(0x0112));
        tiff.extend_from_slice(&u16b(3)); // SHORT
        tiff.extend_from_slice(&u32b(1));
        tiff.extend_from_slice(&u16b(value));
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&u32b(0)); // no IFD1
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&main[2..]);
        out
    }

    #[test]
    fn the_orientation_is_read_as_the_decoder_reads_it() {
        use image::ImageDecoder;
        let main = jpeg(40, 30, [50, 60, 70]);
        assert_eq!(exif_orientation(&main), None);
        for value in 1..=8u16 {
            for big_endian in [false, true] {
                let file = with_orientation(&main, value, big_endian);
                assert_eq!(exif_orientation(&file), Some(value));
                let mut reader = image::ImageReader::new(Cursor::new(&file))
                    .with_guessed_format()
                    .unwrap()
                    .into_decoder()
                    .unwrap();
                assert_eq!(
                    crate::imagery::preview::orientation(&file),
                    reader.orientation().unwrap(),
                    "orientation {value}"
                );
                assert_eq!(
                    crate::imagery::decode::orientation_swaps_axes(
                        &file,
                        crate::imagery::ImageFormat::Jpeg
                    ),
                    value >= 5
                );
            }
        }
        assert_eq!(exif_orientation(&with_orientation(&main, 0, false)), None);
        assert_eq!(exif_orientation(&with_orientation(&main, 9, true)), None);
    }

    #[test]
    fn the_frame_size_is_read_from_the_header_alone() {
        let file = embed_thumbnail(&jpeg(641, 479, [1, 2, 3]), &jpeg(16, 16, [9, 9, 9]));
        // The thumbnail's own frame header inside the EXIF block is not the main image's.
        assert_eq!(crate::imagery::jpeg::frame_size(&file), Some((641, 479)));
        assert_eq!(crate::imagery::jpeg::frame_size(&file[..40]), None);
        assert_eq!(crate::imagery::jpeg::frame_size(b"not a jpeg"), None);
    }
}
