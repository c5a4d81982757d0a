//! A general request rate limit per client: each credential (bearer token
//! or session cookie, by a hash of it) gets `per_minute` requests in a
//! fixed one-minute window, and each address — whatever credentials its
//! requests carry — `ADDRESS_FACTOR` times that (several people may share
//! an office's address; a client cannot escape its budget by sending a new
//! made-up token with every request). Beyond either, 429 with
//! `Retry-After` until the window ends. The login and the public web forms
//! have their own, stricter limits. `KEHU_RATE_LIMIT` sets it (`off` turns
//! it off, e.g. for load tests).

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Requests a client may make per minute unless configured.
pub const DEFAULT_PER_MINUTE: u32 = 6000;

/// An address's budget, in credentials' budgets.
pub const ADDRESS_FACTOR: u32 = 10;

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

    /// Counts a request from `address` carrying `credential` (if any); the
    /// seconds to wait when over either budget.
    pub fn check(&self, address: &[u8], credential: Option<&[u8]>) -> Result<(), u64> {
        let key = |kind: u8, client: &[u8]| -> [u8; 16] {
            use sha2::Digest;
            let h = sha2::Sha256::new()
                .chain_update([kind])
                .chain_update(client)
                .finalize();
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
        let per_address = self.limit.per_minute.saturating_mul(ADDRESS_FACTOR);
        let budgets = [(key(b'a', address), per_address)]
            .into_iter()
            .chain(credential.map(|c| (key(b'c', c), self.limit.per_minute)));
        for (k, budget) in budgets {
            let n = w.counts.entry(k).or_insert(0);
            *n += 1;
            if *n > budget {
                let left = WINDOW.saturating_sub(w.started.elapsed());
                return Err(left.as_secs().max(1));
            }
        }
        Ok(())
    }
}

/// Where a request comes from, and the credential it carries if any.
fn client_of(req: &Request) -> (Vec<u8>, Option<Vec<u8>>) {
    let headers = req.headers();
    let credential = headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|auth| auth.as_bytes().to_vec())
        .or_else(|| {
            crate::auth::cookie_value(headers, crate::auth::SESSION_COOKIE).map(String::into_bytes)
        });
    let address = req
        .extensions()
        .get::<crate::client_addr::ClientIp>()
        .map(|c| c.0.to_string().into_bytes())
        .unwrap_or_default();
    (address, credential)
}

pub async fn limit(State(limiter): State<Limiter>, req: Request, next: Next) -> Response {
    let (address, credential) = client_of(&req);
    match limiter.check(&address, credential.as_deref()) {
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
            assert!(l.check(b"10.0.0.1", Some(b"token-a")).is_ok());
        }
        let wait = l
            .check(b"10.0.0.1", Some(b"token-a"))
            .expect_err("over the limit");
        assert!((1..=60).contains(&wait));
        assert!(
            l.check(b"10.0.0.1", Some(b"token-b")).is_ok(),
            "another client is not held up"
        );
    }

    #[test]
    fn made_up_credentials_do_not_escape_the_address_budget() {
        let l = Limiter::new(RateLimit { per_minute: 3 });
        let budget = 3 * ADDRESS_FACTOR;
        for i in 0..budget {
            let token = format!("Bearer random-{i}");
            assert!(
                l.check(b"10.0.0.9", Some(token.as_bytes())).is_ok(),
                "request {i}"
            );
        }
        assert!(l.check(b"10.0.0.9", Some(b"Bearer random-new")).is_err());
        assert!(l.check(b"10.0.0.9", None).is_err());
        assert!(
            l.check(b"10.0.0.10", None).is_ok(),
            "another address is not held up"
        );
    }
}
