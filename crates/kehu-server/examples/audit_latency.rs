//! Benchmark of audit writes (bench/README.md): what a request pays to
//! record an entry (`Auditor::record`: a channel send) while the writer
//! appends and chains them in the background, measured per call over many
//! entries; then how fast the writer drains them, and the chain verified;
//! baseline in the same run: each entry appended synchronously in its own
//! transaction, as a request would pay without the writer.
//!   cargo run --release -p kehu-server --example audit_latency -- DATABASE_URL [N]

use kehu_server::audit::{entry, Auditor};
use kehu_store::Store;
use serde_json::json;
use std::time::Instant;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: audit_latency DATABASE_URL [N]")?;
    let n: usize = args
        .next()
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(20_000);
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let auditor = Auditor::spawn(store.clone());
    let mut micros = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let e = entry(
            None,
            "customer.update",
            format!("customer:{i}"),
            json!({"changed": {"industry": ["制造业", "IT服务"]}}),
        );
        let t = Instant::now();
        auditor.record(e);
        micros.push(t.elapsed().as_secs_f64() * 1e6);
        // Requests arrive over time, not all at once.
        if i % 100 == 99 {
            tokio::task::yield_now().await;
        }
    }
    let sent = started.elapsed().as_secs_f64();
    auditor.flush().await;
    let drained = started.elapsed().as_secs_f64();
    micros.sort_by(f64::total_cmp);
    println!(
        "record(): p50 {:.2} µs, p99 {:.2} µs, max {:.0} µs over {n} entries; all sent in {sent:.2} s, all stored in {drained:.2} s ({:.0} entries/s)",
        percentile(&micros, 0.5),
        percentile(&micros, 0.99),
        micros.last().copied().unwrap_or(0.0),
        n as f64 / drained
    );
    let baseline_n = n.min(2_000);
    let mut sync = Vec::with_capacity(baseline_n);
    for i in 0..baseline_n {
        let e = entry(None, "customer.update", format!("customer:{i}"), json!({}));
        let t = Instant::now();
        store.append_audit(&[e]).await?;
        sync.push(t.elapsed().as_secs_f64() * 1e6);
    }
    sync.sort_by(f64::total_cmp);
    println!(
        "baseline, one synchronous append per entry: p50 {:.0} µs, p99 {:.0} µs over {baseline_n} entries",
        percentile(&sync, 0.5),
        percentile(&sync, 0.99)
    );
    let t = Instant::now();
    match store.verify_audit(None).await? {
        Ok(v) => println!(
            "verified {} entries in {:.2} s",
            v.entries,
            t.elapsed().as_secs_f64()
        ),
        Err(b) => println!("chain broken: {b}"),
    }
    Ok(())
}
