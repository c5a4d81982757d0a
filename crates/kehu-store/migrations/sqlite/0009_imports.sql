-- Imports (issue 6). Keep in step with ../postgres/0009_imports.sql.
-- Fields a customer lacks to be worked with (待跟进 while not empty).
ALTER TABLE customers ADD COLUMN missing_fields TEXT NOT NULL DEFAULT '[]';

-- One import of a file: its dry run, then (maybe) its application and undo.
CREATE TABLE imports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    -- dry_run | applied | refused | undone
    status TEXT NOT NULL,
    on_invalid TEXT,
    skip_suspects INTEGER NOT NULL DEFAULT 0,
    -- the file's header row, and [[column, header, field], …] as used
    headers TEXT NOT NULL DEFAULT '[]',
    mapping TEXT NOT NULL DEFAULT '[]',
    counts TEXT NOT NULL DEFAULT '{}',
    -- the first errors and warnings (row, column, field, value, reason)
    problems TEXT NOT NULL DEFAULT '[]',
    user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    applied_at TEXT,
    undone_at TEXT,
    undone_by INTEGER
);
CREATE INDEX imports_created ON imports(created_at);

-- An uploaded file, kept until it is applied (the UI's dry run → apply).
CREATE TABLE import_files (
    import_id INTEGER PRIMARY KEY REFERENCES imports(id) ON DELETE CASCADE,
    bytes BLOB NOT NULL
);

-- What an applied import wrote, to undo it: each insert, and each update
-- with the row as it was before.
CREATE TABLE import_changes (
    import_id INTEGER NOT NULL REFERENCES imports(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    entity TEXT NOT NULL,
    record_id INTEGER NOT NULL,
    customer_id INTEGER NOT NULL,
    action TEXT NOT NULL,
    before TEXT,
    version_after INTEGER NOT NULL,
    PRIMARY KEY (import_id, seq)
);
