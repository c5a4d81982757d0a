//! The notification delivery page (`/admin/deliveries`, user
//! administrators): the webhooks with their form and stop buttons, and the
//! latest e-mail and webhook deliveries with tries, next try and error.

use super::forms::{error_map, FormData};
use super::Page;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use kehu_core::delivery::{WebhookFormat, WebhookInput};
use minijinja::{context, Value};
use std::collections::BTreeMap;

pub async fn page(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = FormData::from_query(raw.as_deref());
    let status = q
        .get("status")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    render(
        &state,
        &page,
        status.as_deref(),
        BTreeMap::new(),
        &FormData(Vec::new()),
        None,
    )
    .await
}

async fn render(
    state: &AppState,
    page: &Page,
    status: Option<&str>,
    errors: BTreeMap<String, String>,
    form: &FormData,
    secret: Option<String>,
) -> Result<Response, ApiError> {
    let o = match crate::deliveries::outbox(state, &page.user, status).await {
        Ok(o) => o,
        Err(e) => return Ok(page.error_page(state, e)),
    };
    let time = |t: chrono::DateTime<chrono::Utc>| {
        crate::tasks::to_local(t).format("%m-%d %H:%M").to_string()
    };
    let deliveries = o
        .deliveries
        .iter()
        .map(|d| context! {
            id => d.id, channel => d.channel.clone(), target => d.target.clone(), status => d.status.clone(),
            attempts => d.attempts, next => time(d.next_attempt_at), error => d.last_error.clone(),
            user => d.user.clone(), text => if page.lang == kehu_core::Lang::En { d.text_en.clone() } else { d.text_zh.clone() },
            created => time(d.created_at),
        })
        .collect::<Vec<_>>();
    Ok(page.render(
        state,
        "admin/deliveries.html",
        "deliveries",
        context! {
            webhooks => Value::from_serialize(&o.webhooks), deliveries, errors, form => form.kept(), secret,
            mail => o.mail_configured, status,
            formats => super::tasks::choices(WebhookFormat::ALL, WebhookFormat::key, WebhookFormat::label_zh, page.lang),
        },
    ))
}

pub async fn create_webhook(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let input = WebhookInput {
        name: form.text("name"),
        url: form.text("url"),
        format: form.text("format"),
        secret: form.text("secret"),
    };
    match crate::deliveries::create_webhook(&state, &page.user, &input).await {
        Ok(w) => {
            render(
                &state,
                &page,
                None,
                BTreeMap::new(),
                &FormData(Vec::new()),
                Some(w.secret),
            )
            .await
        }
        Err(ApiError::Validation(e)) => {
            render(&state, &page, None, error_map(&e, page.lang), &form, None).await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

pub async fn stop_webhook(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    match crate::deliveries::stop_webhook(&state, &page.user, id).await {
        Ok(_) => Ok(page.redirect("/admin/deliveries")),
        Err(e) => Ok(page.error_page(&state, e)),
    }
}
