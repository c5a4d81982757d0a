//! The role matrix over HTTP: data scopes on every list and object endpoint.

use crate::both_backends;
use crate::helpers::{error_fields, first_error, ok_json, problem, spawn_app};
use kehu_store::Backend;
use reqwest::StatusCode;
use serde_json::{json, Value};

both_backends!(data_scopes_and_role_rights, roles_edited_by_admins);

async fn ids(v: reqwest::Response) -> Vec<i64> {
    let v: Value = v.json().await.expect("json");
    let mut out: Vec<i64> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|c| c["id"].as_i64())
        .collect();
    out.sort();
    out
}

async fn data_scopes_and_role_rights(backend: Backend) {
    let app = spawn_app(backend).await;
    let rep_east = app.token("rep_east", "sales_rep", Some("华东一组")).await;
    let rep_east2 = app.token("rep_east2", "sales_rep", Some("华东一组")).await;
    let rep_south = app.token("rep_south", "sales_rep", Some("华南一组")).await;
    let mgr_east = app
        .token("mgr_east", "sales_manager", Some("华东一组"))
        .await;
    let service = app.token("kefu", "service", None).await;
    let auditor = app.token("audit", "auditor", None).await;
    let marketing = app.token("mkt", "marketing", None).await;
    let admin = app.token("boss", "admin", None).await;

    let east = rep_east.customer("华东客户有限公司", json!({})).await;
    let south = rep_south
        .customer("华南客户有限公司", json!({"sales_region": "华南"}))
        .await;
    let (east_id, south_id) = (
        east["id"].as_i64().expect("id"),
        south["id"].as_i64().expect("id"),
    );
    assert_eq!(east["owner_id"], rep_east.user_id);
    assert_eq!(east["team"], "华东一组");

    // lists show only what the scope reaches
    assert_eq!(
        ids(rep_east.get("/api/v1/customers").await).await,
        vec![east_id]
    );
    assert_eq!(
        ids(rep_east2.get("/api/v1/customers").await).await,
        vec![east_id],
        "team-mates see the team's customers"
    );
    assert_eq!(
        ids(rep_south.get("/api/v1/customers").await).await,
        vec![south_id]
    );
    assert_eq!(
        ids(service.get("/api/v1/customers").await).await,
        vec![east_id, south_id]
    );
    // another team's customer by id: indistinguishable from a missing one
    let p = problem(
        rep_south.get(&format!("/api/v1/customers/{east_id}")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(p["code"], "not_found");
    problem(
        rep_south
            .patch(
                &format!("/api/v1/customers/{east_id}"),
                json!({"city": "x", "version": 1}),
            )
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        rep_south
            .delete(&format!("/api/v1/customers/{east_id}?version=1"))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        rep_south
            .post(
                &format!("/api/v1/customers/{east_id}/orders"),
                json!({"ordered_on": "2024-01-01", "amount_fen": 1}),
            )
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        rep_south.get("/api/v1/customers/999999").await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let east_contact: Value = rep_east
        .post(
            &format!("/api/v1/customers/{east_id}/contacts"),
            json!({"name": "陈静", "mobile": "13900001111"}),
        )
        .await
        .json()
        .await
        .expect("json");
    problem(
        rep_south
            .get(&format!("/api/v1/contacts/{}", east_contact["id"]))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let contacts: Value = rep_south
        .get("/api/v1/contacts")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        contacts["items"].as_array().map(Vec::len),
        Some(0),
        "contact lists follow the customer's scope"
    );
    // a rep edits only their own customers; a team-mate may read but not edit
    problem(
        rep_east2
            .patch(
                &format!("/api/v1/customers/{east_id}"),
                json!({"city": "x", "version": 1}),
            )
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(
        rep_east
            .patch(
                &format!("/api/v1/customers/{east_id}"),
                json!({"city": "上海", "version": 1})
            )
            .await
            .status(),
        StatusCode::OK
    );
    problem(
        rep_east
            .delete(&format!("/api/v1/customers/{east_id}?version=2"))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // a rep cannot hand a customer to another team
    let p = problem(
        rep_east
            .patch(
                &format!("/api/v1/customers/{east_id}"),
                json!({"owner_id": rep_south.user_id, "version": 2}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "owner_id");
    // the team's manager may edit and reassign within the team
    assert_eq!(
        mgr_east
            .patch(
                &format!("/api/v1/customers/{east_id}"),
                json!({"owner_id": rep_east2.user_id, "version": 2})
            )
            .await
            .status(),
        StatusCode::OK
    );
    problem(
        mgr_east.get(&format!("/api/v1/customers/{south_id}")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // 客服: reads all, logs complaints and service records, cannot change customers or their classification
    problem(
        service
            .patch(
                &format!("/api/v1/customers/{east_id}"),
                json!({"status": "lost", "version": 3}),
            )
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        service
            .post(
                "/api/v1/customers",
                json!({"name": "客服新建", "cooperation_start_on": "2020-01-01"}),
            )
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let complaint = service.post(&format!("/api/v1/customers/{south_id}/interactions"), json!({"kind": "complaint", "occurred_on": "2024-03-12", "summary": "交货延期", "severity": "medium"})).await;
    assert_eq!(complaint.status(), StatusCode::CREATED);
    problem(
        service
            .post(
                &format!("/api/v1/customers/{south_id}/interactions"),
                json!({"kind": "visit", "occurred_on": "2024-03-12", "summary": "拜访"}),
            )
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        service
            .post(
                &format!("/api/v1/customers/{south_id}/orders"),
                json!({"ordered_on": "2024-03-12", "amount_fen": 100}),
            )
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // 审计 reads no customers; 市场 reads but does not write
    problem(
        auditor.get("/api/v1/customers").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(
        auditor.get(&format!("/api/v1/customers/{east_id}")).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(
        ids(marketing.get("/api/v1/customers").await).await,
        vec![east_id, south_id]
    );
    problem(
        marketing
            .patch(
                &format!("/api/v1/customers/{east_id}"),
                json!({"city": "x", "version": 3}),
            )
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // configuration and users are for admins
    problem(
        rep_east
            .post(
                "/api/v1/custom-fields",
                json!({"key": "k", "label": "k", "group": "basic", "kind": "text"}),
            )
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    problem(mgr_east.get("/api/v1/users").await, StatusCode::FORBIDDEN).await;
    problem(
        rep_east
            .post(
                "/api/v1/users",
                json!({"username": "sneaky", "role": "admin"}),
            )
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let created: Value = admin
        .post(
            "/api/v1/users",
            json!({"username": "newrep", "role": "sales_rep", "team": "华北一组"}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert!(created["initial_password"]
        .as_str()
        .is_some_and(|p| p.len() >= 10));
    assert_eq!(created["user"]["must_change_password"], true);
    let p = problem(
        admin
            .post("/api/v1/users", json!({"username": "x y", "role": "boss"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields = error_fields(&p);
    assert_eq!(fields, vec!["username", "role"]);
    // A chosen password must pass the policy too; nothing is created.
    for weak in ["short1", "newrep2-is-here", "qwertyuiop", "9999999999"] {
        let p = problem(
            admin
                .post(
                    "/api/v1/users",
                    json!({"username": "newrep2", "role": "sales_rep", "password": weak}),
                )
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&p), vec!["password"], "{weak}");
    }
    let users = ok_json(admin.get("/api/v1/users").await).await;
    assert!(!users.to_string().contains("newrep2"), "{users}");
    app.cleanup().await;
}

/// Admins make and change roles: a new role copied from a preset, its
/// permissions and scopes changed (the change applies to its users at
/// once), bad keys and scopes named, no lock-out of one's own role, presets
/// and roles in use kept; all audited.
async fn roles_edited_by_admins(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("root", "admin", None).await;
    let rep = app.token("rep_n", "sales_rep", Some("华北一组")).await;
    let auditor = app.token("aud", "auditor", None).await;
    let other_team = admin.customer("别的团队客户有限公司", json!({})).await;

    problem(
        rep.post("/api/v1/roles", json!({"key": "vip", "name_zh": "大客户"}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let p = problem(
        admin
            .post(
                "/api/v1/roles",
                json!({"key": "Bad Key", "name_zh": "", "copy_from": "nobody"}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields = error_fields(&p);
    assert_eq!(fields, ["key", "name_zh", "copy_from"]);
    let r = admin
        .post(
            "/api/v1/roles",
            json!({"key": "key_account", "name_zh": "大客户经理", "name_en": "Key account manager", "copy_from": "sales_rep"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let made: Value = r.json().await.expect("json");
    assert_eq!(made["builtin"], false);
    assert_eq!(made["grants"]["customer_read"], "team");
    assert_eq!(made["field_rights"]["contact.mobile"], "edit");
    let dup = problem(
        admin
            .post(
                "/api/v1/roles",
                json!({"key": "key_account", "name_zh": "重复"}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&dup).0, "key");

    // A user of the new role, then its reach widened to every customer.
    let ka = app.token("ka1", "key_account", Some("华东一组")).await;
    assert_eq!(
        ka.get(&format!("/api/v1/customers/{}", other_team["id"]))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let bad = problem(
        admin
            .put_json(
                "/api/v1/roles/key_account/grants",
                json!({"customer_read": "galaxy", "fly": "all"}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&bad).0, "customer_read");
    ok_json(
        admin
            .put_json(
                "/api/v1/roles/key_account/grants",
                json!({"customer_read": "all", "customer_update": "own", "customer_create": "none"}),
            )
            .await,
    )
    .await;
    assert_eq!(
        ka.get(&format!("/api/v1/customers/{}", other_team["id"]))
            .await
            .status(),
        StatusCode::OK
    );
    problem(
        ka.post("/api/v1/customers", json!({"name": "不该建成有限公司"}))
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // No lock-out; presets and roles in use stay.
    problem(
        admin
            .put_json(
                "/api/v1/roles/admin/grants",
                json!({"customer_read": "all"}),
            )
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let in_use = problem(
        admin.delete("/api/v1/roles/key_account").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&in_use).1, "role_in_use");
    problem(
        admin.delete("/api/v1/roles/marketing").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    ok_json(
        admin
            .post("/api/v1/roles", json!({"key": "temp", "name_zh": "临时"}))
            .await,
    )
    .await;
    assert_eq!(
        admin.delete("/api/v1/roles/temp").await.status(),
        StatusCode::NO_CONTENT
    );
    let roles = ok_json(admin.get("/api/v1/roles").await).await;
    assert!(!roles.to_string().contains("\"temp\""));

    let log = ok_json(auditor.get("/api/v1/audit?target=role:").await).await;
    let actions: Vec<&str> = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for a in ["role.create", "role.grants", "role.delete"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    app.cleanup().await;
}
