//! The open project as one session: the project snapshot, the selected image and its boxes
//! and questions, the categories, who is editing, and how many edits are saved. Every edit the
//! app makes reaches the store through [`ProjectSession::edit`] (or its typing and undo
//! variants), which re-reads what the UI shows once the edit is durable.

use std::path::Path;

use thiserror::Error;

use super::project::{ImageDetail, ProjectView};
use crate::dataset::{Category, ImageId, ImageRecord};
use crate::store::{Command, Store as _, StoreError};

/// Why an edit did not show.
#[derive(Debug, Error)]
pub enum EditError {
    #[error("no project is open")]
    NoProject,
    #[error("the edit was not saved: {0}")]
    NotSaved(StoreError),
    #[error("the edit was saved but could not be read back: {0}")]
    NotReadBack(StoreError),
}

/// How an edit reaches the store.
pub enum Edit {
    /// One command, journaled (and undone) on its own.
    Apply(Command),
    /// A save made while typing in one field: undone with the rest of that visit.
    Typed {
        command: Command,
        visit: String,
    },
    Undo,
    Redo,
}

/// The open project, the selected image and its detail.
pub struct ProjectSession {
    pub project: Option<ProjectView>,
    pub selected: Option<ImageId>,
    /// The selected image's boxes and questions, as stored.
    pub detail: ImageDetail,
    pub categories: Vec<Category>,
    /// The name edits are journaled under (the team member for a linked file).
    pub actor: String,
    /// Edits saved in this session (each one durable when counted).
    pub saved_edits: u64,
}

impl Default for ProjectSession {
    fn default() -> Self {
        Self {
            project: None,
            selected: None,
            detail: ImageDetail::default(),
            categories: Vec::new(),
            actor: crate::store::default_actor(),
            saved_edits: 0,
        }
    }
}

impl ProjectSession {
    /// Open a project file: nothing is selected yet.
    pub fn open(&mut self, path: &Path, actor: String) -> Result<(), StoreError> {
        let view = ProjectView::open(path)?;
        self.categories = view.store().categories()?;
        self.project = Some(view);
        self.selected = None;
        self.detail = ImageDetail::default();
        self.actor = actor;
        Ok(())
    }

    /// The selected image's record.
    pub fn image(&self) -> Option<&ImageRecord> {
        let id = self.selected.as_ref()?;
        self.project.as_ref()?.image(id)
    }

    /// Select an image and read its detail.
    pub fn select(&mut self, id: ImageId) -> Result<(), StoreError> {
        let Some(project) = &self.project else {
            return Ok(());
        };
        self.detail = project.detail(&id)?;
        self.selected = Some(id);
        Ok(())
    }

    /// Re-read the selected image's boxes and questions.
    pub fn reload_detail(&mut self) -> Result<(), StoreError> {
        if let (Some(project), Some(id)) = (&self.project, &self.selected) {
            self.detail = project.detail(id)?;
        }
        Ok(())
    }

    /// Re-read everything (after an import or others' changes arrived by a sync).
    pub fn reload(&mut self) -> Result<(), StoreError> {
        let Some(project) = &mut self.project else {
            return Ok(());
        };
        project.reload()?;
        self.categories = project.store().categories()?;
        self.reload_detail()
    }

    /// Make one edit durable, then re-read the selected image's detail.
    pub fn edit(&mut self, edit: Edit) -> Result<(), EditError> {
        let project = self.project.as_mut().ok_or(EditError::NoProject)?;
        let actor = self.actor.as_str();
        let drop_stale = crate::annotate::review::drop_stale_verdicts;
        let result = match edit {
            Edit::Apply(command) => project.apply(actor, drop_stale(command)),
            Edit::Typed { command, visit } => {
                project.apply_in_visit(actor, drop_stale(command), &visit)
            }
            Edit::Undo => project.undo(actor).map(|_| ()),
            Edit::Redo => project.redo(actor).map(|_| ()),
        };
        result.map_err(EditError::NotSaved)?;
        self.saved_edits += 1;
        self.reload_detail().map_err(EditError::NotReadBack)
    }

    /// The command that deletes a box (and takes it off its questions).
    pub fn delete_region_command(
        &self,
        id: crate::dataset::RegionId,
    ) -> Result<Command, EditError> {
        let project = self.project.as_ref().ok_or(EditError::NoProject)?;
        project
            .store()
            .delete_region_command(id)
            .map_err(EditError::NotSaved)
    }
}
