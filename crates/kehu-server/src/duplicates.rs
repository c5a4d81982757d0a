//! Duplicate customers: the whole-database scan (kehu-core's matcher over
//! every customer's name, USCC, phone, e-mail and address), the review
//! queue, merging with field-by-field survivorship, and undoing a merge.
//! The API, the UI and the CLI all go through these.

use crate::api::customers::{check_customer, customer_for};
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::AppState;
use kehu_core::customer::{CustomerInput, CustomerStatus};
use kehu_core::dedupe::{find_duplicates, Field, FieldKind, Options};
use kehu_core::merge::{self, Side, SideFacts, MERGE_FIELDS};
use kehu_core::role::{Ownership, Permission, Scope};
use kehu_core::{Fen, Reason};
use kehu_store::duplicates::{CustomerMerge, DedupeRow, DuplicatePair, MergeRequest, NewPair};
use kehu_store::imports::Touched;
use kehu_store::model::Customer;
use kehu_store::{Owner, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Instant;
use utoipa::ToSchema;

/// What the scan compares, with the names its reasons use.
const SCAN_FIELDS: [(&str, FieldKind); 6] = [
    ("名称", FieldKind::Company),
    ("统一社会信用代码", FieldKind::Code),
    ("电话", FieldKind::Phone),
    ("邮箱", FieldKind::Email),
    ("地址", FieldKind::Address),
    // Branches of a chain share a name in different cities; one company
    // in one city is the stronger evidence.
    ("城市", FieldKind::Text),
];

/// Customers (by id range) whose contacts one step of the scan compares.
pub const CONTACT_SCAN_BATCH: i64 = 20_000;

/// Pairs at least this likely go to the review queue.
pub const SCAN_THRESHOLD: f64 = 0.5;

/// What a whole-database scan found.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScanReport {
    /// Customers compared.
    pub customers: usize,
    /// Pairs the blocking proposed for comparison.
    pub candidates: usize,
    /// Blocking keys skipped as shared by too many customers.
    pub skipped_keys: usize,
    /// Pairs scoring at least the threshold.
    pub found: usize,
    /// Open pairs in the queue after the scan.
    pub open: u64,
    /// Pairs found again that a person had rejected (left rejected).
    pub still_rejected: u64,
    /// Reading, matching, storing.
    pub read_seconds: f64,
    pub match_seconds: f64,
    pub store_seconds: f64,
    /// Contacts compared within their customers (likely one person).
    pub contacts: u64,
    /// Pairs of contacts found (open, or left rejected).
    pub contact_pairs_found: u64,
    /// Open pairs of contacts after the scan.
    pub contact_pairs_open: u64,
    pub contact_seconds: f64,
}

/// The scan's fields and every customer as the matcher's record.
pub fn scan_input(rows: &[DedupeRow]) -> (Vec<Field>, Vec<Vec<&str>>) {
    let fields = SCAN_FIELDS
        .iter()
        .map(|(name, kind)| Field {
            name: name.to_string(),
            kind: *kind,
        })
        .collect();
    let records = rows
        .iter()
        .map(|r| {
            vec![
                r.name.as_str(),
                r.uscc.as_deref().unwrap_or(""),
                r.phone.as_deref().unwrap_or(""),
                r.email.as_deref().unwrap_or(""),
                r.address.as_deref().unwrap_or(""),
                r.city.as_deref().unwrap_or(""),
            ]
        })
        .collect();
    (fields, records)
}

/// The scan's options.
pub fn scan_options() -> Options {
    Options {
        threshold: SCAN_THRESHOLD,
        ..Options::default()
    }
}

/// The matcher's pairs among `rows` (ids, score, reasons) and its work.
pub fn match_rows(rows: &[DedupeRow], options: Options) -> (Vec<NewPair>, usize, usize) {
    let (fields, records) = scan_input(rows);
    let outcome = find_duplicates(&fields, &records, options);
    let pairs = outcome
        .pairs
        .iter()
        .map(|p| NewPair {
            a_id: rows[p.a].id,
            b_id: rows[p.b].id,
            score: p.score,
            reasons: p.evidence.iter().map(|e| e.describe(&fields)).collect(),
        })
        .collect();
    (pairs, outcome.candidates, outcome.skipped_keys)
}

/// Compares every customer with every likely other and refreshes the
/// queue; then each customer's contacts among themselves.
pub async fn scan(store: &Store) -> Result<ScanReport, ApiError> {
    let started = Instant::now();
    let rows = store.dedupe_rows().await?;
    let read = started.elapsed().as_secs_f64();
    let matched = Instant::now();
    let (rows, (pairs, candidates, skipped_keys)) = tokio::task::spawn_blocking(move || {
        let found = match_rows(&rows, scan_options());
        (rows.len(), found)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("duplicate scan: {e}")))?;
    let match_seconds = matched.elapsed().as_secs_f64();
    let stored = Instant::now();
    let recorded = store.record_scan(&pairs).await?;
    let store_seconds = stored.elapsed().as_secs_f64();
    let contacts_started = Instant::now();
    let contacts = store.scan_contact_pairs(CONTACT_SCAN_BATCH).await?;
    Ok(ScanReport {
        customers: rows,
        candidates,
        skipped_keys,
        found: pairs.len(),
        open: recorded.open,
        still_rejected: recorded.still_rejected,
        read_seconds: read,
        match_seconds,
        store_seconds,
        contacts: contacts.contacts,
        contact_pairs_found: contacts.found,
        contact_pairs_open: contacts.open,
        contact_seconds: contacts_started.elapsed().as_secs_f64(),
    })
}

/// The whole-database scan needs rights over every customer.
pub fn may_scan(user: &CurrentUser) -> bool {
    user.actor.grants.scope(Permission::CustomerUpdate) == Some(Scope::All)
}

/// One side of a pair as the queue shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerBrief {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub uscc: Option<String>,
    pub owner_id: Option<i64>,
    pub order_count: i64,
    pub version: i64,
}

impl From<&Customer> for CustomerBrief {
    fn from(c: &Customer) -> Self {
        CustomerBrief {
            id: c.id,
            code: c.code.clone(),
            name: c.name.clone(),
            uscc: c.uscc.clone(),
            owner_id: c.owner_id,
            order_count: c.order_count,
            version: c.version,
        }
    }
}

/// A candidate pair with both customers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PairOut {
    pub id: i64,
    /// The probability that they are the same company, in [0, 1].
    pub score: f64,
    /// The agreeing fields, strongest first.
    pub reasons: Vec<String>,
    /// open | rejected
    pub status: String,
    /// scan | create | import
    pub source: String,
    pub found_at: chrono::DateTime<chrono::Utc>,
    pub a: CustomerBrief,
    pub b: CustomerBrief,
}

fn pair_out(p: &DuplicatePair, a: &Customer, b: &Customer) -> PairOut {
    PairOut {
        id: p.id,
        score: p.score,
        reasons: p.reasons.clone(),
        status: p.status.clone(),
        source: p.source.clone(),
        found_at: p.found_at,
        a: a.into(),
        b: b.into(),
    }
}

/// One page of the queue: pairs of `status` whose customers the user may
/// both read, best first, and how many there are.
pub async fn queue(
    state: &AppState,
    user: &CurrentUser,
    status: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<PairOut>, i64), ApiError> {
    if !matches!(status, "open" | "rejected") {
        return Err(ApiError::field(
            "status",
            Reason::UnknownOption {
                allowed: vec!["open".into(), "rejected".into()],
            },
        ));
    }
    let scope = user.scope_filter(Permission::CustomerRead)?;
    let (pairs, total) = state
        .store
        .list_pairs(status, &scope, limit.clamp(1, 500), offset.max(0))
        .await?;
    let mut ids: Vec<i64> = pairs.iter().flat_map(|p| [p.a_id, p.b_id]).collect();
    ids.sort_unstable();
    ids.dedup();
    let customers: BTreeMap<i64, Customer> = state
        .store
        .customers_in(&ids)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let out = pairs
        .iter()
        .filter_map(|p| {
            Some(pair_out(
                p,
                customers.get(&p.a_id)?,
                customers.get(&p.b_id)?,
            ))
        })
        .collect();
    Ok((out, total))
}

/// A pair and both its customers, if the user may read both.
async fn visible_pair(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
) -> Result<(DuplicatePair, Customer, Customer), ApiError> {
    let pair = state.store.duplicate_pair(id).await?;
    let a = customer_for(state, user, pair.a_id, Permission::CustomerRead).await?;
    let b = customer_for(state, user, pair.b_id, Permission::CustomerRead).await?;
    Ok((pair, a, b))
}

/// One field of a merge: both values as shown, and the default pick.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MergeFieldOut {
    /// `name`, `uscc`, … or `custom_fields.KEY`.
    pub key: String,
    pub label: String,
    pub a: Option<String>,
    pub b: Option<String>,
    /// The id of the customer whose value survives unless chosen otherwise.
    pub default_from: i64,
}

/// What merging a pair would do by default.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MergePlan {
    pub pair: PairOut,
    /// The customer that survives by default (more orders, else older).
    pub survivor_id: i64,
    pub fields: Vec<MergeFieldOut>,
}

fn input_of(c: &Customer) -> CustomerInput {
    crate::api::dto::CustomerWrite::from(c).into()
}

fn facts(c: &Customer) -> SideFacts {
    SideFacts {
        id: c.id,
        order_count: c.order_count,
        updated_at: c.updated_at.timestamp(),
    }
}

fn newer(a: &Customer, b: &Customer) -> Side {
    if b.updated_at > a.updated_at {
        Side::B
    } else {
        Side::A
    }
}

/// A field's value as a person reads it.
async fn shown(state: &AppState, key: &str, v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if key == "status" => Some(
            CustomerStatus::parse(s)
                .map(|st| st.label_zh().to_string())
                .unwrap_or_else(|_| s.clone()),
        ),
        Value::String(s) => Some(s.clone()),
        Value::Number(n) if key.ends_with("_fen") => n
            .as_i64()
            .and_then(|f| Fen::new(f).ok())
            .map(|f| f.display_cn()),
        Value::Number(n) if key == "owner_id" => {
            let id = n.as_i64()?;
            Some(match state.store.user(id).await {
                Ok(u) => u.display_name,
                Err(_) => format!("#{id}"),
            })
        }
        Value::Array(items) => Some(
            items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join("、"),
        ),
        other => Some(other.to_string()),
    }
}

pub async fn plan(state: &AppState, user: &CurrentUser, id: i64) -> Result<MergePlan, ApiError> {
    let (pair, a, b) = visible_pair(state, user, id).await?;
    let (ia, ib) = (input_of(&a), input_of(&b));
    let defaults = merge::default_choices(&ia, &ib, newer(&a, &b));
    let labels = state.store.custom_field_defs().await?;
    let mut fields = Vec::new();
    for (key, side) in &defaults {
        let label = match MERGE_FIELDS.iter().find(|f| f.key == key) {
            Some(f) => f.label_zh.to_string(),
            None => {
                let custom = key.trim_start_matches(merge::CUSTOM_PREFIX);
                labels
                    .iter()
                    .find(|d| d.key == custom)
                    .map(|d| d.label.clone())
                    .unwrap_or_else(|| custom.to_string())
            }
        };
        fields.push(MergeFieldOut {
            key: key.clone(),
            label,
            a: shown(state, key, &merge::value_of(&ia, key)).await,
            b: shown(state, key, &merge::value_of(&ib, key)).await,
            default_from: if *side == Side::A { a.id } else { b.id },
        });
    }
    // The form's order: the fixed fields as listed, then custom fields.
    let order = |k: &str| {
        MERGE_FIELDS
            .iter()
            .position(|f| f.key == k)
            .unwrap_or(MERGE_FIELDS.len())
    };
    fields.sort_by(|x, y| order(&x.key).cmp(&order(&y.key)).then(x.key.cmp(&y.key)));
    let survivor = match merge::default_survivor(facts(&a), facts(&b)) {
        Side::A => a.id,
        Side::B => b.id,
    };
    Ok(MergePlan {
        pair: pair_out(&pair, &a, &b),
        survivor_id: survivor,
        fields,
    })
}

/// Marks a pair as two different companies (never proposed again).
pub async fn reject(state: &AppState, user: &CurrentUser, id: i64) -> Result<PairOut, ApiError> {
    let (_, a, b) = visible_pair(state, user, id).await?;
    let may = |c: &Customer| {
        user.actor.may(
            Permission::CustomerUpdate,
            Ownership {
                owner_id: c.owner_id,
                team: c.team.as_deref(),
            },
        )
    };
    if !may(&a) && !may(&b) {
        return Err(ApiError::Forbidden);
    }
    let pair = state.store.reject_pair(id, Some(user.user.id)).await?;
    state.audit(
        Some(user),
        "duplicate.reject",
        format!("pair:{id}"),
        serde_json::json!({"a": a.code, "b": b.code}),
    );
    Ok(pair_out(&pair, &a, &b))
}

/// A merge asked for — of two customers, or of two contacts of one
/// customer: which record survives, the versions seen, and for any field
/// the id of the record whose value survives (the defaults otherwise).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    pub survivor_id: i64,
    pub absorbed_id: i64,
    pub survivor_version: i64,
    pub absorbed_version: i64,
    #[serde(default)]
    pub choices: BTreeMap<String, i64>,
}

/// A merge as recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MergeOut {
    pub id: i64,
    pub survivor_id: i64,
    pub absorbed_id: i64,
    pub absorbed_code: String,
    pub absorbed_name: String,
    pub moved_contacts: usize,
    pub moved_orders: usize,
    pub moved_interactions: usize,
    pub moved_tags: usize,
    pub moved_class_history: u64,
    pub merged_by: Option<i64>,
    pub merged_at: chrono::DateTime<chrono::Utc>,
    pub undone_by: Option<i64>,
    pub undone_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub fn merge_out(m: &CustomerMerge) -> MergeOut {
    MergeOut {
        id: m.id,
        survivor_id: m.survivor_id,
        absorbed_id: m.absorbed_id,
        absorbed_code: m.absorbed.code.clone(),
        absorbed_name: m.absorbed.name.clone(),
        moved_contacts: m.moved.contacts.len(),
        moved_orders: m.moved.orders.len(),
        moved_interactions: m.moved.interactions.len(),
        moved_tags: m.moved.tags.len(),
        moved_class_history: m.moved.class_history,
        merged_by: m.merged_by,
        merged_at: m.merged_at,
        undone_by: m.undone_by,
        undone_at: m.undone_at,
    }
}

/// Merges two customers the user may both edit; the survivor is then
/// re-classified and the tag rules re-applied to it.
pub async fn merge(
    state: &AppState,
    user: &CurrentUser,
    body: &MergeBody,
) -> Result<MergeOut, ApiError> {
    let survivor = customer_for(state, user, body.survivor_id, Permission::CustomerUpdate).await?;
    let absorbed = customer_for(state, user, body.absorbed_id, Permission::CustomerUpdate).await?;
    let side_of = |id: i64| {
        if id == survivor.id {
            Ok(Side::A)
        } else if id == absorbed.id {
            Ok(Side::B)
        } else {
            Err(ApiError::field(
                "choices",
                Reason::Other {
                    zh: format!("#{id} 不是要合并的两个客户之一"),
                    en: format!("#{id} is not one of the two customers merged"),
                },
            ))
        }
    };
    let (ia, ib) = (input_of(&survivor), input_of(&absorbed));
    let keys = merge::field_keys(&ia, &ib);
    let mut choices = BTreeMap::new();
    for (key, &from) in &body.choices {
        if !keys.contains(key) {
            return Err(ApiError::field(
                &format!("choices.{key}"),
                Reason::UnknownOption { allowed: keys },
            ));
        }
        choices.insert(key.clone(), side_of(from)?);
    }
    let merged = merge::merged_input(&ia, &ib, Side::A, &choices, newer(&survivor, &absorbed));
    let data = check_customer(state, merged, true).await?;
    let owner = if data.owner_id == absorbed.owner_id && data.owner_id != survivor.owner_id {
        Owner {
            owner_id: absorbed.owner_id,
            team: absorbed.team.clone(),
        }
    } else {
        Owner {
            owner_id: survivor.owner_id,
            team: survivor.team.clone(),
        }
    };
    let recorded_choices: BTreeMap<String, i64> =
        merge::default_choices(&ia, &ib, newer(&survivor, &absorbed))
            .into_iter()
            .map(|(k, default)| {
                let side = choices.get(&k).copied().unwrap_or(default);
                (
                    k,
                    if side == Side::A {
                        survivor.id
                    } else {
                        absorbed.id
                    },
                )
            })
            .collect();
    let m = state
        .store
        .merge_customers(MergeRequest {
            survivor_id: survivor.id,
            survivor_version: body.survivor_version,
            absorbed_id: absorbed.id,
            absorbed_version: body.absorbed_version,
            data: &data,
            owner: &owner,
            choices: serde_json::to_value(&recorded_choices).unwrap_or(Value::Null),
            by: Some(user.user.id),
        })
        .await?;
    let after = state.store.customer(survivor.id).await.ok();
    let changed = after
        .as_ref()
        .map(|a| crate::audit::changes(&survivor, a))
        .unwrap_or(Value::Null);
    state.audit(
        Some(user),
        "customer.merge",
        format!("customer:{}", survivor.id),
        serde_json::json!({"merge": m.id, "absorbed": absorbed.code, "changed": changed}),
    );
    crate::imports::after_import(state, &Touched::all(vec![survivor.id]), Some(user.user.id)).await;
    Ok(merge_out(&m))
}

/// A merge the user may see: one whose survivor they may read (or, when the
/// survivor is gone, whose absorbed customer's owner they reach).
pub async fn visible_merge(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
) -> Result<CustomerMerge, ApiError> {
    let m = state.store.customer_merge(id).await?;
    match state.store.customer(m.survivor_id).await {
        Ok(_) => {
            customer_for(state, user, m.survivor_id, Permission::CustomerRead).await?;
        }
        Err(_) => {
            let o = Ownership {
                owner_id: m.absorbed.owner_id,
                team: m.absorbed.team.as_deref(),
            };
            if !user.actor.may(Permission::CustomerRead, o) {
                return Err(ApiError::NotFound);
            }
        }
    }
    Ok(m)
}

/// Undoes a merge (needs the right to edit the survivor); both customers
/// are then re-classified.
pub async fn undo(state: &AppState, user: &CurrentUser, id: i64) -> Result<MergeOut, ApiError> {
    let m = visible_merge(state, user, id).await?;
    customer_for(state, user, m.survivor_id, Permission::CustomerUpdate).await?;
    let m = state.store.undo_merge(id, Some(user.user.id)).await?;
    state.audit(
        Some(user),
        "customer.merge_undo",
        format!("customer:{}", m.survivor_id),
        serde_json::json!({"merge": m.id, "absorbed": m.absorbed.code}),
    );
    crate::imports::after_import(
        state,
        &Touched::all(vec![m.survivor_id, m.absorbed_id]),
        Some(user.user.id),
    )
    .await;
    Ok(merge_out(&m))
}
