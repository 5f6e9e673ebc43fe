//! What members send and fetch: pushed commands applied in their layer (conflicts kept), the
//! changes since a member's last sync, layers and their journals.

use super::*;

impl TeamServer {
    /// Apply one edit a client pushes. `op_key` names it uniquely (client id and journal
    /// sequence number): a resent edit returns what happened the first time.
    pub fn push(
        &self,
        actor: &str,
        op_key: &str,
        command: &Command,
        now: i64,
    ) -> Result<PushOutcome, TeamError> {
        let outcome = self.store.in_tx(|db| {
            if let Some(row) = db.row(
                "SELECT outcome, message, layer, image_id FROM sync_log WHERE op_key = ?1",
                vals![op_key],
            )? {
                let message = row.text(1)?;
                return Ok(match row.text(0)?.as_str() {
                    "applied" => PushOutcome::Applied,
                    "refused" => PushOutcome::Refused { message },
                    _ => {
                        let theirs = match row.opt_text(3)?.and_then(|s| ImageId::parse(&s)) {
                            Some(id) => {
                                use_layer(db, &row.text(2)?)?;
                                read_state(db, &id)?
                            }
                            None => None,
                        };
                        PushOutcome::Conflict { message, theirs: theirs.map(Box::new) }
                    }
                });
            }
            let image = command_image(command).cloned();
            let mut layer = MAIN_LAYER.to_owned();
            let role_in_cached = role_in(db, actor)?;
            let refusal = match (role_in_cached, &image) {
                (None, _) => Some(format!("'{actor}' is not a member of this team")),
                _ if self.login.as_ref().is_some_and(|(me, _)| me != actor) => {
                    Some(format!("this connection is signed in as another member, not as '{actor}'"))
                }
                (Some(Role::Annotator), Some(image)) => {
                    match db.row(
                        "SELECT id, layer, state, lease_ms FROM assignments WHERE image_id = ?1 AND annotator = ?2 ORDER BY layer = 'main' DESC, id LIMIT 1",
                        vals![image.as_str(), actor],
                    )? {
                        None => Some(format!("image {} is not assigned to you (any more)", image.short())),
                        Some(row) => {
                            let state = WorkState::parse(&row.text(2)?).unwrap_or(WorkState::Accepted);
                            layer = row.text(1)?;
                            if state.editable_by_annotator() {
                                db.exec(
                                    "SELECT public.thyme_touch(?1, ?2, ?3)",
                                    vals![row.int(0)?, actor, now],
                                )?;
                                None
                            } else if state == WorkState::Accepted {
                                Some(format!("image {} is accepted; it is read-only now", image.short()))
                            } else {
                                Some(format!("image {} is {} and cannot change until the review ends", image.short(), state.as_str()))
                            }
                        }
                    }
                }
                (Some(Role::Annotator), None) if matches!(command, Command::RemoveCategory { .. }) => {
                    Some("only reviewers and leads may remove categories".into())
                }
                (Some(Role::Reviewer), Some(image))
                    if !matches!(command, Command::SetReview { target: ReviewTarget::Image(_), .. }) =>
                {
                    let in_review = db.count(
                        "SELECT count(*) FROM assignments WHERE image_id = ?1 AND layer = 'main' AND state IN ('submitted', 'in_review', 'fixed', 'accepted', 'rejected')",
                        vals![image.as_str()],
                    )? > 0;
                    (!in_review).then(|| {
                        format!("image {} is not submitted yet; reviewers change an item only once its annotator has handed it in", image.short())
                    })
                }
                _ => None,
            };
            let refusal = refusal.or_else(|| {
                (role_in_cached == Some(Role::Annotator) && sets_verdict(command))
                    .then(|| "only reviewers and leads give verdicts".to_owned())
            });
            let json = serde_json::to_string(command).map_err(|e| StoreError::Corrupt {
                table: "sync_log",
                reason: e.to_string(),
            })?;
            let image_text = image.as_ref().map(|i| i.as_str().to_owned());
            let log = |db: &mut dyn Db, outcome: &str, message: &str, layer: &str| {
                db.exec("SET LOCAL search_path TO public", &[])?;
                db.exec(
                    "INSERT INTO sync_log (op_key, actor, image_id, layer, outcome, message, command, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    vals![op_key, actor, image_text.as_deref(), layer, outcome, message, json.as_str(), now],
                )?;
                Ok::<_, StoreError>(())
            };
            if let Some(message) = refusal {
                log(db, "refused", &message, &layer)?;
                return Ok(PushOutcome::Refused { message });
            }
            if let (Some(role), Command::SetReview { target: ReviewTarget::Image(id), seen, after, .. }) =
                (role_in_cached, command)
            {
                // A verdict on a whole image from a reviewer's file is a review action.
                let annotator = primary_annotator(db, id)?.unwrap_or_default();
                let action = action_for_verdict(after.as_ref());
                db.exec("SAVEPOINT edit", &[])?;
                return match transition(db, actor, role, id, &annotator, &action, Some(after.clone()), seen, now) {
                    Ok(Ok(_)) => {
                        db.exec("RELEASE SAVEPOINT edit", &[])?;
                        log(db, "applied", "", MAIN_LAYER)?;
                        Ok(PushOutcome::Applied)
                    }
                    Ok(Err(e)) => {
                        db.exec("ROLLBACK TO SAVEPOINT edit", &[])?;
                        let message = e.to_string();
                        log(db, "refused", &message, MAIN_LAYER)?;
                        Ok(PushOutcome::Refused { message })
                    }
                    Err(e) if security::refused_by_server(&e) => {
                        db.exec("ROLLBACK TO SAVEPOINT edit", &[])?;
                        let message = e.to_string();
                        log(db, "refused", &message, MAIN_LAYER)?;
                        Ok(PushOutcome::Refused { message })
                    }
                    Err(e @ StoreError::Server(_)) => Err(e),
                    Err(e) => {
                        db.exec("ROLLBACK TO SAVEPOINT edit", &[])?;
                        db.exec("SET LOCAL search_path TO public", &[])?;
                        let theirs = read_state(db, id)?;
                        let message = e.to_string();
                        log(db, "conflict", &message, MAIN_LAYER)?;
                        Ok(PushOutcome::Conflict { message, theirs: theirs.map(Box::new) })
                    }
                };
            }
            use_layer(db, &layer)?;
            db.exec("SAVEPOINT edit", &[])?;
            match rows::apply(db, actor, command) {
                Ok(_) => {
                    db.exec("RELEASE SAVEPOINT edit", &[])?;
                    log(db, "applied", "", &layer)?;
                    if let Some(image) = &image {
                        let client = op_key.split(':').next();
                        log_change_from(db, image, &layer, actor, client, now)?;
                    }
                    Ok(PushOutcome::Applied)
                }
                Err(e) if security::refused_by_server(&e) => {
                    db.exec("ROLLBACK TO SAVEPOINT edit", &[])?;
                    let message = e.to_string();
                    log(db, "refused", &message, &layer)?;
                    Ok(PushOutcome::Refused { message })
                }
                Err(e @ StoreError::Server(_)) => Err(e),
                Err(e) => {
                    db.exec("ROLLBACK TO SAVEPOINT edit", &[])?;
                    let theirs = match &image {
                        Some(id) => read_state(db, id)?,
                        None => None,
                    };
                    let message = e.to_string();
                    log(db, "conflict", &message, &layer)?;
                    Ok(PushOutcome::Conflict { message, theirs: theirs.map(Box::new) })
                }
            }
        })?;
        Ok(outcome)
    }

    /// Images changed by others after `cursor` that `member` should fetch (with the layer
    /// they live in for this member), and the new cursor.
    ///
    /// Changes this client pushed itself are left out (it has them); everything else counts,
    /// including this member's work from another machine or the command line.
    pub fn changes(
        &self,
        member: &str,
        client: &str,
        cursor: i64,
    ) -> Result<(Vec<(ImageId, String)>, i64), TeamError> {
        let role = self.role_of(member)?;
        let (rows, last) = self.store.read(|db| {
            let last = db.count("SELECT coalesce(max(seq), 0) FROM changes", &[])?;
            let rows = if role == Role::Annotator {
                db.rows(
                    "SELECT DISTINCT c.image_id, c.layer FROM changes c JOIN assignments a \
                     ON a.image_id = c.image_id AND a.layer = c.layer AND a.annotator = ?1 \
                     WHERE c.seq > ?2 AND c.seq <= ?3 AND (c.client IS NULL OR c.client <> ?4) ORDER BY c.image_id",
                    vals![member, cursor, last, client],
                )?
            } else {
                db.rows(
                    "SELECT DISTINCT image_id, layer FROM changes WHERE seq > ?1 AND seq <= ?2 \
                     AND layer = 'main' AND (client IS NULL OR client <> ?3) ORDER BY image_id",
                    vals![cursor, last, client],
                )?
            };
            Ok((rows, last))
        })?;
        let mut out = Vec::new();
        for r in rows {
            let id = r.text(0)?;
            let id = ImageId::parse(&id)
                .ok_or_else(|| TeamError::Corrupt(format!("bad image id '{id}'")))?;
            out.push((id, r.text(1)?));
        }
        Ok((out, last.max(cursor)))
    }

    /// The layer `member` works on `image` in: their blind copy for a double or a honeypot,
    /// else the shared one.
    pub fn layer_of(&self, member: &str, image: &ImageId) -> Result<String, TeamError> {
        let row = self.store.read(|db| {
            db.row(
                "SELECT layer FROM assignments WHERE image_id = ?1 AND annotator = ?2 ORDER BY layer = 'main' DESC, id LIMIT 1",
                vals![image.as_str(), member],
            )
        })?;
        Ok(match row {
            Some(r) => r.text(0)?,
            None => MAIN_LAYER.to_owned(),
        })
    }

    /// An image as it is in a layer.
    pub fn image_state(
        &self,
        layer: &str,
        image: &ImageId,
    ) -> Result<Option<ImageState>, TeamError> {
        Ok(self.store.in_tx(|db| {
            use_layer(db, layer)?;
            read_state(db, image)
        })?)
    }

    /// The names of every layer: the shared one first, then the blind copies by name.
    pub fn layers(&self) -> Result<Vec<String>, TeamError> {
        let rows = self.store.read(|db| {
            db.rows(
                "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name LIKE 'blind\\_%' ORDER BY 1",
                &[],
            )
        })?;
        let mut out = vec![MAIN_LAYER.to_owned()];
        for r in rows {
            out.push(r.text(0)?);
        }
        Ok(out)
    }

    /// Every journal entry of a layer (who did what, when), oldest first.
    pub fn layer_journal(&self, layer: &str) -> Result<Vec<crate::store::JournalEntry>, TeamError> {
        Ok(self.store.in_tx(|db| {
            use_layer(db, layer)?;
            rows::journal(db, 0, usize::MAX >> 2)
        })?)
    }
}

pub(super) fn log_change(
    db: &mut dyn Db,
    image: &ImageId,
    layer: &str,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    log_change_from(db, image, layer, actor, None, now)
}

/// Log a change; `client` names the client whose push it was (that client has it already).
pub(super) fn log_change_from(
    db: &mut dyn Db,
    image: &ImageId,
    layer: &str,
    actor: &str,
    client: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    db.exec(
        "INSERT INTO public.changes (image_id, layer, actor, client, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        vals![image.as_str(), layer, actor, client, now],
    )?;
    Ok(())
}
