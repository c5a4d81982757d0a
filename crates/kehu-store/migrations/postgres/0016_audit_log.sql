-- The audit log: append-only, each entry chained to the one before by
-- hash (kehu-core audit). Keep in step with ../sqlite/0016_audit_log.sql.
CREATE TABLE audit_log (
    pos BIGINT PRIMARY KEY,
    -- UTC with microseconds, as hashed
    at TEXT NOT NULL,
    actor_id BIGINT,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    client TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_action ON audit_log(action, pos);
CREATE INDEX audit_log_actor ON audit_log(actor_id, pos);
CREATE INDEX audit_log_target ON audit_log(target, pos);
