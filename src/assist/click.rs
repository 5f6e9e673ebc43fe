//! Click-to-box without weights: squares of growing side centred on the click are snapped
//! (see `snap`), and the first whose object, the part under the click, lies clear of the
//! square's edge is the box: that square's border was background all round, so the whole
//! object was inside it. A click on background finds nothing. Works offline at native
//! resolution; SAM (`sam`) is the learnt alternative when its weights are there.

use image::RgbImage;

use super::AssistError;
use super::snap::{self, Snapped};
use crate::geometry::{ImageRect, ImageSize};

/// The first square's side in original pixels (doubled until the object fits).
pub const FIRST_SIDE: u32 = 24;
/// The largest square tried by default (an object larger than this is not small).
pub const MAX_SIDE: u32 = 2048;

/// The object under `click` (image pixels); `read` gives the pixels of a window
/// `[x0, y0, x1, y1)` of the original. Squares grow from [`FIRST_SIDE`] to `max_side`.
pub fn click_box(
    size: ImageSize,
    click: (f64, f64),
    max_side: u32,
    read: &mut dyn FnMut([u32; 4]) -> Result<RgbImage, AssistError>,
) -> Result<Snapped, AssistError> {
    let (cx, cy) = click;
    if !(cx >= 0.0 && cy >= 0.0 && cx < f64::from(size.width) && cy < f64::from(size.height)) {
        return Err(AssistError::Outside(
            format!("{cx:.0},{cy:.0}"),
            format!("{}x{}", size.width, size.height),
        ));
    }
    let mut side = FIRST_SIDE;
    while side <= max_side.max(FIRST_SIDE) {
        let half = f64::from(side) / 2.0;
        let rough = ImageRect::new(cx - half, cy - half, cx + half, cy + half).clamped(size);
        let area = super::window::around(&rough, snap::WINDOW_MARGIN, size)?;
        let pixels = read(area)?;
        if let Ok(found) = snap::snap_from(&pixels, (area[0], area[1]), &rough, Some(click))
            && clear_of_edge(&found.rect, &rough, size)
        {
            return Ok(found);
        }
        side = side.saturating_mul(2);
    }
    Err(AssistError::NothingFound)
}

/// `found` keeps at least a pixel from every side of `square` that is not the image's edge.
fn clear_of_edge(found: &ImageRect, square: &ImageRect, size: ImageSize) -> bool {
    let (w, h) = (f64::from(size.width), f64::from(size.height));
    (square.x0 <= 0.0 || found.x0 >= square.x0 + 1.0)
        && (square.y0 <= 0.0 || found.y0 >= square.y0 + 1.0)
        && (square.x1 >= w || found.x1 <= square.x1 - 1.0)
        && (square.y1 >= h || found.y1 <= square.y1 - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ground(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let g = ((x * 7 + y * 13) % 23) as u8;
            image::Rgb([100 + g, 110 + g, 90 + g])
        })
    }

    fn fill(img: &mut RgbImage, [x0, y0, x1, y1]: [u32; 4], c: [u8; 3]) {
        for y in y0..y1 {
            for x in x0..x1 {
                img.put_pixel(x, y, image::Rgb(c));
            }
        }
    }

    fn crop(img: &RgbImage) -> impl FnMut([u32; 4]) -> Result<RgbImage, AssistError> + '_ {
        |[x0, y0, x1, y1]| Ok(image::imageops::crop_imm(img, x0, y0, x1 - x0, y1 - y0).to_image())
    }

    #[test]
    fn a_click_on_a_sign_gives_its_box_and_its_letters_stay_inside_it() {
        let mut img = ground(400, 300);
        // A 90x40 red sign with a white letter, and a blue sign close by that is not clicked.
        fill(&mut img, [150, 120, 240, 160], [214, 40, 40]);
        fill(&mut img, [170, 130, 180, 150], [250, 250, 250]);
        fill(&mut img, [250, 120, 290, 160], [30, 90, 220]);
        let size = ImageSize::new(400, 300);
        let found = click_box(size, (200.0, 140.0), MAX_SIDE, &mut crop(&img)).unwrap();
        assert_eq!(found.rect, ImageRect::new(150.0, 120.0, 240.0, 160.0));
        // On the letter: the letter or the sign around it, never beyond the sign.
        let letter = click_box(size, (175.0, 140.0), MAX_SIDE, &mut crop(&img)).unwrap();
        assert!(
            letter.rect.x0 >= 150.0 && letter.rect.x1 <= 240.0,
            "{letter:?}"
        );
        assert!(
            letter.rect.x0 <= 170.0 && letter.rect.x1 >= 180.0,
            "{letter:?}"
        );
    }

    #[test]
    fn a_click_on_background_or_off_the_image_finds_nothing() {
        let mut img = ground(300, 200);
        fill(&mut img, [10, 10, 30, 30], [214, 40, 40]);
        let size = ImageSize::new(300, 200);
        assert!(matches!(
            click_box(size, (200.0, 120.0), MAX_SIDE, &mut crop(&img)),
            Err(AssistError::NothingFound)
        ));
        assert!(matches!(
            click_box(size, (300.0, 10.0), MAX_SIDE, &mut crop(&img)),
            Err(AssistError::Outside(..))
        ));
        // At the image's corner the square is cut by the edge and the object still found.
        let found = click_box(size, (20.0, 20.0), MAX_SIDE, &mut crop(&img)).unwrap();
        assert_eq!(found.rect, ImageRect::new(10.0, 10.0, 30.0, 30.0));
    }
}
