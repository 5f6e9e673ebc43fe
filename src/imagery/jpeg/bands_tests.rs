//! The band decoder against jpeg-decoder's full decode, band by band against all at once,
//! thread counts against each other, and damaged files.

use std::io::Cursor;

use jpeg_encoder::SamplingFactor;

use super::tests::{Options, difference, encode, picture};
use super::*;

/// jpeg-decoder's full-resolution decode, as RGB.
fn reference_full(bytes: &[u8]) -> image::RgbImage {
    let mut d = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    let px = d.decode().unwrap();
    let info = d.info().unwrap();
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => {
            image::DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, px).unwrap()).to_rgb8()
        }
        _ => image::RgbImage::from_raw(w, h, px).unwrap(),
    }
}

fn options(sampling: SamplingFactor, restart: u16, grey: bool) -> Options {
    Options {
        sampling,
        progressive: false,
        restart,
        grey,
    }
}

/// Decode in bands of `band` rows and stack them.
fn in_bands(bands: &JpegBands, band: usize, threads: usize) -> image::RgbImage {
    let (w, h) = (bands.width() as u32, bands.height() as u32);
    let mut out = image::RgbImage::new(w, h);
    for start in (0..bands.height()).step_by(band) {
        let part = bands.rows(start..start + band, threads).unwrap();
        image::imageops::replace(&mut out, &part, 0, start as i64);
    }
    out
}

fn check(o: Options, w: u32, h: u32) {
    let bytes = encode(&picture(w, h), &o);
    let bands = JpegBands::open(&bytes, 2).unwrap();
    // Without restart markers opening ran the DC pass: its eighth-scale picture is there.
    if o.restart == 0 {
        assert_eq!(bands.eighth(), Some(&decode_eighth(&bytes, 2).unwrap()));
    } else {
        assert!(bands.eighth().is_none());
    }
    assert_eq!((bands.width(), bands.height()), (w as usize, h as usize));
    let whole = bands.rows(0..h as usize, 2).unwrap();
    // The same integer transform family and the same chroma filter as the reference: the
    // two differ by rounding only.
    let (mean, far) = difference(&whole, &reference_full(&bytes), 6);
    assert!(mean < 0.6 && far == 0, "mean {mean}, {far} values far off");
    // Any banding and any thread count give the same pixels, byte for byte.
    for (band, threads) in [(16, 1), (40, 3), (512, 2), (7, 2)] {
        assert_eq!(in_bands(&bands, band, threads), whole, "bands of {band}");
    }
    assert_eq!(
        JpegBands::open(&bytes, 1)
            .unwrap()
            .rows(0..h as usize, 1)
            .unwrap(),
        whole
    );
}

#[test]
fn every_common_sampling_matches_a_full_decoder_in_any_banding() {
    for sampling in [
        SamplingFactor::F_1_1,
        SamplingFactor::F_2_1,
        SamplingFactor::F_2_2,
        SamplingFactor::F_1_2,
    ] {
        check(options(sampling, 0, false), 517, 389);
    }
}

#[test]
fn greyscale_and_restart_intervals_that_do_not_line_up_with_rows() {
    check(options(SamplingFactor::F_1_1, 0, true), 333, 250);
    // 600 px at 4:2:0 is 38 MCUs a row: intervals of 7 start mid-row.
    check(options(SamplingFactor::F_2_2, 7, false), 600, 401);
    check(options(SamplingFactor::F_2_1, 38, false), 600, 120);
    check(options(SamplingFactor::F_1_1, 1, true), 90, 70);
}

#[test]
fn a_large_picture_decodes_the_same_on_guessing_threads() {
    let bytes = encode(
        &picture(2400, 1600),
        &options(SamplingFactor::F_2_2, 0, false),
    );
    let one = JpegBands::open(&bytes, 1)
        .unwrap()
        .rows(500..1100, 1)
        .unwrap();
    for threads in [2, 5] {
        let bands = JpegBands::open(&bytes, threads).unwrap();
        assert_eq!(bands.rows(500..1100, threads).unwrap(), one);
    }
    let (mean, _) = difference(
        &one,
        &image::imageops::crop_imm(&reference_full(&bytes), 0, 500, 2400, 600).to_image(),
        6,
    );
    assert!(mean < 0.6, "mean {mean}");
}

#[test]
fn progressive_files_and_bad_bytes_are_named_never_a_panic() {
    let mut o = options(SamplingFactor::F_2_2, 0, false);
    o.progressive = true;
    let progressive = encode(&picture(200, 100), &o);
    assert!(matches!(
        JpegBands::open(&progressive, 2),
        Err(DcError::Unsupported(_))
    ));
    let bytes = encode(
        &picture(400, 300),
        &options(SamplingFactor::F_2_2, 0, false),
    );
    assert!(JpegBands::open(&bytes[..bytes.len() / 2], 2).is_err());
    assert!(JpegBands::open(b"not a jpeg", 2).is_err());
    for damaged in super::tests::damaged_copies(&bytes, 200, 99) {
        if let Ok(bands) = JpegBands::open(&damaged, 2) {
            let _ = bands.rows(0..bands.height(), 2);
            let _ = bands.rows(100..140, 1);
        }
    }
}

#[test]
fn real_photographs_when_the_fixtures_are_there() {
    for (path, bytes) in super::tests::fixture_jpegs() {
        match JpegBands::open(&bytes, 2) {
            Ok(bands) => {
                let ours = bands.rows(0..bands.height(), 2).unwrap();
                let (mean, _) = difference(&ours, &reference_full(&bytes), 6);
                assert!(mean < 0.6, "{}: mean difference {mean}", path.display());
            }
            Err(DcError::Unsupported(_)) => {}
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
}
