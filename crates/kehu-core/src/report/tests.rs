use super::*;
use crate::strategy::parse_period;

fn who(
    id: i64,
    before: Option<&str>,
    after: Option<&str>,
    orders: &[(i64, i64)],
    previous: bool,
    year: bool,
) -> CustomerPeriod {
    CustomerPeriod {
        customer_id: id,
        class_before: before.map(String::from),
        class_after: after.map(String::from),
        is_new: false,
        revenue_fen: orders.iter().map(|o| o.1).sum(),
        orders: orders.len() as i64,
        order_days: {
            let mut days: Vec<i64> = orders.iter().map(|o| o.0).collect();
            days.dedup();
            days.len() as i64
        },
        bought_previous: previous,
        bought_year_before: year || previous,
        ..CustomerPeriod::default()
    }
}

fn classes() -> Vec<String> {
    ["战略型", "潜力型", "维持型", "优化型"]
        .map(String::from)
        .to_vec()
}

/// Four existing customers and a new one, 2026-Q3 against 2026-Q2.
fn population() -> Vec<CustomerPeriod> {
    vec![
        // Stays 战略型, buys on two days: 60万 + 40万.
        who(
            1,
            Some("战略型"),
            Some("战略型"),
            &[(1, 60_000_000), (9, 40_000_000)],
            true,
            true,
        ),
        // 潜力型 → 战略型, bought last quarter, nothing this quarter.
        who(2, Some("潜力型"), Some("战略型"), &[], true, true),
        // 潜力型 stays, one order of 1.00 元 on one day twice (same day).
        who(
            3,
            Some("潜力型"),
            Some("潜力型"),
            &[(4, 50), (4, 51)],
            true,
            true,
        ),
        // Not classified last quarter, 优化型 now; bought last year only.
        who(4, None, Some("优化型"), &[], false, true),
        CustomerPeriod {
            is_new: true,
            ..who(5, None, Some("优化型"), &[(2, 30_000)], false, false)
        },
    ]
}

#[test]
fn periods_know_their_predecessor() {
    let cases = [
        ("2026-Q3", "2026-04-01", "2026-06-30", 3),
        ("2026-Q1", "2025-10-01", "2025-12-31", 3),
        ("2026-03", "2026-02-01", "2026-02-28", 1),
        ("2026-01", "2025-12-01", "2025-12-31", 1),
        ("2026", "2025-01-01", "2025-12-31", 12),
    ];
    for (p, start, end, months) in cases {
        let period = parse_period(p).expect("period");
        let previous = period.previous();
        assert_eq!(previous.start.to_string(), start, "{p}");
        assert_eq!(previous.end.to_string(), end, "{p}");
        assert_eq!(period.months(), months, "{p}");
    }
}

#[test]
fn the_report_counts_classes_moves_revenue_churn_and_repurchase() {
    let period = parse_period("2026-Q3").expect("period");
    let r = class_report(&period, &classes(), Definitions::default(), &population());
    let line = |c: Option<&str>| {
        r.classes
            .iter()
            .find(|l| l.class.as_deref() == c)
            .unwrap_or_else(|| panic!("line {c:?}"))
            .clone()
    };
    let strategic = line(Some("战略型"));
    assert_eq!(
        (
            strategic.customers,
            strategic.customers_before,
            strategic.change
        ),
        (2, 1, 1)
    );
    assert_eq!(strategic.share, 4_000, "2 of 5");
    assert_eq!(strategic.revenue_fen, 100_000_000);
    assert_eq!(strategic.average_order_fen, Some(50_000_000));
    // Churn by the class at the start: 潜力型 had 2 buyers last quarter, one bought nothing.
    let potential = line(Some("潜力型"));
    assert_eq!(
        (
            potential.churn_base,
            potential.churned,
            potential.churn_rate
        ),
        (2, 1, Some(5_000))
    );
    // Two orders of 50 and 51 fen: 50.5 → 51 (half up).
    assert_eq!(potential.average_order_fen, Some(51));
    // Repurchase within the period: of the buyers in each class at the end.
    assert_eq!((strategic.repurchase_base, strategic.repurchased), (1, 1));
    assert_eq!(
        (potential.repurchase_base, potential.repurchased),
        (1, 0),
        "same day twice is one purchase"
    );
    let none = line(None);
    assert_eq!((none.customers, none.customers_before), (0, 1));
    let optimise = line(Some("优化型"));
    assert_eq!((optimise.customers, optimise.new_customers), (2, 1));
    assert_eq!(r.total.customers, 5);
    assert_eq!(r.total.change, 1, "one new customer");
    assert_eq!(r.total.revenue_share, 10_000);
    assert_eq!(
        r.classes.iter().map(|l| l.revenue_fen).sum::<i64>(),
        r.total.revenue_fen
    );
    // Transitions, drill-down.
    let t = |from: Option<&str>, to: Option<&str>| {
        r.transitions
            .iter()
            .find(|t| t.from.as_deref() == from && t.to.as_deref() == to)
            .map_or(0, |t| t.customers)
    };
    assert_eq!(t(Some("潜力型"), Some("战略型")), 1);
    assert_eq!(t(None, Some("优化型")), 2);
    assert_eq!(r.transitions.iter().map(|t| t.customers).sum::<i64>(), 5);
    let pop = population();
    assert_eq!(
        moved(&pop, Some("潜力型"), Some("战略型")).collect::<Vec<_>>(),
        [2]
    );

    // The other definitions.
    let year = class_report(
        &period,
        &classes(),
        Definitions {
            churn: ChurnBasis::Year,
            repurchase: RepurchaseBasis::AcrossPeriods,
        },
        &pop,
    );
    let none = year
        .classes
        .iter()
        .find(|l| l.class.is_none())
        .expect("none");
    assert_eq!(
        (none.churn_base, none.churned),
        (1, 1),
        "bought last year, not now"
    );
    let potential = year
        .classes
        .iter()
        .find(|l| l.class.as_deref() == Some("潜力型"))
        .expect("line");
    assert_eq!((potential.repurchase_base, potential.repurchased), (2, 1));
    assert_eq!(
        year.total.repurchase_rate,
        Some(6_667),
        "2 of 3 bought again"
    );
    insta::assert_json_snapshot!("class_report_2026_q3", r);
}

#[test]
fn ratios_round_half_up_and_need_a_base() {
    for (a, b, want) in [
        (1, 3, Some(3_333)),
        (2, 3, Some(6_667)),
        (1, 8, Some(1_250)),
        (0, 0, None),
        (5, 5, Some(10_000)),
    ] {
        assert_eq!(ratio(a, b), want, "{a}/{b}");
    }
}

/// 2026-Q4 read with the year before (the "bought in the year before" churn basis).
fn q4_window() -> ReportWindow {
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
    let at = |s: &str| d(s).and_hms_opt(0, 0, 0).expect("time").and_utc();
    ReportWindow {
        year_start: d("2025-10-01"),
        previous_start: d("2026-07-01"),
        previous_end: d("2026-09-30"),
        ago_start: d("2025-10-01"),
        ago_end: d("2025-12-31"),
        start: d("2026-10-01"),
        end: d("2026-12-31"),
        starts_at: at("2026-10-01"),
        ends_at: at("2027-01-01"),
    }
}

fn orders_of(list: &[(&str, i64, Option<&str>)]) -> Vec<crate::classify::OrderFact> {
    list.iter()
        .map(|&(on, amount_fen, line)| crate::classify::OrderFact {
            on: NaiveDate::parse_from_str(on, "%Y-%m-%d").expect("date"),
            amount_fen,
            line: line.map(std::sync::Arc::from),
        })
        .collect()
}

/// (revenue, orders, days, lines, previous, year before, revenue ago, orders ago, lines ago)
type Figures = (i64, i64, i64, i64, bool, bool, i64, i64, i64);

fn figures(c: &CustomerPeriod) -> Figures {
    (
        c.revenue_fen,
        c.orders,
        c.order_days,
        c.lines,
        c.bought_previous,
        c.bought_year_before,
        c.revenue_ago_fen,
        c.orders_ago,
        c.lines_ago,
    )
}

#[test]
fn orders_count_by_their_day_at_every_window_edge() {
    let year = q4_window();
    let previous_only = ReportWindow {
        year_start: year.previous_start,
        ..year
    };
    let cases: &[(&str, &[(&str, i64, Option<&str>)], ReportWindow, Figures)] = &[
        ("no orders", &[], year, (0, 0, 0, 0, false, false, 0, 0, 0)),
        (
            "every edge, in no particular order",
            &[
                ("2026-12-31", 700, Some("C")),
                ("2025-09-30", 100, Some("A")),
                ("2026-10-01", 1000, Some("A")),
                ("2025-10-01", 200, Some("A")),
                ("2027-01-01", 9999, Some("D")),
                ("2025-12-31", 300, Some("B")),
                ("2026-10-01", 500, None),
                ("2026-07-01", 10, Some("A")),
            ],
            year,
            (2200, 3, 2, 2, true, true, 500, 2, 2),
        ),
        (
            "the day before the previous period: the year before only",
            &[("2026-06-30", 10, None)],
            year,
            (0, 0, 0, 0, false, true, 0, 0, 0),
        ),
        (
            "the previous period's last day",
            &[("2026-09-30", 10, None)],
            year,
            (0, 0, 0, 0, true, true, 0, 0, 0),
        ),
        (
            "read from the previous period: the year before and a year ago are not read",
            &[("2026-06-30", 10, None), ("2025-11-11", 20, Some("A"))],
            previous_only,
            (0, 0, 0, 0, false, false, 0, 0, 0),
        ),
        (
            "the same line twice and negative amounts (a credit) add up",
            &[
                ("2026-11-01", 500, Some("A")),
                ("2026-11-02", -200, Some("A")),
            ],
            year,
            (300, 2, 2, 1, false, false, 0, 0, 0),
        ),
    ];
    for (what, list, window, want) in cases {
        let mut c = CustomerPeriod::default();
        c.count_orders(&orders_of(list), window);
        assert_eq!(figures(&c), *want, "{what}");
    }
}

#[test]
fn merges_since_the_end_are_rewound() {
    let at = |day: u32| {
        chrono::NaiveDate::from_ymd_opt(2026, 11, day)
            .expect("date")
            .and_hms_opt(9, 0, 0)
            .expect("time")
            .and_utc()
    };
    let merge = |survivor_id, absorbed_id, orders: &[i64], day, made_since| MergeSince {
        survivor_id,
        absorbed_id,
        absorbed_created_at: at(1),
        orders: orders.to_vec(),
        merged_at: at(day),
        made_since,
    };
    // 1 into 2 on the 3rd, then 2 (holding 1's orders) into 3 on the 5th;
    // given out of order. 4 into 5 before the end, undone since.
    let merges = [
        merge(3, 2, &[20, 21, 10, 11], 5, true),
        merge(2, 1, &[10, 11], 3, true),
        merge(5, 4, &[40], 2, false),
    ];
    let r = rewind_merges(&merges);
    let owners: BTreeMap<i64, i64> = r.order_owner.iter().map(|(&o, &c)| (o, c)).collect();
    assert_eq!(
        owners,
        BTreeMap::from([(10, 1), (11, 1), (20, 2), (21, 2), (40, 5)]),
        "each order back with whoever held it at the end"
    );
    let mut restored = r.restored.clone();
    restored.sort();
    assert_eq!(
        restored,
        vec![(1, at(1), 3), (2, at(1), 3)],
        "both are part of 3 today"
    );
    assert_eq!(r.absent, vec![4]);
    assert_eq!(rewind_merges(&[]), Rewound::default());
}

#[test]
fn order_days_count_each_day_of_the_span_once() {
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
    let orders: Vec<OrderFact> = [
        "2026-06-30",
        "2026-07-01",
        "2026-07-01",
        "2026-09-30",
        "2026-10-01",
    ]
    .iter()
    .map(|on| OrderFact {
        on: d(on),
        amount_fen: 100,
        line: None,
    })
    .collect();
    let cases = [
        (
            "the quarter: its first day (twice) and its last",
            "2026-07-01",
            "2026-09-30",
            2,
        ),
        ("one day", "2026-07-01", "2026-07-01", 1),
        ("both edges are in", "2026-06-30", "2026-10-01", 4),
        ("a span without orders", "2026-08-01", "2026-08-31", 0),
    ];
    for (what, since, until, want) in cases {
        assert_eq!(
            order_days_between(&orders, d(since), d(until)),
            want,
            "{what}"
        );
    }
}
