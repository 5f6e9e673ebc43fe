//! Team mode in the app: a background sync of the open project (when it is linked to a team)
//! and the Team window: my work with review states and reasons, conflicts with both versions
//! and a choice, the review queue for reviewers, and the quality dashboard with CSV export.
//!
//! The sync runs on its own thread with its own connections, every few seconds and on demand;
//! the UI only reads the latest snapshot it sent, so a slow or absent server never stalls a
//! frame. Edits stay in the local project either way.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};

use egui_plot::{Bar, BarChart, Legend, Plot};

use crate::app::command::{AppCommand, Outbox};
use crate::dataset::ImageId;
use crate::store::now_ms;
use crate::team::client::{Resolution, SyncState};
use crate::team::report::TeamReport;
use crate::team::review::{REJECT_REASONS, ReviewAction, Role, WorkState};
use crate::team::server::{BatchSpec, PinnedComment, Selection};
use crate::team::session::{TeamRequest, TeamSession, sync_loop};

pub use crate::team::session::{SYNC_EVERY, Snapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Tab {
    #[default]
    MyWork,
    Conflicts,
    Review,
    Dashboard,
    Lead,
}

/// A new batch as the lead fills it in.
#[derive(Debug, Clone)]
struct BatchForm {
    name: String,
    /// 0: first N, 1: random N, 2: folder.
    pick: usize,
    count: usize,
    folder: String,
    chosen: BTreeSet<String>,
    lease_hours: f64,
    double: f64,
    honeypots: usize,
}

impl Default for BatchForm {
    fn default() -> Self {
        Self {
            name: "batch".into(),
            pick: 0,
            count: 20,
            folder: String::new(),
            chosen: BTreeSet::new(),
            lease_hours: 8.0,
            double: 0.1,
            honeypots: 1,
        }
    }
}

/// The Team window and the sync behind it.
#[derive(Default)]
pub struct TeamPanel {
    pub open: bool,
    member: String,
    url: String,
    /// The project file (the CSV report goes beside it).
    project: PathBuf,
    tx: Option<Sender<TeamRequest>>,
    rx: Option<Receiver<Snapshot>>,
    pub snapshot: Snapshot,
    /// This member's work state per image, from the snapshot (looked up per list row).
    work: BTreeMap<ImageId, WorkState>,
    tab: Tab,
    reason: usize,
    note: String,
    /// Where the last CSV went.
    csv_message: Option<String>,
    /// A comment being written.
    comment: String,
    /// What the window's buttons asked of the app, handed over at the end of the window.
    asks: Outbox,
    batch: BatchForm,
    /// The member the lead gives the selected image to.
    reassign_to: String,
}

impl TeamPanel {
    /// Start syncing `path` when it is linked to a team; stop any earlier session.
    pub fn attach(&mut self, path: &Path) -> Option<String> {
        self.tx = None;
        self.rx = None;
        self.snapshot = Snapshot::default();
        let session = TeamSession::open(path).ok()?;
        self.member = session.member().to_owned();
        self.project = path.to_owned();
        self.url = crate::store::postgres::redact_url(session.url());
        let (req_tx, req_rx) = channel();
        let (snap_tx, snap_rx) = channel();
        let spawned = std::thread::Builder::new()
            .name("team-sync".into())
            .spawn(move || sync_loop(session, &req_rx, &snap_tx));
        if let Err(e) = spawned {
            tracing::warn!("team sync not started: {e}");
            return None;
        }
        self.tx = Some(req_tx);
        self.rx = Some(snap_rx);
        Some(self.member.clone())
    }

    pub fn active(&self) -> bool {
        self.tx.is_some()
    }

    /// Take the newest snapshot; true when others' changes arrived (reload the project).
    pub fn poll(&mut self) -> bool {
        let mut pulled = false;
        if let Some(rx) = &self.rx {
            while let Ok(mut s) = rx.try_recv() {
                pulled |= s.pulled > 0;
                // An action's outcome stays on screen until the next action's.
                if s.message.is_none() {
                    s.message = self.snapshot.message.take();
                }
                self.snapshot = s;
                self.work.clear();
                for a in &self.snapshot.mine {
                    self.work.entry(a.image.clone()).or_insert(a.state);
                }
            }
        }
        pulled
    }

    fn send(&self, r: TeamRequest) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(r);
        }
    }

    /// Ask for a sync now (after an edit).
    pub fn nudge(&self) {
        self.send(TeamRequest::SyncNow);
    }

    /// The sync state of an image for the image list (none outside team mode).
    pub fn badge(&self, image: &ImageId) -> Option<(String, bool)> {
        if !self.active() {
            return None;
        }
        let sync = self
            .snapshot
            .states
            .get(image)
            .copied()
            .unwrap_or(SyncState::Synced);
        let work = self
            .work
            .get(image)
            .map(|s| format!(" · {}", s.as_str().replace('_', " ")))
            .unwrap_or_default();
        Some((
            format!("{}{work}", sync.title()),
            sync == SyncState::Conflict,
        ))
    }

    /// Why this member may not edit an image now (submitted, in review, accepted), if so.
    pub fn locked(&self, image: &ImageId) -> Option<String> {
        if self.snapshot.role != Some(Role::Annotator) {
            return None;
        }
        let state = *self.work.get(image)?;
        (!state.editable_by_annotator()).then(|| {
            format!(
                "this image is {} and read-only for you until its review ends",
                state.as_str().replace('_', " ")
            )
        })
    }

    /// Give an image to another annotator (leads).
    pub fn reassign(&self, image: ImageId, to: String) {
        self.send(TeamRequest::Reassign { image, to });
    }

    /// Pin a comment at a point of an image.
    pub fn pin(&self, image: ImageId, x: f64, y: f64, text: String) {
        self.send(TeamRequest::Pin { image, x, y, text });
    }

    /// Pinned comments of an image, for the canvas.
    pub fn comments_of(&self, image: &ImageId) -> &[PinnedComment] {
        self.snapshot
            .comments
            .get(image)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// One line for the status bar.
    pub fn status_line(&self) -> Option<String> {
        if !self.active() {
            return None;
        }
        let s = &self.snapshot;
        let conflicts = s.conflicts.len();
        let line = match (&s.error, conflicts, s.unsent) {
            (Some(_), _, n) => format!("team: offline, {n} edit(s) saved locally, retrying"),
            (None, 0, 0) => format!("team: {} · all synced", self.member),
            (None, 0, n) => format!("team: {} · {n} edit(s) to send", self.member),
            (None, c, _) => format!("team: {} · {c} conflict(s) to settle", self.member),
        };
        Some(match (&s.error, &s.connection) {
            (None, Some(how)) => format!("{line} · {how}"),
            _ => line,
        })
    }

    /// The Team window; what its buttons ask of the app goes into `out`.
    pub fn window(&mut self, ctx: &egui::Context, out: &mut Outbox) {
        out.append(&mut self.asks);
        if !self.open {
            return;
        }
        let mut open = self.open;
        egui::Window::new("Team")
            .open(&mut open)
            .default_pos([300.0, 70.0])
            .default_size([560.0, 460.0])
            .show(ctx, |ui| {
                if !self.active() {
                    ui.label("This project is not linked to a team.");
                    ui.label("A lead makes a team project with `thyme-studio team init URL --lead NAME`; each member links a local project file with `thyme-studio team join URL FILE --as NAME` and opens it here.");
                    return;
                }
                ui.horizontal(|ui| {
                    ui.label(format!("{} at {}", self.member, self.url));
                    if ui.button("Sync now").clicked() {
                        self.nudge();
                    }
                });
                if let Some(e) = &self.snapshot.error {
                    ui.colored_label(crate::ui::WARNING, format!("last sync failed: {e}"))
                        .on_hover_text("Your edits are saved in the local project and are sent when the server is back.");
                }
                if let Some(m) = &self.snapshot.message {
                    ui.label(m);
                }
                ui.horizontal(|ui| {
                    ui.selectable_value(&mut self.tab, Tab::MyWork, format!("My work ({})", self.snapshot.mine.len()));
                    ui.selectable_value(&mut self.tab, Tab::Conflicts, format!("Conflicts ({})", self.snapshot.conflicts.len()));
                    if self.snapshot.role.is_some_and(Role::reviews) {
                        ui.selectable_value(&mut self.tab, Tab::Review, format!("Review ({})", self.snapshot.queue.len()));
                        if ui.selectable_value(&mut self.tab, Tab::Dashboard, "Dashboard").clicked() {
                            self.send(TeamRequest::Report);
                        }
                    }
                    if self.snapshot.role == Some(Role::Lead) {
                        ui.selectable_value(&mut self.tab, Tab::Lead, "Lead");
                    }
                });
                ui.separator();
                match self.tab {
                    Tab::MyWork => self.my_work(ui),
                    Tab::Conflicts => self.conflicts(ui),
                    Tab::Review => self.review(ui),
                    Tab::Dashboard => self.dashboard(ui),
                    Tab::Lead => self.lead(ui),
                }
            });
        self.open = open;
    }

    fn my_work(&mut self, ui: &mut egui::Ui) {
        let mut act = None;
        egui::ScrollArea::vertical().show(ui, |ui| {
            egui::Grid::new("my-work").striped(true).show(ui, |ui| {
                ui.strong("image");
                ui.strong("state");
                ui.strong("");
                ui.end_row();
                for a in &self.snapshot.mine {
                    ui.label(a.image.short());
                    let state = a.state.as_str().replace('_', " ");
                    match (&a.reason, a.state) {
                        (Some(reason), WorkState::Rejected) => {
                            let mut why = a.note.clone().unwrap_or_default();
                            if let Some(lines) = self.snapshot.verdicts.get(&a.image) {
                                for l in lines {
                                    why.push('\n');
                                    why.push_str(l);
                                }
                            }
                            ui.colored_label(crate::ui::WARNING, format!("{state}: {reason}"))
                                .on_hover_text(why);
                        }
                        _ => {
                            ui.label(state);
                        }
                    }
                    match a.state {
                        WorkState::Todo | WorkState::InProgress => {
                            if ui.button("Submit").clicked() {
                                act = Some((a.image.clone(), ReviewAction::Submit));
                            }
                        }
                        WorkState::Rejected => {
                            if ui.button("Mark fixed").clicked() {
                                act = Some((a.image.clone(), ReviewAction::Fix));
                            }
                        }
                        _ => {
                            ui.label("");
                        }
                    }
                    ui.end_row();
                }
            });
        });
        if let Some((image, action)) = act {
            self.send(TeamRequest::Act {
                image,
                annotator: self.member.clone(),
                action,
            });
        }
    }

    fn conflicts(&mut self, ui: &mut egui::Ui) {
        if self.snapshot.conflicts.is_empty() {
            ui.label("No conflicts: every edit the server was sent, it took.");
            return;
        }
        let mut resolve = None;
        let mut seen = BTreeSet::new();
        egui::ScrollArea::vertical().show(ui, |ui| {
            for c in &self.snapshot.conflicts {
                ui.group(|ui| {
                    ui.label(format!(
                        "{}: {}",
                        c.image.as_ref().map(ImageId::short).unwrap_or("project"),
                        c.message
                    ));
                    ui.small(format!("your edit: {}", c.command.describe()));
                    let labels = |s: &Option<crate::team::state::ImageState>| {
                        s.as_ref()
                            .map(|s| {
                                let l: Vec<&str> =
                                    s.regions.iter().map(|r| r.label.as_str()).collect();
                                format!("{} box(es): {}", l.len(), l.join(", "))
                            })
                            .unwrap_or_else(|| "not there".into())
                    };
                    ui.small(format!("yours:   {}", labels(&c.mine)));
                    ui.small(format!("server:  {}", labels(&c.theirs)));
                    if let Some(image) = &c.image
                        && seen.insert(image.clone())
                    {
                        ui.horizontal(|ui| {
                            if ui.button("Keep mine").clicked() {
                                resolve = Some((image.clone(), Resolution::KeepMine));
                            }
                            if ui.button("Take theirs").clicked() {
                                resolve = Some((image.clone(), Resolution::TakeTheirs));
                            }
                        });
                    }
                });
            }
        });
        if let Some((image, how)) = resolve {
            self.send(TeamRequest::Resolve(image, how));
        }
    }

    fn review(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.label("Reject reason:");
            egui::ComboBox::from_id_salt("reject-reason")
                .selected_text(REJECT_REASONS[self.reason.min(REJECT_REASONS.len() - 1)])
                .show_ui(ui, |ui| {
                    for (i, r) in REJECT_REASONS.iter().enumerate() {
                        ui.selectable_value(&mut self.reason, i, *r);
                    }
                });
            ui.add(egui::TextEdit::singleline(&mut self.note).hint_text("note for the annotator"));
        });
        ui.horizontal(|ui| {
            ui.add(egui::TextEdit::singleline(&mut self.comment).hint_text("comment to pin"));
            if ui
                .button("Pin on the selected box")
                .on_hover_text("Select a box on the canvas first; the comment goes to its centre.")
                .clicked()
                && !self.comment.trim().is_empty()
            {
                self.asks
                    .push(AppCommand::TeamPin(std::mem::take(&mut self.comment)));
            }
        });
        ui.weak(
            "Verdicts on the image, a box or a question: the Review section of the Annotate panel.",
        );
        let mut act = None;
        egui::ScrollArea::vertical().show(ui, |ui| {
            egui::Grid::new("review-queue")
                .striped(true)
                .show(ui, |ui| {
                    for a in &self.snapshot.queue {
                        let who = a.annotator.clone().unwrap_or_default();
                        ui.label(a.image.short());
                        ui.label(&who);
                        ui.label(a.state.as_str().replace('_', " "));
                        match a.state {
                            WorkState::Submitted | WorkState::Fixed
                                if ui.button("Open review").clicked() =>
                            {
                                act = Some((a.image.clone(), who, ReviewAction::Open));
                            }
                            WorkState::InReview => {
                                if let Some(lines) =
                                    self.snapshot.diffs.get(&(a.image.clone(), who.clone()))
                                    && !lines.is_empty()
                                {
                                    ui.label(format!("{} change(s)", lines.len()))
                                        .on_hover_text(lines.join("\n"));
                                }
                                if ui.button("Accept").clicked() {
                                    act =
                                        Some((a.image.clone(), who.clone(), ReviewAction::Accept));
                                }
                                if ui.button("Reject").clicked() {
                                    act = Some((
                                        a.image.clone(),
                                        who,
                                        ReviewAction::Reject {
                                            reason: REJECT_REASONS
                                                [self.reason.min(REJECT_REASONS.len() - 1)]
                                            .to_owned(),
                                            note: self.note.clone(),
                                        },
                                    ));
                                }
                            }
                            _ => {}
                        }
                        ui.end_row();
                    }
                });
        });
        if let Some((image, annotator, action)) = act {
            self.send(TeamRequest::Act {
                image,
                annotator,
                action,
            });
        }
    }

    fn lead(&mut self, ui: &mut egui::Ui) {
        ui.strong("Progress");
        egui::Grid::new("progress").striped(true).show(ui, |ui| {
            for p in &self.snapshot.progress {
                ui.label(&p.annotator);
                let states: Vec<String> = p
                    .by_state
                    .iter()
                    .map(|(s, n)| format!("{} {n}", s.as_str().replace('_', " ")))
                    .collect();
                ui.label(states.join(", "));
                if p.leases_expired > 0 {
                    ui.colored_label(
                        crate::ui::WARNING,
                        format!("{} lease(s) expired", p.leases_expired),
                    );
                } else {
                    ui.label("");
                }
                ui.end_row();
            }
        });
        if ui.button("Free expired leases").clicked() {
            self.send(TeamRequest::Reclaim);
        }
        ui.separator();
        ui.horizontal(|ui| {
            ui.label("Give the selected image to");
            egui::ComboBox::from_id_salt("reassign-to")
                .selected_text(self.reassign_to.clone())
                .show_ui(ui, |ui| {
                    for m in self
                        .snapshot
                        .members
                        .iter()
                        .filter(|m| m.role == Role::Annotator)
                    {
                        ui.selectable_value(&mut self.reassign_to, m.name.clone(), &m.name);
                    }
                });
            if ui.button("Reassign").clicked() && !self.reassign_to.is_empty() {
                self.asks
                    .push(AppCommand::TeamReassign(self.reassign_to.clone()));
            }
        });
        ui.separator();
        ui.strong("New batch");
        let f = &mut self.batch;
        ui.horizontal(|ui| {
            ui.label("name");
            ui.text_edit_singleline(&mut f.name);
        });
        ui.horizontal(|ui| {
            ui.radio_value(&mut f.pick, 0, "first");
            ui.radio_value(&mut f.pick, 1, "random");
            ui.add_enabled(
                f.pick < 2,
                egui::DragValue::new(&mut f.count).range(1..=100_000),
            );
            ui.radio_value(&mut f.pick, 2, "folder");
            ui.add_enabled(
                f.pick == 2,
                egui::TextEdit::singleline(&mut f.folder).hint_text("/photos/site-a"),
            );
        });
        ui.horizontal_wrapped(|ui| {
            ui.label("to");
            for m in self
                .snapshot
                .members
                .iter()
                .filter(|m| m.role == Role::Annotator)
            {
                let mut on = f.chosen.contains(&m.name);
                if ui.checkbox(&mut on, &m.name).changed() {
                    if on {
                        f.chosen.insert(m.name.clone());
                    } else {
                        f.chosen.remove(&m.name);
                    }
                }
            }
        });
        ui.horizontal(|ui| {
            ui.label("lease hours");
            ui.add(egui::DragValue::new(&mut f.lease_hours).range(0.25..=720.0));
            ui.label("double share");
            ui.add(egui::Slider::new(&mut f.double, 0.0..=1.0));
            ui.label("honeypots each");
            ui.add(egui::DragValue::new(&mut f.honeypots).range(0..=50));
        });
        let ready = !f.chosen.is_empty() && !f.name.trim().is_empty();
        if ui
            .add_enabled(ready, egui::Button::new("Create batch"))
            .clicked()
        {
            let spec = BatchSpec {
                name: f.name.trim().to_owned(),
                selection: match f.pick {
                    0 => Selection::Count(f.count),
                    1 => Selection::Random {
                        count: f.count,
                        seed: now_ms() as u64,
                    },
                    _ => Selection::Folder(f.folder.trim().to_owned()),
                },
                annotators: f.chosen.iter().cloned().collect(),
                lease_ms: (f.lease_hours * 3_600_000.0) as i64,
                double_share: f.double,
                honeypots_per_annotator: f.honeypots,
                seed: now_ms() as u64,
            };
            self.send(TeamRequest::Batch(spec));
        }
    }

    fn dashboard(&mut self, ui: &mut egui::Ui) {
        let Some(report) = &self.snapshot.report else {
            ui.label("Reading the numbers from the server...");
            return;
        };
        ui.horizontal(|ui| {
            let a = |r: &Result<f64, String>| match r {
                Ok(v) => format!("{v:.3}"),
                Err(e) => format!("n/a ({e})"),
            };
            ui.label(format!("alpha (boxes, 1-IoU): {}", a(&report.alpha_boxes)))
                .on_hover_text("Krippendorff's alpha over double-annotated boxes");
            ui.label(format!("alpha (choices): {}", a(&report.alpha_choices)));
        });
        let f1_gold: Vec<Bar> = report
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Bar::new(i as f64 - 0.2, r.gold_boxes.f1().unwrap_or(0.0))
                    .width(0.4)
                    .name(&r.annotator)
            })
            .collect();
        let f1_double: Vec<Bar> = report
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Bar::new(i as f64 + 0.2, r.double_boxes.f1().unwrap_or(0.0))
                    .width(0.4)
                    .name(&r.annotator)
            })
            .collect();
        let names: Vec<String> = report.rows.iter().map(|r| r.annotator.clone()).collect();
        Plot::new("f1-per-annotator")
            .legend(Legend::default().position(egui_plot::Corner::RightTop))
            .include_x(-0.75)
            .include_x(report.rows.len() as f64 - 0.25)
            .height(180.0)
            .include_y(0.0)
            .include_y(1.3)
            .x_axis_formatter(crate::ui::category_axis(names))
            .show(ui, |plot| {
                plot.bar_chart(BarChart::new("box F1 vs gold", f1_gold));
                plot.bar_chart(BarChart::new("box F1 between doubles", f1_double));
            });
        if !report.overall.rejections_by_reason.is_empty() {
            ui.label("Rejections by reason:");
            let total: usize = report.overall.rejections_by_reason.values().sum();
            for (reason, n) in &report.overall.rejections_by_reason {
                ui.add(
                    egui::ProgressBar::new(*n as f32 / total.max(1) as f32)
                        .desired_width(320.0)
                        .text(format!("{reason}: {n}")),
                );
            }
        }
        report_table(ui, report);
        let (mut refresh, mut export) = (false, false);
        ui.horizontal(|ui| {
            refresh = ui.button("Refresh").clicked();
            export = ui.button("Export CSV").clicked();
            if let Some(m) = &self.csv_message {
                ui.label(m);
            }
        });
        if refresh {
            self.send(TeamRequest::Report);
        }
        if export {
            let dir = self
                .project
                .parent()
                .map(Path::to_owned)
                .unwrap_or_else(std::env::temp_dir);
            let path = dir.join(format!("team-report-{}.csv", now_ms()));
            let csv = self
                .snapshot
                .report
                .as_ref()
                .map(TeamReport::to_csv)
                .unwrap_or_default();
            self.csv_message = Some(match std::fs::write(&path, csv) {
                Ok(()) => format!("wrote {}", path.display()),
                Err(e) => format!("could not write {}: {e}", path.display()),
            });
        }
    }
}

/// The quality report as a table: one row per annotator, then everyone.
fn report_table(ui: &mut egui::Ui, report: &TeamReport) {
    egui::Grid::new("report-table")
        .striped(true)
        .show(ui, |ui| {
            for h in [
                "annotator",
                "gold F1",
                "double F1",
                "mean IoU",
                "items/h",
                "s/box",
                "rejected",
            ] {
                ui.strong(h);
            }
            ui.end_row();
            let f = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
            for r in report.rows.iter().chain(std::iter::once(&report.overall)) {
                ui.label(&r.annotator);
                ui.label(f(r.gold_boxes.f1()));
                ui.label(f(r.double_boxes.f1()));
                ui.label(f(r.gold_boxes.mean_iou));
                ui.label(f(r.items_per_hour()));
                ui.label(f(r.seconds_per_box()));
                ui.label(f(r.rejection_rate()));
                ui.end_row();
            }
        });
}
