//! The Http policy: an OpenAI-compatible chat server (vLLM, SGLang) serving a Thyme-RL model.
//! The open assistant turn is sent as the last message and continued
//! (`continue_final_message: true`, `add_generation_prompt: false`), images go as data URLs
//! where `<image>` stands, stop strings and sampling come from the request, and the answer is
//! read as server-sent events while it streams. `http://` and `https://` (rustls, with Mozilla's
//! root certificates bundled, or the certificates of `THYME_STUDIO_CA_FILE` for a server with
//! its own CA). The API key comes from `THYME_STUDIO_API_KEY` / `OPENAI_API_KEY`, or from the
//! file `THYME_STUDIO_API_KEY_FILE` names, which must be readable by its owner only.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::policy::{Policy, PolicyError, Request, Segment};

/// Where the server is and what it serves.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// e.g. `http://127.0.0.1:8000/v1`
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub timeout: Duration,
    /// PEM certificates to trust instead of the bundled roots (a server with its own CA).
    pub ca_file: Option<std::path::PathBuf>,
    /// Why the key or CA settings cannot be used (said before any request is made).
    pub problem: Option<String>,
}

impl HttpSettings {
    /// The model name asked for when none is given.
    pub const DEFAULT_MODEL: &'static str = "Thyme-RL";

    /// A server at `base_url` serving `model`; the API key from `THYME_STUDIO_API_KEY` (or
    /// `OPENAI_API_KEY`), ten minutes per request. The one constructor every caller uses.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        let from_env = std::env::var("THYME_STUDIO_API_KEY")
            .or_else(|_| std::env::var("OPENAI_API_KEY"))
            .ok();
        let (api_key, problem) = match (from_env, std::env::var_os("THYME_STUDIO_API_KEY_FILE")) {
            (Some(key), _) => (Some(key), None),
            (None, Some(file)) => match read_key_file(Path::new(&file)) {
                Ok(key) => (Some(key), None),
                Err(e) => (None, Some(e)),
            },
            (None, None) => (None, None),
        };
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key,
            timeout: Duration::from_secs(600),
            ca_file: std::env::var_os("THYME_STUDIO_CA_FILE").map(Into::into),
            problem,
        }
    }

    /// From `THYME_STUDIO_BASE_URL` and `THYME_STUDIO_MODEL`, when the base URL is set.
    pub fn from_env() -> Option<Self> {
        let base_url = std::env::var("THYME_STUDIO_BASE_URL").ok()?;
        let model =
            std::env::var("THYME_STUDIO_MODEL").unwrap_or_else(|_| Self::DEFAULT_MODEL.into());
        Some(Self::new(base_url, model))
    }

    /// What the user named (a URL, a model) over what the environment says; `None` when
    /// neither names a server.
    pub fn resolve(base_url: Option<&str>, model: Option<&str>) -> Option<Self> {
        let env = Self::from_env();
        let mut s = match (base_url, env) {
            (Some(url), env) => Self::new(
                url,
                env.map_or_else(|| Self::DEFAULT_MODEL.to_owned(), |e| e.model),
            ),
            (None, env) => env?,
        };
        if let Some(m) = model.map(str::trim).filter(|m| !m.is_empty()) {
            s.model = m.to_owned();
        }
        Some(s)
    }
}

/// The API key in a file readable by its owner only (a key readable by others is refused).
pub fn read_key_file(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "{}: the API key file can be read by others (mode {:o}); `chmod 600` it",
                path.display(),
                mode & 0o777
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(format!("{}: the API key file is empty", path.display()));
    }
    Ok(key.to_owned())
}

/// The root certificates of a PEM file.
fn roots_from(path: &Path) -> Result<ureq::tls::RootCerts, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        if let ureq::tls::PemItem::Certificate(c) =
            item.map_err(|e| format!("{}: {e}", path.display()))?
        {
            certs.push(c);
        }
    }
    if certs.is_empty() {
        return Err(format!("{}: no certificate in this file", path.display()));
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

pub struct Http {
    settings: HttpSettings,
    /// The certificates to trust (from `ca_file`), or why they cannot be read.
    roots: Option<Result<ureq::tls::RootCerts, String>>,
}

impl Http {
    pub fn new(settings: HttpSettings) -> Self {
        let roots = settings.ca_file.as_deref().map(roots_from);
        Self { settings, roots }
    }
}

/// `data:image/...;base64,...` of an image file.
pub fn data_url(path: &Path) -> Result<String, PolicyError> {
    let bytes =
        std::fs::read(path).map_err(|e| PolicyError::Failed(format!("{}: {e}", path.display())))?;
    let mime = match crate::imagery::format::ImageFormat::sniff(&bytes) {
        Some(crate::imagery::format::ImageFormat::Png) => "image/png",
        Some(crate::imagery::format::ImageFormat::WebP) => "image/webp",
        Some(crate::imagery::format::ImageFormat::Tiff) => "image/tiff",
        _ => "image/jpeg",
    };
    Ok(format!(
        "data:{mime};base64,{}",
        crate::base64::encode(&bytes)
    ))
}

/// Message content with an image part wherever `<image>` stands, taking `images` in order.
fn parts(text: &str, images: &mut impl Iterator<Item = String>) -> Vec<Value> {
    let mut out = Vec::new();
    let mut pieces = text.split("<image>").peekable();
    while let Some(piece) = pieces.next() {
        if !piece.is_empty() {
            out.push(json!({"type": "text", "text": piece}));
        }
        if pieces.peek().is_some()
            && let Some(url) = images.next()
        {
            out.push(json!({"type": "image_url", "image_url": {"url": url}}));
        }
    }
    out
}

/// The request body for a chat server.
pub fn body(model: &str, request: &Request) -> Result<Value, PolicyError> {
    let mut urls = request
        .images
        .iter()
        .map(|p| data_url(p))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let mut messages = Vec::new();
    if !request.system.is_empty() {
        messages.push(json!({"role": "system", "content": request.system}));
    }
    messages.push(json!({"role": "user", "content": parts(&request.user, &mut urls)}));
    let continuing = !request.assistant.is_empty();
    if continuing {
        messages
            .push(json!({"role": "assistant", "content": parts(&request.assistant, &mut urls)}));
    }
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stop": request.stop,
        "include_stop_str_in_output": true,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "continue_final_message": continuing,
        "add_generation_prompt": !continuing,
    });
    // vLLM and SGLang take a per-request seed, so a seeded attempt can be drawn again.
    if let Some(seed) = request.seed {
        body["seed"] = json!(seed);
    }
    Ok(body)
}

impl Policy for Http {
    fn name(&self) -> String {
        format!("http ({})", self.settings.model)
    }

    fn generate(
        &mut self,
        request: &Request,
        on_text: &mut dyn FnMut(&str),
        cancel: &AtomicBool,
    ) -> Result<Segment, PolicyError> {
        let started = Instant::now();
        let url = format!(
            "{}/chat/completions",
            self.settings.base_url.trim_end_matches('/')
        );
        let body = body(&self.settings.model, request)?;
        if let Some(p) = &self.settings.problem {
            return Err(PolicyError::Failed(p.clone()));
        }
        let mut config = ureq::post(&url)
            .config()
            .timeout_global(Some(self.settings.timeout))
            .http_status_as_error(false);
        match &self.roots {
            Some(Ok(roots)) => {
                config = config.tls_config(
                    ureq::tls::TlsConfig::builder()
                        .root_certs(roots.clone())
                        .build(),
                );
            }
            Some(Err(e)) => return Err(PolicyError::Failed(e.clone())),
            None => {}
        }
        let mut call = config
            .build()
            .header("Content-Type", "application/json")
            .header("Accept", "text/event-stream");
        if let Some(key) = &self.settings.api_key {
            call = call.header("Authorization", format!("Bearer {key}"));
        }
        let response = call
            .send(body.to_string())
            .map_err(|e| PolicyError::Failed(format!("{url}: {e}")))?;
        let status = response.status().as_u16();
        let mut reader = BufReader::new(response.into_body().into_reader());
        if status != 200 {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut reader, &mut text);
            return Err(PolicyError::Failed(format!(
                "{url}: HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            )));
        }
        let Streamed {
            mut text,
            tokens,
            finish,
        } = read_stream(&mut reader, on_text, cancel).map_err(|e| match e {
            PolicyError::Failed(m) => PolicyError::Failed(format!("{url}: {m}")),
            other => other,
        })?;
        // Servers differ on whether the stop string is included: make sure it is, and name it.
        let stop = match request.stop.iter().find(|s| text.ends_with(s.as_str())) {
            Some(s) => Some(s.clone()),
            None => match finish.as_deref() {
                Some("stop") => {
                    // Stopped at a stop string the server left out: find which from the text.
                    let guess = if text.contains("<code>") && !text.contains("</code>") {
                        request.stop.iter().find(|s| *s == "</code>")
                    } else if text.contains("<answer>") {
                        request.stop.iter().find(|s| *s == "</answer>")
                    } else {
                        None
                    };
                    if let Some(s) = guess {
                        text.push_str(s);
                    }
                    guess.cloned()
                }
                _ => None,
            },
        };
        Ok(Segment {
            text,
            stop,
            tokens: Some(tokens),
            ms: started.elapsed().as_secs_f64() * 1000.0,
            origin: super::policy::Origin::Written,
        })
    }
}

/// What a streamed answer held.
#[derive(Debug, Default, PartialEq)]
pub struct Streamed {
    pub text: String,
    /// Chunks with text.
    pub tokens: u32,
    /// The last `finish_reason` given.
    pub finish: Option<String>,
}

/// Read a chat server's server-sent events (`data: {chunk}` lines, `data: [DONE]` at the
/// end) from `reader`; each piece of text goes to `on_text` as it arrives. A line that is not
/// a chunk is an error naming it; other lines (comments, events, blank) are skipped.
pub fn read_stream(
    reader: &mut dyn BufRead,
    on_text: &mut dyn FnMut(&str),
    cancel: &AtomicBool,
) -> Result<Streamed, PolicyError> {
    let mut out = Streamed::default();
    let mut line = String::new();
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(PolicyError::Cancelled);
        }
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| PolicyError::Failed(format!("the stream broke: {e}")))?;
        if n == 0 {
            break;
        }
        let Some(data) = line.trim_end().strip_prefix("data:") else {
            continue;
        };
        let data = data.trim();
        if data == "[DONE]" {
            break;
        }
        let chunk: Value = serde_json::from_str(data).map_err(|e| {
            let shown: String = data.chars().take(200).collect();
            PolicyError::Failed(format!("not a stream chunk ({e}): {shown}"))
        })?;
        let choice = &chunk["choices"][0];
        let piece = choice["delta"]["content"]
            .as_str()
            .or_else(|| choice["text"].as_str())
            .unwrap_or("");
        if !piece.is_empty() {
            out.tokens += 1;
            out.text.push_str(piece);
            on_text(piece);
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            out.finish = Some(f.to_owned());
        }
    }
    Ok(out)
}
