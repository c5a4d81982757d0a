//! Rule versions over HTTP: a draft (with a temporary ESG dimension) is
//! checked, simulated on the live data, submitted, approved by 管理层 (not by
//! its author), published by 管理员 — every customer re-evaluated with it in
//! one go — and rolled back. Every step is recorded with who and when.

use crate::both_backends;
use crate::helpers::{first_error, of_scheme, problem, spawn_app, Session};
use chrono::Days;
use kehu_store::db::Exec;
use kehu_store::{args, Backend};
use reqwest::StatusCode;
use serde_json::{json, Value};

both_backends!(draft_simulate_approve_publish_rollback);

async fn json_of(r: reqwest::Response, status: StatusCode) -> Value {
    let got = r.status();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{body}");
    body
}

async fn step(s: &Session, version: i64, name: &str, note: Option<&str>) -> reqwest::Response {
    let body = match note {
        Some(n) => json!({"note": n}),
        None => json!({}),
    };
    s.post(
        &format!("/api/v1/schemes/value_tier/versions/{version}/{name}"),
        body,
    )
    .await
}

async fn draft_simulate_approve_publish_rollback(backend: Backend) {
    let app = spawn_app(backend).await;
    let today = app.store.today();
    let admin = app.token("admin1", "admin", None).await;
    let boss = app.token("boss", "management", None).await;
    let manager = app.token("mgr", "sales_manager", Some("华东一组")).await;
    // A role that may both edit and approve rules: still not its own requests.
    let mut db = app.store.db.clone();
    db.execute(
        "INSERT INTO roles (key, name_zh, name_en, grants, builtin) VALUES ($1, $2, $3, $4, $5)",
        args![
            "rule_officer",
            "规则专员",
            "Rule officer",
            json!({"customer_read": "all", "rule_edit": "all", "rule_approve": "all"}),
            false
        ],
    )
    .await
    .expect("role");
    let officer = app.token("officer", "rule_officer", None).await;

    // A customer with 60万 in the last year: 中 value, so not 战略型 under version 1.
    let c = admin
        .customer(
            "无锡中瑞电子有限公司",
            json!({"cooperation_start_on": "2020-01-10"}),
        )
        .await;
    let id = c["id"].as_i64().expect("id");
    let r = admin
        .post(
            &format!("/api/v1/customers/{id}/orders"),
            json!({"ordered_on": (today - Days::new(20)).to_string(), "amount_fen": 60_000_000}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let class_now = || async {
        let v: Value = admin
            .get(&format!("/api/v1/customers/{id}/classes"))
            .await
            .json()
            .await
            .expect("json");
        v.as_array()
            .and_then(|a| a.iter().find(|c| c["scheme"] == "value_tier").cloned())
            .map(|c| c["class"].as_str().unwrap_or("").to_string())
    };
    let before = class_now().await.expect("classified");
    assert_ne!(before, "战略型");

    // Every preset ships as published version 1.
    let schemes = json_of(admin.get("/api/v1/schemes").await, StatusCode::OK).await;
    let schemes = schemes.as_array().expect("array");
    assert_eq!(schemes.len(), 10);
    assert!(
        schemes.iter().all(|s| s["published_version"] == 1),
        "{schemes:?}"
    );
    let v1 = json_of(
        admin.get("/api/v1/schemes/value_tier/versions/1").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(v1["status"], "published");

    // The draft: 高 from 50万, and a temporary ESG 合规性 dimension of 10 %.
    let mut spec = v1["spec"].clone();
    spec["dimensions"][0]["weight"] = json!(50);
    spec["dimensions"][0]["levels"][0]["when"] = json!("annual_purchase >= 50万");
    spec["dimensions"][0]["levels"][1]["when"] = json!("annual_purchase >= 20万");
    let esg = json!({"key": "esg", "name": "ESG 合规性", "name_en": "ESG compliance", "weight": 10, "levels": [
        {"key": "合规", "name_en": "compliant", "score": 100, "when": "industry IN (制造业, 快消)"},
        {"key": "待评估", "name_en": "to_assess", "score": 50}]});
    spec["dimensions"].as_array_mut().expect("dims").push(esg);

    // Bad drafts are refused with the place named, and nothing is stored.
    let mut heavy = spec.clone();
    heavy["dimensions"][3]["weight"] = json!(20);
    let p = problem(
        admin
            .post(
                "/api/v1/schemes/value_tier/versions",
                json!({"spec": heavy}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&p),
        ("value_tier.dimensions".into(), "weights_sum".into())
    );
    let mut unknown = spec.clone();
    unknown["assign"]["rules"][0]["class"] = json!("超级型");
    let p = problem(
        admin
            .post(
                "/api/v1/schemes/value_tier/versions",
                json!({"spec": unknown}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        first_error(&p).0.starts_with("value_tier.assign.rules[0]"),
        "{p}"
    );
    let p = problem(
        admin
            .post("/api/v1/schemes/rfm/versions", json!({"spec": spec}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "spec.key");
    problem(
        boss.post("/api/v1/schemes/value_tier/versions", json!({"spec": spec}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        manager
            .post("/api/v1/schemes/value_tier/versions", json!({"spec": spec}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    let v2 = json_of(
        admin
            .post(
                "/api/v1/schemes/value_tier/versions",
                json!({"spec": spec, "note": "下调高价值门槛，临时加入 ESG 合规性 10%"}),
            )
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        (&v2["version"], &v2["status"]),
        (&json!(2), &json!("draft"))
    );

    // Simulated on the live data, by the approver: who would move where.
    let sim = json_of(
        boss.post("/api/v1/schemes/value_tier/versions/2/simulate", json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(sim["customers"], 1);
    assert_eq!(
        sim["moves"],
        json!([{"from": before, "to": "战略型", "count": 1, "samples": [{"id": id, "code": c["code"]}]}])
    );
    problem(
        manager
            .post("/api/v1/schemes/value_tier/versions/2/simulate", json!({}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // Publishing needs an approval first; approving needs a submission.
    problem(step(&admin, 2, "publish", None).await, StatusCode::CONFLICT).await;
    problem(step(&boss, 2, "approve", None).await, StatusCode::CONFLICT).await;
    json_of(step(&admin, 2, "submit", None).await, StatusCode::OK).await;
    let inbox = json_of(
        boss.get("/api/v1/scheme-versions?status=submitted").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(inbox.as_array().map(Vec::len), Some(1), "{inbox}");
    assert_eq!(inbox[0]["submitted_by"], admin.user_id);
    // Not by the admin (no approval right); a rejection needs a note.
    problem(
        step(&admin, 2, "approve", None).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let p = problem(
        step(&boss, 2, "reject", None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p), ("note".into(), "required".into()));
    json_of(
        step(&boss, 2, "approve", Some("同意，季度末复盘")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        class_now().await.as_deref(),
        Some(before.as_str()),
        "approval alone changes nothing"
    );

    // Another server's classifier, warmed on version 1, sees the publish at its next use.
    let other_server = kehu_server::classifier::Classifier::new(app.store.clone());
    let version_seen =
        |set: &kehu_server::classifier::SchemeSet| set.index("value_tier").map(|i| set.versions[i]);
    let before_publish = other_server.published().await.expect("published");
    assert_eq!(version_seen(&before_publish), Some(1));

    // Published by the admin: the customer moves at once, with the version as cause.
    let published = json_of(step(&admin, 2, "publish", None).await, StatusCode::OK).await;
    assert_eq!(published["version"]["status"], "published");
    assert!(
        published["class_changes"].as_u64() >= Some(1),
        "{published}"
    );
    assert_eq!(class_now().await.as_deref(), Some("战略型"));
    let after_publish = other_server.published().await.expect("published");
    assert_eq!(version_seen(&after_publish), Some(2));
    let changes = json_of(
        admin
            .get(&format!(
                "/api/v1/class-changes?customer_id={id}&scheme_key=value_tier&sort=-id&limit=1"
            ))
            .await,
        StatusCode::OK,
    )
    .await;
    let last = &changes["items"][0];
    assert_eq!(
        (
            &last["to_class"],
            &last["cause"],
            &last["scheme_version"],
            &last["changed_by"]
        ),
        (
            &json!("战略型"),
            &json!("rule_version"),
            &json!(2),
            &json!(admin.user_id)
        )
    );
    let scheme = json_of(
        admin.get("/api/v1/schemes/value_tier").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(scheme["published_version"], 2);
    let statuses: Vec<(i64, String)> = scheme["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap_or(0),
                v["status"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![(2, "published".into()), (1, "retired".into())]
    );
    // The explanation uses the published version.
    let ex = json_of(
        admin
            .get(&format!("/api/v1/customers/{id}/explanations"))
            .await,
        StatusCode::OK,
    )
    .await;
    let vt = of_scheme(&ex, "value_tier");
    assert_eq!(
        (&vt["version"], &vt["class"]),
        (&json!(2), &json!("战略型"))
    );
    assert!(
        vt["explanation"]["dimensions"]
            .as_array()
            .is_some_and(|d| d.iter().any(|l| l["key"] == "esg")),
        "{vt}"
    );

    // Rolled back to version 1: the customer moves back.
    problem(
        step(&admin, 2, "rollback", None).await,
        StatusCode::CONFLICT,
    )
    .await;
    json_of(
        step(&admin, 1, "rollback", Some("ESG 数据未齐，先回滚")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(class_now().await.as_deref(), Some(before.as_str()));

    // A rejected draft goes back to its author to edit; nobody approves their own.
    let v3 = json_of(
        officer
            .post("/api/v1/schemes/value_tier/versions", json!({"spec": spec}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(v3["version"], 3);
    json_of(step(&officer, 3, "submit", None).await, StatusCode::OK).await;
    let p = problem(
        step(&officer, 3, "approve", None).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("自己")),
        "{p}"
    );
    json_of(
        step(&boss, 3, "reject", Some("ESG 口径待定")).await,
        StatusCode::OK,
    )
    .await;
    let edited = json_of(
        officer
            .request(
                reqwest::Method::PUT,
                "/api/v1/schemes/value_tier/versions/3",
            )
            .json(&json!({"spec": v1["spec"], "note": "恢复原口径"}))
            .send()
            .await
            .expect("PUT"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(edited["status"], "draft");

    // Every step, with who.
    let scheme = json_of(
        admin.get("/api/v1/schemes/value_tier").await,
        StatusCode::OK,
    )
    .await;
    let events: Vec<(i64, String, Option<i64>)> = scheme["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["version"].as_i64().unwrap_or(0),
                e["action"].as_str().unwrap_or("").into(),
                e["actor"].as_i64(),
            )
        })
        .collect();
    let e = |v: i64, a: &str, by: Option<i64>| (v, a.to_string(), by);
    assert_eq!(
        events,
        vec![
            e(1, "publish", None),
            e(2, "create", Some(admin.user_id)),
            e(2, "submit", Some(admin.user_id)),
            e(2, "approve", Some(boss.user_id)),
            e(2, "publish", Some(admin.user_id)),
            e(1, "rollback", Some(admin.user_id)),
            e(3, "create", Some(officer.user_id)),
            e(3, "submit", Some(officer.user_id)),
            e(3, "reject", Some(boss.user_id)),
            e(3, "edit", Some(officer.user_id)),
        ]
    );
    app.cleanup().await;
}
