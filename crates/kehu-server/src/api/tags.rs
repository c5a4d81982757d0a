//! Tags: the catalogue (create, rename, move, retire, merge; 管理员 and 市场
//! hold `tag_manage`), tags on customers (by people with the right to edit
//! the customer or to manage tags), the history of both, and the settings.

use super::customers::customer_for;
use super::dto::{
    CustomerTagOut, CustomerTagsResult, TagEventOut, TagMerge, TagOut, TagSettingsIo, TagWrite,
};
use super::{expected_version, with_etag, ApiJson};
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use kehu_core::role::{Ownership, Permission};
use kehu_core::tags::{Synonyms, TagMode, Unresolved};
use kehu_core::Reason;
use kehu_store::tags::{NewTag, TagChange, TagSettings};
use serde_json::Value;

fn mode_of(field: &str, raw: Option<&str>) -> Result<Option<TagMode>, ApiError> {
    raw.map(|m| TagMode::parse(m).map_err(|r| ApiError::field(field, r)))
        .transpose()
}

/// The catalogue, merged tags included (they say where they went).
#[utoipa::path(get, path = "/api/v1/tags", tag = "tags",
    responses((status = 200, body = Vec<TagOut>)))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<TagOut>>, ApiError> {
    user.require(Permission::CustomerRead)?;
    let tags = state.store.tags().await?;
    let c = state.store.tag_catalogue().await?;
    Ok(Json(tags.into_iter().map(|t| TagOut::new(t, &c)).collect()))
}

#[utoipa::path(get, path = "/api/v1/tags/{id}", tag = "tags", params(("id" = i64, Path)),
    responses((status = 200, body = TagOut), (status = 404, content_type = "application/problem+json")))]
pub async fn read(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    user.require(Permission::CustomerRead)?;
    tag_response(&state, id).await
}

async fn tag_response(state: &AppState, id: i64) -> Result<Response, ApiError> {
    let t = state.store.tag(id).await?;
    let c = state.store.tag_catalogue().await?;
    Ok(with_etag(t.version, TagOut::new(t, &c)))
}

/// Adds a tag under a parent (by id or path) or as a new dimension. Names
/// are unique among siblings, no synonym of a sibling (工业 beside 制造业),
/// 1–20 letters, digits or `- _ · & + . %`; at most four levels.
#[utoipa::path(post, path = "/api/v1/tags", tag = "tags", request_body = TagWrite,
    responses((status = 201, body = TagOut), (status = 403, content_type = "application/problem+json"),
        (status = 422, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<TagWrite>,
) -> Result<Response, ApiError> {
    let t = create_tag(&state, &user, body).await?;
    let mut r = tag_response(&state, t).await?;
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

/// Checks and adds a tag (shared with the UI); returns its id.
pub async fn create_tag(
    state: &AppState,
    user: &CurrentUser,
    body: TagWrite,
) -> Result<i64, ApiError> {
    user.require(Permission::TagManage)?;
    let parent_id = match (
        body.parent_id,
        body.parent.as_deref().filter(|p| !p.trim().is_empty()),
    ) {
        (Some(id), _) => Some(id),
        (None, Some(path)) => Some(parent_by_path(state, path).await?),
        (None, None) => None,
    };
    let t = state
        .store
        .create_tag(
            &NewTag {
                parent_id,
                name: body.name,
                mode: mode_of("mode", body.mode.as_deref())?.unwrap_or(TagMode::Manual),
                description: body.description.filter(|d| !d.trim().is_empty()),
            },
            user.user.id,
        )
        .await?;
    Ok(t.id)
}

async fn parent_by_path(state: &AppState, path: &str) -> Result<i64, ApiError> {
    let c = state.store.tag_catalogue().await?;
    c.resolve(path).map_err(|e| {
        let (zh, en) = match e {
            Unresolved::NotFound => (
                format!("上级标签“{path}”不存在"),
                format!("the parent tag “{path}” does not exist"),
            ),
            Unresolved::Ambiguous(paths) => (
                format!("“{path}”指向多个标签，请写完整路径：{}", paths.join("；")),
                format!(
                    "“{path}” names several tags; write the full path: {}",
                    paths.join("; ")
                ),
            ),
        };
        ApiError::field(
            "parent",
            Reason::Rule {
                code: "tag_parent_unknown",
                zh,
                en,
            },
        )
    })
}

/// Renames, moves (`parent_id`, `null` for a dimension), changes the mode
/// or description of a tag. Needs the version (If-Match or `version`).
/// Saved segments keep working: they refer to tags by id.
#[utoipa::path(patch, path = "/api/v1/tags/{id}", tag = "tags", params(("id" = i64, Path)), request_body = Value,
    responses((status = 200, body = TagOut), (status = 409, content_type = "application/problem+json"),
        (status = 422, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    user.require(Permission::TagManage)?;
    let version = super::split_version(&mut body)?;
    let expected = expected_version(&headers, version)?;
    let obj = body.as_object().cloned().unwrap_or_default();
    let text = |k: &str| -> Result<Option<Option<String>>, ApiError> {
        match obj.get(k) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
            Some(_) => Err(ApiError::field(
                k,
                Reason::Other {
                    zh: "应为文字".into(),
                    en: "must be text".into(),
                },
            )),
        }
    };
    if let Some(unknown) = obj
        .keys()
        .find(|k| !["name", "parent_id", "mode", "description"].contains(&k.as_str()))
    {
        return Err(ApiError::field(unknown, Reason::UnknownField));
    }
    let change = TagChange {
        name: match text("name")? {
            Some(None) => return Err(ApiError::field("name", Reason::Required)),
            other => other.flatten(),
        },
        parent_id: match obj.get("parent_id") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(v) => {
                Some(Some(v.as_i64().ok_or_else(|| {
                    ApiError::field("parent_id", Reason::IntegerFormat)
                })?))
            }
        },
        mode: mode_of("mode", text("mode")?.flatten().as_deref())?,
        description: text("description")?,
    };
    state
        .store
        .update_tag(id, expected.version, &change, user.user.id)
        .await
        .map_err(|e| super::conflict_status(e.into(), &expected))?;
    tag_response(&state, id).await
}

/// Retires a tag: it can no longer be assigned; customers keep it and
/// queries still find them.
#[utoipa::path(post, path = "/api/v1/tags/{id}/retire", tag = "tags", params(("id" = i64, Path)),
    responses((status = 200, body = TagOut), (status = 403, content_type = "application/problem+json")))]
pub async fn retire(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    user.require(Permission::TagManage)?;
    state.store.set_tag_retired(id, true, user.user.id).await?;
    tag_response(&state, id).await
}

/// Brings a retired tag back.
#[utoipa::path(post, path = "/api/v1/tags/{id}/restore", tag = "tags", params(("id" = i64, Path)),
    responses((status = 200, body = TagOut), (status = 403, content_type = "application/problem+json")))]
pub async fn restore(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    user.require(Permission::TagManage)?;
    state.store.set_tag_retired(id, false, user.user.id).await?;
    tag_response(&state, id).await
}

/// Merges this tag into `into`: every assignment moves, the history of
/// both stays, and references to this tag (saved segments) follow.
#[utoipa::path(post, path = "/api/v1/tags/{id}/merge", tag = "tags", params(("id" = i64, Path)), request_body = TagMerge,
    responses((status = 200, body = TagOut, description = "the tag merged into"), (status = 422, content_type = "application/problem+json")))]
pub async fn merge(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<TagMerge>,
) -> Result<Response, ApiError> {
    user.require(Permission::TagManage)?;
    state.store.merge_tag(id, body.into, user.user.id).await?;
    tag_response(&state, body.into).await
}

/// The history of a tag, newest first.
#[utoipa::path(get, path = "/api/v1/tags/{id}/history", tag = "tags", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<TagEventOut>)))]
pub async fn history(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Vec<TagEventOut>>, ApiError> {
    user.require(Permission::TagManage)?;
    state.store.tag(id).await?;
    let events = state.store.tag_history(Some(id), None).await?;
    Ok(Json(events.into_iter().map(TagEventOut::from).collect()))
}

/// The customer's tags.
#[utoipa::path(get, path = "/api/v1/customers/{id}/tags", tag = "tags", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<CustomerTagOut>), (status = 404, content_type = "application/problem+json")))]
pub async fn customer_tags(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Vec<CustomerTagOut>>, ApiError> {
    customer_for(&state, &user, id, Permission::CustomerRead).await?;
    Ok(Json(tags_of(&state, id).await?))
}

pub async fn tags_of(state: &AppState, customer_id: i64) -> Result<Vec<CustomerTagOut>, ApiError> {
    let c = state.store.tag_catalogue().await?;
    let assigned = state.store.customer_tags(customer_id).await?;
    Ok(assigned
        .into_iter()
        .map(|a| {
            let node = c.get(a.tag_id);
            CustomerTagOut {
                name: node.map(|n| n.name.clone()).unwrap_or_default(),
                path: c.path_text(a.tag_id),
                mode: node.map_or("manual", |n| n.mode.as_str()).into(),
                tag_id: a.tag_id,
                source: a.source,
                assigned_by: a.assigned_by,
                assigned_at: a.assigned_at,
            }
        })
        .collect())
}

/// The history of the customer's tags, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{id}/tag-history", tag = "tags", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<TagEventOut>), (status = 404, content_type = "application/problem+json")))]
pub async fn customer_tag_history(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Vec<TagEventOut>>, ApiError> {
    customer_for(&state, &user, id, Permission::CustomerRead).await?;
    let events = state.store.tag_history(None, Some(id)).await?;
    Ok(Json(events.into_iter().map(TagEventOut::from).collect()))
}

/// Who may put tags on (or take them off) a customer: whoever may edit
/// it, or manage tags in a scope that reaches it.
async fn may_tag(state: &AppState, user: &CurrentUser, customer_id: i64) -> Result<(), ApiError> {
    let c = customer_for(state, user, customer_id, Permission::CustomerRead).await?;
    let o = Ownership {
        owner_id: c.owner_id,
        team: c.team.as_deref(),
    };
    if user.actor.may(Permission::CustomerUpdate, o) || user.actor.may(Permission::TagManage, o) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// Puts a manual tag on the customer; at most the configured number of
/// manual tags per customer (5 by default).
#[utoipa::path(put, path = "/api/v1/customers/{id}/tags/{tag_id}", tag = "tags",
    params(("id" = i64, Path), ("tag_id" = i64, Path)),
    responses((status = 200, body = CustomerTagsResult), (status = 403, content_type = "application/problem+json"),
        (status = 404, content_type = "application/problem+json"), (status = 422, content_type = "application/problem+json")))]
pub async fn assign(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, tag_id)): Path<(i64, i64)>,
) -> Result<Json<CustomerTagsResult>, ApiError> {
    let changed = assign_tag(&state, &user, id, tag_id).await?;
    Ok(Json(CustomerTagsResult {
        changed,
        tags: tags_of(&state, id).await?,
    }))
}

/// Checks the right and assigns (shared with the UI).
pub async fn assign_tag(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    tag_id: i64,
) -> Result<bool, ApiError> {
    may_tag(state, user, id).await?;
    Ok(state.store.assign_tag(id, tag_id, user.user.id).await?)
}

/// Takes a tag off the customer.
#[utoipa::path(delete, path = "/api/v1/customers/{id}/tags/{tag_id}", tag = "tags",
    params(("id" = i64, Path), ("tag_id" = i64, Path)),
    responses((status = 200, body = CustomerTagsResult), (status = 403, content_type = "application/problem+json"),
        (status = 404, content_type = "application/problem+json")))]
pub async fn unassign(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, tag_id)): Path<(i64, i64)>,
) -> Result<Json<CustomerTagsResult>, ApiError> {
    let changed = unassign_tag(&state, &user, id, tag_id).await?;
    Ok(Json(CustomerTagsResult {
        changed,
        tags: tags_of(&state, id).await?,
    }))
}

/// Checks the right and removes (shared with the UI).
pub async fn unassign_tag(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    tag_id: i64,
) -> Result<bool, ApiError> {
    may_tag(state, user, id).await?;
    Ok(state.store.unassign_tag(id, tag_id, user.user.id).await?)
}

#[utoipa::path(get, path = "/api/v1/tag-settings", tag = "tags",
    responses((status = 200, body = TagSettingsIo)))]
pub async fn settings(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<TagSettingsIo>, ApiError> {
    user.require(Permission::CustomerRead)?;
    let s = state.store.tag_settings().await?;
    Ok(Json(TagSettingsIo {
        max_manual_tags: s.max_manual_tags,
        synonyms: s.synonyms.0,
    }))
}

/// Replaces the settings: the manual-tag limit (1–50) and the synonym groups.
#[utoipa::path(put, path = "/api/v1/tag-settings", tag = "tags", request_body = TagSettingsIo,
    responses((status = 200, body = TagSettingsIo), (status = 422, content_type = "application/problem+json")))]
pub async fn set_settings(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<TagSettingsIo>,
) -> Result<Json<TagSettingsIo>, ApiError> {
    user.require(Permission::TagManage)?;
    if !(1..=50).contains(&body.max_manual_tags) {
        return Err(ApiError::field(
            "max_manual_tags",
            Reason::OutOfRange {
                min: Some("1".into()),
                max: Some("50".into()),
            },
        ));
    }
    let synonyms = Synonyms::validate(body.synonyms)?;
    let s = TagSettings {
        max_manual_tags: body.max_manual_tags,
        synonyms,
    };
    state.store.set_tag_settings(&s, user.user.id).await?;
    Ok(Json(TagSettingsIo {
        max_manual_tags: s.max_manual_tags,
        synonyms: s.synonyms.0,
    }))
}
