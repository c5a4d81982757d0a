//! The duplicate pages: the review queue (and, for those with rights over
//! every customer, the whole-database scan), a pair side by side with a
//! choice per field, and a merge's record with its undo; the same for
//! contacts that are likely one person. Everything goes
//! through `crate::duplicates`, as the API does.

use super::forms::FormData;
use super::Page;
use crate::contact_duplicates;
use crate::duplicates::{self, MergeBody};
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use kehu_core::Reason;
use minijinja::{context, Value};
use std::collections::BTreeMap;

const PAGE_SIZE: i64 = 50;

/// A queue's `status` (open unless rejected) and page number (from 1).
fn status_and_page(q: &FormData) -> (&'static str, i64) {
    let status = match q.get("status") {
        Some("rejected") => "rejected",
        _ => "open",
    };
    let n = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    (status, n)
}

/// GET /duplicates?status=open|rejected&page=N
pub async fn queue(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = FormData::from_query(raw.as_deref());
    let (status, n) = status_and_page(&q);
    let (pairs, total) =
        duplicates::queue(&state, &page.user, status, PAGE_SIZE, (n - 1) * PAGE_SIZE).await?;
    let pages = (total + PAGE_SIZE - 1) / PAGE_SIZE;
    Ok(page.render(
        &state,
        "duplicates/queue.html",
        "duplicates",
        context! {
            pairs => Value::from_serialize(&pairs), total, status, page => n, pages,
            can_scan => duplicates::may_scan(&page.user),
            // customers-found-still_rejected, from the scan's redirect
            scan => super::counts_param(&q, "scanned"),
        },
    ))
}

/// POST /duplicates/scan
pub async fn scan(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    if !duplicates::may_scan(&page.user) {
        return Err(ApiError::Forbidden);
    }
    let done = duplicates::scan(&state.store).await;
    Ok(page.after(&state, done, |r| {
        format!(
            "/duplicates?scanned={}-{}-{}-{}-{}",
            r.customers, r.found, r.still_rejected, r.contacts, r.contact_pairs_open
        )
    }))
}

/// GET /duplicates/{id}: both customers side by side, a choice per field.
pub async fn pair(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let plan = duplicates::plan(&state, &page.user, id).await?;
    Ok(page.render(
        &state,
        "duplicates/pair.html",
        "duplicates",
        context! { plan => Value::from_serialize(&plan) },
    ))
}

/// POST /duplicates/{id}/reject
pub async fn reject(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let done = duplicates::reject(&state, &page.user, id).await;
    Ok(page.after(&state, done, |_| "/duplicates".into()))
}

/// A merge form of the pair (a, b): `survivor` (one of them), the
/// versions seen (`version_ID`) and `field_KEY` = the id whose value survives.
fn merge_body(form: &FormData, a: i64, b: i64) -> Result<MergeBody, ApiError> {
    let survivor_id = id_field(form, "survivor")?;
    let absorbed_id = if survivor_id == a { b } else { a };
    Ok(MergeBody {
        survivor_id,
        absorbed_id,
        survivor_version: id_field(form, &format!("version_{survivor_id}"))?,
        absorbed_version: id_field(form, &format!("version_{absorbed_id}"))?,
        choices: form
            .0
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("field_")?.to_string(), v.parse().ok()?)))
            .collect(),
    })
}

fn id_field(form: &FormData, key: &str) -> Result<i64, ApiError> {
    form.get(key)
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| ApiError::field(key, Reason::Required))
}

/// POST /duplicates/{id}/merge: `survivor` (a customer id), the versions
/// seen (`version_ID`) and `field_KEY` = the id whose value survives.
pub async fn merge(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let done = async {
        let pair = state.store.duplicate_pair(id).await?;
        let body = merge_body(&form, pair.a_id, pair.b_id)?;
        duplicates::merge(&state, &page.user, &body).await
    }
    .await;
    Ok(page.after(&state, done, |m| format!("/merges/{}", m.id)))
}

/// GET /merges/{id}
pub async fn merge_record(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let m = duplicates::visible_merge(&state, &page.user, id).await?;
    let survivor = state.store.customer(m.survivor_id).await.ok();
    Ok(page.render(
        &state,
        "duplicates/merge.html",
        "duplicates",
        context! {
            merge => Value::from_serialize(duplicates::merge_out(&m)),
            survivor_before => Value::from_serialize(&m.survivor_before),
            survivor => survivor.map(|c| context! { id => c.id, code => c.code, name => c.name }),
            merged_at => m.merged_at.format("%Y-%m-%d %H:%M").to_string(),
        },
    ))
}

/// POST /merges/{id}/undo
pub async fn undo(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let done = duplicates::undo(&state, &page.user, id).await;
    Ok(page.after(&state, done, |m| format!("/merges/{}", m.id)))
}

/// GET /contact-duplicates?status=open|rejected&page=N: contacts at one
/// customer that are likely one person.
pub async fn contact_queue(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = FormData::from_query(raw.as_deref());
    let (status, n) = status_and_page(&q);
    let (pairs, total) = contact_duplicates::queue(
        &state,
        &page.user,
        page.lang,
        status,
        None,
        PAGE_SIZE,
        (n - 1) * PAGE_SIZE,
    )
    .await?;
    let mut codes = BTreeMap::new();
    for c in state
        .store
        .customers_in(&pairs.iter().map(|p| p.customer_id).collect::<Vec<_>>())
        .await?
    {
        codes.insert(c.id, format!("{} {}", c.code, c.name));
    }
    let pages = (total + PAGE_SIZE - 1) / PAGE_SIZE;
    Ok(page.render(
        &state,
        "duplicates/contact_queue.html",
        "duplicates",
        context! {
            pairs => Value::from_serialize(&pairs), customers => codes, total, status, page => n, pages,
        },
    ))
}

/// GET /contact-duplicates/{id}: both contacts side by side, a choice per field.
pub async fn contact_pair(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let plan = contact_duplicates::plan(&state, &page.user, page.lang, id).await?;
    let customer = state.store.customer(plan.pair.customer_id).await?;
    Ok(page.render(
        &state,
        "duplicates/contact_pair.html",
        "duplicates",
        context! {
            plan => Value::from_serialize(&plan),
            customer => context! { id => customer.id, code => customer.code, name => customer.name },
        },
    ))
}

/// POST /contact-duplicates/{id}/reject
pub async fn contact_reject(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let done = contact_duplicates::reject(&state, &page.user, page.lang, id).await;
    Ok(page.after(&state, done, |p| format!("/customers/{}", p.customer_id)))
}

/// POST /contact-duplicates/{id}/merge: `survivor` (a contact id), the
/// versions seen (`version_ID`) and `field_KEY` = the id whose value survives.
pub async fn contact_merge(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let done = async {
        let pair = state.store.contact_pair(id).await?;
        let body = merge_body(&form, pair.a_id, pair.b_id)?;
        contact_duplicates::merge(&state, &page.user, &body).await
    }
    .await;
    Ok(page.after(&state, done, |m| format!("/customers/{}", m.customer_id)))
}

/// POST /contact-merges/{id}/undo
pub async fn contact_undo(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let done = contact_duplicates::undo(&state, &page.user, id).await;
    Ok(page.after(&state, done, |m| format!("/customers/{}", m.customer_id)))
}
