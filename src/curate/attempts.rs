//! The difficulty check's attempts, durable in the project file: one row per (settings, question,
//! arm, seed), written as each attempt ends, so a check that was stopped resumes where it was
//! and a check run again with the same settings reuses every attempt that exists.
//!
//! The table lives beside the annotation schema rather than in its migrations: it is created
//! when a check first runs, so a project that was never checked is unchanged, and an older
//! build (or a team member on one) still opens a checked project, which it would refuse were
//! the schema version raised.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::Serialize;
use thiserror::Error;

use crate::dataset::QuestionId;

#[derive(Debug, Error)]
pub enum CurateError {
    #[error("{path}: {source}")]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{path}: not a thyme-studio project")]
    NotAProject { path: PathBuf },
    #[error("{0}")]
    Project(#[from] crate::store::StoreError),
    #[error("{0}")]
    Setup(String),
}

const CREATE: &str = "
    CREATE TABLE IF NOT EXISTS curate_attempts (
        settings_key TEXT NOT NULL,
        question_id TEXT NOT NULL,
        arm TEXT NOT NULL CHECK (arm IN ('tools', 'no_tools')),
        seed INTEGER NOT NULL,
        model TEXT NOT NULL,
        prompt_sha256 TEXT NOT NULL,
        settings TEXT NOT NULL,
        verdict TEXT NOT NULL CHECK (verdict IN ('correct', 'wrong', 'no_answer', 'failed')),
        answer TEXT,
        steps INTEGER NOT NULL,
        look TEXT,
        error TEXT,
        trace TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        PRIMARY KEY (settings_key, question_id, arm, seed)
    ) STRICT;
    CREATE INDEX IF NOT EXISTS curate_attempts_by_time ON curate_attempts(at_ms);
";

/// With tools (the agent loop) or without (one direct answer from the original image).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    Tools,
    NoTools,
}

impl Arm {
    pub const BOTH: [Arm; 2] = [Arm::Tools, Arm::NoTools];

    pub fn name(self) -> &'static str {
        match self {
            Arm::Tools => "tools",
            Arm::NoTools => "no_tools",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::BOTH.into_iter().find(|a| a.name() == s)
    }
}

/// How an attempt ended. A failed attempt (the server never answered) is neither right nor
/// wrong: it is left out of the rates and tried again by the next check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Correct,
    Wrong,
    NoAnswer,
    Failed,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Correct => "correct",
            Verdict::Wrong => "wrong",
            Verdict::NoAnswer => "no_answer",
            Verdict::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Correct, Self::Wrong, Self::NoAnswer, Self::Failed]
            .into_iter()
            .find(|v| v.name() == s)
    }
}

/// One attempt at one question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    /// Names the settings that make two attempts comparable (see `check::CheckSettings::key`).
    pub settings_key: String,
    pub question: QuestionId,
    pub arm: Arm,
    pub seed: u64,
    pub model: String,
    pub prompt_sha256: String,
    /// The settings themselves, as JSON.
    pub settings: String,
    pub verdict: Verdict,
    pub answer: Option<String>,
    /// Code cells run.
    pub steps: u32,
    /// Where its crops fell against the question's boxes (`trace::stats`' words), when it
    /// has boxes.
    pub look: Option<String>,
    pub error: Option<String>,
    /// The run's trace (JSON); opens in Inspect.
    #[serde(skip)]
    pub trace: String,
    pub at_ms: i64,
}

/// The attempts table of one project, over a connection of its own (the app may hold the
/// project open at the same time: SQLite's WAL lets both write).
pub struct AttemptStore {
    conn: Connection,
    path: PathBuf,
}

const COLUMNS: &str = "settings_key, question_id, arm, seed, model, prompt_sha256, settings, \
     verdict, answer, steps, look, error, at_ms";

impl AttemptStore {
    /// Open `project`'s attempts (the table is made on first use).
    pub fn open(project: &Path) -> Result<Self, CurateError> {
        let sql = |source| CurateError::Sql {
            path: project.to_owned(),
            source,
        };
        if !project.is_file() {
            return Err(crate::store::StoreError::NotFound {
                path: project.to_owned(),
            }
            .into());
        }
        let conn =
            Connection::open_with_flags(project, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(sql)?;
        let app: i64 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(sql)?;
        if app != crate::store::APPLICATION_ID {
            return Err(CurateError::NotAProject {
                path: project.to_owned(),
            });
        }
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        conn.execute_batch(CREATE).map_err(sql)?;
        Ok(Self {
            conn,
            path: project.to_owned(),
        })
    }

    /// Open `project`'s attempts only if a check ever ran on it (nothing is written
    /// otherwise): what the app reads to show the flags.
    pub fn open_existing(project: &Path) -> Result<Option<Self>, CurateError> {
        let sql = |source| CurateError::Sql {
            path: project.to_owned(),
            source,
        };
        let conn =
            Connection::open_with_flags(project, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql)?;
        let there: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'curate_attempts'",
                [],
                |r| r.get(0),
            )
            .map_err(sql)?;
        if there == 0 {
            return Ok(None);
        }
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql)?;
        Ok(Some(Self {
            conn,
            path: project.to_owned(),
        }))
    }

    /// Each question's image, from the project's own table.
    pub fn question_images(
        &self,
    ) -> Result<std::collections::BTreeMap<QuestionId, crate::dataset::ImageId>, CurateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, image_id FROM questions")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| self.err(e))?;
        let mut out = std::collections::BTreeMap::new();
        for row in rows {
            let (q, image) = row.map_err(|e| self.err(e))?;
            if let (Ok(q), Some(image)) = (
                uuid::Uuid::parse_str(&q),
                crate::dataset::ImageId::parse(&image),
            ) {
                out.insert(QuestionId(q), image);
            }
        }
        Ok(out)
    }

    fn err(&self, source: rusqlite::Error) -> CurateError {
        CurateError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    /// Store `a` durably (it replaces a failed attempt with the same key).
    pub fn put(&self, a: &Attempt) -> Result<(), CurateError> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO curate_attempts (settings_key, question_id, arm, seed, \
                 model, prompt_sha256, settings, verdict, answer, steps, look, error, trace, at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    a.settings_key,
                    a.question.to_string(),
                    a.arm.name(),
                    a.seed as i64,
                    a.model,
                    a.prompt_sha256,
                    a.settings,
                    a.verdict.name(),
                    a.answer,
                    a.steps,
                    a.look,
                    a.error,
                    a.trace,
                    a.at_ms,
                ],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// The attempts under `settings_key` that need not be made again (all but the failed).
    pub fn finished(
        &self,
        settings_key: &str,
    ) -> Result<BTreeSet<(QuestionId, Arm, u64)>, CurateError> {
        Ok(self
            .list(Some(settings_key))?
            .into_iter()
            .filter(|a| a.verdict != Verdict::Failed)
            .map(|a| (a.question, a.arm, a.seed))
            .collect())
    }

    /// Every attempt (under one settings key, or all), without their traces, in key order.
    pub fn list(&self, settings_key: Option<&str>) -> Result<Vec<Attempt>, CurateError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM curate_attempts WHERE (?1 IS NULL OR settings_key = ?1) \
             ORDER BY settings_key, question_id, arm, seed"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![settings_key], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, Option<String>>(8)?,
                    r.get::<_, u32>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, Option<String>>(11)?,
                    r.get::<_, i64>(12)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (
                key,
                q,
                arm,
                seed,
                model,
                prompt,
                settings,
                verdict,
                answer,
                steps,
                look,
                error,
                at,
            ) = row.map_err(|e| self.err(e))?;
            // A row this build cannot read (edited by hand) is skipped, not fatal.
            let (Ok(q), Some(arm), Some(verdict)) = (
                uuid::Uuid::parse_str(&q),
                Arm::parse(&arm),
                Verdict::parse(&verdict),
            ) else {
                tracing::warn!("curate attempt of {q} ({arm}, {verdict}) unreadable, skipped");
                continue;
            };
            out.push(Attempt {
                settings_key: key,
                question: QuestionId(q),
                arm,
                seed: seed as u64,
                model,
                prompt_sha256: prompt,
                settings,
                verdict,
                answer,
                steps,
                look,
                error,
                trace: String::new(),
                at_ms: at,
            });
        }
        Ok(out)
    }

    /// One attempt's trace (JSON).
    pub fn trace(
        &self,
        settings_key: &str,
        question: QuestionId,
        arm: Arm,
        seed: u64,
    ) -> Result<Option<String>, CurateError> {
        self.conn
            .query_row(
                "SELECT trace FROM curate_attempts WHERE settings_key = ?1 AND question_id = ?2 \
                 AND arm = ?3 AND seed = ?4",
                params![settings_key, question.to_string(), arm.name(), seed as i64],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The settings key of the check that stored an attempt last: the one flags and export
    /// filters read by default.
    pub fn latest_key(&self) -> Result<Option<String>, CurateError> {
        self.conn
            .query_row(
                "SELECT settings_key FROM curate_attempts ORDER BY at_ms DESC, rowid DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}
