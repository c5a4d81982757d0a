-- Each customer's orders and interactions as one compact value (see
-- kehu_core::classify::digest), rewritten with every order or interaction
-- write, so a whole-base classification reads one value per customer.
-- The default is the digest of no records (a new customer); the migration
-- computes it for existing customers. NULL means unknown: read the records.
ALTER TABLE customers ADD COLUMN fact_digest BYTEA DEFAULT '\x01000000';

-- A whole-base run reads the stored classes of a range of customers: with
-- the scheme and class in the index it reads the index alone.
DROP INDEX customer_classes_customer;
CREATE INDEX customer_classes_customer ON customer_classes(customer_id, scheme_key, class);
