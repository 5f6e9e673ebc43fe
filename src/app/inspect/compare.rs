//! Two runs side by side (question, outcome, model, each step's code), and the line diff the
//! step view uses for raw against executed code.

use egui::RichText;

use crate::trace::{Step, Trace};

pub(super) fn compare_column(ui: &mut egui::Ui, t: &Trace, parting: Option<usize>) {
    ui.strong(&t.run.id);
    ui.weak(format!(
        "{} · model {} · profile {}",
        t.run.source_format,
        t.run.model.as_deref().unwrap_or("-"),
        t.run.profile.as_deref().unwrap_or("-")
    ));
    if !t.run.decoding.is_empty() {
        let d: Vec<String> = t
            .run
            .decoding
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        ui.weak(d.join(" · "));
    }
    let answer = t.steps.iter().rev().find_map(|s| match s {
        Step::Answer { extracted, .. } => extracted.clone(),
        _ => None,
    });
    ui.label(format!(
        "{} · answer {} · ground truth {}",
        t.run.outcome.as_str(),
        answer.as_deref().unwrap_or("-"),
        t.run.ground_truth.as_deref().unwrap_or("-")
    ));
    if let Some(s) = &t.summary
        && !s.flags.is_empty()
    {
        ui.colored_label(crate::ui::WARNING, format!("flags: {}", s.flags.join(", ")));
    }
    ui.separator();
    for (i, s) in t.steps.iter().enumerate() {
        if parting == Some(i) {
            ui.colored_label(crate::ui::WARNING, "▼ the runs part here");
        }
        match s {
            Step::Generate { text, .. } => {
                ui.label(
                    RichText::new(format!("{} generate", i + 1)).color(crate::ui::box_color(i)),
                );
                ui.add(egui::Label::new(RichText::new(text).small()).wrap());
            }
            Step::Execute {
                raw_code,
                executed_code,
                error,
                outputs,
                ..
            } => {
                ui.label(
                    RichText::new(format!("{} execute · {} image(s)", i + 1, outputs.len()))
                        .color(crate::ui::box_color(i)),
                );
                let code = if executed_code.is_empty() {
                    raw_code
                } else {
                    executed_code
                };
                ui.add(egui::Label::new(RichText::new(code).monospace().small()).wrap());
                if let Some(e) = error {
                    ui.colored_label(ui.visuals().error_fg_color, e);
                }
                for o in outputs {
                    if let Some(r) = o.source_rect {
                        ui.weak(format!(
                            "from [{:.0}, {:.0}, {:.0}, {:.0}]",
                            r[0], r[1], r[2], r[3]
                        ));
                    }
                }
            }
            Step::Answer { extracted, .. } => {
                ui.label(format!(
                    "{} answer: {}",
                    i + 1,
                    extracted.as_deref().unwrap_or("-")
                ));
            }
        }
    }
}

pub(super) fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    line.chars().take(60).collect()
}

/// A line diff: common lines with "  ", removed "- ", added "+ " (longest common subsequence).
pub fn line_diff(a: &str, b: &str) -> Vec<String> {
    let x: Vec<&str> = a.lines().collect();
    let y: Vec<&str> = b.lines().collect();
    let (n, m) = (x.len(), y.len());
    if n * m > 4_000_000 {
        return vec![format!("(code too long to compare: {n} and {m} lines)")];
    }
    let mut l = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            l[i][j] = if x[i] == y[j] {
                l[i + 1][j + 1] + 1
            } else {
                l[i + 1][j].max(l[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n && j < m {
        if x[i] == y[j] {
            out.push(format!("  {}", x[i]));
            i += 1;
            j += 1;
        } else if l[i + 1][j] >= l[i][j + 1] {
            out.push(format!("- {}", x[i]));
            i += 1;
        } else {
            out.push(format!("+ {}", y[j]));
            j += 1;
        }
    }
    out.extend(x[i..].iter().map(|l| format!("- {l}")));
    out.extend(y[j..].iter().map(|l| format!("+ {l}")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_diff_marks_changes() {
        let d = line_diff("a\ncv.resize\nc", "a\ncv2.resize\nc");
        assert_eq!(d, vec!["  a", "- cv.resize", "+ cv2.resize", "  c"]);
    }
}
