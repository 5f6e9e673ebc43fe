"""The crop audit as a plain Python script does it, for `thyme-studio bench audit`: for every
row of a Thyme SFT JSONL (image list [original, stored crop], the code in the response), run
the row's code with `exec` in this process (image_path set, no isolation, as Thyme's own
evaluation runs code), open the image it saved and the stored crop with Pillow, and compare
their sizes and mean absolute difference with NumPy. Prints one JSON line: rows, seconds,
and how many agreed.

usage: audit_peer.py ROWS.jsonl WORK_DIR
"""

import json
import os
import re
import sys
import time

import numpy as np
from PIL import Image

rows_path, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
base = os.path.dirname(os.path.abspath(rows_path))
code_re = re.compile(r"```python\n(.*?)```", re.S)
started = time.perf_counter()
n = agreed = failed = 0
with open(rows_path) as f:
    for line in f:
        if not line.strip():
            continue
        row = json.loads(line)
        n += 1
        original, stored = (os.path.join(base, p) for p in row["image"][:2])
        m = code_re.search(row["response"])
        code = m.group(1).replace("/mnt/data/temp_processed_images/", work + "/")
        out = {}
        ctx = {"image_path": original, "Image": Image, "np": np, "print": lambda *a, **k: out.setdefault("printed", a)}
        try:
            exec(code, ctx)
            made = Image.open(out["printed"][0]).convert("RGB")
            want = Image.open(stored).convert("RGB")
            if made.size == want.size:
                mad = np.abs(np.asarray(made, dtype=np.int16) - np.asarray(want, dtype=np.int16)).mean()
                agreed += int(mad < 2.0)
        except Exception:
            failed += 1
print(json.dumps({"rows": n, "seconds": time.perf_counter() - started, "agreed": agreed, "failed": failed}))
