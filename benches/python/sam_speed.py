"""The segment-anything package's side of `thyme-studio bench assist`: SAM ViT-B with random
weights (the registry's own initialisation, the same shapes as ours) on the CPU, timing the
image encoder on one 1024x1024 window and the prompt encoder plus mask decoder for one click.
Prints one JSON line."""

import json
import sys
import time

import torch
from segment_anything import sam_model_registry


def best(f, n):
    out, t = None, float("inf")
    for _ in range(n):
        s = time.perf_counter()
        out = f()
        t = min(t, time.perf_counter() - s)
    return out, t * 1000.0


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    sam = sam_model_registry["vit_b"]().eval()
    x = torch.rand(3, 1024, 1024) * 255.0
    with torch.no_grad():
        emb, enc_ms = best(lambda: sam.image_encoder(sam.preprocess(x[None])), 3)
        pts = torch.tensor([[[512.0, 512.0]]])
        lbl = torch.tensor([[1]])
        pe = sam.prompt_encoder.get_dense_pe()

        def click():
            sparse, dense = sam.prompt_encoder(points=(pts, lbl), boxes=None, masks=None)
            return sam.mask_decoder(
                image_embeddings=emb,
                image_pe=pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=False,
            )

        _, dec_ms = best(click, 10)
    print(json.dumps({"torch": torch.__version__, "threads": threads,
                      "vit_b_encoder_ms": enc_ms, "decoder_ms": dec_ms}))


main()
