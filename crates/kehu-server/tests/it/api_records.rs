//! Contacts, orders, interactions under a customer; rollups follow writes.

use crate::both_backends;
use crate::helpers::{first_error, problem, spawn_app};
use kehu_store::Backend;
use reqwest::StatusCode;
use serde_json::{json, Value};

both_backends!(contacts_orders_interactions);

async fn contacts_orders_interactions(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.token("admin1", "admin", None).await;
    let c = s.customer("记录测试有限公司", json!({})).await;
    let id = c["id"].as_i64().expect("id");
    let today = kehu_store::today_in_china();
    let day = |n: i64| (today - chrono::Duration::days(n)).to_string();

    let p = problem(
        s.post(
            &format!("/api/v1/customers/{id}/contacts"),
            json!({"name": "王伟", "mobile": "12345"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&p),
        ("mobile".to_string(), "mobile_format".to_string())
    );
    let contact: Value = s
        .post(&format!("/api/v1/customers/{id}/contacts"), json!({"name": "王伟", "title": "采购总监", "mobile": "+86 138 1234 5678", "landline": "(021)62345678", "email": "Wang.Wei@Example.com", "is_primary": true}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(contact["mobile"], "138****5678", "answered masked");
    // Standardized as stored: in clear on request.
    let contact: Value = s
        .get(&format!("/api/v1/contacts/{}?reveal=true", contact["id"]))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (
            contact["mobile"].as_str(),
            contact["landline"].as_str(),
            contact["email"].as_str()
        ),
        (
            Some("13812345678"),
            Some("021-62345678"),
            Some("wang.wei@example.com")
        )
    );
    let second: Value = s
        .post(
            &format!("/api/v1/customers/{id}/contacts"),
            json!({"name": "李娜", "is_primary": true}),
        )
        .await
        .json()
        .await
        .expect("json");
    let first_now: Value = s
        .get(&format!("/api/v1/contacts/{}", contact["id"]))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        first_now["is_primary"], false,
        "one primary contact per customer"
    );
    assert_eq!(second["is_primary"], true);
    let patched = s
        .patch(
            &format!("/api/v1/contacts/{}", contact["id"]),
            json!({"title": "副总经理", "version": first_now["version"]}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);

    let p = problem(
        s.post(
            &format!("/api/v1/customers/{id}/orders"),
            json!({"ordered_on": day(1), "amount_fen": -100}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&p),
        ("amount_fen".to_string(), "amount_negative".to_string())
    );
    let p = problem(
        s.post(
            &format!("/api/v1/customers/{id}/orders"),
            json!({"ordered_on": day(1), "amount_fen": 1.5}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "amount_fen", "money is integer fen");
    for (d, fen) in [
        (day(10), 50_000_000),
        (day(200), 30_000_000),
        (day(400), 99_000_000),
    ] {
        assert_eq!(
            s.post(
                &format!("/api/v1/customers/{id}/orders"),
                json!({"ordered_on": d, "amount_fen": fen, "product_line": "轴承"})
            )
            .await
            .status(),
            StatusCode::CREATED
        );
    }
    let c1: Value = s
        .get(&format!("/api/v1/customers/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (c1["purchase_12m_fen"].as_i64(), c1["order_count"].as_i64()),
        (Some(80_000_000), Some(3))
    );
    let orders: Value = s
        .get(&format!("/api/v1/orders?customer_id={id}&sort=-ordered_on"))
        .await
        .json()
        .await
        .expect("json");
    let latest = orders["items"][0].clone();
    let moved = s
        .patch(
            &format!("/api/v1/orders/{}", latest["id"]),
            json!({"amount_fen": 10_000_000, "version": latest["version"]}),
        )
        .await;
    assert_eq!(moved.status(), StatusCode::OK);
    let c2: Value = s
        .get(&format!("/api/v1/customers/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        c2["purchase_12m_fen"], 40_000_000,
        "rollups follow order edits"
    );

    let p = problem(
        s.post(
            &format!("/api/v1/customers/{id}/interactions"),
            json!({"kind": "传真", "occurred_on": day(0), "summary": "x"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&p),
        ("kind".to_string(), "unknown_option".to_string())
    );
    let complaint: Value = s.post(&format!("/api/v1/customers/{id}/interactions"), json!({"kind": "投诉", "occurred_on": day(0), "summary": "交货延期三天", "severity": "high"})).await.json().await.expect("json");
    assert_eq!(
        (
            complaint["kind"].as_str(),
            complaint["status"].as_str(),
            complaint["severity"].as_str()
        ),
        (Some("complaint"), Some("open"), Some("high"))
    );
    let c3: Value = s
        .get(&format!("/api/v1/customers/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (
            c3["complaints_365d"].as_i64(),
            c3["last_interaction_on"].as_str()
        ),
        (Some(1), Some(day(0).as_str()))
    );
    let resolved = s
        .patch(
            &format!("/api/v1/interactions/{}", complaint["id"]),
            json!({"status": "resolved", "version": complaint["version"]}),
        )
        .await;
    assert_eq!(resolved.status(), StatusCode::OK);
    assert_eq!(
        s.delete(&format!(
            "/api/v1/interactions/{}?version=2",
            complaint["id"]
        ))
        .await
        .status(),
        StatusCode::NO_CONTENT
    );
    let c4: Value = s
        .get(&format!("/api/v1/customers/{id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(c4["complaints_365d"], 0);
    let list: Value = s
        .get(&format!("/api/v1/contacts?customer_id={id}&sort=name"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2));
    app.cleanup().await;
}
