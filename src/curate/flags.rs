//! Per-item rates of the difficulty check and the flags they raise.
//!
//! For each question: the pass rate with tools and without, pass@k, their gap, and where the
//! with-tool runs looked. The flags, with the reasoning behind each default:
//!
//! - **too easy**: solved without tools in at least 75 % of tries. In GRPO-style training a
//!   group whose rollouts mostly agree carries little advantage signal, and an item the model
//!   answers from the whole picture teaches nothing about zooming.
//! - **needs tools**: the with-tool rate is at least 0.5 above the no-tool rate (and the item is
//!   not too easy): the items a tool-using policy is trained for.
//! - **suspect**: never solved with tools. Often the answer or the box is wrong; a person should
//!   look before it goes into training.
//! - **flaky**: solved with tools in between a third and two thirds of tries: a coin flip,
//!   whose reward is mostly noise (with k = 4, exactly 2 of 4).
//!
//! No flag is raised from fewer than `min_tries` graded tries in the arm it reads.

use std::collections::BTreeMap;

use serde::Serialize;

use super::attempts::{Arm, Attempt, Verdict};
use crate::dataset::QuestionId;

/// Where the flags fall.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    pub too_easy: f64,
    pub needs_tools_gap: f64,
    pub flaky_low: f64,
    pub flaky_high: f64,
    pub min_tries: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            too_easy: 0.75,
            needs_tools_gap: 0.5,
            flaky_low: 1.0 / 3.0,
            flaky_high: 2.0 / 3.0,
            min_tries: 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flag {
    TooEasy,
    NeedsTools,
    Suspect,
    Flaky,
}

impl Flag {
    pub const ALL: [Flag; 4] = [Flag::TooEasy, Flag::NeedsTools, Flag::Suspect, Flag::Flaky];

    pub fn name(self) -> &'static str {
        match self {
            Flag::TooEasy => "too-easy",
            Flag::NeedsTools => "needs-tools",
            Flag::Suspect => "suspect",
            Flag::Flaky => "flaky",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// One arm's tries at one item.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ArmRate {
    /// Graded tries: correct, wrong or no answer (a try with no answer counts as not correct).
    pub tries: usize,
    pub correct: usize,
    pub no_answer: usize,
    /// Tries the server never answered (not in `tries`).
    pub failed: usize,
}

impl ArmRate {
    pub fn rate(&self) -> Option<f64> {
        (self.tries > 0).then(|| self.correct as f64 / self.tries as f64)
    }

    /// pass@k, the chance that at least one of k tries drawn from these is correct (the
    /// unbiased estimate 1 - C(n-c, k) / C(n, k)); None with fewer than k tries.
    pub fn pass_at(&self, k: usize) -> Option<f64> {
        let (n, c) = (self.tries, self.correct);
        if k == 0 || n < k {
            return None;
        }
        if n - c < k {
            return Some(1.0);
        }
        // C(n-c, k) / C(n, k) = prod_{i=0}^{k-1} (n-c-i) / (n-i)
        let none = (0..k).fold(1.0, |p, i| p * (n - c - i) as f64 / (n - i) as f64);
        Some(1.0 - none)
    }

    fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Correct => {
                self.tries += 1;
                self.correct += 1;
            }
            Verdict::Wrong => self.tries += 1,
            Verdict::NoAnswer => {
                self.tries += 1;
                self.no_answer += 1;
            }
            Verdict::Failed => self.failed += 1,
        }
    }
}

/// One item's numbers and flags.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemRates {
    pub question: QuestionId,
    pub tools: ArmRate,
    pub no_tools: ArmRate,
    pub tools_pass_at_k: Option<f64>,
    pub no_tools_pass_at_k: Option<f64>,
    /// With-tool rate minus no-tool rate.
    pub gap: Option<f64>,
    pub flags: Vec<Flag>,
    /// With-tool runs by where they looked ("looked at the target", ...).
    pub looks: BTreeMap<String, usize>,
}

/// The rates and flags of every question with attempts, in question order.
pub fn rates(attempts: &[Attempt], k: usize, t: &Thresholds) -> Vec<ItemRates> {
    let mut by_item: BTreeMap<QuestionId, (ArmRate, ArmRate, BTreeMap<String, usize>)> =
        BTreeMap::new();
    for a in attempts {
        let e = by_item.entry(a.question).or_default();
        match a.arm {
            Arm::Tools => {
                e.0.add(a.verdict);
                if let Some(look) = &a.look
                    && a.verdict != Verdict::Failed
                {
                    *e.2.entry(look.clone()).or_insert(0) += 1;
                }
            }
            Arm::NoTools => e.1.add(a.verdict),
        }
    }
    by_item
        .into_iter()
        .map(|(question, (tools, no_tools, looks))| {
            let gap = tools.rate().zip(no_tools.rate()).map(|(w, wo)| w - wo);
            ItemRates {
                question,
                tools,
                no_tools,
                tools_pass_at_k: tools.pass_at(k),
                no_tools_pass_at_k: no_tools.pass_at(k),
                gap,
                flags: flags(&tools, &no_tools, gap, t),
                looks,
            }
        })
        .collect()
}

fn flags(tools: &ArmRate, no_tools: &ArmRate, gap: Option<f64>, t: &Thresholds) -> Vec<Flag> {
    let enough = |a: &ArmRate| a.tries >= t.min_tries.max(1);
    let mut out = Vec::new();
    let too_easy = enough(no_tools) && no_tools.rate().is_some_and(|r| r >= t.too_easy);
    if too_easy {
        out.push(Flag::TooEasy);
    }
    if !too_easy
        && enough(tools)
        && enough(no_tools)
        && gap.is_some_and(|g| g >= t.needs_tools_gap - 1e-9)
    {
        out.push(Flag::NeedsTools);
    }
    if enough(tools) && tools.correct == 0 {
        out.push(Flag::Suspect);
    }
    if enough(tools)
        && tools
            .rate()
            .is_some_and(|r| r >= t.flaky_low - 1e-9 && r <= t.flaky_high + 1e-9)
    {
        out.push(Flag::Flaky);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm(correct: usize, tries: usize) -> ArmRate {
        ArmRate {
            tries,
            correct,
            ..ArmRate::default()
        }
    }

    #[test]
    fn pass_at_k_is_the_unbiased_estimate() {
        assert_eq!(arm(0, 4).pass_at(4), Some(0.0));
        assert_eq!(arm(1, 4).pass_at(4), Some(1.0));
        // n = 4, c = 1, k = 2: 1 - C(3,2)/C(4,2) = 1 - 3/6.
        assert!((arm(1, 4).pass_at(2).unwrap() - 0.5).abs() < 1e-12);
        // n = 5, c = 2, k = 1 is the plain rate.
        assert!((arm(2, 5).pass_at(1).unwrap() - 0.4).abs() < 1e-12);
        assert_eq!(arm(1, 3).pass_at(4), None);
    }

    #[test]
    fn each_flag_falls_where_its_threshold_says() {
        let t = Thresholds::default();
        let f = |w: ArmRate, wo: ArmRate| {
            let gap = w.rate().zip(wo.rate()).map(|(a, b)| a - b);
            flags(&w, &wo, gap, &t)
        };
        assert_eq!(f(arm(4, 4), arm(3, 4)), vec![Flag::TooEasy]);
        assert_eq!(f(arm(4, 4), arm(2, 4)), vec![Flag::NeedsTools]);
        assert_eq!(f(arm(3, 4), arm(2, 4)), Vec::<Flag>::new());
        assert_eq!(f(arm(4, 4), arm(0, 4)), vec![Flag::NeedsTools]);
        assert_eq!(f(arm(3, 4), arm(1, 4)), vec![Flag::NeedsTools]);
        assert_eq!(f(arm(0, 4), arm(0, 4)), vec![Flag::Suspect]);
        assert_eq!(f(arm(2, 4), arm(0, 4)), vec![Flag::NeedsTools, Flag::Flaky]);
        assert_eq!(f(arm(1, 4), arm(0, 4)), Vec::<Flag>::new());
        // Too few tries: no flag at all.
        assert_eq!(f(arm(0, 1), arm(1, 1)), Vec::<Flag>::new());
    }
}
