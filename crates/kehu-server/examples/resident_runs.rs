//! Benchmark of whole-base runs in one server process (bench/resident.sh):
//! the first run reads and measures everyone and stores the changes; later
//! runs catch up from the change feed (here after one new order) and
//! decide everyone from the metrics and classes kept in memory; then a
//! draft of `value_tier` is simulated over everyone.
//!   cargo run --release -p kehu-server --example resident_runs -- DATABASE_URL AS_OF

use kehu_server::classifier::Classifier;
use kehu_store::classes::cause;
use kehu_store::Store;
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: resident_runs DATABASE_URL AS_OF")?;
    let as_of: chrono::NaiveDate = args.next().ok_or("AS_OF missing")?.parse()?;
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let classifier = Classifier::new(store.clone());
    let run = |label: &'static str| {
        let classifier = classifier.clone();
        async move {
            let t = Instant::now();
            let r = classifier
                .run_all(as_of, cause::EVALUATION, None, None)
                .await?;
            println!(
                "{label}: {:.3} s ({} customers, {} read and measured, {} changes stored)",
                t.elapsed().as_secs_f64(),
                r.customers,
                r.measured,
                r.changes.len()
            );
            Ok::<_, kehu_server::error::ApiError>(())
        }
    };
    run("first run (reads everyone)").await?;
    run("second run (nothing changed)").await?;
    // One new order for the first customer, as a user would add it.
    // Demo customers' ids start at 1.
    let first = 1;
    let order = kehu_core::order::OrderInput {
        ordered_on: Some(as_of.to_string()),
        amount_fen: Some(12_345_600),
        ..Default::default()
    }
    .validate(as_of)?;
    store.insert_order(first, &order).await?;
    run("third run (after one new order)").await?;
    let published = store.published_scheme_versions().await?;
    let vt = published
        .iter()
        .find(|v| v.scheme_key == "value_tier")
        .ok_or("no value_tier")?;
    let mut spec = vt.parsed_spec()?;
    spec.name.push_str("（草稿）");
    let t = Instant::now();
    let sim = classifier.simulate(vt.version + 1, spec, as_of).await?;
    println!(
        "simulating a value_tier draft: {:.3} s ({} customers, {} unchanged)",
        t.elapsed().as_secs_f64(),
        sim.customers,
        sim.unchanged
    );
    Ok(())
}
