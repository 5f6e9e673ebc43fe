//! Assisted boxing in the Annotate workspace: click-to-box (C) proposes a box that Enter makes
//! a stored box and Escape drops, a rough box is snapped into a proposal, SAM from a weights
//! folder answers on the worker, and Find's proposals from a chat server on loopback are
//! accepted or dropped one by one.

use std::net::TcpListener;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use thyme_studio::app::StudioApp;

use super::common::*;
use thyme_studio::geometry::ImageRect;

use super::chat;

/// A project of one 2400x1600 PNG of grainy ground with a red sign at (1200, 800)-(1260, 830)
/// and a blue patch at (600, 300)-(640, 330).
fn signs_project(root: &std::path::Path) -> std::path::PathBuf {
    let project = root.join("p.thyme");
    let src = root.join("ground.png");
    let mut img = image::RgbImage::from_fn(2400, 1600, |x, y| {
        let g = ((x * 7 + y * 13) % 23) as u8;
        image::Rgb([100 + g, 110 + g, 90 + g])
    });
    for (x0, y0, x1, y1, c) in [
        (1200, 800, 1260, 830, [214, 40, 40]),
        (600, 300, 640, 330, [30, 90, 220]),
    ] {
        for y in y0..y1 {
            for x in x0..x1 {
                img.put_pixel(x, y, image::Rgb(c));
            }
        }
    }
    img.save(&src).unwrap();
    let mut store = thyme_studio::store::SqliteStore::create(&project).unwrap();
    thyme_studio::import::import(
        &mut store,
        &[src],
        &Default::default(),
        &std::sync::atomic::AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    project
}

/// A chat server on loopback answering every tile with `answer` after `delay_ms`, the signs
/// project open with the Run panel pointed at it, and Find started for "red sign".
fn find_started(
    answer: &'static str,
    delay_ms: u64,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    Harness<'static, StudioApp>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut s = conn.unwrap();
            std::thread::spawn(move || {
                chat::read_body(&mut s);
                std::thread::sleep(std::time::Duration::from_millis(delay_ms));
                chat::reply(&mut s, answer);
            });
        }
    });
    let root = tempfile::tempdir().unwrap();
    let project = signs_project(root.path());
    let mut h = harness(app_with(Some(project.clone()), root.path(), vec![]));
    image_shown(&mut h);
    h.state_mut().run.server_url = format!("http://127.0.0.1:{port}/v1");
    h.state_mut().annotate.assist.find_text = "red sign".into();
    h.run_steps(1);
    h.get_by_label("Find").click();
    h.run_steps(1);
    (root, project, h)
}

fn proposed(h: &mut Harness<'static, StudioApp>) {
    step_until(h, "the proposal", |h| {
        !h.state().annotate.assist.busy() && h.state().annotate.assist.proposing()
    });
}

#[test]
fn a_click_proposes_the_objects_box_enter_keeps_it_and_escape_drops_one() {
    let root = tempfile::tempdir().unwrap();
    let project = signs_project(root.path());
    let mut h = harness(app_with(Some(project.clone()), root.path(), vec![]));
    let (canvas, view) = image_shown(&mut h);
    h.key_press(egui::Key::C);
    h.run_steps(1);
    assert!(h.state().annotate.assist.on, "C turns click-to-box on");

    // A click on the sign: a proposal, not a box yet.
    click_at(&mut h, view.to_screen(canvas, (1230.0, 815.0)));
    proposed(&mut h);
    assert!(
        stored_boxes(&project).is_empty(),
        "a proposal is not stored"
    );
    let (rect, how) = h.state().annotate.assist.proposal().unwrap();
    assert_eq!(rect, ImageRect::new(1200.0, 800.0, 1260.0, 830.0));
    assert!(how.starts_with("weight-free click"), "{how}");
    assert!(
        h.query_by_label("weight-free").is_some(),
        "the bar says no SAM weights are in use"
    );
    assert!(
        h.query_by_label_contains("Enter makes it a box, Escape drops it (weight-free click")
            .is_some(),
        "the bar says what Enter and Escape do and how the box was found"
    );
    h.key_press(egui::Key::Enter);
    h.run_steps(2);
    assert_eq!(
        stored_boxes(&project),
        vec![ImageRect::new(1200.0, 800.0, 1260.0, 830.0)]
    );
    assert!(!h.state().annotate.assist.proposing());

    // The blue patch: proposed, then dropped with Escape; nothing more is stored.
    click_at(&mut h, view.to_screen(canvas, (620.0, 315.0)));
    proposed(&mut h);
    h.key_press(egui::Key::Escape);
    h.run_steps(2);
    assert!(!h.state().annotate.assist.proposing());
    assert_eq!(stored_boxes(&project).len(), 1);

    // A click on background says so and proposes nothing.
    click_at(&mut h, view.to_screen(canvas, (2000.0, 1400.0)));
    step_until(&mut h, "the answer", |h| !h.state().annotate.assist.busy());
    assert!(!h.state().annotate.assist.proposing());
    assert!(
        h.state()
            .annotate
            .assist
            .note
            .as_deref()
            .is_some_and(|n| n.contains("nothing stands out")),
        "{:?}",
        h.state().annotate.assist.note
    );

    // A rough box dragged around the blue patch is snapped into a proposal; Enter keeps it.
    let a = view.to_screen(canvas, (585.0, 290.0));
    let b = view.to_screen(canvas, (652.0, 342.0));
    h.hover_at(a);
    h.run_steps(1);
    h.event(button(a, egui::PointerButton::Primary, true));
    h.run_steps(1);
    h.hover_at(a + (b - a) * 0.5);
    h.run_steps(1);
    h.hover_at(b);
    h.run_steps(1);
    h.event(button(b, egui::PointerButton::Primary, false));
    h.run_steps(1);
    assert_eq!(
        stored_boxes(&project).len(),
        1,
        "the rough box is not stored"
    );
    proposed(&mut h);
    h.key_press(egui::Key::Enter);
    h.run_steps(2);
    let mut boxes = stored_boxes(&project);
    boxes.sort_by(|p, q| p.x0.total_cmp(&q.x0));
    assert_eq!(
        boxes,
        vec![
            ImageRect::new(600.0, 300.0, 640.0, 330.0),
            ImageRect::new(1200.0, 800.0, 1260.0, 830.0)
        ]
    );
}

#[test]
fn sam_from_a_weights_folder_answers_a_click_on_the_worker() {
    let root = tempfile::tempdir().unwrap();
    let project = signs_project(root.path());
    let weights = root.path().join("sam");
    let shape = thyme_studio::assist::sam::VitShape {
        embed_dim: 32,
        depth: 1,
        heads: 2,
        global_attn: vec![0],
    };
    thyme_studio::assist::sam::write_random(&weights, &shape, 5).unwrap();
    let mut h = harness(app_with(Some(project.clone()), root.path(), vec![]));
    let (canvas, view) = image_shown(&mut h);
    h.state_mut().annotate.assist.weights = Some(weights);
    h.state_mut().annotate.assist.on = true;
    h.run_steps(1);
    click_at(&mut h, view.to_screen(canvas, (1230.0, 815.0)));
    assert!(
        h.state().annotate.assist.busy(),
        "the click went to the worker"
    );
    step_until(&mut h, "SAM's answer", |h| {
        !h.state().annotate.assist.busy()
    });
    // Random weights: a proposal from SAM (named with its times), or "nothing".
    let a = &h.state().annotate.assist;
    if let Some((rect, how)) = a.proposal() {
        assert!(how.starts_with("SAM ViT 32x1: encoder"), "{how}");
        assert!(rect.x1 <= 2400.0 && rect.y1 <= 1600.0, "{rect:?}");
    } else {
        assert!(
            a.note
                .as_deref()
                .is_some_and(|n| n.contains("nothing found: SAM")),
            "{:?}",
            a.note
        );
    }
    assert!(
        stored_boxes(&project).is_empty(),
        "SAM stores nothing by itself"
    );
}

#[test]
fn find_lists_the_models_boxes_and_each_is_accepted_or_dropped() {
    // In every tile's resized pixels: one box near its top-left corner.
    let answer = "```json\n[{\"bbox_2d\": [10, 20, 50, 40], \"label\": \"red sign\"}]\n```";
    let (_root, project, mut h) = find_started(answer, 0);
    step_until(&mut h, "Find's proposals", |h| {
        !h.state().annotate.assist.busy()
    });
    let tiles = thyme_studio::assist::find::tiles(
        thyme_studio::geometry::ImageSize::new(2400, 1600),
        1344,
        0.1,
    )
    .len();
    assert!(tiles > 1);
    let count = |h: &Harness<'static, StudioApp>| h.query_all_by_label("Accept").count();
    assert_eq!(count(&h), tiles, "one proposal a tile");
    // The first accepted: a stored box with the model's label; the next one dropped.
    h.query_all_by_label("Accept").next().unwrap().click();
    h.run_steps(2);
    assert_eq!(stored_labels(&project), vec!["red sign".to_owned()]);
    let first = stored_boxes(&project)[0];
    assert_eq!((first.x0, first.y0), (first.x0.round(), first.y0.round()));
    h.key_press(egui::Key::Escape);
    h.run_steps(2);
    assert_eq!(count(&h), tiles - 2);
    assert_eq!(stored_boxes(&project).len(), 1);
}

#[test]
fn escape_stops_a_find_at_once_and_its_late_answer_is_dropped() {
    let answer = "[{\"bbox_2d\": [10, 20, 50, 40], \"label\": \"late\"}]";
    let (_root, _project, mut h) = find_started(answer, 1500);
    assert!(h.state().annotate.assist.busy());
    step_until(&mut h, "the tile count in the bar", |h| {
        h.query_by_label_contains("on tiles of the image, tile 1 of")
            .is_some()
    });
    h.key_press(egui::Key::Escape);
    h.run_steps(1);
    assert!(!h.state().annotate.assist.busy(), "stopped at once");
    assert_eq!(h.state().annotate.assist.note.as_deref(), Some("stopped"));
    std::thread::sleep(std::time::Duration::from_millis(2000));
    h.run_steps(3);
    assert!(
        !h.state().annotate.assist.proposing(),
        "the late answer is dropped"
    );
    assert_eq!(h.query_all_by_label("Accept").count(), 0);
}

#[test]
fn a_weights_folder_without_sam_says_what_to_get_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let project = signs_project(root.path());
    let empty = root.path().join("no-weights");
    std::fs::create_dir_all(&empty).unwrap();
    let mut h = harness(app_with(Some(project.clone()), root.path(), vec![]));
    let (canvas, view) = image_shown(&mut h);
    h.state_mut().annotate.assist.weights = Some(empty);
    h.state_mut().annotate.assist.on = true;
    h.run_steps(1);
    click_at(&mut h, view.to_screen(canvas, (1230.0, 815.0)));
    step_until(&mut h, "the answer", |h| !h.state().annotate.assist.busy());
    let note = h.state().annotate.assist.note.clone().unwrap_or_default();
    assert!(note.contains("mobile_sam-tiny-vitt.safetensors"), "{note}");
    assert_eq!(note.lines().count(), 1, "{note}");
    assert!(!h.state().annotate.assist.proposing());
    assert!(stored_boxes(&project).is_empty());
}
