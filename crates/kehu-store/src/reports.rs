//! What the period reports read: each customer's class in a scheme at two
//! dates (from `class_history`), orders in and before a period, when the
//! customer was created, and the anomaly report's findings over time.

use crate::bulk_read::Read;
use crate::db::RowGet;
use crate::error::StoreError;
use crate::{args, Store};
use chrono::{DateTime, NaiveDate, Utc};
use kehu_core::report::CustomerPeriod;
use std::collections::HashMap;

/// The days a classification report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportWindow {
    /// Orders are read from here: twelve months before `start` for the
    /// "bought in the year before" churn basis, else `previous_start`.
    pub year_start: NaiveDate,
    pub previous_start: NaiveDate,
    pub previous_end: NaiveDate,
    /// The same period a year earlier (its orders are read when `year_start` reaches it).
    pub ago_start: NaiveDate,
    pub ago_end: NaiveDate,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// The period's first instant and the instant after it (customers
    /// created in between are new; tasks due in between are the period's).
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// One customer's orders in the report's windows.
struct OrderSums {
    customer_id: i64,
    revenue: i64,
    orders: i64,
    days: i64,
    previous: bool,
    year_before: bool,
    lines: i64,
    revenue_ago: i64,
    orders_ago: i64,
    lines_ago: i64,
}

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
        let mut db = self.db.clone();
        let customers = Read::Bulk
            .all(
                &mut db,
                "SELECT id, created_at FROM customers WHERE created_at < $1 ORDER BY id",
                args![w.ends_at],
                |r: &dyn RowGet| Ok((r.int("id")?, r.time("created_at")?)),
            )
            .await?;
        let mut out: Vec<CustomerPeriod> = customers
            .iter()
            .map(|&(id, created)| CustomerPeriod {
                customer_id: id,
                is_new: created >= w.starts_at,
                ..CustomerPeriod::default()
            })
            .collect();
        let at: HashMap<i64, usize> = out
            .iter()
            .enumerate()
            .map(|(i, c)| (c.customer_id, i))
            .collect();
        // In effective order, so the last entry on or before a date is the class then.
        let history = Read::Bulk
            .all(
                &mut db,
                "SELECT customer_id, to_class, effective_on FROM class_history \
                 WHERE scheme_key = $1 AND effective_on <= $2 AND merged_from IS NULL ORDER BY effective_on, id",
                args![scheme, w.end],
                |r: &dyn RowGet| {
                    Ok((
                        r.int("customer_id")?,
                        r.text("to_class")?,
                        r.opt_date("effective_on")?,
                    ))
                },
            )
            .await?;
        for (customer, class, on) in history {
            let Some(&i) = at.get(&customer) else {
                continue;
            };
            if on.is_some_and(|d| d <= w.previous_end) {
                out[i].class_before = Some(class.clone());
            }
            out[i].class_after = Some(class);
        }
        let orders = Read::Bulk
            .all(
                &mut db,
                "SELECT customer_id, \
                 CAST(SUM(CASE WHEN ordered_on >= $1 THEN amount_fen ELSE 0 END) AS BIGINT) AS revenue, \
                 CAST(SUM(CASE WHEN ordered_on >= $1 THEN 1 ELSE 0 END) AS BIGINT) AS orders, \
                 CAST(COUNT(DISTINCT CASE WHEN ordered_on >= $1 THEN ordered_on END) AS BIGINT) AS days, \
                 CAST(MAX(CASE WHEN ordered_on >= $2 AND ordered_on < $1 THEN 1 ELSE 0 END) AS BIGINT) AS previous, \
                 CAST(MAX(CASE WHEN ordered_on < $1 THEN 1 ELSE 0 END) AS BIGINT) AS year_before, \
                 CAST(COUNT(DISTINCT CASE WHEN ordered_on >= $1 THEN product_line END) AS BIGINT) AS lines, \
                 CAST(SUM(CASE WHEN ordered_on >= $5 AND ordered_on <= $6 THEN amount_fen ELSE 0 END) AS BIGINT) AS revenue_ago, \
                 CAST(SUM(CASE WHEN ordered_on >= $5 AND ordered_on <= $6 THEN 1 ELSE 0 END) AS BIGINT) AS orders_ago, \
                 CAST(COUNT(DISTINCT CASE WHEN ordered_on >= $5 AND ordered_on <= $6 THEN product_line END) AS BIGINT) AS lines_ago \
                 FROM orders WHERE ordered_on >= $3 AND ordered_on <= $4 GROUP BY customer_id",
                args![w.start, w.previous_start, w.year_start, w.end, w.ago_start, w.ago_end],
                |r: &dyn RowGet| {
                    Ok(OrderSums {
                        customer_id: r.int("customer_id")?,
                        revenue: r.int("revenue")?,
                        orders: r.int("orders")?,
                        days: r.int("days")?,
                        previous: r.int("previous")? > 0,
                        year_before: r.int("year_before")? > 0,
                        lines: r.int("lines")?,
                        revenue_ago: r.int("revenue_ago")?,
                        orders_ago: r.int("orders_ago")?,
                        lines_ago: r.int("lines_ago")?,
                    })
                },
            )
            .await?;
        for o in orders {
            let Some(&i) = at.get(&o.customer_id) else {
                continue;
            };
            let c = &mut out[i];
            c.revenue_fen = o.revenue;
            c.orders = o.orders;
            c.order_days = o.days;
            c.bought_previous = o.previous;
            c.bought_year_before = o.year_before;
            c.lines = o.lines;
            c.revenue_ago_fen = o.revenue_ago;
            c.orders_ago = o.orders_ago;
            c.lines_ago = o.lines_ago;
        }
        Ok(out)
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

/// One strategy task due in a report's period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTask {
    pub customer_id: i64,
    pub class_name: String,
    pub status: String,
    /// Done by its due time.
    pub on_time: bool,
    /// Open past its due time at `now`.
    pub overdue: bool,
}

impl Store {
    /// The strategy tasks of `scheme` due from `from` (inclusive) to `to` (exclusive).
    pub async fn strategy_tasks_due(
        &self,
        scheme: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<DueTask>, StoreError> {
        let mut db = self.db.clone();
        Read::Bulk
            .all(
                &mut db,
                "SELECT customer_id, class_name, status, \
                 CAST(CASE WHEN status = 'done' AND closed_at <= due_at THEN 1 ELSE 0 END AS BIGINT) AS on_time, \
                 CAST(CASE WHEN status = 'open' AND due_at < $4 THEN 1 ELSE 0 END AS BIGINT) AS overdue \
                 FROM tasks WHERE source = 'strategy' AND scheme_key = $1 AND due_at >= $2 AND due_at < $3 AND class_name IS NOT NULL",
                args![scheme, from, to, now],
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
