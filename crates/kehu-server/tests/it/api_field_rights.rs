//! Field rights over the customer's business fields (`customer.*`): what
//! each role sees of a record, on the API, in lists, searches, exports and
//! on the pages, and what it may change.

use crate::both_backends;
use crate::helpers::{
    first_error, ok_json, problem, refused_naming, set_rights, spawn_app, upload_import, Session,
};
use kehu_store::Backend;
use reqwest::StatusCode;
use serde_json::{json, Value};

both_backends!(business_fields_by_role, record_fields_by_role);

const USCC: &str = "91350100M000100Y43";

async fn items(s: &Session, query: &str) -> Vec<Value> {
    let page = ok_json(s.get(&format!("/api/v1/customers?{query}")).await).await;
    page["items"].as_array().cloned().unwrap_or_default()
}

async fn business_fields_by_role(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    // Signed in (not a token): the same session also uses the pages.
    let rep = app.login("rep1", "sales_rep", Some("华东一组")).await;
    let service = app.token("kefu1", "service", None).await;

    let c = rep
        .customer(
            "字段权限精工有限公司",
            json!({"uscc": USCC, "employees": 320, "annual_revenue_fen": 5_000_000_000i64,
                   "declared_annual_purchase_fen": 120_000_000, "province": "江苏", "city": "苏州",
                   "address": "江苏省苏州市工业园区星湖街 88 号", "notes": "年底预算充足"}),
        )
        .await;
    let id = c["id"].as_i64().expect("id");
    let path = format!("/api/v1/customers/{id}");
    assert_eq!(
        c["annual_revenue_fen"], 5_000_000_000i64,
        "the writer sees it"
    );
    assert_eq!(c["withheld_fields"], json!([]));

    // 客服 as preset: the customer without its revenue and declared purchases.
    let seen = ok_json(service.get(&path).await).await;
    assert!(seen["annual_revenue_fen"].is_null(), "{seen}");
    assert!(seen["declared_annual_purchase_fen"].is_null(), "{seen}");
    assert_eq!(
        seen["withheld_fields"],
        json!(["annual_revenue_fen", "declared_annual_purchase_fen"])
    );
    assert_eq!(seen["uscc"], USCC);
    assert_eq!(seen["industry"], "制造业");
    assert_eq!(seen["employees"], 320);
    // Nor can it sort or filter on them to learn them.
    for query in [
        "sort=-annual_revenue_fen",
        "annual_revenue_fen.gte=1",
        "declared_annual_purchase_fen=120000000",
    ] {
        refused_naming(
            service.get(&format!("/api/v1/customers?{query}")).await,
            "_fen",
        )
        .await;
    }
    assert_eq!(items(&service, "sort=-employees").await.len(), 1);
    // Explanations keep the values read from those fields too: without
    // orders the declared purchase stands in for 年采购额, and 企业规模
    // reads the revenue; the changes that would start from them go too.
    let indicator = |list: &Value, scheme: &str, key: &str| -> Value {
        let e = list
            .as_array()
            .expect("explanations")
            .iter()
            .find(|e| e["scheme"] == scheme)
            .expect("scheme")["explanation"]
            .clone();
        let line = e["indicators"]
            .as_array()
            .expect("indicators")
            .iter()
            .find(|i| i["key"] == key)
            .expect("indicator")
            .clone();
        let moves = e["nearest"].as_array().cloned().unwrap_or_default();
        json!({"shown": line["shown"], "moves": moves.iter().filter(|m| m["indicator"] == key).count()})
    };
    let why = format!("{path}/explanations");
    let theirs = ok_json(service.get(&why).await).await;
    let mine = ok_json(rep.get(&why).await).await;
    for (scheme, key) in [
        ("value_tier", "annual_purchase"),
        ("industry_size", "revenue"),
    ] {
        let kept = indicator(&theirs, scheme, key);
        assert_eq!(
            kept,
            json!({"shown": "（无权查看）", "moves": 0}),
            "{scheme}.{key}"
        );
        let shown = indicator(&mine, scheme, key);
        assert_ne!(shown["shown"], "（无权查看）", "{scheme}.{key}: {shown}");
    }
    assert!(
        indicator(&mine, "value_tier", "annual_purchase")["moves"].as_u64() > Some(0),
        "the rep sees how far the next class is"
    );
    assert_ne!(
        indicator(&theirs, "value_tier", "coop_months")["shown"],
        "（无权查看）"
    );

    // The admin narrows 客服 further: USCC masked, address and industry hidden.
    set_rights(
        &admin,
        "service",
        &[
            ("customer.uscc", "masked"),
            ("customer.address", "hidden"),
            ("customer.industry", "hidden"),
        ],
    )
    .await;
    let seen = ok_json(service.get(&path).await).await;
    assert_eq!(seen["uscc"], "91************0Y43");
    assert!(
        seen["address"].is_null() && seen["industry"].is_null(),
        "{seen}"
    );
    assert_eq!(
        seen["withheld_fields"],
        json!([
            "industry",
            "annual_revenue_fen",
            "address",
            "declared_annual_purchase_fen"
        ])
    );
    // Lists, searches and exports show the same.
    let listed = items(&service, "q=字段权限").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["uscc"], "91************0Y43");
    assert!(listed[0]["industry"].is_null());
    assert!(
        items(&service, &format!("q={USCC}")).await.is_empty(),
        "a masked USCC is not searched"
    );
    assert_eq!(items(&rep, &format!("q={USCC}")).await.len(), 1);
    problem(
        service.get("/api/v1/customers?industry=制造业").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let r = service.get("/api/v1/customers/export?format=csv").await;
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.expect("csv");
    let header = csv.lines().next().unwrap_or_default();
    assert!(
        header.contains("统一社会信用代码") && header.contains("省份"),
        "{header}"
    );
    assert!(
        !header.contains("所属行业"),
        "hidden column left out: {header}"
    );
    assert!(
        csv.contains("91************0Y43") && !csv.contains(USCC),
        "{csv}"
    );
    let full = admin.get("/api/v1/customers/export?format=csv").await;
    let full = full.text().await.expect("csv");
    assert!(full.contains("所属行业") && full.contains(USCC), "{full}");

    // A rep who may see the revenue but not change it.
    set_rights(&admin, "sales_rep", &[("customer.annual_revenue", "clear")]).await;
    let version = ok_json(rep.get(&path).await).await["version"].clone();
    let refused = problem(
        rep.patch(&path, json!({"annual_revenue_fen": 1, "version": version}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&refused),
        ("annual_revenue_fen".to_string(), "not_editable".to_string())
    );
    let changed = ok_json(
        rep.patch(&path, json!({"employees": 350, "version": version}))
            .await,
    )
    .await;
    assert_eq!(changed["employees"], 350);
    assert_eq!(changed["annual_revenue_fen"], 5_000_000_000i64, "kept");
    let created = problem(
        rep.post(
            "/api/v1/customers",
            json!({"name": "新建营业额公司", "cooperation_start_on": "2022-01-01",
                   "annual_revenue_fen": 100}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&created).0, "annual_revenue_fen");

    // A custom field that is not personal: unrestricted until a role has
    // an entry for it, then kept from a reader who may not see it, and
    // changed only with the edit right.
    ok_json(
        admin
            .post(
                "/api/v1/custom-fields",
                json!({"key": "credit_limit", "label": "授信额度", "group": "cooperation", "kind": "money"}),
            )
            .await,
    )
    .await;
    let version = ok_json(rep.get(&path).await).await["version"].clone();
    ok_json(
        rep.patch(
            &path,
            json!({"custom_fields": {"credit_limit": 50_000_000}, "version": version}),
        )
        .await,
    )
    .await;
    assert_eq!(
        ok_json(service.get(&path).await).await["custom_fields"]["credit_limit"],
        50_000_000,
        "no entry: as its record"
    );
    set_rights(&admin, "service", &[("cf.credit_limit", "hidden")]).await;
    set_rights(&admin, "sales_rep", &[("cf.credit_limit", "clear")]).await;
    let seen = ok_json(service.get(&path).await).await;
    assert!(
        seen["custom_fields"].get("credit_limit").is_none(),
        "{seen}"
    );
    assert!(
        seen["withheld_fields"]
            .as_array()
            .expect("withheld")
            .contains(&json!("custom_fields.credit_limit")),
        "{seen}"
    );
    refused_naming(
        service.get("/api/v1/customers?cf.credit_limit.gte=1").await,
        "cf.credit_limit",
    )
    .await;
    let mine = ok_json(rep.get(&path).await).await;
    assert_eq!(mine["custom_fields"]["credit_limit"], 50_000_000);
    let refused = problem(
        rep.patch(
            &path,
            json!({"custom_fields": {"credit_limit": 1}, "version": mine["version"]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&refused),
        (
            "custom_fields.credit_limit".to_string(),
            "not_editable".to_string()
        )
    );

    // On the pages: the edit form shows the revenue locked, saving the
    // form keeps it; the customer page says what is not shown.
    let rep_page = &rep;
    let base = &app.base;
    let form = rep_page.html(&format!("/customers/{id}/edit")).await;
    assert!(
        form.contains(r#"name="annual_revenue_fen" disabled"#)
            && form.contains(r#"name="custom_fields.credit_limit" disabled"#),
        "locked fields: {form}"
    );
    assert!(form.contains(r#"name="employees" value="350""#), "{form}");
    let csrf = form
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("csrf")
        .to_string();
    let version = ok_json(rep.get(&path).await).await["version"].to_string();
    let saved = rep_page
        .client
        .post(format!("{base}/customers/{id}/edit"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("version", version.as_str()),
            ("name", "字段权限精工有限公司"),
            ("industry", "制造业"),
            ("employees", "360"),
            ("province", "江苏"),
            ("city", "苏州"),
            ("sales_region", "华东"),
            ("status", "active"),
            ("cooperation_start_on", "2021-03-15"),
            ("uscc", USCC),
            ("address", "江苏省苏州市工业园区星湖街 88 号"),
            ("declared_annual_purchase_fen", "120"),
            ("notes", "年底预算充足"),
        ])
        .send()
        .await
        .expect("post");
    // Saved: redirected (and followed) to the customer's page.
    assert_eq!(saved.url().path(), format!("/customers/{id}"));
    let after = ok_json(admin.get(&path).await).await;
    assert_eq!(after["employees"], 360);
    assert_eq!(after["annual_revenue_fen"], 5_000_000_000i64);
    assert_eq!(after["custom_fields"]["credit_limit"], 50_000_000, "kept");

    let kefu_page = app.login("kefu2", "service", None).await;
    let detail = kefu_page.html(&format!("/customers/{id}")).await;
    assert!(detail.contains("（无权查看）"), "{detail}");
    assert!(detail.contains("91************0Y43") && !detail.contains(USCC));
    assert!(!detail.contains("星湖街"), "hidden address on the page");
    assert!(
        !detail.contains("5,000") && !detail.contains("500.00万"),
        "no credit limit"
    );
    let edit = kefu_page.get(&format!("/customers/{id}/edit")).await;
    assert_ne!(
        edit.status(),
        StatusCode::OK,
        "客服 does not edit customers"
    );
    app.cleanup().await;
}

/// The fields of contacts, orders and interactions under rights, and the
/// figures derived from order amounts: withheld on the API, in lists, on
/// the customer page, in explanations, segments and exports; refused as
/// filters; written — by the API, the forms or an import — only with the
/// edit right.
async fn record_fields_by_role(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let rep = app.token("rep1", "sales_rep", Some("华东一组")).await;
    let service = app.login("kefu1", "service", None).await;
    // 客服 here serves without order amounts or contacts' notes, and may
    // read satisfaction scores but not record them.
    set_rights(
        &admin,
        "service",
        &[
            ("order.amount", "hidden"),
            ("contact.notes", "hidden"),
            ("interaction.satisfaction", "clear"),
        ],
    )
    .await;

    let c = rep.customer("记录字段权限有限公司", json!({})).await;
    let id = c["id"].as_i64().expect("id");
    let contact = ok_json(
        rep.post(
            &format!("/api/v1/customers/{id}/contacts"),
            json!({"name": "王小明", "title": "采购经理", "notes": "周三下午方便"}),
        )
        .await,
    )
    .await;
    // Ten days ago: inside every 12-month window, whatever the date.
    let ordered_on = (chrono::Utc::now().date_naive() - chrono::Days::new(10)).to_string();
    let order = ok_json(
        rep.post(
            &format!("/api/v1/customers/{id}/orders"),
            json!({"ordered_on": ordered_on, "amount_fen": 80_000_000, "product_line": "数控机床", "notes": "分两批交付"}),
        )
        .await,
    )
    .await;
    ok_json(
        rep.post(
            &format!("/api/v1/customers/{id}/interactions"),
            json!({"kind": "visit", "occurred_on": "2024-03-02", "summary": "上门拜访", "satisfaction": 4}),
        )
        .await,
    )
    .await;

    // The records as 客服 reads them.
    let o = ok_json(
        service
            .get(&format!("/api/v1/orders/{}", order["id"]))
            .await,
    )
    .await;
    assert!(o["amount_fen"].is_null(), "{o}");
    assert_eq!(o["withheld_fields"], json!(["amount_fen"]));
    assert_eq!(o["product_line"], "数控机床");
    let listed = ok_json(
        service
            .get(&format!("/api/v1/orders?customer_id={id}"))
            .await,
    )
    .await;
    assert!(listed["items"][0]["amount_fen"].is_null(), "{listed}");
    for query in ["amount_fen.gte=1", "sort=-amount_fen"] {
        refused_naming(
            service.get(&format!("/api/v1/orders?{query}")).await,
            "amount_fen",
        )
        .await;
    }
    let by_line = ok_json(service.get("/api/v1/orders?q=数控").await).await;
    assert_eq!(
        by_line["items"].as_array().map(Vec::len),
        Some(1),
        "a product line it sees"
    );
    assert_eq!(
        ok_json(rep.get(&format!("/api/v1/orders/{}", order["id"])).await).await["amount_fen"],
        80_000_000
    );
    let p = ok_json(
        service
            .get(&format!("/api/v1/contacts/{}", contact["id"]))
            .await,
    )
    .await;
    assert!(p["notes"].is_null(), "{p}");
    assert_eq!(p["title"], "采购经理");
    assert_eq!(p["withheld_fields"], json!(["notes"]));
    let i = ok_json(
        service
            .get(&format!("/api/v1/interactions?customer_id={id}"))
            .await,
    )
    .await;
    assert_eq!(i["items"][0]["satisfaction"], 4, "{i}");
    assert_eq!(i["items"][0]["summary"], "上门拜访");

    // The customer's figures derived from amounts go with them.
    let path = format!("/api/v1/customers/{id}");
    let seen = ok_json(service.get(&path).await).await;
    assert!(seen["purchase_12m_fen"].is_null(), "{seen}");
    let withheld = seen["withheld_fields"].as_array().expect("withheld");
    assert!(withheld.contains(&json!("purchase_12m_fen")), "{seen}");
    assert_eq!(
        ok_json(rep.get(&path).await).await["purchase_12m_fen"],
        80_000_000
    );
    for query in [
        "/api/v1/customers?sort=-purchase_12m_fen",
        "/api/v1/customers?purchase_12m_fen.gte=1",
        "/api/v1/segment-results?expression=purchase_12m_fen%20%3E%3D%201",
        "/api/v1/segment-results?expression=%E8%BF%9130%E5%A4%A9%E9%87%87%E8%B4%AD%E9%A2%9D%20%3E%3D%201",
    ] {
        refused_naming(service.get(query).await, "purchase_").await;
    }
    // Nor saves a segment on them, nor sees the months' purchases.
    refused_naming(
        service
            .post(
                "/api/v1/segments",
                json!({"name": "大单", "expression": "purchase_12m_fen >= 1"}),
            )
            .await,
        "purchase_12m_fen",
    )
    .await;
    let board = ok_json(service.get("/api/v1/dashboard").await).await;
    assert!(board["revenue"].is_null(), "{board}");
    assert!(ok_json(rep.get("/api/v1/dashboard").await).await["revenue"].is_array());
    let found = ok_json(
        service
            .get("/api/v1/segment-results?expression=order_count%20%3E%3D%201")
            .await,
    )
    .await;
    assert_eq!(found["count"], 1, "a count is no amount");
    assert!(found["customers"][0]["purchase_12m_fen"].is_null());
    // The explanation's 年采购额 now reads the orders: kept from 客服.
    let why = ok_json(service.get(&format!("{path}/explanations")).await).await;
    let tier = why
        .as_array()
        .expect("explanations")
        .iter()
        .find(|e| e["scheme"] == "value_tier")
        .expect("value_tier")["explanation"]
        .clone();
    let line = tier["indicators"]
        .as_array()
        .expect("indicators")
        .iter()
        .find(|l| l["key"] == "annual_purchase")
        .expect("annual_purchase")
        .clone();
    assert_eq!(line["shown"], "（无权查看）", "{line}");
    assert!(!tier["nearest"]
        .as_array()
        .expect("nearest")
        .iter()
        .any(|n| n["indicator"] == "annual_purchase"));
    let csv = service.get("/api/v1/customers/export?format=csv").await;
    let csv = csv.text().await.expect("csv");
    assert!(!csv.contains("采购额"), "{csv}");
    // The customer page: amounts and notes say they are not shown.
    let page = service.html(&format!("/customers/{id}")).await;
    assert!(page.contains("数控机床") && page.contains("（无权查看）"));
    assert!(
        !page.contains("800000.00") && !page.contains("80.00万"),
        "{page}"
    );
    assert!(
        rep_sees_amount_on_page(&app, id).await,
        "the same page shows the rep the amount"
    );

    // Writing: 客服 logs a complaint but may not score it.
    let refused = problem(
        service
            .post(
                &format!("/api/v1/customers/{id}/interactions"),
                json!({"kind": "complaint", "occurred_on": "2024-03-03", "summary": "交期延误", "severity": "medium", "satisfaction": 2}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&refused),
        ("satisfaction".to_string(), "not_editable".to_string())
    );
    ok_json(
        service
            .post(
                &format!("/api/v1/customers/{id}/interactions"),
                json!({"kind": "complaint", "occurred_on": "2024-03-03", "summary": "交期延误", "severity": "medium"}),
            )
            .await,
    )
    .await;

    // A rep who may read amounts but not set them: no new order, no
    // changed amount — by the API or by an import — yet other fields change.
    set_rights(
        &admin,
        "sales_rep",
        &[("order.amount", "clear"), ("contact.title", "clear")],
    )
    .await;
    let refused = problem(
        rep.post(
            &format!("/api/v1/customers/{id}/orders"),
            json!({"ordered_on": "2024-04-01", "amount_fen": 100}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&refused),
        ("amount_fen".to_string(), "not_editable".to_string())
    );
    let order_path = format!("/api/v1/orders/{}", order["id"]);
    let version = order["version"].clone();
    problem(
        rep.patch(&order_path, json!({"amount_fen": 1, "version": version}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let changed = ok_json(
        rep.patch(
            &order_path,
            json!({"notes": "一次交付", "version": version}),
        )
        .await,
    )
    .await;
    assert_eq!(changed["amount_fen"], 80_000_000, "kept");
    let refused = problem(
        rep.patch(
            &format!("/api/v1/contacts/{}", contact["id"]),
            json!({"title": "总经理", "version": contact["version"]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&refused).0, "title");
    let code = c["code"].as_str().expect("code");
    let file = format!("客户编号,下单日期,金额(元),产品线\n{code},2024-05-01,1200,数控机床\n");
    let r = upload_import(&rep, "orders", "o.csv", file.into_bytes()).await;
    let report: Value = r.json().await.expect("report");
    assert_eq!(report["counts"]["invalid"], 1, "{report}");
    assert_eq!(report["problems"][0]["code"], "not_editable", "{report}");
    assert_eq!(report["problems"][0]["column"], "金额(元)", "{report}");

    // A teammate's shared segment on purchases counts nothing for a rep
    // kept from amounts.
    let shared = ok_json(
        rep.post(
            "/api/v1/segments",
            json!({"name": "有采购", "expression": "purchase_12m_fen >= 1", "shared": true}),
        )
        .await,
    )
    .await;
    assert_eq!(shared["count"], 1);
    set_rights(&admin, "sales_rep", &[("order.amount", "hidden")]).await;
    let teammate = app.token("rep3", "sales_rep", Some("华东一组")).await;
    let listed = ok_json(teammate.get("/api/v1/segments").await).await;
    let theirs = listed
        .as_array()
        .expect("segments")
        .iter()
        .find(|s| s["id"] == shared["id"])
        .expect("shared segment")
        .clone();
    assert!(theirs["count"].is_null(), "{theirs}");
    // Nor does a report reader kept from amounts narrow a report to them.
    set_rights(&admin, "management", &[("order.amount", "hidden")]).await;
    let boss = app.login("boss1", "management", None).await;
    let asked = "period=2026-Q3&segment=purchase_12m_fen%20%3E%3D%201";
    refused_naming(
        boss.get(&format!("/api/v1/reports/classification?{asked}"))
            .await,
        "purchase_12m_fen",
    )
    .await;
    let page = boss.html(&format!("/reports/classification?{asked}")).await;
    assert!(page.contains("不能按 purchase_12m_fen 筛选"), "{page}");
    let fine = boss
        .get("/api/v1/reports/classification?period=2026-Q3&segment=order_count%20%3E%3D%201")
        .await;
    assert_eq!(fine.status(), StatusCode::OK);
    app.cleanup().await;
}

/// Whether a rep's customer page shows the order of 80 万 (as the
/// 12 months' purchases and in the orders table).
async fn rep_sees_amount_on_page(app: &crate::helpers::TestApp, id: i64) -> bool {
    let rep = app.login("rep2", "sales_rep", Some("华东一组")).await;
    let page = rep.html(&format!("/customers/{id}")).await;
    page.contains("80.00万") && page.contains("800000.00")
}
