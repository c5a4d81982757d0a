//! Evaluation speed in memory, no database: `cargo run --release -p kehu-core
//! --example eval_speed -- 200000`. Generates demo customers, then
//! evaluates the ten presets over all of them with one thread: scheme by
//! scheme from the facts, then measured once into a `MetricTable` and decided
//! from it (what a warm run does), checking both give the same classes.
//! `PER_METRIC=1` also times each distinct metric on its own.
use kehu_core::classify::presets::{compile_presets, preset_custom_fields};
use kehu_core::classify::{
    evaluation_order, ClassContext, Facts, MetricTable, Population, SetEvaluator,
};
use kehu_core::demo::{DemoConfig, DemoGenerator};
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc; // as the kehu binary

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
    let t = Instant::now();
    let facts: Vec<Facts> = DemoGenerator::new(DemoConfig::new(42, today, n))
        .zip(1..)
        .map(|(c, id)| c.facts(id))
        .collect();
    let orders: usize = facts.iter().map(|f| f.orders.len()).sum();
    println!(
        "generated {} customers, {orders} orders in {:?}",
        facts.len(),
        t.elapsed()
    );
    let schemes = compile_presets(&preset_custom_fields()).expect("presets compile");
    let order = evaluation_order(&schemes).expect("no cycle");
    let ordered: Vec<_> = order.iter().map(|&i| &schemes[i]).collect();
    let t = Instant::now();
    let pops: Vec<Population> = ordered
        .iter()
        .map(|s| Population::build(s, &facts, today))
        .collect();
    println!("populations: {:?}", t.elapsed());
    if std::env::var("PER_METRIC").is_ok() {
        per_metric(&ordered, &facts, today);
    }

    let t = Instant::now();
    let mut plain = Vec::with_capacity(facts.len() * ordered.len());
    for f in &facts {
        let mut classes: Vec<(&str, &str)> = Vec::new();
        for (k, s) in ordered.iter().enumerate() {
            let ctx = ClassContext {
                previous: None,
                others: Some(&classes),
            };
            let d = s.evaluate(f, today, &pops[k], ctx);
            classes.push((&s.key, &s.classes[d.class].key));
            plain.push(d.class as u8);
        }
    }
    println!("scheme by scheme: {:?}", t.elapsed());

    let eval = SetEvaluator::new(ordered.iter().copied().map(Some), today);
    let t = Instant::now();
    let mut table = MetricTable::new(eval.metrics(), today);
    for f in &facts {
        table.upsert(f.customer_id, eval.measure_metrics(f));
    }
    println!(
        "measured {} distinct metrics into the table: {:?}",
        eval.metrics().len(),
        t.elapsed()
    );
    let t = Instant::now();
    let binding = eval
        .bind(&table)
        .expect("the table holds the set's metrics");
    let table_pops = eval.populations(&binding, &table);
    let pop_refs: Vec<&Population> = table_pops.iter().collect();
    println!("populations from the table: {:?}", t.elapsed());
    let mut scratch = eval.scratch();
    let t = Instant::now();
    let mut set = Vec::with_capacity(plain.len());
    for row in 0..table.rows() {
        eval.load(&binding, &table, row, &pop_refs, &mut scratch);
        let mut classes: Vec<(&str, &str)> = Vec::new();
        for (k, s) in ordered.iter().enumerate() {
            let ctx = ClassContext {
                previous: None,
                others: Some(&classes),
            };
            let d = eval.decide_row(k, &binding, &table, row, &mut scratch, ctx);
            classes.push((&s.key, &s.classes[d.class].key));
            set.push(d.class as u8);
        }
    }
    println!("deciding from the table (warm): {:?}", t.elapsed());
    assert_eq!(
        plain, set,
        "the set evaluator must decide exactly as the schemes do"
    );
}

/// With `PER_METRIC=1`: each distinct metric timed alone over everyone.
fn per_metric(schemes: &[&kehu_core::classify::Scheme], facts: &[Facts], today: chrono::NaiveDate) {
    let mut seen: Vec<&kehu_core::classify::metric::Metric> = Vec::new();
    for s in schemes {
        for ind in &s.indicators {
            if seen.contains(&&ind.metric) {
                continue;
            }
            seen.push(&ind.metric);
            let t = Instant::now();
            let mut x = 0usize;
            for f in facts {
                if ind.metric.measure(f, today).value != kehu_core::classify::value::Value::Missing
                {
                    x += 1;
                }
            }
            println!(
                "{:>8.1} ms {x:>7} {}.{} {:?}",
                t.elapsed().as_secs_f64() * 1000.0,
                s.key,
                ind.key,
                ind.metric
            );
        }
    }
}
