//! Datasets with lineage: every export has a manifest that names the project state, the
//! prompt and every item; a seeded split by image; the same state exported again gives the
//! same bytes.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use thyme_studio::exchange::{ExportOptions, Format, SplitSpec, export, manifest_only};
use thyme_studio::store::SqliteStore;

fn demo(dir: &Path) -> std::path::PathBuf {
    thyme_studio::demo::write_demo(&dir.join("demo"), 16, &|_| {}).unwrap()
}

fn run(project: &Path, options: &ExportOptions, out: &Path) {
    let store = SqliteStore::open(project).unwrap();
    export(
        &store,
        options,
        out,
        &mut |_, _| {},
        &AtomicBool::new(false),
    )
    .unwrap();
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_split_export_twice_gives_the_same_bytes_and_its_manifest_names_every_item() {
    let dir = tempfile::tempdir().unwrap();
    let project = demo(dir.path());
    let mut options = ExportOptions::new(Format::ThymeRl);
    options.split = Some(SplitSpec::parse("train=0.5,val=0.25,test=0.25", 11).unwrap());
    for round in ["a", "b"] {
        std::fs::create_dir_all(dir.path().join(round)).unwrap();
        run(&project, &options, &dir.path().join(round).join("rl.jsonl"));
    }
    let a = files(&dir.path().join("a"));
    let b = files(&dir.path().join("b"));
    let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "rl.jsonl.manifest.json",
            "rl.test.jsonl",
            "rl.train.jsonl",
            "rl.val.jsonl"
        ]
    );
    assert_eq!(a, b, "the same state gives the same bytes");

    let manifest: serde_json::Value = serde_json::from_slice(
        &a.iter()
            .find(|(n, _)| n.ends_with("manifest.json"))
            .unwrap()
            .1,
    )
    .unwrap();
    let mut from_manifest = BTreeSet::new();
    let mut images_seen = BTreeSet::new();
    for part in manifest["parts"].as_array().unwrap() {
        let file = part["file"].as_str().unwrap();
        let rows: BTreeSet<String> = std::fs::read_to_string(dir.path().join("a").join(file))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let listed: BTreeSet<String> = part["question_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(rows, listed, "{file}");
        for i in part["image_ids"].as_array().unwrap() {
            assert!(
                images_seen.insert(i.as_str().unwrap().to_owned()),
                "an image in two parts"
            );
        }
        from_manifest.extend(listed);
    }
    assert_eq!(
        from_manifest.len() as u64,
        manifest["counts"]["questions"].as_u64().unwrap()
    );
    assert_eq!(
        manifest["system_prompt_sha256"].as_str().unwrap(),
        thyme_studio::agent::PromptProfile::default().system_sha256()
    );
    assert_eq!(
        manifest["project"]["content_sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert_eq!(manifest["split"]["seed"], 11);

    // --manifest-only says the same and writes nothing.
    let store = SqliteStore::open(&project).unwrap();
    let printed = manifest_only(&store, &options, &dir.path().join("c").join("rl.jsonl")).unwrap();
    let printed: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(printed["parts"], manifest["parts"]);
    assert!(!dir.path().join("c").exists());

    // Another seed deals the images differently.
    options.split = Some(SplitSpec::parse("train=0.5,val=0.25,test=0.25", 12).unwrap());
    std::fs::create_dir_all(dir.path().join("d")).unwrap();
    run(&project, &options, &dir.path().join("d").join("rl.jsonl"));
    assert_eq!(files(&dir.path().join("d")).len(), 4);
}

#[test]
fn the_manifest_of_a_plain_export_counts_categories_and_annotators() {
    let dir = tempfile::tempdir().unwrap();
    let project = demo(dir.path());
    let out = dir.path().join("coco.json");
    run(&project, &ExportOptions::new(Format::Coco), &out);
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("coco.json.manifest.json")).unwrap(),
    )
    .unwrap();
    let by_cat: u64 = m["by_category"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let by_who: u64 = m["by_annotator"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_cat, m["counts"]["questions"].as_u64().unwrap());
    assert_eq!(by_who, by_cat);
    assert_eq!(m["format"], "coco");
    assert_eq!(m["out"], "coco.json");
}
