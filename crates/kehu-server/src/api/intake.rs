//! /api/v1/intake-forms (define the public forms), /api/v1/public/forms/{slug}
//! (a website's own page posting a submission: no sign-in, rate-limited),
//! /api/v1/leads (review what came in: accept as a customer or a contact of
//! one, or reject). The engine is `crate::intake`.

use super::{expected_version, ApiJson, QueryPairs};
use crate::auth::CurrentUser;
use crate::client_addr::ClientAddr;
use crate::error::ApiError;
use crate::intake::{self, LeadView};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use kehu_core::intake::FormSpec;
use kehu_core::privacy::FieldRights;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A public form.
#[derive(Debug, Serialize, ToSchema)]
pub struct FormOut {
    pub id: i64,
    /// Its public page is `/f/{slug}`.
    pub slug: String,
    pub title: String,
    /// Field keys: `name`, `contact.name`, `contact.mobile`, …, `cf.KEY`.
    pub fields: Vec<String>,
    /// The purpose text submitters consent to, and its version.
    pub purpose: String,
    pub purpose_version: i64,
    pub owner_id: Option<i64>,
    pub active: bool,
    pub version: i64,
}

impl From<kehu_store::intake::IntakeForm> for FormOut {
    fn from(f: kehu_store::intake::IntakeForm) -> Self {
        FormOut {
            id: f.id,
            slug: f.slug,
            title: f.title,
            fields: f.fields,
            purpose: f.purpose,
            purpose_version: f.purpose_version,
            owner_id: f.owner_id,
            active: f.active,
            version: f.version,
        }
    }
}

/// A form to create or replace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FormWrite {
    pub slug: String,
    pub title: String,
    #[serde(default)]
    pub fields: Vec<String>,
    pub purpose: String,
    /// Who owns the customers its leads become.
    #[serde(default)]
    pub owner_id: Option<i64>,
    #[serde(default = "yes")]
    pub active: bool,
    /// For PUT: the version read (or If-Match).
    #[serde(default)]
    pub version: Option<i64>,
}

fn yes() -> bool {
    true
}

fn editor(user: &CurrentUser) -> Result<(), ApiError> {
    if intake::may_edit_forms(user) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

fn spec_of(body: &FormWrite) -> FormSpec {
    FormSpec {
        slug: body.slug.clone(),
        title: body.title.clone(),
        fields: body.fields.clone(),
        purpose: body.purpose.clone(),
    }
}

#[utoipa::path(get, path = "/api/v1/intake-forms", tag = "intake", responses((status = 200, body = Vec<FormOut>)))]
pub async fn list_forms(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<FormOut>>, ApiError> {
    editor(&user)?;
    Ok(Json(
        state
            .store
            .forms()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Creates a public form (admins): a slug, a title, the fields asked (name,
/// contact name and a way to reach the submitter at least) and the purpose
/// text the submitter consents to.
#[utoipa::path(post, path = "/api/v1/intake-forms", tag = "intake", request_body = FormWrite,
    responses((status = 201, body = FormOut), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn create_form(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<FormWrite>,
) -> Result<(StatusCode, Json<FormOut>), ApiError> {
    editor(&user)?;
    let spec = intake::check_form(&state, &spec_of(&body)).await?;
    let form = state
        .store
        .create_form(
            &spec,
            body.owner_id.or(Some(user.user.id)),
            Some(user.user.id),
        )
        .await?;
    state.audit(
        Some(&user),
        "form.create",
        format!("form:{}", form.slug),
        serde_json::json!({"purpose_version": form.purpose_version}),
    );
    Ok((StatusCode::CREATED, Json(form.into())))
}

/// Replaces a form; a new purpose text gets a new purpose version.
#[utoipa::path(put, path = "/api/v1/intake-forms/{id}", tag = "intake", params(("id" = i64, Path)), request_body = FormWrite,
    responses((status = 200, body = FormOut), (status = 403), (status = 409), (status = 422, content_type = "application/problem+json")))]
pub async fn update_form(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<FormWrite>,
) -> Result<Json<FormOut>, ApiError> {
    editor(&user)?;
    state.store.form(id).await?;
    let expected = expected_version(&headers, body.version)?;
    let spec = intake::check_form(&state, &spec_of(&body)).await?;
    let form = state
        .store
        .update_form(id, expected.version, &spec, body.owner_id, body.active)
        .await?;
    state.audit(
        Some(&user),
        "form.update",
        format!("form:{}", form.slug),
        serde_json::json!({"purpose_version": form.purpose_version, "active": form.active}),
    );
    Ok(Json(form.into()))
}

/// A submission from a website's own page.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmissionIn {
    /// By field key, e.g. {"name": "…", "contact.name": "…", "contact.mobile": "…"}.
    pub values: BTreeMap<String, String>,
    /// The submitter agreed to the form's purpose text.
    #[serde(default)]
    pub consent: bool,
}

/// What the submitter is told.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmissionOut {
    pub received: bool,
}

/// Submits a public form: no sign-in; checked and standardized like every
/// input; consent required; 5 an hour per client address, 500 per form.
#[utoipa::path(post, path = "/api/v1/public/forms/{slug}", tag = "intake", params(("slug" = String, Path)), request_body = SubmissionIn,
    security(()),
    responses((status = 201, body = SubmissionOut), (status = 404), (status = 422, content_type = "application/problem+json"),
              (status = 429, content_type = "application/problem+json")))]
pub async fn submit(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    addr: ClientAddr,
    ApiJson(body): ApiJson<SubmissionIn>,
) -> Result<(StatusCode, Json<SubmissionOut>), ApiError> {
    let form = intake::public_form(&state, &slug).await?;
    intake::submit(&state, &form, &body.values, body.consent, &addr.0).await?;
    Ok((StatusCode::CREATED, Json(SubmissionOut { received: true })))
}

/// A lead as a reviewer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadOut {
    pub id: i64,
    pub form_id: i64,
    pub form_title: Option<String>,
    pub submitted: BTreeMap<String, String>,
    /// The purpose text consented to, its version, when.
    pub purpose: String,
    pub purpose_version: i64,
    pub consented_at: chrono::DateTime<chrono::Utc>,
    /// pending | accepted | rejected
    pub status: String,
    pub customer_id: Option<i64>,
    /// The standardized company name and contact (when still valid).
    pub name: Option<String>,
    pub contact_name: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
    /// Why it can no longer be accepted as it is (e.g. an industry since removed).
    pub problems: Vec<String>,
    /// Customers it looks like: [id, code, name].
    pub suspects: Vec<(i64, String, String)>,
}

/// A lead as `rights` may see it: the contact's name, mobile and e-mail
/// (in the standardized fields and in what was submitted) masked or hidden.
pub fn lead_out(v: &LeadView, lang: kehu_core::Lang, rights: &FieldRights) -> LeadOut {
    let shown = |key: &str, value: &str| rights.in_text(key, value);
    let (name, contact_name, mobile, email, problems) = match &v.submission {
        Ok(s) => (
            Some(s.customer.name.clone()),
            Some(shown("contact.name", &s.contact.name)),
            s.contact
                .mobile
                .as_deref()
                .map(|m| shown("contact.mobile", m)),
            s.contact
                .email
                .as_deref()
                .map(|e| shown("contact.email", e)),
            Vec::new(),
        ),
        Err(ApiError::Validation(errors)) => (
            None,
            None,
            None,
            None,
            errors
                .0
                .iter()
                .map(|f| format!("{}: {}", f.field, f.reason.message(lang)))
                .collect(),
        ),
        Err(e) => (None, None, None, None, vec![e.texts(lang).1]),
    };
    LeadOut {
        id: v.lead.id,
        form_id: v.lead.form_id,
        form_title: v.form.as_ref().map(|f| f.title.clone()),
        submitted: v
            .lead
            .submitted
            .iter()
            .map(|(k, value)| {
                let personal = kehu_core::privacy::CONTACT_FIELDS
                    .iter()
                    .any(|f| f.key == k);
                let value = if personal {
                    shown(k, value)
                } else {
                    value.clone()
                };
                (k.clone(), value)
            })
            .collect(),
        purpose: v.lead.purpose.clone(),
        purpose_version: v.lead.purpose_version,
        consented_at: v.lead.consented_at,
        status: v.lead.status.clone(),
        customer_id: v.lead.customer_id,
        name,
        contact_name,
        mobile,
        email,
        problems,
        suspects: v
            .suspects
            .iter()
            .map(|c| (c.id, c.code.clone(), c.name.clone()))
            .collect(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LeadPage {
    pub total: i64,
    pub leads: Vec<LeadOut>,
}

/// Leads to review (status pending by default), oldest first.
#[utoipa::path(get, path = "/api/v1/leads", tag = "intake",
    params(("status" = Option<String>, Query, description = "pending (default) | accepted | rejected"),
           ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = LeadPage), (status = 403)))]
pub async fn list_leads(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<Json<LeadPage>, ApiError> {
    let status = q.take("status").unwrap_or_else(|| "pending".into());
    let limit = q.take_number("limit", 50)?;
    let offset = q.take_number("offset", 0)?;
    let lang = crate::error::lang_of(&headers);
    let (leads, total) = intake::leads(&state, &user, &status, limit, offset).await?;
    Ok(Json(LeadPage {
        total,
        leads: leads
            .iter()
            .map(|v| lead_out(v, lang, &user.actor.fields))
            .collect(),
    }))
}

/// Accepting a lead: as a new customer, or (with `customer_id`) as a
/// contact of that customer.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptIn {
    #[serde(default)]
    pub customer_id: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/leads/{id}/accept", tag = "intake", params(("id" = i64, Path)), request_body = AcceptIn,
    responses((status = 200, body = LeadOut), (status = 403), (status = 404), (status = 422, content_type = "application/problem+json")))]
pub async fn accept(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<AcceptIn>,
) -> Result<Json<LeadOut>, ApiError> {
    let (lead, _) = intake::accept(&state, &user, id, body.customer_id).await?;
    let v = intake::view(&state, &user, lead).await?;
    Ok(Json(lead_out(
        &v,
        crate::error::lang_of(&headers),
        &user.actor.fields,
    )))
}

#[utoipa::path(post, path = "/api/v1/leads/{id}/reject", tag = "intake", params(("id" = i64, Path)),
    responses((status = 200, body = LeadOut), (status = 403), (status = 404), (status = 422, content_type = "application/problem+json")))]
pub async fn reject(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<LeadOut>, ApiError> {
    let lead = intake::reject(&state, &user, id).await?;
    let v = intake::view(&state, &user, lead).await?;
    Ok(Json(lead_out(
        &v,
        crate::error::lang_of(&headers),
        &user.actor.fields,
    )))
}
