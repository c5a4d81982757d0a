//! Tags and segments over HTTP: the preset catalogue, naming rules
//! (siblings, synonyms, characters, depth, cycles), manual assignment with
//! the per-customer limit and rights, rename / merge / retire with history,
//! segment queries with their errors and positions, saved segments that
//! survive renames and merges, and the in-memory index equal to the same
//! query in SQL after every kind of write (and after a restart).

use crate::both_backends;
use crate::helpers::{first_error, problem, spawn_app, Session};
use kehu_core::segment::{compile, SchemeClasses, Vocabulary};
use kehu_server::segments::Segments;
use kehu_store::{Backend, ScopeFilter, Store};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both_backends!(
    catalogue_naming_rules,
    assignments_segments_and_hygiene,
    index_equals_sql,
    rule_and_hybrid_tags,
    usage_review,
    many_changes_at_once,
    export_of_a_segment,
    saved_segments_shared_and_used_as_targets
);

async fn tags(s: &Session) -> Vec<Value> {
    let r = s.get("/api/v1/tags").await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Vec<Value>>().await.expect("tags")
}

async fn tag_id(s: &Session, path: &str) -> i64 {
    tags(s)
        .await
        .iter()
        .find(|t| t["path"] == path && t["merged_into"].is_null())
        .and_then(|t| t["id"].as_i64())
        .unwrap_or_else(|| panic!("no tag {path}"))
}

async fn put(s: &Session, path: &str) -> reqwest::Response {
    s.request(Method::PUT, path).send().await.expect("PUT")
}

async fn refused(r: reqwest::Response, field: &str, code: &str) {
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        first_error(&p),
        (field.to_string(), code.to_string()),
        "{p}"
    );
}

async fn catalogue_naming_rules(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let rep = app.token("rep1", "sales_rep", Some("华东一组")).await;
    let all = tags(&admin).await;
    for path in [
        "行为标签/消费频次/高频",
        "基础标签/细分行业/IT服务业/云计算",
        "价值标签/中端客户",
    ] {
        assert!(all.iter().any(|t| t["path"] == path), "preset {path}");
    }
    assert_eq!(
        all.iter()
            .find(|t| t["path"] == "价值标签/中端客户")
            .expect("tag")["mode"],
        "rule"
    );

    let r = admin
        .post(
            "/api/v1/tags",
            json!({"parent": "基础标签/细分行业", "name": "零售业"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let retail: Value = r.json().await.expect("json");
    assert_eq!(retail["path"], "基础标签/细分行业/零售业");
    assert_eq!(retail["depth"], 3);

    let industry = tag_id(&admin, "基础标签/细分行业").await;
    refused(
        admin
            .post(
                "/api/v1/tags",
                json!({"parent_id": industry, "name": "工业"}),
            )
            .await,
        "name",
        "tag_name_synonym",
    )
    .await;
    refused(
        admin
            .post(
                "/api/v1/tags",
                json!({"parent_id": industry, "name": "制造业"}),
            )
            .await,
        "name",
        "tag_name_taken",
    )
    .await;
    refused(
        admin
            .post(
                "/api/v1/tags",
                json!({"parent_id": industry, "name": "零售 连锁"}),
            )
            .await,
        "name",
        "tag_name_character",
    )
    .await;
    refused(
        admin
            .post(
                "/api/v1/tags",
                json!({"parent_id": industry, "name": "NOT"}),
            )
            .await,
        "name",
        "tag_name_reserved",
    )
    .await;
    refused(
        admin
            .post(
                "/api/v1/tags",
                json!({"parent": "云计算", "name": "公有云"}),
            )
            .await,
        "parent_id",
        "tag_too_deep",
    )
    .await;
    refused(
        admin
            .post("/api/v1/tags", json!({"parent": "没有这个", "name": "x"}))
            .await,
        "parent",
        "tag_parent_unknown",
    )
    .await;
    refused(
        admin
            .post("/api/v1/tags", json!({"name": "x", "mode": "auto"}))
            .await,
        "mode",
        "unknown_option",
    )
    .await;
    let p = problem(
        rep.post("/api/v1/tags", json!({"name": "我的标签"})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(p["code"], "forbidden");

    // A move under its own descendant is a cycle; nothing changes.
    let cloud = tag_id(&admin, "基础标签/细分行业/IT服务业/云计算").await;
    let r = admin
        .patch(
            &format!("/api/v1/tags/{industry}"),
            json!({"parent_id": cloud, "version": 1}),
        )
        .await;
    refused(r, "parent_id", "tag_cycle").await;
    // A rename that collides is refused; one that does not goes through and is history.
    let id = retail["id"].as_i64().expect("id");
    let r = admin
        .patch(
            &format!("/api/v1/tags/{id}"),
            json!({"name": "制造业", "version": 1}),
        )
        .await;
    refused(r, "name", "tag_name_taken").await;
    let r = admin
        .patch(
            &format!("/api/v1/tags/{id}"),
            json!({"name": "零售连锁", "version": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = admin
        .patch(
            &format!("/api/v1/tags/{id}"),
            json!({"name": "零售", "version": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "stale version");
    let h: Vec<Value> = admin
        .get(&format!("/api/v1/tags/{id}/history"))
        .await
        .json()
        .await
        .expect("history");
    let actions: Vec<&str> = h.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, vec!["renamed", "created"]);
    assert_eq!(h[0]["detail"], json!({"from": "零售业", "to": "零售连锁"}));

    // Synonym groups are settings: with 零售连锁 a synonym of 百货, 百货 is refused beside it.
    let r = admin
        .request(Method::PUT, "/api/v1/tag-settings")
        .json(&json!({"max_manual_tags": 3, "synonyms": [["零售连锁", "百货"]]}))
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), StatusCode::OK);
    refused(
        admin
            .post(
                "/api/v1/tags",
                json!({"parent_id": industry, "name": "百货"}),
            )
            .await,
        "name",
        "tag_name_synonym",
    )
    .await;
    let r = admin
        .request(Method::PUT, "/api/v1/tag-settings")
        .json(&json!({"max_manual_tags": 0, "synonyms": []}))
        .send()
        .await
        .expect("PUT");
    refused(r, "max_manual_tags", "out_of_range").await;
    // The accepted change is history, the refused one is not.
    let h: Vec<Value> = admin
        .get("/api/v1/tag-settings/history")
        .await
        .json()
        .await
        .expect("history");
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0]["action"], "settings_changed");
    assert_eq!(h[0]["detail"]["from"]["max_manual_tags"], 5);
    assert_eq!(h[0]["detail"]["to"]["max_manual_tags"], 3);
    assert_eq!(h[0]["by_user"], admin.user_id);
    assert_eq!(
        rep.get("/api/v1/tag-settings/history").await.status(),
        StatusCode::FORBIDDEN
    );
    app.cleanup().await;
}

async fn assignments_segments_and_hygiene(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let rep = app.token("rep_east", "sales_rep", Some("华东一组")).await;
    let service = app.token("kefu", "service", None).await;
    let a = admin
        .customer(
            "杭州甲公司",
            json!({"sales_region": "华东", "owner_id": rep.user_id}),
        )
        .await;
    let b = admin
        .customer(
            "广州乙公司",
            json!({"sales_region": "华南", "province": "广东"}),
        )
        .await;
    let c = admin
        .customer("苏州丙公司", json!({"sales_region": "华东"}))
        .await;
    let (a, b, c) = (
        a["id"].as_i64().expect("id"),
        b["id"].as_i64().expect("id"),
        c["id"].as_i64().expect("id"),
    );

    let manual = ["价格敏感", "重视服务", "定制需求", "新品试用", "付款延迟"];
    let mut ids = Vec::new();
    for name in manual {
        let path = tags(&admin)
            .await
            .iter()
            .find(|t| t["name"] == name)
            .expect("tag")["path"]
            .as_str()
            .expect("path")
            .to_string();
        ids.push(tag_id(&admin, &path).await);
    }
    for &t in &ids {
        let r = put(&admin, &format!("/api/v1/customers/{a}/tags/{t}")).await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Again: no change, no error.
    let again: Value = put(&admin, &format!("/api/v1/customers/{a}/tags/{}", ids[0]))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["changed"], false);
    let manual_count = |tags: &Value| {
        tags.as_array()
            .map(|a| a.iter().filter(|t| t["mode"] == "manual").count())
    };
    assert_eq!(manual_count(&again["tags"]), Some(5));
    // The sixth manual tag is over the limit; a rule tag is not for hands.
    let sixth = tag_id(&admin, "风险标签/竞品接触").await;
    refused(
        put(&admin, &format!("/api/v1/customers/{a}/tags/{sixth}")).await,
        "tag_id",
        "tag_limit",
    )
    .await;
    let rule_tag = tag_id(&admin, "价值标签/高端客户").await;
    refused(
        put(&admin, &format!("/api/v1/customers/{b}/tags/{rule_tag}")).await,
        "tag_id",
        "tag_not_manual",
    )
    .await;
    let mine: Vec<Value> = admin
        .get(&format!("/api/v1/customers/{a}/tags"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(manual_count(&json!(mine)), Some(5), "nothing half-applied");
    // 客服 may not tag; a rep may tag their own customer but not another's (404: not in scope).
    assert_eq!(
        put(&service, &format!("/api/v1/customers/{b}/tags/{sixth}"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        put(&rep, &format!("/api/v1/customers/{b}/tags/{sixth}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let r = rep
        .request(
            Method::DELETE,
            &format!("/api/v1/customers/{a}/tags/{}", ids[4]),
        )
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        put(&rep, &format!("/api/v1/customers/{a}/tags/{sixth}"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        put(&admin, &format!("/api/v1/customers/{c}/tags/{}", ids[4]))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        put(&admin, &format!("/api/v1/customers/{b}/tags/{}", ids[0]))
            .await
            .status(),
        StatusCode::OK
    );

    // Segments: counts and pages from the index, the same as SQL.
    let v = seg(&admin, "华东 AND 需求标签 AND NOT 付款延迟").await;
    assert_eq!(v["count"], 1, "{v}");
    assert_eq!(v["customers"][0]["id"], a);
    assert_eq!(
        seg(&admin, "风险标签").await["count"],
        2,
        "a subtree: 竞品接触 on a, 付款延迟 on c"
    );
    assert_eq!(seg(&admin, "价格敏感 OR province = 广东").await["count"], 2);
    assert_eq!(seg(&admin, "NOT 需求标签").await["count"], 1);
    // The rep sees their team's customers only.
    assert_eq!(seg(&rep, "价格敏感").await["count"], 1);
    // Paging by id.
    let p1: Value = admin.get("/api/v1/segment-results?expression=%E5%8D%8E%E4%B8%9C%20OR%20%E5%8D%8E%E5%8D%97&limit=2").await.json().await.expect("json");
    assert_eq!(p1["count"], 3);
    assert_eq!(p1["customers"].as_array().map(Vec::len), Some(2));
    let after = p1["next_after"].as_i64().expect("more");
    let p2: Value = admin.get(&format!("/api/v1/segment-results?expression=%E5%8D%8E%E4%B8%9C%20OR%20%E5%8D%8E%E5%8D%97&limit=2&after={after}")).await.json().await.expect("json");
    assert_eq!(p2["customers"].as_array().map(Vec::len), Some(1));
    assert!(p2["next_after"].is_null());

    // Bad expressions: the reason and the position, nothing else.
    assert!(bad(&admin, "华东 AND (", "segment_syntax")
        .await
        .contains("第 9 个字符"));
    assert!(bad(&admin, "华东 AND 不存在的标签", "segment_unknown_name")
        .await
        .contains("第 8 个字符"));
    bad(&admin, "高频", "segment_ambiguous_name").await;
    bad(&admin, "年采购额 >= 很多", "segment_bad_value").await;

    // A saved, shared segment survives a rename and a merge of its tags.
    let r = admin
        .post(
            "/api/v1/segments",
            json!({"name": "风险+价格敏感", "expression": "付款延迟 OR 价格敏感", "shared": true}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let saved: Value = r.json().await.expect("json");
    let sid = saved["id"].as_i64().expect("id");
    assert_eq!(saved["count"], 3);
    assert_eq!(
        saved["stable_expression"],
        format!("#{} OR #{}", ids[4], ids[0])
    );
    let r = admin
        .patch(
            &format!("/api/v1/tags/{}", ids[4]),
            json!({"name": "逾期付款", "version": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = admin
        .post(
            &format!("/api/v1/tags/{}/merge", ids[0]),
            json!({"into": ids[1]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let after_merge: Value = admin
        .get(&format!("/api/v1/segments/{sid}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(after_merge["expression"], "逾期付款 OR 重视服务");
    assert_eq!(
        after_merge["count"], 3,
        "a and b now carry 重视服务, c 逾期付款"
    );
    let a_tags: Vec<Value> = admin
        .get(&format!("/api/v1/customers/{a}/tags"))
        .await
        .json()
        .await
        .expect("json");
    assert!(
        a_tags.iter().all(|t| t["tag_id"] != ids[0])
            && a_tags.iter().filter(|t| t["tag_id"] == ids[1]).count() == 1
    );
    let h: Vec<Value> = admin
        .get(&format!("/api/v1/tags/{}/history", ids[0]))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(h[0]["action"], "merged_away");
    assert!(
        h.iter()
            .any(|e| e["action"] == "assigned" && e["customer_id"] == a),
        "assignment history kept"
    );
    // Only tag managers merge: a rep may not, 市场 may read the history.
    let r = rep
        .post(
            &format!("/api/v1/tags/{}/merge", ids[2]),
            json!({"into": ids[1]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let marketing = app.token("shichang", "marketing", None).await;
    assert_eq!(
        marketing
            .get(&format!("/api/v1/tags/{}/history", ids[2]))
            .await
            .status(),
        StatusCode::OK
    );
    // Merging into a tag of another mode, or into itself, is refused.
    refused(
        admin
            .post(
                &format!("/api/v1/tags/{}/merge", ids[1]),
                json!({"into": rule_tag}),
            )
            .await,
        "into",
        "tag_merge_mode",
    )
    .await;
    refused(
        admin
            .post(
                &format!("/api/v1/tags/{}/merge", ids[1]),
                json!({"into": ids[1]}),
            )
            .await,
        "into",
        "tag_merge_into_itself",
    )
    .await;
    // The rep's team does not see the admin's shared segment (admin has no team); their own they do.
    assert_eq!(
        rep.get(&format!("/api/v1/segments/{sid}")).await.status(),
        StatusCode::NOT_FOUND
    );

    // Retired: no new assignments, old ones still found.
    let r = admin
        .post(&format!("/api/v1/tags/{}/retire", ids[3]), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    refused(
        put(&admin, &format!("/api/v1/customers/{b}/tags/{}", ids[3])).await,
        "tag_id",
        "tag_retired",
    )
    .await;
    assert_eq!(seg(&admin, "新品试用").await["count"], 1);

    // A deleted customer leaves every segment at once.
    let v = version_of(&admin, c).await;
    let r = admin
        .request(
            Method::DELETE,
            &format!("/api/v1/customers/{c}?version={v}"),
        )
        .send()
        .await
        .expect("DELETE");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(seg(&admin, "逾期付款").await["count"], 0);
    assert_eq!(seg(&admin, "华东").await["count"], 1);
    app.cleanup().await;
}

/// A segment's result (asserting 200).
async fn seg(s: &Session, e: &str) -> Value {
    let r = s
        .get(&format!(
            "/api/v1/segment-results?expression={}",
            urlencode(e)
        ))
        .await;
    let status = r.status();
    let v: Value = r.json().await.expect("json");
    assert_eq!(status, StatusCode::OK, "{e}: {v}");
    v
}

/// A refused expression: its code, and the message returned.
async fn bad(s: &Session, e: &str, code: &str) -> String {
    let r = s
        .get(&format!(
            "/api/v1/segment-results?expression={}",
            urlencode(e)
        ))
        .await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        first_error(&p),
        ("expression".to_string(), code.to_string()),
        "{e}: {p}"
    );
    p["errors"][0]["message"].as_str().unwrap_or("").to_string()
}

async fn version_of(s: &Session, customer: i64) -> i64 {
    let v: Value = s
        .get(&format!("/api/v1/customers/{customer}"))
        .await
        .json()
        .await
        .expect("json");
    v["version"].as_i64().expect("version")
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The expressions the index and SQL are compared on.
const EXPRESSIONS: &[&str] = &[
    "华东",
    "需求标签",
    "NOT 需求标签",
    "华东 AND 需求标签 AND NOT 定制需求",
    "(价格敏感 OR 重视服务) AND NOT (华北 OR 风险标签)",
    "年采购额 >= 5万 OR employees < 200",
    "合作起始时间 >= 2022-01-01 AND NOT industry IN (制造业, 金融)",
    "value_tier IN (战略型, 潜力型, 优化型) OR NOT behavior = 投诉客户",
    "lifecycle != 潜在 AND 行为标签",
    "complaints_365d > 0 OR order_count >= 2",
    "近30天采购额 >= 5万 OR 每周访问次数 >= 1",
    "orders_90d >= 1 AND NOT 需求标签 AND interactions_30d < 2",
];

/// The expressions in their stored form (tags by id: they survive the merge below).
async fn stable_forms(store: &Store, schemes: &[SchemeClasses]) -> Vec<String> {
    let tags = store.tag_catalogue().await.expect("catalogue");
    EXPRESSIONS
        .iter()
        .map(|e| {
            compile(
                e,
                &Vocabulary {
                    tags: &tags,
                    schemes,
                },
            )
            .unwrap_or_else(|err| panic!("{e}: {err:?}"))
            .stable
        })
        .collect()
}

async fn compare(
    app_store: &Store,
    segments: &Segments,
    scope: &ScopeFilter,
    schemes: &[SchemeClasses],
    exprs: &[String],
) {
    let tags = app_store.tag_catalogue().await.expect("catalogue");
    for e in exprs {
        let c = compile(
            e,
            &Vocabulary {
                tags: &tags,
                schemes,
            },
        )
        .unwrap_or_else(|err| panic!("{e}: {err:?}"));
        let fast = segments.query(&c.plan, scope, 0, 10).await.expect("index");
        let (n, ids) = app_store
            .segment_by_sql(&c.plan, scope, 0, 10)
            .await
            .expect("sql");
        assert_eq!(
            (fast.count, fast.page.clone()),
            (n, ids),
            "{e} in {scope:?}"
        );
    }
}

async fn index_equals_sql(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let rep = app.token("rep_east", "sales_rep", Some("华东一组")).await;
    let regions = ["华东", "华南", "华北", "西南"];
    let industries = ["制造业", "金融", "IT服务", "零售业"];
    let mut customers = Vec::new();
    for i in 0..24 {
        let mut extra = json!({
            "sales_region": regions[i % 4],
            "industry": industries[(i / 2) % 4],
            "employees": 50 + i * 17,
            "cooperation_start_on": format!("{}-0{}-15", 2019 + i % 5, 1 + i % 9),
        });
        if i % 3 == 0 {
            extra["owner_id"] = json!(rep.user_id);
        }
        let c = admin.customer(&format!("测试{i}号有限公司"), extra).await;
        customers.push(c["id"].as_i64().expect("id"));
    }
    let today = app.store.today();
    for (i, &c) in customers.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
        let r = admin
            .post(
                &format!("/api/v1/customers/{c}/orders"),
                json!({"ordered_on": today.to_string(), "amount_fen": 1_000_000 * (i as i64 + 1)}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    for &c in customers.iter().step_by(3) {
        let r = admin
            .post(&format!("/api/v1/customers/{c}/interactions"), json!({"kind": "web_visit", "occurred_on": today.to_string(), "summary": "访问官网"}))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let manual: Vec<i64> = {
        let all = tags(&admin).await;
        all.iter()
            .filter(|t| {
                t["mode"] == "manual"
                    && t["depth"].as_i64() >= Some(2)
                    && t["path"]
                        .as_str()
                        .is_some_and(|p| p.starts_with("需求标签") || p.starts_with("风险标签"))
            })
            .filter_map(|t| t["id"].as_i64())
            .collect()
    };
    let classifier = kehu_server::classifier::Classifier::new(app.store.clone());
    let schemes = classifier.published().await.expect("schemes").vocabulary();
    // One index that follows the feed from the start, compared after each round of writes.
    let segments = Segments::new(app.store.clone());
    let team = ScopeFilter::Team {
        team: Some("华东一组".into()),
        user_id: rep.user_id,
    };
    let exprs = stable_forms(&app.store, &schemes).await;
    compare(&app.store, &segments, &ScopeFilter::All, &schemes, &exprs).await;
    for round in 0..3usize {
        // Tags by hand, concurrently from several clients.
        let mut tasks = Vec::new();
        for (k, &c) in customers.iter().enumerate() {
            let t = manual[(k + round) % manual.len()];
            let path = format!("/api/v1/customers/{c}/tags/{t}");
            let req = admin.request(Method::PUT, &path);
            tasks.push(tokio::spawn(async move {
                req.send().await.expect("PUT").status()
            }));
        }
        for t in tasks {
            let status = t.await.expect("task");
            assert!(
                status == StatusCode::OK || status == StatusCode::UNPROCESSABLE_ENTITY,
                "{status}"
            );
        }
        // Field edits, a removal, a deletion, a merge.
        let c = customers[round];
        let v = version_of(&admin, c).await;
        let r = admin
            .patch(
                &format!("/api/v1/customers/{c}"),
                json!({"sales_region": "华北", "version": v}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        let r = admin
            .request(
                Method::DELETE,
                &format!(
                    "/api/v1/customers/{}/tags/{}",
                    customers[5 + round],
                    manual[(5 + round + round) % manual.len()]
                ),
            )
            .send()
            .await
            .expect("DELETE");
        assert_eq!(r.status(), StatusCode::OK);
        let gone = customers.remove(10 + round);
        let v = version_of(&admin, gone).await;
        let r = admin
            .request(
                Method::DELETE,
                &format!("/api/v1/customers/{gone}?version={v}"),
            )
            .send()
            .await
            .expect("DELETE");
        assert!(r.status().is_success());
        compare(&app.store, &segments, &ScopeFilter::All, &schemes, &exprs).await;
        compare(&app.store, &segments, &team, &schemes, &exprs).await;
    }
    let r = admin
        .post(
            &format!("/api/v1/tags/{}/merge", manual[0]),
            json!({"into": manual[1]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    app.store
        .bulk_tag(
            &customers
                .iter()
                .map(|&c| (c, manual[2]))
                .collect::<Vec<_>>(),
            "rule",
        )
        .await
        .expect("bulk");
    compare(&app.store, &segments, &ScopeFilter::All, &schemes, &exprs).await;
    // A fresh index (a restart) reads the same.
    let fresh = Segments::new(app.store.clone());
    compare(&app.store, &fresh, &team, &schemes, &exprs).await;
    app.cleanup().await;
}

async fn pending(s: &Session) -> Vec<Value> {
    s.get("/api/v1/tag-proposals")
        .await
        .json()
        .await
        .expect("queue")
}

async fn tag_paths_of(s: &Session, customer: i64) -> Vec<String> {
    let v: Vec<Value> = s
        .get(&format!("/api/v1/customers/{customer}/tags"))
        .await
        .json()
        .await
        .expect("tags");
    v.iter()
        .filter_map(|t| t["path"].as_str().map(String::from))
        .collect()
}

async fn rule_and_hybrid_tags(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let today = app.store.today().to_string();
    let mut ids = Vec::new();
    for (name, region, fen) in [
        ("甲", "华东", 120_000_000i64),
        ("乙", "华东", 60_000_000),
        ("丙", "华南", 0),
    ] {
        let c = admin
            .customer(
                &format!("规则测试{name}有限公司"),
                json!({"sales_region": region}),
            )
            .await;
        let id = c["id"].as_i64().expect("id");
        if fen > 0 {
            let r = admin
                .post(
                    &format!("/api/v1/customers/{id}/orders"),
                    json!({"ordered_on": today, "amount_fen": fen}),
                )
                .await;
            assert_eq!(r.status(), StatusCode::CREATED);
        }
        ids.push(id);
    }
    let (x, y, z) = (ids[0], ids[1], ids[2]);
    // The preset value tags follow each customer's purchases at once.
    assert!(tag_paths_of(&admin, x)
        .await
        .contains(&"价值标签/高端客户".to_string()));
    assert!(tag_paths_of(&admin, y)
        .await
        .contains(&"价值标签/中端客户".to_string()));
    assert!(tag_paths_of(&admin, z)
        .await
        .contains(&"价值标签/低端客户".to_string()));
    assert_eq!(seg(&admin, "价值标签").await["count"], 3);
    // A second order moves 乙 up: 中端 → 高端 in the same request.
    let r = admin
        .post(
            &format!("/api/v1/customers/{y}/orders"),
            json!({"ordered_on": today, "amount_fen": 50_000_000}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let y_tags = tag_paths_of(&admin, y).await;
    assert!(
        y_tags.contains(&"价值标签/高端客户".to_string())
            && !y_tags.contains(&"价值标签/中端客户".to_string()),
        "{y_tags:?}"
    );

    // A rule over a window: three web visits in a week → 访问频次/高频, the issue's example.
    let visit_thrice = |customer: i64| {
        let (admin, today) = (&admin, &today);
        async move {
            for _ in 0..3 {
                let r = admin
                    .post(
                        &format!("/api/v1/customers/{customer}/interactions"),
                        json!({"kind": "web_visit", "occurred_on": today, "summary": "浏览产品页"}),
                    )
                    .await;
                assert_eq!(r.status(), StatusCode::CREATED);
            }
        }
    };
    visit_thrice(z).await;
    let frequent = tag_id(&admin, "行为标签/访问频次/高频").await;
    let r = admin
        .patch(
            &format!("/api/v1/tags/{frequent}"),
            json!({"rule": "每周访问次数 >= 3", "version": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(tag_paths_of(&admin, z)
        .await
        .contains(&"行为标签/访问频次/高频".to_string()));
    assert!(!tag_paths_of(&admin, x)
        .await
        .contains(&"行为标签/访问频次/高频".to_string()));
    // The rule written just now applies on the next data change too (the
    // rule book the server keeps between requests was compiled anew).
    visit_thrice(x).await;
    assert!(tag_paths_of(&admin, x)
        .await
        .contains(&"行为标签/访问频次/高频".to_string()));
    let r = admin
        .post(
            &format!("/api/v1/customers/{x}/orders"),
            json!({"ordered_on": today, "amount_fen": 6_000_000}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        seg(&admin, "近30天采购额 >= 5万").await["count"],
        2,
        "x and y bought within 30 days"
    );

    // A hybrid tag proposes; people confirm or reject; a rejection sticks for the same evidence.
    let r = admin
        .post("/api/v1/tags", json!({"parent": "需求标签", "name": "潜在大单", "mode": "hybrid", "rule": "年采购额 >= 50万 AND 华东"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let big = r.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    let queue = pending(&admin).await;
    assert_eq!(queue.len(), 2, "{queue:?}");
    assert!(queue.iter().all(|p| p["evidence"]
        .as_str()
        .is_some_and(|e| e.contains("purchase_12m_fen="))));
    let of = |q: &[Value], c: i64| {
        q.iter()
            .find(|p| p["customer_id"] == c)
            .and_then(|p| p["id"].as_i64())
            .expect("proposal")
    };
    // 客服 sees the queue but may not decide; a rep outside the customers' team does not even see them.
    let service = app.token("kefu", "service", None).await;
    let r = service
        .post(
            &format!("/api/v1/tag-proposals/{}/confirm", of(&queue, x)),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let outsider = app.token("rep_south", "sales_rep", Some("华南一组")).await;
    assert!(pending(&outsider).await.is_empty());
    let r = admin
        .post(
            &format!("/api/v1/tag-proposals/{}/confirm", of(&queue, x)),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = admin
        .post(
            &format!("/api/v1/tag-proposals/{}/reject", of(&queue, y)),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    refused(
        admin
            .post(
                &format!("/api/v1/tag-proposals/{}/confirm", of(&queue, y)),
                json!({}),
            )
            .await,
        "status",
        "proposal_decided",
    )
    .await;
    let x_tags: Vec<Value> = admin
        .get(&format!("/api/v1/customers/{x}/tags"))
        .await
        .json()
        .await
        .expect("json");
    assert!(x_tags
        .iter()
        .any(|t| t["tag_id"] == big && t["source"] == "verified"));
    let again: Value = admin
        .post(&format!("/api/v1/tags/{big}/apply"), json!({}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["proposed"], 0, "nothing new: {again}");
    assert!(pending(&admin).await.is_empty());
    // New evidence (another order) proposes again.
    let r = admin
        .post(
            &format!("/api/v1/customers/{y}/orders"),
            json!({"ordered_on": today, "amount_fen": 1_000_000}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let queue = pending(&admin).await;
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0]["customer_id"], y);

    // Bad rules: syntax with its position, rules on manual tags, circles (also through oneself).
    refused(admin.post("/api/v1/tags", json!({"parent": "行为标签", "name": "坏规则", "mode": "rule", "rule": "年采购额 >="})).await, "rule", "segment_syntax").await;
    refused(
        admin
            .post(
                "/api/v1/tags",
                json!({"parent": "行为标签", "name": "手动的", "rule": "华东"}),
            )
            .await,
        "rule",
        "tag_rule_on_manual",
    )
    .await;
    let r = admin.post("/api/v1/tags", json!({"parent": "行为标签", "name": "活跃大客户", "mode": "rule", "rule": "高端客户 AND order_count >= 1"})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(seg(&admin, "活跃大客户").await["count"], 2);
    // A hybrid rule reading a rule tag too: what it saw of that tag is the
    // change made earlier in the same run.
    let r = admin.post("/api/v1/tags", json!({"parent": "需求标签", "name": "大单跟进", "mode": "hybrid", "rule": "高端客户 AND 华南"})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let follow_up = r.json::<Value>().await.expect("json")["id"].clone();
    // A rule reading another rule's tag follows it in the same request: the
    // order that makes 丁 a 高端客户 makes it an 活跃大客户 too.
    let w = admin
        .customer("规则测试丁有限公司", json!({"sales_region": "华南"}))
        .await["id"]
        .as_i64()
        .expect("id");
    let r = admin
        .post(
            &format!("/api/v1/customers/{w}/orders"),
            json!({"ordered_on": today, "amount_fen": 150_000_000}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let w_tags = tag_paths_of(&admin, w).await;
    assert!(
        w_tags.contains(&"价值标签/高端客户".to_string())
            && w_tags.contains(&"行为标签/活跃大客户".to_string()),
        "{w_tags:?}"
    );
    let high_end = tag_id(&admin, "价值标签/高端客户").await;
    let proposed: Vec<Value> = pending(&admin)
        .await
        .into_iter()
        .filter(|p| p["tag_id"] == follow_up)
        .collect();
    assert_eq!(proposed.len(), 1, "{proposed:?}");
    assert_eq!(proposed[0]["customer_id"], w);
    assert!(
        proposed[0]["evidence"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("| #{high_end}=1;"))),
        "{proposed:?}"
    );
    let top = high_end;
    let v: Value = admin
        .get(&format!("/api/v1/tags/{top}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["rule"], "年采购额 >= 100万");
    let version = v["version"].as_i64().expect("version");
    refused(
        admin
            .patch(
                &format!("/api/v1/tags/{top}"),
                json!({"rule": "活跃大客户", "version": version}),
            )
            .await,
        "rule",
        "tag_rule_cycle",
    )
    .await;
    refused(
        admin
            .patch(
                &format!("/api/v1/tags/{top}"),
                json!({"rule": "价值标签 AND 华东", "version": version}),
            )
            .await,
        "rule",
        "tag_rule_cycle",
    )
    .await;
    // A rule tag without a rule carries no one.
    let low = tag_id(&admin, "价值标签/低端客户").await;
    let r = admin
        .patch(
            &format!("/api/v1/tags/{low}"),
            json!({"rule": null, "version": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!tag_paths_of(&admin, z)
        .await
        .contains(&"价值标签/低端客户".to_string()));
    let h: Vec<Value> = admin
        .get(&format!("/api/v1/tags/{low}/history"))
        .await
        .json()
        .await
        .expect("json");
    // A small run's changes are each customer's own entries.
    assert!(
        h.iter().any(|e| e["action"] == "rule_changed")
            && h.iter().any(|e| e["action"] == "removed"
                && e["customer_id"] == z
                && e["detail"]["source"] == "rule"),
        "{h:?}"
    );
    // A rule tag is the rule's: taking it off by hand is refused.
    let high = tag_id(&admin, "行为标签/访问频次/高频").await;
    refused(
        admin
            .delete(&format!("/api/v1/customers/{z}/tags/{high}"))
            .await,
        "tag_id",
        "tag_not_manual",
    )
    .await;
    assert!(tag_paths_of(&admin, z)
        .await
        .contains(&"行为标签/访问频次/高频".to_string()));
    // And the index agrees with SQL on what the rules did.
    let classifier = kehu_server::classifier::Classifier::new(app.store.clone());
    let schemes = classifier.published().await.expect("schemes").vocabulary();
    let tags = app.store.tag_catalogue().await.expect("catalogue");
    let c = compile(
        "价值标签 OR 潜在大单 OR 活跃大客户",
        &Vocabulary {
            tags: &tags,
            schemes: &schemes,
        },
    )
    .expect("compiles");
    let fast = Segments::new(app.store.clone())
        .query(&c.plan, &ScopeFilter::All, 0, 10)
        .await
        .expect("index");
    assert_eq!(
        (fast.count, fast.page),
        app.store
            .segment_by_sql(&c.plan, &ScopeFilter::All, 0, 10)
            .await
            .expect("sql")
    );
    app.cleanup().await;
}

/// A tag's row in a usage review.
fn review_row(review: &Value, path: &str) -> Value {
    review["tags"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["path"] == path).cloned())
        .unwrap_or_else(|| panic!("no row {path}: {review}"))
}

async fn usage_review(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let rep = app.token("rep1", "sales_rep", Some("华东一组")).await;
    let today = app.store.today().to_string();
    // Buying again: orders on two days of the span.
    let days_ago = |n: u64| (app.store.today() - chrono::Days::new(n)).to_string();
    // (orders, satisfaction, tagged): a and b buy again, are happier, carry 价格敏感.
    let plan = [
        (2, Some(5), true),
        (2, Some(4), true),
        (1, Some(2), false),
        (0, None, false),
    ];
    let price = tag_id(&admin, "需求标签/价格敏感").await;
    let (mut tagged_ids, mut ids) = (Vec::new(), Vec::new());
    for (i, (orders, score, tagged)) in plan.iter().enumerate() {
        let c = admin
            .customer(&format!("评审测试{i}有限公司"), json!({}))
            .await;
        let id = c["id"].as_i64().expect("id");
        ids.push(id);
        for k in 0..*orders {
            let r = admin
                .post(
                    &format!("/api/v1/customers/{id}/orders"),
                    json!({"ordered_on": days_ago(2 * k), "amount_fen": 100_000}),
                )
                .await;
            assert_eq!(r.status(), StatusCode::CREATED);
        }
        if let Some(s) = score {
            let r = admin
                .post(&format!("/api/v1/customers/{id}/interactions"), json!({"kind": "visit", "occurred_on": today, "summary": "回访", "satisfaction": s}))
                .await;
            assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
        }
        if *tagged {
            tagged_ids.push(id);
            assert_eq!(
                put(&admin, &format!("/api/v1/customers/{id}/tags/{price}"))
                    .await
                    .status(),
                StatusCode::OK
            );
        }
    }
    // The first assignment happened 100 days ago (its history backdated).
    let assigned_on = app.store.today() - chrono::Days::new(100);
    let mut db = app.store.db.clone();
    kehu_store::db::Exec::execute(
        &mut db,
        "UPDATE tag_history SET at = $1 WHERE customer_id = $2 AND tag_id = $3",
        vec![
            kehu_store::db::Arg::from(assigned_on.and_hms_opt(4, 0, 0).expect("time").and_utc()),
            kehu_store::db::Arg::from(tagged_ids[0]),
            kehu_store::db::Arg::from(price),
        ],
    )
    .await
    .expect("backdate");
    let r = admin.get("/api/v1/tag-review?days=30").await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["customers"], 4);
    let row = |path: &str| review_row(&v, path);
    let p = row("需求标签/价格敏感");
    assert_eq!(
        (p["customers"].as_u64(), p["share"].as_f64()),
        (Some(2), Some(0.5))
    );
    assert_eq!(
        (
            p["repurchase_with"].as_f64(),
            p["repurchase_without"].as_f64()
        ),
        (Some(1.0), Some(0.0))
    );
    assert!((p["repurchase_correlation"].as_f64().expect("phi") - 1.0).abs() < 1e-9);
    assert_eq!(
        (
            p["satisfaction_with"].as_f64(),
            p["satisfaction_without"].as_f64()
        ),
        (Some(4.5), Some(2.0))
    );
    assert!(p["satisfaction_correlation"].as_f64().expect("r") > 0.9);
    assert_eq!(p["change_in_period"], 1, "one of the two within 30 days");
    // The trend counts back: the old assignment from its day on, the new one today.
    let dates: Vec<chrono::NaiveDate> =
        serde_json::from_value(v["trend_dates"].clone()).expect("dates");
    assert_eq!(dates.len(), 7);
    assert_eq!(dates.last(), Some(&app.store.today()));
    let expected: Vec<i64> = dates
        .iter()
        .map(|d| i64::from(*d >= assigned_on) + i64::from(*d == app.store.today()))
        .collect();
    assert_eq!(p["trend"], json!(expected), "{dates:?}");
    // The table downloads.
    let r = admin.get("/api/v1/tag-review?days=30&format=csv").await;
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.expect("csv");
    assert!(
        csv.starts_with("\u{feff}标签,方式,客户数,占比,期间变化"),
        "{csv}"
    );
    assert!(csv.contains("需求标签/价格敏感"), "{csv}");
    refused(
        admin.get("/api/v1/tag-review?format=docx").await,
        "format",
        "unknown_option",
    )
    .await;
    // As a document: the tags on its pages.
    let pdf = admin.get("/api/v1/tag-review?format=pdf").await;
    assert_eq!(pdf.status(), StatusCode::OK);
    let text = crate::helpers::pdf_text(&pdf.bytes().await.expect("pdf"));
    assert!(
        text.contains("标签分析") && text.contains("价格敏感"),
        "{text}"
    );
    assert_eq!(p["removal_candidate"], false);
    assert_eq!(
        row("需求标签")["customers"],
        2,
        "a dimension counts its subtree"
    );
    assert_eq!(row("风险标签/付款延迟")["removal_candidate"], true);
    assert_eq!(
        rep.get("/api/v1/tag-review").await.status(),
        StatusCode::FORBIDDEN
    );
    // A team's manager reads the figures of the team's customers only.
    let manager = app.token("mgr1", "sales_manager", Some("华东一组")).await;
    let seen = |v: &Value| {
        let tag = review_row(v, "需求标签/价格敏感");
        (
            v["customers"].as_u64(),
            tag["customers"].as_u64(),
            tag["change_in_period"].as_i64(),
        )
    };
    let r = manager.get("/api/v1/tag-review?days=30").await;
    let none: Value = r.json().await.expect("json");
    assert_eq!(seen(&none), (Some(0), Some(0), Some(0)), "{none}");
    let moved = tagged_ids[1];
    let c: Value = admin
        .get(&format!("/api/v1/customers/{moved}"))
        .await
        .json()
        .await
        .expect("json");
    let r = admin
        .patch(
            &format!("/api/v1/customers/{moved}"),
            json!({"owner_id": rep.user_id, "version": c["version"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = manager.get("/api/v1/tag-review?days=30").await;
    let team: Value = r.json().await.expect("json");
    assert_eq!(seen(&team), (Some(1), Some(1), Some(1)), "{team}");
    let all: Value = admin
        .get("/api/v1/tag-review?days=30")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(seen(&all), (Some(4), Some(2), Some(1)));
    // A period: counted as at its last day (today while under way).
    let quarter = kehu_core::strategy::Period::quarter_of(app.store.today());
    let v: Value = admin
        .get(&format!("/api/v1/tag-review?period={}", quarter.label()))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (v["since"].as_str(), v["until"].as_str()),
        (
            Some(quarter.start.to_string().as_str()),
            Some(app.store.today().to_string().as_str())
        )
    );
    // Last quarter, as it stood at its end: only a carried the tag then
    // (b took it today); a bought on two days in it, c once (and once
    // before it), b not at all.
    let last = quarter.previous();
    let in_last = |d: i64| (last.start + chrono::Duration::days(d)).to_string();
    kehu_store::db::Exec::execute(
        &mut db,
        "UPDATE tag_history SET at = $1 WHERE customer_id = $2 AND tag_id = $3",
        vec![
            kehu_store::db::Arg::from(last.start.and_hms_opt(4, 0, 0).expect("time").and_utc()),
            kehu_store::db::Arg::from(tagged_ids[0]),
            kehu_store::db::Arg::from(price),
        ],
    )
    .await
    .expect("backdate");
    let c = ids[2];
    for (id, day) in [(tagged_ids[0], 3), (tagged_ids[0], 40), (c, 5), (c, -10)] {
        let r = admin
            .post(
                &format!("/api/v1/customers/{id}/orders"),
                json!({"ordered_on": in_last(day), "amount_fen": 50_000}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let v: Value = admin
        .get(&format!("/api/v1/tag-review?period={}", last.label()))
        .await
        .json()
        .await
        .expect("json");
    let p = review_row(&v, "需求标签/价格敏感");
    assert_eq!(
        (
            p["customers"].as_u64(),
            p["repurchase_with"].as_f64(),
            p["repurchase_without"].as_f64(),
            p["satisfaction_with"].as_f64()
        ),
        (Some(1), Some(1.0), Some(0.0), None),
        "{v}"
    );
    refused(
        admin.get("/api/v1/tag-review?period=2099-Q1").await,
        "period",
        "invalid",
    )
    .await;
    refused(
        admin.get("/api/v1/tag-review?days=0").await,
        "days",
        "out_of_range",
    )
    .await;
    app.cleanup().await;
}

/// Rule runs and bulk tagging of more than a thousand customers (COPY on
/// PostgreSQL, multi-row statements on SQLite): every change stored once,
/// with its history, and repeated work changes nothing.
async fn many_changes_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    kehu_store::testing::load_demo(
        &app.store,
        kehu_core::demo::DemoConfig::new(9, app.store.today(), 1_500),
    )
    .await
    .expect("demo");
    let everyone = app.store.customer_count().await.expect("count");
    let r = admin
        .post("/api/v1/tags", json!({"parent": "行为标签", "name": "全体", "mode": "rule", "rule": "NOT 风险标签/付款延迟"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let all = r.json::<Value>().await.expect("json");
    let id = all["id"].as_i64().expect("id");
    assert_eq!(seg(&admin, "全体").await["count"], everyone);
    let h: Vec<Value> = admin
        .get(&format!("/api/v1/tags/{id}/history"))
        .await
        .json()
        .await
        .expect("json");
    // One entry for the run in the tag's history; each customer's own
    // history tells its change.
    let runs: Vec<&Value> = h.iter().filter(|e| e["action"] == "rule_applied").collect();
    assert_eq!(runs.len(), 1, "{h:?}");
    assert_eq!(runs[0]["detail"]["added"], everyone);
    let first = app.store.max_customer_id().await.expect("max");
    let own: Vec<Value> = admin
        .get(&format!("/api/v1/customers/{first}/tag-history"))
        .await
        .json()
        .await
        .expect("json");
    assert!(
        own.iter()
            .any(|e| e["action"] == "assigned" && e["tag_id"] == id && e["id"] == runs[0]["id"]),
        "{own:?}"
    );
    let again: Value = admin
        .post(&format!("/api/v1/tags/{id}/apply"), json!({}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (again["added"].as_u64(), again["removed"].as_u64()),
        (Some(0), Some(0))
    );
    // The rule changed to hold for no one: everyone loses the tag.
    let r = admin
        .patch(
            &format!("/api/v1/tags/{id}"),
            json!({"rule": "风险标签/付款延迟", "version": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(seg(&admin, "全体").await["count"], 0);
    assert!(!tag_paths_of(&admin, first)
        .await
        .contains(&"行为标签/全体".to_string()));
    // The tag trends count each customer's change once.
    let trend = app
        .store
        .assignment_changes_by_span(
            &[chrono::Utc::now() - chrono::Duration::hours(1)],
            &kehu_store::ScopeFilter::All,
        )
        .await
        .expect("trend");
    assert!(
        trend.contains(&(id, 0, everyone as i64, everyone as i64)),
        "{trend:?}"
    );
    // A deleted customer's rule tags go with it.
    let r = admin
        .patch(
            &format!("/api/v1/tags/{id}"),
            json!({"rule": "NOT 风险标签/付款延迟", "version": 2}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(tag_paths_of(&admin, first)
        .await
        .contains(&"行为标签/全体".to_string()));
    let c: Value = admin
        .get(&format!("/api/v1/customers/{first}"))
        .await
        .json()
        .await
        .expect("json");
    let r = admin
        .delete(&format!(
            "/api/v1/customers/{first}?version={}",
            c["version"]
        ))
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        app.store.tag_pairs_in(&[first]).await.expect("pairs"),
        Vec::<(i64, i64)>::new()
    );
    // Bulk tagging twice: the second time adds nothing.
    let everyone = app.store.customer_count().await.expect("count");
    let manual = tag_id(&admin, "需求标签/定制需求").await;
    let max = app.store.max_customer_id().await.expect("max");
    let pairs: Vec<(i64, i64)> = (1..=max).map(|c| (c, manual)).collect();
    assert_eq!(
        app.store.bulk_tag(&pairs, "manual").await.expect("bulk"),
        everyone
    );
    assert_eq!(app.store.bulk_tag(&pairs, "manual").await.expect("bulk"), 0);
    assert_eq!(seg(&admin, "定制需求").await["count"], everyone);
    app.cleanup().await;
}

/// A segment's customers as CSV and XLSX, in the reader's scope, with classes
/// and tags, and formulas defused.
async fn export_of_a_segment(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let rep = app.token("rep_east", "sales_rep", Some("华东一组")).await;
    let mine = admin
        .customer(
            "=HYPERLINK(\"http://evil\")有限公司",
            json!({"sales_region": "华东", "owner_id": rep.user_id}),
        )
        .await;
    admin
        .customer("广州乙有限公司", json!({"sales_region": "华南"}))
        .await;
    let price = tag_id(&admin, "需求标签/价格敏感").await;
    let id = mine["id"].as_i64().expect("id");
    assert_eq!(
        put(&admin, &format!("/api/v1/customers/{id}/tags/{price}"))
            .await
            .status(),
        StatusCode::OK
    );

    let r = admin
        .get(&format!(
            "/api/v1/customers/export?format=csv&segment={}",
            urlencode("华东 OR 华南")
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/csv"));
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap_or("")
        .contains("customers.csv"));
    let text = r.text().await.expect("csv");
    let lines: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("客户编号,客户名称,") && lines[0].contains("价值分层"),
        "{}",
        lines[0]
    );
    let row = lines.iter().find(|l| l.contains("HYPERLINK")).expect("row");
    assert!(
        row.contains("\"'=HYPERLINK(\"\"http://evil\"\")有限公司\""),
        "defused and quoted: {row}"
    );
    assert!(row.contains("需求标签/价格敏感"), "{row}");
    // The rep's export holds only their team's customer; a saved segment works as the target too.
    let r = rep
        .post(
            "/api/v1/segments",
            json!({"name": "我的", "expression": "价格敏感 OR 华南"}),
        )
        .await;
    let sid = r.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    let text = rep
        .get(&format!("/api/v1/customers/export?segment_id={sid}"))
        .await
        .text()
        .await
        .expect("csv");
    assert_eq!(text.lines().count(), 2, "{text}");
    // XLSX is a zip package.
    let r = admin.get("/api/v1/customers/export?format=xlsx").await;
    assert_eq!(r.status(), StatusCode::OK);
    let bytes = r.bytes().await.expect("xlsx");
    assert!(bytes.starts_with(b"PK"), "a zip file");
    refused(
        admin.get("/api/v1/customers/export?format=pdf").await,
        "format",
        "unknown_option",
    )
    .await;
    // Over the limit of an export: refused, naming it.
    let settings = kehu_server::Settings::offline("");
    let state = kehu_server::AppState::new(app.store.clone(), settings);
    let csv = kehu_server::export::Format::Csv;
    let e = kehu_server::export::customers(
        &state,
        &ScopeFilter::All,
        &kehu_core::privacy::FieldRights::preset("admin"),
        None,
        csv,
        Some(1),
    )
    .await
    .expect_err("two customers, a limit of one");
    assert!(format!("{e:?}").contains("export_too_large"), "{e:?}");
    refused(
        admin
            .get(&format!(
                "/api/v1/customers/export?segment={}",
                urlencode("华东 AND (")
            ))
            .await,
        "segment",
        "segment_syntax",
    )
    .await;
    app.cleanup().await;
}

/// A saved segment shared within a team: teammates read and use it but
/// only its owner changes it; another team does not see it, nor anyone an
/// unshared one. Exports, segment tasks, reports and campaign touches take
/// it by id (`segment_id`) and mean the same customers as its expression;
/// saving, changing and deleting it are in the audit log.
async fn saved_segments_shared_and_used_as_targets(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let owner = app.token("rep_a", "sales_rep", Some("华东一组")).await;
    let mate = app.token("rep_b", "sales_rep", Some("华东一组")).await;
    let other = app.token("rep_c", "sales_rep", Some("华南一组")).await;
    let auditor = app.token("audit1", "auditor", None).await;
    for (name, region, rep) in [
        ("上海甲有限公司", "华东", &owner),
        ("杭州乙有限公司", "华东", &mate),
        ("苏州丙有限公司", "华东", &mate),
        ("广州丁有限公司", "华南", &other),
    ] {
        admin
            .customer(
                name,
                json!({"sales_region": region, "owner_id": rep.user_id}),
            )
            .await;
    }
    let save = |body: Value| {
        let owner = &owner;
        async move {
            let r = owner.post("/api/v1/segments", body).await;
            assert_eq!(r.status(), StatusCode::CREATED);
            r.json::<Value>().await.expect("json")
        }
    };
    let shared = save(json!({"name": "华东全部", "expression": "华东", "shared": true})).await;
    let private = save(json!({"name": "我的华东", "expression": "华东", "shared": false})).await;
    let (sid, pid) = (
        shared["id"].as_i64().expect("id"),
        private["id"].as_i64().expect("id"),
    );

    // The teammate reads the shared one (counted in their scope: the team's
    // three 华东 customers) but not the private one; changing or deleting it
    // is the owner's alone.
    let seen: Value = mate
        .get(&format!("/api/v1/segments/{sid}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(seen["count"], 3, "{seen}");
    assert_eq!(
        mate.get(&format!("/api/v1/segments/{pid}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        mate.patch(
            &format!("/api/v1/segments/{sid}"),
            json!({"name": "改名", "version": 1})
        )
        .await
        .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        mate.delete(&format!("/api/v1/segments/{sid}?version=1"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let listed: Vec<Value> = mate
        .get("/api/v1/segments")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed.iter().map(|s| s["id"].clone()).collect::<Vec<_>>(),
        vec![json!(sid)]
    );
    // Another team sees neither, and cannot use them as a target.
    assert_eq!(
        other.get(&format!("/api/v1/segments/{sid}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        other
            .get(&format!("/api/v1/customers/export?segment_id={sid}"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let p = problem(
        mate.get("/api/v1/customers/export?segment_id=abc").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&p),
        ("segment_id".into(), "integer_format".into())
    );

    // Targets by id: an export, tasks for each customer, the same once only.
    let csv = mate
        .get(&format!("/api/v1/customers/export?segment_id={sid}"))
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    let text = csv.text().await.expect("csv");
    assert_eq!(
        text.trim_start_matches('\u{feff}').lines().count(),
        4,
        "{text}"
    );
    let due = app.store.today().to_string();
    let made: Value = mate
        .post(
            "/api/v1/tasks/segment",
            json!({"segment_id": sid, "title": "季度回访", "due_on": due}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (made["customers"].clone(), made["made"].clone()),
        (json!(3), json!(3)),
        "{made}"
    );
    let p = problem(
        mate.post(
            "/api/v1/tasks/segment",
            json!({"title": "季度回访", "due_on": due}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "segment");
    assert_eq!(
        other
            .post(
                "/api/v1/tasks/segment",
                json!({"segment_id": pid, "title": "x", "due_on": due})
            )
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // A report by id equals the report by the expression.
    let admin_seg: Value = admin
        .post(
            "/api/v1/segments",
            json!({"name": "华东", "expression": "华东"}),
        )
        .await
        .json()
        .await
        .expect("json");
    let period = kehu_core::strategy::Period::quarter_of(app.store.today()).label();
    let by_id: Value = admin
        .get(&format!(
            "/api/v1/reports/classification?period={period}&segment_id={}",
            admin_seg["id"]
        ))
        .await
        .json()
        .await
        .expect("json");
    let by_text: Value = admin
        .get(&format!(
            "/api/v1/reports/classification?period={period}&segment={}",
            urlencode("华东")
        ))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        (&by_id["classes"], &by_id["total"]),
        (&by_text["classes"], &by_text["total"])
    );
    assert_eq!(by_id["total"]["customers"], 3, "{by_id}");

    // A campaign touches a saved segment's customers.
    let campaign: Value = admin
        .post(
            "/api/v1/campaigns",
            json!({"name": "华东展会", "channel": "event", "starts_on": due, "ends_on": due}),
        )
        .await
        .json()
        .await
        .expect("json");
    let touched: Value = admin
        .post(
            &format!("/api/v1/campaigns/{}/touches", campaign["id"]),
            json!({"segment_id": admin_seg["id"]}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(touched["customers"], 3, "{touched}");

    // Saving, changing and deleting a segment are audited.
    let r = owner
        .patch(
            &format!("/api/v1/segments/{sid}"),
            json!({"name": "华东（共享）", "version": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        owner
            .delete(&format!("/api/v1/segments/{pid}?version=1"))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    for (action, target) in [
        ("segment.create", sid),
        ("segment.update", sid),
        ("segment.delete", pid),
    ] {
        let found: Value = auditor
            .get(&format!(
                "/api/v1/audit?action={action}&target=segment:{target}"
            ))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(found["total"], 1, "{action} {found}");
        assert_eq!(found["entries"][0]["actor_id"], owner.user_id);
    }
}
