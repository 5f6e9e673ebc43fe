//! Exports checked by their real consumers (pycocotools, Pillow, Python's json with the
//! consumers' key and type rules; see tests/python/check_exports.py), round trips, and imports
//! of good and bad data.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::atomic::AtomicBool;

use thyme_studio::dataset::{Answer, Question, Region, Review};
use thyme_studio::exchange::{
    ExportOptions, Filter, Format, ImportFormat, ImportSettings, PathMode, export, import_file,
};
use thyme_studio::geometry::{ImageRect, ImageSize};
use thyme_studio::store::{Command, SqliteStore, Store};

/// The Python with the consumer libraries: `THYME_TEST_PYTHON`, else the environment
/// scripts/test makes in target/test-python.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("THYME_TEST_PYTHON") {
        return p.into();
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-python/bin/python");
    assert!(
        p.is_file(),
        "{} is missing: run `bash scripts/test` once (it installs pycocotools, Pillow and numpy there)",
        p.display()
    );
    p
}

fn consumer_accepts(kind: &str, path: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_exports.py");
    let out = Process::new(python())
        .arg(script)
        .arg(kind)
        .arg(path)
        .output()
        .expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{kind} rejected {}: {text}",
        path.display()
    );
    text
}

/// The demo project (small scale) plus one box over 5 % with a question on it, one accepted
/// question and one invalid question.
fn project(dir: &Path) -> PathBuf {
    let path = thyme_studio::demo::write_demo(&dir.join("demo"), 16, &|_| {}).unwrap();
    let mut store = SqliteStore::open(&path).unwrap();
    let image = store.images().unwrap().remove(0);
    let big = Region::new(
        image.id.clone(),
        ImageRect::new(
            0.0,
            0.0,
            f64::from(image.size.width) / 2.0,
            f64::from(image.size.height) / 2.0,
        ),
        "sky",
    );
    let about_big = Question::new(
        image.id.clone(),
        vec![big.id],
        "What colour is the sky?",
        Answer::Open {
            text: "blue".into(),
        },
        "attribute",
    );
    let invalid = Question::new(
        image.id.clone(),
        vec![],
        "",
        Answer::Open { text: "".into() },
        "ocr",
    );
    let mut accepted = store.questions(&image.id).unwrap().remove(0);
    let before = accepted.clone();
    accepted.review = Some(Review::accepted("reviewer", "", 1));
    store
        .apply_all(
            "reviewer",
            &[
                Command::AddRegion {
                    region: big,
                    links: vec![],
                },
                Command::AddQuestion {
                    question: about_big,
                },
                Command::AddQuestion { question: invalid },
                Command::UpdateQuestion {
                    before,
                    after: accepted,
                },
            ],
        )
        .unwrap();
    path
}

/// (boxes, questions) an export with the default filter holds: all but the large box, the
/// question about it and the invalid question.
fn expected(project: &Path) -> (u64, u64) {
    let stats = SqliteStore::open(project).unwrap().stats().unwrap();
    (stats.regions - 1, stats.questions - 2)
}

fn run_export(
    project: &Path,
    options: &ExportOptions,
    out: &Path,
) -> thyme_studio::exchange::ExportReport {
    let store = SqliteStore::open(project).unwrap();
    export(
        &store,
        options,
        out,
        &mut |_, _| {},
        &AtomicBool::new(false),
    )
    .unwrap()
}

#[test]
fn coco_export_loads_in_pycocotools_with_ap_one_and_leaves_out_large_boxes() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(dir.path());
    let out = dir.path().join("out/coco.json");
    let report = run_export(&p, &ExportOptions::new(Format::Coco), &out);
    let (boxes, _) = expected(&p);
    assert_eq!(report.boxes, boxes);
    assert_eq!(
        report
            .left_out
            .get("box over 5 % of the image (not a small-object target)"),
        Some(&1)
    );
    assert_eq!(
        report
            .left_out
            .get("question about a box over 5 % of the image"),
        Some(&1)
    );
    assert!(
        report
            .left_out
            .keys()
            .any(|k| k.starts_with("invalid question"))
    );
    let said = consumer_accepts("coco", &out);
    assert!(
        said.contains(&format!("{boxes} boxes")) && said.contains("AP 1.0"),
        "{said}"
    );
}

#[test]
fn yolo_export_passes_the_label_rules() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(dir.path());
    let out = dir.path().join("yolo");
    let report = run_export(&p, &ExportOptions::new(Format::Yolo), &out);
    assert_eq!(report.images, 3);
    assert_eq!(report.files_copied, 3);
    let said = consumer_accepts("yolo", &out);
    assert!(
        said.contains(&format!("{} boxes", expected(&p).0)),
        "{said}"
    );
}

#[test]
fn thyme_rl_lines_have_what_the_trainer_reads() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(dir.path());
    let out = dir.path().join("rl.jsonl");
    let report = run_export(&p, &ExportOptions::new(Format::ThymeRl), &out);
    assert_eq!(report.questions, expected(&p).1);
    consumer_accepts("thyme-rl", &out);
    // Multiple choice in the MME-RealWorld style: lettered options, the letter as solution.
    let text = std::fs::read_to_string(&out).unwrap();
    let choice = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["kind"] == "choice")
        .expect("the demo has choice questions");
    let user = choice["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("\nOptions:\nA. "), "{user}");
    let solution = choice["solution"].as_str().unwrap();
    assert!(solution.len() == 1 && solution.chars().all(|c| c.is_ascii_uppercase()));
    // Only accepted images: an accepted question on an image nobody accepted is not enough.
    let mut accepted = ExportOptions::new(Format::ThymeRl);
    accepted.filter = Filter {
        accepted_only: true,
        ..Filter::default()
    };
    let report = run_export(&p, &accepted, &dir.path().join("accepted.jsonl"));
    assert_eq!(report.questions, 0);
    // Accept the first image: its valid questions go out (not the one about the large box,
    // not the invalid one).
    let mut store = SqliteStore::open(&p).unwrap();
    let image = store.images().unwrap().remove(0);
    let on_it = store.questions(&image.id).unwrap().len() as u64;
    let shown = thyme_studio::team::state::ImageState::read(&store, &image.id)
        .unwrap()
        .unwrap();
    let accept = thyme_studio::annotate::review::review_command(
        &shown,
        thyme_studio::dataset::ReviewTarget::Image(image.id.clone()),
        Some(Review::accepted("lead", "", 2)),
    )
    .unwrap();
    store.apply("lead", accept).unwrap();
    let report = run_export(&p, &accepted, &dir.path().join("accepted2.jsonl"));
    assert_eq!(report.questions, on_it - 2);
}

#[test]
fn swift_and_llava_exports_have_their_consumers_shape() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(dir.path());
    let swift = dir.path().join("swift.jsonl");
    run_export(&p, &ExportOptions::new(Format::Swift), &swift);
    consumer_accepts("swift", &swift);
    let llava = dir.path().join("llava.json");
    run_export(&p, &ExportOptions::new(Format::Llava), &llava);
    consumer_accepts("llava", &llava);
}

#[test]
fn copied_images_and_relative_paths_resolve_from_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(dir.path());
    for mode in [PathMode::Relative, PathMode::Copy] {
        let out = dir.path().join(format!("{}/rl.jsonl", mode.name()));
        let mut options = ExportOptions::new(Format::ThymeRl);
        options.paths = mode;
        let report = run_export(&p, &options, &out);
        assert_eq!(
            report.files_copied,
            if mode == PathMode::Copy { 3 } else { 0 }
        );
        let text = std::fs::read_to_string(&out).unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let rel = v["images"][0].as_str().unwrap();
            assert!(!rel.starts_with('/'), "{rel}");
            assert!(out.parent().unwrap().join(rel).is_file(), "{rel}");
        }
    }
}

#[test]
fn canonical_export_import_export_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(dir.path());
    let first = dir.path().join("a.jsonl");
    run_export(&p, &ExportOptions::new(Format::Jsonl), &first);
    let copy = dir.path().join("copy.thyme");
    let mut store = SqliteStore::create(&copy).unwrap();
    let summary = import_file(
        &mut store,
        &first,
        ImportFormat::Jsonl,
        &ImportSettings::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(summary.restored_exactly, "{}", summary.summary());
    drop(store);
    let second = dir.path().join("b.jsonl");
    run_export(&copy, &ExportOptions::new(Format::Jsonl), &second);
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap()
    );
    // The copy keeps the history: its undo takes back the last edit of the original.
    let mut store = SqliteStore::open(&copy).unwrap();
    let undone = store.undo("me").unwrap().unwrap();
    assert!(
        matches!(undone, Command::UpdateQuestion { .. }),
        "{undone:?}"
    );
    // Filters are refused for the lossless format.
    let mut filtered = ExportOptions::new(Format::Jsonl);
    filtered.filter.accepted_only = true;
    let store = SqliteStore::open(&p).unwrap();
    assert!(
        export(
            &store,
            &filtered,
            &dir.path().join("c.jsonl"),
            &mut |_, _| {},
            &AtomicBool::new(false)
        )
        .is_err()
    );
}

#[test]
fn coco_and_thyme_rl_exports_import_back_into_a_new_project() {
    let dir = tempfile::tempdir().unwrap();
    let p = project(dir.path());
    let coco = dir.path().join("coco.json");
    run_export(&p, &ExportOptions::new(Format::Coco), &coco);
    let rl = dir.path().join("rl.jsonl");
    run_export(&p, &ExportOptions::new(Format::ThymeRl), &rl);
    for (file, format) in [(&coco, ImportFormat::Coco), (&rl, ImportFormat::ThymeRl)] {
        assert_eq!(ImportFormat::detect(file).unwrap(), format);
        let target = dir.path().join(format!("{}.thyme", format.name()));
        let mut store = SqliteStore::create(&target).unwrap();
        let s = import_file(
            &mut store,
            file,
            format,
            &ImportSettings::default(),
            &AtomicBool::new(false),
        )
        .unwrap();
        assert!(s.problems.is_empty(), "{}", s.summary());
        let (boxes, questions) = expected(&p);
        assert_eq!(s.images_added, 3);
        assert_eq!(s.questions, questions);
        let stats = store.stats().unwrap();
        assert_eq!(stats.questions, questions);
        // COCO brings every exported box; Thyme RL only the ones its questions are about.
        if format == ImportFormat::Coco {
            assert_eq!(stats.regions, boxes);
        } else {
            assert!(
                stats.regions > 0 && stats.regions <= boxes,
                "{}",
                stats.regions
            );
        }
        // Choice questions come back as choices with the same correct option.
        let image = store.images().unwrap().remove(0);
        let qs = store.questions(&image.id).unwrap();
        assert!(qs.iter().any(|q| matches!(q.answer, Answer::Choice { .. })));
    }
}

#[test]
fn a_bad_coco_file_reports_each_problem_and_imports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("street.png");
    image::RgbImage::new(400, 300).save(&img).unwrap();
    let coco = dir.path().join("bad.json");
    std::fs::write(
        &coco,
        serde_json::json!({
            "images": [
                {"id": 1, "file_name": "street.png", "width": 400, "height": 300},
                {"id": 2, "file_name": "gone.png", "width": 10, "height": 10},
                {"file_name": "no-id.png"}
            ],
            "categories": [{"id": 1, "name": "car"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},
                {"id": 2, "image_id": 9, "category_id": 1, "bbox": [10, 10, 20, 20]},
                {"id": 3, "image_id": 1, "category_id": 7, "bbox": [10, 10, 20, 20]},
                {"id": 4, "image_id": 1, "category_id": 1, "bbox": [500, 500, 20, 20]},
                {"id": 5, "image_id": 1, "category_id": 1, "bbox": [390, 290, 20, 20]},
                {"id": 6, "image_id": 1, "category_id": 1, "bbox": [1, 2, "x", 4]}
            ]
        })
        .to_string(),
    )
    .unwrap();
    let project = dir.path().join("p.thyme");
    let mut store = SqliteStore::create(&project).unwrap();
    let s = import_file(
        &mut store,
        &coco,
        ImportFormat::Coco,
        &ImportSettings::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    let text = s.summary();
    for expected in [
        "images[1]: image not found: gone.png",
        "images[2]: needs a numeric id and a file_name",
        "annotations[1]: no image with id 9 (dangling image id)",
        "annotations[2]: unknown category id 7",
        "annotations[3]: box [500.0, 500.0, 520.0, 520.0] is outside the 400x300 image",
        "annotations[4]: box crossed the image border: clamped (imported)",
        "annotations[5]: bbox is not four numbers",
    ] {
        assert!(text.contains(expected), "missing '{expected}' in:\n{text}");
    }
    assert_eq!(s.images_added, 1);
    assert_eq!(s.boxes, 2, "the good box and the clamped one");
    let image = store.images().unwrap().remove(0);
    let mut rects: Vec<ImageRect> = store
        .regions(&image.id)
        .unwrap()
        .iter()
        .map(|r| r.rect)
        .collect();
    rects.sort_by(|a, b| a.x0.total_cmp(&b.x0));
    assert_eq!(rects[0], ImageRect::new(10.0, 10.0, 30.0, 30.0));
    assert_eq!(rects[1], ImageRect::new(390.0, 290.0, 400.0, 300.0));
    assert!(
        store
            .regions(&image.id)
            .unwrap()
            .iter()
            .all(|r| r.label == "car")
    );
}

#[test]
fn thyme_sft_rows_come_in_as_images_and_qa_and_bad_lines_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("chart.png");
    image::RgbImage::new(640, 480).save(&img).unwrap();
    let rows = [
        serde_json::json!({
            "image": ["chart.png"],
            "question": "<image>\nWhat is the tallest bar's value?\n\n### User Image Path:** \"chart.png\"\n### User Image Size:** \"640x480\"\n",
            "response": "<think>Crop the chart.</think><code>```python\nprint(1)\n```</code><sandbox_output>1</sandbox_output><answer>\\boxed{42}</answer>"
        })
        .to_string(),
        "{not json".to_owned(),
        serde_json::json!({"image": "chart.png", "question": "Q?", "response": "no answer tag"}).to_string(),
        serde_json::json!({"image": "missing.png", "question": "Q?", "response": "<answer>x</answer>"}).to_string(),
    ];
    let file = dir.path().join("sft.jsonl");
    std::fs::write(&file, rows.join("\n")).unwrap();
    assert_eq!(ImportFormat::detect(&file).unwrap(), ImportFormat::ThymeSft);
    let mut store = SqliteStore::create(&dir.path().join("p.thyme")).unwrap();
    let s = import_file(
        &mut store,
        &file,
        ImportFormat::ThymeSft,
        &ImportSettings::default(),
        &AtomicBool::new(false),
    )
    .unwrap();
    let text = s.summary();
    assert!(text.contains("line 2: not JSON"), "{text}");
    assert!(
        text.contains("line 3: the response has no <answer>"),
        "{text}"
    );
    assert!(
        text.contains("line 4: image not found: missing.png"),
        "{text}"
    );
    assert_eq!((s.images_added, s.questions), (1, 1));
    let image = store.images().unwrap().remove(0);
    let q = store.questions(&image.id).unwrap().remove(0);
    assert_eq!(q.text, "What is the tallest bar's value?");
    assert_eq!(q.answer, Answer::Open { text: "42".into() });
    assert_eq!(q.category, "imported");
}

/// Coordinates survive px -> normalised -> px and px -> COCO -> px within 1e-9 for many
/// random boxes on many image sizes (a property test with a fixed seed).
#[test]
fn coordinate_round_trips_are_exact_within_1e_9() {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for _ in 0..20_000 {
        let size = ImageSize::new(
            1 + (next() * 60_000.0) as u32,
            1 + (next() * 60_000.0) as u32,
        );
        let (w, h) = (f64::from(size.width), f64::from(size.height));
        let (a, b) = (next() * w, next() * w);
        let (c, d) = (next() * h, next() * h);
        let r = ImageRect::new(a.min(b), c.min(d), a.max(b), c.max(d));
        let n = ImageRect::from_normalized(r.to_normalized(size), size);
        let [x, y, bw, bh] = r.to_xywh();
        let coco = ImageRect::from_xywh(x, y, bw, bh);
        let [cx, cy, yw, yh] = r.to_yolo(size);
        let yolo = ImageRect::from_xywh((cx - yw / 2.0) * w, (cy - yh / 2.0) * h, yw * w, yh * h);
        for back in [n, coco, yolo] {
            for (p, q) in [
                (r.x0, back.x0),
                (r.y0, back.y0),
                (r.x1, back.x1),
                (r.y1, back.y1),
            ] {
                assert!((p - q).abs() <= 1e-9, "{r:?} -> {back:?} on {size}");
            }
        }
    }
}
