//! The sandbox's Python runtime: a private virtual environment in the app's data folder with
//! the pinned, hash-checked Pillow, NumPy and OpenCV of `assets/sandbox/requirements.lock`,
//! made with the system's python3 (>= 3.9) and pip, or with uv when it is on PATH; the worker
//! script beside it; a self-test at the end.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::SandboxError;

pub const LOCK: &str = include_str!("../../assets/sandbox/requirements.lock");
pub const WORKER: &str = include_str!("../../assets/sandbox/worker.py");

/// What a ready runtime holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Installed {
    pub python: String,
    pub base_prefix: PathBuf,
    pub pillow: String,
    pub numpy: String,
    pub opencv: String,
    /// SHA-256 of the lock file it was made from.
    pub lock_sha256: String,
    pub locked: bool,
    pub made_with: String,
}

/// A runtime folder (made or not).
#[derive(Debug, Clone)]
pub struct Runtime {
    pub dir: PathBuf,
}

fn lock_hash() -> String {
    hex::encode(Sha256::digest(LOCK.as_bytes()))
}

impl Runtime {
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn python(&self) -> PathBuf {
        self.dir.join("venv/bin/python")
    }

    pub fn worker(&self) -> PathBuf {
        self.dir.join("worker.py")
    }

    fn stamp(&self) -> PathBuf {
        self.dir.join("installed.json")
    }

    /// The installed state, when the runtime is complete and made from this build's lock.
    pub fn installed(&self) -> Option<Installed> {
        let text = std::fs::read_to_string(self.stamp()).ok()?;
        let i: Installed = serde_json::from_str(&text).ok()?;
        (i.lock_sha256 == lock_hash() && self.python().exists()).then_some(i)
    }

    /// Write this build's worker script (cheap; keeps it in step with the app).
    pub fn write_worker(&self) -> Result<(), SandboxError> {
        let path = self.worker();
        if std::fs::read_to_string(&path).ok().as_deref() == Some(WORKER) {
            return Ok(());
        }
        std::fs::create_dir_all(&self.dir).map_err(SandboxError::io(&self.dir))?;
        let tmp = self.dir.join("worker.py.tmp");
        std::fs::write(&tmp, WORKER).map_err(SandboxError::io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(SandboxError::io(&path))
    }

    /// The runtime, made from the lock first when this is its first use: the one way every
    /// caller (the app, `run`, `sandbox run`) gets a runtime before starting a worker.
    pub fn ensure(&self, progress: &mut dyn FnMut(&str)) -> Result<Installed, SandboxError> {
        match self.installed() {
            Some(i) => Ok(i),
            None => {
                progress("setting up the sandbox runtime (first use)");
                self.setup(false, progress)
            }
        }
    }

    /// Make the runtime (idempotent: nothing to do when it is current). `unlocked` installs
    /// the same versions without hash checking, for platforms the lock has no wheels for.
    pub fn setup(
        &self,
        unlocked: bool,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Installed, SandboxError> {
        if let Some(i) = self.installed() {
            self.write_worker()?;
            progress("the sandbox runtime is up to date");
            return Ok(i);
        }
        std::fs::create_dir_all(&self.dir).map_err(SandboxError::io(&self.dir))?;
        let venv = self.dir.join("venv");
        if venv.exists() {
            std::fs::remove_dir_all(&venv).map_err(SandboxError::io(&venv))?;
        }
        let lock = self.dir.join("requirements.lock");
        std::fs::write(&lock, LOCK).map_err(SandboxError::io(&lock))?;
        let uv = which("uv");
        let python3 = system_python();
        let made_with = match (&uv, &python3) {
            (Some(uv), _) => {
                progress("making the environment with uv");
                run(Command::new(uv).arg("venv").arg("--quiet").arg(&venv).args(
                    python3
                        .as_ref()
                        .map(|(p, _)| vec!["--python".into(), p.clone()])
                        .unwrap_or_default(),
                ))?;
                progress("installing Pillow, NumPy and OpenCV (uv)");
                let mut c = Command::new(uv);
                c.args(["pip", "install", "--quiet", "--python"])
                    .arg(self.python());
                if !unlocked {
                    c.arg("--require-hashes");
                }
                run(c.arg("-r").arg(&lock))?;
                "uv".to_owned()
            }
            (None, Some((python, version))) => {
                progress(&format!("making the environment with {python} ({version})"));
                run(Command::new(python).args(["-m", "venv"]).arg(&venv))?;
                progress("installing Pillow, NumPy and OpenCV (pip; about 70 MB on first run)");
                let mut c = Command::new(self.python());
                c.args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--only-binary=:all:",
                ]);
                if !unlocked {
                    c.arg("--require-hashes");
                }
                run(c.arg("-r").arg(&lock)).map_err(|e| match e {
                    SandboxError::Setup(m) if !unlocked && m.contains("hash") => SandboxError::Setup(format!(
                        "{m}\nthe lock file has wheels for CPython 3.10-3.13 on Linux x86_64; on other platforms run `thyme-studio sandbox setup --unlocked`"
                    )),
                    other => other,
                })?;
                format!("python3 {version} + pip")
            }
            (None, None) => {
                return Err(SandboxError::Setup(
                    "neither python3 (3.9 or newer, with venv) nor uv was found; install one (e.g. `apt install python3-venv` or `pip install uv`)".into(),
                ));
            }
        };
        self.write_worker()?;
        progress("self-test");
        let mut installed = self.self_test()?;
        installed.locked = !unlocked;
        installed.made_with = made_with;
        let stamp = self.stamp();
        std::fs::write(
            &stamp,
            serde_json::to_string_pretty(&installed)
                .map_err(|e| SandboxError::Setup(e.to_string()))?,
        )
        .map_err(SandboxError::io(&stamp))?;
        Ok(installed)
    }

    /// Import the libraries in the environment and report their versions.
    pub fn self_test(&self) -> Result<Installed, SandboxError> {
        let out = Command::new(self.python())
            .args([
                "-I",
                "-c",
                "import sys, json, PIL, numpy, cv2\n\
                 from PIL import Image\n\
                 im = Image.new('RGB', (300, 200)).crop((10, 10, 110, 74)).resize((200, 128))\n\
                 a = cv2.resize(numpy.zeros((20, 30, 3), numpy.uint8), (60, 40))\n\
                 assert im.size == (200, 128) and a.shape == (40, 60, 3)\n\
                 print(json.dumps([sys.version.split()[0], sys.base_prefix, PIL.__version__, numpy.__version__, cv2.__version__]))",
            ])
            .env_clear()
            .output()
            .map_err(|e| SandboxError::Setup(format!("{}: {e}", self.python().display())))?;
        if !out.status.success() {
            return Err(SandboxError::Setup(format!(
                "self-test failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let (python, base_prefix, pillow, numpy, opencv): (
            String,
            PathBuf,
            String,
            String,
            String,
        ) = serde_json::from_slice(&out.stdout)
            .map_err(|e| SandboxError::Setup(format!("self-test output: {e}")))?;
        Ok(Installed {
            python,
            base_prefix,
            pillow,
            numpy,
            opencv,
            lock_sha256: lock_hash(),
            locked: true,
            made_with: String::new(),
        })
    }
}

fn run(c: &mut Command) -> Result<(), SandboxError> {
    let out = c
        .output()
        .map_err(|e| SandboxError::Setup(format!("{:?}: {e}", c.get_program())))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(12).collect();
        Err(SandboxError::Setup(format!(
            "{:?} failed: {}",
            c.get_program(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )))
    }
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// python3 on PATH when it is 3.9 or newer and has venv: (program, version).
pub fn system_python() -> Option<(String, String)> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys, venv, ensurepip; print('%d.%d.%d' % sys.version_info[:3])",
        ])
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let mut parts = version.split('.').filter_map(|p| p.parse::<u32>().ok());
    let ok = out.status.success()
        && matches!((parts.next(), parts.next()), (Some(3), Some(minor)) if minor >= 9);
    ok.then(|| ("python3".to_owned(), version))
}
