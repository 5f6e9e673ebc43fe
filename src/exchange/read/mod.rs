//! Imports of existing data: COCO detection JSON (boxes and categories, and our QA extension),
//! our canonical JSONL (a lossless restore into a new project, else a merge), Thyme RL JSONL
//! (questions, answers and boxes when present) and Thyme SFT JSONL (images and QA).
//!
//! Bad records are reported with where they are (line or array index) and the rest is
//! imported. Every image is checked as an image import would check it; a new image comes in
//! as one journaled edit together with its boxes and questions.

mod coco;
mod lines;

use coco::{question_from_value, read_coco};
use lines::{import_canonical, read_lines, thyme_rl_line, thyme_sft_line};

use crate::trace::thyme_row::{self, bare_question, first_image, solution};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use serde::Serialize;
use serde_json::Value;

use super::{ExchangeError, canonical, check_cancel, io_err};
use crate::dataset::{
    Answer, Category, ImageId, ImageRecord, Question, QuestionId, Region, RegionId, rules,
};
use crate::geometry::ImageRect;
use crate::imagery::PixelBudget;
use crate::store::{Command, SqliteStore, Store};

/// The category given to imported questions that name none we know.
pub const IMPORTED_CATEGORY: &str = "imported";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImportFormat {
    Coco,
    Jsonl,
    ThymeRl,
    ThymeSft,
}

impl ImportFormat {
    pub const ALL: [ImportFormat; 4] = [
        ImportFormat::Coco,
        ImportFormat::Jsonl,
        ImportFormat::ThymeRl,
        ImportFormat::ThymeSft,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ImportFormat::Coco => "coco",
            ImportFormat::Jsonl => "jsonl",
            ImportFormat::ThymeRl => "thyme-rl",
            ImportFormat::ThymeSft => "thyme-sft",
        }
    }

    pub fn parse(s: &str) -> Option<ImportFormat> {
        ImportFormat::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Tell the format from the file's first record.
    pub fn detect(path: &Path) -> Result<ImportFormat, ExchangeError> {
        let file = std::fs::File::open(path).map_err(io_err(path))?;
        let mut first = String::new();
        std::io::BufReader::new(file)
            .read_line(&mut first)
            .map_err(io_err(path))?;
        let unknown = || {
            ExchangeError::Input {
            path: path.to_owned(),
            message: "cannot tell the format (COCO JSON, thyme-studio JSONL, Thyme RL or SFT JSONL); name it with --format".into(),
        }
        };
        if let Ok(v) = serde_json::from_str::<Value>(first.trim()) {
            if v.get("format").and_then(Value::as_str) == Some(canonical::FORMAT) {
                return Ok(ImportFormat::Jsonl);
            }
            if v.get("solution").is_some() && v.get("messages").is_some() {
                return Ok(ImportFormat::ThymeRl);
            }
            if v.get("response").is_some() && v.get("question").is_some() {
                return Ok(ImportFormat::ThymeSft);
            }
            if v.get("images").is_some() && v.get("annotations").is_some() {
                return Ok(ImportFormat::Coco);
            }
            return Err(unknown());
        }
        // A pretty-printed COCO file starts with "{" alone on its line.
        if first.trim_start().starts_with('{') {
            return Ok(ImportFormat::Coco);
        }
        Err(unknown())
    }
}

/// Settings of a data import.
#[derive(Debug, Clone)]
pub struct ImportSettings {
    /// Where to look for images named by relative paths (default: the data file's folder).
    pub images_dir: Option<PathBuf>,
    pub budget: PixelBudget,
    pub actor: String,
}

impl Default for ImportSettings {
    fn default() -> Self {
        Self {
            images_dir: None,
            budget: PixelBudget::DEFAULT,
            actor: crate::store::default_actor(),
        }
    }
}

/// One record that was not imported (or imported with a change), and where it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// "line 12", "annotations[4]", ...
    pub at: String,
    pub message: String,
}

/// What a data import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    pub format: String,
    pub images_added: u64,
    pub images_already_there: u64,
    pub boxes: u64,
    pub questions: u64,
    pub categories_added: u64,
    /// The project was empty and the canonical file came in exactly (history included).
    pub restored_exactly: bool,
    pub problems: Vec<Problem>,
}

impl ImportSummary {
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: {} images added ({} already in the project), {} boxes, {} questions{}",
            self.format,
            self.images_added,
            self.images_already_there,
            self.boxes,
            self.questions,
            if self.restored_exactly {
                ", restored exactly with its history"
            } else {
                ""
            }
        );
        if !self.problems.is_empty() {
            s.push_str(&format!("\n{} problem(s):", self.problems.len()));
            for p in self.problems.iter().take(50) {
                s.push_str(&format!("\n  {}: {}", p.at, p.message));
            }
            if self.problems.len() > 50 {
                s.push_str(&format!("\n  ... and {} more", self.problems.len() - 50));
            }
        }
        s
    }
}

/// Import a data file into the project.
pub fn import_file(
    store: &mut SqliteStore,
    path: &Path,
    format: ImportFormat,
    settings: &ImportSettings,
    cancel: &AtomicBool,
) -> Result<ImportSummary, ExchangeError> {
    let mut b = Builder::new(store, path, settings)?;
    b.summary.format = format.name().to_owned();
    match format {
        ImportFormat::Jsonl => return import_canonical(store, path, settings, cancel, b.summary),
        ImportFormat::Coco => read_coco(&mut b, path, cancel)?,
        ImportFormat::ThymeRl => read_lines(&mut b, path, cancel, thyme_rl_line)?,
        ImportFormat::ThymeSft => read_lines(&mut b, path, cancel, thyme_sft_line)?,
    }
    b.commit(store, cancel)
}

/// Collects images, boxes and questions, then writes them as journaled edits.
struct Builder {
    base: PathBuf,
    budget: PixelBudget,
    actor: String,
    /// Images by the path they were found at; `None`: not usable (reported once).
    found: HashMap<PathBuf, Option<ImageId>>,
    images: BTreeMap<ImageId, ImageRecord>,
    existing: BTreeSet<ImageId>,
    known_regions: BTreeSet<RegionId>,
    known_questions: BTreeSet<QuestionId>,
    categories: BTreeSet<String>,
    new_categories: BTreeSet<String>,
    regions: BTreeMap<ImageId, Vec<Region>>,
    questions: BTreeMap<ImageId, Vec<Question>>,
    summary: ImportSummary,
}

impl Builder {
    fn new(
        store: &SqliteStore,
        path: &Path,
        settings: &ImportSettings,
    ) -> Result<Self, ExchangeError> {
        let dump = store.dump(false)?;
        let base = settings.images_dir.clone().unwrap_or_else(|| {
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_owned()
        });
        Ok(Self {
            base,
            budget: settings.budget,
            actor: settings.actor.clone(),
            found: HashMap::new(),
            existing: dump.images.iter().map(|i| i.id.clone()).collect(),
            images: dump.images.into_iter().map(|i| (i.id.clone(), i)).collect(),
            known_regions: dump.regions.iter().map(|r| r.id).collect(),
            known_questions: dump.questions.iter().map(|q| q.id).collect(),
            categories: dump.categories.into_iter().map(|c| c.name).collect(),
            new_categories: BTreeSet::new(),
            regions: BTreeMap::new(),
            questions: BTreeMap::new(),
            summary: ImportSummary::default(),
        })
    }

    fn problem(&mut self, at: impl Into<String>, message: impl Into<String>) {
        self.summary.problems.push(Problem {
            at: at.into(),
            message: message.into(),
        });
    }

    /// The image a record names: found (absolute, or under the images folder), checked,
    /// and known to the project or about to be added.
    fn image(&mut self, at: &str, name: &str) -> Option<ImageRecord> {
        let given = Path::new(name);
        let candidates = [
            given.to_owned(),
            self.base.join(given),
            self.base.join(given.file_name().unwrap_or_default()),
        ];
        let Some(path) = candidates.into_iter().find(|p| p.is_file()) else {
            self.problem(at, format!("image not found: {name}"));
            return None;
        };
        if let Some(known) = self.found.get(&path) {
            return known.as_ref().and_then(|id| self.images.get(id).cloned());
        }
        let id = match crate::import::probe_image(&path, self.budget) {
            Ok(record) => {
                let id = record.id.clone();
                self.images.entry(id.clone()).or_insert(record);
                Some(id)
            }
            Err((_, message)) => {
                self.problem(at, message);
                None
            }
        };
        self.found.insert(path, id.clone());
        id.and_then(|id| self.images.get(&id).cloned())
    }

    /// A category that exists or will be added; an empty name becomes "imported".
    fn category(&mut self, name: Option<&str>) -> String {
        let name = crate::dataset::category::normalize_name(name.unwrap_or(""));
        let name = if name.is_empty() {
            IMPORTED_CATEGORY.to_owned()
        } else {
            name
        };
        if !self.categories.contains(&name) {
            self.categories.insert(name.clone());
            self.new_categories.insert(name.clone());
        }
        name
    }

    /// Add a box (clamped to the image when it crosses the border); `None` when unusable.
    fn region(
        &mut self,
        at: &str,
        image: &ImageRecord,
        rect: ImageRect,
        label: &str,
        id: Option<RegionId>,
    ) -> Option<RegionId> {
        if !rect.is_finite() {
            self.problem(at, "box coordinates are not numbers");
            return None;
        }
        let clamped = rect.clamped(image.size);
        if rules::check_rect(&clamped, image.size).is_err() {
            self.problem(
                at,
                format!(
                    "box [{:.1}, {:.1}, {:.1}, {:.1}] is outside the {} image",
                    rect.x0, rect.y0, rect.x1, rect.y1, image.size
                ),
            );
            return None;
        }
        if clamped != rect {
            self.problem(at, "box crossed the image border: clamped (imported)");
        }
        // A box given again without an id (Thyme RL lines repeat a question's box): the same
        // rectangle on the same image is the same box.
        if id.is_none()
            && let Some(same) = self
                .regions
                .get(&image.id)
                .and_then(|rs| rs.iter().find(|r| r.rect == clamped))
        {
            return Some(same.id);
        }
        let id = id.unwrap_or_default();
        if self.known_regions.contains(&id) {
            self.problem(at, format!("box {id} is already in the project"));
            return None;
        }
        self.known_regions.insert(id);
        self.regions
            .entry(image.id.clone())
            .or_default()
            .push(Region {
                id,
                image: image.id.clone(),
                rect: clamped,
                label: label.trim().to_owned(),
                review: None,
            });
        Some(id)
    }

    fn question(&mut self, at: &str, q: Question) {
        if self.known_questions.contains(&q.id) {
            self.problem(at, format!("question {} is already in the project", q.id));
            return;
        }
        if let Answer::Choice { options, correct } = &q.answer
            && *correct >= options.len()
        {
            self.problem(at, "the correct option is not among the options");
            return;
        }
        self.known_questions.insert(q.id);
        self.questions.entry(q.image.clone()).or_default().push(q);
    }

    /// Write everything: new categories, then one edit per new image (with its boxes and
    /// questions) and one per box or question on images already in the project.
    fn commit(
        mut self,
        store: &mut SqliteStore,
        cancel: &AtomicBool,
    ) -> Result<ImportSummary, ExchangeError> {
        check_cancel(cancel)?;
        let mut commands: Vec<Command> = self
            .new_categories
            .iter()
            .map(|name| Command::AddCategory {
                category: Category::custom(name),
            })
            .collect();
        self.summary.categories_added = commands.len() as u64;
        let touched: BTreeSet<ImageId> = self
            .regions
            .keys()
            .chain(self.questions.keys())
            .cloned()
            .collect();
        // Images found but with nothing on them still come in (a COCO image without boxes).
        let found: BTreeSet<ImageId> = self.found.values().flatten().cloned().collect();
        for id in found.union(&touched) {
            let regions = self.regions.remove(id).unwrap_or_default();
            let questions = self.questions.remove(id).unwrap_or_default();
            self.summary.boxes += regions.len() as u64;
            self.summary.questions += questions.len() as u64;
            if self.existing.contains(id) {
                self.summary.images_already_there += 1;
                commands.extend(regions.into_iter().map(|region| Command::AddRegion {
                    region,
                    links: vec![],
                }));
                commands.extend(
                    questions
                        .into_iter()
                        .map(|question| Command::AddQuestion { question }),
                );
            } else if let Some(image) = self.images.get(id) {
                self.summary.images_added += 1;
                commands.push(Command::AddImage {
                    image: image.clone(),
                    regions,
                    questions,
                });
            }
        }
        for chunk in commands.chunks(512) {
            check_cancel(cancel)?;
            if let Err((_, e)) = store.apply_all(&self.actor, chunk) {
                // One bad edit spoils its chunk: apply that chunk's edits one by one, keeping
                // the good ones and reporting the rest.
                tracing::warn!("import chunk rolled back ({e}); applying one by one");
                for command in chunk {
                    if let Err(e) = store.apply(&self.actor, command.clone()) {
                        self.summary.problems.push(Problem {
                            at: describe(command),
                            message: e.to_string(),
                        });
                        uncount(&mut self.summary, command);
                    }
                }
            }
        }
        Ok(self.summary)
    }
}

fn describe(command: &Command) -> String {
    match command {
        Command::AddImage { image, .. } => format!("image {}", image.path.display()),
        Command::AddRegion { region, .. } => format!("box {}", region.id),
        Command::AddQuestion { question } => format!("question {}", question.id),
        Command::AddCategory { category } => format!("category {}", category.name),
        _ => "edit".to_owned(),
    }
}

fn uncount(s: &mut ImportSummary, command: &Command) {
    match command {
        Command::AddImage {
            regions, questions, ..
        } => {
            s.images_added = s.images_added.saturating_sub(1);
            s.boxes = s.boxes.saturating_sub(regions.len() as u64);
            s.questions = s.questions.saturating_sub(questions.len() as u64);
        }
        Command::AddRegion { .. } => s.boxes = s.boxes.saturating_sub(1),
        Command::AddQuestion { .. } => s.questions = s.questions.saturating_sub(1),
        Command::AddCategory { .. } => s.categories_added = s.categories_added.saturating_sub(1),
        _ => {}
    }
}
