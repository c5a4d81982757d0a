//! Notifications beyond the inbox (issue 8): the `deliveries` job sends
//! each queued e-mail (through `KEHU_SMTP_URL`) and webhook (a signed
//! POST, see kehu-core `delivery`), and records every try; a failure is
//! retried with a doubling wait (1 min … 6 h) until it has failed
//! `MAX_ATTEMPTS` times, when it is marked failed and stays listed with
//! its last error. Admins manage the webhooks and watch the deliveries.

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::AppState;
use chrono::{Duration, Utc};
use kehu_core::delivery::{
    backoff_minutes, payload, signature, Notice, WebhookInput, MAX_ATTEMPTS,
};
use kehu_core::role::Permission;
use kehu_core::Reason;
use kehu_store::deliveries::{Delivery, Webhook};
use serde::Serialize;
use utoipa::ToSchema;

/// The `job_runs` name of the delivery job.
pub const DELIVERIES_JOB: &str = "deliveries";
/// Deliveries one run sends at most.
const BATCH: i64 = 200;

/// User administrators manage webhooks and read the outbox.
pub fn may_manage(user: &CurrentUser) -> Result<(), ApiError> {
    user.require(Permission::UserAdmin).map(|_| ())
}

/// A webhook as created: its secret shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub webhook: Webhook,
    pub secret: String,
}

pub async fn create_webhook(
    state: &AppState,
    user: &CurrentUser,
    input: &WebhookInput,
) -> Result<CreatedWebhook, ApiError> {
    may_manage(user)?;
    let d = input.validate()?;
    let secret = d.secret.clone().unwrap_or_else(|| {
        use rand::RngCore;
        let mut bytes = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut bytes);
        hex::encode(bytes)
    });
    let w = state
        .store
        .create_webhook(&d.name, &d.url, d.format, &secret, user.user.id)
        .await?;
    state.audit(
        Some(user),
        "create",
        format!("webhook:{}", w.id),
        serde_json::json!({"after": &w}),
    );
    Ok(CreatedWebhook { webhook: w, secret })
}

pub async fn stop_webhook(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
) -> Result<Webhook, ApiError> {
    may_manage(user)?;
    let w = state.store.stop_webhook(id).await?;
    state.audit(
        Some(user),
        "update",
        format!("webhook:{id}"),
        serde_json::json!({"active": false}),
    );
    Ok(w)
}

/// Sets a user's e-mail address for notifications (None: inbox only):
/// the user themself or a user administrator.
pub async fn set_email(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    email: Option<&str>,
) -> Result<Option<String>, ApiError> {
    if user.user.id != id {
        may_manage(user)?;
    }
    let email = match email.map(str::trim).filter(|e| !e.is_empty()) {
        None => None,
        Some(e) => Some(
            kehu_core::ident::Email::parse(e)
                .map_err(|r| ApiError::field("email", r))?
                .as_str()
                .to_string(),
        ),
    };
    state.store.set_user_email(id, email.as_deref()).await?;
    state.audit(
        Some(user),
        "update",
        crate::audit::user_target(id),
        serde_json::json!({"email": email.is_some()}),
    );
    Ok(email)
}

/// What one run did.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct RunSummary {
    pub sent: u64,
    pub retrying: u64,
    pub failed: u64,
    /// E-mails waiting while no mail server is configured.
    pub waiting_for_mail: u64,
}

/// Sends one webhook delivery; the error says what went wrong.
async fn post(client: &reqwest::Client, hook: &Webhook, d: &Delivery) -> Result<(), String> {
    let created = d.created_at.to_rfc3339();
    let notice = Notice {
        id: d.notification_id,
        kind: &d.kind,
        user: &d.user,
        text_zh: &d.text_zh,
        text_en: &d.text_en,
        created_at: &created,
    };
    let body = serde_json::to_vec(&payload(hook.format, &notice)).map_err(|e| e.to_string())?;
    let timestamp = Utc::now().timestamp();
    let response = client
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("x-kehu-timestamp", timestamp.to_string())
        .header(
            "x-kehu-signature",
            signature(&hook.secret, timestamp, &body),
        )
        .header("x-kehu-delivery", d.id.to_string())
        .body(body)
        .send()
        .await
        // Bots take their key in the URL (WeCom's `?key=`): the error names
        // the bot, never the URL, as it goes to the log and the list.
        .map_err(|e| format!("POST {}: {}", hook.name, e.without_url()))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        let text: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        Err(format!("HTTP {}: {text}", status.as_u16()))
    }
}

/// Sends what is due.
pub async fn run(state: &AppState) -> Result<RunSummary, ApiError> {
    let mut summary = RunSummary::default();
    let due = state.store.due_deliveries(Utc::now(), BATCH).await?;
    if due.is_empty() {
        return Ok(summary);
    }
    let hooks = state.store.webhooks().await?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| ApiError::Internal(format!("HTTP client: {e}")))?;
    for d in due {
        let outcome = match d.channel.as_str() {
            "email" => {
                let Some(mail) = &state.settings.mail else {
                    summary.waiting_for_mail += 1;
                    continue;
                };
                let subject = format!("kehu：{}", d.text_zh);
                let body = format!("{}\n{}\n", d.text_zh, d.text_en);
                crate::mail::send(mail, std::slice::from_ref(&d.target), &subject, &body, None)
                    .await
            }
            _ => match hooks.iter().find(|h| h.id.to_string() == d.target) {
                Some(h) if h.active => post(&client, h, &d).await,
                _ => Err("webhook stopped or deleted / 机器人已停用".into()),
            },
        };
        match outcome {
            Ok(()) => {
                state.store.record_delivery(d.id, None, None).await?;
                summary.sent += 1;
            }
            Err(e) => {
                let tries = d.attempts + 1;
                let retry_at = (tries < MAX_ATTEMPTS)
                    .then(|| Utc::now() + Duration::minutes(backoff_minutes(tries)));
                tracing::warn!(delivery = d.id, error = %e, tries, "delivery failed");
                state
                    .store
                    .record_delivery(d.id, Some(&e), retry_at)
                    .await?;
                if retry_at.is_some() {
                    summary.retrying += 1;
                } else {
                    summary.failed += 1;
                }
            }
        }
    }
    Ok(summary)
}

/// The webhooks and the latest deliveries (`status`: pending | sent | failed).
#[derive(Debug, Serialize, ToSchema)]
pub struct Outbox {
    #[schema(value_type = Vec<Object>)]
    pub webhooks: Vec<Webhook>,
    #[schema(value_type = Vec<Object>)]
    pub deliveries: Vec<Delivery>,
    pub mail_configured: bool,
}

pub async fn outbox(
    state: &AppState,
    user: &CurrentUser,
    status: Option<&str>,
) -> Result<Outbox, ApiError> {
    may_manage(user)?;
    const STATUSES: [&str; 3] = ["pending", "sent", "failed"];
    if status.is_some_and(|s| !STATUSES.contains(&s)) {
        return Err(ApiError::field(
            "status",
            Reason::UnknownOption {
                allowed: STATUSES.iter().map(|s| s.to_string()).collect(),
            },
        ));
    }
    Ok(Outbox {
        webhooks: state.store.webhooks().await?,
        deliveries: state.store.deliveries(status, 200).await?,
        mail_configured: state.settings.mail.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_post_does_not_name_the_bots_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let hook = Webhook {
            id: 1,
            name: "销售群".into(),
            url: format!("http://127.0.0.1:{port}/cgi-bin/webhook/send?key=bot-secret-693a"),
            format: kehu_core::delivery::WebhookFormat::Generic,
            secret: "s".repeat(32),
            active: true,
            created_at: Utc::now(),
        };
        let d = Delivery {
            id: 1,
            notification_id: 1,
            channel: "webhook".into(),
            target: "1".into(),
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: Utc::now(),
            last_error: None,
            sent_at: None,
            created_at: Utc::now(),
            kind: "assigned".into(),
            user: "rep1".into(),
            text_zh: "新任务".into(),
            text_en: "a new task".into(),
        };
        let e = post(&reqwest::Client::new(), &hook, &d)
            .await
            .expect_err("nobody listens");
        assert!(e.starts_with("POST 销售群: "), "{e}");
        assert!(!e.contains("bot-secret") && !e.contains("127.0.0.1"), "{e}");
    }
}
