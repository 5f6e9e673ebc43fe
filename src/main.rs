//! The `thyme-studio` command: the GUI when given nothing, a subcommand for every headless job.
//!
//! Exit codes: 0 ok, 1 a user error (one-line message naming the file), 2 an internal error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

mod cli;
mod model_cli;
mod team_cli;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use thyme_studio::imagery::PixelBudget;
use thyme_studio::import::{ImportOptions, ImportReport};
use thyme_studio::store::{SqliteStore, Store, StoreError};

#[derive(Parser)]
#[command(
    name = "thyme-studio",
    version,
    about = "Annotate small objects on huge images, inspect and run code-as-tool vision agents",
    long_about = "With no subcommand, opens the app on the built-in demo project (created on first run)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Open a project in the app.
    Open { file: PathBuf },
    /// Open the app's Inspect workspace on an agent trace or log.
    Inspect { path: PathBuf },
    /// Run the agent loop on an image and a question, printing each step, writing the trace.
    Run(Box<RunArgs>),
    /// On-device models: describe a model folder, check that it loads and writes, write a
    /// tiny random-weight one.
    Model {
        #[command(subcommand)]
        which: model_cli::ModelCmd,
    },
    /// Team mode on a PostgreSQL server: members, batches, sync, review, quality report, soak.
    Team {
        #[command(subcommand)]
        which: team_cli::TeamCmd,
    },
    /// Agent traces: convert logs to our format, show a run, list its flags.
    Trace {
        #[command(subcommand)]
        which: TraceCmd,
    },
    /// Create a new, empty project file.
    New { file: PathBuf },
    /// Add images (files or folders, searched recursively) to a project.
    Import {
        file: PathBuf,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Refuse images with more pixels than this (default: one gigapixel).
        #[arg(long, default_value_t = PixelBudget::DEFAULT.0)]
        max_pixels: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the project's annotations in a format trainers and evaluators read.
    Export {
        file: PathBuf,
        /// thyme-rl, coco, yolo, swift, llava or jsonl (lossless canonical).
        #[arg(long, value_parser = parse_format)]
        format: thyme_studio::exchange::Format,
        /// The output file (a folder for yolo).
        #[arg(long)]
        out: PathBuf,
        /// Image paths: absolute, relative (to the output's folder) or copy (into images/).
        #[arg(long, default_value = "absolute", value_parser = parse_paths)]
        paths: thyme_studio::exchange::PathMode,
        /// Multiple-choice solutions as letters (A, B, ...) or as the option's text.
        #[arg(long, default_value = "letters", value_parser = ["letters", "text"])]
        choices: String,
        /// Only images accepted in review, with their items that are not rejected (rejected
        /// items never go out, with or without this).
        #[arg(long)]
        accepted_only: bool,
        /// Only these question categories (repeatable).
        #[arg(long = "category")]
        categories: Vec<String>,
        /// Only items created by these annotators (repeatable).
        #[arg(long = "annotator")]
        annotators: Vec<String>,
        /// Only images under this folder.
        #[arg(long)]
        folder: Option<PathBuf>,
        /// Keep boxes over 5 % of the image (left out by default).
        #[arg(long)]
        allow_large_boxes: bool,
        /// A prompt profile (TOML) for thyme-rl; default: the built-in one.
        #[arg(long)]
        profile: Option<PathBuf>,
        /// Take the system prompt from this text file, byte for byte (e.g. a Thyme checkout's
        /// scripts/prompt.txt).
        #[arg(long)]
        system_prompt_file: Option<PathBuf>,
        /// Split by image into named parts, stratified by category: train=0.8,val=0.1,test=0.1.
        #[arg(long)]
        split: Option<String>,
        /// The seed of the split.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print the manifest the export would write, and write nothing.
        #[arg(long)]
        manifest_only: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read existing annotations (COCO, canonical JSONL, Thyme RL or SFT JSONL) into a project.
    ImportData {
        file: PathBuf,
        data: PathBuf,
        /// auto, coco, jsonl, thyme-rl or thyme-sft.
        #[arg(long, default_value = "auto")]
        format: String,
        /// Where images with relative paths are (default: the data file's folder).
        #[arg(long)]
        images: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// The Python sandbox: set up its runtime, check it, run code in it.
    Sandbox {
        #[command(subcommand)]
        which: SandboxCmd,
    },
    /// Internal: apply the sandbox confinement, then become the worker.
    #[command(hide = true)]
    SandboxLaunch {
        #[arg(long)]
        policy: String,
        #[arg(last = true, required = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// Verdicts: list them, or accept, reject or withdraw one on an image, box or question.
    Review(cli::review::ReviewCommand),
    /// Count images, boxes and questions of a project.
    Stats {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Measure against named peers (see the README's performance section).
    Bench {
        #[command(subcommand)]
        which: BenchCmd,
    },
    /// Write the demo project into a folder.
    Demo {
        dir: PathBuf,
        /// Divide every scene's size by this (1 = full size; smaller scenes are quicker to make).
        #[arg(long, default_value_t = 1, hide = true)]
        scale: u32,
    },
}

#[derive(Subcommand)]
enum TraceCmd {
    /// Read a log (ours, thyme-sft, thyme-rl, deepeyes, mini-o3, pyvision) and write our
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
}

#[derive(Subcommand)]
enum SandboxCmd {
    /// Make the private Python environment (pinned Pillow, NumPy, OpenCV) and self-test it.
    Setup {
        /// Install the pinned versions without hash checks (platforms the lock has no wheels for).
        #[arg(long)]
        unlocked: bool,
    },
    /// What is installed and which protections are active.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Run code files as the steps of one run (variables persist) and print the results as JSON.
    Run {
        #[arg(long)]
        image: PathBuf,
        #[arg(required = true)]
        code: Vec<PathBuf>,
        /// Where the run's folder goes (default: the app's data folder).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Seconds per step.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// The canvas: first pixels and full pyramid against libvips and Pillow, frame times,
    /// memory. Uses ../shared/fixtures when present and generated 100 MP and 400 MP JPEGs.
    Canvas {
        /// Where generated images are kept between runs.
        #[arg(long, default_value = "target/bench-images")]
        dir: PathBuf,
        /// Also the 400 MP image (about a minute more, 3 GB of RAM).
        #[arg(long)]
        large: bool,
        /// Frames of the pan-and-zoom session per image.
        #[arg(long, default_value_t = 300)]
        frames: usize,
        /// Extra images to measure.
        files: Vec<PathBuf>,
    },
    /// The Annotate workspace's frame time while a box handle is dragged on the 96 MP demo
    /// scene (the demo is made full size in DIR on the first run).
    AnnotateDrag {
        #[arg(long, default_value = "target/bench-annotate")]
        dir: PathBuf,
        #[arg(long, default_value_t = 240)]
        frames: usize,
    },
    /// Export speed: 10,000 images and 100,000 QA items in every format, against a Python
    /// script doing the same (needs target/test-python, made by scripts/test).
    Export {
        #[arg(long, default_value = "target/bench-export")]
        dir: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        images: usize,
        #[arg(long, default_value_t = 100_000)]
        questions: usize,
    },
    /// The on-device Qwen2.5-VL against transformers (CPU) on a random checkpoint with the 3B
    /// model's dimensions: prefill of an image + text, greedy decode speed.
    Model {
        #[arg(long, default_value = "target/bench-model/qwen2_5_vl_3b_random")]
        dir: PathBuf,
        /// A Python with torch and transformers (pip install torch transformers pillow).
        #[arg(long, default_value = "python3")]
        python: PathBuf,
        /// f32 or f16.
        #[arg(long, default_value = "f32")]
        dtype: String,
        #[arg(long, default_value_t = 1344)]
        side: u32,
        #[arg(long, default_value_t = 100)]
        text_tokens: usize,
        #[arg(long, default_value_t = 8)]
        decode: usize,
    },
    /// The agent loop's own time per step on a replayed 21-step run.
    Agent {
        #[arg(long, default_value = "target/bench-agent")]
        dir: PathBuf,
    },
    /// Sandbox step overhead: warm worker vs a fresh python per step vs exec in-process.
    Sandbox {
        #[arg(long, default_value = "target/bench-sandbox")]
        dir: PathBuf,
        #[arg(long, default_value_t = 50)]
        steps: usize,
    },
    /// Listing a 10,000-run JSONL (about 1 GB with base64 images) against a Python json.loads loop.
    Traces {
        #[arg(long, default_value = "target/bench-traces")]
        dir: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        runs: usize,
        /// The Python for the peer (default: python3).
        #[arg(long, default_value = "python3")]
        python: PathBuf,
    },
    /// One image, in this process (the canvas benchmark runs this as a child).
    #[command(hide = true)]
    CanvasOne {
        file: PathBuf,
        #[arg(long, default_value_t = 300)]
        frames: usize,
    },
}

/// A failure, sorted by whose it is.
enum Failure {
    User(anyhow::Error),
    Internal(anyhow::Error),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Sqlite(_) | StoreError::Io { .. } => Failure::Internal(e.into()),
            other => Failure::User(other.into()),
        }
    }
}

fn main() -> ExitCode {
    // Printing into a closed pipe (`thyme-studio trace show ... | head`) ends the process
    // quietly, as other command-line tools do, instead of panicking in println!.
    #[cfg(unix)]
    // SAFETY: restoring the default action of one signal before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::User(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
        Err(Failure::Internal(e)) => {
            eprintln!("internal error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        None => thyme_studio::app::run(None).map_err(Failure::Internal),
        Some(Cmd::Open { file }) => {
            // Check the file here so a bad path is a one-line error, not a window.
            SqliteStore::open(&file)?;
            thyme_studio::app::run(Some(file)).map_err(Failure::Internal)
        }
        Some(Cmd::Inspect { path }) => {
            thyme_studio::trace::readers::LogFormat::detect(&path)
                .map_err(|e| Failure::User(e.into()))?;
            let mut config = thyme_studio::app::AppConfig::for_user(None);
            config.trace = Some(std::path::absolute(&path).unwrap_or(path));
            thyme_studio::app::run_with(config).map_err(Failure::Internal)
        }
        Some(Cmd::Trace { which }) => trace_cmd(which),
        Some(Cmd::Model { which }) => model_cli::model(which).map_err(Failure::User),
        Some(Cmd::Team { which }) => team_cli::team(which).map_err(Failure::User),
        Some(Cmd::Run(args)) => run_agent(*args),
        Some(Cmd::Review(cmd)) => cmd.run().map_err(Failure::User),
        Some(Cmd::New { file }) => {
            SqliteStore::create(&file)?;
            println!("created {}", file.display());
            Ok(())
        }
        Some(Cmd::Import {
            file,
            paths,
            max_pixels,
            json,
        }) => import(file, paths, max_pixels, json),
        Some(Cmd::Export {
            file,
            format,
            out,
            paths,
            choices,
            accepted_only,
            categories,
            annotators,
            folder,
            allow_large_boxes,
            profile,
            system_prompt_file,
            split,
            seed,
            manifest_only,
            json,
        }) => {
            use thyme_studio::exchange::{ChoiceStyle, ExportOptions, Filter};
            let store = SqliteStore::open(&file)?;
            let mut options = ExportOptions::new(format);
            options.paths = paths;
            options.choices = if choices == "text" {
                ChoiceStyle::Text
            } else {
                ChoiceStyle::Letters
            };
            options.filter = Filter {
                accepted_only,
                categories: categories.into_iter().collect(),
                annotators: annotators.into_iter().collect(),
                folder: folder.map(|f| std::path::absolute(&f).unwrap_or(f)),
                allow_large_boxes,
            };
            if let Some(p) = profile {
                options.profile = thyme_studio::agent::PromptProfile::load(&p)
                    .map_err(|e| Failure::User(e.into()))?;
            }
            if let Some(f) = system_prompt_file {
                options.profile = options
                    .profile
                    .with_system_file(&f)
                    .map_err(|e| Failure::User(e.into()))?;
            }
            if let Some(spec) = split {
                options.split = Some(
                    thyme_studio::exchange::SplitSpec::parse(&spec, seed)
                        .map_err(|e| Failure::User(e.into()))?,
                );
            }
            if manifest_only {
                let manifest = thyme_studio::exchange::manifest_only(&store, &options, &out)
                    .map_err(exchange_failure)?;
                println!("{manifest}");
                return Ok(());
            }
            let bar = progress_bar();
            let started = Instant::now();
            let report = thyme_studio::exchange::export(
                &store,
                &options,
                &out,
                &mut |done, total| {
                    bar.set_length(total as u64);
                    bar.set_position(done as u64);
                },
                &AtomicBool::new(false),
            )
            .map_err(exchange_failure)?;
            bar.finish_and_clear();
            if json {
                print_json(&report)?;
            } else {
                println!("{}", report.summary());
                println!("in {:.2} s", started.elapsed().as_secs_f64());
            }
            Ok(())
        }
        Some(Cmd::ImportData {
            file,
            data,
            format,
            images,
            json,
        }) => {
            use thyme_studio::exchange::{ImportFormat, ImportSettings};
            let mut store = SqliteStore::open(&file)?;
            let format = match format.as_str() {
                "auto" => ImportFormat::detect(&data).map_err(exchange_failure)?,
                other => ImportFormat::parse(other).ok_or_else(|| {
                    Failure::User(anyhow::anyhow!(
                        "unknown format '{other}' (auto, coco, jsonl, thyme-rl, thyme-sft)"
                    ))
                })?,
            };
            let settings = ImportSettings {
                images_dir: images,
                ..ImportSettings::default()
            };
            let summary = thyme_studio::exchange::import_file(
                &mut store,
                &data,
                format,
                &settings,
                &AtomicBool::new(false),
            )
            .map_err(exchange_failure)?;
            if json {
                print_json(&summary)?;
            } else {
                println!("{}", summary.summary());
            }
            Ok(())
        }
        Some(Cmd::Sandbox { which }) => sandbox(which),
        Some(Cmd::SandboxLaunch { policy, command }) => sandbox_launch(&policy, &command),
        Some(Cmd::Stats { file, json }) => {
            let store = SqliteStore::open(&file)?;
            let stats = store.stats()?;
            if json {
                print_json(&stats)?;
            } else {
                println!("{}", file.display());
                println!("{stats}");
            }
            Ok(())
        }
        Some(Cmd::Bench { which }) => bench(which).map_err(Failure::Internal),
        Some(Cmd::Demo { dir, scale }) => {
            if scale == 0 {
                return Err(Failure::User(anyhow::anyhow!("--scale must be at least 1")));
            }
            let started = Instant::now();
            let project = thyme_studio::demo::write_demo(&dir, scale, &|step| {
                tracing::info!("{step}");
            })
            .map_err(|e| match e {
                thyme_studio::demo::DemoError::Store(s) => Failure::from(s),
                other => Failure::Internal(other.into()),
            })?;
            println!(
                "wrote {} in {:.1} s",
                project.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
    }
}

fn bench(which: BenchCmd) -> anyhow::Result<()> {
    use thyme_studio::bench::{canvas, images};
    match which {
        BenchCmd::AnnotateDrag { dir, frames } => {
            let r = thyme_studio::bench::annotate::run(&dir, frames)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        BenchCmd::Export {
            dir,
            images,
            questions,
        } => {
            let rows = thyme_studio::bench::exchange::run(&dir, images, questions)?;
            print!("{}", thyme_studio::bench::exchange::markdown(&rows));
        }
        BenchCmd::Model {
            dir,
            python,
            dtype,
            side,
            text_tokens,
            decode,
        } => {
            let dtype = match dtype.as_str() {
                "f32" => candle_core::DType::F32,
                "f16" => candle_core::DType::F16,
                d => anyhow::bail!("--dtype is f32 or f16, not '{d}'"),
            };
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let r = thyme_studio::bench::model::run(&thyme_studio::bench::model::ModelBench {
                dir,
                python,
                dtype,
                side,
                text_tokens,
                decode,
            })?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        BenchCmd::Agent { dir } => {
            let dirs = thyme_studio::paths::AppDirs::for_user();
            let mut cfg = thyme_studio::sandbox::SandboxConfig::for_app(&dirs)?;
            cfg.runs = std::path::absolute(dir.join("runs"))?;
            let r = thyme_studio::bench::agent::run(cfg, &dir)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        BenchCmd::Sandbox { dir, steps } => {
            let dirs = thyme_studio::paths::AppDirs::for_user();
            let mut cfg = thyme_studio::sandbox::SandboxConfig::for_app(&dirs)?;
            cfg.runs = std::path::absolute(dir.join("runs"))?;
            let rows = thyme_studio::bench::sandbox::run(cfg, &dir, steps)?;
            print!("{}", thyme_studio::bench::sandbox::markdown(&rows));
        }
        BenchCmd::Traces { dir, runs, python } => {
            let r = thyme_studio::bench::traces::run(&dir, runs, &python)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        BenchCmd::CanvasOne { file, frames } => {
            let one = canvas::measure_one(&file, frames)?;
            println!("{}", serde_json::to_string(&one)?);
        }
        BenchCmd::Canvas {
            dir,
            large,
            frames,
            files,
        } => {
            let mut all = Vec::new();
            let fixtures = PathBuf::from("../shared/fixtures");
            for name in [
                "safe-landing-5120x2880.jpg",
                "elephants-5640x3172.jpg",
                "patak-5120x2880.png",
                "pixels-4096x4096.webp",
            ] {
                let p = fixtures.join(name);
                if p.is_file() {
                    all.push(p);
                }
            }
            let hundred = images::generated_jpeg(&dir, 12000, 8400)?;
            all.push(hundred.clone());
            // The same photo as a camera would write it: with an EXIF thumbnail.
            all.push(images::with_exif_thumbnail(&hundred)?);
            if large {
                all.push(images::generated_jpeg(&dir, 24000, 16800)?);
            }
            all.extend(files);
            let exe = std::env::current_exe()?;
            let script =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/peers/pillow_pyramid.py");
            let rows = canvas::run(&exe, &all, &script, frames)?;
            println!("{}", canvas::markdown(&rows));
        }
    }
    Ok(())
}

fn import(file: PathBuf, paths: Vec<PathBuf>, max_pixels: u64, json: bool) -> Result<(), Failure> {
    let mut store = SqliteStore::open(&file)?;
    let options = ImportOptions {
        budget: PixelBudget(max_pixels),
        ..ImportOptions::default()
    };
    let bar = progress_bar();
    let started = Instant::now();
    let cancel = AtomicBool::new(false);
    let report = thyme_studio::import::import(&mut store, &paths, &options, &cancel, &mut |p| {
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        bar.set_message(p.current.display().to_string());
    })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if json {
        print_json(&report)?;
    } else {
        print_report(&report, seconds);
    }
    Ok(())
}

#[derive(clap::Args)]
struct RunArgs {
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
    /// The chat server for --policy http, e.g. http://127.0.0.1:8000/v1.
    #[arg(long)]
    base_url: Option<String>,
    /// The model name the server serves (--policy http).
    #[arg(long)]
    model: Option<String>,
    /// The model folder for --policy local (a Hugging Face Qwen2.5-VL / Thyme-RL download).
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// --policy local: auto, cpu, cuda[:N] or metal[:N].
    #[arg(long, default_value = "auto")]
    device: String,
    /// --policy local: auto, f32, f16 or bf16.
    #[arg(long, default_value = "auto")]
    dtype: String,
    /// A text file with the model's whole turn in Thyme's format (scripted).
    #[arg(long)]
    script: Option<PathBuf>,
    /// A recorded trace whose model text is played back.
    #[arg(long)]
    replay: Option<PathBuf>,
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
    a: &RunArgs,
    replays: &[thyme_studio::trace::Trace],
    local: Option<&SharedModel>,
    task: &thyme_studio::agent::Task,
) -> Result<Box<dyn thyme_studio::agent::Policy>, String> {
    use thyme_studio::agent::Replay;
    match (a.policy.as_str(), &a.script, &a.replay) {
        ("local", _, _) => {
            let m = local.ok_or("--policy local needs --model-dir DIR")?;
            let label = a
                .model_dir
                .as_ref()
                .and_then(|d| d.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into());
            Ok(Box::new(thyme_studio::agent::Local::new(m.clone(), label)))
        }
        ("replay", Some(script), _) => {
            let text = std::fs::read_to_string(script)
                .map_err(|e| format!("{}: {e}", script.display()))?;
            Ok(Box::new(Replay::new("scripted", text)))
        }
        ("replay", None, Some(file)) => {
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
            let t = t.ok_or_else(|| {
                format!(
                    "{}: no recorded run of this question on this image",
                    file.display()
                )
            })?;
            Ok(Box::new(Replay::from_trace(t)))
        }
        ("replay", None, None) => {
            Err("--policy replay needs --script FILE or --replay TRACE".into())
        }
        ("http", _, _) => {
            let mut settings = thyme_studio::agent::HttpSettings::from_env();
            if let Some(url) = &a.base_url {
                let s = settings.get_or_insert(thyme_studio::agent::HttpSettings {
                    base_url: url.clone(),
                    model: "Thyme-RL".into(),
                    api_key: std::env::var("THYME_STUDIO_API_KEY")
                        .or_else(|_| std::env::var("OPENAI_API_KEY"))
                        .ok(),
                    timeout: std::time::Duration::from_secs(600),
                });
                s.base_url = url.clone();
            }
            let mut settings = settings.ok_or(
                "--policy http needs --base-url URL (or THYME_STUDIO_BASE_URL)".to_owned(),
            )?;
            if let Some(m) = &a.model {
                settings.model = m.clone();
            }
            Ok(Box::new(thyme_studio::agent::Http::new(settings)))
        }
        (other, _, _) => Err(format!(
            "policy '{other}' is not known (replay, http or local)"
        )),
    }
}

type SharedModel = std::sync::Arc<std::sync::Mutex<thyme_studio::model::generate::LocalModel>>;

/// The on-device model for --policy local, loaded once for every run.
fn load_local_model(a: &RunArgs) -> Result<Option<SharedModel>, Failure> {
    use thyme_studio::model::load::{LoadEvent, load_local, parse_dtype};
    if a.policy != "local" {
        return Ok(None);
    }
    let dir = a.model_dir.as_ref().ok_or_else(|| {
        Failure::User(anyhow::anyhow!(
            "--policy local needs --model-dir DIR (a Qwen2.5-VL / Thyme-RL folder; `thyme-studio model tiny DIR` writes a random one)"
        ))
    })?;
    let device = model_cli::parse_device(&a.device).map_err(Failure::User)?;
    let dtype = parse_dtype(&a.dtype)
        .ok_or_else(|| Failure::User(anyhow::anyhow!("--dtype is auto, f32, f16 or bf16")))?;
    let model = load_local(dir, device, dtype, &mut |e| match e {
        LoadEvent::Device(m) => eprintln!("device: {m}"),
        LoadEvent::Note(n) => eprintln!("note: {n}"),
        LoadEvent::Estimate(b) => eprintln!("memory estimate: {}", model_cli::gib(b)),
        LoadEvent::Progress(p) if p.done == 0 => eprintln!("loading {}", p.stage),
        LoadEvent::Progress(_) => {}
    })
    .map_err(|e| Failure::User(e.into()))?;
    Ok(Some(std::sync::Arc::new(std::sync::Mutex::new(model))))
}

fn run_agent(a: RunArgs) -> Result<(), Failure> {
    use thyme_studio::agent::{Agent, Decoding, Event, Mode, PromptProfile, Settings, Task};
    let user = |m: String| Failure::User(anyhow::anyhow!(m));
    let replays = match (&a.policy[..], &a.script, &a.replay) {
        ("replay", None, Some(trace)) => {
            let loaded = load_traces(trace, "auto")?;
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
    if cfg.runtime.installed().is_none() {
        eprintln!("setting up the sandbox runtime (first use)...");
        cfg.runtime
            .setup(false, &mut |step| eprintln!("  {step}"))
            .map_err(|e| Failure::User(e.into()))?;
    }
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
    let mut agent = Agent::new(policy, sandbox, profile, settings, task);
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
    a: &RunArgs,
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

fn load_traces(
    path: &std::path::Path,
    format: &str,
) -> Result<thyme_studio::trace::readers::Loaded, Failure> {
    use thyme_studio::trace::readers::{LogFormat, read};
    let format = match format {
        "auto" => LogFormat::detect(path).map_err(|e| Failure::User(e.into()))?,
        f => LogFormat::parse(f).ok_or_else(|| {
            Failure::User(anyhow::anyhow!(
                "unknown format '{f}' (thyme-studio, thyme-sft, thyme-rl, deepeyes, mini-o3, pyvision)"
            ))
        })?,
    };
    let mut loaded = read(path, format).map_err(|e| Failure::User(e.into()))?;
    for t in &mut loaded.traces {
        thyme_studio::trace::provenance::fill(t);
    }
    for p in &loaded.problems {
        eprintln!("warning: {p}");
    }
    Ok(loaded)
}

fn trace_cmd(which: TraceCmd) -> Result<(), Failure> {
    use thyme_studio::trace::{Step, io, lint};
    match which {
        TraceCmd::Convert { input, out, format } => {
            let loaded = load_traces(&input, &format)?;
            let n = loaded.traces.len();
            if out.extension().is_some_and(|e| e == "jsonl") {
                io::write_jsonl(&loaded.traces, &out).map_err(|e| Failure::User(e.into()))?;
            } else if out.extension().is_some_and(|e| e == "zip") {
                if n != 1 {
                    return Err(Failure::User(anyhow::anyhow!(
                        "a .zip holds one run and {} has {n}; write OUT.jsonl or a folder",
                        input.display()
                    )));
                }
                io::write_zip(&loaded.traces[0], &out).map_err(|e| Failure::User(e.into()))?;
            } else if n == 1 {
                io::write_folder(&loaded.traces[0], &out).map_err(|e| Failure::User(e.into()))?;
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
        TraceCmd::Show {
            path,
            run,
            step,
            format,
        } => {
            let loaded = load_traces(&path, &format)?;
            let t = match &run {
                Some(id) => loaded.traces.iter().find(|t| &t.run.id == id),
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
            let show_step = |i: usize, s: &Step| match s {
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
                    if !stdout.is_empty() {
                        println!("  output: {}", stdout.trim_end());
                    }
                    if let Some(e) = error {
                        println!("  error: {e}");
                    }
                    for o in outputs {
                        let from = o
                            .source_rect
                            .map(|r| {
                                format!(
                                    " from [{:.0}, {:.0}, {:.0}, {:.0}]",
                                    r[0], r[1], r[2], r[3]
                                )
                            })
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
                            .unwrap_or("(embedded)".into());
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
            };
            match step {
                Some(n) => {
                    let s = t.steps.get(n.wrapping_sub(1)).ok_or_else(|| {
                        Failure::User(anyhow::anyhow!("the run has {} steps", t.steps.len()))
                    })?;
                    show_step(n - 1, s);
                }
                None => {
                    for (i, s) in t.steps.iter().enumerate() {
                        show_step(i, s);
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
        TraceCmd::Lint { path, json, format } => {
            let loaded = load_traces(&path, &format)?;
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
    }
}

fn sandbox(which: SandboxCmd) -> Result<(), Failure> {
    use thyme_studio::sandbox::{Sandbox, SandboxConfig, badge};
    let dirs = thyme_studio::paths::AppDirs::for_user();
    let mut cfg = SandboxConfig::for_app(&dirs).map_err(|e| Failure::Internal(e.into()))?;
    match which {
        SandboxCmd::Setup { unlocked } => {
            let bar = progress_bar();
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            let installed = cfg
                .runtime
                .setup(unlocked, &mut |step| bar.set_message(step.to_owned()))
                .map_err(|e| Failure::User(e.into()))?;
            bar.finish_and_clear();
            println!(
                "sandbox runtime ready in {}: Python {}, Pillow {}, NumPy {}, OpenCV {} ({}{})",
                cfg.runtime.dir.display(),
                installed.python,
                installed.pillow,
                installed.numpy,
                installed.opencv,
                installed.made_with,
                if installed.locked {
                    ", hash-checked"
                } else {
                    ", not hash-checked"
                }
            );
            Ok(())
        }
        SandboxCmd::Doctor { json } => {
            let installed = cfg.runtime.installed();
            let layers = match &installed {
                Some(_) => Sandbox::start(cfg.clone())
                    .map(|s| {
                        if let Some(h) = s.hello() {
                            tracing::info!(
                                "worker: Python {}, Pillow {}, NumPy {}, OpenCV {:?}, imports {:.0} ms",
                                h.python, h.pillow, h.numpy, h.opencv, h.import_ms
                            );
                        }
                        let l = s.layers();
                        let dir = s.run_dir().to_owned();
                        s.close();
                        let _ = std::fs::remove_dir_all(dir);
                        l
                    })
                    .map_err(|e| Failure::User(e.into()))?,
                None => Vec::new(),
            };
            if json {
                let v = serde_json::json!({
                    "runtime": cfg.runtime.dir,
                    "installed": installed,
                    "layers": layers,
                    "badge": badge(&layers),
                });
                print_json(&v)?;
                return Ok(());
            }
            println!("runtime: {}", cfg.runtime.dir.display());
            match installed {
                Some(i) => println!(
                    "  Python {} ({}), Pillow {}, NumPy {}, OpenCV {}; made with {}{}",
                    i.python,
                    i.base_prefix.display(),
                    i.pillow,
                    i.numpy,
                    i.opencv,
                    i.made_with,
                    if i.locked {
                        ", hash-checked"
                    } else {
                        ", not hash-checked"
                    }
                ),
                None => {
                    println!("  not set up: run `thyme-studio sandbox setup`");
                    return Ok(());
                }
            }
            println!("protection: {}", badge(&layers));
            for l in &layers {
                println!(
                    "  [{}] {}: {}",
                    if l.active { "on " } else { "off" },
                    l.name,
                    l.detail
                );
            }
            Ok(())
        }
        SandboxCmd::Run {
            image,
            code,
            out,
            timeout,
        } => {
            if let Some(out) = out {
                cfg.runs = std::path::absolute(&out).unwrap_or(out);
            }
            if !(timeout > 0.0 && timeout.is_finite()) {
                return Err(Failure::User(anyhow::anyhow!(
                    "--timeout must be a positive number of seconds"
                )));
            }
            cfg.step_timeout = std::time::Duration::from_secs_f64(timeout);
            if cfg.runtime.installed().is_none() {
                eprintln!("setting up the sandbox runtime (first use)...");
                cfg.runtime
                    .setup(false, &mut |step| eprintln!("  {step}"))
                    .map_err(|e| Failure::User(e.into()))?;
            }
            let image = std::path::absolute(&image).unwrap_or(image);
            let mut sandbox = Sandbox::start(cfg).map_err(|e| Failure::User(e.into()))?;
            let cancel = AtomicBool::new(false);
            let mut results = Vec::new();
            for file in &code {
                let text = std::fs::read_to_string(file)
                    .with_context(|| format!("{}", file.display()))
                    .map_err(Failure::User)?;
                results.push(sandbox.execute(&text, &image, &cancel));
            }
            let v = serde_json::json!({
                "run": sandbox.run_id,
                "run_dir": sandbox.run_dir(),
                "protection": badge(&sandbox.layers()),
                "steps": results,
            });
            sandbox.close();
            print_json(&v)?;
            Ok(())
        }
    }
}

/// The confining launcher: apply every layer, tell the worker which are on, become it.
fn sandbox_launch(policy: &str, command: &[std::ffi::OsString]) -> Result<(), Failure> {
    use std::os::unix::process::CommandExt;
    let policy: thyme_studio::sandbox::confine::Policy = serde_json::from_str(policy)
        .map_err(|e| Failure::Internal(anyhow::anyhow!("bad sandbox policy: {e}")))?;
    let layers = thyme_studio::sandbox::confine::apply(&policy);
    let Some((program, args)) = command.split_first() else {
        return Err(Failure::Internal(anyhow::anyhow!("nothing to launch")));
    };
    let err = std::process::Command::new(program)
        .args(args)
        .env(
            "THYME_SANDBOX_LAYERS",
            serde_json::to_string(&layers).unwrap_or_default(),
        )
        .exec();
    Err(Failure::Internal(anyhow::anyhow!(
        "cannot start {}: {err}",
        std::path::Path::new(program).display()
    )))
}

/// Print a value as pretty JSON on stdout.
fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .context("writing JSON")
        .map_err(Failure::Internal)?;
    println!("{text}");
    Ok(())
}

fn parse_format(s: &str) -> Result<thyme_studio::exchange::Format, String> {
    thyme_studio::exchange::Format::parse(s)
        .ok_or_else(|| "one of thyme-rl, coco, yolo, swift, llava, jsonl".to_owned())
}

fn parse_paths(s: &str) -> Result<thyme_studio::exchange::PathMode, String> {
    thyme_studio::exchange::PathMode::parse(s)
        .ok_or_else(|| "one of absolute, relative, copy".to_owned())
}

fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

fn exchange_failure(e: thyme_studio::exchange::ExchangeError) -> Failure {
    use thyme_studio::exchange::ExchangeError;
    match e {
        ExchangeError::Store(s) => Failure::from(s),
        other => Failure::User(other.into()),
    }
}

fn print_report(report: &ImportReport, seconds: f64) {
    for (path, reason, message) in report.skipped() {
        println!("skipped ({}): {message}", reason.as_str());
        tracing::debug!(path = %path.display(), "skipped");
    }
    for (path, warning) in report.warnings() {
        println!("warning: {}: {warning}", path.display());
    }
    let added = report.added();
    let skipped = report.skipped().count();
    let rate = if seconds > 0.0 {
        added as f64 / seconds
    } else {
        0.0
    };
    println!(
        "added {added}, skipped {skipped}, ignored {} other file(s), in {seconds:.2} s ({rate:.1} images/s)",
        report.ignored_other_files
    );
}
