//! Project statistics, as shown by `thyme-studio stats` and the status bar.

use std::collections::BTreeMap;

use serde::Serialize;

/// Counts over a whole project. Maps are sorted by key so output is stable.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProjectStats {
    pub images: u64,
    /// Images whose file is not at its recorded path.
    pub images_missing: u64,
    /// Images whose longest side is at most 2048 px.
    pub images_low_resolution: u64,
    pub regions: u64,
    /// Boxes covering more than 5 % of their image (not usable as small-object targets).
    pub regions_over_area_limit: u64,
    pub questions: u64,
    pub questions_by_category: BTreeMap<String, u64>,
    pub questions_by_status: BTreeMap<String, u64>,
    pub questions_by_kind: BTreeMap<String, u64>,
    /// Images per work status (todo, in_progress, done).
    pub images_by_status: BTreeMap<String, u64>,
    pub journal_entries: u64,
}

impl std::fmt::Display for ProjectStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "images     {:>8}  ({} missing, {} with longest side <= 2048 px)",
            self.images, self.images_missing, self.images_low_resolution
        )?;
        writeln!(
            f,
            "boxes      {:>8}  ({} over 5 % of their image)",
            self.regions, self.regions_over_area_limit
        )?;
        writeln!(f, "questions  {:>8}", self.questions)?;
        for (title, map) in [
            ("by category", &self.questions_by_category),
            ("by status", &self.questions_by_status),
            ("by kind", &self.questions_by_kind),
            ("images by status", &self.images_by_status),
        ] {
            if map.is_empty() {
                continue;
            }
            writeln!(f, "  {title}:")?;
            for (k, v) in map {
                writeln!(f, "    {k:<14}{v:>8}")?;
            }
        }
        write!(f, "journal    {:>8}  entries", self.journal_entries)
    }
}
