//! A baseline JPEG at full resolution, any band of rows at a time, on every core.
//!
//! Opening a file runs the DC pass (`speculative`, the same one the eighth-scale picture uses)
//! to learn where each MCU row's data begins and the DC predictions there, or reads the restart
//! markers; after that any band of rows decodes on its own, its MCU rows split between threads:
//! entropy decoding with values, dequantisation, the integer inverse DCT, then chroma
//! upsampled as libjpeg does by default (linear between sample centres, with a row of MCUs
//! above and below the band decoded for context) and the colour transform. A large photo is
//! never whole in memory: the tile pyramid takes it band by band.
//!
//! Handles what the DC decoder handles, less progressive files and files whose components
//! come in separate scans, and with chroma subsampled at most by two each way; anything else
//! is `Unsupported` and goes to the general decoder.

use std::ops::Range;

use image::RgbImage;
use rayon::prelude::*;

use super::headers::{self, Frame, Markers, Scan, Tables, ZIGZAG};
use super::huffman::{Bits, Clean};
use super::scan::{Kind, Layout};
use super::{DcError, idct, speculative};

/// Where decoding for an MCU row starts: the bit, the DC predictions, and how many MCUs of the
/// restart interval before the row are to be stepped over.
#[derive(Debug, Clone, Copy)]
struct RowStart {
    pos: u64,
    pred: [i32; 4],
    skip: usize,
}

/// An opened baseline JPEG, ready to decode bands of rows.
pub struct JpegBands {
    frame: Frame,
    scan: Scan,
    tables: Tables,
    clean: Clean,
    starts: Vec<RowStart>,
    transform: bool,
    /// Each frame component's quantisation steps, in zigzag order.
    steps: Vec<[i32; 64]>,
    /// The component planes of the last band, kept for the next (fresh buffers of this size
    /// cost a page fault every 4 KiB).
    planes: std::sync::Mutex<Vec<Vec<u8>>>,
    /// The eighth-scale picture, when opening ran the DC pass (a file without restart markers).
    eighth: Option<RgbImage>,
}

fn bad_code(at: usize) -> DcError {
    DcError::Corrupt(format!("a bad Huffman code in MCU {at}"))
}

impl JpegBands {
    /// Read the headers and find every MCU row's start (the DC pass on `threads` threads).
    pub fn open(bytes: &[u8], threads: usize) -> Result<JpegBands, DcError> {
        let mut markers = Markers::new(bytes)?;
        let mut tables = Tables::default();
        let mut frame: Option<Frame> = None;
        let mut found = None;
        while let Some(code) = markers.next_marker() {
            match code {
                0xC0 | 0xC1 => frame = Some(headers::frame(markers.segment()?, false)?),
                0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                    return Err(DcError::Unsupported(
                        "progressive, lossless, hierarchical or arithmetic coding",
                    ));
                }
                0xDA => {
                    found = Some(markers.scan(frame.as_ref())?);
                    break;
                }
                0xD9 => break,
                _ => headers::table_or_skip(code, &mut markers, &mut tables)?,
            }
        }
        let frame = frame.ok_or_else(|| DcError::Corrupt("no frame header".into()))?;
        let (scan, data) = found.ok_or_else(|| DcError::Corrupt("no scan".into()))?;
        if scan.comps.len() != frame.comps.len() {
            return Err(DcError::Unsupported("components in separate scans"));
        }
        if !matches!(markers.next_marker(), None | Some(0xD9)) {
            return Err(DcError::Unsupported("more than one scan"));
        }
        for c in &frame.comps {
            let (fx, fy) = (frame.hmax / c.h, frame.vmax / c.v);
            if frame.hmax % c.h != 0 || frame.vmax % c.v != 0 || fx > 2 || fy > 2 {
                return Err(DcError::Unsupported("chroma subsampled by more than two"));
            }
        }
        let steps = frame
            .comps
            .iter()
            .map(|c| {
                let q = tables.q[c.tq].ok_or_else(|| {
                    DcError::Corrupt("a component's quantisation table is missing".into())
                })?;
                Ok(std::array::from_fn(|k| {
                    i32::from(q[usize::from(ZIGZAG[k])])
                }))
            })
            .collect::<Result<Vec<[i32; 64]>, DcError>>()?;
        let clean = Clean::new(&bytes[data]);
        let transform = super::colour_transform(&frame, &tables);
        let mut bands = JpegBands {
            frame,
            scan,
            tables,
            clean,
            starts: Vec::new(),
            transform,
            steps,
            planes: std::sync::Mutex::new(Vec::new()),
            eighth: None,
        };
        (bands.starts, bands.eighth) = bands.row_starts(threads)?;
        Ok(bands)
    }

    pub fn width(&self) -> usize {
        self.frame.width
    }

    pub fn height(&self) -> usize {
        self.frame.height
    }

    /// The picture at one eighth of the size (as `decode_eighth` makes it) when opening
    /// computed it on the way, which it does for files without restart markers.
    pub fn eighth(&self) -> Option<&RgbImage> {
        self.eighth.as_ref()
    }

    fn layout(&self) -> Result<Layout<'_>, DcError> {
        Layout::new(&self.frame, &self.scan, &self.tables, Kind::Baseline)
    }

    /// Where each MCU row starts; from the DC pass when it runs, also the eighth-scale picture.
    fn row_starts(&self, threads: usize) -> Result<(Vec<RowStart>, Option<RgbImage>), DcError> {
        let layout = self.layout()?;
        let (n, across) = (layout.slots.len(), layout.across);
        let rows = layout.units / across.max(1);
        let restart = self.tables.restart;
        if restart > 0 {
            let starts = (0..rows)
                .map(|r| {
                    let m = r * across;
                    let at =
                        self.clean.intervals.get(m / restart).ok_or_else(|| {
                            DcError::Corrupt("restart markers are missing".into())
                        })?;
                    Ok(RowStart {
                        pos: *at as u64 * 8,
                        pred: [0; 4],
                        skip: m % restart,
                    })
                })
                .collect::<Result<_, DcError>>()?;
            return Ok((starts, None));
        }
        let (values, at) = speculative::decode(&layout, &self.clean, threads, across * n)?;
        let starts = (0..rows)
            .map(|r| {
                let pos = *at
                    .get(r)
                    .ok_or_else(|| DcError::Corrupt("the scan's data ends early".into()))?;
                let mut pred = [0; 4];
                if r > 0 {
                    // The last block of each component in the MCU before the row.
                    let before = (r * across - 1) * n;
                    for (slot, s) in layout.slots.iter().enumerate() {
                        pred[s.comp] = values[before + slot];
                    }
                }
                Ok(RowStart { pos, pred, skip: 0 })
            })
            .collect::<Result<_, DcError>>()?;
        let mut planes: Vec<Vec<i32>> = self
            .frame
            .comps
            .iter()
            .map(|c| vec![0; c.bw * c.bh])
            .collect();
        super::scatter(&self.frame, &layout, &values, 0, &mut planes);
        let eighth = super::assemble(&self.frame, &self.tables, &planes, threads).ok();
        Ok((starts, eighth))
    }

    /// Decode image rows `rows` (clamped to the image) as RGB, on up to `threads` threads.
    pub fn rows(&self, rows: Range<usize>, threads: usize) -> Result<RgbImage, DcError> {
        let mut out = Vec::new();
        let n = self.rows_into(rows, threads, &mut out)?;
        let w = u32::try_from(self.frame.width).map_err(|_| DcError::Unsupported("too wide"))?;
        RgbImage::from_raw(w, n, out).ok_or_else(|| DcError::Corrupt("a short band".into()))
    }

    /// Decode image rows `rows` (clamped to the image) as RGB into `out` (resized to fit, its
    /// buffer reused), in pieces on rayon's threads (`threads` sets how finely the work is cut);
    /// the number of rows.
    pub fn rows_into(
        &self,
        rows: Range<usize>,
        threads: usize,
        out: &mut Vec<u8>,
    ) -> Result<u32, DcError> {
        let (w, h) = (self.frame.width, self.frame.height);
        let rows = rows.start.min(h)..rows.end.min(h).max(rows.start.min(h));
        let threads = threads.max(1);
        let mcu_h = 8 * self.frame.vmax;
        let context = usize::from(self.frame.comps.iter().any(|c| c.v < self.frame.vmax));
        let first = (rows.start / mcu_h).saturating_sub(context);
        let last = (rows.end.div_ceil(mcu_h) + context).min(self.starts.len());
        let count = last.saturating_sub(first);
        let mut planes = self
            .planes
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default();
        planes.resize_with(self.frame.comps.len(), Vec::new);
        // Every byte of the MCU rows decoded is written, so a reused plane needs no clearing.
        for (plane, c) in planes.iter_mut().zip(&self.frame.comps) {
            plane.resize(c.bw * 8 * count * c.v * 8, 0);
        }
        // Pieces of a few MCU rows (each starts where the DC pass found its row), more pieces
        // than cores so the work spreads evenly however the detail (and so the data) falls.
        let per = count.div_ceil(threads * 4).clamp(1, 4);
        let mut parts: Vec<Vec<&mut [u8]>> = (0..count.div_ceil(per)).map(|_| Vec::new()).collect();
        for (plane, c) in planes.iter_mut().zip(&self.frame.comps) {
            for (part, chunk) in parts
                .iter_mut()
                .zip(plane.chunks_mut(per * c.v * 8 * c.bw * 8))
            {
                part.push(chunk);
            }
        }
        let layout = self.layout()?;
        parts
            .into_par_iter()
            .enumerate()
            .try_for_each(|(t, part)| {
                let range = first + t * per..(first + (t + 1) * per).min(last);
                self.decode_mcu_rows(&layout, range, part)
            })?;
        out.resize(rows.len() * w * 3, 0);
        let band = rows.len().div_ceil(threads * 4).max(1);
        out.par_chunks_mut(band * w * 3)
            .enumerate()
            .for_each(|(b, pixels)| {
                self.colour_rows(&planes, first, rows.start + b * band, pixels)
            });
        if let Ok(mut keep) = self.planes.lock() {
            *keep = planes;
        }
        Ok(rows.len() as u32)
    }

    /// Decode MCU rows `range` into `planes` (each component's rows of those MCUs).
    fn decode_mcu_rows(
        &self,
        layout: &Layout,
        range: Range<usize>,
        mut planes: Vec<&mut [u8]>,
    ) -> Result<(), DcError> {
        let Some(start) = self.starts.get(range.start) else {
            return Ok(());
        };
        let (across, n) = (layout.across, layout.slots.len());
        let restart = self.tables.restart;
        let end_bit = self.clean.end_bit();
        let strides: Vec<usize> = self.frame.comps.iter().map(|c| c.bw * 8).collect();
        let mut bits = Bits::new(&self.clean, start.pos);
        let mut pred = start.pred;
        let mut block = [0i32; 64];
        let first_mcu = range.start * across;
        let first_decoded = first_mcu - start.skip;
        for m in first_decoded..range.end * across {
            if restart > 0 && m > first_decoded && m % restart == 0 {
                let at = self
                    .clean
                    .intervals
                    .get(m / restart)
                    .ok_or_else(|| DcError::Corrupt("restart markers are missing".into()))?;
                bits.pos = *at as u64 * 8;
                pred = [0; 4];
            }
            let (ux, uy) = (m % across, m / across);
            for slot in 0..n {
                let s = layout.slots[slot];
                let (dc, ac) = layout.tables[slot];
                let ac = ac.ok_or_else(|| bad_code(m))?;
                let size = dc.decode(&mut bits).map_err(|_| bad_code(m))?;
                if size > 11 {
                    return Err(bad_code(m));
                }
                let p = &mut pred[s.comp];
                *p = p.wrapping_add(bits.receive_extend(size));
                if m < first_mcu {
                    ac.skip_ac(&mut bits).map_err(|_| bad_code(m))?;
                    continue;
                }
                let steps = &self.steps[s.comp];
                block[0] = p.saturating_mul(steps[0]);
                let last = ac
                    .decode_ac(&mut bits, &mut block, steps)
                    .map_err(|_| bad_code(m))?;
                let c = &self.frame.comps[s.comp];
                let row = uy - range.start;
                let (bx, by) = if layout.interleaved {
                    (ux * c.h + s.dx, row * c.v + s.dy)
                } else {
                    (ux, row)
                };
                let stride = strides[s.comp];
                if let Some(dst) = planes[s.comp].get_mut(by * 8 * stride + bx * 8..) {
                    idct::block_to_samples(&block, last, dst, stride);
                }
                if last == 0 {
                    block[0] = 0;
                } else {
                    block = [0; 64];
                }
            }
            if bits.pos > end_bit {
                return Err(DcError::Corrupt("the scan's data ends early".into()));
            }
        }
        Ok(())
    }

    /// Colour rows from `start` on into `pixels`, from planes that begin at MCU row `first`.
    fn colour_rows(&self, planes: &[Vec<u8>], first: usize, start: usize, pixels: &mut [u8]) {
        let f = &self.frame;
        let w = f.width;
        let mut upsampled: Vec<Vec<u8>> = f.comps.iter().map(|_| vec![0u8; w]).collect();
        let mut mixed: Vec<u16> = Vec::with_capacity(w);
        for (i, out) in pixels.chunks_exact_mut(w * 3).enumerate() {
            let y = start + i;
            for ((c, plane), row) in f.comps.iter().zip(planes).zip(upsampled.iter_mut()) {
                let stride = c.bw * 8;
                let rows_here = plane.len() / stride.max(1);
                let comp_h = (f.height * c.v).div_ceil(f.vmax);
                let comp_w = (w * c.h).div_ceil(f.hmax);
                let base = first * c.v * 8;
                let line = |cy: usize| -> &[u8] {
                    let local = cy.min(comp_h - 1).saturating_sub(base).min(rows_here - 1);
                    &plane[local * stride..local * stride + comp_w]
                };
                let (fx, fy) = (f.hmax / c.h, f.vmax / c.v);
                if fx == 1 && fy == 1 {
                    row.copy_from_slice(&line(y)[..w]);
                    continue;
                }
                // Vertically: three quarters of the nearer chroma row, one of the other (in
                // quarters); then horizontally the same, rounded back to 8 bits.
                mixed.clear();
                if fy == 2 {
                    let k = y / 2;
                    let other = if y.is_multiple_of(2) {
                        k.saturating_sub(1)
                    } else {
                        k + 1
                    };
                    let (near, far) = (line(k), line(other));
                    mixed.extend(
                        near.iter()
                            .zip(far)
                            .map(|(&a, &b)| 3 * u16::from(a) + u16::from(b)),
                    );
                } else {
                    mixed.extend(line(y).iter().map(|&a| 4 * u16::from(a)));
                }
                if fx == 2 {
                    upsample_across(&mixed, row);
                } else {
                    for (o, &m) in row.iter_mut().zip(&mixed) {
                        *o = ((m + 2) >> 2) as u8;
                    }
                }
            }
            match upsampled.as_slice() {
                [g] => {
                    for (px, &g) in out.chunks_exact_mut(3).zip(g) {
                        px.fill(g);
                    }
                }
                [a, b, c] if self.transform => ycbcr_row(a, b, c, out),
                [a, b, c] => {
                    for (((px, &r), &g), &b) in out.chunks_exact_mut(3).zip(a).zip(b).zip(c) {
                        px.copy_from_slice(&[r, g, b]);
                    }
                }
                _ => {}
            }
        }
    }
}

/// One row of JFIF YCbCr to RGB (16.16 fixed point, as `super::ycbcr`), written so the
/// compiler can keep it in vector registers.
fn ycbcr_row(y: &[u8], cb: &[u8], cr: &[u8], out: &mut [u8]) {
    const HALF: i32 = 1 << 15;
    for (((px, &y), &cb), &cr) in out.chunks_exact_mut(3).zip(y).zip(cb).zip(cr) {
        let (y, cb, cr) = (
            (i32::from(y) << 16) + HALF,
            i32::from(cb) - 128,
            i32::from(cr) - 128,
        );
        let r = (y + 91_881 * cr) >> 16;
        let g = (y - 22_554 * cb - 46_802 * cr) >> 16;
        let b = (y + 116_130 * cb) >> 16;
        px[0] = r.clamp(0, 255) as u8;
        px[1] = g.clamp(0, 255) as u8;
        px[2] = b.clamp(0, 255) as u8;
    }
}

/// Twice as many samples across: each output is three quarters of its own sample and one of
/// the next one out (`mixed` in quarters, so the result is over sixteen).
fn upsample_across(mixed: &[u16], out: &mut [u8]) {
    let n = mixed.len();
    let Some(&first) = mixed.first() else {
        return;
    };
    let at = |i: usize| u32::from(mixed[i.min(n - 1)]);
    let mix = |own: u32, other: u32| ((3 * own + other + 8) >> 4) as u8;
    // The edges, where the neighbour outside is the sample itself.
    if let Some(o) = out.get_mut(0) {
        *o = mix(u32::from(first), u32::from(first));
    }
    if let Some(o) = out.get_mut(1) {
        *o = mix(u32::from(first), at(1));
    }
    // The middle: sample i makes outputs 2i and 2i + 1.
    if let Some(inner) = out.get_mut(2..) {
        for (pair, win) in inner.chunks_exact_mut(2).zip(mixed.windows(3)) {
            let own = u32::from(win[1]);
            pair[0] = mix(own, u32::from(win[0]));
            pair[1] = mix(own, u32::from(win[2]));
        }
    }
    // The last sample's outputs (and an odd width's lone last one).
    let last = n - 1;
    let from = (2 * last).max(2);
    for (x, o) in out.iter_mut().enumerate().skip(from) {
        let other = if x.is_multiple_of(2) {
            last.saturating_sub(1)
        } else {
            last
        };
        *o = mix(at(x / 2), at(other));
    }
}
