//! An image's full-resolution pixels handed out top to bottom, a band of rows at a time, for
//! the tile pyramid. A baseline JPEG stored upright is decoded band by band on every core
//! (`jpeg::JpegBands`), so it is never whole in memory; anything else is decoded whole
//! (`decode::decode_bytes`, EXIF orientation applied) when its rows are asked for, and handed
//! out in bands of that. A JPEG whose data turns out damaged midway goes on from the same row
//! through the general decoder.

use std::path::{Path, PathBuf};

use image::RgbImage;
use image::metadata::Orientation;

use super::jpeg::JpegBands;
use super::{ImageError, ImageFormat, PixelBudget, decode, integrity, preview, probe_bytes};
use crate::geometry::ImageSize;

enum Source {
    Bands(Box<JpegBands>),
    /// Decoded whole when the rows are asked for.
    Whole,
    /// Decoded whole already (for its preview).
    Decoded(RgbImage),
}

/// An opened image, ready to give its rows.
pub struct Rows<'a> {
    path: PathBuf,
    bytes: &'a [u8],
    budget: PixelBudget,
    size: ImageSize,
    source: Source,
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Open `bytes` (the file at `path`) within the pixel budget: the header probed and the file's
/// completeness checked first, as for a whole decode.
pub fn open_rows<'a>(
    path: &Path,
    bytes: &'a [u8],
    budget: PixelBudget,
) -> Result<Rows<'a>, ImageError> {
    let probe = probe_bytes(path, bytes, budget)?;
    integrity::check_complete(path, bytes, probe.format)?;
    let upright = preview::orientation(bytes) == Orientation::NoTransforms;
    let bands = if probe.format == ImageFormat::Jpeg && upright {
        match JpegBands::open(bytes, threads()) {
            Ok(bands) => Some(bands),
            Err(e) => {
                tracing::debug!("{}: {e}; decoding whole", path.display());
                None
            }
        }
    } else {
        None
    };
    let (source, size) = match bands {
        Some(b) => {
            let size = ImageSize::new(b.width() as u32, b.height() as u32);
            (Source::Bands(Box::new(b)), size)
        }
        None => (Source::Whole, probe.size),
    };
    Ok(Rows {
        path: path.to_owned(),
        bytes,
        budget,
        size,
        source,
    })
}

impl Rows<'_> {
    /// The size of the pixels given (upright).
    pub fn size(&self) -> ImageSize {
        self.size
    }

    /// Whether the rows are decoded band by band (else the image is decoded whole).
    pub fn banded(&self) -> bool {
        matches!(self.source, Source::Bands(_))
    }

    /// The eighth-scale picture opening computed on the way (a banded JPEG without restart
    /// markers), as stored (upright: banded files are).
    pub fn eighth(&self) -> Option<&RgbImage> {
        match &self.source {
            Source::Bands(b) => b.eighth(),
            Source::Whole | Source::Decoded(_) => None,
        }
    }

    /// For a file decoded whole: decode it now and give a preview of it, halved (as the
    /// pyramid's levels are) until its longest side is at most `max_side`, so the first
    /// pixels do not wait for the pyramid. `None` for a banded file.
    pub fn whole_preview(&mut self, max_side: u32) -> Result<Option<RgbImage>, ImageError> {
        if !matches!(self.source, Source::Whole) {
            return Ok(None);
        }
        let img = self.decode_whole()?;
        let mut preview: Option<RgbImage> = None;
        loop {
            let current = preview.as_ref().unwrap_or(&img);
            if current.width().max(current.height()) <= max_side {
                break;
            }
            preview = Some(super::pyramid::reduce_half(current));
        }
        let preview = preview.unwrap_or_else(|| img.clone());
        self.source = Source::Decoded(img);
        Ok(Some(preview))
    }

    /// Give every row, top to bottom, in bands of `band` rows (the last one shorter) to `take`
    /// as RGB bytes, a row count, and whether the band decoder gave them (so the original can
    /// give those rows again, band by band, without the general decoder); `take` returns
    /// `false` to stop. `Ok(false)` when it stopped.
    pub fn each_band(
        &mut self,
        band: u32,
        mut take: impl FnMut(&[u8], u32, bool) -> bool + Send,
    ) -> Result<bool, ImageError> {
        let band = band.max(1);
        let height = self.size.height;
        let bands = match std::mem::replace(&mut self.source, Source::Whole) {
            Source::Whole => {
                let img = self.decode_whole()?;
                return Ok(give(&img, 0, band, &mut |d, n| take(d, n, false)));
            }
            Source::Decoded(img) => return Ok(give(&img, 0, band, &mut |d, n| take(d, n, false))),
            Source::Bands(bands) => bands,
        };
        // The next band is decoded while the one before is taken (tiles cut, encoded and
        // written), both on rayon's threads: the two phases fill each other's idle moments.
        let decode = |start: u32, buffer: &mut Vec<u8>| {
            let end = (start + band).min(height);
            bands.rows_into(start as usize..end as usize, threads(), buffer)
        };
        let (mut current, mut next) = (Vec::new(), Vec::new());
        let mut start = 0;
        let mut decoded = decode(0, &mut current);
        loop {
            let n = match decoded {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(
                        "{}: {e} at row {start}; decoding the rest by the general path",
                        self.path.display()
                    );
                    drop(bands);
                    let img = self.decode_whole()?;
                    return Ok(give(&img, start, band, &mut |d, n| take(d, n, false)));
                }
            };
            let following = start + band;
            if following >= height {
                let kept = take(&current, n, true);
                // Kept open, for whoever serves these rows next (see `into_bands`).
                self.source = Source::Bands(bands);
                return Ok(kept);
            }
            let kept;
            (kept, decoded) =
                rayon::join(|| take(&current, n, true), || decode(following, &mut next));
            if !kept {
                return Ok(false);
            }
            std::mem::swap(&mut current, &mut next);
            start = following;
        }
    }

    /// The band decoder, when every band came from it: the tile service keeps it to serve
    /// the full-resolution rows again without opening the file a second time.
    pub fn into_bands(self) -> Option<Box<JpegBands>> {
        match self.source {
            Source::Bands(b) => Some(b),
            _ => None,
        }
    }

    /// The whole image by the general decoder, which must agree with the size given out.
    fn decode_whole(&self) -> Result<RgbImage, ImageError> {
        let img = decode::decode_bytes(&self.path, self.bytes, self.budget)?.into_rgb8();
        if img.dimensions() != (self.size.width, self.size.height) {
            return Err(ImageError::Corrupt {
                path: self.path.clone(),
                reason: format!(
                    "decoded {}x{}, the header says {}",
                    img.width(),
                    img.height(),
                    self.size
                ),
            });
        }
        Ok(img)
    }
}

/// Hand out `img`'s rows from `start` on in bands.
fn give(img: &RgbImage, start: u32, band: u32, take: &mut impl FnMut(&[u8], u32) -> bool) -> bool {
    let stride = img.width() as usize * 3;
    let from = start as usize * stride;
    img.as_raw()
        .get(from..)
        .unwrap_or_default()
        .chunks(band as usize * stride.max(1))
        .all(|chunk| take(chunk, (chunk.len() / stride.max(1)) as u32))
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn photo(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 5) as u8, ((x ^ y) * 3) as u8])
        })
    }

    fn gather(mut rows: Rows, band: u32) -> (RgbImage, Vec<u32>) {
        let size = rows.size();
        let mut data = Vec::new();
        let mut counts = Vec::new();
        assert!(
            rows.each_band(band, |d, n, _| {
                data.extend_from_slice(d);
                counts.push(n);
                true
            })
            .unwrap()
        );
        (
            RgbImage::from_raw(size.width, size.height, data).unwrap(),
            counts,
        )
    }

    #[test]
    fn a_jpeg_comes_in_bands_and_a_png_whole_both_all_rows_once() {
        let img = photo(700, 1100);
        let mut jpeg = Vec::new();
        img.write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .unwrap();
        let path = Path::new("photo.jpg");
        let rows = open_rows(path, &jpeg, PixelBudget::DEFAULT).unwrap();
        assert!(rows.banded());
        let (banded, counts) = gather(rows, 512);
        assert_eq!(counts, vec![512, 512, 76]);
        let whole = decode::decode_bytes(path, &jpeg, PixelBudget::DEFAULT)
            .unwrap()
            .into_rgb8();
        let diff: u64 = banded
            .as_raw()
            .iter()
            .zip(whole.as_raw())
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        assert!((diff as f64 / whole.as_raw().len() as f64) < 1.0, "{diff}");
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let rows = open_rows(Path::new("photo.png"), &png, PixelBudget::DEFAULT).unwrap();
        assert!(!rows.banded());
        let (got, counts) = gather(rows, 512);
        assert_eq!(counts, vec![512, 512, 76]);
        assert_eq!(got, img);
        // A whole-decoded file gives its preview first (halved as the pyramid's levels are),
        // then the same rows.
        let mut rows = open_rows(Path::new("photo.png"), &png, PixelBudget::DEFAULT).unwrap();
        let preview = rows.whole_preview(512).unwrap().unwrap();
        let want =
            crate::imagery::pyramid::reduce_half(&crate::imagery::pyramid::reduce_half(&img));
        assert_eq!(preview, want);
        assert_eq!(gather(rows, 512).0, img);
        let mut banded = open_rows(path, &jpeg, PixelBudget::DEFAULT).unwrap();
        assert!(banded.whole_preview(512).unwrap().is_none());
    }

    #[test]
    fn a_band_that_breaks_midway_goes_on_through_the_general_decoder_from_that_row() {
        // Restart markers: opening reads no entropy data, so damage late in the scan is met
        // only by the band that holds it. 24 one bits (stuffed 0xFF bytes) are no Huffman code.
        let img = photo(640, 1600);
        let mut jpeg = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, 90);
        enc.set_restart_interval(4);
        enc.encode(img.as_raw(), 640, 1600, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let mut at = jpeg.len() * 3 / 4;
        while jpeg[at - 1] == 0xFF || jpeg[at..at + 8].contains(&0xFF) {
            at += 1;
        }
        jpeg[at..at + 6].copy_from_slice(&[0xFF, 0x00, 0xFF, 0x00, 0xFF, 0x00]);
        let path = Path::new("damaged.jpg");
        let mut rows = open_rows(path, &jpeg, PixelBudget::DEFAULT).unwrap();
        assert!(rows.banded());
        let bands = JpegBands::open(&jpeg, 1).unwrap();
        assert!(bands.rows(0..512, 1).is_ok());
        assert!(
            bands.rows(1024..1536, 1).is_err(),
            "the damage is in the third band"
        );
        let mut given = Vec::new();
        let outcome = rows.each_band(512, |d, n, banded| {
            given.push((d.len(), n, banded));
            true
        });
        match outcome {
            // The general decoder took it from row 1024: every row was given once.
            Ok(finished) => {
                assert!(finished);
                assert_eq!(given.iter().map(|g| g.1).sum::<u32>(), 1600);
                assert!(given.iter().all(|&(len, n, _)| len == n as usize * 640 * 3));
                // The first two bands came from the band decoder, the rest did not.
                let banded: Vec<bool> = given.iter().map(|g| g.2).collect();
                assert_eq!(banded, vec![true, true, false, false]);
            }
            // Or it refused the damage too: a clear error, after the good bands.
            Err(e) => {
                assert!(matches!(e, ImageError::Corrupt { .. }), "{e}");
                assert_eq!(given.len(), 2);
            }
        }
    }

    #[test]
    fn a_bomb_is_refused_before_any_decoding_and_a_stop_is_reported() {
        let img = photo(300, 300);
        let mut jpeg = Vec::new();
        img.write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg)
            .unwrap();
        let small = PixelBudget(50_000);
        assert!(matches!(
            open_rows(Path::new("a.jpg"), &jpeg, small),
            Err(ImageError::TooLarge { .. })
        ));
        let mut rows = open_rows(Path::new("a.jpg"), &jpeg, PixelBudget::DEFAULT).unwrap();
        assert!(!rows.each_band(100, |_, _, _| false).unwrap());
    }
}
