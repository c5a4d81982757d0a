//! Dynamic re-evaluation and overrides over HTTP: a new order or complaint
//! moves the customer's class in the same request; an override wins over
//! the rules, survives re-evaluation (on data change and the daily job),
//! can be lifted, and expires; 客服 cannot set one. Every change is history
//! with its cause.

use crate::both_backends;
use crate::helpers::{first_error, of_scheme, problem, spawn_app, Session};
use chrono::{Days, NaiveDate};
use kehu_server::classifier::Classifier;
use kehu_store::classes::cause;
use kehu_store::db::Exec;
use kehu_store::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both_backends!(
    data_changes_reclassify_and_overrides_win,
    a_new_order_is_kept_when_its_re_evaluation_fails
);

async fn class_of(s: &Session, id: i64, scheme: &str) -> (String, String) {
    class_on(s, id, scheme, "").await
}

/// The class as of `?as_of=…` (empty: today).
async fn class_on(s: &Session, id: i64, scheme: &str, query: &str) -> (String, String) {
    let v: Value = s
        .get(&format!("/api/v1/customers/{id}/classes{query}"))
        .await
        .json()
        .await
        .expect("json");
    let c = of_scheme(&v, scheme);
    (
        c["class"].as_str().unwrap_or("").into(),
        c["cause"].as_str().unwrap_or("").into(),
    )
}

async fn send(s: &Session, method: Method, path: &str, body: Value) -> reqwest::Response {
    s.request(method, path)
        .json(&body)
        .send()
        .await
        .expect("request")
}

fn days_ago(today: NaiveDate, n: u64) -> String {
    (today - Days::new(n)).to_string()
}

/// A new order commits with the classes it gives; should the
/// re-evaluation fail, the order is written on its own (the classes wait
/// for the next run) and the request still succeeds.
async fn a_new_order_is_kept_when_its_re_evaluation_fails(backend: Backend) {
    let app = spawn_app(backend).await;
    let today = app.store.today();
    let admin = app.token("admin1", "admin", None).await;
    let c = admin
        .customer(
            "苏州星湖精密机械有限公司",
            json!({"cooperation_start_on": "2021-03-15"}),
        )
        .await;
    let id = c["id"].as_i64().expect("id");
    let before = class_of(&admin, id, "value_tier").await;
    assert_ne!(before.0, "战略型");
    let orders = format!("/api/v1/customers/{id}/orders");
    let order = json!({"ordered_on": days_ago(today, 5), "amount_fen": 120_000_000, "product_line": "数控机床"});

    // A class change cannot be recorded while a trigger refuses history.
    let mut db = app.store.db.clone();
    let (refuse, allow): (&[&str], &str) = match backend {
        Backend::Sqlite => (
            &["CREATE TRIGGER refuse_history BEFORE INSERT ON class_history BEGIN SELECT RAISE(ABORT, 'refused'); END"],
            "DROP TRIGGER refuse_history",
        ),
        Backend::Postgres => (
            &[
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$",
                "CREATE TRIGGER refuse_history BEFORE INSERT ON class_history FOR EACH ROW EXECUTE FUNCTION refuse()",
            ],
            "DROP TRIGGER refuse_history ON class_history",
        ),
    };
    for sql in refuse {
        db.execute(sql, vec![]).await.expect("trigger");
    }
    let r = admin.post(&orders, order.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    let written: Value = r.json().await.expect("json");
    let r = admin
        .get(&format!("/api/v1/orders/{}", written["id"]))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(class_of(&admin, id, "value_tier").await, before);

    // Without the trigger, the next order and its classes commit together.
    db.execute(allow, vec![]).await.expect("drop trigger");
    let r = admin.post(&orders, order).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        class_of(&admin, id, "value_tier").await,
        ("战略型".into(), cause::DATA_CHANGE.into())
    );
    let listed: Value = admin
        .get(&format!("/api/v1/orders?customer_id={id}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );
}

async fn data_changes_reclassify_and_overrides_win(backend: Backend) {
    let app = spawn_app(backend).await;
    let today = app.store.today();
    let admin = app.token("admin1", "admin", None).await;
    let rep = app.token("rep_east", "sales_rep", Some("华东一组")).await;
    let manager = app
        .token("mgr_east", "sales_manager", Some("华东一组"))
        .await;
    let service = app.token("kefu", "service", None).await;
    let c = admin
        .customer(
            "苏州星湖精密机械有限公司",
            json!({"owner_id": rep.user_id, "cooperation_start_on": "2021-03-15"}),
        )
        .await;
    let id = c["id"].as_i64().expect("id");
    // Creating the customer classified it at once: no orders yet.
    assert_eq!(class_of(&admin, id, "lifecycle").await.0, "潜在");

    // A 120万 order: 高 value, stable for 5 years, no complaints → 战略型 now.
    let r = rep
        .post(
            &format!("/api/v1/customers/{id}/orders"),
            json!({"ordered_on": days_ago(today, 5), "amount_fen": 120_000_000, "product_line": "数控机床"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        class_of(&admin, id, "value_tier").await,
        ("战略型".into(), cause::DATA_CHANGE.into())
    );

    // One complaint: no longer 稳定 → the default 维持型; and 投诉客户.
    let r = service
        .post(
            &format!("/api/v1/customers/{id}/interactions"),
            json!({"kind": "complaint", "occurred_on": today.to_string(), "summary": "交付延迟", "severity": "一般"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    assert_eq!(class_of(&admin, id, "value_tier").await.0, "维持型");
    assert_eq!(class_of(&admin, id, "behavior").await.0, "投诉客户");

    // Who may override: not 客服, not a sales rep; refused requests change nothing.
    let path = format!("/api/v1/customers/{id}/classes/value_tier/override");
    let body = json!({"class": "战略型", "reason": "集团战略合作客户"});
    problem(
        send(&service, Method::PUT, &path, body.clone()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        send(&rep, Method::PUT, &path, body.clone()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let p = problem(
        send(&manager, Method::PUT, &path, json!({"class": "战略型"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p), ("reason".into(), "required".into()));
    let p = problem(
        send(
            &manager,
            Method::PUT,
            &path,
            json!({"class": "高价值", "reason": "x"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p), ("class".into(), "unknown_option".into()));
    problem(
        send(
            &manager,
            Method::PUT,
            &format!("/api/v1/customers/{id}/classes/no_such_scheme/override"),
            body.clone(),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(class_of(&admin, id, "value_tier").await.0, "维持型");

    // The team's manager overrides, with a reason.
    let r = send(&manager, Method::PUT, &path, body.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let set: Value = r.json().await.expect("json");
    assert_eq!(set["active"]["class"], "战略型", "{set}");
    assert_eq!(set["active"]["set_by"], manager.user_id);
    assert_eq!(
        set["changes"],
        json!([{"scheme": "value_tier", "from": "维持型", "to": "战略型", "cause": "override"}])
    );
    // Visible as such: the explanation keeps what the rules say.
    let ex: Value = admin
        .get(&format!("/api/v1/customers/{id}/explanations"))
        .await
        .json()
        .await
        .expect("json");
    let vt = of_scheme(&ex, "value_tier");
    assert_eq!(
        (&vt["class"], &vt["rule_class"], &vt["override"]["reason"]),
        (&json!("战略型"), &json!("维持型"), &body["reason"])
    );
    assert_eq!(vt["explanation"]["class"], "维持型");
    assert!(
        vt["explanation"]["indicators"]
            .as_array()
            .is_some_and(|i| i.iter().any(|l| l["key"] == "complaints")),
        "{vt}"
    );

    // Lists filter and sort on the current class.
    let count = |query: &str| {
        let url = format!("/api/v1/customers?with_total=true&{query}");
        let s = &admin;
        async move {
            let v: Value = s.get(&url).await.json().await.expect("json");
            v["total"].as_i64().unwrap_or(-1)
        }
    };
    assert_eq!(count("class.value_tier=战略型").await, 1);
    assert_eq!(count("class.value_tier=维持型").await, 0);
    assert_eq!(
        count("class.value_tier.in=维持型,战略型&class.behavior=投诉客户").await,
        1
    );
    assert_eq!(count("sort=-class.value_tier").await, 1);
    let p = problem(
        admin.get("/api/v1/customers?class.no_such_scheme=x").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&p),
        ("class.no_such_scheme".into(), "unknown_field".into())
    );

    // It survives re-evaluation: another order, then the daily job.
    let r = rep
        .post(
            &format!("/api/v1/customers/{id}/orders"),
            json!({"ordered_on": days_ago(today, 1), "amount_fen": 5_000_000}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(class_of(&admin, id, "value_tier").await.0, "战略型");
    let classifier = Classifier::new(app.store.clone());
    kehu_server::jobs::run_once(&classifier).await;
    assert_eq!(
        app.store
            .job_done_for(kehu_server::jobs::CLASSIFY_JOB)
            .await
            .expect("job state"),
        Some(today)
    );
    assert_eq!(class_of(&admin, id, "value_tier").await.0, "战略型");

    // Lifted: the rules decide again at once.
    let r = send(&manager, Method::DELETE, &path, json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let lifted: Value = r.json().await.expect("json");
    assert_eq!(lifted["active"], Value::Null);
    assert_eq!(
        lifted["changes"],
        json!([{"scheme": "value_tier", "from": "战略型", "to": "维持型", "cause": "override_lifted"}])
    );
    problem(
        send(&manager, Method::DELETE, &path, json!({})).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // An override with an expiry holds until that day, then the rules decide.
    let expiry = today + Days::new(30);
    let r = send(
        &manager,
        Method::PUT,
        &path,
        json!({"class": "潜力型", "reason": "新项目试点观察一个月", "expires_on": expiry.to_string()}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let p = problem(
        send(
            &manager,
            Method::PUT,
            &path,
            json!({"class": "潜力型", "reason": "x", "expires_on": today.to_string()}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&p),
        ("expires_on".into(), "out_of_range".into())
    );
    let before_expiry = classifier
        .run_all(expiry - Days::new(1), cause::EVALUATION, None, None)
        .await
        .expect("run the day before");
    assert!(
        !before_expiry
            .changes
            .iter()
            .any(|c| c.customer_id == id && c.scheme_key == "value_tier"),
        "{:?}",
        before_expiry.changes
    );
    classifier
        .run_all(expiry, cause::EVALUATION, None, None)
        .await
        .expect("run on the expiry day");
    assert_eq!(
        class_on(&admin, id, "value_tier", &format!("?as_of={expiry}")).await,
        ("维持型".into(), cause::EVALUATION.into())
    );
    assert_eq!(
        class_of(&admin, id, "value_tier").await.0,
        "潜力型",
        "still today"
    );

    // The overrides and the whole history, with causes and who.
    let overrides: Value = admin
        .get(&format!("/api/v1/customers/{id}/overrides"))
        .await
        .json()
        .await
        .expect("json");
    let overrides = overrides.as_array().expect("array");
    assert_eq!(overrides.len(), 2);
    assert_eq!(overrides[0]["expires_on"], expiry.to_string());
    assert_eq!(overrides[1]["lifted_by"], manager.user_id);
    let history: Value = admin
        .get(&format!(
            "/api/v1/class-changes?customer_id={id}&scheme_key=value_tier&sort=id"
        ))
        .await
        .json()
        .await
        .expect("json");
    let steps: Vec<(String, String, Option<i64>)> = history["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|h| {
            (
                h["to_class"].as_str().unwrap_or("").to_string(),
                h["cause"].as_str().unwrap_or("").to_string(),
                h["changed_by"].as_i64(),
            )
        })
        .collect();
    let step =
        |class: &str, cause: &str, by: Option<i64>| (class.to_string(), cause.to_string(), by);
    assert_eq!(
        steps,
        vec![
            step("维持型", "data_change", Some(admin.user_id)),
            step("战略型", "data_change", Some(rep.user_id)),
            step("维持型", "data_change", Some(service.user_id)),
            step("战略型", "override", Some(manager.user_id)),
            step("维持型", "override_lifted", Some(manager.user_id)),
            step("潜力型", "override", Some(manager.user_id)),
            step("维持型", "evaluation", None),
        ]
    );
    app.cleanup().await;
}
