//! The Inspect workspace: a run opened from its trace, its crops on the original.

use egui_kittest::kittest::Queryable;
use thyme_studio::app::Workspace;

use super::common::*;

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
                edited_from: None,
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
    assert!(
        h.query_by_label_contains("The runs take the same steps")
            .is_some()
    );
    assert_eq!(
        h.query_all_by_label_contains("correct · answer stripes")
            .count(),
        2
    );

    // Find in every step: text of the last reasoning step; the match opens its step.
    h.state_mut().inspect.compare = None;
    h.state_mut().inspect.selected_step = None;
    h.run_steps(2);
    text_field(&h, "Find in every step").focus();
    h.run_steps(1);
    text_field(&h, "Find in every step").type_text("STRIPES.");
    h.run_steps(1);
    h.get_by_label("Find").click();
    h.run_steps(1);
    step_until(&mut h, "the search", |h| !h.state().inspect.search.busy());
    assert_eq!(h.state().inspect.search.hits.len(), 1);
    assert!(h.query_by_label_contains("1 run(s) match").is_some());
    h.query_all_by_label_contains("(reasoning): <think>Stripes.")
        .next()
        .unwrap()
        .click();
    h.run_steps(2);
    assert_eq!(h.state().inspect.selected_step, Some(2));
}

#[test]
fn the_crop_audit_runs_from_inspect_lists_the_worst_and_filters_the_runs() {
    use thyme_studio::trace::audit::Verdict;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let original = image::RgbImage::from_fn(800, 600, |x, y| {
        let v = (x * 7 + y * 13) ^ (x * y / 37);
        image::Rgb([
            (v % 251) as u8,
            ((v / 3) % 241) as u8,
            ((x / 3 + y / 5) % 256) as u8,
        ])
    });
    original.save(dir.join("scene.png")).unwrap();
    let cut = |b: [u32; 4], name: &str| {
        image::imageops::crop_imm(&original, b[0], b[1], b[2] - b[0], b[3] - b[1])
            .to_image()
            .save(dir.join(name))
            .unwrap();
    };
    cut([100, 100, 260, 220], "same.png");
    cut([500, 350, 660, 470], "other.png");
    let row = |id: &str, out: &str| {
        serde_json::json!({
            "id": id,
            "image": ["scene.png", out],
            "question": "<image>\nWhat is there?",
            "response": "<think>Look.</think><code>\n```python\nimg = Image.open(image_path)\nc = img.crop((100, 100, 260, 220))\nc.save('/mnt/data/temp_processed_images/c.png')\nprint('/mnt/data/temp_processed_images/c.png')\n```\n</code><sandbox_output><image></sandbox_output> <answer>A</answer>",
            "answer": "A",
        })
        .to_string()
    };
    let rows = dir.join("sft.jsonl");
    std::fs::write(
        &rows,
        format!(
            "{}\n{}\n",
            row("same-place", "same.png"),
            row("elsewhere", "other.png")
        ),
    )
    .unwrap();
    let mut app = app_with(None, root.path(), vec![]);
    app.inspect.open(rows, &egui::Context::default());
    let mut h = harness(app);
    h.state_mut().workspace = Workspace::Inspect;
    step_until(&mut h, "the runs", |h| h.state().inspect.rows().len() == 2);
    h.run_steps(2);
    h.get_by_label("Audit crops").click();
    h.run_steps(1);
    step_until(&mut h, "the audit", |h| {
        !h.state().inspect.audit.busy() && h.state().inspect.audit.images.len() == 2
    });
    h.run_steps(2);
    // The counts (the selected step also says its own verdict).
    let counts = |text: &str| h.query_all_by_label_contains(text).next().is_some();
    assert!(counts("different region: 1"));
    assert!(counts("reproduced: 1"));
    // The worst first: a click opens its run at its step, where it really came from is known.
    h.query_all_by_label_contains("elsewhere · step 2 · different region")
        .next()
        .unwrap()
        .click();
    h.run_steps(2);
    let inspect = &h.state().inspect;
    assert_eq!(inspect.trace.as_ref().unwrap().run.id, "elsewhere");
    assert_eq!(inspect.selected_step, Some(1));
    let found = inspect
        .audit
        .of_step("elsewhere", 1)
        .unwrap()
        .found_rect
        .unwrap();
    assert!(
        (found[0] - 500.0).abs() <= 3.0 && (found[1] - 350.0).abs() <= 3.0,
        "{found:?}"
    );
    assert!(
        h.query_all_by_label_contains("audit: different region")
            .next()
            .is_some(),
        "the step says its verdict"
    );
    // The run list filtered by verdict.
    h.state_mut().inspect.audit.filter = Some(Verdict::DifferentRegion);
    h.run_steps(2);
    assert!(h.query_by_label_contains("same-place").is_none());
}

#[test]
fn a_prediction_table_opens_and_a_conversation_cut_short_says_so() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("results");
    std::fs::create_dir_all(&dir).unwrap();
    // DeepEyesV2's TSV: every field quoted, the conversation a Python literal; the second
    // row's literal stops mid-message.
    let whole = "[{'role': 'user', 'content': [{'type': 'image_url', 'image_url': {'url': 'data:image/jpeg;base64'}}, {'type': 'text', 'text': 'Which sign is red?'}]}, {'role': 'assistant', 'content': '<answer>B</answer>'}]";
    let cut = "[{'role': 'user', 'content': [{'type': 'text', 'text': 'How many boats?'}]}, {'role': 'assistant', 'content': '<code>\\n```python\\nprint(image_1.size)\\n```\\n</code>'}, {'role': 'user', 'content': [{'type': 'text', 'text': 'Code execution result:\\nstdout:\\n```\\n(9";
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let table = [
        [
            "index",
            "question",
            "answer",
            "prediction",
            "raw_response",
            "image_path_list",
        ]
        .map(q)
        .join("\t"),
        [
            "q7",
            "Which sign is red?",
            "B",
            "B",
            whole,
            "['/data/a.jpg']",
        ]
        .map(q)
        .join("\t"),
        ["q8", "How many boats?", "3", "3", cut, "['/data/b.jpg']"]
            .map(q)
            .join("\t"),
    ]
    .join("\n");
    let path = dir.join("DeepEyesV2-vllm_VStarBench.tsv");
    std::fs::write(&path, table + "\n").unwrap();
    let mut app = app_with(None, root.path(), vec![]);
    app.inspect.open(path, &egui::Context::default());
    let mut h = harness(app);
    h.state_mut().workspace = Workspace::Inspect;
    step_until(&mut h, "the runs", |h| h.state().inspect.rows().len() == 2);
    h.run_steps(2);
    assert!(
        h.query_by_label_contains("1 line(s) not read, or read only in part")
            .is_some()
    );
    h.state_mut().inspect.select_row(1);
    step_until(&mut h, "the cut run", |h| {
        h.state()
            .inspect
            .trace
            .as_ref()
            .is_some_and(|t| t.run.id == "q8")
    });
    h.run_steps(2);
    assert!(
        h.query_by_label_contains(
            "The log stops early: the conversation stops after 2 whole messages"
        )
        .is_some()
    );
}

#[test]
fn statistics_count_the_listed_runs_and_a_group_filters_the_list() {
    use thyme_studio::trace::stats::Dimension;
    use thyme_studio::trace::{Run, Step, Trace, io};
    let root = tempfile::tempdir().unwrap();
    let run = |id: &str, category: &str, answer: &str| {
        Trace::new(
            Run {
                id: id.into(),
                question: format!("Question of {id}?"),
                ground_truth: Some("yes".into()),
                category: Some(category.into()),
                ..Default::default()
            },
            vec![Step::Answer {
                text: format!("<answer>{answer}</answer>"),
                extracted: None,
                matches_ground_truth: None,
            }],
        )
    };
    let file = root.path().join("runs.jsonl");
    io::write_jsonl(
        &[
            run("sign-1", "signs", "yes"),
            run("sign-2", "signs", "no"),
            run("count-1", "counting", "yes"),
        ],
        &file,
    )
    .unwrap();
    let mut app = app_with(None, root.path(), vec![]);
    app.inspect.open(file.clone(), &egui::Context::default());
    let mut h = harness(app);
    h.state_mut().workspace = Workspace::Inspect;
    step_until(&mut h, "the runs", |h| h.state().inspect.rows().len() == 3);
    h.get_by_label("Statistics...").click();
    h.run_steps(2);
    // Opening the window counts the listed runs at once.
    step_until(&mut h, "the count", |h| {
        !h.state().inspect.stats.busy() && h.state().inspect.stats.result.is_some()
    });
    h.run_steps(2);
    assert!(
        h.query_by_label_contains("3 runs: 2 correct, 1 wrong")
            .is_some(),
        "the totals are shown"
    );
    let stats = &h.state().inspect.stats.result.as_ref().unwrap().stats;
    let signs = stats
        .groups
        .iter()
        .find(|g| g.dimension == Dimension::Category && g.key == "signs")
        .unwrap();
    assert_eq!((signs.tally.runs, signs.accuracy), (2, Some(0.5)));
    // A bar's group filters the list (what a click on it sets).
    h.state_mut().inspect.stats.filter = Some((Dimension::Category, "signs".into()));
    h.run_steps(2);
    assert!(h.query_by_label_contains("only category: signs").is_some());
    assert!(h.query_by_label("sign-2").is_some());
    assert!(
        h.query_by_label("count-1").is_none(),
        "another category is hidden"
    );
    h.get_by_label("show all").click();
    h.run_steps(2);
    assert_eq!(h.state().inspect.stats.filter, None);
    assert!(h.query_by_label("count-1").is_some());
    // The groups as CSV beside the log.
    h.get_by_label("Save CSV").click();
    h.run_steps(1);
    let csv = std::fs::read_to_string(root.path().join("runs.stats.csv")).unwrap();
    assert!(csv.contains("category,signs,2,1,1,0,0,0,0.5000"), "{csv}");
}
