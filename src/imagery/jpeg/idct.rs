//! The inverse DCT of one 8x8 block into 8-bit samples: the accurate integer algorithm of
//! Loeffler, Ligtenberg and Moschytz (the one libjpeg calls "islow"), columns first, with
//! shortcuts for blocks and columns that carry only their DC coefficient.

use std::num::Wrapping;

/// Fixed-point bits of the constants.
const CONST_BITS: u32 = 13;
/// Extra bits kept between the two passes.
const PASS1_BITS: u32 = 2;

/// `x` in 13-bit fixed point (the cosine products of the 8-point transform).
const fn fix(x: f64) -> W {
    Wrapping((x * (1 << CONST_BITS) as f64 + 0.5) as i32)
}

/// 32-bit arithmetic that wraps: valid data never comes near the limits, and a damaged file's
/// coefficients give garbage pixels, never an overflow panic.
type W = Wrapping<i32>;

const C0_298: W = fix(0.298_631_336);
const C0_390: W = fix(0.390_180_644);
const C0_541: W = fix(0.541_196_100);
const C0_765: W = fix(0.765_366_865);
const C0_899: W = fix(0.899_976_223);
const C1_175: W = fix(1.175_875_602);
const C1_501: W = fix(1.501_321_110);
const C1_847: W = fix(1.847_759_065);
const C1_961: W = fix(1.961_570_560);
const C2_053: W = fix(2.053_119_869);
const C2_562: W = fix(2.562_915_447);
const C3_072: W = fix(3.072_711_026);

/// The 8-point inverse transform, scaled by 2^CONST_BITS (and by sqrt(8) against the
/// orthonormal one): the even part from inputs 0, 2, 4, 6, the odd part from 1, 3, 5, 7.
#[inline(always)]
fn one_d(d: [W; 8]) -> [W; 8] {
    let z1 = (d[2] + d[6]) * C0_541;
    let even2 = z1 - d[6] * C1_847;
    let even3 = z1 + d[2] * C0_765;
    let even0 = (d[0] + d[4]) << CONST_BITS as usize;
    let even1 = (d[0] - d[4]) << CONST_BITS as usize;
    let (e10, e13, e11, e12) = (even0 + even3, even0 - even3, even1 + even2, even1 - even2);
    let (t0, t1, t2, t3) = (d[7], d[5], d[3], d[1]);
    let (z1, z2, z3, z4) = (t0 + t3, t1 + t2, t0 + t2, t1 + t3);
    let z5 = (z3 + z4) * C1_175;
    let (z1, z2) = (-(z1 * C0_899), -(z2 * C2_562));
    let z3 = z5 - z3 * C1_961;
    let z4 = z5 - z4 * C0_390;
    let o0 = t0 * C0_298 + z1 + z3;
    let o1 = t1 * C2_053 + z2 + z4;
    let o2 = t2 * C3_072 + z2 + z3;
    let o3 = t3 * C1_501 + z1 + z4;
    [
        e10 + o3,
        e11 + o2,
        e12 + o1,
        e13 + o0,
        e13 - o0,
        e12 - o1,
        e11 - o2,
        e10 - o3,
    ]
}

/// Transform `block` (dequantised coefficients, natural order) into `out`, eight rows of eight
/// samples `stride` apart. `last` is the zigzag index of the last non-zero coefficient: 0
/// means the block is flat.
#[inline]
pub(super) fn block_to_samples(block: &[i32; 64], last: usize, out: &mut [u8], stride: usize) {
    if last == 0 {
        let v = ((block[0].wrapping_add(4) >> 3) + 128).clamp(0, 255) as u8;
        for row in out.chunks_mut(stride).take(8) {
            if let Some(r) = row.get_mut(..8) {
                r.fill(v);
            }
        }
        return;
    }
    // Columns: kept with PASS1_BITS more bits.
    let mut mid = [Wrapping(0i32); 64];
    for x in 0..8 {
        let col: [W; 8] = std::array::from_fn(|y| Wrapping(block[y * 8 + x]));
        if col[1..].iter().all(|&c| c.0 == 0) {
            let dc = col[0] << PASS1_BITS as usize;
            for y in 0..8 {
                mid[y * 8 + x] = dc;
            }
            continue;
        }
        let t = one_d(col);
        let shift = CONST_BITS - PASS1_BITS;
        for y in 0..8 {
            mid[y * 8 + x] = (t[y] + Wrapping(1 << (shift - 1))) >> shift as usize;
        }
    }
    // Rows: down to samples, level-shifted and clamped.
    let shift = CONST_BITS + PASS1_BITS + 3;
    for (y, row_out) in out.chunks_mut(stride).take(8).enumerate() {
        let row: [W; 8] = std::array::from_fn(|x| mid[y * 8 + x]);
        let t = one_d(row);
        if let Some(r) = row_out.get_mut(..8) {
            for (o, v) in r.iter_mut().zip(t) {
                *o = (((v + Wrapping(1 << (shift - 1))) >> shift as usize).0)
                    .saturating_add(128)
                    .clamp(0, 255) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inverse DCT by its definition, in floating point.
    fn by_definition(block: &[i32; 64]) -> [f64; 64] {
        let c = |u: usize| if u == 0 { 1.0 / 2f64.sqrt() } else { 1.0 };
        std::array::from_fn(|i| {
            let (y, x) = (i / 8, i % 8);
            let mut sum = 0.0;
            for v in 0..8 {
                for u in 0..8 {
                    sum += c(u)
                        * c(v)
                        * f64::from(block[v * 8 + u])
                        * (((2 * x + 1) * u) as f64 * std::f64::consts::PI / 16.0).cos()
                        * (((2 * y + 1) * v) as f64 * std::f64::consts::PI / 16.0).cos();
                }
            }
            sum / 4.0 + 128.0
        })
    }

    #[test]
    fn matches_the_definition_within_one_level() {
        let mut seed = 12_345u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (seed >> 16) as i32
        };
        for case in 0..200 {
            let mut block = [0i32; 64];
            // Fewer coefficients in some blocks, like real data; a wide range in others.
            let used = 1 + case % 64;
            for k in 0..used {
                let at = usize::from(super::super::headers::ZIGZAG[k]);
                block[at] = (next() % 400) - 200;
            }
            block[0] = (next() % 1600) - 800;
            let mut out = [0u8; 64];
            block_to_samples(&block, used - 1, &mut out, 8);
            let want = by_definition(&block);
            for (got, want) in out.iter().zip(want) {
                let want = want.round().clamp(0.0, 255.0);
                assert!(
                    (f64::from(*got) - want).abs() <= 1.0,
                    "case {case}: {got} against {want}"
                );
            }
        }
    }

    #[test]
    fn a_flat_block_is_its_dc_over_eight() {
        let mut block = [0i32; 64];
        block[0] = -80;
        let mut out = [0u8; 80];
        block_to_samples(&block, 0, &mut out, 10);
        assert_eq!(out[0], 118);
        assert_eq!(out[77], 118);
        assert_eq!(out[8], 0, "outside the block is untouched");
    }
}
