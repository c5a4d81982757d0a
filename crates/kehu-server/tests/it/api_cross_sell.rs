//! Cross-selling through the API and the pages: a customer's peers (same
//! class, industry and size), the product most of them buy that it never
//! bought with its evidence, the similar customers the reader may see, the
//! population's opportunities per product with the customers behind them,
//! CSV, bad parameters and rights.

use crate::both_backends;
use crate::helpers::{first_error, listed_ids, ok_json, problem, spawn_app, Session};
use reqwest::StatusCode;
use serde_json::{json, Value};

both_backends!(
    cross_selling_from_what_similar_customers_buy,
    cross_selling_as_of_a_past_period
);

async fn order(s: &Session, id: i64, on: &str, line: &str) {
    let r = s
        .post(
            &format!("/api/v1/customers/{id}/orders"),
            json!({"ordered_on": on, "amount_fen": 100_000, "product_line": line}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED, "order {line}");
}

async fn cross_selling_from_what_similar_customers_buy(backend: kehu_store::Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let boss = app.token("boss", "management", None).await;
    let rep = app.token("rep1", "sales_rep", Some("华东")).await;
    let service = app.token("svc1", "service", None).await;
    let recent = (app.store.today() - chrono::Days::new(30)).to_string();

    // 26 manufacturers of 200 staff (中型), alike but for what they buy:
    // 0 bought 产品B; 1–20 产品A; 21–25 产品B. One order of 1,000 yuan each,
    // so all share one value_tier class. The rep owns 0 and 21.
    let mut ids = Vec::new();
    for i in 0..26 {
        let owner = if i == 0 || i == 21 {
            json!(rep.user_id)
        } else {
            Value::Null
        };
        let c = admin
            .customer(
                &format!("交叉客户{i:02}"),
                json!({"employees": 200, "owner_id": owner}),
            )
            .await;
        let id = c["id"].as_i64().expect("id");
        let line = if (1..=20).contains(&i) {
            "产品A"
        } else {
            "产品B"
        };
        order(&admin, id, &recent, line).await;
        ids.push(id);
    }
    // Someone of another industry who buys 产品C: not a peer.
    let other = admin
        .customer("服务商", json!({"industry": "金融", "employees": 200}))
        .await;
    order(&admin, other["id"].as_i64().expect("id"), &recent, "产品C").await;

    // Before today's buying is in memory the customer page says it is coming
    // (and loads it in the background) rather than making the reader wait.
    let early = app.login("early", "management", None).await;
    let page = early
        .get(&format!("/customers/{}", ids[0]))
        .await
        .text()
        .await
        .expect("html");
    assert!(page.contains("id=\"cross-sell-pending\""), "{page}");

    let classes = ok_json(
        admin
            .get(&format!("/api/v1/customers/{}/classes", ids[0]))
            .await,
    )
    .await;
    let tier = crate::helpers::of_scheme(&classes, "value_tier")["class"]
        .as_str()
        .expect("value_tier class")
        .to_string();

    // The customer: peers are the 25 others; 20 of them buy 产品A.
    let x = ok_json(
        admin
            .get(&format!("/api/v1/customers/{}/cross-sell", ids[0]))
            .await,
    )
    .await;
    assert_eq!(x["group"]["peers"], 25, "{x}");
    assert_eq!(x["group"]["widened"], false);
    assert_eq!(x["group"]["label"], format!("{tier} · 制造业 · 中型"));
    assert_eq!(
        x["group"]["expression"],
        format!("value_tier = {tier} AND industry = 制造业 AND industry_size = 中型")
    );
    let suggestions = x["suggestions"].as_array().expect("suggestions");
    assert_eq!(
        suggestions.len(),
        1,
        "产品B is bought already, 产品C is not the peers': {x}"
    );
    assert_eq!(suggestions[0]["product"], "产品A");
    assert_eq!(suggestions[0]["share"], 8000);
    assert_eq!(
        suggestions[0]["evidence_zh"],
        format!("同类（{tier} · 制造业 · 中型）客户中 80% 近12个月购买 产品A（20/25 家）")
    );
    // The most similar: 21–25 bought what it bought, as much, as often.
    let similar: Vec<i64> = x["similar"]
        .as_array()
        .expect("similar")
        .iter()
        .map(|s| s["customer_id"].as_i64().expect("id"))
        .collect();
    assert_eq!(similar[..5], ids[21..26]);
    assert_eq!(x["similar"][0]["score"], 100);
    assert_eq!(x["similar"][0]["shared_products"], json!(["产品B"]));

    // A higher bar: nothing reaches 81 %.
    let strict = ok_json(
        admin
            .get(&format!(
                "/api/v1/customers/{}/cross-sell?min_share=81",
                ids[0]
            ))
            .await,
    )
    .await;
    assert_eq!(strict["suggestions"], json!([]));

    // The rep sees the evidence but names only the customers it may read.
    let mine = ok_json(
        rep.get(&format!("/api/v1/customers/{}/cross-sell", ids[0]))
            .await,
    )
    .await;
    assert_eq!(mine["suggestions"], x["suggestions"]);
    let named: Vec<i64> = mine["similar"]
        .as_array()
        .expect("similar")
        .iter()
        .map(|s| s["customer_id"].as_i64().expect("id"))
        .collect();
    assert_eq!(named, [ids[21]]);
    let r = rep
        .get(&format!("/api/v1/customers/{}/cross-sell", ids[5]))
        .await;
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "another's customer looks like a missing one"
    );

    // The population: 产品A is bought by 20 of the group's 26; the other
    // six (0 and 21–25) are its opportunities. 产品B (6 of 26) is under 30 %.
    let report = ok_json(boss.get("/api/v1/reports/cross-sell").await).await;
    assert_eq!(report["population"], 27);
    let product = |r: &Value, name: &str| -> Value {
        r["products"]
            .as_array()
            .expect("products")
            .iter()
            .find(|p| p["product"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name}: {r}"))
    };
    let a = product(&report, "产品A");
    assert_eq!(
        (a["buyers"].clone(), a["customers"].clone()),
        (json!(20), json!(6))
    );
    assert_eq!(a["groups"][0]["members"], 26);
    assert_eq!(a["groups"][0]["share"], 7692);
    assert_eq!(product(&report, "产品B")["customers"], 0);
    let listed = listed_ids(
        &boss,
        "/api/v1/reports/cross-sell/customers?product=%E4%BA%A7%E5%93%81A",
    )
    .await;
    assert_eq!(
        listed,
        [ids[0], ids[21], ids[22], ids[23], ids[24], ids[25]]
    );
    // At 20 %, 产品B's non-buyers in the group (1–20) are opportunities too.
    let low = ok_json(boss.get("/api/v1/reports/cross-sell?min_share=20").await).await;
    assert_eq!(product(&low, "产品B")["customers"], 20);
    // A segment (the rep's customers: 0 and 21) narrows whose
    // opportunities are counted, not the evidence.
    let seg = ok_json(
        boss.get(&format!(
            "/api/v1/reports/cross-sell?segment=owner_id%20%3D%20{}",
            rep.user_id
        ))
        .await,
    )
    .await;
    assert_eq!(seg["population"], 2);
    let a = product(&seg, "产品A");
    assert_eq!(
        (a["customers"].clone(), a["groups"][0]["members"].clone()),
        (json!(2), json!(26))
    );

    // CSV of the groups.
    let r = boss
        .get("/api/v1/reports/cross-sell?format=csv&table=groups")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.expect("csv");
    assert!(csv.starts_with("\u{feff}产品,同类组"), "{csv}");
    assert!(csv.contains("产品A"), "{csv}");

    // Bad parameters name the field.
    for (path, field) in [
        ("/api/v1/reports/cross-sell?min_share=0", "min_share"),
        ("/api/v1/reports/cross-sell?min_share=abc", "min_share"),
        ("/api/v1/reports/cross-sell?scheme=nope", "scheme"),
        ("/api/v1/reports/cross-sell?format=docx", "format"),
        ("/api/v1/reports/cross-sell?format=csv&table=pie", "table"),
        ("/api/v1/reports/cross-sell/customers", "product"),
        (
            "/api/v1/reports/cross-sell/customers?product=%E4%BA%A7%E5%93%81Z",
            "product",
        ),
    ] {
        let p = problem(boss.get(path).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(first_error(&p).0, field, "{path}: {p}");
    }
    // 客服 reads no reports.
    let r = service.get("/api/v1/reports/cross-sell").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A role kept from industries is not told one by the peer group: its
    // groups leave industry out, and the definitions say so; purchases of
    // similar customers are withheld from a role kept from amounts.
    crate::helpers::set_rights(
        &admin,
        "service",
        &[("customer.industry", "hidden"), ("order.amount", "hidden")],
    )
    .await;
    let theirs = ok_json(
        service
            .get(&format!("/api/v1/customers/{}/cross-sell", ids[0]))
            .await,
    )
    .await;
    assert_eq!(
        theirs["group"]["label"],
        format!("{tier} · 中型"),
        "{theirs}"
    );
    assert!(!theirs.to_string().contains("制造业"), "{theirs}");
    assert!(theirs["definitions"][0]
        .as_str()
        .unwrap_or_default()
        .contains("不按行业分组"));
    let similar = theirs["similar"].as_array().expect("similar");
    assert!(!similar.is_empty());
    assert!(
        similar.iter().all(|s| s["purchase_12m_fen"].is_null()),
        "{theirs}"
    );

    // The pages: the customer's card and the report with its lists.
    let web = app.login("boss2", "management", None).await;
    let page = web
        .get(&format!("/customers/{}", ids[0]))
        .await
        .text()
        .await
        .expect("html");
    assert!(page.contains("id=\"cross-sell\""), "{page}");
    assert!(page.contains("80% 近12个月购买 产品A"), "{page}");
    let page = web
        .get("/reports/cross-sell")
        .await
        .text()
        .await
        .expect("html");
    assert!(page.contains("data-product=\"产品A\""), "{page}");
    let page = web
        .get("/reports/cross-sell/customers?product=%E4%BA%A7%E5%93%81A")
        .await
        .text()
        .await
        .expect("html");
    assert!(page.contains("交叉客户00"), "{page}");
    let page = web
        .get("/reports/cross-sell?min_share=500")
        .await
        .text()
        .await
        .expect("html");
    assert!(page.contains("id=\"report-error\""), "{page}");
    app.cleanup().await;
}

/// A past period's report reads the buying and the classes of its last
/// day: what was bought then (not what is bought now), among the customers
/// that existed then.
async fn cross_selling_as_of_a_past_period(backend: kehu_store::Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let boss = app.token("boss", "management", None).await;
    let today = app.store.today();
    let then = kehu_core::strategy::Period::quarter_of(today - chrono::Months::new(24));
    let recent = (today - chrono::Days::new(30)).to_string();
    let in_then = (then.start + chrono::Days::new(10)).to_string();
    let created = (then.start - chrono::Days::new(100))
        .and_hms_opt(2, 0, 0)
        .expect("time")
        .and_utc();
    // 22 manufacturers of 200 staff, 潜力型 and 中型 since the period began.
    // Then, 1–20 bought 产品C; now, everyone buys 产品A.
    let mut ids = Vec::new();
    for i in 0..22 {
        let c = admin
            .customer(&format!("往期客户{i:02}"), json!({"employees": 200}))
            .await;
        let id = c["id"].as_i64().expect("id");
        app.backdate_customer(id, created).await;
        app.class_since(id, "value_tier", "潜力型", then.start)
            .await;
        app.class_since(id, "industry_size", "中型", then.start)
            .await;
        if (1..=20).contains(&i) {
            order(&admin, id, &in_then, "产品C").await;
        }
        order(&admin, id, &recent, "产品A").await;
        ids.push(id);
    }
    // Created since: not in the past period's population.
    let late = admin.customer("新来客户", json!({"employees": 200})).await;
    order(&admin, late["id"].as_i64().expect("id"), &recent, "产品C").await;

    let path = format!("/api/v1/reports/cross-sell?period={}", then.label());
    let past = ok_json(boss.get(&path).await).await;
    assert_eq!(past["as_of"], then.end.to_string(), "{past}");
    assert_eq!(past["population"], 22, "{past}");
    let products: Vec<&str> = past["products"]
        .as_array()
        .expect("products")
        .iter()
        .map(|p| p["product"].as_str().expect("name"))
        .collect();
    assert_eq!(products, ["产品C"], "产品A was not bought yet: {past}");
    let c = &past["products"][0];
    assert_eq!(
        (
            c["buyers"].clone(),
            c["customers"].clone(),
            c["groups"][0]["members"].clone()
        ),
        (json!(20), json!(2), json!(22)),
        "{past}"
    );
    let path = format!(
        "/api/v1/reports/cross-sell/customers?product=%E4%BA%A7%E5%93%81C&period={}",
        then.label()
    );
    assert_eq!(listed_ids(&boss, &path).await, [ids[0], ids[21]]);
    // Today 产品C is bought by one customer in twenty-three: no opportunity.
    let now = ok_json(boss.get("/api/v1/reports/cross-sell").await).await;
    assert_eq!(now["as_of"], today.to_string());
    assert!(
        now["products"]
            .as_array()
            .expect("products")
            .iter()
            .all(|p| p["product"] != "产品C" || p["customers"] == 0),
        "{now}"
    );
    // The period under way reads today; one not begun is refused.
    let current = kehu_core::strategy::Period::quarter_of(today);
    let r = ok_json(
        boss.get(&format!(
            "/api/v1/reports/cross-sell?period={}",
            current.label()
        ))
        .await,
    )
    .await;
    assert_eq!(r["as_of"], today.to_string());
    let p = problem(
        boss.get("/api/v1/reports/cross-sell?period=2099-Q1").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "period", "{p}");
    app.cleanup().await;
}
