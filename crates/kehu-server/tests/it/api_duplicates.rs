//! Duplicate customers through the API: the whole-database scan, the queue,
//! merging with field-by-field survivorship (records, tags, class history
//! and overrides), undo, rejected pairs never proposed again, rights.

use crate::both_backends;
use crate::helpers::{first_error, problem, spawn_app, Session};
use kehu_store::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both_backends!(scan_merge_undo_and_reject, rights_over_pairs_and_merges);

async fn json_of(r: reqwest::Response, status: StatusCode) -> Value {
    let got = r.status();
    let body: Value = r.json().await.expect("json");
    assert_eq!(got, status, "{body}");
    body
}

async fn get(s: &Session, path: &str) -> Value {
    json_of(s.get(path).await, StatusCode::OK).await
}

async fn add(s: &Session, customer: i64, what: &str, body: Value) {
    let r = s
        .post(&format!("/api/v1/customers/{customer}/{what}"), body)
        .await;
    json_of(r, StatusCode::CREATED).await;
}

async fn tag_named(s: &Session, name: &str) -> i64 {
    get(s, "/api/v1/tags")
        .await
        .as_array()
        .expect("tags")
        .iter()
        .find(|t| t["name"] == name && t["merged_into"].is_null())
        .and_then(|t| t["id"].as_i64())
        .unwrap_or_else(|| panic!("no tag {name}"))
}

/// The tags set by hand on a customer (rule tags come and go with the data).
async fn tag_names(s: &Session, customer: i64) -> Vec<String> {
    let mut names: Vec<String> = get(s, &format!("/api/v1/customers/{customer}/tags"))
        .await
        .as_array()
        .expect("tags")
        .iter()
        .filter(|t| t["source"] == "manual")
        .map(|t| t["name"].as_str().unwrap_or("").to_string())
        .collect();
    names.sort();
    names
}

async fn open_pairs(s: &Session) -> Vec<Value> {
    get(s, "/api/v1/duplicates?limit=500").await["pairs"]
        .as_array()
        .expect("pairs")
        .clone()
}

fn pair_of(pairs: &[Value], x: i64, y: i64) -> Option<Value> {
    pairs
        .iter()
        .find(|p| {
            let (a, b) = (p["a"]["id"].as_i64(), p["b"]["id"].as_i64());
            (a, b) == (Some(x.min(y)), Some(x.max(y)))
        })
        .cloned()
}

async fn scan(s: &Session) -> Value {
    json_of(
        s.post("/api/v1/duplicates/scan", json!({})).await,
        StatusCode::OK,
    )
    .await
}

async fn scan_merge_undo_and_reject(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let a = admin
        .customer(
            "北京字节跳动科技有限公司",
            json!({"uscc": "91350100M000100Y43", "address": "北京市海淀区知春路甲48号"}),
        )
        .await;
    let b = admin
        .customer(
            "字节跳动(北京)科技有限公司",
            json!({"notes": "新备注", "industry": "IT服务", "cooperation_start_on": "2019-07-15"}),
        )
        .await;
    let other = admin.customer("上海华为技术有限公司", json!({})).await;
    let (ia, ib, io) = (
        a["id"].as_i64().expect("id"),
        b["id"].as_i64().expect("id"),
        other["id"].as_i64().expect("id"),
    );
    add(
        &admin,
        ia,
        "contacts",
        json!({"name": "张伟", "mobile": "13800138000"}),
    )
    .await;
    add(
        &admin,
        ib,
        "contacts",
        json!({"name": "张伟", "mobile": "138 0013 8000"}),
    )
    .await;
    add(
        &admin,
        io,
        "contacts",
        json!({"name": "李娜", "mobile": "13900139000"}),
    )
    .await;
    for (c, day, fen) in [
        (ia, "2024-01-10", 500_000),
        (ia, "2024-02-10", 700_000),
        (ib, "2024-03-01", 900_000),
    ] {
        add(
            &admin,
            c,
            "orders",
            json!({"ordered_on": day, "amount_fen": fen}),
        )
        .await;
    }
    let (price, service, custom) = (
        tag_named(&admin, "价格敏感").await,
        tag_named(&admin, "重视服务").await,
        tag_named(&admin, "定制需求").await,
    );
    for (c, t) in [(ia, service), (ia, custom), (ib, price), (ib, custom)] {
        let r = admin
            .request(Method::PUT, &format!("/api/v1/customers/{c}/tags/{t}"))
            .send()
            .await
            .expect("PUT");
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = admin
        .request(
            Method::PUT,
            &format!("/api/v1/customers/{ib}/classes/value_tier/override"),
        )
        .json(&json!({"class": "战略型", "reason": "集团战略合作客户"}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), StatusCode::OK);

    // The scan finds the pair by name and phone, and nothing else.
    let report = scan(&admin).await;
    assert_eq!(report["customers"], 3, "{report}");
    let pairs = open_pairs(&admin).await;
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    let pair = pair_of(&pairs, ia, ib).expect("the pair");
    assert!(pair["score"].as_f64().expect("score") > 0.9, "{pair}");
    let reasons = pair["reasons"].to_string();
    assert!(
        reasons.contains("名称") && reasons.contains("电话"),
        "{reasons}"
    );
    assert!(pair_of(&pairs, ia, io).is_none());
    let pair_id = pair["id"].as_i64().expect("id");

    // The plan: A survives (more orders); each field's default.
    let plan = get(&admin, &format!("/api/v1/duplicates/{pair_id}")).await;
    assert_eq!(plan["survivor_id"], ia, "{plan}");
    let field = |key: &str| {
        plan["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|f| f["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no field {key}"))
    };
    assert_eq!(field("notes")["default_from"], ib, "only B has notes");
    assert_eq!(field("uscc")["default_from"], ia, "only A has a USCC");
    assert_eq!(
        field("cooperation_start_on")["default_from"],
        ib,
        "the earlier start"
    );
    assert_eq!(field("address")["a"], "北京市海淀区知春路甲48号");

    // Bad merges: unknown field, a customer not in the merge, stale versions.
    let body = |choices: Value, va: &Value, vb: &Value| json!({"survivor_id": ia, "absorbed_id": ib, "survivor_version": va, "absorbed_version": vb, "choices": choices});
    let (va, vb) = (a["version"].clone(), b["version"].clone());
    let p = problem(
        admin
            .post("/api/v1/merges", body(json!({"colour": ia}), &va, &vb))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&p),
        ("choices.colour".into(), "unknown_option".into()),
        "{p}"
    );
    let p = problem(
        admin
            .post("/api/v1/merges", body(json!({"name": io}), &va, &vb))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "choices", "{p}");
    let r = admin
        .post("/api/v1/merges", body(json!({}), &json!(99), &vb))
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        get(&admin, &format!("/api/v1/customers/{ib}")).await["name"],
        "字节跳动(北京)科技有限公司"
    );

    // Merge, taking B's name.
    let merged = json_of(
        admin
            .post("/api/v1/merges", body(json!({"name": ib}), &va, &vb))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        [
            &merged["moved_contacts"],
            &merged["moved_orders"],
            &merged["moved_tags"]
        ],
        [&json!(1), &json!(1), &json!(1)],
        "{merged}"
    );
    let merge_id = merged["id"].as_i64().expect("id");
    let s = get(&admin, &format!("/api/v1/customers/{ia}")).await;
    assert_eq!(s["name"], "字节跳动(北京)科技有限公司");
    assert_eq!(s["aliases"], json!(["北京字节跳动科技有限公司"]));
    assert_eq!(s["notes"], "新备注");
    assert_eq!(s["uscc"], "91350100M000100Y43");
    assert_eq!(s["cooperation_start_on"], "2019-07-15");
    assert_eq!(s["order_count"], 3, "rollups follow the moved orders");
    assert!(s["purchase_12m_fen"].as_i64().is_some());
    let r = admin.get(&format!("/api/v1/customers/{ib}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let orders = get(&admin, &format!("/api/v1/orders?customer_id={ia}")).await;
    assert_eq!(
        orders["items"].as_array().map(Vec::len),
        Some(3),
        "{orders}"
    );
    assert_eq!(
        tag_names(&admin, ia).await,
        ["价格敏感", "定制需求", "重视服务"]
    );
    assert!(open_pairs(&admin).await.is_empty());
    let record = get(&admin, &format!("/api/v1/merges/{merge_id}")).await;
    assert_eq!(record["absorbed_code"], b["code"]);

    // Undo: both back as they were, with their records, tags and override.
    let undone = json_of(
        admin
            .post(&format!("/api/v1/merges/{merge_id}/undo"), json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(undone["undone_at"].is_string(), "{undone}");
    let sa = get(&admin, &format!("/api/v1/customers/{ia}")).await;
    let sb = get(&admin, &format!("/api/v1/customers/{ib}")).await;
    assert_eq!(sa["name"], "北京字节跳动科技有限公司");
    assert_eq!(sa["aliases"], json!([]));
    assert_eq!(sa["notes"], Value::Null);
    assert_eq!(sb["name"], "字节跳动(北京)科技有限公司");
    assert_eq!(sb["code"], b["code"]);
    assert_eq!(
        (sa["order_count"].clone(), sb["order_count"].clone()),
        (json!(2), json!(1))
    );
    assert_eq!(tag_names(&admin, ia).await, ["定制需求", "重视服务"]);
    assert_eq!(tag_names(&admin, ib).await, ["价格敏感", "定制需求"]);
    let overrides = get(&admin, &format!("/api/v1/customers/{ib}/overrides")).await;
    assert!(
        overrides.to_string().contains("集团战略合作客户"),
        "{overrides}"
    );
    let classes = get(&admin, &format!("/api/v1/customers/{ib}/classes")).await;
    assert!(
        classes.to_string().contains("战略型"),
        "the override holds again: {classes}"
    );
    let contacts = get(&admin, &format!("/api/v1/contacts?customer_id={ib}")).await;
    assert_eq!(contacts["items"].as_array().map(Vec::len), Some(1));
    assert!(
        pair_of(&open_pairs(&admin).await, ia, ib).is_some(),
        "the pair is open again"
    );
    let p = problem(
        admin
            .post(&format!("/api/v1/merges/{merge_id}/undo"), json!({}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "merge");

    // An undo is refused once the survivor has changed since.
    let merged = json_of(
        admin
            .post(
                "/api/v1/merges",
                body(json!({}), &sa["version"], &sb["version"]),
            )
            .await,
        StatusCode::CREATED,
    )
    .await;
    let now = get(&admin, &format!("/api/v1/customers/{ia}")).await;
    let r = admin
        .patch(
            &format!("/api/v1/customers/{ia}"),
            json!({"notes": "合并后修改", "version": now["version"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let p = problem(
        admin
            .post(&format!("/api/v1/merges/{}/undo", merged["id"]), json!({}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(
        p.to_string().contains("changed since") || p.to_string().contains("已被修改"),
        "{p}"
    );

    // A rejected pair stays rejected: the next scan leaves it out of the queue.
    let c1 = admin.customer("杭州娃哈哈集团有限公司", json!({})).await;
    let c2 = admin.customer("娃哈哈集团(杭州)有限公司", json!({})).await;
    let (i1, i2) = (
        c1["id"].as_i64().expect("id"),
        c2["id"].as_i64().expect("id"),
    );
    scan(&admin).await;
    let pair = pair_of(&open_pairs(&admin).await, i1, i2).expect("pair");
    let rejected = json_of(
        admin
            .post(
                &format!("/api/v1/duplicates/{}/reject", pair["id"]),
                json!({}),
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(rejected["status"], "rejected");
    let again = scan(&admin).await;
    assert_eq!(again["still_rejected"], 1, "{again}");
    assert!(pair_of(&open_pairs(&admin).await, i1, i2).is_none());
    let listed = get(&admin, "/api/v1/duplicates?status=rejected").await;
    assert_eq!(listed["total"], 1);
    let p = problem(
        admin.get("/api/v1/duplicates?status=maybe").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "status");
    app.cleanup().await;
}

async fn rights_over_pairs_and_merges(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let rep = app.token("rep_east", "sales_rep", Some("华东")).await;
    let other_rep = app.token("rep_north", "sales_rep", Some("华北")).await;
    let service = app.token("service1", "service", None).await;
    let mine = rep.customer("苏州恒瑞精密机械有限公司", json!({})).await;
    let mine_too = rep.customer("恒瑞精密机械(苏州)有限公司", json!({})).await;
    let theirs = other_rep
        .customer("苏州恒瑞精密机械股份有限公司", json!({}))
        .await;
    let ids = [&mine, &mine_too, &theirs].map(|c| c["id"].as_i64().expect("id"));

    // Only those with rights over everyone scan.
    for s in [&rep, &service] {
        let r = s.post("/api/v1/duplicates/scan", json!({})).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    scan(&admin).await;
    assert_eq!(open_pairs(&admin).await.len(), 3);
    // A rep sees pairs of customers they may read (their team's), not the other team's.
    let seen = open_pairs(&rep).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let own_pair = pair_of(&seen, ids[0], ids[1]).expect("own pair");
    let cross = pair_of(&open_pairs(&admin).await, ids[0], ids[2]).expect("cross pair");
    let r = rep
        .get(&format!("/api/v1/duplicates/{}", cross["id"]))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // 客服 reads the pair but may not merge or reject it.
    let r = service
        .post(
            &format!("/api/v1/duplicates/{}/reject", own_pair["id"]),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body = |s: i64, a: i64, vs: &Value, va: &Value| json!({"survivor_id": s, "absorbed_id": a, "survivor_version": vs, "absorbed_version": va});
    let r = service
        .post(
            "/api/v1/merges",
            body(ids[0], ids[1], &mine["version"], &mine_too["version"]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A rep may not absorb another team's customer.
    let r = rep
        .post(
            "/api/v1/merges",
            body(ids[0], ids[2], &mine["version"], &theirs["version"]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        get(&admin, &format!("/api/v1/customers/{}", ids[2])).await["name"],
        "苏州恒瑞精密机械股份有限公司"
    );
    // Their own two: merged, and the merge is theirs to undo, not the other rep's.
    let m = json_of(
        rep.post(
            "/api/v1/merges",
            body(ids[0], ids[1], &mine["version"], &mine_too["version"]),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let r = other_rep
        .post(&format!("/api/v1/merges/{}/undo", m["id"]), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = rep
        .post(&format!("/api/v1/merges/{}/undo", m["id"]), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    app.cleanup().await;
}
