"""Write a Mini-o3 trajectory folder the way its rollout saves one (save_traj=True,
save_traj_dir=DIR; verl/workers/rollout/vllm_rollout/vllm_rollout_spmd.py: save_traj_and_obs,
called with {doc_id, initial_prompt, ground_truth} and the original and resized images when a
rollout starts, {turn_idx, text_output} after each model turn, and the crop (at the source's
own resolution, function_tools.crop_image with resize=1) and its resized copy as
observation_{turn+1}_* after each zoom that worked), plus the stats.json a validation pass
writes (verl/trainer/ppo/ray_trainer.py: per item doc_id, input, ground_truth, data_source,
rollouts with output, score, format_reward and acc_reward, pass_at_k; json.dump indent=4).
Boxes: 0-1 of the source image (use_relative_coordinates) in the first item, pixels of the
size the model saw in the second. The words and pictures are ours; only the structure is
theirs.

usage: mini_o3_save_traj.py OUT_DIR
"""

import json
import os
import sys

from PIL import Image, ImageDraw

save_dir = os.path.join(sys.argv[1], "val_trajs")
os.makedirs(save_dir, exist_ok=True)

original = Image.new("RGB", (4000, 3000), (60, 90, 60))
draw = ImageDraw.Draw(original)
draw.rectangle((2150, 1600, 2250, 1700), fill=(230, 230, 230))
draw.text((2170, 1640), "ML4", fill=(0, 0, 0))
resized = original.resize((2000, 1500))

SYSTEM = "Answer from the image; to look closer output <grounding>{\"bbox_2d\": [x0, y0, x1, y1], \"source\": \"original_image\"}</grounding>."


def save_traj_and_obs(save_directory, json_dict=None, original_image=None, resize_image=None, turn_idx=-1):
    os.makedirs(save_directory, exist_ok=True)
    if json_dict is not None:
        with open(os.path.join(save_directory, "traj.jsonl"), "a+") as f:
            f.write(json.dumps(json_dict) + "\n")
    if original_image is not None:
        name = "original_image.jpg" if turn_idx == -1 else f"observation_{turn_idx}_original_image.jpg"
        original_image.save(os.path.join(save_directory, name))
    if resize_image is not None:
        name = "resized_image.jpg" if turn_idx == -1 else f"observation_{turn_idx}_resized_image.jpg"
        resize_image.save(os.path.join(save_directory, name))


def rollout(folder, doc_id, question, answer, turns):
    """turns: (text, crop box on the source in its pixels, source image) or (text, None, None)."""
    d = os.path.join(save_dir, folder)
    prompt = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"<image>\n{question}"}]
    save_traj_and_obs(d, {"doc_id": folder, "initial_prompt": prompt, "ground_truth": answer}, original, resized)
    observations = [original]
    for turn, (text, box, source) in enumerate(turns):
        save_traj_and_obs(d, {"turn_idx": turn, "text_output": text})
        if box is not None:
            crop = observations[source].crop(box)
            observations.append(crop)
            save_traj_and_obs(d, None, crop, crop.resize((crop.width * 2, crop.height * 2)), turn_idx=turn + 1)
    return "".join(t for t, _, _ in turns)


q = "What is written on the small plate?"
g = lambda b, s: '<grounding>{"bbox_2d": %s, "source": "%s"}</grounding>' % (json.dumps(b), s)
out0 = rollout("plate_7_0", "plate_7", q, "ML4", [
    ("<think>The plate is small.</think> " + g([0.5, 0.5, 0.6, 0.6], "original_image"), (2000, 1500, 2400, 1800), 0),
    ("<think>Closer still.</think> " + g([0.25, 0.25, 0.75, 0.75], "observation_1"), (100, 75, 300, 225), 1),
    ("<think>It reads ML4.</think> <answer>ML4</answer>", None, None),
])
out1 = rollout("plate_7_1", "plate_7", q, "ML4", [
    ("<think>Zoom on the last view.</think> " + g([0.1, 0.1, 0.2, 0.2], "observation_5"), None, None),
    ("<think>I cannot read it.</think> <answer>MLA</answer>", None, None),
])
# Pixels of the 2000x1500 image the model saw: the rollout scales them by 2 for the original.
out2 = rollout("plate_8", "plate_8", q, "ML4", [
    ("<think>Look at the plate.</think> " + g([1000, 750, 1200, 900], "original_image"), (2000, 1500, 2400, 1800), 0),
    ("<think>ML4.</think> <answer>ML4</answer>", None, None),
])
stats = [
    {"id": 0, "doc_id": "plate_7", "input": q, "ground_truth": "ML4", "data_source": "visual_probe_easy",
     "rollouts": [{"output": out0, "score": 1.0, "format_reward": 1.0, "acc_reward": 1.0},
                  {"output": out1, "score": 0.0, "format_reward": 1.0, "acc_reward": 0.0}],
     "pass_at_k": 0.5},
    {"id": 2, "doc_id": "plate_8", "input": q, "ground_truth": "ML4", "data_source": "visual_probe_easy",
     "rollouts": [{"output": out2, "score": 1.0, "format_reward": 1.0, "acc_reward": 1.0}],
     "pass_at_k": 1.0},
]
with open(os.path.join(save_dir, "stats.json"), "w+") as f:
    json.dump(stats, f, indent=4)
