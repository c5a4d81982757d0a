//! Data-subject requests (PIPL Art. 44–47): find a person's contact
//! records (by POST: no personal data in URLs), export everything kept
//! about them, erase them; consents listed and withdrawn; retention periods
//! per kind of data. Every step is audited, never with the values.

use super::dto::ContactOut;
use super::ApiJson;
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use kehu_core::ident::{Email, IdNumber, Mobile};
use kehu_core::intake::ConsentInput;
use kehu_core::role::{Ownership, Permission};
use kehu_core::{Reason, ValidationErrors};
use kehu_store::privacy::{PersonQuery, RETENTION_KINDS};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// What the erased contact is called afterwards.
pub const ERASED_NAME: &str = "（已删除）";

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonSearch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub id_number: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PersonFound {
    pub contact_id: i64,
    pub customer_id: i64,
    pub customer_code: String,
    pub customer_name: String,
    /// Masked for the reader, as everywhere.
    pub name: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
}

fn needs(user: &CurrentUser) -> Result<(), ApiError> {
    user.require(Permission::PersonalData).map(|_| ())
}

/// The contact `id` if the caller may handle requests about it (404 otherwise).
pub async fn contact_for(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
) -> Result<kehu_store::model::Contact, ApiError> {
    needs(user)?;
    let c = state.store.contact(id).await?;
    let customer = state.store.customer(c.customer_id).await?;
    if !user.actor.may(
        Permission::PersonalData,
        Ownership {
            owner_id: customer.owner_id,
            team: customer.team.as_deref(),
        },
    ) {
        return Err(ApiError::NotFound);
    }
    Ok(c)
}

fn standard(q: &PersonSearch) -> Result<PersonQuery, ApiError> {
    let mut e = ValidationErrors::default();
    let blank = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let out = PersonQuery {
        name: blank(&q.name).map(|n| kehu_core::text::clean(&n)),
        mobile: blank(&q.mobile).and_then(|m| {
            e.check("mobile", Mobile::parse(&m))
                .map(|m| m.as_str().to_string())
        }),
        email: blank(&q.email).and_then(|m| {
            e.check("email", Email::parse(&m))
                .map(|m| m.as_str().to_string())
        }),
        id_number: blank(&q.id_number).and_then(|m| {
            e.check("id_number", IdNumber::parse(&m))
                .map(|m| m.as_str().to_string())
        }),
    };
    if e.is_empty()
        && out.name.is_none()
        && out.mobile.is_none()
        && out.email.is_none()
        && out.id_number.is_none()
    {
        e.push("name", Reason::Required);
    }
    e.into_result()?;
    Ok(out)
}

/// Finds a person's contact records by name, mobile, e-mail or ID number
/// (exact, after the usual standardization).
#[utoipa::path(post, path = "/api/v1/privacy/people", tag = "privacy", request_body = PersonSearch,
    responses((status = 200, body = Vec<PersonFound>), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn search(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<PersonSearch>,
) -> Result<Json<Vec<PersonFound>>, ApiError> {
    Ok(Json(find(&state, &user, &body).await?))
}

/// The search (API and page), audited with what it searched by and found.
pub async fn find(
    state: &AppState,
    user: &CurrentUser,
    body: &PersonSearch,
) -> Result<Vec<PersonFound>, ApiError> {
    needs(user)?;
    let q = standard(body)?;
    let found = state.store.find_people(&q).await?;
    let mut out = Vec::new();
    for m in found {
        if !user.actor.may(
            Permission::PersonalData,
            Ownership {
                owner_id: m.owner_id,
                team: m.team.as_deref(),
            },
        ) {
            continue;
        }
        let mut c = ContactOut::from(m.contact);
        crate::privacy::Personal::protect(&mut c, &user.actor.fields, false);
        out.push(PersonFound {
            contact_id: c.id,
            customer_id: c.customer_id,
            customer_code: m.customer_code,
            customer_name: m.customer_name,
            name: c.name,
            mobile: c.mobile,
            email: c.email,
        });
    }
    let by: Vec<&str> = [
        ("name", q.name.is_some()),
        ("mobile", q.mobile.is_some()),
        ("email", q.email.is_some()),
        ("id_number", q.id_number.is_some()),
    ]
    .into_iter()
    .filter(|(_, on)| *on)
    .map(|(k, _)| k)
    .collect();
    state.audit(
        Some(user),
        "privacy.search",
        "contacts".into(),
        json!({"by": by, "found": out.iter().map(|p| p.contact_id).collect::<Vec<_>>()}),
    );
    Ok(out)
}

/// Everything kept about the person behind contact `id`, in clear, as a
/// JSON file (the person's copy, PIPL Art. 45): the contact, the consents
/// of its customer, the web-form submissions that carry their details, the
/// audit trail of the record (masked as kept).
#[utoipa::path(get, path = "/api/v1/contacts/{id}/personal-data", tag = "privacy", params(("id" = i64, Path)),
    responses((status = 200, content_type = "application/json"), (status = 403), (status = 404)))]
pub async fn export(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let c = contact_for(&state, &user, id).await?;
    let customer = state.store.customer(c.customer_id).await?;
    let consents = state.store.consents_of(c.customer_id).await?;
    let leads = state.store.leads_holding(&c).await?;
    state.auditor.flush().await;
    let trail = state
        .store
        .audit_entries(
            &kehu_store::audit::AuditFilter {
                target: Some(format!("contact:{id}")),
                ..Default::default()
            },
            1000,
            0,
        )
        .await?
        .0;
    let doc = json!({
        "exported_at": Utc::now(),
        "contact": ContactOut::from(c.clone()),
        "customer": {"id": customer.id, "code": customer.code, "name": customer.name},
        "consents": consents.iter().map(|k| json!({
            "purpose": k.purpose, "purpose_version": k.purpose_version, "channel": k.channel,
            "given_at": k.given_at, "withdrawn_at": k.withdrawn_at, "contact_id": k.contact_id,
        })).collect::<Vec<_>>(),
        "web_form_submissions": leads.iter().map(|l| json!({
            "submitted": l.submitted, "purpose": l.purpose, "consented_at": l.consented_at, "status": l.status,
        })).collect::<Vec<_>>(),
        "record_history": trail.iter().map(|e| json!({
            "at": e.record.at, "action": e.record.action, "detail": e.record.detail,
        })).collect::<Vec<_>>(),
    });
    state.audit(
        Some(&user),
        "contact.personal_data_export",
        format!("contact:{id}"),
        json!({"consents": consents.len(), "submissions": leads.len()}),
    );
    let body = serde_json::to_vec_pretty(&doc).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/json; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"personal-data-contact-{id}.json\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response())
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseRequest {
    /// Why (e.g. the person's request and its date); kept in the audit log.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Erases the person behind contact `id` (PIPL Art. 47): their personal
/// fields on the contact and wherever else they are kept in clear; the
/// company, its orders and statistics stay. Cannot be undone.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/erase", tag = "privacy", params(("id" = i64, Path)), request_body = EraseRequest,
    responses((status = 200, body = Object), (status = 403), (status = 404), (status = 422, content_type = "application/problem+json")))]
pub async fn erase(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<EraseRequest>,
) -> Result<Json<Value>, ApiError> {
    let reason = erase_reason(body.reason.as_deref())?;
    contact_for(&state, &user, id).await?;
    let erased = erase_person(&state, &user, id, &reason).await?;
    Ok(Json(erased))
}

/// The reason an erasure must give.
pub fn erase_reason(raw: Option<&str>) -> Result<String, ApiError> {
    kehu_core::text::parse_text(raw.unwrap_or(""), 200).map_err(|r| ApiError::field("reason", r))
}

/// The erasure itself (API and page), audited with its reason and counts.
pub async fn erase_person(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    reason: &str,
) -> Result<Value, ApiError> {
    let erased = state.store.erase_contact(id, ERASED_NAME).await?;
    let summary = serde_json::to_value(&erased).unwrap_or_default();
    state.audit(
        Some(user),
        "contact.erase",
        format!("contact:{id}"),
        json!({"reason": reason, "erased": summary}),
    );
    Ok(summary)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentOut {
    pub id: i64,
    pub customer_id: i64,
    pub contact_id: Option<i64>,
    pub purpose: String,
    pub purpose_version: i64,
    pub channel: String,
    pub given_at: DateTime<Utc>,
    pub withdrawn_at: Option<DateTime<Utc>>,
}

impl From<kehu_store::intake::Consent> for ConsentOut {
    fn from(c: kehu_store::intake::Consent) -> Self {
        ConsentOut {
            id: c.id,
            customer_id: c.customer_id,
            contact_id: c.contact_id,
            purpose: c.purpose,
            purpose_version: c.purpose_version,
            channel: c.channel,
            given_at: c.given_at,
            withdrawn_at: c.withdrawn_at,
        }
    }
}

/// The consents a customer's people gave, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{id}/consents", tag = "privacy", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<ConsentOut>), (status = 404)))]
pub async fn consents(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Vec<ConsentOut>>, ApiError> {
    crate::api::customers::customer_for(&state, &user, id, Permission::CustomerRead).await?;
    Ok(Json(
        state
            .store
            .consents_of(id)
            .await?
            .into_iter()
            .map(ConsentOut::from)
            .collect(),
    ))
}

/// A consent given outside a web form (a web form records its own).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentWrite {
    /// One of the customer's contacts; none: the customer as a whole.
    #[serde(default)]
    pub contact_id: Option<i64>,
    /// The purpose text the person agreed to (处理目的).
    #[serde(default)]
    pub purpose: Option<String>,
    /// Which version of that text (default 1).
    #[serde(default)]
    pub purpose_version: Option<i64>,
    /// `phone`, `paper`, `email`, `in_person` or `online`.
    #[serde(default)]
    pub channel: Option<String>,
    /// The day it was given (default today; not in the future).
    #[serde(default)]
    pub given_on: Option<String>,
}

impl From<ConsentWrite> for ConsentInput {
    fn from(w: ConsentWrite) -> Self {
        ConsentInput {
            contact_id: w.contact_id,
            purpose: w.purpose,
            purpose_version: w.purpose_version,
            channel: w.channel,
            given_on: w.given_on,
        }
    }
}

/// Records a consent given on the phone, on paper, by e-mail or in person
/// (by whoever handles data-subject requests or may update the customer).
#[utoipa::path(post, path = "/api/v1/customers/{id}/consents", tag = "privacy", params(("id" = i64, Path)), request_body = ConsentWrite,
    responses((status = 201, body = ConsentOut), (status = 403), (status = 404), (status = 422, content_type = "application/problem+json")))]
pub async fn record(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<ConsentWrite>,
) -> Result<Response, ApiError> {
    let c = record_consent(&state, &user, id, body.into()).await?;
    Ok((axum::http::StatusCode::CREATED, Json(c)).into_response())
}

/// Recording (API and customer page), audited without the purpose's words.
pub async fn record_consent(
    state: &AppState,
    user: &CurrentUser,
    customer_id: i64,
    input: ConsentInput,
) -> Result<ConsentOut, ApiError> {
    may_handle_consents(state, user, customer_id).await?;
    let today = state.store.today();
    let d = input.validate(today)?;
    // A day before today is kept as the start of that day in China.
    let given_at = if d.given_on == today {
        Utc::now()
    } else {
        crate::tasks::to_utc(d.given_on.and_time(chrono::NaiveTime::MIN))
    };
    let c = state
        .store
        .record_consent(customer_id, &d, given_at)
        .await?;
    state.audit(
        Some(user),
        "consent.record",
        format!("customer:{customer_id}"),
        json!({"consent": c.id, "contact": c.contact_id, "channel": c.channel, "purpose_version": c.purpose_version}),
    );
    Ok(ConsentOut::from(c))
}

/// Consents of a customer are handled by whoever handles data-subject
/// requests or may update the customer; 404 for a customer one cannot see.
pub async fn may_handle_consents(
    state: &AppState,
    user: &CurrentUser,
    customer_id: i64,
) -> Result<(), ApiError> {
    let customer = state.store.customer(customer_id).await?;
    let o = Ownership {
        owner_id: customer.owner_id,
        team: customer.team.as_deref(),
    };
    if !user.actor.may(Permission::CustomerRead, o) && !user.actor.may(Permission::PersonalData, o)
    {
        return Err(ApiError::NotFound);
    }
    if !user.actor.may(Permission::PersonalData, o)
        && !user.actor.may(Permission::CustomerUpdate, o)
    {
        return Err(ApiError::Forbidden);
    }
    Ok(())
}

/// Withdraws a consent (by the person's request): from now on the
/// customer is left out of marketing when none of its consents stands.
#[utoipa::path(post, path = "/api/v1/consents/{id}/withdraw", tag = "privacy", params(("id" = i64, Path)),
    responses((status = 200, body = ConsentOut), (status = 403), (status = 404)))]
pub async fn withdraw(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<ConsentOut>, ApiError> {
    Ok(Json(withdraw_consent(&state, &user, id).await?))
}

/// Withdrawing: by whoever handles data-subject requests or may update the customer.
pub async fn withdraw_consent(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
) -> Result<ConsentOut, ApiError> {
    let consent = state.store.consent(id).await?;
    may_handle_consents(state, user, consent.customer_id).await?;
    let c = state.store.withdraw_consent(id, Utc::now()).await?;
    state.audit(
        Some(user),
        "consent.withdraw",
        format!("customer:{}", c.customer_id),
        json!({"consent": id, "purpose_version": c.purpose_version}),
    );
    Ok(ConsentOut::from(c))
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RetentionOut {
    pub kind: String,
    pub label: String,
    pub days: i64,
}

/// How long each kind of data is kept before the daily `retention` job deletes it.
#[utoipa::path(get, path = "/api/v1/privacy/retention", tag = "privacy",
    responses((status = 200, body = Vec<RetentionOut>), (status = 403)))]
pub async fn retention(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: axum::http::HeaderMap,
) -> Result<Json<Vec<RetentionOut>>, ApiError> {
    needs(&user)?;
    Ok(Json(
        retention_list(&state, crate::error::lang_of(&headers)).await?,
    ))
}

pub async fn retention_list(
    state: &AppState,
    lang: kehu_core::Lang,
) -> Result<Vec<RetentionOut>, ApiError> {
    Ok(state
        .store
        .retention()
        .await?
        .into_iter()
        .map(|(kind, days)| {
            let (zh, en) = RETENTION_KINDS
                .iter()
                .find(|k| k.0 == kind)
                .map_or(("", ""), |k| (k.2, k.3));
            RetentionOut {
                label: if lang == kehu_core::Lang::En { en } else { zh }.to_string(),
                kind,
                days,
            }
        })
        .collect())
}

/// Sets retention periods: `{"rejected_leads": 90, …}` in days (1–3650).
#[utoipa::path(put, path = "/api/v1/privacy/retention", tag = "privacy", request_body = Object,
    responses((status = 200, body = Vec<RetentionOut>), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn set_retention(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: axum::http::HeaderMap,
    ApiJson(body): ApiJson<BTreeMap<String, Value>>,
) -> Result<Json<Vec<RetentionOut>>, ApiError> {
    save_retention(&state, &user, &body).await?;
    Ok(Json(
        retention_list(&state, crate::error::lang_of(&headers)).await?,
    ))
}

/// Checks and stores retention periods (all or nothing), audited.
pub async fn save_retention(
    state: &AppState,
    user: &CurrentUser,
    body: &BTreeMap<String, Value>,
) -> Result<(), ApiError> {
    needs(user)?;
    let mut e = ValidationErrors::default();
    let mut days = Vec::new();
    for (k, v) in body {
        if !RETENTION_KINDS.iter().any(|r| r.0 == k) {
            e.push(k, Reason::UnknownField);
            continue;
        }
        let n = match v {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if (1..=3650).contains(&n) => days.push((k.clone(), n)),
            Some(_) => e.push(
                k,
                Reason::OutOfRange {
                    min: Some("1".into()),
                    max: Some("3650".into()),
                },
            ),
            None => e.push(k, Reason::IntegerFormat),
        }
    }
    e.into_result()?;
    let before = state.store.retention().await?;
    state.store.set_retention(&days).await?;
    state.audit(
        Some(user),
        "retention.set",
        "retention".into(),
        json!({"before": before, "after": days}),
    );
    Ok(())
}
