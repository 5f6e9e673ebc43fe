//! Loading a model folder for use: the device chosen (with why), the dtype worked out from
//! the weights and the device (with a note when converted), a memory estimate said before any
//! weight is read, progress while the weights are read, then the model with its tokenizer.

use std::path::Path;

use candle_core::DType;

use super::device::{DevicePreference, choose, working_dtype};
use super::folder::ModelFolder;
use super::generate::LocalModel;
use super::qwen2_5_vl::{Config, LoadProgress, Qwen25Vl, memory_estimate};
use super::tokenizer::ChatTokenizer;
use super::{ModelError, Result};

/// What loading tells the person.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadEvent {
    Device(String),
    Note(String),
    /// Bytes the model is expected to need.
    Estimate(u64),
    Progress(LoadProgress),
}

pub fn parse_dtype(s: &str) -> Option<Option<DType>> {
    match s {
        "auto" => Some(None),
        "f32" | "float32" => Some(Some(DType::F32)),
        "f16" | "float16" => Some(Some(DType::F16)),
        "bf16" | "bfloat16" => Some(Some(DType::BF16)),
        _ => None,
    }
}

/// The dtype the weights were saved in.
pub fn saved_dtype(c: &Config) -> DType {
    match c.torch_dtype.as_str() {
        "float32" => DType::F32,
        "float16" => DType::F16,
        _ => DType::BF16,
    }
}

/// Load a model folder: `dtype` None takes the saved one (converted when the device cannot).
pub fn load_local(
    dir: &Path,
    device: DevicePreference,
    dtype: Option<DType>,
    on: &mut dyn FnMut(LoadEvent),
) -> Result<LocalModel> {
    let folder = ModelFolder::open(dir)?;
    let config = Config::from_json(&folder.config)?;
    let chosen = choose(device).map_err(ModelError::Input)?;
    on(LoadEvent::Device(chosen.message.clone()));
    let (dtype, note) = working_dtype(
        dtype.unwrap_or_else(|| saved_dtype(&config)),
        &chosen.device,
    );
    if let Some(n) = note {
        on(LoadEvent::Note(n));
    }
    on(LoadEvent::Estimate(memory_estimate(
        &config, dtype, 8192, 1280, None,
    )));
    let tokenizer = ChatTokenizer::load(&folder)?;
    let model = Qwen25Vl::load(&folder, &chosen.device, dtype, &mut |p| {
        on(LoadEvent::Progress(p))
    })?;
    Ok(LocalModel::new(model, tokenizer))
}
