//! The tags of Thyme-style model output: the first `<code>` block (optional ``` fence and
//! `python` tag, as the reference parser accepts), `<sandbox_output>`, `<answer>` with
//! `\boxed{}` unwrapped, and the format the format reward requires.

/// The text between the first `open` and the next `close` after it.
pub fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

/// The code of the first `<code>` block, without its fence.
pub fn first_code(text: &str) -> Option<String> {
    let inner = between(text, "<code>", "</code>")?;
    Some(unfence(inner))
}

/// Strip a Markdown fence (```python ... ```) when there is one.
pub fn unfence(code: &str) -> String {
    let t = code.trim();
    if let Some(rest) = t.strip_prefix("```") {
        let rest = rest
            .strip_prefix("python")
            .or_else(|| rest.strip_prefix("py"))
            .unwrap_or(rest);
        let body = rest.strip_suffix("```").unwrap_or(rest);
        return body.trim_matches('\n').to_owned() + "\n";
    }
    t.to_owned() + "\n"
}

/// `text` with the code of its first `<code>` block replaced by `code`, written the way the
/// block was (fenced as ```python when it was fenced); `None` when there is no block.
pub fn replace_first_code(text: &str, code: &str) -> Option<String> {
    let start = text.find("<code>")? + "<code>".len();
    let end = text[start..].find("</code>")? + start;
    let inner = &text[start..end];
    let code = code.trim_matches('\n');
    let written = match inner.trim().strip_prefix("```") {
        Some(rest) => {
            let lang = ["python", "py"]
                .into_iter()
                .find(|l| rest.starts_with(l))
                .unwrap_or("");
            format!("\n```{lang}\n{code}\n```\n")
        }
        None => format!("\n{code}\n"),
    };
    Some(format!("{}{written}{}", &text[..start], &text[end..]))
}

/// The first `<answer>...</answer>`, trimmed, with `\boxed{}` unwrapped.
pub fn extract_answer(text: &str) -> Option<&str> {
    let a = between(text, "<answer>", "</answer>")?.trim();
    Some(unbox(a))
}

/// `\boxed{x}` -> `x`.
pub fn unbox(s: &str) -> &str {
    let t = s.trim();
    match t.find("\\boxed{") {
        Some(at) => {
            let inner = &t[at + "\\boxed{".len()..];
            // The matching brace, counting nested ones.
            let mut depth = 1;
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            return inner[..i].trim();
                        }
                    }
                    _ => {}
                }
            }
            t
        }
        None => t,
    }
}

fn normalise(s: &str) -> String {
    s.trim()
        .trim_end_matches(['.', '!', '?'])
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Does an answer match the ground truth? Case, spacing and a final full stop do not count;
/// a ground truth that is one option letter ("B") matches "B", "B." and "B. blue", and a ground
/// truth that is an option's text ("blue", as V* keeps it) matches "B. blue".
pub fn answers_match(answer: &str, truth: &str) -> bool {
    let (a, t) = (normalise(answer), normalise(truth));
    if a == t {
        return true;
    }
    let mut chars = a.chars();
    if let (Some(l), Some('.' | ')')) = (chars.next(), chars.next())
        && l.is_ascii_alphabetic()
        && t.chars().count() > 1
        && normalise(chars.as_str()) == t
    {
        return true;
    }
    let letter = t.len() == 1 && t.chars().all(|c| c.is_ascii_alphabetic());
    letter
        && a.starts_with(&t)
        && a[t.len()..]
            .chars()
            .next()
            .is_some_and(|c| !c.is_alphanumeric())
}

/// Thyme's format rule for a final turn: `</think>`, exactly one whitespace character, then
/// `<answer>...</answer>` ending the text. `Err` says what is wrong.
pub fn check_format(text: &str) -> Result<(), &'static str> {
    let Some(at) = text.rfind("</think>") else {
        return Err("no </think>");
    };
    let rest = &text[at + "</think>".len()..];
    let mut chars = rest.chars();
    match (chars.next(), chars.next()) {
        (Some(w), Some(n)) if w.is_whitespace() && !n.is_whitespace() => {}
        _ => return Err("not exactly one whitespace between </think> and <answer>"),
    }
    let tail = rest.trim_start();
    if !tail.starts_with("<answer>") {
        return Err("<answer> does not follow </think>");
    }
    if !tail.trim_end().ends_with("</answer>") || tail.matches("<answer>").count() != 1 {
        return Err("the text does not end with one <answer>...</answer>");
    }
    Ok(())
}

/// A piece of an assistant turn in Thyme's format.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Model text (reasoning, the code cell, the answer), with the stop string it ended at.
    Text { text: String, stop: Option<String> },
    /// A code cell's output as spliced back: text, and how many `<image>` placeholders.
    Output { text: String, images: usize },
}

/// Split an assistant turn with spliced `<sandbox_output>` blocks into model text and
/// outputs, in order.
pub fn split_turn(turn: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut rest = turn;
    while let Some(open) = rest.find("<sandbox_output>") {
        let (before, after) = rest.split_at(open);
        let stop = before
            .trim_end()
            .ends_with("</code>")
            .then(|| "</code>".to_owned());
        if !before.trim().is_empty() {
            pieces.push(Piece::Text {
                text: before.to_owned(),
                stop,
            });
        }
        let after = &after["<sandbox_output>".len()..];
        let (output, next) = match after.find("</sandbox_output>") {
            Some(close) => (&after[..close], &after[close + "</sandbox_output>".len()..]),
            None => (after, ""),
        };
        pieces.push(Piece::Output {
            text: output.replace("<image>", "").trim().to_owned(),
            images: output.matches("<image>").count(),
        });
        rest = next;
    }
    if !rest.trim().is_empty() {
        let stop = rest.contains("</answer>").then(|| "</answer>".to_owned());
        pieces.push(Piece::Text {
            text: rest.to_owned(),
            stop,
        });
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_blocks_with_and_without_fences() {
        let t = "<think>look</think><code>\n```python\nprint(1)\n```\n</code>";
        assert_eq!(first_code(t).as_deref(), Some("print(1)\n"));
        assert_eq!(first_code("<code>x = 2</code>").as_deref(), Some("x = 2\n"));
        assert_eq!(first_code("no code"), None);
    }

    #[test]
    fn answers_unbox_and_match() {
        assert_eq!(
            extract_answer("<answer> \\boxed{ {a} b } </answer>"),
            Some("{a} b")
        );
        assert_eq!(extract_answer("<answer>B</answer>"), Some("B"));
        assert!(answers_match("Stop.", "stop"));
        assert!(answers_match("B. blue", "B"));
        assert!(!answers_match("Blue", "B"));
        assert!(!answers_match("3", "4"));
    }

    #[test]
    fn the_format_rule() {
        assert!(check_format("<think>x</think> <answer>4</answer>").is_ok());
        assert!(check_format("<think>x</think>\n<answer>4</answer>\n").is_ok());
        assert!(check_format("<think>x</think><answer>4</answer>").is_err());
        assert!(check_format("<think>x</think>  <answer>4</answer>").is_err());
        assert!(check_format("<think>x</think> <answer>4</answer> more").is_err());
        assert!(check_format("<answer>4</answer>").is_err());
    }

    #[test]
    fn turns_split_at_sandbox_outputs() {
        let turn = "<think>crop</think><code>```python\nprint(p)\n```</code><sandbox_output><image></sandbox_output><think>it says 4</think> <answer>4</answer>";
        let p = split_turn(turn);
        assert_eq!(p.len(), 3);
        assert!(matches!(&p[0], Piece::Text { stop: Some(s), .. } if s == "</code>"));
        assert_eq!(
            p[1],
            Piece::Output {
                text: String::new(),
                images: 1
            }
        );
        assert!(matches!(&p[2], Piece::Text { stop: Some(s), .. } if s == "</answer>"));
    }

    #[test]
    fn an_edited_cell_is_written_back_in_the_blocks_own_form() {
        let fenced = "look <code>\n```python\nx = 1\n```\n</code> then";
        let out = replace_first_code(fenced, "y = 2\nprint(y)\n").unwrap();
        assert_eq!(
            out,
            "look <code>\n```python\ny = 2\nprint(y)\n```\n</code> then"
        );
        assert_eq!(first_code(&out).as_deref(), Some("y = 2\nprint(y)\n"));
        let bare = "<code>x = 1</code>";
        assert_eq!(
            replace_first_code(bare, "z = 3").as_deref(),
            Some("<code>\nz = 3\n</code>")
        );
        assert_eq!(replace_first_code("no code here", "z"), None);
    }

    #[test]
    fn an_option_answer_matches_the_options_text() {
        assert!(answers_match("A. red", "red"));
        assert!(answers_match("B) blue", "Blue"));
        assert!(!answers_match("A. red", "blue"));
        assert!(answers_match("B. blue", "B"));
        assert!(!answers_match("A.", "red"));
    }
}
