//! The audit log over HTTP, for the actions no other test looks at: each
//! change made through the API leaves one entry naming the action, its
//! target and the acting user, with the detail the server promises (what
//! changed, before and after) and personal values only masked.
//!
//! Covered: users (create, update, sales level, delete); classification
//! (override set and lift, a rule version's step); customers (merge, its
//! undo, delete); records (order, interaction and contact create, update,
//! delete); tasks (strategy save and delete, generate, create, close, for a
//! segment, reassign); imports (apply, undo); web forms and leads (form
//! create and update, lead accept and reject); retention, calendar and jobs
//! (retention set, a job run, retention applied by the job).

use crate::both_backends;
use crate::helpers::{ok_json, spawn_app, upload_import, Session, TestApp};
use kehu_core::strategy::Period;
use kehu_store::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both_backends!(
    user_administration_is_audited,
    classification_changes_are_audited,
    merges_and_deletes_of_customers_are_audited,
    record_changes_are_audited_masked,
    task_work_is_audited,
    imports_are_audited,
    forms_and_leads_are_audited,
    retention_calendar_and_jobs_are_audited,
);

const MOBILE: &str = "13812345678";
const NEW_MOBILE: &str = "13987654321";
const EMAIL: &str = "li.si@example.com";

/// The audit entries of exactly `action`, newest first, as `auditor` reads
/// them (the server writes the log before answering).
async fn entries_of(auditor: &Session, action: &str) -> Vec<Value> {
    let v = ok_json(
        auditor
            .get(&format!("/api/v1/audit?action={action}&limit=1000"))
            .await,
    )
    .await;
    v["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["action"] == action)
        .collect()
}

/// The one entry of `action`, checked to name `target` and `actor`: its detail.
async fn the_entry(auditor: &Session, action: &str, target: &str, actor: &Session) -> Value {
    let entries = entries_of(auditor, action).await;
    assert_eq!(entries.len(), 1, "{action}: {entries:?}");
    let e = &entries[0];
    assert_eq!(e["target"], target, "{action}: {e}");
    assert_eq!(e["actor_id"], actor.user_id, "{action}: {e}");
    e["detail"].clone()
}

/// The whole log as text, to look for values that must not be in it.
async fn whole_log(auditor: &Session) -> String {
    ok_json(auditor.get("/api/v1/audit?limit=1000").await)
        .await
        .to_string()
}

fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("no id in {v}"))
}

async fn user_administration_is_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let auditor = app.token("audit1", "auditor", None).await;
    let password = "Another-Secret-Pass-42";

    let created = ok_json(
        admin
            .post(
                "/api/v1/users",
                json!({"username": "newrep", "role": "sales_rep", "team": "华东", "password": password}),
            )
            .await,
    )
    .await;
    let uid = created["user"]["id"].as_i64().expect("user id");
    let detail = the_entry(&auditor, "user.create", &format!("user:{uid}"), &admin).await;
    assert_eq!(
        detail,
        json!({"username": "newrep", "role": "sales_rep", "team": "华东"})
    );

    let updated = ok_json(
        admin
            .patch(
                &format!("/api/v1/users/{uid}"),
                json!({"team": "华北", "version": created["user"]["version"]}),
            )
            .await,
    )
    .await;
    assert_eq!(updated["team"], "华北");
    let detail = the_entry(&auditor, "user.update", &format!("user:{uid}"), &admin).await;
    assert_eq!(
        detail["changed"]["team"],
        json!(["华东", "华北"]),
        "{detail}"
    );
    assert!(detail["changed"].get("role").is_none(), "{detail}");

    let r = admin
        .put_json(
            &format!("/api/v1/users/{uid}/sales-level"),
            json!({"level": "assistant"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let detail = the_entry(&auditor, "user.sales_level", &format!("user:{uid}"), &admin).await;
    assert_eq!(detail, json!({"level": "assistant"}));

    let now = ok_json(admin.get(&format!("/api/v1/users/{uid}")).await).await;
    let r = admin
        .delete(&format!("/api/v1/users/{uid}?version={}", now["version"]))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let detail = the_entry(&auditor, "user.delete", &format!("user:{uid}"), &admin).await;
    assert_eq!(detail, json!({}));
    // One account's whole history under one target.
    let history = ok_json(
        auditor
            .get(&format!("/api/v1/audit?target=user:{uid}"))
            .await,
    )
    .await;
    let mut actions: Vec<&str> = history["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    actions.sort_unstable();
    assert_eq!(
        actions,
        [
            "user.create",
            "user.delete",
            "user.sales_level",
            "user.update"
        ]
    );

    assert!(!whole_log(&auditor).await.contains(password));
    app.cleanup().await;
}

async fn classification_changes_are_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let manager = app.token("mgr1", "sales_manager", Some("华东")).await;
    let auditor = app.token("audit1", "auditor", None).await;
    let c = manager.customer("审计分类测试有限公司", json!({})).await;
    let cid = id_of(&c);
    let path = format!("/api/v1/customers/{cid}/classes/value_tier/override");

    ok_json(
        manager
            .put_json(&path, json!({"class": "战略型", "reason": "年度评审"}))
            .await,
    )
    .await;
    let detail = the_entry(
        &auditor,
        "override.set",
        &format!("customer:{cid}"),
        &manager,
    )
    .await;
    assert_eq!(
        detail,
        json!({"scheme": "value_tier", "class": "战略型", "reason": "年度评审", "expires_on": null})
    );
    ok_json(manager.delete(&path).await).await;
    let detail = the_entry(
        &auditor,
        "override.lift",
        &format!("customer:{cid}"),
        &manager,
    )
    .await;
    assert_eq!(detail, json!({"scheme": "value_tier"}));

    // A new rule version, submitted for approval.
    let v1 = ok_json(admin.get("/api/v1/schemes/value_tier/versions/1").await).await;
    let mut spec = v1["spec"].clone();
    spec["dimensions"][0]["levels"][0]["when"] = json!("annual_purchase >= 60万");
    let draft = ok_json(
        admin
            .post("/api/v1/schemes/value_tier/versions", json!({"spec": spec}))
            .await,
    )
    .await;
    let version = draft["version"].as_i64().expect("version");
    ok_json(
        admin
            .post(
                &format!("/api/v1/schemes/value_tier/versions/{version}/submit"),
                json!({"note": "提高战略型门槛"}),
            )
            .await,
    )
    .await;
    let target = format!("scheme:value_tier:{version}");
    let detail = the_entry(&auditor, "scheme.step", &target, &admin).await;
    assert_eq!(
        detail,
        json!({"step": "submit", "note": "提高战略型门槛", "class_changes": 0})
    );
    app.cleanup().await;
}

async fn merges_and_deletes_of_customers_are_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let auditor = app.token("audit1", "auditor", None).await;
    let a = admin
        .customer("北京星河精密机械有限公司", json!({"notes": "老客户"}))
        .await;
    let b = admin
        .customer("北京星河精密机械(集团)有限公司", json!({}))
        .await;
    let (ia, ib) = (id_of(&a), id_of(&b));

    let r = admin
        .post(
            "/api/v1/merges",
            json!({"survivor_id": ia, "absorbed_id": ib, "survivor_version": a["version"],
                   "absorbed_version": b["version"], "choices": {"name": ib}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let merge = id_of(&r.json().await.expect("json"));
    let detail = the_entry(
        &auditor,
        "customer.merge",
        &format!("customer:{ia}"),
        &admin,
    )
    .await;
    assert_eq!(detail["merge"], merge, "{detail}");
    assert_eq!(detail["absorbed"], b["code"], "{detail}");
    assert_eq!(
        detail["changed"]["name"],
        json!([a["name"], b["name"]]),
        "{detail}"
    );

    ok_json(
        admin
            .post(&format!("/api/v1/merges/{merge}/undo"), json!({}))
            .await,
    )
    .await;
    let detail = the_entry(
        &auditor,
        "customer.merge_undo",
        &format!("customer:{ia}"),
        &admin,
    )
    .await;
    assert_eq!(detail, json!({"merge": merge, "absorbed": b["code"]}));

    let now = ok_json(admin.get(&format!("/api/v1/customers/{ib}")).await).await;
    let r = admin
        .delete(&format!(
            "/api/v1/customers/{ib}?version={}",
            now["version"]
        ))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let detail = the_entry(
        &auditor,
        "customer.delete",
        &format!("customer:{ib}"),
        &admin,
    )
    .await;
    assert_eq!(detail, json!({"code": now["code"], "name": now["name"]}));
    app.cleanup().await;
}

/// Creates, changes (`patch`) and deletes one `kind` record of customer
/// `cid`, checking the three entries; the detail of create, update, delete.
async fn record_lifecycle(
    s: &Session,
    auditor: &Session,
    cid: i64,
    kind: &str,
    create: Value,
    mut patch: Value,
) -> (Value, Value, Value) {
    let r = s
        .post(&format!("/api/v1/customers/{cid}/{kind}s"), create)
        .await;
    let made = ok_json(r).await;
    let id = id_of(&made);
    let target = format!("{kind}:{id}");
    let path = format!("/api/v1/{kind}s/{id}");
    let created = the_entry(auditor, &format!("{kind}.create"), &target, s).await;
    assert_eq!(created["id"], id, "{created}");
    patch["version"] = made["version"].clone();
    let changed = ok_json(s.patch(&path, patch).await).await;
    let updated = the_entry(auditor, &format!("{kind}.update"), &target, s).await;
    let r = s
        .delete(&format!("{path}?version={}", changed["version"]))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "delete {target}");
    let deleted = the_entry(auditor, &format!("{kind}.delete"), &target, s).await;
    (created, updated["changed"].clone(), deleted)
}

async fn record_changes_are_audited_masked(backend: Backend) {
    let app = spawn_app(backend).await;
    let rep = app.token("rep1", "sales_rep", Some("华东")).await;
    let auditor = app.token("audit1", "auditor", None).await;
    let cid = id_of(&rep.customer("审计记录测试有限公司", json!({})).await);
    let today = app.store.today().to_string();

    let (created, changed, deleted) = record_lifecycle(
        &rep,
        &auditor,
        cid,
        "order",
        json!({"ordered_on": today, "amount_fen": 500_000}),
        json!({"amount_fen": 800_000}),
    )
    .await;
    assert_eq!(created["amount_fen"], 500_000, "{created}");
    assert_eq!(changed["amount_fen"], json!([500_000, 800_000]));
    assert_eq!(deleted["amount_fen"], 800_000, "{deleted}");

    // Free text is logged by its length only.
    let summary = "客户抱怨交货延期三天";
    let (created, changed, deleted) = record_lifecycle(
        &rep,
        &auditor,
        cid,
        "interaction",
        json!({"kind": "投诉", "occurred_on": today, "summary": summary, "severity": "high"}),
        json!({"status": "resolved"}),
    )
    .await;
    assert_eq!(created["summary"], "[10 字]", "{created}");
    assert_eq!(changed["status"][1], "resolved", "{changed}");
    assert_eq!(deleted["summary"], "[10 字]", "{deleted}");

    // Personal fields are logged masked, before and after.
    let (created, changed, deleted) = record_lifecycle(
        &rep,
        &auditor,
        cid,
        "contact",
        json!({"name": "李小四", "mobile": MOBILE, "email": EMAIL, "title": "采购经理"}),
        json!({"mobile": NEW_MOBILE}),
    )
    .await;
    assert_eq!(created["mobile"], "138****5678", "{created}");
    assert_eq!(
        changed["mobile"],
        json!(["138****5678", "139****4321"]),
        "{changed}"
    );
    assert_eq!(deleted["name"], "李*四", "{deleted}");
    assert_eq!(deleted["mobile"], "139****4321", "{deleted}");
    let log = whole_log(&auditor).await;
    for secret in [MOBILE, NEW_MOBILE, EMAIL, "李小四", summary] {
        assert!(!log.contains(secret), "{secret} in the audit log");
    }
    app.cleanup().await;
}

async fn task_work_is_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let manager = app.token("mgr_east", "sales_manager", Some("华东")).await;
    let rep = app.token("rep_east", "sales_rep", Some("华东")).await;
    let rep2 = app.token("rep_east2", "sales_rep", Some("华东")).await;
    let auditor = app.token("audit1", "auditor", None).await;
    let today = app.store.today();
    let c = rep.customer("华东审计任务有限公司", json!({})).await;

    // Strategies: saved, then deleted.
    let strategy = json!({"scheme_key": "value_tier", "class_name": "优化型", "cadence": "每季度促销信息1次",
        "sla_hours": 8, "resources": "标准服务", "goal": "保持合作、降低服务成本", "goal_metric": "retention",
        "goal_target": 80, "owner_level": "assistant"});
    let saved = ok_json(
        admin
            .send_json(Method::PUT, "/api/v1/strategies", strategy)
            .await,
    )
    .await;
    let sid = id_of(&saved);
    let target = format!("strategy:{sid}");
    let detail = the_entry(&auditor, "strategy.save", &target, &admin).await;
    assert_eq!(detail["class_name"], "优化型", "{detail}");
    assert_eq!(
        detail["cadence"],
        json!([{"action": "message", "per": "quarter", "times": 1}]),
        "the cadence as parsed: {detail}"
    );
    assert_eq!(detail["sla_hours"], 8, "{detail}");
    let r = admin.delete(&format!("/api/v1/strategies/{sid}")).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        the_entry(&auditor, "strategy.delete", &target, &admin).await,
        json!({})
    );

    // Generating a quarter ahead.
    let quarter = Period::quarter_of(today).next().label();
    let g = ok_json(
        admin
            .post("/api/v1/tasks/generate", json!({"period": quarter}))
            .await,
    )
    .await;
    let target = format!("period:{quarter}");
    let detail = the_entry(&auditor, "tasks.generate", &target, &admin).await;
    assert_eq!(
        detail,
        json!({"planned": g["planned"], "created": g["created"]})
    );

    // A task by hand, then closed: titles and summaries by their length.
    let title = "年度框架协议洽谈";
    let r = manager
        .post(
            "/api/v1/tasks",
            json!({"customer": c["code"], "kind": "拜访", "title": title,
                   "due_on": today.to_string(), "owner_id": rep.user_id}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let task = id_of(&r.json().await.expect("json"));
    let target = format!("task:{task}");
    let detail = the_entry(&auditor, "task.create", &target, &manager).await;
    assert_eq!(
        detail,
        json!({"customer": c["code"], "title": "[8 字]", "owner_id": rep.user_id})
    );
    let closed = ok_json(
        rep.post(
            &format!("/api/v1/tasks/{task}/close"),
            json!({"summary": "客户同意续约"}),
        )
        .await,
    )
    .await;
    let detail = the_entry(&auditor, "task.close", &target, &rep).await;
    assert_eq!(
        detail,
        json!({"status": closed["status"], "summary": "[6 字]"})
    );
    assert_ne!(closed["status"], "open");

    // Tasks for a segment.
    let made = ok_json(
        manager
            .post(
                "/api/v1/tasks/segment",
                json!({"segment": "华东", "kind": "call", "title": "年终回访", "due_on": today.to_string()}),
            )
            .await,
    )
    .await;
    assert_eq!(made["made"], 1, "{made}");
    let entries = entries_of(&auditor, "task.create_for_segment").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(e["actor_id"], manager.user_id);
    assert!(
        e["target"].as_str().unwrap_or("").starts_with("segment:"),
        "{e}"
    );
    assert_eq!(
        e["detail"],
        json!({"customers": made["customers"], "made": 1, "title": "[4 字]"})
    );

    // The rep leaves: work and customers go to rep2.
    let moved = ok_json(
        manager
            .post(
                "/api/v1/tasks/reassign",
                json!({"from_user": rep.user_id, "to_user": rep2.user_id, "customers": true}),
            )
            .await,
    )
    .await;
    assert_eq!(moved["customers"], 1, "{moved}");
    let target = format!("user:{}", rep.user_id);
    let detail = the_entry(&auditor, "tasks.reassign", &target, &manager).await;
    assert_eq!(
        detail,
        json!({"to": rep2.user_id, "tasks": moved["tasks"], "customers": 1})
    );
    assert!(!whole_log(&auditor).await.contains(title));
    app.cleanup().await;
}

async fn imports_are_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.login("imp_admin", "admin", None).await;
    let auditor = app.token("audit1", "auditor", None).await;
    let csv = "客户编号,客户名称,所属行业,合作起始时间\n\
               C2030001,审计导入一有限公司,制造业,2021-03-15\n\
               C2030002,审计导入二有限公司,零售业,2022-01-01\n";
    let r = upload_import(&admin, "customers", "客户.csv", csv.as_bytes().to_vec()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = id_of(&r.json().await.expect("report"));
    let applied = ok_json(
        admin
            .post(
                &format!("/api/v1/imports/{id}/apply"),
                json!({"on_invalid": "abort"}),
            )
            .await,
    )
    .await;
    assert_eq!(applied["status"], "applied", "{applied}");
    let target = format!("import:{id}");
    let detail = the_entry(&auditor, "import.apply", &target, &admin).await;
    assert_eq!(detail["kind"], "customers", "{detail}");
    assert_eq!(detail["file"], "客户.csv", "{detail}");
    assert_eq!(detail["counts"], applied["counts"], "{detail}");

    let undone = ok_json(
        admin
            .post(&format!("/api/v1/imports/{id}/undo"), json!({}))
            .await,
    )
    .await;
    let detail = the_entry(&auditor, "import.undo", &target, &admin).await;
    assert_eq!(
        detail,
        json!({"deleted": undone["deleted"], "restored": undone["restored"]})
    );
    assert_eq!(detail["deleted"], 2, "{detail}");
    app.cleanup().await;
}

/// A web form asking for a company, a contact and a mobile.
async fn make_form(admin: &Session, slug: &str) -> Value {
    let r = admin
        .post(
            "/api/v1/intake-forms",
            json!({"slug": slug, "title": "咨询", "fields": ["contact.mobile"],
                   "purpose": "用于就您咨询的产品与您联系，保存两年。"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.expect("form")
}

/// Submits a lead with a mobile through form `slug`: the pending leads.
async fn lead(app: &TestApp, reviewer: &Session, slug: &str, company: &str) -> Vec<Value> {
    let r = app
        .submit_form(
            slug,
            json!({"name": company, "contact.name": "赵小六", "contact.mobile": MOBILE}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let leads = ok_json(reviewer.get("/api/v1/leads").await).await;
    leads["leads"].as_array().cloned().unwrap_or_default()
}

async fn forms_and_leads_are_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let manager = app.token("mgr_east", "sales_manager", Some("华东")).await;
    let auditor = app.token("audit1", "auditor", None).await;

    let form = make_form(&admin, "audit-expo").await;
    let detail = the_entry(&auditor, "form.create", "form:audit-expo", &admin).await;
    assert_eq!(detail, json!({"purpose_version": 1}));
    let mut changed = json!({"slug": "audit-expo", "title": "咨询", "fields": ["contact.mobile"],
        "purpose": "用于联系您，并在您同意时发送新品资讯，保存两年。", "version": form["version"]});
    ok_json(
        admin
            .send_json(
                Method::PUT,
                &format!("/api/v1/intake-forms/{}", form["id"]),
                changed.take(),
            )
            .await,
    )
    .await;
    let detail = the_entry(&auditor, "form.update", "form:audit-expo", &admin).await;
    assert_eq!(detail, json!({"purpose_version": 2, "active": true}));

    lead(&app, &manager, "audit-expo", "审计线索一有限公司").await;
    let leads = lead(&app, &manager, "audit-expo", "审计线索二有限公司").await;
    assert_eq!(leads.len(), 2);
    let (first, second) = (id_of(&leads[0]), id_of(&leads[1]));
    let accepted = ok_json(
        manager
            .post(&format!("/api/v1/leads/{first}/accept"), json!({}))
            .await,
    )
    .await;
    let customer = ok_json(
        manager
            .get(&format!("/api/v1/customers/{}", accepted["customer_id"]))
            .await,
    )
    .await;
    let target = format!("lead:{first}");
    let detail = the_entry(&auditor, "lead.accept", &target, &manager).await;
    assert_eq!(
        detail,
        json!({"customer": customer["code"], "joined": false})
    );
    ok_json(
        manager
            .post(&format!("/api/v1/leads/{second}/reject"), json!({}))
            .await,
    )
    .await;
    let target = format!("lead:{second}");
    assert_eq!(
        the_entry(&auditor, "lead.reject", &target, &manager).await,
        json!({})
    );
    let log = whole_log(&auditor).await;
    for secret in [MOBILE, "赵小六"] {
        assert!(!log.contains(secret), "{secret} in the audit log");
    }
    app.cleanup().await;
}

async fn retention_calendar_and_jobs_are_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let auditor = app.token("audit1", "auditor", None).await;

    ok_json(
        admin
            .put_json("/api/v1/privacy/retention", json!({"rejected_leads": 1}))
            .await,
    )
    .await;
    let detail = the_entry(&auditor, "retention.set", "retention", &admin).await;
    assert_eq!(detail["after"], json!([["rejected_leads", 1]]), "{detail}");
    assert!(
        detail["before"].to_string().contains("180"),
        "the old rejected_leads days: {detail}"
    );

    let text = "2030-10-01 国庆节\n2030-10-02 国庆节\n";
    ok_json(
        admin
            .send_json(Method::PUT, "/api/v1/calendar", json!({ "text": text }))
            .await,
    )
    .await;
    let detail = the_entry(&auditor, "calendar.set", "calendar", &admin).await;
    assert_eq!(detail, json!({"days": 2}));

    // A rejected lead past its time: the job run by hand deletes it.
    make_form(&admin, "audit-retention").await;
    let leads = lead(&app, &admin, "audit-retention", "审计保留期有限公司").await;
    ok_json(
        admin
            .post(
                &format!("/api/v1/leads/{}/reject", leads[0]["id"]),
                json!({}),
            )
            .await,
    )
    .await;
    use kehu_store::db::{Arg, Exec};
    app.store
        .db
        .clone()
        .execute(
            "UPDATE leads SET decided_at = $1 WHERE status = 'rejected'",
            vec![Arg::from(chrono::Utc::now() - chrono::Duration::days(2))],
        )
        .await
        .expect("age the lead");
    let run = ok_json(admin.post("/api/v1/jobs/retention/run", json!({})).await).await;
    assert_eq!(run["summary"]["rejected_leads"], 1, "{run}");
    let detail = the_entry(&auditor, "job.run", "job:retention", &admin).await;
    assert_eq!(detail, json!({"ran": run["ran"]}));
    let applied = entries_of(&auditor, "retention.apply").await;
    assert_eq!(applied.len(), 1, "{applied:?}");
    assert_eq!(applied[0]["target"], "retention");
    assert!(applied[0]["actor_id"].is_null(), "the job, not a user");
    let deleted = applied[0]["detail"].as_array().expect("per kind");
    assert!(
        deleted.contains(&json!(["rejected_leads", 1])),
        "{deleted:?}"
    );
    app.cleanup().await;
}
