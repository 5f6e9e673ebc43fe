//! `thyme-studio trace audit PATH`: every stored step image of a dataset or log made again from
//! the original and compared (see `thyme_studio::trace::audit`), with a progress line, the
//! report, the worst rows, a CSV and the rows to fix.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use thyme_studio::trace::audit::runner::{Auditor, Source};
use thyme_studio::trace::audit::{Report, StepAudit, Verdict, csv, worst_first};

use super::Failure;
use super::output::print_json;

#[derive(clap::Args)]
pub struct AuditArgs {
    /// A log or dataset (any format `trace` reads: Thyme SFT rows with their images, our
    /// traces, DeepEyes, Mini-o3, PyVision, ...).
    path: PathBuf,
    /// The report and every audited image as JSON.
    #[arg(long)]
    json: bool,
    /// Runs audited at once (each with its own sandbox workers); default: the CPU count.
    #[arg(long)]
    jobs: Option<usize>,
    /// Write every audited image as a CSV line.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Write the rows whose stored image and code disagree (different region, not
    /// reproducible): the log's own lines, or the audit records for runs that are folders.
    #[arg(long)]
    fix_report: Option<PathBuf>,
    /// Audit everything again instead of reusing results of unchanged runs.
    #[arg(long)]
    no_cache: bool,
    /// How many of the worst images to list.
    #[arg(long, default_value_t = 20)]
    worst: usize,
    #[arg(long, default_value = "auto")]
    format: String,
}

impl AuditArgs {
    pub fn run(self, images: Option<&Path>) -> Result<(), Failure> {
        let loaded = super::trace::load_traces(&self.path, &self.format, images)?;
        let file = self.path.display().to_string();
        let sources: Vec<Source> = loaded
            .traces
            .into_iter()
            .map(|t| Source {
                line: t.run.source_line,
                file: file.clone(),
                trace: t,
            })
            .collect();
        let dirs = thyme_studio::paths::AppDirs::for_user();
        // The sandbox, made ready as `run` does; without it code steps are not reproducible.
        let sandbox = match thyme_studio::sandbox::SandboxConfig::for_app(&dirs) {
            Ok(cfg) => match cfg.runtime.ensure(&mut |step| eprintln!("{step}")) {
                Ok(_) => Some(cfg),
                Err(e) => {
                    eprintln!("note: no sandbox ({e}): code steps will be not reproducible");
                    None
                }
            },
            Err(e) => {
                eprintln!("note: no sandbox ({e}): code steps will be not reproducible");
                None
            }
        };
        let jobs = self.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        });
        let auditor = Auditor {
            sandbox,
            jobs,
            cache: (!self.no_cache).then(|| dirs.cache.join("audit-cache.jsonl")),
        };
        let total = sources.len();
        let started = Instant::now();
        let last = std::sync::Mutex::new(Instant::now());
        let cancel = AtomicBool::new(false);
        let results = auditor.run(&sources, &cancel, &|_, done| {
            if let Ok(mut l) = last.lock()
                && (l.elapsed().as_millis() >= 500 || done == total)
            {
                *l = Instant::now();
                let secs = started.elapsed().as_secs_f64().max(1e-6);
                let rate = done as f64 / secs;
                let eta = (total - done) as f64 / rate.max(1e-9);
                eprint!(
                    "\raudited {done}/{total} runs ({rate:.1} runs/s, about {eta:.0} s left)   "
                );
                let _ = std::io::stderr().flush();
            }
        });
        if total > 0 {
            eprintln!();
        }
        let cached = results.iter().filter(|r| r.cached).count();
        let mut steps: Vec<StepAudit> = results.into_iter().flat_map(|r| r.steps).collect();
        let report = Report::of(&steps, total);
        worst_first(&mut steps);
        if let Some(p) = &self.csv {
            std::fs::write(p, csv(&steps))
                .map_err(|e| Failure::User(anyhow::anyhow!("{}: {e}", p.display())))?;
        }
        if let Some(p) = &self.fix_report {
            let n = fix_report(&steps, p)?;
            eprintln!(
                "{n} row(s) to drop or make again written to {}",
                p.display()
            );
        }
        if self.json {
            return print_json(&serde_json::json!({"report": report, "images": steps}));
        }
        print_report(
            &report,
            &steps,
            self.worst,
            cached,
            started.elapsed().as_secs_f64(),
        );
        Ok(())
    }
}

fn print_report(report: &Report, steps: &[StepAudit], worst: usize, cached: usize, secs: f64) {
    println!(
        "{} stored image(s) in {} run(s) audited in {secs:.1} s ({cached} run(s) from the cache)",
        report.images, report.runs
    );
    for v in Verdict::ALL {
        let n = report.by_verdict.get(&v).copied().unwrap_or(0);
        let pct = 100.0 * n as f64 / report.images.max(1) as f64;
        println!("  {:<36} {n:>7}  {pct:5.1} %", v.name());
    }
    if !report.by_rule.is_empty() {
        println!("explained by a known rule:");
        for (rule, n) in &report.by_rule {
            println!("  {rule:<36} {n:>7}");
        }
    }
    if report.by_file.len() > 1 {
        println!("by file:");
        for (file, counts) in &report.by_file {
            let parts: Vec<String> = Verdict::ALL
                .iter()
                .filter_map(|v| counts.get(v).map(|n| format!("{} {n}", v.name())))
                .collect();
            println!("  {file}: {}", parts.join(", "));
        }
    }
    let shown: Vec<&StepAudit> = steps
        .iter()
        .filter(|s| s.verdict != Verdict::Reproduced)
        .take(worst)
        .collect();
    if !shown.is_empty() {
        println!("worst first:");
        for s in shown {
            println!(
                "  {}{} step {} image {}: {}{} - {}",
                s.run,
                s.line.map_or(String::new(), |l| format!(" (line {l})")),
                s.step + 1,
                s.output + 1,
                s.verdict.name(),
                if s.rules.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", s.rules.join(", "))
                },
                s.detail
            );
        }
    }
}

/// The rows to fix: the log's own lines of runs with a disagreeing image (by file, in line
/// order), or the audit record for runs that are not lines of a file. Returns how many.
fn fix_report(steps: &[StepAudit], out: &Path) -> Result<usize, Failure> {
    let bad: Vec<&StepAudit> = steps.iter().filter(|s| s.verdict.disagrees()).collect();
    let mut lines_of: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    let mut records = Vec::new();
    for s in &bad {
        match s.line {
            Some(l) if Path::new(&s.file).is_file() => {
                lines_of.entry(s.file.as_str()).or_default().insert(l);
            }
            _ => records.push(*s),
        }
    }
    let mut text = String::new();
    let mut n = 0;
    for (file, wanted) in &lines_of {
        let content = std::fs::read_to_string(file)
            .map_err(|e| Failure::User(anyhow::anyhow!("{file}: {e}")))?;
        for (i, line) in content.lines().enumerate() {
            if wanted.contains(&(i + 1)) {
                text.push_str(line);
                text.push('\n');
                n += 1;
            }
        }
    }
    let mut seen_runs = BTreeSet::new();
    for s in records {
        if seen_runs.insert(s.run.as_str()) {
            text.push_str(&serde_json::to_string(s).unwrap_or_default());
            text.push('\n');
            n += 1;
        }
    }
    std::fs::write(out, text)
        .map_err(|e| Failure::User(anyhow::anyhow!("{}: {e}", PathBuf::from(out).display())))?;
    Ok(n)
}
