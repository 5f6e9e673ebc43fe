//! Entropy-coded data as plain bits, and Huffman decoding over it with lookup tables sized for
//! skipping AC coefficients fast.
//!
//! The scan's bytes are first copied without their stuffing (the 0x00 after each 0xFF) and
//! without restart markers, so a bit position is one number both a speculative decoder and the
//! true decode can compare, and reading is one unaligned 64-bit load.

use super::DcError;
use super::headers::ZIGZAG;

/// Bits looked up at once for a Huffman code.
const LOOK: u32 = 9;
/// Bits looked up at once for AC codes and their extra bits together.
const AC_LOOK: u32 = 12;
/// Zero bytes after the data, so a read near the end never leaves the buffer.
pub(super) const PAD: usize = 512;

/// A scan's entropy-coded data without stuffing, and where each restart interval starts.
pub(super) struct Clean {
    /// The bits, then `PAD` zero bytes.
    pub data: Vec<u8>,
    /// Bytes of real data (before the padding).
    pub len: usize,
    /// Byte offset in `data` where each restart interval starts (the first is 0).
    pub intervals: Vec<usize>,
}

impl Clean {
    pub fn new(raw: &[u8]) -> Clean {
        let mut data = Vec::with_capacity(raw.len() + PAD);
        let mut intervals = vec![0];
        let mut j = 0;
        while let Some(ff) = memchr::memchr(0xFF, &raw[j..]) {
            let i = j + ff;
            data.extend_from_slice(&raw[j..i]);
            match raw.get(i + 1) {
                Some(0x00) => {
                    data.push(0xFF);
                    j = i + 2;
                }
                Some(0xD0..=0xD7) => {
                    intervals.push(data.len());
                    j = i + 2;
                }
                // Fill bytes before a marker, or a lone 0xFF at the very end.
                _ => j = i + 1,
            }
        }
        data.extend_from_slice(&raw[j..]);
        let len = data.len();
        data.resize(len + PAD, 0);
        Clean {
            data,
            len,
            intervals,
        }
    }

    /// The end of the real data, in bits.
    pub fn end_bit(&self) -> u64 {
        self.len as u64 * 8
    }
}

/// A position in clean data, read 64 bits at a time.
pub(super) struct Bits<'a> {
    data: &'a [u8],
    pub pos: u64,
}

impl<'a> Bits<'a> {
    pub fn new(clean: &'a Clean, pos: u64) -> Self {
        Bits {
            data: &clean.data,
            pos,
        }
    }

    /// The next 57 or more bits, most significant first.
    #[inline(always)]
    pub fn window(&self) -> u64 {
        let i = (self.pos >> 3) as usize;
        let word = self
            .data
            .get(i..i + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes);
        word << (self.pos & 7)
    }

    /// Read `s` bits (0 to 16) as a signed coefficient in JPEG's magnitude coding.
    #[inline(always)]
    pub fn receive_extend(&mut self, s: u8) -> i32 {
        if s == 0 {
            return 0;
        }
        let v = (self.window() >> (64 - u32::from(s))) as i32;
        self.pos += u64::from(s);
        if v < 1 << (s - 1) {
            v - (1 << s) + 1
        } else {
            v
        }
    }
}

/// One Huffman table with its fast lookups.
#[derive(Debug, Clone)]
pub(super) struct Huffman {
    /// For each `LOOK`-bit prefix: `(length << 8) | symbol`, or 0 when the code is longer.
    fast: Vec<u16>,
    /// For each `AC_LOOK`-bit prefix of AC codes, two ways to step: bits 0-15 hold the first
    /// code alone, `(bits << 8) | advance` where bits covers the code and its extra bits and
    /// advance is how many coefficients it moves (0 = end of block), 0 when it does not fit;
    /// bits 16-31 hold as many whole codes as fit, `(bits << 8) | advance`, with advance's
    /// top bit set when the last of them ends the block. The run is taken only while the
    /// block cannot fill up inside it (a full block has no end-of-block code, and the bits
    /// after it are the next block's).
    ac_fast: Vec<u32>,
    /// For each `AC_LOOK`-bit prefix of AC codes, the first code decoded with its value when
    /// the code and its extra bits fit: bits 0-7 the zero run before the coefficient (or
    /// `ZRL`/`EOB`), 8-15 the bits taken (0 = does not fit), 16-31 the value as i16.
    ac_value: Vec<u32>,
    /// The largest code of each length (index = length), -1 when none.
    max_code: [i32; 18],
    /// Index in `values` of a length's code, minus that length's first code.
    offset: [i32; 17],
    values: Vec<u8>,
}

impl Huffman {
    pub fn new(counts: &[u8; 16], values: &[u8]) -> Result<Huffman, DcError> {
        let mut max_code = [-1i32; 18];
        let mut offset = [0i32; 17];
        let mut fast = vec![0u16; 1 << LOOK];
        let mut code = 0i32;
        let mut k = 0usize;
        for len in 1..=16usize {
            let n = usize::from(counts[len - 1]);
            offset[len] = k as i32 - code;
            for _ in 0..n {
                if code >= 1 << len {
                    return Err(DcError::Corrupt(
                        "a Huffman table has too many codes".into(),
                    ));
                }
                if len as u32 <= LOOK {
                    let shift = LOOK - len as u32;
                    let first = (code as usize) << shift;
                    let entry = ((len as u16) << 8) | u16::from(values[k]);
                    fast[first..first + (1 << shift)].fill(entry);
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                max_code[len] = code - 1;
            }
            code <<= 1;
        }
        max_code[17] = i32::MAX;
        let mut table = Huffman {
            fast,
            ac_fast: vec![0u32; 1 << AC_LOOK],
            ac_value: Vec::new(),
            max_code,
            offset,
            values: values.to_vec(),
        };
        table.ac_fast = (0..1u64 << AC_LOOK)
            .map(|prefix| table.ac_entry(prefix))
            .collect();
        table.ac_value = (0..1u64 << AC_LOOK)
            .map(|prefix| table.ac_value_entry(prefix))
            .collect();
        Ok(table)
    }

    /// One AC code at the top of `word`: (bits with its extra bits, advance; 0 = end of block).
    fn ac_step(&self, word: u64) -> Option<(u32, u32)> {
        let (len, rs) = self.lookup(word)?;
        let (r, s) = (u32::from(rs >> 4), u32::from(rs & 15));
        Some(match (r, s) {
            (15, 0) => (len, 16),
            (_, 0) => (len, 0),
            _ => (len + s, r + 1),
        })
    }

    fn ac_entry(&self, prefix: u64) -> u32 {
        let word = prefix << (64 - AC_LOOK);
        let Some((bits, advance)) = self.ac_step(word).filter(|&(b, _)| b <= AC_LOOK) else {
            return 0;
        };
        let single = (bits << 8) | advance;
        // As many whole codes as the prefix holds, stopping after an end of block.
        let (mut total_bits, mut total_advance, mut ends) = (bits, advance, advance == 0);
        while !ends {
            let Some((b, a)) = self.ac_step(word << total_bits) else {
                break;
            };
            // Past 63 coefficients a run is never taken (and 0x80 is the end flag).
            if total_bits + b > AC_LOOK || total_advance + a > 63 {
                break;
            }
            total_bits += b;
            total_advance += a;
            ends = a == 0;
        }
        let run = (total_bits << 8) | total_advance | if ends { 0x80 } else { 0 };
        (run << 16) | single
    }

    fn ac_value_entry(&self, prefix: u64) -> u32 {
        let word = prefix << (64 - AC_LOOK);
        let Some((len, rs)) = self.lookup(word) else {
            return 0;
        };
        let (r, s) = (u32::from(rs >> 4), u32::from(rs & 15));
        if len + s > AC_LOOK {
            return 0;
        }
        let kind = match (r, s) {
            (15, 0) => ZRL,
            (_, 0) => EOB,
            _ => r,
        };
        let value = if s == 0 {
            0
        } else {
            let v = ((word << len) >> (64 - s)) as i32;
            if v < 1 << (s - 1) {
                v - (1 << s) + 1
            } else {
                v
            }
        };
        (u32::from(value as i16 as u16) << 16) | ((len + s) << 8) | kind
    }

    /// Decode one block's AC coefficients (baseline: 1 to 63) into `block` (natural order,
    /// multiplied by `steps`, given in zigzag order; `block` holds zeros there on entry).
    /// Returns the zigzag index of the last coefficient set (0 when none).
    #[inline(always)]
    pub fn decode_ac(
        &self,
        bits: &mut Bits,
        block: &mut [i32; 64],
        steps: &[i32; 64],
    ) -> Result<usize, BadCode> {
        let mut k = 1usize;
        let mut last = 0usize;
        while k < 64 {
            let word = bits.window();
            let e = self.ac_value[(word >> (64 - AC_LOOK)) as usize];
            let (kind, value) = if e & 0xFF00 != 0 {
                bits.pos += u64::from((e >> 8) & 0xFF);
                (e & 0xFF, i32::from((e >> 16) as u16 as i16))
            } else {
                let (len, rs) = self.lookup(word).ok_or(BadCode)?;
                let (r, s) = (u32::from(rs >> 4), rs & 15);
                bits.pos += u64::from(len);
                match (r, s) {
                    (15, 0) => (ZRL, 0),
                    (_, 0) => (EOB, 0),
                    _ => (r, bits.receive_extend(s)),
                }
            };
            match kind {
                EOB => break,
                ZRL => k += 16,
                run => {
                    k += run as usize;
                    let at = *ZIGZAG.get(k).ok_or(BadCode)?;
                    block[usize::from(at)] = value.saturating_mul(steps[k]);
                    last = k;
                    k += 1;
                }
            }
        }
        if k > 64 { Err(BadCode) } else { Ok(last) }
    }

    /// The code at the top of `word`: (length, symbol).
    #[inline(always)]
    fn lookup(&self, word: u64) -> Option<(u32, u8)> {
        let e = self.fast[(word >> (64 - LOOK)) as usize];
        if e != 0 {
            return Some((u32::from(e >> 8), (e & 0xFF) as u8));
        }
        for len in LOOK as usize + 1..=16 {
            let code = (word >> (64 - len)) as i32;
            if code <= self.max_code[len] {
                let i = (code + self.offset[len]) as usize;
                return self.values.get(i).map(|&v| (len as u32, v));
            }
        }
        None
    }

    /// Decode one symbol.
    #[inline(always)]
    pub fn decode(&self, bits: &mut Bits) -> Result<u8, BadCode> {
        let (len, v) = self.lookup(bits.window()).ok_or(BadCode)?;
        bits.pos += u64::from(len);
        Ok(v)
    }

    /// Step over one block's AC coefficients (baseline: 1 to 63).
    #[inline(always)]
    pub fn skip_ac(&self, bits: &mut Bits) -> Result<(), BadCode> {
        let mut k = 1u32;
        while k < 64 {
            let word = bits.window();
            let e = self.ac_fast[(word >> (64 - AC_LOOK)) as usize];
            // Several codes at once while the block cannot fill up inside them.
            let run = e >> 16;
            let run_advance = run & 0x7F;
            if run != 0 && k + run_advance <= 63 {
                bits.pos += u64::from(run >> 8);
                if run & 0x80 != 0 {
                    return Ok(());
                }
                k += run_advance;
                continue;
            }
            let single = e & 0xFFFF;
            if single != 0 {
                bits.pos += u64::from(single >> 8);
                let advance = single & 0xFF;
                if advance == 0 {
                    return Ok(());
                }
                k += advance;
                continue;
            }
            let (len, rs) = self.lookup(word).ok_or(BadCode)?;
            let (r, s) = (u32::from(rs >> 4), u32::from(rs & 15));
            bits.pos += u64::from(len + s);
            match (r, s) {
                (15, 0) => k += 16,
                (_, 0) => return Ok(()),
                _ => k += r + 1,
            }
        }
        if k > 64 { Err(BadCode) } else { Ok(()) }
    }
}

/// `ac_value` kinds besides a zero run: sixteen zeros, the end of the block.
const ZRL: u32 = 0x40;
const EOB: u32 = 0x80;

/// A bit pattern that is no code of the table, or a block of more than 64 coefficients.
#[derive(Debug, Clone, Copy)]
pub(super) struct BadCode;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffing_and_restart_markers_are_taken_out() {
        let raw = [
            0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56, 0xFF, 0xFF, 0xD1, 0x78,
        ];
        let clean = Clean::new(&raw);
        assert_eq!(&clean.data[..clean.len], &[0x12, 0xFF, 0x34, 0x56, 0x78]);
        assert_eq!(clean.intervals, vec![0, 3, 4]);
        assert_eq!(clean.data.len(), clean.len + PAD);
    }

    #[test]
    fn codes_decode_short_and_long() {
        // Lengths: one code of 2 bits (00 -> 5), one of 3 (010 -> 7), one of 12 bits.
        let mut counts = [0u8; 16];
        counts[1] = 1;
        counts[2] = 1;
        counts[11] = 1;
        let t = Huffman::new(&counts, &[5, 7, 9]).unwrap();
        // 00 | 010 | 011000000000 (the 12-bit code is 011 followed by nine zeros).
        let raw = [0b0001_0011, 0b0000_0000, 0b0000_0000];
        let clean = Clean::new(&raw);
        let mut bits = Bits::new(&clean, 0);
        assert_eq!(t.decode(&mut bits).unwrap(), 5);
        assert_eq!(t.decode(&mut bits).unwrap(), 7);
        assert_eq!(t.decode(&mut bits).unwrap(), 9);
        assert_eq!(bits.pos, 17);
        // All ones is no code.
        let ones = Clean::new(&[0xFE, 0xFE]);
        assert!(t.decode(&mut Bits::new(&ones, 0)).is_err());
    }

    #[test]
    fn too_many_codes_is_corrupt() {
        let mut counts = [0u8; 16];
        counts[0] = 3;
        assert!(Huffman::new(&counts, &[1, 2, 3]).is_err());
    }

    #[test]
    fn extend_gives_signed_values() {
        let clean = Clean::new(&[0b0110_0000]);
        let mut bits = Bits::new(&clean, 0);
        // "011" in three bits is -4, "00" in two is -3.
        assert_eq!(bits.receive_extend(3), -4);
        assert_eq!(bits.receive_extend(2), -3);
        assert_eq!(bits.receive_extend(0), 0);
    }
}
