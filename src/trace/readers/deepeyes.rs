//! DeepEyes: chat messages whose tool calls carry a zoom box. Two writers: the RL rollouts
//! (`messages`) and the evaluation scripts (`eval/eval_vstar.py`, `eval_hrbench.py`: one line
//! per item with `image`, `question`, `answer`, `pred_ans`, `status` and the conversation in
//! `pred_output`, its images logged as empty data URLs, the original named in `image`).

use super::*;

pub(in crate::trace::readers) fn deepeyes(v: &Value, _base: &Path) -> Result<Trace, String> {
    let msgs = messages(v).ok_or("no messages")?;
    let mut run = Run {
        id: str_field(v, &["id", "uid"]).unwrap_or("").to_owned(),
        ground_truth: str_field(v, &["ground_truth", "answer", "solution"]).map(str::to_owned),
        question: str_field(v, &["question"]).unwrap_or("").trim().to_owned(),
        ..Default::default()
    };
    let mut asked = false;
    let mut extra_images = image_list(v).into_iter();
    let mut steps = Vec::new();
    let mut pending: Option<(String, Option<[f64; 4]>)> = None;
    for m in msgs {
        let (text, images) = content(m.get("content").unwrap_or(&Value::Null));
        match role(m) {
            "user" if !asked => {
                asked = true;
                if run.question.is_empty() {
                    run.question = bare_question(&text.replace("<image>", "")).to_owned();
                }
                let kept: Vec<TraceImage> =
                    images.into_iter().filter(TraceImage::has_pixels).collect();
                run.images = if kept.is_empty() {
                    extra_images.next().into_iter().collect()
                } else {
                    kept
                };
            }
            "user" | "tool" => {
                // An observation: the tool's result.
                let (code, rect) = pending.take().unwrap_or_default();
                let n = text.matches("<image>").count().max(images.len());
                let mut imgs: Vec<TraceImage> = images;
                while imgs.len() < n {
                    match extra_images.next() {
                        Some(i) => imgs.push(i),
                        None => break,
                    }
                }
                let observation = tags::between(&text, "<tool_response>", "</tool_response>")
                    .unwrap_or(&text)
                    .replace("<image>", "")
                    .trim()
                    .to_owned();
                steps.push(tool_step(
                    ToolCall {
                        ran: code.clone(),
                        call: code,
                        answer: observation.clone(),
                        error: None,
                        text_result: imgs.is_empty().then_some(observation),
                    },
                    imgs,
                    rect,
                ));
            }
            "assistant" => {
                if let Some(call) = tags::between(&text, "<tool_call>", "</tool_call>") {
                    let parsed: Value = serde_json::from_str(call.trim()).unwrap_or(Value::Null);
                    let rect = parsed.pointer("/arguments/bbox_2d").and_then(bbox);
                    pending = Some((call.trim().to_owned(), rect));
                }
                let stop = if text.contains("</tool_call>") {
                    Some("</tool_call>".into())
                } else {
                    text.contains("<answer>").then(|| "</answer>".into())
                };
                push_text(&mut steps, text, stop);
            }
            _ => {}
        }
    }
    if steps.is_empty() {
        return Err("no assistant turns".into());
    }
    Ok(Trace::new(run, steps))
}
