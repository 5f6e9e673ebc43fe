//! User settings that outlive a session: recently opened projects, changed shortcuts and the
//! chat server, model folder and SAM weights last used, the tile cache's budget.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How many recent projects the File menu lists.
pub const MAX_RECENT: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub recent: Vec<PathBuf>,
    /// Shortcuts the user changed: action name -> key text (see `keymap`).
    #[serde(default)]
    pub keys: std::collections::BTreeMap<String, String>,
    /// The chat server the Run workspace used last (the API key is never saved).
    #[serde(default)]
    pub chat_server: Option<ChatServer>,
    /// The on-device model folder chosen last.
    #[serde(default)]
    pub model_dir: Option<PathBuf>,
    /// The folder of Segment Anything's weights for click-to-box.
    #[serde(default)]
    pub sam_weights: Option<PathBuf>,
    /// The getting-started guide was closed once (it opens by itself only before that).
    #[serde(default)]
    pub welcome_seen: bool,
    /// A system prompt file (a Thyme checkout's scripts/prompt.txt) used byte for byte by
    /// runs and exports instead of the built-in profile's system prompt.
    #[serde(default)]
    pub system_prompt_file: Option<PathBuf>,
    /// The tile cache's byte budget (`None`: a tenth of the free space, at most 20 GiB).
    #[serde(default)]
    pub tile_cache_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatServer {
    pub base_url: String,
    pub model: String,
}

impl Settings {
    /// Load settings; a missing or unreadable file gives the defaults (and a log line).
    pub fn load(path: &Path) -> Self {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), "settings ignored: {e}");
                Self::default()
            }),
            Err(_) => Self::default(),
        }
    }

    /// Save atomically (write a temporary file, then rename).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }

    /// Put a project at the top of the recent list.
    pub fn remember(&mut self, project: &Path) {
        let project = std::path::absolute(project).unwrap_or_else(|_| project.to_owned());
        self.recent.retain(|p| *p != project);
        self.recent.insert(0, project);
        self.recent.truncate(MAX_RECENT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_projects_are_unique_newest_first_and_bounded() {
        let mut s = Settings::default();
        for i in 0..15 {
            s.remember(Path::new(&format!("/p/{i}.thyme")));
        }
        s.remember(Path::new("/p/3.thyme"));
        assert_eq!(s.recent.len(), MAX_RECENT);
        assert_eq!(s.recent[0], PathBuf::from("/p/3.thyme"));
        assert_eq!(
            s.recent.iter().filter(|p| p.ends_with("3.thyme")).count(),
            1
        );
    }

    #[test]
    fn settings_round_trip_and_bad_files_give_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/settings.json");
        let mut s = Settings::default();
        s.remember(Path::new("/x.thyme"));
        s.save(&path).unwrap();
        assert_eq!(Settings::load(&path), s);
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(Settings::load(&path), Settings::default());
    }
}
