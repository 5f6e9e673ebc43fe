//! The image list panel: progress, the filter, one row per image with its thumbnail, counts,
//! review verdict and team badge.

use super::{AnnotateCx, AnnotateWorkspace};
use crate::app::thumbnails::{Kind, Picture};
use crate::dataset::ImageId;
use crate::ui;

/// Which images the list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFilter {
    All,
    Status(crate::dataset::ImageStatus),
    NoBoxes,
    NoQuestions,
    Warnings,
    /// A question on it has this flag in the latest difficulty check.
    Difficulty(crate::curate::Flag),
}

impl ListFilter {
    fn title(self) -> &'static str {
        match self {
            ListFilter::All => "all images",
            ListFilter::Status(s) => s.title(),
            ListFilter::NoBoxes => "no boxes yet",
            ListFilter::NoQuestions => "no questions yet",
            ListFilter::Warnings => "with warnings",
            ListFilter::Difficulty(f) => match f {
                crate::curate::Flag::TooEasy => "difficulty: too easy",
                crate::curate::Flag::NeedsTools => "difficulty: needs tools",
                crate::curate::Flag::Suspect => "difficulty: suspect",
                crate::curate::Flag::Flaky => "difficulty: flaky",
            },
        }
    }

    /// Every filter; the difficulty flags once a check has run on the project.
    fn all(checked: bool) -> Vec<ListFilter> {
        let mut options = vec![ListFilter::All];
        options.extend(crate::dataset::ImageStatus::ALL.map(ListFilter::Status));
        options.extend([
            ListFilter::NoBoxes,
            ListFilter::NoQuestions,
            ListFilter::Warnings,
        ]);
        if checked {
            options.extend(crate::curate::Flag::ALL.map(ListFilter::Difficulty));
        }
        options
    }
}

impl AnnotateWorkspace {
    /// The list on the left; returns the image clicked.
    pub(super) fn list_panel(&mut self, ui: &mut egui::Ui, cx: &AnnotateCx<'_>) -> Option<ImageId> {
        let project = cx.session.project.as_ref()?;
        let mut clicked = None;
        egui::Panel::left("images")
            .resizable(true)
            .default_size(300.0)
            .show(ui, |ui| {
                let done = project
                    .images
                    .iter()
                    .filter(|i| i.status == crate::dataset::ImageStatus::Done)
                    .count();
                ui.heading(format!("Images ({})", project.images.len()));
                ui.label(format!("{done} of {} done", project.images.len()));
                ui.horizontal(|ui| {
                    let label = ui.label("Show");
                    egui::ComboBox::from_id_salt("list-filter")
                        .selected_text(self.list_filter.title())
                        // Tall enough for every filter, the difficulty flags included.
                        .height(400.0)
                        .show_ui(ui, |ui| {
                            for f in ListFilter::all(!project.difficulty.questions.is_empty()) {
                                ui.selectable_value(&mut self.list_filter, f, f.title());
                            }
                        })
                        .response
                        .labelled_by(label.id);
                });
                if project.images.is_empty() {
                    ui.label("No images yet: drop image files or folders here, or use File > Import folder.");
                }
                let filter = self.list_filter;
                let rows: Vec<ui::image_list::ImageRow<'_>> = project
                    .images
                    .iter()
                    .filter(|image| {
                        let (boxes, questions) =
                            project.counts.get(&image.id).copied().unwrap_or((0, 0));
                        match filter {
                            ListFilter::All => true,
                            ListFilter::Status(s) => image.status == s,
                            ListFilter::NoBoxes => boxes == 0,
                            ListFilter::NoQuestions => questions == 0,
                            ListFilter::Warnings => {
                                project.missing.contains(&image.id)
                                    || crate::dataset::rules::check_image_size(image.size)
                                        .is_some()
                            }
                            ListFilter::Difficulty(f) => project
                                .difficulty
                                .images
                                .get(&image.id)
                                .is_some_and(|flags| flags.contains(&f)),
                        }
                    })
                    .map(|image| {
                        let (regions, questions) =
                            project.counts.get(&image.id).copied().unwrap_or((0, 0));
                        let picture = cx.pictures.get(&(image.id.clone(), Kind::Thumb));
                        ui::image_list::ImageRow {
                            image,
                            thumbnail: match picture {
                                Some(Picture::Ready(t)) => Some(t),
                                _ => None,
                            },
                            error: match picture {
                                Some(Picture::Failed(e)) => Some(e.as_str()),
                                _ => None,
                            },
                            regions,
                            questions,
                            missing: project.missing.contains(&image.id),
                            team: cx.team.badge(&image.id),
                        }
                    })
                    .collect();
                clicked =
                    ui::image_list::image_list(ui, &rows, cx.session.selected.as_ref());
            });
        clicked
    }
}
