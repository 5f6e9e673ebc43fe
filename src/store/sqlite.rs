//! The embedded store: one project = one SQLite file in WAL mode.
//!
//! Every edit runs in one `IMMEDIATE` transaction that also appends the journal row, committed
//! with `synchronous = FULL`, so an edit acknowledged by [`Store::apply`] survives a crash or a
//! power cut. Structural rules (boxes inside their image, links within one image, known
//! categories, expected state for updates) are checked inside the transaction.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, Transaction, params};

use super::rows::{self, parse_answer};
use super::schema::{APPLICATION_ID, MIGRATIONS, latest_version};
use super::sql::Lite;
use super::{Command, JournalEntry, ProjectStats, Store, StoreError, now_ms};
use crate::dataset::{
    Category, ImageId, ImageRecord, Question, QuestionId, Region, RegionId, rules,
};

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

    pub(crate) fn conn(&self) -> &Connection {
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

    pub(crate) fn in_tx<T>(
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

impl Store for SqliteStore {
    fn apply(&mut self, actor: &str, command: Command) -> Result<i64, StoreError> {
        self.in_tx(|tx| rows::apply(&mut Lite(tx), actor, &command))
    }

    fn apply_in_visit(
        &mut self,
        actor: &str,
        command: Command,
        visit: &str,
    ) -> Result<i64, StoreError> {
        self.in_tx(|tx| rows::apply_in_visit(&mut Lite(tx), actor, &command, visit))
    }

    fn undo(&mut self, actor: &str) -> Result<Option<Command>, StoreError> {
        self.in_tx(|tx| rows::undo(&mut Lite(tx), actor))
    }

    fn redo(&mut self, actor: &str) -> Result<Option<Command>, StoreError> {
        self.in_tx(|tx| rows::redo(&mut Lite(tx), actor))
    }

    fn undo_candidate(&self) -> Result<Option<Command>, StoreError> {
        Ok(rows::journal_candidate(&mut Lite(&self.conn), "done", true)?.map(|c| c.command))
    }

    fn redo_candidate(&self) -> Result<Option<Command>, StoreError> {
        Ok(rows::journal_candidate(&mut Lite(&self.conn), "undone", false)?.map(|c| c.command))
    }

    fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        rows::read_images(&mut Lite(&self.conn))
    }

    fn image(&self, id: &ImageId) -> Result<Option<ImageRecord>, StoreError> {
        rows::read_image(&mut Lite(&self.conn), id)
    }

    fn regions(&self, image: &ImageId) -> Result<Vec<Region>, StoreError> {
        rows::read_regions(&mut Lite(&self.conn), image)
    }

    fn region(&self, id: RegionId) -> Result<Option<Region>, StoreError> {
        rows::read_region(&mut Lite(&self.conn), id)
    }

    fn questions(&self, image: &ImageId) -> Result<Vec<Question>, StoreError> {
        rows::read_questions(&mut Lite(&self.conn), image)
    }

    fn question(&self, id: QuestionId) -> Result<Option<Question>, StoreError> {
        rows::read_question(&mut Lite(&self.conn), id)
    }

    fn categories(&self) -> Result<Vec<Category>, StoreError> {
        rows::read_categories(&mut Lite(&self.conn))
    }

    fn journal(&self, after: i64, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        rows::journal(&mut Lite(&self.conn), after, limit)
    }

    fn stats(&self) -> Result<ProjectStats, StoreError> {
        let mut stats = self.row_stats()?;
        stats.images_missing = self.missing_files()?.len() as u64;
        Ok(stats)
    }

    fn delete_region_command(&self, id: RegionId) -> Result<Command, StoreError> {
        rows::delete_region_command(&mut Lite(&self.conn), id)
    }
}
