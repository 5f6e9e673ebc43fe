//! Mini-o3: one folder per run, normalised boxes mapped to pixels.

use super::*;

/// Mini-o3: a folder with `traj.jsonl` (one message per line) and `observation_{i}_*.jpg`.
pub(super) fn read_mini_o3(path: &Path) -> Result<Loaded, TraceError> {
    let dir = if path.is_dir() {
        path.to_owned()
    } else {
        path.parent().unwrap_or(Path::new(".")).to_owned()
    };
    let traj = dir.join("traj.jsonl");
    let mut loaded = Loaded::default();
    let mut msgs = Vec::new();
    let file = std::fs::File::open(&traj).map_err(io_err(&traj))?;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io_err(&traj))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(v) => msgs.push(v),
            Err(e) => loaded.problems.push(Problem {
                file: traj.clone(),
                line: i + 1,
                message: format!("not JSON: {e}"),
            }),
        }
    }
    // observation_{i}_*.jpg, by i.
    let mut observations: Vec<(usize, PathBuf)> = std::fs::read_dir(&dir)
        .map_err(io_err(&dir))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name
                .strip_prefix("observation_")?
                .split(['_', '.'])
                .next()?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    observations.sort();
    let mut run = Run {
        id: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        ..Default::default()
    };
    let mut steps = Vec::new();
    let mut next_obs = observations.into_iter();
    // Rectangles of the original and each observation, to place boxes given on observations.
    let mut rect_of: Vec<Option<[f64; 4]>> = Vec::new();
    let original_size = |run: &Run| -> Option<(f64, f64)> {
        let p = run.images.first()?.path.as_ref()?;
        let probe = crate::imagery::probe_file(p, crate::imagery::PixelBudget::DEFAULT).ok()?;
        Some((f64::from(probe.size.width), f64::from(probe.size.height)))
    };
    for m in &msgs {
        let (text, images) = content(m.get("content").unwrap_or(&Value::Null));
        match role(m) {
            "user" if run.question.is_empty() => {
                run.question = text.replace("<image>", "").trim().to_owned();
                run.images = images
                    .into_iter()
                    .map(|mut i| {
                        if let Some(p) = &i.path
                            && p.is_relative()
                        {
                            i.path = Some(dir.join(p));
                        }
                        i
                    })
                    .collect();
            }
            "assistant" => {
                steps.push(Step::Generate {
                    stop: None,
                    text: text.clone(),
                    tokens: None,
                    ms: None,
                    sampling: Default::default(),
                    rolled_back: false,
                });
                if let Some(call) = tags::between(&text, "<grounding>", "</grounding>") {
                    let parsed: Value = serde_json::from_str(call.trim()).unwrap_or(Value::Null);
                    let b = parsed.get("bbox_2d").and_then(bbox);
                    let source = parsed
                        .get("source")
                        .and_then(Value::as_str)
                        .unwrap_or("original_image");
                    // The rectangle the box is relative to (normalised boxes: 0..1 of it).
                    let frame = if source == "original_image" {
                        original_size(&run).map(|(w, h)| [0.0, 0.0, w, h])
                    } else {
                        source
                            .strip_prefix("observation_")
                            .and_then(|n| n.parse::<usize>().ok())
                            .and_then(|n| rect_of.get(n.saturating_sub(1)).copied().flatten())
                    };
                    let rect = match (b, frame) {
                        (Some(b), Some(f)) if b.iter().all(|x| *x <= 1.0) => {
                            let (w, h) = (f[2] - f[0], f[3] - f[1]);
                            Some([
                                f[0] + b[0] * w,
                                f[1] + b[1] * h,
                                f[0] + b[2] * w,
                                f[1] + b[3] * h,
                            ])
                        }
                        (Some(b), Some(f)) => {
                            Some([f[0] + b[0], f[1] + b[1], f[0] + b[2], f[1] + b[3]])
                        }
                        _ => None,
                    };
                    let obs = next_obs.next().map(|(_, p)| TraceImage::at(p));
                    rect_of.push(rect);
                    steps.push(Step::Execute {
                        raw_code: call.trim().to_owned(),
                        executed_code: call.trim().to_owned(),
                        fixes: Vec::<Fix>::new(),
                        stdout: String::new(),
                        stderr: String::new(),
                        error: obs
                            .is_none()
                            .then(|| "no observation image for this call".to_owned()),
                        text_result: None,
                        outputs: obs
                            .into_iter()
                            .map(|image| StepImage {
                                image,
                                source_rect: rect,
                                provenance: rect.map(|_| Provenance::Tool),
                            })
                            .collect(),
                        ms: None,
                        fed_back: true,
                        edited_from: None,
                    });
                }
                if text.contains("<answer>") {
                    steps.push(Step::Answer {
                        extracted: tags::extract_answer(&text).map(str::to_owned),
                        text,
                        matches_ground_truth: None,
                    });
                }
            }
            _ => {}
        }
    }
    if steps.is_empty() {
        loaded.problems.push(Problem {
            file: traj,
            line: 0,
            message: "no assistant turns".into(),
        });
    } else {
        loaded.traces.push(Trace::new(run, steps));
    }
    Ok(loaded)
}
