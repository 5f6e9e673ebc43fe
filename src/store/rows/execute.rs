//! Carrying out a command inside a transaction: every row change an edit makes, each checked
//! against the rules and against what the command says was there before.

use super::*;

pub fn execute(db: &mut dyn Db, command: &Command) -> Result<(), StoreError> {
    match command {
        Command::AddImage {
            image,
            regions,
            questions,
        } => {
            if let Some(existing) = read_image(db, &image.id)? {
                return Err(StoreError::DuplicateImage {
                    path: image.path.clone(),
                    existing: existing.path,
                });
            }
            db.exec(
                "INSERT INTO images (id, path, width, height, bytes, added_at_ms, status, review) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                vals![
                    image.id.as_str(),
                    path_text(&image.path),
                    image.size.width,
                    image.size.height,
                    image.bytes as i64,
                    image.added_at_ms,
                    image.status.as_str(),
                    review_json(image.review.as_ref())?
                ],
            )?;
            for r in regions {
                insert_region(db, r)?;
            }
            for q in questions {
                insert_question(db, q)?;
            }
        }
        Command::RemoveImage {
            image,
            regions,
            questions,
        } => {
            let current = read_image(db, &image.id)?
                .ok_or_else(|| StoreError::UnknownImage(image.id.clone()))?;
            if current != *image
                || read_regions(db, &image.id)?.len() != regions.len()
                || count_questions(db, &image.id)? != questions.len() as i64
            {
                return Err(StoreError::Conflict(format!("image {}", image.file_name())));
            }
            for q in questions {
                delete_question(db, q)?;
            }
            for r in regions {
                delete_region(db, r, &[])?;
            }
            db.exec("DELETE FROM images WHERE id = ?1", vals![image.id.as_str()])?;
        }
        Command::RelocateImage { id, from, to } => {
            let current =
                read_image(db, id)?.ok_or_else(|| StoreError::UnknownImage(id.clone()))?;
            if current.path != *from {
                return Err(StoreError::Conflict(format!(
                    "the path of image {}",
                    id.short()
                )));
            }
            db.exec(
                "UPDATE images SET path = ?1, revision = revision + 1 WHERE id = ?2",
                vals![path_text(to), id.as_str()],
            )?;
        }
        Command::SetImageStatus { id, before, after } => {
            let current =
                read_image(db, id)?.ok_or_else(|| StoreError::UnknownImage(id.clone()))?;
            if current.status != *before {
                return Err(StoreError::Conflict(format!(
                    "the status of {}",
                    current.file_name()
                )));
            }
            db.exec(
                "UPDATE images SET status = ?1, revision = revision + 1 WHERE id = ?2",
                vals![after.as_str(), id.as_str()],
            )?;
        }
        Command::AddRegion { region, links } => {
            insert_region(db, region)?;
            for link in links {
                let q = read_question(db, link.question)?
                    .ok_or(StoreError::UnknownQuestion(link.question))?;
                let mut ids = q.regions.clone();
                ids.insert(link.position.min(ids.len()), region.id);
                write_links(db, link.question, &ids)?;
            }
        }
        Command::DeleteRegion { region, links } => {
            delete_region(db, region, links)?;
        }
        Command::UpdateRegion { before, after } => {
            if before.id != after.id || before.image != after.image {
                return Err(StoreError::Conflict(format!("box {}", before.id)));
            }
            expect_current(
                read_region(db, before.id)?,
                before,
                StoreError::UnknownRegion(before.id),
                || format!("box '{}'", before.label),
            )?;
            check_region_geometry(db, after)?;
            db.exec(
                "UPDATE regions SET x0 = ?1, y0 = ?2, x1 = ?3, y1 = ?4, label = ?5, review = ?6, revision = revision + 1 WHERE id = ?7",
                vals![
                    after.rect.x0,
                    after.rect.y0,
                    after.rect.x1,
                    after.rect.y1,
                    after.label.as_str(),
                    review_json(after.review.as_ref())?,
                    after.id.0.to_string()
                ],
            )?;
        }
        Command::AddQuestion { question } => insert_question(db, question)?,
        Command::DeleteQuestion { question } => delete_question(db, question)?,
        Command::UpdateQuestion { before, after } => {
            if before.id != after.id || before.image != after.image {
                return Err(StoreError::Conflict(format!("question {}", before.id)));
            }
            expect_current(
                read_question(db, before.id)?,
                before,
                StoreError::UnknownQuestion(before.id),
                || format!("question '{}'", before.text),
            )?;
            check_question_refs(db, after)?;
            db.exec(
                "UPDATE questions SET text = ?1, answer = ?2, category = ?3, status = ?4, review = ?5, revision = revision + 1 WHERE id = ?6",
                vals![
                    after.text.as_str(),
                    answer_json(&after.answer)?,
                    after.category.as_str(),
                    status_word(after.review.as_ref()),
                    review_json(after.review.as_ref())?,
                    after.id.0.to_string()
                ],
            )?;
            write_links(db, after.id, &after.regions)?;
        }
        Command::AddCategory { category } => {
            if category.name.trim().is_empty() {
                return Err(rules::RuleError::EmptyCategory.into());
            }
            let exists = db.count(
                "SELECT count(*) FROM categories WHERE name = ?1",
                vals![category.name.as_str()],
            )?;
            if exists > 0 {
                return Err(StoreError::DuplicateCategory(category.name.clone()));
            }
            db.exec(
                "INSERT INTO categories (name, builtin) VALUES (?1, ?2)",
                vals![category.name.as_str(), category.builtin],
            )?;
        }
        Command::RemoveCategory { category } => {
            if category.builtin {
                return Err(StoreError::BuiltinCategory(category.name.clone()));
            }
            let count = db.count(
                "SELECT count(*) FROM questions WHERE category = ?1",
                vals![category.name.as_str()],
            )?;
            if count > 0 {
                return Err(StoreError::CategoryInUse {
                    name: category.name.clone(),
                    count: count as u64,
                });
            }
            let n = db.exec(
                "DELETE FROM categories WHERE name = ?1 AND builtin = 0",
                vals![category.name.as_str()],
            )?;
            if n == 0 {
                return Err(StoreError::UnknownCategory(category.name.clone()));
            }
        }
        Command::SetReview {
            image,
            target,
            seen,
            before,
            after,
        } => set_review(db, image, target, seen, before.as_ref(), after.as_ref())?,
    }
    Ok(())
}

/// A verdict changes only when the item is as the reviewer saw it and its verdict is the one
/// the reviewer replaced.
pub(super) fn set_review(
    db: &mut dyn Db,
    image_id: &ImageId,
    target: &ReviewTarget,
    seen: &str,
    before: Option<&Review>,
    after: Option<&Review>,
) -> Result<(), StoreError> {
    if let Some(Review {
        verdict: crate::dataset::Verdict::Rejected,
        reason,
        ..
    }) = after
    {
        let reason = reason.as_deref().unwrap_or("");
        if !crate::dataset::REJECT_REASONS.contains(&reason) {
            return Err(StoreError::Review(
                crate::dataset::review::ReviewError::UnknownReason(reason.to_owned()),
            ));
        }
    }
    let (what, current, fingerprint, table, id) = match target {
        ReviewTarget::Image(id) if id != image_id => {
            return Err(StoreError::Conflict(format!("image {}", id.short())));
        }
        ReviewTarget::Image(id) => {
            let image = read_image(db, id)?.ok_or_else(|| StoreError::UnknownImage(id.clone()))?;
            let fp = image_fingerprint(&image, &read_regions(db, id)?, &read_questions(db, id)?);
            (
                format!("image {}", image.file_name()),
                image.review,
                fp,
                "images",
                id.as_str().to_owned(),
            )
        }
        ReviewTarget::Region(id) => {
            let r = read_region(db, *id)?.ok_or(StoreError::UnknownRegion(*id))?;
            if r.image != *image_id {
                return Err(StoreError::UnknownRegion(*id));
            }
            let fp = region_fingerprint(&r);
            (
                format!("box '{}'", r.label),
                r.review,
                fp,
                "regions",
                id.to_string(),
            )
        }
        ReviewTarget::Question(id) => {
            let q = read_question(db, *id)?.ok_or(StoreError::UnknownQuestion(*id))?;
            if q.image != *image_id {
                return Err(StoreError::UnknownQuestion(*id));
            }
            let fp = question_fingerprint(&q);
            (
                format!("question '{}'", q.text),
                q.review,
                fp,
                "questions",
                id.to_string(),
            )
        }
    };
    if !seen.is_empty() && seen != fingerprint {
        return Err(StoreError::ChangedSinceSeen { what });
    }
    if current.as_ref() != before {
        return Err(StoreError::Conflict(format!(
            "the verdict on {what} (now {})",
            current
                .as_ref()
                .map_or("unreviewed".to_owned(), Review::describe)
        )));
    }
    let json = review_json(after)?;
    match table {
        "images" => db.exec(
            "UPDATE images SET review = ?1, revision = revision + 1 WHERE id = ?2",
            vals![json, id],
        )?,
        "regions" => db.exec(
            "UPDATE regions SET review = ?1, revision = revision + 1 WHERE id = ?2",
            vals![json, id],
        )?,
        _ => db.exec(
            "UPDATE questions SET review = ?1, status = ?2, revision = revision + 1 WHERE id = ?3",
            vals![json, status_word(after), id],
        )?,
    };
    Ok(())
}

/// The old `status` column, kept readable for plain SQL: draft, accepted or rejected.
pub(super) fn status_word(review: Option<&Review>) -> &'static str {
    review.map_or("draft", |r| r.verdict.as_str())
}

pub fn review_json(review: Option<&Review>) -> Result<Option<String>, StoreError> {
    review
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| StoreError::Corrupt {
            table: "reviews",
            reason: e.to_string(),
        })
}

pub fn parse_review(
    table: &'static str,
    json: Option<String>,
) -> Result<Option<Review>, StoreError> {
    json.filter(|j| !j.is_empty())
        .map(|j| serde_json::from_str(&j))
        .transpose()
        .map_err(|e| StoreError::Corrupt {
            table,
            reason: format!("bad review: {e}"),
        })
}

/// An update or deletion must find the row as it expects it: otherwise someone else changed
/// it (a conflict) or it is gone.
pub(super) fn expect_current<T: PartialEq>(
    current: Option<T>,
    expected: &T,
    unknown: StoreError,
    what: impl FnOnce() -> String,
) -> Result<(), StoreError> {
    match current {
        None => Err(unknown),
        Some(c) if c == *expected => Ok(()),
        Some(_) => Err(StoreError::Conflict(what())),
    }
}

pub(super) fn check_region_geometry(db: &mut dyn Db, region: &Region) -> Result<(), StoreError> {
    let image = read_image(db, &region.image)?
        .ok_or_else(|| StoreError::UnknownImage(region.image.clone()))?;
    rules::check_rect(&region.rect, image.size)?;
    Ok(())
}

pub fn insert_region(db: &mut dyn Db, region: &Region) -> Result<(), StoreError> {
    check_region_geometry(db, region)?;
    if read_region(db, region.id)?.is_some() {
        return Err(StoreError::DuplicateRegion(region.id));
    }
    db.exec(
        "INSERT INTO regions (id, image_id, x0, y0, x1, y1, label, review) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        vals![
            region.id.0.to_string(),
            region.image.as_str(),
            region.rect.x0,
            region.rect.y0,
            region.rect.x1,
            region.rect.y1,
            region.label.as_str(),
            review_json(region.review.as_ref())?
        ],
    )?;
    Ok(())
}

pub(super) fn delete_region(
    db: &mut dyn Db,
    region: &Region,
    links: &[RegionLink],
) -> Result<(), StoreError> {
    expect_current(
        read_region(db, region.id)?,
        region,
        StoreError::UnknownRegion(region.id),
        || format!("box '{}'", region.label),
    )?;
    let current_links = read_links(db, region.id)?;
    if !links.is_empty() && current_links != links {
        return Err(StoreError::Conflict(format!(
            "the questions linked to box '{}'",
            region.label
        )));
    }
    for link in &current_links {
        if let Some(q) = read_question(db, link.question)? {
            let ids: Vec<RegionId> = q.regions.into_iter().filter(|r| *r != region.id).collect();
            write_links(db, link.question, &ids)?;
        }
    }
    db.exec(
        "DELETE FROM regions WHERE id = ?1",
        vals![region.id.0.to_string()],
    )?;
    Ok(())
}

pub(super) fn check_question_refs(db: &mut dyn Db, q: &Question) -> Result<(), StoreError> {
    if read_image(db, &q.image)?.is_none() {
        return Err(StoreError::UnknownImage(q.image.clone()));
    }
    let known = db.count(
        "SELECT count(*) FROM categories WHERE name = ?1",
        vals![q.category.as_str()],
    )?;
    if known == 0 {
        return Err(StoreError::UnknownCategory(q.category.clone()));
    }
    for id in &q.regions {
        let r = read_region(db, *id)?.ok_or(StoreError::UnknownRegion(*id))?;
        if r.image != q.image {
            return Err(StoreError::ForeignRegion { region: *id });
        }
    }
    if let Answer::Choice { options, correct } = &q.answer
        && *correct >= options.len()
    {
        return Err(rules::RuleError::CorrectOutOfRange {
            index: *correct,
            count: options.len(),
        }
        .into());
    }
    Ok(())
}

pub fn insert_question(db: &mut dyn Db, q: &Question) -> Result<(), StoreError> {
    check_question_refs(db, q)?;
    if read_question(db, q.id)?.is_some() {
        return Err(StoreError::DuplicateQuestion(q.id));
    }
    db.exec(
        "INSERT INTO questions (id, image_id, text, answer, category, status, review) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        vals![
            q.id.0.to_string(),
            q.image.as_str(),
            q.text.as_str(),
            answer_json(&q.answer)?,
            q.category.as_str(),
            status_word(q.review.as_ref()),
            review_json(q.review.as_ref())?
        ],
    )?;
    write_links(db, q.id, &q.regions)
}

pub(super) fn delete_question(db: &mut dyn Db, q: &Question) -> Result<(), StoreError> {
    expect_current(
        read_question(db, q.id)?,
        q,
        StoreError::UnknownQuestion(q.id),
        || format!("question '{}'", q.text),
    )?;
    let id = q.id.0.to_string();
    db.exec(
        "DELETE FROM question_regions WHERE question_id = ?1",
        vals![id.as_str()],
    )?;
    db.exec("DELETE FROM questions WHERE id = ?1", vals![id])?;
    Ok(())
}

pub fn write_links(
    db: &mut dyn Db,
    question: QuestionId,
    regions: &[RegionId],
) -> Result<(), StoreError> {
    let qid = question.0.to_string();
    db.exec(
        "DELETE FROM question_regions WHERE question_id = ?1",
        vals![qid.as_str()],
    )?;
    for (position, r) in regions.iter().enumerate() {
        db.exec(
            "INSERT INTO question_regions (question_id, region_id, position) VALUES (?1, ?2, ?3)",
            vals![qid.as_str(), r.0.to_string(), position as i64],
        )?;
    }
    Ok(())
}
