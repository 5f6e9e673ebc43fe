//! Nothing shown as saved is lost: a child process applies edits and acknowledges each one on
//! stdout; the parent kills it with SIGKILL at a random moment, reopens the project, and checks
//! that every acknowledged edit is there and the database is intact. Repeated 25 times.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thyme_studio::dataset::{ImageId, ImageRecord, Region, RegionId};
use thyme_studio::geometry::{ImageRect, ImageSize};
use thyme_studio::store::{Command, SqliteStore, Store};

const CHILD_ENV: &str = "THYME_CRASH_CHILD_DB";
const ROUNDS: usize = 25;

fn the_image() -> ImageRecord {
    ImageRecord {
        id: ImageId::of_bytes(b"crash-test-image"),
        path: "/nowhere/crash.jpg".into(),
        size: ImageSize::new(20_000, 20_000),
        bytes: 1,
        added_at_ms: 0,
        status: Default::default(),
        review: None,
    }
}

/// The child's side: edit forever, acknowledging each committed edit.
#[test]
#[ignore = "helper process for acknowledged_edits_survive_sigkill"]
fn crash_child() {
    let Ok(db) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut store = SqliteStore::open(db.as_ref()).unwrap();
    let image = the_image();
    let mut live: Vec<Region> = Vec::new();
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        if i % 3 == 2 && !live.is_empty() {
            // Move an existing box one pixel to the right.
            let k = (i as usize / 3) % live.len();
            let before = live[k].clone();
            let mut after = before.clone();
            after.rect.x0 += 1.0;
            after.rect.x1 += 1.0;
            store
                .apply(
                    "crash",
                    Command::UpdateRegion {
                        before,
                        after: after.clone(),
                    },
                )
                .unwrap();
            writeln!(out, "ACK UPD {} {}", after.id, after.rect.x0).unwrap();
            live[k] = after;
        } else {
            let x = (i % 1000) as f64 * 10.0;
            let y = (i / 1000 % 1000) as f64 * 10.0;
            let region = Region::new(
                image.id.clone(),
                ImageRect::new(x, y, x + 5.0, y + 5.0),
                format!("r{i}"),
            );
            store
                .apply(
                    "crash",
                    Command::AddRegion {
                        region: region.clone(),
                        links: vec![],
                    },
                )
                .unwrap();
            writeln!(out, "ACK ADD {} {}", region.id, region.rect.x0).unwrap();
            live.push(region);
        }
        out.flush().unwrap();
    }
}

/// A small deterministic generator for the kill delays (seed printed on failure).
fn next(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[test]
fn acknowledged_edits_survive_sigkill() {
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let first_seed = seed;
    let exe = std::env::current_exe().unwrap();
    let mut total_acks = 0usize;
    let mut total_updates = 0usize;
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("crash.thyme");
        {
            let mut store = SqliteStore::create(&db).unwrap();
            store
                .apply(
                    "setup",
                    Command::AddImage {
                        image: the_image(),
                        regions: vec![],
                        questions: vec![],
                    },
                )
                .unwrap();
        }
        let mut child = Process::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let reader = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line.starts_with("ACK ") {
                        lines.lock().unwrap().push(line);
                    }
                }
            })
        };
        // Wait for the first acknowledgement, then kill at a random moment after it.
        let started = Instant::now();
        while lines.lock().unwrap().is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "child never acknowledged an edit"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_micros(next(&mut seed) % 300_000));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        let acks = lines.lock().unwrap().clone();

        let store = SqliteStore::open(&db).unwrap();
        assert_eq!(
            store.integrity_check(),
            Ok(()),
            "round {round}, seed {first_seed}"
        );
        for ack in &acks {
            let parts: Vec<&str> = ack.split(' ').collect();
            let id = RegionId(parts[2].parse().unwrap());
            let x0: f64 = parts[3].parse().unwrap();
            let region = store.region(id).unwrap().unwrap_or_else(|| {
                panic!("round {round} (seed {first_seed}): acknowledged {ack} is lost")
            });
            // A later, unacknowledged move may also have landed, never an earlier state.
            assert!(
                region.rect.x0 >= x0,
                "round {round}: {ack} went back to {}",
                region.rect.x0
            );
            if parts[1] == "UPD" {
                total_updates += 1;
            }
        }
        let journal = store.journal(0, usize::MAX >> 1).unwrap();
        assert!(
            journal.len() > acks.len(),
            "every acknowledged edit has its journal entry"
        );
        total_acks += acks.len();
    }
    eprintln!(
        "crash test: {ROUNDS} SIGKILLs, {total_acks} acknowledged edits checked ({total_updates} moves), none lost"
    );
    assert!(total_acks >= ROUNDS);
}
