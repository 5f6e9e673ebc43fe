//! The Tile cache window (View > Tile cache): how much the cache holds, its budget (kept in
//! the settings), and a Clear button. Reading the sizes and clearing run off the UI thread.

use std::sync::mpsc::{Receiver, channel};

use crate::imagery::disk_cache::{DiskTileCache, Evicted};

/// What the window shows and is doing.
#[derive(Default)]
pub struct CacheWindow {
    pub open: bool,
    /// (bytes, images) last read.
    size: Option<(u64, usize)>,
    /// The budget being edited, in GiB.
    budget_gib: f64,
    pending: Option<Receiver<Reply>>,
    message: Option<String>,
}

enum Reply {
    Size(u64, usize),
    Cleared(std::io::Result<Evicted>),
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

impl CacheWindow {
    fn measure(&mut self, disk: &DiskTileCache) {
        let (tx, rx) = channel();
        let disk = disk.clone();
        std::thread::spawn(move || {
            let usage = disk.usage();
            let _ = tx.send(Reply::Size(
                usage.iter().map(|i| i.bytes).sum(),
                usage.len(),
            ));
        });
        self.pending = Some(rx);
    }

    fn clear(&mut self, disk: &DiskTileCache) {
        let (tx, rx) = channel();
        let disk = disk.clone();
        std::thread::spawn(move || {
            let _ = tx.send(Reply::Cleared(disk.clear(None)));
        });
        self.pending = Some(rx);
    }

    /// Show the window; returns a new budget to apply and save, when the person set one.
    pub fn show(&mut self, ctx: &egui::Context, disk: &DiskTileCache, budget: u64) -> Option<u64> {
        if !self.open {
            self.size = None;
            return None;
        }
        if self.size.is_none() && self.pending.is_none() {
            self.budget_gib = gib(budget);
            self.measure(disk);
        }
        if let Some(rx) = &self.pending {
            match rx.try_recv() {
                Ok(Reply::Size(bytes, images)) => {
                    self.size = Some((bytes, images));
                    self.pending = None;
                }
                Ok(Reply::Cleared(result)) => {
                    self.message = Some(match result {
                        Ok(e) => format!(
                            "removed {} image(s), {:.2} GiB",
                            e.images_removed,
                            gib(e.bytes)
                        ),
                        Err(e) => format!("the cache could not be cleared: {e}"),
                    });
                    self.measure(disk);
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => {
                    ctx.request_repaint_after(std::time::Duration::from_millis(100));
                }
                Err(std::sync::mpsc::TryRecvError::Disconnected) => self.pending = None,
            }
        }
        let mut set = None;
        let mut open = self.open;
        egui::Window::new("Tile cache")
            .open(&mut open)
            .collapsible(false)
            .show(ctx, |ui| {
                ui.label(format!("Folder: {}", disk.root().display()));
                match self.size {
                    Some((bytes, images)) => ui.label(format!(
                        "Holds {:.2} GiB for {images} image(s); budget {:.2} GiB.",
                        gib(bytes),
                        gib(budget)
                    )),
                    None => ui.label("Measuring..."),
                };
                ui.weak(
                    "Tiles make reopening an image instant. Over the budget, the images shown \
                     longest ago lose their full-resolution tiles first, then all of them.",
                );
                ui.horizontal(|ui| {
                    ui.label("Budget (GiB):");
                    ui.add(
                        egui::DragValue::new(&mut self.budget_gib)
                            .range(0.25..=10_000.0)
                            .speed(0.25),
                    );
                    if ui.button("Save").clicked() {
                        set = Some((self.budget_gib * (1u64 << 30) as f64) as u64);
                    }
                });
                ui.horizontal(|ui| {
                    let busy = self.pending.is_some();
                    if ui
                        .add_enabled(!busy, egui::Button::new("Clear the cache"))
                        .on_hover_text(
                            "Every cached tile goes; images are tiled again when opened.",
                        )
                        .clicked()
                    {
                        self.clear(disk);
                    }
                    if busy {
                        ui.spinner();
                    }
                });
                if let Some(m) = &self.message {
                    ui.label(m);
                }
            });
        self.open = open;
        set
    }
}
