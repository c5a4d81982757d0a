//! `kehu anomalies run|list` — the 异常数据报告 from the command line — and
//! `kehu calendar show|set FILE`, the holiday calendar it counts working
//! days on.

use anyhow::{Context, Result};
use kehu_core::anomaly::{describe, AnomalyKind};
use kehu_core::calendar::{calendar_text, parse_calendar};
use kehu_core::export::csv_field;
use kehu_store::anomalies::AnomalyFilter;
use kehu_store::ScopeFilter;
use std::collections::HashMap;
use std::io::Write;

/// Checks the data now and prints what changed.
pub async fn run(db: &str, json: bool) -> Result<()> {
    let store = crate::open_store(db).await?;
    let r = kehu_server::anomalies::run(&store, None)
        .await
        .map_err(crate::one_line)?
        .unwrap_or_default();
    if json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "{} findings: {} new, {} reopened, {} resolved; {} open",
            r.found, r.new, r.reopened, r.resolved, r.open
        );
    }
    Ok(())
}

/// The open findings (or only the overdue ones) as CSV.
pub async fn list(db: &str, overdue: bool) -> Result<()> {
    let store = crate::open_store(db).await?;
    let today = store.today();
    let filter = AnomalyFilter {
        overdue_on: overdue.then_some(today),
        ..AnomalyFilter::default()
    };
    let (found, _) = store
        .list_anomalies(&filter, &ScopeFilter::All, i64::MAX, 0)
        .await?;
    let mut ids: Vec<i64> = found.iter().map(|a| a.customer_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let customers: HashMap<i64, (String, String)> = store
        .customers_in(&ids)
        .await?
        .into_iter()
        .map(|c| (c.id, (c.code, c.name)))
        .collect();
    let users: HashMap<i64, String> = store.user_names().await?;
    let mut out = std::io::stdout().lock();
    if writeln!(
        out,
        "kind,code,name,description,assignee,found_on,due_on,overdue"
    )
    .is_err()
    {
        return Ok(());
    }
    let none = (String::new(), String::new());
    for a in found {
        let Some(kind) = AnomalyKind::parse(&a.kind) else {
            continue;
        };
        let (code, name) = customers.get(&a.customer_id).unwrap_or(&none);
        let assignee = a
            .assignee_id
            .and_then(|u| users.get(&u))
            .cloned()
            .unwrap_or_default();
        let line = writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            a.kind,
            csv_field(code),
            csv_field(name),
            csv_field(&describe(
                kind,
                &a.detail,
                false,
                &kehu_core::privacy::FieldRights::all_masked(),
            )),
            csv_field(&assignee),
            a.found_on,
            a.due_on,
            a.due_on < today
        );
        // A reader that stopped (`| head`) is not an error.
        if line.is_err() {
            break;
        }
    }
    Ok(())
}

pub async fn show_calendar(db: &str) -> Result<()> {
    let store = crate::open_store(db).await?;
    print!("{}", calendar_text(&store.calendar_days().await?));
    Ok(())
}

/// Replaces the calendar with a file's (one day per line; see README).
pub async fn set_calendar(db: &str, file: &std::path::Path) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let days = parse_calendar(&text).map_err(|e| {
        let lines: Vec<String> =
            e.0.iter()
                .map(|f| format!("{}: {}", f.field, f.reason.message(kehu_core::Lang::En)))
                .collect();
        anyhow::anyhow!("the calendar was not changed: {}", lines.join("; "))
    })?;
    let store = crate::open_store(db).await?;
    store.set_calendar_days(&days).await?;
    println!(
        "{} days: {} holidays, {} worked weekend days",
        days.len(),
        days.iter().filter(|d| !d.working).count(),
        days.iter().filter(|d| d.working).count()
    );
    Ok(())
}
