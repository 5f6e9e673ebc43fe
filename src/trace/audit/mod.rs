//! Auditing a dataset's crops: for every step that stores an output image, make that image
//! again from the original and compare. A code step is run again in the sandbox (Thyme's
//! contract: its 64 px widening and the rest), in order with the run's other cells so their
//! variables are there; a tool-call step (a zoom box) is cut from the original by the box its
//! reader placed there (each format's own crop rule: DeepEyes' pixels, Mini-o3's 0-1 or seen
//! pixels, Chain-of-Focus' enlarged resized-frame box). Each stored image is then
//! [`Verdict::Reproduced`], [`Verdict::Resampled`] (same region, other size or resampling),
//! [`Verdict::DifferentRegion`] (with where it really is, by template matching) or
//! [`Verdict::NotReproducible`] (code fails, original missing, image unreadable), with the
//! known rule that explains a size difference named ([`compare::rules`]).
//!
//! [`runner`] audits many runs in parallel with warm sandbox workers and a cache; this module
//! audits one run and sums a dataset up.

pub mod compare;
pub mod runner;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use image::DynamicImage;
use serde::{Deserialize, Serialize};

use super::{Step, Trace, TraceImage};
use crate::geometry::ImageSize;
use crate::imagery::PixelBudget;
use crate::imagery::decode::{decode_bytes, decode_file};
use crate::sandbox::{ExecResult, Sandbox};

/// How a code step that could not be run for want of a sandbox is described.
pub const NO_SANDBOX: &str = "no sandbox to run the code in";

/// What the audit found for one stored image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The stored image is another part of the original than the code or box says.
    DifferentRegion,
    /// It could not be made again: the code fails, the original is missing, ...
    NotReproducible,
    /// The same region, at another size or resampled otherwise.
    Resampled,
    /// Made again, the same picture.
    Reproduced,
}

impl Verdict {
    /// Worst first.
    pub const ALL: [Verdict; 4] = [
        Verdict::DifferentRegion,
        Verdict::NotReproducible,
        Verdict::Resampled,
        Verdict::Reproduced,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Verdict::DifferentRegion => "different region",
            Verdict::NotReproducible => "not reproducible",
            Verdict::Resampled => "same region, resampled differently",
            Verdict::Reproduced => "reproduced",
        }
    }

    /// Whether a data owner should drop or make again the row.
    pub fn disagrees(self) -> bool {
        matches!(self, Verdict::DifferentRegion | Verdict::NotReproducible)
    }
}

/// One stored image's audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepAudit {
    pub run: String,
    /// The log it came from, and its line when it is a line of a file.
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The step (0-based, as in the trace) and which of its images.
    pub step: usize,
    pub output: usize,
    pub verdict: Verdict,
    /// Known rules behind a size difference (`thyme-64px-widening`, `smart-resize`, `clamp`).
    #[serde(default)]
    pub rules: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_size: Option<[u32; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_size: Option<[u32; 2]>,
    /// After aligning the made image to the stored size (dB; absent when equal pixels,
    /// written as null).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub psnr: Option<f64>,
    /// Where the code or box says the image is on the original.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_rect: Option<[f64; 4]>,
    /// Where it really is, when it is elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub found_rect: Option<[f64; 4]>,
    pub detail: String,
}

/// The counts of a dataset's audit.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub images: usize,
    pub runs: usize,
    pub by_verdict: BTreeMap<Verdict, usize>,
    pub by_rule: BTreeMap<String, usize>,
    /// Per source file: counts by verdict.
    pub by_file: BTreeMap<String, BTreeMap<Verdict, usize>>,
}

impl Report {
    pub fn of(steps: &[StepAudit], runs: usize) -> Self {
        let mut r = Report {
            images: steps.len(),
            runs,
            ..Default::default()
        };
        for s in steps {
            *r.by_verdict.entry(s.verdict).or_default() += 1;
            for rule in &s.rules {
                *r.by_rule.entry(rule.clone()).or_default() += 1;
            }
            *r.by_file
                .entry(s.file.clone())
                .or_default()
                .entry(s.verdict)
                .or_default() += 1;
        }
        r
    }
}

/// Worst first: by verdict, then by lower agreement, then by run and step.
pub fn worst_first(steps: &mut [StepAudit]) {
    steps.sort_by(|a, b| {
        a.verdict
            .cmp(&b.verdict)
            .then(
                a.psnr
                    .unwrap_or(f64::INFINITY)
                    .total_cmp(&b.psnr.unwrap_or(f64::INFINITY)),
            )
            .then_with(|| a.file.cmp(&b.file))
            .then_with(|| a.run.cmp(&b.run))
            .then(a.step.cmp(&b.step))
            .then(a.output.cmp(&b.output))
    });
}

/// The CSV of audited images (a header line, then one line per image).
pub fn csv(steps: &[StepAudit]) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let rect = |r: Option<[f64; 4]>| {
        r.map_or(String::new(), |r| {
            format!("{:.0} {:.0} {:.0} {:.0}", r[0], r[1], r[2], r[3])
        })
    };
    let size = |s: Option<[u32; 2]>| s.map_or(String::new(), |s| format!("{}x{}", s[0], s[1]));
    let mut out = String::from(
        "file,line,run,step,output,verdict,rules,stored_size,made_size,psnr_db,claimed_rect,found_rect,detail\n",
    );
    for s in steps {
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            q(&s.file),
            s.line.map_or(String::new(), |l| l.to_string()),
            q(&s.run),
            s.step + 1,
            s.output + 1,
            q(s.verdict.name()),
            q(&s.rules.join(" ")),
            size(s.stored_size),
            size(s.made_size),
            s.psnr.map_or(String::new(), |p| {
                if p.is_finite() {
                    format!("{p:.2}")
                } else {
                    "inf".into()
                }
            }),
            rect(s.claimed_rect),
            rect(s.found_rect),
            q(&s.detail),
        ));
    }
    out
}

/// A stored image's pixels: its file, or its data URL. `None` when the log kept none.
fn stored_pixels(img: &TraceImage) -> Option<Result<DynamicImage, String>> {
    if !img.has_pixels() {
        return None;
    }
    if let Some(p) = &img.path {
        return Some(decode_file(p, PixelBudget::DEFAULT).map_err(|e| e.to_string()));
    }
    let url = img.data_url.as_deref()?;
    Some(match crate::base64::data_url_bytes(url) {
        Some(bytes) => decode_bytes(Path::new("(data URL)"), &bytes, PixelBudget::DEFAULT)
            .map_err(|e| e.to_string()),
        None => Err("its data URL is not base64".into()),
    })
}

/// Whether a step's code is a tool call (JSON) rather than Python.
fn is_tool_call(code: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(code.trim()).is_ok_and(|v| v.is_object())
}

/// Whether any step of the run stores an image (else there is nothing to audit).
pub fn has_stored_images(trace: &Trace) -> bool {
    trace.steps.iter().any(|s| match s {
        Step::Execute { outputs, .. } => outputs.iter().any(|o| o.image.has_pixels()),
        _ => false,
    })
}

/// The sandbox workers one audit thread uses: a worker is reset between runs (its variables
/// cleared, checked untouched) instead of started anew, with a warm spare from the pool when
/// one has to be replaced. Closing removes the run folders.
pub struct Workers {
    cfg: Option<crate::sandbox::SandboxConfig>,
    pool: Option<crate::sandbox::SandboxPool>,
    current: Option<Sandbox>,
    /// Decoded originals, shared by the audit's threads.
    pub originals: std::sync::Arc<Originals>,
}

impl Workers {
    /// `None`: no sandbox here; code steps are not reproducible.
    pub fn new(
        cfg: Option<crate::sandbox::SandboxConfig>,
        originals: std::sync::Arc<Originals>,
    ) -> Self {
        Self {
            cfg,
            pool: None,
            current: None,
            originals,
        }
    }

    /// A clean sandbox for the next run (given back with [`Workers::give_back`]).
    fn take(&mut self) -> Result<Sandbox, String> {
        if let Some(mut sb) = self.current.take() {
            match sb.reset() {
                Ok(()) => return Ok(sb),
                Err(_) => {
                    let dir = sb.run_dir().to_owned();
                    sb.close();
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
        }
        let cfg = self.cfg.as_ref().ok_or("the sandbox is not set up")?;
        let pool = self
            .pool
            .get_or_insert_with(|| crate::sandbox::SandboxPool::new(cfg.clone()));
        pool.start_run().map_err(|e| e.to_string())
    }

    fn give_back(&mut self, sb: Sandbox) {
        self.current = Some(sb);
    }

    /// Stop the workers and remove their run folders.
    pub fn close(mut self) {
        if let Some(sb) = self.current.take() {
            let dir = sb.run_dir().to_owned();
            sb.close();
            let _ = std::fs::remove_dir_all(dir);
        }
        drop(self.pool.take());
    }
}

/// Audit one run. `file`/`line` name where it came from; `workers` give a sandbox when the
/// run has code steps to run again.
pub fn audit_run(
    trace: &Trace,
    file: &str,
    line: Option<usize>,
    workers: &mut Workers,
    cancel: &AtomicBool,
) -> Vec<StepAudit> {
    let mut out = Vec::new();
    if !has_stored_images(trace) {
        return out;
    }
    let original_path: Option<PathBuf> = trace.run.images.first().and_then(|i| i.path.clone());
    let original_arc = original_path.as_deref().map(|p| workers.originals.get(p));
    let original = original_arc.as_deref();
    let original_size = match original {
        Some(Ok(o)) => Some(ImageSize::new(o.width(), o.height())),
        _ => None,
    };
    let mut sandbox: Option<Result<Sandbox, String>> = None;
    let base = |step: usize, output: usize| StepAudit {
        run: trace.run.id.clone(),
        file: file.to_owned(),
        line,
        step,
        output,
        verdict: Verdict::NotReproducible,
        rules: Vec::new(),
        stored_size: None,
        made_size: None,
        psnr: None,
        claimed_rect: None,
        found_rect: None,
        detail: String::new(),
    };
    for (i, step) in trace.steps.iter().enumerate() {
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let Step::Execute {
            raw_code, outputs, ..
        } = step
        else {
            continue;
        };
        let stored: Vec<Stored> = outputs
            .iter()
            .enumerate()
            .filter_map(|(k, o)| stored_pixels(&o.image).map(|p| (k, p, o.source_rect)))
            .collect();
        let tool = is_tool_call(raw_code);
        let original_ok = match original {
            Some(Ok(o)) => Ok(o),
            Some(Err(e)) => Err(format!("the original cannot be read: {e}")),
            None => Err("the run names no original image".into()),
        };
        // What the step makes now: per output, the image and where it is on the original.
        let (made, widened) = if tool {
            (made_by_box(&stored, &original_ok), false)
        } else {
            // Code runs in order with the run's other cells, stored images or not.
            let path = match (&original_ok, &original_path) {
                (Ok(_), Some(p)) => Ok(p.clone()),
                (Err(e), _) => Err(e.clone()),
                (Ok(_), None) => Err("the run names no original image".into()),
            };
            // Cells written for another contract than Thyme's are not run in its sandbox.
            let foreign = if trace.run.source_format == "pyvision"
                && raw_code.contains("image_clue_0")
            {
                Some(
                    "PyVision's cells read image_clue_0, which Thyme's sandbox contract does not define",
                )
            } else if trace.run.source_format == "deepeyes-v2" {
                Some(
                    "DeepEyesV2's cells run in a Jupyter kernel (image_1 loaded, plt.show() figures captured), which Thyme's sandbox contract does not define; its images are figure renders, not crops",
                )
            } else {
                None
            };
            let result = match (path, foreign) {
                (Err(e), _) => Err(e),
                (_, Some(why)) => Err(why.to_owned()),
                (Ok(p), None) => match sandbox.get_or_insert_with(|| workers.take()) {
                    Err(e) => Err(format!("{NO_SANDBOX}: {e}")),
                    Ok(sb) => Ok(sb.execute(raw_code, &p, cancel)),
                },
            };
            made_by_code(&stored, result)
        };
        for ((k, stored_img, stored_rect), made) in stored.into_iter().zip(made) {
            let mut a = base(i, k);
            let stored_img = match stored_img {
                Ok(s) => s,
                Err(e) => {
                    a.detail = format!("the stored image cannot be read: {e}");
                    out.push(a);
                    continue;
                }
            };
            a.stored_size = Some([stored_img.width(), stored_img.height()]);
            match made {
                Err(e) => a.detail = e,
                Ok((m, rect)) => {
                    let claimed = rect.or(stored_rect);
                    let mut found = compare::compare(
                        &stored_img,
                        &m,
                        claimed,
                        original_ok.as_ref().ok().copied(),
                    );
                    // Thyme's sandbox widened the box; a stored image of the box as written
                    // is the same place without the widening.
                    if widened
                        && found.verdict != Verdict::Reproduced
                        && let (Ok(o), [b]) = (
                            &original_ok,
                            crate::trace::provenance::boxes_in_code(raw_code).as_slice(),
                        )
                    {
                        let literal = cut(o, *b);
                        let plain = compare::compare(&stored_img, &literal, Some(*b), None);
                        if plain.verdict == Verdict::Reproduced {
                            found = compare::Found {
                                verdict: Verdict::Resampled,
                                psnr: plain.psnr,
                                found_rect: None,
                                detail: format!(
                                    "the stored image is the code's box [{:.0}, {:.0}, {:.0}, {:.0}] as written ({}x{}); Thyme's sandbox widens it to {}x{}",
                                    b[0],
                                    b[1],
                                    b[2],
                                    b[3],
                                    stored_img.width(),
                                    stored_img.height(),
                                    m.width(),
                                    m.height()
                                ),
                            };
                        }
                    }
                    a.verdict = found.verdict;
                    a.psnr = found.psnr.filter(|p| p.is_finite());
                    a.found_rect = found
                        .found_rect
                        .filter(|_| found.verdict == Verdict::DifferentRegion);
                    a.claimed_rect = claimed;
                    a.made_size = Some([m.width(), m.height()]);
                    a.detail = found.detail;
                    a.rules = compare::rules(
                        if tool { "" } else { raw_code },
                        widened,
                        original_size,
                        (stored_img.width(), stored_img.height()),
                        (m.width(), m.height()),
                    )
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                }
            }
            out.push(a);
        }
    }
    if let Some(Ok(sb)) = sandbox {
        workers.give_back(sb);
    }
    out
}

/// Decoded originals kept for the runs that share them (datasets ask many questions of one
/// picture), within a byte budget; the oldest go first.
pub struct Originals {
    budget: u64,
    kept: std::sync::Mutex<Kept>,
}

type Decoded = std::sync::Arc<Result<DynamicImage, String>>;

#[derive(Default)]
struct Kept {
    by_path: std::collections::HashMap<PathBuf, Decoded>,
    order: std::collections::VecDeque<PathBuf>,
    bytes: u64,
}

impl Originals {
    pub fn new(budget: u64) -> Self {
        Self {
            budget,
            kept: Default::default(),
        }
    }

    /// The original at `path`, decoded once while it stays in the budget.
    pub fn get(&self, path: &Path) -> Decoded {
        if let Ok(k) = self.kept.lock()
            && let Some(d) = k.by_path.get(path)
        {
            return d.clone();
        }
        let d: Decoded =
            std::sync::Arc::new(decode_file(path, PixelBudget::DEFAULT).map_err(|e| e.to_string()));
        let size = d.as_ref().as_ref().map_or(0, |i| i.as_bytes().len() as u64);
        if let Ok(mut k) = self.kept.lock()
            && size <= self.budget
        {
            while k.bytes + size > self.budget {
                let Some(old) = k.order.pop_front() else {
                    break;
                };
                if let Some(gone) = k.by_path.remove(&old) {
                    k.bytes -= gone
                        .as_ref()
                        .as_ref()
                        .map_or(0, |i| i.as_bytes().len() as u64);
                }
            }
            if k.by_path.insert(path.to_owned(), d.clone()).is_none() {
                k.order.push_back(path.to_owned());
                k.bytes += size;
            }
        }
        d
    }
}

/// A stored image of a step: which output, its pixels, its place on the original.
type Stored = (usize, Result<DynamicImage, String>, Option<[f64; 4]>);
/// What the step makes now for one stored image, and where that is on the original.
type Made = Result<(DynamicImage, Option<[f64; 4]>), String>;

/// A tool step's images: the original cut by each output's box.
fn made_by_box(stored: &[Stored], original: &Result<&DynamicImage, String>) -> Vec<Made> {
    stored
        .iter()
        .map(|(_, _, rect)| match (original, rect) {
            (Err(e), _) => Err(e.clone()),
            (Ok(_), None) => Err("the step places its image nowhere on the original".into()),
            (Ok(o), Some(r)) => Ok((cut(o, *r), Some(*r))),
        })
        .collect()
}

/// A code step's images from its run in the sandbox (or why there are none), and whether the
/// sandbox widened a box.
fn made_by_code(stored: &[Stored], result: Result<ExecResult, String>) -> (Vec<Made>, bool) {
    let r = match result {
        Err(e) => return (stored.iter().map(|_| Err(e.clone())).collect(), false),
        Ok(r) => r,
    };
    let made = stored
        .iter()
        .map(|(k, _, _)| match (&r.error, r.images.get(*k)) {
            (Some(e), _) => Err(format!(
                "the code fails now: {}",
                e.lines().next().unwrap_or_default()
            )),
            (None, None) => Err(format!(
                "the code makes {} image(s); the log stores image {}",
                r.images.len(),
                k + 1
            )),
            (None, Some(img)) => decode_file(&img.path, PixelBudget::DEFAULT)
                .map(|d| (d, img.source_rect))
                .map_err(|e| format!("the image the code makes cannot be read: {e}")),
        })
        .collect();
    (made, r.fixes.iter().any(|f| f.kind == "crop_box"))
}

/// The part of `original` under `rect` (clamped, whole pixels).
fn cut(original: &DynamicImage, rect: [f64; 4]) -> DynamicImage {
    let (w, h) = (f64::from(original.width()), f64::from(original.height()));
    let x0 = rect[0].clamp(0.0, w).floor();
    let y0 = rect[1].clamp(0.0, h).floor();
    let x1 = rect[2].clamp(0.0, w).ceil().max(x0 + 1.0).min(w);
    let y1 = rect[3].clamp(0.0, h).ceil().max(y0 + 1.0).min(h);
    original.crop_imm(
        x0 as u32,
        y0 as u32,
        (x1 - x0).max(1.0) as u32,
        (y1 - y0).max(1.0) as u32,
    )
}
