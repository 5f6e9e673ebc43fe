//! What TLS and the server's guard cost a team member's sync: one throwaway PostgreSQL server
//! serving TLS, four annotators' local files synced in alternating rounds of the same run:
//! on the owner's connection as every member had it before logins of their own (plain,
//! `sslmode=disable`, and encrypted, `sslmode=verify-full` against the server's
//! certificate), and on the member's own login, where row-level security, the verdict
//! trigger and the review functions apply (plain and encrypted). Each round adds a box and syncs (a push of one edit and a pull),
//! then syncs again with nothing to send (a pull only). The connection is kept between rounds,
//! as the app keeps it.

use std::time::Instant;

use serde::Serialize;

use crate::dataset::{ImageId, ImageRecord, Region};
use crate::geometry::{ImageRect, ImageSize};
use crate::store::{Command, Store};
use crate::team::client::TeamClient;
use crate::team::cluster::LocalCluster;
use crate::team::review::Role;
use crate::team::server::{BatchSpec, Selection, TeamServer};
use crate::team::state::ImageState;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `owner` (the shared connection, no row-level security) or `own login`.
    pub login: String,
    /// The URL's `sslmode`.
    pub connection: String,
    /// How the server says the connection is encrypted.
    pub encrypted: Option<String>,
    pub push_and_pull_p50_ms: f64,
    pub push_and_pull_p95_ms: f64,
    pub pull_p50_ms: f64,
    pub pull_p95_ms: f64,
}

struct Member {
    name: String,
    client: TeamClient,
    server: TeamServer,
    sslmode: String,
    login: &'static str,
    push: Vec<f64>,
    pull: Vec<f64>,
}

pub fn run(rounds: usize) -> anyhow::Result<Vec<Row>> {
    let cluster = LocalCluster::start_new(false)?;
    let url = cluster.create_database("team")?;
    let lead = TeamServer::init(&url, "lea", 0)?;
    let images: Vec<ImageState> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| {
            ImageState::bare(ImageRecord {
                id: ImageId::of_bytes(format!("bench-tls-{n}").as_bytes()),
                path: format!("/photos/bench-{n}.jpg").into(),
                size: ImageSize::new(4000, 3000),
                bytes: 1,
                added_at_ms: 1,
                status: Default::default(),
                review: None,
            })
        })
        .collect();
    lead.add_images("lea", &images, 0)?;
    let dir = tempfile::tempdir()?;
    let verify = format!(
        "sslmode=verify-full&sslrootcert={}",
        cluster.ca_file().display()
    );
    let mut members = Vec::new();
    let arms = [
        ("plain", "sslmode=disable".to_owned(), false),
        ("tls", verify.clone(), false),
        ("rls", "sslmode=disable".to_owned(), true),
        ("rlstls", verify, true),
    ];
    for (name, query, own_login) in arms {
        let invite = lead.add_member(name, Role::Annotator, 0)?;
        let base = if own_login { invite.url } else { url.clone() };
        let member_url = format!("{base}?{query}");
        members.push(Member {
            name: name.to_owned(),
            client: TeamClient::join(&dir.path().join(format!("{name}.thyme")), &member_url, name)?,
            server: TeamServer::open(&member_url)?,
            sslmode: query
                .split('&')
                .next()
                .unwrap_or_default()
                .trim_start_matches("sslmode=")
                .to_owned(),
            login: if own_login { "own login" } else { "owner" },
            push: Vec::new(),
            pull: Vec::new(),
        });
    }
    // One image each, then warm both: the first sync pulls the member's work.
    lead.create_batch(
        "lea",
        &BatchSpec {
            name: "bench".into(),
            selection: Selection::Count(images.len()),
            annotators: members.iter().map(|m| m.name.clone()).collect(),
            lease_ms: 24 * 3_600_000,
            double_share: 0.0,
            honeypots_per_annotator: 0,
            seed: 1,
        },
        0,
    )?;
    let mut theirs = Vec::new();
    for m in &mut members {
        m.client.sync(&m.server, 0)?;
        let a = lead.assignments_of(&m.name)?;
        let image = a
            .first()
            .map(|a| a.image.clone())
            .ok_or_else(|| anyhow::anyhow!("{} was given no image", m.name))?;
        theirs.push(image);
    }
    for round in 0..rounds {
        for (m, image) in members.iter_mut().zip(&theirs) {
            let x = 10.0 + (round % 50) as f64 * 40.0;
            let region = Region::new(
                image.clone(),
                ImageRect::new(x, 10.0, x + 30.0, 40.0),
                "sign",
            );
            m.client.store_mut().apply(
                &m.name,
                Command::AddRegion {
                    region,
                    links: vec![],
                },
            )?;
            let t = Instant::now();
            m.client.sync(&m.server, round as i64 + 1)?;
            m.push.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            m.client.sync(&m.server, round as i64 + 1)?;
            m.pull.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let mut rows = Vec::new();
    for m in members {
        rows.push(Row {
            login: m.login.to_owned(),
            connection: m.sslmode,
            encrypted: m.server.store().encryption()?,
            push_and_pull_p50_ms: super::percentile(&m.push, 0.5),
            push_and_pull_p95_ms: super::percentile(&m.push, 0.95),
            pull_p50_ms: super::percentile(&m.pull, 0.5),
            pull_p95_ms: super::percentile(&m.pull, 0.95),
        });
    }
    Ok(rows)
}

pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| login | connection | encrypted | sync with one edit p50 ms | p95 ms | sync with nothing to send p50 ms | p95 ms |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | sslmode={} | {} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            r.login,
            r.connection,
            r.encrypted.as_deref().unwrap_or("no"),
            r.push_and_pull_p50_ms,
            r.push_and_pull_p95_ms,
            r.pull_p50_ms,
            r.pull_p95_ms
        ));
    }
    if let [plain, rest @ ..] = rows {
        s.push('\n');
        for (r, what) in
            rest.iter()
                .zip(["TLS", "own login (row-level security)", "own login + TLS"])
        {
            s.push_str(&format!(
                "{what} / owner plain: sync with one edit p50 {:.2}x p95 {:.2}x, sync with nothing to send p50 {:.2}x p95 {:.2}x\n",
                r.push_and_pull_p50_ms / plain.push_and_pull_p50_ms,
                r.push_and_pull_p95_ms / plain.push_and_pull_p95_ms,
                r.pull_p50_ms / plain.pull_p50_ms,
                r.pull_p95_ms / plain.pull_p95_ms
            ));
        }
    }
    s
}
