-- Schedules may also make the tag analytics and the marketing report.
-- Keep in step with ../sqlite/0031_schedule_kinds.sql.
ALTER TABLE report_schedules DROP CONSTRAINT report_schedules_kind_check;
ALTER TABLE report_schedules ADD CONSTRAINT report_schedules_kind_check
    CHECK (kind IN ('classification', 'strategy', 'tags', 'marketing'));
