//! What the period reports read: each customer's class in a scheme at two
//! dates (from `class_history`), orders in and before a period (from the
//! customers' fact digests, the records where a digest is missing), when
//! the customer was created, and the anomaly report's findings over time.

use crate::bulk_read::Read;
use crate::db::RowGet;
use crate::error::StoreError;
use crate::facts::OrderKey;
use crate::{args, Store};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use kehu_core::classify::DigestReader;
use kehu_core::classify::OrderFact;
use kehu_core::crosssell::{record_buying, Buyers};
pub use kehu_core::report::ReportWindow;
use kehu_core::report::{order_days_between, rewind_merges, CustomerPeriod, Rewound};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Customers read per batch: each batch's digests are reduced to the
/// report's figures before the next is read, so memory holds one batch of orders.
const REPORT_BATCH: i64 = 50_000;

/// One finding of the anomaly report: found, and resolved when it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub customer_id: i64,
    pub found_on: NaiveDate,
    pub resolved_on: Option<NaiveDate>,
}

impl Store {
    /// Every customer that existed at the window's end, with its classes in
    /// `scheme` at the previous period's end and at this one's, and its orders.
    pub async fn customer_periods(
        &self,
        scheme: &str,
        w: &ReportWindow,
    ) -> Result<Vec<CustomerPeriod>, StoreError> {
        let mut out: Vec<CustomerPeriod> = Vec::new();
        self.visit_orders(w.ends_at, |customer_id, created, orders| {
            let mut c = CustomerPeriod {
                customer_id,
                is_new: created >= w.starts_at,
                ..CustomerPeriod::default()
            };
            c.count_orders(orders, w);
            out.push(c);
        })
        .await?;
        let mut db = self.db.clone();
        let merges = crate::duplicates::merges_since(&mut db, w.ends_at).await?;
        if !merges.is_empty() {
            self.rewind(&mut out, &rewind_merges(&merges), w).await?;
        }
        // `out` is in id order.
        let history = self.class_changes_until(scheme, w.end).await?;
        for (customer, class, on) in history {
            let Ok(i) = out.binary_search_by_key(&customer, |c| c.customer_id) else {
                continue;
            };
            if on.is_some_and(|d| d <= w.previous_end) {
                out[i].class_before = Some(class.clone());
            }
            out[i].class_after = Some(class);
        }
        Ok(out)
    }

    /// Every class change of `scheme` effective on or before `until`, in
    /// effective order (so the last entry on or before a date is the class
    /// then): (customer, class, effective on). A row merged into another
    /// customer counts for the customer it was written for, which callers
    /// only find when that merge came after their date.
    async fn class_changes_until(
        &self,
        scheme: &str,
        until: NaiveDate,
    ) -> Result<Vec<(i64, String, Option<NaiveDate>)>, StoreError> {
        Read::Bulk
            .all(
                &mut self.db.clone(),
                "SELECT COALESCE(merged_from, customer_id) AS owner, to_class, effective_on FROM class_history \
                 WHERE scheme_key = $1 AND effective_on <= $2 ORDER BY effective_on, id",
                args![scheme, until],
                |r: &dyn RowGet| {
                    Ok((
                        r.int("owner")?,
                        r.text("to_class")?,
                        r.opt_date("effective_on")?,
                    ))
                },
            )
            .await
    }

    /// Each customer's class in `scheme` at the end of `on`.
    pub async fn classes_on(
        &self,
        scheme: &str,
        on: NaiveDate,
    ) -> Result<HashMap<i64, String>, StoreError> {
        Ok(self
            .class_changes_until(scheme, on)
            .await?
            .into_iter()
            .map(|(customer, class, _)| (customer, class))
            .collect())
    }

    /// The customers created before `ends_at` (the instant `as_of` ends in
    /// the company's time zone), and who of them bought each product line
    /// as of that day ([`record_buying`]: in the 12 months up to it, and ever).
    pub async fn buying_as_of(
        &self,
        as_of: NaiveDate,
        ends_at: DateTime<Utc>,
    ) -> Result<(Vec<i64>, BTreeMap<String, Buyers>), StoreError> {
        let (mut existing, mut products) = (Vec::new(), BTreeMap::new());
        self.visit_orders(ends_at, |customer_id, _, orders| {
            existing.push(customer_id);
            if let Ok(id) = u32::try_from(customer_id) {
                record_buying(&mut products, id, orders, as_of);
            }
        })
        .await?;
        Ok((existing, products))
    }

    /// The customers who ordered on two or more days from `since` to
    /// `until` (inclusive), in id order: who bought again in a span.
    pub async fn repeat_buyers(
        &self,
        since: NaiveDate,
        until: NaiveDate,
    ) -> Result<Vec<i64>, StoreError> {
        let mut out = Vec::new();
        // Created before the year 10000 (text timestamps compare as text on SQLite).
        let everyone = NaiveDate::MAX.with_year(9999).unwrap_or(NaiveDate::MAX);
        let everyone = everyone.and_time(chrono::NaiveTime::MIN).and_utc();
        self.visit_orders(everyone, |customer_id, _, orders| {
            if order_days_between(orders, since, until) >= 2 {
                out.push(customer_id);
            }
        })
        .await?;
        Ok(out)
    }

    /// Calls `visit` with every customer created before `created_before`,
    /// in id order, with when it was created and its orders (from its fact
    /// digest; a missing or damaged digest's from the records), a batch at
    /// a time so memory holds one batch of orders.
    async fn visit_orders(
        &self,
        created_before: DateTime<Utc>,
        mut visit: impl FnMut(i64, DateTime<Utc>, &[OrderFact]),
    ) -> Result<(), StoreError> {
        let mut db = self.db.clone();
        let mut reader = DigestReader::default();
        let mut after = 0;
        loop {
            let batch = Read::Bulk
                .all(
                    &mut db,
                    "SELECT id, created_at, fact_digest FROM customers \
                     WHERE id > $1 AND created_at < $2 ORDER BY id LIMIT $3",
                    args![after, created_before, REPORT_BATCH],
                    |r: &dyn RowGet| {
                        Ok((
                            r.int("id")?,
                            r.time("created_at")?,
                            r.opt_bytes("fact_digest")?,
                        ))
                    },
                )
                .await?;
            let last_batch = (batch.len() as i64) < REPORT_BATCH;
            let mut customers = Vec::with_capacity(batch.len());
            let mut unread = Vec::new();
            for (id, created, digest) in batch {
                after = id;
                let orders = match digest.map(|d| reader.read_orders(&d)) {
                    Some(Ok(orders)) => orders,
                    Some(Err(e)) => {
                        tracing::warn!(customer_id = id, "{e}; reading its orders");
                        unread.push(id);
                        Vec::new()
                    }
                    None => {
                        unread.push(id);
                        Vec::new()
                    }
                };
                customers.push((id, created, orders));
            }
            if !unread.is_empty() {
                let mut orders = self.orders_of(&unread).await?;
                for (id, _, o) in customers.iter_mut() {
                    if let Some(read) = orders.remove(id) {
                        *o = read;
                    }
                }
            }
            for (id, created, orders) in &customers {
                visit(*id, *created, orders);
            }
            if last_batch {
                return Ok(());
            }
        }
    }

    /// Puts `out` (customers in id order) as it stood at the window's end
    /// where merges since changed it: customers absorbed since come back
    /// (if created by then), those absorbed then leave, and the customers
    /// concerned count their orders as owned then.
    async fn rewind(
        &self,
        out: &mut Vec<CustomerPeriod>,
        r: &Rewound,
        w: &ReportWindow,
    ) -> Result<(), StoreError> {
        let moved: Vec<i64> = r.order_owner.keys().copied().collect();
        let mut concerned: BTreeSet<i64> = self
            .order_rows(OrderKey::Order, &moved)
            .await?
            .into_iter()
            .map(|(_, customer, _)| customer)
            .collect();
        concerned.extend(r.order_owner.values());
        let holders: Vec<i64> = concerned.iter().copied().collect();
        let mut owned: HashMap<i64, Vec<OrderFact>> = HashMap::new();
        for (id, customer, order) in self.order_rows(OrderKey::Customer, &holders).await? {
            let owner = r.order_owner.get(&id).copied().unwrap_or(customer);
            owned.entry(owner).or_default().push(order);
        }
        out.extend(
            r.restored
                .iter()
                .filter(|(_, created, _)| *created < w.ends_at)
                .map(|&(id, created, holder)| CustomerPeriod {
                    customer_id: id,
                    is_new: created >= w.starts_at,
                    merged_into: Some(holder),
                    ..CustomerPeriod::default()
                }),
        );
        out.retain(|c| r.absent.binary_search(&c.customer_id).is_err());
        out.sort_by_key(|c| c.customer_id);
        for c in out.iter_mut() {
            if c.merged_into.is_some() || concerned.contains(&c.customer_id) {
                let orders = owned.get(&c.customer_id).map_or(&[][..], Vec::as_slice);
                c.count_orders(orders, w);
            }
        }
        Ok(())
    }

    /// The anomaly report's findings found on or before `until`.
    pub async fn findings_until(&self, until: NaiveDate) -> Result<Vec<Finding>, StoreError> {
        let mut db = self.db.clone();
        Read::Bulk
            .all(
                &mut db,
                "SELECT customer_id, found_on, resolved_on FROM anomalies WHERE found_on <= $1",
                args![until],
                |r: &dyn RowGet| {
                    Ok(Finding {
                        customer_id: r.int("customer_id")?,
                        found_on: r.opt_date("found_on")?.unwrap_or_default(),
                        resolved_on: r.opt_date("resolved_on")?,
                    })
                },
            )
            .await
    }
}

/// One strategy task due in a report's period, as it stood at the
/// report's moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTask {
    pub customer_id: i64,
    pub class_name: String,
    /// `open`, `done` or `cancelled` then (closed later: open then).
    pub status: String,
    /// Done by its due time.
    pub on_time: bool,
    /// Open past its due time then.
    pub overdue: bool,
}

impl Store {
    /// The strategy tasks of `scheme` due from `from` (inclusive) to `to`
    /// (exclusive), as they stood at `as_of` (the period's end, or now for
    /// a period not over): a task closed after it counts as open then, so
    /// a past period's figures stay what they were.
    pub async fn strategy_tasks_due(
        &self,
        scheme: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        as_of: DateTime<Utc>,
    ) -> Result<Vec<DueTask>, StoreError> {
        let mut db = self.db.clone();
        Read::Bulk
            .all(
                &mut db,
                "SELECT customer_id, class_name, \
                 CASE WHEN closed_at IS NOT NULL AND closed_at <= $4 THEN status ELSE 'open' END AS status, \
                 CAST(CASE WHEN status = 'done' AND closed_at <= due_at AND closed_at <= $4 THEN 1 ELSE 0 END AS BIGINT) AS on_time, \
                 CAST(CASE WHEN (closed_at IS NULL OR closed_at > $4) AND due_at < $4 THEN 1 ELSE 0 END AS BIGINT) AS overdue \
                 FROM tasks WHERE source = 'strategy' AND scheme_key = $1 AND due_at >= $2 AND due_at < $3 AND class_name IS NOT NULL",
                args![scheme, from, to, as_of],
                |r: &dyn RowGet| {
                    Ok(DueTask {
                        customer_id: r.int("customer_id")?,
                        class_name: r.text("class_name")?,
                        status: r.text("status")?,
                        on_time: r.int("on_time")? > 0,
                        overdue: r.int("overdue")? > 0,
                    })
                },
            )
            .await
    }
}
