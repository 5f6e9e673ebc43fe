//! Agent traces: one run of a code-as-tool visual agent (its images, question, ground truth,
//! outcome) and its steps (`generate`, `execute`, `answer`), versioned and documented in
//! docs/traces.md.
//!
//! Owns the schema, the folder and JSONL forms (`io`), the readers of foreign logs
//! (`readers`: Thyme SFT and RL, DeepEyes, Mini-o3, PyVision), where each crop came from
//! (`provenance`), and the flags a researcher looks for (`lint`).

pub mod audit;
pub mod io;
pub mod lint;
pub mod provenance;
pub mod pyliteral;
pub mod readers;
pub mod search;
pub mod stats;
pub mod table;
pub mod tags;
pub mod thyme_row;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The schema version this build writes.
pub const VERSION: u32 = 1;

/// One run and its steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub version: u32,
    /// Counts and flags, written before the run so a list of runs reads only the start of
    /// each line.
    #[serde(default)]
    pub summary: Option<Summary>,
    pub run: Run,
    pub steps: Vec<Step>,
}

/// What a run was about and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub id: String,
    /// Unix milliseconds, when known.
    #[serde(default)]
    pub created_ms: Option<i64>,
    #[serde(default)]
    pub model: Option<String>,
    /// The prompt profile's name.
    #[serde(default)]
    pub profile: Option<String>,
    /// The SHA-256 of the system prompt the run was made with (64 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt_sha256: Option<String>,
    /// Decoding settings (temperature, top_p, max tokens, ...), as given.
    #[serde(default)]
    pub decoding: BTreeMap<String, serde_json::Value>,
    pub question: String,
    #[serde(default)]
    pub ground_truth: Option<String>,
    #[serde(default)]
    pub outcome: Outcome,
    /// Where the run came from: "thyme-studio", "thyme-sft", "thyme-rl", "deepeyes",
    /// "deepeyes-v2", "mini-o3", "pyvision", "chain-of-focus", "pixel-reasoner", "verl".
    #[serde(default)]
    pub source_format: String,
    /// Reward columns of RL logs (FMTORM, VQAORM, CSTORM, ...).
    #[serde(default)]
    pub rewards: BTreeMap<String, f64>,
    /// The question's category, when the task named one (a batch row's `category`, as our
    /// thyme-rl export writes it); statistics group runs by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// The question's target boxes on the original, [x0, y0, x1, y1] in original pixels, when
    /// the task named them (a batch row's `bbox`, as our thyme-rl export writes it): statistics
    /// say whether a crop looked at one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<[f64; 4]>,
    /// A fork: the run it was forked from, and the step it forked at (0-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<ForkPoint>,
    /// The line of the log it was read from, for logs of one run per line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_line: Option<usize>,
    /// Why the log stops before the run's end (a table cell cut at its length limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_short: Option<String>,
    /// The input image(s); the first is "the original". Last, because embedded images are
    /// long and a list of runs stops reading before them.
    pub images: Vec<TraceImage>,
}

/// The first step where two runs differ (kind, model text, code, error, or the images made);
/// `None` when one run's steps are all the other's, in order, and as many.
pub fn first_divergence(a: &Trace, b: &Trace) -> Option<usize> {
    let same = |x: &Step, y: &Step| match (x, y) {
        (Step::Generate { text: p, .. }, Step::Generate { text: q, .. }) => p == q,
        (
            Step::Execute {
                raw_code: p,
                error: e,
                outputs: o,
                ..
            },
            Step::Execute {
                raw_code: q,
                error: f,
                outputs: r,
                ..
            },
        ) => {
            p == q
                && e.is_some() == f.is_some()
                && o.iter()
                    .map(|s| s.source_rect)
                    .eq(r.iter().map(|s| s.source_rect))
        }
        (Step::Answer { extracted: p, .. }, Step::Answer { extracted: q, .. }) => p == q,
        _ => false,
    };
    let common = a.steps.len().min(b.steps.len());
    (0..common)
        .find(|&i| !same(&a.steps[i], &b.steps[i]))
        .or((a.steps.len() != b.steps.len()).then_some(common))
}

/// Where a forked run left its parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkPoint {
    pub run: String,
    pub step: usize,
}

/// How a run ended.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered, and the answer matches the ground truth.
    Correct,
    /// Answered, and the answer does not match.
    Wrong,
    /// Answered, no ground truth to compare with.
    Answered,
    /// No answer.
    NoAnswer,
    #[default]
    Unknown,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Correct => "correct",
            Outcome::Wrong => "wrong",
            Outcome::Answered => "answered",
            Outcome::NoAnswer => "no answer",
            Outcome::Unknown => "unknown",
        }
    }

    /// From its name (`no_answer` or `no answer`).
    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Correct,
            Outcome::Wrong,
            Outcome::Answered,
            Outcome::NoAnswer,
            Outcome::Unknown,
        ]
        .into_iter()
        .find(|o| o.as_str() == s.replace('_', " "))
    }
}

/// An image of a trace: a file (relative to the trace's folder, or absolute) or, in JSONL
/// logs, a data URL.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceImage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// `data:image/...;base64,...`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

impl TraceImage {
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: Some(path.into()),
            ..Default::default()
        }
    }

    /// Whether the log kept this image's pixels: a path, or a data URL whose data begins
    /// with an image file's signature (PNG, JPEG, GIF, WebP, BMP, TIFF in base64). Some
    /// writers log placeholders instead: DeepEyes' evaluation `data:image/jpeg;base64,` with
    /// nothing after it, Chain-of-Focus' the text `base64_image`.
    pub fn has_pixels(&self) -> bool {
        const SIGNATURES: [&str; 7] = ["iVBOR", "/9j/", "R0lGOD", "UklGR", "Qk", "SUkq", "TU0A"];
        self.path.is_some()
            || self
                .data_url
                .as_deref()
                .and_then(|u| u.split_once(','))
                .is_some_and(|(_, data)| {
                    SIGNATURES.iter().any(|s| data.trim_start().starts_with(s))
                })
    }
}

/// How a crop's rectangle on the original was found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "method")]
pub enum Provenance {
    /// The sandbox recorded the crop call.
    Sandbox,
    /// Read from the code's crop boxes or slices.
    Code,
    /// Found by matching the output against the original (score: 0 bad .. 1 exact).
    TemplateMatch { score: f64 },
    /// Given by the log itself (a tool call's bounding box).
    Tool,
}

impl Provenance {
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::Sandbox => "sandbox",
            Provenance::Code => "code",
            Provenance::TemplateMatch { .. } => "template match",
            Provenance::Tool => "tool call",
        }
    }
}

/// An image a step produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepImage {
    pub image: TraceImage,
    /// Its rectangle on the original image, [x0, y0, x1, y1] in original pixels.
    #[serde(default)]
    pub source_rect: Option<[f64; 4]>,
    #[serde(default)]
    pub provenance: Option<Provenance>,
}

/// One automatic fix the sandbox made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    pub kind: String,
    pub detail: String,
}

/// One step of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// The model wrote text (reasoning, code, answer).
    Generate {
        text: String,
        /// The stop string that ended it (`</code>`, `</answer>`), or "length", "eos".
        #[serde(default)]
        stop: Option<String>,
        #[serde(default)]
        tokens: Option<u32>,
        #[serde(default)]
        ms: Option<f64>,
        #[serde(default)]
        sampling: BTreeMap<String, serde_json::Value>,
        /// Dropped and retried (the reference loop rolls back failed executions).
        #[serde(default)]
        rolled_back: bool,
    },
    /// The sandbox ran a code cell.
    Execute {
        raw_code: String,
        #[serde(default)]
        executed_code: String,
        #[serde(default)]
        fixes: Vec<Fix>,
        #[serde(default)]
        stdout: String,
        #[serde(default)]
        stderr: String,
        #[serde(default)]
        error: Option<String>,
        #[serde(default)]
        outputs: Vec<StepImage>,
        /// The result given back as text (no image).
        #[serde(default)]
        text_result: Option<String>,
        #[serde(default)]
        ms: Option<f64>,
        /// Its result went back to the model (false: rolled back).
        #[serde(default = "yes")]
        fed_back: bool,
        /// A person edited the cell before it ran ("what if"): the code the model wrote. The
        /// model's turn was rewritten to the code that ran, so what it reads next agrees with
        /// the output it sees.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        edited_from: Option<String>,
    },
    /// The final answer.
    Answer {
        text: String,
        #[serde(default)]
        extracted: Option<String>,
        #[serde(default)]
        matches_ground_truth: Option<bool>,
    },
}

fn yes() -> bool {
    true
}

impl Step {
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Generate { .. } => "generate",
            Step::Execute { .. } => "execute",
            Step::Answer { .. } => "answer",
        }
    }
}

/// What a list of runs shows without reading steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub steps: usize,
    pub executions: usize,
    /// Tools or libraries the code used ("crop", "resize", "cv2", "zoom_in", ...), sorted.
    pub tools: Vec<String>,
    /// Lint flag names, sorted.
    pub flags: Vec<String>,
    #[serde(default)]
    pub ms: Option<f64>,
    /// A fork's parent (copied from the run, so a list shows the tree without reading runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<ForkPoint>,
    /// The run's reward columns (RL logs), copied for filtering a list without reading runs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rewards: BTreeMap<String, f64>,
}

impl Trace {
    pub fn new(run: Run, steps: Vec<Step>) -> Self {
        let mut t = Self {
            version: VERSION,
            run,
            steps,
            summary: None,
        };
        t.finish();
        t
    }

    /// Fill in the answer's match and the outcome from the steps, then the summary.
    pub fn finish(&mut self) {
        let gt = self.run.ground_truth.clone();
        let mut answered = None;
        for step in &mut self.steps {
            if let Step::Answer {
                text,
                extracted,
                matches_ground_truth,
            } = step
            {
                if extracted.is_none() {
                    *extracted = Some(tags::extract_answer(text).unwrap_or(text).to_owned());
                }
                if let (Some(gt), Some(ex)) = (&gt, extracted.as_deref()) {
                    *matches_ground_truth = Some(tags::answers_match(ex, gt));
                }
                answered = Some(*matches_ground_truth);
            }
        }
        self.run.outcome = match answered {
            Some(Some(true)) => Outcome::Correct,
            Some(Some(false)) => Outcome::Wrong,
            Some(None) => Outcome::Answered,
            None => Outcome::NoAnswer,
        };
        self.summary = Some(lint::summarize(self));
    }

    /// Every crop rectangle on the original, with the index of the step it belongs to.
    pub fn crops(&self) -> Vec<(usize, [f64; 4])> {
        let mut out = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            if let Step::Execute { outputs, .. } = step {
                for o in outputs {
                    if let Some(r) = o.source_rect {
                        out.push((i, r));
                    }
                }
            }
        }
        out
    }
}
