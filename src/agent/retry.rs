//! Retries with backoff around any policy: a chat server that errs or times out is asked
//! again, waiting twice as long each time; after the last try the failure is kept, so a
//! caller can tell "the server never answered" (a failed attempt) from "the model answered
//! wrongly". Cancelling stops the waiting at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::policy::{Policy, PolicyError, Request, Segment};

/// How often and how patiently to ask again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Tries in all (at least 1).
    pub tries: usize,
    /// The wait before the second try; each later wait is twice the one before.
    pub first_wait: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            tries: 4,
            first_wait: Duration::from_millis(500),
        }
    }
}

/// A policy asked again on failure. [`Retrying::gave_up`] holds the last error once every try
/// failed.
pub struct Retrying {
    inner: Box<dyn Policy>,
    backoff: Backoff,
    gave_up: Arc<Mutex<Option<String>>>,
    /// Tries beyond the first, over this policy's life.
    retries: usize,
}

impl Retrying {
    pub fn new(inner: Box<dyn Policy>, backoff: Backoff) -> Self {
        Self {
            inner,
            backoff,
            gave_up: Arc::new(Mutex::new(None)),
            retries: 0,
        }
    }

    /// Where the final failure is written (shared, so it can be read after the policy moved
    /// into an agent).
    pub fn gave_up(&self) -> Arc<Mutex<Option<String>>> {
        self.gave_up.clone()
    }
}

/// Wait `d`, or less when `cancel` is set; true when cancelled.
fn wait(d: Duration, cancel: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if cancel.load(Ordering::Relaxed) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10).min(end - Instant::now()));
    }
    cancel.load(Ordering::Relaxed)
}

impl Policy for Retrying {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn generate(
        &mut self,
        request: &Request,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
    ) -> Result<Segment, PolicyError> {
        let mut pause = self.backoff.first_wait;
        let tries = self.backoff.tries.max(1);
        for attempt in 1..=tries {
            match self.inner.generate(request, on_text, cancel) {
                Err(PolicyError::Failed(why)) => {
                    if attempt == tries {
                        let said = format!("{why} (after {tries} tries)");
                        if let Ok(mut g) = self.gave_up.lock() {
                            *g = Some(said.clone());
                        }
                        return Err(PolicyError::Failed(said));
                    }
                    tracing::debug!("model request failed, try {attempt} of {tries}: {why}");
                    self.retries += 1;
                    if wait(pause, cancel) {
                        return Err(PolicyError::Cancelled);
                    }
                    pause = pause.saturating_mul(2);
                }
                // Text, a cancel, or a policy with nothing more to say: not worth asking again.
                other => return other,
            }
        }
        Err(PolicyError::Failed("no try was made".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails `fails` times, then answers.
    struct Flaky {
        fails: usize,
        calls: usize,
    }

    impl Policy for Flaky {
        fn name(&self) -> String {
            "flaky".into()
        }
        fn generate(
            &mut self,
            _: &Request,
            _: &mut dyn FnMut(&str),
            _: &AtomicBool,
        ) -> Result<Segment, PolicyError> {
            self.calls += 1;
            if self.calls <= self.fails {
                return Err(PolicyError::Failed(format!("503 on call {}", self.calls)));
            }
            Ok(Segment {
                text: "<answer>4</answer>".into(),
                stop: Some("</answer>".into()),
                tokens: None,
                ms: 0.0,
                origin: super::super::policy::Origin::Written,
            })
        }
    }

    fn request() -> Request {
        crate::agent::no_tool_request("Q", std::path::Path::new("a.png"), 16, None)
    }

    fn quick(tries: usize) -> Backoff {
        Backoff {
            tries,
            first_wait: Duration::from_millis(1),
        }
    }

    #[test]
    fn a_failing_server_is_asked_again_until_it_answers() {
        let mut p = Retrying::new(Box::new(Flaky { fails: 2, calls: 0 }), quick(3));
        let seg = p
            .generate(&request(), &mut |_| {}, &AtomicBool::new(false))
            .unwrap();
        assert_eq!(seg.text, "<answer>4</answer>");
        assert_eq!(p.retries, 2);
        assert_eq!(*p.gave_up().lock().unwrap(), None);
    }

    #[test]
    fn after_the_last_try_the_failure_is_kept() {
        let mut p = Retrying::new(Box::new(Flaky { fails: 9, calls: 0 }), quick(3));
        let gave_up = p.gave_up();
        let e = p
            .generate(&request(), &mut |_| {}, &AtomicBool::new(false))
            .unwrap_err();
        assert!(
            e.to_string().contains("503 on call 3 (after 3 tries)"),
            "{e}"
        );
        assert_eq!(
            gave_up.lock().unwrap().as_deref(),
            Some("503 on call 3 (after 3 tries)")
        );
    }

    #[test]
    fn a_cancel_stops_the_waiting() {
        let slow = Backoff {
            tries: 5,
            first_wait: Duration::from_secs(3600),
        };
        let mut p = Retrying::new(Box::new(Flaky { fails: 9, calls: 0 }), slow);
        let cancel = AtomicBool::new(true);
        let e = p.generate(&request(), &mut |_| {}, &cancel).unwrap_err();
        assert!(matches!(e, PolicyError::Cancelled), "{e}");
    }
}
