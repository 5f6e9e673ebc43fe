//! The review section of the Annotate panel: the verdicts on the image, the selected box and
//! the highlighted question, with accept, reject (a listed reason and a note) and withdraw.
//!
//! It draws plain data and says what the person asked for; the app turns that into one
//! journaled edit (see [`crate::dataset::review`]).

use crate::dataset::{REJECT_REASONS, Review, ReviewTarget, Verdict};

/// The reason and note the next rejection carries (kept between frames by the app).
#[derive(Debug, Clone, Default)]
pub struct ReviewForm {
    pub reason: usize,
    pub note: String,
}

/// One thing the section offers a verdict on.
pub struct ReviewRow<'a> {
    pub target: ReviewTarget,
    /// "Image", "Box #2 sign", "Question 'What does it say?'".
    pub title: String,
    pub current: Option<&'a Review>,
}

/// A verdict the person gave (`None`: take the current one back).
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewAsk {
    pub target: ReviewTarget,
    pub verdict: Option<(Verdict, Option<String>, String)>,
}

/// Draw the section; returns the verdict asked for this frame, if any.
pub fn review_bar(
    ui: &mut egui::Ui,
    form: &mut ReviewForm,
    rows: &[ReviewRow<'_>],
) -> Option<ReviewAsk> {
    let mut ask = None;
    ui.heading("Review");
    ui.horizontal(|ui| {
        let label = ui.label("Reason");
        egui::ComboBox::from_id_salt("review-reason")
            .selected_text(REJECT_REASONS[form.reason.min(REJECT_REASONS.len() - 1)])
            .show_ui(ui, |ui| {
                for (i, r) in REJECT_REASONS.iter().enumerate() {
                    ui.selectable_value(&mut form.reason, i, *r);
                }
            })
            .response
            .labelled_by(label.id);
    });
    ui.horizontal(|ui| {
        let label = ui.label("Note");
        ui.add(
            egui::TextEdit::singleline(&mut form.note)
                .hint_text("for the annotator")
                .desired_width(f32::INFINITY),
        )
        .labelled_by(label.id);
    });
    for row in rows {
        ui.horizontal_wrapped(|ui| {
            ui.strong(&row.title);
            match row.current {
                Some(r) if r.is_rejected() => {
                    ui.colored_label(super::WARNING, r.describe());
                }
                Some(r) => {
                    ui.label(format!("{} by {}", r.describe(), r.by));
                }
                None => {
                    ui.weak("unreviewed");
                }
            }
            let kind = row.target.kind_name();
            let accepted = row.current.is_some_and(Review::is_accepted);
            if ui
                .add_enabled(!accepted, egui::Button::new(format!("Accept {kind}")))
                .clicked()
            {
                ask = Some(ReviewAsk {
                    target: row.target.clone(),
                    verdict: Some((Verdict::Accepted, None, form.note.clone())),
                });
            }
            if ui
                .button(format!("Reject {kind}"))
                .on_hover_text("with the reason and note above")
                .clicked()
            {
                let reason = REJECT_REASONS[form.reason.min(REJECT_REASONS.len() - 1)];
                ask = Some(ReviewAsk {
                    target: row.target.clone(),
                    verdict: Some((
                        Verdict::Rejected,
                        Some(reason.to_owned()),
                        form.note.clone(),
                    )),
                });
            }
            if row.current.is_some() && ui.button(format!("Withdraw ({kind})")).clicked() {
                ask = Some(ReviewAsk {
                    target: row.target.clone(),
                    verdict: None,
                });
            }
        });
    }
    ui.separator();
    if ask.is_some() {
        // A note belongs to the verdict it was written for, not to the next one.
        form.note.clear();
    }
    ask
}
