-- Strategies per class, follow-up tasks, the tracking log (跟踪记录),
-- in-app notifications, the users' sales level, and what the scheduler
-- shows of each job. Keep in step with ../postgres/0017_tasks.sql.
CREATE TABLE strategies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scheme_key TEXT NOT NULL,
    class_name TEXT NOT NULL,
    -- JSON list of {action, per, times}
    cadence TEXT NOT NULL,
    sla_hours INTEGER NOT NULL,
    resources TEXT NOT NULL,
    goal TEXT NOT NULL,
    goal_metric TEXT NOT NULL,
    goal_target BIGINT NOT NULL,
    owner_level TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    UNIQUE (scheme_key, class_name)
);

CREATE TABLE tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    -- what generated it, once: a strategy slot, a class change, a complaint…
    source_key TEXT UNIQUE,
    title TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    owner_id BIGINT REFERENCES users(id) ON DELETE SET NULL,
    -- the customer's team when the task was made: the managers who see it
    team TEXT,
    due_at TEXT NOT NULL,
    -- 1 high, 2 normal, 3 low
    priority INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'done', 'cancelled')),
    scheme_key TEXT,
    class_name TEXT,
    interaction_id BIGINT REFERENCES interactions(id) ON DELETE SET NULL,
    -- service tasks: the SLA clock's deadline is due_at; breached when closed late
    sla_hours INTEGER,
    created_at TEXT NOT NULL,
    created_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    closed_at TEXT,
    closed_by BIGINT REFERENCES users(id) ON DELETE SET NULL,
    reminded_at TEXT,
    overdue_at TEXT,
    escalated_at TEXT
);
CREATE INDEX tasks_owner ON tasks(owner_id, status, due_at, id);
CREATE INDEX tasks_team ON tasks(team, status, due_at, id);
CREATE INDEX tasks_customer ON tasks(customer_id, due_at);
CREATE INDEX tasks_open_due ON tasks(status, due_at, id);

CREATE TABLE follow_ups (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    task_id BIGINT REFERENCES tasks(id) ON DELETE SET NULL,
    happened_on TEXT NOT NULL,
    user_id BIGINT REFERENCES users(id) ON DELETE SET NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    next_step TEXT,
    status_change TEXT,
    suggested_scheme TEXT,
    suggested_class TEXT,
    -- the class the system gave after re-evaluating, in class_scheme
    class_scheme TEXT,
    class_after TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX follow_ups_customer ON follow_ups(customer_id, happened_on, id);
CREATE INDEX follow_ups_day ON follow_ups(happened_on, id);

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    task_id BIGINT REFERENCES tasks(id) ON DELETE CASCADE,
    text_zh TEXT NOT NULL,
    text_en TEXT NOT NULL,
    created_at TEXT NOT NULL,
    read_at TEXT
);
CREATE INDEX notifications_user ON notifications(user_id, read_at, id);

-- director | specialist | assistant; NULL: the role's (sales_manager → director, sales_rep → specialist)
ALTER TABLE users ADD COLUMN sales_level TEXT;

ALTER TABLE job_runs ADD COLUMN started_at TEXT;
ALTER TABLE job_runs ADD COLUMN duration_ms BIGINT;
ALTER TABLE job_runs ADD COLUMN last_error TEXT;
ALTER TABLE job_runs ADD COLUMN failed_at TEXT;
ALTER TABLE job_runs ADD COLUMN runs BIGINT NOT NULL DEFAULT 0;
ALTER TABLE job_runs ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
-- the process running it now and until when its claim holds
ALTER TABLE job_runs ADD COLUMN lease_owner TEXT;
ALTER TABLE job_runs ADD COLUMN lease_until TEXT;
-- event jobs: the last record id handled
ALTER TABLE job_runs ADD COLUMN cursor_id BIGINT NOT NULL DEFAULT 0;
