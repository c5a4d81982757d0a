//! The 异常数据报告: a run finds suspicious data (kehu-store), assigns each
//! finding to the customer's owner's manager and gives it a due date 3
//! working days on (kehu-core's calendar); the report lists what is open,
//! what is overdue, to whom. The daily job, the API, the UI and `kehu
//! anomalies` all go through here.

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::AppState;
use chrono::NaiveDate;
use kehu_core::anomaly::{describe, AnomalyKind, FIX_WITHIN_WORKING_DAYS};
use kehu_core::calendar::WorkCalendar;
use kehu_core::role::{Permission, Scope};
use kehu_core::{Lang, Reason};
use kehu_store::anomalies::{Anomaly, AnomalyFilter, AnomalyRun, KindCount};
use kehu_store::Store;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use utoipa::ToSchema;

/// The `job_runs` name of the daily run.
pub const ANOMALY_JOB: &str = "anomalies";

/// Finds what is suspicious now and records it (see kehu-store's
/// invariants). With `claim`, only if that job has not run today.
pub async fn run(store: &Store, claim: Option<&str>) -> Result<Option<AnomalyRun>, ApiError> {
    let today = store.today();
    let calendar = WorkCalendar::new(&store.calendar_days().await?);
    let due_on = calendar.add_working_days(today, FIX_WITHIN_WORKING_DAYS);
    let findings = store.find_anomalies(today).await?;
    let customers: Vec<i64> = findings
        .iter()
        .map(|f| f.customer_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let owners = store.owners_of(&customers).await?;
    let staffing = crate::tasks::Staffing::load(store).await?;
    let assigned = findings
        .into_iter()
        .map(|f| {
            let assignee = owners
                .get(&f.customer_id)
                .and_then(|(owner, team)| match owner {
                    Some(o) if staffing.is_director(*o) => Some(*o),
                    _ => staffing.directors_of(team.as_deref()).first().copied(),
                });
            (f, assignee)
        })
        .collect::<Vec<_>>();
    Ok(store
        .record_anomalies(&assigned, today, due_on, claim)
        .await?)
}

/// Running the check on demand: managers and admins (those who fix data).
pub fn may_run(user: &CurrentUser) -> bool {
    matches!(
        user.actor.grants.scope(Permission::CustomerUpdate),
        Some(Scope::Team | Scope::All)
    )
}

/// The calendar is system configuration: the admin's.
pub fn may_edit_calendar(user: &CurrentUser) -> bool {
    user.actor.grants.has(Permission::UserAdmin)
}

/// A customer named in the report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerRef {
    pub id: i64,
    pub code: String,
    pub name: String,
}

/// The code and name of each customer among `ids`, for lists that name them.
pub async fn customer_refs(
    store: &Store,
    ids: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, CustomerRef>, ApiError> {
    let ids: Vec<i64> = ids
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(store
        .customers_in(&ids)
        .await?
        .into_iter()
        .map(|c| {
            (
                c.id,
                CustomerRef {
                    id: c.id,
                    code: c.code,
                    name: c.name,
                },
            )
        })
        .collect())
}

/// One finding as the report shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AnomalyOut {
    pub id: i64,
    pub kind: String,
    pub label: String,
    /// What is wrong, in the reader's language.
    pub description: String,
    pub customer: CustomerRef,
    /// The contact, order, interaction or duplicate pair concerned (0: the customer).
    pub record_id: i64,
    pub assignee_id: Option<i64>,
    pub assignee: Option<String>,
    pub found_on: NaiveDate,
    pub due_on: NaiveDate,
    /// Open past its due date.
    pub overdue: bool,
    /// open | resolved
    pub status: String,
    pub resolved_on: Option<NaiveDate>,
}

/// Open findings of one kind.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KindCountOut {
    pub kind: String,
    pub label: String,
    pub open: i64,
    pub overdue: i64,
}

/// One page of the report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AnomalyReport {
    pub as_of: NaiveDate,
    pub total: i64,
    /// Open findings per kind in the reader's scope (whatever the filter).
    pub counts: Vec<KindCountOut>,
    pub items: Vec<AnomalyOut>,
}

fn label(kind: &str, lang: Lang) -> String {
    match AnomalyKind::parse(kind) {
        Some(k) if lang == Lang::En => k.label_en().to_string(),
        Some(k) => k.label_zh().to_string(),
        None => kind.to_string(),
    }
}

/// What the report is asked for.
#[derive(Debug, Clone, Default)]
pub struct ReportQuery {
    pub kind: Option<String>,
    pub status: Option<String>,
    /// Only those assigned to the reader.
    pub mine: bool,
    pub overdue: bool,
    pub limit: i64,
    pub offset: i64,
}

/// The findings about customers the user may read.
pub async fn report(
    state: &AppState,
    user: &CurrentUser,
    q: &ReportQuery,
    lang: Lang,
) -> Result<AnomalyReport, ApiError> {
    if let Some(k) = &q.kind {
        if AnomalyKind::parse(k).is_none() {
            return Err(ApiError::field(
                "kind",
                Reason::UnknownOption {
                    allowed: AnomalyKind::ALL
                        .iter()
                        .map(|k| k.key().to_string())
                        .collect(),
                },
            ));
        }
    }
    if let Some(s) = &q.status {
        if !matches!(s.as_str(), "open" | "resolved") {
            return Err(ApiError::field(
                "status",
                Reason::UnknownOption {
                    allowed: vec!["open".into(), "resolved".into()],
                },
            ));
        }
    }
    let scope = user.scope_filter(Permission::CustomerRead)?;
    let today = state.store.today();
    let filter = AnomalyFilter {
        kind: q.kind.clone(),
        status: q.status.clone(),
        assignee_id: q.mine.then_some(user.user.id),
        overdue_on: q.overdue.then_some(today),
    };
    let (found, total) = state
        .store
        .list_anomalies(&filter, &scope, q.limit.clamp(1, 1000), q.offset.max(0))
        .await?;
    let counts = state.store.anomaly_counts(&scope, today).await?;
    let items = items_of(state, &found, today, lang, &user.actor.fields).await?;
    Ok(AnomalyReport {
        as_of: today,
        total,
        counts: counts
            .into_iter()
            .map(
                |KindCount {
                     kind,
                     open,
                     overdue,
                 }| KindCountOut {
                    label: label(&kind, lang),
                    kind,
                    open,
                    overdue,
                },
            )
            .collect(),
        items,
    })
}

/// Findings with their customers' and assignees' names.
pub async fn items_of(
    state: &AppState,
    found: &[Anomaly],
    today: NaiveDate,
    lang: Lang,
    rights: &kehu_core::privacy::FieldRights,
) -> Result<Vec<AnomalyOut>, ApiError> {
    let customers = customer_refs(&state.store, found.iter().map(|a| a.customer_id)).await?;
    let names: HashMap<i64, String> = state.store.user_names().await?;
    Ok(found
        .iter()
        .filter_map(|a| {
            let kind = AnomalyKind::parse(&a.kind)?;
            Some(AnomalyOut {
                id: a.id,
                kind: a.kind.clone(),
                label: label(&a.kind, lang),
                description: describe(kind, &a.detail, lang == Lang::En, rights),
                customer: customers.get(&a.customer_id)?.clone(),
                record_id: a.record_id,
                assignee_id: a.assignee_id,
                assignee: a.assignee_id.and_then(|u| names.get(&u).cloned()),
                found_on: a.found_on,
                due_on: a.due_on,
                overdue: a.status == "open" && a.due_on < today,
                status: a.status.clone(),
                resolved_on: a.resolved_on,
            })
        })
        .collect())
}
