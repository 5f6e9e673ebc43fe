//! `thyme-studio trace ...`: read agent logs (ours and other agents'), convert them to our
//! format, show a run step by step, list the flags of every run.

use std::path::{Path, PathBuf};

use thyme_studio::trace::Step;

use super::Failure;
use super::output::print_json;

#[derive(clap::Subcommand)]
pub enum TraceCommand {
    /// Read a log (ours, thyme-sft, thyme-rl, deepeyes, deepeyes-v2, mini-o3, pyvision,
    /// chain-of-focus, pixel-reasoner, verl) and write our
    /// format: OUT.jsonl for many runs, OUT.zip for one, else a folder (one folder per run when
    /// there are several).
    Convert {
        input: PathBuf,
        out: PathBuf,
        #[arg(long, default_value = "auto")]
        format: String,
    },
    /// A text summary of a run (the first, or --run ID), or of one step.
    Show {
        path: PathBuf,
        #[arg(long)]
        run: Option<String>,
        #[arg(long)]
        step: Option<usize>,
        #[arg(long, default_value = "auto")]
        format: String,
    },
    /// The flags of every run, as a table or JSON.
    Lint {
        path: PathBuf,
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "auto")]
        format: String,
    },
    /// Find runs by text (question, reasoning, code, output, answer; case-insensitive) and
    /// filters; each match printed as it is found.
    Search(SearchArgs),
    /// Statistics over every run: accuracy by category, by code cells run, by tool use, by
    /// tool, by flag and by the smallest crop's size; tool-use rate; crop sizes and zoom;
    /// errors. A text report, or JSON; --csv also writes the groups as CSV.
    Stats {
        path: PathBuf,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        csv: Option<PathBuf>,
        #[arg(long, default_value = "auto")]
        format: String,
    },
    /// Make every stored step image again from the original (code re-run in the sandbox, tool
    /// boxes cut by their format's rule) and compare: reproduced, resampled, different region
    /// or not reproducible, with the rule that explains a difference; a report, the worst
    /// rows, a CSV and the rows to fix.
    Audit(super::trace_audit::AuditArgs),
}

#[derive(clap::Args)]
pub struct SearchArgs {
    path: PathBuf,
    /// The text to find (empty: every run that passes the filters).
    #[arg(default_value = "")]
    text: String,
    /// Only runs with this lint flag.
    #[arg(long)]
    flag: Option<String>,
    /// Only runs whose code used this tool (crop, resize, cv2, ...).
    #[arg(long)]
    tool: Option<String>,
    /// Only runs with this outcome (correct, wrong, answered, no_answer, unknown).
    #[arg(long)]
    outcome: Option<String>,
    /// Only runs whose reward column lies in a range: NAME=LO..HI (RL logs; an end may be
    /// left out: CSTORM=0.5..).
    #[arg(long)]
    reward: Option<String>,
    #[arg(long)]
    json: bool,
    #[arg(long, default_value = "auto")]
    format: String,
}

pub fn load_traces(
    path: &std::path::Path,
    format: &str,
    images: Option<&Path>,
) -> Result<thyme_studio::trace::readers::Loaded, Failure> {
    use thyme_studio::trace::readers::{LogFormat, read};
    let format = match format {
        "auto" => {
            let d = thyme_studio::trace::readers::Detection::of(path)
                .map_err(|e| Failure::User(e.into()))?;
            if d.confidence != thyme_studio::trace::readers::Confidence::Certain {
                eprintln!(
                    "note: read as {} ({}; likely, not certain: --format names another)",
                    d.format.name(),
                    d.why
                );
            }
            d.format
        }
        f => LogFormat::parse(f).ok_or_else(|| {
            Failure::User(anyhow::anyhow!(
                "unknown format '{f}' ({})",
                LogFormat::ALL.map(LogFormat::name).join(", ")
            ))
        })?,
    };
    let mut loaded = read(path, format).map_err(|e| Failure::User(e.into()))?;
    let base = if path.is_dir() {
        path.to_owned()
    } else {
        path.parent().unwrap_or(Path::new(".")).to_owned()
    };
    for t in &mut loaded.traces {
        if let Some(dir) = images {
            thyme_studio::trace::readers::relocate_images(t, &base, dir);
        }
        thyme_studio::trace::provenance::fill(t);
    }
    for p in &loaded.problems {
        eprintln!("warning: {p}");
    }
    Ok(loaded)
}

impl TraceCommand {
    pub fn run(self, images: Option<&Path>) -> Result<(), Failure> {
        match self {
            TraceCommand::Convert { input, out, format } => convert(&input, &out, &format, images),
            TraceCommand::Show {
                path,
                run,
                step,
                format,
            } => show(&path, run.as_deref(), step, &format, images),
            TraceCommand::Lint { path, json, format } => lint_table(&path, json, &format, images),
            TraceCommand::Search(args) => search(&args, images),
            TraceCommand::Stats {
                path,
                json,
                csv,
                format,
            } => stats(&path, json, csv.as_deref(), &format, images),
            TraceCommand::Audit(args) => args.run(images),
        }
    }
}

fn stats(
    path: &Path,
    json: bool,
    csv: Option<&Path>,
    format: &str,
    images: Option<&Path>,
) -> Result<(), Failure> {
    let mut loaded = load_traces(path, format, images)?;
    let base = if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(Path::new("."))
    };
    thyme_studio::trace::stats::fill_original_sizes(&mut loaded.traces, base);
    let stats = thyme_studio::trace::stats::compute(&loaded.traces);
    if let Some(out) = csv {
        std::fs::write(out, stats.csv())
            .map_err(|e| Failure::User(anyhow::anyhow!("{}: {e}", out.display())))?;
    }
    if json {
        print_json(&stats)?;
    } else {
        print!("{}", stats.text());
        if !loaded.problems.is_empty() {
            println!("({} line(s) not read, named above)", loaded.problems.len());
        }
    }
    Ok(())
}

fn convert(input: &Path, out: &Path, format: &str, images: Option<&Path>) -> Result<(), Failure> {
    use thyme_studio::trace::io;
    let loaded = load_traces(input, format, images)?;
    let n = loaded.traces.len();
    if out.extension().is_some_and(|e| e == "jsonl") {
        io::write_jsonl(&loaded.traces, out).map_err(|e| Failure::User(e.into()))?;
    } else if out.extension().is_some_and(|e| e == "zip") {
        if n != 1 {
            return Err(Failure::User(anyhow::anyhow!(
                "a .zip holds one run and {} has {n}; write OUT.jsonl or a folder",
                input.display()
            )));
        }
        io::write_zip(&loaded.traces[0], out).map_err(|e| Failure::User(e.into()))?;
    } else if n == 1 {
        io::write_folder(&loaded.traces[0], out).map_err(|e| Failure::User(e.into()))?;
    } else {
        for (i, t) in loaded.traces.iter().enumerate() {
            let name: String = t
                .run
                .id
                .chars()
                .map(|c| {
                    if c.is_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let dir = out.join(format!("{i:05}-{name}"));
            io::write_folder(t, &dir).map_err(|e| Failure::User(e.into()))?;
        }
    }
    println!(
        "{n} run(s) written to {} ({} line(s) not read)",
        out.display(),
        loaded.problems.len()
    );
    Ok(())
}

fn show(
    path: &Path,
    run: Option<&str>,
    step: Option<usize>,
    format: &str,
    images: Option<&Path>,
) -> Result<(), Failure> {
    use thyme_studio::trace::lint;
    let loaded = load_traces(path, format, images)?;
    let t = match run {
        Some(id) => loaded.traces.iter().find(|t| t.run.id == id),
        None => loaded.traces.first(),
    }
    .ok_or_else(|| Failure::User(anyhow::anyhow!("no such run in {}", path.display())))?;
    println!("run {} ({})", t.run.id, t.run.source_format);
    println!("question: {}", t.run.question);
    println!(
        "outcome: {} (ground truth: {})",
        t.run.outcome.as_str(),
        t.run.ground_truth.as_deref().unwrap_or("-")
    );
    for (k, v) in &t.run.rewards {
        println!("reward {k}: {v}");
    }
    let flags = lint::lint(t);
    match step {
        Some(n) => {
            let s = t.steps.get(n.wrapping_sub(1)).ok_or_else(|| {
                Failure::User(anyhow::anyhow!("the run has {} steps", t.steps.len()))
            })?;
            print_step(n - 1, s);
        }
        None => {
            for (i, s) in t.steps.iter().enumerate() {
                print_step(i, s);
            }
        }
    }
    for f in flags {
        println!(
            "flag {}{}: {}",
            f.name,
            f.step
                .map(|s| format!(" (step {})", s + 1))
                .unwrap_or_default(),
            f.detail
        );
    }
    Ok(())
}

fn lint_table(path: &Path, json: bool, format: &str, images: Option<&Path>) -> Result<(), Failure> {
    use thyme_studio::trace::lint;
    let loaded = load_traces(path, format, images)?;
    let rows: Vec<serde_json::Value> = loaded
        .traces
        .iter()
        .flat_map(|t| {
            lint::lint(t).into_iter().map(move |f| {
                serde_json::json!({
                    "run": t.run.id,
                    "flag": f.name,
                    "step": f.step.map(|s| s + 1),
                    "detail": f.detail,
                })
            })
        })
        .collect();
    if json {
        print_json(&rows)?;
    } else {
        println!("{:<28} {:<26} {:>5}  detail", "run", "flag", "step");
        for r in &rows {
            println!(
                "{:<28} {:<26} {:>5}  {}",
                r["run"].as_str().unwrap_or(""),
                r["flag"].as_str().unwrap_or(""),
                r["step"]
                    .as_u64()
                    .map(|s| s.to_string())
                    .unwrap_or("-".into()),
                r["detail"].as_str().unwrap_or("")
            );
        }
        println!("{} run(s), {} flag(s)", loaded.traces.len(), rows.len());
    }
    Ok(())
}

/// One step of a run, as `trace show` prints it.
fn print_step(i: usize, s: &Step) {
    match s {
        Step::Generate { text, stop, .. } => {
            println!(
                "[{}] generate (stop {})
{}",
                i + 1,
                stop.as_deref().unwrap_or("-"),
                text
            )
        }
        Step::Execute {
            executed_code,
            raw_code,
            stdout,
            error,
            outputs,
            edited_from,
            ..
        } => {
            let code = if executed_code.is_empty() {
                raw_code
            } else {
                executed_code
            };
            println!(
                "[{}] execute
{}",
                i + 1,
                code.trim_end()
            );
            if let Some(original) = edited_from {
                println!("  edited by a person; the model wrote:");
                for line in original.trim_end().lines() {
                    println!("  | {line}");
                }
            }
            if !stdout.is_empty() {
                println!("  output: {}", stdout.trim_end());
            }
            if let Some(e) = error {
                println!("  error: {e}");
            }
            for o in outputs {
                let from = o
                    .source_rect
                    .map(|r| format!(" from [{:.0}, {:.0}, {:.0}, {:.0}]", r[0], r[1], r[2], r[3]))
                    .unwrap_or_default();
                let how = o
                    .provenance
                    .map(|p| format!(" ({})", p.as_str()))
                    .unwrap_or_default();
                let name = o
                    .image
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| {
                        if o.image.has_pixels() {
                            "(embedded)".into()
                        } else {
                            "(not kept in the log)".into()
                        }
                    });
                println!("  image {name}{from}{how}");
            }
        }
        Step::Answer {
            extracted,
            matches_ground_truth,
            ..
        } => println!(
            "[{}] answer: {} ({})",
            i + 1,
            extracted.as_deref().unwrap_or("-"),
            match matches_ground_truth {
                Some(true) => "correct",
                Some(false) => "wrong",
                None => "no ground truth",
            }
        ),
    }
}

/// `trace search`: our JSONL is indexed and searched in chunks (matches print as they are
/// found); other logs are read whole and searched.
fn search(a: &SearchArgs, images: Option<&Path>) -> Result<(), Failure> {
    use std::sync::atomic::AtomicBool;
    use thyme_studio::trace::io::{index_jsonl, rows_of};
    use thyme_studio::trace::readers::LogFormat;
    use thyme_studio::trace::search::{Hit, Query, search_jsonl, search_traces};
    let outcome = match a.outcome.as_deref() {
        None => None,
        Some(o) => Some(thyme_studio::trace::Outcome::parse(o).ok_or_else(|| {
            Failure::user(format!(
                "--outcome is correct, wrong, answered, no_answer or unknown, not '{o}'"
            ))
        })?),
    };
    let reward = a
        .reward
        .as_deref()
        .map(thyme_studio::trace::search::RewardRange::parse)
        .transpose()
        .map_err(Failure::user)?;
    let q = Query {
        text: a.text.clone(),
        flag: a.flag.clone(),
        tool: a.tool.clone(),
        outcome,
        reward,
    };
    let detected = match a.format.as_str() {
        "auto" => Some(LogFormat::detect(&a.path).map_err(|e| Failure::User(e.into()))?),
        f => LogFormat::parse(f),
    };
    let mut all = Vec::new();
    let ids: Vec<String>;
    let our_jsonl = a.path.is_file() && a.path.extension().is_some_and(|e| e == "jsonl");
    if detected == Some(LogFormat::Ours) && our_jsonl {
        let mut rows = Vec::new();
        let cancel = AtomicBool::new(false);
        for p in index_jsonl(&a.path, &mut |r| rows.extend(r), &cancel)
            .map_err(|e| Failure::User(e.into()))?
        {
            eprintln!("warning: {p}");
        }
        ids = rows.iter().map(|r| r.id.clone()).collect();
        search_jsonl(&a.path, &rows, &q, &cancel, &mut |hits: Vec<Hit>| {
            for h in &hits {
                if !a.json {
                    print_hit(&ids_of(&rows, h), h);
                }
            }
            all.extend(hits);
        })
        .map_err(|e| Failure::User(e.into()))?;
    } else {
        let loaded = load_traces(&a.path, &a.format, images)?;
        let rows = rows_of(&loaded.traces);
        ids = rows.iter().map(|r| r.id.clone()).collect();
        all = search_traces(&loaded.traces, &rows, &q);
        if !a.json {
            for h in &all {
                print_hit(&ids[h.row], h);
            }
        }
    }
    if a.json {
        let v: Vec<serde_json::Value> = all
            .iter()
            .map(|h| {
                serde_json::json!({
                    "run": ids[h.row],
                    "step": h.step.map(|s| s + 1),
                    "field": h.field,
                    "excerpt": h.excerpt,
                })
            })
            .collect();
        return print_json(&v);
    }
    println!("{} run(s) match of {}", all.len(), ids.len());
    Ok(())
}

fn ids_of(
    rows: &[thyme_studio::trace::io::RunRow],
    h: &thyme_studio::trace::search::Hit,
) -> String {
    rows.get(h.row).map(|r| r.id.clone()).unwrap_or_default()
}

fn print_hit(id: &str, h: &thyme_studio::trace::search::Hit) {
    let at = h
        .step
        .map(|s| format!("step {}", s + 1))
        .unwrap_or_else(|| "question".into());
    println!("{id}\t{at} ({})\t{}", h.field, h.excerpt);
}
