//! The selected run's steps: the timeline (one line per step, flagged ones said), and the
//! selected step in full: its text, its code (highlighted, with the diff from the raw code),
//! output and errors, and each image it made beside the original's pixels it came from.

use crate::agent::ForkFrom;
use crate::app::command::{AppCommand, Outbox};
use egui::{Color32, RichText};

use super::Inspect;
use super::compare::{first_line, line_diff};
use crate::imagery::tiles::TileService;
use crate::trace::lint::Flag;
use crate::trace::{Step, StepImage};

impl Inspect {
    pub(super) fn step_panel(&mut self, ui: &mut egui::Ui, tiles: &TileService, out: &mut Outbox) {
        let Some(trace) = &self.trace else {
            return;
        };
        ui.heading(format!("Steps ({})", trace.steps.len()));
        if let Some(i) = self.timeline(ui) {
            self.selected_step = Some(i);
        }
        ui.separator();
        let Some(i) = self.selected_step else {
            ui.weak("Select a step, or click a crop rectangle on the image.");
            return;
        };
        let Some(step) = self.trace.as_ref().and_then(|t| t.steps.get(i).cloned()) else {
            return;
        };
        let flags: Vec<Flag> = self
            .flags
            .iter()
            .filter(|f| f.step == Some(i))
            .cloned()
            .collect();
        egui::ScrollArea::vertical()
            .id_salt("step")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.strong(format!("Step {} · {}", i + 1, step.kind()));
                    if matches!(step, Step::Generate { .. })
                        && let Some(trace) = &self.trace
                        && ui
                            .button("Fork from here")
                            .on_hover_text("A new run in the Run workspace: the steps before this one played back (their code runs again), then the model source you choose writes on; this run stays as it is")
                            .clicked()
                    {
                        out.push(AppCommand::ForkRun(Box::new(ForkFrom {
                            trace: trace.clone(),
                            at_step: i,
                            turn: None,
                        })));
                    }
                });
                for f in &flags {
                    ui.colored_label(crate::ui::WARNING, format!("flag {}: {}", f.name, f.detail));
                }
                if let Some(trace) = &self.trace
                    && let Some(a) = self.audit.of_step(&trace.run.id, i)
                {
                    let color = if a.verdict.disagrees() {
                        ui.visuals().error_fg_color
                    } else {
                        ui.visuals().weak_text_color()
                    };
                    let rules = if a.rules.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", a.rules.join(", "))
                    };
                    ui.colored_label(
                        color,
                        format!("audit: {}{rules}: {}", a.verdict.name(), a.detail),
                    );
                }
                self.step_detail(ui, tiles, i, &step);
            });
    }

    /// One line per step; returns the step clicked.
    fn timeline(&self, ui: &mut egui::Ui) -> Option<usize> {
        let trace = self.trace.as_ref()?;
        let mut pick = None;
        egui::ScrollArea::vertical()
            .id_salt("timeline")
            .auto_shrink([false, true])
            .max_height(200.0)
            .show(ui, |ui| {
                for (i, s) in trace.steps.iter().enumerate() {
                    let flagged = self.flags.iter().any(|f| f.step == Some(i));
                    let what = match s {
                        Step::Generate { text, .. } => first_line(text),
                        Step::Execute { error, outputs, .. } => match error {
                            Some(_) => "failed".to_owned(),
                            None => format!("{} image(s)", outputs.len()),
                        },
                        Step::Answer { extracted, .. } => extracted.clone().unwrap_or_default(),
                    };
                    let label = format!(
                        "{} {}{} {}",
                        i + 1,
                        s.kind(),
                        if flagged { " (flagged)" } else { "" },
                        what
                    );
                    if ui
                        .selectable_label(
                            self.selected_step == Some(i),
                            RichText::new(label).color(crate::ui::box_color(i)),
                        )
                        .clicked()
                    {
                        pick = Some(i);
                    }
                }
            });
        pick
    }

    fn step_detail(&mut self, ui: &mut egui::Ui, tiles: &TileService, i: usize, step: &Step) {
        match step {
            Step::Generate {
                text,
                stop,
                tokens,
                ms,
                rolled_back,
                sampling,
            } => {
                if sampling.contains_key("replayed") {
                    ui.weak("played back from a recorded run (not written by the model now)");
                }
                if sampling.contains_key("edited_by_a_person") {
                    ui.colored_label(
                        crate::ui::WARNING,
                        "written by a person at the fork, in place of the recorded turn",
                    );
                }
                ui.weak(format!(
                    "stop {} · {} tokens · {}{}",
                    stop.as_deref().unwrap_or("-"),
                    tokens.map(|t| t.to_string()).unwrap_or("?".into()),
                    ms.map(|m| format!("{m:.0} ms")).unwrap_or("-".into()),
                    if *rolled_back { " · rolled back" } else { "" }
                ));
                ui.add(egui::Label::new(RichText::new(text).monospace()).wrap());
            }
            Step::Execute { .. } => self.execute_detail(ui, tiles, i, step),
            Step::Answer {
                text,
                extracted,
                matches_ground_truth,
            } => {
                ui.add(egui::Label::new(RichText::new(text).monospace()).wrap());
                ui.label(format!(
                    "answer: {} · {}",
                    extracted.as_deref().unwrap_or("-"),
                    match matches_ground_truth {
                        Some(true) => "matches the ground truth",
                        Some(false) => "does not match the ground truth",
                        None => "no ground truth",
                    }
                ));
            }
        }
    }

    /// An executed step: code and its diff from the raw code, fixes, output, errors, images.
    fn execute_detail(&mut self, ui: &mut egui::Ui, tiles: &TileService, i: usize, step: &Step) {
        let Step::Execute {
            raw_code,
            edited_from,
            executed_code,
            fixes,
            stdout,
            stderr,
            error,
            outputs,
            ms,
            ..
        } = step
        else {
            return;
        };
        let theme = egui_extras::syntax_highlighting::CodeTheme::from_style(ui.style());
        let code = if executed_code.is_empty() {
            raw_code
        } else {
            executed_code
        };
        ui.label("Code");
        egui_extras::syntax_highlighting::code_view_ui(ui, &theme, code, "py");
        if let Some(original) = edited_from {
            ui.colored_label(crate::ui::WARNING, "Edited by a person before it ran");
            diff_view(
                ui,
                "The model's code vs the edited code",
                original,
                raw_code,
            );
        }
        if !executed_code.is_empty() && executed_code.trim() != raw_code.trim() {
            diff_view(ui, "Raw vs executed code", raw_code, executed_code);
        }
        for f in fixes {
            ui.weak(format!("fix ({}): {}", f.kind, f.detail));
        }
        if let Some(m) = ms {
            ui.weak(format!("{m:.0} ms"));
        }
        if let Some(e) = error {
            ui.colored_label(ui.visuals().error_fg_color, RichText::new(e).monospace());
        }
        if !stdout.is_empty() {
            ui.label("Output");
            ui.add(egui::Label::new(RichText::new(stdout).monospace()).wrap());
        }
        if !stderr.is_empty() {
            ui.label("Errors");
            ui.add(egui::Label::new(RichText::new(stderr).monospace()).wrap());
        }
        for (k, o) in outputs.iter().enumerate() {
            self.output_image(ui, tiles, (i, k), o);
        }
    }

    /// An image a step made, beside the original's pixels where it came from.
    fn output_image(
        &mut self,
        ui: &mut egui::Ui,
        tiles: &TileService,
        key: (usize, usize),
        o: &StepImage,
    ) {
        let where_from = match (o.source_rect, o.provenance) {
            (Some(r), Some(p)) => format!(
                "from [{:.0}, {:.0}, {:.0}, {:.0}] on the original ({})",
                r[0],
                r[1],
                r[2],
                r[3],
                p.as_str()
            ),
            (Some(r), None) => format!("from [{:.0}, {:.0}, {:.0}, {:.0}]", r[0], r[1], r[2], r[3]),
            _ => "source unknown".to_owned(),
        };
        ui.weak(where_from);
        ui.columns(2, |cols| {
            if let Some(r) = o.source_rect {
                cols[0].weak("the original there");
                self.region(&mut cols[0], tiles, key, r);
            }
            if !o.image.has_pixels() {
                cols[1].weak("the log kept no pixels of the step's image, only where it came from");
            }
            if let Some(path) = &o.image.path {
                cols[1].weak("the step's image (click to enlarge)");
                let w = cols[1].available_width();
                if self.pictures.show(&mut cols[1], path, w) {
                    self.zoomed = Some((path.to_path_buf(), 1.0));
                }
            }
        });
    }
}

/// A collapsible line diff: removed lines in the warning colour, added ones in green.
pub fn diff_view(ui: &mut egui::Ui, title: &str, before: &str, after: &str) {
    egui::CollapsingHeader::new(title).show(ui, |ui| {
        for line in line_diff(before, after) {
            let color = match line.chars().next() {
                Some('-') => crate::ui::WARNING,
                Some('+') => Color32::from_rgb(80, 190, 110),
                _ => ui.visuals().weak_text_color(),
            };
            ui.colored_label(color, RichText::new(line).monospace());
        }
    });
}
