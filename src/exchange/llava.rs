//! LLaVA conversation JSON: one entry per image with questions (`id`, `image`,
//! `conversations` alternating `human` and `gpt`; the first human turn carries `<image>`).

use std::path::Path;
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use super::paths::Paths;
use super::select::Selection;
use super::thyme_rl::prompt_and_solution;
use super::{ExchangeError, ExportOptions, ExportReport, Progress, io_err, tick, write_atomically};

#[derive(Serialize)]
struct Turn {
    from: &'static str,
    value: String,
}

#[derive(Serialize)]
struct Entry {
    id: String,
    image: String,
    conversations: Vec<Turn>,
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
    let mut entries = Vec::new();
    for (n, item) in selection.items.iter().enumerate() {
        tick(n, total, progress, cancel)?;
        if item.questions.is_empty() {
            continue;
        }
        let Some(image) = paths.path_or_leave_out(item.image, report) else {
            continue;
        };
        let mut conversations = Vec::with_capacity(item.questions.len() * 2);
        for (i, q) in item.questions.iter().enumerate() {
            let (prompt, solution) = prompt_and_solution(q, options);
            conversations.push(Turn {
                from: "human",
                value: if i == 0 {
                    format!("<image>\n{prompt}")
                } else {
                    prompt
                },
            });
            conversations.push(Turn {
                from: "gpt",
                value: solution,
            });
            report.questions += 1;
        }
        entries.push(Entry {
            id: item.image.id.to_string(),
            image,
            conversations,
        });
        report.images += 1;
        report.boxes += item.regions.len() as u64;
        report.records += 1;
    }
    progress(total, total);
    report.files_copied = paths.copied;
    write_atomically(out, |w| {
        serde_json::to_writer(w, &entries).map_err(|e| io_err(out)(e.into()))
    })
}
