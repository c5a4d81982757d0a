//! The role dashboards (issue 9): what each reader sees first, within
//! their rights and scopes — class distribution (价值分层), the intent
//! funnel, revenue over the last twelve months, this quarter's class
//! changes, tasks, SLA compliance, customers at risk (P(alive) < 30 %) and
//! marketing channels. Which panels a role sees, and in which order, is
//! [`layout`]; a panel the reader has no right to is left out.

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::AppState;
use chrono::{Datelike, Months, NaiveDate, Utc};
use kehu_core::campaign::ChannelLine;
use kehu_core::role::Permission;
use kehu_core::strategy::Period;
use kehu_core::Lang;
use serde::Serialize;
use utoipa::ToSchema;

/// The scheme whose distribution and changes are shown.
const DISTRIBUTION_SCHEME: &str = "value_tier";
/// The scheme read as a funnel, in its class order.
const FUNNEL_SCHEME: &str = "intent";
/// P(alive) below this (1/10000) is "at risk".
pub const AT_RISK_BELOW: i64 = 3_000;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClassCount {
    pub class: String,
    pub customers: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Distribution {
    pub scheme: String,
    pub scheme_name: String,
    /// In the scheme's class order.
    pub classes: Vec<ClassCount>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MonthRevenue {
    /// YYYY-MM
    pub month: String,
    pub revenue_fen: i64,
    pub orders: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClassChange {
    /// None: first classified.
    pub from: Option<String>,
    pub to: String,
    pub customers: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClassChanges {
    pub scheme: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub classes: Vec<String>,
    pub changes: Vec<ClassChange>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskSummary {
    pub open: i64,
    pub overdue: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SlaSummary {
    pub from: NaiveDate,
    pub total: i64,
    pub open_breached: i64,
    pub compliance_percent: Option<f64>,
}

/// One reader's dashboard; absent panels are outside their rights.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Dashboard {
    pub role: String,
    pub as_of: NaiveDate,
    /// The panels to show, in order.
    pub layout: Vec<String>,
    pub distribution: Option<Distribution>,
    pub funnel: Option<Distribution>,
    pub revenue: Option<Vec<MonthRevenue>>,
    pub class_changes: Option<ClassChanges>,
    pub tasks: Option<TaskSummary>,
    pub sla: Option<SlaSummary>,
    /// Customers in scope with P(alive) under 30 %.
    pub at_risk: Option<u64>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub channels: Option<Vec<ChannelLine>>,
}

/// The panels of a role, most important first.
pub fn layout(role: &str) -> &'static [&'static str] {
    match role {
        "management" | "admin" => &[
            "distribution",
            "revenue",
            "class_changes",
            "funnel",
            "at_risk",
            "channels",
            "sla",
        ],
        "sales_manager" => &[
            "tasks",
            "sla",
            "distribution",
            "funnel",
            "revenue",
            "at_risk",
            "class_changes",
        ],
        "sales_rep" => &["tasks", "at_risk", "distribution", "funnel", "revenue"],
        "service" => &["sla", "tasks", "distribution", "at_risk"],
        "marketing" => &["channels", "distribution", "funnel", "revenue", "at_risk"],
        _ => &[
            "distribution",
            "funnel",
            "revenue",
            "tasks",
            "sla",
            "at_risk",
        ],
    }
}

/// A scheme's distribution within a scope, in its class order.
async fn distribution(
    state: &AppState,
    scheme: &str,
    scope: &kehu_store::ScopeFilter,
) -> Result<Option<Distribution>, ApiError> {
    // A scheme that is not published (any more) has no panel.
    let (scheme_name, order) = match crate::reports::scheme_classes(state, scheme).await {
        Ok(found) => found,
        Err(ApiError::Validation(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut counts = state.segments.class_counts(scheme, scope).await?;
    let mut classes: Vec<ClassCount> = order
        .into_iter()
        .map(|class| ClassCount {
            customers: counts.remove(&class).unwrap_or(0),
            class,
        })
        .collect();
    // Classes of earlier versions still held by someone come last.
    let mut rest: Vec<ClassCount> = counts
        .into_iter()
        .map(|(class, customers)| ClassCount { class, customers })
        .collect();
    rest.sort_by(|a, b| a.class.cmp(&b.class));
    classes.extend(rest);
    Ok(Some(Distribution {
        scheme: scheme.to_string(),
        scheme_name,
        classes,
    }))
}

/// The dashboard of `user`.
pub async fn dashboard(
    state: &AppState,
    user: &CurrentUser,
    lang: Lang,
) -> Result<Dashboard, ApiError> {
    let grants = &user.actor.grants;
    let today = state.store.today();
    let customers = user.scope_filter(Permission::CustomerRead).ok();
    let reports = user.scope_filter(Permission::ReportRead).ok();
    let mut d = Dashboard {
        role: user.user.role.clone(),
        as_of: today,
        layout: Vec::new(),
        distribution: None,
        funnel: None,
        revenue: None,
        class_changes: None,
        tasks: None,
        sla: None,
        at_risk: None,
        channels: None,
    };
    if let Some(scope) = &customers {
        d.distribution = distribution(state, DISTRIBUTION_SCHEME, scope).await?;
        d.funnel = distribution(state, FUNNEL_SCHEME, scope).await?;
        d.at_risk = Some(
            state
                .segments
                .count_below("p_alive", AT_RISK_BELOW, scope)
                .await?,
        );
    }
    // The months' purchases are order amounts summed: only for readers
    // who see amounts.
    if let Some(scope) = customers
        .as_ref()
        .filter(|_| user.actor.fields.sees_field("order.amount"))
    {
        // Twelve calendar months, this one last (so far).
        let this_month = today.with_day(1).unwrap_or(today);
        let bounds: Vec<NaiveDate> = (0..12)
            .rev()
            .filter_map(|k| this_month.checked_sub_months(Months::new(k)))
            .chain(today.succ_opt())
            .collect();
        let sums = state.store.revenue_by_span(scope, &bounds).await?;
        d.revenue = Some(
            bounds
                .iter()
                .zip(sums)
                .map(|(start, (revenue_fen, orders))| MonthRevenue {
                    month: start.format("%Y-%m").to_string(),
                    revenue_fen,
                    orders,
                })
                .collect(),
        );
    }
    if let Some(scope) = &reports {
        let quarter = Period::quarter_of(today);
        let changes = state
            .store
            .class_change_counts(DISTRIBUTION_SCHEME, quarter.start, today, scope)
            .await?;
        let classes = d
            .distribution
            .as_ref()
            .map(|x| x.classes.iter().map(|c| c.class.clone()).collect())
            .unwrap_or_default();
        d.class_changes = Some(ClassChanges {
            scheme: DISTRIBUTION_SCHEME.into(),
            from: quarter.start,
            to: today,
            classes,
            changes: changes
                .into_iter()
                .map(|(from, to, customers)| ClassChange {
                    from,
                    to,
                    customers,
                })
                .collect(),
        });
    }
    if grants.has(Permission::CustomerUpdate) || grants.has(Permission::ServiceRecordWrite) {
        let load = state
            .store
            .task_load(&crate::tasks::task_scope(user), Utc::now())
            .await?;
        d.tasks = Some(TaskSummary {
            open: load.iter().map(|l| l.1).sum(),
            overdue: load.iter().map(|l| l.2).sum(),
        });
    }
    if let Ok(task_scope) = crate::api::tasks::report_scope(user) {
        // This month so far (and today).
        let from = today.with_day(1).unwrap_or(today);
        let to = today.succ_opt().unwrap_or(today);
        let sla = crate::api::tasks::sla_between(state, &task_scope, from, to).await?;
        d.sla = Some(SlaSummary {
            from,
            total: sla.total.total,
            open_breached: sla.total.open_breached,
            compliance_percent: sla.total.compliance_percent,
        });
    }
    if grants.has(Permission::CampaignManage)
        || matches!(reports, Some(kehu_store::ScopeFilter::All))
    {
        let scope = reports.clone().unwrap_or(kehu_store::ScopeFilter::All);
        d.channels = Some(crate::campaigns::channels(state, &scope, lang).await?);
    }
    d.layout = layout(&d.role)
        .iter()
        .filter(|p| match **p {
            "distribution" => d.distribution.is_some(),
            "funnel" => d.funnel.is_some(),
            "revenue" => d.revenue.is_some(),
            "class_changes" => d.class_changes.is_some(),
            "tasks" => d.tasks.is_some(),
            "sla" => d.sla.is_some(),
            "at_risk" => d.at_risk.is_some(),
            "channels" => d.channels.is_some(),
            _ => false,
        })
        .map(|p| p.to_string())
        .collect();
    Ok(d)
}

/// The dashboard's figures as files: CSV of one panel (`table`:
/// distribution, funnel, revenue, class_changes, summary, channels; the
/// first the reader has when absent) or XLSX of every panel they see.
pub fn dashboard_file(
    d: &Dashboard,
    format: crate::export::Format,
    table: Option<&str>,
    lang: Lang,
) -> Result<Vec<u8>, ApiError> {
    use crate::reports::say;
    let t = |zh: &str, en: &str| say(lang, zh, en);
    let class_table = |x: &Distribution| {
        let header = vec![t("类别", "Class"), t("客户数", "Customers")];
        let rows = x
            .classes
            .iter()
            .map(|c| vec![c.class.clone(), c.customers.to_string()])
            .collect();
        (header, rows)
    };
    // A table of the panel list, named as the page names it.
    let sheet = |key: &'static str,
                 body: (Vec<String>, Vec<Vec<String>>),
                 numbers: &'static [usize]|
     -> crate::export::Table<'static> { (key, panel_table(key).1, body, numbers) };
    let mut tables: Vec<crate::export::Table<'_>> = Vec::new();
    if let Some(x) = &d.distribution {
        tables.push(sheet("distribution", class_table(x), &[1]));
    }
    if let Some(x) = &d.funnel {
        tables.push(sheet("funnel", class_table(x), &[1]));
    }
    if let Some(months) = &d.revenue {
        let header = vec![
            t("月份", "Month"),
            t("采购额（元）", "Purchases (yuan)"),
            t("订单数", "Orders"),
        ];
        let rows = months
            .iter()
            .map(|m| {
                vec![
                    m.month.clone(),
                    kehu_core::money::yuan_text(m.revenue_fen),
                    m.orders.to_string(),
                ]
            })
            .collect();
        tables.push(sheet("revenue", (header, rows), &[2]));
    }
    if let Some(c) = &d.class_changes {
        let header = vec![
            t("原类别", "From"),
            t("新类别", "To"),
            t("客户数", "Customers"),
        ];
        let rows = c
            .changes
            .iter()
            .map(|x| {
                vec![
                    x.from
                        .clone()
                        .unwrap_or_else(|| t("（首次分类）", "(first class)")),
                    x.to.clone(),
                    x.customers.to_string(),
                ]
            })
            .collect();
        tables.push(sheet("class_changes", (header, rows), &[2]));
    }
    let mut summary: Vec<Vec<String>> = Vec::new();
    if let Some(x) = &d.tasks {
        summary.push(vec![t("未完成任务", "Open tasks"), x.open.to_string()]);
        summary.push(vec![t("逾期任务", "Overdue tasks"), x.overdue.to_string()]);
    }
    if let Some(x) = &d.sla {
        summary.push(vec![
            t("本月服务请求", "Service requests this month"),
            x.total.to_string(),
        ]);
        summary.push(vec![
            t("未关闭且超时", "Open and breached"),
            x.open_breached.to_string(),
        ]);
        summary.push(vec![
            t("SLA 达成率", "SLA compliance"),
            x.compliance_percent
                .map(|p| format!("{p:.1}%"))
                .unwrap_or_default(),
        ]);
    }
    if let Some(n) = d.at_risk {
        summary.push(vec![
            t(
                "流失风险客户（P(alive) < 30%）",
                "At risk (P(alive) < 30 %)",
            ),
            n.to_string(),
        ]);
    }
    if !summary.is_empty() {
        let header = vec![t("指标", "Measure"), t("数值", "Value")];
        tables.push(sheet("summary", (header, summary), &[]));
    }
    if let Some(lines) = &d.channels {
        tables.push(sheet(
            "channels",
            crate::campaigns::channel_table(lines, lang),
            &[1, 2, 3],
        ));
    }
    if tables.is_empty() {
        return Err(ApiError::Forbidden);
    }
    let title = format!("{} · {}", say(lang, "看板", "Dashboard"), d.as_of);
    crate::export::tables_file(format, table, &title, &tables)
}

/// The panels' tables: key (for `table=`), Chinese name (also the XLSX
/// sheet), English name.
const PANEL_TABLES: [(&str, &str, &str); 6] = [
    ("distribution", "分类分布", "distribution"),
    ("funnel", "意向漏斗", "funnel"),
    ("revenue", "月度采购额", "purchases"),
    ("class_changes", "本季类别变化", "class changes"),
    ("summary", "概况", "summary"),
    ("channels", "渠道", "channels"),
];

/// The table a panel's figures are in (tasks, SLA and customers at risk
/// share the summary).
fn panel_table(panel: &str) -> (&'static str, &'static str, &'static str) {
    let key = match panel {
        "tasks" | "sla" | "at_risk" => "summary",
        p => p,
    };
    PANEL_TABLES
        .into_iter()
        .find(|t| t.0 == key)
        .unwrap_or(PANEL_TABLES[4])
}

/// The panels' CSV tables in layout order, with their names.
pub fn csv_tables(d: &Dashboard, lang: Lang) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for p in &d.layout {
        let (key, zh, en) = panel_table(p);
        if out.iter().all(|(k, _)| *k != key) {
            out.push((key, crate::reports::say(lang, zh, en)));
        }
    }
    out
}
