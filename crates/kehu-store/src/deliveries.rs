//! The delivery outbox (migration 21): each notification also goes to its
//! user's e-mail address (when set) and to every active webhook, queued in
//! the notification's own transaction; the `deliveries` job sends what is
//! due and records each try. Users' e-mail addresses and the webhooks live
//! here too.
//!
//! *Invariant*: nothing is lost — a delivery is `pending` until it is sent
//! or has failed `MAX_ATTEMPTS` times (`failed`, kept with its last error).

use crate::db::{Exec, RowGet};
use crate::error::StoreError;
use crate::{args, Store};
use chrono::{DateTime, Utc};
use kehu_core::delivery::WebhookFormat;
use kehu_core::{Reason, ValidationErrors};
use serde::Serialize;

/// Queues the deliveries of notification `id` (inside its transaction).
pub(crate) async fn enqueue(
    exec: &mut impl Exec,
    notification: i64,
    user_id: i64,
) -> Result<(), StoreError> {
    let now = Utc::now();
    exec.execute(
        "INSERT INTO deliveries (notification_id, channel, target, status, attempts, next_attempt_at, created_at) \
         SELECT $1, 'email', email, 'pending', 0, $2, $2 FROM users WHERE id = $3 AND email IS NOT NULL AND email <> ''",
        args![notification, now, user_id],
    )
    .await?;
    exec.execute(
        "INSERT INTO deliveries (notification_id, channel, target, status, attempts, next_attempt_at, created_at) \
         SELECT $1, 'webhook', CAST(id AS TEXT), 'pending', 0, $2, $2 FROM webhooks WHERE active = $3",
        args![notification, now, true],
    )
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Webhook {
    pub id: i64,
    pub name: String,
    /// Shown (listed, audited) with its key starred: see `redacted_url`.
    #[serde(serialize_with = "redacted_url")]
    pub url: String,
    pub format: WebhookFormat,
    #[serde(skip)]
    pub secret: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

fn redacted_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    use kehu_core::text::{redacted_url, UrlSecrets};
    s.serialize_str(&redacted_url(url, UrlSecrets::Credentials))
}

/// A delivery as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub notification_id: i64,
    pub channel: String,
    pub target: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The notification's kind and text, and whom it is for.
    pub kind: String,
    pub user: String,
    pub text_zh: String,
    pub text_en: String,
}

const WEBHOOK_COLUMNS: &str = "id, name, url, format, secret, active, created_at";
const DELIVERY_COLUMNS: &str = "d.id, d.notification_id, d.channel, d.target, d.status, d.attempts, \
     d.next_attempt_at, d.last_error, d.sent_at, d.created_at, n.kind, n.text_zh, n.text_en, u.username";

fn decode_webhook(r: &dyn RowGet) -> Result<Webhook, sqlx::Error> {
    Ok(Webhook {
        id: r.int("id")?,
        name: r.text("name")?,
        url: r.text("url")?,
        format: WebhookFormat::parse(&r.text("format")?)
            .map_err(|_| sqlx::Error::Decode("unknown webhook format".into()))?,
        secret: r.text("secret")?,
        active: r.boolean("active")?,
        created_at: r.time("created_at")?,
    })
}

fn decode_delivery(r: &dyn RowGet) -> Result<Delivery, sqlx::Error> {
    Ok(Delivery {
        id: r.int("id")?,
        notification_id: r.int("notification_id")?,
        channel: r.text("channel")?,
        target: r.text("target")?,
        status: r.text("status")?,
        attempts: r.int("attempts")?,
        next_attempt_at: r.time("next_attempt_at")?,
        last_error: r.opt_text("last_error")?,
        sent_at: r.opt_time("sent_at")?,
        created_at: r.time("created_at")?,
        kind: r.text("kind")?,
        user: r.text("username")?,
        text_zh: r.text("text_zh")?,
        text_en: r.text("text_en")?,
    })
}

impl Store {
    /// A user's address for notifications (None: inbox only).
    pub async fn set_user_email(
        &self,
        user_id: i64,
        email: Option<&str>,
    ) -> Result<(), StoreError> {
        let n = self
            .db
            .clone()
            .execute(
                "UPDATE users SET email = $1 WHERE id = $2",
                args![email, user_id],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn user_email(&self, user_id: i64) -> Result<Option<String>, StoreError> {
        self.db
            .clone()
            .fetch_optional(
                "SELECT email FROM users WHERE id = $1",
                args![user_id],
                |r: &dyn RowGet| r.opt_text("email"),
            )
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// A new webhook; a name in use is refused on `name`.
    pub async fn create_webhook(
        &self,
        name: &str,
        url: &str,
        format: WebhookFormat,
        secret: &str,
        by: i64,
    ) -> Result<Webhook, StoreError> {
        let sql = format!(
            "INSERT INTO webhooks (name, url, format, secret, active, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {WEBHOOK_COLUMNS}"
        );
        self.db
            .clone()
            .fetch_one(
                &sql,
                args![name, url, format.key(), secret, true, by, Utc::now()],
                decode_webhook,
            )
            .await
            .map_err(|e| match e.unique_violation() {
                Some(_) => StoreError::Invalid(ValidationErrors::single("name", Reason::Duplicate)),
                None => e,
            })
    }

    pub async fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        let sql = format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY active DESC, id");
        self.db
            .clone()
            .fetch_all(&sql, vec![], decode_webhook)
            .await
    }

    /// Stops a webhook: nothing new is queued for it; what is queued fails.
    pub async fn stop_webhook(&self, id: i64) -> Result<Webhook, StoreError> {
        let sql =
            format!("UPDATE webhooks SET active = $1 WHERE id = $2 RETURNING {WEBHOOK_COLUMNS}");
        self.db
            .clone()
            .fetch_optional(&sql, args![false, id], decode_webhook)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Pending deliveries due by `now`, oldest first.
    pub async fn due_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN notifications n ON n.id = d.notification_id \
             JOIN users u ON u.id = n.user_id WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
             ORDER BY d.next_attempt_at, d.id LIMIT $2"
        );
        self.db
            .clone()
            .fetch_all(&sql, args![now, limit], decode_delivery)
            .await
    }

    /// The latest deliveries (optionally of one status), newest first.
    pub async fn deliveries(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN notifications n ON n.id = d.notification_id \
             JOIN users u ON u.id = n.user_id WHERE ($1 = '' OR d.status = $1) ORDER BY d.id DESC LIMIT $2"
        );
        self.db
            .clone()
            .fetch_all(&sql, args![status.unwrap_or(""), limit], decode_delivery)
            .await
    }

    /// Records a try: sent (`error` None), or failed with the next try at
    /// `retry_at` (None: given up).
    pub async fn record_delivery(
        &self,
        id: i64,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let (status, next, sent_at) = match (error, retry_at) {
            (None, _) => ("sent", now, Some(now)),
            (Some(_), Some(at)) => ("pending", at, None),
            (Some(_), None) => ("failed", now, None),
        };
        self.db
            .clone()
            .execute(
                "UPDATE deliveries SET status = $1, attempts = attempts + 1, next_attempt_at = $2, \
                 last_error = $3, sent_at = $4 WHERE id = $5",
                args![status, next, error, sent_at, id],
            )
            .await?;
        Ok(())
    }
}
