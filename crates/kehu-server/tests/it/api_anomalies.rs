//! The 异常数据报告 through the API: findings assigned to the owner's
//! manager, due 3 working days on (the holiday calendar moves it), scoped
//! to what the reader may see, resolved when fixed, overdue flags, the
//! daily run claimed once, the calendar's errors and rights.

use crate::both_backends;
use crate::helpers::{first_error, ok_json, problem, spawn_app, Session};
use kehu_core::calendar::{parse_calendar, WorkCalendar};
use kehu_server::anomalies::{run, ANOMALY_JOB};
use kehu_store::db::{Arg, Exec};
use kehu_store::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both_backends!(anomaly_report_assigns_resolves_and_flags);

async fn report(s: &Session, query: &str) -> Value {
    ok_json(s.get(&format!("/api/v1/anomalies{query}")).await).await
}

fn kinds_of(report: &Value, customer: i64) -> Vec<String> {
    let mut kinds: Vec<String> = report["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|a| a["customer"]["id"] == customer)
        .map(|a| a["kind"].as_str().unwrap_or("").to_string())
        .collect();
    kinds.sort();
    kinds
}

async fn anomaly_report_assigns_resolves_and_flags(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let manager = app.token("mgr_east", "sales_manager", Some("华东")).await;
    // A second manager of the team: the first one (by id) gets the findings.
    let manager_en = app
        .token("mgr_east_en", "sales_manager", Some("华东"))
        .await
        .english();
    let rep = app.token("rep_east", "sales_rep", Some("华东")).await;
    let north = app.token("rep_north", "sales_rep", Some("华北")).await;

    // The first working day after today is a holiday: the due date moves by one.
    let today = app.store.today();
    let plain = WorkCalendar::default();
    let holiday = plain.add_working_days(today, 1);
    let text = format!("{holiday} 测试假日\n");
    let r = rep
        .request(Method::PUT, "/api/v1/calendar")
        .json(&json!({ "text": text }))
        .send()
        .await
        .expect("PUT");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let bad = admin
        .request(Method::PUT, "/api/v1/calendar")
        .json(&json!({ "text": "2026-10-01 国庆节\n2026-02-30 坏\n" }))
        .send()
        .await
        .expect("PUT");
    let p = problem(bad, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        first_error(&p),
        ("line 2".into(), "date_format".into()),
        "{p}"
    );
    let saved = ok_json(
        admin
            .request(Method::PUT, "/api/v1/calendar")
            .json(&json!({ "text": text }))
            .send()
            .await
            .expect("PUT"),
    )
    .await;
    assert_eq!(saved["text"], text);
    let expected_due =
        WorkCalendar::new(&parse_calendar(&text).expect("calendar")).add_working_days(today, 3);
    assert_ne!(expected_due, plain.add_working_days(today, 3));

    // A rep's customer: a contact without phone or e-mail, an order before
    // the cooperation start (2021-03-15), one order 50× the others.
    let a = rep.customer("华东精密机械有限公司", json!({})).await;
    let ia = a["id"].as_i64().expect("id");
    let contact = ok_json(
        rep.post(
            &format!("/api/v1/customers/{ia}/contacts"),
            json!({"name": "王五"}),
        )
        .await,
    )
    .await;
    for (day, fen) in [
        ("2020-01-10", 100_000),
        ("2022-01-10", 100_000),
        ("2022-02-10", 100_000),
        ("2022-03-10", 100_000),
        ("2022-04-10", 5_000_000),
    ] {
        ok_json(
            rep.post(
                &format!("/api/v1/customers/{ia}/orders"),
                json!({"ordered_on": day, "amount_fen": fen}),
            )
            .await,
        )
        .await;
    }
    // Another team's, without a manager there.
    let b = north.customer("华北联系人缺失有限公司", json!({})).await;
    let ib = b["id"].as_i64().expect("id");
    ok_json(
        north
            .post(
                &format!("/api/v1/customers/{ib}/contacts"),
                json!({"name": "赵六"}),
            )
            .await,
    )
    .await;

    // Reps do not run the check; managers do.
    assert_eq!(
        rep.post("/api/v1/anomalies/run", json!({})).await.status(),
        StatusCode::FORBIDDEN
    );
    let ran = ok_json(manager.post("/api/v1/anomalies/run", json!({})).await).await;
    assert_eq!(
        (ran["new"].clone(), ran["open"].clone()),
        (json!(4), json!(4)),
        "{ran}"
    );

    let seen = report(&manager, "").await;
    assert_eq!(
        kinds_of(&seen, ia),
        [
            "amount_outlier",
            "order_before_cooperation",
            "unreachable_contact"
        ]
    );
    assert!(
        kinds_of(&seen, ib).is_empty(),
        "another team's customer stays hidden"
    );
    for item in seen["items"].as_array().expect("items") {
        assert_eq!(item["assignee_id"], manager.user_id, "{item}");
        assert_eq!(item["due_on"], expected_due.to_string());
        assert_eq!(item["overdue"], false);
    }
    let outlier = seen["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|a| a["kind"] == "amount_outlier")
        .expect("outlier")
        .clone();
    assert!(
        outlier["description"]
            .as_str()
            .unwrap_or("")
            .contains("5.00万"),
        "{outlier}"
    );
    let english = report(&manager_en, "?kind=unreachable_contact").await;
    assert_eq!(
        english["items"][0]["description"], "contact 王* has no phone or e-mail",
        "the contact's name masked"
    );
    let all = report(&admin, "").await;
    let unassigned: Vec<&Value> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|a| a["customer"]["id"] == ib)
        .collect();
    assert_eq!(unassigned.len(), 1);
    assert_eq!(unassigned[0]["assignee"], Value::Null, "no manager in 华北");
    assert_eq!(report(&admin, "?mine=true").await["total"], 0);
    assert_eq!(report(&manager, "?mine=true").await["total"], 3);
    let p = problem(
        admin.get("/api/v1/anomalies?kind=bogus").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "kind");

    // Fixed data resolves its finding at the next check.
    let cid = contact["id"].as_i64().expect("id");
    ok_json(
        rep.patch(
            &format!("/api/v1/contacts/{cid}"),
            json!({"mobile": "13800138000", "version": contact["version"]}),
        )
        .await,
    )
    .await;
    let ran = ok_json(admin.post("/api/v1/anomalies/run", json!({})).await).await;
    assert_eq!(
        (
            ran["new"].clone(),
            ran["resolved"].clone(),
            ran["open"].clone()
        ),
        (json!(0), json!(1), json!(3)),
        "{ran}"
    );
    let resolved = report(&manager, "?status=resolved").await;
    assert_eq!(kinds_of(&resolved, ia), ["unreachable_contact"]);
    assert_eq!(resolved["items"][0]["resolved_on"], today.to_string());

    // Past the due date: flagged and counted.
    let past = today - chrono::Days::new(1);
    app.store
        .db
        .clone()
        .execute(
            "UPDATE anomalies SET due_on = $1 WHERE kind = 'amount_outlier'",
            vec![Arg::from(past)],
        )
        .await
        .expect("update");
    let overdue = report(&manager, "?overdue=true").await;
    assert_eq!(kinds_of(&overdue, ia), ["amount_outlier"]);
    assert_eq!(overdue["items"][0]["overdue"], true);
    let counted = overdue["counts"]
        .as_array()
        .expect("counts")
        .iter()
        .find(|c| c["kind"] == "amount_outlier")
        .cloned()
        .expect("count");
    assert_eq!(
        (counted["open"].clone(), counted["overdue"].clone()),
        (json!(1), json!(1))
    );

    // The daily run: once per day, whoever claims it first.
    let first = run(&app.store, Some(ANOMALY_JOB)).await.expect("run");
    let second = run(&app.store, Some(ANOMALY_JOB)).await.expect("run");
    assert!(first.is_some() && second.is_none());
    app.cleanup().await;
}
