//! Qwen2.5-VL's config.json: the text model's numbers (top level in older files, under
//! `text_config` in newer ones, which win), the vision tower's (`vision_config`), the special
//! token ids, and the multimodal rotary sections.

use serde_json::Value;

use crate::model::{ModelError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    /// Frequencies given to time, height and width (sums to head_dim / 2).
    pub mrope_section: [usize; 3],
    pub tie_word_embeddings: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VisionConfig {
    pub depth: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_heads: usize,
    pub in_channels: usize,
    pub out_hidden_size: usize,
    pub patch_size: usize,
    pub spatial_merge_size: usize,
    pub temporal_patch_size: usize,
    /// Window side in pixels (112: 8x8 patches).
    pub window_size: usize,
    pub fullatt_block_indexes: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub text: TextConfig,
    pub vision: VisionConfig,
    pub image_token_id: u32,
    pub video_token_id: u32,
    pub vision_start_token_id: u32,
    pub vision_end_token_id: u32,
    /// The dtype the weights were saved in ("bfloat16", "float16", "float32").
    pub torch_dtype: String,
    pub architecture: String,
}

fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

struct Fields<'a> {
    /// Looked up in order: `text_config`, then the top level.
    layers: Vec<&'a Value>,
    what: &'static str,
}

impl Fields<'_> {
    fn value(&self, key: &str) -> Option<&Value> {
        self.layers.iter().find_map(|l| get(l, key))
    }
    fn usize(&self, key: &str) -> Result<usize> {
        self.value(key)
            .and_then(Value::as_u64)
            .map(|n| n as usize)
            .ok_or_else(|| ModelError::Config(format!("{}: no whole number `{key}`", self.what)))
    }
    fn usize_or(&self, key: &str, default: usize) -> usize {
        self.value(key)
            .and_then(Value::as_u64)
            .map_or(default, |n| n as usize)
    }
    fn f64_or(&self, key: &str, default: f64) -> f64 {
        self.value(key).and_then(Value::as_f64).unwrap_or(default)
    }
    fn bool_or(&self, key: &str, default: bool) -> bool {
        self.value(key).and_then(Value::as_bool).unwrap_or(default)
    }
}

impl Config {
    pub fn from_json(v: &Value) -> Result<Self> {
        let mut layers = Vec::new();
        if let Some(t) = get(v, "text_config") {
            layers.push(t);
        }
        layers.push(v);
        let t = Fields {
            layers,
            what: "text",
        };
        let hidden_size = t.usize("hidden_size")?;
        let num_attention_heads = t.usize("num_attention_heads")?;
        if num_attention_heads == 0 || hidden_size % num_attention_heads != 0 {
            return Err(ModelError::Config(format!(
                "hidden_size {hidden_size} is not a multiple of num_attention_heads {num_attention_heads}"
            )));
        }
        let head_dim = t.usize_or("head_dim", hidden_size / num_attention_heads);
        let num_key_value_heads = t.usize_or("num_key_value_heads", num_attention_heads);
        if num_key_value_heads == 0 || num_attention_heads % num_key_value_heads != 0 {
            return Err(ModelError::Config(format!(
                "num_attention_heads {num_attention_heads} is not a multiple of num_key_value_heads {num_key_value_heads}"
            )));
        }
        let scaling = t
            .value("rope_scaling")
            .or_else(|| t.value("rope_parameters"));
        let section: Vec<usize> = scaling
            .and_then(|s| get(s, "mrope_section"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_u64)
                    .map(|n| n as usize)
                    .collect()
            })
            .unwrap_or_else(|| vec![16, 24, 24]);
        let mrope_section: [usize; 3] = section.try_into().map_err(|s: Vec<usize>| {
            ModelError::Config(format!("mrope_section has {} parts, not 3", s.len()))
        })?;
        if mrope_section.iter().sum::<usize>() * 2 != head_dim {
            return Err(ModelError::Config(format!(
                "mrope_section {mrope_section:?} does not cover head_dim {head_dim} (its sum must be head_dim / 2)"
            )));
        }
        let rope_theta = t
            .value("rope_theta")
            .or_else(|| scaling.and_then(|s| get(s, "rope_theta")))
            .and_then(Value::as_f64)
            .unwrap_or(1_000_000.0);
        let text = TextConfig {
            vocab_size: t.usize("vocab_size")?,
            hidden_size,
            intermediate_size: t.usize("intermediate_size")?,
            num_hidden_layers: t.usize("num_hidden_layers")?,
            num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: t.f64_or("rms_norm_eps", 1e-6),
            rope_theta,
            mrope_section,
            tie_word_embeddings: t.bool_or("tie_word_embeddings", false),
        };
        let vc =
            get(v, "vision_config").ok_or_else(|| ModelError::Config("no vision_config".into()))?;
        let f = Fields {
            layers: vec![vc],
            what: "vision_config",
        };
        let vhidden = f.usize_or("hidden_size", f.usize_or("embed_dim", 1280));
        let vheads = f.usize_or("num_heads", 16);
        if vheads == 0 || !vhidden.is_multiple_of(vheads) || !(vhidden / vheads).is_multiple_of(4) {
            return Err(ModelError::Config(format!(
                "vision hidden_size {vhidden} with {vheads} heads: the head size must be a multiple of 4"
            )));
        }
        let fullatt_block_indexes = get(vc, "fullatt_block_indexes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_u64)
                    .map(|n| n as usize)
                    .collect()
            })
            .unwrap_or_else(|| vec![7, 15, 23, 31]);
        let vision = VisionConfig {
            depth: f.usize_or("depth", 32),
            hidden_size: vhidden,
            intermediate_size: f.usize_or("intermediate_size", 3420),
            num_heads: vheads,
            in_channels: f.usize_or("in_channels", f.usize_or("in_chans", 3)),
            out_hidden_size: f.usize_or("out_hidden_size", hidden_size),
            patch_size: f.usize_or("patch_size", f.usize_or("spatial_patch_size", 14)),
            spatial_merge_size: f.usize_or("spatial_merge_size", 2),
            temporal_patch_size: f.usize_or("temporal_patch_size", 2),
            window_size: f.usize_or("window_size", 112),
            fullatt_block_indexes,
        };
        if vision.out_hidden_size != hidden_size {
            return Err(ModelError::Config(format!(
                "the vision tower gives {} values per token, the text model takes {hidden_size}",
                vision.out_hidden_size
            )));
        }
        if vision.window_size / vision.spatial_merge_size / vision.patch_size == 0 {
            return Err(ModelError::Config(format!(
                "window_size {} is smaller than one merged patch",
                vision.window_size
            )));
        }
        let top = Fields {
            layers: vec![v],
            what: "config",
        };
        let id = |key: &str, default: usize| top.usize_or(key, default) as u32;
        Ok(Self {
            text,
            vision,
            image_token_id: id("image_token_id", 151_655),
            video_token_id: id("video_token_id", 151_656),
            vision_start_token_id: id("vision_start_token_id", 151_652),
            vision_end_token_id: id("vision_end_token_id", 151_653),
            torch_dtype: get(v, "torch_dtype")
                .or_else(|| get(v, "dtype"))
                .and_then(Value::as_str)
                .unwrap_or("bfloat16")
                .to_owned(),
            architecture: get(v, "architectures")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
                .unwrap_or("Qwen2_5_VLForConditionalGeneration")
                .to_owned(),
        })
    }

    /// Parameters, counted from the shapes (embeddings and lm_head included).
    pub fn parameters(&self) -> u64 {
        let t = &self.text;
        let (h, i, v) = (
            t.hidden_size as u64,
            t.intermediate_size as u64,
            t.vocab_size as u64,
        );
        let kv = (t.num_key_value_heads * t.head_dim) as u64;
        let q = (t.num_attention_heads * t.head_dim) as u64;
        let attn = h * q + q + 2 * (h * kv + kv) + q * h;
        let mlp = 3 * h * i;
        let layer = attn + mlp + 2 * h;
        let lm_head = if t.tie_word_embeddings { 0 } else { v * h };
        let text = v * h + t.num_hidden_layers as u64 * layer + h + lm_head;
        let c = &self.vision;
        let (e, vi) = (c.hidden_size as u64, c.intermediate_size as u64);
        let patch = (c.in_channels * c.temporal_patch_size * c.patch_size * c.patch_size) as u64;
        let block = 2 * e + (e * 3 * e + 3 * e) + (e * e + e) + 2 * (e * vi + vi) + (vi * e + e);
        let m = e * (c.spatial_merge_size * c.spatial_merge_size) as u64;
        let merger = e + (m * m + m) + (m * c.out_hidden_size as u64 + c.out_hidden_size as u64);
        text + patch * e + c.depth as u64 * block + merger
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seven_b() -> Value {
        serde_json::json!({
            "architectures": ["Qwen2_5_VLForConditionalGeneration"],
            "hidden_size": 3584, "intermediate_size": 18944, "num_attention_heads": 28,
            "num_hidden_layers": 28, "num_key_value_heads": 4, "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0, "vocab_size": 152064, "tie_word_embeddings": false,
            "torch_dtype": "bfloat16",
            "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
            "vision_config": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420,
                "num_heads": 16, "in_chans": 3, "out_hidden_size": 3584, "patch_size": 14,
                "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
                "fullatt_block_indexes": [7, 15, 23, 31]}
        })
    }

    #[test]
    fn the_7b_config_reads_and_counts_about_8_3_billion_parameters() {
        let c = Config::from_json(&seven_b()).unwrap();
        assert_eq!(c.text.head_dim, 128);
        assert_eq!(c.vision.fullatt_block_indexes, vec![7, 15, 23, 31]);
        assert_eq!(c.image_token_id, 151_655);
        let p = c.parameters() as f64 / 1e9;
        // Qwen2.5-VL-7B is published as 8.29 B parameters.
        assert!((p - 8.29).abs() < 0.02, "{p}");
    }

    #[test]
    fn text_config_wins_and_bad_sections_are_refused() {
        let mut v = seven_b();
        v["text_config"] = serde_json::json!({"num_hidden_layers": 2});
        assert_eq!(Config::from_json(&v).unwrap().text.num_hidden_layers, 2);
        v["rope_scaling"]["mrope_section"] = serde_json::json!([16, 24]);
        let e = Config::from_json(&v).unwrap_err().to_string();
        assert!(e.contains("3"), "{e}");
        v["rope_scaling"]["mrope_section"] = serde_json::json!([16, 24, 25]);
        assert!(Config::from_json(&v).is_err());
        let mut w = seven_b();
        w.as_object_mut().unwrap().remove("vision_config");
        assert!(
            Config::from_json(&w)
                .unwrap_err()
                .to_string()
                .contains("vision_config")
        );
    }
}
