//! The tile service: builds pyramids on background threads and serves tiles from RAM, then
//! disk, so the canvas never waits.
//!
//! Opening an image queues its build (unless its pyramid is already on disk); opening another
//! cancels a build that is no longer wanted; prefetches build the next images' pyramids at low
//! priority. Tiles are handed out as `Arc`s from a RAM cache bounded in bytes; a tile that is on
//! disk but not in RAM is loaded by a worker and shows up a frame later. The UI polls
//! [`TileService::generation`] to know when something new is ready.

mod build;
mod source;

use build::{set_status, worker};

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use image::RgbImage;

use super::disk_cache::DiskTileCache;
use super::lru::ByteLru;
use super::pyramid::{PyramidLayout, TILE, TileKey};
use super::rows;
use super::strips::StripPyramid;
use super::{PixelBudget, exif_thumb, preview};
use crate::dataset::ImageId;
use crate::geometry::ImageSize;

/// Where an image's pyramid stands.
#[derive(Debug, Clone, PartialEq)]
pub enum BuildStatus {
    Queued,
    Decoding,
    /// Tiles written so far, of all.
    Tiling {
        done: usize,
        total: usize,
    },
    Complete,
    Failed(String),
    Cancelled,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Priority {
    Load = 0,
    Open = 1,
    Prefetch = 2,
}

enum Job {
    Load {
        id: ImageId,
        key: TileKey,
    },
    Build {
        id: ImageId,
        path: PathBuf,
        size: ImageSize,
        cancel: Arc<AtomicBool>,
    },
}

struct State {
    /// Jobs by (priority, sequence): loads first, then opened images, then prefetches.
    queue: BTreeMap<(Priority, u64), Job>,
    seq: u64,
    loading: HashSet<(ImageId, TileKey)>,
    status: BTreeMap<ImageId, BuildStatus>,
    cancels: BTreeMap<ImageId, (Arc<AtomicBool>, Priority)>,
    previews: BTreeMap<ImageId, Arc<RgbImage>>,
    /// Where each image asked for lives, to rebuild it if its cache turns out damaged.
    sources: BTreeMap<ImageId, (PathBuf, ImageSize)>,
    /// Images whose original could not give their full-resolution rows (gone or changed):
    /// asked for once, said once, then drawn from their coarser levels.
    source_failed: std::collections::BTreeSet<ImageId>,
    /// Images being built whose full resolution will come from the original (band-decoded
    /// JPEGs): their pyramid on disk is only the levels below it.
    banded: std::collections::BTreeSet<ImageId>,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    ram: Mutex<ByteLru<(ImageId, TileKey), Arc<RgbImage>>>,
    disk: DiskTileCache,
    /// The original whose full-resolution rows were last decoded again (see `source`).
    source: Mutex<Option<source::OpenSource>>,
    /// Bytes the disk cache may hold (see [`DiskTileCache::enforce`]).
    disk_budget: AtomicU64,
    /// The disk cache could not be written (said once; images still show from memory).
    disk_failed: std::sync::atomic::AtomicBool,
    budget: PixelBudget,
    generation: AtomicU64,
}

/// Builds and serves tiles for any number of images.
pub struct TileService {
    shared: Arc<Shared>,
}

impl TileService {
    /// `ram_bytes` bounds the RAM tile cache; `workers` threads build and load.
    pub fn new(
        cache_dir: &std::path::Path,
        ram_bytes: usize,
        budget: PixelBudget,
        workers: usize,
    ) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: BTreeMap::new(),
                seq: 0,
                loading: HashSet::new(),
                status: BTreeMap::new(),
                cancels: BTreeMap::new(),
                previews: BTreeMap::new(),
                sources: BTreeMap::new(),
                source_failed: std::collections::BTreeSet::new(),
                banded: std::collections::BTreeSet::new(),
                shutdown: false,
            }),
            wake: Condvar::new(),
            ram: Mutex::new(ByteLru::new(ram_bytes)),
            disk: DiskTileCache::new(cache_dir),
            source: Mutex::new(None),
            disk_budget: AtomicU64::new(super::disk_cache::default_budget(cache_dir)),
            disk_failed: std::sync::atomic::AtomicBool::new(false),
            budget,
            generation: AtomicU64::new(0),
        });
        for n in 0..workers.max(1) {
            let shared = shared.clone();
            if let Err(e) = std::thread::Builder::new()
                .name(format!("tiles-{n}"))
                .spawn(move || worker(&shared))
            {
                tracing::error!("cannot start a tile worker: {e}");
            }
        }
        Self { shared }
    }

    /// Bound the disk cache to `bytes` (the default is a tenth of the free space, at most
    /// 20 GiB); least recently used images go first when a new pyramid is finished.
    pub fn set_disk_budget(&self, bytes: u64) {
        self.shared.disk_budget.store(bytes, Ordering::Relaxed);
    }

    pub fn disk_budget(&self) -> u64 {
        self.shared.disk_budget.load(Ordering::Relaxed)
    }

    /// The disk cache, for its size and for clearing it.
    pub fn disk(&self) -> &DiskTileCache {
        &self.shared.disk
    }

    /// Changes whenever a tile, a preview or a status becomes available.
    pub fn generation(&self) -> u64 {
        self.shared.generation.load(Ordering::Acquire)
    }

    /// Show this image: build its pyramid now (unless it is on disk), and cancel the builds of
    /// other opened images that are not finished.
    pub fn open(&self, id: &ImageId, path: PathBuf, size: ImageSize) {
        self.enqueue_build(id, path, size, Priority::Open);
    }

    /// Build this image's pyramid in the background, after anything the person is looking at.
    pub fn prefetch(&self, id: &ImageId, path: PathBuf, size: ImageSize) {
        self.enqueue_build(id, path, size, Priority::Prefetch);
    }

    fn enqueue_build(&self, id: &ImageId, path: PathBuf, size: ImageSize, priority: Priority) {
        if let Ok(mut st) = self.shared.state.lock() {
            st.sources.insert(id.clone(), (path.clone(), size));
        }
        if self.shared.disk.is_complete(id) {
            if priority == Priority::Open {
                self.shared.disk.touch(id);
            }
            self.set_status(id, BuildStatus::Complete);
            return;
        }
        let Ok(mut st) = self.shared.state.lock() else {
            return;
        };
        if priority == Priority::Open {
            // The person moved on: stop other opened builds that are not done.
            for (other, (flag, p)) in &st.cancels {
                if other != id && *p == Priority::Open {
                    flag.store(true, Ordering::Relaxed);
                }
            }
        }
        match st.status.get(id) {
            // Complete in this session, but its pyramid is no longer whole on disk (the cache
            // evicted part of it): build it again, unless the cache cannot be written at all
            // (then its tiles are served from memory, rebuilt when they fall out).
            Some(BuildStatus::Complete) if self.shared.disk_failed.load(Ordering::Relaxed) => {
                return;
            }
            Some(BuildStatus::Queued | BuildStatus::Decoding | BuildStatus::Tiling { .. })
                if st
                    .cancels
                    .get(id)
                    .is_some_and(|(f, _)| !f.load(Ordering::Relaxed)) =>
            {
                if let Some(entry) = st.cancels.get_mut(id) {
                    entry.1 = entry.1.min(priority);
                }
                return;
            }
            _ => {}
        }
        let cancel = Arc::new(AtomicBool::new(false));
        st.cancels.insert(id.clone(), (cancel.clone(), priority));
        st.status.insert(id.clone(), BuildStatus::Queued);
        st.seq += 1;
        let seq = st.seq;
        st.queue.insert(
            (priority, seq),
            Job::Build {
                id: id.clone(),
                path,
                size,
                cancel,
            },
        );
        drop(st);
        self.shared.wake.notify_one();
    }

    fn set_status(&self, id: &ImageId, status: BuildStatus) {
        set_status(&self.shared, id, status);
    }

    pub fn status(&self, id: &ImageId) -> Option<BuildStatus> {
        self.shared.state.lock().ok()?.status.get(id).cloned()
    }

    /// The quick coarse picture of the whole image, when one was made.
    pub fn preview(&self, id: &ImageId) -> Option<Arc<RgbImage>> {
        self.shared.state.lock().ok()?.previews.get(id).cloned()
    }

    /// A tile if it is in RAM now; otherwise asks for it to be loaded from disk (when it is
    /// there) and returns `None`.
    pub fn tile(&self, id: &ImageId, key: TileKey) -> Option<Arc<RgbImage>> {
        let k = (id.clone(), key);
        if let Some(t) = self.shared.ram.lock().ok()?.get(&k) {
            return Some(t.clone());
        }
        let Ok(mut st) = self.shared.state.lock() else {
            return None;
        };
        if st.loading.contains(&k) || (key.level == 0 && st.source_failed.contains(id)) {
            return None;
        }
        // A complete pyramid has every tile on disk: no need to ask the file system (this
        // runs on the UI thread, many times a frame).
        let on_disk = matches!(st.status.get(id), Some(BuildStatus::Complete))
            || self.shared.disk.tile_path(id, key).is_file();
        if on_disk {
            st.loading.insert(k);
            st.seq += 1;
            let seq = st.seq;
            st.queue.insert(
                (Priority::Load, seq),
                Job::Load {
                    id: id.clone(),
                    key,
                },
            );
            drop(st);
            self.shared.wake.notify_one();
        }
        None
    }

    /// The pixels of `rect` (whole pixels, inside the image) at full resolution, assembled from
    /// level-0 tiles; `None` until every tile it needs is in RAM (missing ones are asked for).
    pub fn crop(
        &self,
        id: &ImageId,
        size: ImageSize,
        rect: &crate::geometry::ImageRect,
    ) -> Option<RgbImage> {
        self.crop_level(id, size, 0, rect)
    }

    /// A whole pyramid level as one picture; `None` until all its tiles are in RAM.
    pub fn level_image(&self, id: &ImageId, size: ImageSize, level: u32) -> Option<RgbImage> {
        let s = PyramidLayout::new(size).level_size(level);
        let all =
            crate::geometry::ImageRect::new(0.0, 0.0, f64::from(s.width), f64::from(s.height));
        self.crop_level(id, size, level, &all)
    }

    /// The pixels of `rect`, given in `level`'s own pixels, assembled from that level's tiles.
    fn crop_level(
        &self,
        id: &ImageId,
        size: ImageSize,
        level: u32,
        rect: &crate::geometry::ImageRect,
    ) -> Option<RgbImage> {
        let layout = PyramidLayout::new(size);
        if level > layout.top() {
            return None;
        }
        let ls = layout.level_size(level);
        let (x0, y0) = (rect.x0.max(0.0) as u32, rect.y0.max(0.0) as u32);
        let (x1, y1) = (
            (rect.x1.min(f64::from(ls.width))) as u32,
            (rect.y1.min(f64::from(ls.height))) as u32,
        );
        if x1 <= x0 || y1 <= y0 {
            return None;
        }
        let tile = super::pyramid::TILE;
        // First every tile (asking for the missing ones); the picture is only assembled once
        // all are in memory, so waiting frames cost no large allocation.
        let mut parts = Vec::new();
        let mut complete = true;
        for row in y0 / tile..=(y1 - 1) / tile {
            for col in x0 / tile..=(x1 - 1) / tile {
                let key = TileKey { level, col, row };
                match self.tile(id, key) {
                    Some(t) => parts.push((key, t)),
                    None => complete = false,
                }
            }
        }
        if !complete {
            return None;
        }
        let mut out = RgbImage::new(x1 - x0, y1 - y0);
        for (key, t) in parts {
            let (tx, ty, _, _) = layout.tile_rect(key);
            image::imageops::replace(
                &mut out,
                t.as_ref(),
                i64::from(tx) - i64::from(x0),
                i64::from(ty) - i64::from(y0),
            );
        }
        Some(out)
    }

    /// Bytes of tiles held in RAM, and the bound.
    pub fn ram_usage(&self) -> (usize, usize) {
        self.shared
            .ram
            .lock()
            .map(|r| (r.used(), r.budget()))
            .unwrap_or((0, 0))
    }

    /// Forget queued loads (the view moved); builds go on.
    pub fn drop_pending_loads(&self) {
        if let Ok(mut st) = self.shared.state.lock() {
            st.queue.retain(|(p, _), _| *p != Priority::Load);
            st.loading.clear();
        }
    }
}

impl Drop for TileService {
    fn drop(&mut self) {
        if let Ok(mut st) = self.shared.state.lock() {
            st.shutdown = true;
            st.queue.clear();
            for (flag, _) in st.cancels.values() {
                flag.store(true, Ordering::Relaxed);
            }
        }
        self.shared.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_for(
        service: &TileService,
        id: &ImageId,
        want: impl Fn(&BuildStatus) -> bool,
    ) -> BuildStatus {
        let start = std::time::Instant::now();
        loop {
            if let Some(s) = service.status(id)
                && want(&s)
            {
                return s;
            }
            assert!(start.elapsed().as_secs() < 60, "timed out");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn builds_every_tile_then_serves_from_disk_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.png");
        let img = RgbImage::from_fn(1300, 700, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 3])
        });
        img.save(&src).unwrap();
        let id = ImageId::of_file(&src).unwrap();
        let size = ImageSize::new(1300, 700);
        {
            let s = TileService::new(dir.path(), 64 << 20, PixelBudget::DEFAULT, 2);
            s.open(&id, src.clone(), size);
            assert_eq!(
                wait_for(&s, &id, |st| matches!(st, BuildStatus::Complete)),
                BuildStatus::Complete
            );
            let t = s
                .tile(
                    &id,
                    TileKey {
                        level: 0,
                        col: 2,
                        row: 1,
                    },
                )
                .unwrap();
            assert_eq!(t.dimensions(), (276, 188));
            assert_eq!(t.get_pixel(0, 0), img.get_pixel(1024, 512));
        }
        // A new service (a restart): nothing to build, tiles come from disk.
        std::fs::remove_file(&src).unwrap();
        let s = TileService::new(dir.path(), 64 << 20, PixelBudget::DEFAULT, 1);
        s.open(&id, src, size);
        assert_eq!(s.status(&id), Some(BuildStatus::Complete));
        let key = TileKey {
            level: 1,
            col: 0,
            row: 0,
        };
        assert!(s.tile(&id, key).is_none());
        let start = std::time::Instant::now();
        let tile = loop {
            if let Some(t) = s.tile(&id, key) {
                break t;
            }
            assert!(start.elapsed().as_secs() < 30);
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        assert_eq!(tile.dimensions(), (512, 350));
    }

    #[test]
    fn a_whole_level_is_assembled_from_its_tiles() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("b.png");
        let img = RgbImage::from_fn(3000, 2000, |x, y| {
            image::Rgb([(x % 251) as u8, (y % 241) as u8, 7])
        });
        img.save(&src).unwrap();
        let id = ImageId::of_file(&src).unwrap();
        let size = ImageSize::new(3000, 2000);
        // A RAM budget that holds the whole level, as the app's does.
        let s = TileService::new(dir.path(), 64 << 20, PixelBudget::DEFAULT, 2);
        s.open(&id, src, size);
        wait_for(&s, &id, |st| matches!(st, BuildStatus::Complete));
        let start = std::time::Instant::now();
        let whole = loop {
            if let Some(l) = s.level_image(&id, size, 0) {
                break l;
            }
            assert!(start.elapsed().as_secs() < 30, "level 0 never assembled");
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(whole.dimensions(), (3000, 2000));
        assert_eq!(whole.get_pixel(2999, 1999), img.get_pixel(2999, 1999));
        let half = loop {
            if let Some(l) = s.level_image(&id, size, 1) {
                break l;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(half.dimensions(), (1500, 1000));
    }

    #[test]
    fn a_wide_jpeg_previews_its_band_decoders_eighth_and_a_small_one_a_finer_scale() {
        let dir = tempfile::tempdir().unwrap();
        let s = TileService::new(dir.path(), 64 << 20, PixelBudget::DEFAULT, 1);
        for (w, h, want) in [(4096u32, 512u32, (512u32, 64u32)), (600, 400, (600, 400))] {
            let src = dir.path().join(format!("wide{w}.jpg"));
            RgbImage::from_fn(w, h, |x, y| image::Rgb([(x / 16) as u8, (y / 2) as u8, 80]))
                .save(&src)
                .unwrap();
            let id = ImageId::of_file(&src).unwrap();
            s.open(&id, src, ImageSize::new(w, h));
            wait_for(&s, &id, |st| matches!(st, BuildStatus::Complete));
            let preview = s.preview(&id).unwrap();
            assert_eq!(preview.dimensions(), want, "{w}x{h}");
        }
    }

    #[test]
    fn a_corrupt_file_fails_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("bad.jpg");
        std::fs::write(&src, b"\xFF\xD8\xFF\xE0 definitely not a jpeg").unwrap();
        let id = ImageId::of_file(&src).unwrap();
        let s = TileService::new(dir.path(), 1 << 20, PixelBudget::DEFAULT, 1);
        s.open(&id, src, ImageSize::new(10, 10));
        match wait_for(&s, &id, |st| matches!(st, BuildStatus::Failed(_))) {
            BuildStatus::Failed(msg) => assert!(msg.contains("bad.jpg"), "{msg}"),
            _ => unreachable!(),
        }
    }

    #[test]
    fn ram_use_stays_within_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("big.png");
        RgbImage::from_fn(2600, 2100, |x, y| image::Rgb([x as u8, y as u8, 0]))
            .save(&src)
            .unwrap();
        let id = ImageId::of_file(&src).unwrap();
        let bound = 3 * 512 * 512 * 3; // three full tiles
        let s = TileService::new(dir.path(), bound, PixelBudget::DEFAULT, 1);
        s.open(&id, src, ImageSize::new(2600, 2100));
        wait_for(&s, &id, |st| matches!(st, BuildStatus::Complete));
        let (used, budget) = s.ram_usage();
        assert!(used <= budget && used > 0, "{used} of {budget}");
    }
    /// An independent, plain reference of the 2x2 box reduction (edges average what they have).
    fn reference_half(src: &RgbImage) -> RgbImage {
        let (w, h) = src.dimensions();
        RgbImage::from_fn(w.div_ceil(2), h.div_ceil(2), |x, y| {
            let mut sum = [0u32; 3];
            let mut n = 0;
            for dy in 0..2 {
                for dx in 0..2 {
                    let (sx, sy) = (2 * x + dx, 2 * y + dy);
                    if sx < w && sy < h {
                        let p = src.get_pixel(sx, sy).0;
                        for c in 0..3 {
                            sum[c] += u32::from(p[c]);
                        }
                        n += 1;
                    }
                }
            }
            image::Rgb(sum.map(|v| ((v + n / 2) / n) as u8))
        })
    }

    /// Build `name` (written from `img` by its extension) through the service and check every
    /// level stitched from its cached tiles against `full` halved again and again.
    fn check_stitched_levels(name: &str, img: &RgbImage, full: impl Fn(&[u8]) -> RgbImage) {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join(name);
        img.save(&src).unwrap();
        let (w, h) = img.dimensions();
        let id = ImageId::of_file(&src).unwrap();
        let s = TileService::new(dir.path(), 256 << 20, PixelBudget::DEFAULT, 1);
        let mut reference = full(&std::fs::read(&src).unwrap());
        s.open(&id, src, ImageSize::new(w, h));
        wait_for(&s, &id, |st| matches!(st, BuildStatus::Complete));
        let layout = PyramidLayout::new(ImageSize::new(w, h));
        let disk = DiskTileCache::new(dir.path());
        for level in 0..=layout.top() {
            let size = layout.level_size(level);
            assert_eq!(reference.dimensions(), (size.width, size.height));
            let mut stitched = RgbImage::new(size.width, size.height);
            for key in layout.tiles(level) {
                // A JPEG's full resolution comes from its original, through the service.
                let tile = disk
                    .read(&id, key)
                    .map(Arc::new)
                    .unwrap_or_else(|| source::tests::wait_tile(&s, &id, key));
                let (x, y, w, h) = layout.tile_rect(key);
                assert_eq!(tile.dimensions(), (w, h), "{key:?}");
                image::imageops::replace(&mut stitched, tile.as_ref(), i64::from(x), i64::from(y));
            }
            assert!(
                stitched == reference,
                "{name}: level {level} differs from the reference"
            );
            reference = reference_half(&reference);
        }
    }

    #[test]
    fn every_level_stitched_from_tiles_equals_the_reference_downscale() {
        let img = RgbImage::from_fn(1537, 1029, |x, y| {
            let h = crate::rng::mix(u64::from(x) << 32 | u64::from(y));
            image::Rgb([h as u8, (h >> 8) as u8, (h >> 16) as u8])
        });
        check_stitched_levels("noise.png", &img, |_| img.clone());
        // A JPEG goes band by band through our band decoder: the levels are those of its
        // pixels decoded whole.
        let photo = RgbImage::from_fn(2100, 1300, |x, y| {
            image::Rgb([(x / 9) as u8, (y / 6) as u8, ((x + y) % 256) as u8])
        });
        check_stitched_levels("photo.jpg", &photo, |bytes| {
            let bands = crate::imagery::jpeg::JpegBands::open(bytes, 1).unwrap();
            bands.rows(0..bands.height(), 1).unwrap()
        });
    }

    #[test]
    fn opening_another_image_cancels_the_unfinished_build_and_prefetch_builds_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.png");
        RgbImage::from_fn(4000, 3000, |x, y| {
            image::Rgb([x as u8, y as u8, (x ^ y) as u8])
        })
        .save(&big)
        .unwrap();
        let small = dir.path().join("small.png");
        RgbImage::from_fn(600, 400, |x, _| image::Rgb([x as u8, 0, 0]))
            .save(&small)
            .unwrap();
        let next = dir.path().join("next.png");
        RgbImage::from_fn(700, 300, |_, y| image::Rgb([0, y as u8, 0]))
            .save(&next)
            .unwrap();
        let (a, b, c) = (
            ImageId::of_file(&big).unwrap(),
            ImageId::of_file(&small).unwrap(),
            ImageId::of_file(&next).unwrap(),
        );
        let s = TileService::new(dir.path(), 64 << 20, PixelBudget::DEFAULT, 1);
        s.open(&a, big, ImageSize::new(4000, 3000));
        // Decoding 12 MP takes far longer than this call: the person moved on at once.
        s.open(&b, small, ImageSize::new(600, 400));
        s.prefetch(&c, next, ImageSize::new(700, 300));
        assert_eq!(
            wait_for(&s, &a, |st| matches!(
                st,
                BuildStatus::Cancelled | BuildStatus::Complete
            )),
            BuildStatus::Cancelled
        );
        wait_for(&s, &b, |st| matches!(st, BuildStatus::Complete));
        wait_for(&s, &c, |st| matches!(st, BuildStatus::Complete));
        let disk = DiskTileCache::new(dir.path());
        assert!(!disk.is_complete(&a));
        assert!(disk.is_complete(&b) && disk.is_complete(&c));
    }
    #[test]
    fn an_unwritable_cache_folder_still_shows_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        std::fs::create_dir_all(&cache).unwrap();
        // A file where the tile folder should be: no tile can be written (even as root).
        std::fs::write(cache.join("tiles"), b"not a folder").unwrap();
        let src = dir.path().join("a.png");
        RgbImage::from_fn(900, 700, |x, y| image::Rgb([x as u8, y as u8, 7]))
            .save(&src)
            .unwrap();
        let id = ImageId::of_file(&src).unwrap();
        let s = TileService::new(&cache, 64 << 20, PixelBudget::DEFAULT, 1);
        s.open(&id, src, ImageSize::new(900, 700));
        wait_for(&s, &id, |st| matches!(st, BuildStatus::Complete));
        let key = TileKey {
            level: 0,
            col: 0,
            row: 0,
        };
        assert!(s.tile(&id, key).is_some(), "served from memory");
        assert!(!s.disk().is_complete(&id));
        assert!(s.disk().usage().is_empty());
    }

    #[test]
    fn paging_through_images_keeps_the_disk_cache_within_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        let s = TileService::new(dir.path(), 64 << 20, PixelBudget::DEFAULT, 1);
        let mut ids = Vec::new();
        for i in 0..4u32 {
            let path = dir.path().join(format!("p{i}.png"));
            RgbImage::from_fn(1500, 1000, |x, y| {
                image::Rgb([(x + i) as u8, y as u8, (x ^ y) as u8])
            })
            .save(&path)
            .unwrap();
            ids.push((ImageId::of_file(&path).unwrap(), path));
        }
        // The first pyramid's size sets a budget of about two of them.
        let (first, path) = &ids[0];
        s.open(first, path.clone(), ImageSize::new(1500, 1000));
        wait_for(&s, first, |st| matches!(st, BuildStatus::Complete));
        let one = s.disk().usage()[0].bytes;
        s.set_disk_budget(one * 2 + one / 2);
        for (id, path) in &ids[1..] {
            s.open(id, path.clone(), ImageSize::new(1500, 1000));
            wait_for(&s, id, |st| matches!(st, BuildStatus::Complete));
        }
        let usage = s.disk().usage();
        let total: u64 = usage.iter().map(|i| i.bytes).sum();
        assert!(total <= s.disk_budget(), "{total} > {}", s.disk_budget());
        // The image on screen is whole; the first one lost its full resolution or more.
        assert!(s.disk().is_complete(&ids[3].0));
        assert!(!s.disk().is_complete(&ids[0].0));
    }

    #[test]
    fn a_damaged_cached_tile_triggers_a_rebuild_instead_of_endless_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.png");
        RgbImage::from_fn(900, 700, |x, y| image::Rgb([x as u8, y as u8, 9]))
            .save(&src)
            .unwrap();
        let id = ImageId::of_file(&src).unwrap();
        let size = ImageSize::new(900, 700);
        {
            let s = TileService::new(dir.path(), 64 << 20, PixelBudget::DEFAULT, 1);
            s.open(&id, src.clone(), size);
            wait_for(&s, &id, |st| matches!(st, BuildStatus::Complete));
        }
        let key = TileKey {
            level: 0,
            col: 1,
            row: 1,
        };
        let disk = DiskTileCache::new(dir.path());
        std::fs::write(disk.tile_path(&id, key), b"damaged").unwrap();
        let s = TileService::new(dir.path(), 64 << 20, PixelBudget::DEFAULT, 1);
        s.open(&id, src, size);
        let start = std::time::Instant::now();
        let tile = loop {
            if let Some(t) = s.tile(&id, key) {
                break t;
            }
            assert!(
                start.elapsed().as_secs() < 60,
                "the damaged tile never came back"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        assert_eq!(tile.dimensions(), (388, 188));
        assert!(disk.read(&id, key).is_some(), "the cache was repaired");
    }
}
