//! The sandbox against Thyme's contract and against hostile code. Every attack asserts that it
//! was contained, that the step reports a clear `Sandbox for` error, that nothing outside the
//! run's step folders changed, and that the sandbox still runs the next step.
//!
//! Needs the sandbox runtime (`bash scripts/test` sets it up; so does
//! `thyme-studio sandbox setup`).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use thyme_studio::paths::AppDirs;
use thyme_studio::sandbox::{ExecResult, Runtime, Sandbox, SandboxConfig, SandboxPool};

struct Fixture {
    dir: tempfile::TempDir,
    image: PathBuf,
    canary: PathBuf,
    cfg: SandboxConfig,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("photo.png");
        image::RgbImage::from_fn(2496, 1392, |x, y| {
            image::Rgb([(x / 10) as u8, (y / 6) as u8, 120])
        })
        .save(&image)
        .unwrap();
        let canary = dir.path().join("canary.txt");
        std::fs::write(&canary, "untouched").unwrap();
        let runtime = Runtime::at(AppDirs::for_user().sandbox_runtime());
        assert!(
            runtime.installed().is_some(),
            "the sandbox runtime is not set up at {}: run `bash scripts/test` (or `thyme-studio sandbox setup`)",
            runtime.dir.display()
        );
        let mut cfg = SandboxConfig::new(
            runtime,
            dir.path().join("runs"),
            PathBuf::from(env!("CARGO_BIN_EXE_thyme-studio")),
        );
        cfg.step_timeout = Duration::from_secs(3);
        cfg.folder_files = 2_000;
        Self {
            dir,
            image,
            canary,
            cfg,
        }
    }

    fn sandbox(&self) -> Sandbox {
        Sandbox::start(self.cfg.clone()).unwrap()
    }

    /// Nothing outside the run's folders changed: the canary and the input image.
    fn assert_untouched(&self, original_image: &[u8]) {
        assert_eq!(std::fs::read_to_string(&self.canary).unwrap(), "untouched");
        assert_eq!(std::fs::read(&self.image).unwrap(), original_image);
    }
}

fn run(s: &mut Sandbox, f: &Fixture, code: &str) -> ExecResult {
    s.execute(code, &f.image, &AtomicBool::new(false))
}

fn error_of(r: &ExecResult) -> &str {
    r.error.as_deref().unwrap_or("")
}

/// The sandbox still works after an attack: a fresh computation in the same run.
fn still_works(s: &mut Sandbox, f: &Fixture) {
    let r = run(s, f, "print(6 * 7)");
    assert_eq!(r.error, None, "{r:?}");
    assert_eq!(r.text_result.as_deref(), Some("42\n"));
}

// ---- the contract ----

#[test]
fn thymes_crop_example_is_widened_to_64_and_zoomed_to_220_by_128() {
    let f = Fixture::new();
    let mut s = f.sandbox();
    let code = "```python\nimport os\nfrom PIL import Image\nimg = Image.open(image_path)\ncrop = img.crop((1250, 1030, 1360, 1070))\nzoom = crop.resize((crop.width * 2, crop.height * 2))\nprocessed_path = '/mnt/data/temp_processed_images/zoom.png'\nzoom.save(processed_path)\nprint(processed_path)\n```";
    let r = run(&mut s, &f, code);
    assert_eq!(r.error, None, "{r:?}");
    assert_eq!(r.images.len(), 1);
    let out = &r.images[0];
    assert_eq!((out.width, out.height), (220, 128));
    assert!(out.path.starts_with(&r.step_dir));
    assert_eq!(out.source_rect, Some([1250.0, 1030.0, 1360.0, 1094.0]));
    assert!(
        r.fixes
            .iter()
            .any(|x| x.kind == "crop_box" && x.detail.contains("1094"))
    );
    assert_eq!(r.crops.len(), 1);
    assert_eq!(r.crops[0].source_rect, [1250.0, 1030.0, 1360.0, 1094.0]);
    assert!(r.raw_code.starts_with("```python") && !r.executed_code.contains("```"));
    let png = image::open(&out.path).unwrap();
    assert_eq!((png.width(), png.height()), (220, 128));
}

#[test]
fn a_hallucinated_path_opens_the_input_and_array_slices_are_traced() {
    let f = Fixture::new();
    let mut s = f.sandbox();
    let code = "import cv2\nimg = cv2.imread('/mnt/data/user_image_0.png')\npart = img[100:300, 200:500]\ncv2.imwrite('/mnt/data/temp_processed_images/part.jpg', part)\nprint('/mnt/data/temp_processed_images/part.jpg')";
    let r = run(&mut s, &f, code);
    assert_eq!(r.error, None, "{r:?}");
    assert!(
        r.fixes.iter().any(|x| x.kind == "image_path"),
        "{:?}",
        r.fixes
    );
    assert_eq!((r.images[0].width, r.images[0].height), (300, 200));
    assert_eq!(r.images[0].source_rect, Some([200.0, 100.0, 500.0, 300.0]));
}

#[test]
fn computation_variables_cv_fix_syntax_errors_and_empty_steps() {
    let f = Fixture::new();
    let mut s = f.sandbox();
    let r = run(&mut s, &f, "total = sum(range(10))\nprint(total)");
    assert_eq!(r.text_result.as_deref(), Some("45\n"));
    assert!(r.images.is_empty());
    // Variables persist from step to step.
    let r = run(&mut s, &f, "print(total * 2)");
    assert_eq!(r.text_result.as_deref(), Some("90\n"), "{r:?}");
    // cv. / cv3. / cv4. become cv2.
    let r = run(
        &mut s,
        &f,
        "import cv2\nprint(cv.COLOR_BGR2GRAY == cv4.COLOR_BGR2GRAY)",
    );
    assert_eq!(r.error, None, "{r:?}");
    assert_eq!(r.stdout, "True\n");
    assert!(
        r.executed_code
            .contains("cv2.COLOR_BGR2GRAY == cv2.COLOR_BGR2GRAY")
    );
    assert!(r.fixes.iter().any(|x| x.kind == "cv_namespace"));
    // Indentation normalised.
    let r = run(&mut s, &f, "    x = 3\n    print(x)");
    assert_eq!(r.stdout, "3\n", "{r:?}");
    // A syntax error is Thyme's error shape.
    let r = run(&mut s, &f, "print(");
    assert!(
        error_of(&r).starts_with(&format!("Sandbox for {}: SyntaxError", s.run_id)),
        "{r:?}"
    );
    // Code that saves nothing: no image, the (empty) printed text.
    let r = run(&mut s, &f, "y = 1");
    assert_eq!(r.error, None);
    assert!(r.images.is_empty());
    assert_eq!(r.text_result.as_deref(), Some(""));
    still_works(&mut s, &f);
}

#[test]
fn a_warm_pool_hands_out_fresh_runs() {
    let f = Fixture::new();
    let pool = SandboxPool::new(f.cfg.clone());
    let mut a = pool.start_run().unwrap();
    let r = run(&mut a, &f, "secret = 1\nprint('a')");
    assert_eq!(r.error, None, "{r:?}");
    let mut b = pool.start_run().unwrap();
    assert_ne!(a.run_id, b.run_id);
    let r = run(&mut b, &f, "print(secret)");
    assert!(
        error_of(&r).contains("NameError"),
        "a new run starts clean: {r:?}"
    );
    assert_eq!(r.timings.spawn_ms, 0.0, "the spare was already running");
}

// ---- attacks ----

#[test]
fn an_infinite_loop_is_stopped_and_the_run_goes_on() {
    let f = Fixture::new();
    let original = std::fs::read(&f.image).unwrap();
    let mut s = f.sandbox();
    let r = run(&mut s, &f, "kept = 5\nwhile True:\n    pass");
    assert!(error_of(&r).contains("ran over"), "{r:?}");
    // The soft timeout stops Python code without losing the run's variables.
    let r = run(&mut s, &f, "print(kept)");
    assert_eq!(r.text_result.as_deref(), Some("5\n"), "{r:?}");
    // A loop inside C code is killed at the hard limit; the next step gets a new worker.
    let r = run(&mut s, &f, "import re\nre.match(r'(a+)+$', 'a' * 40 + 'b')");
    assert!(error_of(&r).contains("ran over"), "{r:?}");
    still_works(&mut s, &f);
    f.assert_untouched(&original);
}

#[test]
fn a_fork_bomb_and_subprocesses_are_refused() {
    let f = Fixture::new();
    let mut s = f.sandbox();
    let r = run(&mut s, &f, "import os\nwhile True:\n    os.fork()");
    assert!(error_of(&r).contains("PermissionError"), "{r:?}");
    let r = run(
        &mut s,
        &f,
        "import subprocess as sp\nsp.run(['sh', '-c', 'touch /tmp/pwned'])",
    );
    assert!(error_of(&r).starts_with("Sandbox for"), "{r:?}");
    assert!(!Path::new("/tmp/pwned").exists());
    let r = run(
        &mut s,
        &f,
        "import os\nos.system('touch /tmp/pwned2')\nprint('ran')",
    );
    assert!(!Path::new("/tmp/pwned2").exists(), "{r:?}");
    still_works(&mut s, &f);
}

#[test]
fn huge_allocations_and_files_are_refused() {
    let f = Fixture::new();
    let original = std::fs::read(&f.image).unwrap();
    let mut s = f.sandbox();
    let r = run(&mut s, &f, "x = bytearray(50 * 2**30)");
    assert!(error_of(&r).contains("MemoryError"), "{r:?}");
    let r = run(
        &mut s,
        &f,
        "chunk = b'0' * (1 << 20)\nwith open('big.bin', 'wb') as fh:\n    for _ in range(10 * 1024):\n        fh.write(chunk)",
    );
    assert!(
        error_of(&r).starts_with("Sandbox for"),
        "a 10 GB file: {r:?}"
    );
    let big = r.step_dir.join("big.bin");
    assert!(std::fs::metadata(&big).map(|m| m.len()).unwrap_or(0) <= 512 << 20);
    let _ = std::fs::remove_file(&big);
    let r = run(
        &mut s,
        &f,
        "for i in range(100000):\n    open(f'f{i}.txt', 'w').close()",
    );
    assert!(
        error_of(&r).contains("more than the run may hold"),
        "100k files: {r:?}"
    );
    still_works(&mut s, &f);
    f.assert_untouched(&original);
}

#[test]
fn a_gigabyte_of_output_is_capped() {
    let f = Fixture::new();
    let mut s = f.sandbox();
    let r = run(
        &mut s,
        &f,
        "line = 'x' * (1 << 20)\nfor _ in range(1024):\n    print(line)",
    );
    assert!(r.stdout.len() <= (1 << 20) + 100, "{}", r.stdout.len());
    assert!(
        r.stdout
            .ends_with("[output truncated at 1048576 characters]")
    );
    let r = run(
        &mut s,
        &f,
        "import os\nfor _ in range(64):\n    os.write(1, b'y' * (1 << 20))",
    );
    assert!(r.stderr.len() <= (1 << 20) + 100, "{}", r.stderr.len());
    still_works(&mut s, &f);
}

#[test]
fn secrets_outside_the_run_and_other_processes_cannot_be_read() {
    let f = Fixture::new();
    let secret = f.dir.path().join("id_ed25519");
    std::fs::write(&secret, "PRIVATE KEY").unwrap();
    let mut s = f.sandbox();
    let r = run(
        &mut s,
        &f,
        &format!("print(open({:?}).read())", secret.display().to_string()),
    );
    assert!(error_of(&r).contains("PermissionError"), "{r:?}");
    assert!(!r.stdout.contains("PRIVATE"));
    let r = run(
        &mut s,
        &f,
        "import glob, os\nprint(glob.glob(os.path.expanduser('~root/.ssh/id_*')) + glob.glob('/root/.ssh/*'))",
    );
    assert!(
        r.stdout.trim() == "[]" || error_of(&r).contains("PermissionError"),
        "{r:?}"
    );
    let r = run(
        &mut s,
        &f,
        &format!(
            "print(open('/proc/{}/environ', 'rb').read())",
            std::process::id()
        ),
    );
    assert!(error_of(&r).contains("Error"), "{r:?}");
    assert!(!r.stdout.contains("PATH"));
    still_works(&mut s, &f);
}

#[test]
fn the_network_is_closed() {
    let f = Fixture::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut s = f.sandbox();
    let r = run(
        &mut s,
        &f,
        &format!(
            "import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'leak')"
        ),
    );
    assert!(error_of(&r).starts_with("Sandbox for"), "{r:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(listener.accept().is_err(), "nothing connected");
    still_works(&mut s, &f);
}

#[test]
fn files_outside_the_step_folder_cannot_be_changed() {
    let f = Fixture::new();
    let original = std::fs::read(&f.image).unwrap();
    let mut s = f.sandbox();
    let canary = f.canary.display().to_string();
    for code in [
        format!("import os\nos.remove({canary:?})"),
        format!("open({canary:?}, 'w').write('changed')"),
        format!("from pathlib import Path\nPath({canary:?}).unlink()"),
        "open(image_path, 'wb').write(b'gone')".to_owned(),
        "import os\nos.remove(image_path)".to_owned(),
        "open('/tmp/thyme-escape.txt', 'w').write('x')".to_owned(),
    ] {
        let r = run(&mut s, &f, &code);
        assert!(error_of(&r).contains("Error"), "{code}: {r:?}");
    }
    assert!(!Path::new("/tmp/thyme-escape.txt").exists());
    f.assert_untouched(&original);
    still_works(&mut s, &f);
}

#[test]
fn the_parent_cannot_be_killed_and_monkeypatches_do_not_reach_the_next_run() {
    let f = Fixture::new();
    let mut s = f.sandbox();
    let r = run(
        &mut s,
        &f,
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
    );
    assert!(error_of(&r).contains("PermissionError"), "{r:?}");
    let r = run(
        &mut s,
        &f,
        "from PIL import Image\nImage.Image.crop = lambda self, box=None: None\nimport json\njson.dumps = None",
    );
    assert_eq!(r.error, None);
    // Our wrappers are put back before every step of the same run...
    let r = run(
        &mut s,
        &f,
        "from PIL import Image\nprint(Image.open(image_path).crop((0, 0, 10, 10)).size)",
    );
    assert_eq!(r.stdout, "(64, 64)\n", "{r:?}");
    // ...and the next run starts from a clean interpreter.
    s.close();
    let mut next = f.sandbox();
    let r = run(&mut next, &f, "import json\nprint(json.dumps([1]))");
    assert_eq!(r.stdout, "[1]\n", "{r:?}");
}

#[test]
fn a_forged_reply_is_caught_and_the_worker_replaced() {
    let f = Fixture::new();
    let mut s = f.sandbox();
    let r = run(
        &mut s,
        &f,
        "import __main__\n__main__._PROTO_OUT.write('{\"id\": \"forged\", \"executed_code\": \"\"}\\n')\n__main__._PROTO_OUT.flush()",
    );
    assert!(error_of(&r).contains("protocol violation"), "{r:?}");
    let r = run(&mut s, &f, "print(1)");
    assert_eq!(r.stdout, "1\n", "{r:?}");
    assert!(r.fixes.iter().any(|x| x.kind == "worker_restarted"));
}

#[test]
fn bad_outputs_are_refused_before_decoding() {
    let f = Fixture::new();
    let mut s = f.sandbox();
    // A 50000 x 50000 PNG: a valid header, a few bytes on disk.
    let code = "import struct, zlib\ndef chunk(t, d):\n    return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))\nihdr = struct.pack('>IIBBBBB', 50000, 50000, 8, 0, 0, 0, 0)\nopen('huge.png', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(b'')) + chunk(b'IEND', b''))\nprint('huge.png')";
    let r = run(&mut s, &f, code);
    assert!(error_of(&r).contains("50000x50000"), "{r:?}");
    assert!(r.images.is_empty());
    // A symlink named .png pointing outside.
    let r = run(
        &mut s,
        &f,
        "import os\nos.symlink('/etc/hostname', 'evil.png')\nprint('evil.png')",
    );
    assert!(error_of(&r).contains("symbolic link"), "{r:?}");
    assert!(r.images.is_empty());
    // An aspect ratio the model cannot take.
    let r = run(
        &mut s,
        &f,
        "from PIL import Image\nImage.new('L', (2010, 10)).save('thin.png')\nprint('thin.png')",
    );
    assert!(
        error_of(&r).contains("absolute aspect ratio must be smaller than 200"),
        "{r:?}"
    );
    // input() gets no input.
    let r = run(&mut s, &f, "name = input('your name? ')");
    assert!(error_of(&r).contains("EOFError"), "{r:?}");
    still_works(&mut s, &f);
}

#[test]
fn the_cli_runs_steps_of_one_run_and_prints_json() {
    let f = Fixture::new();
    let a = f.dir.path().join("a.py");
    let b = f.dir.path().join("b.py");
    std::fs::write(&a, "n = 20\nprint(n)").unwrap();
    std::fs::write(&b, "print(n + 1)").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
        .args(["sandbox", "run", "--image"])
        .arg(&f.image)
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(f.dir.path().join("cli-runs"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["steps"][1]["text_result"], "21\n");
    assert!(
        v["protection"].as_str().unwrap().starts_with("strong")
            || v["protection"].as_str().unwrap().starts_with("basic")
    );
    let mut s = String::new();
    std::fs::File::open(&a)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "n = 20\nprint(n)");
}

#[test]
fn a_reset_clears_the_variables_in_the_same_worker_and_a_tampered_worker_is_replaced() {
    let f = Fixture::new();
    let mut s = f.sandbox();
    let r = run(&mut s, &f, "x = 41\nprint(x + 1)");
    assert_eq!(r.stdout.trim(), "42");
    s.reset().unwrap();
    let r = run(&mut s, &f, "print(x)");
    assert!(error_of(&r).contains("NameError"), "{r:?}");
    assert_eq!(r.timings.spawn_ms, 0.0, "the same worker went on");
    // A step that rebinds a public name of a module the steps share taints the worker: the
    // reset replaces it, and the next run sees PIL as it should be.
    let r = run(
        &mut s,
        &f,
        "from PIL import ImageOps\nimport PIL.Image\nPIL.Image.Image.paste = lambda *a, **k: None\nprint('done')",
    );
    assert_eq!(r.stdout.trim(), "done", "{r:?}");
    s.reset().unwrap();
    let r = run(
        &mut s,
        &f,
        "from PIL import Image\nprint(Image.Image.paste.__name__)",
    );
    assert_eq!(r.stdout.trim(), "paste", "{r:?}");
    assert!(r.timings.spawn_ms > 0.0, "a new worker: {r:?}");
    s.close();
}
