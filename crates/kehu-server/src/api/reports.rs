//! Reports: /api/v1/reports/classification (the period report of a scheme
//! and the customers behind each transition) and /api/v1/predictions (the
//! fits of the prediction models, newest first; each customer's outlook is
//! on the customer: `p_alive`, `expected_orders_90d`, `clv_fen`).

use super::QueryPairs;
use crate::anomalies::{customer_refs, CustomerRef};
use crate::auth::CurrentUser;
use crate::crosssell::{CrossSellParams, CrossSellReport, CustomerCrossSell};
use crate::error::{lang_of, ApiError};
use crate::export::Format;
use crate::reports::{ClassificationReport, ReportRequest, StrategyReport};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use kehu_core::report::effect::{behind, Measure};
use kehu_core::report::{moved, ChurnBasis, Definitions, RepurchaseBasis};
use kehu_core::role::Permission;
use kehu_core::strategy::parse_period;
use kehu_core::Reason;
use kehu_store::predictions::ModelRun;
use serde::Serialize;
use utoipa::ToSchema;

/// One fit of the models.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModelOut {
    pub id: i64,
    /// The day the order histories were summarized as of.
    pub as_of: NaiveDate,
    pub fitted_at: DateTime<Utc>,
    /// Customers with orders, and how many of them bought again.
    pub customers: i64,
    pub repeat_buyers: i64,
    /// BG/NBD (time in weeks): purchase rate ~ Gamma(r, alpha), dropout ~ Beta(a, b).
    pub r: Option<f64>,
    pub alpha: Option<f64>,
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub log_likelihood: Option<f64>,
    /// The ridge on the log-parameters the fit needed when the plain
    /// maximum likelihood lay at infinity (0: none).
    pub penalizer: Option<f64>,
    /// Gamma-Gamma (spend in fen): null when it could not be fitted.
    pub p: Option<f64>,
    pub q: Option<f64>,
    pub v: Option<f64>,
    pub fit_ms: i64,
    /// Why nothing was fitted, when nothing was.
    pub error: Option<String>,
}

impl From<ModelRun> for ModelOut {
    fn from(m: ModelRun) -> Self {
        ModelOut {
            id: m.id,
            as_of: m.as_of,
            fitted_at: m.fitted_at,
            customers: m.customers,
            repeat_buyers: m.repeat_buyers,
            r: m.bg_nbd.map(|x| x.r),
            alpha: m.bg_nbd.map(|x| x.alpha),
            a: m.bg_nbd.map(|x| x.a),
            b: m.bg_nbd.map(|x| x.b),
            log_likelihood: m.log_likelihood,
            penalizer: m.penalizer,
            p: m.gamma_gamma.map(|x| x.p),
            q: m.gamma_gamma.map(|x| x.q),
            v: m.gamma_gamma.map(|x| x.v),
            fit_ms: m.fit_ms,
            error: m.error,
        }
    }
}

/// The latest 30 fits of the prediction models, newest first. Report readers.
#[utoipa::path(get, path = "/api/v1/predictions", tag = "reports",
    responses((status = 200, body = Vec<ModelOut>), (status = 403)))]
pub async fn predictions(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<ModelOut>>, ApiError> {
    user.require(Permission::ReportRead)?;
    let runs = state.store.model_runs(30).await?;
    Ok(Json(runs.into_iter().map(ModelOut::from).collect()))
}

/// Reads the report's parameters: `scheme` (default `value_tier`),
/// `period` (required), `segment` or `segment_id`, `churn`, `repurchase`.
async fn report_request(
    state: &AppState,
    user: &CurrentUser,
    q: &mut QueryPairs,
) -> Result<ReportRequest, ApiError> {
    let period = q.take("period").unwrap_or_default();
    let period = parse_period(&period).map_err(|r| ApiError::field("period", r))?;
    let definitions = Definitions {
        churn: match q.take("churn").filter(|v| !v.is_empty()) {
            Some(v) => ChurnBasis::parse(&v).map_err(|r| ApiError::field("churn", r))?,
            None => Definitions::default().churn,
        },
        repurchase: match q.take("repurchase").filter(|v| !v.is_empty()) {
            Some(v) => RepurchaseBasis::parse(&v).map_err(|r| ApiError::field("repurchase", r))?,
            None => Definitions::default().repurchase,
        },
    };
    Ok(ReportRequest {
        scheme: q
            .take("scheme")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "value_tier".into()),
        period,
        segment: super::segments::segment_in_query(state, user, q).await?,
        definitions,
    })
}

/// The monthly / quarterly classification report of a scheme, for
/// everyone in the reader's report scope or a segment of them: each class's
/// customers now and at the previous period's end, the transitions,
/// revenue, orders, average order, churn and repurchase (definitions
/// stated), new customers, SLA compliance and the data-quality trend.
/// `format=csv|xlsx|pdf` downloads the tables (`table=classes|transitions|sla|quality|definitions`
/// for CSV; XLSX and PDF hold them all, the definitions included).
#[utoipa::path(get, path = "/api/v1/reports/classification", tag = "reports",
    params(("scheme" = Option<String>, Query, description = "scheme key, default value_tier"),
           ("period" = String, Query, description = "2026-Q3, 2026-09 or 2026"),
           ("segment" = Option<String>, Query, description = "a segment expression"), ("segment_id" = Option<i64>, Query, description = "a saved segment, instead of an expression"),
           ("churn" = Option<String>, Query, description = "previous_period (default) | year"),
           ("repurchase" = Option<String>, Query, description = "within_period (default) | across_periods"),
           ("format" = Option<String>, Query, description = "json (default) | csv | xlsx | pdf"),
           ("table" = Option<String>, Query, description = "for CSV: classes (default) | transitions | quality")),
    responses((status = 200, body = ClassificationReport), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn classification(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<Response, ApiError> {
    let lang = lang_of(&headers);
    let req = report_request(&state, &user, &mut q).await?;
    let format = file_format(&mut q)?;
    let table = q.take("table");
    let scope = crate::reports::ReportScope::of(&user)?;
    let report = crate::reports::classification(&state, &scope, &req, lang).await?;
    let Some(format) = format else {
        return Ok(Json(report).into_response());
    };
    let file = crate::reports::report_file(&report, format, table.as_deref(), lang)?;
    Ok(download(
        &state,
        &user,
        "classification",
        &req,
        format,
        file,
    ))
}

/// `format`: None for JSON (the default), checked before any work.
pub fn file_format(q: &mut QueryPairs) -> Result<Option<Format>, ApiError> {
    q.take("format")
        .filter(|f| !f.is_empty() && f != "json")
        .map(|f| Format::parse(&f).map_err(|r| ApiError::field("format", r)))
        .transpose()
}

/// A report file, audited as an export.
fn download(
    state: &AppState,
    user: &CurrentUser,
    kind: &str,
    req: &ReportRequest,
    format: Format,
    file: Vec<u8>,
) -> Response {
    let period = req.period.label();
    audited_download(
        state,
        user,
        format!("report:{kind}:{}", req.scheme),
        serde_json::json!({"period": period, "segment": req.segment}),
        format,
        &format!("{kind}-{}-{period}", req.scheme),
        file,
    )
}

/// A report's file, its download recorded in the audit log as an export
/// (`detail` with the format added).
pub fn audited_download(
    state: &AppState,
    user: &CurrentUser,
    target: String,
    mut detail: serde_json::Value,
    format: Format,
    name: &str,
    file: Vec<u8>,
) -> Response {
    if let Some(d) = detail.as_object_mut() {
        d.insert("format".into(), format.extension().into());
    }
    state.audit(Some(user), "export", target, detail);
    crate::export::download(format, name, file)
}

/// The customers behind one cell of the transition matrix.
#[derive(Debug, Serialize, ToSchema)]
pub struct MovedPage {
    pub total: usize,
    pub items: Vec<CustomerRef>,
}

/// The customers who were in class `from` at the previous period's end and
/// in `to` at this one's (`-` for "not classified"); same parameters as the report.
#[utoipa::path(get, path = "/api/v1/reports/classification/customers", tag = "reports",
    params(("scheme" = Option<String>, Query), ("period" = String, Query), ("segment" = Option<String>, Query), ("segment_id" = Option<i64>, Query),
           ("from" = String, Query, description = "class at the previous period's end; - for none"),
           ("to" = String, Query, description = "class at this period's end; - for none"),
           ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = MovedPage), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn moved_customers(
    State(state): State<AppState>,
    user: CurrentUser,
    mut q: QueryPairs,
) -> Result<Json<MovedPage>, ApiError> {
    let req = report_request(&state, &user, &mut q).await?;
    let class = |q: &mut QueryPairs, key: &str| -> Result<Option<String>, ApiError> {
        match q.take(key) {
            None => Err(ApiError::field(key, Reason::Required)),
            Some(v) if v.trim() == "-" || v.trim().is_empty() => Ok(None),
            Some(v) => Ok(Some(v.trim().to_string())),
        }
    };
    let (from, to) = (class(&mut q, "from")?, class(&mut q, "to")?);
    let limit = q.take_number("limit", 50)?.clamp(1, 1000) as usize;
    let offset = q.take_number("offset", 0)?.max(0) as usize;
    let scope = crate::reports::ReportScope::of(&user)?;
    let (_, customers) = crate::reports::period_customers(&state, &scope, &req, false).await?;
    let ids: Vec<i64> = moved(&customers, from.as_deref(), to.as_deref()).collect();
    customer_page(&state, &ids, limit, offset).await
}

/// Strategy effectiveness: per class (as at the period's start), its
/// strategy's goal against what its customers did compared with the same
/// period a year earlier (definitions included), and how the class's
/// strategy tasks due in the period went (completion, on time, overdue).
/// `format=csv|xlsx|pdf` downloads the table.
#[utoipa::path(get, path = "/api/v1/reports/strategy", tag = "reports",
    params(("scheme" = Option<String>, Query, description = "scheme key, default value_tier"),
           ("period" = String, Query, description = "2026-Q3, 2026-09 or 2026"),
           ("segment" = Option<String>, Query, description = "a segment expression"), ("segment_id" = Option<i64>, Query, description = "a saved segment, instead of an expression"),
           ("format" = Option<String>, Query, description = "json (default) | csv | xlsx | pdf")),
    responses((status = 200, body = StrategyReport), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn strategy(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<Response, ApiError> {
    let lang = lang_of(&headers);
    let req = report_request(&state, &user, &mut q).await?;
    let format = file_format(&mut q)?;
    let scope = crate::reports::ReportScope::of(&user)?;
    let report = crate::reports::strategy(&state, &scope, &req, lang).await?;
    let Some(format) = format else {
        return Ok(Json(report).into_response());
    };
    let file = crate::reports::strategy_file(&report, format, lang)?;
    Ok(download(&state, &user, "strategy", &req, format, file))
}

/// The customers behind a class's numbers in the strategy report:
/// `measure=members` (its customers at the period's start), `bought` (who
/// bought in the period) or `lapsed` (bought in the year before, not in it).
#[utoipa::path(get, path = "/api/v1/reports/strategy/customers", tag = "reports",
    params(("scheme" = Option<String>, Query), ("period" = String, Query), ("segment" = Option<String>, Query), ("segment_id" = Option<i64>, Query),
           ("class" = String, Query), ("measure" = String, Query, description = "members | bought | lapsed"),
           ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = MovedPage), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn strategy_customers(
    State(state): State<AppState>,
    user: CurrentUser,
    mut q: QueryPairs,
) -> Result<Json<MovedPage>, ApiError> {
    let req = report_request(&state, &user, &mut q).await?;
    let class = q
        .take("class")
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::field("class", Reason::Required))?;
    let measure_text = q.take("measure").unwrap_or_default();
    let measure = Measure::parse(measure_text.trim()).ok_or_else(|| {
        ApiError::field(
            "measure",
            Reason::UnknownOption {
                allowed: vec!["members".into(), "bought".into(), "lapsed".into()],
            },
        )
    })?;
    let limit = q.take_number("limit", 50)?.clamp(1, 1000) as usize;
    let offset = q.take_number("offset", 0)?.max(0) as usize;
    let scope = crate::reports::ReportScope::of(&user)?;
    let (_, customers) = crate::reports::period_customers(&state, &scope, &req, true).await?;
    let ids: Vec<i64> = behind(&customers, &class, measure).collect();
    customer_page(&state, &ids, limit, offset).await
}

/// A page of customers (id, code, name) of a list of ids.
pub async fn customer_page(
    state: &AppState,
    ids: &[i64],
    limit: usize,
    offset: usize,
) -> Result<Json<MovedPage>, ApiError> {
    let page: Vec<i64> = ids.iter().skip(offset).take(limit).copied().collect();
    let mut refs = customer_refs(&state.store, page.iter().copied()).await?;
    Ok(Json(MovedPage {
        total: ids.len(),
        items: page.iter().filter_map(|id| refs.remove(id)).collect(),
    }))
}

/// Cross-selling for one customer: the products its peers (same class of
/// `scheme`, industry and size; widened when fewer than 20) bought in the
/// last 12 months and it never bought, with the evidence, and the peers
/// most like it that the reader may see.
#[utoipa::path(get, path = "/api/v1/customers/{id}/cross-sell", tag = "reports",
    params(("id" = i64, Path), ("scheme" = Option<String>, Query, description = "scheme key, default value_tier"),
           ("min_share" = Option<i64>, Query, description = "whole percent of peers that must buy a product, 1–100; default 30")),
    responses((status = 200, body = CustomerCrossSell), (status = 403), (status = 404), (status = 422, content_type = "application/problem+json")))]
pub async fn customer_cross_sell(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<Json<CustomerCrossSell>, ApiError> {
    let params = CrossSellParams::take(&mut q)?;
    let out = crate::crosssell::for_customer(&state, &user, id, &params, lang_of(&headers)).await?;
    Ok(Json(out))
}

/// The cross-selling opportunities of everyone in the reader's report
/// scope (or a segment of them), as of today or a past period's last day
/// (buying and classes then): per product, who buys it,
/// and the customers who never bought it in a class × industry × size
/// group where at least `min_share` % buy it, with those groups.
/// `format=csv|xlsx|pdf` downloads the tables (`table=products|groups` for CSV).
#[utoipa::path(get, path = "/api/v1/reports/cross-sell", tag = "reports",
    params(("scheme" = Option<String>, Query, description = "scheme key, default value_tier"),
           ("period" = Option<String>, Query, description = "a month, quarter or year (2026-Q3): as of its last day; default (or one under way) today"),
           ("segment" = Option<String>, Query, description = "a segment expression"), ("segment_id" = Option<i64>, Query, description = "a saved segment, instead of an expression"),
           ("min_share" = Option<i64>, Query, description = "whole percent, 1–100; default 30"),
           ("format" = Option<String>, Query, description = "json (default) | csv | xlsx | pdf"),
           ("table" = Option<String>, Query, description = "for CSV: products (default) | groups")),
    responses((status = 200, body = CrossSellReport), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn cross_sell(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<Response, ApiError> {
    let lang = lang_of(&headers);
    let params = CrossSellParams::take_for_report(&mut q, state.store.today())?;
    let segment = super::segments::segment_in_query(&state, &user, &mut q).await?;
    let format = file_format(&mut q)?;
    let table = q.take("table");
    let scope = user.scope_filter(Permission::ReportRead)?;
    let (report, _) =
        crate::crosssell::report(&state, &scope, &params, segment.as_deref(), lang).await?;
    let Some(format) = format else {
        return Ok(Json(report).into_response());
    };
    let file = crate::crosssell::report_file(&report, format, table.as_deref(), lang)?;
    Ok(audited_download(
        &state,
        &user,
        format!("report:cross_sell:{}", params.scheme),
        serde_json::json!({"segment": segment, "min_share": params.min_share, "as_of": report.as_of}),
        format,
        &format!("cross-sell-{}-{}", params.scheme, report.as_of),
        file,
    ))
}

/// The opportunity customers of one product in the cross-selling report
/// (same parameters), in id order.
#[utoipa::path(get, path = "/api/v1/reports/cross-sell/customers", tag = "reports",
    params(("product" = String, Query), ("scheme" = Option<String>, Query), ("period" = Option<String>, Query), ("segment" = Option<String>, Query), ("segment_id" = Option<i64>, Query),
           ("min_share" = Option<i64>, Query), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = MovedPage), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn cross_sell_customers(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<Json<MovedPage>, ApiError> {
    let params = CrossSellParams::take_for_report(&mut q, state.store.today())?;
    let segment = super::segments::segment_in_query(&state, &user, &mut q).await?;
    let product = q
        .take("product")
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::field("product", Reason::Required))?;
    let limit = q.take_number("limit", 50)?.clamp(1, 1000) as usize;
    let offset = q.take_number("offset", 0)?.max(0) as usize;
    let scope = user.scope_filter(Permission::ReportRead)?;
    let ids = crate::crosssell::opportunity_customers(
        &state,
        &scope,
        &params,
        segment.as_deref(),
        &product,
        lang_of(&headers),
    )
    .await?;
    customer_page(&state, &ids, limit, offset).await
}

/// The reader's dashboard: the panels of their role (`layout`, in order)
/// within their rights and scopes — class distribution, intent funnel,
/// twelve months of purchases, this quarter's class changes, tasks, SLA
/// compliance, customers at risk, marketing channels. `format=csv|xlsx|pdf`
/// downloads the figures (`table=distribution|funnel|revenue|class_changes|summary|channels`
/// for CSV; XLSX holds every panel the reader sees).
#[utoipa::path(get, path = "/api/v1/dashboard", tag = "reports",
    params(("format" = Option<String>, Query, description = "json (default) | csv | xlsx | pdf"),
           ("table" = Option<String>, Query, description = "for CSV: which panel (default the first)")),
    responses((status = 200, body = crate::dashboard::Dashboard), (status = 401), (status = 422, content_type = "application/problem+json")))]
pub async fn dashboard(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<Response, ApiError> {
    let lang = lang_of(&headers);
    let format = file_format(&mut q)?;
    let table = q.take("table");
    let d = crate::dashboard::dashboard(&state, &user, lang).await?;
    let Some(format) = format else {
        return Ok(Json(d).into_response());
    };
    let file = crate::dashboard::dashboard_file(&d, format, table.as_deref(), lang)?;
    Ok(audited_download(
        &state,
        &user,
        "dashboard".into(),
        serde_json::json!({"table": table}),
        format,
        "dashboard",
        file,
    ))
}

/// The report schedules, the latest 100 reports made from them, and
/// whether e-mail is configured. Readers of all reports.
#[utoipa::path(get, path = "/api/v1/report-schedules", tag = "reports",
    responses((status = 200, body = crate::schedules::SchedulesOut), (status = 403)))]
pub async fn schedules(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<crate::schedules::SchedulesOut>, ApiError> {
    Ok(Json(crate::schedules::overview(&state, &user).await?))
}

/// Schedules a report: `kind` (classification | strategy | tags |
/// marketing), `scheme` (for classification and strategy; default
/// value_tier), `cadence` (monthly | quarterly), `recipients`
/// (e-mail addresses separated by commas or spaces; none: kept only). The
/// daily `reports` job makes it after each period ends.
#[utoipa::path(post, path = "/api/v1/report-schedules", tag = "reports", request_body = Object,
    responses((status = 201, body = Object), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn create_schedule(
    State(state): State<AppState>,
    user: CurrentUser,
    super::ApiJson(input): super::ApiJson<kehu_core::report::schedule::ScheduleInput>,
) -> Result<
    (
        axum::http::StatusCode,
        Json<kehu_store::report_schedules::Schedule>,
    ),
    ApiError,
> {
    let s = crate::schedules::create(&state, &user, &input).await?;
    Ok((axum::http::StatusCode::CREATED, Json(s)))
}

/// Stops a schedule (the reports it made stay).
#[utoipa::path(post, path = "/api/v1/report-schedules/{id}/stop", tag = "reports",
    params(("id" = i64, Path)), responses((status = 200, body = Object), (status = 403), (status = 404)))]
pub async fn stop_schedule(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<kehu_store::report_schedules::Schedule>, ApiError> {
    Ok(Json(crate::schedules::stop(&state, &user, id).await?))
}

/// A report made by a schedule, as XLSX.
#[utoipa::path(get, path = "/api/v1/stored-reports/{id}/file", tag = "reports",
    params(("id" = i64, Path)), responses((status = 200, content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (status = 403), (status = 404)))]
pub async fn stored_report_file(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    crate::schedules::file(&state, &user, id).await
}
