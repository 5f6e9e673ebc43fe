//! Journal entries: the audit trail of who did what, when.

use serde::{Deserialize, Serialize};

use super::Command;

/// What a journal row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalAction {
    /// A new edit.
    Edit,
    /// An earlier edit (the entry's `target`) was undone; `command` is what was applied.
    Undo,
    /// An undone edit (the entry's `target`) was applied again.
    Redo,
}

impl JournalAction {
    pub fn as_str(self) -> &'static str {
        match self {
            JournalAction::Edit => "edit",
            JournalAction::Undo => "undo",
            JournalAction::Redo => "redo",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "edit" => Some(JournalAction::Edit),
            "undo" => Some(JournalAction::Undo),
            "redo" => Some(JournalAction::Redo),
            _ => None,
        }
    }
}

/// One row of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub seq: i64,
    /// Unix time in milliseconds.
    pub at_ms: i64,
    pub actor: String,
    pub action: JournalAction,
    /// For undo and redo: the edit they act on.
    pub target: Option<i64>,
    /// The command that was applied by this entry.
    pub command: Command,
}
