-- Who carries each rule tag (mode `rule`): derived data, the tag's rule
-- applied to the customers' records. Kept apart from customer_tags so that
-- a rule changing most customers writes one narrow B-tree in tag order and
-- no per-row foreign-key checks (on PostgreSQL those checks and the
-- customer-ordered key took two thirds of applying a rule to 900,000
-- customers). Tags are never deleted; a deleted customer's rows go with it
-- (trigger below). Keep in step with ../sqlite/0030_rule_tags.sql.
CREATE TABLE rule_tags (
    tag_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    assigned_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tag_id, customer_id)
);

-- A rule's run over many customers (more than a thousand changed): one
-- tag_history row (action `rule_applied`, customer NULL: the tag, the time,
-- the counts) and here each customer's change under that row's id, keyed
-- by the run so the rows append (a key by customer would touch every page
-- of its index). A customer's history probes the runs (few: the partial
-- index below); smaller runs write per-customer tag_history rows.
CREATE TABLE rule_tag_changes (
    event_id BIGINT NOT NULL,
    customer_id BIGINT NOT NULL,
    added BOOLEAN NOT NULL,
    PRIMARY KEY (event_id, customer_id)
);
CREATE INDEX tag_history_runs ON tag_history(id) WHERE action = 'rule_applied';

INSERT INTO rule_tags (tag_id, customer_id, assigned_at)
    SELECT tag_id, customer_id, assigned_at FROM customer_tags WHERE source = 'rule';
DELETE FROM customer_tags WHERE source = 'rule';

CREATE FUNCTION rule_tags_forget_customer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Probes the key per tag (there is no index by customer).
    DELETE FROM rule_tags WHERE tag_id IN (SELECT id FROM tags) AND customer_id = OLD.id;
    RETURN OLD;
END
$$;
CREATE TRIGGER customers_forget_rule_tags AFTER DELETE ON customers
    FOR EACH ROW EXECUTE FUNCTION rule_tags_forget_customer();
