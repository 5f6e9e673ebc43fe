//! Policies: what writes the model's text. One trait for all of them: `Replay` (the model text
//! of a recorded or scripted run, played back while the sandbox really runs the code) and
//! `Manual` (a person types or edits the text). Network and on-device models join here.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("the {policy} policy has no more text to give")]
    Exhausted { policy: String },
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Failed(String),
}

/// What a policy is asked for: continue the open assistant turn.
#[derive(Debug, Clone)]
pub struct Request {
    pub system: String,
    /// The user turn (with `<image>` where the original goes).
    pub user: String,
    /// The original, then every image spliced into the assistant turn so far, in order.
    pub images: Vec<PathBuf>,
    /// The assistant turn so far (sandbox outputs spliced in, `<image>` where each image goes).
    pub assistant: String,
    pub stop: Vec<String>,
    pub max_tokens: u32,
    pub temperature: f32,
    /// The sampler's seed, when the run is one of several seeded attempts.
    pub seed: Option<u64>,
}

/// One piece of model text.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub text: String,
    /// The stop string it ended at (kept at the end of `text`), or None (end of text/length).
    pub stop: Option<String>,
    pub tokens: Option<u32>,
    pub ms: f64,
    /// Where the text came from (the trace says so when it is not the policy's own).
    pub origin: Origin,
}

/// Where a segment's text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// Written now by the policy.
    #[default]
    Written,
    /// Played back from a recording.
    Replayed,
    /// A person's text put in place of the recorded turn at a fork ("what if it had said").
    EditedByAPerson,
}

pub trait Policy: Send {
    /// A short name for traces and the UI ("replay (scripted)", "manual", ...).
    fn name(&self) -> String;
    /// Continue the assistant turn; `on_text` gets text as it arrives.
    fn generate(
        &mut self,
        request: &Request,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
    ) -> Result<Segment, PolicyError>;
}

/// Cut `text` at the first of the stop strings (keeping it), as a server would.
pub fn cut_at_stop(text: &str, stop: &[String]) -> (String, Option<String>) {
    let first = stop
        .iter()
        .filter_map(|s| text.find(s.as_str()).map(|at| (at + s.len(), s)))
        .min_by_key(|(end, _)| *end);
    match first {
        Some((end, s)) => (text[..end].to_owned(), Some(s.clone())),
        None => (text.to_owned(), None),
    }
}

/// Plays back model text: a scripted run's segments, or a recorded trace's generate steps.
/// The text is cut at the request's stop strings, so a script may hold a whole turn.
pub struct Replay {
    label: String,
    /// What is left to say.
    rest: String,
    origin: Origin,
}

impl Replay {
    /// `label` says where the text comes from ("scripted", a trace's model name).
    pub fn new(label: impl Into<String>, turn: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            rest: turn.into(),
            origin: Origin::Replayed,
        }
    }

    /// A person's text for the model's turn, played as if the model had written it; its
    /// segments are marked as edited by a person.
    pub fn by_a_person(turn: impl Into<String>) -> Self {
        Self {
            label: "edited by a person".into(),
            rest: turn.into(),
            origin: Origin::EditedByAPerson,
        }
    }

    /// The model text of a recorded trace's kept (not rolled back) generate steps; where a
    /// person edited a cell before it ran, the text carries the code that ran, as the model's
    /// turn did.
    pub fn from_trace(trace: &crate::trace::Trace) -> Self {
        use crate::trace::Step;
        let mut turn = String::new();
        for (i, s) in trace.steps.iter().enumerate() {
            let Step::Generate {
                text, rolled_back, ..
            } = s
            else {
                continue;
            };
            if *rolled_back {
                continue;
            }
            let edited = match trace.steps.get(i + 1) {
                Some(Step::Execute {
                    raw_code,
                    edited_from: Some(_),
                    ..
                }) => crate::trace::tags::replace_first_code(text, raw_code),
                _ => None,
            };
            turn.push_str(edited.as_deref().unwrap_or(text));
        }
        Self::new(
            trace.run.model.clone().unwrap_or_else(|| "recorded".into()),
            turn,
        )
    }
}

impl Policy for Replay {
    fn name(&self) -> String {
        format!("replay ({})", self.label)
    }

    fn generate(
        &mut self,
        request: &Request,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
    ) -> Result<Segment, PolicyError> {
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(PolicyError::Cancelled);
        }
        let started = Instant::now();
        // A replayed turn carries its old sandbox outputs: skip them, the sandbox runs anew.
        let rest = skip_output(&self.rest);
        if rest.trim().is_empty() {
            return Err(PolicyError::Exhausted {
                policy: self.name(),
            });
        }
        let (text, stop) = cut_at_stop(rest, &request.stop);
        self.rest = rest[text.len()..].to_owned();
        on_text(&text);
        Ok(Segment {
            tokens: Some(text.split_whitespace().count() as u32),
            text,
            stop,
            ms: started.elapsed().as_secs_f64() * 1000.0,
            origin: self.origin,
        })
    }
}

/// Text after a leading `<sandbox_output>...</sandbox_output>` (and whitespace).
fn skip_output(text: &str) -> &str {
    let t = text.trim_start();
    match t.strip_prefix("<sandbox_output>") {
        Some(after) => match after.find("</sandbox_output>") {
            Some(end) => &after[end + "</sandbox_output>".len()..],
            None => "",
        },
        None => text,
    }
}

/// A person writes the model's text: segments queued by the UI (or a test) are used in
/// order, each cut at the stop strings like model output.
#[derive(Clone, Default)]
pub struct Manual {
    queue: Arc<Mutex<VecDeque<String>>>,
}

impl Manual {
    pub fn new() -> Self {
        Self::default()
    }

    /// Give the next piece of text.
    pub fn push(&self, text: impl Into<String>) {
        if let Ok(mut q) = self.queue.lock() {
            q.push_back(text.into());
        }
    }

    pub fn pending(&self) -> usize {
        self.queue.lock().map(|q| q.len()).unwrap_or(0)
    }
}

impl Policy for Manual {
    fn name(&self) -> String {
        "manual".into()
    }

    fn generate(
        &mut self,
        request: &Request,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
    ) -> Result<Segment, PolicyError> {
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(PolicyError::Cancelled);
        }
        let next = self
            .queue
            .lock()
            .ok()
            .and_then(|mut q| q.pop_front())
            .ok_or_else(|| PolicyError::Exhausted {
                policy: "manual".into(),
            })?;
        let (text, stop) = cut_at_stop(&next, &request.stop);
        on_text(&text);
        Ok(Segment {
            tokens: None,
            text,
            stop,
            ms: 0.0,
            origin: Origin::Written,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(stop: &[&str]) -> Request {
        Request {
            system: String::new(),
            user: String::new(),
            images: vec![],
            assistant: String::new(),
            stop: stop.iter().map(|s| s.to_string()).collect(),
            max_tokens: 2048,
            temperature: 0.0,
            seed: None,
        }
    }

    #[test]
    fn replay_cuts_at_stops_and_skips_old_outputs() {
        let mut r = Replay::new(
            "scripted",
            "<think>a</think><code>x</code><sandbox_output>old</sandbox_output><think>b</think> <answer>4</answer>",
        );
        let req = request(&["</code>", "</answer>"]);
        let no = AtomicBool::new(false);
        let s1 = r.generate(&req, &mut |_| {}, &no).unwrap();
        assert_eq!(s1.text, "<think>a</think><code>x</code>");
        assert_eq!(s1.stop.as_deref(), Some("</code>"));
        let s2 = r.generate(&req, &mut |_| {}, &no).unwrap();
        assert_eq!(s2.text, "<think>b</think> <answer>4</answer>");
        assert!(matches!(
            r.generate(&req, &mut |_| {}, &no),
            Err(PolicyError::Exhausted { .. })
        ));
    }

    #[test]
    fn the_earliest_stop_wins() {
        let (t, s) = cut_at_stop(
            "a<code>b</code>c</answer>",
            &["</answer>".into(), "<code>".into()],
        );
        assert_eq!((t.as_str(), s.as_deref()), ("a<code>", Some("<code>")));
    }
}
