//! Readers of agent logs into [`Trace`]s: ours (a trace folder or a JSONL of traces), Thyme SFT
//! rows, Thyme RL `completions.jsonl`, DeepEyes trajectories, Mini-o3 `traj.jsonl` folders and
//! PyVision message lists. The shapes each reader accepts are in docs/traces.md. A line that
//! cannot be read is reported with its file and line number; the rest loads.

use super::thyme_row::bare_question;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::tags::{self, Piece};
use super::{Fix, Provenance, Run, Step, StepImage, Trace, TraceImage};

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TraceError + '_ {
    move |source| TraceError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A record that could not be read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based; 0 when the problem is the whole file.
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    Ours,
    ThymeSft,
    ThymeRl,
    DeepEyes,
    MiniO3,
    PyVision,
}

impl LogFormat {
    pub const ALL: [LogFormat; 6] = [
        LogFormat::Ours,
        LogFormat::ThymeSft,
        LogFormat::ThymeRl,
        LogFormat::DeepEyes,
        LogFormat::MiniO3,
        LogFormat::PyVision,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Ours => "thyme-studio",
            LogFormat::ThymeSft => "thyme-sft",
            LogFormat::ThymeRl => "thyme-rl",
            LogFormat::DeepEyes => "deepeyes",
            LogFormat::MiniO3 => "mini-o3",
            LogFormat::PyVision => "pyvision",
        }
    }

    pub fn parse(s: &str) -> Option<LogFormat> {
        LogFormat::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Tell the format from a path: a folder (ours with trace.json, Mini-o3 with traj.jsonl)
    /// or the first record of a file.
    pub fn detect(path: &Path) -> Result<LogFormat, TraceError> {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
        {
            return Ok(LogFormat::Ours);
        }
        if path.is_dir() {
            if path.join("trace.json").is_file() {
                return Ok(LogFormat::Ours);
            }
            if path.join("traj.jsonl").is_file() {
                return Ok(LogFormat::MiniO3);
            }
        }
        if path.file_name().is_some_and(|n| n == "trace.json") {
            return Ok(LogFormat::Ours);
        }
        if path.file_name().is_some_and(|n| n == "traj.jsonl") {
            return Ok(LogFormat::MiniO3);
        }
        let file = std::fs::File::open(path).map_err(io_err(path))?;
        let mut first = String::new();
        std::io::BufReader::new(file)
            .read_line(&mut first)
            .map_err(io_err(path))?;
        let v: Value =
            serde_json::from_str(first.trim().trim_start_matches('[').trim_end_matches(','))
                .unwrap_or(Value::Null);
        let has = |k: &str| v.get(k).is_some();
        let text = first.as_str();
        let found = if has("version") && has("run") && has("steps") {
            Some(LogFormat::Ours)
        } else if has("completion") && has("prompt") {
            Some(LogFormat::ThymeRl)
        } else if has("response") && has("question") {
            Some(LogFormat::ThymeSft)
        } else if text.contains("<tool_call>") || text.contains("image_zoom_in_tool") {
            Some(LogFormat::DeepEyes)
        } else if text.contains("<interpreter>") {
            Some(LogFormat::PyVision)
        } else {
            None
        };
        found.ok_or_else(|| TraceError::Format {
            path: path.to_owned(),
            message: "cannot tell the log format; name it with --format (thyme-studio, thyme-sft, thyme-rl, deepeyes, mini-o3, pyvision)".into(),
        })
    }
}

/// What a reader produced.
#[derive(Debug, Default)]
pub struct Loaded {
    pub traces: Vec<Trace>,
    pub problems: Vec<Problem>,
}

/// Read a log in `format`.
pub fn read(path: &Path, format: LogFormat) -> Result<Loaded, TraceError> {
    let mut loaded = match format {
        LogFormat::Ours => read_ours(path)?,
        LogFormat::MiniO3 => read_mini_o3(path)?,
        LogFormat::ThymeSft => per_line(path, thyme_sft)?,
        LogFormat::ThymeRl => per_line(path, thyme_rl)?,
        LogFormat::DeepEyes => per_line(path, deepeyes)?,
        LogFormat::PyVision => per_line(path, pyvision)?,
    };
    for t in &mut loaded.traces {
        if t.run.source_format.is_empty() {
            t.run.source_format = format.name().to_owned();
        }
    }
    Ok(loaded)
}

fn read_ours(path: &Path) -> Result<Loaded, TraceError> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
    {
        let dir = super::io::unpack_zip(path)?;
        return read_ours(&dir);
    }
    let file = if path.is_dir() {
        path.join("trace.json")
    } else {
        path.to_owned()
    };
    if file.file_name().is_some_and(|n| n == "trace.json") {
        let text = std::fs::read_to_string(&file).map_err(io_err(&file))?;
        let mut trace: Trace = serde_json::from_str(&text).map_err(|e| TraceError::Format {
            path: file.clone(),
            message: format!("not a trace: {e}"),
        })?;
        if trace.version > super::VERSION {
            return Err(TraceError::Format {
                path: file,
                message: format!(
                    "written by a newer thyme-studio (trace version {}; this build reads up to {})",
                    trace.version,
                    super::VERSION
                ),
            });
        }
        let base = file.parent().unwrap_or(Path::new("."));
        resolve_images(&mut trace, base);
        if trace.summary.is_none() {
            trace.finish();
        }
        return Ok(Loaded {
            traces: vec![trace],
            problems: vec![],
        });
    }
    per_line(path, |v, _| {
        serde_json::from_value::<Trace>(v.clone()).map_err(|e| format!("not a trace: {e}"))
    })
}

/// Make relative image paths absolute against the trace's folder.
pub fn resolve_images(trace: &mut Trace, base: &Path) {
    let fix = |img: &mut TraceImage| {
        if let Some(p) = &img.path
            && p.is_relative()
        {
            img.path = Some(base.join(p));
        }
    };
    trace.run.images.iter_mut().for_each(fix);
    for s in &mut trace.steps {
        if let Step::Execute { outputs, .. } = s {
            outputs.iter_mut().for_each(|o| fix(&mut o.image));
        }
    }
}

/// One trace per JSON line (a JSON array file works too: one element per line or all in one).
fn per_line(
    path: &Path,
    each: impl Fn(&Value, &Path) -> Result<Trace, String>,
) -> Result<Loaded, TraceError> {
    let base = path.parent().unwrap_or(Path::new(".")).to_owned();
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut loaded = Loaded::default();
    let push = |line: usize, v: &Value, loaded: &mut Loaded| match each(v, &base) {
        Ok(mut t) => {
            if t.run.id.is_empty() {
                t.run.id = format!(
                    "{}:{line}",
                    path.file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default()
                );
            }
            resolve_images(&mut t, &base);
            loaded.traces.push(t);
        }
        Err(message) => loaded.problems.push(Problem {
            file: path.to_owned(),
            line,
            message,
        }),
    };
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io_err(path))?;
        let t = line.trim().trim_end_matches(',');
        if t.is_empty() || t == "[" || t == "]" {
            continue;
        }
        match serde_json::from_str::<Value>(t) {
            // A list of messages is one conversation; a list of records is many.
            Ok(Value::Array(items))
                if !items
                    .iter()
                    .all(|x| x.get("role").is_some() || x.get("from").is_some()) =>
            {
                for item in &items {
                    push(i + 1, item, &mut loaded);
                }
            }
            Ok(v) => push(i + 1, &v, &mut loaded),
            Err(e) => loaded.problems.push(Problem {
                file: path.to_owned(),
                line: i + 1,
                message: format!("not JSON: {e}"),
            }),
        }
    }
    Ok(loaded)
}

fn str_field<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| v.get(*k).and_then(Value::as_str))
}

/// Image paths (or data URLs) of `images` / `image`, a string or a list.
fn image_list(v: &Value) -> Vec<TraceImage> {
    let one = |s: &str| {
        if s.starts_with("data:image") {
            TraceImage {
                data_url: Some(s.to_owned()),
                ..Default::default()
            }
        } else {
            TraceImage::at(s)
        }
    };
    for key in ["images", "image"] {
        match v.get(key) {
            Some(Value::String(s)) => return vec![one(s)],
            Some(Value::Array(a)) => {
                return a
                    .iter()
                    .filter_map(|x| {
                        x.as_str()
                            .or_else(|| x.get("path").and_then(Value::as_str))
                            .or_else(|| x.get("image").and_then(Value::as_str))
                    })
                    .map(one)
                    .collect();
            }
            _ => {}
        }
    }
    Vec::new()
}

/// Model text as a `generate` step, followed by an `answer` step when it holds `<answer>`.
fn push_text(steps: &mut Vec<Step>, text: String, stop: Option<String>) {
    let answer = text.contains("<answer>").then(|| text.clone());
    steps.push(Step::Generate {
        text,
        stop,
        tokens: None,
        ms: None,
        sampling: Default::default(),
        rolled_back: false,
    });
    if let Some(a) = answer {
        steps.push(Step::Answer {
            extracted: tags::extract_answer(&a).map(str::to_owned),
            text: a,
            matches_ground_truth: None,
        });
    }
}

/// Steps from an assistant turn in Thyme's format; `<image>` placeholders in outputs take
/// `images` in order.
pub fn thyme_steps(turn: &str, images: &mut dyn Iterator<Item = TraceImage>) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut pending_code: Option<String> = None;
    for piece in tags::split_turn(turn) {
        match piece {
            Piece::Text { text, stop } => {
                pending_code = tags::first_code(&text);
                push_text(&mut steps, text, stop);
            }
            Piece::Output { text, images: n } => {
                let outputs: Vec<StepImage> = images
                    .take(n)
                    .map(|image| StepImage {
                        image,
                        ..Default::default()
                    })
                    .collect();
                let code = pending_code.take().unwrap_or_default();
                let error = text.starts_with("Sandbox for").then(|| text.clone());
                steps.push(Step::Execute {
                    executed_code: code.clone(),
                    raw_code: code,
                    fixes: Vec::new(),
                    stdout: if error.is_some() {
                        String::new()
                    } else {
                        text.clone()
                    },
                    stderr: String::new(),
                    text_result: (n == 0 && error.is_none()).then_some(text),
                    error,
                    outputs,
                    ms: None,
                    fed_back: true,
                });
            }
        }
    }
    steps
}

fn thyme_sft(v: &Value, _base: &Path) -> Result<Trace, String> {
    let question = str_field(v, &["question", "prompt"]).ok_or("no question")?;
    let response = str_field(v, &["response", "answer_text"]).ok_or("no response")?;
    let mut images = image_list(v).into_iter();
    let original = images.next().ok_or("no image")?;
    let steps = thyme_steps(response, &mut images);
    let run = Run {
        id: str_field(v, &["id"]).unwrap_or("").to_owned(),
        images: vec![original],
        question: bare_question(question).to_owned(),
        ground_truth: str_field(v, &["answer", "ground_truth", "gt", "solution"])
            .map(|s| tags::unbox(s).to_owned()),
        ..Default::default()
    };
    Ok(Trace::new(run, steps))
}

/// The text of a message's content (a string, or a list of parts), and its image parts.
fn content(v: &Value) -> (String, Vec<TraceImage>) {
    match v {
        Value::String(s) => (s.clone(), Vec::new()),
        Value::Array(parts) => {
            let mut text = String::new();
            let mut images = Vec::new();
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        text.push_str(p.get("text").and_then(Value::as_str).unwrap_or(""))
                    }
                    Some("image") | Some("image_url") => {
                        let src = p
                            .get("image")
                            .and_then(Value::as_str)
                            .or_else(|| p.get("path").and_then(Value::as_str))
                            .or_else(|| p.pointer("/image_url/url").and_then(Value::as_str));
                        if let Some(s) = src {
                            images.push(if s.starts_with("data:") {
                                TraceImage {
                                    data_url: Some(s.to_owned()),
                                    ..Default::default()
                                }
                            } else {
                                TraceImage::at(s)
                            });
                        }
                        text.push_str("<image>");
                    }
                    _ => {}
                }
            }
            (text, images)
        }
        _ => (String::new(), Vec::new()),
    }
}

fn thyme_rl(v: &Value, _base: &Path) -> Result<Trace, String> {
    let completion = match v.get("completion") {
        Some(Value::String(s)) => s.clone(),
        Some(c @ Value::Array(_)) => {
            // A list of messages: the assistant's content.
            c.as_array()
                .into_iter()
                .flatten()
                .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
                .map(|m| content(m.get("content").unwrap_or(&Value::Null)).0)
                .collect::<Vec<_>>()
                .join("")
        }
        _ => return Err("no completion".into()),
    };
    let prompt = match v.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(msgs)) => msgs
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .map(|m| content(m.get("content").unwrap_or(&Value::Null)).0)
            .unwrap_or_default(),
        _ => return Err("no prompt".into()),
    };
    let mut images = image_list(v).into_iter();
    let original = images.next().unwrap_or_default();
    let steps = thyme_steps(&completion, &mut images);
    let mut rewards = std::collections::BTreeMap::new();
    if let Some(obj) = v.as_object() {
        for (k, x) in obj {
            let upper = k
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if let (true, Some(n)) = (upper || k.ends_with("_reward") || k == "reward", x.as_f64())
            {
                rewards.insert(k.clone(), n);
            }
        }
    }
    let run = Run {
        id: match v.get("step") {
            Some(s) => format!("step-{s}"),
            None => String::new(),
        },
        images: if original == TraceImage::default() {
            vec![]
        } else {
            vec![original]
        },
        question: bare_question(&prompt).to_owned(),
        ground_truth: str_field(v, &["solution", "answer", "ground_truth"])
            .map(|s| tags::unbox(s).to_owned()),
        rewards,
        ..Default::default()
    };
    Ok(Trace::new(run, steps))
}

/// The messages of a record: `messages`, `conversations`, or the record itself as a list.
fn messages(v: &Value) -> Option<&Vec<Value>> {
    v.get("messages")
        .or_else(|| v.get("conversations"))
        .and_then(Value::as_array)
        .or_else(|| v.as_array())
}

fn role(m: &Value) -> &str {
    m.get("role")
        .or_else(|| m.get("from"))
        .and_then(Value::as_str)
        .map(|r| match r {
            "human" => "user",
            "gpt" => "assistant",
            other => other,
        })
        .unwrap_or("")
}

/// A numeric box from a tool call's `bbox_2d`.
fn bbox(v: &Value) -> Option<[f64; 4]> {
    let a: Vec<f64> = v.as_array()?.iter().filter_map(Value::as_f64).collect();
    <[f64; 4]>::try_from(a).ok()
}

fn deepeyes(v: &Value, _base: &Path) -> Result<Trace, String> {
    let msgs = messages(v).ok_or("no messages")?;
    let mut run = Run {
        id: str_field(v, &["id", "uid"]).unwrap_or("").to_owned(),
        ground_truth: str_field(v, &["ground_truth", "answer", "solution"]).map(str::to_owned),
        ..Default::default()
    };
    let mut extra_images = image_list(v).into_iter();
    let mut steps = Vec::new();
    let mut pending: Option<(String, Option<[f64; 4]>)> = None;
    for m in msgs {
        let (text, images) = content(m.get("content").unwrap_or(&Value::Null));
        match role(m) {
            "user" if run.question.is_empty() => {
                run.question = bare_question(&text.replace("<image>", "")).to_owned();
                run.images = if images.is_empty() {
                    extra_images.next().into_iter().collect()
                } else {
                    images
                };
            }
            "user" | "tool" => {
                // An observation: the tool's result.
                let (code, rect) = pending.take().unwrap_or_default();
                let n = text.matches("<image>").count().max(images.len());
                let mut imgs: Vec<TraceImage> = images;
                while imgs.len() < n {
                    match extra_images.next() {
                        Some(i) => imgs.push(i),
                        None => break,
                    }
                }
                let observation = tags::between(&text, "<tool_response>", "</tool_response>")
                    .unwrap_or(&text)
                    .replace("<image>", "")
                    .trim()
                    .to_owned();
                steps.push(Step::Execute {
                    executed_code: code.clone(),
                    raw_code: code,
                    fixes: Vec::new(),
                    stdout: observation.clone(),
                    stderr: String::new(),
                    error: None,
                    text_result: imgs.is_empty().then_some(observation),
                    outputs: imgs
                        .into_iter()
                        .map(|image| StepImage {
                            image,
                            source_rect: rect,
                            provenance: rect.map(|_| Provenance::Tool),
                        })
                        .collect(),
                    ms: None,
                    fed_back: true,
                });
            }
            "assistant" => {
                if let Some(call) = tags::between(&text, "<tool_call>", "</tool_call>") {
                    let parsed: Value = serde_json::from_str(call.trim()).unwrap_or(Value::Null);
                    let rect = parsed.pointer("/arguments/bbox_2d").and_then(bbox);
                    pending = Some((call.trim().to_owned(), rect));
                }
                let stop = if text.contains("</tool_call>") {
                    Some("</tool_call>".into())
                } else {
                    text.contains("<answer>").then(|| "</answer>".into())
                };
                push_text(&mut steps, text, stop);
            }
            _ => {}
        }
    }
    if steps.is_empty() {
        return Err("no assistant turns".into());
    }
    Ok(Trace::new(run, steps))
}

fn pyvision(v: &Value, _base: &Path) -> Result<Trace, String> {
    let msgs = messages(v).ok_or("no messages")?;
    let mut run = Run {
        id: str_field(v, &["id"]).unwrap_or("").to_owned(),
        ground_truth: str_field(v, &["ground_truth", "answer", "solution"]).map(str::to_owned),
        ..Default::default()
    };
    let mut steps = Vec::new();
    let mut pending: Option<String> = None;
    for m in msgs {
        let (text, images) = content(m.get("content").unwrap_or(&Value::Null));
        match role(m) {
            "user" if run.question.is_empty() => {
                run.question = text.replace("<image>", "").trim().to_owned();
                run.images = images;
            }
            "user" => {
                if let Some(result) = tags::between(&text, "<interpreter>", "</interpreter>") {
                    let code = pending.take().unwrap_or_default();
                    let result = result.replace("<image>", "").trim().to_owned();
                    let error = (result.contains("Traceback") || result.contains("Error:"))
                        .then(|| result.clone());
                    steps.push(Step::Execute {
                        executed_code: code.clone(),
                        raw_code: code,
                        fixes: Vec::new(),
                        stdout: result.clone(),
                        stderr: String::new(),
                        text_result: images.is_empty().then_some(result),
                        error,
                        outputs: images
                            .into_iter()
                            .map(|image| StepImage {
                                image,
                                ..Default::default()
                            })
                            .collect(),
                        ms: None,
                        fed_back: true,
                    });
                }
            }
            "assistant" => {
                pending = tags::first_code(&text).or_else(|| {
                    tags::between(&text, "```python", "```")
                        .map(|c| c.trim_matches('\n').to_owned() + "\n")
                });
                push_text(&mut steps, text, None);
            }
            _ => {}
        }
    }
    if steps.is_empty() {
        return Err("no assistant turns".into());
    }
    Ok(Trace::new(run, steps))
}

/// Mini-o3: a folder with `traj.jsonl` (one message per line) and `observation_{i}_*.jpg`.
fn read_mini_o3(path: &Path) -> Result<Loaded, TraceError> {
    let dir = if path.is_dir() {
        path.to_owned()
    } else {
        path.parent().unwrap_or(Path::new(".")).to_owned()
    };
    let traj = dir.join("traj.jsonl");
    let mut loaded = Loaded::default();
    let mut msgs = Vec::new();
    let file = std::fs::File::open(&traj).map_err(io_err(&traj))?;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io_err(&traj))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(v) => msgs.push(v),
            Err(e) => loaded.problems.push(Problem {
                file: traj.clone(),
                line: i + 1,
                message: format!("not JSON: {e}"),
            }),
        }
    }
    // observation_{i}_*.jpg, by i.
    let mut observations: Vec<(usize, PathBuf)> = std::fs::read_dir(&dir)
        .map_err(io_err(&dir))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name
                .strip_prefix("observation_")?
                .split(['_', '.'])
                .next()?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    observations.sort();
    let mut run = Run {
        id: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ..Default::default()
    };
    let mut steps = Vec::new();
    let mut next_obs = observations.into_iter();
    // Rectangles of the original and each observation, to place boxes given on observations.
    let mut rect_of: Vec<Option<[f64; 4]>> = Vec::new();
    let original_size = |run: &Run| -> Option<(f64, f64)> {
        let p = run.images.first()?.path.as_ref()?;
        let probe = crate::imagery::probe_file(p, crate::imagery::PixelBudget::DEFAULT).ok()?;
        Some((f64::from(probe.size.width), f64::from(probe.size.height)))
    };
    for m in &msgs {
        let (text, images) = content(m.get("content").unwrap_or(&Value::Null));
        match role(m) {
            "user" if run.question.is_empty() => {
                run.question = text.replace("<image>", "").trim().to_owned();
                run.images = images
                    .into_iter()
                    .map(|mut i| {
                        if let Some(p) = &i.path
                            && p.is_relative()
                        {
                            i.path = Some(dir.join(p));
                        }
                        i
                    })
                    .collect();
            }
            "assistant" => {
                steps.push(Step::Generate {
                    stop: None,
                    text: text.clone(),
                    tokens: None,
                    ms: None,
                    sampling: Default::default(),
                    rolled_back: false,
                });
                if let Some(call) = tags::between(&text, "<grounding>", "</grounding>") {
                    let parsed: Value = serde_json::from_str(call.trim()).unwrap_or(Value::Null);
                    let b = parsed.get("bbox_2d").and_then(bbox);
                    let source = parsed
                        .get("source")
                        .and_then(Value::as_str)
                        .unwrap_or("original_image");
                    // The rectangle the box is relative to (normalised boxes: 0..1 of it).
                    let frame = if source == "original_image" {
                        original_size(&run).map(|(w, h)| [0.0, 0.0, w, h])
                    } else {
                        source
                            .strip_prefix("observation_")
                            .and_then(|n| n.parse::<usize>().ok())
                            .and_then(|n| rect_of.get(n.saturating_sub(1)).copied().flatten())
                    };
                    let rect = match (b, frame) {
                        (Some(b), Some(f)) if b.iter().all(|x| *x <= 1.0) => {
                            let (w, h) = (f[2] - f[0], f[3] - f[1]);
                            Some([
                                f[0] + b[0] * w,
                                f[1] + b[1] * h,
                                f[0] + b[2] * w,
                                f[1] + b[3] * h,
                            ])
                        }
                        (Some(b), Some(f)) => {
                            Some([f[0] + b[0], f[1] + b[1], f[0] + b[2], f[1] + b[3]])
                        }
                        _ => None,
                    };
                    let obs = next_obs.next().map(|(_, p)| TraceImage::at(p));
                    rect_of.push(rect);
                    steps.push(Step::Execute {
                        raw_code: call.trim().to_owned(),
                        executed_code: call.trim().to_owned(),
                        fixes: Vec::<Fix>::new(),
                        stdout: String::new(),
                        stderr: String::new(),
                        error: obs
                            .is_none()
                            .then(|| "no observation image for this call".to_owned()),
                        text_result: None,
                        outputs: obs
                            .into_iter()
                            .map(|image| StepImage {
                                image,
                                source_rect: rect,
                                provenance: rect.map(|_| Provenance::Tool),
                            })
                            .collect(),
                        ms: None,
                        fed_back: true,
                    });
                }
                if text.contains("<answer>") {
                    steps.push(Step::Answer {
                        extracted: tags::extract_answer(&text).map(str::to_owned),
                        text,
                        matches_ground_truth: None,
                    });
                }
            }
            _ => {}
        }
    }
    if steps.is_empty() {
        loaded.problems.push(Problem {
            file: traj,
            line: 0,
            message: "no assistant turns".into(),
        });
    } else {
        loaded.traces.push(Trace::new(run, steps));
    }
    Ok(loaded)
}
