//! The team-mode soak: simulated annotators (one process each, each with its own local
//! journal) edit, sync, submit and fix while a reviewer opens, edits, accepts and rejects,
//! against one PostgreSQL server that is crashed and restarted, with a client killed in the
//! middle of a sync. Then every edit any client made is traced: on the server, or shown to its
//! annotator as a conflict; anything else is lost. Every image a client holds without an open
//! conflict must equal the server's copy; a difference is a silent overwrite.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command as Process, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use super::client::{Resolution, TeamClient};
use super::cluster::LocalCluster;
use super::review::{REJECT_REASONS, ReviewAction, Role, WorkState};
use super::server::{BatchSpec, MAIN_LAYER, Selection, TeamError, TeamServer};
use super::state::ImageState;
use crate::dataset::{Answer, ImageId, ImageRecord, Question, Region};
use crate::geometry::{ImageRect, ImageSize};
use crate::rng::Rng;
use crate::store::sql::{Db, Lite, vals};
use crate::store::{Command, Store, now_ms};

/// How big and how long.
#[derive(Debug, Clone)]
pub struct SoakOptions {
    pub annotators: usize,
    pub duration_ms: i64,
    pub restarts: usize,
    pub kills: usize,
    pub seed: u64,
}

/// What the soak saw.
#[derive(Debug, Clone, Default)]
pub struct SoakReport {
    pub annotators: usize,
    pub seconds: f64,
    pub restarts: usize,
    pub kills: usize,
    /// Edits the annotators made in their local journals.
    pub edits_made: usize,
    /// Of those, taken by the server.
    pub edits_on_server: usize,
    /// Of those, shown to the annotator as a conflict (someone changed the same thing).
    pub conflicts_surfaced: usize,
    /// Of those, refused and shown (item under review, accepted, not theirs any more).
    pub refusals_surfaced: usize,
    /// Edits neither on the server nor shown to anyone.
    pub lost: usize,
    /// Images whose local and server copies differ with no conflict shown.
    pub silently_overwritten: usize,
    pub reviews: usize,
    pub rejections: usize,
    pub server_edits_by_reviewer: usize,
    /// How the members' connections were encrypted (`TLSv1.3`), as the server says.
    pub connection: Option<String>,
    pub notes: Vec<String>,
}

impl SoakReport {
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.silently_overwritten == 0
    }
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "team soak: {} annotators, {:.0} s, server restarted {} time(s), {} client(s) killed mid-sync",
            self.annotators, self.seconds, self.restarts, self.kills
        )?;
        writeln!(f, "  edits made by annotators: {}", self.edits_made)?;
        writeln!(f, "  edits on the server:      {}", self.edits_on_server)?;
        writeln!(f, "  conflicts surfaced:       {}", self.conflicts_surfaced)?;
        writeln!(f, "  refusals surfaced:        {}", self.refusals_surfaced)?;
        writeln!(
            f,
            "  reviews: {} ({} rejected), the lead's corrections on the server: {}",
            self.reviews, self.rejections, self.server_edits_by_reviewer
        )?;
        writeln!(
            f,
            "  connections: {}",
            self.connection.as_deref().unwrap_or("not encrypted")
        )?;
        writeln!(f, "  lost: {}", self.lost)?;
        write!(f, "  silently overwritten: {}", self.silently_overwritten)?;
        for n in &self.notes {
            write!(f, "\n  note: {n}")?;
        }
        Ok(())
    }
}

fn soak_image(i: usize) -> ImageRecord {
    ImageRecord {
        id: ImageId::of_bytes(format!("soak image {i}").as_bytes()),
        path: format!("/soak/photos/img_{i:04}.jpg").into(),
        size: ImageSize::new(4000, 3000),
        bytes: 1_000_000,
        added_at_ms: 0,
        status: Default::default(),
        review: None,
    }
}

fn random_rect(rng: &mut Rng) -> ImageRect {
    let w = f64::from(rng.range(20, 90));
    let h = f64::from(rng.range(20, 90));
    let x = f64::from(rng.range(0, 3900));
    let y = f64::from(rng.range(0, 2900));
    ImageRect::new(x, y, x + w, y + h)
}

fn connect_retrying(url: &str, until: Instant) -> Result<TeamServer, TeamError> {
    loop {
        match TeamServer::open(url) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= until => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

/// Run the soak: start a server, the annotators and a reviewer; restart and kill; check.
pub fn run_soak(exe: &Path, opts: &SoakOptions) -> anyhow::Result<SoakReport> {
    let started = Instant::now();
    let mut cluster = LocalCluster::start_new(true)?;
    let url = cluster.create_database("soak")?;
    let server = TeamServer::init(&url, "lead", 0)?;
    // Every member works through a login of their own (row-level security and the review
    // functions apply); the lead corrects work on the owner's connection.
    let rev_url = server.add_member("rev", Role::Reviewer, 0)?.url;
    let names: Vec<String> = (1..=opts.annotators)
        .map(|i| format!("ann{i:02}"))
        .collect();
    let mut logins: BTreeMap<String, String> = BTreeMap::new();
    for n in &names {
        logins.insert(n.clone(), server.add_member(n, Role::Annotator, 0)?.url);
    }
    let per = 6;
    let images: Vec<ImageState> = (0..opts.annotators * per + 4)
        .map(|i| ImageState::bare(soak_image(i)))
        .collect();
    server.add_images("lead", &images, 0)?;
    // Four gold images with one known box each.
    let mut lead = crate::store::PgStore::open(&url)?;
    let mut rng = Rng::new(opts.seed);
    for g in images.iter().rev().take(4) {
        let r = Region::new(g.image.id.clone(), random_rect(&mut rng), "gold");
        lead.apply(
            "lead",
            Command::AddRegion {
                region: r,
                links: Vec::new(),
            },
        )?;
        server.set_gold("lead", &g.image.id, 0)?;
    }
    server.create_batch(
        "lead",
        &BatchSpec {
            name: "soak".into(),
            selection: Selection::Count(opts.annotators * per),
            annotators: names.clone(),
            lease_ms: 3_600_000,
            double_share: 0.1,
            honeypots_per_annotator: 1,
            seed: opts.seed,
        },
        now_ms(),
    )?;
    drop(server);
    drop(lead);

    let dir = tempfile::tempdir()?;
    let until_ms = now_ms() + opts.duration_ms;
    let spawn =
        |name: &str, seed: u64, tx: mpsc::Sender<(String, String)>| -> anyhow::Result<Child> {
            let file = dir.path().join(format!("{name}.thyme"));
            // The password goes by the environment, not the command line others can read.
            let login = logins.get(name).map_or(url.as_str(), String::as_str);
            let (bare, password) = super::credentials::split_password(login);
            let mut child = Process::new(exe)
                .args(["team", "soak-client", &bare])
                .env(
                    super::credentials::PASSWORD_ENV,
                    password.unwrap_or_default(),
                )
                .arg(&file)
                .args([
                    "--as",
                    name,
                    "--until-ms",
                    &until_ms.to_string(),
                    "--seed",
                    &seed.to_string(),
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()?;
            if let Some(out) = child.stdout.take() {
                let name = name.to_owned();
                std::thread::spawn(move || {
                    for line in BufReader::new(out).lines().map_while(Result::ok) {
                        if tx.send((name.clone(), line)).is_err() {
                            break;
                        }
                    }
                });
            }
            Ok(child)
        };
    let (tx, rx) = mpsc::channel::<(String, String)>();
    let mut children: BTreeMap<String, Child> = BTreeMap::new();
    for (i, n) in names.iter().enumerate() {
        children.insert(
            n.clone(),
            spawn(n, opts.seed * 1000 + i as u64, tx.clone())?,
        );
    }

    // The reviewer works in a thread of its own.
    let stop = Arc::new(AtomicBool::new(false));
    let reviewer = {
        let urls = (rev_url.clone(), url.clone());
        let stop = stop.clone();
        let seed = opts.seed;
        std::thread::spawn(move || reviewer_loop(&urls.0, &urls.1, &stop, seed))
    };

    let mut report = SoakReport {
        annotators: opts.annotators,
        ..Default::default()
    };
    let events: Vec<(i64, &str)> = {
        let mut e = Vec::new();
        for k in 0..opts.restarts {
            e.push((
                opts.duration_ms * (k as i64 + 1) / (opts.restarts as i64 + 1),
                "restart",
            ));
        }
        for k in 0..opts.kills {
            e.push((
                opts.duration_ms * (2 * k as i64 + 1) / (2 * opts.kills as i64 + 1) + 7_000,
                "kill",
            ));
        }
        e.sort();
        e
    };
    let t0 = now_ms();
    for (at, what) in events {
        while now_ms() - t0 < at {
            while rx.try_recv().is_ok() {}
            std::thread::sleep(Duration::from_millis(50));
        }
        if what == "restart" {
            cluster.stop(true)?;
            std::thread::sleep(Duration::from_secs(2));
            cluster.start()?;
            report.restarts += 1;
        } else {
            // Kill an annotator right after it says it is pushing.
            let victim = names[report.kills % names.len()].clone();
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut killed = false;
            while Instant::now() < deadline {
                if let Ok((who, line)) = rx.recv_timeout(Duration::from_millis(200))
                    && who == victim
                    && line.starts_with("push")
                {
                    if let Some(child) = children.get_mut(&victim) {
                        let _ = child.kill();
                        let _ = child.wait();
                    }
                    killed = true;
                    break;
                }
            }
            if killed {
                report.kills += 1;
                let seed = opts.seed * 1000 + 999;
                children.insert(victim.clone(), spawn(&victim, seed, tx.clone())?);
            } else {
                report
                    .notes
                    .push(format!("{victim} never pushed within 30 s; not killed"));
            }
        }
    }
    drop(tx);
    for (name, mut child) in children {
        let status = child.wait()?;
        if !status.success() {
            report.notes.push(format!("{name} exited with {status}"));
        }
    }
    stop.store(true, Ordering::SeqCst);
    match reviewer.join() {
        Ok(Ok((reviews, rejections, edits))) => {
            report.reviews = reviews;
            report.rejections = rejections;
            report.server_edits_by_reviewer = edits;
        }
        Ok(Err(e)) => report.notes.push(format!("reviewer stopped: {e}")),
        Err(_) => report.notes.push("reviewer thread panicked".into()),
    }

    // Check: every local edit is on the server or shown; every quiet image matches.
    let server = connect_retrying(&url, Instant::now() + Duration::from_secs(30))?;
    report.connection = server.store().encryption()?;
    for n in &names {
        let file = dir.path().join(format!("{n}.thyme"));
        let mut client = TeamClient::open(&file)?;
        // A last round after the reviewer stopped, so both sides have everything.
        client.sync(&server, now_ms())?;
        let client_id: String = Lite(client.store().conn())
            .row("SELECT value FROM team_link WHERE key = 'client_id'", &[])?
            .map(|r| r.text(0))
            .transpose()?
            .unwrap_or_default();
        let local = Lite(client.store().conn()).rows(
            "SELECT seq FROM journal WHERE origin = 'local' ORDER BY seq",
            &[],
        )?;
        let shown: std::collections::BTreeSet<String> = Lite(client.store().conn())
            .rows("SELECT op_key FROM team_conflicts", &[])?
            .iter()
            .filter_map(|r| r.text(0).ok())
            .collect();
        let outcomes: BTreeMap<String, String> = server
            .store()
            .read(|db| {
                db.rows(
                    "SELECT op_key, outcome FROM sync_log WHERE op_key LIKE ?1",
                    vals![format!("{client_id}:%")],
                )
            })?
            .iter()
            .filter_map(|r| Some((r.text(0).ok()?, r.text(1).ok()?)))
            .collect();
        for r in local {
            let key = format!("{client_id}:{}", r.int(0)?);
            report.edits_made += 1;
            match outcomes.get(&key).map(String::as_str) {
                Some("applied") => report.edits_on_server += 1,
                Some("conflict") if shown.contains(&key) => report.conflicts_surfaced += 1,
                Some("refused") if shown.contains(&key) => report.refusals_surfaced += 1,
                _ => report.lost += 1,
            }
        }
        let open: std::collections::BTreeSet<ImageId> = client
            .conflicts()?
            .into_iter()
            .filter_map(|c| c.image)
            .collect();
        for a in server.assignments_of(n)? {
            if open.contains(&a.image) {
                continue;
            }
            let theirs = server.image_state(&a.layer, &a.image)?;
            let mine = ImageState::read(client.store(), &a.image)?;
            let same = match (&mine, &theirs) {
                (Some(m), Some(t)) => super::state::diff(Some(m), t).is_empty(),
                (None, None) => true,
                _ => false,
            };
            if !same {
                report.silently_overwritten += 1;
                report.notes.push(format!(
                    "{n}: image {} differs from the server",
                    a.image.short()
                ));
            }
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The reviewer (on their own login): opens submitted work and accepts or rejects it; now and
/// then the lead (on the owner's connection) corrects a box of work still in progress, while
/// its annotator may be editing too.
fn reviewer_loop(
    url: &str,
    lead_url: &str,
    stop: &AtomicBool,
    seed: u64,
) -> Result<(usize, usize, usize), TeamError> {
    let mut rng = Rng::new(seed ^ 0x5eed);
    let (mut reviews, mut rejections, mut edits) = (0, 0, 0);
    let mut server: Option<TeamServer> = None;
    let mut lead: Option<TeamServer> = None;
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(400));
        if server.as_ref().is_none_or(|s| !s.is_alive()) {
            server = TeamServer::open(url).ok();
        }
        if lead.as_ref().is_none_or(|s| !s.is_alive()) {
            lead = TeamServer::open(lead_url).ok();
        }
        let Some(s) = server.as_mut() else { continue };
        let Ok(all) = s.all_assignments() else {
            server = None;
            continue;
        };
        for a in all.iter().filter(|a| a.kind == "primary") {
            let Some(who) = &a.annotator else { continue };
            let step = match a.state {
                WorkState::Submitted | WorkState::Fixed => s
                    .act("rev", &a.image, who, &ReviewAction::Open, now_ms())
                    .map(|_| ()),
                WorkState::InReview => {
                    let action = if rng.unit() < 0.3 {
                        rejections += 1;
                        ReviewAction::Reject {
                            reason: rng.pick(&REJECT_REASONS).to_string(),
                            note: "soak".into(),
                        }
                    } else {
                        ReviewAction::Accept
                    };
                    reviews += 1;
                    s.act("rev", &a.image, who, &action, now_ms()).map(|_| ())
                }
                WorkState::InProgress if rng.unit() < 0.15 => {
                    // A correction on the server while the annotator may be editing too.
                    n += 1;
                    let Some(s) = lead.as_ref() else { continue };
                    let regions = s.store().regions(&a.image).unwrap_or_default();
                    if let Some(r) = regions.first() {
                        let mut after = r.clone();
                        after.label = format!("fixed by rev {n}");
                        let op = format!("reviewer:{seed}:{n}");
                        match s.push(
                            "lead",
                            &op,
                            &Command::UpdateRegion {
                                before: r.clone(),
                                after,
                            },
                            now_ms(),
                        ) {
                            Ok(super::server::PushOutcome::Applied) => edits += 1,
                            Ok(_) => {}
                            Err(e) => tracing::debug!(error = %e, "reviewer push failed"),
                        }
                    }
                    Ok(())
                }
                _ => Ok(()),
            };
            if step.is_err() {
                break;
            }
        }
    }
    Ok((reviews, rejections, edits))
}

/// One simulated annotator: edit, sync, submit, fix, settle conflicts, until `until_ms`;
/// then sync until everything is sent.
pub fn soak_client(
    url: &str,
    file: &Path,
    member: &str,
    until_ms: i64,
    seed: u64,
) -> anyhow::Result<()> {
    let mut rng = Rng::new(seed);
    let mut client = TeamClient::join(file, url, member)?;
    let mut server: Option<TeamServer> = None;
    let mut round = 0u64;
    // The items the annotator may work on (as the app shows them), refreshed each round.
    let mut editable: Vec<ImageId> = Vec::new();
    loop {
        let finishing = now_ms() >= until_ms;
        if !finishing {
            for _ in 0..rng.range(1, 4) {
                edit_once(&mut client, &mut rng, member, &editable);
            }
        }
        if server.as_ref().is_none_or(|s| !s.is_alive()) {
            server = TeamServer::open(url).ok();
        }
        let Some(s) = server.as_ref() else {
            std::thread::sleep(Duration::from_millis(300));
            if finishing && now_ms() > until_ms + 120_000 {
                anyhow::bail!("could not reach the server to send the last edits");
            }
            continue;
        };
        println!("push {round}");
        round += 1;
        match client.sync(s, now_ms()) {
            Ok(_) => {
                if finishing && client.unsent()?.is_empty() {
                    println!("done");
                    return Ok(());
                }
            }
            Err(_) => {
                server = None;
                continue;
            }
        }
        if let Ok(mine) = s.assignments_of(member) {
            editable = mine
                .into_iter()
                .filter(|a| a.state.editable_by_annotator())
                .map(|a| a.image)
                .collect();
        }
        if !finishing {
            settle_and_submit(&mut client, s, &mut rng, member);
            std::thread::sleep(Duration::from_millis(u64::from(rng.range(150, 450))));
        }
    }
}

fn edit_once(client: &mut TeamClient, rng: &mut Rng, member: &str, editable: &[ImageId]) {
    let images: Vec<ImageRecord> = client
        .store()
        .images()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| editable.contains(&i.id))
        .collect();
    if images.is_empty() {
        return;
    }
    let image = rng.pick(&images).clone();
    let regions = client.store().regions(&image.id).unwrap_or_default();
    let choice = rng.unit();
    let command = if regions.is_empty() || choice < 0.4 {
        Command::AddRegion {
            region: Region::new(
                image.id.clone(),
                random_rect(rng),
                format!("obj {}", rng.range(0, 99)),
            ),
            links: Vec::new(),
        }
    } else if choice < 0.65 {
        let r = rng.pick(&regions).clone();
        let mut after = r.clone();
        let dx = f64::from(rng.range(0, 6)) - 3.0;
        after.rect = ImageRect::new(r.rect.x0 + dx, r.rect.y0, r.rect.x1 + dx, r.rect.y1);
        if after.rect.x0 < 0.0 || after.rect.x1 > 4000.0 {
            return;
        }
        Command::UpdateRegion { before: r, after }
    } else if choice < 0.85 {
        let r = rng.pick(&regions).clone();
        let mut after = r.clone();
        after.label = format!("{member} label {}", rng.range(0, 999));
        Command::UpdateRegion { before: r, after }
    } else if choice < 0.95 {
        let r = rng.pick(&regions).clone();
        Command::AddQuestion {
            question: Question::new(
                image.id.clone(),
                vec![r.id],
                format!("What is {}?", r.label),
                Answer::Open {
                    text: format!("answer {}", rng.range(0, 99)),
                },
                "ocr",
            ),
        }
    } else {
        match client.store().delete_region_command(rng.pick(&regions).id) {
            Ok(c) => c,
            Err(_) => return,
        }
    };
    // An edit the local rules refuse (a stale pick) is simply not made.
    let _ = client.store_mut().apply(member, command);
}

fn settle_and_submit(client: &mut TeamClient, server: &TeamServer, rng: &mut Rng, member: &str) {
    if let Ok(conflicts) = client.conflicts() {
        for image in conflicts
            .into_iter()
            .filter_map(|c| c.image)
            .collect::<std::collections::BTreeSet<_>>()
        {
            let how = if rng.unit() < 0.5 {
                Resolution::KeepMine
            } else {
                Resolution::TakeTheirs
            };
            let _ = client.resolve(server, &image, how, now_ms());
        }
    }
    let Ok(mine) = server.assignments_of(member) else {
        return;
    };
    for a in mine.iter().filter(|a| a.layer == MAIN_LAYER) {
        let action = match a.state {
            WorkState::InProgress if rng.unit() < 0.08 => ReviewAction::Submit,
            WorkState::Rejected if rng.unit() < 0.3 => ReviewAction::Fix,
            _ => continue,
        };
        let _ = server.act(member, &a.image, member, &action, now_ms());
    }
}
