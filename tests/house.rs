//! The house rules of the source layout, checked on the tree itself: no file in `src/` over
//! 800 lines, `app/mod.rs` under 600 and `main.rs` under 200, no function in `src/app` or
//! `src/cli` over 120 lines, and every folder of `src/` named in the README's source layout.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn line_count(p: &Path) -> usize {
    std::fs::read_to_string(p).unwrap().lines().count()
}

/// Each function of a file formatted by rustfmt: its name and its length in lines, from its
/// `fn` line to the closing brace at the same indentation.
fn functions(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let rest = [
            "pub(crate) ",
            "pub(super) ",
            "pub ",
            "const ",
            "async ",
            "unsafe ",
        ]
        .iter()
        .fold(trimmed, |t, p| t.strip_prefix(p).unwrap_or(t));
        let Some(sig) = rest.strip_prefix("fn ") else {
            continue;
        };
        let name: String = sig
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let close = format!("{indent}}}");
        if let Some(end) = lines[i..].iter().position(|l| *l == close) {
            // A one-line declaration (a trait method without a body) ends with `;` first.
            let declaration = lines[i..i + end]
                .iter()
                .any(|l| l.trim_end().ends_with(';'))
                && !lines[i..i + end]
                    .iter()
                    .any(|l| l.trim_end().ends_with('{'));
            if !declaration {
                out.push((name, end + 1));
            }
        }
    }
    out
}

#[test]
fn no_source_file_is_over_its_limit() {
    let src = root().join("src");
    let mut over = Vec::new();
    for f in rust_files(&src) {
        let limit = match f.strip_prefix(&src).unwrap().to_str().unwrap() {
            "app/mod.rs" => 599,
            "main.rs" => 199,
            _ => 800,
        };
        let n = line_count(&f);
        if n > limit {
            over.push(format!("{} has {n} lines (at most {limit})", f.display()));
        }
    }
    assert!(over.is_empty(), "{over:#?}");
}

#[test]
fn no_function_of_the_app_or_the_cli_is_over_120_lines() {
    let mut over = Vec::new();
    for dir in ["src/app", "src/cli"] {
        for f in rust_files(&root().join(dir)) {
            for (name, n) in functions(&std::fs::read_to_string(&f).unwrap()) {
                if n > 120 {
                    over.push(format!("{}: fn {name} has {n} lines", f.display()));
                }
            }
        }
    }
    assert!(over.is_empty(), "{over:#?}");
}

#[test]
fn the_function_measure_finds_functions_and_their_length() {
    let text = "impl X {\n    pub fn a(&self) {\n        x();\n    }\n\n    fn b();\n}\n\nfn c() {\n    y();\n    z();\n}\n";
    assert_eq!(
        functions(text),
        vec![("a".to_owned(), 3), ("c".to_owned(), 4)]
    );
}

#[test]
fn every_source_folder_is_in_the_readmes_layout() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme.find("## Source layout").unwrap();
    let layout = &readme[start..];
    let mut missing = Vec::new();
    for e in std::fs::read_dir(root().join("src")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        let entry = if p.is_dir() {
            format!("src/{name}/")
        } else {
            format!("src/{name}")
        };
        if !layout.contains(&entry) {
            missing.push(entry);
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "not in the README's layout: {missing:?}"
    );
}
