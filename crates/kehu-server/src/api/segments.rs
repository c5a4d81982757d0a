//! Segments: a boolean expression over tags, classes and fields answered
//! from the in-memory index (exact count and a page of customers in the
//! reader's scope), and saved segments (own, or shared within the team)
//! with live counts.

use super::dto::{SegmentOut, SegmentResultOut, SegmentWriteIo};
use super::{expected_version, with_etag, ApiJson, QueryPairs};
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use kehu_core::privacy::FieldRights;
use kehu_core::role::Permission;
use kehu_core::segment::{
    compile, display, segment_field, Atom, Compiled, Plan, SchemeClasses, Vocabulary, WindowAgg,
};
use kehu_core::tags::Catalogue;
use kehu_core::text::{parse_optional_text, parse_text};
use kehu_core::Reason;
use kehu_store::segments::{SavedSegment, SegmentWrite};

/// Customers per page by default, and at most.
const PAGE: usize = 50;
const PAGE_MAX: usize = 500;

/// What names in expressions can mean now: the tag catalogue and the
/// published schemes' classes.
pub async fn vocabulary(state: &AppState) -> Result<(Catalogue, Vec<SchemeClasses>), ApiError> {
    let tags = state.store.tag_catalogue().await?;
    let schemes = state.classifier.published().await?.vocabulary();
    Ok((tags, schemes))
}

/// Compiles an expression against a vocabulary; errors name `field` and the position.
pub fn compile_in(
    src: &str,
    tags: &Catalogue,
    schemes: &[SchemeClasses],
    field: &str,
) -> Result<Compiled, ApiError> {
    compile(src, &Vocabulary { tags, schemes })
        .map_err(|e| ApiError::Validation(e.into_validation(field)))
}

/// Compiles an expression against the current tags and published schemes;
/// errors name `field` and the character position.
pub async fn compile_expression(
    state: &AppState,
    src: &str,
    field: &str,
) -> Result<(Compiled, Catalogue), ApiError> {
    let (tags, schemes) = vocabulary(state).await?;
    let compiled = compile_in(src, &tags, &schemes, field)?;
    Ok((compiled, tags))
}

/// Compiles an expression for a reader: as [`compile_expression`], and
/// refused (naming the field) when it compares a field the reader does not
/// see in clear — the answer would test guesses at its values.
pub async fn compile_for_reader(
    state: &AppState,
    rights: &FieldRights,
    src: &str,
    field: &str,
) -> Result<(Compiled, Catalogue), ApiError> {
    let (compiled, tags) = compile_expression(state, src, field).await?;
    if let Some(field) = unseen_field(rights, &compiled.plan) {
        return Err(ApiError::Refused {
            zh: format!("不能按 {field} 筛选：您的角色不能查看它的明文"),
            en: format!("cannot filter on {field}: your role may not see it in clear"),
        });
    }
    Ok((compiled, tags))
}

/// The first field `plan` compares that a reader with `rights` does not
/// see in clear (a window of purchases reads order amounts).
fn unseen_field(rights: &FieldRights, plan: &Plan) -> Option<&'static str> {
    plan.atoms().into_iter().find_map(|atom| {
        let (Atom::Text { field, .. } | Atom::Range { field, .. }) = atom else {
            return None;
        };
        let seen = match segment_field(field).and_then(|f| f.window) {
            Some(WindowAgg::Purchase { .. }) => rights.sees_field("order.amount"),
            _ => rights.sees_customer_field(field),
        };
        (!seen).then_some(*field)
    })
}

/// Runs an expression for `user`: count and the page after `after`.
pub async fn run(
    state: &AppState,
    user: &CurrentUser,
    src: &str,
    after: i64,
    limit: usize,
) -> Result<SegmentResultOut, ApiError> {
    let scope = user.scope_filter(Permission::CustomerRead)?;
    let (compiled, tags) = compile_for_reader(state, &user.actor.fields, src, "expression").await?;
    let answer = state
        .segments
        .query(&compiled.plan, &scope, after, limit)
        .await?;
    let customers = state.store.customers_in(&answer.page).await?;
    let defs = state.store.custom_field_defs().await?;
    let shield = crate::privacy::CustomerShield::new(&user.actor.fields, &defs);
    let customers = customers
        .into_iter()
        .map(|c| shield.out(c, false).0)
        .collect();
    Ok(SegmentResultOut {
        expression: display(&compiled.stable, &tags),
        stable_expression: compiled.stable,
        count: answer.count,
        customers,
        next_after: answer.next_after,
    })
}

fn page_params(q: &mut QueryPairs) -> Result<(i64, usize), ApiError> {
    let after = match q.take("after") {
        None => 0,
        Some(a) => a
            .parse::<i64>()
            .map_err(|_| ApiError::field("after", Reason::IntegerFormat))?,
    };
    let limit = match q.take("limit") {
        None => PAGE,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=PAGE_MAX).contains(n))
            .ok_or_else(|| {
                ApiError::field(
                    "limit",
                    Reason::OutOfRange {
                        min: Some("1".into()),
                        max: Some(PAGE_MAX.to_string()),
                    },
                )
            })?,
    };
    Ok((after, limit))
}

/// The customers an expression holds for, in the caller's scope: the exact
/// count and a page (by id; `after` from `next_after`). For example
/// `expression=华东 AND 战略型 AND NOT 投诉客户`. Errors name the position.
#[utoipa::path(get, path = "/api/v1/segment-results", tag = "segments",
    params(("expression" = String, Query), ("after" = Option<i64>, Query), ("limit" = Option<u32>, Query, description = "1–500, default 50")),
    responses((status = 200, body = SegmentResultOut), (status = 422, content_type = "application/problem+json")))]
pub async fn results(
    State(state): State<AppState>,
    user: CurrentUser,
    mut q: QueryPairs,
) -> Result<Json<SegmentResultOut>, ApiError> {
    let src = q.take("expression").unwrap_or_default();
    let (after, limit) = page_params(&mut q)?;
    Ok(Json(run(&state, &user, &src, after, limit).await?))
}

/// The segments the caller may use (own, and shared in their team), each
/// with its live count.
#[utoipa::path(get, path = "/api/v1/segments", tag = "segments",
    responses((status = 200, body = Vec<SegmentOut>)))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<SegmentOut>>, ApiError> {
    Ok(Json(visible_segments(&state, &user).await?))
}

pub async fn visible_segments(
    state: &AppState,
    user: &CurrentUser,
) -> Result<Vec<SegmentOut>, ApiError> {
    let scope = user.scope_filter(Permission::CustomerRead)?;
    let saved = state
        .store
        .segments_visible_to(user.user.id, user.user.team.as_deref())
        .await?;
    let vocab = vocabulary(state).await?;
    let mut out = Vec::with_capacity(saved.len());
    for s in saved {
        out.push(segment_out(state, user, &scope, &vocab, s).await?);
    }
    Ok(out)
}

/// A saved segment with its live count in `scope`, against a vocabulary
/// read once per request; a segment whose tags or classes are gone still
/// shows, without a count.
/// A saved segment with its live count for `user` — none when it no longer
/// compiles, or compares a field they do not see in clear (a teammate's
/// shared segment may).
async fn segment_out(
    state: &AppState,
    user: &CurrentUser,
    scope: &kehu_store::ScopeFilter,
    (tags, schemes): &(Catalogue, Vec<SchemeClasses>),
    s: SavedSegment,
) -> Result<SegmentOut, ApiError> {
    let count = match compile_in(&s.expression, tags, schemes, "expression") {
        Ok(c) if unseen_field(&user.actor.fields, &c.plan).is_none() => {
            Some(state.segments.query(&c.plan, scope, 0, 0).await?.count)
        }
        _ => None,
    };
    Ok(SegmentOut {
        expression: display(&s.expression, tags),
        stable_expression: s.expression,
        id: s.id,
        name: s.name,
        description: s.description,
        owner_id: s.owner_id,
        team: s.team,
        shared: s.shared,
        count,
        version: s.version,
        created_at: s.created_at,
        updated_at: s.updated_at,
    })
}

/// A saved segment the caller may see (own or shared in their team), else 404.
async fn visible(state: &AppState, user: &CurrentUser, id: i64) -> Result<SavedSegment, ApiError> {
    let s = state.store.segment(id).await?;
    let mine = s.owner_id == Some(user.user.id);
    let shared = s.shared && s.team.is_some() && s.team == user.user.team;
    if mine || shared {
        Ok(s)
    } else {
        Err(ApiError::NotFound)
    }
}

/// The segment a request names: the expression `segment`, or the saved
/// segment `segment_id` the caller may read (its stored expression, so a
/// renamed or merged tag still means the same customers); None for
/// neither. Someone else's unshared segment reads as not found.
pub async fn named_segment(
    state: &AppState,
    user: &CurrentUser,
    expression: Option<String>,
    saved_id: Option<i64>,
) -> Result<Option<String>, ApiError> {
    let named = match (expression.filter(|e| !e.trim().is_empty()), saved_id) {
        (Some(e), _) => e,
        (None, Some(id)) => visible(state, user, id).await?.expression,
        (None, None) => return Ok(None),
    };
    // Whatever it is used for (a report, a campaign, tasks), it may not
    // compare a field the user does not see in clear.
    compile_for_reader(state, &user.actor.fields, &named, "segment").await?;
    Ok(Some(named))
}

/// [`named_segment`] from a query's `segment` and `segment_id`; a
/// `segment_id` that is not a whole number is refused on that field.
pub async fn segment_in_query(
    state: &AppState,
    user: &CurrentUser,
    q: &mut QueryPairs,
) -> Result<Option<String>, ApiError> {
    let saved_id = match q.take("segment_id").filter(|s| !s.trim().is_empty()) {
        Some(id) => Some(
            id.trim()
                .parse::<i64>()
                .map_err(|_| ApiError::field("segment_id", Reason::IntegerFormat))?,
        ),
        None => None,
    };
    named_segment(state, user, q.take("segment"), saved_id).await
}

/// Checks a segment as written by `user`: a name, an expression that
/// compiles and compares only fields they see in clear.
async fn segment_write(
    state: &AppState,
    user: &CurrentUser,
    body: &SegmentWriteIo,
    base: Option<&SavedSegment>,
) -> Result<SegmentWrite, ApiError> {
    let name = match (&body.name, base) {
        (Some(n), _) => parse_text(n, 60).map_err(|r| ApiError::field("name", r))?,
        (None, Some(b)) => b.name.clone(),
        (None, None) => return Err(ApiError::field("name", Reason::Required)),
    };
    let expression = match (&body.expression, base) {
        (Some(e), _) => {
            let rights = &user.actor.fields;
            compile_for_reader(state, rights, e, "expression")
                .await?
                .0
                .stable
        }
        (None, Some(b)) => b.expression.clone(),
        (None, None) => return Err(ApiError::field("expression", Reason::Required)),
    };
    let description = match (&body.description, base) {
        (Some(d), _) => {
            parse_optional_text(Some(d), 500).map_err(|r| ApiError::field("description", r))?
        }
        (None, b) => b.and_then(|b| b.description.clone()),
    };
    Ok(SegmentWrite {
        name,
        expression,
        description,
        shared: body.shared.or(base.map(|b| b.shared)).unwrap_or(false),
    })
}

/// Saves a segment for the caller (`shared`: their team sees it too).
#[utoipa::path(post, path = "/api/v1/segments", tag = "segments", request_body = SegmentWriteIo,
    responses((status = 201, body = SegmentOut), (status = 422, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<SegmentWriteIo>,
) -> Result<Response, ApiError> {
    let s = create_segment(&state, &user, &body).await?;
    let mut r = read_response(&state, &user, s).await?;
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

/// Checks and saves (shared with the UI).
pub async fn create_segment(
    state: &AppState,
    user: &CurrentUser,
    body: &SegmentWriteIo,
) -> Result<SavedSegment, ApiError> {
    user.require(Permission::CustomerRead)?;
    let w = segment_write(state, user, body, None).await?;
    let s = state
        .store
        .create_segment(&w, user.user.id, user.user.team.as_deref())
        .await?;
    audit_segment(state, user, "segment.create", &s);
    Ok(s)
}

/// A saved segment's change in the audit log: who, and what it says now.
fn audit_segment(state: &AppState, user: &CurrentUser, action: &str, s: &SavedSegment) {
    state.audit(
        Some(user),
        action,
        format!("segment:{}", s.id),
        serde_json::json!({"name": s.name, "expression": s.expression, "shared": s.shared, "version": s.version}),
    );
}

async fn read_response(
    state: &AppState,
    user: &CurrentUser,
    s: SavedSegment,
) -> Result<Response, ApiError> {
    let scope = user.scope_filter(Permission::CustomerRead)?;
    let vocab = vocabulary(state).await?;
    let version = s.version;
    Ok(with_etag(
        version,
        segment_out(state, user, &scope, &vocab, s).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/segments/{id}", tag = "segments", params(("id" = i64, Path)),
    responses((status = 200, body = SegmentOut), (status = 404, content_type = "application/problem+json")))]
pub async fn read(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let s = visible(&state, &user, id).await?;
    read_response(&state, &user, s).await
}

/// Changes a segment (its owner only); needs the version.
#[utoipa::path(patch, path = "/api/v1/segments/{id}", tag = "segments", params(("id" = i64, Path)), request_body = SegmentWriteIo,
    responses((status = 200, body = SegmentOut), (status = 403, content_type = "application/problem+json"),
        (status = 409, content_type = "application/problem+json"), (status = 422, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SegmentWriteIo>,
) -> Result<Response, ApiError> {
    let current = owned(&state, &user, id).await?;
    let expected = expected_version(&headers, body.version)?;
    let w = segment_write(&state, &user, &body, Some(&current)).await?;
    let s = state
        .store
        .update_segment(id, expected.version, &w)
        .await
        .map_err(|e| super::conflict_status(e.into(), &expected))?;
    audit_segment(&state, &user, "segment.update", &s);
    read_response(&state, &user, s).await
}

/// A segment the caller owns: 404 when they cannot see it, 403 when they
/// see it (shared) but do not own it.
async fn owned(state: &AppState, user: &CurrentUser, id: i64) -> Result<SavedSegment, ApiError> {
    let s = visible(state, user, id).await?;
    if s.owner_id == Some(user.user.id) {
        Ok(s)
    } else {
        Err(ApiError::Forbidden)
    }
}

/// Deletes a segment (its owner only); `?version=N` or If-Match.
#[utoipa::path(delete, path = "/api/v1/segments/{id}", tag = "segments", params(("id" = i64, Path), ("version" = Option<i64>, Query)),
    responses((status = 204), (status = 403, content_type = "application/problem+json"), (status = 404, content_type = "application/problem+json")))]
pub async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<StatusCode, ApiError> {
    let s = owned(&state, &user, id).await?;
    let v = q.take("version").and_then(|v| v.parse::<i64>().ok());
    let expected = expected_version(&headers, v)?;
    state
        .store
        .delete_segment(id, expected.version)
        .await
        .map_err(|e| super::conflict_status(e.into(), &expected))?;
    audit_segment(&state, &user, "segment.delete", &s);
    Ok(StatusCode::NO_CONTENT)
}

/// A saved segment's customers now: count and a page, as `/segment-results`.
#[utoipa::path(get, path = "/api/v1/segments/{id}/customers", tag = "segments",
    params(("id" = i64, Path), ("after" = Option<i64>, Query), ("limit" = Option<u32>, Query)),
    responses((status = 200, body = SegmentResultOut), (status = 404, content_type = "application/problem+json")))]
pub async fn customers(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    mut q: QueryPairs,
) -> Result<Json<SegmentResultOut>, ApiError> {
    let s = visible(&state, &user, id).await?;
    let (after, limit) = page_params(&mut q)?;
    Ok(Json(run(&state, &user, &s.expression, after, limit).await?))
}

/// The caller's customers as a file: those of `segment` (an expression),
/// or of saved segment `segment_id`, or all; `format` csv (default) or xlsx.
/// Cells that would run as spreadsheet formulas are defused.
#[utoipa::path(get, path = "/api/v1/customers/export", tag = "segments",
    params(("format" = Option<String>, Query, description = "csv (default) or xlsx"), ("segment" = Option<String>, Query, description = "a segment expression"),
        ("segment_id" = Option<i64>, Query, description = "a saved segment")),
    responses((status = 200, description = "the file", content_type = "text/csv"), (status = 422, content_type = "application/problem+json")))]
pub async fn export(
    State(state): State<AppState>,
    user: CurrentUser,
    mut q: QueryPairs,
) -> Result<Response, ApiError> {
    let format = crate::export::Format::parse(q.take("format").as_deref().unwrap_or("csv"))
        .map_err(|r| ApiError::field("format", r))?;
    let segment = segment_in_query(&state, &user, &mut q).await?;
    let scope = user.scope_filter(Permission::CustomerRead)?;
    let max = Some(crate::export::HTTP_MAX_CUSTOMERS);
    let (file, count) = crate::export::customers(
        &state,
        &scope,
        &user.actor.fields,
        segment.as_deref(),
        format,
        max,
    )
    .await?;
    state.audit(
        Some(&user),
        "export",
        "customers".into(),
        serde_json::json!({"format": format.extension(), "segment": segment, "rows": count}),
    );
    Ok(crate::export::download(format, "customers", file))
}
