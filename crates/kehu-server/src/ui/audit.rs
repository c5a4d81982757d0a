//! The audit log page for auditors: the chain's state, search, newest first.

use super::forms::FormData;
use super::Page;
use crate::api::QueryPairs;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use kehu_core::role::Permission;
use minijinja::{context, Value};
use std::collections::HashMap;

/// GET /audit?action=&target=&actor_id=&from=&to=
pub async fn page(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    page.user.require(Permission::AuditRead)?;
    let form = FormData::from_query(raw.as_deref());
    let mut q = QueryPairs(form.0.clone());
    let filter = crate::api::audit::filter_of(&mut q)?;
    state.auditor.flush().await;
    let (entries, total) = state.store.audit_entries(&filter, 200, 0).await?;
    // Walking the whole chain reads every entry: on demand, not on every
    // view; against an anchor noted earlier when one is given (a malformed
    // one is said on the page, and nothing is verified).
    let anchor = form
        .get("anchor")
        .filter(|a| !a.trim().is_empty())
        .map(crate::api::audit::anchor_of)
        .transpose();
    let anchor_malformed = anchor.is_err();
    let verified = match (form.get("verify"), anchor) {
        (Some(_), Ok(a)) => Some(state.store.verify_audit(a.as_ref()).await?),
        _ => None,
    };
    let names: HashMap<i64, String> = state.store.user_names().await?;
    let rows: Vec<Value> = entries
        .iter()
        .map(|e| {
            let r = &e.record;
            context! {
                pos => r.pos, at => r.at.clone(), action => r.action.clone(), target => r.target.clone(),
                detail => r.detail.to_string(), client => r.client.clone(),
                actor => r.actor_id.map(|a| names.get(&a).cloned().unwrap_or_else(|| format!("#{a}"))),
            }
        })
        .collect();
    let (verified, intact, entries_n, last_hash, keyed_from, problem) = match verified {
        None => (false, false, 0, None, None, None),
        Some(Ok(v)) => (true, true, v.entries, Some(v.last_hash), v.keyed_from, None),
        Some(Err(b)) => (true, false, 0, None, None, Some(b.to_string())),
    };
    Ok(page.render(
        &state,
        "audit.html",
        "audit",
        context! {
            rows, total, verified, intact, entries => entries_n, last_hash, keyed_from, problem,
            anchor => form.get("anchor"), anchor_malformed,
            f => context! { action => form.get("action"), target => form.get("target"), actor_id => form.get("actor_id"), from => form.get("from"), to => form.get("to") },
        },
    ))
}
