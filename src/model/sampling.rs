//! Choosing the next token: repetition penalty (as in transformers: positive logits of seen
//! tokens divided, negative ones multiplied), then greedy at temperature 0, else temperature,
//! top-k and top-p (nucleus) sampling from a seeded generator, so a run can be replayed. And
//! the text side: stop strings found in the decoded text, never in token ids.

use crate::rng::Rng;

#[derive(Debug, Clone, PartialEq)]
pub struct SamplingSettings {
    /// 0: greedy.
    pub temperature: f32,
    /// 1.0: off.
    pub top_p: f32,
    /// 0: off.
    pub top_k: usize,
    /// 1.0: off.
    pub repetition_penalty: f32,
    pub seed: u64,
}

impl Default for SamplingSettings {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            repetition_penalty: 1.0,
            seed: 299_792_458,
        }
    }
}

pub struct Sampler {
    pub settings: SamplingSettings,
    rng: Rng,
}

impl Sampler {
    pub fn new(settings: SamplingSettings) -> Self {
        let rng = Rng::new(settings.seed);
        Self { settings, rng }
    }

    /// The next token from `logits` (changed in place by the penalty), given the tokens so far.
    pub fn sample(&mut self, logits: &mut [f32], seen: &[u32]) -> u32 {
        let s = &self.settings;
        if s.repetition_penalty != 1.0 {
            let mut ids: Vec<u32> = seen.to_vec();
            ids.sort_unstable();
            ids.dedup();
            for id in ids {
                if let Some(l) = logits.get_mut(id as usize) {
                    *l = if *l > 0.0 {
                        *l / s.repetition_penalty
                    } else {
                        *l * s.repetition_penalty
                    };
                }
            }
        }
        if s.temperature <= 1e-5 {
            return argmax(logits);
        }
        let mut order: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(i, l)| (i as u32, *l / s.temperature))
            .collect();
        if order.is_empty() {
            return 0;
        }
        order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if s.top_k > 0 {
            order.truncate(s.top_k);
        }
        let max = order[0].1;
        let mut probs: Vec<f64> = order
            .iter()
            .map(|(_, l)| f64::from(l - max).exp())
            .collect();
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if s.top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = probs.len();
            for (i, p) in probs.iter().enumerate() {
                acc += p;
                if acc >= f64::from(s.top_p) {
                    keep = i + 1;
                    break;
                }
            }
            probs.truncate(keep);
            let t: f64 = probs.iter().sum();
            probs.iter_mut().for_each(|p| *p /= t);
        }
        let mut u = self.rng.unit();
        for (i, p) in probs.iter().enumerate() {
            if u < *p {
                return order[i].0;
            }
            u -= p;
        }
        order[probs.len() - 1].0
    }
}

pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, l) in logits.iter().enumerate() {
        if *l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Where the first of `stops` ends in `text` (searching from `from`, minus the longest stop,
/// so a stop split over two pieces is found), with the stop that matched.
pub fn find_stop<'a>(text: &str, stops: &'a [String], from: usize) -> Option<(usize, &'a str)> {
    let longest = stops.iter().map(String::len).max().unwrap_or(0);
    let mut start = from.saturating_sub(longest);
    while start > 0 && !text.is_char_boundary(start) {
        start -= 1;
    }
    stops
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| {
            text[start..]
                .find(s.as_str())
                .map(|at| (start + at + s.len(), s.as_str()))
        })
        .min_by_key(|(end, _)| *end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_and_penalty() {
        let mut s = Sampler::new(SamplingSettings::default());
        assert_eq!(s.sample(&mut [0.1, 2.0, 1.9], &[]), 1);
        let mut s = Sampler::new(SamplingSettings {
            repetition_penalty: 1.2,
            ..SamplingSettings::default()
        });
        // 2.0 / 1.2 < 1.9: the seen token loses.
        assert_eq!(s.sample(&mut [0.1, 2.0, 1.9], &[1, 1]), 2);
    }

    #[test]
    fn sampling_is_seeded_and_respects_top_k_and_top_p() {
        let settings = SamplingSettings {
            temperature: 1.0,
            top_k: 2,
            seed: 7,
            ..SamplingSettings::default()
        };
        let logits = [0.0f32, 3.0, 2.9, 2.8, -1.0];
        let draw = |settings: &SamplingSettings| -> Vec<u32> {
            let mut s = Sampler::new(settings.clone());
            (0..200)
                .map(|_| s.sample(&mut logits.clone(), &[]))
                .collect()
        };
        let a = draw(&settings);
        assert_eq!(a, draw(&settings), "the same seed gives the same tokens");
        assert!(a.iter().all(|t| *t == 1 || *t == 2));
        assert!(a.contains(&1) && a.contains(&2));
        let nucleus = SamplingSettings {
            top_k: 0,
            top_p: 0.3,
            ..settings
        };
        assert!(draw(&nucleus).iter().all(|t| *t == 1));
    }

    #[test]
    fn stops_are_found_in_text_even_when_split() {
        let stops = vec!["</code>".to_owned(), "</answer>".to_owned()];
        let text = "<code>x = 1\n</co";
        assert_eq!(find_stop(text, &stops, 0), None);
        let text = format!("{text}de> more</answer>");
        let (end, s) = find_stop(&text, &stops, 15).unwrap();
        assert_eq!(s, "</code>");
        assert_eq!(&text[..end], "<code>x = 1\n</code>");
        assert_eq!(
            find_stop("é</answer>", &stops, 1).map(|x| x.1),
            Some("</answer>")
        );
    }
}
