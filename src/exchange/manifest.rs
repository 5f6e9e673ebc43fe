//! The manifest written beside every export (`<out>.manifest.json`): which project state it
//! was made from, with which filters, prompt and split, what went into each part (by id), and
//! what was left out and why. It is how a lead answers "which items trained model X".
//!
//! Every field follows from the project's state and the options, never from the clock: the
//! time recorded is that of the project's latest journal entry, so exporting the same state
//! again gives the same bytes, manifest included.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::select::Selection;
use super::{ExchangeError, ExportOptions, ExportReport, LeftOutItem, io_err, write_atomically};
use crate::dataset::review::review_word;
use crate::store::SqliteStore;
use crate::store::dump::Dump;

/// The version of this manifest's layout.
pub const MANIFEST_VERSION: u32 = 1;

/// `thyme-rl.jsonl` -> `thyme-rl.jsonl.manifest.json`; `yolo` -> `yolo.manifest.json`.
pub fn path_beside(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    out.with_file_name(format!("{name}.manifest.json"))
}

/// One written file (or the whole export when there is no split) and what it holds.
#[derive(Debug, Clone, Serialize)]
pub struct Part {
    /// The part's name ("train"), empty without a split.
    pub name: String,
    /// The file's name, beside the manifest.
    pub file: String,
    pub images: usize,
    pub boxes: usize,
    pub questions: usize,
    pub image_ids: Vec<String>,
    pub question_ids: Vec<String>,
    pub by_category: BTreeMap<String, usize>,
    /// Who created each question (from the journal).
    pub by_annotator: BTreeMap<String, usize>,
}

impl Part {
    pub fn of(name: &str, path: &Path, selection: &Selection<'_>) -> Self {
        let mut part = Part {
            name: name.to_owned(),
            file: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            images: 0,
            boxes: 0,
            questions: 0,
            image_ids: Vec::new(),
            question_ids: Vec::new(),
            by_category: BTreeMap::new(),
            by_annotator: BTreeMap::new(),
        };
        for item in &selection.items {
            if item.regions.is_empty() && item.questions.is_empty() {
                continue;
            }
            part.images += 1;
            part.boxes += item.regions.len();
            part.image_ids.push(item.image.id.to_string());
            for q in &item.questions {
                part.questions += 1;
                part.question_ids.push(q.id.to_string());
                *part.by_category.entry(q.category.clone()).or_default() += 1;
                let who = selection.annotator(&q.id.0).unwrap_or("(unknown)");
                *part.by_annotator.entry(who.to_owned()).or_default() += 1;
            }
        }
        part
    }
}

/// The project an export came from.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    pub file: PathBuf,
    /// The project file's schema version.
    pub schema_version: i64,
    /// SHA-256 of the project's content (images, categories, boxes, questions with their
    /// verdicts), independent of how SQLite lays out its file.
    pub content_sha256: String,
    /// Journal entries, and the time of the latest (the state the export was made from).
    pub journal_entries: usize,
    pub state_at_ms: i64,
}

/// Verdict counts over the whole project (what the filters chose from).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReviewCounts {
    pub images: BTreeMap<&'static str, usize>,
    pub boxes: BTreeMap<&'static str, usize>,
    pub questions: BTreeMap<&'static str, usize>,
}

/// Everything a manifest says.
#[derive(Debug, Clone, Serialize)]
pub struct Manifest {
    pub manifest_version: u32,
    pub tool: String,
    pub format: &'static str,
    /// The written file's name, beside the manifest.
    pub out: String,
    pub project: Source,
    pub filters: Filters,
    pub paths: &'static str,
    pub choices: &'static str,
    pub prompt_profile: String,
    pub system_prompt_sha256: String,
    pub split: Option<SplitInfo>,
    pub counts: Counts,
    pub by_category: BTreeMap<String, usize>,
    pub by_annotator: BTreeMap<String, usize>,
    pub review: ReviewCounts,
    pub parts: Vec<Part>,
    pub left_out: BTreeMap<String, u64>,
    pub left_out_items: Vec<LeftOutItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Filters {
    pub accepted_only: bool,
    pub categories: Vec<String>,
    pub annotators: Vec<String>,
    pub folder: Option<PathBuf>,
    pub allow_large_boxes: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SplitInfo {
    pub seed: u64,
    pub shares: Vec<(String, f64)>,
    pub by: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    pub images: u64,
    pub boxes: u64,
    pub questions: u64,
    pub records: u64,
}

impl Manifest {
    pub fn new(
        store: &SqliteStore,
        dump: &Dump,
        options: &ExportOptions,
        report: &ExportReport,
        parts: Vec<Part>,
        (journal_entries, state_at_ms): (usize, i64),
    ) -> Self {
        let f = &options.filter;
        let mut by_category = BTreeMap::new();
        let mut by_annotator = BTreeMap::new();
        for p in &parts {
            for (c, n) in &p.by_category {
                *by_category.entry(c.clone()).or_default() += n;
            }
            for (who, n) in &p.by_annotator {
                *by_annotator.entry(who.clone()).or_default() += n;
            }
        }
        let mut review = ReviewCounts::default();
        for i in &dump.images {
            *review
                .images
                .entry(review_word(i.review.as_ref()))
                .or_default() += 1;
        }
        for r in &dump.regions {
            *review
                .boxes
                .entry(review_word(r.review.as_ref()))
                .or_default() += 1;
        }
        for q in &dump.questions {
            *review
                .questions
                .entry(review_word(q.review.as_ref()))
                .or_default() += 1;
        }
        Manifest {
            manifest_version: MANIFEST_VERSION,
            tool: format!("thyme-studio {}", env!("CARGO_PKG_VERSION")),
            format: options.format.name(),
            out: report
                .out
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            project: Source {
                file: store.path().to_owned(),
                schema_version: crate::store::schema_version(),
                content_sha256: content_sha256(dump),
                journal_entries,
                state_at_ms,
            },
            filters: Filters {
                accepted_only: f.accepted_only,
                categories: f.categories.iter().cloned().collect(),
                annotators: f.annotators.iter().cloned().collect(),
                folder: f.folder.clone(),
                allow_large_boxes: f.allow_large_boxes,
            },
            paths: options.paths.name(),
            choices: match options.choices {
                super::ChoiceStyle::Letters => "letters",
                super::ChoiceStyle::Text => "text",
            },
            prompt_profile: options.profile.name.clone(),
            system_prompt_sha256: options.profile.system_sha256(),
            split: options.split.as_ref().map(|s| SplitInfo {
                seed: s.seed,
                shares: s.parts.clone(),
                by: "image, stratified by the category of its first question",
            }),
            counts: Counts {
                images: report.images,
                boxes: report.boxes,
                questions: report.questions,
                records: report.records,
            },
            by_category,
            by_annotator,
            review,
            parts,
            left_out: report.left_out.clone(),
            left_out_items: report.left_out_items.clone(),
        }
    }

    pub fn to_json(&self) -> Result<String, ExchangeError> {
        serde_json::to_string_pretty(self).map_err(|e| ExchangeError::Options(e.to_string()))
    }

    pub fn write(&self, path: &Path) -> Result<(), ExchangeError> {
        let text = self.to_json()?;
        write_atomically(path, |w| {
            use std::io::Write;
            w.write_all(text.as_bytes()).map_err(io_err(path))?;
            w.write_all(b"\n").map_err(io_err(path))
        })
    }
}

/// SHA-256 over the project's rows in their stable order, serialised straight into the hash.
fn content_sha256(dump: &Dump) -> String {
    use std::io::Write;
    let mut h = Sha256::new();
    // Writing into a hash cannot fail; a serialisation error would only make the hash differ,
    // never make two different contents hash alike.
    let _ = serde_json::to_writer(&mut h, &dump.images);
    let _ = h.write_all(b"\n");
    let _ = serde_json::to_writer(&mut h, &dump.categories);
    let _ = h.write_all(b"\n");
    let _ = serde_json::to_writer(&mut h, &dump.regions);
    let _ = h.write_all(b"\n");
    let _ = serde_json::to_writer(&mut h, &dump.questions);
    hex::encode(h.finalize())
}
