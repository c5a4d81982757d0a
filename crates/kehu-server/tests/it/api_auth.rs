//! Sign-in, sessions, CSRF, tokens, rate limiting, the OpenAPI document.

use crate::both_backends;
use crate::helpers::{ok_json, password_of, problem, spawn_app};
use kehu_store::Backend;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

both_backends!(
    health_and_openapi,
    login_logout_and_session_rotation,
    csrf_required_for_cookie_sessions,
    login_rate_limited,
    password_change_ends_other_sessions,
    bearer_tokens_and_unauthenticated,
    api_tokens_made_listed_and_revoked
);

async fn health_and_openapi(backend: Backend) {
    let app = spawn_app(backend).await;
    let c = Client::new();
    assert_eq!(
        c.get(format!("{}/healthz", app.base))
            .send()
            .await
            .expect("healthz")
            .status(),
        StatusCode::OK
    );
    let doc: Value = c
        .get(format!("{}/api/openapi.json", app.base))
        .send()
        .await
        .expect("doc")
        .json()
        .await
        .expect("json");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "openapi version {}",
        doc["openapi"]
    );
    for path in [
        "/api/v1/customers",
        "/api/v1/customers/{id}",
        "/api/v1/contacts/{id}",
        "/api/v1/orders",
        "/api/v1/interactions/{id}",
        "/api/v1/custom-fields",
        "/api/v1/users",
        "/api/v1/session",
    ] {
        assert!(doc["paths"][path].is_object(), "OpenAPI lacks {path}");
    }
    assert!(doc["components"]["schemas"]["CustomerWrite"]["properties"]["uscc"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    app.cleanup().await;
}

async fn login_logout_and_session_rotation(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("li", "sales_rep", Some("华东一组")).await;
    let c = Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let url = format!("{}/api/v1/session", app.base);
    let wrong = c
        .post(&url)
        .json(&json!({"username": "li", "password": "nope-nope-nope"}))
        .send()
        .await
        .expect("login");
    let p = problem(wrong, StatusCode::BAD_REQUEST).await;
    assert_eq!(p["detail"], "用户名或密码错误");
    let r1 = c
        .post(&url)
        .json(&json!({"username": "li", "password": password_of("li")}))
        .send()
        .await
        .expect("login");
    let cookie1 = r1
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        cookie1.contains("HttpOnly") && cookie1.contains("SameSite=Lax"),
        "{cookie1}"
    );
    let s1: Value = r1.json().await.expect("json");
    assert_eq!(s1["user"]["username"], "li");
    let r2 = c
        .post(&url)
        .json(&json!({"username": "li", "password": password_of("li")}))
        .send()
        .await
        .expect("login again");
    let cookie2 = r2
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_ne!(
        cookie1.split(';').next(),
        cookie2.split(';').next(),
        "a new session token at every login"
    );
    let s2: Value = r2.json().await.expect("json");
    assert_eq!(
        c.get(&url).send().await.expect("current").status(),
        StatusCode::OK
    );
    let out = c
        .delete(&url)
        .header("X-CSRF-Token", s2["csrf_token"].as_str().unwrap_or(""))
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        c.get(&url).send().await.expect("after logout").status(),
        StatusCode::UNAUTHORIZED
    );
    app.cleanup().await;
}

async fn csrf_required_for_cookie_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut s = app.login("wang", "sales_rep", Some("华东一组")).await;
    let token = s.csrf.take();
    let body = json!({"name": "无令牌有限公司", "cooperation_start_on": "2022-01-01"});
    let p = problem(
        s.post("/api/v1/customers", body.clone()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(p["code"], "csrf");
    s.csrf = Some("wrong".into());
    problem(
        s.post("/api/v1/customers", body.clone()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    s.csrf = token;
    assert_eq!(
        s.post("/api/v1/customers", body).await.status(),
        StatusCode::CREATED
    );
    // reads need no token
    s.csrf = None;
    assert_eq!(s.get("/api/v1/customers").await.status(), StatusCode::OK);
    // Both refusals are in the audit log, with who and what.
    let auditor = app.token("audit1", "auditor", None).await;
    let refused = ok_json(auditor.get("/api/v1/audit?action=csrf.refused").await).await;
    let refused = refused["entries"].as_array().expect("entries");
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(refused[0]["target"], "POST /api/v1/customers");
    assert_eq!(refused[0]["actor_id"], s.user_id);
    app.cleanup().await;
}

async fn login_rate_limited(backend: Backend) {
    let app = spawn_app(backend).await;
    app.user("zhao", "sales_rep", None).await;
    let c = Client::new();
    let url = format!("{}/api/v1/session", app.base);
    for _ in 0..5 {
        let r = c
            .post(&url)
            .json(&json!({"username": "zhao", "password": "wrong-password"}))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    // now even the right password is refused until the window passes
    let r = c
        .post(&url)
        .header("Accept-Language", "en")
        .json(&json!({"username": "zhao", "password": password_of("zhao")}))
        .send()
        .await
        .expect("login");
    assert!(r.headers().contains_key("retry-after"));
    let p = problem(r, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(p["title"], "Too many attempts");
    let auditor = app.token("audit1", "auditor", None).await;
    for (action, n) in [("login_failed", 5), ("login_locked", 1)] {
        let found = ok_json(auditor.get(&format!("/api/v1/audit?action={action}")).await).await;
        assert_eq!(
            found["entries"].as_array().map(Vec::len),
            Some(n),
            "{action}: {found}"
        );
    }
    app.cleanup().await;
}

async fn password_change_ends_other_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.login("sun", "sales_rep", None).await;
    let b_client = Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");
    let r = b_client
        .post(format!("{}/api/v1/session", app.base))
        .json(&json!({"username": "sun", "password": password_of("sun")}))
        .send()
        .await
        .expect("second login");
    assert_eq!(r.status(), StatusCode::OK);
    let weak = a
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/users/{}/password", a.user_id),
        )
        .json(&json!({"current_password": password_of("sun"), "new_password": "12345678901"}))
        .send()
        .await
        .expect("put");
    let p = problem(weak, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(p["errors"][0]["field"], "new_password");
    let ok = a.request(reqwest::Method::PUT, &format!("/api/v1/users/{}/password", a.user_id)).json(&json!({"current_password": password_of("sun"), "new_password": "a much longer passphrase"})).send().await.expect("put");
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        a.get("/api/v1/session").await.status(),
        StatusCode::OK,
        "the session that changed it stays"
    );
    assert_eq!(
        b_client
            .get(format!("{}/api/v1/session", app.base))
            .send()
            .await
            .expect("b")
            .status(),
        StatusCode::UNAUTHORIZED,
        "other sessions end"
    );
    app.cleanup().await;
}

async fn bearer_tokens_and_unauthenticated(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.token("script", "admin", None).await;
    // bearer requests need no CSRF token
    assert_eq!(
        t.post(
            "/api/v1/customers",
            json!({"name": "脚本客户有限公司", "cooperation_start_on": "2020-05-01"})
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    let anon = Client::new();
    let p = problem(
        anon.get(format!("{}/api/v1/customers", app.base))
            .send()
            .await
            .expect("anon"),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(p["code"], "unauthorized");
    let bad = anon
        .get(format!("{}/api/v1/customers", app.base))
        .bearer_auth("not-a-token")
        .send()
        .await
        .expect("bad token");
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    app.cleanup().await;
}

/// Tokens are self-service: made from a signed-in session (never with a
/// token), listed without their secret, revoked by their user or an admin
/// (at once: the next request is refused); another user cannot see or
/// revoke them; a password change leaves them working; all audited.
async fn api_tokens_made_listed_and_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.login("scripter", "sales_rep", Some("华东一组")).await;
    let admin = app.token("tok_admin", "admin", None).await;
    let other = app
        .token("tok_other", "sales_manager", Some("华东一组"))
        .await;
    let mine = format!("/api/v1/users/{}/tokens", me.user_id);

    let p = problem(
        me.post(&mine, json!({"name": "  "})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "name", "{p}");
    let made = ok_json(me.post(&mine, json!({"name": "夜间导出脚本"})).await).await;
    let token = made["token"].as_str().expect("the token, once").to_string();
    let token_id = made["id"].as_i64().expect("id");
    assert_eq!(made["name"], "夜间导出脚本");
    // It works as a bearer token, and cannot make more tokens.
    let bearer = Client::new();
    let as_token = |method: reqwest::Method, path: &str| {
        bearer
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(&token)
    };
    let r = as_token(reqwest::Method::GET, "/api/v1/customers")
        .send()
        .await
        .expect("with the token");
    assert_eq!(r.status(), StatusCode::OK);
    let r = as_token(reqwest::Method::POST, &mine)
        .json(&json!({"name": "再来一个"}))
        .send()
        .await
        .expect("mint");
    problem(r, StatusCode::FORBIDDEN).await;
    // Nobody makes tokens for someone else, not even an admin.
    problem(
        admin.post(&mine, json!({"name": "冒名"})).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // Listed without the secret, to its user and to admins only.
    let listed = ok_json(me.get(&mine).await).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert!(!listed.to_string().contains(&token), "{listed}");
    assert!(listed[0]["last_used_at"].is_string(), "{listed}");
    assert_eq!(ok_json(admin.get(&mine).await).await, listed);
    problem(other.get(&mine).await, StatusCode::FORBIDDEN).await;
    problem(
        other.delete(&format!("{mine}/{token_id}")).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // Another user's token id under my user answers as missing.
    let admins = format!("/api/v1/users/{}/tokens", admin.user_id);
    let admin_tokens = ok_json(admin.get(&admins).await).await;
    let admin_token = admin_tokens[0]["id"].as_i64().expect("the admin's token");
    problem(
        me.delete(&format!("{mine}/{admin_token}")).await,
        StatusCode::NOT_FOUND,
    )
    .await;

    // A password change ends other sessions, not tokens.
    let r = me
        .send_json(
            reqwest::Method::PUT,
            &format!("/api/v1/users/{}/password", me.user_id),
            json!({"current_password": password_of("scripter"), "new_password": "Brand-New-Horse-42"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = as_token(reqwest::Method::GET, "/api/v1/customers")
        .send()
        .await
        .expect("after the change");
    assert_eq!(r.status(), StatusCode::OK);

    // Not with itself (a script would lock itself out).
    let r = as_token(reqwest::Method::DELETE, &format!("{mine}/{token_id}"))
        .send()
        .await
        .expect("self-revoke");
    problem(r, StatusCode::CONFLICT).await;
    // Revoked by an admin: refused from the next request on.
    let revoked = ok_json(admin.delete(&format!("{mine}/{token_id}")).await).await;
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    let r = as_token(reqwest::Method::GET, "/api/v1/customers")
        .send()
        .await
        .expect("revoked");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Revoking again changes nothing.
    let again = ok_json(me.delete(&format!("{mine}/{token_id}")).await).await;
    assert_eq!(again["revoked_at"], revoked["revoked_at"]);

    let auditor = app.token("tok_audit", "auditor", None).await;
    for (action, actor) in [
        ("token.create", me.user_id),
        ("token.revoke", admin.user_id),
    ] {
        let found = ok_json(auditor.get(&format!("/api/v1/audit?action={action}")).await).await;
        let entries = found["entries"].as_array().expect("entries");
        assert!(
            entries
                .iter()
                .any(|e| e["actor_id"] == actor && e["target"] == format!("user:{}", me.user_id)),
            "{action}: {found}"
        );
        assert!(!found.to_string().contains(&token));
    }
    app.cleanup().await;
}
