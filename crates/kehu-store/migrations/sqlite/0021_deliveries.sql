-- Notifications beyond the inbox (issue 8): users' e-mail addresses,
-- outgoing webhooks (signed; WeCom / DingTalk / Feishu bots or anything),
-- and the delivery outbox with retries.
-- Keep in step with ../postgres/0021_deliveries.sql.
ALTER TABLE users ADD COLUMN email TEXT;

CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    -- generic | wecom | dingtalk | feishu: the shape of the JSON sent
    format TEXT NOT NULL CHECK (format IN ('generic', 'wecom', 'dingtalk', 'feishu')),
    secret TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT 1,
    created_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id BIGINT NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    -- the address, or the webhook's id
    target TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    sent_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
