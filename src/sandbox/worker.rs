//! One worker process: started through the confining launcher with a clean environment,
//! spoken to in JSON lines on its stdin/stdout, its stderr (raw writes of the step) drained
//! into a capped buffer, killed as a process group.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::confine::{Layer, Policy};
use super::{SandboxConfig, SandboxError};

/// The longest protocol line accepted (a reply holds at most ~2 MiB of captured text).
const MAX_LINE: usize = 16 << 20;
/// Raw output kept from the worker's stderr per step.
pub const STREAM_CAP: usize = 1 << 20;

/// The worker's first line.
#[derive(Debug, Clone, Deserialize)]
pub struct Hello {
    pub python: String,
    pub pillow: String,
    pub numpy: String,
    pub opencv: Option<String>,
    pub import_ms: f64,
    #[serde(default)]
    pub layers: String,
}

/// What the protocol reader saw.
pub enum Line {
    Text(String),
    TooLong,
    Closed,
}

/// The run's folders: `input/` (read only), `steps/` and `tmp/` (read and write).
#[derive(Debug, Clone)]
pub struct RunDirs {
    pub root: PathBuf,
}

impl RunDirs {
    pub fn input(&self) -> PathBuf {
        self.root.join("input")
    }
    pub fn steps(&self) -> PathBuf {
        self.root.join("steps")
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub(crate) fn make(&self) -> Result<(), SandboxError> {
        for d in [self.input(), self.steps(), self.tmp()] {
            std::fs::create_dir_all(&d).map_err(SandboxError::io(&d))?;
        }
        Ok(())
    }
}

pub struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Line>,
    stderr: Arc<Mutex<(Vec<u8>, bool)>>,
    pub hello: Hello,
    pub layers: Vec<Layer>,
    pub dirs: RunDirs,
}

impl Worker {
    /// Start a worker for a run in `dirs` and wait for its hello.
    pub fn spawn(cfg: &SandboxConfig, dirs: RunDirs) -> Result<Self, SandboxError> {
        dirs.make()?;
        let installed = cfg.runtime.installed().ok_or_else(|| {
            SandboxError::Setup(
                "the sandbox runtime is not set up: run `thyme-studio sandbox setup`".into(),
            )
        })?;
        cfg.runtime.write_worker()?;
        let mut read: Vec<PathBuf> = vec![
            cfg.runtime.dir.clone(),
            installed.base_prefix.clone(),
            dirs.input(),
        ];
        for p in [
            "/usr",
            "/lib",
            "/lib64",
            "/bin",
            "/etc/ld.so.cache",
            "/etc/ld.so.conf",
            "/etc/ld.so.conf.d",
            "/etc/localtime",
            "/dev/null",
            "/dev/zero",
            "/dev/urandom",
            "/proc/self",
            "/sys/devices/system/cpu",
        ] {
            read.push(PathBuf::from(p));
        }
        // The base Python may live behind symlinks (pyenv shims, /usr/bin/python3 -> ...).
        if let Ok(real) = std::fs::canonicalize(cfg.runtime.python())
            && let Some(dir) = real.parent().and_then(Path::parent)
        {
            read.push(dir.to_owned());
        }
        let policy = Policy {
            write: vec![dirs.steps(), dirs.tmp()],
            read,
            cpu_seconds: cfg.cpu_seconds,
            memory_bytes: cfg.memory_bytes,
            file_bytes: cfg.file_bytes,
            open_files: 256,
        };
        let policy_json =
            serde_json::to_string(&policy).map_err(|e| SandboxError::Setup(e.to_string()))?;
        let mut child = Command::new(&cfg.launcher)
            .arg("sandbox-launch")
            .arg("--policy")
            .arg(policy_json)
            .arg("--")
            .arg(cfg.runtime.python())
            .args(["-I", "-B"])
            .arg(cfg.runtime.worker())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", dirs.tmp())
            .env("TMPDIR", dirs.tmp())
            .env("LANG", "C.UTF-8")
            .env("OMP_NUM_THREADS", "2")
            .env("OPENCV_LOG_LEVEL", "ERROR")
            .current_dir(dirs.steps())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| SandboxError::Setup(format!("{}: {e}", cfg.launcher.display())))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            return Err(SandboxError::Setup(
                "the worker's pipes were not made".into(),
            ));
        };
        let (tx, lines) = channel();
        std::thread::Builder::new()
            .name("sandbox-reply".into())
            .spawn(move || {
                let mut reader = BufReader::with_capacity(1 << 16, stdout);
                loop {
                    let mut buf = Vec::new();
                    match (&mut reader)
                        .take(MAX_LINE as u64 + 1)
                        .read_until(b'\n', &mut buf)
                    {
                        Ok(0) | Err(_) => {
                            let _ = tx.send(Line::Closed);
                            return;
                        }
                        Ok(_) if buf.len() > MAX_LINE => {
                            let _ = tx.send(Line::TooLong);
                            return;
                        }
                        Ok(_) => {
                            if tx
                                .send(Line::Text(String::from_utf8_lossy(&buf).into_owned()))
                                .is_err()
                            {
                                return;
                            }
                        }
                    }
                }
            })
            .map_err(|e| SandboxError::Setup(e.to_string()))?;
        let captured = Arc::new(Mutex::new((Vec::new(), false)));
        let sink = captured.clone();
        std::thread::Builder::new()
            .name("sandbox-stderr".into())
            .spawn(move || {
                let mut stderr = stderr;
                let mut chunk = [0u8; 8192];
                while let Ok(n) = stderr.read(&mut chunk) {
                    if n == 0 {
                        return;
                    }
                    if let Ok(mut g) = sink.lock() {
                        let room = STREAM_CAP.saturating_sub(g.0.len());
                        let take = room.min(n);
                        g.0.extend_from_slice(&chunk[..take]);
                        if take < n {
                            g.1 = true;
                        }
                    }
                }
            })
            .map_err(|e| SandboxError::Setup(e.to_string()))?;
        let mut worker = Self {
            child,
            stdin,
            lines,
            stderr: captured,
            hello: Hello {
                python: String::new(),
                pillow: String::new(),
                numpy: String::new(),
                opencv: None,
                import_ms: 0.0,
                layers: String::new(),
            },
            layers: Vec::new(),
            dirs,
        };
        match worker.next_line(Duration::from_secs(60)) {
            Ok(Line::Text(t)) => match serde_json::from_str::<Hello>(&t) {
                Ok(h) => {
                    worker.layers = serde_json::from_str(&h.layers).unwrap_or_default();
                    worker.hello = h;
                    Ok(worker)
                }
                Err(e) => {
                    let raw = worker.take_stderr().0;
                    worker.kill();
                    Err(SandboxError::Setup(format!(
                        "the worker did not start: {e}: {t}{raw}"
                    )))
                }
            },
            _ => {
                let raw = worker.take_stderr().0;
                worker.kill();
                Err(SandboxError::Setup(format!(
                    "the worker did not start: {raw}"
                )))
            }
        }
    }

    pub fn send(&mut self, line: &str) -> std::io::Result<()> {
        self.stdin.write_all(line.as_bytes())?;
        self.stdin.write_all(b"\n")?;
        self.stdin.flush()
    }

    pub fn next_line(&self, wait: Duration) -> Result<Line, RecvTimeoutError> {
        self.lines.recv_timeout(wait)
    }

    /// The raw output written since the last call, and whether some was dropped.
    pub fn take_stderr(&self) -> (String, bool) {
        match self.stderr.lock() {
            Ok(mut g) => {
                let text = String::from_utf8_lossy(&g.0).into_owned();
                let truncated = g.1;
                g.0.clear();
                g.1 = false;
                (text, truncated)
            }
            Err(_) => (String::new(), false),
        }
    }

    /// Is the process still there?
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kill the worker's whole process group and reap it.
    pub fn kill(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: killpg sends a signal; the group is the worker's own session (setsid in the
        // launcher), so nothing else is hit.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Ask the worker to exit; kill it if it does not within a moment.
    pub fn close(mut self) {
        let _ = self.send(r#"{"cmd": "exit"}"#);
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.alive() {
            self.kill();
        }
    }
}
