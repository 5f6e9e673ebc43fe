//! How well the snap finds the demo scenes' objects, whose true boxes are known: each true box
//! grown by 10-30 % and shifted by up to a tenth of its size (as a quick hand draws it), then
//! snapped, and the result's IoU with the truth; a click near each object's centre, boxed by
//! the weight-free click; and the input events each way needs to box every object well. The
//! tests' floors and `bench assist` read it.

use serde::Serialize;

use super::{AssistError, click, snap, window};
use crate::geometry::{ImageRect, ImageSize};
use crate::rng::Rng;

#[derive(Debug, Clone, Serialize)]
pub struct SnapQuality {
    pub boxes: usize,
    /// Mean IoU with the truth (a box that found nothing counts 0).
    pub mean_iou: f64,
    /// Mean IoU of the rough boxes themselves, for comparison.
    pub rough_iou: f64,
    pub found_nothing: usize,
    /// Seconds per snap (window read from memory; the snap itself).
    pub seconds_per_snap: f64,
}

/// A rough box around `truth`: grown by 10-30 % a side pair, shifted by up to a tenth.
pub fn rough_box(truth: &ImageRect, rng: &mut Rng) -> ImageRect {
    let (w, h) = (truth.x1 - truth.x0, truth.y1 - truth.y0);
    let grow = 0.10 + f64::from(rng.range(0, 200)) / 1000.0;
    let shift = |r: &mut Rng| f64::from(r.range(0, 200)) / 1000.0 - 0.1;
    let (dx, dy) = (shift(rng) * w, shift(rng) * h);
    let (gx, gy) = (w * grow / 2.0, h * grow / 2.0);
    ImageRect::new(
        truth.x0 - gx + dx,
        truth.y0 - gy + dy,
        truth.x1 + gx + dx,
        truth.y1 + gy + dy,
    )
}

/// Snap every object of the demo scenes, drawn at 1/`scale_div` of their size.
pub fn demo_snap_quality(scale_div: u32, seed: u64) -> SnapQuality {
    let mut rng = Rng::new(seed);
    let (mut n, mut sum, mut rough_sum, mut nothing, mut secs) = (0usize, 0.0, 0.0, 0usize, 0.0);
    for spec in crate::demo::scene::SCENES {
        let scene = crate::demo::scene::render(&spec, scale_div);
        let size = ImageSize::new(scene.image.width(), scene.image.height());
        for obj in &scene.objects {
            let rough = rough_box(&obj.rect, &mut rng);
            let started = std::time::Instant::now();
            let found =
                window::around(&rough, snap::WINDOW_MARGIN, size).and_then(|[x0, y0, x1, y1]| {
                    let pixels = image::imageops::crop_imm(&scene.image, x0, y0, x1 - x0, y1 - y0)
                        .to_image();
                    snap::snap(&pixels, (x0, y0), &rough)
                });
            secs += started.elapsed().as_secs_f64();
            n += 1;
            rough_sum += rough.iou(&obj.rect);
            match found {
                Ok(s) => sum += s.rect.iou(&obj.rect),
                Err(_) => nothing += 1,
            }
        }
    }
    let per = |v: f64| v / n.max(1) as f64;
    SnapQuality {
        boxes: n,
        mean_iou: per(sum),
        rough_iou: per(rough_sum),
        found_nothing: nothing,
        seconds_per_snap: per(secs),
    }
}

/// How well the weight-free click boxes the demo scenes' objects, and what each way of
/// boxing costs in input events (clicks, drags and key presses, as the README's table counts
/// them) to give every object a box of IoU >= [`GOOD_IOU`] with its truth.
#[derive(Debug, Clone, Serialize)]
pub struct ClickQuality {
    pub boxes: usize,
    /// Mean IoU of the clicked boxes (nothing found counts 0).
    pub mean_iou: f64,
    pub found_nothing: usize,
    pub seconds_per_click: f64,
    /// A drag (the hand's rough box), then edge drags until it is good.
    pub events_by_drag: usize,
    /// A drag and S, then edge drags.
    pub events_by_drag_and_snap: usize,
    /// A click and Enter, then edge drags; when nothing is found or the box is far off,
    /// Escape and the drag-and-S way instead (whichever is fewer).
    pub events_by_click: usize,
}

/// A box this close to the truth needs no more work.
pub const GOOD_IOU: f64 = 0.9;

/// Edge drags that make `rect` good: each moves the edge furthest from the truth onto it
/// (a person at a zoom where the object fills the view places an edge to the pixel).
pub fn edge_fixes(rect: &ImageRect, truth: &ImageRect) -> usize {
    let mut r = [rect.x0, rect.y0, rect.x1, rect.y1];
    let t = [truth.x0, truth.y0, truth.x1, truth.y1];
    let mut n = 0;
    while ImageRect::new(r[0], r[1], r[2], r[3]).iou(truth) < GOOD_IOU && n < 4 {
        let worst = (0..4)
            .max_by(|&a, &b| (r[a] - t[a]).abs().total_cmp(&(r[b] - t[b]).abs()))
            .unwrap_or(0);
        r[worst] = t[worst];
        n += 1;
    }
    n
}

/// Click near every object of the demo scenes (drawn at 1/`scale_div` of their size): the
/// point is the true box's centre moved by up to an eighth of its size.
pub fn demo_click_quality(scale_div: u32, seed: u64) -> ClickQuality {
    let mut rng = Rng::new(seed);
    let mut q = ClickQuality {
        boxes: 0,
        mean_iou: 0.0,
        found_nothing: 0,
        seconds_per_click: 0.0,
        events_by_drag: 0,
        events_by_drag_and_snap: 0,
        events_by_click: 0,
    };
    for spec in crate::demo::scene::SCENES {
        let scene = crate::demo::scene::render(&spec, scale_div);
        let size = ImageSize::new(scene.image.width(), scene.image.height());
        let mut read = |[x0, y0, x1, y1]: [u32; 4]| -> Result<image::RgbImage, AssistError> {
            Ok(image::imageops::crop_imm(&scene.image, x0, y0, x1 - x0, y1 - y0).to_image())
        };
        for obj in &scene.objects {
            let truth = obj.rect;
            let rough = rough_box(&truth, &mut rng);
            let snapped = window::around(&rough, snap::WINDOW_MARGIN, size)
                .and_then(|area| snap::snap(&read(area)?, (area[0], area[1]), &rough))
                .map_or(rough, |s| s.rect);
            let shift = |r: &mut Rng| f64::from(r.range(0, 250)) / 1000.0 - 0.125;
            let (cx, cy) = truth.center();
            let at = (
                cx + shift(&mut rng) * truth.width(),
                cy + shift(&mut rng) * truth.height(),
            );
            let started = std::time::Instant::now();
            let clicked = click::click_box(size, at, click::MAX_SIDE, &mut read);
            q.seconds_per_click += started.elapsed().as_secs_f64();
            q.boxes += 1;
            let drag_and_snap = 2 + edge_fixes(&snapped, &truth);
            q.events_by_drag += 1 + edge_fixes(&rough, &truth);
            q.events_by_drag_and_snap += drag_and_snap;
            q.events_by_click += match clicked {
                Ok(c) => {
                    q.mean_iou += c.rect.iou(&truth);
                    (2 + edge_fixes(&c.rect, &truth)).min(2 + drag_and_snap)
                }
                Err(_) => {
                    q.found_nothing += 1;
                    1 + drag_and_snap
                }
            };
        }
    }
    let n = q.boxes.max(1) as f64;
    q.mean_iou /= n;
    q.seconds_per_click /= n;
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The floor: a snapped box must be clearly better than the hand's rough box (mean IoU
    /// 0.68 with the truth here) and close to exact. Measured: 0.995 at this quarter size,
    /// 0.94 at full size (`bench assist`); 0.9 leaves room for a changed scene whose shapes'
    /// drawn outline does not reach every side of their true box (a circle's rim, a
    /// triangle's apex).
    #[test]
    fn the_snap_finds_the_demo_scenes_small_objects() {
        let q = demo_snap_quality(4, 7);
        assert!(q.boxes >= 30, "{q:?}");
        assert!(q.mean_iou >= 0.9, "{q:?}");
        assert!(q.mean_iou > q.rough_iou + 0.1, "{q:?}");
    }

    /// The click's floor: measured 0.99 at this quarter size (35 objects, 2 events each
    /// against 3.4 by drag); the snap's floor, 0.9, for the same reasons. Boxing every object
    /// by click must take fewer events than by drag.
    #[test]
    fn a_click_boxes_the_demo_scenes_objects_in_fewer_events_than_a_drag() {
        let q = demo_click_quality(4, 7);
        assert!(q.boxes >= 30, "{q:?}");
        assert!(q.mean_iou >= 0.9, "{q:?}");
        assert!(q.events_by_click < q.events_by_drag, "{q:?}");
        assert!(q.events_by_drag_and_snap < q.events_by_drag, "{q:?}");
        assert_eq!(
            edge_fixes(
                &ImageRect::new(0.0, 0.0, 10.0, 10.0),
                &ImageRect::new(0.0, 0.0, 10.0, 10.0)
            ),
            0
        );
        assert_eq!(
            edge_fixes(
                &ImageRect::new(0.0, 0.0, 20.0, 10.0),
                &ImageRect::new(0.0, 0.0, 10.0, 10.0)
            ),
            1
        );
    }
}
