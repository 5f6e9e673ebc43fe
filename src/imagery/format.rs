//! The file formats we read, recognised by their magic bytes (never by the file name).

/// A supported image file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    Jpeg,
    Png,
    WebP,
    Tiff,
}

/// Extensions that the importer looks at when walking a folder.
pub const EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "tif", "tiff"];

impl ImageFormat {
    /// Recognise a format from the first bytes of a file.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(Self::WebP)
        } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
            Some(Self::Tiff)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
            Self::WebP => "WebP",
            Self::Tiff => "TIFF",
        }
    }

    pub fn to_image_crate(self) -> image::ImageFormat {
        match self {
            Self::Jpeg => image::ImageFormat::Jpeg,
            Self::Png => image::ImageFormat::Png,
            Self::WebP => image::ImageFormat::WebP,
            Self::Tiff => image::ImageFormat::Tiff,
        }
    }

    /// Does this path have one of the extensions we import?
    pub fn has_image_extension(path: &std::path::Path) -> bool {
        path.extension()
            .and_then(|e| e.to_str())
            .map(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_identify_formats() {
        assert_eq!(
            ImageFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(
            ImageFormat::sniff(b"\x89PNG\r\n\x1a\n...."),
            Some(ImageFormat::Png)
        );
        assert_eq!(
            ImageFormat::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(ImageFormat::WebP)
        );
        assert_eq!(ImageFormat::sniff(b"II*\0...."), Some(ImageFormat::Tiff));
        assert_eq!(ImageFormat::sniff(b"hello world"), None);
        assert_eq!(ImageFormat::sniff(b""), None);
    }

    #[test]
    fn extensions_are_case_insensitive() {
        assert!(ImageFormat::has_image_extension("a/B.JPG".as_ref()));
        assert!(ImageFormat::has_image_extension("x.tiff".as_ref()));
        assert!(!ImageFormat::has_image_extension("x.txt".as_ref()));
        assert!(!ImageFormat::has_image_extension("noext".as_ref()));
    }
}
