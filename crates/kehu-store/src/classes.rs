//! Stored classes: each customer's current class per scheme and the history
//! of changes. A classification run writes through one [`ClassWriter`]
//! transaction, so a run is stored whole or not at all.

use crate::bulk_read::Read;
use crate::db::{marks_from, placeholders, Arg, Exec, RowGet, Tx};
use crate::error::StoreError;
use crate::feed::{self, Changed, FeedKind, FeedSpan};
use crate::listing::{run_list, ListSpec, ScopeFilter};
use crate::model::Page;
use crate::{args, Store};
use chrono::{DateTime, NaiveDate, Utc};
use kehu_core::query::ListQuery;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A customer's class in one scheme that differs from what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassChange {
    pub customer_id: i64,
    pub scheme_key: String,
    pub from: Option<String>,
    pub to: String,
    pub score: Option<i64>,
    /// The version of the scheme that gave the class.
    pub scheme_version: i64,
    /// Why: one of [`cause`].
    pub cause: &'static str,
    /// Shown with the history entry (an override's reason).
    pub note: Option<String>,
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassHistoryEntry {
    pub id: i64,
    pub customer_id: i64,
    pub scheme_key: String,
    pub from_class: Option<String>,
    pub to_class: String,
    pub effective_on: NaiveDate,
    pub changed_at: DateTime<Utc>,
    pub cause: String,
    pub scheme_version: Option<i64>,
    pub changed_by: Option<i64>,
    pub note: Option<String>,
    /// Set when the change was another customer's, merged into this one.
    pub merged_from: Option<i64>,
}

/// Why a class changed, as stored in `class_history.cause`.
pub mod cause {
    /// A classification run (the daily job or `kehu classify`) over current data and dates.
    pub const EVALUATION: &str = "evaluation";
    /// The customer's data changed (an order, interaction or field was written).
    pub const DATA_CHANGE: &str = "data_change";
    /// A new rule version was published (or an earlier one rolled back to).
    pub const RULE_VERSION: &str = "rule_version";
    /// Set by hand.
    pub const OVERRIDE: &str = "override";
    /// An override was lifted: the rules decide again.
    pub const OVERRIDE_LIFTED: &str = "override_lifted";
}

/// The stored classes matching `filter`, in customer order.
fn classes_sql(filter: &str) -> String {
    format!("SELECT customer_id, scheme_key, class FROM customer_classes WHERE {filter} ORDER BY customer_id")
}

/// Stored classes matching `filter`, in customer order, coded by `code`.
async fn classes_where<T: Send + 'static>(
    store: &Store,
    filter: &str,
    args: Vec<Arg>,
    read: Read,
    code: Arc<impl Fn(i64, &str, &str) -> T + Send + Sync + 'static>,
) -> Result<Vec<T>, StoreError> {
    let sql = classes_sql(filter);
    read.all(&mut store.db.clone(), &sql, args, move |r: &dyn RowGet| {
        Ok(code(
            r.int("customer_id")?,
            r.str("scheme_key")?,
            r.str("class")?,
        ))
    })
    .await
}

/// [`Store::classes_in`] on `exec`.
pub(crate) async fn classes_in_on<T: Send>(
    exec: &mut impl Exec,
    ids: &[i64],
    code: impl Fn(i64, &str, &str) -> T + Send + Sync,
) -> Result<Vec<T>, StoreError> {
    let code = &code;
    crate::db::fetch_in(
        exec,
        &classes_sql("customer_id IN ({})"),
        ids,
        |r: &dyn RowGet| {
            Ok(code(
                r.int("customer_id")?,
                r.str("scheme_key")?,
                r.str("class")?,
            ))
        },
    )
    .await
}

/// What re-evaluating one customer reads besides its `facts`, which the
/// caller has: a write to its data in the transaction of `exec`, which
/// its re-evaluation commits with ([`crate::Opened`]).
pub async fn one_customer_inputs_with<T: Send>(
    exec: &mut impl Exec,
    facts: kehu_core::classify::Facts,
    day: NaiveDate,
    code: impl Fn(i64, &str, &str) -> T + Send + Sync,
) -> Result<OneCustomerInputs<T>, StoreError> {
    let customer_id = facts.customer_id;
    let classes = exec
        .fetch_all(
            &classes_sql("customer_id = $1"),
            args![customer_id],
            |r: &dyn RowGet| {
                Ok(code(
                    r.int("customer_id")?,
                    r.str("scheme_key")?,
                    r.str("class")?,
                ))
            },
        )
        .await?;
    let overrides = crate::overrides::overrides_on(exec, customer_id, customer_id, day).await?;
    Ok(OneCustomerInputs {
        facts,
        classes,
        overrides,
    })
}

/// Rows per multi-row statement (10 values each, under SQLite's 32,766 variables).
const ROWS_PER_STATEMENT: usize = 1_000;

/// What re-evaluating one customer reads.
pub struct OneCustomerInputs<T> {
    pub facts: kehu_core::classify::Facts,
    pub classes: Vec<T>,
    pub overrides: crate::overrides::OverridesByCustomer,
}

impl Store {
    /// What re-evaluating one customer reads — its facts, its stored
    /// classes (each row turned into a `T` by `code`, as in
    /// [`Store::classes_between`]) and its overrides in force on `day` — on
    /// one connection: a re-evaluation after each order checked the pool
    /// out five times for them.
    pub async fn one_customer_inputs<T: Send>(
        &self,
        customer_id: i64,
        day: NaiveDate,
        code: impl Fn(i64, &str, &str) -> T + Send + Sync,
    ) -> Result<OneCustomerInputs<T>, StoreError> {
        let mut conn = self.db.acquire().await?;
        let facts = crate::facts::digest_facts_on(&mut conn, customer_id).await?;
        one_customer_inputs_with(&mut conn, facts, day, code).await
    }

    /// Stored classes of customers `first..=last` in customer order, each
    /// row (customer, scheme key, class) turned into a `T` by `code` from
    /// borrowed text: a whole-base run reads ten million of them and keeps
    /// class indices, not strings.
    pub async fn classes_between<T: Send + 'static>(
        &self,
        first: i64,
        last: i64,
        code: impl Fn(i64, &str, &str) -> T + Send + Sync + 'static,
    ) -> Result<Vec<T>, StoreError> {
        // A range is a batch of a whole-base run; one customer (a single
        // re-evaluation, an explanation) needs no connection of its own.
        let read = match first == last {
            true => Read::One,
            false => Read::Bulk,
        };
        classes_where(
            self,
            "customer_id >= $1 AND customer_id <= $2",
            args![first, last],
            read,
            Arc::new(code),
        )
        .await
    }

    /// [`classes_between`](Self::classes_between) for the customers among
    /// `ids` (what changed since a run).
    pub async fn classes_in<T: Send + 'static>(
        &self,
        ids: &[i64],
        code: impl Fn(i64, &str, &str) -> T + Send + Sync + 'static,
    ) -> Result<Vec<T>, StoreError> {
        classes_in_on(&mut self.db.clone(), ids, code).await
    }

    /// One customer's stored classes: scheme → class.
    pub async fn classes_of_customer(
        &self,
        customer_id: i64,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let rows = self
            .classes_between(customer_id, customer_id, |_, scheme, class| {
                (scheme.to_string(), class.to_string())
            })
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// The current class in one scheme of the given customers (a page of a list).
    pub async fn classes_of(
        &self,
        scheme_key: &str,
        customer_ids: &[i64],
    ) -> Result<HashMap<i64, String>, StoreError> {
        if customer_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let sql = format!(
            "SELECT customer_id, class FROM customer_classes WHERE scheme_key = $1 AND customer_id IN ({})",
            marks_from(2, customer_ids.len())
        );
        let mut a = args![scheme_key];
        a.extend(customer_ids.iter().map(|&id| Arg::from(id)));
        Ok(self
            .db
            .clone()
            .fetch_all(&sql, a, |r: &dyn RowGet| {
                Ok((r.int("customer_id")?, r.text("class")?))
            })
            .await?
            .into_iter()
            .collect())
    }

    /// A customer's class changes, oldest first.
    pub async fn class_history(
        &self,
        customer_id: i64,
    ) -> Result<Vec<ClassHistoryEntry>, StoreError> {
        let sql = format!("SELECT {HISTORY_COLUMNS} FROM class_history WHERE customer_id = $1 ORDER BY effective_on, id");
        self.db
            .clone()
            .fetch_all(&sql, args![customer_id], decode_history)
            .await
    }

    /// The class of a customer in each scheme as of a date: the last change
    /// effective on or before it (schemes without one are left out).
    pub async fn classes_as_of(
        &self,
        customer_id: i64,
        as_of: NaiveDate,
    ) -> Result<Vec<ClassHistoryEntry>, StoreError> {
        let mut latest: Vec<ClassHistoryEntry> = Vec::new();
        let sql = format!("SELECT {HISTORY_COLUMNS} FROM class_history WHERE customer_id = $1 AND effective_on <= $2 AND merged_from IS NULL ORDER BY scheme_key, effective_on, id");
        for e in self
            .db
            .clone()
            .fetch_all(&sql, args![customer_id, as_of], decode_history)
            .await?
        {
            match latest.last_mut() {
                Some(last) if last.scheme_key == e.scheme_key => *last = e,
                _ => latest.push(e),
            }
        }
        Ok(latest)
    }

    /// Class changes of customers in scope, filtered, sorted and paged like every list
    /// (e.g. `scheme_key=value_tier&effective_on.gte=2024-01-01&effective_on.lte=2024-03-31`).
    pub async fn list_class_changes(
        &self,
        q: &ListQuery,
        scope: &ScopeFilter,
        with_total: bool,
    ) -> Result<Page<ClassHistoryEntry>, StoreError> {
        let spec = ListSpec {
            table: "class_history",
            columns: HISTORY_COLUMNS,
            search: &["from_class", "to_class"],
            scope,
            scope_via_customer: true,
            // Changes that came with a merged customer were that customer's.
            only: Some("class_history.merged_from IS NULL"),
        };
        run_list(&mut self.db.clone(), &spec, q, with_total, decode_history).await
    }
}

const HISTORY_COLUMNS: &str = "id, customer_id, scheme_key, from_class, to_class, effective_on, changed_at, cause, scheme_version, changed_by, note, merged_from";

fn decode_history(r: &dyn RowGet) -> Result<ClassHistoryEntry, sqlx::Error> {
    Ok(ClassHistoryEntry {
        id: r.int("id")?,
        customer_id: r.int("customer_id")?,
        scheme_key: r.text("scheme_key")?,
        from_class: r.opt_text("from_class")?,
        to_class: r.text("to_class")?,
        effective_on: r.opt_date("effective_on")?.unwrap_or_default(),
        changed_at: r.time("changed_at")?,
        cause: r.text("cause")?,
        scheme_version: r.opt_int("scheme_version")?,
        changed_by: r.opt_int("changed_by")?,
        note: r.opt_text("note")?,
        merged_from: r.opt_int("merged_from")?,
    })
}

/// Class changes in one run past which the statistics are refreshed.
const STATISTICS_AFTER: u64 = 100_000;

/// Writes the changes of one classification run in one transaction; other
/// writes that belong with them (publishing a version, setting an override)
/// go through [`ClassWriter::tx`] so they commit or fail together.
pub struct ClassWriter {
    db: crate::db::Db,
    tx: Tx,
    as_of: NaiveDate,
    by: Option<i64>,
    now: DateTime<Utc>,
    written: u64,
    /// Customers whose classes this writer changed (for the change feed).
    customers: Changed,
    /// A customer whose data was written in the transaction before this
    /// writer took it over: its facts entry goes in with the writer's.
    facts_of: Option<i64>,
}

/// What a [`ClassWriter`] stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub changes: u64,
    /// Its change feed entries (None when nothing changed).
    pub feed: Option<FeedSpan>,
}

impl ClassWriter {
    pub async fn begin(
        store: &Store,
        as_of: NaiveDate,
        by: Option<i64>,
    ) -> Result<ClassWriter, StoreError> {
        Ok(ClassWriter::within(
            store,
            store.db.begin().await?,
            as_of,
            by,
        ))
    }

    /// A writer in a transaction already open: its changes commit with
    /// what was written there (see also [`crate::Opened::class_writer`]).
    pub(crate) fn within(store: &Store, tx: Tx, as_of: NaiveDate, by: Option<i64>) -> ClassWriter {
        ClassWriter {
            db: store.db.clone(),
            tx,
            as_of,
            by,
            now: Utc::now(),
            written: 0,
            customers: Changed::Nobody,
            facts_of: None,
        }
    }

    /// The facts entry of `customer_id`, whose data was written in the
    /// transaction before this writer took it over, goes in with the
    /// writer's entries at [`finish`](Self::finish).
    pub(crate) fn after_facts_of(mut self, customer_id: i64) -> ClassWriter {
        self.facts_of = Some(customer_id);
        self
    }

    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// Stores new classes (upsert) and records each change.
    pub async fn write(&mut self, changes: &[ClassChange]) -> Result<(), StoreError> {
        let backend = self.tx.backend();
        for part in changes.chunks(ROWS_PER_STATEMENT) {
            let mut upsert = String::from("INSERT INTO customer_classes (customer_id, scheme_key, class, scheme_version, score, as_of, evaluated_at) VALUES ");
            let mut history = String::from("INSERT INTO class_history (customer_id, scheme_key, from_class, to_class, effective_on, changed_at, cause, scheme_version, changed_by, note) VALUES ");
            let (mut a, mut h): (Vec<Arg>, Vec<Arg>) = (Vec::new(), Vec::new());
            for (i, c) in part.iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                upsert.push_str(&format!("{sep}{}", placeholders(backend, i * 7, 7)));
                a.extend(args![
                    c.customer_id,
                    c.scheme_key.clone(),
                    c.to.clone(),
                    c.scheme_version,
                    c.score,
                    self.as_of,
                    self.now
                ]);
                history.push_str(&format!("{sep}{}", placeholders(backend, i * 10, 10)));
                h.extend(args![
                    c.customer_id,
                    c.scheme_key.clone(),
                    c.from.clone(),
                    c.to.clone(),
                    self.as_of,
                    self.now,
                    c.cause,
                    c.scheme_version,
                    self.by,
                    c.note.clone()
                ]);
            }
            upsert.push_str(
                " ON CONFLICT (scheme_key, customer_id) DO UPDATE SET class = excluded.class, scheme_version = excluded.scheme_version, \
                 score = excluded.score, as_of = excluded.as_of, evaluated_at = excluded.evaluated_at",
            );
            self.tx.execute(&upsert, a).await?;
            self.tx.execute(&history, h).await?;
        }
        self.written += changes.len() as u64;
        for c in changes {
            self.customers.note(c.customer_id);
        }
        Ok(())
    }

    /// Records the changed customers in the change feed and commits. After
    /// a run that wrote many changes the planner's statistics of the class
    /// tables follow at once (reports read the history by scheme and date:
    /// with stale statistics PostgreSQL sorts a million rows on disk).
    pub async fn finish(mut self) -> Result<Stored, StoreError> {
        let feed = feed::record_changed_after(
            &mut self.tx,
            self.facts_of,
            FeedKind::Classes,
            &self.customers,
        )
        .await?;
        self.tx.commit().await?;
        if self.written >= STATISTICS_AFTER {
            crate::refresh_statistics(&self.db, &["class_history", "customer_classes"]).await?;
        }
        Ok(Stored {
            changes: self.written,
            feed,
        })
    }
}
