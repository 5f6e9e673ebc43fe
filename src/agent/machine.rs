//! The step machine of Thyme's loop: generate a segment, stop at `</code>` or `</answer>`,
//! run the code in the sandbox, splice `<sandbox_output>` (images or text) into the same
//! assistant turn, continue; with the segment limit, the reference mode's rollback and
//! retries or the training-faithful mode's error feedback, the no-tool fallback, and the
//! evaluation or GRPO-ATS decoding. Every run is recorded as a trace, rolled-back segments
//! included. One call of [`Agent::step`] is one segment or one execution, so a UI can step,
//! show and edit between them.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::policy::{Origin, Policy, PolicyError, Request, Segment};
use super::profile::PromptProfile;
use crate::geometry::ImageSize;
use crate::sandbox::Sandbox;
use crate::trace::{self, Provenance, Run, Step, StepImage, Trace, TraceImage, tags};

/// What happens when code fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The reference loop: the failed segment is dropped and generated again.
    Reference,
    /// As in training: the `Sandbox for ...` error goes back to the model.
    TrainingFaithful,
}

/// How text is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoding {
    /// Near-greedy.
    Evaluation,
    /// GRPO-ATS: text at temperature 1.0 stopping at `<code>`, code at 0.0.
    GrpoAts,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub max_segments: usize,
    pub max_tokens: u32,
    pub max_retries: usize,
    pub mode: Mode,
    pub decoding: Decoding,
    /// With no answer at the end, ask once more without tools.
    pub fallback: bool,
    /// Sampled attempts (the difficulty check): every segment at this temperature and seed,
    /// in place of `decoding`'s temperatures.
    pub sampled: Option<Sampled>,
}

/// A seeded sampling temperature for repeated attempts at one question.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampled {
    pub temperature: f32,
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_segments: 5,
            max_tokens: 2048,
            max_retries: 5,
            mode: Mode::Reference,
            decoding: Decoding::Evaluation,
            fallback: true,
            sampled: None,
        }
    }
}

/// The question put to the model without tools: the original image alone, asked for a
/// direct answer (the fallback of a run that found none, and the difficulty check's no-tool
/// arm, which samples it at a temperature and seed).
pub fn no_tool_request(
    question: &str,
    image: &std::path::Path,
    max_tokens: u32,
    sampled: Option<Sampled>,
) -> Request {
    Request {
        system: String::new(),
        user: format!(
            "<image>\n{question}\nAnswer the question directly, without code, as <answer>...</answer>."
        ),
        images: vec![image.to_owned()],
        assistant: String::new(),
        stop: vec!["</answer>".into()],
        max_tokens,
        temperature: sampled.map_or(0.0, |s| s.temperature),
        seed: sampled.map(|s| s.seed),
    }
}

/// A sampled run's temperature and seed, for its recorded decoding settings.
pub(crate) fn sampled_entries(
    sampled: Option<Sampled>,
) -> impl Iterator<Item = (String, serde_json::Value)> {
    sampled.into_iter().flat_map(|s| {
        [
            ("temperature".to_owned(), serde_json::json!(s.temperature)),
            ("seed".to_owned(), serde_json::json!(s.seed)),
        ]
    })
}

/// Where a run stands.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// The model writes next.
    Generate,
    /// A code cell waits to run (it can be edited first).
    Execute { code: String },
    /// Finished (with the reason).
    Done { why: String },
}

/// What one step did.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Generated { text: String, stop: Option<String> },
    Executed { ok: bool, images: usize },
    RolledBack { retries: usize },
    Answered { answer: String },
    Finished { why: String },
}

/// What a run is asked to do.
#[derive(Debug, Clone)]
pub struct Task {
    pub image: PathBuf,
    /// The image's size in pixels (the user turn names it).
    pub size: ImageSize,
    pub question: String,
    pub ground_truth: Option<String>,
}

pub struct Agent {
    policy: Box<dyn Policy>,
    sandbox: Sandbox,
    profile: PromptProfile,
    pub settings: Settings,
    image: PathBuf,
    user: String,
    /// The assistant turn as the model sees it.
    turn: String,
    /// The text of the turn before the last segment (for rollback).
    turn_before: String,
    images: Vec<PathBuf>,
    pub state: State,
    segments: usize,
    retries: usize,
    /// GRPO-ATS: the text before `<code>` was just written; the code comes next, greedy.
    in_code: bool,
    /// The trace steps of the segment being written (rolled back together).
    current: Vec<usize>,
    trace: Trace,
    /// The model's own code of the pending cell, when a person has edited it.
    edited_from: Option<String>,
    /// Time spent in the policy and the sandbox (the rest is the loop's own overhead).
    pub model_ms: f64,
    pub sandbox_ms: f64,
}

impl Agent {
    pub fn new(
        policy: Box<dyn Policy>,
        sandbox: Sandbox,
        profile: PromptProfile,
        settings: Settings,
        task: Task,
    ) -> Self {
        let Task {
            image,
            size,
            question,
            ground_truth,
        } = task;
        let image = image.as_path();
        let question = question.as_str();
        let user = profile.user_turn(question, &image.to_string_lossy(), size);
        let run = Run {
            id: sandbox.run_id.clone(),
            created_ms: Some(crate::store::now_ms()),
            model: Some(policy.name()),
            profile: Some(profile.name.clone()),
            system_prompt_sha256: Some(profile.system_sha256()),
            decoding: [
                (
                    "mode".to_owned(),
                    serde_json::json!(format!("{:?}", settings.mode)),
                ),
                (
                    "decoding".to_owned(),
                    serde_json::json!(format!("{:?}", settings.decoding)),
                ),
                (
                    "max_segments".to_owned(),
                    serde_json::json!(settings.max_segments),
                ),
                (
                    "max_tokens".to_owned(),
                    serde_json::json!(settings.max_tokens),
                ),
            ]
            .into_iter()
            .chain(sampled_entries(settings.sampled))
            .collect(),
            images: vec![TraceImage {
                path: Some(image.to_owned()),
                width: Some(size.width),
                height: Some(size.height),
                ..Default::default()
            }],
            question: question.to_owned(),
            ground_truth,
            source_format: "thyme-studio".into(),
            ..Default::default()
        };
        Self {
            policy,
            sandbox,
            profile,
            settings,
            image: image.to_owned(),
            user,
            turn: String::new(),
            turn_before: String::new(),
            images: vec![image.to_owned()],
            state: State::Generate,
            segments: 0,
            retries: 0,
            in_code: false,
            current: Vec::new(),
            trace: Trace::new(run, Vec::new()),
            edited_from: None,
            model_ms: 0.0,
            sandbox_ms: 0.0,
        }
    }

    /// The assistant turn so far.
    pub fn turn(&self) -> &str {
        &self.turn
    }

    /// The run as recorded so far.
    pub fn trace(&self) -> Trace {
        let mut t = self.trace.clone();
        t.finish();
        t
    }

    pub fn run_dir(&self) -> &Path {
        self.sandbox.run_dir()
    }

    /// Replace the code waiting to run ("what if"). The model's turn is rewritten to the new
    /// code, so what it reads next agrees with the output it will see (the sandbox's own
    /// fixes stay out of the turn, as in Thyme); the step is recorded as edited by a person,
    /// with the model's code kept. False when no cell is waiting.
    pub fn edit_pending_code(&mut self, code: &str) -> bool {
        let State::Execute { code: pending } = &mut self.state else {
            return false;
        };
        if pending.trim() == code.trim() {
            return true;
        }
        let cell = &self.turn[self.turn_before.len()..];
        let Some(rewritten) = tags::replace_first_code(cell, code) else {
            return false;
        };
        self.edited_from
            .get_or_insert_with(|| std::mem::take(pending));
        *pending = tags::first_code(&rewritten).unwrap_or_else(|| code.to_owned());
        self.turn.truncate(self.turn_before.len());
        self.turn.push_str(&rewritten);
        // Edited back to what the model wrote: no edit to record.
        if self.edited_from.as_deref().map(str::trim) == Some(pending.trim()) {
            self.edited_from = None;
        }
        true
    }

    fn request(&self) -> Request {
        let (stop, temperature) = match (self.settings.decoding, self.in_code) {
            (Decoding::Evaluation, _) => (self.profile.stop.clone(), 0.0),
            (Decoding::GrpoAts, false) => (vec!["<code>".to_owned(), "</answer>".to_owned()], 1.0),
            (Decoding::GrpoAts, true) => (vec!["</code>".to_owned()], 0.0),
        };
        let temperature = self.settings.sampled.map_or(temperature, |s| s.temperature);
        Request {
            system: self.profile.system.clone(),
            user: self.user.clone(),
            images: self.images.clone(),
            assistant: self.turn.clone(),
            stop,
            max_tokens: self.settings.max_tokens,
            temperature,
            seed: self.settings.sampled.map(|s| s.seed),
        }
    }

    /// One segment or one execution.
    pub fn step(&mut self, on_text: &mut dyn FnMut(&str), cancel: &AtomicBool) -> Event {
        match self.state.clone() {
            State::Done { why } => Event::Finished { why },
            State::Generate => self.generate(on_text, cancel),
            State::Execute { code } => self.execute(&code, cancel),
        }
    }

    /// Steps until the run is done; the events in order.
    pub fn run_to_end(&mut self, cancel: &AtomicBool) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            let e = self.step(&mut |_| {}, cancel);
            let done = matches!(e, Event::Finished { .. });
            events.push(e);
            if done || matches!(self.state, State::Done { .. }) {
                if !done && let State::Done { why } = &self.state {
                    events.push(Event::Finished { why: why.clone() });
                }
                return events;
            }
        }
    }

    fn finish(&mut self, why: impl Into<String>) -> Event {
        let why = why.into();
        self.state = State::Done { why: why.clone() };
        Event::Finished { why }
    }

    fn generate(&mut self, on_text: &mut dyn FnMut(&str), cancel: &AtomicBool) -> Event {
        if self.segments >= self.settings.max_segments {
            return self.fallback_or_finish(cancel, "the segment limit was reached");
        }
        let request = self.request();
        if !self.in_code {
            self.current.clear();
        }
        let started = Instant::now();
        let result = self.policy.generate(&request, on_text, cancel);
        self.model_ms += started.elapsed().as_secs_f64() * 1000.0;
        let seg = match result {
            Ok(s) => s,
            Err(PolicyError::Cancelled) => return self.finish("cancelled"),
            Err(e) => return self.fallback_or_finish(cancel, &e.to_string()),
        };
        self.record_generate(&seg, &request, false);
        // GRPO-ATS: the text stopped at <code>; the code itself comes next, greedy, and counts
        // as the same segment.
        if self.settings.decoding == Decoding::GrpoAts && seg.stop.as_deref() == Some("<code>") {
            self.turn_before = self.turn.clone();
            self.turn.push_str(&seg.text);
            self.in_code = true;
            return Event::Generated {
                text: seg.text,
                stop: seg.stop,
            };
        }
        if !self.in_code {
            self.turn_before = self.turn.clone();
        }
        self.in_code = false;
        self.turn.push_str(&seg.text);
        self.segments += 1;
        // The whole code cell may span the `<code>` segment and this one.
        let cell = &self.turn[self.turn_before.len()..];
        if let Some(answer) = tags::extract_answer(cell).map(str::to_owned) {
            self.trace.steps.push(Step::Answer {
                text: cell.to_owned(),
                extracted: Some(answer.clone()),
                matches_ground_truth: None,
            });
            self.state = State::Done {
                why: "answered".into(),
            };
            return Event::Answered { answer };
        }
        if let Some(code) = tags::first_code(cell) {
            self.state = State::Execute { code };
        }
        Event::Generated {
            text: seg.text,
            stop: seg.stop,
        }
    }

    fn record_generate(&mut self, seg: &Segment, request: &Request, rolled_back: bool) {
        self.current.push(self.trace.steps.len());
        self.trace.steps.push(Step::Generate {
            text: seg.text.clone(),
            stop: seg.stop.clone(),
            tokens: seg.tokens,
            ms: Some(seg.ms),
            sampling: [
                (
                    "temperature".to_owned(),
                    serde_json::json!(request.temperature),
                ),
                (
                    "max_tokens".to_owned(),
                    serde_json::json!(request.max_tokens),
                ),
            ]
            .into_iter()
            // Played back from a recording, or a person's text at a fork: not sampled now.
            .chain(match seg.origin {
                Origin::Written => None,
                Origin::Replayed => Some(("replayed".to_owned(), serde_json::json!(true))),
                Origin::EditedByAPerson => {
                    Some(("edited_by_a_person".to_owned(), serde_json::json!(true)))
                }
            })
            .collect(),
            rolled_back,
        });
    }

    /// Say in the trace that this run is a fork of `run` at `step`.
    pub fn set_forked_from(&mut self, run: &str, step: usize) {
        self.trace.run.forked_from = Some(trace::ForkPoint {
            run: run.to_owned(),
            step,
        });
    }

    fn execute(&mut self, code: &str, cancel: &AtomicBool) -> Event {
        let started = Instant::now();
        let r = self.sandbox.execute(code, &self.image, cancel);
        self.sandbox_ms += started.elapsed().as_secs_f64() * 1000.0;
        let ok = r.error.is_none();
        let outputs: Vec<StepImage> = r
            .images
            .iter()
            .map(|o| StepImage {
                image: TraceImage {
                    path: Some(o.path.clone()),
                    width: Some(o.width),
                    height: Some(o.height),
                    ..Default::default()
                },
                source_rect: o.source_rect,
                provenance: o.source_rect.map(|_| Provenance::Sandbox),
            })
            .collect();
        let feed_back = ok || self.settings.mode == Mode::TrainingFaithful;
        self.trace.steps.push(Step::Execute {
            raw_code: r.raw_code.clone(),
            executed_code: r.executed_code.clone(),
            fixes: r
                .fixes
                .iter()
                .map(|f| trace::Fix {
                    kind: f.kind.clone(),
                    detail: f.detail.clone(),
                })
                .collect(),
            stdout: r.stdout.clone(),
            stderr: r.stderr.clone(),
            error: r.error.clone(),
            outputs,
            text_result: r.text_result.clone(),
            ms: Some(r.timings.total_ms),
            fed_back: feed_back,
            edited_from: self.edited_from.take(),
        });
        if !feed_back {
            // Reference mode: drop the segment that wrote the failing code and try again.
            self.retries += 1;
            self.turn = self.turn_before.clone();
            self.segments = self.segments.saturating_sub(1);
            for &i in &self.current {
                if let Some(Step::Generate { rolled_back, .. }) = self.trace.steps.get_mut(i) {
                    *rolled_back = true;
                }
            }
            if self.retries > self.settings.max_retries {
                return self.fallback_or_finish(cancel, "too many failed executions");
            }
            self.state = State::Generate;
            return Event::RolledBack {
                retries: self.retries,
            };
        }
        let mut spliced = String::from("<sandbox_output>");
        match (&r.error, r.images.is_empty()) {
            (Some(e), _) => spliced.push_str(e),
            (None, false) => {
                for o in &r.images {
                    spliced.push_str("<image>");
                    self.images.push(o.path.clone());
                }
            }
            (None, true) => spliced.push_str(r.text_result.as_deref().unwrap_or("")),
        }
        spliced.push_str("</sandbox_output>");
        self.turn.push_str(&spliced);
        self.state = State::Generate;
        Event::Executed {
            ok,
            images: r.images.len(),
        }
    }

    /// No answer: the no-tool fallback (once), else the end.
    fn fallback_or_finish(&mut self, cancel: &AtomicBool, why: &str) -> Event {
        if !self.settings.fallback {
            return self.finish(why.to_owned());
        }
        self.settings.fallback = false;
        // A sampled run's fallback is sampled too (same temperature and seed).
        let request = no_tool_request(
            &self.trace.run.question,
            &self.image,
            self.settings.max_tokens,
            self.settings.sampled,
        );
        let started = Instant::now();
        let result = self.policy.generate(&request, &mut |_| {}, cancel);
        self.model_ms += started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(seg) => {
                self.record_generate(&seg, &request, false);
                match tags::extract_answer(&seg.text).map(str::to_owned) {
                    Some(answer) => {
                        self.trace.steps.push(Step::Answer {
                            text: seg.text.clone(),
                            extracted: Some(answer.clone()),
                            matches_ground_truth: None,
                        });
                        self.state = State::Done {
                            why: format!("answered by the no-tool fallback ({why})"),
                        };
                        Event::Answered { answer }
                    }
                    None => self.finish(format!("{why}; the fallback gave no answer either")),
                }
            }
            Err(e) => self.finish(format!("{why}; fallback: {e}")),
        }
    }

    /// End the run and hand back its trace (the sandbox's worker is closed).
    pub fn close(self) -> Trace {
        let mut t = self.trace;
        t.finish();
        self.sandbox.close();
        t
    }
}
