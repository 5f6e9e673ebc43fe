//! Review: a person's verdict on an image, a box or a question, the same in solo and team
//! projects.
//!
//! A verdict lives on the item it judges ([`super::ImageRecord::review`],
//! [`super::Region::review`], [`super::Question::review`]), so it is saved, journaled, undone,
//! synced and exported with that item. A review action names the item as the reviewer saw it
//! by its [`fingerprint`] (its content without any verdicts); the store refuses the action when
//! the item has changed since, so nobody accepts something they have not seen.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::{ImageId, ImageRecord, Question, QuestionId, Region, RegionId};

/// Reasons a reviewer picks from when rejecting (the note says more).
pub const REJECT_REASONS: [&str; 8] = [
    "box too loose",
    "box misses the object",
    "wrong label",
    "wrong answer",
    "ambiguous question",
    "missing objects",
    "box over 5% of the image",
    "other",
];

/// Accepted or rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Accepted,
    Rejected,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "accepted" | "accept" => Some(Verdict::Accepted),
            "rejected" | "reject" => Some(Verdict::Rejected),
            _ => None,
        }
    }
}

/// One verdict: what, why (a listed reason when rejected), a note, who and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    pub by: String,
    pub at_ms: i64,
}

/// Why a verdict is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReviewError {
    #[error("'{0}' is not a rejection reason; pick one of: {reasons}", reasons = REJECT_REASONS.join(", "))]
    UnknownReason(String),
    #[error("a rejection needs a reason; pick one of: {reasons}", reasons = REJECT_REASONS.join(", "))]
    MissingReason,
}

impl Review {
    /// An acceptance by `by` at `at_ms`.
    pub fn accepted(by: &str, note: &str, at_ms: i64) -> Self {
        Self {
            verdict: Verdict::Accepted,
            reason: None,
            note: note.to_owned(),
            by: by.to_owned(),
            at_ms,
        }
    }

    /// A rejection with a listed reason.
    pub fn rejected(by: &str, reason: &str, note: &str, at_ms: i64) -> Result<Self, ReviewError> {
        if !REJECT_REASONS.contains(&reason) {
            return Err(ReviewError::UnknownReason(reason.to_owned()));
        }
        Ok(Self {
            verdict: Verdict::Rejected,
            reason: Some(reason.to_owned()),
            note: note.to_owned(),
            by: by.to_owned(),
            at_ms,
        })
    }

    /// A verdict from its parts (the CLI's and the app's way in).
    pub fn new(
        verdict: Verdict,
        reason: Option<&str>,
        note: &str,
        by: &str,
        at_ms: i64,
    ) -> Result<Self, ReviewError> {
        match verdict {
            Verdict::Accepted => Ok(Self::accepted(by, note, at_ms)),
            Verdict::Rejected => {
                Self::rejected(by, reason.ok_or(ReviewError::MissingReason)?, note, at_ms)
            }
        }
    }

    pub fn is_accepted(&self) -> bool {
        self.verdict == Verdict::Accepted
    }

    pub fn is_rejected(&self) -> bool {
        self.verdict == Verdict::Rejected
    }

    /// "rejected: wrong label (it is a bus)".
    pub fn describe(&self) -> String {
        let mut s = self.verdict.as_str().to_owned();
        if let Some(r) = &self.reason {
            s.push_str(": ");
            s.push_str(r);
        }
        if !self.note.is_empty() {
            s.push_str(&format!(" ({})", self.note));
        }
        s
    }
}

/// "accepted", "rejected" or "unreviewed", as exports write it.
pub fn review_word(review: Option<&Review>) -> &'static str {
    review.map_or("unreviewed", |r| r.verdict.as_str())
}

/// What a review action judges.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum ReviewTarget {
    Image(ImageId),
    Region(RegionId),
    Question(QuestionId),
}

impl ReviewTarget {
    /// "image", "box" or "question".
    pub fn kind_name(&self) -> &'static str {
        match self {
            ReviewTarget::Image(_) => "image",
            ReviewTarget::Region(_) => "box",
            ReviewTarget::Question(_) => "question",
        }
    }

    pub fn id_text(&self) -> String {
        match self {
            ReviewTarget::Image(id) => id.to_string(),
            ReviewTarget::Region(id) => id.to_string(),
            ReviewTarget::Question(id) => id.to_string(),
        }
    }
}

/// The content of a box a reviewer judges: where it is and what it is called.
fn region_content(r: &Region) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "rect": [r.rect.x0, r.rect.y0, r.rect.x1, r.rect.y1],
        "label": r.label,
    })
}

/// The content of a question a reviewer judges: text, answer, category and linked boxes.
fn question_content(q: &Question) -> serde_json::Value {
    serde_json::json!({
        "id": q.id,
        "text": q.text,
        "answer": q.answer,
        "category": q.category,
        "regions": q.regions,
    })
}

fn digest(value: &serde_json::Value) -> String {
    // serde_json writes object keys in sorted order (no preserve_order feature), so equal
    // content gives equal bytes.
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..12])
}

/// A box's content as a short hash (its verdict left out).
pub fn region_fingerprint(r: &Region) -> String {
    digest(&region_content(r))
}

/// A question's content as a short hash (its verdict left out).
pub fn question_fingerprint(q: &Question) -> String {
    digest(&question_content(q))
}

/// An image's content as a short hash: its boxes and questions by id, without any verdicts
/// and without the image's work status or file location.
pub fn image_fingerprint(
    image: &ImageRecord,
    regions: &[Region],
    questions: &[Question],
) -> String {
    let mut rs: Vec<&Region> = regions.iter().collect();
    rs.sort_by_key(|r| r.id);
    let mut qs: Vec<&Question> = questions.iter().collect();
    qs.sort_by_key(|q| q.id);
    digest(&serde_json::json!({
        "image": image.id,
        "regions": rs.into_iter().map(region_content).collect::<Vec<_>>(),
        "questions": qs.into_iter().map(question_content).collect::<Vec<_>>(),
    }))
}

/// Does an edit from `before` to `after` change what a reviewer judged (so that an earlier
/// verdict no longer vouches for it)?
pub fn region_content_changed(before: &Region, after: &Region) -> bool {
    region_fingerprint(before) != region_fingerprint(after)
}

pub fn question_content_changed(before: &Question, after: &Question) -> bool {
    question_fingerprint(before) != question_fingerprint(after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Answer;
    use crate::geometry::ImageRect;

    #[test]
    fn a_rejection_needs_a_listed_reason() {
        assert!(Review::rejected("rev", "wrong label", "", 1).is_ok());
        let e = Review::rejected("rev", "meh", "", 1).unwrap_err();
        assert!(e.to_string().contains("wrong answer"), "{e}");
        assert_eq!(
            Review::new(Verdict::Rejected, None, "", "rev", 1),
            Err(ReviewError::MissingReason)
        );
    }

    #[test]
    fn fingerprints_follow_content_and_ignore_verdicts() {
        let image = ImageId::of_bytes(b"x");
        let r = Region::new(image.clone(), ImageRect::new(1.0, 2.0, 30.0, 40.0), "sign");
        let mut judged = r.clone();
        judged.review = Some(Review::accepted("rev", "", 5));
        assert_eq!(region_fingerprint(&r), region_fingerprint(&judged));
        let mut moved = r.clone();
        moved.rect.x1 = 31.0;
        assert_ne!(region_fingerprint(&r), region_fingerprint(&moved));

        let q = Question::new(
            image,
            vec![r.id],
            "What does it say?",
            Answer::Open {
                text: "STOP".into(),
            },
            "ocr",
        );
        let mut judged_q = q.clone();
        judged_q.review = Some(Review::rejected("rev", "wrong answer", "it says SLOW", 9).unwrap());
        assert!(!question_content_changed(&q, &judged_q));
        let mut edited = q.clone();
        edited.answer = Answer::Open {
            text: "SLOW".into(),
        };
        assert!(question_content_changed(&q, &edited));
    }

    #[test]
    fn targets_round_trip_through_json() {
        let t = ReviewTarget::Region(RegionId::new());
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<ReviewTarget>(&json).unwrap(), t);
    }
}
