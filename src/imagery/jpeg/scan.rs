//! One scan's DC coefficients: the order the scan holds its blocks in, decoding that order from
//! a bit position (baseline blocks with their AC codes stepped over, progressive DC scans), and
//! restart intervals decoded side by side.

use super::DcError;
use super::headers::{Frame, Scan, Tables};
use super::huffman::{BadCode, Bits, Clean, Huffman};

/// What a scan's blocks carry for the DC decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A sequential scan: the DC difference, then AC codes to step over.
    Baseline,
    /// A progressive scan's first DC pass: the DC difference only.
    DcFirst,
    /// A progressive DC refinement: one bit per block.
    DcRefine,
}

/// One block of an MCU: its component, place in the MCU and tables.
#[derive(Debug, Clone, Copy)]
pub(super) struct Slot {
    pub comp: usize,
    pub dy: usize,
    pub dx: usize,
}

/// The order of a scan's blocks.
pub(super) struct Layout<'t> {
    pub slots: Vec<Slot>,
    /// Per slot: the DC and AC table.
    pub tables: Vec<(&'t Huffman, Option<&'t Huffman>)>,
    pub interleaved: bool,
    /// MCUs (interleaved) or blocks (one component) in the scan, and across a row of them.
    pub units: usize,
    pub across: usize,
    pub kind: Kind,
}

fn missing_table() -> DcError {
    DcError::Corrupt("a scan uses a Huffman table that was never defined".into())
}

impl<'t> Layout<'t> {
    pub fn new(
        frame: &Frame,
        scan: &Scan,
        tables: &'t Tables,
        kind: Kind,
    ) -> Result<Self, DcError> {
        let interleaved = scan.comps.len() > 1;
        let mut slots = Vec::new();
        let mut hufs = Vec::new();
        for sc in &scan.comps {
            let c = &frame.comps[sc.comp];
            let dc = tables.dc[sc.dc].as_ref().ok_or_else(missing_table)?;
            let ac = match kind {
                Kind::Baseline => Some(tables.ac[sc.ac].as_ref().ok_or_else(missing_table)?),
                _ => None,
            };
            let (h, v) = if interleaved { (c.h, c.v) } else { (1, 1) };
            for dy in 0..v {
                for dx in 0..h {
                    slots.push(Slot {
                        comp: sc.comp,
                        dy,
                        dx,
                    });
                    hufs.push((dc, ac));
                }
            }
        }
        let (units, across) = if interleaved {
            (frame.mcux * frame.mcuy, frame.mcux)
        } else {
            let c = &frame.comps[scan.comps[0].comp];
            (c.cbw * c.cbh, c.cbw)
        };
        Ok(Layout {
            slots,
            tables: hufs,
            interleaved,
            units,
            across,
            kind,
        })
    }

    /// Blocks in the scan.
    pub fn blocks(&self) -> usize {
        self.units * self.slots.len()
    }

    /// Where block `slot` of the unit at column `ux`, row `uy` lies in its component's plane.
    #[inline(always)]
    pub fn plane_index_at(
        &self,
        frame: &Frame,
        ux: usize,
        uy: usize,
        slot: usize,
    ) -> (usize, usize) {
        let s = self.slots[slot];
        let c = &frame.comps[s.comp];
        if self.interleaved {
            (s.comp, (uy * c.v + s.dy) * c.bw + ux * c.h + s.dx)
        } else {
            (s.comp, uy * c.bw + ux)
        }
    }

    /// Decode one block at `bits`: the DC difference (or the refinement bit).
    #[inline(always)]
    pub fn block(&self, bits: &mut Bits, slot: usize) -> Result<i32, BadCode> {
        let (dc, ac) = self.tables[slot];
        if self.kind == Kind::DcRefine {
            let bit = (bits.window() >> 63) as i32;
            bits.pos += 1;
            return Ok(bit);
        }
        let s = dc.decode(bits)?;
        if s > 11 {
            return Err(BadCode);
        }
        let diff = bits.receive_extend(s);
        if let Some(ac) = ac {
            ac.skip_ac(bits)?;
        }
        Ok(diff)
    }

    /// Decode `units` units from `bits` into `out` (one value per block, in scan order): the DC
    /// value (differences summed from zero) or the refinement bit.
    pub fn run(&self, bits: &mut Bits, end_bit: u64, out: &mut [i32]) -> Result<(), DcError> {
        let n = self.slots.len();
        let mut pred = [0i32; 4];
        for (u, chunk) in out.chunks_mut(n).enumerate() {
            for (slot, value) in chunk.iter_mut().enumerate() {
                let v = self.block(bits, slot).map_err(|_| {
                    DcError::Corrupt(format!("a bad Huffman code in block {}", u * n + slot))
                })?;
                *value = if self.kind == Kind::DcRefine {
                    v
                } else {
                    let p = &mut pred[self.slots[slot].comp];
                    *p = p.wrapping_add(v);
                    *p
                };
            }
            if bits.pos > end_bit {
                return Err(DcError::Corrupt("the scan's data ends early".into()));
            }
        }
        Ok(())
    }
}

/// Decode a whole scan sequentially, or its restart intervals on up to `threads` threads.
pub(super) fn decode(
    layout: &Layout,
    clean: &Clean,
    restart: usize,
    threads: usize,
) -> Result<Vec<i32>, DcError> {
    let n = layout.slots.len();
    let mut values = vec![0i32; layout.blocks()];
    if restart == 0 {
        layout.run(&mut Bits::new(clean, 0), clean.end_bit(), &mut values)?;
        return Ok(values);
    }
    let intervals: Vec<&mut [i32]> = values.chunks_mut(restart * n).collect();
    if clean.intervals.len() < intervals.len() {
        return Err(DcError::Corrupt(format!(
            "{} restart intervals expected, {} found",
            intervals.len(),
            clean.intervals.len()
        )));
    }
    let decode_one = |i: usize, out: &mut [i32]| -> Result<(), DcError> {
        let start = clean.intervals[i] as u64 * 8;
        let end = clean
            .intervals
            .get(i + 1)
            .map_or(clean.end_bit(), |&e| e as u64 * 8);
        layout.run(&mut Bits::new(clean, start), end, out)
    };
    let count = intervals.len();
    let per_thread = count.div_ceil(threads.max(1));
    let mut indexed: Vec<(usize, &mut [i32])> = intervals.into_iter().enumerate().collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = indexed
            .chunks_mut(per_thread.max(1))
            .map(|group| {
                scope.spawn(move || {
                    group
                        .iter_mut()
                        .try_for_each(|(i, out)| decode_one(*i, out))
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .map_err(|_| DcError::Corrupt("a decoding thread failed".into()))?
        })
    })?;
    Ok(values)
}
