//! What classification knows about one customer: fields, orders and
//! interactions. The store fills it; everything here is plain data.

use crate::interaction::{InteractionKind, Severity};
use chrono::NaiveDate;
use serde_json::{Map, Value as Json};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    pub customer_id: i64,
    pub code: String,
    pub industry: Option<String>,
    pub sales_region: Option<String>,
    pub province: Option<String>,
    pub city: Option<String>,
    /// `prospect`, `active`, `paused`, `lost`.
    pub status: String,
    pub source_channel: Option<String>,
    pub team: Option<String>,
    pub employees: Option<i64>,
    pub annual_revenue_fen: Option<i64>,
    pub declared_annual_purchase_fen: Option<i64>,
    pub founded_on: Option<NaiveDate>,
    pub cooperation_start_on: Option<NaiveDate>,
    pub product_types: Vec<String>,
    pub custom: Map<String, Json>,
    /// The latest stored prediction (as fitted, not as of the evaluation date).
    pub predicted: crate::predict::Predicted,
    /// Sorted by date.
    pub orders: Vec<OrderFact>,
    /// Sorted by date.
    pub interactions: Vec<InteractionFact>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderFact {
    pub on: NaiveDate,
    pub amount_fen: i64,
    /// Shared between the orders of a data set (few distinct lines).
    pub line: Option<Arc<str>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InteractionFact {
    pub on: NaiveDate,
    pub kind: InteractionKind,
    pub severity: Option<Severity>,
    pub satisfaction: Option<i64>,
}

/// The columns a customer keeps from its orders and interactions, so that
/// lists, filters and reports need not read them: the one definition of
/// what they hold. The store's daily refresh of everyone computes the same
/// in SQL (tested against each other on both backends); a write of one
/// customer computes them here from the records it has read anyway.
///
/// As of `today`, with no upper bound: an order dated in the future counts
/// in the 12-month total as soon as it is entered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rollups {
    /// Orders on or after the first day of the last 12 months.
    pub purchase_12m_fen: i64,
    /// Every order.
    pub order_count: i64,
    pub last_order_on: Option<NaiveDate>,
    pub last_interaction_on: Option<NaiveDate>,
    /// Complaints on or after the first of the last 365 days.
    pub complaints_365d: i64,
}

impl Rollups {
    /// The window of `purchase_12m_fen`.
    pub const PURCHASE_WINDOW: super::spec::Window = super::spec::Window::Months(12);
    /// The window of `complaints_365d`.
    pub const COMPLAINT_WINDOW: super::spec::Window = super::spec::Window::Days(365);

    /// The first day counted in `purchase_12m_fen` and in
    /// `complaints_365d` as of `today`.
    pub fn window_starts(today: NaiveDate) -> (NaiveDate, NaiveDate) {
        let start = |w| super::metric::window_start(w, today).unwrap_or(today);
        (start(Self::PURCHASE_WINDOW), start(Self::COMPLAINT_WINDOW))
    }

    /// A customer's rollups from all of its records.
    pub fn of(f: &Facts, today: NaiveDate) -> Rollups {
        let (purchase_from, complaints_from) = Self::window_starts(today);
        Rollups {
            purchase_12m_fen: f
                .orders
                .iter()
                .filter(|o| o.on >= purchase_from)
                .fold(0i64, |sum, o| sum.saturating_add(o.amount_fen)),
            order_count: f.orders.len() as i64,
            last_order_on: f.orders.iter().map(|o| o.on).max(),
            last_interaction_on: f.interactions.iter().map(|i| i.on).max(),
            complaints_365d: f
                .interactions
                .iter()
                .filter(|i| i.kind == InteractionKind::Complaint && i.on >= complaints_from)
                .count() as i64,
        }
    }
}

impl Facts {
    /// Sorts orders and interactions by date (metrics rely on it).
    pub fn sort(&mut self) {
        self.orders.sort_by_key(|o| o.on);
        self.interactions.sort_by_key(|i| i.on);
    }

    /// Orders dated on or before `as_of`.
    pub fn orders_until(&self, as_of: NaiveDate) -> &[OrderFact] {
        &self.orders[..self.orders.partition_point(|o| o.on <= as_of)]
    }

    /// Interactions dated on or before `as_of`.
    pub fn interactions_until(&self, as_of: NaiveDate) -> &[InteractionFact] {
        &self.interactions[..self.interactions.partition_point(|i| i.on <= as_of)]
    }
}

impl Facts {
    /// From validated domain data (a customer with its orders and interactions).
    pub fn from_data<'a>(
        customer_id: i64,
        c: &crate::customer::CustomerData,
        team: Option<String>,
        orders: impl IntoIterator<Item = &'a crate::order::OrderData>,
        interactions: impl IntoIterator<Item = &'a crate::interaction::InteractionData>,
    ) -> Facts {
        let mut f = Facts {
            customer_id,
            code: c.code.clone().unwrap_or_default(),
            industry: c.industry.clone(),
            sales_region: c.sales_region.clone(),
            province: c.province.clone(),
            city: c.city.clone(),
            status: c.status.key().to_string(),
            source_channel: c.source_channel.clone(),
            team,
            employees: c.employees,
            annual_revenue_fen: c.annual_revenue.map(|f| f.get()),
            declared_annual_purchase_fen: c.declared_annual_purchase.map(|f| f.get()),
            founded_on: c.founded_on,
            cooperation_start_on: c.cooperation_start_on,
            product_types: c.product_types.clone(),
            custom: c.custom_fields.clone(),
            predicted: Default::default(),
            orders: orders
                .into_iter()
                .map(|o| OrderFact {
                    on: o.ordered_on,
                    amount_fen: o.amount.get(),
                    line: o.product_line.as_deref().map(Arc::from),
                })
                .collect(),
            interactions: interactions
                .into_iter()
                .map(|i| InteractionFact {
                    on: i.occurred_on,
                    kind: i.kind,
                    severity: i.severity,
                    satisfaction: i.satisfaction,
                })
                .collect(),
        };
        f.sort();
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    fn order(on: &str, amount_fen: i64) -> OrderFact {
        OrderFact {
            on: d(on),
            amount_fen,
            line: None,
        }
    }

    fn contact(on: &str, kind: InteractionKind) -> InteractionFact {
        InteractionFact {
            on: d(on),
            kind,
            severity: None,
            satisfaction: None,
        }
    }

    #[test]
    fn rollups_at_the_edges_of_their_windows() {
        use InteractionKind::{Complaint, Visit};
        // As of 2024-03-12: the 12 months start on 2023-03-13, the 365
        // days (2024 is a leap year) on 2023-03-14.
        let today = d("2024-03-12");
        let cases: Vec<(&str, Vec<OrderFact>, Vec<InteractionFact>, Rollups)> = vec![
            ("nothing yet", vec![], vec![], Rollups::default()),
            (
                "the day before the 12 months counts only as an order",
                vec![order("2023-03-12", 500), order("2023-03-13", 700)],
                vec![],
                Rollups {
                    purchase_12m_fen: 700,
                    order_count: 2,
                    last_order_on: Some(d("2023-03-13")),
                    ..Rollups::default()
                },
            ),
            (
                "an order dated after today counts",
                vec![order("2024-03-12", 1), order("2024-04-01", 10)],
                vec![],
                Rollups {
                    purchase_12m_fen: 11,
                    order_count: 2,
                    last_order_on: Some(d("2024-04-01")),
                    ..Rollups::default()
                },
            ),
            (
                "complaints from the first of the 365 days, other kinds not",
                vec![],
                vec![
                    contact("2023-03-13", Complaint),
                    contact("2023-03-14", Complaint),
                    contact("2024-03-12", Complaint),
                    contact("2024-03-20", Visit),
                ],
                Rollups {
                    complaints_365d: 2,
                    last_interaction_on: Some(d("2024-03-20")),
                    ..Rollups::default()
                },
            ),
            (
                "amounts add up without overflowing",
                vec![order("2024-01-01", i64::MAX), order("2024-01-02", 5)],
                vec![],
                Rollups {
                    purchase_12m_fen: i64::MAX,
                    order_count: 2,
                    last_order_on: Some(d("2024-01-02")),
                    ..Rollups::default()
                },
            ),
        ];
        for (name, orders, interactions, want) in cases {
            let facts = Facts {
                orders,
                interactions,
                ..Facts::default()
            };
            assert_eq!(Rollups::of(&facts, today), want, "{name}");
        }
        assert_eq!(
            Rollups::window_starts(today),
            (d("2023-03-13"), d("2023-03-14"))
        );
    }
}
