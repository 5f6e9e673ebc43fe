//! Pixel Reasoner: the conversations its evaluation dumps (`curiosity_driven_rl/openrlhf/
//! trainer/ppo_utils/experience_maker.py`, the multi-turn loop of `_generate_vllm` with
//! `training_mode` `eval_only` or `train` on an evaluation pass). Per question, the folder
//! `{ckpt_path}/logs/dumps_iter{N}/{qid}/` holds:
//! - `conv.json`: `json.dump([conversation, prompt, str(images)])`, the conversation as chat
//!   messages whose content is a list of parts (`{"type": "text", "text"}` and
//!   `{"type": "image", "image": PATH}`, the first image with the `min_pixels`/`max_pixels`
//!   it was read at);
//! - `iter{k}.jpg`: the crop of round k, as the model got it back (resized by `smart_resize`),
//!   named in the next user message "Here is the cropped image (Image Size: WxH):".
//!
//! A turn's last `<tool_call>` runs (`parse_last_tool`). `crop_image_normalized` cuts
//! `bbox_2d` from image `target_image` (1 = the original as the model saw it, 2.. the crops
//! so far), by [`crate::trace::provenance::pixel_reasoner_rect`]; crops of crops are placed
//! back on the original through the crop they were cut from. A dump copied off the training
//! machine names paths that are not here: a crop is looked for beside `conv.json`, the
//! original with `--images DIR`. Video runs (`select_frames`) are read as text and crops; their
//! crops are not placed, as the frames they target are not in the dump.

use super::*;
use crate::trace::provenance::pixel_reasoner_rect;

/// The pixel bounds the evaluation reads the original at when the dump does not say
/// (`eval_minpixel`, `eval_maxpixel`: 256 and 8000 patches of 28x28).
const MIN_PIXELS: u64 = 256 * 28 * 28;
const MAX_PIXELS: u64 = 8000 * 28 * 28;

/// A `conv.json`, a question's folder, or a `dumps_iter{N}` folder of question folders.
pub(super) fn read_pixel_reasoner(path: &Path) -> Result<Loaded, TraceError> {
    let mut loaded = Loaded::default();
    let conv = if path.is_dir() {
        path.join("conv.json")
    } else {
        path.to_owned()
    };
    if conv.is_file() {
        read_conv(&conv, &mut loaded)?;
        return Ok(loaded);
    }
    let mut convs: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io_err(path))?
        .flatten()
        .map(|e| e.path().join("conv.json"))
        .filter(|p| p.is_file())
        .collect();
    convs.sort();
    if convs.is_empty() {
        return Err(TraceError::Format {
            path: path.to_owned(),
            message: "no Pixel Reasoner dump here (no question folder holds a conv.json)".into(),
        });
    }
    for c in convs {
        read_conv(&c, &mut loaded)?;
    }
    Ok(loaded)
}

/// Whether `dir` is a folder of Pixel Reasoner question folders.
pub(super) fn is_dump_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().join("conv.json").is_file())
    })
}

/// A crop's path as the dump names it, or the file of that name beside `conv.json` when the
/// dump was copied from elsewhere.
fn beside(dir: &Path, named: &Path) -> PathBuf {
    if named.is_file() {
        return named.to_owned();
    }
    match named.file_name() {
        Some(n) if dir.join(n).is_file() => dir.join(n),
        _ => named.to_owned(),
    }
}

fn size_of(path: &Path) -> Option<(f64, f64)> {
    let probe = crate::imagery::probe_file(path, crate::imagery::PixelBudget::DEFAULT).ok()?;
    Some((f64::from(probe.size.width), f64::from(probe.size.height)))
}

/// "Image Size: 812x644" in a tool response.
fn stated_size(text: &str) -> Option<(f64, f64)> {
    let rest = &text[text.find("Image Size:")? + "Image Size:".len()..];
    let dims: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == 'x')
        .collect();
    let (w, h) = dims.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// An image of the run: its rectangle on the original and its size as the tool held it.
type Frame = ([f64; 4], (f64, f64));

fn read_conv(conv: &Path, loaded: &mut Loaded) -> Result<(), TraceError> {
    let dir = conv.parent().unwrap_or(Path::new(".")).to_owned();
    let bytes = std::fs::read(conv).map_err(io_err(conv))?;
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| TraceError::Format {
        path: conv.to_owned(),
        message: format!("not JSON: {e}"),
    })?;
    // `[conversation, prompt, str(images)]`; a bare conversation is read too.
    let msgs = match doc.get(0) {
        Some(Value::Array(m)) => m.clone(),
        _ => doc.as_array().cloned().unwrap_or_default(),
    };
    if !msgs.iter().any(|m| m.get("role").is_some()) {
        loaded.problems.push(Problem {
            file: conv.to_owned(),
            line: 0,
            message: "not a Pixel Reasoner conversation (no chat messages)".into(),
        });
        return Ok(());
    }
    let mut run = Run {
        id: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ..Default::default()
    };
    let mut frames: Vec<Option<Frame>> = Vec::new();
    // A video's frames (and frames picked by `select_frames`) join the images the model can
    // target in ways the dump does not record: no crop after them is placed.
    let mut placeable = true;
    let mut steps = Vec::new();
    // The tool call of the last assistant turn, waiting for its response.
    let mut pending: Option<String> = None;
    let mut asked = false;
    for m in &msgs {
        let parts = m.get("content").unwrap_or(&Value::Null);
        let (text, images) = content(parts);
        match role(m) {
            "user" if !asked => {
                asked = true;
                let q = text.replace("<image>", "");
                // The instruction the evaluation appends to every question.
                let q = q
                    .split("\n\nPlease reason step by step")
                    .next()
                    .unwrap_or("");
                run.question = bare_question(q).to_owned();
                let first = parts.as_array().and_then(|p| {
                    p.iter()
                        .find(|x| x.get("type").and_then(Value::as_str) == Some("image"))
                });
                let bound = |k: &str, d: u64| first.and_then(|f| f.get(k)?.as_u64()).unwrap_or(d);
                let (lo, hi) = (
                    bound("min_pixels", MIN_PIXELS),
                    bound("max_pixels", MAX_PIXELS),
                );
                placeable = !parts.as_array().is_some_and(|p| {
                    p.iter()
                        .any(|x| x.get("type").and_then(Value::as_str) == Some("video"))
                });
                run.images = images.into_iter().take(1).collect();
                let size = run
                    .images
                    .first()
                    .and_then(|i| i.path.as_deref())
                    .and_then(size_of);
                frames.push(size.and_then(|(w, h)| {
                    let seen = crate::imagery::model_eye::smart_resize_by(
                        crate::geometry::ImageSize::new(w as u32, h as u32),
                        28,
                        lo,
                        hi,
                    )
                    .ok()?;
                    Some((
                        [0.0, 0.0, w, h],
                        (f64::from(seen.width), f64::from(seen.height)),
                    ))
                }));
            }
            "user" => {
                let Some(call) = pending.take() else { continue };
                placeable &= !call.contains("\"select_frames\"");
                steps.push(crop_step(
                    &dir,
                    &call,
                    &text,
                    images,
                    &mut frames,
                    placeable,
                ));
            }
            "assistant" => {
                let call = text
                    .rfind("<tool_call>")
                    .and_then(|at| tags::between(&text[at..], "<tool_call>", "</tool_call>"))
                    .map(|c| c.trim().to_owned());
                let stop = call.as_ref().map(|_| "</tool_call>".to_owned());
                let boxed = call.is_none() && text.contains("\\boxed{");
                let final_text = text.clone();
                push_text(&mut steps, text, stop);
                if boxed && !final_text.contains("<answer>") {
                    steps.push(Step::Answer {
                        extracted: Some(tags::unbox(&final_text).to_owned()),
                        text: final_text,
                        matches_ground_truth: None,
                    });
                }
                pending = call;
            }
            _ => {}
        }
    }
    if steps.is_empty() {
        loaded.problems.push(Problem {
            file: conv.to_owned(),
            line: 0,
            message: "no assistant turns".into(),
        });
        return Ok(());
    }
    let mut t = Trace::new(run, steps);
    t.run.source_format = LogFormat::PixelReasoner.name().to_owned();
    loaded.traces.push(t);
    Ok(())
}

/// The step of one tool call and the user message that answered it; a crop that worked joins
/// `frames` as the next image the model can target.
fn crop_step(
    dir: &Path,
    call: &str,
    response: &str,
    images: Vec<TraceImage>,
    frames: &mut Vec<Option<Frame>>,
    placeable: bool,
) -> Step {
    let observation = response.replace("<image>", "").trim().to_owned();
    let parsed: Value = serde_json::from_str(call).unwrap_or(Value::Null);
    let name = parsed.get("name").and_then(Value::as_str).unwrap_or("");
    let output = images
        .into_iter()
        .next()
        .and_then(|i| i.path)
        .map(|p| beside(dir, &p));
    let failed = observation.contains("Execution error");
    let mut rect = None;
    let mut error = failed.then(|| observation.clone());
    if name == "crop_image_normalized" && !failed {
        let b = parsed.pointer("/arguments/bbox_2d").and_then(bbox);
        let target = parsed
            .pointer("/arguments/target_image")
            .and_then(Value::as_f64)
            .map(|t| t as usize);
        let frame = target
            .and_then(|t| t.checked_sub(1))
            .and_then(|i| frames.get(i).copied().flatten());
        rect = match (b, frame) {
            (Some(b), Some((src, seen))) if placeable => pixel_reasoner_rect(b, src, seen).ok(),
            _ => None,
        };
        let seen = stated_size(&observation).or_else(|| output.as_deref().and_then(size_of));
        // The crop is the next image the model may target, placed or not.
        frames.push(rect.zip(seen));
        if output.is_none() {
            error = Some("the dump names no crop image".into());
        }
    }
    tool_step(
        ToolCall {
            call: call.to_owned(),
            ran: call.to_owned(),
            answer: observation,
            error,
            text_result: None,
        },
        output
            .filter(|_| !failed)
            .into_iter()
            .map(TraceImage::at)
            .collect(),
        rect,
    )
}
