//! Writing the audit log without holding up requests: entries go to a
//! channel and one task per process appends them in batches (kehu-store
//! chains them). Who, what, to what, when, from where; never a password or
//! a token, and personal data only masked.

use crate::auth::CurrentUser;
use chrono::Utc;
use kehu_store::audit::NewAudit;
use kehu_store::Store;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

enum Message {
    Entry(NewAudit),
    /// Answered once everything sent before it is stored.
    Flush(oneshot::Sender<()>),
}

/// The sending side, cheap to clone.
#[derive(Clone)]
pub struct Auditor {
    tx: mpsc::UnboundedSender<Message>,
}

impl Auditor {
    /// Starts the writer of this process.
    pub fn spawn(store: Store) -> Auditor {
        let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = Vec::new();
                let mut waiting = Vec::new();
                let mut next = Some(first);
                while let Some(m) = next.take() {
                    match m {
                        Message::Entry(e) => batch.push(e),
                        Message::Flush(done) => waiting.push(done),
                    }
                    if batch.len() < 500 {
                        next = rx.try_recv().ok();
                    }
                }
                // A database that is briefly unavailable: try again, then say what was lost.
                let mut attempt = 0;
                while let Err(e) = store.append_audit(&batch).await {
                    attempt += 1;
                    if attempt == 5 {
                        tracing::error!(error = %e, entries = batch.len(), "audit entries could not be written");
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(200 * attempt)).await;
                }
                for done in waiting {
                    let _ = done.send(());
                }
            }
        });
        Auditor { tx }
    }

    pub fn record(&self, entry: NewAudit) {
        if self.tx.send(Message::Entry(entry)).is_err() {
            tracing::error!("the audit writer has stopped");
        }
    }

    /// Waits until every entry recorded so far is stored.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

/// An entry by the user `actor_id` (or the system) without a request, now.
pub fn by(actor_id: Option<i64>, action: &str, target: String, detail: Value) -> NewAudit {
    NewAudit {
        at: Utc::now(),
        actor_id,
        action: action.to_string(),
        target,
        detail,
        client: None,
    }
}

/// An entry by `user` (or the system), now.
/// A state-changing request without the session's CSRF token (target: method and path).
pub const CSRF_REFUSED: &str = "csrf.refused";
/// A customer (or a record under it) asked for beyond the caller's rights
/// or scope (target: the customer; detail: the right and how it was answered).
pub const ACCESS_DENIED: &str = "access.denied";

pub fn entry(user: Option<&CurrentUser>, action: &str, target: String, detail: Value) -> NewAudit {
    NewAudit {
        at: Utc::now(),
        actor_id: user.map(|u| u.user.id),
        action: action.to_string(),
        target,
        detail,
        client: user.and_then(|u| u.client.clone()),
    }
}

/// The target of every entry about a user account: its id (a name can
/// change, and a name of digits would read as another account's id).
pub fn user_target(id: i64) -> String {
    format!("user:{id}")
}

/// The target of a sign-in attempt under a name no account has (or before
/// the account is looked up): the name as typed.
pub fn login_target(name: &str) -> String {
    format!("login:{}", name.trim())
}

/// The fields that differ between two records, `{field: [before, after]}`;
/// bookkeeping (versions, times, derived rollups) left out.
pub fn changes<T: serde::Serialize>(before: &T, after: &T) -> Value {
    const SKIP: &[&str] = &[
        "version",
        "created_at",
        "updated_at",
        "purchase_12m_fen",
        "order_count",
        "last_order_on",
        "last_interaction_on",
        "complaints_365d",
    ];
    let (Ok(Value::Object(b)), Ok(Value::Object(a))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return Value::Null;
    };
    let mut out = serde_json::Map::new();
    for (k, v) in &a {
        let old = b.get(k).cloned().unwrap_or(Value::Null);
        if !SKIP.contains(&k.as_str()) && old != *v {
            out.insert(k.clone(), Value::Array(vec![old, v.clone()]));
        }
    }
    Value::Object(out)
}

/// The audit entries of writes to customers (company data: kept as is).
pub mod customer {
    use super::changes;
    use crate::auth::CurrentUser;
    use crate::AppState;
    use kehu_store::model::Customer;
    use serde_json::json;

    fn target(c: &Customer) -> String {
        format!("customer:{}", c.id)
    }

    pub fn created(state: &AppState, user: &CurrentUser, c: &Customer) {
        state.audit(
            Some(user),
            "customer.create",
            target(c),
            json!({"code": c.code, "name": c.name}),
        );
    }

    /// Personal custom fields (`defs` with a mask) are logged masked.
    pub fn changed(
        state: &AppState,
        user: &CurrentUser,
        before: &Customer,
        after: &Customer,
        defs: &[kehu_core::custom_field::CustomFieldDef],
    ) {
        let mut changed = changes(before, after);
        crate::privacy::mask_custom_in_changes(defs, &mut changed);
        state.audit(
            Some(user),
            "customer.update",
            target(after),
            json!({ "changed": changed }),
        );
    }

    pub fn deleted(state: &AppState, user: &CurrentUser, c: &Customer) {
        state.audit(
            Some(user),
            "customer.delete",
            target(c),
            json!({"code": c.code, "name": c.name}),
        );
    }
}
