-- The holiday calendar (working days) and the 异常数据报告: each finding
-- once per (kind, customer, record), open until the data no longer shows
-- it. Keep in step with ../postgres/0012_anomalies.sql.
CREATE TABLE calendar_days (
    day TEXT PRIMARY KEY,
    -- 1: a weekend day that is worked (调休); 0: a holiday
    working INTEGER NOT NULL,
    name TEXT NOT NULL DEFAULT ''
);

CREATE TABLE anomalies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    customer_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    -- the contact, order, interaction or pair concerned; 0 for the customer itself
    record_id BIGINT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}',
    -- the owner's manager (the owner when they are one); NULL when nobody is
    assignee_id BIGINT REFERENCES users(id) ON DELETE SET NULL,
    found_on TEXT NOT NULL,
    due_on TEXT NOT NULL,
    -- open | resolved
    status TEXT NOT NULL CHECK (status IN ('open', 'resolved')),
    resolved_on TEXT,
    UNIQUE (kind, customer_id, record_id)
);
CREATE INDEX anomalies_open ON anomalies(status, due_on, id);
CREATE INDEX anomalies_customer ON anomalies(customer_id);
CREATE INDEX anomalies_assignee ON anomalies(assignee_id, status);
