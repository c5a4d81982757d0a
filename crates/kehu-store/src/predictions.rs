//! Stored predictions: every fit of the models (`prediction_models`) and
//! each customer's latest outlook in `customers` (`p_alive`,
//! `expected_orders_90d`, `clv_fen`), where segments, lists and schemes
//! read them like any other derived column.
//!
//! *Invariant*: a fit's model row and every outlook it changed commit in
//! one transaction with a change-feed entry, so readers that keep
//! customers in memory (segments, classification) see the new values.

use crate::db::{Exec, RowGet};
use crate::error::StoreError;
use crate::{args, Store};
use chrono::{DateTime, NaiveDate, Utc};
use kehu_core::predict::{BgNbd, GammaGamma, Predicted};
use serde::Serialize;

/// One fit of the models, or why there was none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelRun {
    pub id: i64,
    pub as_of: NaiveDate,
    pub fitted_at: DateTime<Utc>,
    /// Customers with orders the fit saw, and how many of them bought again.
    pub customers: i64,
    pub repeat_buyers: i64,
    pub bg_nbd: Option<BgNbd>,
    pub log_likelihood: Option<f64>,
    /// The ridge the BG/NBD fit needed (0: plain maximum likelihood).
    pub penalizer: Option<f64>,
    pub gamma_gamma: Option<GammaGamma>,
    pub fit_ms: i64,
    pub error: Option<String>,
}

/// A customer whose stored outlook changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlookChange {
    pub customer_id: i64,
    pub predicted: Predicted,
}

/// Outlooks per statement.
const ROWS_PER_UPDATE: usize = 10_000;

impl Store {
    /// Records a fit (or a failed one) and the outlooks that changed; returns the run's id.
    pub async fn store_predictions(
        &self,
        run: &ModelRun,
        changes: &[OutlookChange],
    ) -> Result<i64, StoreError> {
        let mut tx = self.db.begin().await?;
        let (bg, gg) = (run.bg_nbd, run.gamma_gamma);
        let id = tx
            .fetch_one(
                "INSERT INTO prediction_models (as_of, fitted_at, customers, repeat_buyers, r, alpha, a, b, log_likelihood, penalizer, p, q, v, fit_ms, error) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
                args![
                    run.as_of,
                    run.fitted_at,
                    run.customers,
                    run.repeat_buyers,
                    bg.map(|m| m.r),
                    bg.map(|m| m.alpha),
                    bg.map(|m| m.a),
                    bg.map(|m| m.b),
                    run.log_likelihood,
                    run.penalizer,
                    gg.map(|m| m.p),
                    gg.map(|m| m.q),
                    gg.map(|m| m.v),
                    run.fit_ms,
                    run.error.clone()
                ],
                |r: &dyn RowGet| r.int("id"),
            )
            .await?;
        let sql = match tx.backend() {
            crate::Backend::Sqlite => {
                "UPDATE customers SET p_alive = j.value->>1, expected_orders_90d = j.value->>2, clv_fen = j.value->>3 \
                 FROM json_each($1) j WHERE customers.id = j.value->>0"
            }
            crate::Backend::Postgres => {
                "UPDATE customers SET p_alive = (j->>1)::bigint, expected_orders_90d = (j->>2)::bigint, clv_fen = (j->>3)::bigint \
                 FROM jsonb_array_elements($1) j WHERE customers.id = (j->>0)::bigint"
            }
        };
        for part in changes.chunks(ROWS_PER_UPDATE) {
            let rows = part
                .iter()
                .map(|c| {
                    let p = c.predicted;
                    serde_json::json!([c.customer_id, p.p_alive, p.expected_orders_90d, p.clv_fen])
                })
                .collect();
            tx.execute(sql, args![serde_json::Value::Array(rows)])
                .await?;
        }
        if !changes.is_empty() {
            crate::feed::record_everyone(&mut tx, crate::feed::FeedKind::Facts).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// The latest fits, newest first.
    pub async fn model_runs(&self, limit: i64) -> Result<Vec<ModelRun>, StoreError> {
        let mut db = self.db.clone();
        db.fetch_all(
            "SELECT * FROM prediction_models ORDER BY id DESC LIMIT $1",
            args![limit],
            decode_run,
        )
        .await
    }
}

fn decode_run(r: &dyn RowGet) -> Result<ModelRun, sqlx::Error> {
    let bg = match (
        r.float("r")?,
        r.float("alpha")?,
        r.float("a")?,
        r.float("b")?,
    ) {
        (Some(r), Some(alpha), Some(a), Some(b)) => Some(BgNbd { r, alpha, a, b }),
        _ => None,
    };
    let gg = match (r.float("p")?, r.float("q")?, r.float("v")?) {
        (Some(p), Some(q), Some(v)) => Some(GammaGamma { p, q, v }),
        _ => None,
    };
    Ok(ModelRun {
        id: r.int("id")?,
        as_of: r.opt_date("as_of")?.unwrap_or_default(),
        fitted_at: r.time("fitted_at")?,
        customers: r.int("customers")?,
        repeat_buyers: r.int("repeat_buyers")?,
        bg_nbd: bg,
        log_likelihood: r.float("log_likelihood")?,
        penalizer: r.float("penalizer")?,
        gamma_gamma: gg,
        fit_ms: r.int("fit_ms")?,
        error: r.opt_text("error")?,
    })
}
