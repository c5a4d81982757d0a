//! Indicator values. Numbers are integers in a fixed unit per indicator
//! (money in fen, ratios in 1/10000), so thresholds compare exactly: no
//! floating point decides a class.

use crate::expr::{Literal, LiteralKind};
use crate::{Fen, Lang};
use chrono::NaiveDate;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Value {
    Missing,
    Num(i64),
    Text(String),
    Date(NaiveDate),
    Bool(bool),
    List(Vec<String>),
}

impl Value {
    pub fn num(&self) -> Option<i64> {
        match self {
            Value::Num(n) => Some(*n),
            _ => None,
        }
    }
}

/// The unit of a numeric indicator and the scale of its integer value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Integer fen.
    Fen,
    Count,
    Days,
    Months,
    /// 1/10000: 10 % = 1000.
    Ratio,
    /// Per month, in 1/100: 2.5 a month = 250.
    PerMonth,
    /// A plain number in 1/10000 (custom number fields, satisfaction).
    Number,
}

impl Unit {
    /// How many integer steps make one whole unit.
    pub fn scale(self) -> i64 {
        match self {
            Unit::Fen | Unit::Count | Unit::Days | Unit::Months => 1,
            Unit::Ratio | Unit::Number => 10_000,
            Unit::PerMonth => 100,
        }
    }

    /// The smallest step, in the unit's integers (money moves by 1 yuan in explanations).
    pub fn step(self) -> i64 {
        match self {
            Unit::Fen => 100,
            _ => 1,
        }
    }
}

/// The type of an indicator's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "unit")]
pub enum ValueKind {
    Num(Unit),
    Text,
    Date,
    Bool,
    List,
}

/// Why a literal does not fit an indicator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralError {
    pub expected_zh: &'static str,
    pub expected_en: &'static str,
}

fn literal_error(kind: ValueKind) -> LiteralError {
    let (zh, en) = match kind {
        ValueKind::Num(Unit::Fen) => (
            "金额，例如 100万、50万元、8000元",
            "an amount, e.g. 100万, 50万元, 8000元",
        ),
        ValueKind::Num(Unit::Count) => ("整数次数，例如 2", "a whole count, e.g. 2"),
        ValueKind::Num(Unit::Days) => ("天数，例如 30 或 30天", "days, e.g. 30 or 30天"),
        ValueKind::Num(Unit::Months) => (
            "月数或年数，例如 24、24个月、2年",
            "months or years, e.g. 24, 24个月, 2年",
        ),
        ValueKind::Num(Unit::Ratio) => ("百分比，例如 10% 或 0.1", "a percentage, e.g. 10% or 0.1"),
        ValueKind::Num(Unit::PerMonth) => (
            "每月次数，最多两位小数，例如 2.5",
            "a monthly rate with at most two decimals, e.g. 2.5",
        ),
        ValueKind::Num(Unit::Number) => {
            ("数字，最多四位小数", "a number with at most four decimals")
        }
        ValueKind::Date => ("日期，例如 2024-03-12", "a date, e.g. 2024-03-12"),
        ValueKind::Bool => ("是 或 否", "yes or no (true/false)"),
        ValueKind::Text | ValueKind::List => ("文字", "text"),
    };
    LiteralError {
        expected_zh: zh,
        expected_en: en,
    }
}

impl LiteralError {
    pub fn message(&self, lang: Lang) -> String {
        match lang {
            Lang::Zh => format!("此处应为{}", self.expected_zh),
            Lang::En => format!("expected {}", self.expected_en),
        }
    }
}

/// `digits` (with an optional sign and decimal point) × 10^`decimals`,
/// exactly; None when it has more decimals or overflows.
fn scaled(digits: &str, decimals: u32) -> Option<i64> {
    let (neg, body) = match digits.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, digits.strip_prefix('+').unwrap_or(digits)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if frac.len() > decimals as usize || int.is_empty() {
        return None;
    }
    let mut n: i64 = int.parse().ok()?;
    for i in 0..decimals as usize {
        let d = frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
        n = n.checked_mul(10)?.checked_add(d)?;
    }
    Some(if neg { -n } else { n })
}

/// Reads a literal of a condition as a value of `kind`. A literal 空 / null
/// stands for a missing value.
pub fn literal_value(lit: &Literal, kind: ValueKind) -> Result<Value, LiteralError> {
    let err = || literal_error(kind);
    if let LiteralKind::Text(t) = &lit.kind {
        if is_missing_word(t) {
            return Ok(Value::Missing);
        }
    }
    match kind {
        ValueKind::Text | ValueKind::List => Ok(Value::Text(lit.as_text())),
        ValueKind::Bool => match lit.as_text().to_lowercase().as_str() {
            "是" | "true" | "yes" | "1" => Ok(Value::Bool(true)),
            "否" | "false" | "no" | "0" => Ok(Value::Bool(false)),
            _ => Err(err()),
        },
        ValueKind::Date => crate::date::parse_date(&lit.as_text())
            .map(Value::Date)
            .map_err(|_| err()),
        ValueKind::Num(unit) => {
            let LiteralKind::Number {
                digits,
                unit: suffix,
            } = &lit.kind
            else {
                return Err(err());
            };
            let n = match (unit, suffix.as_str()) {
                (Unit::Fen, "万" | "万元" | "w" | "W") => scaled(digits, 6),
                (Unit::Fen, "亿" | "亿元") => scaled(digits, 10),
                (Unit::Fen, "" | "元") => scaled(digits, 2),
                (Unit::Count, "" | "次" | "个" | "家" | "人" | "条" | "笔") => {
                    scaled(digits, 0)
                }
                (Unit::Days, "" | "天" | "日" | "d") => scaled(digits, 0),
                (Unit::Months, "" | "个月" | "月" | "m") => scaled(digits, 0),
                (Unit::Months, "年" | "y") => scaled(digits, 0).and_then(|y| y.checked_mul(12)),
                (Unit::Ratio, "%") => scaled(digits, 2),
                (Unit::Ratio, "") => scaled(digits, 4),
                (Unit::PerMonth, "" | "次" | "次/月" | "/月") => scaled(digits, 2),
                (Unit::Number, "") => scaled(digits, 4),
                _ => None,
            };
            n.map(Value::Num).ok_or_else(err)
        }
    }
}

pub fn is_missing_word(t: &str) -> bool {
    matches!(
        t.to_lowercase().as_str(),
        "空" | "null" | "none" | "missing" | "无数据"
    )
}

/// A value for people: 120.0万元, 25 %, 24 个月 (or 24 months), 2024-03-12.
pub fn display(value: &Value, kind: ValueKind, lang: Lang) -> String {
    let zh = lang == Lang::Zh;
    match (value, kind) {
        (Value::Missing, _) => if zh { "无数据" } else { "no data" }.to_string(),
        (Value::Num(n), ValueKind::Num(unit)) => display_num(*n, unit, lang),
        (Value::Num(n), _) => n.to_string(),
        (Value::Text(t), _) => t.clone(),
        (Value::Date(d), _) => d.to_string(),
        (Value::Bool(b), _) => match (b, zh) {
            (true, true) => "是".into(),
            (false, true) => "否".into(),
            (true, false) => "yes".into(),
            (false, false) => "no".into(),
        },
        (Value::List(xs), _) => xs.join(if zh { "、" } else { ", " }),
    }
}

pub fn display_num(n: i64, unit: Unit, lang: Lang) -> String {
    let zh = lang == Lang::Zh;
    match unit {
        Unit::Fen => {
            let sign = if n < 0 { "-" } else { "" };
            let text = Fen::new(n.abs())
                .map(|f| f.display_cn())
                .unwrap_or_else(|_| n.to_string());
            format!("{sign}{text}")
        }
        Unit::Count => {
            if zh {
                format!("{n} 次")
            } else {
                n.to_string()
            }
        }
        Unit::Days => {
            if zh {
                format!("{n} 天")
            } else {
                format!("{n} days")
            }
        }
        Unit::Months => {
            if zh {
                format!("{n} 个月")
            } else {
                format!("{n} months")
            }
        }
        Unit::Ratio => format!("{} %", decimal(n, 100, 2)),
        Unit::PerMonth => {
            if zh {
                format!("每月 {}", decimal(n, 100, 2))
            } else {
                format!("{} a month", decimal(n, 100, 2))
            }
        }
        Unit::Number => decimal(n, 10_000, 4),
    }
}

/// `n / scale` with at most `places` decimals, trailing zeros dropped.
fn decimal(n: i64, scale: i64, places: usize) -> String {
    let sign = if n < 0 { "-" } else { "" };
    let (int, frac) = (n.abs() / scale, n.abs() % scale);
    if frac == 0 {
        return format!("{sign}{int}");
    }
    let width = scale.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    let digits = digits[..digits.len().min(places.max(1))].trim_end_matches('0');
    format!("{sign}{int}.{digits}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::{parse, Expr};

    fn lit(src: &str) -> Literal {
        match parse(&format!("x = {src}")) {
            Ok(Expr::Compare { value, .. }) => value,
            other => panic!("{src}: {other:?}"),
        }
    }

    #[test]
    fn literals_by_unit() {
        use ValueKind::Num;
        let ok: &[(&str, ValueKind, Value)] = &[
            ("100万", Num(Unit::Fen), Value::Num(100_000_000)),
            ("99.99万", Num(Unit::Fen), Value::Num(99_990_000)),
            ("50万元", Num(Unit::Fen), Value::Num(50_000_000)),
            ("1亿", Num(Unit::Fen), Value::Num(10_000_000_000)),
            ("8000元", Num(Unit::Fen), Value::Num(800_000)),
            ("8000.5", Num(Unit::Fen), Value::Num(800_050)),
            ("2年", Num(Unit::Months), Value::Num(24)),
            ("24个月", Num(Unit::Months), Value::Num(24)),
            ("30天", Num(Unit::Days), Value::Num(30)),
            ("10%", Num(Unit::Ratio), Value::Num(1000)),
            ("12.5%", Num(Unit::Ratio), Value::Num(1250)),
            ("0.2", Num(Unit::Ratio), Value::Num(2000)),
            ("-5%", Num(Unit::Ratio), Value::Num(-500)),
            ("2.5", Num(Unit::PerMonth), Value::Num(250)),
            ("3", Num(Unit::Count), Value::Num(3)),
            ("空", Num(Unit::Count), Value::Missing),
            (
                "2024-03-12",
                ValueKind::Date,
                Value::Date(NaiveDate::from_ymd_opt(2024, 3, 12).expect("date")),
            ),
            ("是", ValueKind::Bool, Value::Bool(true)),
            ("华东", ValueKind::Text, Value::Text("华东".into())),
            ("5", ValueKind::Text, Value::Text("5".into())),
        ];
        for (src, kind, want) in ok {
            assert_eq!(literal_value(&lit(src), *kind).as_ref(), Ok(want), "{src}");
        }
        let bad: &[(&str, ValueKind)] = &[
            ("100万", Num(Unit::Count)),
            ("1.5", Num(Unit::Count)),
            ("100.001", Num(Unit::Fen)),
            ("高", Num(Unit::Fen)),
            ("10%", Num(Unit::Months)),
            ("2.555", Num(Unit::PerMonth)),
            ("2024-02-30", ValueKind::Date),
            ("也许", ValueKind::Bool),
            ("99999999999999999999", Num(Unit::Fen)),
        ];
        for (src, kind) in bad {
            assert!(
                literal_value(&lit(src), *kind).is_err(),
                "{src} as {kind:?}"
            );
        }
    }

    #[test]
    fn values_for_people() {
        let cases: &[(i64, Unit, &str, &str)] = &[
            (120_000_000, Unit::Fen, "120.00万", "120.00万"),
            (-800_000, Unit::Fen, "-¥8,000.00", "-¥8,000.00"),
            (1000, Unit::Ratio, "10 %", "10 %"),
            (1234, Unit::Ratio, "12.34 %", "12.34 %"),
            (-500, Unit::Ratio, "-5 %", "-5 %"),
            (24, Unit::Months, "24 个月", "24 months"),
            (250, Unit::PerMonth, "每月 2.5", "2.5 a month"),
        ];
        for (n, unit, zh, en) in cases {
            assert_eq!(display_num(*n, *unit, Lang::Zh), *zh);
            assert_eq!(display_num(*n, *unit, Lang::En), *en);
        }
    }
}
