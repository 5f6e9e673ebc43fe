//! A sequential scan without restart markers decoded on several threads at once.
//!
//! The data is cut into equal pieces. The first piece is decoded from the true start; every
//! other piece is decoded from its first byte as if a block began there. Such a guess is wrong
//! at first, but Huffman codes fall back into step with the true parse after a few blocks: once
//! the true decode, walking on from the end of one piece, lands on a bit position where the next
//! piece's guess also began a block, in the same place of the MCU, everything after is the same
//! parse, so the guess's blocks are taken from there on. A piece that never falls into step is
//! simply decoded again by the true decode, so the result is always exact; only the speed
//! depends on the data. DC differences do not depend on where decoding started, so the values
//! are summed once the pieces are joined.

use super::DcError;
use super::huffman::{Bits, Clean};
use super::scan::Layout;

/// A piece's guessed blocks: where each began, its place in the MCU, its DC difference.
struct Piece {
    pos: Vec<u64>,
    slot: Vec<u8>,
    diff: Vec<i32>,
    /// Where the last block ended.
    end: u64,
}

/// Marks a bad code: the guess restarted one bit further on.
const BROKEN: u8 = u8::MAX;

fn guess(layout: &Layout, clean: &Clean, start: u64, stop: u64) -> Piece {
    let n = layout.slots.len();
    // About as many blocks as the piece's share of the data, and a little more.
    let share = (stop - start) as f64 / clean.end_bit().max(1) as f64;
    let expected = (layout.blocks() as f64 * share * 1.1) as usize + 64;
    let mut piece = Piece {
        pos: Vec::with_capacity(expected),
        slot: Vec::with_capacity(expected),
        diff: Vec::with_capacity(expected),
        end: start,
    };
    let mut bits = Bits::new(clean, start);
    let mut slot = 0usize;
    while bits.pos < stop {
        let here = bits.pos;
        match layout.block(&mut bits, slot) {
            Ok(d) => {
                piece.pos.push(here);
                piece.slot.push(slot as u8);
                piece.diff.push(d);
                slot = (slot + 1) % n;
            }
            Err(_) => {
                piece.pos.push(here);
                piece.slot.push(BROKEN);
                piece.diff.push(0);
                bits.pos = here + 1;
                slot = 0;
            }
        }
    }
    piece.end = bits.pos;
    piece
}

/// Where every `every`-th block starts (the bit position of blocks 0, every, 2 * every, ...),
/// noted as the blocks are decoded in order.
struct Starts {
    every: usize,
    next: usize,
    at: Vec<u64>,
}

impl Starts {
    #[inline(always)]
    fn note(&mut self, block: usize, pos: u64) {
        if block == self.next {
            self.at.push(pos);
            self.next += self.every;
        }
    }
}

/// The scan's values in scan order (DC values summed per component), decoded on `threads`
/// threads, and where every `every`-th block starts (`every` 0: nowhere).
pub(super) fn decode(
    layout: &Layout,
    clean: &Clean,
    threads: usize,
    every: usize,
) -> Result<(Vec<i32>, Vec<u64>), DcError> {
    let n = layout.slots.len();
    let mut starts = Starts {
        every,
        next: if every == 0 { usize::MAX } else { 0 },
        at: Vec::new(),
    };
    let total = layout.blocks();
    let end_bit = clean.end_bit();
    let pieces_n = threads.clamp(1, 64);
    // The first piece is decoded for real, which is quicker per block than guessing (a guess
    // also records where every block began): it gets a larger share, 6 parts to the others' 5.
    let weights: Vec<u64> = (0..pieces_n).map(|i| if i == 0 { 6 } else { 5 }).collect();
    let total_weight: u64 = weights.iter().sum();
    let mut bounds = vec![0u64];
    let mut acc = 0u64;
    for w in &weights {
        acc += w;
        bounds.push(clean.len as u64 * acc / total_weight * 8);
    }
    let bad = |at: usize| DcError::Corrupt(format!("a bad Huffman code in block {at}"));
    let mut diffs: Vec<i32> = Vec::with_capacity(total);
    let mut bits = Bits::new(clean, 0);
    // The first piece is decoded for real while the others are guessed.
    let (pieces, first): (Vec<Piece>, Result<(), DcError>) = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..pieces_n)
            .map(|i| {
                let (a, b) = (bounds[i], bounds[i + 1]);
                scope.spawn(move || guess(layout, clean, a, b))
            })
            .collect();
        let mut first = Ok(());
        while diffs.len() < total && bits.pos < bounds[1] {
            starts.note(diffs.len(), bits.pos);
            match layout.block(&mut bits, diffs.len() % n) {
                Ok(d) => diffs.push(d),
                Err(_) => {
                    first = Err(bad(diffs.len()));
                    break;
                }
            }
        }
        let pieces = handles.into_iter().filter_map(|h| h.join().ok()).collect();
        (pieces, first)
    });
    first?;
    if pieces.len() + 1 != pieces_n {
        return Err(DcError::Corrupt("a decoding thread failed".into()));
    }
    for (k, piece) in pieces.iter().enumerate() {
        let piece_end = bounds[k + 2];
        // The true decode walks on until it meets the guess or passes its piece.
        loop {
            if diffs.len() >= total {
                break;
            }
            let slot = diffs.len() % n;
            if let Ok(j) = piece.pos.binary_search(&bits.pos)
                && usize::from(piece.slot[j]) == slot
            {
                let taken = &piece.slot[j..];
                let need = (total - diffs.len()).min(taken.len());
                if let Some(b) = taken[..need].iter().position(|&s| s == BROKEN) {
                    return Err(bad(diffs.len() + b));
                }
                if every > 0 {
                    while starts.next < diffs.len() + need {
                        starts.at.push(piece.pos[j + starts.next - diffs.len()]);
                        starts.next += every;
                    }
                }
                diffs.extend_from_slice(&piece.diff[j..j + need]);
                bits.pos = if need == taken.len() {
                    piece.end
                } else {
                    piece.pos[j + need]
                };
                break;
            }
            if bits.pos >= piece_end {
                break;
            }
            starts.note(diffs.len(), bits.pos);
            let d = layout
                .block(&mut bits, slot)
                .map_err(|_| bad(diffs.len()))?;
            diffs.push(d);
        }
    }
    // What no guess covered (one thread, or a last piece that never fell into step).
    while diffs.len() < total {
        if bits.pos > end_bit {
            return Err(DcError::Corrupt("the scan's data ends early".into()));
        }
        let slot = diffs.len() % n;
        starts.note(diffs.len(), bits.pos);
        let d = layout
            .block(&mut bits, slot)
            .map_err(|_| bad(diffs.len()))?;
        diffs.push(d);
    }
    if bits.pos > end_bit {
        return Err(DcError::Corrupt("the scan's data ends early".into()));
    }
    let mut pred = [0i32; 4];
    for (i, d) in diffs.iter_mut().enumerate() {
        let p = &mut pred[layout.slots[i % n].comp];
        *p = p.wrapping_add(*d);
        *d = *p;
    }
    Ok((diffs, starts.at))
}
