"""thyme-studio's sandbox worker: runs model-written Python steps, one agent run per process.

Started by thyme-studio (through its confining launcher) as `python -I worker.py`. The
protocol is JSON lines on the process's original stdin/stdout, which this file moves to
private descriptors before anything else runs; a step's own stdin is /dev/null and its
prints are captured. Requests: {"id", "code", "image_path", "step_dir", "run_id",
"timeout_s"}; one reply per request with the same id. Variables persist from step to step.

Thyme's contract kept here (each automatic fix is recorded in the reply):
- `image_path` is preset; the virtual folder /mnt/data/temp_processed_images/ maps to the
  step folder (in Image.open/save, cv2.imread/imwrite, open, os.makedirs, os.path.exists);
- a path to an image that does not exist is redirected to the input image when opened;
- crop boxes are sorted, clamped to the image and widened to at least 64 px a side;
- `cv.`/`cv3.`/`cv4.` become `cv2.`; indentation is normalised;
- outputs: `processed_path`, else image paths printed, else the printed text.
Every crop is recorded with its rectangle on the original image (for the Inspect view).
"""

import os
import sys

# ---- the protocol channel, moved away from the step's stdin/stdout at once ----
_PROTO_IN = os.fdopen(os.dup(0), "r", encoding="utf-8", newline="\n")
_PROTO_OUT = os.fdopen(os.dup(1), "w", encoding="utf-8", newline="\n")
_devnull = os.open(os.devnull, os.O_RDONLY)
os.dup2(_devnull, 0)
os.close(_devnull)
os.dup2(2, 1)  # raw writes to fd 1 land in the captured stderr stream, never in the protocol
sys.stdin = open(os.devnull, "r")

import builtins  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

# The worker's own references, so a step that replaces json.dumps or print cannot break the
# protocol.
_dumps, _loads = json.dumps, json.loads

_t0 = time.perf_counter()
import numpy as np  # noqa: E402
from PIL import Image, ImageEnhance, ImageFilter, ImageOps  # noqa: E402,F401

try:
    import cv2  # noqa: E402
except Exception:  # the step reports it if it uses cv2
    cv2 = None
_IMPORT_MS = (time.perf_counter() - _t0) * 1000

VIRTUAL_DIR = "/mnt/data/temp_processed_images"
MIN_CROP = 64
STREAM_CAP = 1 << 20
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")

_real = {
    "open": builtins.open,
    "makedirs": os.makedirs,
    "exists": os.path.exists,
    "image_open": Image.open,
    "save": Image.Image.save,
    "crop": Image.Image.crop,
    "resize": Image.Image.resize,
    "copy": Image.Image.copy,
    "convert": Image.Image.convert,
    "filter": Image.Image.filter,
    "rotate": Image.Image.rotate,
    "enhance": ImageEnhance._Enhance.enhance,
    "fromarray": Image.fromarray,
    "np_array": np.array,
    "np_asarray": np.asarray,
}
if cv2 is not None:
    _real.update(imread=cv2.imread, imwrite=cv2.imwrite, cv_resize=cv2.resize, cvt=cv2.cvtColor)


class Step:
    """What the running step has done so far."""

    def __init__(self, image_path, step_dir):
        self.image_path = image_path
        self.step_dir = step_dir
        self.fixes = []
        self.crops = []
        self.saved = []  # (real path, source rect or None)

    def fix(self, kind, detail):
        self.fixes.append({"kind": kind, "detail": detail})


STEP = None


def _map(path):
    """A path under the virtual folder, mapped into the step folder."""
    if isinstance(path, (str, os.PathLike)):
        p = os.fspath(path)
        if STEP is not None and (p == VIRTUAL_DIR or p.startswith(VIRTUAL_DIR + "/")):
            return os.path.join(STEP.step_dir, p[len(VIRTUAL_DIR):].lstrip("/"))
    return path


def _input_or(path):
    """Open a path that exists; a missing image path becomes the input image (recorded)."""
    mapped = _map(path)
    if isinstance(mapped, (str, os.PathLike)) and STEP is not None:
        p = os.fspath(mapped)
        if not _real["exists"](p) and p.lower().endswith(IMAGE_EXT) and STEP.image_path:
            STEP.fix("image_path", f"{p} does not exist: opened the input image instead")
            return STEP.image_path
    return mapped


# ---- where pixels came from: a rectangle on the original image ----

def _rect_of(obj):
    return getattr(obj, "_thyme_rect", None)


def _with_rect(obj, rect):
    if rect is not None:
        try:
            obj._thyme_rect = rect
        except Exception:
            pass
    return obj


class Tracked(np.ndarray):
    """An array that knows which rectangle of the original image it shows."""

    def __array_finalize__(self, parent):
        self._thyme_rect = getattr(parent, "_thyme_rect", None)

    def __getitem__(self, key):
        out = super().__getitem__(key)
        rect = self._thyme_rect
        if rect is not None and isinstance(out, np.ndarray) and isinstance(key, tuple) and len(key) >= 2:
            ys, xs = key[0], key[1]
            if isinstance(ys, slice) and isinstance(xs, slice) and self.ndim >= 2:
                h, w = self.shape[0], self.shape[1]
                y0, y1, _ = ys.indices(h)
                x0, x1, _ = xs.indices(w)
                if y1 > y0 and x1 > x0:
                    sub = _sub_rect(rect, (w, h), (x0, y0, x1, y1))
                    out = out.view(Tracked)
                    out._thyme_rect = sub
                    if STEP is not None:
                        STEP.crops.append({"via": "array slice", "box": [x0, y0, x1, y1], "source_rect": sub})
                    return out
        if isinstance(out, Tracked):
            out._thyme_rect = None if not isinstance(key, tuple) else out._thyme_rect
        return out


def _sub_rect(rect, size, box):
    """The part `box` (in the pixels of an image of `size` showing `rect`) of the original."""
    w, h = size
    sx = (rect[2] - rect[0]) / w
    sy = (rect[3] - rect[1]) / h
    return [rect[0] + box[0] * sx, rect[1] + box[1] * sy, rect[0] + box[2] * sx, rect[1] + box[3] * sy]


def _is_input(path):
    try:
        return STEP is not None and os.path.samefile(path, STEP.image_path)
    except OSError:
        return False


def _full_rect(size):
    return [0.0, 0.0, float(size[0]), float(size[1])]


# ---- the wrapped library calls ----

def image_open(fp, *args, **kwargs):
    fp = _input_or(fp)
    im = _real["image_open"](fp, *args, **kwargs)
    if isinstance(fp, (str, os.PathLike)) and _is_input(fp):
        _with_rect(im, _full_rect(im.size))
    return im


def image_save(self, fp, format=None, **params):
    fp = _map(fp)
    target = os.fspath(fp) if isinstance(fp, (str, os.PathLike)) else None
    fmt = (format or (os.path.splitext(target)[1][1:] if target else "")).lower()
    if fmt == "png" and "compress_level" not in params and "optimize" not in params:
        params["compress_level"] = 1  # the default level costs ~1 s on a noisy crop
    result = _real["save"](self, fp, format, **params)
    if target and STEP is not None:
        STEP.saved.append((os.path.abspath(target), _rect_of(self)))
    return result


def image_crop(self, box=None):
    if box is not None and STEP is not None:
        try:
            fixed = fix_box(tuple(float(v) for v in box), self.size)
        except (TypeError, ValueError):
            fixed = None
        if fixed is not None and tuple(fixed) != tuple(float(v) for v in box):
            STEP.fix("crop_box", f"crop box {list(box)} became {list(fixed)} (sorted, clamped, at least {MIN_CROP} px a side)")
            box = fixed
    out = _real["crop"](self, box)
    rect = _rect_of(self)
    if rect is not None and box is not None:
        sub = _sub_rect(rect, self.size, box)
        _with_rect(out, sub)
        if STEP is not None:
            STEP.crops.append({"via": "Image.crop", "box": [float(v) for v in box], "source_rect": sub})
    return out


def fix_box(box, size):
    """Thyme's crop fix: sort the corners, clamp to the image, widen each side to 64 px by
    moving the far edge, shifting back only where that would leave the image."""
    if len(box) != 4:
        return box
    w, h = size
    x0, x1 = sorted((box[0], box[2]))
    y0, y1 = sorted((box[1], box[3]))
    x0, x1 = max(0.0, min(x0, w)), max(0.0, min(x1, w))
    y0, y1 = max(0.0, min(y0, h)), max(0.0, min(y1, h))

    def widen(a, b, limit):
        if b - a >= MIN_CROP or limit < MIN_CROP:
            return a, b
        b = a + MIN_CROP
        if b > limit:
            a, b = limit - MIN_CROP, limit
        return a, b

    x0, x1 = widen(x0, x1, w)
    y0, y1 = widen(y0, y1, h)
    return (x0, y0, x1, y1)


def _keep_rect(name):
    real = _real[name]

    def wrapped(self, *args, **kwargs):
        return _with_rect(real(self, *args, **kwargs), _rect_of(self))

    return wrapped


def image_rotate(self, angle, *args, **kwargs):
    out = _real["rotate"](self, angle, *args, **kwargs)
    return _with_rect(out, _rect_of(self) if float(angle) % 360 == 0 else None)


def enhance(self, factor):
    return _with_rect(_real["enhance"](self, factor), _rect_of(getattr(self, "image", None)))


def fromarray(obj, *args, **kwargs):
    return _with_rect(_real["fromarray"](np.asarray(obj), *args, **kwargs), _rect_of(obj))


def _np_wrap(name):
    real = _real[name]

    def wrapped(obj, *args, **kwargs):
        out = real(obj, *args, **kwargs)
        rect = _rect_of(obj)
        if rect is not None and isinstance(out, np.ndarray) and out.ndim >= 2:
            out = out.view(Tracked)
            out._thyme_rect = rect
        return out

    return wrapped


def imread(path, *args, **kwargs):
    path = _input_or(path)
    out = _real["imread"](path, *args, **kwargs)
    if out is not None and _is_input(path):
        out = out.view(Tracked)
        out._thyme_rect = _full_rect((out.shape[1], out.shape[0]))
    return out


def imwrite(path, img, *args, **kwargs):
    path = _map(path)
    ok = _real["imwrite"](path, np.asarray(img), *args, **kwargs)
    if ok and STEP is not None:
        STEP.saved.append((os.path.abspath(os.fspath(path)), _rect_of(img)))
    return ok


def cv_keep(name):
    real = _real[name]

    def wrapped(src, *args, **kwargs):
        out = real(np.asarray(src), *args, **kwargs)
        rect = _rect_of(src)
        if rect is not None and isinstance(out, np.ndarray):
            out = out.view(Tracked)
            out._thyme_rect = rect
        return out

    return wrapped


def safe_open(file, *args, **kwargs):
    return _real["open"](_map(file), *args, **kwargs)


def safe_makedirs(name, *args, **kwargs):
    return _real["makedirs"](_map(name), *args, **kwargs)


def safe_exists(path):
    return _real["exists"](_map(path))


# The wrappers made once, so installing them again puts back the very same objects.
_KEEP = {name: _keep_rect(name) for name in ("resize", "copy", "convert", "filter")}
_NP = {name: _np_wrap(name) for name in ("np_array", "np_asarray")}
_CV = {name: cv_keep(name) for name in ("cv_resize", "cvt")} if cv2 is not None else {}


def install():
    """(Re)install the wrappers; run before every step, so a step that replaced them does
    not change the next one."""
    Image.open = image_open
    Image.Image.save = image_save
    Image.Image.crop = image_crop
    for name, wrapped in _KEEP.items():
        setattr(Image.Image, name, wrapped)
    Image.Image.rotate = image_rotate
    ImageEnhance._Enhance.enhance = enhance
    Image.fromarray = fromarray
    np.array = _NP["np_array"]
    np.asarray = _NP["np_asarray"]
    builtins.open = safe_open
    os.makedirs = safe_makedirs
    os.path.exists = safe_exists
    if cv2 is not None:
        cv2.imread = imread
        cv2.imwrite = imwrite
        cv2.resize = _CV["cv_resize"]
        cv2.cvtColor = _CV["cvt"]


# ---- source fixes ----

CODE_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)
CV_ALIAS = re.compile(r"\bcv[34]?\.(?=[A-Za-z_])")


def fix_source(code, step):
    m = CODE_BLOCK.search(code)
    if m:
        code = m.group(1)
        step.fix("fence", "took the code out of its ``` fence")
    fixed = CV_ALIAS.sub("cv2.", code)
    if fixed != code:
        step.fix("cv_namespace", "cv./cv3./cv4. became cv2.")
        code = fixed
    normalised = textwrap.dedent(code.replace("\t", "    ")).strip("\n") + "\n"
    if normalised.strip() != code.strip():
        step.fix("indentation", "indentation normalised")
    return normalised


# ---- running a step ----

class Capped(io.TextIOBase):
    def __init__(self):
        self.parts = []
        self.size = 0
        self.truncated = False

    def writable(self):
        return True

    def write(self, s):
        if self.size < STREAM_CAP:
            room = STREAM_CAP - self.size
            self.parts.append(s[:room])
            self.size += min(len(s), room)
            if len(s) > room:
                self.truncated = True
        else:
            self.truncated = True
        return len(s)

    def text(self):
        t = "".join(self.parts)
        if self.truncated:
            t += f"\n[output truncated at {STREAM_CAP} characters]"
        return t


class StepTimeout(BaseException):
    pass


def _on_alarm(signum, frame):
    raise StepTimeout()


signal.signal(signal.SIGALRM, _on_alarm)

def printed_paths(text):
    """Image paths in printed text, in order (linear in the text's length)."""
    found = []
    for token in text.split():
        token = token.strip("'\"`,;:()[]{}<>")
        if 0 < len(token) <= 4096 and token.lower().endswith(IMAGE_EXT) and token not in found:
            found.append(token)
    return found

# Names model code commonly uses without importing them.
CONTEXT = {"__name__": "__main__", "os": os, "np": np, "numpy": np, "Image": Image}
if cv2 is not None:
    CONTEXT["cv2"] = cv2
BASE_CONTEXT = dict(CONTEXT)


def _watched_modules():
    mods = [builtins, os, os.path, Image, Image.Image, ImageEnhance, np]
    return mods + ([cv2] if cv2 is not None else [])


def _snapshot():
    return [dict(vars(m)) for m in _watched_modules()]


_PRISTINE = None


def reset(req):
    """A new run in this worker: the variables go; the modules must be as they were when the
    worker started (after the wrappers), else the worker says it is tainted and is replaced."""
    install()
    CONTEXT.clear()
    CONTEXT.update(BASE_CONTEXT)
    changed = []
    # A public name rebound or removed (new names, such as submodules imported lazily, and
    # private bookkeeping are not counted).
    for mod, before in zip(_watched_modules(), _PRISTINE or []):
        now = vars(mod)
        for name, value in before.items():
            if not name.startswith("_") and now.get(name, _PRISTINE) is not value:
                changed.append(f"{getattr(mod, '__name__', '?')}.{name}")
    error = f"tainted: {', '.join(sorted(changed)[:5])}" if changed else None
    return {"id": req.get("id"), "executed_code": "", "error": error}


def run(req):
    global STEP
    step = Step(req.get("image_path") or "", req["step_dir"])
    STEP = step
    run_id = req.get("run_id", "run")
    install()
    out, err = Capped(), Capped()
    executed = ""
    error = None
    started = time.perf_counter()
    try:
        executed = fix_source(req["code"], step)
        CONTEXT["image_path"] = step.image_path
        CONTEXT.pop("processed_path", None)
        compiled = compile(executed, f"<step {req.get('step', 0)}>", "exec")
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        signal.setitimer(signal.ITIMER_REAL, float(req.get("timeout_s", 10)))
        try:
            exec(compiled, CONTEXT)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout, sys.stderr = old_out, old_err
    except StepTimeout:
        error = f"Sandbox for {run_id}: the step ran over {req.get('timeout_s', 10)} s and was stopped"
    except SyntaxError as e:
        error = f"Sandbox for {run_id}: SyntaxError: {e.msg} (line {e.lineno})"
    except MemoryError:
        error = f"Sandbox for {run_id}: MemoryError: the step asked for more memory than it may use"
    except EOFError:
        error = f"Sandbox for {run_id}: EOFError: the step asked for input, and there is none"
    except BaseException as e:  # the step's own failure, reported like Thyme's sandbox
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        lines = [l for l in tb if "<step" in l or not l.startswith("  File")]
        error = f"Sandbox for {run_id}: {type(e).__name__}: {e}\n" + "".join(lines[-6:])
    finally:
        install()
        STEP = None
    elapsed = (time.perf_counter() - started) * 1000
    stdout = out.text()
    images = []
    pp = CONTEXT.get("processed_path")
    candidates = []
    if isinstance(pp, (str, os.PathLike)):
        candidates.append(os.fspath(pp))
    elif isinstance(pp, (list, tuple)):
        candidates += [os.fspath(p) for p in pp if isinstance(p, (str, os.PathLike))]
    if not candidates:
        candidates = printed_paths(stdout)
    rect_of_saved = {p: r for p, r in step.saved}
    for c in candidates:
        real = os.path.abspath(_map_static(c, step.step_dir))
        if real not in [i["path"] for i in images]:
            images.append({"path": real, "source_rect": rect_of_saved.get(real)})
    return {
        "id": req["id"],
        "executed_code": executed,
        "fixes": step.fixes,
        "stdout": stdout,
        "stderr": err.text(),
        "stdout_truncated": out.truncated,
        "error": error,
        "images": images,
        "saved": [{"path": p, "source_rect": r} for p, r in step.saved],
        "crops": step.crops,
        "ms": elapsed,
    }


def _map_static(p, step_dir):
    if p == VIRTUAL_DIR or p.startswith(VIRTUAL_DIR + "/"):
        return os.path.join(step_dir, p[len(VIRTUAL_DIR):].lstrip("/"))
    if not os.path.isabs(p):
        return os.path.join(step_dir, p)
    return p


def main():
    global _PRISTINE
    install()
    Image.init()
    _PRISTINE = _snapshot()
    hello = {
        "ready": True,
        "python": sys.version.split()[0],
        "pillow": Image.__version__,
        "numpy": np.__version__,
        "opencv": cv2.__version__ if cv2 is not None else None,
        "import_ms": _IMPORT_MS,
        "layers": os.environ.get("THYME_SANDBOX_LAYERS", ""),
    }
    _PROTO_OUT.write(_dumps(hello) + "\n")
    _PROTO_OUT.flush()
    for line in _PROTO_IN:
        try:
            req = _loads(line)
        except ValueError:
            continue
        if req.get("cmd") == "exit":
            break
        if req.get("cmd") == "reset":
            _PROTO_OUT.write(_dumps(reset(req)) + "\n")
            _PROTO_OUT.flush()
            continue
        try:
            os.chdir(req["step_dir"])
        except OSError:
            pass
        reply = run(req)
        try:
            text = _dumps(reply)
        except (TypeError, ValueError) as e:
            text = _dumps({"id": req.get("id"), "executed_code": "", "error": f"Sandbox for {req.get('run_id')}: the step's result could not be sent: {e}"})
        _PROTO_OUT.write(text + "\n")
        _PROTO_OUT.flush()


if __name__ == "__main__":
    main()
