//! Web-form intake through the API: defining forms (checked fields, a new
//! purpose version when the text changes), public submissions (consent,
//! standardization, a way back, rate limits), and reviewing the leads:
//! a new customer with the consent stored, a contact on an existing one,
//! or rejected; rights.

use crate::both_backends;
use crate::helpers::{error_fields, first_error, problem, spawn_app, Session};
use kehu_store::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both_backends!(forms_submissions_and_lead_review);

async fn ok_json(r: reqwest::Response, status: StatusCode) -> Value {
    let got = r.status();
    let body: Value = r.json().await.expect("json");
    assert_eq!(got, status, "{body}");
    body
}

async fn submit(base: &str, slug: &str, values: Value, consent: bool) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/api/v1/public/forms/{slug}"))
        .json(&json!({ "values": values, "consent": consent }))
        .send()
        .await
        .expect("submit")
}

async fn pending(s: &Session) -> Vec<Value> {
    ok_json(s.get("/api/v1/leads").await, StatusCode::OK).await["leads"]
        .as_array()
        .expect("leads")
        .clone()
}

async fn forms_submissions_and_lead_review(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let manager = app.token("mgr_east", "sales_manager", Some("华东")).await;
    let rep = app.token("rep_east", "sales_rep", Some("华东")).await;

    // Forms: checked; only admins define them.
    let form = json!({"slug": "expo-2026", "title": "2026 工博会咨询", "fields": ["contact.mobile", "contact.email", "industry", "notes"],
                      "purpose": "用于就您咨询的产品与您联系，保存两年。", "owner_id": manager.user_id});
    let r = rep.post("/api/v1/intake-forms", form.clone()).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let p = problem(
        admin
            .post(
                "/api/v1/intake-forms",
                json!({"slug": "Bad Slug", "title": "x", "fields": ["colour"], "purpose": ""}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields = error_fields(&p);
    assert_eq!(
        fields,
        ["slug", "fields.colour", "fields", "purpose"],
        "{p}"
    );
    let created = ok_json(
        admin.post("/api/v1/intake-forms", form.clone()).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        created["fields"],
        json!([
            "name",
            "contact.name",
            "contact.mobile",
            "contact.email",
            "industry",
            "notes"
        ])
    );
    assert_eq!(created["purpose_version"], 1);
    let p = problem(
        admin.post("/api/v1/intake-forms", form.clone()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p), ("slug".into(), "duplicate".into()));

    // Public submissions: consent, a way back, standardization.
    let base = &app.base;
    let values = json!({"name": " 北京星河精密机械有限公司 ", "contact.name": "张伟", "contact.mobile": "138 0013 8000",
                        "contact.email": "ZhangWei@Example.com", "industry": "制造业", "notes": "想了解数控机床"});
    let p = problem(
        submit(base, "expo-2026", values.clone(), false).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "consent");
    let p = problem(
        submit(
            base,
            "expo-2026",
            json!({"name": "某公司", "contact.name": "李四"}),
            true,
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "contact.mobile");
    let r = submit(base, "no-such-form", values.clone(), true).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        pending(&manager).await.is_empty(),
        "refused submissions leave nothing"
    );
    ok_json(
        submit(base, "expo-2026", values.clone(), true).await,
        StatusCode::CREATED,
    )
    .await;
    // The mobile and e-mail are stored sealed, never in clear.
    let raw = raw_leads(&app.store).await;
    assert!(raw.contains("\"contact.mobile\":\"enc1:"), "{raw}");
    for clear in ["138 0013 8000", "ZhangWei@", "zhangwei@"] {
        assert!(!raw.contains(clear), "{clear} in {raw}");
    }

    // The purpose text changes: later consents name the new version.
    let mut changed = form.clone();
    changed["purpose"] = json!("用于联系您，并在您同意时发送新品资讯，保存两年。");
    changed["version"] = created["version"].clone();
    let updated = ok_json(
        admin
            .request(
                Method::PUT,
                &format!("/api/v1/intake-forms/{}", created["id"]),
            )
            .json(&changed)
            .send()
            .await
            .expect("PUT"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(updated["purpose_version"], 2);
    // A customer already stored: the second lead looks like it.
    let existing = manager.customer("上海华信物流有限公司", json!({})).await;
    ok_json(
        submit(base, "expo-2026", json!({"name": "华信物流(上海)有限公司", "contact.name": "王芳", "contact.email": "wang@huaxin.cn"}), true).await,
        StatusCode::CREATED,
    )
    .await;

    // Review: reps cannot; the manager sees both, standardized, with the consent.
    let r = rep.get("/api/v1/leads").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let leads = pending(&manager).await;
    assert_eq!(leads.len(), 2);
    let first = &leads[0];
    assert_eq!(first["name"], "北京星河精密机械有限公司");
    // Standardized, and masked for the reviewer like everywhere else.
    assert_eq!(first["mobile"], "138****8000");
    assert_eq!(first["email"], "z***@example.com");
    assert_eq!(
        (first["purpose_version"].clone(), first["purpose"].clone()),
        (json!(1), form["purpose"].clone())
    );
    let second = &leads[1];
    assert_eq!(second["purpose_version"], 2);
    assert_eq!(second["suspects"][0][0], existing["id"], "{second}");

    // Accepted as a new customer: a prospect from 官网, owned by the form's owner, with its contact and consent.
    let accepted = ok_json(
        manager
            .post(&format!("/api/v1/leads/{}/accept", first["id"]), json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(accepted["status"], "accepted");
    let cid = accepted["customer_id"].as_i64().expect("customer");
    let c = ok_json(
        manager.get(&format!("/api/v1/customers/{cid}")).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (
            c["status"].clone(),
            c["source_channel"].clone(),
            c["owner_id"].clone()
        ),
        (json!("prospect"), json!("官网"), json!(manager.user_id))
    );
    assert_eq!(c["notes"], "想了解数控机床");
    let contacts = ok_json(
        manager
            .get(&format!("/api/v1/contacts?customer_id={cid}&reveal=true"))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(contacts["items"][0]["mobile"], "13800138000");
    let consents: Vec<kehu_store::intake::Consent> =
        app.store.consents_of(cid).await.expect("consents");
    assert_eq!(consents.len(), 1);
    assert_eq!(
        (consents[0].purpose_version, consents[0].channel.as_str()),
        (1, "web_form")
    );
    assert_eq!(
        consents[0].purpose,
        form["purpose"].as_str().expect("purpose")
    );
    let again = problem(
        manager
            .post(&format!("/api/v1/leads/{}/accept", first["id"]), json!({}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&again).0, "status");

    // The second joins the customer it looks like, as a contact.
    let joined = ok_json(
        manager
            .post(
                &format!("/api/v1/leads/{}/accept", second["id"]),
                json!({"customer_id": existing["id"]}),
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(joined["customer_id"], existing["id"]);
    let contacts = ok_json(
        manager
            .get(&format!(
                "/api/v1/contacts?customer_id={}&reveal=true",
                existing["id"]
            ))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(contacts["items"][0]["email"], "wang@huaxin.cn");
    assert_eq!(
        app.store
            .consents_of(existing["id"].as_i64().expect("id"))
            .await
            .expect("consents")[0]
            .purpose_version,
        2
    );

    // A lead like another team's customer: that customer is not named to this manager.
    let north = app.token("rep_north", "sales_rep", Some("华北")).await;
    let theirs = north.customer("北方重工机械有限公司", json!({})).await;
    ok_json(
        submit(base, "expo-2026", json!({"name": "北方重工机械(北京)有限公司", "contact.name": "钱七", "contact.mobile": "13600136000"}), true).await,
        StatusCode::CREATED,
    )
    .await;
    let lead = pending(&manager)
        .await
        .into_iter()
        .find(|l| l["name"] == "北方重工机械(北京)有限公司")
        .expect("lead");
    assert_eq!(lead["suspects"], json!([]), "{lead}");
    let lead = pending(&admin)
        .await
        .into_iter()
        .find(|l| l["name"] == "北方重工机械(北京)有限公司")
        .expect("lead");
    assert_eq!(lead["suspects"][0][0], theirs["id"]);

    // Rate limit: five an hour from one address (three taken above, two more, then refused).
    for i in 0..2 {
        let v = json!({"name": format!("限速测试{i}有限公司"), "contact.name": "赵六", "contact.mobile": "13900139000"});
        ok_json(
            submit(base, "expo-2026", v, true).await,
            StatusCode::CREATED,
        )
        .await;
    }
    let r = submit(
        base,
        "expo-2026",
        json!({"name": "第六次有限公司", "contact.name": "赵六", "contact.mobile": "13900139000"}),
        true,
    )
    .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let leads = pending(&manager).await;
    assert_eq!(leads.len(), 3);
    let rejected = ok_json(
        manager
            .post(
                &format!("/api/v1/leads/{}/reject", leads[0]["id"]),
                json!({}),
            )
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(pending(&manager).await.len(), 2);

    // Accepting writes in the reviewer's name: a manager who may see but
    // not edit contacts' mobiles cannot accept a lead that brings one.
    crate::helpers::set_rights(&admin, "sales_manager", &[("contact.mobile", "clear")]).await;
    let lead = pending(&manager).await[0].clone();
    let p = problem(
        manager
            .post(&format!("/api/v1/leads/{}/accept", lead["id"]), json!({}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(
        first_error(&p),
        ("contact.mobile".to_string(), "not_editable".to_string())
    );
    assert_eq!(pending(&manager).await.len(), 2, "still pending");

    // A retired form is gone for the public.
    let mut retired = changed.clone();
    retired["active"] = json!(false);
    retired["version"] = updated["version"].clone();
    ok_json(
        admin
            .request(
                Method::PUT,
                &format!("/api/v1/intake-forms/{}", created["id"]),
            )
            .json(&retired)
            .send()
            .await
            .expect("PUT"),
        StatusCode::OK,
    )
    .await;
    let r = reqwest::get(format!("{base}/f/expo-2026"))
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    app.cleanup().await;
}

/// Every lead's submitted values as the database holds them.
async fn raw_leads(store: &kehu_store::Store) -> String {
    use kehu_store::db::{Exec, RowGet};
    store
        .db
        .clone()
        .fetch_all(
            "SELECT submitted FROM leads ORDER BY id",
            vec![],
            |r: &dyn RowGet| r.json("submitted"),
        )
        .await
        .expect("leads")
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
