//! Every training export loaded by the library its trainer uses, in the pinned consumer
//! environment scripts/test makes (tests/python/consumers.txt: torch on the CPU, Ultralytics,
//! ms-swift, Hugging Face datasets):
//! - YOLO: Ultralytics' own dataset check and detection dataset and dataloader on our
//!   `data.yaml`, every label it reads equal to the project's boxes;
//! - thyme-rl and ms-swift: ms-swift's dataset loader and its Qwen2.5-VL template (the trainer
//!   Thyme uses) over a tiny Qwen2.5-VL processor we write, every row encoded, images resolved,
//!   vision blocks counted against images, grounding boxes in the resized frame; and Hugging
//!   Face datasets reading the JSONL back with every row and key.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::atomic::AtomicBool;

use thyme_studio::exchange::{ExportOptions, Format, export};
use thyme_studio::store::{SqliteStore, Store};

/// The consumers' Python: `THYME_CONSUMER_PYTHON`, else the environment scripts/test makes.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("THYME_CONSUMER_PYTHON") {
        return p.into();
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/consumer-python/bin/python");
    assert!(
        p.is_file(),
        "{} is missing: run `bash scripts/test` once (it installs the trainers' libraries there)",
        p.display()
    );
    p
}

fn consumer(dir: &Path, args: &[&std::ffi::OsStr]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/check_consumers.py");
    let out = Process::new(python())
        .arg(script)
        .args(args)
        .env("YOLO_CONFIG_DIR", dir.join("ultralytics-config"))
        .env("HF_HOME", dir.join("hf-home"))
        .env("MODELSCOPE_CACHE", dir.join("modelscope"))
        .output()
        .expect("run the consumers' python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{args:?}: {text}");
    text.lines()
        .find(|l| l.starts_with("ok "))
        .unwrap_or_else(|| panic!("no verdict: {text}"))
        .to_owned()
}

fn run(project: &Path, format: Format, out: &Path) {
    let store = SqliteStore::open(project).unwrap();
    export(
        &store,
        &ExportOptions::new(format),
        out,
        &mut |_, _| {},
        &AtomicBool::new(false),
    )
    .unwrap();
}

fn demo(dir: &Path) -> PathBuf {
    thyme_studio::demo::write_demo(&dir.join("demo"), 16, &|_| {}).unwrap()
}

#[test]
fn ultralytics_reads_the_yolo_export_as_the_project_has_it() {
    let dir = tempfile::tempdir().unwrap();
    let project = demo(dir.path());
    let out = dir.path().join("yolo");
    run(&project, Format::Yolo, &out);
    // The truth, from the store: image stem -> [label, x0, y0, x1, y1, W, H].
    let store = SqliteStore::open(&project).unwrap();
    let mut truth = serde_json::Map::new();
    for image in store.images().unwrap() {
        let stem = image
            .path
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let boxes: Vec<serde_json::Value> = store
            .regions(&image.id)
            .unwrap()
            .iter()
            .map(|r| {
                let label = if r.label.trim().is_empty() {
                    "object"
                } else {
                    r.label.trim()
                };
                serde_json::json!([
                    label,
                    r.rect.x0,
                    r.rect.y0,
                    r.rect.x1,
                    r.rect.y1,
                    image.size.width,
                    image.size.height
                ])
            })
            .collect();
        truth.insert(stem, boxes.into());
    }
    let truth_file = dir.path().join("truth.json");
    std::fs::write(&truth_file, serde_json::to_vec(&truth).unwrap()).unwrap();
    let said = consumer(
        dir.path(),
        &[
            "yolo".as_ref(),
            out.join("data.yaml").as_os_str(),
            truth_file.as_os_str(),
        ],
    );
    let boxes: usize = truth.values().map(|v| v.as_array().unwrap().len()).sum();
    assert!(
        said.contains(&format!("{boxes} labels equal to the project")),
        "{said}"
    );
}

#[test]
fn ms_swift_and_datasets_load_the_thyme_rl_and_swift_exports() {
    let dir = tempfile::tempdir().unwrap();
    let project = demo(dir.path());
    let model = dir.path().join("tiny-qwen2_5_vl");
    thyme_studio::model::tiny::write_tiny(&model, &Default::default()).unwrap();
    let rl = dir.path().join("rl.jsonl");
    run(&project, Format::ThymeRl, &rl);
    let swift = dir.path().join("swift.jsonl");
    run(&project, Format::Swift, &swift);
    let lines = |p: &Path| std::fs::read_to_string(p).unwrap().lines().count();

    let said = consumer(
        dir.path(),
        &["swift".as_ref(), rl.as_os_str(), model.as_os_str()],
    );
    assert!(
        said.contains(&format!("{} rows encoded", lines(&rl))),
        "{said}"
    );
    let said = consumer(
        dir.path(),
        &["swift".as_ref(), swift.as_os_str(), model.as_os_str()],
    );
    assert!(
        said.contains(&format!("{} rows encoded", lines(&swift))),
        "{said}"
    );
    // Every box of the project is a grounding row, in original pixels (ms-swift's "real").
    let store = SqliteStore::open(&project).unwrap();
    let boxes: usize = store
        .images()
        .unwrap()
        .iter()
        .map(|i| store.regions(&i.id).unwrap().len())
        .sum();
    assert!(
        said.contains(&format!("{boxes} grounding rows checked")),
        "{said}"
    );
    for l in std::fs::read_to_string(&swift).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        if let Some(o) = v.get("objects") {
            assert_eq!(o["bbox_type"], "real");
            let b = &o["bbox"][0];
            let found = store.images().unwrap().iter().any(|i| {
                store.regions(&i.id).unwrap().iter().any(|r| {
                    r.label == o["ref"][0].as_str().unwrap()
                        && [r.rect.x0, r.rect.y0, r.rect.x1, r.rect.y1]
                            .iter()
                            .zip(b.as_array().unwrap())
                            .all(|(a, x)| (a - x.as_f64().unwrap()).abs() < 1e-9)
                })
            });
            assert!(found, "{l}");
        }
    }

    for file in [&rl, &swift] {
        let said = consumer(dir.path(), &["hf".as_ref(), file.as_os_str()]);
        assert!(said.contains(&format!("{} rows", lines(file))), "{said}");
    }
}

#[test]
fn thyme_rl_traces_read_the_log_ms_swifts_grpo_trainer_writes() {
    use thyme_studio::trace::readers::{LogFormat, read};
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny-qwen2_5_vl");
    thyme_studio::model::tiny::write_tiny(&model, &Default::default()).unwrap();
    let image = dir.path().join("board.png");
    image::RgbImage::from_pixel(320, 240, image::Rgb([20, 60, 160]))
        .save(&image)
        .unwrap();
    let log = dir.path().join("completions.jsonl");
    let said = consumer(
        dir.path(),
        &[
            "grpo-log".as_ref(),
            log.as_os_str(),
            model.as_os_str(),
            image.as_os_str(),
        ],
    );
    assert!(said.contains("wrote 1 line(s) of 2 rollouts"), "{said}");
    assert_eq!(LogFormat::detect(&log).unwrap(), LogFormat::ThymeRl);
    let loaded = read(&log, LogFormat::ThymeRl).unwrap();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    assert_eq!(loaded.traces.len(), 2);
    for t in &loaded.traces {
        assert_eq!(t.run.question, "Which word is on the blue board?");
        assert_eq!(t.run.images[0].path.as_deref(), Some(image.as_path()));
        assert_eq!(t.run.ground_truth.as_deref(), Some("HARBOUR"));
    }
    let (read_well, misread) = (&loaded.traces[0], &loaded.traces[1]);
    assert_eq!(read_well.run.id, "step-7#1");
    assert_eq!(read_well.run.rewards.get("VQAORM"), Some(&1.0));
    assert_eq!(misread.run.rewards.get("VQAORM"), Some(&0.0));
    let mut placed = read_well.clone();
    thyme_studio::trace::provenance::fill(&mut placed);
    assert_eq!(placed.crops(), vec![(1, [40.0, 30.0, 200.0, 130.0])]);
}
