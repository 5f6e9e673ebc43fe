"""The peer of `thyme-studio bench traces`: a plain Python loop that reads a JSONL of runs with
json.loads, one line at a time, and collects what a run list shows. Prints seconds as JSON:
{"first_rows": ..., "total": ...} (first_rows: the first 1000 runs)."""

import json
import sys
import time

started = time.perf_counter()
first = None
rows = []
with open(sys.argv[1], "rb") as f:
    for line in f:
        if not line.strip():
            continue
        run = json.loads(line)
        summary = run.get("summary") or {}
        rows.append((run["run"]["id"], run["run"].get("outcome"), summary.get("flags"), summary.get("steps")))
        if len(rows) == 1000 and first is None:
            first = time.perf_counter() - started
print(json.dumps({"first_rows": first, "total": time.perf_counter() - started, "runs": len(rows)}))
