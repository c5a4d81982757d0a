//! The prediction job: fit BG/NBD and Gamma-Gamma on every customer's
//! orders as of a day, then store each customer's outlook (P(alive),
//! orders expected in 90 days, lifetime value) where it changed.

use crate::error::ApiError;
use chrono::{NaiveDate, Utc};
use kehu_core::predict::{
    outlook, summarize, BgNbd, FitError, GammaGamma, Predicted, Summary, DEFAULT_HORIZON,
};
use kehu_store::predictions::{ModelRun, OutlookChange};
use kehu_store::Store;
use serde::Serialize;
use std::time::Instant;
use utoipa::ToSchema;

/// The `job_runs` name of the daily fit.
pub const PREDICT_JOB: &str = "predictions";

/// Customers read per batch.
const READ_BATCH: i64 = 20_000;

/// What a run did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PredictReport {
    pub run_id: i64,
    pub customers: i64,
    pub repeat_buyers: i64,
    /// Customers whose stored outlook changed.
    pub changed: usize,
    pub reading_ms: u64,
    pub fit_ms: i64,
    pub storing_ms: u64,
    /// Why nothing was fitted (too little data), when nothing was.
    pub error: Option<String>,
}

/// One customer as the fit sees it.
struct Seen {
    customer_id: i64,
    history: Option<(Summary, f64)>,
    stored: Predicted,
}

/// Fits the models on everyone's orders up to `as_of` and stores the outlooks.
pub async fn run(store: &Store, as_of: NaiveDate) -> Result<PredictReport, ApiError> {
    let started = Instant::now();
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let batch = store.facts_after(after, READ_BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.customer_id;
        seen.extend(batch.iter().map(|f| {
            Seen {
                customer_id: f.customer_id,
                history: summarize(
                    &f.orders
                        .iter()
                        .map(|o| (o.on, o.amount_fen))
                        .collect::<Vec<_>>(),
                    as_of,
                ),
                stored: f.predicted,
            }
        }));
    }
    let reading_ms = started.elapsed().as_millis() as u64;
    let (run, changes, failure) =
        tokio::task::spawn_blocking(move || fit_and_predict(&seen, as_of))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    let stored_at = Instant::now();
    let run_id = store.store_predictions(&run, &changes).await?;
    let report = PredictReport {
        run_id,
        customers: run.customers,
        repeat_buyers: run.repeat_buyers,
        changed: changes.len(),
        reading_ms,
        fit_ms: run.fit_ms,
        storing_ms: stored_at.elapsed().as_millis() as u64,
        error: run.error.clone(),
    };
    match failure {
        // Not converging is a failure to see on the jobs page; too little data is not.
        Some(e @ FitError::NotConverged { .. }) => Err(ApiError::Internal(e.to_string())),
        _ => Ok(report),
    }
}

/// The fit and the outlooks that differ from the stored ones.
fn fit_and_predict(
    seen: &[Seen],
    as_of: NaiveDate,
) -> (ModelRun, Vec<OutlookChange>, Option<FitError>) {
    let started = Instant::now();
    let histories: Vec<&(Summary, f64)> = seen.iter().filter_map(|s| s.history.as_ref()).collect();
    let summaries: Vec<Summary> = histories.iter().map(|h| h.0).collect();
    let repeat_buyers = summaries.iter().filter(|s| s.frequency > 0.0).count() as i64;
    let bg = BgNbd::fit(&summaries);
    let gg = GammaGamma::fit(
        &histories
            .iter()
            .map(|(s, spend)| (s.frequency, *spend))
            .collect::<Vec<_>>(),
    )
    .ok();
    let mut run = ModelRun {
        id: 0,
        as_of,
        fitted_at: Utc::now(),
        customers: summaries.len() as i64,
        repeat_buyers,
        bg_nbd: None,
        log_likelihood: None,
        penalizer: None,
        gamma_gamma: None,
        fit_ms: 0,
        error: None,
    };
    let fitted = match bg {
        Ok(f) => f,
        Err(e) => {
            run.error = Some(e.to_string());
            run.fit_ms = started.elapsed().as_millis() as i64;
            return (run, Vec::new(), Some(e));
        }
    };
    run.bg_nbd = Some(fitted.params);
    run.log_likelihood = Some(fitted.log_likelihood);
    run.penalizer = Some(fitted.penalizer);
    run.gamma_gamma = gg.as_ref().map(|g| g.params);
    let changes = seen
        .iter()
        .filter_map(|s| {
            let predicted = s.history.map_or(Predicted::default(), |(summary, spend)| {
                Predicted::of(&outlook(
                    &fitted.params,
                    run.gamma_gamma.as_ref(),
                    &summary,
                    spend,
                    DEFAULT_HORIZON,
                ))
            });
            (predicted != s.stored).then_some(OutlookChange {
                customer_id: s.customer_id,
                predicted,
            })
        })
        .collect();
    run.fit_ms = started.elapsed().as_millis() as i64;
    (run, changes, None)
}
