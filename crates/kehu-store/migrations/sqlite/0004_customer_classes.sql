-- Each customer's current class per classification scheme, and the history
-- of every change (from, to, the date it holds from, why, by whom).
CREATE TABLE customer_classes (
    customer_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    scheme_key TEXT NOT NULL,
    class TEXT NOT NULL,
    scheme_version BIGINT NOT NULL,
    score BIGINT,
    as_of TEXT NOT NULL,
    evaluated_at TEXT NOT NULL,
    PRIMARY KEY (scheme_key, customer_id)
);
CREATE INDEX customer_classes_customer ON customer_classes(customer_id);
CREATE INDEX customer_classes_class ON customer_classes(scheme_key, class, customer_id);

CREATE TABLE class_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    scheme_key TEXT NOT NULL,
    from_class TEXT,
    to_class TEXT NOT NULL,
    effective_on TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    cause TEXT NOT NULL,
    scheme_version BIGINT,
    changed_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    note TEXT
);
CREATE INDEX class_history_customer ON class_history(customer_id, scheme_key, effective_on, id);
CREATE INDEX class_history_effective ON class_history(scheme_key, effective_on, id);
