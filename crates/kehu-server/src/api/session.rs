//! POST/DELETE/GET /api/v1/session: sign in and out with a session cookie.

use super::dto::{LoginRequest, SessionOut, UserOut};
use super::ApiJson;
use crate::auth::{
    clear_session_cookie, login as do_login, session_cookie, Credential, CurrentUser,
};
use crate::client_addr::ClientAddr;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

fn permissions(user: &CurrentUser) -> Vec<String> {
    user.actor
        .grants
        .0
        .iter()
        .map(|(p, s)| {
            format!(
                "{}:{}",
                serde_json::to_value(p)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// Signs in; sets the `kehu_session` cookie (HttpOnly, SameSite=Lax) and
/// returns the CSRF token to send as `X-CSRF-Token`.
#[utoipa::path(post, path = "/api/v1/session", tag = "session", request_body = LoginRequest,
    responses((status = 200, body = SessionOut), (status = 400, description = "wrong username or password"), (status = 429, description = "too many failures")))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let (token, csrf, _user) = do_login(&state, &body.username, &body.password, &client).await?;
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        header::COOKIE,
        format!("{}={token}", crate::auth::SESSION_COOKIE)
            .parse()
            .map_err(|_| ApiError::Internal("cookie".into()))?,
    );
    let current = crate::auth::authenticate(&state, &headers)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let out = SessionOut {
        permissions: permissions(&current),
        user: UserOut::from(current.user.clone()),
        csrf_token: Some(csrf),
    };
    let mut r = Json(out).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&token, state.settings.secure_cookies)
            .parse()
            .map_err(|_| ApiError::Internal("cookie".into()))?,
    );
    Ok(r)
}

#[utoipa::path(get, path = "/api/v1/session", tag = "session", responses((status = 200, body = SessionOut), (status = 401)))]
pub async fn current(user: CurrentUser) -> Json<SessionOut> {
    Json(SessionOut {
        permissions: permissions(&user),
        csrf_token: user.csrf_token().map(String::from),
        user: UserOut::from(user.user),
    })
}

#[utoipa::path(delete, path = "/api/v1/session", tag = "session", responses((status = 204), (status = 401)))]
pub async fn logout(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response, ApiError> {
    if let Credential::Session { token, .. } = &user.credential {
        state.store.delete_session(token).await?;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        clear_session_cookie()
            .parse()
            .map_err(|_| ApiError::Internal("cookie".into()))?,
    );
    Ok(r)
}
