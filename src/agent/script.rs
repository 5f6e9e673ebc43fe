//! Scripted model text for demos without weights: for a QA item with a linked box, a turn in
//! Thyme's output format that crops around the box, zooms in, looks, and answers with the
//! annotated answer. It is labelled "scripted" wherever it is shown: it is written from the
//! annotation, never presented as a model's output. The sandbox really runs its code.

use crate::dataset::{Answer, Question, Region};
use crate::geometry::ImageSize;

/// The scripted turn for `question` about `boxes` on an image of `size`; `None` when the
/// question has no box to look at.
pub fn demo_turn(question: &Question, boxes: &[&Region], size: ImageSize) -> Option<String> {
    let first = boxes.first()?;
    // A window around all linked boxes, twice their extent, at least 64 px, on the image.
    let (mut x0, mut y0, mut x1, mut y1) =
        (first.rect.x0, first.rect.y0, first.rect.x1, first.rect.y1);
    for b in boxes {
        x0 = x0.min(b.rect.x0);
        y0 = y0.min(b.rect.y0);
        x1 = x1.max(b.rect.x1);
        y1 = y1.max(b.rect.y1);
    }
    let (w, h) = ((x1 - x0).max(32.0), (y1 - y0).max(32.0));
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let clamp = |v: f64, hi: u32| v.clamp(0.0, f64::from(hi)).round() as i64;
    let (l, t) = (clamp(cx - w, size.width), clamp(cy - h, size.height));
    let (r, b) = (clamp(cx + w, size.width), clamp(cy + h, size.height));
    let zoom = (512.0 / (r - l).max(b - t).max(1) as f64).clamp(1.0, 8.0);
    let answer = match &question.answer {
        Answer::Open { text } => text.clone(),
        Answer::Choice { options, correct } => {
            let letter = crate::agent::profile::option_letter(*correct);
            format!(
                "{letter}. {}",
                options.get(*correct).cloned().unwrap_or_default()
            )
        }
    };
    Some(format!(
        "<think>The object the question is about is small on this {size} image, so I will crop the region around it and zoom in before answering.</think><code>\n```python\nfrom PIL import Image\nimg = Image.open(image_path)\nregion = img.crop(({l}, {t}, {r}, {b}))\nzoomed = region.resize((int(region.width * {zoom:.1}), int(region.height * {zoom:.1})))\nprocessed_path = '/mnt/data/temp_processed_images/zoomed.png'\nzoomed.save(processed_path)\nprint(processed_path)\n```\n</code><think>In the zoomed crop the answer is clear.</think> <answer>{answer}</answer>"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::ImageId;
    use crate::geometry::ImageRect;

    #[test]
    fn the_script_crops_around_the_box_and_answers() {
        let img = ImageId::of_bytes(b"x");
        let r = Region::new(
            img.clone(),
            ImageRect::new(1000.0, 1000.0, 1100.0, 1040.0),
            "sign",
        );
        let q = Question::new(
            img,
            vec![r.id],
            "What does it say?",
            Answer::Open { text: "ML4".into() },
            "ocr",
        );
        let turn = demo_turn(&q, &[&r], ImageSize::new(6000, 4000)).unwrap();
        assert!(turn.contains("img.crop((950, 980, 1150, 1060))"), "{turn}");
        assert!(turn.ends_with("<answer>ML4</answer>"));
        assert!(crate::trace::tags::check_format(&turn[turn.rfind("<think>").unwrap()..]).is_ok());
        let none = Question::new(
            ImageId::of_bytes(b"y"),
            vec![],
            "q",
            Answer::Open { text: "a".into() },
            "ocr",
        );
        assert!(demo_turn(&none, &[], ImageSize::new(10, 10)).is_none());
    }
}
