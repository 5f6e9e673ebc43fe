//! The fields of a Thyme row as every reader takes them: the image of a record (`images` as a
//! list of paths or of `{"path": ...}` objects, or `image`), the question without the
//! `<image>` tag and the path/size headers Thyme's user turn carries, and the solution without
//! its `<answer>` tags and `\boxed{}`. The trace readers, the annotation import and the batch
//! runner all read rows through these, so a row means the same thing to each.

use serde_json::Value;

use super::tags;

/// The first image path of a record: `images` (a string, or a list of paths or of objects
/// with a `path`) or `image`.
pub fn first_image(v: &Value) -> Option<&str> {
    for key in ["images", "image"] {
        match v.get(key) {
            Some(Value::String(s)) => return Some(s),
            Some(Value::Array(a)) => {
                let first = a.first();
                if let Some(s) = first
                    .and_then(Value::as_str)
                    .or_else(|| first?.get("path")?.as_str())
                {
                    return Some(s);
                }
            }
            _ => {}
        }
    }
    None
}

/// The question without the `<image>` tag and the path/size headers of Thyme's user turn.
pub fn bare_question(text: &str) -> &str {
    let t = text.trim_start();
    let t = t.strip_prefix("<image>").unwrap_or(t);
    let t = match t.find("### User Image Path:**") {
        Some(at) => &t[..at],
        None => t,
    };
    t.trim()
}

/// The user turn of a prompt rendered with the chat template (`<|im_start|>user\n ...
/// <|im_end|>`, the last one when there are several), with each vision block
/// (`<|vision_start|>...<|vision_end|>`, whatever stands for the image's tokens) put back as
/// `<image>`. Text that is not a rendered template comes back as it is.
pub fn rendered_user_turn(prompt: &str) -> String {
    const USER: &str = "<|im_start|>user\n";
    let Some(at) = prompt.rfind(USER) else {
        return prompt.to_owned();
    };
    let turn = &prompt[at + USER.len()..];
    let turn = turn.find("<|im_end|>").map_or(turn, |end| &turn[..end]);
    let mut out = String::with_capacity(turn.len());
    let mut rest = turn;
    while let Some(start) = rest.find("<|vision_start|>") {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        match after.find("<|vision_end|>") {
            Some(end) => {
                out.push_str("<image>");
                rest = &after[end + "<|vision_end|>".len()..];
            }
            None => {
                rest = after;
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The image path Thyme's user turn names in its `### User Image Path:** "..."` header.
pub fn header_image_path(text: &str) -> Option<&str> {
    const HEADER: &str = "### User Image Path:**";
    let after = &text[text.find(HEADER)? + HEADER.len()..];
    let line = after.lines().next()?.trim();
    let path = line
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or(line);
    (!path.is_empty()).then_some(path)
}

/// A solution as stored in a row (`<answer>\boxed{B}</answer>`, `\boxed{B}` or `B`) -> `B`.
pub fn solution(s: &str) -> &str {
    let t = s.trim();
    tags::unbox(tags::between(t, "<answer>", "</answer>").unwrap_or(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn thyme_user_turns_lose_their_headers() {
        let t = "<image>\nWhat colour is the car?\n\n### User Image Path:** \"/a.jpg\"\n### User Image Size:** \"10x10\"\n";
        assert_eq!(bare_question(t), "What colour is the car?");
        assert_eq!(bare_question("  plain? "), "plain?");
    }

    #[test]
    fn rendered_prompts_give_their_user_turn_and_its_image_path() {
        let fork = "<|im_start|>system\nBe careful.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is it?\n\n### User Image Path:** \"/d/a b.jpg\"\n### User Image Size:** \"30x20\"\n<|im_end|>\n<|im_start|>assistant\n";
        let turn = rendered_user_turn(fork);
        assert!(turn.starts_with("<image>What is it?"), "{turn}");
        assert_eq!(bare_question(&turn), "What is it?");
        assert_eq!(header_image_path(&turn), Some("/d/a b.jpg"));
        let decoded = fork.replace("<|image_pad|>", "[151655 * 1196]");
        assert_eq!(rendered_user_turn(&decoded), turn);
        // Not a rendered template: as it is; no header: no path.
        assert_eq!(rendered_user_turn("plain?"), "plain?");
        assert_eq!(header_image_path("plain?"), None);
        assert_eq!(
            header_image_path("### User Image Path:** x.png"),
            Some("x.png")
        );
        // A vision block left open keeps the rest.
        assert_eq!(
            rendered_user_turn("<|im_start|>user\nA<|vision_start|>B"),
            "A<|vision_start|>B"
        );
    }

    #[test]
    fn solutions_lose_their_tags_and_box() {
        assert_eq!(solution("<answer>\\boxed{B}</answer>"), "B");
        assert_eq!(solution(" \\boxed{42} "), "42");
        assert_eq!(solution("\\boxed{ {a} b }"), "{a} b");
        assert_eq!(solution("STOP"), "STOP");
    }

    #[test]
    fn the_image_is_read_from_every_shape() {
        assert_eq!(first_image(&json!({"images": ["a.jpg"]})), Some("a.jpg"));
        assert_eq!(
            first_image(&json!({"images": [{"path": "b.jpg"}]})),
            Some("b.jpg")
        );
        assert_eq!(first_image(&json!({"images": "c.jpg"})), Some("c.jpg"));
        assert_eq!(
            first_image(&json!({"images": [], "image": "d.jpg"})),
            Some("d.jpg")
        );
        assert_eq!(first_image(&json!({"question": "q"})), None);
    }
}
