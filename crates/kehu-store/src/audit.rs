//! The audit log: entries appended in batches, each chained to the one
//! before (`kehu_core::audit`), searched by auditors, verified end to end.
//!
//! *Invariant*: appending is serialized — on PostgreSQL by a transaction
//! advisory lock, on SQLite by its write lock — so positions have no gaps
//! and every entry's `prev_hash` is its predecessor's hash, across servers.
//! Nothing updates or deletes entries.

use crate::db::{placeholders, Arg, Backend, Exec, RowGet};
use crate::error::StoreError;
use crate::listing::SqlBuilder;
use crate::{args, Store};
use chrono::{DateTime, Utc};
use kehu_core::audit::{
    entry_link, verify, Anchor, AuditRecord, ChainBreak, ChainHead, ChainKey, GENESIS,
};
use serde_json::Value;

/// An entry to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    pub at: DateTime<Utc>,
    pub actor_id: Option<i64>,
    pub action: String,
    pub target: String,
    pub detail: Value,
    pub client: Option<String>,
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub record: AuditRecord,
    pub prev_hash: String,
    pub hash: String,
}

const COLUMNS: &str = "pos, at, actor_id, action, target, detail, client, prev_hash, hash";

fn decode(r: &dyn RowGet) -> Result<AuditEntry, sqlx::Error> {
    Ok(AuditEntry {
        record: AuditRecord {
            pos: r.int("pos")?,
            at: r.text("at")?,
            actor_id: r.opt_int("actor_id")?,
            action: r.text("action")?,
            target: r.text("target")?,
            // Stored as the exact text that was hashed.
            detail: serde_json::from_str(&r.text("detail")?).unwrap_or(Value::Null),
            client: r.opt_text("client")?,
        },
        prev_hash: r.text("prev_hash")?,
        hash: r.text("hash")?,
    })
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub actor_id: Option<i64>,
    /// `customer:12`, or a prefix ending in `:` (`customer:`).
    pub target: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// What a verification saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerified {
    pub entries: i64,
    pub last_hash: String,
    /// The first entry linked under a key (those before it were written
    /// before keyed links, or with no key); None: no entry is.
    pub keyed_from: Option<i64>,
}

fn micros(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Entries per statement of an append.
const APPEND_ROWS: usize = 200;

/// `entries` as the rows after `after` (its position and hash): the
/// VALUES groups, their arguments, and the new end of the chain.
fn chained_rows(
    backend: Backend,
    after: &(i64, String),
    entries: &[NewAudit],
    signing: Option<ChainKey<'_>>,
) -> (String, Vec<Arg>, (i64, String)) {
    let (mut pos, mut prev) = after.clone();
    let mut groups: Vec<String> = Vec::with_capacity(entries.len());
    let mut a: Vec<Arg> = Vec::with_capacity(entries.len() * 9);
    for e in entries {
        pos += 1;
        let record = AuditRecord {
            pos,
            at: micros(e.at),
            actor_id: e.actor_id,
            action: e.action.clone(),
            target: e.target.clone(),
            detail: e.detail.clone(),
            client: e.client.clone(),
        };
        let hash = entry_link(signing, &prev, &record);
        groups.push(placeholders(backend, a.len(), 9));
        a.extend(args![
            pos,
            record.at,
            record.actor_id,
            record.action,
            record.target,
            record.detail.to_string(),
            record.client,
            std::mem::replace(&mut prev, hash.clone()),
            hash
        ]);
    }
    (groups.join(","), a, (pos, prev))
}

impl Store {
    /// Appends entries at the end of the chain, in order.
    ///
    /// On PostgreSQL the chain's end this process wrote last is kept: the
    /// next entries go in one statement, on condition that it is still
    /// there (and the position after it free, the primary key) — one round
    /// trip instead of a transaction with a lock and a read. Should another
    /// process have appended since, nothing is written and the entries go
    /// the locked way.
    pub async fn append_audit(&self, entries: &[NewAudit]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let keys = self.cipher.keys();
        let signing = keys.as_ref().map(|k| k.audit_signing());
        let backend = self.db.backend();
        let mut end = self.audit_end.lock().await;
        if let (Backend::Postgres, Some(known)) = (backend, end.take()) {
            if let Some(last) = self.append_after(&known, entries, signing).await? {
                *end = Some(last);
                return Ok(());
            }
        }
        let mut tx = self.db.begin_write().await?;
        if backend == Backend::Postgres {
            tx.execute("SELECT pg_advisory_xact_lock(7071003)", vec![])
                .await?;
        }
        let mut last = tx
            .fetch_optional(
                "SELECT pos, hash FROM audit_log ORDER BY pos DESC LIMIT 1",
                vec![],
                |r: &dyn RowGet| Ok((r.int("pos")?, r.text("hash")?)),
            )
            .await?
            .unwrap_or((0, GENESIS.to_string()));
        for part in entries.chunks(APPEND_ROWS) {
            let (values, a, part_last) = chained_rows(backend, &last, part, signing);
            tx.execute(
                &format!("INSERT INTO audit_log ({COLUMNS}) VALUES {values}"),
                a,
            )
            .await?;
            last = part_last;
        }
        tx.commit().await?;
        *end = Some(last);
        Ok(())
    }

    /// [`append_audit`](Self::append_audit)'s one statement: `entries`
    /// after `known`, written only if it is still the end of the chain; the
    /// new end, or None when nothing was written (another process appended
    /// since, or the batch is larger than one statement takes).
    async fn append_after(
        &self,
        known: &(i64, String),
        entries: &[NewAudit],
        signing: Option<ChainKey<'_>>,
    ) -> Result<Option<(i64, String)>, StoreError> {
        if entries.len() > APPEND_ROWS {
            return Ok(None);
        }
        let (values, mut a, last) = chained_rows(self.db.backend(), known, entries, signing);
        let n = a.len();
        a.extend(args![known.0, known.1.as_str()]);
        let sql = format!(
            "INSERT INTO audit_log ({COLUMNS}) SELECT * FROM (VALUES {values}) AS v ({COLUMNS}) \
             WHERE EXISTS (SELECT 1 FROM audit_log WHERE pos = ${} AND hash = ${})",
            n + 1,
            n + 2
        );
        match self.db.clone().execute(&sql, a).await {
            Ok(written) if written == entries.len() as u64 => Ok(Some(last)),
            Ok(_) => Ok(None),
            Err(e) if e.unique_violation().is_some() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Entries matching `filter`, newest first, and how many there are.
    pub async fn audit_entries(
        &self,
        filter: &AuditFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<AuditEntry>, i64), StoreError> {
        let mut b = SqlBuilder::new(self.db.backend(), "");
        let mut conds: Vec<String> = Vec::new();
        if let Some(a) = &filter.action {
            conds.push(format!("action = {}", b.bind(a.clone())));
        }
        if let Some(a) = filter.actor_id {
            conds.push(format!("actor_id = {}", b.bind(a)));
        }
        match &filter.target {
            Some(t) if t.ends_with(':') => {
                conds.push(format!("target LIKE {}", b.bind(format!("{t}%"))));
            }
            Some(t) => conds.push(format!("target = {}", b.bind(t.clone()))),
            None => {}
        }
        if let Some(f) = filter.from {
            conds.push(format!("at >= {}", b.bind(micros(f))));
        }
        if let Some(t) = filter.to {
            conds.push(format!("at < {}", b.bind(micros(t))));
        }
        let cond = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        let total = self
            .db
            .clone()
            .fetch_one(
                &format!("SELECT COUNT(*) AS n FROM audit_log{cond}"),
                b.args.clone(),
                crate::db::decode_n,
            )
            .await?;
        let (pl, po) = (b.bind(limit), b.bind(offset));
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_log{cond} ORDER BY pos DESC LIMIT {pl} OFFSET {po}"
        );
        let entries = self.db.clone().fetch_all(&sql, b.args, decode).await?;
        Ok((entries, total))
    }

    /// Walks the whole chain in position order (in pages): where it breaks,
    /// or how long it is and its last link (to note down and pass as
    /// `anchor` later: a log cut short or rewritten since shows against
    /// it).
    pub async fn verify_audit(
        &self,
        anchor: Option<&Anchor>,
    ) -> Result<Result<AuditVerified, ChainBreak>, StoreError> {
        let keys = self.cipher.keys();
        let lookup = |id: &str| keys.as_ref().and_then(|k| k.audit_key(id));
        let mut head = ChainHead::start();
        let mut anchored: Option<String> = None;
        loop {
            let sql =
                format!("SELECT {COLUMNS} FROM audit_log WHERE pos > $1 ORDER BY pos LIMIT 10000");
            let page = self
                .db
                .clone()
                .fetch_all(&sql, args![head.pos], decode)
                .await?;
            if page.is_empty() {
                break;
            }
            if let Some(a) = anchor {
                if let Some(e) = page.iter().find(|e| e.record.pos == a.pos) {
                    anchored = Some(e.hash.clone());
                }
            }
            match verify(
                head.clone(),
                page.iter()
                    .map(|e| (&e.record, e.prev_hash.as_str(), e.hash.as_str())),
                &lookup,
            ) {
                Ok(next) => head = next,
                Err(b) => return Ok(Err(b)),
            }
        }
        if let Some(a) = anchor {
            if let Err(b) = a.check(head.pos, anchored.as_deref()) {
                return Ok(Err(b));
            }
        }
        Ok(Ok(AuditVerified {
            entries: head.pos,
            last_hash: head.link,
            keyed_from: head.keyed_from,
        }))
    }
}
