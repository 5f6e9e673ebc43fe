//! `thyme-studio cache ...`: the tile cache's size and budget, and clearing it.

use anyhow::Context as _;
use thyme_studio::app::settings::Settings;
use thyme_studio::imagery::disk_cache::{DiskTileCache, default_budget};
use thyme_studio::paths::AppDirs;
use thyme_studio::store::now_ms;

use super::Failure;
use super::output::print_json;

#[derive(clap::Subcommand)]
pub enum CacheCommand {
    /// How much the tile cache holds, its budget, and its images (least recently used first
    /// with --json).
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Remove cached tiles (all, or those of images not shown for DAYS days); they are
    /// rebuilt when their image is opened again.
    Clear {
        #[arg(long, value_name = "DAYS")]
        older_than: Option<f64>,
    },
    /// Set the tile cache's budget (bytes, or with K, M, G, T), or `default` (a tenth of the
    /// free space, at most 20 GiB); the app keeps the cache within it.
    Budget { size: String },
}

/// The budget in force: the settings' or the default.
fn budget(dirs: &AppDirs, settings: &Settings) -> u64 {
    settings
        .tile_cache_bytes
        .unwrap_or_else(|| default_budget(&dirs.cache))
}

fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_uppercase();
    let t = t
        .strip_suffix("IB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(&t);
    let (number, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, ' '),
    };
    let shift = match unit {
        ' ' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        'T' => 40,
        _ => return None,
    };
    let n: f64 = number.trim().parse().ok()?;
    (n.is_finite() && n >= 0.0).then(|| (n * (1u64 << shift) as f64) as u64)
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_048_576 => format!("{:.0} KiB", b / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", b / 1_048_576.0),
        _ => format!("{:.2} GiB", b / 1_073_741_824.0),
    }
}

impl CacheCommand {
    pub fn run(self) -> Result<(), Failure> {
        let dirs = AppDirs::for_user();
        let cache = DiskTileCache::new(&dirs.cache);
        let settings_file = dirs.settings_file();
        let mut settings = Settings::load(&settings_file);
        match self {
            CacheCommand::Stats { json } => {
                let images = cache.usage();
                let total: u64 = images.iter().map(|i| i.bytes).sum();
                let full: u64 = images.iter().map(|i| i.full_res_bytes).sum();
                let budget = budget(&dirs, &settings);
                if json {
                    print_json(&serde_json::json!({
                        "folder": cache.root(),
                        "bytes": total,
                        "full_resolution_bytes": full,
                        "budget_bytes": budget,
                        "budget_from_settings": settings.tile_cache_bytes.is_some(),
                        "images": images,
                    }))?;
                } else {
                    println!("tile cache: {}", cache.root().display());
                    println!(
                        "{} in {} image(s) ({} complete), {} of it full resolution",
                        human(total),
                        images.len(),
                        images.iter().filter(|i| i.complete).count(),
                        human(full)
                    );
                    println!(
                        "budget: {} ({})",
                        human(budget),
                        if settings.tile_cache_bytes.is_some() {
                            "set with `thyme-studio cache budget`"
                        } else {
                            "default: a tenth of the free space, at most 20 GiB"
                        }
                    );
                }
            }
            CacheCommand::Clear { older_than } => {
                let before = match older_than {
                    Some(d) if !(d.is_finite() && d >= 0.0) => {
                        return Err(Failure::User(anyhow::anyhow!(
                            "--older-than takes a number of days, not {d}"
                        )));
                    }
                    Some(d) => Some(now_ms() - (d * 86_400_000.0) as i64),
                    None => None,
                };
                let e = cache
                    .clear(before)
                    .with_context(|| format!("clearing {}", cache.root().display()))?;
                println!(
                    "removed {} image(s), {}; {} left",
                    e.images_removed,
                    human(e.bytes),
                    human(e.left_bytes)
                );
            }
            CacheCommand::Budget { size } => {
                settings.tile_cache_bytes = if size.trim() == "default" {
                    None
                } else {
                    Some(parse_size(&size).ok_or_else(|| {
                        Failure::User(anyhow::anyhow!(
                            "'{size}' is not a size; write bytes or a number with K, M, G or T (like 20G), or `default`"
                        ))
                    })?)
                };
                settings
                    .save(&settings_file)
                    .with_context(|| format!("saving {}", settings_file.display()))?;
                println!(
                    "tile cache budget: {} (the app keeps the cache within it from its next start)",
                    human(budget(&dirs, &settings))
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("20G"), Some(20 << 30));
        assert_eq!(parse_size("512 MiB"), Some(512 << 20));
        assert_eq!(parse_size("1.5g"), Some(3 << 29));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("ten"), None);
        assert_eq!(parse_size("-1G"), None);
    }
}
