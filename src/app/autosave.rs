//! Typed text is saved within about a second of the last keystroke, not only when its field
//! loses focus, so a crash mid-typing loses at most that second. The saves of one visit to a
//! field share a visit id: the store undoes them together, so undo still takes back a whole
//! phrase, not a keystroke.

use std::time::{Duration, Instant};

/// How long after the last keystroke typed text is saved.
pub const QUIET: Duration = Duration::from_millis(800);

/// The field being typed in: which one, its visit, and when its text last changed.
#[derive(Debug, Default)]
pub struct Autosave {
    field: Option<Field>,
}

#[derive(Debug)]
struct Field {
    key: String,
    visit: String,
    text: String,
    changed_at: Instant,
    saved_text: Option<String>,
}

impl Autosave {
    /// Note what the field `key` holds now (`unsaved`: it differs from what is stored).
    /// Returns the visit id when the text has been quiet long enough to be saved.
    pub fn tick(&mut self, key: &str, text: &str, unsaved: bool, now: Instant) -> Option<String> {
        let same_field = self.field.as_ref().is_some_and(|f| f.key == key);
        if !same_field {
            if !unsaved {
                return None;
            }
            self.field = Some(Field {
                key: key.to_owned(),
                visit: uuid::Uuid::new_v4().to_string(),
                text: text.to_owned(),
                changed_at: now,
                saved_text: None,
            });
        }
        let f = self.field.as_mut()?;
        if f.text != text {
            f.text = text.to_owned();
            f.changed_at = now;
        }
        let due = unsaved
            && now.duration_since(f.changed_at) >= QUIET
            && f.saved_text.as_deref() != Some(text);
        if due {
            f.saved_text = Some(text.to_owned());
            Some(f.visit.clone())
        } else {
            None
        }
    }

    /// The visit of `key` (for the save when the field is left), ending it.
    pub fn finish(&mut self, key: &str) -> Option<String> {
        if self.field.as_ref().is_some_and(|f| f.key == key) {
            self.field.take().map(|f| f.visit)
        } else {
            None
        }
    }

    /// When the next save may be due (so the app can ask for a repaint then).
    pub fn next_due(&self) -> Option<Duration> {
        let f = self.field.as_ref()?;
        (f.saved_text.as_deref() != Some(f.text.as_str()))
            .then(|| QUIET.saturating_sub(f.changed_at.elapsed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_due_once_it_has_been_quiet_and_the_visit_stays_the_same() {
        let mut a = Autosave::default();
        let t0 = Instant::now();
        assert_eq!(a.tick("q", "Wh", true, t0), None);
        assert_eq!(
            a.tick("q", "What", true, t0 + Duration::from_millis(300)),
            None
        );
        let v1 = a
            .tick("q", "What", true, t0 + Duration::from_millis(1200))
            .unwrap();
        // Saved once: not due again until it changes.
        assert_eq!(
            a.tick("q", "What", true, t0 + Duration::from_millis(2500)),
            None
        );
        assert_eq!(
            a.tick("q", "What is", true, t0 + Duration::from_millis(2600)),
            None
        );
        let v2 = a
            .tick("q", "What is", true, t0 + Duration::from_millis(3600))
            .unwrap();
        assert_eq!(v1, v2, "one visit");
        assert_eq!(a.finish("q"), Some(v1));
        assert_eq!(a.finish("q"), None);
    }

    #[test]
    fn a_field_with_nothing_unsaved_starts_no_visit() {
        let mut a = Autosave::default();
        assert_eq!(a.tick("q", "same", false, Instant::now()), None);
        assert!(a.next_due().is_none());
    }
}
