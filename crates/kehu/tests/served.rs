//! `kehu serve` as a process.
//!
//! The segment index after a crash: the server killed (SIGKILL) while tag
//! assignments and orders are being written, started again, and every
//! segment answered by the restarted server equals the same query in SQL
//! — then again after more writes, which it follows from the change feed.
//!
//! A restarted server ranks everyone for the percentile schemes although
//! the day's classification is done: a new order moves its customer in
//! `value_percentile` at once.
//!
//! No secrets in the log: the server logging at `debug` while people sign
//! in (right and wrong), change a password, use tokens and cookies, and
//! write and search personal data; none of it appears in what it printed.

use kehu_core::segment::{compile, Vocabulary};
use kehu_server::classifier::Classifier;
use kehu_store::testing::TestDatabase;
use kehu_store::{Backend, ScopeFilter, Store};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const PASSWORD: &str = "Correct-Horse-Battery-7";

/// Segments compared after the restart (tags with subtrees, classes, fields, NOT).
const EXPRESSIONS: &[&str] = &[
    "需求标签",
    "风险标签 OR 营销标签/渠道来源",
    "华东 AND NOT 需求标签",
    "价值标签/高端客户 OR 年采购额 >= 10万",
    "NOT (行为标签 OR 服务标签) AND order_count >= 1",
];

fn kehu(url: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kehu"))
        .env("KEHU_KEY", kehu_store::testing::test_key_env())
        .arg("--db")
        .arg(url)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kehu");
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input.write_all(text.as_bytes()).expect("stdin");
    }
    let out = child.wait_with_output().expect("kehu output");
    assert!(
        out.status.success(),
        "kehu {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Demo data (`customers`, `seed`) and an administrator `name`: its bearer token.
fn demo_with_admin(url: &str, customers: &str, seed: &str, name: &str) -> String {
    kehu(
        url,
        &["demo", "--customers", customers, "--seed", seed],
        None,
    );
    kehu(
        url,
        &["user", "add", name, "--role", "admin", "--password-stdin"],
        Some(PASSWORD),
    );
    kehu(url, &["token", "create", name], None)
        .trim()
        .to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `kehu serve` on a free port, once /healthz answers.
async fn serve(url: &str) -> (Child, String) {
    serve_logging(url, None).await
}

/// `kehu serve`, its output (logging at `debug`) into `log` when given.
async fn serve_logging(url: &str, log: Option<&std::path::Path>) -> (Child, String) {
    let port = free_port();
    let output = || match log {
        Some(path) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("log file"),
        ),
        None => Stdio::null(),
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_kehu"))
        .env("KEHU_KEY", kehu_store::testing::test_key_env())
        .arg("--db")
        .arg(url)
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .env("KEHU_LOG", if log.is_some() { "debug" } else { "warn" })
        .env("KEHU_RATE_LIMIT", "off")
        .env("KEHU_BACKUP_DIR", "off")
        .env("KEHU_AUDIT_ANCHORS", "off")
        .stdout(output())
        .stderr(output())
        .spawn()
        .expect("start kehu serve");
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await {
            if r.status().is_success() {
                return (child, base);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("kehu serve did not come up on {base}");
}

async fn get(client: &reqwest::Client, token: &str, url: String) -> Value {
    let r = client
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.expect("json")
}

/// Every expression through the server equals the same plan in SQL.
async fn compare(store: &Store, client: &reqwest::Client, base: &str, token: &str) {
    let tags = store.tag_catalogue().await.expect("catalogue");
    let schemes = Classifier::new(store.clone())
        .published()
        .await
        .expect("schemes")
        .vocabulary();
    for e in EXPRESSIONS {
        let plan = compile(
            e,
            &Vocabulary {
                tags: &tags,
                schemes: &schemes,
            },
        )
        .unwrap_or_else(|err| panic!("{e}: {err:?}"))
        .plan;
        let q: String = form_urlencoded(e);
        let v = get(
            client,
            token,
            format!("{base}/api/v1/segment-results?expression={q}&limit=20"),
        )
        .await;
        let page: Vec<i64> = v["customers"]
            .as_array()
            .expect("customers")
            .iter()
            .filter_map(|c| c["id"].as_i64())
            .collect();
        let (n, ids) = store
            .segment_by_sql(&plan, &ScopeFilter::All, 0, 20)
            .await
            .expect("sql");
        assert_eq!((v["count"].as_u64(), page), (Some(n), ids), "{e}");
    }
}

fn form_urlencoded(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Who writes where, and how many requests were answered or failed (server gone).
#[derive(Clone)]
struct Writer {
    client: reqwest::Client,
    base: String,
    token: String,
    customers: Vec<i64>,
    tags: Vec<i64>,
    answered: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
}

/// Writes that change tags and purchase totals, all at once.
async fn write_burst(w: &Writer, round: usize) {
    let mut tasks = Vec::new();
    for (k, &c) in w.customers.iter().enumerate() {
        let (client, token, answered, failed) = (
            w.client.clone(),
            w.token.clone(),
            w.answered.clone(),
            w.failed.clone(),
        );
        let base = &w.base;
        let tag_url = format!(
            "{base}/api/v1/customers/{c}/tags/{}",
            w.tags[(k + round) % w.tags.len()]
        );
        let order_url = format!("{base}/api/v1/customers/{c}/orders");
        tasks.push(tokio::spawn(async move {
            let body = json!({"ordered_on": "2026-01-15", "amount_fen": 5_000_000 + k as i64});
            let results = [
                client.put(&tag_url).bearer_auth(&token).send().await,
                client
                    .post(&order_url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await,
            ];
            for r in results {
                let counter = if r.is_ok() { &answered } else { &failed };
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name(kehu_store::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread")] async fn $name() { super::$name(kehu_store::Backend::Postgres).await } )* }
    };
}

on_both_backends!(
    segments_equal_sql_after_a_killed_server,
    no_secrets_in_the_log,
    a_restarted_server_ranks_for_percentile_schemes
);

async fn segments_equal_sql_after_a_killed_server(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    let token = demo_with_admin(&db.url, "120", "5", "crasher");
    let client = reqwest::Client::new();
    let max = store.max_customer_id().await.expect("max id");
    let customers: Vec<i64> = (1..=max).step_by(3).collect();
    let catalogue = store.tag_catalogue().await.expect("catalogue");
    let manual: Vec<i64> = catalogue
        .nodes()
        .filter(|n| {
            n.mode == kehu_core::tags::TagMode::Manual
                && catalogue.children_of(Some(n.id)).next().is_none()
        })
        .map(|n| n.id)
        .take(12)
        .collect();

    // Killed in the middle of a burst of writes (rounds of them, until it is gone).
    let (mut server, base) = serve(&db.url).await;
    let mut writer = Writer {
        client: client.clone(),
        base,
        token: token.clone(),
        customers,
        tags: manual,
        answered: Arc::new(AtomicUsize::new(0)),
        failed: Arc::new(AtomicUsize::new(0)),
    };
    let (answered, failed) = (writer.answered.clone(), writer.failed.clone());
    let burst = {
        let w = writer.clone();
        tokio::spawn(async move {
            for round in 0..50 {
                write_burst(&w, round).await;
                if w.failed.load(Ordering::SeqCst) > 0 {
                    break;
                }
            }
        })
    };
    while answered.load(Ordering::SeqCst) < 60 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().expect("kill -9");
    let _ = server.wait();
    let _ = burst.await;
    assert!(
        failed.load(Ordering::SeqCst) > 0,
        "the server died with writes in flight"
    );

    // Started again: it reads everything and agrees with SQL.
    let (mut server, base) = serve(&db.url).await;
    compare(&store, &client, &base, &token).await;
    // More writes, followed from the change feed.
    writer.base = base.clone();
    write_burst(&writer, 51).await;
    compare(&store, &client, &base, &token).await;
    server.kill().expect("stop");
    let _ = server.wait();
    db.cleanup(store).await;
}

async fn no_secrets_in_the_log(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    kehu(
        &db.url,
        &[
            "user",
            "add",
            "watcher",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some(PASSWORD),
    );
    let token = kehu(&db.url, &["token", "create", "watcher"], None)
        .trim()
        .to_string();
    let dir = std::env::temp_dir().join(format!("kehu-log-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).expect("log dir");
    let log = dir.join("serve.log");
    let (mut server, base) = serve_logging(&db.url, Some(&log)).await;
    let api = |path: &str| format!("{base}/api/v1{path}");
    let bearer = reqwest::Client::new();
    let cookies = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");

    // Signing in: wrong, then right (a session cookie and a CSRF token).
    const WRONG: &str = "Wrong-Horse-Battery-8";
    const NEW_PASSWORD: &str = "Another-Horse-Battery-9";
    let login = |password: &str| {
        cookies
            .post(api("/session"))
            .json(&json!({"username": "watcher", "password": password}))
            .send()
    };
    let r = login(WRONG).await.expect("login");
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
    let r = login(PASSWORD).await.expect("login");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    let session_cookie = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .and_then(|v| v.split_once('='))
        .map(|(_, value)| value.to_string())
        .expect("a session cookie");
    let session: Value = r.json().await.expect("session");
    let csrf = session["csrf_token"].as_str().expect("csrf").to_string();
    let me = session["user"]["id"].as_i64().expect("user id");

    // Personal data written, searched (in a URL) and refused (bad input).
    const MOBILE: &str = "13987654321";
    const EMAIL: &str = "ouyang.ming@example.com";
    const ID_NUMBER: &str = "110105199003071239";
    let customer: Value = bearer
        .post(api("/customers"))
        .bearer_auth(&token)
        .json(
            &json!({"name": "日志测试有限公司", "industry": "制造业", "sales_region": "华东",
                      "cooperation_start_on": "2021-03-15"}),
        )
        .send()
        .await
        .expect("customer")
        .json()
        .await
        .expect("json");
    let id = customer["id"].as_i64().expect("id");
    for (body, ok) in [
        (
            json!({"name": "欧阳明", "mobile": MOBILE, "email": EMAIL, "id_number": ID_NUMBER}),
            true,
        ),
        (
            json!({"name": "欧阳明", "mobile": "1398765432x", "id_number": "110105199003071238"}),
            false,
        ),
    ] {
        let r = bearer
            .post(api(&format!("/customers/{id}/contacts")))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .expect("contact");
        assert_eq!(r.status().is_success(), ok, "{body}");
    }
    let r = bearer
        .get(api(&format!("/customers?q={MOBILE}")))
        .bearer_auth(&token)
        .send()
        .await
        .expect("search");
    assert!(r.status().is_success());
    let r = bearer
        .post(api("/privacy/people"))
        .bearer_auth(&token)
        .json(&json!({"email": EMAIL}))
        .send()
        .await
        .expect("people");
    assert!(r.status().is_success());

    // A new password (the session ends with it).
    let r = cookies
        .put(api(&format!("/users/{me}/password")))
        .header("x-csrf-token", &csrf)
        .json(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}))
        .send()
        .await
        .expect("password");
    assert!(r.status().is_success(), "{}", r.status());

    server.kill().expect("stop");
    let _ = server.wait();
    let printed = std::fs::read_to_string(&log).expect("the log");
    // It did log at debug (the test would pass on an empty log otherwise).
    assert!(printed.contains("serving: http://"), "{printed}");
    assert!(printed.contains("DEBUG"), "{printed}");
    let key_line = kehu_store::testing::test_key_env();
    let key = key_line.rsplit(':').next().unwrap_or(&key_line).to_string();
    for secret in [
        PASSWORD,
        WRONG,
        NEW_PASSWORD,
        token.as_str(),
        session_cookie.as_str(),
        csrf.as_str(),
        MOBILE,
        EMAIL,
        ID_NUMBER,
        "1398765432x",
        key.as_str(),
    ] {
        assert!(!printed.contains(secret), "{secret} in the log:\n{printed}");
    }
    if let Some((_, password)) = db
        .url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(user, _)| user.split_once(':'))
    {
        assert!(
            !printed.contains(&format!(":{password}@")),
            "the database password"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    db.cleanup(store).await;
}

/// A customer's stored class in one scheme.
async fn class_of(store: &Store, customer_id: i64, scheme: &str) -> Option<String> {
    first_of(
        store,
        "SELECT class AS v FROM customer_classes WHERE customer_id = $1 AND scheme_key = $2",
        vec![customer_id.into(), scheme.to_string().into()],
        |r| r.text("v"),
    )
    .await
}

/// The first row of a query, if any.
async fn first_of<T: Send>(
    store: &Store,
    sql: &str,
    args: Vec<kehu_store::db::Arg>,
    decode: impl kehu_store::db::Decode<T>,
) -> Option<T> {
    use kehu_store::db::Exec;
    store
        .db
        .clone()
        .fetch_optional(sql, args, decode)
        .await
        .expect("query")
}

async fn a_restarted_server_ranks_for_percentile_schemes(backend: Backend) {
    let (db, store) = TestDatabase::new(backend).await.expect("test database");
    let token = demo_with_admin(&db.url, "200", "3", "ranker");
    let today = store.today();
    // The first server does the day's classification, then stops.
    let (mut first, _) = serve(&db.url).await;
    for _ in 0..600 {
        if store.job_done_for("classify").await.expect("job") >= Some(today) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(store.job_done_for("classify").await.expect("job") >= Some(today));
    first.kill().expect("stop");
    let _ = first.wait();
    let low = first_of(
        &store,
        "SELECT customer_id AS v FROM customer_classes \
         WHERE scheme_key = 'value_percentile' AND class = '低价值' ORDER BY customer_id",
        vec![],
        |r| r.int("v"),
    )
    .await
    .expect("a demo customer of low value");

    // Started again: the classification stays done for today, yet it ranks.
    let dir = kehu_store::testing::TempDir::new("kehu-ranks");
    let log = dir.0.join("serve.log");
    let (mut second, base) = serve_logging(&db.url, Some(&log)).await;
    let mut ranked = false;
    for _ in 0..600 {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("ranked customers for the percentile schemes") {
            ranked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ranked, "the restarted server ranked everyone");
    // An order worth more than anyone's year: into the top 10 %.
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/customers/{low}/orders"))
        .bearer_auth(&token)
        .json(&json!({"ordered_on": today.to_string(), "amount_fen": 100_000_000_000_i64}))
        .send()
        .await
        .expect("POST order");
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        class_of(&store, low, "value_percentile").await.as_deref(),
        Some("高价值")
    );
    second.kill().expect("stop");
    let _ = second.wait();
    db.cleanup(store).await;
}
