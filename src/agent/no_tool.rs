//! A run without tools: the model sees the original image and the question and answers
//! directly, in one segment, with no sandbox started. The difficulty check's second arm (does
//! the item need the tools at all?), recorded as a trace like any run.

use std::sync::atomic::AtomicBool;

use super::machine::{Sampled, Task, no_tool_request, sampled_entries};
use super::policy::{Policy, PolicyError};
use crate::trace::{Run, Step, Trace, TraceImage, tags};

/// Ask `task` without tools. The trace holds the model's text and, when it wrote one, its
/// answer (graded against the task's ground truth); the error is the policy's, when it gave
/// no text at all (the trace then has no answer).
pub fn run_without_tools(
    policy: &mut dyn Policy,
    task: &Task,
    max_tokens: u32,
    sampled: Option<Sampled>,
    cancel: &AtomicBool,
) -> (Trace, Option<PolicyError>) {
    let request = no_tool_request(&task.question, &task.image, max_tokens, sampled);
    let run = Run {
        id: uuid::Uuid::now_v7().simple().to_string(),
        created_ms: Some(crate::store::now_ms()),
        model: Some(policy.name()),
        profile: Some("no tools".into()),
        decoding: [
            ("arm".to_owned(), serde_json::json!("no_tools")),
            ("max_tokens".to_owned(), serde_json::json!(max_tokens)),
        ]
        .into_iter()
        .chain(sampled_entries(sampled))
        .collect(),
        images: vec![TraceImage {
            path: Some(task.image.clone()),
            width: Some(task.size.width),
            height: Some(task.size.height),
            ..Default::default()
        }],
        question: task.question.clone(),
        ground_truth: task.ground_truth.clone(),
        source_format: "thyme-studio".into(),
        ..Default::default()
    };
    let mut steps = Vec::new();
    let error = match policy.generate(&request, &mut |_| {}, cancel) {
        Ok(seg) => {
            steps.push(Step::Generate {
                text: seg.text.clone(),
                stop: seg.stop.clone(),
                tokens: seg.tokens,
                ms: Some(seg.ms),
                sampling: [(
                    "temperature".to_owned(),
                    serde_json::json!(request.temperature),
                )]
                .into_iter()
                .collect(),
                rolled_back: false,
            });
            // Text that never answers counts as no answer, not as a wrong one.
            if let Some(answer) = tags::extract_answer(&seg.text) {
                steps.push(Step::Answer {
                    text: seg.text.clone(),
                    extracted: Some(answer.to_owned()),
                    matches_ground_truth: None,
                });
            }
            None
        }
        Err(e) => Some(e),
    };
    (Trace::new(run, steps), error)
}
