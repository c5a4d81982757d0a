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
    bearer_tokens_and_unauthenticated
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
