//! Thyme RL JSONL: one line per QA item, as Thyme's RL trainer reads it (`messages` with the
//! profile's system prompt and the user turn, `images`, `solution`, `question`), plus our own
//! keys, which that trainer ignores.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use super::paths::Paths;
use super::select::{Selection, linked};
use super::{
    ChoiceStyle, ExchangeError, ExportOptions, ExportReport, Progress, json_line, tick,
    write_atomically,
};
use crate::agent::profile::option_letter;
use crate::dataset::{Answer, Question};

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct Line<'a> {
    messages: [Message<'a>; 2],
    images: [&'a str; 1],
    solution: &'a str,
    question: &'a str,
    id: String,
    /// Linked boxes as [x0, y0, x1, y1] in original pixels.
    bbox: Vec<[f64; 4]>,
    bbox_area_ratio: Vec<f64>,
    category: &'a str,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<&'a [String]>,
    image_size: [u32; 2],
    annotator: Option<&'a str>,
    review: &'static str,
    /// The SHA-256 of the system prompt in `messages[0]`.
    system_prompt_sha256: &'a str,
}

/// The question part of the user turn and the solution, by the choice style.
pub fn prompt_and_solution(q: &Question, options: &ExportOptions) -> (String, String) {
    match &q.answer {
        Answer::Open { text } => (q.text.clone(), text.clone()),
        Answer::Choice {
            options: opts,
            correct,
        } => {
            let prompt = options.profile.choice_question(&q.text, opts);
            let solution = match options.choices {
                ChoiceStyle::Letters => option_letter(*correct).to_string(),
                ChoiceStyle::Text => q.answer.solution().to_owned(),
            };
            (prompt, solution)
        }
    }
}

pub fn write(
    selection: &Selection<'_>,
    options: &ExportOptions,
    out: &Path,
    report: &mut ExportReport,
    progress: Progress<'_>,
    cancel: &AtomicBool,
) -> Result<(), ExchangeError> {
    let base = out.parent().unwrap_or(Path::new("."));
    let mut paths = Paths::new(options.paths, base);
    let system = options.profile.system.as_str();
    let system_sha = options.profile.system_sha256();
    let total = selection.items.len();
    write_atomically(out, |w| {
        for (n, item) in selection.items.iter().enumerate() {
            tick(n, total, progress, cancel)?;
            if item.questions.is_empty() {
                continue;
            }
            let Some(path) = paths.path_or_leave_out(item.image, report) else {
                continue;
            };
            report.images += 1;
            report.boxes += item.regions.len() as u64;
            let size = item.image.size;
            for q in &item.questions {
                let (prompt, solution) = prompt_and_solution(q, options);
                let user = options.profile.user_turn(&prompt, &path, size);
                let boxes = linked(item, q);
                let line = Line {
                    messages: [
                        Message {
                            role: "system",
                            content: system,
                        },
                        Message {
                            role: "user",
                            content: &user,
                        },
                    ],
                    images: [&path],
                    solution: &solution,
                    question: &q.text,
                    id: q.id.to_string(),
                    bbox: boxes
                        .iter()
                        .map(|r| [r.rect.x0, r.rect.y0, r.rect.x1, r.rect.y1])
                        .collect(),
                    bbox_area_ratio: boxes.iter().map(|r| r.rect.area_ratio(size)).collect(),
                    category: &q.category,
                    kind: q.answer.kind_name(),
                    options: match &q.answer {
                        Answer::Choice { options, .. } => Some(options),
                        Answer::Open { .. } => None,
                    },
                    image_size: [size.width, size.height],
                    annotator: selection.annotator(&q.id.0),
                    review: crate::dataset::review::review_word(q.review.as_ref()),
                    system_prompt_sha256: &system_sha,
                };
                json_line(w, &line, out)?;
                report.questions += 1;
                report.records += 1;
            }
        }
        progress(total, total);
        Ok(())
    })?;
    report.files_copied = paths.copied;
    Ok(())
}
