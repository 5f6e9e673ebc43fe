//! `thyme-studio sandbox ...`: set up the Python sandbox's runtime, check what protects it,
//! run code files in it as the steps of one run.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;

use thyme_studio::sandbox::{Sandbox, SandboxConfig, badge};

use super::Failure;
use super::output::{print_json, progress_bar};

#[derive(clap::Subcommand)]
pub enum SandboxCommand {
    /// Make the private Python environment (pinned Pillow, NumPy, OpenCV) and self-test it.
    Setup {
        /// Install the pinned versions without hash checks (platforms the lock has no wheels for).
        #[arg(long)]
        unlocked: bool,
    },
    /// What is installed and which protections are active.
    Doctor {
        #[arg(long)]
        json: bool,
    },
    /// Run code files as the steps of one run (variables persist) and print the results as JSON.
    Run {
        #[arg(long)]
        image: PathBuf,
        #[arg(required = true)]
        code: Vec<PathBuf>,
        /// Where the run's folder goes (default: the app's data folder).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Seconds per step.
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
    },
}

impl SandboxCommand {
    pub fn run(self) -> Result<(), Failure> {
        let dirs = thyme_studio::paths::AppDirs::for_user();
        let cfg = SandboxConfig::for_app(&dirs).map_err(|e| Failure::Internal(e.into()))?;
        match self {
            SandboxCommand::Setup { unlocked } => setup(&cfg, unlocked),
            SandboxCommand::Doctor { json } => doctor(cfg, json),
            SandboxCommand::Run {
                image,
                code,
                out,
                timeout,
            } => run_code(cfg, &image, &code, out, timeout),
        }
    }
}

/// The runtime, made first when this is its first use, saying so on stderr.
pub fn ensure_runtime(cfg: &SandboxConfig) -> Result<(), Failure> {
    cfg.runtime
        .ensure(&mut |step| eprintln!("{step}"))
        .map_err(|e| Failure::User(e.into()))?;
    Ok(())
}

fn setup(cfg: &SandboxConfig, unlocked: bool) -> Result<(), Failure> {
    let bar = progress_bar();
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let installed = cfg
        .runtime
        .setup(unlocked, &mut |step| bar.set_message(step.to_owned()))
        .map_err(|e| Failure::User(e.into()))?;
    bar.finish_and_clear();
    println!(
        "sandbox runtime ready in {}: Python {}, Pillow {}, NumPy {}, OpenCV {} ({}{})",
        cfg.runtime.dir.display(),
        installed.python,
        installed.pillow,
        installed.numpy,
        installed.opencv,
        installed.made_with,
        hash_checked(installed.locked)
    );
    Ok(())
}

fn hash_checked(locked: bool) -> &'static str {
    if locked {
        ", hash-checked"
    } else {
        ", not hash-checked"
    }
}

fn doctor(cfg: SandboxConfig, json: bool) -> Result<(), Failure> {
    let installed = cfg.runtime.installed();
    let runtime = cfg.runtime.dir.clone();
    let layers = match &installed {
        Some(_) => {
            let (hello, layers) =
                thyme_studio::sandbox::probe(cfg).map_err(|e| Failure::User(e.into()))?;
            if let Some(h) = hello {
                tracing::info!(
                    "worker: Python {}, Pillow {}, NumPy {}, OpenCV {:?}, imports {:.0} ms",
                    h.python,
                    h.pillow,
                    h.numpy,
                    h.opencv,
                    h.import_ms
                );
            }
            layers
        }
        None => Vec::new(),
    };
    if json {
        let v = serde_json::json!({
            "runtime": runtime,
            "installed": installed,
            "layers": layers,
            "badge": badge(&layers),
        });
        return print_json(&v);
    }
    println!("runtime: {}", runtime.display());
    match installed {
        Some(i) => println!(
            "  Python {} ({}), Pillow {}, NumPy {}, OpenCV {}; made with {}{}",
            i.python,
            i.base_prefix.display(),
            i.pillow,
            i.numpy,
            i.opencv,
            i.made_with,
            hash_checked(i.locked)
        ),
        None => {
            println!("  not set up: run `thyme-studio sandbox setup`");
            return Ok(());
        }
    }
    println!("protection: {}", badge(&layers));
    for l in &layers {
        println!(
            "  [{}] {}: {}",
            if l.active { "on " } else { "off" },
            l.name,
            l.detail
        );
    }
    Ok(())
}

fn run_code(
    mut cfg: SandboxConfig,
    image: &std::path::Path,
    code: &[PathBuf],
    out: Option<PathBuf>,
    timeout: f64,
) -> Result<(), Failure> {
    if let Some(out) = out {
        cfg.runs = std::path::absolute(&out).unwrap_or(out);
    }
    if !(timeout > 0.0 && timeout.is_finite()) {
        return Err(Failure::user(
            "--timeout must be a positive number of seconds",
        ));
    }
    cfg.step_timeout = std::time::Duration::from_secs_f64(timeout);
    ensure_runtime(&cfg)?;
    let image = std::path::absolute(image).unwrap_or(image.to_owned());
    let mut sandbox = Sandbox::start(cfg).map_err(|e| Failure::User(e.into()))?;
    let cancel = AtomicBool::new(false);
    let mut results = Vec::new();
    for file in code {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("{}", file.display()))
            .map_err(Failure::User)?;
        results.push(sandbox.execute(&text, &image, &cancel));
    }
    let v = serde_json::json!({
        "run": sandbox.run_id,
        "run_dir": sandbox.run_dir(),
        "protection": badge(&sandbox.layers()),
        "steps": results,
    });
    sandbox.close();
    print_json(&v)
}
