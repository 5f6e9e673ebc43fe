//! Team mode in the app: background sync and conflicts, a lead's batch and a reviewer's
//! verdict, the export window on a synced file.

use egui_kittest::kittest::{NodeT, Queryable};

use super::common::*;

/// A team on a throwaway PostgreSQL: lead "lea", annotator "ann" and `other`; plus the state
/// of a one-image project's image (with a real file) for the test to put on the server.
fn team_with_an_image(
    root: &std::path::Path,
    other: (&str, thyme_studio::team::review::Role),
) -> (
    thyme_studio::team::cluster::LocalCluster,
    String,
    thyme_studio::team::server::TeamServer,
    thyme_studio::team::state::ImageState,
) {
    use thyme_studio::store::Store;
    use thyme_studio::team::review::Role;
    let solo = one_image_project(root);
    let cluster = thyme_studio::team::cluster::LocalCluster::start_new(false)
        .expect("a local PostgreSQL (scripts/test installs it)");
    let url = cluster.create_database("team").unwrap();
    let server = thyme_studio::team::server::TeamServer::init(&url, "lea", 0).unwrap();
    server.add_member("ann", Role::Annotator, 0).unwrap();
    server.add_member(other.0, other.1, 0).unwrap();
    let local = thyme_studio::store::SqliteStore::open(&solo).unwrap();
    let image = local.images().unwrap().remove(0);
    let state = thyme_studio::team::state::ImageState::read(&local, &image.id)
        .unwrap()
        .unwrap();
    (cluster, url, server, state)
}

#[test]
fn a_team_project_syncs_in_the_background_and_a_conflict_is_settled_in_the_team_window() {
    use thyme_studio::dataset::{ImageRecord, Region};
    use thyme_studio::geometry::ImageRect;
    use thyme_studio::store::{Command, Store};
    use thyme_studio::team::client::TeamClient;
    use thyme_studio::team::review::{Role, WorkState};
    use thyme_studio::team::server::{BatchSpec, Selection};

    let root = tempfile::tempdir().unwrap();
    let (_cluster, url, server, state) = team_with_an_image(root.path(), ("rev", Role::Reviewer));
    let image: ImageRecord = state.image.clone();
    server.add_images("lea", &[state], 0).unwrap();
    server
        .create_batch(
            "lea",
            &BatchSpec {
                name: "b".into(),
                selection: Selection::Count(1),
                annotators: vec!["ann".into()],
                lease_ms: 3_600_000,
                double_share: 0.0,
                honeypots_per_annotator: 0,
                seed: 1,
            },
            0,
        )
        .unwrap();
    // ann boxes a car and syncs; the lead renames it on the server (a reviewer could not
    // before she hands it in); ann, not yet synced, renames it too.
    let ann_file = root.path().join("ann.thyme");
    let mut ann = TeamClient::join(&ann_file, &url, "ann").unwrap();
    ann.sync(&server, 1).unwrap();
    let car = Region::new(
        image.id.clone(),
        ImageRect::new(100.0, 100.0, 160.0, 140.0),
        "car",
    );
    ann.store_mut()
        .apply(
            "ann",
            Command::AddRegion {
                region: car.clone(),
                links: vec![],
            },
        )
        .unwrap();
    ann.sync(&server, 2).unwrap();
    let mut truck = car.clone();
    truck.label = "truck".into();
    server
        .push(
            "lea",
            "lea:1",
            &Command::UpdateRegion {
                before: car.clone(),
                after: truck,
            },
            3,
        )
        .unwrap();
    let mut van = car.clone();
    van.label = "van".into();
    ann.store_mut()
        .apply(
            "ann",
            Command::UpdateRegion {
                before: car.clone(),
                after: van.clone(),
            },
        )
        .unwrap();
    drop(ann);

    let mut h = harness(app_with(Some(ann_file), root.path(), vec![]));
    step_until(&mut h, "the first sync to find the conflict", |h| {
        h.query_by_label_contains("1 conflict(s) to settle")
            .is_some()
    });
    // The image list marks the image.
    assert!(
        h.query_by_label_contains("conflict · in progress")
            .is_some()
    );
    h.get_by_label_contains("1 conflict(s) to settle").click();
    h.run_steps(2);
    h.get_by_label("Conflicts (1)").click();
    h.run_steps(2);
    assert!(
        h.query_by_label_contains("server:  1 box(es): truck")
            .is_some()
    );
    assert!(
        h.query_by_label_contains("yours:   1 box(es): van")
            .is_some()
    );
    h.get_by_label("Keep mine").click();
    step_until(&mut h, "the annotator's version on the server", |h| {
        server.store().region(car.id).unwrap().unwrap().label == "van"
            && h.query_by_label_contains("all synced").is_some()
    });
    // Submitting from My work moves the item on the server.
    h.get_by_label_contains("My work").click();
    h.run_steps(2);
    h.get_by_label("Submit").click();
    step_until(&mut h, "the submission", |_| {
        server.assignments_of("ann").unwrap()[0].state == WorkState::Submitted
    });
    step_until(&mut h, "the list to show the state", |h| {
        h.query_by_label_contains("synced · submitted").is_some()
    });
}

#[test]
fn a_lead_deals_a_batch_and_a_verdict_on_a_box_from_the_review_section_reaches_the_server() {
    use thyme_studio::dataset::Region;
    use thyme_studio::geometry::ImageRect;
    use thyme_studio::store::Store;
    use thyme_studio::team::client::TeamClient;
    use thyme_studio::team::review::Role;

    let root = tempfile::tempdir().unwrap();
    let (_cluster, url, server, mut state) =
        team_with_an_image(root.path(), ("bob", Role::Annotator));
    let image = state.image.clone();
    let sign = Region::new(
        image.id.clone(),
        ImageRect::new(200.0, 200.0, 260.0, 240.0),
        "sign",
    );
    state.regions.push(sign.clone());
    server.add_images("lea", &[state], 0).unwrap();
    let lea_file = root.path().join("lea.thyme");
    let mut lea = TeamClient::join(&lea_file, &url, "lea").unwrap();
    lea.sync(&server, 1).unwrap();
    drop(lea);

    // The lead's own file holds the image she added from the command line.
    assert_eq!(
        TeamClient::open(&lea_file)
            .unwrap()
            .store()
            .images()
            .unwrap()
            .len(),
        1
    );
    let mut h = harness(app_with(Some(lea_file), root.path(), vec![]));
    step_until(&mut h, "the first sync", |h| {
        h.query_by_label_contains("team: lea · all synced")
            .is_some()
    });
    h.get_by_label_contains("team: lea · all synced").click();
    h.run_steps(2);
    step_until(&mut h, "the lead's tab", |h| {
        h.query_by_label("Lead").is_some()
    });
    h.get_by_label("Lead").click();
    h.run_steps(2);
    // One annotator with the default double share: refused with the reason.
    h.get_by_label("ann").click();
    h.run_steps(1);
    h.get_by_label("Create batch").click();
    step_until(&mut h, "the refusal", |h| {
        h.query_by_label_contains("double annotation needs at least two annotators")
            .is_some()
    });
    h.get_by_label("bob").click();
    h.run_steps(1);
    h.get_by_label("Create batch").click();
    step_until(&mut h, "the batch on the server", |_| {
        server.assignments_of("ann").unwrap().len() == 1
    });
    step_until(&mut h, "the batch message", |h| {
        h.query_by_label_contains("batch 1: 1 image(s)").is_some()
    });
    // A verdict on the selected box, from the Review section of the Annotate panel (the
    // default reason is the first listed); the sync sends it to the server.
    // Select the box as a click on it would (the canvas's click path has its own tests).
    h.state_mut().annotate.editor.selected = Some(sign.id);
    h.run_steps(1);
    h.get_by_label("Reject box").click();
    step_until(&mut h, "the verdict on the server", |_| {
        server
            .item_verdicts(&image.id, "ann")
            .unwrap()
            .get(&("box".to_owned(), sign.id.0.to_string()))
            .is_some_and(|v| v.is_rejected() && v.reason.as_deref() == Some("box too loose"))
    });
}

/// Issue 17's sequence in the app: the team example, bob's item fixed and accepted on the
/// server, the lead's file synced; File > Export with "Only accepted images" writes exactly
/// the rows the command line's export writes, and they are the accepted image's questions.
#[test]
fn the_export_window_on_a_synced_team_file_writes_the_accepted_rows() {
    use thyme_studio::team::review::ReviewAction;
    use thyme_studio::team::server::{MAIN_LAYER, TeamServer};
    let cluster = thyme_studio::team::cluster::LocalCluster::start_new(false)
        .expect("a local PostgreSQL (scripts/test installs it)");
    let url = cluster.create_database("gui_export").unwrap();
    let root = tempfile::tempdir().unwrap();
    let summary =
        thyme_studio::team::example::write_example(&url, &root.path().join("ex"), 16).unwrap();
    let server = TeamServer::open(&url).unwrap();
    let bobs = server
        .all_assignments()
        .unwrap()
        .into_iter()
        .find(|a| a.layer == MAIN_LAYER && a.annotator.as_deref() == Some("bob"))
        .unwrap();
    let now = thyme_studio::store::now_ms();
    for (who, action) in [
        ("bob", ReviewAction::Fix),
        ("rev", ReviewAction::Open),
        ("rev", ReviewAction::Accept),
    ] {
        server.act(who, &bobs.image, "bob", &action, now).unwrap();
    }
    let lea = summary
        .member_files
        .iter()
        .find(|(w, _)| w == "lea")
        .unwrap()
        .1
        .clone();
    let mut client = thyme_studio::team::client::TeamClient::open(&lea).unwrap();
    client.sync(&server, now).unwrap();
    drop(client);

    let out = root.path().join("gui/rl.jsonl");
    let mut h = harness(app_with(
        Some(lea.clone()),
        root.path(),
        vec![vec![out.clone()]],
    ));
    h.run_steps(2);
    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label("Export...").click();
    h.run_steps(2);
    h.state_mut().export_window.format = thyme_studio::exchange::Format::ThymeRl;
    h.run_steps(1);
    h.get_by_label("Only accepted images (without rejected items)")
        .click();
    h.run_steps(1);
    h.get_by_label("Choose where...").click();
    step_until(&mut h, "the output", |h| {
        h.state().export_window.out.is_some()
    });
    h.query_all_by_label("Export")
        .find(|n| n.accesskit_node().role() == egui::accesskit::Role::Button)
        .expect("the Export button")
        .click();
    step_until(&mut h, "the export", |h| {
        h.state().export_window.result.is_some()
    });
    assert!(
        matches!(h.state().export_window.result, Some(Ok(_))),
        "{:?}",
        h.state().export_window.result
    );

    // The library's export with the same filter, and the accepted image's questions.
    let cli_out = root.path().join("cli/rl.jsonl");
    let mut options =
        thyme_studio::exchange::ExportOptions::new(thyme_studio::exchange::Format::ThymeRl);
    options.filter.accepted_only = true;
    let store = thyme_studio::store::SqliteStore::open(&lea).unwrap();
    thyme_studio::exchange::export(
        &store,
        &options,
        &cli_out,
        &mut |_, _| {},
        &std::sync::atomic::AtomicBool::new(false),
    )
    .unwrap();
    let ids = |p: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let gui = ids(&out);
    assert!(!gui.is_empty());
    assert_eq!(gui, ids(&cli_out));
    use thyme_studio::store::Store;
    let on_image: std::collections::BTreeSet<String> = store
        .questions(&bobs.image)
        .unwrap()
        .iter()
        .map(|q| q.id.to_string())
        .collect();
    assert!(gui.iter().all(|id| on_image.contains(id)));
}
