//! `thyme-studio new FILE`: an empty project.

use std::path::PathBuf;

use thyme_studio::store::SqliteStore;

use super::Failure;

#[derive(clap::Args)]
pub struct NewCommand {
    file: PathBuf,
}

impl NewCommand {
    pub fn run(self) -> Result<(), Failure> {
        SqliteStore::create(&self.file)?;
        println!("created {}", self.file.display());
        Ok(())
    }
}
