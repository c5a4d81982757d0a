//! Marketing campaigns: /api/v1/campaigns (list, create, one, touches) and
//! the marketing report (/api/v1/reports/marketing and the customers
//! behind its numbers).

use super::reports::{file_format, MovedPage};
use super::{ApiJson, QueryPairs};
use crate::auth::CurrentUser;
use crate::campaigns::{MarketingReport, TouchRequest, TouchResult};
use crate::error::{lang_of, ApiError};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kehu_core::campaign::CampaignInput;
use kehu_core::role::Permission;
use kehu_core::Reason;
use kehu_store::campaigns::Campaign;

/// Every campaign (latest start first) with how many customers it touched.
/// Campaign managers and report readers.
#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns",
    responses((status = 200, body = Vec<Object>), (status = 403)))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<Campaign>>, ApiError> {
    if !crate::campaigns::may_list(&user) {
        return Err(ApiError::Forbidden);
    }
    Ok(Json(state.store.campaigns().await?))
}

/// Creates a campaign: `name` (unique), `channel` (traditional | online |
/// event, or 传统 / 线上 / 活动), `starts_on`, `ends_on`, optional `cost` in
/// 元 (or "1.2万"), `window_days` (attribution window, 1–365, default 90),
/// `description`. Campaign managers (管理员, 市场).
#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns",
    request_body = Object,
    responses((status = 201, body = Object), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<CampaignInput>,
) -> Result<(StatusCode, Json<Campaign>), ApiError> {
    let c = crate::campaigns::create(&state, &user, &input).await?;
    Ok((StatusCode::CREATED, Json(c)))
}

#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns",
    params(("id" = i64, Path)),
    responses((status = 200, body = Object), (status = 403), (status = 404)))]
pub async fn read(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Campaign>, ApiError> {
    if !crate::campaigns::may_list(&user) {
        return Err(ApiError::Forbidden);
    }
    Ok(Json(state.store.campaign(id).await?))
}

/// Records whom the campaign touched: `segment` (an expression) or
/// `customer_ids`, on `touched_on` (within the campaign's dates; default
/// today, kept within them). Only customers the caller may read; a
/// customer touched already keeps its first day.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/touches", tag = "campaigns",
    params(("id" = i64, Path)), request_body = TouchRequest,
    responses((status = 200, body = TouchResult), (status = 403), (status = 404), (status = 422, content_type = "application/problem+json")))]
pub async fn touch(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<TouchRequest>,
) -> Result<Json<TouchResult>, ApiError> {
    Ok(Json(
        crate::campaigns::touch(&state, &user, id, &req).await?,
    ))
}

/// Marketing effectiveness: per campaign and per channel (traditional,
/// online, events), the customers reached within the reader's report
/// scope, those who ordered within the attribution window after their
/// touch, revenue, cost, and the conversion of untouched customers as the
/// baseline. `format=csv|xlsx|pdf` downloads (`table=channels|campaigns` for CSV).
#[utoipa::path(get, path = "/api/v1/reports/marketing", tag = "reports",
    params(("period" = Option<String>, Query, description = "only the campaigns that ran in this month, quarter or year (2026-Q3); default: all"),
           ("format" = Option<String>, Query, description = "json (default) | csv | xlsx | pdf"),
           ("table" = Option<String>, Query, description = "for CSV: channels (default) | campaigns")),
    responses((status = 200, body = MarketingReport), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn report(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<Response, ApiError> {
    let lang = lang_of(&headers);
    let format = file_format(&mut q)?;
    let table = q.take("table");
    let scope = user.scope_filter(Permission::ReportRead)?;
    let period = q
        .take("period")
        .map(|p| kehu_core::strategy::parse_period(&p).map_err(|r| ApiError::field("period", r)))
        .transpose()?;
    let (r, _) = crate::campaigns::report(&state, &scope, period.as_ref(), lang).await?;
    let Some(format) = format else {
        return Ok(Json(r).into_response());
    };
    let file = crate::campaigns::report_file(&r, format, table.as_deref(), lang)?;
    Ok(super::reports::audited_download(
        &state,
        &user,
        "report:marketing".into(),
        serde_json::json!({"period": r.period}),
        format,
        &format!(
            "marketing-{}",
            r.period.clone().unwrap_or_else(|| r.as_of.to_string())
        ),
        file,
    ))
}

/// The customers behind a campaign's numbers: `measure=reached|converted`.
#[utoipa::path(get, path = "/api/v1/reports/marketing/customers", tag = "reports",
    params(("campaign" = i64, Query), ("measure" = String, Query, description = "reached | converted"),
           ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = MovedPage), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn customers(
    State(state): State<AppState>,
    user: CurrentUser,
    mut q: QueryPairs,
) -> Result<Json<MovedPage>, ApiError> {
    let campaign = q
        .take("campaign")
        .ok_or_else(|| ApiError::field("campaign", Reason::Required))?
        .trim()
        .parse::<i64>()
        .map_err(|_| ApiError::field("campaign", Reason::IntegerFormat))?;
    let measure = q.take("measure").unwrap_or_default();
    let limit = q.take_number("limit", 50)?.clamp(1, 1000) as usize;
    let offset = q.take_number("offset", 0)?.max(0) as usize;
    let scope = user.scope_filter(Permission::ReportRead)?;
    let ids = crate::campaigns::customers_behind(&state, &scope, campaign, measure.trim()).await?;
    super::reports::customer_page(&state, &ids, limit, offset).await
}
