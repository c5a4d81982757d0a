//! Duplicate contacts through the API: pairs found as contacts are written
//! (within one customer only), the plan's defaults masked for the reader,
//! bad merges refused, merge and undo (the absorbed contact back under its
//! id, consents with it), rejected pairs never proposed again, a customer
//! merge that leaves one person twice, the import warning, pairs an
//! import's update makes and its undo takes back, erasure of a merge's
//! before-images, and rights.

use crate::both_backends;
use crate::helpers::{first_error, ok_json, problem, spawn_app, upload_import, Session};
use kehu_store::Backend;
use reqwest::StatusCode;
use serde_json::{json, Value};

both_backends!(
    pairs_merge_undo_and_reject,
    a_customer_merge_leaves_one_person_twice,
    imports_warn_and_erasure_blanks_merges,
    an_import_and_its_undo_refresh_contact_pairs,
    rights_over_contact_pairs
);

async fn contact(s: &Session, customer: i64, body: Value) -> Value {
    let r = s
        .post(&format!("/api/v1/customers/{customer}/contacts"), body)
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.expect("json")
}

fn id(v: &Value) -> i64 {
    v["id"].as_i64().expect("id")
}

async fn pairs(s: &Session, query: &str) -> Vec<Value> {
    ok_json(s.get(&format!("/api/v1/contact-duplicates?{query}")).await).await["pairs"]
        .as_array()
        .expect("pairs")
        .clone()
}

fn ids_of(pair: &Value) -> (i64, i64) {
    (id(&pair["a"]), id(&pair["b"]))
}

async fn merge(
    s: &Session,
    survivor: &Value,
    absorbed: &Value,
    choices: Value,
) -> reqwest::Response {
    s.post(
        "/api/v1/contact-merges",
        json!({"survivor_id": survivor["id"], "absorbed_id": absorbed["id"],
               "survivor_version": survivor["version"], "absorbed_version": absorbed["version"],
               "choices": choices}),
    )
    .await
}

async fn apply_import(s: &Session, report: &Value) {
    ok_json(
        s.post(
            &format!("/api/v1/imports/{}/apply", report["id"]),
            json!({"on_invalid": "skip"}),
        )
        .await,
    )
    .await;
}

async fn revealed(s: &Session, contact: i64) -> reqwest::Response {
    s.get(&format!("/api/v1/contacts/{contact}?reveal=true"))
        .await
}

async fn pairs_merge_undo_and_reject(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let x = id(&admin.customer("苏州恒瑞精密机械有限公司", json!({})).await);
    let y = id(&admin.customer("宁波港通物流有限公司", json!({})).await);
    let zhang = contact(
        &admin,
        x,
        json!({"name": "张伟", "mobile": "13800138000", "title": "采购经理", "is_primary": true}),
    )
    .await;
    // The same mobile written another way, a name that sounds alike, an e-mail.
    let zhang2 = contact(
        &admin,
        x,
        json!({"name": "张玮", "mobile": "138 0013 8000", "email": "ZW@Hengrui.cn"}),
    )
    .await;
    // One name, two mobiles: too close to call, not proposed.
    contact(&admin, x, json!({"name": "王芳", "mobile": "13900139000"})).await;
    contact(&admin, x, json!({"name": "王芳", "mobile": "13700137000"})).await;
    // The same person at another customer is not a contact pair.
    contact(&admin, y, json!({"name": "张伟", "mobile": "13800138000"})).await;

    let found = pairs(&admin, "").await;
    assert_eq!(found.len(), 1, "{found:?}");
    let pair = &found[0];
    assert_eq!(ids_of(pair), (id(&zhang), id(&zhang2)));
    assert_eq!(pair["customer_id"], x);
    assert_eq!(pair["score"], 92, "{pair}");
    assert_eq!(pair["reasons"], json!(["same_mobile", "sound_alike_name"]));
    assert_eq!(pair["reasons_text"], json!(["手机相同", "姓名读音相同"]));
    // Masked for the reader, as every personal value leaving the server.
    assert_eq!(pair["a"]["mobile"], "138****8000", "{pair}");
    assert_eq!(pairs(&admin, &format!("customer_id={y}")).await.len(), 0);
    let pair_id = pair["id"].as_i64().expect("pair id");

    // The plan: the primary contact stays; per field the one with a value,
    // else the one changed last (the second).
    let plan = ok_json(
        admin
            .get(&format!("/api/v1/contact-duplicates/{pair_id}"))
            .await,
    )
    .await;
    assert_eq!(plan["survivor_id"], id(&zhang), "{plan}");
    let field = |key: &str| {
        plan["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .find(|f| f["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no field {key}"))
    };
    assert_eq!(
        field("title")["default_from"],
        id(&zhang),
        "only one has a title"
    );
    assert_eq!(field("email")["default_from"], id(&zhang2));
    assert_eq!(field("email")["b"], "z***@hengrui.cn");
    assert_eq!(
        field("name")["default_from"],
        id(&zhang2),
        "both named: the newer"
    );
    assert_eq!(field("name")["a"], "张*");

    // Bad merges, each refused whole.
    let p = problem(
        merge(&admin, &zhang, &zhang2, json!({"salary": id(&zhang)})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "choices.salary", "{p}");
    let p = problem(
        merge(&admin, &zhang, &zhang2, json!({"name": 999_999})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "choices", "{p}");
    let stale = json!({"id": zhang["id"], "version": 99});
    let r = merge(&admin, &stale, &zhang2, json!({})).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let elsewhere = pairs(&admin, "").await;
    assert_eq!(elsewhere.len(), 1, "nothing merged");
    let other = ok_json(
        admin
            .get(&format!("/api/v1/contacts?customer_id={y}"))
            .await,
    )
    .await;
    let other = &other["items"][0];
    let p = problem(
        merge(&admin, &zhang, other, json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(p.to_string().contains("同一客户"), "{p}");

    // Merged: 张伟 kept by choice, the e-mail from the other; primary; the
    // other contact gone, and so is the pair.
    let m = merge(&admin, &zhang, &zhang2, json!({"name": id(&zhang)})).await;
    assert_eq!(m.status(), StatusCode::CREATED);
    let m: Value = m.json().await.expect("json");
    assert_eq!(m["survivor_id"], id(&zhang));
    assert_eq!(m["absorbed_name"], "张*");
    let kept = ok_json(revealed(&admin, id(&zhang)).await).await;
    assert_eq!(
        (
            &kept["name"],
            &kept["email"],
            &kept["title"],
            &kept["is_primary"]
        ),
        (
            &json!("张伟"),
            &json!("zw@hengrui.cn"),
            &json!("采购经理"),
            &json!(true)
        ),
        "{kept}"
    );
    let r = admin
        .get(&format!("/api/v1/contacts/{}", id(&zhang2)))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(pairs(&admin, "").await.is_empty());
    let read = ok_json(
        admin
            .get(&format!("/api/v1/contact-merges/{}", m["id"]))
            .await,
    )
    .await;
    assert_eq!(read["absorbed_id"], id(&zhang2));

    // Undone: both as they were, the absorbed one under its own id; the
    // pair is found again.
    let undone = ok_json(
        admin
            .post(
                &format!("/api/v1/contact-merges/{}/undo", m["id"]),
                json!({}),
            )
            .await,
    )
    .await;
    assert!(undone["undone_at"].is_string(), "{undone}");
    let back = ok_json(revealed(&admin, id(&zhang2)).await).await;
    assert_eq!(
        (
            &back["name"],
            &back["mobile"],
            &back["email"],
            &back["is_primary"]
        ),
        (
            &json!("张玮"),
            &json!("13800138000"),
            &json!("zw@hengrui.cn"),
            &json!(false)
        )
    );
    let first = ok_json(revealed(&admin, id(&zhang)).await).await;
    assert_eq!(
        (&first["email"], &first["is_primary"]),
        (&Value::Null, &json!(true))
    );
    let p = problem(
        admin
            .post(
                &format!("/api/v1/contact-merges/{}/undo", m["id"]),
                json!({}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(p.to_string().contains("已经撤销"), "{p}");
    let again = pairs(&admin, "").await;
    assert_eq!(again.len(), 1);
    let pair_id = again[0]["id"].clone();

    // Two people after all: rejected, and not proposed again when either changes.
    let rejected = ok_json(
        admin
            .post(
                &format!("/api/v1/contact-duplicates/{pair_id}/reject"),
                json!({}),
            )
            .await,
    )
    .await;
    assert_eq!(rejected["status"], "rejected");
    let r = admin
        .patch(
            &format!("/api/v1/contacts/{}", id(&zhang2)),
            json!({"title": "财务", "version": back["version"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(pairs(&admin, "").await.is_empty());
    assert_eq!(pairs(&admin, "status=rejected").await.len(), 1);
    let p = problem(
        admin
            .post(
                &format!("/api/v1/contact-duplicates/{pair_id}/reject"),
                json!({}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(p.to_string().contains("不是同一人"), "{p}");

    // An undo after the survivor changed is refused.
    let li = contact(
        &admin,
        y,
        json!({"name": "李娜", "landline": "0571-88886666"}),
    )
    .await;
    let li2 = contact(
        &admin,
        y,
        json!({"name": "李娜", "landline": "0571-88886666", "title": "经理"}),
    )
    .await;
    let found = pairs(&admin, &format!("customer_id={y}")).await;
    assert_eq!(
        (found.len(), &found[0]["score"]),
        (1, &json!(85)),
        "{found:?}"
    );
    let m: Value = merge(&admin, &li, &li2, json!({}))
        .await
        .json()
        .await
        .expect("json");
    let now = ok_json(admin.get(&format!("/api/v1/contacts/{}", id(&li))).await).await;
    let r = admin
        .patch(
            &format!("/api/v1/contacts/{}", id(&li)),
            json!({"notes": "改过", "version": now["version"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let p = problem(
        admin
            .post(
                &format!("/api/v1/contact-merges/{}/undo", m["id"]),
                json!({}),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(p.to_string().contains("已被修改"), "{p}");

    let auditor = app.token("audit1", "auditor", None).await;
    for (action, n) in [
        ("contact.merge", 2),
        ("contact.merge_undo", 1),
        ("contact_duplicate.reject", 1),
    ] {
        let found = ok_json(auditor.get(&format!("/api/v1/audit?action={action}")).await).await;
        let entries = found["entries"].as_array().expect("entries");
        assert_eq!(entries.len(), n, "{action}: {found}");
        assert!(
            !found.to_string().contains("13800138000"),
            "clear values in {found}"
        );
    }
    app.cleanup().await;
}

/// Two records of one company, each with its 张伟: after the customer
/// merge the survivor holds him twice, and the pair is proposed at once.
/// The customer merge is undone only after the contact merge.
async fn a_customer_merge_leaves_one_person_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let a = admin.customer("北京字节跳动科技有限公司", json!({})).await;
    let b = admin
        .customer("字节跳动(北京)科技有限公司", json!({}))
        .await;
    contact(
        &admin,
        id(&a),
        json!({"name": "张伟", "mobile": "13800138000"}),
    )
    .await;
    contact(
        &admin,
        id(&b),
        json!({"name": "张伟", "email": "zhangwei@bytedance.com"}),
    )
    .await;
    assert!(pairs(&admin, "").await.is_empty());
    let r = admin
        .post(
            "/api/v1/merges",
            json!({"survivor_id": a["id"], "absorbed_id": b["id"],
                   "survivor_version": a["version"], "absorbed_version": b["version"]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let customer_merge: Value = r.json().await.expect("json");
    let found = pairs(&admin, "").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (&found[0]["customer_id"], &found[0]["score"]),
        (&a["id"], &json!(80))
    );
    let (x, y) = ids_of(&found[0]);
    let cx = ok_json(admin.get(&format!("/api/v1/contacts/{x}")).await).await;
    let cy = ok_json(admin.get(&format!("/api/v1/contacts/{y}")).await).await;
    let m: Value = merge(&admin, &cx, &cy, json!({}))
        .await
        .json()
        .await
        .expect("json");
    let undo_customers = format!("/api/v1/merges/{}/undo", customer_merge["id"]);
    let p = problem(
        admin.post(&undo_customers, json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(p.to_string().contains("联系人合并"), "{p}");
    ok_json(
        admin
            .post(
                &format!("/api/v1/contact-merges/{}/undo", m["id"]),
                json!({}),
            )
            .await,
    )
    .await;
    ok_json(admin.post(&undo_customers, json!({})).await).await;
    // Each company has its own 张伟 again: no pair at either.
    for c in [&a, &b] {
        let listed = ok_json(
            admin
                .get(&format!("/api/v1/contacts?customer_id={}", c["id"]))
                .await,
        )
        .await;
        assert_eq!(
            listed["items"].as_array().map(Vec::len),
            Some(1),
            "{listed}"
        );
    }
    assert!(pairs(&admin, "").await.is_empty());
    app.cleanup().await;
}

async fn imports_warn_and_erasure_blanks_merges(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let c = admin.customer("杭州云帆数据科技有限公司", json!({})).await;
    let zhou = contact(
        &admin,
        id(&c),
        json!({"name": "周八", "mobile": "13900139000"}),
    )
    .await;
    // A contacts file: the same mobile under a name that sounds alike (捌 /
    // 八) is a warning (the row is still imported); a new person is not.
    let csv = format!(
        "客户编号,联系人,手机\n{code},周捌,139 0013 9000\n{code},吴九,13700137000\n",
        code = c["code"].as_str().expect("code")
    );
    let r = upload_import(&admin, "contacts", "联系人.csv", csv.into_bytes()).await;
    let report: Value = r.json().await.expect("report");
    assert_eq!(report["counts"]["duplicate_suspects"], 1, "{report}");
    assert_eq!(report["counts"]["new"], 2, "{report}");
    let suspect = report["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .find(|p| p["code"] == "duplicate_suspect")
        .cloned()
        .expect("suspect");
    assert_eq!(suspect["row"], 2);
    assert_eq!(
        suspect["reason_en"],
        "likely the same person as stored contact 周* (same mobile, names sound alike)"
    );
    apply_import(&admin, &report).await;
    // Applied: the pair is in the queue.
    let found = pairs(&admin, "").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0]["reasons"],
        json!(["same_mobile", "sound_alike_name"])
    );
    let (_, other) = ids_of(&found[0]);
    let other = ok_json(admin.get(&format!("/api/v1/contacts/{other}")).await).await;
    let m: Value = merge(&admin, &zhou, &other, json!({}))
        .await
        .json()
        .await
        .expect("json");

    // The person asks to be erased: the merge's before-images go too, and
    // the merge can no longer be undone.
    let erased = ok_json(
        admin
            .post(
                &format!("/api/v1/contacts/{}/erase", id(&zhou)),
                json!({"reason": "本人来电要求删除（2026-12-05）"}),
            )
            .await,
    )
    .await;
    assert_eq!(erased["contact_merges"], 1, "{erased}");
    let images: Vec<String> = {
        let rows = app
            .store
            .contact_merge(m["id"].as_i64().expect("id"))
            .await
            .expect("merge");
        vec![
            format!("{:?}", rows.survivor_before),
            format!("{:?}", rows.absorbed),
        ]
    };
    for image in images {
        for clear in ["13900139000", "周八", "周捌"] {
            assert!(!image.contains(clear), "{clear} in {image}");
        }
    }
    let r = admin
        .post(
            &format!("/api/v1/contact-merges/{}/undo", m["id"]),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.cleanup().await;
}

async fn an_import_and_its_undo_refresh_contact_pairs(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.token("admin1", "admin", None).await;
    let c = admin.customer("宁波海曙机电有限公司", json!({})).await;
    for person in [
        json!({"name": "周八", "mobile": "13900139000"}),
        json!({"name": "吴九", "mobile": "13700137000"}),
    ] {
        contact(&admin, id(&c), person).await;
    }
    assert!(pairs(&admin, "").await.is_empty());
    // A contacts file gives 吴九 周八's mobile: an update, and a pair once applied.
    let csv = format!(
        "客户编号,联系人,手机\n{code},吴九,13900139000\n",
        code = c["code"].as_str().expect("code")
    );
    let r = upload_import(&admin, "contacts", "联系人.csv", csv.into_bytes()).await;
    let report: Value = r.json().await.expect("report");
    assert_eq!(report["counts"]["updated"], 1, "{report}");
    apply_import(&admin, &report).await;
    let found = pairs(&admin, "").await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["reasons"], json!(["same_mobile"]));
    // Undone: 吴九's own mobile is back, and the pair goes with the update.
    ok_json(
        admin
            .post(&format!("/api/v1/imports/{}/undo", report["id"]), json!({}))
            .await,
    )
    .await;
    assert!(pairs(&admin, "").await.is_empty());
    app.cleanup().await;
}

async fn rights_over_contact_pairs(backend: Backend) {
    let app = spawn_app(backend).await;
    let rep = app.token("rep_east", "sales_rep", Some("华东")).await;
    let other_rep = app.token("rep_north", "sales_rep", Some("华北")).await;
    let service = app.token("service1", "service", None).await;
    let mine = id(&rep.customer("苏州恒瑞精密机械有限公司", json!({})).await);
    let theirs = id(&other_rep.customer("天津港通物流有限公司", json!({})).await);
    let a = contact(&rep, mine, json!({"name": "张伟", "mobile": "13800138000"})).await;
    let b = contact(
        &rep,
        mine,
        json!({"name": "张伟", "mobile": "13800138000", "title": "经理"}),
    )
    .await;
    contact(
        &other_rep,
        theirs,
        json!({"name": "李娜", "email": "li@gangtong.cn"}),
    )
    .await;
    contact(
        &other_rep,
        theirs,
        json!({"name": "李娜", "email": "LI@gangtong.cn"}),
    )
    .await;

    // Each rep sees their own team's pair only; the other's answers as missing.
    let own = pairs(&rep, "").await;
    assert_eq!(own.len(), 1, "{own:?}");
    let north = pairs(&other_rep, "").await;
    assert_eq!(north.len(), 1);
    let r = rep
        .get(&format!("/api/v1/contact-duplicates/{}", north[0]["id"]))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = rep
        .get(&format!("/api/v1/contact-duplicates?customer_id={theirs}"))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = rep
        .post(
            &format!("/api/v1/contact-duplicates/{}/reject", north[0]["id"]),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (x, y) = ids_of(&north[0]);
    let cx = ok_json(other_rep.get(&format!("/api/v1/contacts/{x}")).await).await;
    let cy = ok_json(other_rep.get(&format!("/api/v1/contacts/{y}")).await).await;
    assert_eq!(
        merge(&rep, &cx, &cy, json!({})).await.status(),
        StatusCode::NOT_FOUND
    );
    let r = rep.get("/api/v1/contact-duplicates?status=closed").await;
    let p = problem(r, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(first_error(&p).0, "status");

    // 客服 reads everyone's pairs but does not merge or reject them.
    assert_eq!(pairs(&service, "").await.len(), 2);
    let r = service
        .post(
            &format!("/api/v1/contact-duplicates/{}/reject", own[0]["id"]),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        merge(&service, &a, &b, json!({})).await.status(),
        StatusCode::FORBIDDEN
    );

    // The rep merges their own; the other rep cannot see or undo it.
    let m = merge(&rep, &a, &b, json!({})).await;
    assert_eq!(m.status(), StatusCode::CREATED);
    let m: Value = m.json().await.expect("json");
    let r = other_rep
        .post(
            &format!("/api/v1/contact-merges/{}/undo", m["id"]),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = other_rep
        .get(&format!("/api/v1/contact-merges/{}", m["id"]))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    ok_json(
        rep.post(
            &format!("/api/v1/contact-merges/{}/undo", m["id"]),
            json!({}),
        )
        .await,
    )
    .await;
    app.cleanup().await;
}
