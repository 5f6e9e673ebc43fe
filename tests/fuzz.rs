//! Fuzzing on stable Rust: generated and mutated inputs for the three parsers that read what
//! other programs write. Each target runs for `THYME_FUZZ_SECONDS` (2 by default, so the suite
//! stays quick; `THYME_FUZZ_SECONDS=600 cargo nextest run --release --test fuzz` is the long
//! run) and fails if any input panics; such inputs are kept in `target/fuzz-crashes/`.
//!
//! - the trace readers: real-shaped lines of every log format, mutated as bytes and as JSON
//!   (values swapped for other types, keys dropped, text spliced between samples);
//! - the model-output parser: Thyme's tags, fences, `\boxed{}` and splices, built from their
//!   pieces and random text, through every function that reads model text;
//! - the chat server's event stream: chunks, `[DONE]`, comments, broken JSON, invalid UTF-8.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use thyme_studio::rng::Rng;
use thyme_studio::trace::readers::{LogFormat, read};
use thyme_studio::trace::{tags, thyme_row};

fn budget() -> Duration {
    let s = std::env::var("THYME_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(s)
}

/// Run `case` on generated inputs until the budget is spent; every panic is kept and fails
/// the test. Returns how many inputs ran.
fn fuzz(target: &str, seed: u64, mut make: impl FnMut(&mut Rng) -> Vec<u8>, case: impl Fn(&[u8])) {
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let mut runs = 0u64;
    let mut crashes = Vec::new();
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    while started.elapsed() < budget() {
        let input = make(&mut rng);
        runs += 1;
        if catch_unwind(AssertUnwindSafe(|| case(&input))).is_err() {
            crashes.push(input);
            if crashes.len() >= 20 {
                break;
            }
        }
    }
    std::panic::set_hook(quiet);
    if !crashes.is_empty() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-crashes");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, c) in crashes.iter().enumerate() {
            std::fs::write(dir.join(format!("{target}-{i}")), c).unwrap();
        }
    }
    eprintln!(
        "{target}: {runs} inputs in {:.0} s, {} panic(s)",
        started.elapsed().as_secs_f64(),
        crashes.len()
    );
    assert!(
        crashes.is_empty(),
        "{target}: {} input(s) panicked, kept in target/fuzz-crashes/",
        crashes.len()
    );
}

/// Byte-level mutations: flip, insert, delete, duplicate, or splice from `other`.
fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, other: &[u8]) {
    for _ in 0..=rng.range(0, 4) {
        let len = data.len() as u32;
        match rng.range(0, 6) {
            0 if len > 0 => {
                let i = rng.range(0, len) as usize;
                data[i] ^= 1 << rng.range(0, 8);
            }
            1 => {
                let i = rng.range(0, len + 1) as usize;
                data.insert(i, *rng.pick(b"{}[]\":,\\0aZ\n\x00\xff<>/"));
            }
            2 if len > 1 => {
                let a = rng.range(0, len) as usize;
                let b = (a + rng.range(1, 64) as usize).min(data.len());
                data.drain(a..b);
            }
            3 if len > 1 => {
                let a = rng.range(0, len) as usize;
                let b = (a + rng.range(1, 64) as usize).min(data.len());
                let piece = data[a..b].to_vec();
                let at = rng.range(0, data.len() as u32) as usize;
                data.splice(at..at, piece);
            }
            4 if !other.is_empty() => {
                let a = rng.range(0, other.len() as u32) as usize;
                let b = (a + rng.range(1, 256) as usize).min(other.len());
                let at = rng.range(0, len + 1) as usize;
                data.splice(at..at, other[a..b].iter().copied());
            }
            _ => data.truncate(rng.range(0, len + 1) as usize),
        }
    }
}

/// A random JSON value, a few levels deep.
fn random_value(rng: &mut Rng, depth: u32) -> Value {
    match rng.range(0, if depth > 2 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.range(0, 2) == 1),
        2 => json!(rng.range(0, 5000) as f64 - 2500.5),
        3 => json!(random_text(rng)),
        4 => json!(rng.range(0, 100_000)),
        5 => Value::Array(
            (0..rng.range(0, 4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "role",
                "content",
                "messages",
                "type",
                "text",
                "image",
                "image_url",
                "url",
                "images",
                "question",
                "answer",
                "bbox_2d",
                "arguments",
                "steps",
                "run",
            ];
            Value::Object(
                (0..rng.range(0, 5))
                    .map(|_| (rng.pick(&keys).to_string(), random_value(rng, depth + 1)))
                    .collect(),
            )
        }
    }
}

/// JSON-level mutations: a value replaced by another type, a key dropped, an array emptied.
fn mutate_json(rng: &mut Rng, v: &mut Value) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let k = rng.pick(&keys).clone();
            match rng.range(0, 3) {
                0 => {
                    map.remove(&k);
                }
                1 => {
                    map.insert(k, random_value(rng, 0));
                }
                _ => {
                    if let Some(inner) = map.get_mut(&k) {
                        mutate_json(rng, inner);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let i = rng.range(0, items.len() as u32) as usize;
            if rng.range(0, 3) == 0 {
                items.remove(i);
            } else {
                mutate_json(rng, &mut items[i]);
            }
        }
        other => *other = random_value(rng, 1),
    }
}

const PIECES: &[&str] = &[
    "<think>",
    "</think>",
    "<code>",
    "</code>",
    "<answer>",
    "</answer>",
    "<sandbox_output>",
    "</sandbox_output>",
    "```python\n",
    "```",
    "\\boxed{",
    "}",
    "{",
    "<image>",
    "\n",
    " ",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<interpreter>",
    "</interpreter>",
    "<grounding>",
    "</grounding>",
    "### User Image Path:**",
    "img.crop((1, 2, 3, 4))",
    "é",
    "😀",
    "\u{0}",
    "B.",
    "42",
];

fn random_text(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.range(0, 24) {
        if rng.range(0, 3) == 0 {
            let n = rng.range(1, 6);
            for _ in 0..n {
                s.push(char::from_u32(rng.range(0x20, 0x2FF)).unwrap_or('?'));
            }
        } else {
            s.push_str(PIECES[rng.range(0, PIECES.len() as u32) as usize]);
        }
    }
    s
}

/// One line of each log format, shaped as their writers write them.
fn seed_lines() -> Vec<(LogFormat, Value)> {
    let turn = "<think>zoom</think><code>\n```python\nimg.crop((1, 2, 3, 4)).save('a.png')\n```\n</code><sandbox_output><image></sandbox_output><think>ok</think> <answer>\\boxed{B}</answer>";
    vec![
        (
            LogFormat::ThymeSft,
            json!({"image": ["a.jpg", "b.png"], "question": "<image>\nWhat?", "response": turn, "answer": "B"}),
        ),
        (
            LogFormat::ThymeRl,
            json!({"step": 3, "prompt": "<image>\nWhat?\n### User Image Path:** \"/a.jpg\"", "completion": turn, "FMTORM": 1.0, "VQAORM": 0.0, "solution": "<answer>B</answer>", "images": ["a.jpg"]}),
        ),
        (
            LogFormat::DeepEyes,
            json!({"image": "a.jpg", "question": "What?", "answer": "red", "pred_ans": "red", "status": "success", "pred_output": [
                {"role": "system", "content": "image_zoom_in_tool"},
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,"}}, {"type": "text", "text": "Q"}]},
                {"role": "assistant", "content": "<tool_call>{\"name\": \"image_zoom_in_tool\", \"arguments\": {\"bbox_2d\": [1, 2, 30, 40]}}</tool_call>"},
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,"}}, {"type": "text", "text": "go on"}]},
                {"role": "assistant", "content": "<answer>red</answer>"}
            ]}),
        ),
        (
            LogFormat::ThymeRl,
            json!({"step": ["4", "4"], "prompt": ["<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<|vision_start|>[151655 * 4]<|vision_end|>What?\n### User Image Path:** \"/a.jpg\"<|im_end|>\n<|im_start|>assistant\n", "x"], "completion": [turn, "<answer>A</answer>"], "VQAORM": [1.0, 0.0], "advantages": [0.5, -0.5]}),
        ),
        (
            LogFormat::ChainOfFocus,
            json!({"image": "vstar/a.jpg", "question": "What?", "answer": "A", "pred_ans": "<answer>A</answer>", "status": "success", "pred_output": [
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,base64_image"}}, {"type": "text", "text": "Q"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "<tool_call>{\"name\": \"image_zoom_in_tool\", \"arguments\": {\"bbox_2d\": [1, 2, 30, 40]}}</tool_call>"}]},
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,base64_image"}}, {"type": "text", "text": "go on"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "<answer>A</answer>"}]}
            ]}),
        ),
        (
            LogFormat::DeepEyesV2,
            json!({"index": "3", "question": "What?", "answer": "A", "prediction": "A", "image_path_list": "['/data/a.jpg']",
                "raw_response": "[{'role': 'system', 'content': 'S'}, {'role': 'user', 'content': [{'type': 'image_url', 'image_url': {'url': 'data:image/jpeg;base64'}}, {'type': 'text', 'text': \"What?\\n\\nYou must put your answer\"}]}, {'role': 'assistant', 'content': '<code>\\n```python\\nprint(image_1.size)\\n```\\n</code>'}, {'role': 'user', 'content': [{'type': 'text', 'text': 'Code execution result:\\nstdout:\\n```\\n(4, 3)\\n```\\n\\nstderr:\\n```\\n\\n```\\n\\nImages:\\n'}]}, {'role': 'assistant', 'content': '<answer>A</answer>'}]"}),
        ),
        (
            LogFormat::PixelReasoner,
            json!([[
                {"role": "user", "content": [{"image": "a.jpg", "type": "image", "min_pixels": 200704, "max_pixels": 6272000}, {"text": "Q", "type": "text"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "<tool_call>\n{\"name\": \"crop_image_normalized\", \"arguments\": {\"bbox_2d\": [0.1, 0.2, 0.5, 0.6], \"target_image\": 1}}\n</tool_call>"}]},
                {"role": "user", "content": [{"type": "text", "text": "\nHere is the cropped image (Image Size: 812x644):"}, {"type": "image", "image": "/x/iter0.jpg"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "\\boxed{B}"}]}
            ], "<|im_start|>user\nQ<|im_end|>", "[<PIL.Image.Image image mode=RGB size=28x28 at 0x7F>]"]),
        ),
        (
            LogFormat::Verl,
            json!({"input": "system\nS\nuser\nWhat?\nassistant\n", "output": "<think>t</think>\n<tool_call>\n{\"name\": \"code_image_tool\", \"arguments\": {\"code\": \"result = image.crop((1, 2, 30, 40))\", \"image_index\": 0}}\n</tool_call>\nuser\n<tool_response>\nHere is the processed image.\n</tool_response>\nassistant\n<answer>A</answer>", "score": 1.0, "step": 3, "acc": 1.0}),
        ),
        (
            LogFormat::PyVision,
            json!({"messages": [
                {"role": "user", "content": [{"type": "image", "image": "a.jpg"}, {"type": "text", "text": "Q"}]},
                {"role": "assistant", "content": "```python\nprint(1)\n```"},
                {"role": "user", "content": "<interpreter>1</interpreter>"},
                {"role": "assistant", "content": "<answer>1</answer>"}
            ]}),
        ),
        (
            LogFormat::Ours,
            json!({"version": 1, "run": {"id": "r", "question": "Q", "images": [{"path": "a.jpg"}]}, "steps": [
                {"kind": "generate", "text": turn},
                {"kind": "execute", "raw_code": "x", "outputs": [{"image": {"path": "b.png"}, "source_rect": [1.0, 2.0, 3.0, 4.0]}], "edited_from": "y"},
                {"kind": "answer", "text": "<answer>B</answer>", "extracted": "B"}
            ]}),
        ),
    ]
}

#[test]
fn the_trace_readers_never_panic() {
    let seeds = seed_lines();
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<u8> = seeds
        .iter()
        .flat_map(|(_, v)| v.to_string().into_bytes())
        .collect();
    fuzz(
        "readers",
        1,
        |rng| {
            // One file of a dozen mutated lines; the first byte picks the format to read it as.
            let mut file = vec![rng.range(0, seeds.len() as u32) as u8];
            for _ in 0..12 {
                let (_, v) = rng.pick(&seeds);
                let mut v = v.clone();
                let line = if rng.range(0, 2) == 0 {
                    mutate_json(rng, &mut v);
                    v.to_string().into_bytes()
                } else {
                    let mut b = v.to_string().into_bytes();
                    mutate_bytes(rng, &mut b, &all);
                    b
                };
                file.extend(line);
                file.push(b'\n');
            }
            file
        },
        |input| {
            let Some((&which, body)) = input.split_first() else {
                return;
            };
            let path = dir.path().join(format!("log-{which}.jsonl"));
            std::fs::write(&path, body).unwrap();
            let format = seeds[which as usize % seeds.len()].0;
            let _ = LogFormat::detect(&path);
            let _ = thyme_studio::trace::pyliteral::parse(&String::from_utf8_lossy(body));
            let _ =
                thyme_studio::trace::pyliteral::parse_list_prefix(&String::from_utf8_lossy(body));
            if let Ok(loaded) = read(&path, format) {
                for mut t in loaded.traces {
                    thyme_studio::trace::provenance::fill(&mut t);
                    let _ = thyme_studio::trace::lint::lint(&t);
                    let _ = thyme_studio::trace::search::find_in_trace(&t, "b");
                }
            }
            if format == LogFormat::Ours {
                let mut rows = Vec::new();
                let _ = thyme_studio::trace::io::index_jsonl(
                    &path,
                    &mut |r| rows.extend(r),
                    &AtomicBool::new(false),
                );
            }
        },
    );
}

#[test]
fn the_model_output_parser_never_panics() {
    fuzz(
        "model-output",
        2,
        |rng| random_text(rng).into_bytes(),
        |input| {
            let text = String::from_utf8_lossy(input);
            let _ = tags::first_code(&text);
            let _ = tags::extract_answer(&text);
            let _ = tags::unbox(&text);
            let _ = tags::split_turn(&text);
            let _ = tags::check_format(&text);
            let _ = tags::answers_match(&text, "B");
            let _ = tags::unfence(&text);
            if let Some(code) = tags::first_code(&text) {
                let _ = tags::replace_first_code(&text, &code);
            }
            let _ = tags::replace_first_code(&text, "x = 1");
            let _ = thyme_row::bare_question(&text);
            let _ = thyme_row::solution(&text);
            let _ = thyme_studio::trace::search::contains_ignore_case(input, "crop(");
        },
    );
}

#[test]
fn the_chat_stream_parser_never_panics() {
    fuzz(
        "chat-stream",
        3,
        |rng| {
            let mut out = Vec::new();
            for _ in 0..rng.range(0, 12) {
                match rng.range(0, 7) {
                    0 => out.extend(b"data: [DONE]\n"),
                    1 => out.extend(b": keep-alive\n\n"),
                    2 => {
                        let mut chunk = json!({"choices": [{"index": 0, "delta": {"content": random_text(rng)}, "finish_reason": null}]});
                        if rng.range(0, 3) == 0 {
                            mutate_json(rng, &mut chunk);
                        }
                        out.extend(format!("data: {chunk}\n\n").into_bytes());
                    }
                    3 => out.extend(format!("data: {}\n", random_value(rng, 0)).into_bytes()),
                    4 => out.extend([0xff, 0xfe, b'\n']),
                    5 => out.extend(b"event: message\r\n"),
                    _ => {
                        let mut b = format!(
                            "data: {{\"choices\": [{{\"text\": \"{}\"}}]}}\n",
                            random_text(rng)
                        )
                        .into_bytes();
                        mutate_bytes(rng, &mut b, b"data: {}");
                        out.extend(b);
                    }
                }
            }
            out
        },
        |input| {
            let mut reader = Cursor::new(input);
            let _ = thyme_studio::agent::http::read_stream(
                &mut reader,
                &mut |_| {},
                &AtomicBool::new(false),
            );
        },
    );
}

#[test]
fn a_well_formed_stream_reads_back_whole() {
    let input = "data: {\"choices\": [{\"delta\": {\"content\": \"<answer>\"}}]}\n\n: comment\ndata: {\"choices\": [{\"delta\": {\"content\": \"B</answer>\"}, \"finish_reason\": \"stop\"}]}\ndata: [DONE]\n";
    let mut seen = String::new();
    let got = thyme_studio::agent::http::read_stream(
        &mut Cursor::new(input.as_bytes()),
        &mut |p| seen.push_str(p),
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(got.text, "<answer>B</answer>");
    assert_eq!(seen, got.text);
    assert_eq!((got.tokens, got.finish.as_deref()), (2, Some("stop")));
    let bad = thyme_studio::agent::http::read_stream(
        &mut Cursor::new(b"data: {oops\n".as_slice()),
        &mut |_| {},
        &AtomicBool::new(false),
    );
    assert!(bad.unwrap_err().to_string().contains("not a stream chunk"));
}
