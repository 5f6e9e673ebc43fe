//! Comments pinned on a point of an image.

use super::*;

impl TeamServer {
    /// Pin a comment on a point of an image (in image pixels).
    pub fn pin_comment(
        &self,
        author: &str,
        image: &ImageId,
        x: f64,
        y: f64,
        text: &str,
        now: i64,
    ) -> Result<i64, TeamError> {
        self.role_of(author)?;
        if text.trim().is_empty() {
            return Err(TeamError::Batch("a comment needs some text".into()));
        }
        let id = self.store.in_tx(|db| {
            let image_row = rows::read_image(db, image)?.ok_or_else(|| StoreError::UnknownImage(image.clone()))?;
            if !(0.0..=f64::from(image_row.size.width)).contains(&x) || !(0.0..=f64::from(image_row.size.height)).contains(&y) {
                return Err(StoreError::Server(format!("point ({x:.0}, {y:.0}) is outside the image")));
            }
            let id = db
                .row(
                    "INSERT INTO comments (image_id, layer, x, y, text, author, at_ms) VALUES (?1, 'main', ?2, ?3, ?4, ?5, ?6) RETURNING id",
                    vals![image.as_str(), x, y, text, author, now],
                )?
                .ok_or_else(|| StoreError::Server("no comment id".into()))?
                .int(0)?;
            log_change(db, image, MAIN_LAYER, author, now)?;
            Ok(id)
        })?;
        Ok(id)
    }

    /// Every pinned comment of the project, by image then time.
    pub fn all_comments(&self) -> Result<Vec<PinnedComment>, TeamError> {
        self.comments_where("TRUE", &[])
    }

    /// The comments pinned on one image, oldest first.
    pub fn comments(&self, image: &ImageId) -> Result<Vec<PinnedComment>, TeamError> {
        self.comments_where("image_id = ?1", vals![image.as_str()])
    }
}
