//! `thyme-studio open FILE`: the app on a project.

use std::path::PathBuf;

use thyme_studio::store::SqliteStore;

use super::Failure;

#[derive(clap::Args)]
pub struct OpenCommand {
    file: PathBuf,
}

impl OpenCommand {
    pub fn run(self) -> Result<(), Failure> {
        // Check the file here so a bad path is a one-line error, not a window.
        SqliteStore::open(&self.file)?;
        thyme_studio::app::run(Some(self.file)).map_err(Failure::Internal)
    }
}
