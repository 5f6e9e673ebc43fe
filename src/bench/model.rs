//! `thyme-studio bench model`: the on-device Qwen2.5-VL against the reference implementation
//! (transformers on torch, CPU) on the same random-weight checkpoint with the 3B model's
//! dimensions: prefill time of one image plus text, and greedy decode speed, in one run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use candle_core::{DType, Device};
use serde_json::{Value, json};

use crate::model::folder::ModelFolder;
use crate::model::qwen2_5_vl::{KvCache, Qwen25Vl, preprocess, rope};
use crate::model::sampling::argmax;

pub struct ModelBench {
    /// The checkpoint folder (written by the Python script when missing).
    pub dir: PathBuf,
    /// A Python with torch and transformers.
    pub python: PathBuf,
    pub dtype: DType,
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
                .take(5)
                .collect::<Vec<_>>()
                .join(" / ")
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or("");
    serde_json::from_str(last).with_context(|| format!("reading '{last}'"))
}

pub fn run(b: &ModelBench) -> anyhow::Result<Value> {
    if !b.dir.join("config.json").exists() {
        eprintln!(
            "writing the random 3B-sized checkpoint to {} (once)",
            b.dir.display()
        );
        python(&b.python, &["make", &b.dir.to_string_lossy()])?;
    }
    let image = b.dir.with_extension(format!("{}.png", b.side));
    if !image.exists() {
        image::RgbImage::from_fn(b.side, b.side, |x, y| {
            image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x / 7) ^ (y / 5)) as u8])
        })
        .save(&image)?;
    }
    let dtype_name = match b.dtype {
        DType::F32 => "f32",
        DType::F16 => "f16",
        d => bail!("{d:?} is not benchmarked on the CPU"),
    };
    // Ours.
    let folder = ModelFolder::open(&b.dir)?.dense_only();
    let started = Instant::now();
    let model = Qwen25Vl::load(&folder, &Device::Cpu, b.dtype, &mut |_| {})?;
    let load_s = started.elapsed().as_secs_f64();
    let c = &model.config;
    let img = image::open(&image)?.into_rgb8();
    let grid_tokens = {
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
        .chain(std::iter::repeat_n(c.image_token_id, grid_tokens))
        .chain([c.vision_end_token_id])
        .chain((0..after as u32).map(|i| 2000 + i))
        .collect();
    let started = Instant::now();
    let patches = preprocess(&img, &model.processor)?;
    let emb = model.encode_image(&patches)?;
    let (pos, next) = rope::text_positions(&ids, c.image_token_id, &[patches.grid], 2)?;
    let mut cache = KvCache::default();
    let h = model.forward(&ids, &pos, &[(before + 1, emb)], &mut cache)?;
    let last = h.narrow(0, ids.len() - 1, 1)?;
    let mut logits: Vec<f32> = model.logits(&last)?.squeeze(0)?.to_vec1()?;
    let prefill_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for i in 0..b.decode {
        let t = argmax(&logits);
        let p = next + i as i64;
        let h = model.forward(&[t], &[[p; 3]], &[], &mut cache)?;
        logits = model.logits(&h)?.squeeze(0)?.to_vec1()?;
    }
    let decode_tps = b.decode as f64 / started.elapsed().as_secs_f64();
    drop(cache);
    drop(model);
    // Theirs, after ours is out of memory.
    let job = b.dir.with_extension("job.json");
    std::fs::write(
        &job,
        serde_json::to_string(&json!({
            "dtype": dtype_name, "image": image, "ids": ids, "decode": b.decode
        }))?,
    )?;
    let theirs = python(
        &b.python,
        &["run", &b.dir.to_string_lossy(), &job.to_string_lossy()],
    )?;
    let t_prefill = theirs["prefill_s"].as_f64().unwrap_or(f64::NAN);
    let t_decode = theirs["decode_tokens_per_s"].as_f64().unwrap_or(f64::NAN);
    Ok(json!({
        "dtype": dtype_name,
        "image": format!("{0}x{0}", b.side),
        "image_tokens": grid_tokens,
        "text_tokens": ids.len() - grid_tokens,
        "candle": {"load_s": load_s, "prefill_s": prefill_s, "decode_tokens_per_s": decode_tps},
        "transformers": theirs,
        "prefill_speedup_vs_transformers": t_prefill / prefill_s,
        "decode_speedup_vs_transformers": decode_tps / t_decode,
    }))
}
