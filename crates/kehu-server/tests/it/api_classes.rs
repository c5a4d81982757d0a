//! Stored classes over HTTP: a customer's class as of a date, and the class
//! changes between two dates, within the caller's data scope.

use crate::both_backends;
use crate::helpers::{first_error, of_scheme, problem, spawn_app};
use chrono::NaiveDate;
use kehu_store::classes::{cause, ClassChange, ClassWriter};
use kehu_store::{Backend, Store};
use reqwest::StatusCode;
use serde_json::{json, Value};

both_backends!(classes_as_of_and_changes, design_example_through_the_api);

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

fn change(customer_id: i64, scheme: &str, from: Option<&str>, to: &str) -> ClassChange {
    ClassChange {
        customer_id,
        scheme_key: scheme.into(),
        from: from.map(str::to_string),
        to: to.into(),
        score: None,
        scheme_version: 1,
        cause: cause::EVALUATION,
        note: None,
    }
}

async fn record(store: &Store, as_of: &str, changes: &[ClassChange]) {
    let mut w = ClassWriter::begin(store, d(as_of), None)
        .await
        .expect("begin");
    w.write(changes).await.expect("write");
    assert_eq!(
        w.finish().await.expect("commit").changes,
        changes.len() as u64
    );
}

async fn classes_as_of_and_changes(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let other_team = app.token("rep_south", "sales_rep", Some("华南一组")).await;
    let east = app.token("rep_east", "sales_rep", Some("华东一组")).await;
    let c = admin
        .customer(
            "苏州星湖精密机械有限公司",
            json!({"owner_id": east.user_id}),
        )
        .await;
    let id = c["id"].as_i64().expect("id");
    record(
        &app.store,
        "2024-01-31",
        &[
            change(id, "value_tier", None, "潜力型"),
            change(id, "rfm", None, "一般客户"),
        ],
    )
    .await;
    record(
        &app.store,
        "2024-03-12",
        &[change(id, "value_tier", Some("潜力型"), "战略型")],
    )
    .await;

    let classes = |as_of: &str| {
        let s = &admin;
        let path = format!("/api/v1/customers/{id}/classes{as_of}");
        async move {
            let r = s.get(&path).await;
            assert_eq!(r.status(), StatusCode::OK);
            let v: Value = r.json().await.expect("json");
            v.as_array()
                .expect("array")
                .iter()
                .map(|x| {
                    (
                        x["scheme"].as_str().unwrap_or("").to_string(),
                        x["class"].as_str().unwrap_or("").to_string(),
                        x["since"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let pair = |s: &str, c: &str, since: &str| (s.to_string(), c.to_string(), since.to_string());
    assert_eq!(classes("?as_of=2024-01-30").await, vec![]);
    assert_eq!(
        classes("?as_of=2024-02-15").await,
        vec![
            pair("rfm", "一般客户", "2024-01-31"),
            pair("value_tier", "潜力型", "2024-01-31")
        ]
    );
    assert_eq!(
        classes("?as_of=2024-03-12").await,
        vec![
            pair("rfm", "一般客户", "2024-01-31"),
            pair("value_tier", "战略型", "2024-03-12")
        ]
    );
    // Creating the customer classified it as of today in every published
    // scheme but the two that rank customers against each other: those wait
    // for the daily job's ranking (not run in this test).
    let today: Vec<String> = classes("").await.into_iter().map(|(s, _, _)| s).collect();
    assert_eq!(
        today,
        [
            "abcd",
            "behavior",
            "industry_size",
            "intent",
            "lifecycle",
            "need_type",
            "rfm",
            "value_tier"
        ]
    );
    let bad = problem(
        admin
            .get(&format!("/api/v1/customers/{id}/classes?as_of=2024-02-30"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&bad).0, "as_of");

    // Who moved between two dates.
    let changes: Value = admin
        .get("/api/v1/class-changes?scheme_key=value_tier&effective_on.gte=2024-03-01&effective_on.lte=2024-03-31&with_total=true")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(changes["total"], 1, "{changes}");
    let item = &changes["items"][0];
    assert_eq!(
        (
            item["customer_id"].as_i64(),
            &item["from_class"],
            &item["to_class"]
        ),
        (Some(id), &json!("潜力型"), &json!("战略型"))
    );
    assert_eq!(item["cause"], "evaluation");
    let all: Value = admin
        .get("/api/v1/class-changes?with_total=true&sort=effective_on&effective_on.lte=2024-12-31")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(all["total"], 3);
    assert_eq!(all["items"][0]["effective_on"], "2024-01-31");

    // The customer page shows the current classes: today's evaluation (made
    // when the customer was created) is the latest entry of the history.
    let ui = app.login("viewer", "admin", None).await;
    let html = ui
        .get(&format!("/customers/{id}"))
        .await
        .text()
        .await
        .expect("page");
    assert!(html.contains(r#"<li data-scheme="value_tier"><span class="scheme">价值分层</span> <span class="badge class">维持型</span>"#), "{html}");
    assert!(html.contains(r#"data-scheme="rfm""#));

    // The owner's team sees them; another team sees neither the classes nor the changes.
    let mine: Value = east
        .get("/api/v1/class-changes?with_total=true&effective_on.lte=2024-12-31")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(mine["total"], 3, "{mine}");
    problem(
        other_team
            .get(&format!("/api/v1/customers/{id}/classes"))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let theirs: Value = other_team
        .get("/api/v1/class-changes?with_total=true")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(theirs["total"], 0, "{theirs}");
    app.cleanup().await;
}

/// design.md's example, entered through the API: as of 2024-03-12, C2024001
/// (120万 in the preceding 12 months, since 2021-03-15, no complaints) is
/// 战略型 and C2024002 (35万, since 2023-06-20, one complaint that day) 优化型 —
/// in the explanation, and stored by a run as of that date.
async fn design_example_through_the_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let mut ids = Vec::new();
    for (code, since, order_on, amount_fen) in [
        ("C2024001", "2021-03-15", "2023-09-01", 120_000_000),
        ("C2024002", "2023-06-20", "2023-12-01", 35_000_000),
    ] {
        let c = admin
            .customer(code, json!({"code": code, "cooperation_start_on": since}))
            .await;
        let id = c["id"].as_i64().expect("id");
        let r = admin
            .post(
                &format!("/api/v1/customers/{id}/orders"),
                json!({"ordered_on": order_on, "amount_fen": amount_fen}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        ids.push(id);
    }
    let r = admin
        .post(
            &format!("/api/v1/customers/{}/interactions", ids[1]),
            json!({"kind": "complaint", "occurred_on": "2024-03-12", "summary": "交付延迟", "severity": "一般"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    for (id, expected) in ids.iter().zip(["战略型", "优化型"]) {
        let ex: Value = admin
            .get(&format!(
                "/api/v1/customers/{id}/explanations?as_of=2024-03-12"
            ))
            .await
            .json()
            .await
            .expect("json");
        let vt = of_scheme(&ex, "value_tier");
        assert_eq!(vt["class"], expected, "{vt}");
    }
    kehu_server::classifier::Classifier::new(app.store.clone())
        .run_all(d("2024-03-12"), cause::EVALUATION, None, None)
        .await
        .expect("run as of 2024-03-12");
    for (id, expected) in ids.iter().zip(["战略型", "优化型"]) {
        let v: Value = admin
            .get(&format!("/api/v1/customers/{id}/classes?as_of=2024-03-12"))
            .await
            .json()
            .await
            .expect("json");
        let vt = of_scheme(&v, "value_tier");
        assert_eq!(
            (&vt["class"], &vt["since"]),
            (&json!(expected), &json!("2024-03-12"))
        );
    }
    app.cleanup().await;
}
