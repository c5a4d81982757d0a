//! Reading what classification needs ([`Facts`]) in batches of customers.
//! A whole-base read takes each customer's orders and interactions from its
//! *fact digest* (`customers.fact_digest`, see
//! [`kehu_core::classify::digest`]): one short value per customer instead
//! of twenty rows. The digest is rewritten from the records in the same
//! transaction as every order or interaction write
//! ([`records_and_digest`]; for a range of customers
//! [`rewrite_fact_digests`]); a customer whose digest is NULL or
//! unreadable is read from its records. Re-evaluating one customer reads
//! its digest too ([`digest_facts_on`]), except after a new record, whose
//! write hands on the facts it read ([`crate::Opened`]). [`Store::facts_of`]
//! always reads the records: it is the reference the digests are tested
//! against.

use crate::bulk_read::Read;
use crate::customers::REFRESH_BATCH;
use crate::db::{fetch_in, id_marks, Arg, Backend, Exec, RowGet, IDS_PER_QUERY};
use crate::error::StoreError;
use crate::{args, json_list, Store};
use chrono::NaiveDate;
use kehu_core::classify::{digest, DigestReader, Facts, InteractionFact, OrderFact};
use kehu_core::interaction::{InteractionKind, Severity};
use std::collections::HashMap;
use std::sync::Arc;

/// The customer columns of [`Facts`] (decoded by [`decode_facts`]).
pub(crate) const FACT_COLUMNS: &str = "id, code, industry, sales_region, province, city, status, source_channel, team, employees, \
annual_revenue_fen, declared_annual_purchase_fen, founded_on, cooperation_start_on, product_types, custom_fields, \
p_alive, expected_orders_90d, clv_fen";

pub(crate) fn decode_facts(r: &dyn RowGet) -> Result<Facts, sqlx::Error> {
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
        predicted: kehu_core::predict::Predicted {
            p_alive: r.opt_int("p_alive")?,
            expected_orders_90d: r.opt_int("expected_orders_90d")?,
            clv_fen: r.opt_int("clv_fen")?,
        },
        orders: Vec::new(),
        interactions: Vec::new(),
    })
}

/// Which column of `orders` a list of ids is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderKey {
    Order,
    Customer,
}

impl OrderKey {
    fn column(self) -> &'static str {
        match self {
            OrderKey::Order => "id",
            OrderKey::Customer => "customer_id",
        }
    }
}

/// A customer's orders (`customer_id`, date, amount, product line), in the
/// order [`Facts`] keeps them.
type OrderRow = (i64, Option<NaiveDate>, i64, Option<String>);
/// A customer's interactions (`customer_id`, date, kind, severity, satisfaction).
type InteractionRow = (i64, Option<NaiveDate>, String, Option<String>, Option<i64>);

fn orders_sql(filter: &str) -> String {
    format!("SELECT customer_id, ordered_on, amount_fen, product_line FROM orders WHERE {filter} ORDER BY customer_id, ordered_on, id")
}

fn decode_order_row(r: &dyn RowGet) -> Result<OrderRow, sqlx::Error> {
    Ok((
        r.int("customer_id")?,
        r.opt_date("ordered_on")?,
        r.int("amount_fen")?,
        r.opt_text("product_line")?,
    ))
}

fn interactions_sql(filter: &str) -> String {
    format!("SELECT customer_id, occurred_on, kind, severity, satisfaction FROM interactions WHERE {filter} ORDER BY customer_id, occurred_on, id")
}

fn decode_interaction_row(r: &dyn RowGet) -> Result<InteractionRow, sqlx::Error> {
    Ok((
        r.int("customer_id")?,
        r.opt_date("occurred_on")?,
        r.text("kind")?,
        r.opt_text("severity")?,
        r.opt_int("satisfaction")?,
    ))
}

/// Order rows as facts (a row without a date is skipped), with one shared
/// string per product line (lines repeat).
fn order_facts(rows: Vec<OrderRow>) -> Vec<(i64, OrderFact)> {
    let mut lines: HashMap<String, Arc<str>> = HashMap::new();
    rows.into_iter()
        .filter_map(|(cid, on, amount_fen, line)| {
            let line = line.map(|l| {
                lines
                    .entry(l.clone())
                    .or_insert_with(|| Arc::from(l.as_str()))
                    .clone()
            });
            Some((
                cid,
                OrderFact {
                    on: on?,
                    amount_fen,
                    line,
                },
            ))
        })
        .collect()
}

/// Appends order and interaction rows to the customers they belong to
/// (rows of other customers are skipped).
fn attach_rows(customers: &mut [Facts], orders: Vec<OrderRow>, interactions: Vec<InteractionRow>) {
    let at: HashMap<i64, usize> = customers
        .iter()
        .enumerate()
        .map(|(i, f)| (f.customer_id, i))
        .collect();
    for (cid, order) in order_facts(orders) {
        if let Some(&i) = at.get(&cid) {
            customers[i].orders.push(order);
        }
    }
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
}

/// Rewrites the fact digest of every customer with an id in
/// `first..=last` from its orders and interactions, inside the caller's
/// transaction (the invariant: a digest always equals the records).
pub(crate) async fn rewrite_fact_digests(
    exec: &mut impl Exec,
    first: i64,
    last: i64,
) -> Result<u64, StoreError> {
    let ids = exec
        .fetch_all(
            "SELECT id FROM customers WHERE id >= $1 AND id <= $2 ORDER BY id",
            args![first, last],
            |r: &dyn RowGet| r.int("id"),
        )
        .await?;
    let (orders, interactions) = records_on(
        exec,
        "customer_id >= $1 AND customer_id <= $2",
        args![first, last],
    )
    .await?;
    let mut customers: Vec<Facts> = ids
        .into_iter()
        .map(|customer_id| Facts {
            customer_id,
            ..Facts::default()
        })
        .collect();
    attach_rows(&mut customers, orders, interactions);
    for f in &customers {
        exec.execute(
            "UPDATE customers SET fact_digest = $1 WHERE id = $2",
            args![digest::encode(&f.orders, &f.interactions), f.customer_id],
        )
        .await?;
    }
    Ok(customers.len() as u64)
}

/// One customer's orders and interactions as they are in the caller's
/// transaction (a `Facts` holding only its id and those) and their fact
/// digest: the caller writes the digest with the customer's rollups, one
/// statement for both.
///
/// On PostgreSQL the customer's row is locked first (`FOR NO KEY UPDATE`,
/// which a new record's foreign-key check does not conflict with): under
/// READ COMMITTED two writers of one customer's records would each read
/// them before the other committed and write a digest and rollups without
/// the other's record. Waiting here, the reads that follow (each a new
/// snapshot) see what the writer before committed. SQLite's writers take
/// turns for the whole transaction already.
pub(crate) async fn records_and_digest(
    exec: &mut impl Exec,
    customer_id: i64,
) -> Result<(Facts, Vec<u8>), StoreError> {
    if exec.backend() == Backend::Postgres {
        exec.execute(
            "SELECT id FROM customers WHERE id = $1 FOR NO KEY UPDATE",
            args![customer_id],
        )
        .await?;
    }
    let mut one = [Facts {
        customer_id,
        ..Facts::default()
    }];
    attach_records_of(exec, &mut one).await?;
    let [f] = one;
    let digest = digest::encode(&f.orders, &f.interactions);
    Ok((f, digest))
}

/// One customer's orders and interactions in one statement (a write of
/// one record reads them on its request path): the orders first, each
/// kind as [`orders_sql`] and [`interactions_sql`] order it.
const ONE_CUSTOMERS_RECORDS: &str = "SELECT CAST(0 AS BIGINT) AS source, customer_id, ordered_on AS day, amount_fen, product_line, \
     CAST(NULL AS TEXT) AS kind, CAST(NULL AS TEXT) AS severity, CAST(NULL AS BIGINT) AS satisfaction, id \
     FROM orders WHERE customer_id = $1 \
     UNION ALL SELECT CAST(1 AS BIGINT), customer_id, occurred_on, CAST(NULL AS BIGINT), CAST(NULL AS TEXT), kind, severity, satisfaction, id \
     FROM interactions WHERE customer_id = $1 \
     ORDER BY source, customer_id, day, id";

/// A row of [`ONE_CUSTOMERS_RECORDS`].
enum RecordRow {
    Order(OrderRow),
    Interaction(InteractionRow),
}

/// Reads one customer's orders and interactions on `exec` into `one`.
async fn attach_records_of(exec: &mut impl Exec, one: &mut [Facts; 1]) -> Result<(), StoreError> {
    let rows = exec
        .fetch_all(
            ONE_CUSTOMERS_RECORDS,
            args![one[0].customer_id],
            |r: &dyn RowGet| {
                let (customer, day) = (r.int("customer_id")?, r.opt_date("day")?);
                Ok(if r.int("source")? == 0 {
                    RecordRow::Order((
                        customer,
                        day,
                        r.int("amount_fen")?,
                        r.opt_text("product_line")?,
                    ))
                } else {
                    RecordRow::Interaction((
                        customer,
                        day,
                        r.text("kind")?,
                        r.opt_text("severity")?,
                        r.opt_int("satisfaction")?,
                    ))
                })
            },
        )
        .await?;
    let (mut orders, mut interactions) = (Vec::new(), Vec::new());
    for row in rows {
        match row {
            RecordRow::Order(o) => orders.push(o),
            RecordRow::Interaction(i) => interactions.push(i),
        }
    }
    attach_rows(one, orders, interactions);
    Ok(())
}

/// The order and interaction rows `filter` (over `customer_id`) selects,
/// on `exec`, in the order [`attach_rows`] takes them.
async fn records_on(
    exec: &mut impl Exec,
    filter: &str,
    args: Vec<Arg>,
) -> Result<(Vec<OrderRow>, Vec<InteractionRow>), StoreError> {
    let orders = exec
        .fetch_all(&orders_sql(filter), args.clone(), decode_order_row)
        .await?;
    let interactions = exec
        .fetch_all(&interactions_sql(filter), args, decode_interaction_row)
        .await?;
    Ok((orders, interactions))
}

/// [`rewrite_fact_digests`] for every customer, a batch of ids at a time,
/// in the caller's transaction; returns the number of customers.
pub(crate) async fn rewrite_all_fact_digests(exec: &mut impl Exec) -> Result<u64, StoreError> {
    let max_id = crate::customers::max_customer_id(exec).await?;
    let (mut done, mut after) = (0, 0);
    while after < max_id {
        done += rewrite_fact_digests(exec, after + 1, after + REFRESH_BATCH).await?;
        after += REFRESH_BATCH;
    }
    Ok(done)
}

impl Store {
    /// Rewrites every customer's fact digest from its records, in one
    /// transaction (a repair; the migration that added digests does this).
    pub async fn rebuild_fact_digests(&self) -> Result<u64, StoreError> {
        let mut tx = self.db.begin().await?;
        let done = rewrite_all_fact_digests(&mut tx).await?;
        // A repair: what was read from damaged digests must be read again.
        crate::feed::record_everyone(&mut tx, crate::feed::FeedKind::Facts).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Up to `limit` customers with ids above `after`, in id order, with
    /// their orders and interactions (from their digests).
    pub async fn facts_after(&self, after: i64, limit: i64) -> Result<Vec<Facts>, StoreError> {
        self.facts_from_digests(
            "id > $1 ORDER BY id LIMIT $2",
            args![after, limit],
            Read::Bulk,
        )
        .await
    }

    /// The customers among `ids` that exist, in id order, with their orders
    /// and interactions (from their digests): what changed since a run.
    pub async fn facts_in(&self, ids: &[i64]) -> Result<Vec<Facts>, StoreError> {
        facts_in_on(&mut self.db.clone(), ids).await
    }

    /// Customers matching `filter` (a WHERE clause with its ORDER BY) with
    /// their digests decoded; a NULL or unreadable digest is read from the records.
    async fn facts_from_digests(
        &self,
        filter: &str,
        args: Vec<Arg>,
        read: Read,
    ) -> Result<Vec<Facts>, StoreError> {
        let sql = format!("SELECT {FACT_COLUMNS}, fact_digest FROM customers WHERE {filter}");
        let rows = read
            .all(&mut self.db.clone(), &sql, args, decode_with_digest)
            .await?;
        let (mut customers, unread) = read_digests(rows);
        if let (Some(&first), Some(&last)) = (unread.first(), unread.last()) {
            // Read by range: a bulk read of the records of a batch's span.
            let filter = "customer_id >= $1 AND customer_id <= $2";
            let bounds = args![customers[first].customer_id, customers[last].customer_id];
            let mut db = self.db.clone();
            let orders = read
                .all(
                    &mut db,
                    &orders_sql(filter),
                    bounds.clone(),
                    decode_order_row,
                )
                .await?;
            let interactions = read
                .all(
                    &mut db,
                    &interactions_sql(filter),
                    bounds,
                    decode_interaction_row,
                )
                .await?;
            attach_to_unread(&mut customers, &unread, orders, interactions);
        }
        Ok(customers)
    }

    /// The orders of the customers `ids`, read from the records (for those
    /// whose digest is missing or unreadable).
    pub(crate) async fn orders_of(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, Vec<OrderFact>>, StoreError> {
        let mut out: HashMap<i64, Vec<OrderFact>> = HashMap::new();
        for (_, customer, order) in self.order_rows(OrderKey::Customer, ids).await? {
            out.entry(customer).or_default().push(order);
        }
        Ok(out)
    }

    /// The dated orders with `column` among `ids`, each with its id and its
    /// customer's, read from the records.
    pub(crate) async fn order_rows(
        &self,
        column: OrderKey,
        ids: &[i64],
    ) -> Result<Vec<(i64, i64, OrderFact)>, StoreError> {
        let mut out = Vec::new();
        for part in ids.chunks(IDS_PER_QUERY) {
            let sql = format!(
                "SELECT id, customer_id, ordered_on, amount_fen, product_line FROM orders WHERE {} IN ({})",
                column.column(),
                id_marks(part.len())
            );
            let args = part.iter().map(|&id| Arg::from(id)).collect();
            let rows = Read::Bulk
                .all(&mut self.db.clone(), &sql, args, |r: &dyn RowGet| {
                    Ok((r.int("id")?, decode_order_row(r)?))
                })
                .await?;
            // `order_facts` skips undated rows: its ids are kept beside the rows it keeps.
            let (ids, rows): (Vec<i64>, Vec<OrderRow>) =
                rows.into_iter().filter(|(_, row)| row.1.is_some()).unzip();
            out.extend(
                ids.into_iter()
                    .zip(order_facts(rows))
                    .map(|(id, (customer, order))| (id, customer, order)),
            );
        }
        Ok(out)
    }

    /// One customer's facts, read from its records.
    pub async fn facts_of(&self, customer_id: i64) -> Result<Facts, StoreError> {
        facts_on(&mut self.db.clone(), customer_id).await
    }
}

/// One customer's facts on `exec` from its digest — one row, where
/// [`facts_on`] reads all its records: what re-evaluating it after an
/// edit reads —, else (none stored, or unreadable) from its records.
pub(crate) async fn digest_facts_on(
    exec: &mut impl Exec,
    customer_id: i64,
) -> Result<Facts, StoreError> {
    facts_in_on(exec, &[customer_id])
        .await?
        .pop()
        .ok_or(StoreError::NotFound)
}

/// The customers among `ids` that exist, in id order, on `exec`: from
/// their digests, else from their records.
pub(crate) async fn facts_in_on(
    exec: &mut impl Exec,
    ids: &[i64],
) -> Result<Vec<Facts>, StoreError> {
    let sql =
        format!("SELECT {FACT_COLUMNS}, fact_digest FROM customers WHERE id IN ({{}}) ORDER BY id");
    let rows = fetch_in(exec, &sql, ids, decode_with_digest).await?;
    let (mut customers, unread) = read_digests(rows);
    if !unread.is_empty() {
        // Those without a digest (new customers, say) from their records,
        // all at once.
        let missing: Vec<i64> = unread.iter().map(|&i| customers[i].customer_id).collect();
        let filter = "customer_id IN ({})";
        let orders = fetch_in(exec, &orders_sql(filter), &missing, decode_order_row).await?;
        let interactions = fetch_in(
            exec,
            &interactions_sql(filter),
            &missing,
            decode_interaction_row,
        )
        .await?;
        attach_to_unread(&mut customers, &unread, orders, interactions);
    }
    Ok(customers)
}

/// Attaches record rows to the customers at positions `unread` (those with
/// no readable digest; rows of the others are skipped).
fn attach_to_unread(
    customers: &mut [Facts],
    unread: &[usize],
    orders: Vec<OrderRow>,
    interactions: Vec<InteractionRow>,
) {
    let mut read: Vec<Facts> = unread
        .iter()
        .map(|&i| std::mem::take(&mut customers[i]))
        .collect();
    attach_rows(&mut read, orders, interactions);
    for (&i, f) in unread.iter().zip(read) {
        customers[i] = f;
    }
}

fn decode_with_digest(r: &dyn RowGet) -> Result<(Facts, Option<Vec<u8>>), sqlx::Error> {
    Ok((decode_facts(r)?, r.opt_bytes("fact_digest")?))
}

/// Each customer's orders and interactions from its digest: the facts, and
/// the positions of those with no readable digest (to read from records).
fn read_digests(rows: Vec<(Facts, Option<Vec<u8>>)>) -> (Vec<Facts>, Vec<usize>) {
    let mut reader = DigestReader::default();
    let mut customers = Vec::with_capacity(rows.len());
    let mut unread = Vec::new();
    for (mut f, bytes) in rows {
        match bytes.map(|b| reader.read_into(&b, &mut f)) {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                tracing::warn!(customer_id = f.customer_id, "{e}; reading its records");
                // What the digest gave before it failed is read again.
                f.orders.clear();
                f.interactions.clear();
                unread.push(customers.len());
            }
            None => unread.push(customers.len()),
        }
        customers.push(f);
    }
    (customers, unread)
}

/// One customer's facts, read from its records on `exec`.
pub(crate) async fn facts_on(exec: &mut impl Exec, customer_id: i64) -> Result<Facts, StoreError> {
    let sql = format!("SELECT {FACT_COLUMNS} FROM customers WHERE id = $1");
    let facts = exec
        .fetch_optional(&sql, args![customer_id], decode_facts)
        .await?
        .ok_or(StoreError::NotFound)?;
    let mut one = [facts];
    attach_records_of(exec, &mut one).await?;
    let [f] = one;
    Ok(f)
}
