//! The Difficulty check window (View > Difficulty check): `curate run` on the open project
//! against the Run panel's model source (its chat server, many tries in flight, or its loaded
//! on-device model, one try at a time with its cache kept), on the items the export's filters
//! keep (accepted only, categories), off the UI thread, with a progress bar (tries, rate,
//! time left) and Cancel. Tries are stored as they end, so a cancelled check resumes when
//! started again; when one ends the project's flags are read again (the Annotate list's
//! filter, the question panel).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use std::collections::BTreeSet;

use crate::agent::{Backoff, Http, HttpSettings, Local, Policy, PromptProfile, Settings};
use crate::curate::{AttemptStore, CheckOutcome, CheckProgress, CheckSettings, Checker};
use crate::exchange::Filter;
use crate::model::generate::LocalModel;
use crate::sandbox::SandboxConfig;
use crate::store::SqliteStore;

/// What the window shows and is doing.
pub struct CurateWindow {
    pub open: bool,
    /// Tries per item and arm.
    pub k: usize,
    temperature: f32,
    jobs: usize,
    /// Only accepted images' items.
    accepted_only: bool,
    /// Only these categories (empty: all).
    categories: BTreeSet<String>,
    running: Option<Running>,
    /// The last check's outcome, in words.
    summary: Option<String>,
}

impl Default for CurateWindow {
    fn default() -> Self {
        Self {
            open: false,
            k: 4,
            temperature: 1.0,
            jobs: 16,
            accepted_only: false,
            categories: BTreeSet::new(),
            running: None,
            summary: None,
        }
    }
}

struct Running {
    cancel: Arc<AtomicBool>,
    progress: Arc<Mutex<CheckProgress>>,
    started: Instant,
    done: Receiver<Result<CheckOutcome, String>>,
}

/// The model a check asks: the Run panel's chat server, or its loaded on-device model.
#[derive(Clone)]
pub enum CheckModel<'a> {
    Server {
        url: &'a str,
        model: &'a str,
    },
    /// The model folder's name and the model.
    Local(String, Arc<Mutex<LocalModel>>),
}

/// Where a check runs and with what.
pub struct CheckTarget<'a> {
    pub project: Option<&'a Path>,
    pub model: CheckModel<'a>,
    pub sandbox: Option<SandboxConfig>,
    /// The project's question categories, to choose from.
    pub categories: Vec<String>,
}

impl CurateWindow {
    /// Show the window; true when a check ended (the project's flags are to be read again).
    pub fn show(&mut self, ctx: &egui::Context, target: CheckTarget<'_>) -> bool {
        let mut ended = false;
        if let Some(r) = &self.running {
            match r.done.try_recv() {
                Ok(result) => {
                    self.summary = Some(match result {
                        Ok(o) => describe(&o),
                        Err(e) => format!("the check could not run: {e}"),
                    });
                    self.running = None;
                    ended = true;
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {
                    ctx.request_repaint_after(std::time::Duration::from_millis(200));
                }
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    self.summary = Some("the check stopped unexpectedly".into());
                    self.running = None;
                    ended = true;
                }
            }
        }
        if !self.open {
            return ended;
        }
        let mut open = self.open;
        egui::Window::new("Difficulty check")
            .open(&mut open)
            .default_width(420.0)
            .show(ctx, |ui| self.body(ui, &target));
        self.open = open;
        ended
    }

    fn body(&mut self, ui: &mut egui::Ui, target: &CheckTarget<'_>) {
        ui.label(
            "Tries every valid QA item k times with tools and k times without, against the \
             Run panel's model source; each try is kept in the project as it ends.",
        );
        let ready_model = match &target.model {
            CheckModel::Server { url, model } if !url.trim().is_empty() => {
                ui.label(format!("Server: {} ({})", url.trim(), model.trim()));
                true
            }
            CheckModel::Server { .. } => {
                ui.colored_label(
                    crate::ui::WARNING,
                    "Set a chat server in the Run panel first (vLLM or SGLang, \
                     http://HOST:PORT/v1), or load a model there.",
                );
                false
            }
            CheckModel::Local(name, _) => {
                ui.label(format!(
                    "On-device model: {name} (one try at a time, its cache kept between tries)"
                ));
                true
            }
        };
        let busy = self.running.is_some();
        ui.add_enabled_ui(!busy, |ui| {
            ui.horizontal(|ui| {
                ui.label("Tries per arm (k)");
                ui.add(egui::DragValue::new(&mut self.k).range(1..=64));
                ui.label("Temperature");
                ui.add(
                    egui::DragValue::new(&mut self.temperature)
                        .range(0.0..=2.0)
                        .speed(0.05),
                );
                if matches!(target.model, CheckModel::Server { .. }) {
                    ui.label("In flight");
                    ui.add(egui::DragValue::new(&mut self.jobs).range(1..=256));
                }
            });
            ui.checkbox(&mut self.accepted_only, "Only images accepted in review");
            ui.horizontal_wrapped(|ui| {
                ui.label("Categories:");
                for c in &target.categories {
                    let mut on = self.categories.contains(c);
                    if ui.checkbox(&mut on, c.as_str()).changed() {
                        if on {
                            self.categories.insert(c.clone());
                        } else {
                            self.categories.remove(c);
                        }
                    }
                }
                if self.categories.is_empty() {
                    ui.weak("(none ticked: all)");
                }
            });
        });
        if let Some(r) = &self.running {
            let p = r.progress.lock().map(|p| *p).unwrap_or_default();
            let todo = p.total.saturating_sub(p.reused).max(1);
            let secs = r.started.elapsed().as_secs_f64();
            let rate = p.made as f64 / secs.max(1e-3);
            let left = (todo.saturating_sub(p.made)) as f64 / rate.max(1e-9);
            ui.add(
                egui::ProgressBar::new(p.made as f32 / todo as f32).text(format!(
                    "{} of {todo} tries, {rate:.1}/s, about {left:.0} s left ({} reused, {} failed)",
                    p.made, p.reused, p.failed
                )),
            );
            if ui.button("Cancel").clicked() {
                r.cancel.store(true, Ordering::Relaxed);
            }
        } else {
            let ready = target.project.is_some() && ready_model && target.sandbox.is_some();
            if ui
                .add_enabled(ready, egui::Button::new("Start the check"))
                .clicked()
                && let (Some(project), Some(sandbox)) = (target.project, target.sandbox.clone())
            {
                self.start(project.to_owned(), target, sandbox);
            }
        }
        if let Some(s) = &self.summary {
            ui.label(s);
        }
    }

    fn start(&mut self, project: PathBuf, target: &CheckTarget<'_>, sandbox: SandboxConfig) {
        let cancel = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Mutex::new(CheckProgress::default()));
        let (tx, rx) = channel();
        let source = match &target.model {
            CheckModel::Server { url, model } => {
                Source::Http(HttpSettings::new(url.trim(), model.trim()))
            }
            CheckModel::Local(name, m) => Source::Local(name.clone(), m.clone()),
        };
        let filter = Filter {
            accepted_only: self.accepted_only,
            categories: self.categories.clone(),
            ..Filter::default()
        };
        let (k, temperature, jobs) = (self.k, self.temperature, self.jobs);
        let (c, p) = (cancel.clone(), progress.clone());
        std::thread::spawn(move || {
            let settings = (k, temperature, jobs);
            let result = check(&project, source, &filter, sandbox, settings, &c, &p);
            let _ = tx.send(result);
        });
        self.summary = None;
        self.running = Some(Running {
            cancel,
            progress,
            started: Instant::now(),
            done: rx,
        });
    }
}

/// What the check's tries ask.
enum Source {
    Http(HttpSettings),
    Local(String, Arc<Mutex<LocalModel>>),
}

/// The check itself, on its own thread.
fn check(
    project: &Path,
    source: Source,
    filter: &Filter,
    sandbox: SandboxConfig,
    (k, temperature, jobs): (usize, f32, usize),
    cancel: &AtomicBool,
    progress: &Mutex<CheckProgress>,
) -> Result<CheckOutcome, String> {
    let profile = PromptProfile::default();
    let store = SqliteStore::open(project).map_err(|e| e.to_string())?;
    let (items, _) = crate::curate::items(&store, filter, &profile).map_err(|e| e.to_string())?;
    drop(store);
    if items.is_empty() {
        return Err("no valid QA item in this project passes the filters".into());
    }
    type Maker = Box<dyn Fn() -> Result<Box<dyn Policy>, String> + Send + Sync>;
    let (make, model, jobs): (Maker, String, usize) = match source {
        Source::Http(http) => {
            let model = http.model.clone();
            let make = move || -> Result<Box<dyn Policy>, String> {
                Ok(Box::new(Http::new(http.clone())))
            };
            (Box::new(make), model, jobs)
        }
        Source::Local(name, m) => {
            let label = name.clone();
            let make = move || -> Result<Box<dyn Policy>, String> {
                Ok(Box::new(Local::sharing_cache(m.clone(), label.clone())))
            };
            (Box::new(make), name, 1)
        }
    };
    let checker = Checker {
        sandbox,
        settings: CheckSettings {
            k,
            temperature,
            seed: 0,
            agent: Settings::default(),
            profile,
            model,
        },
        jobs,
        backoff: Backoff::default(),
        policy: &*make,
    };
    let attempts = Mutex::new(AttemptStore::open(project).map_err(|e| e.to_string())?);
    checker
        .run(&items, &attempts, cancel, &|_, now| {
            if let Ok(mut p) = progress.lock() {
                *p = *now;
            }
        })
        .map_err(|e| e.to_string())
}

fn describe(o: &CheckOutcome) -> String {
    let p = o.progress;
    let mut s = format!(
        "{} tries made ({} failed: the server never answered), {} reused",
        p.made, p.failed, p.reused
    );
    if o.cancelled {
        s.push_str("; cancelled: start again to go on");
    }
    if let Some(e) = &o.store_error {
        s.push_str(&format!("; stopped, a try could not be stored: {e}"));
    }
    s.push_str(". The Annotate list can now show the items by flag.");
    s
}
