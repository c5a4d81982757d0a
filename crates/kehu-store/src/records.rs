//! Contacts, orders and interactions: records that hang off a customer.
//! Writes to orders and interactions refresh the customer's rollups in the
//! same transaction, so lists never show stale totals after a write.

use crate::cipher::{self, FieldCipher};
use crate::classes::ClassWriter;
use crate::db::{check_version, Arg, Exec, RowGet, Tx};
use crate::error::StoreError;
use crate::feed::FeedKind;
use crate::listing::{run_list, ListSpec, ScopeFilter};
use crate::model::{Contact, Interaction, Order, Page};
use crate::{args, Store};
use chrono::NaiveDate;
use chrono::Utc;
use kehu_core::classify::Facts;
use kehu_core::contact::ContactData;
use kehu_core::interaction::InteractionData;
use kehu_core::order::OrderData;
use kehu_core::query::ListQuery;

pub(crate) const CONTACT_COLUMNS: &str = "contacts.id, contacts.customer_id, contacts.name, contacts.title, contacts.decision_role, contacts.landline, \
contacts.mobile, contacts.email, contacts.id_number, contacts.is_primary, contacts.notes, contacts.version, contacts.created_at, contacts.updated_at";
const ORDER_COLUMNS: &str = "orders.id, orders.customer_id, orders.order_no, orders.ordered_on, orders.amount_fen, orders.product_line, \
orders.notes, orders.version, orders.created_at, orders.updated_at";
const INTERACTION_COLUMNS: &str = "interactions.id, interactions.customer_id, interactions.kind, interactions.occurred_on, interactions.summary, \
interactions.severity, interactions.status, interactions.satisfaction, interactions.user_id, interactions.version, interactions.created_at, interactions.updated_at";

pub(crate) fn decode_contact(r: &dyn RowGet) -> Result<Contact, sqlx::Error> {
    Ok(Contact {
        id: r.int("id")?,
        customer_id: r.int("customer_id")?,
        name: r.text("name")?,
        title: r.opt_text("title")?,
        decision_role: r.opt_text("decision_role")?,
        landline: r.opt_text("landline")?,
        mobile: r.opt_text("mobile")?,
        email: r.opt_text("email")?,
        id_number: r.opt_text("id_number")?,
        is_primary: r.boolean("is_primary")?,
        notes: r.opt_text("notes")?,
        version: r.int("version")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

fn decode_order(r: &dyn RowGet) -> Result<Order, sqlx::Error> {
    Ok(Order {
        id: r.int("id")?,
        customer_id: r.int("customer_id")?,
        order_no: r.opt_text("order_no")?,
        ordered_on: r
            .opt_date("ordered_on")?
            .ok_or_else(|| sqlx::Error::ColumnNotFound("ordered_on".into()))?,
        amount_fen: r.int("amount_fen")?,
        product_line: r.opt_text("product_line")?,
        notes: r.opt_text("notes")?,
        version: r.int("version")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

fn decode_interaction(r: &dyn RowGet) -> Result<Interaction, sqlx::Error> {
    Ok(Interaction {
        id: r.int("id")?,
        customer_id: r.int("customer_id")?,
        kind: r.text("kind")?,
        occurred_on: r
            .opt_date("occurred_on")?
            .ok_or_else(|| sqlx::Error::ColumnNotFound("occurred_on".into()))?,
        summary: r.text("summary")?,
        severity: r.opt_text("severity")?,
        status: r.opt_text("status")?,
        satisfaction: r.opt_int("satisfaction")?,
        user_id: r.opt_int("user_id")?,
        version: r.int("version")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

/// A contact's stored values, `$1`–`$13` of `CONTACT_SET` in order.
pub(crate) const CONTACT_SET: &str =
    "name=$1, title=$2, decision_role=$3, landline=$4, mobile=$5, email=$6, id_number=$7, \
is_primary=$8, notes=$9, mobile_idx=$10, email_idx=$11, id_number_idx=$12, pii_key=$13";
pub(crate) const CONTACT_WRITTEN: &str =
    "name, title, decision_role, landline, mobile, email, id_number, is_primary, notes, \
mobile_idx, email_idx, id_number_idx, pii_key";

/// What a contact write stores, whether from validated input or a
/// before-image put back.
pub(crate) struct ContactValues<'a> {
    pub name: &'a str,
    pub title: Option<&'a str>,
    pub decision_role: Option<&'a str>,
    pub landline: Option<&'a str>,
    pub mobile: Option<&'a str>,
    pub email: Option<&'a str>,
    pub id_number: Option<&'a str>,
    pub is_primary: bool,
    pub notes: Option<&'a str>,
}

impl<'a> From<&'a ContactData> for ContactValues<'a> {
    fn from(d: &'a ContactData) -> Self {
        ContactValues {
            name: &d.name,
            title: d.title.as_deref(),
            decision_role: d.decision_role.as_deref(),
            landline: d.landline.as_deref(),
            mobile: d.mobile.as_deref(),
            email: d.email.as_deref(),
            id_number: d.id_number.as_deref(),
            is_primary: d.is_primary,
            notes: d.notes.as_deref(),
        }
    }
}

impl<'a> From<&'a Contact> for ContactValues<'a> {
    fn from(c: &'a Contact) -> Self {
        ContactValues {
            name: &c.name,
            title: c.title.as_deref(),
            decision_role: c.decision_role.as_deref(),
            landline: c.landline.as_deref(),
            mobile: c.mobile.as_deref(),
            email: c.email.as_deref(),
            id_number: c.id_number.as_deref(),
            is_primary: c.is_primary,
            notes: c.notes.as_deref(),
        }
    }
}

/// `CONTACT_SET`'s arguments: the personal fields sealed and indexed.
pub(crate) fn contact_args(cipher: &FieldCipher, v: ContactValues<'_>) -> Vec<Arg> {
    let sealed = cipher.contact_seal().seal(v.mobile, v.email, v.id_number);
    args![
        v.name,
        v.title,
        v.decision_role,
        v.landline,
        sealed.mobile,
        sealed.email,
        sealed.id_number,
        v.is_primary,
        v.notes,
        sealed.mobile_idx,
        sealed.email_idx,
        sealed.id_number_idx,
        sealed.key
    ]
}

/// A contact read back: its personal fields opened.
pub(crate) fn open_contact(cipher: &FieldCipher, mut c: Contact) -> Result<Contact, StoreError> {
    c.mobile = cipher.open_opt(cipher::MOBILE, c.mobile.take())?;
    c.email = cipher.open_opt(cipher::EMAIL, c.email.take())?;
    c.id_number = cipher.open_opt(cipher::ID_NUMBER, c.id_number.take())?;
    Ok(c)
}

pub(crate) fn open_contacts(
    cipher: &FieldCipher,
    contacts: Vec<Contact>,
) -> Result<Vec<Contact>, StoreError> {
    contacts
        .into_iter()
        .map(|c| open_contact(cipher, c))
        .collect()
}

/// A contact as an import's before-image: its personal fields sealed as
/// they are in the table (the image outlives the import's review).
pub(crate) fn sealed_image(
    cipher: &FieldCipher,
    c: &Contact,
) -> Result<serde_json::Value, StoreError> {
    let seal = cipher.contact_seal().seal(
        c.mobile.as_deref(),
        c.email.as_deref(),
        c.id_number.as_deref(),
    );
    let mut image = c.clone();
    image.mobile = seal.mobile;
    image.email = seal.email;
    image.id_number = seal.id_number;
    serde_json::to_value(image).map_err(|e| StoreError::Config(format!("import before-image: {e}")))
}

fn order_args(d: &OrderData) -> Vec<Arg> {
    args![
        d.order_no.clone(),
        d.ordered_on,
        d.amount.get(),
        d.product_line.clone(),
        d.notes.clone()
    ]
}

fn interaction_args(d: &InteractionData) -> Vec<Arg> {
    args![
        d.kind.key(),
        d.occurred_on,
        d.summary.clone(),
        d.severity.map(|s| s.key().to_string()),
        d.status.map(|s| s.key().to_string()),
        d.satisfaction
    ]
}

/// One primary contact per customer: marking one clears the others.
async fn clear_other_primaries(
    exec: &mut impl Exec,
    customer_id: i64,
    keep: i64,
) -> Result<(), StoreError> {
    exec.execute("UPDATE contacts SET is_primary = $1 WHERE customer_id = $2 AND id <> $3 AND is_primary = $4", args![false, customer_id, keep, true]).await?;
    Ok(())
}

/// Inserts a contact inside an open transaction (also used when a customer
/// is created with its contact). `others`: the customer may have other
/// contacts (a new customer has none, so no other primary to clear).
pub(crate) async fn insert_contact_in(
    tx: &mut crate::db::Tx,
    cipher: &FieldCipher,
    customer_id: i64,
    d: &ContactData,
    others: bool,
) -> Result<Contact, StoreError> {
    let now = Utc::now();
    let mut a = contact_args(cipher, d.into());
    a.extend(args![customer_id, now, now]);
    let sql = format!(
        "INSERT INTO contacts ({CONTACT_WRITTEN}, customer_id, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16) RETURNING {CONTACT_COLUMNS}"
    );
    let c = open_contact(cipher, tx.fetch_one(&sql, a, decode_contact).await?)?;
    if c.is_primary && others {
        clear_other_primaries(tx, customer_id, c.id).await?;
    }
    Ok(c)
}

/// Replaces a contact's fields inside an open transaction (the caller checked its version).
pub(crate) async fn update_contact_in(
    tx: &mut crate::db::Tx,
    cipher: &FieldCipher,
    id: i64,
    d: &ContactData,
) -> Result<Contact, StoreError> {
    let mut a = contact_args(cipher, d.into());
    a.extend(args![Utc::now(), id]);
    let sql = format!(
        "UPDATE contacts SET {CONTACT_SET}, updated_at=$14, version = version + 1 WHERE id=$15 RETURNING {CONTACT_COLUMNS}"
    );
    let c = open_contact(cipher, tx.fetch_one(&sql, a, decode_contact).await?)?;
    if c.is_primary {
        clear_other_primaries(tx, c.customer_id, c.id).await?;
    }
    Ok(c)
}

/// Inserts an order inside an open transaction; the caller refreshes the customer's rollups.
pub(crate) async fn insert_order_in(
    tx: &mut crate::db::Tx,
    customer_id: i64,
    d: &OrderData,
) -> Result<Order, StoreError> {
    let now = Utc::now();
    let mut a = args![customer_id];
    a.extend(order_args(d));
    a.extend(args![now, now]);
    let sql = format!(
        "INSERT INTO orders (customer_id, order_no, ordered_on, amount_fen, product_line, notes, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING {ORDER_COLUMNS}"
    );
    tx.fetch_one(&sql, a, decode_order).await
}

/// Replaces an order's fields inside an open transaction; the caller refreshes rollups.
pub(crate) async fn update_order_in(
    tx: &mut crate::db::Tx,
    id: i64,
    d: &OrderData,
) -> Result<Order, StoreError> {
    let mut a = order_args(d);
    a.extend(args![Utc::now(), id]);
    let sql = format!(
        "UPDATE orders SET order_no=$1, ordered_on=$2, amount_fen=$3, product_line=$4, notes=$5, updated_at=$6, version = version + 1 \
         WHERE id=$7 RETURNING {ORDER_COLUMNS}"
    );
    tx.fetch_one(&sql, a, decode_order).await
}

/// Inserts an interaction inside an open transaction; the caller refreshes rollups.
pub(crate) async fn insert_interaction_in(
    tx: &mut crate::db::Tx,
    customer_id: i64,
    d: &InteractionData,
    user_id: Option<i64>,
) -> Result<Interaction, StoreError> {
    let now = Utc::now();
    let mut a = args![customer_id];
    a.extend(interaction_args(d));
    a.extend(args![user_id, now, now]);
    let sql = format!(
        "INSERT INTO interactions (customer_id, kind, occurred_on, summary, severity, status, satisfaction, user_id, created_at, updated_at) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) RETURNING {INTERACTION_COLUMNS}"
    );
    tx.fetch_one(&sql, a, decode_interaction).await
}

/// The contacts of `customer_ids`, in id order.
pub(crate) async fn contacts_of(
    exec: &mut impl Exec,
    cipher: &FieldCipher,
    customer_ids: &[i64],
) -> Result<Vec<Contact>, StoreError> {
    let sql =
        format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE customer_id IN ({{}}) ORDER BY id");
    open_contacts(
        cipher,
        crate::db::fetch_in(exec, &sql, customer_ids, decode_contact).await?,
    )
}

/// The orders of `customer_ids`, in id order.
pub(crate) async fn orders_of(
    exec: &mut impl Exec,
    customer_ids: &[i64],
) -> Result<Vec<Order>, StoreError> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE customer_id IN ({{}}) ORDER BY id");
    crate::db::fetch_in(exec, &sql, customer_ids, decode_order).await
}

/// The interactions of `customer_ids`, in id order.
pub(crate) async fn interactions_of(
    exec: &mut impl Exec,
    customer_ids: &[i64],
) -> Result<Vec<Interaction>, StoreError> {
    let sql = format!(
        "SELECT {INTERACTION_COLUMNS} FROM interactions WHERE customer_id IN ({{}}) ORDER BY id"
    );
    crate::db::fetch_in(exec, &sql, customer_ids, decode_interaction).await
}

/// A new record written with its transaction still open
/// ([`Store::insert_order_open`], [`Store::insert_interaction_open`]) and
/// its customer's facts as written there. Its change feed entry is written
/// when it is committed, or with the classes of a [`ClassWriter`] that
/// takes the transaction over (one statement for both).
pub struct Opened<T> {
    tx: Tx,
    record: T,
    customer_id: i64,
    facts: Facts,
}

impl<T> Opened<T> {
    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// The customer's facts as written (rollups, orders, interactions),
    /// taken out.
    pub fn take_facts(&mut self) -> Facts {
        std::mem::take(&mut self.facts)
    }

    /// Records the write in the change feed and commits.
    pub async fn commit(mut self) -> Result<T, StoreError> {
        crate::feed::record(&mut self.tx, FeedKind::Facts, &[self.customer_id]).await?;
        self.tx.commit().await?;
        Ok(self.record)
    }

    /// A class writer in this transaction; its feed entries go in with the
    /// write's at [`ClassWriter::finish`].
    pub fn class_writer(
        self,
        store: &Store,
        as_of: NaiveDate,
        by: Option<i64>,
    ) -> (ClassWriter, T) {
        let writer =
            ClassWriter::within(store, self.tx, as_of, by).after_facts_of(self.customer_id);
        (writer, self.record)
    }
}

impl Store {
    // ---- contacts ----

    pub async fn insert_contact(
        &self,
        customer_id: i64,
        d: &ContactData,
    ) -> Result<Contact, StoreError> {
        let mut tx = self.db.begin().await?;
        let c = insert_contact_in(&mut tx, &self.cipher, customer_id, d, true).await?;
        tx.commit().await?;
        Ok(c)
    }

    /// The contacts with these ids (those that exist), opened, in id order.
    pub async fn contacts_in(&self, ids: &[i64]) -> Result<Vec<Contact>, StoreError> {
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id IN ({{}}) ORDER BY id");
        let rows = crate::db::fetch_in(&mut self.db.clone(), &sql, ids, decode_contact).await?;
        open_contacts(&self.cipher, rows)
    }

    /// One customer's contacts, opened, in id order.
    pub async fn contacts_of_customer(&self, customer_id: i64) -> Result<Vec<Contact>, StoreError> {
        contacts_of(&mut self.db.clone(), &self.cipher, &[customer_id]).await
    }

    pub async fn contact(&self, id: i64) -> Result<Contact, StoreError> {
        let sql = format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE id = $1");
        let c = self
            .db
            .clone()
            .fetch_one(&sql, args![id], decode_contact)
            .await?;
        open_contact(&self.cipher, c)
    }

    pub async fn update_contact(
        &self,
        id: i64,
        expected_version: i64,
        d: &ContactData,
    ) -> Result<Contact, StoreError> {
        let mut tx = self.db.begin().await?;
        check_version(&mut tx, "contacts", id, expected_version).await?;
        let c = update_contact_in(&mut tx, &self.cipher, id, d).await?;
        tx.commit().await?;
        Ok(c)
    }

    pub async fn delete_contact(&self, id: i64, expected_version: i64) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        check_version(&mut tx, "contacts", id, expected_version).await?;
        tx.execute("DELETE FROM contacts WHERE id = $1", args![id])
            .await?;
        tx.commit().await
    }

    pub async fn list_contacts(
        &self,
        q: &ListQuery,
        scope: &ScopeFilter,
    ) -> Result<Page<Contact>, StoreError> {
        let spec = ListSpec {
            table: "contacts",
            columns: CONTACT_COLUMNS,
            search: &["name", "title"],
            scope,
            scope_via_customer: true,
            only: None,
        };
        let mut page = run_list(&mut self.db.clone(), &spec, q, false, decode_contact).await?;
        page.items = open_contacts(&self.cipher, page.items)?;
        Ok(page)
    }

    // ---- orders ----

    pub async fn insert_order(&self, customer_id: i64, d: &OrderData) -> Result<Order, StoreError> {
        self.insert_order_open(customer_id, d).await?.commit().await
    }

    /// [`insert_order`](Self::insert_order) with the transaction left open
    /// for the caller to add to and commit (the customer's re-evaluation).
    pub async fn insert_order_open(
        &self,
        customer_id: i64,
        d: &OrderData,
    ) -> Result<Opened<Order>, StoreError> {
        let mut tx = self.db.begin().await?;
        let record = insert_order_in(&mut tx, customer_id, d).await?;
        self.left_open(tx, customer_id, record).await
    }

    /// A new record of `customer_id` written in `tx`: the customer's
    /// rollups refreshed there, the transaction left open.
    async fn left_open<T>(
        &self,
        mut tx: Tx,
        customer_id: i64,
        record: T,
    ) -> Result<Opened<T>, StoreError> {
        let facts = Self::rollups_returning_facts(&mut tx, customer_id, self.today()).await?;
        Ok(Opened {
            tx,
            record,
            customer_id,
            facts,
        })
    }

    pub async fn order(&self, id: i64) -> Result<Order, StoreError> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
        self.db
            .clone()
            .fetch_one(&sql, args![id], decode_order)
            .await
    }

    pub async fn update_order(
        &self,
        id: i64,
        expected_version: i64,
        d: &OrderData,
    ) -> Result<Order, StoreError> {
        let mut tx = self.db.begin().await?;
        check_version(&mut tx, "orders", id, expected_version).await?;
        let o = update_order_in(&mut tx, id, d).await?;
        Self::refresh_customer_rollups(&mut tx, o.customer_id, self.today()).await?;
        tx.commit().await?;
        Ok(o)
    }

    pub async fn delete_order(&self, id: i64, expected_version: i64) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        check_version(&mut tx, "orders", id, expected_version).await?;
        let customer_id = tx
            .fetch_one(
                "SELECT customer_id AS n FROM orders WHERE id = $1",
                args![id],
                crate::db::decode_n,
            )
            .await?;
        tx.execute("DELETE FROM orders WHERE id = $1", args![id])
            .await?;
        Self::refresh_customer_rollups(&mut tx, customer_id, self.today()).await?;
        tx.commit().await
    }

    pub async fn list_orders(
        &self,
        q: &ListQuery,
        scope: &ScopeFilter,
    ) -> Result<Page<Order>, StoreError> {
        let spec = ListSpec {
            table: "orders",
            columns: ORDER_COLUMNS,
            search: &["order_no", "product_line"],
            scope,
            scope_via_customer: true,
            only: None,
        };
        run_list(&mut self.db.clone(), &spec, q, false, decode_order).await
    }

    // ---- interactions ----

    pub async fn insert_interaction(
        &self,
        customer_id: i64,
        d: &InteractionData,
        user_id: Option<i64>,
    ) -> Result<Interaction, StoreError> {
        self.insert_interaction_open(customer_id, d, user_id)
            .await?
            .commit()
            .await
    }

    /// [`insert_interaction`](Self::insert_interaction) with the
    /// transaction left open, as [`insert_order_open`](Self::insert_order_open).
    pub async fn insert_interaction_open(
        &self,
        customer_id: i64,
        d: &InteractionData,
        user_id: Option<i64>,
    ) -> Result<Opened<Interaction>, StoreError> {
        let mut tx = self.db.begin().await?;
        let record = insert_interaction_in(&mut tx, customer_id, d, user_id).await?;
        self.left_open(tx, customer_id, record).await
    }

    pub async fn interaction(&self, id: i64) -> Result<Interaction, StoreError> {
        let sql = format!("SELECT {INTERACTION_COLUMNS} FROM interactions WHERE id = $1");
        self.db
            .clone()
            .fetch_one(&sql, args![id], decode_interaction)
            .await
    }

    pub async fn update_interaction(
        &self,
        id: i64,
        expected_version: i64,
        d: &InteractionData,
    ) -> Result<Interaction, StoreError> {
        let mut tx = self.db.begin().await?;
        check_version(&mut tx, "interactions", id, expected_version).await?;
        let mut a = interaction_args(d);
        a.extend(args![Utc::now(), id]);
        let sql = format!(
            "UPDATE interactions SET kind=$1, occurred_on=$2, summary=$3, severity=$4, status=$5, satisfaction=$6, updated_at=$7, \
             version = version + 1 WHERE id=$8 RETURNING {INTERACTION_COLUMNS}"
        );
        let i = tx.fetch_one(&sql, a, decode_interaction).await?;
        Self::refresh_customer_rollups(&mut tx, i.customer_id, self.today()).await?;
        tx.commit().await?;
        Ok(i)
    }

    pub async fn delete_interaction(
        &self,
        id: i64,
        expected_version: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        check_version(&mut tx, "interactions", id, expected_version).await?;
        let customer_id = tx
            .fetch_one(
                "SELECT customer_id AS n FROM interactions WHERE id = $1",
                args![id],
                crate::db::decode_n,
            )
            .await?;
        tx.execute("DELETE FROM interactions WHERE id = $1", args![id])
            .await?;
        Self::refresh_customer_rollups(&mut tx, customer_id, self.today()).await?;
        tx.commit().await
    }

    pub async fn list_interactions(
        &self,
        q: &ListQuery,
        scope: &ScopeFilter,
    ) -> Result<Page<Interaction>, StoreError> {
        let spec = ListSpec {
            table: "interactions",
            columns: INTERACTION_COLUMNS,
            search: &["summary"],
            scope,
            scope_via_customer: true,
            only: None,
        };
        run_list(&mut self.db.clone(), &spec, q, false, decode_interaction).await
    }
}
