//! Importing image files into a project.
//!
//! Owns the walk over folders, the per-file checks (readable, a supported format, within the
//! pixel budget, complete, not already in the project) and the per-file report of what was
//! added and what was skipped and why. Files are hashed and probed in parallel; each accepted
//! image is one journaled edit, so an import interrupted half-way keeps what it added.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use crate::dataset::{ImageId, ImageRecord, RuleWarning, rules};
use crate::geometry::ImageSize;
use crate::imagery::{ImageError, ImageFormat, PixelBudget, integrity, probe_bytes};
use crate::store::{Command, Store, StoreError, now_ms};

/// Settings of one import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub budget: PixelBudget,
    pub actor: String,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            budget: PixelBudget::DEFAULT,
            actor: crate::store::default_actor(),
        }
    }
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum FileOutcome {
    Added {
        id: String,
        size: ImageSize,
        /// A warning that did not stop the import (e.g. a low-resolution image).
        warning: Option<String>,
    },
    Skipped {
        reason: SkipReason,
        message: String,
    },
}

/// Why a file was not imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    Unreadable,
    NotAnImage,
    Damaged,
    Truncated,
    TooLarge,
    Duplicate,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Unreadable => "unreadable",
            SkipReason::NotAnImage => "not an image",
            SkipReason::Damaged => "damaged",
            SkipReason::Truncated => "truncated",
            SkipReason::TooLarge => "too large",
            SkipReason::Duplicate => "duplicate",
        }
    }
}

/// One line of the import report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    #[serde(flatten)]
    pub outcome: FileOutcome,
}

/// The whole report of an import.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportReport {
    pub files: Vec<FileReport>,
    /// Files inside the given folders that do not have an image extension.
    pub ignored_other_files: u64,
    /// True when the import was cancelled before every file was looked at.
    pub cancelled: bool,
}

impl ImportReport {
    pub fn added(&self) -> usize {
        self.files
            .iter()
            .filter(|f| matches!(f.outcome, FileOutcome::Added { .. }))
            .count()
    }

    pub fn skipped(&self) -> impl Iterator<Item = (&Path, SkipReason, &str)> {
        self.files.iter().filter_map(|f| match &f.outcome {
            FileOutcome::Skipped { reason, message } => {
                Some((f.path.as_path(), *reason, message.as_str()))
            }
            FileOutcome::Added { .. } => None,
        })
    }

    pub fn warnings(&self) -> impl Iterator<Item = (&Path, &str)> {
        self.files.iter().filter_map(|f| match &f.outcome {
            FileOutcome::Added {
                warning: Some(w), ..
            } => Some((f.path.as_path(), w.as_str())),
            _ => None,
        })
    }
}

/// Progress of a running import.
#[derive(Debug, Clone)]
pub struct ImportProgress {
    pub done: usize,
    pub total: usize,
    pub current: PathBuf,
}

/// The files to look at: every file named directly, and every file with an image extension
/// under the named folders (recursively, in name order). Paths that do not exist are reported.
pub fn collect_files(inputs: &[PathBuf]) -> (Vec<PathBuf>, ImportReport) {
    let mut files = Vec::new();
    let mut report = ImportReport::default();
    for input in inputs {
        if input.is_dir() {
            for entry in walkdir::WalkDir::new(input).sort_by_file_name() {
                match entry {
                    Ok(e) if e.file_type().is_file() => {
                        if ImageFormat::has_image_extension(e.path()) {
                            files.push(e.into_path());
                        } else {
                            report.ignored_other_files += 1;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => report.files.push(skipped(
                        e.path().unwrap_or(input).to_owned(),
                        SkipReason::Unreadable,
                        e.to_string(),
                    )),
                }
            }
        } else if input.exists() {
            files.push(input.clone());
        } else {
            report.files.push(skipped(
                input.clone(),
                SkipReason::Unreadable,
                "no such file or folder".to_owned(),
            ));
        }
    }
    (files, report)
}

/// What the parallel stage learns about one file.
enum Checked {
    Ok {
        id: ImageId,
        size: ImageSize,
        bytes: u64,
    },
    Skip(SkipReason, String),
}

fn check_file(path: &Path, budget: PixelBudget) -> Checked {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return Checked::Skip(SkipReason::Unreadable, e.to_string()),
    };
    let probe = match probe_bytes(path, &bytes, budget) {
        Ok(p) => p,
        Err(e) => return Checked::Skip(skip_reason(&e), e.to_string()),
    };
    if let Err(e) = integrity::check_complete(path, &bytes, probe.format) {
        return Checked::Skip(skip_reason(&e), e.to_string());
    }
    Checked::Ok {
        id: ImageId::of_bytes(&bytes),
        size: probe.size,
        bytes: bytes.len() as u64,
    }
}

/// Check one image file as an import would (readable, a known format, within the budget,
/// complete) and describe it as a project image, without adding it anywhere.
pub fn probe_image(path: &Path, budget: PixelBudget) -> Result<ImageRecord, (SkipReason, String)> {
    match check_file(path, budget) {
        Checked::Ok { id, size, bytes } => Ok(ImageRecord {
            id,
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_owned()),
            size,
            bytes,
            added_at_ms: now_ms(),
            status: Default::default(),
            review: None,
        }),
        Checked::Skip(reason, message) => Err((reason, message)),
    }
}

fn skip_reason(e: &ImageError) -> SkipReason {
    match e {
        ImageError::Io { .. } => SkipReason::Unreadable,
        ImageError::UnknownFormat { .. } => SkipReason::NotAnImage,
        ImageError::BadHeader { .. } | ImageError::Corrupt { .. } => SkipReason::Damaged,
        ImageError::TooLarge { .. } => SkipReason::TooLarge,
        ImageError::Truncated { .. } => SkipReason::Truncated,
    }
}

fn skipped(path: PathBuf, reason: SkipReason, message: String) -> FileReport {
    FileReport {
        path,
        outcome: FileOutcome::Skipped { reason, message },
    }
}

/// How many files are read and probed at once (bounds memory: their bytes are in RAM).
const BATCH: usize = 4;

/// Import the given files and folders. Errors of single files go into the report; only a
/// failing store stops the import (what was added before stays added).
pub fn import(
    store: &mut dyn Store,
    inputs: &[PathBuf],
    options: &ImportOptions,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(&ImportProgress),
) -> Result<ImportReport, StoreError> {
    let (files, mut report) = collect_files(inputs);
    let total = files.len();
    let mut done = 0;
    for batch in files.chunks(BATCH) {
        if cancel.load(Ordering::Relaxed) {
            report.cancelled = true;
            break;
        }
        let checked: Vec<Checked> = batch
            .par_iter()
            .map(|p| check_file(p, options.budget))
            .collect();
        for (path, checked) in batch.iter().zip(checked) {
            done += 1;
            progress(&ImportProgress {
                done,
                total,
                current: path.clone(),
            });
            let line = match checked {
                Checked::Skip(reason, message) => skipped(path.clone(), reason, message),
                Checked::Ok { id, size, bytes } => {
                    add_image(store, path, id, size, bytes, options)?
                }
            };
            report.files.push(line);
        }
    }
    Ok(report)
}

fn add_image(
    store: &mut dyn Store,
    path: &Path,
    id: ImageId,
    size: ImageSize,
    bytes: u64,
    options: &ImportOptions,
) -> Result<FileReport, StoreError> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    if let Some(existing) = store.image(&id)? {
        return Ok(skipped(
            path.to_owned(),
            SkipReason::Duplicate,
            format!(
                "{}: the same image is already in the project as {}",
                path.display(),
                existing.path.display()
            ),
        ));
    }
    let record = ImageRecord {
        id: id.clone(),
        path: absolute,
        size,
        bytes,
        added_at_ms: now_ms(),
        status: Default::default(),
        review: None,
    };
    store.apply(
        &options.actor,
        Command::AddImage {
            image: record,
            regions: vec![],
            questions: vec![],
        },
    )?;
    let warning = rules::check_image_size(size).map(|w: RuleWarning| w.to_string());
    Ok(FileReport {
        path: path.to_owned(),
        outcome: FileOutcome::Added {
            id: id.to_string(),
            size,
            warning,
        },
    })
}
