//! The sandbox's state in the app: whether its Python runtime is set up (with a button that
//! sets it up in the background, showing each step), and the protection badge of a worker
//! started to check it ("strong: no network, files: run folder only, ...").

use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};

use crate::sandbox::{Installed, Layer, SandboxConfig, badge};

enum State {
    /// Not looked at yet.
    Unknown,
    NotSetUp,
    /// Setting up or checking; the latest step.
    Working(
        Arc<Mutex<String>>,
        Receiver<Result<(Installed, Vec<Layer>), String>>,
    ),
    Ready(Installed, Vec<Layer>),
    Failed(String),
}

pub struct SandboxPanel {
    cfg: Option<SandboxConfig>,
    state: State,
}

impl SandboxPanel {
    pub fn new(cfg: Option<SandboxConfig>) -> Self {
        Self {
            cfg,
            state: State::Unknown,
        }
    }

    pub fn busy(&self) -> bool {
        matches!(self.state, State::Working(..))
    }

    /// Is the runtime installed (as far as the panel knows)?
    pub fn ready(&self) -> bool {
        match &self.state {
            State::Ready(..) => true,
            State::Unknown => self
                .cfg
                .as_ref()
                .is_some_and(|c| c.runtime.installed().is_some()),
            _ => false,
        }
    }

    /// Set the runtime up in the background (as the panel's button does).
    pub fn set_up(&mut self, ctx: &egui::Context) {
        if !self.busy() {
            self.start(ctx, true);
        }
    }

    /// The protection badge, once a worker has been checked.
    pub fn badge(&self) -> Option<String> {
        match &self.state {
            State::Ready(_, layers) => Some(badge(layers)),
            _ => None,
        }
    }

    fn start(&mut self, ctx: &egui::Context, setup: bool) {
        let Some(cfg) = self.cfg.clone() else {
            return;
        };
        let step = Arc::new(Mutex::new(String::from("starting")));
        let (tx, rx) = channel();
        let (s, ctx) = (step.clone(), ctx.clone());
        let spawned = std::thread::Builder::new()
            .name("sandbox-setup".into())
            .spawn(move || {
                let say = |t: &str| {
                    if let Ok(mut g) = s.lock() {
                        *g = t.to_owned();
                    }
                    ctx.request_repaint();
                };
                let result = (|| {
                    let installed = if setup {
                        cfg.runtime
                            .setup(false, &mut |t| say(t))
                            .map_err(|e| e.to_string())?
                    } else {
                        cfg.runtime.installed().ok_or("not set up")?
                    };
                    say("starting a worker to check its protections");
                    let (_, layers) = crate::sandbox::probe(cfg).map_err(|e| e.to_string())?;
                    Ok((installed, layers))
                })();
                let _ = tx.send(result);
                ctx.request_repaint();
            });
        self.state = match spawned {
            Ok(_) => State::Working(step, rx),
            Err(e) => State::Failed(e.to_string()),
        };
    }

    pub fn show(&mut self, ui: &mut egui::Ui) {
        if let State::Working(_, rx) = &self.state
            && let Ok(result) = rx.try_recv()
        {
            self.state = match result {
                Ok((i, l)) => State::Ready(i, l),
                Err(e) => State::Failed(e),
            };
        }
        if matches!(self.state, State::Unknown) {
            let ready = self
                .cfg
                .as_ref()
                .is_some_and(|c| c.runtime.installed().is_some());
            if ready {
                self.start(ui.ctx(), false);
            } else {
                self.state = State::NotSetUp;
            }
        }
        ui.heading("Sandbox");
        let mut setup = false;
        match &self.state {
            State::Unknown => {}
            State::NotSetUp => {
                ui.label("The Python sandbox that runs the agent's code is not set up yet: a private environment with pinned Pillow, NumPy and OpenCV (about 70 MB, downloaded once).");
                setup = ui.button("Set up the sandbox").clicked();
                ui.weak("or run: thyme-studio sandbox setup");
            }
            State::Working(step, _) => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(step.lock().map(|g| g.clone()).unwrap_or_default());
                });
            }
            State::Ready(i, layers) => {
                ui.label(format!(
                    "Python {}, Pillow {}, NumPy {}, OpenCV {} ({})",
                    i.python,
                    i.pillow,
                    i.numpy,
                    i.opencv,
                    if i.locked {
                        "hash-checked"
                    } else {
                        "not hash-checked"
                    }
                ));
                let text = badge(layers);
                let color = if text.starts_with("strong") {
                    egui::Color32::from_rgb(60, 170, 90)
                } else {
                    crate::ui::WARNING
                };
                ui.label(
                    egui::RichText::new(format!("Protection: {text}"))
                        .color(color)
                        .strong(),
                );
                egui::CollapsingHeader::new("Layers").show(ui, |ui| {
                    for l in layers {
                        ui.label(format!(
                            "[{}] {}: {}",
                            if l.active { "on" } else { "off" },
                            l.name,
                            l.detail
                        ));
                    }
                });
            }
            State::Failed(e) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
                setup = ui.button("Try again").clicked();
            }
        }
        if setup {
            self.start(ui.ctx(), true);
        }
    }
}
