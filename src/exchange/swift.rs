//! ms-swift JSONL: a grounding line per labelled box (`<ref-object>` / `<bbox>` placeholders,
//! `objects` with `ref`, `bbox` in original pixels and `bbox_type: "real"`), then a plain
//! question/answer line per QA item.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use super::paths::Paths;
use super::select::Selection;
use super::thyme_rl::prompt_and_solution;
use super::{
    ExchangeError, ExportOptions, ExportReport, Progress, json_line, tick, write_atomically,
};

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct Objects<'a> {
    #[serde(rename = "ref")]
    refs: [&'a str; 1],
    bbox: [[f64; 4]; 1],
    bbox_type: &'static str,
}

#[derive(Serialize)]
struct GroundingLine<'a> {
    messages: [Message<'a>; 2],
    images: [&'a str; 1],
    objects: Objects<'a>,
}

#[derive(Serialize)]
struct QaLine<'a> {
    messages: [Message<'a>; 2],
    images: [&'a str; 1],
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
    let total = selection.items.len();
    write_atomically(out, |w| {
        for (n, item) in selection.items.iter().enumerate() {
            tick(n, total, progress, cancel)?;
            if item.regions.is_empty() && item.questions.is_empty() {
                continue;
            }
            let Some(path) = paths.path_or_leave_out(item.image, report) else {
                continue;
            };
            report.images += 1;
            for r in &item.regions {
                let label = r.label.trim();
                if label.is_empty() {
                    report.leave_out(
                        || format!("box {}", r.id),
                        "box without a label (grounding needs the words that name it)",
                    );
                    continue;
                }
                let line = GroundingLine {
                    messages: [
                        Message {
                            role: "user",
                            content: "<image>Find <ref-object> in the image.",
                        },
                        Message {
                            role: "assistant",
                            content: "<bbox>",
                        },
                    ],
                    images: [&path],
                    objects: Objects {
                        refs: [label],
                        bbox: [[r.rect.x0, r.rect.y0, r.rect.x1, r.rect.y1]],
                        bbox_type: "real",
                    },
                };
                json_line(w, &line, out)?;
                report.boxes += 1;
                report.records += 1;
            }
            for q in &item.questions {
                let (prompt, solution) = prompt_and_solution(q, options);
                let user = format!("<image>{prompt}");
                let line = QaLine {
                    messages: [
                        Message {
                            role: "user",
                            content: &user,
                        },
                        Message {
                            role: "assistant",
                            content: &solution,
                        },
                    ],
                    images: [&path],
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
