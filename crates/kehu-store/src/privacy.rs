//! Data-subject requests and retention: finding a person's contact
//! records, withdrawing consents, erasing a person everywhere they are
//! stored in clear, and deleting data whose retention period has passed.

use crate::cipher::{self, FieldCipher};
use crate::db::{Arg, Exec, RowGet};
use crate::error::StoreError;
use crate::intake::Consent;
use crate::model::Contact;
use crate::{args, Store};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// A contact found for a data-subject request, with its customer.
#[derive(Debug, Clone)]
pub struct PersonMatch {
    pub contact: Contact,
    pub customer_code: String,
    pub customer_name: String,
    pub owner_id: Option<i64>,
    pub team: Option<String>,
}

/// What a person is looked up by (exact, as stored after standardization).
#[derive(Debug, Clone, Default)]
pub struct PersonQuery {
    pub name: Option<String>,
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub id_number: Option<String>,
}

/// What an erasure changed, per kind of record.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Erased {
    pub contact: bool,
    pub leads: u64,
    pub import_rows: u64,
    pub import_files: u64,
    pub import_problems: u64,
    pub anomalies: u64,
    /// Contact merges whose before-images held the person (both images
    /// blanked: the two records were one person).
    pub contact_merges: u64,
    /// Rows of the customer's free text (interactions' summaries, tasks,
    /// follow-ups, their notifications) the person's values were taken
    /// out of, by table.
    pub free_text: std::collections::BTreeMap<String, u64>,
}

/// Free text kept about a customer that may name its people: the table,
/// which rows are the customer's (`$1` its id), the text columns, and what
/// else an edit sets.
const FREE_TEXT: &[(&str, &str, &[&str], &str)] = &[
    (
        "interactions",
        "customer_id = $1",
        &["summary"],
        ", version = version + 1",
    ),
    ("tasks", "customer_id = $1", &["title", "detail"], ""),
    (
        "follow_ups",
        "customer_id = $1",
        &["summary", "next_step"],
        "",
    ),
    (
        "notifications",
        "task_id IN (SELECT id FROM tasks WHERE customer_id = $1)",
        &["text_zh", "text_en"],
        "",
    ),
];

/// Takes the person's `values` out of the customer's free text
/// ([`FREE_TEXT`]), each replaced by `with`; returns the rows changed by
/// table.
async fn redact_free_text(
    tx: &mut impl Exec,
    customer_id: i64,
    values: &[String],
    with: &str,
) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
    let mut changed = std::collections::BTreeMap::new();
    for (table, rows_of, columns, also) in FREE_TEXT {
        let sql = format!(
            "SELECT id, {} FROM {table} WHERE {rows_of}",
            columns.join(", ")
        );
        let rows = tx
            .fetch_all(&sql, args![customer_id], |r: &dyn RowGet| {
                let texts = columns
                    .iter()
                    .map(|c| r.opt_text(c))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((r.int("id")?, texts))
            })
            .await?;
        let set: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ${}", i + 1))
            .collect();
        let update = format!(
            "UPDATE {table} SET {}{also} WHERE id = ${}",
            set.join(", "),
            columns.len() + 1
        );
        let mut n = 0;
        for (id, texts) in rows {
            let redacted: Vec<Option<String>> = texts
                .iter()
                .map(|t| {
                    t.as_deref()
                        .and_then(|t| kehu_core::privacy::redact_text(t, values, with))
                })
                .collect();
            if redacted.iter().all(Option::is_none) {
                continue;
            }
            let mut a: Vec<Arg> = texts
                .into_iter()
                .zip(redacted)
                .map(|(old, new)| Arg::from(new.or(old)))
                .collect();
            a.push(Arg::from(id));
            tx.execute(&update, a).await?;
            n += 1;
        }
        if n > 0 {
            changed.insert(table.to_string(), n);
        }
    }
    Ok(changed)
}

/// The kinds of data with a retention period, and their defaults in days.
pub const RETENTION_KINDS: &[(&str, i64, &str, &str)] = &[
    ("rejected_leads", 180, "被拒绝的线索", "Rejected leads"),
    (
        "import_files",
        90,
        "导入的原始文件",
        "Imported files as uploaded",
    ),
    ("login_attempts", 180, "登录尝试记录", "Login attempts"),
    ("notifications", 365, "站内通知", "In-app notifications"),
    (
        "deliveries",
        365,
        "邮件与机器人发送记录",
        "E-mail and webhook deliveries",
    ),
    (
        "stored_reports",
        1095,
        "定期报表存档",
        "Stored scheduled reports",
    ),
];

/// Personal keys of a contact as JSON (imports' before-images, leads).
const CONTACT_JSON_KEYS: &[&str] = &["name", "mobile", "landline", "email", "id_number", "notes"];

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Whether `text` is one of the person's values as typed anywhere: the
/// same e-mail (any case), the same phone digits, the same name or ID.
fn is_theirs(values: &[String], text: &str) -> bool {
    let t = text.trim();
    if t.is_empty() {
        return false;
    }
    values.iter().any(|v| {
        v == t
            || v.eq_ignore_ascii_case(t)
            || (v.chars().all(|c| c.is_ascii_digit() || c == '-')
                && digits(v).len() >= 7
                && digits(t).ends_with(&digits(v).replace('-', "")))
    })
}

/// Replaces the person's values inside a JSON value by `with`; returns
/// whether any was.
fn scrub(v: &mut Value, values: &[String], with: &str) -> bool {
    match v {
        Value::String(s) if is_theirs(values, s) => {
            *v = Value::String(with.to_string());
            true
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |a, i| scrub(i, values, with) | a),
        Value::Object(map) => map
            .values_mut()
            .fold(false, |a, i| scrub(i, values, with) | a),
        _ => false,
    }
}

/// The person's values a contact holds (what erasure looks for elsewhere).
fn values_of(c: &Contact) -> Vec<String> {
    [
        Some(c.name.clone()),
        c.mobile.clone(),
        c.landline.clone(),
        c.email.clone(),
        c.id_number.clone(),
    ]
    .into_iter()
    .flatten()
    .filter(|v| !v.trim().is_empty())
    .collect()
}

/// A condition on a sealed contact column (`column`, e.g. `mobile`; its
/// cipher scope `sealed`) equal to `value`: the clear value (rows written
/// before encryption) or its blind index under any key. Placeholders
/// start at `$first`; a missing value matches nothing.
pub(crate) fn sealed_match(
    cipher: &FieldCipher,
    column: &str,
    sealed: &str,
    value: Option<&str>,
    first: usize,
) -> (String, Vec<Arg>) {
    let mut sql = format!("contacts.{column} = ${first}");
    let mut a = args![value];
    if let Some(v) = value {
        let idx = cipher.indexes(sealed, v);
        if !idx.is_empty() {
            let list: Vec<String> = (0..idx.len())
                .map(|i| format!("${}", first + 1 + i))
                .collect();
            sql = format!("({sql} OR contacts.{column}_idx IN ({}))", list.join(", "));
            a.extend(idx.into_iter().map(Arg::from));
        }
    }
    (sql, a)
}

impl Store {
    /// Contacts matching any of the query's values (at most 200).
    pub async fn find_people(&self, q: &PersonQuery) -> Result<Vec<PersonMatch>, StoreError> {
        let mut a = args![q.name.clone()];
        let mut conditions = vec!["contacts.name = $1".to_string()];
        for (column, sealed, value) in [
            ("mobile", cipher::MOBILE, &q.mobile),
            ("email", cipher::EMAIL, &q.email),
            ("id_number", cipher::ID_NUMBER, &q.id_number),
        ] {
            let (sql, more) =
                sealed_match(&self.cipher, column, sealed, value.as_deref(), a.len() + 1);
            conditions.push(sql);
            a.extend(more);
        }
        let sql = format!(
            "SELECT contacts.*, customers.code AS customer_code, customers.name AS customer_name, \
             customers.owner_id AS customer_owner, customers.team AS customer_team \
             FROM contacts JOIN customers ON customers.id = contacts.customer_id \
             WHERE {} ORDER BY contacts.id LIMIT 200",
            conditions.join(" OR ")
        );
        let found = self
            .db
            .clone()
            .fetch_all(&sql, a, |r: &dyn RowGet| {
                Ok(PersonMatch {
                    contact: crate::records::decode_contact(r)?,
                    customer_code: r.text("customer_code")?,
                    customer_name: r.text("customer_name")?,
                    owner_id: r.opt_int("customer_owner")?,
                    team: r.opt_text("customer_team")?,
                })
            })
            .await?;
        found
            .into_iter()
            .map(|mut m| {
                m.contact = crate::records::open_contact(&self.cipher, m.contact)?;
                Ok(m)
            })
            .collect()
    }

    pub async fn consent(&self, id: i64) -> Result<Consent, StoreError> {
        self.db
            .clone()
            .fetch_optional(
                "SELECT * FROM consents WHERE id = $1",
                args![id],
                crate::intake::decode_consent,
            )
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Marks a consent withdrawn (once; the first time is kept).
    pub async fn withdraw_consent(
        &self,
        id: i64,
        at: DateTime<Utc>,
    ) -> Result<Consent, StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            "UPDATE consents SET withdrawn_at = $1 WHERE id = $2 AND withdrawn_at IS NULL",
            args![at, id],
        )
        .await?;
        let c = tx
            .fetch_optional(
                "SELECT * FROM consents WHERE id = $1",
                args![id],
                crate::intake::decode_consent,
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(c)
    }

    /// Of `ids`, the customers who gave consent and have withdrawn all of it.
    pub async fn consent_withdrawn(&self, ids: &[i64]) -> Result<Vec<i64>, StoreError> {
        let withdrawn = self
            .db
            .clone()
            .fetch_all(
                "SELECT customer_id AS n FROM consents GROUP BY customer_id \
                 HAVING COUNT(*) = COUNT(withdrawn_at)",
                vec![],
                crate::db::decode_n,
            )
            .await?;
        let wanted: std::collections::HashSet<i64> = ids.iter().copied().collect();
        Ok(withdrawn
            .into_iter()
            .filter(|c| wanted.contains(c))
            .collect())
    }

    /// Erases a person: the contact's personal fields (its name replaced
    /// by `placeholder`), and their values wherever else they are kept in
    /// clear — web-form leads, imports' before-images, problems and raw
    /// files, the customer's free text (interactions, tasks, follow-ups
    /// and their notifications, the values replaced by `placeholder`),
    /// anomaly findings — in one transaction. Company records,
    /// orders and statistics stay.
    pub async fn erase_contact(&self, id: i64, placeholder: &str) -> Result<Erased, StoreError> {
        let mut tx = self.db.begin().await?;
        let c = tx
            .fetch_optional(
                "SELECT * FROM contacts WHERE id = $1",
                args![id],
                crate::records::decode_contact,
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let c = crate::records::open_contact(&self.cipher, c)?;
        let values: Vec<String> = values_of(&c)
            .into_iter()
            .filter(|v| v != placeholder)
            .collect();
        let mut erased = Erased::default();
        tx.execute(
            "UPDATE contacts SET name = $1, mobile = NULL, landline = NULL, email = NULL, id_number = NULL, \
             mobile_idx = NULL, email_idx = NULL, id_number_idx = NULL, notes = NULL, version = version + 1, updated_at = $2 WHERE id = $3",
            args![placeholder.to_string(), Utc::now(), id],
        )
        .await?;
        erased.contact = true;

        // Leads: the customer's, and any other holding one of the values.
        let leads = tx
            .fetch_all(
                "SELECT id, submitted FROM leads",
                vec![],
                |r: &dyn RowGet| Ok((r.int("id")?, r.json("submitted")?)),
            )
            .await?;
        let personal = self.personal_keys().await?;
        for (lead, mut submitted) in leads {
            // Sealed values are compared in clear, and sealed again.
            if let Value::Object(m) = &mut submitted {
                self.cipher.open_submitted(m)?;
            }
            if scrub(&mut submitted, &values, "") {
                if let Value::Object(m) = &mut submitted {
                    self.cipher.seal_submitted(m, &personal);
                }
                tx.execute(
                    "UPDATE leads SET submitted = $1 WHERE id = $2",
                    args![submitted, lead],
                )
                .await?;
                erased.leads += 1;
            }
        }
        // Imports: the contact's before-images, the raw files that held it, the problems naming its values.
        let rows = tx
            .fetch_all(
                "SELECT import_id, seq, before FROM import_changes WHERE entity = 'contact' AND record_id = $1",
                args![id],
                |r: &dyn RowGet| Ok((r.int("import_id")?, r.int("seq")?, r.json("before")?)),
            )
            .await?;
        let mut imports: Vec<i64> = Vec::new();
        for (import, seq, before) in rows {
            imports.push(import);
            if let Value::Object(mut b) = before {
                blank_contact(&mut b, placeholder);
                tx.execute(
                    "UPDATE import_changes SET before = $1 WHERE import_id = $2 AND seq = $3",
                    args![Value::Object(b), import, seq],
                )
                .await?;
                erased.import_rows += 1;
            }
        }
        // A customer import creates the contact with its customer.
        let by_customer = tx
            .fetch_all(
                "SELECT DISTINCT import_id AS n FROM import_changes WHERE customer_id = $1",
                args![c.customer_id],
                crate::db::decode_n,
            )
            .await?;
        imports.extend(by_customer);
        imports.sort_unstable();
        imports.dedup();
        for import in &imports {
            erased.import_files += tx
                .execute(
                    "DELETE FROM import_files WHERE import_id = $1",
                    args![*import],
                )
                .await?;
        }
        let problems = tx
            .fetch_all(
                "SELECT id, problems FROM imports",
                vec![],
                |r: &dyn RowGet| Ok((r.int("id")?, r.json("problems")?)),
            )
            .await?;
        for (import, mut p) in problems {
            if scrub(&mut p, &values, "") {
                tx.execute(
                    "UPDATE imports SET problems = $1 WHERE id = $2",
                    args![p, import],
                )
                .await?;
                erased.import_problems += 1;
            }
        }
        let merges = tx
            .fetch_all(
                "SELECT id, survivor_before, absorbed FROM contact_merges WHERE survivor_id = $1 OR absorbed_id = $1",
                args![id],
                |r: &dyn RowGet| Ok((r.int("id")?, r.json("survivor_before")?, r.json("absorbed")?)),
            )
            .await?;
        for (merge, survivor, absorbed) in merges {
            let blank = |v: Value| match v {
                Value::Object(mut b) => {
                    blank_contact(&mut b, placeholder);
                    Value::Object(b)
                }
                other => other,
            };
            tx.execute(
                "UPDATE contact_merges SET survivor_before = $1, absorbed = $2 WHERE id = $3",
                args![blank(survivor), blank(absorbed), merge],
            )
            .await?;
            erased.contact_merges += 1;
        }
        erased.free_text = redact_free_text(&mut tx, c.customer_id, &values, placeholder).await?;
        let findings = tx
            .fetch_all(
                "SELECT id, detail FROM anomalies WHERE customer_id = $1",
                args![c.customer_id],
                |r: &dyn RowGet| Ok((r.int("id")?, r.json("detail")?)),
            )
            .await?;
        for (finding, mut d) in findings {
            if scrub(&mut d, &values, placeholder) {
                tx.execute(
                    "UPDATE anomalies SET detail = $1 WHERE id = $2",
                    args![d, finding],
                )
                .await?;
                erased.anomalies += 1;
            }
        }
        tx.commit().await?;
        Ok(erased)
    }

    /// Each kind's retention in days (the defaults where not set).
    pub async fn retention(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let set: std::collections::HashMap<String, i64> = self
            .db
            .clone()
            .fetch_all(
                "SELECT kind, days FROM retention",
                vec![],
                |r: &dyn RowGet| Ok((r.text("kind")?, r.int("days")?)),
            )
            .await?
            .into_iter()
            .collect();
        Ok(RETENTION_KINDS
            .iter()
            .map(|(k, d, _, _)| (k.to_string(), set.get(*k).copied().unwrap_or(*d)))
            .collect())
    }

    /// Sets retention periods (checked by the caller), all in one transaction.
    pub async fn set_retention(&self, days: &[(String, i64)]) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        for (kind, d) in days {
            tx.execute(
                "INSERT INTO retention (kind, days) VALUES ($1, $2) \
                 ON CONFLICT (kind) DO UPDATE SET days = excluded.days",
                args![kind.clone(), *d],
            )
            .await?;
        }
        tx.commit().await
    }

    /// Web-form submissions that hold one of the contact's values.
    pub async fn leads_holding(&self, c: &Contact) -> Result<Vec<crate::intake::Lead>, StoreError> {
        let values = values_of(c);
        let all = self
            .db
            .clone()
            .fetch_all(
                "SELECT id, submitted FROM leads ORDER BY id",
                vec![],
                |r: &dyn RowGet| Ok((r.int("id")?, r.json("submitted")?)),
            )
            .await?;
        let mut out = Vec::new();
        for (id, mut submitted) in all {
            if scrub(&mut submitted, &values, "") {
                out.push(self.lead(id).await?);
            }
        }
        Ok(out)
    }

    /// Deletes what has outlived its retention period; returns how many per kind.
    pub async fn apply_retention(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let mut out = Vec::new();
        for (kind, days) in self.retention().await? {
            let cutoff = now - Duration::days(days);
            let sql = match kind.as_str() {
                "rejected_leads" => "DELETE FROM leads WHERE status = 'rejected' AND COALESCE(decided_at, consented_at) < $1",
                "import_files" => "DELETE FROM import_files WHERE import_id IN (SELECT id FROM imports WHERE created_at < $1)",
                "login_attempts" => "DELETE FROM login_attempts WHERE attempted_at < $1",
                "notifications" => "DELETE FROM notifications WHERE created_at < $1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = notifications.id AND d.status = 'pending')",
                "deliveries" => "DELETE FROM deliveries WHERE created_at < $1 AND status <> 'pending'",
                "stored_reports" => "DELETE FROM stored_reports WHERE made_at < $1",
                _ => continue,
            };
            let n = self.db.clone().execute(sql, args![cutoff]).await?;
            out.push((kind, n));
        }
        Ok(out)
    }
}

/// A contact's before-image with its personal fields blanked.
fn blank_contact(b: &mut Map<String, Value>, placeholder: &str) {
    for k in CONTACT_JSON_KEYS {
        if b.contains_key(*k) {
            let v = if *k == "name" {
                Value::String(placeholder.to_string())
            } else {
                Value::Null
            };
            b.insert(k.to_string(), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scrub_finds_the_persons_values_as_typed() {
        let values = vec![
            "张小三".to_string(),
            "13812345678".to_string(),
            "010-62345678".to_string(),
            "zhang@example.com".to_string(),
        ];
        let mut v = json!({
            "contact.name": "张小三",
            "contact.mobile": "138-1234-5678",
            "contact.email": "Zhang@Example.com",
            "landline": "(010)62345678",
            "name": "北京星河有限公司",
            "rows": [{"value": "+86 13812345678"}, {"value": "13900001111"}]
        });
        assert!(scrub(&mut v, &values, ""));
        assert_eq!(
            v,
            json!({
                "contact.name": "",
                "contact.mobile": "",
                "contact.email": "",
                "landline": "",
                "name": "北京星河有限公司",
                "rows": [{"value": ""}, {"value": "13900001111"}]
            })
        );
        let mut untouched = json!({"a": "李四", "b": 5});
        assert!(!scrub(&mut untouched, &values, ""));
    }
}
