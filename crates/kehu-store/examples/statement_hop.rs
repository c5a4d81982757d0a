//! What one SQLite point query costs through sqlx's driver (a thread per
//! connection, the statement handed there and its rows back) against the
//! store's own path (`Db`'s statements on the calling thread, `lite.rs`).
//!
//!     cargo run --release -p kehu-store --example statement_hop [-- ROUNDS]
use kehu_store::args;
use kehu_store::db::{Db, Exec, RowGet, Workload};
use std::time::Instant;

const QUERIES: i64 = 20_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args().nth(1).map_or(Ok(3), |a| a.parse())?;
    let dir = std::env::temp_dir().join(format!("kehu-statement-hop-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("hop.db").display());
    let mut db = Db::connect_with(&url, Workload::Server).await?;
    db.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)",
        vec![],
    )
    .await?;
    db.execute(
        "INSERT INTO t (id, v) SELECT value, value * 7 FROM json_each('[1,2,3,4,5,6,7,8,9,10]')",
        vec![],
    )
    .await?;
    let pool = db.sqlite_pool().ok_or("not SQLite")?.clone();
    let sql = "SELECT v FROM t WHERE id = $1";
    for round in 1..=rounds {
        let mut conn = pool.acquire().await?;
        let started = Instant::now();
        for i in 0..QUERIES {
            let _: (i64,) = sqlx::query_as(sql)
                .bind(i % 10 + 1)
                .fetch_one(&mut *conn)
                .await?;
        }
        let through_sqlx = started.elapsed().as_secs_f64() * 1e6 / QUERIES as f64;
        drop(conn);
        let mut conn = db.acquire().await?;
        let started = Instant::now();
        for i in 0..QUERIES {
            conn.fetch_one(sql, args![i % 10 + 1], |r: &dyn RowGet| r.int("v"))
                .await?;
        }
        let on_this_thread = started.elapsed().as_secs_f64() * 1e6 / QUERIES as f64;
        println!(
            "round {round}: sqlx's driver {through_sqlx:.1} µs a query, the store's own {on_this_thread:.1} µs ({QUERIES} queries each)"
        );
    }
    db.close().await;
    drop(db);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
