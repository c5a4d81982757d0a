//! Web-form intake: the forms, the leads they bring, and the consent a
//! lead carries to the customer it becomes.
//!
//! *Invariants*: a lead is stored with what was consented to (the purpose
//! text and its version, when) in the same statement as the submission;
//! rate limits are counted inside the inserting transaction; accepting a
//! lead writes the customer (or the contact on an existing customer), the
//! consent record and the lead's decision in one transaction.

use crate::cipher::FieldCipher;
use crate::customers::insert_customer_in;
use crate::db::{decode_n, Exec, RowGet};
use crate::error::StoreError;
use crate::feed::{self, FeedKind};
use crate::model::Customer;
use crate::records::insert_contact_in;
use crate::{args, json_list, Owner, Store};
use chrono::{DateTime, Duration, Utc};
use kehu_core::contact::ContactData;
use kehu_core::customer::CustomerData;
use kehu_core::intake::FormSpec;
use kehu_core::{Reason, ValidationErrors};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntakeForm {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub fields: Vec<String>,
    pub purpose: String,
    pub purpose_version: i64,
    pub owner_id: Option<i64>,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const FORM_COLUMNS: &str =
    "id, slug, title, fields, purpose, purpose_version, owner_id, active, version, created_at, updated_at";

fn decode_form(r: &dyn RowGet) -> Result<IntakeForm, sqlx::Error> {
    Ok(IntakeForm {
        id: r.int("id")?,
        slug: r.text("slug")?,
        title: r.text("title")?,
        fields: json_list(r.json("fields")?),
        purpose: r.text("purpose")?,
        purpose_version: r.int("purpose_version")?,
        owner_id: r.opt_int("owner_id")?,
        active: r.boolean("active")?,
        version: r.int("version")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lead {
    pub id: i64,
    pub form_id: i64,
    /// The form's fields when it was submitted.
    pub fields: Vec<String>,
    /// What was filled in, by field.
    pub submitted: BTreeMap<String, String>,
    pub purpose: String,
    pub purpose_version: i64,
    pub consented_at: DateTime<Utc>,
    /// Customers it looked like when it came in.
    pub suspects: Vec<i64>,
    /// pending | accepted | rejected
    pub status: String,
    pub customer_id: Option<i64>,
    pub decided_by: Option<i64>,
    pub decided_at: Option<DateTime<Utc>>,
}

const LEAD_COLUMNS: &str =
    "id, form_id, fields, submitted, purpose, purpose_version, consented_at, suspects, status, \
customer_id, decided_by, decided_at";

fn decode_lead(r: &dyn RowGet) -> Result<Lead, sqlx::Error> {
    let submitted = match r.json("submitted")? {
        Value::Object(m) => m
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
            .collect(),
        _ => BTreeMap::new(),
    };
    Ok(Lead {
        id: r.int("id")?,
        form_id: r.int("form_id")?,
        fields: json_list(r.json("fields")?),
        submitted,
        purpose: r.text("purpose")?,
        purpose_version: r.int("purpose_version")?,
        consented_at: r.time("consented_at")?,
        suspects: r
            .json("suspects")?
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default(),
        status: r.text("status")?,
        customer_id: r.opt_int("customer_id")?,
        decided_by: r.opt_int("decided_by")?,
        decided_at: r.opt_time("decided_at")?,
    })
}

/// [`decode_lead`] with the personal values opened.
fn lead_decoder(cipher: &FieldCipher) -> impl crate::db::Decode<Lead> + Copy + '_ {
    move |r: &dyn RowGet| {
        let mut lead = decode_lead(r)?;
        for (k, v) in lead.submitted.iter_mut() {
            *v = cipher
                .open_lead_value(k, v)
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        }
        Ok(lead)
    }
}

/// A consent as stored with a customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Consent {
    pub id: i64,
    pub customer_id: i64,
    pub contact_id: Option<i64>,
    pub purpose: String,
    pub purpose_version: i64,
    pub channel: String,
    pub given_at: DateTime<Utc>,
    pub lead_id: Option<i64>,
    pub withdrawn_at: Option<DateTime<Utc>>,
}

/// How many submissions an hour are taken: from one client, and on one form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub per_client: i64,
    pub per_form: i64,
}

/// A submission to store.
pub struct NewLead<'a> {
    pub form: &'a IntakeForm,
    pub submitted: &'a BTreeMap<String, String>,
    pub client_hash: &'a str,
    pub suspects: &'a [i64],
}

/// What became of a submission.
#[derive(Debug, Clone, PartialEq)]
pub enum Submitted {
    Stored(Lead),
    /// Over a rate limit: nothing stored.
    TooMany,
}

/// What an accepted lead becomes.
pub enum LeadTarget<'a> {
    /// A new customer, owned so.
    New(&'a CustomerData, &'a Owner),
    /// A contact (and the consent) on a customer already stored.
    Existing(i64),
}

fn slug_taken(e: StoreError) -> StoreError {
    crate::customers::map_unique(e, &["slug"])
}

impl Store {
    pub async fn create_form(
        &self,
        spec: &FormSpec,
        owner_id: Option<i64>,
        by: Option<i64>,
    ) -> Result<IntakeForm, StoreError> {
        let now = Utc::now();
        let sql = format!(
            "INSERT INTO intake_forms (slug, title, fields, purpose, owner_id, created_by, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING {FORM_COLUMNS}"
        );
        self.db
            .clone()
            .fetch_one(
                &sql,
                args![
                    spec.slug.clone(),
                    spec.title.clone(),
                    Value::from(spec.fields.clone()),
                    spec.purpose.clone(),
                    owner_id,
                    by,
                    now,
                    now
                ],
                decode_form,
            )
            .await
            .map_err(slug_taken)
    }

    /// Replaces a form at `expected_version`; a changed purpose text gets a
    /// new purpose version (consents name the version they were given to).
    pub async fn update_form(
        &self,
        id: i64,
        expected_version: i64,
        spec: &FormSpec,
        owner_id: Option<i64>,
        active: bool,
    ) -> Result<IntakeForm, StoreError> {
        let mut tx = self.db.begin_write().await?;
        crate::db::check_version(&mut tx, "intake_forms", id, expected_version).await?;
        let sql = format!(
            "UPDATE intake_forms SET slug = $1, title = $2, fields = $3, \
             purpose_version = CASE WHEN purpose = $4 THEN purpose_version ELSE purpose_version + 1 END, purpose = $4, \
             owner_id = $5, active = $6, updated_at = $7, version = version + 1 WHERE id = $8 RETURNING {FORM_COLUMNS}"
        );
        let form = tx
            .fetch_one(
                &sql,
                args![
                    spec.slug.clone(),
                    spec.title.clone(),
                    Value::from(spec.fields.clone()),
                    spec.purpose.clone(),
                    owner_id,
                    active,
                    Utc::now(),
                    id
                ],
                decode_form,
            )
            .await
            .map_err(slug_taken)?;
        tx.commit().await?;
        Ok(form)
    }

    pub async fn forms(&self) -> Result<Vec<IntakeForm>, StoreError> {
        let sql = format!("SELECT {FORM_COLUMNS} FROM intake_forms ORDER BY id");
        self.db.clone().fetch_all(&sql, vec![], decode_form).await
    }

    pub async fn form(&self, id: i64) -> Result<IntakeForm, StoreError> {
        let sql = format!("SELECT {FORM_COLUMNS} FROM intake_forms WHERE id = $1");
        self.db
            .clone()
            .fetch_one(&sql, args![id], decode_form)
            .await
    }

    pub async fn form_by_slug(&self, slug: &str) -> Result<IntakeForm, StoreError> {
        let sql = format!("SELECT {FORM_COLUMNS} FROM intake_forms WHERE slug = $1");
        self.db
            .clone()
            .fetch_one(&sql, args![slug.to_string()], decode_form)
            .await
    }

    /// Stores a submission as a pending lead, unless the client or the form
    /// is over its hourly limit.
    pub async fn submit_lead(
        &self,
        new: NewLead<'_>,
        limits: RateLimits,
    ) -> Result<Submitted, StoreError> {
        let now = Utc::now();
        let since = now - Duration::hours(1);
        let mut tx = self.db.begin_write().await?;
        let from_client = tx
            .fetch_one(
                "SELECT COUNT(*) AS n FROM leads WHERE client_hash = $1 AND consented_at > $2",
                args![new.client_hash.to_string(), since],
                decode_n,
            )
            .await?;
        let on_form = tx
            .fetch_one(
                "SELECT COUNT(*) AS n FROM leads WHERE form_id = $1 AND consented_at > $2",
                args![new.form.id, since],
                decode_n,
            )
            .await?;
        if from_client >= limits.per_client || on_form >= limits.per_form {
            return Ok(Submitted::TooMany);
        }
        let mut submitted: serde_json::Map<String, Value> = new
            .submitted
            .iter()
            .filter(|(k, _)| new.form.fields.contains(k))
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        let personal = self.personal_keys().await?;
        self.cipher.seal_submitted(&mut submitted, &personal);
        let sql = format!(
            "INSERT INTO leads (form_id, fields, submitted, purpose, purpose_version, consented_at, client_hash, suspects, status) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,'pending') RETURNING {LEAD_COLUMNS}"
        );
        let lead = tx
            .fetch_one(
                &sql,
                args![
                    new.form.id,
                    Value::from(new.form.fields.clone()),
                    Value::Object(submitted),
                    new.form.purpose.clone(),
                    new.form.purpose_version,
                    now,
                    new.client_hash.to_string(),
                    Value::from(new.suspects.to_vec())
                ],
                lead_decoder(&self.cipher),
            )
            .await?;
        tx.commit().await?;
        Ok(Submitted::Stored(lead))
    }

    /// Leads of `status`, oldest first, and how many there are.
    pub async fn leads(
        &self,
        status: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Lead>, i64), StoreError> {
        let total = self
            .db
            .clone()
            .fetch_one(
                "SELECT COUNT(*) AS n FROM leads WHERE status = $1",
                args![status.to_string()],
                decode_n,
            )
            .await?;
        let sql = format!(
            "SELECT {LEAD_COLUMNS} FROM leads WHERE status = $1 ORDER BY id LIMIT $2 OFFSET $3"
        );
        let leads = self
            .db
            .clone()
            .fetch_all(
                &sql,
                args![status.to_string(), limit, offset],
                lead_decoder(&self.cipher),
            )
            .await?;
        Ok((leads, total))
    }

    pub async fn lead(&self, id: i64) -> Result<Lead, StoreError> {
        let sql = format!("SELECT {LEAD_COLUMNS} FROM leads WHERE id = $1");
        self.db
            .clone()
            .fetch_one(&sql, args![id], lead_decoder(&self.cipher))
            .await
    }

    /// Accepts a pending lead: the customer (new, or the one named) with the
    /// submitter as a contact and their consent, in one transaction.
    pub async fn accept_lead(
        &self,
        id: i64,
        target: LeadTarget<'_>,
        contact: &ContactData,
        by: Option<i64>,
    ) -> Result<(Lead, Customer), StoreError> {
        let personal = self.personal_keys().await?;
        let seal = crate::cipher::CustomSeal {
            cipher: &self.cipher,
            personal: &personal,
        };
        let mut tx = self.db.begin_write().await?;
        let lead = pending(&mut tx, &self.cipher, id).await?;
        let customer = match target {
            LeadTarget::New(data, owner) => {
                insert_customer_in(&mut tx, &seal, data, owner, by).await?
            }
            LeadTarget::Existing(customer_id) => {
                crate::customers::customer_in(&mut tx, &self.cipher, customer_id).await?
            }
        };
        let others = tx
            .fetch_one(
                "SELECT COUNT(*) AS n FROM contacts WHERE customer_id = $1",
                args![customer.id],
                decode_n,
            )
            .await?
            > 0;
        let mut contact = contact.clone();
        // Joining a customer that has contacts: not its primary contact by itself.
        contact.is_primary = contact.is_primary && !others;
        let stored =
            insert_contact_in(&mut tx, &self.cipher, customer.id, &contact, others).await?;
        tx.execute(
            "INSERT INTO consents (customer_id, contact_id, purpose, purpose_version, channel, given_at, lead_id) \
             VALUES ($1, $2, $3, $4, 'web_form', $5, $6)",
            args![
                customer.id,
                stored.id,
                lead.purpose.clone(),
                lead.purpose_version,
                lead.consented_at,
                lead.id
            ],
        )
        .await?;
        let sql = format!(
            "UPDATE leads SET status = 'accepted', customer_id = $1, decided_by = $2, decided_at = $3 WHERE id = $4 RETURNING {LEAD_COLUMNS}"
        );
        let lead = tx
            .fetch_one(
                &sql,
                args![customer.id, by, Utc::now(), id],
                lead_decoder(&self.cipher),
            )
            .await?;
        feed::record(&mut tx, FeedKind::Facts, &[customer.id]).await?;
        tx.commit().await?;
        Ok((lead, customer))
    }

    /// Rejects a pending lead (spam, not a customer); it is kept as rejected.
    pub async fn reject_lead(&self, id: i64, by: Option<i64>) -> Result<Lead, StoreError> {
        let mut tx = self.db.begin_write().await?;
        pending(&mut tx, &self.cipher, id).await?;
        let sql = format!(
            "UPDATE leads SET status = 'rejected', decided_by = $1, decided_at = $2 WHERE id = $3 RETURNING {LEAD_COLUMNS}"
        );
        let lead = tx
            .fetch_one(&sql, args![by, Utc::now(), id], lead_decoder(&self.cipher))
            .await?;
        tx.commit().await?;
        Ok(lead)
    }

    /// The shared secret `name`, made from `fresh` the first time it is asked for.
    pub async fn secret(&self, name: &str, fresh: String) -> Result<String, StoreError> {
        let mut tx = self.db.begin_write().await?;
        tx.execute(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            args![name.to_string(), fresh],
        )
        .await?;
        let value = tx
            .fetch_one(
                "SELECT value FROM secrets WHERE name = $1",
                args![name.to_string()],
                |r: &dyn RowGet| r.text("value"),
            )
            .await?;
        tx.commit().await?;
        Ok(value)
    }

    /// Records a consent given outside a web form (on the phone, on paper,
    /// …) for `customer_id`, for one of its contacts or the customer as a
    /// whole. A contact of another customer is refused, naming
    /// `contact_id`.
    pub async fn record_consent(
        &self,
        customer_id: i64,
        d: &kehu_core::intake::ConsentData,
        given_at: DateTime<Utc>,
    ) -> Result<Consent, StoreError> {
        let mut tx = self.db.begin().await?;
        if let Some(contact) = d.contact_id {
            let of = tx
                .fetch_optional(
                    "SELECT customer_id AS n FROM contacts WHERE id = $1",
                    args![contact],
                    crate::db::decode_n,
                )
                .await?;
            if of != Some(customer_id) {
                return Err(StoreError::Invalid(ValidationErrors::single(
                    "contact_id",
                    Reason::Other {
                        zh: "不是这个客户的联系人".into(),
                        en: "not a contact of this customer".into(),
                    },
                )));
            }
        }
        let c = tx
            .fetch_one(
                "INSERT INTO consents (customer_id, contact_id, purpose, purpose_version, channel, given_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 RETURNING id, customer_id, contact_id, purpose, purpose_version, channel, given_at, lead_id, withdrawn_at",
                args![
                    customer_id,
                    d.contact_id,
                    d.purpose.clone(),
                    d.purpose_version,
                    d.channel.clone(),
                    given_at
                ],
                decode_consent,
            )
            .await?;
        tx.commit().await?;
        Ok(c)
    }

    /// The consents given for a customer, newest first.
    pub async fn consents_of(&self, customer_id: i64) -> Result<Vec<Consent>, StoreError> {
        self.db
            .clone()
            .fetch_all(
                "SELECT id, customer_id, contact_id, purpose, purpose_version, channel, given_at, lead_id, withdrawn_at \
                 FROM consents WHERE customer_id = $1 ORDER BY id DESC",
                args![customer_id],
                decode_consent,
            )
            .await
    }
}

async fn pending(
    tx: &mut crate::db::Tx,
    cipher: &FieldCipher,
    id: i64,
) -> Result<Lead, StoreError> {
    let sql = format!("SELECT {LEAD_COLUMNS} FROM leads WHERE id = $1");
    let lead = tx.fetch_one(&sql, args![id], lead_decoder(cipher)).await?;
    if lead.status != "pending" {
        return Err(StoreError::Invalid(ValidationErrors::single(
            "status",
            Reason::Other {
                zh: format!("这条线索已处理（{}）", lead.status),
                en: format!("this lead was already decided ({})", lead.status),
            },
        )));
    }
    Ok(lead)
}

pub(crate) fn decode_consent(r: &dyn RowGet) -> Result<Consent, sqlx::Error> {
    Ok(Consent {
        id: r.int("id")?,
        customer_id: r.int("customer_id")?,
        contact_id: r.opt_int("contact_id")?,
        purpose: r.text("purpose")?,
        purpose_version: r.int("purpose_version")?,
        channel: r.text("channel")?,
        given_at: r.time("given_at")?,
        lead_id: r.opt_int("lead_id")?,
        withdrawn_at: r.opt_time("withdrawn_at")?,
    })
}
