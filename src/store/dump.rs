//! A whole project read in a handful of queries (for exports), written back verbatim into an
//! empty project (the lossless canonical import), and many edits applied in one transaction
//! (bulk imports), each still journaled on its own so it can be undone.

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::rows::{
    IMAGE_COLUMNS, REGION_COLUMNS, execute, image_from_row, journal_append, parse_answer,
    parse_review, parse_uuid, region_from_row,
};
use super::sql::{Db, Lite};
use super::sqlite::SqliteStore;
use super::{Command, JournalAction, StoreError};
use crate::dataset::{Category, ImageId, ImageRecord, Question, QuestionId, Region, RegionId};

/// One journal row exactly as stored, its command kept as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalRow {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: JournalAction,
    #[serde(default)]
    pub target: Option<i64>,
    pub command: serde_json::Value,
    /// `done`, `undone` or `discarded` for edits; none for undo/redo rows.
    #[serde(default)]
    pub state: Option<String>,
}

impl JournalRow {
    /// The command, when it is one this build knows.
    pub fn parsed(&self) -> Option<Command> {
        Command::deserialize(&self.command).ok()
    }
}

/// Everything in a project.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dump {
    /// By path, then id.
    pub images: Vec<ImageRecord>,
    /// Built-in first, then by name.
    pub categories: Vec<Category>,
    /// By image, then id (creation order).
    pub regions: Vec<Region>,
    /// By image, then id.
    pub questions: Vec<Question>,
    /// By sequence number.
    pub journal: Vec<JournalRow>,
}

impl SqliteStore {
    /// Read the whole project: five queries, whatever its size.
    pub fn dump(&self, with_journal: bool) -> Result<Dump, StoreError> {
        let conn = self.conn();
        let corrupt = |table: &'static str, reason: String| StoreError::Corrupt { table, reason };
        let images = Lite(conn)
            .rows(
                &format!("SELECT {IMAGE_COLUMNS} FROM images ORDER BY path, id"),
                &[],
            )?
            .iter()
            .map(image_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let categories = {
            let mut stmt =
                conn.prepare("SELECT name, builtin FROM categories ORDER BY builtin DESC, name")?;
            stmt.query_map([], |r| {
                Ok(Category {
                    name: r.get(0)?,
                    builtin: r.get::<_, i64>(1)? != 0,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?
        };
        let regions = Lite(conn)
            .rows(
                &format!("SELECT {REGION_COLUMNS} FROM regions ORDER BY image_id, id"),
                &[],
            )?
            .iter()
            .map(region_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let mut links: std::collections::HashMap<QuestionId, Vec<RegionId>> = Default::default();
        {
            let mut stmt = conn.prepare(
                "SELECT question_id, region_id FROM question_regions ORDER BY question_id, position",
            )?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (q, r) = row?;
                links
                    .entry(QuestionId(parse_uuid("question_regions", &q)?))
                    .or_default()
                    .push(RegionId(parse_uuid("question_regions", &r)?));
            }
        }
        let questions = {
            let mut stmt = conn.prepare(
                "SELECT id, image_id, text, answer, category, review FROM questions ORDER BY image_id, id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, image, text, answer, category, review) = row?;
                let id = QuestionId(parse_uuid("questions", &id)?);
                out.push(Question {
                    id,
                    image: ImageId::parse(&image)
                        .ok_or_else(|| corrupt("questions", format!("bad image id '{image}'")))?,
                    regions: links.remove(&id).unwrap_or_default(),
                    text,
                    answer: parse_answer(&answer)?,
                    category,
                    review: parse_review("questions", review)?,
                });
            }
            out
        };
        let journal = if with_journal {
            let mut stmt = conn.prepare(
                "SELECT seq, at_ms, actor, action, target, command, state FROM journal ORDER BY seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Option<String>>(6)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, at_ms, actor, action, target, command, state) = row?;
                out.push(JournalRow {
                    seq,
                    at_ms,
                    actor,
                    action: JournalAction::parse(&action)
                        .ok_or_else(|| corrupt("journal", format!("unknown action '{action}'")))?,
                    target,
                    command: serde_json::from_str(&command)
                        .map_err(|e| corrupt("journal", e.to_string()))?,
                    state,
                });
            }
            out
        } else {
            Vec::new()
        };
        Ok(Dump {
            images,
            categories,
            regions,
            questions,
            journal,
        })
    }

    /// Who first added each box and question (by id), read from the journal in one query:
    /// SQLite's JSON functions pick the ids out of the journaled commands, oldest first.
    pub fn creators(&self) -> Result<std::collections::HashMap<uuid::Uuid, String>, StoreError> {
        let mut stmt = self.conn().prepare(
            "SELECT seq, json_extract(command, '$.region.id'), actor FROM journal
                 WHERE json_extract(command, '$.op') = 'add_region'
             UNION ALL SELECT seq, json_extract(command, '$.question.id'), actor FROM journal
                 WHERE json_extract(command, '$.op') = 'add_question'
             UNION ALL SELECT j.seq, json_extract(r.value, '$.id'), j.actor
                 FROM journal j, json_each(j.command, '$.regions') r
                 WHERE json_extract(j.command, '$.op') = 'add_image'
             UNION ALL SELECT j.seq, json_extract(q.value, '$.id'), j.actor
                 FROM journal j, json_each(j.command, '$.questions') q
                 WHERE json_extract(j.command, '$.op') = 'add_image'
             ORDER BY 1",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, Option<String>>(1)?, r.get::<_, String>(2)?))
        })?;
        let mut out = std::collections::HashMap::new();
        for row in rows {
            let (id, actor) = row?;
            if let Some(id) = id.and_then(|s| uuid::Uuid::parse_str(&s).ok()) {
                out.entry(id).or_insert(actor);
            }
        }
        Ok(out)
    }

    /// How many journal entries there are, and the time of the latest (0 when none).
    pub fn journal_summary(&self) -> Result<(usize, i64), StoreError> {
        Ok(self.conn().query_row(
            "SELECT count(*), coalesce(max(at_ms), 0) FROM journal",
            [],
            |r| Ok((r.get::<_, i64>(0)?.max(0) as usize, r.get::<_, i64>(1)?)),
        )?)
    }

    /// Is the project empty (no images, no journal)?
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT (SELECT count(*) FROM images) + (SELECT count(*) FROM journal)",
            [],
            |r| r.get(0),
        )?;
        Ok(n == 0)
    }

    /// Write a dump into this empty project exactly as it was: rows, ids, journal sequence
    /// numbers, times and actors. One transaction: all or nothing.
    pub fn restore(&mut self, dump: &Dump) -> Result<(), StoreError> {
        if !self.is_empty()? {
            return Err(StoreError::Conflict(
                "the project is not empty; a lossless restore needs a new project".into(),
            ));
        }
        self.in_tx(|tx| {
            for c in &dump.categories {
                tx.execute(
                    "INSERT OR IGNORE INTO categories (name, builtin) VALUES (?1, ?2)",
                    params![c.name, c.builtin],
                )?;
            }
            for image in &dump.images {
                tx.execute(
                    "INSERT INTO images (id, path, width, height, bytes, added_at_ms, status, review) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        image.id.as_str(),
                        image.path.to_string_lossy(),
                        image.size.width,
                        image.size.height,
                        image.bytes as i64,
                        image.added_at_ms,
                        image.status.as_str(),
                        super::rows::review_json(image.review.as_ref())?
                    ],
                )?;
            }
            for region in &dump.regions {
                super::rows::insert_region(&mut Lite(tx), region)?;
            }
            for question in &dump.questions {
                super::rows::insert_question(&mut Lite(tx), question)?;
            }
            for row in &dump.journal {
                let command = serde_json::to_string(&row.command).map_err(|e| {
                    StoreError::Corrupt {
                        table: "journal",
                        reason: e.to_string(),
                    }
                })?;
                tx.execute(
                    "INSERT INTO journal (seq, at_ms, actor, action, target, command, state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        row.seq,
                        row.at_ms,
                        row.actor,
                        row.action.as_str(),
                        row.target,
                        command,
                        row.state
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// Apply many edits in one transaction, each journaled as its own undoable edit. The
    /// first failing edit rolls all of them back and is returned with its index.
    pub fn apply_all(
        &mut self,
        actor: &str,
        commands: &[Command],
    ) -> Result<(), (usize, StoreError)> {
        let mut failed_at = 0;
        let result = self.in_tx(|tx| {
            tx.execute(
                "UPDATE journal SET state = 'discarded' WHERE state = 'undone'",
                [],
            )?;
            for (i, command) in commands.iter().enumerate() {
                failed_at = i;
                let mut db = Lite(tx);
                execute(&mut db, command)?;
                journal_append(
                    &mut db,
                    actor,
                    JournalAction::Edit,
                    None,
                    command,
                    Some("done"),
                )?;
            }
            Ok(())
        });
        result.map_err(|e| (failed_at, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{Answer, ImageStatus};
    use crate::geometry::{ImageRect, ImageSize};
    use crate::store::Store;

    fn image(n: u8) -> ImageRecord {
        ImageRecord {
            id: ImageId::of_bytes(&[n]),
            path: format!("/data/img{n}.jpg").into(),
            size: ImageSize::new(4000, 3000),
            bytes: 100,
            added_at_ms: 1,
            status: ImageStatus::Todo,
            review: None,
        }
    }

    fn filled() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::create(&dir.path().join("a.thyme")).unwrap();
        let img = image(1);
        let r = Region::new(
            img.id.clone(),
            ImageRect::new(10.0, 10.0, 50.0, 40.0),
            "sign",
        );
        let q = Question::new(
            img.id.clone(),
            vec![r.id],
            "What does the sign say?",
            Answer::Open {
                text: "STOP".into(),
            },
            "ocr",
        );
        store
            .apply_all(
                "ann",
                &[
                    Command::AddImage {
                        image: img,
                        regions: vec![],
                        questions: vec![],
                    },
                    Command::AddRegion {
                        region: r,
                        links: vec![],
                    },
                    Command::AddQuestion { question: q },
                ],
            )
            .unwrap();
        store.undo("ann").unwrap();
        (dir, store)
    }

    #[test]
    fn dump_reads_everything_and_restore_writes_it_back_exactly() {
        let (dir, store) = filled();
        let dump = store.dump(true).unwrap();
        assert_eq!(dump.images.len(), 1);
        assert_eq!(dump.regions.len(), 1);
        assert!(dump.questions.is_empty(), "the question was undone");
        assert_eq!(dump.journal.len(), 4);
        assert_eq!(dump.journal[2].state.as_deref(), Some("undone"));
        let mut copy = SqliteStore::create(&dir.path().join("b.thyme")).unwrap();
        copy.restore(&dump).unwrap();
        assert_eq!(copy.dump(true).unwrap(), dump);
        // Redo still works in the copy: the journal came across with its states.
        assert!(copy.redo("other").unwrap().is_some());
        assert_eq!(copy.dump(false).unwrap().questions.len(), 1);
        // A second restore is refused: the project is no longer empty.
        assert!(copy.restore(&dump).is_err());
    }

    #[test]
    fn apply_all_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::create(&dir.path().join("a.thyme")).unwrap();
        let img = image(2);
        let bad = Region::new(img.id.clone(), ImageRect::new(0.0, 0.0, 5000.0, 10.0), "");
        let err = store
            .apply_all(
                "ann",
                &[
                    Command::AddImage {
                        image: img,
                        regions: vec![],
                        questions: vec![],
                    },
                    Command::AddRegion {
                        region: bad,
                        links: vec![],
                    },
                ],
            )
            .unwrap_err();
        assert_eq!(err.0, 1);
        assert!(store.images().unwrap().is_empty());
        assert!(store.is_empty().unwrap());
    }
}
