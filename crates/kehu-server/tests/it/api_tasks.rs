//! Strategies and follow-up work through the API: the preset strategy
//! table and its validation, a quarter's tasks generated on working days
//! for the right owner level (idempotently), hand-over tasks on class
//! changes, complaint tasks due within the class's SLA in working hours,
//! closing only with a result into the tracking log (status change, class
//! after re-evaluation, follow-up call, the manager's review of a suggested
//! class), reminders, overdue notices and escalation, the inbox, the team
//! board, bulk reassign, dormant customers, the tracking-log export, the
//! scheduler's page and rights.

use crate::both_backends;
use crate::helpers::{first_error, ok_json, problem, spawn_app, Session};
use chrono::{DateTime, Utc};
use kehu_core::calendar::WorkCalendar;
use kehu_core::strategy::Period;
use kehu_server::tasks::to_local;
use kehu_store::db::{Arg, Exec};
use kehu_store::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both_backends!(
    strategies_make_work_that_is_tracked_until_done,
    tasks_for_every_customer_of_a_segment
);

async fn send(s: &Session, method: Method, path: &str, body: Value) -> reqwest::Response {
    s.request(method, path)
        .json(&body)
        .send()
        .await
        .expect("request")
}

async fn tasks(s: &Session, query: &str) -> Vec<Value> {
    ok_json(s.get(&format!("/api/v1/tasks{query}")).await).await["items"]
        .as_array()
        .expect("items")
        .clone()
}

async fn run_job(admin: &Session, name: &str) -> Value {
    ok_json(
        admin
            .post(&format!("/api/v1/jobs/{name}/run"), json!({}))
            .await,
    )
    .await
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().expect("time").parse().expect("rfc3339")
}

async fn strategies_make_work_that_is_tracked_until_done(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let manager = app.token("mgr_east", "sales_manager", Some("华东")).await;
    let rep = app.token("rep_east", "sales_rep", Some("华东")).await;
    let rep2 = app.token("rep_east2", "sales_rep", Some("华东")).await;
    let assistant = app.token("asst_east", "sales_rep", Some("华东")).await;
    let service = app.token("svc1", "service", None).await;
    let north = app.token("rep_north", "sales_rep", Some("华北")).await;
    let today = app.store.today();
    let calendar = WorkCalendar::default();

    // The preset strategy table: design.md's four 价值分层 classes.
    let list = ok_json(rep.get("/api/v1/strategies").await).await;
    let classes: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["class_name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(classes, ["战略型", "潜力型", "维持型", "优化型"]);
    assert_eq!(list[0]["cadence"], "每季度拜访1次 + 每月联系1次");
    assert_eq!(list[0]["sla_hours"], 2);
    assert_eq!(list[0]["owner_level"], "director");
    assert_eq!(list[3]["owner_level"], "assistant");

    // Only admins edit it; errors name the field.
    let strategy = json!({"scheme_key": "value_tier", "class_name": "优化型", "cadence": "每季度促销信息1次",
        "sla_hours": 8, "resources": "标准服务", "goal": "保持合作、降低服务成本", "goal_metric": "retention",
        "goal_target": 80, "owner_level": "assistant"});
    let r = send(&rep, Method::PUT, "/api/v1/strategies", strategy.clone()).await;
    problem(r, StatusCode::FORBIDDEN).await;
    for (patch, field, code) in [
        (
            json!({"cadence": "每周拜访6次"}),
            "cadence",
            "cadence_unschedulable",
        ),
        (json!({"cadence": "每天拜访"}), "cadence", "cadence"),
        (
            json!({"class_name": "金牌"}),
            "class_name",
            "unknown_option",
        ),
        (json!({"sla_hours": 0}), "sla_hours", "out_of_range"),
        (
            json!({"owner_level": "ceo"}),
            "owner_level",
            "unknown_option",
        ),
    ] {
        let mut body = strategy.clone();
        body.as_object_mut()
            .expect("object")
            .extend(patch.as_object().expect("patch").clone());
        let p = problem(
            send(&admin, Method::PUT, "/api/v1/strategies", body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(first_error(&p), (field.into(), code.into()), "{p}");
    }
    let saved = ok_json(send(&admin, Method::PUT, "/api/v1/strategies", strategy).await).await;
    assert_eq!(saved["cadence"], "每季度促销信息1次");

    // The assistant takes 销售助理 work in 华东.
    let r = send(
        &admin,
        Method::PUT,
        &format!("/api/v1/users/{}/sales-level", assistant.user_id),
        json!({"level": "assistant"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    // Two customers of the rep: a 战略型 (by the manager's override) and an 优化型.
    let strategic = rep.customer("华东精密机械有限公司", json!({})).await;
    let optimize = rep.customer("华东小五金商行", json!({})).await;
    let (sid, oid) = (
        strategic["id"].as_i64().expect("id"),
        optimize["id"].as_i64().expect("id"),
    );
    for (id, class) in [(sid, "战略型"), (oid, "优化型")] {
        let r = send(
            &manager,
            Method::PUT,
            &format!("/api/v1/customers/{id}/classes/value_tier/override"),
            json!({"class": class, "reason": "年度评审"}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    // Generating a quarter: only admins; a past or malformed period is refused.
    // The next quarter is wholly ahead, so every slot of it is planned (late
    // in a quarter the current one may have none left).
    let quarter = Period::quarter_of(today).next();
    let body = json!({"period": quarter.label()});
    problem(
        rep.post("/api/v1/tasks/generate", body.clone()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    for bad in ["2026-Q5", "2020-Q1"] {
        let p = problem(
            admin
                .post("/api/v1/tasks/generate", json!({"period": bad}))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(first_error(&p).0, "period");
    }
    let g = ok_json(admin.post("/api/v1/tasks/generate", body.clone()).await).await;
    assert_eq!(g["period"], quarter.label());
    assert!(g["planned"].as_u64().expect("planned") >= 1, "{g}");
    assert_eq!(g["planned"], g["created"], "{g}");
    let again = ok_json(admin.post("/api/v1/tasks/generate", body).await).await;
    assert_eq!(again["planned"], g["planned"]);
    assert_eq!(again["created"], 0, "generating twice makes nothing twice");

    // 战略型 work goes to the director (the team's manager), on working days in the quarter.
    let strategic_tasks = tasks(&manager, &format!("?customer={sid}&owner=all")).await;
    assert!(!strategic_tasks.is_empty());
    for t in &strategic_tasks {
        assert_eq!(t["owner_id"], manager.user_id, "{t}");
        assert_eq!(t["source"], "strategy");
        assert!(
            ["visit", "contact"].contains(&t["kind"].as_str().unwrap_or("")),
            "{t}"
        );
        let due = to_local(at(&t["due_at"]));
        assert!(quarter.contains(due.date()) && due.date() >= today, "{t}");
        assert!(calendar.is_working_day(due.date()), "{t}");
        assert_eq!(due.time().to_string(), "18:00:00");
        assert_eq!(t["priority"], "high");
    }
    // The current quarter: what is left of it, never a day before today.
    let current = json!({"period": Period::quarter_of(today).label()});
    ok_json(admin.post("/api/v1/tasks/generate", current).await).await;
    for t in tasks(&manager, &format!("?customer={sid}&owner=all")).await {
        assert!(to_local(at(&t["due_at"])).date() >= today, "{t}");
    }
    // 优化型 work goes to the assistant.
    // A customer's tasks: whoever owns them, unless an owner is asked for.
    let of_optimize = tasks(&manager, &format!("?customer={oid}")).await;
    assert!(!of_optimize.is_empty());
    assert!(tasks(&manager, &format!("?customer={oid}&owner=me"))
        .await
        .is_empty());
    for t in tasks(&manager, &format!("?customer={oid}&owner=all")).await {
        assert_eq!(t["owner_id"], assistant.user_id, "{t}");
        assert_eq!(t["kind"], "message");
    }

    // The overrides were class changes: hand-over tasks to the new level's owner.
    let ran = run_job(&admin, "class_change_tasks").await;
    assert_eq!(ran["ran"], true, "{ran}");
    let handovers = tasks(
        &manager,
        &format!("?customer={sid}&owner=all&kind=handover"),
    )
    .await;
    assert_eq!(handovers.len(), 1, "{handovers:?}");
    assert_eq!(handovers[0]["owner_id"], manager.user_id);
    assert!(handovers[0]["title"]
        .as_str()
        .unwrap_or("")
        .contains("→ 战略型"));
    assert_eq!(
        to_local(at(&handovers[0]["due_at"])).date(),
        calendar.add_working_days(today, 3)
    );
    // Running it again finds no new changes.
    run_job(&admin, "class_change_tasks").await;
    assert_eq!(
        tasks(
            &manager,
            &format!("?customer={sid}&owner=all&kind=handover")
        )
        .await
        .len(),
        1
    );

    // A complaint: a service task for customer service, due within 战略型's 2 working hours.
    let r = rep
        .post(
            &format!("/api/v1/customers/{sid}/interactions"),
            json!({"kind": "投诉", "occurred_on": today.to_string(), "summary": "交货延期三天", "severity": "high"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let before = Utc::now();
    run_job(&admin, "complaint_tasks").await;
    let service_tasks = tasks(&service, "?kind=service").await;
    assert_eq!(service_tasks.len(), 1, "{service_tasks:?}");
    let st = &service_tasks[0];
    assert_eq!(st["sla_hours"], 2);
    assert_eq!(st["priority"], "high");
    let minutes = calendar.working_minutes_between(
        to_local(before - chrono::Duration::minutes(1)),
        to_local(at(&st["due_at"])),
    );
    assert!(
        (119..=121).contains(&minutes),
        "{minutes} working minutes to the SLA deadline"
    );
    let st_id = st["id"].as_i64().expect("id");

    // Objects of others: the rep cannot see the service task; another team cannot make tasks for the customer.
    problem(
        rep.get(&format!("/api/v1/tasks/{st_id}")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let p = problem(
        north
            .post(
                "/api/v1/tasks",
                json!({"customer": strategic["code"], "title": "拜访", "due_on": today.to_string()}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "customer");

    // Closing needs a result; done once only.
    let close = format!("/api/v1/tasks/{st_id}/close");
    let p = problem(
        service.post(&close, json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p), ("summary".into(), "invalid".into()));
    let p = problem(
        service
            .post(&close, json!({"status": "open", "summary": "x"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "status");
    let closed = ok_json(
        service
            .post(
                &close,
                json!({"summary": "已安排加急补货，客户认可", "next_step": "一周后回访"}),
            )
            .await,
    )
    .await;
    assert_eq!(closed["status"], "done");
    problem(
        service.post(&close, json!({"summary": "again"})).await,
        StatusCode::CONFLICT,
    )
    .await;
    // SLA compliance: answered in time; reps do not see the report.
    let sla = ok_json(manager.get("/api/v1/tasks/sla").await).await;
    assert_eq!(sla["total"]["total"], 1, "{sla}");
    assert_eq!(sla["total"]["on_time"], 1);
    assert_eq!(sla["total"]["compliance_percent"], 100.0);
    assert_eq!(sla["rows"][0]["class_name"], "战略型");
    assert_eq!(sla["rows"][0]["sla_hours"], 2);
    problem(rep.get("/api/v1/tasks/sla").await, StatusCode::FORBIDDEN).await;
    let p = problem(
        manager
            .get("/api/v1/tasks/sla?from=2026-12-31&to=2026-01-01")
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "to");

    // The tracking log: the status change from the data, the class after re-evaluation.
    let log = ok_json(rep.get(&format!("/api/v1/follow-ups?customer={sid}")).await).await;
    assert_eq!(log["total"], 1, "{log}");
    let entry = &log["items"][0];
    assert_eq!(entry["summary"], "已安排加急补货,客户认可");
    assert_eq!(entry["status_change"], "投诉次数+1");
    assert_eq!(entry["class_after"], "战略型");
    assert_eq!(entry["user"], "svc1");

    // …and a follow-up call for the customer's owner.
    let calls = tasks(&rep, "?kind=follow_up_call").await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(
        to_local(at(&calls[0]["due_at"])).date(),
        calendar.next_working_day(today)
    );
    // The rep suggests another class: it goes to the manager to decide.
    let call_id = calls[0]["id"].as_i64().expect("id");
    let p = problem(
        rep.post(
            &format!("/api/v1/tasks/{call_id}/close"),
            json!({"summary": "客户满意", "suggested_class": "潜力型"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&p),
        ("suggested_scheme".into(), "required".into())
    );
    ok_json(
        rep.post(
            &format!("/api/v1/tasks/{call_id}/close"),
            json!({"summary": "客户满意，计划扩大采购", "suggested_scheme": "value_tier", "suggested_class": "潜力型"}),
        )
        .await,
    )
    .await;
    let reviews = tasks(&manager, "?kind=review").await;
    assert_eq!(reviews.len(), 1, "{reviews:?}");
    assert!(reviews[0]["title"]
        .as_str()
        .unwrap_or("")
        .contains("战略型 → 潜力型"));
    let inbox = ok_json(manager.get("/api/v1/notifications").await).await;
    assert!(
        inbox["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|n| n["kind"] == "suggestion"),
        "{inbox}"
    );
    let suggested = ok_json(rep.get("/api/v1/follow-ups?suggested=1").await).await;
    assert_eq!(suggested["total"], 1);

    // A task by hand: the manager assigns one to the rep, who is notified.
    let due_soon = json!({"customer": strategic["code"], "kind": "拜访", "title": "年度框架协议洽谈",
        "due_on": today.to_string(), "due_time": "23:59", "owner_id": rep.user_id});
    let made = manager.post("/api/v1/tasks", due_soon.clone()).await;
    assert_eq!(made.status(), StatusCode::CREATED);
    let made: Value = made.json().await.expect("json");
    assert_eq!(made["owner_id"], rep.user_id);
    // A rep cannot hand work to someone else; a date in the past is refused.
    let p = problem(
        rep.post("/api/v1/tasks", json!({"customer": strategic["code"], "title": "x", "due_on": today.to_string(), "owner_id": rep2.user_id})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "owner_id");
    let p = problem(
        rep.post("/api/v1/tasks", json!({"customer": strategic["code"], "title": "x", "due_on": (today - chrono::Days::new(1)).to_string()})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "due_on");
    let inbox = ok_json(rep.get("/api/v1/notifications?unread=1").await).await;
    assert!(
        inbox["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|n| n["kind"] == "assigned"),
        "{inbox}"
    );

    // Reminders: due within a day → a reminder; long overdue → the owner and the manager hear of it.
    let overdue_id = tasks(&rep, "?kind=visit")
        .await
        .iter()
        .find(|t| t["source"] == "manual")
        .map(|t| t["id"].as_i64().expect("id"))
        .expect("manual task");
    ok_json(
        rep.post(
            "/api/v1/tasks",
            json!({"customer": optimize["code"], "title": "电话回访", "due_on": today.to_string(), "due_time": "23:59"}),
        )
        .await,
    )
    .await;
    let mut db = app.store.db.clone();
    db.execute(
        "UPDATE tasks SET due_at = $1 WHERE id = $2",
        vec![
            Arg::from(Utc::now() - chrono::Duration::days(10)),
            Arg::from(overdue_id),
        ],
    )
    .await
    .expect("backdate");
    let reminded = run_job(&admin, "reminders").await;
    assert!(
        reminded["summary"]["due_soon"].as_u64().unwrap_or(0) >= 1,
        "{reminded}"
    );
    assert!(
        reminded["summary"]["overdue"].as_u64().unwrap_or(0) >= 1,
        "{reminded}"
    );
    assert!(
        reminded["summary"]["escalated"].as_u64().unwrap_or(0) >= 1,
        "{reminded}"
    );
    let kinds = |inbox: &Value| -> Vec<String> {
        inbox["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|n| n["task_id"] == overdue_id)
            .map(|n| n["kind"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let rep_inbox = ok_json(rep.get("/api/v1/notifications").await).await;
    assert!(
        kinds(&rep_inbox).contains(&"overdue".to_string()),
        "{rep_inbox}"
    );
    let mgr_inbox = ok_json(manager.get("/api/v1/notifications").await).await;
    assert_eq!(kinds(&mgr_inbox), ["escalation"], "{mgr_inbox}");
    // Once each: a second round sends nothing about the same task.
    run_job(&admin, "reminders").await;
    let again = ok_json(manager.get("/api/v1/notifications").await).await;
    assert_eq!(kinds(&again).len(), 1);
    let overdue = tasks(&rep, "?view=overdue").await;
    assert!(overdue
        .iter()
        .any(|t| t["id"] == overdue_id && t["overdue"] == true));
    let read = ok_json(rep.post("/api/v1/notifications/read", json!({})).await).await;
    assert!(read["marked"].as_u64().unwrap_or(0) >= 2);
    assert_eq!(
        ok_json(rep.get("/api/v1/notifications").await).await["unread"],
        0
    );

    // The team board: managers only.
    problem(rep.get("/api/v1/tasks/board").await, StatusCode::FORBIDDEN).await;
    let board = ok_json(manager.get("/api/v1/tasks/board").await).await;
    let rep_row = board
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["owner_id"] == rep.user_id)
        .expect("rep's row")
        .clone();
    assert!(rep_row["overdue"].as_i64().unwrap_or(0) >= 1, "{board}");

    // The rep leaves: their open tasks and customers go to rep2.
    let open_before = rep_row["open"].as_u64().expect("open");
    let p = problem(
        north
            .post(
                "/api/v1/tasks/reassign",
                json!({"from_user": rep.user_id, "to_user": rep2.user_id}),
            )
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(p["status"], 403);
    let moved = ok_json(
        manager
            .post(
                "/api/v1/tasks/reassign",
                json!({"from_user": rep.user_id, "to_user": rep2.user_id, "customers": true}),
            )
            .await,
    )
    .await;
    assert_eq!(moved["tasks"], open_before);
    assert_eq!(moved["customers"], 2);
    assert!(tasks(&rep, "").await.is_empty());
    let c = ok_json(rep2.get(&format!("/api/v1/customers/{sid}")).await).await;
    assert_eq!(c["owner_id"], rep2.user_id);

    // Dormant: no order for more than three months → a reactivation task, once.
    let r = rep2
        .post(
            &format!("/api/v1/customers/{oid}/orders"),
            json!({"ordered_on": (today - chrono::Days::new(120)).to_string(), "amount_fen": 1_000_000}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    run_job(&admin, "dormant_tasks").await;
    run_job(&admin, "dormant_tasks").await;
    let react = tasks(&rep2, "?kind=reactivation").await;
    assert_eq!(react.len(), 1, "{react:?}");
    assert_eq!(react[0]["customer"]["id"], oid);

    // The tracking log exports in the template's columns.
    let csv = admin.get("/api/v1/follow-ups?format=csv").await;
    assert_eq!(csv.status(), StatusCode::OK);
    let text = csv.text().await.expect("csv");
    assert!(
        text.starts_with("\u{feff}客户编号,客户名称,日期,跟进人,类型,跟进摘要"),
        "{text}"
    );
    assert!(text.contains("投诉次数+1"));
    assert_eq!(text.lines().count(), 3, "{text}");

    // The scheduler's page: admins; each job's runs and last duration.
    problem(rep.get("/api/v1/jobs").await, StatusCode::FORBIDDEN).await;
    let jobs = ok_json(admin.get("/api/v1/jobs").await).await;
    let job = |name: &str| {
        jobs.as_array()
            .expect("jobs")
            .iter()
            .find(|j| j["name"] == name)
            .cloned()
            .expect("job")
    };
    assert_eq!(job("dormant_tasks")["runs"], 2);
    assert!(job("reminders")["last_duration_ms"].is_i64());
    assert_eq!(job("classify")["runs"], 0);
    problem(
        admin.post("/api/v1/jobs/no_such_job/run", json!({})).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    app.cleanup().await;
}

/// A segment as the target of tasks: one task per customer the caller may
/// see, owned by each customer's owner, once; bad input names the field
/// and makes nothing.
async fn tasks_for_every_customer_of_a_segment(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let manager = app.token("mgr_east", "sales_manager", Some("华东")).await;
    let east = app.user("rep_e", "sales_rep", Some("华东")).await;
    let north = app.user("rep_n", "sales_rep", Some("华北")).await;
    for i in 0..3 {
        admin
            .customer(
                &format!("东部客户{i}"),
                json!({"sales_region": "华东", "owner_id": east}),
            )
            .await;
        admin
            .customer(
                &format!("北部客户{i}"),
                json!({"sales_region": "华北", "owner_id": north}),
            )
            .await;
    }
    let due = app.store.today().to_string();
    let body =
        json!({"segment": "华东 OR 华北", "kind": "call", "title": "年终回访", "due_on": due});
    // A manager reaches their team's customers only.
    let made = ok_json(
        send(
            &manager,
            Method::POST,
            "/api/v1/tasks/segment",
            body.clone(),
        )
        .await,
    )
    .await;
    assert_eq!(
        (made["customers"].as_i64(), made["made"].as_i64()),
        (Some(3), Some(3)),
        "{made}"
    );
    let again = ok_json(
        send(
            &manager,
            Method::POST,
            "/api/v1/tasks/segment",
            body.clone(),
        )
        .await,
    )
    .await;
    assert_eq!(again["made"], 0, "asked again: nothing twice");
    let all = ok_json(send(&admin, Method::POST, "/api/v1/tasks/segment", body).await).await;
    assert_eq!(
        (all["customers"].as_i64(), all["made"].as_i64()),
        (Some(6), Some(3)),
        "{all}"
    );
    let listed = tasks(&admin, "?owner=all&view=open&limit=100").await;
    let calls: Vec<&Value> = listed.iter().filter(|t| t["title"] == "年终回访").collect();
    assert_eq!(calls.len(), 6);
    for t in &calls {
        let owner = t["owner_id"].as_i64().expect("owner");
        let code = t["customer"]["name"].as_str().expect("name");
        assert_eq!(
            owner,
            if code.starts_with("东部") {
                east
            } else {
                north
            },
            "{t}"
        );
    }
    // Bad input: the segment or the task's fields are named; nothing made.
    for (bad, field) in [
        (
            json!({"segment": "华东 AND (", "title": "x", "due_on": due}),
            "segment",
        ),
        (
            json!({"segment": "华南", "title": "x", "due_on": due}),
            "segment",
        ),
        (
            json!({"segment": "华东", "title": "", "due_on": due}),
            "title",
        ),
        (
            json!({"segment": "华东", "title": "x", "due_on": "2020-01-01"}),
            "due_on",
        ),
        (
            json!({"segment": "华东", "title": "x", "due_on": due, "owner": 3}),
            "",
        ),
    ] {
        let r = send(&admin, Method::POST, "/api/v1/tasks/segment", bad.clone()).await;
        let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
        if !field.is_empty() {
            assert_eq!(first_error(&p).0, field, "{bad}: {p}");
        }
    }
    let after = tasks(&admin, "?owner=all&view=open&limit=100").await;
    assert_eq!(after.len(), listed.len(), "nothing made by bad requests");
    app.cleanup().await;
}
