//! Classes set by hand (`class_overrides`). An override is active from when
//! it is set until it is lifted or its expiry date arrives; at most one is
//! active per customer and scheme (a unique partial index enforces it).

use crate::db::{Exec, RowGet, Tx};
use crate::error::StoreError;
use crate::{args, Store};
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassOverride {
    pub id: i64,
    pub customer_id: i64,
    pub scheme_key: String,
    pub class: String,
    pub reason: String,
    /// The first day it no longer holds.
    pub expires_on: Option<NaiveDate>,
    pub set_by: Option<i64>,
    pub set_at: DateTime<Utc>,
    pub lifted_by: Option<i64>,
    pub lifted_at: Option<DateTime<Utc>>,
}

impl ClassOverride {
    /// Whether it decides the class on `day`.
    pub fn holds_on(&self, day: NaiveDate) -> bool {
        self.lifted_at.is_none() && self.expires_on.is_none_or(|e| day < e)
    }
}

/// A new override, checked by the caller (known scheme and class, reason given).
#[derive(Debug, Clone)]
pub struct NewOverride<'a> {
    pub customer_id: i64,
    pub scheme_key: &'a str,
    pub class: &'a str,
    pub reason: &'a str,
    pub expires_on: Option<NaiveDate>,
    pub by: Option<i64>,
}

const COLUMNS: &str =
    "id, customer_id, scheme_key, class, reason, expires_on, set_by, set_at, lifted_by, lifted_at";

fn decode(r: &dyn RowGet) -> Result<ClassOverride, sqlx::Error> {
    Ok(ClassOverride {
        id: r.int("id")?,
        customer_id: r.int("customer_id")?,
        scheme_key: r.text("scheme_key")?,
        class: r.text("class")?,
        reason: r.text("reason")?,
        expires_on: r.opt_date("expires_on")?,
        set_by: r.opt_int("set_by")?,
        set_at: r.time("set_at")?,
        lifted_by: r.opt_int("lifted_by")?,
        lifted_at: r.opt_time("lifted_at")?,
    })
}

/// Overrides of customers, by customer id, then scheme key.
pub type OverridesByCustomer = HashMap<i64, HashMap<String, ClassOverride>>;

impl Store {
    /// Not-lifted overrides of customers `first..=last` that hold on `day`.
    pub async fn overrides_between(
        &self,
        first: i64,
        last: i64,
        day: NaiveDate,
    ) -> Result<OverridesByCustomer, StoreError> {
        overrides_on(&mut self.db.clone(), first, last, day).await
    }

    /// Every override of a customer, newest first (lifted and expired too).
    pub async fn overrides_of(&self, customer_id: i64) -> Result<Vec<ClassOverride>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM class_overrides WHERE customer_id = $1 ORDER BY id DESC"
        );
        self.db
            .clone()
            .fetch_all(&sql, args![customer_id], decode)
            .await
    }
}

/// Lifts the active override of (customer, scheme), if any; returns it.
pub async fn lift_override(
    tx: &mut Tx,
    customer_id: i64,
    scheme_key: &str,
    by: Option<i64>,
) -> Result<Option<ClassOverride>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM class_overrides WHERE customer_id = $1 AND scheme_key = $2 AND lifted_at IS NULL");
    let Some(mut active) = tx
        .fetch_optional(&sql, args![customer_id, scheme_key], decode)
        .await?
    else {
        return Ok(None);
    };
    let now = Utc::now();
    tx.execute(
        "UPDATE class_overrides SET lifted_by = $1, lifted_at = $2 WHERE id = $3",
        args![by, now, active.id],
    )
    .await?;
    active.lifted_by = by;
    active.lifted_at = Some(now);
    Ok(Some(active))
}

/// Sets an override, lifting the one it replaces.
pub async fn set_override(tx: &mut Tx, o: &NewOverride<'_>) -> Result<ClassOverride, StoreError> {
    lift_override(tx, o.customer_id, o.scheme_key, o.by).await?;
    let sql = format!("INSERT INTO class_overrides (customer_id, scheme_key, class, reason, expires_on, set_by, set_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}");
    tx.fetch_one(
        &sql,
        args![
            o.customer_id,
            o.scheme_key,
            o.class,
            o.reason,
            o.expires_on,
            o.by,
            Utc::now()
        ],
        decode,
    )
    .await
}

/// [`Store::overrides_between`] on `exec`.
pub(crate) async fn overrides_on(
    exec: &mut impl Exec,
    first: i64,
    last: i64,
    day: NaiveDate,
) -> Result<OverridesByCustomer, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM class_overrides WHERE customer_id >= $1 AND customer_id <= $2 AND lifted_at IS NULL");
    let rows = exec.fetch_all(&sql, args![first, last], decode).await?;
    let mut out: OverridesByCustomer = HashMap::new();
    for o in rows.into_iter().filter(|o| o.holds_on(day)) {
        out.entry(o.customer_id)
            .or_default()
            .insert(o.scheme_key.clone(), o);
    }
    Ok(out)
}
