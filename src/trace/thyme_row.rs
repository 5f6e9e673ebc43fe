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
