//! The crop audit on a generated dataset whose answers are known: Thyme SFT rows whose stored
//! crop is exactly what their code makes, the 64 px-widened crop of a smaller box, a
//! smart_resize of the crop, a crop of somewhere else, code that fails, a missing original,
//! an unreadable stored image; each lands in its class with its rule. The code is run again in
//! the real sandbox; a second audit takes every run from the cache; the CLI writes the report,
//! the CSV and the rows to fix.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use image::{DynamicImage, Rgb, RgbImage, imageops::FilterType};
use thyme_studio::paths::AppDirs;
use thyme_studio::sandbox::{Runtime, SandboxConfig};
use thyme_studio::trace::audit::runner::{Auditor, Source};
use thyme_studio::trace::audit::{Report, StepAudit, Verdict};
use thyme_studio::trace::readers::{LogFormat, read};

fn textured(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let v = (x * 7 + y * 13) ^ (x * y / 37);
        Rgb([
            (v % 251) as u8,
            ((v / 3) % 241) as u8,
            ((x / 3 + y / 5) % 256) as u8,
        ])
    })
}

fn crop_code(b: [u32; 4], name: &str) -> String {
    format!(
        "<think>Look closer.</think><code>\n```python\nfrom PIL import Image\nimg = Image.open(image_path)\nc = img.crop(({}, {}, {}, {}))\nc.save('/mnt/data/temp_processed_images/{name}.png')\nprint('/mnt/data/temp_processed_images/{name}.png')\n```\n</code><sandbox_output><image></sandbox_output><think>Done.</think> <answer>A</answer>",
        b[0], b[1], b[2], b[3]
    )
}

fn cut(img: &RgbImage, b: [u32; 4]) -> DynamicImage {
    DynamicImage::ImageRgb8(img.clone()).crop_imm(b[0], b[1], b[2] - b[0], b[3] - b[1])
}

struct Dataset {
    _dir: tempfile::TempDir,
    root: PathBuf,
    rows: PathBuf,
}

/// The rows, by name: reproduced, widened, resized, elsewhere, fails, no-original, unreadable;
/// with `hostile`, also code that runs forever and code that writes beside the dataset.
fn dataset(hostile: bool) -> Dataset {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_owned();
    std::fs::create_dir_all(root.join("images")).unwrap();
    let original = textured(1200, 900);
    original.save(root.join("images/scene.png")).unwrap();
    let save = |name: &str, img: &DynamicImage| {
        let p = format!("images/{name}.png");
        img.save(root.join(&p)).unwrap();
        p
    };
    let b = [100, 100, 300, 250];
    let exact = save("exact", &cut(&original, b));
    // Thyme's sandbox widens a 39x38 box to 64x64 (the far sides move): (500, 500, 564, 564).
    let small = [500, 500, 539, 538];
    let widened = save("widened", &cut(&original, [500, 500, 564, 564]));
    // The 200x150 crop as the model's processor resizes it: 196x140.
    let resized = save(
        "resized",
        &cut(&original, b).resize_exact(196, 140, FilterType::CatmullRom),
    );
    let elsewhere = save("elsewhere", &cut(&original, [700, 500, 900, 650]));
    let unwidened = save("unwidened", &cut(&original, small));
    std::fs::write(root.join("images/broken.png"), b"\x89PNG not really").unwrap();
    let row = |id: &str, original: &str, out: &str, response: String| {
        serde_json::json!({
            "id": id,
            "image": [original, out],
            "question": "<image>\nWhat is in the corner?",
            "response": response,
            "answer": "A",
        })
        .to_string()
    };
    let scene = "images/scene.png";
    let lines = [
        row("reproduced", scene, &exact, crop_code(b, "a")),
        row("widened", scene, &widened, crop_code(small, "b")),
        row("unwidened", scene, &unwidened, crop_code(small, "g")),
        row("resized", scene, &resized, crop_code(b, "c")),
        row("elsewhere", scene, &elsewhere, crop_code(b, "d")),
        row(
            "fails",
            scene,
            &exact,
            "<code>\n```python\nraise ValueError('no crop today')\n```\n</code><sandbox_output><image></sandbox_output> <answer>A</answer>".into(),
        ),
        row("no-original", "images/gone.png", &exact, crop_code(b, "e")),
        row("unreadable", scene, "images/broken.png", crop_code(b, "f")),
    ];
    let mut lines = lines.to_vec();
    if hostile {
        let code = |body: &str| {
            format!(
                "<code>\n```python\n{body}\n```\n</code><sandbox_output><image></sandbox_output> <answer>A</answer>"
            )
        };
        lines.push(row("forever", scene, &exact, code("while True:\n    pass")));
        let evil = root.join("evil.txt");
        lines.push(row(
            "writes-outside",
            scene,
            &exact,
            code(&format!(
                "open({:?}, 'w').write('x')",
                evil.display().to_string()
            )),
        ));
    }
    let rows = root.join("sft.jsonl");
    std::fs::write(&rows, lines.join("\n") + "\n").unwrap();
    Dataset {
        _dir: dir,
        root,
        rows,
    }
}

fn sandbox_cfg(runs: &Path) -> SandboxConfig {
    let runtime = Runtime::at(AppDirs::for_user().sandbox_runtime());
    assert!(
        runtime.installed().is_some(),
        "the sandbox runtime is not set up: run `bash scripts/test`"
    );
    let mut cfg = SandboxConfig::new(
        runtime,
        runs.to_owned(),
        PathBuf::from(env!("CARGO_BIN_EXE_thyme-studio")),
    );
    cfg.step_timeout = Duration::from_secs(2);
    cfg
}

fn by_run(steps: &[StepAudit]) -> std::collections::BTreeMap<String, StepAudit> {
    steps.iter().map(|s| (s.run.clone(), s.clone())).collect()
}

#[test]
fn every_row_lands_in_its_class_with_its_rule_and_a_second_audit_is_cached() {
    let d = dataset(true);
    let loaded = read(&d.rows, LogFormat::ThymeSft).unwrap();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let sources: Vec<Source> = loaded
        .traces
        .into_iter()
        .map(|t| Source {
            line: t.run.source_line,
            file: d.rows.display().to_string(),
            trace: t,
        })
        .collect();
    let runs = d.root.join("runs");
    let auditor = Auditor {
        sandbox: Some(sandbox_cfg(&runs)),
        jobs: 2,
        cache: Some(d.root.join("cache/audit.jsonl")),
    };
    let heard = std::sync::atomic::AtomicUsize::new(0);
    let results = auditor.run(&sources, &AtomicBool::new(false), &|_, _| {
        heard.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(heard.into_inner(), 10);
    assert!(results.iter().all(|r| !r.cached));
    let steps: Vec<StepAudit> = results.iter().flat_map(|r| r.steps.clone()).collect();
    let got = by_run(&steps);
    assert_eq!(got.len(), 10, "{steps:#?}");

    let r = &got["reproduced"];
    assert_eq!(r.verdict, Verdict::Reproduced, "{r:?}");
    assert!(r.rules.is_empty(), "{r:?}");
    assert_eq!(r.line, Some(1));

    // The code crops 39x38; the stored 64x64 is what Thyme's sandbox makes of it.
    let w = &got["widened"];
    assert_eq!(w.verdict, Verdict::Reproduced, "{w:?}");
    assert_eq!(w.rules, ["thyme-64px-widening"]);
    assert_eq!(w.stored_size, Some([64, 64]));

    // The same code's box stored as written: Thyme's sandbox would have widened it.
    let u = &got["unwidened"];
    assert_eq!(u.verdict, Verdict::Resampled, "{u:?}");
    assert_eq!(u.rules, ["thyme-64px-widening"]);
    assert!(u.detail.contains("as written (39x38)"), "{u:?}");

    let s = &got["resized"];
    assert_eq!(s.verdict, Verdict::Resampled, "{s:?}");
    assert_eq!(s.rules, ["smart-resize"]);
    assert_eq!(
        (s.stored_size, s.made_size),
        (Some([196, 140]), Some([200, 150]))
    );

    let e = &got["elsewhere"];
    assert_eq!(e.verdict, Verdict::DifferentRegion, "{e:?}");
    assert_eq!(e.claimed_rect, Some([100.0, 100.0, 300.0, 250.0]));
    let f = e.found_rect.unwrap();
    for (a, b) in f.iter().zip([700.0, 500.0, 900.0, 650.0]) {
        assert!((a - b).abs() <= 4.0, "{f:?}");
    }

    let x = &got["fails"];
    assert_eq!(x.verdict, Verdict::NotReproducible);
    assert!(x.detail.contains("no crop today"), "{x:?}");
    let n = &got["no-original"];
    assert_eq!(n.verdict, Verdict::NotReproducible);
    assert!(n.detail.contains("original"), "{n:?}");
    let u = &got["unreadable"];
    assert_eq!(u.verdict, Verdict::NotReproducible);
    assert!(u.detail.contains("stored image cannot be read"), "{u:?}");

    // Hostile code: stopped, refused, named; the audit went on and wrote nothing outside.
    let h = &got["forever"];
    assert_eq!(h.verdict, Verdict::NotReproducible);
    assert!(h.detail.contains("ran over"), "{h:?}");
    let w = &got["writes-outside"];
    assert_eq!(w.verdict, Verdict::NotReproducible);
    assert!(!d.root.join("evil.txt").exists());

    let report = Report::of(&steps, 10);
    assert_eq!(report.by_verdict[&Verdict::Reproduced], 2);
    assert_eq!(report.by_verdict[&Verdict::NotReproducible], 5);
    assert_eq!(report.by_rule["thyme-64px-widening"], 2);
    // The audit leaves no sandbox run folders behind.
    assert_eq!(std::fs::read_dir(&runs).map(|d| d.count()).unwrap_or(0), 0);

    // Again: every run from the cache, the same verdicts.
    let again = auditor.run(&sources, &AtomicBool::new(false), &|_, _| {});
    assert!(again.iter().all(|r| r.cached));
    let steps2: Vec<StepAudit> = again.iter().flat_map(|r| r.steps.clone()).collect();
    assert_eq!(by_run(&steps2), got);
    // A changed stored image is audited again.
    cut(&textured(1200, 900), [100, 100, 300, 250])
        .resize_exact(20, 20, FilterType::Nearest)
        .save(d.root.join("images/elsewhere.png"))
        .unwrap();
    let third = auditor.run(&sources, &AtomicBool::new(false), &|_, _| {});
    let fresh: Vec<&str> = third
        .iter()
        .filter(|r| !r.cached)
        .flat_map(|r| r.steps.iter().map(|s| s.run.as_str()))
        .collect();
    assert_eq!(fresh, ["elsewhere"]);
}

#[test]
fn the_cli_reports_writes_the_csv_and_the_rows_to_fix() {
    let d = dataset(false);
    let home = d.root.join("home");
    // The app's own sandbox runtime, as the tests have it.
    let out = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
            .args(["trace", "audit"])
            .arg(&d.rows)
            .args(["--format", "thyme-sft"])
            .args(args)
            .env("XDG_CACHE_HOME", home.join("cache"))
            .output()
            .unwrap()
    };
    let csv = d.root.join("audit.csv");
    let fix = d.root.join("fix.jsonl");
    let o = out(&[
        "--csv",
        csv.to_str().unwrap(),
        "--fix-report",
        fix.to_str().unwrap(),
        "--no-cache",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains("8 stored image(s) in 8 run(s)"), "{text}");
    assert!(text.contains("thyme-64px-widening"), "{text}");
    // Worst first: the different region leads the list.
    let worst = text.split("worst first:").nth(1).unwrap();
    assert!(
        worst.lines().nth(1).unwrap().contains("elsewhere"),
        "{worst}"
    );
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv.lines().count(), 9);
    assert!(csv.starts_with("file,line,run,step"));
    // The rows to fix are the dataset's own lines: elsewhere, fails, no-original, unreadable.
    let rows: Vec<String> = std::fs::read_to_string(&fix)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(rows, ["elsewhere", "fails", "no-original", "unreadable"]);

    // JSON: the report and every image.
    let o = out(&["--json", "--no-cache"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["images"].as_array().unwrap().len(), 8);
    assert_eq!(v["report"]["by_verdict"]["reproduced"], 2);
}

/// Run a writer's fixture script (tests/python/writers/NAME.py) into `out`.
fn write_like(name: &str, out: &Path) {
    let python = std::env::var("THYME_TEST_PYTHON").map_or_else(
        |_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-python/bin/python"),
        PathBuf::from,
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python/writers")
        .join(format!("{name}.py"));
    let status = std::process::Command::new(&python)
        .arg(&script)
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success(), "{name}.py failed");
}

/// Every stored image of the runs read from `log`, audited without a sandbox (tool steps
/// need none).
fn audit_without_sandbox(traces: Vec<thyme_studio::trace::Trace>, log: &Path) -> Vec<StepAudit> {
    let sources: Vec<Source> = traces
        .into_iter()
        .map(|t| Source {
            line: None,
            file: log.display().to_string(),
            trace: t,
        })
        .collect();
    let auditor = Auditor {
        sandbox: None,
        jobs: 1,
        cache: None,
    };
    auditor
        .run(&sources, &AtomicBool::new(false), &|_, _| {})
        .into_iter()
        .flat_map(|r| r.steps)
        .collect()
}

#[test]
fn mini_o3_zooms_and_zooms_of_zooms_are_cut_by_its_rule_and_reproduced() {
    let dir = tempfile::tempdir().unwrap();
    write_like("mini_o3_save_traj", dir.path());
    let save = dir.path().join("val_trajs");
    let loaded = read(&save, LogFormat::MiniO3).unwrap();
    let steps = audit_without_sandbox(loaded.traces, &save);
    // Two zooms in the first rollout (the second on the first's crop) and one in the third.
    assert_eq!(steps.len(), 3, "{steps:#?}");
    for s in &steps {
        assert_eq!(s.verdict, Verdict::Reproduced, "{s:?}");
    }
    let second = steps
        .iter()
        .find(|s| s.run == "plate_7_0" && s.step == 3)
        .unwrap();
    assert_eq!(second.claimed_rect, Some([2100.0, 1575.0, 2300.0, 1725.0]));
}

#[test]
fn without_a_sandbox_code_steps_are_named_not_reproducible_and_not_cached() {
    let d = dataset(false);
    let loaded = read(&d.rows, LogFormat::ThymeSft).unwrap();
    let sources: Vec<Source> = loaded
        .traces
        .into_iter()
        .map(|t| Source {
            line: t.run.source_line,
            file: d.rows.display().to_string(),
            trace: t,
        })
        .collect();
    let auditor = Auditor {
        sandbox: None,
        jobs: 2,
        cache: Some(d.root.join("cache.jsonl")),
    };
    let first = auditor.run(&sources, &AtomicBool::new(false), &|_, _| {});
    let steps: Vec<StepAudit> = first.iter().flat_map(|r| r.steps.clone()).collect();
    let got = by_run(&steps);
    let r = &got["reproduced"];
    assert_eq!(r.verdict, Verdict::NotReproducible);
    assert!(
        r.detail.starts_with(thyme_studio::trace::audit::NO_SANDBOX),
        "{r:?}"
    );
    // Audited again: those runs are audited anew (a sandbox may be there by then).
    let again = auditor.run(&sources, &AtomicBool::new(false), &|_, _| {});
    let cached: Vec<&str> = again
        .iter()
        .filter(|a| a.cached)
        .flat_map(|a| a.steps.iter().map(|s| s.run.as_str()))
        .collect();
    assert!(!cached.contains(&"reproduced"), "{cached:?}");
}

#[test]
fn pixel_reasoner_crops_and_crops_of_crops_are_cut_by_its_rule_from_a_copied_dump() {
    let dir = tempfile::tempdir().unwrap();
    write_like("pixel_reasoner_dump", dir.path());
    // Copied off the training machine: the crops' recorded paths are gone, the files sit
    // beside each conv.json.
    let dumps = dir.path().join("copied/dumps_iter0");
    std::fs::create_dir_all(dumps.parent().unwrap()).unwrap();
    std::fs::rename(dir.path().join("ckpt/logs/dumps_iter0"), &dumps).unwrap();
    // One stored crop is of somewhere else than its call says.
    let original = image::open(dir.path().join("images/station.png")).unwrap();
    let wrong = dumps.join("vstar_13/iter0.jpg");
    let (w, h) = image::image_dimensions(&wrong).unwrap();
    original.crop_imm(100, 1500, w, h).save(&wrong).unwrap();

    assert_eq!(LogFormat::detect(&dumps).unwrap(), LogFormat::PixelReasoner);
    let loaded = read(&dumps, LogFormat::PixelReasoner).unwrap();
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    assert_eq!(loaded.traces.len(), 2);
    let steps = audit_without_sandbox(loaded.traces, &dumps);
    // Two crops in the first question (the second cut from the first), one in the second (its
    // call with the wrong target made none).
    assert_eq!(steps.len(), 3, "{steps:#?}");
    let of = |run: &str, step: usize| {
        steps
            .iter()
            .find(|s| s.run == run && s.step == step)
            .unwrap_or_else(|| panic!("{run} step {step}: {steps:#?}"))
    };
    let first = of("vstar_12", 1);
    assert_eq!(first.verdict, Verdict::Reproduced, "{first:?}");
    // [0.4, 0.38, 0.5, 0.5], padded by 0.1, of 2800x2100.
    assert_eq!(first.claimed_rect, Some([840.0, 588.0, 1680.0, 1260.0]));
    let second = of("vstar_12", 3);
    assert!(
        matches!(second.verdict, Verdict::Reproduced | Verdict::Resampled),
        "{second:?}"
    );
    // Cut at 504x404 and handed back at 504x420: smart_resize at 256 patches or more.
    assert_eq!(second.rules, vec!["smart-resize".to_owned()], "{second:?}");
    let r = second.claimed_rect.unwrap();
    // 0.2-0.8 of the first crop (840x672 as the model got it), on the original.
    for (a, b) in r.iter().zip([1008.0, 722.4, 1512.0, 1125.6]) {
        assert!((a - b).abs() <= 1.5, "{r:?}");
    }
    // The last call of the turn ran: pixels [1120, 800, 1400, 1050] of the seen image.
    let wrong = of("vstar_13", 1);
    assert_eq!(wrong.verdict, Verdict::DifferentRegion, "{wrong:?}");
    assert_eq!(wrong.claimed_rect, Some([840.0, 590.0, 1680.0, 1260.0]));
    let found = wrong.found_rect.unwrap();
    assert!(
        (found[0] - 100.0).abs() < 40.0 && (found[1] - 1500.0).abs() < 40.0,
        "{found:?}"
    );
}
