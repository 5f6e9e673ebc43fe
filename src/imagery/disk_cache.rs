//! The persistent tile cache: `<cache>/tiles/<image hash>/<level>/<col>_<row>.qoi`.
//!
//! Tiles are stored losslessly (QOI: fast to write and read). A `complete` file written after
//! the last tile says the pyramid is whole, so reopening an image needs no decoding at all.
//! Every file is written under a temporary name and renamed, so a crash leaves no half tile.

use std::path::{Path, PathBuf};

use image::RgbImage;

use super::pyramid::TileKey;
use crate::dataset::ImageId;

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

    pub fn mark_complete(&self, id: &ImageId) -> std::io::Result<()> {
        let dir = self.image_dir(id);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("complete"), b"")
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
}
