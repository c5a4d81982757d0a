//! Personal fields encrypted at rest. A contact's mobile, e-mail and ID
//! number are stored sealed (kehu-core `FieldKeys`: AES-256-GCM, the column
//! authenticated with the value) with a blind index beside each
//! (`mobile_idx`, `email_idx`, `id_number_idx`: a keyed hash, for exact
//! lookups and duplicate detection) and the id of the key that sealed the
//! row (`pii_key`). The key comes from the configuration or a key file,
//! never from the database.
//!
//! A rotation (`kehu keys rotate`) puts a new key first in the key file and
//! re-seals the rows in small transactions while servers keep running: a
//! server re-reads the key file when it meets a key it does not know and
//! at most every few seconds before sealing, lookups match the index under
//! every key, and a clear value (a row written before encryption) still
//! reads and is found until it is sealed.
//!
//! *Invariant*: with keys configured, every contact write seals and indexes
//! (`ContactSeal`); without, values are written clear and sealed values
//! cannot be read (an error, never the ciphertext shown as data).

use crate::error::StoreError;
use kehu_core::keyring::{sealed_key_id, FieldKeys, KeyError, Keyring};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// How long a server may keep sealing with a key after the key file
/// changed (a rotation waits this long before its last pass).
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// The sealed columns of contacts, as the AES associated data and index scope.
pub const MOBILE: &str = "contacts.mobile";
pub const EMAIL: &str = "contacts.email";
pub const ID_NUMBER: &str = "contacts.id_number";

/// The store's field keys: none (values written clear), or a keyring,
/// re-read from its key file when that changes.
#[derive(Debug)]
pub struct FieldCipher {
    keys: RwLock<Option<FieldKeys>>,
    file: Option<PathBuf>,
    seen: Mutex<Seen>,
}

#[derive(Debug)]
struct Seen {
    checked: Instant,
    modified: Option<SystemTime>,
}

fn modified(file: &Option<PathBuf>) -> Option<SystemTime> {
    file.as_ref()
        .and_then(|f| std::fs::metadata(f).ok())
        .and_then(|m| m.modified().ok())
}

impl FieldCipher {
    /// No keys: values are written clear.
    pub fn none() -> FieldCipher {
        FieldCipher {
            keys: RwLock::new(None),
            file: None,
            seen: Mutex::new(Seen {
                checked: Instant::now(),
                modified: None,
            }),
        }
    }

    /// `ring`, read from `file` (re-read when the file changes; None: the
    /// keys came from the configuration).
    pub fn new(ring: &Keyring, file: Option<PathBuf>) -> FieldCipher {
        let modified = modified(&file);
        FieldCipher {
            keys: RwLock::new(Some(FieldKeys::new(ring))),
            file,
            seen: Mutex::new(Seen {
                checked: Instant::now(),
                modified,
            }),
        }
    }

    /// Re-reads the key file if it changed (`force`: whatever the time
    /// since the last look). A file that does not parse keeps the keys in use.
    fn reload(&self, force: bool) {
        let Some(file) = &self.file else { return };
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if !force && seen.checked.elapsed() < RELOAD_INTERVAL {
            return;
        }
        seen.checked = Instant::now();
        let now = modified(&self.file);
        if now == seen.modified && !force {
            return;
        }
        match std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|t| Keyring::parse(&t).map_err(|e| e.to_string()))
        {
            Ok(ring) => {
                seen.modified = now;
                if let Ok(mut keys) = self.keys.write() {
                    *keys = Some(FieldKeys::new(&ring));
                }
                tracing::info!(file = %file.display(), primary = %ring.primary().id(), "re-read the key file");
            }
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "cannot re-read the key file; keeping the keys in use")
            }
        }
    }

    /// The keys now (after a look at the key file, at most every
    /// `RELOAD_INTERVAL`).
    pub fn keys(&self) -> Option<FieldKeys> {
        self.reload(false);
        self.keys.read().ok().and_then(|k| k.clone())
    }

    /// The id of the key new values are sealed with.
    pub fn primary_id(&self) -> Option<String> {
        self.keys().map(|k| k.primary_id().to_string())
    }

    /// A stored value in clear. A value sealed with a key this process does
    /// not know makes it re-read the key file once (a rotation elsewhere).
    pub fn open(&self, column: &str, stored: &str) -> Result<String, StoreError> {
        if sealed_key_id(stored).is_none() {
            return Ok(stored.to_string());
        }
        let Some(keys) = self.keys() else {
            return Err(StoreError::Key(KeyError::UnknownKey(
                "(no key configured)".into(),
            )));
        };
        match keys.open(column, stored) {
            Ok(v) => Ok(v.into_owned()),
            Err(KeyError::UnknownKey(_)) if self.file.is_some() => {
                self.reload(true);
                let keys = self.keys().ok_or(StoreError::Key(KeyError::Damaged))?;
                Ok(keys.open(column, stored)?.into_owned())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A whole file sealed (clear without keys).
    pub fn seal_bytes(&self, scope: &str, plain: &[u8]) -> Vec<u8> {
        match self.keys() {
            Some(k) => k.seal_bytes(scope, plain, rand::random()),
            None => plain.to_vec(),
        }
    }

    /// Stored bytes in clear (re-reading the key file once on an unknown key).
    pub fn open_bytes(&self, scope: &str, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
        if kehu_core::keyring::sealed_bytes_key_id(stored).is_none() {
            return Ok(stored.to_vec());
        }
        let keys = self.keys().ok_or(StoreError::Key(KeyError::UnknownKey(
            "(no key configured)".into(),
        )))?;
        match keys.open_bytes(scope, stored) {
            Ok(v) => Ok(v.into_owned()),
            Err(KeyError::UnknownKey(_)) if self.file.is_some() => {
                self.reload(true);
                let keys = self.keys().ok_or(StoreError::Key(KeyError::Damaged))?;
                Ok(keys.open_bytes(scope, stored)?.into_owned())
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn open_opt(
        &self,
        column: &str,
        stored: Option<String>,
    ) -> Result<Option<String>, StoreError> {
        stored.map(|s| self.open(column, &s)).transpose()
    }

    /// Blind indexes of `plain` under every key (empty without keys).
    pub fn indexes(&self, column: &str, plain: &str) -> Vec<String> {
        self.keys()
            .map(|k| k.indexes(column, plain))
            .unwrap_or_default()
    }

    /// A sealing of contacts' personal fields with the keys now.
    pub fn contact_seal(&self) -> ContactSeal {
        ContactSeal { keys: self.keys() }
    }

    /// `fields` with the values of the `personal` custom fields sealed
    /// (their JSON text); other values, and values sealed already, as
    /// they are. Without keys, all as they are.
    pub fn seal_custom(
        &self,
        fields: &Map<String, Value>,
        personal: &BTreeSet<String>,
    ) -> Map<String, Value> {
        let mut out = fields.clone();
        if personal.is_empty() {
            return out;
        }
        let Some(keys) = self.keys() else { return out };
        for key in personal {
            if let Some(v) = out.get_mut(key) {
                let sealed = matches!(v, Value::String(s) if sealed_key_id(s).is_some());
                if !v.is_null() && !sealed {
                    *v = Value::String(keys.seal(
                        &custom_column(key),
                        &v.to_string(),
                        rand::random(),
                    ));
                }
            }
        }
        out
    }

    /// A customer's custom fields with every sealed value opened, in place.
    pub fn open_custom(&self, fields: &mut Map<String, Value>) -> Result<(), StoreError> {
        for (key, v) in fields.iter_mut() {
            let Value::String(s) = v else { continue };
            if sealed_key_id(s).is_none() {
                continue;
            }
            let text = self.open(&custom_column(key), s)?;
            *v = serde_json::from_str(&text).map_err(|_| StoreError::Key(KeyError::Damaged))?;
        }
        Ok(())
    }
}

/// Whether a web-form lead's submitted value is sealed: the contact's
/// mobile, e-mail and ID number, and custom fields marked personal.
fn lead_value_sealed(key: &str, personal: &BTreeSet<String>) -> bool {
    matches!(
        key,
        "contact.mobile" | "contact.email" | "contact.id_number"
    ) || key
        .strip_prefix("cf.")
        .is_some_and(|k| personal.contains(k))
}

fn lead_column(key: &str) -> String {
    format!("leads.submitted.{key}")
}

impl FieldCipher {
    /// A lead's submitted values with the personal ones sealed (empty
    /// values and values sealed already as they are).
    pub fn seal_submitted(&self, submitted: &mut Map<String, Value>, personal: &BTreeSet<String>) {
        let Some(keys) = self.keys() else { return };
        for (k, v) in submitted.iter_mut() {
            if let Value::String(s) = v {
                if lead_value_sealed(k, personal) && !s.is_empty() && sealed_key_id(s).is_none() {
                    *v = Value::String(keys.seal(&lead_column(k), s, rand::random()));
                }
            }
        }
    }

    /// A lead's submitted values with every sealed one opened, in place.
    pub fn open_submitted(&self, submitted: &mut Map<String, Value>) -> Result<(), StoreError> {
        for (k, v) in submitted.iter_mut() {
            if let Value::String(s) = v {
                *s = self.open_lead_value(k, s)?;
            }
        }
        Ok(())
    }

    /// One submitted value of a lead in clear. Only fields that may be
    /// sealed are opened (a validated phone, e-mail or ID number, or a
    /// custom value, which may not look sealed): free text such as a
    /// name or a note is taken as typed, whatever it looks like.
    pub fn open_lead_value(&self, key: &str, stored: &str) -> Result<String, StoreError> {
        if lead_value_sealed(key, &BTreeSet::new()) || key.starts_with("cf.") {
            self.open(&lead_column(key), stored)
        } else {
            Ok(stored.to_string())
        }
    }
}

/// Whether a lead's stored values need sealing again (as
/// [`custom_needs_reseal`]).
fn submitted_needs_reseal(
    submitted: &Map<String, Value>,
    personal: &BTreeSet<String>,
    primary: &str,
) -> bool {
    submitted.iter().any(|(k, v)| {
        let Value::String(s) = v else { return false };
        let sealed_with = sealed_key_id(s);
        if lead_value_sealed(k, personal) {
            !s.is_empty() && sealed_with != Some(primary)
        } else {
            sealed_with.is_some()
        }
    })
}

/// The associated data (and index scope) of a custom field's sealed value.
fn custom_column(key: &str) -> String {
    format!("customers.custom_fields.{key}")
}

/// Whether a customer's stored custom fields need sealing again: a
/// personal field's value not sealed with `primary`, or a field no longer
/// personal still sealed.
pub fn custom_needs_reseal(
    fields: &Map<String, Value>,
    personal: &BTreeSet<String>,
    primary: &str,
) -> bool {
    fields.iter().any(|(k, v)| {
        let sealed_with = match v {
            Value::String(s) => sealed_key_id(s),
            _ => None,
        };
        if personal.contains(k) {
            !v.is_null() && sealed_with != Some(primary)
        } else {
            sealed_with.is_some()
        }
    })
}

/// What a customer write seals its custom fields with: the keys, and
/// which fields are personal.
pub(crate) struct CustomSeal<'a> {
    pub cipher: &'a FieldCipher,
    pub personal: &'a BTreeSet<String>,
}

impl CustomSeal<'_> {
    /// The custom fields as stored.
    pub fn seal(&self, fields: &Map<String, Value>) -> Value {
        Value::Object(self.cipher.seal_custom(fields, self.personal))
    }
}

impl crate::Store {
    /// The custom fields holding personal information (those whose
    /// definition is `personal()`), from the process's copy of the
    /// definitions.
    pub async fn personal_keys(&self) -> Result<BTreeSet<String>, StoreError> {
        Ok(self
            .custom_field_defs()
            .await?
            .into_iter()
            .filter(|d| d.personal().is_some())
            .map(|d| d.key)
            .collect())
    }
}

/// A customer read back: its personal custom fields opened.
pub(crate) fn open_customer(
    cipher: &FieldCipher,
    mut c: crate::model::Customer,
) -> Result<crate::model::Customer, StoreError> {
    cipher.open_custom(&mut c.custom_fields)?;
    Ok(c)
}

/// A contact's personal fields as stored: sealed values, their indexes and
/// the key id (all clear / NULL without keys).
#[derive(Debug, Clone, PartialEq)]
pub struct SealedContact {
    pub mobile: Option<String>,
    pub email: Option<String>,
    pub id_number: Option<String>,
    pub mobile_idx: Option<String>,
    pub email_idx: Option<String>,
    pub id_number_idx: Option<String>,
    pub key: Option<String>,
}

/// Seals many contacts with one snapshot of the keys (the bulk loader,
/// a re-sealing batch).
pub struct ContactSeal {
    keys: Option<FieldKeys>,
}

impl ContactSeal {
    fn one(&self, column: &str, v: Option<&str>) -> (Option<String>, Option<String>) {
        match (&self.keys, v) {
            (_, None) => (None, None),
            (None, Some(v)) => (Some(v.to_string()), None),
            (Some(k), Some(v)) => (
                Some(k.seal(column, v, rand::random())),
                Some(k.index(column, v)),
            ),
        }
    }

    pub fn seal(
        &self,
        mobile: Option<&str>,
        email: Option<&str>,
        id_number: Option<&str>,
    ) -> SealedContact {
        let (mobile, mobile_idx) = self.one(MOBILE, mobile);
        let (email, email_idx) = self.one(EMAIL, email);
        let (id_number, id_number_idx) = self.one(ID_NUMBER, id_number);
        SealedContact {
            mobile,
            email,
            id_number,
            mobile_idx,
            email_idx,
            id_number_idx,
            key: self.keys.as_ref().map(|k| k.primary_id().to_string()),
        }
    }
}

/// Rows a re-sealing pass wrote, and rows it left for the next pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Resealed {
    pub sealed: u64,
    /// Changed by someone else between the read and the write (they
    /// sealed it themselves; the next pass looks again).
    pub skipped: u64,
}

impl crate::Store {
    /// Contacts not yet sealed with the primary key (clear rows, older keys).
    pub async fn contacts_to_reseal(&self) -> Result<i64, StoreError> {
        use crate::db::Exec;
        let Some(primary) = self.cipher.primary_id() else {
            return Ok(0);
        };
        self.db
            .clone()
            .fetch_one(
                "SELECT COUNT(*) AS n FROM contacts WHERE pii_key IS NULL OR pii_key <> $1",
                crate::args![primary],
                crate::db::decode_n,
            )
            .await
    }

    /// Seals with the primary key every contact not sealed with it: rows
    /// written before encryption and rows of an older key (a rotation),
    /// `batch` rows per transaction, so writers wait at most one batch. A
    /// row is written only if its version is still the one read (no lost
    /// edit; the version does not move: nothing a user sees changed).
    /// `progress` is told the rows done after each batch.
    pub async fn reseal_contacts(
        &self,
        batch: i64,
        mut progress: impl FnMut(u64),
    ) -> Result<Resealed, StoreError> {
        use crate::db::{Exec, RowGet};
        let mut done = Resealed::default();
        let Some(primary) = self.cipher.primary_id() else {
            return Ok(done);
        };
        let mut after = 0i64;
        loop {
            let rows = self
                .db
                .clone()
                .fetch_all(
                    "SELECT id, version, mobile, email, id_number FROM contacts \
                     WHERE id > $1 AND (pii_key IS NULL OR pii_key <> $2) ORDER BY id LIMIT $3",
                    crate::args![after, primary.clone(), batch],
                    |r: &dyn RowGet| {
                        Ok((
                            r.int("id")?,
                            r.int("version")?,
                            r.opt_text("mobile")?,
                            r.opt_text("email")?,
                            r.opt_text("id_number")?,
                        ))
                    },
                )
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.0;
            let seal = self.contact_seal_checked()?;
            let mut tx = self.db.begin().await?;
            for (id, version, mobile, email, id_number) in rows {
                let mobile = self.cipher.open_opt(MOBILE, mobile)?;
                let email = self.cipher.open_opt(EMAIL, email)?;
                let id_number = self.cipher.open_opt(ID_NUMBER, id_number)?;
                let s = seal.seal(mobile.as_deref(), email.as_deref(), id_number.as_deref());
                let n = tx
                    .execute(
                        "UPDATE contacts SET mobile = $1, email = $2, id_number = $3, mobile_idx = $4, email_idx = $5, \
                         id_number_idx = $6, pii_key = $7 WHERE id = $8 AND version = $9",
                        crate::args![
                            s.mobile,
                            s.email,
                            s.id_number,
                            s.mobile_idx,
                            s.email_idx,
                            s.id_number_idx,
                            s.key,
                            id,
                            version
                        ],
                    )
                    .await?;
                if n == 1 {
                    done.sealed += 1;
                } else {
                    done.skipped += 1;
                }
            }
            tx.commit().await?;
            progress(done.sealed + done.skipped);
        }
        Ok(done)
    }

    /// Seals the personal custom fields of every customer that needs it
    /// (`custom_needs_reseal`: a field newly marked personal, a rotation,
    /// a field no longer personal opened back), reading `batch` customers
    /// per step; written only if the customer's version is still the one
    /// read. With no personal field, only customers holding a sealed value
    /// are read.
    pub async fn reseal_customers(&self, batch: i64) -> Result<Resealed, StoreError> {
        use crate::db::{Exec, RowGet};
        let mut done = Resealed::default();
        let Some(primary) = self.cipher.primary_id() else {
            return Ok(done);
        };
        let personal = self.personal_keys().await?;
        let only_sealed = if personal.is_empty() {
            "AND CAST(custom_fields AS TEXT) LIKE '%enc1:%'"
        } else {
            ""
        };
        let sql = format!(
            "SELECT id, version, custom_fields FROM customers WHERE id > $1 {only_sealed} ORDER BY id LIMIT $2"
        );
        let mut after = 0i64;
        loop {
            let rows = self
                .db
                .clone()
                .fetch_all(&sql, crate::args![after, batch], |r: &dyn RowGet| {
                    let fields = match r.json("custom_fields")? {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    Ok((r.int("id")?, r.int("version")?, fields))
                })
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.0;
            let todo: Vec<_> = rows
                .into_iter()
                .filter(|(_, _, f)| custom_needs_reseal(f, &personal, &primary))
                .collect();
            if todo.is_empty() {
                continue;
            }
            let mut tx = self.db.begin().await?;
            for (id, version, mut fields) in todo {
                self.cipher.open_custom(&mut fields)?;
                let sealed = Value::Object(self.cipher.seal_custom(&fields, &personal));
                let n = tx
                    .execute(
                        "UPDATE customers SET custom_fields = $1 WHERE id = $2 AND version = $3",
                        crate::args![sealed, id, version],
                    )
                    .await?;
                if n == 1 {
                    done.sealed += 1;
                } else {
                    done.skipped += 1;
                }
            }
            tx.commit().await?;
        }
        Ok(done)
    }

    /// Web-form leads' personal values not sealed with the primary key
    /// (a rotation, a field newly marked personal), in one transaction per
    /// `batch` leads.
    pub async fn reseal_leads(&self, batch: i64) -> Result<Resealed, StoreError> {
        use crate::db::{Exec, RowGet};
        let mut done = Resealed::default();
        let Some(primary) = self.cipher.primary_id() else {
            return Ok(done);
        };
        let personal = self.personal_keys().await?;
        // Read inside the writing transaction (locked on PostgreSQL; SQLite
        // holds its write lock from BEGIN), so an erasure is never undone.
        let lock = match self.backend() {
            crate::Backend::Postgres => " FOR UPDATE",
            crate::Backend::Sqlite => "",
        };
        let sql =
            format!("SELECT id, submitted FROM leads WHERE id > $1 ORDER BY id LIMIT $2{lock}");
        let mut after = 0i64;
        loop {
            let mut tx = self.db.begin().await?;
            let rows = tx
                .fetch_all(&sql, crate::args![after, batch], |r: &dyn RowGet| {
                    let submitted = match r.json("submitted")? {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    Ok((r.int("id")?, submitted))
                })
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.0;
            for (id, mut submitted) in rows {
                if !submitted_needs_reseal(&submitted, &personal, &primary) {
                    continue;
                }
                self.cipher.open_submitted(&mut submitted)?;
                self.cipher.seal_submitted(&mut submitted, &personal);
                tx.execute(
                    "UPDATE leads SET submitted = $1 WHERE id = $2",
                    crate::args![Value::Object(submitted), id],
                )
                .await?;
                done.sealed += 1;
            }
            tx.commit().await?;
        }
        Ok(done)
    }

    /// Contacts, then customers' personal custom fields: everything not
    /// sealed with the primary key as it should be.
    pub async fn reseal(
        &self,
        batch: i64,
        progress: impl FnMut(u64),
    ) -> Result<Resealed, StoreError> {
        let contacts = self.reseal_contacts(batch, progress).await?;
        let customers = self.reseal_customers(batch).await?;
        let leads = self.reseal_leads(batch).await?;
        Ok(Resealed {
            sealed: contacts.sealed + customers.sealed + leads.sealed,
            skipped: contacts.skipped + customers.skipped + leads.skipped,
        })
    }

    fn contact_seal_checked(&self) -> Result<ContactSeal, StoreError> {
        let seal = self.cipher.contact_seal();
        if seal.keys.is_none() {
            return Err(StoreError::Config("no encryption key is configured".into()));
        }
        Ok(seal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kehu_core::keyring::Key;

    #[test]
    fn a_rotation_elsewhere_is_picked_up_from_the_key_file() {
        let dir = std::env::temp_dir().join(format!("kehu-cipher-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("kehu.key");
        let old = Keyring::new(Key::from_bytes([1; 32]));
        std::fs::write(&file, old.to_text()).expect("write");
        let server = FieldCipher::new(&old, Some(file.clone()));
        let sealed_old = server.contact_seal().seal(Some("13812345678"), None, None);
        assert_eq!(sealed_old.key.as_deref(), Some(old.primary().id()));

        // Another process rotates: new key first, old key kept.
        let new = old.with_primary(Key::from_bytes([2; 32]));
        std::fs::write(&file, new.to_text()).expect("write");
        let rotator = FieldCipher::new(&new, Some(file.clone()));
        let sealed_new = rotator.contact_seal().seal(Some("13812345678"), None, None);
        // The server opens the new key's value at once (unknown key → re-read) …
        assert_eq!(
            server
                .open(MOBILE, sealed_new.mobile.as_deref().expect("sealed"))
                .expect("open"),
            "13812345678"
        );
        // … and seals with it from then on; old values still open.
        assert_eq!(server.primary_id().as_deref(), Some(new.primary().id()));
        assert_eq!(
            server
                .open(MOBILE, sealed_old.mobile.as_deref().expect("sealed"))
                .expect("open"),
            "13812345678"
        );
        // Lookups match the index under either key.
        let idx = server.indexes(MOBILE, "13812345678");
        assert!(idx.contains(sealed_old.mobile_idx.as_ref().expect("idx")));
        assert!(idx.contains(sealed_new.mobile_idx.as_ref().expect("idx")));

        // Without keys: written clear, sealed values refused.
        let none = FieldCipher::none();
        let clear = none.contact_seal().seal(Some("13812345678"), None, None);
        assert_eq!(clear.mobile.as_deref(), Some("13812345678"));
        assert_eq!(clear.mobile_idx, None);
        assert!(none
            .open(MOBILE, sealed_old.mobile.as_deref().expect("sealed"))
            .is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
