//! Collecting what background work finished since the last frame: the demo, dialogs, the
//! image import, thumbnails, the team sync.

use std::time::Duration;

use egui::{ColorImage, TextureOptions};

use super::command::AppCommand;
use super::dialogs::DialogRequest;
use super::thumbnails::{Kind, Picture};
use super::{StudioApp, team_panel};

impl StudioApp {
    /// Collect what background work has finished since the last frame.
    pub(super) fn poll_jobs(&mut self, ctx: &egui::Context) {
        if let Some(rx) = &self.demo
            && let Ok(result) = rx.try_recv()
        {
            self.demo = None;
            match result {
                Ok(path) => self.open_project(path),
                Err(e) => self.notify_error(format!("the demo project could not be created: {e}")),
            }
        }
        if let Some((request, rx)) = &self.dialog
            && let Ok(answer) = rx.try_recv()
        {
            let request = *request;
            self.dialog = None;
            if let Some(paths) = answer.filter(|p| !p.is_empty()) {
                match request {
                    DialogRequest::OpenProject => self.open_project(paths[0].clone()),
                    DialogRequest::NewProject => self.new_project(paths[0].clone()),
                    DialogRequest::ImportFolder | DialogRequest::ImportImages => {
                        self.start_import(paths)
                    }
                    DialogRequest::ExportTo(_) => {
                        self.export_window.out = Some(paths[0].clone());
                    }
                    DialogRequest::RunImage => self.open_run_image(paths[0].clone()),
                    DialogRequest::SystemPromptFile => {
                        self.settings.system_prompt_file = Some(paths[0].clone());
                        self.save_settings();
                        self.apply_prompt_choice();
                    }
                    DialogRequest::ModelFolder => {
                        self.run.model_dir = paths[0].display().to_string();
                        let dir = self.run.model_dir.clone();
                        self.outbox.push(AppCommand::RememberModelDir(dir));
                    }
                    DialogRequest::SamWeights => {
                        self.outbox
                            .push(AppCommand::RememberSamWeights(Some(paths[0].clone())));
                    }
                    DialogRequest::OpenTrace | DialogRequest::OpenTraceFolder => {
                        self.outbox
                            .push(AppCommand::OpenInInspect(paths[0].clone()));
                    }
                    DialogRequest::ImportAnnotations => {
                        if let Some(project) = &self.session.project {
                            let path = project.path.clone();
                            self.import_annotations.start(ctx, path, paths[0].clone());
                        }
                    }
                }
            }
        }
        if let Some(job) = &self.import
            && let Some(result) = job.finished()
        {
            self.import = None;
            match result {
                Ok(report) => {
                    let selected = self.session.selected.clone();
                    if let Err(e) = self.session.reload() {
                        self.notify_error(e.to_string());
                    }
                    self.request_missing_thumbnails();
                    if let Some(id) = selected {
                        self.select(id);
                    }
                    self.last_report = Some(report);
                }
                Err(e) => self.notify_error(format!("import failed: {e}")),
            }
        }
        for done in self.thumbnailer.poll() {
            let picture = match done.result {
                Ok(rgba) => {
                    let size = [rgba.width() as usize, rgba.height() as usize];
                    let color = ColorImage::from_rgba_unmultiplied(size, rgba.as_raw());
                    let name = format!("{}-{:?}", done.id.short(), done.kind);
                    Picture::Ready(ctx.load_texture(name, color, TextureOptions::LINEAR))
                }
                Err(e) => Picture::Failed(e),
            };
            self.pictures.insert((done.id, done.kind), picture);
        }
        if self.busy() {
            ctx.request_repaint_after(Duration::from_millis(50));
        }
    }

    pub(super) fn request_missing_thumbnails(&mut self) {
        let Some(project) = &self.session.project else {
            return;
        };
        for image in &project.images {
            let key = (image.id.clone(), Kind::Thumb);
            if !project.missing.contains(&image.id) && !self.pictures.contains_key(&key) {
                self.thumbnailer
                    .request(image.id.clone(), image.path.clone(), Kind::Thumb);
                self.pictures.insert(key, Picture::Loading);
            }
        }
    }

    /// Thumbnails still loading, and thumbnails asked for in all.
    pub(super) fn thumbnail_progress(&self) -> (usize, usize) {
        let thumbs = self.pictures.iter().filter(|((_, k), _)| *k == Kind::Thumb);
        let (mut loading, mut total) = (0, 0);
        for (_, p) in thumbs {
            total += 1;
            if matches!(p, Picture::Loading) {
                loading += 1;
            }
        }
        (loading, total)
    }

    /// Take the team sync's news: others' changes reload the project and the open image.
    pub(super) fn poll_team(&mut self, ctx: &egui::Context) {
        if !self.team.active() {
            return;
        }
        if self.team.poll()
            && let Err(e) = self.session.reload()
        {
            self.notify_error(format!("reloading after a sync: {e}"));
        }
        ctx.request_repaint_after(team_panel::SYNC_EVERY);
    }
}
