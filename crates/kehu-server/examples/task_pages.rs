//! Benchmark of the "my tasks" views (bench/README.md): a rep with 5,000
//! open tasks (taken from the generated ones), the server on a local port,
//! then each view timed over HTTP with the rep's session — the API's list
//! (count + first 50 by due time, with customers' and owners' names) and
//! the /tasks page — and, as the baseline in the same run, the list's two
//! SQL statements alone straight to the database.
//!   cargo run --release -p kehu-server --example task_pages -- DATABASE_URL [RUNS]
//! Run `kehu tasks generate` on a loaded, classified demo database first.

use kehu_server::api::dto::UserCreate;
use kehu_server::{Application, Settings};
use kehu_store::db::{decode_n, Arg, Exec, RowGet};
use kehu_store::Store;
use std::time::Instant;

const OPEN_TASKS: i64 = 5_000;
const PASSWORD: &str = "Bench-Tasks-Password-7";

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn summary(label: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{label}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} runs",
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or(0.0),
        ms.len()
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: task_pages DATABASE_URL [RUNS]")?;
    let runs: usize = args.next().map(|v| v.parse()).transpose()?.unwrap_or(500);
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let rep = match store.auth_user_by_name("bench_rep").await {
        Ok(u) => u.user.id,
        Err(_) => {
            kehu_server::api::users::create_user(
                &store,
                UserCreate {
                    username: "bench_rep".into(),
                    display_name: None,
                    role: "sales_rep".into(),
                    team: Some("华东".into()),
                    password: Some(PASSWORD.into()),
                },
            )
            .await
            .map_err(|e| format!("{e:?}"))?
            .user
            .id
        }
    };
    let mut db = store.db.clone();
    // The rep's open tasks: 5,000 of the generated ones, spread over the quarter.
    let ids: Vec<i64> = db
        .fetch_all(
            "SELECT id AS n FROM tasks WHERE status = 'open' ORDER BY customer_id, id",
            vec![],
            decode_n,
        )
        .await?;
    if (ids.len() as i64) < OPEN_TASKS {
        return Err(format!(
            "only {} open tasks: run kehu tasks generate first",
            ids.len()
        )
        .into());
    }
    let step = ids.len() / OPEN_TASKS as usize;
    let mut tx = store.db.begin_write().await?;
    tx.execute(
        "UPDATE tasks SET owner_id = NULL WHERE owner_id = $1",
        vec![Arg::from(rep)],
    )
    .await?;
    for chunk in ids
        .iter()
        .step_by(step)
        .take(OPEN_TASKS as usize)
        .collect::<Vec<_>>()
        .chunks(500)
    {
        let list: Vec<String> = chunk.iter().map(|id| id.to_string()).collect();
        tx.execute(
            &format!(
                "UPDATE tasks SET owner_id = $1 WHERE id IN ({})",
                list.join(",")
            ),
            vec![Arg::from(rep)],
        )
        .await?;
    }
    tx.commit().await?;

    let app = Application::build(Settings {
        database_url: url.clone(),
        addr: "127.0.0.1:0".into(),
        secure_cookies: false,
        run_jobs: false,
        mail: None,
        keyring: None,
        key_file: None,
        rate_limit: None,
        trusted_proxies: Default::default(),
        backups: None,
        audit_anchors: None,
        today: None,
    })
    .await?;
    let base = format!("http://{}", app.local_addr().ok_or("no address")?);
    tokio::spawn(app.run(std::future::pending()));
    let client = reqwest::Client::builder().cookie_store(true).build()?;
    let r = client
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"username": "bench_rep", "password": PASSWORD}))
        .send()
        .await?;
    if !r.status().is_success() {
        return Err(format!("sign-in: {}", r.status()).into());
    }
    let total: serde_json::Value = client
        .get(format!("{base}/api/v1/tasks?view=open"))
        .send()
        .await?
        .json()
        .await?;
    println!("the rep's open tasks: {}", total["total"]);
    for (label, path) in [
        (
            "GET /api/v1/tasks?view=open (count + first 50)",
            "/api/v1/tasks?view=open",
        ),
        ("GET /api/v1/tasks?view=week", "/api/v1/tasks?view=week"),
        ("GET /tasks?view=open (the page)", "/tasks?view=open"),
    ] {
        for _ in 0..20 {
            client
                .get(format!("{base}{path}"))
                .send()
                .await?
                .bytes()
                .await?;
        }
        let mut ms = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let r = client.get(format!("{base}{path}")).send().await?;
            if !r.status().is_success() {
                return Err(format!("{path}: {}", r.status()).into());
            }
            r.bytes().await?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        summary(label, ms);
    }
    // Baseline: the list's two statements, no HTTP, no names.
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs + 20 {
        let t = Instant::now();
        let n = db
            .fetch_one(
                "SELECT COUNT(*) AS n FROM tasks WHERE status = 'open' AND owner_id = $1",
                vec![Arg::from(rep)],
                decode_n,
            )
            .await?;
        let rows = db
            .fetch_all(
                "SELECT id, customer_id, title, due_at FROM tasks WHERE status = 'open' AND owner_id = $1 \
                 ORDER BY due_at, priority, id LIMIT 50",
                vec![Arg::from(rep)],
                |r: &dyn RowGet| r.int("id"),
            )
            .await?;
        assert!(n >= rows.len() as i64);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    summary(
        "baseline: the same COUNT + first 50 in SQL",
        ms.split_off(20),
    );
    Ok(())
}
