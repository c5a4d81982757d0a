//! Background jobs of one server process: the daily rollup refresh (the
//! 12-month window slides every day) and expired-session cleanup. Both are
//! idempotent, so several servers running them at once do no harm.

use kehu_store::Store;
use std::time::Duration;

pub fn spawn(store: Store) {
    tokio::spawn(async move {
        let mut last_refresh = None;
        loop {
            let today = store.today();
            if last_refresh != Some(today) {
                match store.refresh_all_rollups(today).await {
                    Ok(n) => {
                        tracing::info!(customers = n, %today, "refreshed purchase rollups");
                        last_refresh = Some(today);
                    }
                    Err(e) => tracing::warn!(error = %e, "rollup refresh failed; will retry"),
                }
            }
            if let Err(e) = store.delete_expired_sessions(chrono::Utc::now()).await {
                tracing::warn!(error = %e, "session cleanup failed");
            }
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
    });
}
