//! The holiday calendar and the 异常数据报告: finding suspicious data with
//! SQL (and a pass over contacts for phone shapes), and keeping one row per
//! finding that stays open, with its assignee and due date, until the data
//! no longer shows it.
//!
//! *Invariant*: a run records its findings in one transaction: new ones are
//! inserted, findings resolved earlier and seen again are reopened (with a
//! new due date), open ones no longer seen are resolved. A daily run claims
//! its day in the same transaction, so several servers run it once.

use crate::db::{decode_n, fetch_in, placeholders, Arg, Exec, RowGet};
use crate::duplicates::scope_condition;
use crate::error::StoreError;
use crate::listing::{ScopeFilter, SqlBuilder};
use crate::{args, Store};
use chrono::NaiveDate;
use kehu_core::anomaly::{is_amount_outlier, AnomalyKind};
use kehu_core::calendar::CalendarDay;
use kehu_core::ident::Mobile;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// Something suspicious the data shows now.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: AnomalyKind,
    pub customer_id: i64,
    /// The contact, order, interaction or pair; 0 for the customer itself.
    pub record_id: i64,
    pub detail: Value,
}

/// A stored finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anomaly {
    pub id: i64,
    pub kind: String,
    pub customer_id: i64,
    pub record_id: i64,
    pub detail: Value,
    pub assignee_id: Option<i64>,
    pub found_on: NaiveDate,
    pub due_on: NaiveDate,
    /// open | resolved
    pub status: String,
    pub resolved_on: Option<NaiveDate>,
}

const COLUMNS: &str =
    "id, kind, customer_id, record_id, detail, assignee_id, found_on, due_on, status, resolved_on";

fn decode(r: &dyn RowGet) -> Result<Anomaly, sqlx::Error> {
    Ok(Anomaly {
        id: r.int("id")?,
        kind: r.text("kind")?,
        customer_id: r.int("customer_id")?,
        record_id: r.int("record_id")?,
        detail: r.json("detail")?,
        assignee_id: r.opt_int("assignee_id")?,
        found_on: r.opt_date("found_on")?.unwrap_or_default(),
        due_on: r.opt_date("due_on")?.unwrap_or_default(),
        status: r.text("status")?,
        resolved_on: r.opt_date("resolved_on")?,
    })
}

/// What a run changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AnomalyRun {
    /// Findings the data shows now.
    pub found: usize,
    pub new: u64,
    pub reopened: u64,
    pub resolved: u64,
    /// Open after the run.
    pub open: u64,
}

/// Which stored findings to list.
#[derive(Debug, Clone, Default)]
pub struct AnomalyFilter {
    pub kind: Option<String>,
    /// open (default) | resolved
    pub status: Option<String>,
    pub assignee_id: Option<i64>,
    /// Only open findings due before this day.
    pub overdue_on: Option<NaiveDate>,
}

impl AnomalyFilter {
    fn conditions(&self, b: &mut SqlBuilder, scope: &ScopeFilter) -> String {
        let status = self.status.clone().unwrap_or_else(|| "open".into());
        let mut conds = vec![format!("status = {}", b.bind(status))];
        if let Some(k) = &self.kind {
            conds.push(format!("kind = {}", b.bind(k.clone())));
        }
        if let Some(a) = self.assignee_id {
            conds.push(format!("assignee_id = {}", b.bind(a)));
        }
        if let Some(d) = self.overdue_on {
            conds.push(format!("due_on < {}", b.bind(d)));
        }
        conds.extend(scope_condition(b, scope, "customer_id"));
        conds.join(" AND ")
    }
}

/// Open findings of one kind, and how many are overdue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindCount {
    pub kind: String,
    pub open: i64,
    pub overdue: i64,
}

fn key_of(kind: &str, customer_id: i64, record_id: i64) -> (String, i64, i64) {
    (kind.to_string(), customer_id, record_id)
}

impl Store {
    /// The configured holidays and make-up working days, by date.
    pub async fn calendar_days(&self) -> Result<Vec<CalendarDay>, StoreError> {
        self.db
            .clone()
            .fetch_all(
                "SELECT day, working, name FROM calendar_days ORDER BY day",
                vec![],
                |r: &dyn RowGet| {
                    Ok(CalendarDay {
                        day: r.opt_date("day")?.unwrap_or_default(),
                        working: r.boolean("working")?,
                        name: r.text("name")?,
                    })
                },
            )
            .await
    }

    /// Replaces the calendar.
    pub async fn set_calendar_days(&self, days: &[CalendarDay]) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().await?;
        tx.execute("DELETE FROM calendar_days", vec![]).await?;
        for d in days {
            tx.execute(
                "INSERT INTO calendar_days (day, working, name) VALUES ($1, $2, $3)",
                args![d.day, d.working, d.name.clone()],
            )
            .await?;
        }
        tx.commit().await
    }

    /// Everything the data shows as suspicious as of `today` (whole
    /// tables read, on SQLite on a blocking thread).
    pub async fn find_anomalies(&self, today: NaiveDate) -> Result<Vec<Finding>, StoreError> {
        let mut db = self.db.clone();
        let mut found = Vec::new();
        let finding = |kind, customer_id, record_id, detail| Finding {
            kind,
            customer_id,
            record_id,
            detail,
        };
        for (id, fields) in db
            .fetch_bulk(
                "SELECT id, missing_fields FROM customers WHERE missing_fields <> '[]' ORDER BY id",
                vec![],
                |r: &dyn RowGet| Ok((r.int("id")?, r.json("missing_fields")?)),
            )
            .await?
        {
            found.push(finding(
                AnomalyKind::MissingFields,
                id,
                0,
                json!({ "fields": fields }),
            ));
        }
        for (id, customer_id, name, landline, mobile, email) in db
            .fetch_bulk(
                "SELECT id, customer_id, name, landline, mobile, email FROM contacts ORDER BY id",
                vec![],
                |r: &dyn RowGet| {
                    Ok((
                        r.int("id")?,
                        r.int("customer_id")?,
                        r.text("name")?,
                        r.opt_text("landline")?,
                        r.opt_text("mobile")?,
                        r.opt_text("email")?,
                    ))
                },
            )
            .await?
        {
            match (&landline, &mobile, &email) {
                (None, None, None) => found.push(finding(
                    AnomalyKind::UnreachableContact,
                    customer_id,
                    id,
                    json!({ "contact": name }),
                )),
                (Some(l), _, _) if Mobile::parse(l).is_ok() => found.push(finding(
                    AnomalyKind::MobileInLandline,
                    customer_id,
                    id,
                    json!({ "contact": name, "landline": l }),
                )),
                _ => {}
            }
        }
        // A customer's own dates are told apart by a negative record id.
        let dated = [
            ("order", "SELECT id, customer_id, ordered_on AS day FROM orders WHERE ordered_on > $1"),
            (
                "interaction",
                "SELECT id, customer_id, occurred_on AS day FROM interactions WHERE occurred_on > $1",
            ),
            (
                "founded_on",
                "SELECT -1 AS id, id AS customer_id, founded_on AS day FROM customers WHERE founded_on > $1",
            ),
            (
                "cooperation_start_on",
                "SELECT -2 AS id, id AS customer_id, cooperation_start_on AS day FROM customers WHERE cooperation_start_on > $1",
            ),
        ];
        for (what, sql) in dated {
            for (id, customer_id, day) in db
                .fetch_bulk(sql, args![today], |r: &dyn RowGet| {
                    Ok((r.int("id")?, r.int("customer_id")?, r.opt_date("day")?))
                })
                .await?
            {
                let day = day.map(|d| d.to_string()).unwrap_or_default();
                found.push(finding(
                    AnomalyKind::FutureDate,
                    customer_id,
                    id,
                    json!({ "what": what, "date": day }),
                ));
            }
        }
        for (id, customer_id, order_no, amount, total, n) in db
            .fetch_bulk(
                "SELECT o.id, o.customer_id, o.order_no, o.amount_fen, s.total, s.n FROM orders o \
                 JOIN (SELECT customer_id, CAST(SUM(amount_fen) AS BIGINT) AS total, COUNT(*) AS n FROM orders \
                       GROUP BY customer_id HAVING COUNT(*) > $1) s ON s.customer_id = o.customer_id \
                 WHERE o.amount_fen * (s.n - 1) > $2 * (s.total - o.amount_fen) ORDER BY o.id",
                args![
                    kehu_core::anomaly::OUTLIER_MIN_OTHERS,
                    kehu_core::anomaly::OUTLIER_FACTOR
                ],
                |r: &dyn RowGet| {
                    Ok((
                        r.int("id")?,
                        r.int("customer_id")?,
                        r.opt_text("order_no")?,
                        r.int("amount_fen")?,
                        r.int("total")?,
                        r.int("n")?,
                    ))
                },
            )
            .await?
        {
            let (others_total, others) = (total - amount, n - 1);
            // The SQL narrows; the rule is core's.
            if is_amount_outlier(amount, others_total, others) {
                found.push(finding(
                    AnomalyKind::AmountOutlier,
                    customer_id,
                    id,
                    json!({
                        "order": order_no.unwrap_or_else(|| format!("#{id}")),
                        "amount_fen": amount,
                        "typical_fen": others_total / others.max(1),
                    }),
                ));
            }
        }
        for (customer_id, start, first) in db
            .fetch_bulk(
                "SELECT c.id, c.cooperation_start_on AS start, MIN(o.ordered_on) AS first FROM customers c \
                 JOIN orders o ON o.customer_id = c.id \
                 WHERE c.cooperation_start_on IS NOT NULL AND o.ordered_on < c.cooperation_start_on \
                 GROUP BY c.id, c.cooperation_start_on ORDER BY c.id",
                vec![],
                |r: &dyn RowGet| {
                    Ok((r.int("id")?, r.opt_date("start")?, r.opt_date("first")?))
                },
            )
            .await?
        {
            let show = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
            found.push(finding(
                AnomalyKind::OrderBeforeCooperation,
                customer_id,
                0,
                json!({ "first_order_on": show(first), "cooperation_start_on": show(start) }),
            ));
        }
        for (pair, a, score, code, name) in db
            .fetch_bulk(
                "SELECT p.id, p.a_id, p.score, c.code, c.name FROM duplicate_pairs p JOIN customers c ON c.id = p.b_id \
                 WHERE p.status = 'open' ORDER BY p.id",
                vec![],
                |r: &dyn RowGet| {
                    Ok((
                        r.int("id")?,
                        r.int("a_id")?,
                        r.float("score")?.unwrap_or_default(),
                        r.text("code")?,
                        r.text("name")?,
                    ))
                },
            )
            .await?
        {
            found.push(finding(
                AnomalyKind::OpenDuplicate,
                a,
                pair,
                json!({ "pair": pair, "other_code": code, "other_name": name, "percent": (score * 100.0).round() as i64 }),
            ));
        }
        Ok(found)
    }

    /// The owner and team of each customer among `ids`.
    pub async fn owners_of(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, (Option<i64>, Option<String>)>, StoreError> {
        let rows = fetch_in(
            &mut self.db.clone(),
            "SELECT id, owner_id, team FROM customers WHERE id IN ({})",
            ids,
            |r: &dyn RowGet| Ok((r.int("id")?, (r.opt_int("owner_id")?, r.opt_text("team")?))),
        )
        .await?;
        Ok(rows.into_iter().collect())
    }

    /// Records a run's findings (each with its assignee); new and reopened
    /// findings are due on `due_on`. With `claim`, the day's run of that
    /// job is claimed in the same transaction: `None` when another process
    /// has done it already.
    pub async fn record_anomalies(
        &self,
        findings: &[(Finding, Option<i64>)],
        today: NaiveDate,
        due_on: NaiveDate,
        claim: Option<&str>,
    ) -> Result<Option<AnomalyRun>, StoreError> {
        let mut tx = self.db.begin_write().await?;
        if let Some(job) = claim {
            if !crate::customers::claim_job_day(&mut tx, job, today).await? {
                return Ok(None);
            }
        }
        let stored: HashMap<(String, i64, i64), (i64, String)> = tx
            .fetch_all(
                "SELECT id, kind, customer_id, record_id, status FROM anomalies",
                vec![],
                |r: &dyn RowGet| {
                    Ok((
                        key_of(&r.text("kind")?, r.int("customer_id")?, r.int("record_id")?),
                        (r.int("id")?, r.text("status")?),
                    ))
                },
            )
            .await?
            .into_iter()
            .collect();
        let mut run = AnomalyRun {
            found: findings.len(),
            ..AnomalyRun::default()
        };
        let mut seen = HashSet::new();
        let mut fresh: Vec<&(Finding, Option<i64>)> = Vec::new();
        let mut reopen: Vec<i64> = Vec::new();
        for f in findings {
            let key = key_of(f.0.kind.key(), f.0.customer_id, f.0.record_id);
            match stored.get(&key) {
                None => {
                    if seen.insert(key) {
                        fresh.push(f);
                    }
                }
                Some((id, status)) => {
                    seen.insert(key);
                    if status == "resolved" {
                        reopen.push(*id);
                        tx.execute(
                            "UPDATE anomalies SET status = 'open', found_on = $1, due_on = $2, resolved_on = NULL, \
                             assignee_id = $3, detail = $4 WHERE id = $5",
                            args![today, due_on, f.1, f.0.detail.clone(), *id],
                        )
                        .await?;
                    }
                }
            }
        }
        run.reopened = reopen.len() as u64;
        for part in fresh.chunks(500) {
            let mut sql = String::from(
                "INSERT INTO anomalies (kind, customer_id, record_id, detail, assignee_id, found_on, due_on, status) VALUES ",
            );
            let mut a: Vec<Arg> = Vec::with_capacity(part.len() * 8);
            for (i, (f, assignee)) in part.iter().map(|x| (&x.0, x.1)).enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&placeholders(tx.backend(), a.len(), 8));
                a.extend(args![
                    f.kind.key(),
                    f.customer_id,
                    f.record_id,
                    f.detail.clone(),
                    assignee,
                    today,
                    due_on,
                    "open"
                ]);
            }
            run.new += tx.execute(&sql, a).await?;
        }
        let gone: Vec<i64> = stored
            .iter()
            .filter(|(key, (_, status))| status == "open" && !seen.contains(*key))
            .map(|(_, (id, _))| *id)
            .collect();
        for part in gone.chunks(crate::db::IDS_PER_QUERY) {
            let sql = format!(
                "UPDATE anomalies SET status = 'resolved', resolved_on = $1 WHERE id IN ({})",
                crate::db::marks_from(2, part.len())
            );
            let mut a = args![today];
            a.extend(part.iter().map(|&id| Arg::from(id)));
            run.resolved += tx.execute(&sql, a).await?;
        }
        run.open = tx
            .fetch_one(
                "SELECT COUNT(*) AS n FROM anomalies WHERE status = 'open'",
                vec![],
                decode_n,
            )
            .await? as u64;
        tx.commit().await?;
        Ok(Some(run))
    }

    /// One page of findings in scope, the most overdue first, and the total.
    pub async fn list_anomalies(
        &self,
        filter: &AnomalyFilter,
        scope: &ScopeFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Anomaly>, i64), StoreError> {
        let mut b = SqlBuilder::new(self.db.backend(), "");
        let cond = filter.conditions(&mut b, scope);
        crate::listing::count_and_page(
            &self.db,
            b,
            "anomalies",
            COLUMNS,
            &cond,
            "due_on, id",
            limit,
            offset,
            decode,
        )
        .await
    }

    /// Open findings per kind in scope, and how many are overdue on `today`.
    pub async fn anomaly_counts(
        &self,
        scope: &ScopeFilter,
        today: NaiveDate,
    ) -> Result<Vec<KindCount>, StoreError> {
        let mut b = SqlBuilder::new(self.db.backend(), "");
        let cond = AnomalyFilter::default().conditions(&mut b, scope);
        let pt = b.bind(today);
        let sql = format!(
            "SELECT kind, COUNT(*) AS open, SUM(CASE WHEN due_on < {pt} THEN 1 ELSE 0 END) AS overdue \
             FROM anomalies WHERE {cond} GROUP BY kind ORDER BY kind"
        );
        self.db
            .clone()
            .fetch_all(&sql, b.args, |r: &dyn RowGet| {
                Ok(KindCount {
                    kind: r.text("kind")?,
                    open: r.int("open")?,
                    overdue: r.opt_int("overdue")?.unwrap_or(0),
                })
            })
            .await
    }

    /// Open findings of one customer.
    pub async fn anomalies_of(&self, customer_id: i64) -> Result<Vec<Anomaly>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM anomalies WHERE customer_id = $1 AND status = 'open' ORDER BY due_on, id"
        );
        self.db
            .clone()
            .fetch_all(&sql, args![customer_id], decode)
            .await
    }
}
