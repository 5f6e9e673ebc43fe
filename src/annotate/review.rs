//! Verdicts as store commands: the [`Command::SetReview`] for an item as it was shown, and
//! the edits that drop a verdict an edit has made stale.

use crate::dataset::review::{image_fingerprint, question_content_changed, region_content_changed};
use crate::dataset::review::{question_fingerprint, region_fingerprint};
use crate::dataset::{Review, ReviewTarget};
use crate::store::Command;
use crate::team::state::ImageState;

/// The command that gives `after` (or, with `None`, takes back the verdict) on `target` as
/// `shown`; `None` when the target is not on the image or nothing would change.
pub fn review_command(
    shown: &ImageState,
    target: ReviewTarget,
    after: Option<Review>,
) -> Option<Command> {
    let (before, seen) = match &target {
        ReviewTarget::Image(id) if *id == shown.image.id => (
            shown.image.review.clone(),
            image_fingerprint(&shown.image, &shown.regions, &shown.questions),
        ),
        ReviewTarget::Image(_) => return None,
        ReviewTarget::Region(id) => {
            let r = shown.regions.iter().find(|r| r.id == *id)?;
            (r.review.clone(), region_fingerprint(r))
        }
        ReviewTarget::Question(id) => {
            let q = shown.questions.iter().find(|q| q.id == *id)?;
            (q.review.clone(), question_fingerprint(q))
        }
    };
    if before.is_none() && after.is_none() {
        return None;
    }
    Some(Command::SetReview {
        image: shown.image.id.clone(),
        target,
        seen,
        before,
        after,
    })
}

/// An edit that changes what a box or question says drops its verdict: the verdict vouched
/// for the old content. Other commands pass unchanged.
pub fn drop_stale_verdicts(command: Command) -> Command {
    match command {
        Command::UpdateRegion { before, mut after }
            if after.review.is_some() && region_content_changed(&before, &after) =>
        {
            after.review = None;
            Command::UpdateRegion { before, after }
        }
        Command::UpdateQuestion { before, mut after }
            if after.review.is_some() && question_content_changed(&before, &after) =>
        {
            after.review = None;
            Command::UpdateQuestion { before, after }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{ImageId, ImageRecord, Region};
    use crate::geometry::{ImageRect, ImageSize};

    fn shown() -> ImageState {
        let image = ImageRecord {
            id: ImageId::of_bytes(b"r"),
            path: "/d/r.jpg".into(),
            size: ImageSize::new(4000, 3000),
            bytes: 1,
            added_at_ms: 0,
            status: Default::default(),
            review: None,
        };
        let r = Region::new(image.id.clone(), ImageRect::new(1.0, 1.0, 9.0, 9.0), "a");
        ImageState {
            image,
            regions: vec![r],
            questions: vec![],
        }
    }

    #[test]
    fn a_verdict_names_the_item_as_shown() {
        let s = shown();
        let id = s.regions[0].id;
        let c = review_command(
            &s,
            ReviewTarget::Region(id),
            Some(Review::accepted("rev", "", 1)),
        )
        .unwrap();
        match c {
            Command::SetReview { seen, before, .. } => {
                assert_eq!(seen, region_fingerprint(&s.regions[0]));
                assert!(before.is_none());
            }
            other => panic!("{other:?}"),
        }
        assert!(review_command(&s, ReviewTarget::Region(id), None).is_none());
    }

    #[test]
    fn moving_an_accepted_box_drops_its_verdict_but_a_verdict_change_does_not() {
        let s = shown();
        let mut before = s.regions[0].clone();
        before.review = Some(Review::accepted("rev", "", 1));
        let mut moved = before.clone();
        moved.rect.x1 = 20.0;
        match drop_stale_verdicts(Command::UpdateRegion {
            before: before.clone(),
            after: moved,
        }) {
            Command::UpdateRegion { after, .. } => assert!(after.review.is_none()),
            other => panic!("{other:?}"),
        }
        let mut relabel_only_review = before.clone();
        relabel_only_review.review = Some(Review::rejected("rev", "wrong label", "", 2).unwrap());
        match drop_stale_verdicts(Command::UpdateRegion {
            before,
            after: relabel_only_review,
        }) {
            Command::UpdateRegion { after, .. } => assert!(after.review.is_some()),
            other => panic!("{other:?}"),
        }
    }
}
