-- For each periodic job, the last day it completed for: a restart or a
-- second server does not redo a day's work (the daily rollup refresh of a
-- million customers takes minutes).
CREATE TABLE job_runs (
    job TEXT PRIMARY KEY,
    done_for TEXT NOT NULL,
    finished_at TEXT NOT NULL
);
