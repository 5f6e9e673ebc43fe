//! Every edit the workspace makes: the box editor's, the question form's, typed text saved
//! while typing, verdicts; each goes through the session to the store and is shown once it is
//! durable. A team item that is locked (submitted, accepted) refuses edits with its reason.

use super::{AnnotateCx, AnnotateWorkspace};
use crate::app::command::AppCommand;
use crate::app::editor::EditorAction;
use crate::app::session::Edit;
use crate::dataset::RegionId;
use crate::store::Command;
use crate::ui;

impl AnnotateWorkspace {
    /// Carry out what the box editor asked for.
    pub(super) fn run_edit(&mut self, action: EditorAction, cx: &mut AnnotateCx<'_>) {
        if !matches!(action, EditorAction::None | EditorAction::EditQuestionOf(_))
            && let Some(why) = self.locked(cx)
        {
            cx.out
                .push(AppCommand::Notify(format!("the edit was not made: {why}")));
            return;
        }
        if let EditorAction::Apply(command) = &action
            && let Command::UpdateRegion { after, .. } = command.as_ref()
            && let Some(visit) = self.autosave.finish(&format!("label:{}", after.id))
        {
            // The end of a visit to the label field: one undo with the saves made while typing.
            self.save_typed(command.as_ref().clone(), visit, cx);
            return;
        }
        let edit = match action {
            // Taken by the assist before it gets here.
            EditorAction::None | EditorAction::Rough(_) => return,
            EditorAction::Apply(command) => {
                // A freshly drawn box: the next thing to type is its label.
                if let Command::AddRegion { region, .. } = command.as_ref() {
                    self.box_panel.focus_label = region.label.is_empty();
                }
                Edit::Apply(*command)
            }
            EditorAction::Delete(id) => match cx.session.delete_region_command(id) {
                Ok(command) => Edit::Apply(command),
                Err(e) => {
                    cx.out.push(AppCommand::Notify(e.to_string()));
                    return;
                }
            },
            EditorAction::EditQuestionOf(region) => {
                self.open_question_of(region, cx);
                return;
            }
            EditorAction::Snap(id) => match snap_command(id, cx) {
                Ok(command) => Edit::Apply(command),
                Err(e) => {
                    cx.out
                        .push(AppCommand::Notify(format!("the box was not snapped: {e}")));
                    return;
                }
            },
            EditorAction::Undo => Edit::Undo,
            EditorAction::Redo => Edit::Redo,
        };
        self.commit(edit, cx);
    }

    /// Why the selected image takes no edits now (team mode), if it does not.
    fn locked(&self, cx: &AnnotateCx<'_>) -> Option<String> {
        cx.session
            .selected
            .as_ref()
            .and_then(|id| cx.team.locked(id))
    }

    /// Make an edit durable and show its result: the editor's selection and the open form
    /// follow what is stored now (undo may have taken either away).
    fn commit(&mut self, edit: Edit, cx: &mut AnnotateCx<'_>) -> bool {
        if let Err(e) = cx.session.edit(edit) {
            cx.out.push(AppCommand::Notify(e.to_string()));
            return false;
        }
        let detail = &cx.session.detail;
        if let Some(sel) = self.editor.selected
            && !detail.regions.iter().any(|r| r.id == sel)
        {
            self.editor.selected = None;
        }
        cx.team.nudge();
        if let Some(d) = &self.draft {
            self.draft = detail.questions.iter().find(|q| q.id == d.id).cloned();
            if self.draft.is_none() {
                self.highlighted = None;
            }
        }
        true
    }

    /// Save or delete the question being edited.
    pub(super) fn run_form(&mut self, action: ui::qa_editor::FormAction, cx: &mut AnnotateCx<'_>) {
        let Some(draft) = self.draft.clone() else {
            return;
        };
        let Some(stored) = cx
            .session
            .detail
            .questions
            .iter()
            .find(|q| q.id == draft.id)
            .cloned()
        else {
            return;
        };
        let command = match action {
            ui::qa_editor::FormAction::None => return,
            ui::qa_editor::FormAction::Save => {
                let visit = self.autosave.finish(&format!("question:{}", draft.id));
                if stored == draft {
                    return;
                }
                let command = Command::UpdateQuestion {
                    before: stored,
                    after: draft,
                };
                if let Some(visit) = visit {
                    self.save_typed(command, visit, cx);
                    return;
                }
                command
            }
            ui::qa_editor::FormAction::Delete => {
                self.highlighted = None;
                self.draft = None;
                Command::DeleteQuestion { question: stored }
            }
        };
        self.run_edit(EditorAction::Apply(Box::new(command)), cx);
    }

    /// Save what is being typed (question, answer, options, box label) once it has been quiet
    /// for a moment; all saves of one visit to a field undo together.
    pub(super) fn autosave_typing(&mut self, ctx: &egui::Context, cx: &mut AnnotateCx<'_>) {
        let now = std::time::Instant::now();
        let detail = &cx.session.detail;
        let mut due = Vec::new();
        if let Some(draft) = self.draft.clone()
            && let Some(stored) = detail.questions.iter().find(|q| q.id == draft.id).cloned()
        {
            let key = format!("question:{}", draft.id);
            let text = serde_json::to_string(&(&draft.text, &draft.answer)).unwrap_or_default();
            if let Some(visit) = self.autosave.tick(&key, &text, stored != draft, now) {
                let command = Command::UpdateQuestion {
                    before: stored,
                    after: draft,
                };
                due.push((command, visit));
            }
        }
        if let Some((id, text)) = self.box_panel.box_label.clone()
            && let Some(region) = detail.regions.iter().find(|r| r.id == id).cloned()
        {
            let key = format!("label:{id}");
            if let Some(visit) = self.autosave.tick(&key, &text, text != region.label, now) {
                let mut after = region.clone();
                after.label = text;
                let command = Command::UpdateRegion {
                    before: region,
                    after,
                };
                due.push((command, visit));
            }
        }
        for (command, visit) in due {
            self.save_typed(command, visit, cx);
        }
        if let Some(due) = self.autosave.next_due() {
            ctx.request_repaint_after(due);
        }
    }

    /// Save one step of typing as part of its field visit.
    fn save_typed(&mut self, command: Command, visit: String, cx: &mut AnnotateCx<'_>) {
        if let Some(why) = self.locked(cx) {
            cx.out
                .push(AppCommand::Notify(format!("the edit was not made: {why}")));
            return;
        }
        // Keep what is being typed: the field goes on from the draft, not the store.
        let typing = self.draft.clone();
        if !self.commit(Edit::Typed { command, visit }, cx) {
            return;
        }
        if let (Some(d), Some(keep)) = (&mut self.draft, typing)
            && d.id == keep.id
        {
            *d = keep;
        }
    }

    /// Give a verdict: one journaled edit naming the item as it is shown, so an item changed
    /// meanwhile (by a sync, another window) is a conflict shown with both versions.
    pub(super) fn review(&mut self, ask: ui::review_bar::ReviewAsk, cx: &mut AnnotateCx<'_>) {
        let Some(image) = cx.session.image().cloned() else {
            return;
        };
        let seen = crate::team::state::ImageState {
            image: image.clone(),
            regions: cx.session.detail.regions.clone(),
            questions: cx.session.detail.questions.clone(),
        };
        let after = match ask.verdict {
            None => None,
            Some((verdict, reason, note)) => match crate::dataset::Review::new(
                verdict,
                reason.as_deref(),
                &note,
                &cx.session.actor,
                crate::store::now_ms(),
            ) {
                Ok(r) => Some(r),
                Err(e) => {
                    cx.out.push(AppCommand::Notify(format!(
                        "the verdict was not given: {e}"
                    )));
                    return;
                }
            },
        };
        let Some(command) = crate::annotate::review::review_command(&seen, ask.target, after)
        else {
            return;
        };
        match cx.session.edit(Edit::Apply(command)) {
            Ok(()) => cx.team.nudge(),
            Err(crate::app::session::EditError::NotSaved(
                e @ (crate::store::StoreError::Conflict(_)
                | crate::store::StoreError::ChangedSinceSeen { .. }),
            )) => {
                let text = changed_since_seen(&e, &seen, cx);
                cx.out.push(AppCommand::Notify(text));
                if let Err(e) = cx.session.reload_detail() {
                    cx.out.push(AppCommand::Notify(e.to_string()));
                }
            }
            Err(e) => cx.out.push(AppCommand::Notify(format!(
                "the verdict was not given: {e}"
            ))),
        }
    }

    /// Enter on a box: open its first question for editing, or start one linked to it.
    fn open_question_of(&mut self, region: RegionId, cx: &mut AnnotateCx<'_>) {
        let existing = cx
            .session
            .detail
            .questions
            .iter()
            .find(|q| q.regions.contains(&region))
            .cloned();
        match existing {
            Some(q) => {
                self.highlighted = Some(q.id);
                self.draft = Some(q);
            }
            None => self.add_question(cx),
        }
        if let Some(d) = &self.draft {
            self.focus_question_text = Some(d.id);
        }
    }

    /// A new question on the selected image, linked to the selected box, opened for editing.
    pub(super) fn add_question(&mut self, cx: &mut AnnotateCx<'_>) {
        let Some(image) = cx.session.selected.clone() else {
            return;
        };
        let question = crate::dataset::Question::new(
            image,
            self.editor.selected.into_iter().collect(),
            "",
            crate::dataset::Answer::Open {
                text: String::new(),
            },
            "ocr",
        );
        let id = question.id;
        self.run_edit(
            EditorAction::Apply(Box::new(Command::AddQuestion { question })),
            cx,
        );
        self.highlighted = Some(id);
        self.draft = cx
            .session
            .detail
            .questions
            .iter()
            .find(|q| q.id == id)
            .cloned();
    }

    /// Centre the canvas on the boxes of the highlighted question.
    pub(super) fn focus_highlighted(&mut self, cx: &AnnotateCx<'_>) {
        let detail = &cx.session.detail;
        let Some(q) = self
            .highlighted
            .and_then(|q| detail.questions.iter().find(|x| x.id == q))
        else {
            return;
        };
        let rects: Vec<_> = detail
            .regions
            .iter()
            .filter(|r| q.regions.contains(&r.id))
            .map(|r| r.rect)
            .collect();
        if let Some(first) = rects.first() {
            let union = rects.iter().fold(*first, |a, b| {
                crate::geometry::ImageRect::new(
                    a.x0.min(b.x0),
                    a.y0.min(b.y0),
                    a.x1.max(b.x1),
                    a.y1.max(b.y1),
                )
            });
            self.canvas.focus(&union);
        }
    }
}

/// The message for a verdict refused because the item changed: what was seen, what is there
/// now, and each difference.
fn changed_since_seen(
    e: &crate::store::StoreError,
    seen: &crate::team::state::ImageState,
    cx: &AnnotateCx<'_>,
) -> String {
    let now = cx.session.project.as_ref().and_then(|p| {
        crate::team::state::ImageState::read(p.store(), &seen.image.id)
            .ok()
            .flatten()
    });
    let mut text = format!("the verdict was not given: {e}.");
    if let Some(now) = now {
        text.push_str(&format!(
            "\nYou saw: {} box(es), {} question(s). Now: {} box(es), {} question(s).",
            seen.regions.len(),
            seen.questions.len(),
            now.regions.len(),
            now.questions.len()
        ));
        for l in crate::team::state::describe(seen, &now) {
            text.push_str(&format!("\n  {l}"));
        }
    }
    text
}

/// The selected box snapped to the object inside it (the weight-free snap on the original's
/// pixels around it), as an edit; the error says why not, and nothing changes.
fn snap_command(id: crate::dataset::RegionId, cx: &AnnotateCx<'_>) -> Result<Command, String> {
    use crate::assist::{snap, window};
    let region = cx
        .session
        .detail
        .regions
        .iter()
        .find(|r| r.id == id)
        .ok_or("the box is gone")?;
    let image = cx
        .session
        .project
        .as_ref()
        .and_then(|p| p.images.iter().find(|i| i.id == region.image))
        .ok_or("the image is not in the project")?;
    let area =
        window::around(&region.rect, snap::WINDOW_MARGIN, image.size).map_err(|e| e.to_string())?;
    // Never a file read on the UI thread (a 100 MP original takes a second): asking for the
    // tiles queues them, and S again snaps once they are in memory.
    let pixels = from_tiles(cx.tiles, &image.id, image.size, area).ok_or(
        "the full-resolution pixels around the box are loading; press S again in a moment",
    )?;
    let found = snap::snap(&pixels, (area[0], area[1]), &region.rect).map_err(|e| e.to_string())?;
    if found.rect == region.rect {
        return Err("it is already tight".into());
    }
    crate::dataset::rules::check_rect(&found.rect, image.size).map_err(|e| e.to_string())?;
    let mut after = region.clone();
    after.rect = found.rect;
    Ok(Command::UpdateRegion {
        before: region.clone(),
        after,
    })
}

/// The window's pixels from the full-resolution tiles in memory (the view usually holds
/// them when a small box is being worked on); None when one is not there yet (every tile
/// asked for is queued, so a second try finds them).
fn from_tiles(
    tiles: &crate::imagery::tiles::TileService,
    id: &crate::dataset::ImageId,
    size: crate::geometry::ImageSize,
    [x0, y0, x1, y1]: [u32; 4],
) -> Option<image::RgbImage> {
    use crate::imagery::pyramid::{PyramidLayout, TILE, TileKey};
    let layout = PyramidLayout::new(size);
    let mut out = image::RgbImage::new(x1 - x0, y1 - y0);
    for row in y0 / TILE..=(y1 - 1) / TILE {
        for col in x0 / TILE..=(x1 - 1) / TILE {
            let key = TileKey { level: 0, col, row };
            let tile = tiles.tile(id, key)?;
            let (tx, ty, _, _) = layout.tile_rect(key);
            image::imageops::replace(
                &mut out,
                tile.as_ref(),
                i64::from(tx) - i64::from(x0),
                i64::from(ty) - i64::from(y0),
            );
        }
    }
    Some(out)
}
