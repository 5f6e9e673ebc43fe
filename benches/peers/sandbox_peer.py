"""The peers of `thyme-studio bench sandbox`.

  sandbox_peer.py fresh IMAGE OUT_DIR CODE_FILE
      What a naive harness does per step: a new python process that imports Pillow, NumPy
      and OpenCV, sets image_path and runs the code. (Timed from outside, by the caller.)
  sandbox_peer.py inprocess IMAGE OUT_DIR CODE_FILE N
      Thyme's own way: exec() in the harness's process, N times; prints the per-step times
      in milliseconds as JSON.
"""

import json
import os
import sys
import time

import cv2  # noqa: F401
import numpy as np  # noqa: F401
from PIL import Image  # noqa: F401


def main():
    mode, image, out_dir, code_file = sys.argv[1:5]
    code = open(code_file).read()
    os.chdir(out_dir)
    if mode == "fresh":
        exec(compile(code, "<step>", "exec"), {"image_path": image, "__name__": "__main__"})
        return
    n = int(sys.argv[5])
    times = []
    import contextlib
    import io

    for _ in range(n):
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(code, "<step>", "exec"), {"image_path": image, "__name__": "__main__"})
        times.append((time.perf_counter() - started) * 1000)
    print(json.dumps(times))


if __name__ == "__main__":
    main()
