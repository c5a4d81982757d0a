//! The 异常数据报告 page (counts per kind, filters, each finding with its
//! customer, assignee, due date and overdue flag, the check on demand) and
//! the holiday calendar page. Both go through `crate::anomalies`, as the
//! API does.

use super::forms::FormData;
use super::Page;
use crate::anomalies::{self, ReportQuery};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use kehu_core::anomaly::AnomalyKind;
use kehu_core::calendar::{calendar_text, parse_calendar};
use kehu_core::Lang;
use minijinja::{context, Value};

const PAGE_SIZE: i64 = 100;

/// GET /anomalies?kind=&mine=1&overdue=1&status=&page=
pub async fn report(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = FormData::from_query(raw.as_deref());
    let n: i64 = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let query = ReportQuery {
        kind: q.get("kind").filter(|k| !k.is_empty()).map(str::to_string),
        status: q
            .get("status")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        mine: q.get("mine").is_some(),
        overdue: q.get("overdue").is_some(),
        limit: PAGE_SIZE,
        offset: (n - 1) * PAGE_SIZE,
    };
    let report = anomalies::report(&state, &page.user, &query, page.lang).await?;
    let kinds: Vec<Value> = AnomalyKind::ALL
        .iter()
        .map(|k| context! { key => k.key(), label => if page.lang == Lang::En { k.label_en() } else { k.label_zh() } })
        .collect();
    let pages = (report.total + PAGE_SIZE - 1) / PAGE_SIZE;
    Ok(page.render(
        &state,
        "anomalies/report.html",
        "anomalies",
        context! {
            report => Value::from_serialize(&report), kinds, page => n, pages,
            kind => query.kind, status => query.status.unwrap_or_else(|| "open".into()),
            mine => query.mine, overdue => query.overdue,
            can_run => anomalies::may_run(&page.user),
            // new-resolved-open, from the check's redirect
            ran => super::counts_param(&q, "ran"),
        },
    ))
}

/// POST /anomalies/run
pub async fn run(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    if !anomalies::may_run(&page.user) {
        return Err(ApiError::Forbidden);
    }
    let done = anomalies::run(&state.store, None).await;
    Ok(page.after(&state, done, |r| {
        let r = r.unwrap_or_default();
        format!("/anomalies?ran={}-{}-{}", r.new, r.resolved, r.open)
    }))
}

/// GET /admin/calendar
pub async fn calendar(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    if !anomalies::may_edit_calendar(&page.user) {
        return Err(ApiError::Forbidden);
    }
    let text = calendar_text(&state.store.calendar_days().await?);
    Ok(render_calendar(&state, &page, &text, Vec::new(), false))
}

fn render_calendar(
    state: &AppState,
    page: &Page,
    text: &str,
    errors: Vec<String>,
    saved: bool,
) -> Response {
    page.render(
        state,
        "admin/calendar.html",
        "calendar",
        context! { text, errors, saved },
    )
}

/// POST /admin/calendar: the whole calendar as text; errors name the line.
pub async fn save_calendar(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    if !anomalies::may_edit_calendar(&page.user) {
        return Err(ApiError::Forbidden);
    }
    let text = form.get("text").unwrap_or("").to_string();
    match parse_calendar(&text) {
        Ok(days) => {
            state.store.set_calendar_days(&days).await?;
            state.audit(
                Some(&page.user),
                "calendar.set",
                "calendar".into(),
                serde_json::json!({"days": days.len()}),
            );
            Ok(render_calendar(
                &state,
                &page,
                &calendar_text(&days),
                Vec::new(),
                true,
            ))
        }
        Err(e) => {
            let errors =
                e.0.iter()
                    .map(|f| format!("{}: {}", f.field, f.reason.message(page.lang)))
                    .collect();
            Ok(render_calendar(&state, &page, &text, errors, false))
        }
    }
}
