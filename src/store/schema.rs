//! The SQLite schema and its migrations.
//!
//! `MIGRATIONS[i]` takes a project from schema version `i` to `i + 1`. A project records its
//! version in `schema_version`; opening one from a newer build is refused, never guessed at.

/// `PRAGMA application_id` of a thyme-studio project ("THYM").
pub const APPLICATION_ID: i64 = 0x5448_594D;

pub const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the first schema.
    r#"
    CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT;
    INSERT INTO schema_version (version) VALUES (0);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
    CREATE TABLE images (
        id TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        width INTEGER NOT NULL CHECK (width > 0),
        height INTEGER NOT NULL CHECK (height > 0),
        bytes INTEGER NOT NULL,
        added_at_ms INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE categories (
        name TEXT PRIMARY KEY,
        builtin INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE regions (
        id TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id),
        x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
        label TEXT NOT NULL,
        CHECK (x0 < x1 AND y0 < y1)
    ) STRICT;
    CREATE INDEX regions_by_image ON regions(image_id);
    CREATE TABLE questions (
        id TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id),
        text TEXT NOT NULL,
        answer TEXT NOT NULL,
        category TEXT NOT NULL REFERENCES categories(name),
        status TEXT NOT NULL
    ) STRICT;
    CREATE INDEX questions_by_image ON questions(image_id);
    CREATE TABLE question_regions (
        question_id TEXT NOT NULL REFERENCES questions(id),
        region_id TEXT NOT NULL REFERENCES regions(id),
        position INTEGER NOT NULL,
        PRIMARY KEY (question_id, region_id)
    ) STRICT;
    CREATE INDEX question_regions_by_region ON question_regions(region_id);
    CREATE TABLE journal (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('edit', 'undo', 'redo')),
        target INTEGER REFERENCES journal(seq),
        command TEXT NOT NULL,
        state TEXT CHECK (state IN ('done', 'undone', 'discarded'))
    ) STRICT;
    CREATE INDEX journal_by_state ON journal(state, seq);
    "#,
    // 1 -> 2: a per-image work status.
    r#"
    ALTER TABLE images ADD COLUMN status TEXT NOT NULL DEFAULT 'todo'
        CHECK (status IN ('todo', 'in_progress', 'done'));
    "#,
    // 2 -> 3: row revisions (raised by every write) and where a journal row came from
    // ('local', or 'server' for an edit a team client took from its server).
    r#"
    ALTER TABLE images ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE regions ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE questions ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE journal ADD COLUMN origin TEXT NOT NULL DEFAULT 'local'
        CHECK (origin IN ('local', 'server'));
    "#,
    // 3 -> 4: verdicts on images, boxes and questions (JSON, see dataset::review); an old
    // question status of accepted or rejected becomes its verdict; and the field visit a
    // journal row belongs to (edits saved while typing in one field are undone together).
    r#"
    ALTER TABLE images ADD COLUMN review TEXT;
    ALTER TABLE regions ADD COLUMN review TEXT;
    ALTER TABLE questions ADD COLUMN review TEXT;
    UPDATE questions SET review = json_object('verdict', 'accepted', 'by', '', 'at_ms', 0)
        WHERE status = 'accepted';
    UPDATE questions SET review = json_object('verdict', 'rejected', 'reason', 'other', 'by', '', 'at_ms', 0)
        WHERE status = 'rejected';
    ALTER TABLE journal ADD COLUMN visit TEXT;
    "#,
];

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}
