//! The difficulty check end to end: `thyme-studio curate run` against a chat server on loopback
//! that answers by rule, with the real sandbox cropping the real image. The server gives the
//! right answer to a with-tool run only when the crop in its context covers the question's
//! box, so the stored rates, the flags and "looked at the target" all follow from what the
//! agent really did. Also: retries then a failed (not wrong) try, resuming after a kill, the
//! export filter, and the tiny random local model on one item.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

#[path = "support/chat.rs"]
mod chat;
use chat::{read_body, reply};
use thyme_studio::curate::{Arm, AttemptStore, Flag, Thresholds, Verdict, rates};
use thyme_studio::dataset::{Answer, ImageId, ImageRecord, Question, QuestionId, Region};
use thyme_studio::geometry::{ImageRect, ImageSize};
use thyme_studio::store::{Command, SqliteStore, Store};

/// The target box of every item that has one (400 x 300 image: 0.33 % of it).
const TARGET: [f64; 4] = [300.0, 200.0, 320.0, 220.0];

fn crop_code(r: [f64; 4]) -> String {
    format!(
        "<think>Zoom in.</think><code>\n```python\nimg = Image.open(image_path)\nc = img.crop(({}, {}, {}, {})).resize((80, 80))\nc.save('/mnt/data/temp_processed_images/z.png')\nprint('/mnt/data/temp_processed_images/z.png')\n```\n</code>",
        r[0], r[1], r[2], r[3]
    )
}

/// The crop rectangle written in the assistant turn so far, if any.
fn crop_in(text: &str) -> Option<[f64; 4]> {
    let at = text.find("crop((")? + 6;
    let end = text[at..].find("))")? + at;
    let v: Vec<f64> = text[at..end]
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    Some([v[0], v[1], v[2], v[3]])
}

fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// Requests served, by (question word, arm, seed).
type Served = Arc<Mutex<BTreeMap<(String, &'static str, u64), usize>>>;

/// The rule server. The question's first word names its rule:
/// - needs: with tools it crops the box and is right when the crop covers it; without, wrong.
/// - easy: right at once in both arms.
/// - elsewhere: crops far from the box and is wrong; wrong without tools.
/// - coin: with tools, even seeds crop the box (right), odd seeds answer wrong at once.
/// - down: every request fails with 503.
fn rule_server(delay: Duration) -> (u16, Served) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let served: Served = Arc::default();
    let log = served.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut s = conn.unwrap();
            let log = log.clone();
            std::thread::spawn(move || {
                let body = read_body(&mut s);
                std::thread::sleep(delay);
                let messages = body["messages"].as_array().unwrap();
                let user = messages
                    .iter()
                    .find(|m| m["role"] == "user")
                    .map(|m| text_of(&m["content"]))
                    .unwrap();
                let assistant = messages
                    .iter()
                    .find(|m| m["role"] == "assistant")
                    .map(|m| text_of(&m["content"]))
                    .unwrap_or_default();
                let no_tools = user.contains("without code");
                let arm = if no_tools { "no_tools" } else { "tools" };
                let seed = body["seed"].as_u64().unwrap();
                let question = user
                    .split_whitespace()
                    .find(|w| ["needs", "easy", "elsewhere", "coin", "down"].contains(w))
                    .unwrap_or("?")
                    .to_owned();
                *log.lock()
                    .unwrap()
                    .entry((question.clone(), arm, seed))
                    .or_insert(0) += 1;
                let covers = |c: [f64; 4]| {
                    c[0] <= TARGET[0] && c[1] <= TARGET[1] && c[2] >= TARGET[2] && c[3] >= TARGET[3]
                };
                let answer =
                    |ok: bool| format!("<answer>{}</answer>", if ok { "seven" } else { "three" });
                let text = match (question.as_str(), no_tools) {
                    ("down", _) => {
                        let _ = s.write_all(
                            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy",
                        );
                        return;
                    }
                    ("easy", _) => answer(true),
                    (_, true) => answer(false),
                    ("needs", false) | ("coin", false) if assistant.is_empty() => {
                        if question == "coin" && seed % 2 == 1 {
                            answer(false)
                        } else {
                            crop_code([290.0, 190.0, 330.0, 230.0])
                        }
                    }
                    ("elsewhere", false) if assistant.is_empty() => {
                        crop_code([10.0, 10.0, 50.0, 50.0])
                    }
                    // Continuing after the sandbox: right only with the box in view.
                    (_, false) => answer(crop_in(&assistant).is_some_and(covers)),
                };
                reply(&mut s, &text);
            });
        }
    });
    (port, served)
}

/// A project with one 400 x 300 image and six questions: the five rules, and one without an
/// answer (skipped and named).
fn project(dir: &Path) -> (PathBuf, BTreeMap<&'static str, QuestionId>) {
    let image_path = dir.join("street.png");
    image::RgbImage::from_fn(400, 300, |x, y| image::Rgb([x as u8, y as u8, 90]))
        .save(&image_path)
        .unwrap();
    let path = dir.join("check.thyme");
    let mut store = SqliteStore::create(&path).unwrap();
    let image = ImageRecord {
        id: ImageId::of_file(&image_path).unwrap(),
        path: image_path,
        size: ImageSize::new(400, 300),
        bytes: 1,
        added_at_ms: 0,
        status: Default::default(),
        review: None,
    };
    let target = Region::new(
        image.id.clone(),
        ImageRect::new(TARGET[0], TARGET[1], TARGET[2], TARGET[3]),
        "sign",
    );
    let mut ids = BTreeMap::new();
    let mut questions = Vec::new();
    for (word, answer) in [
        ("needs", "seven"),
        ("easy", "seven"),
        ("elsewhere", "seven"),
        ("coin", "seven"),
        ("down", "seven"),
        ("blank", ""),
    ] {
        let q = Question::new(
            image.id.clone(),
            vec![target.id],
            format!("Rule {word} : what does the sign say?"),
            Answer::Open {
                text: answer.into(),
            },
            "ocr",
        );
        ids.insert(word, q.id);
        questions.push(q);
    }
    store
        .apply(
            "annotator",
            Command::AddImage {
                image,
                regions: vec![target],
                questions,
            },
        )
        .unwrap();
    (path, ids)
}

fn curate(dir: &Path, project: &Path, port: u16, extra: &[&str]) -> Process {
    let mut p = Process::new(env!("CARGO_BIN_EXE_thyme-studio"));
    p.args(["curate", "run"])
        .arg(project)
        .args(["--policy", "http", "--model", "rule-model", "--k", "4"])
        .args(["--retries", "2", "--backoff-ms", "1"])
        .arg("--base-url")
        .arg(format!("http://127.0.0.1:{port}/v1"))
        .arg("--runs")
        .arg(dir.join("runs"))
        .args(extra);
    p
}

#[test]
fn the_check_stores_every_try_and_flags_each_item_by_what_the_agent_did() {
    let dir = tempfile::tempdir().unwrap();
    let (project, ids) = project(dir.path());
    let (port, served) = rule_server(Duration::ZERO);
    let out = curate(dir.path(), &project, port, &["--jobs", "6"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The question without an answer is skipped and named.
    assert!(stderr.contains("invalid question"), "{stderr}");

    let store = AttemptStore::open(&project).unwrap();
    let attempts = store.list(None).unwrap();
    // 5 items x 4 seeds x 2 arms, every one stored.
    assert_eq!(attempts.len(), 40);
    let items: BTreeMap<QuestionId, _> = rates(&attempts, 4, &Thresholds::default())
        .into_iter()
        .map(|r| (r.question, r))
        .collect();
    let item = |w: &str| &items[&ids[w]];
    let frac = |a: &thyme_studio::curate::ArmRate| (a.correct, a.tries, a.failed);

    let needs = attempts
        .iter()
        .find(|a| a.question == ids["needs"] && a.arm == Arm::Tools)
        .unwrap();
    let needs_trace = store
        .trace(&needs.settings_key, needs.question, needs.arm, needs.seed)
        .unwrap()
        .unwrap();
    assert_eq!(frac(&item("needs").tools), (4, 4, 0), "{needs_trace}");
    assert_eq!(frac(&item("needs").no_tools), (0, 4, 0));
    assert_eq!(item("needs").flags, vec![Flag::NeedsTools]);
    assert_eq!(item("needs").looks["looked at the target"], 4);
    assert_eq!(item("needs").tools_pass_at_k, Some(1.0));
    assert_eq!(item("needs").gap, Some(1.0));

    assert_eq!(frac(&item("easy").tools), (4, 4, 0));
    assert_eq!(frac(&item("easy").no_tools), (4, 4, 0));
    assert_eq!(item("easy").flags, vec![Flag::TooEasy]);
    assert_eq!(item("easy").looks["never zoomed"], 4);

    assert_eq!(frac(&item("elsewhere").tools), (0, 4, 0));
    assert_eq!(item("elsewhere").flags, vec![Flag::Suspect]);
    assert_eq!(item("elsewhere").looks["looked elsewhere"], 4);

    // Seeds 0..4: even ones crop the box.
    assert_eq!(frac(&item("coin").tools), (2, 4, 0));
    assert_eq!(item("coin").flags, vec![Flag::NeedsTools, Flag::Flaky]);

    // The server never answered: failed tries, not wrong ones, and no flag from them.
    assert_eq!(frac(&item("down").tools), (0, 0, 4));
    assert_eq!(frac(&item("down").no_tools), (0, 0, 4));
    assert!(item("down").flags.is_empty());
    let down = attempts.iter().find(|a| a.question == ids["down"]).unwrap();
    assert_eq!(down.verdict, Verdict::Failed);
    assert!(
        down.error.as_deref().unwrap().contains("after 2 tries"),
        "{down:?}"
    );
    // Retried: two requests per failed try (the with-tool run's fallback asks once more).
    assert!(served.lock().unwrap()[&("down".to_owned(), "no_tools", 0)] >= 2);

    // Each try keeps its seed, model, prompt hash, settings and trace.
    let a = attempts
        .iter()
        .find(|a| a.question == ids["needs"] && a.arm == Arm::Tools && a.seed == 3)
        .unwrap();
    assert_eq!((a.verdict, a.steps), (Verdict::Correct, 1));
    assert_eq!(a.answer.as_deref(), Some("seven"));
    assert!(a.model.contains("rule-model"), "{}", a.model);
    assert_eq!(a.prompt_sha256.len(), 64);
    let settings: Value = serde_json::from_str(&a.settings).unwrap();
    assert_eq!(settings["temperature"], 1.0);
    let trace: thyme_studio::trace::Trace = serde_json::from_str(
        &store
            .trace(&a.settings_key, a.question, a.arm, a.seed)
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(trace.run.decoding["seed"], 3);
    assert_eq!(trace.run.targets, vec![TARGET]);

    // The same check again makes only the failed tries again.
    let before: usize = served.lock().unwrap().values().sum();
    let again = curate(dir.path(), &project, port, &["--json"])
        .output()
        .unwrap();
    assert!(again.status.success());
    let again_err = String::from_utf8_lossy(&again.stderr);
    assert!(again_err.contains("32 reused"), "{again_err}");
    let made: usize = served.lock().unwrap().values().sum::<usize>() - before;
    let down_made: usize = served
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.0 == "down")
        .map(|(_, n)| n)
        .sum();
    assert!(
        made > 0 && made <= down_made,
        "{made} requests for reused tries"
    );
    let report: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["summary"]["flags"]["needs-tools"], 2);
    assert_eq!(report["summary"]["flags"]["too-easy"], 1);
    assert_eq!(report["summary"]["flags"]["suspect"], 1);
    assert_eq!(report["summary"]["flags"]["flaky"], 1);

    // What the app reads: every flag on the image, each question's rates; nothing written.
    let shown = thyme_studio::curate::project_flags(&project, &Thresholds::default()).unwrap();
    let image = SqliteStore::open(&project).unwrap().images().unwrap()[0]
        .id
        .clone();
    assert_eq!(
        shown.images[&image].iter().copied().collect::<Vec<_>>(),
        Flag::ALL.to_vec()
    );
    assert_eq!(shown.questions[&ids["needs"]].flags, vec![Flag::NeedsTools]);
    let fresh = dir.path().join("fresh.thyme");
    SqliteStore::create(&fresh).unwrap();
    let none = thyme_studio::curate::project_flags(&fresh, &Thresholds::default()).unwrap();
    assert!(none.questions.is_empty());
    assert!(
        AttemptStore::open_existing(&fresh).unwrap().is_none(),
        "reading the flags made the table"
    );

    // The export keeps only the flagged questions.
    let export = dir.path().join("needs.jsonl");
    let e = Process::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .arg("export")
        .arg(&project)
        .args([
            "--format",
            "thyme-rl",
            "--difficulty",
            "needs-tools",
            "--out",
        ])
        .arg(&export)
        .output()
        .unwrap();
    assert!(e.status.success(), "{e:?}");
    let rows = std::fs::read_to_string(&export).unwrap();
    let mut words: Vec<&str> = ["needs", "easy", "elsewhere", "coin", "down"]
        .into_iter()
        .filter(|w| rows.contains(&format!("Rule {w} :")))
        .collect();
    words.sort();
    assert_eq!(words, vec!["coin", "needs"]);

    // The runs open in Inspect as a trace file.
    let traces = dir.path().join("needs-traces.jsonl");
    let t = Process::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args(["curate", "traces"])
        .arg(&project)
        .arg("--out")
        .arg(&traces)
        .args(["--question", &ids["needs"].to_string(), "--arm", "tools"])
        .output()
        .unwrap();
    assert!(t.status.success(), "{t:?}");
    assert_eq!(std::fs::read_to_string(&traces).unwrap().lines().count(), 4);
}

#[test]
fn a_check_killed_midway_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (project, ids) = project(dir.path());
    let (port, served) = rule_server(Duration::from_millis(60));
    let mut child = curate(dir.path(), &project, port, &["--jobs", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once a few tries are stored.
    let start = std::time::Instant::now();
    let stored = || {
        AttemptStore::open(&project)
            .and_then(|s| s.list(None))
            .map_or(0, |v| v.len())
    };
    while stored() < 5 {
        assert!(start.elapsed().as_secs() < 120, "no try was stored");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = AttemptStore::open(&project).unwrap().list(None).unwrap();
    assert!(kept.len() >= 5 && kept.len() < 40, "{}", kept.len());
    let finished = kept.iter().filter(|a| a.verdict != Verdict::Failed).count();
    let log_before = served.lock().unwrap().clone();

    let out = curate(dir.path(), &project, port, &["--jobs", "4"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("{finished} reused")), "{stderr}");
    let all = AttemptStore::open(&project).unwrap().list(None).unwrap();
    assert_eq!(all.len(), 40);
    // What was stored before the kill is still there, unchanged, and was not asked again.
    let log = served.lock().unwrap();
    let word = |q: QuestionId| *ids.iter().find(|(_, id)| **id == q).unwrap().0;
    for a in kept.iter().filter(|a| a.verdict != Verdict::Failed) {
        assert!(all.contains(a), "{a:?} lost");
        let key = (word(a.question).to_owned(), a.arm.name(), a.seed);
        assert_eq!(log.get(&key), log_before.get(&key), "{key:?} asked again");
    }
    assert!(log.values().sum::<usize>() > log_before.values().sum::<usize>());
}

#[test]
fn the_tiny_local_model_drives_one_item_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let (project, ids) = project(dir.path());
    let model = dir.path().join("tiny");
    let made = Process::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args(["model", "tiny"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    // Only one item: a category of its own.
    let mut store = SqliteStore::open(&project).unwrap();
    let mut q = store
        .questions(&store.images().unwrap()[0].id)
        .unwrap()
        .into_iter()
        .find(|q| q.id == ids["needs"])
        .unwrap();
    let before = q.clone();
    q.category = "position".into();
    store
        .apply("annotator", Command::UpdateQuestion { before, after: q })
        .unwrap();
    let out = Process::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args(["curate", "run"])
        .arg(&project)
        .args(["--policy", "local", "--device", "cpu", "--k", "1"])
        .args(["--category", "position", "--max-tokens", "12", "--json"])
        .arg("--model-dir")
        .arg(&model)
        .arg("--runs")
        .arg(dir.path().join("runs"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let attempts = AttemptStore::open(&project).unwrap().list(None).unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    for a in &attempts {
        assert_eq!(a.question, ids["needs"]);
        // Random weights write no answer: counted as no answer, never as a failure.
        assert_ne!(a.verdict, Verdict::Failed, "{a:?}");
        assert!(a.model.contains("tiny"), "{}", a.model);
    }
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["items"], 1);
}
