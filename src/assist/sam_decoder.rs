//! SAM's prompt-to-mask step for one mask, ours: candle-transformers' prompt encoder and
//! two-way transformer, then the mask head written here. candle's own `MaskDecoder` upscales
//! with `conv_transpose2d`, whose CPU kernel loops over every output pixel (150-180 ms of a
//! 300 ms click on 2 cores); SAM's two upscaling layers have a 2x2 kernel and stride 2, so
//! each input pixel feeds its own 2x2 output block and the layer is one matrix product and
//! a reshuffle. Only the single-mask output (mask token 0) is computed, as the click uses.
//! Same weights, same names (`prompt_encoder.*`, `mask_decoder.*`).

use candle_core::{IndexOp, Module, Result, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::segment_anything::prompt_encoder::PromptEncoder;
use candle_transformers::models::segment_anything::transformer::TwoWayTransformer;
use candle_transformers::models::segment_anything::{LayerNorm2d, Linear, linear};

/// SAM's prompt and mask width, and the embedding grid (1024 / 16).
const DIM: usize = 256;
const GRID: usize = 64;
const MASK_TOKENS: usize = 4;

/// A 2x2, stride-2 transposed convolution.
struct Upscale {
    /// `(in, out * 4)`: the kernel with each output channel's 2x2 block laid out in a row.
    weight: Tensor,
    bias: Tensor,
    out: usize,
}

impl Upscale {
    fn new(inp: usize, out: usize, vb: VarBuilder) -> Result<Self> {
        let weight = vb
            .get((inp, out, 2, 2), "weight")?
            .reshape((inp, out * 4))?;
        let bias = vb.get(out, "bias")?.reshape((1, out, 1, 1))?;
        Ok(Self { weight, bias, out })
    }

    /// `(1, in, h, w)` to `(1, out, 2h, 2w)`.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (_, c, h, w) = xs.dims4()?;
        let ys = xs
            .reshape((c, h * w))?
            .t()?
            .matmul(&self.weight)?
            .reshape((h, w, self.out, 2, 2))?
            .permute((2, 0, 3, 1, 4))?
            .reshape((1, self.out, 2 * h, 2 * w))?;
        ys.broadcast_add(&self.bias)
    }
}

/// Linear layers with ReLU between them.
struct Mlp(Vec<Linear>);

impl Mlp {
    fn new(dims: &[usize], vb: VarBuilder) -> Result<Self> {
        let vb = vb.pp("layers");
        let layers = dims
            .windows(2)
            .enumerate()
            .map(|(i, d)| linear(vb.pp(i), d[0], d[1], true))
            .collect::<Result<_>>()?;
        Ok(Self(layers))
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let mut xs = xs.clone();
        for (i, layer) in self.0.iter().enumerate() {
            xs = layer.forward(&xs)?;
            if i + 1 < self.0.len() {
                xs = xs.relu()?;
            }
        }
        Ok(xs)
    }
}

/// The prompt encoder and the single-mask decoder.
pub struct MaskHead {
    prompt: PromptEncoder,
    transformer: TwoWayTransformer,
    /// The IoU token, then the mask tokens: `(1 + MASK_TOKENS, DIM)`.
    tokens: Tensor,
    up1: Upscale,
    norm: LayerNorm2d,
    up2: Upscale,
    hyper: Mlp,
    iou_head: Mlp,
}

impl MaskHead {
    /// From a SAM checkpoint's root (the same `VarBuilder` candle's `Sam` reads).
    pub fn new(vb: VarBuilder) -> Result<Self> {
        let prompt = PromptEncoder::new(
            DIM,
            (GRID, GRID),
            (GRID * 16, GRID * 16),
            16,
            vb.pp("prompt_encoder"),
        )?;
        let vb = vb.pp("mask_decoder");
        let transformer = TwoWayTransformer::new(2, DIM, 8, 2048, vb.pp("transformer"))?;
        let tokens = Tensor::cat(
            &[
                vb.pp("iou_token").get((1, DIM), "weight")?,
                vb.pp("mask_tokens").get((MASK_TOKENS, DIM), "weight")?,
            ],
            0,
        )?;
        Ok(Self {
            prompt,
            transformer,
            tokens,
            up1: Upscale::new(DIM, DIM / 4, vb.pp("output_upscaling.0"))?,
            norm: LayerNorm2d::new(DIM / 4, 1e-6, vb.pp("output_upscaling.1"))?,
            up2: Upscale::new(DIM / 4, DIM / 8, vb.pp("output_upscaling.3"))?,
            hyper: Mlp::new(
                &[DIM, DIM, DIM, DIM / 8],
                vb.pp("output_hypernetworks_mlps").pp(0),
            )?,
            iou_head: Mlp::new(&[DIM, 256, 256, MASK_TOKENS], vb.pp("iou_prediction_head"))?,
        })
    }

    /// The mask logits `(1, 1, 256, 256)` and the predicted IoU `(1, 1)` for `points`
    /// (`x`, `y` as shares of a window that SAM saw at `w` x `h`; true: the object).
    pub fn forward(
        &self,
        embedding: &Tensor,
        h: usize,
        w: usize,
        points: &[(f64, f64, bool)],
    ) -> Result<(Tensor, Tensor)> {
        let device = embedding.device();
        let xys: Vec<f32> = points
            .iter()
            .flat_map(|&(x, y, _)| [(x * w as f64) as f32, (y * h as f64) as f32])
            .collect();
        let labels: Vec<f32> = points.iter().map(|p| f32::from(u8::from(p.2))).collect();
        let n = points.len();
        let coords = Tensor::from_vec(xys, (1, n, 2), device)?;
        let labels = Tensor::from_vec(labels, (1, n), device)?;
        let (sparse, dense) = self.prompt.forward(Some((&coords, &labels)), None, None)?;
        let tokens = Tensor::cat(&[&self.tokens.unsqueeze(0)?, &sparse], 1)?;
        let src = embedding.broadcast_add(&dense)?;
        let pe = self.prompt.get_dense_pe()?;
        let (hs, src) = self.transformer.forward(&src, &pe, &tokens)?;
        let src = src.transpose(1, 2)?.reshape((1, DIM, GRID, GRID))?;
        let up = self
            .up1
            .forward(&src)?
            .apply(&self.norm)?
            .gelu()?
            .apply(&|x: &Tensor| self.up2.forward(x))?
            .gelu()?;
        let side = GRID * 4;
        let hyper = self.hyper.forward(&hs.i((.., 1))?)?.unsqueeze(1)?;
        let mask = hyper
            .matmul(&up.reshape((1, DIM / 8, side * side))?)?
            .reshape((1, 1, side, side))?;
        let iou = self.iou_head.forward(&hs.i((.., 0))?)?.i((.., 0..1))?;
        Ok((mask, iou))
    }
}
