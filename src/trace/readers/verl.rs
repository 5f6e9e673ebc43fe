//! verl's generation dumps: the JSONL files `RayPPOTrainer._dump_generations` writes per
//! training step into `trainer.rollout_data_dir` (rollouts) or `trainer.validation_data_dir`
//! (validation): one line per sample, `{input, output, score, step}` plus each reward
//! function's extra columns (`acc`, `format`, ... and `gts` in newer releases). `input` and
//! `output` are token ids decoded with `skip_special_tokens=True`, so the chat template's
//! markers are gone (`<|im_start|>user` is left as a bare `user` line) and so are the images;
//! `<tool_call>` and `<tool_response>` stay. Agents trained with verl's multi-turn tool loop
//! write their runs this way: CodeVision (`code_image_tool`: Python run on the input picked by
//! `image_index`, its result image fed back), DeepEyesV2's RL stage, DeepEyes-style zoom
//! tools. A call is the step's raw code as the model wrote it; a code tool's `code` argument is
//! what ran.

use super::*;

/// The tool calls of an assistant turn, in order.
fn calls(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(c) = tags::between(rest, "<tool_call>", "</tool_call>") {
        out.push(c.trim().to_owned());
        let at = rest
            .find("</tool_call>")
            .map_or(rest.len(), |e| e + "</tool_call>".len());
        rest = &rest[at..];
    }
    out
}

/// One sample of a generation dump.
pub(super) fn verl(v: &Value, _base: &Path) -> Result<Trace, String> {
    let input = str_field(v, &["input"]).ok_or("no input")?;
    let output = str_field(v, &["output"]).ok_or("no output")?;
    // The last user turn of the prompt: after its bare `user` line, before `assistant`.
    let user = input
        .rfind("user\n")
        .map_or(input, |at| &input[at + "user\n".len()..]);
    let user = user.rfind("\nassistant").map_or(user, |at| &user[..at]);
    let mut run = Run {
        question: bare_question(user).to_owned(),
        ground_truth: match v.get("gts") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(other @ (Value::Number(_) | Value::Array(_))) => Some(other.to_string()),
            _ => None,
        },
        ..Default::default()
    };
    if let Some(o) = v.as_object() {
        for (k, x) in o {
            if let (false, Some(n)) = (
                matches!(k.as_str(), "step" | "input" | "output"),
                x.as_f64(),
            ) {
                run.rewards.insert(k.clone(), n);
            }
        }
    }
    if let Some(step) = v.get("step").and_then(Value::as_i64) {
        run.id = format!("step-{step}");
    }
    let mut steps = Vec::new();
    let mut rest = output;
    loop {
        let Some(at) = rest.find("<tool_response>") else {
            if !rest.trim().is_empty() {
                let stop = rest
                    .contains("</tool_call>")
                    .then(|| "</tool_call>".to_owned());
                push_text(&mut steps, rest.trim().to_owned(), stop);
            }
            break;
        };
        // The turn before the tool's answer, without the bare `user` line that opened it.
        let turn = rest[..at].trim_end();
        let turn = turn.strip_suffix("user").unwrap_or(turn).trim_end();
        let turn_calls = calls(turn);
        let stop = (!turn_calls.is_empty()).then(|| "</tool_call>".to_owned());
        push_text(&mut steps, turn.trim_start().to_owned(), stop);
        // Each call's answer in its own block, in order.
        rest = &rest[at..];
        let mut answers = Vec::new();
        while let Some(body) = rest
            .trim_start()
            .strip_prefix("<tool_response>")
            .map(|r| r.split_once("</tool_response>").unwrap_or((r, "")))
        {
            answers.push(body.0.trim().to_owned());
            rest = body.1;
        }
        let mut answers = answers.into_iter();
        for call in turn_calls.iter().map(Some).chain(std::iter::repeat(None)) {
            let answer = answers.next();
            if call.is_none() && answer.is_none() {
                break;
            }
            steps.push(call_step(
                call.map(String::as_str).unwrap_or(""),
                answer.unwrap_or_default(),
            ));
        }
        let after = rest.trim_start();
        rest = after.strip_prefix("assistant").unwrap_or(after);
    }
    if steps.is_empty() {
        return Err("an empty output".into());
    }
    let mut t = Trace::new(run, steps);
    t.run.source_format = LogFormat::Verl.name().to_owned();
    Ok(t)
}

/// A tool call and its answer. The model wrote the call (kept as the raw code); a code tool
/// ran its `code` argument (the executed code).
fn call_step(call: &str, answer: String) -> Step {
    let parsed: Value = serde_json::from_str(call).unwrap_or(Value::Null);
    let executed = parsed
        .pointer("/arguments/code")
        .and_then(Value::as_str)
        .map_or_else(|| call.to_owned(), str::to_owned);
    let failed = answer.starts_with("Error") || answer.contains("Code execution error");
    // CodeVision's tool answers a call that worked with its one result image; the decode
    // dropped the image, the answer's words say it was there.
    let returned = !failed && answer.starts_with("Here is the processed image");
    tool_step(
        ToolCall {
            call: call.to_owned(),
            ran: executed,
            error: failed.then(|| answer.lines().next().unwrap_or_default().to_owned()),
            text_result: Some(answer.clone()),
            answer,
        },
        // The decode dropped the image; the step still says one came back.
        if returned {
            vec![TraceImage::default()]
        } else {
            Vec::new()
        },
        None,
    )
}
