//! The vision tower: a linear patch embedding (the reference's bias-free Conv3d over
//! 2x14x14 patches), blocks of RMSNorm + attention with 2-D rotary embeddings + SwiGLU MLP,
//! window attention (8x8-patch windows) in every block but the full-attention ones, and the
//! merger (RMSNorm, 2x2 merge, Linear, GELU, Linear). The patches are put in window order
//! before the blocks and back after the merger. Attention is computed a few query rows at a
//! time, so a large image never holds its whole score matrix.

use std::collections::HashMap;

use candle_core::quantized::QTensor;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, RmsNorm, VarBuilder, linear, rms_norm};

use super::attention::{attend, product_dtype};
use super::config::VisionConfig;
use super::proj::Proj;
use super::rope::{inverse_frequencies, vision_cos_sin};
use crate::model::Result;

/// A quantized file's matrices by canonical name (`visual.blocks.0.attn.qkv.weight`), or
/// None for dense weights.
pub type Quantized<'a> = Option<&'a mut HashMap<String, QTensor>>;

/// The layer `name` under `vb` (canonical key `{key}.{name}`), with its bias: quantized when
/// the file holds its matrix, dense otherwise (a file written before the vision tower was
/// quantized holds it in f16).
fn proj(
    vb: &VarBuilder,
    q: &mut Quantized,
    key: &str,
    name: &str,
    inp: usize,
    out: usize,
) -> Result<Proj> {
    let vb = vb.pp(name);
    if let Some(map) = q.as_deref_mut()
        && let Some(p) = Proj::quantized(map, &format!("{key}.{name}.weight"), &vb, inp, out, true)?
    {
        return Ok(p);
    }
    Ok(Proj::Dense(linear(inp, out, vb)?))
}

struct Mlp {
    gate: Proj,
    up: Proj,
    down: Proj,
}

impl Mlp {
    fn load(
        vb: VarBuilder,
        q: &mut Quantized,
        key: &str,
        dim: usize,
        hidden: usize,
    ) -> Result<Self> {
        Ok(Self {
            gate: proj(&vb, q, key, "gate_proj", dim, hidden)?,
            up: proj(&vb, q, key, "up_proj", dim, hidden)?,
            down: proj(&vb, q, key, "down_proj", hidden, dim)?,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let g = self.gate.forward(x)?.silu()?;
        Ok(self.down.forward(&(g * self.up.forward(x)?)?)?)
    }
}

struct Block {
    norm1: RmsNorm,
    norm2: RmsNorm,
    qkv: Proj,
    proj: Proj,
    mlp: Mlp,
    heads: usize,
}

impl Block {
    fn load(vb: VarBuilder, q: &mut Quantized, key: &str, c: &VisionConfig) -> Result<Self> {
        let e = c.hidden_size;
        Ok(Self {
            norm1: rms_norm(e, 1e-6, vb.pp("norm1"))?,
            norm2: rms_norm(e, 1e-6, vb.pp("norm2"))?,
            qkv: proj(&vb, q, key, "attn.qkv", e, 3 * e)?,
            proj: proj(&vb, q, key, "attn.proj", e, e)?,
            mlp: Mlp::load(
                vb.pp("mlp"),
                q,
                &format!("{key}.mlp"),
                e,
                c.intermediate_size,
            )?,
            heads: c.num_heads,
        })
    }

    fn forward(
        &self,
        x: &Tensor,
        segments: &[(usize, usize)],
        cos: &Tensor,
        sin: &Tensor,
        budget: usize,
    ) -> Result<Tensor> {
        let (n, e) = x.dims2()?;
        let d = e / self.heads;
        let h = self.norm1.forward(x)?;
        // [n, 3e] -> q, k, v as [n, heads, d]: a window is a run of rows. Rotary embeddings in
        // f32; the attention products in f32 on the CPU, in the working dtype on a GPU.
        let prod = product_dtype(x.device(), x.dtype());
        let qkv = self.qkv.forward(&h)?.reshape((n, 3, self.heads, d))?;
        let rotate = |i: usize| -> Result<Tensor> {
            let t = qkv.narrow(1, i, 1)?.reshape((1, n, self.heads, d))?;
            let t = candle_nn::rotary_emb::rope_thd(&t.to_dtype(DType::F32)?, cos, sin)?;
            Ok(t.squeeze(0)?.to_dtype(prod)?)
        };
        let q = rotate(0)?;
        let k = rotate(1)?;
        let v = qkv
            .narrow(1, 2, 1)?
            .reshape((n, self.heads, d))?
            .to_dtype(prod)?;
        let scale = 1.0 / (d as f64).sqrt();
        // Windows of one size in a row are one batched product: [windows x heads, len, d].
        let mut parts = Vec::new();
        for (start, len, count) in equal_runs(segments) {
            let total = len * count;
            let batch = |t: &Tensor| -> Result<Tensor> {
                Ok(t.narrow(0, start, total)?
                    .reshape((count, len, self.heads, d))?
                    .transpose(1, 2)?
                    .contiguous()?
                    .reshape((count * self.heads, len, d))?)
            };
            let o = attend(&batch(&q)?, &batch(&k)?, &batch(&v)?, scale, None, budget)?;
            parts.push(
                o.reshape((count, self.heads, len, d))?
                    .transpose(1, 2)?
                    .reshape((total, e))?,
            );
        }
        let a = if parts.len() == 1 {
            parts.remove(0)
        } else {
            Tensor::cat(&parts, 0)?
        }
        .to_dtype(x.dtype())?;
        let x = (x + self.proj.forward(&a)?)?;
        let h = self.norm2.forward(&x)?;
        Ok((&x + self.mlp.forward(&h)?)?)
    }
}

struct Merger {
    norm: RmsNorm,
    fc1: Proj,
    fc2: Proj,
    group: usize,
}

impl Merger {
    fn load(vb: VarBuilder, q: &mut Quantized, c: &VisionConfig) -> Result<Self> {
        let group = c.spatial_merge_size * c.spatial_merge_size;
        let m = c.hidden_size * group;
        let key = "visual.merger";
        Ok(Self {
            norm: rms_norm(c.hidden_size, 1e-6, vb.pp("ln_q"))?,
            fc1: proj(&vb, q, key, "mlp.0", m, m)?,
            fc2: proj(&vb, q, key, "mlp.2", m, c.out_hidden_size)?,
            group,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, e) = x.dims2()?;
        let x = self
            .norm
            .forward(x)?
            .reshape((n / self.group, e * self.group))?;
        let x = self.fc1.forward(&x)?.gelu_erf()?;
        Ok(self.fc2.forward(&x)?)
    }
}

/// Consecutive segments of equal length as (first row, length, how many): each is one batched
/// attention (most windows of an image are full; only the last of a row or column is clipped).
fn equal_runs(segments: &[(usize, usize)]) -> Vec<(usize, usize, usize)> {
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for &(start, len) in segments {
        match runs.last_mut() {
            Some((s, l, c)) if *l == len && *s + *l * *c == start => *c += 1,
            _ => runs.push((start, len, 1)),
        }
    }
    runs
}

/// How an image's merged units are walked window by window.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowOrder {
    /// Merged-unit indices in window order.
    pub units: Vec<usize>,
    /// Each window as (first patch, patches), in window order.
    pub windows: Vec<(usize, usize)>,
    /// Each frame as (first patch, patches): the full-attention segments.
    pub frames: Vec<(usize, usize)>,
}

/// The window order for images of these grids ([t, h, w] in patches): windows of
/// `units_per_side` x `units_per_side` merged units, row by row, the last ones clipped.
pub fn window_order(grids: &[[usize; 3]], merge: usize, units_per_side: usize) -> WindowOrder {
    let unit = merge * merge;
    let mut order = WindowOrder {
        units: Vec::new(),
        windows: Vec::new(),
        frames: Vec::new(),
    };
    let (mut base_unit, mut patch) = (0usize, 0usize);
    let mut frame_start = 0usize;
    for &[t, h, w] in grids {
        let (lh, lw) = (h / merge, w / merge);
        for ti in 0..t {
            let frame = base_unit + ti * lh * lw;
            for wr in (0..lh).step_by(units_per_side) {
                for wc in (0..lw).step_by(units_per_side) {
                    let mut count = 0;
                    for r in wr..(wr + units_per_side).min(lh) {
                        for c in wc..(wc + units_per_side).min(lw) {
                            order.units.push(frame + r * lw + c);
                            count += 1;
                        }
                    }
                    order.windows.push((patch, count * unit));
                    patch += count * unit;
                }
            }
            order.frames.push((frame_start, lh * lw * unit));
            frame_start += lh * lw * unit;
        }
        base_unit += t * lh * lw;
    }
    order
}

pub struct VisionTower {
    patch_embed: Linear,
    blocks: Vec<Block>,
    merger: Merger,
    cfg: VisionConfig,
    inv_freq: Vec<f32>,
    /// Most f32 attention scores held at once (per chunk of query rows).
    pub score_budget: usize,
    /// Treat every block as a full-attention block (for testing the window logic).
    pub all_full: bool,
}

impl VisionTower {
    /// The tower from `vb` (at `visual`), its projections from `quantized` where a quantized
    /// file holds them.
    pub fn load(
        vb: VarBuilder,
        cfg: &VisionConfig,
        mut quantized: Quantized,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        let c = cfg;
        let row = c.in_channels * c.temporal_patch_size * c.patch_size * c.patch_size;
        let w = vb
            .get(
                (
                    c.hidden_size,
                    c.in_channels,
                    c.temporal_patch_size,
                    c.patch_size,
                    c.patch_size,
                ),
                "patch_embed.proj.weight",
            )?
            .reshape((c.hidden_size, row))?;
        let mut blocks = Vec::with_capacity(c.depth);
        for i in 0..c.depth {
            progress(i, c.depth);
            let key = format!("visual.blocks.{i}");
            blocks.push(Block::load(
                vb.pp(format!("blocks.{i}")),
                &mut quantized,
                &key,
                c,
            )?);
        }
        Ok(Self {
            patch_embed: Linear::new(w, None),
            blocks,
            merger: Merger::load(vb.pp("merger"), &mut quantized, c)?,
            inv_freq: inverse_frequencies(c.hidden_size / c.num_heads / 2, 10_000.0),
            cfg: c.clone(),
            score_budget: 32 << 20,
            all_full: false,
        })
    }

    /// Image embeddings, [tokens, out_hidden], for patch rows `pixels` ([rows, row_len]) of
    /// images with these grids, in the images' own token order.
    pub fn forward(&self, pixels: &Tensor, grids: &[[usize; 3]]) -> Result<Tensor> {
        let c = &self.cfg;
        let m = c.spatial_merge_size;
        let unit = m * m;
        let rows: usize = grids.iter().map(|[t, h, w]| t * h * w).sum();
        if pixels.dim(0)? != rows || grids.iter().any(|[_, h, w]| h % m != 0 || w % m != 0) {
            return Err(crate::model::ModelError::Input(format!(
                "{} patch rows for image grids {grids:?} (they need {rows}, sides multiples of {m})",
                pixels.dim(0)?
            )));
        }
        let order = window_order(grids, m, c.window_size / m / c.patch_size);
        // Every patch's (row, col) in the processor's order, then permuted to window order.
        let mut rc = Vec::with_capacity(pixels.dim(0)?);
        for &[t, h, w] in grids {
            for _ in 0..t {
                for bh in 0..h / m {
                    for bw in 0..w / m {
                        for ih in 0..m {
                            for iw in 0..m {
                                rc.push((bh * m + ih, bw * m + iw));
                            }
                        }
                    }
                }
            }
        }
        let patch_perm: Vec<u32> = order
            .units
            .iter()
            .flat_map(|&u| (u * unit..(u + 1) * unit).map(|p| p as u32))
            .collect();
        let rc: Vec<(usize, usize)> = patch_perm.iter().map(|&p| rc[p as usize]).collect();
        let dev = pixels.device();
        let (cos, sin) = vision_cos_sin(&rc, &self.inv_freq);
        let half = self.inv_freq.len() * 2;
        let cos = Tensor::from_vec(cos, (rc.len(), half), dev)?;
        let sin = Tensor::from_vec(sin, (rc.len(), half), dev)?;
        let perm = Tensor::new(patch_perm.as_slice(), dev)?;
        let x = self.patch_embed.forward(pixels)?;
        let mut x = x.index_select(&perm, 0)?;
        for (i, block) in self.blocks.iter().enumerate() {
            let segments = if self.all_full || c.fullatt_block_indexes.contains(&i) {
                &order.frames
            } else {
                &order.windows
            };
            x = block.forward(&x, segments, &cos, &sin, self.score_budget)?;
        }
        let x = self.merger.forward(&x)?;
        let mut inverse = vec![0u32; order.units.len()];
        for (pos, &u) in order.units.iter().enumerate() {
            inverse[u] = pos as u32;
        }
        let inverse = Tensor::new(inverse.as_slice(), dev)?;
        Ok(x.index_select(&inverse, 0)?)
    }

    /// Upload patch rows to the device in the working dtype.
    pub fn pixels(
        &self,
        values: &[f32],
        rows: usize,
        row_len: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        Ok(Tensor::from_slice(values, (rows, row_len), device)?.to_dtype(dtype)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_windows_in_a_row_batch_together() {
        // 10 x 14 patches in 2 x 2-unit windows: each row of windows is three full ones and a
        // clipped one; the last row is clipped in height.
        let o = window_order(&[[1, 10, 14]], 2, 2);
        let runs = equal_runs(&o.windows);
        assert_eq!(runs[0], (0, 16, 3));
        assert_eq!(runs[1], (48, 8, 1));
        assert_eq!(runs[2], (56, 16, 3));
        assert_eq!(*runs.last().unwrap(), (136, 4, 1));
        let covered: usize = runs.iter().map(|r| r.1 * r.2).sum();
        assert_eq!(covered, 140);
        // A side that is a multiple of the window: one run for the whole image.
        let o = window_order(&[[1, 16, 16]], 2, 2);
        assert_eq!(equal_runs(&o.windows), vec![(0, 16, 16)]);
    }

    #[test]
    fn windows_cover_every_unit_once_and_clip_at_the_edges() {
        // 10 x 14 patches: 5 x 7 merged units in 2 x 2 windows -> 3 x 4 windows.
        let o = window_order(&[[1, 10, 14]], 2, 2);
        let mut sorted = o.units.clone();
        sorted.sort();
        assert_eq!(sorted, (0..35).collect::<Vec<_>>());
        assert_eq!(o.windows.len(), 12);
        assert_eq!(o.windows[0], (0, 16));
        // The last window of the first row is one unit wide: 2 units, 8 patches.
        assert_eq!(o.windows[3], (48, 8));
        // The bottom-right window is one unit.
        assert_eq!(*o.windows.last().unwrap(), (136, 4));
        assert_eq!(o.units[..4], [0, 1, 7, 8]);
        assert_eq!(o.frames, vec![(0, 140)]);
        let total: usize = o.windows.iter().map(|w| w.1).sum();
        assert_eq!(total, 140);
    }
}
