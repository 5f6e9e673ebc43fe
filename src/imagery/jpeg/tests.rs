use std::io::Cursor;

use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use super::*;

/// A picture with smooth areas, edges and noise, so blocks carry many AC codes.
pub(super) fn picture(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        let noise = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 27;
        let r = ((x * 255 / w.max(1)) as u8).wrapping_add(noise as u8);
        let g = if (x / 37 + y / 23) % 2 == 0 { 200 } else { 40 };
        let b = ((y * 255 / h.max(1)) as u8) ^ (noise as u8);
        image::Rgb([r, g, b])
    })
}

pub(super) struct Options {
    pub sampling: SamplingFactor,
    pub progressive: bool,
    pub restart: u16,
    pub grey: bool,
}

pub(super) fn encode(img: &image::RgbImage, o: &Options) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out, 85);
    enc.set_sampling_factor(o.sampling);
    enc.set_progressive(o.progressive);
    if o.restart > 0 {
        enc.set_restart_interval(o.restart);
    }
    let (w, h) = (img.width() as u16, img.height() as u16);
    if o.grey {
        let grey = image::DynamicImage::ImageRgb8(img.clone()).to_luma8();
        enc.encode(grey.as_raw(), w, h, ColorType::Luma).unwrap();
    } else {
        enc.encode(img.as_raw(), w, h, ColorType::Rgb).unwrap();
    }
    out
}

/// jpeg-decoder's own 1/8-scale decode, as RGB.
fn reference(bytes: &[u8]) -> image::RgbImage {
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    d.read_info().unwrap();
    let info = d.info().unwrap();
    let (w, h) = d
        .scale(info.width.div_ceil(8), info.height.div_ceil(8))
        .unwrap();
    let px = d.decode().unwrap();
    let (w, h) = (u32::from(w), u32::from(h));
    match d.info().unwrap().pixel_format {
        jpeg_decoder::PixelFormat::L8 => {
            image::DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, px).unwrap()).to_rgb8()
        }
        _ => image::RgbImage::from_raw(w, h, px).unwrap(),
    }
}

/// Mean absolute difference per channel, and how many channel values differ by more than
/// `far`.
pub(super) fn difference(a: &image::RgbImage, b: &image::RgbImage, far: u8) -> (f64, usize) {
    assert_eq!(a.dimensions(), b.dimensions());
    let (mut sum, mut n_far) = (0u64, 0usize);
    for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
        let d = x.abs_diff(*y);
        sum += u64::from(d);
        n_far += usize::from(d > far);
    }
    (sum as f64 / a.as_raw().len() as f64, n_far)
}

fn check(o: Options, w: u32, h: u32) {
    let bytes = encode(&picture(w, h), &o);
    let ours = decode_eighth(&bytes, 1).unwrap();
    assert_eq!(ours.dimensions(), (w.div_ceil(8), h.div_ceil(8)));
    let (mean, _) = difference(&ours, &reference(&bytes), 40);
    // Chroma is upsampled by nearest neighbour here and smoothly by the reference.
    assert!(mean < 4.0, "mean difference {mean}");
    for threads in [2, 3, 4, 7] {
        assert_eq!(
            decode_eighth(&bytes, threads).unwrap(),
            ours,
            "{threads} threads"
        );
    }
}

#[test]
fn baseline_in_every_common_sampling_matches_a_full_decoder() {
    for sampling in [
        SamplingFactor::F_1_1,
        SamplingFactor::F_2_1,
        SamplingFactor::F_2_2,
        SamplingFactor::F_1_2,
    ] {
        let o = Options {
            sampling,
            progressive: false,
            restart: 0,
            grey: false,
        };
        // Sizes that are no multiple of the MCU.
        check(o, 517, 389);
    }
}

#[test]
fn blocks_full_to_the_last_coefficient_have_no_end_code_and_are_read_right() {
    // Noise at quality 100: most blocks carry their 63rd coefficient, so no end-of-block code
    // follows and the next bits are the next block's DC code (which the AC table's runs of
    // several codes must never swallow).
    let noise = image::RgbImage::from_fn(256, 192, |x, y| {
        let v = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(2_246_822_519))
            .wrapping_mul(668_265_263);
        image::Rgb([(v >> 24) as u8, (v >> 16) as u8, (v >> 8) as u8])
    });
    let mut bytes = Vec::new();
    let mut enc = Encoder::new(&mut bytes, 100);
    enc.set_sampling_factor(SamplingFactor::F_1_1);
    enc.encode(noise.as_raw(), 256, 192, ColorType::Rgb)
        .unwrap();
    let ours = decode_eighth(&bytes, 1).unwrap();
    // 1x1 sampling: no chroma upsampling to differ in, only rounding (within 3 everywhere).
    let (mean, far) = difference(&ours, &reference(&bytes), 3);
    assert!(mean < 1.5 && far == 0, "mean {mean}, {far} values far off");
    assert_eq!(decode_eighth(&bytes, 2).unwrap(), ours);
}

#[test]
fn greyscale_progressive_and_restart_markers() {
    let grey = Options {
        sampling: SamplingFactor::F_1_1,
        progressive: false,
        restart: 0,
        grey: true,
    };
    check(grey, 333, 250);
    let progressive = Options {
        sampling: SamplingFactor::F_2_2,
        progressive: true,
        restart: 0,
        grey: false,
    };
    check(progressive, 640, 360);
    let restarts = Options {
        sampling: SamplingFactor::F_2_2,
        progressive: false,
        restart: 7,
        grey: false,
    };
    check(restarts, 600, 401);
    let both = Options {
        sampling: SamplingFactor::F_2_1,
        progressive: true,
        restart: 3,
        grey: false,
    };
    check(both, 300, 200);
}

#[test]
fn the_guessing_threads_give_the_exact_single_thread_result_on_a_large_picture() {
    let o = Options {
        sampling: SamplingFactor::F_2_2,
        progressive: false,
        restart: 0,
        grey: false,
    };
    let bytes = encode(&picture(2400, 1600), &o);
    let one = decode_eighth(&bytes, 1).unwrap();
    for threads in [2, 4, 16] {
        assert_eq!(decode_eighth(&bytes, threads).unwrap(), one);
    }
}

/// `n` copies of `bytes`, each with four bytes set to seeded random values.
pub(super) fn damaged_copies(bytes: &[u8], n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            let mut damaged = bytes.to_vec();
            for _ in 0..4 {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                let at = (state >> 33) as usize % damaged.len();
                damaged[at] = (state >> 20) as u8;
            }
            damaged
        })
        .collect()
}

/// The JPEG photographs in ../shared/fixtures with their bytes (none when it is not there).
pub(super) fn fixture_jpegs() -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("jpg"))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn real_photographs_when_the_fixtures_are_there() {
    for (path, bytes) in fixture_jpegs() {
        let ours = decode_eighth(&bytes, 2).unwrap();
        assert_eq!(ours, decode_eighth(&bytes, 1).unwrap());
        let (mean, _) = difference(&ours, &reference(&bytes), 40);
        assert!(mean < 4.0, "{}: mean difference {mean}", path.display());
    }
}

#[test]
fn cut_and_damaged_files_are_errors_never_panics() {
    let o = Options {
        sampling: SamplingFactor::F_2_2,
        progressive: false,
        restart: 0,
        grey: false,
    };
    let bytes = encode(&picture(400, 300), &o);
    // Cut in the middle of the scan.
    let cut = &bytes[..bytes.len() / 2];
    assert!(matches!(decode_eighth(cut, 2), Err(DcError::Corrupt(_))));
    assert!(decode_eighth(b"not a jpeg", 2).is_err());
    assert!(decode_eighth(&[0xFF, 0xD8, 0xFF, 0xD9], 2).is_err());
    // Damage bytes all over the file: an error or a picture, never a panic.
    for damaged in damaged_copies(&bytes, 300, 12_345) {
        for threads in [1, 2] {
            let _ = decode_eighth(&damaged, threads);
        }
    }
}

#[test]
fn twelve_bit_and_arithmetic_files_are_left_to_the_general_decoder() {
    let o = Options {
        sampling: SamplingFactor::F_1_1,
        progressive: false,
        restart: 0,
        grey: true,
    };
    let bytes = encode(&picture(64, 64), &o);
    let sof = bytes.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    let mut twelve = bytes.clone();
    twelve[sof + 4] = 12;
    assert!(matches!(
        decode_eighth(&twelve, 1),
        Err(DcError::Unsupported(_))
    ));
    let mut arithmetic = bytes.clone();
    arithmetic[sof + 1] = 0xC9;
    assert!(matches!(
        decode_eighth(&arithmetic, 1),
        Err(DcError::Unsupported(_))
    ));
}
