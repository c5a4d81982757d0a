-- A report schedule's file: xlsx (as before) or pdf.
ALTER TABLE report_schedules ADD COLUMN format TEXT NOT NULL DEFAULT 'xlsx' CHECK (format IN ('xlsx', 'pdf'));
