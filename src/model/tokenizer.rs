//! The model's tokenizer (tokenizer.json through the `tokenizers` crate, pure Rust) and its
//! own chat template (Jinja, rendered with minijinja and Python-compatible string methods):
//! the prompt is what the model's authors wrote, not an imitation of it.

use minijinja::{Environment, Value as Jinja, context};
use serde_json::{Value, json};

use super::folder::ModelFolder;
use super::{ModelError, Result};

/// Vision markers of Qwen's chat format.
pub const VISION_START: &str = "<|vision_start|>";
pub const IMAGE_PAD: &str = "<|image_pad|>";
pub const VISION_END: &str = "<|vision_end|>";

pub struct ChatTokenizer {
    tokenizer: tokenizers::Tokenizer,
    env: Environment<'static>,
    bos: Option<String>,
    eos: Option<String>,
    /// Tokens that end the model's turn.
    pub stop_ids: Vec<u32>,
}

impl ChatTokenizer {
    pub fn load(folder: &ModelFolder) -> Result<Self> {
        let path = folder.tokenizer.as_ref().ok_or_else(|| {
            ModelError::Tokenizer(format!("{}: no tokenizer.json", folder.dir.display()))
        })?;
        let tokenizer = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", path.display())))?;
        let template = folder.chat_template.clone().ok_or_else(|| {
            ModelError::Template(format!(
                "{}: no chat template (chat_template.json, chat_template.jinja or tokenizer_config.json)",
                folder.dir.display()
            ))
        })?;
        Self::new(
            tokenizer,
            template,
            &folder.tokenizer_config,
            &folder.generation,
        )
    }

    pub fn new(
        tokenizer: tokenizers::Tokenizer,
        template: String,
        tokenizer_config: &Value,
        generation: &Value,
    ) -> Result<Self> {
        let mut env = Environment::new();
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_template_owned("chat", template)
            .map_err(|e| ModelError::Template(e.to_string()))?;
        let name = |key: &str| -> Option<String> {
            match tokenizer_config.get(key) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Object(o)) => {
                    o.get("content").and_then(Value::as_str).map(str::to_owned)
                }
                _ => None,
            }
        };
        let (bos, eos) = (name("bos_token"), name("eos_token"));
        let mut stop_ids: Vec<u32> = ["<|im_end|>", "<|endoftext|>"]
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        if let Some(id) = eos.as_deref().and_then(|e| tokenizer.token_to_id(e)) {
            stop_ids.push(id);
        }
        match generation.get("eos_token_id") {
            Some(Value::Number(n)) => stop_ids.extend(n.as_u64().map(|n| n as u32)),
            Some(Value::Array(a)) => {
                stop_ids.extend(a.iter().filter_map(Value::as_u64).map(|n| n as u32))
            }
            _ => {}
        }
        stop_ids.sort_unstable();
        stop_ids.dedup();
        Ok(Self {
            tokenizer,
            env,
            bos,
            eos,
            stop_ids,
        })
    }

    /// The prompt for a system message and a user turn (`<image>` where each image goes),
    /// with the assistant turn opened.
    pub fn render(&self, system: &str, user: &str) -> Result<String> {
        let mut content = Vec::new();
        let mut pieces = user.split("<image>").peekable();
        while let Some(piece) = pieces.next() {
            if !piece.is_empty() {
                content.push(json!({"type": "text", "text": piece}));
            }
            if pieces.peek().is_some() {
                content.push(json!({"type": "image"}));
            }
        }
        let mut messages = Vec::new();
        if !system.is_empty() {
            messages.push(json!({"role": "system", "content": system}));
        }
        messages.push(json!({"role": "user", "content": content}));
        let t = self
            .env
            .get_template("chat")
            .map_err(|e| ModelError::Template(e.to_string()))?;
        t.render(context! {
            messages => Jinja::from(minijinja::value::Serde(&messages)),
            add_generation_prompt => true,
            bos_token => self.bos.clone().unwrap_or_default(),
            eos_token => self.eos.clone().unwrap_or_default(),
        })
        .map_err(|e| ModelError::Template(format!("{e:#}")))
    }

    /// Token ids of text (special tokens written in it are recognised; nothing is added).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    /// Text of token ids, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }
}

/// The assistant turn's text as the model reads it: each `<image>` (an image the sandbox
/// returned) becomes a vision block.
pub fn assistant_text(turn: &str) -> String {
    turn.replace("<image>", &format!("{VISION_START}{IMAGE_PAD}{VISION_END}"))
}
