//! The demo scenes: what is drawn where, and the questions whose answers are known.

use image::RgbImage;

use super::font::{GLYPH_H, text_width};
use super::paint::{self, Color, Shape};
use crate::dataset::Answer;
use crate::geometry::ImageRect;
use crate::rng::Rng;

/// One scene to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SceneSpec {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    pub seed: u64,
}

/// The scenes of the demo project.
pub const SCENES: [SceneSpec; 3] = [
    SceneSpec {
        name: "plaza",
        width: 6000,
        height: 4000,
        seed: 11,
    },
    SceneSpec {
        name: "harbour",
        width: 6000,
        height: 4000,
        seed: 23,
    },
    SceneSpec {
        name: "metropolis",
        width: 12000,
        height: 8000,
        seed: 37,
    },
];

/// An object drawn in a scene, with its exact box.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoObject {
    pub label: String,
    pub rect: ImageRect,
}

/// A question about a scene, linked to objects by index.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoQuestion {
    pub text: String,
    pub answer: Answer,
    pub category: &'static str,
    pub objects: Vec<usize>,
}

/// A rendered scene with its ground truth.
pub struct Scene {
    pub spec: SceneSpec,
    pub image: RgbImage,
    pub objects: Vec<DemoObject>,
    pub questions: Vec<DemoQuestion>,
}

const NAMED_COLORS: [(&str, Color); 6] = [
    ("red", [214, 40, 40]),
    ("blue", [30, 90, 220]),
    ("green", [30, 160, 60]),
    ("orange", [245, 140, 20]),
    ("yellow", [240, 220, 30]),
    ("purple", [130, 50, 170]),
];
const MAGENTA: Color = [250, 0, 200];
const INK: Color = [20, 20, 24];
const PAPER: Color = [248, 248, 240];
/// Sign characters: no O/0 or I/1 pairs, so every answer is readable without doubt.
const SIGN_CHARS: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ23456789";

/// Keeps placed boxes apart.
struct Placer {
    width: u32,
    height: u32,
    margin: i64,
    taken: Vec<(i64, i64, i64, i64)>,
}

impl Placer {
    fn place(&mut self, rng: &mut Rng, w: i64, h: i64) -> (i64, i64) {
        let m = self.margin;
        let max_x = (i64::from(self.width) - w - m).max(m + 1);
        let max_y = (i64::from(self.height) - h - m).max(m + 1);
        let mut best = (m, m);
        for _ in 0..2000 {
            let x = i64::from(rng.range(m as u32, max_x as u32));
            let y = i64::from(rng.range(m as u32, max_y as u32));
            best = (x, y);
            let free = self.taken.iter().all(|&(a0, b0, a1, b1)| {
                x + w + m <= a0 || a1 + m <= x || y + h + m <= b0 || b1 + m <= y
            });
            if free {
                break;
            }
        }
        self.taken.push((best.0, best.1, best.0 + w, best.1 + h));
        best
    }
}

fn rect(x: i64, y: i64, w: i64, h: i64) -> ImageRect {
    ImageRect::new(x as f64, y as f64, (x + w) as f64, (y + h) as f64)
}

/// Choices: the correct one plus distractors, in a seed-dependent order.
fn choices(rng: &mut Rng, correct: &str, pool: &[&str], count: usize) -> Answer {
    let mut options: Vec<String> = vec![correct.to_owned()];
    for p in pool {
        if options.len() >= count {
            break;
        }
        if *p != correct {
            options.push((*p).to_owned());
        }
    }
    rng.shuffle(&mut options);
    let correct = options.iter().position(|o| o == correct).unwrap_or(0);
    Answer::Choice { options, correct }
}

/// Render one scene. `scale_div` divides every size (1 = full size; tests use 8 or more).
pub fn render(spec: &SceneSpec, scale_div: u32) -> Scene {
    let d = i64::from(scale_div.max(1));
    let (width, height) = (
        spec.width / scale_div.max(1),
        spec.height / scale_div.max(1),
    );
    let mut img = paint::background(width, height, spec.seed, scale_div.max(1));
    let mut rng = Rng::new(spec.seed.wrapping_mul(0x9E37_79B9));
    let mut placer = Placer {
        width,
        height,
        margin: (60 / d).max(2),
        taken: Vec::new(),
    };
    let mut objects = Vec::new();
    let mut questions = Vec::new();
    let color_names: Vec<&str> = NAMED_COLORS.iter().map(|c| c.0).collect();

    // Signs with short text, told apart by their border colour.
    let font = (7 / d).max(1);
    let mut signs = Vec::new();
    for &(border_name, border) in NAMED_COLORS.iter().take(3) {
        let len = rng.range(3, 5) as usize;
        let text: String = (0..len)
            .map(|_| char::from(*rng.pick(SIGN_CHARS)))
            .collect();
        let pad = 3 * font;
        let w = i64::from(text_width(&text)) * font + 2 * pad;
        let h = i64::from(GLYPH_H) * font + 2 * pad;
        let (x, y) = placer.place(&mut rng, w, h);
        paint::fill_rect(&mut img, x, y, x + w, y + h, border);
        paint::fill_rect(
            &mut img,
            x + font,
            y + font,
            x + w - font,
            y + h - font,
            PAPER,
        );
        paint::draw_text(&mut img, &text, x + pad, y + pad, font, INK);
        signs.push((objects.len(), border_name, x + w / 2));
        objects.push(DemoObject {
            label: format!("sign, {border_name} border"),
            rect: rect(x, y, w, h),
        });
        questions.push(DemoQuestion {
            text: format!("What is written on the small sign with the {border_name} border?"),
            answer: Answer::Open { text },
            category: "ocr",
            objects: vec![objects.len() - 1],
        });
    }

    // Coloured shapes: one of each of three shapes, each in its own colour.
    let size = (90 / d).max(3);
    let mut shapes = Vec::new();
    for (i, shape) in [Shape::Circle, Shape::Triangle, Shape::Square]
        .into_iter()
        .enumerate()
    {
        let (name, color) = NAMED_COLORS[(spec.seed as usize + i * 2) % NAMED_COLORS.len()];
        let (x, y) = placer.place(&mut rng, size, size);
        paint::fill_figure(&mut img, shape, x, y, size, color);
        shapes.push((objects.len(), shape, x + size / 2, y + size / 2));
        objects.push(DemoObject {
            label: format!("{name} {}", shape.name()),
            rect: rect(x, y, size, size),
        });
        questions.push(DemoQuestion {
            text: format!("What colour is the small {}?", shape.name()),
            answer: choices(&mut rng, name, &color_names, 4),
            category: "attribute",
            objects: vec![objects.len() - 1],
        });
    }

    // A figure inside a white frame: which shape is it?
    let frame = (150 / d).max(5);
    let figure = *rng.pick(&Shape::ALL);
    let (x, y) = placer.place(&mut rng, frame, frame);
    paint::fill_rect(&mut img, x, y, x + frame, y + frame, PAPER);
    let inset = frame / 5;
    paint::fill_figure(
        &mut img,
        figure,
        x + inset,
        y + inset,
        frame - 2 * inset,
        INK,
    );
    objects.push(DemoObject {
        label: "framed figure".to_owned(),
        rect: rect(x, y, frame, frame),
    });
    let shape_names: Vec<&str> = Shape::ALL.iter().map(|s| s.name()).collect();
    questions.push(DemoQuestion {
        text: "Which shape is drawn inside the small white frame?".to_owned(),
        answer: choices(&mut rng, figure.name(), &shape_names, 4),
        category: "recognition",
        objects: vec![objects.len() - 1],
    });

    // Magenta diamonds to count.
    let count = rng.range(2, 6) as usize;
    let marker = (50 / d).max(3);
    let mut marker_ids = Vec::new();
    for i in 0..count {
        let (x, y) = placer.place(&mut rng, marker, marker);
        paint::fill_figure(&mut img, Shape::Diamond, x, y, marker, MAGENTA);
        marker_ids.push(objects.len());
        objects.push(DemoObject {
            label: format!("magenta diamond {}", i + 1),
            rect: rect(x, y, marker, marker),
        });
    }
    questions.push(DemoQuestion {
        text: "How many small magenta diamonds are there in the image?".to_owned(),
        answer: Answer::Open {
            text: count.to_string(),
        },
        category: "quantity",
        objects: marker_ids,
    });

    // Position: a shape against a sign.
    let (shape_obj, shape, sx, _) = shapes[0];
    let (sign_obj, border_name, gx) = signs[0];
    let side = if sx < gx { "left" } else { "right" };
    questions.push(DemoQuestion {
        text: format!(
            "Is the small {} to the left or to the right of the sign with the {border_name} border?",
            shape.name()
        ),
        answer: choices(&mut rng, side, &["left", "right"], 2),
        category: "position",
        objects: vec![shape_obj, sign_obj],
    });

    // A tiny bar chart with lettered bars.
    let (cw, ch) = ((260 / d).max(12), (180 / d).max(10));
    let (x, y) = placer.place(&mut rng, cw, ch);
    paint::fill_rect(&mut img, x, y, x + cw, y + ch, PAPER);
    let mut heights: Vec<i64> = (0..4).map(|i| 30 + i * 25).collect();
    rng.shuffle(&mut heights);
    let letters = ["A", "B", "C", "D"];
    let bar_w = cw / 6;
    let label_font = (3 / d).max(1);
    let base = y + ch - i64::from(GLYPH_H) * label_font - 2 * label_font;
    for (i, h) in heights.iter().enumerate() {
        let bx = x + bar_w / 2 + i as i64 * (bar_w * 3 / 2);
        let bh = h * (base - y) / 130;
        paint::fill_rect(&mut img, bx, base - bh, bx + bar_w, base, NAMED_COLORS[1].1);
        paint::draw_text(&mut img, letters[i], bx, base + label_font, label_font, INK);
    }
    let tallest = heights
        .iter()
        .enumerate()
        .max_by_key(|(_, h)| **h)
        .map(|(i, _)| i)
        .unwrap_or(0);
    objects.push(DemoObject {
        label: "bar chart".to_owned(),
        rect: rect(x, y, cw, ch),
    });
    questions.push(DemoQuestion {
        text: "In the small bar chart, which bar is the tallest?".to_owned(),
        answer: Answer::Choice {
            options: letters.iter().map(|s| (*s).to_owned()).collect(),
            correct: tallest,
        },
        category: "chart",
        objects: vec![objects.len() - 1],
    });

    Scene {
        spec: *spec,
        image: img,
        objects,
        questions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::rules;
    use crate::geometry::ImageSize;

    #[test]
    fn scenes_are_deterministic() {
        let a = render(&SCENES[0], 16);
        let b = render(&SCENES[0], 16);
        assert_eq!(a.objects, b.objects);
        assert_eq!(a.questions, b.questions);
        assert_eq!(a.image.as_raw(), b.image.as_raw());
    }

    #[test]
    fn every_box_is_small_inside_and_disjoint() {
        for spec in &SCENES {
            let scene = render(spec, 16);
            let size = ImageSize::new(scene.image.width(), scene.image.height());
            for (i, o) in scene.objects.iter().enumerate() {
                rules::check_rect(&o.rect, size).unwrap();
                rules::check_area(&o.rect, size).unwrap();
                for other in &scene.objects[..i] {
                    assert_eq!(
                        o.rect.iou(&other.rect),
                        0.0,
                        "{} overlaps {}",
                        o.label,
                        other.label
                    );
                }
            }
        }
    }

    #[test]
    fn every_question_is_valid_and_linked() {
        let scene = render(&SCENES[1], 16);
        assert!(scene.questions.len() >= 8);
        for q in &scene.questions {
            assert!(!q.objects.is_empty());
            assert!(q.objects.iter().all(|i| *i < scene.objects.len()));
            assert!(rules::answer_errors(&q.answer).is_empty(), "{}", q.text);
        }
    }

    #[test]
    fn the_sign_text_is_really_drawn() {
        // The ink colour appears inside every sign's box.
        let scene = render(&SCENES[0], 4);
        for o in scene.objects.iter().filter(|o| o.label.starts_with("sign")) {
            let r = o.rect;
            let mut ink = 0;
            for y in r.y0 as u32..r.y1 as u32 {
                for x in r.x0 as u32..r.x1 as u32 {
                    if scene.image.get_pixel(x, y).0 == INK {
                        ink += 1;
                    }
                }
            }
            assert!(ink > 20, "{}: {ink} ink pixels", o.label);
        }
    }
}
