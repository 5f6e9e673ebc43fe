"""Write a verl generation dump the way RayPPOTrainer._dump_generations writes one
(verl/trainer/ppo/ray_trainer.py, with trainer.validation_data_dir or rollout_data_dir set):
base_data = {input, output, score, step, <reward extra columns of the same length>}, one
json.dumps(entry, ensure_ascii=False) line per sample, "\\n".join(lines) + "\\n", into
{dump_path}/{global_steps}.jsonl. input and output are token ids decoded with
skip_special_tokens=True: here the chat template is rendered and its special tokens dropped,
as that decode does (<|im_start|>, <|im_end|>, the vision markers and image pads are special
in Qwen's tokenizer; <tool_call> and <tool_response> are not). The samples are CodeVision-
style runs: code_image_tool calls whose code runs on the input picked by image_index, answered
by the tool's text. The words are ours; only the structure is theirs.

usage: verl_generations.py OUT_DIR
"""

import json
import os
import sys

SPECIAL = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>"]


def decode(text):
    for token in SPECIAL:
        text = text.replace(token, "")
    return text


def render(messages, generation_prompt=False):
    out = ""
    for m in messages:
        out += f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n"
    if generation_prompt:
        out += "<|im_start|>assistant\n"
    return out


SYSTEM = "You are a helpful assistant. Call code_image_tool with Python that sets `result` to a PIL image."
DONE = ("Here is the processed image. Now, analyze the returned results. Please keep thinking "
        "step-by-step inside the <think></think> tags to determine the next action.")


def call(code, index):
    return "<tool_call>\n" + json.dumps({"name": "code_image_tool", "arguments": {
        "code": code, "description": "look closer", "image_index": index}}) + "\n</tool_call>"


def sample(question, turns):
    """turns: (assistant text, [tool answers]) ..., the last with no answers."""
    prompt = render([
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "<|vision_start|><|image_pad|><|image_pad|><|vision_end|>" + question},
    ], generation_prompt=True)
    response = ""
    for text, answers in turns:
        response += text + "<|im_end|>\n"
        if answers:
            response += "<|im_start|>user\n" + "\n".join(
                f"<tool_response>\n{a}\n</tool_response>" for a in answers) + "<|im_end|>\n<|im_start|>assistant\n"
    return decode(prompt), decode(response)


inputs, outputs = [], []
for question, turns in [
    ("What is the serial number on the plate?", [
        ("<think>The plate is small.</think>\n" + call("result = image.crop((620, 410, 860, 520)).resize((480, 220))", 0),
         [DONE + "<|vision_start|><|image_pad|><|vision_end|>"]),
        ("<think>Sharpen it.</think>\n" + call("from PIL import ImageFilter\nresult = img.filter(ImageFilter.SHARPEN)", 0)
         + "\n" + call("result = image.rotate(90)", 0),
         [DONE, "Error: Code execution error: name 'rotate' is not defined."]),
        ("<think>It reads K-1187.</think>\n<answer>K-1187</answer>", []),
    ]),
    ("How many windows are lit?", [
        ("<think>I can count them directly.</think>\n<answer>3</answer>", []),
    ]),
]:
    i, o = sample(question, turns)
    inputs.append(i)
    outputs.append(o)

scores = [1.0, 0.0]
reward_extra_infos_dict = {"acc": [1.0, 0.0], "format": [1.0, 1.0], "pred": ["K-1187", "3"]}
global_steps = 40
dump_path = os.path.join(sys.argv[1], "val_generations")
os.makedirs(dump_path, exist_ok=True)
filename = os.path.join(dump_path, f"{global_steps}.jsonl")
n = len(inputs)
base_data = {"input": inputs, "output": outputs, "score": scores, "step": [global_steps] * n}
for k, v in reward_extra_infos_dict.items():
    if len(v) == n:
        base_data[k] = v
lines = []
for i in range(n):
    entry = {k: v[i] for k, v in base_data.items()}
    lines.append(json.dumps(entry, ensure_ascii=False))
with open(filename, "w") as f:
    f.write("\n".join(lines) + "\n")
