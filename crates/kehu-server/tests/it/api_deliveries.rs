//! Notifications beyond the inbox: a task assigned to a rep also goes to
//! the rep's e-mail (a local SMTP sink) and to a signed webhook; a webhook
//! that fails is retried with backoff and, past the last try, kept as
//! failed with its error; bad webhooks and rights.

use crate::both_backends;
use crate::helpers::{first_error, ok_json, problem, smtp_sink, spawn_app_with_mail, Session};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use kehu_store::db::{Arg, Exec};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

both_backends!(notifications_go_out_by_mail_and_signed_webhook);

/// What the receiver got: (signature, timestamp, body), and the status it answers.
#[derive(Default)]
struct Receiver {
    got: Vec<(String, String, Vec<u8>)>,
    answer: u16,
}

async fn receiver() -> (u16, Arc<Mutex<Receiver>>) {
    let state = Arc::new(Mutex::new(Receiver {
        answer: 500,
        ..Default::default()
    }));
    let kept = state.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let kept = kept.clone();
            async move {
                let h = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                let mut r = kept.lock().expect("lock");
                r.got
                    .push((h("x-kehu-signature"), h("x-kehu-timestamp"), body.to_vec()));
                AxumStatus::from_u16(r.answer).unwrap_or(AxumStatus::OK)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, state)
}

async fn run_deliveries(admin: &Session) -> Value {
    ok_json(admin.post("/api/v1/jobs/deliveries/run", json!({})).await).await["summary"].clone()
}

async fn notifications_go_out_by_mail_and_signed_webhook(backend: kehu_store::Backend) {
    let (smtp_port, sink) = smtp_sink().await;
    let mail = kehu_server::mail::MailSettings::parse(
        &format!("smtp://127.0.0.1:{smtp_port}"),
        "kehu@example.com",
    )
    .expect("mail");
    let app = spawn_app_with_mail(backend, Some(mail)).await;
    let admin = app.token("admin1", "admin", None).await;
    let rep = app.token("rep1", "sales_rep", Some("华东")).await;
    let (hook_port, hook) = receiver().await;

    // The rep's address (set by the rep); the bot (set by the admin).
    let r = ok_json(
        rep.put_json(
            &format!("/api/v1/users/{}/email", rep.user_id),
            json!({"email": "Rep1@Example.com"}),
        )
        .await,
    )
    .await;
    assert_eq!(r["email"], "rep1@example.com");
    let other = admin.user_id;
    let r = rep
        .put_json(
            &format!("/api/v1/users/{other}/email"),
            json!({"email": "x@example.com"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "not someone else's");
    let p = problem(
        rep.put_json(
            &format!("/api/v1/users/{}/email", rep.user_id),
            json!({"email": "rep1@"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "email");
    let created = ok_json(
        admin
            .post(
                "/api/v1/webhooks",
                json!({"name": "销售群", "url": format!("http://127.0.0.1:{hook_port}/hook?key=bot-key-7f3e")}),
            )
            .await,
    )
    .await;
    // The URL carries the bot's key: shown starred (the posts still reach it).
    assert_eq!(
        created["url"],
        format!("http://127.0.0.1:{hook_port}/hook?key=***"),
        "{created}"
    );
    let secret = created["secret"]
        .as_str()
        .expect("secret shown once")
        .to_string();
    assert_eq!(secret.len(), 48);
    for (body, field) in [
        (json!({"name": "x", "url": "ftp://example.com"}), "url"),
        (
            json!({"name": "x", "url": "https://example.com", "format": "slack"}),
            "format",
        ),
        (
            json!({"name": "销售群", "url": "https://example.com"}),
            "name",
        ),
        (
            json!({"name": "y", "url": "https://example.com", "secret": "short"}),
            "secret",
        ),
    ] {
        let p = problem(
            admin.post("/api/v1/webhooks", body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(first_error(&p).0, field, "{body}: {p}");
    }
    assert_eq!(
        rep.post(
            "/api/v1/webhooks",
            json!({"name": "z", "url": "https://example.com"})
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        rep.get("/api/v1/deliveries").await.status(),
        StatusCode::FORBIDDEN
    );

    // A task for the rep: notified in the inbox, by e-mail and to the bot.
    let c = admin
        .customer("通知客户", json!({"owner_id": rep.user_id}))
        .await;
    let r = admin
        .post(
            "/api/v1/tasks",
            json!({"customer": c["code"], "title": "回访通知客户", "due_on": app.store.today().to_string(), "owner_id": rep.user_id}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let first = run_deliveries(&admin).await;
    assert_eq!(
        (first["sent"].clone(), first["retrying"].clone()),
        (json!(1), json!(1)),
        "{first}"
    );
    let mails = sink.lock().expect("lock").clone();
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("RCPT TO:<rep1@example.com>"),
        "{}",
        mails[0]
    );
    // The bot answered 500: kept pending with the error, retried later.
    let o = ok_json(admin.get("/api/v1/deliveries?status=pending").await).await;
    let d = &o["deliveries"][0];
    assert_eq!(
        (d["channel"].clone(), d["attempts"].clone()),
        (json!("webhook"), json!(1))
    );
    assert!(
        d["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("HTTP 500")),
        "{d}"
    );
    let again = run_deliveries(&admin).await;
    assert_eq!(again["retrying"], 0, "not due yet: {again}");
    assert_eq!(hook.lock().expect("lock").got.len(), 1);
    // Once due and the bot is back: sent, signed with the secret.
    let mut db = app.store.db.clone();
    let past = || Arg::from(chrono::Utc::now() - chrono::Duration::minutes(5));
    db.execute("UPDATE deliveries SET next_attempt_at = $1", vec![past()])
        .await
        .expect("due");
    hook.lock().expect("lock").answer = 200;
    let third = run_deliveries(&admin).await;
    assert_eq!(third["sent"], 1, "{third}");
    let (sig, ts, body) = hook.lock().expect("lock").got[1].clone();
    let ts: i64 = ts.parse().expect("timestamp");
    assert_eq!(sig, kehu_core::delivery::signature(&secret, ts, &body));
    let sent: Value = serde_json::from_slice(&body).expect("json body");
    assert_eq!(sent["kind"], "assigned");
    assert_eq!(sent["user"], "rep1");

    // A bot that keeps failing: after the last try the delivery is failed, with its error.
    hook.lock().expect("lock").answer = 503;
    let r = admin
        .post(
            "/api/v1/tasks",
            json!({"customer": c["code"], "title": "第二个任务", "due_on": app.store.today().to_string(), "owner_id": rep.user_id}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    db.execute(
        "UPDATE deliveries SET attempts = $1 WHERE status = 'pending' AND channel = 'webhook'",
        vec![Arg::from(kehu_core::delivery::MAX_ATTEMPTS - 1)],
    )
    .await
    .expect("attempts");
    let last = run_deliveries(&admin).await;
    assert_eq!(last["failed"], 1, "{last}");
    let o = ok_json(admin.get("/api/v1/deliveries?status=failed").await).await;
    assert!(
        o["deliveries"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("503")),
        "{o}"
    );
    let p = problem(
        admin.get("/api/v1/deliveries?status=lost").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "status");
    // A stopped bot gets nothing new: the next notification goes by e-mail only.
    ok_json(
        admin
            .post(
                &format!("/api/v1/webhooks/{}/stop", created["id"]),
                json!({}),
            )
            .await,
    )
    .await;
    let r = admin
        .post(
            "/api/v1/tasks",
            json!({"customer": c["code"], "title": "第三个任务", "due_on": app.store.today().to_string(), "owner_id": rep.user_id}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o = ok_json(admin.get("/api/v1/deliveries").await).await;
    let all = o["deliveries"].as_array().expect("list");
    let newest = all
        .iter()
        .filter_map(|d| d["notification_id"].as_i64())
        .max()
        .expect("some");
    let channels: Vec<&str> = all
        .iter()
        .filter(|d| d["notification_id"] == newest)
        .filter_map(|d| d["channel"].as_str())
        .collect();
    assert_eq!(channels, ["email"]);
    // The admin page shows the bot and the failed delivery; the account page the address.
    let web = app.login("admin2", "admin", None).await;
    let page = web
        .get("/admin/deliveries")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("销售群") && page.contains("data-status=\"failed\""),
        "{page}"
    );
    assert!(!page.contains("bot-key-7f3e"), "the bot's key on the page");
    // Nor in the audit log, which auditors read.
    let auditor = app.token("audit_hooks", "auditor", None).await;
    let entries = ok_json(auditor.get("/api/v1/audit?target=webhook:").await).await;
    assert!(
        entries["entries"].as_array().is_some_and(|e| !e.is_empty()),
        "{entries}"
    );
    assert!(!entries.to_string().contains("bot-key-7f3e"), "{entries}");
    app.cleanup().await;
}
