"""Load thyme-studio exports with the libraries (or the exact rules) their consumers use.

The trainers' own libraries (Ultralytics, ms-swift, datasets) load the exports in
check_consumers.py; the checks here are the quick structural ones, run everywhere.

Usage: check_exports.py KIND PATH
  coco FILE       pycocotools loads it; ground truth scored as detections gives AP 1.0
  yolo DIR        the Ultralytics label rules; every image opens with Pillow
  thyme-rl FILE   the keys and types Thyme's RL trainer reads
  swift FILE      ms-swift's messages/images/objects shape, placeholders matching objects
  llava FILE      LLaVA's conversation shape

Prints one "ok ..." line, or the first problem and exits with status 1.
"""

import json
import math
import os
import sys


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def check_coco(path):
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(path)
    data = gt.dataset
    for key in ("images", "annotations", "categories"):
        ids = [x["id"] for x in data[key]]
        if any((not isinstance(i, int)) or i < 1 for i in ids):
            fail(f"{key}: an id below 1")
        if len(set(ids)) != len(ids):
            fail(f"{key}: repeated ids")
    for a in data["annotations"]:
        x, y, w, h = a["bbox"]
        if abs(a["area"] - w * h) > 1e-6 or a["iscrowd"] not in (0, 1):
            fail(f"annotation {a['id']}: area or iscrowd wrong")
    dets = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
        for a in data["annotations"]
    ]
    if not dets:
        fail("no annotations")
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    ap = ev.stats[0]
    if ap != 1.0:
        fail(f"AP is {ap}, not 1.0")
    qs = data.get("thyme_questions", [])
    ann_ids = {a["id"] for a in data["annotations"]}
    img_ids = {i["id"] for i in data["images"]}
    for q in qs:
        if q["image_id"] not in img_ids or not set(q["annotation_ids"]) <= ann_ids:
            fail(f"question {q['id']} points at a missing image or annotation")
    print(f"ok coco: {len(data['images'])} images, {len(dets)} boxes, {len(qs)} questions, AP {ap}")


def check_yolo(root):
    from PIL import Image

    names = {}
    nc = None
    with open(os.path.join(root, "data.yaml")) as f:
        in_names = False
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("nc:"):
                nc = int(line.split(":", 1)[1])
            elif line.startswith("names:"):
                in_names = True
            elif in_names and line.startswith("  "):
                k, v = line.strip().split(":", 1)
                names[int(k)] = json.loads(v.strip())
    if nc is None or sorted(names) != list(range(nc)):
        fail("data.yaml: nc and names disagree")
    images = {os.path.splitext(n)[0]: n for n in os.listdir(os.path.join(root, "images"))}
    labels = os.listdir(os.path.join(root, "labels"))
    rows_total = 0
    for label in labels:
        stem = os.path.splitext(label)[0]
        if stem not in images:
            fail(f"{label}: no image with that name")
        with Image.open(os.path.join(root, "images", images[stem])) as im:
            im.verify()
        seen = set()
        with open(os.path.join(root, "labels", label)) as f:
            for n, line in enumerate(f, 1):
                parts = line.split()
                if len(parts) != 5:
                    fail(f"{label}:{n}: {len(parts)} columns, not 5")
                values = [float(p) for p in parts]
                if any(math.isnan(v) or math.isinf(v) for v in values):
                    fail(f"{label}:{n}: not a number")
                cls = values[0]
                if cls != int(cls) or not 0 <= cls < nc:
                    fail(f"{label}:{n}: class {parts[0]} not below {nc}")
                if any(v < 0 or v > 1 for v in values[1:]):
                    fail(f"{label}:{n}: coordinates outside [0, 1]")
                if values[3] <= 0 or values[4] <= 0:
                    fail(f"{label}:{n}: empty box")
                if line in seen:
                    fail(f"{label}:{n}: duplicate row")
                seen.add(line)
                rows_total += 1
    print(f"ok yolo: {len(labels)} label files, {rows_total} boxes, {nc} classes")


def lines(path):
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield n, json.loads(line)


def check_thyme_rl(path):
    count = 0
    for n, row in lines(path):
        msgs = row["messages"]
        if not (isinstance(msgs, list) and [m["role"] for m in msgs] == ["system", "user"]):
            fail(f"line {n}: messages are not [system, user]")
        if not all(isinstance(m["content"], str) and m["content"] for m in msgs):
            fail(f"line {n}: empty message")
        user = msgs[1]["content"]
        if not user.startswith("<image>\n") or '### User Image Path:** "' not in user:
            fail(f"line {n}: the user turn lacks <image> or the path header")
        images = row["images"]
        if not (isinstance(images, list) and len(images) == 1 and isinstance(images[0], str)):
            fail(f"line {n}: images is not one path")
        if f'### User Image Path:** "{images[0]}"' not in user:
            fail(f"line {n}: the path header is not the image path")
        if not os.path.isabs(images[0]) or not os.path.isfile(images[0]):
            fail(f"line {n}: {images[0]} is not a file")
        for key in ("solution", "question"):
            if not (isinstance(row[key], str) and row[key].strip()):
                fail(f"line {n}: {key} is not a non-empty string")
        count += 1
    if count == 0:
        fail("no lines")
    print(f"ok thyme-rl: {count} lines")


def check_swift(path):
    from PIL import Image

    grounding = qa = 0
    for n, row in lines(path):
        msgs = row["messages"]
        if not all(m["role"] in ("system", "user", "assistant") for m in msgs):
            fail(f"line {n}: unknown role")
        text = "".join(m["content"] for m in msgs)
        if text.count("<image>") != len(row["images"]):
            fail(f"line {n}: <image> tags and images disagree")
        objects = row.get("objects")
        if objects:
            if objects.get("bbox_type") != "real":
                fail(f"line {n}: bbox_type is not real")
            refs, boxes = objects["ref"], objects["bbox"]
            if text.count("<ref-object>") != len(refs) or text.count("<bbox>") != len(boxes):
                fail(f"line {n}: placeholders and objects disagree")
            with Image.open(row["images"][0]) as im:
                w, h = im.size
            for b in boxes:
                if len(b) != 4 or not (0 <= b[0] < b[2] <= w and 0 <= b[1] < b[3] <= h):
                    fail(f"line {n}: box {b} not inside the {w}x{h} image")
            grounding += 1
        else:
            qa += 1
    if grounding == 0:
        fail("no grounding lines")
    print(f"ok swift: {grounding} grounding lines, {qa} QA lines")


def check_llava(path):
    # LLaVA is not a package; these are the rules of its loader, haotian-liu/LLaVA
    # llava/train/train.py: LazySupervisedDataset.__getitem__ opens
    # os.path.join(image_folder, entry["image"]) (an absolute path stays as it is);
    # preprocess_multimodal moves <image> to the front of its turn; preprocess_v1 takes the
    # turns as human/gpt pairs, starting with human.
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, list) or not data:
        fail("not a non-empty list")
    for e in data:
        conv = e["conversations"]
        image = os.path.join(os.path.dirname(os.path.abspath(path)), e["image"])
        if not isinstance(e["id"], str) or not os.path.isfile(image):
            fail(f"{e.get('id')}: bad id or image")
        if [t["from"] for t in conv] != ["human", "gpt"] * (len(conv) // 2) or len(conv) % 2:
            fail(f"{e['id']}: turns do not alternate human/gpt")
        if "<image>" not in conv[0]["value"] or any("<image>" in t["value"] for t in conv[1:]):
            fail(f"{e['id']}: <image> must be in the first turn only")
    print(f"ok llava: {len(data)} entries")


CHECKS = {
    "coco": check_coco,
    "yolo": check_yolo,
    "thyme-rl": check_thyme_rl,
    "swift": check_swift,
    "llava": check_llava,
}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in CHECKS:
        fail(__doc__)
    CHECKS[sys.argv[1]](sys.argv[2])
