//! Widgets: each file shows one thing and reads plain data; none of them touches the store.

pub mod canvas;
pub mod image_list;
pub mod qa_editor;
pub mod qa_panel;
pub mod review_bar;

use egui::Color32;

/// The colour of the n-th box (stable per index).
pub fn box_color(n: usize) -> Color32 {
    const PALETTE: [Color32; 8] = [
        Color32::from_rgb(0, 200, 255),
        Color32::from_rgb(255, 190, 0),
        Color32::from_rgb(120, 230, 80),
        Color32::from_rgb(255, 90, 200),
        Color32::from_rgb(160, 130, 255),
        Color32::from_rgb(255, 140, 60),
        Color32::from_rgb(60, 230, 200),
        Color32::from_rgb(240, 240, 240),
    ];
    PALETTE[n % PALETTE.len()]
}

/// The colour of a rule warning (box over 5 %, low-resolution image, missing file).
pub const WARNING: Color32 = Color32::from_rgb(255, 80, 60);

/// An egui_plot axis for a bar chart of named groups at x = 0, 1, 2, ...: each whole-number
/// mark shows its group's name, every other mark nothing.
pub fn category_axis(
    names: Vec<String>,
) -> impl Fn(egui_plot::GridMark, &std::ops::RangeInclusive<f64>) -> String {
    move |mark, _| {
        let i = mark.value.round();
        if (mark.value - i).abs() < 1e-6 && i >= 0.0 {
            names.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    }
}
