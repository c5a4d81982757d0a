//! Strategies and the work they make: generating a period's tasks from the
//! strategy of each customer's class, tasks from events (class changes,
//! complaints, dormant customers), closing a task with its result into the
//! tracking log, reminders, overdue notices and escalation. The scheduler,
//! the API, the UI and `kehu tasks` all go through here.
//!
//! Times: due times are stored in UTC and worked out in China's local time
//! (UTC+8, no daylight saving) on the holiday calendar.

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::AppState;
use chrono::{DateTime, Months, NaiveDate, NaiveDateTime, Utc};
use kehu_core::calendar::WorkCalendar;
use kehu_core::privacy::text_for_log;
use kehu_core::role::{Ownership, Permission, Scope};
use kehu_core::strategy::{OwnerLevel, Period, Schedule, Strategy};
use kehu_core::task::{
    status_change_text, Priority, TaskInput, TaskKind, TaskResultInput, TaskSource, TaskStatus,
    DEFAULT_DUE_TIME, DORMANT_MONTHS,
};
use kehu_core::{Lang, Reason};
use kehu_store::tasks::{
    Closing, EventTable, GroupRow, NewNotification, NewTask, ReminderFlag, StaffMember, Task,
    TaskGroup, TaskScope,
};
use kehu_store::Store;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use utoipa::ToSchema;

/// China's offset from UTC.
const CHINA: chrono::Duration = chrono::Duration::hours(8);

pub fn to_utc(local: NaiveDateTime) -> DateTime<Utc> {
    (local - CHINA).and_utc()
}

pub fn to_local(at: DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc() + CHINA
}

/// The end of a working day, local, as a stored due time.
pub fn due_on(day: NaiveDate) -> DateTime<Utc> {
    to_utc(day.and_time(DEFAULT_DUE_TIME))
}

/// Hand-over and reactivation tasks are due this many working days on.
const HANDOVER_WORKING_DAYS: u32 = 3;
const REACTIVATION_WORKING_DAYS: u32 = 5;
/// Service requests of a class without a strategy are answered within this.
const DEFAULT_SLA_HOURS: u32 = 8;
/// Reminders go out this long before a task falls due.
pub const REMIND_BEFORE: chrono::Duration = chrono::Duration::hours(24);
/// A task overdue this many working minutes (one working day) goes to the manager.
const ESCALATE_AFTER_WORKING_MINUTES: i64 = 9 * 60;

/// Who does the work of each level in each team.
pub struct Staffing {
    /// Each active user's level (None: no sales level).
    levels: HashMap<i64, Option<OwnerLevel>>,
    /// Active users by team and level, by id.
    by_team: HashMap<(String, OwnerLevel), Vec<i64>>,
    /// Customer-service staff, who answer complaints, by id.
    service: Vec<i64>,
}

impl Staffing {
    pub async fn load(store: &Store) -> Result<Staffing, ApiError> {
        Ok(Staffing::new(store.staff().await?))
    }

    /// Indexed once: `owner_for` runs for every customer of a generation.
    pub fn new(staff: Vec<StaffMember>) -> Staffing {
        let mut by_team: HashMap<(String, OwnerLevel), Vec<i64>> = HashMap::new();
        for m in &staff {
            if let (Some(team), Some(level)) = (&m.team, m.level()) {
                by_team.entry((team.clone(), level)).or_default().push(m.id);
            }
        }
        Staffing {
            levels: staff.iter().map(|m| (m.id, m.level())).collect(),
            service: staff
                .iter()
                .filter(|m| m.role == "service")
                .map(|m| m.id)
                .collect(),
            by_team,
        }
    }

    /// Whether `id` is an active user.
    fn is_active(&self, id: i64) -> bool {
        self.levels.contains_key(&id)
    }

    fn of_level(&self, team: Option<&str>, level: OwnerLevel) -> &[i64] {
        team.and_then(|t| self.by_team.get(&(t.to_string(), level)))
            .map_or(&[], Vec::as_slice)
    }

    /// The owner of a customer's work at `level`: the customer's owner when
    /// they hold that level; else someone of that level in the customer's
    /// team (spread by customer id); else the owner; else the team's
    /// director; else nobody (the task waits on the manager's board).
    pub fn owner_for(
        &self,
        level: OwnerLevel,
        owner: Option<i64>,
        team: Option<&str>,
        customer_id: i64,
    ) -> Option<i64> {
        let owner = owner.filter(|o| self.is_active(*o));
        if owner.and_then(|o| self.levels.get(&o).copied().flatten()) == Some(level) {
            return owner;
        }
        let pick = |ids: &[i64]| -> Option<i64> {
            (!ids.is_empty()).then(|| ids[customer_id.rem_euclid(ids.len() as i64) as usize])
        };
        pick(self.of_level(team, level))
            .or(owner)
            .or_else(|| pick(self.of_level(team, OwnerLevel::Director)))
    }

    /// The managers of a team (sales directors), by id: escalation, review
    /// of suggested classes, the anomaly report.
    pub fn directors_of(&self, team: Option<&str>) -> Vec<i64> {
        self.of_level(team, OwnerLevel::Director).to_vec()
    }

    /// Whether `id` is a sales director (a team's manager).
    pub fn is_director(&self, id: i64) -> bool {
        self.levels.get(&id).copied().flatten() == Some(OwnerLevel::Director)
    }

    fn service_staff(&self) -> &[i64] {
        &self.service
    }
}

/// The strategies by (scheme, class).
pub struct StrategyBook {
    by_class: HashMap<(String, String), Strategy>,
}

impl StrategyBook {
    pub async fn load(store: &Store) -> Result<StrategyBook, ApiError> {
        Ok(StrategyBook {
            by_class: store
                .strategies()
                .await?
                .into_iter()
                .map(|s| {
                    (
                        (s.strategy.scheme_key.clone(), s.strategy.class_name.clone()),
                        s.strategy,
                    )
                })
                .collect(),
        })
    }

    pub fn get(&self, scheme: &str, class: &str) -> Option<&Strategy> {
        self.by_class.get(&(scheme.to_string(), class.to_string()))
    }

    fn schemes(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.by_class.keys().map(|(s, _)| s.clone()).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// The strategy that applies to a customer with these classes: the
    /// first scheme (by key) with a strategy for the customer's class.
    pub fn for_classes(&self, classes: &BTreeMap<String, String>) -> Option<&Strategy> {
        classes
            .iter()
            .find_map(|(scheme, class)| self.get(scheme, class))
    }
}

/// What generating a period's strategy tasks did.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Generation {
    /// e.g. 2026-Q4
    pub period: String,
    /// Customers in a class with a strategy.
    pub customers: u64,
    /// Tasks the strategies call for from today on in the period.
    pub planned: u64,
    /// Of those, made now (the rest existed from an earlier run).
    pub created: u64,
    /// Planned tasks per scheme and class.
    pub per_class: Vec<ClassTasks>,
    /// Time spent reading the customers' classes, and storing the tasks.
    pub reading_ms: u64,
    pub storing_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct ClassTasks {
    pub scheme_key: String,
    pub class_name: String,
    pub customers: u64,
    pub tasks: u64,
}

/// Up to this many customers' plans are redone one by one after class changes.
const REPLAN_ONE_BY_ONE: usize = 200;

/// Tasks per transaction while generating.
const GENERATION_BATCH: usize = 50_000;

fn strategy_title(s: &Strategy, item: &kehu_core::strategy::CadenceItem) -> String {
    format!(
        "{}（{} · {}）",
        item.action.label_zh(),
        s.class_name,
        item.text_zh()
    )
}

/// Makes the tasks every strategy calls for in `period`, from `from` on
/// (days already past are not planned), for every customer or one.
/// Idempotent: a slot already made is skipped.
pub async fn generate(
    store: &Store,
    period: &Period,
    from: NaiveDate,
    only: Option<i64>,
) -> Result<Generation, ApiError> {
    generate_in_batches(store, period, from, only, GENERATION_BATCH).await
}

/// [`generate`] with `batch` tasks per transaction (tests use small ones
/// to store many batches at once).
pub async fn generate_in_batches(
    store: &Store,
    period: &Period,
    from: NaiveDate,
    only: Option<i64>,
    batch: usize,
) -> Result<Generation, ApiError> {
    let book = StrategyBook::load(store).await?;
    let staffing = Staffing::load(store).await?;
    let calendar = WorkCalendar::new(&store.calendar_days().await?);
    let mut out = Generation {
        period: period.label(),
        ..Generation::default()
    };
    let mut pending = Pending::for_store(store);
    for scheme in book.schemes() {
        // Per class of the scheme: its strategy, each cadence item's schedule and group.
        let mut plans: HashMap<&str, ClassPlan> = HashMap::new();
        for ((s_key, class), strategy) in &book.by_class {
            if *s_key == scheme {
                let items = strategy
                    .cadence
                    .iter()
                    .map(|item| {
                        let group = TaskGroup {
                            kind: item.action.into(),
                            title: strategy_title(strategy, item),
                            detail: format!(
                                "资源：{}；目标：{}",
                                strategy.resources, strategy.goal
                            ),
                            priority: Priority::of_level(strategy.owner_level),
                            scheme_key: scheme.clone(),
                            class_name: strategy.class_name.clone(),
                        };
                        (
                            Schedule::new(*item, period, &calendar),
                            pending.add_group(group),
                        )
                    })
                    .collect();
                plans.insert(class.as_str(), (strategy, items));
            }
        }
        let started = std::time::Instant::now();
        let members = match only {
            Some(id) => store.class_members_of(&scheme, id).await?,
            None => store.class_members(&scheme).await?,
        };
        out.reading_ms += elapsed_ms(started);
        let mut per_class: HashMap<&str, (u64, u64)> = HashMap::new();
        for (customer_id, class, owner, team) in &members {
            let Some((strategy, items)) = plans.get(class.as_str()) else {
                continue;
            };
            out.customers += 1;
            let counts = per_class.entry(strategy.class_name.as_str()).or_default();
            counts.0 += 1;
            let assignee =
                staffing.owner_for(strategy.owner_level, *owner, team.as_deref(), *customer_id);
            for (plan, group) in items {
                for (slot, day) in plan.days_for(*customer_id) {
                    if day < from {
                        continue;
                    }
                    counts.1 += 1;
                    out.planned += 1;
                    let key = format!(
                        "s:{scheme}:{}:{customer_id}:{}:{slot}",
                        strategy.class_name,
                        plan.item.action.key()
                    );
                    pending.push(*group, (*customer_id, assignee, due_on(day), key));
                    if pending.len >= batch {
                        out.created += pending.flush(store).await?;
                    }
                }
            }
        }
        let mut classes: Vec<ClassTasks> = per_class
            .into_iter()
            .map(|(class, (customers, tasks))| ClassTasks {
                scheme_key: scheme.clone(),
                class_name: class.to_string(),
                customers,
                tasks,
            })
            .collect();
        classes.sort_by(|a, b| a.class_name.cmp(&b.class_name));
        out.per_class.extend(classes);
    }
    out.created += pending.finish(store).await?;
    out.storing_ms = pending.storing_ms;
    Ok(out)
}

fn elapsed_ms(since: std::time::Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// A class's strategy and, per cadence item, its schedule and the index
/// of its task group in [`Pending`].
type ClassPlan<'a> = (&'a Strategy, Vec<(Schedule, usize)>);

/// Strategy tasks waiting to be stored, by group (index into `groups`),
/// and the batches being stored.
struct Pending {
    groups: Vec<(TaskGroup, Vec<GroupRow>)>,
    len: usize,
    /// Batches stored at once, each in its own transaction on its own
    /// connection (1: one after the other).
    parallel: usize,
    storing: tokio::task::JoinSet<Result<u64, kehu_store::StoreError>>,
    /// Time the planner waited for the database.
    storing_ms: u64,
}

/// Batches a PostgreSQL server stores at once while generating: two
/// writers halved the time on a two-core host (each batch is its own
/// transaction already, so nothing else changes). SQLite has one writer.
const POSTGRES_PARALLEL_BATCHES: usize = 2;

impl Pending {
    fn for_store(store: &Store) -> Pending {
        Pending {
            groups: Vec::new(),
            len: 0,
            parallel: match store.backend() {
                kehu_store::Backend::Postgres => POSTGRES_PARALLEL_BATCHES,
                kehu_store::Backend::Sqlite => 1,
            },
            storing: tokio::task::JoinSet::new(),
            storing_ms: 0,
        }
    }

    fn add_group(&mut self, group: TaskGroup) -> usize {
        self.groups.push((group, Vec::new()));
        self.groups.len() - 1
    }

    fn push(&mut self, group: usize, row: GroupRow) {
        self.groups[group].1.push(row);
        self.len += 1;
    }

    /// Hands what is pending to a transaction of its own (groups stay
    /// registered), first waiting while `parallel` batches are being
    /// stored; returns the tasks made by the batches that finished.
    async fn flush(&mut self, store: &Store) -> Result<u64, ApiError> {
        if self.len == 0 {
            return Ok(0);
        }
        let mut made = 0;
        while self.storing.len() >= self.parallel {
            made += self.wait_one().await?;
        }
        let batch: Vec<(TaskGroup, Vec<GroupRow>)> = self
            .groups
            .iter_mut()
            .filter(|(_, rows)| !rows.is_empty())
            .map(|(group, rows)| (group.clone(), std::mem::take(rows)))
            .collect();
        self.len = 0;
        let store = store.clone();
        self.storing
            .spawn(async move { store.add_task_groups(&batch).await });
        if self.parallel == 1 {
            made += self.wait_one().await?;
        }
        Ok(made)
    }

    /// Stores what is pending and waits for every batch; returns the tasks
    /// made by the batches that finished.
    async fn finish(&mut self, store: &Store) -> Result<u64, ApiError> {
        let mut made = self.flush(store).await?;
        while !self.storing.is_empty() {
            made += self.wait_one().await?;
        }
        Ok(made)
    }

    async fn wait_one(&mut self) -> Result<u64, ApiError> {
        let started = std::time::Instant::now();
        let joined = self.storing.join_next().await;
        self.storing_ms += elapsed_ms(started);
        match joined {
            None => Ok(0),
            Some(Ok(stored)) => Ok(stored?),
            Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Some(Err(e)) => Err(ApiError::Internal(format!("storing tasks: {e}"))),
        }
    }
}

/// One page of an event job: how far it got, the tasks it made, and
/// whether more events may follow (the page was full).
#[derive(Debug, Clone, Copy)]
pub struct EventPage {
    pub up_to: i64,
    pub made: u64,
    pub more: bool,
}

impl EventPage {
    /// After reading `found` of at most `limit` events between `after` and
    /// `upto`: up to the last one read when the page was full, else `upto`
    /// (events the query skipped need no second look).
    fn after<T>(found: &[T], id: impl Fn(&T) -> i64, limit: i64, upto: i64) -> EventPage {
        let full = found.len() as i64 >= limit;
        EventPage {
            up_to: found.last().filter(|_| full).map_or(upto, id),
            made: 0,
            more: full,
        }
    }
}

/// Hand-over tasks for class changes recorded after history id `after`
/// (at most `limit`), with the customer's strategy tasks re-planned for the
/// new class.
pub async fn class_change_tasks(
    store: &Store,
    after: i64,
    limit: i64,
) -> Result<EventPage, ApiError> {
    let upto = store.last_event_id(EventTable::ClassHistory).await?;
    let changes = store.class_changes_after(after, upto, limit).await?;
    let mut page = EventPage::after(&changes, |c| c.id, limit, upto);
    if changes.is_empty() {
        return Ok(page);
    }
    let book = StrategyBook::load(store).await?;
    let staffing = Staffing::load(store).await?;
    let calendar = WorkCalendar::new(&store.calendar_days().await?);
    let today = store.today();
    let mut tasks = Vec::new();
    let mut replan = Vec::new();
    let mut first = Vec::new();
    for c in &changes {
        let Some(to) = book.get(&c.scheme_key, &c.to_class) else {
            continue;
        };
        // A first classification (a new customer) plans work, with nobody
        // to hand over from and no other class's tasks to cancel.
        if c.from_class.is_none() {
            first.push(c.customer_id);
            continue;
        }
        replan.push((c.customer_id, c.scheme_key.clone(), to.class_name.clone()));
        let from = c
            .from_class
            .as_deref()
            .and_then(|f| book.get(&c.scheme_key, f));
        let owner =
            staffing.owner_for(to.owner_level, c.owner_id, c.team.as_deref(), c.customer_id);
        let moved = from.map(|f| f.owner_level) != Some(to.owner_level);
        let from_name = c.from_class.clone().unwrap_or_else(|| "—".into());
        let title = if moved {
            format!(
                "交接：{from_name} → {}（由{}跟进）",
                to.class_name,
                to.owner_level.label_zh()
            )
        } else {
            format!("策略调整：{from_name} → {}", to.class_name)
        };
        tasks.push(NewTask {
            customer_id: c.customer_id,
            kind: TaskKind::Handover,
            source: TaskSource::ClassChange,
            source_key: Some(format!("h:{}", c.id)),
            title,
            detail: format!(
                "新策略：{}；服务响应 {} 小时；资源：{}；目标：{}",
                kehu_core::strategy::cadence_text(&to.cadence),
                to.sla_hours,
                to.resources,
                to.goal
            ),
            owner_id: owner,
            team: c.team.clone(),
            due_at: due_on(calendar.add_working_days(today, HANDOVER_WORKING_DAYS)),
            priority: Priority::of_level(to.owner_level),
            scheme_key: Some(c.scheme_key.clone()),
            class_name: Some(to.class_name.clone()),
            interaction_id: None,
            sla_hours: None,
            created_by: None,
        });
    }
    let made = store.add_tasks(&tasks).await?;
    let period = Period::quarter_of(today);
    let tomorrow = today.succ_opt().unwrap_or(today);
    for (customer_id, scheme, class) in &replan {
        store
            .cancel_strategy_tasks(*customer_id, scheme, class, due_on(today))
            .await?;
    }
    // Many at once (a bulk load, the nightly run): the daily plan of the
    // quarter (`strategy_tasks`) makes their tasks, in one pass.
    if replan.len() + first.len() <= REPLAN_ONE_BY_ONE {
        let customers = replan.iter().map(|(c, _, _)| *c).chain(first);
        for customer_id in customers {
            generate(store, &period, tomorrow, Some(customer_id)).await?;
        }
    }
    page.made = made;
    Ok(page)
}

/// Service tasks for complaints recorded after interaction `after`: due
/// within the SLA of the customer's class, counted in working hours.
pub async fn complaint_tasks(store: &Store, after: i64, limit: i64) -> Result<EventPage, ApiError> {
    let upto = store.last_event_id(EventTable::Interactions).await?;
    let complaints = store.complaints_after(after, upto, limit).await?;
    let mut page = EventPage::after(&complaints, |c| c.id, limit, upto);
    if complaints.is_empty() {
        return Ok(page);
    }
    let book = StrategyBook::load(store).await?;
    let staffing = Staffing::load(store).await?;
    let calendar = WorkCalendar::new(&store.calendar_days().await?);
    let service = staffing.service_staff();
    // Every complaint's customer's classes in one read.
    let ids: Vec<i64> = complaints.iter().map(|c| c.customer_id).collect();
    let mut classes: HashMap<i64, BTreeMap<String, String>> = HashMap::new();
    for (customer, scheme, class) in store
        .classes_in(&ids, |c, s, k| (c, s.to_string(), k.to_string()))
        .await?
    {
        classes.entry(customer).or_default().insert(scheme, class);
    }
    let none = BTreeMap::new();
    let mut tasks = Vec::new();
    for c in &complaints {
        let strategy = book.for_classes(classes.get(&c.customer_id).unwrap_or(&none));
        let sla = strategy.map_or(DEFAULT_SLA_HOURS, |s| s.sla_hours);
        let due = calendar.add_working_hours(to_local(c.recorded_at), sla);
        let owner = if service.is_empty() {
            c.owner_id
                .or_else(|| staffing.directors_of(c.team.as_deref()).first().copied())
        } else {
            Some(service[c.id.rem_euclid(service.len() as i64) as usize])
        };
        let urgent = matches!(c.severity.as_deref(), Some("high" | "critical"));
        tasks.push(NewTask {
            customer_id: c.customer_id,
            kind: TaskKind::Service,
            source: TaskSource::Complaint,
            source_key: Some(format!("c:{}", c.id)),
            title: format!("处理投诉（{} 小时内响应）", sla),
            detail: c.summary.clone(),
            owner_id: owner,
            team: c.team.clone(),
            due_at: to_utc(due),
            priority: if urgent {
                Priority::High
            } else {
                strategy.map_or(Priority::Normal, |s| Priority::of_level(s.owner_level))
            },
            scheme_key: strategy.map(|s| s.scheme_key.clone()),
            class_name: strategy.map(|s| s.class_name.clone()),
            interaction_id: Some(c.id),
            sla_hours: Some(sla),
            created_by: None,
        });
    }
    page.made = store.add_tasks(&tasks).await?;
    Ok(page)
}

/// Reactivation tasks for active customers without an order for
/// [`DORMANT_MONTHS`] months, once per dormant spell.
pub async fn dormant_tasks(store: &Store) -> Result<u64, ApiError> {
    let today = store.today();
    let cutoff = today
        .checked_sub_months(Months::new(DORMANT_MONTHS))
        .unwrap_or(today);
    let calendar = WorkCalendar::new(&store.calendar_days().await?);
    let staffing = Staffing::load(store).await?;
    let due = due_on(calendar.add_working_days(today, REACTIVATION_WORKING_DAYS));
    let tasks: Vec<NewTask> = store
        .dormant_customers(cutoff)
        .await?
        .into_iter()
        .map(|(customer_id, last, owner, team)| NewTask {
            customer_id,
            kind: TaskKind::Reactivation,
            source: TaskSource::Dormant,
            source_key: Some(format!(
                "d:{customer_id}:{}",
                last.map(|d| d.to_string()).unwrap_or_default()
            )),
            title: format!(
                "激活沉睡客户（上次下单 {}）",
                last.map(|d| d.to_string()).unwrap_or_else(|| "—".into())
            ),
            detail: String::new(),
            owner_id: owner
                .filter(|o| staffing.is_active(*o))
                .or_else(|| staffing.directors_of(team.as_deref()).first().copied()),
            team,
            due_at: due,
            priority: Priority::Normal,
            scheme_key: None,
            class_name: None,
            interaction_id: None,
            sla_hours: None,
            created_by: None,
        })
        .collect();
    Ok(store.add_tasks(&tasks).await?)
}

/// What one reminder round sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Reminded {
    pub due_soon: u64,
    pub overdue: u64,
    pub escalated: u64,
}

/// Tasks looked at per kind of reminder per round.
const REMINDER_ROUND: i64 = 2_000;

fn local_text(at: DateTime<Utc>) -> String {
    to_local(at).format("%Y-%m-%d %H:%M").to_string()
}

/// Reminders before due, notices on overdue, and escalation to the
/// team's managers of service tasks past their SLA and other tasks a
/// working day overdue.
pub async fn remind(store: &Store, now: DateTime<Utc>) -> Result<Reminded, ApiError> {
    let mut out = Reminded::default();
    for t in store
        .tasks_to_remind(ReminderFlag::Reminded, now + REMIND_BEFORE, REMINDER_ROUND)
        .await?
    {
        let notes: Vec<NewNotification> = t
            .owner_id
            .filter(|_| t.due_at > now)
            .map(|o| NewNotification {
                user_id: o,
                kind: "reminder",
                task_id: Some(t.id),
                text_zh: format!("任务“{}”将于 {} 到期", t.title, local_text(t.due_at)),
                text_en: format!("Task \"{}\" is due {}", t.title, local_text(t.due_at)),
            })
            .into_iter()
            .collect();
        if store
            .mark_reminded(t.id, ReminderFlag::Reminded, &notes)
            .await?
            && !notes.is_empty()
        {
            out.due_soon += 1;
        }
    }
    for t in store
        .tasks_to_remind(ReminderFlag::Overdue, now, REMINDER_ROUND)
        .await?
    {
        let notes: Vec<NewNotification> = t
            .owner_id
            .map(|o| NewNotification {
                user_id: o,
                kind: "overdue",
                task_id: Some(t.id),
                text_zh: format!("任务“{}”已逾期（{} 到期）", t.title, local_text(t.due_at)),
                text_en: format!(
                    "Task \"{}\" is overdue (was due {})",
                    t.title,
                    local_text(t.due_at)
                ),
            })
            .into_iter()
            .collect();
        if store
            .mark_reminded(t.id, ReminderFlag::Overdue, &notes)
            .await?
        {
            out.overdue += 1;
        }
    }
    let calendar = WorkCalendar::new(&store.calendar_days().await?);
    let staffing = Staffing::load(store).await?;
    for t in store
        .tasks_to_remind(ReminderFlag::Escalated, now, REMINDER_ROUND)
        .await?
    {
        let late = calendar.working_minutes_between(to_local(t.due_at), to_local(now));
        let breach = t.kind == TaskKind::Service;
        if !breach && late < ESCALATE_AFTER_WORKING_MINUTES {
            continue;
        }
        let what_zh = if breach {
            "超出服务时限（SLA）"
        } else {
            "逾期超过一个工作日"
        };
        let what_en = if breach {
            "is past its SLA"
        } else {
            "is more than a working day overdue"
        };
        let notes: Vec<NewNotification> = staffing
            .directors_of(t.team.as_deref())
            .into_iter()
            .filter(|d| Some(*d) != t.owner_id)
            .map(|d| NewNotification {
                user_id: d,
                kind: "escalation",
                task_id: Some(t.id),
                text_zh: format!("任务“{}”{what_zh}，到期 {}", t.title, local_text(t.due_at)),
                text_en: format!(
                    "Task \"{}\" {what_en} (due {})",
                    t.title,
                    local_text(t.due_at)
                ),
            })
            .collect();
        if store
            .mark_reminded(t.id, ReminderFlag::Escalated, &notes)
            .await?
        {
            out.escalated += 1;
        }
    }
    Ok(out)
}

/// Whose tasks a user sees: all with company-wide customer rights, their
/// team's with team-wide update rights (managers), else their own.
pub fn task_scope(user: &CurrentUser) -> TaskScope {
    match user.actor.grants.scope(Permission::CustomerUpdate) {
        Some(Scope::All) => TaskScope::All,
        Some(Scope::Team) => TaskScope::Team {
            team: user.user.team.clone(),
            user_id: user.user.id,
        },
        _ => TaskScope::Own {
            user_id: user.user.id,
        },
    }
}

/// Whether a user may see (and work on) a task: its owner, or a manager
/// whose reach covers the task's team.
pub fn may_work_on(user: &CurrentUser, task: &Task) -> bool {
    match task_scope(user) {
        TaskScope::All => true,
        TaskScope::Team { team, user_id } => {
            task.owner_id == Some(user_id) || (team.is_some() && task.team == team)
        }
        TaskScope::Own { user_id } => task.owner_id == Some(user_id),
    }
}

/// Loads a task the user may work on; 404 otherwise (ids of others' tasks
/// cannot be told from missing ones).
pub async fn task_for(state: &AppState, user: &CurrentUser, id: i64) -> Result<Task, ApiError> {
    match state.store.task(id).await? {
        Some(t) if may_work_on(user, &t) => Ok(t),
        _ => Err(ApiError::NotFound),
    }
}

/// A published scheme's classes, for validating class names.
pub async fn classes_lookup(
    state: &AppState,
) -> Result<impl Fn(&str) -> Option<Vec<String>>, ApiError> {
    let set = state.classifier.published().await?;
    let classes: HashMap<String, Vec<String>> = set
        .schemes
        .iter()
        .map(|s| (s.key.clone(), s.class_keys()))
        .collect();
    Ok(move |key: &str| classes.get(key).cloned())
}

/// Makes a task by hand for a customer the user may read, owned by the
/// user or, for managers, by someone their reach covers.
pub async fn create(
    state: &AppState,
    user: &CurrentUser,
    input: &TaskInput,
) -> Result<i64, ApiError> {
    let today = state.store.today();
    let fields = input.validate(today)?;
    let customer = match state.store.customer_by_code(&fields.customer).await {
        Ok(c) => c,
        Err(kehu_store::StoreError::NotFound) => {
            return Err(ApiError::field(
                "customer",
                Reason::Other {
                    zh: format!("没有客户编号“{}”", fields.customer),
                    en: format!("no customer with code \"{}\"", fields.customer),
                },
            ))
        }
        Err(e) => return Err(e.into()),
    };
    let readable = user.actor.may(
        Permission::CustomerRead,
        Ownership {
            owner_id: customer.owner_id,
            team: customer.team.as_deref(),
        },
    );
    if !readable {
        // Same answer as a code that does not exist: other teams' customers stay unknown.
        return Err(ApiError::field(
            "customer",
            Reason::Other {
                zh: format!("没有客户编号“{}”", fields.customer),
                en: format!("no customer with code \"{}\"", fields.customer),
            },
        ));
    }
    let owner_id = fields.owner_id.unwrap_or(user.user.id);
    if owner_id != user.user.id {
        let owner = state.store.user(owner_id).await.ok().filter(|u| u.active);
        let allowed = match (owner, task_scope(user)) {
            (None, _) => false,
            (Some(_), TaskScope::All) => true,
            (Some(o), TaskScope::Team { team, .. }) => team.is_some() && o.team == team,
            (Some(_), TaskScope::Own { .. }) => false,
        };
        if !allowed {
            return Err(ApiError::field(
                "owner_id",
                Reason::Other {
                    zh: "只能把任务分派给自己或本团队的在职成员".into(),
                    en: "a task goes to yourself or an active member of your team".into(),
                },
            ));
        }
    }
    let task = NewTask {
        customer_id: customer.id,
        kind: fields.kind,
        source: TaskSource::Manual,
        source_key: None,
        title: fields.title,
        detail: fields.detail,
        owner_id: Some(owner_id),
        team: customer.team.clone(),
        due_at: to_utc(fields.due_on.and_time(fields.due_time)),
        priority: fields.priority,
        scheme_key: None,
        class_name: None,
        interaction_id: None,
        sla_hours: None,
        created_by: Some(user.user.id),
    };
    let notify = (owner_id != user.user.id).then(|| NewNotification {
        user_id: owner_id,
        kind: "assigned",
        task_id: None,
        text_zh: format!("{} 给你分派了任务“{}”", user.user.display_name, task.title),
        text_en: format!(
            "{} assigned you the task \"{}\"",
            user.user.display_name, task.title
        ),
    });
    let id = state.store.add_task(&task, notify).await?;
    state.audit(
        Some(user),
        "task.create",
        format!("task:{id}"),
        serde_json::json!({ "customer": customer.code, "title": text_for_log(&task.title), "owner_id": owner_id }),
    );
    Ok(id)
}

/// The most tasks one segment may be given at once.
pub const SEGMENT_TASKS_MAX: usize = 5_000;

/// Tasks for every customer of a segment the user may read: the same task
/// for each, owned by the customer's owner (the user for customers without
/// one), all in one transaction; asking again with the same segment, title
/// and due day makes nothing twice. Returns (customers, tasks made).
pub async fn create_for_segment(
    state: &AppState,
    user: &CurrentUser,
    segment: &str,
    input: &TaskInput,
) -> Result<(usize, u64), ApiError> {
    let today = state.store.today();
    // The task's own fields are checked as for one task (the customer comes from the segment).
    let fields = TaskInput {
        customer: Some("-".into()),
        ..input.clone()
    }
    .validate(today)?;
    let scope = user.scope_filter(Permission::CustomerRead)?;
    let (compiled, _) =
        crate::api::segments::compile_for_reader(state, &user.actor.fields, segment, "segment")
            .await?;
    let ids = state.segments.ids(&compiled.plan, &scope).await?;
    if ids.is_empty() {
        return Err(ApiError::field(
            "segment",
            Reason::Other {
                zh: "该分群在您的权限范围内没有客户".into(),
                en: "the segment holds no customer you may see".into(),
            },
        ));
    }
    if ids.len() > SEGMENT_TASKS_MAX {
        return Err(ApiError::field(
            "segment",
            Reason::Other {
                zh: format!("该分群有 {} 位客户，一次最多 {SEGMENT_TASKS_MAX} 位，请缩小分群", ids.len()),
                en: format!(
                    "the segment holds {} customers; at most {SEGMENT_TASKS_MAX} at once, narrow it",
                    ids.len()
                ),
            },
        ));
    }
    let customers = state.store.customers_in(&ids).await?;
    // One key per request content, so a repeated request adds nothing.
    let request_key = {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(compiled.stable.as_bytes());
        h.update([0]);
        h.update(fields.title.as_bytes());
        h.update([0]);
        h.update(fields.due_on.to_string().as_bytes());
        hex::encode(&h.finalize()[..8])
    };
    let tasks: Vec<NewTask> = customers
        .iter()
        .map(|c| NewTask {
            customer_id: c.id,
            kind: fields.kind,
            source: TaskSource::Manual,
            source_key: Some(format!("segment:{request_key}:{}", c.id)),
            title: fields.title.clone(),
            detail: fields.detail.clone(),
            owner_id: Some(c.owner_id.unwrap_or(user.user.id)),
            team: c.team.clone(),
            due_at: to_utc(fields.due_on.and_time(fields.due_time)),
            priority: fields.priority,
            scheme_key: None,
            class_name: None,
            interaction_id: None,
            sla_hours: None,
            created_by: Some(user.user.id),
        })
        .collect();
    let made = state.store.add_tasks(&tasks).await?;
    state.audit(
        Some(user),
        "task.create_for_segment",
        format!("segment:{}", compiled.stable),
        serde_json::json!({ "customers": customers.len(), "made": made, "title": text_for_log(&fields.title) }),
    );
    Ok((customers.len(), made))
}

/// How a task is closed.
#[derive(Debug, Clone, Default, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseInput {
    /// done (default) | cancelled
    #[serde(default)]
    pub status: Option<String>,
    #[serde(flatten)]
    #[schema(inline)]
    pub result: TaskResultInputDoc,
}

/// The result fields (kehu-core's `TaskResultInput`).
#[derive(Debug, Clone, Default, serde::Deserialize, ToSchema)]
pub struct TaskResultInputDoc {
    pub summary: Option<String>,
    pub happened_on: Option<String>,
    pub next_step: Option<String>,
    pub status_change: Option<String>,
    pub suggested_scheme: Option<String>,
    pub suggested_class: Option<String>,
}

impl From<TaskResultInputDoc> for TaskResultInput {
    fn from(d: TaskResultInputDoc) -> TaskResultInput {
        TaskResultInput {
            summary: d.summary,
            happened_on: d.happened_on,
            next_step: d.next_step,
            status_change: d.status_change,
            suggested_scheme: d.suggested_scheme,
            suggested_class: d.suggested_class,
        }
    }
}

/// Closes a task: done with a result (a tracking-log entry with the
/// status change and the class after re-evaluation; a follow-up call after
/// a service task; the manager's review of a suggested class), or
/// cancelled with a reason.
pub async fn close(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    status: Option<&str>,
    input: TaskResultInput,
) -> Result<Task, ApiError> {
    let task = task_for(state, user, id).await?;
    let status = match status.map(str::trim).filter(|s| !s.is_empty()) {
        None => TaskStatus::Done,
        Some(s) => match TaskStatus::parse(s) {
            Ok(TaskStatus::Open) | Err(_) => {
                return Err(ApiError::field(
                    "status",
                    Reason::UnknownOption {
                        allowed: vec!["done".into(), "cancelled".into()],
                    },
                ))
            }
            Ok(s) => s,
        },
    };
    if task.status != TaskStatus::Open {
        return Err(ApiError::Conflict {
            zh: format!("任务已{}", task.status.label_zh()),
            en: format!("the task is {} already", task.status.key()),
        });
    }
    let today = state.store.today();
    let lookup = classes_lookup(state).await?;
    let mut result = input.validate(today, lookup)?;
    let mut closing = Closing {
        result: None,
        class_after: None,
        follow_on: Vec::new(),
        notifications: Vec::new(),
    };
    if status == TaskStatus::Done {
        if result.status_change.is_none() {
            // Since the last entry, or (the first) since the day before the task was made.
            let since = state
                .store
                .last_follow_up_on(task.customer_id, result.happened_on)
                .await?
                .or(to_local(task.created_at).date().pred_opt());
            let (orders, complaints) = state
                .store
                .activity_between(task.customer_id, since, result.happened_on)
                .await?;
            result.status_change = status_change_text(orders, complaints);
        }
        // The class the system gives now, in the scheme whose strategy made the task.
        state
            .classifier
            .reclassify(
                task.customer_id,
                kehu_store::classes::cause::DATA_CHANGE,
                Some(user.user.id),
            )
            .await?;
        let classes = state.store.classes_of_customer(task.customer_id).await?;
        let scheme = task
            .scheme_key
            .clone()
            .or_else(|| result.suggestion.as_ref().map(|(s, _)| s.clone()))
            .unwrap_or_else(|| "value_tier".into());
        closing.class_after = classes.get(&scheme).map(|c| (scheme.clone(), c.clone()));
        let calendar = WorkCalendar::new(&state.store.calendar_days().await?);
        let staffing = Staffing::load(&state.store).await?;
        let customer = state.store.customer(task.customer_id).await?;
        if task.kind == TaskKind::Service {
            closing.follow_on.push(NewTask {
                customer_id: task.customer_id,
                kind: TaskKind::FollowUpCall,
                source: TaskSource::Resolved,
                source_key: Some(format!("r:{}", task.id)),
                title: "服务解决后回访".into(),
                detail: result.summary.clone(),
                owner_id: customer
                    .owner_id
                    .filter(|o| staffing.is_active(*o))
                    .or(task.owner_id),
                team: customer.team.clone(),
                due_at: due_on(calendar.next_working_day(today)),
                priority: task.priority,
                scheme_key: task.scheme_key.clone(),
                class_name: task.class_name.clone(),
                interaction_id: task.interaction_id,
                sla_hours: None,
                created_by: Some(user.user.id),
            });
        }
        if let Some((scheme, class)) = &result.suggestion {
            let current = classes.get(scheme).cloned().unwrap_or_else(|| "—".into());
            if *class != current {
                let managers = staffing.directors_of(customer.team.as_deref());
                let manager = managers.first().copied();
                closing.follow_on.push(NewTask {
                    customer_id: task.customer_id,
                    kind: TaskKind::Review,
                    source: TaskSource::Suggestion,
                    source_key: Some(format!("v:{}", task.id)),
                    title: format!("审核分类建议：{current} → {class}（{}）", customer.name),
                    detail: format!("{}：{}", user.user.display_name, result.summary),
                    owner_id: manager.or(Some(user.user.id)),
                    team: customer.team.clone(),
                    due_at: due_on(calendar.add_working_days(today, HANDOVER_WORKING_DAYS)),
                    priority: Priority::Normal,
                    scheme_key: Some(scheme.clone()),
                    class_name: Some(class.clone()),
                    interaction_id: None,
                    sla_hours: None,
                    created_by: Some(user.user.id),
                });
                closing
                    .notifications
                    .extend(managers.into_iter().map(|m| NewNotification {
                        user_id: m,
                        kind: "suggestion",
                        task_id: None,
                        text_zh: format!(
                            "{} 建议把 {} 从 {current} 调整为 {class}",
                            user.user.display_name, customer.name
                        ),
                        text_en: format!(
                            "{} suggests moving {} from {current} to {class}",
                            user.user.display_name, customer.name
                        ),
                    }));
            }
        }
        closing.result = Some(result.clone());
    }
    if !state
        .store
        .close_task(&task, status, user.user.id, &closing)
        .await?
    {
        return Err(ApiError::Conflict {
            zh: "任务已被关闭".into(),
            en: "the task was closed meanwhile".into(),
        });
    }
    state.audit(
        Some(user),
        "task.close",
        format!("task:{}", task.id),
        serde_json::json!({ "status": status.key(), "summary": text_for_log(&result.summary) }),
    );
    state.store.task(task.id).await?.ok_or(ApiError::NotFound)
}

/// The label of a task kind in the reader's language.
pub fn kind_label(kind: TaskKind, lang: Lang) -> &'static str {
    if lang == Lang::En {
        kind.key()
    } else {
        kind.label_zh()
    }
}
