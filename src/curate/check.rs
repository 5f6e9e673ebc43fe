//! The difficulty check's runner: every selected QA item tried k times with tools (the agent
//! loop) and k times without (one direct answer), each try seeded and sampled at the check's
//! temperature, several in flight. Each attempt is stored as it ends; attempts already stored
//! under the same settings are not made again, so a stopped check resumes and a repeated one
//! costs nothing.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::attempts::{Arm, Attempt, AttemptStore, CurateError, Verdict};
use crate::agent::{
    Agent, Backoff, Policy, PolicyError, PromptProfile, Retrying, Sampled, Settings, Task,
    run_without_tools,
};
use crate::dataset::QuestionId;
use crate::exchange::{ExportOptions, ExportReport, Filter, Format};
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::store::SqliteStore;
use crate::trace::{Outcome, Step, Trace};

/// One QA item to check.
#[derive(Debug, Clone)]
pub struct CheckItem {
    pub question: QuestionId,
    /// The question as the model reads it (options included), its image and the solution.
    pub task: Task,
    pub category: String,
    /// The question's boxes on the original image.
    pub targets: Vec<[f64; 4]>,
}

/// The project's QA items that pass `filter` (the export's filters and rules: a question
/// without an answer or otherwise invalid is left out, and the report names it).
pub fn items(
    store: &SqliteStore,
    filter: &Filter,
    profile: &PromptProfile,
) -> Result<(Vec<CheckItem>, ExportReport), CurateError> {
    let dump = store.dump(false)?;
    let mut report = ExportReport::default();
    let selection = crate::exchange::select::select(
        &dump,
        store.creators()?,
        filter,
        Format::ThymeRl,
        &mut report,
    );
    let mut options = ExportOptions::new(Format::ThymeRl);
    options.profile = profile.clone();
    let mut out = Vec::new();
    for item in &selection.items {
        for q in &item.questions {
            let (question, solution) = crate::exchange::thyme_rl::prompt_and_solution(q, &options);
            out.push(CheckItem {
                question: q.id,
                task: Task {
                    image: item.image.path.clone(),
                    size: item.image.size,
                    question,
                    ground_truth: Some(solution),
                },
                category: q.category.clone(),
                targets: crate::exchange::select::linked(item, q)
                    .iter()
                    .map(|r| [r.rect.x0, r.rect.y0, r.rect.x1, r.rect.y1])
                    .collect(),
            });
        }
    }
    Ok((out, report))
}

/// What makes a check's attempts comparable; attempts are stored under its [`key`](Self::key).
#[derive(Debug, Clone)]
pub struct CheckSettings {
    /// Tries per item and arm.
    pub k: usize,
    pub temperature: f32,
    /// Try i of an item is drawn with seed `seed + i` (in both arms).
    pub seed: u64,
    /// The with-tool arm's loop settings (its `sampled` is set per try).
    pub agent: Settings,
    pub profile: PromptProfile,
    /// The model's name as the policy gives it.
    pub model: String,
}

impl CheckSettings {
    /// The settings as JSON. `k` is left out: raising it adds tries to the same check.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "model": self.model,
            "prompt_sha256": self.profile.system_sha256(),
            "user_template": self.profile.user,
            "temperature": self.temperature,
            "seed": self.seed,
            "max_segments": self.agent.max_segments,
            "max_tokens": self.agent.max_tokens,
            "mode": format!("{:?}", self.agent.mode),
            "fallback": self.agent.fallback,
        })
    }

    /// SHA-256 (hex) of [`json`](Self::json).
    pub fn key(&self) -> String {
        let digest = Sha256::digest(self.json().to_string().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Makes a fresh policy for one attempt (or says why it cannot).
pub type PolicyMaker<'a> = dyn Fn() -> Result<Box<dyn Policy>, String> + Sync + 'a;

/// Counts as a check goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckProgress {
    /// Attempts the check holds in all (items x k x 2).
    pub total: usize,
    /// Found stored, not made again.
    pub reused: usize,
    /// Made and stored by this check.
    pub made: usize,
    /// Of those, the ones the server never answered.
    pub failed: usize,
}

/// How a check ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOutcome {
    pub progress: CheckProgress,
    pub cancelled: bool,
    /// The store refused an attempt: the check stopped there (every attempt before is kept).
    pub store_error: Option<String>,
}

/// Runs a check.
pub struct Checker<'a> {
    pub sandbox: SandboxConfig,
    pub settings: CheckSettings,
    /// Attempts in flight at once (at least 1).
    pub jobs: usize,
    pub backoff: Backoff,
    pub policy: &'a PolicyMaker<'a>,
}

impl Checker<'_> {
    /// Make every attempt of `items` not yet in `store`; `on_done` hears each as it is stored.
    /// After `cancel` the attempts in flight are dropped (not stored) and no more start.
    pub fn run(
        &self,
        items: &[CheckItem],
        store: &Mutex<AttemptStore>,
        cancel: &AtomicBool,
        on_done: &(dyn Fn(&Attempt, &CheckProgress) + Sync),
    ) -> Result<CheckOutcome, CurateError> {
        let key = self.settings.key();
        let finished = store
            .lock()
            .map_err(|_| CurateError::Setup("the attempt store is unusable".into()))?
            .finished(&key)?;
        let mut todo = Vec::new();
        let mut progress = CheckProgress::default();
        // Item by item, an arm's tries together: a local model then reuses the cached prompt
        // and image from one try to the next.
        for (i, item) in items.iter().enumerate() {
            for arm in Arm::BOTH {
                for t in 0..self.settings.k {
                    let seed = self.settings.seed.wrapping_add(t as u64);
                    progress.total += 1;
                    if finished.contains(&(item.question, arm, seed)) {
                        progress.reused += 1;
                    } else {
                        todo.push((i, arm, seed));
                    }
                }
            }
        }
        let progress = Mutex::new(progress);
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let store_error = Mutex::new(None);
        let workers = self.jobs.clamp(1, todo.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        if cancel.load(Ordering::Relaxed) || stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let Some(&(i, arm, seed)) = todo.get(next.fetch_add(1, Ordering::Relaxed))
                        else {
                            break;
                        };
                        let Some(attempt) = self.attempt(&items[i], arm, seed, &key, cancel) else {
                            continue;
                        };
                        let stored = store
                            .lock()
                            .map_err(|_| "the attempt store is unusable".to_owned())
                            .and_then(|st| st.put(&attempt).map_err(|e| e.to_string()));
                        if let Err(e) = stored {
                            if let Ok(mut se) = store_error.lock() {
                                se.get_or_insert(e);
                            }
                            stop.store(true, Ordering::Relaxed);
                            break;
                        }
                        let now = progress.lock().map(|mut p| {
                            p.made += 1;
                            p.failed += usize::from(attempt.verdict == Verdict::Failed);
                            *p
                        });
                        if let Ok(p) = now {
                            on_done(&attempt, &p);
                        }
                    }
                });
            }
        });
        Ok(CheckOutcome {
            progress: progress.into_inner().unwrap_or_default(),
            cancelled: cancel.load(Ordering::Relaxed),
            store_error: store_error.into_inner().unwrap_or_default(),
        })
    }

    /// One attempt, or None when it was cancelled midway (nothing to store).
    fn attempt(
        &self,
        item: &CheckItem,
        arm: Arm,
        seed: u64,
        key: &str,
        cancel: &AtomicBool,
    ) -> Option<Attempt> {
        let sampled = Sampled {
            temperature: self.settings.temperature,
            seed,
        };
        let (trace, failure) = match (self.policy)() {
            Err(e) => (None, Some(e)),
            Ok(policy) => {
                let retrying = Retrying::new(policy, self.backoff);
                let gave_up = retrying.gave_up();
                let (trace, error) = match arm {
                    Arm::Tools => (
                        Some(self.with_tools(item, Box::new(retrying), sampled, cancel)),
                        None,
                    ),
                    Arm::NoTools => {
                        let mut p = retrying;
                        let (t, e) = run_without_tools(
                            &mut p,
                            &item.task,
                            self.settings.agent.max_tokens,
                            Some(sampled),
                            cancel,
                        );
                        (Some(t), e)
                    }
                };
                if cancel.load(Ordering::Relaxed) || matches!(error, Some(PolicyError::Cancelled)) {
                    return None;
                }
                let given_up = gave_up.lock().ok().and_then(|g| g.clone());
                let failure = given_up.or_else(|| error.map(|e| e.to_string()));
                (trace, failure)
            }
        };
        let verdict = match (&failure, trace.as_ref().map(|t| t.run.outcome)) {
            (Some(_), _) | (None, None) => Verdict::Failed,
            (None, Some(Outcome::Correct)) => Verdict::Correct,
            (None, Some(Outcome::Wrong)) => Verdict::Wrong,
            (None, Some(_)) => Verdict::NoAnswer,
        };
        let answer = trace.as_ref().and_then(final_answer);
        let steps = trace.as_ref().map_or(0, |t| {
            t.steps
                .iter()
                .filter(|s| matches!(s, Step::Execute { .. }))
                .count() as u32
        });
        let look = trace
            .as_ref()
            .filter(|t| arm == Arm::Tools && !t.run.targets.is_empty())
            .map(|t| {
                crate::trace::stats::look_key(crate::trace::stats::target_measures(t)).to_owned()
            });
        Some(Attempt {
            settings_key: key.to_owned(),
            question: item.question,
            arm,
            seed,
            model: trace
                .as_ref()
                .and_then(|t| t.run.model.clone())
                .unwrap_or_else(|| self.settings.model.clone()),
            prompt_sha256: self.settings.profile.system_sha256(),
            settings: self.settings.json().to_string(),
            verdict,
            answer,
            steps,
            look,
            error: failure,
            trace: trace
                .as_ref()
                .and_then(|t| serde_json::to_string(t).ok())
                .unwrap_or_else(|| "{}".into()),
            at_ms: crate::store::now_ms(),
        })
    }

    /// The agent loop on the item.
    fn with_tools(
        &self,
        item: &CheckItem,
        policy: Box<dyn Policy>,
        sampled: Sampled,
        cancel: &AtomicBool,
    ) -> Trace {
        // The worker starts with the first code cell (a try that answers at once needs none).
        let sandbox = Sandbox::deferred(self.sandbox.clone());
        let settings = Settings {
            sampled: Some(sampled),
            ..self.settings.agent.clone()
        };
        let mut agent = Agent::new(
            policy,
            sandbox,
            self.settings.profile.clone(),
            settings,
            item.task.clone(),
        );
        agent.run_to_end(cancel);
        let mut trace = agent.close();
        trace.run.category = Some(item.category.clone());
        trace.run.targets = item.targets.clone();
        trace
    }
}

/// The answer a run ended with.
fn final_answer(t: &Trace) -> Option<String> {
    t.steps.iter().rev().find_map(|s| match s {
        Step::Answer { extracted, .. } => extracted.clone(),
        _ => None,
    })
}
