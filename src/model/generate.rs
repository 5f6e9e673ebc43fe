//! Generation for the agent: a prompt (text with one `<|image_pad|>` per image, and the
//! images) is run against a KV cache that keeps what was already read. The cache is cut back
//! to the longest prefix the new prompt shares with it (never inside an image block), so after
//! the sandbox returns an image only the new text and image tokens are prefilled; the rest is
//! decoded token by token with sampling, streamed as text, and stopped at a stop string found
//! in the decoded text, an end-of-turn token, the token limit, or cancellation.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::Tensor;

use super::qwen2_5_vl::{KvCache, Qwen25Vl, preprocess, rope, smart_resize};
use super::sampling::{Sampler, SamplingSettings, find_stop};
use super::tokenizer::{ChatTokenizer, IMAGE_PAD};
use super::{ModelError, Result};
use crate::imagery::PixelBudget;

/// Longest run of new tokens prefilled in one forward pass (image blocks are never split).
const PREFILL_CHUNK: usize = 1024;

/// An image the cached tokens hold.
#[derive(Debug, Clone, PartialEq)]
struct CachedImage {
    path: PathBuf,
    start: usize,
    tokens: usize,
}

/// Where an image's tokens are: (first token, tokens, grid [t, h, w] in patches).
pub type ImageSpan = (usize, usize, [usize; 3]);

/// What one call did.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub text: String,
    /// The stop string it ended at (kept at the end of `text`), "eos", or "length".
    pub stop: Option<String>,
    pub tokens: usize,
    /// Prompt tokens read from the cache / run now.
    pub reused: usize,
    pub prefilled: usize,
    pub prefill_ms: f64,
    pub decode_ms: f64,
}

pub struct Request<'a> {
    pub prompt: &'a str,
    pub images: &'a [PathBuf],
    pub stops: &'a [String],
    pub max_tokens: usize,
    pub sampling: SamplingSettings,
}

pub struct LocalModel {
    pub model: Qwen25Vl,
    pub tokenizer: ChatTokenizer,
    tokens: Vec<u32>,
    images: Vec<CachedImage>,
    cache: KvCache,
}

impl LocalModel {
    pub fn new(model: Qwen25Vl, tokenizer: ChatTokenizer) -> Self {
        Self {
            model,
            tokenizer,
            tokens: Vec::new(),
            images: Vec::new(),
            cache: KvCache::default(),
        }
    }

    /// Forget the cached prompt (a new run).
    pub fn reset(&mut self) {
        self.tokens.clear();
        self.images.clear();
        self.cache.clear();
    }

    /// Tokens the cache holds.
    pub fn cached_tokens(&self) -> usize {
        self.tokens.len()
    }

    pub fn cache_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// The grid ([t, h, w] in patches) an image file becomes, from its header.
    fn grid_of(&self, path: &Path) -> Result<[usize; 3]> {
        let probe = crate::imagery::probe_file(path, PixelBudget::DEFAULT)
            .map_err(|e| ModelError::Image(e.to_string()))?;
        let p = &self.model.processor;
        let (h, w) = smart_resize(
            probe.size.height,
            probe.size.width,
            p.factor(),
            p.min_pixels,
            p.max_pixels,
        )?;
        Ok([1, h as usize / p.patch_size, w as usize / p.patch_size])
    }

    /// The prompt's token ids with each image pad expanded, and each image's (start, tokens, grid).
    pub fn tokenize(&self, prompt: &str, images: &[PathBuf]) -> Result<(Vec<u32>, Vec<ImageSpan>)> {
        let pad = self.model.config.image_token_id;
        let raw = self.tokenizer.encode(prompt)?;
        let pads = raw.iter().filter(|&&t| t == pad).count();
        if pads != images.len() {
            return Err(ModelError::Input(format!(
                "the prompt has {pads} {IMAGE_PAD} but {} image(s) were given",
                images.len()
            )));
        }
        let merge = self.model.config.vision.spatial_merge_size;
        let mut ids = Vec::with_capacity(raw.len());
        let mut spans = Vec::with_capacity(images.len());
        let mut next_image = images.iter();
        for t in raw {
            if t == pad {
                let path = next_image
                    .next()
                    .ok_or_else(|| ModelError::Input("more image pads than images".into()))?;
                let grid = self.grid_of(path)?;
                let n = grid[0] * grid[1] * grid[2] / (merge * merge);
                spans.push((ids.len(), n, grid));
                ids.extend(std::iter::repeat_n(pad, n));
            } else {
                ids.push(t);
            }
        }
        Ok((ids, spans))
    }

    /// Continue the prompt: reuse the cache for the shared prefix, prefill the rest, decode.
    pub fn generate(
        &mut self,
        req: &Request,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
    ) -> Result<Generated> {
        let (ids, spans) = self.tokenize(req.prompt, req.images)?;
        if ids.is_empty() {
            return Err(ModelError::Input("the prompt is empty".into()));
        }
        let merge = self.model.config.vision.spatial_merge_size;
        let grids: Vec<[usize; 3]> = spans.iter().map(|s| s.2).collect();
        let (positions, next) =
            rope::text_positions(&ids, self.model.config.image_token_id, &grids, merge)?;

        // The shared prefix: equal tokens, equal images, never inside an image block, and at
        // least the last prompt token left to run (its logits start the answer).
        let mut keep = ids
            .iter()
            .zip(&self.tokens)
            .take_while(|(a, b)| a == b)
            .count()
            .min(ids.len() - 1);
        for (k, &(start, n, _)) in spans.iter().enumerate() {
            let same = self
                .images
                .get(k)
                .is_some_and(|c| c.start == start && c.tokens == n && c.path == req.images[k]);
            if start < keep && (!same || start + n > keep) {
                keep = start;
            }
        }
        self.cache.truncate(keep)?;
        self.tokens.truncate(keep);
        self.images.retain(|c| c.start + c.tokens <= keep);

        let started = Instant::now();
        let mut at = keep;
        let mut last_hidden = None;
        while at < ids.len() {
            if cancel.load(Ordering::Relaxed) {
                return Err(ModelError::Cancelled);
            }
            let mut end = (at + PREFILL_CHUNK).min(ids.len());
            // Never end a chunk inside an image block.
            for &(start, n, _) in &spans {
                if start < end && end < start + n {
                    end = if start > at { start } else { start + n };
                }
            }
            let mut chunk_images = Vec::new();
            for (k, &(start, n, _)) in spans.iter().enumerate() {
                if start >= at && start < end {
                    let path = &req.images[k];
                    let img = crate::imagery::decode::decode_file(path, PixelBudget::DEFAULT)
                        .map_err(|e| ModelError::Image(e.to_string()))?
                        .into_rgb8();
                    let patches = preprocess(&img, &self.model.processor)?;
                    let emb = self.model.encode_image(&patches)?;
                    chunk_images.push((start - at, emb));
                    self.images.push(CachedImage {
                        path: path.clone(),
                        start,
                        tokens: n,
                    });
                }
            }
            let hidden = self.model.forward(
                &ids[at..end],
                &positions[at..end],
                &chunk_images,
                &mut self.cache,
            )?;
            self.tokens.extend_from_slice(&ids[at..end]);
            last_hidden = Some(hidden.narrow(0, end - at - 1, 1)?);
            at = end;
        }
        let prefill_ms = started.elapsed().as_secs_f64() * 1000.0;
        let hidden = last_hidden
            .ok_or_else(|| ModelError::Input("nothing to run after the cached prefix".into()))?;
        let mut logits = self.logits_row(&hidden)?;

        let started = Instant::now();
        let mut sampler = Sampler::new(req.sampling.clone());
        let mut generated: Vec<u32> = Vec::new();
        let mut text = String::new();
        let mut emitted = 0;
        let stop;
        let stop_ids = self.tokenizer.stop_ids.clone();
        loop {
            let token = sampler.sample(&mut logits, &self.tokens);
            if stop_ids.contains(&token) {
                stop = Some("eos".to_owned());
                break;
            }
            generated.push(token);
            let decoded = self.tokenizer.decode(&generated)?;
            // Feed the token to the cache now, so the cache and the token list stay equal.
            let pos = next + generated.len() as i64 - 1;
            let h = self
                .model
                .forward(&[token], &[[pos; 3]], &[], &mut self.cache)?;
            self.tokens.push(token);
            if !decoded.ends_with('\u{FFFD}') {
                if let Some((end, s)) = find_stop(&decoded, req.stops, emitted) {
                    let cut = &decoded[..end];
                    if cut.len() > emitted {
                        on_text(&cut[emitted..]);
                    }
                    text = cut.to_owned();
                    stop = Some(s.to_owned());
                    break;
                }
                if decoded.len() > emitted && decoded.is_char_boundary(emitted) {
                    on_text(&decoded[emitted..]);
                    emitted = decoded.len();
                }
                text = decoded;
            }
            if generated.len() >= req.max_tokens {
                stop = Some("length".to_owned());
                break;
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(ModelError::Cancelled);
            }
            logits = self.logits_row(&h)?;
        }
        Ok(Generated {
            text,
            stop,
            tokens: generated.len(),
            reused: keep,
            prefilled: ids.len() - keep,
            prefill_ms,
            decode_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    fn logits_row(&self, hidden: &Tensor) -> Result<Vec<f32>> {
        Ok(self.model.logits(hidden)?.squeeze(0)?.to_vec1::<f32>()?)
    }
}
