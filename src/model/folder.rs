//! A model folder as Hugging Face downloads it: config.json, the weights (one
//! `model.safetensors`, or shards named by `model.safetensors.index.json`), tokenizer.json,
//! the chat template (chat_template.json, chat_template.jinja or tokenizer_config.json),
//! preprocessor_config.json and generation_config.json. Everything is checked before any
//! weight is read, and every missing piece is named.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{ModelError, Result};

#[derive(Debug, Clone)]
pub struct ModelFolder {
    pub dir: PathBuf,
    pub config: Value,
    /// The weight files, in a stable order.
    pub weights: Vec<PathBuf>,
    pub tokenizer: Option<PathBuf>,
    pub chat_template: Option<String>,
    pub preprocessor: Value,
    pub generation: Value,
    /// Extra values from tokenizer_config.json (bos/eos names) for the template.
    pub tokenizer_config: Value,
    /// Quantized weights written by `thyme-studio model quantize` (used instead of the
    /// safetensors when present; Q4K preferred over Q8_0).
    pub quantized: Option<PathBuf>,
}

fn folder_err(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::Folder {
        path: path.display().to_string(),
        message: message.into(),
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| folder_err(path, e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| folder_err(path, format!("not valid JSON: {e}")))
}

fn read_json_if_there(path: &Path) -> Result<Value> {
    if path.exists() {
        read_json(path)
    } else {
        Ok(Value::Null)
    }
}

impl ModelFolder {
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(folder_err(dir, "not a folder"));
        }
        let config_path = dir.join("config.json");
        if !config_path.exists() {
            return Err(folder_err(
                dir,
                "no config.json: is this a Hugging Face model folder?",
            ));
        }
        let config = read_json(&config_path)?;
        let index = dir.join("model.safetensors.index.json");
        let weights = if index.exists() {
            let v = read_json(&index)?;
            let map = v
                .get("weight_map")
                .and_then(Value::as_object)
                .ok_or_else(|| folder_err(&index, "no weight_map"))?;
            let mut files: Vec<String> = map
                .values()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            files.sort();
            files.dedup();
            let mut paths = Vec::new();
            for f in files {
                if f.contains('/') || f.contains("..") {
                    return Err(folder_err(
                        &index,
                        format!("shard name '{f}' leaves the folder"),
                    ));
                }
                let p = dir.join(&f);
                if !p.exists() {
                    return Err(folder_err(
                        &p,
                        "a shard named by the index is missing (the download is incomplete?)",
                    ));
                }
                paths.push(p);
            }
            paths
        } else {
            let single = dir.join("model.safetensors");
            if single.exists() {
                vec![single]
            } else {
                let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
                    .map_err(|e| folder_err(dir, e.to_string()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
                    .collect();
                found.sort();
                if found.is_empty() {
                    return Err(folder_err(dir, "no .safetensors weights"));
                }
                found
            }
        };
        let tokenizer_config = read_json_if_there(&dir.join("tokenizer_config.json"))?;
        let chat_template = {
            let json = read_json_if_there(&dir.join("chat_template.json"))?;
            let jinja = dir.join("chat_template.jinja");
            json.get("chat_template")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| std::fs::read_to_string(&jinja).ok())
                .or_else(|| {
                    tokenizer_config
                        .get("chat_template")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
        };
        let tokenizer = Some(dir.join("tokenizer.json")).filter(|p| p.exists());
        let quantized = ["thyme-studio-q4k.gguf", "thyme-studio-q8_0.gguf"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.exists());
        Ok(Self {
            dir: dir.to_owned(),
            config,
            weights,
            tokenizer,
            chat_template,
            preprocessor: read_json_if_there(&dir.join("preprocessor_config.json"))?,
            generation: read_json_if_there(&dir.join("generation_config.json"))?,
            tokenizer_config,
            quantized,
        })
    }

    /// Leave the quantized file aside: load the safetensors.
    pub fn dense_only(mut self) -> Self {
        self.quantized = None;
        self
    }

    /// Bytes of the weights that will be loaded (the quantized file when there is one).
    pub fn weight_bytes(&self) -> u64 {
        if let Some(q) = &self.quantized {
            return std::fs::metadata(q).map(|m| m.len()).unwrap_or(0);
        }
        self.weights
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }
}
