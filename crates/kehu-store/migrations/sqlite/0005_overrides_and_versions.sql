-- Classes set by hand: they win over the rules until lifted or expired.
-- At most one active (not lifted) override per customer and scheme.
CREATE TABLE class_overrides (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    scheme_key TEXT NOT NULL,
    class TEXT NOT NULL,
    reason TEXT NOT NULL,
    expires_on TEXT,
    set_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    set_at TEXT NOT NULL,
    lifted_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    lifted_at TEXT
);
CREATE UNIQUE INDEX class_overrides_active ON class_overrides(customer_id, scheme_key) WHERE lifted_at IS NULL;

-- Versions of each classification scheme: the spec as JSON and where it is
-- in the workflow (draft → submitted → approved → published; rejected;
-- retired when another version is published). One published per scheme.
CREATE TABLE scheme_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scheme_key TEXT NOT NULL,
    version BIGINT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    note TEXT,
    created_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (scheme_key, version)
);
CREATE UNIQUE INDEX scheme_versions_published ON scheme_versions(scheme_key) WHERE status = 'published';

-- Every step of the workflow: who did what to which version, and when.
CREATE TABLE scheme_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scheme_key TEXT NOT NULL,
    version BIGINT NOT NULL,
    action TEXT NOT NULL,
    actor BIGINT REFERENCES users(id) ON DELETE SET NULL,
    at TEXT NOT NULL,
    note TEXT
);
CREATE INDEX scheme_events_version ON scheme_events(scheme_key, version, id);
