//! The scheduler's bookkeeping in `job_runs`: which process runs a job now
//! (a lease), the period it last completed, how long it took, its last
//! error, and, for event jobs, the last record handled.
//!
//! *Invariant*: a claim is one conditional UPDATE of the job's row — on
//! PostgreSQL the row lock makes a second server's UPDATE wait and then
//! see the lease, on SQLite writers are serialized — so one process at a
//! time holds a job, and a period completed is never claimed again. A
//! crashed holder's lease runs out and the next round takes the job over
//! (missed runs are caught up).

use crate::db::{Exec, RowGet};
use crate::error::StoreError;
use crate::{args, Store};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;

/// When a job is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Once per period starting on this day (a day, a week, a quarter).
    Period(NaiveDate),
    /// Again once this long has passed since it last finished.
    Every(Duration),
}

/// A job held by this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub job: String,
    pub owner: String,
    pub due: Due,
    pub started_at: DateTime<Utc>,
    /// Event jobs: the last record id handled.
    pub cursor: i64,
}

/// What the admin page shows of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobState {
    pub job: String,
    /// The last period completed (its first day); None before the first.
    pub done_for: Option<NaiveDate>,
    pub finished_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub runs: i64,
    pub failures: i64,
    pub last_error: Option<String>,
    pub failed_at: Option<DateTime<Utc>>,
    /// The process running it now, if one is.
    pub running_on: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub cursor: i64,
}

/// The day before anything: a job row that has never completed a period.
pub(crate) fn never() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default()
}

impl Store {
    /// Takes `job` for `lease` if it is due and nobody holds it; None otherwise.
    pub async fn claim_job(
        &self,
        job: &str,
        due: Due,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Claim>, StoreError> {
        let now = Utc::now();
        // Most rounds find a job not due: a read says so without taking
        // the write lock (the claim below decides, under the lock).
        let row = self
            .db
            .clone()
            .fetch_optional(
                "SELECT done_for, finished_at, lease_until FROM job_runs WHERE job = $1",
                args![job],
                |r: &dyn RowGet| {
                    Ok((
                        r.opt_date("done_for")?,
                        r.time("finished_at")?,
                        r.opt_time("lease_until")?,
                    ))
                },
            )
            .await?;
        if let Some((done_for, finished_at, lease_until)) = row {
            let due_now = match due {
                Due::Period(day) => done_for.is_none_or(|d| d < day),
                Due::Every(every) => finished_at <= now - every,
            };
            if !due_now || lease_until.is_some_and(|u| u >= now) {
                return Ok(None);
            }
        }
        let mut tx = self.db.begin_write().await?;
        tx.execute(
            "INSERT INTO job_runs (job, done_for, finished_at) VALUES ($1, $2, $3) ON CONFLICT (job) DO NOTHING",
            args![job, never(), DateTime::<Utc>::UNIX_EPOCH],
        )
        .await?;
        let (cond, a) = match due {
            Due::Period(day) => (
                "done_for < $4",
                args![owner, now + lease, now, day, job, now],
            ),
            Due::Every(every) => (
                "finished_at <= $4",
                args![owner, now + lease, now, now - every, job, now],
            ),
        };
        let n = tx
            .execute(
                &format!(
                    "UPDATE job_runs SET lease_owner = $1, lease_until = $2, started_at = $3 \
                     WHERE {cond} AND job = $5 AND (lease_until IS NULL OR lease_until < $6)"
                ),
                a,
            )
            .await?;
        if n == 0 {
            return Ok(None);
        }
        let cursor = tx
            .fetch_one(
                "SELECT cursor_id FROM job_runs WHERE job = $1",
                args![job],
                |r: &dyn RowGet| r.int("cursor_id"),
            )
            .await?;
        tx.commit().await?;
        Ok(Some(Claim {
            job: job.to_string(),
            owner: owner.to_string(),
            due,
            started_at: now,
            cursor,
        }))
    }

    /// Records how a claimed run ended and lets go of the job. On success
    /// a period job is done for its period; a failure leaves it due, to be
    /// retried next round. `cursor`: an event job's progress (kept even
    /// when it failed later on).
    pub async fn finish_job(
        &self,
        claim: &Claim,
        outcome: Result<(), String>,
        cursor: Option<i64>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let ms = (now - claim.started_at).num_milliseconds();
        let cursor = cursor.unwrap_or(claim.cursor);
        let mut db = self.db.clone();
        match outcome {
            Ok(()) => {
                let done_for = match claim.due {
                    Due::Period(day) => Some(day),
                    Due::Every(_) => None,
                };
                db.execute(
                    "UPDATE job_runs SET done_for = COALESCE($1, done_for), finished_at = $2, duration_ms = $3, \
                     runs = runs + 1, cursor_id = $4, lease_owner = NULL, lease_until = NULL \
                     WHERE job = $5 AND lease_owner = $6",
                    args![done_for, now, ms, cursor, claim.job.clone(), claim.owner.clone()],
                )
                .await?;
            }
            Err(e) => {
                let e: String = e.chars().take(2000).collect();
                db.execute(
                    "UPDATE job_runs SET last_error = $1, failed_at = $2, duration_ms = $3, failures = failures + 1, \
                     cursor_id = $4, lease_owner = NULL, lease_until = NULL WHERE job = $5 AND lease_owner = $6",
                    args![e, now, ms, cursor, claim.job.clone(), claim.owner.clone()],
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Every job's state, by name.
    pub async fn job_states(&self) -> Result<Vec<JobState>, StoreError> {
        self.db
            .clone()
            .fetch_all(
                "SELECT job, done_for, finished_at, started_at, duration_ms, runs, failures, last_error, failed_at, \
                 lease_owner, lease_until, cursor_id FROM job_runs ORDER BY job",
                vec![],
                |r: &dyn RowGet| {
                    let finished = r.time("finished_at")?;
                    Ok(JobState {
                        job: r.text("job")?,
                        done_for: r.opt_date("done_for")?.filter(|d| *d > never()),
                        finished_at: (finished > DateTime::<Utc>::UNIX_EPOCH).then_some(finished),
                        started_at: r.opt_time("started_at")?,
                        duration_ms: r.opt_int("duration_ms")?,
                        runs: r.int("runs")?,
                        failures: r.int("failures")?,
                        last_error: r.opt_text("last_error")?,
                        failed_at: r.opt_time("failed_at")?,
                        running_on: r.opt_text("lease_owner")?,
                        lease_until: r.opt_time("lease_until")?,
                        cursor: r.int("cursor_id")?,
                    })
                },
            )
            .await
    }
}
