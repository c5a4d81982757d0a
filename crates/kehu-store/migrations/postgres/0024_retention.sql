-- How long each kind of data is kept (days); kinds not listed keep the
-- default of kehu-store privacy::RETENTION_KINDS. Keep in step with the other backend's 0024.
CREATE TABLE retention (
    kind TEXT PRIMARY KEY,
    days BIGINT NOT NULL CHECK (days > 0)
);
