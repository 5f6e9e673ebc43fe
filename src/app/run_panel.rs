//! The Run workspace: pick a QA item of the selected image, start a run with a policy
//! (a scripted demo turn written from the annotation, or text a person types), then Step, Run
//! to the end or Stop. The transcript grows as the model's text arrives, the pending code cell
//! can be edited before it runs, outputs appear with their rectangles on the original, and the
//! finished run opens in Inspect. Every step runs off the UI thread.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};

use egui::RichText;

use crate::agent::{Agent, Event, Manual, Policy, PromptProfile, Replay, Settings, State, Task};
use crate::dataset::{ImageRecord, Question, QuestionId, Region};
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::trace::{Step, Trace};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// A turn written from the annotation (labelled as scripted), really executed.
    Scripted,
    /// A person writes the model's text.
    Manual,
}

/// A background job: starting a run, or one step of it.
enum Job {
    Start(Receiver<Result<Agent, String>>),
    Step(Receiver<(Agent, Event)>),
}

pub struct RunPanel {
    cfg: Option<SandboxConfig>,
    pub question: Option<QuestionId>,
    pub policy: PolicyKind,
    /// The person's next piece of model text (manual policy).
    pub manual_text: String,
    manual: Option<Manual>,
    pub agent: Option<Agent>,
    job: Option<Job>,
    cancel: Arc<AtomicBool>,
    /// Text streamed by the running step.
    stream: Arc<Mutex<String>>,
    pub to_end: bool,
    /// The pending code cell as edited.
    pub code: String,
    pub log: Vec<String>,
    pub finished: Option<Trace>,
    pub error: Option<String>,
    /// A trace written for Inspect to open.
    pub open_in_inspect: Option<PathBuf>,
}

impl RunPanel {
    pub fn new(cfg: Option<SandboxConfig>) -> Self {
        Self {
            cfg,
            question: None,
            policy: PolicyKind::Scripted,
            manual_text: String::new(),
            manual: None,
            agent: None,
            job: None,
            cancel: Arc::new(AtomicBool::new(false)),
            stream: Arc::new(Mutex::new(String::new())),
            to_end: false,
            code: String::new(),
            log: Vec::new(),
            finished: None,
            error: None,
            open_in_inspect: None,
        }
    }

    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    /// Start a run on `image` for question `q` (its linked boxes in `regions`).
    pub fn start(
        &mut self,
        ctx: &egui::Context,
        image: &ImageRecord,
        q: &Question,
        regions: &[Region],
    ) {
        let Some(cfg) = self.cfg.clone() else {
            self.error =
                Some("the sandbox cannot be started (no thyme-studio binary found)".into());
            return;
        };
        let policy: Box<dyn Policy> = match self.policy {
            PolicyKind::Scripted => {
                let boxes: Vec<&Region> = q
                    .regions
                    .iter()
                    .filter_map(|id| regions.iter().find(|r| r.id == *id))
                    .collect();
                match crate::agent::script::demo_turn(q, &boxes, image.size) {
                    Some(turn) => Box::new(Replay::new("scripted from the annotation", turn)),
                    None => {
                        self.error = Some(
                            "this question has no box to script a run from; use the manual policy"
                                .into(),
                        );
                        return;
                    }
                }
            }
            PolicyKind::Manual => {
                let m = Manual::new();
                self.manual = Some(m.clone());
                Box::new(m)
            }
        };
        let task = Task {
            image: image.path.clone(),
            size: image.size,
            question: q.text.clone(),
            ground_truth: Some(q.answer.solution().to_owned()),
        };
        self.reset();
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("run-start".into())
            .spawn(move || {
                let result = (|| {
                    if cfg.runtime.installed().is_none() {
                        cfg.runtime
                            .setup(false, &mut |_| {})
                            .map_err(|e| e.to_string())?;
                    }
                    let sandbox = Sandbox::start(cfg).map_err(|e| e.to_string())?;
                    Ok(Agent::new(
                        policy,
                        sandbox,
                        PromptProfile::default(),
                        Settings::default(),
                        task,
                    ))
                })();
                let _ = tx.send(result);
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.job = Some(Job::Start(rx)),
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn reset(&mut self) {
        if let Some(a) = self.agent.take() {
            drop(a.close());
        }
        self.log.clear();
        self.finished = None;
        self.error = None;
        self.code.clear();
        self.to_end = false;
        self.cancel = Arc::new(AtomicBool::new(false));
        if let Ok(mut s) = self.stream.lock() {
            s.clear();
        }
    }

    /// Run one step in the background.
    pub fn step(&mut self, ctx: &egui::Context) {
        let Some(mut agent) = self.agent.take() else {
            return;
        };
        if matches!(agent.state, State::Execute { .. }) {
            agent.edit_pending_code(&self.code);
        }
        if let (PolicyKind::Manual, Some(m)) = (self.policy, &self.manual) {
            if matches!(agent.state, State::Generate) && !self.manual_text.trim().is_empty() {
                m.push(std::mem::take(&mut self.manual_text));
            }
        }
        let (tx, rx) = channel();
        let (stream, cancel, ctx) = (self.stream.clone(), self.cancel.clone(), ctx.clone());
        if let Ok(mut s) = stream.lock() {
            s.clear();
        }
        let spawned = std::thread::Builder::new()
            .name("run-step".into())
            .spawn(move || {
                let event = agent.step(
                    &mut |t| {
                        if let Ok(mut s) = stream.lock() {
                            s.push_str(t);
                        }
                        ctx.request_repaint();
                    },
                    &cancel,
                );
                let _ = tx.send((agent, event));
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.job = Some(Job::Step(rx)),
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    pub fn stop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.to_end = false;
    }

    fn poll(&mut self, ctx: &egui::Context) {
        match &self.job {
            Some(Job::Start(rx)) => match rx.try_recv() {
                Ok(Ok(agent)) => {
                    self.agent = Some(agent);
                    self.job = None;
                    self.log.push("run started".into());
                }
                Ok(Err(e)) => {
                    self.error = Some(e);
                    self.job = None;
                }
                Err(_) => {}
            },
            Some(Job::Step(rx)) => {
                if let Ok((agent, event)) = rx.try_recv() {
                    self.job = None;
                    self.log.push(describe(&event));
                    if let State::Execute { code } = &agent.state {
                        self.code = code.clone();
                    }
                    let done = matches!(agent.state, State::Done { .. });
                    self.agent = Some(agent);
                    if done {
                        self.to_end = false;
                        self.finish();
                    } else if self.to_end {
                        self.step(ctx);
                    }
                }
            }
            None => {}
        }
    }

    /// The run is over: keep its trace and write it where Inspect can open it.
    fn finish(&mut self) {
        let Some(agent) = self.agent.as_ref() else {
            return;
        };
        let trace = agent.trace();
        let dir = agent.run_dir().join("trace");
        match crate::trace::io::write_folder(&trace, &dir) {
            Ok(()) => self.log.push(format!("trace written to {}", dir.display())),
            Err(e) => self.error = Some(e.to_string()),
        }
        self.finished = Some(trace);
    }

    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        image: Option<&ImageRecord>,
        questions: &[Question],
        regions: &[Region],
    ) {
        let ctx = ui.ctx().clone();
        self.poll(&ctx);
        let Some(image) = image else {
            ui.label("Select an image in Annotate: its questions can be run here.");
            return;
        };
        ui.horizontal(|ui| {
            ui.strong(image.file_name());
            let label = ui.label("Question");
            let current = self
                .question
                .and_then(|id| questions.iter().find(|q| q.id == id))
                .map(|q| q.text.clone())
                .unwrap_or_else(|| "choose a question".into());
            egui::ComboBox::from_id_salt("run-question")
                .selected_text(current)
                .width(420.0)
                .show_ui(ui, |ui| {
                    for q in questions {
                        ui.selectable_value(&mut self.question, Some(q.id), &q.text);
                    }
                })
                .response
                .labelled_by(label.id);
        });
        ui.horizontal(|ui| {
            ui.label("Model text");
            ui.radio_value(
                &mut self.policy,
                PolicyKind::Scripted,
                "scripted from the annotation (demo, no weights)",
            );
            ui.radio_value(&mut self.policy, PolicyKind::Manual, "typed by you");
        });
        let q = self
            .question
            .and_then(|id| questions.iter().find(|q| q.id == id))
            .cloned();
        ui.horizontal(|ui| {
            let idle = self.job.is_none();
            if ui
                .add_enabled(idle && q.is_some(), egui::Button::new("Start run"))
                .clicked()
            {
                if let Some(q) = &q {
                    self.start(&ctx, image, q, regions);
                }
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
                    let text = self.stream.lock().map(|s| s.clone()).unwrap_or_default();
                    ui.label(if text.is_empty() {
                        "starting the sandbox...".to_owned()
                    } else {
                        text
                    });
                }
            }
        });
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        if self.policy == PolicyKind::Scripted && self.agent.is_some() {
            ui.weak("The model text below is scripted from the annotation, not written by a model; the code really runs in the sandbox.");
        }
        ui.separator();
        egui::ScrollArea::vertical().id_salt("run-transcript").auto_shrink([false, false]).show(ui, |ui| {
            if let Some(agent) = &self.agent {
                ui.label("Assistant turn");
                ui.add(egui::Label::new(RichText::new(agent.turn()).monospace()).wrap());
            }
            if self.job.is_some() {
                let streamed = self.stream.lock().map(|s| s.clone()).unwrap_or_default();
                if !streamed.is_empty() {
                    ui.add(egui::Label::new(RichText::new(streamed).monospace().italics()).wrap());
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
                if matches!(agent.state, State::Generate) && self.policy == PolicyKind::Manual {
                    ui.label("Your model text for the next segment (Thyme's format: <think>, <code>, <answer>)");
                    ui.add(
                        egui::TextEdit::multiline(&mut self.manual_text)
                            .code_editor()
                            .desired_width(f32::INFINITY)
                            .desired_rows(4),
                    );
                }
            }
            for line in &self.log {
                ui.weak(line);
            }
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
                for (step, r) in t.crops() {
                    ui.weak(format!(
                        "step {} image from [{:.0}, {:.0}, {:.0}, {:.0}] on the original",
                        step + 1,
                        r[0],
                        r[1],
                        r[2],
                        r[3]
                    ));
                }
                if ui.button("Open in Inspect").clicked() {
                    self.open_in_inspect = self.agent.as_ref().map(|a| a.run_dir().join("trace"));
                }
            }
        });
    }
}

fn describe(e: &Event) -> String {
    match e {
        Event::Generated { stop, .. } => format!(
            "model text (stopped at {})",
            stop.as_deref().unwrap_or("the end")
        ),
        Event::Executed { ok, images } => format!(
            "sandbox: {}, {images} image(s)",
            if *ok { "ran" } else { "error" }
        ),
        Event::RolledBack { retries } => format!("failed code rolled back (retry {retries})"),
        Event::Answered { answer } => format!("answered: {answer}"),
        Event::Finished { why } => format!("finished: {why}"),
    }
}
