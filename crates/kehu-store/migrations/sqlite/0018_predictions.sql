-- Prediction beyond the rules (BG/NBD + Gamma-Gamma): each customer's
-- latest outlook beside its other derived columns, and every fit of the
-- models. Keep in step with ../postgres/0018_predictions.sql.
ALTER TABLE customers ADD COLUMN p_alive INTEGER;            -- 1/10000
ALTER TABLE customers ADD COLUMN expected_orders_90d INTEGER; -- 1/10000 orders
ALTER TABLE customers ADD COLUMN clv_fen BIGINT;

CREATE TABLE prediction_models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    as_of TEXT NOT NULL,
    fitted_at TEXT NOT NULL,
    customers BIGINT NOT NULL,
    repeat_buyers BIGINT NOT NULL,
    -- BG/NBD, weeks
    r REAL, alpha REAL, a REAL, b REAL,
    log_likelihood REAL,
    -- Gamma-Gamma, fen (NULL when it could not be fitted)
    p REAL, q REAL, v REAL,
    -- the ridge on the log-parameters the BG/NBD fit needed (0: none)
    penalizer REAL,
    fit_ms BIGINT NOT NULL,
    -- why nothing was fitted, when nothing was
    error TEXT
);
