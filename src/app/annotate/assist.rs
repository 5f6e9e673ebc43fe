//! Assisted boxing in the Annotate workspace: the click-to-box toggle (C), the proposal a
//! click or a rough box gets (drawn dashed with its size, share and model-eye size, SAM's mask
//! outline with it; Enter makes it a box, Escape drops it), Shift+click's points to leave
//! out, and Find's proposals from the VLM, accepted or dropped one by one. The work runs on
//! the [`AssistJob`] worker; this owns what the person sees of it.

use std::path::PathBuf;

use super::{AnnotateCx, AnnotateWorkspace};
use crate::agent::HttpSettings;
use crate::app::assist_job::{Answer, Ask, AssistJob, Request};
use crate::app::command::AppCommand;
use crate::app::dialogs::DialogRequest;
use crate::app::editor::{BoxEditor, EditorAction};
use crate::app::keymap::Action;
use crate::assist::assistant::Boxed;
use crate::assist::find;
use crate::dataset::{ImageId, ImageRecord, Region, rules};
use crate::geometry::{ImageRect, ImageSize};
use crate::store::Command;
use crate::ui;
use crate::ui::canvas::{Overlay, OverlayStyle};

/// SAM's window side is the view's shorter side in image pixels, within these bounds.
const MIN_SIDE: u32 = 256;
const MAX_SIDE: u32 = 3072;

const PROPOSAL: egui::Color32 = egui::Color32::from_rgb(90, 240, 255);
const FOUND: egui::Color32 = egui::Color32::from_rgb(255, 150, 240);

/// A proposed box from a click or a rough box.
#[derive(Debug, Clone)]
struct Proposal {
    image: ImageId,
    boxed: Boxed,
    /// The click it answers (None for a rough box), for Shift+click to refine.
    click: Option<((f64, f64), u32)>,
}

/// The assist's state in the workspace.
#[derive(Default)]
pub struct AssistBox {
    /// Click-to-box is on.
    pub on: bool,
    /// SAM's weights folder (from the settings); None: the weight-free ways.
    pub weights: Option<PathBuf>,
    /// ViT-B even when TinyViT is there (slower, finer).
    pub vit_b: bool,
    pub find_text: String,
    job: AssistJob,
    proposal: Option<Proposal>,
    negatives: Vec<(f64, f64)>,
    /// Find's proposals not yet accepted or dropped, for this image.
    found: Vec<find::Proposal>,
    found_image: Option<ImageId>,
    /// The last answer or problem, in one line.
    pub note: Option<String>,
    /// The click (and window side) the pending ask answers, for Shift+click to refine.
    asked: Option<((f64, f64), u32)>,
    /// The pending ask adds a point to leave out to the shown proposal.
    refining: bool,
}

impl AssistBox {
    /// Is a proposal waiting for Enter or Escape?
    pub fn proposing(&self) -> bool {
        self.proposal.is_some() || !self.found.is_empty()
    }

    /// The proposed box and how it was found, if one is shown.
    pub fn proposal(&self) -> Option<(ImageRect, &str)> {
        self.proposal
            .as_ref()
            .map(|p| (p.boxed.rect, p.boxed.how.as_str()))
    }

    /// Is the worker on an ask?
    pub fn busy(&self) -> bool {
        self.job.pending().is_some()
    }

    /// Forget what belongs to another image (a new one was opened).
    pub fn reset(&mut self, image: &ImageId) {
        if self.proposal.as_ref().is_some_and(|p| p.image != *image) {
            self.proposal = None;
            self.negatives.clear();
        }
        if self.found_image.as_ref().is_some_and(|i| i != image) {
            self.found.clear();
            self.found_image = None;
        }
    }

    fn send(&mut self, image: &ImageRecord, ask: Ask, what: String) {
        let request = Request {
            image: image.id.clone(),
            path: image.path.clone(),
            weights: self.weights.clone(),
            vit_b: self.vit_b,
            ask,
        };
        self.note = None;
        if let Err(e) = self.job.ask(request, what) {
            self.note = Some(e);
        }
    }

    /// A click on the image while click-to-box is on (not on a box): a new proposal, or
    /// with Shift a point the current one must leave out.
    pub fn click(&mut self, image: &ImageRecord, p: (f64, f64), shift: bool, visible: ImageRect) {
        let refine = self
            .proposal
            .as_ref()
            .filter(|_| shift)
            .and_then(|pr| pr.click);
        if refine.is_some() && self.weights.is_none() {
            self.note = Some(
                "Shift+click leaves a point out with SAM's weights; without them a click takes \
                 the part under it"
                    .into(),
            );
            return;
        }
        self.refining = refine.is_some();
        let (click, side) = match refine {
            Some(c) => {
                self.negatives.push(p);
                c
            }
            None => {
                self.negatives.clear();
                let side = visible.width().min(visible.height()).round() as u32;
                (p, side.clamp(MIN_SIDE, MAX_SIDE))
            }
        };
        let what = match &self.weights {
            Some(_) => format!("SAM on a {side} px window"),
            None => "the weight-free click".to_owned(),
        };
        let ask = Ask::Click {
            click,
            negatives: self.negatives.clone(),
            side,
        };
        self.send(image, ask, what);
        self.asked = Some((click, side));
    }

    /// A rough box drawn while click-to-box is on.
    pub fn rough(&mut self, image: &ImageRecord, rough: ImageRect) {
        self.negatives.clear();
        let what = match &self.weights {
            Some(_) => "SAM on the rough box".to_owned(),
            None => "the weight-free snap".to_owned(),
        };
        self.send(image, Ask::Rough(rough), what);
        self.asked = None;
        self.refining = false;
    }

    /// Take the worker's answer, if it came.
    pub fn poll(&mut self) {
        let Some((about, answer, took)) = self.job.poll() else {
            return;
        };
        match answer {
            Answer::Box(boxed) => {
                self.proposal = Some(Proposal {
                    image: about,
                    click: self.asked,
                    boxed,
                });
            }
            Answer::Found(found) => {
                let mut note = format!(
                    "Find: {} proposal(s) from {} tile(s) in {:.1} s",
                    found.proposals.len(),
                    found.tiles,
                    took.as_secs_f64()
                );
                if let Some(p) = found.problems.first() {
                    note.push_str(&format!(
                        "; {} tile(s) unread, first: {p}",
                        found.problems.len()
                    ));
                }
                self.note = Some(note);
                self.found = found.proposals;
                self.found_image = Some(about);
            }
            Answer::Failed(e) => {
                // A point to leave out that gave no mask is not kept.
                if self.refining {
                    self.negatives.pop();
                }
                self.note = Some(e);
            }
        }
    }

    /// Enter and Escape while a proposal is shown or the worker is on an ask.
    pub fn keys(&mut self, ctx: &egui::Context, cx: &AnnotateCx<'_>, snap: bool) -> EditorAction {
        if self.busy() && cx.keymap.pressed(ctx, Action::Deselect) {
            self.job.cancel();
            self.note = Some("stopped".into());
            return EditorAction::None;
        }
        if !self.proposing() {
            return EditorAction::None;
        }
        if cx.keymap.pressed(ctx, Action::EditQuestion) {
            return self.accept(0, cx, snap);
        }
        if cx.keymap.pressed(ctx, Action::Deselect) {
            self.drop_one(0);
        }
        EditorAction::None
    }

    /// Make proposal `i` a box (0 is the click's proposal when there is one, else Find's
    /// first); a box against the rules stays a proposal, with the reason said.
    fn accept(&mut self, i: usize, cx: &AnnotateCx<'_>, snap: bool) -> EditorAction {
        let Some(image) = cx.session.image() else {
            return EditorAction::None;
        };
        let (rect, label) = match (&self.proposal, i) {
            (Some(p), 0) => (p.boxed.rect, String::new()),
            (Some(_), i) => match self.found.get(i - 1) {
                Some(f) => (f.rect, f.label.clone()),
                None => return EditorAction::None,
            },
            (None, i) => match self.found.get(i) {
                Some(f) => (f.rect, f.label.clone()),
                None => return EditorAction::None,
            },
        };
        let rect = if snap { rect.snapped() } else { rect }.clamped(image.size);
        if let Err(e) = rules::check_rect(&rect, image.size) {
            self.note = Some(format!("not made a box: {e}"));
            return EditorAction::None;
        }
        self.drop_one(i);
        let region = Region::new(image.id.clone(), rect, label);
        EditorAction::Apply(Box::new(Command::AddRegion {
            region,
            links: vec![],
        }))
    }

    fn drop_one(&mut self, i: usize) {
        match (&self.proposal, i) {
            (Some(_), 0) => {
                self.proposal = None;
                self.negatives.clear();
            }
            (Some(_), i) if i <= self.found.len() => {
                self.found.remove(i - 1);
            }
            (None, i) if i < self.found.len() => {
                self.found.remove(i);
            }
            _ => {}
        }
    }

    /// The proposals as dashed boxes with their feedback, SAM's outline, the points left out.
    pub fn overlays(&self, image: &ImageId, size: ImageSize, max_pixels: u64) -> Vec<Overlay> {
        let mut out = Vec::new();
        if let Some(p) = self.proposal.as_ref().filter(|p| p.image == *image) {
            let (feedback, _) = BoxEditor::feedback(&p.boxed.rect, size, max_pixels);
            out.push(Overlay {
                rect: p.boxed.rect,
                color: PROPOSAL,
                label: Some(format!("proposed: {feedback}")),
                emphasis: true,
                style: OverlayStyle::Crop,
            });
            out.extend(p.boxed.outline.iter().map(|&[x0, y0, x1, y1]| Overlay {
                rect: ImageRect::new(x0, y0, x1, y1),
                color: PROPOSAL,
                label: None,
                emphasis: false,
                style: OverlayStyle::Line,
            }));
            out.extend(self.negatives.iter().map(|&(x, y)| Overlay {
                rect: ImageRect::new(x - 0.5, y - 0.5, x + 0.5, y + 0.5),
                color: ui::WARNING,
                label: Some("not this".into()),
                emphasis: false,
                style: OverlayStyle::Box,
            }));
        }
        if self.found_image.as_ref() == Some(image) {
            let first = usize::from(self.proposal.is_some());
            for (n, f) in self.found.iter().enumerate() {
                let (feedback, _) = BoxEditor::feedback(&f.rect, size, max_pixels);
                out.push(Overlay {
                    rect: f.rect,
                    color: FOUND,
                    label: Some(format!("found {}: {} · {feedback}", n + 1 + first, f.label)),
                    emphasis: false,
                    style: OverlayStyle::Crop,
                });
            }
        }
        out
    }
}

impl AnnotateWorkspace {
    /// The assist's row above the canvas: the toggle, SAM's weights, Find, what is running.
    pub(super) fn assist_bar(
        &mut self,
        ui: &mut egui::Ui,
        image: &ImageRecord,
        cx: &mut AnnotateCx<'_>,
    ) -> EditorAction {
        let a = &mut self.assist;
        let mut action = EditorAction::None;
        ui.horizontal(|ui| {
            ui.toggle_value(&mut a.on, "Click-to-box (C)")
                .on_hover_text("A click on an object, or a rough box around it, proposes its box");
            match &a.weights {
                Some(w) => {
                    let name = w.file_name().map_or_else(
                        || w.display().to_string(),
                        |n| n.to_string_lossy().into_owned(),
                    );
                    ui.label(format!("SAM: {name}"))
                        .on_hover_text(w.display().to_string());
                    if ui
                        .small_button("x")
                        .on_hover_text("forget the weights")
                        .clicked()
                    {
                        cx.out.push(AppCommand::RememberSamWeights(None));
                    }
                    ui.checkbox(&mut a.vit_b, "ViT-B").on_hover_text(
                        "SAM ViT-B (sam_vit_b_01ec64.safetensors) even when TinyViT is in the \
                         folder: about 3x the encoder's time",
                    );
                }
                None => {
                    ui.label("weight-free").on_hover_text(
                        "No SAM weights chosen: a click takes the part under it, a rough box is \
                         snapped. For SAM, download mobile_sam-tiny-vitt.safetensors (40 MB) or \
                         sam_vit_b_01ec64.safetensors (375 MB) from lmz/candle-sam on Hugging Face \
                         and choose its folder.",
                    );
                }
            }
            if ui.small_button("SAM weights...").clicked() {
                cx.out.push(AppCommand::Ask(DialogRequest::SamWeights));
            }
            ui.separator();
            ui.label("Find:");
            let field = ui.add(
                egui::TextEdit::singleline(&mut a.find_text)
                    .hint_text("red sign")
                    .desired_width(120.0),
            );
            let go = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            let ready = cx.chat.is_some() && !a.find_text.trim().is_empty();
            let button = ui
                .add_enabled(ready, egui::Button::new("Find"))
                .on_disabled_hover_text("needs words and the Run panel's chat server");
            if (button.clicked() || (go && ready))
                && let Some(http) = cx.chat.clone()
            {
                let text = a.find_text.trim().to_owned();
                let ask = Ask::Find {
                    text: text.clone(),
                    http,
                    max_pixels: self.max_pixels,
                };
                a.send(image, ask, format!("Find \"{text}\" on tiles of the image"));
            }
            if let Some((what, took)) = a.job.pending() {
                ui.spinner();
                ui.label(format!("{what}: {:.1} s", took.as_secs_f64()));
                if ui.button("Stop").clicked() {
                    a.job.cancel();
                    a.note = Some("stopped".into());
                }
                ui.ctx()
                    .request_repaint_after(std::time::Duration::from_millis(100));
            } else if let Some(p) = a.proposal.as_ref().filter(|p| p.image == image.id) {
                ui.add(
                    egui::Label::new(format!(
                        "Enter makes it a box, Escape drops it ({})",
                        p.boxed.how
                    ))
                    .truncate(),
                );
            } else if let Some(note) = &a.note {
                ui.add(egui::Label::new(note.as_str()).truncate());
            }
        });
        if !a.found.is_empty() && a.found_image.as_ref() == Some(&image.id) {
            let first = usize::from(a.proposal.is_some());
            let mut pick = None;
            ui.horizontal_wrapped(|ui| {
                for (n, f) in a.found.iter().enumerate() {
                    ui.label(format!("{}: {}", n + 1 + first, f.label));
                    if ui.small_button("Accept").clicked() {
                        pick = Some((n + first, true));
                    }
                    if ui.small_button("Drop").clicked() {
                        pick = Some((n + first, false));
                    }
                    ui.separator();
                }
            });
            match pick {
                Some((i, true)) => action = a.accept(i, cx, self.editor.snap),
                Some((i, false)) => a.drop_one(i),
                None => {}
            }
        }
        action
    }
}

/// The chat server the Run panel is set to, if any (Find asks it).
pub fn chat_server(url: &str, model: &str) -> Option<HttpSettings> {
    let url = url.trim();
    (!url.is_empty()).then(|| HttpSettings::new(url, model.trim()))
}
