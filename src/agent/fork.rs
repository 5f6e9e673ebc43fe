//! Forking a recorded run: its model text up to a chosen step is played back (the code of
//! those steps runs again, for real, so the sandbox's variables and images are as they were),
//! then another policy writes on: a chat server, the on-device model, or a person. A person
//! may also put their own text in place of the model's turn at the fork point ("what if it
//! had said this"): it is played as the model's text, marked as edited by a person, and the
//! policy writes on after it. The recorded run stays as it is; the fork is a new run that
//! names where it came from.

use std::sync::atomic::AtomicBool;

use super::policy::{Policy, PolicyError, Replay, Request, Segment};
use crate::trace::{Step, Trace};

/// Where a fork starts: a recorded run and the first of its steps not played back.
#[derive(Debug, Clone)]
pub struct ForkFrom {
    pub trace: Trace,
    /// Steps before this one are played back (`steps.len()` replays the whole run).
    pub at_step: usize,
    /// A person's text for the model's turn at the fork point, before the policy writes on.
    pub turn: Option<String>,
}

impl ForkFrom {
    /// The kept (not rolled back) model segments before the fork point.
    pub fn segments(&self) -> usize {
        self.trace
            .steps
            .iter()
            .take(self.at_step)
            .filter(|s| {
                matches!(
                    s,
                    Step::Generate {
                        rolled_back: false,
                        ..
                    }
                )
            })
            .count()
    }

    /// The model text played back: the kept segments before the fork point.
    fn replay(&self) -> Replay {
        let mut cut = self.trace.clone();
        cut.steps.truncate(self.at_step);
        Replay::from_trace(&cut)
    }
}

/// Plays back a recorded run up to the fork point, then asks `then`.
pub struct Fork {
    /// The recorded text before the fork point, then the person's turn, while some is left.
    before: Vec<Replay>,
    then: Box<dyn Policy>,
    at: String,
}

impl Fork {
    pub fn new(from: &ForkFrom, then: Box<dyn Policy>) -> Self {
        let mut before = Vec::new();
        if let Some(turn) = from.turn.as_ref().filter(|t| !t.trim().is_empty()) {
            before.push(Replay::by_a_person(turn.clone()));
        }
        if from.segments() > 0 {
            before.push(from.replay());
        }
        Self {
            before,
            then,
            at: format!("{} at step {}", from.trace.run.id, from.at_step + 1),
        }
    }
}

impl Policy for Fork {
    fn name(&self) -> String {
        format!("fork of {}, then {}", self.at, self.then.name())
    }

    fn generate(
        &mut self,
        request: &Request,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
    ) -> Result<Segment, PolicyError> {
        // `before` is played from its end: the recording, then the person's turn.
        while let Some(next) = self.before.last_mut() {
            match next.generate(request, on_text, cancel) {
                Err(PolicyError::Exhausted { .. }) => {
                    self.before.pop();
                }
                other => return other,
            }
        }
        self.then.generate(request, on_text, cancel)
    }
}
