//! The server side of a team project: members, batches and leases, blind copies, the sync
//! endpoint clients push edits to and pull images from, review, and pinned comments.
//!
//! Everything lives in one PostgreSQL database next to the project tables of
//! [`PgStore`]. Primary work goes to those tables; the second annotator of a double-annotated
//! image and everyone's honeypots work in a blind copy: the same tables in a schema of their
//! own (`blind_<name>`), so nobody sees another's boxes and the gold stays untouched. Every
//! change a client must fetch is logged in `changes`; every pushed edit is logged in
//! `sync_log` under the client's key, so a resent edit is recognised, never applied twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

mod batch;
mod comments;
mod members;
mod review;
mod security;
mod sync;

pub use members::Invite;
pub use review::sets_verdict;
use review::{action_for_verdict, transition};
use sync::log_change;

use super::review::{ReviewAction, ReviewError, Role, WorkState, next_state};
use super::state::{ImageState, diff};
use crate::dataset::{ImageId, ImageRecord, Review, ReviewTarget, Verdict};
use crate::rng::Rng;
use crate::store::postgres::{ANNOTATION_TABLES, run_script};
use crate::store::rows;
use crate::store::sql::{Db, vals};
use crate::store::{Command, PgStore, Store, StoreError};

/// The version of the team tables: 1 is [`TEAM_TABLES`] as first made, 2 adds login roles
/// per member and the server's guard ([`MIGRATION_2`], `security.rs`).
pub const TEAM_SCHEMA_VERSION: i64 = 2;

/// Version 1 -> 2: the team's tag (it names the team's roles) and each member's login role.
/// Run by [`TeamServer::init`] on new and old databases alike, so the upgrade path is the
/// path every team takes.
const MIGRATION_2: &str = r#"
    ALTER TABLE team_schema ADD COLUMN IF NOT EXISTS tag TEXT;
    ALTER TABLE members ADD COLUMN IF NOT EXISTS login_role TEXT UNIQUE;
    ALTER TABLE members ADD COLUMN IF NOT EXISTS removed_at_ms BIGINT
"#;

/// Team tables (in the public schema, beside the project tables), as version 1 made them.
pub const TEAM_TABLES: &str = r#"
    CREATE TABLE team_schema (version BIGINT NOT NULL);
    CREATE TABLE members (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('annotator', 'reviewer', 'lead')),
        added_at_ms BIGINT NOT NULL
    );
    CREATE TABLE gold (
        image_id TEXT PRIMARY KEY REFERENCES images(id),
        state TEXT NOT NULL,
        set_by TEXT NOT NULL,
        at_ms BIGINT NOT NULL
    );
    CREATE TABLE batches (
        id BIGSERIAL PRIMARY KEY,
        name TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at_ms BIGINT NOT NULL
    );
    CREATE TABLE assignments (
        id BIGSERIAL PRIMARY KEY,
        batch_id BIGINT NOT NULL REFERENCES batches(id),
        image_id TEXT NOT NULL REFERENCES images(id),
        annotator TEXT REFERENCES members(name),
        kind TEXT NOT NULL CHECK (kind IN ('primary', 'double', 'honeypot')),
        layer TEXT NOT NULL,
        lease_ms BIGINT NOT NULL,
        lease_expires_ms BIGINT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        note TEXT,
        submitted_state TEXT,
        updated_at_ms BIGINT NOT NULL
    );
    CREATE UNIQUE INDEX one_primary_per_image ON assignments(image_id) WHERE kind = 'primary';
    CREATE UNIQUE INDEX one_copy_per_annotator ON assignments(image_id, layer) WHERE kind <> 'primary';
    CREATE INDEX assignments_by_annotator ON assignments(annotator);
    CREATE TABLE changes (
        seq BIGSERIAL PRIMARY KEY,
        image_id TEXT NOT NULL,
        layer TEXT NOT NULL,
        actor TEXT NOT NULL,
        client TEXT,
        at_ms BIGINT NOT NULL
    );
    CREATE TABLE sync_log (
        op_key TEXT PRIMARY KEY,
        actor TEXT NOT NULL,
        image_id TEXT,
        layer TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'conflict', 'refused')),
        message TEXT NOT NULL,
        command TEXT NOT NULL,
        at_ms BIGINT NOT NULL
    );
    CREATE TABLE review_events (
        id BIGSERIAL PRIMARY KEY,
        assignment_id BIGINT NOT NULL REFERENCES assignments(id),
        actor TEXT NOT NULL,
        from_state TEXT NOT NULL,
        to_state TEXT NOT NULL,
        reason TEXT,
        note TEXT,
        at_ms BIGINT NOT NULL
    );
    CREATE TABLE comments (
        id BIGSERIAL PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id),
        layer TEXT NOT NULL,
        x DOUBLE PRECISION NOT NULL,
        y DOUBLE PRECISION NOT NULL,
        text TEXT NOT NULL,
        author TEXT NOT NULL,
        at_ms BIGINT NOT NULL
    )
"#;

/// The layer name of the shared, primary annotations.
pub const MAIN_LAYER: &str = "main";

#[derive(Debug, Error)]
pub enum TeamError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Review(#[from] ReviewError),
    #[error(
        "{0}: not a team project (no team tables); a lead makes one with `thyme-studio team init URL --lead NAME`"
    )]
    NotATeamProject(String),
    #[error("'{0}' is not a member of this team")]
    NotMember(String),
    #[error(
        "{0}: this team database was made by an older version (no login roles per member); the lead upgrades it once with `thyme-studio team init URL --lead NAME`, which prints each member's new join string"
    )]
    OldTeamSchema(String),
    #[error(
        "'{0}' is not a usable member name (1-32 characters: lowercase letters, digits, '.', '-', '_')"
    )]
    BadName(String),
    #[error("{who} is {role}; only {needed} may {what}")]
    Role {
        who: String,
        role: &'static str,
        needed: &'static str,
        what: &'static str,
    },
    #[error("image {image} is not assigned to {who}")]
    NotAssigned { image: String, who: String },
    #[error("{0}")]
    Batch(String),
    #[error("{0}")]
    Credentials(String),
    #[error("team data is damaged: {0}")]
    Corrupt(String),
}

/// A team member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub role: Role,
}

/// One image for one annotator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub id: i64,
    pub batch: i64,
    pub image: ImageId,
    pub annotator: Option<String>,
    /// `primary`, `double` or `honeypot` (the last two are never shown to the annotator).
    pub kind: String,
    pub layer: String,
    pub lease_expires_ms: i64,
    pub state: WorkState,
    pub reason: Option<String>,
    pub note: Option<String>,
}

/// Which images a batch takes from those not yet assigned.
#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    /// Every unassigned image whose path starts with this folder.
    Folder(String),
    /// The first N unassigned images by path.
    Count(usize),
    /// N unassigned images drawn at random (seeded).
    Random { count: usize, seed: u64 },
}

/// What a lead asks for when making a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSpec {
    pub name: String,
    pub selection: Selection,
    /// Images are dealt round-robin to these annotators.
    pub annotators: Vec<String>,
    pub lease_ms: i64,
    /// Share of the batch's images that a second annotator also does, blind (0..=1).
    pub double_share: f64,
    /// Gold images mixed, unmarked, into each annotator's share.
    pub honeypots_per_annotator: usize,
    pub seed: u64,
}

/// What a batch turned out to hold.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchSummary {
    pub id: i64,
    pub images: usize,
    pub doubles: usize,
    pub honeypots: usize,
    pub per_annotator: BTreeMap<String, usize>,
}

/// What the server did with one pushed edit.
#[derive(Debug, Clone, PartialEq)]
pub enum PushOutcome {
    Applied,
    /// The edit expected a state the server no longer has (someone else changed it), or no
    /// longer fits it; `theirs` is the server's image as it is.
    Conflict {
        message: String,
        theirs: Option<Box<ImageState>>,
    },
    /// The edit is not this member's to make (not assigned, under review, accepted).
    Refused {
        message: String,
    },
}

/// Progress of one annotator: assignments by state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    pub annotator: String,
    pub by_state: BTreeMap<WorkState, usize>,
    pub leases_expired: usize,
}

/// One review transition.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewEvent {
    pub assignment: i64,
    pub actor: String,
    pub from: WorkState,
    pub to: WorkState,
    pub reason: Option<String>,
    pub at_ms: i64,
    /// Whose item it is.
    pub annotator: String,
}

/// A comment pinned to a point of an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinnedComment {
    pub id: i64,
    pub image: ImageId,
    pub x: f64,
    pub y: f64,
    pub text: String,
    pub author: String,
    pub at_ms: i64,
}

fn check_name(name: &str) -> Result<(), TeamError> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-' || c == '_'
        });
    if ok {
        Ok(())
    } else {
        Err(TeamError::BadName(name.to_owned()))
    }
}

fn blind_layer(annotator: &str) -> String {
    format!("blind_{annotator}")
}

/// Point unqualified table names at a layer for the rest of the transaction.
fn use_layer(db: &mut dyn Db, layer: &str) -> Result<(), StoreError> {
    if layer == MAIN_LAYER {
        db.exec("SET LOCAL search_path TO public", &[])?;
    } else {
        let ident = layer.replace('"', "");
        db.exec(
            &format!("SET LOCAL search_path TO \"{ident}\", public"),
            &[],
        )?;
    }
    Ok(())
}

/// The image an edit touches (none for category edits).
pub fn command_image(command: &Command) -> Option<&ImageId> {
    match command {
        Command::AddImage { image, .. } | Command::RemoveImage { image, .. } => Some(&image.id),
        Command::RelocateImage { id, .. } | Command::SetImageStatus { id, .. } => Some(id),
        Command::AddRegion { region, .. } | Command::DeleteRegion { region, .. } => {
            Some(&region.image)
        }
        Command::UpdateRegion { after, .. } => Some(&after.image),
        Command::AddQuestion { question } | Command::DeleteQuestion { question } => {
            Some(&question.image)
        }
        Command::UpdateQuestion { after, .. } => Some(&after.image),
        Command::SetReview { image, .. } => Some(image),
        Command::AddCategory { .. } | Command::RemoveCategory { .. } => None,
    }
}

fn read_state(db: &mut dyn Db, id: &ImageId) -> Result<Option<ImageState>, StoreError> {
    ImageState::read_in(db, id)
}

fn assignment_from_row(row: &crate::store::sql::Row) -> Result<Assignment, TeamError> {
    let image = row.text(2)?;
    let state = row.text(7)?;
    Ok(Assignment {
        id: row.int(0)?,
        batch: row.int(1)?,
        image: ImageId::parse(&image)
            .ok_or_else(|| TeamError::Corrupt(format!("bad image id '{image}'")))?,
        annotator: row.opt_text(3)?,
        kind: row.text(4)?,
        layer: row.text(5)?,
        lease_expires_ms: row.int(6)?,
        state: WorkState::parse(&state)
            .ok_or_else(|| TeamError::Corrupt(format!("unknown state '{state}'")))?,
        reason: row.opt_text(8)?,
        note: row.opt_text(9)?,
    })
}

const ASSIGNMENT_COLUMNS: &str =
    "id, batch_id, image_id, annotator, kind, layer, lease_expires_ms, state, reason, note";

/// The same columns as an annotator's login may read them: whether a blind copy is a double
/// or a honeypot is not theirs to know.
const ASSIGNMENT_COLUMNS_BLIND: &str = "id, batch_id, image_id, annotator, CASE WHEN layer = 'main' THEN 'primary' ELSE 'blind' END, layer, lease_expires_ms, state, reason, note";

/// A team project on a PostgreSQL server.
#[derive(Debug)]
pub struct TeamServer {
    store: PgStore,
    /// The URL connected to, with its password (never printed; new members' join strings
    /// are made from it).
    url: String,
    /// The member this connection is logged in as, with their role; `None` for the owner's
    /// connection (the lead who made the team), which acts for any member it names.
    login: Option<(String, Role)>,
}

impl TeamServer {
    /// Make (or update) a team project at `url` with `lead` as its first lead. Idempotent.
    /// The connection of `url` becomes the tables' owner. A database made by an older version
    /// is upgraded in place; [`TeamServer::invite_missing`] then issues credentials to its
    /// members.
    pub fn init(url: &str, lead: &str, now: i64) -> Result<Self, TeamError> {
        check_name(lead)?;
        let url = super::credentials::complete(url);
        let store = PgStore::open(&url)?;
        store.in_tx(|db| {
            let exists = db.count(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'team_schema'",
                &[],
            )? > 0;
            if !exists {
                run_script(db, TEAM_TABLES)?;
                db.exec(
                    "INSERT INTO team_schema (version) VALUES (1)",
                    &[],
                )?;
            }
            run_script(db, MIGRATION_2)?;
            let tag = format!("thyme_{}", &uuid::Uuid::new_v4().simple().to_string()[..6]);
            db.exec(
                "UPDATE team_schema SET tag = coalesce(tag, ?1), version = ?2",
                vals![tag, TEAM_SCHEMA_VERSION],
            )?;
            db.exec(
                "INSERT INTO members (name, role, added_at_ms) VALUES (?1, 'lead', ?2) ON CONFLICT (name) DO UPDATE SET role = 'lead'",
                vals![lead, now],
            )?;
            security::install(db)?;
            Ok(())
        })?;
        Ok(Self {
            store,
            url,
            login: None,
        })
    }

    /// Connect to an existing team project (with the password kept for `url` when the URL
    /// has none: see [`super::credentials`]).
    pub fn open(url: &str) -> Result<Self, TeamError> {
        let url = super::credentials::complete(url);
        let store = PgStore::open(&url)?;
        let version = store.read(|db| {
            let exists = db.count(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'team_schema'",
                &[],
            )? > 0;
            if !exists {
                return Ok(None);
            }
            db.row("SELECT version FROM team_schema", &[])?
                .map(|r| r.int(0))
                .transpose()
        })?;
        match version {
            None => Err(TeamError::NotATeamProject(store.url().to_owned())),
            Some(v) if v > TEAM_SCHEMA_VERSION => Err(StoreError::NewerSchema {
                path: store.url().into(),
                found: v,
                supported: TEAM_SCHEMA_VERSION,
            }
            .into()),
            Some(v) if v < TEAM_SCHEMA_VERSION => {
                Err(TeamError::OldTeamSchema(store.url().to_owned()))
            }
            Some(_) => {
                let login = store.read(|db| {
                    match db.row("SELECT public.thyme_me(), public.thyme_my_role()", &[])? {
                        Some(r) => Ok(r.opt_text(0)?.zip(r.opt_text(1)?)),
                        None => Ok(None),
                    }
                })?;
                let login = login.and_then(|(name, role)| Role::parse(&role).map(|r| (name, r)));
                Ok(Self { store, url, login })
            }
        }
    }

    /// The member this connection is logged in as (`None`: the owner's connection).
    pub fn login(&self) -> Option<&(String, Role)> {
        self.login.as_ref()
    }

    /// The shared project (primary annotations), for reading and for leads' own edits.
    pub fn store(&self) -> &PgStore {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut PgStore {
        &mut self.store
    }

    /// Whether the connection still works.
    pub fn is_alive(&self) -> bool {
        self.store.is_alive()
    }

    // ---- members ----

    pub fn role_of(&self, name: &str) -> Result<Role, TeamError> {
        self.store
            .read(|db| role_in(db, name))?
            .ok_or_else(|| TeamError::NotMember(name.to_owned()))
    }

    fn require(&self, who: &str, needed: Role, what: &'static str) -> Result<Role, TeamError> {
        let role = self.role_of(who)?;
        let ok = match needed {
            Role::Annotator => true,
            Role::Reviewer => role.reviews(),
            Role::Lead => role == Role::Lead,
        };
        if ok {
            Ok(role)
        } else {
            Err(TeamError::Role {
                who: who.to_owned(),
                role: role.as_str(),
                needed: match needed {
                    Role::Annotator => "members",
                    Role::Reviewer => "reviewers and leads",
                    Role::Lead => "leads",
                },
                what,
            })
        }
    }

    // ---- images and gold ----

    /// Add images (with whatever boxes and questions they carry) to the shared project; ones
    /// already there are skipped. Returns how many were added.
    pub fn add_images(
        &self,
        lead: &str,
        states: &[ImageState],
        now: i64,
    ) -> Result<usize, TeamError> {
        self.require(lead, Role::Lead, "add images")?;
        let mut added = 0;
        for state in states {
            let done = self.store.in_tx(|db| {
                if rows::read_image(db, &state.image.id)?.is_some() {
                    return Ok(false);
                }
                for c in diff(None, state) {
                    rows::apply(db, lead, &c)?;
                }
                log_change(db, &state.image.id, MAIN_LAYER, lead, now)?;
                Ok(true)
            })?;
            added += usize::from(done);
        }
        Ok(added)
    }

    /// Add a category to the project (shared by every copy).
    pub fn add_category(
        &self,
        lead: &str,
        category: crate::dataset::Category,
    ) -> Result<(), TeamError> {
        self.require(lead, Role::Lead, "add categories")?;
        self.store
            .in_tx(|db| rows::apply(db, lead, &Command::AddCategory { category }))?;
        Ok(())
    }

    /// Make the shared project's current annotations of `image` its gold (the known boxes
    /// and answers honeypots are scored against).
    pub fn set_gold(&self, lead: &str, image: &ImageId, now: i64) -> Result<(), TeamError> {
        self.require(lead, Role::Lead, "set gold images")?;
        self.store.in_tx(|db| {
            let state = read_state(db, image)?.ok_or_else(|| StoreError::UnknownImage(image.clone()))?;
            let json = serde_json::to_string(&state).map_err(|e| StoreError::Corrupt {
                table: "gold",
                reason: e.to_string(),
            })?;
            db.exec(
                "INSERT INTO gold (image_id, state, set_by, at_ms) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (image_id) DO UPDATE SET state = EXCLUDED.state, set_by = EXCLUDED.set_by, at_ms = EXCLUDED.at_ms",
                vals![image.as_str(), json, lead, now],
            )?;
            Ok(())
        })?;
        Ok(())
    }

    /// Every gold image with its known state.
    pub fn gold(&self) -> Result<BTreeMap<ImageId, ImageState>, TeamError> {
        let rows = self
            .store
            .read(|db| db.rows("SELECT image_id, state FROM gold ORDER BY image_id", &[]))?;
        let mut out = BTreeMap::new();
        for r in rows {
            let state: ImageState = serde_json::from_str(&r.text(1)?)
                .map_err(|e| TeamError::Corrupt(format!("gold: {e}")))?;
            out.insert(state.image.id.clone(), state);
        }
        Ok(out)
    }

    // ---- batches and leases ----

    /// Every assignment of `annotator` (the lead's view and the annotator's own list).
    pub fn assignments_of(&self, annotator: &str) -> Result<Vec<Assignment>, TeamError> {
        self.assignments_where("annotator = ?1", vals![annotator])
    }

    /// Every assignment of an image.
    pub fn assignments_for(&self, image: &ImageId) -> Result<Vec<Assignment>, TeamError> {
        self.assignments_where("image_id = ?1", vals![image.as_str()])
    }

    /// The annotator an image is dealt to (its primary assignment), if any.
    pub fn primary_of(&self, image: &ImageId) -> Result<Option<String>, TeamError> {
        Ok(self.store.read(|db| primary_annotator(db, image))?)
    }

    /// What waits for a reviewer: primary items submitted, fixed or in review, in order.
    pub fn review_queue(&self) -> Result<Vec<Assignment>, TeamError> {
        Ok(self
            .all_assignments()?
            .into_iter()
            .filter(|a| {
                a.kind == "primary"
                    && matches!(
                        a.state,
                        WorkState::Submitted | WorkState::Fixed | WorkState::InReview
                    )
            })
            .collect())
    }

    /// Every assignment.
    pub fn all_assignments(&self) -> Result<Vec<Assignment>, TeamError> {
        self.assignments_where("TRUE", &[])
    }

    fn assignments_where(
        &self,
        condition: &str,
        params: &[crate::store::sql::Val],
    ) -> Result<Vec<Assignment>, TeamError> {
        let columns = match self.login {
            Some((_, Role::Annotator)) => ASSIGNMENT_COLUMNS_BLIND,
            _ => ASSIGNMENT_COLUMNS,
        };
        let sql = format!("SELECT {columns} FROM assignments WHERE {condition} ORDER BY id");
        let rows = self.store.read(|db| db.rows(&sql, params))?;
        rows.iter().map(assignment_from_row).collect()
    }

    /// Per annotator: items by state and leases run out.
    pub fn progress(&self, now: i64) -> Result<Vec<Progress>, TeamError> {
        let mut by: BTreeMap<String, Progress> = BTreeMap::new();
        for a in self.all_assignments()? {
            let who = a.annotator.clone().unwrap_or_else(|| "(unassigned)".into());
            let p = by.entry(who.clone()).or_insert_with(|| Progress {
                annotator: who,
                ..Default::default()
            });
            *p.by_state.entry(a.state).or_default() += 1;
            if a.lease_expires_ms < now && a.state.editable_by_annotator() {
                p.leases_expired += 1;
            }
        }
        Ok(by.into_values().collect())
    }

    // ---- sync ----

    /// Every category of the project (shared by all layers).
    pub fn categories(&self) -> Result<Vec<crate::dataset::Category>, TeamError> {
        Ok(self.store.categories()?)
    }

    // ---- review ----

    fn comments_where(
        &self,
        condition: &str,
        params: &[crate::store::sql::Val],
    ) -> Result<Vec<PinnedComment>, TeamError> {
        let sql = format!(
            "SELECT id, image_id, x, y, text, author, at_ms FROM comments WHERE {condition} ORDER BY image_id, id"
        );
        let rows = self.store.read(|db| db.rows(&sql, params))?;
        rows.iter()
            .map(|r| {
                let image = r.text(1)?;
                Ok(PinnedComment {
                    id: r.int(0)?,
                    image: ImageId::parse(&image)
                        .ok_or_else(|| TeamError::Corrupt(format!("bad image id '{image}'")))?,
                    x: r.real(2)?,
                    y: r.real(3)?,
                    text: r.text(4)?,
                    author: r.text(5)?,
                    at_ms: r.int(6)?,
                })
            })
            .collect()
    }

    /// Counts the lead reads first: images, assignments by state, members, edits, conflicts.
    pub fn status_lines(&self, now: i64) -> Result<Vec<String>, TeamError> {
        let stats = self.store.stats()?;
        let members = self.members()?;
        let (applied, conflicts, refused) = self.store.read(|db| {
            Ok((
                db.count(
                    "SELECT count(*) FROM sync_log WHERE outcome = 'applied'",
                    &[],
                )?,
                db.count(
                    "SELECT count(*) FROM sync_log WHERE outcome = 'conflict'",
                    &[],
                )?,
                db.count(
                    "SELECT count(*) FROM sync_log WHERE outcome = 'refused'",
                    &[],
                )?,
            ))
        })?;
        let connection = match self.store.encryption()? {
            Some(how) => format!("connection: encrypted ({how})"),
            None => "connection: not encrypted (the server offers no TLS, or the URL says sslmode=disable)".to_owned(),
        };
        let mut lines = vec![
            format!("project: {}", self.store.url()),
            connection,
            format!(
                "images: {}, boxes: {}, questions: {}",
                stats.images, stats.regions, stats.questions
            ),
            format!(
                "members: {} ({})",
                members.len(),
                members
                    .iter()
                    .map(|m| format!("{} {}", m.name, m.role.as_str()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!("synced edits: {applied} applied, {conflicts} conflicts, {refused} refused"),
        ];
        for p in self.progress(now)? {
            let states: Vec<String> = p
                .by_state
                .iter()
                .map(|(s, n)| format!("{} {n}", s.as_str()))
                .collect();
            let mut line = format!("  {}: {}", p.annotator, states.join(", "));
            if p.leases_expired > 0 {
                line.push_str(&format!(" ({} leases expired)", p.leases_expired));
            }
            lines.push(line);
        }
        Ok(lines)
    }
}

/// Who holds the primary assignment of an image.
fn primary_annotator(db: &mut dyn Db, image: &ImageId) -> Result<Option<String>, StoreError> {
    Ok(db
        .row(
            "SELECT annotator FROM public.assignments WHERE image_id = ?1 AND kind = 'primary'",
            vals![image.as_str()],
        )?
        .map(|r| r.opt_text(0))
        .transpose()?
        .flatten())
}

fn role_in(db: &mut dyn Db, name: &str) -> Result<Option<Role>, StoreError> {
    match db.row(
        "SELECT role FROM public.members WHERE name = ?1 AND removed_at_ms IS NULL",
        vals![name],
    )? {
        Some(r) => Ok(Role::parse(&r.text(0)?)),
        None => Ok(None),
    }
}
