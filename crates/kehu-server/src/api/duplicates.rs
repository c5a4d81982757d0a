//! /api/v1/duplicates and /api/v1/merges: the queue of likely duplicate
//! customers (and /api/v1/contact-duplicates, /api/v1/contact-merges: of
//! contacts), the whole-database scan, rejecting a pair, merging two
//! customers with field-by-field survivorship, and undoing a merge. The
//! engine is `crate::duplicates`.

use super::{ApiJson, QueryPairs};
use crate::auth::CurrentUser;
use crate::contact_duplicates::{self, ContactMergeOut, ContactMergePlan, ContactPairOut};
use crate::duplicates::{self, MergeBody, MergeOut, MergePlan, PairOut, ScanReport};
use crate::error::{lang_of, ApiError};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// One page of the queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct PairPage {
    pub total: i64,
    pub pairs: Vec<PairOut>,
}

/// Likely duplicate pairs whose customers the caller may both read, best first.
#[utoipa::path(get, path = "/api/v1/duplicates", tag = "duplicates",
    params(("status" = Option<String>, Query, description = "open (default) | rejected"),
           ("limit" = Option<i64>, Query, description = "1–500, default 50"), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = PairPage), (status = 422, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    mut q: QueryPairs,
) -> Result<Json<PairPage>, ApiError> {
    let status = q.take("status").unwrap_or_else(|| "open".into());
    let limit = q.take_number("limit", 50)?;
    let offset = q.take_number("offset", 0)?;
    let (pairs, total) = duplicates::queue(&state, &user, &status, limit, offset).await?;
    Ok(Json(PairPage { total, pairs }))
}

/// Compares every customer with every likely other (name, USCC, phone,
/// e-mail, address) and refreshes the queue; rejected pairs stay rejected.
/// Needs the right to edit every customer.
#[utoipa::path(post, path = "/api/v1/duplicates/scan", tag = "duplicates",
    responses((status = 200, body = ScanReport), (status = 403, content_type = "application/problem+json")))]
pub async fn scan(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<ScanReport>, ApiError> {
    if !duplicates::may_scan(&user) {
        return Err(ApiError::Forbidden);
    }
    Ok(Json(duplicates::scan(&state.store).await?))
}

/// A pair with what merging it would do by default: the survivor and, for
/// every field, both values and the one that survives.
#[utoipa::path(get, path = "/api/v1/duplicates/{id}", tag = "duplicates", params(("id" = i64, Path)),
    responses((status = 200, body = MergePlan), (status = 404, content_type = "application/problem+json")))]
pub async fn read(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<MergePlan>, ApiError> {
    Ok(Json(duplicates::plan(&state, &user, id).await?))
}

/// Not the same company: the pair is closed and never proposed again.
#[utoipa::path(post, path = "/api/v1/duplicates/{id}/reject", tag = "duplicates", params(("id" = i64, Path)),
    responses((status = 200, body = PairOut), (status = 403), (status = 404), (status = 422, content_type = "application/problem+json")))]
pub async fn reject(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<PairOut>, ApiError> {
    Ok(Json(duplicates::reject(&state, &user, id).await?))
}

/// Merges `absorbed_id` into `survivor_id`: each field from the customer
/// named in `choices` (defaults: the non-empty, the valid, the earlier
/// cooperation start, else the more recently changed), aliases and product
/// types united; contacts, orders, interactions, tags and class history
/// move to the survivor. Needs the right to edit both; 409 when either has
/// changed since the versions given.
#[utoipa::path(post, path = "/api/v1/merges", tag = "duplicates", request_body = MergeBody,
    responses((status = 201, body = MergeOut), (status = 403), (status = 404), (status = 409),
              (status = 422, content_type = "application/problem+json")))]
pub async fn merge(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<MergeBody>,
) -> Result<(StatusCode, Json<MergeOut>), ApiError> {
    let m = duplicates::merge(&state, &user, &body).await?;
    Ok((StatusCode::CREATED, Json(m)))
}

#[utoipa::path(get, path = "/api/v1/merges/{id}", tag = "duplicates", params(("id" = i64, Path)),
    responses((status = 200, body = MergeOut), (status = 404, content_type = "application/problem+json")))]
pub async fn read_merge(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<MergeOut>, ApiError> {
    let m = duplicates::visible_merge(&state, &user, id).await?;
    Ok(Json(duplicates::merge_out(&m)))
}

/// Puts both customers back as they were, with their records; refused when
/// the survivor has changed since the merge.
#[utoipa::path(post, path = "/api/v1/merges/{id}/undo", tag = "duplicates", params(("id" = i64, Path)),
    responses((status = 200, body = MergeOut), (status = 404), (status = 422, content_type = "application/problem+json")))]
pub async fn undo(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<MergeOut>, ApiError> {
    Ok(Json(duplicates::undo(&state, &user, id).await?))
}

/// One page of duplicate contact pairs.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactPairPage {
    pub total: i64,
    pub pairs: Vec<ContactPairOut>,
}

/// Likely duplicate contacts (two records of one person at one customer)
/// whose customer the caller may read, best first.
#[utoipa::path(get, path = "/api/v1/contact-duplicates", tag = "duplicates",
    params(("status" = Option<String>, Query, description = "open (default) | rejected"),
           ("customer_id" = Option<i64>, Query, description = "one customer's pairs"),
           ("limit" = Option<i64>, Query, description = "1–500, default 50"), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = ContactPairPage), (status = 404), (status = 422, content_type = "application/problem+json")))]
pub async fn contact_pairs(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<Json<ContactPairPage>, ApiError> {
    let status = q.take("status").unwrap_or_else(|| "open".into());
    let customer_id = match q.take_number("customer_id", 0)? {
        0 => None,
        id => Some(id),
    };
    let limit = q.take_number("limit", 50)?;
    let offset = q.take_number("offset", 0)?;
    let (pairs, total) = contact_duplicates::queue(
        &state,
        &user,
        lang_of(&headers),
        &status,
        customer_id,
        limit,
        offset,
    )
    .await?;
    Ok(Json(ContactPairPage { total, pairs }))
}

/// A pair of contacts with what merging it would do by default: the
/// contact that stays and, per field, both values (masked for the reader)
/// and the one that survives.
#[utoipa::path(get, path = "/api/v1/contact-duplicates/{id}", tag = "duplicates", params(("id" = i64, Path)),
    responses((status = 200, body = ContactMergePlan), (status = 404, content_type = "application/problem+json")))]
pub async fn contact_pair(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<ContactMergePlan>, ApiError> {
    Ok(Json(
        contact_duplicates::plan(&state, &user, lang_of(&headers), id).await?,
    ))
}

/// Not the same person: the pair is closed and never proposed again.
#[utoipa::path(post, path = "/api/v1/contact-duplicates/{id}/reject", tag = "duplicates", params(("id" = i64, Path)),
    responses((status = 200, body = ContactPairOut), (status = 403), (status = 404), (status = 422, content_type = "application/problem+json")))]
pub async fn reject_contact_pair(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<ContactPairOut>, ApiError> {
    Ok(Json(
        contact_duplicates::reject(&state, &user, lang_of(&headers), id).await?,
    ))
}

/// Merges contact `absorbed_id` into `survivor_id` (both of one customer):
/// each field from the contact named in `choices` (defaults: the one with a
/// value, else the more recently changed); the survivor is primary when
/// either was; the absorbed contact's consents move to it. Needs the right
/// to write the customer's records, and the edit right on every personal
/// field the merge changes; 409 when either changed since the versions given.
#[utoipa::path(post, path = "/api/v1/contact-merges", tag = "duplicates", request_body = MergeBody,
    responses((status = 201, body = ContactMergeOut), (status = 403), (status = 404), (status = 409),
              (status = 422, content_type = "application/problem+json")))]
pub async fn merge_contacts(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<MergeBody>,
) -> Result<(StatusCode, Json<ContactMergeOut>), ApiError> {
    let m = contact_duplicates::merge(&state, &user, &body).await?;
    Ok((StatusCode::CREATED, Json(m)))
}

#[utoipa::path(get, path = "/api/v1/contact-merges/{id}", tag = "duplicates", params(("id" = i64, Path)),
    responses((status = 200, body = ContactMergeOut), (status = 404, content_type = "application/problem+json")))]
pub async fn read_contact_merge(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<ContactMergeOut>, ApiError> {
    let m = contact_duplicates::visible_merge(&state, &user, id).await?;
    Ok(Json(contact_duplicates::merge_out(&user, &m)))
}

/// Puts both contacts back as they were, with their consents; refused when
/// the surviving contact has changed since the merge.
#[utoipa::path(post, path = "/api/v1/contact-merges/{id}/undo", tag = "duplicates", params(("id" = i64, Path)),
    responses((status = 200, body = ContactMergeOut), (status = 404), (status = 422, content_type = "application/problem+json")))]
pub async fn undo_contact_merge(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<ContactMergeOut>, ApiError> {
    Ok(Json(contact_duplicates::undo(&state, &user, id).await?))
}
