//! Background jobs of one server process, every ten minutes: the daily
//! rollup refresh (the 12-month window slides every day), the daily
//! re-classification of everyone (time-based rules: dormancy, growth
//! streaks, expired overrides), the daily anomaly report and
//! expired-session cleanup. `job_runs`
//! records the day each daily job last completed for, and a day's
//! classification is claimed in its own write transaction, so a restart or a
//! second server does not redo it.

use crate::classifier::Classifier;
use crate::AppState;
use kehu_store::classes::cause;
use std::time::Duration;

/// The `job_runs` name of the daily classification.
pub const CLASSIFY_JOB: &str = "classify";

pub fn spawn(state: AppState) {
    tokio::spawn(async move {
        loop {
            run_once(&state.classifier).await;
            // Rules that read rollups or classes follow the day's changes
            // (only differences are written, so a quiet round writes nothing).
            match crate::api::tags::apply_rules(&state, None).await {
                Ok(runs) => {
                    let changed: u64 = runs
                        .iter()
                        .map(|r| r.added + r.removed + r.proposed + r.expired)
                        .sum();
                    if changed > 0 {
                        tracing::info!(changed, "applied tag rules");
                    }
                }
                Err(e) => tracing::warn!(error = ?e, "applying tag rules failed; will retry"),
            }
            tokio::time::sleep(Duration::from_secs(600)).await;
        }
    });
}

/// One round of every job; each failure is logged and retried next round.
pub async fn run_once(classifier: &Classifier) {
    let store = classifier.store();
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
    match store.job_done_for(CLASSIFY_JOB).await {
        Ok(Some(day)) if day >= today => {
            if !classifier.has_populations_for(today) {
                // Done today by another process: rank for single re-evaluations.
                match classifier.warm_populations(today).await {
                    Ok(()) => tracing::info!(%today, "ranked customers for percentile schemes"),
                    Err(e) => {
                        tracing::warn!(error = %e, "ranking customers for percentile schemes failed")
                    }
                }
            }
        }
        Ok(_) => match classifier
            .run_all(today, cause::EVALUATION, None, Some(CLASSIFY_JOB))
            .await
        {
            Ok(r) => tracing::info!(
                customers = r.customers,
                changes = r.changes.len(),
                %today,
                "classified every customer"
            ),
            Err(e) => tracing::warn!(error = %e, "daily classification failed; will retry"),
        },
        Err(e) => tracing::warn!(error = %e, "reading the classification job state failed"),
    }
    // The day's anomaly report, once across servers (claimed with its findings).
    match store.job_done_for(crate::anomalies::ANOMALY_JOB).await {
        Ok(Some(day)) if day >= today => {}
        Ok(_) => match crate::anomalies::run(store, Some(crate::anomalies::ANOMALY_JOB)).await {
            Ok(Some(r)) => {
                tracing::info!(found = r.found, new = r.new, resolved = r.resolved, %today, "checked the data for anomalies")
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = ?e, "the anomaly check failed; will retry"),
        },
        Err(e) => tracing::warn!(error = %e, "reading the anomaly job state failed"),
    }
    if let Err(e) = store.delete_expired_sessions(chrono::Utc::now()).await {
        tracing::warn!(error = %e, "session cleanup failed");
    }
}
