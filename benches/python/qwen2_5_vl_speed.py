"""The transformers side of `thyme-studio bench model`.

make DIR: a random-weight Qwen2.5-VL with the 3B model's dimensions (speed does not depend on
the weight values), saved in float16 as a Hugging Face folder that both sides load.

run DIR JOB.json: prefill time of the job's image + token ids and greedy decode speed with
the reference implementation on the CPU; prints one JSON line.

Needs torch and transformers from PyPI (`pip install torch transformers pillow`).
"""

import json
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor


def three_b() -> Qwen2_5_VLConfig:
    text = dict(
        vocab_size=151936,
        hidden_size=2048,
        intermediate_size=11008,
        num_hidden_layers=36,
        num_attention_heads=16,
        num_key_value_heads=2,
        rms_norm_eps=1e-6,
        max_position_embeddings=128000,
        tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [16, 24, 24]},
        hidden_act="silu",
        bos_token_id=151643,
        eos_token_id=151645,
    )
    vision = dict(
        depth=32,
        hidden_size=1280,
        intermediate_size=3420,
        num_heads=16,
        in_channels=3,
        out_hidden_size=2048,
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


def make(out: Path) -> None:
    torch.manual_seed(3)
    torch.set_default_dtype(torch.float16)
    model = Qwen2_5_VLForConditionalGeneration(three_b()).eval()
    model.save_pretrained(out, safe_serialization=True, max_shard_size="4GB")
    # Qwen2.5-VL's own limits (newer transformers default to a smaller max_pixels).
    Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056).save_pretrained(out)
    print(json.dumps({"parameters": sum(p.numel() for p in model.parameters())}))


def run(folder: Path, job_path: Path) -> None:
    job = json.loads(job_path.read_text())
    dtype = {"f32": torch.float32, "f16": torch.float16}[job["dtype"]]
    torch.set_num_threads(job.get("threads", torch.get_num_threads()))
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder, dtype=dtype, attn_implementation="sdpa").eval()
    img = Image.open(job["image"]).convert("RGB")
    pix = Qwen2VLImageProcessor.from_pretrained(folder)(images=[img], return_tensors="pt")
    ids = torch.tensor([job["ids"]], dtype=torch.long)
    image_token = model.config.image_token_id
    assert int((ids == image_token).sum()) == int(pix["image_grid_thw"].prod()) // 4
    mm = (ids == image_token).to(torch.int32)
    with torch.inference_mode():
        t0 = time.perf_counter()
        out = model(input_ids=ids, pixel_values=pix["pixel_values"].to(dtype), image_grid_thw=pix["image_grid_thw"],
                    mm_token_type_ids=mm, use_cache=True)
        prefill = time.perf_counter() - t0
        cache = out.past_key_values
        token = out.logits[:, -1:].argmax(-1)
        t0 = time.perf_counter()
        for _ in range(job["decode"]):
            out = model(input_ids=token, past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            token = out.logits[:, -1:].argmax(-1)
        decode = time.perf_counter() - t0
    print(json.dumps({"prefill_s": prefill, "decode_tokens_per_s": job["decode"] / decode,
                      "torch": torch.__version__, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(Path(sys.argv[2]))
    else:
        run(Path(sys.argv[2]), Path(sys.argv[3]))
