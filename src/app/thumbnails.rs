//! List thumbnails, made on background threads and cached on disk by image hash.
//!
//! JPEGs are decoded at a reduced DCT scale, so a thumbnail of a huge photo costs a fraction of
//! a full decode. The UI asks with [`Thumbnailer::request`] and collects finished pictures with
//! [`Thumbnailer::poll`] once a frame; it never waits.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};

use image::RgbaImage;

use crate::dataset::ImageId;
use crate::imagery::{PixelBudget, decode, preview, thumbnail};

/// Longest side of a list thumbnail.
pub const THUMB_SIDE: u32 = 192;

/// Which picture of an image (only list thumbnails for now).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Thumb,
}

impl Kind {
    fn side(self) -> u32 {
        THUMB_SIDE
    }

    fn file_name(self, id: &ImageId) -> String {
        format!("{id}-{}.png", self.side())
    }
}

/// A picture as the UI holds it: loading, a texture, or why it failed.
pub enum Picture {
    Loading,
    Ready(egui::TextureHandle),
    Failed(String),
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

    /// Ask for a picture.
    pub fn request(&self, id: ImageId, path: PathBuf, kind: Kind) {
        let Ok(mut guard) = self.queue.jobs.lock() else {
            return;
        };
        guard.0.push_back(Job { id, path, kind });
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

/// Read the picture from the cache, or make it (from a reduced JPEG decode where possible).
fn make(job: &Job, cache_dir: &Path, budget: PixelBudget) -> Result<RgbaImage, String> {
    let cached = cache_dir.join(job.kind.file_name(&job.id));
    if let Ok(img) = image::open(&cached) {
        return Ok(img.to_rgba8());
    }
    let side = job.kind.side();
    let bytes = std::fs::read(&job.path).map_err(|e| format!("{}: {e}", job.path.display()))?;
    let full = match preview::scaled_jpeg(&job.path, &bytes, side) {
        Some(Ok(rgb)) => image::DynamicImage::ImageRgb8(rgb),
        Some(Err(e)) => return Err(e.to_string()),
        None => decode::decode_bytes(&job.path, &bytes, budget).map_err(|e| e.to_string())?,
    };
    let pic = thumbnail::thumbnail(&full, side);
    if let Err(e) = store(cache_dir, &job.kind.file_name(&job.id), &pic) {
        tracing::warn!("thumbnail cache not written: {e}");
    }
    Ok(pic)
}

fn store(dir: &Path, name: &str, pic: &RgbaImage) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let tmp = dir.join(format!("{name}.tmp"));
    pic.save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, dir.join(name)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(t: &Thumbnailer) -> Done {
        loop {
            if let Some(d) = t.poll().pop() {
                return d;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn makes_a_thumbnail_and_reads_the_cache_after() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.png");
        image::RgbImage::from_fn(3000, 1000, |x, _| image::Rgb([(x % 256) as u8, 0, 0]))
            .save(&src)
            .unwrap();
        let id = ImageId::of_file(&src).unwrap();
        let cache = dir.path().join("cache");
        let t = Thumbnailer::new(cache.clone(), PixelBudget::DEFAULT, 1);
        t.request(id.clone(), src.clone(), Kind::Thumb);
        assert_eq!(next(&t).result.unwrap().dimensions(), (192, 64));
        // With the source gone, the thumbnail still comes from the cache.
        std::fs::remove_file(&src).unwrap();
        t.request(id, src, Kind::Thumb);
        assert_eq!(next(&t).result.unwrap().dimensions(), (192, 64));
    }

    #[test]
    fn a_jpeg_thumbnail_comes_from_a_reduced_decode() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.jpg");
        image::RgbImage::from_fn(4000, 2000, |x, _| image::Rgb([(x % 256) as u8, 50, 0]))
            .save(&src)
            .unwrap();
        let t = Thumbnailer::new(dir.path().join("c"), PixelBudget::DEFAULT, 1);
        t.request(ImageId::of_file(&src).unwrap(), src, Kind::Thumb);
        assert_eq!(next(&t).result.unwrap().dimensions(), (192, 96));
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
