"""The transformers side of `thyme-studio bench model`.

make DIR SIZE: a random-weight Qwen2.5-VL with the 3B or 7B model's dimensions (speed does not
depend on the weight values), saved as a Hugging Face folder that both sides load: float16 for
the CPU benchmark, bfloat16 for the GPU one (made on the GPU when there is one: seconds, not
minutes).

run DIR JOB.json: prefill time of the job's image + token ids and greedy decode speed with the
reference implementation on the job's device (on a GPU after one untimed warm-up, kernels loaded
and cuBLAS planned, as candle's side does); prints one JSON line. On CUDA it also gives torch's own
peak allocation; the process's peak as the driver sees it is sampled by the caller.

Needs torch and transformers from PyPI (`pip install torch transformers pillow`).
"""

import inspect
import json
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}

# (hidden, intermediate, layers, heads, kv heads, vocab, tied) of the two published sizes.
SIZES = {
    "3b": (2048, 11008, 36, 16, 2, 151936, True),
    "7b": (3584, 18944, 28, 28, 4, 152064, False),
}


def config(size: str) -> Qwen2_5_VLConfig:
    hidden, inter, layers, heads, kv, vocab, tied = SIZES[size]
    rope = {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]}
    text = dict(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        rms_norm_eps=1e-6,
        max_position_embeddings=128000,
        tie_word_embeddings=tied,
        hidden_act="silu",
        bos_token_id=151643,
        eos_token_id=151645,
    )
    text["rope_parameters"] = rope  # transformers 5's name for the rotary settings
    vision = dict(
        depth=32,
        hidden_size=1280,
        intermediate_size=3420,
        num_heads=16,
        in_channels=3,
        out_hidden_size=hidden,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=112,
        fullatt_block_indexes=[7, 15, 23, 31],
        tokens_per_second=2,
        hidden_act="silu",
    )
    cfg = Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=151655,
                           video_token_id=151656, vision_start_token_id=151652,
                           vision_end_token_id=151653, **text)
    cfg._attn_implementation = "sdpa"
    return cfg


def make(out: Path, size: str) -> None:
    torch.manual_seed(3)
    gpu = torch.cuda.is_available()
    dtype = torch.bfloat16 if gpu else torch.float16
    torch.set_default_dtype(dtype)
    with torch.device("cuda" if gpu else "cpu"):
        model = Qwen2_5_VLForConditionalGeneration(config(size)).eval()
    model.save_pretrained(out, safe_serialization=True, max_shard_size="4GB")
    # Qwen2.5-VL's own limits (newer transformers default to a smaller max_pixels).
    Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056).save_pretrained(out)
    print(json.dumps({"parameters": sum(p.numel() for p in model.parameters()), "dtype": str(dtype)}))


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run(folder: Path, job_path: Path) -> None:
    job = json.loads(job_path.read_text())
    dtype = DTYPES[job["dtype"]]
    device = job.get("device", "cpu")
    torch.set_num_threads(job.get("threads", torch.get_num_threads()))
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
        folder, dtype=dtype, attn_implementation="sdpa", device_map=device).eval()
    img = Image.open(job["image"]).convert("RGB")
    pix = Qwen2VLImageProcessor.from_pretrained(folder)(images=[img], return_tensors="pt")
    ids = torch.tensor([job["ids"]], dtype=torch.long, device=device)
    image_token = model.config.image_token_id
    assert int((ids == image_token).sum()) == int(pix["image_grid_thw"].prod()) // 4
    extra = {}
    if "mm_token_type_ids" in inspect.signature(model.forward).parameters:
        extra["mm_token_type_ids"] = (ids == image_token).to(torch.int32)
    pixels = pix["pixel_values"].to(device=device, dtype=dtype)
    grid = pix["image_grid_thw"].to(device)

    def once(decode: int):
        if hasattr(model.model, "rope_deltas"):
            model.model.rope_deltas = None
        sync(device)
        t0 = time.perf_counter()
        out = model(input_ids=ids, pixel_values=pixels, image_grid_thw=grid, use_cache=True, **extra)
        token = out.logits[:, -1:].argmax(-1)
        sync(device)
        prefill = time.perf_counter() - t0
        cache = out.past_key_values
        t0 = time.perf_counter()
        for _ in range(decode):
            out = model(input_ids=token, past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            token = out.logits[:, -1:].argmax(-1)
        sync(device)
        return prefill, time.perf_counter() - t0

    with torch.inference_mode():
        if device == "cuda":
            once(min(job["decode"], 4))  # warm-up, untimed, as candle's side on a GPU
            torch.cuda.reset_peak_memory_stats()
        prefill, decode = once(job["decode"])
    result = {"prefill_s": prefill, "decode_tokens_per_s": job["decode"] / decode,
              "torch": torch.__version__, "transformers": __import__("transformers").__version__,
              "threads": torch.get_num_threads(), "device": device}
    if device == "cuda":
        result["torch_peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        result["torch_peak_reserved_mib"] = torch.cuda.max_memory_reserved() / 2**20
        result["gpu"] = torch.cuda.get_device_name()
        result["cuda"] = torch.version.cuda
    print(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "3b")
    else:
        run(Path(sys.argv[2]), Path(sys.argv[3]))
