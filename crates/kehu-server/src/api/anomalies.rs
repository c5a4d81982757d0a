//! /api/v1/anomalies: the 异常数据报告 (open findings, filters, counts per
//! kind, overdue flags) and running the check on demand; /api/v1/calendar:
//! the holiday calendar that due dates count working days on.

use super::{ApiJson, QueryPairs};
use crate::anomalies::{self, AnomalyReport, ReportQuery};
use crate::auth::CurrentUser;
use crate::error::{lang_of, ApiError};
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use kehu_core::calendar::{calendar_text, parse_calendar};
use kehu_store::anomalies::AnomalyRun;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Findings about customers the caller may read, the most overdue first,
/// with the open and overdue counts per kind. Each finding is due 3 working
/// days after it was found and assigned to the customer's owner's manager.
#[utoipa::path(get, path = "/api/v1/anomalies", tag = "anomalies",
    params(("kind" = Option<String>, Query, description = "missing_fields | unreachable_contact | mobile_in_landline | future_date | amount_outlier | order_before_cooperation | open_duplicate"),
           ("status" = Option<String>, Query, description = "open (default) | resolved"),
           ("mine" = Option<bool>, Query, description = "only those assigned to the caller"),
           ("overdue" = Option<bool>, Query, description = "only those past their due date"),
           ("limit" = Option<i64>, Query, description = "1–1000, default 100"), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = AnomalyReport), (status = 422, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<Json<AnomalyReport>, ApiError> {
    let query = ReportQuery {
        kind: q.take("kind").filter(|k| !k.is_empty()),
        status: q.take("status").filter(|s| !s.is_empty()),
        mine: q.take_flag("mine"),
        overdue: q.take_flag("overdue"),
        limit: q.take_number("limit", 100)?,
        offset: q.take_number("offset", 0)?,
    };
    Ok(Json(
        anomalies::report(&state, &user, &query, lang_of(&headers)).await?,
    ))
}

/// Checks the data now (it is also checked every day): new findings are
/// recorded, fixed ones resolved. Managers and admins.
#[utoipa::path(post, path = "/api/v1/anomalies/run", tag = "anomalies",
    responses((status = 200, body = AnomalyRunOut), (status = 403, content_type = "application/problem+json")))]
pub async fn run(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<AnomalyRunOut>, ApiError> {
    if !anomalies::may_run(&user) {
        return Err(ApiError::Forbidden);
    }
    let r = anomalies::run(&state.store, None)
        .await?
        .unwrap_or_default();
    Ok(Json(r.into()))
}

/// What a check changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnomalyRunOut {
    pub found: usize,
    pub new: u64,
    pub reopened: u64,
    pub resolved: u64,
    pub open: u64,
}

impl From<AnomalyRun> for AnomalyRunOut {
    fn from(r: AnomalyRun) -> Self {
        AnomalyRunOut {
            found: r.found,
            new: r.new,
            reopened: r.reopened,
            resolved: r.resolved,
            open: r.open,
        }
    }
}

/// The holiday calendar: holidays and the weekend days worked instead (调休).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CalendarIo {
    /// One day per line: `2026-10-01 国庆节`, or `2026-10-10 上班 国庆调休` for a worked weekend day.
    pub text: String,
}

#[utoipa::path(get, path = "/api/v1/calendar", tag = "anomalies",
    responses((status = 200, body = CalendarIo)))]
pub async fn calendar(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<CalendarIo>, ApiError> {
    Ok(Json(CalendarIo {
        text: calendar_text(&state.store.calendar_days().await?),
    }))
}

/// Replaces the calendar (admins). Errors name the line.
#[utoipa::path(put, path = "/api/v1/calendar", tag = "anomalies", request_body = CalendarIo,
    responses((status = 200, body = CalendarIo), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn set_calendar(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CalendarIo>,
) -> Result<Json<CalendarIo>, ApiError> {
    if !anomalies::may_edit_calendar(&user) {
        return Err(ApiError::Forbidden);
    }
    let days = parse_calendar(&body.text)?;
    state.store.set_calendar_days(&days).await?;
    state.audit(
        Some(&user),
        "calendar.set",
        "calendar".into(),
        serde_json::json!({"days": days.len()}),
    );
    Ok(Json(CalendarIo {
        text: calendar_text(&days),
    }))
}
