//! Indicator metrics, resolved against the field catalogue, and their
//! values for one customer as of a date.

use super::facts::{Facts, OrderFact};
use super::spec::{Countable, Window};
use super::value::{Unit, Value, ValueKind};
use crate::custom_field::{CustomFieldDef, FieldKind};
use crate::interaction::{InteractionKind, Severity};
use chrono::{Datelike, Duration, Months, NaiveDate};

/// A customer field an indicator reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldRef {
    Industry,
    SalesRegion,
    Province,
    City,
    Status,
    SourceChannel,
    Team,
    Employees,
    AnnualRevenue,
    DeclaredAnnualPurchase,
    FoundedOn,
    CooperationStartOn,
    ProductTypes,
    /// P(alive) of the latest BG/NBD fit (ratio).
    PAlive,
    /// Orders expected in the next 90 days (a number).
    ExpectedOrders90d,
    /// Customer lifetime value (fen).
    Clv,
    Custom {
        key: String,
        kind: FieldKind,
    },
}

impl FieldRef {
    /// Resolves `industry`, …, or `custom.KEY` (also `cf.KEY`).
    pub fn resolve(name: &str, custom: &[CustomFieldDef]) -> Option<FieldRef> {
        if let Some(key) = name
            .strip_prefix("custom.")
            .or_else(|| name.strip_prefix("cf."))
        {
            // Personal fields are stored encrypted: never an indicator.
            let def = custom
                .iter()
                .find(|d| d.key == key && d.personal().is_none())?;
            return Some(FieldRef::Custom {
                key: def.key.clone(),
                kind: def.kind,
            });
        }
        Some(match name {
            "industry" => FieldRef::Industry,
            "sales_region" => FieldRef::SalesRegion,
            "province" => FieldRef::Province,
            "city" => FieldRef::City,
            "status" => FieldRef::Status,
            "source_channel" => FieldRef::SourceChannel,
            "team" => FieldRef::Team,
            "employees" => FieldRef::Employees,
            "annual_revenue_fen" => FieldRef::AnnualRevenue,
            "declared_annual_purchase_fen" => FieldRef::DeclaredAnnualPurchase,
            "founded_on" => FieldRef::FoundedOn,
            "cooperation_start_on" => FieldRef::CooperationStartOn,
            "product_types" => FieldRef::ProductTypes,
            "p_alive" => FieldRef::PAlive,
            "expected_orders_90d" => FieldRef::ExpectedOrders90d,
            "clv_fen" | "clv" => FieldRef::Clv,
            _ => return None,
        })
    }

    /// Its JSON name among the customer's business fields under field
    /// rights (`kehu_core::privacy::CUSTOMER_FIELDS`); None for the rest.
    pub fn customer_field(&self) -> Option<&'static str> {
        Some(match self {
            FieldRef::Industry => "industry",
            FieldRef::SalesRegion => "sales_region",
            FieldRef::Province => "province",
            FieldRef::City => "city",
            FieldRef::SourceChannel => "source_channel",
            FieldRef::Employees => "employees",
            FieldRef::AnnualRevenue => "annual_revenue_fen",
            FieldRef::DeclaredAnnualPurchase => "declared_annual_purchase_fen",
            FieldRef::FoundedOn => "founded_on",
            FieldRef::CooperationStartOn => "cooperation_start_on",
            FieldRef::ProductTypes => "product_types",
            _ => return None,
        })
    }

    /// The field as field rights name it: a business field's JSON name,
    /// or `cf.KEY` for a custom field; None for the rest.
    pub fn rights_field(&self) -> Option<String> {
        match self {
            FieldRef::Custom { key, .. } => Some(format!("cf.{key}")),
            other => other.customer_field().map(str::to_string),
        }
    }

    pub fn kind(&self) -> ValueKind {
        match self {
            FieldRef::Industry | FieldRef::SalesRegion | FieldRef::Province | FieldRef::City => {
                ValueKind::Text
            }
            FieldRef::Status | FieldRef::SourceChannel | FieldRef::Team => ValueKind::Text,
            FieldRef::Employees => ValueKind::Num(Unit::Count),
            FieldRef::AnnualRevenue | FieldRef::DeclaredAnnualPurchase => ValueKind::Num(Unit::Fen),
            FieldRef::FoundedOn | FieldRef::CooperationStartOn => ValueKind::Date,
            FieldRef::ProductTypes => ValueKind::List,
            FieldRef::PAlive => ValueKind::Num(Unit::Ratio),
            FieldRef::ExpectedOrders90d => ValueKind::Num(Unit::Number),
            FieldRef::Clv => ValueKind::Num(Unit::Fen),
            FieldRef::Custom { kind, .. } => match kind {
                FieldKind::Text | FieldKind::Enum => ValueKind::Text,
                FieldKind::Number => ValueKind::Num(Unit::Number),
                FieldKind::Money => ValueKind::Num(Unit::Fen),
                FieldKind::Date => ValueKind::Date,
                FieldKind::MultiEnum => ValueKind::List,
                FieldKind::Bool => ValueKind::Bool,
            },
        }
    }

    pub fn value(&self, f: &Facts) -> Value {
        let text = |v: &Option<String>| v.clone().map_or(Value::Missing, Value::Text);
        let num = |v: Option<i64>| v.map_or(Value::Missing, Value::Num);
        let date = |v: Option<NaiveDate>| v.map_or(Value::Missing, Value::Date);
        match self {
            FieldRef::Industry => text(&f.industry),
            FieldRef::SalesRegion => text(&f.sales_region),
            FieldRef::Province => text(&f.province),
            FieldRef::City => text(&f.city),
            FieldRef::Status => Value::Text(f.status.clone()),
            FieldRef::SourceChannel => text(&f.source_channel),
            FieldRef::Team => text(&f.team),
            FieldRef::Employees => num(f.employees),
            FieldRef::AnnualRevenue => num(f.annual_revenue_fen),
            FieldRef::DeclaredAnnualPurchase => num(f.declared_annual_purchase_fen),
            FieldRef::FoundedOn => date(f.founded_on),
            FieldRef::CooperationStartOn => date(f.cooperation_start_on),
            FieldRef::ProductTypes => Value::List(f.product_types.clone()),
            FieldRef::PAlive => num(f.predicted.p_alive),
            FieldRef::ExpectedOrders90d => num(f.predicted.expected_orders_90d),
            FieldRef::Clv => num(f.predicted.clv_fen),
            FieldRef::Custom { key, kind } => custom_value(f.custom.get(key), *kind),
        }
    }
}

/// A stored custom value (as validated by `custom_field`) as an indicator value.
fn custom_value(v: Option<&serde_json::Value>, kind: FieldKind) -> Value {
    use serde_json::Value as J;
    match (v, kind) {
        (None | Some(J::Null), _) => Value::Missing,
        (Some(J::String(s)), FieldKind::Text | FieldKind::Enum) => Value::Text(s.clone()),
        (Some(J::Number(n)), FieldKind::Money) => n.as_i64().map_or(Value::Missing, Value::Num),
        // Custom numbers are decimals people typed; thresholds compare them at 4 decimals.
        (Some(J::Number(n)), FieldKind::Number) => n
            .as_f64()
            .filter(|x| x.is_finite() && x.abs() < 9e14)
            .map_or(
                Value::Missing,
                |x| Value::Num((x * 10_000.0).round() as i64),
            ),
        (Some(J::String(s)), FieldKind::Date) => {
            crate::date::parse_date(s).map_or(Value::Missing, Value::Date)
        }
        (Some(J::Array(xs)), FieldKind::MultiEnum) => Value::List(
            xs.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
        ),
        (Some(J::Bool(b)), FieldKind::Bool) => Value::Bool(*b),
        _ => Value::Missing,
    }
}

/// A date an indicator counts from or to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateRef {
    Field(FieldRef),
    FirstOrder,
    LastOrder,
    FirstInteraction,
    LastInteraction,
    /// The later of the last order and the last interaction.
    LastActivity,
}

impl DateRef {
    pub fn resolve(name: &str, custom: &[CustomFieldDef]) -> Option<DateRef> {
        Some(match name {
            "first_order" => DateRef::FirstOrder,
            "last_order" => DateRef::LastOrder,
            "first_interaction" => DateRef::FirstInteraction,
            "last_interaction" => DateRef::LastInteraction,
            "last_activity" => DateRef::LastActivity,
            _ => FieldRef::resolve(name, custom)
                .filter(|f| f.kind() == ValueKind::Date)
                .map(DateRef::Field)?,
        })
    }

    fn date(&self, f: &Facts, as_of: NaiveDate) -> Option<NaiveDate> {
        let orders = f.orders_until(as_of);
        let inter = f.interactions_until(as_of);
        match self {
            DateRef::Field(field) => match field.value(f) {
                Value::Date(d) => Some(d),
                _ => None,
            },
            DateRef::FirstOrder => orders.first().map(|o| o.on),
            DateRef::LastOrder => orders.last().map(|o| o.on),
            DateRef::FirstInteraction => inter.first().map(|i| i.on),
            DateRef::LastInteraction => inter.last().map(|i| i.on),
            DateRef::LastActivity => orders.last().map(|o| o.on).max(inter.last().map(|i| i.on)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    Field(FieldRef),
    OrderSum {
        window: Window,
        fallback: Option<FieldRef>,
        lines: Vec<String>,
    },
    OrderCount {
        window: Window,
        lines: Vec<String>,
    },
    OrderAvg {
        window: Window,
    },
    OrderMax {
        window: Window,
    },
    OrderLines {
        window: Window,
    },
    InteractionCount {
        window: Window,
        kinds: Vec<InteractionKind>,
        min_severity: Option<Severity>,
    },
    Satisfaction {
        window: Window,
    },
    DaysSince(DateRef),
    MonthsSince(DateRef),
    MonthsUntil(FieldRef),
    PerMonth {
        of: Countable,
        months: u32,
        kinds: Vec<InteractionKind>,
    },
    Growth {
        months: u32,
    },
    GrowthStreak,
    /// Rank share within the population of another indicator (by index).
    Percentile {
        of: usize,
    },
}

/// A computed value and whether a stand-in was used for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    pub value: Value,
    /// The fallback field stood in (no orders on record).
    pub used_fallback: bool,
}

impl Measured {
    fn of(value: Value) -> Measured {
        Measured {
            value,
            used_fallback: false,
        }
    }
}

impl Metric {
    pub fn kind(&self) -> ValueKind {
        match self {
            Metric::Field(f) => f.kind(),
            Metric::OrderSum { .. } | Metric::OrderAvg { .. } | Metric::OrderMax { .. } => {
                ValueKind::Num(Unit::Fen)
            }
            Metric::OrderCount { .. }
            | Metric::OrderLines { .. }
            | Metric::InteractionCount { .. } => ValueKind::Num(Unit::Count),
            Metric::Satisfaction { .. } => ValueKind::Num(Unit::Number),
            Metric::DaysSince(_) => ValueKind::Num(Unit::Days),
            Metric::MonthsSince(_) | Metric::MonthsUntil(_) | Metric::GrowthStreak => {
                ValueKind::Num(Unit::Months)
            }
            Metric::PerMonth { .. } => ValueKind::Num(Unit::PerMonth),
            Metric::Growth { .. } | Metric::Percentile { .. } => ValueKind::Num(Unit::Ratio),
        }
    }

    /// The values of `metrics`, in order, for one customer as of `as_of`
    /// (a row of a [`MetricTable`](super::table::MetricTable)).
    pub fn measure_each<'m>(
        metrics: impl IntoIterator<Item = &'m Metric>,
        f: &Facts,
        as_of: NaiveDate,
    ) -> Vec<Value> {
        metrics
            .into_iter()
            .map(|m| m.measure(f, as_of).value)
            .collect()
    }

    /// The value for one customer as of `as_of`. Percentiles need the
    /// population and are filled in by the evaluator.
    pub fn measure(&self, f: &Facts, as_of: NaiveDate) -> Measured {
        let orders = f.orders_until(as_of);
        let in_window = |w: Window| -> &[OrderFact] {
            match window_start(w, as_of) {
                Some(from) => &orders[orders.partition_point(|o| o.on < from)..],
                None => orders,
            }
        };
        let on_lines = |o: &&OrderFact, lines: &[String]| {
            lines.is_empty()
                || o.line
                    .as_deref()
                    .is_some_and(|l| lines.iter().any(|x| x == l))
        };
        match self {
            Metric::Field(field) => Measured::of(field.value(f)),
            Metric::OrderSum {
                window,
                fallback,
                lines,
            } => {
                if orders.is_empty() {
                    if let Some(fb) = fallback {
                        let v = fb.value(f);
                        if v != Value::Missing {
                            return Measured {
                                value: v,
                                used_fallback: true,
                            };
                        }
                    }
                }
                Measured::of(Value::Num(
                    in_window(*window)
                        .iter()
                        .filter(|o| on_lines(o, lines))
                        .map(|o| o.amount_fen)
                        .sum(),
                ))
            }
            Metric::OrderCount { window, lines } => Measured::of(Value::Num(
                in_window(*window)
                    .iter()
                    .filter(|o| on_lines(o, lines))
                    .count() as i64,
            )),
            Metric::OrderAvg { window } => {
                let os = in_window(*window);
                Measured::of(if os.is_empty() {
                    Value::Missing
                } else {
                    Value::Num(os.iter().map(|o| o.amount_fen).sum::<i64>() / os.len() as i64)
                })
            }
            Metric::OrderMax { window } => Measured::of(
                in_window(*window)
                    .iter()
                    .map(|o| o.amount_fen)
                    .max()
                    .map_or(Value::Missing, Value::Num),
            ),
            Metric::OrderLines { window } => {
                let mut lines: Vec<&str> = in_window(*window)
                    .iter()
                    .filter_map(|o| o.line.as_deref())
                    .collect();
                lines.sort_unstable();
                lines.dedup();
                Measured::of(Value::Num(lines.len() as i64))
            }
            Metric::InteractionCount {
                window,
                kinds,
                min_severity,
            } => {
                let n = interactions_in(f, *window, as_of)
                    .iter()
                    .filter(|i| kinds.is_empty() || kinds.contains(&i.kind))
                    .filter(|i| min_severity.is_none_or(|m| i.severity.is_some_and(|s| s >= m)))
                    .count();
                Measured::of(Value::Num(n as i64))
            }
            Metric::Satisfaction { window } => {
                let scores: Vec<i64> = interactions_in(f, *window, as_of)
                    .iter()
                    .filter_map(|i| i.satisfaction)
                    .collect();
                Measured::of(if scores.is_empty() {
                    Value::Missing
                } else {
                    Value::Num(scores.iter().sum::<i64>() * 10_000 / scores.len() as i64)
                })
            }
            Metric::DaysSince(d) => Measured::of(
                d.date(f, as_of)
                    .map_or(Value::Missing, |d| Value::Num((as_of - d).num_days())),
            ),
            Metric::MonthsSince(d) => Measured::of(
                d.date(f, as_of)
                    .map_or(Value::Missing, |d| Value::Num(months_between(d, as_of))),
            ),
            Metric::MonthsUntil(field) => Measured::of(match field.value(f) {
                Value::Date(d) if d > as_of => Value::Num(months_until(as_of, d)),
                Value::Date(d) => Value::Num(-months_between(d, as_of)),
                _ => Value::Missing,
            }),
            Metric::PerMonth { of, months, kinds } => {
                let w = Window::Months(*months);
                let n = match of {
                    Countable::Orders => in_window(w).len(),
                    Countable::Interactions => interactions_in(f, w, as_of)
                        .iter()
                        .filter(|i| kinds.is_empty() || kinds.contains(&i.kind))
                        .count(),
                };
                Measured::of(Value::Num(n as i64 * 100 / i64::from((*months).max(1))))
            }
            Metric::Growth { months } => {
                let cur_from = window_start(Window::Months(*months), as_of);
                let prev_from = window_start(Window::Months(months * 2), as_of);
                let (Some(cur_from), Some(prev_from)) = (cur_from, prev_from) else {
                    return Measured::of(Value::Missing);
                };
                let sum = |from: NaiveDate, to: NaiveDate| {
                    orders
                        .iter()
                        .filter(|o| o.on >= from && o.on < to)
                        .map(|o| o.amount_fen)
                        .sum::<i64>()
                };
                let cur = sum(cur_from, as_of + Duration::days(1));
                let prev = sum(prev_from, cur_from);
                Measured::of(if prev == 0 {
                    Value::Missing
                } else {
                    Value::Num((cur - prev).saturating_mul(10_000).div_euclid(prev))
                })
            }
            Metric::GrowthStreak => Measured::of(Value::Num(growth_streak(orders, as_of))),
            Metric::Percentile { .. } => Measured::of(Value::Missing),
        }
    }
}

fn interactions_in(f: &Facts, w: Window, as_of: NaiveDate) -> &[super::facts::InteractionFact] {
    let all = f.interactions_until(as_of);
    match window_start(w, as_of) {
        Some(from) => &all[all.partition_point(|i| i.on < from)..],
        None => all,
    }
}

/// The first day inside a window ending on `as_of`: 30d → as_of − 29 days;
/// 12m → the day after as_of − 12 months (2024-03-12 → 2023-03-13).
pub fn window_start(w: Window, as_of: NaiveDate) -> Option<NaiveDate> {
    match w {
        Window::Days(n) => as_of.checked_sub_signed(Duration::days(i64::from(n) - 1)),
        Window::Months(n) => as_of
            .checked_sub_months(Months::new(n))
            .and_then(|d| d.succ_opt()),
        Window::All => None,
    }
}

/// Whole months from `from` to `to` (negative when `to` is earlier):
/// 2021-03-15 → 2023-03-15 is 24, → 2023-03-14 is 23.
pub fn months_between(from: NaiveDate, to: NaiveDate) -> i64 {
    if to < from {
        return -months_between(to, from);
    }
    let mut m =
        i64::from(to.year() - from.year()) * 12 + i64::from(to.month()) - i64::from(from.month());
    while m > 0
        && from
            .checked_add_months(Months::new(m as u32))
            .is_none_or(|d| d > to)
    {
        m -= 1;
    }
    m
}

/// Months from `from` until the later `to`, rounded up (30 days → 1, 40 days → 2).
fn months_until(from: NaiveDate, to: NaiveDate) -> i64 {
    let m = months_between(from, to);
    if from
        .checked_add_months(Months::new(m.max(0) as u32))
        .is_some_and(|d| d >= to)
    {
        m
    } else {
        m + 1
    }
}

/// Consecutive complete calendar months, ending with the month before
/// `as_of`'s month, each with more purchases than the one before it.
fn growth_streak(orders: &[OrderFact], as_of: NaiveDate) -> i64 {
    const MAX: usize = 24;
    let month_index = |d: NaiveDate| i64::from(d.year()) * 12 + i64::from(d.month0());
    let last = month_index(as_of) - 1;
    // sums[k] = purchases in month `last - k`, k = 0..=MAX
    let mut sums = [0i64; MAX + 1];
    for o in orders {
        let k = last - month_index(o.on);
        if (0..=MAX as i64).contains(&k) {
            sums[k as usize] += o.amount_fen;
        }
    }
    sums.windows(2).take_while(|w| w[0] > w[1]).count() as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::facts::InteractionFact;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
    }

    fn order(on: &str, yuan: i64) -> OrderFact {
        OrderFact {
            on: d(on),
            amount_fen: yuan * 100,
            line: None,
        }
    }

    #[test]
    fn whole_months() {
        let cases = [
            ("2021-03-15", "2023-03-15", 24),
            ("2021-03-15", "2023-03-14", 23),
            ("2022-03-12", "2024-03-12", 24),
            ("2023-06-20", "2024-03-12", 8),
            ("2024-01-31", "2024-02-29", 1),
            ("2024-01-31", "2024-02-28", 0),
            ("2024-03-12", "2024-03-12", 0),
            ("2024-03-12", "2024-01-12", -2),
        ];
        for (a, b, m) in cases {
            assert_eq!(months_between(d(a), d(b)), m, "{a} → {b}");
        }
        assert_eq!(months_until(d("2024-03-12"), d("2024-04-11")), 1);
        assert_eq!(months_until(d("2024-03-12"), d("2024-04-12")), 1);
        assert_eq!(months_until(d("2024-03-12"), d("2024-04-13")), 2);
        assert_eq!(months_until(d("2024-03-12"), d("2024-06-12")), 3);
    }

    #[test]
    fn windows_end_on_the_date_inclusive() {
        let as_of = d("2024-03-12");
        assert_eq!(
            window_start(Window::Months(12), as_of),
            Some(d("2023-03-13"))
        );
        // 2024 is a leap year: 365 days back from 2024-03-12 starts on 2023-03-14.
        assert_eq!(
            window_start(Window::Days(365), as_of),
            Some(d("2023-03-14"))
        );
        assert_eq!(window_start(Window::Days(30), as_of), Some(d("2024-02-12")));
        assert_eq!(window_start(Window::Days(1), as_of), Some(as_of));
        let f = Facts {
            orders: vec![
                order("2023-03-12", 1),
                order("2023-03-13", 10),
                order("2024-03-12", 100),
                order("2024-03-13", 1000),
            ],
            ..Facts::default()
        };
        let sum = Metric::OrderSum {
            window: Window::Months(12),
            fallback: None,
            lines: vec![],
        };
        assert_eq!(
            sum.measure(&f, as_of).value,
            Value::Num(11_000),
            "the day before the window and the day after as_of are out"
        );
        let all = Metric::OrderCount {
            window: Window::All,
            lines: vec![],
        };
        assert_eq!(all.measure(&f, as_of).value, Value::Num(3));
    }

    #[test]
    fn fallback_only_without_any_order() {
        let sum = Metric::OrderSum {
            window: Window::Months(12),
            fallback: Some(FieldRef::DeclaredAnnualPurchase),
            lines: vec![],
        };
        let as_of = d("2024-03-12");
        let mut f = Facts {
            declared_annual_purchase_fen: Some(35_000_000),
            ..Facts::default()
        };
        assert_eq!(
            sum.measure(&f, as_of),
            Measured {
                value: Value::Num(35_000_000),
                used_fallback: true
            }
        );
        // An old order (outside the window) is still an order on record: no stand-in.
        f.orders = vec![order("2020-01-01", 5)];
        assert_eq!(
            sum.measure(&f, as_of),
            Measured {
                value: Value::Num(0),
                used_fallback: false
            }
        );
        // Orders after the date do not count as being on record.
        f.orders = vec![order("2024-05-01", 5)];
        assert!(sum.measure(&f, as_of).used_fallback);
    }

    #[test]
    fn growth_and_streak() {
        let as_of = d("2024-03-12");
        let f = Facts {
            orders: vec![
                order("2022-06-01", 100),
                order("2023-01-10", 100),
                order("2023-11-05", 100),
                order("2023-12-05", 200),
                order("2024-01-05", 300),
                order("2024-02-05", 400),
                order("2024-03-01", 1),
            ],
            ..Facts::default()
        };
        // 12m: 2023-03-13..2024-03-12 = 1001 yuan; before: 2022-03-13..2023-03-12 = 200 yuan.
        assert_eq!(
            Metric::Growth { months: 12 }.measure(&f, as_of).value,
            Value::Num((100_100 - 20_000) * 10_000 / 20_000)
        );
        // Feb > Jan > Dec > Nov > Oct (0): 4 months of growth; March is not complete.
        assert_eq!(Metric::GrowthStreak.measure(&f, as_of).value, Value::Num(4));
        let none = Facts {
            orders: vec![order("2024-03-01", 1)],
            ..Facts::default()
        };
        assert_eq!(
            Metric::Growth { months: 12 }.measure(&none, as_of).value,
            Value::Missing
        );
        assert_eq!(
            Metric::GrowthStreak.measure(&none, as_of).value,
            Value::Num(0)
        );
    }

    #[test]
    fn interactions_rates_and_dates() {
        let as_of = d("2024-03-12");
        let i = |on: &str, kind, sev| InteractionFact {
            on: d(on),
            kind,
            severity: sev,
            satisfaction: Some(4),
        };
        let f = Facts {
            interactions: vec![
                i(
                    "2023-03-12",
                    InteractionKind::Complaint,
                    Some(Severity::High),
                ),
                i(
                    "2023-03-14",
                    InteractionKind::Complaint,
                    Some(Severity::Low),
                ),
                i("2024-01-20", InteractionKind::Visit, None),
                i(
                    "2024-03-12",
                    InteractionKind::Complaint,
                    Some(Severity::High),
                ),
            ],
            orders: vec![order("2023-12-20", 5)],
            ..Facts::default()
        };
        let complaints = |min_severity| Metric::InteractionCount {
            window: Window::Days(365),
            kinds: vec![InteractionKind::Complaint],
            min_severity,
        };
        assert_eq!(complaints(None).measure(&f, as_of).value, Value::Num(2));
        assert_eq!(
            complaints(Some(Severity::High)).measure(&f, as_of).value,
            Value::Num(1)
        );
        let rate = Metric::PerMonth {
            of: Countable::Interactions,
            months: 3,
            kinds: vec![],
        };
        assert_eq!(
            rate.measure(&f, as_of).value,
            Value::Num(66),
            "2 in 3 months = 0.66 a month"
        );
        assert_eq!(
            Metric::DaysSince(DateRef::LastOrder)
                .measure(&f, as_of)
                .value,
            Value::Num(83)
        );
        assert_eq!(
            Metric::DaysSince(DateRef::LastActivity)
                .measure(&f, as_of)
                .value,
            Value::Num(0)
        );
        assert_eq!(
            Metric::MonthsSince(DateRef::FirstInteraction)
                .measure(&f, as_of)
                .value,
            Value::Num(12)
        );
        assert_eq!(
            Metric::Satisfaction {
                window: Window::All
            }
            .measure(&f, as_of)
            .value,
            Value::Num(40_000)
        );
    }
}
