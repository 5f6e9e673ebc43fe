//! The open project as the UI sees it: a snapshot re-read after every change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::dataset::{ImageId, ImageRecord, Question, Region};
use crate::store::{Command, ProjectStats, SqliteStore, Store, StoreError};

/// What the UI reads each frame; rebuilt by [`ProjectView::reload`], never during drawing.
pub struct ProjectView {
    pub path: PathBuf,
    store: SqliteStore,
    pub images: Vec<ImageRecord>,
    pub missing: BTreeSet<ImageId>,
    pub stats: ProjectStats,
    /// Boxes and questions per image, for the list.
    pub counts: BTreeMap<ImageId, (usize, usize)>,
    /// The latest difficulty check's rates and flags (`thyme-studio curate run`).
    pub difficulty: crate::curate::ProjectFlags,
}

/// The selected image's annotations.
#[derive(Debug, Clone, Default)]
pub struct ImageDetail {
    pub regions: Vec<Region>,
    pub questions: Vec<Question>,
}

impl ProjectView {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let store = SqliteStore::open(path)?;
        let mut view = Self {
            path: path.to_owned(),
            store,
            images: Vec::new(),
            missing: BTreeSet::new(),
            stats: ProjectStats::default(),
            counts: BTreeMap::new(),
            difficulty: Default::default(),
        };
        view.reload()?;
        Ok(view)
    }

    /// Re-read the lists after an edit or an import.
    pub fn reload(&mut self) -> Result<(), StoreError> {
        self.images = self.store.images()?;
        self.missing = self
            .store
            .missing_files()?
            .into_iter()
            .map(|m| m.image)
            .collect();
        self.stats = self.store.stats()?;
        self.counts = self.store.annotation_counts()?;
        // A check that cannot be read leaves the flags out; the project still opens.
        self.difficulty =
            crate::curate::project_flags(&self.path, &crate::curate::Thresholds::default())
                .unwrap_or_else(|e| {
                    tracing::warn!("difficulty check not read: {e}");
                    Default::default()
                });
        Ok(())
    }

    /// Apply one edit (durable when this returns) and refresh the counts.
    pub fn apply(&mut self, actor: &str, command: Command) -> Result<(), StoreError> {
        self.store.apply(actor, command)?;
        self.refresh_counts()
    }

    /// Apply an edit made while typing in one field (undone with the rest of that visit).
    pub fn apply_in_visit(
        &mut self,
        actor: &str,
        command: Command,
        visit: &str,
    ) -> Result<(), StoreError> {
        self.store.apply_in_visit(actor, command, visit)?;
        self.refresh_counts()
    }

    /// Undo the latest edit; returns it.
    pub fn undo(&mut self, actor: &str) -> Result<Option<Command>, StoreError> {
        let undone = self.store.undo(actor)?;
        self.refresh_counts()?;
        Ok(undone)
    }

    /// Redo the earliest undone edit; returns it.
    pub fn redo(&mut self, actor: &str) -> Result<Option<Command>, StoreError> {
        let redone = self.store.redo(actor)?;
        self.refresh_counts()?;
        Ok(redone)
    }

    pub fn store(&self) -> &SqliteStore {
        &self.store
    }

    /// Re-read counts after an edit (the image list itself only changes by import). No file
    /// system checks: this runs on the UI thread after every edit.
    fn refresh_counts(&mut self) -> Result<(), StoreError> {
        self.images = self.store.images()?;
        self.stats = self.store.row_stats()?;
        self.stats.images_missing = self.missing.len() as u64;
        self.counts = self.store.annotation_counts()?;
        Ok(())
    }

    pub fn detail(&self, id: &ImageId) -> Result<ImageDetail, StoreError> {
        Ok(ImageDetail {
            regions: self.store.regions(id)?,
            questions: self.store.questions(id)?,
        })
    }

    pub fn image(&self, id: &ImageId) -> Option<&ImageRecord> {
        self.images.iter().find(|i| i.id == *id)
    }

    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.path.display().to_string())
    }
}
