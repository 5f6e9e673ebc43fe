//! COCO detection JSON. Ids are handed out by [`IdSeq`], which starts at 1 and only counts up,
//! so an id of 0 or a repeated id cannot be written. Box categories are the boxes' labels
//! (an empty label is "object"); QA items go in the extension field `thyme_questions`.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU64;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use super::paths::Paths;
use super::select::Selection;
use super::{ExchangeError, ExportOptions, ExportReport, Progress, io_err, tick, write_atomically};
use crate::dataset::Answer;

/// The category of an unlabelled box.
pub const UNLABELLED: &str = "object";

/// COCO ids: 1, 2, 3, ... never 0, never repeated.
#[derive(Debug)]
pub struct IdSeq(NonZeroU64);

impl Default for IdSeq {
    fn default() -> Self {
        Self(NonZeroU64::MIN)
    }
}

impl IdSeq {
    pub fn next_id(&mut self) -> NonZeroU64 {
        let id = self.0;
        self.0 = id.saturating_add(1);
        id
    }
}

/// A box's COCO category name.
pub fn category_name(label: &str) -> &str {
    let t = label.trim();
    if t.is_empty() { UNLABELLED } else { t }
}

#[derive(Serialize)]
struct Info {
    description: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct Image {
    id: NonZeroU64,
    file_name: String,
    width: u32,
    height: u32,
    thyme_image_id: String,
}

#[derive(Serialize)]
struct Annotation {
    id: NonZeroU64,
    image_id: NonZeroU64,
    category_id: NonZeroU64,
    bbox: [f64; 4],
    area: f64,
    iscrowd: u8,
    thyme_region_id: String,
}

#[derive(Serialize)]
struct Category<'a> {
    id: NonZeroU64,
    name: &'a str,
    supercategory: &'static str,
}

#[derive(Serialize)]
struct QaItem<'a> {
    id: String,
    image_id: NonZeroU64,
    annotation_ids: Vec<NonZeroU64>,
    question: &'a str,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correct: Option<usize>,
    solution: &'a str,
    category: &'a str,
    review: &'static str,
}

#[derive(Serialize)]
struct Coco<'a> {
    info: Info,
    images: Vec<Image>,
    annotations: Vec<Annotation>,
    categories: Vec<Category<'a>>,
    thyme_questions: Vec<QaItem<'a>>,
}

pub fn write(
    selection: &Selection<'_>,
    options: &ExportOptions,
    out: &Path,
    report: &mut ExportReport,
    progress: Progress<'_>,
    cancel: &AtomicBool,
) -> Result<(), ExchangeError> {
    let base = out.parent().unwrap_or(Path::new("."));
    let mut paths = Paths::new(options.paths, base);
    // Categories in name order, so the same project always gets the same ids.
    let mut names: BTreeMap<&str, NonZeroU64> = BTreeMap::new();
    for item in &selection.items {
        for r in &item.regions {
            names.insert(category_name(&r.label), NonZeroU64::MIN);
        }
    }
    let mut cat_ids = IdSeq::default();
    for id in names.values_mut() {
        *id = cat_ids.next_id();
    }
    let mut image_ids = IdSeq::default();
    let mut ann_ids = IdSeq::default();
    let mut coco = Coco {
        info: Info {
            description: "exported by thyme-studio",
            version: env!("CARGO_PKG_VERSION"),
        },
        images: Vec::with_capacity(selection.items.len()),
        annotations: Vec::new(),
        categories: names
            .iter()
            .map(|(name, id)| Category {
                id: *id,
                name,
                supercategory: "object",
            })
            .collect(),
        thyme_questions: Vec::new(),
    };
    let total = selection.items.len();
    for (n, item) in selection.items.iter().enumerate() {
        tick(n, total, progress, cancel)?;
        let Some(file_name) = paths.path_or_leave_out(item.image, report) else {
            continue;
        };
        let image_id = image_ids.next_id();
        coco.images.push(Image {
            id: image_id,
            file_name,
            width: item.image.size.width,
            height: item.image.size.height,
            thyme_image_id: item.image.id.to_string(),
        });
        report.images += 1;
        let mut by_region = HashMap::new();
        for r in &item.regions {
            let id = ann_ids.next_id();
            by_region.insert(r.id, id);
            let [x, y, w, h] = r.rect.to_xywh();
            coco.annotations.push(Annotation {
                id,
                image_id,
                category_id: names
                    .get(category_name(&r.label))
                    .copied()
                    .unwrap_or(NonZeroU64::MIN),
                bbox: [x, y, w, h],
                area: w * h,
                iscrowd: 0,
                thyme_region_id: r.id.to_string(),
            });
            report.boxes += 1;
        }
        for q in &item.questions {
            let (options, correct) = match &q.answer {
                Answer::Choice { options, correct } => (Some(options.as_slice()), Some(*correct)),
                Answer::Open { .. } => (None, None),
            };
            coco.thyme_questions.push(QaItem {
                id: q.id.to_string(),
                image_id,
                annotation_ids: q
                    .regions
                    .iter()
                    .filter_map(|r| by_region.get(r).copied())
                    .collect(),
                question: &q.text,
                kind: q.answer.kind_name(),
                options,
                correct,
                solution: q.answer.solution(),
                category: &q.category,
                review: crate::dataset::review::review_word(q.review.as_ref()),
            });
            report.questions += 1;
        }
    }
    progress(total, total);
    report.records = coco.annotations.len() as u64;
    report.files_copied = paths.copied;
    write_atomically(out, |w| {
        serde_json::to_writer(w, &coco).map_err(|e| io_err(out)(e.into()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_start_at_one_and_never_repeat() {
        let mut seq = IdSeq::default();
        let ids: Vec<u64> = (0..1000).map(|_| seq.next_id().get()).collect();
        assert_eq!(ids[0], 1);
        assert!(ids.windows(2).all(|w| w[1] == w[0] + 1));
    }

    #[test]
    fn unlabelled_boxes_get_a_category() {
        assert_eq!(category_name("  "), "object");
        assert_eq!(category_name(" sign "), "sign");
    }
}
