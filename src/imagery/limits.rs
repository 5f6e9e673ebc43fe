//! The pixel budget against decompression bombs.

/// The most pixels an image may have before we refuse to decode it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelBudget(pub u64);

impl PixelBudget {
    /// One gigapixel.
    pub const DEFAULT: PixelBudget = PixelBudget(1_000_000_000);

    pub fn allows(self, pixels: u64) -> bool {
        pixels <= self.0
    }

    /// Decoder limits that match this budget: RGBA8 for every pixel plus headroom for the
    /// decoder's own buffers. 16-bit images are decoded through the same budget in pixels.
    pub fn decoder_limits(self) -> image::Limits {
        let mut limits = image::Limits::default();
        let side = u32::try_from(self.0).unwrap_or(u32::MAX);
        limits.max_image_width = Some(side);
        limits.max_image_height = Some(side);
        limits.max_alloc = Some(self.0.saturating_mul(8).saturating_add(64 << 20));
        limits
    }
}

impl Default for PixelBudget {
    fn default() -> Self {
        Self::DEFAULT
    }
}
