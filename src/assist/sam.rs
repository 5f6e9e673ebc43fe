//! Click-to-box with Segment Anything (candle-transformers' SAM: the TinyViT "MobileSAM"
//! encoder by default, ViT-B when its weights are there) on a window of the *original* pixels
//! around the click, never on the downscaled whole image: on a 12000x8000 photo a 40 px sign
//! stays 40 px (SAM scales the window's longest side to 1024). The mask becomes a tight box;
//! a mask that touches the window's edge is tried once more on a window twice as wide. The
//! image embedding of each window is kept (the last few), so more clicks in the same area
//! cost only the prompt decoder.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::segment_anything::sam::{IMAGE_SIZE, Sam};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::AssistError;
use super::sam_decoder::MaskHead;
use super::window::Reader;
use crate::geometry::{ImageRect, ImageSize};

/// The weight files `load` looks for, in order of preference unless ViT-B is asked for
/// (the names under which they are published for candle: `lmz/candle-sam` on Hugging Face).
pub const TINY_FILE: &str = "mobile_sam-tiny-vitt.safetensors";
pub const VIT_B_FILE: &str = "sam_vit_b_01ec64.safetensors";
/// Our own small configurations (the test checkpoints): the encoder's width, depth, heads
/// and global-attention blocks, beside `sam.safetensors`.
pub const CUSTOM_CONFIG: &str = "thyme-sam.json";
pub const CUSTOM_FILE: &str = "sam.safetensors";

/// The shape of a ViT encoder (SAM's original family).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VitShape {
    pub embed_dim: usize,
    pub depth: usize,
    pub heads: usize,
    pub global_attn: Vec<usize>,
}

impl VitShape {
    pub fn vit_b() -> Self {
        Self {
            embed_dim: 768,
            depth: 12,
            heads: 12,
            global_attn: vec![2, 5, 8, 11],
        }
    }
}

/// Which image encoder a checkpoint holds.
enum Encoder {
    Vit(VitShape, String),
    Tiny,
}

/// Where a window's embedding came from.
#[derive(Debug, Clone)]
struct Cached {
    key: (PathBuf, [u32; 4]),
    embedding: Tensor,
    /// The window as SAM saw it (scaled so its longest side is 1024).
    scaled: (usize, usize),
}

/// A loaded SAM and its cache of window embeddings.
pub struct SamModel {
    sam: Sam,
    /// The prompt-to-mask step (ours: a fast upscaling; see `sam_decoder`).
    head: MaskHead,
    pub name: String,
    device: Device,
    cache: Vec<Cached>,
    /// Image encodings run (each costs the encoder; the decoder is cheap).
    pub encodes: usize,
}

/// A box SAM found, with what it cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SamBox {
    pub rect: ImageRect,
    /// The window it was found in `[x0, y0, x1, y1)`.
    pub window: [u32; 4],
    /// The model's own estimate of the mask's quality.
    pub iou: f32,
    /// Whether a second, wider window was needed.
    pub retried: bool,
    pub encoder_ms: f64,
    /// The decoder's time over all its runs (one, or two with a retry).
    pub decoder_ms: f64,
    pub decodes: usize,
    /// The mask's outline as line segments `[x0, y0, x1, y1]` on the image, for drawing.
    #[serde(skip)]
    pub outline: Vec<[f64; 4]>,
}

/// candle's message without the backtrace it carries when RUST_BACKTRACE is set.
fn first_line(e: &candle_core::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

fn model_err(e: candle_core::Error) -> AssistError {
    AssistError::Model(first_line(&e))
}

impl SamModel {
    /// Load SAM from `dir`: our own configuration when it is there, else ViT-B when `vit_b`
    /// asks for it (or no TinyViT file is there), else TinyViT.
    pub fn load(dir: &Path, vit_b: bool, device: &Device) -> Result<Self, AssistError> {
        let open = |file: &Path| -> Result<VarBuilder<'static>, AssistError> {
            if !file.is_file() {
                return Err(AssistError::Model(format!(
                    "{}: not found; SAM needs {TINY_FILE} (40 MB) or {VIT_B_FILE} (375 MB) from lmz/candle-sam on Hugging Face",
                    file.display()
                )));
            }
            // SAFETY: the file is mapped read-only and not changed while the model lives
            // (candle's own loader does the same).
            unsafe { VarBuilder::from_mmaped_safetensors(&[file], DType::F32, device) }
                .map_err(|e| AssistError::Model(format!("{}: {}", file.display(), first_line(&e))))
        };
        let custom = dir.join(CUSTOM_CONFIG);
        let (vb, name) = if custom.is_file() {
            let text = std::fs::read_to_string(&custom)
                .map_err(|e| AssistError::Model(format!("{}: {e}", custom.display())))?;
            let shape: VitShape = serde_json::from_str(&text)
                .map_err(|e| AssistError::Model(format!("{}: {e}", custom.display())))?;
            let name = format!("SAM ViT {}x{}", shape.embed_dim, shape.depth);
            (open(&dir.join(CUSTOM_FILE))?, Encoder::Vit(shape, name))
        } else if vit_b || !dir.join(TINY_FILE).is_file() {
            (
                open(&dir.join(VIT_B_FILE))?,
                Encoder::Vit(VitShape::vit_b(), "SAM ViT-B".to_owned()),
            )
        } else {
            (open(&dir.join(TINY_FILE))?, Encoder::Tiny)
        };
        let (sam, name) = match name {
            Encoder::Vit(s, name) => (
                Sam::new(s.embed_dim, s.depth, s.heads, &s.global_attn, vb.clone()),
                name,
            ),
            Encoder::Tiny => (Sam::new_tiny(vb.clone()), "MobileSAM (TinyViT)".to_owned()),
        };
        // Weights of the wrong shape are a one-line error naming the folder.
        let wrong = |e: candle_core::Error| {
            AssistError::Model(format!("{}: {}", dir.display(), first_line(&e)))
        };
        let sam = sam.map_err(wrong)?;
        let head = MaskHead::new(vb).map_err(wrong)?;
        Ok(Self {
            sam,
            head,
            name,
            device: device.clone(),
            cache: Vec::new(),
            encodes: 0,
        })
    }

    /// The embedding of `window` of the image at `path`, from the cache or the encoder.
    pub(crate) fn embedding(
        &mut self,
        reader: &Reader,
        path: &Path,
        window: [u32; 4],
    ) -> Result<(Tensor, (usize, usize), f64), AssistError> {
        let key = (path.to_owned(), window);
        if let Some(i) = self.cache.iter().position(|c| c.key == key) {
            let c = self.cache.remove(i);
            let out = (c.embedding.clone(), c.scaled, 0.0);
            self.cache.push(c);
            return Ok(out);
        }
        let started = std::time::Instant::now();
        let pixels = reader.area(path, window)?;
        let scaled = scale_to_sam(&pixels);
        let (w, h) = scaled.dimensions();
        let data = Tensor::from_vec(scaled.into_raw(), (h as usize, w as usize, 3), &self.device)
            .and_then(|t| t.permute((2, 0, 1)))
            .map_err(model_err)?;
        let embedding = self.sam.embeddings(&data).map_err(model_err)?;
        self.encodes += 1;
        self.cache.push(Cached {
            key,
            embedding: embedding.clone(),
            scaled: (h as usize, w as usize),
        });
        if self.cache.len() > 4 {
            self.cache.remove(0);
        }
        Ok((
            embedding,
            (h as usize, w as usize),
            started.elapsed().as_secs_f64() * 1000.0,
        ))
    }

    /// A cached window of this side whose central half holds `click`: a click near the last
    /// one reuses its embedding rather than encoding a window a few pixels over.
    fn reusable(
        &self,
        path: &Path,
        click: (f64, f64),
        side: u32,
        size: ImageSize,
    ) -> Option<[u32; 4]> {
        let (sw, sh) = (side.min(size.width), side.min(size.height));
        self.cache
            .iter()
            .rev()
            .filter(|c| c.key.0 == path)
            .map(|c| c.key.1)
            .find(|&[x0, y0, x1, y1]| {
                let (w, h) = (f64::from(x1 - x0), f64::from(y1 - y0));
                x1 - x0 == sw
                    && y1 - y0 == sh
                    && click.0 >= f64::from(x0) + w / 4.0
                    && click.0 <= f64::from(x1) - w / 4.0
                    && click.1 >= f64::from(y0) + h / 4.0
                    && click.1 <= f64::from(y1) - h / 4.0
            })
    }

    /// The box of the object at `click` (image pixels), with `negatives` to leave out, found
    /// in a square window of `side` pixels around the click (kept on the image).
    pub fn box_at(
        &mut self,
        reader: &Reader,
        path: &Path,
        size: ImageSize,
        click: (f64, f64),
        negatives: &[(f64, f64)],
        side: u32,
    ) -> Result<SamBox, AssistError> {
        let (cx, cy) = click;
        if !(cx >= 0.0 && cy >= 0.0 && cx < f64::from(size.width) && cy < f64::from(size.height)) {
            return Err(AssistError::Outside(
                format!("{cx:.0},{cy:.0}"),
                format!("{}x{}", size.width, size.height),
            ));
        }
        let mut side = side.clamp(64, 8192);
        let mut retried = false;
        let (mut enc_ms, mut dec_ms, mut decodes) = (0.0, 0.0, 0);
        loop {
            let window = self
                .reusable(path, click, side, size)
                .unwrap_or_else(|| window_at(click, side, size));
            let (embedding, (h, w), ms) = self.embedding(reader, path, window)?;
            enc_ms += ms;
            let started = std::time::Instant::now();
            let (ww, wh) = (
                f64::from(window[2] - window[0]),
                f64::from(window[3] - window[1]),
            );
            let rel = |(x, y): (f64, f64)| {
                (
                    (x - f64::from(window[0])) / ww,
                    (y - f64::from(window[1])) / wh,
                )
            };
            let mut points = vec![{
                let (x, y) = rel(click);
                (x, y, true)
            }];
            points.extend(negatives.iter().map(|&p| {
                let (x, y) = rel(p);
                (x, y, false)
            }));
            let (mask, iou) = self
                .head
                .forward(&embedding, h, w, &points)
                .map_err(model_err)?;
            // The mask is 256 x 256 for SAM's 1024 x 1024 input: each cell is a 4 x 4 block
            // (SAM upsamples it; bounds and outline read on the cells are the same, exactly).
            let (lw, lh) = (w.div_ceil(MASK_CELL), h.div_ceil(MASK_CELL));
            let mask = mask
                .get(0)
                .and_then(|m| m.get(0))
                .and_then(|m| m.i((..lh, ..lw)))
                .and_then(|m| m.flatten_all())
                .and_then(|m| m.to_vec1::<f32>())
                .map_err(model_err)?;
            let iou = iou
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(model_err)?
                .first()
                .copied()
                .unwrap_or(0.0);
            dec_ms += started.elapsed().as_secs_f64() * 1000.0;
            decodes += 1;
            let on: Vec<bool> = mask.iter().map(|v| *v > 0.0).collect();
            let Some(b) = cells_box(&on, w, h) else {
                return Err(AssistError::EmptyMask);
            };
            let whole = window == [0, 0, size.width, size.height];
            if touches_edge(b, w, h) && !retried && !whole {
                side = side.saturating_mul(2);
                retried = true;
                continue;
            }
            // Back from SAM's scaled window to the original's pixels.
            let (sx, sy) = (ww / w as f64, wh / h as f64);
            let rect = ImageRect::new(
                f64::from(window[0]) + b[0] as f64 * sx,
                f64::from(window[1]) + b[1] as f64 * sy,
                f64::from(window[0]) + b[2] as f64 * sx,
                f64::from(window[1]) + b[3] as f64 * sy,
            );
            let cell = MASK_CELL as f64;
            let outline = mask_outline(&on, lw, lh, 1)
                .into_iter()
                .map(|[a, b, c, d]| {
                    let (x0, x1) = ((a * cell).min(w as f64), (c * cell).min(w as f64));
                    let (y0, y1) = ((b * cell).min(h as f64), (d * cell).min(h as f64));
                    [
                        f64::from(window[0]) + x0 * sx,
                        f64::from(window[1]) + y0 * sy,
                        f64::from(window[0]) + x1 * sx,
                        f64::from(window[1]) + y1 * sy,
                    ]
                })
                .collect();
            return Ok(SamBox {
                rect,
                window,
                iou,
                retried,
                encoder_ms: enc_ms,
                decoder_ms: dec_ms,
                decodes,
                outline,
            });
        }
    }
}

/// The window SAM sees: `pixels` scaled so the longest side is 1024 (SAM's own transform).
fn scale_to_sam(pixels: &RgbImage) -> RgbImage {
    let (w, h) = pixels.dimensions();
    let s = IMAGE_SIZE as f64 / f64::from(w.max(h).max(1));
    let (nw, nh) = (
        ((f64::from(w) * s).round() as u32).clamp(1, IMAGE_SIZE as u32),
        ((f64::from(h) * s).round() as u32).clamp(1, IMAGE_SIZE as u32),
    );
    image::imageops::resize(pixels, nw, nh, image::imageops::FilterType::Triangle)
}

/// A square of `side` centred on `click`, moved (not cut) to stay on the image; cut only when
/// the image is smaller than the side.
pub fn window_at(click: (f64, f64), side: u32, size: ImageSize) -> [u32; 4] {
    let place = |c: f64, len: u32| {
        let side = side.min(len);
        let start = (c - f64::from(side) / 2.0)
            .round()
            .clamp(0.0, f64::from(len - side)) as u32;
        (start, start + side)
    };
    let (x0, x1) = place(click.0, size.width);
    let (y0, y1) = place(click.1, size.height);
    [x0, y0, x1, y1]
}

/// The bounds `[x0, y0, x1, y1)` of the mask's pixels, or None when it is empty.
pub fn mask_box(on: &[bool], w: usize, h: usize) -> Option<[usize; 4]> {
    let mut b: Option<[usize; 4]> = None;
    for y in 0..h {
        for x in 0..w {
            if on.get(y * w + x).copied().unwrap_or(false) {
                b = Some(match b {
                    None => [x, y, x + 1, y + 1],
                    Some(a) => [a[0].min(x), a[1].min(y), a[2].max(x + 1), a[3].max(y + 1)],
                });
            }
        }
    }
    b
}

/// SAM's mask is a quarter of its input's side: one mask cell is this many input pixels.
const MASK_CELL: usize = 4;

/// The outline of a mask of `w` x `h` traced on cells of `cell` pixels (a cell is in when
/// its centre pixel is): the edges between in and out cells, as segments `[x0, y0, x1, y1]`
/// in mask pixels, runs along a row or column joined into one.
pub fn mask_outline(on: &[bool], w: usize, h: usize, cell: usize) -> Vec<[f64; 4]> {
    let cell = cell.max(1);
    let (cw, ch) = (w.div_ceil(cell), h.div_ceil(cell));
    let at = |cx: isize, cy: isize| -> bool {
        if cx < 0 || cy < 0 || cx as usize >= cw || cy as usize >= ch {
            return false;
        }
        let x = (cx as usize * cell + cell / 2).min(w.saturating_sub(1));
        let y = (cy as usize * cell + cell / 2).min(h.saturating_sub(1));
        on.get(y * w + x).copied().unwrap_or(false)
    };
    let c = cell as f64;
    let mut out = Vec::new();
    // Horizontal edges: above each row of cells, a run where in and out differ.
    for y in 0..=ch as isize {
        let mut run: Option<isize> = None;
        for x in 0..=cw as isize {
            let edge = x < cw as isize && at(x, y) != at(x, y - 1);
            match (edge, run) {
                (true, None) => run = Some(x),
                (false, Some(x0)) => {
                    out.push([x0 as f64 * c, y as f64 * c, x as f64 * c, y as f64 * c]);
                    run = None;
                }
                _ => {}
            }
        }
    }
    // Vertical edges: left of each column of cells.
    for x in 0..=cw as isize {
        let mut run: Option<isize> = None;
        for y in 0..=ch as isize {
            let edge = y < ch as isize && at(x, y) != at(x - 1, y);
            match (edge, run) {
                (true, None) => run = Some(y),
                (false, Some(y0)) => {
                    out.push([x as f64 * c, y0 as f64 * c, x as f64 * c, y as f64 * c]);
                    run = None;
                }
                _ => {}
            }
        }
    }
    let (fw, fh) = (w as f64, h as f64);
    for s in &mut out {
        s[0] = s[0].min(fw);
        s[2] = s[2].min(fw);
        s[1] = s[1].min(fh);
        s[3] = s[3].min(fh);
    }
    out
}

/// The bounds, in SAM's input pixels cut to `w` x `h`, of a mask given as its cells
/// (`w.div_ceil(4)` x `h.div_ceil(4)`): what upsampling it by 4 and taking the bounds gives.
pub fn cells_box(on: &[bool], w: usize, h: usize) -> Option<[usize; 4]> {
    let low = mask_box(on, w.div_ceil(MASK_CELL), h.div_ceil(MASK_CELL))?;
    Some([
        low[0] * MASK_CELL,
        low[1] * MASK_CELL,
        (low[2] * MASK_CELL).min(w),
        (low[3] * MASK_CELL).min(h),
    ])
}

/// Does a mask's box reach the window's edge (the object may go on beyond it)?
pub fn touches_edge(b: [usize; 4], w: usize, h: usize) -> bool {
    b[0] == 0 || b[1] == 0 || b[2] >= w || b[3] >= h
}

/// Write a random-weight SAM of `shape` into `dir` in the tensor names candle-transformers
/// reads (with our configuration file beside it): for tests and benchmarks, never for boxes.
pub fn write_random(dir: &Path, shape: &VitShape, seed: u64) -> Result<(), AssistError> {
    let map = candle_nn::VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
    Sam::new(
        shape.embed_dim,
        shape.depth,
        shape.heads,
        &shape.global_attn,
        vb,
    )
    .map_err(model_err)?;
    save_random(&map, dir, CUSTOM_FILE, seed)?;
    let config =
        serde_json::to_string_pretty(shape).map_err(|e| AssistError::Model(e.to_string()))?;
    std::fs::write(dir.join(CUSTOM_CONFIG), config)
        .map_err(|e| AssistError::Model(format!("{}: {e}", dir.display())))
}

/// The same for the TinyViT (MobileSAM) shape, under its published file name.
pub fn write_random_tiny(dir: &Path, seed: u64) -> Result<(), AssistError> {
    let map = candle_nn::VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
    Sam::new_tiny(vb).map_err(model_err)?;
    save_random(&map, dir, TINY_FILE, seed)
}

/// Fill every weight of `map` with small seeded noise and write it as `dir/file`.
fn save_random(
    map: &candle_nn::VarMap,
    dir: &Path,
    file: &str,
    seed: u64,
) -> Result<(), AssistError> {
    let mut rng = crate::rng::Rng::new(seed);
    {
        let vars = map
            .data()
            .lock()
            .map_err(|_| AssistError::Model("the weights were poisoned".into()))?;
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        for name in names {
            let Some(var) = vars.get(name) else { continue };
            let values: Vec<f32> = (0..var.elem_count())
                .map(|_| (rng.unit() as f32 - 0.5) * 0.1)
                .collect();
            let t = Tensor::from_vec(values, var.shape(), &Device::Cpu).map_err(model_err)?;
            var.set(&t).map_err(model_err)?;
        }
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| AssistError::Model(format!("{}: {e}", dir.display())))?;
    map.save(dir.join(file)).map_err(model_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_on_the_mask_cells_are_those_of_the_upsampled_mask() {
        let mut rng = crate::rng::Rng::new(4);
        for (w, h) in [(1024usize, 1024usize), (1024, 683), (701, 1024)] {
            let (lw, lh) = (w.div_ceil(4), h.div_ceil(4));
            for _ in 0..20 {
                let (x0, y0) = (
                    rng.range(0, lw as u32) as usize,
                    rng.range(0, lh as u32) as usize,
                );
                let (x1, y1) = (
                    x0 + 1 + rng.range(0, (lw - x0) as u32) as usize,
                    y0 + 1 + rng.range(0, (lh - y0) as u32) as usize,
                );
                let on: Vec<bool> = (0..lw * lh)
                    .map(|i| (x0..x1).contains(&(i % lw)) && (y0..y1).contains(&(i / lw)))
                    .collect();
                let full: Vec<bool> = (0..w * h)
                    .map(|i| on[(i / w / 4) * lw + (i % w) / 4])
                    .collect();
                assert_eq!(cells_box(&on, w, h), mask_box(&full, w, h));
            }
        }
        assert_eq!(cells_box(&[false; 4], 8, 8), None);
    }

    #[test]
    fn a_masks_outline_is_its_edges_joined_into_runs() {
        // A 4x2 block at (2, 1) in an 8x4 mask: four sides, each one segment.
        let (w, h) = (8, 4);
        let on: Vec<bool> = (0..w * h)
            .map(|i| (2..6).contains(&(i % w)) && (1..3).contains(&(i / w)))
            .collect();
        let mut got = mask_outline(&on, w, h, 1);
        got.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(
            got,
            vec![
                [2.0, 1.0, 2.0, 3.0],
                [2.0, 1.0, 6.0, 1.0],
                [2.0, 3.0, 6.0, 3.0],
                [6.0, 1.0, 6.0, 3.0],
            ]
        );
        // On cells of 2 the same block has the same outline; an empty mask has none.
        assert_eq!(mask_outline(&on, w, h, 2).len(), 4);
        assert!(mask_outline(&vec![false; w * h], w, h, 1).is_empty());
    }

    #[test]
    fn windows_stay_on_the_image_at_its_edges_and_corners() {
        let size = ImageSize::new(3000, 2000);
        assert_eq!(
            window_at((1500.0, 1000.0), 512, size),
            [1244, 744, 1756, 1256]
        );
        assert_eq!(window_at((10.0, 5.0), 512, size), [0, 0, 512, 512]);
        assert_eq!(
            window_at((2999.0, 1999.0), 512, size),
            [2488, 1488, 3000, 2000]
        );
        // Wider than the image: the whole side.
        assert_eq!(window_at((100.0, 100.0), 4096, size), [0, 0, 3000, 2000]);
    }

    #[test]
    fn a_mask_becomes_its_bounds_and_an_edge_is_seen() {
        let (w, h) = (8, 6);
        let mut on = vec![false; w * h];
        for (x, y) in [(2, 1), (5, 3), (3, 4)] {
            on[y * w + x] = true;
        }
        let b = mask_box(&on, w, h).unwrap();
        assert_eq!(b, [2, 1, 6, 5]);
        assert!(!touches_edge(b, w, h));
        on[7] = true;
        assert!(touches_edge(mask_box(&on, w, h).unwrap(), w, h));
        assert_eq!(mask_box(&vec![false; w * h], w, h), None);
    }

    /// A one-block 32-wide ViT: SAM's plumbing in a fraction of a second.
    fn small_shape() -> VitShape {
        VitShape {
            embed_dim: 32,
            depth: 1,
            heads: 2,
            global_attn: vec![0],
        }
    }

    /// Our mask head against candle-transformers' own `MaskDecoder` on the same random
    /// weights and embedding: the same mask logits and IoU, for one point and for a point
    /// with one left out, at a square and a wide window (f32 sums in another order: 1e-4 of
    /// the logits' scale).
    #[test]
    fn our_mask_head_gives_candles_masks() {
        let dir = tempfile::tempdir().unwrap();
        let shape = small_shape();
        write_random(dir.path(), &shape, 11).unwrap();
        let sam = SamModel::load(dir.path(), false, &Device::Cpu).unwrap();
        let img = Tensor::from_vec(
            (0..3 * 1024 * 768)
                .map(|i| ((i * 37 + i / 1024 * 11) % 251) as u8)
                .collect::<Vec<u8>>(),
            (3, 768, 1024),
            &Device::Cpu,
        )
        .unwrap();
        let emb = sam.sam.embeddings(&img).unwrap();
        for (h, w, points) in [
            (1024, 1024, vec![(0.5, 0.5, true)]),
            (768, 1024, vec![(0.3, 0.6, true), (0.7, 0.2, false)]),
        ] {
            let (theirs, their_iou) = sam
                .sam
                .forward_for_embeddings(&emb, h, w, &points, false)
                .unwrap();
            let (ours, our_iou) = sam.head.forward(&emb, h, w, &points).unwrap();
            assert_eq!(theirs.dims(), ours.dims());
            let a = theirs.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let b = ours.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
            let worst = a
                .iter()
                .zip(&b)
                .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
            assert!(worst <= scale * 1e-4, "{worst} of {scale}");
            let (i, j) = (
                their_iou.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                our_iou.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            );
            assert_eq!(i.len(), j.len());
            assert!(
                (i[0] - j[0]).abs() <= 1e-4 * i[0].abs().max(1.0),
                "{i:?} {j:?}"
            );
        }
    }

    /// Plumbing with random weights in candle-transformers' tensor names: a click gives a box
    /// inside its window (or "nothing there"), never a panic; a click near it reuses the
    /// window's embedding; a click far off encodes another; a click off the image is refused.
    #[test]
    fn a_random_weight_sam_boxes_a_click_and_reuses_the_window_embedding() {
        let dir = tempfile::tempdir().unwrap();
        let shape = small_shape();
        write_random(dir.path(), &shape, 3).unwrap();
        let mut sam = SamModel::load(dir.path(), false, &Device::Cpu).unwrap();
        let path = dir.path().join("photo.png");
        image::RgbImage::from_fn(1600, 1200, |x, y| {
            image::Rgb([(x / 7) as u8, (y / 5) as u8, 90])
        })
        .save(&path)
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let reader = Reader::open(&path, &bytes).unwrap();
        let size = ImageSize::new(1600, 1200);
        let first = sam.box_at(&reader, &path, size, (800.0, 600.0), &[], 256);
        let encoded = sam.encodes;
        assert!((1..=2).contains(&encoded), "{encoded}");
        if let Ok(b) = &first {
            // A mask on the window's edge is tried once more on a window twice as wide.
            assert_eq!(b.retried, encoded == 2, "{b:?}");
            let [x0, y0, x1, y1] = b.window.map(f64::from);
            assert!(
                b.rect.x0 >= x0 && b.rect.y0 >= y0 && b.rect.x1 <= x1 && b.rect.y1 <= y1,
                "{b:?}"
            );
        }
        let _ = sam.box_at(&reader, &path, size, (810.0, 605.0), &[(700.0, 600.0)], 256);
        assert_eq!(
            sam.encodes, encoded,
            "a click near the last one encoded again"
        );
        let _ = sam.box_at(&reader, &path, size, (100.0, 100.0), &[], 256);
        assert!(sam.encodes > encoded);
        assert!(matches!(
            sam.box_at(&reader, &path, size, (1700.0, 10.0), &[], 256),
            Err(AssistError::Outside(..))
        ));
        // Weights of the wrong shape: a one-line error naming the folder.
        std::fs::write(
            dir.path().join(CUSTOM_CONFIG),
            r#"{"embed_dim": 48, "depth": 1, "heads": 2, "global_attn": [0]}"#,
        )
        .unwrap();
        let e = SamModel::load(dir.path(), false, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}
