"""Pillow as the peer of thyme-studio's canvas benchmark.

Prints one JSON line: seconds to the first displayable pixels (JPEG: Image.draft to the coarsest
DCT scale whose longest side is still >= 1024, then load; other formats: a full load) and seconds
to a full pyramid of 512 px tiles (full load, then reduce(2) level by level, every tile cropped
and kept in memory; nothing is written to disk). With --first-only: the best of three first-pixel
times only; with --full-only: the best of three full-resolution decodes (open, convert to RGB).
"""
import json
import sys
import time

from PIL import Image

Image.MAX_IMAGE_PIXELS = None
TILE = 512


def first_pixels(path):
    t = time.perf_counter()
    im = Image.open(path)
    w, h = im.size
    if im.format == "JPEG":
        scale = 8
        while scale > 1 and max(w, h) // scale < 1024:
            scale //= 2
        im.draft("RGB", (w // scale, h // scale))
    im.load()
    return time.perf_counter() - t


def full_pyramid(path):
    t = time.perf_counter()
    im = Image.open(path)
    im = im.convert("RGB")
    tiles = 0
    while True:
        w, h = im.size
        for y in range(0, h, TILE):
            for x in range(0, w, TILE):
                im.crop((x, y, min(x + TILE, w), min(y + TILE, h))).load()
                tiles += 1
        if w <= TILE and h <= TILE:
            break
        im = im.reduce(2)
    return time.perf_counter() - t, tiles


if __name__ == "__main__":
    path = sys.argv[1]
    if sys.argv[2:] == ["--first-only"]:
        # The best of three first-pixel times, nothing else.
        print(json.dumps({"first": min(first_pixels(path) for _ in range(3))}))
        sys.exit(0)
    if sys.argv[2:] == ["--full-only"]:
        def full_decode():
            t = time.perf_counter()
            Image.open(path).convert("RGB").load()
            return time.perf_counter() - t
        print(json.dumps({"full": min(full_decode() for _ in range(3))}))
        sys.exit(0)
    first = first_pixels(path)
    full, tiles = full_pyramid(path)
    print(json.dumps({"first": first, "full": full, "tiles": tiles}))
