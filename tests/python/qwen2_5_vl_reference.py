"""Golden files for the Qwen2.5-VL parity test (tests/model.rs).

Builds a tiny Qwen2_5_VLForConditionalGeneration with random weights from a config (the
reference implementation in Hugging Face transformers, run on the CPU in float32), saves it as
a Hugging Face folder (sharded safetensors with the index file), runs the reference image
processor on a test picture and the model on an image + text prompt, and writes what the Rust
test compares against: pixel_values, image_grid_thw, input_ids, the multimodal rotary position
ids and delta, the vision tower's output and the logits.

Run once by hand (it needs torch and transformers from PyPI; the test suite does not):

    python -m venv /tmp/ref && /tmp/ref/bin/pip install torch transformers safetensors pillow numpy
    /tmp/ref/bin/python tests/python/qwen2_5_vl_reference.py tests/fixtures/qwen2_5_vl_tiny

The outputs are small (well under a megabyte) and committed.
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
import transformers
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

# Small ids for the special tokens so the vocabulary stays tiny.
VOCAB = 320
IMAGE_PAD, VIDEO_PAD, VISION_START, VISION_END = 310, 311, 312, 313


def config() -> Qwen2_5_VLConfig:
    text = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        rms_norm_eps=1e-6,
        rope_theta=1_000_000.0,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
        # head_dim 16: 8 frequencies split temporal / height / width.
        rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [2, 3, 3]},
        bos_token_id=300,
        eos_token_id=301,
        hidden_act="silu",
        attention_dropout=0.0,
        use_sliding_window=False,
    )
    vision = dict(
        depth=4,
        hidden_size=32,
        intermediate_size=48,
        num_heads=2,
        in_channels=3,
        out_hidden_size=64,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        # 56 px windows: 2x2 merged units; the test image's 5x7 merged grid needs padding.
        window_size=56,
        fullatt_block_indexes=[2],
        tokens_per_second=2,
        hidden_act="silu",
    )
    cfg = Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=IMAGE_PAD,
        video_token_id=VIDEO_PAD,
        vision_start_token_id=VISION_START,
        vision_end_token_id=VISION_END,
        **text,
    )
    cfg._attn_implementation = "eager"
    return cfg


def picture() -> Image.Image:
    """A 205x150 picture with edges and gradients (not a multiple of 28 on either side)."""
    y, x = np.mgrid[0:150, 0:205]
    r = (x * 255 // 204).astype(np.uint8)
    g = (y * 255 // 149).astype(np.uint8)
    b = (((x // 9) + (y // 7)) % 2 * 200 + 30).astype(np.uint8)
    return Image.fromarray(np.stack([r, g, b], axis=-1), "RGB")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(20261126)
    cfg = config()
    model = Qwen2_5_VLForConditionalGeneration(cfg).to(torch.float32).eval()
    # Random init leaves some parameters at exactly 0 or 1 (norms, biases): spread them so a
    # weight the Rust side ignored or misnamed changes the logits.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1.0 + 0.1 * torch.randn_like(p) if "norm" in name or "ln_q" in name else 0.05 * torch.randn_like(p))
    model.save_pretrained(out, safe_serialization=True, max_shard_size="200KB")
    shards = sorted(p.name for p in out.glob("*.safetensors"))
    assert len(shards) > 1 and (out / "model.safetensors.index.json").exists(), shards

    img = picture()
    img.save(out / "picture.png")
    processor = Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056)
    processor.save_pretrained(out)
    pix = processor(images=[img], return_tensors="pt")
    pixel_values, grid = pix["pixel_values"], pix["image_grid_thw"]
    n_image = int(grid.prod()) // 4

    # Text ids around one image block, as the chat template would lay them out.
    before = [1, 7, 42, 99, 5, VISION_START]
    after = [VISION_END, 17, 250, 3, 64, 128, 9]
    ids = torch.tensor([before + [IMAGE_PAD] * n_image + after], dtype=torch.long)
    # Text 0, image 1: what tells the reference which tokens carry the multimodal positions.
    mm_types = (ids == IMAGE_PAD).to(torch.int32)
    with torch.no_grad():
        inner = model.model if hasattr(model.model, "visual") else model
        rotary = inner.language_model.rotary_emb
        assert list(rotary.mrope_section) == [2, 3, 3], rotary.mrope_section
        visual = inner.visual
        image_embeds = visual(pixel_values, grid_thw=grid)
        if not torch.is_tensor(image_embeds):
            image_embeds = image_embeds.pooler_output if hasattr(image_embeds, "pooler_output") else image_embeds[0]
        position_ids, deltas = inner.get_rope_index(
            ids, mm_types, image_grid_thw=grid, attention_mask=torch.ones_like(ids)
        )
        logits = model(
            input_ids=ids,
            pixel_values=pixel_values,
            image_grid_thw=grid,
            attention_mask=torch.ones_like(ids),
            mm_token_type_ids=mm_types,
        ).logits
        # The same with the positions given outright: the model did use the 3-D positions.
        again = model(
            input_ids=ids,
            pixel_values=pixel_values,
            image_grid_thw=grid,
            position_ids=position_ids,
        ).logits
        assert torch.allclose(logits, again, atol=1e-5)

    save_file(
        {
            "pixel_values": pixel_values.contiguous(),
            "image_grid_thw": grid.to(torch.int64).contiguous(),
            "input_ids": ids.contiguous(),
            "position_ids": position_ids.to(torch.int64).contiguous(),
            "rope_deltas": deltas.to(torch.int64).contiguous(),
            "image_embeds": image_embeds.contiguous(),
            "logits": logits.contiguous(),
        },
        out / "reference.safetensors",
    )
    (out / "reference.json").write_text(
        json.dumps(
            {
                "transformers": transformers.__version__,
                "torch": torch.__version__,
                "seed": 20261126,
                "image": "picture.png",
                "grid_thw": grid.tolist(),
                "image_tokens": n_image,
                "sequence": ids.shape[1],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}: {len(shards)} shards, {n_image} image tokens, logits {tuple(logits.shape)}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/qwen2_5_vl_tiny"))
