//! The eframe app: the workspaces, the windows, background jobs, and the glue between them.
//!
//! Owns the UI's state and nothing else. The open project is one [`session::ProjectSession`]
//! (every edit goes through it to the store); each workspace owns its state (`annotate`,
//! `inspect`, `run_panel`); panels and windows ask for anything beyond their own state with
//! [`command::AppCommand`]s, carried out once the frame is drawn. Every job (import,
//! thumbnails, the first-run demo, file dialogs, the team sync) runs on another thread and
//! reports through a channel, so the UI thread never waits on disk or compute.

pub mod annotate;
pub mod assist_job;
pub mod autosave;
pub mod cache_window;
pub mod command;
pub mod curate_window;
pub mod dialogs;
pub mod editor;
pub mod exchange_window;
pub mod first_run;
pub mod import_job;
pub mod inspect;
mod jobs;
pub mod keymap;
mod menu;
pub mod model_eye_view;
pub mod pictures;
pub mod project;
pub mod run_panel;
pub mod sandbox_panel;
pub mod session;
pub mod settings;
pub mod team_panel;
pub mod thumbnails;
mod windows;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};

use crate::dataset::ImageId;
use crate::imagery::PixelBudget;
use crate::imagery::tiles::TileService;
use crate::import::{ImportOptions, ImportReport};
use crate::paths::AppDirs;
use crate::store::SqliteStore;
use dialogs::{DialogRequest, Dialogs, NativeDialogs};
use import_job::ImportJob;
use settings::Settings;
use thumbnails::{Kind, Picture, Thumbnailer};

/// RAM for decoded tiles (the GPU side is bounded separately by the canvas).
const TILE_RAM_BUDGET: usize = 768 << 20;

/// The three workspaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workspace {
    Annotate,
    Inspect,
    Run,
}

impl Workspace {
    pub const ALL: [Workspace; 3] = [Workspace::Annotate, Workspace::Inspect, Workspace::Run];

    pub fn title(self) -> &'static str {
        match self {
            Workspace::Annotate => "Annotate",
            Workspace::Inspect => "Inspect",
            Workspace::Run => "Run",
        }
    }
}

/// How the app starts.
pub struct AppConfig {
    /// The project to open; `None` opens (and on first run creates) the demo project.
    pub project: Option<PathBuf>,
    pub dirs: AppDirs,
    pub dialogs: Arc<dyn Dialogs>,
    pub budget: PixelBudget,
    /// Size divisor of the demo scenes when the demo has to be created (1 = full size).
    pub demo_scale: u32,
    /// A trace to open in the Inspect workspace at start.
    pub trace: Option<PathBuf>,
    /// The thyme-studio binary that launches sandbox workers (default: this executable).
    pub launcher: Option<PathBuf>,
}

impl AppConfig {
    pub fn for_user(project: Option<PathBuf>) -> Self {
        Self {
            project,
            dirs: AppDirs::for_user(),
            dialogs: Arc::new(NativeDialogs),
            budget: PixelBudget::DEFAULT,
            demo_scale: 1,
            trace: None,
            launcher: None,
        }
    }
}

/// A message for the person, shown until dismissed.
#[derive(Debug, Clone)]
pub struct Notice {
    pub text: String,
    pub is_error: bool,
}

/// The whole app's UI state: the open project's session, one state per workspace, the
/// windows, and the background jobs that report back.
pub struct StudioApp {
    config: AppConfig,
    settings: Settings,
    /// The open project, the selected image and its detail: where every edit goes.
    pub session: session::ProjectSession,
    pub workspace: Workspace,
    pub annotate: annotate::AnnotateWorkspace,
    pub inspect: inspect::Inspect,
    pub run: run_panel::RunPanel,
    thumbnailer: Thumbnailer,
    pictures: HashMap<(ImageId, Kind), Picture>,
    tiles: TileService,
    pub guide: first_run::FirstRun,
    pub cache_window: cache_window::CacheWindow,
    pub curate_window: curate_window::CurateWindow,
    /// The shortcuts in force (defaults plus the user's changes).
    pub keymap: keymap::Keymap,
    /// The action waiting for its new key in the help overlay.
    rebinding: Option<keymap::Action>,
    pub export_window: exchange_window::ExportWindow,
    import_annotations: exchange_window::ImportAnnotations,
    sandbox_panel: sandbox_panel::SandboxPanel,
    /// Team mode: the background sync and the Team window (idle for a solo project).
    pub team: team_panel::TeamPanel,
    /// What panels asked of the app this frame.
    outbox: command::Outbox,
    /// A trace to open on the first frame (from the command line).
    pending_trace: Option<PathBuf>,
    import: Option<ImportJob>,
    pub last_report: Option<ImportReport>,
    pub notices: Vec<Notice>,
    dialog: Option<(DialogRequest, Receiver<Option<Vec<PathBuf>>>)>,
    demo: Option<Receiver<Result<PathBuf, String>>>,
}

/// Run the app in a window until it is closed.
pub fn run(project: Option<PathBuf>) -> anyhow::Result<()> {
    run_with(AppConfig::for_user(project))
}

/// Run the app in a window with this configuration.
pub fn run_with(config: AppConfig) -> anyhow::Result<()> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("thyme-studio")
            .with_inner_size([1400.0, 900.0])
            .with_drag_and_drop(true),
        renderer: renderer_from_env(),
        ..Default::default()
    };
    eframe::run_native(
        "thyme-studio",
        options,
        Box::new(move |_cc| Ok(Box::new(StudioApp::new(config)))),
    )
    .map_err(|e| anyhow::anyhow!("the window could not be opened: {e}"))
}

/// `THYME_STUDIO_RENDERER=wgpu|glow` picks the renderer; glow is the default because it is
/// much lighter on software-rendered desktops and virtual machines.
fn renderer_from_env() -> eframe::Renderer {
    match std::env::var("THYME_STUDIO_RENDERER").as_deref() {
        Ok("wgpu") => eframe::Renderer::Wgpu,
        _ => eframe::Renderer::Glow,
    }
}

impl eframe::App for StudioApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

impl StudioApp {
    pub fn new(config: AppConfig) -> Self {
        let settings = Settings::load(&config.dirs.settings_file());
        let (keymap, key_errors) = keymap::Keymap::with_overrides(&settings.keys);
        let thumbnailer = Thumbnailer::new(config.dirs.thumbnail_dir(), config.budget, 1);
        let tiles = TileService::new(&config.dirs.cache, TILE_RAM_BUDGET, config.budget, 2);
        if let Some(bytes) = settings.tile_cache_bytes {
            tiles.set_disk_budget(bytes);
        }
        let mut app = Self {
            settings,
            session: session::ProjectSession::default(),
            workspace: Workspace::Annotate,
            annotate: annotate::AnnotateWorkspace::default(),
            inspect: inspect::Inspect::with_audit(
                sandbox_config(&config),
                config.dirs.cache.join("audit-cache.jsonl"),
            ),
            run: run_panel::RunPanel::new(sandbox_config(&config)),
            thumbnailer,
            pictures: HashMap::new(),
            tiles,
            guide: first_run::FirstRun::default(),
            cache_window: cache_window::CacheWindow::default(),
            curate_window: curate_window::CurateWindow::default(),
            keymap,
            rebinding: None,
            export_window: exchange_window::ExportWindow::default(),
            import_annotations: exchange_window::ImportAnnotations::default(),
            sandbox_panel: sandbox_panel::SandboxPanel::new(sandbox_config(&config)),
            team: team_panel::TeamPanel::default(),
            outbox: Vec::new(),
            pending_trace: config.trace.clone(),
            import: None,
            last_report: None,
            notices: Vec::new(),
            dialog: None,
            demo: None,
            config,
        };
        for e in key_errors {
            app.notify_error(format!("a saved shortcut was ignored: {e}"));
        }
        app.guide.open = !app.settings.welcome_seen;
        app.apply_prompt_choice();
        app.annotate.assist.weights = app.settings.sam_weights.clone();
        if let Some(dir) = &app.settings.model_dir {
            app.run.model_dir = dir.display().to_string();
        }
        match (
            app.settings.chat_server.clone(),
            crate::agent::HttpSettings::from_env(),
        ) {
            (_, Some(env)) => {
                app.run.server_url = env.base_url;
                app.run.server_model = env.model;
            }
            (Some(saved), None) => {
                app.run.server_url = saved.base_url;
                app.run.server_model = saved.model;
            }
            (None, None) => {}
        }
        match app.config.project.clone() {
            Some(path) => app.open_project(path),
            None => app.open_demo(),
        }
        app
    }

    /// Is any background work still running?
    pub fn busy(&self) -> bool {
        self.import.is_some()
            || self
                .annotate
                .busy(&self.tiles, self.session.selected.as_ref())
            || self.export_window.busy()
            || self.import_annotations.busy()
            || self.sandbox_panel.busy()
            || self.inspect.busy()
            || self.run.busy()
            || self.demo.is_some()
            || self.dialog.is_some()
            || self.thumbnailer.pending() > 0
            || self
                .pictures
                .values()
                .any(|p| matches!(p, Picture::Loading))
    }

    /// Open the demo project, creating it in the background on first run.
    fn open_demo(&mut self) {
        let dir = self.config.dirs.demo_dir();
        let project = dir.join(crate::demo::PROJECT_FILE);
        if project.is_file() {
            self.open_project(project);
            return;
        }
        let (tx, rx) = channel();
        let scale = self.config.demo_scale;
        let spawned = std::thread::Builder::new()
            .name("demo".into())
            .spawn(move || {
                let result =
                    crate::demo::write_demo(&dir, scale, &|_| {}).map_err(|e| e.to_string());
                let _ = tx.send(result);
            });
        match spawned {
            Ok(_) => self.demo = Some(rx),
            Err(e) => self.notify_error(format!("cannot create the demo project: {e}")),
        }
    }

    pub fn open_project(&mut self, path: PathBuf) {
        // A project linked to a team syncs in the background; edits carry the member's name.
        let actor = self
            .team
            .attach(&path)
            .unwrap_or_else(crate::store::default_actor);
        if let Err(e) = self.session.open(&path, actor) {
            self.notify_error(e.to_string());
            return;
        }
        self.thumbnailer.clear();
        self.pictures.clear();
        self.annotate.highlighted = None;
        self.annotate.draft = None;
        self.request_missing_thumbnails();
        self.settings.remember(&path);
        self.save_settings();
        // Show something at once: the first image whose file is there.
        let first = self.session.project.as_ref().and_then(|view| {
            view.images
                .iter()
                .find(|i| !view.missing.contains(&i.id))
                .map(|i| i.id.clone())
        });
        if let Some(id) = first {
            self.select(id);
        }
    }

    fn new_project(&mut self, path: PathBuf) {
        let path = if path.extension().is_none() {
            path.with_extension(crate::store::PROJECT_EXTENSION)
        } else {
            path
        };
        match SqliteStore::create(&path) {
            Ok(store) => {
                drop(store);
                self.open_project(path);
            }
            Err(e) => self.notify_error(e.to_string()),
        }
    }

    /// Open an image in the Annotate workspace (and for the Run workspace).
    pub fn select(&mut self, id: ImageId) {
        annotate::select_image(
            &mut self.annotate,
            id,
            &mut self.session,
            &self.tiles,
            &self.pictures,
            &mut self.outbox,
        );
    }

    /// Start importing files or folders into the open project.
    pub fn start_import(&mut self, inputs: Vec<PathBuf>) {
        let Some(project) = &self.session.project else {
            self.notify_error("open or create a project before importing images".to_owned());
            return;
        };
        if self.import.is_some() {
            self.notify_error("an import is already running".to_owned());
            return;
        }
        let options = ImportOptions {
            budget: self.config.budget,
            ..ImportOptions::default()
        };
        self.import = Some(ImportJob::start(project.path.clone(), inputs, options));
    }

    /// The prompt runs and exports use: the built-in profile, with the system prompt from the
    /// chosen file when there is one (a file that cannot be read is said, and not used).
    fn apply_prompt_choice(&mut self) {
        let mut profile = crate::agent::PromptProfile::default();
        if let Some(file) = self.settings.system_prompt_file.clone() {
            match profile.clone().with_system_file(&file) {
                Ok(p) => profile = p,
                Err(e) => self.notify_error(format!("the built-in prompt is used: {e}")),
            }
        }
        self.run.profile = profile.clone();
        self.export_window.profile = profile;
    }

    fn save_settings(&mut self) {
        if let Err(e) = self.settings.save(&self.config.dirs.settings_file()) {
            self.notify_error(format!("settings not saved: {e}"));
        }
    }

    fn notify_error(&mut self, text: String) {
        tracing::warn!("{text}");
        self.notices.push(Notice {
            text,
            is_error: true,
        });
    }

    fn ask(&mut self, request: DialogRequest) {
        if self.dialog.is_some() {
            return;
        }
        let (tx, rx) = channel();
        let dialogs = self.config.dialogs.clone();
        let spawned = std::thread::Builder::new()
            .name("dialog".into())
            .spawn(move || {
                let _ = tx.send(dialogs.pick(request));
            });
        match spawned {
            Ok(_) => self.dialog = Some((request, rx)),
            Err(e) => self.notify_error(format!("cannot show the dialog: {e}")),
        }
    }

    /// Draw one frame.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if let Some(path) = self.pending_trace.take() {
            self.outbox.push(command::AppCommand::OpenInInspect(path));
        }
        self.poll_jobs(&ctx);
        self.poll_team(&ctx);
        self.handle_dropped_files(&ctx);
        egui::Panel::top("menu").show(ui, |ui| self.menu_bar(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        match self.workspace {
            Workspace::Annotate => {
                let mut cx = annotate::AnnotateCx {
                    session: &mut self.session,
                    tiles: &self.tiles,
                    team: &self.team,
                    keymap: &self.keymap,
                    pictures: &self.pictures,
                    keys_taken: self.rebinding.is_some(),
                    demo_pending: self.demo.is_some(),
                    chat: annotate::chat_server(&self.run.server_url, &self.run.server_model),
                    out: &mut self.outbox,
                };
                self.annotate.show(ui, &mut cx);
            }
            Workspace::Inspect => self.inspect.show(ui, &self.tiles, &mut self.outbox),
            Workspace::Run => {
                let image = self.session.image().cloned();
                egui::Panel::bottom("sandbox-state").show(ui, |ui| {
                    self.sandbox_panel.show(ui);
                });
                self.run.show(
                    ui,
                    image.as_ref(),
                    &self.session.detail.questions,
                    &self.session.detail.regions,
                    &self.tiles,
                    &mut self.outbox,
                );
            }
        }
        self.windows(&ctx);
        self.exchange_windows(&ctx);
        self.handle_outbox(&ctx);
        // A key that ends typing (Escape, Enter) belongs to the text field, not to the editor:
        // remember whether one had the keyboard at the end of this frame.
        self.annotate.typing = ctx.text_edit_focused();
    }

    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_owned())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        if !dropped.is_empty() {
            self.start_import(dropped);
        }
    }

    /// An image file for the Run workspace: checked from its header against the pixel budget,
    /// given an id from its path, size and time (it is not added to the project).
    fn open_run_image(&mut self, path: PathBuf) {
        let probe = match crate::imagery::probe_file(&path, self.config.budget) {
            Ok(p) => p,
            Err(e) => {
                self.notify_error(format!("{}: {e}", path.display()));
                return;
            }
        };
        let meta = std::fs::metadata(&path).ok();
        let stamp = format!(
            "{}:{}:{:?}",
            path.display(),
            meta.as_ref().map_or(0, |m| m.len()),
            meta.as_ref().and_then(|m| m.modified().ok())
        );
        self.run.file_image = Some(crate::dataset::ImageRecord {
            id: crate::dataset::ImageId::of_bytes(stamp.as_bytes()),
            path,
            size: probe.size,
            bytes: meta.map_or(0, |m| m.len()),
            added_at_ms: crate::store::now_ms(),
            status: Default::default(),
            review: None,
        });
    }
}

impl StudioApp {}

/// The sandbox settings for this app: its data folder, and the launcher binary.
fn sandbox_config(config: &AppConfig) -> Option<crate::sandbox::SandboxConfig> {
    let mut cfg = crate::sandbox::SandboxConfig::for_app(&config.dirs).ok()?;
    if let Some(l) = &config.launcher {
        cfg.launcher = l.clone();
    }
    Some(cfg)
}

pub(crate) fn placeholder(ui: &mut egui::Ui, title: &str, text: &str) {
    egui::CentralPanel::default().show(ui, |ui| {
        ui.heading(title);
        ui.label(text);
    });
}
