//! The Statistics window of Inspect: `trace::stats` over the listed runs, computed on another
//! thread (a JSONL is read run by run, never held whole), shown as the totals and a bar chart
//! of accuracy for one grouping at a time; clicking a bar filters the run list to that
//! group's runs, and the groups can be saved as CSV beside the log.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, channel};

use egui_plot::{Bar, BarChart, Plot};

use crate::trace::io::{RunRow, load_row};
use crate::trace::stats::{Accumulator, Dimension, Stats};

/// What the computation reads.
#[derive(Clone)]
pub enum Counted {
    Jsonl(PathBuf),
    Memory(Arc<Vec<crate::trace::Trace>>),
}

/// The statistics and, for every row of the list, the keys it counts under.
pub struct Computed {
    pub stats: Stats,
    pub keys: Vec<Vec<(Dimension, Vec<String>)>>,
}

type Job = (
    Receiver<Result<Computed, String>>,
    Arc<AtomicBool>,
    Arc<AtomicUsize>,
);

pub struct StatsPanel {
    pub open: bool,
    job: Option<Job>,
    pub result: Option<Computed>,
    pub error: Option<String>,
    pub dimension: Dimension,
    /// The group the run list is filtered to.
    pub filter: Option<(Dimension, String)>,
    /// Where the CSV went, or why it did not.
    saved: Option<Result<PathBuf, String>>,
    /// Rows the result was computed from.
    rows_counted: usize,
}

impl Default for StatsPanel {
    fn default() -> Self {
        Self {
            open: false,
            job: None,
            result: None,
            error: None,
            dimension: Dimension::Category,
            filter: None,
            saved: None,
            rows_counted: 0,
        }
    }
}

/// Count every row: the traces in memory, or each row read from the JSONL in turn.
fn count(
    what: &Counted,
    rows: &[RunRow],
    cancel: &AtomicBool,
    done: &AtomicUsize,
) -> Result<Computed, String> {
    let mut acc = Accumulator::default();
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows {
        if cancel.load(Ordering::Relaxed) {
            return Err("stopped".into());
        }
        let trace = match what {
            Counted::Memory(traces) => traces
                .get(row.offset as usize)
                .cloned()
                .ok_or_else(|| format!("run {} is gone", row.id))?,
            Counted::Jsonl(path) => load_row(path, row).map_err(|e| format!("{}: {e}", row.id))?,
        };
        keys.push(acc.add(&trace));
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(Computed {
        stats: acc.finish(),
        keys,
    })
}

impl StatsPanel {
    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    /// Start counting `rows` (a running count is stopped first).
    pub fn start(&mut self, ctx: &egui::Context, what: Counted, rows: Vec<RunRow>) {
        self.stop();
        self.error = None;
        self.saved = None;
        self.rows_counted = rows.len();
        let (tx, rx) = channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let (stop, progress, ctx) = (cancel.clone(), done.clone(), ctx.clone());
        let spawned = std::thread::Builder::new()
            .name("trace-stats".into())
            .spawn(move || {
                let _ = tx.send(count(&what, &rows, &stop, &progress));
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.job = Some((rx, cancel, done)),
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    pub fn stop(&mut self) {
        if let Some((_, cancel, _)) = self.job.take() {
            cancel.store(true, Ordering::Relaxed);
        }
    }

    fn poll(&mut self) {
        let Some((rx, _, _)) = &self.job else {
            return;
        };
        if let Ok(r) = rx.try_recv() {
            match r {
                Ok(c) => self.result = Some(c),
                Err(e) => self.error = Some(e),
            }
            self.job = None;
        }
    }

    /// Does row `index` pass the filter (always, with none)?
    pub fn admits(&self, index: usize) -> bool {
        let Some((dim, key)) = &self.filter else {
            return true;
        };
        self.result
            .as_ref()
            .and_then(|r| r.keys.get(index))
            .is_some_and(|keys| {
                keys.iter()
                    .any(|(d, ks)| d == dim && ks.iter().any(|k| k == key))
            })
    }

    /// A key that changes whenever the filter does, for the run list's cache.
    pub fn filter_key(&self) -> Option<(Dimension, String)> {
        self.filter.clone()
    }

    /// The window; `rows` is how many runs are listed now, `csv_to` where the CSV goes.
    /// Returns whether the person asked for a (new) count.
    pub fn window(&mut self, ctx: &egui::Context, rows: usize, csv_to: Option<PathBuf>) -> bool {
        self.poll();
        let mut open = self.open;
        let mut asked = false;
        // Over the canvas, clear of the run list it filters.
        let area = ctx.content_rect();
        egui::Window::new("Statistics")
            .open(&mut open)
            .default_size([560.0, 460.0])
            .pivot(egui::Align2::CENTER_TOP)
            .default_pos(egui::pos2(area.center().x + 80.0, area.top() + 60.0))
            .show(ctx, |ui| {
                let progress = self
                    .job
                    .as_ref()
                    .map(|(_, _, done)| done.load(Ordering::Relaxed));
                if let Some(done) = progress {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(format!("counting... {done} of {} runs", self.rows_counted));
                        if ui.button("Stop").clicked() {
                            self.stop();
                        }
                    });
                } else if self.result.is_none() || self.rows_counted != rows {
                    asked = ui.button(format!("Count the {rows} listed runs")).clicked();
                }
                if let Some(e) = &self.error {
                    ui.colored_label(ui.visuals().error_fg_color, e);
                }
                self.body(ui, csv_to);
            });
        self.open = open;
        asked
    }

    fn body(&mut self, ui: &mut egui::Ui, csv_to: Option<PathBuf>) {
        // A copy of the numbers (a few hundred groups at most), so the form can change the
        // panel while they are shown.
        let Some(s) = self.result.as_ref().map(|r| r.stats.clone()) else {
            return;
        };
        let s = &s;
        let pct = |v: Option<f64>| v.map_or("-".to_owned(), |a| format!("{:.1}%", a * 100.0));
        ui.label(format!(
            "{} runs: {} correct, {} wrong, {} answered without a ground truth, {} without an answer",
            s.runs, s.overall.correct, s.overall.wrong, s.overall.answered, s.overall.no_answer
        ));
        ui.label(format!(
            "accuracy {} · tool use {} · {} code cells, {} failed · crops {} (p50 {} of the original, zoom p50 {})",
            pct(s.accuracy),
            pct(s.tool_use_rate),
            s.executions,
            s.execution_errors,
            s.crops.crops,
            crate::trace::stats::share_text(s.crops.area_share_p50),
            s.crops.zoom_p50.map_or("-".to_owned(), |z| format!("{z:.1}x")),
        ));
        let t = &s.targets;
        if t.runs_with_targets > 0 {
            ui.label(format!(
                "{} runs with a target box: {} looked at it, {} looked elsewhere, {} never zoomed (crop area over target p50 {})",
                t.runs_with_targets,
                t.looked_at_target,
                t.looked_elsewhere,
                t.never_zoomed,
                t.crop_over_target_p50
                    .map_or("-".to_owned(), |r| format!("{r:.1}x")),
            ));
        }
        ui.horizontal(|ui| {
            let l = ui.label("Accuracy by");
            egui::ComboBox::from_id_salt("stats-dimension")
                .selected_text(self.dimension.name())
                .show_ui(ui, |ui| {
                    for d in Dimension::ALL {
                        ui.selectable_value(&mut self.dimension, d, d.name());
                    }
                })
                .response
                .labelled_by(l.id);
            if let Some(to) = csv_to
                && ui
                    .button("Save CSV")
                    .on_hover_text(format!("{}", to.display()))
                    .clicked()
            {
                self.saved = Some(
                    std::fs::write(&to, s.csv())
                        .map(|()| to.clone())
                        .map_err(|e| format!("{}: {e}", to.display())),
                );
            }
        });
        match &self.saved {
            Some(Ok(p)) => {
                ui.weak(format!("saved {}", p.display()));
            }
            Some(Err(e)) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            None => {}
        }
        self.accuracy_plot(ui, s);
    }

    /// Accuracy per group of the chosen grouping; a click on a bar filters the run list.
    fn accuracy_plot(&mut self, ui: &mut egui::Ui, s: &Stats) {
        let groups: Vec<_> = s
            .groups
            .iter()
            .filter(|g| g.dimension == self.dimension)
            .collect();
        if groups.is_empty() {
            ui.weak("No run counts under this grouping.");
            return;
        }
        let bars: Vec<Bar> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                Bar::new(i as f64, g.accuracy.unwrap_or(0.0) * 100.0)
                    .width(0.7)
                    .name(format!(
                        "{}: {} of {} graded, {} runs",
                        g.key,
                        g.tally.correct,
                        g.tally.correct + g.tally.wrong,
                        g.tally.runs
                    ))
            })
            .collect();
        let names: Vec<String> = groups
            .iter()
            .map(|g| format!("{} ({})", g.key, g.tally.runs))
            .collect();
        let n = groups.len();
        let plot = Plot::new("stats-accuracy")
            .height(240.0)
            .include_x(-0.6)
            .include_x(n as f64 - 0.4)
            .include_y(0.0)
            .include_y(100.0)
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .y_axis_label("accuracy %")
            .x_axis_formatter(crate::ui::category_axis(names))
            .show(ui, |plot| {
                plot.bar_chart(BarChart::new("accuracy", bars));
                plot.pointer_coordinate()
            });
        if plot.response.clicked()
            && let Some(at) = plot.inner
        {
            let i = at.x.round();
            if i >= 0.0 && (i as usize) < n && (at.x - i).abs() <= 0.35 {
                self.filter = Some((self.dimension, groups[i as usize].key.clone()));
            }
        }
        ui.weak("Click a bar to list only its runs.");
    }
}

impl super::Inspect {
    /// The Statistics button, and the filter a clicked bar set, with a way to drop it.
    pub(super) fn stats_section(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if ui
                .button("Statistics...")
                .on_hover_text("Accuracy by category, code cells, tools, flags and crop size")
                .clicked()
            {
                self.stats.open = true;
            }
            if let Some((dim, key)) = &self.stats.filter {
                ui.label(format!("only {}: {key}", dim.name()));
                if ui.small_button("show all").clicked() {
                    self.stats.filter = None;
                }
            }
        });
    }

    pub(super) fn stats_window(&mut self, ctx: &egui::Context) {
        if !self.stats.open {
            return;
        }
        let csv_to = self.path.as_ref().map(|p| {
            if p.is_dir() {
                p.join("stats.csv")
            } else {
                p.with_extension("stats.csv")
            }
        });
        // Opening the window counts at once; a changed list is counted again on request.
        let first = self.stats.result.is_none()
            && !self.stats.busy()
            && self.stats.error.is_none()
            && self.loading.is_none()
            && !self.rows.is_empty();
        if self.stats.window(ctx, self.rows.len(), csv_to) || first {
            let what = match &self.source {
                Some(super::Source::Jsonl(p)) => Some(Counted::Jsonl(p.clone())),
                Some(super::Source::Memory(t)) => Some(Counted::Memory(t.clone())),
                None => None,
            };
            if let Some(what) = what {
                self.stats.filter = None;
                self.stats.start(ctx, what, self.rows.clone());
            }
        }
    }
}
