//! Import as a background job: its own store connection, progress the UI can read, cancel.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};

use crate::import::{ImportOptions, ImportReport, import};
use crate::store::SqliteStore;

/// Where a running import stands.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub current: String,
}

/// A running import.
pub struct ImportJob {
    progress: Arc<Mutex<Progress>>,
    cancel: Arc<AtomicBool>,
    result: Receiver<Result<ImportReport, String>>,
}

impl ImportJob {
    /// Start importing `inputs` into the project at `project` on a new thread.
    pub fn start(project: PathBuf, inputs: Vec<PathBuf>, options: ImportOptions) -> Self {
        let progress = Arc::new(Mutex::new(Progress::default()));
        let cancel = Arc::new(AtomicBool::new(false));
        let (tx, rx) = channel();
        let (p, c) = (progress.clone(), cancel.clone());
        let spawned = std::thread::Builder::new()
            .name("import".into())
            .spawn(move || {
                let outcome = SqliteStore::open(&project)
                    .and_then(|mut store| {
                        import(&mut store, &inputs, &options, &c, &mut |step| {
                            if let Ok(mut g) = p.lock() {
                                g.done = step.done;
                                g.total = step.total;
                                g.current = step
                                    .current
                                    .file_name()
                                    .map(|n| n.to_string_lossy().into_owned())
                                    .unwrap_or_default();
                            }
                        })
                    })
                    .map_err(|e| e.to_string());
                let _ = tx.send(outcome);
            });
        if let Err(e) = spawned {
            let (tx, rx2) = channel();
            let _ = tx.send(Err(format!("cannot start the import: {e}")));
            return Self {
                progress,
                cancel,
                result: rx2,
            };
        }
        Self {
            progress,
            cancel,
            result: rx,
        }
    }

    pub fn progress(&self) -> Progress {
        self.progress.lock().map(|g| g.clone()).unwrap_or_default()
    }

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// The report once the job has finished.
    pub fn finished(&self) -> Option<Result<ImportReport, String>> {
        self.result.try_recv().ok()
    }
}
