//! Where an annotator's item stands, who may move it where, and why reviewers reject.
//!
//! todo -> in progress -> submitted -> in review -> accepted | rejected (reason) -> fixed ->
//! in review. Annotators start, submit and fix; reviewers and leads open a review and accept or
//! reject, and may withdraw a verdict (back to in review, as an undo does); a lead may also
//! reopen an accepted item. The verdict itself is written on the image (see
//! [`crate::dataset::review`]), so it reaches every member's file and the exports. Annotators may edit an item only while it
//! is theirs to work on (todo, in progress, rejected).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A member's role on the team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Annotator,
    Reviewer,
    Lead,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Annotator, Role::Reviewer, Role::Lead];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Annotator => "annotator",
            Role::Reviewer => "reviewer",
            Role::Lead => "lead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Reviewers and leads review; leads also assign.
    pub fn reviews(self) -> bool {
        matches!(self, Role::Reviewer | Role::Lead)
    }
}

/// The state of one assignment (one image for one annotator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkState {
    Todo,
    InProgress,
    Submitted,
    InReview,
    Accepted,
    Rejected,
    Fixed,
}

impl WorkState {
    pub const ALL: [WorkState; 7] = [
        WorkState::Todo,
        WorkState::InProgress,
        WorkState::Submitted,
        WorkState::InReview,
        WorkState::Accepted,
        WorkState::Rejected,
        WorkState::Fixed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkState::Todo => "todo",
            WorkState::InProgress => "in_progress",
            WorkState::Submitted => "submitted",
            WorkState::InReview => "in_review",
            WorkState::Accepted => "accepted",
            WorkState::Rejected => "rejected",
            WorkState::Fixed => "fixed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the annotator may still change the item.
    pub fn editable_by_annotator(self) -> bool {
        matches!(
            self,
            WorkState::Todo | WorkState::InProgress | WorkState::Rejected
        )
    }
}

/// What someone does to an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ReviewAction {
    Start,
    Submit,
    Fix,
    Open,
    Accept,
    Reject {
        reason: String,
        note: String,
    },
    Reopen,
    /// Take a verdict back (the reviewer's undo): accepted or rejected -> in review.
    Withdraw,
}

impl ReviewAction {
    pub fn name(&self) -> &'static str {
        match self {
            ReviewAction::Start => "start",
            ReviewAction::Submit => "submit",
            ReviewAction::Fix => "fix",
            ReviewAction::Open => "open review",
            ReviewAction::Accept => "accept",
            ReviewAction::Reject { .. } => "reject",
            ReviewAction::Reopen => "reopen",
            ReviewAction::Withdraw => "withdraw the verdict on",
        }
    }
}

/// Reasons a reviewer picks from when rejecting (plus free text).
pub use crate::dataset::REJECT_REASONS;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReviewError {
    #[error("cannot {action} an item that is {state} (as {role})")]
    NotAllowed {
        action: &'static str,
        state: &'static str,
        role: &'static str,
    },
    #[error("'{0}' is not a rejection reason; pick one of: {reasons}", reasons = REJECT_REASONS.join(", "))]
    UnknownReason(String),
}

/// The state `action` leads to from `state` for someone with `role`, or why it may not.
pub fn next_state(
    state: WorkState,
    action: &ReviewAction,
    role: Role,
) -> Result<WorkState, ReviewError> {
    use WorkState::*;
    let refused = || ReviewError::NotAllowed {
        action: action.name(),
        state: state.as_str(),
        role: role.as_str(),
    };
    let next = match (action, state) {
        (ReviewAction::Start, Todo) => InProgress,
        (ReviewAction::Submit, Todo | InProgress) => Submitted,
        (ReviewAction::Fix, Rejected) => Fixed,
        (ReviewAction::Open, Submitted | Fixed) if role.reviews() => InReview,
        (ReviewAction::Accept, InReview) if role.reviews() => Accepted,
        (ReviewAction::Reject { reason, .. }, InReview) if role.reviews() => {
            if !REJECT_REASONS.contains(&reason.as_str()) {
                return Err(ReviewError::UnknownReason(reason.clone()));
            }
            Rejected
        }
        (ReviewAction::Reopen, Accepted) if role == Role::Lead => InReview,
        (ReviewAction::Withdraw, Accepted | Rejected) if role.reviews() => InReview,
        _ => return Err(refused()),
    };
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_review_cycle_runs_and_nothing_skips_a_step() {
        use WorkState::*;
        let a = Role::Annotator;
        let r = Role::Reviewer;
        let mut s = Todo;
        s = next_state(s, &ReviewAction::Start, a).unwrap();
        assert_eq!(s, InProgress);
        s = next_state(s, &ReviewAction::Submit, a).unwrap();
        assert_eq!(s, Submitted);
        // An annotator cannot review their own work.
        assert!(next_state(s, &ReviewAction::Open, a).is_err());
        assert!(
            next_state(s, &ReviewAction::Accept, r).is_err(),
            "accept needs a review"
        );
        s = next_state(s, &ReviewAction::Open, r).unwrap();
        let reject = ReviewAction::Reject {
            reason: "wrong label".into(),
            note: "it is a bus".into(),
        };
        s = next_state(s, &reject, r).unwrap();
        assert_eq!(s, Rejected);
        assert!(s.editable_by_annotator());
        s = next_state(s, &ReviewAction::Fix, a).unwrap();
        assert_eq!(s, Fixed);
        assert!(!s.editable_by_annotator());
        s = next_state(s, &ReviewAction::Open, r).unwrap();
        assert_eq!(s, InReview);
        s = next_state(s, &ReviewAction::Accept, r).unwrap();
        assert_eq!(s, Accepted);
        assert!(!s.editable_by_annotator());
        assert!(next_state(s, &ReviewAction::Reopen, r).is_err());
        assert_eq!(
            next_state(s, &ReviewAction::Reopen, Role::Lead).unwrap(),
            InReview
        );
    }

    #[test]
    fn rejections_need_a_listed_reason() {
        let bad = ReviewAction::Reject {
            reason: "meh".into(),
            note: String::new(),
        };
        let err = next_state(WorkState::InReview, &bad, Role::Reviewer).unwrap_err();
        assert!(err.to_string().contains("wrong label"), "{err}");
    }

    #[test]
    fn names_round_trip() {
        for s in WorkState::ALL {
            assert_eq!(WorkState::parse(s.as_str()), Some(s));
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
    }
}
