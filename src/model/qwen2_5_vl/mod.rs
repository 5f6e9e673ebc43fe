//! Qwen2.5-VL on candle: the vision tower, the language model with multimodal rotary
//! positions, the image processor, and loading from a Hugging Face folder whose weights are
//! named either `visual.*` / `model.*` or `model.visual.*` / `model.language_model.*`.

pub mod attention;
pub mod config;
pub mod processor;
pub mod proj;
pub mod rope;
pub mod text;
pub mod vision;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

pub use config::Config;
pub use processor::{Patches, ProcessorConfig, preprocess, smart_resize};
pub use text::KvCache;

use super::folder::ModelFolder;
use super::{ModelError, Result};

/// Where loading is.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadProgress {
    pub stage: &'static str,
    pub done: usize,
    pub total: usize,
}

impl LoadProgress {
    pub fn at(stage: &'static str, done: usize, total: usize) -> Self {
        Self { stage, done, total }
    }
}

pub struct Qwen25Vl {
    pub config: Config,
    pub processor: ProcessorConfig,
    pub vision: vision::VisionTower,
    pub text: text::TextModel,
    pub device: Device,
    pub dtype: DType,
}

/// The two naming schemes of the checkpoints: (vision root, text root).
fn roots(names: &dyn Fn(&str) -> bool) -> Result<(&'static str, &'static str)> {
    if names("model.visual.patch_embed.proj.weight") {
        Ok(("model.visual", "model.language_model"))
    } else if names("visual.patch_embed.proj.weight") {
        Ok(("visual", "model"))
    } else {
        Err(ModelError::Config(
            "no Qwen2.5-VL vision weights (visual.* or model.visual.*) in the safetensors files"
                .into(),
        ))
    }
}

impl Qwen25Vl {
    /// Load from a model folder onto `device` in `dtype` (weights are converted as read).
    pub fn load(
        folder: &ModelFolder,
        device: &Device,
        dtype: DType,
        progress: &mut dyn FnMut(LoadProgress),
    ) -> Result<Self> {
        let config = Config::from_json(&folder.config)?;
        let processor = ProcessorConfig::from_json(&folder.preprocessor);
        if let Some(q) = &folder.quantized {
            return Self::load_quantized(config, processor, q, device, dtype, progress);
        }
        // SAFETY: the files are memory-mapped read-only; like every mmap reader we rely on them
        // not being truncated while the model is loading (they are copied into tensors).
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&folder.weights, dtype, device)? };
        let (vroot, troot) = roots(&|n| vb.contains_tensor(n))?;
        let vision = vision::VisionTower::load(vb.pp(vroot), &config.vision, None, &mut |d, t| {
            progress(LoadProgress::at("vision tower", d, t))
        })?;
        let head = vb
            .contains_tensor("lm_head.weight")
            .then(|| vb.pp("lm_head"));
        if head.is_none() && !config.text.tie_word_embeddings {
            return Err(ModelError::Config(
                "no lm_head.weight, and the config does not tie it to the embeddings".into(),
            ));
        }
        let weights = text::TextWeights::Dense {
            vb: vb.pp(troot),
            head,
        };
        let text = text::TextModel::load(weights, &config.text, &mut |d, t| {
            progress(LoadProgress::at("language model", d, t))
        })?;
        progress(LoadProgress::at("ready", 1, 1));
        Ok(Self {
            config,
            processor,
            vision,
            text,
            device: device.clone(),
            dtype,
        })
    }

    /// From a quantized file (`thyme-studio model quantize`): both towers' projections
    /// quantized (computed in f32), the rest of the vision tower in `dtype` (all of it, from a
    /// first-format file), the language model's activations in f32.
    fn load_quantized(
        config: Config,
        processor: ProcessorConfig,
        path: &std::path::Path,
        device: &Device,
        dtype: DType,
        progress: &mut dyn FnMut(LoadProgress),
    ) -> Result<Self> {
        progress(LoadProgress::at("quantized file", 0, 1));
        let mut file = super::quantize::QuantFile::open(path, device)?;
        let embed = file
            .dense
            .get("model.embed_tokens.weight")
            .cloned()
            .ok_or_else(|| ModelError::Config("the quantized file has no embeddings".into()))?;
        let mut dense = std::mem::take(&mut file.dense);
        // The patch embedding was stored as a matrix (GGUF holds 4 dimensions at most).
        let v = &config.vision;
        if let Some(w) = dense.get_mut("visual.patch_embed.proj.weight") {
            *w = w.reshape((
                v.hidden_size,
                v.in_channels,
                v.temporal_patch_size,
                v.patch_size,
                v.patch_size,
            ))?;
        }
        let vision_vb = VarBuilder::from_tensors(dense.clone(), dtype, device);
        let vision = vision::VisionTower::load(
            vision_vb.pp("visual"),
            &config.vision,
            Some(&mut file.projections),
            &mut |d, t| progress(LoadProgress::at("vision tower", d, t)),
        )?;
        let small = VarBuilder::from_tensors(dense, DType::F32, device);
        let weights = text::TextWeights::Quantized {
            vb: small.pp("model"),
            embed,
            projections: &mut file.projections,
        };
        let text = text::TextModel::load(weights, &config.text, &mut |d, t| {
            progress(LoadProgress::at("language model", d, t))
        })?;
        progress(LoadProgress::at("ready", 1, 1));
        Ok(Self {
            config,
            processor,
            vision,
            text,
            device: device.clone(),
            dtype,
        })
    }

    /// Embeddings of one preprocessed image, [tokens, hidden].
    pub fn encode_image(&self, p: &Patches) -> Result<Tensor> {
        let px = self
            .vision
            .pixels(&p.values, p.rows(), p.row_len, self.dtype, &self.device)?;
        self.vision.forward(&px, &[p.grid])
    }

    /// Run `ids` (a chunk that follows what `cache` holds) at `positions`, with image
    /// embeddings put in place of the image tokens: `images` are (index in the chunk of the
    /// first image token, embeddings). The final hidden states, [n, hidden].
    pub fn forward(
        &self,
        ids: &[u32],
        positions: &[[i64; 3]],
        images: &[(usize, Tensor)],
        cache: &mut KvCache,
    ) -> Result<Tensor> {
        if ids.len() != positions.len() {
            return Err(ModelError::Input(format!(
                "{} tokens but {} positions",
                ids.len(),
                positions.len()
            )));
        }
        if ids.is_empty() {
            return Err(ModelError::Input("nothing to run".into()));
        }
        let text = self.text.embed(ids, &self.device)?;
        let embeds = if images.is_empty() {
            text
        } else {
            let mut parts = Vec::new();
            let mut at = 0;
            for (start, emb) in images {
                let n = emb.dim(0)?;
                if *start < at || start + n > ids.len() {
                    return Err(ModelError::Input(
                        "image embeddings overlap or overrun".into(),
                    ));
                }
                if *start > at {
                    parts.push(text.narrow(0, at, start - at)?);
                }
                parts.push(emb.to_dtype(text.dtype())?);
                at = start + n;
            }
            if at < ids.len() {
                parts.push(text.narrow(0, at, ids.len() - at)?);
            }
            Tensor::cat(&parts, 0)?
        };
        self.text.forward(&embeds, positions, cache)
    }

    /// Logits [n, vocab] (f32) of hidden states.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        self.text.logits(hidden)
    }
}

/// Bytes a model needs: weights at `dtype` (or `weight_bytes` for a quantized file), the KV
/// cache for `context` tokens, and the vision tower's working set for one image of
/// `image_tokens` tokens.
pub fn memory_estimate(
    c: &Config,
    dtype: DType,
    context: usize,
    image_tokens: usize,
    weight_bytes: Option<u64>,
) -> u64 {
    let b = dtype.size_in_bytes() as u64;
    let weights = weight_bytes.unwrap_or(c.parameters() * b);
    let t = &c.text;
    let kv = (t.num_hidden_layers * 2 * t.num_key_value_heads * t.head_dim * context) as u64 * b;
    let patches = (image_tokens * 4) as u64;
    let vision =
        patches * (c.vision.hidden_size as u64 * 8 + c.vision.intermediate_size as u64 * 3) * 4
            + (32u64 << 20) * 4;
    weights + kv + vision
}
