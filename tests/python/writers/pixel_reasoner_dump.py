"""Write a Pixel Reasoner evaluation dump the way its multi-turn loop writes one
(curiosity_driven_rl/openrlhf/trainer/ppo_utils/experience_maker.py, _generate_vllm with
do_dump: per question the folder {ckpt_path}/logs/dumps_iter{N}/{qid}/, each crop saved as
iter{round}.jpg after resize_cropped, and at the end
json.dump([conversation, prompt, str(images)], open(f"{tfolder}/conv.json", "w"))).
The conversation is qwen-agent messages dumped without their empty fields, each part given
its "type" and the first image its min_pixels/max_pixels (obtain_conv_images_from_conversations);
the crop rule is crop_image_normalized's (0-1 or pixel box, padded by 0.1, clamped, cut with
Pillow, at least 29 px a side) on the image the model names with target_image, and only a
turn's last <tool_call> runs (parse_last_tool). The words and pictures are ours; only the
structure is theirs.

usage: pixel_reasoner_dump.py OUT_DIR [ORIGINAL]   (ORIGINAL: a picture to use instead of ours)
"""

import json
import math
import os
import sys

from PIL import Image, ImageDraw

out = sys.argv[1]
ckpt_path = os.path.join(out, "ckpt")
os.makedirs(os.path.join(out, "images"), exist_ok=True)

# 2800x2100: sides are multiples of 28 and the area is inside the evaluation's bounds, so the
# model sees the original as it is.
original = Image.new("RGB", (2800, 2100), (40, 70, 50))
draw = ImageDraw.Draw(original)
for i in range(0, 2800, 70):
    for j in range(0, 2100, 70):
        shade = (i * 3 + j * 5) % 200
        draw.ellipse((i + 5, j + 5, i + 5 + (i + j) % 50 + 10, j + 5 + (i * j) % 40 + 10),
                     fill=(shade, 255 - shade, (i + 2 * j) % 256))
draw.rectangle((1180, 880, 1320, 960), fill=(240, 240, 230))
draw.text((1200, 905), "GATE 12", fill=(0, 0, 0))
original_path = os.path.join(out, "images", "station.png")
if len(sys.argv) > 2:
    original = Image.open(sys.argv[2]).convert("RGB")
original.save(original_path)

MIN_PIXELS = 256 * 28 * 28
MAX_PIXELS = 8000 * 28 * 28
ZOOM_MIN = 256 * 28 * 28
ZOOM_MAX = 5120 * 28 * 28


def fit_to_patches(height, width, factor=28, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS):
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        scale = math.sqrt(height * width / max_pixels)
        h = math.floor(height / scale / factor) * factor
        w = math.floor(width / scale / factor) * factor
    elif h * w < min_pixels:
        scale = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * scale / factor) * factor
        w = math.ceil(width * scale / factor) * factor
    return h, w


def zoom_tool(image, box, pad=0.1):
    width, height = image.size
    if all(v < 1 for v in box):
        frac = [box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad]
    else:
        frac = [box[0] / width - pad, box[1] / height - pad, box[2] / width + pad, box[3] / height + pad]
    frac = [min(max(0, v), 1) for v in frac]
    cut = image.crop((frac[0] * width, frac[1] * height, frac[2] * width, frac[3] * height))
    assert cut.size[0] > 28 and cut.size[1] > 28, f"Cropped image is too small: {cut.size[0]}x{cut.size[1]}"
    return cut


def as_model_input(image):
    h, w = fit_to_patches(image.size[1], image.size[0], min_pixels=ZOOM_MIN, max_pixels=ZOOM_MAX)
    return image.convert("RGB").resize((w, h))


TOOLS = ('{"type": "function", "function": {"name": "crop_image_normalized", "description": '
         '"Zoom in on a region.", "parameters": {"type": "object", "properties": {"bbox_2d": '
         '{"type": "array"}, "target_image": {"type": "number"}}, "required": ["bbox_2d", "target_image"]}}}')
SYSTEM = ("You are a helpful assistant.\n\n# Tools\n\nYou may call one or more functions to assist with the "
          "user query.\n\n<tools>\n" + TOOLS + "\n</tools>\n\nFor each function call, return a json object "
          "with function name and arguments within <tool_call></tool_call> XML tags.")


def call(box, target):
    return '<tool_call>\n{"name": "crop_image_normalized", "arguments": {"bbox_2d": %s, "target_image": %d}}\n</tool_call>' % (
        json.dumps(box), target)


def question(qid, text, turns):
    folder = os.path.join(ckpt_path, "logs", "dumps_iter0", qid)
    os.makedirs(folder, exist_ok=True)
    h, w = fit_to_patches(original.size[1], original.size[0])
    images = [original.resize((w, h))]
    conversation = [
        {"role": "system", "content": [{"text": SYSTEM, "type": "text"}]},
        {"role": "user", "content": [
            {"image": original_path, "type": "image", "min_pixels": MIN_PIXELS, "max_pixels": MAX_PIXELS},
            {"text": text + "\n\nPlease reason step by step, and put your final answer within \\boxed{}.", "type": "text"},
        ]},
    ]
    for round_no, reply in enumerate(turns):
        conversation.append({"role": "assistant", "content": [{"type": "text", "text": reply}]})
        if not reply.rstrip().endswith("</tool_call>"):
            break
        target_path = f"{folder}/iter{round_no}.jpg"
        try:
            last = json.loads(reply.split("<tool_call>")[-1].split("</tool_call>")[0])
            index = last["arguments"]["target_image"] - 1
            assert index < len(images), f"Execution Error: Incorrect `target_image` argument. You can only pick an image within [1,{len(images)}]"
            shown = as_model_input(zoom_tool(images[index], last["arguments"]["bbox_2d"]))
            shown.save(target_path)
            conversation.append({"role": "user", "content": [
                {"type": "text", "text": "\nHere is the cropped image (Image Size: {}x{}):".format(*shown.size)},
                {"type": "image", "image": target_path},
            ]})
            images.append(shown)
        except Exception as e:
            conversation.append({"role": "user", "content": [
                {"type": "text", "text": f"\nExecution error:\n{e}\n"},
            ]})
    prompt = "<|im_start|>system\n" + SYSTEM + "<|im_end|>\n<|im_start|>user\n" + text + "<|im_end|>\n"
    with open(f"{folder}/conv.json", "w") as f:
        json.dump([conversation, prompt, str(images)], f)


q = "What does the white sign say?"
question("vstar_12", q, [
    "The sign is small. I will zoom in.\n\n" + call([0.4, 0.38, 0.5, 0.5], 1),
    "Closer on the text.\n\n" + call([0.3, 0.3, 0.7, 0.7], 2),
    "It reads GATE 12. \\boxed{GATE 12}",
])
question("vstar_13", q, [
    # Pixels of the image the model saw; two calls in one turn: only the last runs.
    "Two places.\n\n" + call([0.0, 0.0, 0.2, 0.2], 1) + "\n" + call([1120, 800, 1400, 1050], 1),
    # A box too small after padding? No: a target that does not exist fails.
    "Zoom the third image.\n\n" + call([0.1, 0.1, 0.3, 0.3], 3),
    "\\boxed{GATE 12}",
])
