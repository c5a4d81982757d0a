-- A task's source key is unique per customer (every key names its
-- customer or an event of that customer), in one index that also serves
-- the per-customer lookups: one B-tree less to write per generated task,
-- filled in customer order by the generator, and compared bytewise (the
-- keys are ASCII and Chinese class names; no locale order is wanted).
-- PostgreSQL only: SQLite keeps 0017's keys (cheap there, and its
-- UNIQUE column cannot be dropped without rebuilding the table).
-- The old indexes go first, so that changing the collation rebuilds none.
ALTER TABLE tasks DROP CONSTRAINT tasks_source_key_key;
DROP INDEX tasks_customer;
ALTER TABLE tasks ALTER COLUMN source_key TYPE TEXT COLLATE "C";
CREATE UNIQUE INDEX tasks_source ON tasks(customer_id, source_key);
