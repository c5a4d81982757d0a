//! Strategy effectiveness: per class (as at the period's start), the goal
//! of its strategy against what the class's customers did, compared with
//! the same period a year earlier, and how its strategy's tasks went.
//!
//! What "actual" means per goal metric (stated on the report):
//! - purchase growth: the class's order sum in the period against the same
//!   period a year earlier, in percent;
//! - order growth: the same with order counts;
//! - product lines: distinct product lines per customer in the period minus
//!   a year earlier (1/100 of a line);
//! - retention: of the class's customers who bought in the twelve months
//!   before the period, the share who bought in it, in percent.

use super::{once_each, ratio, CustomerPeriod};
use crate::strategy::{GoalMetric, Strategy};
use serde::Serialize;
use std::collections::BTreeMap;

/// How a class's strategy tasks due in the period went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct TaskCounts {
    pub due: i64,
    pub done: i64,
    /// Done by their due time.
    pub on_time: i64,
    pub cancelled: i64,
    /// Still open past their due time.
    pub overdue: i64,
}

/// Which customers a drill-down lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// The class's customers at the period's start.
    Members,
    /// Those who bought in the period.
    Bought,
    /// Those who bought in the year before it and not in it (not retained).
    Lapsed,
}

impl Measure {
    pub fn parse(s: &str) -> Option<Measure> {
        match s {
            "members" => Some(Measure::Members),
            "bought" => Some(Measure::Bought),
            "lapsed" => Some(Measure::Lapsed),
            _ => None,
        }
    }

    fn holds(self, c: &CustomerPeriod) -> bool {
        match self {
            Measure::Members => true,
            Measure::Bought => c.orders > 0,
            Measure::Lapsed => c.bought_year_before && c.orders == 0,
        }
    }
}

/// One class's line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectLine {
    pub class: String,
    /// The strategy's goal, as written, its metric and target (percent or lines).
    pub goal: Option<String>,
    pub metric: Option<GoalMetric>,
    pub target: Option<i64>,
    /// What happened, in the metric's unit ×100 (1234 = 12.34 % or 12.34 lines); None without a base.
    pub actual: Option<i64>,
    pub met: Option<bool>,
    pub customers: i64,
    pub bought: i64,
    pub revenue_fen: i64,
    pub revenue_ago_fen: i64,
    pub orders: i64,
    pub orders_ago: i64,
    pub retention_base: i64,
    pub retained: i64,
    pub tasks: TaskCounts,
    /// Of the due tasks, done (1/10000); of the done, on time (1/10000).
    pub completion_rate: Option<i64>,
    pub on_time_rate: Option<i64>,
}

/// Growth of `now` over `ago` in 1/100 percent; None when nothing was before.
fn growth(now: i64, ago: i64) -> Option<i64> {
    ratio(now - ago, ago)
}

/// The lines of every class that has a strategy or customers, in the scheme's order.
pub fn effect_report(
    class_order: &[String],
    strategies: &[Strategy],
    customers: &[CustomerPeriod],
    tasks: &BTreeMap<String, TaskCounts>,
) -> Vec<EffectLine> {
    class_order
        .iter()
        .map(|class| {
            let members: Vec<&CustomerPeriod> = customers
                .iter()
                .filter(|c| c.class_before.as_deref() == Some(class))
                .collect();
            let sum = |f: fn(&CustomerPeriod) -> i64| members.iter().map(|c| f(c)).sum::<i64>();
            let n = members.len() as i64;
            let (revenue, revenue_ago) = (sum(|c| c.revenue_fen), sum(|c| c.revenue_ago_fen));
            let (orders, orders_ago) = (sum(|c| c.orders), sum(|c| c.orders_ago));
            let retention_base = sum(|c| i64::from(c.bought_year_before));
            let retained = sum(|c| i64::from(c.bought_year_before && c.orders > 0));
            let strategy = strategies.iter().find(|s| &s.class_name == class);
            let actual = strategy.and_then(|s| match s.goal_metric {
                GoalMetric::PurchaseGrowth => growth(revenue, revenue_ago),
                GoalMetric::OrderGrowth => growth(orders, orders_ago),
                GoalMetric::ProductLines => (n > 0).then(|| {
                    let diff = sum(|c| c.lines) - sum(|c| c.lines_ago);
                    (diff * 200 + n) / (2 * n)
                }),
                GoalMetric::Retention => ratio(retained, retention_base),
            });
            // Percent targets compare with 1/100 percent, line targets with 1/100 line.
            let met = strategy.zip(actual).map(|(s, a)| a >= s.goal_target * 100);
            let t = tasks.get(class).copied().unwrap_or_default();
            EffectLine {
                class: class.clone(),
                goal: strategy.map(|s| s.goal.clone()),
                metric: strategy.map(|s| s.goal_metric),
                target: strategy.map(|s| s.goal_target),
                actual,
                met,
                customers: n,
                bought: sum(|c| i64::from(c.orders > 0)),
                revenue_fen: revenue,
                revenue_ago_fen: revenue_ago,
                orders,
                orders_ago,
                retention_base,
                retained,
                tasks: t,
                completion_rate: ratio(t.done, t.due),
                on_time_rate: ratio(t.on_time, t.done),
            }
        })
        .collect()
}

/// The customers of a class behind one of its numbers, as they are today.
pub fn behind<'a>(
    customers: &'a [CustomerPeriod],
    class: &'a str,
    measure: Measure,
) -> impl Iterator<Item = i64> + 'a {
    customers
        .iter()
        .filter(move |c| c.class_before.as_deref() == Some(class) && measure.holds(c))
        .map(|c| c.today_id())
        .filter(once_each())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::presets;

    fn member(
        id: i64,
        class: &str,
        now: (i64, i64),
        ago: (i64, i64),
        year_before: bool,
    ) -> CustomerPeriod {
        CustomerPeriod {
            customer_id: id,
            class_before: Some(class.into()),
            class_after: Some(class.into()),
            revenue_fen: now.0,
            orders: now.1,
            order_days: now.1,
            lines: now.1.min(2),
            revenue_ago_fen: ago.0,
            orders_ago: ago.1,
            lines_ago: ago.1.min(1),
            bought_year_before: year_before,
            ..CustomerPeriod::default()
        }
    }

    #[test]
    fn goals_are_measured_against_the_same_period_a_year_earlier() {
        let order: Vec<String> = ["战略型", "潜力型", "维持型", "优化型"]
            .map(String::from)
            .to_vec();
        let customers = vec![
            // 战略型: 115 万 against 100 万 = +15 % — exactly the goal.
            member(1, "战略型", (80_000_000, 2), (60_000_000, 2), true),
            member(2, "战略型", (35_000_000, 1), (40_000_000, 1), true),
            // 潜力型: 3 orders against 2 = +50 % (the preset asks for order growth).
            member(3, "潜力型", (1_000_000, 3), (1_000_000, 2), true),
            // 优化型: of 3 who bought in the year before, 2 bought now = 66.67 %.
            member(4, "优化型", (10_000, 1), (0, 0), true),
            member(5, "优化型", (10_000, 1), (0, 0), true),
            member(6, "优化型", (0, 0), (10_000, 1), true),
        ];
        let tasks = BTreeMap::from([(
            "战略型".to_string(),
            TaskCounts {
                due: 4,
                done: 3,
                on_time: 2,
                cancelled: 0,
                overdue: 1,
            },
        )]);
        let lines = effect_report(&order, &presets(), &customers, &tasks);
        let line = |k: &str| lines.iter().find(|l| l.class == k).expect("line");
        let strategic = line("战略型");
        assert_eq!(strategic.metric, Some(GoalMetric::PurchaseGrowth));
        assert_eq!(
            (strategic.actual, strategic.met),
            (Some(1_500), Some(true)),
            "{strategic:?}"
        );
        assert_eq!(
            (strategic.completion_rate, strategic.on_time_rate),
            (Some(7_500), Some(6_667))
        );
        let potential = line("潜力型");
        assert_eq!(potential.actual, Some(5_000));
        let optimise = line("优化型");
        assert_eq!(optimise.metric, Some(GoalMetric::Retention));
        assert_eq!(
            (optimise.retention_base, optimise.retained, optimise.actual),
            (3, 2, Some(6_667))
        );
        assert_eq!(optimise.met, Some(false), "the preset keeps 80 %");
        assert_eq!(line("维持型").actual, None, "no customers, no base");
        assert_eq!(
            behind(&customers, "优化型", Measure::Lapsed).collect::<Vec<_>>(),
            [6]
        );
        assert_eq!(behind(&customers, "战略型", Measure::Members).count(), 2);
    }
}
