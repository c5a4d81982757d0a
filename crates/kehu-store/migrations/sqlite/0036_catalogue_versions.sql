-- One row counting changes to what a data change depends on: `rules`, what
-- compiled schemes read (workflow steps, custom field definitions); `tags`,
-- the tag catalogue and its rules. Kept by the triggers below, so a data
-- change reads one row instead of aggregating three tables.
-- Keep in step with ../postgres/0036_catalogue_versions.sql.
CREATE TABLE catalogue_versions (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    rules BIGINT NOT NULL,
    tags BIGINT NOT NULL
);
INSERT INTO catalogue_versions (id, rules, tags) VALUES (1, 0, 0);

CREATE TRIGGER scheme_events_bump_rules AFTER INSERT ON scheme_events BEGIN
    UPDATE catalogue_versions SET rules = rules + 1 WHERE id = 1;
END;
CREATE TRIGGER custom_field_defs_insert_bump_rules AFTER INSERT ON custom_field_defs BEGIN
    UPDATE catalogue_versions SET rules = rules + 1 WHERE id = 1;
END;
CREATE TRIGGER custom_field_defs_update_bump_rules AFTER UPDATE ON custom_field_defs BEGIN
    UPDATE catalogue_versions SET rules = rules + 1 WHERE id = 1;
END;
CREATE TRIGGER custom_field_defs_delete_bump_rules AFTER DELETE ON custom_field_defs BEGIN
    UPDATE catalogue_versions SET rules = rules + 1 WHERE id = 1;
END;
CREATE TRIGGER tags_insert_bump AFTER INSERT ON tags BEGIN
    UPDATE catalogue_versions SET tags = tags + 1 WHERE id = 1;
END;
CREATE TRIGGER tags_update_bump AFTER UPDATE ON tags BEGIN
    UPDATE catalogue_versions SET tags = tags + 1 WHERE id = 1;
END;
CREATE TRIGGER tags_delete_bump AFTER DELETE ON tags BEGIN
    UPDATE catalogue_versions SET tags = tags + 1 WHERE id = 1;
END;
