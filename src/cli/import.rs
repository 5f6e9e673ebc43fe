//! `thyme-studio import FILE PATHS...`: add images (files, or folders searched recursively).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use thyme_studio::imagery::PixelBudget;
use thyme_studio::import::{ImportOptions, ImportReport};
use thyme_studio::store::SqliteStore;

use super::Failure;
use super::output::{print_json, progress_bar};

#[derive(clap::Args)]
pub struct ImportCommand {
    file: PathBuf,
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Refuse images with more pixels than this (default: one gigapixel).
    #[arg(long, default_value_t = PixelBudget::DEFAULT.0)]
    max_pixels: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

impl ImportCommand {
    pub fn run(self) -> Result<(), Failure> {
        let mut store = SqliteStore::open(&self.file)?;
        let options = ImportOptions {
            budget: PixelBudget(self.max_pixels),
            ..ImportOptions::default()
        };
        let bar = progress_bar();
        let started = Instant::now();
        let cancel = AtomicBool::new(false);
        let report =
            thyme_studio::import::import(&mut store, &self.paths, &options, &cancel, &mut |p| {
                bar.set_length(p.total as u64);
                bar.set_position(p.done as u64);
                bar.set_message(p.current.display().to_string());
            })?;
        bar.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64();
        if self.json {
            print_json(&report)?;
        } else {
            print_report(&report, seconds);
        }
        Ok(())
    }
}

fn print_report(report: &ImportReport, seconds: f64) {
    for (path, reason, message) in report.skipped() {
        println!("skipped ({}): {message}", reason.as_str());
        tracing::debug!(path = %path.display(), "skipped");
    }
    for (path, warning) in report.warnings() {
        println!("warning: {}: {warning}", path.display());
    }
    let added = report.added();
    let skipped = report.skipped().count();
    let rate = if seconds > 0.0 {
        added as f64 / seconds
    } else {
        0.0
    };
    println!(
        "added {added}, skipped {skipped}, ignored {} other file(s), in {seconds:.2} s ({rate:.1} images/s)",
        report.ignored_other_files
    );
}
