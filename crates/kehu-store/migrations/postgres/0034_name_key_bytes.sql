-- Names that an abbreviation being entered may stand for (中石化 → 中国石油化工)
-- are looked up by a range of their first character, compared byte by byte
-- whatever the database's collation: this index serves that range.
CREATE INDEX IF NOT EXISTS customers_name_key_bytes ON customers (name_key COLLATE "C");
