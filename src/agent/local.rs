//! The Local policy: the on-device model (candle) writes the model's text. The prompt is the
//! model's own chat template with the system and user turns, then the open assistant turn with
//! each sandbox image as a vision block; the model keeps its KV cache between segments, so a
//! continued turn prefills only what the sandbox added.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::policy::{Policy, PolicyError, Request, Segment};
use crate::model::ModelError;
use crate::model::generate::{self, LocalModel};
use crate::model::sampling::SamplingSettings;
use crate::model::tokenizer::assistant_text;

pub struct Local {
    model: Arc<Mutex<LocalModel>>,
    label: String,
    /// Everything but the temperature, which each request sets.
    pub sampling: SamplingSettings,
}

impl Local {
    /// A policy over a loaded model; the model's cache is cleared (a new run).
    pub fn new(model: Arc<Mutex<LocalModel>>, label: impl Into<String>) -> Self {
        if let Ok(mut m) = model.lock() {
            m.reset();
        }
        Self::sharing_cache(model, label)
    }
}

impl Local {
    /// A policy over a loaded model that keeps what the model has cached: repeated attempts
    /// at one question share the prompt and the image, which are then not prefilled again.
    pub fn sharing_cache(model: Arc<Mutex<LocalModel>>, label: impl Into<String>) -> Self {
        Self {
            model,
            label: label.into(),
            sampling: SamplingSettings {
                top_p: 0.95,
                top_k: 50,
                repetition_penalty: 1.05,
                ..SamplingSettings::default()
            },
        }
    }
}

impl Policy for Local {
    fn name(&self) -> String {
        format!("local ({})", self.label)
    }

    fn generate(
        &mut self,
        request: &Request,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
    ) -> Result<Segment, PolicyError> {
        let started = Instant::now();
        let mut m = self.model.lock().map_err(|_| {
            PolicyError::Failed("the model is unusable after an earlier crash".into())
        })?;
        let failed = |e: ModelError| match e {
            ModelError::Cancelled => PolicyError::Cancelled,
            other => PolicyError::Failed(other.to_string()),
        };
        let mut prompt = m
            .tokenizer
            .render(&request.system, &request.user)
            .map_err(failed)?;
        prompt.push_str(&assistant_text(&request.assistant));
        let sampling = SamplingSettings {
            temperature: request.temperature,
            seed: request.seed.unwrap_or(self.sampling.seed),
            ..self.sampling.clone()
        };
        let g = m
            .generate(
                &generate::Request {
                    prompt: &prompt,
                    images: &request.images,
                    stops: &request.stop,
                    max_tokens: request.max_tokens as usize,
                    sampling,
                },
                on_text,
                cancel,
            )
            .map_err(failed)?;
        tracing::debug!(
            reused = g.reused,
            prefilled = g.prefilled,
            tokens = g.tokens,
            prefill_ms = g.prefill_ms,
            decode_ms = g.decode_ms,
            "local segment"
        );
        let stop = g.stop.filter(|s| request.stop.contains(s));
        Ok(Segment {
            text: g.text,
            stop,
            tokens: Some(g.tokens as u32),
            ms: started.elapsed().as_secs_f64() * 1000.0,
            origin: super::policy::Origin::Written,
        })
    }
}
