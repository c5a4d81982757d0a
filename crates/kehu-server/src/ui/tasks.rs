//! Follow-up work in the browser: my tasks (today / this week / overdue /
//! all open / done), a task with its close form, the manager's team board
//! with bulk reassign, a month calendar, the inbox, the tracking log, and
//! the admin pages for strategies and the scheduler. Everything goes
//! through `crate::tasks` and the API module's helpers, as the API does.

use super::forms::FormData;
use super::Page;
use crate::api::tasks::{self as api, ReassignInput, TaskQuery};
use crate::api::QueryPairs;
use crate::error::ApiError;
use crate::tasks::{self as work, to_local};
use crate::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use chrono::{Datelike, Duration, NaiveDate};
use kehu_core::strategy::{GoalMetric, OwnerLevel, StrategyInput};
use kehu_core::task::{Priority, TaskInput, TaskKind, TaskResultInput};
use kehu_core::Lang;
use kehu_store::tasks::{TaskFilter, TaskScope};
use minijinja::{context, Value};
use std::collections::BTreeMap;

const PAGE_SIZE: i64 = 50;

pub(super) fn choices<T: Copy>(
    all: &[T],
    key: fn(T) -> &'static str,
    zh: fn(T) -> &'static str,
    lang: Lang,
) -> Vec<(String, String)> {
    all.iter()
        .map(|&v| {
            let label = if lang == Lang::En { key(v) } else { zh(v) };
            (key(v).to_string(), label.to_string())
        })
        .collect()
}

/// The people a manager's reach covers (their team, or everyone for
/// admins): (id, name), the deactivated marked, or left out with `active_only`.
async fn people_in_reach(
    state: &AppState,
    page: &Page,
    active_only: bool,
) -> Result<Vec<(String, String)>, ApiError> {
    let scope = work::task_scope(&page.user);
    Ok(state
        .store
        .people()
        .await?
        .into_iter()
        .filter(|p| p.active || !active_only)
        .filter(|p| match &scope {
            TaskScope::All => true,
            TaskScope::Team { team, .. } => team.is_some() && p.team == *team,
            TaskScope::Own { user_id } => p.id == *user_id,
        })
        .map(|p| {
            let mark = if p.active {
                ""
            } else {
                page_t(page, "（停用）", " (deactivated)")
            };
            (p.id.to_string(), format!("{}{mark}", p.name))
        })
        .collect())
}

fn page_t(page: &Page, zh: &'static str, en: &'static str) -> &'static str {
    if page.lang == Lang::En {
        en
    } else {
        zh
    }
}

fn query_of(raw: Option<&str>) -> QueryPairs {
    QueryPairs(FormData::from_query(raw).0)
}

/// GET /tasks?view=&owner=&page=
pub async fn mine(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let form = FormData::from_query(raw.as_deref());
    let view = form.get("view").unwrap_or("today").to_string();
    let owner = form.get("owner").unwrap_or("me").to_string();
    let n: i64 = form
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let mut q = query_of(raw.as_deref());
    q.0.retain(|(k, _)| k != "page" && k != "view" && k != "limit" && k != "offset");
    q.0.push(("view".into(), view.clone()));
    q.0.push(("limit".into(), PAGE_SIZE.to_string()));
    q.0.push(("offset".into(), ((n - 1) * PAGE_SIZE).to_string()));
    let tq = api::task_query(&page.user, &mut q)?;
    render_list(
        &state,
        &page,
        &tq,
        &view,
        &owner,
        n,
        BTreeMap::new(),
        &FormData(Vec::new()),
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn render_list(
    state: &AppState,
    page: &Page,
    tq: &TaskQuery,
    view: &str,
    owner: &str,
    n: i64,
    errors: BTreeMap<String, String>,
    form: &FormData,
) -> Result<Response, ApiError> {
    let list = api::page(state, &page.user, tq, page.lang).await?;
    let manager = !matches!(work::task_scope(&page.user), TaskScope::Own { .. });
    let team_members = if manager {
        people_in_reach(state, page, true).await?
    } else {
        Vec::new()
    };
    let pages = (list.total + PAGE_SIZE - 1) / PAGE_SIZE;
    Ok(page.render(
        state,
        "tasks/list.html",
        "tasks",
        context! {
            tasks => Value::from_serialize(&list.items), total => list.total, view, owner, page => n, pages, manager,
            team_members,
            kinds => choices(TaskKind::ALL, TaskKind::key, TaskKind::label_zh, page.lang),
            priorities => choices(Priority::ALL, Priority::key, Priority::label_zh, page.lang),
            today => state.store.today().to_string(),
            errors, form => form.0.iter().cloned().collect::<BTreeMap<String, String>>(),
        },
    ))
}

/// POST /tasks: a task made by hand.
pub async fn create(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let input = TaskInput {
        customer: form.text("customer"),
        kind: form.text("kind"),
        title: form.text("title"),
        detail: form.text("detail"),
        due_on: form.text("due_on"),
        due_time: form.text("due_time"),
        priority: form.text("priority"),
        owner_id: form.get("owner_id").and_then(|o| o.parse().ok()),
    };
    match work::create(&state, &page.user, &input).await {
        Ok(id) => Ok(page.redirect(&format!("/tasks/{id}"))),
        Err(ApiError::Validation(e)) => {
            let errors = super::forms::error_map(&e, page.lang);
            let mut q = QueryPairs(vec![("view".into(), "open".into())]);
            let tq = api::task_query(&page.user, &mut q)?;
            render_list(&state, &page, &tq, "open", "me", 1, errors, &form).await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

/// GET /tasks/{id}
pub async fn detail(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    render_detail(&state, &page, id, BTreeMap::new(), &FormData(Vec::new())).await
}

async fn render_detail(
    state: &AppState,
    page: &Page,
    id: i64,
    errors: BTreeMap<String, String>,
    form: &FormData,
) -> Result<Response, ApiError> {
    let task = work::task_for(state, &page.user, id).await?;
    let out = api::tasks_out(state, std::slice::from_ref(&task), page.lang)
        .await?
        .pop()
        .ok_or(ApiError::NotFound)?;
    let set = state.classifier.published().await?;
    let schemes: Vec<(String, String)> = set
        .schemes
        .iter()
        .map(|s| (s.key.clone(), s.spec.name.clone()))
        .collect();
    let classes: Vec<(String, String)> = set
        .schemes
        .iter()
        .flat_map(|s| {
            s.class_keys()
                .into_iter()
                .map(move |c| (c.clone(), format!("{} · {c}", s.spec.name)))
        })
        .collect();
    let log = api::follow_up_page(
        state,
        &page.user,
        &kehu_store::tasks::FollowUpFilter {
            customer_id: Some(task.customer_id),
            ..Default::default()
        },
        20,
        0,
    )
    .await?;
    Ok(page.render(
        state,
        "tasks/detail.html",
        "tasks",
        context! {
            task => Value::from_serialize(&out), schemes, classes,
            log => Value::from_serialize(&log.items),
            today => state.store.today().to_string(),
            errors, form => form.0.iter().cloned().collect::<BTreeMap<String, String>>(),
        },
    ))
}

/// POST /tasks/{id}/close: done with a result, or cancelled with a reason.
pub async fn close(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let input = TaskResultInput {
        summary: form.text("summary"),
        happened_on: form.text("happened_on"),
        next_step: form.text("next_step"),
        status_change: form.text("status_change"),
        suggested_scheme: form.text("suggested_scheme"),
        suggested_class: form.text("suggested_class"),
    };
    match work::close(&state, &page.user, id, form.get("status"), input).await {
        Ok(_) => Ok(page.redirect(&format!("/tasks/{id}"))),
        Err(ApiError::Validation(e)) => {
            render_detail(
                &state,
                &page,
                id,
                super::forms::error_map(&e, page.lang),
                &form,
            )
            .await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

/// GET /tasks/board: the manager's team board and bulk reassign.
pub async fn board(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let rows = api::board_rows(&state, &page.user).await?;
    let users = people_in_reach(&state, &page, false).await?;
    let (unassigned, _) = state
        .store
        .list_tasks(
            &TaskFilter {
                unassigned: true,
                ..Default::default()
            },
            &work::task_scope(&page.user),
            PAGE_SIZE,
            0,
        )
        .await?;
    let unassigned = api::tasks_out(&state, &unassigned, page.lang).await?;
    let moved = super::counts_param(&FormData::from_query(raw.as_deref()), "moved");
    let sla = api::sla_report(&state, &page.user, None, None).await?;
    Ok(page.render(
        &state,
        "tasks/board.html",
        "tasks",
        context! { rows => Value::from_serialize(&rows), users, unassigned => Value::from_serialize(&unassigned), moved, sla => Value::from_serialize(&sla) },
    ))
}

/// POST /tasks/reassign
pub async fn reassign(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let id = |name: &str| form.get(name).and_then(|v| v.parse().ok()).unwrap_or(0);
    let input = ReassignInput {
        from_user: id("from_user"),
        to_user: id("to_user"),
        customers: form.checked("customers"),
    };
    let done = api::reassign_work(&state, &page.user, &input).await;
    Ok(page.after(&state, done, |r| {
        format!("/tasks/board?moved={}-{}-0", r.tasks, r.customers)
    }))
}

/// GET /tasks/calendar?month=2026-12: the caller's tasks by day.
pub async fn calendar(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let form = FormData::from_query(raw.as_deref());
    let today = state.store.today();
    let first = form
        .get("month")
        .and_then(|m| NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").ok())
        .unwrap_or_else(|| today.with_day(1).unwrap_or(today));
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first);
    let prev = first
        .checked_sub_months(chrono::Months::new(1))
        .unwrap_or(first);
    let filter = TaskFilter {
        owner_id: Some(page.user.user.id),
        any_status: true,
        due_from: Some(work::to_utc(first.and_time(chrono::NaiveTime::MIN))),
        due_before: Some(work::to_utc(next.and_time(chrono::NaiveTime::MIN))),
        ..Default::default()
    };
    let (tasks, _) = state
        .store
        .list_tasks(&filter, &work::task_scope(&page.user), 2000, 0)
        .await?;
    let items = api::tasks_out(&state, &tasks, page.lang).await?;
    let mut by_day: BTreeMap<NaiveDate, Vec<&api::TaskOut>> = BTreeMap::new();
    for t in &items {
        by_day.entry(to_local(t.due_at).date()).or_default().push(t);
    }
    let calendar = kehu_core::calendar::WorkCalendar::new(&state.store.calendar_days().await?);
    // Weeks from the Monday on or before the 1st.
    let start = first - Duration::days(i64::from(first.weekday().num_days_from_monday()));
    let mut weeks = Vec::new();
    let mut day = start;
    while day < next {
        let mut week = Vec::new();
        for _ in 0..7 {
            let tasks: Vec<Value> = by_day
                .get(&day)
                .map(|ts| ts.iter().map(Value::from_serialize).collect())
                .unwrap_or_default();
            week.push(context! {
                date => day.to_string(), day => day.day(), in_month => day.month() == first.month(),
                working => calendar.is_working_day(day), today => day == today, tasks,
            });
            day += Duration::days(1);
        }
        weeks.push(week);
    }
    Ok(page.render(
        &state,
        "tasks/calendar.html",
        "tasks",
        context! {
            weeks, month => first.format("%Y-%m").to_string(),
            prev => prev.format("%Y-%m").to_string(), next => next.format("%Y-%m").to_string(),
        },
    ))
}

/// GET /inbox
pub async fn inbox(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    let inbox = api::inbox(&state, &page.user, false, page.lang).await?;
    Ok(page.render(
        &state,
        "tasks/inbox.html",
        "inbox",
        context! { inbox => Value::from_serialize(&inbox) },
    ))
}

/// POST /inbox/read: one notification (`id`) or all.
pub async fn mark_read(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let id = form.get("id").and_then(|v| v.parse().ok());
    let done = state
        .store
        .mark_notifications_read(page.user.user.id, id)
        .await
        .map_err(ApiError::from);
    Ok(page.after(&state, done, |_| "/inbox".into()))
}

/// GET /follow-ups: the tracking log with filters and exports.
pub async fn follow_ups(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let mut q = query_of(raw.as_deref());
    let filter = api::follow_up_filter(&mut q)?;
    let n: i64 = q.take_number("page", 1)?.max(1);
    let log =
        api::follow_up_page(&state, &page.user, &filter, PAGE_SIZE, (n - 1) * PAGE_SIZE).await?;
    let pages = (log.total + PAGE_SIZE - 1) / PAGE_SIZE;
    let query = raw.unwrap_or_default();
    let export_query: String = FormData::from_query(Some(&query))
        .0
        .into_iter()
        .filter(|(k, _)| k != "page")
        .map(|(k, v)| {
            format!(
                "{k}={}",
                form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    Ok(page.render(
        &state,
        "tasks/follow_ups.html",
        "follow_ups",
        context! {
            log => Value::from_serialize(&log.items), total => log.total, page => n, pages, export_query,
            from => filter.from.map(|d| d.to_string()), to => filter.to.map(|d| d.to_string()),
            suggested => filter.suggested, customer => filter.customer_id,
        },
    ))
}

/// GET /admin/strategies
pub async fn strategies(State(state): State<AppState>, page: Page) -> Result<Response, ApiError> {
    render_strategies(&state, &page, BTreeMap::new(), &FormData(Vec::new()), None).await
}

async fn render_strategies(
    state: &AppState,
    page: &Page,
    errors: BTreeMap<String, String>,
    form: &FormData,
    saved: Option<String>,
) -> Result<Response, ApiError> {
    let list: Vec<api::StrategyOut> = state
        .store
        .strategies()
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let set = state.classifier.published().await?;
    let schemes: Vec<(String, String)> = set
        .schemes
        .iter()
        .map(|s| (s.key.clone(), s.spec.name.clone()))
        .collect();
    let lang = page.lang;
    Ok(page.render(
        state,
        "tasks/strategies.html",
        "strategies",
        context! {
            strategies => Value::from_serialize(&list), schemes,
            metrics => choices(GoalMetric::ALL, GoalMetric::key, GoalMetric::label_zh, lang),
            levels => choices(OwnerLevel::ALL, OwnerLevel::key, OwnerLevel::label_zh, lang),
            can_edit => api::may_edit_strategies(&page.user),
            errors, form => form.0.iter().cloned().collect::<BTreeMap<String, String>>(), saved,
        },
    ))
}

/// POST /admin/strategies: creates or replaces the strategy of a class.
pub async fn save_strategy(
    State(state): State<AppState>,
    page: Page,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    let input = StrategyInput {
        scheme_key: form.text("scheme_key"),
        class_name: form.text("class_name"),
        cadence: form.text("cadence"),
        sla_hours: form
            .get("sla_hours")
            .map(|h| h.trim().parse().unwrap_or(-1)),
        resources: form.text("resources"),
        goal: form.text("goal"),
        goal_metric: form.text("goal_metric"),
        goal_target: form.get("goal_target").and_then(|t| t.trim().parse().ok()),
        owner_level: form.text("owner_level"),
    };
    match api::save(&state, &page.user, &input).await {
        Ok(s) => Ok(page.redirect(&format!("/admin/strategies#strategy-{}", s.id))),
        Err(ApiError::Validation(e)) => {
            render_strategies(
                &state,
                &page,
                super::forms::error_map(&e, page.lang),
                &form,
                None,
            )
            .await
        }
        Err(e) => Ok(page.error_page(&state, e)),
    }
}

/// POST /admin/strategies/{id}/delete
pub async fn delete_strategy(
    State(state): State<AppState>,
    page: Page,
    Path(id): Path<i64>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    if !api::may_edit_strategies(&page.user) {
        return Err(ApiError::Forbidden);
    }
    let done = state
        .store
        .delete_strategy(id)
        .await
        .map_err(ApiError::from);
    if matches!(done, Ok(true)) {
        state.audit(
            Some(&page.user),
            "strategy.delete",
            format!("strategy:{id}"),
            serde_json::json!({}),
        );
    }
    Ok(page.after(&state, done, |_| "/admin/strategies".into()))
}

/// GET /admin/jobs: the scheduler's jobs.
pub async fn jobs(
    State(state): State<AppState>,
    page: Page,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    if !api::may_admin_jobs(&page.user) {
        return Err(ApiError::Forbidden);
    }
    let list = api::job_list(&state, page.lang).await?;
    let ran = FormData::from_query(raw.as_deref()).text("ran");
    Ok(page.render(
        &state,
        "tasks/jobs.html",
        "jobs",
        context! { jobs => Value::from_serialize(&list), ran },
    ))
}

/// POST /admin/jobs/{name}/run
pub async fn run_job(
    State(state): State<AppState>,
    page: Page,
    Path(name): Path<String>,
    form: FormData,
) -> Result<Response, ApiError> {
    page.check_csrf(&form)?;
    if !api::may_admin_jobs(&page.user) {
        return Err(ApiError::Forbidden);
    }
    let done = crate::jobs::run_now(&state, &name).await;
    if let Ok(r) = &done {
        state.audit(
            Some(&page.user),
            "job.run",
            format!("job:{name}"),
            serde_json::json!({"ran": r.ran}),
        );
    }
    Ok(page.after(&state, done, |r| {
        format!("/admin/jobs?ran={}", if r.ran { &name } else { "" })
    }))
}
