"""Write completions.jsonl the way Thyme's RL training logs it (its ms-swift fork,
swift/trainers/rlhf_trainer/grpo_trainer.py: GRPOTrainer.log builds one table per logging step,
{"step": [...], "prompt": [...], "completion": [...], <one column per reward function>}, and
ms-swift's JsonlWriter.append writes that dict of lists as one JSON line). Each prompt is the
chat template rendered without the response (_apply_chat_template_to_messages_list); each
completion is the rollout's last assistant message, into which the trainer wrote the sandbox
results as <sandbox_output><image></sandbox_output> while the images themselves went to a
cache folder the log does not keep. The reward columns are the reward classes' names (FMTORM,
VQAORM, CSTORM in scripts/rl.sh).

The first line is shaped as Thyme's fork writes it (the template's context pieces joined, the
image as <|vision_start|><|image_pad|><|vision_end|>); the second as current ms-swift writes it
(the prompt decoded from its token ids with each run of image pads shown as [ID * N], plus the
advantages and the dataset's solution column). The words and pictures are ours.

usage: thyme_rl_completions.py OUT_DIR
"""

import json
import os
import sys

from PIL import Image, ImageDraw

out = sys.argv[1]
run_dir = os.path.join(out, "output_dir")
data_dir = os.path.join(out, "data")
os.makedirs(run_dir, exist_ok=True)
os.makedirs(data_dir, exist_ok=True)

img = Image.new("RGB", (3000, 2000), (70, 110, 90))
ImageDraw.Draw(img).rectangle((2100, 1300, 2160, 1340), fill=(240, 220, 40))
image_path = os.path.abspath(os.path.join(data_dir, "field_12.jpg"))
img.save(image_path)

system = "You are a helpful assistant. Write Python in <code> to crop or enhance the image; the sandbox answers in <sandbox_output>."
question = "What colour is the small sign at the right of the field?"
user = f'<image>\n{question}\n\n### User Image Path:** "{image_path}"\n### User Image Size:** "3000x2000"\n'


def rendered_fork(system, user):
    # Thyme's fork: ''.join(res_context_list) of the template's _swift_encode.
    body = user.replace("<image>", "<|vision_start|><|image_pad|><|vision_end|>", 1)
    return f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{body}<|im_end|>\n<|im_start|>assistant\n"


def rendered_decoded(system, user):
    # Current ms-swift: template.safe_decode(encode(...)["input_ids"]): a run of N image pads
    # (token 151655) is shown as [151655 * N].
    body = user.replace("<image>", "<|vision_start|>[151655 * 1196]<|vision_end|>", 1)
    return f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{body}<|im_end|>\n<|im_start|>assistant\n"


code = (
    "<code>\n```python\nfrom PIL import Image\nimg = Image.open(image_path)\n"
    "crop = img.crop((2060, 1260, 2200, 1380))\nprocessed_path = '/tmp/cache/field_12_0.png'\n"
    "crop.save(processed_path)\nprint(processed_path)\n```\n</code>"
)
good = (
    "<think>The sign is small; crop around it.</think>\n" + code
    + "<sandbox_output><image></sandbox_output>"
    + "<think>The crop shows a yellow sign.</think>\n<answer>yellow</answer>"
)
failed = (
    "<think>Crop it.</think>\n<code>\n```python\nimg = Image.open(image_path)\nimg.crop((1, 2))\n```\n</code>"
    + "<sandbox_output>Sandbox for field_12: Error: crop box must have four numbers</sandbox_output>"
    + "<think>I will guess.</think>\n<answer>green</answer>"
)


def append(path, obj):
    # ms-swift's JsonlWriter.append: a dict (even one of lists) is one line.
    items = obj if isinstance(obj, list) and all(isinstance(i, dict) for i in obj) else [obj]
    with open(path, "a", encoding="utf-8") as f:
        f.write("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in items))


log = os.path.join(run_dir, "completions.jsonl")
if os.path.exists(log):
    os.remove(log)
# Logging step 3 (the fork's table).
prompts = [rendered_fork(system, user)] * 2
append(log, {
    "step": ["3"] * 2,
    "prompt": prompts,
    "completion": [good, failed],
    "FMTORM": [1.0, 1.0],
    "VQAORM": [1.0, 0.0],
    "CSTORM": [1.0, 0.0],
})
# Logging step 4 (current ms-swift's table).
append(log, {
    "step": ["4"] * 2,
    "prompt": [rendered_decoded(system, user)] * 2,
    "completion": [failed, good],
    "FMTORM": [1.0, 1.0],
    "VQAORM": [0.0, 1.0],
    "CSTORM": [0.0, 1.0],
    "advantages": [-0.7071, 0.7071],
    "solution": ["<answer>yellow</answer>"] * 2,
})
