//! Arguments more than one subcommand takes, defined once: where a model's text comes from
//! (`run`, `curate run`) and which items are chosen (`export`, `curate run`).

use std::path::PathBuf;

/// The model behind `--policy http` (a chat server) or `--policy local` (the on-device model).
#[derive(clap::Args, Debug, Clone)]
pub struct ModelSource {
    /// The chat server for --policy http, e.g. http://127.0.0.1:8000/v1 (or
    /// THYME_STUDIO_BASE_URL; the API key from THYME_STUDIO_API_KEY or OPENAI_API_KEY).
    #[arg(long)]
    pub base_url: Option<String>,
    /// The model name the server serves (--policy http).
    #[arg(long)]
    pub model: Option<String>,
    /// The model folder for --policy local (a Hugging Face Qwen2.5-VL / Thyme-RL download).
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// --policy local: auto, cpu, cuda[:N] or metal[:N].
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// --policy local: auto, f32, f16 or bf16.
    #[arg(long, default_value = "auto")]
    pub dtype: String,
}

impl ModelSource {
    /// The chat server's settings, or the message that says how to give it.
    pub fn http(&self) -> Result<thyme_studio::agent::HttpSettings, String> {
        thyme_studio::agent::HttpSettings::resolve(self.base_url.as_deref(), self.model.as_deref())
            .ok_or_else(|| "--policy http needs --base-url URL (or THYME_STUDIO_BASE_URL)".into())
    }

    /// The on-device model's name in traces: its folder's name.
    pub fn local_label(&self) -> String {
        self.model_dir
            .as_ref()
            .and_then(|d| d.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    }
}

/// Which images and items: the export's filters.
#[derive(clap::Args, Debug, Clone)]
pub struct ItemFilter {
    /// Only images accepted in review, with their items that are not rejected (rejected
    /// items never go out, with or without this).
    #[arg(long)]
    pub accepted_only: bool,
    /// Only these question categories (repeatable).
    #[arg(long = "category")]
    pub categories: Vec<String>,
    /// Only items created by these annotators (repeatable).
    #[arg(long = "annotator")]
    pub annotators: Vec<String>,
    /// Only images under this folder.
    #[arg(long)]
    pub folder: Option<PathBuf>,
}

impl ItemFilter {
    /// The store's filter (the folder made absolute); the rest of it at its defaults.
    pub fn filter(&self) -> thyme_studio::exchange::Filter {
        thyme_studio::exchange::Filter {
            accepted_only: self.accepted_only,
            categories: self.categories.iter().cloned().collect(),
            annotators: self.annotators.iter().cloned().collect(),
            folder: self
                .folder
                .as_ref()
                .map(|f| std::path::absolute(f).unwrap_or(f.clone())),
            ..thyme_studio::exchange::Filter::default()
        }
    }
}
