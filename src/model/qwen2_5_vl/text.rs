//! The language model: Qwen2 decoder layers (q/k/v with biases, grouped-query attention,
//! SwiGLU MLP, RMSNorm) with multimodal rotary positions, and a KV cache that can be cut back
//! to a prefix and extended chunk by chunk. The projections are dense or quantized (Q8_0/Q4K
//! from `thyme-studio model quantize`, computed in f32).

use std::collections::HashMap;

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, Linear, RmsNorm, VarBuilder, linear, linear_no_bias, rms_norm};

use super::attention::{attend_grouped, product_dtype};
use super::config::TextConfig;
use super::proj::Proj;
use super::rope::{inverse_frequencies, text_cos_sin};
use crate::model::Result;

/// Keys and values of every layer for the tokens seen so far, in buffers with room to grow
/// (doubling), so a decoded token writes its keys in place instead of copying the cache.
/// Not `Clone`: the buffers are written in place, so a copy would share them.
#[derive(Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn clear(&mut self) {
        self.layers.clear();
        self.len = 0;
    }
    /// Keep the first `n` tokens only.
    pub fn truncate(&mut self, n: usize) -> Result<()> {
        if n >= self.len {
            return Ok(());
        }
        if n == 0 {
            self.clear();
            return Ok(());
        }
        // The buffers keep their room; only the length shrinks.
        self.len = n;
        Ok(())
    }
    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .map(|(k, v)| (k.elem_count() + v.elem_count()) * k.dtype().size_in_bytes())
            .sum()
    }
}

/// Where the language model's weights come from.
pub enum TextWeights<'a> {
    /// Safetensors (or any dense tensors): `vb` at the text root, `head` at `lm_head` (None
    /// when tied to the embeddings).
    Dense {
        vb: VarBuilder<'a>,
        head: Option<VarBuilder<'a>>,
    },
    /// A quantized file: `vb` (f32) at the text root for norms and biases, the embeddings as
    /// stored (f16), and the projection matrices by canonical name.
    Quantized {
        vb: VarBuilder<'a>,
        embed: Tensor,
        projections: &'a mut HashMap<String, QTensor>,
    },
}

impl TextWeights<'_> {
    /// `name` (under the text root, e.g. `layers.0.self_attn.q_proj`) as a projection.
    fn proj(&mut self, name: &str, inp: usize, out: usize, bias: bool) -> Result<Proj> {
        match self {
            TextWeights::Dense { vb, .. } => Ok(Proj::Dense(if bias {
                linear(inp, out, vb.pp(name))?
            } else {
                linear_no_bias(inp, out, vb.pp(name))?
            })),
            TextWeights::Quantized {
                vb, projections, ..
            } => {
                let key = format!("model.{name}.weight");
                Proj::quantized(projections, &key, &vb.pp(name), inp, out, bias)?.ok_or_else(|| {
                    crate::model::ModelError::Config(format!("the quantized file has no {key}"))
                })
            }
        }
    }
    fn vb(&self) -> &VarBuilder<'_> {
        match self {
            TextWeights::Dense { vb, .. } | TextWeights::Quantized { vb, .. } => vb,
        }
    }
}

struct Attention {
    q: Proj,
    k: Proj,
    v: Proj,
    o: Proj,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

struct Layer {
    attn: Attention,
    gate: Proj,
    up: Proj,
    down: Proj,
    ln1: RmsNorm,
    ln2: RmsNorm,
}

pub struct TextModel {
    embed: Embedding,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: Proj,
    inv_freq: Vec<f32>,
    cfg: TextConfig,
    /// The dtype the layers compute in (f32 with quantized weights).
    act_dtype: DType,
    /// Most f32 attention scores held at once.
    pub score_budget: usize,
}

impl TextModel {
    pub fn load(
        mut w: TextWeights,
        cfg: &TextConfig,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self> {
        let c = cfg;
        let (h, hd) = (c.hidden_size, c.head_dim);
        let (embed_w, act_dtype) = match &w {
            TextWeights::Dense { vb, .. } => {
                let e = vb.pp("embed_tokens").get((c.vocab_size, h), "weight")?;
                let d = e.dtype();
                (e, d)
            }
            TextWeights::Quantized { embed, .. } => {
                if embed.dims() != [c.vocab_size, h] {
                    return Err(crate::model::ModelError::Config(format!(
                        "embeddings are {:?}, expected [{}, {h}]",
                        embed.dims(),
                        c.vocab_size
                    )));
                }
                (embed.clone(), DType::F32)
            }
        };
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            progress(i, c.num_hidden_layers);
            let p = format!("layers.{i}");
            let a = format!("{p}.self_attn");
            let attn = Attention {
                q: w.proj(&format!("{a}.q_proj"), h, c.num_attention_heads * hd, true)?,
                k: w.proj(&format!("{a}.k_proj"), h, c.num_key_value_heads * hd, true)?,
                v: w.proj(&format!("{a}.v_proj"), h, c.num_key_value_heads * hd, true)?,
                o: w.proj(&format!("{a}.o_proj"), c.num_attention_heads * hd, h, false)?,
                heads: c.num_attention_heads,
                kv_heads: c.num_key_value_heads,
                head_dim: hd,
            };
            let gate = w.proj(&format!("{p}.mlp.gate_proj"), h, c.intermediate_size, false)?;
            let up = w.proj(&format!("{p}.mlp.up_proj"), h, c.intermediate_size, false)?;
            let down = w.proj(&format!("{p}.mlp.down_proj"), c.intermediate_size, h, false)?;
            let l = w.vb().pp(&p);
            layers.push(Layer {
                attn,
                gate,
                up,
                down,
                ln1: rms_norm(h, c.rms_norm_eps, l.pp("input_layernorm"))?,
                ln2: rms_norm(h, c.rms_norm_eps, l.pp("post_attention_layernorm"))?,
            });
        }
        let norm = rms_norm(h, c.rms_norm_eps, w.vb().pp("norm"))?;
        let lm_head = match &mut w {
            TextWeights::Dense { head: Some(hv), .. } => {
                Proj::Dense(linear_no_bias(h, c.vocab_size, hv.clone())?)
            }
            TextWeights::Dense { head: None, .. } => {
                Proj::Dense(Linear::new(embed_w.clone(), None))
            }
            TextWeights::Quantized { projections, .. } => {
                let q = projections.remove("lm_head.weight").ok_or_else(|| {
                    crate::model::ModelError::Config(
                        "the quantized file has no lm_head.weight".into(),
                    )
                })?;
                Proj::Quant {
                    out: c.vocab_size,
                    matrix: QMatMul::from_qtensor(q)?,
                    bias: None,
                    pad: 0,
                }
            }
        };
        Ok(Self {
            norm,
            embed: Embedding::new(embed_w, h),
            layers,
            lm_head,
            inv_freq: inverse_frequencies(hd, c.rope_theta as f32),
            cfg: c.clone(),
            act_dtype,
            score_budget: 32 << 20,
        })
    }

    /// Token embeddings, [n, hidden].
    pub fn embed(&self, ids: &[u32], device: &Device) -> Result<Tensor> {
        let ids = Tensor::new(ids, device)?;
        Ok(self.embed.forward(&ids)?.to_dtype(self.act_dtype)?)
    }

    /// Run `embeds` ([n, hidden]) at `positions` after what the cache holds; the final-norm
    /// hidden states, [n, hidden].
    pub fn forward(
        &self,
        embeds: &Tensor,
        positions: &[[i64; 3]],
        cache: &mut KvCache,
    ) -> Result<Tensor> {
        let dev = embeds.device().clone();
        let n = embeds.dim(0)?;
        let past = cache.len;
        if cache.layers.len() != self.layers.len() {
            cache.layers = vec![None; self.layers.len()];
        }
        let (cos, sin) = text_cos_sin(positions, &self.inv_freq, self.cfg.mrope_section);
        let half = self.inv_freq.len();
        let cos = Tensor::from_vec(cos, (n, half), &dev)?;
        let sin = Tensor::from_vec(sin, (n, half), &dev)?;
        let mask = if n > 1 {
            let total = past + n;
            let m: Vec<f32> = (0..n)
                .flat_map(|i| {
                    (0..total).map(move |j| if j > past + i { f32::NEG_INFINITY } else { 0.0 })
                })
                .collect();
            Some(Tensor::from_vec(m, (n, total), &dev)?)
        } else {
            None
        };
        let mut x = embeds.clone();
        for (layer, slot) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let h = layer.ln1.forward(&x)?;
            let a =
                layer
                    .attn
                    .forward(&h, &cos, &sin, mask.as_ref(), slot, past, self.score_budget)?;
            x = (x + a)?;
            let h = layer.ln2.forward(&x)?;
            let g = layer.gate.forward(&h)?.silu()?;
            x = (&x + layer.down.forward(&(g * layer.up.forward(&h)?)?)?)?;
        }
        cache.len = past + n;
        Ok(self.norm.forward(&x)?)
    }

    /// Logits, [n, vocab], in f32.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(self.lm_head.forward(hidden)?.to_dtype(DType::F32)?)
    }

    pub fn config(&self) -> &TextConfig {
        &self.cfg
    }
}

/// Write `k`, `v` ([1, kv_heads, n, d]) after the first `past` positions of a layer's
/// buffers (growing them by doubling when full); the keys and values of all `past + n`.
fn append(
    slot: &mut Option<(Tensor, Tensor)>,
    k: &Tensor,
    v: &Tensor,
    past: usize,
) -> Result<(Tensor, Tensor)> {
    let n = k.dim(2)?;
    let need = past + n;
    let room = match slot {
        Some((kb, _)) => kb.dim(2)?,
        None => 0,
    };
    if room < need {
        let mut shape = k.dims().to_vec();
        shape[2] = (2 * need).max(256);
        let nk = Tensor::zeros(shape.as_slice(), k.dtype(), k.device())?;
        let nv = Tensor::zeros(shape.as_slice(), v.dtype(), v.device())?;
        if let (Some((kb, vb)), true) = (slot.as_ref(), past > 0) {
            nk.slice_set(&kb.narrow(2, 0, past)?.contiguous()?, 2, 0)?;
            nv.slice_set(&vb.narrow(2, 0, past)?.contiguous()?, 2, 0)?;
        }
        *slot = Some((nk, nv));
    }
    let Some((kb, vb)) = slot.as_ref() else {
        return Err(crate::model::ModelError::Input("no cache buffer".into()));
    };
    kb.slice_set(&k.contiguous()?, 2, past)?;
    vb.slice_set(&v.contiguous()?, 2, past)?;
    Ok((kb.narrow(2, 0, need)?, vb.narrow(2, 0, need)?))
}

impl Attention {
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        mask: Option<&Tensor>,
        cache: &mut Option<(Tensor, Tensor)>,
        past: usize,
        budget: usize,
    ) -> Result<Tensor> {
        let n = x.dim(0)?;
        let d = self.head_dim;
        let shape = |t: Tensor, heads: usize| -> Result<Tensor> {
            Ok(t.reshape((1, n, heads, d))?.transpose(1, 2)?.contiguous()?)
        };
        let q = shape(self.q.forward(x)?, self.heads)?;
        let k = shape(self.k.forward(x)?, self.kv_heads)?;
        let v = shape(self.v.forward(x)?, self.kv_heads)?;
        // Rotary embeddings in f32; the products in f32 on the CPU and in the working dtype
        // on a GPU, where the cache stays as stored and nothing leaves the device.
        let dtype = q.dtype();
        let prod = product_dtype(x.device(), dtype);
        let q = candle_nn::rotary_emb::rope(&q.to_dtype(DType::F32)?, cos, sin)?.to_dtype(prod)?;
        let k = candle_nn::rotary_emb::rope(&k.to_dtype(DType::F32)?, cos, sin)?.to_dtype(dtype)?;
        let (k, v) = append(cache, &k, &v, past)?;
        let out = attend_grouped(
            &q.squeeze(0)?,
            &k.squeeze(0)?.to_dtype(prod)?,
            &v.squeeze(0)?.to_dtype(prod)?,
            1.0 / (d as f64).sqrt(),
            mask,
            budget,
        )?;
        let out = out
            .transpose(0, 1)?
            .reshape((n, self.heads * d))?
            .to_dtype(dtype)?;
        Ok(self.o.forward(&out)?)
    }
}
