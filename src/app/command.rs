//! What a workspace or window asks of the app: the one way panels reach beyond their own
//! state. Each panel pushes [`AppCommand`]s into the frame's outbox; the app carries them out
//! once the frame is drawn, in order.

use std::path::PathBuf;

use super::dialogs::DialogRequest;

/// A cross-workspace effect.
#[derive(Debug, Clone)]
pub enum AppCommand {
    /// Say something went wrong (shown until dismissed).
    Notify(String),
    /// Show a file dialog; its answer goes where the request says.
    Ask(DialogRequest),
    /// Open a trace or log in the Inspect workspace and switch to it.
    OpenInInspect(PathBuf),
    /// Open one question's runs of the latest difficulty check in Inspect.
    OpenCheckRuns(crate::dataset::QuestionId),
    /// Start a new run in the Run workspace from a recorded one: its steps before the fork
    /// point played back, then the chosen model source.
    ForkRun(Box<crate::agent::ForkFrom>),
    /// Open a project file.
    OpenProject(PathBuf),
    /// Show the export window.
    OpenExport,
    /// Make the sandbox's Python runtime (in the background).
    SetUpSandbox,
    /// Switch to the Run workspace with this model source chosen.
    UseModelSource(super::run_panel::PolicyKind),
    /// Remember the on-device model folder in the settings ("" forgets it).
    RememberModelDir(String),
    /// Use (and remember) SAM's weights folder for click-to-box; None forgets it.
    RememberSamWeights(Option<PathBuf>),
    /// Remember the chat server in the settings.
    RememberChatServer { base_url: String, model: String },
    /// The first-run guide was closed: do not show it on the next start.
    WelcomeSeen,
    /// Team: give the selected image to another annotator.
    TeamReassign(String),
    /// Team: pin a comment on the selected box.
    TeamPin(String),
}

/// The frame's outbox.
pub type Outbox = Vec<AppCommand>;

impl super::StudioApp {
    /// Carry out what the panels asked for this frame, in order.
    pub(super) fn handle_outbox(&mut self, ctx: &egui::Context) {
        // A command may lead to more (opening a project selects its first image).
        while !self.outbox.is_empty() {
            let commands = std::mem::take(&mut self.outbox);
            for command in commands {
                self.handle(command, ctx);
            }
        }
    }

    fn handle(&mut self, command: AppCommand, ctx: &egui::Context) {
        use super::Workspace;
        match command {
            AppCommand::Notify(text) => self.notify_error(text),
            AppCommand::Ask(request) => self.ask(request),
            AppCommand::OpenInInspect(path) => {
                self.inspect.open(path, ctx);
                self.workspace = Workspace::Inspect;
            }
            AppCommand::OpenCheckRuns(q) => self.open_check_runs(q, ctx),
            AppCommand::OpenProject(path) => self.open_project(path),
            AppCommand::ForkRun(from) => self.fork_run(*from),
            AppCommand::OpenExport => self.export_window.open = true,
            AppCommand::SetUpSandbox => self.sandbox_panel.set_up(ctx),
            AppCommand::UseModelSource(kind) => {
                self.workspace = Workspace::Run;
                self.run.policy = kind;
                if kind == super::run_panel::PolicyKind::Local {
                    self.ask(DialogRequest::ModelFolder);
                } else {
                    self.guide.open = false;
                }
            }
            AppCommand::RememberModelDir(dir) => {
                let dir = dir.trim();
                self.settings.model_dir = (!dir.is_empty()).then(|| PathBuf::from(dir));
                self.save_settings();
            }
            AppCommand::RememberSamWeights(dir) => {
                self.annotate.assist.weights = dir.clone();
                self.settings.sam_weights = dir;
                self.save_settings();
            }
            AppCommand::RememberChatServer { base_url, model } => {
                self.settings.chat_server = Some(super::settings::ChatServer { base_url, model });
                self.save_settings();
            }
            AppCommand::WelcomeSeen => {
                if !self.settings.welcome_seen {
                    self.settings.welcome_seen = true;
                    self.save_settings();
                }
            }
            AppCommand::TeamReassign(to) => match self.session.selected.clone() {
                Some(image) => self.team.reassign(image, to),
                None => self.notify_error("select an image to reassign".into()),
            },
            AppCommand::TeamPin(text) => self.pin_comment(text),
        }
    }

    /// Pin a team comment at the middle of the selected box.
    fn pin_comment(&mut self, text: String) {
        let at = self.annotate.editor.selected.and_then(|id| {
            self.session
                .detail
                .regions
                .iter()
                .find(|r| r.id == id)
                .map(|r| ((r.rect.x0 + r.rect.x1) / 2.0, (r.rect.y0 + r.rect.y1) / 2.0))
        });
        match (self.session.selected.clone(), at) {
            (Some(image), Some((x, y))) => self.team.pin(image, x, y, text),
            _ => self.notify_error("select a box on the canvas to pin the comment on".into()),
        }
    }

    /// A fork (or replay) of a recorded run, set up in the Run workspace: the run's original
    /// image and question; the person picks the model source that writes on and starts it.
    fn fork_run(&mut self, from: crate::agent::ForkFrom) {
        let Some(original) = from.trace.run.images.first().and_then(|i| i.path.clone()) else {
            self.notify_error(
                "this run names no original image file, so it cannot be run again".into(),
            );
            return;
        };
        self.open_run_image(original);
        if self.run.file_image.is_none() {
            return;
        }
        self.run.typed = true;
        self.run.typed_question = from.trace.run.question.clone();
        self.run.fork = Some(from);
        self.workspace = super::Workspace::Run;
    }
}

impl super::StudioApp {
    /// Write a question's check runs beside the app's data and open them in Inspect.
    fn open_check_runs(&mut self, q: crate::dataset::QuestionId, ctx: &egui::Context) {
        let Some(project) = self.session.project.as_ref().map(|p| p.path.clone()) else {
            return;
        };
        let out = self.config.dirs.check_runs_dir().join(format!("{q}.jsonl"));
        let written = std::fs::create_dir_all(self.config.dirs.check_runs_dir())
            .map_err(|e| e.to_string())
            .and_then(|()| {
                let store =
                    crate::curate::AttemptStore::open(&project).map_err(|e| e.to_string())?;
                crate::curate::write_runs(&store, None, Some(&q.to_string()), None, &out)
                    .map_err(|e| e.to_string())
            });
        match written {
            Ok(_) => {
                self.inspect.open(out, ctx);
                self.workspace = super::Workspace::Inspect;
            }
            Err(e) => self.notify_error(format!("the check's runs could not be opened: {e}")),
        }
    }
}
