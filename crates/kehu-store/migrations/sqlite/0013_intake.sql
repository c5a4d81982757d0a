-- Web-form intake: the forms, the leads they bring (kept for review) and
-- the consents given, stored with the customer a lead becomes. Keep in
-- step with ../postgres/0013_intake.sql.
CREATE TABLE intake_forms (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    fields TEXT NOT NULL,
    -- the purpose text submitters consent to, and its version (a new text, a new version)
    purpose TEXT NOT NULL,
    purpose_version BIGINT NOT NULL DEFAULT 1,
    -- who owns the customers its leads become
    owner_id BIGINT REFERENCES users(id) ON DELETE SET NULL,
    active INTEGER NOT NULL DEFAULT 1,
    version BIGINT NOT NULL DEFAULT 1,
    created_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE leads (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    form_id BIGINT NOT NULL REFERENCES intake_forms(id),
    -- the form's fields then, and what was filled in (checked again when accepted)
    fields TEXT NOT NULL,
    submitted TEXT NOT NULL,
    -- what was consented to: purpose text, its version, when
    purpose TEXT NOT NULL,
    purpose_version BIGINT NOT NULL,
    consented_at TEXT NOT NULL,
    -- a keyed hash of the submitter's address (rate limits), never the address
    client_hash TEXT NOT NULL,
    -- customers it looked like when it came in
    suspects TEXT NOT NULL DEFAULT '[]',
    -- pending | accepted | rejected
    status TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected')),
    customer_id BIGINT REFERENCES customers(id) ON DELETE SET NULL,
    decided_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    decided_at TEXT
);
CREATE INDEX leads_status ON leads(status, id);
CREATE INDEX leads_client ON leads(client_hash, consented_at);
CREATE INDEX leads_form ON leads(form_id, consented_at);

CREATE TABLE consents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    contact_id BIGINT REFERENCES contacts(id) ON DELETE SET NULL,
    purpose TEXT NOT NULL,
    purpose_version BIGINT NOT NULL,
    -- web_form | …
    channel TEXT NOT NULL,
    given_at TEXT NOT NULL,
    lead_id BIGINT,
    withdrawn_at TEXT
);
CREATE INDEX consents_customer ON consents(customer_id);

-- Random values the servers share (e.g. the key of client hashes), made once.
CREATE TABLE secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
