//! Train/val/test splits: by image (an image's items never straddle two parts), stratified by
//! category (each category's images are divided in the same ratios), and seeded, so the same
//! project, ratios and seed always give the same parts.

use std::collections::BTreeMap;

use super::ExchangeError;
use super::select::Item;
use crate::rng::Rng;

/// The parts and their shares, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitSpec {
    pub parts: Vec<(String, f64)>,
    pub seed: u64,
}

impl SplitSpec {
    /// "train=0.8,val=0.1,test=0.1": shares that are positive and add up to 1.
    pub fn parse(text: &str, seed: u64) -> Result<Self, ExchangeError> {
        let bad = |m: String| ExchangeError::Options(format!("split '{text}': {m}"));
        let mut parts: Vec<(String, f64)> = Vec::new();
        for piece in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, share) = piece
                .split_once('=')
                .ok_or_else(|| bad(format!("'{piece}' is not NAME=SHARE")))?;
            let name = name.trim();
            let ok_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok_name {
                return Err(bad(format!("'{name}' is not a usable part name")));
            }
            if parts.iter().any(|(n, _)| n == name) {
                return Err(bad(format!("part '{name}' is named twice")));
            }
            let share: f64 = share
                .trim()
                .parse()
                .map_err(|_| bad(format!("'{share}' is not a number")))?;
            if !(share.is_finite() && share > 0.0) {
                return Err(bad(format!("the share of '{name}' must be above 0")));
            }
            parts.push((name.to_owned(), share));
        }
        if parts.len() < 2 {
            return Err(bad("name at least two parts".into()));
        }
        let sum: f64 = parts.iter().map(|(_, s)| s).sum();
        if (sum - 1.0).abs() > 1e-6 {
            let terms: Vec<String> = parts.iter().map(|(n, s)| format!("{n} {s}")).collect();
            return Err(bad(format!(
                "the shares add up to {sum} ({}), not 1",
                terms.join(" + ")
            )));
        }
        Ok(Self { parts, seed })
    }
}

/// The category an image is stratified by: that of its first question, else "(none)".
fn stratum(item: &Item<'_>) -> String {
    item.questions
        .first()
        .map_or_else(|| "(none)".to_owned(), |q| q.category.clone())
}

/// Deal the items into the parts, keeping the project's order inside each part.
pub fn assign<'a>(items: Vec<Item<'a>>, spec: &SplitSpec) -> Vec<(String, Vec<Item<'a>>)> {
    let mut strata: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        strata.entry(stratum(item)).or_default().push(i);
    }
    let mut part_of = vec![0usize; items.len()];
    for (name, mut members) in strata {
        // Each stratum gets its own stream from the seed, so adding images of one category
        // does not reshuffle the others.
        let mut rng = Rng::new(spec.seed ^ crate::rng::mix(fnv(&name)));
        rng.shuffle(&mut members);
        let n = members.len() as f64;
        let mut cumulative = 0.0;
        let mut start = 0usize;
        for (p, (_, share)) in spec.parts.iter().enumerate() {
            cumulative += share;
            let end = if p + 1 == spec.parts.len() {
                members.len()
            } else {
                ((cumulative * n).round() as usize).min(members.len())
            };
            for &m in &members[start..end.max(start)] {
                part_of[m] = p;
            }
            start = end.max(start);
        }
    }
    let mut out: Vec<(String, Vec<Item<'a>>)> = spec
        .parts
        .iter()
        .map(|(name, _)| (name.clone(), Vec::new()))
        .collect();
    for (item, p) in items.into_iter().zip(part_of) {
        out[p].1.push(item);
    }
    out
}

/// A stable hash of a name (FNV-1a), independent of the platform and the Rust version.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_that_do_not_add_up_are_refused_with_the_numbers() {
        let e = SplitSpec::parse("train=0.8,val=0.1,test=0.05", 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("0.95") && e.contains("train 0.8 + val 0.1 + test 0.05"),
            "{e}"
        );
        assert!(SplitSpec::parse("train=1", 1).is_err());
        assert!(SplitSpec::parse("train=0.5,train=0.5", 1).is_err());
        assert!(SplitSpec::parse("train=x,val=0.5", 1).is_err());
        let ok = SplitSpec::parse("train=0.8, val=0.1, test=0.1", 7).unwrap();
        assert_eq!(ok.parts.len(), 3);
    }
}
