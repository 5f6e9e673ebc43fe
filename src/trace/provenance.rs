//! Where a step's image came from on the original: the sandbox's own record of crop calls
//! (already in the step when our sandbox ran it), else the crop boxes or slices in the code,
//! else template matching of the output against the original (a coarse search over zoom
//! factors on a small copy, refined on a larger one). Each found rectangle says how.

use std::path::Path;

use image::{GrayImage, imageops::FilterType};

use super::{Provenance, Step, Trace};

/// Crop boxes and 2-D slices with literal numbers in the code, as [x0, y0, x1, y1].
pub fn boxes_in_code(code: &str) -> Vec<[f64; 4]> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(".crop(") {
        rest = &rest[at + ".crop(".len()..];
        let inner: String = rest.chars().take_while(|c| *c != ')').collect();
        let nums = numbers(inner.trim_start_matches(['(', '[']));
        if let Ok(b) = <[f64; 4]>::try_from(nums) {
            out.push(b);
        }
    }
    // img[y0:y1, x0:x1]
    let mut rest = code;
    while let Some(at) = rest.find('[') {
        rest = &rest[at + 1..];
        let Some(end) = rest.find(']') else { break };
        let inner = &rest[..end];
        let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
        if parts.len() >= 2 {
            let span = |s: &str| -> Option<(f64, f64)> {
                let (a, b) = s.split_once(':')?;
                Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
            };
            if let (Some((y0, y1)), Some((x0, x1))) = (span(parts[0]), span(parts[1])) {
                out.push([x0, y0, x1, y1]);
            }
        }
    }
    out
}

fn numbers(s: &str) -> Vec<f64> {
    s.split(',')
        .map(str::trim)
        .take(5)
        .map_while(|t| t.trim_end_matches([')', ']']).parse::<f64>().ok())
        .collect()
}

/// A box sorted and clamped to the image, as PIL's crop of a box partly outside keeps it.
fn clamp_box(b: [f64; 4], width: f64, height: f64) -> [f64; 4] {
    let (x0, x1) = (
        b[0].min(b[2]).clamp(0.0, width),
        b[0].max(b[2]).clamp(0.0, width),
    );
    let (y0, y1) = (
        b[1].min(b[3]).clamp(0.0, height),
        b[1].max(b[3]).clamp(0.0, height),
    );
    [x0, y0, x1, y1]
}

/// Thyme's crop fix (sort, clamp, widen each side to 64 px by moving the far edge), so a box
/// read from code matches the crop that ran.
pub fn thyme_fix(b: [f64; 4], width: f64, height: f64) -> [f64; 4] {
    let (mut x0, mut x1) = (b[0].min(b[2]), b[0].max(b[2]));
    let (mut y0, mut y1) = (b[1].min(b[3]), b[1].max(b[3]));
    x0 = x0.clamp(0.0, width);
    x1 = x1.clamp(0.0, width);
    y0 = y0.clamp(0.0, height);
    y1 = y1.clamp(0.0, height);
    let widen = |a: f64, b: f64, limit: f64| {
        if b - a >= 64.0 || limit < 64.0 {
            (a, b)
        } else if a + 64.0 > limit {
            (limit - 64.0, limit)
        } else {
            (a, a + 64.0)
        }
    };
    let (x0, x1) = widen(x0, x1, width);
    let (y0, y1) = widen(y0, y1, height);
    [x0, y0, x1, y1]
}

/// A match of `output` in `original`: the rectangle in original pixels and a score
/// (normalised cross-correlation, 1 = exact).
pub fn template_match(original: &GrayImage, output: &GrayImage) -> Option<([f64; 4], f64)> {
    template_match_at(original, output, &[])
}

/// The same, also trying the zoom factors in `extra` (output size / region size) besides the
/// usual ones.
pub fn template_match_at(
    original: &GrayImage,
    output: &GrayImage,
    extra: &[f64],
) -> Option<([f64; 4], f64)> {
    let (ow, oh) = (f64::from(original.width()), f64::from(original.height()));
    let (tw, th) = (f64::from(output.width()), f64::from(output.height()));
    if tw < 4.0 || th < 4.0 {
        return None;
    }
    let small = |img: &GrayImage, side: f64| -> (GrayImage, f64) {
        let f = (side / ow.max(oh)).min(1.0);
        let w = ((f64::from(img.width()) * f).round() as u32).max(1);
        let h = ((f64::from(img.height()) * f).round() as u32).max(1);
        (
            image::DynamicImage::ImageLuma8(img.clone())
                .resize_exact(w, h, FilterType::Triangle)
                .into_luma8(),
            f,
        )
    };
    let (coarse, fc) = small(original, 160.0);
    let mut best: Option<(f64, f64, f64, f64)> = None; // (score, zoom, x, y) at coarse scale
    let zooms = [1.0, 1.5, 2.0, 3.0, 4.0, 0.5, 0.25]
        .into_iter()
        .chain(extra.iter().copied().filter(|z| z.is_finite() && *z > 0.0));
    for zoom in zooms {
        let (cw, ch) = (tw / zoom, th / zoom);
        if cw > ow || ch > oh {
            continue;
        }
        let (w, h) = ((cw * fc).round() as u32, (ch * fc).round() as u32);
        if w < 4 || h < 4 || w > coarse.width() || h > coarse.height() {
            continue;
        }
        let t = image::DynamicImage::ImageLuma8(output.clone())
            .resize_exact(w, h, FilterType::Triangle)
            .into_luma8();
        if let Some((score, x, y)) = best_ncc(&coarse, &t, None)
            && best.is_none_or(|b| score > b.0)
        {
            best = Some((score, zoom, f64::from(x), f64::from(y)));
        }
    }
    let (_, zoom, cx, cy) = best?;
    // Refine on a larger copy, in a window around the coarse hit.
    let (fine, ff) = small(original, 640.0);
    let (cw, ch) = (tw / zoom, th / zoom);
    let (w, h) = ((cw * ff).round() as u32, (ch * ff).round() as u32);
    if w < 4 || h < 4 || w > fine.width() || h > fine.height() {
        return None;
    }
    let t = image::DynamicImage::ImageLuma8(output.clone())
        .resize_exact(w, h, FilterType::Triangle)
        .into_luma8();
    let ratio = ff / fc;
    let centre = ((cx * ratio) as i64, (cy * ratio) as i64);
    let radius = (ratio.ceil() as i64) * 2 + 2;
    let (score, x, y) = best_ncc(&fine, &t, Some((centre, radius)))?;
    let x0 = f64::from(x) / ff;
    let y0 = f64::from(y) / ff;
    Some(([x0, y0, (x0 + cw).min(ow), (y0 + ch).min(oh)], score))
}

/// The best normalised cross-correlation of `t` over `img` (or a window of it).
fn best_ncc(
    img: &GrayImage,
    t: &GrayImage,
    window: Option<((i64, i64), i64)>,
) -> Option<(f64, u32, u32)> {
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    let (tw, th) = (t.width() as i64, t.height() as i64);
    if tw > iw || th > ih {
        return None;
    }
    let tv: Vec<f64> = t.as_raw().iter().map(|v| f64::from(*v)).collect();
    let n = tv.len() as f64;
    let tmean = tv.iter().sum::<f64>() / n;
    let tdev: Vec<f64> = tv.iter().map(|v| v - tmean).collect();
    let tnorm = tdev.iter().map(|v| v * v).sum::<f64>().sqrt();
    let data = img.as_raw();
    let (xr, yr) = match window {
        Some(((cx, cy), r)) => (
            ((cx - r).max(0), (cx + r).min(iw - tw)),
            ((cy - r).max(0), (cy + r).min(ih - th)),
        ),
        None => ((0, iw - tw), (0, ih - th)),
    };
    let mut best: Option<(f64, u32, u32)> = None;
    for y in yr.0..=yr.1 {
        for x in xr.0..=xr.1 {
            let mut sum = 0.0;
            let mut sq = 0.0;
            let mut cross = 0.0;
            for j in 0..th {
                let row = ((y + j) * iw + x) as usize;
                let trow = (j * tw) as usize;
                for i in 0..tw as usize {
                    let v = f64::from(data[row + i]);
                    sum += v;
                    sq += v * v;
                    cross += v * tdev[trow + i];
                }
            }
            let var = (sq - sum * sum / n).max(0.0);
            let denom = var.sqrt() * tnorm;
            let score = if denom < 1e-9 { 0.0 } else { cross / denom };
            if best.is_none_or(|b| score > b.0) {
                best = Some((score, x as u32, y as u32));
            }
        }
    }
    best
}

/// Where Chain-of-Focus' V* evaluation (`eval/vstar/vllm_inference.py`, defaults) cropped, on
/// an original of `width` x `height`: the model saw the original resized by `smart_resize`
/// (sides multiples of 28, at least 112x112 and at most 3840x3840 pixels in all), gave
/// `bbox_2d` in that image's pixels, and the script enlarged the box 1.5x about its centre,
/// clipped it to the image and cut its corners to whole pixels. A box it refused (not four
/// numbers, outside the image, empty) made it crop nothing: the whole image went back.
pub fn chain_of_focus_rect(bbox: Option<[f64; 4]>, width: f64, height: f64) -> Option<[f64; 4]> {
    use crate::geometry::ImageSize;
    const ENLARGE: f64 = 1.5;
    let size = ImageSize::new(width as u32, height as u32);
    let seen = crate::imagery::model_eye::smart_resize_by(size, 28, 112 * 112, 3840 * 3840).ok()?;
    let (sw, sh) = (f64::from(seen.width), f64::from(seen.height));
    let whole = [0.0, 0.0, width, height];
    let Some([x0, y0, x1, y1]) = bbox else {
        return Some(whole);
    };
    let inside = (0.0..sw).contains(&x0)
        && (0.0..sh).contains(&y0)
        && x1 > 0.0
        && x1 <= sw
        && y1 > 0.0
        && y1 <= sh;
    if !inside || x1 <= x0 || y1 <= y0 {
        return Some(whole);
    }
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let (bw, bh) = ((x1 - x0) * ENLARGE, (y1 - y0) * ENLARGE);
    let cut = [
        (cx - bw / 2.0).max(0.0).trunc(),
        (cy - bh / 2.0).max(0.0).trunc(),
        (cx + bw / 2.0).min(sw).trunc(),
        (cy + bh / 2.0).min(sh).trunc(),
    ];
    let (fx, fy) = (width / sw, height / sh);
    Some([cut[0] * fx, cut[1] * fy, cut[2] * fx, cut[3] * fy])
}

/// Where Pixel Reasoner's `crop_image_normalized` cut (`curiosity_driven_rl/.../
/// experience_maker.py`), on the original: `bbox_2d` is in 0-1 of the target image when all
/// four numbers are below 1, else in that image's pixels (as the model was given it); the tool
/// pads it by 0.1 of the image on each side, clamps it to 0-1 and crops at those fractions of
/// the image's pixels (Pillow rounds them, half to even). A cut of 28 pixels or less on a side
/// fails. `source` is the target image's rectangle on the original and `seen` its size in
/// pixels as the tool held it.
pub fn pixel_reasoner_rect(
    bbox: [f64; 4],
    source: [f64; 4],
    seen: (f64, f64),
) -> Result<[f64; 4], String> {
    const PAD: f64 = 0.1;
    let (sw, sh) = seen;
    if sw <= 0.0 || sh <= 0.0 {
        return Err("the target image has no size".into());
    }
    let norm = if bbox.iter().all(|v| *v < 1.0) {
        bbox
    } else {
        [bbox[0] / sw, bbox[1] / sh, bbox[2] / sw, bbox[3] / sh]
    };
    let n = [
        (norm[0] - PAD).clamp(0.0, 1.0),
        (norm[1] - PAD).clamp(0.0, 1.0),
        (norm[2] + PAD).clamp(0.0, 1.0),
        (norm[3] + PAD).clamp(0.0, 1.0),
    ];
    let px = [
        (n[0] * sw).round_ties_even(),
        (n[1] * sh).round_ties_even(),
        (n[2] * sw).round_ties_even(),
        (n[3] * sh).round_ties_even(),
    ];
    let (w, h) = (px[2] - px[0], px[3] - px[1]);
    if w <= 28.0 || h <= 28.0 {
        return Err(format!("Cropped image is too small: {w}x{h}"));
    }
    let (fx, fy) = ((source[2] - source[0]) / sw, (source[3] - source[1]) / sh);
    Ok([
        source[0] + px[0] * fx,
        source[1] + px[1] * fy,
        source[0] + px[2] * fx,
        source[1] + px[3] * fy,
    ])
}

/// Give every output image without a rectangle one: from the code when the code crops the
/// original, else by template matching when the files can be read. Returns how many were
/// found.
pub fn fill(trace: &mut Trace) -> usize {
    let original_path = trace.run.images.first().and_then(|i| i.path.clone());
    let original_size = original_path.as_deref().and_then(|p| {
        crate::imagery::probe_file(p, crate::imagery::PixelBudget::DEFAULT)
            .ok()
            .map(|pr| (f64::from(pr.size.width), f64::from(pr.size.height)))
    });
    let mut original_gray: Option<Option<GrayImage>> = None;
    let mut found = 0;
    for step in &mut trace.steps {
        let Step::Execute {
            executed_code,
            raw_code,
            outputs,
            ..
        } = step
        else {
            continue;
        };
        let code = if executed_code.is_empty() {
            raw_code
        } else {
            executed_code
        };
        if trace.run.source_format == "chain-of-focus" {
            // Its tool call's box is in the resized frame: placed with the script's rules.
            let b = serde_json::from_str::<serde_json::Value>(code.trim())
                .ok()
                .and_then(|v| {
                    let a: Vec<f64> = v
                        .pointer("/arguments/bbox_2d")?
                        .as_array()?
                        .iter()
                        .map(serde_json::Value::as_f64)
                        .collect::<Option<_>>()?;
                    <[f64; 4]>::try_from(a).ok()
                });
            for out in outputs.iter_mut().filter(|o| o.source_rect.is_none()) {
                if let Some(rect) = original_size.and_then(|(w, h)| chain_of_focus_rect(b, w, h)) {
                    out.source_rect = Some(rect);
                    out.provenance = Some(Provenance::Tool);
                    found += 1;
                }
            }
            continue;
        }
        // Thyme's code opens `image_path`; PyVision's gets the original as `image_clue_0`.
        let pyvision = trace.run.source_format == "pyvision";
        let from_original = code.contains("image_path")
            || (pyvision && code.contains("image_clue_0"))
            || original_path
                .as_deref()
                .and_then(Path::file_name)
                .is_some_and(|n| code.contains(&*n.to_string_lossy()));
        let boxes = boxes_in_code(code);
        for out in outputs.iter_mut().filter(|o| o.source_rect.is_none()) {
            if let (true, [b], Some((w, h))) = (from_original, boxes.as_slice(), original_size) {
                // Only Thyme's sandbox widens boxes to 64 px; elsewhere the box is clamped.
                out.source_rect = Some(if pyvision {
                    clamp_box(*b, w, h)
                } else {
                    thyme_fix(*b, w, h)
                });
                out.provenance = Some(Provenance::Code);
                found += 1;
                continue;
            }
            let gray = original_gray.get_or_insert_with(|| {
                original_path
                    .as_deref()
                    .and_then(|p| image::open(p).ok())
                    .map(|i| i.into_luma8())
            });
            let (Some(orig), Some(path)) = (gray.as_ref(), out.image.path.as_deref()) else {
                continue;
            };
            let Ok(output) = image::open(path) else {
                continue;
            };
            if let Some((rect, score)) = template_match(orig, &output.into_luma8())
                && score >= 0.8
            {
                out.source_rect = Some(rect);
                out.provenance = Some(Provenance::TemplateMatch { score });
                found += 1;
            }
        }
    }
    if found > 0 {
        trace.summary = Some(super::lint::summarize(trace));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_boxes_and_slices_are_read_from_code() {
        let code = "img = Image.open(image_path)\nc = img.crop((1250, 1030, 1360, 1070))\na = arr[100:300, 200:500]\nb = x[1:2]";
        assert_eq!(
            boxes_in_code(code),
            vec![
                [1250.0, 1030.0, 1360.0, 1070.0],
                [200.0, 100.0, 500.0, 300.0]
            ]
        );
        assert_eq!(
            thyme_fix([1250.0, 1030.0, 1360.0, 1070.0], 2496.0, 1392.0),
            [1250.0, 1030.0, 1360.0, 1094.0]
        );
        assert_eq!(
            thyme_fix([10.0, 1380.0, 20.0, 1390.0], 2496.0, 1392.0),
            [10.0, 1328.0, 74.0, 1392.0]
        );
    }

    #[test]
    fn chain_of_focus_boxes_go_from_the_resized_frame_to_the_original() {
        // 2240x1680 is already a multiple of 28 on each side and under the pixel cap: the
        // model saw it as it is; the box grows 1.5x about its centre.
        assert_eq!(
            chain_of_focus_rect(Some([1000.0, 800.0, 1100.0, 900.0]), 2240.0, 1680.0),
            Some([975.0, 775.0, 1125.0, 925.0])
        );
        // Larger than 3840x3840 pixels: shrunk to 5152x2856 for the model; the box maps back.
        let r = chain_of_focus_rect(Some([100.0, 100.0, 200.0, 200.0]), 10304.0, 5712.0).unwrap();
        assert_eq!(r, [150.0, 150.0, 450.0, 450.0]);
        // Clipped at the edge, then cut to whole pixels.
        assert_eq!(
            chain_of_focus_rect(Some([0.0, 0.0, 10.0, 10.0]), 2240.0, 1680.0),
            Some([0.0, 0.0, 12.0, 12.0])
        );
        // A box the script refused: the whole image went back.
        for bad in [
            None,
            Some([50.0, 50.0, 40.0, 60.0]),
            Some([0.0, 0.0, 5000.0, 10.0]),
        ] {
            assert_eq!(
                chain_of_focus_rect(bad, 2240.0, 1680.0),
                Some([0.0, 0.0, 2240.0, 1680.0])
            );
        }
    }

    #[test]
    fn pixel_reasoner_boxes_are_padded_clamped_and_composed() {
        // 0-1 of a 2800x2100 original the tool held as it is: padded by 0.1 each side.
        let r = pixel_reasoner_rect(
            [0.4, 0.4, 0.5, 0.5],
            [0.0, 0.0, 2800.0, 2100.0],
            (2800.0, 2100.0),
        );
        assert_eq!(r, Ok([840.0, 630.0, 1680.0, 1260.0]));
        // Pixels of the seen image (a 1400x1050 view of the original), clamped at the edge.
        let r = pixel_reasoner_rect(
            [0.0, 0.0, 140.0, 105.0],
            [0.0, 0.0, 2800.0, 2100.0],
            (1400.0, 1050.0),
        );
        assert_eq!(r, Ok([0.0, 0.0, 560.0, 420.0]));
        // A crop of a crop: fractions of the crop, placed within the crop's rectangle.
        let r = pixel_reasoner_rect(
            [0.4, 0.4, 0.6, 0.6],
            [840.0, 630.0, 1680.0, 1260.0],
            (840.0, 616.0),
        );
        let r = r.unwrap();
        assert_eq!(r[0], 840.0 + 252.0);
        assert!(
            (r[3] - (630.0 + 431.0 * 630.0 / 616.0)).abs() < 1e-9,
            "{r:?}"
        );
        // Too small a cut fails as the tool's assert does.
        assert!(
            pixel_reasoner_rect(
                [0.5, 0.5, 0.5, 0.5],
                [0.0, 0.0, 100.0, 100.0],
                (100.0, 100.0)
            )
            .is_err()
        );
    }

    #[test]
    fn a_zoomed_crop_is_found_by_template_matching() {
        let original = GrayImage::from_fn(900, 600, |x, y| {
            let v = (x * 7 + y * 13) ^ (x * y / 37);
            image::Luma([(v % 251) as u8])
        });
        let crop = image::imageops::crop_imm(&original, 300, 200, 150, 100).to_image();
        let zoomed = image::DynamicImage::ImageLuma8(crop)
            .resize_exact(300, 200, FilterType::Triangle)
            .into_luma8();
        let (rect, score) = template_match(&original, &zoomed).unwrap();
        assert!(score > 0.9, "{score}");
        for (a, b) in rect.iter().zip([300.0, 200.0, 450.0, 300.0]) {
            assert!((a - b).abs() <= 3.0, "{rect:?}");
        }
    }
}
