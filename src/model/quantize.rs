//! Quantized weights for laptops, written once: the projection matrices of both towers (the
//! language model's attention q/k/v/o, MLP gate/up/down and output head; the vision tower's
//! qkv, proj, MLP gate/up/down and the merger's two layers) in Q8_0 or Q4K, everything else
//! (embeddings, norms, biases, the patch embedding) in f16, as one GGUF file beside the model.
//! Q4K needs rows that are a multiple of 256 values: a matrix whose rows are not falls back to
//! Q8_0, and one whose rows are not a multiple of 32 either (the vision MLP's 3420 inputs) is
//! stored with zero columns up to the next 32 (`proj` pads the input to match); the report
//! names each. Names are stored in the older scheme (`visual.*`, `model.*`). Files of the
//! first format (vision tower in f16) still load.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Tensor};

use super::folder::ModelFolder;
use super::qwen2_5_vl::Config;
use super::{ModelError, Result};

/// The GGUF metadata key that marks our files, and its value.
pub const FORMAT_KEY: &str = "thyme_studio.format";
pub const FORMAT: &str = "qwen2_5_vl-v2";
/// The first format (the vision tower in f16), still read.
pub const FORMAT_V1: &str = "qwen2_5_vl-v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantKind {
    Q8_0,
    Q4K,
}

impl QuantKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "q8_0" | "q8" => Some(Self::Q8_0),
            "q4k" | "q4_k" | "q4_k_m" => Some(Self::Q4K),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Q8_0 => "q8_0",
            Self::Q4K => "q4k",
        }
    }
    fn ggml(self) -> GgmlDType {
        match self {
            Self::Q8_0 => GgmlDType::Q8_0,
            Self::Q4K => GgmlDType::Q4K,
        }
    }
    /// The file a folder's quantized weights go to.
    pub fn file_in(self, dir: &Path) -> PathBuf {
        dir.join(format!("thyme-studio-{}.gguf", self.name()))
    }
}

/// The older naming of a tensor (`model.visual.x` -> `visual.x`, `model.language_model.x` ->
/// `model.x`).
pub fn canonical_name(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("model.visual.") {
        format!("visual.{rest}")
    } else if let Some(rest) = name.strip_prefix("model.language_model.") {
        format!("model.{rest}")
    } else {
        name.to_owned()
    }
}

/// Is this (canonical) tensor one of the projection matrices of either tower?
pub fn is_projection(name: &str) -> bool {
    if name == "lm_head.weight" || name == "visual.merger.mlp.0.weight" {
        return true;
    }
    if name == "visual.merger.mlp.2.weight" {
        return true;
    }
    if let Some(rest) = name.strip_prefix("visual.blocks.") {
        return [
            "attn.qkv.weight",
            "attn.proj.weight",
            "mlp.gate_proj.weight",
            "mlp.up_proj.weight",
            "mlp.down_proj.weight",
        ]
        .iter()
        .any(|s| rest.split_once('.').is_some_and(|(_, tail)| tail == *s));
    }
    let Some(rest) = name.strip_prefix("model.layers.") else {
        return false;
    };
    [
        "self_attn.q_proj.weight",
        "self_attn.k_proj.weight",
        "self_attn.v_proj.weight",
        "self_attn.o_proj.weight",
        "mlp.gate_proj.weight",
        "mlp.up_proj.weight",
        "mlp.down_proj.weight",
    ]
    .iter()
    .any(|s| rest.split_once('.').is_some_and(|(_, tail)| tail == *s))
}

/// Bytes a quantized file of this model will take (projections at the kind's bits per
/// weight, the rest in f16), before writing it.
pub fn expected_bytes(c: &Config, kind: QuantKind) -> u64 {
    let t = &c.text;
    let (h, i) = (t.hidden_size as u64, t.intermediate_size as u64);
    let q = (t.num_attention_heads * t.head_dim) as u64;
    let kv = (t.num_key_value_heads * t.head_dim) as u64;
    let per_layer = h * q + 2 * h * kv + q * h + 3 * h * i;
    let v = &c.vision;
    let (e, vi) = (v.hidden_size as u64, v.intermediate_size as u64);
    let m = e * (v.spatial_merge_size * v.spatial_merge_size) as u64;
    let vision = v.depth as u64 * (4 * e * e + 3 * e * vi) + m * m + m * v.out_hidden_size as u64;
    let projections = t.num_hidden_layers as u64 * per_layer + t.vocab_size as u64 * h + vision;
    // With tied embeddings the file still holds a quantized output head beside them.
    let rest = c.parameters() - projections
        + if t.tie_word_embeddings {
            t.vocab_size as u64 * h
        } else {
            0
        };
    // Q8_0: 34 bytes per 32 weights; Q4K: 144 bytes per 256.
    let quant = match kind {
        QuantKind::Q8_0 => projections * 34 / 32,
        QuantKind::Q4K => projections * 144 / 256,
    };
    quant + rest * 2
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuantReport {
    pub file: PathBuf,
    pub quantized: usize,
    /// Matrices that took Q8_0 because their rows do not fit Q4K's blocks.
    pub fell_back: Vec<String>,
    pub kept_f16: usize,
    pub bytes: u64,
}

fn quantize_one(
    t: &Tensor,
    kind: QuantKind,
    name: &str,
    fell_back: &mut Vec<String>,
) -> Result<QTensor> {
    let cols = t.dims().last().copied().unwrap_or(0);
    let target = kind.ggml();
    if cols % target.block_size() == 0
        && (kind == QuantKind::Q4K || q8_padding(t.dim(0)?, cols) == (0, 0))
    {
        return Ok(QTensor::quantize(t, target)?);
    }
    if kind == QuantKind::Q8_0 {
        let (pad_rows, pad_cols) = q8_padding(t.dim(0)?, cols);
        let t = t
            .pad_with_zeros(candle_core::D::Minus1, 0, pad_cols)?
            .pad_with_zeros(0, 0, pad_rows)?;
        fell_back.push(format!(
            "{name} ({pad_cols} zero columns and {pad_rows} zero rows added)"
        ));
        return Ok(QTensor::quantize(&t, GgmlDType::Q8_0)?);
    }
    let (pad_rows, pad_cols) = q8_padding(t.dim(0)?, cols);
    if pad_rows == 0 && pad_cols == 0 {
        fell_back.push(name.to_owned());
        return Ok(QTensor::quantize(t, GgmlDType::Q8_0)?);
    }
    fell_back.push(format!(
        "{name} (Q8_0, {pad_cols} zero columns and {pad_rows} zero rows added)"
    ));
    let t = t
        .pad_with_zeros(candle_core::D::Minus1, 0, pad_cols)?
        .pad_with_zeros(0, 0, pad_rows)?;
    Ok(QTensor::quantize(&t, GgmlDType::Q8_0)?)
}

/// Zero rows and columns a `rows` x `cols` matrix gets before Q8_0: columns to whole 32-wide
/// blocks, and for a large matrix (1024 or more either way) to a multiple of 256 columns and
/// 8 rows. candle's Q8_0 product on the CPU runs 300-430 GFLOP/s on such shapes here and
/// 32-36 GFLOP/s on others (3420 inputs or 3420 outputs: the vision MLP), against about 200
/// for its f32 `gemm`. `proj` pads the input and cuts the output to match.
pub fn q8_padding(rows: usize, cols: usize) -> (usize, usize) {
    let large = rows >= 1024 || cols >= 1024;
    let (col_align, row_align) = if large { (256, 8) } else { (32, 1) };
    (
        (row_align - rows % row_align) % row_align,
        (col_align - cols % col_align) % col_align,
    )
}

/// Write the folder's quantized weights to `out`.
pub fn quantize_folder(
    folder: &ModelFolder,
    kind: QuantKind,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<QuantReport> {
    let config = Config::from_json(&folder.config)?;
    // SAFETY: read-only maps of the weight files, which must not change while this runs.
    let st = unsafe { candle_core::safetensors::MmapedSafetensors::multi(&folder.weights)? };
    let mut names: Vec<String> = st.tensors().into_iter().map(|(n, _)| n).collect();
    names.sort();
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len() + 1);
    let mut fell_back = Vec::new();
    let (mut quantized, mut kept) = (0, 0);
    let total = names.len();
    let mut embed = None;
    for (i, name) in names.iter().enumerate() {
        progress(i, total);
        let canon = canonical_name(name);
        let mut t = st.load(name, &Device::Cpu)?;
        if t.rank() > 4 {
            // GGUF holds at most 4 dimensions: the patch embedding is stored as a matrix.
            let rows = t.dim(0)?;
            t = t.reshape((rows, t.elem_count() / rows))?;
        }
        let q = if is_projection(&canon) {
            quantized += 1;
            quantize_one(&t, kind, &canon, &mut fell_back)?
        } else {
            kept += 1;
            if canon == "model.embed_tokens.weight" && config.text.tie_word_embeddings {
                embed = Some(t.clone());
            }
            QTensor::quantize(&t, GgmlDType::F16)?
        };
        tensors.push((canon, q));
    }
    if !tensors.iter().any(|(n, _)| n == "lm_head.weight") {
        let e = embed.ok_or_else(|| {
            ModelError::Config("no lm_head.weight and no embeddings to tie it to".into())
        })?;
        tensors.push((
            "lm_head.weight".into(),
            quantize_one(&e, kind, "lm_head.weight", &mut fell_back)?,
        ));
        quantized += 1;
    }
    progress(total, total);
    let tmp = out.with_extension("gguf.partial");
    let io = |e: std::io::Error| ModelError::Folder {
        path: out.display().to_string(),
        message: e.to_string(),
    };
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
        let format = gguf_file::Value::String(FORMAT.into());
        let quant = gguf_file::Value::String(kind.name().into());
        let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, q)| (n.as_str(), q)).collect();
        gguf_file::write(
            &mut f,
            &[(FORMAT_KEY, &format), ("thyme_studio.quantization", &quant)],
            &refs,
        )?;
        use std::io::Write;
        f.flush().map_err(io)?;
        f.get_ref().sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, out).map_err(io)?;
    let bytes = std::fs::metadata(out).map_err(io)?.len();
    Ok(QuantReport {
        file: out.to_owned(),
        quantized,
        fell_back,
        kept_f16: kept,
        bytes,
    })
}

/// The format a quantized file says it has (None: not readable as one of ours).
pub fn file_format(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let content = gguf_file::Content::read(&mut f).ok()?;
    match content.metadata.get(FORMAT_KEY) {
        Some(gguf_file::Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// A quantized file, opened: the small tensors dequantized, the projections kept quantized.
pub struct QuantFile {
    pub dense: HashMap<String, Tensor>,
    pub projections: HashMap<String, QTensor>,
    pub bytes: u64,
}

impl QuantFile {
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        let err = |m: String| ModelError::Folder {
            path: path.display().to_string(),
            message: m,
        };
        let mut f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
        let bytes = f.metadata().map_err(|e| err(e.to_string()))?.len();
        let content =
            gguf_file::Content::read(&mut f).map_err(|e| err(format!("not a GGUF file: {e}")))?;
        match content.metadata.get(FORMAT_KEY) {
            Some(gguf_file::Value::String(s)) if s == FORMAT || s == FORMAT_V1 => {}
            _ => {
                return Err(err(
                    "not a thyme-studio quantized Qwen2.5-VL file (write one with `thyme-studio model quantize`)"
                        .to_owned(),
                ));
            }
        }
        let mut names: Vec<&String> = content.tensor_infos.keys().collect();
        names.sort();
        let mut dense = HashMap::new();
        let mut projections = HashMap::new();
        for name in names {
            let q = content.tensor(&mut f, name, device)?;
            if is_projection(name) {
                projections.insert(name.clone(), q);
            } else {
                dense.insert(name.clone(), q.dequantize(device)?);
            }
        }
        Ok(Self {
            dense,
            projections,
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds() {
        assert_eq!(
            canonical_name("model.visual.blocks.0.norm1.weight"),
            "visual.blocks.0.norm1.weight"
        );
        assert_eq!(
            canonical_name("model.language_model.norm.weight"),
            "model.norm.weight"
        );
        assert!(is_projection("model.layers.3.mlp.down_proj.weight"));
        assert!(is_projection("lm_head.weight"));
        assert!(!is_projection("model.layers.3.self_attn.q_proj.bias"));
        assert!(is_projection("visual.blocks.0.mlp.down_proj.weight"));
        assert!(is_projection("visual.blocks.31.attn.qkv.weight"));
        assert!(is_projection("visual.merger.mlp.2.weight"));
        assert!(!is_projection("visual.blocks.0.attn.qkv.bias"));
        assert!(!is_projection("visual.patch_embed.proj.weight"));
        // Large matrices to candle's fast Q8_0 shapes; small ones to whole blocks only.
        assert_eq!(q8_padding(1280, 3420), (0, 164));
        assert_eq!(q8_padding(3420, 1280), (4, 0));
        assert_eq!(q8_padding(2048, 11008), (0, 0));
        assert_eq!(q8_padding(32, 48), (0, 16));
        assert_eq!(q8_padding(64, 128), (0, 0));
        assert_eq!(QuantKind::parse("Q4_K"), Some(QuantKind::Q4K));
        assert_eq!(QuantKind::parse("q3"), None);
    }

    #[test]
    fn a_7b_in_q4k_fits_in_about_5_gib() {
        let v = serde_json::json!({
            "hidden_size": 3584, "intermediate_size": 18944, "num_attention_heads": 28,
            "num_hidden_layers": 28, "num_key_value_heads": 4, "vocab_size": 152064,
            "rope_scaling": {"mrope_section": [16, 24, 24]},
            "vision_config": {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420,
                "num_heads": 16, "out_hidden_size": 3584}
        });
        let c = Config::from_json(&v).unwrap();
        let gib = expected_bytes(&c, QuantKind::Q4K) as f64 / (1u64 << 30) as f64;
        // Both towers quantized (the vision tower, 0.67 G parameters, was f16 in the first
        // format: 6.0 GiB then).
        assert!((4.8..5.5).contains(&gib), "{gib}");
        let q8 = expected_bytes(&c, QuantKind::Q8_0) as f64 / (1u64 << 30) as f64;
        assert!(q8 > gib && q8 < 10.0, "{q8}");
    }
}
