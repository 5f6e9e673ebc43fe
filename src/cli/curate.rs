//! `thyme-studio curate`: the difficulty check of a project's QA items (`run`), its rates and
//! flags per item (`report`), and its runs as traces for Inspect (`traces`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use thyme_studio::agent::{Backoff, Policy, PromptProfile, Settings};
use thyme_studio::curate::{
    Arm, AttemptStore, CheckSettings, Checker, Flag, ItemRates, Thresholds, rates,
};
use thyme_studio::store::SqliteStore;

use super::Failure;
use super::output::{print_json, progress_bar};

#[derive(clap::Subcommand)]
pub enum CurateCommand {
    /// Try every selected QA item k times with tools and k times without, storing each try in
    /// the project as it ends (run again to resume; tries already stored are reused).
    Run(Box<RunArgs>),
    /// Per item: pass rates with and without tools, pass@k, the gap, the flags, where the
    /// with-tool runs looked; and counts over the set.
    Report(ReportArgs),
    /// Write the check's runs as a trace JSONL (open it with `thyme-studio inspect`).
    Traces(TracesArgs),
}

impl CurateCommand {
    pub fn run(self) -> Result<(), Failure> {
        match self {
            CurateCommand::Run(a) => run_check(*a),
            CurateCommand::Report(a) => report(a),
            CurateCommand::Traces(a) => traces(a),
        }
    }
}

#[derive(clap::Args)]
pub struct RunArgs {
    file: PathBuf,
    /// http (an OpenAI-compatible server: vLLM, SGLang) or local (the on-device model).
    #[arg(long)]
    policy: String,
    #[command(flatten)]
    source: super::args::ModelSource,
    /// Tries per item and arm.
    #[arg(long, default_value_t = 4)]
    k: usize,
    /// The sampling temperature of every try.
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Try i is drawn with seed SEED + i.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Tries in flight (default: 16 with --policy http; the local model runs one at a time).
    #[arg(long)]
    jobs: Option<usize>,
    /// Tries of a request the server refuses or times out on, before the try counts as failed.
    #[arg(long, default_value_t = 4)]
    retries: usize,
    /// The first wait between tries, in milliseconds (doubled each time).
    #[arg(long, default_value_t = 500)]
    backoff_ms: u64,
    /// The agent's segment limit for the with-tool arm.
    #[arg(long, default_value_t = 5)]
    max_segments: usize,
    /// The most tokens a segment (or a direct answer) may have.
    #[arg(long, default_value_t = 2048)]
    max_tokens: u32,
    #[command(flatten)]
    items: super::args::ItemFilter,
    /// A prompt profile (TOML).
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Take the system prompt from this text file, byte for byte.
    #[arg(long)]
    system_prompt_file: Option<PathBuf>,
    /// Where the runs' folders (their steps' images) go; default: the app's data folder.
    #[arg(long)]
    runs: Option<PathBuf>,
    /// Print the report as JSON at the end.
    #[arg(long)]
    json: bool,
}

type MakerFn = thyme_studio::curate::check::PolicyMaker<'static>;

fn user(e: impl Into<anyhow::Error>) -> Failure {
    Failure::User(e.into())
}

fn run_check(a: RunArgs) -> Result<(), Failure> {
    if a.k == 0 {
        return Err(user(anyhow::anyhow!("--k is at least 1")));
    }
    let mut profile = match &a.profile {
        Some(p) => PromptProfile::load(p).map_err(user)?,
        None => PromptProfile::default(),
    };
    if let Some(f) = &a.system_prompt_file {
        profile = profile.with_system_file(f).map_err(user)?;
    }
    let store = SqliteStore::open(&a.file)?;
    let filter = a.items.filter();
    let (items, skipped) = thyme_studio::curate::items(&store, &filter, &profile).map_err(user)?;
    drop(store);
    for (reason, n) in &skipped.left_out {
        eprintln!("skipped {n}: {reason}");
    }
    for (what, reason) in skipped.examples.iter().take(10) {
        eprintln!("  {what}: {reason}");
    }
    if items.is_empty() {
        return Err(user(anyhow::anyhow!(
            "{}: no QA item to check (the filters and rules left none)",
            a.file.display()
        )));
    }
    let (maker, model, jobs) = policy_maker(&a)?;
    let dirs = thyme_studio::paths::AppDirs::for_user();
    let mut cfg = thyme_studio::sandbox::SandboxConfig::for_app(&dirs)
        .map_err(|e| Failure::Internal(e.into()))?;
    if let Some(r) = &a.runs {
        cfg.runs = std::path::absolute(r).unwrap_or(r.clone());
    }
    super::sandbox::ensure_runtime(&cfg)?;
    let checker = Checker {
        sandbox: cfg,
        settings: CheckSettings {
            k: a.k,
            temperature: a.temperature,
            seed: a.seed,
            agent: Settings {
                max_segments: a.max_segments,
                max_tokens: a.max_tokens,
                ..Settings::default()
            },
            profile,
            model,
        },
        jobs,
        backoff: Backoff {
            tries: a.retries.max(1),
            first_wait: Duration::from_millis(a.backoff_ms),
        },
        policy: maker.as_ref(),
    };
    let attempts = Mutex::new(AttemptStore::open(&a.file).map_err(user)?);
    eprintln!(
        "{} item(s) x {} x 2 arms, {jobs} in flight; Ctrl-C stops, running again resumes",
        items.len(),
        a.k
    );
    let bar = progress_bar();
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} {per_sec} eta {eta} {wide_msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let outcome = checker
        .run(&items, &attempts, &AtomicBool::new(false), &|_, p| {
            bar.set_length((p.total - p.reused) as u64);
            bar.set_position(p.made as u64);
            if p.failed > 0 {
                bar.set_message(format!("{} failed", p.failed));
            }
        })
        .map_err(user)?;
    bar.finish_and_clear();
    let p = outcome.progress;
    eprintln!(
        "{} tries made ({} failed), {} reused, in {:.1} s",
        p.made,
        p.failed,
        p.reused,
        started.elapsed().as_secs_f64()
    );
    if let Some(e) = outcome.store_error {
        return Err(Failure::Internal(anyhow::anyhow!(
            "the check stopped: a try could not be stored ({e}); every try before it is kept"
        )));
    }
    let store = attempts
        .into_inner()
        .map_err(|_| Failure::Internal(anyhow::anyhow!("the attempt store is unusable")))?;
    let key = checker.settings.key();
    print_report(&a.file, &store, Some(&key), a.k, a.json, None)
}

/// Makes the policy of each try: (the maker, the model's name, tries in flight).
fn policy_maker(a: &RunArgs) -> Result<(Box<MakerFn>, String, usize), Failure> {
    Ok(match a.policy.as_str() {
        "http" => {
            let settings = a.source.http().map_err(|e| user(anyhow::anyhow!(e)))?;
            let model = settings.model.clone();
            let make = move || -> Result<Box<dyn Policy>, String> {
                Ok(Box::new(thyme_studio::agent::Http::new(settings.clone())))
            };
            (Box::new(make), model, a.jobs.unwrap_or(16))
        }
        "local" => {
            let s = &a.source;
            let m = super::run::load_model(s.model_dir.as_deref(), &s.device, &s.dtype)?;
            let label = s.local_label();
            let model = label.clone();
            let make = move || -> Result<Box<dyn Policy>, String> {
                Ok(Box::new(thyme_studio::agent::Local::sharing_cache(
                    m.clone(),
                    label.clone(),
                )))
            };
            (Box::new(make), model, 1)
        }
        other => {
            return Err(user(anyhow::anyhow!(
                "--policy is http or local, not '{other}'"
            )));
        }
    })
}

#[derive(clap::Args)]
pub struct ReportArgs {
    file: PathBuf,
    /// The k of pass@k (default: the most tries an item has in an arm).
    #[arg(long)]
    k: Option<usize>,
    /// A check's settings key (default: the latest check).
    #[arg(long)]
    settings: Option<String>,
    /// Only items with this flag (repeatable).
    #[arg(long = "flag", value_parser = super::export::parse_flag)]
    flags: Vec<Flag>,
    #[arg(long)]
    json: bool,
}

fn report(a: ReportArgs) -> Result<(), Failure> {
    let store = AttemptStore::open(&a.file).map_err(user)?;
    let key = match a.settings {
        Some(k) => k,
        None => store.latest_key().map_err(user)?.ok_or_else(|| {
            user(anyhow::anyhow!(
                "{}: no difficulty check yet (thyme-studio curate run {} --policy ...)",
                a.file.display(),
                a.file.display()
            ))
        })?,
    };
    let only: BTreeSet<Flag> = a.flags.into_iter().collect();
    let k = a.k.unwrap_or(0);
    print_report(
        &a.file,
        &store,
        Some(&key),
        k,
        a.json,
        (!only.is_empty()).then_some(&only),
    )
}

/// The set's counts, for the report's head.
#[derive(serde::Serialize)]
struct SetSummary {
    settings_key: String,
    items: usize,
    k: usize,
    tools_rate: Option<f64>,
    no_tools_rate: Option<f64>,
    failed: usize,
    flags: BTreeMap<&'static str, usize>,
    looks: BTreeMap<String, usize>,
}

#[derive(serde::Serialize)]
struct Report<'a> {
    summary: SetSummary,
    items: Vec<(&'a ItemRates, String)>,
}

fn print_report(
    file: &std::path::Path,
    store: &AttemptStore,
    key: Option<&str>,
    k: usize,
    json: bool,
    only: Option<&BTreeSet<Flag>>,
) -> Result<(), Failure> {
    let attempts = store.list(key).map_err(user)?;
    // k defaults to the most tries an item has in one arm.
    let k = if k > 0 {
        k
    } else {
        let mut per: BTreeMap<_, usize> = BTreeMap::new();
        for a in &attempts {
            *per.entry((a.question, a.arm)).or_insert(0) += 1;
        }
        per.values().copied().max().unwrap_or(1)
    };
    let items = rates(&attempts, k, &Thresholds::default());
    let texts: BTreeMap<_, String> = SqliteStore::open(file)?
        .dump(false)?
        .questions
        .into_iter()
        .map(|q| (q.id, q.text))
        .collect();
    let mut summary = SetSummary {
        settings_key: key.unwrap_or_default().to_owned(),
        items: items.len(),
        k,
        tools_rate: None,
        no_tools_rate: None,
        failed: items
            .iter()
            .map(|i| i.tools.failed + i.no_tools.failed)
            .sum(),
        flags: Flag::ALL.iter().map(|f| (f.name(), 0)).collect(),
        looks: BTreeMap::new(),
    };
    let (mut wc, mut wn, mut oc, mut on) = (0, 0, 0, 0);
    for i in &items {
        (wc, wn) = (wc + i.tools.correct, wn + i.tools.tries);
        (oc, on) = (oc + i.no_tools.correct, on + i.no_tools.tries);
        for f in &i.flags {
            *summary.flags.entry(f.name()).or_insert(0) += 1;
        }
        for (look, n) in &i.looks {
            *summary.looks.entry(look.clone()).or_insert(0) += n;
        }
    }
    summary.tools_rate = (wn > 0).then(|| wc as f64 / wn as f64);
    summary.no_tools_rate = (on > 0).then(|| oc as f64 / on as f64);
    let shown: Vec<(&ItemRates, String)> = items
        .iter()
        .filter(|i| only.is_none_or(|o| i.flags.iter().any(|f| o.contains(f))))
        .map(|i| (i, texts.get(&i.question).cloned().unwrap_or_default()))
        .collect();
    if json {
        return print_json(&Report {
            summary,
            items: shown,
        });
    }
    let pct = |r: Option<f64>| r.map_or("-".to_owned(), |r| format!("{:.0} %", r * 100.0));
    println!(
        "{} items, k = {k}: solved with tools {}, without {}; {} tries failed (server)",
        summary.items,
        pct(summary.tools_rate),
        pct(summary.no_tools_rate),
        summary.failed
    );
    let flags: Vec<String> = summary
        .flags
        .iter()
        .map(|(f, n)| format!("{f} {n}"))
        .collect();
    println!("flags: {}", flags.join(", "));
    if !summary.looks.is_empty() {
        let looks: Vec<String> = summary
            .looks
            .iter()
            .map(|(l, n)| format!("{l} {n}"))
            .collect();
        println!("with-tool runs: {}", looks.join(", "));
    }
    println!(
        "{:<8} {:>9} {:>9} {:>7} {:>7} {:<24} question",
        "item", "tools", "no tools", "gap", "pass@k", "flags"
    );
    for (i, text) in &shown {
        let frac = |a: &thyme_studio::curate::ArmRate| format!("{}/{}", a.correct, a.tries);
        let flags: Vec<&str> = i.flags.iter().map(|f| f.name()).collect();
        let short: String = text.chars().take(50).collect();
        println!(
            "{:<8} {:>9} {:>9} {:>7} {:>7} {:<24} {}",
            &i.question.to_string()[..8],
            frac(&i.tools),
            frac(&i.no_tools),
            i.gap.map_or("-".into(), |g| format!("{g:+.2}")),
            i.tools_pass_at_k.map_or("-".into(), |p| format!("{p:.2}")),
            flags.join(","),
            short.replace('\n', " ")
        );
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct TracesArgs {
    file: PathBuf,
    /// Where the traces go (JSONL).
    #[arg(long)]
    out: PathBuf,
    /// Only this question's runs (its id, or the first characters of it).
    #[arg(long)]
    question: Option<String>,
    /// Only this arm: tools or no_tools.
    #[arg(long)]
    arm: Option<String>,
    /// A check's settings key (default: the latest check).
    #[arg(long)]
    settings: Option<String>,
}

fn traces(a: TracesArgs) -> Result<(), Failure> {
    let store = AttemptStore::open(&a.file).map_err(user)?;
    let arm = match a.arm.as_deref() {
        None => None,
        Some("tools") => Some(Arm::Tools),
        Some("no_tools") => Some(Arm::NoTools),
        Some(other) => {
            return Err(user(anyhow::anyhow!(
                "--arm is tools or no_tools, not '{other}'"
            )));
        }
    };
    let n = thyme_studio::curate::write_runs(
        &store,
        a.settings.as_deref(),
        a.question.as_deref(),
        arm,
        &a.out,
    )
    .map_err(user)?;
    println!("{n} run(s) written to {}", a.out.display());
    Ok(())
}
