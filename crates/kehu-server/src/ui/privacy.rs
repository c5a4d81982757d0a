//! The personal-data requests page (`/admin/privacy`): find a person, export
//! or erase them, set retention periods; and consents withdrawn from the
//! customer page. The work is the API's (`api::privacy`).

use super::forms::{error_map, FormData};
use super::Page;
use crate::api::privacy::{self, PersonSearch};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use kehu_core::role::Permission;
use minijinja::{context, Value};
use std::collections::BTreeMap;

async fn render(
    state: &AppState,
    page: &Page,
    form: BTreeMap<String, String>,
    errors: BTreeMap<String, String>,
    people: Option<Vec<privacy::PersonFound>>,
    erased: Option<String>,
) -> Result<Response, ApiError> {
    let retention = privacy::retention_list(state, page.lang).await?;
    let failed = !errors.is_empty();
    Ok(page.render_form(
        state,
        "admin/privacy.html",
        "privacy",
        context! {
            form, errors, erased,
            searched => people.is_some(),
            people => Value::from_serialize(people.unwrap_or_default()),
            retention => Value::from_serialize(retention),
        },
        failed,
    ))
}

fn refused(state: &AppState, page: &Page) -> Option<Response> {
    page.user
        .require(Permission::PersonalData)
        .err()
        .map(|e| page.error_page(state, e))
}

/// GET /admin/privacy
pub async fn page(
    State(state): State<AppState>,
    page: Page,
    mut q: crate::api::QueryPairs,
) -> Result<Response, ApiError> {
    if let Some(r) = refused(&state, &page) {
        return Ok(r);
    }
    let erased = q.take("erased");
    render(
        &state,
        &page,
        BTreeMap::new(),
        BTreeMap::new(),
        None,
        erased,
    )
    .await
}

/// POST /admin/privacy: the search.
pub async fn search(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    if let Some(r) = refused(&state, &page) {
        return Ok(r);
    }
    let q = PersonSearch {
        name: form.text("name"),
        mobile: form.text("mobile"),
        email: form.text("email"),
        id_number: form.text("id_number"),
    };
    let kept = form.posted();
    match privacy::find(&state, &page.user, &q).await {
        Ok(people) => render(&state, &page, kept, BTreeMap::new(), Some(people), None).await,
        Err(ApiError::Validation(v)) => {
            render(&state, &page, kept, error_map(&v, page.lang), None, None).await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

/// POST /contacts/{id}/erase
pub async fn erase(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let done = async {
        let reason = privacy::erase_reason(form.text("reason").as_deref())?;
        privacy::contact_for(&state, &page.user, id).await?;
        privacy::erase_person(&state, &page.user, id, &reason).await
    }
    .await;
    match done {
        Ok(_) => Ok(page.redirect(&format!("/admin/privacy?erased=contact-{id}"))),
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

/// POST /admin/privacy/retention
pub async fn set_retention(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let body: BTreeMap<String, serde_json::Value> = form
        .posted()
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    match privacy::save_retention(&state, &page.user, &body).await {
        Ok(()) => Ok(page.redirect("/admin/privacy")),
        Err(ApiError::Validation(v)) => {
            render(
                &state,
                &page,
                BTreeMap::new(),
                error_map(&v, page.lang),
                None,
                None,
            )
            .await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

/// POST /customers/{id}/consents (from the customer page): a consent
/// given on the phone, on paper, by e-mail or in person.
pub async fn record_consent(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let mut e = kehu_core::ValidationErrors::default();
    let contact_id = form.integer("contact_id", &mut e);
    let purpose_version = form.integer("purpose_version", &mut e);
    let recorded = if e.is_empty() {
        let input = kehu_core::intake::ConsentInput {
            contact_id,
            purpose: form.text("purpose"),
            purpose_version,
            channel: form.text("channel"),
            given_on: form.text("given_on"),
        };
        privacy::record_consent(&state, &page.user, id, input).await
    } else {
        // The right first: only then is the customer's page shown again.
        privacy::may_handle_consents(&state, &page.user, id)
            .await
            .and(Err(e.into()))
    };
    match recorded {
        Ok(c) => Ok(page.redirect(&format!("/customers/{}#consents", c.customer_id))),
        // Errors beside the fields, what was typed kept.
        Err(ApiError::Validation(v)) => {
            super::customers::detail_with_errors(&state, &page, id, "consent", &v, &form).await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

/// POST /consents/{id}/withdraw (from the customer page).
pub async fn withdraw(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    match privacy::withdraw_consent(&state, &page.user, id).await {
        Ok(c) => Ok(page.redirect(&format!("/customers/{}#consents", c.customer_id))),
        Err(e) => Ok(page.error_page(&state, e)),
    }
}
