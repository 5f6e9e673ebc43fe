//! The Annotate workspace's configurable shortcuts: named actions, their default keys, the
//! user's own keys (kept in the settings file) and the text form ("Ctrl+Shift+Z") shown in the
//! help overlay and written to settings. Arrow-key moves are fixed and listed separately.

use std::collections::BTreeMap;

use egui::{Key, KeyboardShortcut, Modifiers};

/// Something a key can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Undo,
    Redo,
    NextBox,
    PreviousBox,
    EditQuestion,
    Deselect,
    Duplicate,
    Delete,
    DrawTwoClicks,
    NextImage,
    PreviousImage,
    ModelEye,
    SnapToObject,
    ClickToBox,
    Help,
}

impl Action {
    pub const ALL: [Action; 15] = [
        Action::Undo,
        Action::Redo,
        Action::NextBox,
        Action::PreviousBox,
        Action::EditQuestion,
        Action::Deselect,
        Action::Duplicate,
        Action::Delete,
        Action::DrawTwoClicks,
        Action::NextImage,
        Action::PreviousImage,
        Action::ModelEye,
        Action::SnapToObject,
        Action::ClickToBox,
        Action::Help,
    ];

    /// The name used in the settings file.
    pub fn name(self) -> &'static str {
        match self {
            Action::Undo => "undo",
            Action::Redo => "redo",
            Action::NextBox => "next_box",
            Action::PreviousBox => "previous_box",
            Action::EditQuestion => "edit_question",
            Action::Deselect => "deselect",
            Action::Duplicate => "duplicate",
            Action::Delete => "delete",
            Action::DrawTwoClicks => "draw_two_clicks",
            Action::NextImage => "next_image",
            Action::PreviousImage => "previous_image",
            Action::ModelEye => "model_eye",
            Action::SnapToObject => "snap_to_object",
            Action::ClickToBox => "click_to_box",
            Action::Help => "help",
        }
    }

    /// What it does, for the help overlay.
    pub fn describe(self) -> &'static str {
        match self {
            Action::Undo => "undo (also after a restart)",
            Action::Redo => "redo",
            Action::NextBox => "next box, centred",
            Action::PreviousBox => "previous box, centred",
            Action::EditQuestion => {
                "edit the selected box's question (accept a proposed box when one is shown)"
            }
            Action::Deselect => {
                "deselect (or cancel a two-click box, drop a proposed box, stop the assist)"
            }
            Action::Duplicate => "duplicate the selected box",
            Action::Delete => "delete the selected box",
            Action::DrawTwoClicks => "draw a box by two clicks (corner, then opposite corner)",
            Action::NextImage => "next image",
            Action::PreviousImage => "previous image",
            Action::ModelEye => "model-eye view: the image as the VLM receives it",
            Action::SnapToObject => "snap the selected box to the object inside it",
            Action::ClickToBox => {
                "click-to-box on/off: a click (or a rough box) proposes the object's box; \
                 Shift+click leaves a point out (SAM)"
            }
            Action::Help => "this help",
        }
    }

    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The keys an action has before the user changes them (the first is the one shown).
    fn defaults(self) -> Vec<KeyboardShortcut> {
        let k = KeyboardShortcut::new;
        match self {
            Action::Undo => vec![k(Modifiers::COMMAND, Key::Z)],
            Action::Redo => vec![
                k(Modifiers::COMMAND | Modifiers::SHIFT, Key::Z),
                k(Modifiers::COMMAND, Key::Y),
            ],
            Action::NextBox => vec![k(Modifiers::NONE, Key::Tab)],
            Action::PreviousBox => vec![k(Modifiers::SHIFT, Key::Tab)],
            Action::EditQuestion => vec![k(Modifiers::NONE, Key::Enter)],
            Action::Deselect => vec![k(Modifiers::NONE, Key::Escape)],
            Action::Duplicate => vec![k(Modifiers::COMMAND, Key::D)],
            Action::Delete => vec![
                k(Modifiers::NONE, Key::Delete),
                k(Modifiers::NONE, Key::Backspace),
            ],
            Action::DrawTwoClicks => vec![k(Modifiers::NONE, Key::N)],
            Action::NextImage => vec![k(Modifiers::NONE, Key::PageDown)],
            Action::PreviousImage => vec![k(Modifiers::NONE, Key::PageUp)],
            Action::ModelEye => vec![k(Modifiers::NONE, Key::M)],
            Action::SnapToObject => vec![k(Modifiers::NONE, Key::S)],
            Action::ClickToBox => vec![k(Modifiers::NONE, Key::C)],
            Action::Help => vec![
                k(Modifiers::NONE, Key::Questionmark),
                k(Modifiers::NONE, Key::F1),
            ],
        }
    }
}

/// Keys that move boxes and the view; not configurable (they follow the arrow keys).
pub const FIXED: &[(&str, &str)] = &[
    (
        "drag on the image",
        "draw a box (on a box: move it; on a handle: resize)",
    ),
    ("click", "select the smallest box under the pointer"),
    ("middle or right drag, Space+drag", "pan"),
    ("wheel", "zoom about the pointer"),
    ("+ / -", "zoom in / out"),
    ("0 / 1", "fit / 100 %"),
    (
        "arrows",
        "move the selected box 1 px (pan when none is selected)",
    ),
    ("Shift+arrows", "move the selected box 10 px"),
    ("Alt+arrows", "move its right or bottom edge"),
    ("Ctrl+arrows", "move its left or top edge"),
];

/// A shortcut that cannot be read or is taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KeymapError {
    #[error("unknown action \"{0}\"")]
    UnknownAction(String),
    #[error("\"{0}\" is not a key (try e.g. \"Ctrl+Shift+Z\", \"N\", \"F2\")")]
    BadKey(String),
    #[error("{key} is already used by \"{by}\"")]
    Taken { key: String, by: &'static str },
    #[error("arrow keys are reserved for moving boxes and the view")]
    Reserved,
}

/// Read "Ctrl+Shift+Z" (also "Cmd", "Alt", "Shift"; key names as egui spells them).
pub fn parse(text: &str) -> Result<KeyboardShortcut, KeymapError> {
    let bad = || KeymapError::BadKey(text.to_owned());
    let mut mods = Modifiers::NONE;
    let mut key = None;
    for part in text.split('+').map(str::trim) {
        match part.to_ascii_lowercase().as_str() {
            "ctrl" | "cmd" | "command" => mods |= Modifiers::COMMAND,
            "alt" | "option" => mods |= Modifiers::ALT,
            "shift" => mods |= Modifiers::SHIFT,
            "" => return Err(bad()),
            _ if key.is_none() => key = Some(Key::from_name(part).ok_or_else(bad)?),
            _ => return Err(bad()),
        }
    }
    let key = key.ok_or_else(bad)?;
    if matches!(
        key,
        Key::ArrowLeft | Key::ArrowRight | Key::ArrowUp | Key::ArrowDown
    ) {
        return Err(KeymapError::Reserved);
    }
    Ok(KeyboardShortcut::new(mods, key))
}

/// The text form of a shortcut, readable by [`parse`].
pub fn format(s: &KeyboardShortcut) -> String {
    let mut out = String::new();
    if s.modifiers.command || s.modifiers.ctrl || s.modifiers.mac_cmd {
        out.push_str("Ctrl+");
    }
    if s.modifiers.alt {
        out.push_str("Alt+");
    }
    if s.modifiers.shift {
        out.push_str("Shift+");
    }
    out.push_str(s.logical_key.name());
    out
}

/// The keys in force: the defaults with the user's changes applied.
#[derive(Debug, Clone)]
pub struct Keymap {
    bindings: BTreeMap<Action, Vec<KeyboardShortcut>>,
}

impl Default for Keymap {
    fn default() -> Self {
        Self {
            bindings: Action::ALL.iter().map(|a| (*a, a.defaults())).collect(),
        }
    }
}

impl Keymap {
    /// The defaults with the user's saved keys (action name -> key text). Bad entries are
    /// returned as errors beside the keymap and leave that action's defaults in place.
    pub fn with_overrides(saved: &BTreeMap<String, String>) -> (Self, Vec<KeymapError>) {
        let mut map = Self::default();
        let mut errors = Vec::new();
        for (name, key) in saved {
            let result = Action::from_name(name)
                .ok_or_else(|| KeymapError::UnknownAction(name.clone()))
                .and_then(|action| map.rebind(action, parse(key)?));
            if let Err(e) = result {
                errors.push(e);
            }
        }
        (map, errors)
    }

    /// Give `action` this one key; refused when another action has it.
    pub fn rebind(&mut self, action: Action, key: KeyboardShortcut) -> Result<(), KeymapError> {
        if let Some(other) = self.action_of(&key).filter(|a| *a != action) {
            return Err(KeymapError::Taken {
                key: format(&key),
                by: other.name(),
            });
        }
        self.bindings.insert(action, vec![key]);
        Ok(())
    }

    /// The action a shortcut triggers, if any.
    pub fn action_of(&self, key: &KeyboardShortcut) -> Option<Action> {
        self.bindings
            .iter()
            .find(|(_, keys)| keys.iter().any(|k| same(k, key)))
            .map(|(a, _)| *a)
    }

    /// The shortcuts of an action, as text ("Ctrl+Shift+Z / Ctrl+Y").
    pub fn label(&self, action: Action) -> String {
        self.bindings
            .get(&action)
            .map(|keys| keys.iter().map(format).collect::<Vec<_>>().join(" / "))
            .unwrap_or_default()
    }

    /// The user's changes from the defaults, for the settings file.
    pub fn overrides(&self) -> BTreeMap<String, String> {
        self.bindings
            .iter()
            .filter(|(a, keys)| **keys != a.defaults())
            .map(|(a, keys)| {
                (
                    a.name().to_owned(),
                    keys.first().map(format).unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Was `action` pressed this frame? Consumes the key. Shortcuts with more modifiers are
    /// tried first by the caller's order; here the match is exact on Shift and Alt, so
    /// Shift+Tab never counts as Tab.
    pub fn pressed(&self, ctx: &egui::Context, action: Action) -> bool {
        let Some(keys) = self.bindings.get(&action) else {
            return false;
        };
        ctx.input_mut(|i| {
            keys.iter().any(|k| {
                let hit = i.events.iter().any(|e| match e {
                    egui::Event::Key {
                        key,
                        pressed: true,
                        modifiers,
                        ..
                    } => *key == k.logical_key && mods_match(*modifiers, k.modifiers),
                    _ => false,
                });
                hit && i.consume_shortcut(k)
            })
        })
    }
}

fn mods_match(pressed: Modifiers, wanted: Modifiers) -> bool {
    pressed.shift == wanted.shift && pressed.alt == wanted.alt && pressed.command == wanted.command
}

fn same(a: &KeyboardShortcut, b: &KeyboardShortcut) -> bool {
    a.logical_key == b.logical_key && mods_match(a.modifiers, b.modifiers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip() {
        for text in ["Ctrl+Shift+Z", "N", "F2", "Alt+M", "Ctrl+D", "Escape"] {
            let s = parse(text).unwrap();
            assert_eq!(format(&s), text);
        }
        assert_eq!(
            parse("shift+ctrl+z").unwrap(),
            parse("Ctrl+Shift+Z").unwrap()
        );
    }

    #[test]
    fn bad_keys_are_named() {
        assert_eq!(parse("Ctrl+"), Err(KeymapError::BadKey("Ctrl+".into())));
        assert_eq!(parse("Hyper+Q"), Err(KeymapError::BadKey("Hyper+Q".into())));
        assert_eq!(parse("A+B"), Err(KeymapError::BadKey("A+B".into())));
        assert_eq!(parse("Shift+ArrowUp"), Err(KeymapError::Reserved));
    }

    #[test]
    fn a_taken_key_is_refused_and_nothing_changes() {
        let mut map = Keymap::default();
        let err = map
            .rebind(Action::ModelEye, parse("Ctrl+Z").unwrap())
            .unwrap_err();
        assert_eq!(
            err,
            KeymapError::Taken {
                key: "Ctrl+Z".into(),
                by: "undo"
            }
        );
        assert_eq!(map.label(Action::ModelEye), "M");
        assert!(map.overrides().is_empty());
    }

    #[test]
    fn saved_overrides_apply_and_bad_ones_are_reported() {
        let saved: BTreeMap<String, String> = [
            ("model_eye", "F3"),
            ("draw_two_clicks", "B"),
            ("fly", "X"),
            ("help", "Ctrl+"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        let (map, errors) = Keymap::with_overrides(&saved);
        assert_eq!(map.label(Action::ModelEye), "F3");
        assert_eq!(
            map.action_of(&parse("B").unwrap()),
            Some(Action::DrawTwoClicks)
        );
        assert_eq!(map.action_of(&parse("N").unwrap()), None);
        assert_eq!(map.label(Action::Help), "Questionmark / F1");
        assert_eq!(errors.len(), 2, "{errors:?}");
        let back = map.overrides();
        assert_eq!(back.get("model_eye").map(String::as_str), Some("F3"));
        assert_eq!(back.len(), 2);
    }

    #[test]
    fn shift_tab_is_not_tab() {
        let map = Keymap::default();
        let shift_tab = KeyboardShortcut::new(Modifiers::SHIFT, Key::Tab);
        assert_eq!(map.action_of(&shift_tab), Some(Action::PreviousBox));
    }
}
