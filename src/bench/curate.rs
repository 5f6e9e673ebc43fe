//! The difficulty check's own cost: N QA items x k tries x 2 arms against a chat server on
//! loopback that answers every request after a fixed delay (as a loaded vLLM would), with many
//! tries in flight and one at a time (on the first items, the same settings otherwise), every
//! try stored in the project as in a real check. The server answers at once in both arms, so no
//! code runs: what is left beyond the delay is ours (the request, the stream, the trace, the
//! stored row). The sandbox's cost per code cell is `bench sandbox`'s.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::agent::{Backoff, HttpSettings, Policy, PromptProfile, Settings};
use crate::curate::{AttemptStore, CheckSettings, Checker};
use crate::dataset::{Answer, ImageId, ImageRecord, Question, Region};
use crate::exchange::Filter;
use crate::geometry::{ImageRect, ImageSize};
use crate::sandbox::SandboxConfig;
use crate::store::{Command, SqliteStore, Store};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub items: usize,
    pub k: usize,
    pub latency_ms: f64,
    pub jobs: usize,
    /// Tries made with `jobs` in flight, and their wall time.
    pub parallel_tries: usize,
    pub parallel_s: f64,
    /// Tries made one at a time, and their wall time.
    pub sequential_tries: usize,
    pub sequential_s: f64,
    /// Time per try one at a time over time per try in flight (ideal: `jobs`).
    pub speedup: f64,
    /// Time per try one at a time beyond the server's delay.
    pub overhead_ms_per_try: f64,
    pub peak_rss_mib: f64,
}

/// Answer every chat request after `delay` with one streamed answer; runs until the process
/// ends.
fn serve(delay: Duration) -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut s) = conn else { continue };
            std::thread::spawn(move || {
                let Ok(clone) = s.try_clone() else { return };
                let mut reader = BufReader::new(clone);
                let (mut line, mut len) = (String::new(), 0usize);
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let l = line.trim().to_ascii_lowercase();
                    if l.is_empty() {
                        break;
                    }
                    if let Some(v) = l.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                std::thread::sleep(delay);
                let chunk = serde_json::json!({"choices": [{"index": 0, "delta": {"content": "<think>It reads 7.</think> <answer>7</answer>"}, "finish_reason": "stop"}]});
                let out = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\ndata: {chunk}\n\ndata: [DONE]\n\n"
                );
                let _ = s.write_all(out.as_bytes());
            });
        }
    });
    Ok(port)
}

/// A project of one image and `items` questions, each about a box of its own.
fn project(dir: &Path, items: usize) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let image_path = std::path::absolute(dir.join("scene.png"))?;
    image::RgbImage::from_fn(800, 600, |x, y| image::Rgb([x as u8, y as u8, 70]))
        .save(&image_path)?;
    let path = dir.join("curate.thyme");
    if path.exists() {
        std::fs::remove_file(&path)?;
    }
    for side in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("curate.thyme{side}")));
    }
    let mut store = SqliteStore::create(&path)?;
    let image = ImageRecord {
        id: ImageId::of_file(&image_path)?,
        path: image_path,
        size: ImageSize::new(800, 600),
        bytes: 1,
        added_at_ms: 0,
        status: Default::default(),
        review: None,
    };
    let mut regions = Vec::new();
    let mut questions = Vec::new();
    for i in 0..items {
        let (x, y) = ((i % 38) as f64 * 20.0, (i / 38 % 28) as f64 * 20.0);
        let r = Region::new(
            image.id.clone(),
            ImageRect::new(x, y, x + 16.0, y + 16.0),
            "sign",
        );
        questions.push(Question::new(
            image.id.clone(),
            vec![r.id],
            format!("What number is on sign {i}?"),
            Answer::Open { text: "7".into() },
            "ocr",
        ));
        regions.push(r);
    }
    store.apply(
        "bench",
        Command::AddImage {
            image,
            regions,
            questions,
        },
    )?;
    Ok(path)
}

pub fn run(
    cfg: SandboxConfig,
    dir: &Path,
    items: usize,
    k: usize,
    latency: Duration,
    jobs: usize,
    sequential_items: usize,
) -> anyhow::Result<Report> {
    let port = serve(latency)?;
    let path = project(dir, items)?;
    let store = SqliteStore::open(&path)?;
    let profile = PromptProfile::default();
    let (all, _) = crate::curate::items(&store, &Filter::default(), &profile)?;
    drop(store);
    let http = HttpSettings {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        model: "bench".into(),
        api_key: None,
        timeout: Duration::from_secs(60),
        ca_file: None,
        problem: None,
    };
    let make = move || -> Result<Box<dyn Policy>, String> {
        Ok(Box::new(crate::agent::Http::new(http.clone())))
    };
    let attempts = Mutex::new(AttemptStore::open(&path)?);
    let check = |items: &[crate::curate::CheckItem], jobs: usize, seed: u64| {
        let checker = Checker {
            sandbox: cfg.clone(),
            settings: CheckSettings {
                k,
                temperature: 1.0,
                seed,
                agent: Settings::default(),
                profile: profile.clone(),
                model: "bench".into(),
            },
            jobs,
            backoff: Backoff::default(),
            policy: &make,
        };
        let started = Instant::now();
        let outcome = checker.run(items, &attempts, &AtomicBool::new(false), &|_, _| {})?;
        if let Some(e) = outcome.store_error {
            anyhow::bail!("a try was not stored: {e}");
        }
        if outcome.progress.failed > 0 {
            anyhow::bail!("{} tries failed", outcome.progress.failed);
        }
        Ok::<_, anyhow::Error>((outcome.progress.made, started.elapsed().as_secs_f64()))
    };
    let (parallel_tries, parallel_s) = check(&all, jobs, 0)?;
    // Another seed: the same settings otherwise, nothing reused.
    let first = &all[..sequential_items.min(all.len())];
    let (sequential_tries, sequential_s) = check(first, 1, 1_000_000)?;
    let per = |s: f64, n: usize| s / n.max(1) as f64;
    let latency_ms = latency.as_secs_f64() * 1000.0;
    Ok(Report {
        items: all.len(),
        k,
        latency_ms,
        jobs,
        parallel_tries,
        parallel_s,
        sequential_tries,
        sequential_s,
        speedup: per(sequential_s, sequential_tries) / per(parallel_s, parallel_tries),
        overhead_ms_per_try: per(sequential_s, sequential_tries) * 1000.0 - latency_ms,
        peak_rss_mib: super::canvas::peak_rss_mib(),
    })
}
