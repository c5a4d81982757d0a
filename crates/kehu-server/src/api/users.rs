//! /api/v1/users: accounts and roles, for admins; each user may change their own password.

use super::dto::{
    ApiTokenCreate, ApiTokenCreated, ApiTokenOut, Page, PasswordChange, UserCreate, UserCreated,
    UserOut, UserUpdate,
};
use super::{conflict_status, expected_version, split_version, with_etag, ApiJson, QueryPairs};
use crate::auth::{
    check_password_policy, hash_password, random_password, verify_password, Credential, CurrentUser,
};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kehu_core::query::{parse_list_query, USER_FIELDS};
use kehu_core::role::Permission;
use kehu_core::text::{parse_optional_text, parse_text};
use kehu_core::{Reason, ValidationErrors};
use kehu_store::{NewUser, Store, UserChange};
use std::sync::LazyLock;

static USERNAME_RE: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[a-zA-Z0-9_.@-]{2,40}$").expect("username regex"));

/// Roles are stored; a key must name one of them.
async fn check_role(store: &Store, role: &str) -> Result<String, Reason> {
    let roles = store.roles().await.map_err(|e| Reason::Other {
        zh: e.to_string(),
        en: e.to_string(),
    })?;
    roles
        .iter()
        .find(|r| r.key == role || r.name_zh == role)
        .map(|r| r.key.clone())
        .ok_or_else(|| Reason::UnknownOption {
            allowed: roles.iter().map(|r| r.key.clone()).collect(),
        })
}

/// Creates a user after checking every field; shared with the CLI.
pub async fn create_user(store: &Store, body: UserCreate) -> Result<UserCreated, ApiError> {
    let mut e = ValidationErrors::default();
    let username = body.username.trim().to_string();
    if !USERNAME_RE.is_match(&username) {
        e.push(
            "username",
            Reason::Other {
                zh: "用户名为 2–40 位字母、数字或 _ . @ -".into(),
                en: "2–40 letters, digits or _ . @ -".into(),
            },
        );
    }
    let display_name = e
        .check(
            "display_name",
            parse_optional_text(body.display_name.as_deref(), 40),
        )
        .flatten()
        .unwrap_or_else(|| username.clone());
    let team = e
        .check("team", parse_optional_text(body.team.as_deref(), 40))
        .flatten();
    let role = match check_role(store, &body.role).await {
        Ok(r) => Some(r),
        Err(r) => {
            e.push("role", r);
            None
        }
    };
    let (password, generated) = match body.password {
        Some(p) => (p, false),
        None => (random_password(), true),
    };
    e.check("password", check_password_policy(&password, &username));
    e.into_result()?;
    let hash = hash_password(&password)?;
    let user = store
        .insert_user(&NewUser {
            username: &username,
            display_name: &display_name,
            password_hash: &hash,
            role: role.as_deref().unwrap_or("sales_rep"),
            team: team.as_deref(),
            must_change_password: generated,
        })
        .await?;
    Ok(UserCreated {
        user: user.into(),
        initial_password: generated.then_some(password),
    })
}

#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(("q" = Option<String>, Query), ("sort" = Option<String>, Query), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<UserOut>), (status = 403)))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    q: QueryPairs,
) -> Result<Json<Page<UserOut>>, ApiError> {
    user.require(Permission::UserAdmin)?;
    let query = parse_list_query(&q.0, USER_FIELDS, &[], "username")?;
    Ok(Json(Page::from_store(
        state.store.list_users(&query).await?,
        UserOut::from,
    )))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = UserCreate, responses((status = 201, body = UserCreated), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<UserCreate>,
) -> Result<Response, ApiError> {
    user.require(Permission::UserAdmin)?;
    let created = create_user(&state.store, body).await?;
    state.audit(
        Some(&user),
        "user.create",
        crate::audit::user_target(created.user.id),
        serde_json::json!({"username": created.user.username, "role": created.user.role, "team": created.user.team}),
    );
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), responses((status = 200, body = UserOut), (status = 404)))]
pub async fn read(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    if id != user.user.id {
        user.require(Permission::UserAdmin)?;
    }
    let u = state.store.user(id).await?;
    Ok(with_etag(u.version, UserOut::from(u)))
}

#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), request_body = UserUpdate,
    responses((status = 200, body = UserOut), (status = 409), (status = 412), (status = 422, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    ApiJson(mut patch): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    user.require(Permission::UserAdmin)?;
    let current = state.store.user(id).await?;
    let expected = expected_version(&headers, split_version(&mut patch)?)?;
    let change: UserUpdate = super::parse_json(&serde_json::to_vec(&patch).unwrap_or_default())?;
    let mut e = ValidationErrors::default();
    let display_name = match &change.display_name {
        Some(d) => e
            .check("display_name", parse_text(d, 40))
            .unwrap_or_default(),
        None => current.display_name.clone(),
    };
    let role = match &change.role {
        Some(r) => match check_role(&state.store, r).await {
            Ok(r) => r,
            Err(reason) => {
                e.push("role", reason);
                current.role.clone()
            }
        },
        None => current.role.clone(),
    };
    let team = if patch.get("team").is_some() {
        e.check("team", parse_optional_text(change.team.as_deref(), 40))
            .flatten()
    } else {
        current.team.clone()
    };
    let active = change.active.unwrap_or(current.active);
    if id == user.user.id && (!active || role != current.role) {
        e.push(
            "role",
            Reason::Other {
                zh: "不能停用自己或修改自己的角色".into(),
                en: "you cannot disable yourself or change your own role".into(),
            },
        );
    }
    e.into_result()?;
    let u = state
        .store
        .update_user(
            id,
            expected.version,
            &UserChange {
                display_name: &display_name,
                role: &role,
                team: team.as_deref(),
                active,
            },
        )
        .await
        .map_err(|e| conflict_status(e.into(), &expected))?;
    // Roles, teams and activation are permission changes.
    state.audit(
        Some(&user),
        "user.update",
        crate::audit::user_target(u.id),
        serde_json::json!({"changed": crate::audit::changes(&UserOut::from(current.clone()), &UserOut::from(u.clone()))}),
    );
    Ok(with_etag(u.version, UserOut::from(u)))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path), ("version" = Option<i64>, Query)), responses((status = 204), (status = 404), (status = 428)))]
pub async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<Response, ApiError> {
    user.require(Permission::UserAdmin)?;
    if id == user.user.id {
        return Err(ApiError::field(
            "id",
            Reason::Other {
                zh: "不能删除自己".into(),
                en: "you cannot delete yourself".into(),
            },
        ));
    }
    let expected = expected_version(&headers, q.take("version").and_then(|v| v.parse().ok()))?;
    state
        .store
        .delete_user(id, expected.version)
        .await
        .map_err(|e| conflict_status(e.into(), &expected))?;
    state.audit(
        Some(&user),
        "user.delete",
        crate::audit::user_target(id),
        serde_json::json!({}),
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Sets a password: one's own (with the current password) or anyone's (admins).
/// Every other session of that user ends.
#[utoipa::path(put, path = "/api/v1/users/{id}/password", tag = "users", params(("id" = i64, Path)), request_body = PasswordChange,
    responses((status = 204), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn set_password(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<Response, ApiError> {
    let own = id == user.user.id;
    if own {
        let au = state.store.auth_user(id).await?;
        if !body
            .current_password
            .as_deref()
            .is_some_and(|p| verify_password(p, &au.password_hash))
        {
            return Err(ApiError::field(
                "current_password",
                Reason::Other {
                    zh: "当前密码不正确".into(),
                    en: "the current password is wrong".into(),
                },
            ));
        }
    } else {
        user.require(Permission::UserAdmin)?;
    }
    let target = state.store.user(id).await?;
    check_password_policy(&body.new_password, &target.username)
        .map_err(|r| ApiError::field("new_password", r))?;
    let hash = hash_password(&body.new_password)?;
    let keep = match (&user.credential, own) {
        (Credential::Session { token, .. }, true) => Some(token.as_str()),
        _ => None,
    };
    // An admin's reset makes the user choose a new one at next login.
    state.store.set_password(id, &hash, !own, keep).await?;
    let action = if own {
        "password.change"
    } else {
        "password.reset"
    };
    state.audit(
        Some(&user),
        action,
        crate::audit::user_target(id),
        serde_json::json!({}),
    );
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// API tokens are one's own: listed and revoked by their user or a user
/// admin, made only by their user from a signed-in session — a token
/// cannot mint more tokens, so a leaked one can be revoked for good.
pub mod tokens {
    use super::*;

    fn may_manage(user: &CurrentUser, id: i64) -> Result<(), ApiError> {
        if id != user.user.id {
            user.require(Permission::UserAdmin)?;
        }
        Ok(())
    }

    pub async fn list(
        state: &AppState,
        user: &CurrentUser,
        id: i64,
    ) -> Result<Vec<ApiTokenOut>, ApiError> {
        may_manage(user, id)?;
        state.store.user(id).await?;
        Ok(state
            .store
            .api_tokens(id)
            .await?
            .into_iter()
            .map(ApiTokenOut::from)
            .collect())
    }

    pub async fn create(
        state: &AppState,
        user: &CurrentUser,
        id: i64,
        name: &str,
    ) -> Result<ApiTokenCreated, ApiError> {
        if id != user.user.id {
            return Err(ApiError::Refused {
                zh: "只能为自己生成 API 令牌".into(),
                en: "API tokens are made by their own user only".into(),
            });
        }
        if !matches!(user.credential, Credential::Session { .. }) {
            return Err(ApiError::Refused {
                zh: "请登录后生成 API 令牌：令牌不能生成令牌".into(),
                en: "make API tokens signed in: a token cannot make tokens".into(),
            });
        }
        let name = parse_text(name, 80).map_err(|r| ApiError::field("name", r))?;
        let token = crate::auth::random_token();
        let info = state.store.create_api_token(id, &name, &token).await?;
        state.audit(
            Some(user),
            "token.create",
            crate::audit::user_target(id),
            serde_json::json!({"token": info.id, "name": name}),
        );
        Ok(ApiTokenCreated {
            info: info.into(),
            token,
        })
    }

    pub async fn revoke(
        state: &AppState,
        user: &CurrentUser,
        id: i64,
        token_id: i64,
    ) -> Result<ApiTokenOut, ApiError> {
        may_manage(user, id)?;
        if user.credential == (Credential::Bearer { token_id }) {
            // Signed with the token itself: the caller would lock itself out.
            return Err(ApiError::Conflict {
                zh: "本次请求正使用这个令牌；请登录后或用另一个令牌撤销它".into(),
                en: "this request is signed with that token; revoke it signed in or with another token".into(),
            });
        }
        let t = state.store.revoke_api_token(id, token_id).await?;
        state.audit(
            Some(user),
            "token.revoke",
            crate::audit::user_target(id),
            serde_json::json!({"token": token_id, "name": t.name}),
        );
        Ok(t.into())
    }
}

/// A user's API tokens, newest first, revoked ones too (their own, or anyone's for user admins).
#[utoipa::path(get, path = "/api/v1/users/{id}/tokens", tag = "users", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<ApiTokenOut>), (status = 403), (status = 404)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Vec<ApiTokenOut>>, ApiError> {
    Ok(Json(tokens::list(&state, &user, id).await?))
}

/// A new API token for oneself, made from a signed-in session (not with a
/// token); the answer holds the token this once. Audited.
#[utoipa::path(post, path = "/api/v1/users/{id}/tokens", tag = "users", params(("id" = i64, Path)), request_body = ApiTokenCreate,
    responses((status = 201, body = ApiTokenCreated), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn create_token(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<ApiTokenCreate>,
) -> Result<Response, ApiError> {
    let created = tokens::create(&state, &user, id, &body.name).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Revokes a token at once (its user or a user admin; not with the token
/// itself). Audited.
#[utoipa::path(delete, path = "/api/v1/users/{id}/tokens/{token_id}", tag = "users",
    params(("id" = i64, Path), ("token_id" = i64, Path)),
    responses((status = 200, body = ApiTokenOut), (status = 403), (status = 404),
              (status = 409, description = "the request is signed with that token", content_type = "application/problem+json")))]
pub async fn revoke_token(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, token_id)): Path<(i64, i64)>,
) -> Result<Json<ApiTokenOut>, ApiError> {
    Ok(Json(tokens::revoke(&state, &user, id, token_id).await?))
}
