//! Mini-o3: the trajectories its rollout saves (`save_traj=True`, `save_traj_dir=DIR`: the vLLM
//! rollout's `save_traj_and_obs`). One folder per rollout, `DIR/{doc_id}` (`{doc_id}_{k}` when
//! an item is sampled more than once), holding:
//! - `traj.jsonl`: first `{doc_id, initial_prompt, ground_truth}` (the prompt as chat
//!   messages), then one `{turn_idx, text_output}` per model turn;
//! - `original_image.jpg` and `resized_image.jpg` (what the model saw);
//! - for each zoom that worked, `observation_{t}_original_image.jpg` (the crop at the source's
//!   own resolution) and `observation_{t}_resized_image.jpg`, t = the calling turn + 1.
//!
//! and, after a validation pass, `DIR/stats.json` (indented: per item its `doc_id`, `input`,
//! `ground_truth` and `rollouts` with `score`, `format_reward` and `acc_reward`), whose rewards
//! go onto the runs. A `<grounding>{"bbox_2d": [...], "source": ...}</grounding>` box is on the
//! original (`original_image`) or on an earlier crop (`observation_i`): in 0-1 of that image,
//! or in pixels of the size the model saw it at; the rollout scales it to the source's pixels,
//! cuts it to whole pixels and clamps it inside. Folders of chat messages (one `role`/`content`
//! per line) are read too.

use std::collections::BTreeMap;

use super::*;

/// A run folder, its `traj.jsonl`, or the save folder above many run folders (or its
/// `stats.json`).
pub(super) fn read_mini_o3(path: &Path) -> Result<Loaded, TraceError> {
    let dir = if path.is_dir() {
        path.to_owned()
    } else {
        path.parent().unwrap_or(Path::new(".")).to_owned()
    };
    if dir.join("traj.jsonl").is_file() {
        let mut loaded = Loaded::default();
        read_run(&dir, None, &mut loaded)?;
        return Ok(loaded);
    }
    let mut loaded = Loaded::default();
    let rewards = stats_rewards(&dir.join("stats.json"), &mut loaded.problems)?;
    let mut runs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(io_err(&dir))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("traj.jsonl").is_file())
        .collect();
    runs.sort();
    if runs.is_empty() {
        return Err(TraceError::Format {
            path: dir,
            message: "no Mini-o3 run folder here (none holds a traj.jsonl)".into(),
        });
    }
    for run in runs {
        let name = run
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        read_run(&run, rewards.get(&name), &mut loaded)?;
    }
    Ok(loaded)
}

/// Whether `dir` is a Mini-o3 save folder: run folders with a `traj.jsonl` in it.
pub(super) fn is_save_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().join("traj.jsonl").is_file())
    })
}

/// The rewards `stats.json` gives each run folder: rollout k of item `doc_id` is the folder
/// `{doc_id}_{k}`, or `{doc_id}` when the item was sampled once.
fn stats_rewards(
    path: &Path,
    problems: &mut Vec<Problem>,
) -> Result<BTreeMap<String, BTreeMap<String, f64>>, TraceError> {
    let mut out = BTreeMap::new();
    if !path.is_file() {
        return Ok(out);
    }
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let items = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Array(items)) => items,
        Ok(_) => Vec::new(),
        Err(e) => {
            problems.push(Problem {
                file: path.to_owned(),
                line: e.line(),
                message: format!("not JSON ({e}); the runs load without its rewards"),
            });
            return Ok(out);
        }
    };
    for item in &items {
        let doc = match item.get("doc_id") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => continue,
        };
        let rollouts = item
            .get("rollouts")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (k, r) in rollouts.iter().enumerate() {
            let rewards: BTreeMap<String, f64> = ["score", "format_reward", "acc_reward"]
                .iter()
                .filter_map(|key| Some(((*key).to_owned(), r.get(*key)?.as_f64()?)))
                .collect();
            let folder = if rollouts.len() == 1 {
                doc.clone()
            } else {
                format!("{doc}_{k}")
            };
            out.insert(folder, rewards);
        }
    }
    Ok(out)
}

/// One line of `traj.jsonl`, as the rollout writes it (or a chat message).
enum Line {
    Prompt {
        messages: Value,
        ground_truth: Option<String>,
    },
    Turn(String),
    User(Value),
}

fn read_lines(traj: &Path, problems: &mut Vec<Problem>) -> Result<Vec<Line>, TraceError> {
    let file = std::fs::File::open(traj).map_err(io_err(traj))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io_err(traj))?;
        if line.trim().is_empty() {
            continue;
        }
        let mut problem = |message: String| {
            problems.push(Problem {
                file: traj.to_owned(),
                line: i + 1,
                message,
            })
        };
        let v = match serde_json::from_str::<Value>(&line) {
            Ok(v) => v,
            Err(e) => {
                problem(format!("not JSON: {e}"));
                continue;
            }
        };
        if let Some(text) = v.get("text_output").and_then(Value::as_str) {
            out.push(Line::Turn(text.to_owned()));
        } else if let Some(messages) = v.get("initial_prompt") {
            out.push(Line::Prompt {
                messages: messages.clone(),
                ground_truth: match v.get("ground_truth") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Null) | None => None,
                    Some(other) => Some(other.to_string()),
                },
            });
        } else if role(&v) == "assistant" {
            out.push(Line::Turn(
                content(v.get("content").unwrap_or(&Value::Null)).0,
            ));
        } else if role(&v) == "user" {
            out.push(Line::User(v));
        } else if role(&v).is_empty() {
            problem(match v.as_object() {
                Some(o) => format!(
                    "not a Mini-o3 trajectory line (its keys: {})",
                    o.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
                ),
                None => "not a Mini-o3 trajectory line".into(),
            });
        }
    }
    Ok(out)
}

/// The first file in `dir` named `{prefix}*` by name order, preferring `preferred` names.
fn file_named(dir: &Path, preferred: &[String], prefix: &str, avoid: &str) -> Option<PathBuf> {
    if let Some(p) = preferred.iter().map(|n| dir.join(n)).find(|p| p.is_file()) {
        return Some(p);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name.starts_with(prefix) && !name.contains(avoid)).then(|| e.path())
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

fn size_of(path: Option<&Path>) -> Option<(f64, f64)> {
    let probe = crate::imagery::probe_file(path?, crate::imagery::PixelBudget::DEFAULT).ok()?;
    Some((f64::from(probe.size.width), f64::from(probe.size.height)))
}

/// An image's rectangle on the original (its pixels are the original's, 1:1) and the size the
/// model saw it at.
type Frame = ([f64; 4], Option<(f64, f64)>);

/// A zoom of turn `turn` (0-based): its observation files and its box on the original.
fn zoom(dir: &Path, call: &str, turn: usize, frames: &[Option<Frame>]) -> Step {
    let parsed: Value = serde_json::from_str(call.trim()).unwrap_or(Value::Null);
    let b = parsed.get("bbox_2d").and_then(bbox);
    let source = parsed
        .get("source")
        .and_then(Value::as_str)
        .unwrap_or("original_image");
    let index = if source == "original_image" {
        Some(0)
    } else {
        source
            .strip_prefix("observation_")
            .and_then(|n| n.parse::<usize>().ok())
    };
    // The source's rectangle on the original (its pixels are the original's, 1:1) and the
    // size the model saw it at.
    let frame = index.and_then(|i| frames.get(i).copied().flatten());
    let rect = match (b, frame) {
        (Some(b), Some((f, seen))) => {
            let (w, h) = (f[2] - f[0], f[3] - f[1]);
            let scaled = if b.iter().all(|x| (0.0..=1.0).contains(x)) {
                [b[0] * w, b[1] * h, b[2] * w, b[3] * h]
            } else {
                let (sx, sy) = seen.map_or((1.0, 1.0), |(sw, sh)| (w / sw, h / sh));
                [b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy]
            };
            let px = [
                scaled[0].trunc().max(0.0),
                scaled[1].trunc().max(0.0),
                scaled[2].trunc().min(w - 1.0),
                scaled[3].trunc().min(h - 1.0),
            ];
            (px[2] > px[0] && px[3] > px[1])
                .then(|| [f[0] + px[0], f[1] + px[1], f[0] + px[2], f[1] + px[3]])
        }
        _ => None,
    };
    let n = turn + 1;
    let observation = file_named(
        dir,
        &[
            format!("observation_{n}_original_image.jpg"),
            format!("observation_{n}_original_image.png"),
        ],
        &format!("observation_{n}_"),
        "_resized_image",
    );
    let error = match (&observation, index, b) {
        (Some(_), _, _) => None,
        (None, None, _) => Some(format!("the source '{source}' names no image")),
        (None, _, None) => Some("the box is not four numbers".to_owned()),
        (None, _, _) => Some(
            "the rollout saved no observation for this call (the zoom failed, or the turn limit was reached)"
                .to_owned(),
        ),
    };
    tool_step(
        ToolCall {
            call: call.trim().to_owned(),
            ran: call.trim().to_owned(),
            answer: String::new(),
            error,
            text_result: None,
        },
        observation.into_iter().map(TraceImage::at).collect(),
        rect,
    )
}

/// One run folder into `loaded`.
fn read_run(
    dir: &Path,
    rewards: Option<&BTreeMap<String, f64>>,
    loaded: &mut Loaded,
) -> Result<(), TraceError> {
    let traj = dir.join("traj.jsonl");
    let lines = read_lines(&traj, &mut loaded.problems)?;
    let mut run = Run {
        id: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        rewards: rewards.cloned().unwrap_or_default(),
        ..Default::default()
    };
    let mut named_original: Option<PathBuf> = None;
    let take_user = |m: &Value, run: &mut Run, named: &mut Option<PathBuf>| {
        let (text, images) = content(m.get("content").unwrap_or(&Value::Null));
        if run.question.is_empty() {
            run.question = bare_question(&text.replace("<image>", "")).to_owned();
        }
        if named.is_none() {
            *named = images.into_iter().find_map(|i| i.path).map(|p| dir.join(p));
        }
    };
    let mut turns = Vec::new();
    for line in lines {
        match line {
            Line::Prompt {
                messages,
                ground_truth,
            } => {
                run.ground_truth = ground_truth;
                let msgs = messages.as_array().map(Vec::as_slice).unwrap_or_default();
                for m in msgs.iter().filter(|m| role(m) == "user").take(1) {
                    take_user(m, &mut run, &mut named_original);
                }
                if let Some(s) = messages.as_str() {
                    run.question = bare_question(&s.replace("<image>", "")).to_owned();
                }
            }
            Line::User(m) => take_user(&m, &mut run, &mut named_original),
            Line::Turn(text) => turns.push(text),
        }
    }
    let original = named_original.or_else(|| {
        file_named(
            dir,
            &["original_image.jpg".into(), "original_image.png".into()],
            "original_image",
            "\u{0}",
        )
    });
    let original_size = size_of(original.as_deref());
    let seen = size_of(
        file_named(
            dir,
            &["resized_image.jpg".into(), "resized_image.png".into()],
            "resized_image",
            "\u{0}",
        )
        .as_deref(),
    );
    run.images = original.into_iter().map(TraceImage::at).collect();
    // The rectangle on the original of the original and of each observation so far, with the
    // size the model saw each at.
    let mut frames: Vec<Option<Frame>> =
        vec![original_size.map(|(w, h)| ([0.0, 0.0, w, h], seen.or(Some((w, h)))))];
    let mut steps = Vec::new();
    for (turn, text) in turns.into_iter().enumerate() {
        let call = tags::between(&text, "<grounding>", "</grounding>").map(str::to_owned);
        let stop = call.is_some().then(|| "</grounding>".to_owned());
        push_text(&mut steps, text, stop);
        if let Some(call) = call {
            let step = zoom(dir, &call, turn, &frames);
            let n = turn + 1;
            let seen_obs = size_of(
                dir.join(format!("observation_{n}_resized_image.jpg"))
                    .is_file()
                    .then(|| dir.join(format!("observation_{n}_resized_image.jpg")))
                    .as_deref(),
            );
            let frame = match &step {
                Step::Execute { outputs, .. } => outputs
                    .first()
                    .and_then(|o| o.source_rect)
                    .map(|r| (r, seen_obs.or(Some((r[2] - r[0], r[3] - r[1]))))),
                _ => None,
            };
            // The rollout numbers observations by the zooms that worked (`observation_k`
            // is the k-th), while their files carry the turn.
            if frame.is_some() {
                frames.push(frame);
            }
            steps.push(step);
        }
    }
    if steps.is_empty() {
        loaded.problems.push(Problem {
            file: traj,
            line: 0,
            message: "no model turns".into(),
        });
    } else {
        loaded.traces.push(Trace::new(run, steps));
    }
    Ok(())
}
