//! Imports: the record of each import (its dry run, application, undo),
//! the uploaded file until it is applied, and what an applied import wrote
//! so that it can be undone as a whole.
//!
//! *Invariant*: an import is applied in one transaction ([`ImportWriter`])
//! that also records every insert and, for every update, the row as it was;
//! undoing it is one transaction too, refused when any of those records has
//! changed since (someone else's work is never thrown away).

use crate::cipher::FieldCipher;
use crate::customers::SoundMatch;
use crate::db::{decode_n, Arg, Exec, RowGet, Tx};
use crate::error::StoreError;
use crate::feed::{self, FeedKind};
use crate::model::{Contact, Customer, Interaction, Order};
use crate::{args, Owner, Store};
use chrono::{DateTime, Utc};
use kehu_core::contact::ContactData;
use kehu_core::customer::CustomerData;
use kehu_core::interaction::InteractionData;
use kehu_core::order::OrderData;
use kehu_core::{Reason, ValidationErrors};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// One import as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRecord {
    pub id: i64,
    pub kind: String,
    pub file_name: String,
    pub file_sha256: String,
    /// `dry_run`, `applied`, `refused` (abort on an invalid row) or `undone`.
    pub status: String,
    pub on_invalid: Option<String>,
    pub skip_suspects: bool,
    /// The file's header row.
    pub headers: Value,
    /// The columns used and the fields they fed.
    pub mapping: Value,
    /// Row counts by outcome.
    pub counts: Value,
    /// The first problems (errors and warnings) of the rows.
    pub problems: Value,
    pub user_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub applied_at: Option<DateTime<Utc>>,
    pub undone_at: Option<DateTime<Utc>>,
    pub undone_by: Option<i64>,
}

const COLUMNS: &str = "id, kind, file_name, file_sha256, status, on_invalid, skip_suspects, headers, mapping, counts, problems, \
user_id, created_at, applied_at, undone_at, undone_by";

fn decode(r: &dyn RowGet) -> Result<ImportRecord, sqlx::Error> {
    Ok(ImportRecord {
        id: r.int("id")?,
        kind: r.text("kind")?,
        file_name: r.text("file_name")?,
        file_sha256: r.text("file_sha256")?,
        status: r.text("status")?,
        on_invalid: r.opt_text("on_invalid")?,
        skip_suspects: r.boolean("skip_suspects")?,
        headers: r.json("headers")?,
        mapping: r.json("mapping")?,
        counts: r.json("counts")?,
        problems: r.json("problems")?,
        user_id: r.opt_int("user_id")?,
        created_at: r.time("created_at")?,
        applied_at: r.opt_time("applied_at")?,
        undone_at: r.opt_time("undone_at")?,
        undone_by: r.opt_int("undone_by")?,
    })
}

/// What a new import record says about its file.
#[derive(Debug, Clone)]
pub struct NewImport<'a> {
    pub kind: &'a str,
    pub file_name: &'a str,
    pub file_sha256: &'a str,
    pub user_id: Option<i64>,
}

/// The outcome of a dry run or an application, as recorded.
#[derive(Debug, Clone)]
pub struct ImportOutcome {
    pub status: &'static str,
    pub on_invalid: Option<&'static str>,
    pub skip_suspects: bool,
    pub headers: Value,
    pub mapping: Value,
    pub counts: Value,
    pub problems: Value,
}

impl ImportOutcome {
    fn applied(&self) -> bool {
        self.status == "applied"
    }
}

async fn insert_record(
    exec: &mut impl Exec,
    new: &NewImport<'_>,
    outcome: &ImportOutcome,
) -> Result<i64, StoreError> {
    let now = Utc::now();
    exec.fetch_one(
        "INSERT INTO imports (kind, file_name, file_sha256, status, on_invalid, skip_suspects, mapping, counts, problems, user_id, created_at, applied_at, headers) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) RETURNING id AS n",
        args![
            new.kind,
            new.file_name,
            new.file_sha256,
            outcome.status,
            outcome.on_invalid,
            outcome.skip_suspects,
            outcome.mapping.clone(),
            outcome.counts.clone(),
            outcome.problems.clone(),
            new.user_id,
            now,
            outcome.applied().then_some(now),
            outcome.headers.clone()
        ],
        decode_n,
    )
    .await
}

async fn update_record(
    exec: &mut impl Exec,
    id: i64,
    outcome: &ImportOutcome,
) -> Result<(), StoreError> {
    let applied_at = outcome.applied().then(Utc::now);
    let n = exec
        .execute(
            "UPDATE imports SET status=$1, on_invalid=$2, skip_suspects=$3, mapping=$4, counts=$5, problems=$6, \
             applied_at = COALESCE($7, applied_at), headers=$9 WHERE id=$8",
            args![
                outcome.status,
                outcome.on_invalid,
                outcome.skip_suspects,
                outcome.mapping.clone(),
                outcome.counts.clone(),
                outcome.problems.clone(),
                applied_at,
                id,
                outcome.headers.clone()
            ],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The scope (associated data) of an upload kept until it is applied: it
/// holds whatever personal data the file had, so it is sealed whole.
const IMPORT_FILES: &str = "import_files.bytes";

impl Store {
    /// Records an import not applied — a dry run, or an application refused
    /// — and keeps `file`, when given, for applying it later.
    pub async fn record_unapplied(
        &self,
        new: &NewImport<'_>,
        outcome: &ImportOutcome,
        file: Option<&[u8]>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.db.begin().await?;
        let id = insert_record(&mut tx, new, outcome).await?;
        if let Some(bytes) = file {
            tx.execute(
                "INSERT INTO import_files (import_id, bytes) VALUES ($1, $2)",
                args![id, self.cipher.seal_bytes(IMPORT_FILES, bytes)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Replaces the outcome of a dry run (run again with another mapping),
    /// or records that applying it was refused.
    pub async fn record_outcome(&self, id: i64, outcome: &ImportOutcome) -> Result<(), StoreError> {
        update_record(&mut self.db.clone(), id, outcome).await
    }

    pub async fn import_record(&self, id: i64) -> Result<ImportRecord, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM imports WHERE id = $1");
        self.db.clone().fetch_one(&sql, args![id], decode).await
    }

    /// The newest imports first, `user_id` only when given.
    pub async fn list_imports(
        &self,
        user_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ImportRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM imports WHERE ($1 IS NULL OR user_id = $1) ORDER BY id DESC LIMIT $2"
        );
        self.db
            .clone()
            .fetch_all(&sql, args![user_id, limit], decode)
            .await
    }

    /// The uploaded file of a dry run not applied yet.
    pub async fn import_file(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let bytes = self
            .db
            .clone()
            .fetch_optional(
                "SELECT bytes FROM import_files WHERE import_id = $1",
                args![id],
                |r: &dyn RowGet| r.opt_bytes("bytes"),
            )
            .await?;
        bytes
            .flatten()
            .map(|b| self.cipher.open_bytes(IMPORT_FILES, &b))
            .transpose()
    }

    /// Opens the transaction an import is applied in; `existing` is the
    /// dry run being applied, if any.
    pub async fn begin_import(
        &self,
        new: &NewImport<'_>,
        existing: Option<i64>,
    ) -> Result<ImportWriter, StoreError> {
        let personal = self.personal_keys().await?;
        let mut tx = self.db.begin_write().await?;
        // The record first, so that the changes can be recorded as they
        // are written (a million before-images would not fit in memory);
        // `finish` gives it its outcome, and a rollback takes it away.
        let id = match existing {
            Some(id) => id,
            None => {
                let applying = ImportOutcome {
                    status: "applying",
                    on_invalid: None,
                    skip_suspects: false,
                    headers: Value::Array(Vec::new()),
                    mapping: Value::Array(Vec::new()),
                    counts: Value::Object(Default::default()),
                    problems: Value::Array(Vec::new()),
                };
                insert_record(&mut tx, new, &applying).await?
            }
        };
        Ok(ImportWriter {
            tx,
            cipher: self.cipher.clone(),
            personal,
            id,
            recorded: 0,
            changes: Vec::new(),
            changed: ChangedCustomers::default(),
            today: self.today(),
        })
    }

    /// Undoes an applied import in one transaction: its inserts deleted,
    /// its updates put back. Refused (nothing changed) when the import is
    /// not applied, or when a record it wrote has changed since — the
    /// error lists them.
    pub async fn undo_import(&self, id: i64, by: Option<i64>) -> Result<UndoSummary, StoreError> {
        let personal = self.personal_keys().await?;
        let mut tx = self.db.begin_write().await?;
        let sql = format!("SELECT {COLUMNS} FROM imports WHERE id = $1");
        let record = tx.fetch_one(&sql, args![id], decode).await?;
        if record.status != "applied" {
            return Err(StoreError::Invalid(ValidationErrors::single(
                "status",
                Reason::Other {
                    zh: format!("只能撤销已应用的导入（当前状态：{}）", record.status),
                    en: format!(
                        "only an applied import can be undone (it is {})",
                        record.status
                    ),
                },
            )));
        }
        let changes = tx
            .fetch_all(
                "SELECT seq, entity, record_id, customer_id, action, before, version_after FROM import_changes \
                 WHERE import_id = $1 ORDER BY seq DESC",
                args![id],
                |r: &dyn RowGet| {
                    Ok(Change {
                        entity: Entity::parse(&r.text("entity")?),
                        record_id: r.int("record_id")?,
                        customer_id: r.int("customer_id")?,
                        inserted: r.text("action")? == "insert",
                        before: match r.json("before") {
                            Ok(Value::Null) | Err(_) => None,
                            Ok(v) => Some(v),
                        },
                        version_after: r.int("version_after")?,
                    })
                },
            )
            .await?;
        let conflicts = undo_conflicts(&mut tx, &changes).await?;
        if !conflicts.is_empty() {
            let mut e = ValidationErrors::default();
            for c in conflicts {
                e.push("records", c);
            }
            return Err(StoreError::Invalid(e));
        }
        let mut summary = UndoSummary::default();
        let mut changed = ChangedCustomers::default();
        let seal = crate::cipher::CustomSeal {
            cipher: &self.cipher,
            personal: &personal,
        };
        let current_sql = format!(
            "SELECT {} FROM customers WHERE id IN ({{}})",
            crate::customers::COLUMNS
        );
        for batch in changes.chunks(UNDO_BATCH) {
            // The rows that partial images go over, read a batch at a time.
            let partial: Vec<i64> = batch
                .iter()
                .filter(|c| {
                    c.entity == Entity::Customer && c.before.as_ref().is_some_and(is_partial)
                })
                .map(|c| c.record_id)
                .collect();
            let mut current: HashMap<i64, Customer> = crate::db::fetch_in(
                &mut tx,
                &current_sql,
                &partial,
                crate::customers::decoder(&self.cipher),
            )
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
            let noted = noted_by_other_imports(&mut tx, id, batch).await?;
            // A run of records one table had inserted goes in one statement;
            // a change of another kind ends the run first, so records still
            // go in the reverse order of the import (children first).
            let mut doomed = Doomed::default();
            for c in batch {
                changed.note(c.entity, c.customer_id);
                if c.inserted {
                    summary.deleted += doomed.push(&mut tx, c.entity, c.record_id).await?;
                } else if let Some(before) = &c.before {
                    summary.deleted += doomed.delete(&mut tx).await?;
                    // Taken, not borrowed: a second change of the same customer
                    // in the batch reads the row as the first one left it.
                    let now_row = match c.entity {
                        Entity::Customer => current.remove(&c.record_id),
                        _ => None,
                    };
                    let (before_version, now) =
                        restore(&mut tx, &seal, c.entity, before, now_row).await?;
                    // An earlier import that left the record as it is now again
                    // may still be undone: its record of the version follows.
                    if noted.contains(&(c.entity, c.record_id)) {
                        tx.execute(
                            "UPDATE import_changes SET version_after = $1 WHERE entity = $2 AND record_id = $3 AND version_after = $4 \
                             AND import_id IN (SELECT id FROM imports WHERE status = 'applied' AND id <> $5)",
                            args![now, c.entity.name(), c.record_id, before_version, id],
                        )
                        .await?;
                    }
                    summary.restored += 1;
                }
            }
            summary.deleted += doomed.delete(&mut tx).await?;
        }
        let today = self.today();
        // Orders and interactions changed: their customers' rollups (of
        // those still there) follow.
        let rollups: Vec<i64> = changed.rollups.iter().copied().collect();
        let existing: Vec<i64> = crate::db::fetch_in(
            &mut tx,
            "SELECT id AS n FROM customers WHERE id IN ({})",
            &rollups,
            decode_n,
        )
        .await?;
        for customer_id in existing {
            Store::refresh_rollups_unrecorded(&mut tx, customer_id, today).await?;
        }
        let touched = changed.touched();
        feed::record(&mut tx, FeedKind::Facts, &touched.customers).await?;
        tx.execute(
            "UPDATE imports SET status = 'undone', undone_at = $1, undone_by = $2 WHERE id = $3",
            args![Utc::now(), by, id],
        )
        .await?;
        tx.commit().await?;
        summary.touched = touched;
        Ok(summary)
    }
}

/// Records of one table an undo deletes together: the ones the import
/// inserted, met one after another.
#[derive(Default)]
struct Doomed {
    entity: Option<Entity>,
    ids: Vec<i64>,
}

impl Doomed {
    /// Adds a record, deleting the run before it when that was another
    /// table's; the rows deleted so.
    async fn push(&mut self, tx: &mut Tx, entity: Entity, id: i64) -> Result<u64, StoreError> {
        let deleted = if self.entity == Some(entity) {
            0
        } else {
            self.delete(tx).await?
        };
        self.entity = Some(entity);
        self.ids.push(id);
        Ok(deleted)
    }

    /// Deletes the run; the rows deleted.
    async fn delete(&mut self, tx: &mut Tx) -> Result<u64, StoreError> {
        let Some(entity) = self.entity.take() else {
            return Ok(0);
        };
        let sql = format!("DELETE FROM {} WHERE id IN ({{}})", entity.table());
        let ids = std::mem::take(&mut self.ids);
        crate::db::execute_in(tx, &sql, &ids).await
    }
}

/// What an undo did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UndoSummary {
    /// Records the import had inserted, deleted again.
    pub deleted: u64,
    /// Records the import had changed, put back.
    pub restored: u64,
    /// The customers whose data changed.
    pub touched: Touched,
}

/// The customers a write of many records (an import, its undo, a merge)
/// changed: what has to be brought up to date after it commits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// Whose fields or records changed (classes and tags).
    pub customers: Vec<i64>,
    /// Whose contacts changed (their likely duplicate contacts).
    pub contacts_of: Vec<i64>,
}

impl Touched {
    /// Customers whose fields, records and contacts all may have changed.
    pub fn all(customers: Vec<i64>) -> Touched {
        Touched {
            contacts_of: customers.clone(),
            customers,
        }
    }
}

/// The customers a run of changes (an import, its undo) went to, by what
/// follows for them.
#[derive(Debug, Default)]
struct ChangedCustomers {
    /// Any of their fields or records (the change feed).
    any: BTreeSet<i64>,
    /// Their contacts.
    contacts: BTreeSet<i64>,
    /// Their orders or interactions (rollups, digests).
    rollups: BTreeSet<i64>,
}

impl ChangedCustomers {
    fn note(&mut self, entity: Entity, customer_id: i64) {
        self.any.insert(customer_id);
        match entity {
            Entity::Order | Entity::Interaction => {
                self.rollups.insert(customer_id);
            }
            Entity::Contact => {
                self.contacts.insert(customer_id);
            }
            Entity::Customer => {}
        }
    }

    fn touched(&self) -> Touched {
        Touched {
            customers: self.any.iter().copied().collect(),
            contacts_of: self.contacts.iter().copied().collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Entity {
    Customer,
    Contact,
    Order,
    Interaction,
}

impl Entity {
    const ALL: [Entity; 4] = [
        Entity::Customer,
        Entity::Contact,
        Entity::Order,
        Entity::Interaction,
    ];

    fn name(self) -> &'static str {
        match self {
            Entity::Customer => "customer",
            Entity::Contact => "contact",
            Entity::Order => "order",
            Entity::Interaction => "interaction",
        }
    }
    fn table(self) -> &'static str {
        match self {
            Entity::Customer => "customers",
            Entity::Contact => "contacts",
            Entity::Order => "orders",
            Entity::Interaction => "interactions",
        }
    }
    fn parse(s: &str) -> Entity {
        match s {
            "customer" => Entity::Customer,
            "contact" => Entity::Contact,
            "order" => Entity::Order,
            _ => Entity::Interaction,
        }
    }
}

struct Change {
    entity: Entity,
    record_id: i64,
    customer_id: i64,
    inserted: bool,
    before: Option<Value>,
    version_after: i64,
}

/// Of the records `changes` put back, those another applied import than
/// `import_id` has noted too: only their noted versions move on when they
/// are put back (a large undo's records were mostly noted by it alone, and
/// an `UPDATE` each was a third of its statements).
async fn noted_by_other_imports(
    tx: &mut Tx,
    import_id: i64,
    changes: &[Change],
) -> Result<HashSet<(Entity, i64)>, StoreError> {
    let mut noted = HashSet::new();
    for entity in Entity::ALL {
        let ids: Vec<i64> = changes
            .iter()
            .filter(|c| c.entity == entity && !c.inserted)
            .map(|c| c.record_id)
            .collect();
        // Both values are ours (a fixed name, an integer), not input.
        let sql = format!(
            "SELECT record_id AS n FROM import_changes WHERE entity = '{}' AND record_id IN ({{}}) \
             AND import_id <> {import_id} AND import_id IN (SELECT id FROM imports WHERE status = 'applied')",
            entity.name()
        );
        let found = crate::db::fetch_in(tx, &sql, &ids, decode_n).await?;
        noted.extend(found.into_iter().map(|r| (entity, r)));
    }
    Ok(noted)
}

/// Why the changes cannot be undone: records changed or deleted since,
/// customers the import created that have gained records since.
async fn undo_conflicts(tx: &mut Tx, changes: &[Change]) -> Result<Vec<Reason>, StoreError> {
    let mut conflicts = Vec::new();
    let mut created_with: BTreeMap<i64, i64> = BTreeMap::new();
    for c in changes {
        if c.entity == Entity::Customer && c.inserted {
            created_with.entry(c.customer_id).or_insert(0);
        }
    }
    // Every record's version now, a batch of ids per statement.
    let mut versions: HashMap<(&str, i64), i64> = HashMap::new();
    for entity in Entity::ALL {
        let ids: Vec<i64> = changes
            .iter()
            .filter(|c| c.entity == entity)
            .map(|c| c.record_id)
            .collect();
        let sql = format!(
            "SELECT id, version FROM {} WHERE id IN ({{}})",
            entity.table()
        );
        let found = crate::db::fetch_in(tx, &sql, &ids, |r: &dyn RowGet| {
            Ok((r.int("id")?, r.int("version")?))
        })
        .await?;
        versions.extend(found.into_iter().map(|(id, v)| ((entity.table(), id), v)));
    }
    for c in changes {
        if c.entity != Entity::Customer {
            if let Some(n) = created_with.get_mut(&c.customer_id) {
                *n += 1;
            }
        }
        let version = versions.get(&(c.entity.table(), c.record_id)).copied();
        let what = format!("{} #{}", c.entity.name(), c.record_id);
        match version {
            Some(v) if v == c.version_after => {}
            None if c.inserted => {}
            None => conflicts.push(Reason::Other {
                zh: format!("{what} 在导入后已被删除"),
                en: format!("{what} was deleted after the import"),
            }),
            Some(_) => conflicts.push(Reason::Other {
                zh: format!("{what} 在导入后已被修改"),
                en: format!("{what} was changed after the import"),
            }),
        }
    }
    for (customer_id, imported) in created_with {
        let now = tx
            .fetch_one(
                "SELECT (SELECT COUNT(*) FROM contacts WHERE customer_id = $1) + (SELECT COUNT(*) FROM orders WHERE customer_id = $1) \
                 + (SELECT COUNT(*) FROM interactions WHERE customer_id = $1) AS n",
                args![customer_id],
                decode_n,
            )
            .await?;
        if now > imported {
            conflicts.push(Reason::Other {
                zh: format!("导入创建的客户 #{customer_id} 之后又添加了联系人、订单或互动"),
                en: format!("customer #{customer_id}, created by the import, has gained contacts, orders or interactions since"),
            });
        }
    }
    Ok(conflicts)
}

/// Puts a customer back as `before` (its version moves on): the version
/// it had then and the version it has now. Undoing a merge does this too.
pub(crate) async fn restore_customer(
    tx: &mut Tx,
    seal: &crate::cipher::CustomSeal<'_>,
    before: &Value,
) -> Result<(i64, i64), StoreError> {
    restore(tx, seal, Entity::Customer, before, None).await
}

/// Whether a before-image holds only the columns an import changed.
fn is_partial(before: &Value) -> bool {
    before.get(PARTIAL) == Some(&Value::Bool(true))
}

/// Changes undone per batch (the rows their partial images go over are
/// read a batch at a time).
const UNDO_BATCH: usize = 1_000;

/// Puts a record back as it was before the import (its version moves on):
/// the version it had then and the version it has now. A customer's
/// partial image goes over `current` (the row as it is now), read here
/// when the caller has not.
async fn restore(
    tx: &mut Tx,
    seal: &crate::cipher::CustomSeal<'_>,
    entity: Entity,
    before: &Value,
    current: Option<Customer>,
) -> Result<(i64, i64), StoreError> {
    let bad = |e: serde_json::Error| StoreError::Config(format!("import before-image: {e}"));
    let at = Utc::now();
    let done = match entity {
        Entity::Customer => {
            let whole = match is_partial(before) {
                // The columns an import changed over the row as it is now
                // (the rest are as they were: the undo checked the version).
                true => {
                    let id = before
                        .get("id")
                        .and_then(Value::as_i64)
                        .ok_or_else(|| StoreError::Config("import before-image: no id".into()))?;
                    let now = match current {
                        Some(c) if c.id == id => c,
                        _ => crate::customers::customer_in(tx, seal.cipher, id).await?,
                    };
                    let mut whole = image(&now)?;
                    if let (Value::Object(w), Value::Object(b)) = (&mut whole, before) {
                        w.extend(b.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                    whole
                }
                false => before.clone(),
            };
            let mut c: Customer = serde_json::from_value(whole).map_err(bad)?;
            // Sealed as the fields are marked now (the image may be older).
            seal.cipher.open_custom(&mut c.custom_fields)?;
            let custom_fields = seal.seal(&c.custom_fields);
            let was = c.version;
            let key = crate::customers::name_key(&c.name);
            let sound = crate::customers::name_sound(&c.name);
            let now = tx.fetch_one(
                "UPDATE customers SET code=$1, name=$2, aliases=$3, uscc=$4, industry=$5, employees=$6, annual_revenue_fen=$7, province=$8, \
                 city=$9, sales_region=$10, address=$11, founded_on=$12, cooperation_start_on=$13, product_types=$14, \
                 declared_annual_purchase_fen=$15, status=$16, source_channel=$17, owner_id=$18, team=$19, notes=$20, custom_fields=$21, \
                 missing_fields=$22, updated_at=$23, name_key=$25, name_sound=$26, version = version + 1 WHERE id = $24 RETURNING version AS n",
                args![
                    c.code,
                    c.name,
                    Value::from(c.aliases),
                    c.uscc,
                    c.industry,
                    c.employees,
                    c.annual_revenue_fen,
                    c.province,
                    c.city,
                    c.sales_region,
                    c.address,
                    c.founded_on,
                    c.cooperation_start_on,
                    Value::from(c.product_types),
                    c.declared_annual_purchase_fen,
                    c.status,
                    c.source_channel,
                    c.owner_id,
                    c.team,
                    c.notes,
                    custom_fields,
                    Value::from(c.missing_fields),
                    at,
                    c.id,
                    key,
                    sound
                ],
                decode_n,
            )
            .await?;
            (was, now)
        }
        Entity::Contact => {
            let c: Contact = serde_json::from_value(before.clone()).map_err(bad)?;
            let c = crate::records::open_contact(seal.cipher, c)?;
            let was = c.version;
            let mut a = crate::records::contact_args(seal.cipher, (&c).into());
            a.extend(args![at, c.id]);
            let sql = format!(
                "UPDATE contacts SET {}, updated_at=$14, version = version + 1 WHERE id = $15 RETURNING version AS n",
                crate::records::CONTACT_SET
            );
            let now = tx.fetch_one(&sql, a, decode_n).await?;
            (was, now)
        }
        Entity::Order => {
            let o: Order = serde_json::from_value(before.clone()).map_err(bad)?;
            let was = o.version;
            let now = tx.fetch_one(
                "UPDATE orders SET order_no=$1, ordered_on=$2, amount_fen=$3, product_line=$4, notes=$5, updated_at=$6, \
                 version = version + 1 WHERE id = $7 RETURNING version AS n",
                args![
                    o.order_no,
                    o.ordered_on,
                    o.amount_fen,
                    o.product_line,
                    o.notes,
                    at,
                    o.id
                ],
                decode_n,
            )
            .await?;
            (was, now)
        }
        // Imports only insert interactions: nothing to put back.
        Entity::Interaction => (0, 0),
    };
    Ok(done)
}

/// Marks a customer's before-image holding only the fields an import
/// changed (with `id` and `version`); older images hold the whole record.
const PARTIAL: &str = "partial";

/// `import_changes` rows per statement (8 parameters a row).
const CHANGES_PER_STATEMENT: usize = 500;

/// The open transaction of an import being applied: every write goes
/// through it and is recorded for undo; [`ImportWriter::finish`] commits
/// all of it with the import's record, dropping it rolls everything back.
pub struct ImportWriter {
    tx: Tx,
    cipher: std::sync::Arc<FieldCipher>,
    /// The personal custom fields, read once for the whole import.
    personal: std::collections::BTreeSet<String>,
    /// The import's record (written in this transaction).
    id: i64,
    /// Changes already in `import_changes`.
    recorded: usize,
    /// Changes written but not yet recorded.
    changes: Vec<(Entity, i64, i64, Option<Value>, i64)>,
    /// The customers written, by what follows for them.
    changed: ChangedCustomers,
    today: chrono::NaiveDate,
}

fn image<T: serde::Serialize>(record: &T) -> Result<Value, StoreError> {
    serde_json::to_value(record)
        .map_err(|e| StoreError::Config(format!("import before-image: {e}")))
}

impl ImportWriter {
    /// Reads inside the import's transaction (what earlier rows wrote is visible).
    pub fn reader(&mut self) -> ImportReader<'_> {
        ImportReader {
            tx: &mut self.tx,
            cipher: &self.cipher,
        }
    }

    /// Notes a change for undo, the change feed and the rollups.
    async fn note(
        &mut self,
        entity: Entity,
        id: i64,
        customer_id: i64,
        before: Option<Value>,
        version: i64,
    ) -> Result<(), StoreError> {
        self.changes
            .push((entity, id, customer_id, before, version));
        self.changed.note(entity, customer_id);
        self.record_changes(CHANGES_PER_STATEMENT).await
    }

    /// Inserts new customers in multi-row statements; returns their ids in
    /// the order given.
    pub async fn insert_customers(
        &mut self,
        rows: &[(&CustomerData, &Owner)],
        actor: Option<i64>,
    ) -> Result<Vec<i64>, StoreError> {
        let seal = crate::cipher::CustomSeal {
            cipher: &self.cipher,
            personal: &self.personal,
        };
        let written =
            crate::customers::insert_customers_in(&mut self.tx, &seal, rows, actor).await?;
        for &(id, version) in &written {
            self.note(Entity::Customer, id, id, None, version).await?;
        }
        Ok(written.into_iter().map(|(id, _)| id).collect())
    }

    /// Replaces stored customers (`before`, as read in this transaction)
    /// in multi-row statements, each one's before-image kept for undo.
    pub async fn update_customers(
        &mut self,
        rows: &[(&Customer, &CustomerData, &Owner)],
        actor: Option<i64>,
    ) -> Result<(), StoreError> {
        let seal = crate::cipher::CustomSeal {
            cipher: &self.cipher,
            personal: &self.personal,
        };
        let versions =
            crate::customers::update_customers_in(&mut self.tx, &seal, rows, actor).await?;
        for ((before, ..), (version, mask)) in rows.iter().zip(versions) {
            let mut sealed = (*before).clone();
            sealed.custom_fields = self
                .cipher
                .seal_custom(&before.custom_fields, &self.personal);
            // Only what the update wrote (and what identifies the row): a
            // whole customer per row made a million-row import write ~1 GB
            // of images.
            let Value::Object(mut image) = image(&sealed)? else {
                return Err(StoreError::Config(
                    "a customer's image is not an object".into(),
                ));
            };
            let kept: BTreeSet<&str> = crate::customers::changed_fields(mask)
                .chain(["id", "version"])
                .collect();
            image.retain(|k, _| kept.contains(k.as_str()));
            image.insert(PARTIAL.into(), Value::Bool(true));
            self.note(
                Entity::Customer,
                before.id,
                before.id,
                Some(Value::Object(image)),
                version,
            )
            .await?;
        }
        Ok(())
    }

    /// `others`: the customer may have other contacts (not one created by this import a moment ago).
    pub async fn insert_contact(
        &mut self,
        customer_id: i64,
        d: &ContactData,
        others: bool,
    ) -> Result<Contact, StoreError> {
        let c =
            crate::records::insert_contact_in(&mut self.tx, &self.cipher, customer_id, d, others)
                .await?;
        self.note(Entity::Contact, c.id, customer_id, None, c.version)
            .await?;
        Ok(c)
    }

    pub async fn update_contact(
        &mut self,
        before: &Contact,
        d: &ContactData,
    ) -> Result<Contact, StoreError> {
        crate::db::check_version(&mut self.tx, "contacts", before.id, before.version).await?;
        let c = crate::records::update_contact_in(&mut self.tx, &self.cipher, before.id, d).await?;
        self.note(
            Entity::Contact,
            c.id,
            c.customer_id,
            Some(crate::records::sealed_image(&self.cipher, before)?),
            c.version,
        )
        .await?;
        Ok(c)
    }

    pub async fn insert_order(
        &mut self,
        customer_id: i64,
        d: &OrderData,
    ) -> Result<Order, StoreError> {
        let o = crate::records::insert_order_in(&mut self.tx, customer_id, d).await?;
        self.note(Entity::Order, o.id, customer_id, None, o.version)
            .await?;
        Ok(o)
    }

    pub async fn update_order(
        &mut self,
        before: &Order,
        d: &OrderData,
    ) -> Result<Order, StoreError> {
        crate::db::check_version(&mut self.tx, "orders", before.id, before.version).await?;
        let o = crate::records::update_order_in(&mut self.tx, before.id, d).await?;
        self.note(
            Entity::Order,
            o.id,
            o.customer_id,
            Some(image(before)?),
            o.version,
        )
        .await?;
        Ok(o)
    }

    pub async fn insert_interaction(
        &mut self,
        customer_id: i64,
        d: &InteractionData,
        user_id: Option<i64>,
    ) -> Result<Interaction, StoreError> {
        let i =
            crate::records::insert_interaction_in(&mut self.tx, customer_id, d, user_id).await?;
        self.note(Entity::Interaction, i.id, customer_id, None, i.version)
            .await?;
        Ok(i)
    }

    /// Records the changes written so far in `import_changes` once at
    /// least `at_least` are waiting, many rows per statement.
    async fn record_changes(&mut self, at_least: usize) -> Result<(), StoreError> {
        if self.changes.is_empty() || self.changes.len() < at_least {
            return Ok(());
        }
        // `?` on SQLite (see classes.rs on `$N` there).
        const PER_ROW: usize = 8;
        let backend = crate::db::Exec::backend(&self.tx);
        for part in std::mem::take(&mut self.changes).chunks(CHANGES_PER_STATEMENT) {
            let mut a: Vec<Arg> = Vec::with_capacity(part.len() * PER_ROW);
            for (entity, record_id, customer_id, before, version) in part {
                let action = if before.is_some() { "update" } else { "insert" };
                a.extend(args![
                    self.id,
                    self.recorded as i64,
                    entity.name(),
                    *record_id,
                    *customer_id,
                    action,
                    Arg::Json(before.clone()),
                    *version
                ]);
                self.recorded += 1;
            }
            let sql = format!(
                "INSERT INTO import_changes (import_id, seq, entity, record_id, customer_id, action, before, version_after) VALUES {}",
                crate::db::value_groups(backend, part.len(), PER_ROW)
            );
            self.tx.execute(&sql, a).await?;
        }
        Ok(())
    }

    /// Refreshes the rollups and fact digests of every customer written,
    /// records them in the change feed, records the import with its
    /// changes and commits. Returns the import's id and the customers it
    /// changed.
    pub async fn finish(mut self, outcome: &ImportOutcome) -> Result<(i64, Touched), StoreError> {
        for &customer_id in &self.changed.rollups {
            Store::refresh_rollups_unrecorded(&mut self.tx, customer_id, self.today).await?;
        }
        let touched = self.changed.touched();
        feed::record(&mut self.tx, FeedKind::Facts, &touched.customers).await?;
        let id = self.id;
        update_record(&mut self.tx, id, outcome).await?;
        self.tx
            .execute("DELETE FROM import_files WHERE import_id = $1", args![id])
            .await?;
        self.record_changes(0).await?;
        self.tx.commit().await?;
        Ok((id, touched))
    }
}

/// Reads of the import planner, on the import's transaction.
pub struct ImportReader<'a> {
    tx: &'a mut Tx,
    cipher: &'a FieldCipher,
}

/// Reads of the import planner without a transaction (a dry run).
pub struct DryReader {
    db: crate::Db,
    cipher: std::sync::Arc<FieldCipher>,
}

impl Store {
    pub fn import_reader(&self) -> DryReader {
        DryReader {
            db: self.db.clone(),
            cipher: self.cipher.clone(),
        }
    }
}

/// What the import planner reads: existing records by their natural keys.
#[allow(async_fn_in_trait)]
pub trait Lookup {
    /// Customers by `code` or `uscc` (`column`).
    async fn customers_where_in(
        &mut self,
        column: &'static str,
        values: &[String],
    ) -> Result<Vec<Customer>, StoreError>;
    /// Customers whose name sounds like one of `sounds` (`name_sound`),
    /// at most `COMPARED_PER_SOUND` of each (the oldest).
    async fn customers_by_sound(
        &mut self,
        sounds: &[String],
    ) -> Result<Vec<SoundMatch>, StoreError>;
    /// The close-name details of the customers `ids`.
    async fn sound_matches_in(&mut self, ids: &[i64]) -> Result<Vec<SoundMatch>, StoreError>;
    /// Customers each of `fulls` (normalized names) may abbreviate or be
    /// abbreviated by, looked up in the database name by name.
    async fn abbreviation_candidates(
        &mut self,
        fulls: &[String],
    ) -> Result<Vec<Vec<SoundMatch>>, StoreError>;
    /// Every stored customer's normalized name (`name_key`).
    async fn name_keys(&mut self) -> Result<Vec<(i64, String)>, StoreError>;
    /// Customers with a contact whose mobile or landline is one of `phones`, with that phone.
    async fn customers_by_phone(
        &mut self,
        phones: &[String],
    ) -> Result<Vec<(String, Customer)>, StoreError>;
    async fn contacts_of(&mut self, customer_ids: &[i64]) -> Result<Vec<Contact>, StoreError>;
    async fn orders_of(&mut self, customer_ids: &[i64]) -> Result<Vec<Order>, StoreError>;
    async fn interactions_of(
        &mut self,
        customer_ids: &[i64],
    ) -> Result<Vec<Interaction>, StoreError>;
}

macro_rules! lookup_on {
    ($ty:ty, $exec:ident) => {
        impl Lookup for $ty {
            async fn customers_where_in(
                &mut self,
                column: &'static str,
                values: &[String],
            ) -> Result<Vec<Customer>, StoreError> {
                crate::customers::customers_where_in(lookup_on!(@exec self, $exec), &self.cipher, column, values).await
            }
            async fn contacts_of(&mut self, ids: &[i64]) -> Result<Vec<Contact>, StoreError> {
                crate::records::contacts_of(lookup_on!(@exec self, $exec), &self.cipher, ids).await
            }
            async fn customers_by_sound(&mut self, sounds: &[String]) -> Result<Vec<SoundMatch>, StoreError> {
                crate::customers::customers_by_sound(lookup_on!(@exec self, $exec), sounds).await
            }
            async fn sound_matches_in(&mut self, ids: &[i64]) -> Result<Vec<SoundMatch>, StoreError> {
                crate::customers::sound_matches_in(lookup_on!(@exec self, $exec), ids).await
            }
            async fn abbreviation_candidates(&mut self, fulls: &[String]) -> Result<Vec<Vec<SoundMatch>>, StoreError> {
                crate::customers::abbreviation_candidates(lookup_on!(@exec self, $exec), fulls).await
            }
            async fn name_keys(&mut self) -> Result<Vec<(i64, String)>, StoreError> {
                crate::customers::name_keys(lookup_on!(@exec self, $exec)).await
            }
            async fn customers_by_phone(&mut self, phones: &[String]) -> Result<Vec<(String, Customer)>, StoreError> {
                crate::customers::customers_by_phone(lookup_on!(@exec self, $exec), &self.cipher, phones).await
            }
            async fn orders_of(&mut self, ids: &[i64]) -> Result<Vec<Order>, StoreError> {
                crate::records::orders_of(lookup_on!(@exec self, $exec), ids).await
            }
            async fn interactions_of(&mut self, ids: &[i64]) -> Result<Vec<Interaction>, StoreError> {
                crate::records::interactions_of(lookup_on!(@exec self, $exec), ids).await
            }
        }
    };
    (@exec $self:ident, tx) => { &mut *$self.tx };
    (@exec $self:ident, db) => { &mut $self.db };
}

lookup_on!(ImportReader<'_>, tx);
lookup_on!(DryReader, db);

/// A mapping template: which column feeds which field, saved under a name.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SavedMapping {
    pub id: i64,
    pub kind: String,
    pub name: String,
    /// header → field key, or null for a column not imported.
    pub columns: BTreeMap<String, Option<String>>,
    pub created_by: Option<i64>,
    pub updated_at: DateTime<Utc>,
}

const MAPPING_COLUMNS: &str = "id, kind, name, columns, created_by, updated_at";

fn decode_mapping(r: &dyn RowGet) -> Result<SavedMapping, sqlx::Error> {
    let columns = match r.json("columns")? {
        Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map(str::to_string)))
            .collect(),
        _ => BTreeMap::new(),
    };
    Ok(SavedMapping {
        id: r.int("id")?,
        kind: r.text("kind")?,
        name: r.text("name")?,
        columns,
        created_by: r.opt_int("created_by")?,
        updated_at: r.time("updated_at")?,
    })
}

impl Store {
    /// Saves a template under `name` for `kind`, replacing one of that name.
    pub async fn save_mapping(
        &self,
        kind: &str,
        name: &str,
        columns: &BTreeMap<String, Option<String>>,
        by: Option<i64>,
    ) -> Result<SavedMapping, StoreError> {
        let now = Utc::now();
        let json: serde_json::Map<String, Value> = columns
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().map(Value::from).unwrap_or(Value::Null)))
            .collect();
        let sql = format!(
            "INSERT INTO import_mappings (kind, name, columns, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (kind, name) DO UPDATE SET columns = excluded.columns, updated_at = excluded.updated_at RETURNING {MAPPING_COLUMNS}"
        );
        self.db
            .clone()
            .fetch_one(
                &sql,
                args![
                    kind.to_string(),
                    name.to_string(),
                    Value::Object(json),
                    by,
                    now
                ],
                decode_mapping,
            )
            .await
    }

    /// The templates, by kind and name.
    pub async fn mappings(&self) -> Result<Vec<SavedMapping>, StoreError> {
        let sql = format!("SELECT {MAPPING_COLUMNS} FROM import_mappings ORDER BY kind, name");
        self.db
            .clone()
            .fetch_all(&sql, vec![], decode_mapping)
            .await
    }

    pub async fn mapping(&self, id: i64) -> Result<SavedMapping, StoreError> {
        let sql = format!("SELECT {MAPPING_COLUMNS} FROM import_mappings WHERE id = $1");
        self.db
            .clone()
            .fetch_one(&sql, args![id], decode_mapping)
            .await
    }

    pub async fn mapping_named(&self, kind: &str, name: &str) -> Result<SavedMapping, StoreError> {
        let sql =
            format!("SELECT {MAPPING_COLUMNS} FROM import_mappings WHERE kind = $1 AND name = $2");
        self.db
            .clone()
            .fetch_one(
                &sql,
                args![kind.to_string(), name.to_string()],
                decode_mapping,
            )
            .await
    }

    pub async fn delete_mapping(&self, id: i64) -> Result<(), StoreError> {
        let n = self
            .db
            .clone()
            .execute("DELETE FROM import_mappings WHERE id = $1", args![id])
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
