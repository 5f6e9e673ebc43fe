//! The embedded store: one project = one SQLite file in WAL mode.
//!
//! Every edit runs in one `IMMEDIATE` transaction that also appends the journal row, committed
//! with `synchronous = FULL`, so an edit acknowledged by [`Store::apply`] survives a crash or a
//! power cut. Structural rules (boxes inside their image, links within one image, known
//! categories, expected state for updates) are checked inside the transaction.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};

use super::schema::{APPLICATION_ID, MIGRATIONS, latest_version};
use super::{
    Command, JournalAction, JournalEntry, ProjectStats, RegionLink, Store, StoreError, now_ms,
};
use crate::dataset::{
    Answer, Category, ImageId, ImageRecord, ImageStatus, Question, QuestionId, Region, RegionId,
    ReviewStatus, rules,
};
use crate::geometry::{ImageRect, ImageSize};

/// A project stored in one SQLite file.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Create a new, empty project file. Fails if anything exists at `path`.
    pub fn create(path: &Path) -> Result<Self, StoreError> {
        if path.exists() {
            return Err(StoreError::AlreadyExists {
                path: path.to_owned(),
            });
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                path: parent.to_owned(),
                source,
            })?;
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )?;
        conn.pragma_update(None, "application_id", APPLICATION_ID)?;
        let mut store = Self::configure(conn, path)?;
        store.migrate()?;
        let tx = store.conn.transaction()?;
        for c in Category::builtins() {
            tx.execute(
                "INSERT INTO categories (name, builtin) VALUES (?1, 1)",
                params![c.name],
            )?;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('created_at_ms', ?1)",
            params![now_ms().to_string()],
        )?;
        tx.commit()?;
        Ok(store)
    }

    /// Open an existing project, migrating an older schema forward.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if !path.is_file() {
            return Err(StoreError::NotFound {
                path: path.to_owned(),
            });
        }
        let not_a_project = |reason: &str| StoreError::NotAProject {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        let app_id: i64 = match conn.pragma_query_value(None, "application_id", |r| r.get(0)) {
            Ok(v) => v,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::NotADatabase =>
            {
                return Err(not_a_project("the file is not a SQLite database"));
            }
            Err(e) => return Err(e.into()),
        };
        if app_id != APPLICATION_ID {
            return Err(not_a_project(
                "a SQLite database, but not one written by thyme-studio",
            ));
        }
        let mut store = Self::configure(conn, path)?;
        store.migrate()?;
        Ok(store)
    }

    /// Open `path`, creating the project when no file is there.
    pub fn open_or_create(path: &Path) -> Result<Self, StoreError> {
        if path.exists() {
            Self::open(path)
        } else {
            Self::create(path)
        }
    }

    pub(super) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `PRAGMA integrity_check`: `Ok(())` or the problems SQLite found.
    pub fn integrity_check(&self) -> Result<(), Vec<String>> {
        let mut stmt = match self.conn.prepare("PRAGMA integrity_check") {
            Ok(s) => s,
            Err(e) => return Err(vec![e.to_string()]),
        };
        let rows: Result<Vec<String>, _> = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect());
        match rows {
            Ok(rows) if rows == ["ok"] => Ok(()),
            Ok(rows) => Err(rows),
            Err(e) => Err(vec![e.to_string()]),
        }
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))?)
    }

    /// Every count of [`Store::stats`] except `images_missing`, which needs the file system:
    /// cheap enough to run after each edit on the UI thread.
    pub fn row_stats(&self) -> Result<ProjectStats, StoreError> {
        let count = |sql: &str| -> Result<u64, StoreError> {
            Ok(self.conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
        };
        let grouped = |sql: &str| -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
            let mut stmt = self.conn.prepare(sql)?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            let mut map = std::collections::BTreeMap::new();
            for row in rows {
                let (k, v) = row?;
                map.insert(k, v as u64);
            }
            Ok(map)
        };
        let mut by_kind = std::collections::BTreeMap::new();
        {
            let mut stmt = self.conn.prepare("SELECT answer FROM questions")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            for row in rows {
                let answer = parse_answer(&row?)?;
                *by_kind.entry(answer.kind_name().to_owned()).or_insert(0) += 1;
            }
        }
        Ok(ProjectStats {
            images: count("SELECT count(*) FROM images")?,
            images_missing: 0,
            images_low_resolution: count(&format!(
                "SELECT count(*) FROM images WHERE max(width, height) <= {}",
                rules::MIN_LONGEST_SIDE
            ))?,
            regions: count("SELECT count(*) FROM regions")?,
            regions_over_area_limit: count(
                "SELECT count(*) FROM regions r JOIN images i ON i.id = r.image_id \
                 WHERE (r.x1 - r.x0) * (r.y1 - r.y0) * 20.0 > CAST(i.width AS REAL) * i.height",
            )?,
            questions: count("SELECT count(*) FROM questions")?,
            questions_by_category: grouped(
                "SELECT category, count(*) FROM questions GROUP BY category ORDER BY category",
            )?,
            questions_by_status: grouped(
                "SELECT status, count(*) FROM questions GROUP BY status ORDER BY status",
            )?,
            questions_by_kind: by_kind,
            images_by_status: grouped(
                "SELECT status, count(*) FROM images GROUP BY status ORDER BY status",
            )?,
            journal_entries: count("SELECT count(*) FROM journal")?,
        })
    }

    /// Boxes and questions per image, in two grouped queries.
    pub fn annotation_counts(
        &self,
    ) -> Result<std::collections::BTreeMap<ImageId, (usize, usize)>, StoreError> {
        let mut out = std::collections::BTreeMap::new();
        for (sql, second) in [
            (
                "SELECT image_id, count(*) FROM regions GROUP BY image_id",
                false,
            ),
            (
                "SELECT image_id, count(*) FROM questions GROUP BY image_id",
                true,
            ),
        ] {
            let mut stmt = self.conn.prepare(sql)?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (id, n) = row?;
                let id = ImageId::parse(&id).ok_or_else(|| StoreError::Corrupt {
                    table: "regions",
                    reason: format!("bad image id '{id}'"),
                })?;
                let entry: &mut (usize, usize) = out.entry(id).or_default();
                if second {
                    entry.1 = n.max(0) as usize;
                } else {
                    entry.0 = n.max(0) as usize;
                }
            }
        }
        Ok(out)
    }

    fn configure(conn: Connection, path: &Path) -> Result<Self, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        Ok(Self {
            conn,
            path: path.to_owned(),
        })
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let has_version_table: bool = self.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
            [],
            |r| r.get::<_, i64>(0),
        )? > 0;
        let current = if has_version_table {
            self.schema_version()?
        } else {
            0
        };
        let latest = latest_version();
        if current > latest {
            return Err(StoreError::NewerSchema {
                path: self.path.clone(),
                found: current,
                supported: latest,
            });
        }
        for (from, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute_batch(sql)?;
            tx.execute(
                "UPDATE schema_version SET version = ?1",
                params![from as i64 + 1],
            )?;
            tx.commit()?;
            tracing::info!(path = %self.path.display(), version = from + 1, "migrated project schema");
        }
        Ok(())
    }

    pub(super) fn in_tx<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }
}

pub(super) fn journal_append(
    tx: &Transaction<'_>,
    actor: &str,
    action: JournalAction,
    target: Option<i64>,
    command: &Command,
    state: Option<&str>,
) -> Result<i64, StoreError> {
    let json = serde_json::to_string(command).map_err(|e| StoreError::Corrupt {
        table: "journal",
        reason: e.to_string(),
    })?;
    tx.execute(
        "INSERT INTO journal (at_ms, actor, action, target, command, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![now_ms(), actor, action.as_str(), target, json, state],
    )?;
    Ok(tx.last_insert_rowid())
}

fn journal_candidate(
    conn: &Connection,
    state: &str,
    newest_first: bool,
) -> Result<Option<(i64, Command)>, StoreError> {
    let order = if newest_first { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT seq, command FROM journal WHERE action = 'edit' AND state = ?1 ORDER BY seq {order} LIMIT 1"
    );
    let row: Option<(i64, String)> = conn
        .query_row(&sql, params![state], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(seq, json)| Ok((seq, parse_command(&json)?)))
        .transpose()
}

fn parse_command(json: &str) -> Result<Command, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        table: "journal",
        reason: e.to_string(),
    })
}

impl Store for SqliteStore {
    fn apply(&mut self, actor: &str, command: Command) -> Result<i64, StoreError> {
        self.in_tx(|tx| {
            execute(tx, &command)?;
            tx.execute(
                "UPDATE journal SET state = 'discarded' WHERE state = 'undone'",
                [],
            )?;
            journal_append(tx, actor, JournalAction::Edit, None, &command, Some("done"))
        })
    }

    fn undo(&mut self, actor: &str) -> Result<Option<Command>, StoreError> {
        self.in_tx(|tx| {
            let Some((seq, command)) = journal_candidate(tx, "done", true)? else {
                return Ok(None);
            };
            let inverse = command.inverse();
            execute(tx, &inverse)?;
            tx.execute(
                "UPDATE journal SET state = 'undone' WHERE seq = ?1",
                params![seq],
            )?;
            journal_append(tx, actor, JournalAction::Undo, Some(seq), &inverse, None)?;
            Ok(Some(command))
        })
    }

    fn redo(&mut self, actor: &str) -> Result<Option<Command>, StoreError> {
        self.in_tx(|tx| {
            let Some((seq, command)) = journal_candidate(tx, "undone", false)? else {
                return Ok(None);
            };
            execute(tx, &command)?;
            tx.execute(
                "UPDATE journal SET state = 'done' WHERE seq = ?1",
                params![seq],
            )?;
            journal_append(tx, actor, JournalAction::Redo, Some(seq), &command, None)?;
            Ok(Some(command))
        })
    }

    fn undo_candidate(&self) -> Result<Option<Command>, StoreError> {
        Ok(journal_candidate(&self.conn, "done", true)?.map(|(_, c)| c))
    }

    fn redo_candidate(&self) -> Result<Option<Command>, StoreError> {
        Ok(journal_candidate(&self.conn, "undone", false)?.map(|(_, c)| c))
    }

    fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, path, width, height, bytes, added_at_ms, status FROM images ORDER BY path, id",
        )?;
        let rows = stmt.query_map([], raw_image)?;
        rows.map(|r| image_from_raw(r?)).collect()
    }

    fn image(&self, id: &ImageId) -> Result<Option<ImageRecord>, StoreError> {
        read_image(&self.conn, id)
    }

    fn regions(&self, image: &ImageId) -> Result<Vec<Region>, StoreError> {
        read_regions(&self.conn, image)
    }

    fn region(&self, id: RegionId) -> Result<Option<Region>, StoreError> {
        read_region(&self.conn, id)
    }

    fn questions(&self, image: &ImageId) -> Result<Vec<Question>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM questions WHERE image_id = ?1 ORDER BY id")?;
        let ids: Vec<String> = stmt
            .query_map(params![image.as_str()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(q) =
                read_question(&self.conn, parse_uuid("questions", &id).map(QuestionId)?)?
            {
                out.push(q);
            }
        }
        Ok(out)
    }

    fn question(&self, id: QuestionId) -> Result<Option<Question>, StoreError> {
        read_question(&self.conn, id)
    }

    fn categories(&self) -> Result<Vec<Category>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, builtin FROM categories ORDER BY builtin DESC, name")?;
        let rows = stmt.query_map([], |r| {
            Ok(Category {
                name: r.get(0)?,
                builtin: r.get::<_, i64>(1)? != 0,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn journal(&self, after: i64, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, at_ms, actor, action, target, command FROM journal WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, at_ms, actor, action, target, json) = row?;
            let action = JournalAction::parse(&action).ok_or_else(|| StoreError::Corrupt {
                table: "journal",
                reason: format!("unknown action '{action}'"),
            })?;
            out.push(JournalEntry {
                seq,
                at_ms,
                actor,
                action,
                target,
                command: parse_command(&json)?,
            });
        }
        Ok(out)
    }

    fn stats(&self) -> Result<ProjectStats, StoreError> {
        let mut stats = self.row_stats()?;
        stats.images_missing = self.missing_files()?.len() as u64;
        Ok(stats)
    }

    fn delete_region_command(&self, id: RegionId) -> Result<Command, StoreError> {
        let region = read_region(&self.conn, id)?.ok_or(StoreError::UnknownRegion(id))?;
        let links = read_links(&self.conn, id)?;
        Ok(Command::DeleteRegion { region, links })
    }
}

// ---- execution of commands inside a transaction ----

pub(super) fn execute(tx: &Transaction<'_>, command: &Command) -> Result<(), StoreError> {
    match command {
        Command::AddImage {
            image,
            regions,
            questions,
        } => {
            if let Some(existing) = read_image(tx, &image.id)? {
                return Err(StoreError::DuplicateImage {
                    path: image.path.clone(),
                    existing: existing.path,
                });
            }
            tx.execute(
                "INSERT INTO images (id, path, width, height, bytes, added_at_ms, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
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
                insert_region(tx, r)?;
            }
            for q in questions {
                insert_question(tx, q)?;
            }
        }
        Command::RemoveImage {
            image,
            regions,
            questions,
        } => {
            let current = read_image(tx, &image.id)?
                .ok_or_else(|| StoreError::UnknownImage(image.id.clone()))?;
            if current != *image
                || read_regions(tx, &image.id)?.len() != regions.len()
                || count_questions(tx, &image.id)? != questions.len() as i64
            {
                return Err(StoreError::Conflict(format!("image {}", image.file_name())));
            }
            for q in questions {
                delete_question(tx, q)?;
            }
            for r in regions {
                delete_region(tx, r, &[])?;
            }
            tx.execute(
                "DELETE FROM images WHERE id = ?1",
                params![image.id.as_str()],
            )?;
        }
        Command::RelocateImage { id, from, to } => {
            let current =
                read_image(tx, id)?.ok_or_else(|| StoreError::UnknownImage(id.clone()))?;
            if current.path != *from {
                return Err(StoreError::Conflict(format!(
                    "the path of image {}",
                    id.short()
                )));
            }
            tx.execute(
                "UPDATE images SET path = ?1 WHERE id = ?2",
                params![path_text(to), id.as_str()],
            )?;
        }
        Command::SetImageStatus { id, before, after } => {
            let current =
                read_image(tx, id)?.ok_or_else(|| StoreError::UnknownImage(id.clone()))?;
            if current.status != *before {
                return Err(StoreError::Conflict(format!(
                    "the status of {}",
                    current.file_name()
                )));
            }
            tx.execute(
                "UPDATE images SET status = ?1 WHERE id = ?2",
                params![after.as_str(), id.as_str()],
            )?;
        }
        Command::AddRegion { region, links } => {
            insert_region(tx, region)?;
            for link in links {
                let q = read_question(tx, link.question)?
                    .ok_or(StoreError::UnknownQuestion(link.question))?;
                let mut ids = q.regions.clone();
                ids.insert(link.position.min(ids.len()), region.id);
                write_links(tx, link.question, &ids)?;
            }
        }
        Command::DeleteRegion { region, links } => {
            delete_region(tx, region, links)?;
        }
        Command::UpdateRegion { before, after } => {
            if before.id != after.id || before.image != after.image {
                return Err(StoreError::Conflict(format!("box {}", before.id)));
            }
            expect_current(
                read_region(tx, before.id)?,
                before,
                StoreError::UnknownRegion(before.id),
                || format!("box '{}'", before.label),
            )?;
            check_region_geometry(tx, after)?;
            tx.execute(
                "UPDATE regions SET x0 = ?1, y0 = ?2, x1 = ?3, y1 = ?4, label = ?5 WHERE id = ?6",
                params![
                    after.rect.x0,
                    after.rect.y0,
                    after.rect.x1,
                    after.rect.y1,
                    after.label,
                    after.id.0.to_string()
                ],
            )?;
        }
        Command::AddQuestion { question } => insert_question(tx, question)?,
        Command::DeleteQuestion { question } => delete_question(tx, question)?,
        Command::UpdateQuestion { before, after } => {
            if before.id != after.id || before.image != after.image {
                return Err(StoreError::Conflict(format!("question {}", before.id)));
            }
            expect_current(
                read_question(tx, before.id)?,
                before,
                StoreError::UnknownQuestion(before.id),
                || format!("question '{}'", before.text),
            )?;
            check_question_refs(tx, after)?;
            tx.execute(
                "UPDATE questions SET text = ?1, answer = ?2, category = ?3, status = ?4 WHERE id = ?5",
                params![
                    after.text,
                    answer_json(&after.answer)?,
                    after.category,
                    after.status.as_str(),
                    after.id.0.to_string()
                ],
            )?;
            write_links(tx, after.id, &after.regions)?;
        }
        Command::AddCategory { category } => {
            if category.name.trim().is_empty() {
                return Err(rules::RuleError::EmptyCategory.into());
            }
            let exists: i64 = tx.query_row(
                "SELECT count(*) FROM categories WHERE name = ?1",
                params![category.name],
                |r| r.get(0),
            )?;
            if exists > 0 {
                return Err(StoreError::DuplicateCategory(category.name.clone()));
            }
            tx.execute(
                "INSERT INTO categories (name, builtin) VALUES (?1, ?2)",
                params![category.name, category.builtin],
            )?;
        }
        Command::RemoveCategory { category } => {
            if category.builtin {
                return Err(StoreError::BuiltinCategory(category.name.clone()));
            }
            let count: i64 = tx.query_row(
                "SELECT count(*) FROM questions WHERE category = ?1",
                params![category.name],
                |r| r.get(0),
            )?;
            if count > 0 {
                return Err(StoreError::CategoryInUse {
                    name: category.name.clone(),
                    count: count as u64,
                });
            }
            let n = tx.execute(
                "DELETE FROM categories WHERE name = ?1 AND builtin = 0",
                params![category.name],
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

fn check_region_geometry(conn: &Connection, region: &Region) -> Result<(), StoreError> {
    let image = read_image(conn, &region.image)?
        .ok_or_else(|| StoreError::UnknownImage(region.image.clone()))?;
    rules::check_rect(&region.rect, image.size)?;
    Ok(())
}

pub(super) fn insert_region(conn: &Connection, region: &Region) -> Result<(), StoreError> {
    check_region_geometry(conn, region)?;
    if read_region(conn, region.id)?.is_some() {
        return Err(StoreError::DuplicateRegion(region.id));
    }
    conn.execute(
        "INSERT INTO regions (id, image_id, x0, y0, x1, y1, label) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            region.id.0.to_string(),
            region.image.as_str(),
            region.rect.x0,
            region.rect.y0,
            region.rect.x1,
            region.rect.y1,
            region.label
        ],
    )?;
    Ok(())
}

fn delete_region(
    conn: &Connection,
    region: &Region,
    links: &[RegionLink],
) -> Result<(), StoreError> {
    expect_current(
        read_region(conn, region.id)?,
        region,
        StoreError::UnknownRegion(region.id),
        || format!("box '{}'", region.label),
    )?;
    let current_links = read_links(conn, region.id)?;
    if !links.is_empty() && current_links != links {
        return Err(StoreError::Conflict(format!(
            "the questions linked to box '{}'",
            region.label
        )));
    }
    for link in &current_links {
        if let Some(q) = read_question(conn, link.question)? {
            let ids: Vec<RegionId> = q.regions.into_iter().filter(|r| *r != region.id).collect();
            write_links(conn, link.question, &ids)?;
        }
    }
    conn.execute(
        "DELETE FROM regions WHERE id = ?1",
        params![region.id.0.to_string()],
    )?;
    Ok(())
}

fn check_question_refs(conn: &Connection, q: &Question) -> Result<(), StoreError> {
    if read_image(conn, &q.image)?.is_none() {
        return Err(StoreError::UnknownImage(q.image.clone()));
    }
    let known: i64 = conn.query_row(
        "SELECT count(*) FROM categories WHERE name = ?1",
        params![q.category],
        |r| r.get(0),
    )?;
    if known == 0 {
        return Err(StoreError::UnknownCategory(q.category.clone()));
    }
    for id in &q.regions {
        let r = read_region(conn, *id)?.ok_or(StoreError::UnknownRegion(*id))?;
        if r.image != q.image {
            return Err(StoreError::ForeignRegion { region: *id });
        }
    }
    if let Answer::Choice { options, correct } = &q.answer {
        if *correct >= options.len() {
            return Err(rules::RuleError::CorrectOutOfRange {
                index: *correct,
                count: options.len(),
            }
            .into());
        }
    }
    Ok(())
}

pub(super) fn insert_question(conn: &Connection, q: &Question) -> Result<(), StoreError> {
    check_question_refs(conn, q)?;
    if read_question(conn, q.id)?.is_some() {
        return Err(StoreError::DuplicateQuestion(q.id));
    }
    conn.execute(
        "INSERT INTO questions (id, image_id, text, answer, category, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            q.id.0.to_string(),
            q.image.as_str(),
            q.text,
            answer_json(&q.answer)?,
            q.category,
            q.status.as_str()
        ],
    )?;
    write_links(conn, q.id, &q.regions)
}

fn delete_question(conn: &Connection, q: &Question) -> Result<(), StoreError> {
    expect_current(
        read_question(conn, q.id)?,
        q,
        StoreError::UnknownQuestion(q.id),
        || format!("question '{}'", q.text),
    )?;
    let id = q.id.0.to_string();
    conn.execute(
        "DELETE FROM question_regions WHERE question_id = ?1",
        params![id],
    )?;
    conn.execute("DELETE FROM questions WHERE id = ?1", params![id])?;
    Ok(())
}

pub(super) fn write_links(
    conn: &Connection,
    question: QuestionId,
    regions: &[RegionId],
) -> Result<(), StoreError> {
    let qid = question.0.to_string();
    conn.execute(
        "DELETE FROM question_regions WHERE question_id = ?1",
        params![qid],
    )?;
    for (position, r) in regions.iter().enumerate() {
        conn.execute(
            "INSERT INTO question_regions (question_id, region_id, position) VALUES (?1, ?2, ?3)",
            params![qid, r.0.to_string(), position as i64],
        )?;
    }
    Ok(())
}

// ---- reading rows ----

pub(super) type RawImage = (String, String, i64, i64, i64, i64, String);

pub(super) fn raw_image(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawImage> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

pub(super) fn image_from_raw(
    (id, path, w, h, bytes, at, status): RawImage,
) -> Result<ImageRecord, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "images",
        reason,
    };
    let id = ImageId::parse(&id).ok_or_else(|| corrupt(format!("bad image id '{id}'")))?;
    let width = u32::try_from(w).map_err(|_| corrupt(format!("bad width {w}")))?;
    let height = u32::try_from(h).map_err(|_| corrupt(format!("bad height {h}")))?;
    Ok(ImageRecord {
        id,
        path: PathBuf::from(path),
        size: ImageSize::new(width, height),
        bytes: bytes.max(0) as u64,
        added_at_ms: at,
        status: ImageStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown status '{status}'")))?,
    })
}

fn read_image(conn: &Connection, id: &ImageId) -> Result<Option<ImageRecord>, StoreError> {
    conn.query_row(
        "SELECT id, path, width, height, bytes, added_at_ms, status FROM images WHERE id = ?1",
        params![id.as_str()],
        raw_image,
    )
    .optional()?
    .map(image_from_raw)
    .transpose()
}

fn count_questions(conn: &Connection, image: &ImageId) -> Result<i64, StoreError> {
    Ok(conn.query_row(
        "SELECT count(*) FROM questions WHERE image_id = ?1",
        params![image.as_str()],
        |r| r.get(0),
    )?)
}

pub(super) type RawRegion = (String, String, f64, f64, f64, f64, String);

pub(super) fn raw_region(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRegion> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

pub(super) fn region_from_raw(
    (id, image, x0, y0, x1, y1, label): RawRegion,
) -> Result<Region, StoreError> {
    Ok(Region {
        id: RegionId(parse_uuid("regions", &id)?),
        image: ImageId::parse(&image).ok_or_else(|| StoreError::Corrupt {
            table: "regions",
            reason: format!("bad image id '{image}'"),
        })?,
        rect: ImageRect::new(x0, y0, x1, y1),
        label,
    })
}

fn read_regions(conn: &Connection, image: &ImageId) -> Result<Vec<Region>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, image_id, x0, y0, x1, y1, label FROM regions WHERE image_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map(params![image.as_str()], raw_region)?;
    rows.map(|r| region_from_raw(r?)).collect()
}

fn read_region(conn: &Connection, id: RegionId) -> Result<Option<Region>, StoreError> {
    conn.query_row(
        "SELECT id, image_id, x0, y0, x1, y1, label FROM regions WHERE id = ?1",
        params![id.0.to_string()],
        raw_region,
    )
    .optional()?
    .map(region_from_raw)
    .transpose()
}

fn read_links(conn: &Connection, region: RegionId) -> Result<Vec<RegionLink>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT question_id, position FROM question_regions WHERE region_id = ?1 ORDER BY question_id",
    )?;
    let rows = stmt.query_map(params![region.0.to_string()], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (q, position) = row?;
        out.push(RegionLink {
            question: QuestionId(parse_uuid("question_regions", &q)?),
            position: position.max(0) as usize,
        });
    }
    Ok(out)
}

fn read_question(conn: &Connection, id: QuestionId) -> Result<Option<Question>, StoreError> {
    let row: Option<(String, String, String, String, String)> = conn
        .query_row(
            "SELECT image_id, text, answer, category, status FROM questions WHERE id = ?1",
            params![id.0.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    let Some((image, text, answer, category, status)) = row else {
        return Ok(None);
    };
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "questions",
        reason,
    };
    let mut stmt = conn.prepare(
        "SELECT region_id FROM question_regions WHERE question_id = ?1 ORDER BY position",
    )?;
    let regions = stmt
        .query_map(params![id.0.to_string()], |r| r.get::<_, String>(0))?
        .map(|r| Ok(RegionId(parse_uuid("question_regions", &r?)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(Question {
        id,
        image: ImageId::parse(&image).ok_or_else(|| corrupt(format!("bad image id '{image}'")))?,
        regions,
        text,
        answer: parse_answer(&answer)?,
        category,
        status: ReviewStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown status '{status}'")))?,
    }))
}

pub(super) fn parse_uuid(table: &'static str, s: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::parse_str(s).map_err(|e| StoreError::Corrupt {
        table,
        reason: format!("bad id '{s}': {e}"),
    })
}

pub(super) fn parse_answer(json: &str) -> Result<Answer, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        table: "questions",
        reason: format!("bad answer: {e}"),
    })
}

pub(super) fn answer_json(answer: &Answer) -> Result<String, StoreError> {
    serde_json::to_string(answer).map_err(|e| StoreError::Corrupt {
        table: "questions",
        reason: e.to_string(),
    })
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
