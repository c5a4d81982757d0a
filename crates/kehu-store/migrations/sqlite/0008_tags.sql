-- The tag catalogue: a tree of at most four levels. Names are unique among
-- live siblings (name_key: the compared form). A merged tag stays, pointing
-- at the tag that took its assignments, so stored references follow it.
CREATE TABLE tags (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id BIGINT REFERENCES tags(id),
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('manual', 'rule', 'hybrid')),
    description TEXT,
    -- For rule and hybrid tags: the condition (a segment expression, tags as #ID).
    rule TEXT,
    retired_at TEXT,
    merged_into BIGINT REFERENCES tags(id),
    version BIGINT NOT NULL DEFAULT 1,
    created_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX tags_sibling_names ON tags(COALESCE(parent_id, 0), name_key) WHERE merged_into IS NULL;

-- Which customer carries which tag, how it got there, who and when.
CREATE TABLE customer_tags (
    customer_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    tag_id BIGINT NOT NULL REFERENCES tags(id),
    source TEXT NOT NULL CHECK (source IN ('manual', 'rule', 'verified')),
    assigned_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    assigned_at TEXT NOT NULL,
    PRIMARY KEY (customer_id, tag_id)
);
CREATE INDEX customer_tags_tag ON customer_tags(tag_id, customer_id);

-- Every change to the catalogue and to assignments: append-only.
CREATE TABLE tag_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tag_id BIGINT NOT NULL,
    customer_id BIGINT,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    by_user BIGINT REFERENCES users(id) ON DELETE SET NULL,
    at TEXT NOT NULL
);
CREATE INDEX tag_history_tag ON tag_history(tag_id, id);
CREATE INDEX tag_history_customer ON tag_history(customer_id, id);

-- What hybrid tags' rules propose, for a person to confirm or reject.
-- evidence: what the rule saw (its text and the values it read); a
-- rejected proposal is never made again for the same evidence.
CREATE TABLE tag_proposals (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tag_id BIGINT NOT NULL REFERENCES tags(id),
    customer_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    evidence TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'expired')),
    proposed_at TEXT NOT NULL,
    decided_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    decided_at TEXT,
    UNIQUE (tag_id, customer_id, evidence)
);
CREATE INDEX tag_proposals_status ON tag_proposals(status, tag_id, id);

-- Settings of the tag system (limit per customer, synonym groups) as JSON.
CREATE TABLE tag_settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    updated_at TEXT NOT NULL
);

-- Saved segments: the expression as stored (tags as #ID), its owner, and
-- whether the owner's team sees it too.
CREATE TABLE segments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    expression TEXT NOT NULL,
    description TEXT,
    owner_id BIGINT REFERENCES users(id) ON DELETE SET NULL,
    team TEXT,
    shared BOOLEAN NOT NULL DEFAULT FALSE,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX segments_owner ON segments(owner_id);

-- The change feed learns a third kind: a customer's tags.
CREATE TABLE change_feed_new (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('facts', 'classes', 'tags')),
    customer_id INTEGER,
    changed_at TEXT NOT NULL
);
INSERT INTO change_feed_new (seq, kind, customer_id, changed_at) SELECT seq, kind, customer_id, changed_at FROM change_feed;
DROP TABLE change_feed;
ALTER TABLE change_feed_new RENAME TO change_feed;
