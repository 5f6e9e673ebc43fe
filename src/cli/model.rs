//! `thyme-studio model ...`: what a model folder holds, a check that it loads and writes, and
//! a tiny random-weight folder for trying the plumbing.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{Context as _, anyhow};
use thyme_studio::model::device::DevicePreference;
use thyme_studio::model::folder::ModelFolder;
use thyme_studio::model::load::{LoadEvent, load_local, parse_dtype, saved_dtype};
use thyme_studio::model::qwen2_5_vl::{Config, memory_estimate};

#[derive(clap::Subcommand)]
pub enum ModelCommand {
    /// Architecture, parameters, dtype, files and memory estimates of a model folder.
    Info {
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Load a model folder and write a few tokens about a picture.
    Check {
        dir: PathBuf,
        /// auto, cpu, cuda[:N] or metal[:N].
        #[arg(long, default_value = "auto")]
        device: String,
        /// auto (the saved dtype, converted where the device cannot), f32, f16 or bf16.
        #[arg(long, default_value = "auto")]
        dtype: String,
        /// The picture (default: a generated 448x336 test card).
        #[arg(long)]
        image: Option<PathBuf>,
        #[arg(long, default_value_t = 16)]
        tokens: usize,
    },
    /// Write the language model's weights quantized (Q4K or Q8_0) into one file beside the
    /// model, used from then on instead of the safetensors (a 7B fits in about 5 GB).
    Quantize {
        dir: PathBuf,
        /// q4k or q8_0.
        #[arg(long, default_value = "q4k")]
        to: String,
        /// The file (default: DIR/thyme-studio-<q>.gguf, which loading picks up).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Write a tiny Qwen2.5-VL with random weights (it loads and runs; its text is random).
    Tiny { dir: PathBuf },
}

pub fn parse_device(s: &str) -> anyhow::Result<DevicePreference> {
    DevicePreference::parse(s)
        .ok_or_else(|| anyhow!("--device is auto, cpu, cuda[:N] or metal[:N], not '{s}'"))
}

pub fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

impl ModelCommand {
    pub fn run(self) -> Result<(), super::Failure> {
        model(self).map_err(super::Failure::from)
    }
}

fn model(which: ModelCommand) -> anyhow::Result<()> {
    match which {
        ModelCommand::Info { dir, json } => info(&dir, json),
        ModelCommand::Check {
            dir,
            device,
            dtype,
            image,
            tokens,
        } => check(&dir, &device, &dtype, image.as_deref(), tokens),
        ModelCommand::Quantize { dir, to, out } => quantize(&dir, &to, out),
        ModelCommand::Tiny { dir } => {
            thyme_studio::model::tiny::write_tiny(&dir, &Default::default())?;
            println!(
                "wrote a tiny random-weight Qwen2.5-VL to {} (its text is random)",
                dir.display()
            );
            Ok(())
        }
    }
}

fn quantize(dir: &Path, to: &str, out: Option<PathBuf>) -> anyhow::Result<()> {
    use thyme_studio::model::quantize::{QuantKind, expected_bytes, quantize_folder};
    let kind = QuantKind::parse(to).ok_or_else(|| anyhow!("--to is q4k or q8_0, not '{to}'"))?;
    let folder = ModelFolder::open(dir)?.dense_only();
    let c = Config::from_json(&folder.config)?;
    let out = out.unwrap_or_else(|| kind.file_in(dir));
    eprintln!(
        "quantizing {} to {} (about {}; the projections are read one at a time)",
        dir.display(),
        kind.name(),
        gib(expected_bytes(&c, kind))
    );
    let bar = indicatif::ProgressBar::new(1);
    let started = Instant::now();
    let report = quantize_folder(&folder, kind, &out, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    println!(
        "wrote {} ({}) in {:.1} s: {} matrices quantized, {} tensors kept in f16",
        report.file.display(),
        gib(report.bytes),
        started.elapsed().as_secs_f64(),
        report.quantized,
        report.kept_f16
    );
    if !report.fell_back.is_empty() {
        println!(
            "{} matrices took Q8_0 instead (rows not a multiple of 256): {}",
            report.fell_back.len(),
            report
                .fell_back
                .iter()
                .take(4)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

fn info(dir: &Path, json: bool) -> anyhow::Result<()> {
    let folder = ModelFolder::open(dir)?;
    let c = Config::from_json(&folder.config)?;
    let saved = saved_dtype(&c);
    let params = c.parameters();
    let estimates: Vec<(String, u64)> = [
        ("f32", candle_core::DType::F32),
        ("f16/bf16", candle_core::DType::F16),
    ]
    .iter()
    .map(|(n, d)| ((*n).to_owned(), memory_estimate(&c, *d, 8192, 1280, None)))
    .collect();
    if json {
        let v = serde_json::json!({
            "architecture": c.architecture,
            "parameters": params,
            "saved_dtype": c.torch_dtype,
            "weight_files": folder.weights.len(),
            "weight_bytes": folder.weight_bytes(),
            "text": {"layers": c.text.num_hidden_layers, "hidden": c.text.hidden_size,
                     "heads": c.text.num_attention_heads, "kv_heads": c.text.num_key_value_heads,
                     "vocab": c.text.vocab_size, "mrope_section": c.text.mrope_section},
            "vision": {"blocks": c.vision.depth, "hidden": c.vision.hidden_size,
                       "heads": c.vision.num_heads, "window": c.vision.window_size,
                       "full_attention_blocks": c.vision.fullatt_block_indexes},
            "tokenizer": folder.tokenizer.is_some(),
            "chat_template": folder.chat_template.is_some(),
            "memory_estimate_bytes": estimates.iter().map(|(n, b)| (n.clone(), *b)).collect::<std::collections::BTreeMap<_, _>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("{}: {}", dir.display(), c.architecture);
    println!(
        "parameters: {:.2} B ({params}), saved as {} ({:?})",
        params as f64 / 1e9,
        c.torch_dtype,
        saved
    );
    println!(
        "weights: {} safetensors file(s){}",
        folder.weights.len(),
        match &folder.quantized {
            Some(q) => format!(
                "; quantized weights in use: {} ({})",
                q.display(),
                gib(folder.weight_bytes())
            ),
            None => format!(", {}", gib(folder.weight_bytes())),
        }
    );
    println!(
        "text: {} layers, hidden {}, {} heads ({} key/value), vocabulary {}, M-RoPE sections {:?}",
        c.text.num_hidden_layers,
        c.text.hidden_size,
        c.text.num_attention_heads,
        c.text.num_key_value_heads,
        c.text.vocab_size,
        c.text.mrope_section
    );
    println!(
        "vision: {} blocks, hidden {}, {} heads, {} px windows, full attention in {:?}",
        c.vision.depth,
        c.vision.hidden_size,
        c.vision.num_heads,
        c.vision.window_size,
        c.vision.fullatt_block_indexes
    );
    println!(
        "tokenizer: {}; chat template: {}",
        if folder.tokenizer.is_some() {
            "yes"
        } else {
            "MISSING"
        },
        if folder.chat_template.is_some() {
            "yes"
        } else {
            "MISSING"
        }
    );
    for (n, b) in estimates {
        println!(
            "memory estimate in {n} (8192-token context, one 1280-token image): {}",
            gib(b)
        );
    }
    Ok(())
}

fn check(
    dir: &Path,
    device: &str,
    dtype: &str,
    image: Option<&Path>,
    tokens: usize,
) -> anyhow::Result<()> {
    let dtype = parse_dtype(dtype).ok_or_else(|| anyhow!("--dtype is auto, f32, f16 or bf16"))?;
    let started = Instant::now();
    let mut model = load_local(dir, parse_device(device)?, dtype, &mut |e| match e {
        LoadEvent::Device(m) => eprintln!("device: {m}"),
        LoadEvent::Note(n) => eprintln!("note: {n}"),
        LoadEvent::Estimate(b) => eprintln!("memory estimate: {}", gib(b)),
        LoadEvent::Progress(p) if p.done == 0 || p.stage == "ready" => {
            eprintln!("loading {} ({} parts)", p.stage, p.total)
        }
        LoadEvent::Progress(_) => {}
    })?;
    let load_s = started.elapsed().as_secs_f64();
    let tmp = tempfile::tempdir()?;
    let picture = match image {
        Some(p) => p.to_owned(),
        None => {
            let p = tmp.path().join("card.png");
            image::RgbImage::from_fn(448, 336, |x, y| {
                image::Rgb([
                    (x / 2) as u8,
                    (y * 3 / 4) as u8,
                    if (x / 56 + y / 56) % 2 == 0 { 230 } else { 30 },
                ])
            })
            .save(&p)
            .context("writing the test card")?;
            p
        }
    };
    let prompt = model.tokenizer.render(
        "You are a helpful assistant.",
        "<image>\nDescribe this image in one sentence.",
    )?;
    let mut out = std::io::stdout();
    let g = model.generate(
        &thyme_studio::model::generate::Request {
            prompt: &prompt,
            images: std::slice::from_ref(&picture),
            stops: &[],
            max_tokens: tokens,
            sampling: Default::default(),
        },
        &mut |t| {
            use std::io::Write;
            print!("{t}");
            let _ = out.flush();
        },
        &AtomicBool::new(false),
    )?;
    println!();
    println!(
        "loaded in {load_s:.1} s; prefill {} tokens in {:.0} ms ({:.1} tokens/s); {} tokens decoded in {:.0} ms ({:.2} tokens/s); ended by {}",
        g.prefilled,
        g.prefill_ms,
        g.prefilled as f64 / (g.prefill_ms / 1000.0).max(1e-9),
        g.tokens,
        g.decode_ms,
        g.tokens as f64 / (g.decode_ms / 1000.0).max(1e-9),
        g.stop.as_deref().unwrap_or("-")
    );
    Ok(())
}
