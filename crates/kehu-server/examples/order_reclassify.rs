//! Benchmark of re-evaluating one customer after a new order, in the
//! server's process without HTTP (bench/README.md): for random customers,
//! the order stored as the API stores it (the order, the customer's
//! rollups and the change feed in one transaction), then the customer
//! re-evaluated in every published scheme today and the class changes
//! written — what the order request does before its tag rules, audit
//! entry and response. Each step timed apart and together.
//!   cargo run --release -p kehu-server --example order_reclassify -- DATABASE_URL [N]
//! Run `kehu classify` on the database first (the ranking for the
//! percentile schemes is built once here before timing).

use chrono::Utc;
use kehu_core::money::Fen;
use kehu_core::order::OrderData;
use kehu_server::classifier::Classifier;
use kehu_store::classes::cause;
use kehu_store::db::{decode_n, Exec};
use kehu_store::Store;
use rand::{Rng, SeedableRng};
use std::time::Instant;

fn report(label: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "{label}: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} orders",
        at(0.5),
        at(0.9),
        at(0.99),
        ms.last().copied().unwrap_or(0.0),
        ms.len()
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: order_reclassify DATABASE_URL [N]")?;
    let n: usize = args.next().map(|v| v.parse()).transpose()?.unwrap_or(2000);
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let classifier = Classifier::new(store.clone());
    let t = Instant::now();
    classifier.rank_today().await?;
    println!(
        "ranked everyone for the percentile schemes in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let ids = store
        .db
        .clone()
        .fetch_all("SELECT id AS n FROM customers", vec![], decode_n)
        .await?;
    if ids.is_empty() {
        return Err("the database holds no customer: run kehu demo first".into());
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let (mut write, mut evaluate, mut both, mut changed) = (vec![], vec![], vec![], 0);
    let warm_up = 100;
    for i in 0..warm_up + n {
        let customer = ids[rng.gen_range(0..ids.len())];
        let order = OrderData {
            order_no: None,
            ordered_on: store.today(),
            amount: Fen::new(rng.gen_range(100_000..50_000_000)).map_err(|r| format!("{r:?}"))?,
            product_line: Some("基准测试".into()),
            notes: None,
        };
        let t = Instant::now();
        store.insert_order(customer, &order).await?;
        let stored = t.elapsed().as_secs_f64() * 1000.0;
        let changes = classifier
            .reclassify(customer, cause::DATA_CHANGE, None)
            .await?;
        let total = t.elapsed().as_secs_f64() * 1000.0;
        if i >= warm_up {
            write.push(stored);
            evaluate.push(total - stored);
            both.push(total);
            changed += usize::from(!changes.is_empty());
        }
    }
    println!(
        "{} orders on {} customers ({} changed a class), {}",
        both.len(),
        ids.len(),
        changed,
        Utc::now().format("%F")
    );
    report("the order stored (order, rollups, feed)", write);
    report("re-evaluated in every scheme, changes written", evaluate);
    report("both", both);
    Ok(())
}
