//! Configuration that shapes the customer base: custom field definitions,
//! the industry list, roles.

use super::dto::{CustomFieldOut, CustomFieldWrite, IndustryList, RoleOut};
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
use kehu_core::custom_field::{parse_key, CustomFieldDef, FieldGroup, FieldKind, FieldRule};
use kehu_core::role::Permission;
use kehu_core::text::parse_text;
use kehu_core::{Reason, ValidationErrors};
use serde_json::json;

/// Turns the wire form into a checked definition.
pub fn custom_field_def(w: CustomFieldWrite) -> Result<CustomFieldDef, ApiError> {
    let mut e = ValidationErrors::default();
    let key = e.check(
        "key",
        w.key.as_deref().ok_or(Reason::Required).and_then(parse_key),
    );
    let group = e.check(
        "group",
        w.group
            .as_deref()
            .ok_or(Reason::Required)
            .and_then(FieldGroup::parse),
    );
    let kind = e.check(
        "kind",
        w.kind
            .as_deref()
            .ok_or(Reason::Required)
            .and_then(FieldKind::parse),
    );
    let rule: Option<FieldRule> = if w.rule.is_null() {
        Some(FieldRule::default())
    } else {
        e.check(
            "rule",
            serde_json::from_value(w.rule).map_err(|err| Reason::Other {
                zh: format!("校验规则无效：{err}"),
                en: format!("invalid rule: {err}"),
            }),
        )
    };
    let label = e.check("label", parse_text(w.label.as_deref().unwrap_or(""), 40));
    let def = CustomFieldDef {
        key: key.unwrap_or_default(),
        label: label.unwrap_or_default(),
        group: group.unwrap_or(FieldGroup::Basic),
        kind: kind.unwrap_or(FieldKind::Text),
        required: w.required.unwrap_or(false),
        options: w
            .options
            .iter()
            .map(|o| kehu_core::text::clean(o))
            .filter(|o| !o.is_empty())
            .collect(),
        rule: rule.unwrap_or_default(),
        position: w.position.unwrap_or(0),
    };
    // report the definition's own checks too, without repeating a field already refused
    if let Err(more) = def.validate() {
        for fe in more.0 {
            if e.for_field(&fe.field).is_none() {
                e.0.push(fe);
            }
        }
    }
    e.into_result()?;
    Ok(def)
}

#[utoipa::path(get, path = "/api/v1/custom-fields", tag = "configuration", responses((status = 200, body = Vec<CustomFieldOut>)))]
pub async fn list_custom_fields(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<Vec<CustomFieldOut>>, ApiError> {
    Ok(Json(
        state
            .store
            .custom_fields()
            .await?
            .into_iter()
            .map(CustomFieldOut::from)
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/custom-fields/{id}", tag = "configuration", params(("id" = i64, Path)), responses((status = 200, body = CustomFieldOut), (status = 404)))]
pub async fn read_custom_field(
    State(state): State<AppState>,
    _user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let f = state.store.custom_field(id).await?;
    Ok(with_etag(f.version, CustomFieldOut::from(f)))
}

#[utoipa::path(post, path = "/api/v1/custom-fields", tag = "configuration", request_body = CustomFieldWrite,
    responses((status = 201, body = CustomFieldOut), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn create_custom_field(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<CustomFieldWrite>,
) -> Result<Response, ApiError> {
    user.require(Permission::CustomFieldAdmin)?;
    let def = custom_field_def(body)?;
    let f = state.store.insert_custom_field(&def).await?;
    audit_field(
        &state,
        &user,
        "custom_field.create",
        f.id,
        json!({"field": CustomFieldOut::from(f.clone())}),
    );
    let mut r = with_etag(f.version, CustomFieldOut::from(f));
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

/// Changes label, group, required, options, rule, position. `key` and `kind` are fixed.
#[utoipa::path(patch, path = "/api/v1/custom-fields/{id}", tag = "configuration", params(("id" = i64, Path)), request_body = CustomFieldWrite,
    responses((status = 200, body = CustomFieldOut), (status = 409), (status = 412), (status = 422, content_type = "application/problem+json")))]
pub async fn update_custom_field(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    ApiJson(mut patch): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    user.require(Permission::CustomFieldAdmin)?;
    let stored = state.store.custom_field(id).await?;
    let was_personal = stored.def.personal().is_some();
    let current = CustomFieldOut::from(stored);
    let expected = expected_version(&headers, split_version(&mut patch)?)?;
    let merged: CustomFieldWrite = merge_patch(&CustomFieldWrite::from(&current), patch)?;
    if merged.key.as_deref() != Some(current.key.as_str()) {
        return Err(ApiError::field("key", Reason::Immutable));
    }
    if merged.kind.as_deref() != Some(current.kind.as_str()) {
        return Err(ApiError::field("kind", Reason::Immutable));
    }
    let def = custom_field_def(merged)?;
    if def.personal().is_some() && !was_personal {
        not_an_indicator(&state, &def).await?;
    }
    let f = state
        .store
        .update_custom_field(id, expected.version, &def)
        .await
        .map_err(|e| conflict_status(e.into(), &expected))?;
    audit_field(
        &state,
        &user,
        "custom_field.update",
        id,
        json!({"key": current.key, "changed": crate::audit::changes(&current, &CustomFieldOut::from(f.clone()))}),
    );
    if f.def.personal().is_some() != was_personal {
        // Its stored values are sealed (or opened back) in the background.
        let store = state.store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.reseal_customers(1000).await {
                tracing::warn!(error = %e, "sealing personal custom fields failed");
            }
        });
    }
    Ok(with_etag(f.version, CustomFieldOut::from(f)))
}

/// A field becoming personal is sealed: a published scheme that reads it
/// as an indicator could no longer. Refused, naming the schemes, until a
/// new version of each drops the indicator.
async fn not_an_indicator(state: &AppState, def: &CustomFieldDef) -> Result<(), ApiError> {
    let mut defs = state.store.custom_field_defs().await?;
    for d in defs.iter_mut().filter(|d| d.key == def.key) {
        *d = def.clone();
    }
    let mut specs = Vec::new();
    for v in state.store.published_scheme_versions().await? {
        specs.push((v.version, v.parsed_spec()?));
    }
    let Err(ApiError::Validation(errors)) = crate::classifier::SchemeSet::compile(&specs, &defs)
    else {
        return Ok(());
    };
    let mut schemes: Vec<String> = errors
        .0
        .iter()
        .filter(|e| e.reason.code() == "personal_field")
        .filter_map(|e| e.field.split('.').next().map(str::to_string))
        .collect();
    schemes.sort();
    schemes.dedup();
    if schemes.is_empty() {
        return Ok(());
    }
    let list = schemes.join("、");
    Err(ApiError::field(
        "rule.mask",
        Reason::Rule {
            code: "used_by_scheme",
            zh: format!("已发布的分类方案 {list} 以此字段为指标：先发布去掉该指标的新版本，再把它标为个人信息"),
            en: format!(
                "the published scheme(s) {list} use this field as an indicator: publish versions without it first, then mark it personal"
            ),
        },
    ))
}

#[utoipa::path(delete, path = "/api/v1/custom-fields/{id}", tag = "configuration", params(("id" = i64, Path), ("version" = Option<i64>, Query)),
    responses((status = 204), (status = 404), (status = 412), (status = 428)))]
pub async fn delete_custom_field(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<Response, ApiError> {
    user.require(Permission::CustomFieldAdmin)?;
    let expected = expected_version(&headers, q.take("version").and_then(|v| v.parse().ok()))?;
    delete_field(&state, &user, id, expected.version)
        .await
        .map_err(|e| conflict_status(e, &expected))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Custom fields decide what is kept and who sees it (a personal field is
/// sealed and masked): every change is in the audit log.
pub fn audit_field(
    state: &AppState,
    user: &CurrentUser,
    action: &str,
    id: i64,
    detail: serde_json::Value,
) {
    state.audit(Some(user), action, format!("custom_field:{id}"), detail);
}

/// Deletes a custom field at `version` (API and page), audited with what it was.
pub async fn delete_field(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    version: i64,
) -> Result<(), ApiError> {
    let before = state.store.custom_field(id).await?;
    state.store.delete_custom_field(id, version).await?;
    audit_field(
        state,
        user,
        "custom_field.delete",
        id,
        json!({"field": CustomFieldOut::from(before)}),
    );
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/industries", tag = "configuration", responses((status = 200, body = IndustryList)))]
pub async fn list_industries(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<IndustryList>, ApiError> {
    Ok(Json(IndustryList {
        industries: state.store.industries().await?,
    }))
}

/// Replaces the list of industries customers may have.
#[utoipa::path(put, path = "/api/v1/industries", tag = "configuration", request_body = IndustryList, responses((status = 200, body = IndustryList), (status = 422)))]
pub async fn set_industries(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<IndustryList>,
) -> Result<Json<IndustryList>, ApiError> {
    user.require(Permission::CustomFieldAdmin)?;
    let mut e = ValidationErrors::default();
    let mut names: Vec<String> = Vec::new();
    for (i, n) in body.industries.iter().enumerate() {
        if let Some(n) = e.check(&format!("industries[{i}]"), parse_text(n, 20)) {
            if names.contains(&n) {
                e.push(format!("industries[{i}]"), Reason::Duplicate);
            }
            names.push(n);
        }
    }
    if names.is_empty() {
        e.push("industries", Reason::Required);
    }
    e.into_result()?;
    let before = state.store.industries().await?;
    state.store.set_industries(&names).await?;
    state.audit(
        Some(&user),
        "industries.set",
        "industries".into(),
        json!({"before": before, "after": names}),
    );
    Ok(Json(IndustryList { industries: names }))
}

#[utoipa::path(get, path = "/api/v1/roles", tag = "configuration", responses((status = 200, body = Vec<RoleOut>)))]
pub async fn list_roles(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<Vec<RoleOut>>, ApiError> {
    let roles = state.store.roles().await?;
    Ok(Json(roles.into_iter().map(role_out).collect()))
}

/// Replaces a role's rights over personal fields: every key named (others
/// become hidden). Admins only; audited.
#[utoipa::path(put, path = "/api/v1/roles/{key}/field-rights", tag = "configuration",
    params(("key" = String, Path)),
    request_body(content = Object, description = "field → hidden | masked | clear | edit, e.g. {\"contact.mobile\": \"masked\"}"),
    responses((status = 200, body = Object), (status = 403), (status = 404), (status = 422, content_type = "application/problem+json")))]
pub async fn set_field_rights(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<std::collections::BTreeMap<String, String>>,
) -> Result<Json<kehu_core::privacy::FieldRights>, ApiError> {
    Ok(Json(
        crate::roles::set_field_rights(&state, &user, &key, &body).await?,
    ))
}

/// Replaces a role's permissions: `{"customer_read": "team", …}` (own, team,
/// all or none; permissions not named are denied). Admins only; audited.
#[utoipa::path(put, path = "/api/v1/roles/{key}/grants", tag = "configuration",
    params(("key" = String, Path)),
    request_body(content = Object, description = "permission → own | team | all | none"),
    responses((status = 200, body = Object), (status = 403), (status = 404), (status = 422, content_type = "application/problem+json")))]
pub async fn set_grants(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<std::collections::BTreeMap<String, String>>,
) -> Result<Json<kehu_core::role::Grants>, ApiError> {
    Ok(Json(
        crate::roles::set_grants(&state, &user, &key, &body).await?,
    ))
}

#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleCreate {
    /// Lower-case letters, digits and _ (e.g. `key_account_team`).
    pub key: String,
    pub name_zh: String,
    #[serde(default)]
    pub name_en: Option<String>,
    /// A role whose permissions and field rights the new one starts with; none: nothing allowed.
    #[serde(default)]
    pub copy_from: Option<String>,
}

/// A new role. Admins only; audited.
#[utoipa::path(post, path = "/api/v1/roles", tag = "configuration", request_body = RoleCreate,
    responses((status = 201, body = RoleOut), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn create_role(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<RoleCreate>,
) -> Result<Response, ApiError> {
    let r = crate::roles::create(
        &state,
        &user,
        &body.key,
        &body.name_zh,
        body.name_en.as_deref(),
        body.copy_from.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(role_out(r))).into_response())
}

/// Deletes a role that is not a preset and that no user holds.
#[utoipa::path(delete, path = "/api/v1/roles/{key}", tag = "configuration", params(("key" = String, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 422, content_type = "application/problem+json")))]
pub async fn delete_role(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    crate::roles::delete(&state, &user, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn role_out(r: kehu_store::model::Role) -> RoleOut {
    RoleOut {
        grants: serde_json::to_value(&r.grants).unwrap_or_default(),
        field_rights: serde_json::to_value(&r.field_rights).unwrap_or_default(),
        key: r.key,
        name_zh: r.name_zh,
        name_en: r.name_en,
        builtin: r.builtin,
    }
}
