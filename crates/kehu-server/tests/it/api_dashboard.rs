//! The role dashboards: each role's panels in its order, the numbers within
//! the reader's scope (distribution, purchases per month, class changes),
//! panels left out without the right, the page's charts, and the figures
//! as CSV and XLSX.

use crate::both_backends;
use crate::helpers::{ok_json, spawn_app};
use reqwest::StatusCode;
use serde_json::{json, Value};

both_backends!(dashboards_by_role_and_scope);

fn class_total(d: &Value) -> u64 {
    d["distribution"]["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| c["customers"].as_u64().expect("n"))
        .sum()
}

async fn dashboards_by_role_and_scope(backend: kehu_store::Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let boss = app.token("boss", "management", None).await;
    let rep = app.token("rep1", "sales_rep", Some("华东")).await;
    let auditor = app.token("audit1", "auditor", None).await;
    let market = app.token("mkt1", "marketing", None).await;
    let today = app.store.today();
    let last_month = today
        .with_day(1)
        .and_then(|d| d.pred_opt())
        .expect("last month");
    use chrono::Datelike;

    // Three customers; the rep owns the first. Orders this month and last.
    let mut ids = Vec::new();
    for i in 0..3 {
        let owner = if i == 0 {
            json!(rep.user_id)
        } else {
            Value::Null
        };
        let c = admin
            .customer(&format!("看板客户{i}"), json!({"owner_id": owner}))
            .await;
        ids.push(c["id"].as_i64().expect("id"));
    }
    for (i, on, fen) in [
        (0, today, 100_000),
        (1, today, 250_000),
        (1, last_month, 40_000),
        (2, last_month, 5_000),
    ] {
        let r = admin
            .post(
                &format!("/api/v1/customers/{}/orders", ids[i]),
                json!({"ordered_on": on.to_string(), "amount_fen": fen}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }

    let d = ok_json(boss.get("/api/v1/dashboard").await).await;
    assert_eq!(d["layout"][0], "distribution", "{d}");
    assert_eq!(d["distribution"]["scheme"], "value_tier");
    assert_eq!(class_total(&d), 3, "everyone is classified: {d}");
    let months = d["revenue"].as_array().expect("revenue");
    assert_eq!(months.len(), 12);
    assert_eq!(months[11]["month"], today.format("%Y-%m").to_string());
    assert_eq!(
        (
            months[11]["revenue_fen"].clone(),
            months[11]["orders"].clone()
        ),
        (json!(350_000), json!(2))
    );
    assert_eq!(months[10]["revenue_fen"], 45_000);
    // Everyone was first classified this quarter.
    let first: i64 = d["class_changes"]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["from"].is_null())
        .map(|c| c["customers"].as_i64().expect("n"))
        .sum();
    assert_eq!(first, 3, "{d}");
    assert!(d["funnel"]["classes"].is_array());
    assert_eq!(d["tasks"], Value::Null, "管理层 has no tasks of its own");

    // The rep: tasks first, only its own customer.
    let mine = ok_json(rep.get("/api/v1/dashboard").await).await;
    assert_eq!(mine["layout"][0], "tasks", "{mine}");
    assert_eq!(class_total(&mine), 1);
    assert_eq!(mine["revenue"][11]["revenue_fen"], 100_000);
    assert_eq!(mine["revenue"][10]["revenue_fen"], 0);
    assert_eq!(mine["class_changes"], Value::Null, "no report right");
    assert!(!mine["layout"]
        .as_array()
        .expect("layout")
        .contains(&json!("class_changes")));

    // 市场 sees the channels first; 审计 has nothing to see.
    let m = ok_json(market.get("/api/v1/dashboard").await).await;
    assert_eq!(m["layout"][0], "channels");
    assert_eq!(m["channels"].as_array().map(Vec::len), Some(3));
    let a = ok_json(auditor.get("/api/v1/dashboard").await).await;
    assert_eq!(a["layout"], json!([]));
    assert_eq!(a["distribution"], Value::Null);

    // The page: a pie, bars, the funnel and the months, for 管理层.
    let web = app.login("boss2", "management", None).await;
    let page = web.get("/dashboard").await.text().await.expect("html");
    for needle in [
        "id=\"panel-distribution\"",
        "<path class=\"s",
        "id=\"panel-revenue\"",
        "id=\"panel-changes\"",
        "id=\"panel-funnel\"",
    ] {
        assert!(page.contains(needle), "{needle}: {page}");
    }
    assert!(
        page.contains("/api/v1/dashboard?format=csv&amp;table=distribution"),
        "the page links its figures"
    );
    let r = web.get("/").await;
    assert!(
        r.url().path().ends_with("/dashboard"),
        "home is the dashboard: {}",
        r.url()
    );

    // The figures as files: one panel as CSV, every panel as XLSX; an
    // unknown panel is named; 审计, with no panels, gets nothing.
    let r = rep
        .get("/api/v1/dashboard?format=csv&table=distribution")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.expect("csv");
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines[0], "类别,客户数", "{csv}");
    let counted: u64 = lines[1..]
        .iter()
        .filter_map(|l| l.rsplit(',').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(counted, 1, "the rep's one customer: {csv}");
    let revenue = boss.get("/api/v1/dashboard?format=csv&table=revenue").await;
    assert_eq!(revenue.status(), StatusCode::OK);
    assert_eq!(
        revenue.text().await.expect("csv").lines().count(),
        13,
        "header and 12 months"
    );
    let r = boss.get("/api/v1/dashboard?format=xlsx").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.bytes().await.expect("xlsx").starts_with(b"PK"));
    let p = crate::helpers::problem(
        boss.get("/api/v1/dashboard?format=csv&table=nope").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(crate::helpers::first_error(&p).0, "table");
    assert_eq!(
        auditor.get("/api/v1/dashboard?format=csv").await.status(),
        StatusCode::FORBIDDEN
    );
    app.cleanup().await;
}
