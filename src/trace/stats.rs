//! Statistics over many runs (a batch's traces, a trace JSONL, another agent's log): outcomes
//! and accuracy grouped by the question's category, by how many code cells ran, by whether
//! tools were used and by each tool, by lint flag and by the size of the smallest crop; the
//! tool-use rate; how large the crops were against the original and how far they zoomed;
//! errors. `thyme-studio trace stats` prints them and writes them as CSV.
//!
//! Accuracy is correct / (correct + wrong): runs without a ground truth to compare with
//! ("answered") and runs that never answered count in their own columns, not as wrong.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Outcome, Summary, Trace, lint};
use crate::geometry::ImageRect;

/// How runs are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    /// The question's category (`(none)` when the run names none).
    Category,
    /// Code cells run: 0, 1, 2, 3 or 4+.
    Executions,
    /// `tools` or `no tools`.
    ToolUse,
    /// Each tool or library the code used (a run counts under every one it used).
    Tool,
    /// Each lint flag (a run counts under every flag it has).
    Flag,
    /// The smallest crop's share of the original's area (`no crop` when none was made,
    /// `original size unknown` when the log gives no size and the file is not there).
    CropSize,
    /// Whether a crop looked at the question's target box (runs whose task named one).
    Looked,
}

impl Dimension {
    pub const ALL: [Dimension; 7] = [
        Dimension::Category,
        Dimension::Executions,
        Dimension::ToolUse,
        Dimension::Tool,
        Dimension::Flag,
        Dimension::CropSize,
        Dimension::Looked,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dimension::Category => "category",
            Dimension::Executions => "executions",
            Dimension::ToolUse => "tool use",
            Dimension::Tool => "tool",
            Dimension::Flag => "flag",
            Dimension::CropSize => "smallest crop",
            Dimension::Looked => "looked at the target",
        }
    }
}

/// Runs counted by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub runs: usize,
    pub correct: usize,
    pub wrong: usize,
    pub answered: usize,
    pub no_answer: usize,
    pub unknown: usize,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        self.runs += 1;
        match outcome {
            Outcome::Correct => self.correct += 1,
            Outcome::Wrong => self.wrong += 1,
            Outcome::Answered => self.answered += 1,
            Outcome::NoAnswer => self.no_answer += 1,
            Outcome::Unknown => self.unknown += 1,
        }
    }

    /// Correct over correct plus wrong; `None` when no run could be graded.
    pub fn accuracy(&self) -> Option<f64> {
        let graded = self.correct + self.wrong;
        (graded > 0).then(|| self.correct as f64 / graded as f64)
    }
}

/// One group's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub dimension: Dimension,
    pub key: String,
    #[serde(flatten)]
    pub tally: Tally,
    pub accuracy: Option<f64>,
}

/// The crops made over all runs, on the original image.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Crops {
    pub crops: usize,
    pub runs_with_crops: usize,
    /// Crop area over the original's area: 10th, 50th and 90th percentile.
    pub area_share_p10: Option<f64>,
    pub area_share_p50: Option<f64>,
    pub area_share_p90: Option<f64>,
    /// How far the output enlarged its crop (output width over crop width): median and 90th
    /// percentile.
    pub zoom_p50: Option<f64>,
    pub zoom_p90: Option<f64>,
}

/// Crops against the question's target boxes, over the runs whose task named targets.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Targets {
    pub runs_with_targets: usize,
    /// A crop held at least `LOOKED_AT` of a target's area.
    pub looked_at_target: usize,
    /// Crops were made, none held that much of any target.
    pub looked_elsewhere: usize,
    pub never_zoomed: usize,
    /// Per run, the most of a target one crop held (0 to 1): median.
    pub cover_p50: Option<f64>,
    /// Per run, the IoU of that crop with that target: median.
    pub iou_p50: Option<f64>,
    /// Per run, that crop's area over the target's (how much context came with it): median
    /// and 90th percentile.
    pub crop_over_target_p50: Option<f64>,
    pub crop_over_target_p90: Option<f64>,
}

/// A crop looked at a target when it holds at least this share of the target's area: half
/// of a small object is enough to read or count it once enlarged, and a crop that misses more
/// than half of it was aimed elsewhere.
pub const LOOKED_AT: f64 = 0.5;

/// The look-keys, in order.
const LOOK_KEYS: [&str; 4] = [
    "looked at the target",
    "looked elsewhere",
    "never zoomed",
    "no target box",
];

/// How a run's crops met its targets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Look {
    /// The task named no target.
    NoTarget,
    /// Targets, and no crop.
    NeverZoomed,
    /// The crop that held most of a target: the share of the target it held, their IoU, and
    /// the crop's area over the target's (NaN when no crop had an area).
    Best { cover: f64, iou: f64, ratio: f64 },
}

/// How `t`'s crops met its targets, all on the original image.
pub fn target_measures(t: &Trace) -> Look {
    if t.run.targets.is_empty() {
        return Look::NoTarget;
    }
    let crops = t.crops();
    if crops.is_empty() {
        return Look::NeverZoomed;
    }
    let mut best = (0.0, 0.0, f64::NAN);
    for (_, c) in crops {
        let crop = ImageRect::from_corners((c[0], c[1]), (c[2], c[3]));
        for &[x0, y0, x1, y1] in &t.run.targets {
            let target = ImageRect::new(x0, y0, x1, y1);
            let (ta, ca) = (target.area(), crop.area());
            if ta <= 0.0 || ca <= 0.0 {
                continue;
            }
            let m = (
                crop.intersection_area(&target) / ta,
                crop.iou(&target),
                ca / ta,
            );
            if best.2.is_nan() || m.0 > best.0 || (m.0 == best.0 && m.1 > best.1) {
                best = m;
            }
        }
    }
    Look::Best {
        cover: best.0,
        iou: best.1,
        ratio: best.2,
    }
}

pub fn look_key(look: Look) -> &'static str {
    match look {
        Look::NoTarget => LOOK_KEYS[3],
        Look::NeverZoomed => LOOK_KEYS[2],
        Look::Best { cover, .. } if cover >= LOOKED_AT => LOOK_KEYS[0],
        Look::Best { .. } => LOOK_KEYS[1],
    }
}

/// Everything `trace stats` reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    pub runs: usize,
    #[serde(flatten)]
    pub overall: Tally,
    pub accuracy: Option<f64>,
    /// Runs that ran at least one code cell, over all runs.
    pub tool_use_rate: Option<f64>,
    pub executions: usize,
    pub execution_errors: usize,
    pub runs_with_errors: usize,
    /// Runs whose log stops before their end.
    pub cut_short: usize,
    pub crops: Crops,
    pub targets: Targets,
    /// Every group, dimension by dimension, keys in their order (buckets by size, names
    /// alphabetically).
    pub groups: Vec<Group>,
}

/// The smallest-crop buckets, in order.
const CROP_BUCKETS: [&str; 7] = [
    "under 0.1%",
    "0.1-1%",
    "1-10%",
    "10-50%",
    "50% or more",
    "no crop",
    "original size unknown",
];

fn crop_bucket(share: Option<f64>) -> &'static str {
    match share {
        None => CROP_BUCKETS[5],
        Some(s) if s < 0.001 => CROP_BUCKETS[0],
        Some(s) if s < 0.01 => CROP_BUCKETS[1],
        Some(s) if s < 0.1 => CROP_BUCKETS[2],
        Some(s) if s < 0.5 => CROP_BUCKETS[3],
        Some(_) => CROP_BUCKETS[4],
    }
}

fn executions_bucket(n: usize) -> String {
    if n >= 4 { "4+".into() } else { n.to_string() }
}

/// Give originals whose size the log did not state their size from the file's header (a
/// header probe, no decoding), so crops can be measured against them. Files that are missing
/// or unreadable are left as they are.
pub fn fill_original_sizes(traces: &mut [Trace], base: &std::path::Path) {
    for t in traces {
        let Some(img) = t.run.images.first_mut() else {
            continue;
        };
        if img.width.is_some() && img.height.is_some() {
            continue;
        }
        let Some(path) = img.path.as_ref().map(|p| base.join(p)) else {
            continue;
        };
        if let Ok(probe) = crate::imagery::probe_file(&path, crate::imagery::PixelBudget::DEFAULT) {
            img.width = Some(probe.size.width);
            img.height = Some(probe.size.height);
        }
    }
}

/// Each crop's share of the original's area (when the original's size is known) and its zoom
/// (when the output's width is known).
fn crop_measures(t: &Trace) -> Vec<(Option<f64>, Option<f64>)> {
    let original = t
        .run
        .images
        .first()
        .and_then(|i| Some(f64::from(i.width?) * f64::from(i.height?)))
        .filter(|a| *a > 0.0);
    let mut out = Vec::new();
    for step in &t.steps {
        let super::Step::Execute { outputs, .. } = step else {
            continue;
        };
        for o in outputs {
            let Some([x0, y0, x1, y1]) = o.source_rect else {
                continue;
            };
            let (w, h) = ((x1 - x0).abs(), (y1 - y0).abs());
            if w <= 0.0 || h <= 0.0 {
                continue;
            }
            let zoom = o.image.width.map(|ow| f64::from(ow) / w);
            out.push((original.map(|area| (w * h / area).min(1.0)), zoom));
        }
    }
    out
}

/// What a run is grouped by, worked out once per run.
struct Facts<'a> {
    summary: std::borrow::Cow<'a, Summary>,
    crops: Vec<(Option<f64>, Option<f64>)>,
    look: Look,
}

/// The keys a run counts under in `dim` (several for tools and flags, none when it used none).
fn keys_of(t: &Trace, facts: &Facts, dim: Dimension) -> Vec<String> {
    let summary = &facts.summary;
    match dim {
        Dimension::Category => vec![
            t.run
                .category
                .clone()
                .unwrap_or_else(|| "(none)".to_owned()),
        ],
        Dimension::Executions => vec![executions_bucket(summary.executions)],
        Dimension::ToolUse => vec![
            if summary.executions > 0 {
                "tools"
            } else {
                "no tools"
            }
            .to_owned(),
        ],
        Dimension::Tool => summary.tools.clone(),
        Dimension::Flag => summary.flags.clone(),
        Dimension::CropSize => {
            if facts.crops.is_empty() {
                return vec![crop_bucket(None).to_owned()];
            }
            let smallest = facts
                .crops
                .iter()
                .filter_map(|(share, _)| *share)
                .min_by(f64::total_cmp);
            vec![
                smallest
                    .map_or(CROP_BUCKETS[6], |s| crop_bucket(Some(s)))
                    .to_owned(),
            ]
        }
        Dimension::Looked => vec![look_key(facts.look).to_owned()],
    }
}

fn summary_of(t: &Trace) -> std::borrow::Cow<'_, Summary> {
    match &t.summary {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(lint::summarize(t)),
    }
}

/// The nearest-rank percentile the benchmarks use; `None` when there are no values.
fn percentile(values: &[f64], p: f64) -> Option<f64> {
    (!values.is_empty()).then(|| crate::bench::percentile(values, p))
}

/// The order of a dimension's keys.
fn key_order(dim: Dimension, key: &str) -> (usize, String) {
    match dim {
        Dimension::Executions => (
            key.trim_end_matches('+').parse().unwrap_or(usize::MAX),
            String::new(),
        ),
        Dimension::CropSize => (
            CROP_BUCKETS
                .iter()
                .position(|b| *b == key)
                .unwrap_or(usize::MAX),
            String::new(),
        ),
        Dimension::Looked => (
            LOOK_KEYS
                .iter()
                .position(|b| *b == key)
                .unwrap_or(usize::MAX),
            String::new(),
        ),
        _ => (0, key.to_owned()),
    }
}

/// The statistics of `traces`.
pub fn compute(traces: &[Trace]) -> Stats {
    let mut acc = Accumulator::default();
    for t in traces {
        acc.add(t);
    }
    acc.finish()
}

/// Statistics gathered one run at a time, so a large log never has to be held whole.
#[derive(Debug, Default)]
pub struct Accumulator {
    stats: Stats,
    groups: BTreeMap<(Dimension, (usize, String)), (String, Tally)>,
    shares: Vec<f64>,
    zooms: Vec<f64>,
    with_tools: usize,
    /// Per run with targets and crops: cover, IoU, crop over target.
    looks: Vec<(f64, f64, f64)>,
}

impl Accumulator {
    /// Count one run; returns the keys it counts under, dimension by dimension (in
    /// `Dimension::ALL` order), so a view can later pick out the runs of a group.
    pub fn add(&mut self, t: &Trace) -> Vec<(Dimension, Vec<String>)> {
        let stats = &mut self.stats;
        stats.runs += 1;
        let outcome = t.run.outcome;
        stats.overall.add(outcome);
        let facts = Facts {
            summary: summary_of(t),
            crops: crop_measures(t),
            look: target_measures(t),
        };
        stats.executions += facts.summary.executions;
        self.with_tools += usize::from(facts.summary.executions > 0);
        let errors = t
            .steps
            .iter()
            .filter(|s| matches!(s, super::Step::Execute { error: Some(_), .. }))
            .count();
        stats.execution_errors += errors;
        stats.runs_with_errors += usize::from(errors > 0);
        stats.cut_short += usize::from(t.run.cut_short.is_some());
        stats.crops.crops += facts.crops.len();
        stats.crops.runs_with_crops += usize::from(!facts.crops.is_empty());
        for (share, zoom) in &facts.crops {
            self.shares.extend(*share);
            self.zooms.extend(*zoom);
        }
        let targets = &mut stats.targets;
        match facts.look {
            Look::NoTarget => {}
            Look::NeverZoomed => {
                targets.runs_with_targets += 1;
                targets.never_zoomed += 1;
            }
            Look::Best { cover, iou, ratio } => {
                targets.runs_with_targets += 1;
                if cover >= LOOKED_AT {
                    targets.looked_at_target += 1;
                } else {
                    targets.looked_elsewhere += 1;
                }
                self.looks.push((cover, iou, ratio));
            }
        }
        let mut keys = Vec::with_capacity(Dimension::ALL.len());
        for dim in Dimension::ALL {
            let of_dim = keys_of(t, &facts, dim);
            for key in &of_dim {
                self.groups
                    .entry((dim, key_order(dim, key)))
                    .or_insert_with(|| (key.clone(), Tally::default()))
                    .1
                    .add(outcome);
            }
            keys.push((dim, of_dim));
        }
        keys
    }

    pub fn finish(self) -> Stats {
        let mut stats = self.stats;
        stats.accuracy = stats.overall.accuracy();
        stats.tool_use_rate = (stats.runs > 0).then(|| self.with_tools as f64 / stats.runs as f64);
        stats.crops.area_share_p10 = percentile(&self.shares, 0.1);
        stats.crops.area_share_p50 = percentile(&self.shares, 0.5);
        stats.crops.area_share_p90 = percentile(&self.shares, 0.9);
        stats.crops.zoom_p50 = percentile(&self.zooms, 0.5);
        stats.crops.zoom_p90 = percentile(&self.zooms, 0.9);
        let column = |f: fn(&(f64, f64, f64)) -> f64| -> Vec<f64> {
            self.looks.iter().map(f).filter(|x| x.is_finite()).collect()
        };
        let (cover, iou, ratio) = (column(|m| m.0), column(|m| m.1), column(|m| m.2));
        stats.targets.cover_p50 = percentile(&cover, 0.5);
        stats.targets.iou_p50 = percentile(&iou, 0.5);
        stats.targets.crop_over_target_p50 = percentile(&ratio, 0.5);
        stats.targets.crop_over_target_p90 = percentile(&ratio, 0.9);
        stats.groups = self
            .groups
            .into_iter()
            .map(|((dimension, _), (key, tally))| Group {
                dimension,
                key,
                accuracy: tally.accuracy(),
                tally,
            })
            .collect();
        stats
    }
}

fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |a| format!("{:.1}%", a * 100.0))
}

/// A share of the original's area as a percentage, with the digits a small crop needs.
pub fn share_text(v: Option<f64>) -> String {
    match v {
        None => "-".to_owned(),
        Some(a) if a < 0.01 => format!("{:.3}%", a * 100.0),
        Some(a) => format!("{:.1}%", a * 100.0),
    }
}

impl Stats {
    /// The groups as CSV, the whole set first (dimension `all`).
    pub fn csv(&self) -> String {
        let mut out =
            String::from("dimension,key,runs,correct,wrong,answered,no_answer,unknown,accuracy\n");
        let mut row = |dim: &str, key: &str, t: &Tally, acc: Option<f64>| {
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                csv_field(dim),
                csv_field(key),
                t.runs,
                t.correct,
                t.wrong,
                t.answered,
                t.no_answer,
                t.unknown,
                acc.map_or_else(String::new, |a| format!("{a:.4}"))
            ));
        };
        row("all", "all", &self.overall, self.accuracy);
        for g in &self.groups {
            row(g.dimension.name(), &g.key, &g.tally, g.accuracy);
        }
        out
    }

    /// A text report: the totals, then one table per dimension.
    pub fn text(&self) -> String {
        let c = &self.crops;
        let mut s = format!(
            "{} runs: {} correct, {} wrong, {} answered without a ground truth, {} without an answer, {} unknown\n\
             accuracy {} (correct / graded); tool use {} of runs; {} code cells, {} with an error ({} runs); {} logs cut short\n\
             crops: {} in {} runs; share of the original p10/p50/p90 {} / {} / {}; zoom p50/p90 {} / {}\n",
            self.runs,
            self.overall.correct,
            self.overall.wrong,
            self.overall.answered,
            self.overall.no_answer,
            self.overall.unknown,
            percent(self.accuracy),
            percent(self.tool_use_rate),
            self.executions,
            self.execution_errors,
            self.runs_with_errors,
            self.cut_short,
            c.crops,
            c.runs_with_crops,
            share_text(c.area_share_p10),
            share_text(c.area_share_p50),
            share_text(c.area_share_p90),
            c.zoom_p50
                .map_or_else(|| "-".into(), |z| format!("{z:.2}x")),
            c.zoom_p90
                .map_or_else(|| "-".into(), |z| format!("{z:.2}x")),
        );
        let tg = &self.targets;
        if tg.runs_with_targets > 0 {
            s.push_str(&format!(
                "targets: {} runs with a target box: {} looked at it (a crop held {:.0}% of it or more), {} looked elsewhere, {} never zoomed; \
                 best cover p50 {}, IoU p50 {}, crop area over target p50/p90 {} / {}\n",
                tg.runs_with_targets,
                tg.looked_at_target,
                LOOKED_AT * 100.0,
                tg.looked_elsewhere,
                tg.never_zoomed,
                percent(tg.cover_p50),
                tg.iou_p50.map_or_else(|| "-".into(), |v| format!("{v:.2}")),
                tg.crop_over_target_p50.map_or_else(|| "-".into(), |v| format!("{v:.1}x")),
                tg.crop_over_target_p90.map_or_else(|| "-".into(), |v| format!("{v:.1}x")),
            ));
        }
        for dim in Dimension::ALL {
            let rows: Vec<&Group> = self.groups.iter().filter(|g| g.dimension == dim).collect();
            if rows.is_empty() {
                continue;
            }
            s.push_str(&format!(
                "\nby {}:\n  {:<24} {:>7} {:>8} {:>6} {:>9}\n",
                dim.name(),
                "",
                "runs",
                "correct",
                "wrong",
                "accuracy"
            ));
            for g in rows {
                s.push_str(&format!(
                    "  {:<24} {:>7} {:>8} {:>6} {:>9}\n",
                    g.key,
                    g.tally.runs,
                    g.tally.correct,
                    g.tally.wrong,
                    percent(g.accuracy)
                ));
            }
        }
        s
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests;
