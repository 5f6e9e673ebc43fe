"""Write a log line the way DeepEyes' evaluation writes one (eval/eval_vstar.py, process() and
its __main__ loop): the record keys, the conversation kept in `pred_output` with every image
logged as an empty data URL, the original image named in `image` beside the log, and one JSON
object per line. The words and pictures are ours; only the structure is theirs.

usage: deepeyes_eval.py OUT_DIR
"""

import json
import os
import sys

from PIL import Image, ImageDraw

out = sys.argv[1]
bench = os.path.join(out, "direct_attributes")
os.makedirs(bench, exist_ok=True)

# The benchmark item: an image and its annotation file.
img = Image.new("RGB", (2400, 1600), (90, 120, 150))
ImageDraw.Draw(img).rectangle((1500, 900, 1560, 940), fill=(230, 30, 30))
img.save(os.path.join(bench, "harbour_7.jpg"))
question = "What is the colour of the small flag on the pier?"
options = ["red", "blue", "green", "white"]

system = "You are a careful assistant. You may call image_zoom_in_tool with a bbox_2d to look closer."
follow_up = "\nThink, zoom in with image_zoom_in_tool when needed, then give <answer>...</answer>."
option_str = "\n" + "".join(f"{'ABCD'[i]}. {o}\n" for i, o in enumerate(options))
prompt = f"Question: {question}\nOptions: {option_str}\n" + follow_up

call = {"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1480, 880, 1580, 960], "label": "the flag"}}
first = f"<think>The flag is tiny; zoom in.</think>\n<tool_call>\n{json.dumps(call)}\n</tool_call>"
last = "<think>The zoomed view shows a red flag.</think>\n<answer>A. red</answer>"

# As the script logs it: the print copy of the messages, images without their bytes.
pred_output = [
    {"role": "system", "content": system},
    {"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,"}},
        {"type": "text", "text": prompt},
    ]},
    {"role": "assistant", "content": first},
    {"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,"}},
        {"type": "text", "text": follow_up},
    ]},
    {"role": "assistant", "content": last},
]
save_info = {
    "image": "harbour_7.jpg",
    "question": question,
    "answer": options[0],
    "pred_ans": "A. red",
    "pred_output": pred_output,
    "status": "success",
}
with open(os.path.join(bench, "result_direct_attributes_ours.jsonl"), "w") as f:
    for item in [save_info]:
        f.write(json.dumps(item) + "\n")
