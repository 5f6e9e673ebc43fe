//! Questions about regions: open (short answer) or multiple choice.

use serde::{Deserialize, Serialize};

use super::{ImageId, RegionId};

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

/// Where a question stands in review.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    #[default]
    Draft,
    Submitted,
    Accepted,
    Rejected,
}

impl ReviewStatus {
    pub const ALL: [ReviewStatus; 4] = [
        ReviewStatus::Draft,
        ReviewStatus::Submitted,
        ReviewStatus::Accepted,
        ReviewStatus::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReviewStatus::Draft => "draft",
            ReviewStatus::Submitted => "submitted",
            ReviewStatus::Accepted => "accepted",
            ReviewStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A question about one image, linked to one or more of its regions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Question {
    pub id: QuestionId,
    pub image: ImageId,
    /// Linked regions, in the order the annotator linked them.
    pub regions: Vec<RegionId>,
    pub text: String,
    pub answer: Answer,
    /// A category name (see [`super::Category`]).
    pub category: String,
    pub status: ReviewStatus,
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
            status: ReviewStatus::Draft,
        }
    }
}
