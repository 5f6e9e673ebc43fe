//! The Annotate workspace: the image list, the canvas with the box editor, and the side panel
//! (review, the selected box, the questions). It owns its UI state (canvas, editor, the
//! question being typed, autosave) and reaches the project only through the
//! [`ProjectSession`], and the rest of the app only through [`AppCommand`]s.

mod assist;
pub mod box_panel;
mod central;
mod edits;
pub mod list;

use std::collections::HashMap;

use crate::app::command::{AppCommand, Outbox};
use crate::app::keymap::{self, Keymap};
use crate::app::session::ProjectSession;
use crate::app::team_panel::TeamPanel;
use crate::app::thumbnails::{Kind, Picture};
use crate::app::{autosave, editor, model_eye_view};
use crate::dataset::{ImageId, QuestionId};
use crate::imagery::tiles::TileService;
use crate::ui;
use crate::ui::canvas::Canvas;
use box_panel::BoxPanel;

pub use assist::chat_server;
pub use list::ListFilter;

/// What the workspace borrows from the app for one frame.
pub struct AnnotateCx<'a> {
    pub session: &'a mut ProjectSession,
    pub tiles: &'a TileService,
    pub team: &'a TeamPanel,
    pub keymap: &'a Keymap,
    pub pictures: &'a HashMap<(ImageId, Kind), Picture>,
    /// The help window is waiting for a new shortcut: keys are not the workspace's.
    pub keys_taken: bool,
    /// The demo project is being made (said in place of the empty workspace).
    pub demo_pending: bool,
    /// The Run panel's chat server, for Find.
    pub chat: Option<crate::agent::HttpSettings>,
    pub out: &'a mut Outbox,
}

/// The Annotate workspace's own state.
pub struct AnnotateWorkspace {
    pub canvas: Canvas,
    pub editor: editor::BoxEditor,
    /// The question whose boxes are emphasised (and whose form is open).
    pub highlighted: Option<QuestionId>,
    /// The highlighted question as being edited.
    pub draft: Option<crate::dataset::Question>,
    box_panel: BoxPanel,
    /// The reason and note the review section gives with a rejection.
    review_form: ui::review_bar::ReviewForm,
    /// Typed text saved a moment after the last keystroke.
    autosave: autosave::Autosave,
    pub list_filter: ListFilter,
    /// The model's max_pixels for the model-eye sizes.
    pub max_pixels: u64,
    /// A text field had the keyboard at the end of the last frame.
    pub typing: bool,
    /// Put the keyboard into this question's text on the next frame.
    focus_question_text: Option<QuestionId>,
    pub show_help: bool,
    pub model_eye: model_eye_view::ModelEyeView,
    /// Click-to-box, proposals and Find.
    pub assist: assist::AssistBox,
}

impl Default for AnnotateWorkspace {
    fn default() -> Self {
        Self {
            canvas: Canvas::new(),
            editor: editor::BoxEditor::default(),
            highlighted: None,
            draft: None,
            box_panel: BoxPanel::default(),
            review_form: ui::review_bar::ReviewForm::default(),
            autosave: autosave::Autosave::default(),
            list_filter: ListFilter::All,
            max_pixels: crate::imagery::model_eye::DEFAULT_MAX_PIXELS,
            typing: false,
            focus_question_text: None,
            show_help: false,
            model_eye: model_eye_view::ModelEyeView::default(),
            assist: assist::AssistBox::default(),
        }
    }
}

/// What the side panel asked for this frame.
#[derive(Default)]
struct SideOut {
    clicked_question: Option<QuestionId>,
    box_edit: Option<editor::EditorAction>,
    qa_form: Option<ui::qa_editor::FormAction>,
    add_question: bool,
    open_runs: Option<QuestionId>,
    review: Option<ui::review_bar::ReviewAsk>,
}

impl AnnotateWorkspace {
    /// Is the workspace still waiting on background work (pictures, the canvas)?
    pub fn busy(&self, tiles: &TileService, selected: Option<&ImageId>) -> bool {
        use crate::imagery::tiles::BuildStatus;
        self.model_eye.busy()
            || self.assist.busy()
            || selected.is_some_and(|id| {
                !self.canvas.settled()
                    && !matches!(
                        tiles.status(id),
                        Some(BuildStatus::Failed(_) | BuildStatus::Cancelled)
                    )
            })
    }

    /// Draw one frame of the workspace.
    pub fn show(&mut self, ui: &mut egui::Ui, cx: &mut AnnotateCx<'_>) {
        self.keys(ui.ctx(), cx);
        if cx.session.project.is_none() {
            let text = if cx.demo_pending {
                "Drawing the demo scenes (a few seconds, only on the first run)..."
            } else {
                "No project is open. Use File > New project or File > Open project."
            };
            crate::app::placeholder(ui, "Annotate", text);
            return;
        }
        let clicked_image = self.list_panel(ui, cx);
        let image = cx.session.image().cloned();
        let mut side = SideOut::default();
        if let Some(image) = &image {
            egui::Panel::right("qa")
                .resizable(true)
                .default_size(340.0)
                .show(ui, |ui| side = self.side_panel(ui, image, cx));
        }
        let mut edits = Vec::new();
        egui::CentralPanel::default().show(ui, |ui| match &image {
            None => {
                ui.centered_and_justified(|ui| {
                    ui.label("Select an image on the left.");
                });
            }
            Some(image) => edits = self.central(ui, image, cx),
        });
        self.after_frame(ui.ctx(), cx, edits, side);
        if let Some(id) = clicked_image {
            self.select(id, cx);
        }
    }

    /// Carry out what this frame's panels asked for, in the order they were drawn.
    fn after_frame(
        &mut self,
        ctx: &egui::Context,
        cx: &mut AnnotateCx<'_>,
        edits: Vec<editor::EditorAction>,
        side: SideOut,
    ) {
        for action in edits {
            self.run_edit(action, cx);
        }
        if let Some(q) = self.focus_question_text.take() {
            ctx.memory_mut(|m| m.request_focus(ui::qa_editor::question_text_id(q)));
        }
        if let Some(action) = side.box_edit {
            self.run_edit(action, cx);
        }
        if let Some(action) = side.qa_form {
            self.run_form(action, cx);
        }
        if let Some(ask) = side.review {
            self.review(ask, cx);
        }
        self.autosave_typing(ctx, cx);
        if side.add_question {
            self.add_question(cx);
        }
        if let Some(q) = side.open_runs {
            cx.out
                .push(crate::app::command::AppCommand::OpenCheckRuns(q));
        }
        if let Some(q) = side.clicked_question {
            self.highlighted = if self.highlighted == Some(q) {
                None
            } else {
                Some(q)
            };
            self.draft = self
                .highlighted
                .and_then(|id| cx.session.detail.questions.iter().find(|x| x.id == id))
                .cloned();
            self.focus_highlighted(cx);
        }
    }

    /// Review, the selected box, the questions.
    fn side_panel(
        &mut self,
        ui: &mut egui::Ui,
        image: &crate::dataset::ImageRecord,
        cx: &AnnotateCx<'_>,
    ) -> SideOut {
        let mut out = SideOut::default();
        let detail = &cx.session.detail;
        let rows = review_rows(image, detail, self.editor.selected, self.highlighted);
        out.review = ui::review_bar::review_bar(ui, &mut self.review_form, &rows);
        out.box_edit = box_panel::selected_box_panel(
            ui,
            &mut self.box_panel,
            cx.tiles,
            detail,
            self.editor.selected,
            image,
        );
        let edit = self.draft.as_mut().map(|draft| ui::qa_panel::QaEdit {
            draft,
            categories: &cx.session.categories,
            selected_box: self.editor.selected,
        });
        let qa = ui::qa_panel::qa_panel(
            ui,
            image.size,
            ui::qa_panel::QaItems {
                regions: &detail.regions,
                questions: &detail.questions,
                difficulty: cx.session.project.as_ref().map(|p| &p.difficulty.questions),
            },
            self.highlighted,
            edit,
            &mut self.max_pixels,
        );
        out.clicked_question = qa.clicked;
        out.qa_form = qa.form;
        out.add_question = qa.add;
        out.open_runs = qa.open_runs;
        out
    }

    /// Next / previous image, the shortcut help and the model-eye view (keys from the keymap).
    fn keys(&mut self, ctx: &egui::Context, cx: &mut AnnotateCx<'_>) {
        if self.typing || ctx.text_edit_focused() || cx.keys_taken {
            return;
        }
        use keymap::Action;
        let next = cx.keymap.pressed(ctx, Action::NextImage);
        let prev = !next && cx.keymap.pressed(ctx, Action::PreviousImage);
        if cx.keymap.pressed(ctx, Action::Help) {
            self.show_help = !self.show_help;
        }
        if cx.keymap.pressed(ctx, Action::ModelEye) {
            self.model_eye.open = !self.model_eye.open;
        }
        if cx.keymap.pressed(ctx, Action::ClickToBox) {
            self.assist.on = !self.assist.on;
        }
        if !(next || prev) || self.editor.busy() {
            return;
        }
        let Some(project) = &cx.session.project else {
            return;
        };
        let n = project.images.len();
        if n == 0 {
            return;
        }
        let at = cx
            .session
            .selected
            .as_ref()
            .and_then(|id| project.images.iter().position(|i| i.id == *id));
        let target = match (at, next) {
            (None, _) => 0,
            (Some(i), true) => (i + 1).min(n - 1),
            (Some(i), false) => i.saturating_sub(1),
        };
        let id = project.images[target].id.clone();
        self.select(id, cx);
    }

    /// Open an image: its detail, its pyramid (and the next images' in the background), the
    /// list thumbnail as a placeholder until the tiles come.
    pub fn select(&mut self, id: ImageId, cx: &mut AnnotateCx<'_>) {
        select_image(self, id, cx.session, cx.tiles, cx.pictures, cx.out);
    }
}

/// [`AnnotateWorkspace::select`] with the borrows spelled out (the app calls it too, when a
/// project opens or an import ends).
pub fn select_image(
    ws: &mut AnnotateWorkspace,
    id: ImageId,
    session: &mut ProjectSession,
    tiles: &TileService,
    pictures: &HashMap<(ImageId, Kind), Picture>,
    out: &mut Outbox,
) {
    let changed = session.selected.as_ref() != Some(&id);
    if let Err(e) = session.select(id.clone()) {
        out.push(AppCommand::Notify(e.to_string()));
        return;
    }
    let Some(project) = &session.project else {
        return;
    };
    if let Some(image) = project.image(&id) {
        ws.canvas.set_image(id.clone(), image.size);
        if let Some(Picture::Ready(t)) = pictures.get(&(id.clone(), Kind::Thumb)) {
            ws.canvas.set_placeholder(Some(t.clone()));
        }
        if !project.missing.contains(&id) {
            tiles.open(&id, image.path.clone(), image.size);
        }
        // Build the next images' pyramids in the background, so paging on is instant.
        if let Some(pos) = project.images.iter().position(|i| i.id == id) {
            for next in project.images.iter().skip(pos + 1).take(2) {
                if !project.missing.contains(&next.id) {
                    tiles.prefetch(&next.id, next.path.clone(), next.size);
                }
            }
        }
    }
    ws.highlighted = None;
    ws.draft = None;
    if changed {
        ws.editor.reset();
    }
}

/// What the review section offers verdicts on: the image, the selected box, the highlighted
/// question.
fn review_rows<'a>(
    image: &'a crate::dataset::ImageRecord,
    detail: &'a crate::app::project::ImageDetail,
    selected_box: Option<crate::dataset::RegionId>,
    highlighted: Option<QuestionId>,
) -> Vec<ui::review_bar::ReviewRow<'a>> {
    use crate::dataset::ReviewTarget;
    let mut rows = vec![ui::review_bar::ReviewRow {
        target: ReviewTarget::Image(image.id.clone()),
        title: "Image".into(),
        current: image.review.as_ref(),
    }];
    if let Some((n, r)) =
        selected_box.and_then(|id| detail.regions.iter().enumerate().find(|(_, r)| r.id == id))
    {
        rows.push(ui::review_bar::ReviewRow {
            target: ReviewTarget::Region(r.id),
            title: format!("Box #{} {}", n + 1, r.label),
            current: r.review.as_ref(),
        });
    }
    if let Some(q) = highlighted.and_then(|id| detail.questions.iter().find(|q| q.id == id)) {
        let text: String = q.text.chars().take(40).collect();
        rows.push(ui::review_bar::ReviewRow {
            target: ReviewTarget::Question(q.id),
            title: format!("Question '{text}'"),
            current: q.review.as_ref(),
        });
    }
    rows
}
