//! On-device vision-language models on candle: Qwen2.5-VL (Thyme-RL is a Qwen2.5-VL-7B
//! fine-tune) implemented here on candle-core/candle-nn, loaded from a local Hugging Face
//! folder as it is downloaded; its tokenizer and chat template; generation that continues an
//! open assistant turn with a KV cache; device choice and memory estimates. No egui here.

pub mod device;
pub mod folder;
pub mod generate;
pub mod load;
pub mod quantize;
pub mod qwen2_5_vl;
pub mod sampling;
pub mod tiny;
pub mod tokenizer;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ModelError {
    #[error("{path}: {message}")]
    Folder { path: String, message: String },
    #[error("config.json: {0}")]
    Config(String),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("image: {0}")]
    Image(String),
    #[error("the model's input is not valid: {0}")]
    Input(String),
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Candle(#[from] candle_core::Error),
}

pub type Result<T> = std::result::Result<T, ModelError>;
