//! Quality measures for a labelling team: boxes against gold or between two annotators
//! (greedy one-to-one matching at an IoU threshold, then precision, recall, F1 and mean IoU),
//! Krippendorff's alpha over any number of coders with missing values (nominal for answers,
//! interval for numbers, 1 - IoU for boxes, or any distance), and exact match and ANLS for
//! open answers. Pure functions; the dashboard and the CSV export read them.

use thiserror::Error;

use crate::geometry::ImageRect;

/// A matched pair: (index in `a`, index in `b`, IoU).
pub type Match = (usize, usize, f64);

/// One-to-one matches of `a` to `b`: every pair at or above `threshold`, taken greedily from
/// the highest IoU down (ties by index, so the result is stable).
pub fn greedy_matches(a: &[ImageRect], b: &[ImageRect], threshold: f64) -> Vec<Match> {
    let mut pairs: Vec<Match> = Vec::new();
    for (i, ra) in a.iter().enumerate() {
        for (j, rb) in b.iter().enumerate() {
            let v = ra.iou(rb);
            if v >= threshold && v > 0.0 {
                pairs.push((i, j, v));
            }
        }
    }
    pairs.sort_by(|x, y| y.2.total_cmp(&x.2).then(x.0.cmp(&y.0)).then(x.1.cmp(&y.1)));
    let (mut used_a, mut used_b) = (vec![false; a.len()], vec![false; b.len()]);
    let mut out = Vec::new();
    for (i, j, v) in pairs {
        if !used_a[i] && !used_b[j] {
            used_a[i] = true;
            used_b[j] = true;
            out.push((i, j, v));
        }
    }
    out.sort_by_key(|m| (m.0, m.1));
    out
}

/// Boxes of an annotator scored against reference boxes (gold, or another annotator's).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BoxScores {
    pub true_positives: usize,
    pub false_positives: usize,
    pub false_negatives: usize,
    /// Mean IoU of the matched pairs (None with no match).
    pub mean_iou: Option<f64>,
}

impl BoxScores {
    /// Score `found` against `reference` with greedy matching at `threshold` (0.5 usually).
    pub fn of(found: &[ImageRect], reference: &[ImageRect], threshold: f64) -> Self {
        let m = greedy_matches(found, reference, threshold);
        let tp = m.len();
        Self {
            true_positives: tp,
            false_positives: found.len() - tp,
            false_negatives: reference.len() - tp,
            mean_iou: (tp > 0).then(|| m.iter().map(|x| x.2).sum::<f64>() / tp as f64),
        }
    }

    /// Counts added up (mean IoU weighted by matches), for totals per annotator or overall.
    pub fn add(&self, other: &Self) -> Self {
        let (a, b) = (self.true_positives as f64, other.true_positives as f64);
        let mean_iou = match (self.mean_iou, other.mean_iou) {
            (Some(x), Some(y)) => Some((x * a + y * b) / (a + b)),
            (x, None) => x,
            (None, y) => y,
        };
        Self {
            true_positives: self.true_positives + other.true_positives,
            false_positives: self.false_positives + other.false_positives,
            false_negatives: self.false_negatives + other.false_negatives,
            mean_iou,
        }
    }

    /// None when nothing was found.
    pub fn precision(&self) -> Option<f64> {
        let d = self.true_positives + self.false_positives;
        (d > 0).then(|| self.true_positives as f64 / d as f64)
    }

    /// None when there was nothing to find.
    pub fn recall(&self) -> Option<f64> {
        let d = self.true_positives + self.false_negatives;
        (d > 0).then(|| self.true_positives as f64 / d as f64)
    }

    pub fn f1(&self) -> Option<f64> {
        let d = 2 * self.true_positives + self.false_positives + self.false_negatives;
        (d > 0).then(|| 2.0 * self.true_positives as f64 / d as f64)
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum AlphaError {
    /// Fewer than two values in any unit that has two: nothing to compare.
    #[error("no unit has two or more values: agreement cannot be measured")]
    NotEnoughData,
    /// Every value is the same (no disagreement is possible, so alpha is 0/0).
    #[error("every value is the same: agreement is undefined when nothing varies")]
    NoVariation,
}

/// Krippendorff's alpha: `units[u][c]` is coder c's value for unit u (None: not coded), and
/// `distance` the disagreement of two values (0 for equal). Units with fewer than two values
/// are not pairable and are left out, as the coefficient defines.
pub fn krippendorff_alpha<T>(
    units: &[Vec<Option<T>>],
    distance: impl Fn(&T, &T) -> f64,
) -> Result<f64, AlphaError> {
    let pairable: Vec<Vec<&T>> = units
        .iter()
        .map(|u| u.iter().flatten().collect::<Vec<&T>>())
        .filter(|v| v.len() >= 2)
        .collect();
    let n: usize = pairable.iter().map(Vec::len).sum();
    if n < 2 {
        return Err(AlphaError::NotEnoughData);
    }
    // Observed: within units, each ordered pair weighted by 1 / (m_u - 1).
    let mut observed = 0.0;
    for values in &pairable {
        let m = values.len();
        let mut s = 0.0;
        for i in 0..m {
            for j in 0..m {
                if i != j {
                    s += distance(values[i], values[j]);
                }
            }
        }
        observed += s / (m - 1) as f64;
    }
    observed /= n as f64;
    // Expected: every ordered pair of pairable values, across units.
    let all: Vec<&T> = pairable.iter().flatten().copied().collect();
    let mut expected = 0.0;
    for i in 0..all.len() {
        for j in 0..all.len() {
            if i != j {
                expected += distance(all[i], all[j]);
            }
        }
    }
    expected /= (n * (n - 1)) as f64;
    if expected == 0.0 {
        return Err(AlphaError::NoVariation);
    }
    Ok(1.0 - observed / expected)
}

/// The nominal distance: 0 when equal, 1 otherwise (multiple-choice answers, categories).
pub fn nominal<T: PartialEq>(a: &T, b: &T) -> f64 {
    if a == b { 0.0 } else { 1.0 }
}

/// The interval distance: the squared difference (counts, measurements).
pub fn interval(a: &f64, b: &f64) -> f64 {
    (a - b) * (a - b)
}

/// The box distance: 1 - IoU.
pub fn box_distance(a: &ImageRect, b: &ImageRect) -> f64 {
    1.0 - a.iou(b)
}

/// An answer compared loosely: trimmed, lower case, inner spaces collapsed.
pub fn normalise_answer(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

pub fn exact_match(answer: &str, truths: &[&str]) -> bool {
    let a = normalise_answer(answer);
    truths.iter().any(|t| normalise_answer(t) == a)
}

/// Levenshtein distance in characters.
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// ANLS of one answer: the best 1 - normalised edit distance over the accepted answers,
/// counted as 0 when that distance is 0.5 or more (the DocVQA / ST-VQA rule).
pub fn anls(answer: &str, truths: &[&str]) -> f64 {
    let a = normalise_answer(answer);
    truths
        .iter()
        .map(|t| {
            let t = normalise_answer(t);
            let len = a.chars().count().max(t.chars().count());
            if len == 0 {
                return 1.0;
            }
            let nl = levenshtein(&a, &t) as f64 / len as f64;
            if nl < 0.5 { 1.0 - nl } else { 0.0 }
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(x0: f64, y0: f64, x1: f64, y1: f64) -> ImageRect {
        ImageRect::new(x0, y0, x1, y1)
    }

    #[test]
    fn a_20px_box_shifted_2px_both_ways_has_iou_0_68() {
        let a = r(100.0, 100.0, 120.0, 120.0);
        let b = r(102.0, 102.0, 122.0, 122.0);
        // 18 x 18 = 324 shared of 400 + 400 - 324 = 476.
        assert!((a.iou(&b) - 324.0 / 476.0).abs() < 1e-12);
        assert!((a.iou(&b) - 0.68).abs() < 0.001);
    }

    #[test]
    fn greedy_matching_is_one_to_one_from_the_best_pair() {
        let gold = [r(0.0, 0.0, 10.0, 10.0), r(20.0, 0.0, 30.0, 10.0)];
        // The first found box overlaps both gold boxes; the best pair wins, the other gold box
        // goes to the second found box; the third finds nothing.
        let found = [
            r(1.0, 0.0, 11.0, 10.0),
            r(19.0, 0.0, 29.0, 10.0),
            r(50.0, 50.0, 60.0, 60.0),
        ];
        let m = greedy_matches(&found, &gold, 0.5);
        assert_eq!(
            m.iter().map(|x| (x.0, x.1)).collect::<Vec<_>>(),
            [(0, 0), (1, 1)]
        );
        let s = BoxScores::of(&found, &gold, 0.5);
        assert_eq!(
            (s.true_positives, s.false_positives, s.false_negatives),
            (2, 1, 0)
        );
        assert!((s.precision().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.recall(), Some(1.0));
        assert!((s.f1().unwrap() - 0.8).abs() < 1e-12);
        // 9/11 for both pairs.
        assert!((s.mean_iou.unwrap() - 9.0 / 11.0).abs() < 1e-12);
        // A shifted box below the threshold is a miss and a false alarm at once.
        let s = BoxScores::of(&[r(5.0, 5.0, 15.0, 15.0)], &gold[..1], 0.5);
        assert_eq!(
            (s.true_positives, s.false_positives, s.false_negatives),
            (0, 1, 1)
        );
        assert_eq!(s.mean_iou, None);
        let empty = BoxScores::of(&[], &[], 0.5);
        assert_eq!(
            (empty.precision(), empty.recall(), empty.f1()),
            (None, None, None)
        );
        let total = BoxScores::of(&found, &gold, 0.5).add(&BoxScores::of(
            &[r(5.0, 5.0, 15.0, 15.0)],
            &gold[..1],
            0.5,
        ));
        assert_eq!(total.true_positives, 2);
        assert_eq!(total.false_negatives, 1);
    }

    /// Krippendorff's canonical reliability data: 4 coders, 12 units, missing values. The
    /// reference values come from the PyPI `krippendorff` package (0.9.0):
    /// nominal 0.743421052631579, interval 0.8491071428571428.
    fn canonical() -> Vec<Vec<Option<f64>>> {
        let coders: [[Option<f64>; 12]; 4] = [
            [
                Some(1.),
                Some(2.),
                Some(3.),
                Some(3.),
                Some(2.),
                Some(1.),
                Some(4.),
                Some(1.),
                Some(2.),
                None,
                None,
                None,
            ],
            [
                Some(1.),
                Some(2.),
                Some(3.),
                Some(3.),
                Some(2.),
                Some(2.),
                Some(4.),
                Some(1.),
                Some(2.),
                Some(5.),
                None,
                Some(3.),
            ],
            [
                None,
                Some(3.),
                Some(3.),
                Some(3.),
                Some(2.),
                Some(3.),
                Some(4.),
                Some(2.),
                Some(2.),
                Some(5.),
                Some(1.),
                None,
            ],
            [
                Some(1.),
                Some(2.),
                Some(3.),
                Some(3.),
                Some(2.),
                Some(4.),
                Some(4.),
                Some(1.),
                Some(2.),
                Some(5.),
                Some(1.),
                None,
            ],
        ];
        (0..12)
            .map(|u| coders.iter().map(|c| c[u]).collect())
            .collect()
    }

    #[test]
    fn alpha_matches_the_reference_package_on_the_canonical_data() {
        let units = canonical();
        let nominal_alpha = krippendorff_alpha(&units, nominal).unwrap();
        assert!(
            (nominal_alpha - 0.743421052631579).abs() < 1e-12,
            "{nominal_alpha}"
        );
        let interval_alpha = krippendorff_alpha(&units, interval).unwrap();
        assert!(
            (interval_alpha - 0.8491071428571428).abs() < 1e-12,
            "{interval_alpha}"
        );
        // A small case the package gives as -0.25: coders [1, 2, 1] and [2, 1, 1].
        let small = vec![
            vec![Some(1.0), Some(2.0)],
            vec![Some(2.0), Some(1.0)],
            vec![Some(1.0), Some(1.0)],
        ];
        let a = krippendorff_alpha(&small, nominal).unwrap();
        assert!((a + 0.25).abs() < 1e-12, "{a}");
    }

    #[test]
    fn alpha_without_variation_or_pairs_is_an_error_not_a_number() {
        let same = vec![vec![Some("B"), Some("B")], vec![Some("B"), Some("B")]];
        assert_eq!(
            krippendorff_alpha(&same, nominal),
            Err(AlphaError::NoVariation)
        );
        let lonely = vec![vec![Some("A"), None], vec![None, Some("B")]];
        assert_eq!(
            krippendorff_alpha(&lonely, nominal),
            Err(AlphaError::NotEnoughData)
        );
    }

    #[test]
    fn alpha_for_boxes_uses_one_minus_iou() {
        // Two annotators on three objects: near-identical boxes agree strongly; swapping two
        // objects' boxes makes it negative.
        let a = [
            r(0.0, 0.0, 20.0, 20.0),
            r(100.0, 0.0, 130.0, 30.0),
            r(0.0, 100.0, 40.0, 140.0),
        ];
        let b = [
            r(1.0, 1.0, 21.0, 21.0),
            r(101.0, 0.0, 131.0, 30.0),
            r(0.0, 101.0, 40.0, 141.0),
        ];
        let units: Vec<Vec<Option<ImageRect>>> =
            (0..3).map(|i| vec![Some(a[i]), Some(b[i])]).collect();
        let high = krippendorff_alpha(&units, box_distance).unwrap();
        assert!(high > 0.8, "{high}");
        let swapped: Vec<Vec<Option<ImageRect>>> = vec![
            vec![Some(a[0]), Some(b[1])],
            vec![Some(a[1]), Some(b[0])],
            vec![Some(a[2]), Some(b[2])],
        ];
        assert!(krippendorff_alpha(&swapped, box_distance).unwrap() < high);
    }

    #[test]
    fn exact_match_and_anls() {
        assert!(exact_match("  ML4 ", &["ml4"]));
        assert!(!exact_match("ML 4", &["ML4"]));
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(anls("ML4", &["ML4"]), 1.0);
        // One edit in four characters: 0.75.
        assert!((anls("ML4X", &["ML4"]) - 0.75).abs() < 1e-12);
        // Half or more wrong counts as nothing.
        assert_eq!(anls("AB", &["XY"]), 0.0);
        // The best of several accepted answers.
        assert!((anls("seven", &["7", "seven"]) - 1.0).abs() < 1e-12);
    }
}
