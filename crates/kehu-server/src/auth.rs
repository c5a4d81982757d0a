//! Who is calling: Argon2id passwords, server-side sessions in cookies,
//! bearer API tokens, CSRF tokens for cookie sessions, login rate limiting.

use crate::error::ApiError;
use crate::AppState;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use chrono::{Duration, Utc};
use kehu_core::role::{Actor, Permission, Scope};
use kehu_core::Reason;
use kehu_store::model::User;
use kehu_store::{ScopeFilter, StoreError};
use rand::RngCore;

pub const SESSION_COOKIE: &str = "kehu_session";
/// Sessions end after 12 hours, or after 2 hours without a request.
pub const SESSION_ABSOLUTE: Duration = Duration::hours(12);
pub const SESSION_IDLE: Duration = Duration::hours(2);
/// Login backoff: this many failures per account or per client address in
/// the window lock further attempts until the window has passed.
pub const LOGIN_MAX_FAILURES: i64 = 5;
pub const LOGIN_WINDOW: Duration = Duration::minutes(15);
pub const PASSWORD_MIN_LEN: usize = 10;

fn argon2() -> Argon2<'static> {
    // OWASP ASVS: Argon2id, m = 19 MiB, t = 2, p = 1.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("hashing: {e}")))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// A hash to verify against when the user does not exist, so that timing
/// does not reveal which usernames exist.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("kehu-dummy-password").unwrap_or_default())
}

/// Password rules: length, not only digits, not the username.
pub fn check_password_policy(password: &str, username: &str) -> Result<(), Reason> {
    let n = password.chars().count();
    if n < PASSWORD_MIN_LEN {
        return Err(Reason::Other {
            zh: format!("密码至少 {PASSWORD_MIN_LEN} 个字符"),
            en: format!("a password has at least {PASSWORD_MIN_LEN} characters"),
        });
    }
    if n > 128 {
        return Err(Reason::TooLong { max: 128 });
    }
    let lower = password.to_lowercase();
    let first = lower.chars().next();
    if password.chars().all(|c| c.is_ascii_digit())
        || lower.contains(&username.to_lowercase())
        || lower.chars().all(|c| Some(c) == first)
        || COMMON_PASSWORDS.contains(&lower.as_str())
    {
        return Err(Reason::Other {
            zh: "密码太简单：不能全是数字、同一个字符、常见密码或包含用户名".into(),
            en: "too weak: all digits, one repeated character, a common password or contains the username".into(),
        });
    }
    Ok(())
}

/// Passwords of 10+ characters at the top of leaked-password lists.
const COMMON_PASSWORDS: &[&str] = &[
    "password123",
    "password1234",
    "passw0rd123",
    "qwertyuiop",
    "qwerty12345",
    "qwerty123456",
    "1q2w3e4r5t",
    "1qaz2wsx3edc",
    "abcdefghij",
    "abc1234567",
    "a123456789",
    "woaini1314",
    "iloveyou123",
    "admin12345",
    "administrator",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_policy() {
        let cases: &[(&str, &str, bool)] = &[
            ("a good long passphrase", "wang", true),
            ("短密码abc", "wang", false),
            (&"长".repeat(129), "wang", false),
            (&"x1".repeat(64), "wang", true),
            ("12345678901234", "wang", false),
            ("my-wang-password", "wang", false),
            ("MY-WANG-PASSWORD", "wang", false),
            ("zzzzzzzzzzzz", "wang", false),
            ("QwertyUIOP", "wang", false),
            ("woaini1314", "li", false),
            ("woaini1314!x", "li", true),
        ];
        for (password, username, ok) in cases {
            assert_eq!(
                check_password_policy(password, username).is_ok(),
                *ok,
                "{password} for {username}"
            );
        }
    }
}

/// 32 random bytes, URL-safe base64.
pub fn random_token() -> String {
    use base64::Engine;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A readable one-time password for first run and resets.
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut b = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter()
        .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
        .collect()
}

pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

pub fn session_cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        SESSION_ABSOLUTE.num_seconds()
    )
}

pub fn clear_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    Session {
        token: String,
        csrf_token: String,
    },
    /// An API token (its id).
    Bearer {
        token_id: i64,
    },
}

/// The signed-in caller: user, role grants, and credential.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub actor: Actor,
    pub credential: Credential,
    /// The peer address of the request (for the audit log).
    pub client: Option<String>,
    /// A cookie session's request that another site's page set off (the
    /// browser's `Sec-Fetch-Site`): it may not reveal personal values in
    /// clear, which a link elsewhere could otherwise do in the user's name.
    pub cross_site: bool,
}

impl CurrentUser {
    /// Fails with 403 unless the role grants `p` at all.
    pub fn require(&self, p: Permission) -> Result<Scope, ApiError> {
        self.actor.grants.scope(p).ok_or(ApiError::Forbidden)
    }

    /// The list filter for `p`'s scope.
    pub fn scope_filter(&self, p: Permission) -> Result<ScopeFilter, ApiError> {
        Ok(match self.require(p)? {
            Scope::All => ScopeFilter::All,
            Scope::Team => ScopeFilter::Team {
                team: self.actor.team.clone(),
                user_id: self.user.id,
            },
            Scope::Own => ScopeFilter::Own {
                user_id: self.user.id,
            },
        })
    }

    pub fn csrf_token(&self) -> Option<&str> {
        match &self.credential {
            Credential::Session { csrf_token, .. } => Some(csrf_token),
            Credential::Bearer { .. } => None,
        }
    }
}

/// Resolves the caller from a bearer token or the session cookie; `None` if neither is valid.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<CurrentUser>, ApiError> {
    let now = Utc::now();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let (au, credential) = if let Some(token) = bearer {
        match state.store.api_token_user(token).await {
            Ok((au, token_id)) => (au, Credential::Bearer { token_id }),
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    } else if let Some(token) = cookie_value(headers, SESSION_COOKIE) {
        let session = match state.store.session(&token).await {
            Ok(s) => s,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if session.expires_at < now || session.last_seen_at + SESSION_IDLE < now {
            state.store.delete_session(&token).await?;
            return Ok(None);
        }
        // Touch at most once a minute: keeps the idle timer honest without a write per request.
        if now - session.last_seen_at > Duration::minutes(1) {
            state.store.touch_session(&token, now).await?;
        }
        let au = match state.store.auth_user(session.user_id).await {
            Ok(u) => u,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        (
            au,
            Credential::Session {
                token,
                csrf_token: session.csrf_token,
            },
        )
    } else {
        return Ok(None);
    };
    if !au.user.active {
        return Ok(None);
    }
    let actor = Actor {
        user_id: au.user.id,
        team: au.user.team.clone(),
        grants: au.grants,
        fields: au.field_rights,
    };
    let cross_site = matches!(credential, Credential::Session { .. })
        && headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|site| !matches!(site, "same-origin" | "none"));
    Ok(Some(CurrentUser {
        user: au.user,
        actor,
        credential,
        client: None,
        cross_site,
    }))
}

/// API extractor: 401 without credentials; for cookie sessions, unsafe
/// methods need the `X-CSRF-Token` header.
impl<S> FromRequestParts<S> for CurrentUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let mut user = authenticate(&state, &parts.headers)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        user.client = crate::client_addr::client_of(parts);
        if let Credential::Session { csrf_token, .. } = &user.credential {
            let unsafe_method =
                !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok());
            if unsafe_method && !sent.is_some_and(|s| constant_time_eq(s, csrf_token)) {
                state.audit(
                    Some(&user),
                    crate::audit::CSRF_REFUSED,
                    request_target(parts),
                    serde_json::json!({}),
                );
                return Err(ApiError::Csrf);
            }
        }
        Ok(user)
    }
}

/// `METHOD /path` as the client sent it (before any router nesting).
pub fn request_target(parts: &Parts) -> String {
    let path = parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| parts.uri.path().to_string(), |u| u.path().to_string());
    format!("{} {path}", parts.method)
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Checks the password and opens a new session (a fresh token every login).
/// Returns (session token, csrf token, user). Failures are counted per
/// account and per client address; too many lock both for a while.
pub async fn login(
    state: &AppState,
    username: &str,
    password: &str,
    client: &str,
) -> Result<(String, String, User), ApiError> {
    let now = Utc::now();
    let since = now - LOGIN_WINDOW;
    let user_key = format!("user:{}", username.trim().to_lowercase());
    let ip_key = format!("ip:{client}");
    for key in [&user_key, &ip_key] {
        let failures = state.store.login_failures_since(key, since).await?;
        // Per address, allow more: several people may sit behind one NAT.
        let limit = if key.starts_with("ip:") {
            LOGIN_MAX_FAILURES * 4
        } else {
            LOGIN_MAX_FAILURES
        };
        if failures >= limit {
            state.auditor.record(kehu_store::audit::NewAudit {
                client: Some(client.to_string()),
                ..crate::audit::by(
                    None,
                    "login_locked",
                    crate::audit::login_target(username),
                    serde_json::json!({}),
                )
            });
            return Err(ApiError::TooManyRequests {
                retry_after_secs: LOGIN_WINDOW.num_seconds() as u64,
            });
        }
    }
    let found = state.store.auth_user_by_name(username.trim()).await;
    let ok = match &found {
        Ok(au) => verify_password(password, &au.password_hash) && au.user.active,
        Err(StoreError::NotFound) => {
            verify_password(password, dummy_hash());
            false
        }
        Err(e) => return Err(ApiError::Internal(e.to_string())),
    };
    if !ok {
        state.auditor.record(kehu_store::audit::NewAudit {
            client: Some(client.to_string()),
            ..crate::audit::by(
                found.as_ref().ok().map(|au| au.user.id),
                "login_failed",
                found.as_ref().map_or_else(
                    |_| crate::audit::login_target(username),
                    |au| crate::audit::user_target(au.user.id),
                ),
                serde_json::json!({}),
            )
        });
        state.store.record_login_failure(&user_key, now).await?;
        state.store.record_login_failure(&ip_key, now).await?;
        return Err(ApiError::BadRequest {
            zh: "用户名或密码错误".into(),
            en: "wrong username or password".into(),
        });
    }
    let au = found.map_err(ApiError::from)?;
    state.store.clear_login_failures(&user_key).await?;
    let token = random_token();
    let csrf = random_token();
    state
        .store
        .create_session(&token, au.user.id, &csrf, now + SESSION_ABSOLUTE)
        .await?;
    state.auditor.record(kehu_store::audit::NewAudit {
        client: Some(client.to_string()),
        ..crate::audit::by(
            Some(au.user.id),
            "login",
            crate::audit::user_target(au.user.id),
            serde_json::json!({}),
        )
    });
    Ok((token, csrf, au.user))
}
