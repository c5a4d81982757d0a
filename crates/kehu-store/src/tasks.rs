//! Strategies per class, follow-up tasks, the tracking log (跟踪记录) and
//! in-app notifications.
//!
//! *Invariants*: a generated task carries a `source_key` (strategy slot,
//! class-change history id, complaint id, dormancy spell…) that is unique,
//! so generating again makes nothing twice. Closing a task, writing its
//! tracking-log entry and the tasks it leads to (a follow-up call, the
//! manager's review of a suggested class) happen in one transaction, and
//! only an open task closes. A notification is written in the same
//! transaction as the task flag that says it was sent, so none is sent twice.

use crate::bulk_read::Read;
use crate::db::{decode_n, value_groups, Arg, Exec, RowGet, Tx};
use crate::error::StoreError;
use crate::listing::{ScopeFilter, SqlBuilder};
use crate::{args, Backend, Store};
use chrono::{DateTime, NaiveDate, Utc};
use kehu_core::strategy::{CadenceItem, GoalMetric, OwnerLevel, Strategy};
use kehu_core::task::{Priority, TaskKind, TaskResult, TaskSource, TaskStatus};
use serde::Serialize;

/// A stored strategy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredStrategy {
    pub id: i64,
    #[serde(flatten)]
    pub strategy: Strategy,
    pub updated_at: DateTime<Utc>,
    pub updated_by: Option<i64>,
}

fn decode_strategy(r: &dyn RowGet) -> Result<StoredStrategy, sqlx::Error> {
    let bad = |what: &str, v: String| sqlx::Error::Decode(format!("strategy {what}: {v}").into());
    let cadence: Vec<CadenceItem> =
        serde_json::from_value(r.json("cadence")?).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    let metric = r.text("goal_metric")?;
    let level = r.text("owner_level")?;
    Ok(StoredStrategy {
        id: r.int("id")?,
        strategy: Strategy {
            scheme_key: r.text("scheme_key")?,
            class_name: r.text("class_name")?,
            cadence,
            sla_hours: u32::try_from(r.int("sla_hours")?).unwrap_or(0),
            resources: r.text("resources")?,
            goal: r.text("goal")?,
            goal_metric: GoalMetric::parse(&metric).map_err(|_| bad("goal_metric", metric))?,
            goal_target: r.int("goal_target")?,
            owner_level: OwnerLevel::parse(&level).map_err(|_| bad("owner_level", level))?,
        },
        updated_at: r.time("updated_at")?,
        updated_by: r.opt_int("updated_by")?,
    })
}

const STRATEGY_COLUMNS: &str = "id, scheme_key, class_name, cadence, sla_hours, resources, goal, goal_metric, goal_target, owner_level, updated_at, updated_by";

async fn upsert_strategy_in(
    exec: &mut impl Exec,
    s: &Strategy,
    by: Option<i64>,
) -> Result<(), StoreError> {
    let cadence = serde_json::to_value(&s.cadence).unwrap_or_default();
    exec.execute(
        "INSERT INTO strategies (scheme_key, class_name, cadence, sla_hours, resources, goal, goal_metric, goal_target, owner_level, updated_at, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (scheme_key, class_name) DO UPDATE SET cadence = excluded.cadence, sla_hours = excluded.sla_hours, \
         resources = excluded.resources, goal = excluded.goal, goal_metric = excluded.goal_metric, goal_target = excluded.goal_target, \
         owner_level = excluded.owner_level, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        args![
            s.scheme_key.clone(),
            s.class_name.clone(),
            cadence,
            i64::from(s.sla_hours),
            s.resources.clone(),
            s.goal.clone(),
            s.goal_metric.key(),
            s.goal_target,
            s.owner_level.key(),
            Utc::now(),
            by
        ],
    )
    .await?;
    Ok(())
}

/// The `job_runs` name of the job that turns class changes into hand-over tasks.
pub const CLASS_CHANGE_JOB: &str = "class_change_tasks";
/// The `job_runs` name of the job that turns complaints into service tasks.
pub const COMPLAINT_JOB: &str = "complaint_tasks";

/// design.md's strategies (migration 17), and the event jobs' cursors at
/// the end of the history already there: complaints and class changes
/// from before kehu made tasks do not become work now.
pub(crate) async fn seed_preset_strategies(tx: &mut Tx) -> Result<(), StoreError> {
    for s in kehu_core::strategy::presets() {
        upsert_strategy_in(tx, &s, None).await?;
    }
    for (job, table) in [
        (CLASS_CHANGE_JOB, "class_history"),
        (COMPLAINT_JOB, "interactions"),
    ] {
        tx.execute(
            &format!(
                "INSERT INTO job_runs (job, done_for, finished_at, cursor_id) \
                 SELECT $1, $2, $3, COALESCE(MAX(id), 0) FROM {table}"
            ),
            args![job, crate::jobs::never(), DateTime::<Utc>::UNIX_EPOCH],
        )
        .await?;
    }
    Ok(())
}

/// A customer in a class: (customer, class, owner, team).
pub type ClassMember = (i64, String, Option<i64>, Option<String>);

/// A user who can own follow-up work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    pub id: i64,
    pub role: String,
    pub team: Option<String>,
    /// The user's own sales level, if set.
    pub sales_level: Option<String>,
}

impl StaffMember {
    /// The user's level: their own, else their role's.
    pub fn level(&self) -> Option<OwnerLevel> {
        self.sales_level
            .as_deref()
            .and_then(|l| OwnerLevel::parse(l).ok())
            .or_else(|| OwnerLevel::of_role(&self.role))
    }
}

/// A user as pickers show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: i64,
    pub name: String,
    pub team: Option<String>,
    pub active: bool,
}

/// A task about to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTask {
    pub customer_id: i64,
    pub kind: TaskKind,
    pub source: TaskSource,
    pub source_key: Option<String>,
    pub title: String,
    pub detail: String,
    pub owner_id: Option<i64>,
    pub team: Option<String>,
    pub due_at: DateTime<Utc>,
    pub priority: Priority,
    pub scheme_key: Option<String>,
    pub class_name: Option<String>,
    pub interaction_id: Option<i64>,
    pub sla_hours: Option<u32>,
    pub created_by: Option<i64>,
}

/// A stored task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub id: i64,
    pub customer_id: i64,
    pub kind: TaskKind,
    pub source: TaskSource,
    pub title: String,
    pub detail: String,
    pub owner_id: Option<i64>,
    pub team: Option<String>,
    pub due_at: DateTime<Utc>,
    pub priority: Priority,
    pub status: TaskStatus,
    pub scheme_key: Option<String>,
    pub class_name: Option<String>,
    pub interaction_id: Option<i64>,
    pub sla_hours: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<i64>,
    pub closed_at: Option<DateTime<Utc>>,
    pub closed_by: Option<i64>,
}

const TASK_COLUMNS: &str = "id, customer_id, kind, source, title, detail, owner_id, team, due_at, priority, status, scheme_key, class_name, interaction_id, sla_hours, created_at, created_by, closed_at, closed_by";

fn decode_task(r: &dyn RowGet) -> Result<Task, sqlx::Error> {
    let parse = |col: &str| -> Result<String, sqlx::Error> { r.text(col) };
    let bad = |col: &str| sqlx::Error::Decode(format!("task {col}").into());
    Ok(Task {
        id: r.int("id")?,
        customer_id: r.int("customer_id")?,
        kind: TaskKind::parse(&parse("kind")?).map_err(|_| bad("kind"))?,
        source: TaskSource::parse(&parse("source")?).map_err(|_| bad("source"))?,
        title: r.text("title")?,
        detail: r.text("detail")?,
        owner_id: r.opt_int("owner_id")?,
        team: r.opt_text("team")?,
        due_at: r.time("due_at")?,
        priority: Priority::of_rank(r.int("priority")?),
        status: TaskStatus::parse(&parse("status")?).map_err(|_| bad("status"))?,
        scheme_key: r.opt_text("scheme_key")?,
        class_name: r.opt_text("class_name")?,
        interaction_id: r.opt_int("interaction_id")?,
        sla_hours: r.opt_int("sla_hours")?,
        created_at: r.time("created_at")?,
        created_by: r.opt_int("created_by")?,
        closed_at: r.opt_time("closed_at")?,
        closed_by: r.opt_int("closed_by")?,
    })
}

/// The clause that skips a task whose source key its customer has: the
/// keys' unique index differs by backend (migration 28).
fn skip_made(backend: crate::Backend) -> &'static str {
    match backend {
        crate::Backend::Sqlite => "ON CONFLICT (source_key) DO NOTHING",
        crate::Backend::Postgres => "ON CONFLICT (customer_id, source_key) DO NOTHING",
    }
}

/// Rows per multi-row INSERT of tasks (17 values each).
const TASK_ROWS: usize = 1_000;

/// Inserts tasks, skipping those whose `source_key` exists; returns how
/// many were new.
pub(crate) async fn insert_tasks_in(tx: &mut Tx, tasks: &[NewTask]) -> Result<u64, StoreError> {
    let mut added = 0;
    let now = Utc::now();
    for part in tasks.chunks(TASK_ROWS) {
        let sql = format!(
            "INSERT INTO tasks (customer_id, kind, source, source_key, title, detail, owner_id, team, due_at, priority, status, \
             scheme_key, class_name, interaction_id, sla_hours, created_at, created_by) VALUES {} {}",
            value_groups(tx.backend(), part.len(), 17),
            skip_made(tx.backend())
        );
        let a: Vec<Arg> = part
            .iter()
            .flat_map(|t| {
                args![
                    t.customer_id,
                    t.kind.key(),
                    t.source.key(),
                    t.source_key.clone(),
                    t.title.clone(),
                    t.detail.clone(),
                    t.owner_id,
                    t.team.clone(),
                    t.due_at,
                    t.priority.rank(),
                    TaskStatus::Open.key(),
                    t.scheme_key.clone(),
                    t.class_name.clone(),
                    t.interaction_id,
                    t.sla_hours.map(i64::from),
                    now,
                    t.created_by
                ]
            })
            .collect();
        added += tx.execute(&sql, a).await?;
    }
    Ok(added)
}

/// What the strategy tasks of one class and cadence item share.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskGroup {
    pub kind: TaskKind,
    pub title: String,
    pub detail: String,
    pub priority: Priority,
    pub scheme_key: String,
    pub class_name: String,
}

/// One strategy task of a group: customer, owner, due time, `source_key`.
pub type GroupRow = (i64, Option<i64>, DateTime<Utc>, String);

/// Inserts a group's tasks with one statement per chunk whose rows travel
/// as one JSON array (a bind per row and column costs more than the
/// insert), the team read from the customer; tasks already made (same
/// `source_key`) are skipped. Returns how many are new.
pub(crate) async fn insert_group_in(
    tx: &mut Tx,
    group: &TaskGroup,
    rows: &[GroupRow],
) -> Result<u64, StoreError> {
    let sql = match tx.backend() {
        crate::Backend::Sqlite => {
            "INSERT INTO tasks (customer_id, kind, source, source_key, title, detail, owner_id, team, due_at, priority, status, \
             scheme_key, class_name, created_at) \
             SELECT j.value->>0, $1, 'strategy', j.value->>3, $2, $3, j.value->>1, c.team, j.value->>2, $4, 'open', $5, $6, $7 \
             FROM json_each($8) j JOIN customers c ON c.id = j.value->>0 WHERE true ON CONFLICT (source_key) DO NOTHING"
        }
        crate::Backend::Postgres => {
            "INSERT INTO tasks (customer_id, kind, source, source_key, title, detail, owner_id, team, due_at, priority, status, \
             scheme_key, class_name, created_at) \
             SELECT (j->>0)::bigint, $1, 'strategy', j->>3, $2, $3, (j->>1)::bigint, c.team, (j->>2)::timestamptz, $4, 'open', $5, $6, $7 \
             FROM jsonb_array_elements($8) j JOIN customers c ON c.id = (j->>0)::bigint ON CONFLICT (customer_id, source_key) DO NOTHING"
        }
    };
    let now = Utc::now();
    let mut added = 0;
    for part in rows.chunks(GROUP_ROWS) {
        // The text SQLite compares due times as: sqlx's own encoding.
        let json: Vec<serde_json::Value> = part
            .iter()
            .map(|(c, o, due, key)| {
                serde_json::json!([
                    c,
                    o,
                    due.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
                    key
                ])
            })
            .collect();
        added += tx
            .execute(
                sql,
                args![
                    group.kind.key(),
                    group.title.clone(),
                    group.detail.clone(),
                    group.priority.rank(),
                    group.scheme_key.clone(),
                    group.class_name.clone(),
                    now,
                    serde_json::Value::Array(json)
                ],
            )
            .await?;
    }
    Ok(added)
}

/// Rows per statement of a group insert.
const GROUP_ROWS: usize = 10_000;

/// Which tasks to list.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub owner_id: Option<i64>,
    pub customer_id: Option<i64>,
    pub team: Option<String>,
    /// open (default) | done | cancelled | any
    pub status: Option<TaskStatus>,
    pub any_status: bool,
    pub due_from: Option<DateTime<Utc>>,
    pub due_before: Option<DateTime<Utc>>,
    pub kind: Option<TaskKind>,
    /// Tasks without an owner.
    pub unassigned: bool,
}

/// Whose tasks a user may see: their own, and with a wider reach the
/// tasks of the customers in it.
#[derive(Debug, Clone)]
pub enum TaskScope {
    All,
    /// Their own tasks and those of their team's customers.
    Team {
        team: Option<String>,
        user_id: i64,
    },
    Own {
        user_id: i64,
    },
}

impl TaskFilter {
    fn conditions(&self, b: &mut SqlBuilder, scope: &TaskScope) -> String {
        let mut conds = Vec::new();
        if !self.any_status {
            let s = self.status.unwrap_or(TaskStatus::Open);
            conds.push(format!("status = {}", b.bind(s.key())));
        }
        if let Some(o) = self.owner_id {
            conds.push(format!("owner_id = {}", b.bind(o)));
        }
        if self.unassigned {
            conds.push("owner_id IS NULL".into());
        }
        if let Some(c) = self.customer_id {
            conds.push(format!("customer_id = {}", b.bind(c)));
        }
        if let Some(t) = &self.team {
            conds.push(format!("team = {}", b.bind(t.clone())));
        }
        if let Some(d) = self.due_from {
            conds.push(format!("due_at >= {}", b.bind(d)));
        }
        if let Some(d) = self.due_before {
            conds.push(format!("due_at < {}", b.bind(d)));
        }
        if let Some(k) = self.kind {
            conds.push(format!("kind = {}", b.bind(k.key())));
        }
        match scope {
            TaskScope::All => {}
            TaskScope::Own { user_id } => conds.push(format!("owner_id = {}", b.bind(*user_id))),
            TaskScope::Team {
                team: Some(t),
                user_id,
            } => {
                let (pt, pu) = (b.bind(t.clone()), b.bind(*user_id));
                conds.push(format!("(team = {pt} OR owner_id = {pu})"));
            }
            TaskScope::Team {
                team: None,
                user_id,
            } => conds.push(format!("owner_id = {}", b.bind(*user_id))),
        }
        if conds.is_empty() {
            "1 = 1".into()
        } else {
            conds.join(" AND ")
        }
    }
}

/// One entry of the tracking log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowUp {
    pub id: i64,
    pub customer_id: i64,
    pub task_id: Option<i64>,
    pub happened_on: NaiveDate,
    pub user_id: Option<i64>,
    pub kind: String,
    pub summary: String,
    pub next_step: Option<String>,
    pub status_change: Option<String>,
    pub suggested_scheme: Option<String>,
    pub suggested_class: Option<String>,
    pub class_scheme: Option<String>,
    pub class_after: Option<String>,
    pub created_at: DateTime<Utc>,
}

fn decode_follow_up(r: &dyn RowGet) -> Result<FollowUp, sqlx::Error> {
    Ok(FollowUp {
        id: r.int("id")?,
        customer_id: r.int("customer_id")?,
        task_id: r.opt_int("task_id")?,
        happened_on: r.opt_date("happened_on")?.unwrap_or_default(),
        user_id: r.opt_int("user_id")?,
        kind: r.text("kind")?,
        summary: r.text("summary")?,
        next_step: r.opt_text("next_step")?,
        status_change: r.opt_text("status_change")?,
        suggested_scheme: r.opt_text("suggested_scheme")?,
        suggested_class: r.opt_text("suggested_class")?,
        class_scheme: r.opt_text("class_scheme")?,
        class_after: r.opt_text("class_after")?,
        created_at: r.time("created_at")?,
    })
}

const FOLLOW_UP_COLUMNS: &str = "id, customer_id, task_id, happened_on, user_id, kind, summary, next_step, status_change, suggested_scheme, suggested_class, class_scheme, class_after, created_at";

/// Which tracking-log entries to list.
#[derive(Debug, Clone, Default)]
pub struct FollowUpFilter {
    pub customer_id: Option<i64>,
    pub user_id: Option<i64>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub kind: Option<String>,
    /// Only entries with a suggested class change.
    pub suggested: bool,
}

/// A notification in someone's inbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub id: i64,
    pub kind: String,
    pub task_id: Option<i64>,
    pub text_zh: String,
    pub text_en: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

/// A notification about to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    pub user_id: i64,
    pub kind: &'static str,
    pub task_id: Option<i64>,
    pub text_zh: String,
    pub text_en: String,
}

impl Store {
    /// Notifies every active user whose role is one of `roles` (their
    /// inbox, and the e-mail and webhook deliveries of each notification),
    /// in one transaction; returns how many users.
    pub async fn notify_roles(
        &self,
        roles: &[String],
        kind: &'static str,
        text_zh: &str,
        text_en: &str,
    ) -> Result<usize, StoreError> {
        let mut tx = self.db.begin().await?;
        let mut users = Vec::new();
        for role in roles {
            users.extend(
                tx.fetch_all(
                    "SELECT id AS n FROM users WHERE role = $1 AND active = $2 ORDER BY id",
                    args![role.clone(), true],
                    crate::db::decode_n,
                )
                .await?,
            );
        }
        for &user_id in &users {
            let n = NewNotification {
                user_id,
                kind,
                task_id: None,
                text_zh: text_zh.to_string(),
                text_en: text_en.to_string(),
            };
            notify_in(&mut tx, &n).await?;
        }
        tx.commit().await?;
        Ok(users.len())
    }
}

/// Adds a notification and queues its e-mail and webhook deliveries.
async fn notify_in(exec: &mut impl Exec, n: &NewNotification) -> Result<(), StoreError> {
    let id = exec
        .fetch_one(
            "INSERT INTO notifications (user_id, kind, task_id, text_zh, text_en, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id AS n",
            args![n.user_id, n.kind, n.task_id, n.text_zh.clone(), n.text_en.clone(), Utc::now()],
            crate::db::decode_n,
        )
        .await?;
    crate::deliveries::enqueue(exec, id, n.user_id).await
}

/// The flag a reminder sets on its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReminderFlag {
    /// Due soon.
    Reminded,
    /// Past due.
    Overdue,
    /// Told the manager.
    Escalated,
}

impl ReminderFlag {
    fn column(self) -> &'static str {
        match self {
            ReminderFlag::Reminded => "reminded_at",
            ReminderFlag::Overdue => "overdue_at",
            ReminderFlag::Escalated => "escalated_at",
        }
    }
}

/// What closing a task records besides its status.
#[derive(Debug, Clone)]
pub struct Closing {
    pub result: Option<TaskResult>,
    /// The class after re-evaluation: (scheme, class).
    pub class_after: Option<(String, String)>,
    /// Tasks the closing leads to (follow-up call, review of a suggestion).
    pub follow_on: Vec<NewTask>,
    pub notifications: Vec<NewNotification>,
}

impl Store {
    pub async fn strategies(&self) -> Result<Vec<StoredStrategy>, StoreError> {
        self.db
            .clone()
            .fetch_all(
                &format!("SELECT {STRATEGY_COLUMNS} FROM strategies ORDER BY scheme_key, id"),
                vec![],
                decode_strategy,
            )
            .await
    }

    pub async fn strategy(&self, id: i64) -> Result<Option<StoredStrategy>, StoreError> {
        self.db
            .clone()
            .fetch_optional(
                &format!("SELECT {STRATEGY_COLUMNS} FROM strategies WHERE id = $1"),
                args![id],
                decode_strategy,
            )
            .await
    }

    /// Creates the strategy of its class or replaces it.
    pub async fn save_strategy(&self, s: &Strategy, by: i64) -> Result<StoredStrategy, StoreError> {
        let mut tx = self.db.begin_write().await?;
        upsert_strategy_in(&mut tx, s, Some(by)).await?;
        let saved = tx
            .fetch_one(
                &format!(
                    "SELECT {STRATEGY_COLUMNS} FROM strategies WHERE scheme_key = $1 AND class_name = $2"
                ),
                args![s.scheme_key.clone(), s.class_name.clone()],
                decode_strategy,
            )
            .await?;
        tx.commit().await?;
        Ok(saved)
    }

    pub async fn delete_strategy(&self, id: i64) -> Result<bool, StoreError> {
        let n = self
            .db
            .clone()
            .execute("DELETE FROM strategies WHERE id = $1", args![id])
            .await?;
        Ok(n > 0)
    }

    /// Active users with their role, team and sales level.
    pub async fn staff(&self) -> Result<Vec<StaffMember>, StoreError> {
        self.db
            .clone()
            .fetch_all(
                "SELECT id, role, team, sales_level FROM users WHERE active = $1 ORDER BY id",
                args![true],
                |r: &dyn RowGet| {
                    Ok(StaffMember {
                        id: r.int("id")?,
                        role: r.text("role")?,
                        team: r.opt_text("team")?,
                        sales_level: r.opt_text("sales_level")?,
                    })
                },
            )
            .await
    }

    /// Every user (active or not) with their team: who work can move from and to.
    pub async fn people(&self) -> Result<Vec<Person>, StoreError> {
        self.db
            .clone()
            .fetch_all(
                "SELECT id, display_name, team, active FROM users ORDER BY display_name, id",
                vec![],
                |r: &dyn RowGet| {
                    Ok(Person {
                        id: r.int("id")?,
                        name: r.text("display_name")?,
                        team: r.opt_text("team")?,
                        active: r.boolean("active")?,
                    })
                },
            )
            .await
    }

    pub async fn set_sales_level(
        &self,
        user_id: i64,
        level: Option<OwnerLevel>,
    ) -> Result<bool, StoreError> {
        let n = self
            .db
            .clone()
            .execute(
                "UPDATE users SET sales_level = $1 WHERE id = $2",
                args![level.map(|l| l.key()), user_id],
            )
            .await?;
        Ok(n > 0)
    }

    /// Every customer in a class of `scheme_key`: (customer, class, owner, team).
    pub async fn class_members(&self, scheme_key: &str) -> Result<Vec<ClassMember>, StoreError> {
        self.members_where(scheme_key, None).await
    }

    /// One customer's class of `scheme_key`, as [`Store::class_members`].
    pub async fn class_members_of(
        &self,
        scheme_key: &str,
        customer_id: i64,
    ) -> Result<Vec<ClassMember>, StoreError> {
        self.members_where(scheme_key, Some(customer_id)).await
    }

    async fn members_where(
        &self,
        scheme_key: &str,
        customer_id: Option<i64>,
    ) -> Result<Vec<ClassMember>, StoreError> {
        // Everyone: a bulk read (on SQLite through rusqlite, a fifth of the time).
        let (only, a, read) = match customer_id {
            Some(id) => (" AND cc.customer_id = $2", args![scheme_key, id], Read::One),
            None => ("", args![scheme_key], Read::Bulk),
        };
        read.all(
                &mut self.db.clone(),
                &format!(
                    "SELECT cc.customer_id, cc.class, c.owner_id, c.team FROM customer_classes cc \
                     JOIN customers c ON c.id = cc.customer_id WHERE cc.scheme_key = $1{only} ORDER BY cc.customer_id"
                ),
                a,
                |r: &dyn RowGet| {
                    Ok((
                        r.int("customer_id")?,
                        r.text("class")?,
                        r.opt_int("owner_id")?,
                        r.opt_text("team")?,
                    ))
                },
            )
            .await
    }

    /// Stores tasks in one transaction, skipping any already made (same
    /// `source_key`); returns how many are new.
    pub async fn add_tasks(&self, tasks: &[NewTask]) -> Result<u64, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let n = insert_tasks_in(&mut tx, tasks).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Stores strategy tasks by group in one transaction, skipping any
    /// already made; returns how many are new.
    pub async fn add_task_groups(
        &self,
        groups: &[(TaskGroup, Vec<GroupRow>)],
    ) -> Result<u64, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let mut n = 0;
        for (group, rows) in groups {
            n += insert_group_in(&mut tx, group, rows).await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Stores one task made by hand and notifies its owner when that is
    /// someone else; returns its id.
    pub async fn add_task(
        &self,
        task: &NewTask,
        notify: Option<NewNotification>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let id = tx
            .fetch_one(
                "INSERT INTO tasks (customer_id, kind, source, source_key, title, detail, owner_id, team, due_at, priority, status, \
                 scheme_key, class_name, interaction_id, sla_hours, created_at, created_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open', $11, $12, $13, $14, $15, $16) RETURNING id AS n",
                args![
                    task.customer_id,
                    task.kind.key(),
                    task.source.key(),
                    task.source_key.clone(),
                    task.title.clone(),
                    task.detail.clone(),
                    task.owner_id,
                    task.team.clone(),
                    task.due_at,
                    task.priority.rank(),
                    task.scheme_key.clone(),
                    task.class_name.clone(),
                    task.interaction_id,
                    task.sla_hours.map(i64::from),
                    Utc::now(),
                    task.created_by
                ],
                decode_n,
            )
            .await?;
        if let Some(mut n) = notify {
            n.task_id = Some(id);
            notify_in(&mut tx, &n).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    pub async fn task(&self, id: i64) -> Result<Option<Task>, StoreError> {
        self.db
            .clone()
            .fetch_optional(
                &format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = $1"),
                args![id],
                decode_task,
            )
            .await
    }

    /// Tasks by due time (then priority), and how many match.
    pub async fn list_tasks(
        &self,
        filter: &TaskFilter,
        scope: &TaskScope,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Task>, i64), StoreError> {
        let mut b = SqlBuilder::new(self.db.backend(), "");
        let cond = filter.conditions(&mut b, scope);
        crate::listing::count_and_page(
            &self.db,
            b,
            "tasks",
            TASK_COLUMNS,
            &cond,
            "due_at, priority, id",
            limit,
            offset,
            decode_task,
        )
        .await
    }

    /// Open tasks per owner in scope: (owner, open, overdue at `now`).
    pub async fn task_load(
        &self,
        scope: &TaskScope,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Option<i64>, i64, i64)>, StoreError> {
        let mut b = SqlBuilder::new(self.db.backend(), "");
        let cond = TaskFilter::default().conditions(&mut b, scope);
        let pn = b.bind(now);
        let sql = format!(
            "SELECT owner_id, COUNT(*) AS open, SUM(CASE WHEN due_at < {pn} THEN 1 ELSE 0 END) AS overdue \
             FROM tasks WHERE {cond} GROUP BY owner_id ORDER BY owner_id"
        );
        self.db
            .clone()
            .fetch_all(&sql, b.args, |r: &dyn RowGet| {
                Ok((r.opt_int("owner_id")?, r.int("open")?, r.int("overdue")?))
            })
            .await
    }

    /// The service requests created in [from, to) within `scope`, for SLA
    /// compliance.
    pub async fn sla_tasks(
        &self,
        scope: &TaskScope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlaTask>, StoreError> {
        let mut b = SqlBuilder::new(self.db.backend(), "");
        let cond = TaskFilter {
            any_status: true,
            kind: Some(TaskKind::Service),
            ..TaskFilter::default()
        }
        .conditions(&mut b, scope);
        let (pf, pt) = (b.bind(from), b.bind(to));
        let sql = format!(
            "SELECT customer_id, class_name, sla_hours, status, due_at, closed_at FROM tasks \
             WHERE {cond} AND created_at >= {pf} AND created_at < {pt}"
        );
        self.db
            .clone()
            .fetch_all(&sql, b.args, |r: &dyn RowGet| {
                Ok(SlaTask {
                    customer_id: r.int("customer_id")?,
                    class_name: r.opt_text("class_name")?,
                    sla_hours: r.opt_int("sla_hours")?,
                    status: r.text("status")?,
                    due_at: r.opt_time("due_at")?,
                    closed_at: r.opt_time("closed_at")?,
                })
            })
            .await
    }

    /// SLA compliance of the service requests created in [from, to), per
    /// class and SLA, as things stand at `now`.
    pub async fn sla_summary(
        &self,
        scope: &TaskScope,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<SlaRow>, StoreError> {
        Ok(SlaRow::tally(&self.sla_tasks(scope, from, to).await?, now))
    }

    /// Closes an open task (done with a result, or cancelled) with its
    /// tracking-log entry and follow-on work, in one transaction. False
    /// when the task was not open (closed meanwhile).
    pub async fn close_task(
        &self,
        task: &Task,
        status: TaskStatus,
        by: i64,
        closing: &Closing,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let n = tx
            .execute(
                "UPDATE tasks SET status = $1, closed_at = $2, closed_by = $3 WHERE id = $4 AND status = 'open'",
                args![status.key(), Utc::now(), by, task.id],
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        if let Some(r) = &closing.result {
            let (class_scheme, class_after) = closing.class_after.clone().unzip();
            let (suggested_scheme, suggested_class) = r.suggestion.clone().unzip();
            tx.execute(
                "INSERT INTO follow_ups (customer_id, task_id, happened_on, user_id, kind, summary, next_step, status_change, \
                 suggested_scheme, suggested_class, class_scheme, class_after, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                args![
                    task.customer_id,
                    task.id,
                    r.happened_on,
                    by,
                    task.kind.key(),
                    r.summary.clone(),
                    r.next_step.clone(),
                    r.status_change.clone(),
                    suggested_scheme,
                    suggested_class,
                    class_scheme,
                    class_after,
                    Utc::now()
                ],
            )
            .await?;
        }
        insert_tasks_in(&mut tx, &closing.follow_on).await?;
        for n in &closing.notifications {
            notify_in(&mut tx, n).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Orders and complaints of a customer after `since` (exclusive) up to
    /// `until` (inclusive): what a tracking-log entry reports as changed.
    pub async fn activity_between(
        &self,
        customer_id: i64,
        since: Option<NaiveDate>,
        until: NaiveDate,
    ) -> Result<(i64, i64), StoreError> {
        let since = since.unwrap_or(NaiveDate::MIN);
        let mut db = self.db.clone();
        let orders = db
            .fetch_one(
                "SELECT COUNT(*) AS n FROM orders WHERE customer_id = $1 AND ordered_on > $2 AND ordered_on <= $3",
                args![customer_id, since, until],
                decode_n,
            )
            .await?;
        let complaints = db
            .fetch_one(
                "SELECT COUNT(*) AS n FROM interactions WHERE customer_id = $1 AND kind = 'complaint' \
                 AND occurred_on > $2 AND occurred_on <= $3",
                args![customer_id, since, until],
                decode_n,
            )
            .await?;
        Ok((orders, complaints))
    }

    /// The day of a customer's latest tracking-log entry before or on `until`.
    pub async fn last_follow_up_on(
        &self,
        customer_id: i64,
        until: NaiveDate,
    ) -> Result<Option<NaiveDate>, StoreError> {
        let d = self
            .db
            .clone()
            .fetch_optional(
                "SELECT MAX(happened_on) AS d FROM follow_ups WHERE customer_id = $1 AND happened_on <= $2",
                args![customer_id, until],
                |r: &dyn RowGet| r.opt_date("d"),
            )
            .await?;
        Ok(d.flatten())
    }

    /// Tracking-log entries, newest first, of customers in scope.
    pub async fn follow_ups(
        &self,
        filter: &FollowUpFilter,
        scope: &ScopeFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<FollowUp>, i64), StoreError> {
        let mut b = SqlBuilder::new(self.db.backend(), "");
        let mut conds: Vec<String> = Vec::new();
        if let Some(c) = filter.customer_id {
            conds.push(format!("customer_id = {}", b.bind(c)));
        }
        if let Some(u) = filter.user_id {
            conds.push(format!("user_id = {}", b.bind(u)));
        }
        if let Some(d) = filter.from {
            conds.push(format!("happened_on >= {}", b.bind(d)));
        }
        if let Some(d) = filter.to {
            conds.push(format!("happened_on <= {}", b.bind(d)));
        }
        if let Some(k) = &filter.kind {
            conds.push(format!("kind = {}", b.bind(k.clone())));
        }
        if filter.suggested {
            conds.push("suggested_class IS NOT NULL".into());
        }
        conds.extend(crate::duplicates::scope_condition(
            &mut b,
            scope,
            "customer_id",
        ));
        let cond = if conds.is_empty() {
            "1 = 1".to_string()
        } else {
            conds.join(" AND ")
        };
        crate::listing::count_and_page(
            &self.db,
            b,
            "follow_ups",
            FOLLOW_UP_COLUMNS,
            &cond,
            "happened_on DESC, id DESC",
            limit,
            offset,
            decode_follow_up,
        )
        .await
    }

    /// Open tasks whose `flag` is unset and which fall due before `before`.
    pub async fn tasks_to_remind(
        &self,
        flag: ReminderFlag,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Task>, StoreError> {
        let col = flag.column();
        self.db
            .clone()
            .fetch_all(
                &format!(
                    "SELECT {TASK_COLUMNS} FROM tasks WHERE status = 'open' AND {col} IS NULL AND due_at < $1 \
                     ORDER BY due_at, id LIMIT $2"
                ),
                args![before, limit],
                decode_task,
            )
            .await
    }

    /// Sets `flag` on a task and writes its notifications, unless another
    /// process set it first (then nothing is written): false.
    pub async fn mark_reminded(
        &self,
        task_id: i64,
        flag: ReminderFlag,
        notifications: &[NewNotification],
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().await?;
        let n = tx
            .execute(
                &format!(
                    "UPDATE tasks SET {col} = $1 WHERE id = $2 AND {col} IS NULL AND status = 'open'",
                    col = flag.column()
                ),
                args![Utc::now(), task_id],
            )
            .await?;
        if n == 0 {
            return Ok(false);
        }
        for note in notifications {
            notify_in(&mut tx, note).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// A user's notifications, newest first, and how many are unread.
    pub async fn notifications(
        &self,
        user_id: i64,
        unread_only: bool,
        limit: i64,
    ) -> Result<(Vec<Notification>, i64), StoreError> {
        let mut db = self.db.clone();
        let unread = db
            .fetch_one(
                "SELECT COUNT(*) AS n FROM notifications WHERE user_id = $1 AND read_at IS NULL",
                args![user_id],
                decode_n,
            )
            .await?;
        let filter = if unread_only {
            " AND read_at IS NULL"
        } else {
            ""
        };
        let items = db
            .fetch_all(
                &format!(
                    "SELECT id, kind, task_id, text_zh, text_en, created_at, read_at FROM notifications \
                     WHERE user_id = $1{filter} ORDER BY id DESC LIMIT $2"
                ),
                args![user_id, limit],
                |r: &dyn RowGet| {
                    Ok(Notification {
                        id: r.int("id")?,
                        kind: r.text("kind")?,
                        task_id: r.opt_int("task_id")?,
                        text_zh: r.text("text_zh")?,
                        text_en: r.text("text_en")?,
                        created_at: r.time("created_at")?,
                        read_at: r.opt_time("read_at")?,
                    })
                },
            )
            .await?;
        Ok((items, unread))
    }

    /// Marks a user's notifications read (one, or all with `None`).
    pub async fn mark_notifications_read(
        &self,
        user_id: i64,
        id: Option<i64>,
    ) -> Result<u64, StoreError> {
        let (sql, a) = match id {
            Some(id) => (
                "UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND id = $3 AND read_at IS NULL",
                args![Utc::now(), user_id, id],
            ),
            None => (
                "UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL",
                args![Utc::now(), user_id],
            ),
        };
        self.db.clone().execute(sql, a).await
    }

    /// Hands a leaving rep's open tasks (and, with `customers`, the
    /// customers they own) to another user, in one transaction: (tasks, customers).
    pub async fn reassign_work(
        &self,
        from: i64,
        to: i64,
        team: Option<&str>,
        customers: bool,
    ) -> Result<(u64, u64), StoreError> {
        let mut tx = self.db.begin_write().await?;
        let tasks = tx
            .execute(
                "UPDATE tasks SET owner_id = $1 WHERE owner_id = $2 AND status = 'open'",
                args![to, from],
            )
            .await?;
        let moved = if customers {
            tx.execute(
                "UPDATE customers SET owner_id = $1, team = COALESCE($2, team), version = version + 1, updated_at = $3 WHERE owner_id = $4",
                args![to, team, Utc::now(), from],
            )
            .await?
        } else {
            0
        };
        tx.commit().await?;
        Ok((tasks, moved))
    }

    /// Open complaints recorded after interaction `after` up to `upto`, the first `limit`.
    pub async fn complaints_after(
        &self,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<ComplaintRef>, StoreError> {
        self.db
            .clone()
            .fetch_all(
                "SELECT i.id, i.customer_id, i.created_at, i.severity, i.summary, c.owner_id, c.team FROM interactions i \
                 JOIN customers c ON c.id = i.customer_id WHERE i.id > $1 AND i.id <= $2 AND i.kind = 'complaint' \
                 AND (i.status IS NULL OR i.status IN ('open', 'in_progress')) ORDER BY i.id LIMIT $3",
                args![after, upto, limit],
                |r: &dyn RowGet| {
                    Ok(ComplaintRef {
                        id: r.int("id")?,
                        customer_id: r.int("customer_id")?,
                        recorded_at: r.time("created_at")?,
                        severity: r.opt_text("severity")?,
                        summary: r.text("summary")?,
                        owner_id: r.opt_int("owner_id")?,
                        team: r.opt_text("team")?,
                    })
                },
            )
            .await
    }

    /// Class changes recorded after history id `after` up to `upto`, in
    /// schemes that have strategies, the first `limit`; first
    /// classifications too (`from_class` None).
    pub async fn class_changes_after(
        &self,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<ClassChangeRef>, StoreError> {
        let mut db = self.db.clone();
        // Walk the history by id: SQLite would otherwise take every change
        // of the strategies' schemes through `class_history_effective` and
        // sort them all, on every page (minutes with ten million changes).
        let scheme = match db.backend() {
            Backend::Sqlite => "+h.scheme_key",
            Backend::Postgres => "h.scheme_key",
        };
        db.fetch_all(
                &format!("SELECT h.id, h.customer_id, h.scheme_key, h.from_class, h.to_class, c.owner_id, c.team FROM class_history h \
                 JOIN customers c ON c.id = h.customer_id \
                 WHERE h.id > $1 AND h.id <= $2 AND {scheme} IN (SELECT scheme_key FROM strategies) ORDER BY h.id LIMIT $3"),
                args![after, upto, limit],
                |r: &dyn RowGet| {
                    Ok(ClassChangeRef {
                        id: r.int("id")?,
                        customer_id: r.int("customer_id")?,
                        scheme_key: r.text("scheme_key")?,
                        from_class: r.opt_text("from_class")?,
                        to_class: r.text("to_class")?,
                        owner_id: r.opt_int("owner_id")?,
                        team: r.opt_text("team")?,
                    })
                },
            )
            .await
    }

    /// The highest id of a table event jobs follow (0 when empty).
    pub async fn last_event_id(&self, table: EventTable) -> Result<i64, StoreError> {
        let sql = match table {
            EventTable::Interactions => "SELECT COALESCE(MAX(id), 0) AS n FROM interactions",
            EventTable::ClassHistory => "SELECT COALESCE(MAX(id), 0) AS n FROM class_history",
        };
        self.db.clone().fetch_one(sql, vec![], decode_n).await
    }

    /// Customers whose last order is before `cutoff` (or who never ordered
    /// but cooperated since before it), with that day: (customer, last order, owner, team).
    pub async fn dormant_customers(
        &self,
        cutoff: NaiveDate,
    ) -> Result<Vec<(i64, Option<NaiveDate>, Option<i64>, Option<String>)>, StoreError> {
        self.db
            .clone()
            .fetch_all(
                "SELECT id, last_order_on, owner_id, team FROM customers \
                 WHERE status = 'active' AND last_order_on < $1 ORDER BY id",
                args![cutoff],
                |r: &dyn RowGet| {
                    Ok((
                        r.int("id")?,
                        r.opt_date("last_order_on")?,
                        r.opt_int("owner_id")?,
                        r.opt_text("team")?,
                    ))
                },
            )
            .await
    }

    /// Cancels a customer's open strategy tasks of another class of
    /// `scheme_key` due from `from` on (the class changed, so did the plan).
    pub async fn cancel_strategy_tasks(
        &self,
        customer_id: i64,
        scheme_key: &str,
        keep_class: &str,
        from: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.db
            .clone()
            .execute(
                "UPDATE tasks SET status = 'cancelled', closed_at = $1 WHERE customer_id = $2 AND status = 'open' \
                 AND source = 'strategy' AND scheme_key = $3 AND class_name <> $4 AND due_at >= $5",
                args![Utc::now(), customer_id, scheme_key, keep_class, from],
            )
            .await
    }
}

/// Service tasks of one class and SLA over a stretch of time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlaRow {
    pub class_name: Option<String>,
    pub sla_hours: Option<i64>,
    pub total: i64,
    /// Done before the deadline.
    pub on_time: i64,
    /// Done after it.
    pub late: i64,
    /// Open, the deadline still ahead.
    pub open_within: i64,
    /// Open past the deadline.
    pub open_breached: i64,
}

/// A service request as SLA compliance counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaTask {
    pub customer_id: i64,
    pub class_name: Option<String>,
    pub sla_hours: Option<i64>,
    /// open | done | cancelled
    pub status: String,
    pub due_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl SlaRow {
    /// Counts `tasks` per (SLA, class) as they stood at `as_of`: a request
    /// closed after `as_of` was still open then (so a past period's report
    /// reads the same later). Cancelled requests count in the total only.
    pub fn tally<'a>(
        tasks: impl IntoIterator<Item = &'a SlaTask>,
        as_of: DateTime<Utc>,
    ) -> Vec<SlaRow> {
        let mut rows: std::collections::BTreeMap<(Option<i64>, Option<String>), SlaRow> =
            std::collections::BTreeMap::new();
        for t in tasks {
            let row = rows
                .entry((t.sla_hours, t.class_name.clone()))
                .or_insert_with(|| SlaRow {
                    class_name: t.class_name.clone(),
                    sla_hours: t.sla_hours,
                    total: 0,
                    on_time: 0,
                    late: 0,
                    open_within: 0,
                    open_breached: 0,
                });
            row.total += 1;
            let closed = t.closed_at.filter(|c| *c <= as_of);
            match (t.status.as_str(), closed) {
                ("done", Some(c)) => match t.due_at {
                    Some(due) if c <= due => row.on_time += 1,
                    Some(_) => row.late += 1,
                    None => {}
                },
                (_, Some(_)) => {}
                (_, None) => match t.due_at {
                    Some(due) if due >= as_of => row.open_within += 1,
                    Some(_) => row.open_breached += 1,
                    None => {}
                },
            }
        }
        rows.into_values().collect()
    }
}

/// Tables event jobs follow.
#[derive(Debug, Clone, Copy)]
pub enum EventTable {
    Interactions,
    ClassHistory,
}

/// A complaint an event job turns into a service task.
#[derive(Debug, Clone, PartialEq)]
pub struct ComplaintRef {
    pub id: i64,
    pub customer_id: i64,
    pub recorded_at: DateTime<Utc>,
    pub severity: Option<String>,
    pub summary: String,
    pub owner_id: Option<i64>,
    pub team: Option<String>,
}

/// A class change an event job turns into a hand-over task.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassChangeRef {
    pub id: i64,
    pub customer_id: i64,
    pub scheme_key: String,
    pub from_class: Option<String>,
    pub to_class: String,
    pub owner_id: Option<i64>,
    pub team: Option<String>,
}
