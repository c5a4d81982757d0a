//! Stored classes: a customer's class per scheme as of a date, and the list
//! of class changes (history) in the caller's scope; explanations; overrides.

use super::customers::customer_for;
use super::dto::{
    ChangeOut, ClassChangeOut, ClassExplanationOut, CustomerClassOut, OverrideOut, OverrideResult,
    OverrideWrite, Page,
};
use super::{ApiJson, QueryPairs};
use crate::auth::CurrentUser;
use crate::error::lang_of;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::NaiveDate;
use kehu_core::classify::overrides::OverrideInput;
use kehu_core::query::{parse_list_query, CLASS_CHANGE_FIELDS};
use kehu_core::role::Permission;
use kehu_core::{FieldError, ValidationErrors};

/// The customer's class in every scheme as of `as_of` (default today): the
/// last change effective on or before that date.
#[utoipa::path(get, path = "/api/v1/customers/{id}/classes", tag = "classification",
    params(("id" = i64, Path), ("as_of" = Option<String>, Query, description = "YYYY-MM-DD; today by default")),
    responses((status = 200, body = Vec<CustomerClassOut>), (status = 404, content_type = "application/problem+json"),
        (status = 422, content_type = "application/problem+json")))]
pub async fn customer_classes(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    mut q: QueryPairs,
) -> Result<Json<Vec<CustomerClassOut>>, ApiError> {
    customer_for(&state, &user, id, Permission::CustomerRead).await?;
    let as_of = as_of_param(&state, &mut q)?;
    let classes = state.store.classes_as_of(id, as_of).await?;
    Ok(Json(
        classes.into_iter().map(CustomerClassOut::from).collect(),
    ))
}

/// Class changes of the customers in the caller's scope. Filter like any
/// list: `scheme_key=value_tier&effective_on.gte=2024-01-01&effective_on.lte=2024-03-31`,
/// `to_class=战略型`, `customer_id=7`; `with_total=true` adds the count.
#[utoipa::path(get, path = "/api/v1/class-changes", tag = "classification",
    params(("scheme_key" = Option<String>, Query), ("effective_on.gte" = Option<String>, Query), ("effective_on.lte" = Option<String>, Query),
        ("sort" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query), ("with_total" = Option<bool>, Query)),
    responses((status = 200, body = Page<ClassChangeOut>), (status = 422, content_type = "application/problem+json")))]
pub async fn class_changes(
    State(state): State<AppState>,
    user: CurrentUser,
    mut q: QueryPairs,
) -> Result<Json<Page<ClassChangeOut>>, ApiError> {
    let scope = user.scope_filter(Permission::CustomerRead)?;
    let with_total = q.take_flag("with_total");
    let query = parse_list_query(&q.0, CLASS_CHANGE_FIELDS, &[], "-id")?;
    let page = state
        .store
        .list_class_changes(&query, &scope, with_total)
        .await?;
    Ok(Json(Page::from_store(page, ClassChangeOut::from)))
}

/// Why the customer is in each scheme's class: every indicator's value,
/// level and score, the rule that fired, the nearest change to another
/// class, and the override that wins over the rules if one is active.
/// In the language of Accept-Language.
#[utoipa::path(get, path = "/api/v1/customers/{id}/explanations", tag = "classification",
    params(("id" = i64, Path), ("as_of" = Option<String>, Query, description = "YYYY-MM-DD; today by default")),
    responses((status = 200, body = Vec<ClassExplanationOut>), (status = 404, content_type = "application/problem+json"),
        (status = 422, content_type = "application/problem+json")))]
pub async fn explanations(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<Json<Vec<ClassExplanationOut>>, ApiError> {
    customer_for(&state, &user, id, Permission::CustomerRead).await?;
    let as_of = as_of_param(&state, &mut q)?;
    let today = state.store.today();
    let lang = lang_of(&headers);
    let mut explained = state.classifier.explain(id, as_of, lang).await?;
    for e in &mut explained {
        let rights = &user.actor.fields;
        e.explanation.withhold(|f| rights.sees_field(f), lang);
    }
    let out = explained
        .into_iter()
        .map(|e| {
            Ok(ClassExplanationOut {
                scheme: e.explanation.scheme.clone(),
                scheme_name: e.explanation.scheme_name.clone(),
                version: e.version,
                class: e.class,
                rule_class: e.explanation.class.clone(),
                override_: e.active_override.map(|o| OverrideOut::new(o, today)),
                explanation: serde_json::to_value(&e.explanation)
                    .map_err(|err| ApiError::Internal(format!("explanation to JSON: {err}")))?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(out))
}

/// Sets the customer's class in a scheme by hand, with a mandatory reason
/// and an optional expiry. It wins over the rules until lifted or expired;
/// the change is recorded with cause `override`. Needs the override right
/// on the customer (客服 has none).
#[utoipa::path(put, path = "/api/v1/customers/{id}/classes/{scheme}/override", tag = "classification",
    params(("id" = i64, Path), ("scheme" = String, Path)), request_body = OverrideWrite,
    responses((status = 200, body = OverrideResult), (status = 403, content_type = "application/problem+json"),
        (status = 404, content_type = "application/problem+json"), (status = 422, content_type = "application/problem+json")))]
pub async fn set_override(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, scheme)): Path<(i64, String)>,
    ApiJson(body): ApiJson<OverrideWrite>,
) -> Result<Json<OverrideResult>, ApiError> {
    let changes = apply_override(&state, &user, id, &scheme, body).await?;
    override_result(&state, id, &scheme, &changes).await
}

/// Checks and sets an override (shared with the UI).
pub async fn apply_override(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    scheme: &str,
    body: OverrideWrite,
) -> Result<Vec<kehu_store::classes::ClassChange>, ApiError> {
    customer_for(state, user, id, Permission::ClassificationOverride).await?;
    let set = state.classifier.published().await?;
    let s = set
        .index(scheme)
        .map(|i| &set.schemes[i])
        .ok_or(ApiError::NotFound)?;
    let data = OverrideInput::from(body).validate(&s.class_keys(), state.store.today())?;
    let detail = serde_json::json!({"scheme": scheme, "class": data.class, "reason": data.reason, "expires_on": data.expires_on});
    let changes = state
        .classifier
        .set_override(id, scheme, data, user.user.id)
        .await?;
    state.audit(Some(user), "override.set", format!("customer:{id}"), detail);
    Ok(changes)
}

/// Lifts the active override: the rules decide again at once (cause
/// `override_lifted`).
#[utoipa::path(delete, path = "/api/v1/customers/{id}/classes/{scheme}/override", tag = "classification",
    params(("id" = i64, Path), ("scheme" = String, Path)),
    responses((status = 200, body = OverrideResult), (status = 403, content_type = "application/problem+json"),
        (status = 404, content_type = "application/problem+json")))]
pub async fn lift_override(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, scheme)): Path<(i64, String)>,
) -> Result<Json<OverrideResult>, ApiError> {
    let changes = remove_override(&state, &user, id, &scheme).await?;
    override_result(&state, id, &scheme, &changes).await
}

/// Lifts an override (shared with the UI).
pub async fn remove_override(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    scheme: &str,
) -> Result<Vec<kehu_store::classes::ClassChange>, ApiError> {
    customer_for(state, user, id, Permission::ClassificationOverride).await?;
    let changes = state
        .classifier
        .lift_override(id, scheme, user.user.id)
        .await?;
    state.audit(
        Some(user),
        "override.lift",
        format!("customer:{id}"),
        serde_json::json!({"scheme": scheme}),
    );
    Ok(changes)
}

async fn override_result(
    state: &AppState,
    id: i64,
    scheme: &str,
    changes: &[kehu_store::classes::ClassChange],
) -> Result<Json<OverrideResult>, ApiError> {
    let today = state.store.today();
    let active = state
        .store
        .overrides_of(id)
        .await?
        .into_iter()
        .find(|o| o.scheme_key == scheme && o.holds_on(today));
    Ok(Json(OverrideResult {
        active: active.map(|o| OverrideOut::new(o, today)),
        changes: changes.iter().map(ChangeOut::from).collect(),
    }))
}

/// Every override of the customer, newest first (lifted and expired too).
#[utoipa::path(get, path = "/api/v1/customers/{id}/overrides", tag = "classification",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<OverrideOut>), (status = 404, content_type = "application/problem+json")))]
pub async fn overrides(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Vec<OverrideOut>>, ApiError> {
    customer_for(&state, &user, id, Permission::CustomerRead).await?;
    let today = state.store.today();
    Ok(Json(
        state
            .store
            .overrides_of(id)
            .await?
            .into_iter()
            .map(|o| OverrideOut::new(o, today))
            .collect(),
    ))
}

/// `as_of=YYYY-MM-DD`, today when absent.
pub(crate) fn as_of_param(state: &AppState, q: &mut QueryPairs) -> Result<NaiveDate, ApiError> {
    match q.take("as_of") {
        Some(raw) => Ok(kehu_core::date::parse_date(&raw)
            .map_err(|reason| ValidationErrors(vec![FieldError::new("as_of", reason)]))?),
        None => Ok(state.store.today()),
    }
}
