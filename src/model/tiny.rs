//! Tiny random-weight Qwen2.5-VL folders, written with seeded weights: a byte-level tokenizer
//! with Qwen's special tokens, a ChatML chat template, config, preprocessor and generation
//! files, and the weights in the newer naming (`model.visual.*`, `model.language_model.*`,
//! embeddings tied). Tests load them through the same path as a downloaded model; a person can
//! try the local policy's plumbing with one (its text is random, and labelled so).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::json;

use super::{ModelError, Result};
use crate::rng::Rng;

/// The special tokens, from id 256 on (after the 256 byte tokens).
pub const SPECIALS: [&str; 7] = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
];

/// A ChatML template with Qwen's vision markers, written for these tiny folders.
pub const CHAT_TEMPLATE: &str = "{% for m in messages %}\
{% if loop.first and m.role != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}\
<|im_start|>{{ m.role }}\n\
{% if m.content is string %}{{ m.content }}{% else %}{% for part in m.content %}\
{% if part.type == 'image' or 'image' in part or 'image_url' in part %}<|vision_start|><|image_pad|><|vision_end|>\
{% elif 'text' in part %}{{ part.text }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}\
{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

#[derive(Debug, Clone)]
pub struct TinyOptions {
    pub seed: u64,
    /// Window side in pixels (56: 2x2 merged units).
    pub window_size: usize,
    pub vision_depth: usize,
    pub fullatt_block_indexes: Vec<usize>,
    pub text_layers: usize,
}

impl Default for TinyOptions {
    fn default() -> Self {
        Self {
            seed: 11,
            window_size: 56,
            vision_depth: 3,
            fullatt_block_indexes: vec![1],
            text_layers: 2,
        }
    }
}

pub const VOCAB: usize = 256 + SPECIALS.len() + 1;
const HIDDEN: usize = 64;
const HEADS: usize = 4;
const KV_HEADS: usize = 2;
const INTER: usize = 128;
const V_HIDDEN: usize = 32;
const V_HEADS: usize = 2;
const V_INTER: usize = 48;

/// GPT-2's byte-to-character map (printable bytes stand for themselves).
fn byte_chars() -> Vec<char> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut extra = 0;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap_or('?')
            } else {
                extra += 1;
                char::from_u32(255 + extra).unwrap_or('?')
            }
        })
        .collect()
}

fn tokenizer_json() -> serde_json::Value {
    let vocab: serde_json::Map<String, serde_json::Value> = byte_chars()
        .into_iter()
        .enumerate()
        .map(|(i, c)| (c.to_string(), json!(i)))
        .collect();
    let added: Vec<serde_json::Value> = SPECIALS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            json!({"id": 256 + i, "content": s, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": []}
    })
}

fn config_json(o: &TinyOptions) -> serde_json::Value {
    let text = json!({
        "vocab_size": VOCAB, "hidden_size": HIDDEN, "intermediate_size": INTER,
        "num_hidden_layers": o.text_layers, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
        "tie_word_embeddings": true, "hidden_act": "silu"
    });
    json!({
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        "dtype": "float32",
        "text_config": text,
        "tie_word_embeddings": true,
        "image_token_id": 261, "video_token_id": 262,
        "vision_start_token_id": 259, "vision_end_token_id": 260,
        "vision_config": {
            "depth": o.vision_depth, "hidden_size": V_HIDDEN, "intermediate_size": V_INTER,
            "num_heads": V_HEADS, "in_channels": 3, "out_hidden_size": HIDDEN, "patch_size": 14,
            "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": o.window_size,
            "fullatt_block_indexes": o.fullatt_block_indexes
        }
    })
}

/// Seeded weights, uniform in (-scale, scale) around `center`.
fn weights(rng: &mut Rng, shape: &[usize], center: f32, scale: f32) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| center + scale * (2.0 * rng.unit() as f32 - 1.0))
        .collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
}

/// Write a tiny model folder into `dir` (created if needed).
pub fn write_tiny(dir: &Path, o: &TinyOptions) -> Result<()> {
    let io = |e: std::io::Error| ModelError::Folder {
        path: dir.display().to_string(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut rng = Rng::new(o.seed);
    let mut t: HashMap<String, Tensor> = HashMap::new();
    let mut put = |name: String, shape: &[usize], center: f32, scale: f32| -> Result<()> {
        t.insert(name, weights(&mut rng, shape, center, scale)?);
        Ok(())
    };
    let v = "model.visual";
    let e = V_HIDDEN;
    put(
        format!("{v}.patch_embed.proj.weight"),
        &[e, 3, 2, 14, 14],
        0.0,
        0.05,
    )?;
    for i in 0..o.vision_depth {
        let b = format!("{v}.blocks.{i}");
        put(format!("{b}.norm1.weight"), &[e], 1.0, 0.1)?;
        put(format!("{b}.norm2.weight"), &[e], 1.0, 0.1)?;
        put(format!("{b}.attn.qkv.weight"), &[3 * e, e], 0.0, 0.3)?;
        put(format!("{b}.attn.qkv.bias"), &[3 * e], 0.0, 0.05)?;
        put(format!("{b}.attn.proj.weight"), &[e, e], 0.0, 0.2)?;
        put(format!("{b}.attn.proj.bias"), &[e], 0.0, 0.05)?;
        put(format!("{b}.mlp.gate_proj.weight"), &[V_INTER, e], 0.0, 0.2)?;
        put(format!("{b}.mlp.gate_proj.bias"), &[V_INTER], 0.0, 0.05)?;
        put(format!("{b}.mlp.up_proj.weight"), &[V_INTER, e], 0.0, 0.2)?;
        put(format!("{b}.mlp.up_proj.bias"), &[V_INTER], 0.0, 0.05)?;
        put(format!("{b}.mlp.down_proj.weight"), &[e, V_INTER], 0.0, 0.2)?;
        put(format!("{b}.mlp.down_proj.bias"), &[e], 0.0, 0.05)?;
    }
    put(format!("{v}.merger.ln_q.weight"), &[e], 1.0, 0.1)?;
    put(
        format!("{v}.merger.mlp.0.weight"),
        &[4 * e, 4 * e],
        0.0,
        0.1,
    )?;
    put(format!("{v}.merger.mlp.0.bias"), &[4 * e], 0.0, 0.05)?;
    put(
        format!("{v}.merger.mlp.2.weight"),
        &[HIDDEN, 4 * e],
        0.0,
        0.1,
    )?;
    put(format!("{v}.merger.mlp.2.bias"), &[HIDDEN], 0.0, 0.05)?;
    let l = "model.language_model";
    let (h, d) = (HIDDEN, HIDDEN / HEADS);
    put(format!("{l}.embed_tokens.weight"), &[VOCAB, h], 0.0, 0.5)?;
    for i in 0..o.text_layers {
        let b = format!("{l}.layers.{i}");
        put(format!("{b}.input_layernorm.weight"), &[h], 1.0, 0.1)?;
        put(
            format!("{b}.post_attention_layernorm.weight"),
            &[h],
            1.0,
            0.1,
        )?;
        put(
            format!("{b}.self_attn.q_proj.weight"),
            &[HEADS * d, h],
            0.0,
            0.2,
        )?;
        put(
            format!("{b}.self_attn.q_proj.bias"),
            &[HEADS * d],
            0.0,
            0.05,
        )?;
        put(
            format!("{b}.self_attn.k_proj.weight"),
            &[KV_HEADS * d, h],
            0.0,
            0.2,
        )?;
        put(
            format!("{b}.self_attn.k_proj.bias"),
            &[KV_HEADS * d],
            0.0,
            0.05,
        )?;
        put(
            format!("{b}.self_attn.v_proj.weight"),
            &[KV_HEADS * d, h],
            0.0,
            0.2,
        )?;
        put(
            format!("{b}.self_attn.v_proj.bias"),
            &[KV_HEADS * d],
            0.0,
            0.05,
        )?;
        put(
            format!("{b}.self_attn.o_proj.weight"),
            &[h, HEADS * d],
            0.0,
            0.2,
        )?;
        put(format!("{b}.mlp.gate_proj.weight"), &[INTER, h], 0.0, 0.2)?;
        put(format!("{b}.mlp.up_proj.weight"), &[INTER, h], 0.0, 0.2)?;
        put(format!("{b}.mlp.down_proj.weight"), &[h, INTER], 0.0, 0.2)?;
    }
    put(format!("{l}.norm.weight"), &[h], 1.0, 0.1)?;
    candle_core::safetensors::save(&t, dir.join("model.safetensors"))?;
    let write = |name: &str, v: serde_json::Value| -> Result<()> {
        let text =
            serde_json::to_string_pretty(&v).map_err(|e| ModelError::Config(e.to_string()))?;
        std::fs::write(dir.join(name), text).map_err(io)
    };
    write("config.json", config_json(o))?;
    write("tokenizer.json", tokenizer_json())?;
    write(
        "tokenizer_config.json",
        json!({"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "chat_template": CHAT_TEMPLATE}),
    )?;
    write(
        "preprocessor_config.json",
        json!({"min_pixels": 3136, "max_pixels": 200704, "patch_size": 14, "temporal_patch_size": 2,
               "merge_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
               "image_std": [0.26862954, 0.26130258, 0.27577711]}),
    )?;
    write(
        "generation_config.json",
        json!({"eos_token_id": [256, 258]}),
    )?;
    std::fs::write(
        dir.join("README.txt"),
        "A tiny Qwen2.5-VL with random weights written by thyme-studio: it loads and runs like a \
         real model, and its text is random. For tests and for trying the local policy's plumbing.\n",
    )
    .map_err(io)
}
