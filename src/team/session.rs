//! A member's team session without a window: one linked project file, its server, and a
//! sync round that sends the member's edits, carries out one request (settle a conflict, move
//! an item through review, pin a comment, deal a batch, ...) and reads what the member's role
//! may see (their work, the review queue, verdicts, comments, the leads' dashboard). The app's
//! Team window runs [`sync_loop`] on a thread; the CLI calls the same pieces directly. What
//! could not be read is said in [`Snapshot::error`], never shown as an empty list.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use super::client::{LocalConflict, Resolution, SyncState, TeamClient};
use super::report::{ReportInputs, TeamReport};
use super::review::{ReviewAction, Role, WorkState};
use super::server::{
    Assignment, BatchSpec, Member, PinnedComment, Progress, TeamError, TeamServer,
};
use crate::dataset::ImageId;
use crate::store::now_ms;

/// How often the background sync runs when nothing asks for it sooner.
pub const SYNC_EVERY: Duration = Duration::from_secs(5);

/// What a member asks of the team, carried out in the next sync round.
#[derive(Debug, Clone)]
pub enum TeamRequest {
    SyncNow,
    Resolve(ImageId, Resolution),
    Act {
        image: ImageId,
        annotator: String,
        action: ReviewAction,
    },
    Report,
    Batch(BatchSpec),
    Reclaim,
    Reassign {
        image: ImageId,
        to: String,
    },
    Pin {
        image: ImageId,
        x: f64,
        y: f64,
        text: String,
    },
}

/// What one sync round saw.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub at_ms: i64,
    /// Why the round (or part of it) failed: server away, a table not readable, ...; edits
    /// stay in the local file meanwhile.
    pub error: Option<String>,
    pub role: Option<Role>,
    pub states: BTreeMap<ImageId, SyncState>,
    pub conflicts: Vec<LocalConflict>,
    pub mine: Vec<Assignment>,
    /// Items waiting for a reviewer (reviewers and leads only).
    pub queue: Vec<Assignment>,
    /// Images changed by others in the round (the project view reloads).
    pub pulled: usize,
    pub unsent: usize,
    pub report: Option<TeamReport>,
    /// Pinned comments by image.
    pub comments: BTreeMap<ImageId, Vec<PinnedComment>>,
    /// For items in review: what changed since they were submitted, in words.
    pub diffs: BTreeMap<(ImageId, String), Vec<String>>,
    /// Leads: every member, and progress per annotator.
    pub members: Vec<Member>,
    pub progress: Vec<Progress>,
    /// Per-box and per-question verdicts on this member's rejected items, in words.
    pub verdicts: BTreeMap<ImageId, Vec<String>>,
    /// The outcome of the request carried out in this round.
    pub message: Option<String>,
    /// How the connection to the server is encrypted (`TLSv1.3`, or "not encrypted"); `None`
    /// without a connection.
    pub connection: Option<String>,
}

impl Snapshot {
    /// Note a failure (the first one stays first).
    fn failed(&mut self, what: &str, e: impl std::fmt::Display) {
        let line = format!("{what}: {e}");
        match &mut self.error {
            Some(text) => {
                text.push_str("; ");
                text.push_str(&line);
            }
            None => self.error = Some(line),
        }
    }
}

/// One member's linked project and its server connection.
pub struct TeamSession {
    client: TeamClient,
    server: Option<TeamServer>,
    report: Option<TeamReport>,
    /// How the current connection is encrypted, asked once per connection.
    connection: Option<String>,
}

impl TeamSession {
    /// The session of a project file linked to a team.
    pub fn open(path: &Path) -> Result<Self, TeamError> {
        Ok(Self {
            client: TeamClient::open(path)?,
            server: None,
            report: None,
            connection: None,
        })
    }

    pub fn member(&self) -> &str {
        self.client.member()
    }

    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// The server, connected (again) when needed.
    fn server(&mut self) -> Result<&TeamServer, TeamError> {
        if self.server.as_ref().is_none_or(|s| !s.is_alive()) {
            self.connection = None;
            self.server = Some(TeamServer::open(self.client.url())?);
        }
        self.server
            .as_ref()
            .ok_or_else(|| TeamError::Corrupt("no server connection".into()))
    }

    /// One round: the request, the sync, and what the member's role may read.
    pub fn round(&mut self, request: Option<TeamRequest>) -> Snapshot {
        let mut snap = Snapshot::default();
        let now = now_ms();
        match request.map(|r| self.carry_out(r, now)) {
            Some(Ok(message)) => snap.message = message,
            Some(Err(e)) => snap.message = Some(e.to_string()),
            None => {}
        }
        match self.sync(now) {
            Ok(pulled) => snap.pulled = pulled,
            Err(e) => {
                snap.failed("sync", e);
                self.server = None;
            }
        }
        if let (Some(server), None) = (&self.server, &self.connection) {
            self.connection = match server.store().encryption() {
                Ok(Some(how)) => Some(how),
                Ok(None) => Some("not encrypted".into()),
                Err(_) => None,
            };
        }
        snap.connection = self.server.as_ref().and(self.connection.clone());
        if self.server.is_some()
            && let Err(e) = self.read_views(&mut snap, now)
        {
            snap.failed("reading the team's state", e);
        }
        self.read_local(&mut snap);
        snap.report = self.report.clone();
        snap.at_ms = now_ms();
        snap
    }

    /// Send this member's edits and fetch the others'; returns how many images changed.
    pub fn sync(&mut self, now: i64) -> Result<usize, TeamError> {
        self.server()?;
        let Some(server) = &self.server else {
            return Ok(0);
        };
        Ok(self.client.sync(server, now)?.pulled_images)
    }

    /// Carry out one request; returns what to tell the member.
    pub fn carry_out(
        &mut self,
        request: TeamRequest,
        now: i64,
    ) -> Result<Option<String>, TeamError> {
        let member = self.client.member().to_owned();
        self.server()?;
        let Some(s) = &self.server else {
            return Ok(None);
        };
        Ok(match request {
            TeamRequest::SyncNow => None,
            TeamRequest::Resolve(image, how) => {
                self.client.resolve(s, &image, how, now)?;
                Some(format!("conflict on {} settled", image.short()))
            }
            TeamRequest::Act {
                image,
                annotator,
                action,
            } => {
                let st = s.act(&member, &image, &annotator, &action, now)?;
                Some(format!(
                    "{}: {}",
                    image.short(),
                    st.as_str().replace('_', " ")
                ))
            }
            TeamRequest::Report => {
                self.report = Some(TeamReport::compute(&ReportInputs::gather(s)?));
                None
            }
            TeamRequest::Pin { image, x, y, text } => {
                s.pin_comment(&member, &image, x, y, &text, now)?;
                Some(format!("comment pinned on {}", image.short()))
            }
            TeamRequest::Batch(spec) => {
                let b = s.create_batch(&member, &spec, now)?;
                Some(format!(
                    "batch {}: {} image(s), {} double, {} honeypot(s)",
                    b.id, b.images, b.doubles, b.honeypots
                ))
            }
            TeamRequest::Reclaim => {
                let freed = s.reclaim_expired(&member, now)?;
                Some(format!("{} item(s) freed", freed.len()))
            }
            TeamRequest::Reassign { image, to } => {
                let from = s.primary_of(&image)?.unwrap_or_default();
                s.reassign(&member, &image, &from, &to, now)?;
                Some(format!("{} is {to}'s now", image.short()))
            }
        })
    }

    /// The member's role, work, queue, verdicts and comments; the dashboard for leads.
    fn read_views(&self, snap: &mut Snapshot, now: i64) -> Result<(), TeamError> {
        let Some(s) = &self.server else {
            return Ok(());
        };
        let member = self.client.member();
        snap.role = Some(s.role_of(member)?);
        snap.mine = s.assignments_of(member)?;
        if snap.role.is_some_and(Role::reviews) {
            snap.queue = s.review_queue()?;
            for a in snap.queue.iter().filter(|a| a.state == WorkState::InReview) {
                if let Some(who) = &a.annotator {
                    let lines = s.review_diff(&a.image, who)?;
                    snap.diffs.insert((a.image.clone(), who.clone()), lines);
                }
            }
        }
        if snap.role == Some(Role::Lead) {
            snap.members = s.members()?;
            snap.progress = s.progress(now)?;
        }
        for a in snap.mine.iter().filter(|a| a.state == WorkState::Rejected) {
            let lines = s
                .item_verdicts(&a.image, member)?
                .iter()
                .filter(|(_, v)| v.is_rejected())
                .map(|((kind, id), v)| {
                    format!("{kind} {}: {}", id.get(..8).unwrap_or(id), v.describe())
                })
                .collect();
            snap.verdicts.insert(a.image.clone(), lines);
        }
        for c in s.all_comments()? {
            snap.comments.entry(c.image.clone()).or_default().push(c);
        }
        Ok(())
    }

    /// What the local file says: each image's sync state, conflicts, edits not sent yet.
    fn read_local(&self, snap: &mut Snapshot) {
        match self.client.image_states() {
            Ok(states) => snap.states = states,
            Err(e) => snap.failed("reading the local sync state", e),
        }
        match self.client.conflicts() {
            Ok(c) => snap.conflicts = c,
            Err(e) => snap.failed("reading the local conflicts", e),
        }
        match self.client.unsent() {
            Ok(u) => snap.unsent = u.len(),
            Err(e) => snap.failed("reading the local edits", e),
        }
    }
}

/// The background sync: a round now, then one per request or every [`SYNC_EVERY`], each
/// snapshot sent to `out`; ends when either side of the channels is gone.
pub fn sync_loop(
    mut session: TeamSession,
    requests: &Receiver<TeamRequest>,
    out: &Sender<Snapshot>,
) {
    let mut request = None;
    loop {
        if out.send(session.round(request.take())).is_err() {
            tracing::debug!(
                member = session.member(),
                "team sync stopped: nobody listens"
            );
            return;
        }
        match requests.recv_timeout(SYNC_EVERY) {
            Ok(r) => request = Some(r),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}
