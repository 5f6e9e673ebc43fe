//! The project's images as a list with thumbnails, sizes, counts and warnings.

use egui::{Sense, TextureHandle, Vec2};

use crate::dataset::{ImageId, ImageRecord, rules};

/// One row of the list.
pub struct ImageRow<'a> {
    pub image: &'a ImageRecord,
    pub thumbnail: Option<&'a TextureHandle>,
    pub regions: usize,
    pub questions: usize,
    pub missing: bool,
    /// Why the image could not be read, when it could not.
    pub error: Option<&'a str>,
    /// Team mode: where the image stands (synced, saved locally, conflict; review state),
    /// and whether that needs the person's attention.
    pub team: Option<(String, bool)>,
}

/// Draw the list; returns the image the person clicked, if any.
pub fn image_list(
    ui: &mut egui::Ui,
    rows: &[ImageRow<'_>],
    selected: Option<&ImageId>,
) -> Option<ImageId> {
    let mut clicked = None;
    let thumb_box = Vec2::new(72.0, 54.0);
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            for row in rows {
                let is_selected = selected == Some(&row.image.id);
                ui.horizontal(|ui| {
                    let (rect, response) = ui.allocate_exact_size(thumb_box, Sense::click());
                    match row.thumbnail {
                        Some(tex) => {
                            let size = tex.size_vec2();
                            let scale = (thumb_box.x / size.x).min(thumb_box.y / size.y);
                            let r = egui::Rect::from_center_size(rect.center(), size * scale);
                            egui::Image::from_texture((tex.id(), size))
                                .alt_text(format!("thumbnail of {}", row.image.file_name()))
                                .paint_at(ui, r);
                        }
                        None => {
                            ui.painter()
                                .rect_filled(rect, 2.0, ui.visuals().faint_bg_color);
                            ui.painter().text(
                                rect.center(),
                                egui::Align2::CENTER_CENTER,
                                if row.missing { "missing" } else { "..." },
                                egui::FontId::proportional(11.0),
                                ui.visuals().weak_text_color(),
                            );
                        }
                    }
                    if response.clicked() {
                        clicked = Some(row.image.id.clone());
                    }
                    ui.vertical(|ui| {
                        if ui
                            .selectable_label(is_selected, row.image.file_name())
                            .clicked()
                        {
                            clicked = Some(row.image.id.clone());
                        }
                        ui.small(format!(
                            "{} · {} boxes · {} questions",
                            row.image.size, row.regions, row.questions
                        ));
                        match &row.image.review {
                            Some(r) if r.is_rejected() => {
                                ui.colored_label(super::WARNING, r.describe());
                            }
                            Some(r) => {
                                ui.small(format!("{} by {}", r.verdict.as_str(), r.by));
                            }
                            None => {}
                        }
                        if let Some((text, attention)) = &row.team {
                            if *attention {
                                ui.colored_label(super::WARNING, text);
                            } else {
                                ui.small(text);
                            }
                        }
                        if row.missing {
                            ui.colored_label(super::WARNING, "file not found");
                        } else if let Some(e) = row.error {
                            ui.colored_label(super::WARNING, "cannot be read")
                                .on_hover_text(e);
                        } else if rules::check_image_size(row.image.size).is_some() {
                            ui.colored_label(super::WARNING, "longest side <= 2048 px");
                        }
                    });
                });
                ui.separator();
            }
        });
    clicked
}
