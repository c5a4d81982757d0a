//! Marketing campaigns and their effectiveness. A campaign runs on one
//! channel (traditional, online, event) between two dates; the customers it
//! touched are recorded with the day they were touched. A touched customer
//! **converted** when it ordered within the attribution window after its
//! touch (the touch day counts); the revenue of the campaign is those
//! orders. The baseline is the share of customers the campaign did not
//! touch who ordered between its first day and its last day plus the
//! window, so a campaign's conversion reads against what happened anyway.
//!
//! *Invariant*: money stays integer fen; rates are 1/10000 (half up).

use crate::date::parse_date;
use crate::error::{Reason, ValidationErrors};
use crate::report::ratio;
use crate::text::{clean, parse_optional_text, parse_text};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

labelled_enum!(Channel {
    Traditional = "traditional" / "传统",
    Online = "online" / "线上",
    Event = "event" / "活动",
});

impl Channel {
    pub fn label_en(self) -> &'static str {
        match self {
            Channel::Traditional => "Traditional",
            Channel::Online => "Online",
            Channel::Event => "Events",
        }
    }
}

/// Days after a touch in which an order counts for the campaign, unless set.
pub const DEFAULT_WINDOW_DAYS: i64 = 90;

/// A campaign as sent (form or API).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CampaignInput {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    /// YYYY-MM-DD
    #[serde(default)]
    pub starts_on: Option<String>,
    #[serde(default)]
    pub ends_on: Option<String>,
    /// 元 (e.g. "12000" or "1.2万"); optional.
    #[serde(default)]
    pub cost: Option<String>,
    /// Attribution window in days, 1–365 (default 90).
    #[serde(default)]
    pub window_days: Option<i64>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A checked campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignData {
    pub name: String,
    pub channel: Channel,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub cost_fen: Option<i64>,
    pub window_days: i64,
    pub description: Option<String>,
}

impl CampaignInput {
    /// Every problem at once, each naming its field.
    pub fn validate(&self) -> Result<CampaignData, ValidationErrors> {
        let mut e = ValidationErrors::default();
        let name = e.check("name", parse_text(self.name.as_deref().unwrap_or(""), 100));
        let channel = e.check(
            "channel",
            match self.channel.as_deref().map(clean).filter(|c| !c.is_empty()) {
                None => Err(Reason::Required),
                Some(c) => Channel::parse(&c),
            },
        );
        let date = |raw: &Option<String>| parse_date(raw.as_deref().unwrap_or(""));
        let starts_on = e.check("starts_on", date(&self.starts_on));
        let ends_on = e.check(
            "ends_on",
            date(&self.ends_on).and_then(|end| match starts_on {
                Some(start) if end < start => Err(Reason::Other {
                    zh: "结束日期不能早于开始日期".into(),
                    en: "must not be before the start".into(),
                }),
                _ => Ok(end),
            }),
        );
        let cost_fen = match self.cost.as_deref().map(clean).filter(|c| !c.is_empty()) {
            None => Some(None),
            Some(c) => e.check("cost", parse_cost(&c)).map(|f| Some(f.get())),
        };
        let window_days = e.check(
            "window_days",
            match self.window_days {
                None => Ok(DEFAULT_WINDOW_DAYS),
                Some(w) if (1..=365).contains(&w) => Ok(w),
                Some(_) => Err(Reason::OutOfRange {
                    min: Some("1".into()),
                    max: Some("365".into()),
                }),
            },
        );
        let description = e.check(
            "description",
            parse_optional_text(self.description.as_deref(), 1000),
        );
        e.into_result()?;
        match (
            name,
            channel,
            starts_on,
            ends_on,
            cost_fen,
            window_days,
            description,
        ) {
            (
                Some(name),
                Some(channel),
                Some(starts_on),
                Some(ends_on),
                Some(cost_fen),
                Some(window_days),
                Some(description),
            ) => Ok(CampaignData {
                name,
                channel,
                starts_on,
                ends_on,
                cost_fen,
                window_days,
                description,
            }),
            _ => Err(ValidationErrors::single("name", Reason::Required)),
        }
    }
}

/// An amount in 元, or in 万元 when it says so ("1.2万").
fn parse_cost(raw: &str) -> Result<crate::money::Fen, Reason> {
    if raw.contains('万') {
        crate::money::Fen::parse_wan(raw)
    } else {
        crate::money::Fen::parse_yuan(raw)
    }
}

/// The last day an order counts for a campaign: its end plus the window.
pub fn attribution_end(c: &CampaignData) -> NaiveDate {
    c.ends_on + chrono::Days::new(c.window_days.max(0) as u64)
}

/// Whether an order on `order_on` counts for a customer touched on
/// `touched_on`: from the touch day to `window_days` after it.
pub fn in_window(c: &CampaignData, touched_on: NaiveDate, order_on: NaiveDate) -> bool {
    order_on >= touched_on
        && order_on <= touched_on + chrono::Days::new(c.window_days.max(0) as u64)
}

/// The orders that count for the campaign: of a touched customer, within
/// the window after its touch.
pub fn attributed<'a>(
    c: &'a CampaignData,
    touched: &'a BTreeMap<i64, NaiveDate>,
    orders: &'a [OrderSeen],
) -> impl Iterator<Item = &'a OrderSeen> {
    orders.iter().filter(move |o| {
        touched
            .get(&o.customer_id)
            .is_some_and(|day| in_window(c, *day, o.on))
    })
}

/// One order of a touched customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderSeen {
    pub customer_id: i64,
    pub on: NaiveDate,
    pub amount_fen: i64,
}

/// Customers who did not get the campaign, and how many of them ordered
/// between its start and its attribution end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Baseline {
    pub customers: i64,
    pub ordered: i64,
}

/// What a campaign did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Effect {
    /// Customers touched.
    pub reached: i64,
    /// Of them, who ordered within the window after their touch.
    pub converted: i64,
    /// Of those, whose first order ever was in the window (new buyers).
    pub first_orders: i64,
    /// `converted / reached`, 1/10000.
    pub conversion_rate: Option<i64>,
    /// Orders and revenue of the converted in their windows.
    pub orders: i64,
    pub revenue_fen: i64,
    /// `revenue / reached`, fen.
    pub revenue_per_reached_fen: Option<i64>,
    pub cost_fen: Option<i64>,
    /// `cost / converted`, fen.
    pub cost_per_conversion_fen: Option<i64>,
    /// `revenue / cost`, 1/10000 (10000 = revenue equals cost).
    pub return_on_cost: Option<i64>,
    /// The untouched customers' ordering rate over the same days, 1/10000.
    pub baseline_rate: Option<i64>,
    /// `conversion_rate / baseline_rate`, 1/10000 (10000 = no better).
    pub lift: Option<i64>,
}

fn divide(a: i64, b: i64) -> Option<i64> {
    (b > 0).then(|| (2 * a + b) / (2 * b))
}

/// The effect of one campaign on the customers `touched` (customer → day
/// touched), from their `orders` (any dates; those outside a customer's
/// window are ignored) and each one's first order day ever.
pub fn effect(
    c: &CampaignData,
    touched: &BTreeMap<i64, NaiveDate>,
    orders: &[OrderSeen],
    first_order: &HashMap<i64, NaiveDate>,
    baseline: Baseline,
) -> Effect {
    let mut converted: BTreeSet<i64> = BTreeSet::new();
    let (mut n_orders, mut revenue) = (0, 0);
    for o in attributed(c, touched, orders) {
        converted.insert(o.customer_id);
        n_orders += 1;
        revenue += o.amount_fen;
    }
    let first_orders = converted
        .iter()
        .filter(|id| {
            first_order
                .get(*id)
                .is_some_and(|f| in_window(c, touched[*id], *f))
        })
        .count() as i64;
    let reached = touched.len() as i64;
    let converted = converted.len() as i64;
    let conversion_rate = ratio(converted, reached);
    let baseline_rate = ratio(baseline.ordered, baseline.customers);
    Effect {
        reached,
        converted,
        first_orders,
        conversion_rate,
        orders: n_orders,
        revenue_fen: revenue,
        revenue_per_reached_fen: divide(revenue, reached),
        cost_fen: c.cost_fen,
        cost_per_conversion_fen: c.cost_fen.and_then(|cost| divide(cost, converted)),
        return_on_cost: c.cost_fen.and_then(|cost| ratio(revenue, cost)),
        baseline_rate,
        lift: match (conversion_rate, baseline_rate) {
            (Some(r), Some(b)) => ratio(r, b),
            _ => None,
        },
    }
}

/// A channel's campaigns added up (a customer touched by two campaigns
/// counts in both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelLine {
    pub channel: Channel,
    pub campaigns: i64,
    pub reached: i64,
    pub converted: i64,
    pub conversion_rate: Option<i64>,
    pub revenue_fen: i64,
    pub revenue_per_reached_fen: Option<i64>,
    /// Cost of the campaigns that state one.
    pub cost_fen: i64,
    /// Revenue over cost of the campaigns that state a cost, 1/10000.
    pub return_on_cost: Option<i64>,
}

/// Every channel (those without campaigns too), in `Channel::ALL` order.
pub fn by_channel(campaigns: &[(Channel, &Effect)]) -> Vec<ChannelLine> {
    Channel::ALL
        .iter()
        .map(|&channel| {
            let mine: Vec<&Effect> = campaigns
                .iter()
                .filter(|(c, _)| *c == channel)
                .map(|(_, e)| *e)
                .collect();
            let sum = |f: fn(&Effect) -> i64| mine.iter().map(|e| f(e)).sum::<i64>();
            let (reached, converted, revenue) = (
                sum(|e| e.reached),
                sum(|e| e.converted),
                sum(|e| e.revenue_fen),
            );
            let costed: Vec<&&Effect> = mine.iter().filter(|e| e.cost_fen.is_some()).collect();
            let cost: i64 = costed.iter().filter_map(|e| e.cost_fen).sum();
            let costed_revenue: i64 = costed.iter().map(|e| e.revenue_fen).sum();
            ChannelLine {
                channel,
                campaigns: mine.len() as i64,
                reached,
                converted,
                conversion_rate: ratio(converted, reached),
                revenue_fen: revenue,
                revenue_per_reached_fen: divide(revenue, reached),
                cost_fen: cost,
                return_on_cost: ratio(costed_revenue, cost),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    fn input(name: &str, channel: &str, start: &str, end: &str) -> CampaignInput {
        CampaignInput {
            name: Some(name.into()),
            channel: Some(channel.into()),
            starts_on: Some(start.into()),
            ends_on: Some(end.into()),
            ..Default::default()
        }
    }

    #[test]
    fn campaigns_are_checked_field_by_field() {
        let ok = CampaignInput {
            cost: Some("1.2万".into()),
            ..input("秋季展会", "活动", "2026-09-01", "2026-09-03")
        }
        .validate()
        .expect("valid");
        assert_eq!(ok.channel, Channel::Event);
        assert_eq!(ok.cost_fen, Some(1_200_000));
        assert_eq!(ok.window_days, DEFAULT_WINDOW_DAYS);
        assert_eq!(attribution_end(&ok), d("2026-12-02"));
        // One day is a campaign too.
        assert!(input("快闪", "online", "2026-09-01", "2026-09-01")
            .validate()
            .is_ok());
        let cases: &[(CampaignInput, &[(&str, &str)])] = &[
            (
                CampaignInput::default(),
                &[
                    ("name", "required"),
                    ("channel", "required"),
                    ("starts_on", "required"),
                    ("ends_on", "required"),
                ],
            ),
            (
                input("x", "广播", "2026-09-01", "2026-09-02"),
                &[("channel", "unknown_option")],
            ),
            (
                input("x", "online", "2026-09-02", "2026-09-01"),
                &[("ends_on", "invalid")],
            ),
            (
                input("x", "online", "2026-02-30", "2026-03-01"),
                &[("starts_on", "date_format")],
            ),
            (
                CampaignInput {
                    cost: Some("-5".into()),
                    ..input("x", "online", "2026-09-01", "2026-09-02")
                },
                &[("cost", "amount_negative")],
            ),
            (
                CampaignInput {
                    window_days: Some(0),
                    ..input("x", "online", "2026-09-01", "2026-09-02")
                },
                &[("window_days", "out_of_range")],
            ),
            (
                CampaignInput {
                    window_days: Some(366),
                    ..input("x", "online", "2026-09-01", "2026-09-02")
                },
                &[("window_days", "out_of_range")],
            ),
        ];
        for (i, want) in cases {
            let e = i.validate().expect_err("invalid");
            let got: Vec<(String, &str)> =
                e.0.iter()
                    .map(|f| (f.field.clone(), f.reason.code()))
                    .collect();
            let want: Vec<(String, &str)> = want.iter().map(|(f, c)| (f.to_string(), *c)).collect();
            assert_eq!(got, want, "{i:?}");
        }
    }

    #[test]
    fn conversion_counts_orders_within_the_window_after_the_touch() {
        let c = CampaignInput {
            cost: Some("1000".into()),
            window_days: Some(30),
            ..input("短信", "online", "2026-09-01", "2026-09-10")
        }
        .validate()
        .expect("valid");
        let touched: BTreeMap<i64, NaiveDate> = [
            (1, d("2026-09-01")),
            (2, d("2026-09-05")),
            (3, d("2026-09-10")),
            (4, d("2026-09-10")),
        ]
        .into();
        let o = |customer_id, on: &str, amount_fen| OrderSeen {
            customer_id,
            on: d(on),
            amount_fen,
        };
        let orders = [
            o(1, "2026-09-01", 10_000), // the touch day counts
            o(1, "2026-10-01", 5_000),  // the 30th day after: counts
            o(1, "2026-10-02", 7_000),  // the 31st: does not
            o(2, "2026-09-04", 9_000),  // before its touch: does not
            o(3, "2026-10-10", 20_000), // its 30th day
            o(9, "2026-09-02", 50_000), // not touched
        ];
        let first: HashMap<i64, NaiveDate> = [
            (1, d("2025-01-01")),
            (2, d("2026-09-04")),
            (3, d("2026-10-10")),
        ]
        .into();
        let e = effect(
            &c,
            &touched,
            &orders,
            &first,
            Baseline {
                customers: 200,
                ordered: 25,
            },
        );
        assert_eq!((e.reached, e.converted, e.first_orders), (4, 2, 1));
        assert_eq!((e.orders, e.revenue_fen), (3, 35_000));
        assert_eq!(e.conversion_rate, Some(5_000));
        assert_eq!(e.revenue_per_reached_fen, Some(8_750));
        assert_eq!(e.cost_per_conversion_fen, Some(50_000));
        assert_eq!(e.return_on_cost, Some(3_500));
        assert_eq!(e.baseline_rate, Some(1_250));
        assert_eq!(e.lift, Some(40_000), "4× the untouched customers' rate");
        // Nobody touched: no rates, nothing divided by zero.
        let none = effect(&c, &BTreeMap::new(), &orders, &first, Baseline::default());
        assert_eq!(
            (
                none.conversion_rate,
                none.lift,
                none.cost_per_conversion_fen
            ),
            (None, None, None)
        );

        let lines = by_channel(&[(Channel::Online, &e), (Channel::Online, &none)]);
        assert_eq!(lines.len(), 3);
        let online = &lines[1];
        assert_eq!(
            (online.campaigns, online.reached, online.converted),
            (2, 4, 2)
        );
        assert_eq!(
            (online.cost_fen, online.return_on_cost),
            (200_000, Some(1_750))
        );
        assert_eq!((lines[0].campaigns, lines[0].conversion_rate), (0, None));
    }
}
