//! The change feed (`change_feed`): which customers' classification input,
//! stored classes or tags changed, in commit order, so a process that keeps
//! everyone's measured metrics and classes in memory catches up by reading
//! what changed since it last looked instead of everything.
//!
//! *Invariant*: every write that changes a customer's fields, orders,
//! interactions or stored classes appends here in its own transaction. On
//! PostgreSQL the appending statement takes a transaction-level advisory
//! lock before it draws its first `seq`, so entries commit in `seq` order and a reader that saw entry N has seen
//! every entry below it (SQLite has one writer at a time anyway).

use crate::db::{Arg, Backend, Exec, RowGet};
use crate::error::StoreError;
use crate::{args, Store};
use chrono::Utc;
use std::collections::BTreeSet;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    /// A customer's fields, orders or interactions.
    Facts,
    /// A customer's stored classes.
    Classes,
    /// A customer's tags.
    Tags,
}

impl FeedKind {
    fn as_str(self) -> &'static str {
        match self {
            FeedKind::Facts => "facts",
            FeedKind::Classes => "classes",
            FeedKind::Tags => "tags",
        }
    }
}

/// The entries one transaction appended (seq range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedSpan {
    pub first: i64,
    pub last: i64,
}

impl FeedSpan {
    pub fn holds(&self, seq: i64) -> bool {
        (self.first..=self.last).contains(&seq)
    }
}

/// Which customers changed in one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Changed {
    #[default]
    Nobody,
    Some(BTreeSet<i64>),
    /// Any customer may have: read everything again.
    Everyone,
}

impl Changed {
    /// Adds a customer; past [`MANY`] customers, anyone.
    pub(crate) fn note(&mut self, customer: i64) {
        self.add(Some(customer));
        if matches!(self, Changed::Some(ids) if ids.len() > MANY) {
            *self = Changed::Everyone;
        }
    }

    fn add(&mut self, customer: Option<i64>) {
        match (customer, &mut *self) {
            (_, Changed::Everyone) => {}
            (None, _) => *self = Changed::Everyone,
            (Some(id), Changed::Some(ids)) => {
                ids.insert(id);
            }
            (Some(id), Changed::Nobody) => *self = Changed::Some(BTreeSet::from([id])),
        }
    }
}

const HEAD_SQL: &str = "SELECT COALESCE(MAX(seq), 0) AS seq FROM change_feed";

/// What changed after a feed position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedRead {
    /// The last entry read (the position to read after next time).
    pub last: i64,
    pub facts: Changed,
    pub classes: Changed,
    pub tags: Changed,
}

/// A write touching more customers than this is logged as "any customer";
/// a reader finding more entries than this reads everything again.
const MANY: usize = 1_000;
const MANY_READ: i64 = 100_000;

/// Appends `customers` to the feed in the caller's transaction.
pub(crate) async fn record(
    exec: &mut impl Exec,
    kind: FeedKind,
    customers: &[i64],
) -> Result<Option<FeedSpan>, StoreError> {
    let mut changed = Changed::Nobody;
    for &id in customers {
        changed.note(id);
    }
    record_changed(exec, kind, &changed).await
}

/// Appends what `changed` names: one entry per customer, or one "anyone".
pub(crate) async fn record_changed(
    exec: &mut impl Exec,
    kind: FeedKind,
    changed: &Changed,
) -> Result<Option<FeedSpan>, StoreError> {
    record_changed_after(exec, None, kind, changed).await
}

/// [`record_changed`], with a [`FeedKind::Facts`] entry for `facts_of`
/// first in the same statement (a write to that customer's data in the
/// same transaction, [`crate::Opened`]). The span is of `kind`'s entries.
pub(crate) async fn record_changed_after(
    exec: &mut impl Exec,
    facts_of: Option<i64>,
    kind: FeedKind,
    changed: &Changed,
) -> Result<Option<FeedSpan>, StoreError> {
    let mut entries: Vec<(FeedKind, Option<i64>)> = facts_of
        .map(|id| (FeedKind::Facts, Some(id)))
        .into_iter()
        .collect();
    match changed {
        Changed::Nobody => {}
        Changed::Everyone => entries.push((kind, None)),
        Changed::Some(ids) => entries.extend(ids.iter().map(|&id| (kind, Some(id)))),
    }
    if entries.is_empty() {
        return Ok(None);
    }
    let backend = exec.backend();
    let mut values = String::new();
    let mut a: Vec<Arg> = Vec::with_capacity(entries.len() * 3);
    let now = Utc::now();
    for (i, (entry_kind, id)) in entries.iter().enumerate() {
        if i > 0 {
            values.push(',');
        }
        values.push_str(&match backend {
            Backend::Sqlite => "(?,?,?)".to_string(),
            Backend::Postgres => format!("(${},${},${})", i * 3 + 1, i * 3 + 2, i * 3 + 3),
        });
        a.extend(args![entry_kind.as_str(), *id, now]);
    }
    let sql = format!("{} RETURNING seq, kind", append_sql(backend, &values));
    let rows = exec
        .fetch_all(&sql, a, |r: &dyn RowGet| {
            Ok((r.int("seq")?, r.text("kind")?))
        })
        .await?;
    let seqs: Vec<i64> = rows
        .into_iter()
        .filter(|(_, k)| k == kind.as_str())
        .map(|(seq, _)| seq)
        .collect();
    Ok(span(&seqs))
}

/// Appends "any customer may have changed".
pub(crate) async fn record_everyone(
    exec: &mut impl Exec,
    kind: FeedKind,
) -> Result<FeedSpan, StoreError> {
    let sql = format!(
        "{} RETURNING seq",
        append_sql(exec.backend(), "($1, CAST(NULL AS BIGINT), $2)")
    );
    let seq = exec
        .fetch_one(&sql, args![kind.as_str(), Utc::now()], |r: &dyn RowGet| {
            r.int("seq")
        })
        .await?;
    Ok(FeedSpan {
        first: seq,
        last: seq,
    })
}

fn span(seqs: &[i64]) -> Option<FeedSpan> {
    Some(FeedSpan {
        first: *seqs.iter().min()?,
        last: *seqs.iter().max()?,
    })
}

/// The INSERT of `values` (rows of kind, customer, time). On PostgreSQL
/// the rows come out of a join with the advisory lock that orders
/// appends (see the module), so the lock is held before the first `seq`
/// is drawn, in the same statement.
fn append_sql(backend: Backend, values: &str) -> String {
    match backend {
        Backend::Sqlite => {
            format!("INSERT INTO change_feed (kind, customer_id, changed_at) VALUES {values}")
        }
        Backend::Postgres => format!(
            "INSERT INTO change_feed (kind, customer_id, changed_at) \
             SELECT v.kind, v.customer_id, v.changed_at FROM (VALUES {values}) AS v (kind, customer_id, changed_at) \
             CROSS JOIN (SELECT pg_advisory_xact_lock(7071002)) AS feed_lock"
        ),
    }
}

impl Store {
    /// The last feed entry (0 when empty): a reader about to read
    /// everything starts after it.
    pub async fn feed_head(&self) -> Result<i64, StoreError> {
        self.db
            .clone()
            .fetch_one(HEAD_SQL, vec![], |r: &dyn RowGet| r.int("seq"))
            .await
    }

    /// What changed after entry `after`, leaving out the entries in `skip`
    /// (the reader's own writes). Very many entries read as "everyone".
    pub async fn feed_after(&self, after: i64, skip: &[FeedSpan]) -> Result<FeedRead, StoreError> {
        feed_after_on(&mut self.db.clone(), after, skip).await
    }
}

/// [`Store::feed_after`] on `exec`.
pub(crate) async fn feed_after_on(
    exec: &mut impl Exec,
    after: i64,
    skip: &[FeedSpan],
) -> Result<FeedRead, StoreError> {
    let rows = exec
        .fetch_all(
            "SELECT seq, kind, customer_id FROM change_feed WHERE seq > $1 ORDER BY seq LIMIT $2",
            args![after, MANY_READ + 1],
            |r: &dyn RowGet| Ok((r.int("seq")?, r.text("kind")?, r.opt_int("customer_id")?)),
        )
        .await?;
    let mut read = FeedRead {
        last: after,
        ..FeedRead::default()
    };
    if rows.len() as i64 > MANY_READ {
        read.last = exec
            .fetch_one(HEAD_SQL, vec![], |r: &dyn RowGet| r.int("seq"))
            .await?;
        read.facts = Changed::Everyone;
        read.classes = Changed::Everyone;
        read.tags = Changed::Everyone;
        return Ok(read);
    }
    for (seq, kind, customer) in rows {
        read.last = seq;
        if skip.iter().any(|s| s.holds(seq)) {
            continue;
        }
        match kind.as_str() {
            "facts" => read.facts.add(customer),
            "tags" => read.tags.add(customer),
            _ => read.classes.add(customer),
        }
    }
    Ok(read)
}
