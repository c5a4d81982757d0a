//! Period reports (issue 9) for one scheme, one period and optionally one
//! segment, within the reader's report scope. The classification report:
//! the class lines and transitions of kehu-core `report`, the SLA
//! compliance of the period's service requests, and the anomaly report's
//! trend over the last six periods, with its tables as CSV/XLSX. The
//! strategy report: each class's strategy goal against what happened and
//! its tasks (kehu-core `report::effect`).

use crate::api::tasks::{day_start, sla_of_rows, SlaReport};
use crate::error::ApiError;
use crate::export::Format;
use crate::AppState;
use chrono::{Months, NaiveTime};
use kehu_core::report::effect::{effect_report, EffectLine, TaskCounts};
use kehu_core::report::{class_report, ClassLine, ClassReport, CustomerPeriod, Definitions};
use kehu_core::strategy::Period;
use kehu_core::{Lang, Reason};
use kehu_store::reports::ReportWindow;
use kehu_store::tasks::TaskScope;
use kehu_store::ScopeFilter;
use roaring::RoaringBitmap;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// What to report on.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    pub scheme: String,
    pub period: Period,
    /// A segment expression; None: everyone in the reader's scope.
    pub segment: Option<String>,
    pub definitions: Definitions,
}

/// Anomaly findings in one period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QualityPoint {
    pub period: String,
    pub found: i64,
    pub resolved: i64,
    /// Open at the period's end.
    pub open_at_end: i64,
}

/// How churn and repurchase were counted, in words.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DefinitionText {
    pub churn: String,
    pub repurchase: String,
    /// With a segment: who is in it is decided on today's data (the
    /// classes at the period's ends still come from the history).
    pub segment: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClassificationReport {
    pub scheme: String,
    pub scheme_name: String,
    /// The segment's expression, when the report is for one.
    pub segment: Option<String>,
    #[schema(value_type = Object)]
    #[serde(flatten)]
    pub report: ClassReport,
    pub definition_text: DefinitionText,
    pub sla: SlaReport,
    /// The last six periods, oldest first, ending with this one.
    pub quality: Vec<QualityPoint>,
}

/// The days of `period` and the instants it spans in China's time.
pub fn window(period: &Period) -> ReportWindow {
    let previous = period.previous();
    let day_start = |d: chrono::NaiveDate| crate::tasks::to_utc(d.and_time(NaiveTime::MIN));
    let year_ago = |d: chrono::NaiveDate| d.checked_sub_months(Months::new(12)).unwrap_or(d);
    ReportWindow {
        year_start: year_ago(period.start),
        ago_start: year_ago(period.start),
        ago_end: year_ago(period.end.succ_opt().unwrap_or(period.end))
            .pred_opt()
            .unwrap_or(period.end),
        previous_start: previous.start,
        previous_end: previous.end,
        start: period.start,
        end: period.end,
        starts_at: day_start(period.start),
        ends_at: day_start(period.end.succ_opt().unwrap_or(period.end)),
    }
}

/// Whose data a reader's reports cover: customers and service tasks.
#[derive(Debug, Clone)]
pub struct ReportScope {
    pub customers: ScopeFilter,
    pub tasks: TaskScope,
}

impl ReportScope {
    /// Everything (the command line, which reads as an administrator).
    pub fn all() -> ReportScope {
        ReportScope {
            customers: ScopeFilter::All,
            tasks: TaskScope::All,
        }
    }

    /// A user's report scope; 403 without the right to read reports.
    pub fn of(user: &crate::auth::CurrentUser) -> Result<ReportScope, ApiError> {
        Ok(ReportScope {
            customers: user.scope_filter(kehu_core::role::Permission::ReportRead)?,
            tasks: crate::api::tasks::report_scope(user)?,
        })
    }
}

/// The customers in scope, narrowed to the segment when there is one;
/// None: everyone (no need to consult the segment index).
pub async fn population(
    state: &AppState,
    scope: &ScopeFilter,
    segment: Option<&str>,
) -> Result<Option<RoaringBitmap>, ApiError> {
    match (segment.filter(|s| !s.trim().is_empty()), scope) {
        (Some(src), _) => {
            let (compiled, _) =
                crate::api::segments::compile_expression(state, src, "segment").await?;
            Ok(Some(state.segments.id_set(&compiled.plan, scope).await?))
        }
        (None, ScopeFilter::All) => Ok(None),
        (None, scope) => Ok(Some(state.segments.scope_ids(scope).await?)),
    }
}

/// SLA compliance of the population's service requests created in the
/// period, as they stood at its end (or now, for the period under way):
/// a past period reads the same later.
async fn period_sla(
    state: &AppState,
    scope: &TaskScope,
    period: &Period,
    allowed: &Option<RoaringBitmap>,
) -> Result<SlaReport, ApiError> {
    let to = period.end.succ_opt().unwrap_or(period.end);
    let tasks = state
        .store
        .sla_tasks(scope, day_start(period.start), day_start(to))
        .await?;
    let as_of = day_start(to).min(chrono::Utc::now());
    let rows = kehu_store::tasks::SlaRow::tally(
        tasks.iter().filter(|t| admits(allowed, t.customer_id)),
        as_of,
    );
    Ok(sla_of_rows(period.start, to, rows))
}

/// Whether a customer is in the population.
fn admits(allowed: &Option<RoaringBitmap>, customer_id: i64) -> bool {
    allowed
        .as_ref()
        .is_none_or(|set| u32::try_from(customer_id).is_ok_and(|id| set.contains(id)))
}

/// The scheme's name and class order (the published version).
/// A published scheme's name and class order; a scheme that is not
/// published is refused on `scheme`, naming those that are.
pub async fn scheme_classes(
    state: &AppState,
    key: &str,
) -> Result<(String, Vec<String>), ApiError> {
    let versions = state.store.published_scheme_versions().await?;
    let Some(v) = versions.iter().find(|v| v.scheme_key == key) else {
        let known: Vec<&str> = versions.iter().map(|v| v.scheme_key.as_str()).collect();
        return Err(ApiError::field(
            "scheme",
            Reason::UnknownOption {
                allowed: known.iter().map(|s| s.to_string()).collect(),
            },
        ));
    };
    let spec = v.parsed_spec()?;
    Ok((spec.name, spec.classes.into_iter().map(|c| c.key).collect()))
}

/// What every report of a scheme reads first.
struct Members {
    scheme_name: String,
    /// The scheme's classes, in order.
    classes: Vec<String>,
    /// The population (None: everyone).
    allowed: Option<RoaringBitmap>,
    /// The population's customers over the window.
    customers: Vec<CustomerPeriod>,
    window: ReportWindow,
}

/// Reads the scheme, the population and its customers over the period;
/// orders of the twelve months before the period only when `year_before`
/// (churn by the year, retention, the same period a year earlier).
async fn members(
    state: &AppState,
    scope: &ReportScope,
    req: &ReportRequest,
    year_before: bool,
) -> Result<Members, ApiError> {
    let mut window = window(&req.period);
    if !year_before {
        window.year_start = window.previous_start;
    }
    let (scheme_name, classes) = scheme_classes(state, &req.scheme).await?;
    let allowed = population(state, &scope.customers, req.segment.as_deref()).await?;
    let customers = state
        .store
        .customer_periods(&req.scheme, &window)
        .await?
        .into_iter()
        // One merged since is in the population when the customer it is part of today is.
        .filter(|c| admits(&allowed, c.today_id()))
        .collect();
    Ok(Members {
        scheme_name,
        classes,
        allowed,
        customers,
        window,
    })
}

/// The population's customers over a report's period (for the lists
/// behind its numbers, without the report's other reads) and the scheme's name.
pub async fn period_customers(
    state: &AppState,
    scope: &ReportScope,
    req: &ReportRequest,
    year_before: bool,
) -> Result<(String, Vec<CustomerPeriod>), ApiError> {
    let m = members(state, scope, req, year_before).await?;
    Ok((m.scheme_name, m.customers))
}

/// The classification report.
pub async fn classification(
    state: &AppState,
    scope: &ReportScope,
    req: &ReportRequest,
    lang: Lang,
) -> Result<ClassificationReport, ApiError> {
    let year_before = req.definitions.churn == kehu_core::report::ChurnBasis::Year;
    let Members {
        scheme_name,
        classes,
        allowed,
        customers,
        ..
    } = members(state, scope, req, year_before).await?;
    let report = class_report(&req.period, &classes, req.definitions, &customers);
    let sla = period_sla(state, &scope.tasks, &req.period, &allowed).await?;
    let quality = quality_trend(state, &req.period, &allowed).await?;
    let d = req.definitions;
    let definition_text = DefinitionText {
        churn: say(lang, d.churn.label_zh(), d.churn.label_en()),
        repurchase: say(lang, d.repurchase.label_zh(), d.repurchase.label_en()),
        segment: req.segment.as_ref().map(|_| {
            say(
                lang,
                "分群成员按今天的数据确定；各期末的类别仍取自分类历史",
                "the segment's members are decided on today's data; the classes at each period's end still come from the class history",
            )
        }),
    };
    Ok(ClassificationReport {
        scheme: req.scheme.clone(),
        scheme_name,
        segment: req.segment.clone(),
        report,
        definition_text,
        sla,
        quality,
    })
}

/// Findings found, resolved and open at the end of each of the last six periods.
async fn quality_trend(
    state: &AppState,
    period: &Period,
    allowed: &Option<RoaringBitmap>,
) -> Result<Vec<QualityPoint>, ApiError> {
    let findings: Vec<_> = state
        .store
        .findings_until(period.end)
        .await?
        .into_iter()
        .filter(|f| admits(allowed, f.customer_id))
        .collect();
    let mut periods = vec![*period];
    while periods.len() < 6 {
        let earlier = periods[periods.len() - 1].previous();
        periods.push(earlier);
    }
    periods.reverse();
    Ok(periods
        .iter()
        .map(|p| QualityPoint {
            period: p.label(),
            found: findings.iter().filter(|f| p.contains(f.found_on)).count() as i64,
            resolved: findings
                .iter()
                .filter(|f| f.resolved_on.is_some_and(|d| p.contains(d)))
                .count() as i64,
            open_at_end: findings
                .iter()
                .filter(|f| f.found_on <= p.end && f.resolved_on.is_none_or(|d| d > p.end))
                .count() as i64,
        })
        .collect())
}

/// A text in the reader's language.
pub fn say(lang: Lang, zh: &str, en: &str) -> String {
    match lang {
        Lang::Zh => zh.to_string(),
        Lang::En => en.to_string(),
    }
}

/// A rate in 1/10000 as people read it: 12.34 %.
pub fn percent(bp: Option<i64>) -> String {
    bp.map_or_else(|| "—".into(), |v| format!("{}.{:02} %", v / 100, v % 100))
}

/// The class table as rows (header first), for CSV/XLSX and the page.
pub fn class_table(r: &ClassificationReport, lang: Lang) -> (Vec<String>, Vec<Vec<String>>) {
    let t = |zh: &str, en: &str| say(lang, zh, en);
    let header = vec![
        t("类别", "Class"),
        t("客户数", "Customers"),
        t("占比", "Share"),
        t("上期客户数", "Previous period"),
        t("变化", "Change"),
        t("新客户", "New customers"),
        t("收入（元）", "Revenue (yuan)"),
        t("收入占比", "Revenue share"),
        t("订单数", "Orders"),
        t("平均订单额（元）", "Average order (yuan)"),
        t("流失率", "Churn rate"),
        t("复购率", "Repurchase rate"),
    ];
    let yuan = kehu_core::money::yuan_text;
    let row = |l: &ClassLine| {
        vec![
            if l.total {
                t("合计", "Total")
            } else {
                l.class
                    .clone()
                    .unwrap_or_else(|| t("未分类", "Not classified"))
            },
            l.customers.to_string(),
            percent(Some(l.share)),
            l.customers_before.to_string(),
            format!("{:+}", l.change),
            l.new_customers.to_string(),
            yuan(l.revenue_fen),
            percent(Some(l.revenue_share)),
            l.orders.to_string(),
            l.average_order_fen.map_or_else(|| "—".into(), yuan),
            percent(l.churn_rate),
            percent(l.repurchase_rate),
        ]
    };
    let rows = r
        .report
        .classes
        .iter()
        .chain(std::iter::once(&r.report.total))
        .map(row)
        .collect();
    (header, rows)
}

/// The transition matrix as rows: from-class down, to-class across.
pub fn transition_table(r: &ClassificationReport, lang: Lang) -> (Vec<String>, Vec<Vec<String>>) {
    let none = match lang {
        Lang::Zh => "未分类",
        Lang::En => "Not classified",
    };
    let name = |c: &Option<String>| c.clone().unwrap_or_else(|| none.to_string());
    let classes: Vec<&Option<String>> = r.report.classes.iter().map(|l| &l.class).collect();
    let mut header = vec![match lang {
        Lang::Zh => "上期 \\ 本期".to_string(),
        Lang::En => "previous \\ now".to_string(),
    }];
    header.extend(classes.iter().map(|c| name(c)));
    let rows = classes
        .iter()
        .map(|from| {
            let mut row = vec![name(from)];
            row.extend(classes.iter().map(|to| {
                r.report
                    .transitions
                    .iter()
                    .find(|t| &&t.from == from && &&t.to == to)
                    .map_or(0, |t| t.customers)
                    .to_string()
            }));
            row
        })
        .collect();
    (header, rows)
}

/// The data-quality trend as rows.
fn quality_table(r: &ClassificationReport, lang: Lang) -> (Vec<String>, Vec<Vec<String>>) {
    let header = match lang {
        Lang::Zh => ["期间", "新发现异常", "已解决", "期末未解决"],
        Lang::En => ["Period", "Found", "Resolved", "Open at end"],
    }
    .map(String::from)
    .to_vec();
    let rows = r
        .quality
        .iter()
        .map(|q| {
            vec![
                q.period.clone(),
                q.found.to_string(),
                q.resolved.to_string(),
                q.open_at_end.to_string(),
            ]
        })
        .collect();
    (header, rows)
}

/// The SLA table as rows.
fn sla_table(r: &ClassificationReport, lang: Lang) -> (Vec<String>, Vec<Vec<String>>) {
    let header = match lang {
        Lang::Zh => [
            "类别",
            "时限（工作小时）",
            "服务请求",
            "按时",
            "超时完成",
            "未完成（未超时）",
            "未完成（已超时）",
            "达标率",
        ],
        Lang::En => [
            "Class",
            "SLA (working hours)",
            "Requests",
            "On time",
            "Late",
            "Open, within",
            "Open, breached",
            "Compliance",
        ],
    }
    .map(String::from)
    .to_vec();
    let rows = r
        .sla
        .rows
        .iter()
        .chain(std::iter::once(&r.sla.total))
        .map(|s| {
            vec![
                s.class_name.clone().unwrap_or_else(|| match lang {
                    Lang::Zh => "合计".into(),
                    Lang::En => "Total".into(),
                }),
                s.sla_hours.map(|h| h.to_string()).unwrap_or_default(),
                s.total.to_string(),
                s.on_time.to_string(),
                s.late.to_string(),
                s.open_within.to_string(),
                s.open_breached.to_string(),
                s.compliance_percent
                    .map(|p| format!("{p:.1} %"))
                    .unwrap_or_else(|| "—".into()),
            ]
        })
        .collect();
    (header, rows)
}

/// The report as a file: CSV of one table (`classes`, `transitions`,
/// `sla` or `quality`), or an XLSX workbook of all of them.
pub fn report_file(
    r: &ClassificationReport,
    format: Format,
    table: Option<&str>,
    lang: Lang,
) -> Result<Vec<u8>, ApiError> {
    // The transition counts are whole numbers after the first column.
    let transition_numbers: Vec<usize> = (1..=r.report.classes.len()).collect();
    let tables = [
        (
            "classes",
            "分类分布",
            class_table(r, lang),
            &[1, 3, 5, 8][..],
        ),
        (
            "transitions",
            "迁移矩阵",
            transition_table(r, lang),
            &transition_numbers[..],
        ),
        ("sla", "服务时限", sla_table(r, lang), &[2, 3, 4, 5, 6][..]),
        (
            "quality",
            "数据质量",
            quality_table(r, lang),
            &[1, 2, 3][..],
        ),
        ("definitions", "定义", definitions_table(r, lang), &[][..]),
    ];
    let title = format!(
        "{} · {} · {}",
        say(lang, "客户分类报表", "Classification report"),
        r.scheme_name,
        r.report.period
    );
    crate::export::tables_file(format, table, &title, &tables)
}

/// How the report's numbers are defined, as a table: a file read away from
/// the page still says what churn, repurchase, the segment and SLA mean.
fn definitions_table(r: &ClassificationReport, lang: Lang) -> (Vec<String>, Vec<Vec<String>>) {
    let d = &r.definition_text;
    let mut rows = vec![
        vec![say(lang, "流失率", "Churn"), d.churn.clone()],
        vec![say(lang, "复购率", "Repurchase"), d.repurchase.clone()],
        vec![
            say(lang, "服务时限", "SLA"),
            say(
                lang,
                "本期提出的服务请求，按期末时的状态计（期末后才答复的计为期末仍未答复）",
                "service requests made in the period, as they stood at its end (answered only later: still open then)",
            ),
        ],
    ];
    if let (Some(segment), Some(text)) = (&r.segment, &d.segment) {
        rows.push(vec![
            say(lang, "分群", "Segment"),
            format!("{segment} — {text}"),
        ]);
    }
    (
        vec![
            say(lang, "指标", "Measure"),
            say(lang, "定义", "Definition"),
        ],
        rows,
    )
}

/// Strategy effectiveness of a scheme's classes in a period.
#[derive(Debug, Serialize, ToSchema)]
pub struct StrategyReport {
    pub scheme: String,
    pub scheme_name: String,
    pub segment: Option<String>,
    pub period: String,
    pub start: chrono::NaiveDate,
    pub end: chrono::NaiveDate,
    /// The same period a year earlier, which growth is measured against.
    pub ago_start: chrono::NaiveDate,
    pub ago_end: chrono::NaiveDate,
    #[schema(value_type = Vec<Object>)]
    pub lines: Vec<EffectLine>,
    /// How each goal metric is measured.
    pub definitions: Vec<(String, String)>,
}

/// The strategy effectiveness report.
pub async fn strategy(
    state: &AppState,
    scope: &ReportScope,
    req: &ReportRequest,
    lang: Lang,
) -> Result<StrategyReport, ApiError> {
    let Members {
        scheme_name,
        classes,
        allowed,
        customers,
        window: w,
    } = members(state, scope, req, true).await?;
    let strategies: Vec<kehu_core::strategy::Strategy> = state
        .store
        .strategies()
        .await?
        .into_iter()
        .map(|s| s.strategy)
        .filter(|s| s.scheme_key == req.scheme)
        .collect();
    let mut tasks: BTreeMap<String, TaskCounts> = BTreeMap::new();
    // As the tasks stood at the period's end (now, while it runs): last
    // quarter's report gives today what it gave then.
    let as_of = w.ends_at.min(chrono::Utc::now());
    for t in state
        .store
        .strategy_tasks_due(&req.scheme, w.starts_at, w.ends_at, as_of)
        .await?
        .into_iter()
        .filter(|t| admits(&allowed, t.customer_id))
    {
        let c = tasks.entry(t.class_name).or_default();
        c.due += 1;
        c.done += i64::from(t.status == "done");
        c.cancelled += i64::from(t.status == "cancelled");
        c.on_time += i64::from(t.on_time);
        c.overdue += i64::from(t.overdue);
    }
    let lines = effect_report(&classes, &strategies, &customers, &tasks);
    let definitions = kehu_core::strategy::GoalMetric::ALL
        .iter()
        .map(|m| (m.key().to_string(), metric_definition(*m, lang).to_string()))
        .collect();
    Ok(StrategyReport {
        scheme: req.scheme.clone(),
        scheme_name,
        segment: req.segment.clone(),
        period: req.period.label(),
        start: req.period.start,
        end: req.period.end,
        ago_start: w.ago_start,
        ago_end: w.ago_end,
        lines,
        definitions,
    })
}

/// The strategy table as a CSV or XLSX file.
pub fn strategy_file(r: &StrategyReport, format: Format, lang: Lang) -> Result<Vec<u8>, ApiError> {
    let (header, rows) = strategy_table(r, lang);
    let title = format!(
        "{} · {} · {}",
        say(lang, "策略效果", "Strategy effectiveness"),
        r.scheme_name,
        r.period
    );
    let definitions = (
        vec![
            say(lang, "指标", "Measure"),
            say(lang, "定义", "Definition"),
        ],
        r.definitions
            .iter()
            .map(|(k, text)| vec![k.clone(), text.clone()])
            .collect(),
    );
    crate::export::tables_file(
        format,
        None,
        &title,
        &[
            (
                "lines",
                "策略效果",
                (header, rows),
                &[5, 6, 9, 10, 11, 14][..],
            ),
            ("definitions", "定义", definitions, &[][..]),
        ],
    )
}

fn metric_definition(m: kehu_core::strategy::GoalMetric, lang: Lang) -> &'static str {
    use kehu_core::strategy::GoalMetric as M;
    match (m, lang) {
        (M::PurchaseGrowth, Lang::Zh) => "期初属于该类的客户本期采购额，对比去年同期的增长（%）",
        (M::PurchaseGrowth, Lang::En) => "the class's customers' purchases in the period against the same period a year earlier (%)",
        (M::OrderGrowth, Lang::Zh) => "期初属于该类的客户本期订单数，对比去年同期的增长（%）",
        (M::OrderGrowth, Lang::En) => "their order count in the period against the same period a year earlier (%)",
        (M::ProductLines, Lang::Zh) => "每位客户本期购买的产品线数减去年同期（条）",
        (M::ProductLines, Lang::En) => "product lines bought per customer in the period minus a year earlier (lines)",
        (M::Retention, Lang::Zh) => "期前12个月有购买的客户中，本期仍有购买的比例（%）",
        (M::Retention, Lang::En) => "of those who bought in the 12 months before the period, the share who bought in it (%)",
    }
}

/// The strategy table as rows (header first).
pub fn strategy_table(r: &StrategyReport, lang: Lang) -> (Vec<String>, Vec<Vec<String>>) {
    let t = |zh: &str, en: &str| say(lang, zh, en);
    let header = vec![
        t("类别", "Class"),
        t("目标", "Goal"),
        t("目标值", "Target"),
        t("实际", "Actual"),
        t("达成", "Met"),
        t("客户数", "Customers"),
        t("本期下单客户", "Bought"),
        t("本期采购额（元）", "Purchases (yuan)"),
        t("去年同期（元）", "A year earlier (yuan)"),
        t("本期订单", "Orders"),
        t("去年同期订单", "Orders a year earlier"),
        t("任务（到期）", "Tasks due"),
        t("完成率", "Completion"),
        t("按时率", "On time"),
        t("逾期未完成", "Overdue"),
    ];
    let yuan = kehu_core::money::yuan_text;
    let rows = r
        .lines
        .iter()
        .map(|l| {
            let unit = l.metric.map_or("", |m| m.unit());
            vec![
                l.class.clone(),
                l.goal.clone().unwrap_or_else(|| "—".into()),
                l.target
                    .map_or_else(|| "—".into(), |v| format!("{v} {unit}")),
                l.actual.map_or_else(
                    || "—".into(),
                    |v| {
                        let sign = if v < 0 { "-" } else { "" };
                        format!("{sign}{}.{:02} {unit}", v.abs() / 100, v.abs() % 100)
                    },
                ),
                match l.met {
                    Some(true) => t("是", "yes"),
                    Some(false) => t("否", "no"),
                    None => "—".into(),
                },
                l.customers.to_string(),
                l.bought.to_string(),
                yuan(l.revenue_fen),
                yuan(l.revenue_ago_fen),
                l.orders.to_string(),
                l.orders_ago.to_string(),
                l.tasks.due.to_string(),
                percent(l.completion_rate),
                percent(l.on_time_rate),
                l.tasks.overdue.to_string(),
            ]
        })
        .collect();
    (header, rows)
}
