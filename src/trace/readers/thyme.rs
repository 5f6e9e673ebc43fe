//! Thyme's own logs: SFT rows (a conversation with its code turns) and RL rollouts (a
//! completion with rewards), split into generate, execute and answer steps.

use super::*;

/// Model text as a `generate` step, followed by an `answer` step when it holds `<answer>`.
pub(super) fn push_text(steps: &mut Vec<Step>, text: String, stop: Option<String>) {
    let answer = text.contains("<answer>").then(|| text.clone());
    steps.push(Step::Generate {
        text,
        stop,
        tokens: None,
        ms: None,
        sampling: Default::default(),
        rolled_back: false,
    });
    if let Some(a) = answer {
        steps.push(Step::Answer {
            extracted: tags::extract_answer(&a).map(str::to_owned),
            text: a,
            matches_ground_truth: None,
        });
    }
}

/// Steps from an assistant turn in Thyme's format; `<image>` placeholders in outputs take
/// `images` in order.
pub fn thyme_steps(turn: &str, images: &mut dyn Iterator<Item = TraceImage>) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut pending_code: Option<String> = None;
    for piece in tags::split_turn(turn) {
        match piece {
            Piece::Text { text, stop } => {
                pending_code = tags::first_code(&text);
                push_text(&mut steps, text, stop);
            }
            Piece::Output { text, images: n } => {
                // A placeholder the log has no image for (RL logs keep none: the trainer
                // wrote them to a cache folder) stays as an output without pixels, so its
                // place on the original can still come from the code.
                let outputs: Vec<StepImage> = images
                    .chain(std::iter::repeat_with(TraceImage::default))
                    .take(n)
                    .map(|image| StepImage {
                        image,
                        ..Default::default()
                    })
                    .collect();
                let code = pending_code.take().unwrap_or_default();
                let error = text.starts_with("Sandbox for").then(|| text.clone());
                steps.push(Step::Execute {
                    executed_code: code.clone(),
                    raw_code: code,
                    fixes: Vec::new(),
                    stdout: if error.is_some() {
                        String::new()
                    } else {
                        text.clone()
                    },
                    stderr: String::new(),
                    text_result: (n == 0 && error.is_none()).then_some(text),
                    error,
                    outputs,
                    ms: None,
                    fed_back: true,
                    edited_from: None,
                });
            }
        }
    }
    steps
}

pub(super) fn thyme_sft(v: &Value, _base: &Path) -> Result<Trace, String> {
    let question = str_field(v, &["question", "prompt"]).ok_or("no question")?;
    let response = str_field(v, &["response", "answer_text"]).ok_or("no response")?;
    let mut images = image_list(v).into_iter();
    let original = images.next().ok_or("no image")?;
    let steps = thyme_steps(response, &mut images);
    let run = Run {
        id: str_field(v, &["id"]).unwrap_or("").to_owned(),
        images: vec![original],
        question: bare_question(question).to_owned(),
        ground_truth: str_field(v, &["answer", "ground_truth", "gt", "solution"])
            .map(|s| tags::unbox(s).to_owned()),
        ..Default::default()
    };
    Ok(Trace::new(run, steps))
}

pub(super) fn thyme_rl(v: &Value, _base: &Path) -> Result<Trace, String> {
    let completion = match v.get("completion") {
        Some(Value::String(s)) => s.clone(),
        Some(c @ Value::Array(_)) => {
            // A list of messages: the assistant's content.
            c.as_array()
                .into_iter()
                .flatten()
                .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
                .map(|m| content(m.get("content").unwrap_or(&Value::Null)).0)
                .collect::<Vec<_>>()
                .join("")
        }
        _ => return Err("no completion".into()),
    };
    let prompt = match v.get("prompt") {
        // The chat template rendered (Thyme's GRPO log): the last user turn.
        Some(Value::String(s)) => thyme_row::rendered_user_turn(s),
        Some(Value::Array(msgs)) => msgs
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .map(|m| content(m.get("content").unwrap_or(&Value::Null)).0)
            .unwrap_or_default(),
        _ => return Err("no prompt".into()),
    };
    let mut images = image_list(v).into_iter();
    // The log names no image: the original is the one the user turn's path header names.
    let original = images
        .next()
        .or_else(|| thyme_row::header_image_path(&prompt).map(TraceImage::at))
        .unwrap_or_default();
    let steps = thyme_steps(&completion, &mut images);
    let mut rewards = std::collections::BTreeMap::new();
    if let Some(obj) = v.as_object() {
        for (k, x) in obj {
            let upper = k
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if let (true, Some(n)) = (upper || k.ends_with("_reward") || k == "reward", x.as_f64())
            {
                rewards.insert(k.clone(), n);
            }
        }
    }
    let run = Run {
        id: match v.get("step") {
            Some(Value::String(s)) => format!("step-{s}"),
            Some(s) => format!("step-{s}"),
            None => String::new(),
        },
        images: if original == TraceImage::default() {
            vec![]
        } else {
            vec![original]
        },
        question: bare_question(&prompt).to_owned(),
        ground_truth: str_field(v, &["solution", "answer", "ground_truth"])
            .map(|s| thyme_row::solution(s).to_owned()),
        rewards,
        ..Default::default()
    };
    Ok(Trace::new(run, steps))
}
