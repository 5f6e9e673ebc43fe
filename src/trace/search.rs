//! Searching runs: full text over the question, the model's reasoning, code, sandbox output
//! and answers, combined with filters by flag, tool and outcome. A JSONL of traces is read in
//! large chunks whose lines are checked in parallel, a raw (case-insensitive) byte test first,
//! so only lines that can match are parsed; hits are handed over chunk by chunk in file order,
//! so the first ones show while the rest of a large file is still being read. Text inside
//! embedded images never counts as a match.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use rayon::prelude::*;
use serde::Serialize;

use super::io::RunRow;
use super::readers::TraceError;
use super::{Outcome, Step, Trace};

/// What to look for; every part that is set must hold.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Text to find (case-insensitive); empty: any.
    pub text: String,
    pub flag: Option<String>,
    pub tool: Option<String>,
    pub outcome: Option<Outcome>,
    /// A reward column and the range its value must lie in (both ends included).
    pub reward: Option<RewardRange>,
}

/// `NAME=LO..HI`: a reward column of RL logs and a range of its values.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardRange {
    pub name: String,
    pub lo: f64,
    pub hi: f64,
}

impl RewardRange {
    /// From `NAME=LO..HI` (either end may be left out: `CSTORM=0.5..`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not NAME=LO..HI (e.g. VQAORM=1..1 or CSTORM=0.5..)");
        let (name, range) = s.split_once('=').ok_or_else(bad)?;
        let (lo, hi) = range.split_once("..").ok_or_else(bad)?;
        let end = |t: &str, open: f64| -> Result<f64, String> {
            if t.trim().is_empty() {
                Ok(open)
            } else {
                t.trim().parse::<f64>().map_err(|_| bad())
            }
        };
        let r = Self {
            name: name.trim().to_owned(),
            lo: end(lo, f64::NEG_INFINITY)?,
            hi: end(hi, f64::INFINITY)?,
        };
        if r.name.is_empty() || r.lo > r.hi {
            return Err(bad());
        }
        Ok(r)
    }

    fn admits(&self, rewards: &std::collections::BTreeMap<String, f64>) -> bool {
        rewards
            .get(&self.name)
            .is_some_and(|v| *v >= self.lo && *v <= self.hi)
    }
}

/// Where a run matched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// The run's index in the rows searched.
    pub row: usize,
    /// The step the text was found in (none: the question).
    pub step: Option<usize>,
    /// question, reasoning, code, output, error or answer.
    pub field: &'static str,
    /// The matching line, shortened around the match.
    pub excerpt: String,
}

impl Query {
    /// Whether the row's list fields (outcome, flags, tools) pass the filters.
    pub fn admits(&self, row: &RunRow) -> bool {
        self.outcome.is_none_or(|o| row.outcome == o)
            && self
                .flag
                .as_ref()
                .is_none_or(|f| row.summary.flags.iter().any(|x| x == f))
            && self
                .tool
                .as_ref()
                .is_none_or(|t| row.summary.tools.iter().any(|x| x == t))
            && self
                .reward
                .as_ref()
                .is_none_or(|r| r.admits(&row.summary.rewards))
    }
}

/// The first place in a run where `needle` (lowercase) occurs, outside embedded images.
pub fn find_in_trace(t: &Trace, needle: &str) -> Option<(Option<usize>, &'static str, String)> {
    let hit = |text: &str| excerpt(text, needle);
    if let Some(e) = hit(&t.run.question) {
        return Some((None, "question", e));
    }
    for (i, s) in t.steps.iter().enumerate() {
        let fields: Vec<(&'static str, &str)> = match s {
            Step::Generate { text, .. } => vec![("reasoning", text)],
            Step::Execute {
                raw_code,
                executed_code,
                stdout,
                stderr,
                error,
                text_result,
                ..
            } => vec![
                ("code", raw_code),
                ("code", executed_code),
                ("output", stdout),
                ("output", text_result.as_deref().unwrap_or("")),
                ("error", stderr),
                ("error", error.as_deref().unwrap_or("")),
            ],
            Step::Answer { text, .. } => vec![("answer", text)],
        };
        for (field, text) in fields {
            if let Some(e) = hit(text) {
                return Some((Some(i), field, e));
            }
        }
    }
    None
}

/// The line of `text` holding `needle` (lowercase), cut to about 120 characters around it.
fn excerpt(text: &str, needle: &str) -> Option<String> {
    if needle.is_empty() {
        return None;
    }
    let line = text
        .lines()
        .find(|l| l.to_lowercase().contains(needle))?
        .trim();
    let chars: Vec<char> = line.chars().collect();
    let lower: String = line.to_lowercase();
    let at = lower
        .find(needle)
        .map(|b| lower[..b].chars().count())
        .unwrap_or(0);
    let start = at.saturating_sub(50);
    let end = (at + needle.chars().count() + 70).min(chars.len());
    let mut out: String = chars[start..end].iter().collect();
    if start > 0 {
        out.insert(0, '…');
    }
    if end < chars.len() {
        out.push('…');
    }
    Some(out)
}

/// Whether `hay` contains `needle` (lowercase), ignoring ASCII case; a needle with other
/// characters is compared on the lowercased text.
pub fn contains_ignore_case(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    if n.is_empty() {
        return true;
    }
    if !needle.is_ascii() {
        return String::from_utf8_lossy(hay).to_lowercase().contains(needle);
    }
    let (lo, up) = (n[0], n[0].to_ascii_uppercase());
    memchr::memchr2_iter(lo, up, hay)
        .any(|i| hay.len() - i >= n.len() && hay[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Search runs already in memory.
pub fn search_traces(traces: &[Trace], rows: &[RunRow], q: &Query) -> Vec<Hit> {
    let needle = q.text.trim().to_lowercase();
    traces
        .iter()
        .zip(rows)
        .enumerate()
        .filter(|(_, (_, r))| q.admits(r))
        .filter_map(|(i, (t, _))| hit_of(i, t, &needle))
        .collect()
}

fn hit_of(row: usize, t: &Trace, needle: &str) -> Option<Hit> {
    if needle.is_empty() {
        return Some(Hit {
            row,
            step: None,
            field: "question",
            excerpt: t.run.question.chars().take(120).collect(),
        });
    }
    let (step, field, excerpt) = find_in_trace(t, needle)?;
    Some(Hit {
        row,
        step,
        field,
        excerpt,
    })
}

/// How much a search read and found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SearchStats {
    pub bytes: u64,
    /// Lines that passed the raw test and were parsed.
    pub parsed: usize,
    pub hits: usize,
}

/// Search a JSONL of traces whose rows were indexed (`rows` in file order); `on_hits` gets
/// each chunk's hits in file order.
pub fn search_jsonl(
    path: &Path,
    rows: &[RunRow],
    q: &Query,
    cancel: &AtomicBool,
    on_hits: &mut dyn FnMut(Vec<Hit>),
) -> Result<SearchStats, TraceError> {
    let needle = q.text.trim().to_lowercase();
    let mut stats = SearchStats::default();
    super::io::for_each_block(path, cancel, &mut |base, block| {
        let end = base + block.len() as u64;
        // The rows whose lines lie in this block.
        let first = rows.partition_point(|r| r.offset < base);
        let last = rows.partition_point(|r| r.offset < end);
        let found: Vec<(Option<Hit>, bool)> = (first..last)
            .into_par_iter()
            .map(|i| {
                let r = &rows[i];
                if !q.admits(r) {
                    return (None, false);
                }
                let s = (r.offset - base) as usize;
                let line = &block[s..(s + r.len).min(block.len())];
                if !contains_ignore_case(line, &needle) {
                    return (None, false);
                }
                match serde_json::from_slice::<Trace>(line) {
                    Ok(t) => (hit_of(i, &t, &needle), true),
                    Err(_) => (None, true),
                }
            })
            .collect();
        stats.parsed += found.iter().filter(|(_, p)| *p).count();
        let hits: Vec<Hit> = found.into_iter().filter_map(|(h, _)| h).collect();
        stats.hits += hits.len();
        stats.bytes += block.len() as u64;
        if !hits.is_empty() {
            on_hits(hits);
        }
    })?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reward_ranges_parse_and_admit() {
        let r = RewardRange::parse("CSTORM=0.5..").unwrap();
        let m = |v: f64| [("CSTORM".to_owned(), v)].into_iter().collect();
        assert!(r.admits(&m(0.5)) && r.admits(&m(3.0)) && !r.admits(&m(0.4)));
        let exact = RewardRange::parse("VQAORM=1..1").unwrap();
        assert!(exact.admits(&[("VQAORM".to_owned(), 1.0)].into_iter().collect()));
        assert!(!exact.admits(&m(1.0)), "another column does not count");
        assert!(RewardRange::parse("X=2..1").is_err());
        assert!(RewardRange::parse("X").is_err());
        assert!(RewardRange::parse("X=a..").is_err());
    }

    #[test]
    fn case_is_ignored_and_the_excerpt_shows_the_match() {
        assert!(contains_ignore_case(b"The SIGN says", "sign"));
        assert!(!contains_ignore_case(b"The SIG says", "sign"));
        assert!(contains_ignore_case("Straße".as_bytes(), "straße"));
        let e = excerpt("first\nwe crop((1, 2)) here\nlast", "crop").unwrap();
        assert_eq!(e, "we crop((1, 2)) here");
        let long = format!("{}needle{}", "a".repeat(200), "b".repeat(200));
        let e = excerpt(&long, "needle").unwrap();
        assert!(e.starts_with('…') && e.ends_with('…') && e.contains("needle"));
    }
}
