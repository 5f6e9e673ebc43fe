"""The Python peer of `thyme-studio bench export`: reads the same project file with sqlite3 and
writes the same six formats with json (the way a team's own export script would), timing each
from opening the database to the closed output file. pycocotools then loads the COCO output
(outside the timing) as a check that the peer did the same work.

Usage: export_peer.py PROJECT.thyme OUT_DIR   -> prints {"format": seconds, ...}
"""

import json
import os
import sqlite3
import sys
import time

import tomllib

# The same prompt profile the Rust side writes by default.
with open(os.path.join(os.path.dirname(__file__), "../../assets/profiles/default.toml"), "rb") as _f:
    _PROFILE = tomllib.load(_f)
SYSTEM = _PROFILE["system"].strip()
USER = (
    _PROFILE["user"]
    .replace("{", "{{").replace("}", "}}")
    .replace("{{question}}", "{question}").replace("{{image_path}}", "{path}")
    .replace("{{width}}", "{w}").replace("{{height}}", "{h}")
)


def load(db_path, journal=False):
    db = sqlite3.connect(db_path)
    images = db.execute(
        "SELECT id, path, width, height, bytes, added_at_ms, status FROM images ORDER BY path, id"
    ).fetchall()
    regions = {}
    for r in db.execute("SELECT id, image_id, x0, y0, x1, y1, label FROM regions ORDER BY image_id, id"):
        regions.setdefault(r[1], []).append(r)
    links = {}
    for q, r in db.execute("SELECT question_id, region_id FROM question_regions ORDER BY question_id, position"):
        links.setdefault(q, []).append(r)
    questions = {}
    for q in db.execute(
        "SELECT id, image_id, text, answer, category, status FROM questions ORDER BY image_id, id"
    ):
        questions.setdefault(q[1], []).append((q, json.loads(q[3]), links.get(q[0], [])))
    rows = []
    if journal:
        rows = db.execute(
            "SELECT seq, at_ms, actor, action, target, command, state FROM journal ORDER BY seq"
        ).fetchall()
    cats = db.execute("SELECT name, builtin FROM categories ORDER BY builtin DESC, name").fetchall()
    db.close()
    return images, regions, questions, rows, cats


def small(r, w, h):
    return (r[4] - r[2]) * (r[5] - r[3]) <= 0.05 * w * h


def valid(q, answer):
    if not q[2].strip():
        return False
    if answer["kind"] == "open":
        return bool(answer["text"].strip())
    opts = answer["options"]
    return 2 <= len(opts) <= 6 and len(set(opts)) == len(opts) and all(o.strip() for o in opts)


def prompt_solution(q, answer):
    if answer["kind"] == "open":
        return q[2], answer["text"]
    lines = [f"Question: {q[2]}", "Options:"]
    lines += [f"{chr(65 + i)}. {o}" for i, o in enumerate(answer["options"])]
    return "\n".join(lines) + "\nPlease select the correct answer from the options above.", chr(
        65 + answer["correct"]
    )


def thyme_rl(db_path, out):
    images, regions, questions, journal, _ = load(db_path, journal=True)
    creators = {}
    for row in journal:
        cmd = json.loads(row[5])
        kind, body = next(iter(cmd.items()))
        if kind == "AddImage":
            for x in body["regions"] + body["questions"]:
                creators.setdefault(x["id"], row[2])
        elif kind == "AddQuestion":
            creators.setdefault(body["question"]["id"], row[2])
        elif kind == "AddRegion":
            creators.setdefault(body["region"]["id"], row[2])
    with open(out, "w") as f:
        for img in images:
            w, h = img[2], img[3]
            boxes = {r[0]: r for r in regions.get(img[0], []) if small(r, w, h)}
            for q, answer, linked in questions.get(img[0], []):
                if not valid(q, answer) or any(r not in boxes for r in linked):
                    continue
                prompt, solution = prompt_solution(q, answer)
                rs = [boxes[r] for r in linked]
                line = {
                    "messages": [
                        {"role": "system", "content": SYSTEM},
                        {"role": "user", "content": USER.format(question=prompt, path=img[1], w=w, h=h)},
                    ],
                    "images": [img[1]],
                    "solution": solution,
                    "question": q[2],
                    "id": q[0],
                    "bbox": [[r[2], r[3], r[4], r[5]] for r in rs],
                    "bbox_area_ratio": [(r[4] - r[2]) * (r[5] - r[3]) / (w * h) for r in rs],
                    "category": q[4],
                    "kind": answer["kind"],
                    "image_size": [w, h],
                    "annotator": creators.get(q[0]),
                    "review": q[5],
                }
                if answer["kind"] == "choice":
                    line["options"] = answer["options"]
                f.write(json.dumps(line) + "\n")


def coco(db_path, out):
    images, regions, questions, _, _ = load(db_path)
    names = sorted({(r[6].strip() or "object") for rs in regions.values() for r in rs})
    cat_id = {n: i + 1 for i, n in enumerate(names)}
    data = {
        "info": {"description": "peer"},
        "images": [],
        "annotations": [],
        "categories": [{"id": i, "name": n, "supercategory": "object"} for n, i in cat_id.items()],
        "thyme_questions": [],
    }
    ann = 0
    for n, img in enumerate(images, 1):
        w, h = img[2], img[3]
        data["images"].append({"id": n, "file_name": img[1], "width": w, "height": h, "thyme_image_id": img[0]})
        ids = {}
        for r in regions.get(img[0], []):
            if not small(r, w, h):
                continue
            ann += 1
            ids[r[0]] = ann
            bw, bh = r[4] - r[2], r[5] - r[3]
            data["annotations"].append(
                {
                    "id": ann,
                    "image_id": n,
                    "category_id": cat_id[r[6].strip() or "object"],
                    "bbox": [r[2], r[3], bw, bh],
                    "area": bw * bh,
                    "iscrowd": 0,
                    "thyme_region_id": r[0],
                }
            )
        for q, answer, linked in questions.get(img[0], []):
            if not valid(q, answer) or any(r not in ids for r in linked):
                continue
            item = {
                "id": q[0],
                "image_id": n,
                "annotation_ids": [ids[r] for r in linked],
                "question": q[2],
                "kind": answer["kind"],
                "solution": answer["text"] if answer["kind"] == "open" else answer["options"][answer["correct"]],
                "category": q[4],
                "review": q[5],
            }
            if answer["kind"] == "choice":
                item["options"] = answer["options"]
                item["correct"] = answer["correct"]
            data["thyme_questions"].append(item)
    with open(out, "w") as f:
        json.dump(data, f)


def yolo(db_path, out):
    images, regions, _, _, _ = load(db_path)
    names = sorted({(r[6].strip() or "object") for rs in regions.values() for r in rs})
    cls = {n: i for i, n in enumerate(names)}
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    os.makedirs(os.path.join(out, "labels"), exist_ok=True)
    for img in images:
        w, h = img[2], img[3]
        name = os.path.basename(img[1])
        dest = os.path.join(out, "images", name)
        if not os.path.exists(dest):
            try:
                os.link(img[1], dest)
            except OSError:
                import shutil

                shutil.copy(img[1], dest)
        rows = []
        for r in regions.get(img[0], []):
            if small(r, w, h):
                bw, bh = r[4] - r[2], r[5] - r[3]
                rows.append(
                    f"{cls[r[6].strip() or 'object']} {(r[2] + bw / 2) / w:.6f} {(r[3] + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}\n"
                )
        with open(os.path.join(out, "labels", os.path.splitext(name)[0] + ".txt"), "w") as f:
            f.write("".join(rows))
    with open(os.path.join(out, "data.yaml"), "w") as f:
        f.write(f"path: {json.dumps(os.path.abspath(out))}\ntrain: images\nval: images\nnc: {len(names)}\nnames:\n")
        for n, i in cls.items():
            f.write(f"  {i}: {json.dumps(n)}\n")


def swift(db_path, out):
    images, regions, questions, _, _ = load(db_path)
    with open(out, "w") as f:
        for img in images:
            w, h = img[2], img[3]
            boxes = {r[0]: r for r in regions.get(img[0], []) if small(r, w, h)}
            for r in boxes.values():
                if not r[6].strip():
                    continue
                f.write(
                    json.dumps(
                        {
                            "messages": [
                                {"role": "user", "content": "<image>Find <ref-object> in the image."},
                                {"role": "assistant", "content": "<bbox>"},
                            ],
                            "images": [img[1]],
                            "objects": {"ref": [r[6].strip()], "bbox": [[r[2], r[3], r[4], r[5]]], "bbox_type": "real"},
                        }
                    )
                    + "\n"
                )
            for q, answer, linked in questions.get(img[0], []):
                if not valid(q, answer) or any(r not in boxes for r in linked):
                    continue
                prompt, solution = prompt_solution(q, answer)
                f.write(
                    json.dumps(
                        {
                            "messages": [
                                {"role": "user", "content": "<image>" + prompt},
                                {"role": "assistant", "content": solution},
                            ],
                            "images": [img[1]],
                        }
                    )
                    + "\n"
                )


def llava(db_path, out):
    images, regions, questions, _, _ = load(db_path)
    entries = []
    for img in images:
        w, h = img[2], img[3]
        boxes = {r[0] for r in regions.get(img[0], []) if small(r, w, h)}
        conv = []
        for q, answer, linked in questions.get(img[0], []):
            if not valid(q, answer) or any(r not in boxes for r in linked):
                continue
            prompt, solution = prompt_solution(q, answer)
            conv.append({"from": "human", "value": ("<image>\n" + prompt) if not conv else prompt})
            conv.append({"from": "gpt", "value": solution})
        if conv:
            entries.append({"id": img[0], "image": img[1], "conversations": conv})
    with open(out, "w") as f:
        json.dump(entries, f)


def canonical(db_path, out):
    images, regions, questions, journal, cats = load(db_path, journal=True)
    with open(out, "w") as f:
        f.write(json.dumps({"format": "thyme-studio", "version": 1,
                            "categories": [{"name": n, "builtin": bool(b)} for n, b in cats]}) + "\n")
        for img in images:
            line = {
                "image": {"id": img[0], "path": img[1], "size": {"width": img[2], "height": img[3]},
                          "bytes": img[4], "added_at_ms": img[5], "status": img[6]},
                "regions": [{"id": r[0], "image": r[1], "rect": {"x0": r[2], "y0": r[3], "x1": r[4], "y1": r[5]},
                             "label": r[6]} for r in regions.get(img[0], [])],
                "questions": [{"id": q[0], "image": q[1], "regions": linked, "text": q[2], "answer": answer,
                               "category": q[4], "status": q[5]} for q, answer, linked in questions.get(img[0], [])],
            }
            f.write(json.dumps(line) + "\n")
        for row in journal:
            f.write(json.dumps({"journal": {"seq": row[0], "at_ms": row[1], "actor": row[2], "action": row[3],
                                            "target": row[4], "command": json.loads(row[5]), "state": row[6]}}) + "\n")


FORMATS = [
    ("thyme-rl", thyme_rl, "peer-thyme-rl.jsonl"),
    ("coco", coco, "peer-coco.json"),
    ("yolo", yolo, "peer-yolo"),
    ("swift", swift, "peer-swift.jsonl"),
    ("llava", llava, "peer-llava.json"),
    ("jsonl", canonical, "peer-project.jsonl"),
]

if __name__ == "__main__":
    db_path, out_dir = sys.argv[1], sys.argv[2]
    times = {}
    for name, fn, target in FORMATS:
        started = time.perf_counter()
        fn(db_path, os.path.join(out_dir, target))
        times[name] = time.perf_counter() - started
    try:
        import contextlib
        import io

        from pycocotools.coco import COCO

        with contextlib.redirect_stdout(io.StringIO()):
            c = COCO(os.path.join(out_dir, "peer-coco.json"))
        assert len(c.getAnnIds()) > 0
    except ImportError:
        pass
    print(json.dumps(times))
