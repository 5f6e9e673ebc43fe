//! Box editing in the Annotate workspace: turns canvas drags, clicks and keys into store
//! commands. Every finished gesture is one journaled edit, durable before it is drawn as saved.

use egui::{Key, Modifiers};

use super::keymap::{Action, Keymap};

use crate::annotate::{Handle, drag, hit_smallest, nudge};
use crate::dataset::{Region, RegionId, rules};
use crate::geometry::{ImageRect, ImageSize};
use crate::imagery::model_eye;
use crate::store::Command;

/// Screen points within which a handle can be grabbed.
const HANDLE_GRAB: f64 = 8.0;

/// A gesture in progress.
#[derive(Debug, Clone)]
enum Op {
    Draw {
        start: (f64, f64),
    },
    Edit {
        original: Region,
        handle: Handle,
        start: (f64, f64),
    },
}

/// What the editor wants done after a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum EditorAction {
    None,
    Apply(Box<Command>),
    /// Delete this box (the caller asks the store for its question links, so undo restores them).
    Delete(RegionId),
    Undo,
    Redo,
    /// Open (or start) the question about this box.
    EditQuestionOf(RegionId),
    /// Snap this box to the object inside it.
    Snap(RegionId),
    /// A rough box drawn while click-to-box is on: find the object inside it (a proposal,
    /// not a box yet).
    Rough(ImageRect),
}

/// The box editor's state for the selected image.
#[derive(Debug)]
pub struct BoxEditor {
    /// Edges land on whole pixels (off: sub-pixel boxes).
    pub snap: bool,
    pub selected: Option<RegionId>,
    op: Option<Op>,
    /// The box as it looks mid-gesture, for drawing.
    pub preview: Option<ImageRect>,
    /// A box the view should centre on (set when Tab selects one).
    pub focus_request: Option<ImageRect>,
    /// Two-click drawing: armed (`Some(None)`), or the first corner placed (`Some(Some(p))`).
    pub two_click: Option<Option<(f64, f64)>>,
    /// Click-to-box is on: a drawn box is a rough box for the assist ([`EditorAction::Rough`]).
    pub rough_draws: bool,
}

impl Default for BoxEditor {
    fn default() -> Self {
        Self {
            snap: true,
            selected: None,
            op: None,
            preview: None,
            focus_request: None,
            two_click: None,
            rough_draws: false,
        }
    }
}

impl BoxEditor {
    /// Forget the gesture and selection (another image was opened); settings stay.
    pub fn reset(&mut self) {
        *self = Self {
            snap: self.snap,
            rough_draws: self.rough_draws,
            ..Self::default()
        };
    }

    /// Is a drag or a two-click box in progress?
    pub fn busy(&self) -> bool {
        self.op.is_some() || matches!(self.two_click, Some(Some(_)))
    }

    /// Is a pointer drag in progress?
    pub fn dragging(&self) -> bool {
        self.op.is_some()
    }

    /// Arm two-click drawing: the next click places a corner, the one after it the opposite
    /// corner.
    pub fn arm_two_click(&mut self) {
        self.op = None;
        self.two_click = Some(None);
    }

    /// A click while two-click drawing is armed; returns the finished box's command.
    fn two_click_at(
        &mut self,
        p: (f64, f64),
        image: &crate::dataset::ImageId,
        size: ImageSize,
    ) -> EditorAction {
        match self.two_click {
            Some(Some(first)) => {
                self.two_click = None;
                self.preview = None;
                let rect = self.shape(first, p, size);
                if rules::check_rect(&rect, size).is_err() {
                    return EditorAction::None;
                }
                let region = Region::new(image.clone(), rect, "");
                self.selected = Some(region.id);
                EditorAction::Apply(Box::new(Command::AddRegion {
                    region,
                    links: vec![],
                }))
            }
            _ => {
                self.two_click = Some(Some(p));
                EditorAction::None
            }
        }
    }

    /// The box between two corners, clamped to the image and snapped when snapping is on.
    fn shape(&self, a: (f64, f64), b: (f64, f64), size: ImageSize) -> ImageRect {
        let r = ImageRect::from_corners(a, b).clamped(size);
        if self.snap { r.snapped() } else { r }
    }

    /// Handle this frame's canvas output. `zoom` (screen points per image pixel) sizes the
    /// handle grab area.
    pub fn on_canvas(
        &mut self,
        out: &crate::ui::canvas::CanvasOutput,
        image: &crate::dataset::ImageId,
        regions: &[Region],
        size: ImageSize,
        zoom: f64,
    ) -> EditorAction {
        let rects: Vec<ImageRect> = regions.iter().map(|r| r.rect).collect();
        if self.two_click.is_some() {
            if let Some(p) = out.clicked {
                return self.two_click_at(p, image, size);
            }
            if let (Some(Some(first)), Some(cur)) = (self.two_click, out.hover) {
                self.preview = Some(self.shape(first, cur, size));
            }
            return EditorAction::None;
        }
        if let Some(p) = out.drag_started {
            self.op = Some(self.begin(p, regions, &rects, zoom));
        }
        let current = out.dragging.or(out.drag_released);
        if let (Some(op), Some(cur)) = (&self.op, current) {
            self.preview = Some(match op {
                Op::Draw { start } => self.shape(*start, cur, size),
                Op::Edit {
                    original,
                    handle,
                    start,
                } => drag(
                    &original.rect,
                    *handle,
                    (cur.0 - start.0, cur.1 - start.1),
                    size,
                    self.snap,
                ),
            });
        }
        if out.drag_released.is_some() {
            let op = self.op.take();
            let preview = self.preview.take();
            return match (op, preview) {
                (Some(Op::Draw { .. }), Some(rect)) if self.rough_draws => {
                    if rect.width() >= 2.0 && rect.height() >= 2.0 {
                        EditorAction::Rough(rect)
                    } else {
                        EditorAction::None
                    }
                }
                (Some(Op::Draw { .. }), Some(rect)) if rules::check_rect(&rect, size).is_ok() => {
                    let region = Region::new(image.clone(), rect, "");
                    self.selected = Some(region.id);
                    EditorAction::Apply(Box::new(Command::AddRegion {
                        region,
                        links: vec![],
                    }))
                }
                (Some(Op::Edit { original, .. }), Some(rect)) if rect != original.rect => {
                    let mut after = original.clone();
                    after.rect = rect;
                    EditorAction::Apply(Box::new(Command::UpdateRegion {
                        before: original,
                        after,
                    }))
                }
                _ => EditorAction::None,
            };
        }
        if let Some(p) = out.clicked {
            self.selected = hit_smallest(&rects, p).map(|i| regions[i].id);
        }
        EditorAction::None
    }

    fn begin(&mut self, p: (f64, f64), regions: &[Region], rects: &[ImageRect], zoom: f64) -> Op {
        let grab = HANDLE_GRAB / zoom.max(1e-6);
        if let Some(sel) = self
            .selected
            .and_then(|id| regions.iter().find(|r| r.id == id))
        {
            for handle in Handle::RESIZE {
                let hp = handle.point(&sel.rect);
                if (hp.0 - p.0).abs() <= grab && (hp.1 - p.1).abs() <= grab {
                    return Op::Edit {
                        original: sel.clone(),
                        handle,
                        start: p,
                    };
                }
            }
        }
        match hit_smallest(rects, p) {
            Some(i) => {
                self.selected = Some(regions[i].id);
                Op::Edit {
                    original: regions[i].clone(),
                    handle: Handle::Move,
                    start: p,
                }
            }
            None => {
                self.selected = None;
                Op::Draw { start: p }
            }
        }
    }

    /// Keys (see `keymap` for the configurable ones): undo/redo, box cycling, question,
    /// deselect, duplicate, delete, two-click drawing; arrows move the box or one edge.
    pub fn on_keys(
        &mut self,
        ctx: &egui::Context,
        keys: &Keymap,
        regions: &[Region],
        size: ImageSize,
    ) -> EditorAction {
        if keys.pressed(ctx, Action::Redo) {
            return EditorAction::Redo;
        }
        if keys.pressed(ctx, Action::Undo) {
            return EditorAction::Undo;
        }
        if keys.pressed(ctx, Action::DrawTwoClicks) {
            self.arm_two_click();
            return EditorAction::None;
        }
        if self.two_click.is_some() && keys.pressed(ctx, Action::Deselect) {
            self.two_click = None;
            self.preview = None;
            return EditorAction::None;
        }
        if self.cycle_boxes(ctx, keys, regions) {
            return EditorAction::None;
        }
        let Some(sel) = self
            .selected
            .and_then(|id| regions.iter().find(|r| r.id == id))
        else {
            return EditorAction::None;
        };
        if keys.pressed(ctx, Action::EditQuestion) {
            return EditorAction::EditQuestionOf(sel.id);
        }
        if keys.pressed(ctx, Action::Deselect) {
            self.selected = None;
            return EditorAction::None;
        }
        if keys.pressed(ctx, Action::Duplicate) {
            // Duplicate beside the original (10 px right and down, kept on the image).
            let mut copy = Region::new(
                sel.image.clone(),
                nudge(&sel.rect, 10.0, 10.0, size),
                sel.label.clone(),
            );
            if copy.rect == sel.rect {
                copy.rect = nudge(&sel.rect, -10.0, -10.0, size);
            }
            self.selected = Some(copy.id);
            return EditorAction::Apply(Box::new(Command::AddRegion {
                region: copy,
                links: vec![],
            }));
        }
        if keys.pressed(ctx, Action::Delete) {
            self.selected = None;
            return EditorAction::Delete(sel.id);
        }
        if keys.pressed(ctx, Action::SnapToObject) {
            return EditorAction::Snap(sel.id);
        }
        arrow_edit(ctx, sel, size)
    }

    /// Tab / Shift+Tab (or their rebound keys): select the next or previous box and centre
    /// it. Returns whether a key was taken.
    fn cycle_boxes(&mut self, ctx: &egui::Context, keys: &Keymap, regions: &[Region]) -> bool {
        if regions.is_empty() {
            return false;
        }
        let backward = keys.pressed(ctx, Action::PreviousBox);
        let forward = !backward && keys.pressed(ctx, Action::NextBox);
        if forward || backward {
            let n = regions.len();
            let at = self
                .selected
                .and_then(|id| regions.iter().position(|r| r.id == id));
            let next = match (at, forward) {
                (None, true) => 0,
                (None, false) => n - 1,
                (Some(i), true) => (i + 1) % n,
                (Some(i), false) => (i + n - 1) % n,
            };
            self.selected = Some(regions[next].id);
            self.focus_request = Some(regions[next].rect);
            // Tab is ours here: undo egui's own move of keyboard focus to a button.
            ctx.memory_mut(|m| {
                if let Some(id) = m.focused() {
                    m.surrender_focus(id);
                }
            });
            return true;
        }
        false
    }

    /// The live feedback for a box: "W x H px, a.aaa %", and whether it breaks the 5 % rule.
    pub fn feedback(rect: &ImageRect, size: ImageSize, max_pixels: u64) -> (String, bool) {
        let over = rules::check_area(rect, size).is_err();
        let mut text = format!(
            "{:.0} x {:.0} px, {:.3} %{}",
            rect.width(),
            rect.height(),
            rect.area_ratio(size) * 100.0,
            if over {
                " - over 5 %: not a small-object target"
            } else {
                ""
            }
        );
        if let Ok(m) = model_eye::smart_resize(size, model_eye::DEFAULT_MIN_PIXELS, max_pixels) {
            let seen = model_eye::box_in_model_eye(rect, size, m);
            text.push_str(&format!(
                ", model sees {:.0} x {:.0}",
                seen.width, seen.height
            ));
            if seen.below_one_patch {
                text.push_str(" (below one patch)");
            }
        }
        (text, over)
    }
}

/// Arrows move the selected box (Shift: by 10 px); Alt+arrows move its right or bottom edge,
/// Ctrl+arrows its left or top edge. A change that would break the image's bounds is not made.
fn arrow_edit(ctx: &egui::Context, sel: &Region, size: ImageSize) -> EditorAction {
    let pressed = |key: Key, mods: Modifiers| ctx.input_mut(|i| i.consume_key(mods, key));
    for (key, dx, dy) in [
        (Key::ArrowLeft, -1.0, 0.0),
        (Key::ArrowRight, 1.0, 0.0),
        (Key::ArrowUp, 0.0, -1.0),
        (Key::ArrowDown, 0.0, 1.0),
    ] {
        let handle = if pressed(key, Modifiers::ALT) {
            if dx != 0.0 {
                Handle::Right
            } else {
                Handle::Bottom
            }
        } else if pressed(key, Modifiers::COMMAND) {
            if dx != 0.0 { Handle::Left } else { Handle::Top }
        } else {
            continue;
        };
        let resized = drag(&sel.rect, handle, (dx, dy), size, false);
        if resized != sel.rect && rules::check_rect(&resized, size).is_ok() {
            let mut after = sel.clone();
            after.rect = resized;
            return EditorAction::Apply(Box::new(Command::UpdateRegion {
                before: sel.clone(),
                after,
            }));
        }
    }
    for (key, dx, dy) in [
        (Key::ArrowLeft, -1.0, 0.0),
        (Key::ArrowRight, 1.0, 0.0),
        (Key::ArrowUp, 0.0, -1.0),
        (Key::ArrowDown, 0.0, 1.0),
    ] {
        let step = if pressed(key, Modifiers::SHIFT) {
            10.0
        } else if pressed(key, Modifiers::NONE) {
            1.0
        } else {
            continue;
        };
        let moved = nudge(&sel.rect, dx * step, dy * step, size);
        if moved != sel.rect {
            let mut after = sel.clone();
            after.rect = moved;
            return EditorAction::Apply(Box::new(Command::UpdateRegion {
                before: sel.clone(),
                after,
            }));
        }
    }
    EditorAction::None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_names_size_share_rule_and_what_the_model_sees() {
        let size = ImageSize::new(12000, 8000);
        let sign = ImageRect::new(100.0, 100.0, 220.0, 150.0);
        let (text, over) = BoxEditor::feedback(&sign, size, model_eye::DEFAULT_MAX_PIXELS);
        assert!(!over);
        assert!(text.starts_with("120 x 50 px, 0.006 %"), "{text}");
        assert!(text.contains("(below one patch)"), "{text}");
        let big = ImageRect::new(0.0, 0.0, 4000.0, 4000.0);
        let (text, over) = BoxEditor::feedback(&big, size, 1_003_520);
        assert!(over && text.contains("over 5 %"), "{text}");
        assert!(!text.contains("below one patch"), "{text}");
    }
}
