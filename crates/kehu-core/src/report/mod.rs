//! The classification report of a period: for one scheme (and, outside
//! this module, one segment), each class's customers at the period's end
//! and at the previous period's end, the transitions between them, revenue
//! and orders in the period, churn and repurchase by class, and new
//! customers. Classes come from the class history, orders by their dates,
//! so a past period's report reads the same later (unless records dated in
//! it were added or changed since). Merges made or undone since the
//! period's end are rewound ([`rewind_merges`]): a customer absorbed since
//! is counted on its own with its own orders, as it was then.
//!
//! Rates and shares are integers in 1/10000 (12.34 % = 1234), money in fen.

use crate::classify::OrderFact;
use crate::strategy::Period;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

labelled_enum!(
    /// Who counts as churned: bought in the previous period (or the twelve
    /// months before the period), not in it.
    ChurnBasis {
        PreviousPeriod = "previous_period" / "上期有购买、本期无购买",
        Year = "year" / "期前12个月有购买、本期无购买",
    }
);

labelled_enum!(
    /// Who counts as repurchasing: bought on two or more days within the
    /// period (of its buyers), or bought in the previous period and again
    /// in this one (of the previous period's buyers).
    RepurchaseBasis {
        WithinPeriod = "within_period" / "本期内至少两个不同日期下单（占本期下单客户）",
        AcrossPeriods = "across_periods" / "上期与本期均有购买（占上期下单客户）",
    }
);

impl ChurnBasis {
    pub fn label_en(self) -> &'static str {
        match self {
            ChurnBasis::PreviousPeriod => "bought in the previous period, not in this one",
            ChurnBasis::Year => "bought in the 12 months before the period, not in it",
        }
    }
}

impl RepurchaseBasis {
    pub fn label_en(self) -> &'static str {
        match self {
            RepurchaseBasis::WithinPeriod => {
                "bought on two or more days within the period (of the period's buyers)"
            }
            RepurchaseBasis::AcrossPeriods => {
                "bought in the previous period and again in this one (of the previous period's buyers)"
            }
        }
    }
}

/// How churn and repurchase are counted (stated on the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definitions {
    pub churn: ChurnBasis,
    pub repurchase: RepurchaseBasis,
}

impl Default for Definitions {
    fn default() -> Self {
        Definitions {
            churn: ChurnBasis::PreviousPeriod,
            repurchase: RepurchaseBasis::WithinPeriod,
        }
    }
}

/// The days a classification report covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportWindow {
    /// Orders are read from here: twelve months before `start` for the
    /// "bought in the year before" churn basis, else `previous_start`.
    pub year_start: NaiveDate,
    pub previous_start: NaiveDate,
    pub previous_end: NaiveDate,
    /// The same period a year earlier (its orders count when `year_start` reaches it).
    pub ago_start: NaiveDate,
    pub ago_end: NaiveDate,
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// The period's first instant and the instant after it (customers
    /// created in between are new; tasks due in between are the period's).
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// One customer as the report sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerPeriod {
    pub customer_id: i64,
    /// Class at the end of the previous period (None: not classified then).
    pub class_before: Option<String>,
    /// Class at the end of the period.
    pub class_after: Option<String>,
    /// Created within the period.
    pub is_new: bool,
    /// Orders in the period: their sum, count and distinct days.
    pub revenue_fen: i64,
    pub orders: i64,
    pub order_days: i64,
    /// Bought in the previous period / in the twelve months before the period.
    pub bought_previous: bool,
    pub bought_year_before: bool,
    /// Distinct product lines in the period.
    pub lines: i64,
    /// The same period a year earlier: orders' sum, count, distinct product lines.
    pub revenue_ago_fen: i64,
    pub orders_ago: i64,
    pub lines_ago: i64,
    /// Merged since the period's end into this customer, which exists
    /// today: the report's population (rights, segment) follows it.
    pub merged_into: Option<i64>,
}

impl CustomerPeriod {
    /// The customer as it is today: itself, or the one it was merged into since.
    pub fn today_id(&self) -> i64 {
        self.merged_into.unwrap_or(self.customer_id)
    }

    /// Sets the order figures from the customer's orders (all of them, in
    /// any order): only orders dated from `w.year_start` to `w.end` count;
    /// of those, the period's make the revenue, count, distinct days and
    /// product lines, the previous period's and the year's before the
    /// period make "bought before", and the same period a year earlier its
    /// own sums.
    pub fn count_orders(&mut self, orders: &[OrderFact], w: &ReportWindow) {
        let mut days: Vec<NaiveDate> = Vec::new();
        let mut lines: Vec<&str> = Vec::new();
        let mut lines_ago: Vec<&str> = Vec::new();
        let (mut revenue, mut count, mut revenue_ago, mut count_ago) = (0, 0, 0, 0);
        let (mut previous, mut year_before) = (false, false);
        for o in orders
            .iter()
            .filter(|o| o.on >= w.year_start && o.on <= w.end)
        {
            let line = o.line.as_deref();
            if o.on >= w.start {
                revenue += o.amount_fen;
                count += 1;
                days.push(o.on);
                lines.extend(line);
            } else {
                year_before = true;
                previous |= o.on >= w.previous_start;
            }
            if o.on >= w.ago_start && o.on <= w.ago_end {
                revenue_ago += o.amount_fen;
                count_ago += 1;
                lines_ago.extend(line);
            }
        }
        fn distinct<T: Ord>(v: &mut Vec<T>) -> i64 {
            v.sort_unstable();
            v.dedup();
            v.len() as i64
        }
        self.revenue_fen = revenue;
        self.orders = count;
        self.order_days = distinct(&mut days);
        self.lines = distinct(&mut lines);
        self.bought_previous = previous;
        self.bought_year_before = year_before;
        self.revenue_ago_fen = revenue_ago;
        self.orders_ago = count_ago;
        self.lines_ago = distinct(&mut lines_ago);
    }
}

/// The distinct days from `since` to `until` (inclusive) with orders.
pub fn order_days_between(orders: &[OrderFact], since: NaiveDate, until: NaiveDate) -> usize {
    let mut days: Vec<NaiveDate> = orders
        .iter()
        .map(|o| o.on)
        .filter(|d| (since..=until).contains(d))
        .collect();
    days.sort_unstable();
    days.dedup();
    days.len()
}

/// One class's line (or the total's, with `class` None and `total` true).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct ClassLine {
    /// None: not classified.
    pub class: Option<String>,
    pub total: bool,
    pub customers: i64,
    /// Share of all customers, 1/10000.
    pub share: i64,
    pub customers_before: i64,
    pub change: i64,
    pub new_customers: i64,
    pub revenue_fen: i64,
    /// Share of all revenue, 1/10000.
    pub revenue_share: i64,
    pub orders: i64,
    /// Revenue per order (fen), None without orders.
    pub average_order_fen: Option<i64>,
    /// Churn, by the class at the start of the period: of `churn_base` customers, `churned`.
    pub churn_base: i64,
    pub churned: i64,
    pub churn_rate: Option<i64>,
    /// Repurchase, by the class at the end (within the period) or at the start (across).
    pub repurchase_base: i64,
    pub repurchased: i64,
    pub repurchase_rate: Option<i64>,
}

/// Customers who were in `from` at the previous period's end and in `to` at this one's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub from: Option<String>,
    pub to: Option<String>,
    pub customers: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClassReport {
    pub period: String,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub previous_start: NaiveDate,
    pub previous_end: NaiveDate,
    pub definitions: Definitions,
    /// The scheme's classes in order, then "not classified" when anyone is.
    pub classes: Vec<ClassLine>,
    pub total: ClassLine,
    /// Every (from, to) pair with customers, from-class order then to-class order.
    pub transitions: Vec<Transition>,
}

/// a / b in 1/10000, rounded; None when b = 0.
pub fn ratio(a: i64, b: i64) -> Option<i64> {
    (b > 0).then(|| (a * 20_000 + b) / (2 * b))
}

/// Builds the report from every customer of the population.
pub fn class_report(
    period: &Period,
    class_order: &[String],
    definitions: Definitions,
    customers: &[CustomerPeriod],
) -> ClassReport {
    let previous = period.previous();
    // Lines in the scheme's order, then classes no longer in it, then "none".
    let mut order: Vec<Option<String>> = class_order.iter().cloned().map(Some).collect();
    let mut seen: HashMap<Option<String>, usize> = order
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), i))
        .collect();
    let mut extra: Vec<Option<String>> = customers
        .iter()
        .flat_map(|c| [c.class_before.clone(), c.class_after.clone()])
        .filter(|c| c.is_some() && !seen.contains_key(c))
        .collect();
    extra.sort();
    extra.dedup();
    order.extend(extra);
    if customers
        .iter()
        .any(|c| c.class_after.is_none() || c.class_before.is_none())
    {
        order.push(None);
    }
    seen = order
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), i))
        .collect();
    let mut lines: Vec<ClassLine> = order
        .iter()
        .map(|c| ClassLine {
            class: c.clone(),
            ..ClassLine::default()
        })
        .collect();
    let mut total = ClassLine {
        total: true,
        ..ClassLine::default()
    };
    let mut moves: BTreeMap<(usize, usize), i64> = BTreeMap::new();
    for c in customers {
        let after = seen[&c.class_after];
        let before = seen[&c.class_before];
        *moves.entry((before, after)).or_default() += 1;
        let churn_candidate = match definitions.churn {
            ChurnBasis::PreviousPeriod => c.bought_previous,
            ChurnBasis::Year => c.bought_year_before,
        };
        let (repurchase_line, repurchase_base, repurchased) = match definitions.repurchase {
            RepurchaseBasis::WithinPeriod => (after, c.orders > 0, c.order_days >= 2),
            RepurchaseBasis::AcrossPeriods => {
                (before, c.bought_previous, c.bought_previous && c.orders > 0)
            }
        };
        let churned = churn_candidate && c.orders == 0;
        let counted = repurchase_base && repurchased;
        for line in [&mut lines[after], &mut total] {
            line.customers += 1;
            line.new_customers += i64::from(c.is_new);
            line.revenue_fen += c.revenue_fen;
            line.orders += c.orders;
        }
        // Members of the previous period (those that existed then) count where they were.
        if !c.is_new {
            lines[before].customers_before += 1;
            total.customers_before += 1;
        }
        for line in [&mut lines[before], &mut total] {
            line.churn_base += i64::from(churn_candidate);
            line.churned += i64::from(churned);
        }
        for line in [&mut lines[repurchase_line], &mut total] {
            line.repurchase_base += i64::from(repurchase_base);
            line.repurchased += i64::from(counted);
        }
    }
    let (all_customers, all_revenue) = (total.customers, total.revenue_fen);
    for line in lines.iter_mut().chain(std::iter::once(&mut total)) {
        line.share = ratio(line.customers, all_customers).unwrap_or(0);
        line.revenue_share = ratio(line.revenue_fen, all_revenue).unwrap_or(0);
        line.change = line.customers - line.customers_before;
        line.average_order_fen =
            (line.orders > 0).then(|| (line.revenue_fen * 2 + line.orders) / (2 * line.orders));
        line.churn_rate = ratio(line.churned, line.churn_base);
        line.repurchase_rate = ratio(line.repurchased, line.repurchase_base);
    }
    let transitions = moves
        .into_iter()
        .map(|((b, a), n)| Transition {
            from: order[b].clone(),
            to: order[a].clone(),
            customers: n,
        })
        .collect();
    ClassReport {
        period: period.label(),
        start: period.start,
        end: period.end,
        previous_start: previous.start,
        previous_end: previous.end,
        definitions,
        classes: lines,
        total,
        transitions,
    }
}

/// A filter passing each id once (a customer and one merged into it since
/// list as one).
pub fn once_each() -> impl FnMut(&i64) -> bool {
    let mut seen = std::collections::HashSet::new();
    move |&id| seen.insert(id)
}

/// The customers of a transition (drill-down), as they are today.
pub fn moved<'a>(
    customers: &'a [CustomerPeriod],
    from: Option<&'a str>,
    to: Option<&'a str>,
) -> impl Iterator<Item = i64> + 'a {
    customers
        .iter()
        .filter(move |c| c.class_before.as_deref() == from && c.class_after.as_deref() == to)
        .map(|c| c.today_id())
        .filter(once_each())
}

/// A customer merge whose effect differs between a period's end and
/// today: made since the end and still standing, or made before the end
/// and undone since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeSince {
    pub survivor_id: i64,
    pub absorbed_id: i64,
    /// When the absorbed customer was created (from the merge's image).
    pub absorbed_created_at: DateTime<Utc>,
    /// The orders the merge moved from the absorbed customer to the survivor.
    pub orders: Vec<i64>,
    pub merged_at: DateTime<Utc>,
    /// True: made since the end (the report splits it out again);
    /// false: made before the end and undone since (the report folds it in).
    pub made_since: bool,
}

/// Who owned what at a period's end, where merges since have changed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewound {
    /// Orders whose owner at the end is not their owner today.
    pub order_owner: HashMap<i64, i64>,
    /// Customers absorbed since the end: (id, created at, the customer it is part of today).
    pub restored: Vec<(i64, DateTime<Utc>, i64)>,
    /// Customers that exist today but were absorbed at the end.
    pub absent: Vec<i64>,
}

/// Rewinds merges to a period's end: the merges made since are undone
/// newest first (each gives its moved orders back to the absorbed
/// customer, so a chain a → b → c hands a's orders back through b), then
/// those undone since are made again oldest first.
pub fn rewind_merges(merges: &[MergeSince]) -> Rewound {
    let mut since: Vec<&MergeSince> = merges.iter().filter(|m| m.made_since).collect();
    let mut undone: Vec<&MergeSince> = merges.iter().filter(|m| !m.made_since).collect();
    since.sort_by_key(|m| std::cmp::Reverse(m.merged_at));
    undone.sort_by_key(|m| m.merged_at);
    let mut out = Rewound::default();
    for m in &since {
        for &o in &m.orders {
            out.order_owner.insert(o, m.absorbed_id);
        }
    }
    for m in &undone {
        for &o in &m.orders {
            out.order_owner.insert(o, m.survivor_id);
        }
        out.absent.push(m.absorbed_id);
    }
    // Standing merges form a forest (an absorbed customer is gone), so
    // following survivors ends at a customer of today.
    let survivor_of: HashMap<i64, i64> = since
        .iter()
        .map(|m| (m.absorbed_id, m.survivor_id))
        .collect();
    for m in since.iter().rev() {
        let mut holder = m.survivor_id;
        for _ in 0..survivor_of.len() {
            match survivor_of.get(&holder) {
                Some(&next) => holder = next,
                None => break,
            }
        }
        out.restored
            .push((m.absorbed_id, m.absorbed_created_at, holder));
    }
    out.absent.sort_unstable();
    out.absent.dedup();
    out
}

pub mod effect;
pub mod schedule;

#[cfg(test)]
mod tests;
