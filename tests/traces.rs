//! Trace readers on small examples of each format (with malformed lines), crop provenance by
//! each method, every lint on a positive and a negative example, and the trace CLI.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use thyme_studio::trace::lint::{NAMES, lint};
use thyme_studio::trace::readers::{LogFormat, read};
use thyme_studio::trace::{
    Fix, Outcome, Provenance, Run, Step, StepImage, Trace, TraceImage, io, provenance,
};

/// A textured 800x600 original and a 2x zoom of its (300, 200, 450, 300) region.
fn images(dir: &Path) -> (PathBuf, PathBuf) {
    let original = image::RgbImage::from_fn(800, 600, |x, y| {
        let v = (x * 7 + y * 13) ^ (x * y / 37);
        image::Rgb([(v % 251) as u8, ((v / 3) % 241) as u8, (x % 256) as u8])
    });
    let path = dir.join("photo.png");
    original.save(&path).unwrap();
    let crop = image::imageops::crop_imm(&original, 300, 200, 150, 100).to_image();
    let zoom = image::imageops::resize(&crop, 300, 200, image::imageops::FilterType::Triangle);
    let out = dir.join("zoom.png");
    zoom.save(&out).unwrap();
    (path, out)
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n")).unwrap();
}

#[test]
fn thyme_sft_rows_become_steps_and_a_bad_line_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (orig, zoom) = images(dir.path());
    let response = "<think>The sign is small; crop it.</think><code>\n```python\nfrom PIL import Image\nimg = Image.open(image_path)\nc = img.crop((300, 200, 450, 300))\nc = c.resize((300, 200))\nc.save('/mnt/data/temp_processed_images/a.png')\nprint('/mnt/data/temp_processed_images/a.png')\n```\n</code><sandbox_output><image></sandbox_output><think>It reads 42.</think> <answer>\\boxed{42}</answer>";
    let rows = vec![
        serde_json::json!({"image": [orig.file_name().unwrap().to_str().unwrap(), zoom.file_name().unwrap().to_str().unwrap()], "question": "<image>\nWhat number is on the sign?\n\n### User Image Path:** \"photo.png\"", "response": response, "answer": "42"}).to_string(),
        "{ broken".to_owned(),
        serde_json::json!({"image": ["photo.png"], "question": "q"}).to_string(),
    ];
    let file = dir.path().join("sft.jsonl");
    write_lines(&file, &rows);
    assert_eq!(LogFormat::detect(&file).unwrap(), LogFormat::ThymeSft);
    let mut loaded = read(&file, LogFormat::ThymeSft).unwrap();
    assert_eq!(loaded.traces.len(), 1);
    assert_eq!(loaded.problems.len(), 2);
    assert_eq!(loaded.problems[0].line, 2);
    assert!(loaded.problems[1].message.contains("no response"));
    let t = &mut loaded.traces[0];
    assert_eq!(t.run.question, "What number is on the sign?");
    assert_eq!(t.run.outcome, Outcome::Correct);
    let kinds: Vec<&str> = t.steps.iter().map(Step::kind).collect();
    assert_eq!(kinds, ["generate", "execute", "generate", "answer"]);
    let Step::Execute {
        raw_code, outputs, ..
    } = &t.steps[1]
    else {
        panic!()
    };
    assert!(raw_code.starts_with("from PIL import Image"));
    assert_eq!(outputs[0].image.path.as_deref(), Some(zoom.as_path()));
    // Provenance from the code's crop box (the code opens image_path).
    assert_eq!(provenance::fill(t), 1);
    let Step::Execute { outputs, .. } = &t.steps[1] else {
        panic!()
    };
    assert_eq!(outputs[0].source_rect, Some([300.0, 200.0, 450.0, 300.0]));
    assert_eq!(outputs[0].provenance, Some(Provenance::Code));
}

#[test]
fn provenance_falls_back_to_template_matching_and_keeps_the_sandbox_record() {
    let dir = tempfile::tempdir().unwrap();
    let (orig, zoom) = images(dir.path());
    let code = "box = compute_box()\nc = img.crop(box)".to_owned();
    let exec = |rect: Option<[f64; 4]>, prov: Option<Provenance>| Step::Execute {
        raw_code: code.clone(),
        executed_code: code.clone(),
        fixes: vec![],
        stdout: String::new(),
        stderr: String::new(),
        error: None,
        outputs: vec![StepImage {
            image: TraceImage::at(&zoom),
            source_rect: rect,
            provenance: prov,
        }],
        text_result: None,
        ms: None,
        fed_back: true,
        edited_from: None,
    };
    let run = Run {
        id: "r".into(),
        images: vec![TraceImage::at(&orig)],
        question: "q".into(),
        ..Default::default()
    };
    let mut t = Trace::new(run.clone(), vec![exec(None, None)]);
    assert_eq!(provenance::fill(&mut t), 1);
    let Step::Execute { outputs, .. } = &t.steps[0] else {
        panic!()
    };
    let r = outputs[0].source_rect.unwrap();
    for (a, b) in r.iter().zip([300.0, 200.0, 450.0, 300.0]) {
        assert!((a - b).abs() <= 4.0, "{r:?}");
    }
    assert!(
        matches!(outputs[0].provenance, Some(Provenance::TemplateMatch { score }) if score > 0.9)
    );
    // A rectangle the sandbox recorded is kept as it is.
    let recorded = [1.0, 2.0, 65.0, 66.0];
    let mut t = Trace::new(run, vec![exec(Some(recorded), Some(Provenance::Sandbox))]);
    assert_eq!(provenance::fill(&mut t), 0);
    assert_eq!(t.crops(), vec![(0, recorded)]);
}

#[test]
fn thyme_rl_completions_keep_rewards() {
    let dir = tempfile::tempdir().unwrap();
    let (orig, _) = images(dir.path());
    let line = serde_json::json!({
        "step": 12,
        "prompt": "<image>\nHow many cars?\n\n### User Image Path:** \"x.jpg\"\n### User Image Size:** \"800x600\"\n",
        "completion": "<think>Count them.</think><code>print(3)</code><sandbox_output>3</sandbox_output><think>Three.</think> <answer>3</answer>",
        "FMTORM": 1.0, "VQAORM": 0.0, "CSTORM": 0.5,
        "solution": "4",
        "images": [orig.to_str().unwrap()],
    });
    let file = dir.path().join("completions.jsonl");
    write_lines(&file, &[line.to_string(), "not json".into()]);
    assert_eq!(LogFormat::detect(&file).unwrap(), LogFormat::ThymeRl);
    let loaded = read(&file, LogFormat::ThymeRl).unwrap();
    assert_eq!(loaded.problems.len(), 1);
    let t = &loaded.traces[0];
    assert_eq!(t.run.id, "step-12");
    assert_eq!(t.run.question, "How many cars?");
    assert_eq!(t.run.rewards.get("CSTORM"), Some(&0.5));
    assert_eq!(t.run.outcome, Outcome::Wrong);
    let Step::Execute { text_result, .. } = &t.steps[1] else {
        panic!()
    };
    assert_eq!(text_result.as_deref(), Some("3"));
}

#[test]
fn deepeyes_tool_calls_carry_their_boxes() {
    let dir = tempfile::tempdir().unwrap();
    let (orig, zoom) = images(dir.path());
    let v = serde_json::json!({
        "messages": [
            {"role": "system", "content": "You can zoom in."},
            {"role": "user", "content": [{"type": "image", "image": orig.to_str().unwrap()}, {"type": "text", "text": "What is on the sign?"}]},
            {"role": "assistant", "content": "<think>Zoom in.</think><tool_call>{\"name\": \"image_zoom_in_tool\", \"arguments\": {\"bbox_2d\": [300, 200, 450, 300], \"label\": \"sign\"}}</tool_call>"},
            {"role": "user", "content": [{"type": "text", "text": "<tool_response>"}, {"type": "image", "image": zoom.to_str().unwrap()}, {"type": "text", "text": "</tool_response>"}]},
            {"role": "assistant", "content": "<think>It says STOP.</think> <answer>STOP</answer>"}
        ],
        "ground_truth": "stop"
    });
    let file = dir.path().join("deepeyes.jsonl");
    write_lines(&file, &[v.to_string(), "[1, 2".into()]);
    assert_eq!(LogFormat::detect(&file).unwrap(), LogFormat::DeepEyes);
    let loaded = read(&file, LogFormat::DeepEyes).unwrap();
    assert_eq!(loaded.problems.len(), 1);
    let t = &loaded.traces[0];
    assert_eq!(t.run.outcome, Outcome::Correct);
    assert_eq!(t.crops(), vec![(1, [300.0, 200.0, 450.0, 300.0])]);
    let Step::Execute { outputs, .. } = &t.steps[1] else {
        panic!()
    };
    assert_eq!(outputs[0].provenance, Some(Provenance::Tool));
}

/// The Python that runs the writers' fixture scripts (scripts/test makes it, with Pillow).
fn python() -> std::path::PathBuf {
    std::env::var("THYME_TEST_PYTHON").map_or_else(
        |_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-python/bin/python"),
        std::path::PathBuf::from,
    )
}

/// Run a writer's fixture script (tests/python/writers/NAME.py) into `out`.
fn write_like(name: &str, out: &std::path::Path) {
    write_with(&python(), name, out);
}

/// `path` detected as `format` with `confidence`, then read.
fn detected_and_read(
    path: &std::path::Path,
    format: LogFormat,
    confidence: thyme_studio::trace::readers::Confidence,
) -> thyme_studio::trace::readers::Loaded {
    let d = thyme_studio::trace::readers::Detection::of(path).unwrap();
    assert_eq!(
        (d.format, d.confidence),
        (format, confidence),
        "{}",
        path.display()
    );
    read(path, format).unwrap()
}

/// The consumers' Python (pandas, xlsxwriter and the trainers), for writers that need them.
fn consumer_python() -> std::path::PathBuf {
    std::env::var("THYME_CONSUMER_PYTHON").map_or_else(
        |_| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/consumer-python/bin/python")
        },
        std::path::PathBuf::from,
    )
}

fn write_with(python: &std::path::Path, name: &str, out: &std::path::Path) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python/writers")
        .join(format!("{name}.py"));
    let status = std::process::Command::new(python)
        .arg(&script)
        .arg(out)
        .status()
        .unwrap_or_else(|e| panic!("{} (run `bash scripts/test` once): {e}", python.display()));
    assert!(status.success(), "{name}.py failed");
}

#[test]
fn a_deepeyes_evaluation_line_opens_with_its_original_beside_it_and_its_zoom_boxes() {
    let dir = tempfile::tempdir().unwrap();
    write_like("deepeyes_eval", dir.path());
    let log = dir
        .path()
        .join("direct_attributes/result_direct_attributes_ours.jsonl");
    assert_eq!(LogFormat::detect(&log).unwrap(), LogFormat::DeepEyes);
    let loaded = read(&log, LogFormat::DeepEyes).unwrap();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let t = &loaded.traces[0];
    assert_eq!(
        t.run.question,
        "What is the colour of the small flag on the pier?"
    );
    assert_eq!(t.run.ground_truth.as_deref(), Some("red"));
    // "A. red" answers the option whose text is the ground truth.
    assert_eq!(t.run.outcome, Outcome::Correct);
    // The original is the file the record names, beside the log; the logged empty data URL
    // is not taken for it.
    assert_eq!(
        t.run.images[0].path.as_deref(),
        Some(dir.path().join("direct_attributes/harbour_7.jpg").as_path())
    );
    assert_eq!(t.crops(), vec![(1, [1480.0, 880.0, 1580.0, 960.0])]);
    let Step::Execute { outputs, .. } = &t.steps[1] else {
        panic!("{:?}", t.steps)
    };
    assert_eq!(outputs.len(), 1);
    assert!(!outputs[0].image.has_pixels(), "the log kept no pixels");
    assert!(
        matches!(&t.steps[2], Step::Generate { text, .. } if text.contains("<answer>A. red</answer>"))
    );

    // `trace show` prints it (it failed with "no messages" before).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args(["trace", "show"])
        .arg(&log)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("from [1480, 880, 1580, 960]"), "{text}");

    // Images kept elsewhere: --images DIR finds the original there.
    let elsewhere = dir.path().join("bench-images");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::rename(
        dir.path().join("direct_attributes/harbour_7.jpg"),
        elsewhere.join("harbour_7.jpg"),
    )
    .unwrap();
    let mut moved = read(&log, LogFormat::DeepEyes).unwrap().traces.remove(0);
    assert!(!moved.run.images[0].path.as_ref().unwrap().exists());
    let found = thyme_studio::trace::readers::relocate_images(
        &mut moved,
        &dir.path().join("direct_attributes"),
        &elsewhere,
    );
    assert_eq!(found, 1);
    assert_eq!(
        moved.run.images[0].path.as_deref(),
        Some(elsewhere.join("harbour_7.jpg").as_path())
    );
    let converted = dir.path().join("converted");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args(["trace", "convert"])
        .arg(&log)
        .arg(&converted)
        .arg("--images")
        .arg(&elsewhere)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let t = read(&converted, LogFormat::Ours).unwrap().traces.remove(0);
    assert!(
        t.run.images[0].path.as_ref().unwrap().is_file(),
        "the converted run carries the original it found: {:?}",
        t.run.images
    );

    // A line in none of the known shapes is named with its line and its keys; the rest loads.
    let mut lines = std::fs::read_to_string(&log).unwrap();
    lines.push_str("{\"image\": \"x.jpg\", \"score\": 1}\n");
    std::fs::write(&log, lines).unwrap();
    let loaded = read(&log, LogFormat::DeepEyes).unwrap();
    assert_eq!(loaded.traces.len(), 1);
    assert_eq!(loaded.problems[0].line, 2);
    assert!(
        loaded.problems[0]
            .message
            .contains("its keys: image, score"),
        "{}",
        loaded.problems[0]
    );
}

#[test]
fn mini_o3_folders_map_normalised_boxes_to_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let (orig, zoom) = images(dir.path());
    std::fs::copy(&zoom, dir.path().join("observation_1_crop.jpg")).unwrap();
    let lines = vec![
        serde_json::json!({"role": "user", "content": [{"type": "image", "image": orig.file_name().unwrap().to_str().unwrap()}, {"type": "text", "text": "Read the sign."}]}).to_string(),
        serde_json::json!({"role": "assistant", "content": "<think>Look closer.</think><grounding>{\"bbox_2d\": [0.375, 0.3333333, 0.5625, 0.5], \"source\": \"original_image\"}</grounding>"}).to_string(),
        "oops".to_owned(),
        serde_json::json!({"role": "assistant", "content": "<think>Done.</think> <answer>42</answer>"}).to_string(),
    ];
    write_lines(&dir.path().join("traj.jsonl"), &lines);
    assert_eq!(LogFormat::detect(dir.path()).unwrap(), LogFormat::MiniO3);
    let loaded = read(dir.path(), LogFormat::MiniO3).unwrap();
    assert_eq!(loaded.problems.len(), 1);
    assert_eq!(loaded.problems[0].line, 3);
    let t = &loaded.traces[0];
    // As the rollout does: scaled to the source's pixels, then cut to whole pixels
    // (0.3333333 x 600 = 199.99998 -> 199).
    assert_eq!(t.crops(), vec![(1, [300.0, 199.0, 450.0, 300.0])]);
}

#[test]
fn a_mini_o3_save_folder_opens_as_its_rollout_writes_it() {
    use thyme_studio::trace::readers::{Confidence, Detection};
    let dir = tempfile::tempdir().unwrap();
    write_like("mini_o3_save_traj", dir.path());
    let save = dir.path().join("val_trajs");
    for path in [save.clone(), save.join("stats.json"), save.join("plate_8")] {
        let d = Detection::of(&path).unwrap();
        assert_eq!(
            (d.format, d.confidence),
            (LogFormat::MiniO3, Confidence::Certain),
            "{path:?}"
        );
    }
    let loaded = read(&save, LogFormat::MiniO3).unwrap();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let ids: Vec<&str> = loaded.traces.iter().map(|t| t.run.id.as_str()).collect();
    assert_eq!(ids, ["plate_7_0", "plate_7_1", "plate_8"]);
    for t in &loaded.traces {
        assert_eq!(t.run.question, "What is written on the small plate?");
        assert_eq!(t.run.ground_truth.as_deref(), Some("ML4"));
        assert!(
            t.run.images[0]
                .path
                .as_ref()
                .unwrap()
                .ends_with("original_image.jpg")
        );
    }
    let (zoomed, failed, pixels) = (&loaded.traces[0], &loaded.traces[1], &loaded.traces[2]);
    // The rewards stats.json gives each rollout.
    assert_eq!(zoomed.run.rewards.get("acc_reward"), Some(&1.0));
    assert_eq!(failed.run.rewards.get("acc_reward"), Some(&0.0));
    assert_eq!(zoomed.run.outcome, Outcome::Correct);
    assert_eq!(failed.run.outcome, Outcome::Wrong);
    // A box on the original in 0-1 of it, then one on the first crop in 0-1 of the crop:
    // both on the original, each output the crop file the rollout saved (not the resized
    // copy).
    assert_eq!(
        zoomed.crops(),
        vec![
            (1, [2000.0, 1500.0, 2400.0, 1800.0]),
            (3, [2100.0, 1575.0, 2300.0, 1725.0])
        ]
    );
    let Step::Execute { outputs, .. } = &zoomed.steps[3] else {
        panic!("{:?}", zoomed.steps)
    };
    assert!(
        outputs[0]
            .image
            .path
            .as_ref()
            .unwrap()
            .ends_with("observation_2_original_image.jpg")
    );
    // A zoom the rollout saved nothing for is an error step, and the run still opens.
    let Step::Execute { error, outputs, .. } = &failed.steps[1] else {
        panic!("{:?}", failed.steps)
    };
    assert!(outputs.is_empty());
    assert!(
        error.as_deref().unwrap().contains("saved no observation"),
        "{error:?}"
    );
    // Pixels of the 2000x1500 image the model saw, scaled to the 4000x3000 original.
    assert_eq!(pixels.crops(), vec![(1, [2000.0, 1500.0, 2400.0, 1800.0])]);

    // One folder alone, and a line the rollout would not write: named with its keys.
    let one = save.join("plate_7_0");
    let mut traj = std::fs::read_to_string(one.join("traj.jsonl")).unwrap();
    traj.push_str("{\"score\": 1}\n");
    std::fs::write(one.join("traj.jsonl"), traj).unwrap();
    let loaded = read(&one, LogFormat::MiniO3).unwrap();
    assert_eq!(loaded.traces.len(), 1);
    assert_eq!(loaded.problems.len(), 1);
    assert!(
        loaded.problems[0].message.contains("its keys: score"),
        "{}",
        loaded.problems[0]
    );
}

#[test]
fn pyvision_interpreter_results_are_steps() {
    let dir = tempfile::tempdir().unwrap();
    let (orig, zoom) = images(dir.path());
    let v = serde_json::json!([
        {"role": "user", "content": [{"type": "image", "image": orig.to_str().unwrap()}, {"type": "text", "text": "What is 6 x 7?"}]},
        {"role": "assistant", "content": "Let me compute.\n```python\nprint(6 * 7)\n```"},
        {"role": "user", "content": "<interpreter>42</interpreter>"},
        {"role": "assistant", "content": "```python\nimg.crop((300, 200, 450, 300))\n```"},
        {"role": "user", "content": [{"type": "text", "text": "<interpreter>"}, {"type": "image", "image": zoom.to_str().unwrap()}, {"type": "text", "text": "</interpreter>"}]},
        {"role": "assistant", "content": "<answer>42</answer>"}
    ]);
    let file = dir.path().join("pyvision.jsonl");
    write_lines(&file, &[v.to_string()]);
    assert_eq!(LogFormat::detect(&file).unwrap(), LogFormat::PyVision);
    let loaded = read(&file, LogFormat::PyVision).unwrap();
    let t = &loaded.traces[0];
    assert_eq!(t.run.question, "What is 6 x 7?");
    let execs: Vec<&Step> = t.steps.iter().filter(|s| s.kind() == "execute").collect();
    assert_eq!(execs.len(), 2);
    let Step::Execute {
        raw_code, stdout, ..
    } = execs[0]
    else {
        panic!()
    };
    assert_eq!(
        (raw_code.as_str(), stdout.as_str()),
        ("print(6 * 7)\n", "42")
    );
}

/// A run with one generate-execute-generate-answer cycle, for the lints to vary.
fn run_with(
    gt: Option<&str>,
    text: &str,
    code: &str,
    outputs: usize,
    fixes: Vec<Fix>,
    error: Option<&str>,
) -> Trace {
    let mut steps = vec![Step::Generate {
        text: "<think>Let me look.</think><code>...</code>".into(),
        stop: Some("</code>".into()),
        tokens: None,
        ms: None,
        sampling: Default::default(),
        rolled_back: false,
    }];
    if !code.is_empty() {
        steps.push(Step::Execute {
            raw_code: code.into(),
            executed_code: code.into(),
            fixes,
            stdout: String::new(),
            stderr: String::new(),
            error: error.map(str::to_owned),
            outputs: (0..outputs).map(|_| StepImage::default()).collect(),
            text_result: None,
            ms: None,
            fed_back: true,
            edited_from: None,
        });
    }
    steps.push(Step::Generate {
        text: text.into(),
        stop: Some("</answer>".into()),
        tokens: None,
        ms: None,
        sampling: Default::default(),
        rolled_back: false,
    });
    if text.contains("<answer>") {
        steps.push(Step::Answer {
            text: text.into(),
            extracted: None,
            matches_ground_truth: None,
        });
    }
    Trace::new(
        Run {
            id: "r".into(),
            question: "q".into(),
            ground_truth: gt.map(str::to_owned),
            ..Default::default()
        },
        steps,
    )
}

fn flags(t: &Trace) -> Vec<&'static str> {
    lint(t).into_iter().map(|f| f.name).collect()
}

#[test]
fn every_lint_fires_on_its_case_and_not_on_a_clean_run() {
    let good_text = "<think>It is 4.</think> <answer>4</answer>";
    let crop = "img.crop((1, 2, 3, 4)).save('a.png')";
    let clean = run_with(Some("4"), good_text, crop, 1, vec![], None);
    assert!(flags(&clean).is_empty(), "{:?}", lint(&clean));

    let mut claims = run_with(
        None,
        "<think>I crop the sign and zoom in: it says 4.</think> <answer>4</answer>",
        "",
        0,
        vec![],
        None,
    );
    claims.steps.remove(0);
    claims.finish();
    assert!(flags(&claims).contains(&"claims-crop-without-code"));

    let fixed = run_with(
        Some("4"),
        good_text,
        crop,
        1,
        vec![Fix {
            kind: "crop_box".into(),
            detail: "widened".into(),
        }],
        None,
    );
    assert_eq!(flags(&fixed), ["crop-fixed-by-sandbox"]);

    let failed = run_with(
        Some("4"),
        good_text,
        crop,
        0,
        vec![],
        Some("Sandbox for r: NameError"),
    );
    assert_eq!(flags(&failed), ["failed-step"]);

    let mut rolled = clean.clone();
    if let Step::Execute { fed_back, .. } = &mut rolled.steps[1] {
        *fed_back = false;
    }
    assert_eq!(flags(&rolled), ["rolled-back"]);

    let mut edited = clean.clone();
    if let Step::Execute { edited_from, .. } = &mut edited.steps[1] {
        *edited_from = Some("img.crop((0, 0, 9, 9))".into());
    }
    assert_eq!(flags(&edited), ["edited-by-a-person"]);

    let nothing = run_with(Some("4"), good_text, crop, 0, vec![], None);
    assert_eq!(flags(&nothing), ["image-code-saved-nothing"]);

    let wrong = run_with(Some("5"), good_text, crop, 1, vec![], None);
    assert_eq!(flags(&wrong), ["wrong-answer"]);

    let none = run_with(Some("4"), "<think>no idea</think>", crop, 1, vec![], None);
    assert_eq!(flags(&none), ["no-answer"]);

    let format = run_with(
        Some("4"),
        "<think>It is 4.</think><answer>4</answer>",
        crop,
        1,
        vec![],
        None,
    );
    assert_eq!(flags(&format), ["format-violation"]);

    // Every flag name was exercised above.
    let all: Vec<&str> = [
        claims, fixed, failed, rolled, edited, nothing, wrong, none, format,
    ]
    .iter()
    .flat_map(flags)
    .collect();
    for name in NAMES {
        assert!(all.contains(&name), "{name} not covered");
    }
}

#[test]
fn folders_and_jsonl_round_trip_and_list_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let (orig, zoom) = images(dir.path());
    let mut t = run_with(
        Some("4"),
        "<think>It is 4.</think> <answer>4</answer>",
        "x = image_path\nimg.crop((300, 200, 450, 300))",
        1,
        vec![],
        None,
    );
    t.run.images = vec![TraceImage::at(&orig)];
    if let Step::Execute { outputs, .. } = &mut t.steps[1] {
        outputs[0].image = TraceImage::at(&zoom);
    }
    provenance::fill(&mut t);
    let folder = dir.path().join("run1");
    io::write_folder(&t, &folder).unwrap();
    assert!(folder.join("trace.json").is_file());
    assert_eq!(LogFormat::detect(&folder).unwrap(), LogFormat::Ours);
    let back = read(&folder, LogFormat::Ours).unwrap().traces.remove(0);
    let first = &back.run.images[0];
    assert_eq!((first.width, first.height), (Some(800), Some(600)));
    assert_eq!(first.sha256.as_ref().map(String::len), Some(64));
    let Step::Execute { outputs, .. } = &back.steps[1] else {
        panic!()
    };
    assert_eq!(
        outputs[0].image.path,
        Some(folder.join("images/002-zoom.png"))
    );
    assert_eq!(
        (outputs[0].image.width, outputs[0].image.height),
        (Some(300), Some(200))
    );
    assert_eq!(back.crops(), t.crops());
    assert_eq!(back.steps.len(), t.steps.len());
    // The same run as one .zip.
    let zipped = dir.path().join("run1.zip");
    io::write_zip(&t, &zipped).unwrap();
    assert_eq!(LogFormat::detect(&zipped).unwrap(), LogFormat::Ours);
    let from_zip = read(&zipped, LogFormat::Ours).unwrap().traces.remove(0);
    assert_eq!(from_zip.run.question, t.run.question);
    assert_eq!(from_zip.crops(), t.crops());
    let Step::Execute { outputs, .. } = &from_zip.steps[1] else {
        panic!()
    };
    assert!(outputs[0].image.path.as_ref().unwrap().is_file());
    std::fs::write(dir.path().join("bad.zip"), b"PK not really").unwrap();
    assert!(read(&dir.path().join("bad.zip"), LogFormat::Ours).is_err());
    // JSONL: many runs, listed from their headers, one loaded by its row.
    let many: Vec<Trace> = (0..50)
        .map(|i| {
            let mut x = t.clone();
            x.run.id = format!("run-{i}");
            x
        })
        .collect();
    let jsonl = dir.path().join("runs.jsonl");
    io::write_jsonl(&many, &jsonl).unwrap();
    std::fs::write(
        &jsonl,
        format!("{}not a trace\n", std::fs::read_to_string(&jsonl).unwrap()),
    )
    .unwrap();
    let mut rows = Vec::new();
    let problems = io::index_jsonl(
        &jsonl,
        &mut |r| rows.extend(r),
        &std::sync::atomic::AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(rows.len(), 50);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].line, 51);
    assert_eq!(rows[7].id, "run-7");
    assert_eq!(rows[7].outcome, Outcome::Correct);
    let loaded = io::load_row(&jsonl, &rows[7]).unwrap();
    assert_eq!(loaded.run.id, "run-7");
}

#[test]
fn the_cli_converts_shows_and_lints() {
    let dir = tempfile::tempdir().unwrap();
    let (orig, zoom) = images(dir.path());
    let row = serde_json::json!({"image": [orig.to_str().unwrap(), zoom.to_str().unwrap()], "question": "Which number?", "response": "<think>crop</think><code>c = Image.open(image_path).crop((300, 200, 450, 300))</code><sandbox_output><image></sandbox_output><think>4</think><answer>5</answer>", "answer": "4"});
    let file = dir.path().join("sft.jsonl");
    write_lines(&file, &[row.to_string()]);
    let bin = env!("CARGO_BIN_EXE_thyme-studio");
    let out = dir.path().join("converted");
    let o = std::process::Command::new(bin)
        .args(["trace", "convert"])
        .arg(&file)
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.join("trace.json").is_file() && out.join("images").is_dir());
    let o = std::process::Command::new(bin)
        .args(["trace", "show"])
        .arg(&out)
        .args(["--step", "2"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("from [300, 200, 450, 300] (code)"), "{text}");
    let o = std::process::Command::new(bin)
        .args(["trace", "lint", "--json"])
        .arg(&out)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["flag"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"wrong-answer") && names.contains(&"format-violation"),
        "{names:?}"
    );
    let o = std::process::Command::new(bin)
        .args(["trace", "show", "/nonexistent.jsonl"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn search_finds_text_in_reasoning_and_code_not_in_images_and_combines_with_filters() {
    use std::sync::atomic::AtomicBool;
    use thyme_studio::trace::io::{index_jsonl, write_jsonl};
    use thyme_studio::trace::search::{Query, search_jsonl};
    let dir = tempfile::tempdir().unwrap();
    let mut traces = Vec::new();
    for i in 0..60 {
        let (text, code, error) = match i % 4 {
            0 => (
                "<think>The Harbour sign is red.</think> <answer>red</answer>",
                "img.crop((1, 2, 3, 4)).save('a.png')",
                None,
            ),
            1 => (
                "<think>Nothing here.</think> <answer>blue</answer>",
                "z = cv2.resize(img, None, fx=2, fy=2)",
                None,
            ),
            2 => (
                "<think>I give up.</think> <answer>x</answer>",
                "img.crop((0, 0, 9, 9))",
                Some("Sandbox for r: NameError"),
            ),
            _ => (
                "<think>plain</think> <answer>red</answer>",
                "print(1)",
                None,
            ),
        };
        let mut t = run_with(Some("red"), text, code, 1, vec![], error);
        t.run.id = format!("run-{i:03}");
        // An embedded image whose base64 spells the search word: never a match.
        if let Some(Step::Execute { outputs, .. }) = t.steps.get_mut(1) {
            outputs[0].image.data_url =
                Some("data:image/png;base64,aGFyYm91ckhhcmJvdXI=harbourHARBOUR".into());
        }
        t.finish();
        traces.push(t);
    }
    let file = dir.path().join("runs.jsonl");
    write_jsonl(&traces, &file).unwrap();
    let mut rows = Vec::new();
    let cancel = AtomicBool::new(false);
    index_jsonl(&file, &mut |r| rows.extend(r), &cancel).unwrap();
    let search = |q: &Query| {
        let mut hits = Vec::new();
        search_jsonl(&file, &rows, q, &cancel, &mut |h| hits.extend(h)).unwrap();
        hits
    };

    let harbour = search(&Query {
        text: "HARBOUR".into(),
        ..Default::default()
    });
    assert_eq!(harbour.len(), 15, "{harbour:?}");
    assert!(
        harbour
            .iter()
            .all(|h| h.field == "reasoning" && h.step == Some(2))
    );
    assert!(harbour[0].excerpt.contains("Harbour sign"));
    // In file order: the first match is the first run.
    assert_eq!(rows[harbour[0].row].id, "run-000");

    let code = search(&Query {
        text: "cv2.resize".into(),
        ..Default::default()
    });
    assert_eq!(code.len(), 15);
    assert!(code.iter().all(|h| h.field == "code" && h.step == Some(1)));

    // Text and a flag together: crops that failed.
    let failed_crops = search(&Query {
        text: "crop((".into(),
        flag: Some("failed-step".into()),
        ..Default::default()
    });
    assert_eq!(failed_crops.len(), 15);
    assert!(
        failed_crops
            .iter()
            .all(|h| rows[h.row].id.ends_with(['2', '6', '0', '4', '8']))
    );
    let wrong = search(&Query {
        outcome: Some(Outcome::Wrong),
        ..Default::default()
    });
    assert_eq!(wrong.len(), 30);

    // The same from the command line, as JSON.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args(["trace", "search"])
        .arg(&file)
        .args(["cv2.RESIZE", "--outcome", "wrong", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 15);
    assert_eq!(v[0]["run"], "run-001");
    assert_eq!(v[0]["step"], 2);
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args(["trace", "search"])
        .arg(&file)
        .args(["x", "--outcome", "great"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn two_runs_part_at_their_first_different_step() {
    use thyme_studio::trace::first_divergence;
    let good = "<think>It is 4.</think> <answer>4</answer>";
    let a = run_with(
        Some("4"),
        good,
        "img.crop((1, 2, 3, 4)).save('a.png')",
        1,
        vec![],
        None,
    );
    assert_eq!(first_divergence(&a, &a), None);
    let b = run_with(
        Some("4"),
        good,
        "img.crop((9, 9, 30, 40)).save('a.png')",
        1,
        vec![],
        None,
    );
    assert_eq!(first_divergence(&a, &b), Some(1));
    let mut shorter = a.clone();
    shorter.steps.pop();
    assert_eq!(first_divergence(&a, &shorter), Some(shorter.steps.len()));
    let other_answer = run_with(
        Some("4"),
        "<think>It is 5.</think> <answer>5</answer>",
        "img.crop((1, 2, 3, 4)).save('a.png')",
        1,
        vec![],
        None,
    );
    assert_eq!(first_divergence(&a, &other_answer), Some(2));
}

#[test]
fn a_detection_says_how_sure_it_is_and_an_unknown_log_names_its_keys() {
    use thyme_studio::trace::readers::{Confidence, Detection};
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, v: serde_json::Value| {
        let p = dir.path().join(name);
        write_lines(&p, &[v.to_string()]);
        p
    };
    let eval = write(
        "eval.jsonl",
        serde_json::json!({"image": "a.jpg", "question": "q", "pred_ans": "a", "pred_output": []}),
    );
    let d = Detection::of(&eval).unwrap();
    assert_eq!(
        (d.format, d.confidence),
        (LogFormat::DeepEyes, Confidence::Certain)
    );
    let rl = write(
        "rl.jsonl",
        serde_json::json!({"prompt": "p", "completion": "c"}),
    );
    let d = Detection::of(&rl).unwrap();
    assert_eq!(
        (d.format, d.confidence),
        (LogFormat::ThymeRl, Confidence::Likely)
    );
    assert!(d.why.contains("completion"));
    let odd = write("odd.jsonl", serde_json::json!({"frames": [], "score": 1}));
    let e = Detection::of(&odd).unwrap_err().to_string();
    assert!(
        e.contains("the keys frames, score") && e.contains("--format"),
        "{e}"
    );
    // The command line says when a detection is only likely, and --format overrides it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args(["trace", "lint"])
        .arg(&rl)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("read as thyme-rl"),
        "{out:?}"
    );
}

#[test]
fn rl_runs_filter_by_a_reward_range() {
    let dir = tempfile::tempdir().unwrap();
    let line = |step: u32, cstorm: f64| {
        serde_json::json!({
            "step": step,
            "prompt": "<image>\nHow many cars?",
            "completion": "<think>Count.</think> <answer>3</answer>",
            "FMTORM": 1.0, "CSTORM": cstorm,
            "solution": "3",
        })
        .to_string()
    };
    let file = dir.path().join("completions.jsonl");
    write_lines(&file, &[line(1, 0.0), line(2, 0.5), line(3, 1.0)]);
    let search = |reward: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
            .args(["trace", "search"])
            .arg(&file)
            .args(["--format", "thyme-rl", "--json", "--reward", reward])
            .output()
            .unwrap()
    };
    let out = search("CSTORM=0.5..");
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["run"].as_str().unwrap())
        .collect();
    assert_eq!(runs, ["step-2", "step-3"]);
    let out = search("CSTORM=..0.2");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(search("CSTORM=high").status.code(), Some(1));
}

#[test]
fn a_pyvision_results_file_opens_as_its_script_writes_it() {
    use thyme_studio::trace::readers::Confidence;
    let dir = tempfile::tempdir().unwrap();
    write_like("pyvision_main", dir.path());
    let file = dir.path().join("results.json");
    let loaded = detected_and_read(&file, LogFormat::PyVision, Confidence::Certain);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    assert_eq!(loaded.traces.len(), 1);
    let t = &loaded.traces[0];
    assert_eq!(t.run.id, "0");
    assert_eq!(t.run.question, "What is painted on the white panel?");
    assert_eq!(
        t.run.images[0].path.as_deref(),
        Some(dir.path().join("street.png").as_path())
    );
    assert_eq!(t.run.outcome, Outcome::Correct);
    let Step::Execute {
        raw_code, outputs, ..
    } = &t.steps[1]
    else {
        panic!("{:?}", t.steps)
    };
    assert!(raw_code.contains("image_clue_0.crop((880, 480, 1000, 580))"));
    assert_eq!(outputs.len(), 1);
    assert!(
        outputs[0].image.has_pixels(),
        "the crop is kept as a data URL"
    );
    // Where it came from, read from the code's crop of image_clue_0, without Thyme's widening.
    let mut t = t.clone();
    thyme_studio::trace::provenance::fill(&mut t);
    assert_eq!(t.crops(), vec![(1, [880.0, 480.0, 1000.0, 580.0])]);
}

#[test]
fn thymes_grpo_completions_log_opens_as_its_trainer_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    write_like("thyme_rl_completions", dir.path());
    let file = dir.path().join("output_dir/completions.jsonl");
    assert_eq!(LogFormat::detect(&file).unwrap(), LogFormat::ThymeRl);
    let loaded = read(&file, LogFormat::ThymeRl).unwrap();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    // Two logging steps, each a table of two rollouts: one run per row, each with its own id.
    let ids: Vec<&str> = loaded.traces.iter().map(|t| t.run.id.as_str()).collect();
    assert_eq!(ids, ["step-3#1", "step-3#2", "step-4#1", "step-4#2"]);
    let original = dir.path().join("data/field_12.jpg");
    for t in &loaded.traces {
        // The question without the template, the vision block or the path headers, in both
        // the fork's rendering and current ms-swift's decoded one.
        assert_eq!(
            t.run.question,
            "What colour is the small sign at the right of the field?"
        );
        // The original is the file the user turn's path header names.
        assert_eq!(t.run.images[0].path.as_deref(), Some(original.as_path()));
        assert_eq!(t.run.rewards.len(), 3, "{:?}", t.run.rewards);
    }
    let good = &loaded.traces[0];
    assert_eq!(good.run.rewards.get("VQAORM"), Some(&1.0));
    assert_eq!(
        good.run.ground_truth, None,
        "step 3's table has no solution"
    );
    assert_eq!(loaded.traces[3].run.ground_truth.as_deref(), Some("yellow"));
    assert_eq!(loaded.traces[3].run.outcome, Outcome::Correct);
    assert_eq!(loaded.traces[2].run.outcome, Outcome::Wrong);
    // The sandbox's image is a placeholder the log kept no pixels of; its place on the
    // original comes from the code's crop of image_path.
    let Step::Execute { outputs, .. } = &good.steps[1] else {
        panic!("{:?}", good.steps)
    };
    assert_eq!(outputs.len(), 1);
    assert!(!outputs[0].image.has_pixels());
    let mut placed = good.clone();
    provenance::fill(&mut placed);
    assert_eq!(placed.crops(), vec![(1, [2060.0, 1260.0, 2200.0, 1380.0])]);
    // The failed cell is an error step with no output.
    let Step::Execute { error, outputs, .. } = &loaded.traces[1].steps[1] else {
        panic!("{:?}", loaded.traces[1].steps)
    };
    assert!(error.as_deref().unwrap().contains("four numbers"));
    assert!(outputs.is_empty());

    // The reward filter sees each row's own rewards.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args(["trace", "search"])
        .arg(&file)
        .args(["--reward", "VQAORM=1..1", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("step-3#1") && text.contains("step-4#2") && !text.contains("step-3#2"),
        "{text}"
    );
}

#[test]
fn a_chain_of_focus_vstar_result_opens_with_its_boxes_placed_on_the_original() {
    use thyme_studio::trace::readers::Confidence;
    let dir = tempfile::tempdir().unwrap();
    write_like("chain_of_focus_vstar", dir.path());
    let log = dir
        .path()
        .join("results/result_direct_attributes_cof.jsonl");
    // Its keys are DeepEyes' evaluation keys; its placeholder images tell it apart.
    let loaded = detected_and_read(&log, LogFormat::ChainOfFocus, Confidence::Certain);
    assert_eq!(loaded.traces.len(), 1);
    // The item the script failed on is named with its line and its status.
    assert_eq!(loaded.problems.len(), 1);
    assert_eq!(loaded.problems[0].line, 2);
    assert!(
        loaded.problems[0].message.contains("CUDA out of memory"),
        "{}",
        loaded.problems[0]
    );
    let mut t = loaded.traces[0].clone();
    assert_eq!(
        t.run.question,
        "What is the colour of the kite? (A) orange (B) purple"
    );
    assert_eq!(t.run.outcome, Outcome::Correct);
    // The image path is relative to where the script ran: --images names that folder.
    let found = thyme_studio::trace::readers::relocate_images(
        &mut t,
        &dir.path().join("results"),
        dir.path(),
    );
    assert_eq!(found, 1);
    assert!(t.run.images[0].path.as_ref().unwrap().is_file());
    let Step::Execute { outputs, fixes, .. } = &t.steps[1] else {
        panic!("{:?}", t.steps)
    };
    assert!(!outputs[0].image.has_pixels(), "base64_image is no image");
    // The turn held two calls; the step says only the first ran.
    assert_eq!(fixes.len(), 1, "{fixes:?}");
    assert_eq!(fixes[0].kind, "first_call_only");
    // The box was given on the 4004x2996 image the model saw and enlarged 1.5x: on the
    // 4000x3000 original it is this rectangle.
    provenance::fill(&mut t);
    let crops = t.crops();
    assert_eq!(crops.len(), 1);
    let want = [
        1975.0 * 4000.0 / 4004.0,
        1475.0 * 3000.0 / 2996.0,
        2125.0 * 4000.0 / 4004.0,
        1625.0 * 3000.0 / 2996.0,
    ];
    for (a, b) in crops[0].1.iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{:?} vs {want:?}", crops[0].1);
    }

    // Read as DeepEyes (--format deepeyes), the same box would be taken as original pixels.
    let as_deepeyes = read(&log, LogFormat::DeepEyes).unwrap().traces.remove(0);
    assert_eq!(
        as_deepeyes.crops(),
        vec![(1, [2000.0, 1500.0, 2100.0, 1600.0])]
    );
}

#[test]
fn deepeyes_v2_prediction_tables_open_in_each_format_dump_writes() {
    use thyme_studio::trace::readers::Confidence;
    let dir = tempfile::tempdir().unwrap();
    write_with(&consumer_python(), "deepeyes_v2_eval", dir.path());
    let work = dir.path().join("results/deepeyesv2");
    let mut whole_steps = None;
    for ext in ["tsv", "json", "xlsx"] {
        let table = work.join(format!("DeepEyesV2-vllm_VStarBench.{ext}"));
        let loaded = detected_and_read(&table, LogFormat::DeepEyesV2, Confidence::Certain);
        assert_eq!(loaded.traces.len(), 2, "{ext}: {:?}", loaded.problems);
        let t = &loaded.traces[0];
        assert_eq!(
            t.run.question,
            "What colour is the small patch?\n(A) red\n(B) blue"
        );
        assert_eq!(t.run.ground_truth.as_deref(), Some("A"));
        assert_eq!(t.run.outcome, Outcome::Correct, "{ext}");
        assert!(t.run.images[0].path.as_ref().unwrap().is_file(), "{ext}");
        let Step::Execute {
            raw_code,
            stdout,
            outputs,
            ..
        } = &t.steps[1]
        else {
            panic!("{ext}: {:?}", t.steps)
        };
        assert!(raw_code.starts_with("import matplotlib.pyplot as plt\ncrop = image_1.crop("));
        assert_eq!(stdout, "(160, 130)");
        // The figure is named, its data was cut by the evaluation.
        assert_eq!(outputs.len(), 1);
        assert!(!outputs[0].image.has_pixels());
        // The long conversation: whole in the TSV and JSON, cut at the cell limit in the
        // workbook, where the messages before the cut still open and a problem says why.
        let long = &loaded.traces[1];
        if ext == "xlsx" {
            assert_eq!(loaded.problems.len(), 1, "{:?}", loaded.problems);
            assert!(
                loaded.problems[0].message.contains("32767-character limit"),
                "{}",
                loaded.problems[0]
            );
            assert_eq!(loaded.problems[0].line, 3);
            assert!(
                long.steps.len() < whole_steps.unwrap(),
                "{}",
                long.steps.len()
            );
            assert!(long.run.cut_short.is_some());
        } else {
            assert!(loaded.problems.is_empty(), "{ext}: {:?}", loaded.problems);
            // 60 code turns and their results, the answer turn and its answer.
            assert_eq!(long.steps.len(), 122, "{ext}");
            assert_eq!(long.run.outcome, Outcome::Correct, "{ext}");
            whole_steps = Some(long.steps.len());
        }
    }

    // The cold-start SFT data: the figure is there; the audit says why it cannot make it again.
    let sft = dir.path().join("sft/sft_part_0.json");
    assert_eq!(LogFormat::detect(&sft).unwrap(), LogFormat::DeepEyesV2);
    let loaded = read(&sft, LogFormat::DeepEyesV2).unwrap();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let t = &loaded.traces[0];
    assert_eq!(t.run.question, "What colour is the small patch?");
    let Step::Execute { outputs, .. } = &t.steps[1] else {
        panic!("{:?}", t.steps)
    };
    assert!(
        outputs[0]
            .image
            .path
            .as_ref()
            .unwrap()
            .ends_with("sa_4690_fig1.png")
    );
    assert!(outputs[0].image.has_pixels());
    let mut workers = thyme_studio::trace::audit::Workers::new(
        None,
        std::sync::Arc::new(thyme_studio::trace::audit::Originals::new(1 << 28)),
    );
    let audited = thyme_studio::trace::audit::audit_run(
        t,
        "sft_part_0.json",
        Some(1),
        &mut workers,
        &std::sync::atomic::AtomicBool::new(false),
    );
    assert_eq!(audited.len(), 1);
    assert_eq!(
        audited[0].verdict,
        thyme_studio::trace::audit::Verdict::NotReproducible
    );
    assert!(
        audited[0].detail.contains("Jupyter kernel"),
        "{}",
        audited[0].detail
    );
}

#[test]
fn a_verl_generation_dump_opens_with_each_tool_call_its_answer_and_the_rewards() {
    use thyme_studio::trace::readers::Confidence;
    let dir = tempfile::tempdir().unwrap();
    write_like("verl_generations", dir.path());
    let log = dir.path().join("val_generations/40.jsonl");
    let loaded = detected_and_read(&log, LogFormat::Verl, Confidence::Likely);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    assert_eq!(loaded.traces.len(), 2);
    let t = &loaded.traces[0];
    assert_eq!(t.run.id, "step-40");
    assert_eq!(t.run.question, "What is the serial number on the plate?");
    assert_eq!(t.run.rewards["score"], 1.0);
    assert_eq!(t.run.rewards["acc"], 1.0);
    assert!(!t.run.rewards.contains_key("step"));
    let kinds: Vec<&str> = t.steps.iter().map(|s| s.kind()).collect();
    assert_eq!(
        kinds,
        [
            "generate", "execute", "generate", "execute", "execute", "generate", "answer"
        ]
    );
    // The model wrote the call; the tool ran its code, and gave an image back the dump does
    // not keep.
    let Step::Execute {
        raw_code,
        executed_code,
        outputs,
        error,
        ..
    } = &t.steps[1]
    else {
        panic!("{:?}", t.steps)
    };
    assert!(raw_code.contains("\"name\": \"code_image_tool\""));
    assert_eq!(
        executed_code,
        "result = image.crop((620, 410, 860, 520)).resize((480, 220))"
    );
    assert_eq!(outputs.len(), 1);
    assert!(!outputs[0].image.has_pixels());
    assert!(error.is_none());
    // Two calls in one turn, each answered in its own block, in order.
    let Step::Execute { error, outputs, .. } = &t.steps[4] else {
        panic!("{:?}", t.steps)
    };
    assert!(
        error
            .as_deref()
            .unwrap()
            .contains("name 'rotate' is not defined")
    );
    assert!(outputs.is_empty());
    let Step::Answer { extracted, .. } = &t.steps[6] else {
        panic!("{:?}", t.steps)
    };
    assert_eq!(extracted.as_deref(), Some("K-1187"));
    // A sample answered without tools.
    let plain = &loaded.traces[1];
    assert_eq!(plain.run.question, "How many windows are lit?");
    assert_eq!(plain.steps.len(), 2);
}

#[test]
fn a_pixel_reasoner_video_run_is_read_but_its_crops_are_not_placed() {
    let dir = tempfile::tempdir().unwrap();
    let q = dir.path().join("dumps_iter0/video_3");
    std::fs::create_dir_all(&q).unwrap();
    let call = |name: &str, args: &str| {
        format!("<tool_call>\n{{\"name\": \"{name}\", \"arguments\": {args}}}\n</tool_call>")
    };
    let conv = serde_json::json!([[
        {"role": "user", "content": [
            {"video": ["f1.jpg", "f2.jpg"], "type": "video", "max_pixels": 401408},
            {"text": "What happens first?", "type": "text"}]},
        {"role": "assistant", "content": [{"type": "text", "text": call("select_frames", "{\"target_frames\": [1, 2]}")}]},
        {"role": "user", "content": [{"type": "text", "text": "\nHere are the selected frames (Frame Size: 448x252, Numbered 2 to 3):"}]},
        {"role": "assistant", "content": [{"type": "text", "text": call("crop_image_normalized", "{\"bbox_2d\": [0.1, 0.1, 0.6, 0.6], \"target_image\": 2}")}]},
        {"role": "user", "content": [{"type": "text", "text": "\nHere is the cropped image (Image Size: 420x252):"}, {"type": "image", "image": "/gone/iter1.jpg"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "\\boxed{A door opens}"}]}
    ], "prompt", "[]"]);
    std::fs::write(q.join("conv.json"), conv.to_string()).unwrap();
    let loaded = read(&dir.path().join("dumps_iter0"), LogFormat::PixelReasoner).unwrap();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let t = &loaded.traces[0];
    assert_eq!(t.run.question, "What happens first?");
    let crops: Vec<_> = t
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Execute { outputs, .. } => Some(outputs),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(crops.len(), 1);
    assert_eq!(
        crops[0].source_rect, None,
        "a video frame's crop is not placed"
    );
    let Some(Step::Answer { extracted, .. }) = t.steps.last() else {
        panic!("{:?}", t.steps)
    };
    assert_eq!(extracted.as_deref(), Some("A door opens"));
}

#[test]
fn trace_stats_counts_a_real_rl_log_and_writes_its_csv() {
    // The GRPO completions log as Thyme's trainer writes it: four rollouts, one with no
    // ground truth, one whose code cell failed, one wrong and one correct.
    let dir = tempfile::tempdir().unwrap();
    write_like("thyme_rl_completions", dir.path());
    let file = dir.path().join("output_dir/completions.jsonl");
    let loaded = read(&file, LogFormat::ThymeRl).unwrap();
    let count = |o: Outcome| loaded.traces.iter().filter(|t| t.run.outcome == o).count();
    let csv = dir.path().join("stats.csv");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args(["trace", "stats", "--json", "--csv"])
        .arg(&csv)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["runs"], 4);
    assert_eq!(v["correct"], count(Outcome::Correct));
    assert_eq!(v["wrong"], count(Outcome::Wrong));
    assert_eq!(v["answered"], count(Outcome::Answered));
    assert!(count(Outcome::Correct) >= 1 && count(Outcome::Wrong) >= 1);
    // The failed cell, and the crop the code made (placed on the original from its box).
    assert!(v["execution_errors"].as_u64().unwrap() >= 1, "{v}");
    assert!(v["crops"]["runs_with_crops"].as_u64().unwrap() >= 1, "{v}");
    // The log states no image size: the original's header gives it, so the crop is measured.
    let share = v["crops"]["area_share_p50"].as_f64().unwrap();
    assert!(share > 0.0 && share < 0.05, "{v}");
    assert_eq!(v["tool_use_rate"], 1.0, "every rollout ran code");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.starts_with("dimension,key,runs,correct,wrong,"),
        "{text}"
    );
    assert!(text.contains("\ntool use,tools,4,"), "{text}");
    // The plain report says the same in words.
    let plain = std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args(["trace", "stats"])
        .arg(&file)
        .output()
        .unwrap();
    let plain = String::from_utf8_lossy(&plain.stdout);
    assert!(
        plain.starts_with("4 runs:") && plain.contains("by tool use:"),
        "{plain}"
    );
}
