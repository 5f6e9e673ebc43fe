//! `thyme-studio stats FILE`: how many images, boxes and questions a project holds.

use std::path::PathBuf;

use thyme_studio::store::{SqliteStore, Store as _};

use super::Failure;
use super::output::print_json;

#[derive(clap::Args)]
pub struct StatsCommand {
    file: PathBuf,
    #[arg(long)]
    json: bool,
}

impl StatsCommand {
    pub fn run(self) -> Result<(), Failure> {
        let store = SqliteStore::open(&self.file)?;
        let stats = store.stats()?;
        if self.json {
            print_json(&stats)?;
        } else {
            println!("{}", self.file.display());
            println!("{stats}");
        }
        Ok(())
    }
}
