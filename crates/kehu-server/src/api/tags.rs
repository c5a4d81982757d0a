//! Tags: the catalogue (create, rename, move, retire, merge; 管理员 and 市场
//! hold `tag_manage`), tags on customers (by people with the right to edit
//! the customer or to manage tags), the history of both, and the settings.

use super::customers::customer_for;
use super::dto::{
    CustomerTagOut, CustomerTagsResult, ProposalOut, RuleRunOut, TagEventOut, TagMerge, TagOut,
    TagReviewOut, TagReviewRow, TagSettingsIo, TagWrite,
};
use super::segments::compile_in;
use super::{expected_version, with_etag, ApiJson, QueryPairs};
use crate::auth::CurrentUser;
use crate::classifier::SchemeSet;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{Datelike, NaiveDate};
use kehu_core::role::{Ownership, Permission};
use kehu_core::segment::{Atom, Compiled, SchemeClasses};
use kehu_core::tags::{rule_order, Catalogue, Synonyms, TagMode, Unresolved};
use kehu_core::Reason;
use kehu_store::tags::{catalogue_of, NewTag, TagChange, TagRecord, TagSettings, TagsStamp};
use kehu_store::ScopeFilter;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

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
    let c = catalogue_of(&tags);
    let counts = state.segments.tag_counts().await?;
    Ok(Json(
        tags.into_iter()
            .map(|t| {
                let n = counts.get(&t.id).copied().unwrap_or(0);
                TagOut::new(t, &c, n)
            })
            .collect(),
    ))
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
    let records = state.store.tags().await?;
    let c = catalogue_of(&records);
    let t = records
        .into_iter()
        .find(|t| t.id == id)
        .ok_or(ApiError::NotFound)?;
    let n = state
        .segments
        .tag_counts()
        .await?
        .get(&id)
        .copied()
        .unwrap_or(0);
    Ok(with_etag(t.version, TagOut::new(t, &c, n)))
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
    let mode = mode_of("mode", body.mode.as_deref())?.unwrap_or(TagMode::Manual);
    let rule = checked_rule(state, None, mode, body.rule.as_deref()).await?;
    let t = state
        .store
        .create_tag(
            &NewTag {
                parent_id,
                name: body.name,
                mode,
                description: body.description.filter(|d| !d.trim().is_empty()),
                rule: rule.as_ref().map(|r| r.stable.clone()),
            },
            user.user.id,
        )
        .await?;
    audit_tag(
        state,
        user,
        "tag.create",
        t.id,
        json!({"tag": tag_facts(&t)}),
    );
    if let Some(r) = &rule {
        state.segments.apply_rule(t.id, mode, r, None).await?;
    }
    Ok(t.id)
}

/// The tag catalogue and its rules decide who is found by which query: every
/// change is in the audit log (besides the tag's own history).
fn audit_tag(state: &AppState, user: &CurrentUser, action: &str, id: i64, detail: Value) {
    state.audit(Some(user), action, format!("tag:{id}"), detail);
}

/// What the audit log keeps of a tag.
fn tag_facts(t: &kehu_store::tags::TagRecord) -> Value {
    json!({"name": t.name, "parent_id": t.parent_id, "mode": t.mode.as_str(), "description": t.description, "rule": t.rule})
}

/// Retires a tag or brings it back (API and page).
pub async fn retire_tag(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    retired: bool,
) -> Result<(), ApiError> {
    user.require(Permission::TagMerge)?;
    state
        .store
        .set_tag_retired(id, retired, user.user.id)
        .await?;
    let action = if retired { "tag.retire" } else { "tag.restore" };
    let name = state.store.tag(id).await?.name;
    audit_tag(state, user, action, id, json!({"name": name}));
    Ok(())
}

/// Merges tag `id` into `into` (API and page).
pub async fn merge_tag(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    into: i64,
) -> Result<(), ApiError> {
    user.require(Permission::TagMerge)?;
    state.store.merge_tag(id, into, user.user.id).await?;
    audit_tag(state, user, "tag.merge", id, json!({"into": into}));
    Ok(())
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
        .find(|k| !["name", "parent_id", "mode", "description", "rule"].contains(&k.as_str()))
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
        rule: None,
    };
    let rule_text = text("rule")?;
    save_tag_change(&state, &user, id, expected.version, change, rule_text)
        .await
        .map_err(|e| super::conflict_status(e, &expected))?;
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
    retire_tag(&state, &user, id, true).await?;
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
    retire_tag(&state, &user, id, false).await?;
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
    merge_tag(&state, &user, id, body.into).await?;
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
    tags_in(state, &c, customer_id).await
}

/// A customer's tags described by a catalogue the caller has read.
pub async fn tags_in(
    state: &AppState,
    c: &Catalogue,
    customer_id: i64,
) -> Result<Vec<CustomerTagOut>, ApiError> {
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

/// Whether the caller holds `right` (assigning or verifying tags) in a
/// scope that reaches the customer: 404 when they cannot see it, 403 when
/// they see it without the right.
async fn may_tag(
    state: &AppState,
    user: &CurrentUser,
    customer_id: i64,
    right: Permission,
) -> Result<(), ApiError> {
    let c = customer_for(state, user, customer_id, Permission::CustomerRead).await?;
    let o = Ownership {
        owner_id: c.owner_id,
        team: c.team.as_deref(),
    };
    if user.actor.may(right, o) {
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
    may_tag(state, user, id, Permission::TagAssign).await?;
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
    may_tag(state, user, id, Permission::TagAssign).await?;
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
    state.audit(
        Some(&user),
        "tag.settings",
        "tag_settings".into(),
        json!({"max_manual_tags": s.max_manual_tags, "synonyms": s.synonyms.0}),
    );
    Ok(Json(TagSettingsIo {
        max_manual_tags: s.max_manual_tags,
        synonyms: s.synonyms.0,
    }))
}

/// The tags a rule reads (subtrees included).
fn reads(rule: &Compiled) -> BTreeSet<i64> {
    rule.plan
        .atoms()
        .into_iter()
        .filter_map(|a| match a {
            Atom::Tag { tags, .. } => Some(tags.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Every active rule but `except`'s, compiled against the vocabulary; a
/// rule that no longer compiles (a class gone) is left out and logged.
fn compiled_rules(
    records: &[TagRecord],
    tags: &Catalogue,
    schemes: &[SchemeClasses],
    except: Option<i64>,
) -> BTreeMap<i64, (TagMode, Compiled)> {
    let mut out = BTreeMap::new();
    for t in records.iter().filter(|t| Some(t.id) != except) {
        let Some(rule) = t.active_rule() else {
            continue;
        };
        match compile_in(rule, tags, schemes, "rule") {
            Ok(c) => {
                out.insert(t.id, (t.mode, c));
            }
            Err(e) => {
                tracing::warn!(tag = t.id, error = ?e, "a tag rule no longer compiles; skipped")
            }
        }
    }
    out
}

/// Which tags each rule reads: the graph rules are ordered by.
fn graph_of(rules: &BTreeMap<i64, (TagMode, Compiled)>) -> BTreeMap<i64, BTreeSet<i64>> {
    rules.iter().map(|(&id, (_, c))| (id, reads(c))).collect()
}

/// A rule as written for tag `this` (None: a new tag), compiled; refused
/// on a manual tag, and when rules would read each other in a circle.
async fn checked_rule(
    state: &AppState,
    this: Option<i64>,
    mode: TagMode,
    src: Option<&str>,
) -> Result<Option<Compiled>, ApiError> {
    let Some(src) = src.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    if mode == TagMode::Manual {
        return Err(ApiError::field(
            "rule",
            Reason::Rule {
                code: "tag_rule_on_manual",
                zh: "手动标签没有规则：请把打标方式设为规则或半自动".into(),
                en: "a manual tag has no rule: make it a rule or hybrid tag".into(),
            },
        ));
    }
    let records = state.store.tags().await?;
    let tags = catalogue_of(&records);
    let schemes = state.classifier.published().await?.vocabulary();
    let compiled = compile_in(src, &tags, &schemes, "rule")?;
    let others = compiled_rules(&records, &tags, &schemes, this);
    let mut graph = graph_of(&others);
    if let Some(id) = this {
        graph.insert(id, reads(&compiled));
    }
    if let Err(cycle) = rule_order(&graph) {
        let paths: Vec<String> = cycle.iter().map(|&t| tags.path_text(t)).collect();
        return Err(ApiError::field(
            "rule",
            Reason::Rule {
                code: "tag_rule_cycle",
                zh: format!("标签规则互相引用成环：{}", paths.join(" → ")),
                en: format!(
                    "tag rules would read each other in a circle: {}",
                    paths.join(" → ")
                ),
            },
        ));
    }
    Ok(Some(compiled))
}

/// Saves a change of a tag with its rule (`Some(None)`: no rule) and
/// applies the rule as saved at once (shared with the UI).
async fn save_tag_change(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    version: i64,
    change: TagChange,
    rule_text: Option<Option<String>>,
) -> Result<(), ApiError> {
    let current = state.store.tag(id).await?;
    let mode = change.mode.unwrap_or(current.mode);
    let rule = match &rule_text {
        Some(Some(r)) => checked_rule(state, Some(id), mode, Some(r)).await?,
        _ => None,
    };
    let change = TagChange {
        rule: rule_text.map(|r| r.and(rule.as_ref().map(|c| c.stable.clone()))),
        ..change
    };
    let saved = state
        .store
        .update_tag(id, version, &change, user.user.id)
        .await?;
    audit_tag(
        state,
        user,
        "tag.update",
        id,
        json!({"before": tag_facts(&current), "after": tag_facts(&saved)}),
    );
    // A rule tag without a rule carries no one.
    match (saved.mode, saved.rule.is_some()) {
        (TagMode::Manual, _) | (TagMode::Hybrid, false) => {}
        (_, true) => {
            apply_one(state, id).await?;
        }
        (TagMode::Rule, false) => state.segments.clear_rule_tag(id).await?,
    }
    Ok(())
}

/// Sets or clears a tag's rule (the UI's rule form).
pub async fn change_rule(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    version: i64,
    rule: Option<String>,
) -> Result<(), ApiError> {
    user.require(Permission::TagManage)?;
    save_tag_change(state, user, id, version, TagChange::default(), Some(rule)).await
}

/// Applies one tag's stored rule to everyone.
pub async fn apply_one(state: &AppState, id: i64) -> Result<RuleRunOut, ApiError> {
    let records = state.store.tags().await?;
    let tags = catalogue_of(&records);
    let t = records
        .iter()
        .find(|t| t.id == id)
        .ok_or(ApiError::NotFound)?;
    let Some(stored) = t.rule.as_deref().filter(|_| t.mode != TagMode::Manual) else {
        return Err(ApiError::field(
            "rule",
            Reason::Rule {
                code: "tag_without_rule",
                zh: "该标签没有规则".into(),
                en: "this tag has no rule".into(),
            },
        ));
    };
    let schemes = state.classifier.published().await?.vocabulary();
    let rule = compile_in(stored, &tags, &schemes, "rule")?;
    let c = state.segments.apply_rule(id, t.mode, &rule, None).await?;
    Ok(run_out(id, c))
}

fn run_out(tag_id: i64, c: kehu_store::tags::RuleChanges) -> RuleRunOut {
    RuleRunOut {
        tag_id,
        added: c.added,
        removed: c.removed,
        proposed: c.proposed,
        expired: c.expired,
    }
}

/// Applies every tag rule, each after the rule tags it reads, to the
/// customers among `only` (everyone when None). A rule that no longer
/// compiles (a class gone) is skipped and logged.
pub async fn apply_rules(
    state: &AppState,
    only: Option<&[i64]>,
) -> Result<Vec<RuleRunOut>, ApiError> {
    let (stamp, schemes) = catalogue_now(state).await?;
    apply_rules_at(state, stamp, schemes, only).await
}

/// The tags stamp and the published schemes, from one read of both
/// stamps (what the tag rule book and a re-evaluation depend on).
pub async fn catalogue_now(state: &AppState) -> Result<(TagsStamp, Arc<SchemeSet>), ApiError> {
    let (rules, tags) = state.store.catalogue_stamps().await?;
    Ok((tags, state.classifier.published_at(rules).await?))
}

/// [`apply_rules`] with the catalogue's stamp and the published schemes
/// read by the caller.
pub async fn apply_rules_at(
    state: &AppState,
    stamp: TagsStamp,
    schemes: Arc<SchemeSet>,
    only: Option<&[i64]>,
) -> Result<Vec<RuleRunOut>, ApiError> {
    let book = state.tag_rules.current(state, stamp, schemes).await?;
    let runs = state.segments.apply_rules(&book, only).await?;
    Ok(runs.into_iter().map(|(id, c)| run_out(id, c)).collect())
}

/// Every rule and hybrid tag's rule, compiled, in the order they run (a
/// rule after the tags it reads).
type RuleBook = Vec<(i64, TagMode, Compiled)>;

/// The rule book of this process, compiled once and reused while neither
/// the catalogue (its stamp) nor the published schemes (whose classes the
/// rules may read) change: each data change applies the rules to its
/// customer, and reading and compiling the whole catalogue for each was
/// the largest part of that work.
#[derive(Clone, Default)]
pub struct TagRuleCache(Arc<Mutex<Option<CachedBook>>>);

struct CachedBook {
    stamp: TagsStamp,
    schemes: Arc<SchemeSet>,
    book: Arc<RuleBook>,
}

impl TagRuleCache {
    /// `stamp` read before the catalogue: a change in between leaves a
    /// stale stamp on a newer book, which the next call compiles again.
    async fn current(
        &self,
        state: &AppState,
        stamp: TagsStamp,
        schemes: Arc<SchemeSet>,
    ) -> Result<Arc<RuleBook>, ApiError> {
        if let Some(c) = self.lock().as_ref() {
            if c.stamp == stamp && Arc::ptr_eq(&c.schemes, &schemes) {
                return Ok(c.book.clone());
            }
        }
        let records = state.store.tags().await?;
        let book = Arc::new(rule_book(&records, &schemes));
        *self.lock() = Some(CachedBook {
            stamp,
            schemes,
            book: book.clone(),
        });
        Ok(book)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<CachedBook>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn rule_book(records: &[TagRecord], schemes: &SchemeSet) -> RuleBook {
    if records.iter().all(|t| t.active_rule().is_none()) {
        return Vec::new();
    }
    let tags = catalogue_of(records);
    let mut compiled = compiled_rules(records, &tags, &schemes.vocabulary(), None);
    let graph = graph_of(&compiled);
    let order = rule_order(&graph).unwrap_or_else(|_| graph.keys().copied().collect());
    order
        .into_iter()
        .filter_map(|id| compiled.remove(&id).map(|(mode, rule)| (id, mode, rule)))
        .collect()
}

/// Applies a rule or hybrid tag's rule to every customer now.
#[utoipa::path(post, path = "/api/v1/tags/{id}/apply", tag = "tags", params(("id" = i64, Path)),
    responses((status = 200, body = RuleRunOut), (status = 403, content_type = "application/problem+json"),
        (status = 422, content_type = "application/problem+json")))]
pub async fn apply(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<RuleRunOut>, ApiError> {
    user.require(Permission::TagManage)?;
    Ok(Json(apply_one(&state, id).await?))
}

/// The verification queue: hybrid tags' proposals (`status`, default
/// `pending`; `tag_id` to narrow) for customers in the caller's scope.
#[utoipa::path(get, path = "/api/v1/tag-proposals", tag = "tags",
    params(("status" = Option<String>, Query), ("tag_id" = Option<i64>, Query)),
    responses((status = 200, body = Vec<ProposalOut>)))]
pub async fn proposals(
    State(state): State<AppState>,
    user: CurrentUser,
    mut q: QueryPairs,
) -> Result<Json<Vec<ProposalOut>>, ApiError> {
    let status = q.take("status").unwrap_or_else(|| "pending".into());
    let tag_id = match q.take("tag_id") {
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| ApiError::field("tag_id", Reason::IntegerFormat))?,
        ),
        None => None,
    };
    Ok(Json(queue(&state, &user, &status, tag_id).await?))
}

/// Proposals in `status` for customers the caller may see (shared with the UI).
pub async fn queue(
    state: &AppState,
    user: &CurrentUser,
    status: &str,
    tag_id: Option<i64>,
) -> Result<Vec<ProposalOut>, ApiError> {
    user.require(Permission::CustomerRead)?;
    const STATUSES: [&str; 4] = ["pending", "confirmed", "rejected", "expired"];
    if !STATUSES.contains(&status) {
        return Err(ApiError::field(
            "status",
            Reason::UnknownOption {
                allowed: STATUSES.iter().map(|s| s.to_string()).collect(),
            },
        ));
    }
    // The reader's scope is applied before the limit: a manager sees their
    // team's first 200, however many others wait.
    let scope = user.scope_filter(Permission::CustomerRead)?;
    let (list, _) = state.store.proposals(status, tag_id, &scope, 200).await?;
    let ids: Vec<i64> = list.iter().map(|p| p.customer_id).collect();
    let customers = state.store.customers_in(&ids).await?;
    let c = state.store.tag_catalogue().await?;
    Ok(list
        .into_iter()
        .filter_map(|p| {
            let cust = customers.iter().find(|c| c.id == p.customer_id)?;
            Some(ProposalOut {
                tag_path: c.path_text(p.tag_id),
                customer_code: cust.code.clone(),
                customer_name: cust.name.clone(),
                id: p.id,
                tag_id: p.tag_id,
                customer_id: p.customer_id,
                evidence: p.evidence,
                status: p.status,
                proposed_at: p.proposed_at,
                decided_by: p.decided_by,
                decided_at: p.decided_at,
            })
        })
        .collect())
}

/// Confirms a proposal: the customer gets the tag (source `verified`).
#[utoipa::path(post, path = "/api/v1/tag-proposals/{id}/confirm", tag = "tags", params(("id" = i64, Path)),
    responses((status = 200, body = CustomerTagsResult), (status = 403, content_type = "application/problem+json"),
        (status = 422, content_type = "application/problem+json")))]
pub async fn confirm(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<CustomerTagsResult>, ApiError> {
    Ok(Json(decide(&state, &user, id, true).await?))
}

/// Rejects a proposal: it is not made again for the same evidence.
#[utoipa::path(post, path = "/api/v1/tag-proposals/{id}/reject", tag = "tags", params(("id" = i64, Path)),
    responses((status = 200, body = CustomerTagsResult), (status = 403, content_type = "application/problem+json"),
        (status = 422, content_type = "application/problem+json")))]
pub async fn reject(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<CustomerTagsResult>, ApiError> {
    Ok(Json(decide(&state, &user, id, false).await?))
}

/// Checks the right on the customer and decides (shared with the UI).
pub async fn decide(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    confirm: bool,
) -> Result<CustomerTagsResult, ApiError> {
    let p = state.store.proposal(id).await?;
    may_tag(state, user, p.customer_id, Permission::TagVerify).await?;
    state
        .store
        .decide_proposal(id, confirm, user.user.id)
        .await?;
    Ok(CustomerTagsResult {
        changed: true,
        tags: tags_of(state, p.customer_id).await?,
    })
}

/// The quarterly usage review: every live tag's reach (with its subtree),
/// the change of its assignments over the period (`days`, default 90), and
/// how its customers behave against everyone else; tags on fewer than 5 %
/// of customers are proposed for removal.
/// `format=csv|xlsx|pdf` downloads the table.
#[utoipa::path(get, path = "/api/v1/tag-review", tag = "tags",
    params(("days" = Option<u32>, Query, description = "the last days up to today, 1–730; default 90"),
           ("period" = Option<String>, Query, description = "instead of days: a month, quarter or year (2026-Q3), counted as at its last day (or today while under way)"),
           ("format" = Option<String>, Query, description = "json (default) | csv | xlsx | pdf")),
    responses((status = 200, body = TagReviewOut), (status = 403, content_type = "application/problem+json"),
              (status = 422, content_type = "application/problem+json")))]
pub async fn review(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<Response, ApiError> {
    let days = match q.take("days") {
        None => 90,
        Some(d) => d
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=730).contains(d))
            .ok_or_else(|| {
                ApiError::field(
                    "days",
                    Reason::OutOfRange {
                        min: Some("1".into()),
                        max: Some("730".into()),
                    },
                )
            })?,
    };
    let today = state.store.today();
    let span = match q.take("period") {
        Some(p) => ReviewSpan::of_period(today, &p, "period")?,
        None => ReviewSpan::last_days(today, days),
    };
    let format = super::reports::file_format(&mut q)?;
    let review = tag_review(&state, &user, span).await?;
    let Some(format) = format else {
        return Ok(Json(review).into_response());
    };
    let file = review_file(&review, format, crate::error::lang_of(&headers))?;
    let name = format!(
        "tags-{}",
        review.trend_dates.last().copied().unwrap_or(review.since)
    );
    Ok(super::reports::audited_download(
        &state,
        &user,
        "report:tags".into(),
        serde_json::json!({"since": review.since, "until": review.until}),
        format,
        &name,
        file,
    ))
}

/// The review as CSV or XLSX.
pub fn review_file(
    r: &TagReviewOut,
    format: crate::export::Format,
    lang: kehu_core::Lang,
) -> Result<Vec<u8>, ApiError> {
    let (header, rows) = review_table(r, lang);
    // Customers, the change and the trend's counts are whole numbers.
    let numbers: Vec<usize> = std::iter::once(2)
        .chain(4..5 + r.trend_dates.len())
        .collect();
    let title = format!(
        "标签分析 · {} → {}",
        r.since,
        r.trend_dates.last().unwrap_or(&r.since)
    );
    crate::export::table_file(format, &title, "标签分析", &header, &rows, &numbers)
}

/// The review as rows (header first), for CSV/XLSX: reach, change, the
/// trend's counts, behaviour, removal candidates.
pub fn review_table(r: &TagReviewOut, lang: kehu_core::Lang) -> (Vec<String>, Vec<Vec<String>>) {
    let t = |zh: &str, en: &str| crate::reports::say(lang, zh, en);
    let pct = |x: Option<f64>| x.map_or(String::new(), |v| format!("{:.1}%", v * 100.0));
    let num = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.3}"));
    let mut header = vec![
        t("标签", "Tag"),
        t("方式", "Mode"),
        t("客户数", "Customers"),
        t("占比", "Share"),
        t("期间变化", "Change in period"),
    ];
    header.extend(r.trend_dates.iter().map(|d| d.to_string()));
    header.extend([
        t("复购率（有）", "Repurchase with"),
        t("复购率（无）", "Repurchase without"),
        t("复购相关系数", "Repurchase correlation"),
        t("满意度（有）", "Satisfaction with"),
        t("满意度（无）", "Satisfaction without"),
        t("满意度相关系数", "Satisfaction correlation"),
        t("建议删除", "Removal candidate"),
        t("已停用", "Retired"),
    ]);
    let yes = |b: bool| if b { t("是", "yes") } else { String::new() };
    let rows = r
        .tags
        .iter()
        .map(|g| {
            let mut row = vec![
                g.path.clone(),
                g.mode.clone(),
                g.customers.to_string(),
                pct(Some(g.share)),
                g.change_in_period.to_string(),
            ];
            row.extend(g.trend.iter().map(i64::to_string));
            row.extend([
                pct(g.repurchase_with),
                pct(g.repurchase_without),
                num(g.repurchase_correlation),
                num(g.satisfaction_with),
                num(g.satisfaction_without),
                num(g.satisfaction_correlation),
                yes(g.removal_candidate),
                yes(g.retired),
            ]);
            row
        })
        .collect();
    (header, rows)
}

/// Months of the review's trend (month ends before this month's, then today).
const TREND_MONTHS: u32 = 6;

/// The review for `days` (shared with the UI). Tag managers and report readers.
pub async fn tag_review(
    state: &AppState,
    user: &CurrentUser,
    span: ReviewSpan,
) -> Result<TagReviewOut, ApiError> {
    // Over the customers the reader's right covers: a tag manager's, or
    // a report reader's (a team's manager: the team's customers).
    let scope = [Permission::TagManage, Permission::ReportRead]
        .into_iter()
        .filter_map(|p| user.scope_filter(p).ok())
        .min_by_key(|s| match s {
            ScopeFilter::All => 0,
            ScopeFilter::Team { .. } => 1,
            ScopeFilter::Own { .. } => 2,
        })
        .ok_or(ApiError::Forbidden)?;
    usage_review(state, span, &scope).await
}

/// The days a tag review looks at: from `since` to `until` (inclusive,
/// at most today).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewSpan {
    pub since: NaiveDate,
    pub until: NaiveDate,
}

impl ReviewSpan {
    /// The last `days` days, up to today.
    pub fn last_days(today: NaiveDate, days: u32) -> ReviewSpan {
        ReviewSpan {
            since: today - chrono::Days::new(u64::from(days)),
            until: today,
        }
    }

    /// A month, quarter or year (`2026-Q3`), up to today if under way; a
    /// period not begun is refused on `field`.
    pub fn of_period(today: NaiveDate, period: &str, field: &str) -> Result<ReviewSpan, ApiError> {
        let p = kehu_core::strategy::parse_period(period).map_err(|r| ApiError::field(field, r))?;
        if p.start > today {
            return Err(ApiError::field(
                field,
                Reason::Other {
                    zh: format!("{} 尚未开始", p.label()),
                    en: format!("{} has not begun", p.label()),
                },
            ));
        }
        Ok(ReviewSpan {
            since: p.start,
            until: p.end.min(today),
        })
    }
}

/// The review over the customers of `scope` (callers check the right).
pub async fn usage_review(
    state: &AppState,
    span: ReviewSpan,
    scope: &ScopeFilter,
) -> Result<TagReviewOut, ApiError> {
    let ReviewSpan { since, until } = span;
    let days = u32::try_from((until - since).num_days()).unwrap_or(0);
    let day_start = |d: NaiveDate| crate::tasks::to_utc(d.and_time(chrono::NaiveTime::MIN));
    // The trend: the last day of each of the six months before `until`'s, then `until`.
    let month_start = until.with_day(1).unwrap_or(until);
    let trend_dates: Vec<NaiveDate> = (0..TREND_MONTHS)
        .rev()
        .filter_map(|k| month_start.checked_sub_months(chrono::Months::new(k)))
        .filter_map(|d| d.pred_opt())
        .chain(std::iter::once(until))
        .collect();
    // Instants after which changes are undone to count a past day (the
    // trend's days and `until`), and the span's start.
    let mut marks: Vec<chrono::DateTime<chrono::Utc>> = trend_dates
        .iter()
        .filter_map(|d| d.succ_opt())
        .map(day_start)
        .chain(std::iter::once(day_start(since)))
        .collect();
    marks.sort();
    marks.dedup();
    let records = state.store.tags().await?;
    let c = catalogue_of(&records);
    let live: Vec<&TagRecord> = records.iter().filter(|t| t.merged_into.is_none()).collect();
    let subtrees: Vec<(i64, Vec<i64>)> = live.iter().map(|t| (t.id, c.subtree(t.id))).collect();
    let scores = state.store.satisfaction_between(since, until).await?;
    let repeat_buyers = state.store.repeat_buyers(since, until).await?;
    // Tags as carried at the end of `until`: the changes since are undone.
    let end_of_until = until
        .succ_opt()
        .map(day_start)
        .unwrap_or_else(chrono::Utc::now);
    let changed_since = state
        .store
        .assignment_changes_after(end_of_until, scope)
        .await?;
    let (customers, behaviour) = state
        .segments
        .tag_behaviour(
            &subtrees,
            crate::segments::TagBehaviourInput {
                scores: &scores,
                repeat_buyers: &repeat_buyers,
                since: &changed_since,
            },
            scope,
        )
        .await?;
    let behaviour: BTreeMap<i64, kehu_core::tag_stats::TagBehaviour> =
        behaviour.into_iter().collect();
    // Net changes per tag from each mark on (suffix sums over the spans).
    let mut net_from: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (tag, span, added, removed) in state
        .store
        .assignment_changes_by_span(&marks, scope)
        .await?
    {
        let sums = net_from.entry(tag).or_insert_with(|| vec![0; marks.len()]);
        for s in sums.iter_mut().take(span + 1) {
            *s += added - removed;
        }
    }
    let mark_of = |at: chrono::DateTime<chrono::Utc>| marks.iter().position(|m| *m == at);
    let since_mark = mark_of(day_start(since));
    let until_mark = until.succ_opt().map(day_start).and_then(mark_of);
    let net_since = |tags: &[i64], mark: Option<usize>| -> i64 {
        mark.map_or(0, |m| {
            tags.iter()
                .filter_map(|t| net_from.get(t))
                .map(|sums| sums[m])
                .sum()
        })
    };
    let mut rows: Vec<TagReviewRow> = subtrees
        .iter()
        .zip(&live)
        .filter_map(|((id, tree), t)| {
            let b = behaviour.get(id)?;
            // Carried at the end of `until` (changes since undone), and today.
            let at_until = b.customers;
            let today = at_until as i64 + net_since(tree, until_mark);
            let share = if customers > 0 {
                at_until as f64 / customers as f64
            } else {
                0.0
            };
            Some(TagReviewRow {
                tag_id: *id,
                path: c.path_text(*id),
                mode: t.mode.as_str().into(),
                retired: t.retired_at.is_some(),
                customers: at_until,
                share,
                change_in_period: net_since(tree, since_mark) - net_since(tree, until_mark),
                trend: trend_dates
                    .iter()
                    .map(|d| {
                        let after = d.succ_opt().map(day_start).and_then(mark_of);
                        (today - net_since(tree, after)).max(0)
                    })
                    .collect(),
                removal_candidate: share < kehu_core::tag_stats::REVIEW_SHARE,
                repurchase_with: b.repurchase_with,
                repurchase_without: b.repurchase_without,
                repurchase_correlation: b.repurchase_correlation,
                satisfaction_with: b.satisfaction_with,
                satisfaction_without: b.satisfaction_without,
                satisfaction_correlation: b.satisfaction_correlation,
            })
        })
        .collect();
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(TagReviewOut {
        days,
        since,
        until,
        customers,
        threshold: kehu_core::tag_stats::REVIEW_SHARE,
        trend_dates,
        definitions: vec![
            format!("customers: carry the tag or a tag below it at the end of {until} / 客户数：{until} 日终带有该标签或其下级标签"),
            format!("repurchase: ordered on at least two days from {since} to {until}; repurchase and satisfaction are compared between the customers who carry the tag at the end of {until} and the others / 复购：{since} 至 {until} 期间至少在两个不同日期下单；复购与满意度按 {until} 日终是否带有该标签比较"),
            format!("satisfaction: mean score of interactions from {since} to {until} / 满意度：{since} 至 {until} 互动评分的平均值"),
            "correlation: phi (repurchase) and point-biserial (satisfaction), −1…1 / 相关系数：phi 与点二列相关".into(),
            "change_in_period: assignments added minus removed in the period / 期间变化：期间新增减去移除的打标数".into(),
            "trend: customers at the end of each of the six months before the last day and on it, counted back from today through the assignment history / 趋势：截止日前六个月每月末及截止日的客户数，由今日数按打标历史倒推".into(),
        ],
        tags: rows,
    })
}

/// Every change of the tag settings, newest first (who, when, from, to).
#[utoipa::path(get, path = "/api/v1/tag-settings/history", tag = "tags",
    responses((status = 200, body = Vec<TagEventOut>), (status = 403, content_type = "application/problem+json")))]
pub async fn settings_history(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<TagEventOut>>, ApiError> {
    user.require(Permission::TagManage)?;
    let events = state
        .store
        .tag_history(Some(kehu_store::tags::SETTINGS_TAG), None)
        .await?;
    Ok(Json(events.into_iter().map(TagEventOut::from).collect()))
}
