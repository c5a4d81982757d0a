//! `kehu tasks generate --period P` — a period's strategy tasks, as the
//! scheduler makes them each quarter — `kehu tasks list`, and `kehu jobs
//! list|run NAME`, the scheduler's jobs.

use anyhow::{Context, Result};
use kehu_core::export::csv_field;
use kehu_core::strategy::parse_period;
use kehu_store::tasks::{TaskFilter, TaskScope};
use std::io::Write;
use std::time::Instant;

/// Makes the tasks the strategies call for in `period` (days from today on).
pub async fn generate(db: &str, period: &str, json: bool) -> Result<()> {
    let store = crate::open_store(db).await?;
    let period = parse_period(period)
        .map_err(|r| anyhow::anyhow!("--period: {}", r.message(kehu_core::Lang::En)))?;
    let today = store.today();
    anyhow::ensure!(period.end >= today, "--period: the period is over");
    let started = Instant::now();
    let g = kehu_server::tasks::generate(&store, &period, today.max(period.start), None)
        .await
        .map_err(crate::one_line)?;
    let seconds = started.elapsed().as_secs_f64();
    if json {
        let mut v = serde_json::to_value(&g)?;
        v["seconds"] = serde_json::json!(seconds);
        println!("{v}");
    } else {
        println!(
            "{}: {} customers with a strategy, {} tasks planned, {} new ({seconds:.1} s: reading {:.1} s, storing {:.1} s)",
            g.period,
            g.customers,
            g.planned,
            g.created,
            g.reading_ms as f64 / 1e3,
            g.storing_ms as f64 / 1e3
        );
        for c in &g.per_class {
            println!(
                "  {} · {}: {} customers, {} tasks",
                c.scheme_key, c.class_name, c.customers, c.tasks
            );
        }
    }
    Ok(())
}

/// Open tasks as CSV, by due time: `id,due,code,name,kind,title,owner,priority`.
pub async fn list(db: &str, owner: Option<&str>) -> Result<()> {
    let store = crate::open_store(db).await?;
    let owner_id = match owner {
        Some(name) => Some(
            store
                .auth_user_by_name(name)
                .await
                .with_context(|| format!("no user {name}"))?
                .user
                .id,
        ),
        None => None,
    };
    let filter = TaskFilter {
        owner_id,
        ..TaskFilter::default()
    };
    let (tasks, _) = store
        .list_tasks(&filter, &TaskScope::All, i64::MAX, 0)
        .await?;
    let mut ids: Vec<i64> = tasks.iter().map(|t| t.customer_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let customers: std::collections::HashMap<i64, (String, String)> = store
        .customers_in(&ids)
        .await?
        .into_iter()
        .map(|c| (c.id, (c.code, c.name)))
        .collect();
    let names = store.user_names().await?;
    let mut out = std::io::stdout().lock();
    if writeln!(out, "id,due,code,name,kind,title,owner,priority").is_err() {
        return Ok(());
    }
    for t in tasks {
        let (code, name) = customers.get(&t.customer_id).cloned().unwrap_or_default();
        let owner = t
            .owner_id
            .and_then(|o| names.get(&o).cloned())
            .unwrap_or_default();
        let due = kehu_server::tasks::to_local(t.due_at)
            .format("%Y-%m-%d %H:%M")
            .to_string();
        let fields = [
            t.id.to_string(),
            due,
            code,
            name,
            t.kind.key().to_string(),
            t.title,
            owner,
            t.priority.key().to_string(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        if writeln!(out, "{}", line.join(",")).is_err() {
            break;
        }
    }
    Ok(())
}

/// The scheduler's jobs: last run, duration, runs and failures, last error.
pub async fn jobs(db: &str) -> Result<()> {
    let store = crate::open_store(db).await?;
    let states: std::collections::HashMap<String, kehu_store::jobs::JobState> = store
        .job_states()
        .await?
        .into_iter()
        .map(|s| (s.job.clone(), s))
        .collect();
    println!("job,every,last_finished,duration_ms,runs,failures,last_error");
    for j in kehu_server::jobs::JOBS {
        let s = states.get(j.name);
        let fields = [
            j.name.to_string(),
            j.cadence.label(kehu_core::Lang::En),
            s.and_then(|s| s.finished_at)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
            s.and_then(|s| s.duration_ms)
                .map(|d| d.to_string())
                .unwrap_or_default(),
            s.map_or(0, |s| s.runs).to_string(),
            s.map_or(0, |s| s.failures).to_string(),
            s.and_then(|s| s.last_error.clone()).unwrap_or_default(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        println!("{}", line.join(","));
    }
    Ok(())
}

/// Runs one job now unless a server holds it.
pub async fn run_job(db: &str, name: &str) -> Result<()> {
    if kehu_server::jobs::find(name).is_none() {
        let names: Vec<&str> = kehu_server::jobs::JOBS.iter().map(|j| j.name).collect();
        anyhow::bail!("no job {name}: the jobs are {}", names.join(", "));
    }
    let store = crate::open_store(db).await?;
    // The backup job needs the keys and the backup directory, as the server has them.
    let settings = if name == kehu_server::backups::BACKUP_JOB {
        kehu_server::Settings {
            keyring: Some(
                kehu_server::backups::load_keyring(db, true).map_err(anyhow::Error::msg)?,
            ),
            key_file: kehu_server::backups::key_source(db),
            rate_limit: None,
            trusted_proxies: Default::default(),
            backups: kehu_server::backups::BackupSettings::from_env(db)
                .map_err(anyhow::Error::msg)?,
            ..kehu_server::Settings::offline(db)
        }
    } else {
        kehu_server::Settings {
            audit_anchors: kehu_server::anchors::file_from_env(db),
            ..kehu_server::Settings::offline(db)
        }
    };
    let state = kehu_server::AppState::new(store, settings);
    let report = kehu_server::jobs::run_now(&state, name)
        .await
        .map_err(crate::one_line)?;
    state.auditor.flush().await;
    if report.ran {
        println!("{}", report.summary);
    } else {
        println!(
            "{name}: not run (another server holds it, or it waits for today's classification)"
        );
    }
    Ok(())
}
