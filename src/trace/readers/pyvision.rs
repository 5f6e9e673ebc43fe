//! PyVision: interpreter results as execute steps. Its writer (`inference_engine/
//! vis_inference_demo_gpt.py`, `main()`) dumps an indented JSON array of
//! `{id, question, response, messages, image_paths, ground_truth}`; the messages carry images
//! as data URLs between `<image_clue_i>` tags and the model's turns as lists of text parts.

use super::*;

pub(super) fn pyvision(v: &Value, _base: &Path) -> Result<Trace, String> {
    let msgs = messages(v).ok_or("no messages")?;
    let mut run = Run {
        id: match v.get("id") {
            Some(Value::Number(n)) => n.to_string(),
            _ => str_field(v, &["id"]).unwrap_or("").to_owned(),
        },
        ground_truth: str_field(v, &["ground_truth", "answer", "solution"]).map(str::to_owned),
        question: str_field(v, &["question"]).unwrap_or("").trim().to_owned(),
        images: image_list(v),
        ..Default::default()
    };
    let mut asked = false;
    let mut steps = Vec::new();
    let mut pending: Option<String> = None;
    for m in msgs {
        let (text, images) = content(m.get("content").unwrap_or(&Value::Null));
        match role(m) {
            "user" if !asked => {
                asked = true;
                if run.question.is_empty() {
                    run.question = text.replace("<image>", "").trim().to_owned();
                }
                if run.images.is_empty() {
                    run.images = images;
                }
            }
            "user" => {
                if let Some(result) = tags::between(&text, "<interpreter>", "</interpreter>") {
                    let code = pending.take().unwrap_or_default();
                    let result = result.replace("<image>", "").trim().to_owned();
                    let error = (result.contains("Traceback") || result.contains("Error:"))
                        .then(|| result.clone());
                    steps.push(Step::Execute {
                        executed_code: code.clone(),
                        raw_code: code,
                        fixes: Vec::new(),
                        stdout: result.clone(),
                        stderr: String::new(),
                        text_result: images.is_empty().then_some(result),
                        error,
                        outputs: images
                            .into_iter()
                            .map(|image| StepImage {
                                image,
                                ..Default::default()
                            })
                            .collect(),
                        ms: None,
                        fed_back: true,
                        edited_from: None,
                    });
                }
            }
            "assistant" => {
                pending = tags::first_code(&text).or_else(|| {
                    tags::between(&text, "```python", "```")
                        .map(|c| c.trim_matches('\n').to_owned() + "\n")
                });
                push_text(&mut steps, text, None);
            }
            _ => {}
        }
    }
    if steps.is_empty() {
        return Err("no assistant turns".into());
    }
    Ok(Trace::new(run, steps))
}
