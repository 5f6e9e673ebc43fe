//! Which images, boxes and questions an export holds: the filters (review, category,
//! annotator, folder, the 5 % rule, valid items only) and the reason for everything left out.
//!
//! Review gates every export: a rejected image, box or question never goes out. With
//! `accepted_only`, an image goes out only when it is accepted, and then with every item on it
//! that is not itself rejected.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use super::{ExportReport, Format};
use crate::dataset::{ImageRecord, Question, Region, RegionId, Review, rules};
use crate::store::dump::Dump;

/// Filters of an export. The default keeps every valid item with boxes of at most 5 %.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// Only accepted images (with their items that are not rejected).
    pub accepted_only: bool,
    /// Only these question categories (empty: all).
    pub categories: BTreeSet<String>,
    /// Only items created by these annotators (empty: all).
    pub annotators: BTreeSet<String>,
    /// Only images under this folder.
    pub folder: Option<PathBuf>,
    /// Keep boxes over 5 % of the image (and questions about them).
    pub allow_large_boxes: bool,
    /// Only these questions (the difficulty check's flags pick them; None: all).
    pub questions: Option<BTreeSet<crate::dataset::QuestionId>>,
}

impl Filter {
    /// Does this filter keep everything (what the canonical export requires)?
    pub fn is_everything(&self) -> bool {
        !self.accepted_only
            && self.categories.is_empty()
            && self.annotators.is_empty()
            && self.folder.is_none()
            && self.questions.is_none()
    }
}

/// One image and what of it goes out.
#[derive(Debug)]
pub struct Item<'a> {
    pub image: &'a ImageRecord,
    pub regions: Vec<&'a Region>,
    pub questions: Vec<&'a Question>,
}

/// The selected part of the project, in the project's order.
#[derive(Debug, Default)]
pub struct Selection<'a> {
    pub items: Vec<Item<'a>>,
    /// Who created each question and box (from the journal), when it was read.
    pub annotators: HashMap<uuid::Uuid, String>,
}

impl Selection<'_> {
    pub fn annotator(&self, id: &uuid::Uuid) -> Option<&str> {
        self.annotators.get(id).map(String::as_str)
    }
}

/// Choose what goes out; `annotators` says who created each box and question (see
/// [`crate::store::SqliteStore::creators`]).
pub fn select<'a>(
    dump: &'a Dump,
    annotators: HashMap<uuid::Uuid, String>,
    filter: &Filter,
    format: Format,
    report: &mut ExportReport,
) -> Selection<'a> {
    let mut regions_of: HashMap<&crate::dataset::ImageId, Vec<&Region>> = HashMap::new();
    for r in &dump.regions {
        regions_of.entry(&r.image).or_default().push(r);
    }
    let mut questions_of: HashMap<&crate::dataset::ImageId, Vec<&Question>> = HashMap::new();
    for q in &dump.questions {
        questions_of.entry(&q.image).or_default().push(q);
    }
    let by_annotator = |id: &uuid::Uuid| {
        filter.annotators.is_empty()
            || annotators
                .get(id)
                .is_some_and(|a| filter.annotators.contains(a))
    };
    let mut items = Vec::new();
    for image in &dump.images {
        let regions = regions_of.remove(&image.id).unwrap_or_default();
        let questions = questions_of.remove(&image.id).unwrap_or_default();
        if let Some(folder) = &filter.folder
            && !image.path.starts_with(folder)
        {
            report.leave_out(
                || image.path.display().to_string(),
                "image outside the chosen folder",
            );
            continue;
        }
        let gate = image_gate(image.review.as_ref(), filter.accepted_only);
        let mut kept_regions = Vec::new();
        let mut large: BTreeSet<RegionId> = BTreeSet::new();
        let mut rejected: BTreeSet<RegionId> = BTreeSet::new();
        for r in regions {
            let what = || format!("box {} on {}", r.id, image.file_name());
            if let Some((reason, review)) = &gate {
                report.leave_out_item("box", &r.id.to_string(), image, reason, *review);
            } else if let Some(review) = r.review.as_ref().filter(|v| v.is_rejected()) {
                rejected.insert(r.id);
                report.leave_out_item(
                    "box",
                    &r.id.to_string(),
                    image,
                    "box rejected in review",
                    Some(review),
                );
            } else if !filter.allow_large_boxes && rules::check_area(&r.rect, image.size).is_err() {
                large.insert(r.id);
                report.leave_out(
                    what,
                    "box over 5 % of the image (not a small-object target)",
                );
            } else if !by_annotator(&r.id.0) {
                report.leave_out(what, "box by another annotator");
            } else {
                kept_regions.push(r);
            }
        }
        let mut kept_questions = Vec::new();
        for q in questions {
            let what = || format!("question {} on {}", q.id, image.file_name());
            let id = q.id.to_string();
            if let Some((reason, review)) = &gate {
                report.leave_out_item("question", &id, image, reason, *review);
            } else if let Some(review) = q.review.as_ref().filter(|v| v.is_rejected()) {
                report.leave_out_item(
                    "question",
                    &id,
                    image,
                    "question rejected in review",
                    Some(review),
                );
            } else if q.regions.iter().any(|r| rejected.contains(r)) {
                report.leave_out_item(
                    "question",
                    &id,
                    image,
                    "question about a box rejected in review",
                    None,
                );
            } else if filter
                .questions
                .as_ref()
                .is_some_and(|keep| !keep.contains(&q.id))
            {
                report.leave_out(what, "question without the chosen difficulty flag");
            } else if !filter.categories.is_empty() && !filter.categories.contains(&q.category) {
                report.leave_out(what, "question in another category");
            } else if !by_annotator(&q.id.0) {
                report.leave_out(what, "question by another annotator");
            } else if q.regions.iter().any(|r| large.contains(r)) {
                report.leave_out(what, "question about a box over 5 % of the image");
            } else if let Some(e) = rules::question_errors(q).first() {
                report.leave_out(what, &format!("invalid question: {e}"));
            } else {
                kept_questions.push(q);
            }
        }
        if format == Format::ThymeRl && kept_questions.is_empty() && !kept_regions.is_empty() {
            report.leave_out(
                || image.file_name(),
                "image with boxes but no questions (thyme-rl holds QA items)",
            );
        }
        items.push(Item {
            image,
            regions: kept_regions,
            questions: kept_questions,
        });
    }
    Selection { items, annotators }
}

/// Why review keeps a whole image out, with the verdict behind it: a rejected image never goes
/// out; with `accepted_only`, neither does one that is not accepted.
fn image_gate(
    review: Option<&Review>,
    accepted_only: bool,
) -> Option<(&'static str, Option<&Review>)> {
    match review {
        Some(r) if r.is_rejected() => Some(("image rejected in review", Some(r))),
        Some(r) if r.is_accepted() => None,
        _ if accepted_only => Some(("image not accepted in review", None)),
        _ => None,
    }
}

/// A question's linked boxes that are in the selection, in link order.
pub fn linked<'a>(item: &Item<'a>, q: &Question) -> Vec<&'a Region> {
    q.regions
        .iter()
        .filter_map(|id| item.regions.iter().find(|r| r.id == *id).copied())
        .collect()
}
