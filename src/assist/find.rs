//! Box proposals from the VLM ("Find: <text>"): the image is cut into tiles at native
//! resolution, so a small object stays large enough for the model to see; each tile is asked
//! for grounding boxes, which Qwen2.5-VL writes as `bbox_2d` in the pixels of its resized
//! input (the processor's `smart_resize` of the tile); each is mapped back through that
//! resize to the original, and the duplicates that tile overlaps give are merged. Proposals
//! are for a person to accept or drop one by one.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use super::AssistError;
use super::window::Reader;
use crate::agent::{Policy, Request};
use crate::geometry::{ImageRect, ImageSize};
use crate::imagery::model_eye::smart_resize;

/// How the image is cut and what the model's processor does with each tile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FindSettings {
    /// The side of a tile in original pixels.
    pub tile: u32,
    /// How much neighbouring tiles share (a share of the side), so an object on a seam is
    /// whole in one of them.
    pub overlap: f64,
    /// The processor's pixel bounds (`min_pixels`, `max_pixels`).
    pub min_pixels: u64,
    pub max_pixels: u64,
}

impl Default for FindSettings {
    fn default() -> Self {
        Self {
            tile: 1344,
            overlap: 0.1,
            min_pixels: crate::imagery::model_eye::DEFAULT_MIN_PIXELS,
            max_pixels: crate::imagery::model_eye::DEFAULT_MAX_PIXELS,
        }
    }
}

/// One proposed box.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    pub rect: ImageRect,
    pub label: String,
    /// The tile it came from (in [`tiles`] order).
    pub tile: usize,
}

/// What a search found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Found {
    pub proposals: Vec<Proposal>,
    pub tiles: usize,
    /// Tiles whose answer held no boxes that could be read, named.
    pub problems: Vec<String>,
    /// Time inside the model.
    pub model_ms: f64,
}

/// The tiles covering `size`: `[x0, y0, x1, y1)`, row by row; neighbours share `overlap`.
pub fn tiles(size: ImageSize, tile: u32, overlap: f64) -> Vec<[u32; 4]> {
    let tile = tile.max(28);
    let step = ((f64::from(tile) * (1.0 - overlap.clamp(0.0, 0.5))) as u32).max(1);
    let starts = |len: u32| {
        let mut v = vec![0];
        while v.last().is_some_and(|&s| s + tile < len) {
            let next = (v.last().copied().unwrap_or(0) + step).min(len.saturating_sub(tile));
            if v.last() == Some(&next) {
                break;
            }
            v.push(next);
        }
        v
    };
    let mut out = Vec::new();
    for y in starts(size.height) {
        for x in starts(size.width) {
            out.push([
                x,
                y,
                (x + tile).min(size.width),
                (y + tile).min(size.height),
            ]);
        }
    }
    out
}

/// The question put to the model for one tile.
pub fn prompt(text: &str) -> String {
    format!(
        "<image>\nLocate every {text} in the image, and output the bounding box coordinates of each in JSON: [{{\"bbox_2d\": [x1, y1, x2, y2], \"label\": \"{text}\"}}]. Output [] if there is none."
    )
}

/// The boxes in a model's answer: a JSON list of `{"bbox_2d": [x1, y1, x2, y2], "label"}`
/// (a single object is taken too), inside code fences or prose.
pub fn parse_boxes(text: &str) -> Result<Vec<([f64; 4], String)>, String> {
    let start = text.find(['[', '{']);
    let end = text.rfind([']', '}']);
    let (Some(start), Some(end)) = (start, end) else {
        return Err(format!("no JSON in the answer: {}", snippet(text)));
    };
    if end < start {
        return Err(format!("no JSON in the answer: {}", snippet(text)));
    }
    let value: serde_json::Value = serde_json::from_str(&text[start..=end])
        .map_err(|e| format!("the answer's JSON does not parse ({e}): {}", snippet(text)))?;
    let items = match value {
        serde_json::Value::Array(v) => v,
        other => vec![other],
    };
    let mut out = Vec::new();
    for item in items {
        let Some(b) = item.get("bbox_2d").and_then(|b| b.as_array()) else {
            continue;
        };
        let nums: Vec<f64> = b.iter().filter_map(serde_json::Value::as_f64).collect();
        if let [x0, y0, x1, y1] = nums[..]
            && x1 > x0
            && y1 > y0
        {
            let label = item
                .get("label")
                .and_then(|l| l.as_str())
                .unwrap_or_default()
                .to_owned();
            out.push(([x0, y0, x1, y1], label));
        }
    }
    Ok(out)
}

fn snippet(text: &str) -> String {
    let s: String = text.chars().take(80).collect();
    s.replace('\n', " ")
}

/// A box in the pixels of the resized tile, on the original image (kept on the tile).
pub fn to_original(b: [f64; 4], tile: [u32; 4], resized: ImageSize) -> ImageRect {
    let (tw, th) = (f64::from(tile[2] - tile[0]), f64::from(tile[3] - tile[1]));
    let (sx, sy) = (
        tw / f64::from(resized.width),
        th / f64::from(resized.height),
    );
    let x = |v: f64| f64::from(tile[0]) + (v * sx).clamp(0.0, tw);
    let y = |v: f64| f64::from(tile[1]) + (v * sy).clamp(0.0, th);
    ImageRect::new(x(b[0]), y(b[1]), x(b[2]), y(b[3]))
}

/// Ask `policy` for `text` on every tile of the image at `path` (its bytes given); the tiles
/// are written as PNG files into `scratch` for the request. `on_tile(i, n)` is told before
/// tile `i` of `n` is asked.
#[allow(clippy::too_many_arguments)]
pub fn find(
    policy: &mut dyn Policy,
    path: &Path,
    bytes: &[u8],
    size: ImageSize,
    text: &str,
    settings: &FindSettings,
    scratch: &Path,
    cancel: &AtomicBool,
    on_tile: &mut dyn FnMut(usize, usize),
) -> Result<Found, AssistError> {
    let reader = Reader::open(path, bytes)?;
    let grid = tiles(size, settings.tile, settings.overlap);
    let mut found = Found {
        tiles: grid.len(),
        ..Found::default()
    };
    for (i, area) in grid.iter().enumerate() {
        on_tile(i, grid.len());
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            found
                .problems
                .push(format!("cancelled before tile {} of {}", i + 1, grid.len()));
            break;
        }
        let pixels = reader.area(path, *area)?;
        let tile_size = ImageSize::new(pixels.width(), pixels.height());
        let resized = match smart_resize(tile_size, settings.min_pixels, settings.max_pixels) {
            Ok(r) => r,
            Err(e) => {
                found.problems.push(format!("tile {}: {e}", i + 1));
                continue;
            }
        };
        let file = scratch.join(format!("tile-{i}.png"));
        pixels
            .save(&file)
            .map_err(|e| AssistError::Scratch(format!("{}: {e}", file.display())))?;
        let request = Request {
            system: String::new(),
            user: prompt(text),
            images: vec![file],
            assistant: String::new(),
            stop: Vec::new(),
            max_tokens: 1024,
            temperature: 0.0,
            seed: None,
        };
        let started = Instant::now();
        let answer = policy.generate(&request, &mut |_| {}, cancel);
        found.model_ms += started.elapsed().as_secs_f64() * 1000.0;
        let boxes = match answer {
            Ok(seg) => parse_boxes(&seg.text),
            Err(e) => Err(e.to_string()),
        };
        match boxes {
            Ok(boxes) => {
                for (b, label) in boxes {
                    let rect = to_original(b, *area, resized);
                    if rect.area() <= 0.0 {
                        continue;
                    }
                    // A seam's object found by two tiles is proposed once.
                    if found.proposals.iter().any(|p| p.rect.iou(&rect) > 0.5) {
                        continue;
                    }
                    found.proposals.push(Proposal {
                        rect,
                        label,
                        tile: i,
                    });
                }
            }
            Err(e) => found.problems.push(format!("tile {}: {e}", i + 1)),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_image_with_overlap_and_stay_on_it() {
        let size = ImageSize::new(3000, 2000);
        let t = tiles(size, 1000, 0.1);
        // Steps of 900: x at 0, 900, 1800, 2000 (the last kept on the image); y at 0, 900, 1000.
        assert_eq!(t.len(), 12);
        assert_eq!(t[0], [0, 0, 1000, 1000]);
        assert_eq!(t[3], [2000, 0, 3000, 1000]);
        assert_eq!(t[11], [2000, 1000, 3000, 2000]);
        assert_eq!(
            tiles(ImageSize::new(500, 400), 1344, 0.1),
            vec![[0, 0, 500, 400]]
        );
    }

    #[test]
    fn answers_are_read_in_fences_prose_or_alone_and_bad_ones_are_named() {
        let fenced = "Here:\n```json\n[{\"bbox_2d\": [1, 2, 30, 40], \"label\": \"sign\"}, {\"bbox_2d\": [5, 5, 5, 9]}]\n```";
        assert_eq!(
            parse_boxes(fenced).unwrap(),
            vec![([1.0, 2.0, 30.0, 40.0], "sign".to_owned())]
        );
        assert_eq!(parse_boxes("{\"bbox_2d\": [0, 0, 2, 2]}").unwrap().len(), 1);
        assert!(parse_boxes("[]").unwrap().is_empty());
        let e = parse_boxes("I cannot see any sign.").unwrap_err();
        assert!(e.contains("no JSON"), "{e}");
        let e = parse_boxes("[{\"bbox_2d\": [1, 2,]}]").unwrap_err();
        assert!(e.contains("does not parse"), "{e}");
        // Cut off before its end: nothing to read either.
        assert!(parse_boxes("[{\"bbox_2d\": [1, 2,").is_err());
    }

    #[test]
    fn a_box_in_the_resized_tile_maps_back_exactly() {
        // A 3000x2000 tile the processor resized to 1204x812.
        let r = to_original(
            [120.4, 81.2, 240.8, 162.4],
            [1000, 500, 4000, 2500],
            ImageSize::new(1204, 812),
        );
        let want = ImageRect::new(1300.0, 700.0, 1600.0, 900.0);
        for (a, b) in [
            (r.x0, want.x0),
            (r.y0, want.y0),
            (r.x1, want.x1),
            (r.y1, want.y1),
        ] {
            assert!((a - b).abs() < 1e-9, "{r:?}");
        }
    }
}
