-- Duplicate contacts of one customer: the pairs found (by the scan, after
-- a contact write, an import or a customer merge), a person's decision on
-- each, and the merges with both records as they were, to undo them.
-- Keep in step with ../postgres/0029_contact_merges.sql.
CREATE TABLE contact_pairs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    a_id BIGINT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    b_id BIGINT NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    -- 0–100 (kehu-core dedupe::contact) and the evidence keys
    score BIGINT NOT NULL,
    reasons TEXT NOT NULL DEFAULT '[]',
    -- open | rejected (never proposed again)
    status TEXT NOT NULL CHECK (status IN ('open', 'rejected')),
    found_at TEXT NOT NULL,
    decided_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    decided_at TEXT,
    CHECK (a_id < b_id),
    UNIQUE (a_id, b_id)
);
CREATE INDEX contact_pairs_status ON contact_pairs(status, score, id);
CREATE INDEX contact_pairs_b ON contact_pairs(b_id);

-- One contact merge: both contacts as they were (personal fields sealed as
-- in the contacts table), the consents moved, and the survivor's version
-- after it (an undo is refused once the survivor changed).
CREATE TABLE contact_merges (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL,
    survivor_id BIGINT NOT NULL,
    absorbed_id BIGINT NOT NULL,
    survivor_before TEXT NOT NULL,
    absorbed TEXT NOT NULL,
    choices TEXT NOT NULL,
    moved_consents TEXT NOT NULL,
    survivor_version_after BIGINT NOT NULL,
    merged_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    merged_at TEXT NOT NULL,
    undone_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    undone_at TEXT
);
CREATE INDEX contact_merges_customer ON contact_merges(customer_id, id);
CREATE INDEX contact_merges_survivor ON contact_merges(survivor_id);
CREATE INDEX contact_merges_absorbed ON contact_merges(absorbed_id);
