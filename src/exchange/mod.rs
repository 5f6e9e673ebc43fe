//! Exchange: the project's annotations written in the formats trainers and evaluators read
//! (Thyme RL JSONL, COCO, YOLO, ms-swift grounding, LLaVA, our lossless canonical JSONL), and
//! existing data read back in (COCO, canonical JSONL, Thyme RL and SFT JSONL).
//!
//! Owns the export options and filters, the report of what was left out and why, and one file
//! per format. Formats and their fields are described in docs/exchange.md.

mod canonical;
mod coco;
mod llava;
pub mod manifest;
mod paths;
mod read;
pub(crate) mod select;
mod split;
mod swift;
pub(crate) mod thyme_rl;
mod yolo;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use serde::Serialize;
use thiserror::Error;

pub use coco::IdSeq;
pub use paths::PathMode;
pub use read::{ImportFormat, ImportSettings, ImportSummary, Problem, import_file};
pub use select::Filter;
pub use split::SplitSpec;

use crate::agent::PromptProfile;
use crate::store::{SqliteStore, StoreError};

/// Why an export or an import stopped.
#[derive(Debug, Error)]
pub enum ExchangeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Options(String),
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error("cancelled")]
    Cancelled,
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ExchangeError + '_ {
    move |source| ExchangeError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The formats we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    ThymeRl,
    Coco,
    Yolo,
    Swift,
    Llava,
    Jsonl,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::ThymeRl,
        Format::Coco,
        Format::Yolo,
        Format::Swift,
        Format::Llava,
        Format::Jsonl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::ThymeRl => "thyme-rl",
            Format::Coco => "coco",
            Format::Yolo => "yolo",
            Format::Swift => "swift",
            Format::Llava => "llava",
            Format::Jsonl => "jsonl",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == s)
    }

    /// What the output path names: a file, or (YOLO) a folder.
    pub fn writes_folder(self) -> bool {
        self == Format::Yolo
    }

    /// The usual file name of an export in this format.
    pub fn default_file_name(self) -> &'static str {
        match self {
            Format::ThymeRl => "thyme-rl.jsonl",
            Format::Coco => "coco.json",
            Format::Yolo => "yolo",
            Format::Swift => "swift.jsonl",
            Format::Llava => "llava.json",
            Format::Jsonl => "project.jsonl",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Format::ThymeRl => "Thyme RL JSONL: one line per QA item, with the prompt profile",
            Format::Coco => "COCO detection JSON, QA items in an extension field",
            Format::Yolo => "YOLO folder: images/, labels/, data.yaml",
            Format::Swift => "ms-swift grounding JSONL (boxes with labels) and QA lines",
            Format::Llava => "LLaVA conversation JSON, one entry per image",
            Format::Jsonl => "canonical JSONL: the whole project with its history, lossless",
        }
    }
}

/// How multiple-choice items are written for training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChoiceStyle {
    /// Options lettered A, B, ... in the question; the solution is the letter.
    #[default]
    Letters,
    /// Options lettered in the question; the solution is the option's text.
    Text,
}

/// Everything an export needs to know.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub format: Format,
    pub filter: Filter,
    pub paths: PathMode,
    pub choices: ChoiceStyle,
    pub profile: PromptProfile,
    /// Parts by image (train/val/test), when asked for.
    pub split: Option<SplitSpec>,
}

impl ExportOptions {
    pub fn new(format: Format) -> Self {
        Self {
            format,
            filter: Filter::default(),
            paths: PathMode::Absolute,
            choices: ChoiceStyle::Letters,
            profile: PromptProfile::default(),
            split: None,
        }
    }
}

/// What an export wrote and what it left out, with reasons.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportReport {
    pub format: String,
    pub out: PathBuf,
    pub images: u64,
    pub boxes: u64,
    pub questions: u64,
    /// Records written (lines, entries or label files).
    pub records: u64,
    pub files_copied: u64,
    /// Reason -> how many items it kept out.
    pub left_out: BTreeMap<String, u64>,
    /// The first items left out, for a person to look at: (what, reason).
    pub examples: Vec<(String, String)>,
    /// Every box and question that review kept out, with the verdict (for the manifest).
    pub left_out_items: Vec<LeftOutItem>,
}

/// One box or question an export left out, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeftOutItem {
    /// `box` or `question`.
    pub kind: &'static str,
    pub id: String,
    pub image: String,
    pub reason: String,
    /// The reviewer's verdict behind it, in words ("rejected: wrong label (note)").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
}

/// How many left-out items the report names one by one.
const EXAMPLES: usize = 50;

impl ExportReport {
    pub(crate) fn leave_out(&mut self, what: impl FnOnce() -> String, reason: &str) {
        *self.left_out.entry(reason.to_owned()).or_insert(0) += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push((what(), reason.to_owned()));
        }
    }

    /// Leave out one item because of review, naming it and the verdict behind it.
    pub(crate) fn leave_out_item(
        &mut self,
        kind: &'static str,
        id: &str,
        image: &crate::dataset::ImageRecord,
        reason: &str,
        verdict: Option<&crate::dataset::Review>,
    ) {
        self.leave_out(|| format!("{kind} {id} on {}", image.file_name()), reason);
        self.left_out_items.push(LeftOutItem {
            kind,
            id: id.to_owned(),
            image: image.id.to_string(),
            reason: reason.to_owned(),
            verdict: verdict.map(crate::dataset::Review::describe),
        });
    }

    pub fn left_out_total(&self) -> u64 {
        self.left_out.values().sum()
    }

    /// A few lines for a person.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: {} records from {} images ({} boxes, {} questions) written to {}",
            self.format,
            self.records,
            self.images,
            self.boxes,
            self.questions,
            self.out.display()
        );
        if self.files_copied > 0 {
            s.push_str(&format!("; {} image files copied", self.files_copied));
        }
        if self.left_out.is_empty() {
            s.push_str("\nnothing left out");
        } else {
            s.push_str(&format!("\nleft out ({}):", self.left_out_total()));
            for (reason, n) in &self.left_out {
                s.push_str(&format!("\n  {n} x {reason}"));
            }
        }
        s
    }
}

/// Progress callback: (done, total) images.
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize);

/// Export the project to `out` (a file, or a folder for YOLO), with its manifest beside it
/// (see [`manifest`]). Each output is written to a temporary name beside it and renamed at the
/// end, so a failed or cancelled export never leaves a half-written file under the real name.
/// With a split, each part goes to its own file (`thyme-rl.train.jsonl`, ...).
pub fn export(
    store: &SqliteStore,
    options: &ExportOptions,
    out: &Path,
    progress: Progress<'_>,
    cancel: &AtomicBool,
) -> Result<ExportReport, ExchangeError> {
    let (report, manifest) = export_to(store, options, options.paths, out, progress, cancel)?;
    manifest.write(&manifest::path_beside(out))?;
    Ok(report)
}

/// The manifest an export would write (pretty JSON), writing nothing the user sees: the
/// export runs into a temporary folder (without copying images) and is thrown away.
pub fn manifest_only(
    store: &SqliteStore,
    options: &ExportOptions,
    out: &Path,
) -> Result<String, ExchangeError> {
    let dir = tempfile::tempdir().map_err(io_err(Path::new("(temporary folder)")))?;
    let name = out.file_name().unwrap_or(std::ffi::OsStr::new("export"));
    let writes = if options.paths == PathMode::Copy {
        PathMode::Absolute
    } else {
        options.paths
    };
    let (_, manifest) = export_to(
        store,
        options,
        writes,
        &dir.path().join(name),
        &mut |_, _| {},
        &AtomicBool::new(false),
    )?;
    manifest.to_json()
}

/// Export with image paths written as `writes`; returns the report and the manifest (which
/// names `options` as asked).
fn export_to(
    store: &SqliteStore,
    options: &ExportOptions,
    writes: PathMode,
    out: &Path,
    progress: Progress<'_>,
    cancel: &AtomicBool,
) -> Result<(ExportReport, manifest::Manifest), ExchangeError> {
    let mut report = ExportReport {
        format: options.format.name().to_owned(),
        out: out.to_owned(),
        ..Default::default()
    };
    // Only the canonical export carries the journal; the others need just who made what.
    let dump = store.dump(options.format == Format::Jsonl)?;
    if options.format == Format::Jsonl {
        if !options.filter.is_everything() || options.split.is_some() {
            return Err(ExchangeError::Options(
                "the canonical jsonl export always holds the whole project; filters and splits apply to the other formats".into(),
            ));
        }
        canonical::write(&dump, out, &mut report, progress, cancel)?;
        let m = manifest::Manifest::new(
            store,
            &dump,
            options,
            &report,
            Vec::new(),
            store.journal_summary()?,
        );
        return Ok((report, m));
    }
    if options.split.is_some() && options.format.writes_folder() {
        return Err(ExchangeError::Options(
            "a YOLO export is one folder; split the thyme-rl, coco, swift or llava exports".into(),
        ));
    }
    let mut write_options = options.clone();
    write_options.paths = writes;
    let selection = select::select(
        &dump,
        store.creators()?,
        &options.filter,
        options.format,
        &mut report,
    );
    let parts = match &options.split {
        None => vec![(String::new(), selection)],
        Some(spec) => {
            let select::Selection { items, annotators } = selection;
            split::assign(items, spec)
                .into_iter()
                .map(|(name, items)| {
                    let annotators = annotators.clone();
                    (name, select::Selection { items, annotators })
                })
                .collect()
        }
    };
    let mut written = Vec::with_capacity(parts.len());
    for (name, part) in &parts {
        let path = if name.is_empty() {
            out.to_owned()
        } else {
            part_path(out, name)
        };
        write_format(part, &write_options, &path, &mut report, progress, cancel)?;
        written.push(manifest::Part::of(name, &path, part));
    }
    let m = manifest::Manifest::new(
        store,
        &dump,
        options,
        &report,
        written,
        store.journal_summary()?,
    );
    Ok((report, m))
}

/// `thyme-rl.jsonl` -> `thyme-rl.train.jsonl`.
pub fn part_path(out: &Path, part: &str) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match out.extension() {
        Some(ext) => format!("{stem}.{part}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{part}"),
    };
    out.with_file_name(name)
}

fn write_format(
    selection: &select::Selection<'_>,
    options: &ExportOptions,
    out: &Path,
    report: &mut ExportReport,
    progress: Progress<'_>,
    cancel: &AtomicBool,
) -> Result<(), ExchangeError> {
    match options.format {
        Format::ThymeRl => thyme_rl::write(selection, options, out, report, progress, cancel),
        Format::Coco => coco::write(selection, options, out, report, progress, cancel),
        Format::Yolo => yolo::write(selection, out, report, progress, cancel),
        Format::Swift => swift::write(selection, options, out, report, progress, cancel),
        Format::Llava => llava::write(selection, options, out, report, progress, cancel),
        // Written by the canonical writer, before any selection.
        Format::Jsonl => Ok(()),
    }
}

/// Write through a temporary file beside `path`, renamed into place when `f` succeeds.
pub(crate) fn write_atomically(
    path: &Path,
    f: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> Result<(), ExchangeError>,
) -> Result<(), ExchangeError> {
    use std::io::Write;
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    let tmp = tempfile::NamedTempFile::new_in(parent).map_err(io_err(parent))?;
    let (file, tmp_path) = tmp.into_parts();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    f(&mut w)?;
    w.flush().map_err(io_err(path))?;
    let file = w.into_inner().map_err(|e| ExchangeError::Io {
        path: path.to_owned(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_err(path))?;
    tmp_path.persist(path).map_err(|e| ExchangeError::Io {
        path: path.to_owned(),
        source: e.error,
    })?;
    Ok(())
}

/// Progress and the cancel check, every 256 items of a loop over `total`.
pub(crate) fn tick(
    n: usize,
    total: usize,
    progress: &mut dyn FnMut(usize, usize),
    cancel: &AtomicBool,
) -> Result<(), ExchangeError> {
    if n.is_multiple_of(256) {
        check_cancel(cancel)?;
        progress(n, total);
    }
    Ok(())
}

pub(crate) fn check_cancel(cancel: &AtomicBool) -> Result<(), ExchangeError> {
    if cancel.load(std::sync::atomic::Ordering::Relaxed) {
        Err(ExchangeError::Cancelled)
    } else {
        Ok(())
    }
}

/// serde_json into a writer, with the error named after the output file.
pub(crate) fn json_line(
    w: &mut impl std::io::Write,
    value: &impl Serialize,
    path: &Path,
) -> Result<(), ExchangeError> {
    serde_json::to_writer(&mut *w, value).map_err(|e| ExchangeError::Io {
        path: path.to_owned(),
        source: e.into(),
    })?;
    w.write_all(b"\n").map_err(io_err(path))
}
