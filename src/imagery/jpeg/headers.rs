//! The JPEG markers our decoders read: frame, scan, Huffman and quantisation headers, restart
//! interval, Adobe colour transform. Everything else is skipped by length.

use super::DcError;
use super::huffman::Huffman;

/// One colour component of the frame.
#[derive(Debug, Clone)]
pub(super) struct Component {
    pub id: u8,
    /// Sampling factors (blocks per MCU across and down).
    pub h: usize,
    pub v: usize,
    /// Quantisation table index.
    pub tq: usize,
    /// Blocks across and down in this component's plane (whole MCUs).
    pub bw: usize,
    pub bh: usize,
    /// Blocks across and down that hold the component's own samples (a non-interleaved scan's
    /// order).
    pub cbw: usize,
    pub cbh: usize,
}

/// The frame header (SOF0, SOF1 or SOF2).
#[derive(Debug, Clone)]
pub(super) struct Frame {
    pub width: usize,
    pub height: usize,
    pub progressive: bool,
    pub comps: Vec<Component>,
    pub hmax: usize,
    pub vmax: usize,
    pub mcux: usize,
    pub mcuy: usize,
}

/// One component of a scan: its index in the frame and its Huffman tables.
#[derive(Debug, Clone, Copy)]
pub(super) struct ScanComponent {
    pub comp: usize,
    pub dc: usize,
    pub ac: usize,
}

/// A scan header (SOS).
#[derive(Debug, Clone)]
pub(super) struct Scan {
    pub comps: Vec<ScanComponent>,
    pub ss: u8,
    pub ah: u8,
    pub al: u8,
}

/// The tables in force when a scan starts.
#[derive(Debug, Default, Clone)]
pub(super) struct Tables {
    pub dc: [Option<Huffman>; 4],
    pub ac: [Option<Huffman>; 4],
    /// Each quantisation table's steps in natural (row-major) order.
    pub q: [Option<[u16; 64]>; 4],
    pub restart: usize,
    /// The Adobe APP14 colour transform, when the file has one.
    pub adobe_transform: Option<u8>,
}

/// Reads marker segments from the start of the file.
pub(super) struct Markers<'a> {
    pub bytes: &'a [u8],
    pub at: usize,
}

fn corrupt(reason: &str) -> DcError {
    DcError::Corrupt(reason.to_owned())
}

fn ceil_div(a: usize, b: usize) -> usize {
    a.div_ceil(b.max(1))
}

impl<'a> Markers<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Self, DcError> {
        if bytes.get(..2) != Some(&[0xFF, 0xD8]) {
            return Err(corrupt("no start-of-image marker"));
        }
        Ok(Markers { bytes, at: 2 })
    }

    /// The next marker's code, `None` at the end of the bytes.
    pub fn next_marker(&mut self) -> Option<u8> {
        loop {
            let ff = memchr::memchr(0xFF, self.bytes.get(self.at..)?)?;
            self.at += ff + 1;
            let code = *self.bytes.get(self.at)?;
            if code == 0xFF || code == 0x00 {
                continue;
            }
            self.at += 1;
            return Some(code);
        }
    }

    /// The payload of the segment that starts here (after its marker), moving past it.
    pub fn segment(&mut self) -> Result<&'a [u8], DcError> {
        let len = self
            .bytes
            .get(self.at..self.at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or_else(|| corrupt("a segment is cut short"))?;
        if len < 2 {
            return Err(corrupt("a segment's length is under two bytes"));
        }
        let body = self
            .bytes
            .get(self.at + 2..self.at + len)
            .ok_or_else(|| corrupt("a segment is cut short"))?;
        self.at += len;
        Ok(body)
    }

    /// Read the scan header that starts here (against `frame`, an error without one) and step
    /// over the entropy-coded data after it: the header and where that data lies in the bytes.
    pub fn scan(
        &mut self,
        frame: Option<&Frame>,
    ) -> Result<(Scan, std::ops::Range<usize>), DcError> {
        let frame = frame.ok_or_else(|| corrupt("a scan before the frame header"))?;
        let header = scan(self.segment()?, frame)?;
        let end = self.scan_end();
        let data = self.at.min(end)..end;
        self.at = end;
        Ok((header, data))
    }

    /// Where the entropy-coded data that starts here ends: at the first marker that is not a
    /// restart marker (or the end of the bytes).
    pub fn scan_end(&self) -> usize {
        let mut j = self.at;
        while let Some(ff) = memchr::memchr(0xFF, &self.bytes[j.min(self.bytes.len())..]) {
            let i = j + ff;
            match self.bytes.get(i + 1) {
                None => return self.bytes.len(),
                Some(0x00) | Some(0xD0..=0xD7) => j = i + 2,
                Some(0xFF) => j = i + 1,
                Some(_) => return i,
            }
        }
        self.bytes.len()
    }
}

/// Read a table or setting segment into `tables` (Huffman, quantisation, restart interval,
/// Adobe transform) or step over any other segment.
pub(super) fn table_or_skip(
    code: u8,
    markers: &mut Markers,
    tables: &mut Tables,
) -> Result<(), DcError> {
    match code {
        0xC4 => huffman(markers.segment()?, tables)?,
        0xDB => quantisation(markers.segment()?, &mut tables.q)?,
        0xDD => {
            let b = markers
                .segment()?
                .get(..2)
                .ok_or_else(|| corrupt("a restart interval is cut short"))?;
            tables.restart = usize::from(u16::from_be_bytes([b[0], b[1]]));
        }
        0xEE => {
            if let Some(t) = adobe_transform(markers.segment()?) {
                tables.adobe_transform = Some(t);
            }
        }
        // Restart markers and TEM stand alone.
        0xD0..=0xD7 | 0x01 => {}
        _ => {
            markers.segment()?;
        }
    }
    Ok(())
}

/// Read a frame header.
pub(super) fn frame(body: &[u8], progressive: bool) -> Result<Frame, DcError> {
    if body.len() < 6 {
        return Err(corrupt("a frame header is cut short"));
    }
    if body[0] != 8 {
        return Err(DcError::Unsupported("samples of more than 8 bits"));
    }
    let height = usize::from(u16::from_be_bytes([body[1], body[2]]));
    let width = usize::from(u16::from_be_bytes([body[3], body[4]]));
    let n = usize::from(body[5]);
    if height == 0 || width == 0 {
        return Err(DcError::Unsupported(
            "the height is given after the scan (DNL)",
        ));
    }
    if n != 1 && n != 3 {
        return Err(DcError::Unsupported("neither one nor three components"));
    }
    if body.len() < 6 + 3 * n {
        return Err(corrupt("a frame header is cut short"));
    }
    let mut comps = Vec::with_capacity(n);
    for c in body[6..6 + 3 * n].chunks_exact(3) {
        let (h, v) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || c[2] > 3 {
            return Err(corrupt("a component's sampling or table is out of range"));
        }
        // A lone component is one block per MCU whatever its factors say.
        let (h, v) = if n == 1 { (1, 1) } else { (h, v) };
        comps.push(Component {
            id: c[0],
            h,
            v,
            tq: usize::from(c[2]),
            bw: 0,
            bh: 0,
            cbw: 0,
            cbh: 0,
        });
    }
    let hmax = comps.iter().map(|c| c.h).max().unwrap_or(1);
    let vmax = comps.iter().map(|c| c.v).max().unwrap_or(1);
    let mcux = ceil_div(width, 8 * hmax);
    let mcuy = ceil_div(height, 8 * vmax);
    for c in &mut comps {
        c.bw = mcux * c.h;
        c.bh = mcuy * c.v;
        c.cbw = ceil_div(ceil_div(width * c.h, hmax), 8);
        c.cbh = ceil_div(ceil_div(height * c.v, vmax), 8);
    }
    Ok(Frame {
        width,
        height,
        progressive,
        comps,
        hmax,
        vmax,
        mcux,
        mcuy,
    })
}

/// Read a scan header against the frame.
pub(super) fn scan(body: &[u8], frame: &Frame) -> Result<Scan, DcError> {
    let n = usize::from(
        *body
            .first()
            .ok_or_else(|| corrupt("an empty scan header"))?,
    );
    if n == 0 || n > 4 || body.len() < 1 + 2 * n + 3 {
        return Err(corrupt("a scan header is cut short"));
    }
    let mut comps = Vec::with_capacity(n);
    for c in body[1..1 + 2 * n].chunks_exact(2) {
        let comp = frame
            .comps
            .iter()
            .position(|f| f.id == c[0])
            .ok_or_else(|| corrupt("a scan names a component the frame lacks"))?;
        let (dc, ac) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
        if dc > 3 || ac > 3 {
            return Err(corrupt("a scan names a Huffman table out of range"));
        }
        comps.push(ScanComponent { comp, dc, ac });
    }
    let tail = &body[1 + 2 * n..];
    Ok(Scan {
        comps,
        ss: tail[0],
        ah: tail[2] >> 4,
        al: tail[2] & 15,
    })
}

/// Where the n-th coefficient of the zigzag order lies in the 8x8 block (row-major).
pub(super) const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20,
    13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
    52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

/// Read a DQT segment into the tables (stored in zigzag order, kept in natural order).
pub(super) fn quantisation(mut body: &[u8], q: &mut [Option<[u16; 64]>; 4]) -> Result<(), DcError> {
    while let Some(&pq_tq) = body.first() {
        let (precision, id) = (pq_tq >> 4, usize::from(pq_tq & 15));
        let size = if precision == 0 { 64 } else { 128 };
        if id > 3 || body.len() < 1 + size {
            return Err(corrupt("a quantisation table is cut short or out of range"));
        }
        let mut table = [0u16; 64];
        for (k, &at) in ZIGZAG.iter().enumerate() {
            table[usize::from(at)] = if precision == 0 {
                u16::from(body[1 + k])
            } else {
                u16::from_be_bytes([body[1 + 2 * k], body[2 + 2 * k]])
            };
        }
        q[id] = Some(table);
        body = &body[1 + size..];
    }
    Ok(())
}

/// Read a DHT segment into the tables.
pub(super) fn huffman(mut body: &[u8], tables: &mut Tables) -> Result<(), DcError> {
    while let Some(&tc_th) = body.first() {
        let (class, id) = (tc_th >> 4, usize::from(tc_th & 15));
        let counts: [u8; 16] = body
            .get(1..17)
            .and_then(|c| c.try_into().ok())
            .ok_or_else(|| corrupt("a Huffman table is cut short"))?;
        let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
        let values = body
            .get(17..17 + total)
            .ok_or_else(|| corrupt("a Huffman table is cut short"))?;
        if id > 3 || class > 1 {
            return Err(corrupt("a Huffman table's class or index is out of range"));
        }
        let table = Huffman::new(&counts, values)?;
        if class == 0 {
            tables.dc[id] = Some(table);
        } else {
            tables.ac[id] = Some(table);
        }
        body = &body[17 + total..];
    }
    Ok(())
}

/// The colour transform an Adobe APP14 segment declares.
pub(super) fn adobe_transform(body: &[u8]) -> Option<u8> {
    (body.len() >= 12 && body.starts_with(b"Adobe")).then(|| body[11])
}
