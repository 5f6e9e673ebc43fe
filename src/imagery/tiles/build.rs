//! The tile workers: building an image's pyramid (decode under the budget, a preview first,
//! then every level's tiles to the disk cache), rebuilding damaged tiles, filling the RAM cache.

use super::*;
use crate::imagery::disk_cache::SourceMark;

pub(super) fn set_status(shared: &Shared, id: &ImageId, status: BuildStatus) {
    if let Ok(mut st) = shared.state.lock() {
        st.status.insert(id.clone(), status);
    }
    shared.generation.fetch_add(1, Ordering::AcqRel);
}

pub(super) fn worker(shared: &Shared) {
    loop {
        let job = {
            let Ok(mut st) = shared.state.lock() else {
                return;
            };
            loop {
                if st.shutdown {
                    return;
                }
                if let Some((_, job)) = st.queue.pop_first() {
                    break job;
                }
                st = match shared.wake.wait(st) {
                    Ok(g) => g,
                    Err(_) => return,
                };
            }
        };
        match job {
            Job::Load { id, key } => {
                let ok = load(shared, &id, key);
                if let Ok(mut st) = shared.state.lock() {
                    st.loading.remove(&(id.clone(), key));
                    if !ok {
                        rebuild_damaged(shared, &mut st, &id);
                    }
                }
                shared.generation.fetch_add(1, Ordering::AcqRel);
            }
            Job::Build {
                id,
                path,
                size,
                cancel,
            } => {
                let status = build(shared, &id, &path, size, &cancel);
                set_status(shared, &id, status);
            }
        }
    }
}

/// Bring a tile into RAM: already there (its row was decoded from the original for a tile
/// before it), decoded from the original, or read from disk. `false` when the disk cache
/// should have had it and did not.
fn load(shared: &Shared, id: &ImageId, key: TileKey) -> bool {
    let k = (id.clone(), key);
    if shared.ram.lock().is_ok_and(|r| r.contains(&k)) {
        return true;
    }
    if let Some(mark) = source::served_by_original(shared, id, key) {
        if let Err(e) = source::load_row(shared, id, key.row, &mark) {
            tracing::warn!("full resolution not shown: {e}");
            if let Ok(mut st) = shared.state.lock() {
                st.source_failed.insert(id.clone());
            }
        }
        // Not a damaged cache: rebuilding from the same original would not help.
        return true;
    }
    match shared.disk.read(id, key) {
        Some(tile) => {
            insert_ram(shared, id, key, Arc::new(tile));
            true
        }
        None => false,
    }
}

/// A tile of a "complete" pyramid could not be read: the cache is damaged. Forget that it is
/// complete and build the pyramid again (once; the build rewrites every tile).
pub(super) fn rebuild_damaged(shared: &Shared, st: &mut State, id: &ImageId) {
    if !matches!(st.status.get(id), Some(BuildStatus::Complete)) {
        return;
    }
    let Some((path, size)) = st.sources.get(id).cloned() else {
        return;
    };
    tracing::warn!(
        "the tile cache of {} is damaged; rebuilding it",
        path.display()
    );
    if let Err(e) = std::fs::remove_file(shared.disk.image_dir(id).join("complete")) {
        tracing::warn!("cannot reset the tile cache: {e}");
    }
    let cancel = Arc::new(AtomicBool::new(false));
    st.cancels
        .insert(id.clone(), (cancel.clone(), Priority::Open));
    st.status.insert(id.clone(), BuildStatus::Queued);
    st.seq += 1;
    let seq = st.seq;
    st.queue.insert(
        (Priority::Open, seq),
        Job::Build {
            id: id.clone(),
            path,
            size,
            cancel,
        },
    );
    shared.wake.notify_one();
}

pub(super) fn insert_ram(shared: &Shared, id: &ImageId, key: TileKey, tile: Arc<RgbImage>) {
    let bytes = tile.as_raw().len();
    if let Ok(mut ram) = shared.ram.lock() {
        ram.insert((id.clone(), key), tile, bytes);
    }
}

/// Smallest side of the quick preview: enough to fill a screen at fit zoom.
pub(super) const PREVIEW_MIN_SIDE: u32 = 1024;
/// Smallest side of a band decoder's eighth taken as the preview (images of 4096 px and more).
pub(super) const PREVIEW_EIGHTH_MIN_SIDE: u32 = 512;
/// Largest side of the quick preview: the texture side every egui back end takes (its headless
/// context and some GPUs stop at 2048), so the UI thread never has to shrink it.
pub(super) const PREVIEW_MAX_SIDE: u32 = 2048;

pub(super) fn build(
    shared: &Shared,
    id: &ImageId,
    path: &std::path::Path,
    size: ImageSize,
    cancel: &AtomicBool,
) -> BuildStatus {
    set_status(shared, id, BuildStatus::Decoding);
    let read_started = std::time::Instant::now();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return BuildStatus::Failed(format!("{}: {e}", path.display())),
    };
    let read_ms = read_started.elapsed().as_millis() as u64;
    // A camera's embedded thumbnail is the very first picture (milliseconds).
    if let Some(thumb) = exif_thumb::exif_thumbnail(&bytes) {
        let mut img = image::DynamicImage::ImageRgb8(thumb);
        img.apply_orientation(preview::orientation(&bytes));
        if let Ok(mut st) = shared.state.lock() {
            st.previews.insert(id.clone(), Arc::new(img.to_rgb8()));
        }
        shared.generation.fetch_add(1, Ordering::AcqRel);
    }
    // Open the rows: for a baseline JPEG this is the DC pass on every core, which also gives
    // the eighth-scale preview, so the first pixels do not wait for the full decode.
    let started = std::time::Instant::now();
    let mut rows = match rows::open_rows(path, &bytes, shared.budget) {
        Ok(rows) => rows,
        Err(e) => return BuildStatus::Failed(e.to_string()),
    };
    // The band decoder's eighth costs nothing more, so it is the preview even when it is
    // somewhat smaller than PREVIEW_MIN_SIDE (a finer scaled decode would delay the first
    // pixels and the pyramid, whose tiles replace it within a fraction of a second); not for
    // a small picture, whose preview also draws the minimap.
    let longest = rows.size().width.max(rows.size().height);
    let mut preview = match rows.eighth() {
        Some(eighth) if longest / 8 >= PREVIEW_EIGHTH_MIN_SIDE => Some(Ok(eighth.clone())),
        _ => preview::scaled_jpeg(path, &bytes, PREVIEW_MIN_SIDE),
    };
    // A file decoded whole (PNG, WebP, a progressive JPEG...) shows a halved copy of itself
    // as soon as it is decoded, not after its whole pyramid.
    if preview.is_none() {
        preview = match rows.whole_preview(PREVIEW_MAX_SIDE) {
            Ok(p) => p.map(Ok),
            Err(e) => return BuildStatus::Failed(e.to_string()),
        };
    }
    if let Some(Ok(mut p)) = preview {
        // GPUs cap texture sides: keep the preview within what every back end takes.
        if p.width().max(p.height()) > PREVIEW_MAX_SIDE {
            let fit = crate::imagery::thumbnail::fit_within(
                ImageSize::new(p.width(), p.height()),
                PREVIEW_MAX_SIDE,
            );
            p = image::imageops::thumbnail(&p, fit.width, fit.height);
        }
        if let Ok(mut st) = shared.state.lock() {
            st.previews.insert(id.clone(), Arc::new(p));
        }
        shared.generation.fetch_add(1, Ordering::AcqRel);
        tracing::debug!(
            read_ms = read_ms,
            preview_ms = started.elapsed().as_millis() as u64,
            "preview of {}",
            path.display()
        );
    }
    if cancel.load(Ordering::Relaxed) {
        return BuildStatus::Cancelled;
    }
    if rows.size() != size {
        tracing::warn!(
            "{}: decoded {}, the project says {size}",
            path.display(),
            rows.size()
        );
    }
    let banded = rows.banded();
    if let Ok(mut st) = shared.state.lock() {
        if banded {
            st.banded.insert(id.clone());
        } else {
            st.banded.remove(id);
        }
    }
    // Room for this pyramid (and any other being built) before its tiles are written, so the
    // cache stays within its budget while it is built, not only after.
    keep_in_budget(shared, id, true, true);
    let (tiled, source_rows) = match tile_pyramid(shared, id, &mut rows, cancel) {
        Ok(tiled) => tiled,
        Err(e) => return BuildStatus::Failed(e.to_string()),
    };
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        banded,
        "decoded and tiled {}",
        path.display()
    );
    match tiled {
        true => {
            // The rows the original serves are recorded before the pyramid is said whole, so
            // a whole pyramid never lacks tiles without saying where they come from.
            let recorded = match source_rows {
                0 => Ok(()),
                rows => SourceMark::of_file(path, rows)
                    .and_then(|mark| shared.disk.mark_source(id, &mark)),
            };
            match recorded.and_then(|()| shared.disk.mark_complete(id)) {
                Ok(()) => {
                    // The decoder that gave those rows stays open to give them again: zooming
                    // in right after the build costs a band, not the file's opening.
                    if source_rows > 0
                        && let Some(bands) = rows.into_bands()
                    {
                        source::keep_open(shared, id, bands);
                    }
                }
                Err(e) => tracing::warn!("tile cache not marked complete: {e}"),
            }
            keep_in_budget(shared, id, false, true);
            BuildStatus::Complete
        }
        false => {
            // Tiles written before the cancel are an unfinished pyramid nothing reads (it is
            // built again whole when wanted): it is the first to go if the cache is over.
            keep_in_budget(shared, id, false, false);
            BuildStatus::Cancelled
        }
    }
}

/// Bytes a pyramid of `size` takes in the disk cache, a little over what lossless tiles take
/// (`bench paging`: 1.9 bytes a pixel over all levels; 0.64 for a band-decoded JPEG, whose
/// full resolution is not written).
fn pyramid_estimate(size: ImageSize, banded: bool) -> u64 {
    let pixels = u64::from(size.width) * u64::from(size.height);
    if banded { pixels * 3 / 4 } else { pixels * 2 }
}

/// Evict least recently used images until the disk cache fits its budget with room to spare
/// for every pyramid being built (`just_built` among them while `building`), sparing every
/// image being built or waiting to be (the one shown and the next ones prefetched), and
/// `just_built` when `spare`.
fn keep_in_budget(shared: &Shared, just_built: &ImageId, building: bool, spare: bool) {
    let reserve: u64 = shared
        .state
        .lock()
        .map(|st| {
            st.status
                .iter()
                .filter(|(id, s)| {
                    matches!(s, BuildStatus::Decoding | BuildStatus::Tiling { .. })
                        && (building || *id != just_built)
                })
                .filter_map(|(id, _)| {
                    st.sources
                        .get(id)
                        .map(|(_, size)| pyramid_estimate(*size, st.banded.contains(id)))
                })
                .sum()
        })
        .unwrap_or(0);
    let mut protected: std::collections::BTreeSet<ImageId> = shared
        .state
        .lock()
        .map(|st| {
            st.cancels
                .iter()
                .filter(|(id, (flag, priority))| {
                    let in_flight = matches!(
                        st.status.get(*id),
                        Some(
                            BuildStatus::Queued
                                | BuildStatus::Decoding
                                | BuildStatus::Tiling { .. }
                        )
                    );
                    !flag.load(Ordering::Relaxed) && (*priority == Priority::Open || in_flight)
                })
                .map(|(id, _)| id.clone())
                .collect()
        })
        .unwrap_or_default();
    if spare {
        protected.insert(just_built.clone());
    } else {
        protected.remove(just_built);
    }
    let budget = shared
        .disk_budget
        .load(Ordering::Relaxed)
        .saturating_sub(reserve);
    match shared.disk.enforce(budget, &protected) {
        Ok(e) if e.bytes > 0 => tracing::info!(
            freed = e.bytes,
            left = e.left_bytes,
            "tile cache over its budget: {} full-resolution level(s) and {} image(s) evicted",
            e.full_res_dropped,
            e.images_removed
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("tile cache eviction stopped: {e}"),
    }
}

/// Cut every level into tiles as the rows come (finest level first, a row of tiles at a time,
/// its tiles on all cores), writing each to the disk cache and the RAM cache, except the
/// full-resolution tiles of rows the band decoder gave: the original gives those again (see
/// `source`). `Ok((false, _))` when cancelled; the number of rows, from the top, the original
/// serves.
pub(super) fn tile_pyramid(
    shared: &Shared,
    id: &ImageId,
    rows: &mut rows::Rows,
    cancel: &AtomicBool,
) -> Result<(bool, u32), crate::imagery::ImageError> {
    let mut pyramid = StripPyramid::new(rows.size());
    let total = pyramid.layout().tile_count();
    let done = std::sync::atomic::AtomicUsize::new(0);
    // Whether the full-resolution rows being cut now came from the band decoder. Bands are
    // whole rows of tiles, so a row of level-0 tiles is cut while its own band is pushed (the
    // last, shorter one at `finish`).
    let from_original = AtomicBool::new(false);
    let emit = |key: TileKey, tile: RgbImage| {
        if cancel.load(Ordering::Relaxed) {
            return false;
        }
        let skip = key.level == 0 && from_original.load(Ordering::Relaxed);
        if !skip
            && let Err(e) = shared.disk.write(id, key, &tile)
            && !shared.disk_failed.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                folder = %shared.disk.root().display(),
                "the tile cache cannot be written ({e}); images still show, decoded again when needed"
            );
        }
        insert_ram(shared, id, key, Arc::new(tile));
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(16) || n == total {
            set_status(shared, id, BuildStatus::Tiling { done: n, total });
        }
        true
    };
    let (mut taken, mut source_rows) = (0u32, 0u32);
    let fed = rows.each_band(TILE, |data, n, banded| {
        // Only an unbroken run from the top: a band the general decoder took over is cached.
        let serve = banded && taken == source_rows;
        from_original.store(serve, Ordering::Relaxed);
        source_rows += if serve { n } else { 0 };
        taken += n;
        pyramid.push(data, n, &emit)
    })?;
    Ok((fed && pyramid.finish(&emit), source_rows))
}
