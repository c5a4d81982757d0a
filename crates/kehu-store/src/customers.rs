//! Customers: insert with generated codes, optimistic-concurrency updates,
//! scoped lists, and the rollups derived from orders and interactions.

use crate::cipher::{CustomSeal, FieldCipher};
use crate::db::{check_version, decode_n, Arg, Backend, Exec, RowGet};
use crate::error::StoreError;
use crate::feed::{self, FeedKind};
use crate::listing::{run_list, ListSpec, ScopeFilter};
use crate::model::{Customer, Page};
use crate::{args, json_list, Store};
use chrono::{Datelike, NaiveDate, Utc};
use kehu_core::classify::{Facts, Rollups};
use kehu_core::contact::ContactData;
use kehu_core::customer::CustomerData;
use kehu_core::dedupe::abbreviation;
use kehu_core::query::ListQuery;
use kehu_core::{Reason, ValidationErrors};
use serde_json::Value;

pub(crate) const COLUMNS: &str = "customers.id, customers.code, customers.name, customers.aliases, customers.uscc, customers.industry, customers.employees, \
customers.annual_revenue_fen, customers.province, customers.city, customers.sales_region, customers.address, customers.founded_on, \
customers.cooperation_start_on, customers.product_types, customers.declared_annual_purchase_fen, customers.status, customers.source_channel, \
customers.owner_id, customers.team, customers.notes, customers.custom_fields, customers.missing_fields, customers.purchase_12m_fen, customers.order_count, \
customers.last_order_on, customers.last_interaction_on, customers.complaints_365d, customers.p_alive, customers.expected_orders_90d, customers.clv_fen, customers.version, customers.created_at, customers.updated_at";

pub(crate) fn decode(r: &dyn RowGet) -> Result<Customer, sqlx::Error> {
    Ok(Customer {
        id: r.int("id")?,
        code: r.text("code")?,
        name: r.text("name")?,
        aliases: json_list(r.json("aliases")?),
        uscc: r.opt_text("uscc")?,
        industry: r.opt_text("industry")?,
        employees: r.opt_int("employees")?,
        annual_revenue_fen: r.opt_int("annual_revenue_fen")?,
        province: r.opt_text("province")?,
        city: r.opt_text("city")?,
        sales_region: r.opt_text("sales_region")?,
        address: r.opt_text("address")?,
        founded_on: r.opt_date("founded_on")?,
        cooperation_start_on: r.opt_date("cooperation_start_on")?,
        product_types: json_list(r.json("product_types")?),
        declared_annual_purchase_fen: r.opt_int("declared_annual_purchase_fen")?,
        status: r.text("status")?,
        source_channel: r.opt_text("source_channel")?,
        owner_id: r.opt_int("owner_id")?,
        team: r.opt_text("team")?,
        notes: r.opt_text("notes")?,
        custom_fields: match r.json("custom_fields")? {
            Value::Object(m) => m,
            _ => Default::default(),
        },
        missing_fields: json_list(r.json("missing_fields")?),
        purchase_12m_fen: r.int("purchase_12m_fen")?,
        order_count: r.int("order_count")?,
        last_order_on: r.opt_date("last_order_on")?,
        last_interaction_on: r.opt_date("last_interaction_on")?,
        complaints_365d: r.int("complaints_365d")?,
        predicted: kehu_core::predict::Predicted {
            p_alive: r.opt_int("p_alive")?,
            expected_orders_90d: r.opt_int("expected_orders_90d")?,
            clv_fen: r.opt_int("clv_fen")?,
        },
        version: r.int("version")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

/// [`decode`] with the customer's personal custom fields opened.
/// One customer as `exec` (the pool, or an open transaction) sees it.
pub(crate) async fn customer_in(
    exec: &mut impl Exec,
    cipher: &FieldCipher,
    id: i64,
) -> Result<Customer, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM customers WHERE id = $1");
    exec.fetch_one(&sql, args![id], decoder(cipher)).await
}

pub(crate) fn decoder(cipher: &FieldCipher) -> impl crate::db::Decode<Customer> + Copy + '_ {
    move |r: &dyn RowGet| {
        crate::cipher::open_customer(cipher, decode(r)?)
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))
    }
}

/// Who owns a customer: the owner user and the team it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub owner_id: Option<i64>,
    pub team: Option<String>,
}

/// `custom_fields`: the customer's custom fields as stored (personal ones sealed).
fn data_args(d: &CustomerData, owner: &Owner, custom_fields: Value) -> Vec<Arg> {
    args![
        d.name.clone(),
        Value::from(d.aliases.clone()),
        d.uscc.clone(),
        d.industry.clone(),
        d.employees,
        d.annual_revenue.map(|f| f.get()),
        d.province.clone(),
        d.city.clone(),
        d.sales_region.clone(),
        d.address.clone(),
        d.founded_on,
        d.cooperation_start_on,
        Value::from(d.product_types.clone()),
        d.declared_annual_purchase.map(|f| f.get()),
        d.status.key(),
        d.source_channel.clone(),
        owner.owner_id,
        owner.team.clone(),
        d.notes.clone(),
        custom_fields,
        Value::from(d.missing_fields.clone()),
        name_key(&d.name),
    ]
}

/// What `customers.name_key` holds for a name (None when nothing is left,
/// e.g. a name of only a legal form).
pub(crate) fn name_key(name: &str) -> Option<String> {
    Some(kehu_core::dedupe::company::full_name(name)).filter(|k| !k.is_empty())
}

/// What `customers.name_sound` holds for a name: the toneless pinyin of its
/// core (None when nothing is left).
pub(crate) fn name_sound(name: &str) -> Option<String> {
    Some(kehu_core::dedupe::company::name_sound(name)).filter(|k| !k.is_empty())
}

/// Unique violations become field errors, whatever the backend calls them.
pub(crate) fn map_unique(e: StoreError, fields: &[&str]) -> StoreError {
    if let Some(what) = e.unique_violation() {
        if let Some(f) = fields.iter().find(|f| what.contains(*f)) {
            return StoreError::Invalid(ValidationErrors::single(*f, Reason::Duplicate));
        }
    }
    e
}

/// Inserts a customer inside an open transaction (code generated when
/// absent); the caller records the change feed.
pub(crate) async fn insert_customer_in(
    tx: &mut crate::db::Tx,
    seal: &CustomSeal<'_>,
    d: &CustomerData,
    owner: &Owner,
    actor: Option<i64>,
) -> Result<Customer, StoreError> {
    let now = Utc::now();
    let code = match &d.code {
        Some(c) => c.clone(),
        None => Store::next_code(tx, now.date_naive()).await?,
    };
    let mut a = vec![Arg::from(code)];
    a.extend(data_args(d, owner, seal.seal(&d.custom_fields)));
    a.extend(args![now, now, actor, actor, name_sound(&d.name)]);
    let sql = format!(
        "INSERT INTO customers (code, name, aliases, uscc, industry, employees, annual_revenue_fen, province, city, sales_region, address, \
         founded_on, cooperation_start_on, product_types, declared_annual_purchase_fen, status, source_channel, owner_id, team, notes, \
         custom_fields, missing_fields, name_key, created_at, updated_at, created_by, updated_by, name_sound) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28) RETURNING {COLUMNS}"
    );
    tx.fetch_one(&sql, a, decoder(seal.cipher))
        .await
        .map_err(|e| map_unique(e, &["uscc", "code"]))
}

/// Customers per multi-row statement of an import: 30 parameters a row,
/// well under SQLite's 32,766 and PostgreSQL's 65,535.
const CUSTOMERS_PER_STATEMENT: usize = 500;

/// The columns [`data_args`] fills, in its order.
const DATA_COLUMNS: [&str; 22] = [
    "name",
    "aliases",
    "uscc",
    "industry",
    "employees",
    "annual_revenue_fen",
    "province",
    "city",
    "sales_region",
    "address",
    "founded_on",
    "cooperation_start_on",
    "product_types",
    "declared_annual_purchase_fen",
    "status",
    "source_channel",
    "owner_id",
    "team",
    "notes",
    "custom_fields",
    "missing_fields",
    "name_key",
];

/// Inserts many customers inside an open transaction, a few hundred per
/// statement, and returns each one's `(id, version)` in the order given.
/// Rows with a code go first, so that the codes generated for the rest
/// (consecutive, after the highest stored) never take one of theirs. The
/// caller records the change feed.
pub(crate) async fn insert_customers_in(
    tx: &mut crate::db::Tx,
    seal: &CustomSeal<'_>,
    rows: &[(&CustomerData, &Owner)],
    actor: Option<i64>,
) -> Result<Vec<(i64, i64)>, StoreError> {
    let now = Utc::now();
    let mut codes: Vec<Option<String>> = rows.iter().map(|(d, _)| d.code.clone()).collect();
    let mut by_code: std::collections::HashMap<String, (i64, i64)> =
        std::collections::HashMap::with_capacity(rows.len());
    for given in [true, false] {
        let picked: Vec<usize> = (0..rows.len())
            .filter(|&i| rows[i].0.code.is_some() == given)
            .collect();
        if picked.is_empty() {
            continue;
        }
        if !given {
            let fresh = Store::next_codes(tx, now.date_naive(), picked.len()).await?;
            for (&i, code) in picked.iter().zip(fresh) {
                codes[i] = Some(code);
            }
        }
        for part in picked.chunks(CUSTOMERS_PER_STATEMENT) {
            const PER_ROW: usize = 28;
            let mut a: Vec<Arg> = Vec::with_capacity(part.len() * PER_ROW);
            for &i in part {
                let (d, owner) = rows[i];
                a.push(Arg::from(codes[i].clone()));
                a.extend(data_args(d, owner, seal.seal(&d.custom_fields)));
                a.extend(args![now, now, actor, actor, name_sound(&d.name)]);
            }
            let sql = format!(
                "INSERT INTO customers (code, {}, created_at, updated_at, created_by, updated_by, name_sound) VALUES {} \
                 RETURNING id, code, version",
                DATA_COLUMNS.join(", "),
                crate::db::value_groups(tx.backend(), part.len(), PER_ROW)
            );
            let written = tx
                .fetch_all(&sql, a, |r: &dyn RowGet| {
                    Ok((r.text("code")?, (r.int("id")?, r.int("version")?)))
                })
                .await
                .map_err(|e| map_unique(e, &["uscc", "code"]))?;
            by_code.extend(written);
        }
    }
    codes
        .iter()
        .map(|code| {
            code.as_ref()
                .and_then(|c| by_code.get(c).copied())
                .ok_or_else(|| {
                    StoreError::Config("a customer inserted by an import was not returned".into())
                })
        })
        .collect()
}

/// What [`data_args`] gives for a stored customer, column by column (custom
/// fields left out: they are stored sealed), to see which columns an
/// update changes.
fn stored_args(c: &Customer) -> Vec<Arg> {
    args![
        c.name.clone(),
        Value::from(c.aliases.clone()),
        c.uscc.clone(),
        c.industry.clone(),
        c.employees,
        c.annual_revenue_fen,
        c.province.clone(),
        c.city.clone(),
        c.sales_region.clone(),
        c.address.clone(),
        c.founded_on,
        c.cooperation_start_on,
        Value::from(c.product_types.clone()),
        c.declared_annual_purchase_fen,
        c.status.clone(),
        c.source_channel.clone(),
        c.owner_id,
        c.team.clone(),
        c.notes.clone(),
        Value::Null,
        Value::from(c.missing_fields.clone()),
        name_key(&c.name)
    ]
}

/// Index of `custom_fields` in [`DATA_COLUMNS`]: always written (sealed
/// values cannot be compared).
const CUSTOM_FIELDS: usize = 19;

/// The columns of [`DATA_COLUMNS`] an update of `before` to `new` (its
/// [`data_args`]) changes, as bits; bit 22 is the code.
fn changed_columns(before: &Customer, new: &[Arg], code: &str) -> u32 {
    let mut mask = 1 << CUSTOM_FIELDS;
    for (i, (was, now)) in stored_args(before).iter().zip(new).enumerate() {
        if was != now {
            mask |= 1 << i;
        }
    }
    if !code.is_empty() && code != before.code {
        mask |= 1 << DATA_COLUMNS.len();
    }
    mask
}

/// The fields of a [`Customer`] that an update with `mask` (from
/// [`changed_columns`]) wrote: what its before-image must hold to undo it.
pub(crate) fn changed_fields(mask: u32) -> impl Iterator<Item = &'static str> {
    let code = (mask & (1 << DATA_COLUMNS.len()) != 0).then_some("code");
    DATA_COLUMNS
        .iter()
        .enumerate()
        .filter(move |(k, c)| mask & (1 << k) != 0 && **c != "name_key")
        .map(|(_, c)| *c)
        .chain(code)
}

/// Replaces many customers' editable fields inside an open transaction, a
/// few hundred per statement: `rows` are `(the customer as read in this
/// transaction, its new data, owner)`, each customer at most once. Only
/// the columns that change are written, rows changing the same columns
/// together, so that an index is rewritten only when its column changes.
/// Returns the new versions with the columns written (see
/// [`changed_fields`]) in the order given; a customer changed since
/// it was read fails it all with a version conflict. The caller records
/// the change feed.
pub(crate) async fn update_customers_in(
    tx: &mut crate::db::Tx,
    seal: &CustomSeal<'_>,
    rows: &[(&Customer, &CustomerData, &Owner)],
    actor: Option<i64>,
) -> Result<Vec<(i64, u32)>, StoreError> {
    let now = Utc::now();
    let mut groups: std::collections::BTreeMap<u32, Vec<(usize, Vec<Arg>)>> =
        std::collections::BTreeMap::new();
    for (i, (before, d, owner)) in rows.iter().enumerate() {
        let new = data_args(d, owner, seal.seal(&d.custom_fields));
        let code = d.code.clone().unwrap_or_default();
        let mask = changed_columns(before, &new, &code);
        let mut a = args![before.id, before.version];
        if mask & (1 << DATA_COLUMNS.len()) != 0 {
            a.push(Arg::from(code));
        }
        if mask & 1 != 0 {
            a.push(Arg::from(name_sound(&d.name)));
        }
        a.extend(
            new.into_iter()
                .enumerate()
                .filter(|(k, _)| mask & (1 << k) != 0)
                .map(|(_, arg)| arg),
        );
        groups.entry(mask).or_default().push((i, a));
    }
    let mut versions: Vec<(i64, u32)> = vec![(0, 0); rows.len()];
    for (mask, group) in groups {
        // The new values as a table `v` joined to the customers by id; its
        // columns are named `v_…` so that no name is ambiguous.
        let mut columns: Vec<&str> = Vec::new();
        if mask & (1 << DATA_COLUMNS.len()) != 0 {
            columns.push("code");
        }
        if mask & 1 != 0 {
            columns.push("name_sound");
        }
        columns.extend(
            DATA_COLUMNS
                .iter()
                .enumerate()
                .filter(|(k, _)| mask & (1 << k) != 0)
                .map(|(_, c)| *c),
        );
        let per_row = 2 + columns.len();
        let set: Vec<String> = columns.iter().map(|c| format!("{c} = v.v_{c}")).collect();
        let names: Vec<String> = columns.iter().map(|c| format!("v_{c}")).collect();
        for part in group.chunks(CUSTOMERS_PER_STATEMENT) {
            let mut a: Vec<Arg> = Vec::with_capacity(part.len() * per_row + 2);
            for (_, row) in part {
                a.extend(row.iter().cloned());
            }
            let (at, by) = match tx.backend() {
                Backend::Sqlite => ("?".to_string(), "?".to_string()),
                Backend::Postgres => (format!("${}", a.len() + 1), format!("${}", a.len() + 2)),
            };
            a.extend(args![now, actor]);
            let sql = format!(
                "WITH v (v_id, v_version, {}) AS (VALUES {}) \
                 UPDATE customers SET {}, updated_at = {at}, updated_by = {by}, version = version + 1 \
                 FROM v WHERE customers.id = v.v_id AND customers.version = v.v_version RETURNING customers.id, customers.version",
                names.join(", "),
                crate::db::value_groups(tx.backend(), part.len(), per_row),
                set.join(", "),
            );
            let written: std::collections::HashMap<i64, i64> = tx
                .fetch_all(&sql, a, |r: &dyn RowGet| {
                    Ok((r.int("id")?, r.int("version")?))
                })
                .await
                .map_err(|e| map_unique(e, &["uscc", "code"]))?
                .into_iter()
                .collect();
            for (i, _) in part {
                let (before, ..) = rows[*i];
                match written.get(&before.id) {
                    Some(&version) => versions[*i] = (version, mask),
                    None => {
                        check_version(tx, "customers", before.id, before.version).await?;
                        return Err(StoreError::Config(
                            "an import's customer update was not written".into(),
                        ));
                    }
                }
            }
        }
    }
    Ok(versions)
}

/// Replaces a customer's editable fields inside an open transaction (the
/// caller checked its version); the caller records the change feed.
pub(crate) async fn update_customer_in(
    tx: &mut crate::db::Tx,
    seal: &CustomSeal<'_>,
    id: i64,
    expected_version: i64,
    d: &CustomerData,
    owner: &Owner,
    actor: Option<i64>,
) -> Result<Customer, StoreError> {
    let code = d.code.clone().unwrap_or_default();
    let mut a = data_args(d, owner, seal.seal(&d.custom_fields));
    a.extend(args![Utc::now(), actor, id, expected_version]);
    a.push(Arg::from(code));
    a.push(Arg::from(name_sound(&d.name)));
    let sql = format!(
        "UPDATE customers SET name=$1, aliases=$2, uscc=$3, industry=$4, employees=$5, annual_revenue_fen=$6, province=$7, city=$8, \
         sales_region=$9, address=$10, founded_on=$11, cooperation_start_on=$12, product_types=$13, declared_annual_purchase_fen=$14, \
         status=$15, source_channel=$16, owner_id=$17, team=$18, notes=$19, custom_fields=$20, missing_fields=$21, name_key=$22, updated_at=$23, \
         updated_by=$24, version = version + 1, code = CASE WHEN $27 = '' THEN code ELSE $27 END, name_sound=$28 WHERE id=$25 AND version=$26 RETURNING {COLUMNS}"
    );
    tx.fetch_one(&sql, a, decoder(seal.cipher))
        .await
        .map_err(|e| map_unique(e, &["uscc", "code"]))
}

/// Customers with a contact whose mobile or landline is one of `phones`
/// (as contacts store them), each with the phone that matched.
pub(crate) async fn customers_by_phone(
    exec: &mut impl Exec,
    cipher: &FieldCipher,
    phones: &[String],
) -> Result<Vec<(String, Customer)>, StoreError> {
    let mut out = Vec::new();
    // Clear values: landlines, and mobiles written before encryption.
    for column in ["mobile", "landline"] {
        let sql = format!(
            "SELECT contacts.{column} AS phone, {COLUMNS} FROM contacts JOIN customers ON customers.id = contacts.customer_id \
             WHERE contacts.{column} IN ({{}}) ORDER BY customers.id"
        );
        out.extend(
            crate::db::fetch_in(exec, &sql, phones, |r: &dyn RowGet| {
                Ok((r.text("phone")?, decoder(cipher)(r)?))
            })
            .await?,
        );
    }
    // Sealed mobiles, by their blind index under every key.
    let mut by_index = std::collections::HashMap::new();
    for phone in phones {
        for idx in cipher.indexes(crate::cipher::MOBILE, phone) {
            by_index.insert(idx, phone.clone());
        }
    }
    if !by_index.is_empty() {
        let indexes: Vec<String> = by_index.keys().cloned().collect();
        let sql = format!(
            "SELECT contacts.mobile_idx AS idx, {COLUMNS} FROM contacts JOIN customers ON customers.id = contacts.customer_id \
             WHERE contacts.mobile_idx IN ({{}}) ORDER BY customers.id"
        );
        for (idx, c) in crate::db::fetch_in(exec, &sql, &indexes, |r: &dyn RowGet| {
            Ok((r.text("idx")?, decoder(cipher)(r)?))
        })
        .await?
        {
            if let Some(phone) = by_index.get(&idx) {
                out.push((phone.clone(), c));
            }
        }
    }
    Ok(out)
}

/// The customers whose `column` (`code` or `uscc`, trusted constants) is one of `values`.
pub(crate) async fn customers_where_in(
    exec: &mut impl Exec,
    cipher: &FieldCipher,
    column: &str,
    values: &[String],
) -> Result<Vec<Customer>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM customers WHERE {column} IN ({{}})");
    crate::db::fetch_in(exec, &sql, values, decoder(cipher)).await
}

/// A stored customer found by how its name sounds: what a close-name
/// check compares and names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoundMatch {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub name_sound: String,
    pub owner_id: Option<i64>,
    pub team: Option<String>,
}

impl SoundMatch {
    /// The name as the matcher compares it (the stored sound saves the pinyin).
    pub fn company_name(&self) -> kehu_core::dedupe::company::CompanyName {
        kehu_core::dedupe::company::with_sound(&self.name, self.name_sound.clone())
    }
}

/// Stored customers whose `name_sound` is one of `sounds`: at most
/// `COMPARED_PER_SOUND` of each, the oldest, counted per sound inside the
/// database over the covering index (a common sound has hundreds of
/// customers), with only the columns a close-name check needs.
pub(crate) async fn customers_by_sound(
    exec: &mut impl Exec,
    sounds: &[String],
) -> Result<Vec<SoundMatch>, StoreError> {
    let per_sound = kehu_core::dedupe::company::COMPARED_PER_SOUND;
    let sql = format!(
        "SELECT {SOUND_MATCH_COLUMNS} FROM customers WHERE id IN (\
         SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY name_sound ORDER BY id) AS n \
         FROM customers WHERE name_sound IN ({{}})) kept WHERE n <= {per_sound}) ORDER BY id"
    );
    crate::db::fetch_in(exec, &sql, sounds, sound_match).await
}

/// What a close-name check reads of a stored customer (`SoundMatch`).
const SOUND_MATCH_COLUMNS: &str = "id, code, name, name_sound, owner_id, team";

/// Stored customers that each of `fulls` (normalized names) may abbreviate
/// or be abbreviated by, for a close-name check to decide: a long name's
/// possible abbreviations by their sound (one query for all), a short
/// core's long names by pattern (one query each). An import's few new
/// names and the name being entered are looked up this way.
pub(crate) async fn abbreviation_candidates(
    exec: &mut impl Exec,
    fulls: &[String],
) -> Result<Vec<Vec<SoundMatch>>, StoreError> {
    let sounds_of: Vec<Vec<String>> = fulls
        .iter()
        .map(|full| abbreviation::abbreviation_sounds(full))
        .collect();
    let mut sounds: Vec<String> = sounds_of.iter().flatten().cloned().collect();
    sounds.sort_unstable();
    sounds.dedup();
    let by_sound = match sounds.is_empty() {
        true => Vec::new(),
        false => customers_by_sound(exec, &sounds).await?,
    };
    let mut out = Vec::with_capacity(fulls.len());
    for (full, sounds) in fulls.iter().zip(&sounds_of) {
        let mut matches: Vec<SoundMatch> = by_sound
            .iter()
            .filter(|m| sounds.contains(&m.name_sound))
            .cloned()
            .collect();
        let core = kehu_core::dedupe::company::core_of_full(full);
        if let Some(p) = abbreviation::expansion_pattern(&core) {
            matches.extend(customers_expanding(exec, &p, &core).await?);
        }
        out.push(matches);
    }
    Ok(out)
}

/// Stored customers whose normalized name `pattern`'s core may abbreviate
/// (中石化 → 中国石油化工): at most `COMPARED_PER_SOUND`, the oldest, over
/// the range of names starting with its first character. Names holding the
/// core whole (中石化销售) are another company and left out here, so that
/// they do not crowd out the ones it abbreviates.
async fn customers_expanding(
    exec: &mut impl Exec,
    pattern: &kehu_core::dedupe::abbreviation::ExpansionPattern,
    core: &str,
) -> Result<Vec<SoundMatch>, StoreError> {
    // PostgreSQL compares bytes only under the "C" collation (migration 34's index).
    let bytes = match exec.backend() {
        Backend::Sqlite => "",
        Backend::Postgres => " COLLATE \"C\"",
    };
    let sql = format!(
        "SELECT {SOUND_MATCH_COLUMNS} FROM customers \
         WHERE name_key{bytes} >= $1 AND name_key{bytes} < $2 AND name_key LIKE $3 \
         AND name_key NOT LIKE $4 ORDER BY id LIMIT $5"
    );
    let limit = kehu_core::dedupe::company::COMPARED_PER_SOUND as i64;
    let a = args![
        pattern.from.clone(),
        pattern.until.clone(),
        pattern.like.clone(),
        format!("%{core}%"),
        limit
    ];
    exec.fetch_all(&sql, a, sound_match).await
}

/// The close-name details of the customers `ids`, in id order.
pub(crate) async fn sound_matches_in(
    exec: &mut impl Exec,
    ids: &[i64],
) -> Result<Vec<SoundMatch>, StoreError> {
    let sql = format!("SELECT {SOUND_MATCH_COLUMNS} FROM customers WHERE id IN ({{}}) ORDER BY id");
    crate::db::fetch_in(exec, &sql, ids, sound_match).await
}

/// Every stored customer's normalized name (`name_key`), in id order: what
/// an import keeps in memory to find the names its new rows abbreviate or
/// are abbreviated by.
pub(crate) async fn name_keys(exec: &mut impl Exec) -> Result<Vec<(i64, String)>, StoreError> {
    let sql = "SELECT id, name_key FROM customers WHERE name_key IS NOT NULL ORDER BY id";
    exec.fetch_all(sql, args![], |r: &dyn RowGet| {
        Ok((r.int("id")?, r.text("name_key")?))
    })
    .await
}

fn sound_match(r: &dyn RowGet) -> Result<SoundMatch, sqlx::Error> {
    Ok(SoundMatch {
        id: r.int("id")?,
        code: r.text("code")?,
        name: r.text("name")?,
        name_sound: r.opt_text("name_sound")?.unwrap_or_default(),
        owner_id: r.opt_int("owner_id")?,
        team: r.opt_text("team")?,
    })
}

impl Store {
    /// The next free code `C{year}{NNN}` (at least 3 digits, more when needed).
    async fn next_code(exec: &mut impl Exec, today: NaiveDate) -> Result<String, StoreError> {
        let mut codes = Self::next_codes(exec, today, 1).await?;
        Ok(codes.remove(0))
    }

    /// The `n` codes after the highest stored one of `today`'s year.
    async fn next_codes(
        exec: &mut impl Exec,
        today: NaiveDate,
        n: usize,
    ) -> Result<Vec<String>, StoreError> {
        let prefix = format!("C{}", today.year());
        let len_fn = match exec.backend() {
            Backend::Sqlite => "LENGTH",
            Backend::Postgres => "CHAR_LENGTH",
        };
        let sql = format!(
            "SELECT code AS c FROM customers WHERE code LIKE $1 AND {len_fn}(code) = (SELECT MAX({len_fn}(code)) FROM customers WHERE code LIKE $1) ORDER BY code DESC LIMIT 1"
        );
        let last = exec
            .fetch_optional(&sql, args![format!("{prefix}%")], |r: &dyn RowGet| {
                r.text("c")
            })
            .await?;
        let next = last
            .and_then(|c| c[prefix.len()..].parse::<u64>().ok())
            .map_or(1, |n| n + 1);
        Ok((next..next + n as u64)
            .map(|k| format!("{prefix}{k:03}"))
            .collect())
    }

    /// Inserts a customer and, if given, its primary contact, in one transaction.
    pub async fn insert_customer(
        &self,
        d: &CustomerData,
        owner: &Owner,
        actor: Option<i64>,
        contact: Option<&ContactData>,
    ) -> Result<Customer, StoreError> {
        let personal = self.personal_keys().await?;
        let seal = crate::cipher::CustomSeal {
            cipher: &self.cipher,
            personal: &personal,
        };
        let mut tx = self.db.begin().await?;
        let c = insert_customer_in(&mut tx, &seal, d, owner, actor).await?;
        if let Some(contact) = contact {
            crate::records::insert_contact_in(&mut tx, &self.cipher, c.id, contact, false).await?;
        }
        feed::record(&mut tx, FeedKind::Facts, &[c.id]).await?;
        tx.commit().await?;
        Ok(c)
    }

    /// Customers that are likely the company being entered: the same
    /// normalized name (`name_key`), a contact with the same mobile, or a
    /// name that sounds the same (`name_sound`), abbreviates it or is
    /// abbreviated by it (`dedupe::abbreviation`), and compares close
    /// (`dedupe::company::close_names`). At most `limit`, oldest first.
    pub async fn likely_duplicates(
        &self,
        name: &str,
        mobile: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Customer>, StoreError> {
        let (matches, mut a) =
            crate::privacy::sealed_match(&self.cipher, "mobile", crate::cipher::MOBILE, mobile, 3);
        a.splice(0..0, args![name_key(name), limit]);
        let sql = format!(
            "SELECT {COLUMNS} FROM customers WHERE name_key = $1 \
             OR id IN (SELECT customer_id FROM contacts WHERE {matches}) ORDER BY id LIMIT $2"
        );
        let mut found = self
            .db
            .clone()
            .fetch_all(&sql, a, decoder(&self.cipher))
            .await?;
        if let Some(sound) = name_sound(name) {
            let entered = kehu_core::dedupe::company::normalize(name);
            // The name's sound, and the names it abbreviates or is abbreviated by.
            let mut db = self.db.clone();
            let mut candidates = customers_by_sound(&mut db, &[sound]).await?;
            let fulls = std::slice::from_ref(&entered.full);
            candidates.extend(
                abbreviation_candidates(&mut db, fulls)
                    .await?
                    .into_iter()
                    .flatten(),
            );
            candidates.sort_by_key(|c| c.id);
            candidates.dedup_by_key(|c| c.id);
            let close: Vec<i64> = candidates
                .into_iter()
                .filter(|c| !found.iter().any(|f| f.id == c.id))
                .filter(|c| {
                    kehu_core::dedupe::company::close_names(&entered, &c.company_name()).is_some()
                })
                .map(|c| c.id)
                .collect();
            found.extend(self.customers_in(&close).await?);
            found.sort_by_key(|c| c.id);
            found.truncate(usize::try_from(limit).unwrap_or(0));
        }
        Ok(found)
    }

    pub async fn customer(&self, id: i64) -> Result<Customer, StoreError> {
        customer_in(&mut self.db.clone(), &self.cipher, id).await
    }

    /// The customers among `ids` that exist, in id order (a page of a segment).
    pub async fn customers_in(&self, ids: &[i64]) -> Result<Vec<Customer>, StoreError> {
        let mut out = Vec::with_capacity(ids.len());
        for part in ids.chunks(crate::db::IDS_PER_QUERY) {
            let sql = format!(
                "SELECT {COLUMNS} FROM customers WHERE id IN ({}) ORDER BY id",
                crate::db::id_marks(part.len())
            );
            let a: Vec<Arg> = part.iter().map(|&id| Arg::from(id)).collect();
            out.extend(
                self.db
                    .clone()
                    .fetch_all(&sql, a, decoder(&self.cipher))
                    .await?,
            );
        }
        Ok(out)
    }

    pub async fn customer_by_code(&self, code: &str) -> Result<Customer, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM customers WHERE code = $1");
        self.db
            .clone()
            .fetch_one(&sql, args![code.to_string()], decoder(&self.cipher))
            .await
    }

    /// Replaces the editable fields if the record is still at `expected_version`.
    pub async fn update_customer(
        &self,
        id: i64,
        expected_version: i64,
        d: &CustomerData,
        owner: &Owner,
        actor: Option<i64>,
    ) -> Result<Customer, StoreError> {
        let personal = self.personal_keys().await?;
        let seal = crate::cipher::CustomSeal {
            cipher: &self.cipher,
            personal: &personal,
        };
        let mut tx = self.db.begin().await?;
        check_version(&mut tx, "customers", id, expected_version).await?;
        let c = update_customer_in(&mut tx, &seal, id, expected_version, d, owner, actor).await?;
        feed::record(&mut tx, FeedKind::Facts, &[id]).await?;
        tx.commit().await?;
        Ok(c)
    }

    pub async fn delete_customer(&self, id: i64, expected_version: i64) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        check_version(&mut tx, "customers", id, expected_version).await?;
        tx.execute("DELETE FROM customers WHERE id = $1", args![id])
            .await?;
        feed::record(&mut tx, FeedKind::Facts, &[id]).await?;
        tx.commit().await
    }

    pub async fn list_customers(
        &self,
        q: &ListQuery,
        scope: &ScopeFilter,
        with_total: bool,
    ) -> Result<Page<Customer>, StoreError> {
        self.list_customers_searching(q, scope, with_total, &["name", "code", "aliases", "uscc"])
            .await
    }

    /// As [`Store::list_customers`], the free-text search looking only in
    /// `search` (columns of `customers`: a reader kept from some fields
    /// must not find customers by them).
    pub async fn list_customers_searching(
        &self,
        q: &ListQuery,
        scope: &ScopeFilter,
        with_total: bool,
        search: &'static [&'static str],
    ) -> Result<Page<Customer>, StoreError> {
        let spec = ListSpec {
            table: "customers",
            columns: COLUMNS,
            search,
            scope,
            scope_via_customer: false,
            only: None,
        };
        run_list(
            &mut self.db.clone(),
            &spec,
            q,
            with_total,
            decoder(&self.cipher),
        )
        .await
    }

    /// Recomputes the derived columns and the fact digest of one customer as
    /// of `today`, and records it in the change feed.
    pub(crate) async fn refresh_customer_rollups(
        exec: &mut impl Exec,
        customer_id: i64,
        today: NaiveDate,
    ) -> Result<(), StoreError> {
        Self::refresh_rollups_unrecorded(exec, customer_id, today).await?;
        feed::record(exec, FeedKind::Facts, &[customer_id]).await?;
        Ok(())
    }

    /// As [`Self::refresh_customer_rollups`], for a caller that records
    /// many customers in the change feed at once (an import, its undo).
    pub(crate) async fn refresh_rollups_unrecorded(
        exec: &mut impl Exec,
        customer_id: i64,
        today: NaiveDate,
    ) -> Result<(), StoreError> {
        // The records are read once, for the digest and the rollups, and
        // both written in one statement (the order request's path).
        let (records, digest) = crate::facts::records_and_digest(exec, customer_id).await?;
        exec.execute(
            ROLLUP_SET,
            rollup_args(&records, today, customer_id, digest),
        )
        .await?;
        Ok(())
    }

    /// [`refresh_rollups_unrecorded`](Self::refresh_rollups_unrecorded)
    /// that also returns the customer's facts as written (its columns from
    /// the `UPDATE … RETURNING`, its records as read for the digest): what
    /// its re-evaluation in the same transaction reads, without a read of
    /// its own. The caller records it in the change feed ([`crate::Opened`]).
    pub(crate) async fn rollups_returning_facts(
        exec: &mut impl Exec,
        customer_id: i64,
        today: NaiveDate,
    ) -> Result<kehu_core::classify::Facts, StoreError> {
        let (records, digest) = crate::facts::records_and_digest(exec, customer_id).await?;
        let sql = format!("{ROLLUP_SET} RETURNING {}", crate::facts::FACT_COLUMNS);
        let written = exec
            .fetch_optional(
                &sql,
                rollup_args(&records, today, customer_id, digest),
                crate::facts::decode_facts,
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        Ok(kehu_core::classify::Facts {
            orders: records.orders,
            interactions: records.interactions,
            ..written
        })
    }

    /// Recomputes the derived columns of every customer (the 12-month window
    /// slides every day, so this runs daily). Batches of [`REFRESH_BATCH`]
    /// ids, each its own short transaction: on SQLite a single long update
    /// would hold the one write lock for minutes and fail users' writes.
    /// Every batch is correct on its own, so an interrupted refresh is only
    /// incomplete, and the next run finishes it.
    pub async fn refresh_all_rollups(&self, today: NaiveDate) -> Result<u64, StoreError> {
        let mut db = self.db.clone();
        let max_id = max_customer_id(&mut db).await?;
        let sql = format!("{ROLLUP_UPDATE} WHERE id > $3 AND id <= $4");
        let (purchase_from, complaints_from) = Rollups::window_starts(today);
        let (mut updated, mut from) = (0, 0);
        while from < max_id {
            let to = from + REFRESH_BATCH;
            updated += db
                .execute(&sql, args![purchase_from, complaints_from, from, to])
                .await?;
            from = to;
        }
        // Purchase totals and complaint counts moved for anyone: readers of
        // the change feed (the segment index) read everything again.
        let mut tx = self.db.begin().await?;
        crate::feed::record_everyone(&mut tx, FeedKind::Facts).await?;
        tx.commit().await?;
        mark_job_done(&mut db, ROLLUP_JOB, today).await?;
        Ok(updated)
    }

    /// The highest customer id (0 with no customers).
    pub async fn max_customer_id(&self) -> Result<i64, StoreError> {
        max_customer_id(&mut self.db.clone()).await
    }

    pub async fn customer_count(&self) -> Result<u64, StoreError> {
        let n = self
            .db
            .clone()
            .fetch_one("SELECT COUNT(*) AS n FROM customers", vec![], decode_n)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The rollups are current for `today` (refreshed or bulk-loaded for it).
    pub async fn rollups_current(&self, today: NaiveDate) -> Result<bool, StoreError> {
        Ok(self.job_done_for(ROLLUP_JOB).await? == Some(today))
    }

    /// The last day `job` completed for.
    pub async fn job_done_for(&self, job: &str) -> Result<Option<NaiveDate>, StoreError> {
        let day = self
            .db
            .clone()
            .fetch_optional(
                "SELECT done_for FROM job_runs WHERE job = $1",
                args![job],
                |r: &dyn RowGet| r.opt_date("done_for"),
            )
            .await?;
        Ok(day.flatten())
    }
}

/// Every customer's `missing_fields` by the core's rule (migration 9).
pub(crate) async fn fill_missing_fields(tx: &mut crate::db::Tx) -> Result<(), StoreError> {
    let lacking = tx
        .fetch_all(
            "SELECT id, industry, cooperation_start_on, status FROM customers \
             WHERE industry IS NULL OR cooperation_start_on IS NULL",
            vec![],
            |r: &dyn RowGet| {
                let status = kehu_core::customer::CustomerStatus::parse(&r.text("status")?)
                    .unwrap_or_default();
                Ok((
                    r.int("id")?,
                    kehu_core::customer::follow_up_gaps(
                        r.opt_text("industry")?.is_some(),
                        r.opt_date("cooperation_start_on")?.is_some(),
                        status,
                    ),
                ))
            },
        )
        .await?;
    for (id, gaps) in lacking {
        if !gaps.is_empty() {
            tx.execute(
                "UPDATE customers SET missing_fields = $1 WHERE id = $2",
                args![Value::from(gaps), id],
            )
            .await?;
        }
    }
    Ok(())
}

/// Every customer's `column` (`name_key`, migration 10; `name_sound`,
/// migration 27) from its name, in batches of ids.
pub(crate) async fn fill_name_keys(
    tx: &mut crate::db::Tx,
    column: &str,
    key: fn(&str) -> Option<String>,
) -> Result<(), StoreError> {
    let update = format!("UPDATE customers SET {column} = $1 WHERE id = $2");
    let max_id = max_customer_id(tx).await?;
    let mut from = 0;
    while from < max_id {
        let to = from + REFRESH_BATCH;
        let names = tx
            .fetch_all(
                "SELECT id, name FROM customers WHERE id > $1 AND id <= $2",
                args![from, to],
                |r: &dyn RowGet| Ok((r.int("id")?, r.text("name")?)),
            )
            .await?;
        for (id, name) in names {
            tx.execute(&update, args![key(&name), id]).await?;
        }
        from = to;
    }
    Ok(())
}

/// The job name of the daily rollup refresh in `job_runs`.
pub const ROLLUP_JOB: &str = "rollups";

/// Customer ids per transaction of the rollup refresh.
pub(crate) const REFRESH_BATCH: i64 = 5_000;

/// The highest customer id (0 with no customers): where a refresh of
/// every customer in id batches stops.
pub(crate) async fn max_customer_id(exec: &mut impl Exec) -> Result<i64, StoreError> {
    exec.fetch_one(
        "SELECT COALESCE(MAX(id), 0) AS n FROM customers",
        vec![],
        decode_n,
    )
    .await
}

/// Records that `job` completed for `day` (also inside a bulk load's transaction).
pub(crate) async fn mark_job_done(
    exec: &mut impl Exec,
    job: &str,
    day: NaiveDate,
) -> Result<(), StoreError> {
    exec.execute(
        "INSERT INTO job_runs (job, done_for, finished_at) VALUES ($1, $2, $3) \
         ON CONFLICT (job) DO UPDATE SET done_for = excluded.done_for, finished_at = excluded.finished_at",
        args![job, day, Utc::now()],
    )
    .await?;
    Ok(())
}

/// Records that `job` completed for `day` unless it already had (for `day`
/// or later): false means another process did this day's work first.
pub async fn claim_job_day(
    tx: &mut crate::db::Tx,
    job: &str,
    day: NaiveDate,
) -> Result<bool, StoreError> {
    let n = tx
        .execute(
            "INSERT INTO job_runs (job, done_for, finished_at) VALUES ($1, $2, $3) \
             ON CONFLICT (job) DO UPDATE SET done_for = excluded.done_for, finished_at = excluded.finished_at \
             WHERE job_runs.done_for < excluded.done_for",
            args![job, day, Utc::now()],
        )
        .await?;
    Ok(n > 0)
}

/// The arguments of [`ROLLUP_SET`] for one customer: its rollups from
/// its records as of `today`, its digest, its id.
fn rollup_args(records: &Facts, today: NaiveDate, customer_id: i64, digest: Vec<u8>) -> Vec<Arg> {
    let r = Rollups::of(records, today);
    args![
        r.purchase_12m_fen,
        r.order_count,
        r.last_order_on,
        r.last_interaction_on,
        r.complaints_365d,
        digest,
        customer_id
    ]
}

/// One customer's rollups as computed from its records (see
/// [`Rollups`]), with its fact digest.
const ROLLUP_SET: &str = "UPDATE customers SET purchase_12m_fen = $1, order_count = $2, \
    last_order_on = $3, last_interaction_on = $4, complaints_365d = $5, fact_digest = $6 WHERE id = $7";

/// Every customer's [`Rollups`] in SQL, from the first days of the
/// purchase and complaint windows ($1, $2; [`Rollups::window_starts`]):
/// the daily refresh, a batch of ids at a time.
const ROLLUP_UPDATE: &str = "UPDATE customers SET \
    purchase_12m_fen = COALESCE((SELECT CAST(SUM(o.amount_fen) AS BIGINT) FROM orders o WHERE o.customer_id = customers.id AND o.ordered_on >= $1), 0), \
    order_count = (SELECT COUNT(*) FROM orders o WHERE o.customer_id = customers.id), \
    last_order_on = (SELECT MAX(o.ordered_on) FROM orders o WHERE o.customer_id = customers.id), \
    last_interaction_on = (SELECT MAX(i.occurred_on) FROM interactions i WHERE i.customer_id = customers.id), \
    complaints_365d = (SELECT COUNT(*) FROM interactions i WHERE i.customer_id = customers.id AND i.kind = 'complaint' AND i.occurred_on >= $2)";

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> Customer {
        serde_json::from_value(serde_json::json!({
            "id": 7, "code": "C2024001", "name": "华东精密制造(苏州)有限公司", "aliases": ["华东精密"],
            "uscc": "91320571123456796N", "industry": "制造业", "employees": 680,
            "annual_revenue_fen": 1_000_000, "province": "江苏", "city": "苏州", "sales_region": "华东",
            "address": "苏州工业园区", "founded_on": "2001-05-01", "cooperation_start_on": "2021-03-15",
            "product_types": ["精密轴承"], "declared_annual_purchase_fen": 120_000_000, "status": "active",
            "source_channel": "展会", "owner_id": 3, "team": "华东一组", "notes": "老客户",
            "custom_fields": {"need_type": "价格敏感型"}, "missing_fields": [],
            "purchase_12m_fen": 0, "order_count": 0, "last_order_on": null, "last_interaction_on": null,
            "complaints_365d": 0, "version": 4,
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"
        }))
        .expect("customer")
    }

    /// The columns an import's update writes: nothing but the custom
    /// fields for an unchanged record, then exactly what changed.
    #[test]
    fn an_update_writes_only_the_columns_it_changes() {
        let before = stored();
        let owner = Owner {
            owner_id: before.owner_id,
            team: before.team.clone(),
        };
        let bit = |column: &str| {
            1u32 << DATA_COLUMNS
                .iter()
                .position(|c| *c == column)
                .expect(column)
        };
        let custom = 1 << CUSTOM_FIELDS;
        let changed = |d: &CustomerData, owner: &Owner, code: &str| {
            changed_columns(&before, &data_args(d, owner, Value::Null), code)
        };
        let same = before.data();
        assert_eq!(changed(&same, &owner, ""), custom);
        assert_eq!(changed(&same, &owner, "C2024001"), custom);
        assert_eq!(
            changed(&same, &owner, "C2024002"),
            custom | 1 << DATA_COLUMNS.len()
        );
        type Change = fn(&mut CustomerData);
        let cases: [(&str, Change, u32); 6] = [
            ("employees", |d| d.employees = Some(681), bit("employees")),
            (
                "name",
                |d| d.name = "华东精密制造有限公司".into(),
                bit("name"),
            ),
            (
                "a new core name",
                |d| d.name = "华南精密制造有限公司".into(),
                bit("name") | bit("name_key"),
            ),
            ("uscc", |d| d.uscc = None, bit("uscc")),
            (
                "product types",
                |d| d.product_types.push("传动部件".into()),
                bit("product_types"),
            ),
            (
                "status",
                |d| {
                    d.status = kehu_core::customer::CustomerStatus::parse("paused").expect("status")
                },
                bit("status"),
            ),
        ];
        for (what, change, expected) in cases {
            let mut d = before.data();
            change(&mut d);
            assert_eq!(changed(&d, &owner, ""), custom | expected, "{what}");
        }
        let moved = Owner {
            owner_id: Some(9),
            team: None,
        };
        assert_eq!(
            changed(&same, &moved, ""),
            custom | bit("owner_id") | bit("team")
        );
    }
}
