//! `thyme-studio bench ...`: measurements against named peers, each printed as JSON or a
//! markdown table (the README's performance section quotes them).

use anyhow::Context;
use std::path::PathBuf;

use super::Failure;

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// The crop audit: generated Thyme SFT rows (one crop each, 2000-4000 px originals shared
    /// by groups of rows) audited with N warm sandbox workers against a Python script that
    /// re-runs each row's code with exec and compares with Pillow (same run), then again from
    /// the cache.
    Audit {
        #[arg(long, default_value = "target/bench-audit")]
        dir: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        rows: usize,
        #[arg(long, default_value_t = 40)]
        originals: usize,
        /// Sandbox workers (default: the CPU count).
        #[arg(long)]
        jobs: Option<usize>,
    },
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
    /// First pixels of JPEGs: our eighth-scale DC decoder (all cores and one), jpeg-decoder's
    /// scaled decode and Pillow's draft, best of three each. Uses the canvas benchmark's
    /// generated 100 MP JPEG, a progressive copy of it (made with Pillow) and the fixtures'
    /// JPEGs, plus FILES.
    FirstPixels {
        #[arg(long, default_value = "target/bench-images")]
        dir: PathBuf,
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
    /// The on-device Qwen2.5-VL against transformers on a random checkpoint with the 3B or 7B
    /// model's dimensions, on the CPU or a GPU: prefill of an image + text, greedy decode speed,
    /// peak GPU memory.
    Model {
        /// The checkpoint folder [default: target/bench-model/qwen2_5_vl_<size>_random].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// A Python with torch and transformers (pip install torch transformers pillow).
        #[arg(long, default_value = "python3")]
        python: PathBuf,
        /// f32 or f16; bf16 on a GPU.
        #[arg(long, default_value = "f32")]
        dtype: String,
        /// cpu, cuda[:N], metal or auto.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// The published model's dimensions: 3b or 7b.
        #[arg(long, default_value = "3b")]
        size: String,
        /// Also run ours with both towers' projections quantized (q8_0 or q4k; written once).
        #[arg(long)]
        quantized: Option<String>,
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
    /// The difficulty check: ITEMS x K x 2 arms against a loopback server answering after
    /// LATENCY_MS, with JOBS tries in flight and one at a time (on the first SEQUENTIAL
    /// items): speed-up, our time per try beyond the server's, peak memory.
    Curate(CurateArgs),
    /// Assisted boxing: the weight-free snap's mean IoU on the demo scenes (every object's
    /// true box grown by 10-30 % and shifted, then snapped) and its time per box, at full
    /// size and smaller.
    Assist {
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Also SAM's encoder and decoder times, ours against the segment-anything package in
        /// this Python (random weights; `pip install segment-anything` there first).
        #[arg(long)]
        sam_python: Option<String>,
        #[arg(long, default_value = "target/bench-assist")]
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
    /// `trace stats` over the same 10,000-run JSONL: reading every run whole, then computing
    /// the statistics, timed apart.
    TraceStats {
        #[arg(long, default_value = "target/bench-traces")]
        dir: PathBuf,
        #[arg(long, default_value_t = 10_000)]
        runs: usize,
    },
    /// What TLS costs a member's sync: one annotator's file synced over a plain and over a
    /// verified TLS connection to the same throwaway server, alternating, p50 and p95.
    TeamTls {
        #[arg(long, default_value_t = 200)]
        rounds: usize,
    },
    /// Paging through a folder of generated 20-50 MP JPEGs with a bounded tile cache: time to
    /// first pixels per image, cache size against the budget.
    Paging(PagingArgs),
    /// One image, in this process (the canvas benchmark runs this as a child).
    #[command(hide = true)]
    CanvasOne {
        file: PathBuf,
        #[arg(long, default_value_t = 300)]
        frames: usize,
    },
}

fn bench(which: BenchCommand) -> anyhow::Result<()> {
    use thyme_studio::bench::canvas;
    match which {
        BenchCommand::AnnotateDrag { dir, frames } => {
            let r = thyme_studio::bench::annotate::run(&dir, frames)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        BenchCommand::Export {
            dir,
            images,
            questions,
        } => {
            let rows = thyme_studio::bench::exchange::run(&dir, images, questions)?;
            print!("{}", thyme_studio::bench::exchange::markdown(&rows));
        }
        BenchCommand::Model {
            dir,
            python,
            dtype,
            device,
            size,
            quantized,
            side,
            text_tokens,
            decode,
        } => {
            let quantized = match quantized {
                Some(q) => Some(
                    thyme_studio::model::quantize::QuantKind::parse(&q)
                        .with_context(|| format!("--quantized is q8_0 or q4k, not '{q}'"))?,
                ),
                None => None,
            };
            let dtype = match dtype.as_str() {
                "f32" => candle_core::DType::F32,
                "f16" => candle_core::DType::F16,
                "bf16" => candle_core::DType::BF16,
                d => anyhow::bail!("--dtype is f32, f16 or bf16, not '{d}'"),
            };
            let device = thyme_studio::model::device::DevicePreference::parse(&device)
                .with_context(|| {
                    format!("--device is cpu, cuda[:N], metal or auto, not '{device}'")
                })?;
            let dir = dir.unwrap_or_else(|| {
                PathBuf::from(format!("target/bench-model/qwen2_5_vl_{size}_random"))
            });
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let r = thyme_studio::bench::model::run(&thyme_studio::bench::model::ModelBench {
                dir,
                python,
                dtype,
                device,
                size,
                quantized,
                side,
                text_tokens,
                decode,
            })?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        BenchCommand::Agent { dir } => {
            let cfg = sandbox_for(&dir)?;
            let r = thyme_studio::bench::agent::run(cfg, &dir)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        BenchCommand::Curate(args) => curate(args)?,
        BenchCommand::Assist {
            seed,
            sam_python,
            dir,
        } => assist(seed, sam_python.as_deref(), &dir)?,
        BenchCommand::Audit {
            dir,
            rows,
            originals,
            jobs,
        } => {
            let cfg = sandbox_for(&dir)?;
            cfg.runtime.ensure(&mut |s| eprintln!("{s}"))?;
            let jobs = jobs.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
            });
            let r = thyme_studio::bench::audit::run(cfg, &dir, rows, originals, jobs)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        BenchCommand::Sandbox { dir, steps } => {
            let cfg = sandbox_for(&dir)?;
            let rows = thyme_studio::bench::sandbox::run(cfg, &dir, steps)?;
            print!("{}", thyme_studio::bench::sandbox::markdown(&rows));
        }
        BenchCommand::Paging(args) => paging(args)?,
        BenchCommand::TeamTls { rounds } => {
            let rows = thyme_studio::bench::team_tls::run(rounds)?;
            print!("{}", thyme_studio::bench::team_tls::markdown(&rows));
        }
        BenchCommand::Traces { dir, runs, python } => {
            let r = thyme_studio::bench::traces::run(&dir, runs, &python)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        BenchCommand::TraceStats { dir, runs } => {
            let r = thyme_studio::bench::trace_stats::run(&dir, runs)?;
            println!("{}", serde_json::to_string_pretty(&r)?);
        }
        BenchCommand::FirstPixels { dir, files } => first_pixels(&dir, files)?,
        BenchCommand::CanvasOne { file, frames } => {
            let one = canvas::measure_one(&file, frames)?;
            println!("{}", serde_json::to_string(&one)?);
        }
        BenchCommand::Canvas {
            dir,
            large,
            frames,
            files,
        } => canvas_table(&dir, large, frames, files)?,
    }
    Ok(())
}

/// The snap's and the weight-free click's quality on the demo scenes at three sizes, the input
/// events to box every object by drag, drag + S and click; with a Python, SAM against the
/// segment-anything package.
fn assist(seed: u64, sam_python: Option<&str>, dir: &std::path::Path) -> anyhow::Result<()> {
    for div in [1, 2, 4] {
        let q = thyme_studio::assist::quality::demo_snap_quality(div, seed);
        println!("snap at 1/{div}: {}", serde_json::to_string(&q)?);
        let c = thyme_studio::assist::quality::demo_click_quality(div, seed);
        println!("click at 1/{div}: {}", serde_json::to_string(&c)?);
    }
    if let Some(python) = sam_python {
        let (rows, peer) = thyme_studio::bench::assist::sam_rows(dir, python)?;
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
        match peer {
            Some(p) => println!("segment-anything: {}", serde_json::to_string(&p)?),
            None => println!("segment-anything: not run ({python} lacks it, or it failed)"),
        }
    }
    Ok(())
}

/// The app's sandbox, its runs kept under `dir/runs`.
fn sandbox_for(dir: &std::path::Path) -> anyhow::Result<thyme_studio::sandbox::SandboxConfig> {
    let dirs = thyme_studio::paths::AppDirs::for_user();
    let mut cfg = thyme_studio::sandbox::SandboxConfig::for_app(&dirs)?;
    cfg.runs = std::path::absolute(dir.join("runs"))?;
    Ok(cfg)
}

/// The difficulty check: ITEMS x K x 2 arms against a loopback server answering after
/// LATENCY_MS, with JOBS tries in flight and one at a time (on the first SEQUENTIAL items):
/// speed-up, our time per try beyond the server's, peak memory.
#[derive(clap::Args)]
pub struct CurateArgs {
    #[arg(long, default_value = "target/bench-curate")]
    dir: PathBuf,
    #[arg(long, default_value_t = 1000)]
    items: usize,
    #[arg(long, default_value_t = 4)]
    k: usize,
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    #[arg(long, default_value_t = 32)]
    jobs: usize,
    #[arg(long, default_value_t = 125)]
    sequential: usize,
}

fn curate(a: CurateArgs) -> anyhow::Result<()> {
    let r = thyme_studio::bench::curate::run(
        sandbox_for(&a.dir)?,
        &a.dir,
        a.items,
        a.k,
        std::time::Duration::from_millis(a.latency_ms),
        a.jobs,
        a.sequential,
    )?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    Ok(())
}

fn fixtures(names: &[&str]) -> Vec<PathBuf> {
    let folder = PathBuf::from("../shared/fixtures");
    names
        .iter()
        .map(|name| folder.join(name))
        .filter(|p| p.is_file())
        .collect()
}

/// `bench canvas`: the fixtures and generated photos, then the table.
fn canvas_table(
    dir: &std::path::Path,
    large: bool,
    frames: usize,
    files: Vec<PathBuf>,
) -> anyhow::Result<()> {
    use thyme_studio::bench::{canvas, images};
    let mut all = fixtures(&[
        "safe-landing-5120x2880.jpg",
        "elephants-5640x3172.jpg",
        "patak-5120x2880.png",
        "pixels-4096x4096.webp",
    ]);
    let hundred = images::generated_jpeg(dir, 12000, 8400)?;
    all.push(hundred.clone());
    // The same photo as a camera would write it: with an EXIF thumbnail.
    all.push(images::with_exif_thumbnail(&hundred)?);
    if large {
        all.push(images::generated_jpeg(dir, 24000, 16800)?);
    }
    all.extend(files);
    let exe = std::env::current_exe()?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/peers/pillow_pyramid.py");
    let rows = canvas::run(&exe, &all, &script, frames)?;
    println!("{}", canvas::markdown(&rows));
    Ok(())
}

/// `bench first-pixels`: the files, then the table.
fn first_pixels(dir: &std::path::Path, files: Vec<PathBuf>) -> anyhow::Result<()> {
    use thyme_studio::bench::{first_pixels, images};
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/peers/pillow_pyramid.py");
    let mut all = fixtures(&["safe-landing-5120x2880.jpg", "elephants-5640x3172.jpg"]);
    let hundred = images::generated_jpeg(dir, 12000, 8400)?;
    let progressive = dir.join("bench-12000x8400-progressive.jpg");
    if !progressive.is_file() {
        let made = std::process::Command::new("python3")
            .args(["-c", "import sys; from PIL import Image; Image.MAX_IMAGE_PIXELS = None; Image.open(sys.argv[1]).save(sys.argv[2], quality=90, progressive=True)"])
            .arg(&hundred)
            .arg(&progressive)
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("no progressive copy (python3 with Pillow is needed to make it)");
        }
    }
    all.push(hundred);
    if progressive.is_file() {
        all.push(progressive);
    }
    all.extend(files);
    let rows = first_pixels::run(&all, &script)?;
    println!("{}", first_pixels::markdown(&rows));
    Ok(())
}

impl BenchCommand {
    pub fn run(self) -> Result<(), Failure> {
        bench(self).map_err(Failure::Internal)
    }
}

/// What `bench paging` is asked for.
#[derive(clap::Args)]
pub struct PagingArgs {
    /// Where the images and the cache go (made when missing).
    dir: PathBuf,
    #[arg(long, default_value_t = 1000)]
    images: usize,
    /// The cache budget in MiB (default: a third of what the whole project's pyramids take).
    #[arg(long)]
    budget_mib: Option<u64>,
    /// How long to stay on each image after its pyramid is whole, in milliseconds.
    #[arg(long, default_value_t = 300)]
    dwell_ms: u64,
}

/// `bench paging`: write the images, then page through them with a bounded cache.
fn paging(args: PagingArgs) -> anyhow::Result<()> {
    use thyme_studio::bench::paging;
    let PagingArgs {
        dir,
        images,
        budget_mib,
        dwell_ms,
    } = args;
    let files = paging::make_images(&dir.join("images"), images)?;
    // The generated files are baseline JPEGs, whose full resolution the original serves: about
    // 0.9 MB per megapixel at most for the levels below it (lossless tiles; 0.64 measured).
    let mp: f64 = files
        .iter()
        .map(|(_, s)| s.width as f64 * s.height as f64 / 1e6)
        .sum();
    let budget = budget_mib.map_or((mp * 0.9e6 / 3.0) as u64, |m| m << 20);
    let cache = dir.join("cache");
    let _ = std::fs::remove_dir_all(&cache);
    let r = paging::run(
        &files,
        &cache,
        budget,
        std::time::Duration::from_millis(dwell_ms),
    )?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    Ok(())
}
