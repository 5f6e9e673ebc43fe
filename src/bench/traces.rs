//! Listing a large JSONL of runs: 10,000 runs (about 1 GB, every image embedded as base64, as
//! RL logs keep them) read for the run list, against a plain Python `json.loads` loop over
//! the same file in the same run; then a full-text search of the same file (time to the first
//! match and to all), against `grep -c -i` counting the matching lines.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::base64::encode;
use serde::Serialize;

use crate::trace::{Run, Step, StepImage, Trace, TraceImage, io};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub runs: usize,
    pub file_mb: f64,
    pub ours_first_rows_s: f64,
    pub ours_total_s: f64,
    pub python_first_rows_s: Option<f64>,
    pub python_total_s: Option<f64>,
    pub ratio: Option<f64>,
    pub search_text: String,
    pub search_hits: usize,
    pub search_first_s: f64,
    pub search_total_s: f64,
    pub grep_lines: Option<usize>,
    pub grep_s: Option<f64>,
    /// Our full search over grep's count (below 1: faster than grep).
    pub search_ratio: Option<f64>,
}

/// Write the benchmark file (once).
pub fn make_file(dir: &Path, runs: usize) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("runs-{runs}.jsonl"));
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(dir)?;
    // One noisy ~30 KB JPEG, embedded three times per run.
    let img = image::RgbImage::from_fn(200, 150, |x, y| {
        let n = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) >> 13;
        image::Rgb([n as u8, (n >> 8) as u8, (x + y) as u8])
    });
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(img).write_to(
        &mut std::io::Cursor::new(&mut jpeg),
        image::ImageFormat::Jpeg,
    )?;
    let data_url = format!("data:image/jpeg;base64,{}", encode(&jpeg));
    let tmp = path.with_extension("partial");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    for i in 0..runs {
        let image = TraceImage {
            data_url: Some(data_url.clone()),
            width: Some(200),
            height: Some(150),
            ..Default::default()
        };
        let exec = |k: usize| Step::Execute {
            raw_code: format!(
                "crop = img.crop(({0}, {0}, {1}, {1}))\ncrop.save('out{k}.jpg')\nprint('out{k}.jpg')",
                10 * k,
                10 * k + 80
            ),
            executed_code: String::new(),
            fixes: vec![],
            stdout: format!("out{k}.jpg"),
            stderr: String::new(),
            error: None,
            outputs: vec![StepImage {
                image: image.clone(),
                source_rect: Some([
                    10.0 * k as f64,
                    10.0 * k as f64,
                    10.0 * k as f64 + 80.0,
                    10.0 * k as f64 + 80.0,
                ]),
                provenance: Some(crate::trace::Provenance::Sandbox),
            }],
            text_result: None,
            ms: Some(20.0),
            fed_back: true,
            edited_from: None,
        };
        let gen_step = |text: String| Step::Generate {
            text,
            stop: None,
            tokens: Some(120),
            ms: Some(900.0),
            sampling: Default::default(),
            rolled_back: false,
        };
        let answer = if i % 3 == 0 { "4" } else { "5" };
        let t = Trace::new(
            Run {
                id: format!("run-{i:05}"),
                images: vec![image.clone()],
                question: format!("How many small red signs are there in picture {i}?"),
                ground_truth: Some("4".into()),
                source_format: "thyme-rl".into(),
                ..Default::default()
            },
            vec![
                gen_step(
                    "<think>Let me crop the left part and count.</think><code>...</code>".into(),
                ),
                exec(1),
                gen_step("<think>And the right part.</think><code>...</code>".into()),
                exec(2),
                gen_step(format!(
                    "<think>I count {answer}.</think> <answer>{answer}</answer>"
                )),
                Step::Answer {
                    text: format!("<answer>{answer}</answer>"),
                    extracted: None,
                    matches_ground_truth: None,
                },
            ],
        );
        serde_json::to_writer(&mut w, &t)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

pub fn run(dir: &Path, runs: usize, python: &Path) -> anyhow::Result<Report> {
    let file = make_file(dir, runs)?;
    let file_mb = std::fs::metadata(&file)?.len() as f64 / 1e6;
    // Warm the page cache the same way for both.
    std::io::copy(&mut std::fs::File::open(&file)?, &mut std::io::sink())?;
    let started = Instant::now();
    let mut first = None;
    let mut n = 0;
    io::index_jsonl(
        &file,
        &mut |rows| {
            n += rows.len();
            if first.is_none() && n >= 1000 {
                first = Some(started.elapsed().as_secs_f64());
            }
        },
        &AtomicBool::new(false),
    )?;
    let total = started.elapsed().as_secs_f64();
    anyhow::ensure!(n == runs, "listed {n} of {runs} runs");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/trace_list_peer.py");
    let peer = std::process::Command::new(python)
        .arg(script)
        .arg(&file)
        .output();
    let (pf, pt) = match peer {
        Ok(o) if o.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&o.stdout)?;
            (v["first_rows"].as_f64(), v["total"].as_f64())
        }
        Ok(o) => {
            tracing::warn!(
                "the Python peer failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            (None, None)
        }
        Err(e) => {
            tracing::warn!("the Python peer did not start: {e}");
            (None, None)
        }
    };
    let search = search(&file)?;
    Ok(Report {
        runs,
        file_mb,
        ours_first_rows_s: first.unwrap_or(total),
        ours_total_s: total,
        python_first_rows_s: pf,
        python_total_s: pt,
        ratio: pt.map(|p| total / p),
        search_text: search.text,
        search_hits: search.hits,
        search_first_s: search.first,
        search_total_s: search.total,
        grep_lines: search.grep.map(|g| g.0),
        grep_s: search.grep.map(|g| g.1),
        search_ratio: search.grep.map(|g| search.total / g.1),
    })
}

struct SearchFigures {
    text: String,
    hits: usize,
    first: f64,
    total: f64,
    grep: Option<(usize, f64)>,
}

/// Search the file for text one run in three holds (its rows already indexed, as in the app),
/// then count the same lines with grep.
fn search(file: &Path) -> anyhow::Result<SearchFigures> {
    use crate::trace::search::{Query, search_jsonl};
    let text = "I count 4.".to_owned();
    let cancel = AtomicBool::new(false);
    let mut rows = Vec::new();
    io::index_jsonl(file, &mut |r| rows.extend(r), &cancel)?;
    let q = Query {
        text: text.clone(),
        ..Default::default()
    };
    let started = Instant::now();
    let mut first = None;
    let mut hits = 0;
    search_jsonl(file, &rows, &q, &cancel, &mut |h| {
        hits += h.len();
        first.get_or_insert_with(|| started.elapsed().as_secs_f64());
    })?;
    let total = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let grep = std::process::Command::new("grep")
        .args(["-c", "-i", "-F", &text])
        .arg(file)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<usize>()
                .ok()
        })
        .map(|n| (n, started.elapsed().as_secs_f64()));
    Ok(SearchFigures {
        text,
        hits,
        first: first.unwrap_or(total),
        total,
        grep,
    })
}
