//! Dealing work: batches with leases, doubles and honeypots, reassigning and reclaiming items.

use super::*;

impl TeamServer {
    /// Make a batch: pick unassigned, non-gold images, deal them to the annotators, add blind
    /// second copies for a share of them and honeypots for each annotator.
    pub fn create_batch(
        &self,
        lead: &str,
        spec: &BatchSpec,
        now: i64,
    ) -> Result<BatchSummary, TeamError> {
        self.require(lead, Role::Lead, "make batches")?;
        if spec.annotators.is_empty() {
            return Err(TeamError::Batch(
                "a batch needs at least one annotator".into(),
            ));
        }
        for a in &spec.annotators {
            self.role_of(a)?;
        }
        if !(0.0..=1.0).contains(&spec.double_share) {
            return Err(TeamError::Batch(format!(
                "double share {} is not between 0 and 1",
                spec.double_share
            )));
        }
        if spec.double_share > 0.0 && spec.annotators.len() < 2 {
            return Err(TeamError::Batch(
                "double annotation needs at least two annotators".into(),
            ));
        }
        let result = self.store.in_tx(|db| {
            let free: Vec<(String, String)> = db
                .rows(
                    "SELECT i.id, i.path FROM images i \
                     WHERE NOT EXISTS (SELECT 1 FROM assignments a WHERE a.image_id = i.id AND a.kind = 'primary') \
                     AND NOT EXISTS (SELECT 1 FROM gold g WHERE g.image_id = i.id) ORDER BY i.path, i.id",
                    &[],
                )?
                .iter()
                .map(|r| Ok((r.text(0)?, r.text(1)?)))
                .collect::<Result<_, StoreError>>()?;
            let mut rng = Rng::new(spec.seed);
            let chosen: Vec<String> = match &spec.selection {
                Selection::Folder(folder) => {
                    let prefix = folder.trim_end_matches('/').to_owned() + "/";
                    free.into_iter()
                        .filter(|(_, p)| p.starts_with(&prefix))
                        .map(|(id, _)| id)
                        .collect()
                }
                Selection::Count(n) => free.into_iter().take(*n).map(|(id, _)| id).collect(),
                Selection::Random { count, seed } => {
                    let mut ids: Vec<String> = free.into_iter().map(|(id, _)| id).collect();
                    let mut r = Rng::new(*seed);
                    r.shuffle(&mut ids);
                    ids.truncate(*count);
                    ids
                }
            };
            if chosen.is_empty() {
                return Ok(None);
            }
            let batch = db
                .row(
                    "INSERT INTO batches (name, created_by, created_at_ms) VALUES (?1, ?2, ?3) RETURNING id",
                    vals![spec.name.as_str(), lead, now],
                )?
                .ok_or_else(|| StoreError::Server("no batch id".into()))?
                .int(0)?;
            let mut summary = BatchSummary {
                id: batch,
                images: chosen.len(),
                ..Default::default()
            };
            let n = spec.annotators.len();
            let doubles = (spec.double_share * chosen.len() as f64).round() as usize;
            let mut double_picks: Vec<usize> = (0..chosen.len()).collect();
            rng.shuffle(&mut double_picks);
            double_picks.truncate(doubles);
            double_picks.sort_unstable();
            for (i, id) in chosen.iter().enumerate() {
                let who = &spec.annotators[i % n];
                insert_assignment(db, batch, id, who, "primary", MAIN_LAYER, spec.lease_ms, now)?;
                *summary.per_annotator.entry(who.clone()).or_default() += 1;
                if double_picks.binary_search(&i).is_ok() {
                    let second = &spec.annotators[(i + 1 + (rng.next_u64() as usize % (n - 1))) % n];
                    let layer = blind_layer(second);
                    copy_bare(db, id, &layer, lead)?;
                    insert_assignment(db, batch, id, second, "double", &layer, spec.lease_ms, now)?;
                    *summary.per_annotator.entry(second.clone()).or_default() += 1;
                    summary.doubles += 1;
                }
            }
            if spec.honeypots_per_annotator > 0 {
                let gold: Vec<String> = db
                    .rows("SELECT image_id FROM gold ORDER BY image_id", &[])?
                    .iter()
                    .map(|r| r.text(0))
                    .collect::<Result<_, _>>()?;
                for who in &spec.annotators {
                    let layer = blind_layer(who);
                    let mut candidates: Vec<&String> = Vec::new();
                    for g in &gold {
                        let taken = db.count(
                            "SELECT count(*) FROM assignments WHERE image_id = ?1 AND layer = ?2",
                            vals![g.as_str(), layer.as_str()],
                        )?;
                        if taken == 0 {
                            candidates.push(g);
                        }
                    }
                    for _ in 0..spec.honeypots_per_annotator.min(candidates.len()) {
                        let k = (rng.next_u64() % candidates.len() as u64) as usize;
                        let g = candidates.swap_remove(k);
                        copy_bare(db, g, &layer, lead)?;
                        insert_assignment(db, batch, g, who, "honeypot", &layer, spec.lease_ms, now)?;
                        *summary.per_annotator.entry(who.clone()).or_default() += 1;
                        summary.honeypots += 1;
                    }
                }
            }
            Ok(Some(summary))
        })?;
        result.ok_or_else(|| TeamError::Batch("no unassigned images match this selection".into()))
    }

    /// Give an annotator's item to someone else (its lease starts afresh).
    pub fn reassign(
        &self,
        lead: &str,
        image: &ImageId,
        from: &str,
        to: &str,
        now: i64,
    ) -> Result<(), TeamError> {
        self.require(lead, Role::Lead, "reassign work")?;
        self.role_of(to)?;
        self.store.in_tx(|db| {
            let Some(row) = db.row(
                &format!("SELECT {ASSIGNMENT_COLUMNS}, lease_ms FROM assignments WHERE image_id = ?1 AND (annotator = ?2 OR (annotator IS NULL AND ?2 = '')) ORDER BY id LIMIT 1"),
                vals![image.as_str(), from],
            )? else {
                return Err(StoreError::Server(format!("image {} is not assigned to '{from}'", image.short())));
            };
            let a = assignment_from_row(&row).map_err(|e| StoreError::Server(e.to_string()))?;
            let lease_ms = row.int(10)?;
            let layer = if a.kind == "primary" { MAIN_LAYER.to_owned() } else {
                let layer = blind_layer(to);
                copy_bare(db, a.image.as_str(), &layer, lead)?;
                layer
            };
            db.exec(
                "UPDATE assignments SET annotator = ?1, layer = ?2, lease_expires_ms = ?3, updated_at_ms = ?4 WHERE id = ?5",
                vals![to, layer.as_str(), now + lease_ms, now, a.id],
            )?;
            log_change(db, &a.image, &layer, lead, now)?;
            Ok(())
        })?;
        Ok(())
    }

    /// Free every primary item whose lease has run out while nobody submitted it; returns
    /// them. Their annotators can no longer push to them; `reassign` from "" gives them out.
    pub fn reclaim_expired(&self, lead: &str, now: i64) -> Result<Vec<Assignment>, TeamError> {
        self.require(lead, Role::Lead, "reclaim expired leases")?;
        let rows = self.store.in_tx(|db| {
            db.rows(
                &format!(
                    "UPDATE assignments SET annotator = NULL, updated_at_ms = ?1 \
                     WHERE kind = 'primary' AND annotator IS NOT NULL AND lease_expires_ms < ?1 \
                     AND state IN ('todo', 'in_progress') RETURNING {ASSIGNMENT_COLUMNS}"
                ),
                vals![now],
            )
        })?;
        rows.iter().map(assignment_from_row).collect()
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn insert_assignment(
    db: &mut dyn Db,
    batch: i64,
    image: &str,
    who: &str,
    kind: &str,
    layer: &str,
    lease_ms: i64,
    now: i64,
) -> Result<(), StoreError> {
    db.exec(
        "INSERT INTO assignments (batch_id, image_id, annotator, kind, layer, lease_ms, lease_expires_ms, state, updated_at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'todo', ?8)",
        vals![batch, image, who, kind, layer, lease_ms, now + lease_ms, now],
    )?;
    let id = ImageId::parse(image)
        .ok_or_else(|| StoreError::Server(format!("bad image id '{image}'")))?;
    log_change(db, &id, layer, "lead", now)
}

/// Make sure `layer` exists and holds a bare copy of `image` (no boxes, no questions).
pub(super) fn copy_bare(
    db: &mut dyn Db,
    image: &str,
    layer: &str,
    actor: &str,
) -> Result<(), StoreError> {
    let id = ImageId::parse(image)
        .ok_or_else(|| StoreError::Server(format!("bad image id '{image}'")))?;
    let record: ImageRecord =
        rows::read_image(db, &id)?.ok_or(StoreError::UnknownImage(id.clone()))?;
    // The server makes the copy's tables with their grants and policies (as the owner, so
    // a lead who is not the owner makes copies the same way).
    let member = layer.strip_prefix("blind_").unwrap_or_default();
    db.exec(
        "SELECT public.thyme_make_layer(?1, ?2)",
        vals![layer, member],
    )?;
    use_layer(db, layer)?;
    if rows::read_image(db, &id)?.is_none() {
        let mut bare = record;
        bare.status = Default::default();
        rows::apply(
            db,
            actor,
            &Command::AddImage {
                image: bare,
                regions: Vec::new(),
                questions: Vec::new(),
            },
        )?;
    }
    db.exec("SET LOCAL search_path TO public", &[])?;
    Ok(())
}
