//! The run as it goes: the transcript (model text, each execution's output and images, the
//! editable next code cell, the answer) and the original image with every crop on it.

use super::*;

impl RunPanel {
    /// The run step by step: model text, each execution's output (images shown), the answer.
    pub(super) fn transcript(&mut self, ui: &mut egui::Ui, out: &mut Outbox) {
        egui::ScrollArea::vertical()
            .id_salt("run-transcript")
            .auto_shrink([false, false])
            .stick_to_bottom(true)
            .show(ui, |ui| {
                // Lent out for the frame instead of copying every step each frame.
                let live = self.live.take();
                let run_dir = self.agent.as_ref().map(|a| a.run_dir().to_owned());
                for (i, step) in live.iter().flat_map(|t| t.steps.iter()).enumerate() {
                    self.transcript_step(ui, i, step, run_dir.as_deref());
                }
                self.live = live;
                if self.job.is_some() {
                    let streamed = self.stream.lock().map(|s| s.clone()).unwrap_or_default();
                    if !streamed.is_empty() {
                        ui.add(
                            egui::Label::new(RichText::new(streamed).monospace().italics()).wrap(),
                        );
                    }
                }
                if let Some(agent) = &self.agent {
                    if matches!(agent.state, State::Execute { .. }) {
                        ui.label("Code to run next (edit it to try something else)");
                        ui.add(
                            egui::TextEdit::multiline(&mut self.code)
                                .code_editor()
                                .desired_width(f32::INFINITY)
                                .desired_rows(6),
                        );
                    }
                    if matches!(agent.state, State::Generate) && self.policy == PolicyKind::Manual
                    {
                        ui.label("Your model text for the next segment (Thyme's format: <think>, <code>, <answer>)");
                        ui.add(
                            egui::TextEdit::multiline(&mut self.manual_text)
                                .code_editor()
                                .desired_width(f32::INFINITY)
                                .desired_rows(4),
                        );
                    }
                }
                egui::CollapsingHeader::new("Events")
                    .id_salt("run-events")
                    .show(ui, |ui| {
                        for line in &self.log {
                            ui.weak(line);
                        }
                    });
                if let Some(t) = &self.finished {
                    ui.separator();
                    let answer = t.steps.iter().rev().find_map(|s| match s {
                        Step::Answer { extracted, .. } => extracted.clone(),
                        _ => None,
                    });
                    ui.strong(format!(
                        "Answer: {} · {} (ground truth {})",
                        answer.as_deref().unwrap_or("-"),
                        t.run.outcome.as_str(),
                        t.run.ground_truth.as_deref().unwrap_or("-")
                    ));
                    if ui.button("Open in Inspect").clicked()
                        && let Some(agent) = &self.agent
                    {
                        out.push(AppCommand::OpenInInspect(agent.run_dir().join("trace")));
                    }
                }
            });
    }

    fn transcript_step(
        &mut self,
        ui: &mut egui::Ui,
        i: usize,
        step: &Step,
        run_dir: Option<&std::path::Path>,
    ) {
        match step {
            Step::Generate {
                text,
                rolled_back,
                sampling,
                ..
            } => {
                if sampling.contains_key("replayed") {
                    ui.weak("replayed from the recorded run");
                }
                if sampling.contains_key("edited_by_a_person") {
                    ui.colored_label(
                        crate::ui::WARNING,
                        "written by you at the fork, in place of the recorded turn",
                    );
                }
                let mut t = RichText::new(text.as_str()).monospace();
                if *rolled_back {
                    t = t.strikethrough().weak();
                }
                ui.add(egui::Label::new(t).wrap());
                if *rolled_back {
                    ui.weak("(rolled back: its code failed and the segment was generated again)");
                }
            }
            Step::Execute {
                stdout,
                error,
                outputs,
                text_result,
                edited_from,
                raw_code,
                ..
            } => {
                let selected = self.selected_step == Some(i);
                if let Some(original) = edited_from {
                    ui.colored_label(
                        crate::ui::WARNING,
                        "you edited this cell: the model continues from your code",
                    );
                    crate::app::inspect::diff_view(
                        ui,
                        "The model's code vs yours",
                        original,
                        raw_code,
                    );
                }
                ui.horizontal(|ui| {
                    let head = format!("sandbox · step {}", i + 1);
                    if ui.selectable_label(selected, head).clicked() {
                        self.selected_step = Some(i);
                        if let Some(r) = outputs.iter().find_map(|o| o.source_rect) {
                            self.canvas.focus(&ImageRect::new(r[0], r[1], r[2], r[3]));
                        }
                    }
                    if let Some(e) = error {
                        ui.colored_label(ui.visuals().error_fg_color, first_line(e));
                    }
                });
                if outputs.is_empty() {
                    let text = text_result.as_deref().unwrap_or(stdout.as_str());
                    if !text.trim().is_empty() {
                        ui.add(egui::Label::new(RichText::new(text).monospace().weak()).wrap());
                    }
                }
                ui.horizontal_wrapped(|ui| {
                    for o in outputs {
                        let Some(path) = &o.image.path else { continue };
                        let path = match run_dir {
                            Some(d) if path.is_relative() => d.join(path),
                            _ => path.clone(),
                        };
                        ui.vertical(|ui| {
                            if self.pictures.show(ui, &path, 220.0) {
                                self.selected_step = Some(i);
                                if let Some(r) = o.source_rect {
                                    self.canvas.focus(&ImageRect::new(r[0], r[1], r[2], r[3]));
                                }
                            }
                            if let Some(r) = o.source_rect {
                                ui.weak(format!(
                                    "from [{:.0}, {:.0}, {:.0}, {:.0}]",
                                    r[0], r[1], r[2], r[3]
                                ));
                            }
                        });
                    }
                });
            }
            Step::Answer { extracted, .. } => {
                ui.strong(format!("answer: {}", extracted.as_deref().unwrap_or("-")));
            }
        }
    }

    /// The original image with every output's rectangle on it; click one to select its step.
    pub(super) fn canvas_view(
        &mut self,
        ui: &mut egui::Ui,
        image: &ImageRecord,
        tiles: &TileService,
    ) {
        if self.canvas.image() != Some(&image.id) {
            tiles.open(&image.id, image.path.clone(), image.size);
            self.canvas.set_image(image.id.clone(), image.size);
        }
        let crops = self.live.as_ref().map(Trace::crops).unwrap_or_default();
        if crops.is_empty() {
            ui.weak("Each image the code makes is drawn here as its rectangle on the original.");
        } else {
            ui.weak(format!(
                "{} output image(s) placed on the original; click one to select its step",
                crops.len()
            ));
        }
        let overlays = crate::app::inspect::crop_overlays(&crops, self.selected_step);
        self.canvas.edit_mode = false;
        self.canvas.arrow_keys_pan = !ui.ctx().text_edit_focused();
        let out = self.canvas.show(ui, tiles, &overlays);
        if let Some(p) = out.clicked {
            let rects: Vec<ImageRect> = overlays.iter().map(|o| o.rect).collect();
            if let Some(i) = hit_smallest(&rects, p) {
                self.selected_step = Some(crops[i].0);
            }
        }
    }
}
