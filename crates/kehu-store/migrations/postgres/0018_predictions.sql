-- Prediction beyond the rules (BG/NBD + Gamma-Gamma): each customer's
-- latest outlook beside its other derived columns, and every fit of the
-- models. Keep in step with ../sqlite/0018_predictions.sql.
ALTER TABLE customers ADD COLUMN p_alive BIGINT;             -- 1/10000
ALTER TABLE customers ADD COLUMN expected_orders_90d BIGINT;  -- 1/10000 orders
ALTER TABLE customers ADD COLUMN clv_fen BIGINT;

CREATE TABLE prediction_models (
    id BIGSERIAL PRIMARY KEY,
    as_of DATE NOT NULL,
    fitted_at TIMESTAMPTZ NOT NULL,
    customers BIGINT NOT NULL,
    repeat_buyers BIGINT NOT NULL,
    r DOUBLE PRECISION, alpha DOUBLE PRECISION, a DOUBLE PRECISION, b DOUBLE PRECISION,
    log_likelihood DOUBLE PRECISION,
    p DOUBLE PRECISION, q DOUBLE PRECISION, v DOUBLE PRECISION,
    -- the ridge on the log-parameters the BG/NBD fit needed (0: none)
    penalizer DOUBLE PRECISION,
    fit_ms BIGINT NOT NULL,
    error TEXT
);
