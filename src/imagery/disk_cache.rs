//! The persistent tile cache: `<cache>/tiles/<image hash>/<level>/<col>_<row>.qoi`, and its
//! byte budget.
//!
//! Tiles are stored losslessly (QOI: fast to write and read). A `complete` file written after
//! the last tile says the pyramid is whole (and holds its byte counts), so reopening an image
//! needs no decoding at all. Every file is written under a temporary name and renamed, so a
//! crash leaves no half tile.
//!
//! A baseline JPEG's full-resolution level is not written at all: its band decoder gives any
//! 512-row band of the original again in tens of milliseconds, so a `source` file records how
//! many of its rows the original serves (and the original's length and modification time, to
//! notice it changed), and the tile service decodes those tiles from the file when they are
//! wanted. That is three quarters of a pyramid's bytes and of its encoding time.
//!
//! The cache is bounded: each image's `used` file holds when it was last shown (by any
//! process), and [`DiskTileCache::enforce`] drops least recently used images until the cache
//! fits its budget: first their full-resolution level (the biggest, about three quarters of a
//! pyramid; the lower levels stay and make reopening quick), then whole images. Images being
//! shown or built now are protected. Processes sharing the folder take turns through a lock
//! file; a tile deleted under another process reads as missing and is rebuilt.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use image::RgbImage;

use super::pyramid::TileKey;
use crate::dataset::ImageId;
use crate::store::now_ms;

#[derive(Debug, Clone)]
pub struct DiskTileCache {
    root: PathBuf,
}

impl DiskTileCache {
    /// A cache under `cache_dir/tiles`.
    pub fn new(cache_dir: &Path) -> Self {
        Self {
            root: cache_dir.join("tiles"),
        }
    }

    pub fn image_dir(&self, id: &ImageId) -> PathBuf {
        self.root.join(id.as_str())
    }

    pub fn tile_path(&self, id: &ImageId, key: TileKey) -> PathBuf {
        self.image_dir(id)
            .join(key.level.to_string())
            .join(format!("{}_{}.qoi", key.col, key.row))
    }

    /// Is the whole pyramid of this image on disk?
    pub fn is_complete(&self, id: &ImageId) -> bool {
        self.image_dir(id).join("complete").is_file()
    }

    /// Record that the whole pyramid is on disk, with its byte counts, and that it was used now.
    pub fn mark_complete(&self, id: &ImageId) -> std::io::Result<()> {
        let dir = self.image_dir(id);
        std::fs::create_dir_all(&dir)?;
        let (bytes, full) = measure(&dir);
        let _ = std::fs::remove_file(dir.join("partial"));
        write_atomic(
            &dir.join("complete"),
            format!("bytes {bytes}\nfull {full}\n").as_bytes(),
        )?;
        self.touch(id);
        Ok(())
    }

    /// Record that the first `mark.rows` full-resolution rows are served by decoding the
    /// original again (their tiles are not written). Written before the pyramid is marked
    /// complete, so a complete pyramid without level-0 tiles always says where they come from.
    pub fn mark_source(&self, id: &ImageId, mark: &SourceMark) -> std::io::Result<()> {
        let dir = self.image_dir(id);
        std::fs::create_dir_all(&dir)?;
        let text = format!(
            "rows {}\nlen {}\nmodified_ns {}\n",
            mark.rows, mark.len, mark.modified_ns
        );
        write_atomic(&dir.join("source"), text.as_bytes())
    }

    /// How many full-resolution rows of this image the original serves (`None`: every tile
    /// is in the cache, or the record is missing or damaged).
    pub fn source_mark(&self, id: &ImageId) -> Option<SourceMark> {
        let text = std::fs::read_to_string(self.image_dir(id).join("source")).ok()?;
        let field = |name: &str| -> Option<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))?
                .trim()
                .parse()
                .ok()
        };
        Some(SourceMark {
            rows: u32::try_from(field("rows")?).ok()?,
            len: field("len")?,
            modified_ns: field("modified_ns")?,
        })
    }

    /// The cache folder (`<cache>/tiles`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Note that an image was shown now (for least-recently-used eviction). A cache that
    /// cannot be written is not an error here: the image still shows.
    pub fn touch(&self, id: &ImageId) {
        let dir = self.image_dir(id);
        if dir.is_dir()
            && let Err(e) = write_atomic(&dir.join("used"), now_ms().to_string().as_bytes())
        {
            tracing::debug!("tile cache use not recorded: {e}");
        }
    }

    /// Every image in the cache, least recently used first.
    pub fn usage(&self) -> Vec<CachedImage> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut out: Vec<CachedImage> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_dir())
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_owned();
                ImageId::parse(&name)?;
                Some(cached_image(&e.path(), name))
            })
            .collect();
        out.sort_by(|a, b| a.last_used_ms.cmp(&b.last_used_ms).then(a.id.cmp(&b.id)));
        out
    }

    /// Drop least recently used images (full resolution first, then whole images) until the
    /// cache holds at most `budget` bytes; `protected` images are kept. Callers in this
    /// process take turns (each file handle is its own `flock`, so a second one here would
    /// find the folder locked and skip its eviction); another process evicting at the same
    /// time makes this a no-op.
    pub fn enforce(&self, budget: u64, protected: &BTreeSet<ImageId>) -> std::io::Result<Evicted> {
        static IN_PROCESS: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _turn = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
        let Some(_lock) = EvictLock::try_take(&self.root)? else {
            return Ok(Evicted::default());
        };
        let mut images = self.usage();
        let mut total: u64 = images.iter().map(|i| i.bytes).sum();
        let mut evicted = Evicted::default();
        let keep = |i: &CachedImage| protected.iter().any(|p| p.as_str() == i.id);
        for image in images.iter_mut() {
            if total <= budget {
                break;
            }
            if keep(image) || image.full_res_bytes == 0 {
                continue;
            }
            let dir = self.root.join(&image.id);
            // Say it is no longer whole before anything goes.
            let _ = std::fs::remove_file(dir.join("complete"));
            let rest = image.bytes.saturating_sub(image.full_res_bytes);
            write_atomic(
                &dir.join("partial"),
                format!("bytes {rest}\nfull 0\n").as_bytes(),
            )?;
            remove_dir(&dir.join("0"))?;
            total = total.saturating_sub(image.full_res_bytes);
            evicted.bytes += image.full_res_bytes;
            evicted.full_res_dropped += 1;
            image.bytes = rest;
            image.full_res_bytes = 0;
        }
        for image in &images {
            if total <= budget {
                break;
            }
            if keep(image) {
                continue;
            }
            remove_dir(&self.root.join(&image.id))?;
            total = total.saturating_sub(image.bytes);
            evicted.bytes += image.bytes;
            evicted.images_removed += 1;
        }
        evicted.left_bytes = total;
        Ok(evicted)
    }

    /// Remove every image not used since `before_ms` (all of them when `None`).
    pub fn clear(&self, before_ms: Option<i64>) -> std::io::Result<Evicted> {
        let _lock = EvictLock::take_waiting(&self.root)?;
        let mut evicted = Evicted::default();
        for image in self.usage() {
            if before_ms.is_some_and(|t| image.last_used_ms >= t) {
                evicted.left_bytes += image.bytes;
                continue;
            }
            remove_dir(&self.root.join(&image.id))?;
            evicted.bytes += image.bytes;
            evicted.images_removed += 1;
        }
        Ok(evicted)
    }

    /// Read a tile; `None` when it is not there or cannot be read (then it is rebuilt).
    pub fn read(&self, id: &ImageId, key: TileKey) -> Option<RgbImage> {
        let path = self.tile_path(id, key);
        let bytes = std::fs::read(&path).ok()?;
        match image::load_from_memory_with_format(&bytes, image::ImageFormat::Qoi) {
            Ok(img) => Some(img.to_rgb8()),
            Err(e) => {
                tracing::warn!(path = %path.display(), "damaged cached tile ignored: {e}");
                None
            }
        }
    }

    pub fn write(&self, id: &ImageId, key: TileKey, tile: &RgbImage) -> std::io::Result<()> {
        let path = self.tile_path(id, key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("qoi.tmp");
        tile.save_with_format(&tmp, image::ImageFormat::Qoi)
            .map_err(std::io::Error::other)?;
        std::fs::rename(&tmp, &path)
    }
}

/// Which full-resolution rows the original file serves, and what the file was like when its
/// pyramid was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceMark {
    /// Rows `0..rows` are decoded from the original; the rest (if any) are cached tiles.
    pub rows: u32,
    pub len: u64,
    pub modified_ns: u64,
}

impl SourceMark {
    /// The mark for `path` as it is now, serving its first `rows` rows.
    pub fn of_file(path: &Path, rows: u32) -> std::io::Result<SourceMark> {
        let meta = std::fs::metadata(path)?;
        Ok(SourceMark {
            rows,
            len: meta.len(),
            modified_ns: modified_ns(&meta),
        })
    }

    /// Whether `meta` is the file this mark was made from, by length and modification time.
    pub fn same_file(&self, meta: &std::fs::Metadata) -> bool {
        self.len == meta.len() && self.modified_ns == modified_ns(meta)
    }
}

fn modified_ns(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64)
}

/// One image's share of the cache.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CachedImage {
    pub id: String,
    pub bytes: u64,
    /// Of those, the full-resolution level's.
    pub full_res_bytes: u64,
    pub last_used_ms: i64,
    /// The whole pyramid is there.
    pub complete: bool,
}

/// What an eviction or a clear freed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Evicted {
    pub bytes: u64,
    pub full_res_dropped: usize,
    pub images_removed: usize,
    /// What the cache holds after.
    pub left_bytes: u64,
}

/// The default budget: a tenth of the free space where the cache lives, at most 20 GiB, at
/// least 1 GiB.
pub fn default_budget(cache_dir: &Path) -> u64 {
    const GIB: u64 = 1 << 30;
    (free_bytes(cache_dir).unwrap_or(200 * GIB) / 10).clamp(GIB, 20 * GIB)
}

#[cfg(unix)]
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt as _;
    let mut probe = path.to_owned();
    while !probe.exists() {
        probe = probe.parent()?.to_owned();
    }
    let c = std::ffi::CString::new(probe.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized, writable struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above; statvfs only writes into `st`.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(not(unix))]
fn free_bytes(_path: &Path) -> Option<u64> {
    None
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Remove a folder by renaming it aside first, so no reader finds it half gone.
fn remove_dir(dir: &Path) -> std::io::Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    let aside = parent.join(format!(".gone-{}", uuid::Uuid::new_v4().simple()));
    match std::fs::rename(dir, &aside) {
        Ok(()) => std::fs::remove_dir_all(&aside),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Bytes of every file under `dir`, and of its full-resolution level (`0/`).
fn measure(dir: &Path) -> (u64, u64) {
    let size = |d: &Path| -> u64 {
        walkdir::WalkDir::new(d)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    };
    (size(dir), size(&dir.join("0")))
}

fn cached_image(dir: &Path, id: String) -> CachedImage {
    let read_counts = |name: &str| -> Option<(u64, u64)> {
        let text = std::fs::read_to_string(dir.join(name)).ok()?;
        let mut bytes = None;
        let mut full = None;
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("bytes", n)) => bytes = n.trim().parse().ok(),
                Some(("full", n)) => full = n.trim().parse().ok(),
                _ => {}
            }
        }
        Some((bytes?, full?))
    };
    let complete = dir.join("complete").is_file();
    let (bytes, full_res_bytes) = read_counts("complete")
        .or_else(|| read_counts("partial"))
        .unwrap_or_else(|| {
            let counts = measure(dir);
            // A pyramid cached before markers held counts: measure it once, not every time.
            if complete
                && let Err(e) = write_atomic(
                    &dir.join("complete"),
                    format!("bytes {}\nfull {}\n", counts.0, counts.1).as_bytes(),
                )
            {
                tracing::debug!("tile cache counts not recorded: {e}");
            }
            counts
        });
    let last_used_ms = std::fs::read_to_string(dir.join("used"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .or_else(|| {
            let modified = std::fs::metadata(dir).ok()?.modified().ok()?;
            let d = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
            Some(d.as_millis() as i64)
        })
        .unwrap_or(0);
    CachedImage {
        id,
        bytes,
        full_res_bytes,
        last_used_ms,
        complete,
    }
}

/// One evicting process at a time per cache folder (an advisory `flock`, released when the
/// lock is dropped or the process dies).
struct EvictLock {
    _file: std::fs::File,
}

impl EvictLock {
    fn open(root: &Path) -> std::io::Result<std::fs::File> {
        std::fs::create_dir_all(root)?;
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join(".evict.lock"))
    }

    /// The lock, or `None` when another process holds it.
    fn try_take(root: &Path) -> std::io::Result<Option<Self>> {
        let file = Self::open(root)?;
        Ok(flock(&file, false).then_some(Self { _file: file }))
    }

    fn take_waiting(root: &Path) -> std::io::Result<Self> {
        let file = Self::open(root)?;
        flock(&file, true);
        Ok(Self { _file: file })
    }
}

#[cfg(unix)]
fn flock(file: &std::fs::File, wait: bool) -> bool {
    use std::os::unix::io::AsRawFd as _;
    let op = libc::LOCK_EX | if wait { 0 } else { libc::LOCK_NB };
    // SAFETY: the descriptor is open for the lifetime of `file`; flock has no other
    // preconditions.
    unsafe { libc::flock(file.as_raw_fd(), op) == 0 }
}

#[cfg(not(unix))]
fn flock(_file: &std::fs::File, _wait: bool) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_round_trip_losslessly_and_completion_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskTileCache::new(dir.path());
        let id = ImageId::of_bytes(b"img");
        let key = TileKey {
            level: 2,
            col: 3,
            row: 1,
        };
        let tile = RgbImage::from_fn(100, 60, |x, y| {
            image::Rgb([x as u8, y as u8, (x ^ y) as u8])
        });
        assert!(cache.read(&id, key).is_none());
        cache.write(&id, key, &tile).unwrap();
        assert_eq!(cache.read(&id, key).unwrap(), tile);
        assert!(
            cache
                .tile_path(&id, key)
                .ends_with(format!("tiles/{id}/2/3_1.qoi"))
        );
        assert!(!cache.is_complete(&id));
        cache.mark_complete(&id).unwrap();
        assert!(cache.is_complete(&id));
    }

    #[test]
    fn a_damaged_tile_reads_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskTileCache::new(dir.path());
        let id = ImageId::of_bytes(b"img");
        let key = TileKey {
            level: 0,
            col: 0,
            row: 0,
        };
        let path = cache.tile_path(&id, key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"qoif garbage").unwrap();
        assert!(cache.read(&id, key).is_none());
    }

    /// A fake pyramid: `full` bytes at level 0, `rest` bytes above, marked complete, used at `t`.
    fn fake(cache: &DiskTileCache, name: &str, full: usize, rest: usize, t: i64) -> ImageId {
        let id = ImageId::of_bytes(name.as_bytes());
        let dir = cache.image_dir(&id);
        std::fs::create_dir_all(dir.join("0")).unwrap();
        std::fs::create_dir_all(dir.join("1")).unwrap();
        std::fs::write(dir.join("0/0_0.qoi"), vec![0u8; full]).unwrap();
        std::fs::write(dir.join("1/0_0.qoi"), vec![0u8; rest]).unwrap();
        cache.mark_complete(&id).unwrap();
        std::fs::write(dir.join("used"), t.to_string()).unwrap();
        id
    }

    #[test]
    fn evictions_in_one_process_take_turns_and_none_is_skipped() {
        // Two builds finishing at once each evict to their own budget: the smaller must hold
        // afterwards whoever went first (a second evictor here used to find the folder lock
        // taken and do nothing).
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let cache = DiskTileCache::new(dir.path());
            for i in 0..40 {
                fake(&cache, &format!("img{round}-{i}"), 3000, 1000, i);
            }
            std::thread::scope(|scope| {
                let loose = scope.spawn(|| cache.enforce(150_000, &BTreeSet::new()).unwrap());
                let tight = scope.spawn(|| cache.enforce(20_000, &BTreeSet::new()).unwrap());
                loose.join().unwrap();
                tight.join().unwrap();
            });
            let total: u64 = cache.usage().iter().map(|i| i.bytes).sum();
            assert!(total <= 20_000, "round {round}: {total} bytes left");
        }
    }

    #[test]
    fn eviction_drops_full_resolution_of_the_least_recent_first_then_whole_images() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskTileCache::new(dir.path());
        let old = fake(&cache, "old", 3000, 1000, 1);
        let mid = fake(&cache, "mid", 3000, 1000, 2);
        let new = fake(&cache, "new", 3000, 1000, 3);
        assert_eq!(cache.usage().iter().map(|i| i.bytes).sum::<u64>(), 12_000);
        // 9,000 fits after dropping the oldest image's full resolution.
        let e = cache.enforce(9_000, &BTreeSet::new()).unwrap();
        assert_eq!(
            (e.full_res_dropped, e.images_removed, e.left_bytes),
            (1, 0, 9_000)
        );
        assert!(!cache.is_complete(&old) && cache.is_complete(&mid));
        assert!(
            cache.image_dir(&old).join("1/0_0.qoi").is_file(),
            "lower levels stay"
        );
        assert!(!cache.image_dir(&old).join("0").exists());
        // 2,500: every full resolution goes, then whole images, oldest first; the newest is
        // protected (it is on screen).
        let shown: BTreeSet<ImageId> = [new.clone()].into();
        let e = cache.enforce(2_500, &shown).unwrap();
        assert!(
            e.left_bytes > 2_500,
            "the protected image is kept even over budget"
        );
        assert!(!cache.image_dir(&old).exists() && !cache.image_dir(&mid).exists());
        assert!(cache.is_complete(&new));
        // The usage read back from disk agrees.
        let left: u64 = cache.usage().iter().map(|i| i.bytes).sum();
        assert_eq!(left, e.left_bytes);
    }

    #[test]
    fn clear_keeps_what_was_used_recently_and_a_rebuilt_image_is_whole_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskTileCache::new(dir.path());
        let a = fake(&cache, "a", 100, 10, 1_000);
        let b = fake(&cache, "b", 100, 10, 5_000);
        let e = cache.clear(Some(2_000)).unwrap();
        assert_eq!((e.images_removed, e.bytes, e.left_bytes), (1, 110, 110));
        assert!(!cache.image_dir(&a).exists() && cache.is_complete(&b));
        cache.enforce(50, &BTreeSet::new()).unwrap();
        assert!(!cache.is_complete(&b));
        // Rebuilding writes level 0 again and marks it whole with fresh counts.
        std::fs::create_dir_all(cache.image_dir(&b).join("0")).unwrap();
        std::fs::write(cache.image_dir(&b).join("0/0_0.qoi"), vec![0u8; 100]).unwrap();
        cache.mark_complete(&b).unwrap();
        let u = cache.usage();
        assert!(u[0].complete && u[0].bytes >= 110 && u[0].full_res_bytes == 100);
        assert_eq!(cache.clear(None).unwrap().images_removed, 1);
        assert!(cache.usage().is_empty());
    }

    #[test]
    fn a_pyramid_cached_before_counts_existed_is_measured_once() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskTileCache::new(dir.path());
        let id = ImageId::of_bytes(b"older");
        let d = cache.image_dir(&id);
        std::fs::create_dir_all(d.join("0")).unwrap();
        std::fs::write(d.join("0/0_0.qoi"), vec![0u8; 700]).unwrap();
        std::fs::write(d.join("complete"), b"").unwrap();
        let first = cache.usage();
        assert_eq!((first[0].bytes, first[0].full_res_bytes), (700, 700));
        assert_eq!(
            std::fs::read_to_string(d.join("complete")).unwrap(),
            "bytes 700\nfull 700\n"
        );
        assert_eq!(cache.usage(), first);
    }

    #[test]
    fn a_second_evicting_process_waits_its_turn() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskTileCache::new(dir.path());
        fake(&cache, "x", 100, 10, 1);
        let held = EvictLock::try_take(cache.root()).unwrap();
        assert!(held.is_some());
        // Another holder (another process in real use) makes enforce a no-op.
        let e = cache.enforce(0, &BTreeSet::new()).unwrap();
        assert_eq!(e, Evicted::default());
        drop(held);
        assert_eq!(
            cache.enforce(0, &BTreeSet::new()).unwrap().images_removed,
            1
        );
    }

    #[test]
    fn the_default_budget_is_a_tenth_of_free_space_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let b = default_budget(&dir.path().join("not/made/yet"));
        assert!((1 << 30..=20 << 30).contains(&b), "{b}");
    }
}
