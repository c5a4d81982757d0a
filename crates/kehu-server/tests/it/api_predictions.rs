//! Prediction beyond the rules through the API: the daily job fits BG/NBD
//! and Gamma-Gamma on everyone's orders, each customer carries P(alive),
//! expected orders and lifetime value equal to the core models' answer,
//! segments select on them, a second run changes nothing, and the fits
//! are listed for report readers only.

use crate::both_backends;
use crate::helpers::spawn_app;
use chrono::Duration;
use kehu_core::predict::{outlook, summarize, BgNbd, GammaGamma, Predicted, DEFAULT_HORIZON};
use kehu_store::Backend;
use reqwest::StatusCode;
use serde_json::{json, Value};

both_backends!(predictions_are_fitted_stored_and_queryable);

async fn predictions_are_fitted_stored_and_queryable(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let service = app.token("svc1", "service", None).await;
    let today = app.store.today();

    // Before any fit: no outlook, and the job says why (too little data).
    let first = admin.customer("早期客户", json!({})).await;
    let report: Value = admin
        .post("/api/v1/jobs/predictions/run", json!({}))
        .await
        .json()
        .await
        .expect("json");
    assert!(report["ran"].as_bool().expect("ran"), "{report}");
    assert!(
        report["summary"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("too little data")),
        "{report}"
    );

    // 36 customers: steady buyers, buyers who went quiet, one-off buyers.
    let mut histories = Vec::new();
    for i in 0..36i64 {
        let c = admin.customer(&format!("预测客户{i:02}"), json!({})).await;
        let id = c["id"].as_i64().expect("id");
        let (count, gap, quiet) = match i % 3 {
            0 => (3 + i % 5, 20 + i, 5),
            1 => (4 + i % 4, 10 + i % 7, 200 + 3 * i),
            _ => (1, 1, 30 + 2 * i),
        };
        let mut orders = Vec::new();
        for k in 0..count {
            let on = today - Duration::days(quiet + k * gap);
            let amount = 100_000 + 7_919 * ((i * 13 + k * 7) % 11);
            let r = admin
                .post(
                    &format!("/api/v1/customers/{id}/orders"),
                    json!({"ordered_on": on.to_string(), "amount_fen": amount}),
                )
                .await;
            assert_eq!(r.status(), StatusCode::CREATED);
            orders.push((on, amount));
        }
        histories.push((id, orders));
    }

    let report: Value = admin
        .post("/api/v1/jobs/predictions/run", json!({}))
        .await
        .json()
        .await
        .expect("json");
    let summary = &report["summary"];
    assert_eq!(summary["customers"], 36, "{report}");
    assert_eq!(summary["repeat_buyers"], 24, "{report}");
    assert_eq!(summary["changed"], 36, "{report}");
    assert!(summary["error"].is_null(), "{report}");

    // The stored outlooks are the core models' answers for the same fit.
    let seen: Vec<_> = histories
        .iter()
        .map(|(_, o)| summarize(o, today).expect("orders"))
        .collect();
    let bg = BgNbd::fit(&seen.iter().map(|s| s.0).collect::<Vec<_>>())
        .expect("fits")
        .params;
    let gg = GammaGamma::fit(
        &seen
            .iter()
            .map(|s| (s.0.frequency, s.1))
            .collect::<Vec<_>>(),
    )
    .ok()
    .map(|f| f.params);
    let mut low = 0;
    for ((id, _), (s, spend)) in histories.iter().zip(&seen) {
        let want = Predicted::of(&outlook(&bg, gg.as_ref(), s, *spend, DEFAULT_HORIZON));
        let c: Value = admin
            .get(&format!("/api/v1/customers/{id}"))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(c["p_alive"], json!(want.p_alive), "customer {id}: {c}");
        assert_eq!(c["expected_orders_90d"], json!(want.expected_orders_90d));
        assert_eq!(c["clv_fen"], json!(want.clv_fen));
        low += usize::from(want.p_alive.expect("has orders") < 5_000);
    }
    assert!(low > 0 && low < 36, "some but not all look lost: {low}");
    let quiet = &histories[1].0;
    let steady = &histories[0].0;
    let p = |c: &Value| c["p_alive"].as_i64().expect("p_alive");
    let quiet: Value = admin
        .get(&format!("/api/v1/customers/{quiet}"))
        .await
        .json()
        .await
        .expect("json");
    let steady: Value = admin
        .get(&format!("/api/v1/customers/{steady}"))
        .await
        .json()
        .await
        .expect("json");
    assert!(
        p(&quiet) < p(&steady),
        "a buyer gone quiet is less likely alive"
    );
    let unknown: Value = admin
        .get(&format!("/api/v1/customers/{}", first["id"]))
        .await
        .json()
        .await
        .expect("json");
    assert!(unknown["p_alive"].is_null(), "no orders, no outlook");

    // The customer page shows the outlook.
    let viewer = app.login("mgmt1", "management", None).await;
    let page = viewer
        .get(&format!("/customers/{}", histories[0].0))
        .await
        .text()
        .await
        .expect("html");
    let shown = format!("{:.0} %", p(&steady) as f64 / 100.0);
    assert!(
        page.contains("id=\"prediction\"") && page.contains(&shown),
        "P(alive) {shown} on the page"
    );

    // Segments select on the outlook (P(alive) < 0.5 = 活跃概率 < 50%).
    for expr in [
        "p_alive%20%3C%200.5",
        "%E6%B4%BB%E8%B7%83%E6%A6%82%E7%8E%87%20%3C%2050%25",
    ] {
        let r: Value = admin
            .get(&format!("/api/v1/segment-results?expression={expr}"))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(r["count"], json!(low), "{expr}: {r}");
    }

    // Nothing changed, nothing written; the fits are listed newest first.
    let again: Value = admin
        .post("/api/v1/jobs/predictions/run", json!({}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["summary"]["changed"], 0, "{again}");
    let runs: Value = admin
        .get("/api/v1/predictions")
        .await
        .json()
        .await
        .expect("json");
    let runs = runs.as_array().expect("list");
    assert_eq!(runs.len(), 3);
    let latest = &runs[0];
    assert!((latest["r"].as_f64().expect("r") - bg.r).abs() < 1e-9 * bg.r);
    assert!(latest["error"].is_null());
    assert!(runs[2]["r"].is_null() && runs[2]["error"].is_string());
    assert_eq!(
        service.get("/api/v1/predictions").await.status(),
        StatusCode::FORBIDDEN
    );
    app.cleanup().await;
}
