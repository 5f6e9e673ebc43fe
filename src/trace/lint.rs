//! Flags a researcher looks for in a run: text that claims a crop or zoom with no code run,
//! crops the sandbox had to fix, failed or rolled-back steps, image code that saved no image,
//! a wrong answer, no answer, and a final turn that breaks Thyme's format rule.

use serde::Serialize;

use super::{Outcome, Step, Summary, Trace, tags};

/// One flag, with the step it points at.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flag {
    pub name: &'static str,
    pub step: Option<usize>,
    pub detail: String,
}

/// Every flag name, for filters and documentation.
pub const NAMES: [&str; 9] = [
    "claims-crop-without-code",
    "crop-fixed-by-sandbox",
    "edited-by-a-person",
    "failed-step",
    "rolled-back",
    "image-code-saved-nothing",
    "wrong-answer",
    "no-answer",
    "format-violation",
];

const CLAIMS: [&str; 6] = [
    "crop",
    "zoom in",
    "zoom into",
    "zoomed",
    "enlarge",
    "magnif",
];

pub fn lint(trace: &Trace) -> Vec<Flag> {
    let mut flags = Vec::new();
    let executed = trace
        .steps
        .iter()
        .any(|s| matches!(s, Step::Execute { raw_code, .. } if !raw_code.trim().is_empty()));
    for (i, step) in trace.steps.iter().enumerate() {
        match step {
            Step::Generate {
                text,
                rolled_back,
                sampling,
                ..
            } => {
                if sampling.contains_key("edited_by_a_person") {
                    flags.push(Flag {
                        name: "edited-by-a-person",
                        step: Some(i),
                        detail: match &trace.run.forked_from {
                            Some(f) => format!(
                                "a person wrote this model turn at the fork (the recorded one is step {} of {})",
                                f.step + 1,
                                f.run
                            ),
                            None => "a person wrote this model turn".into(),
                        },
                    });
                }
                let lower = text.to_lowercase();
                if !executed && CLAIMS.iter().any(|c| lower.contains(c)) && !text.contains("<code>")
                {
                    flags.push(Flag {
                        name: "claims-crop-without-code",
                        step: Some(i),
                        detail: "the text describes a crop or zoom, and no code ran in this run"
                            .into(),
                    });
                }
                if *rolled_back {
                    flags.push(Flag {
                        name: "rolled-back",
                        step: Some(i),
                        detail: "this segment was dropped and generated again".into(),
                    });
                }
            }
            Step::Execute {
                raw_code,
                executed_code,
                fixes,
                error,
                outputs,
                fed_back,
                edited_from,
                ..
            } => {
                if edited_from.is_some() {
                    flags.push(Flag {
                        name: "edited-by-a-person",
                        step: Some(i),
                        detail: "a person changed the model's code before it ran".into(),
                    });
                }
                for f in fixes.iter().filter(|f| f.kind == "crop_box") {
                    flags.push(Flag {
                        name: "crop-fixed-by-sandbox",
                        step: Some(i),
                        detail: f.detail.clone(),
                    });
                }
                if let Some(e) = error {
                    flags.push(Flag {
                        name: "failed-step",
                        step: Some(i),
                        detail: e.lines().next().unwrap_or("").to_owned(),
                    });
                }
                if !fed_back {
                    flags.push(Flag {
                        name: "rolled-back",
                        step: Some(i),
                        detail: "the execution's result was not given to the model".into(),
                    });
                }
                let code = if executed_code.is_empty() {
                    raw_code
                } else {
                    executed_code
                };
                let image_work = [
                    ".crop(",
                    ".resize(",
                    ".rotate(",
                    ".save(",
                    "imwrite",
                    "ImageEnhance",
                ]
                .iter()
                .any(|k| code.contains(k));
                if image_work && outputs.is_empty() && error.is_none() {
                    flags.push(Flag {
                        name: "image-code-saved-nothing",
                        step: Some(i),
                        detail: "the code works on an image but gave none back".into(),
                    });
                }
            }
            Step::Answer { .. } => {}
        }
    }
    match trace.run.outcome {
        Outcome::Wrong => flags.push(Flag {
            name: "wrong-answer",
            step: trace
                .steps
                .iter()
                .rposition(|s| matches!(s, Step::Answer { .. })),
            detail: format!(
                "answered {:?}, ground truth {:?}",
                trace
                    .steps
                    .iter()
                    .rev()
                    .find_map(|s| match s {
                        Step::Answer { extracted, .. } => extracted.clone(),
                        _ => None,
                    })
                    .unwrap_or_default(),
                trace.run.ground_truth.clone().unwrap_or_default()
            ),
        }),
        Outcome::NoAnswer => flags.push(Flag {
            name: "no-answer",
            step: None,
            detail: "the run has no <answer>".into(),
        }),
        _ => {}
    }
    if let Some((i, text)) = trace
        .steps
        .iter()
        .enumerate()
        .rev()
        .find_map(|(i, s)| match s {
            Step::Generate { text, .. } if text.contains("<answer>") => Some((i, text)),
            _ => None,
        })
        && let Err(why) = tags::check_format(text)
    {
        flags.push(Flag {
            name: "format-violation",
            step: Some(i),
            detail: why.into(),
        });
    }
    flags
}

/// The tools a run's code used.
fn tools(trace: &Trace) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for s in &trace.steps {
        if let Step::Execute {
            raw_code,
            executed_code,
            ..
        } = s
        {
            let code = if executed_code.is_empty() {
                raw_code
            } else {
                executed_code
            };
            for (key, tool) in [
                (".crop(", "crop"),
                (".resize(", "resize"),
                (".rotate(", "rotate"),
                ("ImageEnhance", "enhance"),
                ("cv2.", "cv2"),
                ("image_zoom_in_tool", "zoom-in tool"),
                ("bbox_2d", "grounding"),
            ] {
                if code.contains(key) {
                    out.insert(tool.to_owned());
                }
            }
            if !code.trim().is_empty()
                && !["Image", "cv2", "bbox_2d"].iter().any(|k| code.contains(k))
            {
                out.insert("compute".to_owned());
            }
        }
    }
    out.into_iter().collect()
}

pub fn summarize(trace: &Trace) -> Summary {
    let mut names: Vec<String> = lint(trace).into_iter().map(|f| f.name.to_owned()).collect();
    names.sort();
    names.dedup();
    let ms: f64 = trace
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Generate { ms, .. } | Step::Execute { ms, .. } => *ms,
            Step::Answer { .. } => None,
        })
        .sum();
    Summary {
        steps: trace.steps.len(),
        executions: trace
            .steps
            .iter()
            .filter(|s| matches!(s, Step::Execute { .. }))
            .count(),
        tools: tools(trace),
        flags: names,
        ms: (ms > 0.0).then_some(ms),
        forked_from: trace.run.forked_from.clone(),
        rewards: trace.run.rewards.clone(),
    }
}
