"""Load thyme-studio exports with the trainers' own libraries (not our copies of their rules).

Usage: check_consumers.py KIND PATH [MODEL_DIR | TRUTH]
  yolo DATA_YAML TRUTH      Ultralytics: check_det_dataset on our data.yaml, its detection
                            dataset built on it, every label it reads equal to the project's
                            boxes (TRUTH: JSON, image stem -> [[label, x0, y0, x1, y1, W, H]]),
                            one batch from its dataloader
  swift FILE MODEL_DIR      ms-swift: its dataset loader (strict) and the Qwen2.5-VL template
                            over MODEL_DIR's processor encode every row; each row's images are
                            resolved and its vision blocks match its images; grounding rows
                            carry the object's name and its box in the resized image's frame
  hf FILE                   Hugging Face datasets reads the JSONL with every row and key
  grpo-log OUT MODEL_DIR IMAGE
                            writes a GRPO completions log with ms-swift's own code: each
                            prompt rendered by GRPOTrainer._apply_chat_template_to_messages_list
                            over the Qwen2.5-VL template, the table appended by its JsonlWriter
                            (the writer thyme-studio's thyme-rl reader must read)

Needs the consumer environment scripts/test makes (tests/python/consumers.txt). Prints one
"ok ..." line, or the first problem and exits with status 1.
"""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MODELSCOPE_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def lines_of(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def check_yolo(data_yaml, truth_path):
    import ultralytics
    from ultralytics.cfg import get_cfg
    from ultralytics.data.build import build_dataloader, build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(data_yaml)
    with open(truth_path) as f:
        truth = json.load(f)
    ds = build_yolo_dataset(get_cfg(), data["train"], 2, data, mode="val", rect=False, stride=32)
    if len(ds) != len(truth):
        fail(f"ultralytics sees {len(ds)} images, the project has {len(truth)}")
    checked = 0
    for label in ds.labels:
        stem = os.path.splitext(os.path.basename(label["im_file"]))[0]
        theirs = sorted(
            (data["names"][int(c)], [float(v) for v in b])
            for c, b in zip(label["cls"].ravel(), label["bboxes"])
        )
        want = sorted(
            (name, [(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h])
            for name, x0, y0, x1, y1, w, h in truth.get(stem, [])
        )
        if len(theirs) != len(want):
            fail(f"{stem}: ultralytics read {len(theirs)} labels, the project has {len(want)} boxes")
        for (tn, tb), (wn, wb) in zip(theirs, want):
            if tn != wn or any(abs(a - b) > 1e-6 for a, b in zip(tb, wb)):
                fail(f"{stem}: ultralytics read {tn} {tb}, the project has {wn} {wb}")
            checked += 1
    batch = next(iter(build_dataloader(ds, 2, 0, shuffle=False)))
    if batch["img"].shape[0] != min(2, len(ds)):
        fail(f"a batch of {batch['img'].shape[0]} images")
    print(f"ok ultralytics {ultralytics.__version__}: {len(ds)} images, {checked} labels equal to the project, nc {data['nc']}")


def check_swift(path, model_dir):
    import re

    import swift

    processor = swift.get_processor(model_dir, model_type="qwen2_5_vl", download_model=False)
    template = swift.get_template(processor, max_pixels=200704, template_type="qwen2_5_vl")
    rows, _ = swift.load_dataset(path, strict=True, remove_unused_columns=False)
    raw = lines_of(path)
    if len(rows) != len(raw):
        fail(f"ms-swift loaded {len(rows)} rows of {len(raw)}")
    tok = processor.tokenizer
    pad = tok.convert_tokens_to_ids("<|image_pad|>")
    grounding = 0
    for i, row in enumerate(rows):
        for img in row["images"]:
            p = img["path"] if isinstance(img, dict) else img
            if not os.path.isfile(p):
                fail(f"row {i}: image {p} not found")
        enc = template.encode(row)
        text = tok.decode([t for t in enc["input_ids"] if t != pad])
        if text.count("<|vision_start|>") != len(row["images"]):
            fail(f"row {i}: {text.count('<|vision_start|>')} vision blocks for {len(row['images'])} images")
        if "<image>" in text:
            fail(f"row {i}: an <image> tag was left in the text")
        objects = raw[i].get("objects")
        if objects:
            grounding += 1
            _, gh, gw = [int(v) for v in enc["image_grid_thw"][0]]
            from PIL import Image

            with Image.open(raw[i]["images"][0]) as im:
                w, h = im.size
            for ref, (x0, y0, x1, y1) in zip(objects["ref"], objects["bbox"]):
                if f"<|object_ref_start|>{ref}<|object_ref_end|>" not in text:
                    fail(f"row {i}: the object '{ref}' is not named in the prompt")
                sx, sy = gw * 14 / w, gh * 14 / h
                want = [round(x0 * sx), round(y0 * sy), round(x1 * sx), round(y1 * sy)]
                boxes = re.findall(r"<\|box_start\|>\((\d+),(\d+)\),\((\d+),(\d+)\)<\|box_end\|>", text)
                got = [[int(v) for v in b] for b in boxes]
                if not any(all(abs(a - b) <= 1 for a, b in zip(g, want)) for g in got):
                    fail(f"row {i}: box {want} (resized frame) not in {got}")
    print(f"ok ms-swift {swift.__version__} qwen2_5_vl: {len(rows)} rows encoded, {grounding} grounding rows checked")


def check_hf(path):
    import datasets

    raw = lines_of(path)
    ds = datasets.load_dataset("json", data_files=path, split="train")
    if len(ds) != len(raw):
        fail(f"datasets read {len(ds)} rows of {len(raw)}")
    keys = set().union(*(r.keys() for r in raw))
    missing = keys - set(ds.column_names)
    if missing:
        fail(f"datasets lost keys {sorted(missing)}")
    for i, r in enumerate(raw):
        if ds[i]["messages"] != r["messages"] or ds[i]["images"] != r["images"]:
            fail(f"row {i} reads back different")
    print(f"ok datasets {datasets.__version__}: {len(ds)} rows, {len(keys)} keys")


def write_grpo_log(out, model_dir, image):
    import types

    import swift
    from PIL import Image
    from swift.rlhf_trainers.grpo_trainer import GRPOTrainer
    from swift.utils import JsonlWriter

    processor = swift.get_processor(model_dir, model_type="qwen2_5_vl", download_model=False)
    template = swift.get_template(processor, max_pixels=200704, template_type="qwen2_5_vl")
    with Image.open(image) as im:
        w, h = im.size
    question = "Which word is on the blue board?"
    user = f'{question}\n\n### User Image Path:** "{image}"\n### User Image Size:** "{w}x{h}"\n'
    completions = [
        "<think>Look closer.</think>\n<code>\n```python\nfrom PIL import Image\n"
        "img = Image.open(image_path)\nimg.crop((40, 30, 200, 130)).save('/tmp/c.png')\n"
        "print('/tmp/c.png')\n```\n</code><sandbox_output><image></sandbox_output>"
        "<think>It says HARBOUR.</think>\n<answer>HARBOUR</answer>",
        "<think>It is too small to read.</think>\n<answer>HARBOR</answer>",
    ]
    messages = []
    for completion in completions:
        messages.append([
            {"role": "system", "content": "Write Python in <code> to look closer; results come in <sandbox_output>."},
            {"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": user}]},
            {"role": "assistant", "content": completion},
        ])
    # The trainer's own renderer (it needs only the template from the trainer).
    prompts = GRPOTrainer._apply_chat_template_to_messages_list(types.SimpleNamespace(template=template), messages)
    # The table GRPOTrainer.log appends, one column per reward function.
    table = {
        "step": ["7"] * 2,
        "prompt": prompts,
        "completion": completions,
        "VQAORM": [1.0, 0.0],
        "FMTORM": [1.0, 1.0],
        "advantages": [0.7071, -0.7071],
        "solution": ["<answer>HARBOUR</answer>"] * 2,
    }
    JsonlWriter(out).append(table)
    with open(out) as f:
        n = sum(1 for l in f if l.strip())
    print(f"ok ms-swift {swift.__version__} wrote {n} line(s) of {len(prompts)} rollouts")


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else ""
    if kind == "yolo" and len(sys.argv) == 4:
        check_yolo(sys.argv[2], sys.argv[3])
    elif kind == "swift" and len(sys.argv) == 4:
        check_swift(sys.argv[2], sys.argv[3])
    elif kind == "hf" and len(sys.argv) == 3:
        check_hf(sys.argv[2])
    elif kind == "grpo-log" and len(sys.argv) == 5:
        write_grpo_log(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        fail(__doc__)
