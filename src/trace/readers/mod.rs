//! Readers of agent logs into [`Trace`]s: ours (a trace folder or a JSONL of traces), Thyme SFT
//! rows, Thyme RL `completions.jsonl`, DeepEyes trajectories, DeepEyesV2 prediction tables and
//! SFT data, Mini-o3 `traj.jsonl` folders,
//! Pixel Reasoner `conv.json` dumps, verl generation dumps and PyVision message lists. The shapes each reader accepts are in docs/traces.md. A line that
//! cannot be read is reported with its file and line number; the rest loads.

mod chain_of_focus;
mod deepeyes;
mod deepeyes_v2;
mod mini_o3;
mod pixel_reasoner;
mod pyvision;
mod thyme;
mod verl;

use chain_of_focus::chain_of_focus;
use deepeyes::deepeyes;
use deepeyes_v2::deepeyes_v2;
use mini_o3::read_mini_o3;
use pixel_reasoner::read_pixel_reasoner;
use pyvision::pyvision;
pub use thyme::thyme_steps;
use thyme::{push_text, thyme_rl, thyme_sft};
use verl::verl;

use super::thyme_row::{self, bare_question};
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
    DeepEyesV2,
    MiniO3,
    PyVision,
    ChainOfFocus,
    PixelReasoner,
    Verl,
}

impl LogFormat {
    pub const ALL: [LogFormat; 10] = [
        LogFormat::Ours,
        LogFormat::ThymeSft,
        LogFormat::ThymeRl,
        LogFormat::DeepEyes,
        LogFormat::DeepEyesV2,
        LogFormat::MiniO3,
        LogFormat::PyVision,
        LogFormat::ChainOfFocus,
        LogFormat::PixelReasoner,
        LogFormat::Verl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Ours => "thyme-studio",
            LogFormat::ThymeSft => "thyme-sft",
            LogFormat::ThymeRl => "thyme-rl",
            LogFormat::DeepEyes => "deepeyes",
            LogFormat::DeepEyesV2 => "deepeyes-v2",
            LogFormat::MiniO3 => "mini-o3",
            LogFormat::PyVision => "pyvision",
            LogFormat::ChainOfFocus => "chain-of-focus",
            LogFormat::PixelReasoner => "pixel-reasoner",
            LogFormat::Verl => "verl",
        }
    }

    pub fn parse(s: &str) -> Option<LogFormat> {
        LogFormat::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Tell the format from a path: a folder (ours with trace.json, Mini-o3 with traj.jsonl)
    /// or the first record of a file.
    pub fn detect(path: &Path) -> Result<LogFormat, TraceError> {
        Ok(Detection::of(path)?.format)
    }
}

/// How sure a detection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// A name or keys only this format has.
    Certain,
    /// Keys or tags other logs could share: `--format` overrides.
    Likely,
}

/// A detected format, how sure it is, and on what it rests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    pub format: LogFormat,
    pub confidence: Confidence,
    pub why: &'static str,
}

impl Detection {
    fn new(format: LogFormat, confidence: Confidence, why: &'static str) -> Self {
        Self {
            format,
            confidence,
            why,
        }
    }

    /// Detect the format of `path`: by its name, then by the keys and tags of its first
    /// record.
    pub fn of(path: &Path) -> Result<Detection, TraceError> {
        use Confidence::{Certain, Likely};
        let named = |n: &str| path.file_name().is_some_and(|f| f == n);
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
        {
            return Ok(Self::new(
                LogFormat::Ours,
                Certain,
                "a .zip of a trace folder",
            ));
        }
        if path.is_dir() && path.join("trace.json").is_file() || named("trace.json") {
            return Ok(Self::new(LogFormat::Ours, Certain, "a trace.json"));
        }
        if path.is_dir() && path.join("traj.jsonl").is_file() || named("traj.jsonl") {
            return Ok(Self::new(LogFormat::MiniO3, Certain, "a traj.jsonl"));
        }
        if path.is_dir() && mini_o3::is_save_dir(path) {
            return Ok(Self::new(
                LogFormat::MiniO3,
                Certain,
                "run folders with a traj.jsonl (Mini-o3's save_traj_dir)",
            ));
        }
        if path.is_dir() && path.join("conv.json").is_file() || named("conv.json") {
            return Ok(Self::new(
                LogFormat::PixelReasoner,
                Certain,
                "a conv.json (Pixel Reasoner's evaluation dump)",
            ));
        }
        if path.is_dir() && pixel_reasoner::is_dump_dir(path) {
            return Ok(Self::new(
                LogFormat::PixelReasoner,
                Certain,
                "question folders with a conv.json (Pixel Reasoner's dumps_iter folder)",
            ));
        }
        if super::table::is_table(path) {
            let rows = super::table::read_table(path).map_err(|e| TraceError::Format {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
            let has = |k: &str| rows.first().is_some_and(|r| r.contains_key(k));
            return if has("raw_response") && has("image_path_list") {
                Ok(Self::new(
                    LogFormat::DeepEyesV2,
                    Certain,
                    "a prediction table with raw_response and image_path_list columns (DeepEyesV2's VLMEvalKit, agent mode)",
                ))
            } else {
                Err(TraceError::Format {
                    path: path.to_owned(),
                    message: format!(
                        "a table, but not one of an agent's logs (its columns: {})",
                        rows.first()
                            .map(|r| r.keys().map(String::as_str).collect::<Vec<_>>().join(", "))
                            .unwrap_or_default()
                    ),
                })
            };
        }
        let file = std::fs::File::open(path).map_err(io_err(path))?;
        let mut first = String::new();
        std::io::BufReader::new(file)
            .read_line(&mut first)
            .map_err(io_err(path))?;
        let mut v: Value =
            serde_json::from_str(first.trim().trim_start_matches('[').trim_end_matches(','))
                .unwrap_or(Value::Null);
        // An indented document: its first record.
        if v.is_null()
            && let Some(doc) = whole_document(path)?
        {
            v = match doc {
                Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
                other => other,
            };
        }
        let first = if v.is_null() { first } else { v.to_string() };
        let has = |k: &str| v.get(k).is_some();
        let text = first.as_str();
        let found = if has("version") && has("run") && has("steps") {
            Some(Self::new(
                LogFormat::Ours,
                Certain,
                "version, run and steps keys",
            ))
        } else if has("doc_id") && has("rollouts") {
            Some(Self::new(
                LogFormat::MiniO3,
                Certain,
                "doc_id and rollouts keys (Mini-o3's stats.json)",
            ))
        } else if has("input") && has("output") && (has("score") || has("step")) {
            Some(Self::new(
                LogFormat::Verl,
                Likely,
                "input, output and score or step keys (verl's generation dump)",
            ))
        } else if has("completion") && has("prompt") {
            Some(Self::new(
                LogFormat::ThymeRl,
                Likely,
                "completion and prompt keys",
            ))
        } else if has("raw_response") && has("image_path_list") {
            Some(Self::new(
                LogFormat::DeepEyesV2,
                Certain,
                "raw_response and image_path_list keys (DeepEyesV2's VLMEvalKit predictions)",
            ))
        } else if text.contains("Code execution result:") {
            Some(Self::new(
                LogFormat::DeepEyesV2,
                Certain,
                "DeepEyesV2's \"Code execution result:\" template",
            ))
        } else if has("pred_output") && has("pred_ans") && text.contains(";base64,base64_image") {
            Some(Self::new(
                LogFormat::ChainOfFocus,
                Certain,
                "pred_output and pred_ans keys with images logged as the text base64_image (Chain-of-Focus' evaluation)",
            ))
        } else if has("pred_output") && has("pred_ans") {
            Some(Self::new(
                LogFormat::DeepEyes,
                Certain,
                "pred_output and pred_ans keys (DeepEyes' evaluation)",
            ))
        } else if has("messages") && has("image_paths") {
            Some(Self::new(
                LogFormat::PyVision,
                Certain,
                "messages and image_paths keys (PyVision's results file)",
            ))
        } else if has("response") && has("question") {
            Some(Self::new(
                LogFormat::ThymeSft,
                Likely,
                "response and question keys",
            ))
        } else if text.contains("image_zoom_in_tool") {
            Some(Self::new(
                LogFormat::DeepEyes,
                Certain,
                "DeepEyes' image_zoom_in_tool",
            ))
        } else if text.contains("<tool_call>") {
            Some(Self::new(
                LogFormat::DeepEyes,
                Likely,
                "a <tool_call> in the first record",
            ))
        } else if text.contains("<interpreter>") {
            Some(Self::new(
                LogFormat::PyVision,
                Likely,
                "an <interpreter> block in the first record",
            ))
        } else {
            None
        };
        found.ok_or_else(|| TraceError::Format {
            path: path.to_owned(),
            message: format!(
                "cannot tell the log format{}; name it with --format (thyme-studio, thyme-sft, thyme-rl, deepeyes, deepeyes-v2, mini-o3, pyvision, chain-of-focus, pixel-reasoner, verl)",
                match v.as_object() {
                    Some(o) => format!(
                        " (its first record has the keys {})",
                        o.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
                    ),
                    None => String::new(),
                }
            ),
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
        LogFormat::DeepEyesV2 if super::table::is_table(path) => per_row(path, deepeyes_v2)?,
        LogFormat::DeepEyesV2 => per_line(path, deepeyes_v2)?,
        LogFormat::PyVision => per_line(path, pyvision)?,
        LogFormat::ChainOfFocus => per_line(path, chain_of_focus)?,
        LogFormat::PixelReasoner => read_pixel_reasoner(path)?,
        LogFormat::Verl => per_line(path, verl)?,
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

/// Images the log names relative to its folder that are not there: looked for under `images`
/// instead (`--images DIR`, for logs written on another machine or beside a benchmark's
/// images). Returns how many were found there.
pub fn relocate_images(trace: &mut Trace, base: &Path, images: &Path) -> usize {
    let mut found = 0;
    let mut fix = |img: &mut TraceImage| {
        let Some(p) = &img.path else { return };
        if p.exists() {
            return;
        }
        let rel = p.strip_prefix(base).unwrap_or(p);
        let candidates = [
            images.join(rel),
            rel.file_name().map(|n| images.join(n)).unwrap_or_default(),
        ];
        if let Some(c) = candidates.into_iter().find(|c| c.is_file()) {
            img.path = Some(c);
            found += 1;
        }
    };
    trace.run.images.iter_mut().for_each(&mut fix);
    for s in &mut trace.steps {
        if let Step::Execute { outputs, .. } = s {
            outputs.iter_mut().for_each(|o| fix(&mut o.image));
        }
    }
    found
}

/// One trace per JSON line (a JSON array file works too: one element per line or all in one).
fn per_line(
    path: &Path,
    each: impl Fn(&Value, &Path) -> Result<Trace, String>,
) -> Result<Loaded, TraceError> {
    let base = path.parent().unwrap_or(Path::new(".")).to_owned();
    let mut loaded = Loaded::default();
    let record =
        |line: usize, row: Option<usize>, v: &Value, loaded: &mut Loaded| match each(v, &base) {
            Ok(t) => keep(t, path, &base, line, row, loaded),
            Err(message) => loaded.problems.push(Problem {
                file: path.to_owned(),
                line,
                message: match v.as_object() {
                    Some(o) if row.is_some() => format!(
                        "row {} of the line's table: {message} (its keys: {})",
                        row.unwrap_or_default() + 1,
                        o.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
                    ),
                    Some(o) => format!(
                        "{message} (its keys: {})",
                        o.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
                    ),
                    None => message,
                },
            }),
        };
    // A table of columns (ms-swift's JsonlWriter given a dict of lists, as the GRPO trainer
    // logs completions) is one record per row.
    let push = |line: usize, v: &Value, loaded: &mut Loaded| match column_rows(v) {
        Some(rows) => {
            for (k, row) in rows.iter().enumerate() {
                record(line, Some(k), row, loaded);
            }
        }
        None => record(line, None, v, loaded),
    };
    // A pretty-printed JSON document (PyVision's results file, `json.dump(..., indent=2)`):
    // one record per element of its array, numbered by element.
    if let Some(doc) = whole_document(path)? {
        let items = match doc {
            Value::Array(items) => items,
            one => vec![one],
        };
        for (i, item) in items.iter().enumerate() {
            push(i + 1, item, &mut loaded);
        }
        // Numbered by element, not by line of the file.
        for t in &mut loaded.traces {
            t.run.source_line = None;
        }
        return Ok(loaded);
    }
    let file = std::fs::File::open(path).map_err(io_err(path))?;
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

/// A trace read from `line` of `path` (row `row` of that line's table, when it holds one):
/// named by its place when the log names it not, its images found, and a problem noted when
/// the log stops before the run's end.
fn keep(
    mut t: Trace,
    path: &Path,
    base: &Path,
    line: usize,
    row: Option<usize>,
    loaded: &mut Loaded,
) {
    if t.run.id.is_empty() {
        t.run.id = format!(
            "{}:{line}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
    }
    if let Some(k) = row {
        t.run.id = format!("{}#{}", t.run.id, k + 1);
    }
    t.run.source_line = Some(line);
    resolve_images(&mut t, base);
    if let Some(why) = &t.run.cut_short {
        loaded.problems.push(Problem {
            file: path.to_owned(),
            line,
            message: why.clone(),
        });
    }
    loaded.traces.push(t);
}

/// One trace per row of a table (a spreadsheet, TSV or CSV); a row's line is its row in the
/// sheet (the header is row 1).
fn per_row(
    path: &Path,
    each: impl Fn(&Value, &Path) -> Result<Trace, String>,
) -> Result<Loaded, TraceError> {
    let base = path.parent().unwrap_or(Path::new(".")).to_owned();
    let rows = super::table::read_table(path).map_err(|e| TraceError::Format {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    let mut loaded = Loaded::default();
    for (k, row) in rows.iter().enumerate() {
        let line = k + 2;
        let v = Value::Object(
            row.iter()
                .map(|(c, t)| (c.clone(), Value::String(t.clone())))
                .collect(),
        );
        match each(&v, &base) {
            Ok(t) => keep(t, path, &base, line, None, &mut loaded),
            Err(message) => loaded.problems.push(Problem {
                file: path.to_owned(),
                line,
                message: format!("row {line}: {message}"),
            }),
        }
    }
    Ok(loaded)
}

/// The rows of a table written as columns: an object of two or more keys whose values are
/// all lists of plain values (strings, numbers, booleans, nulls) of one length.
fn column_rows(v: &Value) -> Option<Vec<Value>> {
    let cols = v.as_object()?;
    if cols.len() < 2 {
        return None;
    }
    let mut len = None;
    for col in cols.values() {
        let items = col.as_array()?;
        if items.is_empty()
            || len.is_some_and(|n| n != items.len())
            || items.iter().any(|x| x.is_array() || x.is_object())
        {
            return None;
        }
        len = Some(items.len());
    }
    let rows = (0..len?)
        .map(|i| {
            Value::Object(
                cols.iter()
                    .map(|(k, col)| (k.clone(), col[i].clone()))
                    .collect(),
            )
        })
        .collect();
    Some(rows)
}

/// The file as one JSON document, when its first line is not a whole record (a document
/// written with indentation); `None` for JSON lines.
fn whole_document(path: &Path) -> Result<Option<Value>, TraceError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut first = String::new();
    std::io::BufReader::new(file)
        .read_line(&mut first)
        .map_err(io_err(path))?;
    let t = first.trim().trim_end_matches(',');
    if t.is_empty()
        || serde_json::from_str::<Value>(t).is_ok()
        || !(t.starts_with('[') || t.starts_with('{'))
    {
        return Ok(None);
    }
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    Ok(serde_json::from_slice(&bytes).ok())
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
    for key in ["images", "image", "image_paths"] {
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

/// The messages of a record: `messages`, `conversations`, or the record itself as a list.
fn messages(v: &Value) -> Option<&Vec<Value>> {
    v.get("messages")
        .or_else(|| v.get("conversations"))
        .or_else(|| v.get("pred_output"))
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

/// What a tool call did, for [`tool_step`].
struct ToolCall {
    /// The call as the model wrote it.
    call: String,
    /// What ran: the call itself, or a code tool's `code`.
    ran: String,
    /// The tool's answer in words.
    answer: String,
    error: Option<String>,
    /// The answer as a text result, when the step's result is words rather than images.
    text_result: Option<String>,
}

/// A tool call's step: its answer, and the images it gave back, each placed at `rect` on the
/// original when the format's rule places it.
fn tool_step(t: ToolCall, images: Vec<TraceImage>, rect: Option<[f64; 4]>) -> Step {
    Step::Execute {
        raw_code: t.call,
        executed_code: t.ran,
        fixes: Vec::new(),
        stdout: t.answer,
        stderr: String::new(),
        error: t.error,
        text_result: t.text_result,
        outputs: images
            .into_iter()
            .map(|image| StepImage {
                image,
                source_rect: rect,
                provenance: rect.map(|_| Provenance::Tool),
            })
            .collect(),
        ms: None,
        fed_back: true,
        edited_from: None,
    }
}

/// A numeric box from a tool call's `bbox_2d`.
fn bbox(v: &Value) -> Option<[f64; 4]> {
    let a: Vec<f64> = v.as_array()?.iter().filter_map(Value::as_f64).collect();
    <[f64; 4]>::try_from(a).ok()
}
