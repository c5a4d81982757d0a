-- Marketing campaigns and the customers each touched (issue 9, marketing).
-- Keep in step with ../postgres/0019_campaigns.sql.
CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL CHECK (channel IN ('traditional', 'online', 'event')),
    starts_on TEXT NOT NULL,
    ends_on TEXT NOT NULL,
    cost_fen BIGINT CHECK (cost_fen >= 0),
    window_days INTEGER NOT NULL CHECK (window_days BETWEEN 1 AND 365),
    description TEXT,
    created_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    CHECK (ends_on >= starts_on)
);

CREATE TABLE campaign_touches (
    campaign_id BIGINT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    customer_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    touched_on TEXT NOT NULL,
    added_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    PRIMARY KEY (campaign_id, customer_id)
);
CREATE INDEX campaign_touches_customer ON campaign_touches(customer_id);
