//! The weight-free snap: a rough box drawn around a small object becomes the object's tight
//! box, found against its background at native resolution. The background is learnt from the
//! window's own border (the window is the rough box grown by half on every side, so its edge
//! lies on background): its mean colour and how far its pixels stray from it. Pixels further
//! than that are foreground; the foreground's 8-connected parts that lie mostly inside the
//! rough box are the object, and their union's bounds the box. Good for signs, labels and
//! shapes against a busier but different background; a person checks the proposal.

use image::RgbImage;

use super::AssistError;
use crate::geometry::ImageRect;

/// The window around a rough box: how much of the box's size is added on every side.
pub const WINDOW_MARGIN: f64 = 0.5;

/// A snapped box and how it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapped {
    /// The object's box on the image.
    pub rect: ImageRect,
    /// The colour distance above which a pixel was foreground.
    pub threshold: f32,
    /// Foreground parts taken as the object.
    pub parts: usize,
}

/// Snap `rough` (image pixels) given `window`, the pixels of `[x0, y0, ..)` around it.
pub fn snap(
    window: &RgbImage,
    origin: (u32, u32),
    rough: &ImageRect,
) -> Result<Snapped, AssistError> {
    snap_from(window, origin, rough, None)
}

/// One 8-connected foreground part.
struct Part {
    /// `[x0, y0, x1, y1)` in window pixels.
    bounds: [u32; 4],
    pixels: usize,
    inside: usize,
    /// It holds a pixel within two of the seed.
    seeded: bool,
}

/// [`snap`], and with a `seed` (an image point the person clicked) only the part under the
/// seed counts, with the parts that lie within its bounds (a ring's dot, a sign's letters);
/// a seed that lands on background finds nothing.
pub fn snap_from(
    window: &RgbImage,
    origin: (u32, u32),
    rough: &ImageRect,
    seed: Option<(f64, f64)>,
) -> Result<Snapped, AssistError> {
    let (w, h) = window.dimensions();
    if w < 3 || h < 3 {
        return Err(AssistError::NothingFound);
    }
    let (mean, threshold) = background(window);
    let far = |p: &image::Rgb<u8>| distance(p, &mean) > threshold;
    let fg: Vec<bool> = window.pixels().map(far).collect();
    // The rough box in window pixels.
    let (ox, oy) = (f64::from(origin.0), f64::from(origin.1));
    let bx0 = (rough.x0 - ox).max(0.0);
    let by0 = (rough.y0 - oy).max(0.0);
    let bx1 = (rough.x1 - ox).min(f64::from(w));
    let by1 = (rough.y1 - oy).min(f64::from(h));
    let in_box = |x: u32, y: u32| {
        (x as f64) + 0.5 > bx0
            && (x as f64) + 0.5 < bx1
            && (y as f64) + 0.5 > by0
            && (y as f64) + 0.5 < by1
    };
    let near_seed = |x: u32, y: u32| {
        seed.is_some_and(|(sx, sy)| {
            (f64::from(x) + 0.5 - (sx - ox)).abs() <= 2.0
                && (f64::from(y) + 0.5 - (sy - oy)).abs() <= 2.0
        })
    };
    let box_area = ((bx1 - bx0) * (by1 - by0)).max(1.0);
    // Parts smaller than this are grain, not object.
    let min_part = (box_area * 0.005).max(2.0) as usize;

    let mut seen = vec![false; fg.len()];
    let mut stack = Vec::new();
    let mut parts = Vec::new();
    for start in 0..fg.len() {
        if !fg[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut part = Part {
            bounds: [u32::MAX, u32::MAX, 0, 0],
            pixels: 0,
            inside: 0,
            seeded: false,
        };
        while let Some(i) = stack.pop() {
            let (x, y) = ((i % w as usize) as u32, (i / w as usize) as u32);
            part.pixels += 1;
            part.inside += usize::from(in_box(x, y));
            part.seeded |= near_seed(x, y);
            let b = &mut part.bounds;
            *b = [b[0].min(x), b[1].min(y), b[2].max(x + 1), b[3].max(y + 1)];
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    let (nx, ny) = (i64::from(x) + dx, i64::from(y) + dy);
                    if nx < 0 || ny < 0 || nx >= i64::from(w) || ny >= i64::from(h) {
                        continue;
                    }
                    let j = ny as usize * w as usize + nx as usize;
                    if fg[j] && !seen[j] {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        if part.pixels >= min_part && part.inside * 2 >= part.pixels {
            parts.push(part);
        }
    }
    if seed.is_some() {
        let [x0, y0, x1, y1] = parts
            .iter()
            .find(|p| p.seeded)
            .map(|p| p.bounds)
            .ok_or(AssistError::NothingFound)?;
        parts.retain(|p| {
            let b = p.bounds;
            b[0] >= x0 && b[1] >= y0 && b[2] <= x1 && b[3] <= y1
        });
    }
    let [x0, y0, x1, y1] = parts
        .iter()
        .map(|p| p.bounds)
        .reduce(|a, b| {
            [
                a[0].min(b[0]),
                a[1].min(b[1]),
                a[2].max(b[2]),
                a[3].max(b[3]),
            ]
        })
        .ok_or(AssistError::NothingFound)?;
    Ok(Snapped {
        rect: ImageRect::new(
            ox + f64::from(x0),
            oy + f64::from(y0),
            ox + f64::from(x1),
            oy + f64::from(y1),
        ),
        threshold,
        parts: parts.len(),
    })
}

fn distance(p: &image::Rgb<u8>, mean: &[f32; 3]) -> f32 {
    let d: f32 = (0..3).map(|c| (f32::from(p.0[c]) - mean[c]).powi(2)).sum();
    d.sqrt()
}

/// The border's mean colour and the distance that 98 % of its pixels stay within, widened by
/// a quarter and a few levels (so the background's own grain stays background).
fn background(window: &RgbImage) -> ([f32; 3], f32) {
    let (w, h) = window.dimensions();
    let ring = (w.min(h) / 16).max(1);
    let border: Vec<&image::Rgb<u8>> = window
        .enumerate_pixels()
        .filter(|(x, y, _)| *x < ring || *y < ring || *x >= w - ring || *y >= h - ring)
        .map(|(_, _, p)| p)
        .collect();
    let n = border.len().max(1) as f32;
    let mut mean = [0f32; 3];
    for p in &border {
        for (m, v) in mean.iter_mut().zip(p.0) {
            *m += f32::from(v) / n;
        }
    }
    let mut d: Vec<f32> = border.iter().map(|p| distance(p, &mean)).collect();
    d.sort_by(f32::total_cmp);
    let p98 = d
        .get(((d.len().max(1) - 1) as f32 * 0.98) as usize)
        .copied()
        .unwrap_or(0.0);
    (mean, p98 * 1.25 + 8.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_on_grainy_ground_snaps_to_its_edges_and_bare_ground_finds_nothing() {
        let mut img = RgbImage::from_fn(120, 90, |x, y| {
            let g = ((x * 7 + y * 13) % 23) as u8;
            image::Rgb([100 + g, 110 + g, 90 + g])
        });
        for y in 40..52 {
            for x in 50..80 {
                img.put_pixel(x, y, image::Rgb([214, 40, 40]));
            }
        }
        // A rough box, larger and shifted; the window is the whole picture at (1000, 2000).
        let rough = ImageRect::new(1046.0, 2036.0, 1086.0, 2055.0);
        let s = snap(&img, (1000, 2000), &rough).unwrap();
        assert_eq!(s.rect, ImageRect::new(1050.0, 2040.0, 1080.0, 2052.0));
        let bare = RgbImage::from_fn(60, 60, |x, y| {
            let g = ((x * 7 + y * 13) % 23) as u8;
            image::Rgb([100 + g, 110 + g, 90 + g])
        });
        assert!(matches!(
            snap(&bare, (0, 0), &ImageRect::new(20.0, 20.0, 40.0, 40.0)),
            Err(AssistError::NothingFound)
        ));
    }
}
