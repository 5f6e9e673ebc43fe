//! The selected box's panel: its label (typed text autosaved like the questions'), the crop
//! the agent's sandbox would make of it at a chosen zoom, drawn from the tile cache.

use egui::{TextureHandle, TextureOptions};

use crate::app::editor;
use crate::app::project::ImageDetail;
use crate::imagery::tiles::TileService;

/// The selected-box panel's own state.
pub struct BoxPanel {
    /// The selected box's label as being edited.
    pub box_label: Option<(crate::dataset::RegionId, String)>,
    /// Put the keyboard into the label field on the next frame (a box was just drawn).
    pub focus_label: bool,
    crop_zoom: u32,
    #[allow(clippy::type_complexity)]
    crop_preview: Option<(
        (crate::dataset::RegionId, u32, u32, u32, u32, u32),
        TextureHandle,
    )>,
}

/// The selected box: its label, the crop the agent's sandbox would make of it, and what
/// the model sees of it. Returns an edit when the label was changed.
pub fn selected_box_panel(
    ui: &mut egui::Ui,
    state: &mut BoxPanel,
    tiles: &TileService,
    detail: &ImageDetail,
    selected: Option<crate::dataset::RegionId>,
    image: &crate::dataset::ImageRecord,
) -> Option<editor::EditorAction> {
    let sel = selected?;
    let n = detail.regions.iter().position(|r| r.id == sel)?;
    let region = detail.regions[n].clone();
    let mut action = None;
    ui.heading(format!("Box #{}", n + 1));
    let label_id = ui.label("Box label").id;
    if state.box_label.as_ref().is_none_or(|(id, _)| *id != sel) {
        state.box_label = Some((sel, region.label.clone()));
    }
    if let Some((_, text)) = state.box_label.as_mut() {
        let r = ui
            .add(egui::TextEdit::singleline(text).desired_width(f32::INFINITY))
            .labelled_by(label_id);
        if std::mem::take(&mut state.focus_label) {
            r.request_focus();
        }
        if r.lost_focus() && *text != region.label {
            let mut after = region.clone();
            after.label = text.clone();
            action = Some(editor::EditorAction::Apply(Box::new(
                crate::store::Command::UpdateRegion {
                    before: region.clone(),
                    after,
                },
            )));
        }
    }
    let crop = crate::annotate::crop::sandbox_crop(&region.rect, image.size);
    ui.horizontal(|ui| {
        let zoom_label = ui.label("Crop zoom");
        egui::ComboBox::from_id_salt("crop-zoom")
            .selected_text(format!("{}x", state.crop_zoom))
            .show_ui(ui, |ui| {
                for z in [1u32, 2, 3, 4] {
                    ui.selectable_value(&mut state.crop_zoom, z, format!("{z}x"));
                }
            })
            .response
            .labelled_by(zoom_label.id);
    });
    let (zw, zh) = crate::annotate::crop::zoomed_size(&crop, f64::from(state.crop_zoom));
    ui.small(format!(
        "sandbox crop {:.0}x{:.0} px (sides of at least 64), {zw}x{zh} after zoom",
        crop.width(),
        crop.height()
    ));
    let key = (
        sel,
        crop.x0 as u32,
        crop.y0 as u32,
        crop.x1 as u32,
        crop.y1 as u32,
        state.crop_zoom,
    );
    if state.crop_preview.as_ref().is_none_or(|(k, _)| *k != key)
        && let Some(pixels) = tiles.crop(&image.id, image.size, &crop)
    {
        let zoomed = image::DynamicImage::ImageRgb8(pixels)
            .resize_exact(zw, zh, image::imageops::FilterType::CatmullRom)
            .into_rgb8();
        let color = egui::ColorImage::from_rgb([zw as usize, zh as usize], zoomed.as_raw());
        let tex = ui
            .ctx()
            .load_texture("crop-preview", color, TextureOptions::NEAREST);
        state.crop_preview = Some((key, tex));
    }
    match &state.crop_preview {
        Some((k, tex)) if *k == key => {
            let avail = ui.available_width().min(320.0);
            let size = tex.size_vec2();
            let scale = (avail / size.x).min(1.0);
            ui.add(egui::Image::from_texture((tex.id(), size * scale)).alt_text("crop preview"));
        }
        _ => {
            ui.weak("making the crop preview...");
        }
    }
    ui.separator();
    action
}

impl Default for BoxPanel {
    fn default() -> Self {
        Self {
            box_label: None,
            focus_label: false,
            crop_zoom: 2,
            crop_preview: None,
        }
    }
}
