//! The selected image's boxes and question/answer pairs, read-only.

use egui::RichText;

use crate::dataset::{Answer, Question, Region, RegionId, category, rules};
use crate::geometry::ImageSize;
use crate::imagery::model_eye;

/// Draw the boxes and questions; returns the question the person clicked, if any.
pub fn qa_panel(
    ui: &mut egui::Ui,
    size: ImageSize,
    regions: &[Region],
    questions: &[Question],
    highlighted: Option<crate::dataset::QuestionId>,
) -> Option<crate::dataset::QuestionId> {
    let mut clicked = None;
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            ui.heading(format!("Questions ({})", questions.len()));
            if questions.is_empty() {
                ui.weak("No questions on this image yet.");
            }
            for (n, q) in questions.iter().enumerate() {
                let selected = highlighted == Some(q.id);
                if ui
                    .selectable_label(selected, RichText::new(&q.text).strong())
                    .clicked()
                {
                    clicked = Some(q.id);
                }
                ui.horizontal_wrapped(|ui| {
                    ui.small(category::display_name(&q.category));
                    ui.small("·");
                    ui.small(q.answer.kind_name());
                    ui.small("·");
                    ui.small(q.status.as_str());
                    ui.small("·");
                    ui.small(format!("boxes: {}", box_numbers(regions, &q.regions)));
                });
                match &q.answer {
                    Answer::Open { text } => {
                        ui.label(format!("Answer: {text}"));
                    }
                    Answer::Choice { options, correct } => {
                        for (i, option) in options.iter().enumerate() {
                            let letter = char::from(b'A' + i as u8);
                            if i == *correct {
                                ui.label(
                                    RichText::new(format!("{letter}. {option}  (correct)"))
                                        .strong(),
                                );
                            } else {
                                ui.label(format!("{letter}. {option}"));
                            }
                        }
                    }
                }
                for problem in rules::question_errors(q) {
                    ui.colored_label(super::WARNING, problem.to_string());
                }
                if n + 1 < questions.len() {
                    ui.separator();
                }
            }
            ui.add_space(12.0);
            ui.heading(format!("Boxes ({})", regions.len()));
            let resized = model_eye::smart_resize(
                size,
                model_eye::DEFAULT_MIN_PIXELS,
                model_eye::DEFAULT_MAX_PIXELS,
            )
            .ok();
            if let Some(m) = resized {
                ui.small(format!(
                    "The model sees this image at {m} (max_pixels 12,845,056)."
                ));
            }
            for (n, r) in regions.iter().enumerate() {
                let ratio = r.rect.area_ratio(size) * 100.0;
                let text = format!(
                    "#{} {}  {:.0}x{:.0} px  {:.3} %",
                    n + 1,
                    r.label,
                    r.rect.width(),
                    r.rect.height(),
                    ratio
                );
                if rules::check_area(&r.rect, size).is_err() {
                    ui.colored_label(super::WARNING, format!("{text} (over 5 %)"));
                } else {
                    ui.colored_label(super::box_color(n), text);
                }
                if let Some(m) = resized {
                    let seen = model_eye::box_in_model_eye(&r.rect, size, m);
                    let line = format!("    model sees {:.0}x{:.0} px", seen.width, seen.height);
                    if seen.below_one_patch {
                        ui.colored_label(
                            super::WARNING,
                            format!("{line}: smaller than one 28 px patch"),
                        );
                    } else {
                        ui.small(line);
                    }
                }
            }
        });
    clicked
}

/// "1, 3" for the boxes a question links, numbered as in the box list.
fn box_numbers(regions: &[Region], linked: &[RegionId]) -> String {
    let numbers: Vec<String> = linked
        .iter()
        .map(|id| match regions.iter().position(|r| r.id == *id) {
            Some(i) => format!("#{}", i + 1),
            None => "?".to_owned(),
        })
        .collect();
    if numbers.is_empty() {
        "none".to_owned()
    } else {
        numbers.join(", ")
    }
}
