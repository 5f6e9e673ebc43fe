//! Assisted boxing off the UI thread: one worker thread that keeps the [`Assistant`] (SAM and
//! its window embeddings, the image's band decoder) between asks, answers a click or a rough
//! box with a proposal, and runs Find against the chat server. The UI sends one ask at a
//! time and polls each frame. Cancel answers at once: the ask's answer is dropped when it
//! comes, a Find stops at its next tile, and a SAM encoder already running ends in the
//! background (candle's forward pass cannot be stopped midway).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use crate::agent::{Http, HttpSettings};
use crate::assist::assistant::{Assistant, Boxed};
use crate::assist::find::{FindSettings, Found};
use crate::dataset::ImageId;
use crate::geometry::ImageRect;

/// What is asked, about which image.
#[derive(Debug, Clone)]
pub enum Ask {
    /// The object under a click (with points to leave out, SAM only), on a window of `side`
    /// original pixels.
    Click {
        click: (f64, f64),
        negatives: Vec<(f64, f64)>,
        side: u32,
    },
    /// A rough box dragged around an object.
    Rough(ImageRect),
    /// Boxes of `text`, from the VLM on tiles of the image.
    Find {
        text: String,
        http: HttpSettings,
        max_pixels: u64,
    },
}

/// One ask with what it needs.
#[derive(Debug, Clone)]
pub struct Request {
    pub image: ImageId,
    pub path: PathBuf,
    /// SAM's weights folder, or None for the weight-free ways.
    pub weights: Option<PathBuf>,
    /// ViT-B even when TinyViT's weights are there too.
    pub vit_b: bool,
    pub ask: Ask,
}

/// What came back.
#[derive(Debug)]
pub enum Answer {
    Box(Boxed),
    Found(Found),
    /// Why nothing came back, in one line.
    Failed(String),
}

/// How far an ask has got (Find: tiles asked of all).
#[derive(Default)]
struct Progress {
    done: AtomicUsize,
    total: AtomicUsize,
}

/// What travels to the worker with a request.
struct Job {
    id: u64,
    request: Request,
    cancel: Arc<AtomicBool>,
    progress: Arc<Progress>,
}

struct Pending {
    id: u64,
    image: ImageId,
    what: String,
    started: Instant,
    cancel: Arc<AtomicBool>,
    progress: Arc<Progress>,
}

/// The UI's handle on the worker.
#[derive(Default)]
pub struct AssistJob {
    tx: Option<Sender<Job>>,
    rx: Option<Receiver<(u64, Answer)>>,
    next: u64,
    pending: Option<Pending>,
}

impl AssistJob {
    /// Send an ask (`what` says it in the status line); one still pending is cancelled.
    pub fn ask(&mut self, request: Request, what: String) -> Result<(), String> {
        self.cancel();
        if self.tx.is_none() {
            let (tx, worker_rx) = channel::<Job>();
            let (worker_tx, rx) = channel();
            std::thread::Builder::new()
                .name("assist".into())
                .spawn(move || work(&worker_rx, &worker_tx))
                .map_err(|e| format!("the assist worker could not start: {e}"))?;
            self.tx = Some(tx);
            self.rx = Some(rx);
        }
        self.next += 1;
        let cancel = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Progress::default());
        let image = request.image.clone();
        let job = Job {
            id: self.next,
            request,
            cancel: cancel.clone(),
            progress: progress.clone(),
        };
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(job).is_ok());
        if !sent {
            // The worker ended (a panic in a dependency): start a fresh one next time.
            self.tx = None;
            self.rx = None;
            return Err("the assist worker stopped; try again".into());
        }
        self.pending = Some(Pending {
            id: self.next,
            image,
            what,
            started: Instant::now(),
            cancel,
            progress,
        });
        Ok(())
    }

    /// Drop the pending ask's answer; true when there was one.
    pub fn cancel(&mut self) -> bool {
        match self.pending.take() {
            Some(p) => {
                p.cancel.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// The pending ask in words (with its tiles, for Find), and how long it has run.
    pub fn pending(&self) -> Option<(String, Duration)> {
        self.pending.as_ref().map(|p| {
            let total = p.progress.total.load(Ordering::Relaxed);
            let what = if total > 1 {
                let done = p.progress.done.load(Ordering::Relaxed);
                format!("{}, tile {} of {total}", p.what, (done + 1).min(total))
            } else {
                p.what.clone()
            };
            (what, p.started.elapsed())
        })
    }

    /// The pending ask's answer, once it is there, with the image it is about and its time.
    pub fn poll(&mut self) -> Option<(ImageId, Answer, Duration)> {
        let rx = self.rx.as_ref()?;
        while let Ok((id, answer)) = rx.try_recv() {
            if self.pending.as_ref().is_some_and(|p| p.id == id)
                && let Some(p) = self.pending.take()
            {
                return Some((p.image, answer, p.started.elapsed()));
            }
        }
        None
    }
}

/// The worker: one ask at a time, asks cancelled while queued skipped.
fn work(rx: &Receiver<Job>, tx: &Sender<(u64, Answer)>) {
    let mut assistant = Assistant::new();
    while let Ok(job) = rx.recv() {
        if job.cancel.load(Ordering::Relaxed) {
            continue;
        }
        let answer = answer(&mut assistant, job.request, &job.cancel, &job.progress);
        if tx.send((job.id, answer)).is_err() {
            return;
        }
    }
}

fn answer(
    assistant: &mut Assistant,
    request: Request,
    cancel: &AtomicBool,
    progress: &Progress,
) -> Answer {
    let path = &request.path;
    let result = match request.ask {
        Ask::Click {
            click,
            negatives,
            side,
        } => assistant
            .use_weights(request.weights.as_deref(), request.vit_b)
            .and_then(|()| assistant.click(path, click, &negatives, side))
            .map(Answer::Box),
        Ask::Rough(rough) => assistant
            .use_weights(request.weights.as_deref(), request.vit_b)
            .and_then(|()| assistant.rough(path, &rough))
            .map(Answer::Box),
        Ask::Find {
            text,
            http,
            max_pixels,
        } => {
            let mut on_tile = |i: usize, n: usize| {
                progress.total.store(n, Ordering::Relaxed);
                progress.done.store(i, Ordering::Relaxed);
            };
            return find(path, &text, http, max_pixels, cancel, &mut on_tile)
                .map_or_else(Answer::Failed, Answer::Found);
        }
    };
    result.unwrap_or_else(|e| Answer::Failed(e.to_string()))
}

fn find(
    path: &std::path::Path,
    text: &str,
    http: HttpSettings,
    max_pixels: u64,
    cancel: &AtomicBool,
    on_tile: &mut dyn FnMut(usize, usize),
) -> Result<Found, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let size = crate::imagery::probe_bytes(path, &bytes, crate::imagery::PixelBudget::DEFAULT)
        .map_err(|e| e.to_string())?
        .size;
    let scratch = tempfile::tempdir().map_err(|e| format!("a scratch folder: {e}"))?;
    let settings = FindSettings {
        max_pixels,
        ..FindSettings::default()
    };
    let mut policy = Http::new(http);
    crate::assist::find::find(
        &mut policy,
        path,
        &bytes,
        size,
        text,
        &settings,
        scratch.path(),
        cancel,
        on_tile,
    )
    .map_err(|e| e.to_string())
}
