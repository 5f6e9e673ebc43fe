//! The getting-started guide: on a fresh machine the app opens the demo project and says
//! plainly which optional parts are missing (the Python sandbox runtime, model weights), with
//! the one click or the one command that gets each. Shown at the first start (then remembered
//! in the settings) and from Help > Getting started.

use crate::app::command::{AppCommand, Outbox};
use crate::app::run_panel::PolicyKind;

/// What the guide shows about the machine.
pub struct GuideState<'a> {
    /// The project open is the built-in demo (else the person opened their own).
    pub demo_open: bool,
    pub sandbox_ready: bool,
    pub sandbox_busy: bool,
    pub model_dir: Option<&'a str>,
    pub model_loaded: bool,
    pub chat_server: Option<&'a str>,
}

#[derive(Default)]
pub struct FirstRun {
    pub open: bool,
    /// python3 with venv on this machine: None not looked yet, Some(None) missing.
    python: Option<Option<String>>,
}

impl FirstRun {
    /// The guide's window; what the person asks for goes to the app as commands.
    pub fn show(&mut self, ctx: &egui::Context, s: &GuideState, out: &mut Outbox) {
        if !self.open {
            return;
        }
        let python = self
            .python
            .get_or_insert_with(|| crate::sandbox::runtime::system_python().map(|p| p.1))
            .clone();
        let mut open = true;
        egui::Window::new("Getting started")
            .open(&mut open)
            .collapsible(false)
            .default_width(520.0)
            .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
            .show(ctx, |ui| {
                if s.demo_open {
                    ui.label("The demo project is open: three generated scenes with boxes and questions. Everything in Annotate, Inspect and Export works now, offline. Two optional parts make the Run workspace complete:");
                } else {
                    ui.label("Everything in Annotate, Inspect and Export works now, offline (File > Open demo project shows three generated scenes with boxes and questions). Two optional parts make the Run workspace complete:");
                }
                ui.add_space(6.0);
                ui.strong("1. The Python sandbox (runs the agent's code)");
                if s.sandbox_ready {
                    ui.label("Ready.");
                } else if s.sandbox_busy {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label("Setting up...");
                    });
                } else {
                    match &python {
                        Some(v) => {
                            ui.label(format!("Missing. Python {v} is here: one click makes a private environment with pinned Pillow, NumPy and OpenCV (about 70 MB, downloaded once)."));
                            if ui.button("Set up the sandbox now").clicked() {
                                out.push(AppCommand::SetUpSandbox);
                            }
                        }
                        None => {
                            ui.label("Missing, and it needs Python 3.9 or newer with venv, which this machine does not have. Install it, then click Set up in the Run workspace:");
                            ui.monospace("sudo apt install python3 python3-venv");
                        }
                    }
                    ui.weak("or from a shell: thyme-studio sandbox setup");
                }
                ui.add_space(6.0);
                ui.strong("2. A model (writes the agent's text)");
                if s.model_loaded {
                    ui.label("Loaded.");
                } else if let Some(dir) = s.model_dir {
                    ui.label(format!("Folder chosen: {dir} (load it in the Run workspace)."));
                } else if let Some(url) = s.chat_server {
                    ui.label(format!("A chat server is set: {url}."));
                } else {
                    ui.label("None yet. The demo runs without one (its runs are scripted from the annotations and labelled so). For a real agent, download Thyme-RL or any Qwen2.5-VL from Hugging Face and choose its folder, or point the app at a vLLM / SGLang server.");
                    ui.horizontal(|ui| {
                        if ui.button("Choose a model folder...").clicked() {
                            out.push(AppCommand::UseModelSource(PolicyKind::Local));
                        }
                        if ui.button("Use a chat server instead").clicked() {
                            out.push(AppCommand::UseModelSource(PolicyKind::Http));
                        }
                    });
                    ui.weak("or from a shell: thyme-studio model info DIR; thyme-studio model quantize DIR (a 7B in about 5 GB)");
                }
                ui.add_space(6.0);
                ui.weak("This guide is under Help > Getting started.");
            });
        if !open {
            self.open = false;
            out.push(AppCommand::WelcomeSeen);
        }
    }
}
