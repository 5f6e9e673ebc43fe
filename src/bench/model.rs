//! `thyme-studio bench model`: the on-device Qwen2.5-VL against the reference implementation
//! (transformers on torch) on the same random-weight checkpoint with the 3B or 7B model's
//! dimensions, on the CPU or a GPU: prefill time of one image plus text, greedy decode speed,
//! and on CUDA the peak GPU memory of each side, in one run. On a GPU each side is warmed up
//! once (kernels loaded, cuBLAS planned) before the timed pass. `--quantized q8_0` adds our
//! run with the language model's projections in Q8_0 (the CPU's fastest route).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{DType, Device};
use serde_json::{Value, json};

use crate::model::device::{DevicePreference, choose};
use crate::model::folder::ModelFolder;
use crate::model::quantize::{QuantKind, quantize_folder};
use crate::model::qwen2_5_vl::{KvCache, Qwen25Vl, preprocess, rope};
use crate::model::sampling::argmax;

pub struct ModelBench {
    /// The checkpoint folder (written by the Python script when missing).
    pub dir: PathBuf,
    /// A Python with torch and transformers.
    pub python: PathBuf,
    pub dtype: DType,
    /// Where both sides run.
    pub device: DevicePreference,
    /// The published model whose dimensions the random checkpoint has: "3b" or "7b".
    pub size: String,
    /// Also run ours with both towers' projections quantized (written once beside the
    /// checkpoint): the CPU's fastest route, against the same transformers run.
    pub quantized: Option<QuantKind>,
    /// The image's side in pixels (1344: 2304 image tokens).
    pub side: u32,
    /// Text tokens around the image (vision markers included).
    pub text_tokens: usize,
    pub decode: usize,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/python/qwen2_5_vl_speed.py")
}

fn python(py: &Path, args: &[&str]) -> anyhow::Result<Value> {
    let out = Command::new(py)
        .arg(script())
        .args(args)
        .output()
        .with_context(|| format!("running {}", py.display()))?;
    if !out.status.success() {
        bail!(
            "the Python side failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rev()
                .take(8)
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or("");
    serde_json::from_str(last).with_context(|| format!("reading '{last}'"))
}

/// The GPU's used memory as the driver reports it (`nvidia-smi`, every 50 ms) while one side
/// runs: the same measure for a candle process and a torch one, whatever their allocators.
struct GpuMemory {
    child: Child,
    peak: Arc<Mutex<u64>>,
}

impl GpuMemory {
    fn used_mib(gpu: usize) -> Option<u64> {
        let out = Command::new("nvidia-smi")
            .args(["--query-gpu=memory.used", "--format=csv,noheader,nounits"])
            .arg(format!("--id={gpu}"))
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }

    fn watch(gpu: usize) -> Option<Self> {
        let mut child = Command::new("nvidia-smi")
            .args([
                "--query-gpu=memory.used",
                "--format=csv,noheader,nounits",
                "-lms",
                "50",
            ])
            .arg(format!("--id={gpu}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let out = child.stdout.take()?;
        let peak = Arc::new(Mutex::new(0u64));
        let seen = peak.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let (Ok(v), Ok(mut p)) = (line.trim().parse::<u64>(), seen.lock()) {
                    *p = (*p).max(v);
                }
            }
        });
        Some(Self { child, peak })
    }

    /// The highest reading, in MiB.
    fn stop(mut self) -> u64 {
        // One more sample period so the last allocation is seen.
        std::thread::sleep(std::time::Duration::from_millis(120));
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.peak.lock().map_or(0, |p| *p)
    }
}

/// Our side on one set of weights.
struct Ours {
    load_s: f64,
    prefill_s: f64,
    decode_tps: f64,
    /// The prompt: text, the image's tokens, text.
    ids: Vec<u32>,
    image_tokens: usize,
}

fn ours(
    b: &ModelBench,
    folder: &ModelFolder,
    device: &Device,
    img: &image::RgbImage,
) -> anyhow::Result<Ours> {
    let started = Instant::now();
    let model = Qwen25Vl::load(folder, device, b.dtype, &mut |_| {})?;
    let load_s = started.elapsed().as_secs_f64();
    let c = &model.config;
    let image_tokens = {
        let p = crate::model::qwen2_5_vl::smart_resize(
            b.side,
            b.side,
            model.processor.factor(),
            model.processor.min_pixels,
            model.processor.max_pixels,
        )?;
        (p.0 as usize / 28) * (p.1 as usize / 28)
    };
    let before = (b.text_tokens.saturating_sub(2)) / 2;
    let after = b.text_tokens.saturating_sub(2) - before;
    let ids: Vec<u32> = (0..before as u32)
        .map(|i| 1000 + i)
        .chain([c.vision_start_token_id])
        .chain(std::iter::repeat_n(c.image_token_id, image_tokens))
        .chain([c.vision_end_token_id])
        .chain((0..after as u32).map(|i| 2000 + i))
        .collect();
    // On a GPU one untimed pass first (kernels loaded, cuBLAS planned), then the timed one; the
    // CPU has nothing to warm that a 2304-token prefill would not dwarf.
    if !device.is_cpu() {
        prefill_and_decode(&model, img, &ids, before + 1, b.decode.min(4))?;
    }
    let (prefill_s, decode_s) = prefill_and_decode(&model, img, &ids, before + 1, b.decode)?;
    Ok(Ours {
        load_s,
        prefill_s,
        decode_tps: b.decode as f64 / decode_s,
        ids,
        image_tokens,
    })
}

/// One prefill of `ids` with the image and `decode` greedy tokens: (prefill s, decode s).
fn prefill_and_decode(
    model: &Qwen25Vl,
    img: &image::RgbImage,
    ids: &[u32],
    image_at: usize,
    decode: usize,
) -> anyhow::Result<(f64, f64)> {
    let c = &model.config;
    // The image is resized and cut into patches before the clock starts, as the Python side's
    // processor runs before its timed call.
    let patches = preprocess(img, &model.processor)?;
    let started = Instant::now();
    let emb = model.encode_image(&patches)?;
    let (pos, next) = rope::text_positions(ids, c.image_token_id, &[patches.grid], 2)?;
    let mut cache = KvCache::default();
    let h = model.forward(ids, &pos, &[(image_at, emb)], &mut cache)?;
    let last = h.narrow(0, ids.len() - 1, 1)?;
    let mut logits: Vec<f32> = model.logits(&last)?.squeeze(0)?.to_vec1()?;
    let prefill_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for i in 0..decode {
        let t = argmax(&logits);
        let p = next + i as i64;
        let h = model.forward(&[t], &[[p; 3]], &[], &mut cache)?;
        // Reading the row back waits for the device: each token is timed to its end.
        logits = model.logits(&h)?.squeeze(0)?.to_vec1()?;
    }
    Ok((prefill_s, started.elapsed().as_secs_f64()))
}

pub fn run(b: &ModelBench) -> anyhow::Result<Value> {
    let chosen = choose(b.device).map_err(anyhow::Error::msg)?;
    let device = chosen.device;
    let gpu = match b.device {
        DevicePreference::Cuda(i) => Some(i),
        DevicePreference::Auto if device.is_cuda() => Some(0),
        _ => None,
    };
    let dtype_name = match (b.dtype, device.is_cpu()) {
        (DType::F32, _) => "f32",
        (DType::F16, _) => "f16",
        (DType::BF16, false) => "bf16",
        (d, _) => bail!("{d:?} is not benchmarked on {}", chosen.message),
    };
    if !matches!(b.size.as_str(), "3b" | "7b") {
        bail!("--size is 3b or 7b, not '{}'", b.size);
    }
    if !b.dir.join("config.json").exists() {
        eprintln!(
            "writing the random {}-sized checkpoint to {} (once)",
            b.size,
            b.dir.display()
        );
        python(&b.python, &["make", &b.dir.to_string_lossy(), &b.size])?;
    }
    let image = b.dir.with_extension(format!("{}.png", b.side));
    if !image.exists() {
        image::RgbImage::from_fn(b.side, b.side, |x, y| {
            image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x / 7) ^ (y / 5)) as u8])
        })
        .save(&image)?;
    }
    let img = image::open(&image)?.into_rgb8();
    // Ours: the dense weights, then (when asked) the language model's projections quantized.
    let baseline_mib = gpu.and_then(GpuMemory::used_mib);
    let watch = gpu.and_then(GpuMemory::watch);
    let dense = ours(b, &ModelFolder::open(&b.dir)?.dense_only(), &device, &img)?;
    let ours_peak = watch.map(GpuMemory::stop);
    let quantized = match b.quantized {
        Some(kind) => {
            let file = kind.file_in(&b.dir);
            let mut folder = ModelFolder::open(&b.dir)?.dense_only();
            // Written once; again when it is of an older format (the vision tower in f16).
            let current = crate::model::quantize::file_format(&file).as_deref()
                == Some(crate::model::quantize::FORMAT);
            if !current {
                eprintln!(
                    "quantizing both towers' projections to {} (once)",
                    kind.name()
                );
                quantize_folder(&folder, kind, &file, &mut |_, _| {})?;
            }
            folder.quantized = Some(file);
            Some((kind, ours(b, &folder, &device, &img)?))
        }
        None => None,
    };
    let ids = dense.ids.clone();
    let grid_tokens = dense.image_tokens;
    // Theirs, after ours is out of memory.
    let job = b.dir.with_extension("job.json");
    std::fs::write(
        &job,
        serde_json::to_string(&json!({
            "dtype": dtype_name, "image": image, "ids": ids, "decode": b.decode,
            "device": if gpu.is_some() { "cuda" } else { "cpu" },
        }))?,
    )?;
    let watch = gpu.and_then(GpuMemory::watch);
    let mut theirs = python(
        &b.python,
        &["run", &b.dir.to_string_lossy(), &job.to_string_lossy()],
    )?;
    let theirs_peak = watch.map(GpuMemory::stop);
    let t_prefill = theirs["prefill_s"].as_f64().unwrap_or(f64::NAN);
    let t_decode = theirs["decode_tokens_per_s"].as_f64().unwrap_or(f64::NAN);
    let (load_s, prefill_s, decode_tps) = (dense.load_s, dense.prefill_s, dense.decode_tps);
    let quantized = quantized.map(|(kind, q)| {
        json!({
            "weights": format!(
                "both towers' projections {} (the rest of the vision tower {dtype_name})",
                kind.name()
            ),
            "load_s": q.load_s, "prefill_s": q.prefill_s, "decode_tokens_per_s": q.decode_tps,
            "prefill_speedup_vs_transformers": t_prefill / q.prefill_s,
            "decode_speedup_vs_transformers": q.decode_tps / t_decode,
        })
    });
    let mut memory = json!(null);
    if let (Some(base), Some(ours), Some(t)) = (baseline_mib, ours_peak, theirs_peak) {
        let (ours, t) = (ours.saturating_sub(base), t.saturating_sub(base));
        theirs["peak_gpu_mib"] = json!(t);
        memory = json!({
            "candle_peak_gpu_mib": ours,
            "transformers_peak_gpu_mib": t,
            "memory_ratio_vs_transformers": ours as f64 / t.max(1) as f64,
            "measured": "nvidia-smi memory.used every 50 ms, less the reading before loading",
        });
    }
    Ok(json!({
        "device": chosen.message,
        "size": b.size,
        "dtype": dtype_name,
        "image": format!("{0}x{0}", b.side),
        "image_tokens": grid_tokens,
        "text_tokens": ids.len() - grid_tokens,
        "candle": {"load_s": load_s, "prefill_s": prefill_s, "decode_tokens_per_s": decode_tps},
        "memory": memory,
        "candle_quantized": quantized,
        "transformers": theirs,
        "prefill_speedup_vs_transformers": t_prefill / prefill_s,
        "decode_speedup_vs_transformers": decode_tps / t_decode,
    }))
}
