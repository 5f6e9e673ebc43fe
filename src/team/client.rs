//! An annotator's side of a team project: a local project file that is also the journal of
//! everything not yet on the server.
//!
//! Edits go to the local SQLite project first (durable at once, as in solo mode). `sync`
//! pushes each local journal entry the server has not acknowledged, under a key made of this
//! client's id and the entry's sequence number, so an entry resent after a crash or a dropped
//! connection is recognised by the server and never applied twice. An edit the server cannot
//! take (someone changed the same thing, the item is under review) is kept as a conflict with
//! both versions until the user picks one. Then `sync` fetches the images others changed and
//! brings the local copy to the server's state, except for images with unsent edits or open
//! conflicts, which wait. A failed sync leaves everything in place and is simply retried.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::server::{PushOutcome, TeamError, TeamServer, command_image};
use super::state::{ImageState, diff, to_server_state};
use crate::dataset::ImageId;
use crate::store::rows::{self, journal_append_from};
use crate::store::sql::{Db, Lite, vals};
use crate::store::{Command, JournalAction, SqliteStore, StoreError};

const LINK_TABLES: &str = r#"
    CREATE TABLE IF NOT EXISTS team_link (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
    CREATE TABLE IF NOT EXISTS team_conflicts (
        id INTEGER PRIMARY KEY,
        op_key TEXT NOT NULL UNIQUE,
        image_id TEXT,
        message TEXT NOT NULL,
        command TEXT NOT NULL,
        mine TEXT,
        theirs TEXT,
        at_ms INTEGER NOT NULL,
        resolved INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE TABLE IF NOT EXISTS team_stale (image_id TEXT PRIMARY KEY, layer TEXT NOT NULL) STRICT;
"#;

/// Where one image stands between this client and the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SyncState {
    /// Every edit is on the server.
    Synced,
    /// Saved on this machine; not on the server yet.
    SavedLocally,
    /// The server could not take an edit; both versions are kept until the user picks one.
    Conflict,
}

impl SyncState {
    pub fn title(self) -> &'static str {
        match self {
            SyncState::Synced => "synced",
            SyncState::SavedLocally => "saved locally",
            SyncState::Conflict => "conflict",
        }
    }
}

/// An edit the server did not take, with both versions of its image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalConflict {
    pub id: i64,
    pub image: Option<ImageId>,
    pub message: String,
    pub command: Command,
    /// This client's image when the conflict was found.
    pub mine: Option<ImageState>,
    /// The server's image when the conflict was found.
    pub theirs: Option<ImageState>,
    pub at_ms: i64,
}

/// What one sync round did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncReport {
    pub pushed: usize,
    pub conflicts: usize,
    pub refused: usize,
    pub pulled_images: usize,
    /// Images whose server changes wait for this client's own edits or conflicts.
    pub waiting: usize,
}

/// How a user settles a conflict on one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Put this client's version on the server.
    KeepMine,
    /// Take the server's version here.
    TakeTheirs,
}

/// The local half of a team project.
#[derive(Debug)]
pub struct TeamClient {
    store: SqliteStore,
    member: String,
    client_id: String,
    url: String,
}

fn link_get(db: &mut dyn Db, key: &str) -> Result<Option<String>, StoreError> {
    db.row("SELECT value FROM team_link WHERE key = ?1", vals![key])?
        .map(|r| r.text(0))
        .transpose()
}

fn link_set(db: &mut dyn Db, key: &str, value: &str) -> Result<(), StoreError> {
    db.exec(
        "INSERT INTO team_link (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        vals![key, value],
    )?;
    Ok(())
}

fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt {
        table: "team_conflicts",
        reason: e.to_string(),
    })
}

impl TeamClient {
    /// Link a local project file (made when missing) to a team project as `member`.
    ///
    /// A password in `url` is kept out of the file: it goes to the user's credentials
    /// folder ([`super::credentials`]) and the file holds the URL without it.
    pub fn join(path: &Path, url: &str, member: &str) -> Result<Self, TeamError> {
        let (bare, password) = super::credentials::split_password(url);
        if let Some(password) = &password {
            super::credentials::save(&crate::paths::AppDirs::for_user(), &bare, password).map_err(
                |e| {
                    TeamError::Credentials(format!(
                        "cannot keep the team password in the config folder: {e}"
                    ))
                },
            )?;
        }
        let url = bare.as_str();
        let mut store = SqliteStore::open_or_create(path)?;
        let client_id = store.in_tx(|tx| {
            let mut db = Lite(tx);
            crate::store::postgres::run_script(&mut db, LINK_TABLES)?;
            if let Some(existing) = link_get(&mut db, "member")?
                && existing != member
            {
                return Err(StoreError::Conflict(format!(
                    "{} is linked to member '{existing}'; use another file for '{member}'",
                    path.display()
                )));
            }
            let id = match link_get(&mut db, "client_id")? {
                Some(id) => id,
                None => uuid::Uuid::new_v4().to_string(),
            };
            link_set(&mut db, "client_id", &id)?;
            link_set(&mut db, "member", member)?;
            link_set(&mut db, "url", url)?;
            Ok(id)
        })?;
        Ok(Self {
            store,
            member: member.to_owned(),
            client_id,
            url: url.to_owned(),
        })
    }

    /// Open a local project linked earlier with [`TeamClient::join`].
    pub fn open(path: &Path) -> Result<Self, TeamError> {
        let store = SqliteStore::open(path)?;
        let mut db = Lite(store.conn());
        let linked = db.count(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'team_link'",
            &[],
        )? > 0;
        let get = |db: &mut Lite<'_>, key: &str| -> Result<String, TeamError> {
            link_get(db, key)?.ok_or_else(|| {
                TeamError::Corrupt(format!(
                    "{} is not linked to a team project (no {key}); run `thyme-studio team join`",
                    path.display()
                ))
            })
        };
        if !linked {
            return Err(TeamError::Corrupt(format!(
                "{} is not linked to a team project; run `thyme-studio team join`",
                path.display()
            )));
        }
        let member = get(&mut db, "member")?;
        let client_id = get(&mut db, "client_id")?;
        let url = get(&mut db, "url")?;
        Ok(Self {
            store,
            member,
            client_id,
            url,
        })
    }

    pub fn store(&self) -> &SqliteStore {
        &self.store
    }

    /// The local project, where every edit goes first.
    pub fn store_mut(&mut self) -> &mut SqliteStore {
        &mut self.store
    }

    pub fn member(&self) -> &str {
        &self.member
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn cursor(&self, key: &str) -> Result<i64, StoreError> {
        Ok(link_get(&mut Lite(self.store.conn()), key)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Local edits the server has not acknowledged, oldest first.
    pub fn unsent(&self) -> Result<Vec<(i64, Command)>, StoreError> {
        let after = self.cursor("pushed_seq")?;
        Lite(self.store.conn())
            .rows(
                "SELECT seq, command FROM journal WHERE seq > ?1 AND origin = 'local' ORDER BY seq",
                vals![after],
            )?
            .iter()
            .map(|r| Ok((r.int(0)?, rows::parse_command(&r.text(1)?)?)))
            .collect()
    }

    /// Conflicts not settled yet, oldest first.
    pub fn conflicts(&self) -> Result<Vec<LocalConflict>, StoreError> {
        Lite(self.store.conn())
            .rows(
                "SELECT id, image_id, message, command, mine, theirs, at_ms FROM team_conflicts WHERE resolved = 0 ORDER BY id",
                &[],
            )?
            .iter()
            .map(|r| {
                let parse_state = |s: Option<String>| -> Result<Option<ImageState>, StoreError> {
                    s.map(|s| {
                        serde_json::from_str(&s).map_err(|e| StoreError::Corrupt {
                            table: "team_conflicts",
                            reason: e.to_string(),
                        })
                    })
                    .transpose()
                };
                Ok(LocalConflict {
                    id: r.int(0)?,
                    image: r.opt_text(1)?.and_then(|s| ImageId::parse(&s)),
                    message: r.text(2)?,
                    command: rows::parse_command(&r.text(3)?)?,
                    mine: parse_state(r.opt_text(4)?)?,
                    theirs: parse_state(r.opt_text(5)?)?,
                    at_ms: r.int(6)?,
                })
            })
            .collect()
    }

    /// Per image: synced, saved locally, or in conflict (images not listed are synced).
    pub fn image_states(&self) -> Result<BTreeMap<ImageId, SyncState>, StoreError> {
        let mut out = BTreeMap::new();
        for (_, command) in self.unsent()? {
            if let Some(id) = command_image(&command) {
                out.insert(id.clone(), SyncState::SavedLocally);
            }
        }
        for c in self.conflicts()? {
            if let Some(id) = c.image {
                out.insert(id, SyncState::Conflict);
            }
        }
        Ok(out)
    }

    /// One round: push every unsent edit, then fetch what others changed. On a connection
    /// failure it stops where it is (nothing is lost; the next round goes on from there).
    pub fn sync(&mut self, server: &TeamServer, now: i64) -> Result<SyncReport, TeamError> {
        let mut report = SyncReport::default();
        self.push(server, now, &mut report)?;
        self.pull(server, &mut report)?;
        Ok(report)
    }

    fn push(
        &mut self,
        server: &TeamServer,
        now: i64,
        report: &mut SyncReport,
    ) -> Result<(), TeamError> {
        for (seq, command) in self.unsent()? {
            let op_key = format!("{}:{seq}", self.client_id);
            let outcome = server.push(&self.member, &op_key, &command, now)?;
            let image = command_image(&command).cloned();
            self.store.in_tx(|tx| {
                let mut db = Lite(tx);
                match &outcome {
                    PushOutcome::Applied => report.pushed += 1,
                    PushOutcome::Conflict { message, theirs } => {
                        report.conflicts += 1;
                        record_conflict(
                            &mut db,
                            &op_key,
                            image.as_ref(),
                            message,
                            &command,
                            theirs.as_deref(),
                            now,
                        )?;
                    }
                    PushOutcome::Refused { message } => {
                        report.refused += 1;
                        record_conflict(
                            &mut db,
                            &op_key,
                            image.as_ref(),
                            message,
                            &command,
                            None,
                            now,
                        )?;
                    }
                }
                link_set(&mut db, "pushed_seq", &seq.to_string())
            })?;
        }
        Ok(())
    }

    fn pull(&mut self, server: &TeamServer, report: &mut SyncReport) -> Result<(), TeamError> {
        let cursor = self.cursor("pull_cursor")?;
        let (changed, next) = server.changes(&self.member, &self.client_id, cursor)?;
        let categories = server.categories()?;
        let mut targets: BTreeMap<ImageId, String> = Lite(self.store.conn())
            .rows(
                "SELECT image_id, layer FROM team_stale ORDER BY image_id",
                &[],
            )?
            .iter()
            .filter_map(|r| {
                let id = r.text(0).ok().and_then(|s| ImageId::parse(&s))?;
                Some((id, r.text(1).ok()?))
            })
            .collect();
        targets.extend(changed);
        let mut fetched = Vec::with_capacity(targets.len());
        for (id, layer) in targets {
            let theirs = server.image_state(&layer, &id)?;
            fetched.push((id, layer, theirs));
        }
        let member = self.member.clone();
        self.store.in_tx(|tx| {
            let mut db = Lite(tx);
            for c in &categories {
                if db.count("SELECT count(*) FROM categories WHERE name = ?1", vals![c.name.as_str()])? == 0 {
                    let command = Command::AddCategory { category: c.clone() };
                    rows::execute(&mut db, &command)?;
                    journal_append_from(&mut db, &member, JournalAction::Edit, None, &command, None, "server")?;
                }
            }
            let pushed = link_get(&mut db, "pushed_seq")?.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
            let mut busy: BTreeSet<ImageId> = BTreeSet::new();
            for r in db.rows("SELECT command FROM journal WHERE seq > ?1 AND origin = 'local'", vals![pushed])? {
                if let Some(id) = command_image(&rows::parse_command(&r.text(0)?)?) {
                    busy.insert(id.clone());
                }
            }
            for r in db.rows("SELECT image_id FROM team_conflicts WHERE resolved = 0 AND image_id IS NOT NULL", &[])? {
                if let Some(id) = ImageId::parse(&r.text(0)?) {
                    busy.insert(id);
                }
            }
            for (id, layer, theirs) in &fetched {
                if busy.contains(id) {
                    db.exec(
                        "INSERT INTO team_stale (image_id, layer) VALUES (?1, ?2) ON CONFLICT (image_id) DO UPDATE SET layer = excluded.layer",
                        vals![id.as_str(), layer.as_str()],
                    )?;
                    report.waiting += 1;
                    continue;
                }
                take_server_state(&mut db, &member, id, theirs.as_ref())?;
                db.exec("DELETE FROM team_stale WHERE image_id = ?1", vals![id.as_str()])?;
                report.pulled_images += 1;
            }
            link_set(&mut db, "pull_cursor", &next.to_string())
        })?;
        Ok(())
    }

    /// Settle every open conflict on `image` one way or the other.
    pub fn resolve(
        &mut self,
        server: &TeamServer,
        image: &ImageId,
        how: Resolution,
        now: i64,
    ) -> Result<SyncReport, TeamError> {
        let mut report = SyncReport::default();
        let open: Vec<LocalConflict> = self
            .conflicts()?
            .into_iter()
            .filter(|c| c.image.as_ref() == Some(image))
            .collect();
        let Some(first) = open.first() else {
            return Ok(report);
        };
        let layer = server.layer_of(&self.member, image)?;
        let theirs = server.image_state(&layer, image)?;
        let mine = ImageState::read(&self.store, image)?;
        match how {
            Resolution::TakeTheirs => {
                let member = self.member.clone();
                self.store.in_tx(|tx| {
                    let mut db = Lite(tx);
                    take_server_state(&mut db, &member, image, theirs.as_ref())?;
                    Ok(())
                })?;
                report.pulled_images += 1;
            }
            Resolution::KeepMine => {
                let commands = match (&theirs, &mine) {
                    (t, Some(m)) => diff(t.as_ref(), m),
                    (Some(t), None) => vec![Command::RemoveImage {
                        image: t.image.clone(),
                        regions: t.regions.clone(),
                        questions: t.questions.clone(),
                    }],
                    (None, None) => Vec::new(),
                };
                for (i, command) in commands.iter().enumerate() {
                    let op_key = format!("{}:resolve:{}:{i}", self.client_id, first.id);
                    match server.push(&self.member, &op_key, command, now)? {
                        PushOutcome::Applied => report.pushed += 1,
                        PushOutcome::Conflict { message, theirs } => {
                            report.conflicts += 1;
                            self.store.in_tx(|tx| {
                                record_conflict(
                                    &mut Lite(tx),
                                    &op_key,
                                    Some(image),
                                    &message,
                                    command,
                                    theirs.as_deref(),
                                    now,
                                )
                            })?;
                        }
                        PushOutcome::Refused { message } => {
                            report.refused += 1;
                            self.store.in_tx(|tx| {
                                record_conflict(
                                    &mut Lite(tx),
                                    &op_key,
                                    Some(image),
                                    &message,
                                    command,
                                    None,
                                    now,
                                )
                            })?;
                        }
                    }
                }
            }
        }
        let ids: Vec<i64> = open.iter().map(|c| c.id).collect();
        self.store.in_tx(|tx| {
            let mut db = Lite(tx);
            for id in &ids {
                db.exec(
                    "UPDATE team_conflicts SET resolved = 1 WHERE id = ?1",
                    vals![*id],
                )?;
            }
            Ok(())
        })?;
        Ok(report)
    }
}

fn read_local(db: &mut dyn Db, id: &ImageId) -> Result<Option<ImageState>, StoreError> {
    ImageState::read_in(db, id)
}

/// Bring the local copy of an image to the server's state, journaled as the server's (never
/// sent back).
fn take_server_state(
    db: &mut dyn Db,
    member: &str,
    id: &ImageId,
    theirs: Option<&ImageState>,
) -> Result<(), StoreError> {
    let mine = read_local(db, id)?;
    for command in &to_server_state(mine.as_ref(), theirs) {
        rows::execute(db, command)?;
        journal_append_from(
            db,
            member,
            JournalAction::Edit,
            None,
            command,
            None,
            "server",
        )?;
    }
    Ok(())
}

fn record_conflict(
    db: &mut dyn Db,
    op_key: &str,
    image: Option<&ImageId>,
    message: &str,
    command: &Command,
    theirs: Option<&ImageState>,
    now: i64,
) -> Result<(), StoreError> {
    let mine = match image {
        Some(id) => read_local(db, id)?,
        None => None,
    };
    db.exec(
        "INSERT INTO team_conflicts (op_key, image_id, message, command, mine, theirs, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (op_key) DO NOTHING",
        vals![
            op_key,
            image.map(|i| i.as_str()),
            message,
            to_json(command)?,
            mine.as_ref().map(to_json).transpose()?.as_deref(),
            theirs.map(to_json).transpose()?.as_deref(),
            now
        ],
    )?;
    Ok(())
}
