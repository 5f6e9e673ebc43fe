//! How image paths appear in an export: absolute, relative to the export, or the files copied
//! (hard-linked where the file system allows) into an `images/` folder beside it.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use crate::dataset::ImageRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PathMode {
    #[default]
    Absolute,
    /// Relative to the folder the export is written to.
    Relative,
    /// Copied into `images/` beside the export; written as `images/<name>`.
    Copy,
}

impl PathMode {
    pub fn parse(s: &str) -> Option<PathMode> {
        match s {
            "absolute" => Some(PathMode::Absolute),
            "relative" => Some(PathMode::Relative),
            "copy" => Some(PathMode::Copy),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PathMode::Absolute => "absolute",
            PathMode::Relative => "relative",
            PathMode::Copy => "copy",
        }
    }
}

/// Turns image records into the paths an export writes, copying files when asked.
pub struct Paths {
    mode: PathMode,
    /// The folder the export's paths are relative to.
    base: PathBuf,
    names: HashMap<crate::dataset::ImageId, String>,
    used: HashSet<String>,
    pub copied: u64,
}

impl Paths {
    /// `base`: the folder the export lands in.
    pub fn new(mode: PathMode, base: &Path) -> Self {
        let base = std::path::absolute(base).unwrap_or_else(|_| base.to_owned());
        Self {
            mode,
            base,
            names: HashMap::new(),
            used: HashSet::new(),
            copied: 0,
        }
    }

    /// A file name for the image, unique within this export (`name-<id>.ext` on a clash).
    pub fn unique_name(&mut self, image: &ImageRecord) -> String {
        if let Some(n) = self.names.get(&image.id) {
            return n.clone();
        }
        let mut name = image.file_name();
        if !self.used.insert(name.clone()) {
            let p = Path::new(&name);
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            name = match p.extension() {
                Some(ext) => format!("{stem}-{}.{}", image.id.short(), ext.to_string_lossy()),
                None => format!("{stem}-{}", image.id.short()),
            };
            self.used.insert(name.clone());
        }
        self.names.insert(image.id.clone(), name.clone());
        name
    }

    /// The path to write for an image; `Err` is the reason it cannot be (a copy failed).
    pub fn path_of(&mut self, image: &ImageRecord) -> Result<String, String> {
        match self.mode {
            PathMode::Absolute => Ok(image.path.to_string_lossy().into_owned()),
            PathMode::Relative => Ok(relative(&image.path, &self.base)
                .to_string_lossy()
                .into_owned()),
            PathMode::Copy => {
                let name = self.unique_name(image);
                let dir = self.base.join("images");
                self.place(image, &dir.join(&name))?;
                Ok(format!("images/{name}"))
            }
        }
    }

    /// The path to write, or `None` with the image counted as left out (and why).
    pub fn path_or_leave_out(
        &mut self,
        image: &ImageRecord,
        report: &mut super::ExportReport,
    ) -> Option<String> {
        match self.path_of(image) {
            Ok(p) => Some(p),
            Err(reason) => {
                report.leave_out(|| image.file_name(), &reason);
                None
            }
        }
    }

    /// Put the image's file at `dest` (hard link, else copy); an existing file of the same
    /// size is taken as already there.
    pub fn place(&mut self, image: &ImageRecord, dest: &Path) -> Result<(), String> {
        if let Ok(m) = std::fs::metadata(dest) {
            if m.len() == image.bytes {
                return Ok(());
            }
            std::fs::remove_file(dest).map_err(|e| format!("{}: {e}", dest.display()))?;
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        if !image.path.is_file() {
            return Err("image file missing".to_owned());
        }
        if std::fs::hard_link(&image.path, dest).is_err() {
            std::fs::copy(&image.path, dest).map_err(|e| format!("copy failed: {e}"))?;
        }
        self.copied += 1;
        Ok(())
    }
}

/// `path` written relative to the folder `base` (both absolute): shared leading components
/// dropped, one `..` per remaining component of `base`.
pub fn relative(path: &Path, base: &Path) -> PathBuf {
    let p: Vec<Component> = path.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    if common == 0 {
        return path.to_owned();
    }
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c.as_os_str());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative(Path::new("/data/a/x.jpg"), Path::new("/data/out")),
            PathBuf::from("../a/x.jpg")
        );
        assert_eq!(
            relative(Path::new("/data/out/img/x.jpg"), Path::new("/data/out")),
            PathBuf::from("img/x.jpg")
        );
        assert_eq!(
            relative(Path::new("/x.jpg"), Path::new("/a/b")),
            PathBuf::from("../../x.jpg")
        );
    }
}
