//! The shell: the first run, menus (import, export, the prompt file), a bad project file,
//! dropped files, the getting-started guide, the Annotate snapshot.

use std::path::PathBuf;
use std::sync::Arc;

use egui_kittest::kittest::{NodeT, Queryable};
use thyme_studio::app::{StudioApp, Workspace};
use thyme_studio::paths::AppDirs;

use super::common::*;

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
fn the_first_start_on_ones_own_project_does_not_call_it_the_demo() {
    let root = tempfile::tempdir().unwrap();
    let project = root.path().join("mine.thyme");
    drop(thyme_studio::store::SqliteStore::create(&project).unwrap());
    let mut h = harness(app_first_run(Some(project), root.path(), vec![]));
    step_until(&mut h, "the project", |h| {
        h.state().session.project.is_some()
    });
    h.run_steps(2);
    assert!(h.state().guide.open);
    assert!(
        h.query_all_by_label_contains("The demo project is open")
            .next()
            .is_none()
    );
    assert!(
        h.query_all_by_label_contains("File > Open demo project")
            .next()
            .is_some()
    );
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

#[test]
fn the_tile_cache_window_shows_the_size_saves_a_budget_and_clears() {
    let root = tempfile::tempdir().unwrap();
    let mut h = harness(app_with(None, root.path(), vec![]));
    wait_for_demo(&mut h);
    click_image(&h, "plaza-375x250.jpg");
    step_until(&mut h, "the first pyramid", |h| {
        !h.state().busy()
            && thyme_studio::imagery::disk_cache::DiskTileCache::new(&root.path().join("cache"))
                .usage()
                .iter()
                .any(|i| i.complete)
    });
    h.get_by_label("View").click();
    h.run_steps(2);
    h.get_by_label("Tile cache (size, budget, clear)").click();
    step_until(&mut h, "the cache's size", |h| {
        h.query_by_label_contains("Holds ").is_some()
    });
    assert!(h.query_by_label_contains("0 image(s)").is_none());
    h.get_by_label("Save").click();
    h.run_steps(2);
    let settings =
        std::fs::read_to_string(AppDirs::under(root.path().to_owned()).settings_file()).unwrap();
    assert!(settings.contains("tile_cache_bytes"), "{settings}");
    h.get_by_label("Clear the cache").click();
    step_until(&mut h, "the clear", |h| {
        h.query_by_label_contains("removed ").is_some()
    });
    step_until(&mut h, "the new size", |h| {
        h.query_by_label_contains("for 0 image(s)").is_some()
    });
}

use super::chat;

/// A chat server on loopback whose every answer is wrong ("nothing"), with or without tools
/// (the rates themselves are tested against a rule server in tests/curate.rs).
fn wrong_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut s = conn.unwrap();
            std::thread::spawn(move || {
                chat::read_body(&mut s);
                chat::reply(&mut s, "<answer>nothing</answer>");
            });
        }
    });
    port
}

#[test]
fn the_difficulty_check_runs_from_the_app_and_its_flags_filter_the_list() {
    let root = tempfile::tempdir().unwrap();
    let mut h = harness(app_with(None, root.path(), vec![]));
    wait_for_demo(&mut h);
    let project = h.state().session.project.as_ref().unwrap().path.clone();
    let store = thyme_studio::store::SqliteStore::open(&project).unwrap();
    let (items, _) = thyme_studio::curate::items(
        &store,
        &thyme_studio::exchange::Filter::default(),
        &thyme_studio::agent::PromptProfile::default(),
    )
    .unwrap();
    drop(store);
    assert!(!items.is_empty());
    h.state_mut().run.server_url = format!("http://127.0.0.1:{}/v1", wrong_server());
    h.state_mut().curate_window.k = 2;
    h.get_by_label("View").click();
    h.run_steps(2);
    h.get_by_label("Difficulty check (tries with and without tools)")
        .click();
    h.run_steps(2);
    h.get_by_label("Start the check").click();
    step_until(&mut h, "the check's end", |h| {
        h.query_by_label_contains("tries made").is_some()
    });
    let wanted = items.len() * 2 * 2;
    assert!(
        h.query_by_label_contains(&format!("{wanted} tries made (0 failed"))
            .is_some(),
        "every try made, none failed"
    );
    // Wrong every time: every item is suspect, and the list's filter offers the flags.
    let view = h.state().session.project.as_ref().unwrap();
    assert_eq!(view.difficulty.questions.len(), items.len());
    assert!(
        view.difficulty
            .questions
            .values()
            .all(|r| r.flags == vec![thyme_studio::curate::Flag::Suspect]),
        "{:?}",
        view.difficulty.questions
    );
    // The window closed (it sits over the list), the filter chosen.
    h.state_mut().curate_window.open = false;
    h.run_steps(2);
    combo(&h, "Show").click();
    h.run_steps(2);
    h.get_by_label("difficulty: suspect").click();
    h.run_steps(2);
    assert_eq!(
        h.state().annotate.list_filter,
        thyme_studio::app::annotate::list::ListFilter::Difficulty(
            thyme_studio::curate::Flag::Suspect
        )
    );
    // The question panel gives each question its check in one line.
    let first = h.state().session.project.as_ref().unwrap().images[0]
        .path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    click_image(&h, &first);
    step_until(&mut h, "the question's check", |h| {
        h.query_all_by_label_contains("check: with tools 0/2 · without 0/2 · suspect")
            .next()
            .is_some()
    });
    // A question's runs open in Inspect: its 2 + 2 tries.
    h.query_all_by_label("Runs").next().unwrap().click();
    step_until(&mut h, "the question's runs in Inspect", |h| {
        h.state().workspace == thyme_studio::app::Workspace::Inspect
            && h.state().inspect.rows().len() == 4
    });
}

#[test]
fn the_difficulty_check_tries_only_the_items_its_filters_keep() {
    let root = tempfile::tempdir().unwrap();
    let mut h = harness(app_with(None, root.path(), vec![]));
    wait_for_demo(&mut h);
    let project = h.state().session.project.as_ref().unwrap().path.clone();
    let store = thyme_studio::store::SqliteStore::open(&project).unwrap();
    let ocr = thyme_studio::exchange::Filter {
        categories: ["ocr".to_owned()].into(),
        ..Default::default()
    };
    let profile = thyme_studio::agent::PromptProfile::default();
    let (all, _) = thyme_studio::curate::items(&store, &Default::default(), &profile).unwrap();
    let (items, _) = thyme_studio::curate::items(&store, &ocr, &profile).unwrap();
    drop(store);
    assert!(!items.is_empty() && items.len() < all.len());
    h.state_mut().run.server_url = format!("http://127.0.0.1:{}/v1", wrong_server());
    h.state_mut().curate_window.k = 1;
    h.state_mut().curate_window.open = true;
    h.run_steps(2);
    h.get_by_label("ocr").click();
    h.run_steps(1);
    h.get_by_label("Start the check").click();
    step_until(&mut h, "the check's end", |h| {
        h.query_by_label_contains("tries made").is_some()
    });
    let wanted = items.len() * 2;
    assert!(
        h.query_by_label_contains(&format!("{wanted} tries made (0 failed"))
            .is_some(),
        "only the ocr items were tried"
    );
    let view = h.state().session.project.as_ref().unwrap();
    assert_eq!(view.difficulty.questions.len(), items.len());
}
