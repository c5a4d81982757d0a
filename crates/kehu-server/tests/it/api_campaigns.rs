//! Marketing campaigns through the API and the pages: creating them (bad
//! input, rights), recording whom they touched by segment and by id
//! (idempotent, within the campaign's dates and the caller's scope), the
//! report per campaign and channel against the untouched baseline, the
//! customers behind the numbers, CSV, and a merge moving a touch to the
//! survivor and back on undo.

use crate::both_backends;
use crate::helpers::{first_error, ok_json, problem, spawn_app};
use kehu_store::db::{Arg, Exec};
use reqwest::StatusCode;
use serde_json::{json, Value};

both_backends!(campaign_reach_conversion_and_channels);

async fn campaign_reach_conversion_and_channels(backend: kehu_store::Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let market = app.token("mkt1", "marketing", None).await;
    let boss = app.token("boss", "management", None).await;
    let rep = app.token("rep1", "sales_rep", Some("华东")).await;
    let today = app.store.today();
    let day = |back: u64| (today - chrono::Days::new(back)).to_string();

    // Ten customers who existed long before: 0–4 in 华东, 5–9 in 华北.
    let mut ids = Vec::new();
    for i in 0..10 {
        let region = if i < 5 { "华东" } else { "华北" };
        let c = admin
            .customer(&format!("活动客户{i}"), json!({"sales_region": region}))
            .await;
        ids.push(c["id"].as_i64().expect("id"));
    }
    let mut db = app.store.db.clone();
    db.execute(
        "UPDATE customers SET created_at = $1",
        vec![Arg::from(
            (today - chrono::Days::new(400))
                .and_hms_opt(1, 0, 0)
                .expect("time")
                .and_utc(),
        )],
    )
    .await
    .expect("backdate");

    // A: an event 60–50 days ago, 1万 spent, orders count for 30 days.
    let a = ok_json(
        market
            .post(
                "/api/v1/campaigns",
                json!({"name": "秋季展会", "channel": "活动", "starts_on": day(60), "ends_on": day(50), "cost": "1万", "window_days": 30}),
            )
            .await,
    )
    .await;
    let a_id = a["id"].as_i64().expect("id");
    assert_eq!(
        (a["channel"].clone(), a["cost_fen"].clone()),
        (json!("event"), json!(1_000_000))
    );
    // B: online, 20–10 days ago, no cost stated.
    let b = ok_json(
        market
            .post(
                "/api/v1/campaigns",
                json!({"name": "公众号推文", "channel": "online", "starts_on": day(20), "ends_on": day(10)}),
            )
            .await,
    )
    .await;
    let b_id = b["id"].as_i64().expect("id");

    // Bad campaigns name the field; rights.
    for (body, field) in [
        (
            json!({"channel": "online", "starts_on": day(3), "ends_on": day(1)}),
            "name",
        ),
        (
            json!({"name": "x", "channel": "广播", "starts_on": day(3), "ends_on": day(1)}),
            "channel",
        ),
        (
            json!({"name": "x", "channel": "online", "starts_on": day(1), "ends_on": day(3)}),
            "ends_on",
        ),
        (
            json!({"name": "x", "channel": "online", "starts_on": day(3), "ends_on": day(1), "window_days": 400}),
            "window_days",
        ),
        (
            json!({"name": "秋季展会", "channel": "online", "starts_on": day(3), "ends_on": day(1)}),
            "name",
        ),
    ] {
        let p = problem(
            market.post("/api/v1/campaigns", body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(first_error(&p).0, field, "{body}: {p}");
    }
    let fine = json!({"name": "y", "channel": "online", "starts_on": day(3), "ends_on": day(1)});
    for who in [&rep, &boss] {
        let r = who.post("/api/v1/campaigns", fine.clone()).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        rep.get("/api/v1/campaigns").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        ok_json(boss.get("/api/v1/campaigns").await)
            .await
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // A touched 华东 55 days ago; again changes nothing.
    let touch = |id: i64, body: Value| {
        let market = &market;
        async move {
            market
                .post(&format!("/api/v1/campaigns/{id}/touches"), body)
                .await
        }
    };
    let t = ok_json(touch(a_id, json!({"segment": "华东", "touched_on": day(55)})).await).await;
    assert_eq!(
        (t["customers"].clone(), t["added"].clone()),
        (json!(5), json!(5))
    );
    let t = ok_json(touch(a_id, json!({"segment": "华东", "touched_on": day(52)})).await).await;
    assert_eq!(t["added"], 0, "touched already: the first day stays");
    for (body, field) in [
        (
            json!({"segment": "华东", "touched_on": day(40)}),
            "touched_on",
        ),
        (
            json!({"segment": "华东", "customer_ids": [ids[0]]}),
            "segment",
        ),
        (json!({}), "segment"),
        (json!({"customer_ids": [999_999]}), "customer_ids"),
        (json!({"segment": "华东 AND ("}), "segment"),
    ] {
        let p = problem(
            touch(a_id, body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(first_error(&p).0, field, "{body}: {p}");
    }
    // B touched customer 5 by id (today is past its end: its last day).
    let t = ok_json(touch(b_id, json!({"customer_ids": [ids[5]]})).await).await;
    assert_eq!(t["added"], 1);

    // Orders: 0 bought 54 days ago (and long before); 1 only 20 days ago
    // (35 days after its touch: too late); 2 on its touch day, its first
    // order ever; 5 (untouched by A) 40 days ago.
    for (i, back, fen) in [
        (0, 200, 50_000),
        (0, 54, 1_000_000),
        (1, 20, 300_000),
        (2, 55, 500_000),
        (5, 40, 70_000),
    ] {
        let r = admin
            .post(
                &format!("/api/v1/customers/{}/orders", ids[i]),
                json!({"ordered_on": day(back), "amount_fen": fen}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }

    let r = ok_json(boss.get("/api/v1/reports/marketing").await).await;
    // A period takes the campaigns that ran in it.
    let none = ok_json(boss.get("/api/v1/reports/marketing?period=2000-Q1").await).await;
    assert_eq!(
        (
            none["period"].as_str(),
            none["campaigns"].as_array().map(Vec::len)
        ),
        (Some("2000-Q1"), Some(0))
    );
    let this_year = app.store.today().format("%Y").to_string();
    let same = ok_json(
        boss.get(&format!("/api/v1/reports/marketing?period={this_year}"))
            .await,
    )
    .await;
    assert_eq!(
        same["campaigns"], r["campaigns"],
        "this year's campaigns are all of them"
    );
    let p = problem(
        boss.get("/api/v1/reports/marketing?period=2026-Q5").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "period");
    let line = |r: &Value, id: i64| -> Value {
        r["campaigns"]
            .as_array()
            .expect("campaigns")
            .iter()
            .find(|l| l["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no campaign {id}: {r}"))
    };
    let la = line(&r, a_id);
    assert_eq!(la["attribution_end"], day(20));
    assert_eq!(
        [
            &la["reached"],
            &la["converted"],
            &la["first_orders"],
            &la["orders"]
        ],
        [&json!(5), &json!(2), &json!(1), &json!(2)],
        "{la}"
    );
    assert_eq!(la["revenue_fen"], 1_500_000);
    assert_eq!(la["conversion_rate"], 4_000);
    assert_eq!(la["return_on_cost"], 15_000);
    assert_eq!(la["cost_per_conversion_fen"], 500_000);
    // Baseline: 1 of the 5 untouched customers ordered in its span.
    assert_eq!(
        (la["baseline_rate"].clone(), la["lift"].clone()),
        (json!(2_000), json!(20_000))
    );
    let lb = line(&r, b_id);
    assert_eq!(
        (lb["reached"].clone(), lb["converted"].clone()),
        (json!(1), json!(0))
    );
    let channels = r["channels"].as_array().expect("channels");
    let keys: Vec<&str> = channels
        .iter()
        .map(|c| c["channel"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(keys, ["traditional", "online", "event"]);
    assert_eq!(
        (
            channels[2]["reached"].clone(),
            channels[2]["revenue_fen"].clone()
        ),
        (json!(5), json!(1_500_000))
    );
    assert_eq!(channels[0]["campaigns"], 0);

    // The customers behind the numbers.
    let path = format!("/api/v1/reports/marketing/customers?campaign={a_id}&measure=converted");
    assert_eq!(
        crate::helpers::listed_ids(&boss, &path).await,
        [ids[0], ids[2]]
    );
    for (path, field) in [
        (
            format!("/api/v1/reports/marketing/customers?campaign={a_id}&measure=bought"),
            "measure",
        ),
        (
            "/api/v1/reports/marketing/customers?campaign=999&measure=reached".to_string(),
            "campaign",
        ),
        (
            "/api/v1/reports/marketing/customers?measure=reached".to_string(),
            "campaign",
        ),
        (
            "/api/v1/reports/marketing?format=csv&table=pie".to_string(),
            "table",
        ),
    ] {
        let p = problem(boss.get(&path).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(first_error(&p).0, field, "{path}: {p}");
    }
    assert_eq!(
        rep.get("/api/v1/reports/marketing").await.status(),
        StatusCode::FORBIDDEN
    );
    let r = boss
        .get("/api/v1/reports/marketing?format=csv&table=campaigns")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.expect("csv");
    assert!(csv.starts_with("\u{feff}活动,渠道"), "{csv}");
    assert!(csv.contains("秋季展会,活动"), "{csv}");

    // A merge takes A's touch of 3 to the survivor 9 (untouched by A); undo gives it back.
    let version = |id: i64| {
        let admin = &admin;
        async move {
            ok_json(admin.get(&format!("/api/v1/customers/{id}")).await).await["version"].clone()
        }
    };
    let merge = ok_json(
        admin
            .post(
                "/api/v1/merges",
                json!({"survivor_id": ids[9], "absorbed_id": ids[3], "survivor_version": version(ids[9]).await, "absorbed_version": version(ids[3]).await}),
            )
            .await,
    )
    .await;
    let reached = |r: &Value| -> Vec<i64> {
        r["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|c| c["id"].as_i64().expect("id"))
            .collect()
    };
    let path = format!("/api/v1/reports/marketing/customers?campaign={a_id}&measure=reached");
    let after = ok_json(boss.get(&path).await).await;
    assert_eq!(reached(&after), [ids[0], ids[1], ids[2], ids[4], ids[9]]);
    let merge_id = merge["id"].as_i64().expect("merge id");
    ok_json(
        admin
            .post(&format!("/api/v1/merges/{merge_id}/undo"), json!({}))
            .await,
    )
    .await;
    let undone = ok_json(boss.get(&path).await).await;
    assert_eq!(reached(&undone), ids[..5]);

    // The pages.
    let web = app.login("mkt2", "marketing", None).await;
    let html = |path: String| {
        let web = &web;
        async move { web.get(&path).await.text().await.expect("html") }
    };
    let page = html("/campaigns".into()).await;
    assert!(
        page.contains("秋季展会") && page.contains("id=\"create-campaign\""),
        "{page}"
    );
    let page = html(format!("/campaigns/{a_id}")).await;
    assert!(
        page.contains("id=\"touch-form\"") && page.contains("id=\"effect\""),
        "{page}"
    );
    let page = html("/reports/marketing".into()).await;
    assert!(
        page.contains("公众号推文") && page.contains("id=\"channels\""),
        "{page}"
    );
    let page = html(format!(
        "/reports/marketing/customers?campaign={a_id}&measure=converted"
    ))
    .await;
    assert!(page.contains("活动客户2"), "{page}");
    app.cleanup().await;
}
