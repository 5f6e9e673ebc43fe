//! The Run workspace: scripted and typed runs, the chat server, the on-device model, an
//! image file outside the project.

use egui_kittest::kittest::Queryable;
use thyme_studio::app::Workspace;
use thyme_studio::paths::AppDirs;

use super::common::*;

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
                raw_code,
                outputs,
                edited_from,
                ..
            } => Some((raw_code.clone(), outputs.clone(), edited_from.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(execute.0, edited, "the edited code is what ran");
    assert_eq!(execute.1[0].image.width, Some(160));
    // The step says a person edited it, keeps the script's code, and the transcript says so.
    assert!(execute.2.is_some_and(|c| c != edited));
    assert!(
        h.query_all_by_label_contains("you edited this cell")
            .next()
            .is_some()
    );
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

    // "Replay this run": a new run in the Run workspace plays the recorded text back (the
    // edited cell as it ran), runs its code again, and says it is a replay.
    let recorded = trace;
    h.run_steps(2);
    h.get_by_label("Replay this run").click();
    h.run_steps(2);
    assert_eq!(h.state().workspace, Workspace::Run);
    assert!(h.query_all_by_label_contains("Replay of").next().is_some());
    h.get_by_label("Start run").click();
    // One frame for the click: until then the first run's agent is still there.
    h.run_steps(1);
    step_until(&mut h, "the replay to start", |h| {
        h.state().run.agent.is_some() && !h.state().run.busy()
    });
    h.run_steps(2);
    h.get_by_label("Run to the end").click();
    step_until(&mut h, "the end of the replay", |h| {
        h.state().run.finished.is_some()
    });
    let replay = h.state().run.finished.clone().unwrap();
    assert_eq!(
        replay.run.forked_from.as_ref().map(|f| f.run.clone()),
        Some(recorded.run.id.clone())
    );
    assert_eq!(replay.run.outcome, recorded.run.outcome);
    let generated: Vec<bool> = replay
        .steps
        .iter()
        .filter_map(|s| match s {
            thyme_studio::trace::Step::Generate { sampling, .. } => {
                Some(sampling.contains_key("replayed"))
            }
            _ => None,
        })
        .collect();
    assert!(
        !generated.is_empty() && generated.iter().all(|r| *r),
        "{generated:?}"
    );
    let ran = replay.steps.iter().find_map(|s| match s {
        thyme_studio::trace::Step::Execute { raw_code, .. } => Some(raw_code.clone()),
        _ => None,
    });
    assert_eq!(
        ran.as_deref(),
        Some(edited),
        "the edited cell is what ran again"
    );
    h.run_steps(2);
    assert!(
        h.query_all_by_label_contains("replayed from the recorded run")
            .next()
            .is_some()
    );

    // A fork at the answer with the person's own turn ("what if it had said MLA"): the box
    // gives the recorded turn to start from; the new run plays the person's text as the
    // model's, marks it, and the recorded run is untouched.
    let at = recorded
        .steps
        .iter()
        .rposition(|s| matches!(s, thyme_studio::trace::Step::Generate { .. }))
        .unwrap();
    let thyme_studio::trace::Step::Generate { text: said, .. } = &recorded.steps[at] else {
        unreachable!()
    };
    h.state_mut().run.fork = Some(thyme_studio::agent::ForkFrom {
        trace: recorded.clone(),
        at_step: at,
        turn: None,
    });
    h.run_steps(2);
    h.get_by_label("Write the model's turn here myself").click();
    h.run_steps(2);
    let fork = h.state().run.fork.clone().unwrap();
    assert_eq!(
        fork.turn.as_deref(),
        Some(said.as_str()),
        "starts from the recorded turn"
    );
    let mine = "<think>On second thought it is MLA.</think> <answer>MLA</answer>";
    h.state_mut().run.fork.as_mut().unwrap().turn = Some(mine.to_owned());
    h.get_by_label("Start run").click();
    h.run_steps(1);
    step_until(&mut h, "the fork to start", |h| {
        h.state().run.agent.is_some() && !h.state().run.busy()
    });
    h.run_steps(2);
    h.get_by_label("Run to the end").click();
    step_until(&mut h, "the end of the fork", |h| {
        h.state()
            .run
            .finished
            .as_ref()
            .is_some_and(|t| t.run.forked_from.as_ref().is_some_and(|f| f.step == at))
    });
    let forked = h.state().run.finished.clone().unwrap();
    let last = forked
        .steps
        .iter()
        .rev()
        .find_map(|s| match s {
            thyme_studio::trace::Step::Generate { text, sampling, .. } => Some((text, sampling)),
            _ => None,
        })
        .unwrap();
    assert_eq!(last.0, mine);
    assert!(last.1.contains_key("edited_by_a_person"));
    assert_eq!(forked.run.outcome, thyme_studio::trace::Outcome::Wrong);
    assert_eq!(recorded.run.outcome, thyme_studio::trace::Outcome::Correct);
    h.run_steps(2);
    assert!(
        h.query_all_by_label_contains("written by you at the fork")
            .next()
            .is_some()
    );
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
