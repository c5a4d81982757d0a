//! Duplicate contacts: the likely pairs among each customer's contacts
//! (kehu-core `dedupe::contact` decides), a person's decision on each, and
//! contact merges that can be undone.
//!
//! *Invariants*: a pair is stored once, lower id first; a rejected pair stays
//! rejected however often it is found again; refreshing a customer's pairs
//! keeps the id of a pair still found (links to it stay good) and drops the
//! open ones no longer found. A merge is one transaction: the survivor takes
//! the merged values, the absorbed contact's consents move to it, the
//! absorbed row is deleted (its pairs with it), and `contact_merges` keeps
//! both contacts as they were — personal fields sealed as in `contacts`.
//! Undoing is one transaction too, refused once the survivor has changed.

use crate::db::{check_version, decode_n, Arg, Exec, RowGet, Tx};
use crate::error::StoreError;
use crate::listing::{ScopeFilter, SqlBuilder};
use crate::model::Contact;
use crate::records::{contact_args, open_contact, sealed_image, CONTACT_SET};
use crate::{args, json_list, Store};
use chrono::{DateTime, Utc};
use kehu_core::contact::ContactData;
use kehu_core::dedupe::contact::{contact_pairs, ContactFacts, ContactPair};
use kehu_core::{Reason, ValidationErrors};
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};

/// A stored pair of contacts, with the customer they belong to.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactPairRow {
    pub id: i64,
    pub customer_id: i64,
    pub a_id: i64,
    pub b_id: i64,
    /// 0–100.
    pub score: i64,
    /// Evidence keys (`same_mobile`, …).
    pub reasons: Vec<String>,
    /// open | rejected
    pub status: String,
    pub found_at: DateTime<Utc>,
    pub decided_by: Option<i64>,
    pub decided_at: Option<DateTime<Utc>>,
}

const PAIR_COLUMNS: &str = "p.id, c.customer_id, p.a_id, p.b_id, p.score, p.reasons, p.status, \
p.found_at, p.decided_by, p.decided_at";
const PAIR_FROM: &str = "contact_pairs p JOIN contacts c ON c.id = p.a_id";

fn decode_pair(r: &dyn RowGet) -> Result<ContactPairRow, sqlx::Error> {
    Ok(ContactPairRow {
        id: r.int("id")?,
        customer_id: r.int("customer_id")?,
        a_id: r.int("a_id")?,
        b_id: r.int("b_id")?,
        score: r.int("score")?,
        reasons: json_list(r.json("reasons")?),
        status: r.text("status")?,
        found_at: r.time("found_at")?,
        decided_by: r.opt_int("decided_by")?,
        decided_at: r.opt_time("decided_at")?,
    })
}

/// What a whole-database pass over the contacts found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContactScan {
    pub contacts: u64,
    /// Pairs found now (open or left rejected).
    pub found: u64,
    /// Open pairs after the pass.
    pub open: u64,
}

/// A contact merge asked for: both at the versions the person saw, and the
/// survivor's merged values (checked by the caller).
pub struct ContactMergeRequest<'a> {
    pub survivor_id: i64,
    pub survivor_version: i64,
    pub absorbed_id: i64,
    pub absorbed_version: i64,
    pub data: &'a ContactData,
    /// The contact whose value survived, per field (kept for the record).
    pub choices: Value,
    pub by: Option<i64>,
}

/// A recorded contact merge; both contacts as they were, opened.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactMerge {
    pub id: i64,
    pub customer_id: i64,
    pub survivor_id: i64,
    pub absorbed_id: i64,
    pub survivor_before: Contact,
    pub absorbed: Contact,
    pub choices: Value,
    pub moved_consents: Vec<i64>,
    pub survivor_version_after: i64,
    pub merged_by: Option<i64>,
    pub merged_at: DateTime<Utc>,
    pub undone_by: Option<i64>,
    pub undone_at: Option<DateTime<Utc>>,
}

const MERGE_COLUMNS: &str =
    "id, customer_id, survivor_id, absorbed_id, survivor_before, absorbed, \
choices, moved_consents, survivor_version_after, merged_by, merged_at, undone_by, undone_at";

fn image_of(v: Value) -> Result<Contact, sqlx::Error> {
    serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A merge row as stored: its images still sealed (see `Store::opened`).
fn decode_merge(r: &dyn RowGet) -> Result<ContactMerge, sqlx::Error> {
    // A damaged list would lose consents on undo: refused, never read as empty.
    let moved: Vec<i64> = serde_json::from_value(r.json("moved_consents")?)
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(ContactMerge {
        id: r.int("id")?,
        customer_id: r.int("customer_id")?,
        survivor_id: r.int("survivor_id")?,
        absorbed_id: r.int("absorbed_id")?,
        survivor_before: image_of(r.json("survivor_before")?)?,
        absorbed: image_of(r.json("absorbed")?)?,
        choices: r.json("choices")?,
        moved_consents: moved,
        survivor_version_after: r.int("survivor_version_after")?,
        merged_by: r.opt_int("merged_by")?,
        merged_at: r.time("merged_at")?,
        undone_by: r.opt_int("undone_by")?,
        undone_at: r.opt_time("undone_at")?,
    })
}

fn refused(zh: String, en: String) -> StoreError {
    StoreError::Invalid(ValidationErrors::single("merge", Reason::Other { zh, en }))
}

/// The likely pairs among contacts listed in customer order.
fn pairs_by_customer(contacts: &[Contact]) -> Vec<ContactPair> {
    let mut out = Vec::new();
    for group in contacts.chunk_by(|x, y| x.customer_id == y.customer_id) {
        let facts: Vec<ContactFacts<'_>> = group.iter().map(Contact::facts).collect();
        out.extend(contact_pairs(&facts));
    }
    out
}

/// Which contacts a refresh compared: listed, or every contact of the
/// customers in an id range (the scan).
enum Compared<'a> {
    Contacts(&'a [i64]),
    CustomerRange(i64, i64),
}

/// The open pairs stored among the compared contacts: (id, a, b).
async fn open_pairs_of(
    tx: &mut Tx,
    compared: &Compared<'_>,
) -> Result<Vec<(i64, i64, i64)>, StoreError> {
    let decode = |r: &dyn RowGet| Ok((r.int("id")?, r.int("a_id")?, r.int("b_id")?));
    match compared {
        Compared::Contacts(ids) => {
            let sql = "SELECT id, a_id, b_id FROM contact_pairs WHERE status = 'open' AND (a_id IN ({}) OR b_id IN ({}))";
            let mut out = Vec::new();
            for part in ids.chunks(crate::db::IDS_PER_QUERY / 2) {
                let n = part.len();
                let q = sql
                    .replacen("{}", &crate::db::marks_from(1, n), 1)
                    .replacen("{}", &crate::db::marks_from(n + 1, n), 1);
                let mut a: Vec<Arg> = part.iter().map(|&id| Arg::from(id)).collect();
                a.extend(part.iter().map(|&id| Arg::from(id)));
                out.extend(tx.fetch_all(&q, a, decode).await?);
            }
            Ok(out)
        }
        // A pair is listed under its lower contact's customer: every range
        // of a scan together lists each pair once.
        Compared::CustomerRange(lo, hi) => {
            tx.fetch_all(
                "SELECT p.id, p.a_id, p.b_id FROM contact_pairs p JOIN contacts c ON c.id = p.a_id \
                 WHERE p.status = 'open' AND c.customer_id >= $1 AND c.customer_id < $2",
                args![*lo, *hi],
                decode,
            )
            .await
        }
    }
}

/// Stores the pairs found among the compared contacts: each found pair
/// inserted or, when open, re-scored; open pairs of these contacts no
/// longer found dropped.
async fn store_found(
    tx: &mut Tx,
    compared: Compared<'_>,
    found: &[ContactPair],
) -> Result<(), StoreError> {
    let keep: HashSet<(i64, i64)> = found.iter().map(|p| (p.a, p.b)).collect();
    let mut stale: Vec<i64> = open_pairs_of(tx, &compared)
        .await?
        .into_iter()
        .filter(|(_, a, b)| !keep.contains(&(*a, *b)))
        .map(|(id, _, _)| id)
        .collect();
    stale.sort_unstable();
    stale.dedup();
    crate::db::execute_in(tx, "DELETE FROM contact_pairs WHERE id IN ({})", &stale).await?;
    let now = Utc::now();
    // A pair already stored keeps its status; an open one takes the new score.
    for part in found.chunks(500) {
        let mut sql = String::from(
            "INSERT INTO contact_pairs (a_id, b_id, score, reasons, status, found_at) VALUES ",
        );
        let mut a: Vec<Arg> = Vec::with_capacity(part.len() * 6);
        for (i, p) in part.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&crate::db::placeholders(tx.backend(), a.len(), 6));
            let reasons: Vec<&str> = p.evidence.iter().map(|e| e.key()).collect();
            a.extend(args![
                p.a,
                p.b,
                i64::from(p.score),
                Value::from(reasons),
                "open",
                now
            ]);
        }
        sql.push_str(
            " ON CONFLICT (a_id, b_id) DO UPDATE SET score = excluded.score, reasons = excluded.reasons \
             WHERE contact_pairs.status = 'open'",
        );
        tx.execute(&sql, a).await?;
    }
    Ok(())
}

impl Store {
    /// Compares the contacts of `customer_ids` again and refreshes their
    /// pairs (see the module's invariants).
    pub async fn refresh_contact_pairs(&self, customer_ids: &[i64]) -> Result<(), StoreError> {
        let mut ids = customer_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut contacts =
            crate::records::contacts_of(&mut self.db.clone(), &self.cipher, &ids).await?;
        contacts.sort_by_key(|c| (c.customer_id, c.id));
        let found = pairs_by_customer(&contacts);
        let contact_ids: Vec<i64> = contacts.iter().map(|c| c.id).collect();
        let mut tx = self.db.begin_write().await?;
        store_found(&mut tx, Compared::Contacts(&contact_ids), &found).await?;
        tx.commit().await
    }

    /// Every customer's contacts compared (customers in id ranges of
    /// `batch`), each range's pairs refreshed in its own transaction.
    pub async fn scan_contact_pairs(&self, batch: i64) -> Result<ContactScan, StoreError> {
        let max = self
            .db
            .clone()
            .fetch_one(
                "SELECT COALESCE(MAX(customer_id), 0) AS n FROM contacts",
                vec![],
                decode_n,
            )
            .await?;
        let mut scan = ContactScan::default();
        let sql = format!(
            "SELECT {} FROM contacts WHERE customer_id >= $1 AND customer_id < $2 ORDER BY customer_id, id",
            crate::records::CONTACT_COLUMNS
        );
        let mut lo = 0;
        while lo <= max {
            let hi = lo + batch.max(1);
            let rows = self
                .db
                .clone()
                .fetch_all(&sql, args![lo, hi], crate::records::decode_contact)
                .await?;
            let contacts = crate::records::open_contacts(&self.cipher, rows)?;
            let found = pairs_by_customer(&contacts);
            let mut tx = self.db.begin_write().await?;
            store_found(&mut tx, Compared::CustomerRange(lo, hi), &found).await?;
            tx.commit().await?;
            scan.contacts += contacts.len() as u64;
            scan.found += found.len() as u64;
            lo = hi;
        }
        scan.open = self
            .db
            .clone()
            .fetch_one(
                "SELECT COUNT(*) AS n FROM contact_pairs WHERE status = 'open'",
                vec![],
                decode_n,
            )
            .await? as u64;
        Ok(scan)
    }

    /// Pairs of `status` whose customer is in `scope` (and is `customer_id`
    /// when given), best first, and how many there are.
    pub async fn list_contact_pairs(
        &self,
        status: &str,
        scope: &ScopeFilter,
        customer_id: Option<i64>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<ContactPairRow>, i64), StoreError> {
        let mut b = SqlBuilder::new(self.db.backend(), "");
        let mut conds = vec![format!("p.status = {}", b.bind(status.to_string()))];
        conds.extend(crate::duplicates::scope_condition(
            &mut b,
            scope,
            "c.customer_id",
        ));
        if let Some(id) = customer_id {
            conds.push(format!("c.customer_id = {}", b.bind(id)));
        }
        crate::listing::count_and_page(
            &self.db,
            b,
            PAIR_FROM,
            PAIR_COLUMNS,
            &conds.join(" AND "),
            "p.score DESC, p.id",
            limit,
            offset,
            decode_pair,
        )
        .await
    }

    pub async fn contact_pair(&self, id: i64) -> Result<ContactPairRow, StoreError> {
        let sql = format!("SELECT {PAIR_COLUMNS} FROM {PAIR_FROM} WHERE p.id = $1");
        self.db
            .clone()
            .fetch_one(&sql, args![id], decode_pair)
            .await
    }

    /// Marks a pair as two people (never proposed again).
    pub async fn reject_contact_pair(
        &self,
        id: i64,
        by: Option<i64>,
    ) -> Result<ContactPairRow, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!("SELECT {PAIR_COLUMNS} FROM {PAIR_FROM} WHERE p.id = $1");
        let pair = tx.fetch_one(&sql, args![id], decode_pair).await?;
        if pair.status != "open" {
            return Err(refused(
                "这两位联系人已被判定为不是同一人".into(),
                "this pair was already rejected".into(),
            ));
        }
        tx.execute(
            "UPDATE contact_pairs SET status = 'rejected', decided_by = $1, decided_at = $2 WHERE id = $3",
            args![by, Utc::now(), id],
        )
        .await?;
        let pair = tx.fetch_one(&sql, args![id], decode_pair).await?;
        tx.commit().await?;
        Ok(pair)
    }

    /// Merges the absorbed contact into the survivor (see the module's invariants).
    pub async fn merge_contacts(
        &self,
        m: ContactMergeRequest<'_>,
    ) -> Result<ContactMerge, StoreError> {
        if m.survivor_id == m.absorbed_id {
            return Err(refused(
                "不能把联系人合并到它自己".into(),
                "a contact cannot be merged into itself".into(),
            ));
        }
        let (s, a) = (m.survivor_id, m.absorbed_id);
        let mut tx = self.db.begin_write().await?;
        check_version(&mut tx, "contacts", s, m.survivor_version).await?;
        check_version(&mut tx, "contacts", a, m.absorbed_version).await?;
        let sql = format!(
            "SELECT {} FROM contacts WHERE id = $1",
            crate::records::CONTACT_COLUMNS
        );
        let mut both = Vec::new();
        for id in [s, a] {
            let c = tx
                .fetch_one(&sql, args![id], crate::records::decode_contact)
                .await?;
            both.push(open_contact(&self.cipher, c)?);
        }
        let (survivor, absorbed) = (&both[0], &both[1]);
        if survivor.customer_id != absorbed.customer_id {
            return Err(refused(
                "只能合并同一客户的联系人".into(),
                "only contacts of one customer can be merged".into(),
            ));
        }
        let after = crate::records::update_contact_in(&mut tx, &self.cipher, s, m.data).await?;
        let moved = tx
            .fetch_all(
                "SELECT id AS n FROM consents WHERE contact_id = $1 ORDER BY id",
                args![a],
                decode_n,
            )
            .await?;
        tx.execute(
            "UPDATE consents SET contact_id = $1 WHERE contact_id = $2",
            args![s, a],
        )
        .await?;
        tx.execute("DELETE FROM contacts WHERE id = $1", args![a])
            .await?;
        let sql = format!(
            "INSERT INTO contact_merges (customer_id, survivor_id, absorbed_id, survivor_before, absorbed, choices, \
             moved_consents, survivor_version_after, merged_by, merged_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {MERGE_COLUMNS}"
        );
        let row = tx
            .fetch_one(
                &sql,
                args![
                    survivor.customer_id,
                    s,
                    a,
                    sealed_image(&self.cipher, survivor)?,
                    sealed_image(&self.cipher, absorbed)?,
                    m.choices,
                    Value::from(moved),
                    after.version,
                    m.by,
                    Utc::now()
                ],
                decode_merge,
            )
            .await?;
        tx.commit().await?;
        self.opened(row)
    }

    /// A merge read back with both images' personal fields opened.
    fn opened(&self, mut m: ContactMerge) -> Result<ContactMerge, StoreError> {
        m.survivor_before = open_contact(&self.cipher, m.survivor_before)?;
        m.absorbed = open_contact(&self.cipher, m.absorbed)?;
        Ok(m)
    }

    pub async fn contact_merge(&self, id: i64) -> Result<ContactMerge, StoreError> {
        let sql = format!("SELECT {MERGE_COLUMNS} FROM contact_merges WHERE id = $1");
        let row = self
            .db
            .clone()
            .fetch_one(&sql, args![id], decode_merge)
            .await?;
        self.opened(row)
    }

    /// A customer's contact merges, newest first.
    pub async fn contact_merges_of(
        &self,
        customer_id: i64,
    ) -> Result<Vec<ContactMerge>, StoreError> {
        let sql = format!(
            "SELECT {MERGE_COLUMNS} FROM contact_merges WHERE customer_id = $1 ORDER BY id DESC"
        );
        let rows = self
            .db
            .clone()
            .fetch_all(&sql, args![customer_id], decode_merge)
            .await?;
        rows.into_iter().map(|r| self.opened(r)).collect()
    }

    /// Puts both contacts back as they were (the absorbed one under its own
    /// id) and their consents; refused when the survivor has changed or is
    /// gone, or the merge was undone already.
    pub async fn undo_contact_merge(
        &self,
        id: i64,
        by: Option<i64>,
    ) -> Result<ContactMerge, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let sql = format!("SELECT {MERGE_COLUMNS} FROM contact_merges WHERE id = $1");
        let m = self.opened(tx.fetch_one(&sql, args![id], decode_merge).await?)?;
        if m.undone_at.is_some() {
            return Err(refused(
                "这次合并已经撤销".into(),
                "this merge was already undone".into(),
            ));
        }
        let current = tx
            .fetch_optional(
                "SELECT version, customer_id FROM contacts WHERE id = $1",
                args![m.survivor_id],
                |r: &dyn RowGet| Ok((r.int("version")?, r.int("customer_id")?)),
            )
            .await?;
        let customer_id = match current {
            None => {
                return Err(refused(
                    format!("保留的联系人 #{} 已被删除，无法撤销", m.survivor_id),
                    format!(
                        "the surviving contact #{} has been deleted since",
                        m.survivor_id
                    ),
                ))
            }
            Some((v, _)) if v != m.survivor_version_after => {
                return Err(refused(
                    format!("保留的联系人 #{} 在合并后已被修改，无法撤销", m.survivor_id),
                    format!(
                        "the surviving contact #{} has been changed since the merge",
                        m.survivor_id
                    ),
                ))
            }
            Some((_, customer)) => customer,
        };
        // Another contact made primary since keeps that: neither comes back as primary.
        let other_primary = tx
            .fetch_one(
                "SELECT COUNT(*) AS n FROM contacts WHERE customer_id = $1 AND id <> $2 AND is_primary = $3",
                args![customer_id, m.survivor_id, true],
                decode_n,
            )
            .await?
            > 0;
        let now = Utc::now();
        let mut survivor = m.survivor_before.clone();
        let mut absorbed = m.absorbed.clone();
        if other_primary {
            survivor.is_primary = false;
            absorbed.is_primary = false;
        }
        let mut a = contact_args(&self.cipher, (&survivor).into());
        a.extend(args![now, m.survivor_id]);
        tx.execute(
            &format!("UPDATE contacts SET {CONTACT_SET}, updated_at=$14, version = version + 1 WHERE id=$15"),
            a,
        )
        .await?;
        let mut a = contact_args(&self.cipher, (&absorbed).into());
        a.extend(args![
            m.absorbed_id,
            customer_id,
            absorbed.version + 1,
            absorbed.created_at,
            now
        ]);
        tx.execute(
            &format!(
                "INSERT INTO contacts ({}, id, customer_id, version, created_at, updated_at) \
                 VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)",
                crate::records::CONTACT_WRITTEN
            ),
            a,
        )
        .await?;
        for part in m.moved_consents.chunks(crate::db::IDS_PER_QUERY) {
            let q = format!(
                "UPDATE consents SET contact_id = $1 WHERE contact_id = $2 AND id IN ({})",
                crate::db::marks_from(3, part.len())
            );
            let mut a = args![m.absorbed_id, m.survivor_id];
            a.extend(part.iter().map(|&id| Arg::from(id)));
            tx.execute(&q, a).await?;
        }
        tx.execute(
            "UPDATE contact_merges SET undone_by = $1, undone_at = $2 WHERE id = $3",
            args![by, now, id],
        )
        .await?;
        let m = self.opened(tx.fetch_one(&sql, args![id], decode_merge).await?)?;
        tx.commit().await?;
        Ok(m)
    }

    /// The contact merges, not undone, that took part any of `contact_ids`
    /// (a customer merge is undone only after them).
    pub(crate) async fn open_contact_merges_in(
        tx: &mut Tx,
        contact_ids: &[i64],
    ) -> Result<Vec<i64>, StoreError> {
        let mut out = BTreeSet::new();
        for part in contact_ids.chunks(crate::db::IDS_PER_QUERY / 2) {
            let n = part.len();
            let q = format!(
                "SELECT id AS n FROM contact_merges WHERE undone_at IS NULL AND (survivor_id IN ({}) OR absorbed_id IN ({}))",
                crate::db::marks_from(1, n),
                crate::db::marks_from(n + 1, n)
            );
            let mut a: Vec<Arg> = part.iter().map(|&id| Arg::from(id)).collect();
            a.extend(part.iter().map(|&id| Arg::from(id)));
            out.extend(tx.fetch_all(&q, a, decode_n).await?);
        }
        Ok(out.into_iter().collect())
    }
}
