//! The on-device Qwen2.5-VL: parity with the reference implementation (golden files from
//! tests/python/qwen2_5_vl_reference.py: a tiny random model built and run by Hugging Face
//! transformers), and the invariants of prefill, caching, windows and positions on tiny
//! random checkpoints written by the test.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor};
use thyme_studio::model::device::{self, DevicePreference};
use thyme_studio::model::folder::ModelFolder;
use thyme_studio::model::generate::{LocalModel, Request};
use thyme_studio::model::qwen2_5_vl::{KvCache, Qwen25Vl, preprocess, rope};
use thyme_studio::model::sampling::SamplingSettings;
use thyme_studio::model::tiny::{TinyOptions, write_tiny};
use thyme_studio::model::tokenizer::ChatTokenizer;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_tiny")
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

fn rel_err(a: &Tensor, b: &Tensor) -> f32 {
    let scale = b
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    max_abs(a, b) / scale.max(1e-12)
}

fn load(dir: &Path) -> Qwen25Vl {
    load_on(dir, &Device::Cpu, DType::F32)
}

fn load_on(dir: &Path, device: &Device, dtype: DType) -> Qwen25Vl {
    let folder = ModelFolder::open(dir).unwrap();
    Qwen25Vl::load(&folder, device, dtype, &mut |_| {}).unwrap()
}

/// Where the parity test runs: the CPU in f32, unless THYME_TEST_DEVICE (cuda, cuda:N, metal)
/// and THYME_TEST_DTYPE (f32, f16, bf16) say otherwise (scripts/gpu-check runs it on CUDA in
/// f32 and in bf16), with the relative-error bar for that dtype: f32 must agree with the
/// reference's f32 to 1e-5 (a rotary section off by one frequency gives 1.2e-4). bf16 keeps 8
/// significant bits (a rounding moves a value by up to 2^-9 = 0.2 %), and a logit here is the end
/// of about 30 rounded steps (weights, 4 vision blocks, the merger, 2 text layers, each norm,
/// product and sum), so errors near 1 % of the largest logit are bf16 itself: the bar is 4e-2
/// for bf16 and 1e-2 for f16 (3 more bits).
fn parity_target() -> (Device, DType, f32) {
    let device = match std::env::var("THYME_TEST_DEVICE") {
        Ok(name) => {
            let pref =
                DevicePreference::parse(&name).expect("THYME_TEST_DEVICE: cpu, cuda:N or metal");
            device::choose(pref).unwrap().device
        }
        Err(_) => Device::Cpu,
    };
    let (dtype, bar) = match std::env::var("THYME_TEST_DTYPE").as_deref() {
        Ok("bf16") => (DType::BF16, 4e-2),
        Ok("f16") => (DType::F16, 1e-2),
        _ => (DType::F32, 1e-5),
    };
    let (dtype, note) = device::working_dtype(dtype, &device);
    if let Some(note) = note {
        eprintln!("{note}");
    }
    let bar = if dtype == DType::F32 { 1e-5 } else { bar };
    (device, dtype, bar)
}

/// A tensor on the CPU in f32, for comparing.
fn host(t: &Tensor) -> Tensor {
    t.to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
}

#[test]
fn logits_match_the_reference_implementation() {
    let dir = fixture();
    let (dev, dtype, bar) = parity_target();
    eprintln!("parity on {dev:?} in {dtype:?} (relative-error bar {bar:e})");
    let model = load_on(&dir, &dev, dtype);
    let r =
        candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu).unwrap();
    let ids: Vec<u32> = r["input_ids"]
        .flatten_all()
        .unwrap()
        .to_vec1::<i64>()
        .unwrap()
        .into_iter()
        .map(|x| x as u32)
        .collect();
    let g: Vec<i64> = r["image_grid_thw"]
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let grid = [g[0] as usize, g[1] as usize, g[2] as usize];

    // Positions and the decoding offset.
    let (positions, next) =
        rope::text_positions(&ids, model.config.image_token_id, &[grid], 2).unwrap();
    let want: Vec<Vec<i64>> = r["position_ids"].squeeze(1).unwrap().to_vec2().unwrap();
    for (i, p) in positions.iter().enumerate() {
        assert_eq!(*p, [want[0][i], want[1][i], want[2][i]], "token {i}");
    }
    let delta: Vec<i64> = r["rope_deltas"].flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(next - ids.len() as i64, delta[0]);

    // The image processor against the reference's pixel values (both resize 205x150 to
    // 196x140 bicubically from 8-bit pixels; a level or two of rounding apart at most).
    let picture = image::open(dir.join("picture.png")).unwrap().into_rgb8();
    let patches = preprocess(&picture, &model.processor).unwrap();
    assert_eq!(patches.grid, grid);
    let ours = Tensor::from_vec(
        patches.values.clone(),
        (patches.rows(), patches.row_len),
        &Device::Cpu,
    )
    .unwrap();
    let pixels = &r["pixel_values"];
    // One 8-bit level is 1 / (255 * std) ~ 0.015 after normalisation.
    let level = 1.0 / (255.0 * 0.2613);
    let diff = max_abs(&ours, pixels);
    assert!(diff <= 3.0 * level, "pixel values differ by {diff}");
    let mean = (&ours - pixels)
        .unwrap()
        .abs()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(mean < 0.1 * level, "mean pixel difference {mean}");

    // The vision tower on the reference's own pixel values.
    let on_device = pixels.to_device(&dev).unwrap().to_dtype(dtype).unwrap();
    let embeds = model.vision.forward(&on_device, &[grid]).unwrap();
    let e = rel_err(&host(&embeds), &r["image_embeds"]);
    eprintln!("image embeddings: relative error {e:e}");
    assert!(e < bar, "image embeddings: relative error {e}");

    // The whole model.
    let start = ids
        .iter()
        .position(|&t| t == model.config.image_token_id)
        .unwrap();
    let mut cache = KvCache::default();
    let hidden = model
        .forward(&ids, &positions, &[(start, embeds.clone())], &mut cache)
        .unwrap();
    let logits = host(&model.logits(&hidden).unwrap());
    let want = r["logits"].squeeze(0).unwrap();
    let e = rel_err(&logits, &want);
    eprintln!("logits: relative error {e:e}");
    // The issue asks for 1e-4; f32 here lands near 5e-7, and a mis-split rotary section
    // already moves it to 1.2e-4, so the f32 bar is 1e-5.
    assert!(e < bar, "logits: relative error {e}");

    // Chunked prefill (text, then the image and some text, then the rest) and token-by-token
    // decoding of the tail give the same logits as one pass.
    let n_img = embeds.dim(0).unwrap();
    let cuts = [0, start, start + n_img + 2, ids.len() - 3, ids.len()];
    let mut cache = KvCache::default();
    let mut rows = Vec::new();
    for w in cuts.windows(2) {
        let (a, b) = (w[0], w[1]);
        let imgs = if (a..b).contains(&start) {
            vec![(start - a, embeds.clone())]
        } else {
            vec![]
        };
        if b - a == 3 {
            // The last three one token at a time.
            for i in a..b {
                let h = model
                    .forward(&ids[i..=i], &positions[i..=i], &[], &mut cache)
                    .unwrap();
                rows.push(host(&model.logits(&h).unwrap()));
            }
        } else {
            let h = model
                .forward(&ids[a..b], &positions[a..b], &imgs, &mut cache)
                .unwrap();
            rows.push(host(&model.logits(&h).unwrap()));
        }
    }
    let stitched = Tensor::cat(&rows, 0).unwrap();
    // f32: the same sums in another order (1e-4 absolute); bf16/f16: the dtype's own bar.
    if dtype == DType::F32 {
        let d = max_abs(&stitched, &logits);
        assert!(d < 1e-4, "chunked and token-by-token vs one pass: {d}");
    } else {
        let e = rel_err(&stitched, &logits);
        eprintln!("chunked and token-by-token vs one pass: relative {e:e}");
        assert!(
            e < bar,
            "chunked and token-by-token vs one pass: relative {e}"
        );
    }
}

fn tiny(dir: &Path, o: &TinyOptions) -> Qwen25Vl {
    write_tiny(dir, o).unwrap();
    load(dir)
}

#[test]
fn window_attention_equals_full_attention_when_one_window_covers_the_image() {
    let dir = tempfile::tempdir().unwrap();
    // 112 px windows: a 56x56 image (2x2 merged units) is one window.
    let mut model = tiny(
        dir.path(),
        &TinyOptions {
            window_size: 112,
            ..TinyOptions::default()
        },
    );
    let img = image::RgbImage::from_fn(56, 56, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 4) as u8, 99])
    });
    let p = preprocess(&img, &model.processor).unwrap();
    assert_eq!(p.grid, [1, 4, 4]);
    assert_eq!(p.tokens(2), 4, "image tokens are the grid over 4");
    let windowed = model.encode_image(&p).unwrap();
    assert_eq!(windowed.dims(), &[4, 64]);
    model.vision.all_full = true;
    let full = model.encode_image(&p).unwrap();
    assert!(max_abs(&windowed, &full) < 1e-5);

    // With 56 px windows on a larger image the windows matter (they are not a no-op).
    let other = tempfile::tempdir().unwrap();
    let mut model = tiny(other.path(), &TinyOptions::default());
    let big = image::RgbImage::from_fn(112, 84, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 3) as u8, (x ^ y) as u8])
    });
    let p = preprocess(&big, &model.processor).unwrap();
    model.vision.all_full = true;
    let full = model.encode_image(&p).unwrap();
    model.vision.all_full = false;
    let windowed = model.encode_image(&p).unwrap();
    assert!(max_abs(&windowed, &full) > 1e-4);
}

#[test]
fn chunked_vision_attention_equals_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = tiny(dir.path(), &TinyOptions::default());
    let img = image::RgbImage::from_fn(140, 112, |x, y| {
        image::Rgb([(x * 2) as u8, (y * 2) as u8, 40])
    });
    let p = preprocess(&img, &model.processor).unwrap();
    let one = model.encode_image(&p).unwrap();
    // A budget of a few hundred scores: many small chunks.
    model.vision.score_budget = 300;
    let chunked = model.encode_image(&p).unwrap();
    assert!(max_abs(&one, &chunked) < 1e-5);
}

fn local(dir: &Path) -> LocalModel {
    let folder = ModelFolder::open(dir).unwrap();
    let model = Qwen25Vl::load(&folder, &Device::Cpu, DType::F32, &mut |_| {}).unwrap();
    LocalModel::new(model, ChatTokenizer::load(&folder).unwrap())
}

#[test]
fn the_chat_template_and_tokenizer_give_one_vision_block_per_image() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny(dir.path(), &TinyOptions::default()).unwrap();
    let m = local(dir.path());
    let prompt = m
        .tokenizer
        .render("Be brief.", "<image>\nWhat is here?")
        .unwrap();
    assert_eq!(
        prompt,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>\nWhat is here?<|im_end|>\n<|im_start|>assistant\n"
    );
    let img = dir.path().join("a.png");
    image::RgbImage::new(100, 150).save(&img).unwrap();
    let (ids, spans) = m.tokenize(&prompt, std::slice::from_ref(&img)).unwrap();
    // 100 wide, 150 high -> 112x140 -> 10x8 patches -> 20 tokens.
    assert_eq!(spans, vec![(spans[0].0, 20, [1, 10, 8])]);
    assert_eq!(
        ids.iter()
            .filter(|&&t| t == m.model.config.image_token_id)
            .count(),
        20
    );
    assert_eq!(
        m.tokenizer
            .decode(&m.tokenizer.encode("héllo <code>").unwrap())
            .unwrap(),
        "héllo <code>"
    );
    // Text only: the positions are plain counting.
    let text_ids = m.tokenizer.encode("no images here").unwrap();
    let (pos, _) = rope::text_positions(&text_ids, 261, &[], 2).unwrap();
    assert!(pos.iter().enumerate().all(|(i, p)| *p == [i as i64; 3]));
    assert!(
        m.tokenize(&prompt, &[]).is_err(),
        "an image pad without an image is refused"
    );
}

#[test]
fn continuing_a_turn_prefills_only_the_new_part_and_matches_a_fresh_run() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny(dir.path(), &TinyOptions::default()).unwrap();
    let original = dir.path().join("photo.png");
    image::RgbImage::from_fn(160, 120, |x, y| image::Rgb([x as u8, y as u8, 128]))
        .save(&original)
        .unwrap();
    let crop = dir.path().join("crop.png");
    image::RgbImage::from_fn(60, 60, |x, y| image::Rgb([200, x as u8 * 3, y as u8 * 3]))
        .save(&crop)
        .unwrap();
    let stops = vec!["</code>".to_owned(), "</answer>".to_owned()];
    let greedy = SamplingSettings::default();
    let cancel = AtomicBool::new(false);

    let mut m = local(dir.path());
    let head = m.tokenizer.render("sys", "<image>\nQuestion?").unwrap();
    let first = m
        .generate(
            &Request {
                prompt: &head,
                images: std::slice::from_ref(&original),
                stops: &stops,
                max_tokens: 6,
                sampling: greedy.clone(),
            },
            &mut |_| {},
            &cancel,
        )
        .unwrap();
    assert_eq!(first.reused, 0);
    assert_eq!(first.tokens, 6);
    assert_eq!(first.stop.as_deref(), Some("length"));
    // The sandbox answered with an image: the turn continues.
    let turn = format!(
        "{head}<code>x</code><sandbox_output><|vision_start|><|image_pad|><|vision_end|></sandbox_output>"
    );
    let images = vec![original.clone(), crop.clone()];
    let mut streamed = String::new();
    let cont = m
        .generate(
            &Request {
                prompt: &turn,
                images: &images,
                stops: &stops,
                max_tokens: 5,
                sampling: greedy.clone(),
            },
            &mut |t| streamed.push_str(t),
            &cancel,
        )
        .unwrap();
    let head_tokens = m
        .tokenize(&head, std::slice::from_ref(&original))
        .unwrap()
        .0
        .len();
    assert!(
        cont.reused >= head_tokens,
        "the first prompt came from the cache ({} < {head_tokens})",
        cont.reused
    );
    let total = m.tokenize(&turn, &images).unwrap().0.len();
    assert_eq!(cont.reused + cont.prefilled, total);
    assert_eq!(
        streamed, cont.text,
        "the text streamed is the text returned"
    );

    // A fresh model on the whole turn writes the same text (greedy).
    let mut fresh = local(dir.path());
    let again = fresh
        .generate(
            &Request {
                prompt: &turn,
                images: &images,
                stops: &stops,
                max_tokens: 5,
                sampling: greedy,
            },
            &mut |_| {},
            &cancel,
        )
        .unwrap();
    assert_eq!(again.reused, 0);
    assert_eq!(again.text, cont.text);

    // Seeded sampling repeats; cancellation stops with an error, not a panic.
    let hot = SamplingSettings {
        temperature: 1.0,
        top_p: 0.9,
        top_k: 40,
        seed: 5,
        ..SamplingSettings::default()
    };
    let req = Request {
        prompt: &head,
        images: std::slice::from_ref(&original),
        stops: &stops,
        max_tokens: 8,
        sampling: hot,
    };
    let a = fresh.generate(&req, &mut |_| {}, &cancel).unwrap();
    fresh.reset();
    let b = fresh.generate(&req, &mut |_| {}, &cancel).unwrap();
    assert_eq!(a.text, b.text);
    let stop_now = AtomicBool::new(true);
    assert!(matches!(
        fresh.generate(&req, &mut |_| {}, &stop_now),
        Err(thyme_studio::model::ModelError::Cancelled)
    ));
}

#[test]
fn the_local_policy_drives_the_agent_loop() {
    use thyme_studio::agent::{Policy, Request as PolicyRequest};
    let dir = tempfile::tempdir().unwrap();
    write_tiny(dir.path(), &TinyOptions::default()).unwrap();
    let img = dir.path().join("p.png");
    image::RgbImage::from_fn(90, 70, |x, y| image::Rgb([x as u8, y as u8, 0]))
        .save(&img)
        .unwrap();
    let model = Arc::new(Mutex::new(local(dir.path())));
    let mut policy = thyme_studio::agent::Local::new(model.clone(), "tiny random");
    assert!(policy.name().contains("tiny random"));
    let request = PolicyRequest {
        system: "sys".into(),
        user: "<image>\nWhat?".into(),
        images: vec![img],
        assistant: String::new(),
        stop: vec!["</code>".into(), "</answer>".into()],
        max_tokens: 4,
        temperature: 0.0,
        seed: None,
    };
    let seg = policy
        .generate(&request, &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(seg.tokens, Some(4));
    let cached = model.lock().unwrap().cached_tokens();
    assert!(cached > 0);
    // The difficulty check's next try at the same item keeps the cached prompt and image;
    // a new run (Local::new) starts empty.
    let mut again = thyme_studio::agent::Local::sharing_cache(model.clone(), "tiny random");
    assert_eq!(model.lock().unwrap().cached_tokens(), cached);
    let seeded = PolicyRequest {
        seed: Some(5),
        temperature: 1.0,
        ..request.clone()
    };
    again
        .generate(&seeded, &mut |_| {}, &AtomicBool::new(false))
        .unwrap();
    drop(thyme_studio::agent::Local::new(
        model.clone(),
        "tiny random",
    ));
    assert_eq!(model.lock().unwrap().cached_tokens(), 0);
    // A broken image is an error the loop can report.
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"not a png").unwrap();
    let e = policy
        .generate(
            &PolicyRequest {
                images: vec![bad],
                ..request
            },
            &mut |_| {},
            &AtomicBool::new(false),
        )
        .unwrap_err();
    assert!(e.to_string().contains("bad.png"), "{e}");
}

#[test]
fn a_broken_folder_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let e = ModelFolder::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("config.json"), "{e}");
    write_tiny(dir.path(), &TinyOptions::default()).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), b"garbage").unwrap();
    let folder = ModelFolder::open(dir.path()).unwrap();
    assert!(Qwen25Vl::load(&folder, &Device::Cpu, DType::F32, &mut |_| {}).is_err());
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        r#"{"weight_map": {"a": "model-00001-of-00002.safetensors"}}"#,
    )
    .unwrap();
    let e = ModelFolder::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("missing"), "{e}");
}

/// Rewrite `file` as the first format wrote it: the vision tower's projections in f16 at
/// their own width, the format key `qwen2_5_vl-v1`.
fn first_format_copy(file: &std::path::Path) -> std::path::PathBuf {
    use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
    let mut f = std::fs::File::open(file).unwrap();
    let content = gguf_file::Content::read(&mut f).unwrap();
    let mut tensors = Vec::new();
    let mut names: Vec<String> = content.tensor_infos.keys().cloned().collect();
    names.sort();
    for name in names {
        let q = content.tensor(&mut f, &name, &Device::Cpu).unwrap();
        let q = if name.starts_with("visual.") && q.dtype() != GgmlDType::F16 {
            let mut t = q.dequantize(&Device::Cpu).unwrap();
            if name.ends_with("mlp.down_proj.weight") {
                t = t.narrow(1, 0, 48).unwrap();
            }
            QTensor::quantize(&t, GgmlDType::F16).unwrap()
        } else {
            q
        };
        tensors.push((name, q));
    }
    drop(f);
    let format = gguf_file::Value::String("qwen2_5_vl-v1".into());
    let kind = gguf_file::Value::String("q8_0".into());
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, q)| (n.as_str(), q)).collect();
    let mut out = std::fs::File::create(file).unwrap();
    gguf_file::write(
        &mut out,
        &[
            (thyme_studio::model::quantize::FORMAT_KEY, &format),
            ("thyme_studio.quantization", &kind),
        ],
        &refs,
    )
    .unwrap();
    file.to_owned()
}

#[test]
fn quantized_weights_load_and_stay_close_to_the_dense_model() {
    use thyme_studio::model::quantize::{QuantKind, quantize_folder};
    let dir = tempfile::tempdir().unwrap();
    write_tiny(dir.path(), &TinyOptions::default()).unwrap();
    let folder = ModelFolder::open(dir.path()).unwrap();
    assert!(folder.quantized.is_none());
    let dense = Qwen25Vl::load(&folder, &Device::Cpu, DType::F32, &mut |_| {}).unwrap();

    // Q4K needs rows of 256: the tiny model's 32- to 128-wide rows take Q8_0, and say so.
    let q4 = QuantKind::Q4K.file_in(dir.path());
    let report = quantize_folder(&folder, QuantKind::Q4K, &q4, &mut |_, _| {}).unwrap();
    assert_eq!(
        report.quantized,
        2 * 7 + 1 + 3 * 5 + 2,
        "7 projections a text layer, the output head, 5 a vision block, the merger's 2"
    );
    assert_eq!(report.fell_back.len(), report.quantized);
    std::fs::remove_file(&q4).unwrap();

    // Q8_0: only the vision MLP's down projections (48 inputs) need zero columns (to 64;
    // large matrices get more, see `q8_padding`).
    let q8 = QuantKind::Q8_0.file_in(dir.path());
    let report = quantize_folder(&folder, QuantKind::Q8_0, &q8, &mut |_, _| {}).unwrap();
    assert_eq!(
        report.fell_back,
        (0..3)
            .map(|i| format!(
                "visual.blocks.{i}.mlp.down_proj.weight (16 zero columns and 0 zero rows added)"
            ))
            .collect::<Vec<_>>()
    );
    let folder = ModelFolder::open(dir.path()).unwrap();
    assert_eq!(
        folder.quantized.as_deref(),
        Some(q8.as_path()),
        "picked up by loading"
    );
    let quant = Qwen25Vl::load(&folder, &Device::Cpu, DType::F32, &mut |_| {}).unwrap();

    let img = image::RgbImage::from_fn(84, 56, |x, y| image::Rgb([x as u8 * 3, y as u8 * 4, 77]));
    let p = preprocess(&img, &dense.processor).unwrap();
    let ids: Vec<u32> = [257u32, 10, 20, 259]
        .into_iter()
        .chain(std::iter::repeat_n(261, p.tokens(2)))
        .chain([260, 30, 40, 258])
        .collect();
    let (pos, _) = rope::text_positions(&ids, 261, &[p.grid], 2).unwrap();
    let run = |m: &Qwen25Vl| {
        let emb = m.encode_image(&p).unwrap();
        let h = m
            .forward(&ids, &pos, &[(4, emb)], &mut KvCache::default())
            .unwrap();
        m.logits(&h).unwrap()
    };
    let (a, b) = (run(&dense), run(&quant));
    let e = rel_err(&b, &a);
    assert!(e < 0.05, "Q8_0 logits: relative error {e}");
    assert!(e > 0.0, "the quantized weights were really used");

    // A file of the first format (the vision tower in f16) still loads, its vision dense.
    let v1 = first_format_copy(&q8);
    let folder = ModelFolder::open(dir.path()).unwrap();
    let old = Qwen25Vl::load(&folder, &Device::Cpu, DType::F32, &mut |_| {}).unwrap();
    let e1 = rel_err(&run(&old), &a);
    assert!(e1 < 0.05, "first-format logits: relative error {e1}");
    assert!(v1.exists());

    // Not one of ours: a clear error.
    std::fs::write(&q8, b"GGUF but not really").unwrap();
    let folder = ModelFolder::open(dir.path()).unwrap();
    let err = Qwen25Vl::load(&folder, &Device::Cpu, DType::F32, &mut |_| {})
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("thyme-studio-q8_0.gguf"), "{err}");
}
