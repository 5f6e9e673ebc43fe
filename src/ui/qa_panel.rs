//! The selected image's question/answer pairs and boxes; the highlighted question is edited
//! in place (see [`super::qa_editor`]).

use crate::curate::ItemRates;
use egui::RichText;

use super::qa_editor::{FormAction, question_form};
use crate::dataset::{Answer, Category, Question, Region, RegionId, category, rules};
use crate::geometry::ImageSize;
use crate::imagery::model_eye;

/// What the panel lists: the image's boxes and questions, and the latest difficulty check's
/// rates of its questions (when the project was checked).
pub struct QaItems<'a> {
    pub regions: &'a [Region],
    pub questions: &'a [Question],
    pub difficulty: Option<&'a std::collections::BTreeMap<crate::dataset::QuestionId, ItemRates>>,
}

/// The editing side of the panel: the draft of the highlighted question and what it needs.
pub struct QaEdit<'a> {
    pub draft: &'a mut Question,
    pub categories: &'a [Category],
    pub selected_box: Option<RegionId>,
}

/// What the person did in the panel this frame.
#[derive(Debug, Default)]
pub struct QaOutput {
    pub clicked: Option<crate::dataset::QuestionId>,
    pub form: Option<FormAction>,
    pub add: bool,
    /// Open this question's check runs in Inspect.
    pub open_runs: Option<crate::dataset::QuestionId>,
}

/// Draw the questions and boxes.
pub fn qa_panel(
    ui: &mut egui::Ui,
    size: ImageSize,
    items: QaItems<'_>,
    highlighted: Option<crate::dataset::QuestionId>,
    mut edit: Option<QaEdit<'_>>,
    max_pixels: &mut u64,
) -> QaOutput {
    let QaItems {
        regions,
        questions,
        difficulty,
    } = items;
    let mut out = QaOutput::default();
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading(format!("Questions ({})", questions.len()));
                if ui.button("Add question").clicked() {
                    out.add = true;
                }
            });
            if questions.is_empty() {
                ui.weak("No questions on this image yet.");
            }
            for (n, q) in questions.iter().enumerate() {
                let selected = highlighted == Some(q.id);
                let title = if q.text.trim().is_empty() {
                    "(new question)"
                } else {
                    q.text.as_str()
                };
                if ui
                    .selectable_label(selected, RichText::new(title).strong())
                    .clicked()
                {
                    out.clicked = Some(q.id);
                }
                if selected && let Some(e) = edit.as_mut().filter(|e| e.draft.id == q.id) {
                    let action =
                        question_form(ui, e.draft, q, regions, e.categories, e.selected_box);
                    if action != FormAction::None {
                        out.form = Some(action);
                    }
                    if n + 1 < questions.len() {
                        ui.separator();
                    }
                    continue;
                }
                ui.horizontal_wrapped(|ui| {
                    ui.small(category::display_name(&q.category));
                    ui.small("·");
                    ui.small(q.answer.kind_name());
                    ui.small("·");
                    ui.small(crate::dataset::review::review_word(q.review.as_ref()));
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
                if let Some(r) = difficulty.and_then(|d| d.get(&q.id)) {
                    ui.horizontal_wrapped(|ui| {
                        ui.small(difficulty_line(r));
                        if ui.small_button("Runs").clicked() {
                            out.open_runs = Some(q.id);
                        }
                    });
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
            ui.horizontal(|ui| {
                let label = ui.label("Model max_pixels");
                egui::ComboBox::from_id_salt("max-pixels")
                    .selected_text(max_pixels.to_string())
                    .show_ui(ui, |ui| {
                        for preset in model_eye::PRESET_MAX_PIXELS {
                            ui.selectable_value(max_pixels, preset, preset.to_string());
                        }
                    })
                    .response
                    .labelled_by(label.id);
            });
            let resized =
                model_eye::smart_resize(size, model_eye::DEFAULT_MIN_PIXELS, *max_pixels).ok();
            if let Some(m) = resized {
                ui.small(format!("The model sees this image at {m}."));
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
    out
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

/// The latest difficulty check of a question in one line: its rates and flags.
pub fn difficulty_line(r: &ItemRates) -> String {
    let arm = |a: &crate::curate::ArmRate| format!("{}/{}", a.correct, a.tries);
    let flags: Vec<&str> = r.flags.iter().map(|f| f.name()).collect();
    format!(
        "check: with tools {} · without {}{}",
        arm(&r.tools),
        arm(&r.no_tools),
        if flags.is_empty() {
            String::new()
        } else {
            format!(" · {}", flags.join(", "))
        }
    )
}
