//! Where the app keeps its own files: the demo project, caches and settings.
//!
//! `THYME_STUDIO_HOME`, when set, puts all of them under one folder (tests and portable
//! installs use it); otherwise the platform's data, cache and config folders are used.

use std::path::PathBuf;

/// The app's folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDirs {
    pub data: PathBuf,
    pub cache: PathBuf,
    pub config: PathBuf,
}

impl AppDirs {
    /// The folders for this user (or under `THYME_STUDIO_HOME`).
    pub fn for_user() -> Self {
        if let Some(home) = std::env::var_os("THYME_STUDIO_HOME").filter(|h| !h.is_empty()) {
            return Self::under(PathBuf::from(home));
        }
        match directories::ProjectDirs::from("org", "thyme-studio", "thyme-studio") {
            Some(d) => Self {
                data: d.data_dir().to_owned(),
                cache: d.cache_dir().to_owned(),
                config: d.config_dir().to_owned(),
            },
            None => Self::under(std::env::temp_dir().join("thyme-studio")),
        }
    }

    /// All folders under one root.
    pub fn under(root: PathBuf) -> Self {
        Self {
            data: root.join("data"),
            cache: root.join("cache"),
            config: root.join("config"),
        }
    }

    /// The folder of the built-in demo project.
    pub fn demo_dir(&self) -> PathBuf {
        self.data.join("demo")
    }

    /// The sandbox's private Python environment and worker.
    pub fn sandbox_runtime(&self) -> PathBuf {
        self.data.join("sandbox")
    }

    /// Where sandbox runs keep their steps' files.
    pub fn sandbox_runs(&self) -> PathBuf {
        self.data.join("runs")
    }

    /// The difficulty check's runs of one question, written for Inspect to open.
    pub fn check_runs_dir(&self) -> PathBuf {
        self.data.join("check-runs")
    }

    pub fn settings_file(&self) -> PathBuf {
        self.config.join("settings.json")
    }

    pub fn thumbnail_dir(&self) -> PathBuf {
        self.cache.join("thumbnails")
    }
}
