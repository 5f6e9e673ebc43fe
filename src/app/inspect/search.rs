//! Find in every step: full-text search over the listed runs' questions, reasoning, code,
//! output and answers, with flag, tool and outcome filters. It runs on another thread and its
//! matches stream in while a large file is still being read; clicking one opens its run at the
//! step.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};

use crate::trace::io::RunRow;
use crate::trace::lint::NAMES;
use crate::trace::search::{Hit, Query, search_jsonl, search_traces};
use crate::trace::{Outcome, Trace};

/// What a search reads.
#[derive(Clone)]
pub enum Searched {
    Jsonl(PathBuf),
    Memory(Arc<Vec<Trace>>),
}

enum Msg {
    Hits(Vec<Hit>),
    Done(Result<(), String>),
}

/// The search's form, its running job and its matches.
#[derive(Default)]
pub struct SearchPanel {
    pub text: String,
    pub flag: Option<String>,
    pub tool: Option<String>,
    /// A reward range, NAME=LO..HI (RL logs); empty: any.
    pub reward: String,
    pub hits: Vec<Hit>,
    running: Option<(Receiver<Msg>, Arc<AtomicBool>)>,
    /// The query of the matches shown, and how it ended.
    done: Option<Result<(), String>>,
    /// What the listed runs offer to filter by (their tools, whether any has rewards), found
    /// once per list rather than every frame: (rows it was made from, tools, rewards).
    facets: (usize, Vec<String>, bool),
}

impl SearchPanel {
    pub fn busy(&self) -> bool {
        self.running.is_some()
    }

    /// Start a search (a running one is stopped first).
    pub fn start(
        &mut self,
        ctx: &egui::Context,
        what: Searched,
        rows: Vec<RunRow>,
        outcome: Option<Outcome>,
    ) {
        if let Some((_, cancel)) = self.running.take() {
            cancel.store(true, Ordering::Relaxed);
        }
        self.hits.clear();
        self.done = None;
        let reward = match self.reward.trim() {
            "" => None,
            r => match crate::trace::search::RewardRange::parse(r) {
                Ok(r) => Some(r),
                Err(e) => {
                    self.done = Some(Err(e));
                    return;
                }
            },
        };
        let q = Query {
            text: self.text.clone(),
            flag: self.flag.clone(),
            tool: self.tool.clone(),
            outcome,
            reward,
        };
        let (tx, rx) = channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = cancel.clone();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("trace-search".into())
            .spawn(move || {
                let result = match what {
                    Searched::Jsonl(path) => search_jsonl(&path, &rows, &q, &stop, &mut |h| {
                        let _ = tx.send(Msg::Hits(h));
                        ctx.request_repaint();
                    })
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                    Searched::Memory(traces) => {
                        let _ = tx.send(Msg::Hits(search_traces(&traces, &rows, &q)));
                        Ok(())
                    }
                };
                let _ = tx.send(Msg::Done(result));
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.running = Some((rx, cancel)),
            Err(e) => self.done = Some(Err(e.to_string())),
        }
    }

    fn poll(&mut self) {
        let Some((rx, _)) = &self.running else {
            return;
        };
        while let Ok(m) = rx.try_recv() {
            match m {
                Msg::Hits(h) => self.hits.extend(h),
                Msg::Done(r) => {
                    self.done = Some(r);
                    self.running = None;
                    return;
                }
            }
        }
    }

    /// The form and the matches; returns a match clicked (run row, step) and whether the
    /// person asked for a search.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        rows: &[RunRow],
    ) -> (Option<(usize, Option<usize>)>, bool) {
        self.poll();
        if self.facets.0 != rows.len() {
            let mut tools: Vec<String> = rows
                .iter()
                .flat_map(|r| r.summary.tools.iter().cloned())
                .collect();
            tools.sort();
            tools.dedup();
            let rewards = rows.iter().any(|r| !r.summary.rewards.is_empty());
            self.facets = (rows.len(), tools, rewards);
        }
        let mut asked = false;
        ui.horizontal(|ui| {
            let l = ui.label("Find in every step");
            let r = ui
                .add(egui::TextEdit::singleline(&mut self.text).desired_width(150.0))
                .labelled_by(l.id);
            asked |= r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            asked |= ui.button("Find").clicked();
        });
        ui.horizontal(|ui| {
            pick(
                ui,
                "search-flag",
                "any flag",
                &mut self.flag,
                NAMES.iter().map(|s| s.to_string()),
            );
            pick(
                ui,
                "search-tool",
                "any tool",
                &mut self.tool,
                self.facets.1.iter().cloned(),
            );
            if self.facets.2 {
                let l = ui.label("Reward");
                ui.add(
                    egui::TextEdit::singleline(&mut self.reward)
                        .hint_text("CSTORM=0.5..1")
                        .desired_width(110.0),
                )
                .labelled_by(l.id);
            }
        });
        match (&self.running, &self.done) {
            (Some(_), _) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("{} match(es) so far", self.hits.len()));
                });
            }
            (None, Some(Ok(()))) => {
                ui.label(format!("{} run(s) match", self.hits.len()));
            }
            (None, Some(Err(e))) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            (None, None) => {}
        }
        let mut clicked = None;
        if !self.hits.is_empty() {
            egui::ScrollArea::vertical()
                .id_salt("search-hits")
                .max_height(180.0)
                .show_rows(ui, 18.0, self.hits.len(), |ui, range| {
                    for h in &self.hits[range] {
                        let id = rows.get(h.row).map(|r| r.id.as_str()).unwrap_or("?");
                        let at = h
                            .step
                            .map(|s| format!("step {}", s + 1))
                            .unwrap_or_else(|| "question".into());
                        let text = format!("{id} · {at} ({}): {}", h.field, h.excerpt);
                        if ui
                            .add(
                                egui::Label::new(egui::RichText::new(text).small())
                                    .truncate()
                                    .sense(egui::Sense::click()),
                            )
                            .clicked()
                        {
                            clicked = Some((h.row, h.step));
                        }
                    }
                });
        }
        (clicked, asked)
    }
}

/// A combo of `choices` with a "none" entry.
fn pick(
    ui: &mut egui::Ui,
    id: &str,
    none: &str,
    value: &mut Option<String>,
    choices: impl Iterator<Item = String>,
) {
    egui::ComboBox::from_id_salt(id)
        .selected_text(value.clone().unwrap_or_else(|| none.to_owned()))
        .show_ui(ui, |ui| {
            ui.selectable_value(value, None, none);
            for c in choices {
                ui.selectable_value(value, Some(c.clone()), c);
            }
        });
}

impl super::Inspect {
    /// Find in every step: the form, the matches, a click opens the run at its step.
    pub(super) fn search_section(&mut self, ui: &mut egui::Ui) {
        let (clicked, asked) = self.search.show(ui, &self.rows);
        if asked {
            let what = match &self.source {
                Some(super::Source::Jsonl(p)) => Some(Searched::Jsonl(p.clone())),
                Some(super::Source::Memory(t)) => Some(Searched::Memory(t.clone())),
                None => None,
            };
            if let Some(what) = what {
                self.search
                    .start(ui.ctx(), what, self.rows.clone(), self.outcome);
            }
        }
        if let Some((row, step)) = clicked {
            self.select_row(row);
            if step.is_some() {
                self.selected_step = step;
            }
        }
    }
}
