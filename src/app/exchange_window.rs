//! The Export and Import-annotations windows: options, a background job with a progress bar
//! and Cancel, and a summary of what was written and what was left out and why.

use crate::app::command::{AppCommand, Outbox};
use crate::app::dialogs::DialogRequest;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, channel};

use crate::exchange::{
    ChoiceStyle, ExportOptions, Filter, Format, ImportFormat, ImportSettings, PathMode,
};
use crate::store::SqliteStore;

/// A running export or import.
struct Job {
    done: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
    cancel: Arc<AtomicBool>,
    result: Receiver<Result<String, String>>,
}

impl Job {
    fn start(
        name: &str,
        ctx: &egui::Context,
        work: impl FnOnce(&mut dyn FnMut(usize, usize), &AtomicBool) -> Result<String, String>
        + Send
        + 'static,
    ) -> Result<Self, String> {
        let (done, total, cancel) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (tx, rx) = channel();
        let (d, t, c, ctx) = (done.clone(), total.clone(), cancel.clone(), ctx.clone());
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let result = work(
                    &mut |a, b| {
                        d.store(a, Ordering::Relaxed);
                        t.store(b, Ordering::Relaxed);
                    },
                    &c,
                );
                let _ = tx.send(result);
                ctx.request_repaint();
            })
            .map_err(|e| format!("cannot start the job: {e}"))?;
        Ok(Self {
            done,
            total,
            cancel,
            result: rx,
        })
    }

    fn fraction(&self) -> f32 {
        let t = self.total.load(Ordering::Relaxed).max(1);
        self.done.load(Ordering::Relaxed) as f32 / t as f32
    }
}

/// Export settings as the window edits them.
pub struct ExportWindow {
    pub open: bool,
    pub format: Format,
    pub paths: PathMode,
    pub choices: ChoiceStyle,
    pub accepted_only: bool,
    pub allow_large_boxes: bool,
    /// Categories to keep (empty: all).
    pub categories: std::collections::BTreeSet<String>,
    pub out: Option<PathBuf>,
    /// The prompt profile thyme-rl rows are written with (the app's choice).
    pub profile: crate::agent::PromptProfile,
    job: Option<Job>,
    /// The last result: the summary, or the error.
    pub result: Option<Result<String, String>>,
}

impl Default for ExportWindow {
    fn default() -> Self {
        Self {
            open: false,
            format: Format::ThymeRl,
            paths: PathMode::Absolute,
            choices: ChoiceStyle::Letters,
            accepted_only: false,
            allow_large_boxes: false,
            categories: Default::default(),
            out: None,
            profile: Default::default(),
            job: None,
            result: None,
        }
    }
}

impl ExportWindow {
    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    pub fn show(
        &mut self,
        ctx: &egui::Context,
        project: Option<&std::path::Path>,
        categories: &[crate::dataset::Category],
        out: &mut Outbox,
    ) {
        if let Some(job) = &self.job
            && let Ok(r) = job.result.try_recv()
        {
            self.result = Some(r);
            self.job = None;
        }
        if !self.open {
            return;
        }
        let mut open = self.open;
        egui::Window::new("Export")
            .open(&mut open)
            .default_width(460.0)
            .pivot(egui::Align2::CENTER_TOP)
            .default_pos(ctx.content_rect().center_top() + egui::vec2(0.0, 80.0))
            .show(ctx, |ui| {
                self.form(ui, categories);
                ui.small(format!(
                    "Prompt: {} (system prompt SHA-256 {}...; File > Use a Thyme checkout's prompt file...)",
                    self.profile.name,
                    &self.profile.system_sha256()[..12]
                ));
                ui.horizontal(|ui| {
                    if ui.button("Choose where...").clicked() {
                        out.push(AppCommand::Ask(DialogRequest::ExportTo(self.format)));
                    }
                    match &self.out {
                        Some(p) => ui.monospace(p.display().to_string()),
                        None => ui.weak("no output chosen"),
                    };
                });
                ui.separator();
                if let Some(job) = &self.job {
                    ui.horizontal(|ui| {
                        ui.add(egui::ProgressBar::new(job.fraction()).desired_width(240.0));
                        if ui.button("Cancel").clicked() {
                            job.cancel.store(true, Ordering::Relaxed);
                        }
                    });
                    ctx.request_repaint_after(std::time::Duration::from_millis(100));
                } else {
                    let ready = project.is_some() && self.out.is_some();
                    if ui.add_enabled(ready, egui::Button::new("Export")).clicked()
                        && let (Some(project), Some(out)) = (project, self.out.clone())
                    {
                        self.start(ctx, project.to_owned(), out);
                    }
                }
                match &self.result {
                    Some(Ok(summary)) => {
                        ui.label(egui::RichText::new("Done").strong());
                        egui::ScrollArea::vertical()
                            .max_height(220.0)
                            .show(ui, |ui| {
                                ui.monospace(summary);
                            });
                    }
                    Some(Err(e)) => {
                        ui.colored_label(ui.visuals().error_fg_color, e);
                    }
                    None => {}
                }
            });
        self.open = open;
    }

    /// The format and what goes into the export.
    fn form(&mut self, ui: &mut egui::Ui, categories: &[crate::dataset::Category]) {
        let label = ui.label("Format");
        egui::ComboBox::from_id_salt("export-format")
            .selected_text(self.format.name())
            .show_ui(ui, |ui| {
                for f in Format::ALL {
                    if ui
                        .selectable_value(&mut self.format, f, f.name())
                        .on_hover_text(f.describe())
                        .clicked()
                    {
                        self.out = None;
                    }
                }
            })
            .response
            .labelled_by(label.id);
        ui.weak(self.format.describe());
        let lossless = self.format == Format::Jsonl;
        ui.add_enabled_ui(!lossless, |ui| {
            ui.horizontal(|ui| {
                ui.label("Image paths");
                for m in [PathMode::Absolute, PathMode::Relative, PathMode::Copy] {
                    ui.radio_value(&mut self.paths, m, m.name());
                }
            });
            ui.horizontal(|ui| {
                ui.label("Multiple choice answers");
                ui.radio_value(
                    &mut self.choices,
                    ChoiceStyle::Letters,
                    "letters (A, B, ...)",
                );
                ui.radio_value(&mut self.choices, ChoiceStyle::Text, "option text");
            });
            ui.checkbox(
                &mut self.accepted_only,
                "Only accepted images (without rejected items)",
            );
            ui.checkbox(
                &mut self.allow_large_boxes,
                "Keep boxes over 5 % of the image (not small-object targets)",
            );
            ui.horizontal_wrapped(|ui| {
                ui.label("Categories (none ticked: all)");
                for c in categories {
                    let mut on = self.categories.contains(&c.name);
                    if ui.checkbox(&mut on, c.display_name()).changed() {
                        if on {
                            self.categories.insert(c.name.clone());
                        } else {
                            self.categories.remove(&c.name);
                        }
                    }
                }
            });
        });
        if lossless {
            ui.weak("The canonical export always holds the whole project and its history.");
        }
    }

    fn options(&self) -> ExportOptions {
        let mut o = ExportOptions::new(self.format);
        o.profile = self.profile.clone();
        o.paths = self.paths;
        o.choices = self.choices;
        if self.format != Format::Jsonl {
            o.filter = Filter {
                accepted_only: self.accepted_only,
                categories: self.categories.clone(),
                allow_large_boxes: self.allow_large_boxes,
                ..Filter::default()
            };
        }
        o
    }

    fn start(&mut self, ctx: &egui::Context, project: PathBuf, out: PathBuf) {
        let options = self.options();
        self.result = None;
        let job = Job::start("export", ctx, move |progress, cancel| {
            let store = SqliteStore::open(&project).map_err(|e| e.to_string())?;
            crate::exchange::export(&store, &options, &out, progress, cancel)
                .map(|r| {
                    let mut s = r.summary();
                    for (what, why) in r.examples.iter().take(20) {
                        s.push_str(&format!("\n    {what}: {why}"));
                    }
                    s
                })
                .map_err(|e| e.to_string())
        });
        match job {
            Ok(j) => self.job = Some(j),
            Err(e) => self.result = Some(Err(e)),
        }
    }
}

/// A running or finished import of annotations.
#[derive(Default)]
pub struct ImportAnnotations {
    job: Option<Job>,
    pub result: Option<Result<String, String>>,
}

impl ImportAnnotations {
    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    /// Start importing `data` into the project (format told from the file).
    pub fn start(&mut self, ctx: &egui::Context, project: PathBuf, data: PathBuf) {
        self.result = None;
        let job = Job::start("import-annotations", ctx, move |_, cancel| {
            let format = ImportFormat::detect(&data).map_err(|e| e.to_string())?;
            let mut store = SqliteStore::open(&project).map_err(|e| e.to_string())?;
            crate::exchange::import_file(
                &mut store,
                &data,
                format,
                &ImportSettings::default(),
                cancel,
            )
            .map(|s| s.summary())
            .map_err(|e| e.to_string())
        });
        match job {
            Ok(j) => self.job = Some(j),
            Err(e) => self.result = Some(Err(e)),
        }
    }

    /// `Some` once when the job has just finished (the app then reloads the project).
    pub fn poll(&mut self) -> Option<&Result<String, String>> {
        let job = self.job.as_ref()?;
        let r = job.result.try_recv().ok()?;
        self.job = None;
        self.result = Some(r);
        self.result.as_ref()
    }

    /// The result window, until closed.
    pub fn show(&mut self, ctx: &egui::Context) {
        if self.job.is_some() {
            egui::Window::new("Importing annotations").show(ctx, |ui| {
                ui.spinner();
            });
            return;
        }
        let Some(result) = &self.result else {
            return;
        };
        let mut open = true;
        egui::Window::new("Imported annotations")
            .open(&mut open)
            .show(ctx, |ui| match result {
                Ok(s) => {
                    egui::ScrollArea::vertical()
                        .max_height(300.0)
                        .show(ui, |ui| {
                            ui.monospace(s);
                        });
                }
                Err(e) => {
                    ui.colored_label(ui.visuals().error_fg_color, e);
                }
            });
        if !open {
            self.result = None;
        }
    }
}
