-- How a customer's company name sounds: the toneless pinyin of its core
-- name (legal form, places and trailing business words such as 科技 aside:
-- kehu-core dedupe::company::name_sound), indexed. An import looks new
-- rows up by it to find stored customers under a name that differs only in
-- business words or in characters that sound the same (字节跳动科技 /
-- 字节挑动). Keep in step with ../postgres/0027_name_sounds.sql.
ALTER TABLE customers ADD COLUMN name_sound TEXT;
CREATE INDEX customers_name_sound ON customers(name_sound);
