//! The store: edits, rules, undo/redo, journal. The conformance checks run against both
//! backends (a SQLite project file and a PostgreSQL database on a throwaway local server);
//! the SQLite-only ones cover restarts and bad files.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use thyme_studio::dataset::{Answer, Category, ImageId, ImageRecord, Question, Region};
use thyme_studio::geometry::{ImageRect, ImageSize};
use thyme_studio::store::{Command, JournalAction, PgStore, SqliteStore, Store, StoreError};
use thyme_studio::team::cluster::LocalCluster;

fn image(name: &str, w: u32, h: u32) -> ImageRecord {
    ImageRecord {
        id: ImageId::of_bytes(name.as_bytes()),
        path: format!("/nowhere/{name}.jpg").into(),
        size: ImageSize::new(w, h),
        bytes: 100,
        added_at_ms: 1,
        status: Default::default(),
        review: None,
    }
}

fn add_image(store: &mut dyn Store, img: &ImageRecord) {
    store
        .apply(
            "ann",
            Command::AddImage {
                image: img.clone(),
                regions: vec![],
                questions: vec![],
            },
        )
        .unwrap();
}

fn add_region(store: &mut dyn Store, region: &Region) {
    store
        .apply(
            "ann",
            Command::AddRegion {
                region: region.clone(),
                links: vec![],
            },
        )
        .unwrap();
}

fn add_question(store: &mut dyn Store, question: &Question) {
    store
        .apply(
            "ann",
            Command::AddQuestion {
                question: question.clone(),
            },
        )
        .unwrap();
}

fn open_question(
    img: &ImageRecord,
    region: &Region,
    text: &str,
    answer: &str,
    category: &str,
) -> Question {
    Question::new(
        img.id.clone(),
        vec![region.id],
        text,
        Answer::Open {
            text: answer.into(),
        },
        category,
    )
}

fn new_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::create(&dir.path().join("p.thyme")).unwrap();
    (dir, store)
}

#[test]
fn a_new_project_has_the_builtin_categories_and_wal_mode() {
    let (dir, store) = new_store();
    let names: Vec<String> = store
        .categories()
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    for c in thyme_studio::dataset::category::BUILTIN {
        assert!(names.contains(&c.to_owned()), "{c} missing");
    }
    assert_eq!(store.integrity_check(), Ok(()));
    drop(store);
    // WAL mode is persistent in the file: a plain connection sees it.
    let conn = rusqlite::Connection::open(dir.path().join("p.thyme")).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

fn regions_and_questions_round_trip(store: &mut dyn Store) {
    let img = image("a", 4000, 3000);
    add_image(store, &img);
    let r = Region::new(
        img.id.clone(),
        ImageRect::new(10.0, 20.0, 110.0, 70.0),
        "sign",
    );
    add_region(store, &r);
    let q = Question::new(
        img.id.clone(),
        vec![r.id],
        "What does the sign say?",
        Answer::Choice {
            options: vec!["STOP".into(), "GO".into()],
            correct: 1,
        },
        "ocr",
    );
    add_question(store, &q);
    assert_eq!(store.regions(&img.id).unwrap(), vec![r]);
    assert_eq!(store.questions(&img.id).unwrap(), vec![q]);
}

fn a_box_outside_the_image_is_refused_and_nothing_changes(store: &mut dyn Store) {
    let img = image("a", 4000, 3000);
    add_image(store, &img);
    let before = store.journal(0, 100).unwrap().len();
    let r = Region::new(
        img.id.clone(),
        ImageRect::new(3990.0, 0.0, 4001.0, 10.0),
        "x",
    );
    let err = store
        .apply(
            "ann",
            Command::AddRegion {
                region: r,
                links: vec![],
            },
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Rule(_)), "{err}");
    assert!(store.regions(&img.id).unwrap().is_empty());
    assert_eq!(store.journal(0, 100).unwrap().len(), before);
}

fn a_question_cannot_link_a_box_of_another_image(store: &mut dyn Store) {
    let (a, b) = (image("a", 4000, 3000), image("b", 4000, 3000));
    add_image(store, &a);
    add_image(store, &b);
    let r = Region::new(b.id.clone(), ImageRect::new(0.0, 0.0, 5.0, 5.0), "x");
    add_region(store, &r);
    let q = open_question(&a, &r, "q", "a", "ocr");
    let err = store
        .apply("ann", Command::AddQuestion { question: q })
        .unwrap_err();
    assert!(matches!(err, StoreError::ForeignRegion { .. }), "{err}");
}

fn unknown_categories_are_refused_and_custom_ones_can_be_added(store: &mut dyn Store) {
    let img = image("a", 4000, 3000);
    add_image(store, &img);
    let r = Region::new(img.id.clone(), ImageRect::new(0.0, 0.0, 5.0, 5.0), "x");
    add_region(store, &r);
    let q = open_question(&img, &r, "q", "a", "counting");
    assert!(matches!(
        store.apply(
            "ann",
            Command::AddQuestion {
                question: q.clone()
            }
        ),
        Err(StoreError::UnknownCategory(_))
    ));
    store
        .apply(
            "ann",
            Command::AddCategory {
                category: Category::custom("Counting"),
            },
        )
        .unwrap();
    add_question(store, &q);
    let err = store
        .apply(
            "ann",
            Command::RemoveCategory {
                category: Category::custom("counting"),
            },
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::CategoryInUse { count: 1, .. }),
        "{err}"
    );
}

#[test]
fn undo_and_redo_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.thyme");
    let img = image("a", 4000, 3000);
    let r = Region::new(img.id.clone(), ImageRect::new(10.0, 10.0, 20.0, 20.0), "r");
    let mut moved = r.clone();
    moved.rect = ImageRect::new(30.0, 30.0, 40.0, 40.0);
    {
        let mut store = SqliteStore::create(&path).unwrap();
        add_image(&mut store, &img);
        add_region(&mut store, &r);
        store
            .apply(
                "ann",
                Command::UpdateRegion {
                    before: r.clone(),
                    after: moved.clone(),
                },
            )
            .unwrap();
    }
    let mut store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.region(r.id).unwrap(), Some(moved.clone()));
    store.undo("rev").unwrap().unwrap();
    assert_eq!(store.region(r.id).unwrap(), Some(r.clone()));
    drop(store);
    let mut store = SqliteStore::open(&path).unwrap();
    store.undo("rev").unwrap().unwrap();
    assert_eq!(store.region(r.id).unwrap(), None);
    store.redo("rev").unwrap().unwrap();
    assert_eq!(store.region(r.id).unwrap(), Some(r.clone()));
    drop(store);
    let mut store = SqliteStore::open(&path).unwrap();
    store.redo("rev").unwrap().unwrap();
    assert_eq!(store.region(r.id).unwrap(), Some(moved));
    assert!(store.redo("rev").unwrap().is_none());
}

fn a_new_edit_discards_the_redo_history(store: &mut dyn Store) {
    let img = image("a", 4000, 3000);
    add_image(store, &img);
    let r1 = Region::new(img.id.clone(), ImageRect::new(0.0, 0.0, 5.0, 5.0), "1");
    let r2 = Region::new(img.id.clone(), ImageRect::new(10.0, 0.0, 15.0, 5.0), "2");
    add_region(store, &r1);
    store.undo("a").unwrap();
    assert!(store.redo_candidate().unwrap().is_some());
    add_region(store, &r2);
    assert!(store.redo_candidate().unwrap().is_none());
}

fn undo_walks_back_to_an_empty_project(store: &mut dyn Store) {
    let img = image("a", 4000, 3000);
    add_image(store, &img);
    let r = Region::new(img.id.clone(), ImageRect::new(0.0, 0.0, 5.0, 5.0), "1");
    add_region(store, &r);
    let q = open_question(&img, &r, "q", "a", "ocr");
    add_question(store, &q);
    let del = store.delete_region_command(r.id).unwrap();
    store.apply("a", del).unwrap();
    // The question lost its only box.
    assert!(store.questions(&img.id).unwrap()[0].regions.is_empty());
    // Undoing the deletion restores the link in place.
    store.undo("a").unwrap();
    assert_eq!(store.questions(&img.id).unwrap()[0].regions, vec![r.id]);
    while store.undo("a").unwrap().is_some() {}
    assert!(store.images().unwrap().is_empty());
    let stats = store.stats().unwrap();
    assert_eq!((stats.images, stats.regions, stats.questions), (0, 0, 0));
}

fn removing_an_image_takes_its_annotations_and_undo_brings_them_back(store: &mut dyn Store) {
    let img = image("a", 4000, 3000);
    add_image(store, &img);
    let r = Region::new(img.id.clone(), ImageRect::new(0.0, 0.0, 5.0, 5.0), "1");
    add_region(store, &r);
    let q = open_question(&img, &r, "q", "a", "ocr");
    add_question(store, &q);
    let cmd = store.remove_image_command(&img.id).unwrap();
    store.apply("a", cmd).unwrap();
    assert!(store.images().unwrap().is_empty());
    store.undo("a").unwrap();
    assert_eq!(store.questions(&img.id).unwrap(), vec![q]);
    assert_eq!(store.regions(&img.id).unwrap(), vec![r]);
}

fn a_stale_update_is_a_conflict_not_an_overwrite(store: &mut dyn Store) {
    let img = image("a", 4000, 3000);
    add_image(store, &img);
    let r = Region::new(img.id.clone(), ImageRect::new(0.0, 0.0, 5.0, 5.0), "1");
    add_region(store, &r);
    let mut first = r.clone();
    first.label = "first".into();
    let mut second = r.clone();
    second.label = "second".into();
    store
        .apply(
            "a",
            Command::UpdateRegion {
                before: r.clone(),
                after: first.clone(),
            },
        )
        .unwrap();
    let err = store
        .apply(
            "b",
            Command::UpdateRegion {
                before: r.clone(),
                after: second,
            },
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(store.region(r.id).unwrap(), Some(first));
}

fn the_journal_records_who_did_what(store: &mut dyn Store) {
    let img = image("a", 4000, 3000);
    add_image(store, &img);
    store.undo("reviewer").unwrap();
    let journal = store.journal(0, 10).unwrap();
    assert_eq!(journal.len(), 2);
    assert_eq!(journal[0].actor, "ann");
    assert_eq!(journal[0].action, JournalAction::Edit);
    assert_eq!(journal[1].actor, "reviewer");
    assert_eq!(journal[1].action, JournalAction::Undo);
    assert_eq!(journal[1].target, Some(journal[0].seq));
    assert!(matches!(journal[1].command, Command::RemoveImage { .. }));
}

fn the_same_image_cannot_be_added_twice(store: &mut dyn Store) {
    let img = image("a", 4000, 3000);
    add_image(store, &img);
    let mut again = img.clone();
    again.path = "/elsewhere/a.jpg".into();
    let err = store
        .apply(
            "a",
            Command::AddImage {
                image: again,
                regions: vec![],
                questions: vec![],
            },
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateImage { .. }), "{err}");
}

fn stats_count_per_category_status_and_area_limit(store: &mut dyn Store) {
    let img = image("a", 1000, 1000);
    add_image(store, &img);
    let small = Region::new(img.id.clone(), ImageRect::new(0.0, 0.0, 10.0, 10.0), "s");
    let big = Region::new(img.id.clone(), ImageRect::new(0.0, 0.0, 500.0, 500.0), "b");
    for r in [&small, &big] {
        add_region(store, r);
    }
    for (cat, text) in [("ocr", "q1"), ("ocr", "q2"), ("chart", "q3")] {
        let q = open_question(&img, &small, text, "x", cat);
        add_question(store, &q);
    }
    let s = store.stats().unwrap();
    assert_eq!(s.images, 1);
    assert_eq!(s.images_missing, 1);
    assert_eq!(s.images_low_resolution, 1);
    assert_eq!(s.regions, 2);
    assert_eq!(s.regions_over_area_limit, 1);
    assert_eq!(s.questions_by_category.get("ocr"), Some(&2));
    assert_eq!(s.questions_by_category.get("chart"), Some(&1));
    assert_eq!(s.questions_by_status.get("draft"), Some(&3));
    assert_eq!(s.questions_by_kind.get("open"), Some(&3));
}

#[test]
fn missing_files_are_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let present = dir.path().join("here.jpg");
    std::fs::write(&present, b"x").unwrap();
    let mut store = SqliteStore::create(&dir.path().join("p.thyme")).unwrap();
    let mut a = image("a", 4000, 3000);
    a.path = present;
    let b = image("b", 4000, 3000);
    add_image(&mut store, &a);
    add_image(&mut store, &b);
    let missing = store.missing_files().unwrap();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].image, b.id);
}

#[test]
fn a_file_that_is_not_a_database_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.thyme");
    std::fs::write(
        &path,
        "this is a text file, not a project, and it is long enough to fill a header block."
            .repeat(10),
    )
    .unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::NotAProject { .. }), "{err}");
    assert!(err.to_string().contains("notes.thyme"));
    // Nothing was written to the file.
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("this is a text file")
    );
}

#[test]
fn a_foreign_sqlite_database_is_not_a_project() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::NotAProject { .. }), "{err}");
}

#[test]
fn a_project_from_a_newer_schema_is_refused_with_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.thyme");
    {
        drop(SqliteStore::create(&path).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("UPDATE schema_version SET version = 99", [])
            .unwrap();
    }
    let err = SqliteStore::open(&path).unwrap_err();
    match &err {
        StoreError::NewerSchema {
            found, supported, ..
        } => {
            assert_eq!(*found, 99);
            assert!(*supported < 99);
        }
        other => panic!("expected NewerSchema, got {other}"),
    }
    assert!(err.to_string().contains("future.thyme"));
}

#[test]
fn creating_over_an_existing_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.thyme");
    std::fs::write(&path, b"keep me").unwrap();
    assert!(matches!(
        SqliteStore::create(&path),
        Err(StoreError::AlreadyExists { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
}

#[test]
fn an_older_project_is_migrated_forward_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.thyme");
    let img = image("a", 4000, 3000);
    {
        let mut store = SqliteStore::create(&path).unwrap();
        add_image(&mut store, &img);
    }
    // Make it a schema-1 file, as the first release wrote it.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "ALTER TABLE images DROP COLUMN status; ALTER TABLE images DROP COLUMN revision; \
             ALTER TABLE regions DROP COLUMN revision; ALTER TABLE questions DROP COLUMN revision; \
             ALTER TABLE journal DROP COLUMN origin; ALTER TABLE images DROP COLUMN review; \
             ALTER TABLE regions DROP COLUMN review; ALTER TABLE questions DROP COLUMN review; \
             ALTER TABLE journal DROP COLUMN visit; UPDATE schema_version SET version = 1;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        thyme_studio::store::schema_version()
    );
    let images = store.images().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].status, thyme_studio::dataset::ImageStatus::Todo);
}

#[test]
fn image_status_changes_are_journaled_and_undoable() {
    use thyme_studio::dataset::ImageStatus;
    let (_d, mut store) = new_store();
    let img = image("a", 4000, 3000);
    add_image(&mut store, &img);
    store
        .apply(
            "ann",
            Command::SetImageStatus {
                id: img.id.clone(),
                before: ImageStatus::Todo,
                after: ImageStatus::Done,
            },
        )
        .unwrap();
    assert_eq!(
        store.image(&img.id).unwrap().unwrap().status,
        ImageStatus::Done
    );
    assert_eq!(
        store.stats().unwrap().images_by_status.get("done"),
        Some(&1)
    );
    // A stale change is a conflict.
    let stale = store.apply(
        "other",
        Command::SetImageStatus {
            id: img.id.clone(),
            before: ImageStatus::Todo,
            after: ImageStatus::InProgress,
        },
    );
    assert!(matches!(stale, Err(StoreError::Conflict(_))));
    store.undo("ann").unwrap();
    assert_eq!(
        store.image(&img.id).unwrap().unwrap().status,
        ImageStatus::Todo
    );
}

#[test]
fn annotation_counts_per_image_match_the_rows() {
    let (_d, mut store) = new_store();
    let (a, b) = (image("a", 4000, 3000), image("b", 4000, 3000));
    add_image(&mut store, &a);
    add_image(&mut store, &b);
    let r1 = Region::new(a.id.clone(), ImageRect::new(0.0, 0.0, 5.0, 5.0), "1");
    let r2 = Region::new(a.id.clone(), ImageRect::new(9.0, 0.0, 15.0, 5.0), "2");
    add_region(&mut store, &r1);
    add_region(&mut store, &r2);
    add_question(&mut store, &open_question(&a, &r1, "q", "x", "ocr"));
    let counts = store.annotation_counts().unwrap();
    assert_eq!(counts.get(&a.id), Some(&(2, 1)));
    assert_eq!(
        counts.get(&b.id),
        None,
        "images without annotations are absent"
    );
    let rows = store.row_stats().unwrap();
    assert_eq!(
        (rows.regions, rows.questions, rows.images_missing),
        (2, 1, 0)
    );
}

/// Each check, once per backend.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(#[test] fn $name() { let (_d, mut store) = new_store(); super::$name(&mut store); })*
        }
        mod postgres {
            use super::*;
            $(#[test] fn $name() {
                let cluster = LocalCluster::start_new(false).expect("a local PostgreSQL (scripts/test installs it)");
                let url = cluster.create_database("conformance").unwrap();
                let mut store = PgStore::open(&url).unwrap();
                super::$name(&mut store);
                drop(store);
                drop(cluster);
            })*
        }
    };
}

conformance!(
    regions_and_questions_round_trip,
    a_box_outside_the_image_is_refused_and_nothing_changes,
    a_question_cannot_link_a_box_of_another_image,
    unknown_categories_are_refused_and_custom_ones_can_be_added,
    a_new_edit_discards_the_redo_history,
    undo_walks_back_to_an_empty_project,
    removing_an_image_takes_its_annotations_and_undo_brings_them_back,
    a_stale_update_is_a_conflict_not_an_overwrite,
    the_journal_records_who_did_what,
    the_same_image_cannot_be_added_twice,
    stats_count_per_category_status_and_area_limit
);

#[test]
fn postgres_rows_carry_revisions_and_reopen_keeps_everything() {
    let cluster = LocalCluster::start_new(false).unwrap();
    let url = cluster.create_database("revisions").unwrap();
    let img = image("a", 4000, 3000);
    let r = Region::new(img.id.clone(), ImageRect::new(10.0, 10.0, 20.0, 20.0), "r");
    let mut moved = r.clone();
    moved.rect = ImageRect::new(30.0, 30.0, 40.0, 40.0);
    {
        let mut store = PgStore::open(&url).unwrap();
        add_image(&mut store, &img);
        add_region(&mut store, &r);
        store
            .apply(
                "ann",
                Command::UpdateRegion {
                    before: r.clone(),
                    after: moved.clone(),
                },
            )
            .unwrap();
        let rev = store
            .read(|db| {
                thyme_studio::store::rows::revision(
                    db,
                    thyme_studio::store::rows::RowTable::Regions,
                    &r.id.0.to_string(),
                )
            })
            .unwrap();
        assert_eq!(rev, Some(2), "one write after the insert");
    }
    // A second connection (another client, or after a restart) sees the same project and
    // the same undo history.
    let mut store = PgStore::open(&url).unwrap();
    assert_eq!(store.region(r.id).unwrap(), Some(moved));
    store.undo("rev").unwrap().unwrap();
    assert_eq!(store.region(r.id).unwrap(), Some(r));
}
