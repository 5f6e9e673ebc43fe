//! The lead's quality report: per annotator and overall, boxes against gold (honeypots) and
//! between double annotations, agreement (Krippendorff's alpha), answers against gold,
//! throughput, and rejections by reason; written as CSV and drawn by the dashboard.
//!
//! [`TeamReport::compute`] is pure (it takes what [`ReportInputs::gather`] read from the
//! server), so its numbers are tested on hand-made inputs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::metrics::{
    BoxScores, anls, box_distance, exact_match, greedy_matches, krippendorff_alpha, nominal,
};
use super::review::WorkState;
use super::server::{Assignment, MAIN_LAYER, ReviewEvent, TeamError, TeamServer};
use super::state::ImageState;
use crate::dataset::{Answer, ImageId, Question};
use crate::store::{Command, JournalEntry};

/// IoU at which two boxes count as the same object.
pub const MATCH_IOU: f64 = 0.5;
/// A pause longer than this between two edits is not counted as working time.
pub const IDLE_GAP_MS: i64 = 5 * 60 * 1000;

/// Everything the report reads from the server.
#[derive(Debug, Clone, Default)]
pub struct ReportInputs {
    pub assignments: Vec<Assignment>,
    /// (layer, image) -> state.
    pub states: BTreeMap<(String, ImageId), ImageState>,
    pub gold: BTreeMap<ImageId, ImageState>,
    pub events: Vec<ReviewEvent>,
    /// Every journal entry of every layer.
    pub journal: Vec<JournalEntry>,
}

impl ReportInputs {
    /// Read what the report needs from a team server.
    pub fn gather(server: &TeamServer) -> Result<Self, TeamError> {
        let assignments = server.all_assignments()?;
        let mut states = BTreeMap::new();
        for a in &assignments {
            let key = (a.layer.clone(), a.image.clone());
            if !states.contains_key(&key)
                && let Some(s) = server.image_state(&a.layer, &a.image)?
            {
                states.insert(key, s);
            }
        }
        let mut journal = Vec::new();
        for layer in server.layers()? {
            journal.extend(server.layer_journal(&layer)?);
        }
        Ok(Self {
            gold: server.gold()?,
            events: server.review_events()?,
            assignments,
            states,
            journal,
        })
    }
}

/// One annotator's line (or the whole team's, as "all").
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnnotatorRow {
    pub annotator: String,
    /// Boxes on honeypots against the gold boxes.
    pub gold_boxes: BoxScores,
    /// Boxes of this annotator's blind second copies against the primary annotation.
    pub double_boxes: BoxScores,
    /// Open answers on honeypots matched to gold questions: exact-match share and mean ANLS.
    pub open_exact: Option<f64>,
    pub open_anls: Option<f64>,
    /// Multiple-choice answers on honeypots that pick the gold option.
    pub choice_accuracy: Option<f64>,
    pub submitted: usize,
    pub accepted: usize,
    pub rejected: usize,
    pub rejections_by_reason: BTreeMap<String, usize>,
    pub active_hours: f64,
    pub boxes_drawn: usize,
}

impl AnnotatorRow {
    /// Rejections over finished reviews.
    pub fn rejection_rate(&self) -> Option<f64> {
        let n = self.accepted + self.rejected;
        (n > 0).then(|| self.rejected as f64 / n as f64)
    }

    pub fn items_per_hour(&self) -> Option<f64> {
        (self.active_hours > 0.0).then(|| self.submitted as f64 / self.active_hours)
    }

    pub fn seconds_per_box(&self) -> Option<f64> {
        (self.boxes_drawn > 0).then(|| self.active_hours * 3600.0 / self.boxes_drawn as f64)
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq)]
pub struct TeamReport {
    /// By annotator name.
    pub rows: Vec<AnnotatorRow>,
    pub overall: AnnotatorRow,
    /// Alpha over double-annotated boxes (distance 1 - IoU), or why there is none.
    pub alpha_boxes: Result<f64, String>,
    /// Alpha over double-annotated multiple-choice answers (nominal), or why there is none.
    pub alpha_choices: Result<f64, String>,
    pub open_items: usize,
}

fn rects(state: &ImageState) -> Vec<crate::geometry::ImageRect> {
    state.regions.iter().map(|r| r.rect).collect()
}

/// Pairs of questions (found, reference) about the same object: their first linked boxes
/// match at [`MATCH_IOU`]; questions without boxes pair by normalised text.
fn question_pairs<'a>(
    found: &'a ImageState,
    reference: &'a ImageState,
) -> Vec<(&'a Question, &'a Question)> {
    let m = greedy_matches(&rects(found), &rects(reference), MATCH_IOU);
    let box_map: BTreeMap<_, _> = m
        .iter()
        .map(|(i, j, _)| (found.regions[*i].id, reference.regions[*j].id))
        .collect();
    let mut out = Vec::new();
    let mut used = vec![false; reference.questions.len()];
    for q in &found.questions {
        let hit = reference.questions.iter().enumerate().find(|(k, r)| {
            !used[*k]
                && match (q.regions.first(), r.regions.first()) {
                    (Some(a), Some(b)) => box_map.get(a) == Some(b),
                    _ => {
                        super::metrics::normalise_answer(&q.text)
                            == super::metrics::normalise_answer(&r.text)
                    }
                }
        });
        if let Some((k, r)) = hit {
            used[k] = true;
            out.push((q, r));
        }
    }
    out
}

fn active_hours(mut times: Vec<i64>) -> f64 {
    times.sort_unstable();
    let ms: i64 = times
        .windows(2)
        .map(|w| (w[1] - w[0]).min(IDLE_GAP_MS))
        .sum();
    ms as f64 / 3_600_000.0
}

impl TeamReport {
    pub fn compute(inputs: &ReportInputs) -> Self {
        let mut rows: BTreeMap<String, AnnotatorRow> = BTreeMap::new();
        for a in &inputs.assignments {
            if let Some(who) = &a.annotator {
                rows.entry(who.clone()).or_insert_with(|| AnnotatorRow {
                    annotator: who.clone(),
                    ..Default::default()
                });
            }
        }
        let mut open_scores: BTreeMap<String, (usize, usize, f64)> = BTreeMap::new();
        let mut choice_scores: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let mut box_units: Vec<Vec<Option<crate::geometry::ImageRect>>> = Vec::new();
        let mut choice_units: Vec<Vec<Option<String>>> = Vec::new();
        let mut open_items = 0;
        for a in &inputs.assignments {
            let Some(who) = &a.annotator else { continue };
            if a.state.editable_by_annotator() {
                open_items += 1;
            }
            let Some(mine) = inputs.states.get(&(a.layer.clone(), a.image.clone())) else {
                continue;
            };
            match a.kind.as_str() {
                "honeypot" => {
                    let Some(gold) = inputs.gold.get(&a.image) else {
                        continue;
                    };
                    if let Some(r) = rows.get_mut(who) {
                        r.gold_boxes =
                            r.gold_boxes
                                .add(&BoxScores::of(&rects(mine), &rects(gold), MATCH_IOU));
                    }
                    for (q, g) in question_pairs(mine, gold) {
                        match (&q.answer, &g.answer) {
                            (Answer::Open { text }, Answer::Open { text: truth }) => {
                                let s = open_scores.entry(who.clone()).or_default();
                                s.0 += 1;
                                s.1 += usize::from(exact_match(text, &[truth.as_str()]));
                                s.2 += anls(text, &[truth.as_str()]);
                            }
                            (Answer::Choice { .. }, Answer::Choice { .. }) => {
                                let s = choice_scores.entry(who.clone()).or_default();
                                s.0 += 1;
                                s.1 += usize::from(q.answer.solution() == g.answer.solution());
                            }
                            _ => {}
                        }
                    }
                }
                "double" => {
                    let Some(primary) =
                        inputs.states.get(&(MAIN_LAYER.to_owned(), a.image.clone()))
                    else {
                        continue;
                    };
                    let (found, reference) = (rects(mine), rects(primary));
                    if let Some(r) = rows.get_mut(who) {
                        r.double_boxes = r
                            .double_boxes
                            .add(&BoxScores::of(&found, &reference, MATCH_IOU));
                    }
                    for (i, j, _) in greedy_matches(&found, &reference, MATCH_IOU) {
                        box_units.push(vec![Some(found[i]), Some(reference[j])]);
                    }
                    for (q, p) in question_pairs(mine, primary) {
                        if let (Answer::Choice { .. }, Answer::Choice { .. }) =
                            (&q.answer, &p.answer)
                        {
                            choice_units.push(vec![
                                Some(q.answer.solution().to_owned()),
                                Some(p.answer.solution().to_owned()),
                            ]);
                        }
                    }
                }
                _ => {}
            }
        }
        for (who, (n, exact, anls_sum)) in &open_scores {
            if let Some(r) = rows.get_mut(who) {
                r.open_exact = Some(*exact as f64 / *n as f64);
                r.open_anls = Some(anls_sum / *n as f64);
            }
        }
        for (who, (n, right)) in &choice_scores {
            if let Some(r) = rows.get_mut(who) {
                r.choice_accuracy = Some(*right as f64 / *n as f64);
            }
        }
        for e in &inputs.events {
            let Some(r) = rows.get_mut(&e.annotator) else {
                continue;
            };
            match e.to {
                WorkState::Submitted if e.actor == e.annotator => r.submitted += 1,
                WorkState::Accepted => r.accepted += 1,
                WorkState::Rejected => {
                    r.rejected += 1;
                    *r.rejections_by_reason
                        .entry(e.reason.clone().unwrap_or_else(|| "(none)".into()))
                        .or_default() += 1;
                }
                _ => {}
            }
        }
        let mut times: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        for j in &inputs.journal {
            if !rows.contains_key(&j.actor) {
                continue;
            }
            times.entry(j.actor.as_str()).or_default().push(j.at_ms);
            if let Command::AddRegion { .. } = j.command
                && let Some(r) = rows.get_mut(&j.actor)
            {
                r.boxes_drawn += 1;
            }
        }
        for (who, t) in times {
            if let Some(r) = rows.get_mut(who) {
                r.active_hours = active_hours(t);
            }
        }
        let rows: Vec<AnnotatorRow> = rows.into_values().collect();
        let mut overall = AnnotatorRow {
            annotator: "all".into(),
            ..Default::default()
        };
        let (mut open_n, mut open_exact, mut open_anls, mut choice_n, mut choice_right) =
            (0usize, 0usize, 0.0, 0usize, 0usize);
        for (n, e, a) in open_scores.values() {
            open_n += n;
            open_exact += e;
            open_anls += a;
        }
        for (n, r) in choice_scores.values() {
            choice_n += n;
            choice_right += r;
        }
        for r in &rows {
            overall.gold_boxes = overall.gold_boxes.add(&r.gold_boxes);
            overall.double_boxes = overall.double_boxes.add(&r.double_boxes);
            overall.submitted += r.submitted;
            overall.accepted += r.accepted;
            overall.rejected += r.rejected;
            overall.active_hours += r.active_hours;
            overall.boxes_drawn += r.boxes_drawn;
            for (k, v) in &r.rejections_by_reason {
                *overall.rejections_by_reason.entry(k.clone()).or_default() += v;
            }
        }
        overall.open_exact = (open_n > 0).then(|| open_exact as f64 / open_n as f64);
        overall.open_anls = (open_n > 0).then(|| open_anls / open_n as f64);
        overall.choice_accuracy = (choice_n > 0).then(|| choice_right as f64 / choice_n as f64);
        Self {
            rows,
            overall,
            alpha_boxes: krippendorff_alpha(&box_units, box_distance).map_err(|e| e.to_string()),
            alpha_choices: krippendorff_alpha(&choice_units, nominal).map_err(|e| e.to_string()),
            open_items,
        }
    }

    /// The report as CSV: one row per annotator, then "all" (alphas only on that row).
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "annotator,gold_precision,gold_recall,gold_f1,gold_mean_iou,double_precision,double_recall,double_f1,double_mean_iou,\
             open_exact_match,open_anls,choice_accuracy,alpha_boxes,alpha_choices,submitted,accepted,rejected,rejection_rate,\
             active_hours,items_per_hour,seconds_per_box,rejections_by_reason\n",
        );
        let f = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_default();
        let write_row = |out: &mut String, r: &AnnotatorRow, alphas: (Option<f64>, Option<f64>)| {
            let reasons: Vec<String> = r
                .rejections_by_reason
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.4},{},{},\"{}\"",
                csv_field(&r.annotator),
                f(r.gold_boxes.precision()),
                f(r.gold_boxes.recall()),
                f(r.gold_boxes.f1()),
                f(r.gold_boxes.mean_iou),
                f(r.double_boxes.precision()),
                f(r.double_boxes.recall()),
                f(r.double_boxes.f1()),
                f(r.double_boxes.mean_iou),
                f(r.open_exact),
                f(r.open_anls),
                f(r.choice_accuracy),
                f(alphas.0),
                f(alphas.1),
                r.submitted,
                r.accepted,
                r.rejected,
                f(r.rejection_rate()),
                r.active_hours,
                f(r.items_per_hour()),
                f(r.seconds_per_box()),
                reasons.join("; ").replace('"', "'"),
            );
        };
        for r in &self.rows {
            write_row(&mut out, r, (None, None));
        }
        write_row(
            &mut out,
            &self.overall,
            (
                self.alpha_boxes.clone().ok(),
                self.alpha_choices.clone().ok(),
            ),
        );
        out
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
mod tests {
    use super::*;
    use crate::dataset::{ImageRecord, Region};
    use crate::geometry::{ImageRect, ImageSize};

    fn img(n: &str) -> ImageRecord {
        ImageRecord {
            id: ImageId::of_bytes(n.as_bytes()),
            path: format!("/p/{n}.jpg").into(),
            size: ImageSize::new(4000, 3000),
            bytes: 1,
            added_at_ms: 0,
            status: Default::default(),
            review: None,
        }
    }

    fn assignment(id: i64, image: &ImageRecord, who: &str, kind: &str, layer: &str) -> Assignment {
        Assignment {
            id,
            batch: 1,
            image: image.id.clone(),
            annotator: Some(who.into()),
            kind: kind.into(),
            layer: layer.into(),
            lease_expires_ms: 0,
            state: WorkState::Submitted,
            reason: None,
            note: None,
        }
    }

    #[test]
    fn honeypots_doubles_reviews_and_time_make_the_numbers_a_lead_expects() {
        let gold_img = img("gold");
        let g1 = Region::new(
            gold_img.id.clone(),
            ImageRect::new(0.0, 0.0, 20.0, 20.0),
            "a",
        );
        let g2 = Region::new(
            gold_img.id.clone(),
            ImageRect::new(100.0, 100.0, 120.0, 120.0),
            "b",
        );
        let gq = Question::new(
            gold_img.id.clone(),
            vec![g1.id],
            "text?",
            Answer::Open {
                text: "EXIT".into(),
            },
            "ocr",
        );
        let gold = ImageState {
            image: gold_img.clone(),
            regions: vec![g1, g2],
            questions: vec![gq],
        };
        // ann found the first box shifted 2 px (IoU 0.68) and one false box, missed the second.
        let a1 = Region::new(
            gold_img.id.clone(),
            ImageRect::new(2.0, 2.0, 22.0, 22.0),
            "a",
        );
        let a2 = Region::new(
            gold_img.id.clone(),
            ImageRect::new(500.0, 500.0, 520.0, 520.0),
            "x",
        );
        let aq = Question::new(
            gold_img.id.clone(),
            vec![a1.id],
            "what text?",
            Answer::Open {
                text: "exit".into(),
            },
            "ocr",
        );
        let ann_pot = ImageState {
            image: gold_img.clone(),
            regions: vec![a1, a2],
            questions: vec![aq],
        };

        let shared = img("shared");
        let p1 = Region::new(shared.id.clone(), ImageRect::new(0.0, 0.0, 20.0, 20.0), "p");
        let b1 = Region::new(shared.id.clone(), ImageRect::new(0.0, 0.0, 20.0, 20.0), "p");
        let primary = ImageState {
            image: shared.clone(),
            regions: vec![p1],
            questions: vec![],
        };
        let bob_copy = ImageState {
            image: shared.clone(),
            regions: vec![b1],
            questions: vec![],
        };

        let mut inputs = ReportInputs::default();
        inputs.gold.insert(gold_img.id.clone(), gold);
        inputs.assignments = vec![
            assignment(1, &gold_img, "ann", "honeypot", "blind_ann"),
            assignment(2, &shared, "ann", "primary", "main"),
            assignment(3, &shared, "bob", "double", "blind_bob"),
        ];
        inputs
            .states
            .insert(("blind_ann".into(), gold_img.id.clone()), ann_pot);
        inputs
            .states
            .insert(("main".into(), shared.id.clone()), primary);
        inputs
            .states
            .insert(("blind_bob".into(), shared.id.clone()), bob_copy);
        let ev = |to: WorkState, actor: &str, reason: Option<&str>| ReviewEvent {
            assignment: 2,
            actor: actor.into(),
            from: WorkState::InReview,
            to,
            reason: reason.map(str::to_owned),
            at_ms: 0,
            annotator: "ann".into(),
        };
        inputs.events = vec![
            ev(WorkState::Submitted, "ann", None),
            ev(WorkState::Rejected, "rev", Some("wrong label")),
            ev(WorkState::Accepted, "rev", None),
        ];
        // ann: edits at 0, 1 min, 2 min, then a 1 h pause (counted as 5 min), 3 AddRegions.
        let add = |at_ms: i64| JournalEntry {
            seq: at_ms,
            at_ms,
            actor: "ann".into(),
            action: crate::store::JournalAction::Edit,
            target: None,
            command: Command::AddRegion {
                region: Region::new(shared.id.clone(), ImageRect::new(0.0, 0.0, 1.0, 1.0), "t"),
                links: vec![],
            },
        };
        inputs.journal = vec![add(0), add(60_000), add(120_000), add(120_000 + 3_600_000)];

        let report = TeamReport::compute(&inputs);
        let ann = &report.rows[0];
        assert_eq!(ann.annotator, "ann");
        assert_eq!(
            (
                ann.gold_boxes.true_positives,
                ann.gold_boxes.false_positives,
                ann.gold_boxes.false_negatives
            ),
            (1, 1, 1)
        );
        assert!((ann.gold_boxes.mean_iou.unwrap() - 324.0 / 476.0).abs() < 1e-12);
        assert_eq!(ann.gold_boxes.f1(), Some(0.5));
        assert_eq!(ann.open_exact, Some(1.0), "case-insensitive exact match");
        assert_eq!(ann.open_anls, Some(1.0));
        assert_eq!((ann.submitted, ann.accepted, ann.rejected), (1, 1, 1));
        assert_eq!(ann.rejection_rate(), Some(0.5));
        assert_eq!(ann.rejections_by_reason.get("wrong label"), Some(&1));
        assert_eq!(ann.boxes_drawn, 4);
        assert!(
            (ann.active_hours - 7.0 / 60.0).abs() < 1e-12,
            "{}",
            ann.active_hours
        );
        assert!((ann.seconds_per_box().unwrap() - 105.0).abs() < 1e-9);
        let bob = &report.rows[1];
        assert_eq!(bob.double_boxes.f1(), Some(1.0));
        // One matched pair only, identical: alpha needs variation across units.
        assert!(report.alpha_boxes.is_err());
        assert!(report.alpha_choices.is_err());
        let csv = report.to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 4, "{csv}");
        assert!(
            lines[1].starts_with("ann,0.5000,0.5000,0.5000,0.6807,"),
            "{}",
            lines[1]
        );
        assert!(lines[3].starts_with("all,"), "{}", lines[3]);
        assert!(lines[1].ends_with("\"wrong label=1\""), "{}", lines[1]);
    }
}
