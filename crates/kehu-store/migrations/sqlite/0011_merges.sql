-- Duplicate customers: the pairs found (by a scan, an import, the web
-- form), a person's decision on each, and the merges with what they moved,
-- to undo them. Keep in step with ../postgres/0011_merges.sql.
CREATE TABLE duplicate_pairs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    a_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    b_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    -- the matcher's probability that they are the same company, and why
    score REAL NOT NULL,
    reasons TEXT NOT NULL DEFAULT '[]',
    -- open | rejected (never proposed again)
    status TEXT NOT NULL CHECK (status IN ('open', 'rejected')),
    source TEXT NOT NULL,
    found_at TEXT NOT NULL,
    decided_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    decided_at TEXT,
    CHECK (a_id < b_id),
    UNIQUE (a_id, b_id)
);
CREATE INDEX duplicate_pairs_status ON duplicate_pairs(status, score, id);
CREATE INDEX duplicate_pairs_b ON duplicate_pairs(b_id);

-- One merge: the absorbed customer as it was (re-inserted with its id on
-- undo), the survivor as it was, and the ids of the records moved.
CREATE TABLE customer_merges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    survivor_id BIGINT NOT NULL,
    absorbed_id BIGINT NOT NULL,
    survivor_before TEXT NOT NULL,
    absorbed TEXT NOT NULL,
    choices TEXT NOT NULL,
    moved TEXT NOT NULL,
    pair TEXT NOT NULL,
    survivor_version_after BIGINT NOT NULL,
    merged_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    merged_at TEXT NOT NULL,
    undone_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    undone_at TEXT
);
CREATE INDEX customer_merges_survivor ON customer_merges(survivor_id, id);

-- Class history that came with a merged customer: shown with the survivor's,
-- not read as the survivor's own class on a date.
ALTER TABLE class_history ADD COLUMN merged_from BIGINT;
