"""Write DeepEyesV2 logs the way its code writes them.

1. The evaluation's prediction table (evaluation/VLMEvalKit, --inference-mode agent):
   VLLMAPIWrapper.generate_inner_agent keeps the conversation (system prompt, the user turn
   with the image, each assistant turn as the raw model text ending in </code>, each result
   as a user turn "Code execution result:\\nstdout: ... stderr: ... Images:\\n" followed by
   image_url parts) with every user image's URL cut to "data:image/jpeg;base64"; then
   infer_data_job puts str(raw_response) and str(image_path_list) into the benchmark's
   DataFrame and smp.file.dump writes it by the file's suffix: to_excel(index=False,
   engine="xlsxwriter") for .xlsx (the default PRED_FORMAT), to_csv(sep="\\t", index=False,
   quoting=csv.QUOTE_ALL) for .tsv, and to_dict("records") with json.dump(indent=4,
   ensure_ascii=False) for .json.
2. The cold-start SFT data after cold_start/data_convert.py: a JSON list of sharegpt items
   (messages with string contents and <image> marks, images joined to the image folder),
   json.dump(indent=4).

The words and pictures are ours; only the structure is theirs. Run with the consumers'
Python (pandas and xlsxwriter).

usage: deepeyes_v2_eval.py OUT_DIR
"""

import csv
import json
import os
import sys

import pandas as pd
from PIL import Image, ImageDraw

out = sys.argv[1]
work_dir = os.path.join(out, "results", "deepeyesv2")
image_root = os.path.join(out, "LMUData", "images", "VStarBench")
os.makedirs(work_dir, exist_ok=True)
os.makedirs(image_root, exist_ok=True)

original = Image.new("RGB", (2400, 1800), (90, 120, 150))
ImageDraw.Draw(original).rectangle((1500, 900, 1560, 950), fill=(200, 30, 30))
original_path = os.path.join(image_root, "sa_4690.jpg")
original.save(original_path)

SYSTEM = "You are an agent. Write Python in <code> </code>; image_1 holds the image. plt.show() figures come back."
RETURN = "Code execution result:\nstdout:\n```\n{stdout}\n```\n\nstderr:\n```\n{stderr}\n```\n\nImages:\n"
TEMPLATE = "{question}\n\nYou must put your answer inside <answer> </answer> tags, i.e., <answer> answer here </answer>. Please reason step by step."


def cut_images(messages):
    """What generate_inner_agent's del_image_base64 leaves of user images."""
    for m in messages:
        if m["role"] in ("system", "assistant"):
            continue
        for part in m["content"]:
            if part["type"] == "image_url":
                part["image_url"]["url"] = "data:image/jpeg;base64"
    return messages


def conversation(question, turns):
    """turns: (model text, stdout, stderr, figures) for code turns, then the final text."""
    msgs = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
            {"type": "text", "text": TEMPLATE.format(question=question)},
        ]},
    ]
    for text, stdout, stderr, figures in turns[:-1]:
        msgs.append({"role": "assistant", "content": text})
        result = {"role": "user", "content": [{"type": "text", "text": RETURN.format(stdout=stdout, stderr=stderr)}]}
        for _ in range(figures):
            result["content"].append({"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,iVBORw0K"}})
        msgs.append(result)
    msgs.append({"role": "assistant", "content": turns[-1]})
    return cut_images(msgs)


code = ("<think>The sign is small; crop it.</think>\n<code>\n```python\n"
        "import matplotlib.pyplot as plt\ncrop = image_1.crop((1450, 860, 1610, 990))\n"
        "print(crop.size)\nplt.imshow(crop)\nplt.show()\n```\n</code>")
answer = "<think>The patch is red.</think>\n<answer>A</answer>"
short = conversation("What colour is the small patch?\n(A) red\n(B) blue", [
    (code, "(160, 130)", "", 1),
    answer,
])
# A long search for something that is not there: more than one Excel cell holds.
long_turns = []
for k in range(60):
    cell = ("<think>Not found yet; scan the next strip, step %d, "
            "looking at every row of pixels with care.</think>\n<code>\n```python\n"
            "strip = image_1.crop((0, %d, 2400, %d))\nprint(strip.getextrema())\n```\n</code>") % (k, k * 30, k * 30 + 30)
    long_turns.append((cell, "((0, 255), (0, 255), (0, 255)) " * 6, "", 0))
long_turns.append("<answer>B</answer>")
long = conversation("Is there a second red patch?\n(A) yes\n(B) no", long_turns)

rows = []
for index, (question, gt, msgs, pred) in enumerate([
    ("What colour is the small patch?\n(A) red\n(B) blue", "A", short, "A"),
    ("Is there a second red patch?\n(A) yes\n(B) no", "B", long, "B"),
]):
    result = {"response": pred, "raw_response": msgs, "image_path_list": [original_path]}
    rows.append({
        "index": index, "question": question, "answer": gt, "category": "direct_attributes",
        "prediction": str(result["response"]), "thinking": str(result.get("thinking", "")),
        "raw_response": str(result.get("raw_response", "")),
        "image_path_list": str(result.get("image_path_list", [""])),
    })
data = pd.DataFrame(rows)
data.to_excel(os.path.join(work_dir, "DeepEyesV2-vllm_VStarBench.xlsx"), index=False, engine="xlsxwriter")
data.to_csv(os.path.join(work_dir, "DeepEyesV2-vllm_VStarBench.tsv"), sep="\t", index=False,
            encoding="utf-8", quoting=csv.QUOTE_ALL)
json.dump(data.to_dict("records"), open(os.path.join(work_dir, "DeepEyesV2-vllm_VStarBench.json"), "w"),
          indent=4, ensure_ascii=False)

# 2. Cold-start SFT data: the figure the sandbox returned, saved beside the original.
sft_dir = os.path.join(out, "sft")
os.makedirs(os.path.join(sft_dir, "images"), exist_ok=True)
original.save(os.path.join(sft_dir, "images", "sa_4690.jpg"))
figure = Image.new("RGB", (640, 480), (255, 255, 255))
figure.paste(original.crop((1450, 860, 1610, 990)).resize((400, 325)), (120, 80))
figure.save(os.path.join(sft_dir, "images", "sa_4690_fig1.png"))
item = {
    "messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "<image>" + TEMPLATE.format(question="What colour is the small patch?")},
        {"role": "assistant", "content": code},
        {"role": "user", "content": RETURN.format(stdout="(160, 130)", stderr="") + "<image>"},
        {"role": "assistant", "content": answer},
    ],
    "images": ["sa_4690.jpg", "sa_4690_fig1.png"],
}
data_path = os.path.join(sft_dir, "images")
item["images"] = [os.path.join(data_path, img) for img in item["images"]]
with open(os.path.join(sft_dir, "sft_part_0.json"), "w") as f:
    json.dump([item], f, indent=4)
