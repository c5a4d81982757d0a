-- Undoing an import moves on, for each record it puts back, the version
-- that earlier applied imports noted for that record (entity, record id):
-- without this index each of those updates read every import change, so
-- undoing a large import took time in the square of its size.
CREATE INDEX IF NOT EXISTS import_changes_record ON import_changes (entity, record_id);
