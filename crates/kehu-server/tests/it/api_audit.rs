//! The audit log through the API: logins, failed logins, customer writes
//! with before and after, exports and rule steps are recorded with who,
//! when and from where; only auditors read it; the keyed chain verifies
//! and any edit or deletion of an entry is found, a plain-hash forgery
//! too, and a log cut short against an anchor noted before.

use crate::both_backends;
use crate::helpers::{password_of, spawn_app, spawn_app_with, Session};
use kehu_store::db::Exec;
use kehu_store::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both_backends!(
    audit_records_and_verifies,
    client_address_behind_a_trusted_proxy,
    rule_and_field_changes_are_audited,
    anchors_go_out_every_day
);

async fn entries(s: &Session, query: &str) -> Value {
    let r = s.get(&format!("/api/v1/audit{query}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("json")
}

fn urlencoding(s: &str) -> String {
    s.replace(':', "%3A")
}

async fn verify_with(s: &Session, anchor: &str) -> Value {
    s.get(&format!(
        "/api/v1/audit/verify?anchor={}",
        urlencoding(anchor)
    ))
    .await
    .json()
    .await
    .expect("json")
}

/// Someone with the database cuts the log short from entry `pos` on: the
/// chain alone still holds (only an anchor shows it).
async fn cut_from(auditor: &Session, db: &mut kehu_store::db::Db, pos: i64) {
    // Verifying waits for the entries in flight: none is appended after the cut.
    verify(auditor).await;
    db.execute(
        "DELETE FROM audit_log WHERE pos >= $1",
        vec![kehu_store::db::Arg::from(pos)],
    )
    .await
    .expect("cut");
    assert_eq!(
        verify(auditor).await["intact"],
        true,
        "the chain alone holds"
    );
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
    let li = app.user("li", "sales_rep", Some("华东")).await;
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
    let stranger = reqwest::Client::new()
        .post(format!("{}/api/v1/session", app.base))
        .json(&json!({"username": "42", "password": "nope-nope-nope"}))
        .send()
        .await
        .expect("login");
    assert!(!stranger.status().is_success());
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
    // An account's entries are under its id; a name no account has, as typed.
    let targets: Vec<&str> = failed["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["target"].as_str())
        .collect();
    assert_eq!(targets, ["login:42".to_string(), format!("user:{li}")]);
    let signed_in = entries(&auditor, "?action=login").await;
    assert_eq!(signed_in["entries"][0]["target"], format!("user:{li}"));
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
    let ok = verify(&auditor).await;
    assert_eq!(ok["intact"], true);
    assert_eq!(
        ok["keyed_from"], 1,
        "every entry linked under the key: {ok}"
    );
    assert!(
        ok["last_hash"].as_str().unwrap_or("").starts_with("m1:"),
        "{ok}"
    );

    // An anchor noted now: the log cut short before it is found, which the
    // chain alone cannot show.
    let anchor = format!(
        "{}:{}",
        ok["entries"],
        ok["last_hash"].as_str().expect("link")
    );
    let with_anchor = |a: String| {
        let s = &auditor;
        async move {
            let r = s
                .get(&format!("/api/v1/audit/verify?anchor={}", urlencoding(&a)))
                .await;
            let status = r.status();
            (status, r.json::<Value>().await.expect("json"))
        }
    };
    let (status, v) = with_anchor(anchor.clone()).await;
    assert_eq!(
        (status, v["intact"].clone()),
        (StatusCode::OK, json!(true)),
        "{v}"
    );
    let (status, v) = with_anchor("7".into()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["errors"][0]["field"], "anchor", "{v}");
    // The auditors' page verifies against an anchor too, and says on the
    // page when one is malformed.
    let web = app.login("audit_web", "auditor", None).await;
    let page = |a: String| {
        let web = &web;
        async move {
            web.get(&format!("/audit?verify=1&anchor={}", urlencoding(&a)))
                .await
                .text()
                .await
                .expect("html")
        }
    };
    let held = page(anchor.clone()).await;
    assert!(held.contains(r#"data-intact="yes""#), "{held}");
    let malformed = page("7".into()).await;
    assert!(
        malformed.contains(r#"id="anchor-error""#) && !malformed.contains("哈希链完整"),
        "{malformed}"
    );
    cut_from(&auditor, &mut db, ok["entries"].as_i64().expect("n")).await;
    let cut = page(anchor.clone()).await;
    assert!(
        cut.contains(r#"data-intact="no""#) && cut.contains("cut short"),
        "{cut}"
    );
    let (_, v) = with_anchor(anchor).await;
    assert_eq!(v["intact"], false);
    assert!(
        v["problem"].as_str().unwrap_or("").contains("cut short"),
        "{v}"
    );

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

    // Someone who can write the database but not read the key file edits
    // entry 2 and links it anew by a plain hash: found.
    let (all, _) = app
        .store
        .audit_entries(&kehu_store::audit::AuditFilter::default(), 1000, 0)
        .await
        .expect("entries");
    let second = all
        .into_iter()
        .find(|e| e.record.pos == 2)
        .expect("entry 2");
    let (mut record, prev) = (second.record, second.prev_hash);
    record.detail = json!({"forged": true});
    db.execute(
        "UPDATE audit_log SET detail = $1, hash = $2 WHERE pos = 2",
        vec![
            kehu_store::db::Arg::from(record.detail.to_string()),
            kehu_store::db::Arg::from(kehu_core::audit::entry_hash(&prev, &record)),
        ],
    )
    .await
    .expect("forge");
    let broken = verify(&auditor).await;
    assert!(
        broken["problem"]
            .as_str()
            .unwrap_or("")
            .contains("entry 2 is not signed"),
        "{broken}"
    );
    app.cleanup().await;
}

/// Custom fields (what is kept and who sees it), the industry list and the
/// tag catalogue with its rules are audited, change by change, through the
/// API and the pages alike.
async fn rule_and_field_changes_are_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let auditor = app.token("audit1", "auditor", None).await;
    let ok = |r: reqwest::Response, status: StatusCode| async move {
        let got = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(got, status, "{body}");
        body
    };
    let field = ok(
        admin
            .post(
                "/api/v1/custom-fields",
                json!({"key": "id_card", "label": "法人证件号", "group": "basic", "kind": "text"}),
            )
            .await,
        StatusCode::CREATED,
    )
    .await;
    let fid = field["id"].as_i64().expect("id");
    let changed = ok(
        admin
            .patch(
                &format!("/api/v1/custom-fields/{fid}"),
                json!({"rule": {"mask": {"first": 0, "last": 4}}, "version": field["version"]}),
            )
            .await,
        StatusCode::OK,
    )
    .await;
    let r = admin
        .request(
            Method::DELETE,
            &format!("/api/v1/custom-fields/{fid}?version={}", changed["version"]),
        )
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = admin
        .request(Method::PUT, "/api/v1/industries")
        .json(&json!({"industries": ["制造业", "零售业", "IT服务"]}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), StatusCode::OK);
    let tag = ok(
        admin
            .post(
                "/api/v1/tags",
                json!({"name": "大单客户", "mode": "rule", "rule": "年采购额 >= 100万"}),
            )
            .await,
        StatusCode::CREATED,
    )
    .await;
    let tid = tag["id"].as_i64().expect("id");
    ok(
        admin
            .patch(
                &format!("/api/v1/tags/{tid}"),
                json!({"rule": "年采购额 >= 200万", "version": tag["version"]}),
            )
            .await,
        StatusCode::OK,
    )
    .await;
    let other = ok(
        admin
            .post("/api/v1/tags", json!({"name": "临时标签"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let oid = other["id"].as_i64().expect("id");
    let keep = ok(
        admin
            .post("/api/v1/tags", json!({"name": "长期标签"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let kid = keep["id"].as_i64().expect("id");
    ok(
        admin
            .post(&format!("/api/v1/tags/{oid}/retire"), json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    ok(
        admin
            .post(&format!("/api/v1/tags/{oid}/merge"), json!({"into": kid}))
            .await,
        StatusCode::OK,
    )
    .await;
    let r = admin
        .request(Method::PUT, "/api/v1/tag-settings")
        .json(&json!({"max_manual_tags": 4, "synonyms": []}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), StatusCode::OK);

    let one = |action: &'static str| {
        let auditor = &auditor;
        async move {
            let found = entries(auditor, &format!("?action={action}")).await;
            let list = found["entries"].as_array().expect("entries").clone();
            assert_eq!(list.len(), 1, "{action}: {found}");
            list[0].clone()
        }
    };
    let created = one("custom_field.create").await;
    assert_eq!(created["target"], format!("custom_field:{fid}"));
    assert_eq!(created["detail"]["field"]["key"], "id_card");
    let updated = one("custom_field.update").await;
    assert!(updated["detail"]["changed"]["rule"].is_array(), "{updated}");
    assert_eq!(
        one("custom_field.delete").await["detail"]["field"]["key"],
        "id_card"
    );
    let industries = one("industries.set").await;
    assert_eq!(
        industries["detail"]["after"],
        json!(["制造业", "零售业", "IT服务"])
    );
    assert!(
        industries["detail"]["before"]
            .as_array()
            .map_or(0, Vec::len)
            > 3
    );
    let rule = one("tag.update").await;
    assert_eq!(
        (
            rule["detail"]["before"]["rule"].as_str().is_some(),
            rule["detail"]["after"]["rule"]
                .as_str()
                .map(|r| r.contains("200万"))
        ),
        (true, Some(true)),
        "{rule}"
    );
    let created = entries(&auditor, "?action=tag.create").await;
    assert_eq!(created["entries"].as_array().map(Vec::len), Some(3));
    assert_eq!(one("tag.retire").await["target"], format!("tag:{oid}"));
    assert_eq!(one("tag.merge").await["detail"]["into"], kid);
    assert_eq!(one("tag.settings").await["detail"]["max_manual_tags"], 4);
    let v = verify(&auditor).await;
    assert_eq!(v["intact"], true, "{v}");
    app.cleanup().await;
}

/// `X-Forwarded-For` names the client in the audit log only when the peer
/// is a proxy the operator trusts; otherwise it is the client's own claim
/// and the peer's address is kept.
async fn client_address_behind_a_trusted_proxy(backend: Backend) {
    for (trusted, forwarded, want) in [
        ("127.0.0.1", "6.6.6.6, 203.0.113.9", "203.0.113.9"),
        ("", "203.0.113.9", "127.0.0.1"),
        ("10.0.0.0/8", "203.0.113.9", "127.0.0.1"),
    ] {
        let app = spawn_app_with(backend, |s| {
            s.trusted_proxies =
                kehu_server::client_addr::TrustedProxies::parse(trusted).expect("proxies")
        })
        .await;
        let auditor = app.token("audit1", "auditor", None).await;
        app.user("li", "sales_rep", None).await;
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/session", app.base))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"username": "li", "password": "not-the-password"}))
            .send()
            .await
            .expect("login");
        assert!(!r.status().is_success());
        let failed = entries(&auditor, "?action=login_failed").await;
        assert_eq!(
            failed["entries"][0]["client"], want,
            "trusting {trusted:?}, forwarded {forwarded:?}: {failed}"
        );
        app.cleanup().await;
    }
}

/// The daily anchor job: verifies the chain against the last anchor it
/// wrote, appends today's to the file outside the database and sends it to
/// the auditors; a log cut short before that anchor fails the job, and
/// the auditors are told instead.
async fn anchors_go_out_every_day(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("kehu-anchors-{}-{backend:?}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let file = dir.join("anchors").join("audit-anchors.txt");
    let path = file.clone();
    let app = spawn_app_with(backend, move |s| s.audit_anchors = Some(path)).await;
    let admin = app.token("anchor_admin", "admin", None).await;
    let auditor = app.token("anchor_auditor", "auditor", None).await;
    let run = || async { admin.post("/api/v1/jobs/audit_anchor/run", json!({})).await };
    let inbox = || async {
        let v: Value = auditor
            .get("/api/v1/notifications")
            .await
            .json()
            .await
            .expect("inbox");
        v["items"].as_array().cloned().unwrap_or_default()
    };
    admin.customer("锚点一号有限公司", json!({})).await;
    let first: Value = run().await.json().await.expect("run");
    let summary = &first["summary"];
    let anchor = summary["anchor"].as_str().expect("anchor").to_string();
    assert!(
        anchor.starts_with(&format!("{}:", summary["entries"])),
        "{first}"
    );
    assert!(summary["checked_against"].is_null(), "no anchor before");
    assert_eq!(summary["sent_to"], 1, "the one auditor");
    let text = std::fs::read_to_string(&file).expect("anchors file");
    assert_eq!(text.lines().count(), 1);
    assert!(text.trim_end().ends_with(&format!(" {anchor}")), "{text}");
    let told = inbox().await;
    assert_eq!(told[0]["kind"], "audit_anchor");
    assert!(told[0]["text"]
        .as_str()
        .unwrap_or_default()
        .contains(&anchor));
    // The anchor checks out at the verify endpoint too.
    let checked = verify_with(&auditor, &anchor).await;
    assert_eq!(checked["intact"], true, "{checked}");

    // The next day's run checks against it and appends.
    admin.customer("锚点二号有限公司", json!({})).await;
    let second: Value = run().await.json().await.expect("run");
    assert_eq!(second["summary"]["checked_against"], anchor.as_str());
    let text = std::fs::read_to_string(&file).expect("anchors file");
    assert_eq!(text.lines().count(), 2);

    // Someone with the database cuts the log short before today's anchor:
    // the chain alone still holds, the job does not.
    let pos: i64 = anchor
        .split(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("pos");
    cut_from(&auditor, &mut app.store.db.clone(), pos - 1).await;
    let failed = run().await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let told = inbox().await;
    assert_eq!(told[0]["kind"], "audit_broken", "{told:?}");
    assert!(
        told[0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("审计日志校验失败"),
        "{told:?}"
    );
    let text = std::fs::read_to_string(&file).expect("anchors file");
    assert_eq!(text.lines().count(), 2, "no anchor for a broken log");
    let _ = std::fs::remove_dir_all(&dir);
    app.cleanup().await;
}
