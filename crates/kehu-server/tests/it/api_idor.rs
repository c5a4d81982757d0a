//! Object-level authorization across teams: a sales manager of 华南 asks
//! for, changes and deletes 华东's records by their ids on every endpoint
//! that takes one. Each answer is 404 — the same as for an id that does
//! not exist, so ids cannot be probed — and nothing changes.

use crate::both_backends;
use crate::helpers::{ok_json, problem, spawn_app, Session};
use kehu_store::Backend;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both_backends!(another_teams_records_by_id);

async fn send(s: &Session, method: Method, path: &str, body: Option<&Value>) -> reqwest::Response {
    let r = s.request(method, path);
    let r = match body {
        Some(b) => r.json(b),
        None => r,
    };
    r.send().await.expect("request")
}

/// What the owner sees of a record, to compare before and after.
async fn snapshot(owner: &Session, paths: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for p in paths {
        out.push(ok_json(owner.get(p).await).await);
    }
    out
}

async fn another_teams_records_by_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app
        .token("mgr_east", "sales_manager", Some("华东一组"))
        .await;
    let other = app
        .token("mgr_south", "sales_manager", Some("华南一组"))
        .await;
    let c = owner.customer("华东精密机械有限公司", json!({})).await;
    let id = c["id"].as_i64().expect("id");
    let contact = ok_json(
        owner
            .post(
                &format!("/api/v1/customers/{id}/contacts"),
                json!({"name": "王伟", "mobile": "13812345678", "email": "wang@example.com", "is_primary": true}),
            )
            .await,
    )
    .await["id"]
        .as_i64()
        .expect("contact");
    let order = ok_json(
        owner
            .post(
                &format!("/api/v1/customers/{id}/orders"),
                json!({"ordered_on": "2026-01-05", "amount_fen": 1_000_000}),
            )
            .await,
    )
    .await["id"]
        .as_i64()
        .expect("order");
    let interaction = ok_json(
        owner
            .post(
                &format!("/api/v1/customers/{id}/interactions"),
                json!({"kind": "visit", "occurred_on": "2026-01-06", "summary": "拜访"}),
            )
            .await,
    )
    .await["id"]
        .as_i64()
        .expect("interaction");
    let today = app.store.today();
    let task = ok_json(
        owner
            .post(
                "/api/v1/tasks",
                json!({"customer": c["code"], "title": "季度拜访", "due_on": today.to_string()}),
            )
            .await,
    )
    .await["id"]
        .as_i64()
        .expect("task");
    let tags: Vec<Value> = owner.get("/api/v1/tags").await.json().await.expect("tags");
    let tag = tags
        .iter()
        .find(|t| t["path"].as_str().is_some_and(|p| p.ends_with("/高频")) || t["name"] == "高频")
        .or_else(|| tags.last())
        .expect("a tag")["id"]
        .as_i64()
        .expect("tag id");
    let segment = ok_json(
        owner
            .post(
                "/api/v1/segments",
                json!({"name": "华东重点", "expression": "region = 华东", "shared": false}),
            )
            .await,
    )
    .await["id"]
        .as_i64()
        .expect("segment");

    let owned = [
        format!("/api/v1/customers/{id}"),
        format!("/api/v1/contacts/{contact}"),
        format!("/api/v1/orders/{order}"),
        format!("/api/v1/interactions/{interaction}"),
        format!("/api/v1/tasks/{task}"),
        format!("/api/v1/customers/{id}/tags"),
        format!("/api/v1/segments/{segment}"),
    ];
    let before = snapshot(&owner, &owned).await;

    let patch = json!({"notes": "改了", "version": 1});
    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/customers/{id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/customers/{id}"),
            Some(patch.clone()),
        ),
        (
            Method::DELETE,
            format!("/api/v1/customers/{id}?version=1"),
            None,
        ),
        (Method::GET, format!("/api/v1/customers/{id}/classes"), None),
        (
            Method::GET,
            format!("/api/v1/customers/{id}/explanations"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/customers/{id}/overrides"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/customers/{id}/classes/value_tier/override"),
            Some(json!({"class": "战略型", "reason": "越权测试"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/customers/{id}/classes/value_tier/override"),
            None,
        ),
        (Method::GET, format!("/api/v1/customers/{id}/tags"), None),
        (
            Method::GET,
            format!("/api/v1/customers/{id}/tag-history"),
            None,
        ),
        (
            Method::PUT,
            format!("/api/v1/customers/{id}/tags/{tag}"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/customers/{id}/tags/{tag}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/customers/{id}/consents"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/customers/{id}/cross-sell"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/customers/{id}/contacts"),
            Some(json!({"name": "李四", "mobile": "13900001111"})),
        ),
        (
            Method::POST,
            format!("/api/v1/customers/{id}/orders"),
            Some(json!({"ordered_on": "2026-01-07", "amount_fen": 1})),
        ),
        (
            Method::POST,
            format!("/api/v1/customers/{id}/interactions"),
            Some(json!({"kind": "call", "occurred_on": "2026-01-07", "summary": "x"})),
        ),
        (Method::GET, format!("/api/v1/contacts/{contact}"), None),
        (
            Method::PATCH,
            format!("/api/v1/contacts/{contact}"),
            Some(patch.clone()),
        ),
        (
            Method::DELETE,
            format!("/api/v1/contacts/{contact}?version=1"),
            None,
        ),
        (Method::GET, format!("/api/v1/orders/{order}"), None),
        (
            Method::PATCH,
            format!("/api/v1/orders/{order}"),
            Some(patch.clone()),
        ),
        (
            Method::DELETE,
            format!("/api/v1/orders/{order}?version=1"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/interactions/{interaction}"),
            None,
        ),
        (
            Method::PATCH,
            format!("/api/v1/interactions/{interaction}"),
            Some(patch.clone()),
        ),
        (
            Method::DELETE,
            format!("/api/v1/interactions/{interaction}?version=1"),
            None,
        ),
        (Method::GET, format!("/api/v1/tasks/{task}"), None),
        (
            Method::POST,
            format!("/api/v1/tasks/{task}/close"),
            Some(json!({"summary": "越权关闭"})),
        ),
        (Method::GET, format!("/api/v1/segments/{segment}"), None),
        (
            Method::PATCH,
            format!("/api/v1/segments/{segment}"),
            Some(json!({"name": "改名", "version": 1})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/segments/{segment}?version=1"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v1/segments/{segment}/customers"),
            None,
        ),
    ];
    let mut wrong = Vec::new();
    for (method, path, body) in &cases {
        let r = send(&other, method.clone(), path, body.as_ref()).await;
        if r.status() != StatusCode::NOT_FOUND {
            wrong.push(format!(
                "{method} {path}: {} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "not answered as missing:\n{}",
        wrong.join("\n")
    );

    // The pages and forms that take an id, signed in with a cookie (the
    // forms carry the session's CSRF token, so only the scope refuses).
    let page_user = app
        .login("mgr_south_ui", "sales_manager", Some("华南一组"))
        .await;
    let csrf = page_user.csrf.clone().expect("csrf token");
    let form = |extra: &[(&str, &str)]| {
        let mut f: Vec<(String, String)> = vec![("csrf_token".into(), csrf.clone())];
        f.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        f
    };
    let tag_text = tag.to_string();
    type Form = Vec<(String, String)>;
    let pages: Vec<(Method, String, Option<Form>)> = vec![
        (Method::GET, format!("/customers/{id}"), None),
        (Method::GET, format!("/customers/{id}/edit"), None),
        (
            Method::POST,
            format!("/customers/{id}/edit"),
            Some(form(&[("name", "改名有限公司"), ("version", "1")])),
        ),
        (
            Method::POST,
            format!("/customers/{id}/delete"),
            Some(form(&[("version", "1")])),
        ),
        (
            Method::POST,
            format!("/customers/{id}/contacts"),
            Some(form(&[("name", "李四"), ("mobile", "13900001111")])),
        ),
        (
            Method::POST,
            format!("/customers/{id}/orders"),
            Some(form(&[("ordered_on", "2026-01-07"), ("amount", "1")])),
        ),
        (
            Method::POST,
            format!("/customers/{id}/tags"),
            Some(form(&[("tag_id", tag_text.as_str())])),
        ),
        (
            Method::POST,
            format!("/customers/{id}/tags/{tag}/remove"),
            Some(form(&[])),
        ),
        (
            Method::POST,
            format!("/customers/{id}/classes/value_tier/override"),
            Some(form(&[("class", "战略型"), ("reason", "越权测试")])),
        ),
        (Method::GET, format!("/tasks/{task}"), None),
        (
            Method::POST,
            format!("/tasks/{task}/close"),
            Some(form(&[("summary", "越权关闭")])),
        ),
    ];
    let mut wrong = Vec::new();
    for (method, path, body) in &pages {
        let mut r = page_user
            .client
            .request(method.clone(), format!("{}{path}", app.base));
        if let Some(f) = body {
            r = r.form(f);
        }
        let r = r.send().await.expect("page");
        if r.status() != StatusCode::NOT_FOUND {
            wrong.push(format!("{method} {path}: {}", r.status()));
        }
    }
    assert!(
        wrong.is_empty(),
        "pages not answered as missing:\n{}",
        wrong.join("\n")
    );
    personal_data_requests_stay_in_the_team(&app, &owner, &other, contact).await;

    // An id that does not exist answers the same.
    problem(
        other.get("/api/v1/contacts/999999").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // Nothing changed.
    assert_eq!(snapshot(&owner, &owned).await, before);
    // Every probe of the customer's records is in the audit log, by whom.
    let auditor = app.token("audit1", "auditor", None).await;
    let denied = ok_json(
        auditor
            .get("/api/v1/audit?action=access.denied&limit=200")
            .await,
    )
    .await;
    let denied = denied["entries"].as_array().expect("entries");
    let probes = cases
        .iter()
        .filter(|(_, p, _)| p.contains(&format!("/customers/{id}")))
        .count();
    let on_it = denied
        .iter()
        .filter(|e| e["target"] == format!("customer:{id}") && e["actor_id"] == other.user_id)
        .count();
    assert!(
        on_it >= probes,
        "{on_it} audited of {probes} probes: {denied:?}"
    );
    assert!(denied
        .iter()
        .all(|e| e["detail"]["answered"] == "not_found"));
    // The other team's own lists do not hold them either.
    for list in [
        "/api/v1/customers",
        "/api/v1/contacts",
        "/api/v1/orders",
        "/api/v1/interactions",
        "/api/v1/tasks",
    ] {
        let page = ok_json(other.get(list).await).await;
        assert_eq!(page["items"], json!([]), "{list}");
    }
    app.cleanup().await;
}

/// A consent and a person's data requests of 华东's customer: another
/// team's manager cannot withdraw the consent, and a personal-data officer
/// whose grant reaches only their own team cannot find, copy or erase the
/// person — while the same role in 华东 can copy them.
async fn personal_data_requests_stay_in_the_team(
    app: &crate::helpers::TestApp,
    owner: &Session,
    other: &Session,
    contact: i64,
) {
    let admin = app.token("root_idor", "admin", None).await;
    ok_json(
        admin
            .post(
                "/api/v1/intake-forms",
                json!({"slug": "idor", "title": "咨询", "fields": ["contact.mobile"],
                       "purpose": "用于就您的咨询与您联系。", "owner_id": owner.user_id}),
            )
            .await,
    )
    .await;
    let r = app
        .submit_form(
            "idor",
            json!({"name": "华东同意书有限公司", "contact.name": "赵六", "contact.mobile": "13700001234"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let cid = admin.accept_oldest_lead().await;
    let consents = ok_json(
        owner
            .get(&format!("/api/v1/customers/{cid}/consents"))
            .await,
    )
    .await;
    let consent = consents[0]["id"]
        .as_i64()
        .expect("the owner sees the consent");
    problem(
        other
            .post(&format!("/api/v1/consents/{consent}/withdraw"), json!({}))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let kept = ok_json(
        owner
            .get(&format!("/api/v1/customers/{cid}/consents"))
            .await,
    )
    .await;
    assert!(kept[0]["withdrawn_at"].is_null(), "{kept}");

    // A personal-data officer per team.
    ok_json(
        admin
            .post(
                "/api/v1/roles",
                json!({"key": "team_dpo", "name_zh": "团队个人信息专员", "copy_from": "sales_manager"}),
            )
            .await,
    )
    .await;
    ok_json(
        admin
            .put_json(
                "/api/v1/roles/team_dpo/grants",
                json!({"personal_data": "team"}),
            )
            .await,
    )
    .await;
    let south = app.token("dpo_south", "team_dpo", Some("华南一组")).await;
    let east = app.token("dpo_east", "team_dpo", Some("华东一组")).await;
    let copy = format!("/api/v1/contacts/{contact}/personal-data");
    assert_eq!(east.get(&copy).await.status(), StatusCode::OK);
    problem(south.get(&copy).await, StatusCode::NOT_FOUND).await;
    problem(
        south
            .post(
                &format!("/api/v1/contacts/{contact}/erase"),
                json!({"reason": "越权删除"}),
            )
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let found = ok_json(
        south
            .post("/api/v1/privacy/people", json!({"mobile": "13812345678"}))
            .await,
    )
    .await;
    assert_eq!(found, json!([]));
    let found = ok_json(
        east.post("/api/v1/privacy/people", json!({"mobile": "13812345678"}))
            .await,
    )
    .await;
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{found}");
}
