-- One row counting changes to what a data change depends on: `rules`, what
-- compiled schemes read (workflow steps, custom field definitions); `tags`,
-- the tag catalogue and its rules. Kept by the triggers below (once per
-- statement), so a data change reads one row instead of aggregating three
-- tables. Keep in step with ../sqlite/0036_catalogue_versions.sql.
CREATE TABLE catalogue_versions (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    rules BIGINT NOT NULL,
    tags BIGINT NOT NULL
);
INSERT INTO catalogue_versions (id, rules, tags) VALUES (1, 0, 0);

CREATE FUNCTION catalogue_bump_rules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalogue_versions SET rules = rules + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE FUNCTION catalogue_bump_tags() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalogue_versions SET tags = tags + 1 WHERE id = 1;
    RETURN NULL;
END
$$;
CREATE TRIGGER scheme_events_bump_rules AFTER INSERT ON scheme_events
    FOR EACH STATEMENT EXECUTE FUNCTION catalogue_bump_rules();
CREATE TRIGGER custom_field_defs_bump_rules AFTER INSERT OR UPDATE OR DELETE ON custom_field_defs
    FOR EACH STATEMENT EXECUTE FUNCTION catalogue_bump_rules();
CREATE TRIGGER tags_bump AFTER INSERT OR UPDATE OR DELETE ON tags
    FOR EACH STATEMENT EXECUTE FUNCTION catalogue_bump_tags();
