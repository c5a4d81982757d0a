//! The audit log through the API: logins, failed logins, customer writes
//! with before and after, exports and rule steps are recorded with who,
//! when and from where; only auditors read it; the hash chain verifies and
//! any edit or deletion of an entry is found.

use crate::both_backends;
use crate::helpers::{password_of, spawn_app, Session};
use kehu_store::db::Exec;
use kehu_store::Backend;
use reqwest::StatusCode;
use serde_json::{json, Value};

both_backends!(audit_records_and_verifies);

async fn entries(s: &Session, query: &str) -> Value {
    let r = s.get(&format!("/api/v1/audit{query}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("json")
}

async fn verify(s: &Session) -> Value {
    s.get("/api/v1/audit/verify")
        .await
        .json()
        .await
        .expect("json")
}

async fn audit_records_and_verifies(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let auditor = app.token("audit1", "auditor", None).await;
    app.user("li", "sales_rep", Some("华东")).await;
    let login = |password: String| {
        let url = format!("{}/api/v1/session", app.base);
        async move {
            reqwest::Client::new()
                .post(url)
                .json(&json!({"username": "li", "password": password}))
                .send()
                .await
                .expect("login")
        }
    };
    assert!(!login("nope-nope-nope".into()).await.status().is_success());
    assert!(login(password_of("li")).await.status().is_success());

    let c = admin.customer("审计测试精工有限公司", json!({})).await;
    let id = c["id"].as_i64().expect("id");
    let r = admin
        .patch(
            &format!("/api/v1/customers/{id}"),
            json!({"industry": "IT服务", "version": c["version"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = admin.get("/api/v1/customers/export?format=csv").await;
    assert_eq!(r.status(), StatusCode::OK);

    // Only auditors read the log.
    assert_eq!(
        admin.get("/api/v1/audit").await.status(),
        StatusCode::FORBIDDEN
    );
    let all = entries(&auditor, "").await;
    let actions: Vec<&str> = all["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in [
        "login_failed",
        "login",
        "customer.create",
        "customer.update",
        "export",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    let update = entries(
        &auditor,
        &format!("?action=customer.update&target=customer:{id}"),
    )
    .await;
    assert_eq!(update["total"], 1);
    let e = &update["entries"][0];
    assert_eq!(e["actor_id"], admin.user_id);
    assert_eq!(
        e["detail"]["changed"]["industry"],
        json!(["制造业", "IT服务"]),
        "{e}"
    );
    assert_eq!(e["client"], "127.0.0.1");
    let failed = entries(&auditor, "?action=login_failed").await;
    assert_eq!(failed["entries"][0]["target"], "user:li");
    assert!(
        !failed["entries"][0].to_string().contains("nope"),
        "no password in the log"
    );
    let by_target = entries(&auditor, "?target=customer:").await;
    assert_eq!(by_target["total"], 2);

    // The chain holds; an edited entry and a deleted one are found.
    let ok = verify(&auditor).await;
    assert_eq!(ok["intact"], true, "{ok}");
    let n = ok["entries"].as_i64().expect("entries");
    assert!(n >= 5);
    let mut db = app.store.db.clone();
    let original: String = {
        let all = entries(&auditor, "?limit=1000").await;
        let second = all["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .find(|e| e["pos"] == 2)
            .cloned()
            .expect("entry 2");
        second["detail"].to_string()
    };
    db.execute(
        "UPDATE audit_log SET detail = '{\"forged\":true}' WHERE pos = 2",
        vec![],
    )
    .await
    .expect("tamper");
    let broken = verify(&auditor).await;
    assert_eq!(broken["intact"], false);
    assert!(
        broken["problem"]
            .as_str()
            .unwrap_or("")
            .contains("entry 2 was changed"),
        "{broken}"
    );
    db.execute(
        "UPDATE audit_log SET detail = $1 WHERE pos = 2",
        vec![kehu_store::db::Arg::from(original)],
    )
    .await
    .expect("put back");
    assert_eq!(verify(&auditor).await["intact"], true);
    db.execute("DELETE FROM audit_log WHERE pos = 3", vec![])
        .await
        .expect("delete");
    let broken = verify(&auditor).await;
    assert!(
        broken["problem"]
            .as_str()
            .unwrap_or("")
            .contains("entry 3 is missing"),
        "{broken}"
    );
    app.cleanup().await;
}
