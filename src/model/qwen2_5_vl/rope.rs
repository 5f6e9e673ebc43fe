//! Rotary positions. The text model's multimodal positions: text tokens count up one by one;
//! an image's tokens get (time, row, column) on the merged grid, offset by where the image
//! starts; text after an image continues from the largest position so far plus one. Positions
//! of a prefix never depend on what follows, so a continued turn's positions are the tail of
//! the whole sequence's. And the vision tower's 2-D angles (row, then column frequencies).

use crate::model::{ModelError, Result};

/// Positions (t, h, w) for every token, and the next free position.
pub fn text_positions(
    tokens: &[u32],
    image_token: u32,
    grids: &[[usize; 3]],
    merge: usize,
) -> Result<(Vec<[i64; 3]>, i64)> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut next: i64 = 0;
    let mut grids = grids.iter();
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i] != image_token {
            out.push([next; 3]);
            next += 1;
            i += 1;
            continue;
        }
        let [t, h, w] = *grids
            .next()
            .ok_or_else(|| ModelError::Input("more image blocks in the text than images".into()))?;
        let (lh, lw) = (h / merge, w / merge);
        let n = t * lh * lw;
        let run = tokens[i..]
            .iter()
            .take_while(|&&x| x == image_token)
            .count();
        if run != n {
            return Err(ModelError::Input(format!(
                "an image block has {run} image tokens, its image needs {n}"
            )));
        }
        for ti in 0..t {
            for r in 0..lh {
                for c in 0..lw {
                    out.push([next + ti as i64, next + r as i64, next + c as i64]);
                }
            }
        }
        next += (t.max(lh).max(lw)) as i64;
        i += n;
    }
    if grids.next().is_some() {
        return Err(ModelError::Input(
            "more images than image blocks in the text".into(),
        ));
    }
    Ok((out, next))
}

/// `1 / theta^(2i / dim)` for i < dim / 2, in f32 as the reference computes it.
pub fn inverse_frequencies(dim: usize, theta: f32) -> Vec<f32> {
    (0..dim / 2)
        .map(|i| 1.0 / theta.powf((2 * i) as f32 / dim as f32))
        .collect()
}

/// The text model's cos and sin tables, [len, head_dim / 2] each, row-major: frequency j
/// takes its position from time, height or width by `sections`.
pub fn text_cos_sin(
    positions: &[[i64; 3]],
    inv_freq: &[f32],
    sections: [usize; 3],
) -> (Vec<f32>, Vec<f32>) {
    let which: Vec<usize> = (0..inv_freq.len())
        .map(|j| {
            if j < sections[0] {
                0
            } else if j < sections[0] + sections[1] {
                1
            } else {
                2
            }
        })
        .collect();
    let mut cos = Vec::with_capacity(positions.len() * inv_freq.len());
    let mut sin = Vec::with_capacity(cos.capacity());
    for p in positions {
        for (j, f) in inv_freq.iter().enumerate() {
            let a = p[which[j]] as f32 * f;
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    (cos, sin)
}

/// The vision tower's angles for patches at (row, col): row frequencies, then column ones.
pub fn vision_cos_sin(rows_cols: &[(usize, usize)], inv_freq: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut cos = Vec::with_capacity(rows_cols.len() * inv_freq.len() * 2);
    let mut sin = Vec::with_capacity(cos.capacity());
    for &(r, c) in rows_cols {
        for pos in [r, c] {
            for f in inv_freq {
                let a = pos as f32 * f;
                cos.push(a.cos());
                sin.push(a.sin());
            }
        }
    }
    (cos, sin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_only_positions_are_one_dimensional() {
        let (p, next) = text_positions(&[5, 6, 7, 8], 99, &[], 2).unwrap();
        assert_eq!(p, vec![[0; 3], [1; 3], [2; 3], [3; 3]]);
        assert_eq!(next, 4);
    }

    #[test]
    fn image_tokens_get_grid_positions_and_text_continues_after_the_largest() {
        // A 4 x 6 patch grid: 2 x 3 merged tokens.
        let ids = [1, 2, 9, 9, 9, 9, 9, 9, 3];
        let (p, next) = text_positions(&ids, 9, &[[1, 4, 6]], 2).unwrap();
        assert_eq!(p[1], [1; 3]);
        assert_eq!(p[2], [2, 2, 2]);
        assert_eq!(p[4], [2, 2, 4]);
        assert_eq!(p[5], [2, 3, 2]);
        assert_eq!(p[7], [2, 3, 4]);
        assert_eq!(p[8], [5; 3]);
        assert_eq!(next, 6);
        // The prefix's positions do not change when more follows.
        let (q, _) = text_positions(&ids[..2], 9, &[], 2).unwrap();
        assert_eq!(q, p[..2]);
        // An image block cut short is refused.
        assert!(text_positions(&ids[..5], 9, &[[1, 4, 6]], 2).is_err());
        assert!(text_positions(&ids, 9, &[], 2).is_err());
        assert!(text_positions(&ids, 9, &[[1, 4, 4]], 2).is_err());
        assert!(text_positions(&[1, 2], 9, &[[1, 4, 4]], 2).is_err());
    }

    #[test]
    fn sections_pick_time_height_width() {
        let inv = inverse_frequencies(16, 10_000.0);
        assert_eq!(inv.len(), 8);
        let (cos, _) = text_cos_sin(&[[0, 1, 2]], &inv, [2, 3, 3]);
        assert_eq!(cos[0], 1.0);
        assert!((cos[2] - (1.0 * inv[2]).cos()).abs() < 1e-7);
        assert!((cos[5] - (2.0 * inv[5]).cos()).abs() < 1e-7);
    }
}
