//! /api/v1/customers

use super::dto::{CustomerOut, CustomerWrite, Page};
use super::{
    conflict_status, expected_version, merge_patch, split_version, with_etag, ApiJson, QueryPairs,
};
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kehu_core::customer::{CustomerData, CustomerInput, CustomerRules};
use kehu_core::query::{parse_customer_query, CUSTOMER_FIELDS};
use kehu_core::role::{Ownership, Permission, Scope};
use kehu_core::Reason;
use kehu_store::model::Customer;
use kehu_store::Owner;

/// Loads a customer the caller may reach with `p`; 404 otherwise, so that
/// ids of other teams' customers cannot be told from missing ones.
pub async fn customer_for(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    p: Permission,
) -> Result<Customer, ApiError> {
    let c = state.store.customer(id).await?;
    let reach = |p| {
        user.actor.may(
            p,
            Ownership {
                owner_id: c.owner_id,
                team: c.team.as_deref(),
            },
        )
    };
    if reach(p) {
        return Ok(c);
    }
    // Answered as missing when the caller may not even read it; recorded
    // either way (a probe of another team's ids shows in the audit log).
    let seen = reach(Permission::CustomerRead);
    state.audit(
        Some(user),
        crate::audit::ACCESS_DENIED,
        format!("customer:{id}"),
        serde_json::json!({"permission": p.key(), "answered": if seen { "forbidden" } else { "not_found" }}),
    );
    Err(if seen {
        ApiError::Forbidden
    } else {
        ApiError::NotFound
    })
}

/// Validates a customer input against the configured industries and custom fields.
pub async fn validate_customer(
    state: &AppState,
    input: CustomerInput,
) -> Result<CustomerData, ApiError> {
    check_customer(state, input, false).await
}

/// As [`validate_customer`]; with `keep_missing`, a missing required field
/// other than the name marks the record 待跟进 instead of refusing it.
pub async fn check_customer(
    state: &AppState,
    input: CustomerInput,
    keep_missing: bool,
) -> Result<CustomerData, ApiError> {
    let industries = state.store.industries().await?;
    let defs = state.store.custom_field_defs().await?;
    let rules = CustomerRules {
        industries: &industries,
        custom_fields: &defs,
        today: state.store.today(),
    };
    Ok(if keep_missing {
        input.validate_keeping_missing(&rules)?
    } else {
        input.validate(&rules)?
    })
}

/// Who will own the customer: the requested owner if the caller's scope
/// reaches them, else the caller. The team follows the owner.
pub async fn resolve_owner(
    state: &AppState,
    user: &CurrentUser,
    requested: Option<i64>,
    p: Permission,
) -> Result<Owner, ApiError> {
    let scope = user.require(p)?;
    let owner_id = requested.unwrap_or(user.user.id);
    if owner_id == user.user.id {
        return Ok(Owner {
            owner_id: Some(owner_id),
            team: user.user.team.clone(),
        });
    }
    let owner = state.store.user(owner_id).await.map_err(|_| {
        ApiError::field(
            "owner_id",
            Reason::Other {
                zh: "负责人不存在".into(),
                en: "no such user".into(),
            },
        )
    })?;
    let allowed = match scope {
        Scope::All => true,
        Scope::Team => owner.team.is_some() && owner.team == user.user.team,
        Scope::Own => false,
    };
    if !allowed {
        return Err(ApiError::field(
            "owner_id",
            Reason::Other {
                zh: "只能指派给您权限范围内的同事".into(),
                en: "you may only assign to users within your scope".into(),
            },
        ));
    }
    Ok(Owner {
        owner_id: Some(owner.id),
        team: owner.team,
    })
}

/// List customers in the caller's scope. Filter with `FIELD=value` or
/// `FIELD.OP=value` (OP: eq ne gt gte lt lte contains in null), custom fields
/// as `cf.KEY`, the current class in a scheme as `class.KEY` (`class.value_tier=战略型`);
/// `q` searches name, code, aliases and USCC; `sort=-field`;
/// `limit` (≤ 500) and `cursor` page; `with_total=true` adds the count.
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers",
    params(("q" = Option<String>, Query, description = "free-text search"), ("sort" = Option<String>, Query, description = "field, `-` prefix for descending"),
           ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query), ("with_total" = Option<bool>, Query)),
    responses((status = 200, body = Page<CustomerOut>), (status = 422, description = "bad filter", content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    mut q: QueryPairs,
) -> Result<Json<Page<CustomerOut>>, ApiError> {
    let scope = user.scope_filter(Permission::CustomerRead)?;
    let with_total = q.take_flag("with_total");
    let defs = state.store.custom_field_defs().await?;
    // A personal custom field is stored encrypted (nothing to compare in
    // SQL), and filtering on it would test guesses at it.
    for d in defs.iter().filter(|d| d.personal().is_some()) {
        let key = kehu_core::privacy::custom_key(&d.key);
        if q.mentions(&key) {
            return Err(ApiError::Refused {
                zh: format!("不能按 {key} 筛选或排序：它是加密存储的个人信息"),
                en: format!(
                    "cannot filter or sort on {key}: it is personal information stored encrypted"
                ),
            });
        }
    }
    // Scheme keys only when a class is filtered or sorted on (no query otherwise).
    let keys: Vec<String> = match q.mentions("class.") {
        true => state
            .classifier
            .published()
            .await?
            .keys()
            .into_iter()
            .collect(),
        false => Vec::new(),
    };
    crate::privacy::check_customer_query(&user, &defs, &q.0)?;
    let query = parse_customer_query(&q.0, CUSTOMER_FIELDS, &defs, &keys, "-id")?;
    let rights = &user.actor.fields;
    let search = crate::privacy::customer_search_columns(rights);
    let page = state
        .store
        .list_customers_searching(&query, &scope, with_total, search)
        .await?;
    let shield = crate::privacy::CustomerShield::new(rights, &defs);
    Ok(Json(Page::from_store(page, |c| shield.out(c, false).0)))
}

#[utoipa::path(post, path = "/api/v1/customers", tag = "customers", request_body = CustomerWrite,
    responses((status = 201, body = CustomerOut), (status = 422, description = "invalid field", content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CustomerWrite>,
) -> Result<Response, ApiError> {
    user.require(Permission::CustomerCreate)?;
    let owner = resolve_owner(&state, &user, body.owner_id, Permission::CustomerCreate).await?;
    let data = validate_customer(&state, body.into()).await?;
    let defs = state.store.custom_field_defs().await?;
    crate::privacy::check_customer_write(&user.actor.fields, &defs, None, &data)?;
    let c = state
        .store
        .insert_customer(&data, &owner, Some(user.user.id), None)
        .await?;
    crate::audit::customer::created(&state, &user, &c);
    state.after_data_change(c.id, user.user.id).await;
    let version = c.version;
    let (out, _) = crate::privacy::CustomerShield::new(&user.actor.fields, &defs).out(c, false);
    let mut r = with_etag(version, out);
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = i64, Path)),
    responses((status = 200, body = CustomerOut, headers(("ETag" = String))), (status = 404, content_type = "application/problem+json")))]
pub async fn read(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    mut q: QueryPairs,
) -> Result<Response, ApiError> {
    let c = customer_for(&state, &user, id, Permission::CustomerRead).await?;
    let reveal = q.take_flag("reveal");
    if reveal {
        crate::privacy::refuse_cross_site_reveal(&user)?;
    }
    let defs = state.store.custom_field_defs().await?;
    let (out, revealed) =
        crate::privacy::CustomerShield::new(&user.actor.fields, &defs).out(c, reveal);
    if !revealed.is_empty() {
        state.audit(
            Some(&user),
            "customer.reveal",
            format!("customer:{id}"),
            serde_json::json!({ "fields": revealed }),
        );
    }
    Ok(with_etag(out.version, out))
}

/// Merge-patch: send only the fields to change (null clears). Needs
/// `If-Match: "v{version}"` (412 on mismatch) or `version` in the body (409).
#[utoipa::path(patch, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = i64, Path)), request_body = CustomerWrite,
    responses((status = 200, body = CustomerOut), (status = 409, description = "version conflict"), (status = 412, description = "If-Match mismatch"),
              (status = 428, description = "no version given"), (status = 422, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    ApiJson(mut patch): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let current = customer_for(&state, &user, id, Permission::CustomerUpdate).await?;
    let expected = expected_version(&headers, split_version(&mut patch)?)?;
    let merged: CustomerWrite = merge_patch(&CustomerWrite::from(&current), patch)?;
    let owner = if merged.owner_id == current.owner_id {
        Owner {
            owner_id: current.owner_id,
            team: current.team.clone(),
        }
    } else {
        resolve_owner(&state, &user, merged.owner_id, Permission::CustomerUpdate).await?
    };
    let data = validate_customer(&state, merged.into()).await?;
    let defs = state.store.custom_field_defs().await?;
    let rights = &user.actor.fields;
    crate::privacy::check_customer_write(rights, &defs, Some(&current.data()), &data)?;
    let c = state
        .store
        .update_customer(id, expected.version, &data, &owner, Some(user.user.id))
        .await
        .map_err(|e| conflict_status(e.into(), &expected))?;
    crate::audit::customer::changed(&state, &user, &current, &c, &defs);
    state.after_data_change(id, user.user.id).await;
    let (out, _) = crate::privacy::CustomerShield::new(&user.actor.fields, &defs).out(c, false);
    Ok(with_etag(out.version, out))
}

/// Deletes the customer with its contacts, orders and interactions. Needs `If-Match` or `?version=`.
#[utoipa::path(delete, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = i64, Path), ("version" = Option<i64>, Query)),
    responses((status = 204), (status = 404), (status = 412), (status = 428)))]
pub async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<Response, ApiError> {
    let c = customer_for(&state, &user, id, Permission::CustomerDelete).await?;
    let expected = expected_version(&headers, q.take("version").and_then(|v| v.parse().ok()))?;
    state
        .store
        .delete_customer(id, expected.version)
        .await
        .map_err(|e| conflict_status(e.into(), &expected))?;
    crate::audit::customer::deleted(&state, &user, &c);
    Ok(StatusCode::NO_CONTENT.into_response())
}
