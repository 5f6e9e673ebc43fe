//! Imports of existing data: COCO detection JSON (boxes and categories, and our QA extension),
//! our canonical JSONL (a lossless restore into a new project, else a merge), Thyme RL JSONL
//! (questions, answers and boxes when present) and Thyme SFT JSONL (images and QA).
//!
//! Bad records are reported with where they are (line or array index) and the rest is
//! imported. Every image is checked as an image import would check it; a new image comes in
//! as one journaled edit together with its boxes and questions.

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

// ---- canonical ----

fn import_canonical(
    store: &mut SqliteStore,
    path: &Path,
    settings: &ImportSettings,
    cancel: &AtomicBool,
    mut summary: ImportSummary,
) -> Result<ImportSummary, ExchangeError> {
    let (dump, errors) = canonical::read(path)?;
    summary
        .problems
        .extend(errors.into_iter().map(|(n, m)| Problem {
            at: format!("line {n}"),
            message: m,
        }));
    check_cancel(cancel)?;
    if summary.problems.is_empty() && store.is_empty()? {
        store.restore(&dump)?;
        summary.restored_exactly = true;
        summary.images_added = dump.images.len() as u64;
        summary.boxes = dump.regions.len() as u64;
        summary.questions = dump.questions.len() as u64;
        summary.categories_added = dump.categories.iter().filter(|c| !c.builtin).count() as u64;
        return Ok(summary);
    }
    // Into a project with data (or from a damaged file): the annotations are merged as new
    // edits by this user; the file's history stays in the file.
    let mut b = Builder::new(store, path, settings)?;
    b.summary = summary;
    let mut regions: HashMap<ImageId, Vec<Region>> = HashMap::new();
    for r in dump.regions {
        regions.entry(r.image.clone()).or_default().push(r);
    }
    let mut questions: HashMap<ImageId, Vec<Question>> = HashMap::new();
    for q in dump.questions {
        questions.entry(q.image.clone()).or_default().push(q);
    }
    for c in &dump.categories {
        b.category(Some(&c.name));
    }
    for image in dump.images {
        let at = format!("image {}", image.path.display());
        if b.existing.contains(&image.id) {
            b.summary.images_already_there += 1;
            b.problem(
                at,
                "already in the project: its boxes and questions were not merged",
            );
            continue;
        }
        b.found.insert(image.path.clone(), Some(image.id.clone()));
        for r in regions.remove(&image.id).unwrap_or_default() {
            b.region(&at, &image, r.rect, &r.label, Some(r.id));
        }
        b.images.insert(image.id.clone(), image.clone());
        for q in questions.remove(&image.id).unwrap_or_default() {
            b.question(&at, q);
        }
    }
    b.summary.problems.push(Problem {
        at: path.display().to_string(),
        message:
            "merged into a project that already had data: the file's edit history was not copied"
                .into(),
    });
    b.commit(store, cancel)
}

// ---- COCO ----

fn read_coco(b: &mut Builder, path: &Path, cancel: &AtomicBool) -> Result<(), ExchangeError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let root: Value = serde_json::from_str(&text).map_err(|e| ExchangeError::Input {
        path: path.to_owned(),
        message: format!("not JSON: {e}"),
    })?;
    let array = |key: &str| {
        root.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut categories: HashMap<i64, String> = HashMap::new();
    for (i, c) in array("categories").iter().enumerate() {
        match (
            c.get("id").and_then(Value::as_i64),
            c.get("name").and_then(Value::as_str),
        ) {
            (Some(id), Some(name)) => {
                let label = if name == super::coco::UNLABELLED {
                    ""
                } else {
                    name
                };
                categories.insert(id, label.to_owned());
            }
            _ => b.problem(format!("categories[{i}]"), "needs a numeric id and a name"),
        }
    }
    let mut images: HashMap<i64, ImageRecord> = HashMap::new();
    for (i, img) in array("images").iter().enumerate() {
        check_cancel(cancel)?;
        let at = format!("images[{i}]");
        let (Some(id), Some(name)) = (
            img.get("id").and_then(Value::as_i64),
            img.get("file_name").and_then(Value::as_str),
        ) else {
            b.problem(at, "needs a numeric id and a file_name");
            continue;
        };
        let Some(record) = b.image(&at, name) else {
            continue;
        };
        let (w, h) = (
            img.get("width").and_then(Value::as_u64),
            img.get("height").and_then(Value::as_u64),
        );
        if let (Some(w), Some(h)) = (w, h)
            && (w, h) != (u64::from(record.size.width), u64::from(record.size.height))
        {
            b.problem(
                &at,
                format!(
                    "says {w}x{h} but the file is {}; boxes are checked against the file",
                    record.size
                ),
            );
        }
        images.insert(id, record);
    }
    let mut regions_by_ann: HashMap<i64, RegionId> = HashMap::new();
    for (i, a) in array("annotations").iter().enumerate() {
        let at = format!("annotations[{i}]");
        let Some(image_id) = a.get("image_id").and_then(Value::as_i64) else {
            b.problem(at, "no image_id");
            continue;
        };
        let Some(image) = images.get(&image_id).cloned() else {
            b.problem(
                at,
                format!("no image with id {image_id} (dangling image id)"),
            );
            continue;
        };
        let label = match a.get("category_id").and_then(Value::as_i64) {
            Some(c) => match categories.get(&c) {
                Some(name) => name.clone(),
                None => {
                    b.problem(at, format!("unknown category id {c}"));
                    continue;
                }
            },
            None => {
                b.problem(at, "no category_id");
                continue;
            }
        };
        let bbox: Option<Vec<f64>> = a
            .get("bbox")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_f64).collect());
        let Some([x, y, w, h]) = bbox.and_then(|v| <[f64; 4]>::try_from(v).ok()) else {
            b.problem(at, "bbox is not four numbers [x, y, width, height]");
            continue;
        };
        if w <= 0.0 || h <= 0.0 {
            b.problem(at, "bbox has no area");
            continue;
        }
        let id = a
            .get("thyme_region_id")
            .and_then(Value::as_str)
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .map(RegionId);
        if let Some(region) = b.region(&at, &image, ImageRect::from_xywh(x, y, w, h), &label, id)
            && let Some(ann) = a.get("id").and_then(Value::as_i64)
        {
            regions_by_ann.insert(ann, region);
        }
    }
    for (i, q) in array("thyme_questions").iter().enumerate() {
        let at = format!("thyme_questions[{i}]");
        let Some(image) = q
            .get("image_id")
            .and_then(Value::as_i64)
            .and_then(|id| images.get(&id).cloned())
        else {
            b.problem(at, "no image with that image_id");
            continue;
        };
        let links: Vec<RegionId> = q
            .get("annotation_ids")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(Value::as_i64)
                    .filter_map(|a| regions_by_ann.get(&a).copied())
                    .collect()
            })
            .unwrap_or_default();
        match question_from_value(b, q, &image, links) {
            Ok(question) => b.question(&at, question),
            Err(m) => b.problem(at, m),
        }
    }
    Ok(())
}

/// A question from our own fields (`question`, `kind`, `options`, `correct`, `solution`,
/// `category`, `review`, `id`), as the COCO extension and the Thyme RL export write them.
fn question_from_value(
    b: &mut Builder,
    v: &Value,
    image: &ImageRecord,
    links: Vec<RegionId>,
) -> Result<Question, String> {
    let text = v
        .get("question")
        .and_then(Value::as_str)
        .ok_or("no question text")?;
    let solution = v.get("solution").and_then(Value::as_str).unwrap_or("");
    let options: Option<Vec<String>> = v.get("options").and_then(Value::as_array).map(|o| {
        o.iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    });
    let answer = match (v.get("kind").and_then(Value::as_str), options) {
        (Some("choice"), Some(options)) => {
            let correct = v
                .get("correct")
                .and_then(Value::as_u64)
                .map(|c| c as usize)
                .or_else(|| options.iter().position(|o| o == solution))
                .or_else(|| letter_index(solution))
                .ok_or("cannot tell which option is correct")?;
            Answer::Choice { options, correct }
        }
        _ => Answer::Open {
            text: thyme_row::solution(solution).to_owned(),
        },
    };
    let category = b.category(v.get("category").and_then(Value::as_str));
    let mut q = Question::new(image.id.clone(), links, text, answer, category);
    if let Some(id) = v
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
    {
        q.id = QuestionId(id);
    }
    q.review = v
        .get("review")
        .and_then(Value::as_str)
        .and_then(crate::dataset::question::legacy_review);
    Ok(q)
}

/// "B" -> 1.
fn letter_index(s: &str) -> Option<usize> {
    let s = s.trim().trim_end_matches('.');
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_uppercase() => Some((c as u8 - b'A') as usize),
        _ => None,
    }
}

// ---- JSON lines ----

fn read_lines(
    b: &mut Builder,
    path: &Path,
    cancel: &AtomicBool,
    each: fn(&mut Builder, &str, &Value) -> Result<(), String>,
) -> Result<(), ExchangeError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        if i % 1024 == 0 {
            check_cancel(cancel)?;
        }
        let at = format!("line {}", i + 1);
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                b.problem(at, format!("unreadable: {e}"));
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(v) => {
                if let Err(m) = each(b, &at, &v) {
                    b.problem(at, m);
                }
            }
            Err(e) => b.problem(at, format!("not JSON: {e}")),
        }
    }
    Ok(())
}

fn thyme_rl_line(b: &mut Builder, at: &str, v: &Value) -> Result<(), String> {
    let name = first_image(v).ok_or("no image path (images)")?;
    let Some(image) = b.image(at, name) else {
        return Ok(());
    };
    let mut links = Vec::new();
    if let Some(boxes) = v.get("bbox").and_then(Value::as_array) {
        let list: Vec<&Value> = if boxes.first().is_some_and(Value::is_array) {
            boxes.iter().collect()
        } else {
            vec![v.get("bbox").unwrap_or(&Value::Null)]
        };
        for bx in list {
            let nums: Vec<f64> = bx
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            match <[f64; 4]>::try_from(nums) {
                Ok([x0, y0, x1, y1]) => {
                    let label = v.get("label").and_then(Value::as_str).unwrap_or("");
                    if let Some(id) =
                        b.region(at, &image, ImageRect::new(x0, y0, x1, y1), label, None)
                    {
                        links.push(id);
                    }
                }
                Err(_) => b.problem(at, "bbox entry is not [x0, y0, x1, y1]"),
            }
        }
    }
    // The raw question when present; else the user turn without its headers.
    let text = match v.get("question").and_then(Value::as_str) {
        Some(q) => bare_question(q).to_owned(),
        None => v
            .get("messages")
            .and_then(Value::as_array)
            .and_then(|m| {
                m.iter()
                    .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            })
            .and_then(|m| m.get("content").and_then(Value::as_str))
            .map(|c| bare_question(c).to_owned())
            .ok_or("no question (question or a user message)")?,
    };
    let mut record = v.clone();
    if let Some(obj) = record.as_object_mut() {
        obj.insert("question".into(), Value::String(text));
    }
    let q = question_from_value(b, &record, &image, links)?;
    b.question(at, q);
    Ok(())
}

fn thyme_sft_line(b: &mut Builder, at: &str, v: &Value) -> Result<(), String> {
    let name = first_image(v).ok_or("no image path (image)")?;
    let question = v
        .get("question")
        .and_then(Value::as_str)
        .map(bare_question)
        .ok_or("no question")?
        .to_owned();
    let response = v
        .get("response")
        .and_then(Value::as_str)
        .ok_or("no response")?;
    let answer = response
        .split_once("<answer>")
        .and_then(|(_, rest)| rest.split_once("</answer>").map(|(a, _)| a))
        .ok_or("the response has no <answer>...</answer>")?;
    let answer = solution(answer).to_owned();
    let Some(image) = b.image(at, name) else {
        return Ok(());
    };
    let category = b.category(v.get("category").and_then(Value::as_str));
    let q = Question::new(
        image.id.clone(),
        vec![],
        question,
        Answer::Open { text: answer },
        category,
    );
    b.question(at, q);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxed_answers_and_letters() {
        assert_eq!(letter_index("B"), Some(1));
        assert_eq!(letter_index("B."), Some(1));
        assert_eq!(letter_index("Blue"), None);
    }
}
