"""Write a results file the way PyVision's inference script writes one
(inference_engine/vis_inference_demo_gpt.py, main()): a JSON array written with indent=2,
each item {id, question, response, messages, image_paths, ground_truth}; the messages as its
helpers build them: images as base64 data URLs between <image_clue_i> tags, the model's turns
as lists of text parts ending in </code>, and each execution's result in an <interpreter> turn
with its text and image results. The words and pictures are ours; only the structure is theirs.

usage: pyvision_main.py OUT_DIR
"""

import base64
import io
import json
import os
import sys

from PIL import Image, ImageDraw

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
original = os.path.join(out, "street.png")
img = Image.new("RGB", (1600, 1200), (70, 90, 60))
ImageDraw.Draw(img).rectangle((900, 500, 980, 560), fill=(250, 250, 250))
img.save(original)


def b64(image):
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("utf-8")


question = "What is painted on the white panel?"
prompt = f"Answer the question; you may write Python in <code> to look closer.\nQuestion: {question}\nThe image is 1600 x 1200."
crop = img.crop((880, 480, 1000, 580)).resize((360, 300))
messages = [
    {"role": "user", "content": [
        {"type": "text", "text": "<image_clue_0>"},
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{b64(img)}"}},
        {"type": "text", "text": "</image_clue_0>\n\n"},
        {"type": "text", "text": prompt},
    ]},
    {"role": "assistant", "content": [
        {"type": "text", "text": "The panel is small; crop it.\n<code>\n```python\ncrop = image_clue_0.crop((880, 480, 1000, 580)).resize((360, 300))\ndisplay(crop)\n```\n</code>\n"},
    ]},
    {"role": "user", "content": [
        {"type": "text", "text": "<interpreter>\nText Result:\nNone\nImage Result:\n"},
        {"type": "text", "text": "<image_clue_1>"},
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{b64(crop)}"}},
        {"type": "text", "text": "</image_clue_1>"},
        {"type": "text", "text": "</interpreter>\n"},
    ]},
    {"role": "assistant", "content": [
        {"type": "text", "text": "The crop shows a plain white panel.\n<answer>nothing</answer>"},
    ]},
]
output_data = [{
    "id": 0,
    "question": question,
    "response": "<answer>nothing</answer>",
    "messages": messages,
    "image_paths": [original],
    "ground_truth": "nothing",
}]
with open(os.path.join(out, "results.json"), "w") as f:
    json.dump(output_data, f, indent=2, ensure_ascii=False)
