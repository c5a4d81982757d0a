//! Duplicate customers: the candidate pairs (found by the whole-database
//! scan or on intake) with a person's decision, and merges that can be undone.
//!
//! *Invariants*: a pair is stored once, lower id first; a rejected pair stays
//! rejected (a later scan that finds it again leaves it so). A merge is one
//! transaction: the absorbed customer's contacts, orders, interactions, tags
//! and class history move to the survivor, the survivor takes the merged
//! fields, the absorbed row is deleted, and `customer_merges` keeps both
//! records as they were and the ids of everything moved. Undoing it is one
//! transaction too, refused when the survivor has changed since.

use crate::customers::{
    decode as decode_customer, insert_customer_in, update_customer_in, COLUMNS,
};
use crate::db::{check_version, decode_n, placeholders, Arg, Exec, RowGet, Tx};
use crate::error::StoreError;
use crate::feed::{self, FeedKind};
use crate::listing::{ScopeFilter, SqlBuilder};
use crate::model::Customer;
use crate::{args, json_list, Owner, Store};
use chrono::{DateTime, Utc};
use kehu_core::customer::CustomerData;
use kehu_core::report::MergeSince;
use kehu_core::{Reason, ValidationErrors};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What the whole-database scan compares of each customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupeRow {
    pub id: i64,
    pub name: String,
    pub uscc: Option<String>,
    /// The primary (else first) contact's mobile, else landline.
    pub phone: Option<String>,
    pub email: Option<String>,
    pub address: Option<String>,
    /// The city, else the province.
    pub city: Option<String>,
}

/// A pair the matcher found, to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPair {
    pub a_id: i64,
    pub b_id: i64,
    pub score: f64,
    pub reasons: Vec<String>,
}

/// A stored candidate pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DuplicatePair {
    pub id: i64,
    pub a_id: i64,
    pub b_id: i64,
    pub score: f64,
    pub reasons: Vec<String>,
    /// open | rejected
    pub status: String,
    /// scan | create | import
    pub source: String,
    pub found_at: DateTime<Utc>,
    pub decided_by: Option<i64>,
    pub decided_at: Option<DateTime<Utc>>,
}

const PAIR_COLUMNS: &str =
    "id, a_id, b_id, score, reasons, status, source, found_at, decided_by, decided_at";

fn decode_pair(r: &dyn RowGet) -> Result<DuplicatePair, sqlx::Error> {
    Ok(DuplicatePair {
        id: r.int("id")?,
        a_id: r.int("a_id")?,
        b_id: r.int("b_id")?,
        score: r.float("score")?.unwrap_or_default(),
        reasons: json_list(r.json("reasons")?),
        status: r.text("status")?,
        source: r.text("source")?,
        found_at: r.time("found_at")?,
        decided_by: r.opt_int("decided_by")?,
        decided_at: r.opt_time("decided_at")?,
    })
}

/// What storing a scan's pairs did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ScanRecorded {
    /// Open pairs after the scan.
    pub open: u64,
    /// Pairs found again that a person had rejected: left rejected.
    pub still_rejected: u64,
}

/// A merge asked for: the survivor and the absorbed customer at the
/// versions the person saw, and the survivor's merged fields.
pub struct MergeRequest<'a> {
    pub survivor_id: i64,
    pub survivor_version: i64,
    pub absorbed_id: i64,
    pub absorbed_version: i64,
    pub data: &'a CustomerData,
    pub owner: &'a Owner,
    /// The side picked for each field, as the person sent them (kept for the record).
    pub choices: Value,
    pub by: Option<i64>,
}

/// What a merge moved to the survivor (ids), to move it back on undo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    pub contacts: Vec<i64>,
    pub orders: Vec<i64>,
    pub interactions: Vec<i64>,
    /// Tags the survivor did not carry yet.
    pub tags: Vec<i64>,
    pub class_history: u64,
    /// Campaigns that had touched the absorbed customer and not the survivor.
    #[serde(default)]
    pub campaigns: Vec<i64>,
}

/// One recorded merge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CustomerMerge {
    pub id: i64,
    pub survivor_id: i64,
    pub absorbed_id: i64,
    pub survivor_before: Customer,
    pub absorbed: Customer,
    pub choices: Value,
    pub moved: Moved,
    pub survivor_version_after: i64,
    pub merged_by: Option<i64>,
    pub merged_at: DateTime<Utc>,
    pub undone_by: Option<i64>,
    pub undone_at: Option<DateTime<Utc>>,
}

const MERGE_COLUMNS: &str =
    "id, survivor_id, absorbed_id, survivor_before, absorbed, choices, moved, pair, \
survivor_version_after, merged_by, merged_at, undone_by, undone_at";

/// The absorbed customer's rows that go with its deletion, kept to put back.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AbsorbedRows {
    customer: Option<Customer>,
    tags: Vec<TagRow>,
    overrides: Vec<OverrideRow>,
    #[serde(default)]
    touches: Vec<TouchRow>,
}

/// A campaign's touch of the absorbed customer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TouchRow {
    campaign_id: i64,
    touched_on: chrono::NaiveDate,
    added_by: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TagRow {
    tag_id: i64,
    source: String,
    assigned_by: Option<i64>,
    assigned_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OverrideRow {
    id: i64,
    scheme_key: String,
    class: String,
    reason: String,
    expires_on: Option<chrono::NaiveDate>,
    set_by: Option<i64>,
    set_at: DateTime<Utc>,
    lifted_by: Option<i64>,
    lifted_at: Option<DateTime<Utc>>,
}

fn bad_record(e: serde_json::Error) -> StoreError {
    StoreError::Config(format!("merge record: {e}"))
}

fn decode_merge(r: &dyn RowGet) -> Result<(CustomerMerge, Value), sqlx::Error> {
    let undecodable = |e: serde_json::Error| sqlx::Error::Decode(Box::new(e));
    let absorbed: AbsorbedRows =
        serde_json::from_value(r.json("absorbed")?).map_err(undecodable)?;
    let absorbed = absorbed
        .customer
        .ok_or_else(|| sqlx::Error::Decode("merge record without its customer".into()))?;
    Ok((
        CustomerMerge {
            id: r.int("id")?,
            survivor_id: r.int("survivor_id")?,
            absorbed_id: r.int("absorbed_id")?,
            survivor_before: serde_json::from_value(r.json("survivor_before")?)
                .map_err(undecodable)?,
            absorbed,
            choices: r.json("choices")?,
            moved: serde_json::from_value(r.json("moved")?).map_err(undecodable)?,
            survivor_version_after: r.int("survivor_version_after")?,
            merged_by: r.opt_int("merged_by")?,
            merged_at: r.time("merged_at")?,
            undone_by: r.opt_int("undone_by")?,
            undone_at: r.opt_time("undone_at")?,
        },
        r.json("pair")?,
    ))
}

/// The merges whose effect differs between `at` and now: made since `at`
/// and standing, or made before it and undone since.
pub(crate) async fn merges_since(
    exec: &mut impl Exec,
    at: DateTime<Utc>,
) -> Result<Vec<MergeSince>, StoreError> {
    let sql = format!(
        "SELECT {MERGE_COLUMNS} FROM customer_merges \
         WHERE (merged_at >= $1 AND undone_at IS NULL) OR (merged_at < $1 AND undone_at >= $1)"
    );
    let rows = exec.fetch_all(&sql, args![at], decode_merge).await?;
    Ok(rows
        .into_iter()
        .map(|(m, _)| MergeSince {
            survivor_id: m.survivor_id,
            absorbed_id: m.absorbed_id,
            absorbed_created_at: m.absorbed.created_at,
            orders: m.moved.orders,
            merged_at: m.merged_at,
            made_since: m.merged_at >= at,
        })
        .collect())
}

fn refused(zh: String, en: String) -> StoreError {
    StoreError::Invalid(ValidationErrors::single("merge", Reason::Other { zh, en }))
}

/// `customer_id IN (customers in scope)` for the column `col`, or nothing for everyone.
pub(crate) fn scope_condition(
    b: &mut SqlBuilder,
    scope: &ScopeFilter,
    col: &str,
) -> Option<String> {
    let cond = match scope {
        ScopeFilter::All => return None,
        ScopeFilter::Own { user_id } => format!("owner_id = {}", b.bind(*user_id)),
        ScopeFilter::Team {
            team: Some(t),
            user_id,
        } => {
            let pt = b.bind(t.clone());
            let pu = b.bind(*user_id);
            format!("(team = {pt} OR owner_id = {pu})")
        }
        ScopeFilter::Team {
            team: None,
            user_id,
        } => format!("owner_id = {}", b.bind(*user_id)),
    };
    Some(format!("{col} IN (SELECT id FROM customers WHERE {cond})"))
}

async fn ids_of(tx: &mut Tx, table: &str, customer_id: i64) -> Result<Vec<i64>, StoreError> {
    let sql = format!("SELECT id AS n FROM {table} WHERE customer_id = $1 ORDER BY id");
    tx.fetch_all(&sql, args![customer_id], decode_n).await
}

/// Moves the records `ids` of `table` from one customer to another (those
/// still on `from`).
async fn move_records(
    tx: &mut Tx,
    table: &str,
    ids: &[i64],
    from: i64,
    to: i64,
) -> Result<(), StoreError> {
    for part in ids.chunks(crate::db::IDS_PER_QUERY) {
        let sql = format!(
            "UPDATE {table} SET customer_id = $1 WHERE customer_id = $2 AND id IN ({})",
            crate::db::marks_from(3, part.len())
        );
        let mut a = args![to, from];
        a.extend(part.iter().map(|&id| Arg::from(id)));
        tx.execute(&sql, a).await?;
    }
    Ok(())
}

impl Store {
    /// Every customer as the duplicate scan compares it, in id order.
    pub async fn dedupe_rows(&self) -> Result<Vec<DedupeRow>, StoreError> {
        let mut rows: Vec<DedupeRow> = self
            .db
            .clone()
            .fetch_all(
                "SELECT id, name, uscc, address, COALESCE(city, province) AS city FROM customers ORDER BY id",
                vec![],
                |r: &dyn RowGet| {
                    Ok(DedupeRow {
                        id: r.int("id")?,
                        name: r.text("name")?,
                        uscc: r.opt_text("uscc")?,
                        phone: None,
                        email: None,
                        address: r.opt_text("address")?,
                        city: r.opt_text("city")?,
                    })
                },
            )
            .await?;
        // Contacts in customer order, primary first: the first phone and
        // e-mail seen for a customer are the ones compared.
        let contacts = self
            .db
            .clone()
            .fetch_all(
                "SELECT customer_id, COALESCE(mobile, landline) AS phone, email FROM contacts \
                 WHERE mobile IS NOT NULL OR landline IS NOT NULL OR email IS NOT NULL \
                 ORDER BY customer_id, is_primary DESC, id",
                vec![],
                |r: &dyn RowGet| {
                    Ok((
                        r.int("customer_id")?,
                        r.opt_text("phone")?,
                        r.opt_text("email")?,
                    ))
                },
            )
            .await?;
        let mut at = 0;
        for (customer_id, phone, email) in contacts {
            // A sealed mobile opens; a landline (never sealed) reads as it is.
            let phone = self.cipher.open_opt(crate::cipher::MOBILE, phone)?;
            let email = self.cipher.open_opt(crate::cipher::EMAIL, email)?;
            while at < rows.len() && rows[at].id < customer_id {
                at += 1;
            }
            let Some(row) = rows.get_mut(at).filter(|r| r.id == customer_id) else {
                continue;
            };
            if row.phone.is_none() {
                row.phone = phone;
            }
            if row.email.is_none() {
                row.email = email;
            }
        }
        Ok(rows)
    }

    /// Stores the pairs a whole-database scan found: open pairs of earlier
    /// scans that it no longer finds are dropped, rejected pairs stay rejected.
    pub async fn record_scan(&self, pairs: &[NewPair]) -> Result<ScanRecorded, StoreError> {
        let mut tx = self.db.begin_write().await?;
        tx.execute(
            "DELETE FROM duplicate_pairs WHERE status = 'open' AND source = 'scan'",
            vec![],
        )
        .await?;
        insert_pairs(&mut tx, pairs, "scan").await?;
        let count = |status: &'static str| {
            format!("SELECT COUNT(*) AS n FROM duplicate_pairs WHERE status = '{status}'")
        };
        let open = tx.fetch_one(&count("open"), vec![], decode_n).await? as u64;
        let mut still_rejected = 0u64;
        for part in pairs.chunks(400) {
            let conds: Vec<String> = part
                .iter()
                .map(|p| {
                    format!(
                        "(a_id = {} AND b_id = {})",
                        p.a_id.min(p.b_id),
                        p.a_id.max(p.b_id)
                    )
                })
                .collect();
            let sql = format!(
                "SELECT COUNT(*) AS n FROM duplicate_pairs WHERE status = 'rejected' AND ({})",
                conds.join(" OR ")
            );
            still_rejected += tx.fetch_one(&sql, vec![], decode_n).await? as u64;
        }
        tx.commit().await?;
        Ok(ScanRecorded {
            open,
            still_rejected,
        })
    }

    /// Pairs of `status` whose customers are both in scope, best first.
    pub async fn list_pairs(
        &self,
        status: &str,
        scope: &ScopeFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<DuplicatePair>, i64), StoreError> {
        let backend = self.db.backend();
        let mut b = SqlBuilder::new(backend, "");
        let mut conds = vec![format!("status = {}", b.bind(status.to_string()))];
        conds.extend(scope_condition(&mut b, scope, "a_id"));
        conds.extend(scope_condition(&mut b, scope, "b_id"));
        let cond = conds.join(" AND ");
        crate::listing::count_and_page(
            &self.db,
            b,
            "duplicate_pairs",
            PAIR_COLUMNS,
            &cond,
            "score DESC, id",
            limit,
            offset,
            decode_pair,
        )
        .await
    }

    pub async fn duplicate_pair(&self, id: i64) -> Result<DuplicatePair, StoreError> {
        let sql = format!("SELECT {PAIR_COLUMNS} FROM duplicate_pairs WHERE id = $1");
        self.db
            .clone()
            .fetch_one(&sql, args![id], decode_pair)
            .await
    }

    /// The open pairs one customer is part of.
    pub async fn pairs_of(&self, customer_id: i64) -> Result<Vec<DuplicatePair>, StoreError> {
        let sql = format!(
            "SELECT {PAIR_COLUMNS} FROM duplicate_pairs WHERE status = 'open' AND (a_id = $1 OR b_id = $1) ORDER BY score DESC, id"
        );
        self.db
            .clone()
            .fetch_all(&sql, args![customer_id], decode_pair)
            .await
    }

    /// Marks an open pair as not the same company: no scan proposes it again.
    pub async fn reject_pair(&self, id: i64, by: Option<i64>) -> Result<DuplicatePair, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!("SELECT {PAIR_COLUMNS} FROM duplicate_pairs WHERE id = $1");
        let pair = tx.fetch_one(&sql, args![id], decode_pair).await?;
        if pair.status != "open" {
            return Err(refused(
                "这一对已被判定为不是重复".into(),
                "this pair was already rejected".into(),
            ));
        }
        let sql = format!(
            "UPDATE duplicate_pairs SET status = 'rejected', decided_by = $1, decided_at = $2 WHERE id = $3 RETURNING {PAIR_COLUMNS}"
        );
        let pair = tx
            .fetch_one(&sql, args![by, Utc::now(), id], decode_pair)
            .await?;
        tx.commit().await?;
        Ok(pair)
    }

    /// Merges `absorbed_id` into `survivor_id` (see the module's invariants).
    pub async fn merge_customers(&self, m: MergeRequest<'_>) -> Result<CustomerMerge, StoreError> {
        if m.survivor_id == m.absorbed_id {
            return Err(refused(
                "不能把客户合并到它自己".into(),
                "a customer cannot be merged into itself".into(),
            ));
        }
        let (s, a) = (m.survivor_id, m.absorbed_id);
        let mut tx = self.db.begin_write().await?;
        check_version(&mut tx, "customers", s, m.survivor_version).await?;
        check_version(&mut tx, "customers", a, m.absorbed_version).await?;
        let customer_sql = format!("SELECT {COLUMNS} FROM customers WHERE id = $1");
        let survivor_before = tx
            .fetch_one(&customer_sql, args![s], decode_customer)
            .await?;
        let absorbed = tx
            .fetch_one(&customer_sql, args![a], decode_customer)
            .await?;
        let pair_sql =
            format!("SELECT {PAIR_COLUMNS} FROM duplicate_pairs WHERE a_id = $1 AND b_id = $2");
        let pair = tx
            .fetch_optional(&pair_sql, args![s.min(a), s.max(a)], decode_pair)
            .await?;

        let mut moved = Moved::default();
        for (table, ids) in [
            ("contacts", &mut moved.contacts),
            ("orders", &mut moved.orders),
            ("interactions", &mut moved.interactions),
        ] {
            *ids = ids_of(&mut tx, table, a).await?;
            move_records(&mut tx, table, ids, a, s).await?;
        }
        // Tags by hand and confirmed move; rule tags (`rule_tags`) are the
        // rules' to give: the absorbed customer's go with it (trigger) and
        // the caller re-applies the rules to the survivor.
        let rows = AbsorbedRows {
            customer: Some(absorbed.clone()),
            tags: tx
                .fetch_all(
                    "SELECT tag_id, source, assigned_by, assigned_at FROM customer_tags WHERE customer_id = $1 ORDER BY tag_id",
                    args![a],
                    |r: &dyn RowGet| {
                        Ok(TagRow {
                            tag_id: r.int("tag_id")?,
                            source: r.text("source")?,
                            assigned_by: r.opt_int("assigned_by")?,
                            assigned_at: r.time("assigned_at")?,
                        })
                    },
                )
                .await?,
            overrides: tx
                .fetch_all(
                    "SELECT id, scheme_key, class, reason, expires_on, set_by, set_at, lifted_by, lifted_at FROM class_overrides \
                     WHERE customer_id = $1 ORDER BY id",
                    args![a],
                    |r: &dyn RowGet| {
                        Ok(OverrideRow {
                            id: r.int("id")?,
                            scheme_key: r.text("scheme_key")?,
                            class: r.text("class")?,
                            reason: r.text("reason")?,
                            expires_on: r.opt_date("expires_on")?,
                            set_by: r.opt_int("set_by")?,
                            set_at: r.time("set_at")?,
                            lifted_by: r.opt_int("lifted_by")?,
                            lifted_at: r.opt_time("lifted_at")?,
                        })
                    },
                )
                .await?,
            touches: tx
                .fetch_all(
                    "SELECT campaign_id, touched_on, added_by FROM campaign_touches WHERE customer_id = $1 ORDER BY campaign_id",
                    args![a],
                    |r: &dyn RowGet| {
                        Ok(TouchRow {
                            campaign_id: r.int("campaign_id")?,
                            touched_on: r.opt_date("touched_on")?.unwrap_or_default(),
                            added_by: r.opt_int("added_by")?,
                        })
                    },
                )
                .await?,
        };
        // Campaigns that touched only the absorbed customer now count the survivor.
        let survivor_campaigns: Vec<i64> = tx
            .fetch_all(
                "SELECT campaign_id AS n FROM campaign_touches WHERE customer_id = $1",
                args![s],
                decode_n,
            )
            .await?;
        for t in rows
            .touches
            .iter()
            .filter(|t| !survivor_campaigns.contains(&t.campaign_id))
        {
            tx.execute(
                "INSERT INTO campaign_touches (campaign_id, customer_id, touched_on, added_by) VALUES ($1, $2, $3, $4)",
                args![t.campaign_id, s, t.touched_on, t.added_by],
            )
            .await?;
            moved.campaigns.push(t.campaign_id);
        }
        let survivor_tags: Vec<i64> = tx
            .fetch_all(
                "SELECT tag_id AS n FROM customer_tags WHERE customer_id = $1",
                args![s],
                decode_n,
            )
            .await?;
        let now = Utc::now();
        for t in rows
            .tags
            .iter()
            .filter(|t| !survivor_tags.contains(&t.tag_id))
        {
            tx.execute(
                "INSERT INTO customer_tags (customer_id, tag_id, source, assigned_by, assigned_at) VALUES ($1, $2, $3, $4, $5)",
                args![s, t.tag_id, t.source.clone(), t.assigned_by, t.assigned_at],
            )
            .await?;
            tx.execute(
                "INSERT INTO tag_history (tag_id, customer_id, action, detail, by_user, at) VALUES ($1, $2, 'merged', $3, $4, $5)",
                args![t.tag_id, s, json!({ "from_customer": a }), m.by, now],
            )
            .await?;
            moved.tags.push(t.tag_id);
        }
        moved.class_history = tx
            .execute(
                // A row already merged keeps the customer it was first
                // written for (a chain a → b → c): reports rewind by it.
                "UPDATE class_history SET customer_id = $1, merged_from = COALESCE(merged_from, $2) WHERE customer_id = $2",
                args![s, a],
            )
            .await?;
        // Its classes, overrides, tags, proposals and pairs go with it.
        tx.execute("DELETE FROM customers WHERE id = $1", args![a])
            .await?;
        let personal = self.personal_keys().await?;
        let seal = crate::cipher::CustomSeal {
            cipher: &self.cipher,
            personal: &personal,
        };
        let after =
            update_customer_in(&mut tx, &seal, s, m.survivor_version, m.data, m.owner, m.by)
                .await?;
        let today = self.today();
        Store::refresh_rollups_unrecorded(&mut tx, s, today).await?;
        for kind in [FeedKind::Facts, FeedKind::Tags, FeedKind::Classes] {
            feed::record(&mut tx, kind, &[s, a]).await?;
        }
        let sql = format!(
            "INSERT INTO customer_merges (survivor_id, absorbed_id, survivor_before, absorbed, choices, moved, pair, \
             survivor_version_after, merged_by, merged_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) RETURNING {MERGE_COLUMNS}"
        );
        let (merge, _) = tx
            .fetch_one(
                &sql,
                args![
                    s,
                    a,
                    image(&survivor_before)?,
                    image(&rows)?,
                    m.choices,
                    image(&moved)?,
                    match &pair {
                        Some(p) => image(p)?,
                        None => Value::Null,
                    },
                    after.version,
                    m.by,
                    now
                ],
                decode_merge,
            )
            .await?;
        tx.commit().await?;
        Ok(merge)
    }

    pub async fn customer_merge(&self, id: i64) -> Result<CustomerMerge, StoreError> {
        let sql = format!("SELECT {MERGE_COLUMNS} FROM customer_merges WHERE id = $1");
        let merge = self
            .db
            .clone()
            .fetch_one(&sql, args![id], decode_merge)
            .await?
            .0;
        self.open_merge(merge)
    }

    /// A merge as shown: the before-images keep personal custom fields
    /// sealed as they were stored; opened here.
    fn open_merge(&self, mut m: CustomerMerge) -> Result<CustomerMerge, StoreError> {
        self.cipher
            .open_custom(&mut m.survivor_before.custom_fields)?;
        self.cipher.open_custom(&mut m.absorbed.custom_fields)?;
        Ok(m)
    }

    /// The merges into a customer (and those it was absorbed by), newest first.
    pub async fn merges_of(&self, customer_id: i64) -> Result<Vec<CustomerMerge>, StoreError> {
        let sql = format!(
            "SELECT {MERGE_COLUMNS} FROM customer_merges WHERE survivor_id = $1 OR absorbed_id = $1 ORDER BY id DESC"
        );
        self.db
            .clone()
            .fetch_all(&sql, args![customer_id], decode_merge)
            .await?
            .into_iter()
            .map(|(m, _)| self.open_merge(m))
            .collect()
    }

    /// Recent merges, newest first.
    pub async fn recent_merges(&self, limit: i64) -> Result<Vec<CustomerMerge>, StoreError> {
        let sql = format!("SELECT {MERGE_COLUMNS} FROM customer_merges ORDER BY id DESC LIMIT $1");
        self.db
            .clone()
            .fetch_all(&sql, args![limit], decode_merge)
            .await?
            .into_iter()
            .map(|(m, _)| self.open_merge(m))
            .collect()
    }

    /// Puts both customers back as they were before the merge: the survivor's
    /// fields, the absorbed customer under its id with its records, tags,
    /// class history and overrides, and the pair open again. Refused when the
    /// survivor has changed since the merge.
    pub async fn undo_merge(&self, id: i64, by: Option<i64>) -> Result<CustomerMerge, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!("SELECT {MERGE_COLUMNS} FROM customer_merges WHERE id = $1");
        let (merge, pair) = tx.fetch_one(&sql, args![id], decode_merge).await?;
        if merge.undone_at.is_some() {
            return Err(refused(
                "这次合并已经撤销".into(),
                "this merge was already undone".into(),
            ));
        }
        let (s, a) = (merge.survivor_id, merge.absorbed_id);
        let current = tx
            .fetch_optional(
                "SELECT version AS n FROM customers WHERE id = $1",
                args![s],
                decode_n,
            )
            .await?;
        match current {
            None => {
                return Err(refused(
                    format!("保留的客户 #{s} 已被删除，无法撤销"),
                    format!("the surviving customer #{s} has been deleted since"),
                ))
            }
            Some(v) if v != merge.survivor_version_after => {
                return Err(refused(
                    format!("保留的客户 #{s} 在合并后已被修改，无法撤销"),
                    format!("the surviving customer #{s} has been changed since the merge"),
                ))
            }
            Some(_) => {}
        }
        // Contacts merged since among those the merge moved: those merges first.
        let contact_merges = Store::open_contact_merges_in(&mut tx, &merge.moved.contacts).await?;
        if let Some(first) = contact_merges.first() {
            return Err(refused(
                format!("合并后又合并了其中的联系人（联系人合并 #{first}），请先撤销它"),
                format!(
                    "contacts it moved were merged since (contact merge #{first}): undo that first"
                ),
            ));
        }
        let rows: AbsorbedRows = {
            let sql = "SELECT absorbed FROM customer_merges WHERE id = $1";
            let v = tx
                .fetch_one(sql, args![id], |r: &dyn RowGet| r.json("absorbed"))
                .await?;
            serde_json::from_value(v).map_err(bad_record)?
        };
        let personal = self.personal_keys().await?;
        let seal = crate::cipher::CustomSeal {
            cipher: &self.cipher,
            personal: &personal,
        };
        crate::imports::restore_customer(
            &mut tx,
            &seal,
            &serde_json::to_value(&merge.survivor_before).map_err(bad_record)?,
        )
        .await?;
        // The absorbed customer again, under its own id.
        let c = &merge.absorbed;
        let owner = Owner {
            owner_id: c.owner_id,
            team: c.team.clone(),
        };
        let inserted = insert_customer_in(&mut tx, &seal, &c.data(), &owner, None)
            .await
            .map_err(|e| match e {
                StoreError::Invalid(_) => refused(
                    format!(
                        "客户 {} 的编码或统一社会信用代码已被其他客户使用，无法撤销",
                        c.code
                    ),
                    format!("the code or USCC of {} is now another customer's", c.code),
                ),
                e => e,
            })?;
        tx.execute(
            "UPDATE customers SET id = $1, version = $2, created_at = $3, created_by = NULL WHERE id = $4",
            args![a, c.version + 1, c.created_at, inserted.id],
        )
        .await?;
        for (table, ids) in [
            ("contacts", &merge.moved.contacts),
            ("orders", &merge.moved.orders),
            ("interactions", &merge.moved.interactions),
        ] {
            move_records(&mut tx, table, ids, s, a).await?;
        }
        for &tag_id in &merge.moved.tags {
            tx.execute(
                "DELETE FROM customer_tags WHERE customer_id = $1 AND tag_id = $2",
                args![s, tag_id],
            )
            .await?;
        }
        let now = Utc::now();
        for t in &rows.tags {
            tx.execute(
                "INSERT INTO customer_tags (customer_id, tag_id, source, assigned_by, assigned_at) VALUES ($1, $2, $3, $4, $5)",
                args![a, t.tag_id, t.source.clone(), t.assigned_by, t.assigned_at],
            )
            .await?;
        }
        for &tag_id in &merge.moved.tags {
            tx.execute(
                "INSERT INTO tag_history (tag_id, customer_id, action, detail, by_user, at) VALUES ($1, $2, 'unmerged', $3, $4, $5)",
                args![tag_id, s, json!({ "back_to_customer": a }), by, now],
            )
            .await?;
        }
        tx.execute(
            "UPDATE class_history SET customer_id = $1, merged_from = NULL WHERE customer_id = $2 AND merged_from = $1",
            args![a, s],
        )
        .await?;
        for &campaign_id in &merge.moved.campaigns {
            tx.execute(
                "DELETE FROM campaign_touches WHERE customer_id = $1 AND campaign_id = $2",
                args![s, campaign_id],
            )
            .await?;
        }
        for t in &rows.touches {
            tx.execute(
                "INSERT INTO campaign_touches (campaign_id, customer_id, touched_on, added_by) VALUES ($1, $2, $3, $4)",
                args![t.campaign_id, a, t.touched_on, t.added_by],
            )
            .await?;
        }
        for o in &rows.overrides {
            tx.execute(
                "INSERT INTO class_overrides (id, customer_id, scheme_key, class, reason, expires_on, set_by, set_at, lifted_by, lifted_at) \
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)",
                args![
                    o.id,
                    a,
                    o.scheme_key.clone(),
                    o.class.clone(),
                    o.reason.clone(),
                    o.expires_on,
                    o.set_by,
                    o.set_at,
                    o.lifted_by,
                    o.lifted_at
                ],
            )
            .await?;
        }
        if let Ok(p) = serde_json::from_value::<DuplicatePair>(pair) {
            insert_pairs(
                &mut tx,
                &[NewPair {
                    a_id: p.a_id,
                    b_id: p.b_id,
                    score: p.score,
                    reasons: p.reasons,
                }],
                &p.source,
            )
            .await?;
        }
        let today = self.today();
        for customer_id in [s, a] {
            Store::refresh_rollups_unrecorded(&mut tx, customer_id, today).await?;
        }
        for kind in [FeedKind::Facts, FeedKind::Tags, FeedKind::Classes] {
            feed::record(&mut tx, kind, &[s, a]).await?;
        }
        let sql = format!(
            "UPDATE customer_merges SET undone_by = $1, undone_at = $2 WHERE id = $3 RETURNING {MERGE_COLUMNS}"
        );
        let (merge, _) = tx.fetch_one(&sql, args![by, now, id], decode_merge).await?;
        tx.commit().await?;
        Ok(merge)
    }
}

/// Inserts pairs (lower id first); a pair already stored keeps its status,
/// and an open one takes the new score and reasons.
async fn insert_pairs(tx: &mut Tx, pairs: &[NewPair], source: &str) -> Result<(), StoreError> {
    let now = Utc::now();
    for part in pairs.chunks(500) {
        let mut sql = String::from(
            "INSERT INTO duplicate_pairs (a_id, b_id, score, reasons, status, source, found_at) VALUES ",
        );
        let mut a: Vec<Arg> = Vec::with_capacity(part.len() * 7);
        for (i, p) in part.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&placeholders(tx.backend(), a.len(), 7));
            a.extend(args![
                p.a_id.min(p.b_id),
                p.a_id.max(p.b_id),
                p.score,
                Value::from(p.reasons.clone()),
                "open",
                source.to_string(),
                now
            ]);
        }
        sql.push_str(
            " ON CONFLICT (a_id, b_id) DO UPDATE SET score = excluded.score, reasons = excluded.reasons \
             WHERE duplicate_pairs.status = 'open'",
        );
        tx.execute(&sql, a).await?;
    }
    Ok(())
}

/// A record as JSON, for a merge's before-images.
fn image<T: Serialize>(record: &T) -> Result<Value, StoreError> {
    serde_json::to_value(record).map_err(bad_record)
}
