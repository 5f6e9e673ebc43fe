//! The Run workspace: pick a QA item of the selected image (its ground truth known) or type a
//! question, start a run with a policy (a scripted demo turn written from the annotation, text a
//! person types, or an OpenAI-compatible chat server), then Step, Run to the end or Stop. The
//! transcript grows as the model's text arrives, the pending code cell can be edited before it
//! runs, each output image appears in the transcript and as its rectangle on the original
//! (the canvas beside it), and the finished run opens in Inspect. Every step runs off the UI
//! thread.

mod controls;
mod transcript;

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
    /// The next run is a fork (or replay) of a recorded run.
    pub fork: Option<crate::agent::ForkFrom>,
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
            fork: None,
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
        let Some(policy) = self.make_policy(image, q, regions) else {
            return;
        };
        let forked = self
            .fork
            .as_ref()
            .map(|f| (f.trace.run.id.clone(), f.at_step));
        let policy: Box<dyn Policy> = match &self.fork {
            Some(from) => Box::new(crate::agent::Fork::new(from, policy)),
            None => policy,
        };
        let (question, ground_truth) = match q {
            _ if self.fork.is_some() => (
                self.typed_question.trim().to_owned(),
                self.fork
                    .as_ref()
                    .and_then(|f| f.trace.run.ground_truth.clone()),
            ),
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
                    let mut agent = Agent::new(policy, sandbox, profile, Settings::default(), task);
                    if let Some((run, step)) = &forked {
                        agent.set_forked_from(run, *step);
                    }
                    Ok(agent)
                })();
                let _ = tx.send(result);
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.job = Some(Job::Start(rx)),
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// The model source the person chose, or `None` with the reason in `self.error`.
    fn make_policy(
        &mut self,
        image: &ImageRecord,
        q: Option<&Question>,
        regions: &[Region],
    ) -> Option<Box<dyn Policy>> {
        let policy: Box<dyn Policy> = match self.policy {
            // After a fork's played-back steps a person writes on, unless another source is
            // chosen (a script needs a QA item, which a recorded run does not have).
            PolicyKind::Scripted if self.fork.is_some() => {
                let m = Manual::new();
                self.manual = Some(m.clone());
                Box::new(m)
            }
            PolicyKind::Scripted => {
                let Some(q) = q else {
                    self.error = Some(
                        "a scripted run is written from a QA item's boxes: pick one, or use the manual or chat-server policy"
                            .into(),
                    );
                    return None;
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
                        return None;
                    }
                }
            }
            PolicyKind::Manual => {
                let m = Manual::new();
                self.manual = Some(m.clone());
                Box::new(m)
            }
            PolicyKind::Local => {
                let Some((label, m)) = self.local_model() else {
                    self.error = Some("load a model folder first".into());
                    return None;
                };
                Box::new(Local::new(m, label))
            }
            PolicyKind::Http => {
                let url = self.server_url.trim();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    self.error = Some(
                        "give the chat server's base URL, e.g. http://127.0.0.1:8000/v1".into(),
                    );
                    return None;
                }
                Box::new(Http::new(HttpSettings::new(url, self.server_model.trim())))
            }
        };
        Some(policy)
    }

    /// The loaded on-device model, named by its folder, if one is loaded.
    pub fn local_model(&self) -> Option<(String, Arc<Mutex<LocalModel>>)> {
        self.model.as_ref().map(|(dir, m)| {
            let name = std::path::Path::new(dir)
                .file_name()
                .map_or_else(|| dir.clone(), |n| n.to_string_lossy().into_owned());
            (name, m.clone())
        })
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
