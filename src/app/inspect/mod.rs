//! The Inspect workspace: a list of runs (opened from a trace folder, a JSONL of traces, or a
//! foreign agent log), and a run's view: the original image with every crop rectangle
//! (numbered and coloured by step; clicking one selects its step), the step timeline, and the
//! selected step's text, code (highlighted, with the diff from the raw code), output, images
//! and flags.

mod audit;
mod compare;
mod search;
mod stats;
mod steps;

use crate::agent::ForkFrom;
use crate::app::command::{AppCommand, Outbox};
use compare::compare_column;
pub use compare::line_diff;
pub use steps::diff_view;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, channel};

use egui::{Color32, RichText, TextureHandle};

use crate::annotate::hit_smallest;
use crate::dataset::ImageId;
use crate::geometry::{ImageRect, ImageSize};
use crate::imagery::tiles::TileService;
use crate::trace::audit::Verdict;
use crate::trace::io::{RunRow, index_jsonl, load_row, rows_of};
use crate::trace::lint::{Flag, lint};
use crate::trace::readers::{LogFormat, Problem, read};
use crate::trace::{Outcome, Trace};
use crate::ui::canvas::{Canvas, Overlay, OverlayStyle};

/// What the run list was filtered by: text, outcome, rows, audit verdict and its images,
/// statistics group; the list is filtered again when any of it changes.
type ListKey = (
    String,
    Option<Outcome>,
    usize,
    Option<Verdict>,
    usize,
    Option<(crate::trace::stats::Dimension, String)>,
);

/// Where the listed runs come from.
enum Source {
    /// A JSONL of our traces, read lazily by row.
    Jsonl(PathBuf),
    /// Runs read whole (a trace folder or a foreign log).
    Memory(std::sync::Arc<Vec<Trace>>),
}

/// What the background reader sends.
enum Loading {
    Rows(Vec<RunRow>),
    Whole(Vec<Trace>),
    Done(Vec<Problem>),
    Failed(String),
}

pub struct Inspect {
    path: Option<PathBuf>,
    source: Option<Source>,
    rows: Vec<RunRow>,
    loading: Option<Receiver<Loading>>,
    pub problems: Vec<Problem>,
    pub error: Option<String>,
    filter: String,
    outcome: Option<Outcome>,
    /// Indices into `rows` that pass the filter.
    shown: Vec<usize>,
    shown_for: ListKey,
    pub selected_row: Option<usize>,
    pub trace: Option<Trace>,
    pub selected_step: Option<usize>,
    flags: Vec<Flag>,
    pub canvas: Canvas,
    /// A second run shown beside the selected one.
    pub compare: Option<Trace>,
    image: Option<(ImageId, ImageSize)>,
    pictures: super::pictures::Pictures,
    /// The original's pixels under each output's source rectangle, by (step, output).
    regions: HashMap<(usize, usize), Option<TextureHandle>>,
    /// An output image opened large, and its zoom.
    zoomed: Option<(PathBuf, f32)>,
    /// Find in every step.
    pub search: search::SearchPanel,
    /// The crop audit of the listed runs.
    pub audit: audit::AuditPanel,
    /// Statistics over the listed runs, and the group the list is filtered to.
    pub stats: stats::StatsPanel,
    /// The sandbox the audit runs code in and its cache file (the app's own).
    audit_env: (Option<crate::sandbox::SandboxConfig>, Option<PathBuf>),
}

impl Default for Inspect {
    fn default() -> Self {
        Self {
            path: None,
            source: None,
            rows: Vec::new(),
            loading: None,
            problems: Vec::new(),
            error: None,
            filter: String::new(),
            outcome: None,
            shown: Vec::new(),
            shown_for: (String::new(), None, usize::MAX, None, 0, None),
            selected_row: None,
            trace: None,
            selected_step: None,
            flags: Vec::new(),
            canvas: Canvas::new(),
            compare: None,
            image: None,
            pictures: Default::default(),
            regions: HashMap::new(),
            zoomed: None,
            search: Default::default(),
            audit: Default::default(),
            stats: Default::default(),
            audit_env: (None, None),
        }
    }
}

impl Inspect {
    pub fn busy(&self) -> bool {
        self.loading.is_some() || self.search.busy() || self.audit.busy() || self.stats.busy()
    }

    pub fn rows(&self) -> &[RunRow] {
        &self.rows
    }

    /// Inspect with the app's sandbox and cache for the crop audit.
    pub fn with_audit(sandbox: Option<crate::sandbox::SandboxConfig>, cache: PathBuf) -> Self {
        Self {
            audit_env: (sandbox, Some(cache)),
            ..Self::default()
        }
    }

    /// Open a trace folder, a JSONL of traces or a foreign log, in the background.
    pub fn open(&mut self, path: PathBuf, ctx: &egui::Context) {
        let env = std::mem::take(&mut self.audit_env);
        *self = Self::default();
        self.audit_env = env;
        self.path = Some(path.clone());
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("open-trace".into())
            .spawn(move || {
                let format = match LogFormat::detect(&path) {
                    Ok(f) => f,
                    Err(e) => {
                        let _ = tx.send(Loading::Failed(e.to_string()));
                        ctx.request_repaint();
                        return;
                    }
                };
                let jsonl = format == LogFormat::Ours
                    && path.is_file()
                    && path.file_name().is_none_or(|n| n != "trace.json");
                if jsonl {
                    let cancel = AtomicBool::new(false);
                    let result = index_jsonl(
                        &path,
                        &mut |rows| {
                            let _ = tx.send(Loading::Rows(rows));
                            ctx.request_repaint();
                        },
                        &cancel,
                    );
                    let _ = tx.send(match result {
                        Ok(p) => Loading::Done(p),
                        Err(e) => Loading::Failed(e.to_string()),
                    });
                } else {
                    match read(&path, format) {
                        Ok(mut loaded) => {
                            for t in &mut loaded.traces {
                                crate::trace::provenance::fill(t);
                            }
                            let _ = tx.send(Loading::Whole(loaded.traces));
                            let _ = tx.send(Loading::Done(loaded.problems));
                        }
                        Err(e) => {
                            let _ = tx.send(Loading::Failed(e.to_string()));
                        }
                    }
                }
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.loading = Some(rx),
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn poll(&mut self) {
        let Some(rx) = &self.loading else {
            return;
        };
        let mut finished = false;
        while let Ok(msg) = rx.try_recv() {
            match msg {
                Loading::Rows(rows) => {
                    if self.source.is_none() {
                        self.source = self.path.clone().map(Source::Jsonl);
                    }
                    self.rows.extend(rows);
                }
                Loading::Whole(traces) => {
                    self.rows = rows_of(&traces);
                    self.source = Some(Source::Memory(std::sync::Arc::new(traces)));
                }
                Loading::Done(problems) => {
                    self.problems = problems;
                    finished = true;
                }
                Loading::Failed(e) => {
                    self.error = Some(e);
                    finished = true;
                }
            }
        }
        if finished {
            self.loading = None;
            if self.selected_row.is_none() && !self.rows.is_empty() {
                self.select_row(0);
            }
        }
    }

    /// Open a run of the list.
    /// A run of the list, read in full.
    fn load(&self, index: usize) -> Option<Result<Trace, String>> {
        let row = self.rows.get(index)?;
        Some(match self.source.as_ref()? {
            Source::Memory(traces) => traces
                .get(row.offset as usize)
                .cloned()
                .ok_or_else(|| "gone".to_owned()),
            // Our JSONL files carry their provenance (found when they were written); nothing
            // slow runs here, on the UI thread.
            Source::Jsonl(path) => load_row(path, row).map_err(|e| e.to_string()),
        })
    }

    /// Show a run of the list beside the selected one.
    pub fn compare_with(&mut self, index: usize) {
        match self.load(index) {
            Some(Ok(t)) => self.compare = Some(t),
            Some(Err(e)) => self.error = Some(e),
            None => {}
        }
    }

    /// Open a run of the list.
    pub fn select_row(&mut self, index: usize) {
        let Some(trace) = self.load(index) else {
            return;
        };
        match trace {
            Ok(t) => {
                self.selected_row = Some(index);
                self.flags = lint(&t);
                self.selected_step = t.crops().first().map(|(s, _)| *s);
                self.image = None;
                self.regions.clear();
                self.trace = Some(t);
            }
            Err(e) => self.error = Some(e),
        }
    }

    fn refilter(&mut self) {
        let key = (
            self.filter.clone(),
            self.outcome,
            self.rows.len(),
            self.audit.filter,
            self.audit.images.len(),
            self.stats.filter_key(),
        );
        if key == self.shown_for {
            return;
        }
        let needle = self.filter.to_lowercase();
        self.shown = self
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| self.outcome.is_none_or(|o| r.outcome == o))
            .filter(|(_, r)| self.audit.filter.is_none_or(|v| self.audit.has(&r.id, v)))
            .filter(|(i, _)| self.stats.admits(*i))
            .filter(|(_, r)| {
                needle.is_empty()
                    || r.id.to_lowercase().contains(&needle)
                    || r.question.to_lowercase().contains(&needle)
                    || r.summary.flags.iter().any(|f| f.contains(&needle))
                    || r.summary.tools.iter().any(|t| t.contains(&needle))
            })
            .map(|(i, _)| i)
            .collect();
        // Forks right under the run they came from (a tree, however deep), else file order.
        let depth = fork_depths(&self.rows);
        self.shown
            .sort_by_key(|&i| (depth[i].0, depth[i].1.clone(), i));
        self.shown_for = key;
    }

    pub fn show(&mut self, ui: &mut egui::Ui, tiles: &TileService, out: &mut Outbox) {
        self.poll();
        if self.path.is_none() {
            egui::CentralPanel::default().show(ui, |ui| {
                ui.heading("Inspect");
                ui.label("Open an agent trace with File > Open trace...: a thyme-studio trace folder (trace.json) or a JSONL of traces, or a Thyme SFT or RL log, a DeepEyes or PyVision log, or a Mini-o3 traj.jsonl. Or from a shell: thyme-studio inspect PATH.");
            });
            return;
        }
        egui::Panel::left("runs")
            .resizable(true)
            .default_size(340.0)
            .min_size(240.0)
            .show(ui, |ui| self.run_list(ui));
        egui::Panel::right("steps")
            .resizable(true)
            .default_size(460.0)
            .min_size(360.0)
            .show(ui, |ui| self.step_panel(ui, tiles, out));
        egui::CentralPanel::default().show(ui, |ui| self.run_canvas(ui, tiles, out));
        self.compare_window(ui.ctx());
        self.zoom_window(ui.ctx());
        self.stats_window(ui.ctx());
    }

    /// Two runs side by side: settings, outcome and every step.
    fn compare_window(&mut self, ctx: &egui::Context) {
        let (Some(a), Some(b)) = (&self.trace, &self.compare) else {
            return;
        };
        let parting = crate::trace::first_divergence(a, b);
        let mut open = true;
        egui::Window::new("Compare runs")
            .open(&mut open)
            .default_size([900.0, 600.0])
            .show(ctx, |ui| {
                match parting {
                    Some(i) => ui.colored_label(
                        crate::ui::WARNING,
                        format!("The runs part at step {} (marked below); the other run's crops are drawn in orange on the image.", i + 1),
                    ),
                    None => ui.label("The runs take the same steps."),
                };
                egui::ScrollArea::vertical().show(ui, |ui| {
                    ui.columns(2, |cols| {
                        for (ui, t) in cols.iter_mut().zip([a, b]) {
                            compare_column(ui, t, parting);
                        }
                    });
                });
            });
        if !open {
            self.compare = None;
        }
    }

    /// The log's lines that could not be read, or were read only in part.
    fn problems_list(&self, ui: &mut egui::Ui) {
        if self.problems.is_empty() {
            return;
        }
        egui::CollapsingHeader::new(format!(
            "{} line(s) not read, or read only in part",
            self.problems.len()
        ))
        .show(ui, |ui| {
            for p in self.problems.iter().take(100) {
                ui.small(p.to_string());
            }
        });
    }

    /// The list's heading: the log, how many runs (and how many a filter shows), reading.
    fn list_heading(&mut self, ui: &mut egui::Ui) {
        let name = self
            .path
            .as_deref()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.refilter();
        if self.shown.len() == self.rows.len() {
            ui.heading(format!("Runs ({})", self.rows.len()));
        } else {
            ui.heading(format!(
                "Runs ({} of {})",
                self.shown.len(),
                self.rows.len()
            ));
        }
        ui.weak(name);
        if self.loading.is_some() {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("reading... {} runs so far", self.rows.len()));
            });
        }
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
    }

    fn run_list(&mut self, ui: &mut egui::Ui) {
        self.list_heading(ui);
        self.problems_list(ui);
        ui.horizontal(|ui| {
            let l = ui.label("Search");
            ui.add(egui::TextEdit::singleline(&mut self.filter).desired_width(140.0))
                .labelled_by(l.id);
            egui::ComboBox::from_id_salt("outcome-filter")
                .selected_text(self.outcome.map(Outcome::as_str).unwrap_or("any outcome"))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.outcome, None, "any outcome");
                    for o in [
                        Outcome::Correct,
                        Outcome::Wrong,
                        Outcome::Answered,
                        Outcome::NoAnswer,
                    ] {
                        ui.selectable_value(&mut self.outcome, Some(o), o.as_str());
                    }
                });
        });
        self.stats_section(ui);
        self.refilter();
        self.search_section(ui);
        ui.separator();
        self.audit_section(ui);
        ui.separator();
        let row_h = 36.0;
        let mut clicked = None;
        let mut compare = None;
        egui::ScrollArea::vertical()
            .auto_shrink([false, false])
            .show_rows(ui, row_h, self.shown.len(), |ui, range| {
                for i in range {
                    let index = self.shown[i];
                    let r = &self.rows[index];
                    let selected = self.selected_row == Some(index);
                    let color = match r.outcome {
                        Outcome::Correct => Color32::from_rgb(80, 190, 110),
                        Outcome::Wrong => crate::ui::WARNING,
                        _ => ui.visuals().weak_text_color(),
                    };
                    let resp = ui
                        .vertical(|ui| {
                            ui.set_height(row_h - 4.0);
                            ui.horizontal(|ui| {
                                if let Some(f) = &r.summary.forked_from {
                                    ui.weak(format!("↳ fork at step {} ·", f.step + 1));
                                }
                                ui.colored_label(color, r.outcome.as_str());
                                if ui.selectable_label(selected, &r.id).clicked() {
                                    clicked = Some(index);
                                }
                                ui.weak(format!(
                                    "{} steps · {}{}",
                                    r.summary.steps,
                                    r.summary.tools.join(", "),
                                    r.summary
                                        .ms
                                        .map(|m| format!(" · {:.1} s", m / 1000.0))
                                        .unwrap_or_default()
                                ));
                            });
                            let flags = if r.summary.flags.is_empty() {
                                String::new()
                            } else {
                                format!("flags: {}. ", r.summary.flags.join(", "))
                            };
                            ui.add(
                                egui::Label::new(
                                    RichText::new(format!("{flags}{}", r.question)).small(),
                                )
                                .truncate(),
                            );
                        })
                        .response;
                    let resp = resp.interact(egui::Sense::click());
                    if resp.clicked() {
                        clicked = Some(index);
                    }
                    resp.context_menu(|ui| {
                        if ui.button("Compare with the open run").clicked() {
                            compare = Some(index);
                            ui.close();
                        }
                    });
                }
            });
        if let Some(i) = clicked {
            self.select_row(i);
        }
        if let Some(i) = compare {
            self.compare_with(i);
        }
        ui.weak("Right-click a run to compare it with the open one.");
    }

    fn run_canvas(&mut self, ui: &mut egui::Ui, tiles: &TileService, out: &mut Outbox) {
        let Some(trace) = &self.trace else {
            ui.centered_and_justified(|ui| {
                ui.label("Select a run on the left.");
            });
            return;
        };
        ui.horizontal_wrapped(|ui| {
            ui.strong(&trace.run.question);
        });
        if let Some(why) = &trace.run.cut_short {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!("The log stops early: {why}"),
            );
        }
        ui.horizontal(|ui| {
            ui.weak(format!(
                "{} · {} · ground truth: {}",
                trace.run.source_format,
                trace.run.outcome.as_str(),
                trace.run.ground_truth.as_deref().unwrap_or("-")
            ));
            for (k, v) in &trace.run.rewards {
                ui.weak(format!("{k} {v}"));
            }
            if let Some(f) = &trace.run.forked_from {
                ui.weak(format!("fork of {} at step {}", f.run, f.step + 1));
            }
            if ui
                .button("Replay this run")
                .on_hover_text("In the Run workspace: the recorded model text played back step by step, its code run again; you can edit a cell or take over when it ends")
                .clicked()
            {
                out.push(AppCommand::ForkRun(Box::new(ForkFrom {
                    trace: trace.clone(),
                    at_step: trace.steps.len(),
                    turn: None,
                })));
            }
        });
        let Some(original) = trace.run.images.first().and_then(|i| i.path.clone()) else {
            ui.label("This run names no image file to show (images embedded as data are listed per step).");
            return;
        };
        if self.image.is_none() {
            // The tile cache needs an id; a digest of the path, size and time stands in for the
            // content hash, which would read the whole file on the UI thread.
            let stamp = std::fs::metadata(&original)
                .map(|m| {
                    let t = m
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map(|d| d.as_nanos())
                        .unwrap_or(0);
                    format!("{}:{}:{t}", original.display(), m.len())
                })
                .map_err(|e| e.to_string());
            match (
                crate::imagery::probe_file(&original, crate::imagery::PixelBudget::DEFAULT),
                stamp.map(|s| ImageId::of_bytes(s.as_bytes())),
            ) {
                (Ok(probe), Ok(id)) => {
                    tiles.open(&id, original.clone(), probe.size);
                    self.canvas.set_image(id.clone(), probe.size);
                    self.image = Some((id, probe.size));
                }
                (Err(e), _) => {
                    ui.colored_label(ui.visuals().error_fg_color, e.to_string());
                    return;
                }
                (_, Err(e)) => {
                    ui.colored_label(
                        ui.visuals().error_fg_color,
                        format!("{}: {e}", original.display()),
                    );
                    return;
                }
            }
        }
        let crops = trace.crops();
        let mut overlays = crop_overlays(&crops, self.selected_step);
        // Comparing: the other run's crops on the same original, in one colour of their own
        // (after this run's, so a click still picks this run's steps).
        if let Some(other) = &self.compare {
            overlays.extend(other.crops().into_iter().map(|(step, r)| Overlay {
                rect: ImageRect::new(r[0], r[1], r[2], r[3]),
                color: COMPARED,
                label: Some(format!("other run, step {}", step + 1)),
                emphasis: false,
                style: OverlayStyle::Crop,
            }));
        }
        // The audit found the selected step's image somewhere else: drawn where it really is.
        if let Some(step) = self.selected_step
            && let Some(a) = self.audit.of_step(&trace.run.id, step)
            && let Some(r) = a.found_rect
        {
            overlays.push(Overlay {
                rect: ImageRect::new(r[0], r[1], r[2], r[3]),
                color: AUDIT_FOUND,
                label: Some(format!(
                    "step {}: where its stored image really is",
                    step + 1
                )),
                emphasis: false,
                style: OverlayStyle::Crop,
            });
        }
        self.canvas.edit_mode = false;
        self.canvas.arrow_keys_pan = true;
        let out = self.canvas.show(ui, tiles, &overlays);
        if let Some(p) = out.clicked {
            let rects: Vec<ImageRect> = overlays.iter().map(|o| o.rect).collect();
            if let Some(i) = hit_smallest(&rects[..crops.len()], p) {
                self.selected_step = Some(crops[i].0);
            }
        }
    }

    /// The original's pixels under `rect`, from the tile service (asked for until its tiles
    /// are in memory), shown fitted to the column.
    fn region(
        &mut self,
        ui: &mut egui::Ui,
        tiles: &TileService,
        key: (usize, usize),
        rect: [f64; 4],
    ) {
        let Some((id, size)) = self.image.clone() else {
            return;
        };
        let r = ImageRect::new(rect[0], rect[1], rect[2], rect[3]).clamped(size);
        if r.width() * r.height() > 16e6 {
            ui.weak("(over 16 MP: see it on the canvas)");
            return;
        }
        if let std::collections::hash_map::Entry::Vacant(slot) = self.regions.entry(key) {
            match tiles.crop(&id, size, &r.snapped()) {
                Some(pixels) => {
                    let img = image::DynamicImage::ImageRgb8(pixels)
                        .thumbnail(1024, 1024)
                        .into_rgba8();
                    let color = egui::ColorImage::from_rgba_unmultiplied(
                        [img.width() as usize, img.height() as usize],
                        img.as_raw(),
                    );
                    let tex = ui.ctx().load_texture(
                        format!("region-{}-{}", key.0, key.1),
                        color,
                        egui::TextureOptions::LINEAR,
                    );
                    slot.insert(Some(tex));
                }
                None => {
                    ui.spinner();
                    ui.ctx()
                        .request_repaint_after(std::time::Duration::from_millis(100));
                    return;
                }
            }
        }
        if let Some(Some(t)) = self.regions.get(&key) {
            let size = t.size_vec2();
            let scale = ui.available_width() / size.x.max(1.0);
            ui.image((t.id(), size * scale));
        }
    }

    /// The enlarged output image, with a zoom slider; scrolls when larger than the window.
    fn zoom_window(&mut self, ctx: &egui::Context) {
        let Some((path, mut zoom)) = self.zoomed.clone() else {
            return;
        };
        let Some(tex) = self.pictures.loaded(&path) else {
            self.zoomed = None;
            return;
        };
        let mut open = true;
        egui::Window::new("Step image")
            .open(&mut open)
            .default_size([720.0, 560.0])
            .show(ctx, |ui| {
                ui.horizontal(|ui| {
                    ui.add(
                        egui::Slider::new(&mut zoom, 0.25..=8.0)
                            .logarithmic(true)
                            .text("zoom"),
                    );
                    ui.weak(path.display().to_string());
                });
                egui::ScrollArea::both().show(ui, |ui| {
                    ui.image((tex.id(), tex.size_vec2() * zoom));
                });
            });
        self.zoomed = open.then_some((path, zoom));
    }
}

/// The colour of the compared run's crops on the canvas.
const COMPARED: Color32 = Color32::from_rgb(255, 140, 0);
/// Where the audit found a step's stored image when it is not where the code says.
const AUDIT_FOUND: Color32 = Color32::from_rgb(230, 40, 60);

/// A run's crops as dashed rectangles on the original, numbered and coloured by step.
pub fn crop_overlays(crops: &[(usize, [f64; 4])], selected: Option<usize>) -> Vec<Overlay> {
    crops
        .iter()
        .map(|(step, r)| Overlay {
            rect: ImageRect::new(r[0], r[1], r[2], r[3]),
            color: crate::ui::box_color(*step),
            label: Some(format!("step {}", step + 1)),
            emphasis: selected == Some(*step),
            style: OverlayStyle::Crop,
        })
        .collect()
}

/// For each row, where it sorts in a tree of forks: the index of its root run, and the path of
/// indices from the root to it (a run's forks follow it, in file order). A parent that is not
/// in the list, or a loop, ends the climb.
fn fork_depths(rows: &[RunRow]) -> Vec<(usize, Vec<usize>)> {
    let by_id: HashMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    (0..rows.len())
        .map(|i| {
            let mut path = vec![i];
            let mut at = i;
            while let Some(p) = rows[at]
                .summary
                .forked_from
                .as_ref()
                .and_then(|f| by_id.get(f.run.as_str()).copied())
            {
                if path.contains(&p) || path.len() > 64 {
                    break;
                }
                path.push(p);
                at = p;
            }
            path.reverse();
            (path[0], path)
        })
        .collect()
}

#[cfg(test)]
mod tests;
