//! Segment queries on a loaded database, side by side with the same
//! queries in SQL on the store's own database, and a tag rule applied to
//! everyone. `cargo run --release -p kehu-server --example segment_queries -- DATABASE_URL [RUNS]`
//! (bench/README.md). Each query is the exact count plus the first page
//! of 50 customers with their rows, as `/api/v1/segment-results` answers.

use kehu_core::segment::{compile, Vocabulary};
use kehu_core::tags::TagMode;
use kehu_server::classifier::Classifier;
use kehu_server::segments::Segments;
use kehu_store::tags::NewTag;
use kehu_store::{ScopeFilter, Store};
use std::time::{Duration, Instant};

/// 3–5 terms each, with NOT and tag subtrees.
const QUERIES: &[&str] = &[
    "华东 AND 战略型 AND NOT 投诉客户",
    "需求标签 AND 华东 AND NOT 风险标签",
    "(营销标签/渠道来源 OR 价值标签/高端客户) AND NOT 服务标签 AND value_tier != 优化型",
    "年采购额 >= 50万 AND 需求标签/价格敏感 AND NOT 风险标签/付款延迟",
    "行为标签 AND 华南 AND NOT lifecycle = 沉睡 AND NOT 基础标签/企业性质",
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: segment_queries DATABASE_URL [RUNS]")?;
    let runs: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(200);
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    let customers = store.customer_count().await?;
    let tags = store.tag_catalogue().await?;
    println!(
        "{customers} customers, {} tags; {runs} runs per query (SQL: {} runs)",
        tags.nodes().filter(|n| n.merged_into.is_none()).count(),
        (runs / 20).max(3)
    );
    let schemes = Classifier::new(store.clone())
        .published()
        .await?
        .vocabulary();
    let segments = Segments::new(store.clone());
    let t = Instant::now();
    segments.warm().await?;
    println!("index loaded in {:.2} s", t.elapsed().as_secs_f64());

    println!("| query | count | kehu p50 ms | kehu p99 ms | SQL p50 ms | SQL p99 ms | p50 ratio |");
    println!("|---|---|---|---|---|---|---|");
    for q in QUERIES {
        let plan = compile(
            q,
            &Vocabulary {
                tags: &tags,
                schemes: &schemes,
            },
        )
        .map_err(|e| format!("{q}: {e:?}"))?
        .plan;
        let mut ours = Vec::with_capacity(runs);
        let mut answer = None;
        for _ in 0..runs {
            let t = Instant::now();
            let a = segments.query(&plan, &ScopeFilter::All, 0, 50).await?;
            let rows = store.customers_in(&a.page).await?;
            ours.push(t.elapsed());
            assert_eq!(rows.len(), a.page.len());
            answer = Some(a);
        }
        let answer = answer.ok_or("no runs")?;
        let mut sql = Vec::new();
        for _ in 0..(runs / 20).max(3) {
            let t = Instant::now();
            let (n, ids) = store
                .segment_by_sql(&plan, &ScopeFilter::All, 0, 50)
                .await?;
            let rows = store.customers_in(&ids).await?;
            sql.push(t.elapsed());
            assert_eq!(
                (n, ids),
                (answer.count, answer.page.clone()),
                "{q}: index and SQL differ"
            );
            assert_eq!(rows.len(), answer.page.len());
        }
        ours.sort();
        sql.sort();
        let (o50, s50) = (percentile(&ours, 0.5), percentile(&sql, 0.5));
        println!(
            "| `{q}` | {} | {} | {} | {} | {} | {:.0}× |",
            answer.count,
            ms(o50),
            ms(percentile(&ours, 0.99)),
            ms(s50),
            ms(percentile(&sql, 0.99)),
            s50.as_secs_f64() / o50.as_secs_f64()
        );
    }

    // New rule tags applied to everyone: a narrow one and one most
    // customers carry; first run (writes who gets it), second run
    // (nothing changed).
    for (k, rule) in ["年采购额 >= 50万 AND 华东 AND NOT 风险标签", "NOT 风险标签"]
        .into_iter()
        .enumerate()
    {
        let name = format!("基准规则{}_{k}", chrono::Utc::now().timestamp());
        let compiled = compile(
            rule,
            &Vocabulary {
                tags: &tags,
                schemes: &schemes,
            },
        )
        .map_err(|e| format!("{rule}: {e:?}"))?;
        let parent = tags.resolve("价值标签").ok();
        let tag = store
            .create_tag(
                &NewTag {
                    parent_id: parent,
                    name,
                    mode: TagMode::Rule,
                    description: Some("segment_queries benchmark".into()),
                    rule: Some(compiled.stable.clone()),
                },
                1,
            )
            .await?;
        for label in ["first (stores who carries it)", "again (nothing changed)"] {
            let t = Instant::now();
            let c = segments
                .apply_rule(tag.id, TagMode::Rule, &compiled, None)
                .await?;
            println!(
                "rule `{rule}` applied to everyone, {label}: {:.2} s ({} added, {} removed)",
                t.elapsed().as_secs_f64(),
                c.added,
                c.removed
            );
        }
    }
    Ok(())
}
