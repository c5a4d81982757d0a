//! Stored classes: a customer's class per scheme as of a date, and the list
//! of class changes (history) in the caller's scope.

use super::customers::customer_for;
use super::dto::{ClassChangeOut, CustomerClassOut, Page};
use super::QueryPairs;
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
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
    let as_of = match q.take("as_of") {
        Some(raw) => kehu_core::date::parse_date(&raw)
            .map_err(|reason| ValidationErrors(vec![FieldError::new("as_of", reason)]))?,
        None => state.store.today(),
    };
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
