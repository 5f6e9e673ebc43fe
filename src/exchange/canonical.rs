//! The canonical JSONL export: everything in a project, losslessly. Line 1 is a header
//! (`format`, `version`, `categories`); then one line per image with its boxes and questions;
//! then one line per journal row (who did what, when: the provenance and review history).
//! Importing it into a new project gives the same project; exporting that again gives the
//! same bytes.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use serde::{Deserialize, Serialize};

use super::{ExchangeError, ExportReport, Progress, io_err, json_line, tick, write_atomically};
use crate::dataset::{Category, ImageId, ImageRecord, Question, Region};
use crate::store::dump::{Dump, JournalRow};

pub const FORMAT: &str = "thyme-studio";
pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    categories: Vec<Category>,
}

#[derive(Serialize, Deserialize)]
struct ImageLine {
    image: ImageRecord,
    regions: Vec<Region>,
    questions: Vec<Question>,
}

#[derive(Serialize, Deserialize)]
struct JournalLine {
    journal: JournalRow,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Image(ImageLine),
    Journal(JournalLine),
}

pub fn write(
    dump: &Dump,
    out: &Path,
    report: &mut ExportReport,
    progress: Progress<'_>,
    cancel: &AtomicBool,
) -> Result<(), ExchangeError> {
    let mut regions: HashMap<&ImageId, Vec<&Region>> = HashMap::new();
    for r in &dump.regions {
        regions.entry(&r.image).or_default().push(r);
    }
    let mut questions: HashMap<&ImageId, Vec<&Question>> = HashMap::new();
    for q in &dump.questions {
        questions.entry(&q.image).or_default().push(q);
    }
    let total = dump.images.len();
    write_atomically(out, |w| {
        json_line(
            w,
            &Header {
                format: FORMAT.into(),
                version: VERSION,
                categories: dump.categories.clone(),
            },
            out,
        )?;
        #[derive(Serialize)]
        struct Borrowed<'a> {
            image: &'a ImageRecord,
            regions: Vec<&'a Region>,
            questions: Vec<&'a Question>,
        }
        for (n, image) in dump.images.iter().enumerate() {
            tick(n, total, progress, cancel)?;
            let line = Borrowed {
                image,
                regions: regions.remove(&image.id).unwrap_or_default(),
                questions: questions.remove(&image.id).unwrap_or_default(),
            };
            report.boxes += line.regions.len() as u64;
            report.questions += line.questions.len() as u64;
            json_line(w, &line, out)?;
            report.images += 1;
            report.records += 1;
        }
        #[derive(Serialize)]
        struct BorrowedJournal<'a> {
            journal: &'a JournalRow,
        }
        for row in &dump.journal {
            json_line(w, &BorrowedJournal { journal: row }, out)?;
            report.records += 1;
        }
        progress(total, total);
        Ok(())
    })
}

/// A canonical file read back: the dump, and the lines that could not be read
/// (line number, reason).
pub fn read(path: &Path) -> Result<(Dump, Vec<(usize, String)>), ExchangeError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut lines = std::io::BufReader::new(file).lines();
    let bad = |message: String| ExchangeError::Input {
        path: path.to_owned(),
        message,
    };
    let first = lines
        .next()
        .ok_or_else(|| bad("empty file".into()))?
        .map_err(io_err(path))?;
    let header: Header = serde_json::from_str(&first)
        .map_err(|e| bad(format!("line 1 is not a thyme-studio header: {e}")))?;
    if header.format != FORMAT {
        return Err(bad(format!(
            "format is '{}', not '{FORMAT}'",
            header.format
        )));
    }
    if header.version > VERSION {
        return Err(bad(format!(
            "written by a newer thyme-studio (version {}; this build reads up to {VERSION})",
            header.version
        )));
    }
    let mut dump = Dump {
        categories: header.categories,
        ..Default::default()
    };
    let mut errors = Vec::new();
    for (i, line) in lines.enumerate() {
        let number = i + 2;
        let line = line.map_err(io_err(path))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(&line) {
            Ok(Line::Image(l)) => {
                dump.images.push(l.image);
                dump.regions.extend(l.regions);
                dump.questions.extend(l.questions);
            }
            Ok(Line::Journal(l)) => dump.journal.push(l.journal),
            Err(e) => errors.push((number, format!("not an image or journal line: {e}"))),
        }
    }
    Ok((dump, errors))
}
