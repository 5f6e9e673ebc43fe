//! `thyme-studio import-data FILE DATA`: read existing annotations (COCO, canonical JSONL,
//! Thyme RL or SFT JSONL) into a project.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use thyme_studio::exchange::{ImportFormat, ImportSettings};
use thyme_studio::store::SqliteStore;

use super::Failure;
use super::output::print_json;

#[derive(clap::Args)]
pub struct ImportDataCommand {
    file: PathBuf,
    data: PathBuf,
    /// auto, coco, jsonl, thyme-rl or thyme-sft.
    #[arg(long, default_value = "auto")]
    format: String,
    /// Where images with relative paths are (default: the data file's folder).
    #[arg(long)]
    images: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

impl ImportDataCommand {
    pub fn run(self) -> Result<(), Failure> {
        let mut store = SqliteStore::open(&self.file)?;
        let format = match self.format.as_str() {
            "auto" => ImportFormat::detect(&self.data)?,
            other => ImportFormat::parse(other).ok_or_else(|| {
                Failure::user(format!(
                    "unknown format '{other}' (auto, coco, jsonl, thyme-rl, thyme-sft)"
                ))
            })?,
        };
        let settings = ImportSettings {
            images_dir: self.images,
            ..ImportSettings::default()
        };
        let summary = thyme_studio::exchange::import_file(
            &mut store,
            &self.data,
            format,
            &settings,
            &AtomicBool::new(false),
        )?;
        if self.json {
            print_json(&summary)?;
        } else {
            println!("{}", summary.summary());
        }
        Ok(())
    }
}
