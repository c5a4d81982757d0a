//! Web-form intake: a public form anyone may fill in (with explicit consent
//! to a stated purpose), rate-limited per client and per form; submissions
//! land as leads that a person accepts — as a new customer or as a contact
//! of an existing one — or rejects. The public page, the JSON endpoint, the
//! review pages and the API all go through here.

use crate::api::customers::{customer_for, resolve_owner};
use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::AppState;
use kehu_core::customer::CustomerRules;
use kehu_core::intake::{read_submission, FormSpec, Submission};
use kehu_core::role::{Permission, Scope};
use kehu_core::{Reason, ValidationErrors};
use kehu_store::intake::{IntakeForm, Lead, LeadTarget, NewLead, RateLimits, Submitted};
use kehu_store::model::Customer;
use std::collections::BTreeMap;

/// Submissions an hour: from one client address, and on one form.
pub const RATE_LIMITS: RateLimits = RateLimits {
    per_client: 5,
    per_form: 500,
};

/// Defining forms is configuration: those who configure fields.
pub fn may_edit_forms(user: &CurrentUser) -> bool {
    user.actor.grants.has(Permission::CustomFieldAdmin)
}

/// Reviewing leads: those who may create customers for a team or everyone.
pub fn may_review(user: &CurrentUser) -> bool {
    matches!(
        user.actor.grants.scope(Permission::CustomerCreate),
        Some(Scope::Team | Scope::All)
    )
}

fn custom_keys(defs: &[kehu_core::custom_field::CustomFieldDef]) -> Vec<String> {
    defs.iter().map(|d| d.key.clone()).collect()
}

/// A form as asked for, checked (known fields, custom fields defined).
pub async fn check_form(state: &AppState, spec: &FormSpec) -> Result<FormSpec, ApiError> {
    let defs = state.store.custom_field_defs().await?;
    Ok(spec.check(&custom_keys(&defs))?)
}

/// A submission read against today's rules.
async fn read(
    state: &AppState,
    fields: &[String],
    values: &BTreeMap<String, String>,
    consent: bool,
) -> Result<Submission, ApiError> {
    let industries = state.store.industries().await?;
    let defs = state.store.custom_field_defs().await?;
    let rules = CustomerRules {
        industries: &industries,
        custom_fields: &defs,
        today: state.store.today(),
    };
    Ok(read_submission(fields, values, consent, &rules)?)
}

/// The active form at `slug` (404 otherwise: a retired form is gone for the public).
pub async fn public_form(state: &AppState, slug: &str) -> Result<IntakeForm, ApiError> {
    match state.store.form_by_slug(slug).await {
        Ok(f) if f.active => Ok(f),
        _ => Err(ApiError::NotFound),
    }
}

/// A keyed hash of the client's address: enough to count its submissions,
/// not to tell who it was.
async fn client_hash(state: &AppState, addr: &str) -> Result<String, ApiError> {
    let key = state
        .store
        .secret("intake_client_key", crate::auth::random_token())
        .await?;
    Ok(crate::imports::sha256_hex(
        format!("{key}:{addr}").as_bytes(),
    ))
}

/// Takes a public submission: checked, standardized, stored as a pending
/// lead with its consent and the customers it looks like.
pub async fn submit(
    state: &AppState,
    form: &IntakeForm,
    values: &BTreeMap<String, String>,
    consent: bool,
    addr: &str,
) -> Result<Lead, ApiError> {
    let s = read(state, &form.fields, values, consent).await?;
    let suspects: Vec<i64> = state
        .store
        .likely_duplicates(&s.customer.name, s.contact.mobile.as_deref(), 5)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let hash = client_hash(state, addr).await?;
    match state
        .store
        .submit_lead(
            NewLead {
                form,
                submitted: values,
                client_hash: &hash,
                suspects: &suspects,
            },
            RATE_LIMITS,
        )
        .await?
    {
        Submitted::Stored(lead) => Ok(lead),
        Submitted::TooMany => Err(ApiError::TooManyRequests {
            retry_after_secs: 3600,
        }),
    }
}

/// A lead with what it would become: the standardized customer and contact
/// (or why it can no longer be read), and the customers it looks like.
pub struct LeadView {
    pub lead: Lead,
    pub form: Option<IntakeForm>,
    pub submission: Result<Submission, ApiError>,
    pub suspects: Vec<Customer>,
}

/// The leads as a reviewer sees them: each read against today's rules,
/// with its form and the suspects the reviewer may read (the rules, the
/// forms and every suspect read once for all of them).
pub async fn views(
    state: &AppState,
    user: &CurrentUser,
    leads: Vec<Lead>,
) -> Result<Vec<LeadView>, ApiError> {
    let industries = state.store.industries().await?;
    let defs = state.store.custom_field_defs().await?;
    let rules = CustomerRules {
        industries: &industries,
        custom_fields: &defs,
        today: state.store.today(),
    };
    let forms = state.store.forms().await?;
    let mut ids: Vec<i64> = leads
        .iter()
        .flat_map(|l| l.suspects.iter().copied())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let suspects = state.store.customers_in(&ids).await?;
    let readable = |c: &&Customer| {
        user.actor.may(
            Permission::CustomerRead,
            kehu_core::role::Ownership {
                owner_id: c.owner_id,
                team: c.team.as_deref(),
            },
        )
    };
    Ok(leads
        .into_iter()
        .map(|lead| LeadView {
            form: forms.iter().find(|f| f.id == lead.form_id).cloned(),
            submission: read_submission(&lead.fields, &lead.submitted, true, &rules)
                .map_err(ApiError::from),
            suspects: suspects
                .iter()
                .filter(|c| lead.suspects.contains(&c.id))
                .filter(readable)
                .cloned()
                .collect(),
            lead,
        })
        .collect())
}

/// One lead as the reviewer sees it.
pub async fn view(state: &AppState, user: &CurrentUser, lead: Lead) -> Result<LeadView, ApiError> {
    views(state, user, vec![lead])
        .await?
        .pop()
        .ok_or(ApiError::NotFound)
}

fn reviewer(user: &CurrentUser) -> Result<(), ApiError> {
    if may_review(user) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// Pending (or decided) leads, oldest first.
pub async fn leads(
    state: &AppState,
    user: &CurrentUser,
    status: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<LeadView>, i64), ApiError> {
    reviewer(user)?;
    if !matches!(status, "pending" | "accepted" | "rejected") {
        return Err(ApiError::field(
            "status",
            Reason::UnknownOption {
                allowed: vec!["pending".into(), "accepted".into(), "rejected".into()],
            },
        ));
    }
    let (leads, total) = state
        .store
        .leads(status, limit.clamp(1, 500), offset.max(0))
        .await?;
    Ok((views(state, user, leads).await?, total))
}

pub async fn lead(state: &AppState, user: &CurrentUser, id: i64) -> Result<LeadView, ApiError> {
    reviewer(user)?;
    let lead = state.store.lead(id).await?;
    view(state, user, lead).await
}

/// Accepts a lead: a new customer owned by the form's owner (when the
/// reviewer's rights reach them, else the reviewer), or — with `existing` —
/// the submitter becomes a contact of that customer. The consent goes with it.
pub async fn accept(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    existing: Option<i64>,
) -> Result<(Lead, Customer), ApiError> {
    reviewer(user)?;
    let lead = state.store.lead(id).await?;
    let s = read(state, &lead.fields, &lead.submitted, true).await?;
    // Accepting writes what was submitted in the reviewer's name: each
    // field it sets needs their edit right, as if they typed it.
    let rights = &user.actor.fields;
    let mut refused = ValidationErrors::default();
    if existing.is_none() {
        let defs = state.store.custom_field_defs().await?;
        let customer = crate::privacy::check_customer_write(rights, &defs, None, &s.customer);
        refused.0.extend(customer.err().unwrap_or_default().0);
    }
    let contact = crate::privacy::check_contact_write(rights, None, &s.contact, "contact.");
    refused.0.extend(contact.err().unwrap_or_default().0);
    refused.into_result()?;
    let (lead, customer) = match existing {
        Some(customer_id) => {
            customer_for(state, user, customer_id, Permission::CustomerUpdate).await?;
            state
                .store
                .accept_lead(
                    id,
                    LeadTarget::Existing(customer_id),
                    &s.contact,
                    Some(user.user.id),
                )
                .await?
        }
        None => {
            let form_owner = state.store.form(lead.form_id).await?.owner_id;
            let owner =
                match resolve_owner(state, user, form_owner, Permission::CustomerCreate).await {
                    Ok(o) => o,
                    Err(_) => resolve_owner(state, user, None, Permission::CustomerCreate).await?,
                };
            let mut data = s.customer.clone();
            data.owner_id = owner.owner_id;
            state
                .store
                .accept_lead(
                    id,
                    LeadTarget::New(&data, &owner),
                    &s.contact,
                    Some(user.user.id),
                )
                .await?
        }
    };
    state.audit(
        Some(user),
        "lead.accept",
        format!("lead:{id}"),
        serde_json::json!({"customer": customer.code, "joined": existing.is_some()}),
    );
    state.after_data_change(customer.id, user.user.id).await;
    Ok((lead, customer))
}

pub async fn reject(state: &AppState, user: &CurrentUser, id: i64) -> Result<Lead, ApiError> {
    reviewer(user)?;
    let lead = state.store.reject_lead(id, Some(user.user.id)).await?;
    state.audit(
        Some(user),
        "lead.reject",
        format!("lead:{id}"),
        serde_json::json!({}),
    );
    Ok(lead)
}
