//! The Run workspace's controls: the image and question, the model source (scripted, typed,
//! a chat server, the on-device model with its folder, estimate and loading), and the buttons
//! that start, step, finish and stop a run.

use super::*;

impl RunPanel {
    pub(super) fn controls(
        &mut self,
        ui: &mut egui::Ui,
        image: &ImageRecord,
        questions: &[Question],
        regions: &[Region],
        out: &mut Outbox,
    ) {
        let ctx = ui.ctx().clone();
        let from_file = self.file_image.is_some();
        ui.horizontal(|ui| {
            ui.strong(image.file_name());
            ui.weak(format!("{} x {}", image.size.width, image.size.height));
            if from_file {
                ui.weak("(a file, not in the project)");
                if ui.button("Back to the project's image").clicked() {
                    self.file_image = None;
                    self.fork = None;
                }
            } else if ui.button("Open an image file...").clicked() {
                out.push(AppCommand::Ask(DialogRequest::RunImage));
            }
        });
        if let Some(f) = &mut self.fork {
            let what = if f.at_step >= f.trace.steps.len() {
                format!(
                    "Replay of {}: its model text played back, its code run again",
                    f.trace.run.id
                )
            } else {
                format!(
                    "Fork of {} at step {}: the {} segment(s) before it played back, then the source below writes on",
                    f.trace.run.id,
                    f.at_step + 1,
                    f.segments()
                )
            };
            let mut not_a_fork = false;
            ui.horizontal_wrapped(|ui| {
                ui.colored_label(crate::ui::WARNING, what);
                not_a_fork = ui.button("Not a fork").clicked();
            });
            fork_turn_editor(ui, f);
            if not_a_fork {
                self.fork = None;
            }
        }
        let questions = self.question_picker(ui, questions);
        ui.horizontal_wrapped(|ui| {
            ui.label("Model text");
            ui.radio_value(
                &mut self.policy,
                PolicyKind::Scripted,
                "scripted from the annotation (demo, no weights)",
            );
            ui.radio_value(&mut self.policy, PolicyKind::Manual, "typed by you");
            ui.radio_value(&mut self.policy, PolicyKind::Http, "chat server");
            ui.radio_value(&mut self.policy, PolicyKind::Local, "on-device model");
        });
        if self.policy == PolicyKind::Local {
            self.model_controls(ui, out);
        }
        if self.policy == PolicyKind::Http {
            self.server_controls(ui, out);
        }
        let q = if self.typed {
            None
        } else {
            self.question
                .and_then(|id| questions.iter().find(|q| q.id == id))
                .cloned()
        };
        let can_start = q.is_some() || (self.typed && !self.typed_question.trim().is_empty());
        ui.horizontal(|ui| {
            let idle = self.job.is_none();
            if ui
                .add_enabled(idle && can_start, egui::Button::new("Start run"))
                .clicked()
            {
                self.start(&ctx, image, q.as_ref(), regions);
            }
            let running = self
                .agent
                .as_ref()
                .is_some_and(|a| !matches!(a.state, State::Done { .. }));
            if ui
                .add_enabled(idle && running, egui::Button::new("Step"))
                .clicked()
            {
                self.step(&ctx);
            }
            if ui
                .add_enabled(idle && running, egui::Button::new("Run to the end"))
                .clicked()
            {
                self.to_end = true;
                self.step(&ctx);
            }
            if ui.add_enabled(!idle, egui::Button::new("Stop")).clicked() {
                self.stop();
            }
            if !idle {
                ui.spinner();
                if matches!(self.job, Some(Job::Start(_))) {
                    ui.label("starting the sandbox...");
                }
            }
        });
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        if self.policy == PolicyKind::Scripted && self.agent.is_some() {
            ui.weak("The model text below is scripted from the annotation, not written by a model; the code really runs in the sandbox.");
        }
    }

    /// QA item or typed question; returns the QA items a run may pick from (none for a file).
    fn question_picker<'q>(
        &mut self,
        ui: &mut egui::Ui,
        questions: &'q [Question],
    ) -> &'q [Question] {
        let from_file = self.file_image.is_some();
        // A file has no QA items: its question is typed.
        let questions: &[Question] = if from_file { &[] } else { questions };
        if from_file {
            self.typed = true;
        }
        ui.horizontal(|ui| {
            ui.radio_value(&mut self.typed, false, "QA item");
            ui.radio_value(&mut self.typed, true, "typed question");
        });
        if self.typed {
            ui.add(
                egui::TextEdit::singleline(&mut self.typed_question)
                    .hint_text("What does the small sign say?")
                    .desired_width(f32::INFINITY),
            );
        } else {
            ui.horizontal(|ui| {
                let label = ui.label("Question");
                let current = self
                    .question
                    .and_then(|id| questions.iter().find(|q| q.id == id))
                    .map(|q| q.text.clone())
                    .unwrap_or_else(|| "choose a question".into());
                egui::ComboBox::from_id_salt("run-question")
                    .selected_text(current)
                    .width(ui.available_width().min(480.0))
                    .show_ui(ui, |ui| {
                        for q in questions {
                            ui.selectable_value(&mut self.question, Some(q.id), &q.text);
                        }
                    })
                    .response
                    .labelled_by(label.id);
            });
        }
        questions
    }

    /// The chat server's URL and model name (remembered in the settings when changed).
    fn server_controls(&mut self, ui: &mut egui::Ui, out: &mut Outbox) {
        ui.horizontal(|ui| {
            ui.label("Base URL");
            let a = ui.add(
                egui::TextEdit::singleline(&mut self.server_url)
                    .hint_text("http://127.0.0.1:8000/v1")
                    .desired_width(240.0),
            );
            ui.label("Model");
            let b = ui.add(egui::TextEdit::singleline(&mut self.server_model).desired_width(120.0));
            if a.changed() || b.changed() {
                out.push(AppCommand::RememberChatServer {
                    base_url: self.server_url.clone(),
                    model: self.server_model.clone(),
                });
            }
        });
        ui.weak("vLLM or SGLang serving Thyme-RL; the API key is read from THYME_STUDIO_API_KEY or OPENAI_API_KEY.");
    }

    /// The model folder, what it needs, and loading it.
    fn model_controls(&mut self, ui: &mut egui::Ui, out: &mut Outbox) {
        let ctx = ui.ctx().clone();
        self.poll_load();
        ui.horizontal(|ui| {
            let label = ui.label("Model folder");
            let r = ui
                .add(
                    egui::TextEdit::singleline(&mut self.model_dir)
                        .hint_text("a Qwen2.5-VL / Thyme-RL download")
                        .desired_width(300.0),
                )
                .labelled_by(label.id);
            if r.changed() {
                out.push(AppCommand::RememberModelDir(self.model_dir.clone()));
            }
            if ui.button("Choose...").clicked() {
                out.push(AppCommand::Ask(DialogRequest::ModelFolder));
            }
        });
        if self.model_dir.trim().is_empty() {
            ui.weak("No model yet: download Thyme-RL (or any Qwen2.5-VL) from Hugging Face and choose its folder. `thyme-studio model tiny DIR` writes a tiny random one to try the plumbing.");
            return;
        }
        let summary = self.summary();
        match &summary {
            Ok(s) => {
                ui.weak(s);
            }
            Err(e) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
        }
        ui.horizontal(|ui| {
            let loaded_here = self.loaded_model() == Some(self.model_dir.trim());
            let can_load = summary.is_ok() && self.loading.is_none() && !loaded_here;
            if ui
                .add_enabled(can_load, egui::Button::new("Load model"))
                .clicked()
            {
                self.load_model(&ctx);
            }
            if self.loading.is_some() {
                ui.add(egui::ProgressBar::new(self.load_fraction).desired_width(160.0));
                ui.label(&self.load_status);
            } else if loaded_here {
                ui.label(format!("loaded ({})", self.load_status));
            }
        });
    }
}

/// At a fork on a model step: the person may put their own text in the model's turn there
/// (the recorded text to start from), played as the model's before the source writes on.
fn fork_turn_editor(ui: &mut egui::Ui, f: &mut crate::agent::ForkFrom) {
    let Some(crate::trace::Step::Generate { text, .. }) = f.trace.steps.get(f.at_step) else {
        return;
    };
    let mut mine = f.turn.is_some();
    if ui
        .checkbox(&mut mine, "Write the model's turn here myself")
        .on_hover_text("The recorded turn to start from; your text is played as the model's (marked as edited by a person in the new run), then the source below writes on")
        .changed()
    {
        f.turn = mine.then(|| text.clone());
    }
    if let Some(turn) = &mut f.turn {
        ui.add(
            egui::TextEdit::multiline(turn)
                .id_salt("fork-turn")
                .code_editor()
                .desired_rows(6)
                .desired_width(f32::INFINITY),
        );
    }
}
