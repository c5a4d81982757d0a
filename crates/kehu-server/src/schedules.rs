//! Scheduled reports (issue 9): after every month or quarter, the daily
//! `reports` job makes each active schedule's report of the period just
//! ended (classification or strategy of one scheme, tag analytics or
//! marketing; everyone), keeps it as XLSX or PDF, and e-mails it to the
//! schedule's recipients when e-mail is configured. A report is made once per schedule and period; a delivery
//! that fails is recorded with its reason and retried on the next runs
//! (at most [`MAX_MAIL_ATTEMPTS`] times).

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::export::Format;
use crate::reports::{ReportRequest, ReportScope};
use crate::AppState;
use chrono::NaiveDate;
use kehu_core::report::schedule::{ReportFileFormat, ScheduleInput, ScheduledKind};
use kehu_core::report::Definitions;
use kehu_core::role::{Permission, Scope};
use kehu_core::Lang;
use kehu_store::report_schedules::{Schedule, StoredReport};
use kehu_store::ScopeFilter;
use serde::Serialize;
use utoipa::ToSchema;

/// The `job_runs` name of the scheduled reports.
pub const REPORTS_JOB: &str = "reports";
/// Deliveries tried per report before giving up (each try is recorded).
pub const MAX_MAIL_ATTEMPTS: i64 = 5;

/// Schedules make reports over every customer: only readers of all reports
/// may set them up or read what they made.
pub fn may_schedule(user: &CurrentUser) -> Result<(), ApiError> {
    match user.actor.grants.scope(Permission::ReportRead) {
        Some(Scope::All) => Ok(()),
        _ => Err(ApiError::Forbidden),
    }
}

pub async fn create(
    state: &AppState,
    user: &CurrentUser,
    input: &ScheduleInput,
) -> Result<Schedule, ApiError> {
    may_schedule(user)?;
    let data = input.validate()?;
    // The scheme must be published (refused on `scheme` otherwise).
    if data.kind.reads_scheme() {
        crate::reports::scheme_classes(state, &data.scheme).await?;
    }
    let s = state.store.create_schedule(&data, user.user.id).await?;
    state.audit(
        Some(user),
        "create",
        format!("report_schedule:{}", s.id),
        serde_json::json!({"after": &s}),
    );
    Ok(s)
}

pub async fn stop(state: &AppState, user: &CurrentUser, id: i64) -> Result<Schedule, ApiError> {
    may_schedule(user)?;
    let s = state.store.stop_schedule(id).await?;
    state.audit(
        Some(user),
        "update",
        format!("report_schedule:{id}"),
        serde_json::json!({"active": false}),
    );
    Ok(s)
}

/// The file name of a schedule's report of a period.
fn file_name(s: &Schedule, period: &str) -> String {
    if s.scheme.is_empty() {
        format!("{}-{period}", s.kind.key())
    } else {
        format!("{}-{}-{period}", s.kind.key(), s.scheme)
    }
}

/// The file format a schedule makes its reports in.
fn format_of(s: &Schedule) -> Format {
    match s.format {
        ReportFileFormat::Xlsx => Format::Xlsx,
        ReportFileFormat::Pdf => Format::Pdf,
    }
}

/// A stored report's file, audited as an export.
pub async fn file(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
) -> Result<axum::response::Response, ApiError> {
    may_schedule(user)?;
    let (r, bytes) = state.store.stored_report_file(id).await?;
    let schedule = state.store.schedule(r.schedule_id).await?;
    state.audit(
        Some(user),
        "export",
        format!("stored_report:{id}"),
        serde_json::json!({"period": r.period, "kind": schedule.kind.key()}),
    );
    Ok(crate::export::download(
        format_of(&schedule),
        &file_name(&schedule, &r.period),
        bytes,
    ))
}

/// The report of `s` for `period` as its XLSX or PDF (everyone, Chinese headings).
async fn make(
    state: &AppState,
    s: &Schedule,
    period: kehu_core::strategy::Period,
) -> Result<Vec<u8>, ApiError> {
    let req = ReportRequest {
        scheme: s.scheme.clone(),
        period,
        segment: None,
        definitions: Definitions::default(),
    };
    let scope = ReportScope::all();
    match s.kind {
        ScheduledKind::Classification => {
            let r = crate::reports::classification(state, &scope, &req, Lang::Zh).await?;
            crate::reports::report_file(&r, format_of(s), None, Lang::Zh)
        }
        ScheduledKind::Strategy => {
            let r = crate::reports::strategy(state, &scope, &req, Lang::Zh).await?;
            crate::reports::strategy_file(&r, format_of(s), Lang::Zh)
        }
        ScheduledKind::Tags => {
            // The tags as they stood on the period's last day.
            let span = crate::api::tags::ReviewSpan {
                since: period.start,
                until: period.end.min(state.store.today()),
            };
            let r = crate::api::tags::usage_review(state, span, &ScopeFilter::All).await?;
            crate::api::tags::review_file(&r, format_of(s), Lang::Zh)
        }
        ScheduledKind::Marketing => {
            let (r, _) =
                crate::campaigns::report(state, &ScopeFilter::All, Some(&period), Lang::Zh).await?;
            crate::campaigns::report_file(&r, format_of(s), None, Lang::Zh)
        }
    }
}

/// What one run did.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct RunSummary {
    /// `schedule id: period` of each report made now.
    pub made: Vec<String>,
    pub mailed: u64,
    pub mail_failed: u64,
    /// Reports waiting for e-mail while none is configured.
    pub not_mailed: u64,
    /// `schedule id: reason` of each report that could not be made (tried
    /// again on the next run).
    pub failed: Vec<String>,
}

/// Makes the reports that are due as of `today`, then delivers what has
/// not gone out. A report that cannot be made (its scheme unpublished, say)
/// holds up neither the others nor the e-mails; the run then fails naming
/// it, so the jobs page shows it, and tries it again next time.
pub async fn run(state: &AppState, today: NaiveDate) -> Result<RunSummary, ApiError> {
    let summary = make_and_mail(state, today).await?;
    if summary.failed.is_empty() {
        Ok(summary)
    } else {
        Err(ApiError::Internal(format!(
            "scheduled reports not made: {}",
            summary.failed.join("; ")
        )))
    }
}

async fn make_and_mail(state: &AppState, today: NaiveDate) -> Result<RunSummary, ApiError> {
    let mut summary = RunSummary::default();
    let schedules = state.store.schedules().await?;
    for s in schedules.iter().filter(|s| s.active) {
        // Every period owed since the schedule was made, not only the
        // last: periods missed while no server ran are made now.
        let created_on = crate::tasks::to_local(s.created_at).date();
        for period in s.cadence.owed(created_on, today) {
            let label = period.label();
            if state.store.has_stored_report(s.id, &label).await? {
                continue;
            }
            let bytes = match make(state, s, period).await {
                Ok(b) => b,
                Err(e) => {
                    // Validation errors say which field and why; others their cause.
                    let why = match &e {
                        ApiError::Validation(_) => e.texts(Lang::En).1,
                        other => other.to_string(),
                    };
                    tracing::warn!(schedule = s.id, error = %why, "making a scheduled report");
                    summary.failed.push(format!("{}: {label}: {why}", s.id));
                    break;
                }
            };
            if state
                .store
                .store_report(s.id, &label, bytes)
                .await?
                .is_some()
            {
                summary.made.push(format!("{}: {label}", s.id));
            }
        }
    }
    for r in state.store.reports_to_mail(MAX_MAIL_ATTEMPTS).await? {
        let Some(s) = schedules.iter().find(|s| s.id == r.schedule_id) else {
            continue;
        };
        if s.recipients.is_empty() {
            continue;
        }
        let Some(mail) = &state.settings.mail else {
            summary.not_mailed += 1;
            continue;
        };
        let (_, bytes) = state.store.stored_report_file(r.id).await?;
        let (zh, en) = if s.scheme.is_empty() {
            (s.kind.label_zh().to_string(), s.kind.key().to_string())
        } else {
            (
                format!("{}（{}）", s.kind.label_zh(), s.scheme),
                format!("{} report of {}", s.kind.key(), s.scheme),
            )
        };
        let subject = format!("kehu {zh} · {}", r.period);
        let body = format!(
            "{zh}{} 的报表见附件。\nThe {en} for {} is attached.\n",
            r.period, r.period
        );
        let file = crate::mail::File {
            name: format!("{}.{}", file_name(s, &r.period), format_of(s).extension()),
            content_type: format_of(s).content_type(),
            bytes,
        };
        match crate::mail::send(mail, &s.recipients, &subject, &body, Some(file)).await {
            Ok(()) => {
                state.store.record_mail(r.id, None).await?;
                summary.mailed += 1;
            }
            Err(e) => {
                tracing::warn!(report = r.id, error = %e, "e-mailing a scheduled report");
                state.store.record_mail(r.id, Some(&e)).await?;
                summary.mail_failed += 1;
            }
        }
    }
    Ok(summary)
}

/// The schedules and the latest reports made.
#[derive(Debug, Serialize, ToSchema)]
pub struct SchedulesOut {
    #[schema(value_type = Vec<Object>)]
    pub schedules: Vec<Schedule>,
    #[schema(value_type = Vec<Object>)]
    pub reports: Vec<StoredReport>,
    /// Whether e-mail is configured (KEHU_SMTP_URL).
    pub mail_configured: bool,
}

pub async fn overview(state: &AppState, user: &CurrentUser) -> Result<SchedulesOut, ApiError> {
    may_schedule(user)?;
    Ok(SchedulesOut {
        schedules: state.store.schedules().await?,
        reports: state.store.stored_reports(100).await?,
        mail_configured: state.settings.mail.is_some(),
    })
}
