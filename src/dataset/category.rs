//! Question categories: the built-in ones of the Thyme data set plus the user's own.

use serde::{Deserialize, Serialize};

/// A category of question, identified by its lowercase name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Category {
    pub name: String,
    pub builtin: bool,
}

/// The categories every project starts with.
pub const BUILTIN: [&str; 6] = [
    "ocr",
    "attribute",
    "position",
    "quantity",
    "recognition",
    "chart",
];

impl Category {
    /// A user-defined category; the name is trimmed and lower-cased.
    pub fn custom(name: &str) -> Self {
        Self {
            name: normalize_name(name),
            builtin: false,
        }
    }

    pub fn builtins() -> Vec<Category> {
        BUILTIN
            .iter()
            .map(|n| Category {
                name: (*n).to_owned(),
                builtin: true,
            })
            .collect()
    }

    /// A name for display: "OCR", "Attribute", ...
    pub fn display_name(&self) -> String {
        display_name(&self.name)
    }
}

/// The canonical form of a category name.
pub fn normalize_name(name: &str) -> String {
    name.trim().to_lowercase()
}

/// A category name for display.
pub fn display_name(name: &str) -> String {
    if name == "ocr" {
        return "OCR".to_owned();
    }
    let mut chars = name.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_names_are_normalised() {
        assert_eq!(Category::custom("  Counting ").name, "counting");
    }

    #[test]
    fn display_names() {
        assert_eq!(display_name("ocr"), "OCR");
        assert_eq!(display_name("attribute"), "Attribute");
        assert_eq!(display_name(""), "");
    }
}
