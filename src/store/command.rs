//! Edits as reversible commands.
//!
//! Every change to a project is one [`Command`]. A command carries the full state it needs to be
//! undone, so [`Command::inverse`] is a pure function and the journal alone gives undo/redo
//! across restarts. Updates and deletions carry the state they expect to replace: the store
//! refuses one whose expectation no longer holds (a conflict, never a silent overwrite).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::dataset::{
    Category, ImageId, ImageRecord, ImageStatus, Question, QuestionId, Region, Review, ReviewTarget,
};

/// Where a region sat in a question's list of linked regions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionLink {
    pub question: QuestionId,
    pub position: usize,
}

/// One reversible edit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Add an image, with any regions and questions it brings (restoring a removed image).
    AddImage {
        image: ImageRecord,
        #[serde(default)]
        regions: Vec<Region>,
        #[serde(default)]
        questions: Vec<Question>,
    },
    /// Remove an image with everything on it.
    RemoveImage {
        image: ImageRecord,
        #[serde(default)]
        regions: Vec<Region>,
        #[serde(default)]
        questions: Vec<Question>,
    },
    /// Point an image at a new file location (same bytes, moved file).
    RelocateImage {
        id: ImageId,
        from: PathBuf,
        to: PathBuf,
    },
    /// Change an image's work status.
    SetImageStatus {
        id: ImageId,
        before: ImageStatus,
        after: ImageStatus,
    },
    /// Add a region; `links` re-attaches it to questions when a deletion is undone.
    AddRegion {
        region: Region,
        #[serde(default)]
        links: Vec<RegionLink>,
    },
    DeleteRegion {
        region: Region,
        #[serde(default)]
        links: Vec<RegionLink>,
    },
    UpdateRegion {
        before: Region,
        after: Region,
    },
    AddQuestion {
        question: Question,
    },
    DeleteQuestion {
        question: Question,
    },
    UpdateQuestion {
        before: Question,
        after: Question,
    },
    AddCategory {
        category: Category,
    },
    RemoveCategory {
        category: Category,
    },
    /// Give (or take back) a verdict on an image, a box or a question. `seen` is the
    /// [fingerprint](crate::dataset::review) of the item as the reviewer saw it: the store
    /// refuses the verdict when the item has changed since (empty: not checked).
    SetReview {
        /// The image the item is on.
        image: ImageId,
        target: ReviewTarget,
        #[serde(default)]
        seen: String,
        before: Option<Review>,
        after: Option<Review>,
    },
}

impl Command {
    /// The command that undoes this one.
    pub fn inverse(&self) -> Command {
        match self.clone() {
            Command::AddImage {
                image,
                regions,
                questions,
            } => Command::RemoveImage {
                image,
                regions,
                questions,
            },
            Command::RemoveImage {
                image,
                regions,
                questions,
            } => Command::AddImage {
                image,
                regions,
                questions,
            },
            Command::RelocateImage { id, from, to } => Command::RelocateImage {
                id,
                from: to,
                to: from,
            },
            Command::SetImageStatus { id, before, after } => Command::SetImageStatus {
                id,
                before: after,
                after: before,
            },
            Command::AddRegion { region, links } => Command::DeleteRegion { region, links },
            Command::DeleteRegion { region, links } => Command::AddRegion { region, links },
            Command::UpdateRegion { before, after } => Command::UpdateRegion {
                before: after,
                after: before,
            },
            Command::AddQuestion { question } => Command::DeleteQuestion { question },
            Command::DeleteQuestion { question } => Command::AddQuestion { question },
            Command::UpdateQuestion { before, after } => Command::UpdateQuestion {
                before: after,
                after: before,
            },
            Command::AddCategory { category } => Command::RemoveCategory { category },
            Command::RemoveCategory { category } => Command::AddCategory { category },
            Command::SetReview {
                image,
                target,
                seen,
                before,
                after,
            } => Command::SetReview {
                image,
                target,
                seen,
                before: after,
                after: before,
            },
        }
    }

    /// A short description for the journal view and undo menu ("add box 'red sign'").
    pub fn describe(&self) -> String {
        match self {
            Command::AddImage { image, .. } => format!("add image {}", image.file_name()),
            Command::RemoveImage { image, .. } => format!("remove image {}", image.file_name()),
            Command::RelocateImage { to, .. } => format!("relocate image to {}", to.display()),
            Command::SetImageStatus { after, .. } => format!("mark image {}", after.title()),
            Command::AddRegion { region, .. } => format!("add box '{}'", region.label),
            Command::DeleteRegion { region, .. } => format!("delete box '{}'", region.label),
            Command::UpdateRegion { after, .. } => format!("edit box '{}'", after.label),
            Command::AddQuestion { question } => format!("add question '{}'", question.text),
            Command::DeleteQuestion { question } => {
                format!("delete question '{}'", question.text)
            }
            Command::UpdateQuestion { after, .. } => format!("edit question '{}'", after.text),
            Command::AddCategory { category } => format!("add category '{}'", category.name),
            Command::RemoveCategory { category } => {
                format!("remove category '{}'", category.name)
            }
            Command::SetReview { target, after, .. } => match after {
                Some(r) => format!("{} {}", r.verdict.as_str(), target.kind_name()),
                None => format!("withdraw the verdict on a {}", target.kind_name()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{Answer, RegionId};
    use crate::geometry::{ImageRect, ImageSize};

    fn sample() -> Vec<Command> {
        let image = ImageRecord {
            id: ImageId::of_bytes(b"img"),
            path: "/data/a.jpg".into(),
            size: ImageSize::new(4000, 3000),
            bytes: 10,
            added_at_ms: 1,
            status: Default::default(),
            review: None,
        };
        let region = Region::new(image.id.clone(), ImageRect::new(1.0, 2.0, 3.0, 4.0), "r");
        let mut moved = region.clone();
        moved.rect.x0 = 0.0;
        let q = Question::new(
            image.id.clone(),
            vec![RegionId::new()],
            "q?",
            Answer::Open { text: "a".into() },
            "ocr",
        );
        vec![
            Command::AddImage {
                image: image.clone(),
                regions: vec![],
                questions: vec![],
            },
            Command::RelocateImage {
                id: image.id.clone(),
                from: "/a".into(),
                to: "/b".into(),
            },
            Command::AddRegion {
                region: region.clone(),
                links: vec![RegionLink {
                    question: q.id,
                    position: 0,
                }],
            },
            Command::UpdateRegion {
                before: region,
                after: moved,
            },
            Command::AddQuestion { question: q },
            Command::AddCategory {
                category: Category::custom("counting"),
            },
            Command::SetReview {
                image: image.id.clone(),
                target: crate::dataset::ReviewTarget::Image(image.id.clone()),
                seen: "abc".into(),
                before: None,
                after: Some(crate::dataset::Review::accepted("rev", "fine", 7)),
            },
        ]
    }

    #[test]
    fn inverse_of_inverse_is_the_command() {
        for c in sample() {
            assert_ne!(c.inverse(), c);
            assert_eq!(c.inverse().inverse(), c);
        }
    }

    #[test]
    fn commands_round_trip_through_json() {
        for c in sample() {
            let json = serde_json::to_string(&c).unwrap();
            let back: Command = serde_json::from_str(&json).unwrap();
            assert_eq!(back, c);
        }
    }
}
