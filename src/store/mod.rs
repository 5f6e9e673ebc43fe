//! The project store: where annotations live, durably.
//!
//! Owns the [`Store`] trait (the one interface every workspace edits through), the journal of
//! [`Command`]s that gives undo/redo and the audit trail, and the SQLite implementation that
//! makes a project one `.thyme` file; the PostgreSQL one (`postgres`) holds a team project.
//! The rules both follow are written once, in `rows`, over the small SQL surface of `sql`.

pub mod command;
pub mod dump;
pub mod journal;
pub mod pg_tls;
pub mod postgres;
pub mod rows;
mod schema;
pub mod sql;
pub mod sqlite;
pub mod stats;

use std::path::PathBuf;

use thiserror::Error;

pub use command::{Command, RegionLink};
pub use journal::{JournalAction, JournalEntry};
pub use postgres::PgStore;
pub use schema::APPLICATION_ID;
pub use schema::latest_version as schema_version;
pub use sqlite::SqliteStore;
pub use stats::ProjectStats;

use crate::dataset::{
    Category, ImageId, ImageRecord, Question, QuestionId, Region, RegionId, RuleError,
};

/// File extension of a project.
pub const PROJECT_EXTENSION: &str = "thyme";

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{path}: not a thyme-studio project ({reason})")]
    NotAProject { path: PathBuf, reason: String },
    #[error(
        "{path}: written by a newer thyme-studio (schema version {found}; this build reads up to {supported}); update the app to open it"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("{path}: a file already exists there")]
    AlreadyExists { path: PathBuf },
    #[error("{path}: no such project file")]
    NotFound { path: PathBuf },
    #[error("invalid edit: {0}")]
    Rule(#[from] RuleError),
    #[error("invalid verdict: {0}")]
    Review(#[from] crate::dataset::review::ReviewError),
    #[error("no image {0} in this project")]
    UnknownImage(ImageId),
    #[error("no box {0} in this project")]
    UnknownRegion(RegionId),
    #[error("no question {0} in this project")]
    UnknownQuestion(QuestionId),
    #[error("no category '{0}' in this project")]
    UnknownCategory(String),
    #[error("{path}: this image is already in the project as {existing}")]
    DuplicateImage { path: PathBuf, existing: PathBuf },
    #[error("box {0} already exists")]
    DuplicateRegion(RegionId),
    #[error("question {0} already exists")]
    DuplicateQuestion(QuestionId),
    #[error("category '{0}' already exists")]
    DuplicateCategory(String),
    #[error("box {region} is on another image than its question")]
    ForeignRegion { region: RegionId },
    #[error("{0} changed since it was read; reload and try again")]
    Conflict(String),
    #[error(
        "{what} was edited after it was opened for review; look at it again and review it as it is now"
    )]
    ChangedSinceSeen { what: String },
    #[error("category '{name}' is still used by {count} question(s)")]
    CategoryInUse { name: String, count: u64 },
    #[error("built-in category '{0}' cannot be removed")]
    BuiltinCategory(String),
    #[error("the project file holds a damaged row in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("team server: {0}")]
    Server(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An image whose file is not where the project says.
#[derive(Debug, Clone, PartialEq)]
pub struct MissingFile {
    pub image: ImageId,
    pub path: PathBuf,
}

/// The interface every workspace reads and edits a project through.
///
/// Every edit is a [`Command`] applied in one transaction together with its journal entry: when
/// `apply` returns `Ok`, the edit is durable. Reads return data in a stable order (images by
/// path, regions and questions by creation).
pub trait Store {
    /// Apply one edit and journal it; returns the journal sequence number.
    fn apply(&mut self, actor: &str, command: Command) -> Result<i64, StoreError>;
    /// Apply one edit made while typing in one field: the edits of one `visit` are undone
    /// and redone together.
    fn apply_in_visit(
        &mut self,
        actor: &str,
        command: Command,
        visit: &str,
    ) -> Result<i64, StoreError>;
    /// Undo the latest edit that is not undone; returns it, or `None` when there is nothing to undo.
    fn undo(&mut self, actor: &str) -> Result<Option<Command>, StoreError>;
    /// Redo the earliest undone edit; returns it, or `None` when there is nothing to redo.
    fn redo(&mut self, actor: &str) -> Result<Option<Command>, StoreError>;
    /// What `undo` would undo.
    fn undo_candidate(&self) -> Result<Option<Command>, StoreError>;
    /// What `redo` would redo.
    fn redo_candidate(&self) -> Result<Option<Command>, StoreError>;

    fn images(&self) -> Result<Vec<ImageRecord>, StoreError>;
    fn image(&self, id: &ImageId) -> Result<Option<ImageRecord>, StoreError>;
    fn regions(&self, image: &ImageId) -> Result<Vec<Region>, StoreError>;
    fn region(&self, id: RegionId) -> Result<Option<Region>, StoreError>;
    fn questions(&self, image: &ImageId) -> Result<Vec<Question>, StoreError>;
    fn question(&self, id: QuestionId) -> Result<Option<Question>, StoreError>;
    fn categories(&self) -> Result<Vec<Category>, StoreError>;
    /// Journal entries with `seq > after`, oldest first, at most `limit`.
    fn journal(&self, after: i64, limit: usize) -> Result<Vec<JournalEntry>, StoreError>;
    fn stats(&self) -> Result<ProjectStats, StoreError>;

    /// Images whose file is missing from its recorded path (reported, never fatal).
    fn missing_files(&self) -> Result<Vec<MissingFile>, StoreError> {
        Ok(self
            .images()?
            .into_iter()
            .filter(|i| !i.path.is_file())
            .map(|i| MissingFile {
                image: i.id,
                path: i.path,
            })
            .collect())
    }

    /// The command that deletes a region as it is now (with its question links).
    fn delete_region_command(&self, id: RegionId) -> Result<Command, StoreError>;

    /// The command that removes an image as it is now (with its regions and questions).
    fn remove_image_command(&self, id: &ImageId) -> Result<Command, StoreError> {
        let image = self
            .image(id)?
            .ok_or_else(|| StoreError::UnknownImage(id.clone()))?;
        Ok(Command::RemoveImage {
            regions: self.regions(id)?,
            questions: self.questions(id)?,
            image,
        })
    }
}

/// The name edits are journaled under when nobody is signed in: the OS user.
pub fn default_actor() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "local".to_owned())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
