//! Web-form intake in the UI: the public form page (no sign-in; consent
//! checkbox with the purpose text; a honeypot field), the admin's form
//! list and new-form page, and the lead review page. Everything goes
//! through `crate::intake`, as the API does.

use super::forms::FormData;
use super::Page;
use crate::client_addr::ClientAddr;
use crate::error::{lang_of, ApiError};
use crate::intake;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use kehu_core::intake::{FormSpec, FORM_FIELDS};
use kehu_core::Lang;
use kehu_store::intake::IntakeForm;
use minijinja::{context, Value};
use std::collections::BTreeMap;

fn label_of(key: &str, lang: Lang, custom: &[(String, String)]) -> String {
    match FORM_FIELDS.iter().find(|f| f.key == key) {
        Some(f) if lang == Lang::En => f.label_en.to_string(),
        Some(f) => f.label_zh.to_string(),
        None => {
            let k = key.trim_start_matches(kehu_core::intake::CUSTOM_PREFIX);
            custom
                .iter()
                .find(|(ck, _)| ck == k)
                .map(|(_, l)| l.clone())
                .unwrap_or_else(|| k.to_string())
        }
    }
}

async fn custom_labels(state: &AppState) -> Result<Vec<(String, String)>, ApiError> {
    Ok(state
        .store
        .custom_field_defs()
        .await?
        .into_iter()
        .map(|d| (d.key, d.label))
        .collect())
}

/// The public page: the form, or its outcome.
#[allow(clippy::too_many_arguments)]
async fn public_page(
    state: &AppState,
    form: &IntakeForm,
    lang: Lang,
    values: &BTreeMap<String, String>,
    errors: Vec<String>,
    done: bool,
    too_many: bool,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let custom = custom_labels(state).await?;
    let fields: Vec<Value> = form
        .fields
        .iter()
        .map(|k| {
            context! {
                key => k, label => label_of(k, lang, &custom),
                required => matches!(k.as_str(), "name" | "contact.name"),
                value => values.get(k).cloned().unwrap_or_default(),
            }
        })
        .collect();
    let html = state.ui.render(
        "intake/public.html",
        context! {
            lang => lang.code(), fields, errors, done, too_many,
            form => context! { slug => form.slug.clone(), title => form.title.clone(), purpose => form.purpose.clone() },
        },
    )?;
    Ok((status, Html(html)).into_response())
}

/// GET /f/{slug}
pub async fn public_form(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let form = intake::public_form(&state, &slug).await?;
    public_page(
        &state,
        &form,
        lang_of(&headers),
        &BTreeMap::new(),
        Vec::new(),
        false,
        false,
        StatusCode::OK,
    )
    .await
}

/// POST /f/{slug}: stored as a lead, or the form again with the reasons.
pub async fn submit(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    addr: ClientAddr,
    form_data: FormData,
) -> Result<Response, ApiError> {
    let form = intake::public_form(&state, &slug).await?;
    let lang = lang_of(&headers);
    let values: BTreeMap<String, String> = form_data
        .0
        .iter()
        .filter(|(k, _)| form.fields.contains(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Filled in by robots only (the field is hidden from people): thanked, not stored.
    if form_data
        .get("website")
        .is_some_and(|v| !v.trim().is_empty())
    {
        return public_page(
            &state,
            &form,
            lang,
            &values,
            Vec::new(),
            true,
            false,
            StatusCode::OK,
        )
        .await;
    }
    let consent = form_data.get("consent") == Some("yes");
    match intake::submit(&state, &form, &values, consent, &addr.0).await {
        Ok(_) => {
            public_page(
                &state,
                &form,
                lang,
                &values,
                Vec::new(),
                true,
                false,
                StatusCode::OK,
            )
            .await
        }
        Err(ApiError::TooManyRequests { .. }) => {
            public_page(
                &state,
                &form,
                lang,
                &values,
                Vec::new(),
                false,
                true,
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await
        }
        Err(ApiError::Validation(e)) => {
            let custom = custom_labels(&state).await?;
            let errors =
                e.0.iter()
                    .map(|f| {
                        let name = if f.field == "consent" {
                            if lang == Lang::En {
                                "Consent".to_string()
                            } else {
                                "同意".to_string()
                            }
                        } else {
                            label_of(&f.field, lang, &custom)
                        };
                        format!("{name}: {}", f.reason.message(lang))
                    })
                    .collect();
            public_page(
                &state,
                &form,
                lang,
                &values,
                errors,
                false,
                false,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e),
    }
}

/// GET /admin/forms
pub async fn forms(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    if !intake::may_edit_forms(&page.user) {
        return Err(ApiError::Forbidden);
    }
    render_forms(&state, &page, &FormSpec::default(), Vec::new()).await
}

async fn render_forms(
    state: &AppState,
    page: &Page,
    spec: &FormSpec,
    errors: Vec<String>,
) -> Result<Response, ApiError> {
    let custom = custom_labels(state).await?;
    let forms = state.store.forms().await?;
    let choices: Vec<Value> = FORM_FIELDS
        .iter()
        .map(|f| (f.key.to_string(), f.always))
        .chain(
            custom
                .iter()
                .map(|(k, _)| (format!("{}{k}", kehu_core::intake::CUSTOM_PREFIX), false)),
        )
        .map(|(key, always)| {
            context! {
                label => label_of(&key, page.lang, &custom), checked => spec.fields.contains(&key),
                key, always,
            }
        })
        .collect();
    Ok(page.render(
        state,
        "intake/forms.html",
        "forms",
        context! {
            forms => Value::from_serialize(&forms), choices, errors,
            form => context! { slug => spec.slug.clone(), title => spec.title.clone(), purpose => spec.purpose.clone() },
        },
    ))
}

/// POST /admin/forms
pub async fn create_form(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    if !intake::may_edit_forms(&page.user) {
        return Err(ApiError::Forbidden);
    }
    let spec = FormSpec {
        slug: form.get("slug").unwrap_or("").to_string(),
        title: form.get("title").unwrap_or("").to_string(),
        fields: form
            .0
            .iter()
            .filter(|(k, _)| k == "field")
            .map(|(_, v)| v.clone())
            .collect(),
        purpose: form.get("purpose").unwrap_or("").to_string(),
    };
    let created = async {
        let checked = intake::check_form(&state, &spec).await?;
        Ok::<_, ApiError>(
            state
                .store
                .create_form(&checked, Some(page.user.user.id), Some(page.user.user.id))
                .await
                .inspect(|f| {
                    state.audit(
                        Some(&page.user),
                        "form.create",
                        format!("form:{}", f.slug),
                        serde_json::json!({"purpose_version": f.purpose_version}),
                    )
                })?,
        )
    }
    .await;
    match created {
        Ok(_) => Ok(page.redirect("/admin/forms")),
        Err(ApiError::Validation(e)) => {
            let errors =
                e.0.iter()
                    .map(|f| format!("{}: {}", f.field, f.reason.message(page.lang)))
                    .collect();
            render_forms(&state, &page, &spec, errors).await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

/// GET /leads: the pending leads.
pub async fn leads(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    let (leads, total) = intake::leads(&state, &page.user, "pending", 200, 0).await?;
    let leads: Vec<_> = leads
        .iter()
        .map(|v| crate::api::intake::lead_out(v, page.lang, &page.user.actor.fields))
        .collect();
    Ok(page.render(
        &state,
        "intake/leads.html",
        "leads",
        context! { leads => Value::from_serialize(&leads), total },
    ))
}

/// POST /leads/{id}/accept (`customer_id`: join that customer)
pub async fn accept(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let existing = form.get("customer_id").and_then(|v| v.parse().ok());
    let done = intake::accept(&state, &page.user, id, existing).await;
    Ok(page.after(&state, done, |(_, c)| format!("/customers/{}", c.id)))
}

/// POST /leads/{id}/reject
pub async fn reject(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let done = intake::reject(&state, &page.user, id).await;
    Ok(page.after(&state, done, |_| "/leads".into()))
}
