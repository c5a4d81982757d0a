-- Scheduled reports: what to make after each month or quarter, and every
-- report made (its file kept, its e-mail's outcome).
-- Keep in step with ../postgres/0020_report_schedules.sql.
CREATE TABLE report_schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('classification', 'strategy')),
    scheme TEXT NOT NULL,
    cadence TEXT NOT NULL CHECK (cadence IN ('monthly', 'quarterly')),
    recipients TEXT NOT NULL,            -- JSON array of addresses
    active BOOLEAN NOT NULL DEFAULT 1,
    created_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE stored_reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule_id BIGINT NOT NULL REFERENCES report_schedules(id) ON DELETE CASCADE,
    period TEXT NOT NULL,
    file BLOB NOT NULL,                  -- XLSX
    made_at TEXT NOT NULL,
    mailed_at TEXT,
    mail_attempts INTEGER NOT NULL DEFAULT 0,
    mail_error TEXT,
    UNIQUE (schedule_id, period)
);
