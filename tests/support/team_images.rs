//! Images the team tests put on a server: a 4000x3000 record named after a word, its id the
//! word's hash (no file behind it; team mode stores only the record).

use thyme_studio::dataset::{ImageId, ImageRecord};
use thyme_studio::geometry::ImageSize;

pub fn image(name: &str) -> ImageRecord {
    ImageRecord {
        id: ImageId::of_bytes(name.as_bytes()),
        path: format!("/photos/{name}.jpg").into(),
        size: ImageSize::new(4000, 3000),
        bytes: 100,
        added_at_ms: 1,
        status: Default::default(),
        review: None,
    }
}
