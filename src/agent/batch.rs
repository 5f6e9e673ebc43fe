//! Batch runs: many (image, question, ground truth) tasks from a JSONL file, run with several
//! runs in flight (each with its own sandbox and policy), the traces returned in input order
//! and summarised as accuracy. Rows are Thyme RL rows (`messages` / `question`, `images`,
//! `solution`), our own thyme-rl export (the same, with extra keys), or plain
//! `{"image", "question", "answer"}` lines. With an HTTP policy the runs in flight are
//! requests in flight, so a vLLM or SGLang cluster does the scaling.

use crate::trace::thyme_row::{bare_question, first_image, solution};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::Value;

use super::machine::{Agent, Settings, Task};
use super::policy::Policy;
use super::profile::PromptProfile;
use crate::imagery::{PixelBudget, probe_file};
use crate::sandbox::{Sandbox, SandboxConfig};
use crate::trace::{Outcome, Trace};

/// One task of a batch, with the line it came from (1-based).
#[derive(Debug, Clone)]
pub struct BatchTask {
    pub line: usize,
    pub task: Task,
    /// The row's `category` and target boxes (`bbox`), recorded in the run for statistics.
    pub category: Option<String>,
    pub targets: Vec<[f64; 4]>,
}

/// A line that could not become a task.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Read a batch file. Relative image paths are taken from the file's folder; every image is
/// probed (header only) so a missing or unreadable one is reported here, not mid-batch.
pub fn read_tasks(path: &Path) -> std::io::Result<(Vec<BatchTask>, Vec<BadLine>)> {
    let file = std::fs::File::open(path)?;
    let base = path.parent().unwrap_or(Path::new(".")).to_owned();
    let mut tasks = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line_no = i + 1;
        let text = match line {
            Ok(t) => t,
            Err(e) => {
                bad.push(BadLine {
                    line: line_no,
                    message: format!("unreadable: {e}"),
                });
                continue;
            }
        };
        if text.trim().is_empty() {
            continue;
        }
        match task_of_line(&text, &base) {
            Ok((task, labels)) => tasks.push(BatchTask {
                line: line_no,
                task,
                category: labels.category,
                targets: labels.targets,
            }),
            Err(message) => bad.push(BadLine {
                line: line_no,
                message,
            }),
        }
    }
    Ok((tasks, bad))
}

/// What a row says about its question beyond the task: its category and target boxes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RowLabels {
    pub category: Option<String>,
    /// `bbox`: [x0, y0, x1, y1] in original pixels; malformed entries are left out.
    pub targets: Vec<[f64; 4]>,
}

fn row_labels(v: &Value) -> RowLabels {
    let category = v
        .get("category")
        .and_then(Value::as_str)
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    let targets = v
        .get("bbox")
        .and_then(Value::as_array)
        .map(|boxes| {
            boxes
                .iter()
                .filter_map(|b| {
                    let b: Vec<f64> = b.as_array()?.iter().filter_map(Value::as_f64).collect();
                    let [x0, y0, x1, y1] = <[f64; 4]>::try_from(b).ok()?;
                    (x1 > x0 && y1 > y0).then_some([x0, y0, x1, y1])
                })
                .collect()
        })
        .unwrap_or_default();
    RowLabels { category, targets }
}

/// One JSON line as a task, with the labels the row gives its question.
pub fn task_of_line(text: &str, base: &Path) -> Result<(Task, RowLabels), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let labels = row_labels(&v);
    let name = first_image(&v).ok_or("no image (images, image)")?;
    let image = if Path::new(name).is_absolute() {
        PathBuf::from(name)
    } else {
        base.join(name)
    };
    // The user turn as the model saw it, less its image tag and path headers: for
    // multiple-choice rows it holds the options, which the bare `question` may not.
    let user = v
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| {
            m.iter()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        })
        .and_then(|m| m.get("content").and_then(Value::as_str));
    let question = user
        .or_else(|| v.get("question").and_then(Value::as_str))
        .or_else(|| v.get("problem").and_then(Value::as_str))
        .map(bare_question)
        .filter(|q| !q.is_empty())
        .ok_or("no question (messages, question or problem)")?
        .to_owned();
    let ground_truth = ["solution", "answer", "ground_truth"]
        .iter()
        .find_map(|k| v.get(*k))
        .and_then(|a| match a {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .map(|s| solution(&s).to_owned());
    let probe = probe_file(&image, PixelBudget::DEFAULT).map_err(|e| e.to_string())?;
    Ok((
        Task {
            image,
            size: probe.size,
            question,
            ground_truth,
        },
        labels,
    ))
}

/// How one task of a batch ended.
#[derive(Debug, Clone)]
pub struct BatchResult {
    pub line: usize,
    /// The recorded run, or why none could be made (the sandbox did not start, ...).
    pub trace: Result<Trace, String>,
}

/// Makes a fresh policy for a task (or says why it cannot).
pub type PolicyFactory<'a> = dyn Fn(&BatchTask) -> Result<Box<dyn Policy>, String> + Sync + 'a;

/// What is shared by every run of a batch.
pub struct BatchRunner<'a> {
    pub sandbox: SandboxConfig,
    pub profile: PromptProfile,
    pub settings: Settings,
    /// How many runs are in flight at once (at least 1).
    pub jobs: usize,
    /// A fresh policy for a task.
    pub policy: &'a PolicyFactory<'a>,
}

impl BatchRunner<'_> {
    /// Run every task; `on_done` hears each result as it lands (any order). The results come
    /// back in input order. After `cancel`, runs in flight stop and the rest are not started.
    pub fn run(
        &self,
        tasks: &[BatchTask],
        cancel: &AtomicBool,
        on_done: &(dyn Fn(&BatchResult) + Sync),
    ) -> Vec<BatchResult> {
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<BatchResult>>> = Mutex::new(vec![None; tasks.len()]);
        let workers = self.jobs.clamp(1, tasks.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(t) = tasks.get(i) else { break };
                        if cancel.load(Ordering::Relaxed) {
                            break;
                        }
                        let result = BatchResult {
                            line: t.line,
                            trace: self.one(t, cancel),
                        };
                        on_done(&result);
                        if let Ok(mut r) = results.lock() {
                            r[i] = Some(result);
                        }
                    }
                });
            }
        });
        results
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .zip(tasks)
            .map(|(r, t)| {
                r.unwrap_or_else(|| BatchResult {
                    line: t.line,
                    trace: Err("not run (cancelled)".into()),
                })
            })
            .collect()
    }

    fn one(&self, t: &BatchTask, cancel: &AtomicBool) -> Result<Trace, String> {
        let policy = (self.policy)(t)?;
        let sandbox = Sandbox::start(self.sandbox.clone()).map_err(|e| e.to_string())?;
        let mut agent = Agent::new(
            policy,
            sandbox,
            self.profile.clone(),
            self.settings.clone(),
            t.task.clone(),
        );
        agent.run_to_end(cancel);
        let mut trace = agent.close();
        trace.run.category = t.category.clone();
        trace.run.targets = t.targets.clone();
        Ok(trace)
    }
}

/// Counts over a batch's results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchSummary {
    pub tasks: usize,
    pub correct: usize,
    pub wrong: usize,
    /// Answered, no ground truth to compare with.
    pub answered: usize,
    pub no_answer: usize,
    /// No run could be made.
    pub failed: usize,
    /// Tasks with a ground truth (the accuracy's denominator).
    pub with_truth: usize,
}

impl BatchSummary {
    pub fn of(results: &[BatchResult]) -> Self {
        let mut s = Self {
            tasks: results.len(),
            ..Self::default()
        };
        for r in results {
            match &r.trace {
                Ok(t) => {
                    if t.run.ground_truth.is_some() {
                        s.with_truth += 1;
                    }
                    match t.run.outcome {
                        Outcome::Correct => s.correct += 1,
                        Outcome::Wrong => s.wrong += 1,
                        Outcome::Answered => s.answered += 1,
                        Outcome::NoAnswer | Outcome::Unknown => s.no_answer += 1,
                    }
                }
                Err(_) => s.failed += 1,
            }
        }
        s
    }

    /// Correct answers over the tasks that have a ground truth (a run with no answer, or none
    /// at all, counts as not correct); None when no task has one.
    pub fn accuracy(&self) -> Option<f64> {
        let denominator = self.with_truth + self.failed;
        (denominator > 0).then(|| self.correct as f64 / denominator as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(dir: &Path, name: &str) {
        image::RgbImage::new(40, 30).save(dir.join(name)).unwrap();
    }

    #[test]
    fn a_row_s_category_and_target_boxes_go_with_its_task() {
        let dir = tempfile::tempdir().unwrap();
        png(dir.path(), "a.png");
        let file = dir.path().join("batch.jsonl");
        let rows = [
            r#"{"image": "a.png", "question": "Q1", "answer": "x", "category": " signs ", "bbox": [[1, 2, 11, 12], [5, 5, 5, 9], [1, 2], "no"]}"#,
            r#"{"image": "a.png", "question": "Q2", "answer": "x", "category": "", "bbox": "none"}"#,
        ];
        std::fs::write(&file, rows.join("\n")).unwrap();
        let (tasks, bad) = read_tasks(&file).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(tasks[0].category.as_deref(), Some("signs"));
        // The empty box and the malformed entries are left out.
        assert_eq!(tasks[0].targets, vec![[1.0, 2.0, 11.0, 12.0]]);
        assert_eq!(
            (tasks[1].category.as_deref(), tasks[1].targets.len()),
            (None, 0)
        );
    }

    #[test]
    fn thyme_rl_rows_and_plain_lines_become_tasks() {
        let dir = tempfile::tempdir().unwrap();
        png(dir.path(), "a.png");
        let abs = dir.path().join("a.png");
        let file = dir.path().join("batch.jsonl");
        let rows = [
            serde_json::json!({
                "messages": [
                    {"role": "system", "content": "You are..."},
                    {"role": "user", "content": format!("<image>\nWhat colour is the car?\nA. red\nB. blue\n\n### User Image Path:** \"{}\"\n### User Image Size:** \"40x30\"", abs.display())}
                ],
                "images": [abs.display().to_string()],
                "solution": "<answer>\\boxed{B}</answer>",
            })
            .to_string(),
            r#"{"image": "a.png", "question": "How many?", "answer": 3}"#.into(),
            "not json".into(),
            r#"{"image": "missing.png", "question": "Q"}"#.into(),
            r#"{"image": "a.png"}"#.into(),
            String::new(),
        ];
        std::fs::write(&file, rows.join("\n")).unwrap();
        let (tasks, bad) = read_tasks(&file).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].line, 1);
        assert_eq!(
            tasks[0].task.question,
            "What colour is the car?\nA. red\nB. blue"
        );
        assert_eq!(tasks[0].task.ground_truth.as_deref(), Some("B"));
        assert_eq!(tasks[0].task.size.width, 40);
        assert_eq!(tasks[1].task.image, dir.path().join("a.png"));
        assert_eq!(tasks[1].task.ground_truth.as_deref(), Some("3"));
        let lines: Vec<usize> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        assert!(bad[0].message.starts_with("not JSON"), "{}", bad[0]);
        assert!(bad[1].message.contains("missing.png"), "{}", bad[1]);
        assert!(bad[2].message.contains("no question"), "{}", bad[2]);
    }

    #[test]
    fn accuracy_counts_failures_and_missing_answers_as_not_correct() {
        let run = |gt: Option<&str>, outcome| {
            let mut t = Trace::new(crate::trace::Run::default(), vec![]);
            t.run.ground_truth = gt.map(str::to_owned);
            t.run.outcome = outcome;
            t
        };
        let results = vec![
            BatchResult {
                line: 1,
                trace: Ok(run(Some("A"), Outcome::Correct)),
            },
            BatchResult {
                line: 2,
                trace: Ok(run(Some("B"), Outcome::Wrong)),
            },
            BatchResult {
                line: 3,
                trace: Ok(run(Some("C"), Outcome::NoAnswer)),
            },
            BatchResult {
                line: 4,
                trace: Err("sandbox".into()),
            },
            BatchResult {
                line: 5,
                trace: Ok(run(None, Outcome::Answered)),
            },
        ];
        let s = BatchSummary::of(&results);
        assert_eq!((s.correct, s.wrong, s.no_answer, s.failed), (1, 1, 1, 1));
        assert_eq!(s.answered, 1);
        assert_eq!(s.accuracy(), Some(0.25));
        assert_eq!(BatchSummary::of(&[]).accuracy(), None);
    }
}
