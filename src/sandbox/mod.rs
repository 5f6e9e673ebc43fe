//! The sandbox: model-written Python run in a real CPython with Pillow, NumPy and OpenCV,
//! keeping Thyme's execution contract (docs/sandbox.md, "Thyme's contract") behind a real
//! boundary.
//!
//! Owns the runtime (`runtime`: a private, hash-pinned virtual environment), the confinement
//! applied to every worker (`confine`: limits, namespaces, Landlock, seccomp, each reported),
//! the worker processes (`worker`: JSON lines on private pipes), the parent-side checks of
//! what a step produced (`outputs`), and [`Sandbox`], one agent run: variables persist from
//! step to step; a fresh worker per run, with a warm spare from [`SandboxPool`].

pub mod confine;
mod outputs;
pub mod runtime;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use confine::{Layer, badge};
pub use runtime::{Installed, Runtime};
pub use worker::Hello;
use worker::{Line, RunDirs, Worker};

#[derive(Debug, Error)]
pub enum SandboxError {
    #[error("sandbox runtime: {0}")]
    Setup(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl SandboxError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SandboxError + '_ {
        move |source| SandboxError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// How sandboxes are made.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub runtime: Runtime,
    /// The `thyme-studio` binary, whose `sandbox-launch` applies the confinement.
    pub launcher: PathBuf,
    /// Where runs keep their folders.
    pub runs: PathBuf,
    /// Wall-clock limit of one step (Thyme: 10 s).
    pub step_timeout: Duration,
    pub cpu_seconds: u64,
    pub memory_bytes: u64,
    pub file_bytes: u64,
    /// Most bytes and files a run's folders may hold.
    pub folder_bytes: u64,
    pub folder_files: u64,
}

impl SandboxConfig {
    /// Defaults, with the runtime and runs under the app's data folder and this process's
    /// own binary as the launcher.
    pub fn new(runtime: Runtime, runs: PathBuf, launcher: PathBuf) -> Self {
        Self {
            runtime,
            launcher,
            runs,
            step_timeout: Duration::from_secs(10),
            cpu_seconds: 600,
            memory_bytes: 8 << 30,
            file_bytes: 512 << 20,
            folder_bytes: 2 << 30,
            folder_files: 5_000,
        }
    }

    /// For the app and CLI: under `dirs`, launched by the running executable.
    pub fn for_app(dirs: &crate::paths::AppDirs) -> Result<Self, SandboxError> {
        let exe = std::env::current_exe().map_err(|e| {
            SandboxError::Setup(format!("cannot find the thyme-studio binary: {e}"))
        })?;
        Ok(Self::new(
            Runtime::at(dirs.sandbox_runtime()),
            dirs.sandbox_runs(),
            exe,
        ))
    }
}

/// One automatic fix made to the step's code or calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    pub kind: String,
    pub detail: String,
}

/// A crop the code made, with the rectangle it shows of the original image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crop {
    pub via: String,
    pub box_px: [f64; 4],
    pub source_rect: [f64; 4],
}

/// An image the step produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputImage {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    /// What part of the original image it shows, when the sandbox could follow it.
    pub source_rect: Option<[f64; 4]>,
}

/// Times of a step, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Inside the worker: fixing, compiling and running the code.
    pub exec_ms: f64,
    /// From the request to the checked result, in the app.
    pub total_ms: f64,
    /// Starting a worker, when this step had to.
    pub spawn_ms: f64,
}

/// What one step did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecResult {
    pub raw_code: String,
    pub executed_code: String,
    pub fixes: Vec<Fix>,
    pub stdout: String,
    pub stderr: String,
    pub images: Vec<OutputImage>,
    /// The printed text, when the step produced no image.
    pub text_result: Option<String>,
    /// Starts with `Sandbox for <run id>:` (Thyme's reward code counts that prefix).
    pub error: Option<String>,
    pub crops: Vec<Crop>,
    pub step_dir: PathBuf,
    pub timings: Timings,
}

/// One agent run: a worker whose variables persist from step to step.
pub struct Sandbox {
    cfg: SandboxConfig,
    pub run_id: String,
    worker: Option<Worker>,
    dirs: RunDirs,
    step: u32,
    /// The input image's copy inside the run, by original path.
    inputs: Vec<(PathBuf, PathBuf)>,
    /// A note for the next result (e.g. the worker had to be restarted).
    pending_note: Option<String>,
}

/// Raw reply from the worker.
#[derive(Debug, Deserialize)]
struct Reply {
    id: String,
    executed_code: String,
    #[serde(default)]
    fixes: Vec<Fix>,
    #[serde(default)]
    stdout: String,
    #[serde(default)]
    stderr: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    images: Vec<ReplyImage>,
    #[serde(default)]
    crops: Vec<ReplyCrop>,
    #[serde(default)]
    ms: f64,
}

#[derive(Debug, Deserialize)]
struct ReplyImage {
    path: PathBuf,
    source_rect: Option<[f64; 4]>,
}

#[derive(Debug, Deserialize)]
struct ReplyCrop {
    via: String,
    #[serde(rename = "box")]
    box_px: [f64; 4],
    source_rect: [f64; 4],
}

/// Start a worker only to learn what protects it (and what it runs), then close it and
/// remove its run folder: what `sandbox doctor` and the app's sandbox panel show.
pub fn probe(cfg: SandboxConfig) -> Result<(Option<Hello>, Vec<Layer>), SandboxError> {
    let sandbox = Sandbox::start(cfg)?;
    let hello = sandbox.hello().cloned();
    let layers = sandbox.layers();
    let dir = sandbox.run_dir().to_owned();
    sandbox.close();
    let _ = std::fs::remove_dir_all(dir);
    Ok((hello, layers))
}

impl Sandbox {
    /// A run with a new worker (a pool hands out warm ones; see [`SandboxPool`]).
    pub fn start(cfg: SandboxConfig) -> Result<Self, SandboxError> {
        let run_id = new_run_id();
        let dirs = RunDirs {
            root: cfg.runs.join(&run_id),
        };
        let worker = Worker::spawn(&cfg, dirs.clone())?;
        Ok(Self::with_worker(cfg, run_id, worker))
    }

    /// A run whose worker starts at its first code cell: a run that answers without code
    /// starts no process (most tries of the difficulty check; the worker's start is the larger
    /// part of a short run's cost).
    pub fn deferred(cfg: SandboxConfig) -> Self {
        let run_id = new_run_id();
        let dirs = RunDirs {
            root: cfg.runs.join(&run_id),
        };
        Self {
            cfg,
            run_id,
            worker: None,
            dirs,
            step: 0,
            inputs: Vec::new(),
            pending_note: None,
        }
    }

    fn with_worker(cfg: SandboxConfig, run_id: String, worker: Worker) -> Self {
        Self {
            cfg,
            run_id,
            dirs: worker.dirs.clone(),
            worker: Some(worker),
            step: 0,
            inputs: Vec::new(),
            pending_note: None,
        }
    }

    /// The run's folder (its steps' outputs are under `steps/`).
    pub fn run_dir(&self) -> &Path {
        &self.dirs.root
    }

    /// What the worker reported when it started (versions, import time).
    pub fn hello(&self) -> Option<&Hello> {
        self.worker.as_ref().map(|w| &w.hello)
    }

    /// The protections the worker runs under.
    pub fn layers(&self) -> Vec<Layer> {
        self.worker
            .as_ref()
            .map(|w| w.layers.clone())
            .unwrap_or_default()
    }

    fn error(&self, text: impl std::fmt::Display) -> String {
        format!("Sandbox for {}: {text}", self.run_id)
    }

    /// The input image as the worker sees it: a copy (hard link where possible) in the
    /// run's read-only `input/` folder.
    fn stage_input(&mut self, image: &Path) -> Result<PathBuf, String> {
        if let Some((_, inside)) = self.inputs.iter().find(|(o, _)| o == image) {
            return Ok(inside.clone());
        }
        let name = image
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        // A deferred run has no folders until its first cell.
        if !self.dirs.input().is_dir() {
            self.dirs.make().map_err(|e| e.to_string())?;
        }
        let inside = self
            .dirs
            .input()
            .join(format!("{}-{name}", self.inputs.len()));
        if std::fs::hard_link(image, &inside).is_err() {
            std::fs::copy(image, &inside).map_err(|e| format!("{}: {e}", image.display()))?;
        }
        self.inputs.push((image.to_owned(), inside.clone()));
        Ok(inside)
    }

    /// Run one step of model code on `image`. Blocks until the step ends, its time is up or
    /// `cancel` is set; never panics, and every failure is an `error` in the result.
    pub fn execute(&mut self, code: &str, image: &Path, cancel: &AtomicBool) -> ExecResult {
        let started = Instant::now();
        self.step += 1;
        let step_dir = self.dirs.steps().join(format!("step-{}", self.step));
        let mut result = ExecResult {
            raw_code: code.to_owned(),
            step_dir: step_dir.clone(),
            ..Default::default()
        };
        if let Err(e) = std::fs::create_dir_all(&step_dir) {
            result.error = Some(self.error(format!("cannot make the step folder: {e}")));
            return result;
        }
        let input = match self.stage_input(image) {
            Ok(p) => p,
            Err(e) => {
                result.error = Some(self.error(format!("cannot read the input image: {e}")));
                return result;
            }
        };
        if self.worker.as_mut().is_none_or(|w| !w.alive()) {
            let t = Instant::now();
            match Worker::spawn(&self.cfg, self.dirs.clone()) {
                Ok(w) => {
                    if self.worker.is_some() || self.step > 1 {
                        self.pending_note = Some(
                            "the worker had stopped and was restarted: variables from earlier steps are gone".into(),
                        );
                    }
                    self.worker = Some(w);
                }
                Err(e) => {
                    result.error = Some(self.error(e));
                    return result;
                }
            }
            result.timings.spawn_ms = t.elapsed().as_secs_f64() * 1000.0;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let request = serde_json::json!({
            "id": id,
            "code": code,
            "image_path": input,
            "step_dir": step_dir,
            "run_id": self.run_id,
            "step": self.step,
            "timeout_s": self.cfg.step_timeout.as_secs_f64(),
        });
        let outcome = self.exchange(&request.to_string(), &id, &step_dir, cancel);
        let note = self.pending_note.take();
        match outcome {
            Ok(reply) => self.finish(reply, &step_dir, &mut result),
            Err(e) => {
                if let Some(w) = self.worker.take() {
                    let (raw, _) = w.take_stderr();
                    result.stderr = raw;
                    drop(w);
                }
                result.error = Some(self.error(e));
            }
        }
        if let Some(n) = note {
            result.fixes.push(Fix {
                kind: "worker_restarted".into(),
                detail: n,
            });
        }
        result.timings.total_ms = started.elapsed().as_secs_f64() * 1000.0;
        result
    }

    /// Send a request and wait for its reply, watching time, cancel and the folder size.
    fn exchange(
        &mut self,
        request: &str,
        id: &str,
        step_dir: &Path,
        cancel: &AtomicBool,
    ) -> Result<Reply, String> {
        let hard = self.cfg.step_timeout + Duration::from_secs(2);
        let (folder_bytes, folder_files) = (self.cfg.folder_bytes, self.cfg.folder_files);
        let watched = [self.dirs.steps(), self.dirs.tmp()];
        let Some(worker) = self.worker.as_mut() else {
            return Err("no worker".into());
        };
        worker.take_stderr();
        worker
            .send(request)
            .map_err(|e| format!("the worker is gone ({e}); it will be restarted"))?;
        let deadline = Instant::now() + hard;
        let mut next_check = Instant::now() + Duration::from_millis(250);
        loop {
            match worker.next_line(Duration::from_millis(50)) {
                Ok(Line::Text(t)) => {
                    let reply: Reply = serde_json::from_str(&t).map_err(|_| {
                        worker.kill();
                        "protocol violation (a reply that is not the worker's); the worker was stopped and will be restarted".to_owned()
                    })?;
                    if reply.id != id {
                        worker.kill();
                        return Err("protocol violation (a reply with a forged id); the worker was stopped and will be restarted".into());
                    }
                    return Ok(reply);
                }
                Ok(Line::TooLong) => {
                    worker.kill();
                    return Err(
                        "protocol violation (an oversized reply); the worker was stopped".into(),
                    );
                }
                Ok(Line::Closed) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    worker.kill();
                    return Err("the worker stopped during the step (crashed or was killed by a limit); it will be restarted".into());
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            if cancel.load(Ordering::Relaxed) {
                worker.kill();
                return Err("the step was cancelled".into());
            }
            let now = Instant::now();
            if now >= deadline {
                worker.kill();
                return Err(format!(
                    "the step ran over {} s and was stopped (its variables are lost)",
                    self.cfg.step_timeout.as_secs_f64()
                ));
            }
            if now >= next_check {
                next_check = now + Duration::from_millis(250);
                let (bytes, files) = outputs::folder_usage(&watched);
                if bytes > folder_bytes || files > folder_files {
                    worker.kill();
                    // The step's files go with it, so the run can go on.
                    let _ = std::fs::remove_dir_all(step_dir);
                    let _ = std::fs::create_dir_all(step_dir);
                    return Err(format!(
                        "the step wrote more than the run may hold ({} MiB or {folder_files} files); it was stopped and its files removed",
                        folder_bytes >> 20
                    ));
                }
            }
        }
    }

    fn finish(&mut self, reply: Reply, step_dir: &Path, result: &mut ExecResult) {
        result.executed_code = reply.executed_code;
        result.fixes = reply.fixes;
        result.stdout = reply.stdout;
        let (raw, truncated) = self
            .worker
            .as_ref()
            .map(|w| w.take_stderr())
            .unwrap_or_default();
        result.stderr = reply.stderr;
        if !raw.is_empty() {
            if !result.stderr.is_empty() {
                result.stderr.push('\n');
            }
            result.stderr.push_str(&raw);
            if truncated {
                result.stderr.push_str(&format!(
                    "\n[raw output truncated at {} bytes]",
                    worker::STREAM_CAP
                ));
            }
        }
        result.crops = reply
            .crops
            .into_iter()
            .map(|c| Crop {
                via: c.via,
                box_px: c.box_px,
                source_rect: c.source_rect,
            })
            .collect();
        result.timings.exec_ms = reply.ms;
        result.error = reply.error;
        for image in reply.images {
            match outputs::check_image(&image.path, step_dir) {
                Ok((width, height)) => result.images.push(OutputImage {
                    path: image.path,
                    width,
                    height,
                    source_rect: image.source_rect,
                }),
                Err(why) => {
                    let e = self.error(why);
                    result.error = Some(match result.error.take() {
                        Some(prev) => format!("{prev}\n{e}"),
                        None => e,
                    });
                }
            }
        }
        if result.images.is_empty() {
            result.text_result = Some(result.stdout.clone());
        }
    }

    /// Start over in the same worker, for another run of work that needs no new run folder
    /// (the crop audit): the variables are cleared and the steps' files removed; a worker
    /// whose modules a step changed says so and is replaced at the next step. Keeps the staged
    /// inputs, so a run on the same original does not copy it again.
    pub fn reset(&mut self) -> Result<(), SandboxError> {
        self.step = 0;
        self.pending_note = None;
        // The folder's contents, not the folder: the worker's confinement holds on to it.
        let steps = self.dirs.steps();
        for entry in std::fs::read_dir(&steps)
            .map_err(SandboxError::io(&steps))?
            .flatten()
        {
            let p = entry.path();
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
        }
        let Some(worker) = self.worker.as_mut() else {
            return Ok(());
        };
        let id = uuid::Uuid::new_v4().to_string();
        let request = serde_json::json!({"cmd": "reset", "id": id});
        let sent = worker.send(&request.to_string());
        let reply = sent.ok().and_then(|_| {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                match worker.next_line(Duration::from_millis(50)) {
                    Ok(Line::Text(t)) => return serde_json::from_str::<Reply>(&t).ok(),
                    Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                }
            }
            None
        });
        match reply {
            Some(r) if r.id == id && r.error.is_none() => Ok(()),
            other => {
                // Tainted, silent or gone: replaced at the next step.
                if let Some(r) = other {
                    tracing::info!("sandbox worker replaced: {}", r.error.unwrap_or_default());
                }
                if let Some(w) = self.worker.take() {
                    w.close();
                }
                Ok(())
            }
        }
    }

    /// End the run: the worker exits (or is killed); the run folder stays.
    pub fn close(mut self) {
        if let Some(w) = self.worker.take() {
            w.close();
        }
    }
}

fn new_run_id() -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("run-{}", &id[id.len() - 12..])
}

/// Hands out sandboxes with a worker already started: one warm spare is kept, and replaced
/// in the background whenever it is taken.
pub struct SandboxPool {
    cfg: SandboxConfig,
    spare: Arc<Mutex<Option<SpareStart>>>,
}

/// A worker being started in the background, with its run id.
type SpareStart = std::thread::JoinHandle<Result<(String, Worker), SandboxError>>;

impl SandboxPool {
    pub fn new(cfg: SandboxConfig) -> Self {
        let pool = Self {
            cfg,
            spare: Arc::new(Mutex::new(None)),
        };
        pool.refill();
        pool
    }

    fn refill(&self) {
        let cfg = self.cfg.clone();
        let handle = std::thread::Builder::new()
            .name("sandbox-spare".into())
            .spawn(move || {
                let run_id = new_run_id();
                let dirs = RunDirs {
                    root: cfg.runs.join(&run_id),
                };
                Worker::spawn(&cfg, dirs).map(|w| (run_id, w))
            });
        match (handle, self.spare.lock()) {
            (Ok(h), Ok(mut g)) => *g = Some(h),
            (Err(e), _) => tracing::warn!("no warm sandbox spare: {e}"),
            (_, Err(_)) => {}
        }
    }

    /// A new run: the warm spare when there is one, else a worker started now.
    pub fn start_run(&self) -> Result<Sandbox, SandboxError> {
        let spare = self.spare.lock().ok().and_then(|mut g| g.take());
        let ready = spare.and_then(|h| h.join().ok()).and_then(Result::ok);
        self.refill();
        match ready {
            Some((run_id, worker)) => Ok(Sandbox::with_worker(self.cfg.clone(), run_id, worker)),
            None => Sandbox::start(self.cfg.clone()),
        }
    }
}

impl Drop for SandboxPool {
    fn drop(&mut self) {
        let spare = self.spare.lock().ok().and_then(|mut g| g.take());
        if let Some(Ok(Ok((_, w)))) = spare.map(|h| h.join()) {
            let root = w.dirs.root.clone();
            w.close();
            let _ = std::fs::remove_dir_all(root);
        }
    }
}
