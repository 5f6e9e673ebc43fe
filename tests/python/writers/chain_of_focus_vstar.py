"""Write result lines the way Chain-of-Focus' V* evaluation writes them
(eval/vstar/vllm_inference.py: run_inference_loop builds save_info, its __main__ writes one
json.dumps line per item to result_{test_type}_{save_name}.jsonl): `image` is the benchmark
folder joined with the item's image name, the conversation in `pred_output` has every image
replaced by get_print_message with the text `data:image/jpeg;base64,base64_image`, each
assistant turn is a list of text parts, and zoom boxes are in the pixels of the resized image
the model saw. An item the loop failed on is logged with an empty `pred_output` and the error
in `status`. The words and pictures are ours; only the structure is theirs.

usage: chain_of_focus_vstar.py OUT_DIR   (run as the script is: from OUT_DIR, bench "vstar")
"""

import json
import os
import sys

from PIL import Image, ImageDraw

out = sys.argv[1]
os.chdir(out)
bench = "vstar"
os.makedirs(os.path.join(bench, "direct_attributes"), exist_ok=True)
os.makedirs("results", exist_ok=True)

# A 4000x3000 item: the model sees it resized to 4004x2996.
name = "direct_attributes/kite_3.jpg"
img = Image.new("RGB", (4000, 3000), (120, 160, 200))
ImageDraw.Draw(img).rectangle((2010, 1510, 2090, 1590), fill=(250, 120, 20))
img.save(os.path.join(bench, name))

SYSTEM = "You are a helpful assistant. You can call image_zoom_in_tool with a bbox_2d [x1, y1, x2, y2] to zoom in."
USER_PROMPT = "\nThink first, then call the tool or give <answer>...</answer>."
PLACEHOLDER = {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,base64_image"}}

question = "What is the colour of the kite? (A) orange (B) purple"
call = {"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [2000, 1500, 2100, 1600], "label": "kite"}}
# Two calls in one turn, as USER_PROMPT invites; find_absolute_bboxes' re.search runs the first.
other = {"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [100, 100, 400, 400], "label": "cloud"}}
first = f"<think>The kite is small.</think> <tool_call>{json.dumps(call)}</tool_call> <tool_call>{json.dumps(other)}</tool_call>"
last = "<think>It is orange.</think> <answer>A</answer>"

pred_output = [
    {"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
    {"role": "user", "content": [PLACEHOLDER, {"type": "text", "text": f"Question: {question}{USER_PROMPT}"}]},
    {"role": "assistant", "content": [{"type": "text", "text": first}]},
    {"role": "user", "content": [PLACEHOLDER, {"type": "text", "text": USER_PROMPT}]},
    {"role": "assistant", "content": [{"type": "text", "text": last}]},
]
results = [
    {"image": os.path.join(bench, name), "question": question, "answer": "A",
     "pred_ans": last, "pred_output": pred_output, "status": "success"},
    {"image": os.path.join(bench, name), "question": question, "answer": "A",
     "pred_ans": "", "pred_output": "", "status": "error: CUDA out of memory"},
]
with open(os.path.join("results", "result_direct_attributes_cof.jsonl"), "w") as f:
    for result in results:
        f.write(json.dumps(result) + "\n")
