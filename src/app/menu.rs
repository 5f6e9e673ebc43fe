//! The menu bar (File, View, Help, the workspace tabs) and the status bar.

use super::dialogs::DialogRequest;
use super::{StudioApp, Workspace};
use crate::ui;
use egui::ThemePreference;

impl StudioApp {
    /// The File menu's entries that open agent logs in Inspect.
    fn trace_menu_items(&mut self, ui: &mut egui::Ui) {
        if ui
            .button("Open trace...")
            .on_hover_text("a trace folder's trace.json, a JSONL of traces, or a Thyme, DeepEyes, DeepEyesV2 (.xlsx, .tsv), Mini-o3, PyVision, Chain-of-Focus, Pixel Reasoner or verl log")
            .clicked()
        {
            self.ask(DialogRequest::OpenTrace);
        }
        if ui
            .button("Open log folder...")
            .on_hover_text("a trace folder, Mini-o3's save folder or a run of it, Pixel Reasoner's dumps_iter folder or a question of it")
            .clicked()
        {
            self.ask(DialogRequest::OpenTraceFolder);
        }
    }

    pub(super) fn menu_bar(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("New project...").clicked() {
                    self.ask(DialogRequest::NewProject);
                }
                if ui.button("Open project...").clicked() {
                    self.ask(DialogRequest::OpenProject);
                }
                ui.menu_button("Open recent", |ui| {
                    if self.settings.recent.is_empty() {
                        ui.weak("nothing yet");
                    }
                    for path in self.settings.recent.clone() {
                        if ui.button(path.display().to_string()).clicked() {
                            self.open_project(path);
                        }
                    }
                });
                if ui.button("Open demo project").clicked() {
                    self.open_demo();
                }
                self.trace_menu_items(ui);
                ui.separator();
                let can_import = self.session.project.is_some() && self.import.is_none();
                if ui
                    .add_enabled(can_import, egui::Button::new("Import folder..."))
                    .clicked()
                {
                    self.ask(DialogRequest::ImportFolder);
                }
                if ui
                    .add_enabled(can_import, egui::Button::new("Import images..."))
                    .clicked()
                {
                    self.ask(DialogRequest::ImportImages);
                }
                if ui
                    .add_enabled(
                        can_import && !self.import_annotations.busy(),
                        egui::Button::new("Import annotations..."),
                    )
                    .on_hover_text("COCO JSON, thyme-studio JSONL, Thyme RL or SFT JSONL")
                    .clicked()
                {
                    self.ask(DialogRequest::ImportAnnotations);
                }
                ui.separator();
                if ui
                    .add_enabled(self.session.project.is_some(), egui::Button::new("Export..."))
                    .clicked()
                {
                    self.export_window.open = true;
                }
                ui.separator();
                if ui
                    .button("Use a Thyme checkout's prompt file...")
                    .on_hover_text("scripts/prompt.txt, used byte for byte as the system prompt of runs and thyme-rl exports")
                    .clicked()
                {
                    self.ask(DialogRequest::SystemPromptFile);
                }
                if self.settings.system_prompt_file.is_some()
                    && ui.button("Use the built-in prompt").clicked()
                {
                    self.settings.system_prompt_file = None;
                    self.save_settings();
                    self.apply_prompt_choice();
                }
                ui.separator();
                if ui.button("Quit").clicked() {
                    ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                ui.checkbox(&mut self.annotate.canvas.show_minimap, "Minimap");
                ui.checkbox(&mut self.annotate.canvas.show_loupe, "Loupe (when zoomed out)");
                ui.checkbox(&mut self.annotate.show_help, "Shortcuts (? or F1)");
                ui.checkbox(&mut self.annotate.model_eye.open, "Model-eye view (M)");
                ui.checkbox(&mut self.team.open, "Team (sync, review, dashboard)");
                ui.checkbox(&mut self.annotate.editor.snap, "Snap box edges to whole pixels");
                ui.checkbox(&mut self.cache_window.open, "Tile cache (size, budget, clear)");
                ui.checkbox(
                    &mut self.curate_window.open,
                    "Difficulty check (tries with and without tools)",
                );
                ui.separator();
                for (label, pref) in [
                    ("Follow the system theme", ThemePreference::System),
                    ("Light theme", ThemePreference::Light),
                    ("Dark theme", ThemePreference::Dark),
                ] {
                    if ui.button(label).clicked() {
                        ui.ctx().set_theme(pref);
                    }
                }
            });
            ui.menu_button("Help", |ui| {
                if ui.button("Getting started").clicked() {
                    self.guide.open = true;
                }
                ui.checkbox(&mut self.annotate.show_help, "Shortcuts (? or F1)");
            });
            ui.separator();
            for w in Workspace::ALL {
                if ui
                    .selectable_label(self.workspace == w, w.title())
                    .clicked()
                {
                    self.workspace = w;
                }
            }
        });
    }

    pub(super) fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            match &self.session.project {
                Some(p) => {
                    ui.label(p.name())
                        .on_hover_text(p.path.display().to_string());
                    ui.separator();
                    ui.label(format!(
                        "{} images · {} boxes · {} questions",
                        p.stats.images, p.stats.regions, p.stats.questions
                    ));
                    if p.stats.images_missing > 0 {
                        ui.colored_label(
                            ui::WARNING,
                            format!("{} image file(s) not found", p.stats.images_missing),
                        );
                    }
                }
                None if self.demo.is_some() => {
                    ui.label("Preparing the demo project...");
                }
                None => {
                    ui.label("No project open");
                }
            }
            if let Some(job) = &self.import {
                let p = job.progress();
                ui.separator();
                let fraction = if p.total == 0 {
                    0.0
                } else {
                    p.done as f32 / p.total as f32
                };
                ui.add(
                    egui::ProgressBar::new(fraction)
                        .desired_width(200.0)
                        .text(format!("importing {}/{} {}", p.done, p.total, p.current)),
                );
                if ui.button("Cancel import").clicked() {
                    job.cancel();
                }
            }
            if let Some(line) = self.team.status_line() {
                ui.separator();
                if ui
                    .link(line)
                    .on_hover_text("Open the Team window")
                    .clicked()
                {
                    self.team.open = true;
                }
            }
            if self.session.saved_edits > 0 {
                ui.separator();
                ui.label(format!("all {} edit(s) saved", self.session.saved_edits))
                    .on_hover_text("Every edit is written to the project file before it is shown.");
            }
            if self.workspace == Workspace::Annotate && self.session.selected.is_some() {
                ui.separator();
                ui.monospace(self.annotate.canvas.status_line(&self.tiles));
            }
            let (loading, total) = self.thumbnail_progress();
            if loading > 0 {
                ui.separator();
                ui.add(
                    egui::ProgressBar::new((total - loading) as f32 / total as f32)
                        .desired_width(160.0)
                        .text(format!("thumbnails {}/{total}", total - loading)),
                );
            }
        });
    }
}
