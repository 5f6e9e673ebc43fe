//! Forking a recorded run: its model text up to a chosen step is played back (the code of
//! those steps runs again, for real, so the sandbox's variables and images are as they were),
//! then another policy writes on: a chat server, the on-device model, or a person. The
//! recorded run stays as it is; the fork is a new run that names where it came from.

use std::sync::atomic::AtomicBool;

use super::policy::{Policy, PolicyError, Replay, Request, Segment};
use crate::trace::{Step, Trace};

/// Where a fork starts: a recorded run and the first of its steps not played back.
#[derive(Debug, Clone)]
pub struct ForkFrom {
    pub trace: Trace,
    /// Steps before this one are played back (`steps.len()` replays the whole run).
    pub at_step: usize,
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
    /// The recorded text before the fork point, while some is left.
    replay: Option<Replay>,
    then: Box<dyn Policy>,
    at: String,
}

impl Fork {
    pub fn new(from: &ForkFrom, then: Box<dyn Policy>) -> Self {
        Self {
            replay: (from.segments() > 0).then(|| from.replay()),
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
        if let Some(replay) = &mut self.replay {
            match replay.generate(request, on_text, cancel) {
                Err(PolicyError::Exhausted { .. }) => self.replay = None,
                other => return other,
            }
        }
        self.then.generate(request, on_text, cancel)
    }
}
