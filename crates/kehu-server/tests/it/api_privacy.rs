//! Personal fields by role over HTTP: masked by default, hidden where the
//! role says, revealed in clear only on request and only for roles allowed
//! to (each reveal audited without the values), changed only with the edit
//! right, the rights editable by admins, personal custom fields alike.

use crate::both_backends;
use crate::helpers::{first_error, ok_json, problem, spawn_app, Session};
use kehu_store::Backend;
use reqwest::StatusCode;
use serde_json::{json, Value};

both_backends!(personal_fields_by_role);

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
