//! Full-resolution tiles of a baseline JPEG decoded again from the original when wanted: its
//! pyramid's build writes no level-0 tiles (see `disk_cache`), and a row of them is one band
//! of the band decoder. The decoder of the image last asked for stays open (its file's scan,
//! about the file's size), so the next rows cost only their band.

use super::build::insert_ram;
use super::*;
use crate::imagery::disk_cache::SourceMark;
use crate::imagery::jpeg::JpegBands;

/// The original kept open for its full-resolution rows.
pub(super) struct OpenSource {
    id: ImageId,
    bands: Box<JpegBands>,
}

/// Keep `bands`, the decoder that just gave `id`'s pyramid its rows, as the open original.
pub(super) fn keep_open(shared: &Shared, id: &ImageId, bands: Box<JpegBands>) {
    if let Ok(mut open) = shared.source.lock() {
        *open = Some(OpenSource {
            id: id.clone(),
            bands,
        });
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Decode the row of level-0 tiles `row` of `id` from its original and put each of its tiles
/// in the RAM cache. The error says why the original cannot give it (gone, changed, damaged).
pub(super) fn load_row(
    shared: &Shared,
    id: &ImageId,
    row: u32,
    mark: &SourceMark,
) -> Result<(), String> {
    let path = shared
        .state
        .lock()
        .ok()
        .and_then(|st| st.sources.get(id).map(|(p, _)| p.clone()))
        .ok_or_else(|| format!("image {} has no known file", id.short()))?;
    let mut open = shared
        .source
        .lock()
        .map_err(|_| "the open original was poisoned".to_owned())?;
    if open.as_ref().is_none_or(|o| &o.id != id) {
        // The one open before is dropped first: only one scan is held at a time.
        *open = None;
        *open = Some(OpenSource {
            id: id.clone(),
            bands: Box::new(open_original(shared, &path, id, mark)?),
        });
    }
    let Some(o) = open.as_ref() else {
        return Err("the original could not be kept open".into());
    };
    let size = ImageSize::new(o.bands.width() as u32, o.bands.height() as u32);
    let layout = PyramidLayout::new(size);
    let (cols, rows) = layout.grid(0);
    if row >= rows || row * TILE >= mark.rows {
        return Err(format!("row of tiles {row} is not served by the original"));
    }
    let y0 = row * TILE;
    let band = o
        .bands
        .rows(y0 as usize..(y0 + TILE) as usize, threads())
        .map_err(|e| format!("{}: rows from {y0}: {e}", path.display()))?;
    for col in 0..cols {
        let key = TileKey { level: 0, col, row };
        let (x, _, w, h) = layout.tile_rect(key);
        if band.height() != h {
            return Err(format!(
                "{}: {} rows decoded from {y0}, {h} wanted",
                path.display(),
                band.height()
            ));
        }
        let tile = image::imageops::crop_imm(&band, x, 0, w, h).to_image();
        insert_ram(shared, id, key, Arc::new(tile));
    }
    Ok(())
}

/// Open the original for its rows, after checking it is still the file the pyramid was built
/// from (by length and time, or by its content hash when the time moved).
fn open_original(
    shared: &Shared,
    path: &std::path::Path,
    id: &ImageId,
    mark: &SourceMark,
) -> Result<JpegBands, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !mark.same_file(&meta) {
        if ImageId::of_bytes(&bytes) != *id {
            return Err(format!(
                "{} changed since its tiles were made",
                path.display()
            ));
        }
        // Touched but the same content: note its new time so the hash is not taken again.
        if let Ok(now) = SourceMark::of_file(path, mark.rows)
            && let Err(e) = shared.disk.mark_source(id, &now)
        {
            tracing::debug!("tile cache source record not updated: {e}");
        }
    }
    JpegBands::open(&bytes, threads()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Whether level-0 tile `key` of `id` comes from the original, and the record saying so.
pub(super) fn served_by_original(
    shared: &Shared,
    id: &ImageId,
    key: TileKey,
) -> Option<SourceMark> {
    if key.level != 0 {
        return None;
    }
    shared
        .disk
        .source_mark(id)
        .filter(|m| key.row * TILE < m.rows)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Ask for `key` until it is in RAM (a minute at most).
    pub(crate) fn wait_tile(s: &TileService, id: &ImageId, key: TileKey) -> Arc<RgbImage> {
        let start = std::time::Instant::now();
        loop {
            if let Some(t) = s.tile(id, key) {
                return t;
            }
            assert!(start.elapsed().as_secs() < 60, "{key:?} never came");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    fn wait_complete(s: &TileService, id: &ImageId) {
        let start = std::time::Instant::now();
        while s.status(id) != Some(BuildStatus::Complete) {
            assert!(start.elapsed().as_secs() < 60, "{:?}", s.status(id));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn photo(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x / 3) as u8, (y / 5) as u8, ((x * y) % 251) as u8])
        })
    }

    fn key(col: u32, row: u32) -> TileKey {
        TileKey { level: 0, col, row }
    }

    /// A baseline JPEG's pyramid on disk: no level-0 tile written, the rows the original
    /// serves recorded, and after a restart every level-0 tile decoded from the original
    /// equals the band decoder's own rows.
    #[test]
    fn a_jpegs_full_resolution_is_served_from_the_original_not_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("photo.jpg");
        photo(1300, 1100).save(&src).unwrap();
        let bytes = std::fs::read(&src).unwrap();
        let id = ImageId::of_file(&src).unwrap();
        let size = ImageSize::new(1300, 1100);
        {
            let s = TileService::new(dir.path(), 64 << 20, PixelBudget::DEFAULT, 1);
            s.open(&id, src.clone(), size);
            wait_complete(&s, &id);
            // The build's own decoder stays open for the rows it gave.
            let open = s.shared.source.lock().unwrap();
            assert_eq!(open.as_ref().map(|o| &o.id), Some(&id));
        }
        let disk = DiskTileCache::new(dir.path());
        assert!(disk.is_complete(&id));
        assert_eq!(disk.source_mark(&id).map(|m| m.rows), Some(1100));
        assert!(
            !disk.image_dir(&id).join("0").exists(),
            "no level-0 tile on disk"
        );
        assert!(
            disk.read(
                &id,
                TileKey {
                    level: 1,
                    col: 0,
                    row: 0
                }
            )
            .is_some()
        );
        assert_eq!(disk.usage()[0].full_res_bytes, 0);
        // A restart: nothing is built, level 0 comes from the original.
        let s = TileService::new(dir.path(), 64 << 20, PixelBudget::DEFAULT, 2);
        s.open(&id, src, size);
        assert_eq!(s.status(&id), Some(BuildStatus::Complete));
        let want = JpegBands::open(&bytes, 1)
            .unwrap()
            .rows(0..1100, 1)
            .unwrap();
        for row in 0..3 {
            for col in 0..3 {
                let t = wait_tile(&s, &id, key(col, row));
                let (x, y, w, h) = PyramidLayout::new(size).tile_rect(key(col, row));
                assert_eq!(t.dimensions(), (w, h));
                assert!(
                    *t == image::imageops::crop_imm(&want, x, y, w, h).to_image(),
                    "tile {col},{row}"
                );
            }
        }
    }

    /// The original replaced by other pixels: its full resolution is refused (once, never
    /// the changed file's pixels, no rebuild loop) while the cached levels still show; an
    /// original only touched (same bytes, new time) still serves.
    #[test]
    fn a_changed_original_is_refused_and_a_touched_one_still_serves() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("photo.jpg");
        photo(900, 700).save(&src).unwrap();
        let id = ImageId::of_file(&src).unwrap();
        let size = ImageSize::new(900, 700);
        {
            let s = TileService::new(dir.path(), 64 << 20, PixelBudget::DEFAULT, 1);
            s.open(&id, src.clone(), size);
            wait_complete(&s, &id);
        }
        let disk = DiskTileCache::new(dir.path());
        let before = disk.source_mark(&id).unwrap();
        // Same bytes written again: a new modification time.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&src, std::fs::read(&src).unwrap()).unwrap();
        let s = TileService::new(dir.path(), 64 << 20, PixelBudget::DEFAULT, 1);
        s.open(&id, src.clone(), size);
        wait_tile(&s, &id, key(1, 1));
        let after = disk.source_mark(&id).unwrap();
        assert_ne!(
            after.modified_ns, before.modified_ns,
            "the new time is noted"
        );
        drop(s);
        // Other pixels under the same name.
        RgbImage::from_pixel(900, 700, image::Rgb([200, 10, 10]))
            .save(&src)
            .unwrap();
        let s = TileService::new(dir.path(), 64 << 20, PixelBudget::DEFAULT, 1);
        s.open(&id, src, size);
        let start = std::time::Instant::now();
        while !s.shared.state.lock().unwrap().source_failed.contains(&id) {
            assert!(
                s.tile(&id, key(0, 0)).is_none(),
                "never the new file's pixels"
            );
            assert!(start.elapsed().as_secs() < 60);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert!(s.tile(&id, key(0, 0)).is_none());
        assert_eq!(s.status(&id), Some(BuildStatus::Complete), "no rebuild");
        assert!(disk.is_complete(&id));
        wait_tile(
            &s,
            &id,
            TileKey {
                level: 1,
                col: 0,
                row: 0,
            },
        );
    }

    /// A band the band decoder cannot read (damage late in the scan): the rows above it are
    /// served by the original, the rest (decoded by the general decoder) are cached tiles.
    #[test]
    fn rows_after_damage_are_cached_and_those_before_come_from_the_original() {
        let img = photo(640, 1600);
        let mut jpeg = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, 90);
        enc.set_restart_interval(4);
        enc.encode(img.as_raw(), 640, 1600, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        let mut at = jpeg.len() * 3 / 4;
        while jpeg[at - 1] == 0xFF || jpeg[at..at + 8].contains(&0xFF) {
            at += 1;
        }
        jpeg[at..at + 6].copy_from_slice(&[0xFF, 0x00, 0xFF, 0x00, 0xFF, 0x00]);
        let bands = JpegBands::open(&jpeg, 1).unwrap();
        assert!(
            bands.rows(1024..1536, 1).is_err(),
            "damage in the third band"
        );
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("damaged.jpg");
        std::fs::write(&src, &jpeg).unwrap();
        let id = ImageId::of_file(&src).unwrap();
        let s = TileService::new(dir.path(), 64 << 20, PixelBudget::DEFAULT, 1);
        s.open(&id, src, ImageSize::new(640, 1600));
        let start = std::time::Instant::now();
        loop {
            match s.status(&id) {
                Some(BuildStatus::Complete) => break,
                // The general decoder may refuse the damage too: then nothing is recorded.
                Some(BuildStatus::Failed(_)) => return,
                _ => assert!(start.elapsed().as_secs() < 60),
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let disk = DiskTileCache::new(dir.path());
        assert_eq!(disk.source_mark(&id).map(|m| m.rows), Some(1024));
        for row in 0..4 {
            let cached = disk.tile_path(&id, key(0, row)).is_file();
            assert_eq!(cached, row >= 2, "row {row}");
        }
        let want = bands.rows(0..512, 1).unwrap();
        drop(s);
        let s = TileService::new(dir.path(), 64 << 20, PixelBudget::DEFAULT, 1);
        s.open(
            &id,
            dir.path().join("damaged.jpg"),
            ImageSize::new(640, 1600),
        );
        assert_eq!(
            *wait_tile(&s, &id, key(0, 0)),
            image::imageops::crop_imm(&want, 0, 0, 512, 512).to_image()
        );
        wait_tile(&s, &id, key(0, 3));
    }
}
