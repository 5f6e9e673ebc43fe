//! Our own JPEG decoding, built for large photos on every core: the first picture at one
//! eighth of the size from the DC coefficients alone (here), and the full resolution in bands
//! of rows (`bands`) for the tile pyramid.
//!
//! At 1/8 scale every 8x8 block becomes one pixel whose value is the block's DC coefficient, so
//! no inverse DCT is needed, only the entropy decoding. This decoder does just that, as fast as
//! the data allows: a sequential (baseline) scan is decoded on all cores (restart intervals side
//! by side, or pieces decoded speculatively when the file has no restart markers, see
//! `speculative`), and a progressive file needs only its DC scans, a small part of the file,
//! the AC scans being stepped over by their markers. The result equals libjpeg's 1/8-scale
//! decode up to rounding and chroma upsampling (nearest here).
//!
//! It handles 8-bit Huffman-coded greyscale and three-component files (YCbCr, or RGB by the
//! Adobe marker or component ids); anything else is `Unsupported` and the caller decodes by
//! the general path.

mod bands;
mod headers;
mod huffman;
mod idct;
mod scan;
mod speculative;

pub use bands::JpegBands;

use image::RgbImage;
use thiserror::Error;

use headers::{Frame, Markers, Tables};
use huffman::Clean;
use scan::{Kind, Layout};

/// Why the eighth-scale decoder gave no picture.
#[derive(Debug, Error)]
pub enum DcError {
    #[error("not handled by the eighth-scale decoder: {0}")]
    Unsupported(&'static str),
    #[error("corrupt JPEG: {0}")]
    Corrupt(String),
}

/// Decode `bytes` at 1/8 scale (each side rounded up) on up to `threads` threads, as stored
/// (no EXIF orientation applied).
pub fn decode_eighth(bytes: &[u8], threads: usize) -> Result<RgbImage, DcError> {
    let mut markers = Markers::new(bytes)?;
    let mut tables = Tables::default();
    let mut frame: Option<Frame> = None;
    let mut planes: Vec<Vec<i32>> = Vec::new();
    let mut seen_dc = false;
    while let Some(code) = markers.next_marker() {
        match code {
            0xC0..=0xC2 => {
                let f = headers::frame(markers.segment()?, code == 0xC2)?;
                planes = f.comps.iter().map(|c| vec![0; c.bw * c.bh]).collect();
                frame = Some(f);
            }
            0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Err(DcError::Unsupported(
                    "lossless, hierarchical or arithmetic coding",
                ));
            }
            0xDA => {
                let (header, data) = markers.scan(frame.as_ref())?;
                let f = frame
                    .as_ref()
                    .ok_or_else(|| DcError::Corrupt("a scan before the frame header".into()))?;
                seen_dc |= read_scan(f, &header, &tables, &bytes[data], threads, &mut planes)?;
            }
            0xD9 => break,
            _ => headers::table_or_skip(code, &mut markers, &mut tables)?,
        }
    }
    let frame = frame.ok_or_else(|| DcError::Corrupt("no frame header".into()))?;
    if !seen_dc {
        return Err(DcError::Corrupt("no scan carries DC coefficients".into()));
    }
    assemble(&frame, &tables, &planes, threads)
}

/// Width and height from the frame header, reading only the segments before it; `None` when
/// there is no readable frame header before the first scan.
pub fn frame_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let (_, body) = frame_header(bytes)?;
    let h = u32::from(u16::from_be_bytes([*body.get(1)?, *body.get(2)?]));
    let w = u32::from(u16::from_be_bytes([*body.get(3)?, *body.get(4)?]));
    (w > 0 && h > 0).then_some((w, h))
}

/// Whether the frame header says progressive (Huffman-coded, SOF2).
pub fn is_progressive(bytes: &[u8]) -> bool {
    frame_header(bytes).is_some_and(|(code, _)| code == 0xC2)
}

/// The first frame header's marker code and body, reading only the segments before it.
fn frame_header(bytes: &[u8]) -> Option<(u8, &[u8])> {
    let mut markers = Markers::new(bytes).ok()?;
    while let Some(code) = markers.next_marker() {
        match code {
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                return Some((code, markers.segment().ok()?));
            }
            0xDA | 0xD9 => return None,
            0xD0..=0xD7 | 0x01 => {}
            _ => {
                markers.segment().ok()?;
            }
        }
    }
    None
}

/// Decode one scan into the planes; whether it carried DC coefficients.
fn read_scan(
    frame: &Frame,
    header: &headers::Scan,
    tables: &Tables,
    data: &[u8],
    threads: usize,
    planes: &mut [Vec<i32>],
) -> Result<bool, DcError> {
    let kind = match (frame.progressive, header.ss, header.ah) {
        (false, _, _) => Kind::Baseline,
        (true, 0, 0) => Kind::DcFirst,
        (true, 0, _) => Kind::DcRefine,
        // An AC scan of a progressive file: not needed at 1/8.
        (true, _, _) => return Ok(false),
    };
    let layout = Layout::new(frame, header, tables, kind)?;
    let clean = Clean::new(data);
    let whole_frame = header.comps.len() == frame.comps.len();
    let values = if kind == Kind::Baseline && tables.restart == 0 && whole_frame && threads > 1 {
        speculative::decode(&layout, &clean, threads, 0)?.0
    } else {
        scan::decode(&layout, &clean, tables.restart, threads)?
    };
    scatter(frame, &layout, &values, u32::from(header.al), planes);
    Ok(true)
}

/// Put a scan's values (one per block, in scan order) into the component planes, shifted left
/// by `al` (a refinement scan's bits are or-ed in).
fn scatter(frame: &Frame, layout: &Layout, values: &[i32], al: u32, planes: &mut [Vec<i32>]) {
    let n = layout.slots.len().max(1);
    // Units walked in order with their column and row counted along (no division per block:
    // this loop runs once per block, millions of times for a large photo).
    let (mut ux, mut uy) = (0usize, 0usize);
    for unit in values.chunks(n) {
        for (slot, &v) in unit.iter().enumerate() {
            let (comp, at) = layout.plane_index_at(frame, ux, uy, slot);
            let Some(cell) = planes.get_mut(comp).and_then(|p| p.get_mut(at)) else {
                continue;
            };
            match layout.kind {
                Kind::DcRefine => *cell |= v << al,
                _ => *cell = v << al,
            }
        }
        ux += 1;
        if ux == layout.across {
            ux = 0;
            uy += 1;
        }
    }
}

/// The planes as an RGB picture of ceil(width / 8) x ceil(height / 8).
fn assemble(
    frame: &Frame,
    tables: &Tables,
    planes: &[Vec<i32>],
    threads: usize,
) -> Result<RgbImage, DcError> {
    let (w, h) = (frame.width.div_ceil(8), frame.height.div_ceil(8));
    // Each plane as samples: DC times its step, over 8, plus the level shift.
    let samples: Vec<Vec<u8>> = frame
        .comps
        .iter()
        .zip(planes)
        .map(|(c, plane)| {
            let q = i32::from(tables.q[c.tq].map_or(1, |t| t[0]));
            plane
                .iter()
                .map(|&dc| (dc.wrapping_mul(q).wrapping_add(4 + 1024) >> 3).clamp(0, 255) as u8)
                .collect()
        })
        .collect();
    let transform = colour_transform(frame, tables);
    let (w32, h32) = (
        u32::try_from(w).map_err(|_| DcError::Unsupported("too wide"))?,
        u32::try_from(h).map_err(|_| DcError::Unsupported("too tall"))?,
    );
    let mut out = RgbImage::new(w32, h32);
    // Bands of rows on every thread: each component at the output's size (subsampled chroma
    // interpolated like libjpeg's "fancy" upsampling: linear between sample centres), then
    // the colour transform.
    let band_rows = h.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        for (band, pixels) in out.chunks_mut(band_rows * w * 3).enumerate() {
            let samples = &samples;
            scope.spawn(move || {
                let rows = band * band_rows..(band * band_rows + band_rows).min(h);
                let full: Vec<Vec<u8>> = frame
                    .comps
                    .iter()
                    .zip(samples)
                    .map(|(c, s)| {
                        let (fx, fy) = (frame.hmax / c.h, frame.vmax / c.v);
                        upsample(s, (c.bw, c.bh), (fx, fy), w, h, rows.clone())
                    })
                    .collect();
                for (i, px) in pixels.chunks_exact_mut(3).enumerate() {
                    px.copy_from_slice(&match full.len() {
                        1 => [full[0][i]; 3],
                        _ if transform => ycbcr(full[0][i], full[1][i], full[2][i]),
                        _ => [full[0][i], full[1][i], full[2][i]],
                    });
                }
            });
        }
    });
    Ok(out)
}

/// Whether the three components are YCbCr to be turned into RGB (else they are RGB already):
/// as an Adobe marker says, else by the component ids.
fn colour_transform(frame: &Frame, tables: &Tables) -> bool {
    let rgb_ids = frame.comps.iter().map(|c| c.id).eq([b'R', b'G', b'B']);
    match tables.adobe_transform {
        Some(t) => t != 0,
        None => !rgb_ids,
    }
}

/// Rows `rows` of one plane of `bw` x `bh` samples, each covering `fx` x `fy` output pixels,
/// seen as `w` x `h` pixels.
fn upsample(
    plane: &[u8],
    (bw, bh): (usize, usize),
    (fx, fy): (usize, usize),
    w: usize,
    h: usize,
    rows: std::ops::Range<usize>,
) -> Vec<u8> {
    // For each output column (row): the two samples around it and the second one's weight of
    // 256, from sample centres at (i + 0.5) * f.
    let taps = |n: usize, f: usize, limit: usize| -> Vec<(usize, usize, u32)> {
        (0..n)
            .map(|x| {
                if f == 1 {
                    return (x.min(limit - 1), x.min(limit - 1), 0);
                }
                let pos = ((2 * x + 1) * 256 / (2 * f)).saturating_sub(128);
                let i = (pos / 256).min(limit - 1);
                (i, (i + 1).min(limit - 1), (pos % 256) as u32)
            })
            .collect()
    };
    let (cols, all_rows) = (taps(w, fx, bw.max(1)), taps(h, fy, bh.max(1)));
    let at = |x: usize, y: usize| u32::from(plane.get(y * bw + x).copied().unwrap_or(128));
    let mut out = Vec::with_capacity(w * rows.len());
    for &(y0, y1, wy) in &all_rows[rows] {
        for &(x0, x1, wx) in &cols {
            let top = at(x0, y0) * (256 - wx) + at(x1, y0) * wx;
            let bottom = at(x0, y1) * (256 - wx) + at(x1, y1) * wx;
            out.push(((top * (256 - wy) + bottom * wy + (1 << 15)) >> 16) as u8);
        }
    }
    out
}

/// JFIF's YCbCr to RGB, in 16.16 fixed point.
fn ycbcr(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let (y, cb, cr) = (i32::from(y) << 16, i32::from(cb) - 128, i32::from(cr) - 128);
    let half = 1 << 15;
    let r = y + 91_881 * cr;
    let g = y - 22_554 * cb - 46_802 * cr;
    let b = y + 116_130 * cb;
    [r, g, b].map(|v| ((v + half) >> 16).clamp(0, 255) as u8)
}

#[cfg(test)]
mod bands_tests;
#[cfg(test)]
mod tests;
