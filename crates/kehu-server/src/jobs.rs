//! The scheduler: recurring jobs that run once per period (or every few
//! minutes) however many servers share the database. Every minute each
//! server walks [`JOBS`] and claims (kehu-store `jobs`) the ones that are
//! due; a claim is a lease in `job_runs`, so a second server skips a job
//! held by the first, a period completed is not run again, and the job of
//! a server that died is taken over when its lease runs out (missed runs
//! are caught up). Each run's duration and error are kept for the admin
//! page. The daily classification and anomaly report also claim their day
//! in their own write transaction, so their results are stored once.

use crate::classifier::Classifier;
use crate::error::ApiError;
use crate::AppState;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use kehu_core::strategy::Period;
use kehu_store::classes::cause;
use kehu_store::jobs::{Claim, Due};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

/// The `job_runs` name of the daily classification.
pub const CLASSIFY_JOB: &str = "classify";

/// How often a job is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    Daily,
    /// Once a week (the week starting on Monday).
    Weekly,
    Minutes(i64),
}

impl Cadence {
    fn due(self, today: NaiveDate) -> Due {
        match self {
            Cadence::Daily => Due::Period(today),
            Cadence::Weekly => {
                use chrono::Datelike;
                let monday =
                    today - Duration::days(i64::from(today.weekday().num_days_from_monday()));
                Due::Period(monday)
            }
            Cadence::Minutes(m) => Due::Every(Duration::minutes(m)),
        }
    }
    pub fn label(self, lang: kehu_core::Lang) -> String {
        match (self, lang) {
            (Cadence::Daily, kehu_core::Lang::En) => "daily".into(),
            (Cadence::Daily, _) => "每天".into(),
            (Cadence::Weekly, kehu_core::Lang::En) => "weekly".into(),
            (Cadence::Weekly, _) => "每周".into(),
            (Cadence::Minutes(m), kehu_core::Lang::En) => format!("every {m} min"),
            (Cadence::Minutes(m), _) => format!("每 {m} 分钟"),
        }
    }
}

/// A recurring job.
#[derive(Debug, Clone, Copy)]
pub struct JobDef {
    pub name: &'static str,
    pub label_zh: &'static str,
    pub label_en: &'static str,
    pub cadence: Cadence,
    /// How long a claim holds before another server may take the job over.
    pub lease_minutes: i64,
    /// A daily job that must be done for today first (the quarter's tasks
    /// follow today's classes).
    pub after: Option<&'static str>,
}

/// Every recurring job, in the order a round runs them.
pub const JOBS: &[JobDef] = &[
    JobDef {
        name: kehu_store::ROLLUP_JOB,
        label_zh: "采购汇总刷新",
        label_en: "Purchase rollups",
        cadence: Cadence::Daily,
        lease_minutes: 60,
        after: None,
    },
    JobDef {
        name: crate::predict::PREDICT_JOB,
        label_zh: "流失与价值预测（BG/NBD）",
        label_en: "Churn and value prediction (BG/NBD)",
        cadence: Cadence::Daily,
        lease_minutes: 60,
        after: None,
    },
    JobDef {
        name: CLASSIFY_JOB,
        label_zh: "夜间重新分类",
        label_en: "Nightly re-classification",
        cadence: Cadence::Daily,
        lease_minutes: 60,
        after: None,
    },
    JobDef {
        name: "tag_rules",
        label_zh: "自动标签规则",
        label_en: "Automatic tag rules",
        cadence: Cadence::Minutes(10),
        lease_minutes: 30,
        after: None,
    },
    JobDef {
        name: crate::anomalies::ANOMALY_JOB,
        label_zh: "异常数据报告",
        label_en: "Anomaly report",
        cadence: Cadence::Daily,
        lease_minutes: 30,
        after: None,
    },
    JobDef {
        name: STRATEGY_TASKS_JOB,
        label_zh: "按策略排定本季度任务",
        label_en: "The quarter's strategy tasks",
        cadence: Cadence::Daily,
        lease_minutes: 60,
        after: Some(CLASSIFY_JOB),
    },
    JobDef {
        name: CLASS_CHANGE_JOB,
        label_zh: "分类变化交接任务",
        label_en: "Hand-over tasks on class changes",
        cadence: Cadence::Minutes(5),
        lease_minutes: 15,
        after: None,
    },
    JobDef {
        name: COMPLAINT_JOB,
        label_zh: "投诉服务任务",
        label_en: "Service tasks for complaints",
        cadence: Cadence::Minutes(1),
        lease_minutes: 15,
        after: None,
    },
    JobDef {
        name: "dormant_tasks",
        label_zh: "沉睡客户激活任务",
        label_en: "Reactivation of dormant customers",
        cadence: Cadence::Daily,
        lease_minutes: 30,
        after: None,
    },
    JobDef {
        name: "reminders",
        label_zh: "到期提醒、逾期与升级",
        label_en: "Reminders, overdue notices, escalation",
        cadence: Cadence::Minutes(5),
        lease_minutes: 15,
        after: None,
    },
    JobDef {
        name: crate::deliveries::DELIVERIES_JOB,
        label_zh: "邮件与机器人通知发送（失败重试）",
        label_en: "E-mail and webhook notifications (with retries)",
        cadence: Cadence::Minutes(1),
        lease_minutes: 10,
        after: None,
    },
    JobDef {
        name: crate::schedules::REPORTS_JOB,
        label_zh: "定期报表（生成、存档、邮件发送）",
        label_en: "Scheduled reports (made, kept, e-mailed)",
        cadence: Cadence::Daily,
        lease_minutes: 60,
        after: Some(CLASSIFY_JOB),
    },
    JobDef {
        name: crate::backups::BACKUP_JOB,
        label_zh: "每周加密备份",
        label_en: "Weekly encrypted backup",
        cadence: Cadence::Weekly,
        lease_minutes: 120,
        after: None,
    },
    JobDef {
        name: crate::anchors::ANCHOR_JOB,
        label_zh: "审计日志校验与锚点外发",
        label_en: "Audit log verified, anchor sent out",
        cadence: Cadence::Daily,
        lease_minutes: 60,
        after: None,
    },
    JobDef {
        name: RETENTION_JOB,
        label_zh: "保存期限清理",
        label_en: "Retention clean-up",
        cadence: Cadence::Daily,
        lease_minutes: 30,
        after: None,
    },
    JobDef {
        name: "sessions",
        label_zh: "过期会话清理",
        label_en: "Expired-session cleanup",
        cadence: Cadence::Daily,
        lease_minutes: 10,
        after: None,
    },
];

pub const STRATEGY_TASKS_JOB: &str = "strategy_tasks";
/// Deletes what has outlived its retention period (`/admin/privacy`).
pub const RETENTION_JOB: &str = "retention";
pub const CLASS_CHANGE_JOB: &str = kehu_store::tasks::CLASS_CHANGE_JOB;
pub const COMPLAINT_JOB: &str = kehu_store::tasks::COMPLAINT_JOB;

/// Events an event job reads per page.
const EVENTS_PER_PAGE: i64 = 5_000;
/// Pages an event job reads in one run: a bulk change (the nightly run, a
/// publication) is followed within a run or two, not a page every few minutes.
const PAGES_PER_RUN: usize = 50;

/// Runs an event job's pages from `cursor` until it has caught up (or read
/// [`PAGES_PER_RUN`]); its summary and new cursor. A page that fails fails
/// the run: the pages before it are done again next time, which makes no
/// task twice (tasks carry their event's `source_key`).
async fn follow_events<F, Fut>(cursor: i64, page: F) -> Result<(Value, Option<i64>), ApiError>
where
    F: Fn(i64) -> Fut,
    Fut: std::future::Future<Output = Result<crate::tasks::EventPage, ApiError>>,
{
    let (mut up_to, mut made) = (cursor, 0);
    for _ in 0..PAGES_PER_RUN {
        let p = page(up_to).await?;
        (up_to, made) = (p.up_to, made + p.made);
        if !p.more {
            break;
        }
    }
    Ok((json!({ "tasks": made, "up_to": up_to }), Some(up_to)))
}

pub fn find(name: &str) -> Option<&'static JobDef> {
    JOBS.iter().find(|j| j.name == name)
}

/// This process, as the holder of a lease.
pub fn instance_name() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "kehu".into());
        let nonce: u32 = rand::random();
        format!("{host}:{}:{nonce:08x}", std::process::id())
    })
    .clone()
}

pub fn spawn(state: AppState) {
    tokio::spawn(async move {
        let owner = instance_name();
        loop {
            run_due(&state, &owner).await;
            rank_for_today(&state.classifier).await;
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        }
    });
}

/// Ranks everyone for the percentile schemes when this process has not
/// yet for today: after a restart the daily classification is done already
/// (by this process before, or by another), yet a customer re-evaluated
/// after a new order must still be ranked in those schemes.
async fn rank_for_today(classifier: &Classifier) {
    let started = std::time::Instant::now();
    match classifier.rank_today().await {
        Ok(true) => tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            "ranked customers for the percentile schemes"
        ),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = ?e, "ranking customers failed; will retry"),
    }
}

/// One round: every job that is due and not held elsewhere.
pub async fn run_due(state: &AppState, owner: &str) {
    let today = state.store.today();
    for job in JOBS {
        match run_job(state, job, job.cadence.due(today), owner).await {
            Ok(Some(summary)) => tracing::info!(job = job.name, %summary, "job finished"),
            Ok(None) => {}
            Err(e) => tracing::warn!(job = job.name, error = ?e, "job failed; will retry"),
        }
    }
}

/// What a job run did, for the log and the admin page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunReport {
    pub job: String,
    /// false: not run (held by another server or done for the period).
    pub ran: bool,
    pub summary: Value,
}

/// Runs `job` now if nobody holds it (an admin's "run now"): a period job
/// whose period is done does its work again only where that work is
/// idempotent; the daily classification and anomaly report still run once a day.
pub async fn run_now(state: &AppState, name: &str) -> Result<RunReport, ApiError> {
    let job = find(name).ok_or(ApiError::NotFound)?;
    let summary = run_job(state, job, Due::Every(Duration::zero()), &instance_name()).await?;
    Ok(RunReport {
        job: name.to_string(),
        ran: summary.is_some(),
        summary: summary.unwrap_or(Value::Null),
    })
}

/// Claims, runs and records one job; None when it was not claimed.
async fn run_job(
    state: &AppState,
    job: &JobDef,
    due: Due,
    owner: &str,
) -> Result<Option<Value>, ApiError> {
    let store = &state.store;
    if let Some(first) = job.after {
        if store.job_done_for(first).await? < Some(store.today()) {
            return Ok(None);
        }
    }
    let Some(claim) = store
        .claim_job(job.name, due, owner, Duration::minutes(job.lease_minutes))
        .await?
    else {
        return Ok(None);
    };
    let (outcome, cursor) = match work(state, job.name, &claim).await {
        Ok((summary, cursor)) => (Ok(summary), cursor),
        Err(e) => (Err(e), None),
    };
    let recorded = match &outcome {
        Ok(_) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    store.finish_job(&claim, recorded, cursor).await?;
    outcome.map(Some)
}

/// The work of each job: its summary, and an event job's new cursor.
async fn work(
    state: &AppState,
    name: &str,
    claim: &Claim,
) -> Result<(Value, Option<i64>), ApiError> {
    let store = &state.store;
    let today = store.today();
    let now: DateTime<Utc> = Utc::now();
    Ok(match name {
        kehu_store::ROLLUP_JOB => {
            // A bulk load may have refreshed them for today already.
            if store.rollups_current(today).await? {
                (json!({"skipped": "current"}), None)
            } else {
                let n = store.refresh_all_rollups(today).await?;
                (json!({ "customers": n }), None)
            }
        }
        crate::predict::PREDICT_JOB => {
            let r = crate::predict::run(store, today).await?;
            (serde_json::to_value(r).unwrap_or_default(), None)
        }
        CLASSIFY_JOB => (classify_daily(&state.classifier).await?, None),
        "tag_rules" => {
            let runs = crate::api::tags::apply_rules(state, None).await?;
            let changed: u64 = runs
                .iter()
                .map(|r| r.added + r.removed + r.proposed + r.expired)
                .sum();
            (json!({ "rules": runs.len(), "changed": changed }), None)
        }
        crate::anomalies::ANOMALY_JOB => {
            let r = crate::anomalies::run(store, Some(crate::anomalies::ANOMALY_JOB)).await?;
            (serde_json::to_value(r).unwrap_or_default(), None)
        }
        STRATEGY_TASKS_JOB => {
            // Today's tasks fall due at the end of the working day: past it, start tomorrow.
            let local = crate::tasks::to_local(now);
            let from = if local.time() < kehu_core::task::DEFAULT_DUE_TIME {
                today
            } else {
                today.succ_opt().unwrap_or(today)
            };
            let g = crate::tasks::generate(store, &Period::quarter_of(today), from, None).await?;
            (serde_json::to_value(g).unwrap_or_default(), None)
        }
        CLASS_CHANGE_JOB => {
            follow_events(claim.cursor, |after| {
                crate::tasks::class_change_tasks(store, after, EVENTS_PER_PAGE)
            })
            .await?
        }
        COMPLAINT_JOB => {
            follow_events(claim.cursor, |after| {
                crate::tasks::complaint_tasks(store, after, EVENTS_PER_PAGE)
            })
            .await?
        }
        "dormant_tasks" => (
            json!({ "tasks": crate::tasks::dormant_tasks(store).await? }),
            None,
        ),
        "reminders" => {
            let r = crate::tasks::remind(store, now).await?;
            (serde_json::to_value(r).unwrap_or_default(), None)
        }
        crate::deliveries::DELIVERIES_JOB => {
            let r = crate::deliveries::run(state).await?;
            (serde_json::to_value(r).unwrap_or_default(), None)
        }
        crate::schedules::REPORTS_JOB => {
            let r = crate::schedules::run(state, today).await?;
            (serde_json::to_value(r).unwrap_or_default(), None)
        }
        crate::backups::BACKUP_JOB => {
            let r = crate::backups::run(state).await?;
            (serde_json::to_value(r).unwrap_or_default(), None)
        }
        crate::anchors::ANCHOR_JOB => {
            let r = crate::anchors::run(state).await?;
            (serde_json::to_value(r).unwrap_or_default(), None)
        }
        RETENTION_JOB => {
            let deleted = store.apply_retention(now).await?;
            if deleted.iter().any(|(_, n)| *n > 0) {
                state.audit(None, "retention.apply", "retention".into(), json!(deleted));
            }
            (
                json!(deleted
                    .into_iter()
                    .collect::<std::collections::BTreeMap<_, _>>()),
                None,
            )
        }
        "sessions" => {
            store.delete_expired_sessions(now).await?;
            (json!({}), None)
        }
        _ => return Err(ApiError::NotFound),
    })
}

/// The daily re-classification of everyone (time-based rules: dormancy,
/// growth streaks, expired overrides), claimed for the day with its
/// changes; when another process did it, only rank the customers for
/// single re-evaluations.
async fn classify_daily(classifier: &Classifier) -> Result<Value, ApiError> {
    let store = classifier.store();
    let today = store.today();
    if store.job_done_for(CLASSIFY_JOB).await? >= Some(today) {
        classifier.rank_today().await?;
        return Ok(json!({"skipped": "done today"}));
    }
    let r = classifier
        .run_all(today, cause::EVALUATION, None, Some(CLASSIFY_JOB))
        .await?;
    Ok(json!({ "customers": r.customers, "changes": r.changes.len() }))
}

/// The daily classification alone, as the scheduler runs it (tests, and
/// processes that only classify).
pub async fn run_once(classifier: &Classifier) {
    if let Err(e) = classify_daily(classifier).await {
        tracing::warn!(error = ?e, "daily classification failed; will retry");
    }
}
