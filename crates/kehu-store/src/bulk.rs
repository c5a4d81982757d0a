//! Bulk loading of generated customers with their contacts, orders and
//! interactions (`kehu demo`): millions of rows without a round trip per row.
//!
//! Everything goes into one transaction, chunk after chunk, so a failed load
//! leaves nothing behind. Customers get explicit ids (reserved after the
//! current maximum) so their records reference them without reading ids
//! back; the derived columns (purchase_12m_fen, …) are computed here, equal
//! to what [`Store::refresh_all_rollups`] computes, so no update pass follows.
//! - SQLite: multi-row `INSERT … VALUES (…),(…)` with bound parameters, as
//!   many rows per statement as fit under SQLite's 32766 variables.
//! - PostgreSQL: `COPY … FROM STDIN` in text format, one per table and chunk.

use crate::db::{decode_n, Exec, RowGet, Tx};
use crate::error::StoreError;
use crate::{args, Db, Store};
use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use kehu_core::classify::Rollups;
use kehu_core::demo::DemoCustomer;
use sqlx::Sqlite;
use std::collections::HashSet;

/// Rows written per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkCounts {
    pub customers: u64,
    pub contacts: u64,
    pub orders: u64,
    pub interactions: u64,
}

impl BulkCounts {
    pub fn rows(&self) -> u64 {
        self.customers + self.contacts + self.orders + self.interactions
    }
}

/// The derived columns `refresh_all_rollups(today)` would store for `c`
/// ([`Rollups`], the store tests check they agree), and the digest the
/// store would write after its last order (records sorted by date, ties in
/// the order they are inserted, as their ids are).
fn rollups_and_digest(c: &DemoCustomer, today: NaiveDate) -> (Rollups, Vec<u8>) {
    let f = c.facts(0);
    let digest = kehu_core::classify::digest::encode(&f.orders, &f.interactions);
    (Rollups::of(&f, today), digest)
}

/// Customer codes and USCCs already in the database (the demo avoids them).
#[derive(Debug, Default)]
pub struct Taken {
    pub codes: Vec<String>,
    pub usccs: HashSet<String>,
}

pub async fn taken(store: &Store) -> Result<Taken, StoreError> {
    let mut db = store.db.clone();
    let codes = db
        .fetch_all(
            "SELECT code FROM customers WHERE code LIKE $1",
            args!["C%"],
            |r: &dyn RowGet| r.text("code"),
        )
        .await?;
    let usccs = db
        .fetch_all(
            "SELECT uscc FROM customers WHERE uscc IS NOT NULL",
            vec![],
            |r: &dyn RowGet| r.text("uscc"),
        )
        .await?;
    Ok(Taken {
        codes,
        usccs: usccs.into_iter().collect(),
    })
}

const CUSTOMER_COLS: &str = "id, code, name, aliases, uscc, industry, employees, annual_revenue_fen, province, city, sales_region, address, founded_on, \
cooperation_start_on, product_types, declared_annual_purchase_fen, status, source_channel, owner_id, team, notes, custom_fields, missing_fields, name_key, name_sound, purchase_12m_fen, \
order_count, last_order_on, last_interaction_on, complaints_365d, fact_digest, created_at, updated_at";
const CONTACT_COLS: &str = "customer_id, name, title, decision_role, landline, mobile, email, id_number, is_primary, notes, \
mobile_idx, email_idx, id_number_idx, pii_key, created_at, updated_at";
const ORDER_COLS: &str =
    "customer_id, order_no, ordered_on, amount_fen, product_line, notes, created_at, updated_at";
const INTERACTION_COLS: &str = "customer_id, kind, occurred_on, summary, severity, status, satisfaction, user_id, created_at, updated_at";

/// SQLite's limit on bound variables per statement (SQLITE_MAX_VARIABLE_NUMBER).
const SQLITE_MAX_VARS: usize = 32766;

/// One table's multi-row INSERT: `per_row` anonymous `?` parameters per
/// row, then created_at and updated_at as one literal. Anonymous parameters
/// on purpose: SQLite looks named ones (`$N`) up by a linear scan, which
/// makes binding 30,000 of them quadratic.
struct InsertSpec {
    table: &'static str,
    cols: &'static str,
    per_row: usize,
}

impl InsertSpec {
    fn max_rows(&self) -> usize {
        SQLITE_MAX_VARS / self.per_row
    }

    /// `now` is the timestamp exactly as sqlx would bind it (RFC 3339 text).
    fn sql(&self, rows: usize, now: &str) -> String {
        let row = format!("({}'{now}','{now}')", "?,".repeat(self.per_row));
        let mut s = String::with_capacity(64 + rows * (row.len() + 1));
        s.push_str("INSERT INTO ");
        s.push_str(self.table);
        s.push_str(" (");
        s.push_str(self.cols);
        s.push_str(") VALUES ");
        for r in 0..rows {
            if r > 0 {
                s.push(',');
            }
            s.push_str(&row);
        }
        s
    }
}

const CUSTOMERS: InsertSpec = InsertSpec {
    table: "customers",
    cols: CUSTOMER_COLS,
    per_row: 31,
};
const CONTACTS: InsertSpec = InsertSpec {
    table: "contacts",
    cols: CONTACT_COLS,
    per_row: 14,
};
const ORDERS: InsertSpec = InsertSpec {
    table: "orders",
    cols: ORDER_COLS,
    per_row: 6,
};
const INTERACTIONS: InsertSpec = InsertSpec {
    table: "interactions",
    cols: INTERACTION_COLS,
    per_row: 8,
};

/// Loads chunks of generated customers in one transaction; see the module docs.
pub struct BulkLoader {
    tx: Tx,
    today: NaiveDate,
    now: DateTime<Utc>,
    now_text: String,
    /// The id of the first customer of this load.
    first_id: i64,
    /// The id the next customer gets.
    next_id: i64,
    /// Ids reserved (PostgreSQL): `next_id` must stay at or below this.
    reserved_to: i64,
    counts: BulkCounts,
    /// Full-size INSERT statements per table (SQLite), built once.
    sql_full: [String; 4],
    /// Contacts' personal fields sealed with the store's keys.
    seal: crate::cipher::ContactSeal,
    /// Customers' personal custom fields sealed with them too.
    cipher: std::sync::Arc<crate::cipher::FieldCipher>,
    personal: std::collections::BTreeSet<String>,
}

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

impl BulkLoader {
    /// Opens the transaction and reserves ids for `customers` customers.
    /// Rollups are computed as of `today`.
    pub async fn begin(
        store: &Store,
        today: NaiveDate,
        customers: u64,
    ) -> Result<BulkLoader, StoreError> {
        let reserve = i64::try_from(customers.max(1))
            .map_err(|_| StoreError::Config("too many customers".into()))?;
        let (tx, first_id) = match &store.db {
            Db::Sqlite(..) => {
                // IMMEDIATE: take the write lock now, so the ids read below
                // stay free; through sqlx, whose statements `load_sqlite` binds.
                let mut tx = store.db.begin_sqlx().await?;
                let max = tx
                    .fetch_one(
                        "SELECT MAX(COALESCE((SELECT MAX(id) FROM customers), 0), COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'customers'), 0)) AS n",
                        vec![],
                        decode_n,
                    )
                    .await?;
                (tx, max + 1)
            }
            Db::Postgres(pool) => {
                // setval is not transactional: the reservation holds for
                // concurrent inserts at once, and a rollback only leaves a gap.
                let mut db = store.db.clone();
                let last = db
                    .fetch_one(
                        "SELECT setval(pg_get_serial_sequence('customers', 'id'), GREATEST(nextval(pg_get_serial_sequence('customers', 'id')), \
                         (SELECT COALESCE(MAX(id), 0) FROM customers) + 1) + $1 - 1) AS n",
                        args![reserve],
                        decode_n,
                    )
                    .await?;
                (Tx::Postgres(pool.begin().await?), last - reserve + 1)
            }
        };
        let personal = store.personal_keys().await?;
        let now = Utc::now();
        // The text sqlx's SQLite driver binds a DateTime<Utc> as, so these rows read back like any other.
        let now_text = now.to_rfc3339_opts(SecondsFormat::AutoSi, false);
        let sql_full = [CUSTOMERS, CONTACTS, ORDERS, INTERACTIONS]
            .map(|spec| spec.sql(spec.max_rows(), &now_text));
        Ok(BulkLoader {
            tx,
            today,
            now,
            now_text,
            first_id,
            next_id: first_id,
            reserved_to: first_id + reserve - 1,
            counts: BulkCounts::default(),
            sql_full,
            seal: store.cipher.contact_seal(),
            cipher: store.cipher.clone(),
            personal,
        })
    }

    pub fn counts(&self) -> BulkCounts {
        self.counts
    }

    /// Writes a chunk: its customers first, then what references them.
    pub async fn load(&mut self, chunk: &[DemoCustomer]) -> Result<(), StoreError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let first = self.next_id;
        let n = chunk.len() as i64;
        if matches!(self.tx, Tx::Postgres(_)) && first + n - 1 > self.reserved_to {
            return Err(StoreError::Config(format!(
                "more customers than the {} reserved",
                self.reserved_to - first + 1
            )));
        }
        if !matches!(self.tx, Tx::Postgres(_)) {
            self.load_sqlite(chunk, first).await?;
        } else {
            self.load_postgres(chunk, first).await?;
        }
        self.next_id += n;
        self.counts.customers += chunk.len() as u64;
        self.counts.contacts += chunk.iter().map(|c| c.contacts.len() as u64).sum::<u64>();
        self.counts.orders += chunk.iter().map(|c| c.orders.len() as u64).sum::<u64>();
        self.counts.interactions += chunk
            .iter()
            .map(|c| c.interactions.len() as u64)
            .sum::<u64>();
        Ok(())
    }

    /// Commits; on PostgreSQL the id sequence is then moved past every id in use.
    pub async fn finish(self) -> Result<BulkCounts, StoreError> {
        let BulkLoader {
            mut tx,
            counts,
            today,
            first_id,
            ..
        } = self;
        // The loaded rollups are as of `today`; on a database that held no
        // customers before, all of them are, and the daily refresh can skip today.
        let earlier = tx
            .fetch_one(
                "SELECT COUNT(*) AS n FROM (SELECT 1 FROM customers WHERE id < $1 LIMIT 1) AS earlier",
                args![first_id],
                decode_n,
            )
            .await?;
        if earlier == 0 {
            crate::customers::mark_job_done(&mut tx, crate::customers::ROLLUP_JOB, today).await?;
        }
        if matches!(tx, Tx::Postgres(_)) {
            // Contacts, orders and interactions took their ids from their
            // sequences; customers' explicit ids may not have: make sure.
            tx.execute(
                "SELECT setval(pg_get_serial_sequence('customers', 'id'), GREATEST(COALESCE((SELECT MAX(id) FROM customers), 1), \
                 COALESCE(pg_sequence_last_value(pg_get_serial_sequence('customers', 'id')::regclass), 1)))",
                vec![],
            )
            .await?;
        }
        // Too many customers to name: whoever keeps metrics in memory reads everyone again.
        crate::feed::record_everyone(&mut tx, crate::feed::FeedKind::Facts).await?;
        tx.commit().await?;
        Ok(counts)
    }

    // ---- SQLite

    async fn load_sqlite(&mut self, chunk: &[DemoCustomer], first: i64) -> Result<(), StoreError> {
        let Tx::Sqlite(t, _) = &mut self.tx else {
            return Err(StoreError::Config(
                "the demo loader's SQLite transaction is not sqlx's".into(),
            ));
        };
        let today = self.today;
        let json: Vec<[String; 4]> = chunk
            .iter()
            .map(|c| {
                [
                    json_list(&c.data.aliases),
                    json_list(&c.data.product_types),
                    serde_json::Value::Object(
                        self.cipher
                            .seal_custom(&c.data.custom_fields, &self.personal),
                    )
                    .to_string(),
                    json_list(&c.data.missing_fields),
                ]
            })
            .collect();
        let rows: Vec<(i64, &DemoCustomer, &[String; 4])> = chunk
            .iter()
            .zip(&json)
            .enumerate()
            .map(|(i, (c, j))| (first + i as i64, c, j))
            .collect();
        for part in rows.chunks(CUSTOMERS.max_rows()) {
            let sql = sql_for(&CUSTOMERS, &self.sql_full[0], &self.now_text, part.len());
            let mut q = query(&sql, part.len() == CUSTOMERS.max_rows());
            for (id, c, j) in part {
                let d = &c.data;
                let (r, digest) = rollups_and_digest(c, today);
                q = q
                    .bind(*id)
                    .bind(d.code.as_deref())
                    .bind(d.name.as_str())
                    .bind(j[0].as_str())
                    .bind(d.uscc.as_deref())
                    .bind(d.industry.as_deref())
                    .bind(d.employees)
                    .bind(d.annual_revenue.map(|f| f.get()))
                    .bind(d.province.as_deref())
                    .bind(d.city.as_deref())
                    .bind(d.sales_region.as_deref())
                    .bind(d.address.as_deref())
                    .bind(d.founded_on)
                    .bind(d.cooperation_start_on)
                    .bind(j[1].as_str())
                    .bind(d.declared_annual_purchase.map(|f| f.get()))
                    .bind(d.status.key())
                    .bind(d.source_channel.as_deref())
                    .bind(d.owner_id)
                    .bind(c.team.as_deref())
                    .bind(d.notes.as_deref())
                    .bind(j[2].as_str())
                    .bind(j[3].as_str())
                    .bind(crate::customers::name_key(&d.name))
                    .bind(crate::customers::name_sound(&d.name))
                    .bind(r.purchase_12m_fen)
                    .bind(r.order_count)
                    .bind(r.last_order_on)
                    .bind(r.last_interaction_on)
                    .bind(r.complaints_365d)
                    .bind(digest);
            }
            q.execute(&mut **t).await?;
        }

        let contacts: Vec<_> = rows
            .iter()
            .flat_map(|(id, c, _)| c.contacts.iter().map(move |x| (*id, x)))
            .collect();
        for part in contacts.chunks(CONTACTS.max_rows()) {
            let sql = sql_for(&CONTACTS, &self.sql_full[1], &self.now_text, part.len());
            let mut q = query(&sql, part.len() == CONTACTS.max_rows());
            for (id, x) in part {
                let sealed = self.seal.seal(
                    x.mobile.as_deref(),
                    x.email.as_deref(),
                    x.id_number.as_deref(),
                );
                q = q
                    .bind(*id)
                    .bind(x.name.as_str())
                    .bind(x.title.as_deref())
                    .bind(x.decision_role.as_deref())
                    .bind(x.landline.as_deref())
                    .bind(sealed.mobile)
                    .bind(sealed.email)
                    .bind(sealed.id_number)
                    .bind(x.is_primary)
                    .bind(x.notes.as_deref())
                    .bind(sealed.mobile_idx)
                    .bind(sealed.email_idx)
                    .bind(sealed.id_number_idx)
                    .bind(sealed.key);
            }
            q.execute(&mut **t).await?;
        }

        let orders: Vec<_> = rows
            .iter()
            .flat_map(|(id, c, _)| c.orders.iter().map(move |x| (*id, x)))
            .collect();
        for part in orders.chunks(ORDERS.max_rows()) {
            let sql = sql_for(&ORDERS, &self.sql_full[2], &self.now_text, part.len());
            let mut q = query(&sql, part.len() == ORDERS.max_rows());
            for (id, x) in part {
                q = q
                    .bind(*id)
                    .bind(x.order_no.as_deref())
                    .bind(x.ordered_on)
                    .bind(x.amount.get())
                    .bind(x.product_line.as_deref())
                    .bind(x.notes.as_deref());
            }
            q.execute(&mut **t).await?;
        }

        let interactions: Vec<_> = rows
            .iter()
            .flat_map(|(id, c, _)| c.interactions.iter().map(move |x| (*id, x)))
            .collect();
        for part in interactions.chunks(INTERACTIONS.max_rows()) {
            let sql = sql_for(&INTERACTIONS, &self.sql_full[3], &self.now_text, part.len());
            let mut q = query(&sql, part.len() == INTERACTIONS.max_rows());
            for (id, x) in part {
                let d = &x.data;
                q = q
                    .bind(*id)
                    .bind(d.kind.key())
                    .bind(d.occurred_on)
                    .bind(d.summary.as_str())
                    .bind(d.severity.map(|s| s.key()))
                    .bind(d.status.map(|s| s.key()))
                    .bind(d.satisfaction)
                    .bind(x.user_id);
            }
            q.execute(&mut **t).await?;
        }
        Ok(())
    }

    // ---- PostgreSQL

    async fn load_postgres(
        &mut self,
        chunk: &[DemoCustomer],
        first: i64,
    ) -> Result<(), StoreError> {
        let Tx::Postgres(t) = &mut self.tx else {
            return Ok(());
        };
        let now = format!("{}", self.now.format("%Y-%m-%d %H:%M:%S%.6f+00"));
        let mut customers = CopyBuf::with_capacity(chunk.len() * 400);
        let mut contacts = CopyBuf::with_capacity(chunk.len() * 300);
        let mut orders = CopyBuf::with_capacity(chunk.len() * 600);
        let mut interactions = CopyBuf::with_capacity(chunk.len() * 400);
        for (i, c) in chunk.iter().enumerate() {
            let id = first + i as i64;
            let d = &c.data;
            let (r, digest) = rollups_and_digest(c, self.today);
            let b = &mut customers;
            b.int(id);
            b.opt_text(d.code.as_deref());
            b.text(&d.name);
            b.text(&json_list(&d.aliases));
            b.opt_text(d.uscc.as_deref());
            b.opt_text(d.industry.as_deref());
            b.opt_int(d.employees);
            b.opt_int(d.annual_revenue.map(|f| f.get()));
            b.opt_text(d.province.as_deref());
            b.opt_text(d.city.as_deref());
            b.opt_text(d.sales_region.as_deref());
            b.opt_text(d.address.as_deref());
            b.opt_date(d.founded_on);
            b.opt_date(d.cooperation_start_on);
            b.text(&json_list(&d.product_types));
            b.opt_int(d.declared_annual_purchase.map(|f| f.get()));
            b.text(d.status.key());
            b.opt_text(d.source_channel.as_deref());
            b.opt_int(d.owner_id);
            b.opt_text(c.team.as_deref());
            b.opt_text(d.notes.as_deref());
            b.text(
                &serde_json::Value::Object(
                    self.cipher.seal_custom(&d.custom_fields, &self.personal),
                )
                .to_string(),
            );
            b.text(&json_list(&d.missing_fields));
            b.opt_text(crate::customers::name_key(&d.name).as_deref());
            b.opt_text(crate::customers::name_sound(&d.name).as_deref());
            b.int(r.purchase_12m_fen);
            b.int(r.order_count);
            b.opt_date(r.last_order_on);
            b.opt_date(r.last_interaction_on);
            b.int(r.complaints_365d);
            b.bytes(&digest);
            b.text(&now);
            b.text(&now);
            b.end_row();
            for x in &c.contacts {
                let sealed = self.seal.seal(
                    x.mobile.as_deref(),
                    x.email.as_deref(),
                    x.id_number.as_deref(),
                );
                let b = &mut contacts;
                b.int(id);
                b.text(&x.name);
                b.opt_text(x.title.as_deref());
                b.opt_text(x.decision_role.as_deref());
                b.opt_text(x.landline.as_deref());
                b.opt_text(sealed.mobile.as_deref());
                b.opt_text(sealed.email.as_deref());
                b.opt_text(sealed.id_number.as_deref());
                b.text(if x.is_primary { "t" } else { "f" });
                b.opt_text(x.notes.as_deref());
                b.opt_text(sealed.mobile_idx.as_deref());
                b.opt_text(sealed.email_idx.as_deref());
                b.opt_text(sealed.id_number_idx.as_deref());
                b.opt_text(sealed.key.as_deref());
                b.text(&now);
                b.text(&now);
                b.end_row();
            }
            for x in &c.orders {
                let b = &mut orders;
                b.int(id);
                b.opt_text(x.order_no.as_deref());
                b.date(x.ordered_on);
                b.int(x.amount.get());
                b.opt_text(x.product_line.as_deref());
                b.opt_text(x.notes.as_deref());
                b.text(&now);
                b.text(&now);
                b.end_row();
            }
            for x in &c.interactions {
                let (b, d) = (&mut interactions, &x.data);
                b.int(id);
                b.text(d.kind.key());
                b.date(d.occurred_on);
                b.text(&d.summary);
                b.opt_text(d.severity.map(|s| s.key()));
                b.opt_text(d.status.map(|s| s.key()));
                b.opt_int(d.satisfaction);
                b.opt_int(x.user_id);
                b.text(&now);
                b.text(&now);
                b.end_row();
            }
        }
        for (table, cols, buf) in [
            ("customers", CUSTOMER_COLS, customers),
            ("contacts", CONTACT_COLS, contacts),
            ("orders", ORDER_COLS, orders),
            ("interactions", INTERACTION_COLS, interactions),
        ] {
            if buf.0.is_empty() {
                continue;
            }
            copy_in(t, &format!("COPY {table} ({cols}) FROM STDIN"), buf).await?;
        }
        Ok(())
    }
}

/// Full-size statements are cached; the shorter last one of a chunk is built
/// for the occasion (and not kept, see [`query`]).
fn sql_for<'a>(
    spec: &InsertSpec,
    full: &'a str,
    now: &str,
    rows: usize,
) -> std::borrow::Cow<'a, str> {
    if rows == spec.max_rows() {
        std::borrow::Cow::Borrowed(full)
    } else {
        std::borrow::Cow::Owned(spec.sql(rows, now))
    }
}

/// Only the full-size statements are worth keeping prepared: the short ones
/// differ in length from chunk to chunk and would crowd the statement cache.
fn query(sql: &str, keep: bool) -> SqliteQuery<'_> {
    sqlx::query::<Sqlite>(sql).persistent(keep)
}

fn json_list(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

/// A `COPY … FROM STDIN` text-format buffer: tab-separated, `\N` for NULL,
/// backslash escapes for backslash, tab, newline and carriage return.
pub(crate) struct CopyBuf(Vec<u8>);

/// Sends a `COPY … FROM STDIN` (text format) on a PostgreSQL connection.
pub(crate) async fn copy_in(
    conn: &mut sqlx::PgConnection,
    statement: &str,
    buf: CopyBuf,
) -> Result<(), StoreError> {
    let mut copy = conn.copy_in_raw(statement).await?;
    copy.send(buf.0).await?;
    copy.finish().await?;
    Ok(())
}

impl CopyBuf {
    pub(crate) fn with_capacity(n: usize) -> CopyBuf {
        CopyBuf(Vec::with_capacity(n))
    }

    pub(crate) fn text(&mut self, s: &str) {
        if s.bytes()
            .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r'))
        {
            for b in s.bytes() {
                match b {
                    b'\\' => self.0.extend_from_slice(b"\\\\"),
                    b'\t' => self.0.extend_from_slice(b"\\t"),
                    b'\n' => self.0.extend_from_slice(b"\\n"),
                    b'\r' => self.0.extend_from_slice(b"\\r"),
                    b => self.0.push(b),
                }
            }
        } else {
            self.0.extend_from_slice(s.as_bytes());
        }
        self.0.push(b'\t');
    }

    fn opt_text(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    /// A `bytea` in hex form: `\\x…`, the backslash doubled for COPY.
    fn bytes(&mut self, b: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.0.extend_from_slice(b"\\\\x");
        for &x in b {
            self.0.push(HEX[usize::from(x >> 4)]);
            self.0.push(HEX[usize::from(x & 15)]);
        }
        self.0.push(b'\t');
    }

    fn null(&mut self) {
        self.0.extend_from_slice(b"\\N\t");
    }

    pub(crate) fn int(&mut self, n: i64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = n.unsigned_abs();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        if n < 0 {
            self.0.push(b'-');
        }
        self.0.extend_from_slice(&digits[i..]);
        self.0.push(b'\t');
    }

    fn opt_int(&mut self, n: Option<i64>) {
        match n {
            Some(n) => self.int(n),
            None => self.null(),
        }
    }

    fn date(&mut self, d: NaiveDate) {
        let (y, m, day) = (d.year(), d.month(), d.day());
        if (0..=9999).contains(&y) {
            let y = y as u32;
            let digits = [y / 1000, y / 100 % 10, y / 10 % 10, y % 10];
            self.0.extend(digits.iter().map(|x| b'0' + *x as u8));
            self.0.extend_from_slice(&[
                b'-',
                b'0' + (m / 10) as u8,
                b'0' + (m % 10) as u8,
                b'-',
                b'0' + (day / 10) as u8,
                b'0' + (day % 10) as u8,
                b'\t',
            ]);
        } else {
            self.text(&d.to_string());
        }
    }

    fn opt_date(&mut self, d: Option<NaiveDate>) {
        match d {
            Some(d) => self.date(d),
            None => self.null(),
        }
    }

    /// Ends the row: the last field's tab becomes the newline.
    pub(crate) fn end_row(&mut self) {
        if let Some(last) = self.0.last_mut() {
            *last = b'\n';
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes() {
        let mut b = CopyBuf::with_capacity(64);
        b.text("a\tb\\c\nd\re");
        b.null();
        b.int(-120_000_000);
        b.int(0);
        b.date(NaiveDate::from_ymd_opt(2024, 3, 12).expect("date"));
        b.opt_date(None);
        b.text("华东");
        b.bytes(&[1, 0, 0xab]);
        b.end_row();
        assert_eq!(
            String::from_utf8(b.0).expect("utf8"),
            "a\\tb\\\\c\\nd\\re\t\\N\t-120000000\t0\t2024-03-12\t\\N\t华东\t\\\\x0100ab\n"
        );
    }

    #[test]
    fn statements_stay_under_the_variable_limit() {
        for spec in [&CUSTOMERS, &CONTACTS, &ORDERS, &INTERACTIONS] {
            let rows = spec.max_rows();
            assert!(rows * spec.per_row <= SQLITE_MAX_VARS, "{}", spec.table);
            let sql = spec.sql(rows, "2024-03-12T00:00:00+00:00");
            assert_eq!(
                sql.matches('?').count(),
                rows * spec.per_row,
                "{}",
                spec.table
            );
            assert_eq!(sql.matches("'2024-03-12T00:00:00+00:00'").count(), rows * 2);
            // Columns: per-row ones plus created_at and updated_at.
            assert_eq!(
                spec.cols.split(',').count(),
                spec.per_row + 2,
                "{}",
                spec.table
            );
        }
    }
}
