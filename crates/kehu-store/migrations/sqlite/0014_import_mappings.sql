-- Mapping templates saved for reuse: which column feeds which field, per
-- kind of import, under a name. Keep in step with ../postgres/0014_import_mappings.sql.
CREATE TABLE import_mappings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    -- {"header": "field" or null, …}
    columns TEXT NOT NULL,
    created_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (kind, name)
);
