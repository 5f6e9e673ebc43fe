//! `thyme-studio run`: the agent loop on an image and a question (or every row of a batch
//! file), printing each step and writing the trace.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use thyme_studio::imagery::PixelBudget;

use super::Failure;
use super::trace::load_traces;

#[derive(clap::Args)]
pub struct RunCommand {
    #[arg(long, required_unless_present = "batch", conflicts_with = "batch")]
    image: Option<PathBuf>,
    #[arg(long, required_unless_present = "batch", conflicts_with = "batch")]
    question: Option<String>,
    #[arg(long, conflicts_with = "batch")]
    ground_truth: Option<String>,
    /// Run every row of a JSONL file (Thyme RL rows, our thyme-rl export, or
    /// {"image", "question", "answer"} lines); --out FILE.jsonl gets the traces, and the
    /// accuracy is printed at the end.
    #[arg(long)]
    batch: Option<PathBuf>,
    /// Runs in flight at once with --batch (default: 8 with --policy http, else 2).
    #[arg(long)]
    jobs: Option<usize>,
    /// replay: play back model text (--script FILE, or --replay TRACE) with real execution;
    /// http: an OpenAI-compatible server (--base-url or THYME_STUDIO_BASE_URL; the API key
    /// from THYME_STUDIO_API_KEY or OPENAI_API_KEY); local: the on-device model (--model-dir).
    #[arg(long, default_value = "replay")]
    policy: String,
    #[command(flatten)]
    source: super::args::ModelSource,
    /// A text file with the model's whole turn in Thyme's format (scripted).
    #[arg(long)]
    script: Option<PathBuf>,
    /// A recorded trace whose model text is played back.
    #[arg(long)]
    replay: Option<PathBuf>,
    /// With --replay: play the recorded run back up to this step (1-based, as `trace show`
    /// numbers them), then let --policy (http or local) write on. The recorded run is not
    /// changed; the new trace names it in run.forked_from.
    #[arg(long, requires = "replay")]
    fork_at: Option<usize>,
    /// With --fork-at: a file with your text for the model's turn at that step ("what if it
    /// had said this"), played as the model's (the new trace marks it edited_by_a_person)
    /// before --policy writes on.
    #[arg(long, requires = "fork_at")]
    turn: Option<PathBuf>,
    /// reference (failed code rolled back) or training (errors fed back).
    #[arg(long, default_value = "reference")]
    mode: String,
    /// evaluation or grpo-ats.
    #[arg(long, default_value = "evaluation")]
    decoding: String,
    /// Where the trace goes: a folder, FILE.zip or FILE.jsonl.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A prompt profile (TOML).
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Take the system prompt from this text file, byte for byte (e.g. a Thyme checkout's
    /// scripts/prompt.txt).
    #[arg(long)]
    system_prompt_file: Option<PathBuf>,
    /// Where the run's folder (its steps' images) goes; default: the app's data folder.
    #[arg(long)]
    runs: Option<PathBuf>,
}

/// The model-text source named on the command line, for one task (`--replay` with a file of
/// many runs picks the run with the task's question and image file name).
fn make_policy(
    a: &RunCommand,
    replays: &[thyme_studio::trace::Trace],
    local: Option<&SharedModel>,
    task: &thyme_studio::agent::Task,
) -> Result<Box<dyn thyme_studio::agent::Policy>, String> {
    use thyme_studio::agent::{Fork, ForkFrom};
    let (Some(step), Some(file)) = (a.fork_at, &a.replay) else {
        return source_policy(a, replays, local, task);
    };
    if a.policy == "replay" {
        return Err(
            "--fork-at needs --policy http or local to write on after the played-back steps".into(),
        );
    }
    let trace = recorded(replays, task, file)?;
    if step == 0 || step > trace.steps.len() + 1 {
        return Err(format!(
            "--fork-at is a step of the recorded run, 1 to {}",
            trace.steps.len() + 1
        ));
    }
    let turn = match &a.turn {
        Some(p) => match std::fs::read_to_string(p) {
            Ok(t) if t.trim().is_empty() => {
                return Err(format!("{}: the turn is empty", p.display()));
            }
            Ok(t) => Some(t),
            Err(e) => return Err(format!("{}: {e}", p.display())),
        },
        None => None,
    };
    let from = ForkFrom {
        trace: trace.clone(),
        at_step: step - 1,
        turn,
    };
    Ok(Box::new(Fork::new(
        &from,
        source_policy(a, replays, local, task)?,
    )))
}

/// The recorded run for a task: the only one, or the one with the task's question and image
/// file name.
fn recorded<'t>(
    replays: &'t [thyme_studio::trace::Trace],
    task: &thyme_studio::agent::Task,
    file: &std::path::Path,
) -> Result<&'t thyme_studio::trace::Trace, String> {
    let name = task.image.file_name();
    let t = if replays.len() == 1 {
        replays.first()
    } else {
        replays.iter().find(|t| {
            t.run.question.trim() == task.question.trim()
                && t.run
                    .images
                    .first()
                    .and_then(|i| i.path.as_ref())
                    .and_then(|p| p.file_name())
                    == name
        })
    };
    t.ok_or_else(|| {
        format!(
            "{}: no recorded run of this question on this image",
            file.display()
        )
    })
}

/// The policy --policy names (replay, http, local).
fn source_policy(
    a: &RunCommand,
    replays: &[thyme_studio::trace::Trace],
    local: Option<&SharedModel>,
    task: &thyme_studio::agent::Task,
) -> Result<Box<dyn thyme_studio::agent::Policy>, String> {
    use thyme_studio::agent::Replay;
    match (a.policy.as_str(), &a.script, &a.replay) {
        ("local", _, _) => {
            let m = local.ok_or("--policy local needs --model-dir DIR")?;
            let label = a.source.local_label();
            Ok(Box::new(thyme_studio::agent::Local::new(m.clone(), label)))
        }
        ("replay", Some(script), _) => {
            let text = std::fs::read_to_string(script)
                .map_err(|e| format!("{}: {e}", script.display()))?;
            Ok(Box::new(Replay::new("scripted", text)))
        }
        ("replay", None, Some(file)) => {
            Ok(Box::new(Replay::from_trace(recorded(replays, task, file)?)))
        }
        ("replay", None, None) => {
            Err("--policy replay needs --script FILE or --replay TRACE".into())
        }
        ("http", _, _) => Ok(Box::new(thyme_studio::agent::Http::new(a.source.http()?))),
        (other, _, _) => Err(format!(
            "policy '{other}' is not known (replay, http or local)"
        )),
    }
}

pub(super) type SharedModel =
    std::sync::Arc<std::sync::Mutex<thyme_studio::model::generate::LocalModel>>;

/// The on-device model for --policy local, loaded once for every run.
fn load_local_model(a: &RunCommand) -> Result<Option<SharedModel>, Failure> {
    if a.policy != "local" {
        return Ok(None);
    }
    let s = &a.source;
    load_model(s.model_dir.as_deref(), &s.device, &s.dtype).map(Some)
}

/// Load the on-device model from `dir` (--model-dir) on `device` in `dtype`, saying on stderr
/// what it does.
pub(super) fn load_model(
    dir: Option<&std::path::Path>,
    device: &str,
    dtype: &str,
) -> Result<SharedModel, Failure> {
    use thyme_studio::model::load::{LoadEvent, load_local, parse_dtype};
    let dir = dir.ok_or_else(|| {
        Failure::User(anyhow::anyhow!(
            "--policy local needs --model-dir DIR (a Qwen2.5-VL / Thyme-RL folder; `thyme-studio model tiny DIR` writes a random one)"
        ))
    })?;
    let device = super::model::parse_device(device).map_err(Failure::User)?;
    let dtype = parse_dtype(dtype)
        .ok_or_else(|| Failure::User(anyhow::anyhow!("--dtype is auto, f32, f16 or bf16")))?;
    let model = load_local(dir, device, dtype, &mut |e| match e {
        LoadEvent::Device(m) => eprintln!("device: {m}"),
        LoadEvent::Note(n) => eprintln!("note: {n}"),
        LoadEvent::Estimate(b) => eprintln!("memory estimate: {}", super::model::gib(b)),
        LoadEvent::Progress(p) if p.done == 0 => eprintln!("loading {}", p.stage),
        LoadEvent::Progress(_) => {}
    })
    .map_err(|e| Failure::User(e.into()))?;
    Ok(std::sync::Arc::new(std::sync::Mutex::new(model)))
}

fn run_agent(a: RunCommand) -> Result<(), Failure> {
    use thyme_studio::agent::{Agent, Decoding, Event, Mode, PromptProfile, Settings, Task};
    let user = |m: String| Failure::User(anyhow::anyhow!(m));
    let replays = match (&a.policy[..], &a.script, &a.replay) {
        (_, _, Some(trace))
            if a.fork_at.is_some() || (a.policy == "replay" && a.script.is_none()) =>
        {
            let loaded = load_traces(trace, "auto", None)?;
            if loaded.traces.is_empty() {
                return Err(user(format!("{}: no run to replay", trace.display())));
            }
            loaded.traces
        }
        _ => Vec::new(),
    };
    let settings = Settings {
        mode: match a.mode.as_str() {
            "reference" => Mode::Reference,
            "training" => Mode::TrainingFaithful,
            m => return Err(user(format!("--mode is reference or training, not '{m}'"))),
        },
        decoding: match a.decoding.as_str() {
            "evaluation" => Decoding::Evaluation,
            "grpo-ats" => Decoding::GrpoAts,
            d => {
                return Err(user(format!(
                    "--decoding is evaluation or grpo-ats, not '{d}'"
                )));
            }
        },
        ..Settings::default()
    };
    let mut profile = match &a.profile {
        Some(p) => PromptProfile::load(p).map_err(|e| Failure::User(e.into()))?,
        None => PromptProfile::default(),
    };
    if let Some(f) = &a.system_prompt_file {
        profile = profile
            .with_system_file(f)
            .map_err(|e| Failure::User(e.into()))?;
    }
    let dirs = thyme_studio::paths::AppDirs::for_user();
    let mut cfg = thyme_studio::sandbox::SandboxConfig::for_app(&dirs)
        .map_err(|e| Failure::Internal(e.into()))?;
    if let Some(r) = &a.runs {
        cfg.runs = std::path::absolute(r).unwrap_or(r.clone());
    }
    super::sandbox::ensure_runtime(&cfg)?;
    let local = load_local_model(&a)?;
    if let Some(batch) = &a.batch {
        return run_batch(&a, batch, &replays, local.as_ref(), cfg, profile, settings);
    }
    let (Some(image), Some(question)) = (&a.image, &a.question) else {
        return Err(user("give --image and --question, or --batch FILE".into()));
    };
    let image = std::path::absolute(image).unwrap_or(image.clone());
    let probe = thyme_studio::imagery::probe_file(&image, PixelBudget::DEFAULT)
        .map_err(|e| Failure::User(e.into()))?;
    let task = Task {
        image,
        size: probe.size,
        question: question.clone(),
        ground_truth: a.ground_truth.clone(),
    };
    let policy = make_policy(&a, &replays, local.as_ref(), &task).map_err(user)?;
    let sandbox =
        thyme_studio::sandbox::Sandbox::start(cfg).map_err(|e| Failure::User(e.into()))?;
    let forked = match (a.fork_at, &a.replay) {
        (Some(step), Some(file)) => Some((
            recorded(&replays, &task, file)
                .map_err(user)?
                .run
                .id
                .clone(),
            step - 1,
        )),
        _ => None,
    };
    let mut agent = Agent::new(policy, sandbox, profile, settings, task);
    if let Some((run, step)) = &forked {
        agent.set_forked_from(run, *step);
    }
    let cancel = AtomicBool::new(false);
    loop {
        let event = agent.step(&mut |t| print!("{t}"), &cancel);
        match &event {
            Event::Generated { .. } => println!(),
            Event::Executed { ok, images } => println!(
                "  [sandbox: {}, {images} image(s)]",
                if *ok { "ok" } else { "error" }
            ),
            Event::RolledBack { retries } => println!("  [rolled back, retry {retries}]"),
            Event::Answered { answer } => println!("\n  [answer: {answer}]"),
            Event::Finished { why } => {
                println!("  [done: {why}]");
                break;
            }
        }
    }
    let trace = agent.close();
    println!("outcome: {}", trace.run.outcome.as_str());
    if let Some(out) = &a.out {
        write_trace_out(std::slice::from_ref(&trace), out)?;
        println!("trace written to {}", out.display());
    }
    Ok(())
}

/// A trace (or, for JSONL, several) where `--out` says.
fn write_trace_out(
    traces: &[thyme_studio::trace::Trace],
    out: &std::path::Path,
) -> Result<(), Failure> {
    use thyme_studio::trace::io;
    let written = match (out.extension().and_then(|e| e.to_str()), traces) {
        (Some("jsonl"), _) => io::write_jsonl(traces, out),
        (Some("zip"), [one]) => io::write_zip(one, out),
        (_, [one]) => io::write_folder(one, out),
        _ => {
            return Err(Failure::User(anyhow::anyhow!(
                "{}: several runs go to a .jsonl file",
                out.display()
            )));
        }
    };
    written.map_err(|e| Failure::User(e.into()))
}

fn run_batch(
    a: &RunCommand,
    batch: &std::path::Path,
    replays: &[thyme_studio::trace::Trace],
    local: Option<&SharedModel>,
    cfg: thyme_studio::sandbox::SandboxConfig,
    profile: thyme_studio::agent::PromptProfile,
    settings: thyme_studio::agent::Settings,
) -> Result<(), Failure> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use thyme_studio::agent::{BatchRunner, BatchSummary, read_tasks};
    let Some(out) = &a.out else {
        return Err(Failure::User(anyhow::anyhow!(
            "--batch needs --out FILE.jsonl for the traces"
        )));
    };
    if out.extension().is_none_or(|e| e != "jsonl") {
        return Err(Failure::User(anyhow::anyhow!(
            "{}: a batch's traces go to a .jsonl file",
            out.display()
        )));
    }
    let (tasks, bad) = read_tasks(batch)
        .with_context(|| batch.display().to_string())
        .map_err(Failure::User)?;
    for b in &bad {
        eprintln!("warning: {}: {b} (left out)", batch.display());
    }
    if tasks.is_empty() {
        return Err(Failure::User(anyhow::anyhow!(
            "{}: no task to run",
            batch.display()
        )));
    }
    let jobs = a
        .jobs
        .unwrap_or(match a.policy.as_str() {
            "http" => 8,
            // One model on one device: runs take turns on it.
            "local" => 1,
            _ => 2,
        })
        .max(1);
    println!(
        "{} task(s) from {}, {jobs} in flight",
        tasks.len(),
        batch.display()
    );
    let policy = |t: &thyme_studio::agent::BatchTask| make_policy(a, replays, local, &t.task);
    let runner = BatchRunner {
        sandbox: cfg,
        profile,
        settings,
        jobs,
        policy: &policy,
    };
    let done = AtomicUsize::new(0);
    let total = tasks.len();
    let cancel = AtomicBool::new(false);
    let started = std::time::Instant::now();
    let results = runner.run(&tasks, &cancel, &|r| {
        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
        match &r.trace {
            Ok(t) => println!(
                "[{n}/{total}] line {}: {} ({} step(s))",
                r.line,
                t.run.outcome.as_str(),
                t.steps.len()
            ),
            Err(e) => println!("[{n}/{total}] line {}: failed: {e}", r.line),
        }
    });
    let traces: Vec<_> = results
        .iter()
        .filter_map(|r| r.trace.clone().ok())
        .collect();
    write_trace_out(&traces, out)?;
    let s = BatchSummary::of(&results);
    println!(
        "{} run(s) in {:.1} s: {} correct, {} wrong, {} answered without ground truth, {} without an answer, {} failed",
        s.tasks,
        started.elapsed().as_secs_f64(),
        s.correct,
        s.wrong,
        s.answered,
        s.no_answer,
        s.failed
    );
    match s.accuracy() {
        Some(acc) => println!(
            "accuracy: {:.1} % ({} of {} with a ground truth)",
            acc * 100.0,
            s.correct,
            s.with_truth + s.failed
        ),
        None => println!("accuracy: - (no task has a ground truth)"),
    }
    println!("traces written to {}", out.display());
    Ok(())
}

impl RunCommand {
    pub fn run(self) -> Result<(), Failure> {
        run_agent(self)
    }
}
