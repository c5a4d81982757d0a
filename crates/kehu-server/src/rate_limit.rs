//! A general request rate limit per client: each credential (bearer token
//! or session cookie, by a hash of it) and otherwise each address gets
//! `per_minute` requests in a fixed one-minute window; beyond that, 429
//! with `Retry-After` until the window ends. The login and the public web
//! forms have their own, stricter limits. `KEHU_RATE_LIMIT` sets it
//! (`off` turns it off, e.g. for load tests).

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Requests a client may make per minute unless configured.
pub const DEFAULT_PER_MINUTE: u32 = 6000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_minute: u32,
}

impl RateLimit {
    /// `KEHU_RATE_LIMIT`: requests per minute per client, or `off`.
    pub fn from_env() -> Result<Option<RateLimit>, String> {
        match std::env::var("KEHU_RATE_LIMIT") {
            Err(_) => Ok(Some(RateLimit {
                per_minute: DEFAULT_PER_MINUTE,
            })),
            Ok(v) if v.trim() == "off" => Ok(None),
            Ok(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|&n| n >= 1)
                .map(|per_minute| Some(RateLimit { per_minute }))
                .ok_or_else(|| format!("KEHU_RATE_LIMIT: a whole number ≥ 1 or off, got {v:?}")),
        }
    }
}

/// The counters of the current window.
#[derive(Clone)]
pub struct Limiter {
    limit: RateLimit,
    window: Arc<Mutex<Window>>,
}

struct Window {
    started: Instant,
    counts: HashMap<[u8; 16], u32>,
}

const WINDOW: Duration = Duration::from_secs(60);

impl Limiter {
    pub fn new(limit: RateLimit) -> Limiter {
        Limiter {
            limit,
            window: Arc::new(Mutex::new(Window {
                started: Instant::now(),
                counts: HashMap::new(),
            })),
        }
    }

    /// Counts a request of `client`; the seconds to wait when over the limit.
    pub fn check(&self, client: &[u8]) -> Result<(), u64> {
        let key: [u8; 16] = {
            use sha2::Digest;
            let h = sha2::Sha256::digest(client);
            let mut k = [0u8; 16];
            k.copy_from_slice(&h[..16]);
            k
        };
        let Ok(mut w) = self.window.lock() else {
            return Ok(());
        };
        if w.started.elapsed() >= WINDOW {
            w.started = Instant::now();
            w.counts.clear();
        }
        let n = w.counts.entry(key).or_insert(0);
        *n += 1;
        if *n > self.limit.per_minute {
            let left = WINDOW.saturating_sub(w.started.elapsed());
            return Err(left.as_secs().max(1));
        }
        Ok(())
    }
}

/// Who a request comes from: its credential if it has one, else its address.
fn client_of(req: &Request) -> Vec<u8> {
    let headers = req.headers();
    if let Some(auth) = headers.get(axum::http::header::AUTHORIZATION) {
        return auth.as_bytes().to_vec();
    }
    if let Some(session) = crate::auth::cookie_value(headers, crate::auth::SESSION_COOKIE) {
        return session.into_bytes();
    }
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|axum::extract::ConnectInfo(a)| a.ip().to_string().into_bytes())
        .unwrap_or_default()
}

pub async fn limit(State(limiter): State<Limiter>, req: Request, next: Next) -> Response {
    match limiter.check(&client_of(&req)) {
        Ok(()) => next.run(req).await,
        Err(retry_after_secs) => ApiError::TooManyRequests { retry_after_secs }.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_has_its_own_budget() {
        let l = Limiter::new(RateLimit { per_minute: 3 });
        for _ in 0..3 {
            assert!(l.check(b"token-a").is_ok());
        }
        let wait = l.check(b"token-a").expect_err("over the limit");
        assert!((1..=60).contains(&wait));
        assert!(l.check(b"token-b").is_ok(), "another client is not held up");
    }
}
