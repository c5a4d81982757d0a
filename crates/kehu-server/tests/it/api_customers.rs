//! Customers: validation, localized problems, optimistic concurrency, lists, custom fields.

use crate::both_backends;
use crate::helpers::{error_fields, first_error, problem, spawn_app};
use kehu_store::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both_backends!(
    create_read_and_validate,
    errors_in_chinese_and_english,
    optimistic_concurrency,
    list_filter_sort_page,
    custom_fields_like_builtin,
    delete_cascades
);

async fn create_read_and_validate(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.token("admin1", "admin", None).await;
    let c = s
        .customer("  华东精密制造（苏州）有限公司 ", json!({"uscc": "91350100m000100y43", "industry": "工业", "address": "江苏省苏州市工业园区", "sales_region": null, "declared_annual_purchase_fen": 120000000}))
        .await;
    assert_eq!(c["name"], "华东精密制造(苏州)有限公司");
    assert_eq!(c["uscc"], "91350100M000100Y43");
    assert_eq!(c["industry"], "制造业");
    assert_eq!(c["province"], "江苏");
    assert_eq!(c["sales_region"], "华东");
    assert!(c["code"].as_str().is_some_and(|code| code.starts_with('C')));
    let r = s.get(&format!("/api/v1/customers/{}", c["id"])).await;
    assert_eq!(
        r.headers().get("etag").and_then(|v| v.to_str().ok()),
        Some("\"v1\"")
    );
    // table of refusals: (body, field, code)
    let cases = [
        (
            json!({"cooperation_start_on": "2021-01-01"}),
            "name",
            "required",
        ),
        (json!({"name": "甲"}), "cooperation_start_on", "required"),
        (
            json!({"name": "甲", "cooperation_start_on": "2021-02-30"}),
            "cooperation_start_on",
            "date_format",
        ),
        (
            json!({"name": "甲", "cooperation_start_on": "2021-01-01", "declared_annual_purchase_fen": -1}),
            "declared_annual_purchase_fen",
            "amount_negative",
        ),
        (
            json!({"name": "甲", "cooperation_start_on": "2021-01-01", "uscc": "91350100M000100Y44"}),
            "uscc",
            "uscc_check",
        ),
        (
            json!({"name": "甲", "cooperation_start_on": "2021-01-01", "industry": "航天"}),
            "industry",
            "unknown_option",
        ),
        (
            json!({"name": "甲", "cooperation_start_on": "2021-01-01", "uscc": "91350100M000100Y43"}),
            "uscc",
            "duplicate",
        ),
        (
            json!({"name": "甲", "cooperation_start_on": "2021-01-01", "code": c["code"]}),
            "code",
            "duplicate",
        ),
    ];
    for (body, field, code) in cases {
        let p = problem(
            s.post("/api/v1/customers", body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(
            first_error(&p),
            (field.to_string(), code.to_string()),
            "body {body}"
        );
    }
    let all: Value = s
        .get("/api/v1/customers?with_total=true")
        .await
        .json()
        .await
        .expect("list");
    assert_eq!(all["total"], 1, "refused inputs wrote nothing");
    app.cleanup().await;
}

async fn errors_in_chinese_and_english(backend: Backend) {
    let app = spawn_app(backend).await;
    let zh = app.token("admin1", "admin", None).await;
    let p = problem(
        zh.post(
            "/api/v1/customers",
            json!({"name": "甲", "cooperation_start_on": "2021-01-01", "uscc": "123"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("统一社会信用代码")),
        "{p}"
    );
    assert!(p["detail"].as_str().is_some_and(|d| d.starts_with("uscc:")));
    let en = app.token("admin2", "admin", None).await.english();
    let p = problem(
        en.post(
            "/api/v1/customers",
            json!({"name": "甲", "cooperation_start_on": "2021-01-01", "uscc": "123"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unified social credit code")),
        "{p}"
    );
    assert_eq!(p["title"], "Invalid input");
    app.cleanup().await;
}

async fn optimistic_concurrency(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.token("admin1", "admin", None).await;
    let c = s.customer("并发有限公司", json!({})).await;
    let url = format!("/api/v1/customers/{}", c["id"]);
    let p = problem(
        s.patch(&url, json!({"city": "苏州"})).await,
        StatusCode::PRECONDITION_REQUIRED,
    )
    .await;
    assert_eq!(p["code"], "precondition_required");
    let first = s
        .request(Method::PATCH, &url)
        .header("If-Match", "\"v1\"")
        .json(&json!({"city": "苏州"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        first.headers().get("etag").and_then(|v| v.to_str().ok()),
        Some("\"v2\"")
    );
    let body: Value = first.json().await.expect("json");
    assert_eq!(
        (
            body["city"].as_str(),
            body["name"].as_str(),
            body["version"].as_i64()
        ),
        (Some("苏州"), Some("并发有限公司"), Some(2))
    );
    // a second editor still holding v1 is refused, not silently overwriting
    let stale = s
        .request(Method::PATCH, &url)
        .header("If-Match", "\"v1\"")
        .json(&json!({"city": "无锡"}))
        .send()
        .await
        .expect("patch");
    let p = problem(stale, StatusCode::PRECONDITION_FAILED).await;
    assert_eq!(p["current_version"], 2);
    let p = problem(
        s.patch(&url, json!({"city": "无锡", "version": 1})).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(p["code"], "version_conflict");
    let now: Value = s.get(&url).await.json().await.expect("json");
    assert_eq!(now["city"], "苏州");
    // null clears a field; unknown fields are refused
    let cleared: Value = s
        .patch(&url, json!({"city": null, "version": 2}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(cleared["city"], Value::Null);
    let p = problem(
        s.patch(&url, json!({"colour": "red", "version": 3})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "colour");
    app.cleanup().await;
}

async fn list_filter_sort_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.token("admin1", "admin", None).await;
    let recent = (kehu_store::today_in_china() - chrono::Duration::days(30)).to_string();
    for (i, (industry, region)) in [
        ("制造业", "华东"),
        ("制造业", "华东"),
        ("金融", "华东"),
        ("制造业", "华南"),
        ("制造业", "华东"),
    ]
    .iter()
    .enumerate()
    {
        let c = s
            .customer(
                &format!("筛选客户{i}"),
                json!({"industry": industry, "sales_region": region, "employees": i * 100}),
            )
            .await;
        let r = s
            .post(
                &format!("/api/v1/customers/{}/orders", c["id"]),
                json!({"ordered_on": recent, "amount_fen": (i as i64 + 1) * 1_000_000}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let page: Value = s.get("/api/v1/customers?industry=制造业&sales_region=华东&sort=-purchase_12m_fen&limit=2&with_total=true").await.json().await.expect("json");
    let names: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, vec!["筛选客户4", "筛选客户1"]);
    assert_eq!(page["total"], 3);
    let next = page["next_cursor"].as_str().expect("cursor");
    let page2: Value = s.get(&format!("/api/v1/customers?industry=制造业&sales_region=华东&sort=-purchase_12m_fen&limit=2&cursor={next}")).await.json().await.expect("json");
    let names: Vec<&str> = page2["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, vec!["筛选客户0"]);
    assert_eq!(page2["next_cursor"], Value::Null);
    let big: Value = s
        .get("/api/v1/customers?employees.gte=200&sort=employees")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(big["items"].as_array().map(Vec::len), Some(3));
    let p = problem(
        s.get("/api/v1/customers?colour=red").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&p),
        ("colour".to_string(), "unknown_field".to_string())
    );
    let p = problem(
        s.get("/api/v1/customers?employees.gte=lots").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "employees.gte");
    app.cleanup().await;
}

async fn custom_fields_like_builtin(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.token("admin1", "admin", None).await;
    let defs = [
        json!({"key": "budget", "label": "采购预算", "group": "needs", "kind": "money", "rule": {"min": 0}}),
        json!({"key": "tier", "label": "渠道等级", "group": "cooperation", "kind": "enum", "options": ["金牌", "银牌"], "required": true}),
        json!({"key": "tags", "label": "关注点", "group": "behavior", "kind": "multi_enum", "options": ["价格", "交期", "质量"]}),
        json!({"key": "po_code", "label": "采购编码", "group": "basic", "kind": "text", "rule": {"pattern": "^PO-\\d+$"}}),
    ];
    for d in defs {
        let r = s.post("/api/v1/custom-fields", d.clone()).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{d}");
    }
    let bad_def = problem(
        s.post(
            "/api/v1/custom-fields",
            json!({"key": "Bad Key", "label": "x", "group": "basic", "kind": "enum"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields = error_fields(&bad_def);
    assert!(
        fields.iter().any(|f| f == "key") && fields.iter().any(|f| f == "options"),
        "{bad_def}"
    );
    let p = problem(s.post("/api/v1/customers", json!({"name": "甲", "cooperation_start_on": "2021-01-01", "custom_fields": {"budget": 5}})).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        first_error(&p),
        ("custom_fields.tier".to_string(), "required".to_string())
    );
    let p = problem(s.post("/api/v1/customers", json!({"name": "甲", "cooperation_start_on": "2021-01-01", "custom_fields": {"tier": "铜牌"}})).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        first_error(&p),
        (
            "custom_fields.tier".to_string(),
            "unknown_option".to_string()
        )
    );
    let p = problem(s.post("/api/v1/customers", json!({"name": "甲", "cooperation_start_on": "2021-01-01", "custom_fields": {"tier": "金牌", "po_code": "123"}})).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        first_error(&p),
        (
            "custom_fields.po_code".to_string(),
            "pattern_mismatch".to_string()
        )
    );
    for (name, budget, tier, tags) in [
        ("甲公司", 500_000, "金牌", json!(["价格", "交期"])),
        ("乙公司", 9_000_000, "银牌", json!(["质量"])),
        ("丙公司", 3_000_000, "金牌", json!([])),
    ] {
        let c = s
            .customer(
                name,
                json!({"custom_fields": {"budget": budget, "tier": tier, "tags": tags}}),
            )
            .await;
        assert_eq!(c["custom_fields"]["budget"], budget);
    }
    let gold: Value = s
        .get("/api/v1/customers?cf.tier=金牌&sort=-cf.budget")
        .await
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = gold["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, vec!["丙公司", "甲公司"]);
    let rich: Value = s
        .get("/api/v1/customers?cf.budget.gte=1000000&with_total=true")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(rich["total"], 2);
    let price: Value = s
        .get("/api/v1/customers?cf.tags=价格&with_total=true")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(price["total"], 1);
    // key and kind are fixed once created
    let list: Value = s
        .get("/api/v1/custom-fields")
        .await
        .json()
        .await
        .expect("json");
    let budget = list
        .as_array()
        .expect("defs")
        .iter()
        .find(|d| d["key"] == "budget")
        .cloned()
        .expect("budget def");
    let p = problem(
        s.patch(
            &format!("/api/v1/custom-fields/{}", budget["id"]),
            json!({"kind": "text", "version": budget["version"]}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&p),
        ("kind".to_string(), "immutable".to_string())
    );
    let relabel = s
        .patch(
            &format!("/api/v1/custom-fields/{}", budget["id"]),
            json!({"label": "年度预算", "version": budget["version"]}),
        )
        .await;
    assert_eq!(relabel.status(), StatusCode::OK);
    app.cleanup().await;
}

async fn delete_cascades(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.token("admin1", "admin", None).await;
    let c = s.customer("删除测试有限公司", json!({})).await;
    let id = c["id"].as_i64().expect("id");
    let contact: Value = s
        .post(
            &format!("/api/v1/customers/{id}/contacts"),
            json!({"name": "周杰"}),
        )
        .await
        .json()
        .await
        .expect("json");
    problem(
        s.delete(&format!("/api/v1/customers/{id}")).await,
        StatusCode::PRECONDITION_REQUIRED,
    )
    .await;
    problem(
        s.delete(&format!("/api/v1/customers/{id}?version=7")).await,
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(
        s.delete(&format!("/api/v1/customers/{id}?version=1"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    problem(
        s.get(&format!("/api/v1/customers/{id}")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        s.get(&format!("/api/v1/contacts/{}", contact["id"])).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    app.cleanup().await;
}
