//! The store's rules, written once for both backends: what each [`Command`] does to the rows,
//! the state an update or deletion expects to find (a conflict when it does not), the journal
//! with undo/redo, and how rows read back as domain types.
//!
//! Everything here runs inside the caller's transaction through [`Db`]. Every row of images,
//! regions and questions carries a `revision` that each write raises by one.

use std::path::{Path, PathBuf};

use super::sql::{Db, Row, vals};
use super::{Command, JournalAction, JournalEntry, RegionLink, StoreError, now_ms};
use crate::dataset::review::{image_fingerprint, question_fingerprint, region_fingerprint};
use crate::dataset::{
    Answer, Category, ImageId, ImageRecord, ImageStatus, Question, QuestionId, Region, RegionId,
    Review, ReviewTarget, rules,
};
use crate::geometry::{ImageRect, ImageSize};

// ---- the journal and undo/redo ----

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

// ---- execution of commands inside a transaction ----

pub fn execute(db: &mut dyn Db, command: &Command) -> Result<(), StoreError> {
    match command {
        Command::AddImage {
            image,
            regions,
            questions,
        } => {
            if let Some(existing) = read_image(db, &image.id)? {
                return Err(StoreError::DuplicateImage {
                    path: image.path.clone(),
                    existing: existing.path,
                });
            }
            db.exec(
                "INSERT INTO images (id, path, width, height, bytes, added_at_ms, status, review) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                vals![
                    image.id.as_str(),
                    path_text(&image.path),
                    image.size.width,
                    image.size.height,
                    image.bytes as i64,
                    image.added_at_ms,
                    image.status.as_str(),
                    review_json(image.review.as_ref())?
                ],
            )?;
            for r in regions {
                insert_region(db, r)?;
            }
            for q in questions {
                insert_question(db, q)?;
            }
        }
        Command::RemoveImage {
            image,
            regions,
            questions,
        } => {
            let current = read_image(db, &image.id)?
                .ok_or_else(|| StoreError::UnknownImage(image.id.clone()))?;
            if current != *image
                || read_regions(db, &image.id)?.len() != regions.len()
                || count_questions(db, &image.id)? != questions.len() as i64
            {
                return Err(StoreError::Conflict(format!("image {}", image.file_name())));
            }
            for q in questions {
                delete_question(db, q)?;
            }
            for r in regions {
                delete_region(db, r, &[])?;
            }
            db.exec("DELETE FROM images WHERE id = ?1", vals![image.id.as_str()])?;
        }
        Command::RelocateImage { id, from, to } => {
            let current =
                read_image(db, id)?.ok_or_else(|| StoreError::UnknownImage(id.clone()))?;
            if current.path != *from {
                return Err(StoreError::Conflict(format!(
                    "the path of image {}",
                    id.short()
                )));
            }
            db.exec(
                "UPDATE images SET path = ?1, revision = revision + 1 WHERE id = ?2",
                vals![path_text(to), id.as_str()],
            )?;
        }
        Command::SetImageStatus { id, before, after } => {
            let current =
                read_image(db, id)?.ok_or_else(|| StoreError::UnknownImage(id.clone()))?;
            if current.status != *before {
                return Err(StoreError::Conflict(format!(
                    "the status of {}",
                    current.file_name()
                )));
            }
            db.exec(
                "UPDATE images SET status = ?1, revision = revision + 1 WHERE id = ?2",
                vals![after.as_str(), id.as_str()],
            )?;
        }
        Command::AddRegion { region, links } => {
            insert_region(db, region)?;
            for link in links {
                let q = read_question(db, link.question)?
                    .ok_or(StoreError::UnknownQuestion(link.question))?;
                let mut ids = q.regions.clone();
                ids.insert(link.position.min(ids.len()), region.id);
                write_links(db, link.question, &ids)?;
            }
        }
        Command::DeleteRegion { region, links } => {
            delete_region(db, region, links)?;
        }
        Command::UpdateRegion { before, after } => {
            if before.id != after.id || before.image != after.image {
                return Err(StoreError::Conflict(format!("box {}", before.id)));
            }
            expect_current(
                read_region(db, before.id)?,
                before,
                StoreError::UnknownRegion(before.id),
                || format!("box '{}'", before.label),
            )?;
            check_region_geometry(db, after)?;
            db.exec(
                "UPDATE regions SET x0 = ?1, y0 = ?2, x1 = ?3, y1 = ?4, label = ?5, review = ?6, revision = revision + 1 WHERE id = ?7",
                vals![
                    after.rect.x0,
                    after.rect.y0,
                    after.rect.x1,
                    after.rect.y1,
                    after.label.as_str(),
                    review_json(after.review.as_ref())?,
                    after.id.0.to_string()
                ],
            )?;
        }
        Command::AddQuestion { question } => insert_question(db, question)?,
        Command::DeleteQuestion { question } => delete_question(db, question)?,
        Command::UpdateQuestion { before, after } => {
            if before.id != after.id || before.image != after.image {
                return Err(StoreError::Conflict(format!("question {}", before.id)));
            }
            expect_current(
                read_question(db, before.id)?,
                before,
                StoreError::UnknownQuestion(before.id),
                || format!("question '{}'", before.text),
            )?;
            check_question_refs(db, after)?;
            db.exec(
                "UPDATE questions SET text = ?1, answer = ?2, category = ?3, status = ?4, review = ?5, revision = revision + 1 WHERE id = ?6",
                vals![
                    after.text.as_str(),
                    answer_json(&after.answer)?,
                    after.category.as_str(),
                    status_word(after.review.as_ref()),
                    review_json(after.review.as_ref())?,
                    after.id.0.to_string()
                ],
            )?;
            write_links(db, after.id, &after.regions)?;
        }
        Command::AddCategory { category } => {
            if category.name.trim().is_empty() {
                return Err(rules::RuleError::EmptyCategory.into());
            }
            let exists = db.count(
                "SELECT count(*) FROM categories WHERE name = ?1",
                vals![category.name.as_str()],
            )?;
            if exists > 0 {
                return Err(StoreError::DuplicateCategory(category.name.clone()));
            }
            db.exec(
                "INSERT INTO categories (name, builtin) VALUES (?1, ?2)",
                vals![category.name.as_str(), category.builtin],
            )?;
        }
        Command::RemoveCategory { category } => {
            if category.builtin {
                return Err(StoreError::BuiltinCategory(category.name.clone()));
            }
            let count = db.count(
                "SELECT count(*) FROM questions WHERE category = ?1",
                vals![category.name.as_str()],
            )?;
            if count > 0 {
                return Err(StoreError::CategoryInUse {
                    name: category.name.clone(),
                    count: count as u64,
                });
            }
            let n = db.exec(
                "DELETE FROM categories WHERE name = ?1 AND builtin = 0",
                vals![category.name.as_str()],
            )?;
            if n == 0 {
                return Err(StoreError::UnknownCategory(category.name.clone()));
            }
        }
        Command::SetReview {
            image,
            target,
            seen,
            before,
            after,
        } => set_review(db, image, target, seen, before.as_ref(), after.as_ref())?,
    }
    Ok(())
}

/// A verdict changes only when the item is as the reviewer saw it and its verdict is the one
/// the reviewer replaced.
fn set_review(
    db: &mut dyn Db,
    image_id: &ImageId,
    target: &ReviewTarget,
    seen: &str,
    before: Option<&Review>,
    after: Option<&Review>,
) -> Result<(), StoreError> {
    if let Some(Review {
        verdict: crate::dataset::Verdict::Rejected,
        reason,
        ..
    }) = after
    {
        let reason = reason.as_deref().unwrap_or("");
        if !crate::dataset::REJECT_REASONS.contains(&reason) {
            return Err(StoreError::Review(
                crate::dataset::review::ReviewError::UnknownReason(reason.to_owned()),
            ));
        }
    }
    let (what, current, fingerprint, table, id) = match target {
        ReviewTarget::Image(id) if id != image_id => {
            return Err(StoreError::Conflict(format!("image {}", id.short())));
        }
        ReviewTarget::Image(id) => {
            let image = read_image(db, id)?.ok_or_else(|| StoreError::UnknownImage(id.clone()))?;
            let fp = image_fingerprint(&image, &read_regions(db, id)?, &read_questions(db, id)?);
            (
                format!("image {}", image.file_name()),
                image.review,
                fp,
                "images",
                id.as_str().to_owned(),
            )
        }
        ReviewTarget::Region(id) => {
            let r = read_region(db, *id)?.ok_or(StoreError::UnknownRegion(*id))?;
            if r.image != *image_id {
                return Err(StoreError::UnknownRegion(*id));
            }
            let fp = region_fingerprint(&r);
            (
                format!("box '{}'", r.label),
                r.review,
                fp,
                "regions",
                id.to_string(),
            )
        }
        ReviewTarget::Question(id) => {
            let q = read_question(db, *id)?.ok_or(StoreError::UnknownQuestion(*id))?;
            if q.image != *image_id {
                return Err(StoreError::UnknownQuestion(*id));
            }
            let fp = question_fingerprint(&q);
            (
                format!("question '{}'", q.text),
                q.review,
                fp,
                "questions",
                id.to_string(),
            )
        }
    };
    if !seen.is_empty() && seen != fingerprint {
        return Err(StoreError::ChangedSinceSeen { what });
    }
    if current.as_ref() != before {
        return Err(StoreError::Conflict(format!(
            "the verdict on {what} (now {})",
            current
                .as_ref()
                .map_or("unreviewed".to_owned(), Review::describe)
        )));
    }
    let json = review_json(after)?;
    match table {
        "images" => db.exec(
            "UPDATE images SET review = ?1, revision = revision + 1 WHERE id = ?2",
            vals![json, id],
        )?,
        "regions" => db.exec(
            "UPDATE regions SET review = ?1, revision = revision + 1 WHERE id = ?2",
            vals![json, id],
        )?,
        _ => db.exec(
            "UPDATE questions SET review = ?1, status = ?2, revision = revision + 1 WHERE id = ?3",
            vals![json, status_word(after), id],
        )?,
    };
    Ok(())
}

/// The old `status` column, kept readable for plain SQL: draft, accepted or rejected.
fn status_word(review: Option<&Review>) -> &'static str {
    review.map_or("draft", |r| r.verdict.as_str())
}

pub fn review_json(review: Option<&Review>) -> Result<Option<String>, StoreError> {
    review
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt {
            table: "reviews",
            reason: e.to_string(),
        })
}

pub fn parse_review(
    table: &'static str,
    json: Option<String>,
) -> Result<Option<Review>, StoreError> {
    json.filter(|j| !j.is_empty())
        .map(|j| serde_json::from_str(&j))
        .transpose()
        .map_err(|e| StoreError::Corrupt {
            table,
            reason: format!("bad review: {e}"),
        })
}

/// An update or deletion must find the row as it expects it: otherwise someone else changed
/// it (a conflict) or it is gone.
fn expect_current<T: PartialEq>(
    current: Option<T>,
    expected: &T,
    unknown: StoreError,
    what: impl FnOnce() -> String,
) -> Result<(), StoreError> {
    match current {
        None => Err(unknown),
        Some(c) if c == *expected => Ok(()),
        Some(_) => Err(StoreError::Conflict(what())),
    }
}

fn check_region_geometry(db: &mut dyn Db, region: &Region) -> Result<(), StoreError> {
    let image = read_image(db, &region.image)?
        .ok_or_else(|| StoreError::UnknownImage(region.image.clone()))?;
    rules::check_rect(&region.rect, image.size)?;
    Ok(())
}

pub fn insert_region(db: &mut dyn Db, region: &Region) -> Result<(), StoreError> {
    check_region_geometry(db, region)?;
    if read_region(db, region.id)?.is_some() {
        return Err(StoreError::DuplicateRegion(region.id));
    }
    db.exec(
        "INSERT INTO regions (id, image_id, x0, y0, x1, y1, label, review) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        vals![
            region.id.0.to_string(),
            region.image.as_str(),
            region.rect.x0,
            region.rect.y0,
            region.rect.x1,
            region.rect.y1,
            region.label.as_str(),
            review_json(region.review.as_ref())?
        ],
    )?;
    Ok(())
}

fn delete_region(db: &mut dyn Db, region: &Region, links: &[RegionLink]) -> Result<(), StoreError> {
    expect_current(
        read_region(db, region.id)?,
        region,
        StoreError::UnknownRegion(region.id),
        || format!("box '{}'", region.label),
    )?;
    let current_links = read_links(db, region.id)?;
    if !links.is_empty() && current_links != links {
        return Err(StoreError::Conflict(format!(
            "the questions linked to box '{}'",
            region.label
        )));
    }
    for link in &current_links {
        if let Some(q) = read_question(db, link.question)? {
            let ids: Vec<RegionId> = q.regions.into_iter().filter(|r| *r != region.id).collect();
            write_links(db, link.question, &ids)?;
        }
    }
    db.exec(
        "DELETE FROM regions WHERE id = ?1",
        vals![region.id.0.to_string()],
    )?;
    Ok(())
}

fn check_question_refs(db: &mut dyn Db, q: &Question) -> Result<(), StoreError> {
    if read_image(db, &q.image)?.is_none() {
        return Err(StoreError::UnknownImage(q.image.clone()));
    }
    let known = db.count(
        "SELECT count(*) FROM categories WHERE name = ?1",
        vals![q.category.as_str()],
    )?;
    if known == 0 {
        return Err(StoreError::UnknownCategory(q.category.clone()));
    }
    for id in &q.regions {
        let r = read_region(db, *id)?.ok_or(StoreError::UnknownRegion(*id))?;
        if r.image != q.image {
            return Err(StoreError::ForeignRegion { region: *id });
        }
    }
    if let Answer::Choice { options, correct } = &q.answer
        && *correct >= options.len()
    {
        return Err(rules::RuleError::CorrectOutOfRange {
            index: *correct,
            count: options.len(),
        }
        .into());
    }
    Ok(())
}

pub fn insert_question(db: &mut dyn Db, q: &Question) -> Result<(), StoreError> {
    check_question_refs(db, q)?;
    if read_question(db, q.id)?.is_some() {
        return Err(StoreError::DuplicateQuestion(q.id));
    }
    db.exec(
        "INSERT INTO questions (id, image_id, text, answer, category, status, review) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        vals![
            q.id.0.to_string(),
            q.image.as_str(),
            q.text.as_str(),
            answer_json(&q.answer)?,
            q.category.as_str(),
            status_word(q.review.as_ref()),
            review_json(q.review.as_ref())?
        ],
    )?;
    write_links(db, q.id, &q.regions)
}

fn delete_question(db: &mut dyn Db, q: &Question) -> Result<(), StoreError> {
    expect_current(
        read_question(db, q.id)?,
        q,
        StoreError::UnknownQuestion(q.id),
        || format!("question '{}'", q.text),
    )?;
    let id = q.id.0.to_string();
    db.exec(
        "DELETE FROM question_regions WHERE question_id = ?1",
        vals![id.as_str()],
    )?;
    db.exec("DELETE FROM questions WHERE id = ?1", vals![id])?;
    Ok(())
}

pub fn write_links(
    db: &mut dyn Db,
    question: QuestionId,
    regions: &[RegionId],
) -> Result<(), StoreError> {
    let qid = question.0.to_string();
    db.exec(
        "DELETE FROM question_regions WHERE question_id = ?1",
        vals![qid.as_str()],
    )?;
    for (position, r) in regions.iter().enumerate() {
        db.exec(
            "INSERT INTO question_regions (question_id, region_id, position) VALUES (?1, ?2, ?3)",
            vals![qid.as_str(), r.0.to_string(), position as i64],
        )?;
    }
    Ok(())
}

// ---- reading rows ----

pub const IMAGE_COLUMNS: &str = "id, path, width, height, bytes, added_at_ms, status, review";
pub const REGION_COLUMNS: &str = "id, image_id, x0, y0, x1, y1, label, review";

pub fn image_from_row(row: &Row) -> Result<ImageRecord, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "images",
        reason,
    };
    let id = row.text(0)?;
    let id = ImageId::parse(&id).ok_or_else(|| corrupt(format!("bad image id '{id}'")))?;
    let (w, h) = (row.int(2)?, row.int(3)?);
    let width = u32::try_from(w).map_err(|_| corrupt(format!("bad width {w}")))?;
    let height = u32::try_from(h).map_err(|_| corrupt(format!("bad height {h}")))?;
    let status = row.text(6)?;
    Ok(ImageRecord {
        id,
        path: PathBuf::from(row.text(1)?),
        size: ImageSize::new(width, height),
        bytes: row.int(4)?.max(0) as u64,
        added_at_ms: row.int(5)?,
        status: ImageStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown status '{status}'")))?,
        review: parse_review("images", row.opt_text(7)?)?,
    })
}

pub fn region_from_row(row: &Row) -> Result<Region, StoreError> {
    let image = row.text(1)?;
    Ok(Region {
        id: RegionId(parse_uuid("regions", &row.text(0)?)?),
        image: ImageId::parse(&image).ok_or_else(|| StoreError::Corrupt {
            table: "regions",
            reason: format!("bad image id '{image}'"),
        })?,
        rect: ImageRect::new(row.real(2)?, row.real(3)?, row.real(4)?, row.real(5)?),
        label: row.text(6)?,
        review: parse_review("regions", row.opt_text(7)?)?,
    })
}

pub fn read_images(db: &mut dyn Db) -> Result<Vec<ImageRecord>, StoreError> {
    db.rows(
        &format!("SELECT {IMAGE_COLUMNS} FROM images ORDER BY path, id"),
        &[],
    )?
    .iter()
    .map(image_from_row)
    .collect()
}

pub fn read_image(db: &mut dyn Db, id: &ImageId) -> Result<Option<ImageRecord>, StoreError> {
    db.row(
        &format!("SELECT {IMAGE_COLUMNS} FROM images WHERE id = ?1"),
        vals![id.as_str()],
    )?
    .as_ref()
    .map(image_from_row)
    .transpose()
}

fn count_questions(db: &mut dyn Db, image: &ImageId) -> Result<i64, StoreError> {
    db.count(
        "SELECT count(*) FROM questions WHERE image_id = ?1",
        vals![image.as_str()],
    )
}

pub fn read_regions(db: &mut dyn Db, image: &ImageId) -> Result<Vec<Region>, StoreError> {
    db.rows(
        &format!("SELECT {REGION_COLUMNS} FROM regions WHERE image_id = ?1 ORDER BY id"),
        vals![image.as_str()],
    )?
    .iter()
    .map(region_from_row)
    .collect()
}

pub fn read_region(db: &mut dyn Db, id: RegionId) -> Result<Option<Region>, StoreError> {
    db.row(
        &format!("SELECT {REGION_COLUMNS} FROM regions WHERE id = ?1"),
        vals![id.0.to_string()],
    )?
    .as_ref()
    .map(region_from_row)
    .transpose()
}

pub fn read_links(db: &mut dyn Db, region: RegionId) -> Result<Vec<RegionLink>, StoreError> {
    db.rows(
        "SELECT question_id, position FROM question_regions WHERE region_id = ?1 ORDER BY question_id",
        vals![region.0.to_string()],
    )?
    .iter()
    .map(|row| {
        Ok(RegionLink {
            question: QuestionId(parse_uuid("question_regions", &row.text(0)?)?),
            position: row.int(1)?.max(0) as usize,
        })
    })
    .collect()
}

pub fn read_questions(db: &mut dyn Db, image: &ImageId) -> Result<Vec<Question>, StoreError> {
    let ids = db.rows(
        "SELECT id FROM questions WHERE image_id = ?1 ORDER BY id",
        vals![image.as_str()],
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for row in ids {
        let id = QuestionId(parse_uuid("questions", &row.text(0)?)?);
        if let Some(q) = read_question(db, id)? {
            out.push(q);
        }
    }
    Ok(out)
}

pub fn read_question(db: &mut dyn Db, id: QuestionId) -> Result<Option<Question>, StoreError> {
    let Some(row) = db.row(
        "SELECT image_id, text, answer, category, review FROM questions WHERE id = ?1",
        vals![id.0.to_string()],
    )?
    else {
        return Ok(None);
    };
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "questions",
        reason,
    };
    let regions = db
        .rows(
            "SELECT region_id FROM question_regions WHERE question_id = ?1 ORDER BY position",
            vals![id.0.to_string()],
        )?
        .iter()
        .map(|r| Ok(RegionId(parse_uuid("question_regions", &r.text(0)?)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let image = row.text(0)?;
    Ok(Some(Question {
        id,
        image: ImageId::parse(&image).ok_or_else(|| corrupt(format!("bad image id '{image}'")))?,
        regions,
        text: row.text(1)?,
        answer: parse_answer(&row.text(2)?)?,
        category: row.text(3)?,
        review: parse_review("questions", row.opt_text(4)?)?,
    }))
}

pub fn read_categories(db: &mut dyn Db) -> Result<Vec<Category>, StoreError> {
    db.rows(
        "SELECT name, builtin FROM categories ORDER BY builtin DESC, name",
        &[],
    )?
    .iter()
    .map(|row| {
        Ok(Category {
            name: row.text(0)?,
            builtin: row.int(1)? != 0,
        })
    })
    .collect()
}

pub fn delete_region_command(db: &mut dyn Db, id: RegionId) -> Result<Command, StoreError> {
    let region = read_region(db, id)?.ok_or(StoreError::UnknownRegion(id))?;
    let links = read_links(db, id)?;
    Ok(Command::DeleteRegion { region, links })
}

/// The revision of an image, region or question row (`None` when there is no such row).
pub fn revision(db: &mut dyn Db, table: RowTable, id: &str) -> Result<Option<i64>, StoreError> {
    let sql = match table {
        RowTable::Images => "SELECT revision FROM images WHERE id = ?1",
        RowTable::Regions => "SELECT revision FROM regions WHERE id = ?1",
        RowTable::Questions => "SELECT revision FROM questions WHERE id = ?1",
    };
    db.row(sql, vals![id])?.map(|r| r.int(0)).transpose()
}

/// The tables whose rows carry revisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowTable {
    Images,
    Regions,
    Questions,
}

pub fn parse_uuid(table: &'static str, s: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::parse_str(s).map_err(|e| StoreError::Corrupt {
        table,
        reason: format!("bad id '{s}': {e}"),
    })
}

pub fn parse_answer(json: &str) -> Result<Answer, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        table: "questions",
        reason: format!("bad answer: {e}"),
    })
}

pub fn answer_json(answer: &Answer) -> Result<String, StoreError> {
    serde_json::to_string(answer).map_err(|e| StoreError::Corrupt {
        table: "questions",
        reason: e.to_string(),
    })
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
