//! The command line: new, import (with a report of what was skipped and why), stats, demo,
//! and exit codes (0 ok, 1 user error with a one-line message).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_thyme-studio"));
    c.env("RUST_LOG", "warn");
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn write_png(path: &Path, w: u32, h: u32, seed: u8) {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 251) as u8, (y % 241) as u8, seed])
    })
    .save(path)
    .unwrap();
}

fn write_jpeg(path: &Path, w: u32, h: u32) {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 200) as u8, (y % 200) as u8, 9])
    })
    .save(path)
    .unwrap();
}

#[test]
fn new_then_stats_of_an_empty_project() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.thyme");
    let o = run(&["new", p.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = run(&["stats", p.to_str().unwrap(), "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["images"], 0);
    assert_eq!(v["questions"], 0);
}

#[test]
fn new_over_an_existing_file_is_a_user_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.thyme");
    std::fs::write(&p, "precious").unwrap();
    let o = run(&["new", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let (_, err) = text(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("p.thyme"));
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "precious");
}

#[test]
fn import_reports_every_skipped_file_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = dir.path().join("imgs");
    std::fs::create_dir_all(imgs.join("sub")).unwrap();
    write_png(&imgs.join("big.png"), 2600, 300, 1);
    write_png(&imgs.join("sub/small.png"), 300, 200, 2);
    // The same bytes under another name.
    std::fs::copy(imgs.join("big.png"), imgs.join("sub/copy.png")).unwrap();
    // A truncated JPEG.
    write_jpeg(&imgs.join("cut.jpg"), 400, 300);
    let bytes = std::fs::read(imgs.join("cut.jpg")).unwrap();
    std::fs::write(imgs.join("cut.jpg"), &bytes[..bytes.len() / 2]).unwrap();
    // Text wearing an image extension.
    std::fs::write(imgs.join("notes.jpg"), "not an image at all").unwrap();
    // A file the importer should not even look at.
    std::fs::write(imgs.join("readme.txt"), "hello").unwrap();
    // Over the pixel budget given on the command line.
    write_png(&imgs.join("huge.png"), 3000, 1000, 3);

    let p = dir.path().join("p.thyme");
    assert!(run(&["new", p.to_str().unwrap()]).status.success());
    let o = run(&[
        "import",
        p.to_str().unwrap(),
        imgs.to_str().unwrap(),
        "--max-pixels",
        "2000000",
        "--json",
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let files = report["files"].as_array().unwrap();
    let outcome = |name: &str| {
        files
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(name))
            .unwrap_or_else(|| panic!("{name} not in report"))
            .clone()
    };
    assert_eq!(outcome("big.png")["outcome"], "added");
    assert_eq!(outcome("small.png")["outcome"], "added");
    assert!(
        outcome("small.png")["warning"]
            .as_str()
            .unwrap()
            .contains("2048")
    );
    assert_eq!(outcome("copy.png")["reason"], "duplicate");
    assert_eq!(outcome("cut.jpg")["reason"], "truncated");
    assert_eq!(outcome("notes.jpg")["reason"], "not_an_image");
    assert_eq!(outcome("huge.png")["reason"], "too_large");
    for name in ["copy.png", "cut.jpg", "notes.jpg", "huge.png"] {
        assert!(
            outcome(name)["message"].as_str().unwrap().contains(name),
            "{name}"
        );
    }
    assert_eq!(report["ignored_other_files"], 1);

    let o = run(&["stats", p.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["images"], 2);
    assert_eq!(v["images_low_resolution"], 1);
}

#[test]
fn importing_again_skips_duplicates_and_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("a.png");
    write_png(&img, 2100, 100, 5);
    let p = dir.path().join("p.thyme");
    assert!(run(&["new", p.to_str().unwrap()]).status.success());
    let first = run(&["import", p.to_str().unwrap(), img.to_str().unwrap()]);
    assert!(
        text(&first).0.contains("added 1, skipped 0"),
        "{:?}",
        text(&first)
    );
    let second = run(&["import", p.to_str().unwrap(), img.to_str().unwrap()]);
    let (out, _) = text(&second);
    assert!(out.contains("skipped (duplicate)"), "{out}");
    assert!(out.contains("added 0, skipped 1"), "{out}");
}

#[test]
fn a_missing_input_path_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.thyme");
    assert!(run(&["new", p.to_str().unwrap()]).status.success());
    let o = run(&["import", p.to_str().unwrap(), "/no/such/folder", "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files"][0]["reason"], "unreadable");
}

#[test]
fn stats_of_a_non_project_is_a_one_line_user_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("junk.thyme");
    std::fs::write(&p, vec![b'x'; 4096]).unwrap();
    let o = run(&["stats", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let (_, err) = text(&o);
    assert!(
        err.contains("junk.thyme") && err.contains("not a thyme-studio project"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1);
}

#[test]
fn open_of_a_missing_file_fails_before_any_window() {
    let o = run(&["open", "/no/such/project.thyme"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("no such project file"));
}

#[test]
fn demo_writes_a_project_with_known_answers_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    let o = run(&["demo", d.to_str().unwrap(), "--scale", "16"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let project = d.join("demo.thyme");
    let o = run(&["stats", project.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["images"], 3);
    assert_eq!(v["images_missing"], 0);
    assert!(v["regions"].as_u64().unwrap() >= 3 * 10);
    assert_eq!(v["regions_over_area_limit"], 0);
    for cat in thyme_studio::dataset::category::BUILTIN {
        assert!(
            v["questions_by_category"][cat].as_u64().unwrap() >= 3,
            "{cat}"
        );
    }
    let again = run(&["demo", d.to_str().unwrap(), "--scale", "16"]);
    assert_eq!(again.status.code(), Some(1));
}

#[test]
fn version_and_help_work() {
    let o = run(&["--version"]);
    assert!(o.status.success());
    assert!(text(&o).0.starts_with("thyme-studio "));
    let o = run(&["--help"]);
    for sub in ["open", "new", "import", "stats", "demo"] {
        assert!(text(&o).0.contains(sub), "{sub}");
    }
}

#[test]
fn the_tile_cache_reports_its_size_keeps_a_budget_and_clears_by_age() {
    let home = tempfile::tempdir().unwrap();
    let tiles = home.path().join("cache/tiles");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Two cached pyramids: one shown ten days ago, one just now.
    for (name, used) in [("old", now - 10 * 86_400_000), ("new", now)] {
        let id = thyme_studio::dataset::ImageId::of_bytes(name.as_bytes());
        let dir = tiles.join(id.as_str());
        std::fs::create_dir_all(dir.join("0")).unwrap();
        std::fs::create_dir_all(dir.join("1")).unwrap();
        std::fs::write(dir.join("0/0_0.qoi"), vec![1u8; 3000]).unwrap();
        std::fs::write(dir.join("1/0_0.qoi"), vec![1u8; 1000]).unwrap();
        std::fs::write(dir.join("complete"), b"bytes 4000\nfull 3000\n").unwrap();
        std::fs::write(dir.join("used"), used.to_string()).unwrap();
    }
    let cmd = |args: &[&str]| {
        bin()
            .env("THYME_STUDIO_HOME", home.path())
            .args(args)
            .output()
            .unwrap()
    };
    let o = cmd(&["cache", "stats", "--json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["bytes"], 8000);
    assert_eq!(v["full_resolution_bytes"], 6000);
    assert_eq!(v["budget_from_settings"], false);
    assert_eq!(v["images"].as_array().unwrap().len(), 2);

    let o = cmd(&["cache", "budget", "3G"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&cmd(&["cache", "stats", "--json"]).stdout).unwrap();
    assert_eq!(v["budget_bytes"], 3u64 << 30);
    let o = cmd(&["cache", "budget", "lots"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("not a size"), "{:?}", text(&o));

    let o = cmd(&["cache", "clear", "--older-than", "7"]);
    assert!(o.status.success(), "{:?}", text(&o));
    assert!(text(&o).0.contains("removed 1 image(s)"), "{:?}", text(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&cmd(&["cache", "stats", "--json"]).stdout).unwrap();
    assert_eq!(v["bytes"], 4000);
    let o = cmd(&["cache", "clear"]);
    assert!(text(&o).0.contains("removed 1 image(s)"), "{:?}", text(&o));
}

#[test]
fn assist_snap_and_a_weight_free_click_find_the_object_in_a_jpeg_and_name_a_box_off_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ground.jpg");
    let mut img = image::RgbImage::from_fn(1600, 1200, |x, y| {
        let g = ((x * 7 + y * 13) % 23) as u8;
        image::Rgb([100 + g, 110 + g, 90 + g])
    });
    for y in 600..640 {
        for x in 900..980 {
            img.put_pixel(x, y, image::Rgb([30, 90, 220]));
        }
    }
    img.save(&path).unwrap();
    let p = path.to_str().unwrap();
    let out = run(&["assist", "snap", p, "--box", "885,590,995,652", "--json"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    // JPEG blurs the edge by a pixel at most.
    let snapped: Vec<f64> = v["snapped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    for (got, want) in snapped.iter().zip([900.0, 600.0, 980.0, 640.0]) {
        assert!((got - want).abs() <= 1.0, "{snapped:?}");
    }
    // A click on the sign, with no weights: the weight-free click finds the same box.
    let out = run(&["assist", "box", p, "--x", "930", "--y", "615", "--json"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let r = &v["rect"];
    for (key, want) in [("x0", 900.0), ("y0", 600.0), ("x1", 980.0), ("y1", 640.0)] {
        assert!((r[key].as_f64().unwrap() - want).abs() <= 1.0, "{stdout}");
    }
    assert!(
        v["how"].as_str().unwrap().contains("weight-free"),
        "{stdout}"
    );
    let off = run(&["assist", "snap", p, "--box", "2000,10,2100,50"]);
    let (_, stderr) = text(&off);
    assert_eq!(off.status.code(), Some(1));
    assert!(stderr.contains("not on the image"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn assist_box_runs_sam_from_a_weights_folder_and_names_missing_weights() {
    use thyme_studio::assist::sam::{VitShape, write_random};
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("photo.png");
    write_png(&img, 900, 700, 4);
    let p = img.to_str().unwrap();
    // No weights: one line naming the file to get.
    let empty = dir.path().join("none");
    std::fs::create_dir_all(&empty).unwrap();
    let out = run(&[
        "assist",
        "box",
        p,
        "--x",
        "400",
        "--y",
        "300",
        "--weights",
        empty.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("mobile_sam-tiny-vitt.safetensors"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    // Random weights in candle-transformers' names: a box in JSON, or "nothing" (exit 1).
    let weights = dir.path().join("sam");
    let shape = VitShape {
        embed_dim: 32,
        depth: 1,
        heads: 2,
        global_attn: vec![0],
    };
    write_random(&weights, &shape, 9).unwrap();
    let args = [
        "assist",
        "box",
        p,
        "--x",
        "400",
        "--y",
        "300",
        "--side",
        "256",
        "--json",
        "--weights",
    ];
    let out = bin().args(args).arg(&weights).output().unwrap();
    let (stdout, stderr) = text(&out);
    if out.status.success() {
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let x0 = v["rect"]["x0"].as_f64().unwrap();
        let w0 = v["window"][0].as_f64().unwrap();
        assert!(x0 >= w0, "{stdout}");
    } else {
        assert!(stderr.contains("nothing found: SAM"), "{stderr}");
    }
}
