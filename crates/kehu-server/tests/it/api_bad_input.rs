//! Hostile and malformed input: always a 4xx problem, never a 500, never a partial write.

use crate::both_backends;
use crate::helpers::{first_error, problem, spawn_app, spawn_app_with, Session};
use kehu_store::Backend;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

both_backends!(
    malformed_bodies,
    metacharacters_are_data,
    fuzzed_customer_writes,
    requests_rate_limited_per_client
);

async fn raw(
    s: &Session,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    s.request(method, path)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request")
}

/// Announces a body larger than the limit and sends none of it: the server must refuse from the
/// headers alone. (Sending the body through an HTTP client races the server closing the
/// connection and fails with a broken pipe instead of showing the 413.)
async fn oversized_post(s: &Session, path: &str, length: usize) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = s.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let token = s.bearer.as_deref().expect("bearer session");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read response");
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

async fn malformed_bodies(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.token("admin1", "admin", None).await;
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "application/json",
            b"{\"name\": ".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "body",
        ),
        (
            "application/json",
            b"[1,2,3]".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "body",
        ),
        (
            "application/json",
            br#"{"name": 42}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "name",
        ),
        (
            "application/json",
            br#"{"name": "x", "employees": "many"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "employees",
        ),
        (
            "application/json",
            br#"{"name": "x", "custom_fields": []}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "custom_fields",
        ),
        (
            "application/json",
            br#"{"name": "x", "is_admin": true}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "is_admin",
        ),
        (
            "application/json",
            vec![
                b'{', b'"', b'n', b'a', b'm', b'e', b'"', b':', b'"', 0xff, 0xfe, b'"', b'}',
            ],
            StatusCode::BAD_REQUEST,
            "",
        ),
        (
            "text/plain",
            b"name=x".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "",
        ),
    ];
    for (ct, body, status, field) in cases {
        let shown = String::from_utf8_lossy(&body).to_string();
        let p = problem(
            raw(&s, Method::POST, "/api/v1/customers", ct, body).await,
            status,
        )
        .await;
        if !field.is_empty() {
            assert_eq!(first_error(&p).0, field, "body {shown}");
        }
    }
    let (status, body) = oversized_post(&s, "/api/v1/customers", 2 * 1024 * 1024).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
    // Uploads may be larger (32 MiB), not without end: the API and the page.
    for path in ["/api/v1/imports", "/imports"] {
        let (status, body) = oversized_post(&s, path, 33 * 1024 * 1024).await;
        assert_eq!(status, 413, "{path}: {body}");
    }
    let long = s
        .post(
            "/api/v1/customers",
            json!({"name": "长".repeat(101), "cooperation_start_on": "2021-01-01"}),
        )
        .await;
    assert_eq!(
        first_error(&problem(long, StatusCode::UNPROCESSABLE_ENTITY).await),
        ("name".to_string(), "too_long".to_string())
    );
    let p = problem(
        s.get("/api/v1/customers/not-a-number").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(p["status"], 400);
    let listed: Value = s
        .get("/api/v1/customers?with_total=true")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["total"], 0, "nothing was written");
    app.cleanup().await;
}

async fn metacharacters_are_data(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.token("admin1", "admin", None).await;
    let nasty = [
        "'; DROP TABLE customers; --",
        "<script>alert(1)</script>",
        "\" OR 1=1 --",
        "%_\\",
        "${jndi:ldap://x}",
        "{{7*7}}",
    ];
    for (i, n) in nasty.iter().enumerate() {
        let c = s
            .customer(
                &format!("{n}{i}"),
                json!({"city": n, "notes": n, "aliases": [n]}),
            )
            .await;
        assert_eq!(c["city"], *n);
        let found: Value = s
            .get(&format!(
                "/api/v1/customers?q={}&with_total=true",
                urlencode(n)
            ))
            .await
            .json()
            .await
            .expect("json");
        assert!(
            found["total"].as_i64().is_some_and(|t| t >= 1),
            "search for {n:?}: {found}"
        );
        let filtered: Value = s
            .get(&format!(
                "/api/v1/customers?city={}&with_total=true",
                urlencode(n)
            ))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(filtered["total"], 1, "filter on {n:?}");
    }
    let all: Value = s
        .get("/api/v1/customers?with_total=true")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(all["total"], nasty.len() as i64);

    // Where names become SQL — sorts, custom-field filters, segment
    // expressions — a nasty name is refused by name, never run.
    for path in [
        "/api/v1/customers?sort=name;DROP%20TABLE%20customers",
        "/api/v1/customers?sort=-(SELECT%201)",
        "/api/v1/customers?cf.x'%20OR%201=1--=1",
        "/api/v1/customers?name%20OR%201=1=x",
        "/api/v1/orders?sort=amount_fen%20DESC;--",
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
    }
    for expr in [
        "name = '; DROP TABLE customers; --",
        "city = \"' OR 1=1 --\"",
        "华东 AND (SELECT 1)",
    ] {
        let r = s
            .get(&format!(
                "/api/v1/segment-results?expression={}",
                urlencode(expr)
            ))
            .await;
        assert!(
            r.status() == StatusCode::OK || r.status() == StatusCode::UNPROCESSABLE_ENTITY,
            "{expr}: {}",
            r.status()
        );
    }
    // A custom field's label is data too; its key is checked.
    let p = problem(
        s.post(
            "/api/v1/custom-fields",
            json!({"key": "x'; DROP TABLE customers; --", "label": "坏", "group": "basic", "kind": "text"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(first_error(&p).0, "key");
    let r = s
        .post(
            "/api/v1/custom-fields",
            json!({"key": "xss_label", "label": "<img src=x onerror=alert(1)>", "group": "basic", "kind": "text"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let all: Value = s
        .get("/api/v1/customers?with_total=true")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(all["total"], nasty.len() as i64, "the table is intact");
    app.cleanup().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Arbitrary strings and numbers in every field of create and update:
/// each answer is 201/200 or a 4xx problem, and a refusal writes nothing.
async fn fuzzed_customer_writes(backend: Backend) {
    let app = spawn_app(backend).await;
    let s = app.token("admin1", "admin", None).await;
    let base = s.customer("模糊测试基准有限公司", json!({})).await;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let text = prop_oneof![
        any::<String>(),
        "[\\PC]{0,120}",
        Just(String::new()),
        "[0-9A-Z]{18}",
        "1[0-9]{10}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}"
    ];
    let field = prop_oneof![
        Just("name"),
        Just("uscc"),
        Just("industry"),
        Just("province"),
        Just("city"),
        Just("sales_region"),
        Just("founded_on"),
        Just("cooperation_start_on"),
        Just("status"),
        Just("code"),
        Just("notes")
    ];
    let number = prop_oneof![any::<i64>(), -5i64..5, Just(i64::MAX)];
    let strategy = (proptest::collection::vec((field, text), 1..5), number);
    // generated up front: the checks below are async
    let cases: Vec<_> = (0..48)
        .map(|_| strategy.new_tree(&mut runner).expect("generate").current())
        .collect();
    let mut version = base["version"].as_i64().expect("version");
    for (fields, n) in cases {
        let mut body = serde_json::Map::new();
        for (k, v) in &fields {
            body.insert(k.to_string(), Value::String(v.clone()));
        }
        body.insert("declared_annual_purchase_fen".into(), json!(n));
        let before: Value = s
            .get("/api/v1/customers?with_total=true")
            .await
            .json()
            .await
            .expect("json");
        let created = s
            .post("/api/v1/customers", Value::Object(body.clone()))
            .await;
        let status = created.status();
        assert!(
            status == StatusCode::CREATED || status.is_client_error(),
            "create {body:?} → {status}"
        );
        if status.is_client_error() {
            let p: Value = created.json().await.expect("problem");
            assert!(
                p["errors"].as_array().is_some_and(|e| !e.is_empty()) || p["code"] != "validation",
                "{p}"
            );
            let after: Value = s
                .get("/api/v1/customers?with_total=true")
                .await
                .json()
                .await
                .expect("json");
            assert_eq!(
                before["total"], after["total"],
                "refused create wrote nothing"
            );
        }
        body.insert("version".into(), json!(version));
        let updated = s
            .patch(
                &format!("/api/v1/customers/{}", base["id"]),
                Value::Object(body.clone()),
            )
            .await;
        let status = updated.status();
        assert!(
            status == StatusCode::OK || status.is_client_error(),
            "update {body:?} → {status}"
        );
        let now: Value = s
            .get(&format!("/api/v1/customers/{}", base["id"]))
            .await
            .json()
            .await
            .expect("json");
        if status == StatusCode::OK {
            version += 1;
        }
        assert_eq!(now["version"], version, "a refused update changed nothing");
    }
    app.cleanup().await;
}

/// Beyond the configured requests per minute, a client is answered 429
/// with Retry-After; other clients are not held up.
async fn requests_rate_limited_per_client(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.rate_limit = Some(kehu_server::rate_limit::RateLimit { per_minute: 5 })
    })
    .await;
    let busy = app.token("busy", "admin", None).await;
    let calm = app.token("calm", "admin", None).await;
    for _ in 0..5 {
        assert_eq!(busy.get("/api/v1/customers").await.status(), StatusCode::OK);
    }
    let r = busy.get("/api/v1/customers").await;
    let wait: u64 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&wait));
    let p = problem(r, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(p["code"], "too_many_requests");
    assert_eq!(calm.get("/api/v1/customers").await.status(), StatusCode::OK);
    app.cleanup().await;
}
