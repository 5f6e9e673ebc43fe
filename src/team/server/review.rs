//! Review: moving items through their states, verdicts on boxes and questions, what changed
//! since submission, the history of review events.

use super::*;

impl TeamServer {
    /// Move an item through review. Annotators act on their own items; reviewers on anyone's.
    /// An accept, reject, withdraw, reopen or fix also writes the image's verdict in the
    /// item's layer, journaled under `actor`, so it reaches every member's file.
    pub fn act(
        &self,
        actor: &str,
        image: &ImageId,
        annotator: &str,
        action: &ReviewAction,
        now: i64,
    ) -> Result<WorkState, TeamError> {
        let role = self.role_of(actor)?;
        if role == Role::Annotator && actor != annotator {
            return Err(TeamError::Role {
                who: actor.to_owned(),
                role: role.as_str(),
                needed: "the item's annotator or reviewers",
                what: "move another annotator's item",
            });
        }
        self.store.in_tx(|db| {
            let verdict = match verdict_of(action, actor, now) {
                Ok(v) => v,
                Err(e) => return Ok(Err(e)),
            };
            transition(db, actor, role, image, annotator, action, verdict, "", now)
        })?
    }

    /// A reviewer's verdict on one box or question of an item (`None`: take it back),
    /// written on the item in the annotator's layer.
    #[allow(clippy::too_many_arguments)]
    pub fn review_item(
        &self,
        reviewer: &str,
        image: &ImageId,
        annotator: &str,
        target: &ReviewTarget,
        verdict: Option<Review>,
        now: i64,
    ) -> Result<(), TeamError> {
        self.require(reviewer, Role::Reviewer, "review items")?;
        if matches!(target, ReviewTarget::Image(_)) {
            return Err(TeamError::Batch(
                "a verdict on the whole image is an accept or reject of the item".into(),
            ));
        }
        let a = self
            .assignments_for(image)?
            .into_iter()
            .find(|a| a.annotator.as_deref() == Some(annotator))
            .ok_or_else(|| TeamError::NotAssigned {
                image: image.short().to_owned(),
                who: annotator.to_owned(),
            })?;
        self.store.in_tx(|db| {
            use_layer(db, &a.layer)?;
            let before = match target {
                ReviewTarget::Region(id) => {
                    rows::read_region(db, *id)?
                        .ok_or(StoreError::UnknownRegion(*id))?
                        .review
                }
                ReviewTarget::Question(id) => {
                    rows::read_question(db, *id)?
                        .ok_or(StoreError::UnknownQuestion(*id))?
                        .review
                }
                ReviewTarget::Image(_) => None,
            };
            rows::apply(
                db,
                reviewer,
                &Command::SetReview {
                    image: image.clone(),
                    target: target.clone(),
                    seen: String::new(),
                    before,
                    after: verdict.clone(),
                },
            )?;
            db.exec("SET LOCAL search_path TO public", &[])?;
            log_change(db, image, &a.layer, reviewer, now)
        })?;
        Ok(())
    }

    /// The verdicts on the boxes and questions of an item: (kind, id) -> verdict.
    pub fn item_verdicts(
        &self,
        image: &ImageId,
        annotator: &str,
    ) -> Result<BTreeMap<(String, String), Review>, TeamError> {
        let layer = self.layer_of(annotator, image)?;
        let Some(state) = self.image_state(&layer, image)? else {
            return Ok(BTreeMap::new());
        };
        let mut out = BTreeMap::new();
        for r in state.regions {
            if let Some(v) = r.review {
                out.insert(("box".to_owned(), r.id.to_string()), v);
            }
        }
        for q in state.questions {
            if let Some(v) = q.review {
                out.insert(("question".to_owned(), q.id.to_string()), v);
            }
        }
        Ok(out)
    }

    /// What changed on an item since its annotator submitted it (the reviewer's edits), in words.
    pub fn review_diff(&self, image: &ImageId, annotator: &str) -> Result<Vec<String>, TeamError> {
        let (submitted, layer) = self.store.read(|db| {
            let row = db.row(
                "SELECT submitted_state, layer FROM assignments WHERE image_id = ?1 AND annotator = ?2 ORDER BY layer = 'main' DESC LIMIT 1",
                vals![image.as_str(), annotator],
            )?;
            match row {
                Some(r) => Ok((r.opt_text(0)?, r.text(1)?)),
                None => Ok((None, MAIN_LAYER.to_owned())),
            }
        })?;
        let Some(submitted) = submitted else {
            return Ok(Vec::new());
        };
        let before: ImageState = serde_json::from_str(&submitted)
            .map_err(|e| TeamError::Corrupt(format!("submitted state: {e}")))?;
        let Some(now) = self.image_state(&layer, image)? else {
            return Ok(vec![format!("image {} was removed", image.short())]);
        };
        Ok(crate::team::state::describe(&before, &now))
    }

    /// Every review transition: (assignment id, actor, from, to, reason, at).
    pub fn review_events(&self) -> Result<Vec<ReviewEvent>, TeamError> {
        let rows = self.store.read(|db| {
            db.rows(
                "SELECT e.assignment_id, e.actor, e.from_state, e.to_state, e.reason, e.at_ms, coalesce(a.annotator, '') \
                 FROM review_events e JOIN assignments a ON a.id = e.assignment_id ORDER BY e.id",
                &[],
            )
        })?;
        rows.iter()
            .map(|r| {
                let state = |s: String| {
                    WorkState::parse(&s)
                        .ok_or_else(|| TeamError::Corrupt(format!("unknown state '{s}'")))
                };
                Ok(ReviewEvent {
                    assignment: r.int(0)?,
                    actor: r.text(1)?,
                    from: state(r.text(2)?)?,
                    to: state(r.text(3)?)?,
                    reason: r.opt_text(4)?,
                    at_ms: r.int(5)?,
                    annotator: r.text(6)?,
                })
            })
            .collect()
    }
}

/// The verdict an action writes on the image: `Some(None)` clears it, `None` leaves it.
#[allow(clippy::option_option)]
pub(super) fn verdict_of(
    action: &ReviewAction,
    actor: &str,
    now: i64,
) -> Result<Option<Option<Review>>, TeamError> {
    Ok(match action {
        ReviewAction::Accept => Some(Some(Review::accepted(actor, "", now))),
        ReviewAction::Reject { reason, note } => Some(Some(
            Review::rejected(actor, reason, note, now)
                .map_err(|_| ReviewError::UnknownReason(reason.clone()))?,
        )),
        ReviewAction::Withdraw | ReviewAction::Reopen | ReviewAction::Fix => Some(None),
        ReviewAction::Start | ReviewAction::Submit | ReviewAction::Open => None,
    })
}

/// The review action an image-level verdict pushed from a reviewer's file stands for.
pub(super) fn action_for_verdict(after: Option<&Review>) -> ReviewAction {
    match after {
        Some(r) if r.verdict == Verdict::Accepted => ReviewAction::Accept,
        Some(r) => ReviewAction::Reject {
            reason: r.reason.clone().unwrap_or_default(),
            note: r.note.clone(),
        },
        None => ReviewAction::Withdraw,
    }
}

/// Move an assignment through review inside a transaction and write the image's verdict in
/// its layer. An accept or reject of an item that waits for review opens the review first.
/// Returns the new state, or (as the inner error) why the move is not allowed.
///
/// The moves themselves are the server's `thyme_move` function, which checks the caller's
/// role and the item's state again, so a client that skips this code cannot skip review. The
/// verdict is written while the item is with review (reviewers may change an item only once
/// it is handed in): before a move out of review, after a move into it.
#[allow(clippy::too_many_arguments, clippy::option_option)]
pub(super) fn transition(
    db: &mut dyn Db,
    actor: &str,
    role: Role,
    image: &ImageId,
    annotator: &str,
    action: &ReviewAction,
    verdict: Option<Option<Review>>,
    seen: &str,
    now: i64,
) -> Result<Result<WorkState, TeamError>, StoreError> {
    let Some(row) = db.row(
        &format!("SELECT {ASSIGNMENT_COLUMNS_BLIND} FROM public.assignments WHERE image_id = ?1 AND annotator = ?2 ORDER BY layer = 'main' DESC, id LIMIT 1"),
        vals![image.as_str(), annotator],
    )? else {
        return Ok(Err(TeamError::NotAssigned { image: image.short().to_owned(), who: annotator.to_owned() }));
    };
    let a = match assignment_from_row(&row) {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    let mut from = a.state;
    let decides = matches!(action, ReviewAction::Accept | ReviewAction::Reject { .. });
    if decides && matches!(from, WorkState::Submitted | WorkState::Fixed) && role.reviews() {
        move_item(db, a.id, actor, WorkState::InReview, None, None, None, now)?;
        from = WorkState::InReview;
    }
    let next = match next_state(from, action, role) {
        Ok(n) => n,
        Err(e) => return Ok(Err(e.into())),
    };
    let (reason, note) = match action {
        ReviewAction::Reject { reason, note } => (Some(reason.as_str()), Some(note.as_str())),
        _ => (None, None),
    };
    let snapshot = if matches!(action, ReviewAction::Submit | ReviewAction::Fix) {
        use_layer(db, &a.layer)?;
        let state = read_state(db, image)?;
        db.exec("SET LOCAL search_path TO public", &[])?;
        state
            .map(|s| serde_json::to_string(&s))
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                table: "assignments",
                reason: e.to_string(),
            })?
    } else {
        None
    };
    let write_verdict = |db: &mut dyn Db| -> Result<(), StoreError> {
        if let Some(after) = &verdict {
            use_layer(db, &a.layer)?;
            let before = rows::read_image(db, image)?
                .ok_or_else(|| StoreError::UnknownImage(image.clone()))?
                .review;
            if before != *after {
                let command = Command::SetReview {
                    image: image.clone(),
                    target: ReviewTarget::Image(image.clone()),
                    seen: seen.to_owned(),
                    before,
                    after: after.clone(),
                };
                rows::apply(db, actor, &command)?;
            }
            db.exec("SET LOCAL search_path TO public", &[])?;
        }
        Ok(())
    };
    if next != WorkState::InReview {
        write_verdict(db)?;
    }
    move_item(
        db,
        a.id,
        actor,
        next,
        reason,
        note,
        snapshot.as_deref(),
        now,
    )?;
    if next == WorkState::InReview {
        write_verdict(db)?;
    }
    log_change(db, image, &a.layer, actor, now)?;
    Ok(Ok(next))
}

/// Move one assignment to `to` through the server's `thyme_move` (which records the event).
#[allow(clippy::too_many_arguments)]
pub(super) fn move_item(
    db: &mut dyn Db,
    assignment: i64,
    actor: &str,
    to: WorkState,
    reason: Option<&str>,
    note: Option<&str>,
    snapshot: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    db.exec(
        "SELECT public.thyme_move(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        vals![assignment, actor, to.as_str(), reason, note, snapshot, now],
    )?;
    Ok(())
}

/// Whether a command gives a verdict: any review action, or an edit that carries an
/// acceptance (annotators may do neither; an edit that clears a verdict is fine).
pub fn sets_verdict(command: &Command) -> bool {
    let accepts = |r: Option<&Review>| r.is_some_and(Review::is_accepted);
    let gives = |before: Option<&Review>, after: Option<&Review>| accepts(after) && before != after;
    match command {
        Command::SetReview { .. } => true,
        Command::AddImage {
            image,
            regions,
            questions,
        } => {
            accepts(image.review.as_ref())
                || regions.iter().any(|r| accepts(r.review.as_ref()))
                || questions.iter().any(|q| accepts(q.review.as_ref()))
        }
        Command::AddRegion { region, .. } => accepts(region.review.as_ref()),
        Command::AddQuestion { question } => accepts(question.review.as_ref()),
        Command::UpdateRegion { before, after } => {
            gives(before.review.as_ref(), after.review.as_ref())
        }
        Command::UpdateQuestion { before, after } => {
            gives(before.review.as_ref(), after.review.as_ref())
        }
        _ => false,
    }
}
