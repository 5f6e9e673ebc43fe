//! The store's rules, written once for both backends: what each [`Command`] does to the rows,
//! the state an update or deletion expects to find (a conflict when it does not), the journal
//! with undo/redo, and how rows read back as domain types.
//!
//! Everything here runs inside the caller's transaction through [`Db`]. Every row of images,
//! regions and questions carries a `revision` that each write raises by one.

use std::path::{Path, PathBuf};

use super::sql::{Db, Row, vals};
use super::{Command, JournalAction, JournalEntry, RegionLink, StoreError, now_ms};
use crate::dataset::{
    Answer, Category, ImageId, ImageRecord, ImageStatus, Question, QuestionId, Region, RegionId,
    ReviewStatus, rules,
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

/// Undo the latest done edit.
pub fn undo(db: &mut dyn Db, actor: &str) -> Result<Option<Command>, StoreError> {
    let Some((seq, command)) = journal_candidate(db, "done", true)? else {
        return Ok(None);
    };
    let inverse = command.inverse();
    execute(db, &inverse)?;
    db.exec(
        "UPDATE journal SET state = 'undone' WHERE seq = ?1",
        vals![seq],
    )?;
    journal_append(db, actor, JournalAction::Undo, Some(seq), &inverse, None)?;
    Ok(Some(command))
}

/// Redo the earliest undone edit.
pub fn redo(db: &mut dyn Db, actor: &str) -> Result<Option<Command>, StoreError> {
    let Some((seq, command)) = journal_candidate(db, "undone", false)? else {
        return Ok(None);
    };
    execute(db, &command)?;
    db.exec(
        "UPDATE journal SET state = 'done' WHERE seq = ?1",
        vals![seq],
    )?;
    journal_append(db, actor, JournalAction::Redo, Some(seq), &command, None)?;
    Ok(Some(command))
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

pub fn journal_candidate(
    db: &mut dyn Db,
    state: &str,
    newest_first: bool,
) -> Result<Option<(i64, Command)>, StoreError> {
    let sql = if newest_first {
        "SELECT seq, command FROM journal WHERE action = 'edit' AND state = ?1 ORDER BY seq DESC LIMIT 1"
    } else {
        "SELECT seq, command FROM journal WHERE action = 'edit' AND state = ?1 ORDER BY seq ASC LIMIT 1"
    };
    match db.row(sql, vals![state])? {
        Some(row) => Ok(Some((row.int(0)?, parse_command(&row.text(1)?)?))),
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
                "INSERT INTO images (id, path, width, height, bytes, added_at_ms, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                vals![
                    image.id.as_str(),
                    path_text(&image.path),
                    image.size.width,
                    image.size.height,
                    image.bytes as i64,
                    image.added_at_ms,
                    image.status.as_str()
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
                "UPDATE regions SET x0 = ?1, y0 = ?2, x1 = ?3, y1 = ?4, label = ?5, revision = revision + 1 WHERE id = ?6",
                vals![
                    after.rect.x0,
                    after.rect.y0,
                    after.rect.x1,
                    after.rect.y1,
                    after.label.as_str(),
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
                "UPDATE questions SET text = ?1, answer = ?2, category = ?3, status = ?4, revision = revision + 1 WHERE id = ?5",
                vals![
                    after.text.as_str(),
                    answer_json(&after.answer)?,
                    after.category.as_str(),
                    after.status.as_str(),
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
    }
    Ok(())
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
        "INSERT INTO regions (id, image_id, x0, y0, x1, y1, label) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        vals![
            region.id.0.to_string(),
            region.image.as_str(),
            region.rect.x0,
            region.rect.y0,
            region.rect.x1,
            region.rect.y1,
            region.label.as_str()
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
        "INSERT INTO questions (id, image_id, text, answer, category, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        vals![
            q.id.0.to_string(),
            q.image.as_str(),
            q.text.as_str(),
            answer_json(&q.answer)?,
            q.category.as_str(),
            q.status.as_str()
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

pub const IMAGE_COLUMNS: &str = "id, path, width, height, bytes, added_at_ms, status";
pub const REGION_COLUMNS: &str = "id, image_id, x0, y0, x1, y1, label";

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
        "SELECT image_id, text, answer, category, status FROM questions WHERE id = ?1",
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
    let status = row.text(4)?;
    Ok(Some(Question {
        id,
        image: ImageId::parse(&image).ok_or_else(|| corrupt(format!("bad image id '{image}'")))?,
        regions,
        text: row.text(1)?,
        answer: parse_answer(&row.text(2)?)?,
        category: row.text(3)?,
        status: ReviewStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown status '{status}'")))?,
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
