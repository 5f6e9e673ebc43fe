//! DeepEyesV2: code cells in a Jupyter kernel (`<code>```python ...```</code>`, answered by
//! "Code execution result:" with stdout, stderr and the `plt.show()` figures) and search
//! calls (`<tool_call>`, answered by `<tool_response>`). Two writers:
//! - its evaluation (`evaluation/VLMEvalKit`, `--inference-mode agent`): `VLLMAPIWrapper.
//!   generate_inner_agent` keeps the conversation with every image's data cut to
//!   `data:image/jpeg;base64`, and `infer_data_job` stores it per benchmark item as
//!   `str(list_of_messages)` in the `raw_response` column (and `str(image_path_list)` in
//!   `image_path_list`) of the prediction table `dump` writes: `.xlsx` by default
//!   (`PRED_FORMAT`), else `.tsv` or `.json`. An `.xlsx` cell holds at most 32,767
//!   characters, so a long conversation is cut: the whole messages before the cut are read
//!   and the run says where it stops.
//! - its cold-start SFT data (`cold_start/data_convert.py`, LLaMA-Factory's sharegpt form):
//!   `messages` with string contents holding `<image>` marks, and `images`, the original
//!   first and each figure after, paths made absolute against the image folder.
//!
//! The figures are renders of matplotlib figures, not crops, so the crop audit cannot make
//! them again; the runs read as traces with their code, output and figures.

use super::*;

/// What `generate_inner_agent` leaves of an image's data URL.
const CUT_DATA_URL: &str = "data:image/jpeg;base64";
/// The most characters an Excel cell holds (xlsxwriter cuts longer strings there).
pub(super) const EXCEL_CELL_MAX: usize = 32_767;

/// One record: an evaluation table row or an SFT item.
pub(super) fn deepeyes_v2(v: &Value, _base: &Path) -> Result<Trace, String> {
    let mut cut: Option<String> = None;
    let msgs: Vec<Value> = match v.get("raw_response") {
        Some(Value::String(s)) => {
            let (items, err) = crate::trace::pyliteral::parse_list_prefix(s);
            if let Some(e) = err {
                let chars = s.chars().count();
                let why = if chars >= EXCEL_CELL_MAX {
                    format!(
                        "the conversation stops after {} whole messages: its cell was cut at Excel's {EXCEL_CELL_MAX}-character limit (write the table with PRED_FORMAT=tsv or json to keep it whole)",
                        items.len()
                    )
                } else {
                    format!(
                        "the conversation stops after {} whole messages: {e}",
                        items.len()
                    )
                };
                if items.is_empty() {
                    return Err(why);
                }
                cut = Some(why);
            }
            items
        }
        Some(Value::Array(a)) => a.clone(),
        _ => messages(v)
            .cloned()
            .ok_or("no raw_response and no messages")?,
    };
    let mut images: Vec<TraceImage> = match v.get("image_path_list") {
        Some(Value::String(s)) => crate::trace::pyliteral::parse(s)
            .ok()
            .and_then(|l| l.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(Value::as_str)
            .filter(|p| !p.is_empty())
            .map(TraceImage::at)
            .collect(),
        _ => image_list(v),
    };
    images.reverse();
    let mut run = Run {
        id: str_field(v, &["id", "index"])
            .map(str::to_owned)
            .or_else(|| {
                v.get("index")
                    .filter(|i| i.is_number())
                    .map(Value::to_string)
            })
            .unwrap_or_default(),
        ground_truth: str_field(v, &["answer", "ground_truth"]).map(str::to_owned),
        question: str_field(v, &["question"]).unwrap_or("").trim().to_owned(),
        ..Default::default()
    };
    let mut asked = false;
    let mut steps = Vec::new();
    let mut pending: Option<String> = None;
    for m in &msgs {
        let (text, parts) = content(m.get("content").unwrap_or(&Value::Null));
        match role(m) {
            "user" if !asked => {
                asked = true;
                if run.question.is_empty() {
                    let q = text.replace("<image>", "");
                    let q = q.split("\n\nYou must put your answer").next().unwrap_or("");
                    run.question = q.trim().to_owned();
                }
                let n = text.matches("<image>").count().max(1);
                for _ in 0..n {
                    if let Some(i) = images.pop() {
                        run.images.push(i);
                    }
                }
            }
            "user" | "tool" => {
                let call = pending.take().unwrap_or_default();
                let n = text.matches("<image>").count().max(parts.len());
                let figures: Vec<TraceImage> = (0..n)
                    .filter_map(|k| match parts.get(k) {
                        // The evaluation cut the data: no pixels, only the place.
                        Some(p) if p.data_url.as_deref() == Some(CUT_DATA_URL) => Some(p.clone()),
                        Some(p) if p.has_pixels() => Some(p.clone()),
                        _ => images.pop(),
                    })
                    .collect();
                steps.push(result_step(call, &text, figures));
            }
            "assistant" => {
                let (call, stop) = if let Some(code) = cell_code(&text) {
                    (Some(code), Some("</code>".to_owned()))
                } else if let Some(c) = tags::between(&text, "<tool_call>", "</tool_call>") {
                    (Some(c.trim().to_owned()), Some("</tool_call>".to_owned()))
                } else {
                    (None, None)
                };
                push_text(&mut steps, text, stop);
                pending = call;
            }
            _ => {}
        }
    }
    if steps.is_empty() {
        return Err("no assistant turns".into());
    }
    let mut t = Trace::new(run, steps);
    t.run.source_format = LogFormat::DeepEyesV2.name().to_owned();
    t.run.cut_short = cut;
    Ok(t)
}

/// The Python of a `<code>` cell: the last fenced block inside it, or the cell itself.
fn cell_code(text: &str) -> Option<String> {
    let cell = tags::between(text, "<code>", "</code>").or_else(|| {
        // The evaluation stops at `</code>` and adds it back; a turn cut before it still ran.
        text.find("<code>").map(|at| &text[at + "<code>".len()..])
    })?;
    let code = match cell.rfind("```python") {
        Some(at) => {
            let body = &cell[at + "```python".len()..];
            body.find("```").map_or(body, |end| &body[..end])
        }
        None => cell,
    };
    Some(code.trim().to_owned())
}

/// A `stdout:` or `stderr:` block of the result template.
fn block<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let after = &text[text.find(&format!("{name}:\n```"))? + name.len() + 5..];
    let body = after.strip_prefix('\n').unwrap_or(after);
    Some(body.find("```").map_or(body, |end| &body[..end]).trim_end())
}

/// The step of a code cell's or a search's result.
fn result_step(call: String, text: &str, figures: Vec<TraceImage>) -> Step {
    let is_code = text.contains("Code execution result:");
    let (stdout, stderr) = if is_code {
        (
            block(text, "stdout").unwrap_or("").to_owned(),
            block(text, "stderr").unwrap_or("").to_owned(),
        )
    } else {
        let r = tags::between(text, "<tool_response>", "</tool_response>").unwrap_or(text);
        (r.replace("<image>", "").trim().to_owned(), String::new())
    };
    let error = (is_code && (stderr.contains("Traceback") || stderr.contains("Error")))
        .then(|| stderr.lines().last().unwrap_or_default().to_owned());
    Step::Execute {
        executed_code: call.clone(),
        raw_code: call,
        fixes: Vec::<Fix>::new(),
        text_result: (!is_code && figures.is_empty()).then(|| stdout.clone()),
        stdout,
        stderr,
        error,
        outputs: figures
            .into_iter()
            .map(|image| StepImage {
                image,
                source_rect: None,
                provenance: None,
            })
            .collect(),
        ms: None,
        fed_back: true,
        edited_from: None,
    }
}
