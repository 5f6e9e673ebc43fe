//! Comparing a stored step image with the one its code or box makes from the original, and
//! naming the known rule that explains a difference.

use image::{DynamicImage, GenericImageView, imageops::FilterType};

use super::Verdict;
use crate::geometry::ImageSize;
use crate::trace::provenance::{boxes_in_code, template_match_at, thyme_fix};

/// PSNR (dB) at or above which two images of one size are the same picture (JPEG round trips
/// of a crop land around 35-45 dB; a different picture far below).
pub const SAME_DB: f64 = 30.0;
/// PSNR (dB) at or above which a resized copy shows the same region, resampled otherwise.
pub const RESAMPLED_DB: f64 = 22.0;

/// Rules that explain why a stored image differs from the code's literal reading.
pub const WIDENING: &str = "thyme-64px-widening";
pub const SMART_RESIZE: &str = "smart-resize";
pub const CLAMP: &str = "clamp";

/// Peak signal-to-noise ratio of two RGB images of one size (infinite when equal).
pub fn psnr(a: &DynamicImage, b: &DynamicImage) -> Option<f64> {
    if a.dimensions() != b.dimensions() {
        return None;
    }
    let (a, b) = (a.to_rgb8(), b.to_rgb8());
    let n = a.as_raw().len();
    if n == 0 {
        return None;
    }
    let sum: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| {
            let d = f64::from(*x) - f64::from(*y);
            d * d
        })
        .sum();
    let mse = sum / n as f64;
    Some(if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    })
}

/// What a comparison found.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub verdict: Verdict,
    pub psnr: Option<f64>,
    pub found_rect: Option<[f64; 4]>,
    pub detail: String,
}

fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let rect = |r: [f64; 4]| crate::geometry::ImageRect::new(r[0], r[1], r[2], r[3]);
    rect(a).iou(&rect(b))
}

/// Compare `stored` with `made` (what the code or box gives); `claimed` is where that is on
/// the original, `original` the original itself (to find where a stranger came from).
pub fn compare(
    stored: &DynamicImage,
    made: &DynamicImage,
    claimed: Option<[f64; 4]>,
    original: Option<&DynamicImage>,
) -> Found {
    let (sw, sh) = stored.dimensions();
    let (mw, mh) = made.dimensions();
    if (sw, sh) == (mw, mh)
        && let Some(db) = psnr(stored, made)
        && db >= SAME_DB
    {
        return Found {
            verdict: Verdict::Reproduced,
            psnr: Some(db),
            found_rect: None,
            detail: format!("{sw}x{sh}, {}", db_text(db)),
        };
    }
    // Aligned to the stored size: the same region resampled otherwise?
    let aligned = made.resize_exact(sw.max(1), sh.max(1), FilterType::Triangle);
    let db = psnr(stored, &aligned);
    if let Some(db) = db
        && db >= RESAMPLED_DB
    {
        return Found {
            verdict: Verdict::Resampled,
            psnr: Some(db),
            found_rect: None,
            detail: format!(
                "stored {sw}x{sh}, made {mw}x{mh}; {} after resizing to the stored size",
                db_text(db)
            ),
        };
    }
    // Where the stored image really is on the original.
    let found = original.and_then(|o| {
        let extra: Vec<f64> = claimed
            .map(|c| {
                let (cw, ch) = (c[2] - c[0], c[3] - c[1]);
                vec![f64::from(sw) / cw.max(1.0), f64::from(sh) / ch.max(1.0)]
            })
            .unwrap_or_default();
        template_match_at(&o.to_luma8(), &stored.to_luma8(), &extra)
    });
    match (found, claimed) {
        (Some((rect, score)), Some(c)) if score >= 0.8 && iou(rect, c) >= 0.6 => Found {
            verdict: Verdict::Resampled,
            psnr: db,
            found_rect: Some(rect),
            detail: format!(
                "stored {sw}x{sh}, made {mw}x{mh}; found on the original where the code says (score {score:.2}), its pixels processed otherwise ({})",
                db.map_or("-".into(), db_text)
            ),
        },
        (Some((rect, score)), _) if score >= 0.8 => Found {
            verdict: Verdict::DifferentRegion,
            psnr: db,
            found_rect: Some(rect),
            detail: format!(
                "the stored image is [{:.0}, {:.0}, {:.0}, {:.0}] of the original (score {score:.2}){}",
                rect[0],
                rect[1],
                rect[2],
                rect[3],
                claimed.map_or(String::new(), |c| format!(
                    ", not [{:.0}, {:.0}, {:.0}, {:.0}] as the code says",
                    c[0], c[1], c[2], c[3]
                ))
            ),
        },
        _ => Found {
            verdict: Verdict::DifferentRegion,
            psnr: db,
            found_rect: None,
            detail: format!(
                "stored {sw}x{sh}, made {mw}x{mh}; {} after resizing, and the stored image is not found on the original",
                db.map_or("-".into(), db_text)
            ),
        },
    }
}

fn db_text(db: f64) -> String {
    if db.is_finite() {
        format!("{db:.1} dB")
    } else {
        "identical".into()
    }
}

/// The known rules behind a stored image's size: Thyme's sandbox widening a small box to 64
/// px (`fixes` holds its `crop_box` fix, or the literal box widens to the stored size), a box
/// clamped to the image, and Qwen's `smart_resize` of the crop.
pub fn rules(
    code: &str,
    widened_by_sandbox: bool,
    original: Option<ImageSize>,
    stored: (u32, u32),
    made: (u32, u32),
) -> Vec<&'static str> {
    let mut out = Vec::new();
    let literal = match boxes_in_code(code).as_slice() {
        [b] => Some(*b),
        _ => None,
    };
    let size = |b: [f64; 4]| ((b[2] - b[0]).round() as i64, (b[3] - b[1]).round() as i64);
    if let (Some(b), Some(o)) = (literal, original) {
        let (w, h) = (f64::from(o.width), f64::from(o.height));
        let fixed = thyme_fix(b, w, h);
        let widened = size(fixed).0 > size(b).0 || size(fixed).1 > size(b).1;
        if widened_by_sandbox
            || (widened && size(fixed) == (i64::from(stored.0), i64::from(stored.1)))
        {
            out.push(WIDENING);
        }
        if b[0] < 0.0 || b[1] < 0.0 || b[2] > w || b[3] > h {
            out.push(CLAMP);
        }
    } else if widened_by_sandbox {
        out.push(WIDENING);
    }
    // Qwen's processor bounds (default and the common max_pixels settings), and Pixel
    // Reasoner's for crops it hands back (256 to 5120 patches in evaluation, 4 to 1000 in
    // training).
    let resized = [
        (3136, 12_845_056),
        (3136, 2_408_448),
        (3136, 1_003_520),
        (200_704, 4_014_080),
        (3136, 784_000),
    ]
    .into_iter()
    .any(|(lo, hi)| {
        crate::imagery::model_eye::smart_resize_by(ImageSize::new(made.0, made.1), 28, lo, hi)
            .is_ok_and(|s| (s.width, s.height) == stored && stored != made)
    });
    if resized {
        out.push(SMART_RESIZE);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn textured(w: u32, h: u32) -> DynamicImage {
        DynamicImage::ImageRgb8(RgbImage::from_fn(w, h, |x, y| {
            let v = (x * 7 + y * 13) ^ (x * y / 37);
            Rgb([
                (v % 251) as u8,
                ((v / 3) % 241) as u8,
                ((x + y) % 256) as u8,
            ])
        }))
    }

    #[test]
    fn a_same_picture_is_reproduced_a_resized_one_resampled_another_region_found() {
        let original = textured(900, 600);
        let crop = original.crop_imm(300, 200, 150, 100);
        let same = compare(
            &crop,
            &crop,
            Some([300.0, 200.0, 450.0, 300.0]),
            Some(&original),
        );
        assert_eq!(same.verdict, Verdict::Reproduced);
        assert_eq!(same.psnr, Some(f64::INFINITY));
        let bigger = crop.resize_exact(300, 200, FilterType::Triangle);
        let r = compare(
            &bigger,
            &crop,
            Some([300.0, 200.0, 450.0, 300.0]),
            Some(&original),
        );
        assert_eq!(r.verdict, Verdict::Resampled, "{r:?}");
        let elsewhere = original.crop_imm(600, 350, 150, 100);
        let d = compare(
            &elsewhere,
            &crop,
            Some([300.0, 200.0, 450.0, 300.0]),
            Some(&original),
        );
        assert_eq!(d.verdict, Verdict::DifferentRegion, "{d:?}");
        let f = d.found_rect.unwrap();
        for (a, b) in f.iter().zip([600.0, 350.0, 750.0, 450.0]) {
            assert!((a - b).abs() <= 3.0, "{f:?}");
        }
    }

    #[test]
    fn the_known_rules_are_named() {
        let size = Some(ImageSize::new(2000, 1500));
        // A 39x38 box the sandbox widened to 64x64.
        let code = "img.crop((100, 100, 139, 138))";
        assert_eq!(rules(code, true, size, (64, 64), (64, 64)), vec![WIDENING]);
        assert_eq!(rules(code, false, size, (64, 64), (39, 38)), vec![WIDENING]);
        // A box past the edge.
        assert_eq!(
            rules(
                "img.crop((1900, 100, 2100, 300))",
                false,
                size,
                (100, 200),
                (100, 200)
            ),
            vec![CLAMP]
        );
        // 150x100 resized for the model to 140x112 (multiples of 28)?
        let made = (150, 100);
        let seen = crate::imagery::model_eye::smart_resize_by(
            ImageSize::new(150, 100),
            28,
            3136,
            12_845_056,
        )
        .unwrap();
        assert_eq!(
            rules("x", false, size, (seen.width, seen.height), made),
            vec![SMART_RESIZE]
        );
        assert!(rules("img.crop((0, 0, 150, 100))", false, size, made, made).is_empty());
    }
}
