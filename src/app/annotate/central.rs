//! The middle of the workspace: the image's header line (name, size, status, hints) and the
//! canvas with its overlays (boxes, team comments, the box being drawn) and the box editor.

use super::{AnnotateCx, AnnotateWorkspace};
use crate::app::editor;
use crate::dataset::ImageRecord;
use crate::ui;
use crate::ui::canvas::{Overlay, OverlayStyle};

impl AnnotateWorkspace {
    /// The header and the canvas; returns the edits asked for (status, then the editor's).
    pub(super) fn central(
        &mut self,
        ui: &mut egui::Ui,
        image: &ImageRecord,
        cx: &mut AnnotateCx<'_>,
    ) -> Vec<editor::EditorAction> {
        let mut edits = Vec::new();
        if let Some(command) = self.header(ui, image) {
            edits.push(editor::EditorAction::Apply(Box::new(command)));
        }
        let missing = cx
            .session
            .project
            .as_ref()
            .is_some_and(|p| p.missing.contains(&image.id));
        if missing {
            ui.colored_label(
                ui::WARNING,
                format!("The file is not at {} any more.", image.path.display()),
            );
            return edits;
        }
        self.assist.reset(&image.id);
        self.assist.poll();
        edits.push(self.assist_bar(ui, image, cx));
        let mut overlays = self.overlays(image, cx);
        overlays.extend(self.assist.overlays(&image.id, image.size, self.max_pixels));
        let detail = &cx.session.detail;
        self.canvas.edit_mode = true;
        self.canvas.arrow_keys_pan = self.editor.selected.is_none();
        self.editor.rough_draws = self.assist.on;
        let out = self.canvas.show(ui, cx.tiles, &overlays);
        let zoom = self.canvas.view().map(|v| v.zoom).unwrap_or(1.0);
        let mut action = self
            .editor
            .on_canvas(&out, &image.id, &detail.regions, image.size, zoom);
        if let editor::EditorAction::Rough(rough) = action {
            self.assist.rough(image, rough);
            action = editor::EditorAction::None;
        }
        // Click-to-box: a click off every box asks for the object under it.
        if self.assist.on
            && self.editor.selected.is_none()
            && self.editor.two_click.is_none()
            && let (Some(p), Some(visible)) = (out.clicked, self.canvas.visible())
        {
            let shift = ui.input(|i| i.modifiers.shift);
            self.assist.click(image, p, shift, visible);
        }
        // Keys belong to a text field while one is being typed in.
        if action == editor::EditorAction::None
            && !self.editor.dragging()
            && !self.typing
            && !cx.keys_taken
            && !ui.ctx().text_edit_focused()
        {
            action = self.assist.keys(ui.ctx(), cx, self.editor.snap);
            if let editor::EditorAction::Apply(c) = &action
                && let crate::store::Command::AddRegion { region, .. } = c.as_ref()
            {
                self.editor.selected = Some(region.id);
            }
            if action == editor::EditorAction::None {
                action = self
                    .editor
                    .on_keys(ui.ctx(), cx.keymap, &detail.regions, image.size);
            }
        }
        self.model_eye.show(
            ui.ctx(),
            cx.tiles,
            &image.id,
            image.size,
            &detail.regions,
            self.max_pixels,
        );
        if let Some(r) = self.editor.focus_request.take() {
            self.canvas.focus(&r);
        }
        edits.push(action);
        edits
    }

    /// Name, size, status (a changed status is returned as its edit), the two-click hint.
    fn header(&mut self, ui: &mut egui::Ui, image: &ImageRecord) -> Option<crate::store::Command> {
        let mut change = None;
        ui.horizontal(|ui| {
            ui.strong(image.file_name());
            ui.label(format!("{} · {}", image.size, image.id.short()));
            let label = ui.label("Status");
            let mut status = image.status;
            egui::ComboBox::from_id_salt("image-status")
                .selected_text(status.title())
                .show_ui(ui, |ui| {
                    for s in crate::dataset::ImageStatus::ALL {
                        ui.selectable_value(&mut status, s, s.title());
                    }
                })
                .response
                .labelled_by(label.id);
            if status != image.status {
                change = Some(crate::store::Command::SetImageStatus {
                    id: image.id.clone(),
                    before: image.status,
                    after: status,
                });
            }
            let hint = match self.editor.two_click {
                Some(None) => Some("first corner"),
                Some(Some(_)) => Some("opposite corner"),
                None => None,
            };
            if let Some(which) = hint {
                // Truncated, so the hint never widens the panel and moves the image.
                ui.add(
                    egui::Label::new(
                        egui::RichText::new(format!(
                            "Two-click box: click the {which} (Escape cancels)"
                        ))
                        .strong(),
                    )
                    .truncate(),
                );
            }
            if let Some(w) = crate::dataset::rules::check_image_size(image.size) {
                ui.add(
                    egui::Label::new(egui::RichText::new("low resolution").color(ui::WARNING))
                        .truncate(),
                )
                .on_hover_text(w.to_string());
            }
        });
        change
    }

    /// The boxes (the highlighted question's emphasised), the team's pinned comments, and the
    /// box being drawn with its live rule feedback.
    fn overlays(&self, image: &ImageRecord, cx: &AnnotateCx<'_>) -> Vec<Overlay> {
        let detail = &cx.session.detail;
        let emphasised: Vec<_> = self
            .highlighted
            .and_then(|q| detail.questions.iter().find(|x| x.id == q))
            .map(|q| q.regions.clone())
            .unwrap_or_default();
        let mut overlays: Vec<Overlay> = detail
            .regions
            .iter()
            .enumerate()
            .map(|(n, r)| {
                let over = crate::dataset::rules::check_area(&r.rect, image.size).is_err();
                Overlay {
                    rect: r.rect,
                    color: if over { ui::WARNING } else { ui::box_color(n) },
                    label: Some(format!("#{} {}", n + 1, r.label)),
                    emphasis: emphasised.contains(&r.id) || self.editor.selected == Some(r.id),
                    style: OverlayStyle::Box,
                }
            })
            .collect();
        for c in cx.team.comments_of(&image.id) {
            overlays.push(Overlay {
                rect: crate::geometry::ImageRect::new(c.x - 0.5, c.y - 0.5, c.x + 0.5, c.y + 0.5),
                color: egui::Color32::from_rgb(255, 210, 80),
                label: Some(format!("{}: {}", c.author, c.text)),
                emphasis: true,
                style: OverlayStyle::Crop,
            });
        }
        if let Some(preview) = self.editor.preview {
            let (text, over) = editor::BoxEditor::feedback(&preview, image.size, self.max_pixels);
            overlays.push(Overlay {
                rect: preview,
                color: if over {
                    ui::WARNING
                } else {
                    egui::Color32::WHITE
                },
                label: Some(text),
                emphasis: true,
                style: OverlayStyle::Box,
            });
        }
        overlays
    }
}
