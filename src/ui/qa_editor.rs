//! The form that edits one question: text, category, kind, answer or options (one marked
//! correct), linked boxes, inline validation. It edits a draft and says when the draft should
//! be saved: at once for buttons and choices, when a text field loses focus for typing (so one
//! journal entry holds a whole phrase, not a keystroke).

use egui::RichText;

use crate::dataset::{Answer, Category, Question, Region, RegionId, category, rules};

/// The widget id of a question's text field (so Enter on a box can put the keyboard there).
pub fn question_text_id(q: crate::dataset::QuestionId) -> egui::Id {
    egui::Id::unique(("question-text", q))
}

/// What the form asks for after a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum FormAction {
    None,
    /// Save the draft over the stored question.
    Save,
    Delete,
}

/// Draw the form over `draft`; `stored` is the question as saved, `selected_box` the box
/// selected on the canvas (for linking).
pub fn question_form(
    ui: &mut egui::Ui,
    draft: &mut Question,
    stored: &Question,
    regions: &[Region],
    categories: &[Category],
    selected_box: Option<RegionId>,
) -> FormAction {
    let mut commit = false;
    let label = ui.label("Question");
    let text = ui.add(
        egui::TextEdit::multiline(&mut draft.text)
            .id(question_text_id(draft.id))
            .desired_rows(2)
            .desired_width(f32::INFINITY),
    );
    let text = text.labelled_by(label.id);
    commit |= text.lost_focus();

    ui.horizontal(|ui| {
        let label = ui.label("Category");
        let before = draft.category.clone();
        egui::ComboBox::from_id_salt(("category", draft.id))
            .selected_text(category::display_name(&draft.category))
            .show_ui(ui, |ui| {
                for c in categories {
                    ui.selectable_value(&mut draft.category, c.name.clone(), c.display_name());
                }
            })
            .response
            .labelled_by(label.id);
        commit |= draft.category != before;
    });

    ui.horizontal(|ui| {
        let open = matches!(draft.answer, Answer::Open { .. });
        if ui.radio(open, "Short answer").clicked() && !open {
            let first = draft.answer.solution().to_owned();
            draft.answer = Answer::Open { text: first };
            commit = true;
        }
        if ui.radio(!open, "Multiple choice").clicked() && open {
            let text = draft.answer.solution().to_owned();
            draft.answer = Answer::Choice {
                options: vec![text, String::new()],
                correct: 0,
            };
            commit = true;
        }
    });

    match &mut draft.answer {
        Answer::Open { text } => {
            let label = ui.label("Answer");
            let r = ui
                .add(egui::TextEdit::singleline(text).desired_width(f32::INFINITY))
                .labelled_by(label.id);
            commit |= r.lost_focus();
        }
        Answer::Choice { options, correct } => {
            let mut remove = None;
            for (i, option) in options.iter_mut().enumerate() {
                ui.horizontal(|ui| {
                    let letter = char::from(b'A' + (i as u8).min(25));
                    if ui.radio(*correct == i, format!("{letter}.")).clicked() {
                        *correct = i;
                        commit = true;
                    }
                    let r = ui
                        .add(egui::TextEdit::singleline(option).desired_width(160.0))
                        .on_hover_text(format!("option {letter}"));
                    commit |= r.lost_focus();
                    if ui.small_button("remove").clicked() {
                        remove = Some(i);
                    }
                });
            }
            if let Some(i) = remove.filter(|_| options.len() > rules::MIN_OPTIONS) {
                options.remove(i);
                if *correct >= options.len() || *correct > i {
                    *correct = correct.saturating_sub(1).min(options.len() - 1);
                }
                commit = true;
            }
            if options.len() < rules::MAX_OPTIONS && ui.small_button("Add option").clicked() {
                options.push(String::new());
                commit = true;
            }
        }
    }

    ui.horizontal_wrapped(|ui| {
        ui.label(format!("Boxes: {}", numbers(regions, &draft.regions)));
        if let Some(b) = selected_box {
            let n = regions
                .iter()
                .position(|r| r.id == b)
                .map(|i| i + 1)
                .unwrap_or(0);
            if draft.regions.contains(&b) {
                if ui.small_button(format!("Unlink box #{n}")).clicked() {
                    draft.regions.retain(|r| *r != b);
                    commit = true;
                }
            } else if ui.small_button(format!("Link box #{n}")).clicked() {
                draft.regions.push(b);
                commit = true;
            }
        } else {
            ui.weak("(select a box on the image to link it)");
        }
    });

    for problem in rules::question_errors(draft) {
        ui.colored_label(super::WARNING, problem.to_string());
    }
    for warning in rules::question_warnings(draft) {
        ui.colored_label(super::WARNING, warning.to_string());
    }
    let dirty = draft != stored;
    ui.horizontal(|ui| {
        if dirty {
            ui.label(RichText::new("editing (saved when you leave the field)").weak());
        } else {
            ui.label(RichText::new("saved").weak());
        }
    });
    if ui.button("Delete question").clicked() {
        return FormAction::Delete;
    }
    if commit && dirty {
        FormAction::Save
    } else {
        FormAction::None
    }
}

fn numbers(regions: &[Region], linked: &[RegionId]) -> String {
    let n: Vec<String> = linked
        .iter()
        .filter_map(|id| regions.iter().position(|r| r.id == *id))
        .map(|i| format!("#{}", i + 1))
        .collect();
    if n.is_empty() {
        "none".into()
    } else {
        n.join(", ")
    }
}
