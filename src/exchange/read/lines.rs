//! JSON lines: our lossless canonical export (replayed command by command), and Thyme's RL
//! and SFT rows.

use super::*;

pub(super) fn import_canonical(
    store: &mut SqliteStore,
    path: &Path,
    settings: &ImportSettings,
    cancel: &AtomicBool,
    mut summary: ImportSummary,
) -> Result<ImportSummary, ExchangeError> {
    let (dump, errors) = canonical::read(path)?;
    summary
        .problems
        .extend(errors.into_iter().map(|(n, m)| Problem {
            at: format!("line {n}"),
            message: m,
        }));
    check_cancel(cancel)?;
    if summary.problems.is_empty() && store.is_empty()? {
        store.restore(&dump)?;
        summary.restored_exactly = true;
        summary.images_added = dump.images.len() as u64;
        summary.boxes = dump.regions.len() as u64;
        summary.questions = dump.questions.len() as u64;
        summary.categories_added = dump.categories.iter().filter(|c| !c.builtin).count() as u64;
        return Ok(summary);
    }
    // Into a project with data (or from a damaged file): the annotations are merged as new
    // edits by this user; the file's history stays in the file.
    let mut b = Builder::new(store, path, settings)?;
    b.summary = summary;
    let mut regions: HashMap<ImageId, Vec<Region>> = HashMap::new();
    for r in dump.regions {
        regions.entry(r.image.clone()).or_default().push(r);
    }
    let mut questions: HashMap<ImageId, Vec<Question>> = HashMap::new();
    for q in dump.questions {
        questions.entry(q.image.clone()).or_default().push(q);
    }
    for c in &dump.categories {
        b.category(Some(&c.name));
    }
    for image in dump.images {
        let at = format!("image {}", image.path.display());
        if b.existing.contains(&image.id) {
            b.summary.images_already_there += 1;
            b.problem(
                at,
                "already in the project: its boxes and questions were not merged",
            );
            continue;
        }
        b.found.insert(image.path.clone(), Some(image.id.clone()));
        for r in regions.remove(&image.id).unwrap_or_default() {
            b.region(&at, &image, r.rect, &r.label, Some(r.id));
        }
        b.images.insert(image.id.clone(), image.clone());
        for q in questions.remove(&image.id).unwrap_or_default() {
            b.question(&at, q);
        }
    }
    b.summary.problems.push(Problem {
        at: path.display().to_string(),
        message:
            "merged into a project that already had data: the file's edit history was not copied"
                .into(),
    });
    b.commit(store, cancel)
}

pub(super) fn read_lines(
    b: &mut Builder,
    path: &Path,
    cancel: &AtomicBool,
    each: fn(&mut Builder, &str, &Value) -> Result<(), String>,
) -> Result<(), ExchangeError> {
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        if i % 1024 == 0 {
            check_cancel(cancel)?;
        }
        let at = format!("line {}", i + 1);
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                b.problem(at, format!("unreadable: {e}"));
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(v) => {
                if let Err(m) = each(b, &at, &v) {
                    b.problem(at, m);
                }
            }
            Err(e) => b.problem(at, format!("not JSON: {e}")),
        }
    }
    Ok(())
}

pub(super) fn thyme_rl_line(b: &mut Builder, at: &str, v: &Value) -> Result<(), String> {
    let name = first_image(v).ok_or("no image path (images)")?;
    let Some(image) = b.image(at, name) else {
        return Ok(());
    };
    let mut links = Vec::new();
    if let Some(boxes) = v.get("bbox").and_then(Value::as_array) {
        let list: Vec<&Value> = if boxes.first().is_some_and(Value::is_array) {
            boxes.iter().collect()
        } else {
            vec![v.get("bbox").unwrap_or(&Value::Null)]
        };
        for bx in list {
            let nums: Vec<f64> = bx
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default();
            match <[f64; 4]>::try_from(nums) {
                Ok([x0, y0, x1, y1]) => {
                    let label = v.get("label").and_then(Value::as_str).unwrap_or("");
                    if let Some(id) =
                        b.region(at, &image, ImageRect::new(x0, y0, x1, y1), label, None)
                    {
                        links.push(id);
                    }
                }
                Err(_) => b.problem(at, "bbox entry is not [x0, y0, x1, y1]"),
            }
        }
    }
    // The raw question when present; else the user turn without its headers.
    let text = match v.get("question").and_then(Value::as_str) {
        Some(q) => bare_question(q).to_owned(),
        None => v
            .get("messages")
            .and_then(Value::as_array)
            .and_then(|m| {
                m.iter()
                    .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            })
            .and_then(|m| m.get("content").and_then(Value::as_str))
            .map(|c| bare_question(c).to_owned())
            .ok_or("no question (question or a user message)")?,
    };
    let mut record = v.clone();
    if let Some(obj) = record.as_object_mut() {
        obj.insert("question".into(), Value::String(text));
    }
    let q = question_from_value(b, &record, &image, links)?;
    b.question(at, q);
    Ok(())
}

pub(super) fn thyme_sft_line(b: &mut Builder, at: &str, v: &Value) -> Result<(), String> {
    let name = first_image(v).ok_or("no image path (image)")?;
    let question = v
        .get("question")
        .and_then(Value::as_str)
        .map(bare_question)
        .ok_or("no question")?
        .to_owned();
    let response = v
        .get("response")
        .and_then(Value::as_str)
        .ok_or("no response")?;
    let answer = response
        .split_once("<answer>")
        .and_then(|(_, rest)| rest.split_once("</answer>").map(|(a, _)| a))
        .ok_or("the response has no <answer>...</answer>")?;
    let answer = solution(answer).to_owned();
    let Some(image) = b.image(at, name) else {
        return Ok(());
    };
    let category = b.category(v.get("category").and_then(Value::as_str));
    let q = Question::new(
        image.id.clone(),
        vec![],
        question,
        Answer::Open { text: answer },
        category,
    );
    b.question(at, q);
    Ok(())
}
