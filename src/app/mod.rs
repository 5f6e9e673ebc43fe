//! The eframe app: workspaces, menus, background jobs, and the glue between them.
//!
//! Owns the UI's state and nothing else: it reads a [`project::ProjectView`] snapshot each
//! frame, and every job (import, thumbnails, the first-run demo, file dialogs) runs on another
//! thread and reports through a channel, so the UI thread never waits on disk or compute.

pub mod autosave;
pub mod dialogs;
pub mod editor;
pub mod exchange_window;
pub mod first_run;
pub mod import_job;
pub mod inspect;
pub mod keymap;
pub mod model_eye_view;
pub mod pictures;
pub mod project;
pub mod run_panel;
pub mod sandbox_panel;
pub mod settings;
pub mod team_panel;
pub mod thumbnails;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use egui::{ColorImage, TextureHandle, TextureOptions, ThemePreference};

use crate::dataset::{ImageId, QuestionId};
use crate::imagery::PixelBudget;
use crate::imagery::tiles::{BuildStatus, TileService};
use crate::import::{ImportOptions, ImportReport};
use crate::paths::AppDirs;
use crate::store::{SqliteStore, Store as _};
use crate::ui;
use crate::ui::canvas::{Canvas, Overlay, OverlayStyle};
use dialogs::{DialogRequest, Dialogs, NativeDialogs};
use import_job::ImportJob;
use project::{ImageDetail, ProjectView};
use settings::Settings;
use thumbnails::{Kind, Thumbnailer};

/// Which images the list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFilter {
    All,
    Status(crate::dataset::ImageStatus),
    NoBoxes,
    NoQuestions,
    Warnings,
}

impl ListFilter {
    fn title(self) -> &'static str {
        match self {
            ListFilter::All => "all images",
            ListFilter::Status(s) => s.title(),
            ListFilter::NoBoxes => "no boxes yet",
            ListFilter::NoQuestions => "no questions yet",
            ListFilter::Warnings => "with warnings",
        }
    }
}

/// The selected-box panel's own state.
struct BoxPanel {
    /// The selected box's label as being edited.
    box_label: Option<(crate::dataset::RegionId, String)>,
    /// Put the keyboard into the label field on the next frame (a box was just drawn).
    focus_label: bool,
    crop_zoom: u32,
    #[allow(clippy::type_complexity)]
    crop_preview: Option<(
        (crate::dataset::RegionId, u32, u32, u32, u32, u32),
        TextureHandle,
    )>,
}

/// The selected box: its label, the crop the agent's sandbox would make of it, and what
/// the model sees of it. Returns an edit when the label was changed.
fn selected_box_panel(
    ui: &mut egui::Ui,
    state: &mut BoxPanel,
    tiles: &TileService,
    detail: &ImageDetail,
    selected: Option<crate::dataset::RegionId>,
    image: &crate::dataset::ImageRecord,
) -> Option<editor::EditorAction> {
    let sel = selected?;
    let n = detail.regions.iter().position(|r| r.id == sel)?;
    let region = detail.regions[n].clone();
    let mut action = None;
    ui.heading(format!("Box #{}", n + 1));
    let label_id = ui.label("Box label").id;
    if state.box_label.as_ref().is_none_or(|(id, _)| *id != sel) {
        state.box_label = Some((sel, region.label.clone()));
    }
    if let Some((_, text)) = state.box_label.as_mut() {
        let r = ui
            .add(egui::TextEdit::singleline(text).desired_width(f32::INFINITY))
            .labelled_by(label_id);
        if std::mem::take(&mut state.focus_label) {
            r.request_focus();
        }
        if r.lost_focus() && *text != region.label {
            let mut after = region.clone();
            after.label = text.clone();
            action = Some(editor::EditorAction::Apply(Box::new(
                crate::store::Command::UpdateRegion {
                    before: region.clone(),
                    after,
                },
            )));
        }
    }
    let crop = crate::annotate::crop::sandbox_crop(&region.rect, image.size);
    ui.horizontal(|ui| {
        let zoom_label = ui.label("Crop zoom");
        egui::ComboBox::from_id_salt("crop-zoom")
            .selected_text(format!("{}x", state.crop_zoom))
            .show_ui(ui, |ui| {
                for z in [1u32, 2, 3, 4] {
                    ui.selectable_value(&mut state.crop_zoom, z, format!("{z}x"));
                }
            })
            .response
            .labelled_by(zoom_label.id);
    });
    let (zw, zh) = crate::annotate::crop::zoomed_size(&crop, f64::from(state.crop_zoom));
    ui.small(format!(
        "sandbox crop {:.0}x{:.0} px (sides of at least 64), {zw}x{zh} after zoom",
        crop.width(),
        crop.height()
    ));
    let key = (
        sel,
        crop.x0 as u32,
        crop.y0 as u32,
        crop.x1 as u32,
        crop.y1 as u32,
        state.crop_zoom,
    );
    if state.crop_preview.as_ref().is_none_or(|(k, _)| *k != key)
        && let Some(pixels) = tiles.crop(&image.id, image.size, &crop)
    {
        let zoomed = image::DynamicImage::ImageRgb8(pixels)
            .resize_exact(zw, zh, image::imageops::FilterType::CatmullRom)
            .into_rgb8();
        let color = egui::ColorImage::from_rgb([zw as usize, zh as usize], zoomed.as_raw());
        let tex = ui
            .ctx()
            .load_texture("crop-preview", color, TextureOptions::NEAREST);
        state.crop_preview = Some((key, tex));
    }
    match &state.crop_preview {
        Some((k, tex)) if *k == key => {
            let avail = ui.available_width().min(320.0);
            let size = tex.size_vec2();
            let scale = (avail / size.x).min(1.0);
            ui.add(egui::Image::from_texture((tex.id(), size * scale)).alt_text("crop preview"));
        }
        _ => {
            ui.weak("making the crop preview...");
        }
    }
    ui.separator();
    action
}

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

enum Picture {
    Loading,
    Ready(TextureHandle),
    Failed(String),
}

/// A message for the person, shown until dismissed.
#[derive(Debug, Clone)]
pub struct Notice {
    pub text: String,
    pub is_error: bool,
}

/// The whole app's UI state.
pub struct StudioApp {
    config: AppConfig,
    settings: Settings,
    pub project: Option<ProjectView>,
    pub workspace: Workspace,
    pub selected: Option<ImageId>,
    detail: ImageDetail,
    highlighted: Option<QuestionId>,
    thumbnailer: Thumbnailer,
    pictures: HashMap<(ImageId, Kind), Picture>,
    tiles: TileService,
    pub canvas: Canvas,
    pub editor: editor::BoxEditor,
    /// The highlighted question as being edited.
    pub draft: Option<crate::dataset::Question>,
    box_panel: BoxPanel,
    /// The reason and note the review section gives with a rejection.
    review_form: ui::review_bar::ReviewForm,
    /// Typed text saved a moment after the last keystroke.
    autosave: autosave::Autosave,
    pub list_filter: ListFilter,
    /// The model's max_pixels for the model-eye sizes.
    pub max_pixels: u64,
    /// A text field had the keyboard at the end of the last frame.
    typing: bool,
    /// Put the keyboard into this question's text on the next frame.
    focus_question_text: Option<crate::dataset::QuestionId>,
    categories: Vec<crate::dataset::Category>,
    actor: String,
    /// Edits saved in this session (each one durable when counted).
    pub saved_edits: u64,
    pub show_help: bool,
    pub guide: first_run::FirstRun,
    /// The shortcuts in force (defaults plus the user's changes).
    pub keymap: keymap::Keymap,
    /// The action waiting for its new key in the help overlay.
    rebinding: Option<keymap::Action>,
    pub model_eye: model_eye_view::ModelEyeView,
    pub export_window: exchange_window::ExportWindow,
    import_annotations: exchange_window::ImportAnnotations,
    sandbox_panel: sandbox_panel::SandboxPanel,
    pub inspect: inspect::Inspect,
    pub run: run_panel::RunPanel,
    /// Team mode: the background sync and the Team window (idle for a solo project).
    pub team: team_panel::TeamPanel,
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
        let mut app = Self {
            settings,
            project: None,
            workspace: Workspace::Annotate,
            selected: None,
            detail: ImageDetail::default(),
            highlighted: None,
            thumbnailer,
            pictures: HashMap::new(),
            tiles,
            canvas: Canvas::new(),
            editor: editor::BoxEditor::default(),
            draft: None,
            focus_question_text: None,
            typing: false,
            list_filter: ListFilter::All,
            max_pixels: crate::imagery::model_eye::DEFAULT_MAX_PIXELS,
            box_panel: BoxPanel {
                box_label: None,
                focus_label: false,
                crop_zoom: 2,
                crop_preview: None,
            },
            review_form: ui::review_bar::ReviewForm::default(),
            autosave: autosave::Autosave::default(),
            categories: Vec::new(),
            actor: crate::store::default_actor(),
            saved_edits: 0,
            show_help: false,
            guide: first_run::FirstRun::default(),
            keymap,
            rebinding: None,
            model_eye: model_eye_view::ModelEyeView::default(),
            export_window: exchange_window::ExportWindow::default(),
            import_annotations: exchange_window::ImportAnnotations::default(),
            sandbox_panel: sandbox_panel::SandboxPanel::new(sandbox_config(&config)),
            run: run_panel::RunPanel::new(sandbox_config(&config)),
            team: team_panel::TeamPanel::default(),
            inspect: inspect::Inspect::default(),
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
            || self.model_eye.busy()
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
            || self.selected.as_ref().is_some_and(|id| {
                !self.canvas.settled()
                    && !matches!(
                        self.tiles.status(id),
                        Some(BuildStatus::Failed(_) | BuildStatus::Cancelled)
                    )
            })
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
        match ProjectView::open(&path) {
            Ok(view) => {
                self.thumbnailer.clear();
                self.pictures.clear();
                self.selected = None;
                self.detail = ImageDetail::default();
                self.highlighted = None;
                for image in &view.images {
                    if !view.missing.contains(&image.id) {
                        self.thumbnailer
                            .request(image.id.clone(), image.path.clone(), Kind::Thumb);
                        self.pictures
                            .insert((image.id.clone(), Kind::Thumb), Picture::Loading);
                    }
                }
                self.categories = view.store().categories().unwrap_or_default();
                let first = view
                    .images
                    .iter()
                    .find(|i| !view.missing.contains(&i.id))
                    .map(|i| i.id.clone());
                self.settings.remember(&path);
                self.save_settings();
                // A project linked to a team syncs in the background; edits carry the
                // member's name.
                self.actor = self
                    .team
                    .attach(&path)
                    .unwrap_or_else(crate::store::default_actor);
                self.project = Some(view);
                // Show something at once: the first image whose file is there.
                if let Some(id) = first {
                    self.select(id);
                }
            }
            Err(e) => self.notify_error(e.to_string()),
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

    pub fn select(&mut self, id: ImageId) {
        let Some(project) = &self.project else {
            return;
        };
        match project.detail(&id) {
            Ok(detail) => self.detail = detail,
            Err(e) => {
                self.notify_error(e.to_string());
                return;
            }
        }
        if let Some(image) = project.image(&id) {
            self.canvas.set_image(id.clone(), image.size);
            if let Some(Picture::Ready(t)) = self.pictures.get(&(id.clone(), Kind::Thumb)) {
                self.canvas.set_placeholder(Some(t.clone()));
            }
            if !project.missing.contains(&id) {
                self.tiles.open(&id, image.path.clone(), image.size);
            }
            // Build the next images' pyramids in the background, so paging on is instant.
            if let Some(pos) = project.images.iter().position(|i| i.id == id) {
                for next in project.images.iter().skip(pos + 1).take(2) {
                    if !project.missing.contains(&next.id) {
                        self.tiles.prefetch(&next.id, next.path.clone(), next.size);
                    }
                }
            }
        }
        self.highlighted = None;
        self.draft = None;
        if self.selected.as_ref() != Some(&id) {
            self.editor.reset();
        }
        self.selected = Some(id);
    }

    /// Start importing files or folders into the open project.
    pub fn start_import(&mut self, inputs: Vec<PathBuf>) {
        let Some(project) = &self.project else {
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

    /// Collect what background work has finished since the last frame.
    fn poll_jobs(&mut self, ctx: &egui::Context) {
        if let Some(rx) = &self.demo
            && let Ok(result) = rx.try_recv()
        {
            self.demo = None;
            match result {
                Ok(path) => self.open_project(path),
                Err(e) => self.notify_error(format!("the demo project could not be created: {e}")),
            }
        }
        if let Some((request, rx)) = &self.dialog
            && let Ok(answer) = rx.try_recv()
        {
            let request = *request;
            self.dialog = None;
            if let Some(paths) = answer.filter(|p| !p.is_empty()) {
                match request {
                    DialogRequest::OpenProject => self.open_project(paths[0].clone()),
                    DialogRequest::NewProject => self.new_project(paths[0].clone()),
                    DialogRequest::ImportFolder | DialogRequest::ImportImages => {
                        self.start_import(paths)
                    }
                    DialogRequest::ExportTo(_) => {
                        self.export_window.out = Some(paths[0].clone());
                    }
                    DialogRequest::RunImage => self.open_run_image(paths[0].clone()),
                    DialogRequest::SystemPromptFile => {
                        self.settings.system_prompt_file = Some(paths[0].clone());
                        self.save_settings();
                        self.apply_prompt_choice();
                    }
                    DialogRequest::ModelFolder => {
                        self.run.model_dir = paths[0].display().to_string();
                        self.run.model_dir_changed = true;
                    }
                    DialogRequest::OpenTrace => {
                        self.inspect.open(paths[0].clone(), ctx);
                        self.workspace = Workspace::Inspect;
                    }
                    DialogRequest::ImportAnnotations => {
                        if let Some(project) = &self.project {
                            let path = project.path.clone();
                            self.import_annotations.start(ctx, path, paths[0].clone());
                        }
                    }
                }
            }
        }
        if let Some(job) = &self.import
            && let Some(result) = job.finished()
        {
            self.import = None;
            match result {
                Ok(report) => {
                    let selected = self.selected.clone();
                    if let Some(project) = &mut self.project
                        && let Err(e) = project.reload()
                    {
                        self.notices.push(Notice {
                            text: e.to_string(),
                            is_error: true,
                        });
                    }
                    self.request_missing_thumbnails();
                    if let Some(id) = selected {
                        self.select(id);
                    }
                    self.last_report = Some(report);
                }
                Err(e) => self.notify_error(format!("import failed: {e}")),
            }
        }
        for done in self.thumbnailer.poll() {
            let picture = match done.result {
                Ok(rgba) => {
                    let size = [rgba.width() as usize, rgba.height() as usize];
                    let color = ColorImage::from_rgba_unmultiplied(size, rgba.as_raw());
                    let name = format!("{}-{:?}", done.id.short(), done.kind);
                    Picture::Ready(ctx.load_texture(name, color, TextureOptions::LINEAR))
                }
                Err(e) => Picture::Failed(e),
            };
            self.pictures.insert((done.id, done.kind), picture);
        }
        if self.busy() {
            ctx.request_repaint_after(Duration::from_millis(50));
        }
    }

    fn request_missing_thumbnails(&mut self) {
        let Some(project) = &self.project else {
            return;
        };
        for image in &project.images {
            let key = (image.id.clone(), Kind::Thumb);
            if !project.missing.contains(&image.id) && !self.pictures.contains_key(&key) {
                self.thumbnailer
                    .request(image.id.clone(), image.path.clone(), Kind::Thumb);
                self.pictures.insert(key, Picture::Loading);
            }
        }
    }

    /// Thumbnails still loading, and thumbnails asked for in all.
    fn thumbnail_progress(&self) -> (usize, usize) {
        let thumbs = self.pictures.iter().filter(|((_, k), _)| *k == Kind::Thumb);
        let (mut loading, mut total) = (0, 0);
        for (_, p) in thumbs {
            total += 1;
            if matches!(p, Picture::Loading) {
                loading += 1;
            }
        }
        (loading, total)
    }

    /// Draw one frame.
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if let Some(path) = self.pending_trace.take() {
            self.inspect.open(path, &ctx);
            self.workspace = Workspace::Inspect;
        }
        self.poll_jobs(&ctx);
        self.poll_team(&ctx);
        self.handle_dropped_files(&ctx);
        egui::Panel::top("menu").show(ui, |ui| self.menu_bar(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        match self.workspace {
            Workspace::Annotate => self.annotate(ui),
            Workspace::Inspect => self.inspect.show(ui, &self.tiles),
            Workspace::Run => {
                let image = self
                    .selected
                    .as_ref()
                    .and_then(|id| self.project.as_ref().and_then(|p| p.image(id).cloned()));
                egui::Panel::bottom("sandbox-state").show(ui, |ui| {
                    self.sandbox_panel.show(ui);
                });
                self.run.show(
                    ui,
                    image.as_ref(),
                    &self.detail.questions,
                    &self.detail.regions,
                    &self.tiles,
                );
                if std::mem::take(&mut self.run.want_image_dialog) {
                    self.ask(DialogRequest::RunImage);
                }
                if std::mem::take(&mut self.run.want_model_dialog) {
                    self.ask(DialogRequest::ModelFolder);
                }
                if std::mem::take(&mut self.run.model_dir_changed) {
                    let dir = self.run.model_dir.trim();
                    self.settings.model_dir = (!dir.is_empty()).then(|| PathBuf::from(dir));
                    if let Err(e) = self.settings.save(&self.config.dirs.settings_file()) {
                        tracing::warn!("settings not saved: {e}");
                    }
                }
                if std::mem::take(&mut self.run.server_changed) {
                    self.settings.chat_server = Some(settings::ChatServer {
                        base_url: self.run.server_url.clone(),
                        model: self.run.server_model.clone(),
                    });
                    if let Err(e) = self.settings.save(&self.config.dirs.settings_file()) {
                        tracing::warn!("settings not saved: {e}");
                    }
                }
                if let Some(path) = self.run.open_in_inspect.take() {
                    self.inspect.open(path, &ctx);
                    self.workspace = Workspace::Inspect;
                }
            }
        }
        self.windows(&ctx);
        self.exchange_windows(&ctx);
        // A key that ends typing (Escape, Enter) belongs to the text field, not to the editor:
        // remember whether one had the keyboard at the end of this frame.
        self.typing = ctx.text_edit_focused();
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

    fn menu_bar(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("New project...").clicked() {
                    self.ask(DialogRequest::NewProject);
                }
                if ui.button("Open project...").clicked() {
                    self.ask(DialogRequest::OpenProject);
                }
                ui.menu_button("Open recent", |ui| {
                    if self.settings.recent.is_empty() {
                        ui.weak("nothing yet");
                    }
                    for path in self.settings.recent.clone() {
                        if ui.button(path.display().to_string()).clicked() {
                            self.open_project(path);
                        }
                    }
                });
                if ui.button("Open demo project").clicked() {
                    self.open_demo();
                }
                if ui
                    .button("Open trace...")
                    .on_hover_text("a trace folder's trace.json, a JSONL of traces, or a Thyme, DeepEyes, Mini-o3 or PyVision log")
                    .clicked()
                {
                    self.ask(DialogRequest::OpenTrace);
                }
                ui.separator();
                let can_import = self.project.is_some() && self.import.is_none();
                if ui
                    .add_enabled(can_import, egui::Button::new("Import folder..."))
                    .clicked()
                {
                    self.ask(DialogRequest::ImportFolder);
                }
                if ui
                    .add_enabled(can_import, egui::Button::new("Import images..."))
                    .clicked()
                {
                    self.ask(DialogRequest::ImportImages);
                }
                if ui
                    .add_enabled(
                        can_import && !self.import_annotations.busy(),
                        egui::Button::new("Import annotations..."),
                    )
                    .on_hover_text("COCO JSON, thyme-studio JSONL, Thyme RL or SFT JSONL")
                    .clicked()
                {
                    self.ask(DialogRequest::ImportAnnotations);
                }
                ui.separator();
                if ui
                    .add_enabled(self.project.is_some(), egui::Button::new("Export..."))
                    .clicked()
                {
                    self.export_window.open = true;
                }
                ui.separator();
                if ui
                    .button("Use a Thyme checkout's prompt file...")
                    .on_hover_text("scripts/prompt.txt, used byte for byte as the system prompt of runs and thyme-rl exports")
                    .clicked()
                {
                    self.ask(DialogRequest::SystemPromptFile);
                }
                if self.settings.system_prompt_file.is_some()
                    && ui.button("Use the built-in prompt").clicked()
                {
                    self.settings.system_prompt_file = None;
                    self.save_settings();
                    self.apply_prompt_choice();
                }
                ui.separator();
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                ui.checkbox(&mut self.canvas.show_minimap, "Minimap");
                ui.checkbox(&mut self.canvas.show_loupe, "Loupe (when zoomed out)");
                ui.checkbox(&mut self.show_help, "Shortcuts (? or F1)");
                ui.checkbox(&mut self.model_eye.open, "Model-eye view (M)");
                ui.checkbox(&mut self.team.open, "Team (sync, review, dashboard)");
                ui.checkbox(&mut self.editor.snap, "Snap box edges to whole pixels");
                ui.separator();
                for (label, pref) in [
                    ("Follow the system theme", ThemePreference::System),
                    ("Light theme", ThemePreference::Light),
                    ("Dark theme", ThemePreference::Dark),
                ] {
                    if ui.button(label).clicked() {
                        ui.ctx().set_theme(pref);
                    }
                }
            });
            ui.menu_button("Help", |ui| {
                if ui.button("Getting started").clicked() {
                    self.guide.open = true;
                }
                ui.checkbox(&mut self.show_help, "Shortcuts (? or F1)");
            });
            ui.separator();
            for w in Workspace::ALL {
                if ui
                    .selectable_label(self.workspace == w, w.title())
                    .clicked()
                {
                    self.workspace = w;
                }
            }
        });
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            match &self.project {
                Some(p) => {
                    ui.label(p.name())
                        .on_hover_text(p.path.display().to_string());
                    ui.separator();
                    ui.label(format!(
                        "{} images · {} boxes · {} questions",
                        p.stats.images, p.stats.regions, p.stats.questions
                    ));
                    if p.stats.images_missing > 0 {
                        ui.colored_label(
                            ui::WARNING,
                            format!("{} image file(s) not found", p.stats.images_missing),
                        );
                    }
                }
                None if self.demo.is_some() => {
                    ui.label("Preparing the demo project...");
                }
                None => {
                    ui.label("No project open");
                }
            }
            if let Some(job) = &self.import {
                let p = job.progress();
                ui.separator();
                let fraction = if p.total == 0 {
                    0.0
                } else {
                    p.done as f32 / p.total as f32
                };
                ui.add(
                    egui::ProgressBar::new(fraction)
                        .desired_width(200.0)
                        .text(format!("importing {}/{} {}", p.done, p.total, p.current)),
                );
                if ui.button("Cancel import").clicked() {
                    job.cancel();
                }
            }
            if let Some(line) = self.team.status_line() {
                ui.separator();
                if ui
                    .link(line)
                    .on_hover_text("Open the Team window")
                    .clicked()
                {
                    self.team.open = true;
                }
            }
            if self.saved_edits > 0 {
                ui.separator();
                ui.label(format!("all {} edit(s) saved", self.saved_edits))
                    .on_hover_text("Every edit is written to the project file before it is shown.");
            }
            if self.workspace == Workspace::Annotate && self.selected.is_some() {
                ui.separator();
                ui.monospace(self.canvas.status_line(&self.tiles));
            }
            let (loading, total) = self.thumbnail_progress();
            if loading > 0 {
                ui.separator();
                ui.add(
                    egui::ProgressBar::new((total - loading) as f32 / total as f32)
                        .desired_width(160.0)
                        .text(format!("thumbnails {}/{total}", total - loading)),
                );
            }
        });
    }

    /// Next / previous image, the shortcut help and the model-eye view (keys from the keymap).
    fn annotate_keys(&mut self, ctx: &egui::Context) {
        if self.typing || ctx.text_edit_focused() || self.rebinding.is_some() {
            return;
        }
        use keymap::Action;
        let next = self.keymap.pressed(ctx, Action::NextImage);
        let prev = !next && self.keymap.pressed(ctx, Action::PreviousImage);
        if self.keymap.pressed(ctx, Action::Help) {
            self.show_help = !self.show_help;
        }
        if self.keymap.pressed(ctx, Action::ModelEye) {
            self.model_eye.open = !self.model_eye.open;
        }
        if !(next || prev) || self.editor.busy() {
            return;
        }
        let Some(project) = &self.project else {
            return;
        };
        let n = project.images.len();
        if n == 0 {
            return;
        }
        let at = self
            .selected
            .as_ref()
            .and_then(|id| project.images.iter().position(|i| i.id == *id));
        let target = match (at, next) {
            (None, _) => 0,
            (Some(i), true) => (i + 1).min(n - 1),
            (Some(i), false) => i.saturating_sub(1),
        };
        let id = project.images[target].id.clone();
        self.select(id);
    }

    fn annotate(&mut self, ui: &mut egui::Ui) {
        self.annotate_keys(&ui.ctx().clone());
        let Some(project) = &self.project else {
            let text = if self.demo.is_some() {
                "Drawing the demo scenes (a few seconds, only on the first run)..."
            } else {
                "No project is open. Use File > New project or File > Open project."
            };
            placeholder(ui, "Annotate", text);
            return;
        };
        let mut clicked_image = None;
        egui::Panel::left("images")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| {
                let done = project
                    .images
                    .iter()
                    .filter(|i| i.status == crate::dataset::ImageStatus::Done)
                    .count();
                ui.heading(format!("Images ({})", project.images.len()));
                ui.label(format!("{done} of {} done", project.images.len()));
                ui.horizontal(|ui| {
                    let label = ui.label("Show");
                    egui::ComboBox::from_id_salt("list-filter")
                        .selected_text(self.list_filter.title())
                        .show_ui(ui, |ui| {
                            let mut options = vec![ListFilter::All];
                            options.extend(crate::dataset::ImageStatus::ALL.map(ListFilter::Status));
                            options.extend([ListFilter::NoBoxes, ListFilter::NoQuestions, ListFilter::Warnings]);
                            for f in options {
                                ui.selectable_value(&mut self.list_filter, f, f.title());
                            }
                        })
                        .response
                        .labelled_by(label.id);
                });
                if project.images.is_empty() {
                    ui.label("No images yet: drop image files or folders here, or use File > Import folder.");
                }
                let filter = self.list_filter;
                let rows: Vec<ui::image_list::ImageRow<'_>> = project
                    .images
                    .iter()
                    .filter(|image| {
                        let (boxes, questions) =
                            project.counts.get(&image.id).copied().unwrap_or((0, 0));
                        match filter {
                            ListFilter::All => true,
                            ListFilter::Status(s) => image.status == s,
                            ListFilter::NoBoxes => boxes == 0,
                            ListFilter::NoQuestions => questions == 0,
                            ListFilter::Warnings => {
                                project.missing.contains(&image.id)
                                    || crate::dataset::rules::check_image_size(image.size).is_some()
                            }
                        }
                    })
                    .map(|image| {
                        let (regions, questions) =
                            project.counts.get(&image.id).copied().unwrap_or((0, 0));
                        ui::image_list::ImageRow {
                            image,
                            thumbnail: match self.pictures.get(&(image.id.clone(), Kind::Thumb)) {
                                Some(Picture::Ready(t)) => Some(t),
                                _ => None,
                            },
                            error: match self.pictures.get(&(image.id.clone(), Kind::Thumb)) {
                                Some(Picture::Failed(e)) => Some(e.as_str()),
                                _ => None,
                            },
                            regions,
                            questions,
                            missing: project.missing.contains(&image.id),
                            team: self.team.badge(&image.id),
                        }
                    })
                    .collect();
                clicked_image = ui::image_list::image_list(ui, &rows, self.selected.as_ref());
            });
        let selected = self
            .selected
            .as_ref()
            .and_then(|id| project.image(id))
            .cloned();
        let mut clicked_question = None;
        let mut status_change = None;
        let mut box_edit = None;
        let mut qa_form = None;
        let mut add_question = false;
        let mut edit = None;
        let mut review_ask = None;
        if let Some(image) = &selected {
            egui::Panel::right("qa")
                .resizable(true)
                .default_size(340.0)
                .show(ui, |ui| {
                    let rows =
                        review_rows(image, &self.detail, self.editor.selected, self.highlighted);
                    review_ask = ui::review_bar::review_bar(ui, &mut self.review_form, &rows);
                    if let Some(action) = selected_box_panel(
                        ui,
                        &mut self.box_panel,
                        &self.tiles,
                        &self.detail,
                        self.editor.selected,
                        image,
                    ) {
                        box_edit = Some(action);
                    }
                    let edit = self.draft.as_mut().map(|draft| ui::qa_panel::QaEdit {
                        draft,
                        categories: &self.categories,
                        selected_box: self.editor.selected,
                    });
                    let out = ui::qa_panel::qa_panel(
                        ui,
                        image.size,
                        &self.detail.regions,
                        &self.detail.questions,
                        self.highlighted,
                        edit,
                        &mut self.max_pixels,
                    );
                    clicked_question = out.clicked;
                    qa_form = out.form;
                    add_question = out.add;
                });
        }
        egui::CentralPanel::default().show(ui, |ui| match &selected {
            None => {
                ui.centered_and_justified(|ui| {
                    ui.label("Select an image on the left.");
                });
            }
            Some(image) => {
                ui.horizontal(|ui| {
                    ui.strong(image.file_name());
                    ui.label(format!("{} · {}", image.size, image.id.short()));
                    let label = ui.label("Status");
                    let mut status = image.status;
                    egui::ComboBox::from_id_salt("image-status")
                        .selected_text(status.title())
                        .show_ui(ui, |ui| {
                            for s in crate::dataset::ImageStatus::ALL {
                                ui.selectable_value(&mut status, s, s.title());
                            }
                        })
                        .response
                        .labelled_by(label.id);
                    if status != image.status {
                        status_change = Some(crate::store::Command::SetImageStatus {
                            id: image.id.clone(),
                            before: image.status,
                            after: status,
                        });
                    }
                    let hint = match self.editor.two_click {
                        Some(None) => Some("first corner"),
                        Some(Some(_)) => Some("opposite corner"),
                        None => None,
                    };
                    if let Some(which) = hint {
                        // Truncated, so the hint never widens the panel and moves the image.
                        ui.add(
                            egui::Label::new(
                                egui::RichText::new(format!(
                                    "Two-click box: click the {which} (Escape cancels)"
                                ))
                                .strong(),
                            )
                            .truncate(),
                        );
                    }
                    if let Some(w) = crate::dataset::rules::check_image_size(image.size) {
                        ui.add(
                            egui::Label::new(
                                egui::RichText::new("low resolution").color(ui::WARNING),
                            )
                            .truncate(),
                        )
                        .on_hover_text(w.to_string());
                    }
                });
                let emphasised: Vec<_> = self
                    .highlighted
                    .and_then(|q| self.detail.questions.iter().find(|x| x.id == q))
                    .map(|q| q.regions.clone())
                    .unwrap_or_default();
                if project.missing.contains(&image.id) {
                    ui.colored_label(
                        ui::WARNING,
                        format!("The file is not at {} any more.", image.path.display()),
                    );
                    return;
                }
                let mut overlays: Vec<Overlay> = self
                    .detail
                    .regions
                    .iter()
                    .enumerate()
                    .map(|(n, r)| {
                        let over = crate::dataset::rules::check_area(&r.rect, image.size).is_err();
                        Overlay {
                            rect: r.rect,
                            color: if over { ui::WARNING } else { ui::box_color(n) },
                            label: Some(format!("#{} {}", n + 1, r.label)),
                            emphasis: emphasised.contains(&r.id)
                                || self.editor.selected == Some(r.id),
                            style: OverlayStyle::Box,
                        }
                    })
                    .collect();
                // Team mode: comments pinned on this image, as small markers with their text.
                for c in self.team.comments_of(&image.id) {
                    overlays.push(Overlay {
                        rect: crate::geometry::ImageRect::new(
                            c.x - 0.5,
                            c.y - 0.5,
                            c.x + 0.5,
                            c.y + 0.5,
                        ),
                        color: egui::Color32::from_rgb(255, 210, 80),
                        label: Some(format!("{}: {}", c.author, c.text)),
                        emphasis: true,
                        style: OverlayStyle::Crop,
                    });
                }
                if let Some(preview) = self.editor.preview {
                    // Live rule feedback while drawing or editing.
                    let (text, over) =
                        editor::BoxEditor::feedback(&preview, image.size, self.max_pixels);
                    overlays.push(Overlay {
                        rect: preview,
                        color: if over {
                            ui::WARNING
                        } else {
                            egui::Color32::WHITE
                        },
                        label: Some(text),
                        emphasis: true,
                        style: OverlayStyle::Box,
                    });
                }
                self.canvas.edit_mode = true;
                self.canvas.arrow_keys_pan = self.editor.selected.is_none();
                let out = self.canvas.show(ui, &self.tiles, &overlays);
                let zoom = self.canvas.view().map(|v| v.zoom).unwrap_or(1.0);
                let mut action =
                    self.editor
                        .on_canvas(&out, &image.id, &self.detail.regions, image.size, zoom);
                // Keys belong to a text field while one is being typed in.
                if action == editor::EditorAction::None
                    && !self.editor.dragging()
                    && !self.typing
                    && self.rebinding.is_none()
                    && !ui.ctx().text_edit_focused()
                {
                    action = self.editor.on_keys(
                        ui.ctx(),
                        &self.keymap,
                        &self.detail.regions,
                        image.size,
                    );
                }
                self.model_eye.show(
                    ui.ctx(),
                    &self.tiles,
                    &image.id,
                    image.size,
                    &self.detail.regions,
                    self.max_pixels,
                );
                if let Some(r) = self.editor.focus_request.take() {
                    self.canvas.focus(&r);
                }
                edit = Some(action);
            }
        });
        if let Some(action) = edit {
            self.run_edit(action);
        }
        if let Some(q) = self.focus_question_text.take() {
            ui.ctx()
                .memory_mut(|m| m.request_focus(ui::qa_editor::question_text_id(q)));
        }
        if let Some(action) = box_edit {
            self.run_edit(action);
        }
        if let Some(command) = status_change {
            self.run_edit(editor::EditorAction::Apply(Box::new(command)));
        }
        if let Some(action) = qa_form {
            self.run_form(action);
        }
        if let Some(ask) = review_ask {
            self.review(ask);
        }
        self.autosave_typing(ui.ctx());
        if add_question {
            self.add_question();
        }
        if let Some(q) = clicked_question {
            self.highlighted = if self.highlighted == Some(q) {
                None
            } else {
                Some(q)
            };
            self.draft = self
                .highlighted
                .and_then(|id| self.detail.questions.iter().find(|x| x.id == id))
                .cloned();
            self.focus_highlighted();
        }
        if let Some(id) = clicked_image {
            self.select(id);
        }
    }

    /// Save or delete the question being edited.
    fn run_form(&mut self, action: ui::qa_editor::FormAction) {
        let Some(draft) = self.draft.clone() else {
            return;
        };
        let Some(stored) = self
            .detail
            .questions
            .iter()
            .find(|q| q.id == draft.id)
            .cloned()
        else {
            return;
        };
        let command = match action {
            ui::qa_editor::FormAction::None => return,
            ui::qa_editor::FormAction::Save => {
                let visit = self.autosave.finish(&format!("question:{}", draft.id));
                if stored == draft {
                    return;
                }
                let command = crate::store::Command::UpdateQuestion {
                    before: stored,
                    after: draft,
                };
                if let Some(visit) = visit {
                    self.save_typed(command, &visit);
                    return;
                }
                command
            }
            ui::qa_editor::FormAction::Delete => {
                self.highlighted = None;
                self.draft = None;
                crate::store::Command::DeleteQuestion { question: stored }
            }
        };
        self.run_edit(editor::EditorAction::Apply(Box::new(command)));
    }

    /// Save what is being typed (question, answer, options, box label) once it has been quiet
    /// for a moment; all saves of one visit to a field undo together.
    fn autosave_typing(&mut self, ctx: &egui::Context) {
        let now = std::time::Instant::now();
        if let Some(draft) = self.draft.clone()
            && let Some(stored) = self
                .detail
                .questions
                .iter()
                .find(|q| q.id == draft.id)
                .cloned()
        {
            let key = format!("question:{}", draft.id);
            let text = serde_json::to_string(&(&draft.text, &draft.answer)).unwrap_or_default();
            if let Some(visit) = self.autosave.tick(&key, &text, stored != draft, now) {
                self.save_typed(
                    crate::store::Command::UpdateQuestion {
                        before: stored,
                        after: draft,
                    },
                    &visit,
                );
            }
        }
        if let Some((id, text)) = self.box_panel.box_label.clone()
            && let Some(region) = self.detail.regions.iter().find(|r| r.id == id).cloned()
        {
            let key = format!("label:{id}");
            if let Some(visit) = self.autosave.tick(&key, &text, text != region.label, now) {
                let mut after = region.clone();
                after.label = text;
                self.save_typed(
                    crate::store::Command::UpdateRegion {
                        before: region,
                        after,
                    },
                    &visit,
                );
            }
        }
        if let Some(due) = self.autosave.next_due() {
            ctx.request_repaint_after(due);
        }
    }

    /// Save one step of typing as part of its field visit.
    fn save_typed(&mut self, command: crate::store::Command, visit: &str) {
        if let Some(why) = self.selected.as_ref().and_then(|id| self.team.locked(id)) {
            self.notify_error(format!("the edit was not made: {why}"));
            return;
        }
        let Some(project) = &mut self.project else {
            return;
        };
        let command = crate::annotate::review::drop_stale_verdicts(command);
        match project.apply_in_visit(&self.actor, command, visit) {
            Ok(()) => {
                // Keep what is being typed: the field goes on from the draft, not the store.
                let draft = self.draft.clone();
                self.after_edit();
                if let (Some(d), Some(keep)) = (&mut self.draft, draft)
                    && d.id == keep.id
                {
                    *d = keep;
                }
            }
            Err(e) => self.notify_error(format!("the typed text was not saved: {e}")),
        }
    }

    /// Give a verdict: one journaled edit naming the item as it is shown, so an item changed
    /// meanwhile (by a sync, another window) is a conflict shown with both versions.
    fn review(&mut self, ask: ui::review_bar::ReviewAsk) {
        let Some(image) = self
            .selected
            .as_ref()
            .and_then(|id| self.project.as_ref()?.image(id).cloned())
        else {
            return;
        };
        let seen = crate::team::state::ImageState {
            image: image.clone(),
            regions: self.detail.regions.clone(),
            questions: self.detail.questions.clone(),
        };
        let after = match ask.verdict {
            None => None,
            Some((verdict, reason, note)) => {
                match crate::dataset::Review::new(
                    verdict,
                    reason.as_deref(),
                    &note,
                    &self.actor,
                    crate::store::now_ms(),
                ) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        self.notify_error(format!("the verdict was not given: {e}"));
                        return;
                    }
                }
            }
        };
        let Some(command) = crate::annotate::review::review_command(&seen, ask.target, after)
        else {
            return;
        };
        let Some(project) = &mut self.project else {
            return;
        };
        match project.apply(&self.actor, command) {
            Ok(()) => self.after_edit(),
            Err(
                e @ (crate::store::StoreError::Conflict(_)
                | crate::store::StoreError::ChangedSinceSeen { .. }),
            ) => {
                let now = crate::team::state::ImageState::read(project.store(), &image.id)
                    .ok()
                    .flatten();
                let mut text = format!("the verdict was not given: {e}.");
                if let Some(now) = now {
                    let lines = crate::team::state::describe(&seen, &now);
                    text.push_str(&format!(
                        "\nYou saw: {} box(es), {} question(s). Now: {} box(es), {} question(s).",
                        seen.regions.len(),
                        seen.questions.len(),
                        now.regions.len(),
                        now.questions.len()
                    ));
                    for l in lines {
                        text.push_str(&format!("\n  {l}"));
                    }
                }
                self.notify_error(text);
                self.reload_detail();
            }
            Err(e) => self.notify_error(format!("the verdict was not given: {e}")),
        }
    }

    /// Re-read the selected image's boxes and questions.
    fn reload_detail(&mut self) {
        if let (Some(project), Some(id)) = (&self.project, &self.selected)
            && let Ok(detail) = project.detail(id)
        {
            self.detail = detail;
        }
    }

    /// Enter on a box: open its first question for editing, or start one linked to it.
    fn open_question_of(&mut self, region: crate::dataset::RegionId) {
        let existing = self
            .detail
            .questions
            .iter()
            .find(|q| q.regions.contains(&region))
            .cloned();
        match existing {
            Some(q) => {
                self.highlighted = Some(q.id);
                self.draft = Some(q);
            }
            None => self.add_question(),
        }
        if let Some(d) = &self.draft {
            self.focus_question_text = Some(d.id);
        }
    }

    /// A new question on the selected image, linked to the selected box, opened for editing.
    fn add_question(&mut self) {
        let Some(image) = self.selected.clone() else {
            return;
        };
        let question = crate::dataset::Question::new(
            image,
            self.editor.selected.into_iter().collect(),
            "",
            crate::dataset::Answer::Open {
                text: String::new(),
            },
            "ocr",
        );
        let id = question.id;
        self.run_edit(editor::EditorAction::Apply(Box::new(
            crate::store::Command::AddQuestion { question },
        )));
        self.highlighted = Some(id);
        self.draft = self.detail.questions.iter().find(|q| q.id == id).cloned();
    }

    /// Carry out what the box editor asked for, through the store.
    /// Take the team sync's news: others' changes reload the project and the open image.
    fn poll_team(&mut self, ctx: &egui::Context) {
        if !self.team.active() {
            return;
        }
        if let Some(to) = self.team.take_reassign() {
            match self.selected.clone() {
                Some(image) => self.team.reassign(image, to),
                None => self.notify_error("select an image to reassign".into()),
            }
        }
        if let Some(text) = self.team.take_pin() {
            let at = self.editor.selected.and_then(|id| {
                self.detail
                    .regions
                    .iter()
                    .find(|r| r.id == id)
                    .map(|r| ((r.rect.x0 + r.rect.x1) / 2.0, (r.rect.y0 + r.rect.y1) / 2.0))
            });
            match (self.selected.clone(), at) {
                (Some(image), Some((x, y))) => self.team.pin(image, x, y, text),
                _ => self.notify_error("select a box on the canvas to pin the comment on".into()),
            }
        }
        if self.team.poll() {
            let mut failed = None;
            if let Some(project) = &mut self.project {
                if let Err(e) = project.reload() {
                    failed = Some(format!("reloading after a sync: {e}"));
                }
                if let Some(Ok(detail)) = self.selected.as_ref().map(|id| project.detail(id)) {
                    self.detail = detail;
                }
                self.categories = project.store().categories().unwrap_or_default();
            }
            if let Some(text) = failed {
                self.notify_error(text);
            }
        }
        ctx.request_repaint_after(team_panel::SYNC_EVERY);
    }

    fn run_edit(&mut self, action: editor::EditorAction) {
        if !matches!(
            action,
            editor::EditorAction::None | editor::EditorAction::EditQuestionOf(_)
        ) && let Some(why) = self.selected.as_ref().and_then(|id| self.team.locked(id))
        {
            self.notify_error(format!("the edit was not made: {why}"));
            return;
        }
        if let editor::EditorAction::Apply(command) = &action
            && let crate::store::Command::UpdateRegion { after, .. } = command.as_ref()
            && let Some(visit) = self.autosave.finish(&format!("label:{}", after.id))
        {
            // The end of a visit to the label field: one undo with the saves made while typing.
            self.save_typed(command.as_ref().clone(), &visit);
            return;
        }
        let Some(project) = &mut self.project else {
            return;
        };
        let result = match action {
            editor::EditorAction::None => return,
            editor::EditorAction::Apply(command) => {
                // A freshly drawn box: the next thing to type is its label.
                if let crate::store::Command::AddRegion { region, .. } = command.as_ref() {
                    self.box_panel.focus_label = region.label.is_empty();
                }
                project.apply(
                    &self.actor,
                    crate::annotate::review::drop_stale_verdicts(*command),
                )
            }
            editor::EditorAction::Delete(id) => project
                .store()
                .delete_region_command(id)
                .and_then(|command| project.apply(&self.actor, command)),
            editor::EditorAction::EditQuestionOf(region) => {
                self.open_question_of(region);
                return;
            }
            editor::EditorAction::Undo => project.undo(&self.actor).map(|_| ()),
            editor::EditorAction::Redo => project.redo(&self.actor).map(|_| ()),
        };
        match result {
            Ok(()) => self.after_edit(),
            Err(e) => self.notify_error(format!("the edit was not saved: {e}")),
        }
    }

    /// After a saved edit: the open image's detail anew, the count of saved edits, a nudge to
    /// the team sync, and the open form kept on its (saved) question.
    fn after_edit(&mut self) {
        let Some(project) = &self.project else {
            return;
        };
        let detail = match self.selected.as_ref().map(|id| project.detail(id)) {
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.notify_error(format!(
                    "the edit was saved but could not be read back: {e}"
                ));
                return;
            }
            None => return,
        };
        if let Some(sel) = self.editor.selected
            && !detail.regions.iter().any(|r| r.id == sel)
        {
            self.editor.selected = None;
        }
        self.detail = detail;
        self.saved_edits += 1;
        self.team.nudge();
        // Keep the open form on the saved question (undo may have changed it).
        if let Some(d) = &self.draft {
            self.draft = self.detail.questions.iter().find(|q| q.id == d.id).cloned();
            if self.draft.is_none() {
                self.highlighted = None;
            }
        }
    }

    /// Centre the canvas on the boxes of the highlighted question.
    fn focus_highlighted(&mut self) {
        let Some(q) = self
            .highlighted
            .and_then(|q| self.detail.questions.iter().find(|x| x.id == q))
        else {
            return;
        };
        let rects: Vec<_> = self
            .detail
            .regions
            .iter()
            .filter(|r| q.regions.contains(&r.id))
            .map(|r| r.rect)
            .collect();
        if let Some(first) = rects.first() {
            let union = rects.iter().fold(*first, |a, b| {
                crate::geometry::ImageRect::new(
                    a.x0.min(b.x0),
                    a.y0.min(b.y0),
                    a.x1.max(b.x1),
                    a.y1.max(b.y1),
                )
            });
            self.canvas.focus(&union);
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

    fn guide(&mut self, ctx: &egui::Context) {
        if !self.guide.open {
            // Nothing to show: no sandbox check on the UI thread.
            return;
        }
        let state = first_run::GuideState {
            sandbox_ready: self.sandbox_panel.ready(),
            sandbox_busy: self.sandbox_panel.busy(),
            model_dir: Some(self.run.model_dir.trim()).filter(|d| !d.is_empty()),
            model_loaded: self.run.loaded_model().is_some(),
            chat_server: Some(self.run.server_url.trim()).filter(|u| !u.is_empty()),
        };
        match self.guide.show(ctx, &state) {
            Some(first_run::GuideAction::SetUpSandbox) => self.sandbox_panel.set_up(ctx),
            Some(first_run::GuideAction::ChooseModel) => {
                self.workspace = Workspace::Run;
                self.run.policy = run_panel::PolicyKind::Local;
                self.ask(DialogRequest::ModelFolder);
            }
            Some(first_run::GuideAction::UseChatServer) => {
                self.workspace = Workspace::Run;
                self.run.policy = run_panel::PolicyKind::Http;
                self.guide.open = false;
            }
            Some(first_run::GuideAction::Closed) if !self.settings.welcome_seen => {
                self.settings.welcome_seen = true;
                if let Err(e) = self.settings.save(&self.config.dirs.settings_file()) {
                    tracing::warn!("settings not saved: {e}");
                }
            }
            Some(first_run::GuideAction::Closed) | None => {}
        }
    }

    fn windows(&mut self, ctx: &egui::Context) {
        self.team.window(ctx);
        self.guide(ctx);
        let mut dismiss = None;
        if !self.notices.is_empty() {
            egui::Window::new("Messages")
                .collapsible(false)
                .show(ctx, |ui| {
                    for (i, n) in self.notices.iter().enumerate() {
                        ui.horizontal(|ui| {
                            if n.is_error {
                                ui.colored_label(ui::WARNING, &n.text);
                            } else {
                                ui.label(&n.text);
                            }
                            if ui.button("Dismiss").clicked() {
                                dismiss = Some(i);
                            }
                        });
                    }
                });
        }
        if let Some(i) = dismiss {
            self.notices.remove(i);
        }
        let mut close_report = false;
        if let Some(report) = &self.last_report {
            egui::Window::new("Import report")
                .collapsible(false)
                .show(ctx, |ui| {
                    ui.label(format!(
                        "Added {} image(s), skipped {}, ignored {} other file(s){}.",
                        report.added(),
                        report.skipped().count(),
                        report.ignored_other_files,
                        if report.cancelled { " (cancelled)" } else { "" }
                    ));
                    egui::ScrollArea::vertical()
                        .max_height(300.0)
                        .show(ui, |ui| {
                            for (_, reason, message) in report.skipped() {
                                ui.colored_label(
                                    ui::WARNING,
                                    format!("{}: {message}", reason.as_str()),
                                );
                            }
                            for (path, warning) in report.warnings() {
                                ui.label(format!("{}: {warning}", path.display()));
                            }
                        });
                    if ui.button("Close").clicked() {
                        close_report = true;
                    }
                });
        }
        if close_report {
            self.last_report = None;
        }
        if self.show_help {
            self.help_window(ctx);
        }
        let hovering = ctx.input(|i| !i.raw.hovered_files.is_empty());
        if hovering {
            egui::Area::new(egui::Id::unique("drop-hint"))
                .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
                .show(ctx, |ui| {
                    ui.heading("Drop images or folders to import them");
                });
        }
    }
}

impl StudioApp {
    /// Export and import-annotations windows; a finished import reloads the project.
    fn exchange_windows(&mut self, ctx: &egui::Context) {
        let project = self.project.as_ref().map(|p| p.path.clone());
        if let exchange_window::ExportAsk::ChooseOutput(format) =
            self.export_window
                .show(ctx, project.as_deref(), &self.categories)
        {
            self.ask(DialogRequest::ExportTo(format));
        }
        if self.import_annotations.poll().is_some() {
            if let Some(project) = &mut self.project {
                if let Err(e) = project.reload() {
                    self.notices.push(Notice {
                        text: e.to_string(),
                        is_error: true,
                    });
                }
                self.categories = project.store().categories().unwrap_or_default();
            }
            self.request_missing_thumbnails();
            if let Some(id) = self.selected.clone() {
                self.select(id);
            } else if let Some(first) = self.project.as_ref().and_then(|p| p.images.first()) {
                let id = first.id.clone();
                self.select(id);
            }
        }
        self.import_annotations.show(ctx);
    }

    /// The shortcut help: the fixed keys, then every configurable action with a button that
    /// takes the next key pressed as its new shortcut (saved in the settings file).
    fn help_window(&mut self, ctx: &egui::Context) {
        if let Some(action) = self.rebinding {
            let typed = ctx.input(|i| {
                i.events.iter().find_map(|e| match e {
                    egui::Event::Key {
                        key,
                        pressed: true,
                        modifiers,
                        ..
                    } => Some(egui::KeyboardShortcut::new(*modifiers, *key)),
                    _ => None,
                })
            });
            if let Some(shortcut) = typed {
                ctx.input_mut(|i| i.events.clear());
                self.rebinding = None;
                let is_escape = shortcut.logical_key == egui::Key::Escape
                    && shortcut.modifiers == egui::Modifiers::NONE;
                if !is_escape {
                    let result = keymap::parse(&keymap::format(&shortcut))
                        .and_then(|k| self.keymap.rebind(action, k));
                    match result {
                        Ok(()) => {
                            self.settings.keys = self.keymap.overrides();
                            self.save_settings();
                        }
                        Err(e) => self.notify_error(format!("shortcut not changed: {e}")),
                    }
                }
            }
        }
        let mut open = true;
        let mut reset = false;
        egui::Window::new("Shortcuts")
            .open(&mut open)
            .collapsible(false)
            .show(ctx, |ui| {
                egui::Grid::new("shortcuts").striped(true).show(ui, |ui| {
                    for (keys, what) in keymap::FIXED {
                        ui.monospace(*keys);
                        ui.label(*what);
                        ui.end_row();
                    }
                    for action in keymap::Action::ALL {
                        let text = if self.rebinding == Some(action) {
                            "press a key (Escape: keep)".to_owned()
                        } else {
                            self.keymap.label(action)
                        };
                        if ui
                            .button(egui::RichText::new(text).monospace())
                            .on_hover_text("click, then press the new key")
                            .clicked()
                        {
                            self.rebinding = Some(action);
                        }
                        ui.label(action.describe());
                        ui.end_row();
                    }
                });
                if ui.button("Restore the default keys").clicked() {
                    reset = true;
                }
            });
        if reset {
            self.keymap = keymap::Keymap::default();
            self.settings.keys.clear();
            self.save_settings();
        }
        self.show_help = open;
        if !open {
            self.rebinding = None;
        }
    }
}

/// What the review section offers verdicts on: the image, the selected box, the highlighted
/// question.
fn review_rows<'a>(
    image: &'a crate::dataset::ImageRecord,
    detail: &'a ImageDetail,
    selected_box: Option<crate::dataset::RegionId>,
    highlighted: Option<QuestionId>,
) -> Vec<ui::review_bar::ReviewRow<'a>> {
    use crate::dataset::ReviewTarget;
    let mut rows = vec![ui::review_bar::ReviewRow {
        target: ReviewTarget::Image(image.id.clone()),
        title: "Image".into(),
        current: image.review.as_ref(),
    }];
    if let Some((n, r)) =
        selected_box.and_then(|id| detail.regions.iter().enumerate().find(|(_, r)| r.id == id))
    {
        rows.push(ui::review_bar::ReviewRow {
            target: ReviewTarget::Region(r.id),
            title: format!("Box #{} {}", n + 1, r.label),
            current: r.review.as_ref(),
        });
    }
    if let Some(q) = highlighted.and_then(|id| detail.questions.iter().find(|q| q.id == id)) {
        let text: String = q.text.chars().take(40).collect();
        rows.push(ui::review_bar::ReviewRow {
            target: ReviewTarget::Question(q.id),
            title: format!("Question '{text}'"),
            current: q.review.as_ref(),
        });
    }
    rows
}

/// The sandbox settings for this app: its data folder, and the launcher binary.
fn sandbox_config(config: &AppConfig) -> Option<crate::sandbox::SandboxConfig> {
    let mut cfg = crate::sandbox::SandboxConfig::for_app(&config.dirs).ok()?;
    if let Some(l) = &config.launcher {
        cfg.launcher = l.clone();
    }
    Some(cfg)
}

fn placeholder(ui: &mut egui::Ui, title: &str, text: &str) {
    egui::CentralPanel::default().show(ui, |ui| {
        ui.heading(title);
        ui.label(text);
    });
}
