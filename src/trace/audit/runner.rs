//! Auditing many runs: `jobs` threads, each with its own sandbox worker (reset between runs,
//! replaced from a warm spare when a run changed its modules), results streamed to the caller as runs finish, and
//! a cache keyed by what decides a run's audit (the original's bytes, every cell's code, every
//! stored image's bytes), so auditing again only audits what changed. Cancelling keeps what
//! is done, in the results and in the cache.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::{StepAudit, Workers, audit_run, has_stored_images};
use crate::sandbox::SandboxConfig;
use crate::trace::{Step, Trace};

/// Bumped when the audit's rules change, so cached results of older rules are not reused.
const AUDIT_VERSION: &str = "audit-2";

/// A run to audit and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    pub trace: Trace,
    pub file: String,
    pub line: Option<usize>,
}

/// One run's audit, as it lands.
#[derive(Debug, Clone)]
pub struct Audited {
    pub index: usize,
    pub steps: Vec<StepAudit>,
    /// Taken from the cache, not audited now.
    pub cached: bool,
}

/// What is shared by the audit of many runs.
pub struct Auditor {
    /// The sandbox for code steps (`None`: code steps are not reproducible here).
    pub sandbox: Option<SandboxConfig>,
    /// Runs audited at once (at least 1).
    pub jobs: usize,
    /// The cache file (JSON lines), when one is kept.
    pub cache: Option<PathBuf>,
}

/// Decoded originals kept across runs (bytes of pixels).
const ORIGINALS_BUDGET: u64 = 1 << 30;

/// File hashes already taken in this audit, by path, size and modification time (the runs of
/// a dataset share a few originals).
pub type HashMemo = Mutex<HashMap<(PathBuf, u64, Option<std::time::SystemTime>), String>>;

/// The cache key of a run: everything its audit depends on.
pub fn run_key(trace: &Trace, memo: &HashMemo) -> String {
    let mut h = Sha256::new();
    h.update(AUDIT_VERSION.as_bytes());
    // The sandbox's worker decides what code makes: another worker, another audit.
    h.update(Sha256::digest(crate::sandbox::runtime::WORKER.as_bytes()));
    h.update(trace.run.source_format.as_bytes());
    let file_hash = |h: &mut Sha256, p: &Path| {
        let meta = std::fs::metadata(p).ok();
        let id = (
            p.to_owned(),
            meta.as_ref().map_or(0, std::fs::Metadata::len),
            meta.and_then(|m| m.modified().ok()),
        );
        let known = memo.lock().ok().and_then(|m| m.get(&id).cloned());
        let digest = known.or_else(|| {
            let d = crate::dataset::ImageId::of_file(p)
                .ok()?
                .as_str()
                .to_owned();
            if let Ok(mut m) = memo.lock() {
                m.insert(id, d.clone());
            }
            Some(d)
        });
        match digest {
            Some(d) => h.update(d.as_bytes()),
            None => h.update(format!("missing:{}", p.display()).as_bytes()),
        };
    };
    for img in &trace.run.images {
        match (&img.path, &img.data_url) {
            (Some(p), _) => file_hash(&mut h, p),
            (None, Some(u)) => h.update(Sha256::digest(u.as_bytes())),
            (None, None) => h.update(b"none"),
        }
    }
    for s in &trace.steps {
        if let Step::Execute {
            raw_code, outputs, ..
        } = s
        {
            h.update(b"\x00cell\x00");
            h.update(raw_code.as_bytes());
            for o in outputs {
                h.update(b"\x00out\x00");
                match (&o.image.path, &o.image.data_url) {
                    (Some(p), _) => file_hash(&mut h, p),
                    (None, Some(u)) => h.update(Sha256::digest(u.as_bytes())),
                    (None, None) => h.update(b"none"),
                }
                if let Some(r) = o.source_rect {
                    h.update(format!("{r:?}").as_bytes());
                }
            }
        }
    }
    hex::encode(h.finalize())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CacheLine {
    key: String,
    steps: Vec<StepAudit>,
}

fn load_cache(path: &Path) -> HashMap<String, Vec<StepAudit>> {
    let Ok(file) = std::fs::File::open(path) else {
        return HashMap::new();
    };
    std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str::<CacheLine>(&l).ok())
        .map(|c| (c.key, c.steps))
        .collect()
}

impl Auditor {
    /// Audit every source; `on_done` hears each run as it lands (any order), with how many are
    /// done. The results come back in input order (runs not audited after a cancel are left
    /// out).
    pub fn run(
        &self,
        sources: &[Source],
        cancel: &AtomicBool,
        on_done: &(dyn Fn(&Audited, usize) + Sync),
    ) -> Vec<Audited> {
        let cached = self.cache.as_deref().map(load_cache).unwrap_or_default();
        let writer = self.cache.as_ref().and_then(|p| {
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| {
                    tracing::warn!("the audit cache {} cannot be written: {e}", p.display())
                })
                .ok()
                .map(Mutex::new)
        });
        let originals = std::sync::Arc::new(super::Originals::new(ORIGINALS_BUDGET));
        let hashes = Mutex::new(HashMap::new());
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Audited>>> = Mutex::new(vec![None; sources.len()]);
        let workers = self.jobs.clamp(1, sources.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    let mut workers = Workers::new(self.sandbox.clone(), originals.clone());
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(src) = sources.get(i) else { break };
                        if cancel.load(Ordering::Relaxed) {
                            break;
                        }
                        let key =
                            has_stored_images(&src.trace).then(|| run_key(&src.trace, &hashes));
                        let hit = key.as_ref().and_then(|k| cached.get(k));
                        let audited = match hit {
                            Some(steps) => Audited {
                                index: i,
                                steps: steps
                                    .iter()
                                    .cloned()
                                    .map(|mut a| {
                                        a.run = src.trace.run.id.clone();
                                        a.file = src.file.clone();
                                        a.line = src.line;
                                        a
                                    })
                                    .collect(),
                                cached: true,
                            },
                            None => {
                                let steps = audit_run(
                                    &src.trace,
                                    &src.file,
                                    src.line,
                                    &mut workers,
                                    cancel,
                                );
                                // A run cut short by a cancel, or audited without a
                                // sandbox, is not cached: it would not be the same later.
                                let partial = cancel.load(Ordering::Relaxed)
                                    || steps
                                        .iter()
                                        .any(|s| s.detail.starts_with(super::NO_SANDBOX));
                                if let (Some(k), Some(w), false) = (&key, &writer, partial) {
                                    let line = CacheLine {
                                        key: k.clone(),
                                        steps: steps.clone(),
                                    };
                                    if let (Ok(text), Ok(mut f)) =
                                        (serde_json::to_string(&line), w.lock())
                                    {
                                        let _ = writeln!(f, "{text}");
                                        let _ = f.flush();
                                    }
                                }
                                Audited {
                                    index: i,
                                    steps,
                                    cached: false,
                                }
                            }
                        };
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        on_done(&audited, n);
                        if let Ok(mut r) = results.lock() {
                            r[i] = Some(audited);
                        }
                    }
                    workers.close();
                });
            }
        });
        results
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .flatten()
            .collect()
    }
}
