//! /api/v1/audit: the audit log for auditors — searched by action, actor,
//! target and time, newest first — and its verification.

use super::QueryPairs;
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use kehu_core::audit::Anchor;
use kehu_core::role::Permission;
use kehu_core::Reason;
use kehu_store::audit::{AuditEntry, AuditFilter};
use serde::Serialize;
use utoipa::ToSchema;

/// One entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditOut {
    pub pos: i64,
    /// UTC, microseconds.
    pub at: String,
    pub actor_id: Option<i64>,
    pub action: String,
    pub target: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub client: Option<String>,
    /// Its hash, chained to the entry before.
    pub hash: String,
}

impl From<AuditEntry> for AuditOut {
    fn from(e: AuditEntry) -> Self {
        AuditOut {
            pos: e.record.pos,
            at: e.record.at,
            actor_id: e.record.actor_id,
            action: e.record.action,
            target: e.record.target,
            detail: e.record.detail,
            client: e.record.client,
            hash: e.hash,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub total: i64,
    pub entries: Vec<AuditOut>,
}

fn auditor(user: &CurrentUser) -> Result<(), ApiError> {
    user.require(Permission::AuditRead).map(|_| ())
}

fn time(q: &mut QueryPairs, key: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    match q.take(key).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(v) => {
            if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v.trim()) {
                return Ok(Some(t.with_timezone(&chrono::Utc)));
            }
            let d = kehu_core::date::parse_date(&v).map_err(|r| ApiError::field(key, r))?;
            Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()))
        }
    }
}

/// The filter of a request (`action`, `actor_id`, `target` — `customer:12`
/// or a prefix such as `customer:` —, `from`, `to` as dates or RFC 3339).
pub fn filter_of(q: &mut QueryPairs) -> Result<AuditFilter, ApiError> {
    Ok(AuditFilter {
        action: q.take("action").filter(|a| !a.is_empty()),
        actor_id: match q.take("actor_id").filter(|a| !a.is_empty()) {
            None => None,
            Some(a) => Some(
                a.parse()
                    .map_err(|_| ApiError::field("actor_id", Reason::NumberFormat))?,
            ),
        },
        target: q.take("target").filter(|t| !t.is_empty()),
        from: time(q, "from")?,
        to: time(q, "to")?,
    })
}

/// Audit entries, newest first (auditors only).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit",
    params(("action" = Option<String>, Query), ("actor_id" = Option<i64>, Query), ("target" = Option<String>, Query),
           ("from" = Option<String>, Query), ("to" = Option<String>, Query), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = AuditPage), (status = 403, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    mut q: QueryPairs,
) -> Result<Json<AuditPage>, ApiError> {
    auditor(&user)?;
    let filter = filter_of(&mut q)?;
    let limit = q.take_number("limit", 100)?.clamp(1, 1000);
    let offset = q.take_number("offset", 0)?.max(0);
    state.auditor.flush().await;
    let (entries, total) = state.store.audit_entries(&filter, limit, offset).await?;
    Ok(Json(AuditPage {
        total,
        entries: entries.into_iter().map(Into::into).collect(),
    }))
}

/// The chain checked end to end.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditVerifyOut {
    pub intact: bool,
    pub entries: i64,
    /// The last entry's link (note it down with `entries` as
    /// `POS:LINK`: passed as `anchor` later, a log cut short or rewritten
    /// since shows against it).
    pub last_hash: Option<String>,
    /// The first entry linked under a key from the key file (entries
    /// before it carry plain hashes); null when none is.
    pub keyed_from: Option<i64>,
    /// Where it breaks.
    pub problem: Option<String>,
}

/// An anchor as noted down (`POS:LINK`), refused on field `anchor`.
pub fn anchor_of(raw: &str) -> Result<Anchor, ApiError> {
    Anchor::parse(raw.trim()).ok_or_else(|| {
        ApiError::field(
            "anchor",
            Reason::PatternMismatch {
                pattern: "POS:LINK".into(),
            },
        )
    })
}

/// `anchor=POS:LINK` (as an earlier answer gave `entries` and
/// `last_hash`): also broken when the log no longer holds that entry as it was.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", params(("anchor" = Option<String>, Query)),
    responses((status = 200, body = AuditVerifyOut), (status = 403, content_type = "application/problem+json"),
        (status = 422, content_type = "application/problem+json")))]
pub async fn verify(
    State(state): State<AppState>,
    user: CurrentUser,
    mut q: QueryPairs,
) -> Result<Json<AuditVerifyOut>, ApiError> {
    auditor(&user)?;
    let anchor = q.take("anchor").map(|a| anchor_of(&a)).transpose()?;
    state.auditor.flush().await;
    Ok(Json(
        match state.store.verify_audit(anchor.as_ref()).await? {
            Ok(v) => AuditVerifyOut {
                intact: true,
                entries: v.entries,
                last_hash: Some(v.last_hash),
                keyed_from: v.keyed_from,
                problem: None,
            },
            Err(b) => AuditVerifyOut {
                intact: false,
                entries: 0,
                last_hash: None,
                keyed_from: None,
                problem: Some(b.to_string()),
            },
        },
    ))
}
