-- Schedules may also make the tag analytics and the marketing report.
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt.
-- Dropping it would cascade to stored_reports (foreign keys are on and
-- cannot be turned off inside the migration's transaction), so the stored
-- reports are kept aside and put back under the same ids.
-- Keep in step with ../postgres/0031_schedule_kinds.sql.
CREATE TEMP TABLE stored_reports_kept AS SELECT * FROM stored_reports;
CREATE TABLE report_schedules_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('classification', 'strategy', 'tags', 'marketing')),
    scheme TEXT NOT NULL,
    cadence TEXT NOT NULL CHECK (cadence IN ('monthly', 'quarterly')),
    recipients TEXT NOT NULL,            -- JSON array of addresses
    active BOOLEAN NOT NULL DEFAULT 1,
    created_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    format TEXT NOT NULL DEFAULT 'xlsx' CHECK (format IN ('xlsx', 'pdf'))
);
INSERT INTO report_schedules_new (id, kind, scheme, cadence, recipients, active, created_by, created_at, format)
    SELECT id, kind, scheme, cadence, recipients, active, created_by, created_at, format FROM report_schedules;
DROP TABLE report_schedules;
ALTER TABLE report_schedules_new RENAME TO report_schedules;
INSERT INTO stored_reports SELECT * FROM stored_reports_kept WHERE id NOT IN (SELECT id FROM stored_reports);
DROP TABLE stored_reports_kept;
