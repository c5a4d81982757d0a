//! The presets on hand-made customers at and around every threshold, the
//! design.md example, explanations, and refused schemes.

use super::presets::{compile_presets, preset_custom_fields, preset_specs, PRESET_KEYS};
use super::*;
use crate::interaction::{InteractionKind, Severity};
use crate::Lang;
use chrono::{Duration, NaiveDate};
use serde_json::json;
use std::collections::BTreeMap;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

const AS_OF: &str = "2024-03-12";

fn presets() -> BTreeMap<String, Scheme> {
    let compiled =
        compile_presets(&preset_custom_fields()).unwrap_or_else(|(key, e)| panic!("{key}: {e}"));
    compiled.into_iter().map(|s| (s.key.clone(), s)).collect()
}

/// A customer cooperating since 2020 with nothing else on record.
fn customer() -> Facts {
    Facts {
        code: "T1".into(),
        status: "active".into(),
        cooperation_start_on: Some(d("2020-01-01")),
        ..Facts::default()
    }
}

fn order(on: NaiveDate, fen: i64) -> OrderFact {
    OrderFact {
        on,
        amount_fen: fen,
        line: None,
    }
}

fn interaction(on: NaiveDate, kind: InteractionKind) -> InteractionFact {
    let severity = (kind == InteractionKind::Complaint).then_some(Severity::Medium);
    InteractionFact {
        on,
        kind,
        severity,
        satisfaction: None,
    }
}

/// One order of `fen` on the evaluation date.
fn buys(mut f: Facts, fen: i64) -> Facts {
    f.orders.push(order(d(AS_OF), fen));
    f.sort();
    f
}

fn class_in(schemes: &BTreeMap<String, Scheme>, key: &str, f: &Facts, as_of: NaiveDate) -> String {
    let s = &schemes[key];
    let pop = Population::build(s, [f], as_of);
    s.classes[s.evaluate(f, as_of, &pop, ClassContext::default()).class]
        .key
        .clone()
}

/// (case, customer, expected class) for one scheme as of 2024-03-12.
fn check(key: &str, cases: Vec<(&str, Facts, &str)>) {
    let schemes = presets();
    for (case, f, want) in cases {
        assert_eq!(class_in(&schemes, key, &f, d(AS_OF)), want, "{key}: {case}");
    }
}

#[test]
fn all_presets_compile_in_contract_order() {
    let specs = preset_specs();
    let keys: Vec<&str> = specs.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, PRESET_KEYS);
    let schemes: Vec<Scheme> = presets().into_values().collect();
    assert_eq!(evaluation_order(&schemes).map(|o| o.len()), Ok(10));
    // The JSON round-trips: what the API returns is what it accepts.
    for s in specs {
        let again: SchemeSpec =
            serde_json::from_value(serde_json::to_value(s).expect("json")).expect("spec");
        assert_eq!(&again, s);
    }
}

#[test]
fn value_tier_thresholds() {
    let stable = customer(); // since 2020, no complaints
    let months_ago = |m: u32| {
        d(AS_OF)
            .checked_sub_months(chrono::Months::new(m))
            .expect("date")
    };
    let since = |start: NaiveDate, fen| {
        buys(
            Facts {
                cooperation_start_on: Some(start),
                ..customer()
            },
            fen,
        )
    };
    let complaints = |f: Facts, n: usize, days_ago: i64| {
        let mut f = f;
        for k in 0..n {
            f.interactions.push(interaction(
                d(AS_OF) - Duration::days(days_ago + k as i64),
                InteractionKind::Complaint,
            ));
        }
        f.sort();
        f
    };
    check(
        "value_tier",
        vec![
            ("100万, stable", buys(stable.clone(), 100_000_000), "战略型"),
            (
                "99.99万, stable",
                buys(stable.clone(), 99_990_000),
                "维持型",
            ),
            (
                "exactly 2 years",
                since(months_ago(24), 100_000_000),
                "战略型",
            ),
            (
                "one day short of 2 years",
                since(months_ago(24) + Duration::days(1), 100_000_000),
                "维持型",
            ),
            (
                "100万 with one complaint",
                complaints(buys(stable.clone(), 100_000_000), 1, 10),
                "维持型",
            ),
            (
                "complaint 365 days ago still counts",
                complaints(buys(stable.clone(), 100_000_000), 1, 364),
                "维持型",
            ),
            (
                "complaint 366 days ago no longer counts",
                complaints(buys(stable.clone(), 100_000_000), 1, 365),
                "战略型",
            ),
            (
                "35万, 18 months, no complaint",
                since(months_ago(18), 35_000_000),
                "维持型",
            ),
            (
                "35万, 18 months, one complaint",
                complaints(since(months_ago(18), 35_000_000), 1, 0),
                "维持型",
            ),
            (
                "35万, 18 months, two complaints",
                complaints(since(months_ago(18), 35_000_000), 2, 0),
                "优化型",
            ),
            (
                "35万, exactly 1 year",
                since(months_ago(12), 35_000_000),
                "维持型",
            ),
            (
                "35万, 11 months",
                since(months_ago(11), 35_000_000),
                "优化型",
            ),
            (
                "49.99万 vs 50万 (中, no growth)",
                since(months_ago(11), 50_000_000),
                "维持型",
            ),
            (
                "49.99万, under a year",
                since(months_ago(11), 49_990_000),
                "优化型",
            ),
        ],
    );
}

#[test]
fn value_tier_growth_and_fallback() {
    let mut grew = customer();
    grew.orders = vec![
        order(d("2022-06-01"), 50_000_000),
        order(d("2023-06-01"), 60_000_000),
    ];
    let mut grew_less = customer();
    grew_less.orders = vec![
        order(d("2022-06-01"), 50_000_000),
        order(d("2023-06-01"), 59_999_999),
    ];
    let mut streak = customer();
    // Dec < Jan < Feb: … then 3 months of growth before March.
    streak.orders = vec![
        order(d("2023-11-10"), 10_000_000),
        order(d("2023-12-10"), 12_000_000),
        order(d("2024-01-10"), 14_000_000),
        order(d("2024-02-10"), 16_000_000),
    ];
    // Nov 13万 > Dec 12万 < Jan 14万 < Feb 16万: two months of growth.
    let mut short_streak = streak.clone();
    short_streak.orders[0].amount_fen = 13_000_000;
    let declared = Facts {
        declared_annual_purchase_fen: Some(120_000_000),
        ..customer()
    };
    check(
        "value_tier",
        vec![
            ("中 and +20 %", grew, "潜力型"),
            ("中 and +19.99… %", grew_less, "维持型"),
            ("中 and 3 months of growth", streak, "战略型"),
            ("中 and 2 months of growth", short_streak, "维持型"),
            ("no orders: declared 120万 stands in", declared, "战略型"),
        ],
    );
}

#[test]
fn design_example_as_of_2024_03_12() {
    use crate::demo::{DemoConfig, DemoGenerator};
    let schemes = presets();
    let mut generator = DemoGenerator::new(DemoConfig::new(42, d("2026-11-23"), 2));
    let examples: Vec<Facts> = generator.next_chunk(2).iter().map(|c| c.facts(0)).collect();
    let as_of = d(AS_OF);
    assert_eq!(examples[0].code, "C2024001");
    assert_eq!(
        class_in(&schemes, "value_tier", &examples[0], as_of),
        "战略型"
    );
    assert_eq!(examples[1].code, "C2024002");
    assert_eq!(
        class_in(&schemes, "value_tier", &examples[1], as_of),
        "优化型"
    );
    // Later orders of the demo do not change the answer for that date.
    assert!(examples[0].orders.iter().any(|o| o.on > as_of));
    let s = &schemes["value_tier"];
    for (f, name) in examples.iter().zip(["c2024001", "c2024002"]) {
        let e = s.explain(
            f,
            as_of,
            &Population::default(),
            ClassContext::default(),
            Lang::Zh,
        );
        insta::assert_snapshot!(
            format!("value_tier_{name}"),
            serde_json::to_string_pretty(&e).expect("json")
        );
    }
    let e = s.explain(
        &examples[1],
        as_of,
        &Population::default(),
        ClassContext::default(),
        Lang::En,
    );
    insta::assert_snapshot!(
        "value_tier_c2024002_en",
        serde_json::to_string_pretty(&e).expect("json")
    );
}

#[test]
fn explanation_names_the_nearest_change() {
    let schemes = presets();
    let s = &schemes["value_tier"];
    let f = buys(customer(), 92_000_000);
    let e = s.explain(
        &f,
        d(AS_OF),
        &Population::default(),
        ClassContext::default(),
        Lang::Zh,
    );
    assert_eq!(e.class, "维持型");
    assert_eq!(e.dimensions[0].level, "中");
    let first = &e.nearest[0];
    assert_eq!(
        (first.indicator.as_str(), first.class.as_str()),
        ("annual_purchase", "战略型")
    );
    assert_eq!(first.text, "再采购 8.00万 → 战略型");
    let en = s.explain(
        &f,
        d(AS_OF),
        &Population::default(),
        ClassContext::default(),
        Lang::En,
    );
    assert_eq!(en.nearest[0].text, "8.00万 more purchases → 战略型");
    assert_eq!(en.indicators[0].name, "Annual purchase");
}

#[test]
fn rfm_days_frequency_money() {
    let last_order = |days_ago: i64, fen: i64| {
        let mut f = customer();
        f.orders = vec![order(d(AS_OF) - Duration::days(days_ago), fen)];
        f
    };
    let monthly = |n: usize, fen_each: i64| {
        let mut f = customer();
        f.orders = (0..n)
            .map(|k| order(d(AS_OF) - Duration::days((k % 300) as i64), fen_each))
            .collect();
        f.sort();
        f
    };
    let schemes = presets();
    let level = |f: &Facts, dim: usize| {
        let s = &schemes["rfm"];
        let dec = s.evaluate(f, d(AS_OF), &Population::default(), ClassContext::default());
        s.dimensions[dim].levels[dec.levels[dim]].key.clone()
    };
    for (days, want) in [
        (0, "30天内"),
        (30, "30天内"),
        (31, "60天内"),
        (60, "60天内"),
        (61, "90天内"),
        (90, "90天内"),
        (91, "90天以上"),
    ] {
        assert_eq!(level(&last_order(days, 1), 0), want, "{days} days ago");
    }
    for (n, want) in [
        (60, "高频"),
        (59, "中频"),
        (12, "中频"),
        (11, "低频"),
        (0, "低频"),
    ] {
        assert_eq!(level(&monthly(n, 100), 1), want, "{n} orders in 12 months");
    }
    for (fen, want) in [
        (10_000_000, "高"),
        (9_999_999, "中"),
        (5_000_000, "中"),
        (4_999_999, "潜力"),
    ] {
        assert_eq!(level(&last_order(400, fen), 2), want, "{fen} fen");
    }
    check(
        "rfm",
        vec![
            ("all high", monthly(60, 200_000), "高价值客户"),
            (
                "mid, recent",
                last_order(10, 6_000_000).tap(|f| {
                    f.orders
                        .extend((0..11).map(|k| order(d("2023-06-01") + Duration::days(k), 100)))
                }),
                "潜力客户",
            ),
            (
                "mid, 61 days ago",
                monthly(12, 600_000)
                    .tap(|f| f.orders.iter_mut().for_each(|o| o.on -= Duration::days(70))),
                "流失风险客户",
            ),
            ("little", last_order(10, 100), "一般客户"),
        ],
    );
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl Tap for Facts {
    fn tap(mut self, f: impl FnOnce(&mut Facts)) -> Facts {
        f(&mut self);
        self.sort();
        self
    }
}

#[test]
fn abcd_intent_lifecycle_behavior() {
    let followed = |n: usize| {
        customer().tap(|f| {
            f.interactions = (0..n)
                .map(|k| {
                    interaction(
                        d("2024-01-01") + Duration::days(k as i64),
                        InteractionKind::Call,
                    )
                })
                .collect()
        })
    };
    let closes = |on: &str| {
        followed(2).tap(|f| {
            f.custom.insert("expected_close_on".into(), json!(on));
        })
    };
    check(
        "abcd",
        vec![
            ("closes in 30 days", closes("2024-04-11"), "A"),
            ("closes in exactly 1 month", closes("2024-04-12"), "A"),
            ("1 month and a day", closes("2024-04-13"), "B"),
            ("3 months", closes("2024-06-12"), "B"),
            ("6 months", closes("2024-09-12"), "C"),
            ("6 months and a day", closes("2024-09-13"), "D"),
            ("no date", followed(2), "D"),
            (
                "no follow-up after first contact",
                closes("2024-03-20").tap(|f| f.interactions.truncate(1)),
                "D",
            ),
        ],
    );
    let stage = |s: &str| {
        customer().tap(|f| {
            f.custom.insert("intent_stage".into(), json!(s));
        })
    };
    check(
        "intent",
        vec![
            ("nothing", customer(), "潜在"),
            ("目标", stage("目标"), "目标"),
            ("大希望", stage("大希望"), "大希望"),
            ("劣质", stage("劣质"), "劣质"),
            ("an order makes a deal", buys(stage("意向"), 100), "成交"),
        ],
    );
    let active = |first: &str, last: &str| {
        customer().tap(|f| f.orders = vec![order(d(first), 100), order(d(last), 100)])
    };
    check(
        "lifecycle",
        vec![
            ("no deal", customer(), "潜在"),
            (
                "first deal 2 months ago",
                active("2024-01-13", "2024-03-01"),
                "新成交",
            ),
            (
                "first deal exactly 3 months ago",
                active("2023-12-12", "2024-03-01"),
                "老客户",
            ),
            ("3 months idle", active("2020-01-01", "2023-12-12"), "沉睡"),
            (
                "a day short of 3 months idle",
                active("2020-01-01", "2023-12-13"),
                "老客户",
            ),
            (
                "6 months idle",
                active("2020-01-01", "2023-09-12"),
                "流失风险",
            ),
            (
                "an interaction is contact too",
                active("2020-01-01", "2023-09-12").tap(|f| {
                    f.interactions
                        .push(interaction(d("2024-02-01"), InteractionKind::Visit))
                }),
                "老客户",
            ),
        ],
    );
    let busy = |n: usize| {
        customer().tap(|f| {
            f.interactions = (0..n)
                .map(|k| {
                    interaction(
                        d("2023-12-13") + Duration::days(k as i64),
                        InteractionKind::Visit,
                    )
                })
                .collect()
        })
    };
    check(
        "behavior",
        vec![
            ("9 in 3 months", busy(9), "高频互动"),
            ("8 in 3 months", busy(8), "一般互动"),
            (
                "a complaint this year",
                busy(9).tap(|f| {
                    f.interactions
                        .push(interaction(d("2023-06-01"), InteractionKind::Complaint))
                }),
                "投诉客户",
            ),
            (
                "a complaint two years ago",
                busy(1).tap(|f| {
                    f.interactions
                        .push(interaction(d("2022-01-01"), InteractionKind::Complaint))
                }),
                "一般互动",
            ),
        ],
    );
}

#[test]
fn size_and_need_type() {
    let size = |staff: Option<i64>, yuan: Option<i64>| Facts {
        employees: staff,
        annual_revenue_fen: yuan.map(|y| y * 100),
        ..customer()
    };
    check(
        "industry_size",
        vec![
            ("1001 staff", size(Some(1001), None), "大型"),
            ("1000 staff", size(Some(1000), None), "中型"),
            (
                "revenue just over 1亿",
                size(Some(10), Some(100_000_001)),
                "大型",
            ),
            ("revenue 1亿", size(Some(10), Some(100_000_000)), "中型"),
            ("100 staff", size(Some(100), None), "中型"),
            ("99 staff, 1000万", size(Some(99), Some(10_000_000)), "中型"),
            ("99 staff, 999万", size(Some(99), Some(9_990_000)), "小型"),
            ("nothing known", size(None, None), "未知"),
        ],
    );
    let line = |l: &str| OrderFact {
        on: d("2024-01-05"),
        amount_fen: 100,
        line: Some(l.into()),
    };
    check(
        "need_type",
        vec![
            (
                "entered",
                customer().tap(|f| {
                    f.custom.insert("need_type".into(), json!("服务咨询型"));
                }),
                "服务咨询型",
            ),
            (
                "custom development order",
                customer().tap(|f| f.orders = vec![line("定制开发")]),
                "合作开发型",
            ),
            (
                "two service orders",
                customer().tap(|f| f.orders = vec![line("技术培训"), line("设备维保服务")]),
                "服务咨询型",
            ),
            (
                "one service order",
                customer().tap(|f| f.orders = vec![line("技术培训"), line("精密轴承")]),
                "产品采购型",
            ),
            (
                "three service tickets",
                customer().tap(|f| {
                    f.interactions = (0..3)
                        .map(|k| {
                            interaction(
                                d("2024-01-01") + Duration::days(k),
                                InteractionKind::Service,
                            )
                        })
                        .collect()
                }),
                "服务咨询型",
            ),
        ],
    );
}

#[test]
fn percentile_top_ten_percent_with_ties() {
    let schemes = presets();
    let s = &schemes["value_percentile"];
    let as_of = d(AS_OF);
    // 20 customers spending 1..=20 万; with three tied at the top.
    let spend = |wan: i64| buys(customer(), wan * 1_000_000);
    let classes = |all: &[Facts]| -> Vec<String> {
        let pop = Population::build(s, all, as_of);
        all.iter()
            .map(|f| {
                s.classes[s.evaluate(f, as_of, &pop, ClassContext::default()).class]
                    .key
                    .clone()
            })
            .collect()
    };
    let distinct: Vec<Facts> = (1..=20).map(spend).collect();
    let got = classes(&distinct);
    assert_eq!(
        got.iter().filter(|c| *c == "高价值").count(),
        2,
        "top 10 % of 20 is 2: {got:?}"
    );
    assert_eq!(
        got[17], "中价值",
        "the third from the top has 2 of 20 above it: 10 %, not under 10 %"
    );
    let mut tied = distinct.clone();
    tied[17] = spend(20);
    tied[18] = spend(20);
    let got = classes(&tied);
    assert_eq!(
        got.iter().filter(|c| *c == "高价值").count(),
        3,
        "ties are never split: {got:?}"
    );
    assert_eq!(got[16], "中价值");
    // Nobody buying: no one is at the top.
    let idle: Vec<Facts> = (0..5).map(|_| customer()).collect();
    assert!(classes(&idle).iter().all(|c| c == "低价值"));
}

#[test]
fn key_account_score_bands() {
    let schemes = presets();
    let s = &schemes["key_account"];
    let as_of = d(AS_OF);
    // 10 customers; the first buys most, twice a month, for 3+ years.
    let mut all: Vec<Facts> = (0..10)
        .map(|k| buys(customer(), 1_000_000 * (k + 1)))
        .collect();
    all[9].orders = (0..24)
        .map(|k| order(as_of - Duration::days(k * 15), 10_000_000))
        .collect();
    all[9].sort();
    let pop = Population::build(s, &all, as_of);
    let top = s.evaluate(&all[9], as_of, &pop, ClassContext::default());
    assert_eq!(top.score, 100 * 50 + 100 * 30 + 100 * 20);
    assert_eq!(s.classes[top.class].key, "重点客户");
    let e = s.explain(&all[9], as_of, &pop, ClassContext::default(), Lang::Zh);
    assert_eq!(e.score.as_deref(), Some("100.00"));
    assert_eq!(e.rule, "得分 ≥ 80");
    // Second: top 10–30 % (70), one order a year (低频 40), 3+ years (100) = 35 + 12 + 20 = 67.
    let second = s.evaluate(&all[8], as_of, &pop, ClassContext::default());
    assert_eq!(second.score, 70 * 50 + 40 * 30 + 100 * 20);
    assert_eq!(s.classes[second.class].key, "主要客户");
    let last = s.evaluate(&all[0], as_of, &pop, ClassContext::default());
    assert_eq!(s.classes[last.class].key, "普通客户");
}

#[test]
fn same_data_same_date_same_answer() {
    let schemes = presets();
    let mut f = buys(customer(), 100_000_000);
    assert_eq!(class_in(&schemes, "value_tier", &f, d(AS_OF)), "战略型");
    // Data dated after the evaluation date changes nothing for that date.
    f.interactions
        .push(interaction(d("2024-03-13"), InteractionKind::Complaint));
    f.sort();
    assert_eq!(class_in(&schemes, "value_tier", &f, d(AS_OF)), "战略型");
    assert_eq!(
        class_in(&schemes, "value_tier", &f, d("2024-03-13")),
        "维持型"
    );
    let mut g = buys(customer(), 99_990_000);
    g.orders.push(order(d("2024-03-20"), 10_000));
    g.sort();
    assert_eq!(class_in(&schemes, "value_tier", &g, d(AS_OF)), "维持型");
    assert_eq!(
        class_in(&schemes, "value_tier", &g, d("2024-03-20")),
        "战略型"
    );
}

fn refused(
    spec: serde_json::Value,
    custom: &[crate::custom_field::CustomFieldDef],
) -> Vec<(String, String)> {
    let spec: SchemeSpec = serde_json::from_value(spec).expect("spec shape");
    match Scheme::compile(
        &spec,
        Catalog {
            custom_fields: custom,
            schemes: Some(&BTreeMap::from([(
                "rfm".to_string(),
                vec!["高价值客户".to_string()],
            )])),
        },
    ) {
        Ok(_) => Vec::new(),
        Err(e) => {
            e.0.into_iter()
                .map(|fe| (fe.field, fe.reason.code().to_string()))
                .collect()
        }
    }
}

fn base_spec() -> serde_json::Value {
    json!({
        "key": "test", "name": "测试",
        "indicators": [
            {"key": "buy", "name": "年采购额", "metric": "order_sum", "window": "12m"},
            {"key": "complaints", "name": "投诉", "metric": "interaction_count", "window": "365d", "kinds": ["complaint"]}
        ],
        "dimensions": [
            {"key": "value", "name": "价值", "weight": 70, "levels": [
                {"key": "高", "score": 100, "when": "buy >= 100万"},
                {"key": "中", "score": 50, "when": "buy >= 50万"},
                {"key": "低", "score": 0}
            ]},
            {"key": "risk", "name": "风险", "weight": 30, "levels": [
                {"key": "无", "score": 100, "when": "complaints = 0"},
                {"key": "有", "score": 0}
            ]}
        ],
        "classes": [{"key": "甲"}, {"key": "乙"}],
        "assign": {"by": "rules", "default": "乙", "rules": [{"when": "value = 高 AND risk = 无", "class": "甲"}]}
    })
}

#[test]
fn bad_schemes_are_refused_naming_the_place() {
    let mut custom = preset_custom_fields();
    custom.push(crate::custom_field::CustomFieldDef {
        key: "home_address".into(),
        label: "家庭住址".into(),
        group: crate::custom_field::FieldGroup::Basic,
        kind: crate::custom_field::FieldKind::Text,
        required: false,
        options: vec![],
        rule: crate::custom_field::FieldRule {
            mask: Some(crate::privacy::MaskPattern { first: 2, last: 0 }),
            ..Default::default()
        },
        position: 99,
    });
    assert_eq!(
        refused(base_spec(), &custom),
        Vec::<(String, String)>::new()
    );
    type Edit = fn(&mut serde_json::Value);
    let cases: Vec<(&str, Edit, &str, &str)> = vec![
        (
            "weights 70 + 40",
            |s| s["dimensions"][1]["weight"] = json!(40),
            "dimensions",
            "weights_sum",
        ),
        (
            "thresholds out of order",
            |s| {
                s["dimensions"][0]["levels"][0]["when"] = json!("buy >= 50万");
                s["dimensions"][0]["levels"][1]["when"] = json!("buy >= 100万");
            },
            "dimensions[0].levels[1].when",
            "threshold_order",
        ),
        (
            "equal thresholds",
            |s| s["dimensions"][0]["levels"][1]["when"] = json!("buy >= 100万"),
            "dimensions[0].levels[1].when",
            "threshold_order",
        ),
        (
            "missing field",
            |s| {
                s["indicators"][0] =
                    json!({"key": "buy", "name": "x", "metric": "field", "field": "custom.nope"})
            },
            "indicators[0].field",
            "unknown_field",
        ),
        (
            "personal field (stored encrypted)",
            |s| s["indicators"][0] = json!({"key": "buy", "name": "x", "metric": "field", "field": "custom.home_address"}),
            "indicators[0].field",
            "personal_field",
        ),
        (
            "missing level",
            |s| s["assign"]["rules"][0]["when"] = json!("value = 极高"),
            "assign.rules[0].when",
            "unknown_level",
        ),
        (
            "unknown name",
            |s| s["assign"]["rules"][0]["when"] = json!("valeu = 高"),
            "assign.rules[0].when",
            "unknown_name",
        ),
        (
            "unknown class",
            |s| s["assign"]["rules"][0]["class"] = json!("丙"),
            "assign.rules[0].class",
            "unknown_class",
        ),
        (
            "unknown default",
            |s| s["assign"]["default"] = json!("丙"),
            "assign.default",
            "unknown_class",
        ),
        (
            "unreachable class",
            |s| s["classes"] = json!([{"key": "甲"}, {"key": "乙"}, {"key": "丙"}]),
            "classes[2]",
            "unreachable",
        ),
        (
            "syntax",
            |s| s["assign"]["rules"][0]["when"] = json!("value = 高 AND"),
            "assign.rules[0].when",
            "expr_syntax",
        ),
        (
            "money as count",
            |s| s["dimensions"][1]["levels"][0]["when"] = json!("complaints = 1万"),
            "dimensions[1].levels[0].when",
            "bad_value",
        ),
        (
            "text ordered",
            |s| {
                s["indicators"][1] = json!({"key": "complaints", "name": "行业", "metric": "field", "field": "industry"});
                s["dimensions"][1]["levels"][0]["when"] = json!("complaints > 制造业");
            },
            "dimensions[1].levels[0].when",
            "bad_operator",
        ),
        (
            "level reads a dimension",
            |s| s["dimensions"][1]["levels"][0]["when"] = json!("value = 高"),
            "dimensions[1].levels[0].when",
            "level_uses_dimension",
        ),
        (
            "last level has a condition",
            |s| s["dimensions"][1]["levels"][1]["when"] = json!("complaints >= 1"),
            "dimensions[1].levels[1].when",
            "missing_default",
        ),
        (
            "percentile of itself",
            |s| s["indicators"][1] = json!({"key": "complaints", "name": "x", "metric": "percentile", "of": "complaints"}),
            "indicators[1].of",
            "cycle",
        ),
        (
            "own class",
            |s| s["assign"]["rules"][0]["when"] = json!("scheme.test = 甲"),
            "assign.rules[0].when",
            "cycle",
        ),
        (
            "unknown scheme",
            |s| s["assign"]["rules"][0]["when"] = json!("scheme.nope = 甲"),
            "assign.rules[0].when",
            "unknown_name",
        ),
        (
            "unknown class of another scheme",
            |s| s["assign"]["rules"][0]["when"] = json!("scheme.rfm = 甲"),
            "assign.rules[0].when",
            "unknown_class",
        ),
        (
            "duplicate indicator",
            |s| s["indicators"][1]["key"] = json!("buy"),
            "indicators[1].key",
            "duplicate",
        ),
        (
            "bad key",
            |s| s["key"] = json!("Test Scheme"),
            "key",
            "invalid_key",
        ),
        (
            "score bands not descending",
            |s| s["assign"] = json!({"by": "score", "bands": [{"min": 50, "class": "甲"}, {"min": 60, "class": "乙"}, {"min": 0, "class": "乙"}]}),
            "assign.bands[1].min",
            "threshold_order",
        ),
        (
            "score bands without 0",
            |s| s["assign"] = json!({"by": "score", "bands": [{"min": 80, "class": "甲"}, {"min": 10, "class": "乙"}]}),
            "assign.bands",
            "missing_default",
        ),
        (
            "growth without months",
            |s| s["indicators"][0]["metric"] = json!("growth"),
            "",
            "",
        ),
    ];
    for (case, edit, place, code) in cases {
        let mut spec = base_spec();
        edit(&mut spec);
        if place.is_empty() {
            // growth needs `months`: refused by the shape already.
            assert!(
                serde_json::from_value::<SchemeSpec>(spec).is_err(),
                "{case}"
            );
            continue;
        }
        let errors = refused(spec, &custom);
        assert!(
            errors.iter().any(|(p, c)| p == place && c == code),
            "{case}: {errors:?}"
        );
    }
    // A refused indicator is reported once, not again by every condition using it.
    let mut spec = base_spec();
    spec["indicators"][0] =
        json!({"key": "buy", "name": "x", "metric": "field", "field": "custom.nope"});
    assert_eq!(
        refused(spec, &custom),
        vec![(
            "indicators[0].field".to_string(),
            "unknown_field".to_string()
        )]
    );
    // Messages say where: the position in the condition, in both languages.
    let mut spec = base_spec();
    spec["assign"]["rules"][0]["when"] = json!("value = 高 AND risk = 没有");
    let spec: SchemeSpec = serde_json::from_value(spec).expect("spec");
    let err = Scheme::compile(
        &spec,
        Catalog {
            custom_fields: &custom,
            schemes: None,
        },
    )
    .expect_err("refused");
    let reason = &err.0[0].reason;
    assert!(
        reason.message(Lang::Zh).contains("第 22 个字符"),
        "{}",
        reason.message(Lang::Zh)
    );
    assert!(
        reason.message(Lang::En).contains("character 22"),
        "{}",
        reason.message(Lang::En)
    );
}

#[test]
fn schemes_reading_each_other_are_ordered_and_cycles_refused() {
    let custom = preset_custom_fields();
    let mk = |key: &str, rule: &str, others: &BTreeMap<String, Vec<String>>| {
        let mut spec = base_spec();
        spec["key"] = json!(key);
        spec["assign"]["rules"][0]["when"] = json!(rule);
        let spec: SchemeSpec = serde_json::from_value(spec).expect("spec");
        Scheme::compile(
            &spec,
            Catalog {
                custom_fields: &custom,
                schemes: Some(others),
            },
        )
        .expect("compiles")
    };
    let others: BTreeMap<String, Vec<String>> = ["a", "b", "c"]
        .iter()
        .map(|k| (k.to_string(), vec!["甲".to_string(), "乙".to_string()]))
        .collect();
    let a = mk("a", "scheme.b = 甲", &others);
    let b = mk("b", "value = 高", &others);
    let order = evaluation_order(&[a.clone(), b.clone()]).expect("no cycle");
    assert_eq!(order, vec![1, 0], "b before a");
    let b_reads_c = mk("b", "scheme.c = 甲", &others);
    let c_reads_a = mk("c", "scheme.a = 乙", &others);
    assert_eq!(
        evaluation_order(&[a.clone(), b_reads_c, c_reads_a]),
        Err("a → b → c → a".to_string())
    );
    // The class of another scheme is read from the context.
    let f = buys(customer(), 1);
    let classes = [("b", "甲")];
    let with = a.evaluate(
        &f,
        d(AS_OF),
        &Population::default(),
        ClassContext {
            previous: None,
            others: Some(&classes),
        },
    );
    assert_eq!(a.classes[with.class].key, "甲");
    let without = a.evaluate(
        &f,
        d(AS_OF),
        &Population::default(),
        ClassContext::default(),
    );
    assert_eq!(a.classes[without.class].key, "乙");
    // "previous": a rule may keep or move a class it had.
    let keep = mk("a", "previous = 甲 AND buy > 0", &others);
    let kept = keep.evaluate(
        &f,
        d(AS_OF),
        &Population::default(),
        ClassContext {
            previous: Some("甲"),
            others: None,
        },
    );
    assert_eq!(keep.classes[kept.class].key, "甲");
}

/// The set evaluator (shared metrics, one buffer) decides exactly as each
/// scheme does on its own, over varied demo customers, percentiles, classes
/// read across schemes and a scheme left out of the run included.
#[test]
fn set_evaluator_decides_as_each_scheme_alone() {
    use crate::demo::{DemoConfig, DemoGenerator};
    let today = d("2026-11-23");
    let facts: Vec<Facts> = DemoGenerator::new(DemoConfig::new(7, today, 3_000))
        .zip(1..)
        .map(|(c, id)| c.facts(id))
        .collect();
    let schemes = compile_presets(&preset_custom_fields()).unwrap();
    let ordered: Vec<&Scheme> = evaluation_order(&schemes)
        .unwrap()
        .into_iter()
        .map(|i| &schemes[i])
        .collect();
    let populations: Vec<Population> = ordered
        .iter()
        .map(|s| Population::build(s, &facts, today))
        .collect();
    let skipped = ordered.len() / 2;
    let evaluator = SetEvaluator::new(
        ordered
            .iter()
            .enumerate()
            .map(|(i, s)| (i != skipped).then_some(*s)),
        today,
    );
    assert!(evaluator.width() < ordered.iter().map(|s| s.indicators.len()).sum());
    // A removed customer is left out of the ranking.
    let mut table = MetricTable::new(evaluator.metrics(), today);
    let gone = Facts {
        customer_id: 999_999,
        ..facts[0].clone()
    };
    table.upsert(gone.customer_id, evaluator.measure_metrics(&gone));
    for f in &facts {
        table.upsert(f.customer_id, evaluator.measure_metrics(f));
    }
    table.remove(gone.customer_id);
    assert_eq!(table.customers(), facts.len());
    let binding = evaluator
        .bind(&table)
        .expect("the table holds every metric");
    let from_table = evaluator.populations(&binding, &table);
    for (i, p) in from_table.iter().enumerate() {
        if i != skipped {
            assert_eq!(p, &populations[i], "{}", ordered[i].key);
        }
    }
    let refs: Vec<&Population> = from_table.iter().collect();
    let mut scratch = evaluator.scratch();
    let mut seen = BTreeMap::new();
    for f in &facts {
        let row = table.row_of(f.customer_id).expect("measured");
        evaluator.load(&binding, &table, row, &refs, &mut scratch);
        let mut classes: Vec<(&str, &str)> = Vec::new();
        for (i, s) in ordered.iter().enumerate() {
            if i == skipped {
                continue;
            }
            let ctx = ClassContext {
                previous: None,
                others: Some(&classes),
            };
            let alone = s.evaluate(f, today, &populations[i], ctx);
            let shared = evaluator.decide_row(i, &binding, &table, row, &mut scratch, ctx);
            let same = (shared.class, shared.score, shared.fired);
            assert_eq!(
                (alone.class, alone.score, alone.fired),
                same,
                "{} for customer {}",
                s.key,
                f.customer_id
            );
            classes.push((&s.key, &s.classes[alone.class].key));
            *seen.entry((s.key.as_str(), alone.class)).or_insert(0) += 1;
        }
    }
    // A set of fewer schemes (a draft's) reads the same table; a table of
    // another day or without a metric is refused.
    let one = SetEvaluator::new([Some(ordered[0])], today);
    assert!(one.bind(&table).is_ok());
    let other_day = SetEvaluator::new(ordered.iter().copied().map(Some), d("2026-11-24"));
    assert!(other_day.bind(&table).is_err());
    let narrow = MetricTable::new(one.metrics(), today);
    let missing = evaluator
        .bind(&narrow)
        .expect_err("the narrow table lacks metrics");
    assert_eq!(
        missing.len(),
        evaluator.metrics().len() - one.metrics().len()
    );
    // Not a degenerate data set: most schemes see several classes.
    let varied = ordered
        .iter()
        .filter(|s| seen.keys().filter(|(k, _)| *k == s.key).count() > 1)
        .count();
    assert!(varied >= 6, "{seen:?}");
}

/// A scheme over the prediction: P(alive) < 0.3 → 流失风险, at and around the threshold.
#[test]
fn predictions_are_indicators_in_schemes() {
    let spec: SchemeSpec = serde_json::from_value(json!({
        "key": "churn", "name": "流失预警",
        "indicators": [
            {"key": "alive", "name": "活跃概率", "metric": "field", "field": "p_alive"},
            {"key": "clv", "name": "终身价值", "metric": "field", "field": "clv"}
        ],
        "dimensions": [
            {"key": "risk", "name": "流失", "weight": 100, "levels": [
                {"key": "高", "score": 0, "when": "alive < 0.3"},
                {"key": "低", "score": 100}
            ]}
        ],
        "classes": [{"key": "流失风险"}, {"key": "高价值在险"}, {"key": "正常"}],
        "assign": {"by": "rules", "default": "正常", "rules": [
            {"when": "risk = 高 AND clv >= 10万", "class": "高价值在险"},
            {"when": "risk = 高", "class": "流失风险"}
        ]}
    }))
    .expect("spec");
    let custom = preset_custom_fields();
    let scheme = Scheme::compile(
        &spec,
        Catalog {
            custom_fields: &custom,
            schemes: None,
        },
    )
    .expect("compiles");
    let schemes = BTreeMap::from([("churn".to_string(), scheme)]);
    let with = |p_alive: Option<i64>, clv_fen: Option<i64>| Facts {
        predicted: crate::predict::Predicted {
            p_alive,
            expected_orders_90d: None,
            clv_fen,
        },
        ..customer()
    };
    for (case, f, want) in [
        ("0.2999", with(Some(2_999), Some(0)), "流失风险"),
        ("exactly 0.3", with(Some(3_000), Some(0)), "正常"),
        ("0.95", with(Some(9_500), Some(50_000_000)), "正常"),
        (
            "at risk, CLV 10万",
            with(Some(1_000), Some(10_000_000)),
            "高价值在险",
        ),
        (
            "at risk, CLV 99,999.99",
            with(Some(1_000), Some(9_999_999)),
            "流失风险",
        ),
        ("no prediction yet", with(None, None), "正常"),
    ] {
        assert_eq!(class_in(&schemes, "churn", &f, d(AS_OF)), want, "{case}");
    }
}
