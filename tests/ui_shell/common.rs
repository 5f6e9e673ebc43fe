//! What every workspace's UI test shares: the app under a test folder with scripted dialogs,
//! the harness, stepping until background work is done, and finding fields, combos and points.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use thyme_studio::app::dialogs::{DialogRequest, Dialogs};
use thyme_studio::app::{AppConfig, StudioApp};
use thyme_studio::imagery::PixelBudget;
use thyme_studio::paths::AppDirs;

/// Dialog answers scripted by the test.
pub struct Scripted(Mutex<Vec<Vec<PathBuf>>>);

impl Dialogs for Scripted {
    fn pick(&self, _request: DialogRequest) -> Option<Vec<PathBuf>> {
        self.0.lock().unwrap().pop()
    }
}

pub fn app_with(
    project: Option<PathBuf>,
    root: &std::path::Path,
    answers: Vec<Vec<PathBuf>>,
) -> StudioApp {
    // The getting-started guide has been seen (its own test starts without this).
    let settings = AppDirs::under(root.to_owned()).settings_file();
    if !settings.exists() {
        std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
        std::fs::write(&settings, r#"{"welcome_seen": true}"#).unwrap();
    }
    app_first_run(project, root, answers)
}

pub fn app_first_run(
    project: Option<PathBuf>,
    root: &std::path::Path,
    answers: Vec<Vec<PathBuf>>,
) -> StudioApp {
    // The app's folders are the test's own, except the sandbox runtime, which is shared (set up
    // once by scripts/test) rather than made again for every test.
    let dirs = AppDirs::under(root.to_owned());
    let shared = AppDirs::for_user().sandbox_runtime();
    let own = dirs.sandbox_runtime();
    if shared.exists() && !own.exists() {
        std::fs::create_dir_all(own.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&shared, &own).unwrap();
    }
    StudioApp::new(config_under(root, project, answers))
}

/// The app's configuration with every folder under `root`.
pub fn config_under(
    root: &std::path::Path,
    project: Option<PathBuf>,
    answers: Vec<Vec<PathBuf>>,
) -> AppConfig {
    AppConfig {
        project,
        dirs: AppDirs::under(root.to_owned()),
        dialogs: Arc::new(Scripted(Mutex::new(answers))),
        budget: PixelBudget::DEFAULT,
        demo_scale: 16,
        trace: None,
        launcher: Some(PathBuf::from(env!("CARGO_BIN_EXE_thyme-studio"))),
    }
}

pub fn harness(app: StudioApp) -> Harness<'static, StudioApp> {
    Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(|ui, app: &mut StudioApp| app.show(ui), app)
}

/// Click an image in the list (its name also heads the canvas when it is selected).
pub fn click_image(h: &Harness<'static, StudioApp>, name: &str) {
    h.query_all_by_label(name)
        .next()
        .unwrap_or_else(|| panic!("{name} not shown"))
        .click();
}

/// The app on a freshly made (small) demo project, its first image open.
pub fn demo_harness(root: &std::path::Path) -> Harness<'static, StudioApp> {
    let mut h = harness(app_with(None, root, vec![]));
    wait_for_demo(&mut h);
    h.run_steps(2);
    h
}

/// Step frames until the demo project (three scenes) is open.
pub fn wait_for_demo(h: &mut Harness<'static, StudioApp>) {
    step_until(h, "the demo project", |h| {
        h.state()
            .session
            .project
            .as_ref()
            .is_some_and(|p| p.images.len() == 3)
    });
}

/// Step frames until `done` holds (background threads need real time; the limit is generous
/// because a loaded 2-core CI machine decodes the tiny model's 2048-token segment slowly).
pub fn step_until(
    h: &mut Harness<'static, StudioApp>,
    what: &str,
    done: impl Fn(&Harness<'static, StudioApp>) -> bool,
) {
    let start = Instant::now();
    while !done(h) {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "timed out waiting for {what}"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.run_steps(2);
}

pub fn image_point(
    h: &Harness<'static, StudioApp>,
    canvas: egui::Rect,
    p: egui::Pos2,
) -> (f64, f64) {
    h.state()
        .annotate
        .canvas
        .view()
        .unwrap()
        .to_image(canvas, p)
}

/// Wait until the project's image is on the canvas; its screen rectangle and view.
pub fn image_shown(
    h: &mut Harness<'static, StudioApp>,
) -> (egui::Rect, thyme_studio::ui::canvas::View) {
    step_until(h, "the image", |h| {
        !h.state().busy() && h.state().annotate.canvas.view().is_some()
    });
    (
        h.get_by_label("image canvas").rect(),
        h.state().annotate.canvas.view().unwrap(),
    )
}

/// A primary click at a screen point, as press and release frames.
pub fn click_at(h: &mut Harness<'static, StudioApp>, p: egui::Pos2) {
    h.hover_at(p);
    h.run_steps(1);
    h.event(button(p, egui::PointerButton::Primary, true));
    h.run_steps(1);
    h.event(button(p, egui::PointerButton::Primary, false));
    h.run_steps(1);
}

pub fn button(pos: egui::Pos2, button: egui::PointerButton, pressed: bool) -> egui::Event {
    egui::Event::PointerButton {
        pos,
        button,
        pressed,
        modifiers: egui::Modifiers::NONE,
    }
}

/// The boxes of the project's only image, read through a second connection.
pub fn stored_boxes(project: &std::path::Path) -> Vec<thyme_studio::geometry::ImageRect> {
    use thyme_studio::store::Store;
    let store = thyme_studio::store::SqliteStore::open(project).unwrap();
    let image = store.images().unwrap().remove(0);
    store
        .regions(&image.id)
        .unwrap()
        .into_iter()
        .map(|r| r.rect)
        .collect()
}

/// The labels of the project's only image's boxes.
pub fn stored_labels(project: &std::path::Path) -> Vec<String> {
    use thyme_studio::store::Store;
    let store = thyme_studio::store::SqliteStore::open(project).unwrap();
    let image = store.images().unwrap().remove(0);
    store
        .regions(&image.id)
        .unwrap()
        .into_iter()
        .map(|r| r.label)
        .collect()
}

/// A project with one 3000 x 2000 image.
pub fn one_image_project(root: &std::path::Path) -> PathBuf {
    let project = root.join("p.thyme");
    drop(thyme_studio::store::SqliteStore::create(&project).unwrap());
    let src = root.join("street.png");
    image::RgbImage::from_fn(3000, 2000, |x, y| {
        image::Rgb([(x / 12) as u8, (y / 8) as u8, 90])
    })
    .save(&src)
    .unwrap();
    let mut store = thyme_studio::store::SqliteStore::open(&project).unwrap();
    let cancel = std::sync::atomic::AtomicBool::new(false);
    thyme_studio::import::import(
        &mut store,
        &[src],
        &Default::default(),
        &cancel,
        &mut |_| {},
    )
    .unwrap();
    project
}

/// The text field labelled `label` (the label itself is a node with the same name).
pub fn text_field<'a>(
    h: &'a Harness<'static, StudioApp>,
    label: &'a str,
) -> egui_kittest::Node<'a> {
    use egui::accesskit::Role;
    h.query_all_by_label(label)
        .find(|n| {
            matches!(
                n.accesskit_node().role(),
                Role::TextInput | Role::MultilineTextInput
            )
        })
        .unwrap_or_else(|| panic!("no text field labelled {label}"))
}

/// The combo box labelled `label` (not the label itself).
pub fn combo<'a>(h: &'a Harness<'static, StudioApp>, label: &'a str) -> egui_kittest::Node<'a> {
    use egui::accesskit::Role;
    h.query_all_by_label(label)
        .find(|n| n.accesskit_node().role() != Role::Label)
        .unwrap_or_else(|| panic!("no combo box labelled {label}"))
}
