//! The store's rules, written once for both backends: what each [`Command`] does to the rows,
//! the state an update or deletion expects to find (a conflict when it does not), the journal
//! with undo/redo, and how rows read back as domain types.
//!
//! Everything here runs inside the caller's transaction through [`Db`]. Every row of images,
//! regions and questions carries a `revision` that each write raises by one.

mod execute;
mod read;

pub use execute::*;
pub use read::*;

use std::path::{Path, PathBuf};

use super::sql::{Db, Row, vals};
use super::{Command, JournalAction, JournalEntry, RegionLink, StoreError, now_ms};
use crate::dataset::review::{image_fingerprint, question_fingerprint, region_fingerprint};
use crate::dataset::{
    Answer, Category, ImageId, ImageRecord, ImageStatus, Question, QuestionId, Region, RegionId,
    Review, ReviewTarget, rules,
};
use crate::geometry::{ImageRect, ImageSize};

/// Apply a new edit and journal it (an undoable edit: the redo list is discarded).
pub fn apply(db: &mut dyn Db, actor: &str, command: &Command) -> Result<i64, StoreError> {
    execute(db, command)?;
    db.exec(
        "UPDATE journal SET state = 'discarded' WHERE state = 'undone'",
        &[],
    )?;
    journal_append(db, actor, JournalAction::Edit, None, command, Some("done"))
}

/// Apply a new edit that belongs to a visit of one text field: the edits saved while a
/// person types in one field share `visit`, so one undo takes the whole visit back.
pub fn apply_in_visit(
    db: &mut dyn Db,
    actor: &str,
    command: &Command,
    visit: &str,
) -> Result<i64, StoreError> {
    let seq = apply(db, actor, command)?;
    db.exec(
        "UPDATE journal SET visit = ?1 WHERE seq = ?2",
        vals![visit, seq],
    )?;
    Ok(seq)
}

/// Undo the latest done edit, with the rest of its field visit.
pub fn undo(db: &mut dyn Db, actor: &str) -> Result<Option<Command>, StoreError> {
    let Some(first) = journal_candidate(db, "done", true)? else {
        return Ok(None);
    };
    let visit = first.visit.clone();
    let mut next = Some(first);
    let mut undone = None;
    while let Some(c) = next {
        let inverse = c.command.inverse();
        execute(db, &inverse)?;
        db.exec(
            "UPDATE journal SET state = 'undone' WHERE seq = ?1",
            vals![c.seq],
        )?;
        journal_append(db, actor, JournalAction::Undo, Some(c.seq), &inverse, None)?;
        undone.get_or_insert(c.command);
        next = same_visit(journal_candidate(db, "done", true)?, visit.as_deref());
    }
    Ok(undone)
}

/// Redo the earliest undone edit, with the rest of its field visit.
pub fn redo(db: &mut dyn Db, actor: &str) -> Result<Option<Command>, StoreError> {
    let Some(first) = journal_candidate(db, "undone", false)? else {
        return Ok(None);
    };
    let visit = first.visit.clone();
    let mut next = Some(first);
    let mut redone = None;
    while let Some(c) = next {
        execute(db, &c.command)?;
        db.exec(
            "UPDATE journal SET state = 'done' WHERE seq = ?1",
            vals![c.seq],
        )?;
        journal_append(
            db,
            actor,
            JournalAction::Redo,
            Some(c.seq),
            &c.command,
            None,
        )?;
        redone.get_or_insert(c.command);
        next = same_visit(journal_candidate(db, "undone", false)?, visit.as_deref());
    }
    Ok(redone)
}

/// The candidate, when it belongs to the same (named) field visit.
fn same_visit(candidate: Option<Candidate>, visit: Option<&str>) -> Option<Candidate> {
    candidate.filter(|c| visit.is_some() && c.visit.as_deref() == visit)
}

pub fn journal_append(
    db: &mut dyn Db,
    actor: &str,
    action: JournalAction,
    target: Option<i64>,
    command: &Command,
    state: Option<&str>,
) -> Result<i64, StoreError> {
    journal_append_from(db, actor, action, target, command, state, "local")
}

/// Append a journal row recording where the edit came from (`local`, or `server` for an edit
/// a team client took from the server, which it never sends back).
pub fn journal_append_from(
    db: &mut dyn Db,
    actor: &str,
    action: JournalAction,
    target: Option<i64>,
    command: &Command,
    state: Option<&str>,
    origin: &str,
) -> Result<i64, StoreError> {
    let json = serde_json::to_string(command).map_err(|e| StoreError::Corrupt {
        table: "journal",
        reason: e.to_string(),
    })?;
    let row = db
        .row(
            "INSERT INTO journal (at_ms, actor, action, target, command, state, origin) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING seq",
            vals![
                now_ms(),
                actor,
                action.as_str(),
                target,
                json,
                state,
                origin
            ],
        )?
        .ok_or_else(|| StoreError::Corrupt {
            table: "journal",
            reason: "insert returned no sequence number".into(),
        })?;
    row.int(0)
}

/// The next edit undo or redo would take.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub seq: i64,
    pub command: Command,
    /// The field visit it belongs to, if any.
    pub visit: Option<String>,
}

pub fn journal_candidate(
    db: &mut dyn Db,
    state: &str,
    newest_first: bool,
) -> Result<Option<Candidate>, StoreError> {
    let sql = if newest_first {
        "SELECT seq, command, visit FROM journal WHERE action = 'edit' AND state = ?1 ORDER BY seq DESC LIMIT 1"
    } else {
        "SELECT seq, command, visit FROM journal WHERE action = 'edit' AND state = ?1 ORDER BY seq ASC LIMIT 1"
    };
    match db.row(sql, vals![state])? {
        Some(row) => Ok(Some(Candidate {
            seq: row.int(0)?,
            command: parse_command(&row.text(1)?)?,
            visit: row.opt_text(2)?,
        })),
        None => Ok(None),
    }
}

pub fn journal(db: &mut dyn Db, after: i64, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
    let rows = db.rows(
        "SELECT seq, at_ms, actor, action, target, command FROM journal WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        vals![after, limit as i64],
    )?;
    rows.iter().map(journal_entry).collect()
}

pub fn journal_entry(row: &Row) -> Result<JournalEntry, StoreError> {
    let action = row.text(3)?;
    Ok(JournalEntry {
        seq: row.int(0)?,
        at_ms: row.int(1)?,
        actor: row.text(2)?,
        action: JournalAction::parse(&action).ok_or_else(|| StoreError::Corrupt {
            table: "journal",
            reason: format!("unknown action '{action}'"),
        })?,
        target: row.opt_int(4)?,
        command: parse_command(&row.text(5)?)?,
    })
}

pub fn parse_command(json: &str) -> Result<Command, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        table: "journal",
        reason: e.to_string(),
    })
}
