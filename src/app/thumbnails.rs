//! Thumbnails and fitted previews, made on background threads and cached on disk by image hash.
//!
//! One full decode makes both sizes, so opening an image after its thumbnail was made costs a
//! small cached read. The UI asks with [`Thumbnailer::request`] and collects finished pictures
//! with [`Thumbnailer::poll`] once a frame; it never waits.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};

use image::RgbaImage;

use crate::dataset::ImageId;
use crate::imagery::{PixelBudget, decode, thumbnail};

/// Longest side of a list thumbnail.
pub const THUMB_SIDE: u32 = 192;
/// Longest side of the fitted preview shown in the Annotate view.
pub const PREVIEW_SIDE: u32 = 2048;

/// Which picture of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Thumb,
    Preview,
}

impl Kind {
    fn side(self) -> u32 {
        match self {
            Kind::Thumb => THUMB_SIDE,
            Kind::Preview => PREVIEW_SIDE,
        }
    }

    fn file_name(self, id: &ImageId) -> String {
        match self {
            Kind::Thumb => format!("{id}-{THUMB_SIDE}.png"),
            Kind::Preview => format!("{id}-{PREVIEW_SIDE}.jpg"),
        }
    }
}

/// A finished request.
pub struct Done {
    pub id: ImageId,
    pub kind: Kind,
    pub result: Result<RgbaImage, String>,
}

struct Job {
    id: ImageId,
    path: PathBuf,
    kind: Kind,
}

struct Queue {
    jobs: Mutex<(VecDeque<Job>, bool)>,
    ready: Condvar,
}

/// A small pool of worker threads making thumbnails and previews.
pub struct Thumbnailer {
    queue: Arc<Queue>,
    done: Receiver<Done>,
    cache_dir: PathBuf,
}

impl Thumbnailer {
    pub fn new(cache_dir: PathBuf, budget: PixelBudget, workers: usize) -> Self {
        let queue = Arc::new(Queue {
            jobs: Mutex::new((VecDeque::new(), false)),
            ready: Condvar::new(),
        });
        let (tx, rx) = channel();
        for n in 0..workers.max(1) {
            let queue = queue.clone();
            let tx: Sender<Done> = tx.clone();
            let dir = cache_dir.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("thumbnailer-{n}"))
                .spawn(move || worker(&queue, &tx, &dir, budget));
            if let Err(e) = spawned {
                tracing::error!("cannot start a thumbnail worker: {e}");
            }
        }
        Self {
            queue,
            done: rx,
            cache_dir,
        }
    }

    /// Ask for a picture. Previews jump the queue: the person is waiting for them.
    pub fn request(&self, id: ImageId, path: PathBuf, kind: Kind) {
        let Ok(mut guard) = self.queue.jobs.lock() else {
            return;
        };
        let job = Job { id, path, kind };
        match kind {
            Kind::Preview => guard.0.push_front(job),
            Kind::Thumb => guard.0.push_back(job),
        }
        self.queue.ready.notify_one();
    }

    /// Drop queued thumbnail jobs (e.g. when another project opens).
    pub fn clear(&self) {
        if let Ok(mut guard) = self.queue.jobs.lock() {
            guard.0.clear();
        }
    }

    /// Everything finished since the last call.
    pub fn poll(&self) -> Vec<Done> {
        self.done.try_iter().collect()
    }

    /// Jobs still waiting.
    pub fn pending(&self) -> usize {
        self.queue.jobs.lock().map(|g| g.0.len()).unwrap_or(0)
    }

    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }
}

impl Drop for Thumbnailer {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.queue.jobs.lock() {
            guard.0.clear();
            guard.1 = true;
        }
        self.queue.ready.notify_all();
    }
}

fn worker(queue: &Queue, tx: &Sender<Done>, cache_dir: &Path, budget: PixelBudget) {
    loop {
        let job = {
            let Ok(mut guard) = queue.jobs.lock() else {
                return;
            };
            loop {
                if guard.1 {
                    return;
                }
                if let Some(job) = guard.0.pop_front() {
                    break job;
                }
                guard = match queue.ready.wait(guard) {
                    Ok(g) => g,
                    Err(_) => return,
                };
            }
        };
        let result = make(&job, cache_dir, budget);
        if tx
            .send(Done {
                id: job.id,
                kind: job.kind,
                result,
            })
            .is_err()
        {
            return;
        }
    }
}

/// Read the picture from the cache, or decode the image once and cache both sizes.
fn make(job: &Job, cache_dir: &Path, budget: PixelBudget) -> Result<RgbaImage, String> {
    let cached = cache_dir.join(job.kind.file_name(&job.id));
    if let Ok(img) = image::open(&cached) {
        return Ok(img.to_rgba8());
    }
    let full = decode::decode_file(&job.path, budget).map_err(|e| e.to_string())?;
    let mut wanted = None;
    for kind in [Kind::Thumb, Kind::Preview] {
        let pic = thumbnail::thumbnail(&full, kind.side());
        if let Err(e) = store(cache_dir, &kind.file_name(&job.id), &pic) {
            tracing::warn!("thumbnail cache not written: {e}");
        }
        if kind == job.kind {
            wanted = Some(pic);
        }
    }
    wanted.ok_or_else(|| "no picture was made".to_owned())
}

fn store(dir: &Path, name: &str, pic: &RgbaImage) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let tmp = dir.join(format!("{name}.tmp"));
    let format = if name.ends_with(".png") {
        image::ImageFormat::Png
    } else {
        image::ImageFormat::Jpeg
    };
    let rgb = image::DynamicImage::ImageRgba8(pic.clone()).to_rgb8();
    let result = if format == image::ImageFormat::Png {
        pic.save_with_format(&tmp, format)
    } else {
        rgb.save_with_format(&tmp, format)
    };
    result.map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, dir.join(name)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_both_sizes_from_one_decode_and_reads_the_cache_after() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.png");
        image::RgbImage::from_fn(3000, 1000, |x, _| image::Rgb([(x % 256) as u8, 0, 0]))
            .save(&src)
            .unwrap();
        let id = ImageId::of_file(&src).unwrap();
        let cache = dir.path().join("cache");
        let t = Thumbnailer::new(cache.clone(), PixelBudget::DEFAULT, 1);
        t.request(id.clone(), src.clone(), Kind::Thumb);
        let done = loop {
            if let Some(d) = t.poll().pop() {
                break d;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(done.result.unwrap().dimensions(), (192, 64));
        assert!(cache.join(Kind::Preview.file_name(&id)).is_file());
        // With the source gone, the preview still comes from the cache.
        std::fs::remove_file(&src).unwrap();
        t.request(id, src, Kind::Preview);
        let done = loop {
            if let Some(d) = t.poll().pop() {
                break d;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(done.result.unwrap().dimensions(), (2048, 683));
    }

    #[test]
    fn a_missing_file_reports_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let t = Thumbnailer::new(dir.path().join("c"), PixelBudget::DEFAULT, 1);
        t.request(
            ImageId::of_bytes(b"x"),
            dir.path().join("nope.jpg"),
            Kind::Thumb,
        );
        let done = loop {
            if let Some(d) = t.poll().pop() {
                break d;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert!(done.result.unwrap_err().contains("nope.jpg"));
    }
}
