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
