-- A customer's company name normalized for comparison (legal form, places,
-- brackets, width and case aside: kehu-core dedupe::company::full_name),
-- indexed: the duplicate checks of imports and of the create form look
-- names up by it. Keep in step with ../sqlite/0010_name_keys.sql.
ALTER TABLE customers ADD COLUMN name_key TEXT;
CREATE INDEX customers_name_key ON customers(name_key);
