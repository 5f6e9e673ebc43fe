//! Reading rows back as domain values, and the small parsers and encoders rows share.

use super::*;

pub const IMAGE_COLUMNS: &str = "id, path, width, height, bytes, added_at_ms, status, review";
pub const REGION_COLUMNS: &str = "id, image_id, x0, y0, x1, y1, label, review";

pub fn image_from_row(row: &Row) -> Result<ImageRecord, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "images",
        reason,
    };
    let id = row.text(0)?;
    let id = ImageId::parse(&id).ok_or_else(|| corrupt(format!("bad image id '{id}'")))?;
    let (w, h) = (row.int(2)?, row.int(3)?);
    let width = u32::try_from(w).map_err(|_| corrupt(format!("bad width {w}")))?;
    let height = u32::try_from(h).map_err(|_| corrupt(format!("bad height {h}")))?;
    let status = row.text(6)?;
    Ok(ImageRecord {
        id,
        path: PathBuf::from(row.text(1)?),
        size: ImageSize::new(width, height),
        bytes: row.int(4)?.max(0) as u64,
        added_at_ms: row.int(5)?,
        status: ImageStatus::parse(&status)
            .ok_or_else(|| corrupt(format!("unknown status '{status}'")))?,
        review: parse_review("images", row.opt_text(7)?)?,
    })
}

pub fn region_from_row(row: &Row) -> Result<Region, StoreError> {
    let image = row.text(1)?;
    Ok(Region {
        id: RegionId(parse_uuid("regions", &row.text(0)?)?),
        image: ImageId::parse(&image).ok_or_else(|| StoreError::Corrupt {
            table: "regions",
            reason: format!("bad image id '{image}'"),
        })?,
        rect: ImageRect::new(row.real(2)?, row.real(3)?, row.real(4)?, row.real(5)?),
        label: row.text(6)?,
        review: parse_review("regions", row.opt_text(7)?)?,
    })
}

pub fn read_images(db: &mut dyn Db) -> Result<Vec<ImageRecord>, StoreError> {
    db.rows(
        &format!("SELECT {IMAGE_COLUMNS} FROM images ORDER BY path, id"),
        &[],
    )?
    .iter()
    .map(image_from_row)
    .collect()
}

pub fn read_image(db: &mut dyn Db, id: &ImageId) -> Result<Option<ImageRecord>, StoreError> {
    db.row(
        &format!("SELECT {IMAGE_COLUMNS} FROM images WHERE id = ?1"),
        vals![id.as_str()],
    )?
    .as_ref()
    .map(image_from_row)
    .transpose()
}

pub(super) fn count_questions(db: &mut dyn Db, image: &ImageId) -> Result<i64, StoreError> {
    db.count(
        "SELECT count(*) FROM questions WHERE image_id = ?1",
        vals![image.as_str()],
    )
}

pub fn read_regions(db: &mut dyn Db, image: &ImageId) -> Result<Vec<Region>, StoreError> {
    db.rows(
        &format!("SELECT {REGION_COLUMNS} FROM regions WHERE image_id = ?1 ORDER BY id"),
        vals![image.as_str()],
    )?
    .iter()
    .map(region_from_row)
    .collect()
}

pub fn read_region(db: &mut dyn Db, id: RegionId) -> Result<Option<Region>, StoreError> {
    db.row(
        &format!("SELECT {REGION_COLUMNS} FROM regions WHERE id = ?1"),
        vals![id.0.to_string()],
    )?
    .as_ref()
    .map(region_from_row)
    .transpose()
}

pub fn read_links(db: &mut dyn Db, region: RegionId) -> Result<Vec<RegionLink>, StoreError> {
    db.rows(
        "SELECT question_id, position FROM question_regions WHERE region_id = ?1 ORDER BY question_id",
        vals![region.0.to_string()],
    )?
    .iter()
    .map(|row| {
        Ok(RegionLink {
            question: QuestionId(parse_uuid("question_regions", &row.text(0)?)?),
            position: row.int(1)?.max(0) as usize,
        })
    })
    .collect()
}

pub fn read_questions(db: &mut dyn Db, image: &ImageId) -> Result<Vec<Question>, StoreError> {
    let ids = db.rows(
        "SELECT id FROM questions WHERE image_id = ?1 ORDER BY id",
        vals![image.as_str()],
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for row in ids {
        let id = QuestionId(parse_uuid("questions", &row.text(0)?)?);
        if let Some(q) = read_question(db, id)? {
            out.push(q);
        }
    }
    Ok(out)
}

pub fn read_question(db: &mut dyn Db, id: QuestionId) -> Result<Option<Question>, StoreError> {
    let Some(row) = db.row(
        "SELECT image_id, text, answer, category, review FROM questions WHERE id = ?1",
        vals![id.0.to_string()],
    )?
    else {
        return Ok(None);
    };
    let corrupt = |reason: String| StoreError::Corrupt {
        table: "questions",
        reason,
    };
    let regions = db
        .rows(
            "SELECT region_id FROM question_regions WHERE question_id = ?1 ORDER BY position",
            vals![id.0.to_string()],
        )?
        .iter()
        .map(|r| Ok(RegionId(parse_uuid("question_regions", &r.text(0)?)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let image = row.text(0)?;
    Ok(Some(Question {
        id,
        image: ImageId::parse(&image).ok_or_else(|| corrupt(format!("bad image id '{image}'")))?,
        regions,
        text: row.text(1)?,
        answer: parse_answer(&row.text(2)?)?,
        category: row.text(3)?,
        review: parse_review("questions", row.opt_text(4)?)?,
    }))
}

pub fn read_categories(db: &mut dyn Db) -> Result<Vec<Category>, StoreError> {
    db.rows(
        "SELECT name, builtin FROM categories ORDER BY builtin DESC, name",
        &[],
    )?
    .iter()
    .map(|row| {
        Ok(Category {
            name: row.text(0)?,
            builtin: row.int(1)? != 0,
        })
    })
    .collect()
}

pub fn delete_region_command(db: &mut dyn Db, id: RegionId) -> Result<Command, StoreError> {
    let region = read_region(db, id)?.ok_or(StoreError::UnknownRegion(id))?;
    let links = read_links(db, id)?;
    Ok(Command::DeleteRegion { region, links })
}

/// The revision of an image, region or question row (`None` when there is no such row).
pub fn revision(db: &mut dyn Db, table: RowTable, id: &str) -> Result<Option<i64>, StoreError> {
    let sql = match table {
        RowTable::Images => "SELECT revision FROM images WHERE id = ?1",
        RowTable::Regions => "SELECT revision FROM regions WHERE id = ?1",
        RowTable::Questions => "SELECT revision FROM questions WHERE id = ?1",
    };
    db.row(sql, vals![id])?.map(|r| r.int(0)).transpose()
}

/// The tables whose rows carry revisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowTable {
    Images,
    Regions,
    Questions,
}

pub fn parse_uuid(table: &'static str, s: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::parse_str(s).map_err(|e| StoreError::Corrupt {
        table,
        reason: format!("bad id '{s}': {e}"),
    })
}

pub fn parse_answer(json: &str) -> Result<Answer, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        table: "questions",
        reason: format!("bad answer: {e}"),
    })
}

pub fn answer_json(answer: &Answer) -> Result<String, StoreError> {
    serde_json::to_string(answer).map_err(|e| StoreError::Corrupt {
        table: "questions",
        reason: e.to_string(),
    })
}

pub(super) fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
