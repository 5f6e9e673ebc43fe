//! The app's floating windows: messages, the import report, the first-run guide, the
//! shortcut help (with rebinding), export and import of annotations, the drop hint.

use super::{StudioApp, first_run, keymap};
use crate::ui;

impl StudioApp {
    fn guide(&mut self, ctx: &egui::Context) {
        if !self.guide.open {
            // Nothing to show: no sandbox check on the UI thread.
            return;
        }
        let demo = self.config.dirs.demo_dir();
        let state = first_run::GuideState {
            demo_open: self
                .session
                .project
                .as_ref()
                .is_some_and(|p| p.path.starts_with(&demo)),
            sandbox_ready: self.sandbox_panel.ready(),
            sandbox_busy: self.sandbox_panel.busy(),
            model_dir: Some(self.run.model_dir.trim()).filter(|d| !d.is_empty()),
            model_loaded: self.run.loaded_model().is_some(),
            chat_server: Some(self.run.server_url.trim()).filter(|u| !u.is_empty()),
        };
        self.guide.show(ctx, &state, &mut self.outbox);
    }

    pub(super) fn windows(&mut self, ctx: &egui::Context) {
        self.team.window(ctx, &mut self.outbox);
        self.guide(ctx);
        if let Some(bytes) =
            self.cache_window
                .show(ctx, self.tiles.disk(), self.tiles.disk_budget())
        {
            self.tiles.set_disk_budget(bytes);
            self.settings.tile_cache_bytes = Some(bytes);
            if let Err(e) = self.settings.save(&self.config.dirs.settings_file()) {
                tracing::warn!("settings not saved: {e}");
            }
        }
        let project = self.session.project.as_ref().map(|p| p.path.clone());
        let ended = self.curate_window.show(
            ctx,
            super::curate_window::CheckTarget {
                project: project.as_deref(),
                model: match self.run.local_model() {
                    Some((name, m)) if self.run.policy == super::run_panel::PolicyKind::Local => {
                        super::curate_window::CheckModel::Local(name, m)
                    }
                    _ => super::curate_window::CheckModel::Server {
                        url: &self.run.server_url,
                        model: &self.run.server_model,
                    },
                },
                categories: self
                    .session
                    .categories
                    .iter()
                    .map(|c| c.name.clone())
                    .collect(),
                // Looked up only while the window is open, not every frame.
                sandbox: if self.curate_window.open {
                    super::sandbox_config(&self.config)
                } else {
                    None
                },
            },
        );
        if ended && let Err(e) = self.session.reload() {
            self.notify_error(e.to_string());
        }
        let mut dismiss = None;
        if !self.notices.is_empty() {
            egui::Window::new("Messages")
                .collapsible(false)
                .show(ctx, |ui| {
                    for (i, n) in self.notices.iter().enumerate() {
                        ui.horizontal(|ui| {
                            if n.is_error {
                                ui.colored_label(ui::WARNING, &n.text);
                            } else {
                                ui.label(&n.text);
                            }
                            if ui.button("Dismiss").clicked() {
                                dismiss = Some(i);
                            }
                        });
                    }
                });
        }
        if let Some(i) = dismiss {
            self.notices.remove(i);
        }
        let mut close_report = false;
        if let Some(report) = &self.last_report {
            egui::Window::new("Import report")
                .collapsible(false)
                .show(ctx, |ui| {
                    ui.label(format!(
                        "Added {} image(s), skipped {}, ignored {} other file(s){}.",
                        report.added(),
                        report.skipped().count(),
                        report.ignored_other_files,
                        if report.cancelled { " (cancelled)" } else { "" }
                    ));
                    egui::ScrollArea::vertical()
                        .max_height(300.0)
                        .show(ui, |ui| {
                            for (_, reason, message) in report.skipped() {
                                ui.colored_label(
                                    ui::WARNING,
                                    format!("{}: {message}", reason.as_str()),
                                );
                            }
                            for (path, warning) in report.warnings() {
                                ui.label(format!("{}: {warning}", path.display()));
                            }
                        });
                    if ui.button("Close").clicked() {
                        close_report = true;
                    }
                });
        }
        if close_report {
            self.last_report = None;
        }
        if self.annotate.show_help {
            self.help_window(ctx);
        }
        let hovering = ctx.input(|i| !i.raw.hovered_files.is_empty());
        if hovering {
            egui::Area::new(egui::Id::unique("drop-hint"))
                .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
                .show(ctx, |ui| {
                    ui.heading("Drop images or folders to import them");
                });
        }
    }

    /// Export and import-annotations windows; a finished import reloads the project.
    pub(super) fn exchange_windows(&mut self, ctx: &egui::Context) {
        let project = self.session.project.as_ref().map(|p| p.path.clone());
        self.export_window.show(
            ctx,
            project.as_deref(),
            &self.session.categories,
            &mut self.outbox,
        );
        if self.import_annotations.poll().is_some() {
            if let Err(e) = self.session.reload() {
                self.notify_error(e.to_string());
            }
            self.request_missing_thumbnails();
            if let Some(id) = self.session.selected.clone() {
                self.select(id);
            } else if let Some(first) = self.session.project.as_ref().and_then(|p| p.images.first())
            {
                let id = first.id.clone();
                self.select(id);
            }
        }
        self.import_annotations.show(ctx);
    }

    /// The shortcut help: the fixed keys, then every configurable action with a button that
    /// takes the next key pressed as its new shortcut (saved in the settings file).
    fn help_window(&mut self, ctx: &egui::Context) {
        if let Some(action) = self.rebinding {
            let typed = ctx.input(|i| {
                i.events.iter().find_map(|e| match e {
                    egui::Event::Key {
                        key,
                        pressed: true,
                        modifiers,
                        ..
                    } => Some(egui::KeyboardShortcut::new(*modifiers, *key)),
                    _ => None,
                })
            });
            if let Some(shortcut) = typed {
                ctx.input_mut(|i| i.events.clear());
                self.rebinding = None;
                let is_escape = shortcut.logical_key == egui::Key::Escape
                    && shortcut.modifiers == egui::Modifiers::NONE;
                if !is_escape {
                    let result = keymap::parse(&keymap::format(&shortcut))
                        .and_then(|k| self.keymap.rebind(action, k));
                    match result {
                        Ok(()) => {
                            self.settings.keys = self.keymap.overrides();
                            self.save_settings();
                        }
                        Err(e) => self.notify_error(format!("shortcut not changed: {e}")),
                    }
                }
            }
        }
        let mut open = true;
        let mut reset = false;
        egui::Window::new("Shortcuts")
            .open(&mut open)
            .collapsible(false)
            .show(ctx, |ui| {
                egui::Grid::new("shortcuts").striped(true).show(ui, |ui| {
                    for (keys, what) in keymap::FIXED {
                        ui.monospace(*keys);
                        ui.label(*what);
                        ui.end_row();
                    }
                    for action in keymap::Action::ALL {
                        let text = if self.rebinding == Some(action) {
                            "press a key (Escape: keep)".to_owned()
                        } else {
                            self.keymap.label(action)
                        };
                        if ui
                            .button(egui::RichText::new(text).monospace())
                            .on_hover_text("click, then press the new key")
                            .clicked()
                        {
                            self.rebinding = Some(action);
                        }
                        ui.label(action.describe());
                        ui.end_row();
                    }
                });
                if ui.button("Restore the default keys").clicked() {
                    reset = true;
                }
            });
        if reset {
            self.keymap = keymap::Keymap::default();
            self.settings.keys.clear();
            self.save_settings();
        }
        self.annotate.show_help = open;
        if !open {
            self.rebinding = None;
        }
    }
}
