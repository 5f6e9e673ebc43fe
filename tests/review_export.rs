//! Review gates the export, in solo and team projects: the team's verdicts reach every
//! member's file through sync and are what `--accepted-only` filters on; a reviewer's verdict
//! given in their own file reaches the server and the others; rejected items never go out.
//! Team tests run against a throwaway PostgreSQL on loopback (scripts/test installs it).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use thyme_studio::annotate::review::review_command;
use thyme_studio::dataset::{Review, ReviewTarget, rules};
use thyme_studio::exchange::{ExportOptions, Format, export};
use thyme_studio::store::{SqliteStore, Store, now_ms};
use thyme_studio::team::client::TeamClient;
use thyme_studio::team::cluster::LocalCluster;
use thyme_studio::team::review::{ReviewAction, WorkState};
use thyme_studio::team::server::{MAIN_LAYER, TeamServer};
use thyme_studio::team::state::ImageState;

/// The question ids of a thyme-rl export of `file` (accepted only).
fn exported_ids(
    file: &Path,
    out: &Path,
) -> (BTreeSet<String>, thyme_studio::exchange::ExportReport) {
    let store = SqliteStore::open(file).unwrap();
    let mut options = ExportOptions::new(Format::ThymeRl);
    options.filter.accepted_only = true;
    let report = export(
        &store,
        &options,
        out,
        &mut |_, _| {},
        &AtomicBool::new(false),
    )
    .unwrap();
    let ids = std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(
                v["review"], "unreviewed",
                "questions themselves were not judged: {l}"
            );
            v["id"].as_str().unwrap().to_owned()
        })
        .collect();
    (ids, report)
}

/// The questions on accepted images that an export may hold (valid, about small boxes, not
/// rejected): of the shared layer, or of one annotator's items in whatever layer they are.
fn accepted_questions(server: &TeamServer, only: Option<&str>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for a in server.all_assignments().unwrap() {
        let mine = only.is_some_and(|who| a.annotator.as_deref() == Some(who));
        if a.state != WorkState::Accepted || !(mine || (only.is_none() && a.layer == MAIN_LAYER)) {
            continue;
        }
        let s = server.image_state(&a.layer, &a.image).unwrap().unwrap();
        assert!(s.image.review.as_ref().is_some_and(Review::is_accepted));
        for q in &s.questions {
            let small = q.regions.iter().all(|id| {
                s.regions
                    .iter()
                    .find(|r| r.id == *id)
                    .is_some_and(|r| rules::check_area(&r.rect, s.image.size).is_ok())
            });
            let rejected = q.review.as_ref().is_some_and(Review::is_rejected);
            if rules::question_errors(q).is_empty() && small && !rejected {
                out.insert(q.id.to_string());
            }
        }
    }
    out
}

/// The worked team example on a throwaway server: lead lea, reviewer rev, annotators ann, bob
/// and cat, bob's shared item rejected by the example's review round.
struct Example {
    _cluster: LocalCluster,
    dir: tempfile::TempDir,
    server: TeamServer,
    files: Vec<(String, std::path::PathBuf)>,
}

impl Example {
    fn new(db: &str) -> Self {
        let cluster =
            LocalCluster::start_new(false).expect("a local PostgreSQL (scripts/test installs it)");
        let url = cluster.create_database(db).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let summary = thyme_studio::team::example::write_example(&url, dir.path(), 16).unwrap();
        Self {
            server: TeamServer::open(&url).unwrap(),
            _cluster: cluster,
            dir,
            files: summary.member_files,
        }
    }

    /// A member's project file.
    fn file(&self, who: &str) -> std::path::PathBuf {
        self.files.iter().find(|(w, _)| w == who).unwrap().1.clone()
    }

    fn sync(&self, who: &str) {
        let mut c = TeamClient::open(&self.file(who)).unwrap();
        c.sync(&self.server, now_ms()).unwrap();
    }

    /// Bob's item in the shared layer.
    fn bobs(&self) -> thyme_studio::team::server::Assignment {
        self.server
            .all_assignments()
            .unwrap()
            .into_iter()
            .find(|a| a.layer == MAIN_LAYER && a.annotator.as_deref() == Some("bob"))
            .unwrap()
    }

    /// `who` moves `annotator`'s item on `image` (as `team review` does).
    fn act(
        &self,
        who: &str,
        image: &thyme_studio::dataset::ImageId,
        annotator: &str,
        action: ReviewAction,
    ) {
        self.server
            .act(who, image, annotator, &action, now_ms())
            .unwrap();
    }
}

#[test]
fn team_acceptance_reaches_the_lead_and_the_annotator_and_gates_the_export() {
    let t = Example::new("review");
    for who in ["lea", "ann", "bob"] {
        t.sync(who);
    }
    let out = |name: &str| t.dir.path().join(name);

    // The example's reviewer rejected the one shared item (bob's): nothing goes out yet, and
    // the report says why.
    let (rows, report) = exported_ids(&t.file("lea"), &out("lea0.jsonl"));
    assert!(rows.is_empty());
    assert!(
        report.left_out.contains_key("image rejected in review"),
        "{report:?}"
    );

    // Bob fixes it, the reviewer opens and accepts it (as `team review ... fix|open|accept`
    // does); after a sync both the lead's and bob's files export exactly its questions.
    let bobs = t.bobs();
    assert_eq!(bobs.state, WorkState::Rejected);
    t.act("bob", &bobs.image, "bob", ReviewAction::Fix);
    t.act("rev", &bobs.image, "bob", ReviewAction::Open);
    t.act("rev", &bobs.image, "bob", ReviewAction::Accept);
    t.sync("lea");
    t.sync("bob");
    let expected = accepted_questions(&t.server, None);
    assert!(!expected.is_empty());
    let (rows, _) = exported_ids(&t.file("lea"), &out("lea.jsonl"));
    assert_eq!(rows, expected);
    let (rows, _) = exported_ids(&t.file("bob"), &out("bob.jsonl"));
    assert_eq!(rows, accepted_questions(&t.server, Some("bob")));
    assert_eq!(rows, expected);

    // Ann's item (her blind second copy of the same image): submit, open, accept, sync;
    // her own file then exports her accepted questions.
    let anns = t
        .server
        .assignments_of("ann")
        .unwrap()
        .into_iter()
        .find(|a| a.kind == "double")
        .unwrap();
    t.act("ann", &anns.image, "ann", ReviewAction::Submit);
    t.act("rev", &anns.image, "ann", ReviewAction::Open);
    t.act("rev", &anns.image, "ann", ReviewAction::Accept);
    t.sync("ann");
    let (rows, _) = exported_ids(&t.file("ann"), &out("ann.jsonl"));
    let anns_expected = accepted_questions(&t.server, Some("ann"));
    assert!(!anns_expected.is_empty());
    assert_eq!(rows, anns_expected);
}

#[test]
fn a_reviewers_verdict_in_their_own_file_reaches_the_server_and_undo_takes_it_back() {
    let t = Example::new("review2");
    let server = &t.server;
    let bobs = t.bobs();
    t.act("bob", &bobs.image, "bob", ReviewAction::Fix);
    t.act("rev", &bobs.image, "bob", ReviewAction::Accept);
    let mut rev = TeamClient::open(&t.file("rev")).unwrap();
    rev.sync(server, now_ms()).unwrap();

    // Reject one question of the accepted image, in the reviewer's own file.
    let shown = ImageState::read(rev.store(), &bobs.image).unwrap().unwrap();
    let q = shown.questions[0].clone();
    let verdict = Review::rejected("rev", "wrong answer", "read it again", now_ms()).unwrap();
    let command =
        review_command(&shown, ReviewTarget::Question(q.id), Some(verdict.clone())).unwrap();
    rev.store_mut().apply("rev", command).unwrap();
    let report = rev.sync(server, now_ms()).unwrap();
    assert_eq!((report.pushed, report.refused, report.conflicts), (1, 0, 0));
    let on_server = server.store().question(q.id).unwrap().unwrap();
    assert_eq!(on_server.review, Some(verdict));

    // The lead's export leaves it out and says why.
    t.sync("lea");
    let (rows, report) = exported_ids(&t.file("lea"), &t.dir.path().join("x.jsonl"));
    assert!(!rows.contains(&q.id.to_string()));
    let item = report
        .left_out_items
        .iter()
        .find(|i| i.id == q.id.to_string())
        .unwrap();
    assert_eq!(item.reason, "question rejected in review");
    assert!(item.verdict.as_deref().unwrap().contains("wrong answer"));

    // The reviewer undoes it; the next sync takes it back everywhere.
    rev.store_mut().undo("rev").unwrap().unwrap();
    rev.sync(server, now_ms()).unwrap();
    assert_eq!(server.store().question(q.id).unwrap().unwrap().review, None);
    t.sync("lea");
    let (rows, _) = exported_ids(&t.file("lea"), &t.dir.path().join("y.jsonl"));
    assert!(rows.contains(&q.id.to_string()));
}

#[test]
fn an_image_verdict_from_a_reviewers_file_moves_the_item_and_an_annotator_cannot_give_one() {
    let t = Example::new("review3");
    let server = &t.server;
    let bobs = t.bobs();
    let state = || server.assignments_for(&bobs.image).unwrap()[0].state;

    // Bob may not accept his own image by editing his file.
    let mut bob = TeamClient::open(&t.file("bob")).unwrap();
    bob.sync(server, now_ms()).unwrap();
    t.act("bob", &bobs.image, "bob", ReviewAction::Fix);
    bob.sync(server, now_ms()).unwrap();
    let shown = ImageState::read(bob.store(), &bobs.image).unwrap().unwrap();
    let forged = review_command(
        &shown,
        ReviewTarget::Image(bobs.image.clone()),
        Some(Review::accepted("bob", "", now_ms())),
    )
    .unwrap();
    bob.store_mut().apply("bob", forged).unwrap();
    assert_eq!(bob.sync(server, now_ms()).unwrap().refused, 1);
    assert_eq!(state(), WorkState::Fixed);

    // The reviewer accepts it from his file: the fixed item is opened and accepted.
    let mut rev = TeamClient::open(&t.file("rev")).unwrap();
    rev.sync(server, now_ms()).unwrap();
    let shown = ImageState::read(rev.store(), &bobs.image).unwrap().unwrap();
    let accept = review_command(
        &shown,
        ReviewTarget::Image(bobs.image.clone()),
        Some(Review::accepted("rev", "good now", now_ms())),
    )
    .unwrap();
    rev.store_mut().apply("rev", accept).unwrap();
    let r = rev.sync(server, now_ms()).unwrap();
    assert_eq!((r.pushed, r.refused, r.conflicts), (1, 0, 0));
    assert_eq!(state(), WorkState::Accepted);
    let image = server.store().image(&bobs.image).unwrap().unwrap();
    assert_eq!(image.review.unwrap().note, "good now");
    // Undone in the reviewer's file: back in review.
    rev.store_mut().undo("rev").unwrap().unwrap();
    rev.sync(server, now_ms()).unwrap();
    assert_eq!(state(), WorkState::InReview);
}

#[test]
fn a_solo_project_reviews_images_boxes_and_questions_and_the_export_follows() {
    use thyme_studio::dataset::{Answer, ImageId, ImageRecord, Question, Region};
    use thyme_studio::geometry::{ImageRect, ImageSize};
    use thyme_studio::store::Command;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("solo.thyme");
    let mut store = SqliteStore::create(&path).unwrap();
    let image = ImageRecord {
        id: ImageId::of_bytes(b"solo"),
        path: dir.path().join("solo.jpg"),
        size: ImageSize::new(4000, 3000),
        bytes: 1,
        added_at_ms: 0,
        status: Default::default(),
        review: None,
    };
    let a = Region::new(
        image.id.clone(),
        ImageRect::new(10.0, 10.0, 60.0, 60.0),
        "a",
    );
    let b = Region::new(
        image.id.clone(),
        ImageRect::new(100.0, 10.0, 160.0, 60.0),
        "b",
    );
    let qa = Question::new(
        image.id.clone(),
        vec![a.id],
        "What is a?",
        Answer::Open { text: "x".into() },
        "ocr",
    );
    let qb = Question::new(
        image.id.clone(),
        vec![b.id],
        "What is b?",
        Answer::Open { text: "y".into() },
        "ocr",
    );
    store
        .apply(
            "me",
            Command::AddImage {
                image: image.clone(),
                regions: vec![a.clone(), b.clone()],
                questions: vec![qa.clone(), qb.clone()],
            },
        )
        .unwrap();
    let out = dir.path().join("o.jsonl");
    // Nothing accepted yet: --accepted-only writes nothing and says why.
    let (rows, report) = exported_ids(&path, &out);
    assert!(rows.is_empty());
    assert_eq!(report.left_out["image not accepted in review"], 4);

    let shown = || {
        ImageState::read(&store_at(&path), &image.id)
            .unwrap()
            .unwrap()
    };
    let reject_b = review_command(
        &shown(),
        ReviewTarget::Region(b.id),
        Some(Review::rejected("me", "box too loose", "", 1).unwrap()),
    )
    .unwrap();
    store.apply("me", reject_b).unwrap();
    let accept = review_command(
        &shown(),
        ReviewTarget::Image(image.id.clone()),
        Some(Review::accepted("me", "", 2)),
    )
    .unwrap();
    store.apply("me", accept).unwrap();
    let (rows, report) = exported_ids(&path, &out);
    assert_eq!(rows, BTreeSet::from([qa.id.to_string()]));
    assert_eq!(report.left_out["box rejected in review"], 1);
    assert_eq!(
        report.left_out["question about a box rejected in review"],
        1
    );

    // A verdict given on what was shown is refused once the item has changed since.
    let stale = shown();
    let mut moved = stale.regions.iter().find(|r| r.id == a.id).unwrap().clone();
    let before = moved.clone();
    moved.rect.x1 = 70.0;
    store
        .apply(
            "me",
            Command::UpdateRegion {
                before,
                after: moved,
            },
        )
        .unwrap();
    let late = review_command(
        &stale,
        ReviewTarget::Region(a.id),
        Some(Review::accepted("me", "", 3)),
    )
    .unwrap();
    let e = store.apply("me", late).unwrap_err().to_string();
    assert!(
        e.contains("box 'a'") && e.contains("edited after it was opened"),
        "{e}"
    );
}

fn store_at(path: &Path) -> SqliteStore {
    SqliteStore::open(path).unwrap()
}

#[test]
fn the_review_queue_is_one_headless_session_for_the_app_and_the_cli_and_a_lost_server_is_said() {
    use thyme_studio::team::session::{TeamRequest, TeamSession};
    let t = Example::new("queue");
    let bobs = t.bobs();
    t.act("bob", &bobs.image, "bob", ReviewAction::Fix);

    // The reviewer's session: one round lists bob's fixed item, without an error.
    let mut rev = TeamSession::open(&t.file("rev")).unwrap();
    let snap = rev.round(None);
    assert_eq!(snap.error, None);
    assert!(
        snap.queue.iter().any(|a| a.image == bobs.image
            && a.annotator.as_deref() == Some("bob")
            && a.state == WorkState::Fixed),
        "{:?}",
        snap.queue
    );
    // A request is carried out in the next round, and its outcome said.
    let snap = rev.round(Some(TeamRequest::Act {
        image: bobs.image.clone(),
        annotator: "bob".into(),
        action: ReviewAction::Open,
    }));
    assert_eq!(
        snap.message.as_deref(),
        Some(format!("{}: in review", bobs.image.short()).as_str())
    );
    assert!(
        snap.diffs
            .contains_key(&(bobs.image.clone(), "bob".to_owned()))
    );

    // The same queue on the command line.
    let cli = |file: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_thyme-studio"))
            .args(["team", "queue"])
            .arg(file)
            .output()
            .unwrap()
    };
    let out = cli(&t.file("rev"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains(&format!("{} bob: in_review", bobs.image.short())),
        "{stdout}"
    );
    // An annotator has no queue: a user error that says so.
    let out = cli(&t.file("ann"));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("for reviewers and leads"));

    // The server goes away: the next round says so instead of showing empty lists.
    let Example {
        _cluster: cluster, ..
    } = t;
    drop(cluster);
    let snap = rev.round(None);
    assert!(snap.error.is_some(), "{snap:?}");
}
