//! Personal fields by role over HTTP: masked by default, hidden where the
//! role says, revealed in clear only on request and only for roles allowed
//! to (each reveal audited without the values), changed only with the edit
//! right, the rights editable by admins, personal custom fields alike.

use crate::both_backends;
use crate::helpers::{error_fields, first_error, ok_json, problem, spawn_app, Session};
use kehu_store::Backend;
use reqwest::StatusCode;
use serde_json::{json, Value};

both_backends!(
    personal_fields_by_role,
    data_subject_requests,
    consents_recorded_by_hand
);

const MOBILE: &str = "13812345678";
const EMAIL: &str = "zhang.xiaosan@example.com";
const ID_NUMBER: &str = "11010519491231002X";

async fn audit_of(auditor: &Session, action: &str) -> Vec<Value> {
    let v = ok_json(auditor.get(&format!("/api/v1/audit?action={action}")).await).await;
    v["entries"].as_array().cloned().unwrap_or_default()
}

async fn personal_fields_by_role(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let rep = app.token("rep1", "sales_rep", Some("华东一组")).await;
    let service = app.token("kefu1", "service", None).await;
    let marketing = app.token("mkt1", "marketing", None).await;
    let auditor = app.token("audit1", "auditor", None).await;

    let c = rep.customer("隐私测试精工有限公司", json!({})).await;
    let cid = c["id"].as_i64().expect("id");
    let created = ok_json(
        rep.post(
            &format!("/api/v1/customers/{cid}/contacts"),
            json!({"name": "张小三", "mobile": MOBILE, "landline": "010-62345678",
                   "email": EMAIL, "id_number": ID_NUMBER, "title": "采购经理"}),
        )
        .await,
    )
    .await;
    let contact = created["id"].as_i64().expect("contact id");
    // Even the writer gets it back masked.
    assert_eq!(created["mobile"], "138****5678");
    let path = format!("/api/v1/contacts/{contact}");

    // Masked by default, for every role that reads customers.
    for s in [&rep, &service, &marketing, &admin] {
        let v = ok_json(s.get(&path).await).await;
        assert_eq!(v["name"], "张*三", "{}", s.user_id);
        assert_eq!(v["mobile"], "138****5678");
        assert_eq!(v["landline"], "010-****5678");
        assert_eq!(v["email"], "z***@example.com");
        assert_eq!(v["title"], "采购经理", "business fields stay in clear");
    }
    // The ID number: masked for service, hidden from marketing.
    assert_eq!(
        ok_json(service.get(&path).await).await["id_number"],
        "110105********002X"
    );
    assert!(ok_json(marketing.get(&path).await).await["id_number"].is_null());

    // Reveal: in clear for roles with the right …
    let clear = ok_json(service.get(&format!("{path}?reveal=true")).await).await;
    assert_eq!(clear["mobile"], MOBILE);
    assert_eq!(clear["email"], EMAIL);
    assert_eq!(
        clear["id_number"], "110105********002X",
        "service may reveal phones, not the ID number"
    );
    let list = ok_json(
        rep.get(&format!("/api/v1/contacts?customer_id={cid}&reveal=true"))
            .await,
    )
    .await;
    assert_eq!(list["items"][0]["id_number"], ID_NUMBER);
    // … refused for marketing, which sees contact data only masked.
    problem(
        marketing.get(&format!("{path}?reveal=true")).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // Filtering on a field one may not see in clear would test guesses.
    problem(
        marketing
            .get("/api/v1/contacts?name=%E5%BC%A0%E5%B0%8F%E4%B8%89")
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        marketing.get("/api/v1/contacts?q=%E5%BC%A0").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let found = ok_json(
        rep.get("/api/v1/contacts?name=%E5%BC%A0%E5%B0%8F%E4%B8%89")
            .await,
    )
    .await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1));

    // Every reveal is in the audit log: who, which record, which fields — never a value.
    let reveals = audit_of(&auditor, "contact.reveal").await;
    assert_eq!(reveals.len(), 2, "{reveals:?}");
    let by_service = reveals
        .iter()
        .find(|e| e["actor_id"] == service.user_id)
        .expect("service's reveal");
    assert_eq!(by_service["target"], format!("contact:{contact}"));
    let fields = by_service["detail"]["fields"].to_string();
    assert!(fields.contains("contact.mobile") && !fields.contains("contact.id_number"));
    let whole_log = ok_json(auditor.get("/api/v1/audit?limit=1000").await)
        .await
        .to_string();
    for secret in [MOBILE, EMAIL, ID_NUMBER, "张小三"] {
        assert!(
            !whole_log.contains(secret),
            "{secret} in the audit log: {whole_log}"
        );
    }
    // The contact's creation is audited, masked.
    let creation = audit_of(&auditor, "contact.create").await;
    assert_eq!(creation[0]["detail"]["mobile"], "138****5678");

    // Field rights are an admin's to change; a rep may then no longer edit mobiles.
    let rights = ok_json(admin.get("/api/v1/roles").await).await;
    let rep_role = rights
        .as_array()
        .expect("roles")
        .iter()
        .find(|r| r["key"] == "sales_rep")
        .expect("sales_rep")
        .clone();
    assert_eq!(rep_role["field_rights"]["contact.mobile"], "edit");
    let mut new_rights = rep_role["field_rights"].clone();
    new_rights["contact.mobile"] = json!("clear");
    new_rights["contact.email"] = json!("hidden");
    problem(
        rep.put_json("/api/v1/roles/sales_rep/field-rights", new_rights.clone())
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let bad = problem(
        admin
            .put_json(
                "/api/v1/roles/sales_rep/field-rights",
                json!({"contact.mobile": "sometimes", "contact.shoe_size": "clear"}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&bad).0, "contact.mobile");
    ok_json(
        admin
            .put_json("/api/v1/roles/sales_rep/field-rights", new_rights)
            .await,
    )
    .await;
    let v = ok_json(rep.get(&path).await).await;
    assert!(v["email"].is_null(), "hidden now: {v}");
    let version = v["version"].clone();
    let refused = problem(
        rep.patch(&path, json!({"mobile": "13900001111", "version": version}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&refused),
        ("mobile".to_string(), "not_editable".to_string())
    );
    // Other fields still change, and the hidden e-mail is kept as it was.
    ok_json(
        rep.patch(&path, json!({"title": "采购总监", "version": version}))
            .await,
    )
    .await;
    let after = ok_json(admin.get(&format!("{path}?reveal=true")).await).await;
    assert_eq!(after["title"], "采购总监");
    assert_eq!(after["mobile"], MOBILE);
    assert_eq!(after["email"], EMAIL);
    let changes = audit_of(&auditor, "role.field_rights").await;
    assert_eq!(changes[0]["target"], "role:sales_rep");
    assert_eq!(changes[0]["detail"]["after"]["contact.email"], "hidden");

    // A custom field marked personal is masked and guarded the same way.
    let r = admin
        .post(
            "/api/v1/custom-fields",
            json!({"key": "bank_card", "label": "银行卡号", "group": "basic", "kind": "text",
                   "rule": {"mask": {"first": 0, "last": 4}}}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let bad_mask = problem(
        admin
            .post(
                "/api/v1/custom-fields",
                json!({"key": "secret_code", "label": "密码", "group": "basic", "kind": "text",
                       "rule": {"mask": {"first": 9, "last": 0}}}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&bad_mask).0, "rule.mask");
    // A field a published scheme reads as an indicator cannot become
    // personal (sealed, the scheme could no longer read it).
    let fields = ok_json(admin.get("/api/v1/custom-fields").await).await;
    let need = fields
        .as_array()
        .and_then(|f| f.iter().find(|f| f["key"] == "need_type"))
        .cloned()
        .expect("the need_type preset field");
    let used = problem(
        admin
            .patch(
                &format!("/api/v1/custom-fields/{}", need["id"]),
                json!({"rule": {"mask": {"first": 1, "last": 0}}, "version": need["version"]}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&used),
        ("rule.mask".to_string(), "used_by_scheme".to_string()),
        "{used}"
    );
    assert!(used.to_string().contains("need_type"), "{used}");
    let unchanged = ok_json(
        admin
            .get(&format!("/api/v1/custom-fields/{}", need["id"]))
            .await,
    )
    .await;
    assert_eq!(unchanged["version"], need["version"]);
    let c = ok_json(rep.get(&format!("/api/v1/customers/{cid}")).await).await;
    let r = rep
        .patch(
            &format!("/api/v1/customers/{cid}"),
            json!({"custom_fields": {"bank_card": "6222020200112233"}, "version": c["version"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let masked = ok_json(r).await;
    assert_eq!(masked["custom_fields"]["bank_card"], "************2233");
    let seen = ok_json(marketing.get(&format!("/api/v1/customers/{cid}")).await).await;
    assert_eq!(seen["custom_fields"]["bank_card"], "************2233");
    let listed = ok_json(marketing.get("/api/v1/customers").await).await;
    assert_eq!(
        listed["items"][0]["custom_fields"]["bank_card"],
        "************2233"
    );
    problem(
        marketing
            .get("/api/v1/customers?cf.bank_card=6222020200112233")
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // Encrypted at rest: not even a clear-rights user filters on it.
    problem(
        rep.get("/api/v1/customers?cf.bank_card=6222020200112233")
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let raw = stored_custom_fields(&app.store, cid).await;
    assert!(raw.contains("\"bank_card\":\"enc1:"), "{raw}");
    assert!(!raw.contains("6222") && !raw.contains("2233"), "{raw}");
    let clear = ok_json(
        rep.get(&format!("/api/v1/customers/{cid}?reveal=true"))
            .await,
    )
    .await;
    assert_eq!(clear["custom_fields"]["bank_card"], "6222020200112233");
    let reveals = audit_of(&auditor, "customer.reveal").await;
    assert_eq!(reveals.len(), 1);
    assert_eq!(reveals[0]["detail"]["fields"], json!(["cf.bank_card"]));
    let updates = Value::from(audit_of(&auditor, "customer.update").await).to_string();
    assert!(
        updates.contains("************2233") && !updates.contains("6222020200112233"),
        "{updates}"
    );

    app.cleanup().await;
}

/// A person's requests (PIPL Art. 44–47): found by their mobile (POST, no
/// personal data in URLs), their data exported in clear, a consent
/// withdrawn (marketing then leaves the customer out), the person erased
/// everywhere they were kept in clear while the company stays; retention
/// periods checked, saved and enforced by the daily job.
async fn data_subject_requests(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("dpo", "admin", None).await;
    let rep = app.token("rep2", "sales_rep", Some("华东一组")).await;
    let marketing = app.token("mkt2", "marketing", None).await;
    let auditor = app.token("audit2", "auditor", None).await;

    // The person came in through a web form and was accepted as a customer.
    ok_json(
        admin
            .post(
                "/api/v1/intake-forms",
                json!({"slug": "dsr", "title": "咨询", "fields": ["contact.mobile", "contact.email"],
                       "purpose": "用于就您的咨询与您联系。", "owner_id": admin.user_id}),
            )
            .await,
    )
    .await;
    let submit = |values: Value| app.submit_form("dsr", values);
    let r = submit(
        json!({"name": "杭州隐私科技有限公司", "contact.name": "李小红",
                          "contact.mobile": "139 0000 1111", "contact.email": "Li.XH@Example.com"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let cid = admin.accept_oldest_lead().await;
    let other = rep.customer("无关客户有限公司", json!({})).await;
    let other_id = other["id"].as_i64().expect("id");
    ok_json(
        rep.post(
            &format!("/api/v1/customers/{other_id}/contacts"),
            json!({"name": "王五", "mobile": "13700002222"}),
        )
        .await,
    )
    .await;

    // Finding the person: admins only, by value, checked like any input.
    problem(
        rep.post("/api/v1/privacy/people", json!({"mobile": "13900001111"}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let p = problem(
        admin.post("/api/v1/privacy/people", json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "name");
    let p = problem(
        admin
            .post("/api/v1/privacy/people", json!({"mobile": "12345"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p), ("mobile".into(), "mobile_format".into()));
    let found = ok_json(
        admin
            .post(
                "/api/v1/privacy/people",
                json!({"mobile": "+86 139-0000-1111"}),
            )
            .await,
    )
    .await;
    let found = found.as_array().expect("list").clone();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["customer_id"], cid);
    assert_eq!(found[0]["name"], "李*红", "masked in the list");
    let contact = found[0]["contact_id"].as_i64().expect("contact");

    // Their copy: everything, in clear, as a file.
    let r = admin
        .get(&format!("/api/v1/contacts/{contact}/personal-data"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("attachment")));
    let copy: Value = r.json().await.expect("json");
    assert_eq!(copy["contact"]["mobile"], "13900001111");
    assert_eq!(copy["contact"]["email"], "li.xh@example.com");
    assert_eq!(copy["consents"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        copy["web_form_submissions"].as_array().map(Vec::len),
        Some(1)
    );
    problem(
        rep.get(&format!("/api/v1/contacts/{contact}/personal-data"))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // Consent withdrawn: marketing leaves the customer out from then on.
    let consents = ok_json(
        admin
            .get(&format!("/api/v1/customers/{cid}/consents"))
            .await,
    )
    .await;
    let consent = consents[0]["id"].as_i64().expect("consent");
    assert!(consents[0]["withdrawn_at"].is_null());
    let today = app.store.today().to_string();
    let campaign = ok_json(
        marketing
            .post(
                "/api/v1/campaigns",
                json!({"name": "冬季推广", "channel": "online", "starts_on": today, "ends_on": today}),
            )
            .await,
    )
    .await;
    let touch = |ids: Value| {
        let path = format!("/api/v1/campaigns/{}/touches", campaign["id"]);
        let m = &marketing;
        async move { ok_json(m.post(&path, json!({ "customer_ids": ids })).await).await }
    };
    let t = touch(json!([cid])).await;
    assert_eq!(
        (t["customers"].clone(), t["consent_withdrawn"].clone()),
        (json!(1), json!(0))
    );
    problem(
        marketing
            .post(&format!("/api/v1/consents/{consent}/withdraw"), json!({}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let w = ok_json(
        admin
            .post(&format!("/api/v1/consents/{consent}/withdraw"), json!({}))
            .await,
    )
    .await;
    assert!(w["withdrawn_at"].is_string());
    let t = touch(json!([cid, other_id])).await;
    assert_eq!(
        (t["customers"].clone(), t["consent_withdrawn"].clone()),
        (json!(1), json!(1)),
        "{t}"
    );

    // What people wrote about the person: a call's summary, a task.
    let code = ok_json(admin.get(&format!("/api/v1/customers/{cid}")).await).await["code"].clone();
    let call = ok_json(
        admin
            .post(
                &format!("/api/v1/customers/{cid}/interactions"),
                json!({"kind": "call", "occurred_on": today, "summary": "李小红来电（139-0000-1111），要报价；王五旁听"}),
            )
            .await,
    )
    .await;
    let task = ok_json(
        admin
            .post(
                "/api/v1/tasks",
                json!({"customer": code, "kind": "回访", "title": "给李小红发报价",
                       "detail": "邮件 li.xh@example.com 或 +86 13900001111", "due_on": today, "owner_id": admin.user_id}),
            )
            .await,
    )
    .await;

    // Erasure: a reason is required; then the person is gone, the company stays.
    let p = problem(
        admin
            .post(&format!("/api/v1/contacts/{contact}/erase"), json!({}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "reason");
    let erased = ok_json(
        admin
            .post(
                &format!("/api/v1/contacts/{contact}/erase"),
                json!({"reason": "本人来电要求删除"}),
            )
            .await,
    )
    .await;
    assert_eq!(erased["contact"], true);
    assert_eq!(erased["leads"], 1);
    assert_eq!(
        erased["free_text"],
        json!({"interactions": 1, "tasks": 1}),
        "{erased}"
    );
    let call = ok_json(
        admin
            .get(&format!("/api/v1/interactions/{}", call["id"]))
            .await,
    )
    .await;
    assert_eq!(
        call["summary"], "（已删除）来电(（已删除）),要报价;王五旁听",
        "the person's name and phone gone, the rest kept (as stored: punctuation standardized)"
    );
    let task = ok_json(admin.get(&format!("/api/v1/tasks/{}", task["id"])).await).await;
    assert_eq!(
        (task["title"].clone(), task["detail"].clone()),
        (
            json!("给（已删除）发报价"),
            json!("邮件 （已删除） 或 （已删除）")
        )
    );
    let after = ok_json(
        admin
            .get(&format!("/api/v1/contacts/{contact}?reveal=true"))
            .await,
    )
    .await;
    assert_eq!(after["name"], "（已删除）");
    assert!(after["mobile"].is_null() && after["email"].is_null());
    let lead_now = ok_json(admin.get("/api/v1/leads?status=accepted").await).await;
    let kept = lead_now.to_string();
    assert!(
        !kept.contains("1111") && !kept.contains("Li.XH") && !kept.contains("李小红"),
        "{kept}"
    );
    assert!(kept.contains("杭州隐私科技有限公司"), "the company stays");
    ok_json(admin.get(&format!("/api/v1/customers/{cid}")).await).await;
    let untouched = ok_json(
        rep.get(&format!(
            "/api/v1/contacts?customer_id={other_id}&reveal=true"
        ))
        .await,
    )
    .await;
    assert_eq!(untouched["items"][0]["mobile"], "13700002222");
    let none = ok_json(
        admin
            .post("/api/v1/privacy/people", json!({"mobile": "13900001111"}))
            .await,
    )
    .await;
    assert_eq!(none, json!([]));

    // Every step audited, never with the person's values.
    for action in [
        "privacy.search",
        "contact.personal_data_export",
        "consent.withdraw",
        "contact.erase",
    ] {
        assert!(!audit_of(&auditor, action).await.is_empty(), "{action}");
    }
    let erase_entry = &audit_of(&auditor, "contact.erase").await[0];
    assert_eq!(erase_entry["detail"]["reason"], "本人来电要求删除");
    let log = ok_json(auditor.get("/api/v1/audit?limit=1000").await)
        .await
        .to_string();
    for secret in ["13900001111", "li.xh@example.com", "李小红"] {
        assert!(!log.contains(secret), "{secret} in the audit log");
    }

    // Retention: checked (nothing saved on an error), saved, enforced.
    let kinds = ok_json(admin.get("/api/v1/privacy/retention").await).await;
    assert_eq!(kinds.as_array().map(Vec::len), Some(6));
    let p = problem(
        admin
            .put_json(
                "/api/v1/privacy/retention",
                json!({"rejected_leads": 30, "bogus": 3, "deliveries": 0}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields = error_fields(&p);
    assert_eq!(fields, ["bogus", "deliveries"]);
    let days_of = |list: &Value, kind: &str| {
        list.as_array()
            .and_then(|l| l.iter().find(|k| k["kind"] == kind))
            .map(|k| k["days"].clone())
    };
    let unchanged = ok_json(admin.get("/api/v1/privacy/retention").await).await;
    assert_eq!(days_of(&unchanged, "rejected_leads"), Some(json!(180)));
    let set = ok_json(
        admin
            .put_json("/api/v1/privacy/retention", json!({"rejected_leads": 1}))
            .await,
    )
    .await;
    assert_eq!(days_of(&set, "rejected_leads"), Some(json!(1)));
    let r = submit(json!({"name": "拒绝测试有限公司", "contact.name": "赵六", "contact.mobile": "13600003333"})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let pending = ok_json(admin.get("/api/v1/leads").await).await;
    let rejected = pending["leads"][0]["id"].clone();
    ok_json(
        admin
            .post(&format!("/api/v1/leads/{rejected}/reject"), json!({}))
            .await,
    )
    .await;
    use kehu_store::db::Exec;
    app.store
        .db
        .clone()
        .execute(
            "UPDATE leads SET decided_at = $1 WHERE status = 'rejected'",
            vec![kehu_store::db::Arg::from(
                chrono::Utc::now() - chrono::Duration::days(2),
            )],
        )
        .await
        .expect("age the lead");
    let run = ok_json(admin.post("/api/v1/jobs/retention/run", json!({})).await).await;
    assert_eq!(run["summary"]["rejected_leads"], 1, "{run}");
    let left = ok_json(admin.get("/api/v1/leads?status=rejected").await).await;
    assert_eq!(left["leads"].as_array().map(Vec::len), Some(0));

    app.cleanup().await;
}

/// A customer's `custom_fields` as the database holds them.
async fn stored_custom_fields(store: &kehu_store::Store, id: i64) -> String {
    use kehu_store::db::{Exec, RowGet};
    store
        .db
        .clone()
        .fetch_one(
            "SELECT custom_fields FROM customers WHERE id = $1",
            vec![id.into()],
            |r: &dyn RowGet| r.json("custom_fields"),
        )
        .await
        .expect("custom fields")
        .to_string()
}

/// A consent given on the phone or on paper is recorded by whoever may
/// update the customer (API and page), checked field by field, listed,
/// audited without its words, and withdrawn like a web form's.
async fn consents_recorded_by_hand(backend: Backend) {
    let app = spawn_app(backend).await;
    // Signed in: the same session posts JSON and the page's form.
    let rep = app.login("rep1", "sales_rep", Some("华东一组")).await;
    let other_rep = app.token("rep9", "sales_rep", Some("华南一组")).await;
    let auditor = app.token("audit1", "auditor", None).await;
    let cid = rep.customer("同意测试有限公司", json!({})).await["id"]
        .as_i64()
        .expect("id");
    let other = rep.customer("别家有限公司", json!({})).await["id"]
        .as_i64()
        .expect("id");
    let contact = ok_json(
        rep.post(
            &format!("/api/v1/customers/{cid}/contacts"),
            json!({"name": "赵六", "mobile": "13600003333"}),
        )
        .await,
    )
    .await["id"]
        .as_i64()
        .expect("contact");
    let stranger = ok_json(
        rep.post(
            &format!("/api/v1/customers/{other}/contacts"),
            json!({"name": "钱七"}),
        )
        .await,
    )
    .await["id"]
        .as_i64()
        .expect("contact");
    let path = format!("/api/v1/customers/{cid}/consents");

    let r = rep
        .post(&path, json!({"contact_id": contact, "purpose": "用于产品推荐与回访。", "purpose_version": 2, "channel": "phone"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let given: Value = r.json().await.expect("json");
    assert_eq!(
        (
            given["channel"].clone(),
            given["purpose_version"].clone(),
            given["contact_id"].clone()
        ),
        (json!("phone"), json!(2), json!(contact))
    );
    assert!(given["withdrawn_at"].is_null());

    // Bad input: each refused naming its field; nothing stored.
    let today = app.store.today();
    let tomorrow = (today + chrono::Duration::days(1)).to_string();
    for (body, field, code) in [
        (json!({"channel": "phone"}), "purpose", "required"),
        (
            json!({"purpose": "x", "channel": "fax"}),
            "channel",
            "unknown_option",
        ),
        (json!({"purpose": "x"}), "channel", "required"),
        (
            json!({"purpose": "x", "channel": "paper", "purpose_version": 0}),
            "purpose_version",
            "out_of_range",
        ),
        (
            json!({"purpose": "x", "channel": "paper", "given_on": tomorrow}),
            "given_on",
            "invalid",
        ),
        (
            json!({"purpose": "x", "channel": "paper", "contact_id": stranger}),
            "contact_id",
            "invalid",
        ),
    ] {
        let p = problem(
            rep.post(&path, body.clone()).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(
            first_error(&p),
            (field.to_string(), code.to_string()),
            "{body}: {p}"
        );
    }
    // Someone who cannot see the customer gets 404; nothing leaks.
    problem(
        other_rep
            .post(&path, json!({"purpose": "x", "channel": "paper"}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // From the customer's page: a paper consent for the customer as a whole, an earlier day.
    let page = &rep;
    let yesterday = (today - chrono::Duration::days(1)).to_string();
    let r = page
        .client
        .post(format!("{}/customers/{cid}/consents", page.base))
        .form(&[
            ("csrf_token", page.csrf.clone().unwrap_or_default().as_str()),
            ("contact_id", ""),
            ("channel", "paper"),
            ("purpose_version", "1"),
            ("given_on", yesterday.as_str()),
            ("purpose", "用于寄送纸质资料。"),
        ])
        .send()
        .await
        .expect("post");
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );
    let list = ok_json(rep.get(&path).await).await;
    let list = list.as_array().expect("list").clone();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["channel"], "paper");
    assert!(list[0]["contact_id"].is_null());
    // Yesterday's start in China, in UTC.
    let start = format!("{}T16:00:00", today - chrono::Duration::days(2));
    assert!(
        list[0]["given_at"]
            .as_str()
            .unwrap_or("")
            .starts_with(&start),
        "{}",
        list[0]
    );
    let html = page
        .get(&format!("/customers/{cid}"))
        .await
        .text()
        .await
        .expect("html");
    assert!(
        html.contains("用于寄送纸质资料") && html.contains("record-consent"),
        "the page lists it and offers the form"
    );
    // A bad form comes back on the customer's page: each error beside its
    // field, what was typed kept, nothing recorded.
    let tomorrow = (today + chrono::Duration::days(1)).to_string();
    let post_form = |version: &'static str, given_on: String| {
        let page = &rep;
        async move {
            page.client
                .post(format!("{}/customers/{cid}/consents", page.base))
                .form(&[
                    ("csrf_token", page.csrf.clone().unwrap_or_default().as_str()),
                    ("contact_id", ""),
                    ("channel", "paper"),
                    ("purpose_version", version),
                    ("given_on", given_on.as_str()),
                    ("purpose", "重新发送的资料。"),
                ])
                .send()
                .await
                .expect("post")
        }
    };
    let r = post_form("1", tomorrow).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.expect("html");
    assert!(
        html.contains(r#"id="err-consent-given_on""#)
            && html.contains("重新发送的资料")
            && html.contains(r#"<details id="record-consent" open>"#),
        "{html}"
    );
    let html = post_form("一", today.to_string())
        .await
        .text()
        .await
        .expect("html");
    assert!(
        html.contains(r#"id="err-consent-purpose_version""#),
        "{html}"
    );
    assert_eq!(
        ok_json(rep.get(&path).await).await.as_array().map(Vec::len),
        Some(2),
        "nothing recorded"
    );

    // Withdrawn like any other; audited without the purpose's words.
    let w = ok_json(
        rep.post(
            &format!("/api/v1/consents/{}/withdraw", given["id"]),
            json!({}),
        )
        .await,
    )
    .await;
    assert!(w["withdrawn_at"].is_string());
    let recorded = audit_of(&auditor, "consent.record").await;
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    assert!(!Value::Array(recorded).to_string().contains("产品推荐"));
    app.cleanup().await;
}
