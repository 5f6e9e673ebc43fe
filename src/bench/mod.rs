//! Benchmarks that measure thyme-studio against named peers in the same run
//! (`thyme-studio bench ...`); the figures go into the README's performance section.

pub mod agent;
pub mod annotate;
pub mod assist;
pub mod audit;
pub mod canvas;
pub mod curate;
pub mod exchange;
pub mod first_pixels;
pub mod images;
pub mod model;
pub mod paging;
pub mod sandbox;
pub mod team_tls;
pub mod trace_stats;
pub mod traces;

/// The `q` quantile of `samples` (nearest rank); NaN (null in JSON) when there are none.
pub fn percentile(samples: &[f64], q: f64) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let i = ((v.len().max(1) - 1) as f64 * q).round() as usize;
    v.get(i).copied().unwrap_or(f64::NAN)
}
