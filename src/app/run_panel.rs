//! The Run workspace: pick a QA item of the selected image (its ground truth known) or type a
//! question, start a run with a policy (a scripted demo turn written from the annotation, text a
//! person types, or an OpenAI-compatible chat server), then Step, Run to the end or Stop. The
//! transcript grows as the model's text arrives, the pending code cell can be edited before it
//! runs, each output image appears in the transcript and as its rectangle on the original
//! (the canvas beside it), and the finished run opens in Inspect. Every step runs off the UI
//! thread.

use crate::app::command::{AppCommand, Outbox};
use crate::app::dialogs::DialogRequest;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};

use egui::RichText;

use super::pictures::Pictures;
use crate::agent::{
    Agent, Event, Http, HttpSettings, Local, Manual, Policy, PromptProfile, Replay, Settings,
    State, Task,
};
use crate::annotate::hit_smallest;
use crate::dataset::{ImageRecord, Question, QuestionId, Region};
use crate::geometry::ImageRect;
use crate::imagery::tiles::TileService;
use crate::model::generate::LocalModel;
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::trace::{Step, Trace};
use crate::ui::canvas::Canvas;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// A turn written from the annotation (labelled as scripted), really executed.
    Scripted,
    /// A person writes the model's text.
    Manual,
    /// An OpenAI-compatible chat server (vLLM, SGLang) serving the model.
    Http,
    /// The on-device model (candle).
    Local,
}

/// What the model-loading thread says.
enum LoadMsg {
    Event(crate::model::load::LoadEvent),
    Done(Box<Result<LocalModel, String>>),
}

/// A model folder described before loading: its size and what it will need.
struct FolderSummary {
    dir: String,
    text: Result<String, String>,
}

/// A background job: starting a run, or one step of it.
enum Job {
    Start(Receiver<Result<Agent, String>>),
    Step(Receiver<(Agent, Event)>),
}

pub struct RunPanel {
    cfg: Option<SandboxConfig>,
    pub question: Option<QuestionId>,
    /// Ask a typed question (no ground truth) instead of a QA item.
    pub typed: bool,
    pub typed_question: String,
    pub policy: PolicyKind,
    /// The chat server (Http policy): base URL and model name; the API key stays in the
    /// environment (THYME_STUDIO_API_KEY or OPENAI_API_KEY), never in the settings file.
    pub server_url: String,
    pub server_model: String,
    /// The on-device model's folder (Local policy), as typed or picked.
    pub model_dir: String,
    /// An image from a file, run instead of the project's selected image.
    pub file_image: Option<ImageRecord>,
    /// What the model is told (the app's choice: built-in, or a Thyme prompt file).
    pub profile: PromptProfile,
    /// The loaded model and its folder.
    model: Option<(String, Arc<Mutex<LocalModel>>)>,
    loading: Option<Receiver<LoadMsg>>,
    load_status: String,
    load_fraction: f32,
    folder_summary: Option<FolderSummary>,
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
    /// The run as recorded so far (refreshed after each step).
    pub live: Option<Trace>,
    selected_step: Option<usize>,
    canvas: Canvas,
    pictures: Pictures,
}

impl RunPanel {
    pub fn new(cfg: Option<SandboxConfig>) -> Self {
        Self {
            cfg,
            question: None,
            typed: false,
            typed_question: String::new(),
            policy: PolicyKind::Scripted,
            server_url: String::new(),
            server_model: "Thyme-RL".into(),
            model_dir: String::new(),
            file_image: None,
            profile: PromptProfile::default(),
            model: None,
            loading: None,
            load_status: String::new(),
            load_fraction: 0.0,
            folder_summary: None,
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
            live: None,
            selected_step: None,
            canvas: Canvas::new(),
            pictures: Pictures::default(),
        }
    }

    pub fn busy(&self) -> bool {
        self.job.is_some() || self.loading.is_some()
    }

    /// The loaded on-device model, if any.
    pub fn loaded_model(&self) -> Option<&str> {
        self.model.as_ref().map(|(d, _)| d.as_str())
    }

    /// Load the model folder in the background.
    pub fn load_model(&mut self, ctx: &egui::Context) {
        let dir = PathBuf::from(self.model_dir.trim());
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        self.load_status = "starting".into();
        self.load_fraction = 0.0;
        let spawned = std::thread::Builder::new()
            .name("model-load".into())
            .spawn(move || {
                let result = crate::model::load::load_local(
                    &dir,
                    crate::model::device::DevicePreference::Auto,
                    None,
                    &mut |e| {
                        let _ = tx.send(LoadMsg::Event(e));
                        ctx.request_repaint();
                    },
                )
                .map_err(|e| e.to_string());
                let _ = tx.send(LoadMsg::Done(Box::new(result)));
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => {
                self.model = None;
                self.loading = Some(rx);
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn poll_load(&mut self) {
        let Some(rx) = &self.loading else {
            return;
        };
        use crate::model::load::LoadEvent;
        while let Ok(msg) = rx.try_recv() {
            match msg {
                LoadMsg::Event(LoadEvent::Device(m)) => self.load_status = format!("device: {m}"),
                LoadMsg::Event(LoadEvent::Note(n)) => self.load_status = n,
                LoadMsg::Event(LoadEvent::Estimate(b)) => {
                    self.load_status = format!("needs about {}", gib(b))
                }
                LoadMsg::Event(LoadEvent::Progress(p)) => {
                    self.load_status = format!("loading the {} ({}/{})", p.stage, p.done, p.total);
                    let part = p.done as f32 / p.total.max(1) as f32;
                    self.load_fraction = match p.stage {
                        "vision tower" => 0.3 * part,
                        "language model" => 0.3 + 0.7 * part,
                        _ => 1.0,
                    };
                }
                LoadMsg::Done(done) => match *done {
                    Ok(m) => {
                        self.model =
                            Some((self.model_dir.trim().to_owned(), Arc::new(Mutex::new(m))));
                        self.load_status = "loaded".into();
                        self.loading = None;
                        return;
                    }
                    Err(e) => {
                        self.error = Some(format!("the model did not load: {e}"));
                        self.load_status.clear();
                        self.loading = None;
                        return;
                    }
                },
            }
        }
    }

    /// What the folder holds and needs, read from its small files (no weights).
    fn summary(&mut self) -> Result<String, String> {
        let dir = self.model_dir.trim().to_owned();
        if self.folder_summary.as_ref().is_none_or(|s| s.dir != dir) {
            let text = (|| {
                let folder = crate::model::folder::ModelFolder::open(std::path::Path::new(&dir))
                    .map_err(|e| e.to_string())?;
                let c = crate::model::qwen2_5_vl::Config::from_json(&folder.config)
                    .map_err(|e| e.to_string())?;
                let dtype = crate::model::load::saved_dtype(&c);
                let (work, _) =
                    crate::model::device::working_dtype(dtype, &candle_core::Device::Cpu);
                let need = crate::model::qwen2_5_vl::memory_estimate(&c, work, 8192, 1280, None);
                Ok(format!(
                    "{:.2} B parameters, {} of weights; about {} in memory on the CPU ({work:?})",
                    c.parameters() as f64 / 1e9,
                    gib(folder.weight_bytes()),
                    gib(need)
                ))
            })();
            self.folder_summary = Some(FolderSummary { dir, text });
        }
        self.folder_summary
            .as_ref()
            .map_or_else(|| Err(String::new()), |s| s.text.clone())
    }

    /// Start a run on `image` for QA item `q` (its linked boxes in `regions`), or, with no
    /// QA item, for the typed question.
    pub fn start(
        &mut self,
        ctx: &egui::Context,
        image: &ImageRecord,
        q: Option<&Question>,
        regions: &[Region],
    ) {
        let Some(cfg) = self.cfg.clone() else {
            self.error =
                Some("the sandbox cannot be started (no thyme-studio binary found)".into());
            return;
        };
        let policy: Box<dyn Policy> = match self.policy {
            PolicyKind::Scripted => {
                let Some(q) = q else {
                    self.error = Some(
                        "a scripted run is written from a QA item's boxes: pick one, or use the manual or chat-server policy"
                            .into(),
                    );
                    return;
                };
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
            PolicyKind::Local => {
                let Some((dir, m)) = &self.model else {
                    self.error = Some("load a model folder first".into());
                    return;
                };
                let label = std::path::Path::new(dir)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| dir.clone());
                Box::new(Local::new(m.clone(), label))
            }
            PolicyKind::Http => {
                let url = self.server_url.trim();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    self.error = Some(
                        "give the chat server's base URL, e.g. http://127.0.0.1:8000/v1".into(),
                    );
                    return;
                }
                Box::new(Http::new(HttpSettings::new(url, self.server_model.trim())))
            }
        };
        let (question, ground_truth) = match q {
            Some(q) => (q.text.clone(), Some(q.answer.solution().to_owned())),
            None if !self.typed_question.trim().is_empty() => {
                (self.typed_question.trim().to_owned(), None)
            }
            None => {
                self.error = Some("pick a QA item or type a question".into());
                return;
            }
        };
        let task = Task {
            image: image.path.clone(),
            size: image.size,
            question,
            ground_truth,
        };
        self.reset();
        let profile = self.profile.clone();
        let (tx, rx) = channel();
        let ctx = ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("run-start".into())
            .spawn(move || {
                let result = (|| {
                    cfg.runtime.ensure(&mut |_| {}).map_err(|e| e.to_string())?;
                    let sandbox = Sandbox::start(cfg).map_err(|e| e.to_string())?;
                    Ok(Agent::new(
                        policy,
                        sandbox,
                        profile,
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
        self.live = None;
        self.selected_step = None;
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
        if let (PolicyKind::Manual, Some(m)) = (self.policy, &self.manual)
            && matches!(agent.state, State::Generate)
            && !self.manual_text.trim().is_empty()
        {
            m.push(std::mem::take(&mut self.manual_text));
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
        self.poll_load();
        match &self.job {
            Some(Job::Start(rx)) => match rx.try_recv() {
                Ok(Ok(agent)) => {
                    self.live = Some(agent.trace());
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
                    self.live = Some(agent.trace());
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
        tiles: &TileService,
        out: &mut Outbox,
    ) {
        let ctx = ui.ctx().clone();
        self.poll(&ctx);
        let from_file = self.file_image.clone();
        let image = from_file.as_ref().or(image);
        let Some(image) = image else {
            egui::CentralPanel::default().show(ui, |ui| {
                ui.heading("Run");
                ui.label("Select an image in Annotate: its questions can be run here.");
            });
            return;
        };
        egui::Panel::left("run-transcript")
            .resizable(true)
            .default_size(620.0)
            .min_size(420.0)
            .show(ui, |ui| {
                ui.heading("Run");
                self.controls(ui, image, questions, regions, out);
                ui.separator();
                self.transcript(ui, out);
            });
        egui::CentralPanel::default().show(ui, |ui| self.canvas_view(ui, image, tiles));
    }

    fn controls(
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
                }
            } else if ui.button("Open an image file...").clicked() {
                out.push(AppCommand::Ask(DialogRequest::RunImage));
            }
        });
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
            ui.horizontal(|ui| {
                ui.label("Base URL");
                let a = ui.add(
                    egui::TextEdit::singleline(&mut self.server_url)
                        .hint_text("http://127.0.0.1:8000/v1")
                        .desired_width(240.0),
                );
                ui.label("Model");
                let b =
                    ui.add(egui::TextEdit::singleline(&mut self.server_model).desired_width(120.0));
                if a.changed() || b.changed() {
                    out.push(AppCommand::RememberChatServer {
                        base_url: self.server_url.clone(),
                        model: self.server_model.clone(),
                    });
                }
            });
            ui.weak("vLLM or SGLang serving Thyme-RL; the API key is read from THYME_STUDIO_API_KEY or OPENAI_API_KEY.");
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

    /// The run step by step: model text, each execution's output (images shown), the answer.
    fn transcript(&mut self, ui: &mut egui::Ui, out: &mut Outbox) {
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
                text, rolled_back, ..
            } => {
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
                ..
            } => {
                let selected = self.selected_step == Some(i);
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
    fn canvas_view(&mut self, ui: &mut egui::Ui, image: &ImageRecord, tiles: &TileService) {
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
        let overlays = super::inspect::crop_overlays(&crops, self.selected_step);
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

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    line.chars().take(160).collect()
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
