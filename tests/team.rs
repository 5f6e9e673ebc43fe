//! Team mode against a real PostgreSQL server (a throwaway cluster per test, on loopback):
//! sync with a local journal, conflicts with both versions, resent edits, a server that goes
//! away, leases, blind copies, review transitions, pinned comments.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use thyme_studio::dataset::{Answer, ImageRecord, Question, Region};
use thyme_studio::geometry::ImageRect;
use thyme_studio::store::{Command, Store};
use thyme_studio::team::client::{Resolution, SyncState, TeamClient};
use thyme_studio::team::cluster::LocalCluster;
use thyme_studio::team::review::{ReviewAction, Role, WorkState};
use thyme_studio::team::server::{BatchSpec, PushOutcome, Selection, TeamServer};
use thyme_studio::team::state::ImageState;

#[path = "support/team_images.rs"]
mod team_images;
use team_images::image;

const HOUR: i64 = 3_600_000;

struct Team {
    cluster: LocalCluster,
    url: String,
    server: TeamServer,
    dir: tempfile::TempDir,
    images: Vec<ImageRecord>,
}

/// A team of lead "lea", annotators "ann" and "bob", reviewer "rev", with `n` images.
fn team(n: usize) -> Team {
    let cluster =
        LocalCluster::start_new(false).expect("a local PostgreSQL (scripts/test installs it)");
    let url = cluster.create_database("team").unwrap();
    let server = TeamServer::init(&url, "lea", 0).unwrap();
    server.add_member("ann", Role::Annotator, 0).unwrap();
    server.add_member("bob", Role::Annotator, 0).unwrap();
    server.add_member("rev", Role::Reviewer, 0).unwrap();
    let images: Vec<ImageRecord> = (0..n).map(|i| image(&format!("img{i:02}"))).collect();
    let states: Vec<ImageState> = images.iter().cloned().map(ImageState::bare).collect();
    assert_eq!(server.add_images("lea", &states, 0).unwrap(), n);
    Team {
        cluster,
        url,
        server,
        dir: tempfile::tempdir().unwrap(),
        images,
    }
}

impl Team {
    fn client(&self, who: &str) -> TeamClient {
        TeamClient::join(
            &self.dir.path().join(format!("{who}.thyme")),
            &self.url,
            who,
        )
        .unwrap()
    }

    fn batch(&self, annotators: &[&str], lease_ms: i64) {
        self.server
            .create_batch(
                "lea",
                &BatchSpec {
                    name: "b1".into(),
                    selection: Selection::Count(self.images.len()),
                    annotators: annotators.iter().map(|s| s.to_string()).collect(),
                    lease_ms,
                    double_share: 0.0,
                    honeypots_per_annotator: 0,
                    seed: 1,
                },
                0,
            )
            .unwrap();
    }
}

fn add_box(client: &mut TeamClient, image: &ImageRecord, x: f64, label: &str) -> Region {
    let r = Region::new(
        image.id.clone(),
        ImageRect::new(x, 10.0, x + 40.0, 50.0),
        label,
    );
    let who = client.member().to_owned();
    client
        .store_mut()
        .apply(
            &who,
            Command::AddRegion {
                region: r.clone(),
                links: vec![],
            },
        )
        .unwrap();
    r
}

fn relabel(store: &mut dyn Store, who: &str, r: &Region, label: &str) -> Region {
    let mut after = r.clone();
    after.label = label.into();
    store
        .apply(
            who,
            Command::UpdateRegion {
                before: r.clone(),
                after: after.clone(),
            },
        )
        .unwrap();
    after
}

#[test]
fn edits_sync_both_ways_and_each_image_shows_where_it_stands() {
    let t = team(2);
    t.batch(&["ann"], 8 * HOUR);
    let mut ann = t.client("ann");
    let mut rev = t.client("rev");
    let report = ann.sync(&t.server, 1).unwrap();
    assert_eq!(report.pulled_images, 2, "the batch's images arrive");
    assert_eq!(ann.store().images().unwrap().len(), 2);

    let img = &t.images[0];
    let r = add_box(&mut ann, img, 100.0, "sign");
    assert_eq!(
        ann.image_states().unwrap().get(&img.id),
        Some(&SyncState::SavedLocally)
    );
    let report = ann.sync(&t.server, 2).unwrap();
    assert_eq!(report.pushed, 1);
    assert!(ann.image_states().unwrap().is_empty(), "all synced");
    assert_eq!(t.server.store().regions(&img.id).unwrap(), vec![r.clone()]);
    assert_eq!(
        t.server.assignments_of("ann").unwrap()[0].state,
        WorkState::InProgress,
        "the first edit starts the item"
    );

    // Once she hands it in, a reviewer fixes the label from their own client; the annotator
    // gets it on next sync. (Before that the item is hers: a reviewer's edit is refused.)
    rev.sync(&t.server, 3).unwrap();
    let early = relabel(rev.store_mut(), "rev", &r, "too early");
    assert_eq!(rev.sync(&t.server, 3).unwrap().refused, 1);
    rev.resolve(&t.server, &img.id, Resolution::TakeTheirs, 3)
        .unwrap();
    assert_ne!(rev.store().region(r.id).unwrap(), Some(early));
    t.server
        .act("ann", &img.id, "ann", &ReviewAction::Submit, 3)
        .unwrap();
    let fixed = relabel(rev.store_mut(), "rev", &r, "stop sign");
    assert_eq!(rev.sync(&t.server, 4).unwrap().pushed, 1);
    let report = ann.sync(&t.server, 5).unwrap();
    assert_eq!(report.pulled_images, 1);
    assert_eq!(ann.store().region(r.id).unwrap(), Some(fixed));
    // What was pulled is not sent back.
    assert!(ann.unsent().unwrap().is_empty());
    assert_eq!(ann.sync(&t.server, 6).unwrap().pushed, 0);
}

#[test]
fn a_stale_edit_is_a_conflict_with_both_versions_and_either_can_win() {
    let t = team(1);
    t.batch(&["ann"], 8 * HOUR);
    let img = &t.images[0];
    let mut ann = t.client("ann");
    // The lead may change any item (a reviewer only handed-in ones).
    let mut rev = t.client("lea");
    ann.sync(&t.server, 1).unwrap();
    let r = add_box(&mut ann, img, 100.0, "car");
    ann.sync(&t.server, 2).unwrap();
    rev.sync(&t.server, 3).unwrap();

    // Both change the same box; the lead syncs first.
    let theirs = relabel(rev.store_mut(), "lea", &r, "truck");
    rev.sync(&t.server, 4).unwrap();
    let mine = relabel(ann.store_mut(), "ann", &r, "van");
    let report = ann.sync(&t.server, 5).unwrap();
    assert_eq!(report.conflicts, 1);
    assert_eq!(
        ann.image_states().unwrap().get(&img.id),
        Some(&SyncState::Conflict)
    );
    // Never a silent overwrite: the server keeps the lead's label, the client its own,
    // and the conflict holds both.
    assert_eq!(t.server.store().region(r.id).unwrap(), Some(theirs.clone()));
    assert_eq!(ann.store().region(r.id).unwrap(), Some(mine.clone()));
    let conflict = &ann.conflicts().unwrap()[0];
    assert_eq!(conflict.mine.as_ref().unwrap().regions, vec![mine.clone()]);
    assert_eq!(
        conflict.theirs.as_ref().unwrap().regions,
        vec![theirs.clone()]
    );
    assert!(conflict.message.contains("car"), "{}", conflict.message);
    // While the conflict is open, pulls leave the image alone.
    assert_eq!(ann.sync(&t.server, 6).unwrap().pulled_images, 0);
    assert_eq!(ann.store().region(r.id).unwrap(), Some(mine.clone()));

    // Keep mine: the server takes the annotator's version.
    let report = ann
        .resolve(&t.server, &img.id, Resolution::KeepMine, 7)
        .unwrap();
    assert_eq!(report.pushed, 1);
    assert_eq!(t.server.store().region(r.id).unwrap(), Some(mine.clone()));
    assert!(ann.image_states().unwrap().is_empty());

    // Take theirs on the next clash.
    rev.sync(&t.server, 8).unwrap();
    let theirs2 = relabel(rev.store_mut(), "lea", &mine, "minivan");
    rev.sync(&t.server, 9).unwrap();
    relabel(ann.store_mut(), "ann", &mine, "bus");
    assert_eq!(ann.sync(&t.server, 10).unwrap().conflicts, 1);
    ann.resolve(&t.server, &img.id, Resolution::TakeTheirs, 11)
        .unwrap();
    assert_eq!(ann.store().region(r.id).unwrap(), Some(theirs2.clone()));
    assert!(ann.image_states().unwrap().is_empty());
    assert!(
        ann.unsent().unwrap().is_empty(),
        "taking theirs sends nothing back"
    );
}

#[test]
fn a_resent_edit_is_applied_once() {
    let t = team(1);
    t.batch(&["ann"], 8 * HOUR);
    let img = &t.images[0];
    let r = Region::new(img.id.clone(), ImageRect::new(5.0, 5.0, 30.0, 30.0), "x");
    let add = Command::AddRegion {
        region: r.clone(),
        links: vec![],
    };
    let journal_before = t.server.store().journal(0, 10_000).unwrap().len();
    assert_eq!(
        t.server.push("ann", "client-1:7", &add, 1).unwrap(),
        PushOutcome::Applied
    );
    // The client died before it recorded the answer, and sends the same entry again.
    assert_eq!(
        t.server.push("ann", "client-1:7", &add, 2).unwrap(),
        PushOutcome::Applied
    );
    assert_eq!(t.server.store().regions(&img.id).unwrap(), vec![r]);
    assert_eq!(
        t.server.store().journal(0, 10_000).unwrap().len(),
        journal_before + 1
    );
}

#[test]
fn nothing_is_lost_while_the_server_is_down() {
    let mut t = team(1);
    t.batch(&["ann"], 8 * HOUR);
    let img = t.images[0].clone();
    let mut ann = t.client("ann");
    ann.sync(&t.server, 1).unwrap();
    t.cluster.stop(true).unwrap();
    let a = add_box(&mut ann, &img, 10.0, "a");
    let b = add_box(&mut ann, &img, 100.0, "b");
    let err = ann.sync(&t.server, 2).unwrap_err();
    assert!(err.to_string().contains("team server"), "{err}");
    assert_eq!(
        ann.image_states().unwrap().get(&img.id),
        Some(&SyncState::SavedLocally)
    );
    assert_eq!(ann.unsent().unwrap().len(), 2);
    t.cluster.start().unwrap();
    // The old connection died with the server; a client reconnects.
    let server = TeamServer::open(&t.url).unwrap();
    let report = ann.sync(&server, 3).unwrap();
    assert_eq!(report.pushed, 2);
    let mut on_server = server.store().regions(&img.id).unwrap();
    on_server.sort_by_key(|r| r.id);
    let mut want = vec![a, b];
    want.sort_by_key(|r| r.id);
    assert_eq!(on_server, want);
    assert!(ann.image_states().unwrap().is_empty());
}

#[test]
fn an_expired_lease_can_be_reclaimed_and_given_to_someone_else() {
    let t = team(1);
    t.batch(&["ann"], HOUR);
    let img = &t.images[0];
    let mut ann = t.client("ann");
    ann.sync(&t.server, 1).unwrap();
    // Within the lease: nothing to reclaim.
    assert!(
        t.server
            .reclaim_expired("lea", HOUR / 2)
            .unwrap()
            .is_empty()
    );
    let progress = t.server.progress(2 * HOUR).unwrap();
    assert_eq!(progress[0].leases_expired, 1);
    let freed = t.server.reclaim_expired("lea", 2 * HOUR).unwrap();
    assert_eq!(freed.len(), 1);
    assert_eq!(freed[0].annotator, None);
    // The old holder's edits are refused and kept on their machine.
    add_box(&mut ann, img, 10.0, "late");
    let report = ann.sync(&t.server, 2 * HOUR + 1).unwrap();
    assert_eq!(report.refused, 1);
    assert!(ann.conflicts().unwrap()[0].message.contains("not assigned"));
    assert_eq!(ann.store().regions(&img.id).unwrap().len(), 1);
    // The lead gives it to bob, who can work on it; annotators cannot reclaim.
    assert!(t.server.reclaim_expired("bob", 0).is_err());
    t.server
        .reassign("lea", &img.id, "", "bob", 3 * HOUR)
        .unwrap();
    let mut bob = t.client("bob");
    bob.sync(&t.server, 3 * HOUR).unwrap();
    add_box(&mut bob, img, 200.0, "bob's");
    assert_eq!(bob.sync(&t.server, 3 * HOUR + 1).unwrap().pushed, 1);
}

#[test]
fn review_moves_an_item_through_its_states_and_accepted_work_is_read_only() {
    let t = team(1);
    t.batch(&["ann"], 8 * HOUR);
    let img = &t.images[0];
    let mut ann = t.client("ann");
    let mut rev = t.client("rev");
    ann.sync(&t.server, 1).unwrap();
    let r = add_box(&mut ann, img, 10.0, "cat");
    ann.sync(&t.server, 2).unwrap();
    let s = &t.server;
    assert_eq!(
        s.act("ann", &img.id, "ann", &ReviewAction::Submit, 3)
            .unwrap(),
        WorkState::Submitted
    );
    // Submitted work waits for review: the annotator's edits are refused, not lost.
    let r2 = relabel(ann.store_mut(), "ann", &r, "kitten");
    assert_eq!(ann.sync(&t.server, 4).unwrap().refused, 1);
    ann.resolve(&t.server, &img.id, Resolution::TakeTheirs, 5)
        .unwrap();
    // Annotators cannot review; bad reasons are refused.
    assert!(
        s.act("ann", &img.id, "ann", &ReviewAction::Open, 6)
            .is_err()
    );
    assert!(
        s.act("bob", &img.id, "ann", &ReviewAction::Submit, 6)
            .is_err()
    );
    assert_eq!(
        s.act("rev", &img.id, "ann", &ReviewAction::Open, 6)
            .unwrap(),
        WorkState::InReview
    );
    let bad = ReviewAction::Reject {
        reason: "ugly".into(),
        note: String::new(),
    };
    assert!(s.act("rev", &img.id, "ann", &bad, 7).is_err());
    // The reviewer corrects the label, rejects one box with a reason, pins a comment.
    rev.sync(&t.server, 7).unwrap();
    relabel(rev.store_mut(), "rev", &r, "dog");
    rev.sync(&t.server, 8).unwrap();
    s.review_item(
        "rev",
        &img.id,
        "ann",
        &thyme_studio::dataset::ReviewTarget::Region(r.id),
        Some(thyme_studio::dataset::Review::rejected("rev", "wrong label", "it barks", 8).unwrap()),
        8,
    )
    .unwrap();
    let pin = s
        .pin_comment("rev", &img.id, 30.0, 30.0, "look at the tail", 8)
        .unwrap();
    assert!(
        s.pin_comment("rev", &img.id, 9999.0, 30.0, "outside", 8)
            .is_err()
    );
    let reject = ReviewAction::Reject {
        reason: "wrong label".into(),
        note: "see comment".into(),
    };
    assert_eq!(
        s.act("rev", &img.id, "ann", &reject, 9).unwrap(),
        WorkState::Rejected
    );
    // What the reviewer changed, in words.
    let diff = s.review_diff(&img.id, "ann").unwrap();
    assert!(
        diff.iter().any(|l| l.contains("label 'cat' -> 'dog'")),
        "{diff:?}"
    );

    // The annotator sees the rejection with its reason, the verdicts and the comment.
    let mine = &s.assignments_of("ann").unwrap()[0];
    assert_eq!(mine.state, WorkState::Rejected);
    assert_eq!(mine.reason.as_deref(), Some("wrong label"));
    assert_eq!(mine.note.as_deref(), Some("see comment"));
    let verdicts = s.item_verdicts(&img.id, "ann").unwrap();
    assert_eq!(
        verdicts.values().next().unwrap().reason.as_deref(),
        Some("wrong label")
    );
    let comments = s.comments(&img.id).unwrap();
    assert_eq!(
        (comments[0].id, comments[0].text.as_str()),
        (pin, "look at the tail")
    );
    ann.sync(&t.server, 10).unwrap();
    let now = ann.store().region(r.id).unwrap().unwrap();
    assert_eq!(now.label, "dog");
    // Fixing is allowed again.
    relabel(ann.store_mut(), "ann", &now, "dog (sitting)");
    assert_eq!(ann.sync(&t.server, 11).unwrap().pushed, 1);
    assert_eq!(
        s.act("ann", &img.id, "ann", &ReviewAction::Fix, 12)
            .unwrap(),
        WorkState::Fixed
    );
    assert_eq!(
        s.act("rev", &img.id, "ann", &ReviewAction::Open, 13)
            .unwrap(),
        WorkState::InReview
    );
    assert_eq!(
        s.act("rev", &img.id, "ann", &ReviewAction::Accept, 14)
            .unwrap(),
        WorkState::Accepted
    );
    // Accepted: read-only to the annotator.
    let current = ann.store().region(r.id).unwrap().unwrap();
    relabel(ann.store_mut(), "ann", &current, "wolf");
    let report = ann.sync(&t.server, 15).unwrap();
    assert_eq!(report.refused, 1);
    assert!(ann.conflicts().unwrap()[0].message.contains("accepted"));
    assert_eq!(
        t.server.store().region(r.id).unwrap().unwrap().label,
        "dog (sitting)"
    );
    let _ = r2;
}

#[test]
fn double_annotation_and_honeypots_work_in_blind_copies() {
    let t = team(4);
    // The lead annotates image 3 and makes it gold.
    let gold_img = &t.images[3];
    let gold_box = Region::new(
        gold_img.id.clone(),
        ImageRect::new(100.0, 100.0, 140.0, 130.0),
        "bell",
    );
    let mut lead_store = thyme_studio::store::PgStore::open(&t.url).unwrap();
    lead_store
        .apply(
            "lea",
            Command::AddRegion {
                region: gold_box.clone(),
                links: vec![],
            },
        )
        .unwrap();
    let q = Question::new(
        gold_img.id.clone(),
        vec![gold_box.id],
        "What hangs there?",
        Answer::Open {
            text: "a bell".into(),
        },
        "ocr",
    );
    lead_store
        .apply("lea", Command::AddQuestion { question: q })
        .unwrap();
    t.server.set_gold("lea", &gold_img.id, 0).unwrap();
    assert!(
        t.server.set_gold("ann", &gold_img.id, 0).is_err(),
        "only leads set gold"
    );

    let summary = t
        .server
        .create_batch(
            "lea",
            &BatchSpec {
                name: "double".into(),
                selection: Selection::Random { count: 3, seed: 9 },
                annotators: vec!["ann".into(), "bob".into()],
                lease_ms: 8 * HOUR,
                double_share: 1.0,
                honeypots_per_annotator: 1,
                seed: 3,
            },
            0,
        )
        .unwrap();
    assert_eq!(
        (summary.images, summary.doubles, summary.honeypots),
        (3, 3, 2)
    );
    // Gold images never go out as ordinary work.
    assert!(
        t.server
            .assignments_for(&gold_img.id)
            .unwrap()
            .iter()
            .all(|a| a.kind == "honeypot")
    );

    let mut ann = t.client("ann");
    let mut bob = t.client("bob");
    ann.sync(&t.server, 1).unwrap();
    bob.sync(&t.server, 1).unwrap();
    // Each sees every image of theirs (3 primary or double + 1 honeypot, 4 in all), and the
    // honeypot arrives bare: the gold box is not shown.
    assert_eq!(ann.store().images().unwrap().len(), 4);
    assert!(ann.store().regions(&gold_img.id).unwrap().is_empty());

    // Both box the same image blind: neither sees the other's box.
    let shared = t
        .server
        .assignments_of("ann")
        .unwrap()
        .into_iter()
        .find(|a| a.kind == "primary")
        .unwrap()
        .image;
    let shared_img = t.images.iter().find(|i| i.id == shared).unwrap();
    add_box(&mut ann, shared_img, 10.0, "ann's");
    add_box(&mut bob, shared_img, 12.0, "bob's");
    ann.sync(&t.server, 2).unwrap();
    bob.sync(&t.server, 2).unwrap();
    ann.sync(&t.server, 3).unwrap();
    bob.sync(&t.server, 3).unwrap();
    assert_eq!(ann.store().regions(&shared).unwrap().len(), 1);
    assert_eq!(bob.store().regions(&shared).unwrap().len(), 1);
    assert_eq!(t.server.store().regions(&shared).unwrap()[0].label, "ann's");
    let bob_layer = t.server.layer_of("bob", &shared).unwrap();
    assert_eq!(bob_layer, "blind_bob");
    assert_eq!(
        t.server
            .image_state(&bob_layer, &shared)
            .unwrap()
            .unwrap()
            .regions[0]
            .label,
        "bob's"
    );
    // The honeypot work stays out of the gold.
    add_box(&mut ann, gold_img, 101.0, "ann's bell");
    ann.sync(&t.server, 4).unwrap();
    assert_eq!(
        t.server.gold().unwrap()[&gold_img.id].regions,
        vec![gold_box.clone()]
    );
    assert_eq!(
        t.server.store().regions(&gold_img.id).unwrap(),
        vec![gold_box]
    );
}

#[test]
fn a_database_without_team_tables_is_named_and_members_are_checked() {
    let cluster = LocalCluster::start_new(false).unwrap();
    let url = cluster.create_database("plain").unwrap();
    let err = TeamServer::open(&url).unwrap_err();
    assert!(err.to_string().contains("team init"), "{err}");
    let server = TeamServer::init(&url, "lea", 0).unwrap();
    assert!(server.add_member("Bad Name", Role::Annotator, 0).is_err());
    assert!(
        TeamServer::init(&url, "lea", 0).is_ok(),
        "init twice is harmless"
    );
    let err = TeamServer::open("postgres://nobody@127.0.0.1:1/none").unwrap_err();
    assert!(err.to_string().contains("cannot reach"), "{err}");
}

#[test]
fn the_worked_example_tells_a_careful_annotator_from_a_careless_one() {
    use thyme_studio::team::report::{ReportInputs, TeamReport};
    let cluster = LocalCluster::start_new(false).unwrap();
    let url = cluster.create_database("example").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let summary = thyme_studio::team::example::write_example(&url, dir.path(), 16).unwrap();
    assert_eq!(summary.member_files.len(), 5);
    let server = TeamServer::open(&url).unwrap();
    let report = TeamReport::compute(&ReportInputs::gather(&server).unwrap());
    let row = |n: &str| {
        report
            .rows
            .iter()
            .find(|r| r.annotator == n)
            .unwrap()
            .clone()
    };
    let (ann, bob) = (row("ann"), row("bob"));
    // Both did both honeypots; the careful hand scores higher against the gold.
    assert!(ann.gold_boxes.true_positives > 0);
    assert!(
        ann.gold_boxes.f1().unwrap() > bob.gold_boxes.f1().unwrap(),
        "ann {:?} bob {:?}",
        ann.gold_boxes,
        bob.gold_boxes
    );
    assert!(ann.gold_boxes.mean_iou.unwrap() > bob.gold_boxes.mean_iou.unwrap_or(0.0));
    assert_eq!(bob.rejections_by_reason.get("box too loose"), Some(&1));
    assert_eq!(bob.rejection_rate(), Some(1.0));
    // The double annotation of the work image gives matched pairs, so alpha is defined.
    assert!(report.alpha_boxes.is_ok(), "{:?}", report.alpha_boxes);
    assert!(report.overall.double_boxes.true_positives > 0);
    // The reviewer's comment is pinned, and the example refuses a second fill.
    assert_eq!(server.all_comments().unwrap().len(), 1);
    let again = thyme_studio::team::example::write_example(&url, &dir.path().join("again"), 16);
    assert!(again.is_err());
}

/// `url` with the query `q` added.
fn with_query(url: &str, q: &str) -> String {
    format!("{url}{}{q}", if url.contains('?') { '&' } else { '?' })
}

#[test]
fn connections_are_encrypted_as_the_url_says_and_a_certificate_is_checked() {
    use thyme_studio::store::postgres::PgStore;
    let t = team(1);
    let ca = t.cluster.ca_file();
    // The server offers TLS: taken by default, required, and verified against its certificate.
    for q in [
        String::new(),
        "sslmode=require".to_owned(),
        format!("sslmode=verify-full&sslrootcert={}", ca.display()),
        format!("sslmode=verify-ca&sslrootcert={}", ca.display()),
    ] {
        let url = if q.is_empty() {
            t.url.clone()
        } else {
            with_query(&t.url, &q)
        };
        let store = PgStore::connect(&url).unwrap_or_else(|e| panic!("{q}: {e}"));
        let how = store.encryption().unwrap();
        assert!(
            how.as_deref().is_some_and(|v| v.starts_with("TLS")),
            "{q}: {how:?}"
        );
    }
    let plain = PgStore::connect(&with_query(&t.url, "sslmode=disable")).unwrap();
    assert_eq!(plain.encryption().unwrap(), None);
    // The status says so.
    let lines = TeamServer::open(&with_query(&t.url, "sslmode=require"))
        .unwrap()
        .status_lines(0)
        .unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("connection: encrypted (TLS")),
        "{lines:?}"
    );

    // A certificate from another authority does not verify: refused, with what to do.
    let other = t.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=someone else"])
        .arg("-keyout")
        .arg(other.join("k.pem"))
        .arg("-out")
        .arg(other.join("ca.pem"))
        .output()
        .unwrap();
    assert!(status.status.success());
    let url = with_query(
        &t.url,
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            other.join("ca.pem").display()
        ),
    );
    let e = PgStore::connect(&url).unwrap_err().to_string();
    assert!(e.contains("does not verify"), "{e}");
    assert!(e.contains("127.0.0.1"), "names the server: {e}");
    // verify-full checks the name too: the certificate is for 127.0.0.1 and localhost.
    let by_name = t.url.replace("127.0.0.1", "localhost");
    let e = PgStore::connect(&with_query(
        &by_name,
        &format!("sslmode=verify-full&sslrootcert={}", ca.display()),
    ));
    assert!(e.is_ok(), "localhost is in the certificate: {:?}", e.err());
    // Bad settings are one line each.
    for (q, says) in [
        ("sslmode=verify-full", "sslrootcert"),
        ("sslmode=always", "not a mode"),
    ] {
        let e = PgStore::connect(&with_query(&t.url, q))
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{q}: {e}");
    }
}

#[test]
fn a_client_that_requires_tls_is_refused_by_a_server_without_it() {
    use thyme_studio::store::postgres::PgStore;
    let cluster = LocalCluster::start_new_with(false, false).unwrap();
    let url = cluster.create_database("team").unwrap();
    // Plain works by default (prefer), and says it is plain.
    let store = PgStore::connect(&url).unwrap();
    assert_eq!(store.encryption().unwrap(), None);
    let e = PgStore::connect(&with_query(&url, "sslmode=require"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not offer TLS"), "{e}");
}
