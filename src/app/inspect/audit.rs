//! The crop audit in Inspect: every stored step image of the listed runs made again from the
//! original (on other threads, with warm sandbox workers and the audit cache), a progress line
//! with rate and time left, Cancel keeping what is done, the counts by verdict and rule, the
//! worst images first (a click opens the run at its step), and a verdict filter for the run
//! list. The step view draws where a different-region image really came from.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::time::Instant;

use crate::sandbox::SandboxConfig;
use crate::trace::Trace;
use crate::trace::audit::runner::{Auditor, Source};
use crate::trace::audit::{Report, StepAudit, Verdict, worst_first};
use crate::trace::readers::{LogFormat, read};

/// What the audit reads: the open log's file (read whole on the audit's thread), or the runs
/// already in memory.
#[derive(Clone)]
pub enum Audited {
    File(PathBuf),
    Memory(Arc<Vec<Trace>>),
}

enum Msg {
    Total(usize),
    Run(Vec<StepAudit>, usize),
    Done(Result<(), String>),
}

/// The audit's job, its results and the run-list filter it offers.
#[derive(Default)]
pub struct AuditPanel {
    running: Option<(Receiver<Msg>, Arc<AtomicBool>, Instant)>,
    total: usize,
    done: usize,
    pub images: Vec<StepAudit>,
    ended: Option<Result<(), String>>,
    /// Only runs with an image of this verdict in the run list.
    pub filter: Option<Verdict>,
    /// The verdicts of each audited run's images, by run id.
    verdicts_of: HashMap<String, BTreeSet<Verdict>>,
}

impl AuditPanel {
    pub fn busy(&self) -> bool {
        self.running.is_some()
    }

    /// Whether run `id` has an image with verdict `v`.
    pub fn has(&self, id: &str, v: Verdict) -> bool {
        self.verdicts_of.get(id).is_some_and(|s| s.contains(&v))
    }

    /// The audit of `what`'s image at (run, step), when it has one (the worst of its images).
    pub fn of_step(&self, run: &str, step: usize) -> Option<&StepAudit> {
        self.images
            .iter()
            .filter(|a| a.run == run && a.step == step)
            .min_by_key(|a| a.verdict)
    }

    pub fn start(
        &mut self,
        ctx: &egui::Context,
        what: Audited,
        file: String,
        sandbox: Option<SandboxConfig>,
        cache: Option<PathBuf>,
    ) {
        if let Some((_, cancel, _)) = self.running.take() {
            cancel.store(true, Ordering::Relaxed);
        }
        *self = Self {
            filter: self.filter,
            ..Self::default()
        };
        let (tx, rx) = channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = cancel.clone();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("trace-audit".into())
            .spawn(move || {
                let traces: Arc<Vec<Trace>> = match what {
                    Audited::Memory(t) => t,
                    Audited::File(p) => match read(&p, LogFormat::Ours) {
                        Ok(l) => Arc::new(l.traces),
                        Err(e) => {
                            let _ = tx.send(Msg::Done(Err(e.to_string())));
                            ctx.request_repaint();
                            return;
                        }
                    },
                };
                let sources: Vec<Source> = traces
                    .iter()
                    .map(|t| Source {
                        line: t.run.source_line,
                        file: file.clone(),
                        trace: t.clone(),
                    })
                    .collect();
                let _ = tx.send(Msg::Total(sources.len()));
                let jobs =
                    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
                let auditor = Auditor {
                    sandbox,
                    jobs,
                    cache,
                };
                let tx2 = std::sync::Mutex::new(tx.clone());
                auditor.run(&sources, &stop, &|a, n| {
                    if let Ok(t) = tx2.lock() {
                        let _ = t.send(Msg::Run(a.steps.clone(), n));
                    }
                    ctx.request_repaint();
                });
                let _ = tx.send(Msg::Done(Ok(())));
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.running = Some((rx, cancel, Instant::now())),
            Err(e) => self.ended = Some(Err(e.to_string())),
        }
    }

    fn poll(&mut self) {
        let Some((rx, _, _)) = &self.running else {
            return;
        };
        let mut changed = false;
        while let Ok(m) = rx.try_recv() {
            match m {
                Msg::Total(n) => self.total = n,
                Msg::Run(steps, n) => {
                    self.done = n;
                    for s in &steps {
                        self.verdicts_of
                            .entry(s.run.clone())
                            .or_default()
                            .insert(s.verdict);
                    }
                    self.images.extend(steps);
                    changed = true;
                }
                Msg::Done(r) => {
                    self.ended = Some(r);
                    self.running = None;
                    break;
                }
            }
        }
        if changed {
            worst_first(&mut self.images);
        }
    }

    /// The button, progress, counts and the worst images; returns an image clicked (run id,
    /// step) and whether the person asked for an audit.
    pub fn show(&mut self, ui: &mut egui::Ui) -> (Option<(String, usize)>, bool) {
        self.poll();
        let mut asked = false;
        ui.horizontal(|ui| {
            asked = ui
                .add_enabled(self.running.is_none(), egui::Button::new("Audit crops"))
                .on_hover_text("Make every stored step image again from the original (code run again in the sandbox, tool boxes cut by their format's rule) and compare")
                .clicked();
            if let Some((_, cancel, started)) = &self.running {
                ui.spinner();
                let secs = started.elapsed().as_secs_f64().max(1e-3);
                let rate = self.done as f64 / secs;
                let left = self.total.saturating_sub(self.done) as f64 / rate.max(1e-9);
                ui.label(format!(
                    "{}/{} runs · {rate:.1}/s · about {left:.0} s left",
                    self.done, self.total
                ));
                if ui.button("Cancel").clicked() {
                    cancel.store(true, Ordering::Relaxed);
                }
            }
        });
        if let Some(Err(e)) = &self.ended {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        if self.images.is_empty() {
            if matches!(self.ended, Some(Ok(()))) {
                ui.weak("No run stores a step image to audit.");
            }
            return (None, asked);
        }
        let report = Report::of(&self.images, self.done);
        ui.horizontal_wrapped(|ui| {
            for v in Verdict::ALL {
                let n = report.by_verdict.get(&v).copied().unwrap_or(0);
                ui.label(format!("{}: {n}", v.name()));
            }
        });
        if !report.by_rule.is_empty() {
            let rules: BTreeMap<&String, &usize> = report.by_rule.iter().collect();
            ui.weak(format!(
                "explained by: {}",
                rules
                    .iter()
                    .map(|(r, n)| format!("{r} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        ui.horizontal(|ui| {
            ui.label("List only");
            egui::ComboBox::from_id_salt("audit-filter")
                .selected_text(self.filter.map_or("every run", Verdict::name))
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.filter, None, "every run");
                    for v in Verdict::ALL {
                        ui.selectable_value(&mut self.filter, Some(v), v.name());
                    }
                });
        });
        let mut clicked = None;
        let bad: Vec<&StepAudit> = self
            .images
            .iter()
            .filter(|a| a.verdict != Verdict::Reproduced)
            .collect();
        egui::ScrollArea::vertical()
            .id_salt("audit-worst")
            .max_height(160.0)
            .show_rows(ui, 18.0, bad.len(), |ui, range| {
                for a in &bad[range] {
                    let text = format!(
                        "{} · step {} · {}{} · {}",
                        a.run,
                        a.step + 1,
                        a.verdict.name(),
                        if a.rules.is_empty() {
                            String::new()
                        } else {
                            format!(" [{}]", a.rules.join(", "))
                        },
                        a.detail
                    );
                    if ui
                        .add(
                            egui::Label::new(egui::RichText::new(text).small())
                                .truncate()
                                .sense(egui::Sense::click()),
                        )
                        .clicked()
                    {
                        clicked = Some((a.run.clone(), a.step));
                    }
                }
            });
        (clicked, asked)
    }
}

impl super::Inspect {
    /// The crop audit: the button, its progress and results; a click opens the run at its step.
    pub(super) fn audit_section(&mut self, ui: &mut egui::Ui) {
        let (clicked, asked) = self.audit.show(ui);
        if asked {
            let what = match &self.source {
                Some(super::Source::Jsonl(p)) => Some(Audited::File(p.clone())),
                Some(super::Source::Memory(t)) => Some(Audited::Memory(t.clone())),
                None => None,
            };
            if let Some(what) = what {
                let sandbox = self
                    .audit_env
                    .0
                    .clone()
                    .filter(|c| c.runtime.installed().is_some());
                let file = self
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                self.audit
                    .start(ui.ctx(), what, file, sandbox, self.audit_env.1.clone());
            }
        }
        if let Some((run, step)) = clicked
            && let Some(row) = self.rows.iter().position(|r| r.id == run)
        {
            self.select_row(row);
            self.selected_step = Some(step);
        }
    }
}
