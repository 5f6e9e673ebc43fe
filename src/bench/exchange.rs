//! Export speed: a generated project of 10,000 images and 100,000 QA items written in every
//! format, against a Python script (json, sqlite3; pycocotools checks its COCO output outside
//! the timing) that reads the same project file and writes the same formats, in the same run.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::Serialize;

use crate::dataset::{Answer, ImageId, ImageRecord, ImageStatus, Question, Region, Review};
use crate::exchange::{ExportOptions, Format, export};
use crate::geometry::{ImageRect, ImageSize};
use crate::store::dump::{Dump, JournalRow};
use crate::store::{Command, JournalAction, SqliteStore};

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub format: String,
    pub records: u64,
    pub ours_s: f64,
    pub python_s: Option<f64>,
    pub ratio: Option<f64>,
}

/// Make the benchmark project in `dir` (once): `images` image records whose files are hard
/// links to one small PNG, 3 boxes and `questions / images` questions on each.
pub fn make_project(dir: &Path, images: usize, questions: usize) -> anyhow::Result<PathBuf> {
    let project = dir.join(format!("bench-{images}-{questions}.thyme"));
    if project.is_file() {
        return Ok(project);
    }
    let files = dir.join("images");
    std::fs::create_dir_all(&files)?;
    let source = files.join("source.png");
    image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 90]))
        .save(&source)?;
    let bytes = std::fs::metadata(&source)?.len();
    let per_image = questions.div_ceil(images.max(1));
    let categories = crate::dataset::category::BUILTIN;
    let mut dump = Dump {
        categories: crate::dataset::Category::builtins(),
        ..Default::default()
    };
    let size = ImageSize::new(4000, 3000);
    let mut left = questions;
    for i in 0..images {
        let path = files.join(format!("img-{i:06}.png"));
        if !path.exists() {
            std::fs::hard_link(&source, &path)
                .or_else(|_| std::fs::copy(&source, &path).map(|_| ()))?;
        }
        let image = ImageRecord {
            id: ImageId::of_bytes(&(i as u64).to_le_bytes()),
            path,
            size,
            bytes,
            added_at_ms: 1_700_000_000_000 + i as i64,
            status: ImageStatus::InProgress,
            review: None,
        };
        let regions: Vec<Region> = (0..3)
            .map(|k| {
                let x = 100.0 + 900.0 * k as f64 + (i % 50) as f64;
                Region::new(
                    image.id.clone(),
                    ImageRect::new(x, 200.0, x + 120.0 + k as f64 * 10.0, 260.0),
                    ["sign", "car", "digit"][k],
                )
            })
            .collect();
        let n = per_image.min(left);
        left -= n;
        let questions: Vec<Question> = (0..n)
            .map(|j| {
                let answer = if j % 3 == 0 {
                    Answer::Choice {
                        options: vec!["red".into(), "green".into(), "blue".into(), "white".into()],
                        correct: j % 4,
                    }
                } else {
                    Answer::Open {
                        text: format!("answer {i}-{j}"),
                    }
                };
                let mut q = Question::new(
                    image.id.clone(),
                    vec![regions[j % 3].id],
                    format!(
                        "Question {j} about the object in box {} of image {i}?",
                        j % 3 + 1
                    ),
                    answer,
                    categories[j % categories.len()],
                );
                if j % 2 == 0 {
                    q.review = Some(Review::accepted("reviewer", "", 1));
                }
                q
            })
            .collect();
        dump.journal.push(JournalRow {
            seq: i as i64 + 1,
            at_ms: image.added_at_ms,
            actor: format!("annotator-{:02}", i % 15),
            action: JournalAction::Edit,
            target: None,
            command: serde_json::to_value(Command::AddImage {
                image: image.clone(),
                regions: regions.clone(),
                questions: questions.clone(),
            })?,
            state: Some("done".into()),
        });
        dump.images.push(image);
        dump.regions.extend(regions);
        dump.questions.extend(questions);
    }
    let tmp = dir.join("bench.thyme.partial");
    let _ = std::fs::remove_file(&tmp);
    let mut store = SqliteStore::create(&tmp)?;
    store.restore(&dump)?;
    drop(store);
    std::fs::rename(&tmp, &project)?;
    Ok(project)
}

/// Export in every format, ours then the Python peer's, and compare.
pub fn run(dir: &Path, images: usize, questions: usize) -> anyhow::Result<Vec<Row>> {
    let project = make_project(dir, images, questions)?;
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    let store = SqliteStore::open(&project)?;
    let mut rows = Vec::new();
    for format in Format::ALL {
        let target = out.join(format!("ours-{}", format.default_file_name()));
        let started = Instant::now();
        let report = export(
            &store,
            &ExportOptions::new(format),
            &target,
            &mut |_, _| {},
            &AtomicBool::new(false),
        )?;
        rows.push(Row {
            format: format.name().to_owned(),
            records: report.records,
            ours_s: started.elapsed().as_secs_f64(),
            python_s: None,
            ratio: None,
        });
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/export_peer.py");
    let python = std::env::var("THYME_TEST_PYTHON").unwrap_or_else(|_| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/test-python/bin/python")
            .to_string_lossy()
            .into_owned()
    });
    let peer = std::process::Command::new(&python)
        .arg(&script)
        .arg(&project)
        .arg(&out)
        .output();
    match peer {
        Ok(o) if o.status.success() => {
            let times: std::collections::BTreeMap<String, f64> = serde_json::from_slice(&o.stdout)?;
            for row in &mut rows {
                if let Some(t) = times.get(&row.format) {
                    row.python_s = Some(*t);
                    row.ratio = Some(row.ours_s / t);
                }
            }
        }
        Ok(o) => tracing::warn!(
            "the Python peer failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => tracing::warn!("the Python peer did not start ({python}): {e}"),
    }
    Ok(rows)
}

pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| format | records | ours s | Python s | ours / Python |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {:.2} | {} | {} |\n",
            r.format,
            r.records,
            r.ours_s,
            r.python_s.map(|t| format!("{t:.2}")).unwrap_or("-".into()),
            r.ratio.map(|x| format!("{x:.2}x")).unwrap_or("-".into()),
        ));
    }
    s
}
