//! The scheduled reports page (`/reports/schedules`): the form, the
//! schedules with a stop button, and the reports made with their download
//! and e-mail status.

use super::forms::{error_map, FormData};
use super::Page;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use kehu_core::report::schedule::{ReportCadence, ReportFileFormat, ScheduleInput, ScheduledKind};
use minijinja::{context, Value};
use std::collections::BTreeMap;

pub async fn page(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    render(&state, &page, BTreeMap::new(), &FormData(Vec::new())).await
}

async fn render(
    state: &AppState,
    page: &Page,
    errors: BTreeMap<String, String>,
    form: &FormData,
) -> Result<Response, ApiError> {
    let o = match crate::schedules::overview(state, &page.user).await {
        Ok(o) => o,
        Err(e) => return Ok(page.error_page(state, e)),
    };
    let label = |zh: &'static str, en: &'static str| {
        if page.lang == kehu_core::Lang::En {
            en
        } else {
            zh
        }
    };
    let schedules = o
        .schedules
        .iter()
        .map(|s| context! {
            id => s.id, kind => label(s.kind.label_zh(), s.kind.key()), scheme => s.scheme.clone(),
            cadence => label(s.cadence.label_zh(), s.cadence.key()), recipients => s.recipients.join(", "), active => s.active,
            format => s.format.key().to_uppercase(),
        })
        .collect::<Vec<_>>();
    let reports = o
        .reports
        .iter()
        .map(|r| {
            let s = o.schedules.iter().find(|s| s.id == r.schedule_id);
            context! {
                id => r.id, period => r.period.clone(), made_at => r.made_at.format("%Y-%m-%d %H:%M").to_string(),
                kind => s.map(|s| label(s.kind.label_zh(), s.kind.key())), scheme => s.map(|s| s.scheme.clone()),
                mailed => r.mailed_at.is_some(), attempts => r.mail_attempts, error => r.mail_error.clone(),
                recipients => s.is_some_and(|s| !s.recipients.is_empty()),
                format => s.map_or("XLSX".to_string(), |s| s.format.key().to_uppercase()),
            }
        })
        .collect::<Vec<_>>();
    let schemes: Vec<(String, String)> = state
        .store
        .published_scheme_versions()
        .await?
        .iter()
        .filter_map(|v| v.parsed_spec().ok())
        .map(|s| (s.key, s.name))
        .collect();
    Ok(page.render(
        state,
        "reports/schedules.html",
        "reports",
        context! {
            schedules, reports, errors, form => form.kept(), schemes, mail => o.mail_configured,
            kinds => super::tasks::choices(ScheduledKind::ALL, ScheduledKind::key, ScheduledKind::label_zh, page.lang),
            cadences => super::tasks::choices(ReportCadence::ALL, ReportCadence::key, ReportCadence::label_zh, page.lang),
            formats => super::tasks::choices(ReportFileFormat::ALL, ReportFileFormat::key, ReportFileFormat::label_zh, page.lang),
            next => Value::from(ReportCadence::Quarterly.last_complete(state.store.today()).label()),
        },
    ))
}

pub async fn create(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let input = ScheduleInput {
        kind: form.text("kind"),
        scheme: form.text("scheme"),
        cadence: form.text("cadence"),
        recipients: form.text("recipients"),
        format: form.text("format"),
    };
    match crate::schedules::create(&state, &page.user, &input).await {
        Ok(_) => Ok(page.redirect("/reports/schedules")),
        Err(ApiError::Validation(e)) => {
            render(&state, &page, error_map(&e, page.lang), &form).await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

pub async fn stop(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    match crate::schedules::stop(&state, &page.user, id).await {
        Ok(_) => Ok(page.redirect("/reports/schedules")),
        Err(e) => Ok(page.error_page(&state, e)),
    }
}
