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

use super::review::{ReviewAction, ReviewError, Role, WorkState, next_state};
use super::state::{ImageState, diff};
use crate::dataset::{ImageId, ImageRecord, Review, ReviewTarget, Verdict};
use crate::rng::Rng;
use crate::store::postgres::{ANNOTATION_TABLES, run_script};
use crate::store::rows;
use crate::store::sql::{Db, vals};
use crate::store::{Command, PgStore, Store, StoreError};

/// The version of [`TEAM_TABLES`].
pub const TEAM_SCHEMA_VERSION: i64 = 1;

/// Team tables (in the public schema, beside the project tables).
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

/// A team project on a PostgreSQL server.
#[derive(Debug)]
pub struct TeamServer {
    store: PgStore,
}

impl TeamServer {
    /// Make (or update) a team project at `url` with `lead` as its first lead. Idempotent.
    pub fn init(url: &str, lead: &str, now: i64) -> Result<Self, TeamError> {
        check_name(lead)?;
        let store = PgStore::open(url)?;
        store.in_tx(|db| {
            let exists = db.count(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 'team_schema'",
                &[],
            )? > 0;
            if !exists {
                run_script(db, TEAM_TABLES)?;
                db.exec(
                    "INSERT INTO team_schema (version) VALUES (?1)",
                    vals![TEAM_SCHEMA_VERSION],
                )?;
            }
            db.exec(
                "INSERT INTO members (name, role, added_at_ms) VALUES (?1, 'lead', ?2) ON CONFLICT (name) DO UPDATE SET role = 'lead'",
                vals![lead, now],
            )?;
            Ok(())
        })?;
        Ok(Self { store })
    }

    /// Connect to an existing team project.
    pub fn open(url: &str) -> Result<Self, TeamError> {
        let store = PgStore::open(url)?;
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
            Some(_) => Ok(Self { store }),
        }
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

    pub fn add_member(&self, name: &str, role: Role, now: i64) -> Result<(), TeamError> {
        check_name(name)?;
        self.store.in_tx(|db| {
            db.exec(
                "INSERT INTO members (name, role, added_at_ms) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role",
                vals![name, role.as_str(), now],
            )?;
            Ok(())
        })?;
        Ok(())
    }

    pub fn members(&self) -> Result<Vec<Member>, TeamError> {
        let rows = self
            .store
            .read(|db| db.rows("SELECT name, role FROM members ORDER BY name", &[]))?;
        rows.iter()
            .map(|r| {
                let role = r.text(1)?;
                Ok(Member {
                    name: r.text(0)?,
                    role: Role::parse(&role)
                        .ok_or_else(|| TeamError::Corrupt(format!("unknown role '{role}'")))?,
                })
            })
            .collect()
    }

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

    /// Make a batch: pick unassigned, non-gold images, deal them to the annotators, add blind
    /// second copies for a share of them and honeypots for each annotator.
    pub fn create_batch(
        &self,
        lead: &str,
        spec: &BatchSpec,
        now: i64,
    ) -> Result<BatchSummary, TeamError> {
        self.require(lead, Role::Lead, "make batches")?;
        if spec.annotators.is_empty() {
            return Err(TeamError::Batch(
                "a batch needs at least one annotator".into(),
            ));
        }
        for a in &spec.annotators {
            self.role_of(a)?;
        }
        if !(0.0..=1.0).contains(&spec.double_share) {
            return Err(TeamError::Batch(format!(
                "double share {} is not between 0 and 1",
                spec.double_share
            )));
        }
        if spec.double_share > 0.0 && spec.annotators.len() < 2 {
            return Err(TeamError::Batch(
                "double annotation needs at least two annotators".into(),
            ));
        }
        let result = self.store.in_tx(|db| {
            let free: Vec<(String, String)> = db
                .rows(
                    "SELECT i.id, i.path FROM images i \
                     WHERE NOT EXISTS (SELECT 1 FROM assignments a WHERE a.image_id = i.id AND a.kind = 'primary') \
                     AND NOT EXISTS (SELECT 1 FROM gold g WHERE g.image_id = i.id) ORDER BY i.path, i.id",
                    &[],
                )?
                .iter()
                .map(|r| Ok((r.text(0)?, r.text(1)?)))
                .collect::<Result<_, StoreError>>()?;
            let mut rng = Rng::new(spec.seed);
            let chosen: Vec<String> = match &spec.selection {
                Selection::Folder(folder) => {
                    let prefix = folder.trim_end_matches('/').to_owned() + "/";
                    free.into_iter()
                        .filter(|(_, p)| p.starts_with(&prefix))
                        .map(|(id, _)| id)
                        .collect()
                }
                Selection::Count(n) => free.into_iter().take(*n).map(|(id, _)| id).collect(),
                Selection::Random { count, seed } => {
                    let mut ids: Vec<String> = free.into_iter().map(|(id, _)| id).collect();
                    let mut r = Rng::new(*seed);
                    r.shuffle(&mut ids);
                    ids.truncate(*count);
                    ids
                }
            };
            if chosen.is_empty() {
                return Ok(None);
            }
            let batch = db
                .row(
                    "INSERT INTO batches (name, created_by, created_at_ms) VALUES (?1, ?2, ?3) RETURNING id",
                    vals![spec.name.as_str(), lead, now],
                )?
                .ok_or_else(|| StoreError::Server("no batch id".into()))?
                .int(0)?;
            let mut summary = BatchSummary {
                id: batch,
                images: chosen.len(),
                ..Default::default()
            };
            let n = spec.annotators.len();
            let doubles = (spec.double_share * chosen.len() as f64).round() as usize;
            let mut double_picks: Vec<usize> = (0..chosen.len()).collect();
            rng.shuffle(&mut double_picks);
            double_picks.truncate(doubles);
            double_picks.sort_unstable();
            for (i, id) in chosen.iter().enumerate() {
                let who = &spec.annotators[i % n];
                insert_assignment(db, batch, id, who, "primary", MAIN_LAYER, spec.lease_ms, now)?;
                *summary.per_annotator.entry(who.clone()).or_default() += 1;
                if double_picks.binary_search(&i).is_ok() {
                    let second = &spec.annotators[(i + 1 + (rng.next_u64() as usize % (n - 1))) % n];
                    let layer = blind_layer(second);
                    copy_bare(db, id, &layer, lead)?;
                    insert_assignment(db, batch, id, second, "double", &layer, spec.lease_ms, now)?;
                    *summary.per_annotator.entry(second.clone()).or_default() += 1;
                    summary.doubles += 1;
                }
            }
            if spec.honeypots_per_annotator > 0 {
                let gold: Vec<String> = db
                    .rows("SELECT image_id FROM gold ORDER BY image_id", &[])?
                    .iter()
                    .map(|r| r.text(0))
                    .collect::<Result<_, _>>()?;
                for who in &spec.annotators {
                    let layer = blind_layer(who);
                    let mut candidates: Vec<&String> = Vec::new();
                    for g in &gold {
                        let taken = db.count(
                            "SELECT count(*) FROM assignments WHERE image_id = ?1 AND layer = ?2",
                            vals![g.as_str(), layer.as_str()],
                        )?;
                        if taken == 0 {
                            candidates.push(g);
                        }
                    }
                    for _ in 0..spec.honeypots_per_annotator.min(candidates.len()) {
                        let k = (rng.next_u64() % candidates.len() as u64) as usize;
                        let g = candidates.swap_remove(k);
                        copy_bare(db, g, &layer, lead)?;
                        insert_assignment(db, batch, g, who, "honeypot", &layer, spec.lease_ms, now)?;
                        *summary.per_annotator.entry(who.clone()).or_default() += 1;
                        summary.honeypots += 1;
                    }
                }
            }
            Ok(Some(summary))
        })?;
        result.ok_or_else(|| TeamError::Batch("no unassigned images match this selection".into()))
    }

    /// Give an annotator's item to someone else (its lease starts afresh).
    pub fn reassign(
        &self,
        lead: &str,
        image: &ImageId,
        from: &str,
        to: &str,
        now: i64,
    ) -> Result<(), TeamError> {
        self.require(lead, Role::Lead, "reassign work")?;
        self.role_of(to)?;
        self.store.in_tx(|db| {
            let Some(row) = db.row(
                &format!("SELECT {ASSIGNMENT_COLUMNS}, lease_ms FROM assignments WHERE image_id = ?1 AND (annotator = ?2 OR (annotator IS NULL AND ?2 = '')) ORDER BY id LIMIT 1"),
                vals![image.as_str(), from],
            )? else {
                return Err(StoreError::Server(format!("image {} is not assigned to '{from}'", image.short())));
            };
            let a = assignment_from_row(&row).map_err(|e| StoreError::Server(e.to_string()))?;
            let lease_ms = row.int(10)?;
            let layer = if a.kind == "primary" { MAIN_LAYER.to_owned() } else {
                let layer = blind_layer(to);
                copy_bare(db, a.image.as_str(), &layer, lead)?;
                layer
            };
            db.exec(
                "UPDATE assignments SET annotator = ?1, layer = ?2, lease_expires_ms = ?3, updated_at_ms = ?4 WHERE id = ?5",
                vals![to, layer.as_str(), now + lease_ms, now, a.id],
            )?;
            log_change(db, &a.image, &layer, lead, now)?;
            Ok(())
        })?;
        Ok(())
    }

    /// Free every primary item whose lease has run out while nobody submitted it; returns
    /// them. Their annotators can no longer push to them; `reassign` from "" gives them out.
    pub fn reclaim_expired(&self, lead: &str, now: i64) -> Result<Vec<Assignment>, TeamError> {
        self.require(lead, Role::Lead, "reclaim expired leases")?;
        let rows = self.store.in_tx(|db| {
            db.rows(
                &format!(
                    "UPDATE assignments SET annotator = NULL, updated_at_ms = ?1 \
                     WHERE kind = 'primary' AND annotator IS NOT NULL AND lease_expires_ms < ?1 \
                     AND state IN ('todo', 'in_progress') RETURNING {ASSIGNMENT_COLUMNS}"
                ),
                vals![now],
            )
        })?;
        rows.iter().map(assignment_from_row).collect()
    }

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
        let sql =
            format!("SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE {condition} ORDER BY id");
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

    /// Apply one edit a client pushes. `op_key` names it uniquely (client id and journal
    /// sequence number): a resent edit returns what happened the first time.
    pub fn push(
        &self,
        actor: &str,
        op_key: &str,
        command: &Command,
        now: i64,
    ) -> Result<PushOutcome, TeamError> {
        let outcome = self.store.in_tx(|db| {
            if let Some(row) = db.row(
                "SELECT outcome, message, layer, image_id FROM sync_log WHERE op_key = ?1",
                vals![op_key],
            )? {
                let message = row.text(1)?;
                return Ok(match row.text(0)?.as_str() {
                    "applied" => PushOutcome::Applied,
                    "refused" => PushOutcome::Refused { message },
                    _ => {
                        let theirs = match row.opt_text(3)?.and_then(|s| ImageId::parse(&s)) {
                            Some(id) => {
                                use_layer(db, &row.text(2)?)?;
                                read_state(db, &id)?
                            }
                            None => None,
                        };
                        PushOutcome::Conflict { message, theirs: theirs.map(Box::new) }
                    }
                });
            }
            let image = command_image(command).cloned();
            let mut layer = MAIN_LAYER.to_owned();
            let role_in_cached = role_in(db, actor)?;
            let refusal = match (role_in_cached, &image) {
                (None, _) => Some(format!("'{actor}' is not a member of this team")),
                (Some(Role::Annotator), Some(image)) => {
                    match db.row(
                        "SELECT id, layer, state, lease_ms FROM assignments WHERE image_id = ?1 AND annotator = ?2 ORDER BY kind = 'primary' DESC, id LIMIT 1",
                        vals![image.as_str(), actor],
                    )? {
                        None => Some(format!("image {} is not assigned to you (any more)", image.short())),
                        Some(row) => {
                            let state = WorkState::parse(&row.text(2)?).unwrap_or(WorkState::Accepted);
                            layer = row.text(1)?;
                            if state.editable_by_annotator() {
                                db.exec(
                                    "UPDATE assignments SET lease_expires_ms = ?1 + lease_ms, updated_at_ms = ?1, \
                                     state = CASE WHEN state = 'todo' THEN 'in_progress' ELSE state END WHERE id = ?2",
                                    vals![now, row.int(0)?],
                                )?;
                                None
                            } else if state == WorkState::Accepted {
                                Some(format!("image {} is accepted; it is read-only now", image.short()))
                            } else {
                                Some(format!("image {} is {} and cannot change until the review ends", image.short(), state.as_str()))
                            }
                        }
                    }
                }
                (Some(Role::Annotator), None) if matches!(command, Command::RemoveCategory { .. }) => {
                    Some("only reviewers and leads may remove categories".into())
                }
                _ => None,
            };
            let refusal = refusal.or_else(|| {
                (role_in_cached == Some(Role::Annotator) && sets_verdict(command))
                    .then(|| "only reviewers and leads give verdicts".to_owned())
            });
            let json = serde_json::to_string(command).map_err(|e| StoreError::Corrupt {
                table: "sync_log",
                reason: e.to_string(),
            })?;
            let image_text = image.as_ref().map(|i| i.as_str().to_owned());
            let log = |db: &mut dyn Db, outcome: &str, message: &str, layer: &str| {
                db.exec("SET LOCAL search_path TO public", &[])?;
                db.exec(
                    "INSERT INTO sync_log (op_key, actor, image_id, layer, outcome, message, command, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    vals![op_key, actor, image_text.as_deref(), layer, outcome, message, json.as_str(), now],
                )?;
                Ok::<_, StoreError>(())
            };
            if let Some(message) = refusal {
                log(db, "refused", &message, &layer)?;
                return Ok(PushOutcome::Refused { message });
            }
            if let (Some(role), Command::SetReview { target: ReviewTarget::Image(id), seen, after, .. }) =
                (role_in_cached, command)
            {
                // A verdict on a whole image from a reviewer's file is a review action.
                let annotator = primary_annotator(db, id)?.unwrap_or_default();
                let action = action_for_verdict(after.as_ref());
                db.exec("SAVEPOINT edit", &[])?;
                return match transition(db, actor, role, id, &annotator, &action, Some(after.clone()), seen, now) {
                    Ok(Ok(_)) => {
                        db.exec("RELEASE SAVEPOINT edit", &[])?;
                        log(db, "applied", "", MAIN_LAYER)?;
                        Ok(PushOutcome::Applied)
                    }
                    Ok(Err(e)) => {
                        db.exec("ROLLBACK TO SAVEPOINT edit", &[])?;
                        let message = e.to_string();
                        log(db, "refused", &message, MAIN_LAYER)?;
                        Ok(PushOutcome::Refused { message })
                    }
                    Err(e @ StoreError::Server(_)) => Err(e),
                    Err(e) => {
                        db.exec("ROLLBACK TO SAVEPOINT edit", &[])?;
                        db.exec("SET LOCAL search_path TO public", &[])?;
                        let theirs = read_state(db, id)?;
                        let message = e.to_string();
                        log(db, "conflict", &message, MAIN_LAYER)?;
                        Ok(PushOutcome::Conflict { message, theirs: theirs.map(Box::new) })
                    }
                };
            }
            use_layer(db, &layer)?;
            db.exec("SAVEPOINT edit", &[])?;
            match rows::apply(db, actor, command) {
                Ok(_) => {
                    db.exec("RELEASE SAVEPOINT edit", &[])?;
                    log(db, "applied", "", &layer)?;
                    if let Some(image) = &image {
                        let client = op_key.split(':').next();
                        log_change_from(db, image, &layer, actor, client, now)?;
                    }
                    Ok(PushOutcome::Applied)
                }
                Err(e @ StoreError::Server(_)) => Err(e),
                Err(e) => {
                    db.exec("ROLLBACK TO SAVEPOINT edit", &[])?;
                    let theirs = match &image {
                        Some(id) => read_state(db, id)?,
                        None => None,
                    };
                    let message = e.to_string();
                    log(db, "conflict", &message, &layer)?;
                    Ok(PushOutcome::Conflict { message, theirs: theirs.map(Box::new) })
                }
            }
        })?;
        Ok(outcome)
    }

    /// Images changed by others after `cursor` that `member` should fetch (with the layer
    /// they live in for this member), and the new cursor.
    ///
    /// Changes this client pushed itself are left out (it has them); everything else counts,
    /// including this member's work from another machine or the command line.
    pub fn changes(
        &self,
        member: &str,
        client: &str,
        cursor: i64,
    ) -> Result<(Vec<(ImageId, String)>, i64), TeamError> {
        let role = self.role_of(member)?;
        let (rows, last) = self.store.read(|db| {
            let last = db.count("SELECT coalesce(max(seq), 0) FROM changes", &[])?;
            let rows = if role == Role::Annotator {
                db.rows(
                    "SELECT DISTINCT c.image_id, c.layer FROM changes c JOIN assignments a \
                     ON a.image_id = c.image_id AND a.layer = c.layer AND a.annotator = ?1 \
                     WHERE c.seq > ?2 AND c.seq <= ?3 AND (c.client IS NULL OR c.client <> ?4) ORDER BY c.image_id",
                    vals![member, cursor, last, client],
                )?
            } else {
                db.rows(
                    "SELECT DISTINCT image_id, layer FROM changes WHERE seq > ?1 AND seq <= ?2 \
                     AND layer = 'main' AND (client IS NULL OR client <> ?3) ORDER BY image_id",
                    vals![cursor, last, client],
                )?
            };
            Ok((rows, last))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let id = r.text(0)?;
            let id = ImageId::parse(&id)
                .ok_or_else(|| TeamError::Corrupt(format!("bad image id '{id}'")))?;
            out.push((id, r.text(1)?));
        }
        Ok((out, last.max(cursor)))
    }

    /// The layer `member` works on `image` in: their blind copy for a double or a honeypot,
    /// else the shared one.
    pub fn layer_of(&self, member: &str, image: &ImageId) -> Result<String, TeamError> {
        let row = self.store.read(|db| {
            db.row(
                "SELECT layer FROM assignments WHERE image_id = ?1 AND annotator = ?2 ORDER BY kind = 'primary' DESC, id LIMIT 1",
                vals![image.as_str(), member],
            )
        })?;
        Ok(match row {
            Some(r) => r.text(0)?,
            None => MAIN_LAYER.to_owned(),
        })
    }

    /// An image as it is in a layer.
    pub fn image_state(
        &self,
        layer: &str,
        image: &ImageId,
    ) -> Result<Option<ImageState>, TeamError> {
        Ok(self.store.in_tx(|db| {
            use_layer(db, layer)?;
            read_state(db, image)
        })?)
    }

    /// Every category of the project (shared by all layers).
    pub fn categories(&self) -> Result<Vec<crate::dataset::Category>, TeamError> {
        Ok(self.store.categories()?)
    }

    // ---- review ----

    /// Move an item through review. Annotators act on their own items; reviewers on anyone's.
    /// An accept, reject, withdraw, reopen or fix also writes the image's verdict in the
    /// item's layer, journaled under `actor`, so it reaches every member's file.
    pub fn act(
        &self,
        actor: &str,
        image: &ImageId,
        annotator: &str,
        action: &ReviewAction,
        now: i64,
    ) -> Result<WorkState, TeamError> {
        let role = self.role_of(actor)?;
        if role == Role::Annotator && actor != annotator {
            return Err(TeamError::Role {
                who: actor.to_owned(),
                role: role.as_str(),
                needed: "the item's annotator or reviewers",
                what: "move another annotator's item",
            });
        }
        self.store.in_tx(|db| {
            let verdict = match verdict_of(action, actor, now) {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            transition(db, actor, role, image, annotator, action, verdict, "", now)
        })?
    }

    /// A reviewer's verdict on one box or question of an item (`None`: take it back),
    /// written on the item in the annotator's layer.
    #[allow(clippy::too_many_arguments)]
    pub fn review_item(
        &self,
        reviewer: &str,
        image: &ImageId,
        annotator: &str,
        target: &ReviewTarget,
        verdict: Option<Review>,
        now: i64,
    ) -> Result<(), TeamError> {
        self.require(reviewer, Role::Reviewer, "review items")?;
        if matches!(target, ReviewTarget::Image(_)) {
            return Err(TeamError::Batch(
                "a verdict on the whole image is an accept or reject of the item".into(),
            ));
        }
        let a = self
            .assignments_for(image)?
            .into_iter()
            .find(|a| a.annotator.as_deref() == Some(annotator))
            .ok_or_else(|| TeamError::NotAssigned {
                image: image.short().to_owned(),
                who: annotator.to_owned(),
            })?;
        self.store.in_tx(|db| {
            use_layer(db, &a.layer)?;
            let before = match target {
                ReviewTarget::Region(id) => {
                    rows::read_region(db, *id)?
                        .ok_or(StoreError::UnknownRegion(*id))?
                        .review
                }
                ReviewTarget::Question(id) => {
                    rows::read_question(db, *id)?
                        .ok_or(StoreError::UnknownQuestion(*id))?
                        .review
                }
                ReviewTarget::Image(_) => None,
            };
            rows::apply(
                db,
                reviewer,
                &Command::SetReview {
                    image: image.clone(),
                    target: target.clone(),
                    seen: String::new(),
                    before,
                    after: verdict.clone(),
                },
            )?;
            db.exec("SET LOCAL search_path TO public", &[])?;
            log_change(db, image, &a.layer, reviewer, now)
        })?;
        Ok(())
    }

    /// The verdicts on the boxes and questions of an item: (kind, id) -> verdict.
    pub fn item_verdicts(
        &self,
        image: &ImageId,
        annotator: &str,
    ) -> Result<BTreeMap<(String, String), Review>, TeamError> {
        let layer = self.layer_of(annotator, image)?;
        let Some(state) = self.image_state(&layer, image)? else {
            return Ok(BTreeMap::new());
        };
        let mut out = BTreeMap::new();
        for r in state.regions {
            if let Some(v) = r.review {
                out.insert(("box".to_owned(), r.id.to_string()), v);
            }
        }
        for q in state.questions {
            if let Some(v) = q.review {
                out.insert(("question".to_owned(), q.id.to_string()), v);
            }
        }
        Ok(out)
    }

    /// What changed on an item since its annotator submitted it (the reviewer's edits), in words.
    pub fn review_diff(&self, image: &ImageId, annotator: &str) -> Result<Vec<String>, TeamError> {
        let (submitted, layer) = self.store.read(|db| {
            let row = db.row(
                "SELECT submitted_state, layer FROM assignments WHERE image_id = ?1 AND annotator = ?2 ORDER BY kind = 'primary' DESC LIMIT 1",
                vals![image.as_str(), annotator],
            )?;
            match row {
                Some(r) => Ok((r.opt_text(0)?, r.text(1)?)),
                None => Ok((None, MAIN_LAYER.to_owned())),
            }
        })?;
        let Some(submitted) = submitted else {
            return Ok(Vec::new());
        };
        let before: ImageState = serde_json::from_str(&submitted)
            .map_err(|e| TeamError::Corrupt(format!("submitted state: {e}")))?;
        let Some(now) = self.image_state(&layer, image)? else {
            return Ok(vec![format!("image {} was removed", image.short())]);
        };
        Ok(super::state::describe(&before, &now))
    }

    /// Pin a comment on a point of an image (in image pixels).
    pub fn pin_comment(
        &self,
        author: &str,
        image: &ImageId,
        x: f64,
        y: f64,
        text: &str,
        now: i64,
    ) -> Result<i64, TeamError> {
        self.role_of(author)?;
        if text.trim().is_empty() {
            return Err(TeamError::Batch("a comment needs some text".into()));
        }
        let id = self.store.in_tx(|db| {
            let image_row = rows::read_image(db, image)?.ok_or_else(|| StoreError::UnknownImage(image.clone()))?;
            if !(0.0..=f64::from(image_row.size.width)).contains(&x) || !(0.0..=f64::from(image_row.size.height)).contains(&y) {
                return Err(StoreError::Server(format!("point ({x:.0}, {y:.0}) is outside the image")));
            }
            let id = db
                .row(
                    "INSERT INTO comments (image_id, layer, x, y, text, author, at_ms) VALUES (?1, 'main', ?2, ?3, ?4, ?5, ?6) RETURNING id",
                    vals![image.as_str(), x, y, text, author, now],
                )?
                .ok_or_else(|| StoreError::Server("no comment id".into()))?
                .int(0)?;
            log_change(db, image, MAIN_LAYER, author, now)?;
            Ok(id)
        })?;
        Ok(id)
    }

    /// Every pinned comment of the project, by image then time.
    pub fn all_comments(&self) -> Result<Vec<PinnedComment>, TeamError> {
        self.comments_where("TRUE", &[])
    }

    /// The comments pinned on one image, oldest first.
    pub fn comments(&self, image: &ImageId) -> Result<Vec<PinnedComment>, TeamError> {
        self.comments_where("image_id = ?1", vals![image.as_str()])
    }

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

    /// The names of every layer: the shared one first, then the blind copies by name.
    pub fn layers(&self) -> Result<Vec<String>, TeamError> {
        let rows = self.store.read(|db| {
            db.rows(
                "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name LIKE 'blind\\_%' ORDER BY 1",
                &[],
            )
        })?;
        let mut out = vec![MAIN_LAYER.to_owned()];
        for r in rows {
            out.push(r.text(0)?);
        }
        Ok(out)
    }

    /// Every journal entry of a layer (who did what, when), oldest first.
    pub fn layer_journal(&self, layer: &str) -> Result<Vec<crate::store::JournalEntry>, TeamError> {
        Ok(self.store.in_tx(|db| {
            use_layer(db, layer)?;
            rows::journal(db, 0, usize::MAX >> 2)
        })?)
    }

    /// Every review transition: (assignment id, actor, from, to, reason, at).
    pub fn review_events(&self) -> Result<Vec<ReviewEvent>, TeamError> {
        let rows = self.store.read(|db| {
            db.rows(
                "SELECT e.assignment_id, e.actor, e.from_state, e.to_state, e.reason, e.at_ms, coalesce(a.annotator, '') \
                 FROM review_events e JOIN assignments a ON a.id = e.assignment_id ORDER BY e.id",
                &[],
            )
        })?;
        rows.iter()
            .map(|r| {
                let state = |s: String| {
                    WorkState::parse(&s)
                        .ok_or_else(|| TeamError::Corrupt(format!("unknown state '{s}'")))
                };
                Ok(ReviewEvent {
                    assignment: r.int(0)?,
                    actor: r.text(1)?,
                    from: state(r.text(2)?)?,
                    to: state(r.text(3)?)?,
                    reason: r.opt_text(4)?,
                    at_ms: r.int(5)?,
                    annotator: r.text(6)?,
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
        let mut lines = vec![
            format!("project: {}", self.store.url()),
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
        "SELECT role FROM public.members WHERE name = ?1",
        vals![name],
    )? {
        Some(r) => Ok(Role::parse(&r.text(0)?)),
        None => Ok(None),
    }
}

fn log_change(
    db: &mut dyn Db,
    image: &ImageId,
    layer: &str,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    log_change_from(db, image, layer, actor, None, now)
}

/// Log a change; `client` names the client whose push it was (that client has it already).
fn log_change_from(
    db: &mut dyn Db,
    image: &ImageId,
    layer: &str,
    actor: &str,
    client: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    db.exec(
        "INSERT INTO public.changes (image_id, layer, actor, client, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        vals![image.as_str(), layer, actor, client, now],
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn insert_assignment(
    db: &mut dyn Db,
    batch: i64,
    image: &str,
    who: &str,
    kind: &str,
    layer: &str,
    lease_ms: i64,
    now: i64,
) -> Result<(), StoreError> {
    db.exec(
        "INSERT INTO assignments (batch_id, image_id, annotator, kind, layer, lease_ms, lease_expires_ms, state, updated_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'todo', ?8)",
        vals![batch, image, who, kind, layer, lease_ms, now + lease_ms, now],
    )?;
    let id = ImageId::parse(image)
        .ok_or_else(|| StoreError::Server(format!("bad image id '{image}'")))?;
    log_change(db, &id, layer, "lead", now)
}

/// Make sure `layer` exists and holds a bare copy of `image` (no boxes, no questions).
fn copy_bare(db: &mut dyn Db, image: &str, layer: &str, actor: &str) -> Result<(), StoreError> {
    let id = ImageId::parse(image)
        .ok_or_else(|| StoreError::Server(format!("bad image id '{image}'")))?;
    let record: ImageRecord =
        rows::read_image(db, &id)?.ok_or(StoreError::UnknownImage(id.clone()))?;
    let ident = layer.replace('"', "");
    let exists = db.count(
        "SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?1",
        vals![ident.as_str()],
    )? > 0;
    if !exists {
        db.exec(&format!("CREATE SCHEMA \"{ident}\""), &[])?;
        use_layer(db, layer)?;
        run_script(db, ANNOTATION_TABLES)?;
    } else {
        use_layer(db, layer)?;
    }
    if rows::read_image(db, &id)?.is_none() {
        let mut bare = record;
        bare.status = Default::default();
        rows::apply(
            db,
            actor,
            &Command::AddImage {
                image: bare,
                regions: Vec::new(),
                questions: Vec::new(),
            },
        )?;
    }
    db.exec("SET LOCAL search_path TO public", &[])?;
    Ok(())
}

/// The verdict an action writes on the image: `Some(None)` clears it, `None` leaves it.
#[allow(clippy::option_option)]
fn verdict_of(
    action: &ReviewAction,
    actor: &str,
    now: i64,
) -> Result<Option<Option<Review>>, TeamError> {
    Ok(match action {
        ReviewAction::Accept => Some(Some(Review::accepted(actor, "", now))),
        ReviewAction::Reject { reason, note } => Some(Some(
            Review::rejected(actor, reason, note, now)
                .map_err(|_| ReviewError::UnknownReason(reason.clone()))?,
        )),
        ReviewAction::Withdraw | ReviewAction::Reopen | ReviewAction::Fix => Some(None),
        ReviewAction::Start | ReviewAction::Submit | ReviewAction::Open => None,
    })
}

/// The review action an image-level verdict pushed from a reviewer's file stands for.
fn action_for_verdict(after: Option<&Review>) -> ReviewAction {
    match after {
        Some(r) if r.verdict == Verdict::Accepted => ReviewAction::Accept,
        Some(r) => ReviewAction::Reject {
            reason: r.reason.clone().unwrap_or_default(),
            note: r.note.clone(),
        },
        None => ReviewAction::Withdraw,
    }
}

/// Move an assignment through review inside a transaction and write the image's verdict in
/// its layer. An accept or reject of an item that waits for review opens the review first.
/// Returns the new state, or (as the inner error) why the move is not allowed.
#[allow(clippy::too_many_arguments, clippy::option_option)]
fn transition(
    db: &mut dyn Db,
    actor: &str,
    role: Role,
    image: &ImageId,
    annotator: &str,
    action: &ReviewAction,
    verdict: Option<Option<Review>>,
    seen: &str,
    now: i64,
) -> Result<Result<WorkState, TeamError>, StoreError> {
    let Some(row) = db.row(
        &format!("SELECT {ASSIGNMENT_COLUMNS} FROM public.assignments WHERE image_id = ?1 AND annotator = ?2 ORDER BY kind = 'primary' DESC, id LIMIT 1"),
        vals![image.as_str(), annotator],
    )? else {
        return Ok(Err(TeamError::NotAssigned { image: image.short().to_owned(), who: annotator.to_owned() }));
    };
    let a = match assignment_from_row(&row) {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    let mut from = a.state;
    let decides = matches!(action, ReviewAction::Accept | ReviewAction::Reject { .. });
    if decides && matches!(from, WorkState::Submitted | WorkState::Fixed) && role.reviews() {
        record_transition(db, a.id, actor, from, WorkState::InReview, None, None, now)?;
        from = WorkState::InReview;
    }
    let next = match next_state(from, action, role) {
        Ok(n) => n,
        Err(e) => return Ok(Err(e.into())),
    };
    let (reason, note) = match action {
        ReviewAction::Reject { reason, note } => (Some(reason.as_str()), Some(note.as_str())),
        _ => (None, None),
    };
    let snapshot = if matches!(action, ReviewAction::Submit | ReviewAction::Fix) {
        use_layer(db, &a.layer)?;
        let state = read_state(db, image)?;
        db.exec("SET LOCAL search_path TO public", &[])?;
        state
            .map(|s| serde_json::to_string(&s))
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                table: "assignments",
                reason: e.to_string(),
            })?
    } else {
        None
    };
    db.exec(
        "UPDATE public.assignments SET state = ?1, reason = CASE WHEN ?1 = 'rejected' THEN ?2 ELSE reason END, \
         note = CASE WHEN ?1 = 'rejected' THEN ?3 ELSE note END, \
         submitted_state = coalesce(?4, submitted_state), updated_at_ms = ?5 WHERE id = ?6",
        vals![next.as_str(), reason, note, snapshot.as_deref(), now, a.id],
    )?;
    record_transition(db, a.id, actor, from, next, reason, note, now)?;
    if let Some(after) = verdict {
        use_layer(db, &a.layer)?;
        let before = rows::read_image(db, image)?
            .ok_or_else(|| StoreError::UnknownImage(image.clone()))?
            .review;
        if before != after {
            let command = Command::SetReview {
                image: image.clone(),
                target: ReviewTarget::Image(image.clone()),
                seen: seen.to_owned(),
                before,
                after,
            };
            rows::apply(db, actor, &command)?;
        }
        db.exec("SET LOCAL search_path TO public", &[])?;
    }
    log_change(db, image, &a.layer, actor, now)?;
    Ok(Ok(next))
}

#[allow(clippy::too_many_arguments)]
fn record_transition(
    db: &mut dyn Db,
    assignment: i64,
    actor: &str,
    from: WorkState,
    to: WorkState,
    reason: Option<&str>,
    note: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    db.exec(
        "INSERT INTO public.review_events (assignment_id, actor, from_state, to_state, reason, note, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        vals![assignment, actor, from.as_str(), to.as_str(), reason, note, now],
    )?;
    Ok(())
}

/// Whether a command gives a verdict: any review action, or an edit that carries an
/// acceptance (annotators may do neither; an edit that clears a verdict is fine).
pub fn sets_verdict(command: &Command) -> bool {
    let accepts = |r: Option<&Review>| r.is_some_and(Review::is_accepted);
    let gives = |before: Option<&Review>, after: Option<&Review>| accepts(after) && before != after;
    match command {
        Command::SetReview { .. } => true,
        Command::AddImage {
            image,
            regions,
            questions,
        } => {
            accepts(image.review.as_ref())
                || regions.iter().any(|r| accepts(r.review.as_ref()))
                || questions.iter().any(|q| accepts(q.review.as_ref()))
        }
        Command::AddRegion { region, .. } => accepts(region.review.as_ref()),
        Command::AddQuestion { question } => accepts(question.review.as_ref()),
        Command::UpdateRegion { before, after } => {
            gives(before.review.as_ref(), after.review.as_ref())
        }
        Command::UpdateQuestion { before, after } => {
            gives(before.review.as_ref(), after.review.as_ref())
        }
        _ => false,
    }
}
