//! Roles as admins edit them: permissions with their scopes, rights over
//! personal fields, new roles (copied from another or empty) and deleting
//! unused ones. Every change is audited with before and after, and takes
//! effect on the next request (roles are read with each request's user).

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::AppState;
use kehu_core::privacy::FieldRights;
use kehu_core::role::{Grants, Permission};
use kehu_core::{Reason, ValidationErrors};
use kehu_store::model::Role;
use serde_json::json;
use std::collections::BTreeMap;

async fn role_of(state: &AppState, key: &str) -> Result<Role, ApiError> {
    state
        .store
        .roles()
        .await?
        .into_iter()
        .find(|r| r.key == key)
        .ok_or(ApiError::NotFound)
}

/// Replaces a role's rights over personal fields (every key named; the
/// others become hidden).
pub async fn set_field_rights(
    state: &AppState,
    user: &CurrentUser,
    role: &str,
    raw: &BTreeMap<String, String>,
) -> Result<FieldRights, ApiError> {
    user.require(Permission::UserAdmin)?;
    role_of(state, role).await?;
    let custom: Vec<String> = state
        .store
        .custom_field_defs()
        .await?
        .into_iter()
        .map(|d| d.key)
        .collect();
    let rights = FieldRights::parse(raw, &custom)?;
    let before = state.store.set_field_rights(role, &rights).await?;
    state.audit(
        Some(user),
        "role.field_rights",
        format!("role:{role}"),
        json!({"before": before, "after": rights}),
    );
    Ok(rights)
}

/// Replaces a role's permissions (`permission: own | team | all | none`;
/// those not named are denied). Admins cannot take user administration
/// away from their own role (nobody could give it back).
pub async fn set_grants(
    state: &AppState,
    user: &CurrentUser,
    role: &str,
    raw: &BTreeMap<String, String>,
) -> Result<Grants, ApiError> {
    user.require(Permission::UserAdmin)?;
    role_of(state, role).await?;
    let grants = Grants::parse(raw)?;
    if role == user.user.role && !grants.has(Permission::UserAdmin) {
        return Err(ApiError::Refused {
            zh: "不能取消自己所属角色的“用户与角色”权限".into(),
            en: "you cannot take user administration away from your own role".into(),
        });
    }
    let before = state.store.set_grants(role, &grants).await?;
    state.audit(
        Some(user),
        "role.grants",
        format!("role:{role}"),
        json!({"before": before, "after": grants}),
    );
    Ok(grants)
}

/// A new role: its key, names, and optionally the role it starts as a copy of.
pub async fn create(
    state: &AppState,
    user: &CurrentUser,
    key: &str,
    name_zh: &str,
    name_en: Option<&str>,
    copy_from: Option<&str>,
) -> Result<Role, ApiError> {
    user.require(Permission::UserAdmin)?;
    let mut e = ValidationErrors::default();
    let key = e.check("key", kehu_core::custom_field::parse_key(key));
    let name_zh = e.check("name_zh", kehu_core::text::parse_text(name_zh, 20));
    let name_en = match name_en.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => e.check("name_en", kehu_core::text::parse_text(n, 40)),
        None => name_zh.clone(),
    };
    let template = match copy_from.map(str::trim).filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => match role_of(state, c).await {
            Ok(r) => Some(r),
            Err(ApiError::NotFound) => {
                e.push(
                    "copy_from",
                    Reason::UnknownOption {
                        allowed: state
                            .store
                            .roles()
                            .await?
                            .into_iter()
                            .map(|r| r.key)
                            .collect(),
                    },
                );
                None
            }
            Err(other) => return Err(other),
        },
    };
    e.into_result()?;
    let (Some(key), Some(name_zh), Some(name_en)) = (key, name_zh, name_en) else {
        return Err(ApiError::Internal("checked above".into()));
    };
    let role = Role {
        key,
        name_zh,
        name_en,
        grants: template
            .as_ref()
            .map(|t| t.grants.clone())
            .unwrap_or_default(),
        field_rights: template.map(|t| t.field_rights).unwrap_or_default(),
        builtin: false,
    };
    state.store.insert_role(&role).await?;
    state.audit(
        Some(user),
        "role.create",
        format!("role:{}", role.key),
        json!({"name": role.name_zh, "copy_from": copy_from, "grants": role.grants}),
    );
    Ok(role)
}

/// Deletes a role of the admins' own making that no user holds.
pub async fn delete(state: &AppState, user: &CurrentUser, key: &str) -> Result<(), ApiError> {
    user.require(Permission::UserAdmin)?;
    let role = role_of(state, key).await?;
    state.store.delete_role(key).await?;
    state.audit(
        Some(user),
        "role.delete",
        format!("role:{key}"),
        json!({"name": role.name_zh, "grants": role.grants}),
    );
    Ok(())
}
