//! Reading what classification needs ([`Facts`]) in batches of customers:
//! three queries per batch (customers, their orders, their interactions),
//! merged by customer id, so a million customers never sit in one result.

use crate::bulk_read::Read;
use crate::db::{Exec, RowGet};
use crate::error::StoreError;
use crate::{args, json_list, Store};
use kehu_core::classify::{Facts, InteractionFact, OrderFact};
use kehu_core::interaction::{InteractionKind, Severity};
use std::collections::HashMap;
use std::sync::Arc;

const FACT_COLUMNS: &str = "id, code, industry, sales_region, province, city, status, source_channel, team, employees, \
annual_revenue_fen, declared_annual_purchase_fen, founded_on, cooperation_start_on, product_types, custom_fields";

fn decode_facts(r: &dyn RowGet) -> Result<Facts, sqlx::Error> {
    Ok(Facts {
        customer_id: r.int("id")?,
        code: r.text("code")?,
        industry: r.opt_text("industry")?,
        sales_region: r.opt_text("sales_region")?,
        province: r.opt_text("province")?,
        city: r.opt_text("city")?,
        status: r.text("status")?,
        source_channel: r.opt_text("source_channel")?,
        team: r.opt_text("team")?,
        employees: r.opt_int("employees")?,
        annual_revenue_fen: r.opt_int("annual_revenue_fen")?,
        declared_annual_purchase_fen: r.opt_int("declared_annual_purchase_fen")?,
        founded_on: r.opt_date("founded_on")?,
        cooperation_start_on: r.opt_date("cooperation_start_on")?,
        product_types: json_list(r.json("product_types")?),
        custom: match r.json("custom_fields")? {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        },
        orders: Vec::new(),
        interactions: Vec::new(),
    })
}

impl Store {
    /// Up to `limit` customers with ids above `after`, in id order, with
    /// their orders and interactions.
    pub async fn facts_after(&self, after: i64, limit: i64) -> Result<Vec<Facts>, StoreError> {
        let mut db = self.db.clone();
        let sql =
            format!("SELECT {FACT_COLUMNS} FROM customers WHERE id > $1 ORDER BY id LIMIT $2");
        let customers = db
            .fetch_bulk(&sql, args![after, limit], decode_facts)
            .await?;
        let (Some(first), Some(last)) = (
            customers.first().map(|f| f.customer_id),
            customers.last().map(|f| f.customer_id),
        ) else {
            return Ok(customers);
        };
        self.attach_records(
            customers,
            "customer_id >= $1 AND customer_id <= $2",
            args![first, last],
            Read::Bulk,
        )
        .await
    }

    /// One customer's facts.
    pub async fn facts_of(&self, customer_id: i64) -> Result<Facts, StoreError> {
        let mut db = self.db.clone();
        let sql = format!("SELECT {FACT_COLUMNS} FROM customers WHERE id = $1");
        let customers = db.fetch_all(&sql, args![customer_id], decode_facts).await?;
        if customers.is_empty() {
            return Err(StoreError::NotFound);
        }
        let mut out = self
            .attach_records(customers, "customer_id = $1", args![customer_id], Read::One)
            .await?;
        out.pop().ok_or(StoreError::NotFound)
    }

    async fn attach_records(
        &self,
        mut customers: Vec<Facts>,
        filter: &str,
        bounds: Vec<crate::db::Arg>,
        read: Read,
    ) -> Result<Vec<Facts>, StoreError> {
        let mut db = self.db.clone();
        let at: HashMap<i64, usize> = customers
            .iter()
            .enumerate()
            .map(|(i, f)| (f.customer_id, i))
            .collect();
        // Product lines repeat: one shared string per line.
        let mut lines: HashMap<String, Arc<str>> = HashMap::new();
        let orders = read
            .all(
                &mut db,
                &format!("SELECT customer_id, ordered_on, amount_fen, product_line FROM orders WHERE {filter} ORDER BY customer_id, ordered_on, id"),
                bounds.clone(),
                |r: &dyn RowGet| Ok((r.int("customer_id")?, r.opt_date("ordered_on")?, r.int("amount_fen")?, r.opt_text("product_line")?)),
            )
            .await?;
        for (cid, on, amount_fen, line) in orders {
            let (Some(&i), Some(on)) = (at.get(&cid), on) else {
                continue;
            };
            let line = line.map(|l| {
                lines
                    .entry(l.clone())
                    .or_insert_with(|| Arc::from(l.as_str()))
                    .clone()
            });
            customers[i].orders.push(OrderFact {
                on,
                amount_fen,
                line,
            });
        }
        let interactions = read
            .all(
                &mut db,
                &format!("SELECT customer_id, occurred_on, kind, severity, satisfaction FROM interactions WHERE {filter} ORDER BY customer_id, occurred_on, id"),
                bounds,
                |r: &dyn RowGet| Ok((r.int("customer_id")?, r.opt_date("occurred_on")?, r.text("kind")?, r.opt_text("severity")?, r.opt_int("satisfaction")?)),
            )
            .await?;
        for (cid, on, kind, severity, satisfaction) in interactions {
            let (Some(&i), Some(on), Ok(kind)) = (at.get(&cid), on, InteractionKind::parse(&kind))
            else {
                continue;
            };
            let severity = severity.and_then(|s| Severity::parse(&s).ok());
            customers[i].interactions.push(InteractionFact {
                on,
                kind,
                severity,
                satisfaction,
            });
        }
        Ok(customers)
    }
}
