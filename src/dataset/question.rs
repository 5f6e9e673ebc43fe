//! Questions about regions: open (short answer) or multiple choice.

use serde::{Deserialize, Serialize};

use super::{ImageId, RegionId, Review, Verdict};

/// A question's identity (UUID v7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QuestionId(pub uuid::Uuid);

impl QuestionId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7())
    }
}

impl Default for QuestionId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for QuestionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The answer side of a question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Answer {
    /// A short free-text answer.
    Open { text: String },
    /// 2-6 options in a fixed order, exactly one of them correct.
    Choice {
        options: Vec<String>,
        correct: usize,
    },
}

impl Answer {
    /// The correct answer as text.
    pub fn solution(&self) -> &str {
        match self {
            Answer::Open { text } => text,
            Answer::Choice { options, correct } => {
                options.get(*correct).map(String::as_str).unwrap_or("")
            }
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Answer::Open { .. } => "open",
            Answer::Choice { .. } => "choice",
        }
    }
}

/// A question about one image, linked to one or more of its regions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "QuestionWire")]
pub struct Question {
    pub id: QuestionId,
    pub image: ImageId,
    /// Linked regions, in the order the annotator linked them.
    pub regions: Vec<RegionId>,
    pub text: String,
    pub answer: Answer,
    /// A category name (see [`super::Category`]).
    pub category: String,
    /// A reviewer's verdict on this question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
}

/// A question as stored in JSON, also as written before verdicts existed: then a `status` of
/// `accepted` or `rejected` stood for the verdict (the project migration reads it the same way).
#[derive(Deserialize)]
struct QuestionWire {
    id: QuestionId,
    image: ImageId,
    regions: Vec<RegionId>,
    text: String,
    answer: Answer,
    category: String,
    #[serde(default)]
    review: Option<Review>,
    #[serde(default)]
    status: Option<String>,
}

impl From<QuestionWire> for Question {
    fn from(w: QuestionWire) -> Self {
        let review = w
            .review
            .or_else(|| w.status.as_deref().and_then(legacy_review));
        Self {
            id: w.id,
            image: w.image,
            regions: w.regions,
            text: w.text,
            answer: w.answer,
            category: w.category,
            review,
        }
    }
}

/// The verdict an old `status` value stood for (`draft` and `submitted`: none).
pub fn legacy_review(status: &str) -> Option<Review> {
    let verdict = Verdict::parse(status)?;
    Some(Review {
        verdict,
        reason: (verdict == Verdict::Rejected).then(|| "other".to_owned()),
        note: String::new(),
        by: String::new(),
        at_ms: 0,
    })
}

impl Question {
    pub fn new(
        image: ImageId,
        regions: Vec<RegionId>,
        text: impl Into<String>,
        answer: Answer,
        category: impl Into<String>,
    ) -> Self {
        Self {
            id: QuestionId::new(),
            image,
            regions,
            text: text.into(),
            answer,
            category: category.into(),
            review: None,
        }
    }
}
