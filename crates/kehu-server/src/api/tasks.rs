//! /api/v1/strategies, /api/v1/tasks, /api/v1/follow-ups (跟踪记录),
//! /api/v1/notifications and /api/v1/jobs: the strategy table, follow-up
//! work and its tracking, the inbox, and the scheduler's state.

use super::{ApiJson, QueryPairs};
use crate::anomalies::{customer_refs, CustomerRef};
use crate::auth::CurrentUser;
use crate::error::{lang_of, ApiError};
use crate::tasks::{self as work, to_local, CloseInput, Generation};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use kehu_core::role::Permission;
use kehu_core::strategy::{cadence_text, parse_period, OwnerLevel, StrategyInput};
use kehu_core::task::{TaskInput, TaskKind, TaskStatus};
use kehu_core::{Lang, Reason};
use kehu_store::tasks::{FollowUp, FollowUpFilter, StoredStrategy, Task, TaskFilter, TaskScope};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

/// A strategy as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StrategyOut {
    pub id: i64,
    pub scheme_key: String,
    pub class_name: String,
    /// The cadence as text: `每季度拜访1次 + 每月联系1次`.
    pub cadence: String,
    /// The cadence item by item.
    #[schema(value_type = Vec<Object>)]
    pub cadence_items: Vec<kehu_core::strategy::CadenceItem>,
    pub sla_hours: u32,
    pub resources: String,
    pub goal: String,
    /// purchase_growth | order_growth | product_lines | retention
    pub goal_metric: String,
    /// Percent (growth, retention) or product lines.
    pub goal_target: i64,
    /// director (销售总监) | specialist (销售专员) | assistant (销售助理)
    pub owner_level: String,
    pub updated_at: DateTime<Utc>,
}

impl From<StoredStrategy> for StrategyOut {
    fn from(s: StoredStrategy) -> Self {
        let st = s.strategy;
        StrategyOut {
            id: s.id,
            cadence: cadence_text(&st.cadence),
            cadence_items: st.cadence,
            scheme_key: st.scheme_key,
            class_name: st.class_name,
            sla_hours: st.sla_hours,
            resources: st.resources,
            goal: st.goal,
            goal_metric: st.goal_metric.key().into(),
            goal_target: st.goal_target,
            owner_level: st.owner_level.key().into(),
            updated_at: s.updated_at,
        }
    }
}

/// A strategy as entered (kehu-core's `StrategyInput`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct StrategyInputDoc {
    pub scheme_key: String,
    pub class_name: String,
    /// e.g. `每季度拜访1次 + 每月联系1次` or `quarterly visit + monthly call x2`
    pub cadence: String,
    pub sla_hours: i64,
    pub resources: Option<String>,
    pub goal: String,
    pub goal_metric: String,
    pub goal_target: i64,
    pub owner_level: String,
}

#[utoipa::path(get, path = "/api/v1/strategies", tag = "tasks",
    responses((status = 200, body = Vec<StrategyOut>)))]
pub async fn strategies(
    State(state): State<AppState>,
    _user: CurrentUser,
) -> Result<Json<Vec<StrategyOut>>, ApiError> {
    Ok(Json(
        state
            .store
            .strategies()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Whether a user edits strategies (as they edit classification rules).
pub fn may_edit_strategies(user: &CurrentUser) -> bool {
    user.actor.grants.has(Permission::RuleEdit)
}

/// Sets the strategy of a class (creates or replaces it). Admins.
#[utoipa::path(put, path = "/api/v1/strategies", tag = "tasks", request_body = StrategyInputDoc,
    responses((status = 200, body = StrategyOut), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn save_strategy(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<StrategyInput>,
) -> Result<Json<StrategyOut>, ApiError> {
    Ok(Json(save(&state, &user, &input).await?.into()))
}

/// Validates and stores a strategy (API and UI).
pub async fn save(
    state: &AppState,
    user: &CurrentUser,
    input: &StrategyInput,
) -> Result<StoredStrategy, ApiError> {
    if !may_edit_strategies(user) {
        return Err(ApiError::Forbidden);
    }
    let lookup = work::classes_lookup(state).await?;
    let strategy = input.validate(lookup)?;
    let saved = state.store.save_strategy(&strategy, user.user.id).await?;
    state.audit(
        Some(user),
        "strategy.save",
        format!("strategy:{}", saved.id),
        serde_json::to_value(&strategy).unwrap_or_default(),
    );
    Ok(saved)
}

#[utoipa::path(delete, path = "/api/v1/strategies/{id}", tag = "tasks",
    params(("id" = i64, Path)), responses((status = 204), (status = 403), (status = 404)))]
pub async fn delete_strategy(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if !may_edit_strategies(&user) {
        return Err(ApiError::Forbidden);
    }
    if !state.store.delete_strategy(id).await? {
        return Err(ApiError::NotFound);
    }
    state.audit(
        Some(&user),
        "strategy.delete",
        format!("strategy:{id}"),
        serde_json::json!({}),
    );
    Ok(StatusCode::NO_CONTENT)
}

/// A task as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskOut {
    pub id: i64,
    pub customer: CustomerRef,
    pub kind: String,
    pub kind_label: String,
    /// strategy | class_change | complaint | resolved | dormant | suggestion | manual
    pub source: String,
    pub title: String,
    pub detail: String,
    pub owner_id: Option<i64>,
    pub owner: Option<String>,
    pub team: Option<String>,
    pub due_at: DateTime<Utc>,
    /// China local time, `YYYY-MM-DD HH:MM`.
    pub due_local: String,
    /// high | normal | low
    pub priority: String,
    /// open | done | cancelled
    pub status: String,
    pub overdue: bool,
    pub scheme_key: Option<String>,
    pub class_name: Option<String>,
    /// Service tasks: the SLA in working hours (the due time is its deadline).
    pub sla_hours: Option<i64>,
    /// Service tasks closed after their deadline, or open past it.
    pub sla_breached: bool,
    pub closed_at: Option<DateTime<Utc>>,
}

/// Tasks with their customers' and owners' names.
pub async fn tasks_out(
    state: &AppState,
    tasks: &[Task],
    lang: Lang,
) -> Result<Vec<TaskOut>, ApiError> {
    let customers = customer_refs(&state.store, tasks.iter().map(|x| x.customer_id)).await?;
    let names = state.store.user_names().await?;
    let now = Utc::now();
    Ok(tasks
        .iter()
        .filter_map(|t| {
            let late = |at: DateTime<Utc>| at > t.due_at;
            Some(TaskOut {
                id: t.id,
                customer: customers.get(&t.customer_id)?.clone(),
                kind: t.kind.key().into(),
                kind_label: work::kind_label(t.kind, lang).into(),
                source: t.source.key().into(),
                title: t.title.clone(),
                detail: t.detail.clone(),
                owner_id: t.owner_id,
                owner: t.owner_id.and_then(|o| names.get(&o).cloned()),
                team: t.team.clone(),
                due_at: t.due_at,
                due_local: to_local(t.due_at).format("%Y-%m-%d %H:%M").to_string(),
                priority: t.priority.key().into(),
                status: t.status.key().into(),
                overdue: t.status == TaskStatus::Open && late(now),
                scheme_key: t.scheme_key.clone(),
                class_name: t.class_name.clone(),
                sla_hours: t.sla_hours,
                sla_breached: t.kind == TaskKind::Service
                    && match (t.status, t.closed_at) {
                        (TaskStatus::Open, _) => late(now),
                        (TaskStatus::Done, Some(c)) => late(c),
                        _ => false,
                    },
                closed_at: t.closed_at,
            })
        })
        .collect())
}

/// One page of tasks.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskPage {
    pub total: i64,
    pub items: Vec<TaskOut>,
}

/// What a task list asks for.
#[derive(Debug, Clone)]
pub struct TaskQuery {
    pub filter: TaskFilter,
    pub limit: i64,
    pub offset: i64,
}

/// Reads the list parameters: `view` (today | week | overdue | open |
/// done | cancelled | all), `owner` (me | all | none | a user id),
/// `customer` (id), `kind`, `limit`, `offset`.
pub fn task_query(user: &CurrentUser, q: &mut QueryPairs) -> Result<TaskQuery, ApiError> {
    let now = Utc::now();
    let today = to_local(now).date();
    let start_of = |d: NaiveDate| work::to_utc(d.and_time(chrono::NaiveTime::MIN));
    let mut filter = TaskFilter::default();
    match q.take("view").as_deref().unwrap_or("open") {
        "open" | "" => {}
        "today" => {
            filter.due_before = Some(start_of(today + Duration::days(1)));
        }
        "week" => {
            let days_left = 7 - i64::from(today.weekday().num_days_from_monday());
            filter.due_before = Some(start_of(today + Duration::days(days_left)));
        }
        "overdue" => filter.due_before = Some(now),
        "done" => filter.status = Some(TaskStatus::Done),
        "cancelled" => filter.status = Some(TaskStatus::Cancelled),
        "all" => filter.any_status = true,
        _ => {
            return Err(ApiError::field(
                "view",
                Reason::UnknownOption {
                    allowed: [
                        "open",
                        "today",
                        "week",
                        "overdue",
                        "done",
                        "cancelled",
                        "all",
                    ]
                    .map(String::from)
                    .to_vec(),
                },
            ))
        }
    }
    let owner = q.take("owner");
    let owner_given = owner.is_some();
    match owner.as_deref().unwrap_or("me") {
        "me" | "" => filter.owner_id = Some(user.user.id),
        "all" => {}
        "none" => filter.unassigned = true,
        id => {
            filter.owner_id = Some(
                id.parse()
                    .map_err(|_| ApiError::field("owner", Reason::IntegerFormat))?,
            )
        }
    }
    if let Some(c) = q.take("customer").filter(|c| !c.is_empty()) {
        filter.customer_id = Some(
            c.parse()
                .map_err(|_| ApiError::field("customer", Reason::IntegerFormat))?,
        );
        // A customer's tasks: whoever owns them, unless an owner is asked for.
        if !owner_given {
            filter.owner_id = None;
        }
    }
    if let Some(k) = q.take("kind").filter(|k| !k.is_empty()) {
        filter.kind = Some(TaskKind::parse(&k).map_err(|r| ApiError::field("kind", r))?);
    }
    Ok(TaskQuery {
        filter,
        limit: q.take_number("limit", 50)?.clamp(1, 1000),
        offset: q.take_number("offset", 0)?.max(0),
    })
}

/// Tasks the caller may see: by default their own open tasks by due time.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks",
    params(("view" = Option<String>, Query, description = "open (default) | today (due by tonight, overdue included) | week | overdue | done | cancelled | all"),
           ("owner" = Option<String>, Query, description = "me (default) | all | none | a user id"),
           ("customer" = Option<i64>, Query, description = "one customer's tasks (any owner)"),
           ("kind" = Option<String>, Query), ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = TaskPage), (status = 422, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<Json<TaskPage>, ApiError> {
    let tq = task_query(&user, &mut q)?;
    Ok(Json(page(&state, &user, &tq, lang_of(&headers)).await?))
}

/// A page of tasks in the user's reach.
pub async fn page(
    state: &AppState,
    user: &CurrentUser,
    tq: &TaskQuery,
    lang: Lang,
) -> Result<TaskPage, ApiError> {
    let (tasks, total) = state
        .store
        .list_tasks(&tq.filter, &work::task_scope(user), tq.limit, tq.offset)
        .await?;
    Ok(TaskPage {
        total,
        items: tasks_out(state, &tasks, lang).await?,
    })
}

/// A task made by hand (kehu-core's `TaskInput`).
#[derive(Debug, Deserialize, ToSchema)]
pub struct TaskInputDoc {
    /// The customer's code.
    pub customer: String,
    /// visit | call | contact | message | training | handover | service | follow_up_call | reactivation | review | other
    pub kind: Option<String>,
    pub title: String,
    pub detail: Option<String>,
    /// YYYY-MM-DD, today or later
    pub due_on: String,
    /// HH:MM local; 18:00 when absent
    pub due_time: Option<String>,
    /// high | normal | low
    pub priority: Option<String>,
    /// The caller when absent; managers may name a member of their team.
    pub owner_id: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks", request_body = TaskInputDoc,
    responses((status = 201, body = TaskOut), (status = 422, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    ApiJson(input): ApiJson<TaskInput>,
) -> Result<(StatusCode, Json<TaskOut>), ApiError> {
    let id = work::create(&state, &user, &input).await?;
    let task = work::task_for(&state, &user, id).await?;
    Ok((
        StatusCode::CREATED,
        Json(one(&state, task, lang_of(&headers)).await?),
    ))
}

/// The same task for every customer of a segment.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentTaskInput {
    /// A segment expression (e.g. `华东 AND 战略型 AND NOT 投诉客户`);
    /// or give `segment_id`.
    #[serde(default)]
    pub segment: Option<String>,
    /// A saved segment the caller may read, instead of `segment`.
    #[serde(default)]
    pub segment_id: Option<i64>,
    pub kind: Option<String>,
    pub title: Option<String>,
    pub detail: Option<String>,
    /// YYYY-MM-DD, today or later
    pub due_on: Option<String>,
    /// HH:MM local; 18:00 when absent
    pub due_time: Option<String>,
    /// high | normal | low
    pub priority: Option<String>,
}

impl SegmentTaskInput {
    pub fn task(&self) -> TaskInput {
        TaskInput {
            customer: None,
            kind: self.kind.clone(),
            title: self.title.clone(),
            detail: self.detail.clone(),
            due_on: self.due_on.clone(),
            due_time: self.due_time.clone(),
            priority: self.priority.clone(),
            owner_id: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentTasksOut {
    /// Customers of the segment the caller may see.
    pub customers: usize,
    /// Tasks made now (a repeated request makes none).
    pub made: u64,
}

/// A task for every customer of a segment the caller may see (at most
/// 5,000), each owned by the customer's owner; one transaction; asking
/// again with the same segment, title and due day makes nothing twice.
#[utoipa::path(post, path = "/api/v1/tasks/segment", tag = "tasks", request_body = SegmentTaskInput,
    responses((status = 201, body = SegmentTasksOut), (status = 422, content_type = "application/problem+json")))]
pub async fn create_for_segment(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<SegmentTaskInput>,
) -> Result<(StatusCode, Json<SegmentTasksOut>), ApiError> {
    let segment =
        super::segments::named_segment(&state, &user, input.segment.clone(), input.segment_id)
            .await?
            .ok_or_else(|| ApiError::field("segment", Reason::Required))?;
    let (customers, made) =
        work::create_for_segment(&state, &user, &segment, &input.task()).await?;
    Ok((
        StatusCode::CREATED,
        Json(SegmentTasksOut { customers, made }),
    ))
}

async fn one(state: &AppState, task: Task, lang: Lang) -> Result<TaskOut, ApiError> {
    tasks_out(state, &[task], lang)
        .await?
        .pop()
        .ok_or(ApiError::NotFound)
}

#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks", params(("id" = i64, Path)),
    responses((status = 200, body = TaskOut), (status = 404)))]
pub async fn read(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<TaskOut>, ApiError> {
    let task = work::task_for(&state, &user, id).await?;
    Ok(Json(one(&state, task, lang_of(&headers)).await?))
}

/// Closes a task: `done` needs a result (`summary`); the tracking log gets
/// an entry with the status change and the class after re-evaluation; a
/// suggested class goes to the manager; a service task leads to a
/// follow-up call. `cancelled` needs a reason in `summary`.
#[utoipa::path(post, path = "/api/v1/tasks/{id}/close", tag = "tasks", params(("id" = i64, Path)),
    request_body = CloseInput,
    responses((status = 200, body = TaskOut), (status = 404), (status = 409, content_type = "application/problem+json"),
              (status = 422, content_type = "application/problem+json")))]
pub async fn close(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<CloseInput>,
) -> Result<Json<TaskOut>, ApiError> {
    let task = work::close(
        &state,
        &user,
        id,
        input.status.as_deref(),
        input.result.into(),
    )
    .await?;
    Ok(Json(one(&state, task, lang_of(&headers)).await?))
}

/// The period to generate.
#[derive(Debug, Deserialize, ToSchema)]
pub struct GenerateInput {
    /// `2026-Q4`, `2026-12` or `2026`
    pub period: String,
}

/// Makes the tasks the strategies call for in a period (days from today
/// on); the scheduler does this for each quarter. Idempotent. Admins.
#[utoipa::path(post, path = "/api/v1/tasks/generate", tag = "tasks", request_body = GenerateInput,
    responses((status = 200, body = Generation), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn generate(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<GenerateInput>,
) -> Result<Json<Generation>, ApiError> {
    if !may_edit_strategies(&user) {
        return Err(ApiError::Forbidden);
    }
    let period = parse_period(&input.period).map_err(|r| ApiError::field("period", r))?;
    let today = state.store.today();
    if period.end < today {
        return Err(ApiError::field(
            "period",
            Reason::Other {
                zh: "期间已经过去，无法再生成任务".into(),
                en: "the period is over; no tasks can be made for it".into(),
            },
        ));
    }
    let g = work::generate(&state.store, &period, today.max(period.start), None).await?;
    state.audit(
        Some(&user),
        "tasks.generate",
        format!("period:{}", g.period),
        serde_json::json!({"planned": g.planned, "created": g.created}),
    );
    Ok(Json(g))
}

/// Hand a leaving rep's work to someone else.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignInput {
    pub from_user: i64,
    pub to_user: i64,
    /// Also make `to_user` the owner of the customers `from_user` owns.
    #[serde(default)]
    pub customers: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReassignOut {
    pub tasks: u64,
    pub customers: u64,
}

/// Moves every open task (and optionally the customers) of one user to
/// another: admins anywhere, managers within their team.
#[utoipa::path(post, path = "/api/v1/tasks/reassign", tag = "tasks", request_body = ReassignInput,
    responses((status = 200, body = ReassignOut), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn reassign(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<ReassignInput>,
) -> Result<Json<ReassignOut>, ApiError> {
    Ok(Json(reassign_work(&state, &user, &input).await?))
}

pub async fn reassign_work(
    state: &AppState,
    user: &CurrentUser,
    input: &ReassignInput,
) -> Result<ReassignOut, ApiError> {
    let scope = work::task_scope(user);
    if matches!(scope, TaskScope::Own { .. }) {
        return Err(ApiError::Forbidden);
    }
    let find = |field: &'static str, id: i64| async move {
        state.store.user(id).await.map_err(|_| {
            ApiError::field(
                field,
                Reason::Other {
                    zh: "用户不存在".into(),
                    en: "no such user".into(),
                },
            )
        })
    };
    let from = find("from_user", input.from_user).await?;
    let to = find("to_user", input.to_user).await?;
    if from.id == to.id {
        return Err(ApiError::field(
            "to_user",
            Reason::Other {
                zh: "接手人与原负责人相同".into(),
                en: "the same user as from_user".into(),
            },
        ));
    }
    if !to.active {
        return Err(ApiError::field(
            "to_user",
            Reason::Other {
                zh: "接手人已停用".into(),
                en: "the user is deactivated".into(),
            },
        ));
    }
    if let TaskScope::Team { team, .. } = &scope {
        let mine = |t: &Option<String>| team.is_some() && t == team;
        if !mine(&from.team) || !mine(&to.team) {
            return Err(ApiError::Forbidden);
        }
    }
    let (tasks, customers) = state
        .store
        .reassign_work(from.id, to.id, to.team.as_deref(), input.customers)
        .await?;
    state.audit(
        Some(user),
        "tasks.reassign",
        crate::audit::user_target(from.id),
        serde_json::json!({"to": to.id, "tasks": tasks, "customers": customers}),
    );
    Ok(ReassignOut { tasks, customers })
}

/// One person's open work on the team board.
#[derive(Debug, Serialize, ToSchema)]
pub struct BoardRow {
    pub owner_id: Option<i64>,
    pub owner: Option<String>,
    pub open: i64,
    pub overdue: i64,
}

/// Open and overdue tasks per owner in the manager's reach.
#[utoipa::path(get, path = "/api/v1/tasks/board", tag = "tasks",
    responses((status = 200, body = Vec<BoardRow>), (status = 403)))]
pub async fn board(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Vec<BoardRow>>, ApiError> {
    Ok(Json(board_rows(&state, &user).await?))
}

pub async fn board_rows(state: &AppState, user: &CurrentUser) -> Result<Vec<BoardRow>, ApiError> {
    let scope = work::task_scope(user);
    if matches!(scope, TaskScope::Own { .. }) {
        return Err(ApiError::Forbidden);
    }
    let names = state.store.user_names().await?;
    Ok(state
        .store
        .task_load(&scope, Utc::now())
        .await?
        .into_iter()
        .map(|(owner_id, open, overdue)| BoardRow {
            owner: owner_id.and_then(|o| names.get(&o).cloned()),
            owner_id,
            open,
            overdue,
        })
        .collect())
}

/// SLA compliance of service requests (complaints) per class.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlaReport {
    pub from: NaiveDate,
    /// Exclusive.
    pub to: NaiveDate,
    pub rows: Vec<SlaReportRow>,
    pub total: SlaReportRow,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct SlaReportRow {
    pub class_name: Option<String>,
    /// Working hours to answer.
    pub sla_hours: Option<i64>,
    pub total: i64,
    pub on_time: i64,
    pub late: i64,
    pub open_within: i64,
    pub open_breached: i64,
    /// Of the requests whose deadline has passed or that were answered:
    /// the share answered in time, in percent with one decimal; none when
    /// there are no such requests.
    pub compliance_percent: Option<f64>,
}

impl From<kehu_store::tasks::SlaRow> for SlaReportRow {
    fn from(r: kehu_store::tasks::SlaRow) -> Self {
        let decided = r.on_time + r.late + r.open_breached;
        SlaReportRow {
            compliance_percent: (decided > 0).then(|| (r.on_time * 1000 / decided) as f64 / 10.0),
            class_name: r.class_name,
            sla_hours: r.sla_hours,
            total: r.total,
            on_time: r.on_time,
            late: r.late,
            open_within: r.open_within,
            open_breached: r.open_breached,
        }
    }
}

/// Whose service tasks a user may report on: report readers by their
/// report scope, managers their team's, others none.
pub fn report_scope(user: &CurrentUser) -> Result<TaskScope, ApiError> {
    use kehu_core::role::Scope;
    match user.actor.grants.scope(Permission::ReportRead) {
        Some(Scope::All) => Ok(TaskScope::All),
        Some(Scope::Team) => Ok(TaskScope::Team {
            team: user.user.team.clone(),
            user_id: user.user.id,
        }),
        _ => match work::task_scope(user) {
            TaskScope::Own { .. } => Err(ApiError::Forbidden),
            scope => Ok(scope),
        },
    }
}

/// The SLA report between two days (default: this month so far).
pub async fn sla_report(
    state: &AppState,
    user: &CurrentUser,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<SlaReport, ApiError> {
    let scope = report_scope(user)?;
    let today = state.store.today();
    let from = from.unwrap_or_else(|| today.with_day(1).unwrap_or(today));
    let to = to.unwrap_or_else(|| today.succ_opt().unwrap_or(today));
    sla_between(state, &scope, from, to).await
}

/// The SLA report of the service tasks in `scope` from `from` to `to` (exclusive).
pub async fn sla_between(
    state: &AppState,
    scope: &TaskScope,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<SlaReport, ApiError> {
    if to <= from {
        return Err(ApiError::field(
            "to",
            Reason::Other {
                zh: "结束日期应晚于开始日期".into(),
                en: "must be after from".into(),
            },
        ));
    }
    let rows = state
        .store
        .sla_summary(scope, day_start(from), day_start(to), Utc::now())
        .await?;
    Ok(sla_of_rows(from, to, rows))
}

/// The instant a day starts (China time).
pub fn day_start(d: NaiveDate) -> chrono::DateTime<Utc> {
    work::to_utc(d.and_time(chrono::NaiveTime::MIN))
}

/// An SLA report of rows per class, with their total.
pub fn sla_of_rows(
    from: NaiveDate,
    to: NaiveDate,
    rows: Vec<kehu_store::tasks::SlaRow>,
) -> SlaReport {
    let sum = |f: fn(&kehu_store::tasks::SlaRow) -> i64| rows.iter().map(f).sum::<i64>();
    let total = kehu_store::tasks::SlaRow {
        class_name: None,
        sla_hours: None,
        total: sum(|r| r.total),
        on_time: sum(|r| r.on_time),
        late: sum(|r| r.late),
        open_within: sum(|r| r.open_within),
        open_breached: sum(|r| r.open_breached),
    };
    SlaReport {
        from,
        to,
        rows: rows.into_iter().map(Into::into).collect(),
        total: total.into(),
    }
}

/// SLA compliance of service requests per class: answered in time, late,
/// open within or past the deadline (working hours on the holiday calendar).
#[utoipa::path(get, path = "/api/v1/tasks/sla", tag = "tasks",
    params(("from" = Option<String>, Query, description = "YYYY-MM-DD, default the 1st of this month"),
           ("to" = Option<String>, Query, description = "YYYY-MM-DD, exclusive, default tomorrow")),
    responses((status = 200, body = SlaReport), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn sla(
    State(state): State<AppState>,
    user: CurrentUser,
    mut q: QueryPairs,
) -> Result<Json<SlaReport>, ApiError> {
    let (from, to) = (q.take_date("from")?, q.take_date("to")?);
    Ok(Json(sla_report(&state, &user, from, to).await?))
}

/// One entry of the tracking log, in our users' template's columns.
#[derive(Debug, Serialize, ToSchema)]
pub struct FollowUpOut {
    pub id: i64,
    pub customer: CustomerRef,
    pub task_id: Option<i64>,
    /// 日期
    pub happened_on: NaiveDate,
    /// 跟进人
    pub user: Option<String>,
    pub kind: String,
    /// 跟进摘要
    pub summary: String,
    pub next_step: Option<String>,
    /// 状态变化, e.g. 下单次数+1
    pub status_change: Option<String>,
    /// 建议分类调整
    pub suggested_scheme: Option<String>,
    pub suggested_class: Option<String>,
    /// 系统重新评估后分类
    pub class_scheme: Option<String>,
    pub class_after: Option<String>,
}

/// A page of the tracking log.
#[derive(Debug, Serialize, ToSchema)]
pub struct FollowUpPage {
    pub total: i64,
    pub items: Vec<FollowUpOut>,
}

/// Reads the tracking-log filters: `customer` (id), `user` (id), `from`,
/// `to` (dates), `kind`, `suggested`.
pub fn follow_up_filter(q: &mut QueryPairs) -> Result<FollowUpFilter, ApiError> {
    let id = |q: &mut QueryPairs, key: &str| -> Result<Option<i64>, ApiError> {
        q.take(key)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::field(key, Reason::IntegerFormat))
            })
            .transpose()
    };
    Ok(FollowUpFilter {
        customer_id: id(q, "customer")?,
        user_id: id(q, "user")?,
        from: q.take_date("from")?,
        to: q.take_date("to")?,
        kind: q.take("kind").filter(|k| !k.is_empty()),
        suggested: q.take_flag("suggested"),
    })
}

/// Tracking-log entries of customers in the reader's scope.
pub async fn follow_up_page(
    state: &AppState,
    user: &CurrentUser,
    filter: &FollowUpFilter,
    limit: i64,
    offset: i64,
) -> Result<FollowUpPage, ApiError> {
    let scope = user.scope_filter(Permission::CustomerRead)?;
    let (items, total) = state
        .store
        .follow_ups(filter, &scope, limit, offset)
        .await?;
    Ok(FollowUpPage {
        total,
        items: follow_ups_out(state, items).await?,
    })
}

async fn follow_ups_out(
    state: &AppState,
    items: Vec<FollowUp>,
) -> Result<Vec<FollowUpOut>, ApiError> {
    let customers = customer_refs(&state.store, items.iter().map(|x| x.customer_id)).await?;
    let names = state.store.user_names().await?;
    Ok(items
        .into_iter()
        .filter_map(|f| {
            Some(FollowUpOut {
                customer: customers.get(&f.customer_id)?.clone(),
                user: f.user_id.and_then(|u| names.get(&u).cloned()),
                id: f.id,
                task_id: f.task_id,
                happened_on: f.happened_on,
                kind: f.kind,
                summary: f.summary,
                next_step: f.next_step,
                status_change: f.status_change,
                suggested_scheme: f.suggested_scheme,
                suggested_class: f.suggested_class,
                class_scheme: f.class_scheme,
                class_after: f.class_after,
            })
        })
        .collect())
}

/// Entries a tracking-log export may hold.
const FOLLOW_UP_EXPORT_MAX: i64 = 100_000;

/// The tracking log (跟踪记录), newest first; `format=csv|xlsx|pdf` downloads
/// it in our users' template's columns.
#[utoipa::path(get, path = "/api/v1/follow-ups", tag = "tasks",
    params(("customer" = Option<i64>, Query), ("user" = Option<i64>, Query),
           ("from" = Option<String>, Query, description = "YYYY-MM-DD"), ("to" = Option<String>, Query, description = "YYYY-MM-DD"),
           ("kind" = Option<String>, Query), ("suggested" = Option<bool>, Query, description = "only entries suggesting a class change"),
           ("format" = Option<String>, Query, description = "json (default) | csv | xlsx | pdf"),
           ("limit" = Option<i64>, Query), ("offset" = Option<i64>, Query)),
    responses((status = 200, body = FollowUpPage), (status = 422, content_type = "application/problem+json")))]
pub async fn follow_ups(
    State(state): State<AppState>,
    user: CurrentUser,
    mut q: QueryPairs,
) -> Result<Response, ApiError> {
    let filter = follow_up_filter(&mut q)?;
    let format = q.take("format").filter(|f| !f.is_empty() && f != "json");
    let Some(format) = format else {
        let limit = q.take_number("limit", 50)?.clamp(1, 1000);
        let offset = q.take_number("offset", 0)?.max(0);
        return Ok(
            Json(follow_up_page(&state, &user, &filter, limit, offset).await?).into_response(),
        );
    };
    let format = crate::export::Format::parse(&format).map_err(|r| ApiError::field("format", r))?;
    let page = follow_up_page(&state, &user, &filter, FOLLOW_UP_EXPORT_MAX, 0).await?;
    let file = follow_up_file(&page.items, format)?;
    state.audit(
        Some(&user),
        "export",
        "follow_ups".into(),
        serde_json::json!({"format": format.extension(), "rows": page.items.len()}),
    );
    Ok(crate::export::download(format, "follow-ups", file))
}

fn follow_up_file(
    items: &[FollowUpOut],
    format: crate::export::Format,
) -> Result<Vec<u8>, ApiError> {
    let header: Vec<String> = [
        "客户编号",
        "客户名称",
        "日期",
        "跟进人",
        "类型",
        "跟进摘要",
        "下一步",
        "状态变化",
        "建议分类调整",
        "系统重新评估后分类",
    ]
    .map(String::from)
    .to_vec();
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|f| {
            vec![
                f.customer.code.clone(),
                f.customer.name.clone(),
                f.happened_on.to_string(),
                text(&f.user),
                TaskKind::parse(&f.kind).map_or(f.kind.clone(), |k| k.label_zh().into()),
                f.summary.clone(),
                text(&f.next_step),
                text(&f.status_change),
                text(&f.suggested_class),
                text(&f.class_after),
            ]
        })
        .collect();
    crate::export::table_file(format, "跟踪记录", "跟踪记录", &header, &rows, &[])
}

/// A notification in the inbox.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationOut {
    pub id: i64,
    /// reminder | overdue | escalation | assigned | suggestion | audit_anchor | audit_broken
    pub kind: String,
    pub task_id: Option<i64>,
    pub text: String,
    pub created_at: DateTime<Utc>,
    pub read: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Inbox {
    pub unread: i64,
    pub items: Vec<NotificationOut>,
}

pub async fn inbox(
    state: &AppState,
    user: &CurrentUser,
    unread_only: bool,
    lang: Lang,
) -> Result<Inbox, ApiError> {
    let (items, unread) = state
        .store
        .notifications(user.user.id, unread_only, 100)
        .await?;
    Ok(Inbox {
        unread,
        items: items
            .into_iter()
            .map(|n| NotificationOut {
                id: n.id,
                kind: n.kind,
                task_id: n.task_id,
                text: if lang == Lang::En {
                    n.text_en
                } else {
                    n.text_zh
                },
                created_at: n.created_at,
                read: n.read_at.is_some(),
            })
            .collect(),
    })
}

/// The caller's notifications, newest first (the latest 100).
#[utoipa::path(get, path = "/api/v1/notifications", tag = "tasks",
    params(("unread" = Option<bool>, Query, description = "only unread ones")),
    responses((status = 200, body = Inbox)))]
pub async fn notifications(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    mut q: QueryPairs,
) -> Result<Json<Inbox>, ApiError> {
    let unread = q.take_flag("unread");
    Ok(Json(inbox(&state, &user, unread, lang_of(&headers)).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadInput {
    /// One notification; all when absent.
    #[serde(default)]
    pub id: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadOut {
    pub marked: u64,
}

/// Marks the caller's notifications read.
#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "tasks", request_body = ReadInput,
    responses((status = 200, body = ReadOut)))]
pub async fn mark_read(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(input): ApiJson<ReadInput>,
) -> Result<Json<ReadOut>, ApiError> {
    let marked = state
        .store
        .mark_notifications_read(user.user.id, input.id)
        .await?;
    Ok(Json(ReadOut { marked }))
}

/// A recurring job as the admin page shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobOut {
    pub name: String,
    pub label: String,
    pub cadence: String,
    /// The last period completed (its first day); none before the first run.
    pub done_for: Option<NaiveDate>,
    pub last_finished_at: Option<DateTime<Utc>>,
    pub last_started_at: Option<DateTime<Utc>>,
    pub last_duration_ms: Option<i64>,
    pub runs: i64,
    pub failures: i64,
    pub last_error: Option<String>,
    pub last_failed_at: Option<DateTime<Utc>>,
    /// The server running it now.
    pub running_on: Option<String>,
}

/// Whether a user sees and runs the scheduler's jobs (system administration).
pub fn may_admin_jobs(user: &CurrentUser) -> bool {
    user.actor.grants.has(Permission::UserAdmin)
}

pub async fn job_list(state: &AppState, lang: Lang) -> Result<Vec<JobOut>, ApiError> {
    let states: HashMap<String, kehu_store::jobs::JobState> = state
        .store
        .job_states()
        .await?
        .into_iter()
        .map(|s| (s.job.clone(), s))
        .collect();
    let now = Utc::now();
    Ok(crate::jobs::JOBS
        .iter()
        .map(|j| {
            let s = states.get(j.name);
            JobOut {
                name: j.name.into(),
                label: if lang == Lang::En {
                    j.label_en
                } else {
                    j.label_zh
                }
                .into(),
                cadence: j.cadence.label(lang),
                done_for: s.and_then(|s| s.done_for),
                last_finished_at: s.and_then(|s| s.finished_at),
                last_started_at: s.and_then(|s| s.started_at),
                last_duration_ms: s.and_then(|s| s.duration_ms),
                runs: s.map_or(0, |s| s.runs),
                failures: s.map_or(0, |s| s.failures),
                last_error: s.and_then(|s| s.last_error.clone()),
                last_failed_at: s.and_then(|s| s.failed_at),
                running_on: s
                    .filter(|s| s.lease_until.is_some_and(|u| u > now))
                    .and_then(|s| s.running_on.clone()),
            }
        })
        .collect())
}

/// The scheduler's jobs: last run, duration, errors. Admins.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "tasks",
    responses((status = 200, body = Vec<JobOut>), (status = 403)))]
pub async fn jobs(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
) -> Result<Json<Vec<JobOut>>, ApiError> {
    if !may_admin_jobs(&user) {
        return Err(ApiError::Forbidden);
    }
    Ok(Json(job_list(&state, lang_of(&headers)).await?))
}

/// Runs a job now unless another server is running it. Admins.
#[utoipa::path(post, path = "/api/v1/jobs/{name}/run", tag = "tasks", params(("name" = String, Path)),
    responses((status = 200, body = crate::jobs::RunReport), (status = 403), (status = 404)))]
pub async fn run_job(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(name): Path<String>,
) -> Result<Json<crate::jobs::RunReport>, ApiError> {
    if !may_admin_jobs(&user) {
        return Err(ApiError::Forbidden);
    }
    let report = crate::jobs::run_now(&state, &name).await?;
    state.audit(
        Some(&user),
        "job.run",
        format!("job:{name}"),
        serde_json::json!({"ran": report.ran}),
    );
    Ok(Json(report))
}

/// A user's sales level.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SalesLevelInput {
    /// director | specialist | assistant; null: the role's
    pub level: Option<String>,
}

/// Sets which level of work (销售总监/销售专员/销售助理) a user takes. Admins.
#[utoipa::path(put, path = "/api/v1/users/{id}/sales-level", tag = "tasks", params(("id" = i64, Path)),
    request_body = SalesLevelInput,
    responses((status = 204), (status = 403), (status = 404), (status = 422, content_type = "application/problem+json")))]
pub async fn set_sales_level(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<SalesLevelInput>,
) -> Result<StatusCode, ApiError> {
    if !user.actor.grants.has(Permission::UserAdmin) {
        return Err(ApiError::Forbidden);
    }
    let level = input
        .level
        .as_deref()
        .filter(|l| !l.trim().is_empty())
        .map(|l| OwnerLevel::parse(l).map_err(|r| ApiError::field("level", r)))
        .transpose()?;
    if !state.store.set_sales_level(id, level).await? {
        return Err(ApiError::NotFound);
    }
    state.audit(
        Some(&user),
        "user.sales_level",
        crate::audit::user_target(id),
        serde_json::json!({"level": level.map(|l| l.key())}),
    );
    Ok(StatusCode::NO_CONTENT)
}

/// The webhooks and the latest 200 deliveries of notifications (e-mail and
/// webhook), optionally of one `status` (pending | sent | failed). User
/// administrators.
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "tasks",
    params(("status" = Option<String>, Query, description = "pending | sent | failed")),
    responses((status = 200, body = crate::deliveries::Outbox), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn deliveries(
    State(state): State<AppState>,
    user: CurrentUser,
    mut q: super::QueryPairs,
) -> Result<Json<crate::deliveries::Outbox>, ApiError> {
    let status = q.take("status").filter(|s| !s.is_empty());
    Ok(Json(
        crate::deliveries::outbox(&state, &user, status.as_deref()).await?,
    ))
}

/// Adds an outgoing webhook for notifications: `name`, `url` (http or
/// https), `format` (generic | wecom | dingtalk | feishu), `secret` (16+
/// characters; generated when absent, returned this once). Every POST is
/// signed: `X-Kehu-Signature: sha256=HMAC-SHA256(secret, "TIMESTAMP.BODY")`
/// with `X-Kehu-Timestamp`. User administrators.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "tasks", request_body = Object,
    responses((status = 201, body = crate::deliveries::CreatedWebhook), (status = 403), (status = 422, content_type = "application/problem+json")))]
pub async fn create_webhook(
    State(state): State<AppState>,
    user: CurrentUser,
    super::ApiJson(input): super::ApiJson<kehu_core::delivery::WebhookInput>,
) -> Result<(StatusCode, Json<crate::deliveries::CreatedWebhook>), ApiError> {
    let w = crate::deliveries::create_webhook(&state, &user, &input).await?;
    Ok((StatusCode::CREATED, Json(w)))
}

/// Stops a webhook: nothing more is sent to it.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/stop", tag = "tasks", params(("id" = i64, Path)),
    responses((status = 200, body = Object), (status = 403), (status = 404)))]
pub async fn stop_webhook(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<kehu_store::deliveries::Webhook>, ApiError> {
    Ok(Json(
        crate::deliveries::stop_webhook(&state, &user, id).await?,
    ))
}

/// A user's e-mail address for notifications.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailInput {
    /// null or empty: notifications stay in the inbox only.
    pub email: Option<String>,
}

/// Sets where a user's notifications are also e-mailed: the user themself
/// or a user administrator.
#[utoipa::path(put, path = "/api/v1/users/{id}/email", tag = "tasks", params(("id" = i64, Path)),
    request_body = EmailInput,
    responses((status = 200, body = Object), (status = 403), (status = 404), (status = 422, content_type = "application/problem+json")))]
pub async fn set_email(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    super::ApiJson(input): super::ApiJson<EmailInput>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let email = crate::deliveries::set_email(&state, &user, id, input.email.as_deref()).await?;
    Ok(Json(serde_json::json!({"user_id": id, "email": email})))
}
