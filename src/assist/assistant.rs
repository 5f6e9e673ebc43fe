//! One assisted-boxing session, the piece the app's worker and `thyme-studio assist box` share:
//! SAM when its weights were given (loaded once, its window embeddings kept), the weight-free
//! click and snap otherwise, and the image being worked on kept open (a baseline JPEG's band
//! decoder, so a window decodes only its rows).

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::Device;

use super::sam::SamModel;
use super::window::Reader;
use super::{AssistError, click, snap, window};
use crate::geometry::{ImageRect, ImageSize};
use crate::imagery::{PixelBudget, probe_bytes};

/// A box an assist found, for a person to accept or drop.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Boxed {
    pub rect: ImageRect,
    /// SAM's mask outline as segments on the image (empty for the weight-free ways).
    #[serde(skip)]
    pub outline: Vec<[f64; 4]>,
    /// Which way found it and what the model's time was, in words.
    pub how: String,
    /// Time in the model (or the weight-free search), in milliseconds.
    pub ms: f64,
    /// SAM's window `[x0, y0, x1, y1)` on the image (None for the weight-free ways).
    pub window: Option<[u32; 4]>,
}

/// The session: an optional SAM and the open image.
#[derive(Default)]
pub struct Assistant {
    sam: Option<(PathBuf, bool, SamModel)>,
    image: Option<(PathBuf, ImageSize, Reader)>,
}

impl Assistant {
    pub fn new() -> Self {
        Self::default()
    }

    /// Use SAM from `dir` (ViT-B when `vit_b`), loaded once while the folder stays the same;
    /// `None` goes weight-free. A folder that cannot be loaded is an error naming the file.
    pub fn use_weights(&mut self, dir: Option<&Path>, vit_b: bool) -> Result<(), AssistError> {
        match dir {
            None => self.sam = None,
            Some(dir) => {
                if !self
                    .sam
                    .as_ref()
                    .is_some_and(|(d, v, _)| d == dir && *v == vit_b)
                {
                    self.sam = None;
                    let model = SamModel::load(dir, vit_b, &Device::Cpu)?;
                    self.sam = Some((dir.to_owned(), vit_b, model));
                }
            }
        }
        Ok(())
    }

    /// The loaded SAM's name, if any.
    pub fn model_name(&self) -> Option<&str> {
        self.sam.as_ref().map(|(_, _, m)| m.name.as_str())
    }

    /// Image encodings SAM has run.
    pub fn encodes(&self) -> usize {
        self.sam.as_ref().map_or(0, |(_, _, m)| m.encodes)
    }

    /// Open the image at `path` (kept until another is asked for); its size.
    pub fn open(&mut self, path: &Path) -> Result<ImageSize, AssistError> {
        if let Some((p, size, _)) = &self.image
            && p == path
        {
            return Ok(*size);
        }
        self.image = None;
        let bytes = std::fs::read(path).map_err(|e| {
            AssistError::Image(crate::imagery::ImageError::Io {
                path: path.to_owned(),
                source: e,
            })
        })?;
        let size = probe_bytes(path, &bytes, PixelBudget::DEFAULT)?.size;
        let reader = Reader::open(path, &bytes)?;
        self.image = Some((path.to_owned(), size, reader));
        Ok(size)
    }

    /// The object at `click` on the image at `path`: SAM on a window of `side` original
    /// pixels around it (with `negatives` left out) when loaded, else the weight-free click.
    pub fn click(
        &mut self,
        path: &Path,
        click: (f64, f64),
        negatives: &[(f64, f64)],
        side: u32,
    ) -> Result<Boxed, AssistError> {
        let size = self.open(path)?;
        let Some((_, _, reader)) = &self.image else {
            return Err(AssistError::NothingFound);
        };
        if let Some((_, _, sam)) = &mut self.sam {
            let found = sam.box_at(reader, path, size, click, negatives, side)?;
            return Ok(Boxed {
                rect: found.rect,
                outline: found.outline,
                how: format!(
                    "{}: encoder {}, decoder {:.0} ms{}",
                    sam.name,
                    if found.encoder_ms > 0.0 {
                        format!("{:.1} s", found.encoder_ms / 1000.0)
                    } else {
                        "kept".to_owned()
                    },
                    found.decoder_ms,
                    if found.retried {
                        ", on a wider window"
                    } else {
                        ""
                    }
                ),
                ms: found.encoder_ms + found.decoder_ms,
                window: Some(found.window),
            });
        }
        if !negatives.is_empty() {
            return Err(AssistError::Model(
                "points to leave out need SAM's weights; without them a click takes the part under it".into(),
            ));
        }
        let started = Instant::now();
        let found = click::click_box(size, click, click::MAX_SIDE, &mut |a| reader.area(path, a))?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(Boxed {
            rect: found.rect,
            outline: Vec::new(),
            how: format!("weight-free click: {ms:.0} ms"),
            ms,
            window: None,
        })
    }

    /// A rough box dragged around an object: SAM clicked at its centre on a window twice
    /// its size when loaded, else the weight-free snap.
    pub fn rough(&mut self, path: &Path, rough: &ImageRect) -> Result<Boxed, AssistError> {
        let size = self.open(path)?;
        if self.sam.is_some() {
            let side = (rough.width().max(rough.height()) * 2.0).ceil() as u32;
            return self.click(path, rough.center(), &[], side);
        }
        let Some((_, _, reader)) = &self.image else {
            return Err(AssistError::NothingFound);
        };
        let started = Instant::now();
        let area = window::around(rough, snap::WINDOW_MARGIN, size)?;
        let found = snap::snap(&reader.area(path, area)?, (area[0], area[1]), rough)?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(Boxed {
            rect: found.rect,
            outline: Vec::new(),
            how: format!("weight-free snap: {ms:.0} ms"),
            ms,
            window: None,
        })
    }
}
