//! One image with everything on it, and the edits that turn one such state into another.
//!
//! Team mode moves whole images: a client takes the server's state of an image, a conflict
//! keeps both versions of one, a reviewer reads the difference between what was submitted
//! and what is there now. [`diff`] gives the commands (in an order the store accepts) and
//! [`describe`] the same change in words.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::dataset::{ImageId, ImageRecord, Question, QuestionId, Region, RegionId};
use crate::store::rows;
use crate::store::sql::Db;
use crate::store::{Command, Store, StoreError};

/// An image with its boxes and questions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageState {
    pub image: ImageRecord,
    pub regions: Vec<Region>,
    pub questions: Vec<Question>,
}

impl ImageState {
    /// Read an image's state from any store (`None` when the image is not there).
    pub fn read(store: &dyn Store, id: &ImageId) -> Result<Option<Self>, StoreError> {
        let Some(image) = store.image(id)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            regions: store.regions(id)?,
            questions: store.questions(id)?,
            image,
        }))
    }

    /// Read an image's state inside a transaction of either backend.
    pub fn read_in(db: &mut dyn Db, id: &ImageId) -> Result<Option<Self>, StoreError> {
        let Some(image) = rows::read_image(db, id)? else {
            return Ok(None);
        };
        Ok(Some(Self {
            regions: rows::read_regions(db, id)?,
            questions: rows::read_questions(db, id)?,
            image,
        }))
    }

    /// The same image with nothing on it (a blind copy starts here).
    pub fn bare(image: ImageRecord) -> Self {
        Self {
            image,
            regions: Vec::new(),
            questions: Vec::new(),
        }
    }
}

/// The commands that take `from` (or nothing) to `to`, valid when applied in order.
///
/// Order: new boxes first (questions may link them), then questions are deleted, changed and
/// added (so none links a box about to go), then boxes are changed and deleted, then the
/// image's status.
pub fn diff(from: Option<&ImageState>, to: &ImageState) -> Vec<Command> {
    let Some(from) = from else {
        return vec![Command::AddImage {
            image: to.image.clone(),
            regions: to.regions.clone(),
            questions: to.questions.clone(),
        }];
    };
    let old_regions: BTreeMap<RegionId, &Region> = from.regions.iter().map(|r| (r.id, r)).collect();
    let new_regions: BTreeMap<RegionId, &Region> = to.regions.iter().map(|r| (r.id, r)).collect();
    let old_questions: BTreeMap<QuestionId, &Question> =
        from.questions.iter().map(|q| (q.id, q)).collect();
    let new_questions: BTreeMap<QuestionId, &Question> =
        to.questions.iter().map(|q| (q.id, q)).collect();
    let mut out = Vec::new();
    for (id, r) in &new_regions {
        if !old_regions.contains_key(id) {
            out.push(Command::AddRegion {
                region: (*r).clone(),
                links: Vec::new(),
            });
        }
    }
    for (id, q) in &old_questions {
        if !new_questions.contains_key(id) {
            out.push(Command::DeleteQuestion {
                question: (*q).clone(),
            });
        }
    }
    for (id, q) in &new_questions {
        match old_questions.get(id) {
            Some(old) if old != q => out.push(Command::UpdateQuestion {
                before: (*old).clone(),
                after: (*q).clone(),
            }),
            Some(_) => {}
            None => out.push(Command::AddQuestion {
                question: (*q).clone(),
            }),
        }
    }
    for (id, r) in &new_regions {
        if let Some(old) = old_regions.get(id)
            && old != r
        {
            out.push(Command::UpdateRegion {
                before: (*old).clone(),
                after: (*r).clone(),
            });
        }
    }
    for (id, r) in &old_regions {
        if !new_regions.contains_key(id) {
            out.push(Command::DeleteRegion {
                region: (*r).clone(),
                links: Vec::new(),
            });
        }
    }
    if from.image.status != to.image.status {
        out.push(Command::SetImageStatus {
            id: to.image.id.clone(),
            before: from.image.status,
            after: to.image.status,
        });
    }
    if from.image.review != to.image.review {
        out.push(Command::SetReview {
            image: to.image.id.clone(),
            target: crate::dataset::ReviewTarget::Image(to.image.id.clone()),
            seen: String::new(),
            before: from.image.review.clone(),
            after: to.image.review.clone(),
        });
    }
    out
}

/// A verdict change in words ("accepted" -> "rejected: wrong label").
fn verdict_change(
    before: Option<&crate::dataset::Review>,
    after: Option<&crate::dataset::Review>,
) -> Option<String> {
    let word =
        |r: Option<&crate::dataset::Review>| r.map_or("unreviewed".to_owned(), |r| r.describe());
    (before != after).then(|| format!("verdict {} -> {}", word(before), word(after)))
}

/// The commands that take what is here (`mine`) to the server's state (`theirs`; none when the
/// image is gone there).
pub fn to_server_state(mine: Option<&ImageState>, theirs: Option<&ImageState>) -> Vec<Command> {
    match (theirs, mine) {
        (Some(t), _) => diff(mine, t),
        (None, Some(m)) => vec![Command::RemoveImage {
            image: m.image.clone(),
            regions: m.regions.clone(),
            questions: m.questions.clone(),
        }],
        (None, None) => Vec::new(),
    }
}

/// The change from `from` to `to` in words, one line per box or question.
pub fn describe(from: &ImageState, to: &ImageState) -> Vec<String> {
    diff(Some(from), to)
        .iter()
        .map(|c| match c {
            Command::UpdateRegion { before, after } => {
                let mut parts = Vec::new();
                if before.label != after.label {
                    parts.push(format!("label '{}' -> '{}'", before.label, after.label));
                }
                if before.rect != after.rect {
                    parts.push(format!(
                        "moved/resized ({:.0},{:.0})-({:.0},{:.0}) -> ({:.0},{:.0})-({:.0},{:.0})",
                        before.rect.x0,
                        before.rect.y0,
                        before.rect.x1,
                        before.rect.y1,
                        after.rect.x0,
                        after.rect.y0,
                        after.rect.x1,
                        after.rect.y1
                    ));
                }
                parts.extend(verdict_change(
                    before.review.as_ref(),
                    after.review.as_ref(),
                ));
                format!("box '{}': {}", before.label, parts.join(", "))
            }
            Command::UpdateQuestion { before, after } => {
                let mut parts = Vec::new();
                if before.text != after.text {
                    parts.push(format!("question '{}' -> '{}'", before.text, after.text));
                }
                if before.answer != after.answer {
                    parts.push(format!(
                        "answer '{}' -> '{}'",
                        before.answer.solution(),
                        after.answer.solution()
                    ));
                }
                if before.category != after.category {
                    parts.push(format!(
                        "category {} -> {}",
                        before.category, after.category
                    ));
                }
                if before.regions != after.regions {
                    parts.push("linked boxes changed".into());
                }
                parts.extend(verdict_change(
                    before.review.as_ref(),
                    after.review.as_ref(),
                ));
                format!("question '{}': {}", before.text, parts.join(", "))
            }
            other => other.describe(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{Answer, ImageStatus};
    use crate::geometry::{ImageRect, ImageSize};
    use crate::store::SqliteStore;

    fn image() -> ImageRecord {
        ImageRecord {
            id: ImageId::of_bytes(b"state"),
            path: "/data/s.jpg".into(),
            size: ImageSize::new(4000, 3000),
            bytes: 1,
            added_at_ms: 1,
            status: ImageStatus::Todo,
            review: None,
        }
    }

    #[test]
    fn diff_applied_to_the_first_state_gives_the_second() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::create(&dir.path().join("p.thyme")).unwrap();
        let img = image();
        let a = Region::new(img.id.clone(), ImageRect::new(10.0, 10.0, 50.0, 50.0), "a");
        let b = Region::new(
            img.id.clone(),
            ImageRect::new(100.0, 10.0, 150.0, 50.0),
            "b",
        );
        let qa = Question::new(
            img.id.clone(),
            vec![a.id],
            "what is a?",
            Answer::Open { text: "x".into() },
            "ocr",
        );
        let from = ImageState {
            image: img.clone(),
            regions: vec![a.clone(), b.clone()],
            questions: vec![qa.clone()],
        };
        for c in diff(None, &from) {
            store.apply("t", c).unwrap();
        }
        assert_eq!(
            ImageState::read(&store, &img.id)
                .unwrap()
                .unwrap()
                .regions
                .len(),
            2
        );

        // b moved, a deleted (its question now links a new box c), a new question on b.
        let c = Region::new(
            img.id.clone(),
            ImageRect::new(300.0, 300.0, 340.0, 330.0),
            "c",
        );
        let mut b2 = b.clone();
        b2.rect = ImageRect::new(101.0, 12.0, 150.0, 50.0);
        let mut qa2 = qa.clone();
        qa2.regions = vec![c.id];
        qa2.answer = Answer::Open { text: "y".into() };
        let qb = Question::new(
            img.id.clone(),
            vec![b.id],
            "what is b?",
            Answer::Open { text: "z".into() },
            "ocr",
        );
        let mut to = ImageState {
            image: img.clone(),
            regions: vec![b2, c],
            questions: vec![qa2, qb],
        };
        to.image.status = ImageStatus::Done;
        let commands = diff(Some(&from), &to);
        for c in commands {
            store.apply("t", c).unwrap();
        }
        let mut now = ImageState::read(&store, &img.id).unwrap().unwrap();
        let mut want = to.clone();
        now.regions.sort_by_key(|r| r.id);
        want.regions.sort_by_key(|r| r.id);
        now.questions.sort_by_key(|q| q.id);
        want.questions.sort_by_key(|q| q.id);
        assert_eq!(now, want);
        assert!(diff(Some(&now), &want).is_empty());

        let words = describe(&from, &to);
        assert!(
            words.iter().any(|l| l.contains("delete box 'a'")),
            "{words:?}"
        );
        assert!(
            words.iter().any(|l| l.contains("box 'b': moved")),
            "{words:?}"
        );
        assert!(
            words.iter().any(|l| l.contains("answer 'x' -> 'y'")),
            "{words:?}"
        );
        assert!(
            words
                .iter()
                .any(|l| l.contains("add question 'what is b?'")),
            "{words:?}"
        );
    }
}
