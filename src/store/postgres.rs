//! The shared store: a team project in a PostgreSQL database, behind the same [`Store`] trait
//! as the one-file SQLite project.
//!
//! The rules are the shared ones in [`super::rows`]; this file owns the connection, the
//! PostgreSQL spelling of the schema, and transactions. Every write transaction takes one
//! advisory lock first, so two writers never both pass the same expected-state check: the
//! second one sees the first one's row and gets a conflict.

use std::sync::{Mutex, MutexGuard};

use postgres::types::{ToSql, Type};
use postgres::{Client, GenericClient};

use super::rows;
use super::sql::{Db, Row, Val, dollar_params, vals};
use super::{Command, JournalEntry, ProjectStats, Store, StoreError};
use crate::dataset::{Category, ImageId, ImageRecord, Question, QuestionId, Region, RegionId};

/// Advisory lock key every write transaction takes ("THYM").
const WRITE_LOCK: i64 = 0x5448_594D;

/// The version of the project tables below (SQLite schema version 4 in PostgreSQL spelling).
pub const PG_SCHEMA_VERSION: i64 = 2;

/// Version 1 -> 2, for every schema that holds annotation tables (the shared one and each
/// blind copy): verdicts on images, boxes and questions, and journal field visits.
const PG_MIGRATION_2: &str = r#"
    ALTER TABLE {s}.images ADD COLUMN review TEXT;
    ALTER TABLE {s}.regions ADD COLUMN review TEXT;
    ALTER TABLE {s}.questions ADD COLUMN review TEXT;
    ALTER TABLE {s}.journal ADD COLUMN visit TEXT
"#;

/// The project tables in PostgreSQL's spelling (same names and columns as SQLite's): the
/// categories here, the rest in [`ANNOTATION_TABLES`], which team mode also makes in other
/// schemas for its blind copies.
pub const CATEGORY_TABLE: &str = r#"
    CREATE TABLE categories (
        name TEXT PRIMARY KEY,
        builtin BIGINT NOT NULL
    );
"#;

/// The image, box, question and journal tables (the categories are shared by every copy).
pub const ANNOTATION_TABLES: &str = r#"
    CREATE TABLE images (
        id TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        width BIGINT NOT NULL CHECK (width > 0),
        height BIGINT NOT NULL CHECK (height > 0),
        bytes BIGINT NOT NULL,
        added_at_ms BIGINT NOT NULL,
        status TEXT NOT NULL DEFAULT 'todo' CHECK (status IN ('todo', 'in_progress', 'done')),
        revision BIGINT NOT NULL DEFAULT 1,
        review TEXT
    );
    CREATE TABLE regions (
        id TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id),
        x0 DOUBLE PRECISION NOT NULL, y0 DOUBLE PRECISION NOT NULL,
        x1 DOUBLE PRECISION NOT NULL, y1 DOUBLE PRECISION NOT NULL,
        label TEXT NOT NULL,
        revision BIGINT NOT NULL DEFAULT 1,
        review TEXT,
        CHECK (x0 < x1 AND y0 < y1)
    );
    CREATE INDEX regions_by_image ON regions(image_id);
    CREATE TABLE questions (
        id TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id),
        text TEXT NOT NULL,
        answer TEXT NOT NULL,
        category TEXT NOT NULL REFERENCES categories(name),
        status TEXT NOT NULL,
        revision BIGINT NOT NULL DEFAULT 1,
        review TEXT
    );
    CREATE INDEX questions_by_image ON questions(image_id);
    CREATE TABLE question_regions (
        question_id TEXT NOT NULL REFERENCES questions(id),
        region_id TEXT NOT NULL REFERENCES regions(id),
        position BIGINT NOT NULL,
        PRIMARY KEY (question_id, region_id)
    );
    CREATE INDEX question_regions_by_region ON question_regions(region_id);
    CREATE TABLE journal (
        seq BIGSERIAL PRIMARY KEY,
        at_ms BIGINT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('edit', 'undo', 'redo')),
        target BIGINT REFERENCES journal(seq),
        command TEXT NOT NULL,
        state TEXT CHECK (state IN ('done', 'undone', 'discarded')),
        origin TEXT NOT NULL DEFAULT 'local' CHECK (origin IN ('local', 'server')),
        visit TEXT
    );
    CREATE INDEX journal_by_state ON journal(state, seq);
"#;

/// Run each `;`-separated statement of a script (ours: no `;` inside literals).
pub fn run_script(db: &mut dyn Db, script: &str) -> Result<(), StoreError> {
    for statement in script.split(';') {
        if !statement.trim().is_empty() {
            db.exec(statement, &[])?;
        }
    }
    Ok(())
}

/// PostgreSQL through the `postgres` crate: a client or a transaction.
pub struct Pg<'a, C: GenericClient>(pub &'a mut C);

impl<C: GenericClient> Db for Pg<'_, C> {
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        let sql = dollar_params(sql);
        let owned = pg_params(params);
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|p| p.as_ref()).collect();
        self.0.execute(sql.as_str(), &refs).map_err(pg_error)
    }

    fn rows(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError> {
        let sql = dollar_params(sql);
        let owned = pg_params(params);
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|p| p.as_ref()).collect();
        let rows = self.0.query(sql.as_str(), &refs).map_err(pg_error)?;
        rows.iter().map(pg_row).collect()
    }
}

fn pg_params(params: &[Val]) -> Vec<Box<dyn ToSql + Sync>> {
    params
        .iter()
        .map(|v| -> Box<dyn ToSql + Sync> {
            match v.clone() {
                Val::Null | Val::OptText(None) => Box::new(Option::<String>::None),
                Val::Int(i) => Box::new(i),
                Val::OptInt(i) => Box::new(i),
                Val::Real(r) => Box::new(r),
                Val::Text(t) => Box::new(t),
                Val::OptText(Some(t)) => Box::new(Some(t)),
            }
        })
        .collect()
}

fn pg_row(row: &postgres::Row) -> Result<Row, StoreError> {
    let mut vals = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let t = col.type_();
        let v = if *t == Type::INT8 {
            row.try_get::<_, Option<i64>>(i).map(|v| v.map(Val::Int))
        } else if *t == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)
                .map(|v| v.map(|v| Val::Int(i64::from(v))))
        } else if *t == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)
                .map(|v| v.map(|v| Val::Int(i64::from(v))))
        } else if *t == Type::FLOAT8 {
            row.try_get::<_, Option<f64>>(i).map(|v| v.map(Val::Real))
        } else if *t == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)
                .map(|v| v.map(|b| Val::Int(i64::from(b))))
        } else if *t == Type::TEXT || *t == Type::VARCHAR || *t == Type::NAME {
            row.try_get::<_, Option<String>>(i)
                .map(|v| v.map(Val::Text))
        } else {
            return Err(StoreError::Corrupt {
                table: "query",
                reason: format!("column '{}' has unsupported type {t}", col.name()),
            });
        };
        vals.push(v.map_err(pg_error)?.unwrap_or(Val::Null));
    }
    Ok(Row(vals))
}

/// A PostgreSQL error as a store error, keeping the server's message.
pub fn pg_error(e: postgres::Error) -> StoreError {
    StoreError::Server(pg_message(&e))
}

/// The most useful line of a PostgreSQL error ("connection refused", the server's message).
pub fn pg_message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// A team project on a PostgreSQL server.
pub struct PgStore {
    client: Mutex<Client>,
    /// The URL without its password, for messages.
    shown_url: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.shown_url)
            .finish()
    }
}

/// The URL with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

impl PgStore {
    /// Connect to a database (`postgres://user@host:port/db`), encrypted as the URL's
    /// `sslmode` says ([`super::pg_tls`]; TLS when the server offers it by default). Fails
    /// with one line naming the server and what went wrong.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let client = super::pg_tls::connect(url).map_err(|e| {
            let shown = redact_url(url);
            StoreError::Server(if e.contains("(28P01)") {
                format!(
                    "{shown} refused this login's password (wrong, renewed since, or the member was taken off the team): ask your lead for a new join string and run `thyme-studio team join` with it; your edits stay in your file"
                )
            } else if e.contains("not permitted to log in") {
                format!(
                    "{shown}: this login is switched off (taken off the team?); ask your lead; your edits stay in your file"
                )
            } else {
                format!("cannot reach {shown}: {e}")
            })
        })?;
        Ok(Self {
            client: Mutex::new(client),
            shown_url: redact_url(url),
        })
    }

    /// Connect and make sure the project tables exist (made on first use, in one
    /// transaction); refuses a database written by a newer build.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url)?;
        store.in_tx(|db| {
            // A member's login may not create tables, so look before making.
            let made = db.count(
                "SELECT count(*) FROM pg_class WHERE oid = to_regclass('project_schema')",
                &[],
            )? > 0;
            if !made {
                db.exec("CREATE TABLE project_schema (version BIGINT NOT NULL)", &[])?;
            }
            let version = match db.row("SELECT version FROM project_schema", &[])? {
                Some(row) => row.int(0)?,
                None => {
                    db.exec("INSERT INTO project_schema (version) VALUES (0)", &[])?;
                    0
                }
            };
            if version > PG_SCHEMA_VERSION {
                return Err(StoreError::NewerSchema {
                    path: store.shown_url.clone().into(),
                    found: version,
                    supported: PG_SCHEMA_VERSION,
                });
            }
            if version == 0 {
                Self::create_project_tables(db)?;
                db.exec(
                    "UPDATE project_schema SET version = ?1",
                    vals![PG_SCHEMA_VERSION],
                )?;
                tracing::info!(url = %store.shown_url, "made the project tables");
            } else if version < PG_SCHEMA_VERSION {
                let schemas = db.rows(
                    "SELECT table_schema::text FROM information_schema.tables WHERE table_name = 'images' ORDER BY 1",
                    &[],
                )?;
                for row in schemas {
                    let schema = row.text(0)?.replace('"', "");
                    run_script(db, &PG_MIGRATION_2.replace("{s}", &format!("\"{schema}\"")))?;
                }
                db.exec(
                    "UPDATE project_schema SET version = ?1",
                    vals![PG_SCHEMA_VERSION],
                )?;
                tracing::info!(url = %store.shown_url, "migrated the project tables to version {PG_SCHEMA_VERSION}");
            }
            Ok(())
        })?;
        Ok(store)
    }

    /// The URL this store talks to, password hidden.
    pub fn url(&self) -> &str {
        &self.shown_url
    }

    /// How this connection is encrypted (`TLSv1.3`), or `None` when it is plain; as the
    /// server sees it.
    pub fn encryption(&self) -> Result<Option<String>, StoreError> {
        let mut client = self.client();
        super::pg_tls::encryption(&mut client).map_err(StoreError::Server)
    }

    pub(crate) fn client(&self) -> MutexGuard<'_, Client> {
        // A poisoned lock only means another thread panicked mid-call; the client itself is
        // still usable (its transaction was dropped, so rolled back).
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the project tables exist in this database.
    pub fn has_project(&self) -> Result<bool, StoreError> {
        let mut client = self.client();
        let n = Pg(&mut *client).count(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'images'",
            &[],
        )?;
        Ok(n > 0)
    }

    /// Make the project tables and the built-in categories (in the current schema).
    pub fn create_project_tables(db: &mut dyn Db) -> Result<(), StoreError> {
        run_script(db, CATEGORY_TABLE)?;
        run_script(db, ANNOTATION_TABLES)?;
        for c in Category::builtins() {
            db.exec(
                "INSERT INTO categories (name, builtin) VALUES (?1, 1)",
                vals![c.name],
            )?;
        }
        Ok(())
    }

    /// Run `f` in one transaction that holds the write lock; commits when it returns `Ok`.
    pub fn in_tx<T>(
        &self,
        f: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut client = self.client();
        let mut tx = client.transaction().map_err(pg_error)?;
        let mut db = Pg(&mut tx);
        db.exec("SELECT pg_advisory_xact_lock(?1)", vals![WRITE_LOCK])?;
        let value = f(&mut db)?;
        tx.commit().map_err(pg_error)?;
        Ok(value)
    }

    /// Run `f` on the connection outside a transaction (reads).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Db) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut client = self.client();
        f(&mut Pg(&mut *client))
    }

    /// Whether the connection still works (a cheap round trip).
    pub fn is_alive(&self) -> bool {
        let mut client = self.client();
        !client.is_closed() && client.simple_query("SELECT 1").is_ok()
    }
}

impl Store for PgStore {
    fn apply(&mut self, actor: &str, command: Command) -> Result<i64, StoreError> {
        self.in_tx(|db| rows::apply(db, actor, &command))
    }

    fn apply_in_visit(
        &mut self,
        actor: &str,
        command: Command,
        visit: &str,
    ) -> Result<i64, StoreError> {
        self.in_tx(|db| rows::apply_in_visit(db, actor, &command, visit))
    }

    fn undo(&mut self, actor: &str) -> Result<Option<Command>, StoreError> {
        self.in_tx(|db| rows::undo(db, actor))
    }

    fn redo(&mut self, actor: &str) -> Result<Option<Command>, StoreError> {
        self.in_tx(|db| rows::redo(db, actor))
    }

    fn undo_candidate(&self) -> Result<Option<Command>, StoreError> {
        self.read(|db| Ok(rows::journal_candidate(db, "done", true)?.map(|c| c.command)))
    }

    fn redo_candidate(&self) -> Result<Option<Command>, StoreError> {
        self.read(|db| Ok(rows::journal_candidate(db, "undone", false)?.map(|c| c.command)))
    }

    fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        self.read(rows::read_images)
    }

    fn image(&self, id: &ImageId) -> Result<Option<ImageRecord>, StoreError> {
        self.read(|db| rows::read_image(db, id))
    }

    fn regions(&self, image: &ImageId) -> Result<Vec<Region>, StoreError> {
        self.read(|db| rows::read_regions(db, image))
    }

    fn region(&self, id: RegionId) -> Result<Option<Region>, StoreError> {
        self.read(|db| rows::read_region(db, id))
    }

    fn questions(&self, image: &ImageId) -> Result<Vec<Question>, StoreError> {
        self.read(|db| rows::read_questions(db, image))
    }

    fn question(&self, id: QuestionId) -> Result<Option<Question>, StoreError> {
        self.read(|db| rows::read_question(db, id))
    }

    fn categories(&self) -> Result<Vec<Category>, StoreError> {
        self.read(rows::read_categories)
    }

    fn journal(&self, after: i64, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        self.read(|db| rows::journal(db, after, limit))
    }

    fn stats(&self) -> Result<ProjectStats, StoreError> {
        self.read(|db| {
            let count = |db: &mut dyn Db, sql: &str| -> Result<u64, StoreError> {
                Ok(db.count(sql, &[])?.max(0) as u64)
            };
            let grouped = |db: &mut dyn Db, sql: &str| {
                let mut map = std::collections::BTreeMap::new();
                for row in db.rows(sql, &[])? {
                    map.insert(row.text(0)?, row.int(1)?.max(0) as u64);
                }
                Ok::<_, StoreError>(map)
            };
            let mut by_kind = std::collections::BTreeMap::new();
            for row in db.rows("SELECT answer FROM questions", &[])? {
                let answer = rows::parse_answer(&row.text(0)?)?;
                *by_kind.entry(answer.kind_name().to_owned()).or_insert(0) += 1;
            }
            Ok(ProjectStats {
                images: count(db, "SELECT count(*) FROM images")?,
                images_missing: 0,
                images_low_resolution: count(
                    db,
                    &format!(
                        "SELECT count(*) FROM images WHERE greatest(width, height) <= {}",
                        crate::dataset::rules::MIN_LONGEST_SIDE
                    ),
                )?,
                regions: count(db, "SELECT count(*) FROM regions")?,
                regions_over_area_limit: count(
                    db,
                    "SELECT count(*) FROM regions r JOIN images i ON i.id = r.image_id \
                     WHERE (r.x1 - r.x0) * (r.y1 - r.y0) * 20.0 > i.width::float8 * i.height",
                )?,
                questions: count(db, "SELECT count(*) FROM questions")?,
                questions_by_category: grouped(
                    db,
                    "SELECT category, count(*) FROM questions GROUP BY category ORDER BY category",
                )?,
                questions_by_status: grouped(
                    db,
                    "SELECT status, count(*) FROM questions GROUP BY status ORDER BY status",
                )?,
                questions_by_kind: by_kind,
                images_by_status: grouped(
                    db,
                    "SELECT status, count(*) FROM images GROUP BY status ORDER BY status",
                )?,
                journal_entries: count(db, "SELECT count(*) FROM journal")?,
            })
        })
        .and_then(|mut stats| {
            stats.images_missing = self.missing_files()?.len() as u64;
            Ok(stats)
        })
    }

    fn delete_region_command(&self, id: RegionId) -> Result<Command, StoreError> {
        self.read(|db| rows::delete_region_command(db, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_in_urls() {
        assert_eq!(
            redact_url("postgres://lead:s3cret@db.example:5432/team"),
            "postgres://lead:***@db.example:5432/team"
        );
        assert_eq!(
            redact_url("postgres://lead@db.example/team"),
            "postgres://lead@db.example/team"
        );
        assert_eq!(redact_url("host=x user=y"), "host=x user=y");
    }
}
