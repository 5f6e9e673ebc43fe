//! COCO JSON: images, categories and boxes, and our questions kept in its extra fields.

use super::*;

pub(super) fn read_coco(
    b: &mut Builder,
    path: &Path,
    cancel: &AtomicBool,
) -> Result<(), ExchangeError> {
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    let root: Value = serde_json::from_str(&text).map_err(|e| ExchangeError::Input {
        path: path.to_owned(),
        message: format!("not JSON: {e}"),
    })?;
    let array = |key: &str| {
        root.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut categories: HashMap<i64, String> = HashMap::new();
    for (i, c) in array("categories").iter().enumerate() {
        match (
            c.get("id").and_then(Value::as_i64),
            c.get("name").and_then(Value::as_str),
        ) {
            (Some(id), Some(name)) => {
                let label = if name == crate::exchange::coco::UNLABELLED {
                    ""
                } else {
                    name
                };
                categories.insert(id, label.to_owned());
            }
            _ => b.problem(format!("categories[{i}]"), "needs a numeric id and a name"),
        }
    }
    let mut images: HashMap<i64, ImageRecord> = HashMap::new();
    for (i, img) in array("images").iter().enumerate() {
        check_cancel(cancel)?;
        let at = format!("images[{i}]");
        let (Some(id), Some(name)) = (
            img.get("id").and_then(Value::as_i64),
            img.get("file_name").and_then(Value::as_str),
        ) else {
            b.problem(at, "needs a numeric id and a file_name");
            continue;
        };
        let Some(record) = b.image(&at, name) else {
            continue;
        };
        let (w, h) = (
            img.get("width").and_then(Value::as_u64),
            img.get("height").and_then(Value::as_u64),
        );
        if let (Some(w), Some(h)) = (w, h)
            && (w, h) != (u64::from(record.size.width), u64::from(record.size.height))
        {
            b.problem(
                &at,
                format!(
                    "says {w}x{h} but the file is {}; boxes are checked against the file",
                    record.size
                ),
            );
        }
        images.insert(id, record);
    }
    let mut regions_by_ann: HashMap<i64, RegionId> = HashMap::new();
    for (i, a) in array("annotations").iter().enumerate() {
        let at = format!("annotations[{i}]");
        let Some(image_id) = a.get("image_id").and_then(Value::as_i64) else {
            b.problem(at, "no image_id");
            continue;
        };
        let Some(image) = images.get(&image_id).cloned() else {
            b.problem(
                at,
                format!("no image with id {image_id} (dangling image id)"),
            );
            continue;
        };
        let label = match a.get("category_id").and_then(Value::as_i64) {
            Some(c) => match categories.get(&c) {
                Some(name) => name.clone(),
                None => {
                    b.problem(at, format!("unknown category id {c}"));
                    continue;
                }
            },
            None => {
                b.problem(at, "no category_id");
                continue;
            }
        };
        let bbox: Option<Vec<f64>> = a
            .get("bbox")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_f64).collect());
        let Some([x, y, w, h]) = bbox.and_then(|v| <[f64; 4]>::try_from(v).ok()) else {
            b.problem(at, "bbox is not four numbers [x, y, width, height]");
            continue;
        };
        if w <= 0.0 || h <= 0.0 {
            b.problem(at, "bbox has no area");
            continue;
        }
        let id = a
            .get("thyme_region_id")
            .and_then(Value::as_str)
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .map(RegionId);
        if let Some(region) = b.region(&at, &image, ImageRect::from_xywh(x, y, w, h), &label, id)
            && let Some(ann) = a.get("id").and_then(Value::as_i64)
        {
            regions_by_ann.insert(ann, region);
        }
    }
    for (i, q) in array("thyme_questions").iter().enumerate() {
        let at = format!("thyme_questions[{i}]");
        let Some(image) = q
            .get("image_id")
            .and_then(Value::as_i64)
            .and_then(|id| images.get(&id).cloned())
        else {
            b.problem(at, "no image with that image_id");
            continue;
        };
        let links: Vec<RegionId> = q
            .get("annotation_ids")
            .and_then(Value::as_array)
            .map(|v| {
                v.iter()
                    .filter_map(Value::as_i64)
                    .filter_map(|a| regions_by_ann.get(&a).copied())
                    .collect()
            })
            .unwrap_or_default();
        match question_from_value(b, q, &image, links) {
            Ok(question) => b.question(&at, question),
            Err(m) => b.problem(at, m),
        }
    }
    Ok(())
}

/// A question from our own fields (`question`, `kind`, `options`, `correct`, `solution`,
/// `category`, `review`, `id`), as the COCO extension and the Thyme RL export write them.
pub(super) fn question_from_value(
    b: &mut Builder,
    v: &Value,
    image: &ImageRecord,
    links: Vec<RegionId>,
) -> Result<Question, String> {
    let text = v
        .get("question")
        .and_then(Value::as_str)
        .ok_or("no question text")?;
    let solution = v.get("solution").and_then(Value::as_str).unwrap_or("");
    let options: Option<Vec<String>> = v.get("options").and_then(Value::as_array).map(|o| {
        o.iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    });
    let answer = match (v.get("kind").and_then(Value::as_str), options) {
        (Some("choice"), Some(options)) => {
            let correct = v
                .get("correct")
                .and_then(Value::as_u64)
                .map(|c| c as usize)
                .or_else(|| options.iter().position(|o| o == solution))
                .or_else(|| letter_index(solution))
                .ok_or("cannot tell which option is correct")?;
            Answer::Choice { options, correct }
        }
        _ => Answer::Open {
            text: thyme_row::solution(solution).to_owned(),
        },
    };
    let category = b.category(v.get("category").and_then(Value::as_str));
    let mut q = Question::new(image.id.clone(), links, text, answer, category);
    if let Some(id) = v
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
    {
        q.id = QuestionId(id);
    }
    q.review = v
        .get("review")
        .and_then(Value::as_str)
        .and_then(crate::dataset::question::legacy_review);
    Ok(q)
}

/// "B" -> 1.
pub(super) fn letter_index(s: &str) -> Option<usize> {
    let s = s.trim().trim_end_matches('.');
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_uppercase() => Some((c as u8 - b'A') as usize),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_letters_name_their_option() {
        assert_eq!(letter_index("B"), Some(1));
        assert_eq!(letter_index("B."), Some(1));
        assert_eq!(letter_index("Blue"), None);
    }
}
