//! Background jobs of one server process: the daily rollup refresh (the
//! 12-month window slides every day) and expired-session cleanup. Both are
//! idempotent, so several servers running them at once do no harm, and
//! `job_runs` records the day the rollups were last refreshed for.

use kehu_store::Store;
use std::time::Duration;

pub fn spawn(store: Store) {
    tokio::spawn(async move {
        loop {
            let today = store.today();
            // Another server, an earlier run today or a bulk load may have done it.
            match store.rollups_current(today).await {
                Ok(true) => {}
                Ok(false) => match store.refresh_all_rollups(today).await {
                    Ok(n) => tracing::info!(customers = n, %today, "refreshed purchase rollups"),
                    Err(e) => tracing::warn!(error = %e, "rollup refresh failed; will retry"),
                },
                Err(e) => tracing::warn!(error = %e, "reading the rollup job state failed"),
            }
            if let Err(e) = store.delete_expired_sessions(chrono::Utc::now()).await {
                tracing::warn!(error = %e, "session cleanup failed");
            }
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
    });
}
