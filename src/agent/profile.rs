//! Prompt profiles: the system prompt, the user-turn template with `{question}`,
//! `{image_path}`, `{width}`, `{height}`, the multiple-choice instruction and the stop
//! strings. The default is our own wording (assets/profiles/default.toml); a user can load any
//! TOML file of the same shape, or take the system prompt from a plain text file as it is,
//! byte for byte (a Thyme checkout's `scripts/prompt.txt`, with which Thyme-RL was trained).
//! Every export row and trace records the SHA-256 of the system prompt it was made with.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::geometry::ImageSize;

const DEFAULT_TOML: &str = include_str!("../../assets/profiles/default.toml");

#[derive(Debug, Error)]
pub enum ProfileError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a prompt profile: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {why}; a system prompt file must be non-empty UTF-8 text")]
    SystemFile { path: PathBuf, why: String },
    #[error(
        "{path}: the user template lacks {missing} (it must hold {{question}}, {{image_path}}, {{width}} and {{height}})"
    )]
    Template {
        path: PathBuf,
        missing: &'static str,
    },
}

/// What the model is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptProfile {
    pub name: String,
    pub system: String,
    /// The user turn; starts with `<image>` where the image goes.
    pub user: String,
    #[serde(default = "default_choice_instruction")]
    pub choice_instruction: String,
    #[serde(default = "default_stop")]
    pub stop: Vec<String>,
}

fn default_choice_instruction() -> String {
    "Please select the correct answer from the options above.".into()
}

fn default_stop() -> Vec<String> {
    vec!["</code>".into(), "</answer>".into()]
}

impl Default for PromptProfile {
    fn default() -> Self {
        // The built-in file is checked by a test; should it ever fail to parse, the profile
        // falls back to the same contract in one line rather than stopping the app.
        Self::parse(DEFAULT_TOML, Path::new("assets/profiles/default.toml")).unwrap_or_else(|e| {
            tracing::error!("built-in prompt profile unreadable: {e}");
            Self {
                name: "thyme-minimal".into(),
                system: "Answer the question about the image; you may run Python in <code>```python ...```</code> and read its output in <sandbox_output>.".into(),
                user: "<image>\n{question}\n\n### User Image Path:** \"{image_path}\"\n### User Image Size:** \"{width}x{height}\"\n".into(),
                choice_instruction: default_choice_instruction(),
                stop: default_stop(),
            }
        })
    }
}

impl PromptProfile {
    /// This profile with its system prompt taken from a text file exactly as it is (no
    /// trimming, no newline added). A missing, empty or non-UTF-8 file is an error naming it.
    pub fn with_system_file(mut self, path: &Path) -> Result<Self, ProfileError> {
        let fail = |why: String| ProfileError::SystemFile {
            path: path.to_owned(),
            why,
        };
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(fail("the file is empty".into()));
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            fail(format!(
                "not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        self.system = text;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.name = format!("{}+system:{stem}", self.name);
        Ok(self)
    }

    /// The SHA-256 of the system prompt's bytes, as 64 hex digits.
    pub fn system_sha256(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(self.system.as_bytes()))
    }

    /// Read a profile file.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    fn parse(text: &str, path: &Path) -> Result<Self, ProfileError> {
        let mut p: PromptProfile = toml::from_str(text).map_err(|e| ProfileError::Parse {
            path: path.to_owned(),
            message: e.message().to_owned(),
        })?;
        p.system = p.system.trim().to_owned();
        for key in ["{question}", "{image_path}", "{width}", "{height}"] {
            if !p.user.contains(key) {
                return Err(ProfileError::Template {
                    path: path.to_owned(),
                    missing: key,
                });
            }
        }
        Ok(p)
    }

    /// The user turn for a question about an image (original pixel size).
    pub fn user_turn(&self, question: &str, image_path: &str, size: ImageSize) -> String {
        // One pass, so a question that itself contains "{width}" is left alone.
        let mut out = String::with_capacity(self.user.len() + question.len() + image_path.len());
        let mut rest = self.user.as_str();
        while let Some(at) = rest.find('{') {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            let (value, len) = if tail.starts_with("{question}") {
                (question.to_owned(), "{question}".len())
            } else if tail.starts_with("{image_path}") {
                (image_path.to_owned(), "{image_path}".len())
            } else if tail.starts_with("{width}") {
                (size.width.to_string(), "{width}".len())
            } else if tail.starts_with("{height}") {
                (size.height.to_string(), "{height}".len())
            } else {
                ("{".to_owned(), 1)
            };
            out.push_str(&value);
            rest = &tail[len..];
        }
        out.push_str(rest);
        out
    }

    /// A multiple-choice question in the MME-RealWorld style: "Question: ...", then
    /// "Options:" and "A. ..." lines, then the instruction.
    pub fn choice_question(&self, question: &str, options: &[String]) -> String {
        let mut s = format!("Question: {question}\nOptions:\n");
        for (i, o) in options.iter().enumerate() {
            s.push_str(&format!("{}. {o}\n", option_letter(i)));
        }
        s.push_str(&self.choice_instruction);
        s
    }
}

/// "A", "B", ... for option `i` (0-based).
pub fn option_letter(i: usize) -> char {
    (b'A' + (i % 26) as u8) as char
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_profile_parses_and_keeps_the_contract() {
        let p = PromptProfile::parse(DEFAULT_TOML, Path::new("default.toml")).unwrap();
        assert_eq!(p.name, "thyme-default");
        assert!(p.system.contains("<code>") && p.system.contains("<sandbox_output>"));
        assert!(p.system.contains("/mnt/data/temp_processed_images/"));
        assert_eq!(p.stop, ["</code>", "</answer>"]);
        let turn = p.user_turn("How many cars?", "/d/a.jpg", ImageSize::new(4000, 3000));
        assert!(turn.starts_with("<image>\nHow many cars?\n\n"), "{turn}");
        assert!(turn.contains("### User Image Path:** \"/d/a.jpg\"\n"));
        assert!(turn.contains("### User Image Size:** \"4000x3000\"\n"));
        assert!(turn.contains("<answer>"));
    }

    #[test]
    fn placeholders_in_the_question_are_not_expanded() {
        let p = PromptProfile::default();
        let turn = p.user_turn("What is {width}?", "x.png", ImageSize::new(10, 20));
        assert!(turn.contains("What is {width}?"));
        assert!(turn.contains("\"10x20\""));
    }

    #[test]
    fn choices_are_lettered() {
        let p = PromptProfile::default();
        let q = p.choice_question("Which colour?", &["red".into(), "blue".into()]);
        assert_eq!(
            q,
            "Question: Which colour?\nOptions:\nA. red\nB. blue\nPlease select the correct answer from the options above."
        );
    }

    #[test]
    fn a_system_prompt_file_is_taken_byte_for_byte_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("prompt.txt");
        let text = "  You look closely.\n\n* Code goes in <code>.\n    indented line";
        std::fs::write(&f, text).unwrap();
        let p = PromptProfile::default().with_system_file(&f).unwrap();
        assert_eq!(p.system, text);
        assert_eq!(
            p.system_sha256(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text.as_bytes()))
        );
        assert!(p.name.ends_with("+system:prompt"), "{}", p.name);
    }

    #[test]
    fn a_missing_empty_or_binary_prompt_file_is_a_one_line_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.txt");
        let empty = dir.path().join("empty.txt");
        let binary = dir.path().join("bin.txt");
        std::fs::write(&empty, " \n").unwrap();
        std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x41]).unwrap();
        for (f, says) in [
            (&missing, "No such file"),
            (&empty, "empty"),
            (&binary, "UTF-8"),
        ] {
            let e = PromptProfile::default()
                .with_system_file(f)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&f.display().to_string()) && e.contains(says),
                "{e}"
            );
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn a_bad_profile_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.toml");
        std::fs::write(
            &f,
            "name = 'x'\nsystem = 's'\nuser = '<image> {question}'\n",
        )
        .unwrap();
        let e = PromptProfile::load(&f).unwrap_err().to_string();
        assert!(e.contains("p.toml") && e.contains("{image_path}"), "{e}");
        std::fs::write(&f, "name = ").unwrap();
        assert!(matches!(
            PromptProfile::load(&f),
            Err(ProfileError::Parse { .. })
        ));
    }
}
