//! The team server's guard against its own members, tried the way a member would try it:
//! `psql` with the member's own login (not our client), against a real PostgreSQL with TLS
//! on. Each attempt must be refused by the server and leave every table as it was; the app's
//! own flows must keep working through the same logins; a database made by the previous
//! version upgrades in place.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command as Process;

use thyme_studio::dataset::{Answer, ImageId, Question, Region, RegionId};
use thyme_studio::geometry::ImageRect;
use thyme_studio::store::{Command, Store};
use thyme_studio::team::client::TeamClient;
use thyme_studio::team::cluster::{LocalCluster, server_programs};
use thyme_studio::team::review::{ReviewAction, Role};
use thyme_studio::team::server::{BatchSpec, Invite, Selection, TeamError, TeamServer};
use thyme_studio::team::state::ImageState;

#[path = "support/team_images.rs"]
mod team_images;
use team_images::image;

const HOUR: i64 = 3_600_000;

/// An image with one box and one question about it.
fn annotated(name: &str, label: &str, answer: &str) -> ImageState {
    let image = image(name);
    let region = Region::new(
        image.id.clone(),
        ImageRect::new(100.0, 100.0, 160.0, 140.0),
        label,
    );
    let question = Question::new(
        image.id.clone(),
        vec![region.id],
        format!("What does the {label} say?"),
        Answer::Open {
            text: answer.into(),
        },
        "ocr",
    );
    ImageState {
        image,
        regions: vec![region],
        questions: vec![question],
    }
}

struct Setup {
    _cluster: LocalCluster,
    owner: String,
    server: TeamServer,
    ann: Invite,
    bob: Invite,
    rev: Invite,
    gold: ImageId,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let cluster =
            LocalCluster::start_new(false).expect("a local PostgreSQL (scripts/test installs it)");
        let owner = cluster.create_database("team").unwrap();
        let server = TeamServer::init(&owner, "lea", 0).unwrap();
        let ann = server.add_member("ann", Role::Annotator, 0).unwrap();
        let bob = server.add_member("bob", Role::Annotator, 0).unwrap();
        let rev = server.add_member("rev", Role::Reviewer, 0).unwrap();
        let mut states: Vec<ImageState> = (0..4)
            .map(|i| annotated(&format!("img{i}"), "sign", &format!("answer {i}")))
            .collect();
        let gold = annotated("gold", "GOLD-SIGN", "GOLD-ANSWER");
        let gold_id = gold.image.id.clone();
        states.push(gold);
        assert_eq!(server.add_images("lea", &states, 0).unwrap(), 5);
        server.set_gold("lea", &gold_id, 0).unwrap();
        server
            .create_batch(
                "lea",
                &BatchSpec {
                    name: "week1".into(),
                    selection: Selection::Count(4),
                    annotators: vec!["ann".into(), "bob".into()],
                    lease_ms: 8 * HOUR,
                    double_share: 0.5,
                    honeypots_per_annotator: 1,
                    seed: 3,
                },
                0,
            )
            .unwrap();
        Self {
            _cluster: cluster,
            owner,
            server,
            ann,
            bob,
            rev,
            gold: gold_id,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// An annotator's primary items.
    fn primaries(&self, who: &str) -> Vec<ImageId> {
        self.server
            .assignments_of(who)
            .unwrap()
            .into_iter()
            .filter(|a| a.kind == "primary")
            .map(|a| a.image)
            .collect()
    }

    fn assignment_id(&self, who: &str, image: &ImageId) -> i64 {
        self.server
            .assignments_of(who)
            .unwrap()
            .into_iter()
            .find(|a| &a.image == image && a.kind == "primary")
            .unwrap()
            .id
    }

    /// Every table and role a member might try to change, as one string.
    fn fingerprint(&self) -> String {
        let tables = [
            "public.images",
            "public.regions",
            "public.questions",
            "public.gold",
            "public.assignments",
            "public.members",
            "public.review_events",
            "public.sync_log",
            "public.changes",
            "public.categories",
            "blind_ann.images",
            "blind_ann.regions",
            "blind_bob.images",
            "blind_bob.regions",
        ];
        let mut parts: Vec<String> = tables
            .iter()
            .map(|t| {
                format!("SELECT '{t}' || md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {t} x")
            })
            .collect();
        parts.push("SELECT 'roles' || md5(string_agg(rolname || rolsuper::text || rolcreaterole::text || rolcanlogin::text || rolbypassrls::text, '|' ORDER BY rolname)) FROM pg_roles".into());
        parts.push("SELECT 'groups' || md5(coalesce(string_agg(roleid::regrole::text || '>' || member::regrole::text, '|' ORDER BY 1), '')) FROM pg_auth_members".into());
        parts.push("SELECT 'rls' || string_agg(relname || relrowsecurity::text, '|' ORDER BY relname) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'".into());
        let out = psql(&self.owner, &parts.join(" UNION ALL "));
        assert!(out.ok, "{}", out.err);
        let mut lines: Vec<&str> = out.out.lines().collect();
        lines.sort_unstable();
        lines.join("\n")
    }

    /// `sql` as `url`'s login must fail with `expect` in the message (`a|b`: either, as
    /// PostgreSQL versions word some refusals differently), and change nothing.
    fn refused(&self, url: &str, sql: &str, expect: &str) {
        let before = self.fingerprint();
        let out = psql(url, sql);
        assert!(!out.ok, "the server let this through: {sql}\n{}", out.out);
        assert!(
            expect.split('|').any(|e| out.err.contains(e)),
            "{sql}: expected '{expect}', got: {}",
            out.err
        );
        assert_eq!(self.fingerprint(), before, "{sql} changed something");
    }

    /// `sql` as `url`'s login runs but sees or touches nothing: its output is `expect`.
    fn filtered(&self, url: &str, sql: &str, expect: &str) {
        let before = self.fingerprint();
        let out = psql(url, sql);
        assert!(out.ok, "{sql}: {}", out.err);
        assert_eq!(out.out.trim(), expect, "{sql}");
        assert_eq!(self.fingerprint(), before, "{sql} changed something");
    }
}

struct Psql {
    ok: bool,
    out: String,
    err: String,
}

/// Run one statement with the real `psql` (tuples only, unaligned, stop on error).
fn psql(url: &str, sql: &str) -> Psql {
    let bin: PathBuf = server_programs().unwrap().join("psql");
    let out = Process::new(bin)
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql runs");
    Psql {
        ok: out.status.success(),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_member_works_through_their_own_login_and_cannot_skip_review() {
    let s = Setup::new();
    let mine = s.primaries("ann");
    let (first, second) = (mine[0].clone(), mine[1].clone());

    // Ann works from her own file, linked with her join string: the password is kept out of
    // the file, her edit reaches the server through row-level security.
    let file = s.dir.path().join("ann.thyme");
    let mut ann = TeamClient::join(&file, &s.ann.url, "ann").unwrap();
    assert_eq!(
        thyme_studio::team::credentials::split_password(ann.url()).1,
        None,
        "the file's URL has no password"
    );
    let sql_file = std::fs::read(&file).unwrap();
    let password = s
        .ann
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('@')
        .next()
        .unwrap();
    assert!(
        !sql_file
            .windows(password.len())
            .any(|w| w == password.as_bytes()),
        "the password is in the project file"
    );
    let as_ann = TeamServer::open(&s.ann.url).unwrap();
    assert_eq!(as_ann.login(), Some(&("ann".to_owned(), Role::Annotator)));
    ann.sync(&as_ann, 1).unwrap();
    let box_on = |client: &mut TeamClient, image: &ImageId, label: &str| {
        let r = Region::new(
            image.clone(),
            ImageRect::new(300.0, 300.0, 340.0, 330.0),
            label,
        );
        client
            .store_mut()
            .apply(
                "ann",
                Command::AddRegion {
                    region: r,
                    links: vec![],
                },
            )
            .unwrap();
    };
    box_on(&mut ann, &first, "exit");
    let report = ann.sync(&as_ann, 2).unwrap();
    assert_eq!((report.pushed, report.refused, report.conflicts), (1, 0, 0));
    assert_eq!(
        s.server.store().regions(&first).unwrap().len(),
        2,
        "the box is on the server"
    );
    // Her list says which copies are blind, never which blind copy is a honeypot.
    let kinds: Vec<String> = as_ann
        .assignments_of("ann")
        .unwrap()
        .into_iter()
        .map(|a| a.kind)
        .collect();
    assert!(
        kinds.iter().all(|k| k == "primary" || k == "blind"),
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "blind"));

    // She submits, the reviewer accepts, each through their own login.
    as_ann
        .act("ann", &first, "ann", &ReviewAction::Submit, 3)
        .unwrap();
    let as_rev = TeamServer::open(&s.rev.url).unwrap();
    as_rev
        .act("rev", &first, "ann", &ReviewAction::Accept, 4)
        .unwrap();
    // Acting as someone else is refused by the server's own function.
    let err = as_ann
        .act("bob", &second, "bob", &ReviewAction::Submit, 5)
        .unwrap_err();
    assert!(
        err.to_string().contains("signed in as ann") || err.to_string().contains("bob"),
        "{err}"
    );

    // An edit of the accepted item is refused, and stays in her file.
    box_on(&mut ann, &first, "late");
    let report = ann.sync(&as_ann, 6).unwrap();
    assert_eq!(report.refused, 1);
    assert_eq!(s.server.store().regions(&first).unwrap().len(), 2);

    // `team credentials` finds her password again from the file's URL.
    let completed = thyme_studio::team::credentials::complete(ann.url());
    assert_eq!(completed, s.ann.url);
}

#[test]
fn an_annotator_with_psql_is_refused_everything_outside_her_job() {
    let s = Setup::new();
    let ann_items = s.primaries("ann");
    let bob_items = s.primaries("bob");
    let accepted = ann_items[0].clone();
    let open = ann_items[1].clone();
    let as_ann = TeamServer::open(&s.ann.url).unwrap();
    as_ann
        .act("ann", &accepted, "ann", &ReviewAction::Submit, 1)
        .unwrap();
    let as_rev = TeamServer::open(&s.rev.url).unwrap();
    as_rev
        .act("rev", &accepted, "ann", &ReviewAction::Accept, 2)
        .unwrap();
    let tag = psql(&s.owner, "SELECT tag FROM team_schema")
        .out
        .trim()
        .to_owned();
    let url = s.ann.url.as_str();
    let gold = s.gold.as_str();

    // Her own work is hers to read.
    let out = psql(url, "SELECT count(*) FROM questions");
    assert_eq!(out.out.trim(), "2", "{}", out.err);
    let own_copies = psql(&s.owner, "SELECT count(*) FROM blind_ann.images").out;
    assert_eq!(
        psql(url, "SELECT count(*) FROM blind_ann.images").out,
        own_copies
    );
    assert_ne!(own_copies.trim(), "0");

    // Gold boxes and answers.
    s.refused(
        url,
        "SELECT state FROM gold",
        "permission denied for table gold",
    );
    s.filtered(
        url,
        &format!("SELECT answer FROM questions WHERE image_id = '{gold}'"),
        "",
    );
    // A honeypot's truth: hidden in the shared layer, bare in her blind copy.
    s.filtered(
        url,
        &format!("SELECT label FROM regions WHERE image_id = '{gold}'"),
        "",
    );
    s.filtered(
        url,
        &format!("SELECT count(*) FROM blind_ann.regions WHERE image_id = '{gold}'"),
        "0",
    );
    s.refused(
        url,
        "SELECT kind FROM assignments",
        "permission denied for table assignments",
    );
    // Another annotator's blind copy, and another annotator's work.
    s.refused(
        url,
        "SELECT * FROM blind_bob.regions",
        "permission denied for schema blind_bob",
    );
    s.filtered(
        url,
        &format!(
            "SELECT count(*) FROM regions WHERE image_id = '{}'",
            bob_items[0].as_str()
        ),
        "0",
    );
    // Updating accepted work.
    s.filtered(
        url,
        &format!(
            "UPDATE regions SET label = 'forged' WHERE image_id = '{}'",
            accepted.as_str()
        ),
        "UPDATE 0",
    );
    s.filtered(
        url,
        &format!(
            "DELETE FROM questions WHERE image_id = '{}'",
            accepted.as_str()
        ),
        "DELETE 0",
    );
    s.refused(
        url,
        &format!(
            "INSERT INTO regions (id, image_id, x0, y0, x1, y1, label) VALUES ('{}', '{}', 1, 1, 2, 2, 'forged')",
            RegionId::new(),
            accepted.as_str()
        ),
        "row-level security",
    );
    // Verdicts: in the review tables, on an item, through the review function.
    s.refused(
        url,
        "INSERT INTO review_events (assignment_id, actor, from_state, to_state, at_ms) VALUES (1, 'rev', 'in_review', 'accepted', 0)",
        "permission denied for table review_events",
    );
    s.refused(
        url,
        &format!(
            "UPDATE images SET review = '{{\"verdict\":\"accepted\",\"by\":\"ann\"}}' WHERE id = '{}'",
            open.as_str()
        ),
        "annotators do not give verdicts",
    );
    s.refused(
        url,
        &format!(
            "SELECT thyme_move({}, 'ann', 'accepted', NULL, NULL, NULL, 0)",
            s.assignment_id("ann", &open)
        ),
        "may not move",
    );
    s.refused(
        url,
        "UPDATE assignments SET state = 'accepted'",
        "permission denied for table assignments",
    );
    s.refused(
        url,
        &format!(
            "SELECT thyme_move({}, 'bob', 'submitted', NULL, NULL, NULL, 0)",
            s.assignment_id("bob", &bob_items[0])
        ),
        "signed in as ann",
    );
    s.refused(
        url,
        "INSERT INTO sync_log (op_key, actor, layer, outcome, message, command, at_ms) VALUES ('x:1', 'bob', 'main', 'applied', '', '', 0)",
        "row-level security",
    );
    // Roles: her own, a group's, the members table.
    s.refused(
        url,
        &format!("GRANT \"{tag}_lead\" TO CURRENT_USER"),
        "must have admin option|permission denied to grant role",
    );
    s.refused(
        url,
        "UPDATE members SET role = 'lead' WHERE name = 'ann'",
        "permission denied for table members",
    );
    s.refused(
        url,
        "ALTER ROLE CURRENT_USER SUPERUSER",
        "must be superuser|permission denied",
    );
    s.refused(
        url,
        "ALTER ROLE CURRENT_USER BYPASSRLS",
        "must be superuser|must have the BYPASSRLS|permission denied",
    );
    // Password hashes.
    s.refused(
        url,
        "SELECT rolname, rolpassword FROM pg_authid",
        "permission denied for table pg_authid",
    );
    // Dropping or altering tables, and turning the guard off.
    s.refused(url, "DROP TABLE regions", "must be owner of table regions");
    s.refused(
        url,
        "ALTER TABLE assignments DISABLE ROW LEVEL SECURITY",
        "must be owner of table assignments",
    );
    s.refused(
        url,
        "CREATE TABLE public.mine (x int)",
        "permission denied for schema public",
    );
}

#[test]
fn a_reviewer_changes_only_handed_in_work_and_a_removed_member_cannot_connect() {
    let s = Setup::new();
    let bob_items = s.primaries("bob");
    let url = s.rev.url.as_str();
    // Bob's items are still with bob (todo): the reviewer may read but not change them.
    s.filtered(
        url,
        &format!(
            "SELECT count(*) FROM regions WHERE image_id = '{}'",
            bob_items[0].as_str()
        ),
        "1",
    );
    s.filtered(
        url,
        &format!(
            "UPDATE regions SET label = 'x' WHERE image_id = '{}'",
            bob_items[0].as_str()
        ),
        "UPDATE 0",
    );
    s.refused(
        url,
        "DELETE FROM assignments",
        "permission denied for table assignments",
    );
    s.refused(
        url,
        "SELECT rolpassword FROM pg_authid",
        "permission denied",
    );
    // Once handed in, the reviewer may correct it.
    let as_bob = TeamServer::open(&s.bob.url).unwrap();
    as_bob
        .act("bob", &bob_items[0], "bob", &ReviewAction::Submit, 1)
        .unwrap();
    let out = psql(
        url,
        &format!(
            "UPDATE regions SET label = 'corrected' WHERE image_id = '{}'",
            bob_items[0].as_str()
        ),
    );
    assert_eq!(out.out.trim(), "UPDATE 1", "{}", out.err);

    // Bob has an edit not sent yet when the lead removes him: his login stops working,
    // the edit stays in his file.
    let file = s.dir.path().join("bob.thyme");
    let mut bob = TeamClient::join(&file, &s.bob.url, "bob").unwrap();
    bob.sync(&as_bob, 2).unwrap();
    let r = Region::new(
        bob_items[1].clone(),
        ImageRect::new(10.0, 10.0, 50.0, 40.0),
        "pending",
    );
    bob.store_mut()
        .apply(
            "bob",
            Command::AddRegion {
                region: r,
                links: vec![],
            },
        )
        .unwrap();
    s.server.remove_member("lea", "bob", 3).unwrap();
    let before = s.fingerprint();
    let out = psql(&s.bob.url, "SELECT 1");
    assert!(!out.ok);
    assert!(
        out.err.contains("password authentication failed")
            || out.err.contains("not permitted to log in"),
        "{}",
        out.err
    );
    let err = TeamServer::open(&s.bob.url).unwrap_err();
    assert!(
        err.to_string().contains("127.0.0.1"),
        "names the server: {err}"
    );
    assert_eq!(bob.unsent().unwrap().len(), 1, "his edit waits in his file");
    assert_eq!(s.fingerprint(), before);
    // Off the team for the app too: not listed, given no work; adding him back works.
    assert!(s.server.members().unwrap().iter().all(|m| m.name != "bob"));
    assert!(s.server.role_of("bob").is_err());
    let again = s.server.add_member("bob", Role::Annotator, 4).unwrap();
    assert!(psql(&again.url, "SELECT 1").ok);
    assert!(
        !psql(&s.bob.url, "SELECT 1").ok,
        "the old password stays dead"
    );
}

#[test]
fn a_team_database_of_the_previous_version_upgrades_in_place() {
    let cluster =
        LocalCluster::start_new(false).expect("a local PostgreSQL (scripts/test installs it)");
    let owner = cluster.create_database("team").unwrap();
    // `team example` as the previous version wrote it (pg_dump --no-owner --no-privileges).
    let gz = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/team/v1-example.sql.gz"),
    )
    .unwrap();
    let mut sql = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut sql).unwrap();
    let dump = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(dump.path(), sql).unwrap();
    let bin = server_programs().unwrap().join("psql");
    let status = Process::new(bin)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &owner, "-f"])
        .arg(dump.path())
        .status()
        .unwrap();
    assert!(status.success());
    let before: Vec<_> = {
        let out = psql(
            &owner,
            "SELECT count(*) FROM regions UNION ALL SELECT count(*) FROM assignments UNION ALL SELECT count(*) FROM blind_ann.regions",
        );
        out.out.lines().map(str::to_owned).collect()
    };

    // Members' apps are told to wait for the lead; the lead's init upgrades it.
    match TeamServer::open(&owner) {
        Err(TeamError::OldTeamSchema(_)) => {}
        other => panic!("expected the old-version message, got {other:?}"),
    }
    let server = TeamServer::init(&owner, "lea", 0).unwrap();
    let invites = server.invite_missing(&["lea"]).unwrap();
    let names: Vec<&str> = invites.iter().map(|i| i.member.as_str()).collect();
    assert_eq!(names, ["ann", "bob", "cat", "rev"]);
    let after: Vec<_> = {
        let out = psql(
            &owner,
            "SELECT count(*) FROM regions UNION ALL SELECT count(*) FROM assignments UNION ALL SELECT count(*) FROM blind_ann.regions",
        );
        out.out.lines().map(str::to_owned).collect()
    };
    assert_eq!(before, after, "nothing lost in the upgrade");

    // Ann's new login sees her own work only; bob's blind copy and the gold are closed.
    let ann = &invites[0].url;
    let as_ann = TeamServer::open(ann).unwrap();
    let mine = as_ann.assignments_of("ann").unwrap();
    assert!(!mine.is_empty());
    let visible = psql(ann, "SELECT count(DISTINCT image_id) FROM regions").out;
    let hers = mine.iter().filter(|a| a.layer == "main").count();
    assert!(visible.trim().parse::<usize>().unwrap() <= hers);
    assert!(!psql(ann, "SELECT * FROM blind_bob.regions").ok);
    assert!(!psql(ann, "SELECT * FROM gold").ok);
    assert!(psql(ann, "SELECT count(*) FROM blind_ann.regions").ok);
    // Running init again changes nothing and issues nobody new credentials.
    let again = TeamServer::init(&owner, "lea", 0).unwrap();
    assert!(again.invite_missing(&["lea"]).unwrap().is_empty());
    let _ = Store::stats(again.store()).unwrap();
}
