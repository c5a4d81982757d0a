//! The signed-in user's own password, notification e-mail address and API tokens.

use super::forms::{error_map, FormData};
use super::Page;
use crate::api::dto::ApiTokenCreated;
use crate::api::users::tokens;
use crate::auth::{check_password_policy, hash_password, verify_password, Credential};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use kehu_core::{Reason, ValidationErrors};
use minijinja::context;
use std::collections::BTreeMap;

async fn render(
    state: &AppState,
    page: &Page,
    errors: BTreeMap<String, String>,
    done: bool,
) -> Response {
    render_with_token(state, page, errors, done, None).await
}

/// The page, with a token just made shown this once.
async fn render_with_token(
    state: &AppState,
    page: &Page,
    errors: BTreeMap<String, String>,
    done: bool,
    new_token: Option<ApiTokenCreated>,
) -> Response {
    let failed = !errors.is_empty();
    let id = page.user.user.id;
    let (email, tokens) = match (
        state.store.user_email(id).await,
        tokens::list(state, &page.user, id).await,
    ) {
        (Ok(email), Ok(tokens)) => (email, tokens),
        (Err(e), _) => return page.error_page(state, e.into()),
        (_, Err(e)) => return page.error_page(state, e),
    };
    let mut r = page.render(
        state,
        "account.html",
        "",
        context! { errors, done, email, tokens, new_token,
        forced => page.user.user.must_change_password && !done },
    );
    if failed {
        *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    r
}

/// A refused change: its field errors on the page, anything else as an error page.
async fn refused(state: &AppState, page: &Page, e: ApiError) -> Response {
    match e {
        ApiError::Validation(e) => render(state, page, error_map(&e, page.lang), false).await,
        e => page.error_page(state, e),
    }
}

pub async fn password_form(State(state): State<AppState>, page: Page) -> Response {
    render(&state, &page, BTreeMap::new(), false).await
}

/// POST /account/email: where notifications are also e-mailed (blank: inbox only).
pub async fn set_email(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let id = page.user.user.id;
    match crate::deliveries::set_email(&state, &page.user, id, form.get("email")).await {
        Ok(_) => Ok(page.redirect("/account/password")),
        Err(e) => Ok(refused(&state, &page, e).await),
    }
}

/// POST /account/tokens: a new API token, shown once on the page.
pub async fn create_token(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let id = page.user.user.id;
    match tokens::create(&state, &page.user, id, form.get("name").unwrap_or("")).await {
        Ok(made) => Ok(render_with_token(&state, &page, BTreeMap::new(), false, Some(made)).await),
        Err(e) => Ok(refused(&state, &page, e).await),
    }
}

/// POST /account/tokens/{id}/revoke
pub async fn revoke_token(
    State(state): State<AppState>,
    page: Page,
    Path(token_id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    match tokens::revoke(&state, &page.user, page.user.user.id, token_id).await {
        Ok(_) => Ok(page.redirect("/account/password")),
        Err(e) => Ok(refused(&state, &page, e).await),
    }
}

pub async fn change_password(
    State(state): State<AppState>,
    mut page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let mut e = ValidationErrors::default();
    let au = state.store.auth_user(page.user.user.id).await?;
    if !verify_password(
        form.get("current_password").unwrap_or(""),
        &au.password_hash,
    ) {
        e.push(
            "current_password",
            Reason::Other {
                zh: "当前密码不正确".into(),
                en: "the current password is wrong".into(),
            },
        );
    }
    let new = form.get("new_password").unwrap_or("");
    e.check(
        "new_password",
        check_password_policy(new, &au.user.username),
    );
    if form.get("confirm_password").unwrap_or("") != new {
        e.push(
            "confirm_password",
            Reason::Other {
                zh: "两次输入的新密码不一致".into(),
                en: "the two new passwords differ".into(),
            },
        );
    }
    if !e.is_empty() {
        return Ok(render(&state, &page, error_map(&e, page.lang), false).await);
    }
    let keep = match &page.user.credential {
        Credential::Session { token, .. } => Some(token.clone()),
        Credential::Bearer { .. } => None,
    };
    state
        .store
        .set_password(au.user.id, &hash_password(new)?, false, keep.as_deref())
        .await?;
    page.user.user.must_change_password = false;
    Ok(render(&state, &page, BTreeMap::new(), true).await)
}
