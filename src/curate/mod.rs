//! Curation of RL data: the difficulty check of QA items (tries with tools and without, stored
//! in the project), the per-item rates and flags (too easy, needs tools, suspect, flaky), and
//! the question sets those flags pick for an export. The statistics over runs live in
//! `trace::stats`; this module owns what is tied to the project's items. No egui here.

pub mod attempts;
pub mod check;
pub mod flags;

pub use attempts::{Arm, Attempt, AttemptStore, CurateError, Verdict};
pub use check::{CheckItem, CheckOutcome, CheckProgress, CheckSettings, Checker, items};
pub use flags::{ArmRate, Flag, ItemRates, Thresholds, rates};

use std::collections::BTreeSet;

use crate::dataset::QuestionId;

/// The questions of the project's latest check (or of `settings_key`) that carry one of the
/// `wanted` flags. None when the project was never checked.
pub fn flagged(
    store: &AttemptStore,
    settings_key: Option<&str>,
    wanted: &BTreeSet<Flag>,
    thresholds: &Thresholds,
) -> Result<Option<BTreeSet<QuestionId>>, CurateError> {
    let key = match settings_key {
        Some(k) => k.to_owned(),
        None => match store.latest_key()? {
            Some(k) => k,
            None => return Ok(None),
        },
    };
    let attempts = store.list(Some(&key))?;
    let items = rates(&attempts, 1, thresholds);
    Ok(Some(
        items
            .into_iter()
            .filter(|r| r.flags.iter().any(|f| wanted.contains(f)))
            .map(|r| r.question)
            .collect(),
    ))
}

/// The latest check's rates of every question and the flags of every image (those of its
/// questions), read without writing anything; empty when the project was never checked.
pub fn project_flags(
    project: &std::path::Path,
    thresholds: &Thresholds,
) -> Result<ProjectFlags, CurateError> {
    let Some(store) = AttemptStore::open_existing(project)? else {
        return Ok(ProjectFlags::default());
    };
    let Some(key) = store.latest_key()? else {
        return Ok(ProjectFlags::default());
    };
    let items = rates(&store.list(Some(&key))?, 1, thresholds);
    let images = store.question_images()?;
    let mut out = ProjectFlags::default();
    for item in items {
        if let Some(image) = images.get(&item.question) {
            out.images
                .entry(image.clone())
                .or_default()
                .extend(item.flags.iter().copied());
        }
        out.questions.insert(item.question, item);
    }
    Ok(out)
}

/// What the app shows of the latest check.
#[derive(Debug, Clone, Default)]
pub struct ProjectFlags {
    pub questions: std::collections::BTreeMap<QuestionId, ItemRates>,
    pub images: std::collections::BTreeMap<crate::dataset::ImageId, BTreeSet<Flag>>,
}

/// Write the runs of the latest check (or of `settings_key`) as a trace JSONL at `out`: every
/// try, or those of the questions whose id starts with `question` and of one `arm`. Returns
/// how many were written. A prefix that names several questions is refused.
pub fn write_runs(
    store: &AttemptStore,
    settings_key: Option<&str>,
    question: Option<&str>,
    arm: Option<Arm>,
    out: &std::path::Path,
) -> Result<usize, CurateError> {
    let key = match settings_key {
        Some(k) => k.to_owned(),
        None => store
            .latest_key()?
            .ok_or_else(|| CurateError::Setup("no difficulty check yet".into()))?,
    };
    let listed = store.list(Some(&key))?;
    let matches = |id: &QuestionId| question.is_none_or(|q| id.to_string().starts_with(q));
    let named: BTreeSet<QuestionId> = listed
        .iter()
        .map(|a| a.question)
        .filter(|id| matches(id))
        .collect();
    if let Some(q) = question
        && named.len() > 1
    {
        return Err(CurateError::Setup(format!(
            "{q} names {} questions; give more of the id",
            named.len()
        )));
    }
    let mut traces = Vec::new();
    for a in listed
        .iter()
        .filter(|a| matches(&a.question) && arm.is_none_or(|w| w == a.arm))
    {
        // A try the server never answered may have no run at all.
        if let Some(text) = store.trace(&key, a.question, a.arm, a.seed)?
            && let Ok(t) = serde_json::from_str::<crate::trace::Trace>(&text)
        {
            traces.push(t);
        }
    }
    if traces.is_empty() {
        return Err(CurateError::Setup("no run matches".into()));
    }
    crate::trace::io::write_jsonl(&traces, out).map_err(|e| CurateError::Setup(e.to_string()))?;
    Ok(traces.len())
}
