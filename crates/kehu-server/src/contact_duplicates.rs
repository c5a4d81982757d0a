//! Duplicate contacts: the review queue of likely pairs among a customer's
//! contacts, a pair side by side with a choice per field, merging two
//! contacts (consents move to the survivor) and undoing it. The API, the UI
//! and the CLI go through these; the comparison and the survivorship rules
//! are kehu-core's `dedupe::contact`.
//!
//! Rights: seeing a pair needs the right to read its customer; rejecting,
//! merging and undoing the right to write its records, and a merge that
//! changes a personal field of the survivor the edit right on that field.
//! Values are shown masked for the reader's role, as everywhere.

use crate::api::customers::customer_for;
use crate::api::dto::ContactOut;
use crate::auth::CurrentUser;
use crate::duplicates::MergeBody;
use crate::error::ApiError;
use crate::privacy::Personal;
use crate::AppState;
use kehu_core::contact::ContactData;
use kehu_core::dedupe::contact::{
    contact_value, default_contact_choices, merged_contact, ContactEvidence, CONTACT_MERGE_FIELDS,
};
use kehu_core::merge::Side;
use kehu_core::role::Permission;
use kehu_core::{Lang, Reason};
use kehu_store::contact_merges::{ContactMerge, ContactMergeRequest, ContactPairRow};
use kehu_store::model::Contact;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Customers whose pairs one refresh compares at a time.
const REFRESH_CHUNK: usize = 5_000;

/// Past this many customers (a large import) every customer's contacts are
/// compared by id ranges, which reads far fewer statements than lists of ids.
const REFRESH_ALL_FROM: usize = 50_000;

/// Compares the contacts of `customers` again after a write and refreshes
/// their pairs. The write has committed: a failure here is logged, and the
/// next write or scan finds the pairs.
pub async fn refresh(state: &AppState, customers: &[i64]) {
    if customers.len() > REFRESH_ALL_FROM {
        if let Err(e) = state
            .store
            .scan_contact_pairs(crate::duplicates::CONTACT_SCAN_BATCH)
            .await
        {
            tracing::warn!(error = %e, "refreshing duplicate contact pairs failed");
        }
        return;
    }
    for part in customers.chunks(REFRESH_CHUNK) {
        if let Err(e) = state.store.refresh_contact_pairs(part).await {
            tracing::warn!(error = %e, "refreshing duplicate contact pairs failed");
        }
    }
}

/// The stored contact (of one customer's) that a new contact most likely
/// is, with the evidence: the import check and the contact form's warning.
pub fn likely_same<'a>(
    new: &ContactData,
    existing: &'a [Contact],
) -> Option<(kehu_core::dedupe::contact::ContactPair, &'a Contact)> {
    let facts = kehu_core::dedupe::contact::ContactFacts::of(0, new);
    existing
        .iter()
        .filter_map(|c| Some((kehu_core::dedupe::contact::compare(&facts, &c.facts())?, c)))
        .max_by_key(|(p, c)| (p.score, std::cmp::Reverse(c.id)))
}

/// The evidence of a pair in Chinese and in English, listed.
pub fn evidence_text(pair: &kehu_core::dedupe::contact::ContactPair) -> (String, String) {
    let zh: Vec<&str> = pair.evidence.iter().map(|e| e.describe_zh()).collect();
    let en: Vec<&str> = pair.evidence.iter().map(|e| e.describe_en()).collect();
    (zh.join("、"), en.join(", "))
}

/// A pair of contacts with both records as the reader may see them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactPairOut {
    pub id: i64,
    pub customer_id: i64,
    /// How likely they are one person, 0–100.
    pub score: i64,
    /// The evidence: same_id_number | same_mobile | same_email | same_name
    /// | sound_alike_name | same_landline.
    pub reasons: Vec<String>,
    /// The evidence in words (in the request's language).
    pub reasons_text: Vec<String>,
    /// open | rejected
    pub status: String,
    pub found_at: chrono::DateTime<chrono::Utc>,
    pub a: ContactOut,
    pub b: ContactOut,
}

fn described(keys: &[String], lang: Lang) -> Vec<String> {
    keys.iter()
        .map(|k| match ContactEvidence::parse(k) {
            Some(e) if lang == Lang::En => e.describe_en().to_string(),
            Some(e) => e.describe_zh().to_string(),
            None => k.clone(),
        })
        .collect()
}

fn shown(user: &CurrentUser, c: &Contact) -> ContactOut {
    let mut out = ContactOut::from(c.clone());
    out.protect(&user.actor.fields, false);
    out
}

fn pair_out(
    user: &CurrentUser,
    lang: Lang,
    p: &ContactPairRow,
    a: &Contact,
    b: &Contact,
) -> ContactPairOut {
    ContactPairOut {
        id: p.id,
        customer_id: p.customer_id,
        score: p.score,
        reasons_text: described(&p.reasons, lang),
        reasons: p.reasons.clone(),
        status: p.status.clone(),
        found_at: p.found_at,
        a: shown(user, a),
        b: shown(user, b),
    }
}

fn check_status(status: &str) -> Result<(), ApiError> {
    if matches!(status, "open" | "rejected") {
        Ok(())
    } else {
        Err(ApiError::field(
            "status",
            Reason::UnknownOption {
                allowed: vec!["open".into(), "rejected".into()],
            },
        ))
    }
}

/// One page of pairs of `status` (of one customer when given) whose
/// customer the user may read, best first, and how many there are.
pub async fn queue(
    state: &AppState,
    user: &CurrentUser,
    lang: Lang,
    status: &str,
    customer_id: Option<i64>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ContactPairOut>, i64), ApiError> {
    check_status(status)?;
    if let Some(id) = customer_id {
        customer_for(state, user, id, Permission::CustomerRead).await?;
    }
    let scope = user.scope_filter(Permission::CustomerRead)?;
    let (pairs, total) = state
        .store
        .list_contact_pairs(
            status,
            &scope,
            customer_id,
            limit.clamp(1, 500),
            offset.max(0),
        )
        .await?;
    // Both contacts of every pair on the page, in one read.
    let ids: Vec<i64> = pairs.iter().flat_map(|p| [p.a_id, p.b_id]).collect();
    let contacts: BTreeMap<i64, Contact> = state
        .store
        .contacts_in(&ids)
        .await?
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let out = pairs
        .iter()
        .filter_map(|p| {
            Some(pair_out(
                user,
                lang,
                p,
                contacts.get(&p.a_id)?,
                contacts.get(&p.b_id)?,
            ))
        })
        .collect();
    Ok((out, total))
}

/// A pair and both contacts, if the user may read their customer with `p`.
async fn visible_pair(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    p: Permission,
) -> Result<(ContactPairRow, Contact, Contact), ApiError> {
    let pair = state.store.contact_pair(id).await?;
    customer_for(state, user, pair.customer_id, p).await?;
    let a = state.store.contact(pair.a_id).await?;
    let b = state.store.contact(pair.b_id).await?;
    Ok((pair, a, b))
}

/// One field of a contact merge: both values as the reader may see them,
/// and the default pick.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactMergeFieldOut {
    /// name | title | decision_role | mobile | landline | email | id_number | notes
    pub key: String,
    pub label: String,
    pub a: Option<String>,
    pub b: Option<String>,
    /// The id of the contact whose value survives unless chosen otherwise.
    pub default_from: i64,
}

/// What merging a pair of contacts would do by default.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactMergePlan {
    pub pair: ContactPairOut,
    /// The contact that stays by default (the primary one, else the older).
    pub survivor_id: i64,
    pub fields: Vec<ContactMergeFieldOut>,
}

/// The side changed more recently: its values win where both have one.
fn newer(a: &Contact, b: &Contact) -> Side {
    if b.updated_at > a.updated_at {
        Side::B
    } else {
        Side::A
    }
}

/// A field's value as `out` (masked for the reader) shows it: the merge
/// fields' keys are the record's JSON names.
fn shown_value(out: &serde_json::Value, key: &str) -> Option<String> {
    out.get(key)?.as_str().map(str::to_string)
}

pub async fn plan(
    state: &AppState,
    user: &CurrentUser,
    lang: Lang,
    id: i64,
) -> Result<ContactMergePlan, ApiError> {
    let (pair, a, b) = visible_pair(state, user, id, Permission::CustomerRead).await?;
    let out = pair_out(user, lang, &pair, &a, &b);
    let (da, db) = (a.data(), b.data());
    let (ja, jb) = (
        serde_json::to_value(&out.a).unwrap_or_default(),
        serde_json::to_value(&out.b).unwrap_or_default(),
    );
    let fields = default_contact_choices(&da, &db, newer(&a, &b))
        .into_iter()
        .filter_map(|(key, side)| {
            let f = CONTACT_MERGE_FIELDS.iter().find(|f| f.key == key)?;
            Some(ContactMergeFieldOut {
                key: key.to_string(),
                label: if lang == Lang::En {
                    f.label_en
                } else {
                    f.label_zh
                }
                .to_string(),
                a: contact_value(&da, key).and(shown_value(&ja, key)),
                b: contact_value(&db, key).and(shown_value(&jb, key)),
                default_from: if side == Side::A { a.id } else { b.id },
            })
        })
        .collect();
    let survivor_id = if b.is_primary && !a.is_primary {
        b.id
    } else {
        a.id
    };
    Ok(ContactMergePlan {
        pair: out,
        survivor_id,
        fields,
    })
}

/// Marks a pair as two people (never proposed again).
pub async fn reject(
    state: &AppState,
    user: &CurrentUser,
    lang: Lang,
    id: i64,
) -> Result<ContactPairOut, ApiError> {
    let (_, a, b) = visible_pair(state, user, id, Permission::RecordWrite).await?;
    let pair = state
        .store
        .reject_contact_pair(id, Some(user.user.id))
        .await?;
    state.audit(
        Some(user),
        "contact_duplicate.reject",
        format!("contact_pair:{id}"),
        serde_json::json!({"a": pair.a_id, "b": pair.b_id, "customer": pair.customer_id}),
    );
    Ok(pair_out(user, lang, &pair, &a, &b))
}

/// A contact merge as recorded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactMergeOut {
    pub id: i64,
    pub customer_id: i64,
    pub survivor_id: i64,
    pub absorbed_id: i64,
    /// The absorbed contact's name as the reader may see it.
    pub absorbed_name: Option<String>,
    /// Consents of the absorbed contact, now the survivor's.
    pub moved_consents: usize,
    pub merged_by: Option<i64>,
    pub merged_at: chrono::DateTime<chrono::Utc>,
    pub undone_by: Option<i64>,
    pub undone_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub fn merge_out(user: &CurrentUser, m: &ContactMerge) -> ContactMergeOut {
    ContactMergeOut {
        id: m.id,
        customer_id: m.customer_id,
        survivor_id: m.survivor_id,
        absorbed_id: m.absorbed_id,
        absorbed_name: shown(user, &m.absorbed).name,
        moved_consents: m.moved_consents.len(),
        merged_by: m.merged_by,
        merged_at: m.merged_at,
        undone_by: m.undone_by,
        undone_at: m.undone_at,
    }
}

/// Merges two contacts of a customer the user may write records of.
pub async fn merge(
    state: &AppState,
    user: &CurrentUser,
    body: &MergeBody,
) -> Result<ContactMergeOut, ApiError> {
    let survivor = state.store.contact(body.survivor_id).await?;
    let absorbed = state.store.contact(body.absorbed_id).await?;
    customer_for(state, user, survivor.customer_id, Permission::RecordWrite).await?;
    customer_for(state, user, absorbed.customer_id, Permission::RecordWrite).await?;
    let side_of = |id: i64| {
        if id == survivor.id {
            Ok(Side::A)
        } else if id == absorbed.id {
            Ok(Side::B)
        } else {
            Err(ApiError::field(
                "choices",
                Reason::Other {
                    zh: format!("#{id} 不是要合并的两位联系人之一"),
                    en: format!("#{id} is not one of the two contacts merged"),
                },
            ))
        }
    };
    let mut choices = BTreeMap::new();
    for (key, &from) in &body.choices {
        if !CONTACT_MERGE_FIELDS.iter().any(|f| f.key == key) {
            return Err(ApiError::field(
                &format!("choices.{key}"),
                Reason::UnknownOption {
                    allowed: CONTACT_MERGE_FIELDS
                        .iter()
                        .map(|f| f.key.to_string())
                        .collect(),
                },
            ));
        }
        choices.insert(key.clone(), side_of(from)?);
    }
    let (ds, da) = (survivor.data(), absorbed.data());
    let newer = newer(&survivor, &absorbed);
    let data = merged_contact(&ds, &da, &choices, newer);
    // The merged values are validated like any contact (a chosen empty
    // name, say, is refused).
    let data = crate::imports::contact_input_of_data(&data).validate()?;
    crate::privacy::check_contact_write(&user.actor.fields, Some(&survivor), &data, "")?;
    let recorded: BTreeMap<&str, i64> = default_contact_choices(&ds, &da, newer)
        .into_iter()
        .map(|(k, default)| {
            let side = choices.get(k).copied().unwrap_or(default);
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
        .merge_contacts(ContactMergeRequest {
            survivor_id: survivor.id,
            survivor_version: body.survivor_version,
            absorbed_id: absorbed.id,
            absorbed_version: body.absorbed_version,
            data: &data,
            choices: serde_json::to_value(&recorded).unwrap_or_default(),
            by: Some(user.user.id),
        })
        .await?;
    let before = crate::privacy::for_log(&ContactOut::from(survivor.clone()));
    let after = state.store.contact(survivor.id).await.ok();
    let changed = after
        .map(|a| crate::privacy::masked_changes(&ContactOut::from(survivor), &ContactOut::from(a)))
        .unwrap_or_default();
    state.audit(
        Some(user),
        "contact.merge",
        format!("contact:{}", m.survivor_id),
        serde_json::json!({
            "merge": m.id,
            "absorbed": crate::privacy::for_log(&ContactOut::from(m.absorbed.clone())),
            "survivor_before": before,
            "changed": changed,
        }),
    );
    refresh(state, &[m.customer_id]).await;
    Ok(merge_out(user, &m))
}

/// A contact merge the user may see: one of a customer they may read.
pub async fn visible_merge(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
) -> Result<ContactMerge, ApiError> {
    let m = state.store.contact_merge(id).await?;
    customer_for(state, user, m.customer_id, Permission::CustomerRead).await?;
    Ok(m)
}

/// Undoes a contact merge (needs the right to write the customer's records).
pub async fn undo(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
) -> Result<ContactMergeOut, ApiError> {
    let m = visible_merge(state, user, id).await?;
    customer_for(state, user, m.customer_id, Permission::RecordWrite).await?;
    let m = state
        .store
        .undo_contact_merge(id, Some(user.user.id))
        .await?;
    state.audit(
        Some(user),
        "contact.merge_undo",
        format!("contact:{}", m.survivor_id),
        serde_json::json!({"merge": m.id, "absorbed": m.absorbed_id}),
    );
    refresh(state, &[m.customer_id]).await;
    Ok(merge_out(user, &m))
}
