//! Statistics over 10,000 runs: the `bench traces` file (about 1 GB, every image embedded as
//! base64, as RL logs keep them) read whole, then `trace::stats::compute` over it; the read
//! and the computation timed apart, the page cache warm.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::trace::readers::{LogFormat, read};
use crate::trace::stats;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub runs: usize,
    pub file_mb: f64,
    /// Reading and parsing every run with its steps.
    pub read_s: f64,
    /// The statistics from the parsed runs.
    pub compute_s: f64,
    pub groups: usize,
    pub accuracy: Option<f64>,
}

pub fn run(dir: &Path, runs: usize) -> anyhow::Result<Report> {
    let file = super::traces::make_file(dir, runs)?;
    let file_mb = std::fs::metadata(&file)?.len() as f64 / 1e6;
    std::io::copy(&mut std::fs::File::open(&file)?, &mut std::io::sink())?;
    let started = Instant::now();
    let loaded = read(&file, LogFormat::Ours)?;
    let read_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        loaded.traces.len() == runs,
        "read {} of {runs} runs",
        loaded.traces.len()
    );
    let started = Instant::now();
    let s = stats::compute(&loaded.traces);
    let compute_s = started.elapsed().as_secs_f64();
    Ok(Report {
        runs,
        file_mb,
        read_s,
        compute_s,
        groups: s.groups.len(),
        accuracy: s.accuracy,
    })
}
