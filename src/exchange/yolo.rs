//! YOLO detection folder: `images/` (hard links or copies), `labels/<stem>.txt` with one
//! `class cx cy w h` line per box (normalised to [0, 1]), and `data.yaml` naming the classes.
//! Classes are the box labels in name order; an image without boxes gets an empty label file
//! (a background image).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use super::coco::category_name;
use super::paths::{PathMode, Paths};
use super::select::Selection;
use super::{ExchangeError, ExportReport, Progress, io_err, tick, write_atomically};

/// Image file types the Ultralytics loader reads.
const YOLO_IMAGE_EXTENSIONS: [&str; 9] = [
    "bmp", "jpeg", "jpg", "png", "tif", "tiff", "webp", "mpo", "dng",
];

pub fn write(
    selection: &Selection<'_>,
    out: &Path,
    report: &mut ExportReport,
    progress: Progress<'_>,
    cancel: &AtomicBool,
) -> Result<(), ExchangeError> {
    let mut classes: BTreeMap<&str, usize> = BTreeMap::new();
    for item in &selection.items {
        for r in &item.regions {
            classes.insert(category_name(&r.label), 0);
        }
    }
    for (i, v) in classes.values_mut().enumerate() {
        *v = i;
    }
    let labels_dir = out.join("labels");
    std::fs::create_dir_all(&labels_dir).map_err(io_err(&labels_dir))?;
    let images_dir = out.join("images");
    let mut paths = Paths::new(PathMode::Copy, out);
    let total = selection.items.len();
    let mut text = String::new();
    for (n, item) in selection.items.iter().enumerate() {
        tick(n, total, progress, cancel)?;
        let image = item.image;
        let ext = image
            .path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if !YOLO_IMAGE_EXTENSIONS.contains(&ext.as_str()) {
            report.leave_out(
                || image.file_name(),
                "image type the YOLO loader cannot read",
            );
            continue;
        }
        let name = paths.unique_name(image);
        if let Err(reason) = paths.place(image, &images_dir.join(&name)) {
            report.leave_out(|| image.file_name(), &reason);
            continue;
        }
        let stem = Path::new(&name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or(name.clone());
        text.clear();
        for r in &item.regions {
            let [cx, cy, w, h] = r.rect.to_yolo(image.size);
            let class = classes.get(category_name(&r.label)).copied().unwrap_or(0);
            let c = |v: f64| v.clamp(0.0, 1.0);
            text.push_str(&format!(
                "{class} {:.6} {:.6} {:.6} {:.6}\n",
                c(cx),
                c(cy),
                c(w),
                c(h)
            ));
            report.boxes += 1;
        }
        let label = labels_dir.join(format!("{stem}.txt"));
        std::fs::write(&label, &text).map_err(io_err(&label))?;
        report.images += 1;
        report.records += 1;
        for q in &item.questions {
            report.leave_out(|| format!("question {}", q.id), "YOLO holds boxes only");
        }
    }
    progress(total, total);
    report.files_copied = paths.copied;
    let yaml = out.join("data.yaml");
    let abs = std::path::absolute(out).unwrap_or_else(|_| out.to_owned());
    write_atomically(&yaml, |w| {
        let mut s = format!(
            "# written by thyme-studio\npath: {}\ntrain: images\nval: images\nnc: {}\nnames:\n",
            yaml_string(&abs.to_string_lossy()),
            classes.len()
        );
        for (name, i) in &classes {
            s.push_str(&format!("  {i}: {}\n", yaml_string(name)));
        }
        w.write_all(s.as_bytes()).map_err(io_err(&yaml))
    })
}

/// A YAML double-quoted scalar.
fn yaml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
