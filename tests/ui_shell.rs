//! The app shell driven through its accessibility tree: tabs, image list, QA pairs, import.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use thyme_studio::app::dialogs::{DialogRequest, Dialogs};
use thyme_studio::app::{AppConfig, StudioApp, Workspace};
use thyme_studio::imagery::PixelBudget;
use thyme_studio::paths::AppDirs;

/// Dialog answers scripted by the test.
struct Scripted(Mutex<Vec<Vec<PathBuf>>>);

impl Dialogs for Scripted {
    fn pick(&self, _request: DialogRequest) -> Option<Vec<PathBuf>> {
        self.0.lock().unwrap().pop()
    }
}

fn app_with(
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

fn app_first_run(
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
fn config_under(
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

fn harness(app: StudioApp) -> Harness<'static, StudioApp> {
    Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(|ui, app: &mut StudioApp| app.show(ui), app)
}

/// Click an image in the list (its name also heads the canvas when it is selected).
fn click_image(h: &Harness<'static, StudioApp>, name: &str) {
    h.query_all_by_label(name)
        .next()
        .unwrap_or_else(|| panic!("{name} not shown"))
        .click();
}

/// The app on a freshly made (small) demo project, its first image open.
fn demo_harness(root: &std::path::Path) -> Harness<'static, StudioApp> {
    let mut h = harness(app_with(None, root, vec![]));
    wait_for_demo(&mut h);
    h.run_steps(2);
    h
}

/// Step frames until the demo project (three scenes) is open.
fn wait_for_demo(h: &mut Harness<'static, StudioApp>) {
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
fn step_until(
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

#[test]
fn first_run_builds_the_demo_and_shows_an_image_with_its_questions() {
    let root = tempfile::tempdir().unwrap();
    let mut h = harness(app_with(None, root.path(), vec![]));
    wait_for_demo(&mut h);
    // Switch tabs and back.
    h.get_by_label("Inspect").click();
    h.run_steps(2);
    assert_eq!(h.state().workspace, Workspace::Inspect);
    assert!(h.query_by_label_contains("Open an agent trace").is_some());
    h.get_by_label("Annotate").click();
    h.run_steps(2);
    assert_eq!(h.state().workspace, Workspace::Annotate);

    // Select the plaza image and see its questions and answers.
    click_image(&h, "plaza-375x250.jpg");
    h.run_steps(2);
    assert!(h.state().session.selected.is_some());
    assert!(
        h.query_by_label("What is written on the small sign with the red border?")
            .is_some()
    );
    assert!(h.query_all_by_label_contains("Answer: ").next().is_some());
    assert!(
        h.query_by_label("How many small magenta diamonds are there in the image?")
            .is_some()
    );
    assert!(h.query_all_by_label_contains("(correct)").count() >= 4);
    // The fitted view arrives from the background thread.
    step_until(&mut h, "the preview", |h| !h.state().busy());
    assert!(h.query_by_label("image canvas").is_some());
}

#[test]
fn import_folder_from_the_menu_runs_in_the_background_and_reports() {
    let root = tempfile::tempdir().unwrap();
    let project = root.path().join("p.thyme");
    drop(thyme_studio::store::SqliteStore::create(&project).unwrap());
    let images = root.path().join("in");
    std::fs::create_dir_all(&images).unwrap();
    image::RgbImage::from_fn(2500, 400, |x, y| image::Rgb([x as u8, y as u8, 1]))
        .save(images.join("wide.png"))
        .unwrap();
    std::fs::write(images.join("broken.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();

    let mut h = harness(app_with(Some(project), root.path(), vec![vec![images]]));
    h.run_steps(2);
    assert!(h.query_by_label_contains("No images yet").is_some());
    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label("Import folder...").click();
    step_until(&mut h, "the import", |h| h.state().last_report.is_some());
    let report = h.state().last_report.clone().unwrap();
    assert_eq!(report.added(), 1);
    assert_eq!(report.skipped().count(), 1);
    assert!(h.query_all_by_label("wide.png").next().is_some());
    assert!(
        h.query_by_label_contains("Added 1 image(s), skipped 1")
            .is_some()
    );
    h.get_by_label("Close").click();
    h.run_steps(2);
    assert!(h.state().last_report.is_none());
}

#[test]
fn a_bad_project_file_gives_a_message_and_no_crash() {
    let root = tempfile::tempdir().unwrap();
    let bad = root.path().join("bad.thyme");
    std::fs::write(&bad, vec![0u8; 2048]).unwrap();
    let mut h = harness(app_with(Some(bad), root.path(), vec![]));
    h.run_steps(2);
    assert!(h.state().session.project.is_none());
    assert!(h.query_by_label_contains("bad.thyme").is_some());
    h.get_by_label("Dismiss").click();
    h.run_steps(2);
    assert!(h.state().notices.is_empty());
}

#[test]
fn annotate_workspace_snapshot() {
    let root = tempfile::tempdir().unwrap();
    let mut h = harness(app_with(None, root.path(), vec![]));
    step_until(&mut h, "the demo project", |h| {
        h.state().session.project.is_some()
    });
    click_image(&h, "harbour-375x250.jpg");
    h.run_steps(2);
    h.get_by_label("What is written on the small sign with the red border?")
        .click();
    step_until(&mut h, "the preview", |h| !h.state().busy());
    h.snapshot("annotate_harbour");
}

/// A file dropped on the window, as the windowing layer would report it.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn dropping_a_folder_on_the_window_imports_it() {
    let root = tempfile::tempdir().unwrap();
    let project = root.path().join("p.thyme");
    drop(thyme_studio::store::SqliteStore::create(&project).unwrap());
    let folder = root.path().join("dropped");
    std::fs::create_dir_all(&folder).unwrap();
    image::RgbImage::from_fn(3000, 500, |x, _| image::Rgb([x as u8, 0, 0]))
        .save(folder.join("drop.png"))
        .unwrap();
    let mut h = harness(app_with(Some(project), root.path(), vec![]));
    h.run_steps(1);
    h.input_mut().dropped_files.push(Arc::new(Dropped(folder)));
    step_until(&mut h, "the import", |h| h.state().last_report.is_some());
    assert_eq!(h.state().last_report.as_ref().unwrap().added(), 1);
    assert!(h.query_all_by_label("drop.png").next().is_some());
}

#[test]
fn the_canvas_zooms_pans_and_fits_from_pointer_and_keyboard() {
    let root = tempfile::tempdir().unwrap();
    let mut h = harness(app_with(None, root.path(), vec![]));
    step_until(&mut h, "the demo project", |h| {
        h.state().session.project.is_some()
    });
    click_image(&h, "metropolis-750x500.jpg");
    step_until(&mut h, "the tiles", |h| !h.state().busy());
    // Fitted: the whole image is visible.
    let vis = h.state().annotate.canvas.visible().unwrap();
    assert_eq!((vis.x0, vis.y0), (0.0, 0.0));
    assert!(
        (vis.x1 - 750.0).abs() < 1e-3 && (vis.y1 - 500.0).abs() < 1e-3,
        "{vis:?}"
    );

    let canvas = h.get_by_label("image canvas").rect();
    let center = canvas.center();
    // "1" = 100 %: one image pixel per screen point, centred where it was.
    h.hover_at(center);
    h.run_steps(1);
    h.key_press(egui::Key::Num1);
    h.run_steps(2);
    let view = h.state().annotate.canvas.view().unwrap();
    assert!((view.zoom - 1.0).abs() < 1e-9);
    let vis = h.state().annotate.canvas.visible().unwrap();
    assert!(
        (vis.width() - f64::from(canvas.width())).abs() < 1.0,
        "{vis:?} in {canvas:?}"
    );

    // The wheel zooms about the pointer: the image point under it stays put.
    let anchor = center + egui::vec2(120.0, -80.0);
    h.hover_at(anchor);
    h.run_steps(1);
    let before = image_point(&h, canvas, anchor);
    h.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Line,
        delta: egui::vec2(0.0, 3.0),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Unknown,
        modifiers: egui::Modifiers::NONE,
    });
    h.run_steps(2);
    let zoom = h.state().annotate.canvas.view().unwrap().zoom;
    assert!((zoom - 1.25f64.powi(3)).abs() < 1e-6, "zoom {zoom}");
    let after = image_point(&h, canvas, anchor);
    assert!((before.0 - after.0).abs() < 0.01 && (before.1 - after.1).abs() < 0.01);

    // Dragging with the middle button pans (the primary button draws boxes in Annotate).
    let center_before = h.state().annotate.canvas.view().unwrap().center;
    let to = anchor + egui::vec2(-100.0, -50.0);
    h.event(button(anchor, egui::PointerButton::Middle, true));
    h.run_steps(1);
    h.hover_at(anchor + egui::vec2(-50.0, -25.0));
    h.run_steps(1);
    h.hover_at(to);
    h.run_steps(1);
    h.event(button(to, egui::PointerButton::Middle, false));
    h.run_steps(2);
    let center_after = h.state().annotate.canvas.view().unwrap().center;
    assert!(
        (center_after.0 - center_before.0 - 100.0 / zoom).abs() < 0.5,
        "{center_before:?} -> {center_after:?}"
    );
    assert!((center_after.1 - center_before.1 - 50.0 / zoom).abs() < 0.5);

    // "0" fits again (the pointer is back over the canvas).
    h.hover_at(center);
    h.run_steps(1);
    h.key_press(egui::Key::Num0);
    h.run_steps(2);
    let vis = h.state().annotate.canvas.visible().unwrap();
    assert!(
        (vis.x1 - 750.0).abs() < 1e-3 && vis.x0 == 0.0,
        "{vis:?} {:?}",
        h.state().annotate.canvas.view()
    );
    // The pixel grid and native pixels need tiles; everything was drawn at its level.
    step_until(&mut h, "settled tiles", |h| {
        h.state().annotate.canvas.settled()
    });
}

fn image_point(h: &Harness<'static, StudioApp>, canvas: egui::Rect, p: egui::Pos2) -> (f64, f64) {
    h.state()
        .annotate
        .canvas
        .view()
        .unwrap()
        .to_image(canvas, p)
}

/// Wait until the project's image is on the canvas; its screen rectangle and view.
fn image_shown(
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
fn click_at(h: &mut Harness<'static, StudioApp>, p: egui::Pos2) {
    h.hover_at(p);
    h.run_steps(1);
    h.event(button(p, egui::PointerButton::Primary, true));
    h.run_steps(1);
    h.event(button(p, egui::PointerButton::Primary, false));
    h.run_steps(1);
}

fn button(pos: egui::Pos2, button: egui::PointerButton, pressed: bool) -> egui::Event {
    egui::Event::PointerButton {
        pos,
        button,
        pressed,
        modifiers: egui::Modifiers::NONE,
    }
}

/// The boxes of the project's only image, read through a second connection.
fn stored_boxes(project: &std::path::Path) -> Vec<thyme_studio::geometry::ImageRect> {
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
fn stored_labels(project: &std::path::Path) -> Vec<String> {
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
fn one_image_project(root: &std::path::Path) -> PathBuf {
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

#[test]
fn a_rebound_key_draws_a_box_by_two_clicks_and_the_model_eye_view_flags_it() {
    let root = tempfile::tempdir().unwrap();
    let project = one_image_project(root.path());
    // The user moved two-click drawing from N to B in an earlier session.
    let settings = AppDirs::under(root.path().to_owned()).settings_file();
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(
        &settings,
        r#"{"recent": [], "keys": {"draw_two_clicks": "B"}, "welcome_seen": true}"#,
    )
    .unwrap();
    let mut h = harness(app_with(Some(project.clone()), root.path(), vec![]));
    let (canvas, view) = image_shown(&mut h);
    let a = view.to_screen(canvas, (1000.0, 1000.0));
    let b = view.to_screen(canvas, (1040.0, 1020.0));

    // N is no longer the key: a click only selects (nothing).
    h.hover_at(a);
    h.run_steps(1);
    h.key_press(egui::Key::N);
    h.run_steps(1);
    assert!(h.state().annotate.editor.two_click.is_none());
    h.key_press(egui::Key::B);
    h.run_steps(1);
    assert!(
        h.query_by_label_contains("click the first corner")
            .is_some()
    );
    click_at(&mut h, a);
    h.run_steps(1);
    assert!(
        h.query_by_label_contains("click the opposite corner")
            .is_some()
    );
    h.hover_at(b);
    h.run_steps(1);
    assert!(
        stored_boxes(&project).is_empty(),
        "nothing saved mid-gesture"
    );
    click_at(&mut h, b);
    h.run_steps(2);
    let boxes = stored_boxes(&project);
    assert_eq!(boxes.len(), 1, "the second click saves the box");
    let tol = 1.0 / view.zoom + 1.0;
    let r = boxes[0];
    assert!(
        (r.x0 - 1000.0).abs() <= tol && (r.x1 - 1040.0).abs() <= tol,
        "{r:?}"
    );
    assert!(
        (r.y0 - 1000.0).abs() <= tol && (r.y1 - 1020.0).abs() <= tol,
        "{r:?}"
    );

    // The model sees a 3000 x 2000 image at 1,003,520 px as 1204 x 812: a 40 x 20 px box
    // shrinks to about 16 x 8, below one patch.
    h.state_mut().annotate.max_pixels = 1_003_520;
    // The new box's label field has the keyboard; Escape leaves it.
    h.key_press(egui::Key::Escape);
    h.run_steps(1);
    h.key_press(egui::Key::M);
    h.run_steps(1);
    assert!(h.state().annotate.model_eye.open);
    step_until(&mut h, "the model-eye picture", |h| !h.state().busy());
    assert!(
        h.query_by_label_contains("3000x2000 becomes 1204x812")
            .is_some(),
        "the header names both sizes"
    );
    assert!(
        h.query_by_label_contains("1 of 1 boxes are below one 28 px patch")
            .is_some()
    );
}

#[test]
fn drawing_a_box_saves_it_and_keys_move_undo_redo_and_delete_it() {
    let root = tempfile::tempdir().unwrap();
    let project = one_image_project(root.path());
    let mut h = harness(app_with(Some(project.clone()), root.path(), vec![]));
    let (canvas, view) = image_shown(&mut h);
    let a = view.to_screen(canvas, (500.0, 400.0));
    let b = view.to_screen(canvas, (800.0, 600.0));

    // Draw by dragging.
    h.hover_at(a);
    h.run_steps(1);
    h.event(button(a, egui::PointerButton::Primary, true));
    h.run_steps(1);
    h.hover_at(a + (b - a) * 0.5);
    h.run_steps(1);
    h.hover_at(b);
    h.run_steps(1);
    h.event(button(b, egui::PointerButton::Primary, false));
    h.run_steps(2);
    let boxes = stored_boxes(&project);
    assert_eq!(boxes.len(), 1, "the drawn box is in the project file");
    let r = boxes[0];
    let tol = 1.0 / view.zoom + 1.0;
    assert!(
        (r.x0 - 500.0).abs() <= tol && (r.y0 - 400.0).abs() <= tol,
        "{r:?}"
    );
    assert!(
        (r.x1 - 800.0).abs() <= tol && (r.y1 - 600.0).abs() <= tol,
        "{r:?}"
    );
    assert_eq!(r, r.snapped(), "edges snap to whole pixels");
    assert!(
        h.state().annotate.editor.selected.is_some(),
        "the new box is selected"
    );
    assert!(h.query_by_label_contains("edit(s) saved").is_some());

    // The keyboard is in the new box's label field: type it, Enter saves it.
    h.run_steps(1);
    h.event(egui::Event::Text("sign".into()));
    h.run_steps(1);
    h.key_press(egui::Key::Enter);
    h.run_steps(2);
    assert_eq!(stored_labels(&project), vec!["sign".to_owned()]);
    let r = stored_boxes(&project)[0];

    // The arrow key moves it by one pixel, Shift+arrow by ten.
    h.key_press(egui::Key::ArrowRight);
    h.run_steps(1);
    assert_eq!(stored_boxes(&project)[0].x0, r.x0 + 1.0);
    h.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::ArrowDown);
    h.run_steps(1);
    assert_eq!(stored_boxes(&project)[0].y0, r.y0 + 10.0);

    // Undo twice, redo once.
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    h.run_steps(1);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    h.run_steps(1);
    assert_eq!(stored_boxes(&project)[0], r);
    h.key_press_modifiers(
        egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
        egui::Key::Z,
    );
    h.run_steps(1);
    assert_eq!(stored_boxes(&project)[0].x0, r.x0 + 1.0);

    // Delete removes it; undo brings it back.
    h.key_press(egui::Key::Delete);
    h.run_steps(1);
    assert!(stored_boxes(&project).is_empty());
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    h.run_steps(1);
    assert_eq!(stored_boxes(&project).len(), 1);
}

#[test]
fn duplicate_edge_keys_tab_paging_and_help() {
    let root = tempfile::tempdir().unwrap();
    let mut h = demo_harness(root.path());
    let first = h.state().session.selected.clone().unwrap();
    let project = h.state().session.project.as_ref().unwrap().path.clone();
    let boxes_of = |id: &thyme_studio::dataset::ImageId| {
        use thyme_studio::store::Store;
        thyme_studio::store::SqliteStore::open(&project)
            .unwrap()
            .regions(id)
            .unwrap()
    };
    let before = boxes_of(&first).len();

    // Tab selects the first box; Ctrl+D duplicates it; Alt+Right grows the copy's right edge.
    h.key_press(egui::Key::Tab);
    h.run_steps(1);
    let picked = h.state().annotate.editor.selected.unwrap();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::D);
    h.run_steps(1);
    let after = boxes_of(&first);
    assert_eq!(after.len(), before + 1);
    let copy_id = h.state().annotate.editor.selected.unwrap();
    assert_ne!(copy_id, picked);
    let copy = after.iter().find(|r| r.id == copy_id).unwrap().rect;
    h.key_press_modifiers(egui::Modifiers::ALT, egui::Key::ArrowRight);
    h.run_steps(1);
    let grown = boxes_of(&first)
        .into_iter()
        .find(|r| r.id == copy_id)
        .unwrap()
        .rect;
    assert_eq!((grown.x0, grown.x1), (copy.x0, copy.x1 + 1.0));
    // Shift+Tab goes back to the previous box.
    h.key_press(egui::Key::Escape);
    h.run_steps(1);
    assert!(h.state().annotate.editor.selected.is_none());

    // PageDown opens the next image; PageUp comes back.
    h.key_press(egui::Key::PageDown);
    h.run_steps(1);
    assert_ne!(h.state().session.selected.as_ref(), Some(&first));
    h.key_press(egui::Key::PageUp);
    h.run_steps(1);
    assert_eq!(h.state().session.selected.as_ref(), Some(&first));

    // "?" shows the shortcuts.
    h.key_press(egui::Key::Questionmark);
    h.run_steps(2);
    assert!(h.query_by_label("Ctrl+D").is_some());
}

/// The text field labelled `label` (the label itself is a node with the same name).
fn text_field<'a>(h: &'a Harness<'static, StudioApp>, label: &'a str) -> egui_kittest::Node<'a> {
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

#[test]
fn writing_a_question_and_answer_saves_them_and_undo_takes_them_back() {
    use thyme_studio::store::Store;
    let root = tempfile::tempdir().unwrap();
    let mut h = demo_harness(root.path());
    let project = h.state().session.project.as_ref().unwrap().path.clone();
    let image = h.state().session.selected.clone().unwrap();
    let questions = |p: &std::path::Path| {
        thyme_studio::store::SqliteStore::open(p)
            .unwrap()
            .questions(&image)
            .unwrap()
    };
    let before = questions(&project).len();

    // Select a box, add a question linked to it.
    h.key_press(egui::Key::Tab);
    h.run_steps(1);
    let the_box = h.state().annotate.editor.selected.unwrap();
    // The box's crop preview appears above the questions when its tiles are read; wait for
    // it so the button does not move between finding it and clicking it.
    step_until(&mut h, "the crop preview", |h| {
        h.query_by_label("crop preview").is_some()
    });
    h.get_by_label("Add question").click();
    h.run_steps(2);
    let added = questions(&project);
    assert_eq!(added.len(), before + 1);
    let new = added.iter().find(|q| q.text.is_empty()).unwrap().clone();
    assert_eq!(new.regions, vec![the_box]);

    // Type the question; it is saved when the field is left.
    let field = text_field(&h, "Question");
    field.focus();
    h.run_steps(1);
    text_field(&h, "Question").type_text("What is written");
    h.run_steps(1);
    // Saved a moment after the last keystroke, while the field still has the keyboard.
    std::thread::sleep(thyme_studio::app::autosave::QUIET + Duration::from_millis(200));
    step_until(&mut h, "the typed text saved", |_| {
        questions(&project)
            .iter()
            .any(|q| q.id == new.id && q.text == "What is written")
    });
    text_field(&h, "Question").type_text(" on the tiny sign?");
    h.run_steps(1);
    h.key_press(egui::Key::Escape);
    h.run_steps(2);
    let saved = questions(&project)
        .into_iter()
        .find(|q| q.id == new.id)
        .unwrap();
    assert_eq!(saved.text, "What is written on the tiny sign?");

    // The answer, then the inline rule check disappears.
    assert!(h.query_by_label("the answer is empty").is_some());
    text_field(&h, "Answer").focus();
    h.run_steps(1);
    text_field(&h, "Answer").type_text("K7Q");
    h.key_press(egui::Key::Escape);
    h.run_steps(2);
    let saved = questions(&project)
        .into_iter()
        .find(|q| q.id == new.id)
        .unwrap();
    assert_eq!(saved.answer.solution(), "K7Q");
    assert!(h.query_by_label("the answer is empty").is_none());

    // Undo takes the answer back.
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    h.run_steps(2);
    let undone = questions(&project)
        .into_iter()
        .find(|q| q.id == new.id)
        .unwrap();
    assert_eq!(undone.answer.solution(), "");
    assert_eq!(undone.text, "What is written on the tiny sign?");
    // One more undo takes back the whole visit to the question field (two saves).
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    h.run_steps(2);
    let undone = questions(&project)
        .into_iter()
        .find(|q| q.id == new.id)
        .unwrap();
    assert_eq!(undone.text, "");
}

#[test]
fn a_selected_box_shows_its_crop_takes_a_label_and_enter_opens_its_question() {
    use thyme_studio::store::Store;
    let root = tempfile::tempdir().unwrap();
    let mut h = demo_harness(root.path());
    let project = h.state().session.project.as_ref().unwrap().path.clone();
    h.key_press(egui::Key::Tab);
    h.run_steps(1);
    let the_box = h.state().annotate.editor.selected.unwrap();
    // The crop the sandbox would make, at 2x, appears once its tiles are loaded.
    step_until(&mut h, "the crop preview", |h| {
        h.query_by_label("crop preview").is_some()
    });
    assert!(h.query_by_label_contains("sandbox crop").is_some());

    // Rename the box.
    text_field(&h, "Box label").focus();
    h.run_steps(1);
    text_field(&h, "Box label").type_text(" (checked)");
    h.key_press(egui::Key::Escape);
    h.run_steps(2);
    let stored = thyme_studio::store::SqliteStore::open(&project)
        .unwrap()
        .region(the_box)
        .unwrap()
        .unwrap();
    assert!(stored.label.ends_with(" (checked)"), "{}", stored.label);

    // Enter opens the question about the box, with the keyboard in its text.
    h.hover_at(h.get_by_label("image canvas").rect().center());
    h.run_steps(1);
    h.key_press(egui::Key::Enter);
    h.run_steps(2);
    assert_eq!(
        h.state().annotate.editor.selected,
        Some(the_box),
        "Escape in a field keeps the box"
    );
    let draft = h
        .state()
        .annotate
        .draft
        .clone()
        .expect("a question is open");
    assert!(draft.regions.contains(&the_box));
    assert!(h.query_all_by_label("Question").any(|n| n.is_focused()));
}

#[test]
fn marking_an_image_done_counts_it_and_the_filter_shows_it() {
    use thyme_studio::store::Store;
    let root = tempfile::tempdir().unwrap();
    let mut h = demo_harness(root.path());
    assert!(h.query_by_label("0 of 3 done").is_some());
    combo(&h, "Status").click();
    h.run_steps(2);
    h.get_by_label("done").click();
    h.run_steps(2);
    assert!(h.query_by_label("1 of 3 done").is_some());
    let project = h.state().session.project.as_ref().unwrap().path.clone();
    let stored = thyme_studio::store::SqliteStore::open(&project)
        .unwrap()
        .images()
        .unwrap();
    assert_eq!(
        stored
            .iter()
            .filter(|i| i.status == thyme_studio::dataset::ImageStatus::Done)
            .count(),
        1
    );
    // Show only the images still to do: the done one leaves the list.
    combo(&h, "Show").click();
    h.run_steps(2);
    h.get_by_label("to do").click();
    h.run_steps(2);
    assert!(
        h.query_by_label("harbour-375x250.jpg").is_some(),
        "only the header names it now"
    );
    assert!(h.query_by_label("plaza-375x250.jpg").is_some());
}

/// The combo box labelled `label` (not the label itself).
fn combo<'a>(h: &'a Harness<'static, StudioApp>, label: &'a str) -> egui_kittest::Node<'a> {
    use egui::accesskit::Role;
    h.query_all_by_label(label)
        .find(|n| n.accesskit_node().role() != Role::Label)
        .unwrap_or_else(|| panic!("no combo box labelled {label}"))
}

#[test]
fn export_and_import_annotations_from_the_file_menu() {
    let root = tempfile::tempdir().unwrap();
    let project = one_image_project(root.path());
    // A COCO file naming a second image with one box.
    let other = root.path().join("other.png");
    image::RgbImage::new(800, 600).save(&other).unwrap();
    let coco_in = root.path().join("in.json");
    std::fs::write(
        &coco_in,
        serde_json::json!({
            "images": [{"id": 1, "file_name": "other.png", "width": 800, "height": 600}],
            "categories": [{"id": 1, "name": "lamp"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40]}]
        })
        .to_string(),
    )
    .unwrap();
    let out = root.path().join("exports/coco.json");
    // Answers are taken last first: the export's output, then the file to import.
    let mut h = harness(app_with(
        Some(project.clone()),
        root.path(),
        vec![vec![coco_in], vec![out.clone()]],
    ));
    image_shown(&mut h);
    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label("Export...").click();
    h.run_steps(2);
    h.state_mut().export_window.format = thyme_studio::exchange::Format::Coco;
    h.get_by_label("Choose where...").click();
    step_until(&mut h, "the output", |h| {
        h.state().export_window.out.is_some()
    });
    h.query_all_by_label("Export")
        .find(|n| n.accesskit_node().role() == egui::accesskit::Role::Button)
        .expect("the Export button")
        .click();
    step_until(&mut h, "the export", |h| {
        h.state().export_window.result.is_some()
    });
    assert!(
        h.query_by_label_contains("coco: 0 records from 1 images")
            .is_some(),
        "{:?}",
        h.state().export_window.result
    );
    assert!(out.is_file());
    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label("Import annotations...").click();
    step_until(&mut h, "the import", |h| {
        h.state()
            .session
            .project
            .as_ref()
            .is_some_and(|p| p.images.len() == 2)
    });
    assert!(
        h.query_by_label_contains("coco: 1 images added").is_some(),
        "the summary window"
    );
    use thyme_studio::store::Store;
    let store = thyme_studio::store::SqliteStore::open(&project).unwrap();
    assert_eq!(store.stats().unwrap().regions, 1);
}

#[test]
fn inspect_opens_a_run_and_a_click_on_its_crop_shows_the_step_code() {
    use thyme_studio::trace::{Run, Step, StepImage, Trace, TraceImage, io};
    let root = tempfile::tempdir().unwrap();
    let project = one_image_project(root.path());
    let original = root.path().join("street.png");
    let zoom = root.path().join("zoom.png");
    let full = image::open(&original).unwrap().to_rgb8();
    image::imageops::crop_imm(&full, 1000, 800, 400, 300)
        .to_image()
        .save(&zoom)
        .unwrap();
    let generate = |text: &str| Step::Generate {
        text: text.into(),
        stop: None,
        tokens: None,
        ms: None,
        sampling: Default::default(),
        rolled_back: false,
    };
    let trace = Trace::new(
        Run {
            id: "demo-run".into(),
            images: vec![TraceImage::at(&original)],
            question: "What is in the middle?".into(),
            ground_truth: Some("stripes".into()),
            ..Default::default()
        },
        vec![
            generate("<think>Crop the middle.</think><code>...</code>"),
            Step::Execute {
                raw_code: "zoom = Image.open(image_path).crop((1000, 800, 1400, 1100))".into(),
                executed_code: "zoom = Image.open(image_path).crop((1000, 800, 1400, 1100))".into(),
                fixes: vec![],
                stdout: String::new(),
                stderr: String::new(),
                error: None,
                outputs: vec![StepImage {
                    image: TraceImage::at(&zoom),
                    source_rect: Some([1000.0, 800.0, 1400.0, 1100.0]),
                    provenance: Some(thyme_studio::trace::Provenance::Sandbox),
                }],
                text_result: None,
                ms: Some(12.0),
                fed_back: true,
            },
            generate("<think>Stripes.</think> <answer>stripes</answer>"),
            Step::Answer {
                text: "<answer>stripes</answer>".into(),
                extracted: None,
                matches_ground_truth: None,
            },
        ],
    );
    let folder = root.path().join("run");
    io::write_folder(&trace, &folder).unwrap();
    let mut app = app_with(Some(project), root.path(), vec![]);
    app.inspect.open(folder, &egui::Context::default());
    let mut h = harness(app);
    h.state_mut().workspace = Workspace::Inspect;
    step_until(&mut h, "the run", |h| {
        h.state().inspect.trace.is_some() && h.state().inspect.canvas.view().is_some()
    });
    assert!(
        h.query_all_by_label_contains("What is in the middle?")
            .next()
            .is_some()
    );
    h.state_mut().inspect.selected_step = None;
    h.run_steps(1);
    let view = h.state().inspect.canvas.view().unwrap();
    let viewport = h.state().inspect.canvas.viewport();
    let p = view.to_screen(viewport, (1200.0, 950.0));
    click_at(&mut h, p);
    h.run_steps(2);
    assert_eq!(h.state().inspect.selected_step, Some(1));
    assert!(
        h.query_by_label_contains("crop((1000, 800, 1400, 1100))")
            .is_some(),
        "the step's code is shown"
    );
    assert!(h.query_by_label_contains("(sandbox)").is_some());
    // The same run beside itself: the compare window lists both.
    h.state_mut().inspect.compare_with(0);
    h.run_steps(2);
    assert!(h.query_by_label("Compare runs").is_some());
    assert_eq!(
        h.query_all_by_label_contains("correct · answer stripes")
            .count(),
        2
    );
}

#[test]
fn run_steps_a_scripted_run_and_an_edited_code_cell_is_what_runs() {
    let root = tempfile::tempdir().unwrap();
    let mut h = demo_harness(root.path());
    // The selected image's first OCR question with a box.
    let question = {
        let store = thyme_studio::store::SqliteStore::open(
            &h.state().session.project.as_ref().unwrap().path,
        )
        .unwrap();
        use thyme_studio::store::Store;
        let id = h.state().session.selected.clone().unwrap();
        store
            .questions(&id)
            .unwrap()
            .into_iter()
            .find(|q| q.category == "ocr" && !q.regions.is_empty())
            .unwrap()
    };
    h.state_mut().workspace = Workspace::Run;
    h.state_mut().run.question = Some(question.id);
    h.run_steps(2);
    h.get_by_label("Start run").click();
    step_until(&mut h, "the run to start", |h| {
        h.state().run.agent.is_some() && !h.state().run.busy()
    });
    h.get_by_label("Step").click();
    step_until(&mut h, "the model text", |h| {
        !h.state().run.busy() && !h.state().run.code.is_empty()
    });
    assert!(h.query_by_label_contains("Code to run next").is_some());
    // Edit the cell: a different zoom than the script wrote.
    let edited = "img = Image.open(image_path)\nz = img.crop((0, 0, 40, 30)).resize((160, 120))\nz.save('/mnt/data/temp_processed_images/mine.png')\nprint('/mnt/data/temp_processed_images/mine.png')\n";
    h.state_mut().run.code = edited.to_owned();
    h.get_by_label("Step").click();
    step_until(&mut h, "the execution", |h| {
        !h.state().run.busy() && h.state().run.log.iter().any(|l| l.starts_with("sandbox:"))
    });
    h.get_by_label("Run to the end").click();
    step_until(&mut h, "the end of the run", |h| {
        h.state().run.finished.is_some()
    });
    let trace = h.state().run.finished.clone().unwrap();
    let execute = trace
        .steps
        .iter()
        .find_map(|s| match s {
            thyme_studio::trace::Step::Execute {
                raw_code, outputs, ..
            } => Some((raw_code.clone(), outputs.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(execute.0, edited, "the edited code is what ran");
    assert_eq!(execute.1[0].image.width, Some(160));
    assert_eq!(trace.run.outcome, thyme_studio::trace::Outcome::Correct);
    assert!(h.query_by_label_contains("Answer:").is_some());
    // The output is in the transcript with its rectangle on the original, and drawn on the
    // canvas (the live trace's crops are the canvas's overlays).
    let live = h.state().run.live.clone().unwrap();
    // Thyme's crop fix widened the 40 x 30 box to 64 px a side.
    assert_eq!(
        live.crops().first().map(|c| c.1),
        Some([0.0, 0.0, 64.0, 64.0])
    );
    h.run_steps(3);
    assert!(
        h.query_all_by_label_contains("from [0, 0, 64, 64]")
            .next()
            .is_some()
    );
    assert!(
        h.query_all_by_label_contains("output image(s) placed on the original")
            .next()
            .is_some()
    );
    assert!(
        h.query_all_by_label_contains("scripted from the annotation")
            .next()
            .is_some()
    );
    // The finished run opens in Inspect.
    h.get_by_label("Open in Inspect").click();
    step_until(&mut h, "the run in Inspect", |h| {
        h.state().inspect.trace.is_some()
    });
    assert_eq!(h.state().workspace, Workspace::Inspect);
}

#[test]
fn a_typed_question_for_a_chat_server_needs_its_url_and_says_so() {
    let root = tempfile::tempdir().unwrap();
    let mut h = demo_harness(root.path());
    h.state_mut().workspace = Workspace::Run;
    h.run_steps(2);
    h.get_by_label("typed question").click();
    h.get_by_label("chat server").click();
    h.run_steps(2);
    assert!(
        h.query_all_by_label_contains("Base URL").next().is_some(),
        "the server fields appear"
    );
    h.state_mut().run.typed_question = "What does the sign say?".into();
    h.run_steps(2);
    h.get_by_label("Start run").click();
    h.run_steps(2);
    assert!(
        h.query_all_by_label_contains("give the chat server's base URL")
            .next()
            .is_some()
    );
    assert!(h.state().run.agent.is_none());
}

#[test]
fn the_on_device_model_loads_with_its_estimate_and_writes_a_run() {
    let root = tempfile::tempdir().unwrap();
    let model_dir = root.path().join("tiny-model");
    thyme_studio::model::tiny::write_tiny(&model_dir, &Default::default()).unwrap();
    let mut h = demo_harness(root.path());
    h.state_mut().workspace = Workspace::Run;
    h.run_steps(2);
    h.get_by_label("typed question").click();
    h.get_by_label("on-device model").click();
    h.run_steps(2);
    assert!(
        h.query_all_by_label_contains("No model yet")
            .next()
            .is_some(),
        "without a folder the panel says where a model comes from"
    );
    // The folder typed in (as a person would): the app remembers it.
    text_field(&h, "Model folder").focus();
    h.run_steps(1);
    text_field(&h, "Model folder").type_text(&model_dir.display().to_string());
    h.state_mut().run.typed_question = "What is in the picture?".into();
    h.run_steps(2);
    // The estimate is shown before anything loads.
    assert!(
        h.query_all_by_label_contains("in memory on the CPU")
            .next()
            .is_some()
    );
    h.get_by_label("Load model").click();
    step_until(&mut h, "the model to load", |h| {
        h.state().run.loaded_model().is_some() && !h.state().run.busy()
    });
    // The folder is remembered for the next start.
    let saved = thyme_studio::app::settings::Settings::load(
        &AppDirs::under(root.path().to_owned()).settings_file(),
    );
    assert_eq!(saved.model_dir.as_deref(), Some(model_dir.as_path()));
    h.get_by_label("Start run").click();
    step_until(&mut h, "the run to start", |h| {
        h.state().run.agent.is_some() && !h.state().run.busy()
    });
    h.get_by_label("Step").click();
    step_until(&mut h, "the first segment", |h| {
        !h.state().run.busy() && h.state().run.log.len() >= 2
    });
    let live = h.state().run.live.clone().unwrap();
    assert!(
        live.run
            .model
            .as_deref()
            .unwrap()
            .contains("local (tiny-model)"),
        "{:?}",
        live.run.model
    );
    assert!(matches!(
        live.steps.first(),
        Some(thyme_studio::trace::Step::Generate { tokens: Some(n), .. }) if *n > 0
    ));
}

#[test]
fn the_first_start_says_what_is_missing_and_leads_to_it() {
    let root = tempfile::tempdir().unwrap();
    let mut h = harness(app_first_run(None, root.path(), vec![]));
    wait_for_demo(&mut h);
    h.run_steps(2);
    assert!(h.state().guide.open);
    assert!(
        h.query_all_by_label_contains("The demo project is open")
            .next()
            .is_some()
    );
    // No model yet: both ways to get one are offered.
    assert!(h.query_by_label("Choose a model folder...").is_some());
    h.get_by_label("Use a chat server instead").click();
    h.run_steps(2);
    assert_eq!(h.state().workspace, Workspace::Run);
    assert!(!h.state().guide.open);
    assert!(h.query_all_by_label_contains("Base URL").next().is_some());
    // Closing it is remembered: the next start does not show it.
    h.state_mut().guide.open = true;
    h.run_steps(1);
    h.get_by_label("Close window").click();
    h.run_steps(2);
    let saved = thyme_studio::app::settings::Settings::load(
        &AppDirs::under(root.path().to_owned()).settings_file(),
    );
    assert!(saved.welcome_seen);
    drop(h);
    let h = harness(app_first_run(None, root.path(), vec![]));
    assert!(!h.state().guide.open);
}

#[test]
fn with_no_python_the_guide_says_how_to_get_it() {
    let root = tempfile::tempdir().unwrap();
    // No python3 anywhere on PATH (nextest runs each test in its own process).
    // SAFETY: nextest runs this test alone in its process, before the app starts any thread
    // that reads the environment.
    unsafe { std::env::set_var("PATH", root.path().join("empty-path")) };
    // No sandbox runtime either: a root of its own, without the shared runtime's link.
    let mut h = harness(StudioApp::new(config_under(root.path(), None, vec![])));
    wait_for_demo(&mut h);
    h.run_steps(2);
    assert!(
        h.query_all_by_label_contains("sudo apt install python3 python3-venv")
            .next()
            .is_some()
    );
    assert!(h.query_by_label("Set up the sandbox now").is_none());
}

#[test]
fn run_takes_an_image_file_outside_the_project() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("street.png");
    image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([x as u8, y as u8, 60]))
        .save(&file)
        .unwrap();
    let broken = root.path().join("broken.png");
    std::fs::write(&broken, b"not an image").unwrap();
    // The scripted dialog answers from the end of its list.
    let mut h = harness(app_with(
        None,
        root.path(),
        vec![vec![broken], vec![file.clone()]],
    ));
    wait_for_demo(&mut h);
    h.state_mut().workspace = Workspace::Run;
    h.run_steps(2);
    h.get_by_label("Open an image file...").click();
    step_until(&mut h, "the file to open", |h| {
        h.state().run.file_image.is_some()
    });
    h.run_steps(2);
    assert!(h.query_by_label("street.png").is_some());
    assert!(h.query_by_label_contains("not in the project").is_some());
    assert!(
        h.state().run.typed,
        "a file has no QA items: the question is typed"
    );
    let projects_images = h.state().session.project.as_ref().unwrap().images.len();
    assert_eq!(projects_images, 3, "the file was not added to the project");
    h.get_by_label("Back to the project's image").click();
    h.run_steps(2);
    assert!(h.state().run.file_image.is_none());
    // A file that is not an image: a message, nothing replaced.
    h.get_by_label("Open an image file...").click();
    step_until(&mut h, "the message", |h| {
        h.query_all_by_label_contains("broken.png").next().is_some()
    });
    assert!(h.state().run.file_image.is_none());
}

/// A team on a throwaway PostgreSQL: lead "lea", annotator "ann" and `other`; plus the state
/// of a one-image project's image (with a real file) for the test to put on the server.
fn team_with_an_image(
    root: &std::path::Path,
    other: (&str, thyme_studio::team::review::Role),
) -> (
    thyme_studio::team::cluster::LocalCluster,
    String,
    thyme_studio::team::server::TeamServer,
    thyme_studio::team::state::ImageState,
) {
    use thyme_studio::store::Store;
    use thyme_studio::team::review::Role;
    let solo = one_image_project(root);
    let cluster = thyme_studio::team::cluster::LocalCluster::start_new(false)
        .expect("a local PostgreSQL (scripts/test installs it)");
    let url = cluster.create_database("team").unwrap();
    let server = thyme_studio::team::server::TeamServer::init(&url, "lea", 0).unwrap();
    server.add_member("ann", Role::Annotator, 0).unwrap();
    server.add_member(other.0, other.1, 0).unwrap();
    let local = thyme_studio::store::SqliteStore::open(&solo).unwrap();
    let image = local.images().unwrap().remove(0);
    let state = thyme_studio::team::state::ImageState::read(&local, &image.id)
        .unwrap()
        .unwrap();
    (cluster, url, server, state)
}

#[test]
fn a_team_project_syncs_in_the_background_and_a_conflict_is_settled_in_the_team_window() {
    use thyme_studio::dataset::{ImageRecord, Region};
    use thyme_studio::geometry::ImageRect;
    use thyme_studio::store::{Command, Store};
    use thyme_studio::team::client::TeamClient;
    use thyme_studio::team::review::{Role, WorkState};
    use thyme_studio::team::server::{BatchSpec, Selection};

    let root = tempfile::tempdir().unwrap();
    let (_cluster, url, server, state) = team_with_an_image(root.path(), ("rev", Role::Reviewer));
    let image: ImageRecord = state.image.clone();
    server.add_images("lea", &[state], 0).unwrap();
    server
        .create_batch(
            "lea",
            &BatchSpec {
                name: "b".into(),
                selection: Selection::Count(1),
                annotators: vec!["ann".into()],
                lease_ms: 3_600_000,
                double_share: 0.0,
                honeypots_per_annotator: 0,
                seed: 1,
            },
            0,
        )
        .unwrap();
    // ann boxes a car and syncs; the reviewer renames it on the server; ann, not yet synced,
    // renames it too.
    let ann_file = root.path().join("ann.thyme");
    let mut ann = TeamClient::join(&ann_file, &url, "ann").unwrap();
    ann.sync(&server, 1).unwrap();
    let car = Region::new(
        image.id.clone(),
        ImageRect::new(100.0, 100.0, 160.0, 140.0),
        "car",
    );
    ann.store_mut()
        .apply(
            "ann",
            Command::AddRegion {
                region: car.clone(),
                links: vec![],
            },
        )
        .unwrap();
    ann.sync(&server, 2).unwrap();
    let mut truck = car.clone();
    truck.label = "truck".into();
    server
        .push(
            "rev",
            "rev:1",
            &Command::UpdateRegion {
                before: car.clone(),
                after: truck,
            },
            3,
        )
        .unwrap();
    let mut van = car.clone();
    van.label = "van".into();
    ann.store_mut()
        .apply(
            "ann",
            Command::UpdateRegion {
                before: car.clone(),
                after: van.clone(),
            },
        )
        .unwrap();
    drop(ann);

    let mut h = harness(app_with(Some(ann_file), root.path(), vec![]));
    step_until(&mut h, "the first sync to find the conflict", |h| {
        h.query_by_label_contains("1 conflict(s) to settle")
            .is_some()
    });
    // The image list marks the image.
    assert!(
        h.query_by_label_contains("conflict · in progress")
            .is_some()
    );
    h.get_by_label_contains("1 conflict(s) to settle").click();
    h.run_steps(2);
    h.get_by_label("Conflicts (1)").click();
    h.run_steps(2);
    assert!(
        h.query_by_label_contains("server:  1 box(es): truck")
            .is_some()
    );
    assert!(
        h.query_by_label_contains("yours:   1 box(es): van")
            .is_some()
    );
    h.get_by_label("Keep mine").click();
    step_until(&mut h, "the annotator's version on the server", |h| {
        server.store().region(car.id).unwrap().unwrap().label == "van"
            && h.query_by_label_contains("all synced").is_some()
    });
    // Submitting from My work moves the item on the server.
    h.get_by_label_contains("My work").click();
    h.run_steps(2);
    h.get_by_label("Submit").click();
    step_until(&mut h, "the submission", |_| {
        server.assignments_of("ann").unwrap()[0].state == WorkState::Submitted
    });
    step_until(&mut h, "the list to show the state", |h| {
        h.query_by_label_contains("synced · submitted").is_some()
    });
}

#[test]
fn a_lead_deals_a_batch_and_a_verdict_on_a_box_from_the_review_section_reaches_the_server() {
    use thyme_studio::dataset::Region;
    use thyme_studio::geometry::ImageRect;
    use thyme_studio::store::Store;
    use thyme_studio::team::client::TeamClient;
    use thyme_studio::team::review::Role;

    let root = tempfile::tempdir().unwrap();
    let (_cluster, url, server, mut state) =
        team_with_an_image(root.path(), ("bob", Role::Annotator));
    let image = state.image.clone();
    let sign = Region::new(
        image.id.clone(),
        ImageRect::new(200.0, 200.0, 260.0, 240.0),
        "sign",
    );
    state.regions.push(sign.clone());
    server.add_images("lea", &[state], 0).unwrap();
    let lea_file = root.path().join("lea.thyme");
    let mut lea = TeamClient::join(&lea_file, &url, "lea").unwrap();
    lea.sync(&server, 1).unwrap();
    drop(lea);

    // The lead's own file holds the image she added from the command line.
    assert_eq!(
        TeamClient::open(&lea_file)
            .unwrap()
            .store()
            .images()
            .unwrap()
            .len(),
        1
    );
    let mut h = harness(app_with(Some(lea_file), root.path(), vec![]));
    step_until(&mut h, "the first sync", |h| {
        h.query_by_label_contains("team: lea · all synced")
            .is_some()
    });
    h.get_by_label_contains("team: lea · all synced").click();
    h.run_steps(2);
    step_until(&mut h, "the lead's tab", |h| {
        h.query_by_label("Lead").is_some()
    });
    h.get_by_label("Lead").click();
    h.run_steps(2);
    // One annotator with the default double share: refused with the reason.
    h.get_by_label("ann").click();
    h.run_steps(1);
    h.get_by_label("Create batch").click();
    step_until(&mut h, "the refusal", |h| {
        h.query_by_label_contains("double annotation needs at least two annotators")
            .is_some()
    });
    h.get_by_label("bob").click();
    h.run_steps(1);
    h.get_by_label("Create batch").click();
    step_until(&mut h, "the batch on the server", |_| {
        server.assignments_of("ann").unwrap().len() == 1
    });
    step_until(&mut h, "the batch message", |h| {
        h.query_by_label_contains("batch 1: 1 image(s)").is_some()
    });
    // A verdict on the selected box, from the Review section of the Annotate panel (the
    // default reason is the first listed); the sync sends it to the server.
    // Select the box as a click on it would (the canvas's click path has its own tests).
    h.state_mut().annotate.editor.selected = Some(sign.id);
    h.run_steps(1);
    h.get_by_label("Reject box").click();
    step_until(&mut h, "the verdict on the server", |_| {
        server
            .item_verdicts(&image.id, "ann")
            .unwrap()
            .get(&("box".to_owned(), sign.id.0.to_string()))
            .is_some_and(|v| v.is_rejected() && v.reason.as_deref() == Some("box too loose"))
    });
}

/// Issue 17's sequence in the app: the team example, bob's item fixed and accepted on the
/// server, the lead's file synced; File > Export with "Only accepted images" writes exactly
/// the rows the command line's export writes, and they are the accepted image's questions.
#[test]
fn the_export_window_on_a_synced_team_file_writes_the_accepted_rows() {
    use thyme_studio::team::review::ReviewAction;
    use thyme_studio::team::server::{MAIN_LAYER, TeamServer};
    let cluster = thyme_studio::team::cluster::LocalCluster::start_new(false)
        .expect("a local PostgreSQL (scripts/test installs it)");
    let url = cluster.create_database("gui_export").unwrap();
    let root = tempfile::tempdir().unwrap();
    let summary =
        thyme_studio::team::example::write_example(&url, &root.path().join("ex"), 16).unwrap();
    let server = TeamServer::open(&url).unwrap();
    let bobs = server
        .all_assignments()
        .unwrap()
        .into_iter()
        .find(|a| a.layer == MAIN_LAYER && a.annotator.as_deref() == Some("bob"))
        .unwrap();
    let now = thyme_studio::store::now_ms();
    for (who, action) in [
        ("bob", ReviewAction::Fix),
        ("rev", ReviewAction::Open),
        ("rev", ReviewAction::Accept),
    ] {
        server.act(who, &bobs.image, "bob", &action, now).unwrap();
    }
    let lea = summary
        .member_files
        .iter()
        .find(|(w, _)| w == "lea")
        .unwrap()
        .1
        .clone();
    let mut client = thyme_studio::team::client::TeamClient::open(&lea).unwrap();
    client.sync(&server, now).unwrap();
    drop(client);

    let out = root.path().join("gui/rl.jsonl");
    let mut h = harness(app_with(
        Some(lea.clone()),
        root.path(),
        vec![vec![out.clone()]],
    ));
    h.run_steps(2);
    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label("Export...").click();
    h.run_steps(2);
    h.state_mut().export_window.format = thyme_studio::exchange::Format::ThymeRl;
    h.run_steps(1);
    h.get_by_label("Only accepted images (without rejected items)")
        .click();
    h.run_steps(1);
    h.get_by_label("Choose where...").click();
    step_until(&mut h, "the output", |h| {
        h.state().export_window.out.is_some()
    });
    h.query_all_by_label("Export")
        .find(|n| n.accesskit_node().role() == egui::accesskit::Role::Button)
        .expect("the Export button")
        .click();
    step_until(&mut h, "the export", |h| {
        h.state().export_window.result.is_some()
    });
    assert!(
        matches!(h.state().export_window.result, Some(Ok(_))),
        "{:?}",
        h.state().export_window.result
    );

    // The library's export with the same filter, and the accepted image's questions.
    let cli_out = root.path().join("cli/rl.jsonl");
    let mut options =
        thyme_studio::exchange::ExportOptions::new(thyme_studio::exchange::Format::ThymeRl);
    options.filter.accepted_only = true;
    let store = thyme_studio::store::SqliteStore::open(&lea).unwrap();
    thyme_studio::exchange::export(
        &store,
        &options,
        &cli_out,
        &mut |_, _| {},
        &std::sync::atomic::AtomicBool::new(false),
    )
    .unwrap();
    let ids = |p: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let gui = ids(&out);
    assert!(!gui.is_empty());
    assert_eq!(gui, ids(&cli_out));
    use thyme_studio::store::Store;
    let on_image: std::collections::BTreeSet<String> = store
        .questions(&bobs.image)
        .unwrap()
        .iter()
        .map(|q| q.id.to_string())
        .collect();
    assert!(gui.iter().all(|id| on_image.contains(id)));
}

const TYPING_CHILD: &str = "THYME_TYPING_CHILD_ROOT";
const TYPED: &str = "What is written on the small red sign by the harbour wall?";

/// The child's side of the typing crash test: the app on a project with one empty question,
/// typing into the question field with short and long pauses, printing `ACK <text>` each
/// time the app counts a saved edit (what the status bar shows as saved).
#[test]
#[ignore = "helper process for typed_text_shown_as_saved_survives_sigkill"]
fn typing_crash_child() {
    let Ok(root) = std::env::var(TYPING_CHILD) else {
        return;
    };
    let root = PathBuf::from(root);
    let mut h = harness(app_with(Some(root.join("p.thyme")), &root, vec![]));
    image_shown(&mut h);
    h.get_by_label("(new question)").click();
    h.run_steps(2);
    text_field(&h, "Question").focus();
    h.run_steps(1);
    let mut saved = h.state().session.saved_edits;
    let mut typed = String::new();
    let mut ack = |h: &Harness<'static, StudioApp>, typed: &str| {
        if h.state().session.saved_edits > saved {
            saved = h.state().session.saved_edits;
            println!("ACK {typed}");
        }
    };
    for (i, c) in TYPED.chars().enumerate() {
        text_field(&h, "Question").type_text(&c.to_string());
        typed.push(c);
        h.run_steps(1);
        ack(&h, &typed);
        // Mostly quick keystrokes, now and then a pause long enough for the autosave.
        let pause = if i % 7 == 6 { 1000 } else { 60 };
        let until = Instant::now() + Duration::from_millis(pause);
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
            h.step();
            ack(&h, &typed);
        }
    }
    // Keep the process alive (the parent kills it).
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn typed_text_shown_as_saved_survives_sigkill() {
    use std::io::BufRead;
    use thyme_studio::store::Store;
    let exe = std::env::current_exe().unwrap();
    let mut seed = thyme_studio::rng::Rng::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    let mut checked = 0;
    for round in 0..4 {
        let root = tempfile::tempdir().unwrap();
        let project = one_image_project(root.path());
        {
            let mut store = thyme_studio::store::SqliteStore::open(&project).unwrap();
            let image = store.images().unwrap().remove(0);
            let r = thyme_studio::dataset::Region::new(
                image.id.clone(),
                thyme_studio::geometry::ImageRect::new(100.0, 100.0, 180.0, 140.0),
                "sign",
            );
            let q = thyme_studio::dataset::Question::new(
                image.id.clone(),
                vec![r.id],
                "",
                thyme_studio::dataset::Answer::Open { text: "ML4".into() },
                "ocr",
            );
            store
                .apply(
                    "setup",
                    thyme_studio::store::Command::AddRegion {
                        region: r,
                        links: vec![],
                    },
                )
                .unwrap();
            store
                .apply(
                    "setup",
                    thyme_studio::store::Command::AddQuestion { question: q },
                )
                .unwrap();
        }
        let mut child = std::process::Command::new(&exe)
            .args([
                "typing_crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(TYPING_CHILD, root.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let acks = Arc::new(Mutex::new(Vec::<String>::new()));
        let reader = {
            let acks = acks.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(text) = line.strip_prefix("ACK ") {
                        acks.lock().unwrap().push(text.to_owned());
                    }
                }
            })
        };
        let started = Instant::now();
        while acks.lock().unwrap().is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "round {round}: the child never showed a saved edit"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        // Kill mid-typing, at a random moment after the first save.
        std::thread::sleep(Duration::from_millis(u64::from(seed.range(0, 3000))));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        let last = acks.lock().unwrap().last().cloned().unwrap();

        let store = thyme_studio::store::SqliteStore::open(&project).unwrap();
        assert_eq!(store.integrity_check(), Ok(()), "round {round}");
        let image = store.images().unwrap().remove(0);
        let text = store.questions(&image.id).unwrap().remove(0).text;
        // What was shown as saved is there; a later save may be too, never an earlier one.
        assert!(
            TYPED.starts_with(&text) && text.len() >= last.len(),
            "round {round}: shown saved '{last}', found '{text}'"
        );
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn a_thyme_prompt_file_chosen_in_the_menu_is_used_and_remembered() {
    let root = tempfile::tempdir().unwrap();
    let project = one_image_project(root.path());
    let prompt = root.path().join("prompt.txt");
    let text = "You may write code.\n\n    * wrap it in <code> tags.";
    std::fs::write(&prompt, text).unwrap();
    let mut h = harness(app_with(
        Some(project.clone()),
        root.path(),
        vec![vec![prompt]],
    ));
    h.run_steps(2);
    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label("Use a Thyme checkout's prompt file...")
        .click();
    step_until(&mut h, "the prompt in use", |h| {
        h.state().run.profile.system == text
    });
    assert_eq!(h.state().export_window.profile.system, text);
    drop(h);
    // A new start of the app takes the same file.
    let h = harness(app_with(Some(project), root.path(), vec![]));
    assert_eq!(h.state().run.profile.system, text);
    assert_eq!(h.state().export_window.profile.system, text);
}
