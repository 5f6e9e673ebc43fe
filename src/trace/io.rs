//! Traces on disk: a folder (`trace.json` with its images in `images/`), and JSONL files of
//! many traces (one per line, images as paths or data URLs). Listing a JSONL reads only each
//! line's run header and summary, in parallel, in chunks, so the first rows show while the
//! rest of a large file is still being read.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use super::readers::{Problem, TraceError};
use super::{Outcome, Step, Summary, Trace, TraceImage};

/// A run as the list shows it, and where to load it from.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: String,
    pub question: String,
    pub outcome: Outcome,
    pub summary: Summary,
    /// Byte offset and length of its line in the file.
    pub offset: u64,
    pub len: usize,
}

/// What the list needs from a line, read from its start: `summary` and `run`'s id,
/// question and outcome. Reading stops as soon as they are all in (our writer puts them
/// before the steps and images), so a line's embedded images are never scanned.
#[derive(Default)]
struct Head {
    id: Option<String>,
    question: Option<String>,
    outcome: Option<Outcome>,
    summary: Option<Summary>,
}

impl Head {
    fn complete(&self) -> bool {
        self.id.is_some()
            && self.question.is_some()
            && self.outcome.is_some()
            && self.summary.is_some()
    }
}

/// The error a visitor returns to stop early (not a failure).
const STOP: &str = "thyme-studio: enough read";

struct TopVisitor<'a>(&'a mut Head);
struct RunSeed<'a>(&'a mut Head);
struct RunVisitor<'a>(&'a mut Head);

impl<'de> serde::de::Visitor<'de> for TopVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a trace")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        use serde::de::Error;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "summary" => self.0.summary = map.next_value()?,
                "run" => map.next_value_seed(RunSeed(&mut *self.0))?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            if self.0.complete() {
                return Err(A::Error::custom(STOP));
            }
        }
        Ok(())
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for RunSeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(RunVisitor(self.0))
    }
}

impl<'de> serde::de::Visitor<'de> for RunVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a run")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        use serde::de::Error;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "id" => self.0.id = Some(map.next_value()?),
                "question" => self.0.question = Some(map.next_value()?),
                "outcome" => self.0.outcome = Some(map.next_value()?),
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            if self.0.complete() {
                return Err(A::Error::custom(STOP));
            }
        }
        self.0.outcome.get_or_insert(Outcome::Unknown);
        self.0.question.get_or_insert_with(String::new);
        Ok(())
    }
}

/// The list's view of one line: from its start when it has a summary, else from a full read.
fn read_head(bytes: &[u8]) -> Result<(String, String, Outcome, Summary), String> {
    use serde::Deserializer as _;
    let mut head = Head::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result = de.deserialize_map(TopVisitor(&mut head));
    match (result, head) {
        (
            _,
            Head {
                id: Some(id),
                question,
                outcome,
                summary: Some(summary),
            },
        ) => Ok((
            id,
            question.unwrap_or_default(),
            outcome.unwrap_or_default(),
            summary,
        )),
        (Err(e), _) if !e.to_string().starts_with(STOP) => Err(format!("not a trace: {e}")),
        _ => {
            // No summary written with it: read the whole trace.
            let t: Trace =
                serde_json::from_slice(bytes).map_err(|e| format!("not a trace: {e}"))?;
            let summary = super::lint::summarize(&t);
            Ok((t.run.id, t.run.question, t.run.outcome, summary))
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TraceError + '_ {
    move |source| TraceError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Read a file in large blocks of whole lines (up to 32 MB, less for a small file) and hand
/// each to `each` with the byte offset where it starts, in file order; stops early when
/// `cancel` is set. The one reader of big JSONL logs: the run list and the search use it.
pub fn for_each_block(
    path: &Path,
    cancel: &AtomicBool,
    each: &mut dyn FnMut(u64, &[u8]),
) -> Result<(), TraceError> {
    const CHUNK: usize = 32 << 20;
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    // A small file needs no 32 MB buffer.
    let len = file.metadata().map(|m| m.len()).unwrap_or(CHUNK as u64);
    let chunk = CHUNK.min(len as usize + 1).max(4096);
    let mut carry: Vec<u8> = Vec::new();
    let mut base: u64 = 0;
    loop {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let old = carry.len();
        carry.resize(old + chunk, 0);
        let n = file.read(&mut carry[old..]).map_err(io_err(path))?;
        carry.truncate(old + n);
        let eof = n == 0;
        let cut = if eof {
            carry.len()
        } else {
            match memchr::memrchr(b'\n', &carry) {
                Some(p) => p + 1,
                None => continue,
            }
        };
        each(base, &carry[..cut]);
        base += cut as u64;
        carry.drain(..cut);
        if eof {
            break;
        }
    }
    Ok(())
}

/// Read a JSONL of traces and hand over rows as they are parsed (in file order, a chunk at a
/// time). Lines that are not traces are returned as problems.
pub fn index_jsonl(
    path: &Path,
    on_rows: &mut dyn FnMut(Vec<RunRow>),
    cancel: &AtomicBool,
) -> Result<Vec<Problem>, TraceError> {
    let mut problems = Vec::new();
    let mut line_no = 0usize;
    for_each_block(path, cancel, &mut |base, block| {
        // Line starts within this block.
        let mut lines = Vec::new();
        let mut start = 0;
        for i in memchr::memchr_iter(b'\n', block) {
            lines.push((start, i));
            start = i + 1;
        }
        if start < block.len() {
            lines.push((start, block.len()));
        }
        let first_line = line_no;
        line_no += lines.len();
        let parsed: Vec<Result<Option<RunRow>, String>> = lines
            .par_iter()
            .map(|&(s, e)| {
                let bytes = &block[s..e];
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                let (id, question, outcome, summary) = read_head(bytes)?;
                Ok(Some(RunRow {
                    id,
                    question,
                    outcome,
                    summary,
                    offset: base + s as u64,
                    len: e - s,
                }))
            })
            .collect();
        let mut rows = Vec::with_capacity(parsed.len());
        for (i, r) in parsed.into_iter().enumerate() {
            match r {
                Ok(Some(row)) => rows.push(row),
                Ok(None) => {}
                Err(message) => problems.push(Problem {
                    file: path.to_owned(),
                    line: first_line + i + 1,
                    message,
                }),
            }
        }
        if !rows.is_empty() {
            on_rows(rows);
        }
    })?;
    Ok(problems)
}

/// Load one run of a JSONL by its row.
pub fn load_row(path: &Path, row: &RunRow) -> Result<Trace, TraceError> {
    use std::io::Seek;
    let mut f = std::fs::File::open(path).map_err(io_err(path))?;
    f.seek(std::io::SeekFrom::Start(row.offset))
        .map_err(io_err(path))?;
    let mut bytes = vec![0u8; row.len];
    f.read_exact(&mut bytes).map_err(io_err(path))?;
    let mut t: Trace = serde_json::from_slice(&bytes).map_err(|e| TraceError::Format {
        path: path.to_owned(),
        message: format!("run {}: {e}", row.id),
    })?;
    super::readers::resolve_images(&mut t, path.parent().unwrap_or(Path::new(".")));
    Ok(t)
}

/// Rows for traces already in memory (a folder or a foreign log that was read whole).
pub fn rows_of(traces: &[Trace]) -> Vec<RunRow> {
    traces
        .iter()
        .enumerate()
        .map(|(i, t)| RunRow {
            id: t.run.id.clone(),
            question: t.run.question.clone(),
            outcome: t.run.outcome,
            summary: t
                .summary
                .clone()
                .unwrap_or_else(|| super::lint::summarize(t)),
            offset: i as u64,
            len: 0,
        })
        .collect()
}

/// Write traces as JSONL (one per line), summaries included.
pub fn write_jsonl(traces: &[Trace], out: &Path) -> Result<(), TraceError> {
    let file = std::fs::File::create(out).map_err(io_err(out))?;
    let mut w = std::io::BufWriter::new(file);
    for t in traces {
        let mut t = t.clone();
        if t.summary.is_none() {
            t.summary = Some(super::lint::summarize(&t));
        }
        serde_json::to_writer(&mut w, &t).map_err(|e| io_err(out)(e.into()))?;
        w.write_all(b"\n").map_err(io_err(out))?;
    }
    w.flush().map_err(io_err(out))
}

/// Write one trace as a folder: `trace.json` and its image files copied into `images/`,
/// referenced by relative paths.
pub fn write_folder(trace: &Trace, dir: &Path) -> Result<(), TraceError> {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).map_err(io_err(&images))?;
    let mut t = trace.clone();
    let mut n = 0;
    let mut place = |img: &mut TraceImage| -> Result<(), TraceError> {
        let Some(src) = img.path.clone() else {
            return Ok(());
        };
        if !src.is_file() {
            return Ok(());
        }
        n += 1;
        // Hash and size, when the log did not give them.
        if img.sha256.is_none() {
            img.sha256 = crate::dataset::ImageId::of_file(&src)
                .ok()
                .map(|id| id.to_string());
        }
        if img.width.is_none()
            && let Ok(p) = crate::imagery::probe_file(&src, crate::imagery::PixelBudget::DEFAULT)
        {
            img.width = Some(p.size.width);
            img.height = Some(p.size.height);
        }
        let name = format!(
            "{n:03}-{}",
            src.file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let dest = images.join(&name);
        std::fs::copy(&src, &dest).map_err(io_err(&dest))?;
        img.path = Some(PathBuf::from("images").join(name));
        Ok(())
    };
    for img in &mut t.run.images {
        place(img)?;
    }
    for s in &mut t.steps {
        if let Step::Execute { outputs, .. } = s {
            for o in outputs {
                place(&mut o.image)?;
            }
        }
    }
    if t.summary.is_none() {
        t.summary = Some(super::lint::summarize(&t));
    }
    let json = serde_json::to_string_pretty(&t).map_err(|e| io_err(dir)(e.into()))?;
    let file = dir.join("trace.json");
    std::fs::write(&file, json).map_err(io_err(&file))
}

/// The most a trace zip may unpack to, and the most entries it may hold (zip bombs).
const ZIP_MAX_BYTES: u64 = 4 << 30;
const ZIP_MAX_ENTRIES: usize = 100_000;

/// Write one trace as a single `.zip` of its folder form.
pub fn write_zip(trace: &Trace, out: &Path) -> Result<(), TraceError> {
    let staging = tempfile::tempdir().map_err(io_err(out))?;
    write_folder(trace, staging.path())?;
    let file = std::fs::File::create(out).map_err(io_err(out))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let zerr = |e: zip::result::ZipError| TraceError::Format {
        path: out.to_owned(),
        message: e.to_string(),
    };
    let mut entries: Vec<PathBuf> = vec![PathBuf::from("trace.json")];
    let images = staging.path().join("images");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&images)
        .map_err(io_err(&images))?
        .flatten()
        .map(|e| PathBuf::from("images").join(e.file_name()))
        .collect();
    names.sort();
    entries.extend(names);
    for rel in entries {
        let method = if rel == Path::new("trace.json") {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        zip.start_file(rel.to_string_lossy().replace('\\', "/"), options)
            .map_err(zerr)?;
        let src = staging.path().join(&rel);
        let mut f = std::fs::File::open(&src).map_err(io_err(&src))?;
        std::io::copy(&mut f, &mut zip).map_err(io_err(out))?;
    }
    zip.finish().map_err(zerr)?.flush().map_err(io_err(out))
}

/// Unpack a trace zip into a folder (once per zip file and modification time) and return it.
/// Entries that would land outside the folder are refused by the unpacker; sizes and counts
/// are checked before anything is written.
pub fn unpack_zip(path: &Path) -> Result<PathBuf, TraceError> {
    let bad = |message: String| TraceError::Format {
        path: path.to_owned(),
        message,
    };
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let modified = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(format!("not a zip: {e}")))?;
    if archive.len() > ZIP_MAX_ENTRIES {
        return Err(bad(format!(
            "{} entries, more than a trace holds",
            archive.len()
        )));
    }
    let mut total = 0u64;
    for i in 0..archive.len() {
        let entry = archive.by_index(i).map_err(|e| bad(e.to_string()))?;
        total = total.saturating_add(entry.size());
    }
    if total > ZIP_MAX_BYTES {
        return Err(bad(format!(
            "unpacks to {} MB, over the {} MB limit",
            total >> 20,
            ZIP_MAX_BYTES >> 20
        )));
    }
    let key =
        crate::dataset::ImageId::of_bytes(format!("{}:{modified}", path.display()).as_bytes());
    let dir = std::env::temp_dir()
        .join("thyme-studio-traces")
        .join(key.short());
    if !dir.join("trace.json").is_file() {
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        archive
            .extract(&dir)
            .map_err(|e| bad(format!("cannot unpack: {e}")))?;
    }
    if !dir.join("trace.json").is_file() {
        return Err(bad("no trace.json in the zip".into()));
    }
    Ok(dir)
}
