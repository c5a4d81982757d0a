//! Report schedules and the reports made from them (migration 20).
//!
//! *Invariant*: one stored report per schedule and period (a second run
//! finds it and makes nothing); a report's e-mail outcome is kept with it
//! so a failed delivery is retried and visible.

use crate::db::{decode_n, Exec, RowGet};
use crate::error::StoreError;
use crate::{args, Store};
use chrono::{DateTime, Utc};
use kehu_core::report::schedule::{ReportCadence, ReportFileFormat, ScheduleData, ScheduledKind};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    pub id: i64,
    pub kind: ScheduledKind,
    pub scheme: String,
    pub cadence: ReportCadence,
    pub recipients: Vec<String>,
    /// The file each report is made as (xlsx or pdf).
    pub format: ReportFileFormat,
    pub active: bool,
    pub created_by: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// A report made from a schedule (without its file).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredReport {
    pub id: i64,
    pub schedule_id: i64,
    pub period: String,
    pub made_at: DateTime<Utc>,
    pub mailed_at: Option<DateTime<Utc>>,
    pub mail_attempts: i64,
    pub mail_error: Option<String>,
    pub size: i64,
}

const SCHEDULE_COLUMNS: &str =
    "id, kind, scheme, cadence, recipients, format, active, created_by, created_at";
const STORED_COLUMNS: &str =
    "id, schedule_id, period, made_at, mailed_at, mail_attempts, mail_error, \
     CAST(LENGTH(file) AS BIGINT) AS size";

fn undecodable(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unknown {what}").into())
}

fn decode_schedule(r: &dyn RowGet) -> Result<Schedule, sqlx::Error> {
    Ok(Schedule {
        id: r.int("id")?,
        kind: ScheduledKind::parse(&r.text("kind")?).map_err(|_| undecodable("kind"))?,
        scheme: r.text("scheme")?,
        cadence: ReportCadence::parse(&r.text("cadence")?).map_err(|_| undecodable("cadence"))?,
        recipients: serde_json::from_value(r.json("recipients")?)
            .map_err(|_| undecodable("recipients"))?,
        format: ReportFileFormat::parse(&r.text("format")?).map_err(|_| undecodable("format"))?,
        active: r.boolean("active")?,
        created_by: r.opt_int("created_by")?,
        created_at: r.time("created_at")?,
    })
}

fn decode_stored(r: &dyn RowGet) -> Result<StoredReport, sqlx::Error> {
    Ok(StoredReport {
        id: r.int("id")?,
        schedule_id: r.int("schedule_id")?,
        period: r.text("period")?,
        made_at: r.time("made_at")?,
        mailed_at: r.opt_time("mailed_at")?,
        mail_attempts: r.int("mail_attempts")?,
        mail_error: r.opt_text("mail_error")?,
        size: r.int("size")?,
    })
}

impl Store {
    pub async fn create_schedule(&self, d: &ScheduleData, by: i64) -> Result<Schedule, StoreError> {
        let sql = format!(
            "INSERT INTO report_schedules (kind, scheme, cadence, recipients, format, active, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {SCHEDULE_COLUMNS}"
        );
        self.db
            .clone()
            .fetch_one(
                &sql,
                args![
                    d.kind.key(),
                    d.scheme.as_str(),
                    d.cadence.key(),
                    serde_json::json!(d.recipients),
                    d.format.key(),
                    true,
                    by,
                    Utc::now()
                ],
                decode_schedule,
            )
            .await
    }

    /// Every schedule, active first, newest first.
    pub async fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        let sql = format!(
            "SELECT {SCHEDULE_COLUMNS} FROM report_schedules ORDER BY active DESC, id DESC"
        );
        self.db
            .clone()
            .fetch_all(&sql, vec![], decode_schedule)
            .await
    }

    pub async fn schedule(&self, id: i64) -> Result<Schedule, StoreError> {
        let sql = format!("SELECT {SCHEDULE_COLUMNS} FROM report_schedules WHERE id = $1");
        self.db
            .clone()
            .fetch_optional(&sql, args![id], decode_schedule)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Stops a schedule (its reports stay).
    pub async fn stop_schedule(&self, id: i64) -> Result<Schedule, StoreError> {
        let sql = format!(
            "UPDATE report_schedules SET active = $1 WHERE id = $2 RETURNING {SCHEDULE_COLUMNS}"
        );
        self.db
            .clone()
            .fetch_optional(&sql, args![false, id], decode_schedule)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Whether the schedule's report of `period` exists.
    pub async fn has_stored_report(&self, schedule: i64, period: &str) -> Result<bool, StoreError> {
        let n = self
            .db
            .clone()
            .fetch_one(
                "SELECT COUNT(*) AS n FROM stored_reports WHERE schedule_id = $1 AND period = $2",
                args![schedule, period],
                decode_n,
            )
            .await?;
        Ok(n > 0)
    }

    /// Keeps a report; None when the period's report exists already.
    pub async fn store_report(
        &self,
        schedule: i64,
        period: &str,
        file: Vec<u8>,
    ) -> Result<Option<StoredReport>, StoreError> {
        let sql = format!(
            "INSERT INTO stored_reports (schedule_id, period, file, made_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (schedule_id, period) DO NOTHING RETURNING {STORED_COLUMNS}"
        );
        self.db
            .clone()
            .fetch_optional(
                &sql,
                args![schedule, period, file, Utc::now()],
                decode_stored,
            )
            .await
    }

    /// Reports made, newest first (at most `limit`).
    pub async fn stored_reports(&self, limit: i64) -> Result<Vec<StoredReport>, StoreError> {
        let sql = format!("SELECT {STORED_COLUMNS} FROM stored_reports ORDER BY id DESC LIMIT $1");
        self.db
            .clone()
            .fetch_all(&sql, args![limit], decode_stored)
            .await
    }

    /// Reports whose e-mail has not gone out, with fewer than `max_attempts` tries.
    pub async fn reports_to_mail(
        &self,
        max_attempts: i64,
    ) -> Result<Vec<StoredReport>, StoreError> {
        let sql = format!(
            "SELECT {STORED_COLUMNS} FROM stored_reports WHERE mailed_at IS NULL AND mail_attempts < $1 ORDER BY id"
        );
        self.db
            .clone()
            .fetch_all(&sql, args![max_attempts], decode_stored)
            .await
    }

    /// A stored report and its file.
    pub async fn stored_report_file(&self, id: i64) -> Result<(StoredReport, Vec<u8>), StoreError> {
        let sql = format!("SELECT {STORED_COLUMNS}, file FROM stored_reports WHERE id = $1");
        self.db
            .clone()
            .fetch_optional(&sql, args![id], |r: &dyn RowGet| {
                Ok((decode_stored(r)?, r.opt_bytes("file")?.unwrap_or_default()))
            })
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Records an e-mail attempt: delivered (`error` None) or why not.
    pub async fn record_mail(&self, id: i64, error: Option<&str>) -> Result<(), StoreError> {
        let mailed_at = error.is_none().then(Utc::now);
        self.db
            .clone()
            .execute(
                "UPDATE stored_reports SET mail_attempts = mail_attempts + 1, mailed_at = $1, mail_error = $2 WHERE id = $3",
                args![mailed_at, error, id],
            )
            .await?;
        Ok(())
    }
}
