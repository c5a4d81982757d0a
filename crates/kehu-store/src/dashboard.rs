//! What the role dashboards read beyond the segment index: revenue and
//! orders per span of days, and class changes between two days, for the
//! customers of a reader's scope.

use crate::db::{Exec, RowGet};
use crate::duplicates::scope_condition;
use crate::error::StoreError;
use crate::listing::{ScopeFilter, SqlBuilder};
use crate::Store;
use chrono::NaiveDate;

impl Store {
    /// Revenue (fen) and orders of the customers in `scope` per span
    /// `[bounds[k], bounds[k + 1])`; one read of the orders in the whole range.
    pub async fn revenue_by_span(
        &self,
        scope: &ScopeFilter,
        bounds: &[NaiveDate],
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        if bounds.len() < 2 {
            return Ok(Vec::new());
        }
        let mut b = SqlBuilder::new(self.db.backend(), "");
        let marks: Vec<String> = bounds.iter().map(|d| b.bind(*d)).collect();
        let columns: Vec<String> = marks
            .windows(2)
            .enumerate()
            .map(|(k, w)| {
                let within = format!("ordered_on >= {} AND ordered_on < {}", w[0], w[1]);
                format!(
                    "CAST(COALESCE(SUM(CASE WHEN {within} THEN amount_fen ELSE 0 END), 0) AS BIGINT) AS r{k}, \
                     CAST(COALESCE(SUM(CASE WHEN {within} THEN 1 ELSE 0 END), 0) AS BIGINT) AS n{k}"
                )
            })
            .collect();
        let mut conds = vec![format!(
            "ordered_on >= {} AND ordered_on < {}",
            marks[0],
            marks[marks.len() - 1]
        )];
        conds.extend(scope_condition(&mut b, scope, "customer_id"));
        let sql = format!(
            "SELECT {} FROM orders WHERE {}",
            columns.join(", "),
            conds.join(" AND ")
        );
        let spans = bounds.len() - 1;
        self.db
            .clone()
            .fetch_one(&sql, b.args, move |r: &dyn RowGet| {
                (0..spans)
                    .map(|k| Ok((r.int(&format!("r{k}"))?, r.int(&format!("n{k}"))?)))
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            })
            .await
    }

    /// How many customers of `scope` moved from one class of `scheme` to
    /// another with effect from `from` to `to` (inclusive): `(from, to, n)`,
    /// from None = first classified. Merged-in history is left out.
    pub async fn class_change_counts(
        &self,
        scheme: &str,
        from: NaiveDate,
        to: NaiveDate,
        scope: &ScopeFilter,
    ) -> Result<Vec<(Option<String>, String, i64)>, StoreError> {
        let mut b = SqlBuilder::new(self.db.backend(), "");
        let mut conds = vec![
            format!("scheme_key = {}", b.bind(scheme.to_string())),
            format!("effective_on >= {}", b.bind(from)),
            format!("effective_on <= {}", b.bind(to)),
            "merged_from IS NULL".to_string(),
        ];
        conds.extend(scope_condition(&mut b, scope, "customer_id"));
        let sql = format!(
            "SELECT from_class, to_class, COUNT(*) AS n FROM class_history WHERE {} \
             GROUP BY from_class, to_class ORDER BY from_class, to_class",
            conds.join(" AND ")
        );
        self.db
            .clone()
            .fetch_all(&sql, b.args, |r: &dyn RowGet| {
                Ok((r.opt_text("from_class")?, r.text("to_class")?, r.int("n")?))
            })
            .await
    }
}
